//! Reviews under real concurrency, over the wire protocol against the local AWS endpoint in
//! `LOCAL_AWS_ENDPOINT` (the emulator): the reviews adapter and the review use cases, racing. After every
//! scenario the product's aggregate is checked against a recount of the stored reviews. Without the variable
//! the tests print why and pass without running.

use aws_sdk_dynamodb::types::{AttributeValue, ProjectionType};
use chrono::Utc;
use commerce_app::ports::{ReviewReader, ReviewWriter};
use commerce_app::services::reviews::{self, Submission};
use commerce_aws::orders::DynamoOrders;
use commerce_aws::reviews::DynamoReviews;
use commerce_demo::catalog::FIRST_PRODUCT_ID;
use commerce_domain::auth::{Caller, Role};
use commerce_domain::error::{DomainError, ErrorCode};
use commerce_domain::ids::{ProductId, ReviewId};
use commerce_domain::review::{
    Moderation, RatingCounts, Review, ReviewInput, ReviewPatch, ReviewQuery, ReviewSettings,
};
use commerce_testkit::catalog::InMemoryCatalog;
use commerce_testkit::dynamo::{create_table, local_client, local_endpoint, unique_name};
use commerce_testkit::http::demo_store;
use futures::StreamExt;
use std::sync::Arc;

/// Requests in flight at once: enough to race, few enough that the one-process emulator accepts every
/// connection.
const IN_FLIGHT: usize = 48;

async fn join_all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    futures::stream::iter(futures).buffered(IN_FLIGHT).collect().await
}

struct Fixture {
    client: aws_sdk_dynamodb::Client,
    orders_table: String,
    reviews: DynamoReviews,
    submission: Submission<InMemoryCatalog, DynamoOrders, DynamoReviews>,
}

async fn fixture() -> Option<Arc<Fixture>> {
    let client = local_client(&local_endpoint()?).await;
    let (orders, reviews) = (unique_name("orders-review-test"), unique_name("reviews-test"));
    let all = ProjectionType::All;
    create_table(&client, &orders, &[("gsi1", all.clone()), ("gsi2", all.clone()), ("gsi3", all.clone())]).await;
    create_table(
        &client,
        &reviews,
        &[("gsi1", all.clone()), ("gsi2", all.clone()), ("gsi3", all.clone()), ("gsi4", all)],
    )
    .await;
    let store = DynamoReviews::new(client.clone(), reviews).with_orders(orders.clone());
    Some(Arc::new(Fixture {
        submission: Submission {
            catalog: demo_store(),
            orders: DynamoOrders::new(client.clone(), orders.clone()),
            reviews: store.clone(),
            settings: ReviewSettings::default(),
        },
        reviews: store,
        client,
        orders_table: orders,
    }))
}

fn shopper(id: &str) -> Caller {
    Caller { user_id: id.to_owned(), email: None, roles: vec![Role::Shopper] }
}

fn admin() -> Caller {
    Caller { user_id: "admin-1".into(), email: None, roles: vec![Role::Admin] }
}

fn input(rating: u8) -> ReviewInput {
    ReviewInput { rating, title: "Good".into(), body: "Works well.".into(), display_name: None }
}

fn product() -> ProductId {
    ProductId::parse(FIRST_PRODUCT_ID).unwrap()
}

/// An order item of `customer` as the orders adapter writes it once `products` are delivered: only the
/// attributes the verified check reads.
async fn delivered_order(f: &Fixture, customer: &str, products: &[&str]) -> String {
    let order_id = commerce_domain::ids::OrderId::generate().to_string();
    let mut request = f
        .client
        .put_item()
        .table_name(&f.orders_table)
        .item("pk", AttributeValue::S(format!("ORDER#{order_id}")))
        .item("sk", AttributeValue::S("ORDER".into()))
        .item("gsi1pk", AttributeValue::S(format!("CUSTOMER#{customer}")))
        .item("gsi1sk", AttributeValue::S(format!("2026-01-01T00:00:00Z#{order_id}")));
    if !products.is_empty() {
        request =
            request.item("delivered_products", AttributeValue::Ss(products.iter().map(|p| (*p).to_owned()).collect()));
    }
    request.send().await.unwrap();
    order_id
}

async fn submit(f: &Fixture, customer: &str, rating: u8, settings: ReviewSettings) -> Result<Review, DomainError> {
    let deps =
        Submission { catalog: demo_store(), orders: f.submission.orders.clone(), reviews: f.reviews.clone(), settings };
    reviews::create_review(&deps, &shopper(customer), &product(), input(rating), Utc::now()).await
}

