//! Inventory through the real local stack: sellers setting stock, and the oversell scenarios with real
//! concurrent HTTP requests (reservations through the admin reservation routes, which call the same service
//! as the checkout saga). After every scenario the ledger invariant is checked on the scenario's own SKUs, read
//! straight from the stack's InventoryTable.

use commerce_aws::inventory::DynamoInventory;
use commerce_domain::inventory::check_invariant;
use futures::future::join_all;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use system_tests::stack;

const INVENTORY_TABLE: &str = "commerce-local-InventoryTable";

pub fn token(user: &str) -> String {
    format!("Bearer {}", stack().token(user).expect("token"))
}

/// A client of this test's own runtime (a pooled connection must not outlive the runtime that made it).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().expect("http client")
}

pub async fn call(method: reqwest::Method, path: &str, auth: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let headers: Vec<(&str, &str)> = auth.map(|auth| ("authorization", auth)).into_iter().collect();
    call_with(method, path, &headers, body).await
}

/// A request with these headers (credentials such as `authorization` or `x-order-token`).
pub async fn call_with(
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, Value) {
    let s = stack();
    let mut req = client().request(method, s.url(path));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let response = req.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `POST` an adjustment under an `Idempotency-Key`: the status, the body and whether it was a replay.
/// Posts a stock adjustment under `key`, retrying a 503 (a function timed out behind the emulator's load) with
/// the same key, as a client would: the key makes the retry safe.
pub async fn adjust(path: &str, auth: &str, key: String, body: Value) -> (u16, Value, bool) {
    let mut attempt = 0;
    loop {
        let response = client()
            .post(stack().url(path))
            .header("authorization", auth)
            .header("idempotency-key", &key)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        let replayed = response.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
        let text = response.text().await.unwrap_or_default();
        attempt += 1;
        if status != 503 || attempt == 10 {
            return (status, serde_json::from_str(&text).unwrap_or(Value::Null), replayed);
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// Unique SKUs for one scenario: `E2E-<tag>-<ulid>-<suffix>`.
pub fn skus(tag: &str, suffixes: &[&str]) -> Vec<String> {
    let run = ulid::Ulid::new().to_string();
    suffixes.iter().map(|s| format!("E2E-{tag}-{run}-{s}")).collect()
}

/// Creates a product of the demo `seller` with these variants (`{"sku", "components"?}`), price 25.00.
pub async fn product(variants: Vec<Value>) {
    priced_product(variants, json!({"amount": 2500, "currency": "USD"})).await;
}

/// Creates a product of the demo `seller` with these variants, every one at `price`.
pub async fn priced_product(variants: Vec<Value>, price: Value) {
    let variants: Vec<Value> = variants
        .into_iter()
        .map(|mut v| {
            v["price"] = price.clone();
            v["options"] = json!({"size": v["sku"].as_str().unwrap_or_default().rsplit('-').next().unwrap_or("x")});
            v
        })
        .collect();
    let body = json!({
        "title": "Inventory scenario tee", "description": "Made for a test.", "category_id": "cat_tshirts", "brand": "Acme",
        "attributes": {"fabric": "cotton", "fit": "regular"}, "images": ["https://images.example.com/e2e/tee.jpg"],
        "variants": variants
    });
    let (status, body) = call(reqwest::Method::POST, "/v1/seller/products", Some(&token("seller")), Some(body)).await;
    assert_eq!(status, 201, "{body}");
}

/// The stock-item SKUs of demo product `n` (`prd_demo-<n>`). Each scenario uses products no other scenario
/// touches; products with `n % 4 != 0` belong to the demo `seller`, the others to `seller2`.
pub fn demo_skus(n: usize) -> Vec<String> {
    let sellers =
        ["9401d12a-b391-48d2-acd7-8b81507ee8f0".to_string(), "c8aad468-ff33-4a63-9074-c888acf9888d".to_string()];
    let (_, products) = commerce_demo::catalog::catalog(&sellers).expect("demo catalog");
    products[n - 1]
        .sku_views()
        .iter()
        .filter(|v| commerce_domain::inventory::is_stock_item(v))
        .map(|v| v.sku.clone())
        .collect()
}

/// The first stock-item SKU of demo product `n`.
pub fn demo_sku(n: usize) -> String {
    demo_skus(n).remove(0)
}

/// Who may set a SKU's stock: demo products `n % 4 == 0` belong to `seller2`, the rest (and scenario SKUs) to
/// `seller`.
fn owner(sku: &str) -> &'static str {
    let demo = sku.split('-').nth(1).filter(|n| n.len() == 4).and_then(|n| n.parse::<usize>().ok());
    match demo {
        Some(n) if n % 4 == 0 && !sku.starts_with("E2E-") => "seller2",
        _ => "seller",
    }
}

/// Makes sure the demo warehouses exist (the seed creates them; an admin can too).
pub async fn warehouses() {
    for (id, region, lat, lon) in [("wh_east", "NJ", 40.5187, -74.4121), ("wh_west", "CA", 34.0633, -117.6509)] {
        let body = json!({"warehouse_id": id, "name": id, "location": {"country": "US", "region": region, "coordinates": {"latitude": lat, "longitude": lon}}});
        let (status, body) =
            call(reqwest::Method::POST, "/v1/admin/warehouses", Some(&token("admin")), Some(body)).await;
        assert!(status == 201 || status == 409, "{status} {body}");
    }
}

pub async fn set_stock(sku: &str, warehouse: &str, on_hand: i64) {
    let path = format!("/v1/seller/inventory/{sku}/{warehouse}");
    let (status, body) =
        call(reqwest::Method::PUT, &path, Some(&token(owner(sku))), Some(json!({"on_hand": on_hand}))).await;
    assert_eq!(status, 200, "{body}");
}

pub async fn stock(sku: &str) -> Value {
    let (status, body) =
        call(reqwest::Method::GET, &format!("/v1/seller/inventory/{sku}"), Some(&token(owner(sku))), None).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn at(stock: &Value, warehouse: &str, field: &str) -> i64 {
    stock["warehouses"]
        .as_array()
        .and_then(|w| w.iter().find(|w| w["warehouse_id"] == warehouse))
        .and_then(|w| w[field].as_i64())
        .unwrap_or(0)
}

pub async fn reserve(body: Value) -> (u16, Value) {
    call(reqwest::Method::POST, "/v1/admin/reservations", Some(&token("admin")), Some(body)).await
}

async fn finish(id: &str, action: &str) -> (u16, Value) {
    call(reqwest::Method::POST, &format!("/v1/admin/reservations/{id}/{action}"), Some(&token("admin")), None).await
}

/// Checks the ledger invariant for `skus` against the stack's table.
pub async fn assert_invariant(skus: &[String]) {
    let s = stack();
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&s.aws)
        .region(aws_config::Region::new(s.region.clone()))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "test"))
        .load()
        .await;
    let inventory = DynamoInventory::new(aws_sdk_dynamodb::Client::new(&config), INVENTORY_TABLE);
    let (stock, reservations) = inventory.snapshot().await.expect("scan the inventory table");
    let mine: BTreeSet<&String> = skus.iter().collect();
    let stock: Vec<_> = stock.into_iter().filter(|l| mine.contains(&l.sku)).collect();
    let reservations: Vec<_> =
        reservations.into_iter().filter(|r| r.allocations.iter().any(|a| mine.contains(&a.sku))).collect();
    assert!(!stock.is_empty(), "no stock items for {skus:?}");
    let violations = check_invariant(&stock, &reservations);
    assert!(violations.is_empty(), "{violations:?}");
}

fn count(results: &[(u16, Value)], status: u16) -> usize {
    results.iter().filter(|(s, _)| *s == status).count()
}

#[tokio::test]
async fn a_seller_sets_stock_in_two_warehouses_and_reads_it_back() {
    warehouses().await;
    let skus = vec![demo_sku(201)];
    set_stock(&skus[0], "wh_east", 12).await;
    set_stock(&skus[0], "wh_west", 5).await;
    let body = stock(&skus[0]).await;
    assert_eq!(
        (at(&body, "wh_east", "on_hand"), at(&body, "wh_west", "on_hand"), body["available"].as_i64()),
        (12, 5, Some(17))
    );
    let (status, _) = call(
        reqwest::Method::PUT,
        &format!("/v1/seller/inventory/{}/wh_east", skus[0]),
        Some(&token("seller2")),
        Some(json!({"on_hand": 1})),
    )
    .await;
    assert_eq!(status, 403, "another seller's SKU");
    let (status, body) = call(reqwest::Method::GET, "/v1/warehouses", Some(&token("seller")), None).await;
    assert_eq!(status, 200);
    assert!(body["items"].as_array().is_some_and(|w| w.len() >= 2), "{body}");
    assert_invariant(&skus).await;
}

#[tokio::test]
async fn two_hundred_concurrent_reservations_for_the_last_fifty_units_exactly_fifty_win() {
    let _heavy = system_tests::heavy_scenario().await;
    warehouses().await;
    let skus = vec![demo_sku(203)];
    set_stock(&skus[0], "wh_east", 50).await;
    set_stock(&skus[0], "wh_west", 0).await;
    let run = ulid::Ulid::new().to_string();
    let results = join_all((0..200).map(|i| {
        reserve(json!({"reservation_id": format!("last50-{run}-{i}"), "owner": "guest", "lines": [{"sku": skus[0], "quantity": 1}]}))
    }))
    .await;
    assert_eq!(
        count(&results, 201),
        50,
        "{:?}",
        results.iter().filter(|(s, _)| *s != 201 && *s != 409).take(3).collect::<Vec<_>>()
    );
    assert_eq!(count(&results, 409), 150);
    assert!(results.iter().filter(|(s, _)| *s == 409).all(|(_, b)| b["error"]["code"] == "out_of_stock"));
    let body = stock(&skus[0]).await;
    assert_eq!((at(&body, "wh_east", "reserved"), at(&body, "wh_east", "available")), (50, 0));
    assert_invariant(&skus).await;
}

#[tokio::test]
async fn two_lines_of_a_bundle_racing_for_a_shared_item_never_oversell_it() {
    warehouses().await;
    // KIT-0096-BUNDLE consumes one KIT-0076-NATURA and one KIT-0056-NATURA (all three of `seller2`); each
    // reservation also takes a KIT-0076-NATURA on its own line, so it needs 2 of that shared item: 10 units
    // cover exactly 5.
    let (bundle, shared, other) = ("KIT-0096-BUNDLE", demo_sku(76), demo_sku(56));
    assert_eq!((shared.as_str(), other.as_str()), ("KIT-0076-NATURA", "KIT-0056-NATURA"));
    for (sku, east) in [(&shared, 10), (&other, 100)] {
        set_stock(sku, "wh_east", east).await;
        set_stock(sku, "wh_west", 0).await;
    }
    let run = ulid::Ulid::new().to_string();
    let results = join_all((0..20).map(|i| {
        let lines = json!([{"sku": bundle, "quantity": 1}, {"sku": shared, "quantity": 1}]);
        reserve(json!({"reservation_id": format!("kit-{run}-{i}"), "owner": "shopper", "lines": lines}))
    }))
    .await;
    assert_eq!(count(&results, 201), 5, "{:?}", results.iter().filter(|(s, _)| *s != 201).take(2).collect::<Vec<_>>());
    let body = stock(&shared).await;
    assert_eq!((at(&body, "wh_east", "reserved"), at(&body, "wh_east", "available")), (10, 0));
    assert_eq!(at(&stock(&other).await, "wh_east", "reserved"), 5);
    assert_invariant(&[shared, other]).await;
}

#[tokio::test]
async fn a_reservation_splits_across_warehouses_and_releasing_restores_both() {
    warehouses().await;
    let skus = vec![demo_sku(205)];
    set_stock(&skus[0], "wh_east", 3).await;
    set_stock(&skus[0], "wh_west", 4).await;
    let id = format!("split-{}", ulid::Ulid::new());
    let ship_to = json!({"country": "US", "region": "CA", "coordinates": {"latitude": 37.77, "longitude": -122.42}});
    let (status, body) = reserve(
        json!({"reservation_id": id, "owner": "guest", "ship_to": ship_to, "lines": [{"sku": skus[0], "quantity": 6}]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["allocations"][0],
        json!({"sku": skus[0], "warehouse_id": "wh_west", "quantity": 4}),
        "nearest first"
    );
    assert_eq!(body["allocations"][1], json!({"sku": skus[0], "warehouse_id": "wh_east", "quantity": 2}));
    let held = stock(&skus[0]).await;
    assert_eq!((at(&held, "wh_east", "available"), at(&held, "wh_west", "available")), (1, 0));
    for _ in 0..2 {
        let (status, body) = finish(&id, "release").await;
        assert_eq!((status, body["status"].as_str()), (200, Some("released")));
    }
    let back = stock(&skus[0]).await;
    assert_eq!((at(&back, "wh_east", "available"), at(&back, "wh_west", "available")), (3, 4));
    assert_eq!((at(&back, "wh_east", "reserved"), at(&back, "wh_west", "reserved")), (0, 0));
    assert_invariant(&skus).await;
}

#[tokio::test]
async fn expired_reservations_come_back_once_by_read_and_by_the_sweeper() {
    warehouses().await;
    let skus = vec![demo_sku(206)];
    set_stock(&skus[0], "wh_east", 10).await;
    set_stock(&skus[0], "wh_west", 0).await;
    let run = ulid::Ulid::new().to_string();
    let (read_id, swept_id) = (format!("exp-read-{run}"), format!("exp-swept-{run}"));
    for (id, quantity) in [(&read_id, 2), (&swept_id, 3)] {
        let (status, body) = reserve(json!({"reservation_id": id, "owner": "guest", "ttl_seconds": 2, "lines": [{"sku": skus[0], "quantity": quantity}]})).await;
        assert_eq!(status, 201, "{body}");
    }
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;

    let (status, body) =
        call(reqwest::Method::GET, &format!("/v1/admin/reservations/{read_id}"), Some(&token("admin")), None).await;
    assert_eq!(
        (status, body["status"].as_str(), body["release_reason"].as_str()),
        (200, Some("released"), Some("expired"))
    );
    let (status, body) = finish(&read_id, "commit").await;
    assert_eq!((status, body["error"]["code"].as_str()), (410, Some("reservation_expired")));

    let event = json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
    for _ in 0..2 {
        let invoked = stack().invoke("SweepReservationsFunction", &event).await.expect("invoke the sweeper");
        assert!(invoked.function_error.is_none(), "{:?}", invoked.body);
    }
    let back = stock(&skus[0]).await;
    assert_eq!((at(&back, "wh_east", "available"), at(&back, "wh_east", "reserved")), (10, 0), "released exactly once");
    let (_, body) =
        call(reqwest::Method::GET, &format!("/v1/admin/reservations/{swept_id}"), Some(&token("admin")), None).await;
    assert_eq!(body["status"], "released");
    assert_invariant(&skus).await;
}

#[tokio::test]
async fn repeated_and_concurrent_releases_and_commits_take_effect_once() {
    warehouses().await;
    let skus = vec![demo_sku(207)];
    set_stock(&skus[0], "wh_east", 20).await;
    set_stock(&skus[0], "wh_west", 0).await;
    let run = ulid::Ulid::new().to_string();
    let ids: Vec<String> = (0..4).map(|i| format!("fin-{run}-{i}")).collect();
    for id in &ids {
        let (status, body) =
            reserve(json!({"reservation_id": id, "owner": "shopper", "lines": [{"sku": skus[0], "quantity": 2}]}))
                .await;
        assert_eq!(status, 201, "{body}");
    }
    // Reservation 0: ten concurrent commits. 1: ten concurrent releases. 2 and 3: commits and releases racing.
    let mut calls = Vec::new();
    for i in 0..10 {
        calls.push((ids[0].clone(), "commit"));
        calls.push((ids[1].clone(), "release"));
        calls.push((ids[2].clone(), if i % 2 == 0 { "commit" } else { "release" }));
        calls.push((ids[3].clone(), if i % 2 == 0 { "release" } else { "commit" }));
    }
    let results = join_all(calls.iter().map(|(id, action)| finish(id, action))).await;
    for ((id, action), (status, body)) in calls.iter().zip(&results) {
        assert!(matches!(status, 200 | 409), "{id} {action}: {status} {body}");
    }
    let mut sold = 2;
    for id in &ids[2..] {
        let (_, body) =
            call(reqwest::Method::GET, &format!("/v1/admin/reservations/{id}"), Some(&token("admin")), None).await;
        if body["status"] == "committed" {
            sold += 2;
        } else {
            assert_eq!(body["status"], "released");
        }
    }
    let after = stock(&skus[0]).await;
    assert_eq!((at(&after, "wh_east", "sold"), at(&after, "wh_east", "reserved")), (sold, 0));
    assert_eq!(at(&after, "wh_east", "on_hand"), 20 - sold);
    assert_invariant(&skus).await;
}

#[tokio::test]
async fn a_seller_adjusting_stock_while_shoppers_reserve_loses_nothing() {
    warehouses().await;
    let skus = vec![demo_sku(209)];
    set_stock(&skus[0], "wh_east", 30).await;
    set_stock(&skus[0], "wh_west", 0).await;
    let run = ulid::Ulid::new().to_string();
    let path = format!("/v1/seller/inventory/{}/wh_east/adjustments", skus[0]);
    let seller = token(owner(&skus[0]));
    let reservations = join_all((0..60).map(|i| {
        reserve(json!({"reservation_id": format!("adj-{run}-{i}"), "owner": "guest", "lines": [{"sku": skus[0], "quantity": 1}]}))
    }));
    let adjustments = join_all(
        (0..20).map(|i| adjust(&path, &seller, format!("receipt-{run}-{i}"), json!({"delta": 1, "reason": "receipt"}))),
    );
    let (reserved, adjusted) = tokio::join!(reservations, adjustments);
    // A 503 retried with its key may come back as a replay; the on-hand count below proves each landed once.
    assert!(adjusted.iter().all(|(s, _, _)| *s == 200), "{adjusted:?}");
    let won = count(&reserved, 201) as i64;
    assert_eq!(won + count(&reserved, 409) as i64, 60);
    assert!((30..=50).contains(&won), "{won}");
    let after = stock(&skus[0]).await;
    assert_eq!(at(&after, "wh_east", "on_hand"), 50, "every receipt landed");
    assert_eq!(at(&after, "wh_east", "reserved"), won);
    assert_eq!(at(&after, "wh_east", "available"), 50 - won);
    assert_invariant(&skus).await;

    let retries = join_all(
        (0..5).map(|_| adjust(&path, &seller, format!("receipt-{run}-3"), json!({"delta": 1, "reason": "receipt"}))),
    )
    .await;
    assert!(retries.iter().all(|(s, _, replayed)| *s == 200 && *replayed), "{retries:?}");
    let reused = adjust(&path, &seller, format!("receipt-{run}-3"), json!({"delta": 2, "reason": "receipt"})).await;
    assert_eq!((reused.0, reused.1["error"]["code"].clone()), (422, json!("idempotency_key_reused")));
    let missing =
        call(reqwest::Method::POST, &path, Some(&seller), Some(json!({"delta": 1, "reason": "receipt"}))).await;
    assert_eq!((missing.0, missing.1["error"]["field"].clone()), (400, json!("Idempotency-Key")));
    assert_eq!(at(&stock(&skus[0]).await, "wh_east", "on_hand"), 50, "retries counted once");
    assert_invariant(&skus).await;
}

#[tokio::test]
async fn adjustments_refuse_a_shopper_before_the_body_and_out_of_range_deltas_with_422() {
    let sku = crate::checkout::stocked_sku("ADJLIM", 5).await;
    let path = format!("/v1/seller/inventory/{sku}/wh_east/adjustments");
    let run = ulid::Ulid::new().to_string();
    let lowest = json!({"delta": i64::MIN, "reason": "damage"});

    let (status, body, _) = adjust(&path, &token("shopper"), format!("min-shopper-{run}"), lowest.clone()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{body}");
    let response = client()
        .post(stack().url(&path))
        .header("authorization", token("shopper"))
        .header("idempotency-key", format!("garbage-{run}"))
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 403, "a shopper is refused before the body is parsed");

    let seller = token("seller");
    let limit = commerce_domain::inventory::MAX_UNITS;
    for (i, body) in [
        lowest,
        json!({"delta": i64::MIN + 1, "reason": "correction"}),
        json!({"delta": i64::MAX, "reason": "receipt"}),
        json!({"delta": limit + 1, "reason": "receipt"}),
        json!({"delta": limit, "reason": "receipt"}),
    ]
    .into_iter()
    .enumerate()
    {
        let (status, answer, _) = adjust(&path, &seller, format!("range-{run}-{i}"), body.clone()).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str(), answer["error"]["field"].as_str()),
            (422, Some("validation_failed"), Some("delta")),
            "{body}: {answer}"
        );
    }
    let after = stock(&sku).await;
    assert_eq!(at(&after, "wh_east", "on_hand"), 5, "nothing was applied: {after}");
    assert_invariant(&[sku]).await;
}
