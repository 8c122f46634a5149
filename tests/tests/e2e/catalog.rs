//! The catalog through the real local stack, as sellers, shoppers and admins use it: a seller's product is
//! readable by anyone, untouchable by another seller, closed to shoppers on seller routes; bad input and
//! unknown ids get their stable errors; category listings paginate with cursors; admins manage categories.

use crate::inventory::{call, token};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use system_tests::{stack, unique};

fn sku(tag: &str) -> String {
    unique(&format!("E2E-{tag}")).to_uppercase()
}

fn tee(skus: &[String]) -> Value {
    json!({
        "title": "End-to-end tee", "description": "Made for the catalog test.", "category_id": "cat_tshirts",
        "brand": "Acme", "attributes": {"fabric": "cotton", "fit": "regular"},
        "images": ["https://images.example.com/e2e/tee.jpg"],
        "variants": skus.iter().enumerate().map(|(i, sku)| {
            let size = ["S", "M", "L"][i % 3];
            json!({"sku": sku, "options": {"size": size}, "price": {"amount": 1999 + i as i64, "currency": "USD"}})
        }).collect::<Vec<_>>()
    })
}

#[tokio::test]
async fn a_sellers_product_is_public_to_read_and_private_to_change() {
    let seller = token("seller");
    let skus = vec![sku("A"), sku("B")];
    let (status, created) = call(Method::POST, "/v1/seller/products", Some(&seller), Some(tee(&skus))).await;
    assert_eq!(status, 201, "{created}");
    let id = created["product_id"].as_str().expect("product_id").to_owned();
    let path = format!("/v1/seller/products/{id}");

    let (status, read) = call(Method::GET, &format!("/v1/products/{id}"), None, None).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["variants"][1]["price"], json!({"amount": 2000, "currency": "USD"}));

    let (status, body) = call(Method::PATCH, &path, Some(&token("seller2")), Some(json!({"title": "Mine"}))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{body}");
    let (status, _) = call(Method::POST, "/v1/seller/products", Some(&token("shopper")), Some(tee(&[sku("C")]))).await;
    assert_eq!(status, 403, "shoppers may not use seller routes");

    let (status, body) =
        call(Method::POST, "/v1/seller/products", Some(&token("seller2")), Some(tee(&[skus[0].clone()]))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("sku_taken")), "{body}");

    let s = stack();
    let response = s
        .http()
        .patch(s.url(&path))
        .header("authorization", &seller)
        .header("content-type", "application/json")
        .body("{\"title\": ")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(body["error"]["code"], "malformed_json");

    let bad_price = json!({"variants": [{"sku": skus[0], "price": {"amount": -1, "currency": "USD"}}]});
    let (status, body) = call(Method::PATCH, &path, Some(&seller), Some(bad_price)).await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("variants[0].price.amount")), "{body}");

    let (status, updated) =
        call(Method::PATCH, &path, Some(&seller), Some(json!({"title": "End-to-end tee v2"}))).await;
    assert_eq!((status, updated["version"].as_u64()), (200, Some(2)), "{updated}");

    let (status, _) = call(Method::GET, "/v1/products/prd_01hzy0000000000000000000zz", None, None).await;
    assert_eq!(status, 404);
    let (status, _) = call(Method::DELETE, &path, Some(&token("seller2")), None).await;
    assert_eq!(status, 403);
    let (status, _) = call(Method::DELETE, &path, Some(&seller), None).await;
    assert_eq!(status, 204);
    let (status, _) = call(Method::GET, &format!("/v1/products/{id}"), None, None).await;
    assert_eq!(status, 404, "deleted");
}

#[tokio::test]
async fn a_category_listing_paginates_with_cursors_and_rejects_a_tampered_one() {
    let mut cursor: Option<String> = None;
    let mut ids = Vec::new();
    let mut created = Vec::new();
    let mut pages = 0;
    loop {
        let mut path = "/v1/products?category=cat_electronics&limit=25".to_owned();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = call(Method::GET, &path, None, None).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        for item in page["items"].as_array().expect("items") {
            ids.push(item["product_id"].as_str().unwrap_or_default().to_owned());
            created.push(item["created_at"].as_str().unwrap_or_default().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let unique_ids: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique_ids.len(), ids.len(), "no product twice across {pages} pages");
    assert!(ids.len() >= 90, "the seeded laptops, phones and headphones: {}", ids.len());
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "newest first");

    let (status, body) = call(Method::GET, "/v1/products?category=cat_books&cursor=bm90LWEtY3Vyc29y", None, None).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("cursor")), "{body}");
    let (status, body) = call(Method::GET, "/v1/products?category=cat_books&limit=101", None, None).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("limit")), "{body}");
}

#[tokio::test]
async fn an_admin_manages_categories_and_others_may_not() {
    let admin = token("admin");
    let name = unique("Gadgets");
    let body = json!({"name": name, "parent_id": "cat_electronics", "attributes": [{"name": "battery_mah", "type": "number", "unit": "mAh"}]});
    let (status, _) = call(Method::POST, "/v1/admin/categories", Some(&token("seller")), Some(body.clone())).await;
    assert_eq!(status, 403);
    let (status, created) = call(Method::POST, "/v1/admin/categories", Some(&admin), Some(body)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["category_id"].as_str().expect("category_id").to_owned();
    assert_eq!(created["path"], json!(["cat_electronics", id]));

    let path = format!("/v1/admin/categories/{id}");
    let (status, renamed) = call(Method::PATCH, &path, Some(&admin), Some(json!({"name": format!("{name} 2")}))).await;
    assert_eq!((status, renamed["version"].as_u64()), (200, Some(2)), "{renamed}");
    let (status, all) = call(Method::GET, "/v1/categories", None, None).await;
    assert_eq!(status, 200);
    assert!(all["items"].as_array().expect("items").iter().any(|c| c["category_id"] == id.as_str()));

    let (status, body) = call(Method::DELETE, "/v1/admin/categories/cat_electronics", Some(&admin), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("category_not_empty")), "{body}");
    let (status, _) = call(Method::DELETE, &path, Some(&admin), None).await;
    assert_eq!(status, 204);
    let (status, _) = call(Method::DELETE, &path, Some(&admin), None).await;
    assert_eq!(status, 404);
}

