//! Product search: the search document, the order-safe merge rules of the index, the shopper's query with
//! its validation, facets and cursors. Pure and synchronous; the engines live in `adapters::search`.
//!
//! The index is never the source of truth for price or stock: it is a projection of the catalog (and, for
//! stock, of inventory) that may lag by seconds. Checkout reads the catalog and inventory tables.

use crate::catalog;
use crate::error::DomainError;
use crate::money::{Currency, Money};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most hits a page may hold.
pub const MAX_PAGE_SIZE: u32 = 50;
/// Hits per page when the caller does not say.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// Longest accepted query text, in characters.
pub const MAX_QUERY_CHARS: usize = 200;
/// Most `attr.<name>` filters in one query.
pub const MAX_ATTRIBUTE_FILTERS: usize = 10;
/// Most values per multi-valued filter (`brand=a,b,c`).
pub const MAX_FILTER_VALUES: usize = 20;
/// Most completions a suggest request returns.
pub const MAX_SUGGESTIONS: usize = 10;
/// Most values shown per brand or attribute facet.
pub const MAX_FACET_VALUES: usize = 20;

/// Price facet buckets in minor units: `[from, to)`, the last one open-ended.
pub const PRICE_BUCKETS: [(i64, Option<i64>); 7] = [
    (0, Some(2_500)),
    (2_500, Some(5_000)),
    (5_000, Some(10_000)),
    (10_000, Some(25_000)),
    (25_000, Some(50_000)),
    (50_000, Some(100_000)),
    (100_000, None),
];

/// Rating facet thresholds ("4 stars & up" ...).
pub const RATING_THRESHOLDS: [u8; 4] = [4, 3, 2, 1];

/// One node of a product's category path, root first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryRef {
    pub id: String,
    pub name: String,
}

/// What the index holds for a searchable (active) product: the catalog's fields that search, filters,
/// facets and result cards need. Built from the catalog record by the indexer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchDocument {
    pub product_id: String,
    /// The catalog item's `version`; a change with a lower version never overwrites a higher one.
    pub version: u64,
    pub seller_id: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub brand: String,
    /// Category path, root first; the last element is the product's own category. May be empty.
    #[serde(default)]
    pub categories: Vec<CategoryRef>,
    /// Facetable attributes and variant options, names lower-case, values as display strings.
    #[serde(default)]
    pub attributes: BTreeMap<String, Vec<String>>,
    /// Values of the other attributes: searched as text, not faceted.
    #[serde(default)]
    pub other_attribute_text: Vec<String>,
    /// The lowest variant price.
    pub price: Money,
    /// The highest variant price, in the same currency.
    pub price_max: i64,
    #[serde(default)]
    pub skus: Vec<String>,
    #[serde(default)]
    pub image: Option<String>,
    /// Not read by the engines, which take a product's rating from its review aggregate (`IndexedProduct::rating`,
    /// fed by the reviews stream); the catalog leaves it 0.
    #[serde(default)]
    pub rating: f64,
    #[serde(default)]
    pub review_count: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl SearchDocument {
    /// The category id the product sits in (the leaf of its path), if any.
    pub fn category_id(&self) -> Option<&str> {
        self.categories.last().map(|c| c.id.as_str())
    }

    /// Facet terms `name=value` (lower-cased), the form both engines index attributes in.
    pub fn attribute_terms(&self) -> Vec<String> {
        let mut terms: Vec<String> = self
            .attributes
            .iter()
            .flat_map(|(name, values)| values.iter().map(move |v| attribute_term(name, v)))
            .collect();
        terms.sort();
        terms.dedup();
        terms
    }

    /// Free text from attribute values and category names, searched with a low weight.
    pub fn attribute_text(&self) -> String {
        let mut parts: Vec<&str> = self.categories.iter().map(|c| c.name.as_str()).collect();
        parts.extend(self.attributes.values().flatten().map(String::as_str));
        parts.extend(self.other_attribute_text.iter().map(String::as_str));
        parts.join(" ")
    }

    /// The encoded category path, one facet key for the whole path (see [`encode_category_path`]).
    pub fn category_key(&self) -> String {
        encode_category_path(&self.categories)
    }

    /// Completion inputs: the title, the title from each later word on, and the brand, so that a prefix of
    /// any word of the title completes to the title.
    pub fn suggest_inputs(&self) -> Vec<String> {
        let words: Vec<&str> = self.title.split_whitespace().collect();
        let mut inputs: Vec<String> = (0..words.len()).map(|i| words[i..].join(" ")).collect();
        if !self.brand.is_empty() && !inputs.iter().any(|i| i.eq_ignore_ascii_case(&self.brand)) {
            inputs.push(self.brand.clone());
        }
        inputs.truncate(12);
        inputs
    }
}

