//! Seller webhooks through the local stack: a seller's endpoint (a receiver on 127.0.0.1, which the local stack
//! allows) gets `order.placed` for the seller's order, signed with its secret, once; another seller's endpoint
//! gets nothing of it; the deliveries list shows the attempt and a retry sends it again with the same id;
//! endpoints on private, link-local or metadata addresses are refused; nobody else reaches an endpoint.

use crate::checkout::stocked_sku;
use crate::inventory::{call, token};
use crate::orders::confirmed_order;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::Router;
use commerce_domain::webhook::{verify, Received, WebhookSecret, DEFAULT_TOLERANCE};
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use system_tests::eventually;

type Captured = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A receiver on 127.0.0.1 that answers 204 and keeps every request.
async fn receiver() -> (String, Captured) {
    let captured: Captured = Arc::default();
    let log = captured.clone();
    let app = Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
        let log = log.clone();
        async move {
            log.lock().unwrap().push((headers, body));
            StatusCode::NO_CONTENT
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hooks"), captured)
}

/// The requests about `order_id`, as (webhook-id, body).
fn about(captured: &Captured, order_id: &str) -> Vec<(HeaderMap, Value)> {
    let got = captured.lock().unwrap();
    got.iter()
        .filter_map(|(headers, body)| {
            let json: Value = serde_json::from_slice(body).ok()?;
            (json["data"]["order"]["order_id"] == order_id).then(|| (headers.clone(), json))
        })
        .collect()
}

async fn register(seller: &str, url: &str) -> (u16, Value) {
    let body = json!({"url": url, "events": ["order.placed", "order.cancelled"]});
    call(Method::POST, "/v1/seller/webhooks", Some(seller), Some(body)).await
}

#[tokio::test]
async fn a_sellers_endpoint_gets_its_orders_signed_once_and_another_sellers_gets_nothing() {
    let (seller, seller2) = (token("seller"), token("seller2"));
    for url in [
        "https://10.0.0.1/hooks",
        "http://10.1.2.3/hooks",
        "https://169.254.169.254/latest/meta-data",
        "https://[fd00:ec2::254]/",
        "https://192.168.1.20:8443/hooks",
        "https://user:pw@hooks.example.com/",
        "ftp://hooks.example.com/",
    ] {
        let (status, body) = register(&seller, url).await;
        assert_eq!((status, body["error"]["field"].as_str()), (422, Some("url")), "{url}: {body}");
    }
    let (url, got) = receiver().await;
    let (url2, got2) = receiver().await;
    let (status, mine) = register(&seller, &url).await;
    assert_eq!(status, 201, "{mine}");
    let secret: WebhookSecret = mine["secret"].as_str().expect("the secret, once").parse().expect("whsec_");
    let webhook_id = mine["webhook_id"].as_str().unwrap().to_owned();
    let (status, theirs) = register(&seller2, &url2).await;
    assert_eq!(status, 201, "{theirs}");
    let other_id = theirs["webhook_id"].as_str().unwrap().to_owned();

    // Nobody else reaches the endpoint, and no listing shows a secret.
    let base = format!("/v1/seller/webhooks/{webhook_id}");
    for (method, path) in [
        (Method::DELETE, base.clone()),
        (Method::POST, format!("{base}/rotate")),
        (Method::GET, format!("{base}/deliveries")),
    ] {
        let (status, body) = call(method.clone(), &path, Some(&seller2), None).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
    }
    let (status, listed) = call(Method::GET, "/v1/seller/webhooks", Some(&seller), None).await;
    assert_eq!(status, 200);
    assert!(listed["items"].as_array().unwrap().iter().any(|w| w["webhook_id"] == webhook_id.as_str()));
    assert!(!listed.to_string().contains("whsec_"), "{listed}");

    let sku = stocked_sku("HOOK", 2).await;
    let (_, order_id) = confirmed_order(&sku, 1).await;
    let delivered = eventually(Duration::from_secs(90), || async {
        let found = about(&got, &order_id);
        (!found.is_empty()).then_some(found)
    })
    .await
    .expect("the seller's endpoint got the order");
    assert_eq!(delivered.len(), 1, "once");
    let (headers, body) = &delivered[0];
    assert_eq!(body["type"], "order.placed");
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let raw = serde_json::to_vec(body).unwrap();
    let received =
        got.lock().unwrap().iter().find(|(h, _)| h.get("webhook-id") == headers.get("webhook-id")).unwrap().1.clone();
    assert_eq!(serde_json::from_slice::<Value>(&received).unwrap(), serde_json::from_slice::<Value>(&raw).unwrap());
    let (id, timestamp, signature) = (header("webhook-id"), header("webhook-timestamp"), header("webhook-signature"));
    let incoming = Received { id: &id, timestamp: &timestamp, signature: &signature, body: &received };
    verify(&secret, &incoming, chrono::Utc::now().timestamp(), DEFAULT_TOLERANCE)
        .expect("signed with the endpoint's secret");
    assert!(id.starts_with("msg_"), "{id}");

    // The list shows the delivery and its attempt; a retry sends the same event again (same webhook-id).
    let (status, page) = call(Method::GET, &format!("{base}/deliveries?limit=50"), Some(&seller), None).await;
    assert_eq!(status, 200, "{page}");
    let delivery = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| format!("msg_{}", d["event_id"].as_str().unwrap()) == id)
        .expect("the delivery is listed")
        .clone();
    assert_eq!(delivery["status"], "delivered", "{delivery}");
    assert_eq!(delivery["attempts"][0]["status"], 204, "{delivery}");
    let delivery_id = delivery["delivery_id"].as_str().unwrap();
    let (status, body) =
        call(Method::POST, &format!("{base}/deliveries/{delivery_id}/retry"), Some(&seller2), None).await;
    assert_eq!(status, 404, "another seller's delivery: {body}");
    let (status, body) =
        call(Method::POST, &format!("{base}/deliveries/{delivery_id}/retry"), Some(&seller), None).await;
    assert_eq!(status, 202, "{body}");
    let again = eventually(Duration::from_secs(60), || async {
        let found = about(&got, &order_id);
        (found.len() == 2).then_some(found)
    })
    .await
    .expect("the retry arrived");
    assert_eq!(again[1].0.get("webhook-id"), again[0].0.get("webhook-id"), "a retry carries the same id");

    assert!(about(&got2, &order_id).is_empty(), "another seller's endpoint gets nothing of this order");
    let (_, theirs) =
        call(Method::GET, &format!("/v1/seller/webhooks/{other_id}/deliveries"), Some(&seller2), None).await;
    assert!(!theirs.to_string().contains(&order_id), "{theirs}");

    for (who, id) in [(&seller, &webhook_id), (&seller2, &other_id)] {
        let (status, _) = call(Method::DELETE, &format!("/v1/seller/webhooks/{id}"), Some(who), None).await;
        assert_eq!(status, 204);
    }
}
