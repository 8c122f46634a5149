//! Event sources end to end: a catalog write reaches the search index through the table's stream and the
//! real `index-products` function.

use std::time::Duration;

use serde_json::{json, Value};
use system_tests::{eventually, stack, unique};

async fn first_category(token: &str) -> String {
    let s = stack();
    let response = s.http().get(s.url("/v1/categories")).bearer_auth(token).send().await.expect("request");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    let items = body.get("items").or_else(|| body.get("categories")).cloned().unwrap_or(body);
    items
        .as_array()
        .and_then(|list| list.iter().find_map(|c| c["category_id"].as_str().or_else(|| c["id"].as_str())))
        .expect("a seeded category")
        .to_string()
}

#[tokio::test]
async fn when_a_product_is_created_the_stream_poller_should_index_it() {
    let s = stack();
    let token = s.token("seller").expect("seller token");
    let word = unique("streamcheck").replace('-', "");
    let sku = unique("SKU").to_uppercase().replace('-', "");
    let product = json!({
        "title": format!("Lamp {word}"),
        "category_id": first_category(&token).await,
        "status": "active",
        "variants": [{"sku": sku, "price": {"amount": 1999, "currency": "USD"}}],
    });
    let created = s.http().post(s.url("/v1/seller/products")).bearer_auth(&token).json(&product).send().await;
    let created = created.expect("request");
    let status = created.status();
    let created: Value = created.json().await.expect("json");
    assert_eq!(status, 201, "{created}");
    let product_id = created["product_id"].as_str().expect("product_id").to_string();

    let found = eventually(Duration::from_secs(20), || {
        let url = s.url(&format!("/v1/search?q={word}"));
        let product_id = product_id.clone();
        async move {
            let body: Value = s.http().get(url).send().await.ok()?.json().await.ok()?;
            body["hits"].as_array()?.iter().any(|h| h["product_id"] == product_id.as_str()).then_some(())
        }
    })
    .await;
    assert!(found.is_some(), "the product was indexed from the catalog stream within 20 s");
}
