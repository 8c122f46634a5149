//! Orders after checkout, through the real local stack: a seller ships (capturing exactly their lines),
//! delivers, the shopper asks for a return and the seller refunds and restocks; a cancellation voids and
//! restocks; shipment and cancellation fired together on the same orders exclude each other; a guest reads
//! and cancels their order with its order token, which opens nothing else; the order shows its payment after
//! the authorization, the capture and the refund; and every saga step and notification delivered twice
//! changes nothing the second time.

use crate::carts::{cart_call, guest_cart};
use crate::checkout::{
    aws, checkout, checkout_body, checkout_with, settled, shopper_with_cart, stocked_sku, ORDERS_TABLE,
};
use crate::inventory::{
    assert_invariant, call, call_with, demo_sku, product, set_stock, skus, stock, token, warehouses,
};
use commerce_aws::orders::DynamoOrders;
use commerce_aws::payments::SandboxProvider;
use commerce_domain::order::OrderStatus;
use commerce_domain::payment::PaymentStatus;
use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;
use system_tests::{eventually, stack, unique};

pub async fn confirmed_order(sku: &str, quantity: u32) -> (String, String) {
    let (shopper, cart_id) = shopper_with_cart(sku, quantity).await;
    let body = checkout_body(&cart_id, "pm_card_visa");
    // On a loaded machine a payment call can time out and fail its order `payment_error`; a shopper then
    // checks out again (a new key: the failed order released its stock and the cart still holds the line).
    for _ in 0..3 {
        let key = unique("key");
        let (mut status, _, mut accepted) = checkout(&shopper, &key, &body).await;
        // A client retries a 503 (a function timed out behind the loaded emulator) or a 409 (the same key still
        // in progress) with the same key: the key makes the retry safe.
        for _ in 0..30 {
            if status != 503 && status != 409 {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            (status, _, accepted) = checkout(&shopper, &key, &body).await;
        }
        assert_eq!(status, 202, "{accepted}");
        let order_id = accepted["order_id"].as_str().expect("order_id").to_owned();
        let order = settled(&shopper, &order_id, Duration::from_secs(180)).await;
        if order["failure_reason"] == "payment_error" {
            continue;
        }
        assert_eq!(order["status"], "confirmed", "{order}");
        return (shopper, order_id);
    }
    panic!("three checkouts of {sku} failed with payment_error");
}

/// A request as a client sends it under load: a 503 (the function timed out behind the emulator, or the order
/// kept changing) is sent again, unchanged, until it gets an answer.
pub async fn answered(method: Method, path: &str, auth: &str, body: Option<Value>) -> (u16, Value) {
    let mut attempt = 0;
    loop {
        let (status, answer) = call(method.clone(), path, Some(auth), body.clone()).await;
        attempt += 1;
        if status != 503 || attempt == 20 {
            return (status, answer);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn payment(order_id: &str) -> commerce_domain::payment::Payment {
    let config = aws().await;
    let sandbox = SandboxProvider::new(
        aws_sdk_dynamodb::Client::new(&config),
        ORDERS_TABLE,
        Duration::from_millis(1),
        Duration::from_millis(1),
    );
    sandbox.find_for_order(order_id).await.expect("lookup").expect("a payment")
}

async fn notifications(order_id: &str) -> Vec<Value> {
    let config = aws().await;
    let orders = DynamoOrders::new(aws_sdk_dynamodb::Client::new(&config), ORDERS_TABLE);
    let delivered = orders.notifications(order_id).await.expect("read notifications");
    delivered.iter().filter_map(|n| serde_json::to_value(n).ok()).collect()
}

async fn available(sku: &str) -> i64 {
    stock(sku).await["available"].as_i64().unwrap_or(-1)
}

/// The order's `payment` block: status, authorized, captured and refunded (minor units, all USD).
fn payment_block(order: &Value) -> (&str, i64, i64, i64) {
    let p = &order["payment"];
    for money in ["authorized", "captured", "refunded"] {
        assert_eq!(p[money]["currency"], "USD", "{money} is Money: {order}");
    }
    let status = p["status"].as_str().unwrap_or_default();
    (status, amount(&p["authorized"]), amount(&p["captured"]), amount(&p["refunded"]))
}

/// A guest's checkout of one unit of `sku`, as placed.
struct GuestCheckout {
    order_id: String,
    order_token: String,
    cart_token: String,
    key: String,
    body: Value,
}

async fn guest_checkout(sku: &str) -> GuestCheckout {
    let (cart_id, cart_token) = guest_cart().await;
    let item = format!("/v1/carts/{cart_id}/items/{sku}");
    let (status, cart) = cart_call(Method::PUT, &item, None, Some(&cart_token), Some(json!({"quantity": 1}))).await;
    assert_eq!(status, 200, "{cart}");
    let mut body = checkout_body(&cart_id, "pm_card_visa");
    body["email"] = json!("guest@example.com");
    let key = unique("guest");
    let (status, replayed, accepted) = checkout_with(("x-cart-token", &cart_token), &key, &body).await;
    assert_eq!((status, replayed), (202, false), "{accepted}");
    let order_id = accepted["order_id"].as_str().expect("order_id").to_owned();
    let order_token = accepted["order_token"].as_str().unwrap_or_else(|| panic!("a guest gets a token: {accepted}"));
    GuestCheckout { order_id, order_token: order_token.to_owned(), cart_token, key, body }
}

/// `GET /v1/orders/{order_id}` with these credential headers.
async fn read_order(order_id: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    call_with(Method::GET, &format!("/v1/orders/{order_id}"), headers, None).await
}

#[tokio::test]
async fn a_seller_ships_delivers_and_refunds_a_returned_order() {
    let sku = stocked_sku("LIFE", 4).await;
    let (shopper, order_id) = confirmed_order(&sku, 2).await;
    let seller = token("seller");
    let base = format!("/v1/seller/orders/{order_id}");

    let (status, _) =
        call(Method::POST, &format!("{base}/ship"), Some(&token("seller2")), Some(json!({"tracking_number": "X"})))
            .await;
    assert_eq!(status, 404, "a seller without lines in the order cannot see it");
    let (_, order) = call(Method::GET, &format!("/v1/orders/{order_id}"), Some(&shopper), None).await;
    assert_eq!(payment_block(&order), ("authorized", 5000, 0, 0), "after the authorization: {order}");
    // Under load the provider's capture can time out (503): the client retries with the same tracking number,
    // which finishes the shipment without capturing twice.
    let (status, part) =
        answered(Method::POST, &format!("{base}/ship"), &seller, Some(json!({"tracking_number": "1Z999"}))).await;
    assert_eq!((status, part["status"].as_str()), (200, Some("shipped")), "{part}");
    let captured = payment(&order_id).await;
    assert_eq!((captured.captured, captured.status), (5000, PaymentStatus::Captured), "exactly the seller's lines");
    let (_, order) = call(Method::GET, &format!("/v1/orders/{order_id}"), Some(&shopper), None).await;
    assert_eq!(payment_block(&order), ("captured", 5000, 5000, 0), "after the capture: {order}");

    let (status, listed) = call(Method::GET, "/v1/seller/orders", Some(&seller), None).await;
    assert_eq!(status, 200);
    assert!(listed["items"].as_array().unwrap().iter().any(|o| o["order_id"] == order_id.as_str()), "{listed}");

    let (status, early) =
        call(Method::POST, &format!("/v1/orders/{order_id}/return"), Some(&shopper), Some(json!({}))).await;
    assert_eq!((status, early["error"]["code"].as_str()), (409, Some("illegal_transition")));
    let (status, _) = call(Method::POST, &format!("{base}/deliver"), Some(&seller), None).await;
    assert_eq!(status, 200);
    let (status, order) = call(
        Method::POST,
        &format!("/v1/orders/{order_id}/return"),
        Some(&shopper),
        Some(json!({"reason": "too big"})),
    )
    .await;
    assert_eq!((status, order["status"].as_str()), (200, Some("return_requested")), "{order}");
    let (status, part) =
        answered(Method::POST, &format!("{base}/return/approve"), &seller, Some(json!({"restock": true}))).await;
    assert_eq!((status, part["status"].as_str()), (200, Some("refunded")), "{part}");
    let refunded = payment(&order_id).await;
    assert_eq!((refunded.refunded, refunded.status), (5000, PaymentStatus::Refunded));
    assert_eq!(available(&sku).await, 4, "the returned units are back in stock");

    let (_, order) = call(Method::GET, &format!("/v1/orders/{order_id}"), Some(&shopper), None).await;
    let kinds: Vec<&str> = order["events"].as_array().unwrap().iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(
        kinds,
        ["placed", "confirmed", "shipping_started", "shipped", "delivered", "return_requested", "returned", "refunded"]
    );
    assert_eq!(order["status"], "refunded");
    assert_eq!(payment_block(&order), ("refunded", 5000, 5000, 5000), "after the refund: {order}");
    let (status, mine) = call(Method::GET, "/v1/me/orders", Some(&shopper), None).await;
    assert_eq!(status, 200, "{mine}");
    let line = mine["items"].as_array().and_then(|items| items.iter().find(|o| o["order_id"] == order_id.as_str()));
    let line = line.unwrap_or_else(|| panic!("the shopper's history lists {order_id}: {mine}"));
    assert_eq!(
        (&line["status"], &line["total"], &line["item_count"], &line["created_at"]),
        (&order["status"], &order["total"], &json!(2), &order["created_at"]),
        "the history line agrees with the order: {line}"
    );
    let kinds = eventually(Duration::from_secs(20), || async {
        let kinds: Vec<String> =
            notifications(&order_id).await.iter().filter_map(|n| n["kind"].as_str().map(str::to_owned)).collect();
        (kinds.len() >= 3).then_some(kinds)
    })
    .await
    .expect("placed, shipped and refunded notifications");
    for kind in ["order_placed", "order_shipped", "order_refunded"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} missing from {kinds:?}");
    }
}

#[tokio::test]
async fn cancelling_before_shipment_voids_the_authorization_and_restocks() {
    let sku = stocked_sku("CNL", 3).await;
    let (shopper, order_id) = confirmed_order(&sku, 2).await;
    assert_eq!(available(&sku).await, 1);
    let (status, _) =
        call(Method::POST, &format!("/v1/orders/{order_id}/cancel"), Some(&token("shopper2")), None).await;
    assert_eq!(status, 404, "only the owner may cancel");
    let (status, order) = answered(Method::POST, &format!("/v1/orders/{order_id}/cancel"), &shopper, None).await;
    assert_eq!((status, order["status"].as_str()), (200, Some("cancelled")), "{order}");
    assert_eq!(payment(&order_id).await.status, PaymentStatus::Voided);
    assert_eq!(available(&sku).await, 3);
    let (status, again) = answered(Method::POST, &format!("/v1/orders/{order_id}/cancel"), &shopper, None).await;
    assert_eq!(status, 200, "a repeated cancel finishes nothing twice: {again}");
    assert_eq!(available(&sku).await, 3, "restocked once");
    let (status, ship) = call(
        Method::POST,
        &format!("/v1/seller/orders/{order_id}/ship"),
        Some(&token("seller")),
        Some(json!({"tracking_number": "T"})),
    )
    .await;
    assert_eq!((status, ship["error"]["code"].as_str()), (409, Some("illegal_transition")));
    assert_invariant(&[sku]).await;
}

#[tokio::test]
async fn ship_and_cancel_fired_together_on_fifty_orders_never_keep_the_money_of_a_cancelled_order() {
    let _heavy = system_tests::heavy_scenario().await;
    let sku = stocked_sku("SHIPCNL", 50).await;
    let mut orders = Vec::new();
    for _ in 0..5 {
        orders.extend(join_all((0..10).map(|_| confirmed_order(&sku, 1))).await);
    }
    assert_eq!(available(&sku).await, 0);
    let seller = token("seller");
    let outcomes = join_all(orders.iter().enumerate().map(|(i, (shopper, order_id))| {
        let seller = seller.clone();
        async move {
            let ship_path = format!("/v1/seller/orders/{order_id}/ship");
            let cancel_path = format!("/v1/orders/{order_id}/cancel");
            let tracking = json!({"tracking_number": format!("1ZRACE{i}")});
            let ship = answered(Method::POST, &ship_path, &seller, Some(tracking));
            let cancel = answered(Method::POST, &cancel_path, shopper, None);
            let ((ship, ship_body), (cancel, cancel_body)) = tokio::join!(ship, cancel);
            (ship, ship_body, cancel, cancel_body)
        }
    }))
    .await;

    let (mut shipped, mut cancelled) = (0, 0);
    for ((shopper, order_id), (ship, ship_body, cancel, cancel_body)) in orders.iter().zip(&outcomes) {
        let context = format!("{order_id}: ship {ship} {ship_body}, cancel {cancel} {cancel_body}");
        let (status, order) = call(Method::GET, &format!("/v1/orders/{order_id}"), Some(shopper), None).await;
        assert_eq!(status, 200, "{context}: {order}");
        let total = amount(&order["total"]);
        let paid = payment(order_id).await;
        match order["status"].as_str() {
            Some("shipped") => {
                shipped += 1;
                assert_eq!((*ship, *cancel), (200, 409), "the shipment won, the cancel was refused: {context}");
                assert_eq!(cancel_body["error"]["code"], "illegal_transition", "{context}");
                assert_eq!(
                    (paid.status, paid.captured, paid.refunded),
                    (PaymentStatus::Captured, total, 0),
                    "a shipped order has its money captured: {context}"
                );
            }
            Some("cancelled") => {
                cancelled += 1;
                assert_eq!((*ship, *cancel), (409, 200), "the cancel won, the shipment was refused: {context}");
                assert_eq!(ship_body["error"]["code"], "illegal_transition", "{context}");
                assert!(
                    paid.status == PaymentStatus::Voided
                        || (paid.status == PaymentStatus::Refunded && paid.refunded == paid.captured),
                    "a cancelled order keeps no money: {paid:?} ({context})"
                );
            }
            other => panic!("every order ends shipped or cancelled, not {other:?}: {context}"),
        }
    }
    println!("{shipped} shipped, {cancelled} cancelled");
    assert_eq!(shipped + cancelled, 50);
    assert_eq!(available(&sku).await, cancelled, "every cancelled order's unit is back, once");
    assert_invariant(&[sku]).await;
}

#[tokio::test]
async fn a_guest_reads_and_cancels_the_order_with_its_order_token_which_opens_nothing_else() {
    let sku = stocked_sku("GUEST", 3).await;
    let mine = guest_checkout(&sku).await;
    let order_token = mine.order_token.as_str();
    assert!(
        order_token.len() >= 22 && order_token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "at least 128 bits, base64url: {order_token}"
    );
    let (status, replayed, again) = checkout_with(("x-cart-token", &mine.cart_token), &mine.key, &mine.body).await;
    assert_eq!((status, replayed, again["order_id"].as_str()), (202, true, Some(mine.order_id.as_str())));
    assert!(again.get("order_token").is_none(), "a replay hands out no token: {again}");

    let with_token = [("x-order-token", order_token)];
    let order = eventually(Duration::from_secs(60), || async {
        let (status, order) = read_order(&mine.order_id, &with_token).await;
        assert_eq!(status, 200, "the token reads the order: {order}");
        (order["status"] != "pending").then_some(order)
    })
    .await
    .expect("the guest's order settles");
    assert_eq!(order["status"], "confirmed", "{order}");
    let total = amount(&order["total"]);
    assert_eq!(payment_block(&order), ("authorized", total, 0, 0), "{order}");

    let other = guest_checkout(&sku).await;
    let shopper2 = token("shopper2");
    let refused = [
        ("no credentials", mine.order_id.as_str(), vec![]),
        ("a wrong token", &mine.order_id, vec![("x-order-token", "not-the-token-of-this-order-at-all")]),
        ("another guest order's token", &mine.order_id, vec![("x-order-token", &other.order_token)]),
        ("this order's token on another order", &other.order_id, vec![("x-order-token", order_token)]),
        ("another shopper", &mine.order_id, vec![("authorization", &shopper2)]),
    ];
    for (who, order_id, headers) in &refused {
        let (status, body) = read_order(order_id, headers).await;
        assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")), "{who} reads: {body}");
        let cancel = format!("/v1/orders/{order_id}/cancel");
        let (status, body) = call_with(Method::POST, &cancel, headers, None).await;
        assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")), "{who} cancels: {body}");
    }

    let cancel = format!("/v1/orders/{}/cancel", mine.order_id);
    let (status, cancelled) = call_with(Method::POST, &cancel, &with_token, None).await;
    assert_eq!((status, cancelled["status"].as_str()), (200, Some("cancelled")), "{cancelled}");
    assert_eq!(payment_block(&cancelled), ("voided", total, 0, 0), "{cancelled}");
    let (status, order) = read_order(&mine.order_id, &with_token).await;
    assert_eq!((status, order["status"].as_str()), (200, Some("cancelled")), "{order}");
    assert_eq!(order["events"].as_array().and_then(|e| e.last()).map(|e| &e["actor"]["kind"]), Some(&json!("guest")));
    assert_eq!(payment(&mine.order_id).await.status, PaymentStatus::Voided);
    assert_invariant(&[sku]).await;
}

#[tokio::test]
async fn every_saga_step_and_notification_delivered_twice_has_no_second_effect() {
    let sku = stocked_sku("DUP", 5).await;
    let (shopper, order_id) = confirmed_order(&sku, 2).await;
    let first = payment(&order_id).await;
    let s = stack();
    let input = json!({
        "order_id": order_id, "cart_id": "cart_unused", "lines": [{"sku": sku, "quantity": 2}],
        "owner": "shopper", "payment_method": "pm_card_visa", "amount": {"amount": 5000, "currency": "USD"},
        "payment": {"payment_id": first.payment_id}
    });
    for function in ["CheckoutReserveStockFunction", "CheckoutAuthorizePaymentFunction", "CheckoutConfirmOrderFunction"]
    {
        let invoked = s.invoke(function, &input).await.expect("invoke");
        assert!(invoked.function_error.is_none(), "{function} again: {:?}", invoked.body);
    }
    let again = payment(&order_id).await;
    assert_eq!((again.payment_id, again.status), (first.payment_id, PaymentStatus::Authorized), "one authorization");
    assert_eq!(available(&sku).await, 3, "neither reserved nor sold twice");
    let (_, order) = call(Method::GET, &format!("/v1/orders/{order_id}"), Some(&shopper), None).await;
    assert_eq!(order["events"].as_array().map(Vec::len), Some(2), "confirmed once: {order}");
    let failed = s
        .invoke("CheckoutFailOrderFunction", &json!({"order_id": order_id, "error": {"Error": "Transient"}}))
        .await
        .unwrap();
    assert!(failed.function_error.is_none());
    let (_, order) = call(Method::GET, &format!("/v1/orders/{order_id}"), Some(&shopper), None).await;
    assert_eq!(order["status"], "confirmed", "a late compensation cannot fail a confirmed order");

    let placed = eventually(Duration::from_secs(20), || async { notifications(&order_id).await.into_iter().next() })
        .await
        .expect("OrderPlaced delivered");
    let record = json!({"messageId": "m1", "body": placed.to_string(), "eventSource": "aws:sqs"});
    let batch = json!({"Records": [record.clone(), record]});
    let invoked = s.invoke("NotifyOrderEventsFunction", &batch).await.expect("invoke consumer");
    assert_eq!(invoked.body["batchItemFailures"], json!([]), "{:?}", invoked.body);
    assert_eq!(notifications(&order_id).await.len(), 1, "the same notification is delivered once");
    assert_invariant(&[sku]).await;
}

const SELLER: &str = "9401d12a-b391-48d2-acd7-8b81507ee8f0";
const SELLER2: &str = "c8aad468-ff33-4a63-9074-c888acf9888d";

fn amount(value: &Value) -> i64 {
    value["amount"].as_i64().unwrap_or(-1)
}

/// The seller's part of `order_id` in their listing, if listed.
async fn listed_part(seller: &str, order_id: &str) -> Option<Value> {
    let (status, listed) = call(Method::GET, "/v1/seller/orders", Some(seller), None).await;
    assert_eq!(status, 200, "{listed}");
    listed["items"].as_array()?.iter().find(|p| p["order_id"] == order_id).cloned()
}

#[tokio::test]
async fn two_sellers_each_ship_and_capture_exactly_their_lines() {
    // Demo product 241 belongs to `seller`, 244 to `seller2` (every fourth product); no other scenario uses them.
    warehouses().await;
    let (sku_a, sku_b) = (demo_sku(241), demo_sku(244));
    set_stock(&sku_a, "wh_east", 6).await;
    set_stock(&sku_b, "wh_east", 6).await;
    let (shopper, cart_id) = shopper_with_cart(&sku_a, 2).await;
    let path = format!("/v1/carts/{cart_id}/items/{sku_b}");
    let (status, body) = call(Method::PUT, &path, Some(&shopper), Some(json!({"quantity": 1}))).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, accepted) = checkout(&shopper, &unique("key"), &checkout_body(&cart_id, "pm_card_visa")).await;
    assert_eq!(status, 202, "{accepted}");
    let order_id = accepted["order_id"].as_str().expect("order_id").to_owned();
    let order = settled(&shopper, &order_id, Duration::from_secs(60)).await;
    assert_eq!(order["status"], "confirmed", "{order}");
    let line_total = |sku: &str| {
        order["lines"].as_array().and_then(|l| l.iter().find(|l| l["sku"] == sku)).map(|l| amount(&l["line_total"]))
    };
    let (total_a, total_b) = (line_total(&sku_a).expect("line A"), line_total(&sku_b).expect("line B"));
    assert!(total_a > 0 && total_b > 0);
    assert_eq!(amount(&order["total"]), total_a + total_b);

    let (seller_a, seller_b) = (token("seller"), token("seller2"));
    for (seller, id, sku, subtotal) in [(&seller_a, SELLER, &sku_a, total_a), (&seller_b, SELLER2, &sku_b, total_b)] {
        let part = listed_part(seller, &order_id).await.unwrap_or_else(|| panic!("{id} lists {order_id}"));
        let lines = part["lines"].as_array().expect("lines");
        assert_eq!(lines.len(), 1, "only their own lines: {part}");
        assert_eq!((lines[0]["sku"].as_str(), lines[0]["seller_id"].as_str()), (Some(sku.as_str()), Some(id)));
        assert_eq!(amount(&part["subtotal"]), subtotal, "{part}");
    }

    let base = format!("/v1/seller/orders/{order_id}");
    let (status, _) =
        call(Method::POST, &format!("{base}/ship"), Some(&shopper), Some(json!({"tracking_number": "NOPE"}))).await;
    assert_eq!(status, 403, "a shopper cannot ship");
    let (status, part) = crate::orders::answered(
        Method::POST,
        &format!("{base}/ship"),
        &seller_a,
        Some(json!({"tracking_number": "1ZA"})),
    )
    .await;
    assert_eq!(
        (status, part["status"].as_str(), part["tracking_number"].as_str()),
        (200, Some("shipped"), Some("1ZA"))
    );
    let paid = payment(&order_id).await;
    assert_eq!((paid.captured, paid.status), (total_a, PaymentStatus::PartiallyCaptured), "exactly A's lines");
    let (_, order) = call(Method::GET, &format!("/v1/orders/{order_id}"), Some(&shopper), None).await;
    assert_eq!(order["status"], OrderStatus::PartiallyShipped.as_str(), "{order}");

    // B can neither re-ship A's shipment nor mark it delivered: B's calls act on B's lines only.
    let (status, body) = call(Method::POST, &format!("{base}/deliver"), Some(&seller_b), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("illegal_transition")), "{body}");
    let part_b = listed_part(&seller_b, &order_id).await.expect("listed");
    assert_eq!(part_b["status"], "confirmed", "A's shipment is not B's: {part_b}");
    assert!(part_b.get("tracking_number").is_none_or(Value::is_null), "{part_b}");
    assert_eq!(payment(&order_id).await.captured, total_a, "nothing captured for B yet");

    let (status, part) = crate::orders::answered(
        Method::POST,
        &format!("{base}/ship"),
        &seller_b,
        Some(json!({"tracking_number": "1ZB"})),
    )
    .await;
    assert_eq!((status, part["status"].as_str()), (200, Some("shipped")), "{part}");
    let paid = payment(&order_id).await;
    assert_eq!((paid.captured, paid.status), (total_a + total_b, PaymentStatus::Captured), "the rest, B's lines");
    let (_, order) = call(Method::GET, &format!("/v1/orders/{order_id}"), Some(&shopper), None).await;
    assert_eq!(order["status"], "shipped", "{order}");
    let shipments: Vec<(String, i64)> = order["shipments"]
        .as_array()
        .expect("shipments")
        .iter()
        .map(|s| (s["tracking_number"].as_str().unwrap_or_default().to_owned(), amount(&s["amount"])))
        .collect();
    assert!(shipments.contains(&("1ZA".into(), total_a)) && shipments.contains(&("1ZB".into(), total_b)), "{order}");

    let (status, part) = call(Method::POST, &format!("{base}/deliver"), Some(&seller_a), None).await;
    assert_eq!((status, part["status"].as_str()), (200, Some("delivered")), "{part}");
    let (_, order) = call(Method::GET, &format!("/v1/orders/{order_id}"), Some(&shopper), None).await;
    assert_eq!(order["status"], "shipped", "one seller delivered: {order}");
    let (status, _) = call(Method::POST, &format!("{base}/deliver"), Some(&seller_b), None).await;
    assert_eq!(status, 200);
    let (_, order) = call(Method::GET, &format!("/v1/orders/{order_id}"), Some(&shopper), None).await;
    assert_eq!(order["status"], "delivered", "{order}");
    assert_eq!(listed_part(&seller_a, &order_id).await.expect("listed")["status"], "delivered");
    assert_invariant(&[sku_a, sku_b]).await;
}

/// `call`, repeated while it answers 503 (a function timed out behind the emulator's load), for steps that
/// are idempotent (ship with the same tracking number, deliver, approve a return).
async fn call_idempotent(method: Method, path: &str, auth: &str, body: Option<Value>) -> (u16, Value) {
    for _ in 0..9 {
        let (status, body) = call(method.clone(), path, Some(auth), body.clone()).await;
        if status != 503 {
            return (status, body);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    call(method, path, Some(auth), body).await
}

#[tokio::test]
async fn a_returned_bundle_restocks_its_components_once() {
    warehouses().await;
    let skus = skus("BRT", &["A", "B", "KIT"]);
    let (a, b, kit) = (&skus[0], &skus[1], &skus[2]);
    product(vec![json!({"sku": a}), json!({"sku": b})]).await;
    let parts = json!([{"sku": a, "quantity": 1}, {"sku": b, "quantity": 2}]);
    product(vec![json!({"sku": kit, "components": parts})]).await;
    set_stock(a, "wh_east", 5).await;
    set_stock(b, "wh_east", 6).await;
    let (shopper, order_id) = confirmed_order(kit, 1).await;
    assert_eq!((available(a).await, available(b).await), (4, 4), "the bundle sold one A and two B");

    let (seller, base) = (token("seller"), format!("/v1/seller/orders/{order_id}"));
    let tracking = Some(json!({"tracking_number": "1ZKIT"}));
    let (status, part) = call_idempotent(Method::POST, &format!("{base}/ship"), &seller, tracking).await;
    assert_eq!(status, 200, "{part}");
    let (status, part) = call_idempotent(Method::POST, &format!("{base}/deliver"), &seller, None).await;
    assert_eq!(status, 200, "{part}");
    let (status, order) =
        call(Method::POST, &format!("/v1/orders/{order_id}/return"), Some(&shopper), Some(json!({}))).await;
    assert_eq!((status, order["status"].as_str()), (200, Some("return_requested")), "{order}");
    let approve_path = format!("{base}/return/approve");
    let approve = || call_idempotent(Method::POST, &approve_path, &seller, Some(json!({"restock": true})));
    let (status, part) = approve().await;
    assert_eq!((status, part["status"].as_str()), (200, Some("refunded")), "{part}");
    assert_eq!((available(a).await, available(b).await), (5, 6), "the components are back in stock");

    let replays = futures::future::join_all((0..3).map(|_| approve())).await;
    assert!(replays.iter().all(|(status, _)| *status == 200), "{replays:?}");
    for (sku, on_hand) in [(a, 5), (b, 6)] {
        let body = stock(sku).await;
        let east = body["warehouses"].as_array().and_then(|w| w.iter().find(|w| w["warehouse_id"] == "wh_east"));
        let east = east.unwrap_or_else(|| panic!("{sku} in wh_east: {body}"));
        let counts: Vec<i64> =
            ["available", "reserved", "sold", "on_hand"].iter().map(|f| east[f].as_i64().unwrap_or(-1)).collect();
        assert_eq!(counts, [on_hand, 0, 0, on_hand], "{sku} restocked once: {body}");
        assert_eq!(counts[0] + counts[1] + counts[2], on_hand, "available + reserved + sold == received");
    }
    assert_invariant(&[a.clone(), b.clone()]).await;
}
