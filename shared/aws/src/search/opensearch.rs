//! OpenSearch (Amazon OpenSearch Service, or Serverless with service `aoss`) behind the search ports.
//!
//! Requests are SigV4-signed with the function's credentials. The request bodies are built by pure
//! functions (locked by golden tests in shared/aws/tests/golden/) and responses are parsed from OpenSearch's
//! documented format. The index definition is infra/opensearch/products-index.json.
//!
//! Order safety: every write is a scripted `_update` (upsert) whose Painless script applies the same rules
//! as `IndexedProduct::apply` / `apply_stock` / `apply_rating`: a catalog change only lands if its `version`
//! is newer (a delete wins a tie), a stock change only if its per-SKU `stock_version` is newer, a rating
//! change only if its `rating_version` is newer, and none clobbers the others' fields. Hidden products stay as tombstones (`visible: false`) so a replayed older upsert cannot
//! resurrect them.
//!
//! Aliases: readers use `<alias>`; writers write to every index behind `<alias>_write` (just the live index,
//! plus the new one while a rebuild runs). The rebuild swaps both in one `_aliases` call.

use super::analysis::STOP_WORDS;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use commerce_domain::error::{DomainError, Result};
use commerce_domain::search::{
    self, attribute_term, Facets, IndexChange, IndexedRating, RatingUpdate, SearchCursor, SearchDocument, SearchHit,
    SearchQuery, SearchResults, SearchSort, StockFacet, StockUpdate, SuggestQuery, Suggestion, Suggestions,
    PRICE_BUCKETS, RATING_THRESHOLDS,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::SystemTime;

/// The index definition (settings, analyzers, synonyms, mappings).
pub const INDEX_DEFINITION: &str = super::analysis::INDEX_DEFINITION;

/// Applies a catalog change to `ctx._source` (see the module documentation).
pub const CATALOG_SCRIPT: &str = "def s = ctx._source; \
long v = s.version == null ? -1L : ((Number) s.version).longValue(); \
boolean d = s.deleted == null ? false : s.deleted; \
boolean fresh = s.version == null || (v == 0L && !d && s.document == null); \
if (!(fresh || params.version > v || (params.version == v && params.deleted && !d))) { ctx.op = 'noop'; return; } \
def stock = s.stock == null ? [:] : s.stock; \
def kept = [:]; for (k in ['rating', 'rating_score', 'review_count', 'rating_version', 'rating_stars']) { if (s.containsKey(k)) { kept[k] = s[k]; } } \
s.clear(); s.putAll(params.fields); s.putAll(kept); \
s.product_id = params.product_id; s.version = params.version; s.deleted = params.deleted; \
s.visible = params.fields.containsKey('document'); s.stock = stock; ";

/// Applies a stock change for one SKU to `ctx._source`.
pub const STOCK_SCRIPT: &str = "def s = ctx._source; \
if (s.product_id == null) { s.product_id = params.product_id; s.version = 0L; s.deleted = false; s.visible = false; } \
if (s.stock == null) { s.stock = [:]; } \
def cur = s.stock[params.sku]; \
if (cur != null && ((Number) cur.version).longValue() >= params.stock_version) { ctx.op = 'noop'; return; } \
s.stock[params.sku] = ['available': params.available, 'version': params.stock_version]; ";

/// Applies a rating change to `ctx._source`.
pub const RATING_SCRIPT: &str = "def s = ctx._source; \
if (s.product_id == null) { s.product_id = params.product_id; s.version = 0L; s.deleted = false; s.visible = false; s.stock = [:]; s.in_stock = true; } \
if (s.rating_version != null && ((Number) s.rating_version).longValue() >= params.rating_version) { ctx.op = 'noop'; return; } \
s.rating = params.rating; s.rating_score = params.rating_score; s.review_count = params.review_count; \
s.rating_stars = params.rating_stars; s.rating_version = params.rating_version;";

/// Recomputes `in_stock` (appended to both scripts): any SKU available or not reported yet.
pub const IN_STOCK_SCRIPT: &str = "def skus = s.document == null ? [] : s.document.skus; \
boolean inStock = false; \
if (skus.isEmpty()) { inStock = s.stock.isEmpty(); for (e in s.stock.values()) { if (e.available > 0) { inStock = true; } } } \
else { for (k in skus) { def e = s.stock[k]; if (e == null || e.available > 0) { inStock = true; } } } \
s.in_stock = inStock;";

/// The indexed fields of a searchable product's `_source` (besides the bookkeeping the script sets).
pub fn document_fields(doc: &SearchDocument) -> Value {
    json!({
        "seller_id": doc.seller_id,
        "title": doc.title,
        "description": doc.description,
        "brand": doc.brand,
        "brand_key": doc.brand.to_lowercase(),
        "category_ids": doc.categories.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        "category_key": doc.category_key(),
        "attribute_terms": doc.attribute_terms(),
        "attribute_text": doc.attribute_text(),
        "price": doc.price.amount,
        "price_max": doc.price_max,
        "currency": doc.price.currency.as_str(),
        "created_at": doc.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "suggest": { "input": doc.suggest_inputs() },
        "document": doc,
    })
}

fn update_action(index: &str, id: &str) -> Value {
    json!({ "update": { "_index": index, "_id": id, "retry_on_conflict": 5 } })
}

/// The `_bulk` body (NDJSON) applying catalog changes to one index.
pub fn bulk_catalog_body(index: &str, changes: &[IndexChange]) -> String {
    let mut out = String::new();
    for change in changes {
        let (fields, deleted) = match change {
            IndexChange::Upsert(doc) => (document_fields(doc), false),
            IndexChange::Hide { deleted, .. } => (json!({}), *deleted),
        };
        let update = json!({
            "script": {
                "lang": "painless",
                "source": format!("{CATALOG_SCRIPT}{IN_STOCK_SCRIPT}"),
                "params": {
                    "product_id": change.product_id(),
                    "version": change.version(),
                    "deleted": deleted,
                    "fields": fields,
                },
            },
            "scripted_upsert": true,
            "upsert": {},
        });
        push_line(&mut out, &update_action(index, change.product_id()));
        push_line(&mut out, &update);
    }
    out
}

/// The `_bulk` body (NDJSON) applying rating changes to one index.
pub fn bulk_rating_body(index: &str, updates: &[RatingUpdate]) -> String {
    let mut out = String::new();
    for update in updates {
        let rating = IndexedRating { stars: update.stars, version: update.version };
        let body = json!({
            "script": {
                "lang": "painless",
                "source": RATING_SCRIPT,
                "params": {
                    "product_id": update.product_id,
                    "rating": rating.average(),
                    "rating_score": rating.score(),
                    "review_count": rating.count(),
                    "rating_stars": update.stars,
                    "rating_version": update.version,
                },
            },
            "scripted_upsert": true,
            "upsert": {},
        });
        push_line(&mut out, &update_action(index, &update.product_id));
        push_line(&mut out, &body);
    }
    out
}

/// The `_bulk` body (NDJSON) applying stock changes to one index.
pub fn bulk_stock_body(index: &str, updates: &[StockUpdate]) -> String {
    let mut out = String::new();
    for update in updates {
        let body = json!({
            "script": {
                "lang": "painless",
                "source": format!("{STOCK_SCRIPT}{IN_STOCK_SCRIPT}"),
                "params": {
                    "product_id": update.product_id,
                    "sku": update.sku,
                    "available": update.available,
                    "stock_version": update.stock_version,
                },
            },
            "scripted_upsert": true,
            "upsert": {},
        });
        push_line(&mut out, &update_action(index, &update.product_id));
        push_line(&mut out, &body);
    }
    out
}

fn push_line(out: &mut String, value: &Value) {
    out.push_str(&value.to_string());
    out.push('\n');
}

/// Counts the items a `_bulk` response says changed the index; any item error fails the whole call
/// (the stream retries it; the scripts make the retry harmless).
pub fn parse_bulk_response(body: &Value) -> Result<usize> {
    let items = body["items"].as_array().ok_or_else(|| unexpected("bulk response without items"))?;
    let mut changed = 0;
    for item in items {
        let result = item.as_object().and_then(|o| o.values().next()).cloned().unwrap_or_default();
        if let Some(error) = result.get("error") {
            let status = result["status"].as_u64().unwrap_or(0);
            let reason = error["type"].as_str().unwrap_or("unknown");
            return Err(if status == 429 || status >= 500 {
                DomainError::Transient(format!("bulk item failed: {reason}"))
            } else {
                unexpected(format!("bulk item failed: {status} {reason}"))
            });
        }
        if matches!(result["result"].as_str(), Some("created" | "updated")) {
            changed += 1;
        }
    }
    Ok(changed)
}

fn unexpected(message: impl Into<String>) -> DomainError {
    DomainError::unexpected(std::io::Error::other(message.into()))
}

/// The filter clauses of a query, one entry per facet dimension (`attr.<name>` per attribute).
fn filter_clauses(query: &SearchQuery) -> Vec<(String, Value)> {
    let mut clauses = Vec::new();
    if let Some(category) = &query.category {
        clauses.push(("category".to_owned(), json!({ "term": { "category_ids": category } })));
    }
    if !query.brands.is_empty() {
        let brands: Vec<String> = query.brands.iter().map(|b| b.to_lowercase()).collect();
        clauses.push(("brand".to_owned(), json!({ "terms": { "brand_key": brands } })));
    }
    if query.price_min.is_some() || query.price_max.is_some() {
        let mut range = serde_json::Map::new();
        if let Some(min) = query.price_min {
            range.insert("gte".into(), json!(min));
        }
        if let Some(max) = query.price_max {
            range.insert("lte".into(), json!(max));
        }
        clauses.push(("price".to_owned(), json!({ "range": { "price": range } })));
    }
    if let Some(min) = query.rating_min {
        clauses.push(("rating".to_owned(), json!({ "range": { "rating": { "gte": min } } })));
    }
    if let Some(in_stock) = query.in_stock {
        clauses.push(("in_stock".to_owned(), json!({ "term": { "in_stock": in_stock } })));
    }
    for (name, values) in &query.attributes {
        let terms: Vec<String> = values.iter().map(|v| attribute_term(name, v)).collect();
        clauses.push((format!("attr.{name}"), json!({ "terms": { "attribute_terms": terms } })));
    }
    clauses
}

fn filters_except(clauses: &[(String, Value)], except: Option<&str>) -> Value {
    let kept: Vec<&Value> = clauses.iter().filter(|(k, _)| Some(k.as_str()) != except).map(|(_, v)| v).collect();
    json!({ "bool": { "filter": kept } })
}

fn text_query(text: &str) -> Value {
    let words: Vec<&str> = text.split_whitespace().collect();
    let meaningful: Vec<&str> =
        words.iter().copied().filter(|w| !STOP_WORDS.contains(&w.to_lowercase().as_str())).collect();
    let words = if meaningful.is_empty() { words } else { meaningful };
    if words.is_empty() {
        return json!({ "match_all": {} });
    }
    let must: Vec<Value> = words
        .iter()
        .take(12)
        .map(|word| {
            json!({ "multi_match": {
                "query": word,
                "fields": ["title^3", "brand.text^2", "attribute_text", "description^0.5"],
                "type": "best_fields",
                "fuzziness": search::FUZZINESS,
                "prefix_length": 1,
                "max_expansions": 50,
            } })
        })
        .collect();
    json!({ "bool": { "must": must } })
}

fn sort_clause(sort: SearchSort) -> Value {
    let primary = match sort {
        SearchSort::Relevance => json!({ "_score": "desc" }),
        SearchSort::PriceAsc => json!({ "price": "asc" }),
        SearchSort::PriceDesc => json!({ "price": "desc" }),
        SearchSort::Newest => json!({ "created_at": "desc" }),
        SearchSort::Rating => {
            json!({ "rating_score": { "order": "desc", "missing": IndexedRating::default().score() } })
        }
    };
    json!([primary, { "product_id": "asc" }])
}

/// The `_search` body of a query: text in `query`, filters in `post_filter`, and one filtered aggregation
/// per facet whose filter is every other facet's filter.
pub fn search_body(query: &SearchQuery) -> Value {
    let clauses = filter_clauses(query);
    let facet = |except: &str, aggregation: Value| json!({ "filter": filters_except(&clauses, Some(except)), "aggs": { "values": aggregation } });
    let price_ranges: Vec<Value> = PRICE_BUCKETS
        .iter()
        .map(|(from, to)| match to {
            Some(to) => json!({ "key": from.to_string(), "from": from, "to": to }),
            None => json!({ "key": from.to_string(), "from": from }),
        })
        .collect();
    let rating_ranges: Vec<Value> =
        RATING_THRESHOLDS.iter().map(|t| json!({ "key": t.to_string(), "from": t })).collect();
    let mut aggs = serde_json::Map::new();
    aggs.insert("f_category".into(), facet("category", json!({ "terms": { "field": "category_key", "size": 500 } })));
    aggs.insert(
        "f_brand".into(),
        facet("brand", json!({ "terms": { "field": "brand", "size": search::MAX_FACET_VALUES } })),
    );
    aggs.insert("f_price".into(), facet("price", json!({ "range": { "field": "price", "ranges": price_ranges } })));
    aggs.insert("f_rating".into(), facet("rating", json!({ "range": { "field": "rating", "ranges": rating_ranges } })));
    aggs.insert("f_in_stock".into(), facet("in_stock", json!({ "terms": { "field": "in_stock", "size": 2 } })));
    let filtered_names: Vec<&str> = query.attributes.keys().map(String::as_str).collect();
    let mut all_attributes = json!({ "terms": { "field": "attribute_terms", "size": 500 } });
    if !filtered_names.is_empty() {
        all_attributes["terms"]["exclude"] = json!(format!("({})=.*", filtered_names.join("|")));
    }
    aggs.insert(
        "f_attributes".into(),
        json!({ "filter": filters_except(&clauses, None), "aggs": { "values": all_attributes } }),
    );
    for name in &filtered_names {
        aggs.insert(
            format!("f_attr_{name}"),
            facet(
                &format!("attr.{name}"),
                json!({ "terms": { "field": "attribute_terms", "size": 100, "include": format!("{name}=.*") } }),
            ),
        );
    }
    let mut body = json!({
        "size": query.page_size + 1,
        "track_total_hits": true,
        "_source": ["document", "in_stock", "rating", "review_count"],
        "query": { "bool": { "must": [text_query(&query.text)], "filter": [{ "term": { "visible": true } }] } },
        "post_filter": filters_except(&clauses, None),
        "aggs": aggs,
        "sort": sort_clause(query.sort),
        "highlight": {
            "pre_tags": ["<em>"],
            "post_tags": ["</em>"],
            "encoder": "html",
            "fields": { "title": { "number_of_fragments": 0 } },
        },
    });
    if let Some(cursor) = &query.cursor {
        body["search_after"] = json!(cursor.after);
    }
    body
}

fn buckets(aggregations: &Value, name: &str) -> Vec<Value> {
    aggregations[name]["values"]["buckets"].as_array().cloned().unwrap_or_default()
}

fn key_counts(buckets: &[Value]) -> Vec<(String, u64)> {
    buckets
        .iter()
        .filter_map(|b| {
            let key = b["key_as_string"].as_str().or_else(|| b["key"].as_str())?.to_owned();
            Some((key, b["doc_count"].as_u64().unwrap_or(0)))
        })
        .collect()
}

/// Parses a `_search` response for `query`.
pub fn parse_search_response(query: &SearchQuery, body: &Value) -> Result<SearchResults> {
    let raw_hits = body["hits"]["hits"].as_array().ok_or_else(|| unexpected("search response without hits"))?;
    let page = query.page_size as usize;
    let mut hits = Vec::with_capacity(page);
    for hit in raw_hits.iter().take(page) {
        let doc: SearchDocument =
            serde_json::from_value(hit["_source"]["document"].clone()).map_err(DomainError::unexpected)?;
        let in_stock = hit["_source"]["in_stock"].as_bool().unwrap_or(true);
        let title = hit["highlight"]["title"][0]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| search::highlight(&doc.title, &[]));
        let mut found = SearchHit::from_document(&doc, in_stock, BTreeMap::from([("title".to_owned(), title)]));
        found.rating = hit["_source"]["rating"].as_f64().unwrap_or(0.0);
        found.review_count = hit["_source"]["review_count"].as_u64().and_then(|c| u32::try_from(c).ok()).unwrap_or(0);
        hits.push(found);
    }
    let next_cursor = if raw_hits.len() > page {
        raw_hits
            .get(page.saturating_sub(1))
            .and_then(|h| h["sort"].as_array())
            .map(|sort| SearchCursor { sort: query.sort, after: sort.clone() }.encode())
    } else {
        None
    };
    let aggregations = &body["aggregations"];
    let price_counts: Vec<u64> =
        buckets(aggregations, "f_price").iter().map(|b| b["doc_count"].as_u64().unwrap_or(0)).collect();
    let rating_counts: Vec<u64> =
        buckets(aggregations, "f_rating").iter().map(|b| b["doc_count"].as_u64().unwrap_or(0)).collect();
    let mut in_stock = StockFacet::default();
    for (key, count) in key_counts(&buckets(aggregations, "f_in_stock")) {
        match key.as_str() {
            "true" => in_stock.in_stock = count,
            "false" => in_stock.out_of_stock = count,
            _ => {}
        }
    }
    let mut attribute_counts = key_counts(&buckets(aggregations, "f_attributes"));
    for name in query.attributes.keys() {
        attribute_counts.extend(key_counts(&buckets(aggregations, &format!("f_attr_{name}"))));
    }
    let facets = Facets {
        category: search::category_tree(key_counts(&buckets(aggregations, "f_category"))),
        brand: search::top_values(key_counts(&buckets(aggregations, "f_brand"))),
        price: search::price_facets(&price_counts),
        rating: search::rating_facets(&rating_counts),
        in_stock,
        attributes: search::attribute_facets(attribute_counts),
    };
    Ok(SearchResults { hits, total: body["hits"]["total"]["value"].as_u64().unwrap_or(0), facets, next_cursor })
}

