//! What a CDN may keep, through the real gateway: the public catalog and search reads carry a strong `ETag` and
//! a public `Cache-Control` and answer a matching `If-None-Match` with a bodiless 304; carts, orders and errors
//! are `no-store`; a seller's price change gives the product a new `ETag`.

use crate::carts::guest_cart;
use crate::inventory::{call, call_with, client, token};
use commerce_demo::catalog::FIRST_PRODUCT_ID;
use commerce_lambda::api::{NO_STORE, PUBLIC_CACHE};
use reqwest::Method;
use serde_json::json;
use system_tests::{stack, unique};

/// GET `path` with these headers: (status, Cache-Control, ETag, body bytes).
async fn get(path: &str, headers: &[(&str, &str)]) -> (u16, String, Option<String>, Vec<u8>) {
    let mut req = client().get(stack().url(path));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let response = req.send().await.expect("request");
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (cache_control, etag) = (header("cache-control").unwrap_or_default(), header("etag"));
    let status = response.status().as_u16();
    (status, cache_control, etag, response.bytes().await.expect("body").to_vec())
}

#[tokio::test]
async fn a_public_read_revalidates_with_its_etag_and_private_answers_are_never_stored() {
    let product = format!("/v1/products/{FIRST_PRODUCT_ID}");
    let (status, cache_control, etag, body) = get(&product, &[]).await;
    assert_eq!((status, cache_control.as_str()), (200, PUBLIC_CACHE));
    let etag = etag.expect("an ETag on a public read");
    assert!(!body.is_empty());

    for if_none_match in [etag.clone(), format!("W/{etag}"), format!(r#""stale", {etag}"#)] {
        let (status, cache_control, again, body) = get(&product, &[("if-none-match", &if_none_match)]).await;
        assert_eq!((status, cache_control.as_str()), (304, PUBLIC_CACHE), "{if_none_match}");
        assert_eq!(again.as_deref(), Some(etag.as_str()));
        assert!(body.is_empty(), "a 304 has no body");
    }
    let (status, _, _, _) = get(&product, &[("if-none-match", r#""stale""#)]).await;
    assert_eq!(status, 200);

    for public in
        ["/v1/categories", "/v1/products?category=cat_laptops", "/v1/search?q=laptop", "/v1/search/suggest?q=lapt"]
    {
        let (status, cache_control, etag, _) = get(public, &[]).await;
        assert_eq!((status, cache_control.as_str(), etag.is_some()), (200, PUBLIC_CACHE, true), "{public}");
    }
    let (status, cache_control, etag, _) = get("/v1/products/prd_01hzy0000000000000000000zz", &[]).await;
    assert_eq!((status, cache_control.as_str(), etag), (404, NO_STORE, None), "a 404 is never cached");

    let (cart_id, cart_token) = guest_cart().await;
    let (status, cache_control, _, _) = get(&format!("/v1/carts/{cart_id}"), &[("x-cart-token", &cart_token)]).await;
    assert_eq!((status, cache_control.as_str()), (200, NO_STORE), "a cart");
    let shopper = token("shopper");
    let (status, cache_control, _, _) = get("/v1/me/orders", &[("authorization", &shopper)]).await;
    assert_eq!((status, cache_control.as_str()), (200, NO_STORE), "a shopper's orders");
}

#[tokio::test]
async fn a_price_change_gives_the_product_a_new_etag() {
    let seller = token("seller");
    let sku = unique("E2E-CACHE").to_uppercase();
    let tee = json!({
        "title": "Cached tee", "description": "Made for the caching test.", "category_id": "cat_tshirts",
        "brand": "Acme", "attributes": {"fabric": "cotton", "fit": "regular"},
        "images": ["https://images.example.com/e2e/tee.jpg"],
        "variants": [{"sku": sku, "options": {"size": "M"}, "price": {"amount": 1999, "currency": "USD"}}]
    });
    let (status, created) = call(Method::POST, "/v1/seller/products", Some(&seller), Some(tee)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["product_id"].as_str().expect("product_id").to_owned();
    let product = format!("/v1/products/{id}");
    let (status, _, etag, _) = get(&product, &[]).await;
    let etag = etag.expect("ETag");
    assert_eq!(status, 200);
    assert_eq!(get(&product, &[("if-none-match", &etag)]).await.0, 304);

    let repriced =
        json!({"variants": [{"sku": sku, "options": {"size": "M"}, "price": {"amount": 2499, "currency": "USD"}}]});
    let headers = [("authorization", seller.as_str()), ("if-match", r#""1""#)];
    let (status, updated) =
        call_with(Method::PATCH, &format!("/v1/seller/products/{id}"), &headers, Some(repriced)).await;
    assert_eq!((status, updated["version"].as_u64()), (200, Some(2)), "{updated}");

    let (status, cache_control, new_etag, body) = get(&product, &[("if-none-match", &etag)]).await;
    assert_eq!((status, cache_control.as_str()), (200, PUBLIC_CACHE), "the old tag no longer matches");
    assert_ne!(new_etag.as_deref(), Some(etag.as_str()));
    let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(body["variants"][0]["price"]["amount"], 2499);
    let (status, _) = call(Method::DELETE, &format!("/v1/seller/products/{id}"), Some(&seller), None).await;
    assert_eq!(status, 204);
}
