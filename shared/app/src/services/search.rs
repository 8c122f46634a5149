//! Search use cases: keeping the index in step with the catalog stream, stock changes, searching and
//! completing.

use crate::ports::{CategoryReader, ProductSearch, SearchIndex, SkuCatalog, StockReader};
use aws_lambda_events::dynamodb::EventRecord;
use commerce_domain::catalog::{Category, Product};
use commerce_domain::error::{DomainError, Result};
use commerce_domain::inventory::SkuStock;
use commerce_domain::search::{
    change_for_product, IndexChange, SearchQuery, SearchResults, StockUpdate, SuggestQuery, Suggestions,
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

// Nearly every event carries a product; boxing it would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum ProductEvent {
    Current(Product),
    Deleted { product_id: String, version: u64 },
}

/// The product event a stream record carries; `None` for items that are not products.
fn decode(record: &EventRecord) -> Result<Option<ProductEvent>> {
    let keys = &record.change.keys;
    let key = |name: &str| -> Option<String> {
        serde_dynamo::from_attribute_value::<_, String>(keys.get(name)?.clone()).ok()
    };
    let (Some(pk), Some(sk)) = (key("pk"), key("sk")) else {
        return Err(DomainError::validation("keys", "stream record without pk/sk"));
    };
    if sk != "PRODUCT" || !pk.starts_with("PRODUCT#") {
        return Ok(None);
    }
    match record.event_name.as_str() {
        "INSERT" | "MODIFY" => {
            let product: Product = serde_dynamo::from_item(record.change.new_image.clone())
                .map_err(|e| DomainError::validation("NewImage", e))?;
            Ok(Some(ProductEvent::Current(product)))
        }
        "REMOVE" => {
            let product: Product = serde_dynamo::from_item(record.change.old_image.clone())
                .map_err(|e| DomainError::validation("OldImage", e))?;
            Ok(Some(ProductEvent::Deleted { product_id: product.product_id, version: product.version }))
        }
        other => Err(DomainError::validation("eventName", format!("unknown event {other:?}"))),
    }
}