/// The search document of a catalog product, or `None` when shoppers may not see it (draft, archived).
/// `categories` is the category list (any order); names and facetable attribute definitions come from the
/// product's category path. Variant options (size, colour ...) are always facets.
pub fn document_from_product(product: &catalog::Product, categories: &[catalog::Category]) -> Option<SearchDocument> {
    if !product.is_public() {
        return None;
    }
    let by_id: BTreeMap<&str, &catalog::Category> = categories.iter().map(|c| (c.category_id.as_str(), c)).collect();
    let mut path_ids: Vec<&str> = product.category_path.iter().map(String::as_str).collect();
    if path_ids.last() != Some(&product.category_id.as_str()) {
        path_ids.push(&product.category_id);
    }
    let path: Vec<CategoryRef> = path_ids
        .iter()
        .map(|id| CategoryRef {
            id: (*id).to_owned(),
            name: by_id.get(id).map_or_else(|| (*id).to_owned(), |c| c.name.clone()),
        })
        .collect();
    let facetable: std::collections::BTreeSet<String> = path_ids
        .iter()
        .filter_map(|id| by_id.get(id))
        .flat_map(|c| c.attributes.iter().filter(|d| d.facetable).map(|d| d.name.to_lowercase()))
        .collect();
    let mut attributes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut other_attribute_text = Vec::new();
    for (name, value) in &product.attributes {
        let values = attribute_strings(value);
        if facetable.contains(&name.to_lowercase()) {
            attributes.entry(name.to_lowercase()).or_default().extend(values);
        } else {
            other_attribute_text.extend(values);
        }
    }
    for variant in &product.variants {
        for (name, value) in &variant.options {
            let values = attributes.entry(name.to_lowercase()).or_default();
            if !values.iter().any(|v| v.eq_ignore_ascii_case(value)) {
                values.push(value.clone());
            }
        }
    }
    Some(SearchDocument {
        product_id: product.product_id.clone(),
        version: product.version,
        seller_id: product.seller_id.clone(),
        title: product.title.clone(),
        description: product.description.clone(),
        brand: product.brand.clone().unwrap_or_default(),
        categories: path,
        attributes,
        other_attribute_text,
        price: product.price_min,
        price_max: product.price_max.amount,
        skus: product.variants.iter().map(|v| v.sku.clone()).collect(),
        image: product.images.first().cloned(),
        rating: 0.0,
        review_count: 0,
        created_at: product.created_at,
        updated_at: product.updated_at,
    })
}

/// The index change a catalog product's new state calls for.
pub fn change_for_product(product: &catalog::Product, categories: &[catalog::Category]) -> IndexChange {
    match document_from_product(product, categories) {
        Some(doc) => IndexChange::Upsert(doc),
        None => IndexChange::Hide { product_id: product.product_id.clone(), version: product.version, deleted: false },
    }
}

fn attribute_strings(value: &catalog::AttributeValue) -> Vec<String> {
    match value {
        catalog::AttributeValue::Boolean(b) => vec![if *b { "yes" } else { "no" }.to_owned()],
        catalog::AttributeValue::Number(n) => vec![n.to_string()],
        catalog::AttributeValue::Text(t) => vec![t.clone()],
        catalog::AttributeValue::TextList(list) => list.clone(),
    }
}

/// The `name=value` facet term of one attribute value.
pub fn attribute_term(name: &str, value: &str) -> String {
    format!("{}={}", name.trim().to_lowercase(), value.trim().to_lowercase())
}

const PATH_FIELD_SEP: char = '\u{1f}';
const PATH_NODE_SEP: char = '\u{1e}';

/// Encodes a category path as one keyword: `id<US>name<RS>id<US>name`. Engines count this keyword and
/// [`category_tree`] rebuilds the tree from the counts.
pub fn encode_category_path(path: &[CategoryRef]) -> String {
    path.iter()
        .map(|c| format!("{}{PATH_FIELD_SEP}{}", c.id, c.name))
        .collect::<Vec<_>>()
        .join(&PATH_NODE_SEP.to_string())
}

/// The inverse of [`encode_category_path`]; malformed nodes are skipped.
pub fn decode_category_path(key: &str) -> Vec<CategoryRef> {
    if key.is_empty() {
        return Vec::new();
    }
    key.split(PATH_NODE_SEP)
        .filter_map(|node| {
            let (id, name) = node.split_once(PATH_FIELD_SEP)?;
            Some(CategoryRef { id: id.to_owned(), name: name.to_owned() })
        })
        .collect()
}

/// Whether an encoded path passes through the category `id`.
pub fn category_path_contains(key: &str, id: &str) -> bool {
    key.split(PATH_NODE_SEP).any(|node| node.split(PATH_FIELD_SEP).next() == Some(id))
}

/// Stock of one SKU as inventory last reported it, guarded by inventory's own version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkuStock {
    pub available: i64,
    pub version: u64,
}

/// A stock change for one SKU of a product (from the inventory stream).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockUpdate {
    pub product_id: String,
    pub sku: String,
    /// Units available to sell across warehouses (on hand minus reserved).
    pub available: i64,
    /// Inventory's version of this SKU's stock; a lower one never overwrites a higher one.
    pub stock_version: u64,
}

/// A product's rating aggregate (from the reviews stream): approved reviews per star, at the aggregate's
/// `version`; a lower version never overwrites a higher one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RatingUpdate {
    pub product_id: String,
    pub stars: [u64; 5],
    pub version: u64,
}

/// The rating part of an indexed product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IndexedRating {
    pub stars: [u64; 5],
    pub version: u64,
}

impl IndexedRating {
    pub fn counts(&self) -> crate::review::RatingCounts {
        crate::review::RatingCounts { stars: self.stars, version: self.version }
    }

