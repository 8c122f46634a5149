//! Reviews through the real local stack: only a customer with a delivered order line may review (403 before
//! delivery, then of 20 concurrent submissions one 201 and 19 409s); a review counts once an admin approves it, and then the product
//! page's rating, the review listing and search (its rating, the rating filter and sort) show it within
//! seconds; votes count once per user; only the product's seller replies.

use crate::inventory::{call, set_stock, token, warehouses};
use crate::orders::confirmed_order;
use crate::search::unique_word;
use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use system_tests::eventually;

/// A product of the demo `seller` titled with a word no other test uses, its one SKU stocked with `units`:
/// (product id, SKU, word).
async fn stocked_product(units: i64) -> (String, String, String) {
    warehouses().await;
    let word = unique_word();
    let sku = format!("REVW-{}", word.to_uppercase());
    let body = json!({
        "title": format!("Reviewed {word} Tee"), "description": "Made for the reviews test.", "category_id": "cat_tshirts",
        "brand": "Acme", "attributes": {"fabric": "cotton", "fit": "regular"},
        "images": ["https://images.example.com/e2e/review.jpg"],
        "variants": [{"sku": sku, "options": {"size": "M"}, "price": {"amount": 2500, "currency": "USD"},
                      "compare_at_price": {"amount": 3000, "currency": "USD"}}]
    });
    let (status, created) = call(Method::POST, "/v1/seller/products", Some(&token("seller")), Some(body)).await;
    assert_eq!(status, 201, "{created}");
    set_stock(&sku, "wh_east", units).await;
    (created["product_id"].as_str().unwrap().to_owned(), sku, word)
}

async fn search(query: &str) -> Value {
    let (status, body) = call(Method::GET, &format!("/v1/search?{query}"), None, None).await;
    assert_eq!(status, 200, "{query}: {body}");
    body
}

#[tokio::test]
async fn a_verified_buyer_reviews_an_admin_approves_and_the_page_listing_and_search_show_it() {
    let (product_id, sku, word) = stocked_product(3).await;
    let (shopper, order_id) = confirmed_order(&sku, 1).await;
    let reviews = format!("/v1/products/{product_id}/reviews");
    let review =
        json!({"rating": 4, "title": "Good tee", "body": "Soft and the size is right.", "display_name": "Ada"});

    let (status, refused) = call(Method::POST, &reviews, Some(&shopper), Some(review.clone())).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (403, Some("not_a_verified_buyer")), "{refused}");

    let seller = token("seller");
    let base = format!("/v1/seller/orders/{order_id}");
    let (status, _) =
        crate::orders::answered(Method::POST, &format!("{base}/ship"), &seller, Some(json!({"tracking_number": "1Z"})))
            .await;
    assert_eq!(status, 200);
    let (status, _) = call(Method::POST, &format!("{base}/deliver"), Some(&seller), None).await;
    assert_eq!(status, 200);

    // Twenty submissions at once by the same customer: one review.
    let answers = join_all((0..20).map(|_| call(Method::POST, &reviews, Some(&shopper), Some(review.clone())))).await;
    let created: Vec<&Value> = answers.iter().filter(|(status, _)| *status == 201).map(|(_, body)| body).collect();
    assert_eq!(created.len(), 1, "{answers:?}");
    for (status, body) in &answers {
        assert!(*status == 201 || (*status == 409 && body["error"]["code"] == "review_exists"), "{status} {body}");
    }
    let created = created[0].clone();
    assert_eq!((&created["status"], &created["verified"]), (&json!("pending"), &json!(true)));
    let review_id = created["review_id"].as_str().unwrap().to_owned();

    let (_, page) = call(Method::GET, &format!("/v1/products/{product_id}"), None, None).await;
    assert_eq!(page["rating"]["count"], 0, "a pending review does not count: {page}");
    assert_eq!(page["variants"][0]["availability"], "low_stock", "2 units left: {page}");
    assert_eq!(page["variants"][0]["compare_at_price"], json!({"amount": 3000, "currency": "USD"}));
    let (_, listed) = call(Method::GET, &reviews, None, None).await;
    assert_eq!(listed["items"], json!([]), "pending reviews are not listed");

    let (status, _) =
        call(Method::POST, &format!("/v1/admin/reviews/{review_id}/approve"), Some(&token("shopper2")), None).await;
    assert_eq!(status, 403, "only admins moderate");
    let approved_at = Instant::now();
    let (status, approved) =
        call(Method::POST, &format!("/v1/admin/reviews/{review_id}/approve"), Some(&token("admin")), None).await;
    assert_eq!((status, approved["status"].as_str()), (200, Some("approved")), "{approved}");

    let (_, page) = call(Method::GET, &format!("/v1/products/{product_id}"), None, None).await;
    assert_eq!(
        page["rating"],
        json!({"average": 4.0, "count": 1, "histogram": {"1": 0, "2": 0, "3": 0, "4": 1, "5": 0}})
    );
    let (_, listed) = call(Method::GET, &reviews, None, None).await;
    assert_eq!(listed["items"][0]["review_id"], review_id.as_str());
    assert_eq!(listed["items"][0]["display_name"], "Ada");
    assert!(listed["items"][0].get("author_id").is_none() && !listed.to_string().contains("@example.com"));

    // Search: the product's title word finds it with its rating; the 4-star filter keeps it.
    let indexed = eventually(Duration::from_secs(20), || {
        let (product_id, word) = (product_id.clone(), word.clone());
        async move {
            let found = search(&format!("q={word}&rating_min=4&page_size=50")).await;
            found["hits"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|h| h["product_id"] == product_id.as_str() && h["rating"] == 4.0 && h["review_count"] == 1)
                .cloned()
        }
    })
    .await;
    assert!(indexed.is_some(), "search did not show the rating within 20 s ({word}, {sku})");
    println!("reviews e2e: approved -> rating searchable in {} ms", approved_at.elapsed().as_millis());
    let facets = search(&format!("q={word}")).await;
    let four_up = facets["facets"]["rating"].as_array().unwrap().iter().find(|f| f["min"] == 4).cloned();
    assert!(four_up.is_some_and(|f| f["count"].as_u64() >= Some(1)), "{facets}");
    let sorted = search("q=tee&sort=rating&page_size=50").await;
    assert_eq!(sorted["hits"][0]["product_id"], product_id.as_str(), "{sorted}");

    // Votes: once per user, never on one's own review.
    let voter = token("shopper2");
    let votes = format!("/v1/reviews/{review_id}/votes");
    let (status, voted) = call(Method::POST, &votes, Some(&voter), None).await;
    assert_eq!((status, voted["helpful"].as_i64()), (200, Some(1)), "{voted}");
    let (status, again) = call(Method::POST, &votes, Some(&voter), None).await;
    assert_eq!((status, again["error"]["code"].as_str()), (409, Some("already_voted")));
    assert_eq!(call(Method::POST, &votes, Some(&shopper), None).await.0, 403);

    // Replies: the product's seller, once.
    let reply = format!("/v1/seller/reviews/{review_id}/reply");
    let body = json!({"body": "Thank you!"});
    assert_eq!(call(Method::POST, &reply, Some(&token("seller2")), Some(body.clone())).await.0, 403);
    let (status, replied) = call(Method::POST, &reply, Some(&seller), Some(body.clone())).await;
    assert_eq!((status, replied["reply"]["body"].as_str()), (201, Some("Thank you!")), "{replied}");
    assert_eq!(call(Method::POST, &reply, Some(&seller), Some(body)).await.0, 409);
}
