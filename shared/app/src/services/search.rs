//! Search use cases: keeping the index in step with the catalog stream, stock changes, searching and
//! completing.

use crate::ports::{CategoryReader, ProductSearch, RatingIndex, SearchIndex, SkuCatalog, StockReader};
use commerce_domain::catalog::Category;
use commerce_domain::error::{DomainError, Result};
use commerce_domain::inventory::SkuStock;
use commerce_domain::search::{
    change_for_product, IndexChange, RatingUpdate, SearchQuery, SearchResults, StockUpdate, SuggestQuery, Suggestions,
};

/// What became of a stream batch.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StreamOutcome {
    /// Records that changed the index.
    pub changed: usize,
    /// Records that were not product items, or stale.
    pub skipped: usize,
    /// Sequence number of the first record that must be retried (reported as a batch item failure: the
    /// event source retries from it, bisects, and finally sends it to the on-failure destination).
    pub failed_from: Option<String>,
}

impl StreamOutcome {
    /// The whole batch reported for retry after the index write failed: nothing changed, the first record is
    /// the first failure.
    fn retry_all<T>(records: &[StreamRecord<T>], err: &DomainError) -> Self {
        tracing::warn!(error = %err, records = records.len(), "search index write failed; batch will be retried");
        Self { changed: 0, skipped: 0, failed_from: records.first().map(|r| r.sequence_number.clone()) }
    }
}

pub use crate::ports::{ProductEvent, StockChange, StreamRecord};

/// Applies a reviews stream batch to the index: each product's latest aggregate in the batch (the index
/// ignores a version it has already passed, so replays and reordering are harmless). Records that are not
/// aggregates are skipped; an undecodable record stops the batch there, and a failed index write reports the
/// whole batch for retry.
#[tracing::instrument(skip_all, fields(records = records.len()))]
pub async fn index_rating_stream(
    index: &impl RatingIndex,
    records: &[StreamRecord<RatingUpdate>],
) -> Result<StreamOutcome> {
    let mut outcome = StreamOutcome::default();
    let mut latest: std::collections::BTreeMap<&str, &RatingUpdate> = std::collections::BTreeMap::new();
    for record in records {
        match &record.item {
            Ok(Some(update)) => {
                let entry = latest.entry(update.product_id.as_str()).or_insert(update);
                if update.version > entry.version {
                    *entry = update;
                }
            }
            Ok(None) => outcome.skipped += 1,
            Err(err) => {
                tracing::error!(sequence_number = %record.sequence_number, error = %err, "undecodable reviews stream record");
                outcome.failed_from = Some(record.sequence_number.clone());
                break;
            }
        }
    }
    let updates: Vec<RatingUpdate> = latest.into_values().cloned().collect();
    if updates.is_empty() {
        return Ok(outcome);
    }
    match index.set_ratings(&updates).await {
        Ok(changed) => {
            outcome.changed = changed;
            Ok(outcome)
        }
        Err(err) => Ok(StreamOutcome::retry_all(records, &err)),
    }
}

/// Applies a catalog stream batch to the index, in order. Records that are not product items are skipped.
/// A record that cannot be decoded stops the batch there: the records before it are applied and it is
/// reported as the first failure (so the shard is never blocked for longer than the retry policy allows).
/// If the index write fails, the whole batch is reported for retry. Replays are harmless: the index
/// ignores versions it has already seen.
#[tracing::instrument(skip_all, fields(records = records.len()))]
pub async fn index_catalog_stream(
    index: &impl SearchIndex,
    categories: &impl CategoryReader,
    records: &[StreamRecord<ProductEvent>],
) -> Result<StreamOutcome> {
    let mut outcome = StreamOutcome::default();
    let mut events = Vec::new();
    for record in records {
        match &record.item {
            Ok(Some(event)) => events.push(event),
            Ok(None) => outcome.skipped += 1,
            Err(err) => {
                tracing::error!(sequence_number = %record.sequence_number, error = %err, "undecodable catalog stream record");
                outcome.failed_from = Some(record.sequence_number.clone());
                break;
            }
        }
    }
    if events.is_empty() {
        return Ok(outcome);
    }
    let needs_categories = events.iter().any(|e| matches!(e, ProductEvent::Current(p) if p.is_public()));
    let category_list: Vec<Category> = if needs_categories { categories.list_categories().await? } else { Vec::new() };
    let changes: Vec<IndexChange> = events
        .iter()
        .map(|event| match event {
            ProductEvent::Current(product) => change_for_product(product, &category_list),
            ProductEvent::Deleted { product_id, version } => {
                IndexChange::Hide { product_id: product_id.clone(), version: *version, deleted: true }
            }
        })
        .collect();
    match index.apply_changes(&changes).await {
        Ok(changed) => {
            outcome.changed = changed;
            outcome.skipped += changes.len() - changed.min(changes.len());
            Ok(outcome)
        }
        Err(err) => Ok(StreamOutcome::retry_all(records, &err)),
    }
}