/// The `_search` body of a completion request: the completion suggester with fuzzy prefixes.
pub fn suggest_body(query: &SuggestQuery) -> Value {
    json!({
        "_source": ["product_id", "document.title"],
        "suggest": {
            "products": {
                "prefix": query.prefix,
                "completion": {
                    "field": "suggest",
                    "size": query.limit,
                    "skip_duplicates": true,
                    "fuzzy": { "fuzziness": search::FUZZINESS, "prefix_length": 1 },
                },
            },
        },
    })
}

/// Parses a completion response: one suggestion per product, titled with the product's title.
pub fn parse_suggest_response(body: &Value) -> Suggestions {
    let mut suggestions: Vec<Suggestion> = Vec::new();
    for entry in body["suggest"]["products"].as_array().into_iter().flatten() {
        for option in entry["options"].as_array().into_iter().flatten() {
            let product_id = option["_source"]["product_id"].as_str().or_else(|| option["_id"].as_str());
            let title = option["_source"]["document"]["title"].as_str().or_else(|| option["text"].as_str());
            if let (Some(product_id), Some(title)) = (product_id, title) {
                if !suggestions.iter().any(|s| s.text.eq_ignore_ascii_case(title)) {
                    suggestions.push(Suggestion { text: title.to_owned(), product_id: product_id.to_owned() });
                }
            }
        }
    }
    suggestions.truncate(search::MAX_SUGGESTIONS);
    Suggestions { suggestions }
}