    /// The average shown and filtered on (`rating`, `rating_min`, the rating facet).
    pub fn average(&self) -> f64 {
        self.counts().average_centi() as f64 / 100.0
    }

    /// The Bayesian average `sort=rating` orders by.
    pub fn score(&self) -> f64 {
        self.counts().bayesian_centi() as f64 / 100.0
    }

    pub fn count(&self) -> u32 {
        u32::try_from(self.counts().count()).unwrap_or(u32::MAX)
    }
}

/// A change to apply to the index, derived from one catalog stream record.
// Nearly every change is an upsert; boxing the document would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum IndexChange {
    /// The product is active: index or replace its document.
    Upsert(SearchDocument),
    /// The product left search: drafted or archived (`deleted: false`) or deleted (`deleted: true`).
    Hide { product_id: String, version: u64, deleted: bool },
}

impl IndexChange {
    pub fn product_id(&self) -> &str {
        match self {
            IndexChange::Upsert(doc) => &doc.product_id,
            IndexChange::Hide { product_id, .. } => product_id,
        }
    }

    pub fn version(&self) -> u64 {
        match self {
            IndexChange::Upsert(doc) => doc.version,
            IndexChange::Hide { version, .. } => *version,
        }
    }

    fn deleted(&self) -> bool {
        matches!(self, IndexChange::Hide { deleted: true, .. })
    }
}

/// Everything the index keeps for one product id: the catalog part (a document, or a tombstone that
/// remembers the version that hid it) and the stock part, which have independent versions so that neither
/// writer clobbers the other.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct IndexedProduct {
    pub product_id: String,
    /// The catalog version last applied (0: none yet, e.g. stock arrived first).
    pub version: u64,
    #[serde(default)]
    pub deleted: bool,
    /// The document when the product is searchable.
    #[serde(default)]
    pub document: Option<SearchDocument>,
    #[serde(default)]
    pub stock: BTreeMap<String, SkuStock>,
    /// The approved reviews' counts (independent version; none until the first review is approved).
    #[serde(default)]
    pub rating: IndexedRating,
}

impl IndexedProduct {
    /// An empty record for a product id the index has never seen.
    pub fn new(product_id: impl Into<String>) -> Self {
        Self { product_id: product_id.into(), ..Self::default() }
    }

    /// Searchable: an active product's document.
    pub fn visible(&self) -> bool {
        self.document.is_some()
    }

    /// Whether a catalog change replaces what is held. A higher version wins; at equal versions only a
    /// delete beats a non-delete (a REMOVE record carries the deleted item's last version).
    pub fn accepts(&self, change: &IndexChange) -> bool {
        change.version() > self.version
            || (change.version() == self.version && change.deleted() && !self.deleted)
            || (self.version == 0 && !self.deleted && self.document.is_none())
    }

    /// Applies a catalog change if it is not stale; returns whether anything changed.
    pub fn apply(&mut self, change: &IndexChange) -> bool {
        if !self.accepts(change) {
            return false;
        }
        self.version = change.version();
        match change {
            IndexChange::Upsert(doc) => {
                self.deleted = false;
                self.document = Some(doc.clone());
            }
            IndexChange::Hide { deleted, .. } => {
                self.deleted = *deleted;
                self.document = None;
            }
        }
        true
    }

    /// Applies a stock change if its version is newer than the SKU's; returns whether anything changed.
    pub fn apply_stock(&mut self, update: &StockUpdate) -> bool {
        match self.stock.get(&update.sku) {
            Some(current) if current.version >= update.stock_version => false,
            _ => {
                self.stock.insert(
                    update.sku.clone(),
                    SkuStock { available: update.available, version: update.stock_version },
                );
                true
            }
        }
    }

    /// Applies a rating change if its version is newer; returns whether anything changed.
    pub fn apply_rating(&mut self, update: &RatingUpdate) -> bool {
        if update.version <= self.rating.version {
            return false;
        }
        self.rating = IndexedRating { stars: update.stars, version: update.version };
        true
    }

    /// The product's hit: the document's fields with the record's stock and rating.
    pub fn hit(&self, doc: &SearchDocument, highlights: BTreeMap<String, String>) -> SearchHit {
        let mut hit = SearchHit::from_document(doc, self.in_stock(), highlights);
        hit.rating = self.rating.average();
        hit.review_count = self.rating.count();
        hit
    }

    /// In stock when any SKU has units available or has not been reported yet (search defaults to
    /// sellable; checkout decides with inventory). A product without SKUs counts as in stock.
    pub fn in_stock(&self) -> bool {
        let skus = self.document.as_ref().map(|d| d.skus.as_slice()).unwrap_or_default();
        if skus.is_empty() {
            return self.stock.is_empty() || self.stock.values().any(|s| s.available > 0);
        }
        skus.iter().any(|sku| self.stock.get(sku).is_none_or(|s| s.available > 0))
    }
}

/// Result order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchSort {
    #[default]
    Relevance,
    PriceAsc,
    PriceDesc,
    Newest,
    Rating,
}

