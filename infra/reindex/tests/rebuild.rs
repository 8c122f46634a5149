//! The rebuild against the embedded engine with the indexer writing at the same time: every product is
//! searchable after the swap, and no change made during the rebuild is lost.

use commerce_app::ports::{ProductSearch, SearchIndex};
use commerce_aws::search::{EmbeddedSearch, SearchEngine};
use commerce_demo::catalog as demo;
use commerce_domain::catalog::{Category, Product};
use commerce_domain::error::Result;
use commerce_domain::search::{change_for_product, IndexChange, SearchQuery, StockUpdate};
use commerce_testkit::http::DEMO_SELLERS;
use reindex::{Pace, ProductPage, ProductSource, Quiet};
use std::sync::{Arc, Mutex};

/// The catalog "table": products by id, changed by the test while the rebuild scans it.
struct MemorySource {
    categories: Vec<Category>,
    products: Arc<Mutex<Vec<Product>>>,
}

impl ProductSource for MemorySource {
    async fn page(&self, cursor: Option<String>, limit: i32) -> Result<ProductPage> {
        let start: usize = cursor.and_then(|c| c.parse().ok()).unwrap_or(0);
        let products = self.products.lock().unwrap();
        let end = (start + limit as usize).min(products.len());
        let page = products[start..end].to_vec();
        Ok(ProductPage { products: page, next: (end < products.len()).then(|| end.to_string()) })
    }
    async fn categories(&self) -> Result<Vec<Category>> {
        Ok(self.categories.clone())
    }
    async fn estimate(&self) -> Option<u64> {
        Some(self.products.lock().unwrap().len() as u64)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_writes_continue_during_a_rebuild_none_is_lost() {
    let sellers: Vec<String> = DEMO_SELLERS.iter().map(|s| (*s).to_owned()).collect();
    let (categories, products) = demo::catalog(&sellers).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let live = EmbeddedSearch::open(dir.path(), "products").unwrap();

    // The live index holds an old state of the catalog and some stock.
    let initial: Vec<IndexChange> = products.iter().map(|p| change_for_product(p, &categories)).collect();
    live.apply_changes(&initial).await.unwrap();
    let out_of_stock: Vec<StockUpdate> = products[0]
        .variants
        .iter()
        .map(|v| StockUpdate {
            product_id: products[0].product_id.clone(),
            sku: v.sku.clone(),
            available: 0,
            stock_version: 3,
        })
        .collect();
    live.set_stock_status(&out_of_stock).await.unwrap();

    let table = Arc::new(Mutex::new(products.clone()));
    let source = MemorySource { categories: categories.clone(), products: table.clone() };
    let engine = SearchEngine::Embedded(live.clone());

    // The "indexer": renames products in the table and applies each change to the index, as the stream
    // consumer would, while the rebuild runs (about 1 s at 300 items/s).
    let writer = {
        let (live, table, categories) = (live.clone(), table.clone(), categories.clone());
        tokio::spawn(async move {
            let mut renamed = Vec::new();
            for i in (0..300).step_by(7) {
                let product = {
                    let mut table = table.lock().unwrap();
                    let p = &mut table[i];
                    p.version += 1;
                    p.title = format!("Renamed During Rebuild {i}");
                    p.clone()
                };
                live.apply_changes(&[change_for_product(&product, &categories)]).await.unwrap();
                renamed.push(product.product_id);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            renamed
        })
    };

    let report = reindex::rebuild(&source, &engine, Pace { batch: 50, items_per_second: 300 }, &Quiet).await.unwrap();
    let renamed = writer.await.unwrap();
    assert_eq!(report.products, 300);
    assert_eq!(live.current_index().unwrap(), report.index, "the alias points to the new index");

    assert_eq!(live.visible_count().unwrap(), 300);
    let found = live.search(&SearchQuery { page_size: 50, ..SearchQuery::text("renamed rebuild") }).await.unwrap();
    assert_eq!(found.total, renamed.len() as u64, "every rename made during the rebuild is in the new index");
    let record = live.record(&products[0].product_id).unwrap().unwrap();
    assert!(!record.in_stock(), "stock carried over from the old index");
    assert_eq!(record.document.unwrap().title, "Renamed During Rebuild 0");
}
