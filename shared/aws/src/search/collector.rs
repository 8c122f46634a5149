//! One pass over the documents that match the text: filters, the total, the top hits after a cursor, and
//! every facet's counts under the "ignore your own filter" rule.
//!
//! Each filter is a dimension. A document failing no dimension is a hit and counts in every facet; a
//! document failing exactly one dimension counts only in that dimension's facet (its counts are what the
//! shopper would see after changing that filter); a document failing two or more counts nowhere.

use super::embedded::Fields;
use commerce_domain::search::{
    self, attribute_term, category_path_contains, price_bucket, Facets, SearchQuery, SearchSort, StockFacet,
    PRICE_BUCKETS, RATING_THRESHOLDS,
};
use std::collections::{BinaryHeap, HashMap};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader};

const CATEGORY: u32 = 0;
const BRAND: u32 = 1;
const PRICE: u32 = 2;
const RATING: u32 = 3;
const STOCK: u32 = 4;
const ATTRIBUTE_BASE: u32 = 5;

/// The filters of a query, normalized for matching.
pub(crate) struct Filters {
    category: Option<String>,
    brands: Vec<String>,
    price_min: Option<i64>,
    price_max: Option<i64>,
    rating_min: Option<f64>,
    in_stock: Option<bool>,
    /// Per filtered attribute name: its accepted `name=value` terms.
    attributes: Vec<(String, Vec<String>)>,
}

impl Filters {
    pub(crate) fn from_query(query: &SearchQuery) -> Self {
        Self {
            category: query.category.clone(),
            brands: query.brands.iter().map(|b| b.to_lowercase()).collect(),
            price_min: query.price_min,
            price_max: query.price_max,
            rating_min: query.rating_min,
            in_stock: query.in_stock,
            attributes: query
                .attributes
                .iter()
                .map(|(name, values)| (name.clone(), values.iter().map(|v| attribute_term(name, v)).collect()))
                .collect(),
        }
    }
}

/// A hit's position in the sort order: higher `primary` first, then lower `tie`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SortKey {
    pub primary: u64,
    pub tie: u64,
}

impl SortKey {
    fn before(&self, other: &SortKey) -> bool {
        self.primary > other.primary || (self.primary == other.primary && self.tie < other.tie)
    }
}

impl Ord for SortKey {
    /// Greater = earlier in the results.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.primary.cmp(&other.primary).then_with(|| other.tie.cmp(&self.tie))
    }
}

impl PartialOrd for SortKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

fn ordered_i64(v: i64) -> u64 {
    (v as u64) ^ (1 << 63)
}

