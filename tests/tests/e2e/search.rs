//! Search through the real local stack: the seeded catalog is searchable (a title word, the same word with a
//! typo, facets that add up, a completion), and a seller's new product becomes searchable within seconds and
//! disappears after delete (the catalog stream -> index-products -> embedded index path). Prints the lags.

use crate::inventory::{call, token};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use system_tests::{eventually, stack, unique};

async fn search(query: &str) -> Value {
    let (status, body) = call(Method::GET, &format!("/v1/search?{query}"), None, None).await;
    assert_eq!(status, 200, "{query}: {body}");
    body
}

fn hit_ids(body: &Value) -> Vec<String> {
    body["hits"].as_array().into_iter().flatten().filter_map(|h| h["product_id"].as_str().map(str::to_owned)).collect()
}

/// A word of letters only, unique to this run (the tokenizer splits on digits).
pub fn unique_word() -> String {
    let raw = unique("w");
    let letters: String =
        raw.chars().filter(char::is_ascii_alphanumeric).map(|c| (b'a' + (c as u8 % 26)) as char).collect();
    format!("zq{}", &letters[letters.len().saturating_sub(10)..])
}

#[tokio::test]
async fn the_seeded_catalog_is_searchable_with_typos_facets_and_completions() {
    let (status, product) = call(Method::GET, "/v1/products/prd_demo-0001", None, None).await;
    assert_eq!(status, 200, "{product}");
    let title = product["title"].as_str().unwrap().to_owned();
    let word = title
        .split_whitespace()
        .filter(|w| w.chars().all(char::is_alphabetic))
        .max_by_key(|w| w.len())
        .unwrap()
        .to_lowercase();
    assert!(word.len() >= 5, "{title}");

    let found = eventually(Duration::from_secs(60), || {
        let word = word.clone();
        async move {
            let body = search(&format!("q={word}&page_size=50")).await;
            hit_ids(&body).contains(&"prd_demo-0001".to_owned()).then_some(body)
        }
    })
    .await
    .unwrap_or_else(|| panic!("seeded {title:?} never became searchable by {word:?}"));
    assert!(found["hits"][0]["highlights"]["title"].as_str().unwrap().contains("<em>"));

    let mut typo: Vec<char> = word.chars().collect();
    typo.swap(2, 3);
    let typo: String = typo.into_iter().collect();
    let body = search(&format!("q={typo}&page_size=50")).await;
    assert!(hit_ids(&body).contains(&"prd_demo-0001".to_owned()), "typo {typo:?} of {word:?}: {body}");

    let body = search("q=laptop").await;
    let total = body["total"].as_u64().unwrap();
    assert!(total > 0);
    let category_sum: u64 =
        body["facets"]["category"].as_array().unwrap().iter().map(|c| c["count"].as_u64().unwrap()).sum();
    assert_eq!(category_sum, total, "category facet counts add up to the hits");
    let in_stock = &body["facets"]["in_stock"];
    assert_eq!(in_stock["in_stock"].as_u64().unwrap() + in_stock["out_of_stock"].as_u64().unwrap(), total);
    let brand = body["facets"]["brand"][0]["value"].as_str().unwrap().to_owned();
    let brand_count = body["facets"]["brand"][0]["count"].as_u64().unwrap();
    let filtered = search(&format!("q=laptop&brand={}", brand.replace(' ', "%20"))).await;
    assert_eq!(filtered["total"].as_u64().unwrap(), brand_count, "a facet count is what its filter leaves");

    let prefix: String = word.chars().take(4).collect();
    let (status, body) = call(Method::GET, &format!("/v1/search/suggest?q={prefix}"), None, None).await;
    assert_eq!(status, 200, "{body}");
    let texts: Vec<&str> = body["suggestions"].as_array().unwrap().iter().filter_map(|s| s["text"].as_str()).collect();
    assert!(texts.iter().any(|t| t.to_lowercase().contains(&word)), "{prefix:?} -> {texts:?}");

    let (status, body) = call(Method::GET, "/v1/search?price_min=-1", None, None).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("price_min")));
}

#[test]
fn the_demo_catalog_is_searchable_as_soon_as_the_stack_says_ready() {
    assert_eq!(stack().searchable_at_ready, 300, "a search right after the ready line finds the whole demo catalog");
}

