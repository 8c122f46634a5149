//! The inventory and cart adapters and services against DynamoDB over the wire (moto behind the serializing
//! launcher, `LOCAL_AWS_ENDPOINT`), with real concurrency, each test on its own uniquely named tables. Skipped,
//! saying why, when no endpoint is set.

use super::DynamoInventory;
use crate::adapters::cart::DynamoCarts;
use crate::adapters::catalog::testing::demo_store;
use crate::domain::inventory::{
    check_invariant, AdjustmentReason, Location, OwnerKind, ReservationLine, ReservationPolicy, ReservationRequest,
    ReservationStatus, SetStock, StockAdjustment,
};
use crate::error::DomainError;
use crate::ports::{CartStore, ReservationStore, StockReader, StockWriter, WarehouseWriter};
use crate::services::{cart as cart_service, inventory as service};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType,
};
use aws_sdk_dynamodb::Client;
use chrono::{Duration, Utc};
use std::sync::Arc;

const SKU: &str = "LAP-0001-16GB-512GB";

fn endpoint() -> Option<String> {
    let endpoint = std::env::var("LOCAL_AWS_ENDPOINT").ok().filter(|e| !e.is_empty());
    if endpoint.is_none() {
        eprintln!("skipped: LOCAL_AWS_ENDPOINT is not set (start infra/moto_launcher.py and point it there)");
    }
    endpoint
}

async fn client(endpoint: &str) -> Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "test"))
        .load()
        .await;
    Client::new(&config)
}

fn attr(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build().unwrap()
}

fn key(hash: &str, range: &str) -> Vec<KeySchemaElement> {
    vec![
        KeySchemaElement::builder().attribute_name(hash).key_type(KeyType::Hash).build().unwrap(),
        KeySchemaElement::builder().attribute_name(range).key_type(KeyType::Range).build().unwrap(),
    ]
}

async fn table(client: &Client, prefix: &str, with_gsi: bool) -> String {
    let name = format!("{prefix}-{}", ulid::Ulid::new().to_string().to_lowercase());
    let mut request = client
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key("pk", "sk")));
    if with_gsi {
        request = request
            .set_attribute_definitions(Some(vec![attr("pk"), attr("sk"), attr("gsi1pk"), attr("gsi1sk")]))
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name("gsi1")
                    .set_key_schema(Some(key("gsi1pk", "gsi1sk")))
                    .projection(Projection::builder().projection_type(ProjectionType::KeysOnly).build())
                    .build()
                    .unwrap(),
            );
    } else {
        request = request.set_attribute_definitions(Some(vec![attr("pk"), attr("sk")]));
    }
    request.send().await.unwrap();
    name
}

/// A fresh inventory table with the demo warehouses and `east`/`west` units of `SKU`.
async fn inventory(endpoint: &str, east: i64, west: i64) -> DynamoInventory {
    let client = client(endpoint).await;
    let inventory = DynamoInventory::new(client.clone(), table(&client, "inventory", true).await);
    for warehouse in super::demo::warehouses() {
        inventory.create_warehouse(&warehouse).await.unwrap();
    }
    for (wh, units) in [("wh_east", east), ("wh_west", west)] {
        inventory.set_stock(SKU, wh, &SetStock { on_hand: units, safety_stock: None }).await.unwrap();
    }
    inventory
}

async fn assert_invariant(inventory: &DynamoInventory) {
    let (stock, reservations) = inventory.snapshot().await.unwrap();
    let violations = check_invariant(&stock, &reservations);
    assert!(violations.is_empty(), "{violations:?}");
}

fn request(id: &str, quantity: u32, ship_to: Option<Location>) -> ReservationRequest {
    ReservationRequest {
        reservation_id: id.into(),
        lines: vec![ReservationLine { sku: SKU.into(), quantity }],
        ship_to,
        owner: OwnerKind::Guest,
        ttl_seconds: None,
    }
}

fn california() -> Location {
    Location { country: "US".into(), region: Some("CA".into()), coordinates: None }
}

async fn held(inventory: &DynamoInventory, wh: &str) -> (i64, i64) {
    let levels = inventory.stock_levels(&[SKU.to_owned()]).await.unwrap().remove(SKU).unwrap();
    let level = levels.into_iter().find(|l| l.warehouse_id == wh).unwrap();
    (level.available(), level.reserved)
}

