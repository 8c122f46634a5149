//! Checkout through the real local stack and moto's Step Functions: the happy path, every compensation
//! (decline, payment timeout, out of stock, a reservation expiring mid-payment, a function killed mid-saga),
//! idempotency replays and conflicts, and 30 concurrent checkouts racing for 10 units.

use crate::inventory::{
    assert_invariant, call, product, set_stock, skus, stock, token, warehouses,
};
use commerce::adapters::orders::DynamoOrders;
use commerce::adapters::payments::SandboxProvider;
use commerce::domain::payment::PaymentStatus;
use commerce::ports::PaymentLedger;
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
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .load()
        .await
}

/// A new shopper (its own Cognito user) with a cart holding `quantity` of `sku`.
pub async fn shopper_with_cart(sku: &str, quantity: u32) -> (String, String) {
    let shopper = token(&format!(
        "shopper-{}",
        rand::random::<u32>() % 1_000_000_000
    ));
    let (status, cart) = call(Method::POST, "/v1/carts", Some(&shopper), None).await;
    assert!(status == 201 || status == 200, "{status} {cart}");
    let cart_id = cart["cart_id"].as_str().expect("cart_id").to_owned();
    let path = format!("/v1/carts/{cart_id}/items/{sku}");
    let (status, body) = call(
        Method::PUT,
        &path,
        Some(&shopper),
        Some(json!({"quantity": quantity})),
    )
    .await;
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

/// POST /v1/checkout; returns status, replayed header and body.
pub async fn checkout(auth: &str, key: &str, body: &Value) -> (u16, bool, Value) {
    let s = stack();
    let response = s
        .http()
        .post(s.url("/v1/checkout"))
        .header("authorization", auth)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .expect("checkout request");
    let status = response.status().as_u16();
    let replayed = response.headers().get("idempotent-replayed").is_some();
    (
        status,
        replayed,
        response.json().await.unwrap_or(Value::Null),
    )
}

/// Waits for the order to leave `pending`; returns its final view.
pub async fn settled(auth: &str, order_id: &str, limit: Duration) -> Value {
    let path = format!("/v1/orders/{order_id}");
    eventually(limit, || async {
        let (status, order) = call(Method::GET, &path, Some(auth), None).await;
        (status == 200 && order["status"] != "pending").then_some(order)
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "order {order_id} still pending after {limit:?}\n{}",
            tail(&stack().log())
        )
    })
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

async fn sandbox_payment(order_id: &str) -> Option<commerce::domain::payment::Payment> {
    let config = aws().await;
    let sandbox = SandboxProvider::new(
        aws_sdk_dynamodb::Client::new(&config),
        ORDERS_TABLE,
        Duration::from_millis(1),
        Duration::from_millis(1),
    );
    sandbox
        .find_for_order(order_id)
        .await
        .expect("sandbox lookup")
}

async fn placed(sku: &str, quantity: u32, method: &str) -> (String, String, Value) {
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
    assert_eq!(
        order["total"],
        json!({"amount": 5000, "currency": "USD"}),
        "priced server-side"
    );
    let kinds: Vec<&str> = order["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(kinds, ["placed", "confirmed"]);
    assert_eq!(available(&sku).await, 3);
    let after = stock(&sku).await;
    assert_eq!(
        after["sold"]
            .as_i64()
            .or_else(|| after["warehouses"][0]["sold"].as_i64()),
        Some(2),
        "{after}"
    );

    let (status, replayed, again) = checkout(&shopper, &key, &body).await;
    assert_eq!(
        (status, replayed, again["order_id"].as_str()),
        (202, true, Some(order_id.as_str()))
    );
    let other = checkout_body(&cart_id, "pm_card_mastercard");
    let (status, _, reused) = checkout(&shopper, &key, &other).await;
    assert_eq!(
        (status, reused["error"]["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );

    let (status, mine) = call(Method::GET, "/v1/me/orders", Some(&shopper), None).await;
    assert_eq!(status, 200);
    assert_eq!(mine["items"][0]["order_id"], order_id.as_str(), "{mine}");
    let (status, _) = call(
        Method::GET,
        &format!("/v1/orders/{order_id}"),
        Some(&token("shopper2")),
        None,
    )
    .await;
    assert_eq!(status, 404, "another shopper cannot read it");
    let (status, cart) = call(
        Method::GET,
        &format!("/v1/carts/{cart_id}"),
        Some(&shopper),
        None,
    )
    .await;
    assert!(
        status == 404 || cart["lines"].as_array().is_some_and(Vec::is_empty),
        "the cart is cleared: {cart}"
    );

    let config = aws().await;
    let ledger = DynamoOrders::new(aws_sdk_dynamodb::Client::new(&config), ORDERS_TABLE);
    let payment = ledger
        .payment_for_order(&order_id)
        .await
        .unwrap()
        .expect("payment recorded");
    assert_eq!(
        (payment.status, payment.amount.amount),
        (PaymentStatus::Authorized, 5000)
    );
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
    assert!(
        delivered.is_some(),
        "OrderPlaced reached the notification consumer once"
    );
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
    assert!(
        sandbox_payment(&order_id).await.is_none(),
        "a declined card leaves no authorization"
    );
    assert_invariant(&[sku]).await;
}

#[tokio::test]
async fn insufficient_funds_fail_with_payment_declined() {
    let sku = stocked_sku("NSF", 1).await;
    let (shopper, order_id, _) =
        placed(&sku, 1, "pm_card_visa_chargeDeclinedInsufficientFunds").await;
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
    let payment = sandbox_payment(&order_id)
        .await
        .expect("the provider did authorize");
    assert_eq!(
        payment.status,
        PaymentStatus::Voided,
        "no authorization is left open"
    );
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
    assert!(
        sandbox_payment(&order_id).await.is_none(),
        "no charge without stock"
    );
    assert_eq!(available(&sku).await, 1);
}

#[tokio::test]
async fn a_function_killed_mid_authorization_is_retried_into_exactly_one_authorization() {
    let sku = stocked_sku("KIL", 2).await;
    let (shopper, order_id, _) = placed(&sku, 1, "pm_sandbox_hang_once").await;
    let order = settled(&shopper, &order_id, Duration::from_secs(90)).await;
    assert_eq!(order["status"], "confirmed", "{order}");
    let payment = sandbox_payment(&order_id).await.expect("authorized");
    assert_eq!(
        (payment.status, payment.amount.amount),
        (PaymentStatus::Authorized, 2500)
    );
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
        async move {
            crate::checkout::expire_reservation(&client, &order_id)
                .await
                .then_some(())
        }
    })
    .await;
    assert!(expired.is_some(), "the reservation was found and expired");
    let order = settled(&shopper, &order_id, Duration::from_secs(60)).await;
    assert_eq!(
        (order["status"].as_str(), order["failure_reason"].as_str()),
        (Some("failed"), Some("expired")),
        "{order}"
    );
    let payment = sandbox_payment(&order_id)
        .await
        .expect("authorized before the commit failed");
    assert_eq!(payment.status, PaymentStatus::Voided);
    assert_eq!(
        available(&sku).await,
        2,
        "the expired hold's units are back"
    );
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
    let past = (chrono::Utc::now() - chrono::Duration::minutes(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
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
    changed
        && client
            .put_item()
            .table_name("commerce-local-InventoryTable")
            .set_item(Some(item))
            .send()
            .await
            .is_ok()
}

#[tokio::test]
async fn thirty_concurrent_checkouts_for_ten_units_confirm_exactly_ten() {
    let sku = stocked_sku("RACE", 10).await;
    let shoppers = join_all((0..30).map(|_| shopper_with_cart(&sku, 1))).await;
    let started = std::time::Instant::now();
    let accepted = join_all(shoppers.iter().map(|(shopper, cart_id)| async move {
        let (status, _, body) = checkout(
            shopper,
            &unique("race"),
            &checkout_body(cart_id, "pm_card_visa"),
        )
        .await;
        assert_eq!(status, 202, "{body}");
        (
            shopper.clone(),
            body["order_id"].as_str().unwrap_or_default().to_owned(),
        )
    }))
    .await;
    let orders = join_all(
        accepted
            .iter()
            .map(|(shopper, id)| settled(shopper, id, Duration::from_secs(180))),
    )
    .await;
    println!("30 checkouts settled in {:?}", started.elapsed());
    let confirmed = orders.iter().filter(|o| o["status"] == "confirmed").count();
    let out_of_stock = orders
        .iter()
        .filter(|o| o["failure_reason"] == "out_of_stock")
        .count();
    assert_eq!((confirmed, out_of_stock), (10, 20), "{orders:?}");
    for (order, (_, id)) in orders.iter().zip(&accepted) {
        let payment = sandbox_payment(id).await;
        if order["status"] == "confirmed" {
            assert_eq!(payment.map(|p| p.status), Some(PaymentStatus::Authorized));
        } else {
            assert!(
                payment.is_none_or(|p| !p.status.holds_funds()),
                "no authorization left open for {id}"
            );
        }
    }
    assert_eq!(available(&sku).await, 0);
    assert_invariant(&[sku]).await;
}