impl SearchSort {
    pub fn as_str(self) -> &'static str {
        match self {
            SearchSort::Relevance => "relevance",
            SearchSort::PriceAsc => "price_asc",
            SearchSort::PriceDesc => "price_desc",
            SearchSort::Newest => "newest",
            SearchSort::Rating => "rating",
        }
    }
}

impl std::str::FromStr for SearchSort {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "relevance" => SearchSort::Relevance,
            "price_asc" => SearchSort::PriceAsc,
            "price_desc" => SearchSort::PriceDesc,
            "newest" => SearchSort::Newest,
            "rating" => SearchSort::Rating,
            _ => return Err(()),
        })
    }
}

/// Where the previous page ended: the sort values of its last hit, as the engine that produced it wrote
/// them. Opaque to callers (base64url JSON), checked against the sort it was made for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchCursor {
    #[serde(rename = "s")]
    pub sort: SearchSort,
    #[serde(rename = "a")]
    pub after: Vec<serde_json::Value>,
}

impl SearchCursor {
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    /// Decodes a cursor made for `sort`; anything else is a 400 on `cursor`.
    pub fn decode(raw: &str, sort: SearchSort) -> Result<Self, DomainError> {
        let bad = || DomainError::invalid_parameter("cursor", "is not a valid cursor for this query");
        if raw.len() > 512 {
            return Err(bad());
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
        let cursor: SearchCursor = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        if cursor.sort != sort || cursor.after.is_empty() || cursor.after.len() > 4 {
            return Err(bad());
        }
        Ok(cursor)
    }
}

/// A shopper's search, validated.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SearchQuery {
    /// Free text; empty means "everything that matches the filters".
    pub text: String,
    pub category: Option<String>,
    /// Any of these brands (case-insensitive).
    pub brands: Vec<String>,
    /// Inclusive bounds on the lowest variant price, minor units.
    pub price_min: Option<i64>,
    pub price_max: Option<i64>,
    pub rating_min: Option<f64>,
    pub in_stock: Option<bool>,
    /// `attr.<name>=<v1>,<v2>`: any of the values, per name; names lower-case.
    pub attributes: BTreeMap<String, Vec<String>>,
    pub sort: SearchSort,
    pub page_size: u32,
    pub cursor: Option<SearchCursor>,
}

impl SearchQuery {
    /// A query for `text` with defaults for everything else.
    pub fn text(text: impl Into<String>) -> Self {
        Self { text: text.into(), page_size: DEFAULT_PAGE_SIZE, ..Self::default() }
    }

    /// Parses query-string pairs (repeated keys allowed). Unknown parameters are ignored; a bad value is a
    /// 400 naming the parameter.
    pub fn from_params<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, DomainError> {
        let mut query = SearchQuery { page_size: DEFAULT_PAGE_SIZE, ..SearchQuery::default() };
        let mut cursor_raw: Option<String> = None;
        let mut params: Vec<(&str, &str)> = params.into_iter().collect();
        params.sort_by(|a, b| a.0.cmp(b.0));
        for (key, value) in params {
            let value = value.trim();
            match key {
                "q" => {
                    if value.chars().count() > MAX_QUERY_CHARS {
                        return Err(DomainError::invalid_parameter(
                            "q",
                            format!("must be at most {MAX_QUERY_CHARS} characters"),
                        ));
                    }
                    if !query.text.is_empty() {
                        query.text.push(' ');
                    }
                    query.text.push_str(value);
                }
                // An empty filter is no filter (a form's blank field), as for `brand` and `attr.*`.
                "category" if value.is_empty() => {}
                "category" => {
                    if value.len() > 80 {
                        return Err(DomainError::invalid_parameter("category", "must be a category id"));
                    }
                    query.category = Some(value.to_owned());
                }
                "brand" => push_values(&mut query.brands, "brand", value)?,
                "price_min" => query.price_min = Some(parse_price("price_min", value)?),
                "price_max" => query.price_max = Some(parse_price("price_max", value)?),
                "rating_min" => {
                    let rating: f64 = value
                        .parse()
                        .map_err(|_| DomainError::invalid_parameter("rating_min", "must be a number from 0 to 5"))?;
                    if !(0.0..=5.0).contains(&rating) {
                        return Err(DomainError::invalid_parameter("rating_min", "must be a number from 0 to 5"));
                    }
                    query.rating_min = Some(rating);
                }
                "in_stock" => {
                    query.in_stock = Some(match value {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(DomainError::invalid_parameter("in_stock", "must be true or false")),
                    })
                }
                "sort" => {
                    query.sort = value.parse().map_err(|_| {
                        DomainError::invalid_parameter(
                            "sort",
                            "must be one of relevance, price_asc, price_desc, newest, rating",
                        )
                    })?
                }
                "page_size" => {
                    let size: u32 = value.parse().map_err(|_| {
                        DomainError::invalid_parameter(
                            "page_size",
                            format!("must be an integer from 1 to {MAX_PAGE_SIZE}"),
                        )
                    })?;
                    if size == 0 || size > MAX_PAGE_SIZE {
                        return Err(DomainError::invalid_parameter(
                            "page_size",
                            format!("must be an integer from 1 to {MAX_PAGE_SIZE}"),
                        ));
                    }
                    query.page_size = size;
                }
                "cursor" => cursor_raw = Some(value.to_owned()),
                _ => {
                    if let Some(name) = key.strip_prefix("attr.") {
                        let field = format!("attr.{name}");
                        if !valid_attribute_name(name) {
                            return Err(DomainError::invalid_parameter(
                                field,
                                "attribute names are 1-40 of a-z, 0-9, _",
                            ));
                        }
                        if value.split(',').all(|v| v.trim().is_empty()) {
                            continue;
                        }
                        let values = query.attributes.entry(name.to_lowercase()).or_default();
                        push_values(values, &field, value)?;
                        if query.attributes.len() > MAX_ATTRIBUTE_FILTERS {
                            return Err(DomainError::invalid_parameter(
                                field,
                                format!("at most {MAX_ATTRIBUTE_FILTERS} attribute filters"),
                            ));
                        }
                    }
                }
            }
        }
        if let (Some(min), Some(max)) = (query.price_min, query.price_max) {
            if min > max {
                return Err(DomainError::invalid_parameter("price_min", "must not exceed price_max"));
            }
        }
        if let Some(raw) = cursor_raw {
            query.cursor = Some(SearchCursor::decode(&raw, query.sort)?);
        }
        Ok(query)
    }

