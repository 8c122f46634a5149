//! Checkout through the real local stack and moto's Step Functions: the happy path, every compensation
//! (decline, payment timeout, out of stock, a reservation expiring mid-payment, a function killed mid-saga),
//! idempotency replays and conflicts, and 30 concurrent checkouts racing for 10 units.

use crate::inventory::{assert_invariant, call, product, set_stock, skus, stock, token, warehouses};
use commerce_aws::payments::SandboxProvider;
use commerce_domain::payment::PaymentStatus;
use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;
use system_tests::{eventually, stack, unique};

pub const ORDERS_TABLE: &str = "commerce-local-OrdersTable";

pub async fn aws() -> aws_config::SdkConfig {
    let s = stack();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&s.aws)
        .region(aws_config::Region::new(s.region.clone()))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "test"))
        .load()
        .await
}

/// A new shopper (its own Cognito user) with a cart holding `quantity` of `sku`.
pub async fn shopper_with_cart(sku: &str, quantity: u32) -> (String, String) {
    let shopper = token(&format!("shopper-{}", rand::random::<u32>() % 1_000_000_000));
    let (status, cart) = call(Method::POST, "/v1/carts", Some(&shopper), None).await;
    assert!(status == 201 || status == 200, "{status} {cart}");
    let cart_id = cart["cart_id"].as_str().expect("cart_id").to_owned();
    let path = format!("/v1/carts/{cart_id}/items/{sku}");
    let (status, body) = call(Method::PUT, &path, Some(&shopper), Some(json!({"quantity": quantity}))).await;
    assert_eq!(status, 200, "{body}");
    (shopper, cart_id)
}

pub fn checkout_body(cart_id: &str, method: &str) -> Value {
    json!({
        "cart_id": cart_id,
        "shipping_address": {"name": "Ada Lovelace", "line1": "1 Main St", "city": "Springfield",
                             "region": "IL", "postal_code": "62701", "country": "US"},
        "payment_method": method
    })
}

/// POST /v1/checkout as a signed-in shopper; returns status, replayed header and body.
pub async fn checkout(auth: &str, key: &str, body: &Value) -> (u16, bool, Value) {
    checkout_with(("authorization", auth), key, body).await
}

/// POST /v1/checkout with one credential header (`authorization`, or `x-cart-token` for a guest); returns
/// status, replayed header and body.
pub async fn checkout_with(credential: (&str, &str), key: &str, body: &Value) -> (u16, bool, Value) {
    let s = stack();
    let response = s
        .http()
        .post(s.url("/v1/checkout"))
        .header(credential.0, credential.1)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .expect("checkout request");
    let status = response.status().as_u16();
    let replayed = response.headers().get("idempotent-replayed").is_some();
    (status, replayed, response.json().await.unwrap_or(Value::Null))
}

/// Waits for the order to leave `pending`; returns its final view.
pub async fn settled(auth: &str, order_id: &str, limit: Duration) -> Value {
    let path = format!("/v1/orders/{order_id}");
    eventually(limit, || async {
        let (status, order) = call(Method::GET, &path, Some(auth), None).await;
        (status == 200 && order["status"] != "pending").then_some(order)
    })
    .await
    .unwrap_or_else(|| panic!("order {order_id} still pending after {limit:?}\n{}", tail(&stack().log())))
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

/// A fresh SKU of the demo seller with `units` in wh_east.
pub async fn stocked_sku(tag: &str, units: i64) -> String {
    warehouses().await;
    let sku = skus(tag, &["M"]).remove(0);
    product(vec![json!({"sku": sku})]).await;
    set_stock(&sku, "wh_east", units).await;
    sku
}

async fn available(sku: &str) -> i64 {
    stock(sku).await["available"].as_i64().unwrap_or(-1)
}

async fn sandbox_payment(order_id: &str) -> Option<commerce_domain::payment::Payment> {
    let config = aws().await;
    let sandbox = SandboxProvider::new(
        aws_sdk_dynamodb::Client::new(&config),
        ORDERS_TABLE,
        Duration::from_millis(1),
        Duration::from_millis(1),
    );
    sandbox.find_for_order(order_id).await.expect("sandbox lookup")
}

pub async fn placed(sku: &str, quantity: u32, method: &str) -> (String, String, Value) {
    let (shopper, cart_id) = shopper_with_cart(sku, quantity).await;
    let key = unique("key");
    let (status, replayed, body) = checkout(&shopper, &key, &checkout_body(&cart_id, method)).await;
    assert_eq!((status, replayed), (202, false), "{body}");
    assert_eq!(body["status"], "pending");
    let order_id = body["order_id"].as_str().expect("order_id").to_owned();
    (shopper, order_id, json!({"key": key, "cart_id": cart_id}))
}

#[tokio::test]
async fn the_approving_card_confirms_within_seconds_and_replays_return_the_same_order() {
    let sku = stocked_sku("CHK", 5).await;
    let (shopper, cart_id) = shopper_with_cart(&sku, 2).await;
    let key = unique("key");
    let mut body = checkout_body(&cart_id, "pm_card_visa");
    body["total"] = json!({"amount": 1, "currency": "USD"});
    let started = std::time::Instant::now();
    let (status, _, accepted) = checkout(&shopper, &key, &body).await;
    assert_eq!(status, 202, "{accepted}");
    let order_id = accepted["order_id"].as_str().expect("order_id").to_owned();

    let order = settled(&shopper, &order_id, Duration::from_secs(30)).await;
    println!("checkout confirmed in {:?}", started.elapsed());
    assert_eq!(order["status"], "confirmed", "{order}");
    assert_eq!(order["total"], json!({"amount": 5000, "currency": "USD"}), "priced server-side");
    let kinds: Vec<&str> = order["events"].as_array().unwrap().iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(kinds, ["placed", "confirmed"]);
    assert_eq!(available(&sku).await, 3);
    let after = stock(&sku).await;
    assert_eq!(after["sold"].as_i64().or_else(|| after["warehouses"][0]["sold"].as_i64()), Some(2), "{after}");

    let (status, replayed, again) = checkout(&shopper, &key, &body).await;
    assert_eq!((status, replayed, again["order_id"].as_str()), (202, true, Some(order_id.as_str())));
    let other = checkout_body(&cart_id, "pm_card_mastercard");
    let (status, _, reused) = checkout(&shopper, &key, &other).await;
    assert_eq!((status, reused["error"]["code"].as_str()), (422, Some("idempotency_key_reused")));

    let (status, mine) = call(Method::GET, "/v1/me/orders", Some(&shopper), None).await;
    assert_eq!(status, 200);
    assert_eq!(mine["items"][0]["order_id"], order_id.as_str(), "{mine}");
    let (status, _) = call(Method::GET, &format!("/v1/orders/{order_id}"), Some(&token("shopper2")), None).await;
    assert_eq!(status, 404, "another shopper cannot read it");
    let (status, cart) = call(Method::GET, &format!("/v1/carts/{cart_id}"), Some(&shopper), None).await;
    assert!(status == 404 || cart["lines"].as_array().is_some_and(Vec::is_empty), "the cart is cleared: {cart}");

    let config = aws().await;
    let payment = sandbox_payment(&order_id).await.expect("authorized at the provider");
    assert_eq!((payment.status, payment.amount.amount), (PaymentStatus::Authorized, 5000));
    assert_eq!(order["events"][1]["payment_id"], payment.payment_id.as_str(), "the order names its payment");
    let delivered = eventually(Duration::from_secs(20), || async {
        let out = aws_sdk_dynamodb::Client::new(&config)
            .query()
            .table_name(ORDERS_TABLE)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(
                ":pk",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("NOTIFY#{order_id}")),
            )
            .send()
            .await
            .ok()?;
        (out.count() == 1).then_some(())
    })
    .await;
    assert!(delivered.is_some(), "OrderPlaced reached the notification consumer once");
    assert_invariant(&[sku]).await;
}

