//! One suite of search behaviours, run against the embedded engine always and against a real OpenSearch
//! when `OPENSEARCH_URL` is set (e.g. `http://localhost:9200`, no auth); otherwise the OpenSearch run is
//! skipped and says so.
#![cfg(feature = "search")]

use chrono::{Duration, TimeZone, Utc};
use commerce_app::ports::{ProductSearch, RatingIndex, SearchIndex};
use commerce_aws::search::{EmbeddedSearch, OpenSearch};
use commerce_domain::money::{Currency, Money};
use commerce_domain::search::{
    CategoryRef, IndexChange, RatingUpdate, SearchDocument, SearchQuery, SearchResults, SearchSort, StockUpdate,
    SuggestQuery,
};
use std::collections::BTreeMap;

/// An engine under test plus how to make writes visible.
trait Engine: SearchIndex + RatingIndex + ProductSearch {
    async fn settle(&self);
}

impl Engine for EmbeddedSearch {
    async fn settle(&self) {}
}

impl Engine for OpenSearch {
    async fn settle(&self) {
        self.refresh().await.expect("refresh");
    }
}

fn electronics() -> CategoryRef {
    CategoryRef { id: "cat_el".into(), name: "Electronics".into() }
}

/// A document; `(price, rating, age_days)` are the numbers sorting and facets read (the rating reaches the
/// index as ten reviews of that average, through the ratings path).
fn doc(
    id: &str,
    title: &str,
    brand: &str,
    leaf: (&str, &str),
    attributes: &[(&str, &str)],
    (price, rating, age_days): (i64, f64, i64),
) -> SearchDocument {
    let mut attrs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in attributes {
        attrs.entry((*k).to_owned()).or_default().push((*v).to_owned());
    }
    let created = Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).unwrap() - Duration::days(age_days);
    let root = if leaf.0.starts_with("cat_sh") || leaf.0 == "cat_tee" {
        CategoryRef { id: "cat_cl".into(), name: "Clothing".into() }
    } else {
        electronics()
    };
    SearchDocument {
        product_id: id.into(),
        version: 1,
        seller_id: "usr_1".into(),
        title: title.into(),
        description: format!("{title} from {brand}"),
        brand: brand.into(),
        categories: vec![root, CategoryRef { id: leaf.0.into(), name: leaf.1.into() }],
        attributes: attrs,
        other_attribute_text: Vec::new(),
        price: Money::new(price, Currency::USD),
        price_max: price,
        skus: vec![format!("{id}-A"), format!("{id}-B")],
        image: None,
        rating,
        review_count: 10,
        created_at: created,
        updated_at: created,
    }
}

const PHONES: (&str, &str) = ("cat_ph", "Phones");
const LAPTOPS: (&str, &str) = ("cat_lp", "Laptops");
const SHOES: (&str, &str) = ("cat_sh", "Shoes");
const TEES: (&str, &str) = ("cat_tee", "T-shirts");

fn fixture() -> Vec<SearchDocument> {
    vec![
        doc(
            "p01",
            "Apple iPhone 15 Pro",
            "Apple",
            PHONES,
            &[("color", "Black"), ("storage", "256 GB")],
            (99_900, 4.7, 10),
        ),
        doc("p02", "Apple iPhone 14", "Apple", PHONES, &[("color", "Blue"), ("storage", "128 GB")], (69_900, 4.4, 400)),
        doc("p03", "Galaxy S24 Smartphone", "Samsung", PHONES, &[("color", "Black")], (79_900, 4.2, 30)),
        doc("p04", "Pixel 8 Phone", "Google", PHONES, &[("color", "White")], (59_900, 3.9, 60)),
        doc(
            "p05",
            "ThinkPad X1 Carbon Laptop",
            "Lenovo",
            LAPTOPS,
            &[("color", "Black"), ("ram_gb", "16")],
            (149_900, 4.5, 90),
        ),
        doc("p06", "MacBook Air Laptop", "Apple", LAPTOPS, &[("color", "Silver"), ("ram_gb", "8")], (109_900, 4.8, 20)),
        doc("p07", "Trail Running Shoes", "Acme", SHOES, &[("color", "Blue"), ("size", "42")], (8_900, 4.1, 5)),
        doc("p08", "Road Runner Sneaker", "Acme", SHOES, &[("color", "Black"), ("size", "43")], (7_900, 3.2, 15)),
        doc("p09", "Classic Cotton Tee", "Basics", TEES, &[("color", "White"), ("size", "M")], (1_900, 4.0, 1)),
        doc("p10", "Organic Cotton Tee", "Basics", TEES, &[("color", "Blue"), ("size", "L")], (2_900, 2.5, 2)),
    ]
}