/// How requests are authorized.
#[derive(Clone)]
enum Auth {
    /// SigV4 with the function's credentials (`es` for domains, `aoss` for Serverless collections).
    SigV4 { credentials: SharedCredentialsProvider, region: String, service: &'static str },
    /// No signing (a local OpenSearch for the behavioural suite).
    None,
}

/// An OpenSearch client for one alias.
#[derive(Clone)]
pub struct OpenSearch {
    http: reqwest::Client,
    base: String,
    alias: String,
    auth: Auth,
}

impl OpenSearch {
    /// A client for an AWS endpoint, signing with the SDK config's credentials and region.
    pub fn new(endpoint: &str, alias: &str, aws: &aws_config::SdkConfig) -> Result<Self> {
        let base = if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
            endpoint.trim_end_matches('/').to_owned()
        } else {
            format!("https://{}", endpoint.trim_end_matches('/'))
        };
        let credentials = aws
            .credentials_provider()
            .ok_or_else(|| unexpected("no AWS credentials provider for signing search requests"))?;
        let region = aws.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".to_owned());
        let service = if base.contains(".aoss.") { "aoss" } else { "es" };
        Ok(Self { http: client()?, base, alias: alias.to_owned(), auth: Auth::SigV4 { credentials, region, service } })
    }

