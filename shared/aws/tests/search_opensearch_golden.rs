//! Golden tests for the OpenSearch adapter: the request bodies it sends are locked in
//! shared/aws/tests/golden/opensearch/*.json (regenerate with `UPDATE_GOLDEN=1` and review the diff), and
//! responses in OpenSearch's documented format parse into the domain's results.
#![cfg(feature = "search")]

use chrono::{TimeZone, Utc};
use commerce_aws::search::opensearch::{
    bulk_catalog_body, bulk_rating_body, bulk_stock_body, parse_bulk_response, parse_search_response,
    parse_suggest_response, search_body, suggest_body,
};
use commerce_domain::money::{Currency, Money};
use commerce_domain::search::{
    CategoryRef, IndexChange, RatingUpdate, SearchCursor, SearchDocument, SearchQuery, SearchSort, StockUpdate,
    SuggestQuery,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn golden(name: &str, actual: &Value) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/opensearch").join(name);
    let pretty = serde_json::to_string_pretty(actual).unwrap() + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &pretty).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1 to create it)", path.display()));
    let expected: Value = serde_json::from_str(&expected).unwrap();
    assert_eq!(&expected, actual, "{} changed; if intended, rerun with UPDATE_GOLDEN=1 and review", path.display());
}

fn ndjson(body: &str) -> Value {
    Value::Array(body.lines().map(|l| serde_json::from_str(l).unwrap()).collect())
}

fn document() -> SearchDocument {
    let at = Utc.with_ymd_and_hms(2025, 3, 1, 10, 0, 0).unwrap();
    SearchDocument {
        product_id: "prd_01jn0000000000000000000001".into(),
        version: 7,
        seller_id: "usr_seller".into(),
        title: "Apple iPhone 15 Pro".into(),
        description: "Titanium.".into(),
        brand: "Apple".into(),
        categories: vec![
            CategoryRef { id: "cat_electronics".into(), name: "Electronics".into() },
            CategoryRef { id: "cat_phones".into(), name: "Phones".into() },
        ],
        attributes: BTreeMap::from([("color".into(), vec!["Black".into()]), ("os".into(), vec!["iOS".into()])]),
        other_attribute_text: vec!["A17".into()],
        price: Money::new(99_900, Currency::USD),
        price_max: 129_900,
        skus: vec!["IP15-BLK-128".into()],
        image: Some("https://images.example.com/ip15.jpg".into()),
        rating: 4.5,
        review_count: 12,
        created_at: at,
        updated_at: at,
    }
}

#[test]
fn search_request_with_every_filter_is_locked() {
    let mut query = SearchQuery::from_params([
        ("q", "the iphne pro"),
        ("category", "cat_electronics"),
        ("brand", "Apple,Samsung"),
        ("price_min", "10000"),
        ("price_max", "150000"),
        ("rating_min", "4"),
        ("in_stock", "true"),
        ("attr.color", "black"),
        ("attr.os", "iOS"),
        ("sort", "price_asc"),
        ("page_size", "10"),
    ])
    .unwrap();
    query.cursor = Some(SearchCursor { sort: SearchSort::PriceAsc, after: vec![json!(99_900), json!("prd_x")] });
    golden("search-every-filter.json", &search_body(&query));
}

#[test]
fn search_request_browsing_is_locked() {
    golden("search-browse.json", &search_body(&SearchQuery::from_params([]).unwrap()));
}

#[test]
fn suggest_request_is_locked() {
    golden("suggest.json", &suggest_body(&SuggestQuery { prefix: "iphne".into(), limit: 5 }));
}

