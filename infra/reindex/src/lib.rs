//! The rebuild: every product of the catalog table, read page by page at a bounded rate, written into a
//! fresh index that also receives the indexer's live writes; then the alias swaps to it.
//!
//! No update is lost across the swap: from the moment the new index exists, every indexer write goes to
//! both indexes, and the version rules make the order of scan writes and live writes irrelevant (the
//! newest version wins in both). A product the scan read before a seller changed it is corrected by the
//! live write of the change; a change before the scan read is in what the scan read.

use commerce_aws::catalog::items;
use commerce_aws::search::SearchEngine;
use commerce_domain::catalog::{Category, Product};
use commerce_domain::error::{DomainError, Result};
use commerce_domain::search::{change_for_product, IndexChange};
use std::time::{Duration, Instant};

/// A page of catalog products and where the next one starts.
pub struct ProductPage {
    pub products: Vec<Product>,
    pub next: Option<String>,
}

/// Where the rebuild reads the catalog from. IAM: `dynamodb:Scan` and `dynamodb:Query` on the catalog table.
pub trait ProductSource {
    /// Products of one page (at most `limit` items examined), after `cursor`.
    fn page(&self, cursor: Option<String>, limit: i32) -> impl std::future::Future<Output = Result<ProductPage>>;
    /// Every category (names and facetable attributes of the documents).
    fn categories(&self) -> impl std::future::Future<Output = Result<Vec<Category>>>;
    /// Roughly how many items the table holds (for the progress bar).
    fn estimate(&self) -> impl std::future::Future<Output = Option<u64>>;
}

/// The catalog table in DynamoDB: a paginated Scan for product items.
pub struct DynamoSource {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
}

impl ProductSource for DynamoSource {
    async fn page(&self, cursor: Option<String>, limit: i32) -> Result<ProductPage> {
        let start = cursor.and_then(|c| c.split_once('\u{1f}').map(|(pk, sk)| items::key(pk.to_owned(), sk)));
        let output = self
            .client
            .scan()
            .table_name(&self.table)
            .limit(limit)
            .filter_expression("sk = :product")
            .expression_attribute_values(":product", items::s(items::PRODUCT_SK))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(commerce_aws::dynamo::sdk_error)?;
        let products = output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(items::from_item::<Product>)
            .collect::<Result<Vec<_>>>()?;
        let next = output.last_evaluated_key.and_then(|key| {
            let pk = key.get(items::PK)?.as_s().ok()?;
            let sk = key.get(items::SK)?.as_s().ok()?;
            Some(format!("{pk}\u{1f}{sk}"))
        });
        Ok(ProductPage { products, next })
    }

    async fn categories(&self) -> Result<Vec<Category>> {
        use commerce_app::ports::CategoryReader;
        let catalog = commerce_aws::catalog::DynamoCatalog::new(self.client.clone(), self.table.clone());
        catalog.list_categories().await
    }

    async fn estimate(&self) -> Option<u64> {
        let table = self.client.describe_table().table_name(&self.table).send().await.ok()?;
        table.table.and_then(|t| t.item_count).map(|n| n.max(0) as u64)
    }
}

/// How fast and in what batches to rebuild.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Items read per scan page and written per index batch.
    pub batch: i32,
    /// Most items read per second (protects the table's capacity and the live indexer).
    pub items_per_second: u32,
}

/// What a rebuild did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub index: String,
    pub products: u64,
    pub searchable: u64,
}

/// Progress callbacks (the CLI draws a bar; tests ignore them).
pub trait Progress {
    fn start(&self, estimate: Option<u64>);
    fn advance(&self, products: u64);
}

/// No progress output.
pub struct Quiet;

impl Progress for Quiet {
    fn start(&self, _: Option<u64>) {}
    fn advance(&self, _: u64) {}
}

/// Rebuilds the index from `source` and swaps the alias; on failure the new index is dropped and the
/// live one stays as it was.
pub async fn rebuild(
    source: &impl ProductSource,
    engine: &SearchEngine,
    pace: Pace,
    progress: &impl Progress,
) -> Result<Report> {
    let name = begin(engine).await?;
    match load_all(source, engine, &name, pace, progress).await {
        Ok(report) => {
            finish(engine, &name).await?;
            Ok(report)
        }
        Err(err) => {
            if let Err(abort) = abort(engine, &name).await {
                tracing::error!(error = %abort, index = %name, "could not drop the abandoned index");
            }
            Err(err)
        }
    }
}

async fn load_all(
    source: &impl ProductSource,
    engine: &SearchEngine,
    name: &str,
    pace: Pace,
    progress: &impl Progress,
) -> Result<Report> {
    progress.start(source.estimate().await);
    let categories = source.categories().await?;
    let started = Instant::now();
    let mut report = Report { index: name.to_owned(), ..Report::default() };
    let mut cursor = None;
    loop {
        let page = source.page(cursor.take(), pace.batch).await?;
        let changes: Vec<IndexChange> = page.products.iter().map(|p| change_for_product(p, &categories)).collect();
        report.products += changes.len() as u64;
        report.searchable += changes.iter().filter(|c| matches!(c, IndexChange::Upsert(_))).count() as u64;
        load(engine, name, changes).await?;
        progress.advance(page.products.len() as u64);
        let allowed = Duration::from_secs_f64(report.products as f64 / f64::from(pace.items_per_second.max(1)));
        if let Some(wait) = allowed.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(report)
}

async fn begin(engine: &SearchEngine) -> Result<String> {
    match engine {
        SearchEngine::Embedded(e) => {
            let e = e.clone();
            blocking(move || e.begin_rebuild()).await
        }
        SearchEngine::OpenSearch(o) => o.begin_rebuild().await,
    }
}

async fn load(engine: &SearchEngine, name: &str, changes: Vec<IndexChange>) -> Result<usize> {
    if changes.is_empty() {
        return Ok(0);
    }
    match engine {
        SearchEngine::Embedded(e) => {
            let (e, name) = (e.clone(), name.to_owned());
            blocking(move || e.load_rebuild(&name, &changes)).await
        }
        SearchEngine::OpenSearch(o) => o.load_rebuild(name, &changes).await,
    }
}

async fn finish(engine: &SearchEngine, name: &str) -> Result<()> {
    match engine {
        SearchEngine::Embedded(e) => {
            let (e, name) = (e.clone(), name.to_owned());
            blocking(move || e.finish_rebuild(&name)).await
        }
        SearchEngine::OpenSearch(o) => o.finish_rebuild(name).await,
    }
}

async fn abort(engine: &SearchEngine, name: &str) -> Result<()> {
    match engine {
        SearchEngine::Embedded(e) => {
            let (e, name) = (e.clone(), name.to_owned());
            blocking(move || e.abort_rebuild(&name)).await
        }
        SearchEngine::OpenSearch(o) => o.abort_rebuild(name).await,
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(DomainError::unexpected)?
}
