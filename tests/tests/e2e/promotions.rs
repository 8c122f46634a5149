//! Promotions end to end on the local stack: an admin's code with a usage limit raced by a thousand guest
//! checkouts, a code shown on a cart without holding anything, and the exact counts the admin reads.

use crate::checkout::{checkout_body, stocked_sku, ORDERS_TABLE};
use crate::inventory::{assert_invariant, call, call_with, token};
use commerce_aws::payments::SandboxProvider;
use commerce_domain::payment::PaymentStatus;
use futures::stream::{self, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;
use system_tests::{eventually, unique};

/// An admin's code promotion: 10 % off the order, `limit` uses.
async fn code_promotion(limit: u32) -> (String, String) {
    let code: String = unique("E2E").to_uppercase().chars().filter(char::is_ascii_alphanumeric).take(24).collect();
    let body = json!({"name": "Race", "code": code, "kind": "percent", "value": {"percent_bp": 1000},
                      "starts_at": "2026-01-01T00:00:00Z", "usage_limit": limit, "combines_with": ["shipping"]});
    let (status, created) = call(Method::POST, "/v1/admin/promotions", Some(&token("admin")), Some(body)).await;
    assert_eq!(status, 201, "{created}");
    (created["promotion_id"].as_str().unwrap().to_owned(), code)
}

async fn usage(promotion_id: &str) -> Value {
    let (status, view) =
        call(Method::GET, &format!("/v1/admin/promotions/{promotion_id}"), Some(&token("admin")), None).await;
    assert_eq!(status, 200, "{view}");
    view
}

/// A guest cart holding one unit of `sku`: (cart id, cart token).
async fn guest_cart(sku: &str) -> (String, String) {
    for _ in 0..20 {
        let (status, cart) = call(Method::POST, "/v1/carts", None, None).await;
        if status == 503 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        assert_eq!(status, 201, "{cart}");
        let (id, token) = (cart["cart_id"].as_str().unwrap(), cart["cart_token"].as_str().unwrap());
        let path = format!("/v1/carts/{id}/items/{sku}");
        let (status, body) =
            call_with(Method::PUT, &path, &[("x-cart-token", token)], Some(json!({"quantity": 1}))).await;
        assert_eq!(status, 200, "{body}");
        return (id.to_owned(), token.to_owned());
    }
    panic!("no guest cart after 20 tries");
}

/// `n` guest carts holding one unit of `sku` (25.00), written straight to the carts table: the race is about
/// checkouts, and 2,000 cart requests through the emulator would take a minute of setup.
async fn seeded_guest_carts(sku: &str, n: usize) -> Vec<(String, String)> {
    use commerce_app::ports::CartStore;
    let config = crate::checkout::aws().await;
    let carts =
        commerce_aws::cart::DynamoCarts::new(aws_sdk_dynamodb::Client::new(&config), "commerce-local-CartsTable");
    let made: Vec<(commerce_domain::cart::Cart, String)> = (0..n)
        .map(|_| {
            let now = chrono::Utc::now();
            let (mut cart, token) = commerce_domain::cart::Cart::new_guest(now);
            let price = commerce_domain::money::Money::new(2500, commerce_domain::money::Currency::USD);
            cart.set_quantity(sku, 1, price, &commerce_domain::cart::CartLimits::default(), now).unwrap();
            (cart, token)
        })
        .collect();
    stream::iter(&made).for_each_concurrent(16, |(cart, _)| async { carts.create_cart(cart).await.unwrap() }).await;
    made.into_iter().map(|(cart, token)| (cart.cart_id, token)).collect()
}

/// What one guest checkout came to: 202 with its order (id, order token), or the error code of a refusal.
enum Outcome {
    Placed(String, String),
    Refused(String),
}

async fn guest_checkout(cart_id: &str, cart_token: &str, email: &str, code: &str) -> Outcome {
    let mut body = checkout_body(cart_id, "pm_card_visa");
    body["email"] = json!(email);
    body["promotion_codes"] = json!([code]);
    let key = unique("promo");
    loop {
        let headers = [("x-cart-token", cart_token), ("idempotency-key", key.as_str())];
        let (status, answer) = call_with(Method::POST, "/v1/checkout", &headers, Some(body.clone())).await;
        match status {
            // A client retries 503 and 409 with the same key (the emulator is slow under load).
            503 | 409 if answer["error"]["code"] != "promotion_unavailable" => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            202 => {
                let id = answer["order_id"].as_str().unwrap().to_owned();
                return Outcome::Placed(id, answer["order_token"].as_str().unwrap_or_default().to_owned());
            }
            _ => return Outcome::Refused(answer["error"]["code"].as_str().unwrap_or("none").to_owned()),
        }
    }
}

async fn settled_guest(order_id: &str, order_token: &str) -> Value {
    let path = format!("/v1/orders/{order_id}");
    eventually(Duration::from_secs(300), || async {
        let (status, order) = call_with(Method::GET, &path, &[("x-order-token", order_token)], None).await;
        (status == 200 && order["status"] != "pending").then_some(order)
    })
    .await
    .unwrap_or_else(|| panic!("order {order_id} still pending"))
}

#[tokio::test]
async fn a_thousand_guests_race_for_a_hundred_uses_and_exactly_a_hundred_orders_get_the_discount() {
    let _heavy = system_tests::heavy_scenario().await;
    let sku = stocked_sku("PROMO", 150).await;
    let (promotion_id, code) = code_promotion(100).await;
    let started = std::time::Instant::now();
    let carts = seeded_guest_carts(&sku, 1000).await;
    println!("1,000 guest carts seeded in {:?}", started.elapsed());
    let started = std::time::Instant::now();
    let outcomes: Vec<Outcome> = stream::iter(carts.iter().enumerate())
        .map(|(n, (cart, token))| {
            let code = code.clone();
            async move { guest_checkout(cart, token, &format!("guest-{n}-{}@example.com", unique("m")), &code).await }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let placed: Vec<(&String, &String)> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Placed(id, token) => Some((id, token)),
            Outcome::Refused(_) => None,
        })
        .collect();
    let refused: Vec<&String> =
        outcomes.iter().filter_map(|o| if let Outcome::Refused(code) = o { Some(code) } else { None }).collect();
    assert!(refused.iter().all(|c| *c == "promotion_unavailable"), "{refused:?}");
    let orders: Vec<Value> =
        stream::iter(&placed).map(|(id, token)| settled_guest(id, token)).buffer_unordered(32).collect().await;
    println!(
        "1,000 checkouts ({} placed, {} refused at once) settled in {:?}",
        placed.len(),
        refused.len(),
        started.elapsed()
    );
    let confirmed: Vec<&Value> = orders.iter().filter(|o| o["status"] == "confirmed").collect();
    let failed: Vec<&Value> = orders.iter().filter(|o| o["status"] == "failed").collect();
    assert_eq!(confirmed.len(), 100, "exactly the limit confirmed");
    assert!(failed.iter().all(|o| o["failure_reason"] == "promotion_unavailable"), "{failed:?}");
    assert_eq!(failed.len() + refused.len(), 900);
    assert!(confirmed.iter().all(|o| o["discount_total"]["amount"].as_i64() > Some(0)), "each with its discount");

    let config = crate::checkout::aws().await;
    let sandbox = SandboxProvider::new(
        aws_sdk_dynamodb::Client::new(&config),
        ORDERS_TABLE,
        Duration::from_millis(1),
        Duration::from_millis(1),
    );
    let mut authorized = 0;
    for order in &orders {
        let id = order["order_id"].as_str().unwrap();
        match sandbox.find_for_order(id).await.unwrap() {
            Some(p) if p.status == PaymentStatus::Authorized => authorized += 1,
            Some(p) => panic!("{id}: a payment in {:?} for a {} order", p.status, order["status"]),
            None => assert_eq!(order["status"], "failed", "{id}: confirmed without an authorization"),
        }
    }
    assert_eq!(authorized, 100, "a losing checkout is never authorized");
    let view = usage(&promotion_id).await;
    assert_eq!((&view["used"], &view["held"], &view["remaining"]), (&json!(100), &json!(0), &json!(0)), "{view}");
    assert_invariant(&[sku]).await;
}

#[tokio::test]
async fn a_code_on_a_cart_shows_its_discount_holds_nothing_and_a_cancelled_order_gives_its_use_back() {
    let sku = stocked_sku("PCART", 5).await;
    let (promotion_id, code) = code_promotion(3).await;
    let (cart_id, cart_token) = guest_cart(&sku).await;
    let path = format!("/v1/carts/{cart_id}/promotions/{}", code.to_lowercase());
    let (status, cart) = call_with(Method::PUT, &path, &[("x-cart-token", &cart_token)], None).await;
    assert_eq!(status, 200, "{cart}");
    let discount = cart["promotions"]["discount_total"]["amount"].as_i64().unwrap();
    assert!(discount > 0, "{cart}");
    assert_eq!(cart["lines"][0]["discounts"][0]["amount"].as_i64(), Some(discount));
    assert_eq!(usage(&promotion_id).await["remaining"], 3, "a preview holds nothing");
    let (status, read) =
        call_with(Method::GET, &format!("/v1/carts/{cart_id}"), &[("x-cart-token", &cart_token)], None).await;
    assert_eq!((status, &read["promotions"]["codes"]), (200, &json!([code])));

    // Checkout with the cart's code (not repeated in the body).
    let mut body = checkout_body(&cart_id, "pm_card_visa");
    body["email"] = json!("cart-code@example.com");
    let key = unique("pc");
    let headers = [("x-cart-token", cart_token.as_str()), ("idempotency-key", key.as_str())];
    let (status, accepted) = call_with(Method::POST, "/v1/checkout", &headers, Some(body)).await;
    assert_eq!(status, 202, "{accepted}");
    let (id, token) = (accepted["order_id"].as_str().unwrap(), accepted["order_token"].as_str().unwrap());
    let order = settled_guest(id, token).await;
    assert_eq!(order["status"], "confirmed", "{order}");
    assert_eq!(order["discount_total"]["amount"].as_i64(), Some(discount));
    let kinds: Vec<&str> = order["events"].as_array().unwrap().iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(kinds, ["placed", "promotions_held", "confirmed"]);
    assert_eq!(
        (usage(&promotion_id).await["used"].as_i64(), usage(&promotion_id).await["held"].as_i64()),
        (Some(1), Some(0))
    );

    let (status, cancelled) =
        call_with(Method::POST, &format!("/v1/orders/{id}/cancel"), &[("x-order-token", token)], None).await;
    assert_eq!(status, 200, "{cancelled}");
    let view = usage(&promotion_id).await;
    assert_eq!((&view["used"], &view["remaining"]), (&json!(0), &json!(3)), "the use came back with the cancel");
    let (status, _) =
        call_with(Method::POST, &format!("/v1/orders/{id}/cancel"), &[("x-order-token", token)], None).await;
    assert!(status == 200 || status == 409);
    assert_eq!(usage(&promotion_id).await["remaining"], 3, "once");
    assert_invariant(&[sku]).await;
}