#[tokio::test]
async fn a_declined_card_fails_the_order_with_payment_declined_and_returns_the_stock() {
    let sku = stocked_sku("DCL", 3).await;
    let (shopper, order_id, _) = placed(&sku, 2, "pm_card_visa_chargeDeclined").await;
    let order = settled(&shopper, &order_id, Duration::from_secs(30)).await;
    assert_eq!(
        (order["status"].as_str(), order["failure_reason"].as_str()),
        (Some("failed"), Some("payment_declined")),
        "{order}"
    );
    assert_eq!(available(&sku).await, 3, "the reservation was released");
    assert!(sandbox_payment(&order_id).await.is_none(), "a declined card leaves no authorization");
    assert_invariant(&[sku]).await;
}

#[tokio::test]
async fn insufficient_funds_fail_with_payment_declined() {
    let sku = stocked_sku("NSF", 1).await;
    let (shopper, order_id, _) = placed(&sku, 1, "pm_card_visa_chargeDeclinedInsufficientFunds").await;
    let order = settled(&shopper, &order_id, Duration::from_secs(30)).await;
    assert_eq!(order["failure_reason"], "payment_declined", "{order}");
    assert_eq!(available(&sku).await, 1);
}

#[tokio::test]
async fn a_payment_timeout_voids_the_lost_authorization_and_fails_with_payment_error() {
    let sku = stocked_sku("TMO", 2).await;
    let (shopper, order_id, _) = placed(&sku, 1, "pm_sandbox_timeout").await;
    let order = settled(&shopper, &order_id, Duration::from_secs(60)).await;
    assert_eq!(
        (order["status"].as_str(), order["failure_reason"].as_str()),
        (Some("failed"), Some("payment_error")),
        "{order}"
    );
    let payment = sandbox_payment(&order_id).await.expect("the provider did authorize");
    assert_eq!(payment.status, PaymentStatus::Voided, "no authorization is left open");
    assert_eq!(available(&sku).await, 2);
    assert_invariant(&[sku]).await;
}

#[tokio::test]
async fn a_provider_error_is_retried_then_fails_with_payment_error() {
    let sku = stocked_sku("ERR", 2).await;
    let (shopper, order_id, _) = placed(&sku, 1, "pm_sandbox_error").await;
    let order = settled(&shopper, &order_id, Duration::from_secs(60)).await;
    assert_eq!(order["failure_reason"], "payment_error", "{order}");
    assert_eq!(available(&sku).await, 2);
}

#[tokio::test]
async fn out_of_stock_at_reservation_fails_without_touching_payment() {
    let sku = stocked_sku("OOS", 1).await;
    let (shopper, order_id, _) = placed(&sku, 2, "pm_card_visa").await;
    let order = settled(&shopper, &order_id, Duration::from_secs(30)).await;
    assert_eq!(order["failure_reason"], "out_of_stock", "{order}");
    assert!(sandbox_payment(&order_id).await.is_none(), "no charge without stock");
    assert_eq!(available(&sku).await, 1);
}