    /// A client without request signing (e.g. `OPENSEARCH_URL=http://localhost:9200`).
    pub fn unsigned(url: &str, alias: &str) -> Result<Self> {
        Ok(Self {
            http: client()?,
            base: url.trim_end_matches('/').to_owned(),
            alias: alias.to_owned(),
            auth: Auth::None,
        })
    }

    async fn send(&self, method: &str, path: &str, body: Option<(String, &str)>) -> Result<(u16, Value)> {
        let url = format!("{}{path}", self.base);
        let (bytes, content_type) = match body {
            Some((b, ct)) => (b.into_bytes(), Some(ct)),
            None => (Vec::new(), None),
        };
        let mut request = http::Request::builder().method(method).uri(&url);
        if let Some(ct) = content_type {
            request = request.header(http::header::CONTENT_TYPE, ct);
        }
        let mut request = request.body(bytes).map_err(DomainError::unexpected)?;
        if let Auth::SigV4 { credentials, region, service } = &self.auth {
            sign(&mut request, credentials, region, service).await?;
        }
        let request = reqwest::Request::try_from(request.map(reqwest::Body::from)).map_err(DomainError::unexpected)?;
        let response = self.http.execute(request).await.map_err(|e| DomainError::Transient(format!("search: {e}")))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| DomainError::Transient(format!("search: {e}")))?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status == 429 || status >= 500 {
            return Err(DomainError::Transient(format!("search returned {status}")));
        }
        Ok((status, value))
    }

    async fn ok(&self, method: &str, path: &str, body: Option<(String, &str)>) -> Result<Value> {
        let (status, value) = self.send(method, path, body).await?;
        if !(200..300).contains(&status) {
            let reason = value["error"]["type"].as_str().unwrap_or("unknown").to_owned();
            return Err(unexpected(format!("{method} {path} returned {status} ({reason})")));
        }
        Ok(value)
    }

    fn write_alias(&self) -> String {
        format!("{}_write", self.alias)
    }

    /// The indexes writes go to: those behind `<alias>_write`, else the alias itself.
    async fn write_targets(&self) -> Result<Vec<String>> {
        let (status, value) = self.send("GET", &format!("/_alias/{}", self.write_alias()), None).await?;
        if status == 404 {
            return Ok(vec![self.alias.clone()]);
        }
        let targets: Vec<String> = value.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
        if targets.is_empty() {
            return Ok(vec![self.alias.clone()]);
        }
        Ok(targets)
    }

    async fn bulk(&self, body: String) -> Result<usize> {
        if body.is_empty() {
            return Ok(0);
        }
        let value = self.ok("POST", "/_bulk", Some((body, "application/x-ndjson"))).await?;
        parse_bulk_response(&value)
    }

    /// Creates an index with the project's definition.
    pub async fn create_index(&self, name: &str) -> Result<()> {
        self.ok("PUT", &format!("/{name}"), Some((INDEX_DEFINITION.to_owned(), "application/json"))).await.map(|_| ())
    }

    /// Creates the first index and both aliases when the alias does not exist yet.
    pub async fn ensure_index(&self) -> Result<()> {
        let (status, _) = self.send("HEAD", &format!("/{}", self.alias), None).await?;
        if status != 404 {
            return Ok(());
        }
        let name = format!("{}-0", self.alias);
        self.create_index(&name).await?;
        let actions = json!({ "actions": [
            { "add": { "index": name, "alias": self.alias } },
            { "add": { "index": name, "alias": self.write_alias() } },
        ] });
        self.ok("POST", "/_aliases", Some((actions.to_string(), "application/json"))).await.map(|_| ())
    }

    /// Makes every write visible now (tests; production relies on the 1 s refresh interval).
    pub async fn refresh(&self) -> Result<()> {
        self.ok("POST", &format!("/{}/_refresh", self.alias), None).await.map(|_| ())
    }

    /// Starts a rebuild: a fresh index that receives every write from now on. Returns its name.
    pub async fn begin_rebuild(&self) -> Result<String> {
        let name = format!("{}-{}", self.alias, commerce_domain::ids::new_id("ix").trim_start_matches("ix_"));
        self.create_index(&name).await?;
        let actions = json!({ "actions": [{ "add": { "index": name, "alias": self.write_alias() } }] });
        self.ok("POST", "/_aliases", Some((actions.to_string(), "application/json"))).await?;
        Ok(name)
    }

    /// Writes catalog states into the rebuilt index, with each product's stock carried over from the live one.
    pub async fn load_rebuild(&self, name: &str, changes: &[IndexChange]) -> Result<usize> {
        let ids: Vec<&str> = changes.iter().map(IndexChange::product_id).collect();
        let live = self
            .ok(
                "POST",
                &format!("/{}/_mget", self.alias),
                Some((
                    json!({ "ids": ids, "_source": ["stock", "rating_stars", "rating_version"] }).to_string(),
                    "application/json",
                )),
            )
            .await?;
        let mut stock = Vec::new();
        let mut ratings = Vec::new();
        for doc in live["docs"].as_array().into_iter().flatten() {
            let Some(product_id) = doc["_id"].as_str() else {
                continue;
            };
            if let (Some(stars), Some(version)) =
                (doc["_source"]["rating_stars"].as_array(), doc["_source"]["rating_version"].as_u64())
            {
                let mut counts = [0u64; 5];
                for (c, v) in counts.iter_mut().zip(stars) {
                    *c = v.as_u64().unwrap_or(0);
                }
                ratings.push(RatingUpdate { product_id: product_id.to_owned(), stars: counts, version });
            }
            for (sku, s) in doc["_source"]["stock"].as_object().into_iter().flatten() {
                stock.push(StockUpdate {
                    product_id: product_id.to_owned(),
                    sku: sku.clone(),
                    available: s["available"].as_i64().unwrap_or(0),
                    stock_version: s["version"].as_u64().unwrap_or(0),
                });
            }
        }
        let changed = self.bulk(bulk_catalog_body(name, changes)).await?;
        self.bulk(bulk_stock_body(name, &stock)).await?;
        if !ratings.is_empty() {
            self.bulk(bulk_rating_body(name, &ratings)).await?;
        }
        Ok(changed)
    }

    /// Abandons a rebuild: stops writes to the new index and deletes it.
    pub async fn abort_rebuild(&self, name: &str) -> Result<()> {
        let actions = json!({ "actions": [{ "remove": { "index": name, "alias": self.write_alias() } }] });
        self.send("POST", "/_aliases", Some((actions.to_string(), "application/json"))).await?;
        self.send("DELETE", &format!("/{name}"), None).await.map(|_| ())
    }

    /// Swaps the read alias to the rebuilt index and stops writing to the old one, in one atomic call.
    pub async fn finish_rebuild(&self, name: &str) -> Result<()> {
        let (_, current) = self.send("GET", &format!("/_alias/{}", self.alias), None).await?;
        let mut actions = vec![json!({ "add": { "index": name, "alias": self.alias } })];
        for old in current.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default() {
            if old != name {
                actions.push(json!({ "remove": { "index": old, "alias": self.alias } }));
                actions.push(json!({ "remove": { "index": old, "alias": self.write_alias() } }));
            }
        }
        let body = json!({ "actions": actions }).to_string();
        self.ok("POST", "/_aliases", Some((body, "application/json"))).await.map(|_| ())
    }
}

