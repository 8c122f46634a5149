//! Shipment tracking through the local stack: a seller ships with a named carrier, the carrier's signed webhook
//! and the seller post updates, each recorded once whatever is sent again, nobody else's credentials or
//! signatures reach the shipment, and the carrier's `delivered` delivers the order and publishes it.

use crate::checkout::{aws, stocked_sku, ORDERS_TABLE};
use crate::inventory::{assert_invariant, call, token};
use crate::orders::{answered, confirmed_order};
use commerce_aws::orders::DynamoOrders;
use commerce_aws::payments::stripe::sign;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;
use system_tests::{eventually, stack, unique};

async fn carrier_secret() -> String {
    let secrets = aws_sdk_secretsmanager::Client::new(&aws().await);
    let out = secrets.get_secret_value().secret_id("commerce-local-carrier-webhook-secret").send().await;
    out.expect("the stack provisioned the carrier secret").secret_string().expect("a string value").to_owned()
}

/// Posts `payload` to the carrier's webhook with `signature` (the exact bytes that were signed).
async fn carrier_post(carrier: &str, payload: &str, signature: Option<String>) -> (u16, Value) {
    let s = stack();
    let mut request = s
        .http()
        .post(s.url(&format!("/v1/webhooks/carriers/{carrier}")))
        .header("content-type", "application/json")
        .body(payload.to_owned());
    if let Some(signature) = signature {
        request = request.header("carrier-signature", signature);
    }
    let response = request.send().await.expect("webhook request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn scan(id: &str, number: &str, status: &str, minutes_ago: i64) -> String {
    let at = chrono::Utc::now() - chrono::Duration::minutes(minutes_ago);
    json!({"id": id, "tracking_number": number, "status": status, "occurred_at": at.to_rfc3339(), "location": "Louisville, KY"})
        .to_string()
}

#[tokio::test]
async fn carrier_and_seller_updates_build_the_timeline_once_and_the_carrier_delivers_the_order() {
    let sku = stocked_sku("TRACK", 2).await;
    let (shopper, order_id) = confirmed_order(&sku, 1).await;
    let seller = token("seller");
    let number = format!("1Z{}", unique("T").replace(|c: char| !c.is_ascii_alphanumeric(), "").to_uppercase());
    let ship = json!({"tracking_number": number, "carrier": "ups"});
    let (status, part) =
        answered(Method::POST, &format!("/v1/seller/orders/{order_id}/ship"), &seller, Some(ship)).await;
    assert_eq!(status, 200, "{part}");
    let shipment = &part["shipment"];
    assert_eq!(shipment["tracking_url"], format!("https://www.ups.com/track?tracknum={number}"), "{part}");
    assert_eq!(shipment["status"], "label_created");
    let shipment_id = shipment["shipment_id"].as_str().expect("shipment id").to_owned();

    let secret = carrier_secret().await;
    let now = || chrono::Utc::now().timestamp();
    let in_transit = scan("evt_transit", &number, "in_transit", 50);
    // Refused before anything is read: no signature, another secret, the signature of another body.
    let forged = sign(in_transit.as_bytes(), "not-the-secret", now());
    let other_body = sign(scan("evt_x", &number, "delivered", 1).as_bytes(), &secret, now());
    for signature in [None, Some(forged), Some(other_body)] {
        let (status, body) = carrier_post("ups", &in_transit, signature).await;
        assert_eq!(status, 400, "{body}");
    }
    // The carrier delivers the same event three times: recorded once.
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        let (status, body) = carrier_post("ups", &in_transit, Some(sign(in_transit.as_bytes(), &secret, now()))).await;
        assert_eq!(status, 200, "{body}");
        outcomes.push((body["outcome"]["recorded"].as_u64(), body["outcome"]["duplicate"].as_u64()));
    }
    assert_eq!(outcomes, [(Some(1), Some(0)), (Some(0), Some(1)), (Some(0), Some(1))]);
    // Another carrier's parcel with the same number is not ours.
    let fedex = scan("evt_fedex", &number, "delivered", 1);
    let (status, _) = carrier_post("fedex", &fedex, Some(sign(fedex.as_bytes(), &secret, now()))).await;
    assert_eq!(status, 404);

    let events = format!("/v1/seller/orders/{order_id}/shipments/{shipment_id}/events");
    let out = json!({"status": "out_for_delivery", "occurred_at": (chrono::Utc::now() - chrono::Duration::minutes(10)).to_rfc3339()});
    let (status, body) = call(Method::POST, &events, Some(&token("seller2")), Some(out.clone())).await;
    assert_eq!(status, 404, "another seller's shipment: {body}");
    let (status, body) = call(Method::POST, &events, Some(&shopper), Some(out.clone())).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = call(Method::POST, &events, Some(&seller), Some(out)).await;
    assert_eq!((status, body["shipment"]["status"].as_str()), (201, Some("out_for_delivery")), "{body}");

    let delivered = scan("evt_delivered", &number, "delivered", 1);
    let (status, body) = carrier_post("ups", &delivered, Some(sign(delivered.as_bytes(), &secret, now()))).await;
    assert_eq!((status, body["outcome"]["recorded"].as_u64()), (200, Some(1)), "{body}");

    let (status, order) = call(Method::GET, &format!("/v1/orders/{order_id}"), Some(&shopper), None).await;
    assert_eq!((status, order["status"].as_str()), (200, Some("delivered")), "{order}");
    let shipment = &order["shipments"][0];
    let timeline: Vec<(&str, &str)> = shipment["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|e| (e["status"].as_str().unwrap(), e["source"].as_str().unwrap()))
        .collect();
    // In the order things happened; the label (when the seller shipped) lands among them by its time.
    let reported: Vec<_> = timeline.iter().copied().filter(|(status, _)| *status != "label_created").collect();
    assert_eq!(
        reported,
        [("in_transit", "carrier"), ("out_for_delivery", "seller"), ("delivered", "carrier")],
        "{shipment}"
    );
    assert_eq!(timeline.len(), 4, "{shipment}");
    assert_eq!(shipment["status"], "delivered", "{shipment}");
    assert_eq!(shipment["delivered"], true);

    // The delivery went through the order events queue to the notification consumer, once.
    let orders = DynamoOrders::new(aws_sdk_dynamodb::Client::new(&aws().await), ORDERS_TABLE);
    let delivered_notes = eventually(Duration::from_secs(60), || async {
        let notes = orders.notifications(&order_id).await.expect("read notifications");
        let delivered: Vec<_> = notes.into_iter().filter(|n| format!("{:?}", n.kind) == "OrderDelivered").collect();
        (!delivered.is_empty()).then_some(delivered)
    })
    .await
    .expect("the delivery is published and consumed");
    assert_eq!(delivered_notes.len(), 1);
    assert_invariant(&[sku]).await;
}