#[tokio::test]
async fn a_function_killed_mid_authorization_is_retried_into_exactly_one_authorization() {
    let sku = stocked_sku("KIL", 2).await;
    let (shopper, order_id, _) = placed(&sku, 1, "pm_sandbox_hang_once").await;
    let order = settled(&shopper, &order_id, Duration::from_secs(90)).await;
    assert_eq!(order["status"], "confirmed", "{order}");
    let payment = sandbox_payment(&order_id).await.expect("authorized");
    assert_eq!((payment.status, payment.amount.amount), (PaymentStatus::Authorized, 2500));
    assert_eq!(available(&sku).await, 1);
}

#[tokio::test]
async fn a_reservation_expiring_mid_payment_voids_and_fails_with_expired() {
    let sku = stocked_sku("EXP", 2).await;
    let (shopper, order_id, _) = placed(&sku, 1, "pm_sandbox_slow").await;
    // While the slow authorization runs, the hold runs out: its expiry is moved into the past.
    let config = aws().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let expired = eventually(Duration::from_secs(10), || {
        let client = client.clone();
        let order_id = order_id.clone();
        async move { crate::checkout::expire_reservation(&client, &order_id).await.then_some(()) }
    })
    .await;
    assert!(expired.is_some(), "the reservation was found and expired");
    let order = settled(&shopper, &order_id, Duration::from_secs(60)).await;
    assert_eq!(
        (order["status"].as_str(), order["failure_reason"].as_str()),
        (Some("failed"), Some("expired")),
        "{order}"
    );
    let payment = sandbox_payment(&order_id).await.expect("authorized before the commit failed");
    assert_eq!(payment.status, PaymentStatus::Voided);
    assert_eq!(available(&sku).await, 2, "the expired hold's units are back");
    assert_invariant(&[sku]).await;
}

/// Moves a held reservation's expiry into the past (as the clock would); true once done.
pub async fn expire_reservation(client: &aws_sdk_dynamodb::Client, reservation_id: &str) -> bool {
    use aws_sdk_dynamodb::types::AttributeValue;
    let scan = client
        .scan()
        .table_name("commerce-local-InventoryTable")
        .filter_expression("contains(pk, :id)")
        .expression_attribute_values(":id", AttributeValue::S(reservation_id.to_owned()))
        .send()
        .await;
    let Ok(scan) = scan else { return false };
    let Some(item) = scan.items().first() else {
        return false;
    };
    let mut item = item.clone();
    let past = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut changed = false;
    for (name, value) in item.iter_mut() {
        if name.contains("expires") {
            if let AttributeValue::S(_) = value {
                *value = AttributeValue::S(past.clone());
                changed = true;
            } else if let AttributeValue::N(_) = value {
                *value = AttributeValue::N((chrono::Utc::now().timestamp() - 60).to_string());
                changed = true;
            }
        }
    }
    changed && client.put_item().table_name("commerce-local-InventoryTable").set_item(Some(item)).send().await.is_ok()
}

#[tokio::test]
async fn thirty_concurrent_checkouts_for_ten_units_confirm_exactly_ten() {
    let _heavy = system_tests::heavy_scenario().await;
    let sku = stocked_sku("RACE", 10).await;
    let shoppers = join_all((0..30).map(|_| shopper_with_cart(&sku, 1))).await;
    let started = std::time::Instant::now();
    let accepted = join_all(shoppers.iter().map(|(shopper, cart_id)| async move {
        let key = unique("race");
        let request = checkout_body(cart_id, "pm_card_visa");
        let (mut status, _, mut body) = checkout(shopper, &key, &request).await;
        // A client retries 503 and 409 with the same key (the emulator is slow under 30 cold starts).
        for _ in 0..30 {
            if status != 503 && status != 409 {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            (status, _, body) = checkout(shopper, &key, &request).await;
        }
        assert_eq!(status, 202, "{body}");
        (shopper.clone(), body["order_id"].as_str().unwrap_or_default().to_owned())
    }))
    .await;
    let orders = join_all(accepted.iter().map(|(shopper, id)| settled(shopper, id, Duration::from_secs(180)))).await;
    println!("30 checkouts settled in {:?}", started.elapsed());
    let confirmed = orders.iter().filter(|o| o["status"] == "confirmed").count();
    let out_of_stock = orders.iter().filter(|o| o["failure_reason"] == "out_of_stock").count();
    assert_eq!((confirmed, out_of_stock), (10, 20), "{orders:?}");
    for (order, (_, id)) in orders.iter().zip(&accepted) {
        let payment = sandbox_payment(id).await;
        if order["status"] == "confirmed" {
            assert_eq!(payment.map(|p| p.status), Some(PaymentStatus::Authorized));
        } else {
            assert!(payment.is_none_or(|p| !p.status.holds_funds()), "no authorization left open for {id}");
        }
    }
    assert_eq!(available(&sku).await, 0);
    assert_invariant(&[sku]).await;
}

/// Calls a Step Functions action on the local AWS endpoint (JSON 1.0 protocol).
async fn sfn(action: &str, body: Value) -> Value {
    let s = stack();
    let response = s
        .http()
        .post(&s.aws)
        .header("x-amz-target", format!("AWSStepFunctions.{action}"))
        .header("content-type", "application/x-amz-json-1.0")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=test/20250101/us-east-1/states/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(body.to_string())
        .send()
        .await
        .expect("step functions call");
    response.json().await.unwrap_or(Value::Null)
}

/// Sizes of the items of `table` whose `pk` contains `needle`, by `pk` then `sk`.
async fn items(client: &aws_sdk_dynamodb::Client, table: &str, needle: &str) -> Vec<(String, usize)> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let out = client
        .scan()
        .table_name(table)
        .filter_expression("contains(pk, :n)")
        .expression_attribute_values(":n", AttributeValue::S(needle.to_owned()))
        .send()
        .await
        .expect("scan");
    out.items()
        .iter()
        .map(|item| {
            let sk = item.get("sk").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            (sk, commerce_aws::inventory::item_size(item))
        })
        .collect()
}