/// The aggregate equals a recount of the reviews now stored.
async fn assert_aggregate_matches(f: &Fixture, ids: &[ReviewId]) -> RatingCounts {
    let mut stored = Vec::new();
    for id in ids {
        stored.extend(f.reviews.get_review(id.as_str()).await.unwrap());
    }
    let counts = f.reviews.rating(FIRST_PRODUCT_ID).await.unwrap();
    assert_eq!(counts.stars, RatingCounts::recount(&stored).stars, "aggregate vs recount of {} reviews", stored.len());
    counts
}

macro_rules! fixture_or_skip {
    () => {
        match fixture().await {
            Some(f) => f,
            None => {
                eprintln!("LOCAL_AWS_ENDPOINT is not set; run under infra/with-moto.sh");
                return;
            }
        }
    };
}

#[tokio::test]
async fn twenty_concurrent_submissions_by_one_customer_make_exactly_one_review() {
    let f = fixture_or_skip!();
    delivered_order(&f, "buyer-1", &[FIRST_PRODUCT_ID]).await;
    let auto = ReviewSettings { auto_approve: true, ..ReviewSettings::default() };
    let outcomes = join_all((0..20).map(|i| {
        let f = f.clone();
        async move { submit(&f, "buyer-1", 1 + (i % 5) as u8, auto).await }
    }))
    .await;
    let created: Vec<&Review> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
    assert_eq!(created.len(), 1, "{outcomes:?}");
    assert!(created[0].verified);
    for outcome in &outcomes {
        if let Err(err) = outcome {
            assert_eq!(err.code(), ErrorCode::ReviewExists, "{err:?}");
        }
    }
    let counts = assert_aggregate_matches(&f, &[created[0].review_id.clone()]).await;
    assert_eq!(counts.count(), 1);
}

#[tokio::test]
async fn a_customer_without_a_delivered_order_is_refused_and_the_check_is_in_the_write() {
    let f = fixture_or_skip!();
    let err = submit(&f, "browser-1", 5, ReviewSettings::default()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotAVerifiedBuyer);
    // Another product's delivery does not count.
    delivered_order(&f, "browser-1", &["prd_demo-0002"]).await;
    assert_eq!(
        submit(&f, "browser-1", 5, ReviewSettings::default()).await.unwrap_err().code(),
        ErrorCode::NotAVerifiedBuyer
    );
    // The order the read found no longer shows the product when the write happens (returned in between): the
    // transaction's condition check refuses it.
    let order_id = delivered_order(&f, "returner-1", &["prd_demo-0002"]).await;
    let caller = shopper("returner-1");
    let created =
        Review::submit(product(), "s", &caller, input(4), true, ReviewSettings::default(), Utc::now()).unwrap();
    let err = f.reviews.create_review(&created, Some(&order_id)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotAVerifiedBuyer);
    assert!(f.reviews.get_review(created.next.review_id.as_str()).await.unwrap().is_none());
    // Someone else's order does not count either.
    let theirs = delivered_order(&f, "someone-else", &[FIRST_PRODUCT_ID]).await;
    assert_eq!(
        f.reviews.create_review(&created, Some(&theirs)).await.unwrap_err().code(),
        ErrorCode::NotAVerifiedBuyer
    );
    // With a delivered order: verified and pending.
    delivered_order(&f, "buyer-2", &[FIRST_PRODUCT_ID, "prd_demo-0002"]).await;
    let review = submit(&f, "buyer-2", 5, ReviewSettings::default()).await.unwrap();
    assert!(review.verified);
    assert_eq!(f.reviews.rating(FIRST_PRODUCT_ID).await.unwrap().count(), 0, "pending reviews do not count");
}