#[tokio::test]
async fn split_reservation_releases_both_warehouses_once() {
    let Some(endpoint) = endpoint() else { return };
    let inventory = inventory(&endpoint, 5, 4).await;
    let catalog = demo_store();
    let now = Utc::now();
    let policy = ReservationPolicy::default();
    let r =
        service::reserve(&catalog, &inventory, &policy, request("split-1", 7, Some(california())), now).await.unwrap();
    assert_eq!(r.allocations.len(), 2, "{:?}", r.allocations);
    assert_eq!(r.allocations[0].warehouse_id, "wh_west", "nearest first");
    assert_eq!((held(&inventory, "wh_west").await, held(&inventory, "wh_east").await), ((0, 4), (2, 3)));
    let same =
        service::reserve(&catalog, &inventory, &policy, request("split-1", 7, Some(california())), now).await.unwrap();
    assert_eq!(same.allocations, r.allocations, "the same id is the same reservation");
    let reused = service::reserve(&catalog, &inventory, &policy, request("split-1", 1, None), now).await;
    assert!(matches!(reused, Err(DomainError::Conflict { code: "reservation_id_reused", .. })));
    assert_invariant(&inventory).await;

    service::release(&inventory, "split-1", now).await.unwrap();
    service::release(&inventory, "split-1", now).await.unwrap();
    assert_eq!((held(&inventory, "wh_west").await, held(&inventory, "wh_east").await), ((4, 0), (5, 0)));
    assert!(service::commit(&inventory, "split-1", now).await.is_err());
    assert_invariant(&inventory).await;
}

#[tokio::test]
async fn commit_twice_sells_once_and_stock_rules_hold() {
    let Some(endpoint) = endpoint() else { return };
    let inventory = inventory(&endpoint, 10, 0).await;
    let now = Utc::now();
    service::reserve(&demo_store(), &inventory, &ReservationPolicy::default(), request("c-1", 3, None), now)
        .await
        .unwrap();
    let below = inventory.set_stock(SKU, "wh_east", &SetStock { on_hand: 2, safety_stock: None }).await;
    assert!(matches!(below, Err(DomainError::Conflict { code: "stock_reserved", .. })));
    let damage = StockAdjustment { delta: -8, reason: AdjustmentReason::Damage };
    assert!(matches!(inventory.adjust_stock(SKU, "wh_east", &damage).await, Err(DomainError::Conflict { .. })));
    for _ in 0..2 {
        let r = service::commit(&inventory, "c-1", now).await.unwrap();
        assert_eq!(r.status, ReservationStatus::Committed);
    }
    let level = inventory.stock_levels(&[SKU.to_owned()]).await.unwrap()[SKU]
        .iter()
        .find(|l| l.warehouse_id == "wh_east")
        .cloned()
        .unwrap();
    assert_eq!((level.on_hand, level.reserved, level.sold, level.available()), (7, 0, 3, 7));
    assert!(service::release(&inventory, "c-1", now).await.is_err(), "a committed reservation is not released");
    assert_invariant(&inventory).await;
}