/// Ten approved reviews whose average is `rating` (to one decimal): some of `floor(rating)` stars, the rest one
/// more.
fn ten_reviews(product_id: &str, rating: f64) -> RatingUpdate {
    let sum = (rating * 10.0).round() as u64;
    let (low, high) = (sum / 10, sum % 10);
    let mut stars = [0u64; 5];
    if high > 0 {
        stars[low as usize] = high;
    }
    if low > 0 {
        stars[low as usize - 1] += 10 - high;
    }
    RatingUpdate { product_id: product_id.into(), stars, version: 1 }
}

async fn load(engine: &impl Engine) {
    let docs = fixture();
    let ratings: Vec<RatingUpdate> = docs.iter().map(|d| ten_reviews(&d.product_id, d.rating)).collect();
    let changes: Vec<IndexChange> = docs.into_iter().map(IndexChange::Upsert).collect();
    assert_eq!(engine.apply_changes(&changes).await.expect("index"), 10);
    assert_eq!(engine.set_ratings(&ratings).await.expect("ratings"), 10);
    engine.settle().await;
}

async fn run(engine: &impl Engine, query: SearchQuery) -> SearchResults {
    engine.search(&query).await.expect("search")
}

fn ids(results: &SearchResults) -> Vec<&str> {
    results.hits.iter().map(|h| h.product_id.as_str()).collect()
}

fn query(pairs: &[(&str, &str)]) -> SearchQuery {
    SearchQuery::from_params(pairs.iter().copied()).expect("valid query")
}

