//! Taxes and shipping through the real local stack, on the demo tax regions and shipping methods: a cart from
//! two sellers quoted and checked out to Los Angeles (California's 7.25 % and the district's 2.25 % on top of
//! the price, shipping untaxed) and to Berlin (19 % inside the price, shipping taxed), both parts shipped and
//! captured, one part returned and refunded. Every amount is checked against the same computation done here by
//! hand, to the cent; a quote used with another address is 409 `quote_stale`.

use crate::checkout::{checkout, settled, shopper_with_cart};
use crate::inventory::{call, demo_sku, set_stock, token, warehouses};
use commerce_aws::payments::SandboxProvider;
use commerce_domain::payment::PaymentStatus;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;
use system_tests::unique;

fn amount(value: &Value) -> i64 {
    value["amount"].as_i64().unwrap_or(-1)
}

/// `n × ppm / 10^6`, half up: tax on top of a price.
fn on_top(n: i64, ppm: i64) -> i64 {
    (2 * n * ppm + 1_000_000) / 2_000_000
}

/// The tax inside a gross price: the gross less its net, the net rounded half up.
fn inside(gross: i64, ppm: i64) -> i64 {
    gross - (2 * gross * 1_000_000 + 1_000_000 + ppm) / (2 * (1_000_000 + ppm))
}

fn address(city: &str, region: Option<&str>, country: &str) -> Value {
    json!({"name": "Ada Lovelace", "line1": "1 Main St", "city": city, "region": region,
           "postal_code": "90012", "country": country})
}

async fn payment(order_id: &str) -> commerce_domain::payment::Payment {
    let config = crate::checkout::aws().await;
    let sandbox = SandboxProvider::new(
        aws_sdk_dynamodb::Client::new(&config),
        crate::checkout::ORDERS_TABLE,
        Duration::from_millis(1),
        Duration::from_millis(1),
    );
    sandbox.find_for_order(order_id).await.expect("lookup").expect("a payment")
}

/// A shopper's cart with 2 of `sku_a` and 1 of `sku_b`.
async fn two_seller_cart(sku_a: &str, sku_b: &str) -> (String, String) {
    let (shopper, cart_id) = shopper_with_cart(sku_a, 2).await;
    let path = format!("/v1/carts/{cart_id}/items/{sku_b}");
    let (status, body) = call(Method::PUT, &path, Some(&shopper), Some(json!({"quantity": 1}))).await;
    assert_eq!(status, 200, "{body}");
    (shopper, cart_id)
}

fn part<'a>(order: &'a Value, seller: &str) -> &'a Value {
    order["parts"].as_array().and_then(|p| p.iter().find(|p| p["seller_id"] == seller)).expect("the seller's part")
}

const SELLER: &str = "9401d12a-b391-48d2-acd7-8b81507ee8f0";
const SELLER2: &str = "c8aad468-ff33-4a63-9074-c888acf9888d";