/// Applies a catalog stream batch to the index, in order. Records that are not product items are skipped.
/// A record that cannot be decoded stops the batch there: the records before it are applied and it is
/// reported as the first failure (so the shard is never blocked for longer than the retry policy allows).
/// If the index write fails, the whole batch is reported for retry. Replays are harmless: the index
/// ignores versions it has already seen.
pub async fn index_catalog_stream(
    index: &impl SearchIndex,
    categories: &impl CategoryReader,
    records: &[EventRecord],
) -> Result<StreamOutcome> {
    let mut outcome = StreamOutcome::default();
    let mut events = Vec::new();
    for record in records {
        match decode(record) {
            Ok(Some(event)) => events.push(event),
            Ok(None) => outcome.skipped += 1,
            Err(err) => {
                tracing::error!(
                    sequence_number = record.change.sequence_number.as_deref().unwrap_or(""),
                    error = %err,
                    "undecodable catalog stream record"
                );
                outcome.failed_from = Some(record.change.sequence_number.clone().unwrap_or_default());
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
        Err(err) => {
            tracing::warn!(error = %err, records = records.len(), "search index write failed; batch will be retried");
            Ok(StreamOutcome {
                changed: 0,
                skipped: 0,
                failed_from: records.first().map(|r| r.change.sequence_number.clone().unwrap_or_default()),
            })
        }
    }
}

/// Applies stock changes (from the inventory stream) to the index.
pub async fn update_stock(index: &impl SearchIndex, updates: &[StockUpdate]) -> Result<usize> {
    index.set_stock_status(updates).await
}

/// A stock item's `avail` in a stream image; `None` when the image is absent (insert or remove).
fn image_avail(image: &serde_dynamo::Item) -> Option<i64> {
    let value = image.get("avail")?;
    serde_dynamo::from_attribute_value::<_, i64>(value.clone()).ok()
}

/// The SKU of an InventoryTable stock record (`SKU#<sku>` / `WH#<warehouse>`), `None` for other items,
/// and whether it may have flipped the SKU's availability.
fn decode_stock(record: &EventRecord) -> Result<Option<(String, bool)>> {
    let keys = &record.change.keys;
    let key = |name: &str| -> Option<String> {
        serde_dynamo::from_attribute_value::<_, String>(keys.get(name)?.clone()).ok()
    };
    let (Some(pk), Some(sk)) = (key("pk"), key("sk")) else {
        return Err(DomainError::validation("keys", "stream record without pk/sk"));
    };
    let (Some(sku), true) = (pk.strip_prefix("SKU#"), sk.starts_with("WH#")) else {
        return Ok(None);
    };
    let old = image_avail(&record.change.old_image);
    let new = image_avail(&record.change.new_image);
    // A SKU is in stock when some warehouse has `avail > 0`, so only a per-warehouse flip can flip the
    // SKU. A created or removed item always counts: a SKU never reported shows as in stock.
    let relevant =
        old.is_none() || new.is_none() || commerce_domain::inventory::stock_status_change(old, new).is_some();
    Ok(Some((sku.to_owned(), relevant)))
}

/// Applies an InventoryTable stream batch to the index's stock part. Per SKU whose availability may have
/// flipped at some warehouse, the SKU's stock is read back (stream records are at-least-once and may be
/// phantoms of cancelled transactions) and written with `stock_version`, which must exceed the version of
/// every earlier call for the same SKUs: records of one SKU share a partition key, so one shard carries them
/// and batches of a shard run one after another; the caller passes the clock (microseconds) taken before
/// the read. SKUs the catalog does not know (yet) are skipped. Failure handling is the catalog indexer's: an
/// undecodable record stops the batch there, a read or index failure reports the whole batch.
pub async fn index_stock_stream(
    index: &impl SearchIndex,
    stock: &impl StockReader,
    catalog: &impl SkuCatalog,
    records: &[EventRecord],
    stock_version: u64,
) -> Result<StreamOutcome> {
    let mut outcome = StreamOutcome::default();
    let mut skus: Vec<String> = Vec::new();
    for record in records {
        match decode_stock(record) {
            Ok(Some((sku, true))) => {
                if !skus.contains(&sku) {
                    skus.push(sku);
                }
            }
            Ok(_) => outcome.skipped += 1,
            Err(err) => {
                tracing::error!(
                    sequence_number = record.change.sequence_number.as_deref().unwrap_or(""),
                    error = %err,
                    "undecodable inventory stream record"
                );
                outcome.failed_from = Some(record.change.sequence_number.clone().unwrap_or_default());
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
        Err(err) => {
            tracing::warn!(error = %err, records = records.len(), "stock index update failed; batch will be retried");
            Ok(StreamOutcome {
                changed: 0,
                skipped: 0,
                failed_from: records.first().map(|r| r.change.sequence_number.clone().unwrap_or_default()),
            })
        }
    }
}

/// Searches the catalog projection.
pub async fn search(engine: &impl ProductSearch, query: &SearchQuery) -> Result<SearchResults> {
    engine.search(query).await
}

/// Completes a prefix to product titles.
pub async fn suggest(engine: &impl ProductSearch, query: &SuggestQuery) -> Result<Suggestions> {
    engine.suggest(query).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct RecordingIndex {
        applied: Mutex<Vec<IndexChange>>,
        fail: bool,
    }

    impl SearchIndex for RecordingIndex {
        async fn apply_changes(&self, changes: &[IndexChange]) -> Result<usize> {
            if self.fail {
                return Err(DomainError::Transient("down".into()));
            }
            self.applied.lock().unwrap().extend(changes.iter().cloned());
            Ok(changes.len())
        }
        async fn set_stock_status(&self, updates: &[StockUpdate]) -> Result<usize> {
            Ok(updates.len())
        }
    }

    struct NoCategories;
    impl CategoryReader for NoCategories {
        async fn list_categories(&self) -> Result<Vec<Category>> {
            Ok(Vec::new())
        }
    }

    fn record(event: &str, seq: &str, image: serde_json::Value) -> EventRecord {
        let keys = serde_json::json!({"pk": {"S": image["pk"]["S"].clone()}, "sk": {"S": image["sk"]["S"].clone()}});
        let (new_image, old_image) =
            if event == "REMOVE" { (serde_json::json!({}), image) } else { (image, serde_json::json!({})) };
        serde_json::from_value(serde_json::json!({
            "eventID": seq, "eventName": event, "eventVersion": "1.1", "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": {"Keys": keys, "NewImage": new_image, "OldImage": old_image, "SequenceNumber": seq,
                         "SizeBytes": 10, "StreamViewType": "NEW_AND_OLD_IMAGES", "ApproximateCreationDateTime": 1700000000},
        }))
        .unwrap()
    }

    fn product_image(id: &str, version: u64, status: &str) -> serde_json::Value {
        serde_json::json!({
            "pk": {"S": format!("PRODUCT#{id}")}, "sk": {"S": "PRODUCT"},
            "product_id": {"S": id}, "seller_id": {"S": "usr_1"}, "title": {"S": "Trail Running Shoe"},
            "description": {"S": "Light"}, "brand": {"S": "Acme"}, "category_id": {"S": "cat_shoes"},
            "category_path": {"L": [{"S": "cat_shoes"}]}, "attributes": {"M": {}}, "images": {"L": []},
            "variants": {"L": [{"M": {"sku": {"S": "SH-1"}, "options": {"M": {"size": {"S": "42"}}},
                "price": {"M": {"amount": {"N": "8900"}, "currency": {"S": "USD"}}},
                "components": {"L": [{"M": {"sku": {"S": "SH-1"}, "quantity": {"N": "1"}}}]}}}]},
            "status": {"S": status},
            "price_min": {"M": {"amount": {"N": "8900"}, "currency": {"S": "USD"}}},
            "price_max": {"M": {"amount": {"N": "8900"}, "currency": {"S": "USD"}}},
            "version": {"N": version.to_string()},
            "created_at": {"S": "2024-01-01T00:00:00Z"}, "updated_at": {"S": "2024-01-01T00:00:00Z"},
        })
    }

    #[tokio::test]
    async fn when_records_mix_products_and_other_items_should_index_products_only() {
        let index = RecordingIndex::default();
        let sku_item = serde_json::json!({"pk": {"S": "SKU#SH-1"}, "sk": {"S": "SKU"}});
        let records = vec![
            record("INSERT", "1", product_image("prd_a", 1, "active")),
            record("INSERT", "2", sku_item),
            record("MODIFY", "3", product_image("prd_a", 2, "draft")),
            record("REMOVE", "4", product_image("prd_a", 2, "draft")),
        ];
        let outcome = index_catalog_stream(&index, &NoCategories, &records).await.unwrap();
        assert_eq!(outcome.failed_from, None);
        let applied = index.applied.lock().unwrap();
        assert_eq!(applied.len(), 3);
        assert!(matches!(&applied[0], IndexChange::Upsert(d) if d.version == 1 && d.attributes["size"] == vec!["42"]));
        assert_eq!(applied[1], IndexChange::Hide { product_id: "prd_a".into(), version: 2, deleted: false });
        assert_eq!(applied[2], IndexChange::Hide { product_id: "prd_a".into(), version: 2, deleted: true });
    }

    #[tokio::test]
    async fn when_a_record_is_poison_should_apply_those_before_and_report_it() {
        let index = RecordingIndex::default();
        let mut poison = product_image("prd_b", 1, "active");
        poison["version"] = serde_json::json!({"S": "not a number"});
        let records = vec![
            record("INSERT", "10", product_image("prd_a", 1, "active")),
            record("INSERT", "11", poison),
            record("INSERT", "12", product_image("prd_c", 1, "active")),
        ];
        let outcome = index_catalog_stream(&index, &NoCategories, &records).await.unwrap();
        assert_eq!(outcome.failed_from.as_deref(), Some("11"));
        assert_eq!(index.applied.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn when_the_index_fails_should_report_the_whole_batch() {
        let index = RecordingIndex { fail: true, ..RecordingIndex::default() };
        let records = vec![record("INSERT", "20", product_image("prd_a", 1, "active"))];
        let outcome = index_catalog_stream(&index, &NoCategories, &records).await.unwrap();
        assert_eq!(outcome.failed_from.as_deref(), Some("20"));
    }
}