    /// Whether any filter is set (a query with neither text nor filters browses everything).
    pub fn has_filters(&self) -> bool {
        self.category.is_some()
            || !self.brands.is_empty()
            || self.price_min.is_some()
            || self.price_max.is_some()
            || self.rating_min.is_some()
            || self.in_stock.is_some()
            || !self.attributes.is_empty()
    }
}

fn push_values(into: &mut Vec<String>, field: &str, raw: &str) -> Result<(), DomainError> {
    for value in raw.split(',').map(str::trim).filter(|v| !v.is_empty()) {
        if value.chars().count() > 100 {
            return Err(DomainError::invalid_parameter(field, "a value is longer than 100 characters"));
        }
        if !into.iter().any(|v| v.eq_ignore_ascii_case(value)) {
            into.push(value.to_owned());
        }
    }
    if into.len() > MAX_FILTER_VALUES {
        return Err(DomainError::invalid_parameter(field, format!("at most {MAX_FILTER_VALUES} values")));
    }
    Ok(())
}

fn parse_price(field: &str, raw: &str) -> Result<i64, DomainError> {
    let value: i64 = raw
        .parse()
        .map_err(|_| DomainError::invalid_parameter(field, "must be a whole number of minor units (cents)"))?;
    if value < 0 {
        return Err(DomainError::invalid_parameter(field, "must not be negative"));
    }
    Ok(value)
}

fn valid_attribute_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 40
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b.is_ascii_uppercase())
}

/// A completion request, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct SuggestQuery {
    pub prefix: String,
    pub limit: usize,
}

impl SuggestQuery {
    /// Parses `q` (required, 1-100 characters) and optional `limit` (1-10).
    pub fn from_params<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, DomainError> {
        let mut prefix = None;
        let mut limit = MAX_SUGGESTIONS;
        for (key, value) in params {
            match key {
                "q" => prefix = Some(value.trim().to_owned()),
                "limit" => {
                    limit = value.parse().ok().filter(|n| (1..=MAX_SUGGESTIONS).contains(n)).ok_or_else(|| {
                        DomainError::invalid_parameter("limit", format!("must be 1 to {MAX_SUGGESTIONS}"))
                    })?
                }
                _ => {}
            }
        }
        let prefix =
            prefix.filter(|p| !p.is_empty()).ok_or_else(|| DomainError::invalid_parameter("q", "is required"))?;
        if prefix.chars().count() > 100 {
            return Err(DomainError::invalid_parameter("q", "must be at most 100 characters"));
        }
        Ok(Self { prefix, limit })
    }
}

/// A completion: a product title that matches the typed prefix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suggestion {
    pub text: String,
    pub product_id: String,
}

/// Completions for a prefix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suggestions {
    pub suggestions: Vec<Suggestion>,
}

/// One product in the results: what a result card shows. Price and stock are indicative only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    pub product_id: String,
    pub title: String,
    pub brand: String,
    pub category_id: Option<String>,
    pub price: Money,
    pub rating: f64,
    pub review_count: u32,
    pub in_stock: bool,
    pub image: Option<String>,
    /// Matched words wrapped in `<em>`, HTML-escaped, per field (`title`).
    pub highlights: BTreeMap<String, String>,
}

impl SearchHit {
    /// A hit from an indexed document with its highlights.
    pub fn from_document(doc: &SearchDocument, in_stock: bool, highlights: BTreeMap<String, String>) -> Self {
        Self {
            product_id: doc.product_id.clone(),
            title: doc.title.clone(),
            brand: doc.brand.clone(),
            category_id: doc.category_id().map(str::to_owned),
            price: doc.price,
            rating: doc.rating,
            review_count: doc.review_count,
            in_stock,
            image: doc.image.clone(),
            highlights,
        }
    }
}

/// A facet value and how many products it would leave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FacetValue {
    pub value: String,
    pub count: u64,
}

/// A category facet node: its count includes every product in its subtree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryFacet {
    pub id: String,
    pub name: String,
    pub count: u64,
    pub children: Vec<CategoryFacet>,
}