#[tokio::test]
async fn two_sellers_to_los_angeles_quoted_checked_out_shipped_captured_and_one_part_refunded_to_the_cent() {
    // Demo product 261 belongs to `seller`, 264 to `seller2`; no other scenario uses them.
    warehouses().await;
    let (sku_a, sku_b) = (demo_sku(261), demo_sku(264));
    set_stock(&sku_a, "wh_west", 10).await;
    set_stock(&sku_b, "wh_east", 10).await;
    let (shopper, cart_id) = two_seller_cart(&sku_a, &sku_b).await;
    let la = address("Los Angeles", Some("CA"), "US");

    let (status, quote) = call(
        Method::POST,
        &format!("/v1/carts/{cart_id}/quote"),
        Some(&shopper),
        Some(json!({"shipping_address": la})),
    )
    .await;
    assert_eq!(status, 200, "{quote}");
    let options = |seller: &str| -> Vec<(String, i64, i64)> {
        quote["parts"].as_array().and_then(|p| p.iter().find(|p| p["seller_id"] == seller)).expect("a part")["options"]
            .as_array()
            .expect("options")
            .iter()
            .map(|o| (o["method_id"].as_str().unwrap_or_default().to_owned(), amount(&o["amount"]), amount(&o["tax"])))
            .collect()
    };
    let (options_a, options_b) = (options(SELLER), options(SELLER2));
    assert!(
        options_a.iter().any(|(id, amount, tax)| id == "shm_demo-1-standard" && *amount == 0 && *tax == 0),
        "{quote}"
    );
    assert!(options_b.iter().any(|(id, _, _)| id == "shm_demo-2-priority"), "the sandbox carrier is quoted: {quote}");
    assert!(options_a.windows(2).all(|w| w[0].1 <= w[1].1), "cheapest first: {quote}");
    let express_a = options_a.iter().find(|(id, _, _)| id == "shm_demo-1-express").expect("express").1;

    // The quote with another address is stale.
    let quote_id = quote["quote_id"].as_str().expect("quote_id").to_owned();
    let shipping = json!({"quote_id": quote_id, "methods": {SELLER: "shm_demo-1-express"}});
    let body = |to: &Value| json!({"cart_id": cart_id, "payment_method": "pm_card_visa", "shipping_address": to, "shipping": shipping});
    let (status, _, stale) = checkout(&shopper, &unique("key"), &body(&address("Las Vegas", Some("NV"), "US"))).await;
    assert_eq!((status, stale["error"]["code"].as_str()), (409, Some("quote_stale")), "{stale}");

    let (status, _, accepted) = checkout(&shopper, &unique("key"), &body(&la)).await;
    assert_eq!(status, 202, "{accepted}");
    let order_id = accepted["order_id"].as_str().expect("order_id").to_owned();
    let order = settled(&shopper, &order_id, Duration::from_secs(120)).await;
    assert_eq!(order["status"], "confirmed", "{order}");

    // By hand: each line taxed at 9.5 % on top, half up; shipping untaxed in California; B ships by its
    // cheapest quoted option.
    let lines = order["lines"].as_array().expect("lines");
    let mut expected_tax = 0;
    for line in lines {
        let tax = on_top(amount(&line["line_total"]), 95_000);
        assert_eq!(amount(&line["tax"]), tax, "{line}");
        let components: i64 =
            line["taxes"].as_array().expect("components").iter().map(|c| c["amount"].as_i64().unwrap_or(0)).sum();
        assert_eq!(components, tax, "the state's and the district's shares add up: {line}");
        expected_tax += tax;
    }
    let subtotal: i64 = lines.iter().map(|l| amount(&l["line_total"])).sum();
    let cheapest_b = options_b.iter().map(|o| o.1).min().expect("an option");
    assert_eq!(amount(&order["subtotal"]), subtotal);
    assert_eq!(amount(&order["shipping_total"]), express_a + cheapest_b, "{order}");
    assert_eq!(amount(&order["tax_total"]), expected_tax);
    let total = subtotal + express_a + cheapest_b + expected_tax;
    assert_eq!(amount(&order["total"]), total, "{order}");
    assert_eq!(payment(&order_id).await.amount.amount, total, "the amount authorized is the total");
    let (part_a, part_b) = (amount(&part(&order, SELLER)["total"]), amount(&part(&order, SELLER2)["total"]));
    assert_eq!(part_a + part_b, total);

    // Each seller's shipment captures exactly its part: lines, shipping and tax.
    let base = format!("/v1/seller/orders/{order_id}");
    let (seller_a, seller_b) = (token("seller"), token("seller2"));
    let (status, shipped) = crate::orders::answered(
        Method::POST,
        &format!("{base}/ship"),
        &seller_a,
        Some(json!({"tracking_number": "1ZLA"})),
    )
    .await;
    assert_eq!(status, 200, "{shipped}");
    assert_eq!(amount(&shipped["total"]), part_a, "{shipped}");
    assert_eq!(payment(&order_id).await.captured, part_a);
    let (status, shipped) = crate::orders::answered(
        Method::POST,
        &format!("{base}/ship"),
        &seller_b,
        Some(json!({"tracking_number": "1ZLB"})),
    )
    .await;
    assert_eq!(status, 200, "{shipped}");
    let paid = payment(&order_id).await;
    assert_eq!((paid.captured, paid.status), (total, PaymentStatus::Captured));

    // Seller A gives back one of its two units (a scratched one): half of what the line cost, tax included,
    // rounded half up; a retry with the key refunds nothing more.
    let line_a = lines.iter().find(|l| l["sku"] == sku_a.as_str()).expect("A's line");
    let paid_a = amount(&line_a["line_total"]) + amount(&line_a["tax"]);
    let half = (2 * paid_a + 2) / 4;
    let refund = json!({"lines": [{"sku": sku_a, "quantity": 1}], "reason": "scratched"});
    let key = unique("refund");
    for _ in 0..2 {
        let headers = [("authorization", seller_a.as_str()), ("idempotency-key", key.as_str())];
        let (status, body) =
            crate::inventory::call_with(Method::POST, &format!("{base}/refunds"), &headers, Some(refund.clone())).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(payment(&order_id).await.refunded, half, "one unit's share, once");

    // Delivered, returned; seller A refunds its part: the rest of what was captured for it.
    for seller in [&seller_a, &seller_b] {
        let (status, body) = call(Method::POST, &format!("{base}/deliver"), Some(seller), None).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = call(
        Method::POST,
        &format!("/v1/orders/{order_id}/return"),
        Some(&shopper),
        Some(json!({"reason": "too big"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = crate::orders::answered(
        Method::POST,
        &format!("{base}/return/approve"),
        &seller_a,
        Some(json!({"restock": true})),
    )
    .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("refunded")), "{body}");
    let paid = payment(&order_id).await;
    assert_eq!((paid.captured, paid.refunded), (total, part_a), "the part refunded to the cent");
}

#[tokio::test]
async fn two_sellers_to_berlin_quoted_pay_the_sticker_prices_plus_shipping_with_the_vat_inside_and_capture_it() {
    warehouses().await;
    let (sku_a, sku_b) = (demo_sku(265), demo_sku(268));
    set_stock(&sku_a, "wh_east", 10).await;
    set_stock(&sku_b, "wh_east", 10).await;
    let (shopper, cart_id) = two_seller_cart(&sku_a, &sku_b).await;
    let berlin = address("Berlin", None, "DE");
    let (status, quote) = call(
        Method::POST,
        &format!("/v1/carts/{cart_id}/quote"),
        Some(&shopper),
        Some(json!({"shipping_address": berlin})),
    )
    .await;
    assert_eq!((status, quote["prices_include_tax"].as_bool()), (200, Some(true)), "{quote}");
    for part in quote["parts"].as_array().expect("parts") {
        let options = part["options"].as_array().expect("options");
        assert_eq!(options.len(), 1, "only International serves Germany: {part}");
        assert_eq!((amount(&options[0]["amount"]), amount(&options[0]["tax"])), (1999, 319), "{part}");
    }
    let body = json!({"cart_id": cart_id, "payment_method": "pm_card_visa", "shipping_address": berlin,
                      "shipping": {"quote_id": quote["quote_id"]}});
    let (status, _, accepted) = checkout(&shopper, &unique("key"), &body).await;
    assert_eq!(status, 202, "{accepted}");
    let order_id = accepted["order_id"].as_str().expect("order_id").to_owned();
    let order = settled(&shopper, &order_id, Duration::from_secs(120)).await;
    assert_eq!(order["status"], "confirmed", "{order}");
    assert_eq!(order["prices_include_tax"], true);
    // Each part ships by "International", 19.99; the VAT is inside every price (books at 7 %).
    let lines = order["lines"].as_array().expect("lines");
    let mut expected_tax = 0;
    for line in lines {
        let ppm = if line["tax_class"] == "reduced" { 70_000 } else { 190_000 };
        let tax = inside(amount(&line["line_total"]), ppm);
        assert_eq!(amount(&line["tax"]), tax, "{line}");
        expected_tax += tax;
    }
    let subtotal: i64 = lines.iter().map(|l| amount(&l["line_total"])).sum();
    let shipping_tax = inside(1999, 190_000);
    assert_eq!(shipping_tax, 319);
    assert_eq!(amount(&order["shipping_total"]), 2 * 1999, "{order}");
    assert_eq!(amount(&order["tax_total"]), expected_tax + 2 * shipping_tax, "{order}");
    assert_eq!(amount(&order["total"]), subtotal + 2 * 1999, "the sticker prices plus shipping: {order}");
    assert_eq!(payment(&order_id).await.amount.amount, subtotal + 2 * 1999);

    // Both parts shipped: the captures add up to the total to the cent.
    let base = format!("/v1/seller/orders/{order_id}");
    for (seller, tracking) in [(token("seller"), "1ZB1"), (token("seller2"), "1ZB2")] {
        let (status, body) = crate::orders::answered(
            Method::POST,
            &format!("{base}/ship"),
            &seller,
            Some(json!({"tracking_number": tracking})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let paid = payment(&order_id).await;
    assert_eq!((paid.captured, paid.status), (subtotal + 2 * 1999, PaymentStatus::Captured));
}
