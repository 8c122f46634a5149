//! A stock stream batch in, the affected SKUs' availability read back and written to the index, the first
//! record to retry (if any) reported as a batch item failure (the event source retries from it, bisects,
//! and sends a poison record to the DLQ).

use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::streams::DynamoDbEventResponse;
use commerce_app::ports::{SearchIndex, SkuCatalog, StockReader};
use commerce_app::services::search;
use commerce_aws::streams;
use lambda_runtime::{Error, LambdaEvent};

/// The stock version of a read made now: microseconds since the epoch (batches of one shard run one after
/// another, so a later read of a SKU gets a higher version).
fn read_version() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_micros()).unwrap_or(0)
}

pub async fn handle(
    index: &impl SearchIndex,
    stock: &impl StockReader,
    catalog: &impl SkuCatalog,
    event: LambdaEvent<Event>,
) -> Result<DynamoDbEventResponse, Error> {
    let records = &event.payload.records;
    commerce_lambda::metrics::stream_lag(records);
    let broken = commerce_app::services::inventory::audit_stock_images(&streams::stock_images(records));
    commerce_lambda::metrics::count(commerce_lambda::metrics::Metric::StockInvariantViolations, broken as u64);
    let outcome =
        search::index_stock_stream(index, stock, catalog, &streams::stock_records(records), read_version()).await?;
    tracing::info!(
        records = records.len(),
        changed = outcome.changed,
        skipped = outcome.skipped,
        failed_from = outcome.failed_from.as_deref().unwrap_or(""),
        "inventory stream batch indexed"
    );
    Ok(commerce_lambda::batch::stream_failure(outcome.failed_from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_app::ports::{CategoryReader, ProductReader, ProductSearch, StockWriter};
    use commerce_aws::search::EmbeddedSearch;
    use commerce_domain::inventory::SetStock;
    use commerce_domain::search::{change_for_product, SearchQuery, StockUpdate};
    use commerce_testkit::http::demo_store;
    use commerce_testkit::inventory::InMemoryInventory;

    const PRODUCT: &str = "prd_demo-0001";
    const SKUS: [&str; 4] = ["LAP-0001-8GB-256GB", "LAP-0001-16GB-512GB", "LAP-0001-32GB-1TB", "LAP-0001-64GB-2TB"];

    fn load(name: &str) -> LambdaEvent<Event> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/index-stock").join(name);
        let text = std::fs::read_to_string(path).unwrap();
        LambdaEvent::new(serde_json::from_str(&text).unwrap(), lambda_runtime::Context::default())
    }

    #[test]
    fn stock_images_are_checked_against_the_ledger_rules() {
        let event = load("restocked.json");
        let images = streams::stock_images(&event.payload.records);
        assert!(!images.is_empty());
        assert_eq!(commerce_app::services::inventory::audit_stock_images(&images), 0);
        // The same change with a unit sold from nowhere: available + reserved + sold exceeds what came in.
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/index-stock/restocked.json");
        let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        json["Records"][0]["dynamodb"]["NewImage"]["sold"] = serde_json::json!({"N": "1"});
        let tampered: Event = serde_json::from_value(json).unwrap();
        let images = streams::stock_images(&tampered.records);
        assert_eq!(commerce_app::services::inventory::audit_stock_images(&images), 1);
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        index: EmbeddedSearch,
        inventory: InMemoryInventory,
        catalog: commerce_testkit::catalog::InMemoryCatalog,
        title: String,
    }

    /// The demo laptop `prd_demo-0001` indexed (no stock reported yet), and an empty inventory.
    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let index = EmbeddedSearch::open(dir.path(), "products").unwrap();
        let catalog = demo_store();
        let product = catalog.get_product(PRODUCT).await.unwrap().unwrap();
        let skus: Vec<String> = product.sku_views().into_iter().map(|v| v.sku).collect();
        assert_eq!(skus, SKUS, "the sample events name these SKUs");
        let categories = catalog.list_categories().await.unwrap();
        index.apply_changes(&[change_for_product(&product, &categories)]).await.unwrap();
        Fixture { _dir: dir, index, inventory: InMemoryInventory::new(), catalog, title: product.title }
    }

    impl Fixture {
        async fn run(&self, name: &str) -> Vec<Option<String>> {
            let response = handle(&self.index, &self.inventory, &self.catalog, load(name)).await.unwrap();
            response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect()
        }

        async fn listed(&self, in_stock: bool) -> bool {
            let mut query = SearchQuery::text(self.title.clone());
            query.in_stock = Some(in_stock);
            self.index.search(&query).await.unwrap().hits.iter().any(|h| h.product_id == PRODUCT)
        }

        /// Every SKU reported sold out at version 1.
        async fn report_sold_out(&self) {
            let updates: Vec<StockUpdate> = SKUS
                .iter()
                .map(|sku| StockUpdate {
                    product_id: PRODUCT.into(),
                    sku: (*sku).into(),
                    available: 0,
                    stock_version: 1,
                })
                .collect();
            self.index.set_stock_status(&updates).await.unwrap();
            assert!(!self.listed(true).await);
        }

        async fn set(&self, sku: &str, warehouse: &str, on_hand: i64) {
            self.inventory.set_stock(sku, warehouse, &SetStock { on_hand, safety_stock: None }).await.unwrap();
        }
    }

    #[tokio::test]
    async fn when_every_sku_sells_out_should_leave_the_in_stock_results_and_come_back_on_restock() {
        let f = fixture().await;
        for (sku, east, west) in [(SKUS[0], 0, 0), (SKUS[1], 7, 11), (SKUS[2], 14, 22), (SKUS[3], 21, 3)] {
            f.set(sku, "wh_east", east).await;
            f.set(sku, "wh_west", west).await;
        }
        assert!(f.run("seeded-stock.json").await.is_empty());
        assert!(f.listed(true).await && !f.listed(false).await);

        for sku in SKUS {
            f.set(sku, "wh_east", 0).await;
            f.set(sku, "wh_west", 0).await;
        }
        assert!(f.run("sold-out-everywhere.json").await.is_empty());
        assert!(!f.listed(true).await, "sold out everywhere");
        assert!(f.listed(false).await);

        f.set(SKUS[2], "wh_east", 5).await;
        assert!(f.run("restocked.json").await.is_empty());
        assert!(f.listed(true).await, "restocked");
    }

    #[tokio::test]
    async fn when_records_claim_a_change_the_table_does_not_show_should_index_the_table() {
        let f = fixture().await;
        f.set(SKUS[2], "wh_east", 5).await;
        // Phantom records (a cancelled transaction on the emulator, or a replay): they say sold out.
        assert!(f.run("sold-out-everywhere.json").await.is_empty());
        assert!(f.listed(true).await, "the read-back stock of 5 wins over the records");
        // The other SKUs were read back as 0; the 8GB one has no record, so it stays unreported.
        f.set(SKUS[2], "wh_east", 0).await;
        assert!(f.run("sold-out-everywhere.json").await.is_empty());
        assert!(f.listed(true).await, "an unreported SKU still counts as sellable");
    }

    #[tokio::test]
    async fn when_nothing_flips_should_leave_the_index_alone() {
        let f = fixture().await;
        f.report_sold_out().await;
        f.set(SKUS[2], "wh_east", 5).await;
        // The records show a reservation at a warehouse that stays in stock, a reservation item and a
        // warehouse item: none of them can flip a SKU, so nothing is read back or written.
        assert!(f.run("reserved-without-flip.json").await.is_empty());
        assert!(!f.listed(true).await && f.listed(false).await);
    }

    #[tokio::test]
    async fn when_a_record_is_poison_should_apply_the_ones_before_and_report_it() {
        let f = fixture().await;
        f.report_sold_out().await;
        f.set(SKUS[3], "wh_west", 3).await;
        assert_eq!(f.run("poison-record.json").await, vec![Some("300000000000000000020".to_owned())]);
        assert!(f.listed(true).await, "the record before the poison one applied");
    }

    #[tokio::test]
    async fn when_a_stale_version_arrives_should_keep_the_newer_stock() {
        let f = fixture().await;
        f.set(SKUS[2], "wh_east", 5).await;
        assert!(f.run("restocked.json").await.is_empty());
        let stale = StockUpdate { product_id: PRODUCT.into(), sku: SKUS[2].into(), available: 0, stock_version: 1 };
        for sku in [SKUS[0], SKUS[1], SKUS[3]] {
            let update = StockUpdate { sku: sku.into(), ..stale.clone() };
            f.index.set_stock_status(&[update]).await.unwrap();
        }
        assert_eq!(f.index.set_stock_status(&[stale]).await.unwrap(), 0, "older than the read-back version");
        assert!(f.listed(true).await);
    }
}