async fn suite(engine: &impl Engine) {
    load(engine).await;

    // A word of the title finds the product, highlighted.
    let found = run(engine, query(&[("q", "iphone")])).await;
    assert_eq!(found.total, 2, "{:?}", ids(&found));
    assert!(found.hits[0].highlights["title"].contains("<em>iPhone</em>"), "{:?}", found.hits[0].highlights);

    // A typo still finds it.
    let found = run(engine, query(&[("q", "iphne")])).await;
    assert!(ids(&found).contains(&"p01"), "typo: {:?}", ids(&found));
    let found = run(engine, query(&[("q", "thinkpda")])).await;
    assert_eq!(ids(&found), vec!["p05"], "transposition");

    // Stemming: "runs" and "running" share a stem; "shoe" finds "Shoes".
    let found = run(engine, query(&[("q", "shoe")])).await;
    assert!(ids(&found).contains(&"p07"), "stemming: {:?}", ids(&found));
    let found = run(engine, query(&[("q", "runs")])).await;
    assert!(ids(&found).contains(&"p07"), "stemming: {:?}", ids(&found));

    // Synonyms: "notebook" finds laptops, "sneakers"/"trainers" find the sneaker.
    let found = run(engine, query(&[("q", "notebook")])).await;
    assert_eq!(found.total, 2, "synonym: {:?}", ids(&found));
    let found = run(engine, query(&[("q", "trainers")])).await;
    assert!(ids(&found).contains(&"p08"), "synonym: {:?}", ids(&found));

    // All words must match.
    let found = run(engine, query(&[("q", "apple laptop")])).await;
    assert_eq!(ids(&found), vec!["p06"]);

    // Facet counts match the hits, and each facet ignores its own filter.
    let all = run(engine, query(&[])).await;
    assert_eq!(all.total, 10);
    assert_eq!(all.facets.brand.iter().map(|b| b.count).sum::<u64>(), 10);
    assert_eq!(all.facets.category.iter().map(|c| c.count).sum::<u64>(), 10);
    let el = all.facets.category.iter().find(|c| c.id == "cat_el").expect("electronics");
    assert_eq!(el.count, 6);
    assert_eq!(el.children.iter().map(|c| c.count).sum::<u64>(), 6);
    assert_eq!(all.facets.price.iter().map(|p| p.count).sum::<u64>(), 10);
    assert_eq!(all.facets.in_stock.in_stock, 10);

    let apple = run(engine, query(&[("brand", "apple")])).await;
    assert_eq!(apple.total, 3);
    let brand_counts: BTreeMap<&str, u64> = apple.facets.brand.iter().map(|b| (b.value.as_str(), b.count)).collect();
    assert_eq!(brand_counts.get("Apple"), Some(&3));
    assert_eq!(brand_counts.get("Acme"), Some(&2), "brand facet ignores the brand filter");
    let el = apple.facets.category.iter().find(|c| c.id == "cat_el").expect("electronics");
    assert_eq!(el.count, 3, "category facet applies the brand filter");
    let colors = apple.facets.attributes.iter().find(|a| a.name == "color").expect("color facet");
    assert_eq!(colors.values.iter().map(|v| v.count).sum::<u64>(), 3);

    let blue_apple = run(engine, query(&[("brand", "apple"), ("attr.color", "blue")])).await;
    assert_eq!(ids(&blue_apple), vec!["p02"]);
    let colors = blue_apple.facets.attributes.iter().find(|a| a.name == "color").expect("color facet");
    let color_counts: BTreeMap<&str, u64> = colors.values.iter().map(|v| (v.value.as_str(), v.count)).collect();
    assert_eq!(
        color_counts,
        BTreeMap::from([("black", 1), ("blue", 1), ("silver", 1)]),
        "color ignores its own filter"
    );
    let brand_counts: BTreeMap<&str, u64> =
        blue_apple.facets.brand.iter().map(|b| (b.value.as_str(), b.count)).collect();
    assert_eq!(brand_counts, BTreeMap::from([("Acme", 1), ("Apple", 1), ("Basics", 1)]));

    // Filters: category subtree, price range, rating, attribute.
    let found = run(engine, query(&[("category", "cat_el")])).await;
    assert_eq!(found.total, 6);
    let found = run(engine, query(&[("price_min", "5000"), ("price_max", "80000")])).await;
    let mut got = ids(&found);
    got.sort();
    assert_eq!(got, vec!["p02", "p03", "p04", "p07", "p08"]);
    let price_total: u64 = found.facets.price.iter().map(|p| p.count).sum();
    assert_eq!(price_total, 10, "price facet ignores the price filter");
    let found = run(engine, query(&[("rating_min", "4.5")])).await;
    let mut got = ids(&found);
    got.sort();
    assert_eq!(got, vec!["p01", "p05", "p06"]);
    let found = run(engine, query(&[("attr.size", "42,43")])).await;
    assert_eq!(found.total, 2);

    // Sorts.
    let found = run(engine, query(&[("sort", "price_asc"), ("page_size", "3")])).await;
    assert_eq!(ids(&found), vec!["p09", "p10", "p08"]);
    let found = run(engine, query(&[("sort", "price_desc"), ("page_size", "2")])).await;
    assert_eq!(ids(&found), vec!["p05", "p06"]);
    let found = run(engine, query(&[("sort", "newest"), ("page_size", "2")])).await;
    assert_eq!(ids(&found), vec!["p09", "p10"]);
    let found = run(engine, query(&[("sort", "rating"), ("page_size", "2")])).await;
    assert_eq!(ids(&found), vec!["p06", "p01"]);

    // Cursor paging visits every hit once, in order.
    for sort in ["relevance", "price_asc", "newest", "rating"] {
        let mut seen: Vec<String> = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut pairs = vec![("sort", sort), ("page_size", "3")];
            if let Some(c) = &cursor {
                pairs.push(("cursor", c.as_str()));
            }
            let page = run(engine, query(&pairs)).await;
            seen.extend(page.hits.iter().map(|h| h.product_id.clone()));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
            assert!(seen.len() <= 10, "paging does not end");
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 10, "{sort}: {seen:?}");
        assert_eq!(seen.len(), 10, "{sort}: {seen:?}");
    }
    let mut texted: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut pairs = vec![("q", "apple"), ("page_size", "1")];
        if let Some(c) = &cursor {
            pairs.push(("cursor", c.as_str()));
        }
        let page = run(engine, query(&pairs)).await;
        texted.extend(page.hits.iter().map(|h| h.product_id.clone()));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    texted.sort();
    assert_eq!(texted, vec!["p01", "p02", "p06"]);

    // Suggest: a prefix completes, a typo too.
    let suggestions = engine.suggest(&SuggestQuery { prefix: "iph".into(), limit: 5 }).await.expect("suggest");
    assert!(suggestions.suggestions.iter().any(|s| s.text == "Apple iPhone 15 Pro"), "{suggestions:?}");
    let suggestions = engine.suggest(&SuggestQuery { prefix: "iphne".into(), limit: 5 }).await.expect("suggest");
    assert!(suggestions.suggestions.iter().any(|s| s.text.contains("iPhone")), "{suggestions:?}");
    let suggestions = engine.suggest(&SuggestQuery { prefix: "macb".into(), limit: 5 }).await.expect("suggest");
    assert_eq!(suggestions.suggestions.first().map(|s| s.text.as_str()), Some("MacBook Air Laptop"));

    // A stale version never overwrites a newer one.
    let mut newer = fixture()[3].clone();
    newer.version = 3;
    newer.title = "Pixel 8a Phone".into();
    engine.apply_changes(&[IndexChange::Upsert(newer.clone())]).await.expect("upsert");
    let mut stale = newer.clone();
    stale.version = 2;
    stale.title = "Pixel Outdated".into();
    assert_eq!(engine.apply_changes(&[IndexChange::Upsert(stale)]).await.expect("stale"), 0);
    engine.settle().await;
    let found = run(engine, query(&[("q", "pixel")])).await;
    assert_eq!(found.hits[0].title, "Pixel 8a Phone");

    // Stock flows in without clobbering catalog fields, guarded by its own version.
    let out = |sku: &str, available, version| StockUpdate {
        product_id: "p04".into(),
        sku: sku.into(),
        available,
        stock_version: version,
    };
    engine.set_stock_status(&[out("p04-A", 0, 7), out("p04-B", 0, 7)]).await.expect("stock");
    assert_eq!(engine.set_stock_status(&[out("p04-A", 5, 6)]).await.expect("stale stock"), 0);
    engine.settle().await;
    let found = run(engine, query(&[("q", "pixel")])).await;
    assert!(!found.hits[0].in_stock);
    assert_eq!(found.hits[0].title, "Pixel 8a Phone");
    let in_stock_only = run(engine, query(&[("in_stock", "true")])).await;
    assert_eq!(in_stock_only.total, 9);
    assert_eq!(in_stock_only.facets.in_stock.out_of_stock, 1, "stock facet ignores its own filter");
    newer.version = 4;
    engine.apply_changes(&[IndexChange::Upsert(newer)]).await.expect("upsert");
    engine.settle().await;
    assert!(!run(engine, query(&[("q", "pixel")])).await.hits[0].in_stock, "a catalog write keeps stock");

    // Deleting removes it from results and suggestions, and a replayed upsert does not bring it back.
    engine
        .apply_changes(&[IndexChange::Hide { product_id: "p01".into(), version: 1, deleted: true }])
        .await
        .expect("delete");
    engine.apply_changes(&[IndexChange::Upsert(fixture()[0].clone())]).await.expect("replay");
    engine.settle().await;
    let found = run(engine, query(&[("q", "iphone")])).await;
    assert_eq!(ids(&found), vec!["p02"]);
    let suggestions = engine.suggest(&SuggestQuery { prefix: "iphone 15".into(), limit: 5 }).await.expect("suggest");
    assert!(suggestions.suggestions.iter().all(|s| s.product_id != "p01"), "{suggestions:?}");

    // Draft hides; a newer activation shows it again.
    engine
        .apply_changes(&[IndexChange::Hide { product_id: "p03".into(), version: 2, deleted: false }])
        .await
        .expect("draft");
    engine.settle().await;
    assert_eq!(run(engine, query(&[("q", "galaxy")])).await.total, 0);
    let mut back = fixture()[2].clone();
    back.version = 3;
    engine.apply_changes(&[IndexChange::Upsert(back)]).await.expect("activate");
    engine.settle().await;
    assert_eq!(run(engine, query(&[("q", "galaxy")])).await.total, 1);
}