#[test]
fn bulk_requests_are_locked() {
    let changes = vec![
        IndexChange::Upsert(document()),
        IndexChange::Hide { product_id: "prd_gone".into(), version: 3, deleted: true },
    ];
    golden("bulk-catalog.json", &ndjson(&bulk_catalog_body("products-0", &changes)));
    let stock =
        vec![StockUpdate { product_id: "prd_x".into(), sku: "IP15-BLK-128".into(), available: 0, stock_version: 9 }];
    golden("bulk-stock.json", &ndjson(&bulk_stock_body("products-0", &stock)));
    let ratings = vec![RatingUpdate { product_id: "prd_x".into(), stars: [0, 0, 1, 0, 2], version: 3 }];
    golden("bulk-rating.json", &ndjson(&bulk_rating_body("products-0", &ratings)));
}

#[test]
fn index_definition_has_analyzers_synonyms_and_a_suggest_field() {
    let definition: Value = serde_json::from_str(commerce_aws::search::opensearch::INDEX_DEFINITION).unwrap();
    let analysis = &definition["settings"]["analysis"];
    assert_eq!(analysis["filter"]["product_synonyms"]["type"], "synonym_graph");
    assert!(analysis["analyzer"]["product_search"]["filter"].as_array().unwrap().contains(&json!("product_synonyms")));
    assert_eq!(definition["mappings"]["properties"]["suggest"]["type"], "completion");
    let body = search_body(&SearchQuery::text("x"));
    for field in [
        "category_key",
        "brand",
        "price",
        "rating",
        "rating_score",
        "review_count",
        "in_stock",
        "attribute_terms",
        "created_at",
        "product_id",
    ] {
        assert!(definition["mappings"]["properties"].get(field).is_some(), "{field} is queried but not mapped");
    }
    assert!(body["aggs"]["f_category"].is_object());
    let fields = commerce_aws::search::opensearch::document_fields(&document());
    for key in fields.as_object().unwrap().keys() {
        assert!(definition["mappings"]["properties"].get(key).is_some(), "{key} is written but not mapped (strict)");
    }
}

#[test]
fn search_response_parses_hits_facets_and_cursor() {
    let query =
        SearchQuery::from_params([("q", "iphone"), ("brand", "Apple"), ("attr.color", "black"), ("page_size", "1")])
            .unwrap();
    let doc = serde_json::to_value(document()).unwrap();
    let response = json!({
        "took": 4, "timed_out": false,
        "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
        "hits": {
            "total": {"value": 2, "relation": "eq"},
            "max_score": null,
            "hits": [
                {"_index": "products-0", "_id": "prd_01jn0000000000000000000001", "_score": 3.2,
                 "_source": {"document": doc, "in_stock": false},
                 "highlight": {"title": ["Apple <em>iPhone</em> 15 Pro"]},
                 "sort": [3.2, "prd_01jn0000000000000000000001"]},
                {"_index": "products-0", "_id": "prd_b", "_score": 1.0,
                 "_source": {"document": doc, "in_stock": true}, "sort": [1.0, "prd_b"]}
            ]
        },
        "aggregations": {
            "f_category": {"doc_count": 2, "values": {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0, "buckets": [
                {"key": "cat_electronics\u{1f}Electronics\u{1e}cat_phones\u{1f}Phones", "doc_count": 2}]}},
            "f_brand": {"doc_count": 5, "values": {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0, "buckets": [
                {"key": "Apple", "doc_count": 2}, {"key": "Samsung", "doc_count": 3}]}},
            "f_price": {"doc_count": 2, "values": {"buckets": [
                {"key": "0", "from": 0.0, "to": 2500.0, "doc_count": 0},
                {"key": "2500", "from": 2500.0, "to": 5000.0, "doc_count": 0},
                {"key": "5000", "from": 5000.0, "to": 10000.0, "doc_count": 0},
                {"key": "10000", "from": 10000.0, "to": 25000.0, "doc_count": 0},
                {"key": "25000", "from": 25000.0, "to": 50000.0, "doc_count": 0},
                {"key": "50000", "from": 50000.0, "to": 100000.0, "doc_count": 2},
                {"key": "100000", "from": 100000.0, "doc_count": 0}]}},
            "f_rating": {"doc_count": 2, "values": {"buckets": [
                {"key": "4", "from": 4.0, "doc_count": 2}, {"key": "3", "from": 3.0, "doc_count": 2},
                {"key": "2", "from": 2.0, "doc_count": 2}, {"key": "1", "from": 1.0, "doc_count": 2}]}},
            "f_in_stock": {"doc_count": 2, "values": {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0, "buckets": [
                {"key": 1, "key_as_string": "true", "doc_count": 1}, {"key": 0, "key_as_string": "false", "doc_count": 1}]}},
            "f_attributes": {"doc_count": 2, "values": {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0, "buckets": [
                {"key": "os=ios", "doc_count": 2}]}},
            "f_attr_color": {"doc_count": 4, "values": {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0, "buckets": [
                {"key": "color=black", "doc_count": 2}, {"key": "color=blue", "doc_count": 2}]}}
        }
    });
    let results = parse_search_response(&query, &response).unwrap();
    assert_eq!(results.total, 2);
    assert_eq!(results.hits.len(), 1);
    assert_eq!(results.hits[0].highlights["title"], "Apple <em>iPhone</em> 15 Pro");
    assert!(!results.hits[0].in_stock);
    assert_eq!(results.hits[0].price.amount, 99_900);
    let cursor = SearchCursor::decode(results.next_cursor.as_deref().unwrap(), SearchSort::Relevance).unwrap();
    assert_eq!(cursor.after, vec![json!(3.2), json!("prd_01jn0000000000000000000001")]);
    assert_eq!(results.facets.category[0].name, "Electronics");
    assert_eq!(results.facets.category[0].children[0].count, 2);
    assert_eq!(results.facets.brand[0].value, "Samsung");
    assert_eq!(results.facets.price[5].count, 2);
    assert_eq!(results.facets.rating[0].min, 4);
    assert_eq!((results.facets.in_stock.in_stock, results.facets.in_stock.out_of_stock), (1, 1));
    let names: Vec<&str> = results.facets.attributes.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, vec!["color", "os"]);
    assert_eq!(results.facets.attributes[0].values.len(), 2);
}