/// Size of the item whose `sk` starts with `prefix` (0 if none).
fn size(items: &[(String, usize)], prefix: &str) -> usize {
    items.iter().filter(|(sk, _)| sk.starts_with(prefix)).map(|(_, b)| *b).max().unwrap_or(0)
}

/// Write units of one write of an item of `bytes`: 1 per started KB (at least 1); twice in a transaction.
fn wcu(bytes: usize) -> f64 {
    bytes.div_ceil(1024).max(1) as f64
}

/// Read units of one strongly consistent read of `bytes`: 1 per started 4 KB (eventually consistent: half).
fn rcu(bytes: usize) -> f64 {
    bytes.div_ceil(4096).max(1) as f64
}

/// The invocations of one function in the stack's `REPORT` lines.
#[derive(Default)]
struct Billed {
    invocations: usize,
    duration_ms: f64,
    billed_ms: u64,
    memory_mb: u64,
    peak_mb: Option<u64>,
}

impl Billed {
    fn gb_s(&self) -> f64 {
        self.billed_ms as f64 / 1000.0 * self.memory_mb as f64 / 1024.0
    }
}

/// Sums the `REPORT function=.. request_id=.. duration_ms=.. billed_ms=.. memory_mb=.. max_memory_mb=..` lines
/// the local Lambda service logs after every invocation, by function.
fn billed_by_function(log: &str) -> std::collections::BTreeMap<String, Billed> {
    let mut by_function = std::collections::BTreeMap::<String, Billed>::new();
    for line in log.lines() {
        let Some((_, report)) = line.split_once(" REPORT ") else { continue };
        let fields: std::collections::HashMap<&str, &str> =
            report.split_whitespace().filter_map(|f| f.split_once('=')).collect();
        let Some(function) = fields.get("function") else { continue };
        let b = by_function.entry((*function).to_owned()).or_default();
        b.invocations += 1;
        b.duration_ms += fields.get("duration_ms").and_then(|v| v.parse::<f64>().ok()).unwrap_or_default();
        b.billed_ms += fields.get("billed_ms").and_then(|v| v.parse::<u64>().ok()).unwrap_or_default();
        b.memory_mb = fields.get("memory_mb").and_then(|v| v.parse().ok()).unwrap_or(b.memory_mb);
        if let Some(mb) = fields.get("max_memory_mb").and_then(|v| v.parse::<u64>().ok()) {
            b.peak_mb = Some(b.peak_mb.map_or(mb, |p| p.max(mb)));
        }
    }
    by_function
}
/// `make bench` (checkout): $ per 1M orders from counts measured on real checkouts through the local stack.
/// Lambda invocations, billed durations, configured and peak memory come from the `REPORT` lines the local
/// Lambda service logs (duration from the event's hand-over to the function's response, as Lambda bills it);
/// state transitions and the Express executions' durations from the executions' histories; DynamoDB units from the sizes of the items these checkouts left,
/// applied to the code's write pattern with AWS's rules (the emulator reports no usable ConsumedCapacity):
/// 1 WCU per started KB, twice per transactional item, one index write per GSI entry written or removed;
/// 1 RCU per 4 KB strongly consistent, half eventually consistent. The sandbox provider's own items are left
/// out (Stripe keeps that state in production). Prints; asserts only that every checkout confirmed.
#[tokio::test]
#[ignore = "benchmark: cargo test -p system-tests --test e2e -- --ignored cost_per_million_orders --nocapture"]
async fn cost_per_million_orders() {
    const ORDERS: usize = 10;
    const SAGA: [&str; 3] =
        ["CheckoutReserveStockFunction", "CheckoutAuthorizePaymentFunction", "CheckoutConfirmOrderFunction"];
    const COMPENSATIONS: [&str; 3] =
        ["CheckoutReleaseStockFunction", "CheckoutVoidPaymentFunction", "CheckoutFailOrderFunction"];
    const API: [&str; 3] = ["CheckoutFunction", "GetOrderFunction", "NotifyOrderEventsFunction"];
    let sku = stocked_sku("COST", ORDERS as i64).await;
    // A fresh stack spends its first seconds indexing the seeded catalog and stock for search (stream batches
    // of ~1,700 items, a Query per stock item). On AWS that would not slow the checkout path's DynamoDB calls;
    // in the emulator every table request waits behind it (one lock, one Python core), so the measured orders
    // would pay for the seed. Start once no function has run for 3 s (at most 120 s).
    let settling = std::time::Instant::now();
    let reports = || stack().log().matches(" REPORT ").count();
    let (mut seen, mut quiet_since) = (reports(), std::time::Instant::now());
    let give_up = std::time::Instant::now() + Duration::from_secs(120);
    while quiet_since.elapsed() < Duration::from_secs(3) && std::time::Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if reports() != seen {
            (seen, quiet_since) = (reports(), std::time::Instant::now());
        }
    }
    let settled_s = settling.elapsed().as_secs_f64();
    // The measured run's window is the part of the stack's log (append-only) written from here until every
    // measured function has gone quiet after the last order confirmed. Only this test runs (the filter selects
    // it alone) and the shoppers' cart calls run other functions, so within the window the REPORT lines of the
    // checkout path's functions are exactly the measured orders' invocations.
    let log_start = stack().log().len();
    let mut placed = Vec::new();
    let mut polls = 0usize;
    let mut checkout_ms = Vec::new();
    for _ in 0..ORDERS {
        let (shopper, cart_id) = shopper_with_cart(&sku, 1).await;
        let key = unique("cost");
        let started = std::time::Instant::now();
        let (status, _, body) = checkout(&shopper, &key, &checkout_body(&cart_id, "pm_card_visa")).await;
        checkout_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(status, 202, "{body}");
        let order_id = body["order_id"].as_str().unwrap_or_default().to_owned();
        let path = format!("/v1/orders/{order_id}");
        loop {
            polls += 1;
            let (_, order) = call(Method::GET, &path, Some(&shopper), None).await;
            if order["status"] != "pending" {
                assert_eq!(order["status"], "confirmed", "{order}");
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        placed.push((order_id, key, cart_id));
    }
    let measured = |log: &str| {
        let by_function = billed_by_function(&log[log_start..]);
        SAGA.iter().chain(&COMPENSATIONS).chain(&API).map(|f| by_function.get(*f).map_or(0, |b| b.invocations)).sum()
    };
    let (mut seen, mut quiet_since) = (measured(&stack().log()), std::time::Instant::now());
    let give_up = std::time::Instant::now() + Duration::from_secs(30);
    while quiet_since.elapsed() < Duration::from_secs(3) && std::time::Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now: usize = measured(&stack().log());
        if now != seen {
            (seen, quiet_since) = (now, std::time::Instant::now());
        }
    }
    let billed = billed_by_function(&stack().log()[log_start..]);
    let none = Billed::default();
    let of = |f: &str| billed.get(f).unwrap_or(&none);

    let machine = "arn:aws:states:us-east-1:123456789012:stateMachine:commerce-local-CheckoutStateMachine";
    let executions = sfn("ListExecutions", json!({"stateMachineArn": machine, "maxResults": 1000})).await;
    let (mut transitions, mut task_invocations, mut task_seconds, mut express_seconds) = (0usize, 0usize, 0f64, 0f64);
    for (order_id, _, _) in &placed {
        let name = format!("checkout-{}", &order_id[4..]);
        let arn = executions["executions"]
            .as_array()
            .and_then(|e| e.iter().find(|x| x["name"] == name.as_str()))
            .and_then(|x| x["executionArn"].as_str())
            .unwrap_or_default()
            .to_owned();
        let history = sfn("GetExecutionHistory", json!({"executionArn": arn, "maxResults": 1000})).await;
        let events = history["events"].as_array().cloned().unwrap_or_default();
        let mut started_at = None;
        let stamps = events.iter().filter_map(|e| e["timestamp"].as_f64());
        let (first, last) = stamps.fold((f64::MAX, f64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
        // Express bills each execution's duration rounded up to the next 100 ms.
        express_seconds += ((last - first).max(0.0) * 10.0).ceil() / 10.0;
        for event in &events {
            let kind = event["type"].as_str().unwrap_or_default();
            let at = event["timestamp"].as_f64().unwrap_or_default();
            if kind.ends_with("StateEntered") {
                transitions += 1;
            }
            if kind == "TaskStarted" && event["taskStartedEventDetails"]["resourceType"] == "lambda" {
                task_invocations += 1;
                started_at = Some(at);
            }
            if kind == "TaskSucceeded" || kind == "TaskFailed" {
                if let Some(start) = started_at.take() {
                    task_seconds += (at - start).max(0.0);
                }
            }
        }
    }

    let config = aws().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let (mut writes, mut reads) = (0f64, 0f64);
    let mut sizes = std::collections::BTreeMap::<&str, usize>::new();
    let stock_items = items(&client, "commerce-local-InventoryTable", &sku).await;
    let stock = size(&stock_items, "WH#");
    let stock_all: usize = stock_items.iter().filter(|(sk, _)| sk.starts_with("WH#")).map(|(_, b)| *b).sum();
    for (order_id, _, cart_id) in &placed {
        let order = items(&client, ORDERS_TABLE, &format!("ORDER#{order_id}")).await;
        let (order_item, part) = (size(&order, "ORDER"), size(&order, "SELLER#"));
        let notify = size(&items(&client, ORDERS_TABLE, &format!("NOTIFY#{order_id}")).await, "");
        let reservation = size(&items(&client, "commerce-local-InventoryTable", &format!("RES#{order_id}")).await, "");
        let cart = size(&items(&client, "commerce-local-CartsTable", cart_id).await, "CART");
        let sellers = order.iter().filter(|(sk, _)| sk.starts_with("SELLER#")).count() as f64;
        for (name, bytes) in [
            ("order", order_item),
            ("seller part", part),
            ("reservation", reservation),
            ("stock", stock),
            ("cart", cart),
            ("notification", notify),
        ] {
            let max = sizes.entry(name).or_default();
            *max = (*max).max(bytes);
        }
        // checkout: the order item put, which is the Idempotency-Key's record too (the item as it ends is an
        // upper bound of its first size), and its gsi1 entry (keys + summary).
        writes += wcu(order_item) + 1.0;
        // reserve: transaction of the reservation put (+ its KEYS_ONLY gsi1 entry) and one stock update.
        writes += 2.0 * wcu(reservation) + 1.0 + 2.0 * wcu(stock);
        // authorize: nothing on our side (the provider keeps the authorization).
        // confirm step: commit transaction (reservation update, its gsi1 entry removed, stock update); the order
        // item's conditional update (+ gsi1 summary); each seller part put (+ gsi2 entry); the cart put.
        writes += 2.0 * wcu(reservation) + 1.0 + 2.0 * wcu(stock);
        writes += wcu(order_item) + 1.0 + sellers * (wcu(part) + wcu(part));
        writes += wcu(cart);
        // the notification consumer's delivery record.
        writes += wcu(notify);
        // checkout: cart (consistent), catalog batch (eventually), order lookup (consistent).
        reads += rcu(cart) + 0.5 + rcu(order_item);
        // reserve: catalog batch, the SKU's stock items (one consistent Query), warehouses (one Query).
        reads += 0.5 + rcu(stock_all) + 1.0;
        // confirm step: reservation, order item, cart (all consistent); then the client's one order read.
        reads += rcu(reservation) + rcu(order_item) + rcu(cart) + rcu(order_item);
    }
    let n = ORDERS as f64;
    let saga_invocations: usize = SAGA.iter().chain(&COMPENSATIONS).map(|f| of(f).invocations).sum();
    let saga_billed_ms: u64 = SAGA.iter().chain(&COMPENSATIONS).map(|f| of(f).billed_ms).sum();
    let saga_gb_s = SAGA.iter().chain(&COMPENSATIONS).map(|f| of(f).gb_s()).sum::<f64>() / n;
    let (checkout_fn, order_read, notify) =
        (of("CheckoutFunction"), of("GetOrderFunction"), of("NotifyOrderEventsFunction"));
    // The client polled the order until it left `pending`; a shopper is charged one read, at the reads' mean.
    let order_read_gb_s =
        if order_read.invocations > 0 { order_read.gb_s() / order_read.invocations as f64 } else { 0.0 };
    let api_gb_s = (checkout_fn.gb_s() + notify.gb_s()) / n + order_read_gb_s;
    let avg_checkout_s = checkout_ms.iter().sum::<f64>() / n / 1000.0;
    let lambda_requests = (saga_invocations + checkout_fn.invocations + notify.invocations) as f64 / n + 1.0;
    let build = std::env::var("E2E_BIN_DIR").map_or_else(|_| "debug build".to_owned(), |d| format!("binaries in {d}"));
    let rows = [
        ("API Gateway HTTP API (checkout + one order read)", 2.0, 1.00),
        ("Lambda requests (checkout, saga steps, notification, order read)", lambda_requests, 0.20),
        ("Lambda GB-s, saga steps (billed duration x memory)", saga_gb_s, 0.0000133334 * 1e6),
        ("Lambda GB-s, checkout + notification + one order read", api_gb_s, 0.0000133334 * 1e6),
        ("Step Functions Express: executions", 1.0, 1.00),
        ("Step Functions Express: 64 MB x execution duration (GB-s)", express_seconds / n * 0.0625, 0.00001667 * 1e6),
        ("DynamoDB write units", writes / n, 0.625),
        ("DynamoDB read units", reads / n, 0.125),
        ("SQS requests (send, receive, delete)", 3.0, 0.40),
    ];
    println!(
        "checkout cost over {ORDERS} confirmed orders through the local stack ({build}; measured after the stack's \
         startup indexing settled, {settled_s:.0} s; durations include the emulator's DynamoDB latency: an upper bound)"
    );
    println!(
        "  measured: {:.1} state transitions/order, {:.1} saga Lambda invocations/order, {:.1} ms saga Lambda billed/order \
         ({:.0} ms task time in the emulator's histories), {:.0} ms Express execution/order, {:.0} ms checkout API, {:.1} status polls/order",
        transitions as f64 / n,
        saga_invocations as f64 / n,
        saga_billed_ms as f64 / n,
        task_seconds / n * 1000.0,
        express_seconds / n * 1000.0,
        avg_checkout_s * 1000.0,
        polls as f64 / n
    );
    assert_eq!(task_invocations, saga_invocations, "every saga task in the histories has its REPORT line");
    println!(
        "  {:<34} {:>7} {:>12} {:>10} {:>10} {:>12}",
        "function (REPORT lines)", "invoked", "mean ms", "billed ms", "memory MB", "peak RSS MB"
    );
    for f in SAGA.iter().chain(&COMPENSATIONS).chain(&API) {
        let b = of(f);
        if b.invocations == 0 {
            continue;
        }
        let peak = b.peak_mb.map_or("n/a".to_owned(), |mb| mb.to_string());
        println!(
            "  {f:<34} {:>7} {:>12.2} {:>10} {:>10} {peak:>12}",
            b.invocations,
            b.duration_ms / b.invocations as f64,
            b.billed_ms,
            b.memory_mb
        );
    }
    let sizes: Vec<String> = sizes.iter().map(|(name, bytes)| format!("{name} {bytes} B")).collect();
    println!("  largest items written: {}", sizes.join(", "));
    let mut total = 0.0;
    for (name, per_order, dollars_per_million_units) in rows {
        let cost = per_order * dollars_per_million_units;
        total += cost;
        println!("  {name:<66} {per_order:>8.3} per order  ${cost:>6.2} per 1M orders");
    }
    println!(
        "  {:<66} {:>8}            ${total:>6.2} per 1M orders (Standard would add ${:.2} in transitions)",
        "total (Express)",
        "",
        transitions as f64 / n * 25.0
    );
}

/// POST /v1/checkout as a guest holding `cart_token`; returns status and body.
async fn guest_checkout(cart_token: &str, key: &str, body: &Value) -> (u16, Value) {
    let response = crate::inventory::client()
        .post(stack().url("/v1/checkout"))
        .header("x-cart-token", cart_token)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .expect("checkout request");
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_guest_cart_merged_into_a_shopper_cart_cannot_be_checked_out_with_its_token() {
    let sku = stocked_sku("MRG", 4).await;
    let (status, guest) = call(Method::POST, "/v1/carts", None, None).await;
    assert_eq!(status, 201, "{guest}");
    let (cart_id, cart_token) = (guest["cart_id"].as_str().unwrap(), guest["cart_token"].as_str().unwrap());
    let response = crate::inventory::client()
        .put(stack().url(&format!("/v1/carts/{cart_id}/items/{sku}")))
        .header("x-cart-token", cart_token)
        .json(&json!({"quantity": 2}))
        .send()
        .await
        .expect("add to the guest cart");
    assert_eq!(response.status().as_u16(), 200);
    let shopper = token(&format!("shopper-{}", rand::random::<u32>() % 1_000_000_000));
    let merge = json!({"cart_id": cart_id, "cart_token": cart_token});
    let (status, merged) = call(Method::POST, "/v1/me/cart/merge", Some(&shopper), Some(merge)).await;
    assert_eq!(status, 200, "{merged}");

    let mut body = checkout_body(cart_id, "pm_card_visa");
    body["email"] = json!("guest@example.com");
    let (status, refused) = guest_checkout(cart_token, &unique("key"), &body).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (409, Some("cart_merged")), "{refused}");
    assert_eq!(available(&sku).await, 4, "nothing was reserved");
}

#[tokio::test]
async fn a_stale_expected_total_is_refused_with_both_amounts_before_anything_is_held() {
    let sku = stocked_sku("EXPT", 5).await;
    let (shopper, cart_id) = shopper_with_cart(&sku, 2).await;
    let key = unique("key");
    let mut body = checkout_body(&cart_id, "pm_card_visa");
    for stale in [json!({"amount": 4000, "currency": "USD"}), json!({"amount": 5000, "currency": "EUR"})] {
        body["expected_total"] = stale.clone();
        let (status, _, refused) = checkout(&shopper, &key, &body).await;
        assert_eq!((status, refused["error"]["code"].as_str()), (409, Some("price_changed")), "{refused}");
        assert_eq!(refused["error"]["expected"], stale);
        assert_eq!(refused["error"]["actual"], json!({"amount": 5000, "currency": "USD"}));
        assert_eq!(available(&sku).await, 5, "nothing was reserved");
    }

    body["expected_total"] = json!({"amount": 5000, "currency": "USD"});
    let (status, replayed, accepted) = checkout(&shopper, &key, &body).await;
    assert_eq!((status, replayed), (202, false), "the refused requests stored nothing under the key: {accepted}");
    let order_id = accepted["order_id"].as_str().expect("order_id").to_owned();
    let order = settled(&shopper, &order_id, Duration::from_secs(30)).await;
    assert_eq!(
        (order["status"].as_str(), &order["total"]),
        (Some("confirmed"), &json!({"amount": 5000, "currency": "USD"}))
    );
}

const CHECKOUT_MACHINE: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:commerce-local-CheckoutStateMachine";

/// Invokes a function by its logical id, as the state machine does; returns its error type, if it failed, and
/// its payload.
async fn invoke(logical_id: &str, payload: &Value) -> (Option<String>, Value) {
    let invoked = stack().invoke(logical_id, payload).await.expect("lambda invoke");
    (invoked.function_error.map(|_| invoked.body["errorType"].as_str().unwrap_or_default().to_owned()), invoked.body)
}

/// The saga input the checkout endpoint builds for a one-line cart order.
async fn saga_input(shopper: &str, order_id: &str, cart_id: &str, sku: &str, method: &str) -> Value {
    let (status, order) = call(Method::GET, &format!("/v1/orders/{order_id}"), Some(shopper), None).await;
    assert_eq!(status, 200, "{order}");
    json!({
        "order_id": order_id,
        "cart_id": cart_id,
        "lines": [{"sku": sku, "quantity": order["lines"][0]["quantity"]}],
        "owner": "shopper",
        "payment_method": method,
        "amount": order["total"],
    })
}

/// Waits for an execution to leave RUNNING; returns its status.
async fn execution_status(arn: &str, limit: Duration) -> String {
    eventually(limit, || async {
        let described = sfn("DescribeExecution", json!({"executionArn": arn})).await;
        let status = described["status"].as_str().unwrap_or("RUNNING").to_owned();
        (status != "RUNNING").then_some(status)
    })
    .await
    .unwrap_or_else(|| panic!("execution {arn} still running\n{}", tail(&stack().log())))
}

#[tokio::test]
async fn two_executions_of_one_order_confirm_it_once_and_a_late_compensation_undoes_nothing() {
    let sku = stocked_sku("DUP", 3).await;
    let (shopper, order_id, placed_with) = placed(&sku, 1, "pm_sandbox_slow").await;
    let cart_id = placed_with["cart_id"].as_str().unwrap_or_default();
    // A second execution for the same order under another name, while the first sits in its slow payment
    // (Express does not deduplicate by name).
    let input = saga_input(&shopper, &order_id, cart_id, &sku, "pm_sandbox_slow").await;
    let name = unique("dup");
    let started =
        sfn("StartExecution", json!({"stateMachineArn": CHECKOUT_MACHINE, "name": name, "input": input.to_string()}))
            .await;
    let arn = started["executionArn"].as_str().unwrap_or_else(|| panic!("not started: {started}")).to_owned();
    let first = format!("{}:checkout-{}", CHECKOUT_MACHINE.replace(":stateMachine:", ":execution:"), &order_id[4..]);
    assert_eq!(execution_status(&arn, Duration::from_secs(90)).await, "SUCCEEDED");
    assert_eq!(execution_status(&first, Duration::from_secs(90)).await, "SUCCEEDED");
    // A third delivery of the execution whose payment step timed out compensates after the confirmation.
    let mut late = input.clone();
    late["error"] = json!({"Error": "States.Timeout", "Cause": "the payment step timed out"});
    let before = settled(&shopper, &order_id, Duration::from_secs(10)).await;
    let (error, released) = invoke("CheckoutReleaseStockFunction", &late).await;
    assert_eq!((error, released), (None, json!({"released": false})), "{before}");
    let (error, _) = invoke("CheckoutVoidPaymentFunction", &late).await;
    assert_eq!(error, None);
    let (error, _) = invoke("CheckoutFailOrderFunction", &late).await;
    assert_eq!(error, None);

    let order = settled(&shopper, &order_id, Duration::from_secs(10)).await;
    assert_eq!(order["status"], "confirmed", "{order}");
    let confirmations = order["events"].as_array().map_or(0, |e| e.iter().filter(|e| e["type"] == "confirmed").count());
    assert_eq!(confirmations, 1, "{order}");
    let payment = sandbox_payment(&order_id).await.expect("authorized");
    assert_eq!(payment.status, PaymentStatus::Authorized, "the winner's authorization was not voided");
    assert_eq!(available(&sku).await, 2, "one unit sold, nothing released or returned");
    let level = stock(&sku).await;
    assert_invariant(&[sku]).await;
    println!("{level}");
}

/// Writes a pending order placed an hour ago straight into the orders table, as a checkout that crashed
/// before starting its saga leaves it; returns the saga input the checkout would have started.
async fn stranded_order(sku: &str, method: &str) -> Value {
    use commerce_app::ports::OrderWriter;
    use commerce_domain::money::{Currency, Money};
    use commerce_domain::order::{Actor, Customer, Order, OrderLine};
    use commerce_testkit::orders::demo_address;
    let order_id = format!("ord_{}", ulid::Ulid::new().to_string().to_lowercase());
    let line =
        OrderLine::new(sku, "prd_stranded", "seller", "Stranded", 1, Money::new(2500, Currency::USD)).expect("line");
    let customer = Customer { user_id: Some("shopper-stranded".into()), email: None };
    let placed_at = chrono::Utc::now() - chrono::Duration::hours(1);
    let order = Order::place(
        order_id.clone(),
        customer,
        String::new(),
        vec![line],
        demo_address(),
        Actor::shopper("shopper-stranded"),
        placed_at,
    )
    .expect("order");
    let orders = commerce_aws::orders::DynamoOrders::new(aws_sdk_dynamodb::Client::new(&aws().await), ORDERS_TABLE);
    orders.create_order(&order).await.expect("order written");
    json!({
        "order_id": order_id,
        "cart_id": "",
        "lines": [{"sku": sku, "quantity": 1}],
        "owner": "shopper",
        "payment_method": method,
        "amount": {"amount": 2500, "currency": "USD"},
    })
}

/// The order as stored, read through the domain (the stranded orders belong to no signed-in test user).
async fn stored_order(order_id: &str) -> commerce_domain::order::Order {
    use commerce_app::ports::OrderReader;
    let orders = commerce_aws::orders::DynamoOrders::new(aws_sdk_dynamodb::Client::new(&aws().await), ORDERS_TABLE);
    orders.get_order(order_id).await.expect("order read").expect("order exists")
}

#[tokio::test]
async fn the_reaper_ends_orders_whose_saga_never_started_or_stopped_mid_way() {
    use commerce_domain::order::{FailureReason, OrderStatus};
    let sku = stocked_sku("REAP", 4).await;
    // A checkout that crashed between writing the order and StartExecution: nothing else exists.
    let never_started = stranded_order(&sku, "pm_card_visa").await;
    // A saga that ended after reserving and authorizing (the machine's TimeoutSeconds ends an execution
    // without compensation): its steps ran, nothing after them.
    let stopped = stranded_order(&sku, "pm_card_visa").await;
    let (error, _) = invoke("CheckoutReserveStockFunction", &stopped).await;
    assert_eq!(error, None);
    let (error, _) = invoke("CheckoutAuthorizePaymentFunction", &stopped).await;
    assert_eq!(error, None);
    assert_eq!(available(&sku).await, 3, "the stopped saga holds one unit");

    let event = json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
    for _ in 0..2 {
        let (error, report) = invoke("ReapPendingOrdersFunction", &event).await;
        // The stack's own schedule may run the reaper at the same moment: the end state is what counts.
        assert_eq!(error, None, "{report}");
    }
    for input in [&never_started, &stopped] {
        let order = stored_order(input["order_id"].as_str().unwrap_or_default()).await;
        assert_eq!((order.status(), order.failure()), (OrderStatus::Failed, Some(FailureReason::Expired)));
    }
    assert!(sandbox_payment(never_started["order_id"].as_str().unwrap_or_default()).await.is_none());
    let payment = sandbox_payment(stopped["order_id"].as_str().unwrap_or_default()).await.expect("authorized");
    assert_eq!(payment.status, PaymentStatus::Voided);
    assert_eq!(available(&sku).await, 4, "the stopped saga's hold is back");
    assert_invariant(&[sku]).await;
}