/// A price range bucket `[from, to)` in minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceFacet {
    pub from: i64,
    pub to: Option<i64>,
    pub count: u64,
}

/// "`min` stars and up".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RatingFacet {
    pub min: u8,
    pub count: u64,
}

/// In stock / out of stock counts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StockFacet {
    pub in_stock: u64,
    pub out_of_stock: u64,
}

/// An attribute's values with counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeFacet {
    pub name: String,
    pub values: Vec<FacetValue>,
}

/// Facet counts. Each facet's counts apply every filter except its own (for attributes: except the filter
/// on the same attribute name).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Facets {
    pub category: Vec<CategoryFacet>,
    pub brand: Vec<FacetValue>,
    pub price: Vec<PriceFacet>,
    pub rating: Vec<RatingFacet>,
    pub in_stock: StockFacet,
    pub attributes: Vec<AttributeFacet>,
}

/// A page of results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResults {
    pub hits: Vec<SearchHit>,
    /// Products matching the text and every filter.
    pub total: u64,
    pub facets: Facets,
    /// Present when more hits follow.
    pub next_cursor: Option<String>,
}

/// Index of the price bucket holding `amount`.
pub fn price_bucket(amount: i64) -> Option<usize> {
    PRICE_BUCKETS.iter().position(|(from, to)| amount >= *from && to.is_none_or(|to| amount < to))
}

/// Price facets from per-bucket counts (indexed like [`PRICE_BUCKETS`]).
pub fn price_facets(counts: &[u64]) -> Vec<PriceFacet> {
    PRICE_BUCKETS
        .iter()
        .enumerate()
        .map(|(i, (from, to))| PriceFacet { from: *from, to: *to, count: counts.get(i).copied().unwrap_or(0) })
        .collect()
}

/// Rating facets from "at least n" counts (indexed like [`RATING_THRESHOLDS`]).
pub fn rating_facets(counts: &[u64]) -> Vec<RatingFacet> {
    RATING_THRESHOLDS
        .iter()
        .enumerate()
        .map(|(i, min)| RatingFacet { min: *min, count: counts.get(i).copied().unwrap_or(0) })
        .collect()
}

/// Top values by count (ties by value), at most [`MAX_FACET_VALUES`], zero counts dropped.
pub fn top_values(counts: impl IntoIterator<Item = (String, u64)>) -> Vec<FacetValue> {
    let mut merged: BTreeMap<String, u64> = BTreeMap::new();
    for (value, count) in counts {
        *merged.entry(value).or_default() += count;
    }
    let mut values: Vec<FacetValue> =
        merged.into_iter().filter(|(_, c)| *c > 0).map(|(value, count)| FacetValue { value, count }).collect();
    values.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    values.truncate(MAX_FACET_VALUES);
    values
}

/// Attribute facets from `name=value` term counts.
pub fn attribute_facets(term_counts: impl IntoIterator<Item = (String, u64)>) -> Vec<AttributeFacet> {
    let mut by_name: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
    for (term, count) in term_counts {
        if let Some((name, value)) = term.split_once('=') {
            by_name.entry(name.to_owned()).or_default().push((value.to_owned(), count));
        }
    }
    by_name
        .into_iter()
        .map(|(name, values)| AttributeFacet { name, values: top_values(values) })
        .filter(|f| !f.values.is_empty())
        .collect()
}

/// Rebuilds the category tree from counts per encoded leaf path: each node counts its whole subtree.
pub fn category_tree(path_counts: impl IntoIterator<Item = (String, u64)>) -> Vec<CategoryFacet> {
    let mut roots: Vec<CategoryFacet> = Vec::new();
    for (key, count) in path_counts {
        if count == 0 {
            continue;
        }
        let mut level = &mut roots;
        for node in decode_category_path(&key) {
            let index = match level.iter().position(|c| c.id == node.id) {
                Some(i) => i,
                None => {
                    level.push(CategoryFacet { id: node.id, name: node.name, count: 0, children: Vec::new() });
                    level.len() - 1
                }
            };
            level[index].count += count;
            level = &mut level[index].children;
        }
    }
    sort_tree(&mut roots);
    roots
}

fn sort_tree(nodes: &mut [CategoryFacet]) {
    nodes.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    for node in nodes {
        sort_tree(&mut node.children);
    }
}

