//! The catalog stream as the indexer sees it: records decoded by the adapter (`streams`), applied by the use case.
#![cfg(feature = "search")]

use aws_lambda_events::dynamodb::EventRecord;
use commerce_app::ports::{CategoryReader, SearchIndex};
use commerce_app::services::search::index_catalog_stream;
use commerce_aws::streams::catalog_records;
use commerce_domain::catalog::Category;
use commerce_domain::error::{DomainError, Result};
use commerce_domain::search::{IndexChange, StockUpdate};
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
    let outcome = index_catalog_stream(&index, &NoCategories, &catalog_records(&records)).await.unwrap();
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
    let outcome = index_catalog_stream(&index, &NoCategories, &catalog_records(&records)).await.unwrap();
    assert_eq!(outcome.failed_from.as_deref(), Some("11"));
    assert_eq!(index.applied.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn when_the_index_fails_should_report_the_whole_batch() {
    let index = RecordingIndex { fail: true, ..RecordingIndex::default() };
    let records = vec![record("INSERT", "20", product_image("prd_a", 1, "active"))];
    let outcome = index_catalog_stream(&index, &NoCategories, &catalog_records(&records)).await.unwrap();
    assert_eq!(outcome.failed_from.as_deref(), Some("20"));
}
