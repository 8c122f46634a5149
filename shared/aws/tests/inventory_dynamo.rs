//! The inventory and cart adapters and services against DynamoDB over the wire (moto behind the serializing
//! launcher, `LOCAL_AWS_ENDPOINT`), with real concurrency, each test on its own uniquely named tables. Skipped,
//! saying why, when no endpoint is set.

use aws_sdk_dynamodb::types::ProjectionType;
use aws_sdk_dynamodb::Client;
use chrono::{Duration, Utc};
use commerce_app::ports::{CartStore, ReservationStore, StockReader, StockWriter, WarehouseWriter};
use commerce_app::services::cart::CartContext;
use commerce_app::services::{cart as cart_service, inventory as service};
use commerce_aws::cart::DynamoCarts;
use commerce_aws::inventory::DynamoInventory;
use commerce_domain::cart::{CartAccess, CartHolds};
use commerce_domain::error::DomainError;
use commerce_domain::error::ErrorCode;
use commerce_domain::ids::{CartId, Sku};
use commerce_domain::inventory::reservation::ReleaseReason;
use commerce_domain::inventory::{
    check_invariant, AdjustmentReason, Location, OwnerKind, ReservationLine, ReservationPolicy, ReservationRequest,
    ReservationStatus, SetStock, StockAdjustment,
};
use commerce_domain::inventory::{AdjustOutcome, AdjustmentKey, Reservation};
use commerce_testkit::cart::FixedCallers;
use commerce_testkit::catalog::InMemoryCatalog;
use commerce_testkit::dynamo::{create_table, local_client as client, local_endpoint as endpoint, unique_name};
use commerce_testkit::http::demo_store;
use std::sync::Arc;

const SKU: &str = "LAP-0001-16GB-512GB";

/// A fresh table, with the sparse reservation index `gsi1` (keys only) when `with_gsi`.
async fn table(client: &Client, prefix: &str, with_gsi: bool) -> String {
    let name = unique_name(prefix);
    let indexes: &[(&str, ProjectionType)] = if with_gsi { &[("gsi1", ProjectionType::KeysOnly)] } else { &[] };
    create_table(client, &name, indexes).await;
    name
}