#[tokio::test]
async fn a_new_product_is_searchable_within_seconds_and_gone_after_delete() {
    // Measure in steady state: first let the indexer work through the seeded catalog's stream backlog.
    let seeded = eventually(Duration::from_secs(120), || async {
        (search("page_size=1").await["total"].as_u64().unwrap_or(0) >= 300).then_some(())
    })
    .await;
    assert!(seeded.is_some(), "the seeded catalog was not indexed within 120 s");
    let seller = token("seller");
    let word = unique_word();
    let body = json!({
        "title": format!("Searchable {word} Tee"), "description": "Made for the search test.", "category_id": "cat_tshirts",
        "brand": "Acme", "attributes": {"fabric": "cotton", "fit": "regular"},
        "images": ["https://images.example.com/e2e/search.jpg"],
        "variants": [{"sku": format!("SRCH-{}", word.to_uppercase()), "options": {"size": "M"}, "price": {"amount": 1500, "currency": "USD"}}]
    });
    let created_at = Instant::now();
    let (status, created) = call(Method::POST, "/v1/seller/products", Some(&seller), Some(body)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["product_id"].as_str().unwrap().to_owned();
    let seen = eventually(Duration::from_secs(15), || {
        let (word, id) = (word.clone(), id.clone());
        async move { hit_ids(&search(&format!("q={word}")).await).contains(&id).then_some(()) }
    })
    .await;
    let lag = created_at.elapsed();
    assert!(seen.is_some(), "not searchable after 15 s");
    println!("search e2e: created -> searchable in {} ms", lag.as_millis());

    let deleted_at = Instant::now();
    let (status, body) = call(Method::DELETE, &format!("/v1/seller/products/{id}"), Some(&seller), None).await;
    assert!(status == 204 || status == 200, "{status} {body}");
    let gone = eventually(Duration::from_secs(15), || {
        let word = word.clone();
        async move { (search(&format!("q={word}")).await["total"] == 0).then_some(()) }
    })
    .await;
    let lag = deleted_at.elapsed();
    assert!(gone.is_some(), "still searchable 15 s after delete");
    println!("search e2e: deleted -> gone in {} ms", lag.as_millis());
}

#[tokio::test]
async fn a_product_sold_out_everywhere_leaves_in_stock_results_and_returns_on_restock() {
    // Demo product 238 (a book of the demo `seller`) is used by no other scenario.
    const N: usize = 238;
    let id = format!("prd_demo-{N:04}");
    let (status, product) = call(Method::GET, &format!("/v1/products/{id}"), None, None).await;
    assert_eq!(status, 200, "{product}");
    let title = product["title"].as_str().unwrap().to_owned();
    let words: Vec<String> = title
        .split_whitespace()
        .filter(|w| w.len() >= 3 && w.chars().all(char::is_alphabetic))
        .map(str::to_lowercase)
        .collect();
    assert!(!words.is_empty(), "{title}");
    let query = format!("q={}&in_stock=true&page_size=50", words.join("%20"));
    let skus = crate::inventory::demo_skus(N);
    assert!(!skus.is_empty());
    let listed = |wanted: bool| {
        let (query, id) = (query.clone(), id.clone());
        eventually(Duration::from_secs(30), move || {
            let (query, id) = (query.clone(), id.clone());
            async move { (hit_ids(&search(&query).await).contains(&id) == wanted).then_some(()) }
        })
    };
    let originals: Vec<Value> = {
        let mut out = Vec::new();
        for sku in &skus {
            out.push(crate::inventory::stock(sku).await);
        }
        out
    };
    for sku in &skus {
        crate::inventory::set_stock(sku, "wh_east", 3).await;
    }
    assert!(listed(true).await.is_some(), "{id} ({title}) never listed as in stock");

    let sold_out_at = Instant::now();
    for sku in &skus {
        for warehouse in ["wh_east", "wh_west"] {
            crate::inventory::set_stock(sku, warehouse, 0).await;
        }
    }
    assert!(listed(false).await.is_some(), "still listed in stock 30 s after selling out");
    println!("search e2e: sold out -> gone from in_stock=true in {} ms", sold_out_at.elapsed().as_millis());
    let (status, body) =
        call(Method::GET, &format!("/v1/search?{}", query.replace("in_stock=true", "in_stock=false")), None, None)
            .await;
    assert_eq!(status, 200);
    assert!(hit_ids(&body).contains(&id), "listed as out of stock: {body}");

    let restocked_at = Instant::now();
    crate::inventory::set_stock(&skus[0], "wh_west", 4).await;
    assert!(listed(true).await.is_some(), "not back in stock 30 s after a restock");
    println!("search e2e: restocked -> back in in_stock=true in {} ms", restocked_at.elapsed().as_millis());

    for (sku, original) in skus.iter().zip(&originals) {
        for warehouse in original["warehouses"].as_array().into_iter().flatten() {
            let on_hand = warehouse["on_hand"].as_i64().unwrap_or(0);
            crate::inventory::set_stock(sku, warehouse["warehouse_id"].as_str().unwrap_or("wh_east"), on_hand).await;
        }
    }
}