#[test]
fn suggest_and_bulk_responses_parse() {
    let response = json!({
        "took": 2, "timed_out": false, "hits": {"total": {"value": 0, "relation": "eq"}, "hits": []},
        "suggest": {"products": [{"text": "iphne", "offset": 0, "length": 5, "options": [
            {"text": "iPhone 15 Pro", "_index": "products-0", "_id": "p01", "_score": 2.0,
             "_source": {"product_id": "p01", "document": {"title": "Apple iPhone 15 Pro"}}},
            {"text": "iPhone 15 Pro Max", "_index": "products-0", "_id": "p02", "_score": 1.5,
             "_source": {"product_id": "p02", "document": {"title": "Apple iPhone 15 Pro Max"}}}
        ]}]}
    });
    let suggestions = parse_suggest_response(&response).suggestions;
    assert_eq!(suggestions.len(), 2);
    assert_eq!(suggestions[0].text, "Apple iPhone 15 Pro");
    assert_eq!(suggestions[1].product_id, "p02");

    let bulk = json!({"took": 3, "errors": false, "items": [
        {"update": {"_index": "products-0", "_id": "a", "_version": 2, "result": "updated", "status": 200}},
        {"update": {"_index": "products-0", "_id": "b", "_version": 1, "result": "created", "status": 201}},
        {"update": {"_index": "products-0", "_id": "c", "_version": 4, "result": "noop", "status": 200}}
    ]});
    assert_eq!(parse_bulk_response(&bulk).unwrap(), 2);
    let throttled = json!({"took": 3, "errors": true, "items": [
        {"update": {"_index": "products-0", "_id": "a", "status": 429,
                    "error": {"type": "es_rejected_execution_exception", "reason": "queue full"}}}
    ]});
    assert!(matches!(parse_bulk_response(&throttled), Err(commerce_domain::DomainError::Transient(_))));
}
