//! The webhooks table adapter over the real wire protocol, against the local AWS endpoint in
//! `LOCAL_AWS_ENDPOINT` (the emulator). Each test creates its own table. Without the variable the tests print
//! why and pass without running.

use aws_sdk_dynamodb::types::ProjectionType;
use chrono::{Duration, Utc};
use commerce_app::ports::{WebhookDeliveries, WebhookEndpoints};
use commerce_aws::webhooks::DynamoWebhooks;
use commerce_domain::catalog::PageLimit;
use commerce_domain::error::{DomainError, ErrorCode};
use commerce_domain::seller_webhook::{
    Budget, Delivery, Endpoint, EndpointRequest, SellerEvent, MAX_ENDPOINTS_PER_SELLER,
};
use commerce_domain::webhook::{EventType, WebhookSecret};
use commerce_testkit::dynamo::{create_table, local_client, local_endpoint, unique_name};
use futures::future::join_all;

async fn table() -> Option<DynamoWebhooks> {
    let client = local_client(&local_endpoint()?).await;
    let name = unique_name("webhooks-test");
    create_table(&client, &name, &[("gsi1", ProjectionType::All)]).await;
    Some(DynamoWebhooks::new(client, name))
}

fn endpoint(seller: &str, id: &str) -> Endpoint {
    let request = EndpointRequest {
        url: "https://hooks.example/in".into(),
        events: vec!["order.placed".into()],
        description: None,
    };
    let secret = WebhookSecret::from_random_bytes(&[7; 32]).unwrap();
    Endpoint::new(
        id.into(),
        seller.into(),
        request.validated().unwrap(),
        &secret,
        Budget::full(10.0, 10.0, Utc::now()),
        Utc::now(),
    )
}

fn is_conflict(err: &DomainError) -> bool {
    matches!(err, DomainError::Conflict { code: ErrorCode::ConcurrentUpdate, .. })
}

#[tokio::test]
async fn twenty_concurrent_registrations_leave_exactly_the_limit_and_deleting_frees_a_place() {
    let Some(store) = table().await else {
        eprintln!("LOCAL_AWS_ENDPOINT is not set: skipped");
        return;
    };
    let created = join_all((0..20).map(|i| {
        let store = store.clone();
        async move { store.create_endpoint(&endpoint("seller-1", &format!("wh_{i}"))).await.unwrap() }
    }))
    .await;
    assert_eq!(created.iter().filter(|c| **c).count(), MAX_ENDPOINTS_PER_SELLER);
    let stored = store.seller_endpoints("seller-1").await.unwrap();
    assert_eq!(stored.len(), MAX_ENDPOINTS_PER_SELLER);
    assert!(store.seller_endpoints("seller-2").await.unwrap().is_empty(), "another seller's are not listed");
    let gone = stored[0].webhook_id.clone();
    assert!(!store.delete_endpoint("seller-2", &gone).await.unwrap(), "another seller cannot delete it");
    assert!(store.delete_endpoint("seller-1", &gone).await.unwrap());
    assert!(!store.delete_endpoint("seller-1", &gone).await.unwrap(), "deleted once");
    assert!(store.create_endpoint(&endpoint("seller-1", "wh_new")).await.unwrap());
    assert!(!store.create_endpoint(&endpoint("seller-1", "wh_more")).await.unwrap());
    // A round trip keeps every field, the secret included.
    let read = store.endpoint("seller-1", "wh_new").await.unwrap().unwrap();
    assert_eq!(read, endpoint("seller-1", "wh_new").clone_with_times(&read));
}

trait SameTimes {
    fn clone_with_times(self, other: &Endpoint) -> Endpoint;
}

impl SameTimes for Endpoint {
    fn clone_with_times(mut self, other: &Endpoint) -> Endpoint {
        self.created_at = other.created_at;
        self.budget.updated_at = other.budget.updated_at;
        self
    }
}

#[tokio::test]
async fn versioned_saves_let_one_of_many_racing_writers_through() {
    let Some(store) = table().await else {
        eprintln!("LOCAL_AWS_ENDPOINT is not set: skipped");
        return;
    };
    let first = endpoint("seller-1", "wh_race");
    store.create_endpoint(&first).await.unwrap();
    let results = join_all((0..8).map(|i| {
        let (store, mut next) = (store.clone(), first.clone());
        async move {
            next.description = Some(format!("writer {i}"));
            next.version += 1;
            store.save_endpoint(&next, first.version).await
        }
    }))
    .await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(results.iter().filter_map(|r| r.as_ref().err()).all(is_conflict));

    let event = SellerEvent {
        event_id: "ord_1-2_abcd".into(),
        seller_id: "seller-1".into(),
        event_type: EventType::OrderPlaced,
        body: br#"{"type":"order.placed"}"#.to_vec(),
        occurred_at: Utc::now(),
    };
    let delivery = Delivery::new(&event, &first, Utc::now()).unwrap();
    assert_eq!(store.create_delivery(&delivery).await.unwrap(), None);
    let again = store.create_delivery(&delivery).await.unwrap().expect("the stored one");
    assert_eq!(again.delivery_id, delivery.delivery_id);
    let results = join_all((0..8).map(|_| {
        let (store, mut taken) = (store.clone(), delivery.clone());
        async move {
            taken.start(Utc::now());
            store.save_delivery(&taken, delivery.version).await
        }
    }))
    .await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "one worker takes the attempt");
}

#[tokio::test]
async fn deliveries_list_newest_first_page_by_page() {
    let Some(store) = table().await else {
        eprintln!("LOCAL_AWS_ENDPOINT is not set: skipped");
        return;
    };
    let owner = endpoint("seller-1", "wh_list");
    let base = Utc::now() - Duration::hours(1);
    for i in 0..5 {
        let event = SellerEvent {
            event_id: format!("evt_{i}"),
            seller_id: "seller-1".into(),
            event_type: EventType::OrderPlaced,
            body: b"{}".to_vec(),
            occurred_at: base + Duration::minutes(i),
        };
        store.create_delivery(&Delivery::new(&event, &owner, Utc::now()).unwrap()).await.unwrap();
    }
    let first = store.list_deliveries("wh_list", PageLimit::new(3).unwrap(), None).await.unwrap();
    let ids: Vec<&str> = first.items.iter().map(|d| d.event_id.as_str()).collect();
    assert_eq!(ids, ["evt_4", "evt_3", "evt_2"]);
    let rest =
        store.list_deliveries("wh_list", PageLimit::new(3).unwrap(), first.next_cursor.as_deref()).await.unwrap();
    let ids: Vec<&str> = rest.items.iter().map(|d| d.event_id.as_str()).collect();
    assert_eq!(ids, ["evt_1", "evt_0"]);
    assert!(
        store.list_deliveries("wh_other", PageLimit::new(3).unwrap(), first.next_cursor.as_deref()).await.is_err(),
        "a cursor of another endpoint's list"
    );
}