fn client() -> Result<reqwest::Client> {
    reqwest::Client::builder().timeout(std::time::Duration::from_secs(8)).build().map_err(DomainError::unexpected)
}

async fn sign(
    request: &mut http::Request<Vec<u8>>,
    credentials: &SharedCredentialsProvider,
    region: &str,
    service: &str,
) -> Result<()> {
    use aws_sigv4::http_request::{PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings};
    let credentials =
        credentials.provide_credentials().await.map_err(|e| DomainError::Transient(format!("credentials: {e}")))?;
    let identity = credentials.into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .map_err(DomainError::unexpected)?
        .into();
    let uri = request.uri().to_string();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let signable = SignableRequest::new(
        request.method().as_str(),
        uri,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(request.body()),
    )
    .map_err(DomainError::unexpected)?;
    let (instructions, _) =
        aws_sigv4::http_request::sign(signable, &params).map_err(DomainError::unexpected)?.into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}

impl commerce_app::ports::SearchIndex for OpenSearch {
    async fn apply_changes(&self, changes: &[IndexChange]) -> Result<usize> {
        let mut changed = 0;
        for (i, target) in self.write_targets().await?.iter().enumerate() {
            let n = self.bulk(bulk_catalog_body(target, changes)).await?;
            if i == 0 {
                changed = n;
            }
        }
        Ok(changed)
    }

