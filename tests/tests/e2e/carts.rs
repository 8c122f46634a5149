//! Carts through the real local stack: a guest cart with prices, idempotent PUT, ownership, the merge on
//! sign-in, and merges racing adds.

use crate::inventory::{client, demo_sku, priced_product, set_stock, skus, token, warehouses};
use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};
use system_tests::stack;

/// One cart request; an idempotent one (GET, PUT, DELETE) that gets 503 (a function timed out behind the
/// emulator's load) is retried as a client would.
pub async fn cart_call(
    method: Method,
    path: &str,
    auth: Option<&str>,
    cart_token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let s = stack();
    let idempotent = method != Method::POST;
    for attempt in 1.. {
        let mut req = client().request(method.clone(), s.url(path));
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        if let Some(cart_token) = cart_token {
            req = req.header("x-cart-token", cart_token);
        }
        if let Some(body) = &body {
            req = req.json(body);
        }
        let response = req.send().await.expect("request");
        let status = response.status().as_u16();
        if status == 503 && idempotent && attempt < 5 {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            continue;
        }
        return (status, response.json().await.unwrap_or(Value::Null));
    }
    unreachable!("the loop returns")
}

/// A new guest cart: (cart id, cart token).
pub async fn guest_cart() -> (String, String) {
    let (status, body) = cart_call(Method::POST, "/v1/carts", None, None, None).await;
    assert_eq!(status, 201, "{body}");
    (body["cart_id"].as_str().unwrap().to_owned(), body["cart_token"].as_str().unwrap().to_owned())
}

fn quantity(cart: &Value, sku: &str) -> Option<u64> {
    cart["lines"].as_array()?.iter().find(|l| l["sku"] == sku)?["quantity"].as_u64()
}

#[tokio::test]
async fn a_guest_cart_holds_priced_items_idempotently_and_only_for_its_owner() {
    let (cart_id, cart_token) = guest_cart().await;
    let item = format!("/v1/carts/{cart_id}/items/LAP-0001-16GB-512GB");
    let (status, first) = cart_call(Method::PUT, &item, None, Some(&cart_token), Some(json!({"quantity": 2}))).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["lines"][0]["unit_price"], json!({"amount": 109900, "currency": "USD"}));
    assert_eq!(first["subtotal"]["amount"], 219_800);
    let (status, second) = cart_call(Method::PUT, &item, None, Some(&cart_token), Some(json!({"quantity": 2}))).await;
    assert_eq!(status, 200);
    assert_eq!(second["updated_at"], first["updated_at"], "the same quantity again changes nothing");
    assert_eq!(second["lines"], first["lines"]);

    let path = format!("/v1/carts/{cart_id}");
    let (status, read) = cart_call(Method::GET, &path, None, Some(&cart_token), None).await;
    assert_eq!((status, quantity(&read, "LAP-0001-16GB-512GB")), (200, Some(2)));
    for (auth, cart_token) in [(Some(token("shopper2")), None), (None, Some("guess")), (None, None)] {
        let (status, _) = cart_call(Method::GET, &path, auth.as_deref(), cart_token, None).await;
        assert_eq!(status, 404, "a cart that is not the caller's reads as not found");
    }
    let (status, _) = cart_call(Method::GET, &path, Some("Bearer forged.token.value"), Some(&cart_token), None).await;
    assert_eq!(status, 401, "an invalid token is refused, not treated as a guest");

    let (status, removed) = cart_call(Method::DELETE, &item, None, Some(&cart_token), None).await;
    assert_eq!((status, removed["lines"].as_array().map(Vec::len)), (200, Some(0)));
}

#[tokio::test]
async fn signing_in_merges_the_guest_cart_adding_quantities() {
    let shopper = token(&format!("shopper-{}", rand::random::<u32>() % 1_000_000_000));
    let (status, created) = cart_call(Method::POST, "/v1/carts", Some(&shopper), None, None).await;
    assert_eq!(status, 201, "{created}");
    let mine = created["cart_id"].as_str().unwrap().to_owned();
    let (status, again) = cart_call(Method::POST, "/v1/carts", Some(&shopper), None, None).await;
    assert_eq!((status, again["cart_id"].as_str()), (200, Some(mine.as_str())), "one cart per shopper");
    let sku = "TSH-0004-WHITE-M";
    let (status, _) = cart_call(
        Method::PUT,
        &format!("/v1/carts/{mine}/items/{sku}"),
        Some(&shopper),
        None,
        Some(json!({"quantity": 2})),
    )
    .await;
    assert_eq!(status, 200);

    let (guest, guest_token) = guest_cart().await;
    for (item, qty) in [(sku, 3), ("TSH-0004-WHITE-L", 1)] {
        let (status, _) = cart_call(
            Method::PUT,
            &format!("/v1/carts/{guest}/items/{item}"),
            None,
            Some(&guest_token),
            Some(json!({"quantity": qty})),
        )
        .await;
        assert_eq!(status, 200);
    }
    let merge = json!({"cart_id": guest, "cart_token": guest_token});
    let (status, merged) =
        cart_call(Method::POST, "/v1/me/cart/merge", Some(&shopper), None, Some(merge.clone())).await;
    assert_eq!(status, 200, "{merged}");
    assert_eq!((quantity(&merged, sku), quantity(&merged, "TSH-0004-WHITE-L")), (Some(5), Some(1)));
    let (status, again) = cart_call(Method::POST, "/v1/me/cart/merge", Some(&shopper), None, Some(merge)).await;
    assert_eq!((status, quantity(&again, sku)), (200, Some(5)), "merging again adds nothing");
    let (status, _) = cart_call(Method::GET, &format!("/v1/carts/{guest}"), None, Some(&guest_token), None).await;
    assert_eq!(status, 404, "the merged guest cart reads as gone");
}

