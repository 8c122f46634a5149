//! A stream batch in, the index updated, the first record to retry (if any) reported as a batch item
//! failure so the event source retries from it, bisects, and sends a poison record to the DLQ.

use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::streams::DynamoDbEventResponse;
use commerce_app::ports::{CategoryReader, SearchIndex};
use commerce_app::services::search;
use commerce_aws::streams;
use lambda_runtime::{Error, LambdaEvent};

pub async fn handle(
    index: &impl SearchIndex,
    categories: &impl CategoryReader,
    event: LambdaEvent<Event>,
) -> Result<DynamoDbEventResponse, Error> {
    commerce_lambda::metrics::stream_lag(&event.payload.records);
    let outcome =
        search::index_catalog_stream(index, categories, &streams::catalog_records(&event.payload.records)).await?;
    tracing::info!(
        records = event.payload.records.len(),
        changed = outcome.changed,
        skipped = outcome.skipped,
        failed_from = outcome.failed_from.as_deref().unwrap_or(""),
        "catalog stream batch indexed"
    );
    Ok(commerce_lambda::batch::stream_failure(outcome.failed_from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_app::ports::ProductSearch;
    use commerce_aws::search::EmbeddedSearch;
    use commerce_domain::search::SearchQuery;
    use commerce_testkit::http::demo_store;

    fn events_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/index-products")
    }

    fn load(name: &str) -> LambdaEvent<Event> {
        let text = std::fs::read_to_string(events_dir().join(name)).unwrap();
        LambdaEvent::new(serde_json::from_str(&text).unwrap(), lambda_runtime::Context::default())
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_index_then_hide_the_product() {
        let dir = tempfile::tempdir().unwrap();
        let index = EmbeddedSearch::open(dir.path(), "products").unwrap();
        let categories = demo_store();

        let response = handle(&index, &categories, load("insert-active-product.json")).await.unwrap();
        assert!(response.batch_item_failures.is_empty());
        let found = index.search(&SearchQuery::text("lantern")).await.unwrap();
        assert_eq!(found.total, 1);
        assert_eq!(found.facets.category[0].name, "Electronics", "{:?}", found.facets.category);

        let response = handle(&index, &categories, load("replayed-stale-insert-after-modify.json")).await.unwrap();
        assert!(response.batch_item_failures.is_empty());
        let found = index.search(&SearchQuery::text("lantern")).await.unwrap();
        assert_eq!(found.hits[0].title, "Solar Camping Lantern XL", "the newer version stays");

        let response = handle(&index, &categories, load("remove-product.json")).await.unwrap();
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(index.search(&SearchQuery::text("lantern")).await.unwrap().total, 0);
    }

    #[tokio::test]
    async fn when_a_record_is_poison_should_report_its_sequence_number() {
        let dir = tempfile::tempdir().unwrap();
        let index = EmbeddedSearch::open(dir.path(), "products").unwrap();
        let response = handle(&index, &demo_store(), load("poison-record.json")).await.unwrap();
        let failures: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
        assert_eq!(failures, vec![Some("200000000000000000002".to_owned())]);
        assert_eq!(index.search(&SearchQuery::text("lantern")).await.unwrap().total, 1, "the record before it applied");
    }
}
