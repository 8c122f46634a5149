//! The product page (`GET /v1/products/{product_id}`): the product with each variant's availability, never the
//! stock count, and the product's rating summary.

use crate::catalog::{Product, Variant};
use crate::inventory::StockLevel;
use crate::review::RatingSummary;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};

/// At most this many sellable units reads as `low_stock` on the product page.
pub const LOW_STOCK_UNITS: i64 = 5;

/// What the product page says of a variant's stock: never the count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    InStock,
    LowStock,
    OutOfStock,
}

impl Availability {
    /// A variant's availability from its components' stock levels in every warehouse: the units it can sell
    /// are, over its components, the fewest whole sets the sellable units (`avail`, never below 0) make.
    pub fn of(variant: &Variant, levels: &HashMap<String, Vec<StockLevel>>) -> Self {
        let units = variant
            .components
            .iter()
            .map(|c| {
                let sellable = levels
                    .get(&c.sku)
                    .map(|ls| ls.iter().fold(0i64, |sum, l| sum.saturating_add(l.avail.max(0))))
                    .unwrap_or(0);
                sellable / i64::from(c.quantity.max(1))
            })
            .min()
            .unwrap_or(0);
        match units {
            0 => Availability::OutOfStock,
            n if n <= LOW_STOCK_UNITS => Availability::LowStock,
            _ => Availability::InStock,
        }
    }
}

/// `GET /v1/products/{product_id}`: the product, each variant's availability and the rating summary.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductPage {
    pub product: Product,
    /// Parallel to `product.variants`.
    pub availability: Vec<Availability>,
    pub rating: RatingSummary,
}

impl ProductPage {
    pub fn new(product: Product, levels: &HashMap<String, Vec<StockLevel>>, rating: RatingSummary) -> Self {
        let availability = product.variants.iter().map(|v| Availability::of(v, levels)).collect();
        Self { product, availability, rating }
    }

    /// Every SKU the variants draw stock from.
    pub fn stock_skus(product: &Product) -> Vec<String> {
        let skus: BTreeSet<&str> =
            product.variants.iter().flat_map(|v| v.components.iter().map(|c| c.sku.as_str())).collect();
        skus.into_iter().map(str::to_owned).collect()
    }
}

impl Serialize for ProductPage {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let mut value = serde_json::to_value(&self.product).map_err(S::Error::custom)?;
        if let Some(variants) = value.get_mut("variants").and_then(|v| v.as_array_mut()) {
            for (variant, availability) in variants.iter_mut().zip(&self.availability) {
                variant["availability"] = serde_json::to_value(availability).map_err(S::Error::custom)?;
            }
        }
        value["rating"] = serde_json::to_value(self.rating).map_err(S::Error::custom)?;
        value.serialize(serializer)
    }
}