#[tokio::test]
async fn embedded_engine_passes_the_behaviour_suite() {
    let dir = tempfile::tempdir().unwrap();
    let engine = EmbeddedSearch::open(dir.path(), "products").unwrap();
    suite(&engine).await;
}

#[tokio::test]
async fn opensearch_passes_the_behaviour_suite() {
    let Ok(url) = std::env::var("OPENSEARCH_URL") else {
        eprintln!("skipped: OPENSEARCH_URL is not set (no OpenSearch to test against)");
        return;
    };
    let alias = format!("test-{}", ulid::Ulid::new().to_string().to_lowercase());
    let engine = OpenSearch::unsigned(&url, &alias).unwrap();
    engine.ensure_index().await.unwrap();
    suite(&engine).await;
}

#[tokio::test]
async fn embedded_readers_in_another_handle_see_commits_and_alias_swaps() {
    let dir = tempfile::tempdir().unwrap();
    let writer = EmbeddedSearch::open(dir.path(), "products").unwrap();
    let reader = EmbeddedSearch::open(dir.path(), "products").unwrap();
    assert_eq!(reader.search(&SearchQuery::text("iphone")).await.unwrap().total, 0);
    load(&writer).await;
    assert_eq!(reader.search(&SearchQuery::text("iphone")).await.unwrap().total, 2);

    // A rebuild with a write arriving in the middle: nothing is lost across the swap.
    let next = writer.begin_rebuild().unwrap();
    let docs = fixture();
    writer.load_rebuild(&next, &docs[..5].iter().cloned().map(IndexChange::Upsert).collect::<Vec<_>>()).unwrap();
    let mut during = docs[7].clone();
    during.version = 9;
    during.title = "Road Runner Sneaker Mk2".into();
    writer.apply_changes(&[IndexChange::Upsert(during)]).await.unwrap();
    writer.load_rebuild(&next, &docs[5..].iter().cloned().map(IndexChange::Upsert).collect::<Vec<_>>()).unwrap();
    writer.finish_rebuild(&next).unwrap();
    assert_eq!(writer.current_index().unwrap(), next);
    let found = reader.search(&SearchQuery::text("sneaker")).await.unwrap();
    assert_eq!(found.hits[0].title, "Road Runner Sneaker Mk2", "the write made during the rebuild survived");
    assert_eq!(
        reader.search(&SearchQuery { sort: SearchSort::Newest, ..SearchQuery::text("") }).await.unwrap().total,
        10
    );
}

#[tokio::test]
async fn embedded_reader_sees_every_commit_of_another_handle() {
    let dir = tempfile::tempdir().unwrap();
    let writer = EmbeddedSearch::open(dir.path(), "products").unwrap();
    let reader = EmbeddedSearch::open(dir.path(), "products").unwrap();
    load(&writer).await;
    assert_eq!(reader.search(&SearchQuery::text("iphone")).await.unwrap().total, 2);
    for k in 0..20 {
        let mut probe = fixture()[0].clone();
        probe.product_id = format!("probe{k}");
        probe.title = format!("Probe zq{k}x");
        writer.apply_changes(&[IndexChange::Upsert(probe)]).await.unwrap();
        let found = reader.search(&SearchQuery::text(format!("zq{k}x"))).await.unwrap();
        assert!(
            ids(&found).contains(&format!("probe{k}").as_str()),
            "probe {k} not visible to the other handle after the commit"
        );
    }
}
