//! A reviews stream batch in: each product's latest aggregate written to the index (older versions ignored
//! there); the first record to retry, if any, reported as a batch item failure.

use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::streams::DynamoDbEventResponse;
use commerce_app::ports::RatingIndex;
use commerce_app::services::search;
use commerce_aws::streams;
use lambda_runtime::{Error, LambdaEvent};

pub async fn handle(index: &impl RatingIndex, event: LambdaEvent<Event>) -> Result<DynamoDbEventResponse, Error> {
    let records = &event.payload.records;
    commerce_lambda::metrics::stream_lag(records);
    let outcome = search::index_rating_stream(index, &streams::rating_records(records)).await?;
    tracing::info!(
        records = records.len(),
        changed = outcome.changed,
        skipped = outcome.skipped,
        failed_from = outcome.failed_from.as_deref().unwrap_or(""),
        "reviews stream batch indexed"
    );
    Ok(commerce_lambda::batch::stream_failure(outcome.failed_from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_app::ports::{CategoryReader, ProductReader, ProductSearch, SearchIndex};
    use commerce_aws::search::EmbeddedSearch;
    use commerce_domain::search::{change_for_product, SearchQuery, SearchSort};
    use commerce_testkit::http::demo_store;

    const RATED: &str = "prd_demo-0001";
    const OTHER: &str = "prd_demo-0002";

    fn load(name: &str) -> LambdaEvent<Event> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/index-ratings").join(name);
        let text = std::fs::read_to_string(path).unwrap();
        LambdaEvent::new(serde_json::from_str(&text).unwrap(), lambda_runtime::Context::default())
    }

    async fn index() -> (tempfile::TempDir, EmbeddedSearch) {
        let dir = tempfile::tempdir().unwrap();
        let index = EmbeddedSearch::open(dir.path(), "products").unwrap();
        let catalog = demo_store();
        let categories = catalog.list_categories().await.unwrap();
        for id in [RATED, OTHER] {
            let product = catalog.get_product(id).await.unwrap().unwrap();
            index.apply_changes(&[change_for_product(&product, &categories)]).await.unwrap();
        }
        (dir, index)
    }

    async fn hits(index: &EmbeddedSearch, query: &[(&str, &str)]) -> Vec<(String, f64, u32)> {
        let mut query = SearchQuery::from_params(query.iter().copied()).unwrap();
        query.page_size = 100;
        let results = index.search(&query).await.unwrap();
        results.hits.into_iter().map(|h| (h.product_id, h.rating, h.review_count)).collect()
    }

    #[tokio::test]
    async fn when_an_aggregate_changes_search_shows_its_rating_and_filters_and_sorts_by_it() {
        let (_dir, index) = index().await;
        let response = handle(&index, load("aggregate-approved.json")).await.unwrap();
        assert!(response.batch_item_failures.is_empty());
        let rated = hits(&index, &[("rating_min", "4")]).await;
        assert_eq!(rated, vec![(RATED.to_owned(), 4.5, 2)]);
        let sorted = hits(&index, &[("sort", "rating")]).await;
        assert_eq!(sorted.first().map(|h| h.0.as_str()), Some(RATED));
        assert_eq!(SearchSort::Rating, SearchQuery::from_params([("sort", "rating")]).unwrap().sort);
    }

    #[tokio::test]
    async fn when_an_older_aggregate_arrives_after_a_newer_one_should_keep_the_newer() {
        let (_dir, index) = index().await;
        handle(&index, load("aggregate-approved.json")).await.unwrap();
        handle(&index, load("stale-aggregate.json")).await.unwrap();
        assert_eq!(hits(&index, &[("rating_min", "4")]).await, vec![(RATED.to_owned(), 4.5, 2)]);
    }

    #[tokio::test]
    async fn when_a_record_cannot_be_decoded_should_report_it_for_retry() {
        let (_dir, index) = index().await;
        let response = handle(&index, load("poison-record.json")).await.unwrap();
        let failed: Vec<_> = response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
        assert_eq!(failed, vec![Some("200".to_owned())]);
    }
}