#[tokio::test]
async fn fifty_concurrent_moderation_actions_leave_the_aggregate_equal_to_a_recount() {
    let f = fixture_or_skip!();
    let open = ReviewSettings { allow_unverified: true, ..ReviewSettings::default() };
    let mut ids = Vec::new();
    for i in 0..10u8 {
        ids.push(submit(&f, &format!("author-{i}"), 1 + i % 5, open).await.unwrap().review_id);
    }
    let actions = join_all((0..50usize).map(|i| {
        let (f, id) = (f.clone(), ids[i % ids.len()].clone());
        async move {
            let now = Utc::now();
            match i % 5 {
                0 | 1 => reviews::moderate(&f.reviews, &admin(), &id, Moderation::Approve, now).await.map(|_| ()),
                2 => reviews::moderate(&f.reviews, &admin(), &id, Moderation::Reject, now).await.map(|_| ()),
                3 => {
                    let author = f.reviews.get_review(id.as_str()).await.unwrap().unwrap().author_id;
                    let patch = ReviewPatch { rating: Some(1 + (i % 4) as u8 + 1), ..ReviewPatch::default() };
                    let auto = ReviewSettings { auto_approve: true, ..open };
                    reviews::update_review(&f.reviews, auto, &shopper(&author), &id, patch, now).await.map(|_| ())
                }
                _ => reviews::moderate(&f.reviews, &admin(), &id, Moderation::Approve, now).await.map(|_| ()),
            }
        }
    }))
    .await;
    let failed: Vec<_> = actions.iter().filter_map(|a| a.as_ref().err()).collect();
    assert!(failed.is_empty(), "every action applies (lost races are retried): {failed:?}");
    let counts = assert_aggregate_matches(&f, &ids).await;
    assert!(counts.count() > 0);
    // Deleting races with approvals: still exact.
    let deletes = join_all(ids.iter().take(5).cloned().flat_map(|id| {
        let f1 = f.clone();
        let f2 = f.clone();
        let id2 = id.clone();
        [
            Box::pin(async move { reviews::delete_review(&f1.reviews, &admin(), &id).await })
                as std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), DomainError>> + Send>>,
            Box::pin(async move {
                reviews::moderate(&f2.reviews, &admin(), &id2, Moderation::Approve, Utc::now()).await.map(|_| ())
            }),
        ]
    }))
    .await;
    for outcome in deletes {
        if let Err(err) = outcome {
            assert_eq!(err.code(), ErrorCode::NotFound, "an approval after the delete finds nothing: {err:?}");
        }
    }
    assert_aggregate_matches(&f, &ids).await;
}

#[tokio::test]
async fn votes_count_once_per_user_and_the_listing_orders_by_them() {
    let f = fixture_or_skip!();
    let auto = ReviewSettings { auto_approve: true, allow_unverified: true, ..ReviewSettings::default() };
    let first = submit(&f, "writer-1", 5, auto).await.unwrap();
    let second = submit(&f, "writer-2", 3, auto).await.unwrap();
    let same_voter = join_all((0..10).map(|_| {
        let (f, id) = (f.clone(), second.review_id.clone());
        async move { reviews::vote(&f.reviews, &shopper("voter-0"), &id, Utc::now()).await }
    }))
    .await;
    assert_eq!(same_voter.iter().filter(|v| v.is_ok()).count(), 1, "{same_voter:?}");
    assert!(same_voter.iter().filter_map(|v| v.as_ref().err()).all(|e| e.code() == ErrorCode::AlreadyVoted));
    let voters = join_all((1..=12).map(|i| {
        let (f, id) = (f.clone(), second.review_id.clone());
        async move { reviews::vote(&f.reviews, &shopper(&format!("voter-{i}")), &id, Utc::now()).await }
    }))
    .await;
    assert!(voters.iter().all(|v| v.is_ok()), "{voters:?}");
    assert_eq!(f.reviews.get_review(second.review_id.as_str()).await.unwrap().unwrap().helpful, 13);
    let listed = |sort: &str, rating: Option<&str>| {
        let f = f.clone();
        let query = ReviewQuery::parse(Some(sort), rating, None, Some("1")).unwrap();
        async move { reviews::list_reviews(&f.reviews, &product(), &query).await.unwrap() }
    };
    let helpful = listed("helpful", None).await;
    assert_eq!(helpful.items[0].review_id, second.review_id);
    let page_two = {
        let query = ReviewQuery::parse(Some("helpful"), None, helpful.next_cursor.as_deref(), Some("1")).unwrap();
        reviews::list_reviews(&f.reviews, &product(), &query).await.unwrap()
    };
    assert_eq!(page_two.items[0].review_id, first.review_id);
    assert_eq!(listed("rating_desc", None).await.items[0].review_id, first.review_id);
    assert_eq!(listed("newest", Some("3")).await.items[0].review_id, second.review_id);
    let err = reviews::vote(&f.reviews, &shopper("writer-1"), &first.review_id, Utc::now()).await.unwrap_err();
    assert!(matches!(err, DomainError::Forbidden(_)), "{err:?}");
}