#[tokio::test]
async fn merges_racing_adds_lose_no_line() {
    warehouses().await;
    let skus: Vec<String> = [211, 213, 214, 215, 217].into_iter().map(demo_sku).collect();
    for sku in &skus {
        set_stock(sku, "wh_east", 20).await;
    }
    let shopper = token(&format!("shopper-{}", rand::random::<u32>() % 1_000_000_000));
    let (_, created) = cart_call(Method::POST, "/v1/carts", Some(&shopper), None, None).await;
    let mine = created["cart_id"].as_str().unwrap().to_owned();
    let (guest, guest_token) = guest_cart().await;
    let (status, _) = cart_call(
        Method::PUT,
        &format!("/v1/carts/{guest}/items/{}", skus[4]),
        None,
        Some(&guest_token),
        Some(json!({"quantity": 2})),
    )
    .await;
    assert_eq!(status, 200);

    let adds = join_all(skus[..4].iter().map(|sku| {
        let path = format!("/v1/carts/{mine}/items/{sku}");
        let shopper = shopper.clone();
        async move { cart_call(Method::PUT, &path, Some(&shopper), None, Some(json!({"quantity": 1}))).await }
    }));
    let merge = cart_call(
        Method::POST,
        "/v1/me/cart/merge",
        Some(&shopper),
        None,
        Some(json!({"cart_id": guest, "cart_token": guest_token})),
    );
    let (adds, (merge_status, merged)) = tokio::join!(adds, merge);
    assert!(adds.iter().all(|(s, _)| *s == 200), "{adds:?}");
    assert_eq!(merge_status, 200, "{merged}");
    let (_, cart) = cart_call(Method::GET, &format!("/v1/carts/{mine}"), Some(&shopper), None, None).await;
    for sku in &skus[..4] {
        assert_eq!(quantity(&cart, sku), Some(1), "{sku} in {cart}");
    }
    assert_eq!(quantity(&cart, &skus[4]), Some(2));
    let problems: Vec<&Value> =
        cart["lines"].as_array().unwrap().iter().flat_map(|l| l["problems"].as_array().unwrap()).collect();
    assert!(problems.is_empty(), "{problems:?}");
}

#[tokio::test]
async fn merging_a_guest_cart_of_another_currency_is_refused_and_changes_neither_cart() {
    let euro = skus("EUR", &["M"]).remove(0);
    priced_product(vec![json!({"sku": euro})], json!({"amount": 1900, "currency": "EUR"})).await;
    let shopper = token(&format!("shopper-{}", rand::random::<u32>() % 1_000_000_000));
    let (status, created) = cart_call(Method::POST, "/v1/carts", Some(&shopper), None, None).await;
    assert_eq!(status, 201, "{created}");
    let mine = created["cart_id"].as_str().unwrap().to_owned();
    let dollar = "TSH-0004-WHITE-M";
    let path = format!("/v1/carts/{mine}/items/{dollar}");
    let (status, before) = cart_call(Method::PUT, &path, Some(&shopper), None, Some(json!({"quantity": 1}))).await;
    assert_eq!(status, 200, "{before}");

    let (guest, guest_token) = guest_cart().await;
    let path = format!("/v1/carts/{guest}/items/{euro}");
    let (status, body) = cart_call(Method::PUT, &path, None, Some(&guest_token), Some(json!({"quantity": 2}))).await;
    assert_eq!(status, 200, "{body}");

    let merge = json!({"cart_id": guest, "cart_token": guest_token});
    let (status, refused) = cart_call(Method::POST, "/v1/me/cart/merge", Some(&shopper), None, Some(merge)).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (409, Some("currency_mismatch")), "{refused}");

    let (status, after) = cart_call(Method::GET, &format!("/v1/carts/{mine}"), Some(&shopper), None, None).await;
    assert_eq!(status, 200);
    assert_eq!((quantity(&after, dollar), quantity(&after, &euro)), (Some(1), None), "{after}");
    assert_eq!(after["subtotal"], before["subtotal"]);
    let (status, still) = cart_call(Method::GET, &format!("/v1/carts/{guest}"), None, Some(&guest_token), None).await;
    assert_eq!((status, quantity(&still, &euro)), (200, Some(2)), "the guest cart is left as it was: {still}");
    assert_eq!(still["subtotal"], json!({"amount": 3800, "currency": "EUR"}));
}