#[tokio::test]
async fn concurrent_reservations_never_oversell() {
    let Some(endpoint) = endpoint() else { return };
    let inventory = Arc::new(inventory(&endpoint, 12, 8).await);
    let catalog = Arc::new(demo_store());
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let (inventory, catalog) = (inventory.clone(), catalog.clone());
            tokio::spawn(async move {
                let policy = ReservationPolicy::default();
                service::reserve(&*catalog, &*inventory, &policy, request(&format!("race-{i}"), 1, None), Utc::now())
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => won += 1,
            Err(DomainError::OutOfStock { sku }) => assert_eq!(sku, SKU),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(won, 20);
    assert_invariant(&inventory).await;
}

#[tokio::test]
async fn concurrent_adjustments_lose_no_update() {
    let Some(endpoint) = endpoint() else { return };
    let inventory = Arc::new(inventory(&endpoint, 0, 0).await);
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let inventory = inventory.clone();
            tokio::spawn(async move {
                if i % 4 == 0 {
                    let on_hand = 100 + i64::from(i);
                    inventory
                        .set_stock("KIT-0006-NATURA", "wh_west", &SetStock { on_hand, safety_stock: None })
                        .await
                        .map(|_| ())
                } else {
                    let receipt = StockAdjustment { delta: 1, reason: AdjustmentReason::Receipt };
                    inventory.adjust_stock(SKU, "wh_east", &receipt).await.map(|_| ())
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let (available, _) = held(&inventory, "wh_east").await;
    assert_eq!(available, 30);
    assert_invariant(&inventory).await;
}

#[tokio::test]
async fn expired_reservations_are_swept_once() {
    let Some(endpoint) = endpoint() else { return };
    let inventory = inventory(&endpoint, 6, 0).await;
    let catalog = demo_store();
    let past = Utc::now() - Duration::minutes(20);
    let policy = ReservationPolicy::default();
    service::reserve(&catalog, &inventory, &policy, request("old-1", 2, None), past).await.unwrap();
    service::reserve(&catalog, &inventory, &policy, request("old-2", 1, None), past).await.unwrap();
    service::reserve(&catalog, &inventory, &policy, request("live-1", 1, None), Utc::now()).await.unwrap();
    assert_eq!(held(&inventory, "wh_east").await, (2, 4));
    let read = service::get_reservation(&inventory, "old-2", Utc::now()).await.unwrap();
    assert_eq!(read.status, ReservationStatus::Released, "an expired reservation is released on read");
    assert!(matches!(service::commit(&inventory, "old-1", Utc::now()).await, Err(DomainError::Gone { .. })));
    let report = service::sweep(&inventory, Utc::now(), 100).await.unwrap();
    assert_eq!(report.released, 1, "{report:?}");
    let again = service::sweep(&inventory, Utc::now(), 100).await.unwrap();
    assert_eq!(again.released, 0, "{again:?}");
    assert_eq!(held(&inventory, "wh_east").await, (5, 1));
    assert!(inventory.expired_reservations(Utc::now(), 10).await.unwrap().is_empty());
    assert_invariant(&inventory).await;
}

#[tokio::test]
async fn carts_race_and_merge_without_lost_updates() {
    let Some(endpoint) = endpoint() else { return };
    let client = client(&endpoint).await;
    let carts = Arc::new(DynamoCarts::new(client.clone(), table(&client, "carts", false).await));
    let stock = Arc::new(inventory(&endpoint, 50, 50).await);
    let catalog = Arc::new(demo_store());
    let limits = crate::domain::cart::CartLimits::default();
    let now = Utc::now();

    let shoppers: Vec<_> = (0..8)
        .map(|_| {
            let carts = carts.clone();
            tokio::spawn(
                async move { cart_service::shopper_cart(&*carts, "u-race", Utc::now()).await.unwrap().0.cart_id },
            )
        })
        .collect();
    let mut ids = Vec::new();
    for task in shoppers {
        ids.push(task.await.unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one shopper, one cart: {ids:?}");

    let access = crate::domain::cart::CartAccess::default();
    let guest = cart_service::create_cart(&*carts, &access, now).await.unwrap();
    let guest_access = crate::domain::cart::CartAccess { user_id: None, cart_token: guest.cart_token.clone() };
    cart_service::set_item(&*carts, &*catalog, &*stock, &guest_access, &guest.cart_id, SKU, 2, &limits, now)
        .await
        .unwrap();
    let shopper = crate::auth::Caller { user_id: "u-race".into(), email: None, roles: vec![] };
    let shopper_access = crate::domain::cart::CartAccess { user_id: Some("u-race".into()), cart_token: None };
    let skus = ["TSH-0004-WHITE-S", "TSH-0004-WHITE-M", "TSH-0004-WHITE-L", "TSH-0004-WHITE-XL"];
    let mut tasks = Vec::new();
    for sku in skus {
        let (carts, catalog, stock, access, cart_id) =
            (carts.clone(), catalog.clone(), stock.clone(), shopper_access.clone(), ids[0].clone());
        tasks.push(tokio::spawn(async move {
            cart_service::set_item(&*carts, &*catalog, &*stock, &access, &cart_id, sku, 1, &limits, Utc::now())
                .await
                .map(|_| ())
        }));
    }
    {
        let (carts, catalog, stock, token, guest_id) =
            (carts.clone(), catalog.clone(), stock.clone(), guest.cart_token.clone().unwrap(), guest.cart_id.clone());
        tasks.push(tokio::spawn(async move {
            cart_service::merge(&*carts, &*catalog, &*stock, &shopper, &guest_id, &token, &limits, Utc::now())
                .await
                .map(|_| ())
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let merged = carts.get_cart(&ids[0]).await.unwrap().unwrap();
    let mut lines: Vec<(&str, u32)> = merged.lines.iter().map(|(sku, l)| (sku.as_str(), l.quantity)).collect();
    lines.sort();
    let mut expected: Vec<(&str, u32)> = skus.iter().map(|s| (*s, 1)).collect();
    expected.push((SKU, 2));
    expected.sort();
    assert_eq!(lines, expected, "every racing add and the merge landed");
    assert!(carts.get_cart(&guest.cart_id).await.unwrap().unwrap().merged_into.is_some());
}