fn ordered_f64(v: f64) -> u64 {
    let bits = v.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// The collector: see the module documentation.
pub(crate) struct FacetCollector {
    pub fields: Fields,
    pub filters: Filters,
    pub sort: SearchSort,
    pub scored: bool,
    pub limit: usize,
    pub after: Option<SortKey>,
}

/// What the collector returns: the best hits (best first), the total, the facets.
pub(crate) struct FacetFruit {
    pub top: Vec<(SortKey, DocAddress)>,
    pub total: u64,
    pub facets: Facets,
}

/// Per-segment result, before merging.
pub(crate) struct SegmentFruit {
    top: Vec<(SortKey, DocAddress)>,
    total: u64,
    categories: HashMap<String, u64>,
    brands: HashMap<String, u64>,
    prices: [u64; PRICE_BUCKETS.len()],
    ratings: [u64; 6],
    stock: [u64; 2],
    attributes: HashMap<String, u64>,
}

impl Collector for FacetCollector {
    type Fruit = FacetFruit;
    type Child = FacetSegment;

    fn for_segment(&self, segment_ord: SegmentOrdinal, segment: &SegmentReader) -> tantivy::Result<FacetSegment> {
        let fast = segment.fast_fields();
        let schema = segment.schema();
        let name = |field| schema.get_field_name(field).to_owned();
        let category = fast.str(&name(self.fields.category))?;
        let brand = fast.str(&name(self.fields.brand))?;
        let attrs = fast.str(&name(self.fields.attrs))?;
        let category_pass = match (&self.filters.category, &category) {
            (Some(wanted), Some(column)) => Some(ord_flags(column, |key| category_path_contains(key, wanted))?),
            (Some(_), None) => Some(Vec::new()),
            (None, _) => None,
        };
        let brand_pass = match &brand {
            Some(column) if !self.filters.brands.is_empty() => {
                Some(ord_flags(column, |b| self.filters.brands.contains(&b.to_lowercase()))?)
            }
            None if !self.filters.brands.is_empty() => Some(Vec::new()),
            _ => None,
        };
        let (attr_dim, attr_pass) = match &attrs {
            Some(column) if !self.filters.attributes.is_empty() => {
                let mut dims = Vec::with_capacity(column.num_terms());
                let mut pass = Vec::with_capacity(column.num_terms());
                let mut term = String::new();
                for ord in 0..column.num_terms() as u64 {
                    term.clear();
                    column.ord_to_str(ord, &mut term)?;
                    let name = term.split_once('=').map_or(term.as_str(), |(n, _)| n);
                    let dim = self.filters.attributes.iter().position(|(n, _)| n == name);
                    dims.push(dim.map_or(-1, |d| d as i32));
                    pass.push(dim.is_some_and(|d| self.filters.attributes[d].1.contains(&term)));
                }
                (dims, pass)
            }
            _ => (Vec::new(), Vec::new()),
        };
        let attr_filter_mask =
            (0..self.filters.attributes.len()).fold(0u64, |m, d| m | 1 << (ATTRIBUTE_BASE + d as u32));
        Ok(FacetSegment {
            segment_ord,
            visible: fast.bool(&name(self.fields.visible))?,
            price: fast.i64(&name(self.fields.price))?,
            rating: fast.f64(&name(self.fields.rating))?,
            rating_score: fast.f64(&name(self.fields.rating_score))?,
            in_stock: fast.bool(&name(self.fields.in_stock))?,
            created: fast.i64(&name(self.fields.created))?,
            tie: fast.u64(&name(self.fields.tie))?,
            category_counts: vec![0; category.as_ref().map_or(0, |c| c.num_terms())],
            brand_counts: vec![0; brand.as_ref().map_or(0, |c| c.num_terms())],
            attr_counts: vec![0; attrs.as_ref().map_or(0, |c| c.num_terms())],
            category,
            brand,
            attrs,
            category_pass,
            brand_pass,
            attr_dim,
            attr_pass,
            attr_filter_mask,
            price_min: self.filters.price_min,
            price_max: self.filters.price_max,
            rating_min: self.filters.rating_min,
            want_stock: self.filters.in_stock,
            sort: self.sort,
            limit: self.limit,
            after: self.after,
            top: BinaryHeap::new(),
            total: 0,
            prices: [0; PRICE_BUCKETS.len()],
            ratings: [0; 6],
            stock: [0; 2],
            ords: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        self.scored
    }

    fn merge_fruits(&self, fruits: Vec<SegmentFruit>) -> tantivy::Result<FacetFruit> {
        let mut top: Vec<(SortKey, DocAddress)> = Vec::new();
        let mut total = 0;
        let mut categories: HashMap<String, u64> = HashMap::new();
        let mut brands: HashMap<String, u64> = HashMap::new();
        let mut attributes: HashMap<String, u64> = HashMap::new();
        let mut prices = [0u64; PRICE_BUCKETS.len()];
        let mut ratings = [0u64; 6];
        let mut stock = [0u64; 2];
        for fruit in fruits {
            top.extend(fruit.top);
            total += fruit.total;
            for (k, v) in fruit.categories {
                *categories.entry(k).or_default() += v;
            }
            for (k, v) in fruit.brands {
                *brands.entry(k).or_default() += v;
            }
            for (k, v) in fruit.attributes {
                *attributes.entry(k).or_default() += v;
            }
            for (i, v) in fruit.prices.iter().enumerate() {
                prices[i] += v;
            }
            for (i, v) in fruit.ratings.iter().enumerate() {
                ratings[i] += v;
            }
            stock[0] += fruit.stock[0];
            stock[1] += fruit.stock[1];
        }
        top.sort_by_key(|t| std::cmp::Reverse(t.0));
        top.truncate(self.limit);
        let rating_at_least: Vec<u64> =
            RATING_THRESHOLDS.iter().map(|t| ratings[usize::from(*t)..].iter().sum()).collect();
        let facets = Facets {
            category: search::category_tree(categories),
            brand: search::top_values(brands),
            price: search::price_facets(&prices),
            rating: search::rating_facets(&rating_at_least),
            in_stock: StockFacet { in_stock: stock[1], out_of_stock: stock[0] },
            attributes: search::attribute_facets(attributes),
        };
        Ok(FacetFruit { top, total, facets })
    }
}

/// Marks each dictionary ordinal of a string column for which `keep` holds.
fn ord_flags(column: &StrColumn, keep: impl Fn(&str) -> bool) -> tantivy::Result<Vec<bool>> {
    let mut flags = Vec::with_capacity(column.num_terms());
    let mut text = String::new();
    for ord in 0..column.num_terms() as u64 {
        text.clear();
        column.ord_to_str(ord, &mut text)?;
        flags.push(keep(&text));
    }
    Ok(flags)
}

fn harvest_counts(column: &Option<StrColumn>, counts: &[u64]) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    if let Some(column) = column {
        let mut text = String::new();
        for (ord, count) in counts.iter().enumerate() {
            if *count > 0 {
                text.clear();
                if column.ord_to_str(ord as u64, &mut text).unwrap_or(false) {
                    out.insert(text.clone(), *count);
                }
            }
        }
    }
    out
}

/// Per-segment state of [`FacetCollector`].
pub(crate) struct FacetSegment {
    segment_ord: SegmentOrdinal,
    visible: Column<bool>,
    price: Column<i64>,
    rating: Column<f64>,
    rating_score: Column<f64>,
    in_stock: Column<bool>,
    created: Column<i64>,
    tie: Column<u64>,
    category: Option<StrColumn>,
    brand: Option<StrColumn>,
    attrs: Option<StrColumn>,
    category_pass: Option<Vec<bool>>,
    brand_pass: Option<Vec<bool>>,
    attr_dim: Vec<i32>,
    attr_pass: Vec<bool>,
    attr_filter_mask: u64,
    price_min: Option<i64>,
    price_max: Option<i64>,
    rating_min: Option<f64>,
    want_stock: Option<bool>,
    sort: SearchSort,
    limit: usize,
    after: Option<SortKey>,
    top: BinaryHeap<std::cmp::Reverse<(SortKey, DocId)>>,
    total: u64,
    category_counts: Vec<u64>,
    brand_counts: Vec<u64>,
    attr_counts: Vec<u64>,
    prices: [u64; PRICE_BUCKETS.len()],
    ratings: [u64; 6],
    stock: [u64; 2],
    ords: Vec<u64>,
}

impl SegmentCollector for FacetSegment {
    type Fruit = SegmentFruit;

    fn collect(&mut self, doc: DocId, score: Score) {
        if self.visible.first(doc) != Some(true) {
            return;
        }
        let mut mask = 0u64;
        let category_ord = self.category.as_ref().and_then(|c| c.ords().first(doc));
        if let Some(pass) = &self.category_pass {
            if !category_ord.is_some_and(|o| pass.get(o as usize).copied().unwrap_or(false)) {
                mask |= 1 << CATEGORY;
            }
        }
        let brand_ord = self.brand.as_ref().and_then(|c| c.ords().first(doc));
        if let Some(pass) = &self.brand_pass {
            if !brand_ord.is_some_and(|o| pass.get(o as usize).copied().unwrap_or(false)) {
                mask |= 1 << BRAND;
            }
        }
        let price = self.price.first(doc).unwrap_or(0);
        if self.price_min.is_some_and(|m| price < m) || self.price_max.is_some_and(|m| price > m) {
            mask |= 1 << PRICE;
        }
        let rating = self.rating.first(doc).unwrap_or(0.0);
        if self.rating_min.is_some_and(|m| rating < m) {
            mask |= 1 << RATING;
        }
        let in_stock = self.in_stock.first(doc).unwrap_or(true);
        if self.want_stock.is_some_and(|w| w != in_stock) {
            mask |= 1 << STOCK;
        }
        self.ords.clear();
        if let Some(attrs) = &self.attrs {
            self.ords.extend(attrs.term_ords(doc));
        }
        if self.attr_filter_mask != 0 {
            let mut passed = 0u64;
            for ord in &self.ords {
                let ord = *ord as usize;
                if self.attr_pass.get(ord).copied().unwrap_or(false) {
                    passed |= 1 << (ATTRIBUTE_BASE + self.attr_dim[ord] as u32);
                }
            }
            mask |= self.attr_filter_mask & !passed;
        }
        if mask.count_ones() > 1 {
            return;
        }
        let counts_in = |dim: u32| mask == 0 || mask == 1 << dim;
        if counts_in(CATEGORY) {
            if let Some(ord) = category_ord {
                self.category_counts[ord as usize] += 1;
            }
        }
        if counts_in(BRAND) {
            if let Some(ord) = brand_ord {
                self.brand_counts[ord as usize] += 1;
            }
        }
        if counts_in(PRICE) {
            if let Some(bucket) = price_bucket(price) {
                self.prices[bucket] += 1;
            }
        }
        if counts_in(RATING) {
            self.ratings[(rating.floor().clamp(0.0, 5.0)) as usize] += 1;
        }
        if counts_in(STOCK) {
            self.stock[usize::from(in_stock)] += 1;
        }
        for ord in &self.ords {
            let ord = *ord as usize;
            let dim = self.attr_dim.get(ord).copied().unwrap_or(-1);
            if mask == 0 || (dim >= 0 && mask == 1 << (ATTRIBUTE_BASE + dim as u32)) {
                self.attr_counts[ord] += 1;
            }
        }
        if mask != 0 {
            return;
        }
        self.total += 1;
        let primary = match self.sort {
            SearchSort::Relevance => ordered_f64(f64::from(score)),
            SearchSort::PriceAsc => !ordered_i64(price),
            SearchSort::PriceDesc => ordered_i64(price),
            SearchSort::Newest => ordered_i64(self.created.first(doc).unwrap_or(0)),
            SearchSort::Rating => ordered_f64(self.rating_score.first(doc).unwrap_or(0.0)),
        };
        let key = SortKey { primary, tie: self.tie.first(doc).unwrap_or(0) };
        if self.after.is_some_and(|after| !after.before(&key)) {
            return;
        }
        if self.top.len() < self.limit {
            self.top.push(std::cmp::Reverse((key, doc)));
        } else if self.top.peek().is_some_and(|worst| key > worst.0 .0) {
            self.top.pop();
            self.top.push(std::cmp::Reverse((key, doc)));
        }
    }

    fn harvest(self) -> SegmentFruit {
        let segment_ord = self.segment_ord;
        let top = self.top.into_iter().map(|r| (r.0 .0, DocAddress::new(segment_ord, r.0 .1))).collect();
        let attributes = harvest_counts(&self.attrs, &self.attr_counts);
        SegmentFruit {
            top,
            total: self.total,
            categories: harvest_counts(&self.category, &self.category_counts),
            brands: harvest_counts(&self.brand, &self.brand_counts),
            prices: self.prices,
            ratings: self.ratings,
            stock: self.stock,
            attributes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orderings_preserve_value_order() {
        assert!(ordered_i64(-5) < ordered_i64(0));
        assert!(ordered_i64(0) < ordered_i64(7));
        assert!(ordered_f64(-1.5) < ordered_f64(0.0));
        assert!(ordered_f64(0.5) < ordered_f64(2.0));
        let a = SortKey { primary: 5, tie: 1 };
        let b = SortKey { primary: 5, tie: 2 };
        assert!(a.before(&b));
        assert!(a > b);
    }
}