/// Escapes text for HTML and wraps the byte ranges `marks` (sorted, non-overlapping) in `<em>`.
pub fn highlight(text: &str, marks: &[(usize, usize)]) -> String {
    let mut out = String::with_capacity(text.len() + marks.len() * 9);
    let mut pos = 0;
    for &(start, end) in marks {
        if start < pos
            || end > text.len()
            || start >= end
            || !text.is_char_boundary(start)
            || !text.is_char_boundary(end)
        {
            continue;
        }
        escape_into(&mut out, &text[pos..start]);
        out.push_str("<em>");
        escape_into(&mut out, &text[start..end]);
        out.push_str("</em>");
        pos = end;
    }
    escape_into(&mut out, &text[pos..]);
    out
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// Edits a word of this many characters may contain and still match, as OpenSearch's
/// `fuzziness: "AUTO:4,8"`: none below 4 characters, one below 8, two from 8 on. (Plain `AUTO` lets a
/// 6-letter word drift two edits: "iphone" would match "phone".)
pub fn fuzziness(chars: usize) -> u8 {
    match chars {
        0..=3 => 0,
        4..=7 => 1,
        _ => 2,
    }
}

/// The OpenSearch spelling of [`fuzziness`].
pub const FUZZINESS: &str = "AUTO:4,8";

/// Equivalent-word groups, parsed from Solr-format lines (`a, b, c`), lower-cased.
pub fn parse_synonyms<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<Vec<String>> {
    lines
        .into_iter()
        .map(|line| line.split(',').map(|w| w.trim().to_lowercase()).filter(|w| !w.is_empty()).collect::<Vec<_>>())
        .filter(|group| group.len() > 1)
        .collect()
}

/// A default currency for documents built without one.
pub const DEFAULT_CURRENCY: Currency = Currency::USD;

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str, version: u64) -> SearchDocument {
        SearchDocument {
            product_id: id.into(),
            version,
            seller_id: "usr_1".into(),
            title: "Blue Cotton Tee".into(),
            description: String::new(),
            brand: "Acme".into(),
            categories: vec![CategoryRef { id: "cat_a".into(), name: "Clothing".into() }],
            attributes: BTreeMap::from([("color".into(), vec!["Blue".into()])]),
            other_attribute_text: Vec::new(),
            price: Money::new(1999, Currency::USD),
            price_max: 1999,
            skus: vec!["TS-1".into(), "TS-2".into()],
            image: None,
            rating: 4.5,
            review_count: 3,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn params(pairs: &[(&'static str, &'static str)]) -> Result<SearchQuery, DomainError> {
        SearchQuery::from_params(pairs.iter().copied())
    }

    fn field_of(err: DomainError) -> String {
        match err {
            DomainError::InvalidParameter { field, .. } => field,
            other => panic!("expected invalid parameter, got {other:?}"),
        }
    }

    #[test]
    fn when_change_is_stale_should_keep_newer_document() {
        let mut held = IndexedProduct::new("prd_1");
        assert!(held.apply(&IndexChange::Upsert(doc("prd_1", 3))));
        assert!(!held.apply(&IndexChange::Upsert(doc("prd_1", 2))));
        assert!(!held.apply(&IndexChange::Upsert(doc("prd_1", 3))));
        assert_eq!(held.version, 3);
        assert!(!held.apply(&IndexChange::Hide { product_id: "prd_1".into(), version: 2, deleted: true }));
        assert!(held.visible());
    }

    #[test]
    fn when_deleted_should_not_be_resurrected_by_replay_of_same_version() {
        let mut held = IndexedProduct::new("prd_1");
        held.apply(&IndexChange::Upsert(doc("prd_1", 4)));
        assert!(held.apply(&IndexChange::Hide { product_id: "prd_1".into(), version: 4, deleted: true }));
        assert!(!held.apply(&IndexChange::Upsert(doc("prd_1", 4))));
        assert!(!held.visible());
        assert!(held.deleted);
    }

    #[test]
    fn when_drafted_should_hide_until_a_newer_activation() {
        let mut held = IndexedProduct::new("prd_1");
        held.apply(&IndexChange::Upsert(doc("prd_1", 1)));
        assert!(held.apply(&IndexChange::Hide { product_id: "prd_1".into(), version: 2, deleted: false }));
        assert!(!held.visible());
        assert!(held.apply(&IndexChange::Upsert(doc("prd_1", 3))));
        assert!(held.visible());
    }

    #[test]
    fn when_stock_changes_should_keep_catalog_fields_and_guard_versions() {
        let mut held = IndexedProduct::new("prd_1");
        held.apply(&IndexChange::Upsert(doc("prd_1", 1)));
        let update = |sku: &str, available, v| StockUpdate {
            product_id: "prd_1".into(),
            sku: sku.into(),
            available,
            stock_version: v,
        };
        assert!(held.in_stock());
        assert!(held.apply_stock(&update("TS-1", 0, 5)));
        assert!(held.in_stock(), "TS-2 unknown counts as sellable");
        assert!(held.apply_stock(&update("TS-2", 0, 1)));
        assert!(!held.in_stock());
        assert!(!held.apply_stock(&update("TS-1", 7, 4)), "stale stock version ignored");
        assert!(!held.in_stock());
        held.apply(&IndexChange::Upsert(doc("prd_1", 2)));
        assert_eq!(held.stock.len(), 2, "a catalog upsert keeps stock");
        assert!(held.apply_stock(&update("TS-1", 3, 6)));
        assert!(held.in_stock());
    }

    #[test]
    fn when_stock_arrives_first_should_accept_the_first_catalog_version() {
        let mut held = IndexedProduct::new("prd_1");
        held.apply_stock(&StockUpdate {
            product_id: "prd_1".into(),
            sku: "TS-1".into(),
            available: 2,
            stock_version: 1,
        });
        assert!(held.apply(&IndexChange::Upsert(doc("prd_1", 0))));
        assert!(held.visible());
    }

    #[test]
    fn when_params_are_valid_should_parse_every_filter() {
        let q = params(&[
            ("q", "blue tee"),
            ("category", "cat_a"),
            ("brand", "Acme,Other"),
            ("brand", "Third"),
            ("price_min", "100"),
            ("price_max", "5000"),
            ("rating_min", "3.5"),
            ("in_stock", "true"),
            ("attr.color", "blue,red"),
            ("attr.size", "M"),
            ("sort", "price_desc"),
            ("page_size", "50"),
        ])
        .unwrap();
        assert_eq!(q.text, "blue tee");
        assert_eq!(q.brands, vec!["Acme", "Other", "Third"]);
        assert_eq!((q.price_min, q.price_max), (Some(100), Some(5000)));
        assert_eq!(q.rating_min, Some(3.5));
        assert_eq!(q.in_stock, Some(true));
        assert_eq!(q.attributes["color"], vec!["blue", "red"]);
        assert_eq!(q.sort, SearchSort::PriceDesc);
        assert_eq!(q.page_size, 50);
    }

    #[test]
    fn when_params_are_bad_should_name_the_field() {
        assert_eq!(field_of(params(&[("price_min", "-1")]).unwrap_err()), "price_min");
        assert_eq!(field_of(params(&[("price_max", "12.5")]).unwrap_err()), "price_max");
        assert_eq!(field_of(params(&[("price_min", "10"), ("price_max", "5")]).unwrap_err()), "price_min");
        assert_eq!(field_of(params(&[("sort", "cheapest")]).unwrap_err()), "sort");
        assert_eq!(field_of(params(&[("page_size", "51")]).unwrap_err()), "page_size");
        assert_eq!(field_of(params(&[("page_size", "0")]).unwrap_err()), "page_size");
        assert_eq!(field_of(params(&[("rating_min", "6")]).unwrap_err()), "rating_min");
        assert_eq!(field_of(params(&[("in_stock", "maybe")]).unwrap_err()), "in_stock");
        assert_eq!(field_of(params(&[("attr.co lor", "x")]).unwrap_err()), "attr.co lor");
        assert_eq!(field_of(params(&[("cursor", "garbage!")]).unwrap_err()), "cursor");
        let long = "x".repeat(MAX_QUERY_CHARS + 1);
        let long: &'static str = Box::leak(long.into_boxed_str());
        assert_eq!(field_of(params(&[("q", long)]).unwrap_err()), "q");
    }

    #[test]
    fn an_empty_filter_is_no_filter() {
        let q = params(&[("brand", ""), ("category", ""), ("attr.color", " , "), ("brand", "Acme")]).unwrap();
        assert_eq!(q.brands, vec!["Acme"]);
        assert_eq!(q.category, None);
        assert!(q.attributes.is_empty(), "{:?}", q.attributes);
    }

    #[test]
    fn when_cursor_was_made_for_another_sort_should_reject() {
        let cursor = SearchCursor { sort: SearchSort::Newest, after: vec![serde_json::json!(1)] }.encode();
        let cursor: &'static str = Box::leak(cursor.into_boxed_str());
        assert!(params(&[("sort", "newest"), ("cursor", cursor)]).is_ok());
        assert_eq!(field_of(params(&[("sort", "price_asc"), ("cursor", cursor)]).unwrap_err()), "cursor");
    }

    #[test]
    fn category_tree_counts_subtrees() {
        let phones = encode_category_path(&[
            CategoryRef { id: "cat_e".into(), name: "Electronics".into() },
            CategoryRef { id: "cat_p".into(), name: "Phones".into() },
        ]);
        let laptops = encode_category_path(&[
            CategoryRef { id: "cat_e".into(), name: "Electronics".into() },
            CategoryRef { id: "cat_l".into(), name: "Laptops".into() },
        ]);
        let books = encode_category_path(&[CategoryRef { id: "cat_b".into(), name: "Books".into() }]);
        let tree = category_tree([(phones.clone(), 3), (laptops, 5), (books, 2)]);
        assert_eq!(tree[0].id, "cat_e");
        assert_eq!(tree[0].count, 8);
        assert_eq!(tree[0].children[0].name, "Laptops");
        assert_eq!(tree[1].count, 2);
        assert!(category_path_contains(&phones, "cat_p"));
        assert!(category_path_contains(&phones, "cat_e"));
        assert!(!category_path_contains(&phones, "cat_l"));
    }

    #[test]
    fn highlight_escapes_and_marks() {
        assert_eq!(highlight("Tom & <Jerry> tee", &[(14, 17)]), "Tom &amp; &lt;Jerry&gt; <em>tee</em>");
    }

    #[test]
    fn price_buckets_cover_every_amount() {
        assert_eq!(price_bucket(0), Some(0));
        assert_eq!(price_bucket(2_499), Some(0));
        assert_eq!(price_bucket(2_500), Some(1));
        assert_eq!(price_bucket(10_000_000), Some(6));
    }

    #[test]
    fn suggest_inputs_start_at_every_word() {
        let d = doc("prd_1", 1);
        assert_eq!(d.suggest_inputs(), vec!["Blue Cotton Tee", "Cotton Tee", "Tee", "Acme"]);
    }

    #[test]
    fn suggest_requires_q() {
        assert!(SuggestQuery::from_params([("q", "  ")]).is_err());
        assert_eq!(SuggestQuery::from_params([("q", "iph")]).unwrap().prefix, "iph");
    }
}