/// A product of `tee` shape whose one variant `sku` consumes `component` (a bundle), priced at one cent.
fn bundle(sku: &str, component: &str) -> Value {
    let mut body = tee(&[sku.to_owned()]);
    body["variants"][0]["price"]["amount"] = json!(1);
    body["variants"][0]["components"] = json!([{"sku": component, "quantity": 1}]);
    body
}

#[tokio::test]
async fn a_bundle_may_consume_only_its_own_sellers_skus() {
    let seller2 = token("seller2");
    // The demo `seller`'s laptop SKU.
    let theirs = "LAP-0001-8GB-256GB";
    let (status, body) =
        call(Method::POST, "/v1/seller/products", Some(&seller2), Some(bundle(&sku("KIT"), theirs))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str(), body["error"]["field"].as_str()),
        (422, Some("component_not_owned"), Some("variants[0].components[0].sku")),
        "{body}"
    );

    let part = sku("PART");
    let (status, body) =
        call(Method::POST, "/v1/seller/products", Some(&seller2), Some(tee(std::slice::from_ref(&part)))).await;
    assert_eq!(status, 201, "{body}");
    let kit = sku("KIT");
    let (status, created) = call(Method::POST, "/v1/seller/products", Some(&seller2), Some(bundle(&kit, &part))).await;
    assert_eq!(status, 201, "a bundle of the seller's own SKU: {created}");
    let id = created["product_id"].as_str().expect("product_id").to_owned();

    let variants = bundle(&kit, theirs)["variants"].clone();
    let path = format!("/v1/seller/products/{id}");
    let (status, body) = call(Method::PATCH, &path, Some(&seller2), Some(json!({"variants": variants}))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str(), body["error"]["field"].as_str()),
        (422, Some("component_not_owned"), Some("variants[0].components[0].sku")),
        "{body}"
    );
    let (status, read) = call(Method::GET, &format!("/v1/products/{id}"), None, None).await;
    assert_eq!((status, read["version"].as_u64()), (200, Some(1)), "{read}");
    assert_eq!(read["variants"][0]["components"], json!([{"sku": part, "quantity": 1}]));
}

/// Creates a tee with the one variant `sku` as `auth`: the status and body.
async fn create_tee(auth: &str, sku: &str) -> (u16, Value) {
    call(Method::POST, "/v1/seller/products", Some(auth), Some(tee(&[sku.to_owned()]))).await
}

#[tokio::test]
async fn a_deleted_products_sku_and_its_stock_never_go_to_another_seller() {
    crate::inventory::warehouses().await;
    let (seller, seller2) = (token("seller"), token("seller2"));
    let taken = sku("GONE");
    let (status, created) = create_tee(&seller, &taken).await;
    assert_eq!(status, 201, "{created}");
    crate::inventory::set_stock(&taken, "wh_east", 7).await;
    let path = format!("/v1/seller/products/{}", created["product_id"].as_str().expect("product_id"));
    let (status, _) = call(Method::DELETE, &path, Some(&seller), None).await;
    assert_eq!(status, 204);

    let (status, body) = create_tee(&seller2, &taken).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("sku_taken")), "{body}");
    let stock_path = format!("/v1/seller/inventory/{taken}");
    let (status, body) = call(Method::GET, &stock_path, Some(&seller2), None).await;
    assert_eq!(status, 404, "seller2 sees none of the first seller's stock: {body}");

    // Both sellers race for the deleted SKU: only its seller gets it, with its stock.
    let (mine, theirs) = tokio::join!(create_tee(&seller, &taken), create_tee(&seller2, &taken));
    assert_eq!(mine.0, 201, "{}", mine.1);
    assert_eq!((theirs.0, theirs.1["error"]["code"].as_str()), (409, Some("sku_taken")), "{}", theirs.1);
    let (status, body) = call(Method::GET, &stock_path, Some(&seller), None).await;
    assert_eq!((status, body["available"].as_i64()), (200, Some(7)), "{body}");

    // Racing for fresh SKUs: each goes to exactly one of them.
    let fresh: Vec<String> = (0..4).map(|i| sku(&format!("RACE{i}"))).collect();
    let races = futures::future::join_all(
        fresh.iter().map(|s| async { tokio::join!(create_tee(&seller, s), create_tee(&seller2, s)) }),
    )
    .await;
    for (s, (a, b)) in fresh.iter().zip(&races) {
        let mut statuses = [a.0, b.0];
        statuses.sort();
        assert_eq!(statuses, [201, 409], "{s}: {} / {}", a.1, b.1);
        let loser = if a.0 == 409 { &a.1 } else { &b.1 };
        assert_eq!(loser["error"]["code"], "sku_taken", "{loser}");
    }
}