    async fn set_stock_status(&self, updates: &[StockUpdate]) -> Result<usize> {
        let mut changed = 0;
        for (i, target) in self.write_targets().await?.iter().enumerate() {
            let n = self.bulk(bulk_stock_body(target, updates)).await?;
            if i == 0 {
                changed = n;
            }
        }
        Ok(changed)
    }
}

impl commerce_app::ports::RatingIndex for OpenSearch {
    async fn set_ratings(&self, updates: &[RatingUpdate]) -> Result<usize> {
        let mut changed = 0;
        for (i, target) in self.write_targets().await?.iter().enumerate() {
            let n = self.bulk(bulk_rating_body(target, updates)).await?;
            if i == 0 {
                changed = n;
            }
        }
        Ok(changed)
    }
}

impl commerce_app::ports::ProductSearch for OpenSearch {
    async fn search(&self, query: &SearchQuery) -> Result<SearchResults> {
        let body = search_body(query).to_string();
        let (status, value) =
            self.send("POST", &format!("/{}/_search", self.alias), Some((body, "application/json"))).await?;
        if status == 400 && query.cursor.is_some() {
            return Err(DomainError::invalid_parameter("cursor", "is not a valid cursor for this query"));
        }
        if !(200..300).contains(&status) {
            return Err(unexpected(format!("search returned {status}")));
        }
        parse_search_response(query, &value)
    }

    async fn suggest(&self, query: &SuggestQuery) -> Result<Suggestions> {
        let body = suggest_body(query).to_string();
        let value = self.ok("POST", &format!("/{}/_search", self.alias), Some((body, "application/json"))).await?;
        let mut suggestions = parse_suggest_response(&value);
        suggestions.suggestions.truncate(query.limit);
        Ok(suggestions)
    }
}