/// A fresh inventory table with the demo warehouses and `east`/`west` units of `SKU`.
async fn inventory(endpoint: &str, east: i64, west: i64) -> DynamoInventory {
    let client = client(endpoint).await;
    let inventory = DynamoInventory::new(client.clone(), table(&client, "inventory", true).await);
    for warehouse in commerce_demo::inventory::warehouses() {
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
    Location { country: "US".into(), region: Some("CA".into()), coordinates: None, postal_code: None }
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
    assert!(matches!(reused, Err(DomainError::Conflict { code: ErrorCode::ReservationIdReused, .. })));
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
    assert!(matches!(below, Err(DomainError::Conflict { code: ErrorCode::StockReserved, .. })));
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

type Carts = CartContext<DynamoCarts, InMemoryCatalog, DynamoInventory, FixedCallers>;

/// Cart functions' context on fresh tables: `east`/`west` units of `SKU` (and 50 of each T-shirt in the east).
async fn carts(endpoint: &str, east: i64, west: i64, holds: bool) -> Arc<Carts> {
    let client = client(endpoint).await;
    let stock = inventory(endpoint, east, west).await;
    for sku in TSHIRTS {
        stock.set_stock(sku, "wh_east", &SetStock { on_hand: 50, safety_stock: None }).await.unwrap();
    }
    let policy = ReservationPolicy::default();
    Arc::new(CartContext {
        store: DynamoCarts::new(client.clone(), table(&client, "carts", false).await),
        catalog: demo_store(),
        stock,
        resolver: FixedCallers::default(),
        limits: commerce_domain::cart::CartLimits::default(),
        holds: if holds { CartHolds { enabled: true, policy } } else { CartHolds::off() },
    })
}

const TSHIRTS: [&str; 4] = ["TSH-0004-WHITE-S", "TSH-0004-WHITE-M", "TSH-0004-WHITE-L", "TSH-0004-WHITE-XL"];

async fn guest(ctx: &Carts) -> (String, CartAccess) {
    let created = cart_service::create_cart(&ctx.store, &CartAccess::default(), Utc::now()).await.unwrap();
    (created.cart_id, CartAccess { user_id: None, cart_token: created.cart_token })
}

fn shopper(user_id: &str) -> CartAccess {
    CartAccess { user_id: Some(user_id.into()), cart_token: None }
}

/// Units reserved of every stock item, and whether the invariant holds.
async fn reserved_units(inventory: &DynamoInventory) -> i64 {
    let (stock, reservations) = inventory.snapshot().await.unwrap();
    let violations = check_invariant(&stock, &reservations);
    assert!(violations.is_empty(), "{violations:?}");
    stock.iter().map(|l| l.reserved).sum()
}

async fn race_and_merge(holds: bool) {
    let Some(endpoint) = endpoint() else { return };
    let ctx = carts(&endpoint, 50, 50, holds).await;
    let now = Utc::now();
    let shoppers: Vec<_> = (0..8)
        .map(|_| {
            let ctx = ctx.clone();
            tokio::spawn(async move {
                cart_service::shopper_cart(&ctx.store, "u-race", Utc::now()).await.unwrap().0.cart_id
            })
        })
        .collect();
    let mut ids = Vec::new();
    for task in shoppers {
        ids.push(task.await.unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one shopper, one cart: {ids:?}");

    let (guest_id, guest_access) = guest(&ctx).await;
    ctx.set_item(&guest_access, &CartId::parse(&guest_id).unwrap(), &Sku::parse(SKU).unwrap(), 2, now).await.unwrap();
    let mut tasks = Vec::new();
    for sku in TSHIRTS {
        let (ctx, cart_id) = (ctx.clone(), ids[0].clone());
        tasks.push(tokio::spawn(async move {
            ctx.set_item(
                &shopper("u-race"),
                &CartId::parse(&cart_id).unwrap(),
                &Sku::parse(sku).unwrap(),
                1,
                Utc::now(),
            )
            .await
            .map(|_| ())
        }));
    }
    {
        let (ctx, token, guest_id) = (ctx.clone(), guest_access.cart_token.clone().unwrap(), guest_id.clone());
        let caller = commerce_domain::auth::Caller { user_id: "u-race".into(), email: None, roles: vec![] };
        tasks.push(tokio::spawn(async move {
            ctx.merge(&caller, &CartId::parse(&guest_id).unwrap(), &token, Utc::now()).await.map(|_| ())
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let merged = ctx.store.get_cart(&ids[0]).await.unwrap().unwrap();
    let mut lines: Vec<(&str, u32)> = merged.lines.iter().map(|(sku, l)| (sku.as_str(), l.quantity)).collect();
    lines.sort();
    let mut expected: Vec<(&str, u32)> = TSHIRTS.iter().map(|s| (*s, 1)).collect();
    expected.push((SKU, 2));
    expected.sort();
    assert_eq!(lines, expected, "every racing add and the merge landed");
    assert!(ctx.store.get_cart(&guest_id).await.unwrap().unwrap().merged_into.is_some());
    let reserved = reserved_units(&ctx.stock).await;
    if holds {
        let hold = merged.reservation.expect("the merged cart holds its lines");
        let hold = ctx.stock.get_reservation(&hold.id).await.unwrap().unwrap();
        assert_eq!(hold.status, ReservationStatus::Held);
        assert_eq!(hold.lines.iter().map(|l| (l.sku.as_str(), l.quantity)).collect::<Vec<_>>(), expected);
        assert_eq!(reserved, 6, "exactly the cart's units are held: nothing leaked from the races");
    } else {
        assert!(merged.reservation.is_none());
        assert_eq!(reserved, 0, "without holds, carts never touch stock");
    }
}

#[tokio::test]
async fn carts_race_and_merge_without_lost_updates() {
    race_and_merge(false).await;
}

#[tokio::test]
async fn carts_with_holds_race_and_merge_without_leaking_units() {
    race_and_merge(true).await;
}

#[tokio::test]
async fn a_cart_hold_follows_every_change_and_is_replaced_not_leaked() {
    let Some(endpoint) = endpoint() else { return };
    let ctx = carts(&endpoint, 3, 0, true).await;
    let (cart_id, access) = guest(&ctx).await;
    let now = Utc::now();

    let first =
        ctx.set_item(&access, &CartId::parse(&cart_id).unwrap(), &Sku::parse(SKU).unwrap(), 2, now).await.unwrap();
    let first_hold = first.reservation.clone().expect("a hold appears at add");
    assert_eq!(held(&ctx.stock, "wh_east").await, (1, 2));
    assert!(first.lines[0].problems.is_empty(), "held units count as sellable to their cart: {:?}", first.lines);

    let raised =
        ctx.set_item(&access, &CartId::parse(&cart_id).unwrap(), &Sku::parse(SKU).unwrap(), 3, now).await.unwrap();
    let raised_hold = raised.reservation.clone().unwrap();
    assert_ne!(raised_hold.id, first_hold.id, "every change holds under a new id");
    assert_eq!(held(&ctx.stock, "wh_east").await, (0, 3), "the last unit is added to the cart's own 2");
    let old = ctx.stock.get_reservation(&first_hold.id).await.unwrap().unwrap();
    assert_eq!((old.status, old.release_reason), (ReservationStatus::Released, Some(ReleaseReason::Replaced)));

    ctx.set_item(&access, &CartId::parse(&cart_id).unwrap(), &Sku::parse(TSHIRTS[0]).unwrap(), 4, now).await.unwrap();
    assert_eq!(reserved_units(&ctx.stock).await, 7);
    ctx.remove_item(&access, &CartId::parse(&cart_id).unwrap(), &Sku::parse(SKU).unwrap(), now).await.unwrap();
    assert_eq!(held(&ctx.stock, "wh_east").await, (3, 0));
    assert_eq!(reserved_units(&ctx.stock).await, 4);
    let emptied = ctx
        .remove_item(&access, &CartId::parse(&cart_id).unwrap(), &Sku::parse(TSHIRTS[0]).unwrap(), now)
        .await
        .unwrap();
    assert!(emptied.reservation.is_none());
    assert!(ctx.store.get_cart(&cart_id).await.unwrap().unwrap().reservation.is_none());
    assert_eq!(reserved_units(&ctx.stock).await, 0, "an empty cart holds nothing");
}

#[tokio::test]
async fn an_add_beyond_stock_leaves_cart_and_stock_unchanged() {
    let Some(endpoint) = endpoint() else { return };
    let ctx = carts(&endpoint, 2, 0, true).await;
    let (cart_id, access) = guest(&ctx).await;
    let now = Utc::now();
    let refused = ctx.set_item(&access, &CartId::parse(&cart_id).unwrap(), &Sku::parse(SKU).unwrap(), 3, now).await;
    assert!(matches!(refused, Err(DomainError::OutOfStock { ref sku }) if sku == SKU), "{refused:?}");
    let stored = ctx.store.get_cart(&cart_id).await.unwrap().unwrap();
    assert!(stored.lines.is_empty() && stored.reservation.is_none());
    assert_eq!(held(&ctx.stock, "wh_east").await, (2, 0));

    ctx.set_item(&access, &CartId::parse(&cart_id).unwrap(), &Sku::parse(SKU).unwrap(), 1, now).await.unwrap();
    let before = ctx.store.get_cart(&cart_id).await.unwrap().unwrap();
    assert!(matches!(
        ctx.set_item(&access, &CartId::parse(&cart_id).unwrap(), &Sku::parse(SKU).unwrap(), 3, now).await,
        Err(DomainError::OutOfStock { .. })
    ));
    assert_eq!(ctx.store.get_cart(&cart_id).await.unwrap().unwrap(), before, "cart unchanged");
    let hold = ctx.stock.get_reservation(&before.reservation.unwrap().id).await.unwrap().unwrap();
    assert_eq!(hold.status, ReservationStatus::Held, "the old hold is kept");
    assert_eq!(held(&ctx.stock, "wh_east").await, (1, 1));
    assert_eq!(reserved_units(&ctx.stock).await, 1);
}

#[tokio::test]
async fn concurrent_adds_hold_exactly_the_available_units() {
    let Some(endpoint) = endpoint() else { return };
    let ctx = carts(&endpoint, 3, 2, true).await;
    let mut carts = Vec::new();
    for _ in 0..10 {
        carts.push(guest(&ctx).await);
    }
    let tasks: Vec<_> = carts
        .iter()
        .cloned()
        .map(|(cart_id, access)| {
            let ctx = ctx.clone();
            tokio::spawn(async move {
                ctx.set_item(&access, &CartId::parse(&cart_id).unwrap(), &Sku::parse(SKU).unwrap(), 1, Utc::now()).await
            })
        })
        .collect();
    let mut added = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(priced) => {
                assert!(priced.reservation.is_some());
                added += 1;
            }
            Err(DomainError::OutOfStock { sku }) => assert_eq!(sku, SKU),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(added, 5, "exactly the 5 available units were added");
    let mut holding = 0;
    for (cart_id, _) in &carts {
        let cart = ctx.store.get_cart(cart_id).await.unwrap().unwrap();
        match &cart.reservation {
            Some(hold) => {
                let hold = ctx.stock.get_reservation(&hold.id).await.unwrap().unwrap();
                assert_eq!((hold.status, hold.lines[0].quantity), (ReservationStatus::Held, 1));
                holding += 1;
            }
            None => assert!(cart.lines.is_empty(), "a refused add left its cart unchanged"),
        }
    }
    assert_eq!(holding, 5);
    assert_eq!(reserved_units(&ctx.stock).await, 5, "no unit held outside the carts' holds");
}

#[tokio::test]
async fn merge_takes_over_the_guest_hold() {
    let Some(endpoint) = endpoint() else { return };
    let ctx = carts(&endpoint, 3, 0, true).await;
    let now = Utc::now();
    let (guest_id, guest_access) = guest(&ctx).await;
    let guest_hold = ctx
        .set_item(&guest_access, &CartId::parse(&guest_id).unwrap(), &Sku::parse(SKU).unwrap(), 2, now)
        .await
        .unwrap()
        .reservation
        .unwrap();
    let (shopper_cart, _) = cart_service::shopper_cart(&ctx.store, "u-merge", now).await.unwrap();
    let shopper_hold = ctx
        .set_item(
            &shopper("u-merge"),
            &CartId::parse(&shopper_cart.cart_id).unwrap(),
            &Sku::parse(SKU).unwrap(),
            1,
            now,
        )
        .await
        .unwrap()
        .reservation
        .unwrap();
    assert_eq!(held(&ctx.stock, "wh_east").await, (0, 3), "every unit is held by one of the two carts");

    let caller = commerce_domain::auth::Caller { user_id: "u-merge".into(), email: None, roles: vec![] };
    let merged = ctx
        .merge(&caller, &CartId::parse(&guest_id).unwrap(), guest_access.cart_token.as_deref().unwrap(), now)
        .await
        .unwrap();
    let hold = merged.reservation.expect("the merged lines are held");
    assert_eq!(ctx.stock.get_reservation(&hold.id).await.unwrap().unwrap().lines[0].quantity, 3);
    for old in [guest_hold.id, shopper_hold.id] {
        let old = ctx.stock.get_reservation(&old).await.unwrap().unwrap();
        assert_eq!((old.status, old.release_reason), (ReservationStatus::Released, Some(ReleaseReason::Replaced)));
    }
    assert!(ctx.store.get_cart(&guest_id).await.unwrap().unwrap().reservation.is_none());
    assert_eq!(held(&ctx.stock, "wh_east").await, (0, 3));
    assert_eq!(reserved_units(&ctx.stock).await, 3);
}

/// Checkout's reserve step for an order of `quantity` units of `SKU` from `cart_id`.
async fn reserve_order(ctx: &Carts, order_id: &str, quantity: u32, cart_id: &str) -> Reservation {
    let request = ReservationRequest {
        reservation_id: order_id.into(),
        lines: vec![ReservationLine { sku: SKU.into(), quantity }],
        ship_to: None,
        owner: OwnerKind::Guest,
        ttl_seconds: None,
    };
    let policy = ReservationPolicy::default();
    cart_service::reserve_for_order(&ctx.store, &ctx.catalog, &ctx.stock, &policy, request, cart_id, Utc::now())
        .await
        .unwrap()
}

#[tokio::test]
async fn checkout_adopts_a_matching_hold_and_commits_exactly_its_units() {
    let Some(endpoint) = endpoint() else { return };
    let ctx = carts(&endpoint, 5, 0, true).await;
    let now = Utc::now();
    let (cart_id, access) = guest(&ctx).await;
    let hold = ctx
        .set_item(&access, &CartId::parse(&cart_id).unwrap(), &Sku::parse(SKU).unwrap(), 2, now)
        .await
        .unwrap()
        .reservation
        .unwrap();
    let order = reserve_order(&ctx, "ord-adopt", 2, &cart_id).await;
    let cart_hold = ctx.stock.get_reservation(&hold.id).await.unwrap().unwrap();
    assert_eq!(cart_hold.release_reason, Some(ReleaseReason::Replaced));
    assert_eq!(order.allocations, cart_hold.allocations, "the order holds the cart's units");
    assert!(order.expires_at > hold.expires_at - Duration::seconds(1));
    assert_eq!(held(&ctx.stock, "wh_east").await, (3, 2), "adopting moved no stock");
    let again = reserve_order(&ctx, "ord-adopt", 2, &cart_id).await;
    assert_eq!(again.allocations, order.allocations, "a retried step answers the same reservation");
    assert_eq!(reserved_units(&ctx.stock).await, 2);

    service::commit(&ctx.stock, "ord-adopt", now).await.unwrap();
    commerce_app::services::checkout::clear_cart(&ctx.store, &cart_id, &[SKU.to_owned()], now).await.unwrap();
    ctx.set_item(&access, &CartId::parse(&cart_id).unwrap(), &Sku::parse(SKU).unwrap(), 1, now).await.unwrap();
    ctx.remove_item(&access, &CartId::parse(&cart_id).unwrap(), &Sku::parse(SKU).unwrap(), now).await.unwrap();
    let committed = ctx.stock.get_reservation("ord-adopt").await.unwrap().unwrap();
    assert_eq!(committed.status, ReservationStatus::Committed, "later cart changes leave the order alone");
    let level = ctx.stock.stock_levels(&[SKU.to_owned()]).await.unwrap()[SKU]
        .iter()
        .find(|l| l.warehouse_id == "wh_east")
        .cloned()
        .unwrap();
    assert_eq!((level.on_hand, level.reserved, level.sold, level.available()), (3, 0, 2, 3));
    assert_eq!(reserved_units(&ctx.stock).await, 0);
}

#[tokio::test]
async fn checkout_of_other_lines_reserves_fresh_and_releases_the_cart_hold() {
    let Some(endpoint) = endpoint() else { return };
    let ctx = carts(&endpoint, 5, 0, true).await;
    let now = Utc::now();
    let (cart_id, access) = guest(&ctx).await;
    let hold = ctx
        .set_item(&access, &CartId::parse(&cart_id).unwrap(), &Sku::parse(SKU).unwrap(), 2, now)
        .await
        .unwrap()
        .reservation
        .unwrap();
    let order = reserve_order(&ctx, "ord-fresh", 3, &cart_id).await;
    assert_eq!(order.lines[0].quantity, 3);
    let cart_hold = ctx.stock.get_reservation(&hold.id).await.unwrap().unwrap();
    assert_eq!(
        (cart_hold.status, cart_hold.release_reason),
        (ReservationStatus::Released, Some(ReleaseReason::Explicit))
    );
    assert_eq!(held(&ctx.stock, "wh_east").await, (2, 3));
    assert_eq!(reserved_units(&ctx.stock).await, 3);
}

#[tokio::test]
async fn with_holds_off_carts_leave_stock_alone() {
    let Some(endpoint) = endpoint() else { return };
    let ctx = carts(&endpoint, 2, 0, false).await;
    let (cart_id, access) = guest(&ctx).await;
    let priced = ctx
        .set_item(&access, &CartId::parse(&cart_id).unwrap(), &Sku::parse(SKU).unwrap(), 3, Utc::now())
        .await
        .unwrap();
    assert!(priced.reservation.is_none());
    assert_eq!(priced.lines[0].problems, vec![commerce_domain::cart::LineProblem::InsufficientStock { available: 2 }]);
    assert_eq!(held(&ctx.stock, "wh_east").await, (2, 0));
    assert_eq!(reserved_units(&ctx.stock).await, 0);
}

fn receipt(delta: i64) -> StockAdjustment {
    StockAdjustment { delta, reason: AdjustmentReason::Receipt }
}

fn adjustment_key(key: &str, adjustment: &StockAdjustment) -> AdjustmentKey {
    AdjustmentKey::new("seller-1", SKU, "wh_east", Some(key), adjustment).unwrap()
}

#[tokio::test]
async fn an_adjustment_applies_once_per_key() {
    let Some(endpoint) = endpoint() else { return };
    let inventory = inventory(&endpoint, 10, 0).await;
    let five = receipt(5);
    let first = inventory.adjust_stock_once(SKU, "wh_east", &five, &adjustment_key("k1", &five)).await.unwrap();
    let AdjustOutcome::Applied(level) = first else { panic!("{first:?}") };
    assert_eq!(level.on_hand, 15);
    let replay = inventory.adjust_stock_once(SKU, "wh_east", &five, &adjustment_key("k1", &five)).await.unwrap();
    assert_eq!(replay, AdjustOutcome::Replayed(commerce_domain::inventory::StockView::from(&level)));
    let six = receipt(6);
    let reused = inventory.adjust_stock_once(SKU, "wh_east", &six, &adjustment_key("k1", &six)).await.unwrap();
    assert_eq!(reused, AdjustOutcome::KeyReused);
    assert_eq!(held(&inventory, "wh_east").await, (15, 0), "a replay and a reused key change nothing");
    let other = inventory.adjust_stock_once(SKU, "wh_east", &five, &adjustment_key("k2", &five)).await.unwrap();
    assert!(matches!(other, AdjustOutcome::Applied(ref l) if l.on_hand == 20), "{other:?}");
    let damage = StockAdjustment { delta: -30, reason: AdjustmentReason::Damage };
    let refused = inventory.adjust_stock_once(SKU, "wh_east", &damage, &adjustment_key("k3", &damage)).await;
    assert!(matches!(refused, Err(DomainError::Conflict { code: ErrorCode::StockReserved, .. })));
    let smaller = StockAdjustment { delta: -3, reason: AdjustmentReason::Damage };
    let retried = inventory.adjust_stock_once(SKU, "wh_east", &smaller, &adjustment_key("k3", &smaller)).await;
    assert!(matches!(retried, Ok(AdjustOutcome::Applied(_))), "a refused adjustment did not take its key");
    assert_eq!(held(&inventory, "wh_east").await, (17, 0));
    assert_invariant(&inventory).await;
}

#[tokio::test]
async fn concurrent_posts_with_one_key_change_stock_once() {
    let Some(endpoint) = endpoint() else { return };
    let inventory = Arc::new(inventory(&endpoint, 10, 0).await);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let inventory = inventory.clone();
            tokio::spawn(async move {
                let four = receipt(4);
                inventory.adjust_stock_once(SKU, "wh_east", &four, &adjustment_key("same", &four)).await.unwrap()
            })
        })
        .collect();
    let mut applied = 0;
    for task in tasks {
        match task.await.unwrap() {
            AdjustOutcome::Applied(_) => applied += 1,
            AdjustOutcome::Replayed(view) => assert!(view.on_hand >= 14, "{view:?}"),
            AdjustOutcome::KeyReused => panic!("same body, same key"),
        }
    }
    assert_eq!(applied, 1);
    assert_eq!(held(&inventory, "wh_east").await, (14, 0));
    assert_invariant(&inventory).await;
}