/// Applies stock changes (from the inventory stream) to the index.
#[tracing::instrument(skip_all, fields(updates = updates.len()))]
pub async fn update_stock(index: &impl SearchIndex, updates: &[StockUpdate]) -> Result<usize> {
    index.set_stock_status(updates).await
}

/// Applies an InventoryTable stream batch to the index's stock part. Per SKU whose availability may have
/// flipped at some warehouse, the SKU's stock is read back (stream records are at-least-once and may be
/// phantoms of cancelled transactions) and written with `stock_version`, which must exceed the version of
/// every earlier call for the same SKUs: records of one SKU share a partition key, so one shard carries them
/// and batches of a shard run one after another; the caller passes the clock (microseconds) taken before
/// the read. SKUs the catalog does not know (yet) are skipped. Failure handling is the catalog indexer's: an
/// undecodable record stops the batch there, a read or index failure reports the whole batch.
#[tracing::instrument(skip_all, fields(records = records.len()))]
pub async fn index_stock_stream(
    index: &impl SearchIndex,
    stock: &impl StockReader,
    catalog: &impl SkuCatalog,
    records: &[StreamRecord<StockChange>],
    stock_version: u64,
) -> Result<StreamOutcome> {
    let mut outcome = StreamOutcome::default();
    let mut skus: Vec<String> = Vec::new();
    for record in records {
        match &record.item {
            Ok(Some(change)) if change.may_flip() => {
                if !skus.contains(&change.sku) {
                    skus.push(change.sku.clone());
                }
            }
            Ok(_) => outcome.skipped += 1,
            Err(err) => {
                tracing::error!(sequence_number = %record.sequence_number, error = %err, "undecodable inventory stream record");
                outcome.failed_from = Some(record.sequence_number.clone());
                break;
            }
        }
    }
    if skus.is_empty() {
        return Ok(outcome);
    }
    let applied = async {
        let levels = stock.stock_levels(&skus).await?;
        let views = catalog.variants_by_sku(&skus).await?;
        let updates: Vec<StockUpdate> = views
            .iter()
            .map(|view| StockUpdate {
                product_id: view.product_id.clone(),
                sku: view.sku.clone(),
                available: SkuStock::new(&view.sku, levels.get(&view.sku).map_or(&[][..], Vec::as_slice)).available,
                stock_version,
            })
            .collect();
        let unknown = skus.len() - updates.len();
        Ok::<_, DomainError>((update_stock(index, &updates).await?, unknown))
    }
    .await;
    match applied {
        Ok((changed, unknown)) => {
            outcome.changed = changed;
            outcome.skipped += unknown;
            Ok(outcome)
        }
        Err(err) => Ok(StreamOutcome::retry_all(records, &err)),
    }
}

/// Searches the catalog projection.
#[tracing::instrument(skip_all)]
pub async fn search(engine: &impl ProductSearch, query: &SearchQuery) -> Result<SearchResults> {
    engine.search(query).await
}

/// Completes a prefix to product titles.
#[tracing::instrument(skip_all)]
pub async fn suggest(engine: &impl ProductSearch, query: &SuggestQuery) -> Result<Suggestions> {
    engine.suggest(query).await
}
