//! The catalog: products with variants (each its own SKU, options and price), categories in a hierarchy with
//! typed attribute definitions, and the rules that turn a seller's request into a valid product.
//!
//! Requests arrive as loosely typed inputs (`ProductInput`, `ProductPatch`, `CategoryInput`); enum-like strings
//! (status, attribute types, currencies) are checked here so that an unknown value is a 422 naming the field,
//! not a parse failure. Everything here is pure: ids and clocks come from the caller.

use crate::error::ErrorCode;
use crate::error::{DomainError, Result};
use crate::money::{Currency, Money};
use crate::tax::TaxClass;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

/// Id prefix of products (`prd_...`).
pub const PRODUCT_ID_PREFIX: &str = "prd";
/// Id prefix of categories (`cat_...`).
pub const CATEGORY_ID_PREFIX: &str = "cat";

/// Most variants one product may have. A product write is one DynamoDB transaction of at most 100 actions:
/// the product, a category check, up to `MAX_CATEGORY_DEPTH` listing entries before and after, and one action
/// per SKU before and after (a PATCH may replace every variant).
pub const MAX_VARIANTS: usize = 45;
/// The heaviest unit a variant may weigh: one tonne.
pub const MAX_WEIGHT_GRAMS: u32 = 1_000_000;
/// Deepest category nesting (a root is depth 1).
pub const MAX_CATEGORY_DEPTH: usize = 4;
/// Most images per product.
pub const MAX_IMAGES: usize = 20;
/// Most attributes per product, and attribute definitions per category.
pub const MAX_ATTRIBUTES: usize = 50;
/// Most option pairs (size, colour, ...) per variant.
pub const MAX_OPTIONS: usize = 10;
/// Most inventory components one variant consumes.
pub const MAX_COMPONENTS: usize = 10;
/// The stable code of a bundle component that is not a SKU of the bundle's seller (422, naming the field).
pub const COMPONENT_NOT_OWNED: ErrorCode = ErrorCode::ComponentNotOwned;
/// Most categories the platform holds (they live in one partition and are read whole).
pub const MAX_CATEGORIES: usize = 1000;

const _: () =
    assert!(1 + 1 + 2 * MAX_CATEGORY_DEPTH + 2 * MAX_VARIANTS <= 100, "a product write must fit one transaction");

/// Where a product is in its life. Only active products are visible to shoppers and listed publicly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProductStatus {
    Draft,
    Active,
    Archived,
}

impl ProductStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Active => "active",
            Self::Archived => "archived",
        }
    }

    fn parse(raw: &str, field: &str) -> Result<Self> {
        match raw {
            "draft" => Ok(Self::Draft),
            "active" => Ok(Self::Active),
            "archived" => Ok(Self::Archived),
            other => Err(DomainError::validation(field, format!("{other:?} is not one of draft, active, archived"))),
        }
    }
}

impl fmt::Display for ProductStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The type of a category's attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeType {
    Text,
    Number,
    Boolean,
    TextList,
}

impl AttributeType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::TextList => "text_list",
        }
    }

    fn parse(raw: &str, field: &str) -> Result<Self> {
        match raw {
            "text" => Ok(Self::Text),
            "number" => Ok(Self::Number),
            "boolean" => Ok(Self::Boolean),
            "text_list" => Ok(Self::TextList),
            other => {
                Err(DomainError::validation(field, format!("{other:?} is not one of text, number, boolean, text_list")))
            }
        }
    }
}

/// A product attribute's value. JSON decides the shape: a string, a number, a boolean or a list of strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttributeValue {
    Boolean(bool),
    Number(serde_json::Number),
    Text(String),
    TextList(Vec<String>),
}

impl AttributeValue {
    /// The type this value has.
    pub fn kind(&self) -> AttributeType {
        match self {
            Self::Boolean(_) => AttributeType::Boolean,
            Self::Number(_) => AttributeType::Number,
            Self::Text(_) => AttributeType::Text,
            Self::TextList(_) => AttributeType::TextList,
        }
    }
}

/// One attribute a category declares for its products (and its descendants' products).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeDefinition {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: AttributeType,
    /// Unit of a number, e.g. `GB`, `in`, `cm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Whether search offers this attribute as a facet.
    #[serde(default)]
    pub facetable: bool,
    /// Whether every product in the category must set it.
    #[serde(default)]
    pub required: bool,
}

/// A category. Categories form a tree at most `MAX_CATEGORY_DEPTH` deep; `path` is the materialized path
/// of ids from the root down to this category (inclusive).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Category {
    pub category_id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    pub path: Vec<String>,
    /// Definitions declared on this category; products also inherit those of every ancestor.
    #[serde(default)]
    pub attributes: Vec<AttributeDefinition>,
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An inventory item a variant consumes when sold: itself once by default, several items for a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Component {
    pub sku: String,
    pub quantity: u32,
}

/// A purchasable variant of a product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variant {
    /// Unique across the platform.
    pub sku: String,
    /// Option values that tell variants apart, e.g. `{"color": "blue", "size": "M"}`.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    pub price: Money,
    /// Never empty: defaults to `[{sku: <this sku>, quantity: 1}]`.
    pub components: Vec<Component>,
    /// The shipping weight of one unit; weight-tier shipping methods cannot carry a variant without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_grams: Option<u32>,
    /// The seller's "was" price for a sale badge: above `price`, in its currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare_at_price: Option<Money>,
}

/// A product as stored and returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub product_id: String,
    pub seller_id: String,
    pub title: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    pub category_id: String,
    /// The category's materialized path, root first; the product is listed under each of these.
    pub category_path: Vec<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, AttributeValue>,
    #[serde(default)]
    pub images: Vec<String>,
    pub variants: Vec<Variant>,
    /// How its variants are taxed (`standard` unless set; a region's rate for the class applies).
    #[serde(default)]
    pub tax_class: TaxClass,
    pub status: ProductStatus,
    /// Lowest variant price; listings sort by it.
    pub price_min: Money,
    pub price_max: Money,
    /// Incremented on every write. Optimistic concurrency and order-safe consumers rely on it.
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Product {
    /// Whether shoppers may see and buy it.
    pub fn is_public(&self) -> bool {
        self.status == ProductStatus::Active
    }

    /// Whether `caller_id` may change it: its seller, or an admin.
    pub fn may_be_changed_by(&self, caller_id: &str, is_admin: bool) -> bool {
        is_admin || self.seller_id == caller_id
    }

    /// The product's content as an input, so that a patch can be applied and the result validated whole.
    pub fn to_input(&self) -> ProductInput {
        ProductInput {
            title: self.title.clone(),
            description: Some(self.description.clone()),
            category_id: self.category_id.clone(),
            brand: self.brand.clone(),
            attributes: self.attributes.clone(),
            images: self.images.clone(),
            variants: self
                .variants
                .iter()
                .map(|v| VariantInput {
                    sku: v.sku.clone(),
                    options: v.options.clone(),
                    price: PriceInput { amount: v.price.amount, currency: v.price.currency.to_string() },
                    components: Some(
                        v.components
                            .iter()
                            .map(|c| ComponentInput { sku: c.sku.clone(), quantity: c.quantity })
                            .collect(),
                    ),
                    weight_grams: v.weight_grams,
                    compare_at_price: v
                        .compare_at_price
                        .map(|p| PriceInput { amount: p.amount, currency: p.currency.to_string() }),
                })
                .collect(),
            tax_class: Some(self.tax_class.clone()),
            status: Some(self.status.as_str().to_owned()),
        }
    }

    /// The listing entry for this product.
    pub fn summary(&self) -> ProductSummary {
        ProductSummary {
            product_id: self.product_id.clone(),
            seller_id: self.seller_id.clone(),
            title: self.title.clone(),
            brand: self.brand.clone(),
            category_id: self.category_id.clone(),
            image: self.images.first().cloned(),
            price_min: self.price_min,
            price_max: self.price_max,
            variant_count: self.variants.len() as u32,
            status: self.status,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    /// One view per variant, as carts, checkout and inventory read them by SKU.
    pub fn sku_views(&self) -> Vec<SkuView> {
        self.variants
            .iter()
            .map(|v| SkuView {
                sku: v.sku.clone(),
                product_id: self.product_id.clone(),
                seller_id: self.seller_id.clone(),
                title: self.title.clone(),
                price: v.price,
                status: self.status,
                options: v.options.clone(),
                components: v.components.clone(),
                image: self.images.first().cloned(),
                product_version: self.version,
                tax_class: self.tax_class.clone(),
                weight_grams: v.weight_grams,
                category_path: self.category_path.clone(),
            })
            .collect()
    }

    /// The SKUs its variants consume that are not its own variants: a bundle's parts from other products.
    pub fn foreign_components(&self) -> Vec<String> {
        let own: BTreeSet<&str> = self.variants.iter().map(|v| v.sku.as_str()).collect();
        let parts: BTreeSet<&str> = self
            .variants
            .iter()
            .flat_map(|v| &v.components)
            .map(|c| c.sku.as_str())
            .filter(|s| !own.contains(s))
            .collect();
        parts.into_iter().map(str::to_owned).collect()
    }

    /// Every SKU a variant consumes must be the product seller's: one of its own variants or, looked up in
    /// `others` (views of other products' SKUs), a SKU of the same seller. Otherwise 422 `component_not_owned`
    /// naming the first other one; an unknown SKU is not the seller's either.
    pub fn check_component_owners(&self, others: &[SkuView]) -> Result<()> {
        let own: BTreeSet<&str> = self.variants.iter().map(|v| v.sku.as_str()).collect();
        for (i, variant) in self.variants.iter().enumerate() {
            for (j, component) in variant.components.iter().enumerate() {
                let sku = component.sku.as_str();
                let owned = own.contains(sku) || others.iter().any(|v| v.sku == sku && v.seller_id == self.seller_id);
                if !owned {
                    return Err(DomainError::refused(
                        COMPONENT_NOT_OWNED,
                        format!("variants[{i}].components[{j}].sku"),
                        format!("{sku} is not a SKU of this product's seller"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Builds a new product from a validated input.
    pub fn create(
        product_id: String,
        seller_id: String,
        input: ProductInput,
        categories: &CategoryTree,
        now: DateTime<Utc>,
    ) -> Result<Product> {
        let content = ValidContent::check(input, categories)?;
        Ok(content.into_product(product_id, seller_id, 1, now, now))
    }

    /// The product after applying `patch`, revalidated whole, with the version incremented.
    pub fn patched(&self, patch: ProductPatch, categories: &CategoryTree, now: DateTime<Utc>) -> Result<Product> {
        let input = patch.apply_to(self.to_input());
        let content = ValidContent::check(input, categories)?;
        Ok(content.into_product(
            self.product_id.clone(),
            self.seller_id.clone(),
            self.version + 1,
            self.created_at,
            now.max(self.created_at),
        ))
    }
}

/// A listing entry: enough to render a product card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductSummary {
    pub product_id: String,
    pub seller_id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    pub category_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    pub price_min: Money,
    pub price_max: Money,
    pub variant_count: u32,
    pub status: ProductStatus,
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One variant as other slices see it: pricing, ownership, status and what it consumes from inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkuView {
    pub sku: String,
    pub product_id: String,
    pub seller_id: String,
    pub title: String,
    pub price: Money,
    pub status: ProductStatus,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    pub components: Vec<Component>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    pub product_version: u64,
    #[serde(default)]
    pub tax_class: TaxClass,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_grams: Option<u32>,
    /// The product's category path, root first (what category promotions match).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub category_path: Vec<String>,
}

impl SkuView {
    /// Whether it can be put in a cart and bought: active, at a valid price (a SKU stored at a zero price
    /// before prices had a floor cannot be).
    pub fn is_purchasable(&self) -> bool {
        self.status == ProductStatus::Active && self.price.validate_price("price").is_ok()
    }
}

/// A page of results and the opaque cursor of the next page, if any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Order of a category listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListSort {
    /// Newest first (by creation time).
    Newest,
    /// By lowest variant price, cheapest first.
    PriceAsc,
    /// By lowest variant price, dearest first.
    PriceDesc,
}

impl std::str::FromStr for ListSort {
    type Err = DomainError;
    fn from_str(raw: &str) -> Result<Self> {
        match raw {
            "newest" => Ok(Self::Newest),
            "price_asc" => Ok(Self::PriceAsc),
            "price_desc" => Ok(Self::PriceDesc),
            other => Err(DomainError::invalid_parameter(
                "sort",
                format!("{other:?} is not one of newest, price_asc, price_desc"),
            )),
        }
    }
}

/// A page size: 20 by default, at most 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit(u32);

impl PageLimit {
    pub const DEFAULT: u32 = 20;
    pub const MAX: u32 = 100;

    /// Parses the `limit` query parameter (400 naming `limit` when out of range or not a number).
    pub fn parse(raw: Option<&str>) -> Result<Self> {
        let Some(raw) = raw else {
            return Ok(Self(Self::DEFAULT));
        };
        let value: u32 =
            raw.parse().map_err(|_| DomainError::invalid_parameter("limit", format!("{raw:?} is not a number")))?;
        Self::new(value)
    }

    pub fn new(value: u32) -> Result<Self> {
        if (1..=Self::MAX).contains(&value) {
            Ok(Self(value))
        } else {
            Err(DomainError::invalid_parameter("limit", format!("must be between 1 and {}", Self::MAX)))
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for PageLimit {
    fn default() -> Self {
        Self(Self::DEFAULT)
    }
}

/// A public category listing request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryQuery {
    pub category_id: String,
    pub sort: ListSort,
    pub limit: PageLimit,
    pub cursor: Option<String>,
}

// ----------------------------------------------------------------------------------------------------------
// Inputs
// ----------------------------------------------------------------------------------------------------------

/// A price as sent: the currency is checked by validation, so a bad code is a 422 naming the field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceInput {
    pub amount: i64,
    pub currency: String,
}

/// An inventory component as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentInput {
    pub sku: String,
    pub quantity: u32,
}

/// A variant as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantInput {
    pub sku: String,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    pub price: PriceInput,
    /// Omitted: the variant consumes itself once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub components: Option<Vec<ComponentInput>>,
    /// One unit's shipping weight in grams (1 to `MAX_WEIGHT_GRAMS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_grams: Option<u32>,
    /// A "was" price shown with a sale badge: more than `price`, in the same currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare_at_price: Option<PriceInput>,
}

/// The body of `POST /v1/seller/products`: a product's editable content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductInput {
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub category_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, AttributeValue>,
    #[serde(default)]
    pub images: Vec<String>,
    pub variants: Vec<VariantInput>,
    /// The tax class (`standard` when omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_class: Option<TaxClass>,
    /// `draft`, `active` (the default) or `archived`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// The body of `PATCH /v1/seller/products/{id}`: every field optional; a given field replaces the current
/// value whole (`variants`, `attributes` and `images` included). An empty `brand` clears it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<BTreeMap<String, AttributeValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variants: Option<Vec<VariantInput>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_class: Option<TaxClass>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

impl ProductPatch {
    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    fn apply_to(self, mut input: ProductInput) -> ProductInput {
        if let Some(title) = self.title {
            input.title = title;
        }
        if let Some(description) = self.description {
            input.description = Some(description);
        }
        if let Some(category_id) = self.category_id {
            input.category_id = category_id;
        }
        if let Some(brand) = self.brand {
            input.brand = Some(brand).filter(|b| !b.trim().is_empty());
        }
        if let Some(attributes) = self.attributes {
            input.attributes = attributes;
        }
        if let Some(images) = self.images {
            input.images = images;
        }
        if let Some(variants) = self.variants {
            input.variants = variants;
        }
        if let Some(tax_class) = self.tax_class {
            input.tax_class = Some(tax_class);
        }
        if let Some(status) = self.status {
            input.status = Some(status);
        }
        input
    }
}

/// An attribute definition as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeDefinitionInput {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default)]
    pub facetable: bool,
    #[serde(default)]
    pub required: bool,
}

/// The body of `POST /v1/admin/categories`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryInput {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    #[serde(default)]
    pub attributes: Vec<AttributeDefinitionInput>,
}

/// The body of `PATCH /v1/admin/categories/{id}`. A category cannot move: its products are indexed under
/// its ancestors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Vec<AttributeDefinitionInput>>,
}

// ----------------------------------------------------------------------------------------------------------
// Categories
// ----------------------------------------------------------------------------------------------------------

/// All categories, indexed: lookups, ancestors, children, inherited attribute definitions.
#[derive(Debug, Clone, Default)]
pub struct CategoryTree {
    by_id: HashMap<String, Category>,
}

impl CategoryTree {
    pub fn new(categories: impl IntoIterator<Item = Category>) -> Self {
        Self { by_id: categories.into_iter().map(|c| (c.category_id.clone(), c)).collect() }
    }

    pub fn get(&self, id: &str) -> Option<&Category> {
        self.by_id.get(id)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Whether any category has `id` as its parent.
    pub fn has_children(&self, id: &str) -> bool {
        self.by_id.values().any(|c| c.parent_id.as_deref() == Some(id))
    }

    /// Every category, parents before children, siblings by name.
    pub fn sorted(&self) -> Vec<Category> {
        let names = |c: &Category| -> Vec<String> {
            c.path.iter().map(|id| self.get(id).map_or_else(|| id.clone(), |a| a.name.to_lowercase())).collect()
        };
        let mut all: Vec<&Category> = self.by_id.values().collect();
        all.sort_by_cached_key(|c| (names(c), c.category_id.clone()));
        all.into_iter().cloned().collect()
    }

    /// The definitions that apply to products of `id`: its own and every ancestor's (the nearest wins).
    pub fn effective_attributes(&self, id: &str) -> Vec<AttributeDefinition> {
        let Some(category) = self.get(id) else {
            return Vec::new();
        };
        let mut by_name: BTreeMap<String, AttributeDefinition> = BTreeMap::new();
        for ancestor in category.path.iter().filter_map(|a| self.get(a)) {
            for def in &ancestor.attributes {
                by_name.insert(def.name.clone(), def.clone());
            }
        }
        by_name.into_values().collect()
    }

    /// Builds a new category, checked against the tree (parent exists, depth, sibling names, inherited types).
    pub fn create(&self, category_id: String, input: CategoryInput, now: DateTime<Utc>) -> Result<Category> {
        if self.by_id.len() >= MAX_CATEGORIES {
            return Err(DomainError::validation("parent_id", format!("at most {MAX_CATEGORIES} categories")));
        }
        let name = check_text("name", &input.name, 1, 100)?;
        let mut path = match input.parent_id.as_deref() {
            None => Vec::new(),
            Some(parent_id) => {
                let parent =
                    self.get(parent_id).ok_or_else(|| DomainError::validation("parent_id", "unknown category"))?;
                if parent.path.len() >= MAX_CATEGORY_DEPTH {
                    return Err(DomainError::validation(
                        "parent_id",
                        format!("categories nest at most {MAX_CATEGORY_DEPTH} deep"),
                    ));
                }
                parent.path.clone()
            }
        };
        self.check_sibling_name(input.parent_id.as_deref(), &name, None)?;
        let attributes = check_definitions(input.attributes)?;
        self.check_inherited(&path, &attributes)?;
        path.push(category_id.clone());
        Ok(Category {
            category_id,
            name,
            parent_id: input.parent_id,
            path,
            attributes,
            version: 1,
            created_at: now,
            updated_at: now,
        })
    }

    /// The category after `patch`, checked against the tree, version incremented.
    pub fn patched(&self, current: &Category, patch: CategoryPatch, now: DateTime<Utc>) -> Result<Category> {
        let mut next = current.clone();
        if let Some(name) = patch.name {
            next.name = check_text("name", &name, 1, 100)?;
            self.check_sibling_name(current.parent_id.as_deref(), &next.name, Some(&current.category_id))?;
        }
        if let Some(attributes) = patch.attributes {
            next.attributes = check_definitions(attributes)?;
            let ancestors = &current.path[..current.path.len().saturating_sub(1)];
            self.check_inherited(ancestors, &next.attributes)?;
            self.check_descendants_agree(current, &next.attributes)?;
        }
        next.version = current.version + 1;
        next.updated_at = now.max(current.updated_at);
        Ok(next)
    }

    fn check_sibling_name(&self, parent_id: Option<&str>, name: &str, except: Option<&str>) -> Result<()> {
        let taken = self.by_id.values().any(|c| {
            c.parent_id.as_deref() == parent_id
                && Some(c.category_id.as_str()) != except
                && c.name.to_lowercase() == name.to_lowercase()
        });
        if taken {
            return Err(DomainError::conflict(
                ErrorCode::CategoryExists,
                format!("a sibling category is named {name:?}"),
            ));
        }
        Ok(())
    }

    /// A definition may refine an ancestor's (unit, facetable, required) but not change its type.
    fn check_inherited(&self, ancestors: &[String], attributes: &[AttributeDefinition]) -> Result<()> {
        for (i, def) in attributes.iter().enumerate() {
            for ancestor in ancestors.iter().filter_map(|a| self.get(a)) {
                if let Some(inherited) = ancestor.attributes.iter().find(|d| d.name == def.name) {
                    if inherited.kind != def.kind {
                        return Err(DomainError::validation(
                            format!("attributes[{i}].type"),
                            format!("{} inherits type {} from {}", def.name, inherited.kind.as_str(), ancestor.name),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn check_descendants_agree(&self, category: &Category, attributes: &[AttributeDefinition]) -> Result<()> {
        let descendants = self
            .by_id
            .values()
            .filter(|c| c.category_id != category.category_id && c.path.contains(&category.category_id));
        for descendant in descendants {
            for (i, def) in attributes.iter().enumerate() {
                if let Some(own) = descendant.attributes.iter().find(|d| d.name == def.name) {
                    if own.kind != def.kind {
                        return Err(DomainError::validation(
                            format!("attributes[{i}].type"),
                            format!("{} is a {} in {}", def.name, own.kind.as_str(), descendant.name),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

fn check_definitions(inputs: Vec<AttributeDefinitionInput>) -> Result<Vec<AttributeDefinition>> {
    if inputs.len() > MAX_ATTRIBUTES {
        return Err(DomainError::validation("attributes", format!("at most {MAX_ATTRIBUTES} definitions")));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.into_iter().enumerate() {
        check_attribute_name(&format!("attributes[{i}].name"), &input.name)?;
        if !seen.insert(input.name.clone()) {
            return Err(DomainError::validation(format!("attributes[{i}].name"), "is defined twice"));
        }
        let kind = AttributeType::parse(&input.kind, &format!("attributes[{i}].type"))?;
        let unit = match input.unit {
            Some(unit) => Some(check_text(&format!("attributes[{i}].unit"), &unit, 1, 20)?),
            None => None,
        };
        out.push(AttributeDefinition {
            name: input.name,
            kind,
            unit,
            facetable: input.facetable,
            required: input.required,
        });
    }
    Ok(out)
}

// ----------------------------------------------------------------------------------------------------------
// Product validation
// ----------------------------------------------------------------------------------------------------------

struct ValidContent {
    title: String,
    description: String,
    brand: Option<String>,
    category_id: String,
    category_path: Vec<String>,
    attributes: BTreeMap<String, AttributeValue>,
    images: Vec<String>,
    variants: Vec<Variant>,
    tax_class: TaxClass,
    status: ProductStatus,
    price_min: Money,
    price_max: Money,
}

impl ValidContent {
    fn check(input: ProductInput, categories: &CategoryTree) -> Result<Self> {
        let title = check_text("title", &input.title, 1, 200)?;
        let description = match input.description {
            Some(d) => check_text("description", &d, 0, 5000)?,
            None => String::new(),
        };
        // A blank brand is no brand, on create as on update.
        let brand = match input.brand.filter(|b| !b.trim().is_empty()) {
            Some(b) => Some(check_text("brand", &b, 1, 100)?),
            None => None,
        };
        let category = categories
            .get(&input.category_id)
            .ok_or_else(|| DomainError::validation("category_id", "unknown category"))?;
        let images = check_images(input.images)?;
        let variants = check_variants(input.variants)?;
        let attributes = check_attributes(input.attributes, &categories.effective_attributes(&category.category_id))?;
        let status = match input.status.as_deref() {
            Some(raw) => ProductStatus::parse(raw, "status")?,
            None => ProductStatus::Active,
        };
        let price_min = variants
            .iter()
            .map(|v| v.price)
            .min_by_key(|p| p.amount)
            .ok_or_else(|| DomainError::validation("variants", "at least one variant is required"))?;
        let price_max = variants.iter().map(|v| v.price).max_by_key(|p| p.amount).unwrap_or(price_min);
        Ok(Self {
            title,
            description,
            brand,
            category_id: category.category_id.clone(),
            category_path: category.path.clone(),
            attributes,
            images,
            variants,
            tax_class: input.tax_class.unwrap_or_default(),
            status,
            price_min,
            price_max,
        })
    }

    fn into_product(
        self,
        product_id: String,
        seller_id: String,
        version: u64,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
    ) -> Product {
        Product {
            product_id,
            seller_id,
            title: self.title,
            description: self.description,
            brand: self.brand,
            category_id: self.category_id,
            category_path: self.category_path,
            attributes: self.attributes,
            images: self.images,
            variants: self.variants,
            tax_class: self.tax_class,
            status: self.status,
            price_min: self.price_min,
            price_max: self.price_max,
            version,
            created_at,
            updated_at,
        }
    }
}

/// Trims and checks length in characters; control characters other than newlines and tabs are rejected.
pub(crate) fn check_text(field: &str, raw: &str, min: usize, max: usize) -> Result<String> {
    let value = raw.trim();
    let len = value.chars().count();
    if len < min {
        return Err(DomainError::validation(
            field,
            if min == 1 { "must not be empty".to_owned() } else { format!("must be at least {min} characters") },
        ));
    }
    if len > max {
        return Err(DomainError::validation(field, format!("must be at most {max} characters")));
    }
    if value.chars().any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r') {
        return Err(DomainError::validation(field, "must not contain control characters"));
    }
    Ok(value.to_owned())
}

pub use crate::ids::is_valid_sku;

fn check_sku(field: &str, sku: &str) -> Result<()> {
    crate::ids::Sku::parse_field(field, sku).map(|_| ())
}

fn check_attribute_name(field: &str, name: &str) -> Result<()> {
    let bytes = name.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 40
        && bytes[0].is_ascii_lowercase()
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_');
    if ok {
        Ok(())
    } else {
        Err(DomainError::validation(field, "must be 1-40 of a-z, 0-9 and '_', starting with a letter"))
    }
}

fn check_images(images: Vec<String>) -> Result<Vec<String>> {
    if images.len() > MAX_IMAGES {
        return Err(DomainError::validation("images", format!("at most {MAX_IMAGES} images")));
    }
    for (i, image) in images.iter().enumerate() {
        let field = format!("images[{i}]");
        if image.len() > 2048 {
            return Err(DomainError::validation(field, "must be at most 2048 characters"));
        }
        let parsed = url::Url::parse(image).map_err(|_| DomainError::validation(&field, "must be an absolute URL"))?;
        if parsed.scheme() != "https" || parsed.host_str().is_none_or(str::is_empty) {
            return Err(DomainError::validation(field, "must be an https URL with a host"));
        }
    }
    Ok(images)
}

fn check_variants(inputs: Vec<VariantInput>) -> Result<Vec<Variant>> {
    if inputs.is_empty() {
        return Err(DomainError::validation("variants", "at least one variant is required"));
    }
    if inputs.len() > MAX_VARIANTS {
        return Err(DomainError::validation("variants", format!("at most {MAX_VARIANTS} variants")));
    }
    let mut skus = BTreeSet::new();
    let mut option_sets = BTreeSet::new();
    let mut currency: Option<Currency> = None;
    let mut variants = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.into_iter().enumerate() {
        let at = |rest: &str| format!("variants[{i}].{rest}");
        check_sku(&at("sku"), &input.sku)?;
        if !skus.insert(input.sku.clone()) {
            return Err(DomainError::validation(at("sku"), format!("{} appears twice in this product", input.sku)));
        }
        let options = check_options(&at("options"), input.options)?;
        if !option_sets.insert(options.clone()) {
            return Err(DomainError::validation(at("options"), "another variant has the same options"));
        }
        let code: Currency = input
            .price
            .currency
            .parse()
            .map_err(|_| DomainError::validation(at("price.currency"), "must be an ISO 4217 code such as USD"))?;
        if currency.is_some_and(|c| c != code) {
            return Err(DomainError::validation(at("price.currency"), "all variants must share one currency"));
        }
        currency = Some(code);
        let price = Money::new(input.price.amount, code);
        price.validate_price(&at("price.amount"))?;
        let components = match input.components {
            None => vec![Component { sku: input.sku.clone(), quantity: 1 }],
            Some(list) => check_components(&at("components"), list)?,
        };
        if input.weight_grams.is_some_and(|w| w == 0 || w > MAX_WEIGHT_GRAMS) {
            return Err(DomainError::validation(at("weight_grams"), format!("must be within 1..={MAX_WEIGHT_GRAMS}")));
        }
        let compare_at_price = match input.compare_at_price {
            None => None,
            Some(was) => {
                if was.currency != input.price.currency {
                    return Err(DomainError::validation(
                        at("compare_at_price.currency"),
                        "must be the price's currency",
                    ));
                }
                let was = Money::new(was.amount, code);
                was.validate_price(&at("compare_at_price.amount"))?;
                if was.amount <= price.amount {
                    return Err(DomainError::validation(at("compare_at_price.amount"), "must be more than the price"));
                }
                Some(was)
            }
        };
        variants.push(Variant {
            sku: input.sku,
            options,
            price,
            components,
            weight_grams: input.weight_grams,
            compare_at_price,
        });
    }
    Ok(variants)
}

fn check_options(field: &str, options: BTreeMap<String, String>) -> Result<BTreeMap<String, String>> {
    if options.len() > MAX_OPTIONS {
        return Err(DomainError::validation(field, format!("at most {MAX_OPTIONS} options")));
    }
    let mut out = BTreeMap::new();
    for (key, value) in options {
        let key_field = format!("{field}.{key}");
        check_attribute_name(&key_field, &key)?;
        let value = check_text(&key_field, &value, 1, 100)?;
        out.insert(key, value);
    }
    Ok(out)
}

fn check_components(field: &str, list: Vec<ComponentInput>) -> Result<Vec<Component>> {
    if list.is_empty() || list.len() > MAX_COMPONENTS {
        return Err(DomainError::validation(field, format!("must list 1 to {MAX_COMPONENTS} components")));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(list.len());
    for (j, c) in list.into_iter().enumerate() {
        check_sku(&format!("{field}[{j}].sku"), &c.sku)?;
        if !seen.insert(c.sku.clone()) {
            return Err(DomainError::validation(format!("{field}[{j}].sku"), "is listed twice"));
        }
        if !(1..=1000).contains(&c.quantity) {
            return Err(DomainError::validation(format!("{field}[{j}].quantity"), "must be between 1 and 1000"));
        }
        out.push(Component { sku: c.sku, quantity: c.quantity });
    }
    Ok(out)
}

fn check_attributes(
    attributes: BTreeMap<String, AttributeValue>,
    definitions: &[AttributeDefinition],
) -> Result<BTreeMap<String, AttributeValue>> {
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(DomainError::validation("attributes", format!("at most {MAX_ATTRIBUTES} attributes")));
    }
    let mut out = BTreeMap::new();
    for (name, value) in attributes {
        let field = format!("attributes.{name}");
        check_attribute_name(&field, &name)?;
        if !definitions.is_empty() {
            let def = definitions
                .iter()
                .find(|d| d.name == name)
                .ok_or_else(|| DomainError::validation(&field, "is not defined for this category"))?;
            if def.kind != value.kind() {
                return Err(DomainError::validation(&field, format!("must be {}", type_phrase(def.kind))));
            }
        }
        let value = match value {
            AttributeValue::Text(text) => AttributeValue::Text(check_text(&field, &text, 1, 500)?),
            AttributeValue::TextList(items) => {
                if items.len() > 20 {
                    return Err(DomainError::validation(&field, "at most 20 values"));
                }
                let items = items.iter().map(|item| check_text(&field, item, 1, 100)).collect::<Result<Vec<_>>>()?;
                AttributeValue::TextList(items)
            }
            AttributeValue::Number(number) => AttributeValue::Number(check_number(&field, number)?),
            other => other,
        };
        out.insert(name, value);
    }
    if let Some(missing) = definitions.iter().find(|d| d.required && !out.contains_key(&d.name)) {
        return Err(DomainError::validation(format!("attributes.{}", missing.name), "is required in this category"));
    }
    Ok(out)
}

/// The largest magnitude of a number attribute.
pub const MAX_ATTRIBUTE_NUMBER: f64 = 1e15;

/// A number attribute is within ±10^15; one smaller in magnitude than 10^-9 is kept as 0. (DynamoDB stores no
/// number below 10^-130 in magnitude: a 5e-198 was a 500 before.)
fn check_number(field: &str, number: serde_json::Number) -> Result<serde_json::Number> {
    let value = number.as_f64().unwrap_or(f64::INFINITY);
    if !value.is_finite() || value.abs() > MAX_ATTRIBUTE_NUMBER {
        return Err(DomainError::validation(field, "must be within ±1,000,000,000,000,000"));
    }
    if value.abs() < 1e-9 && value != 0.0 {
        return Ok(serde_json::Number::from(0));
    }
    Ok(number)
}

fn type_phrase(kind: AttributeType) -> &'static str {
    match kind {
        AttributeType::Text => "a string",
        AttributeType::Number => "a number",
        AttributeType::Boolean => "true or false",
        AttributeType::TextList => "a list of strings",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 0).single().unwrap()
    }

    fn def(name: &str, kind: &str) -> AttributeDefinitionInput {
        AttributeDefinitionInput { name: name.into(), kind: kind.into(), unit: None, facetable: true, required: false }
    }

    fn tree() -> CategoryTree {
        let empty = CategoryTree::default();
        let clothing = empty
            .create(
                "cat_clothing".into(),
                CategoryInput { name: "Clothing".into(), parent_id: None, attributes: vec![def("fabric", "text")] },
                at(0),
            )
            .unwrap();
        let with_root = CategoryTree::new([clothing.clone()]);
        let mut fit = def("fit", "text");
        fit.required = true;
        let tshirts = with_root
            .create(
                "cat_tshirts".into(),
                CategoryInput {
                    name: "T-shirts".into(),
                    parent_id: Some("cat_clothing".into()),
                    attributes: vec![
                        fit,
                        def("weight_g", "number"),
                        def("organic", "boolean"),
                        def("care", "text_list"),
                    ],
                },
                at(1),
            )
            .unwrap();
        let books = empty
            .create(
                "cat_books".into(),
                CategoryInput { name: "Books".into(), parent_id: None, attributes: vec![] },
                at(2),
            )
            .unwrap();
        CategoryTree::new([clothing, tshirts, books])
    }

    fn variant(sku: &str, size: &str, amount: i64) -> VariantInput {
        VariantInput {
            sku: sku.into(),
            options: BTreeMap::from([("size".to_string(), size.to_string())]),
            price: PriceInput { amount, currency: "USD".into() },
            components: None,
            weight_grams: None,
            compare_at_price: None,
        }
    }

    #[test]
    fn a_compare_at_price_must_be_above_the_price_in_its_currency() {
        let mut input = tshirt();
        input.variants[0].compare_at_price = Some(PriceInput { amount: 3_000, currency: "USD".into() });
        let product = create(input.clone()).unwrap();
        assert_eq!(product.variants[0].compare_at_price.map(|p| p.amount), Some(3_000));
        assert_eq!(product.to_input().variants[0].compare_at_price, input.variants[0].compare_at_price);
        let price = input.variants[0].price.amount;
        for (was, currency, field) in [
            (price, "USD", "variants[0].compare_at_price.amount"),
            (price + 1, "EUR", "variants[0].compare_at_price.currency"),
        ] {
            input.variants[0].compare_at_price = Some(PriceInput { amount: was, currency: currency.into() });
            assert_eq!(field_of(create(input.clone()).unwrap_err()), field);
        }
    }

    fn tshirt() -> ProductInput {
        serde_json::from_value(serde_json::json!({
            "title": "  Organic tee  ",
            "description": "Soft.",
            "category_id": "cat_tshirts",
            "brand": "Acme",
            "attributes": {"fabric": "cotton", "fit": "regular", "weight_g": 180, "organic": true, "care": ["wash cold"]},
            "images": ["https://img.example.com/tee.jpg"],
            "variants": [
                {"sku": "TS-BLU-M", "options": {"color": "blue", "size": "M"}, "price": {"amount": 1999, "currency": "USD"}},
                {"sku": "TS-BLU-L", "options": {"color": "blue", "size": "L"}, "price": {"amount": 2199, "currency": "USD"}}
            ]
        }))
        .unwrap()
    }

    fn create(input: ProductInput) -> Result<Product> {
        Product::create("prd_1".into(), "seller-1".into(), input, &tree(), at(10))
    }

    fn field_of(err: DomainError) -> String {
        match err {
            DomainError::Validation { field, .. } => field,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_product_is_built_with_derived_fields() {
        let p = create(tshirt()).unwrap();
        assert_eq!(p.title, "Organic tee");
        assert_eq!(p.category_path, vec!["cat_clothing", "cat_tshirts"]);
        assert_eq!(p.status, ProductStatus::Active);
        assert_eq!(p.price_min.amount, 1999);
        assert_eq!(p.price_max.amount, 2199);
        assert_eq!(p.version, 1);
        assert_eq!(p.variants[0].components, vec![Component { sku: "TS-BLU-M".into(), quantity: 1 }]);
        assert_eq!(p.attributes["weight_g"], AttributeValue::Number(180.into()));
        let views = p.sku_views();
        assert_eq!(views.len(), 2);
        assert_eq!(views[1].price.amount, 2199);
        assert_eq!(views[1].seller_id, "seller-1");
    }

    #[test]
    fn empty_title_is_rejected() {
        let mut input = tshirt();
        input.title = "   ".into();
        assert_eq!(field_of(create(input).unwrap_err()), "title");
    }

    #[test]
    fn duplicate_sku_in_one_product_is_rejected() {
        let mut input = tshirt();
        input.variants[1].sku = "TS-BLU-M".into();
        assert_eq!(field_of(create(input).unwrap_err()), "variants[1].sku");
    }

    #[test]
    fn duplicate_options_are_rejected() {
        let mut input = tshirt();
        input.variants[1].options = input.variants[0].options.clone();
        assert_eq!(field_of(create(input).unwrap_err()), "variants[1].options");
    }

    #[test]
    fn negative_price_is_rejected() {
        let mut input = tshirt();
        input.variants[0].price.amount = -1;
        assert_eq!(field_of(create(input).unwrap_err()), "variants[0].price.amount");
    }

    #[test]
    fn bad_or_mixed_currency_is_rejected() {
        let mut input = tshirt();
        input.variants[0].price.currency = "usd".into();
        assert_eq!(field_of(create(input).unwrap_err()), "variants[0].price.currency");
        let mut input = tshirt();
        input.variants[1].price.currency = "EUR".into();
        assert_eq!(field_of(create(input).unwrap_err()), "variants[1].price.currency");
    }

    #[test]
    fn too_many_or_no_variants_are_rejected() {
        let mut input = tshirt();
        input.variants = (0..=MAX_VARIANTS).map(|i| variant(&format!("SKU-{i}"), &i.to_string(), 100)).collect();
        assert_eq!(field_of(create(input).unwrap_err()), "variants");
        let mut input = tshirt();
        input.variants.clear();
        assert_eq!(field_of(create(input).unwrap_err()), "variants");
        let mut input = tshirt();
        input.variants = (0..MAX_VARIANTS).map(|i| variant(&format!("SKU-{i}"), &i.to_string(), 100)).collect();
        assert!(create(input).is_ok());
    }

    #[test]
    fn bad_image_urls_are_rejected() {
        for bad in ["not a url", "http://img.example.com/a.jpg", "https://", "javascript:alert(1)"] {
            let mut input = tshirt();
            input.images = vec!["https://ok.example.com/1.jpg".into(), bad.into()];
            assert_eq!(field_of(create(input).unwrap_err()), "images[1]", "{bad}");
        }
    }

    #[test]
    fn bad_skus_are_rejected() {
        for bad in ["", "ts-blu-m", "-LEADING", "HAS SPACE", &"X".repeat(65)] {
            let mut input = tshirt();
            input.variants[0].sku = bad.into();
            assert_eq!(field_of(create(input).unwrap_err()), "variants[0].sku", "{bad}");
        }
    }

    #[test]
    fn attributes_are_checked_against_inherited_definitions() {
        let mut input = tshirt();
        input.attributes.insert("weight_g".into(), AttributeValue::Text("heavy".into()));
        assert_eq!(field_of(create(input).unwrap_err()), "attributes.weight_g");

        let mut input = tshirt();
        input.attributes.insert("ram_gb".into(), AttributeValue::Number(16.into()));
        assert_eq!(field_of(create(input).unwrap_err()), "attributes.ram_gb");

        let mut input = tshirt();
        input.attributes.remove("fit");
        assert_eq!(field_of(create(input).unwrap_err()), "attributes.fit");

        let mut input = tshirt();
        input.attributes.insert("fabric".into(), AttributeValue::Boolean(true));
        assert_eq!(field_of(create(input).unwrap_err()), "attributes.fabric", "inherited from Clothing");
    }

    #[test]
    fn a_category_without_definitions_accepts_free_attributes() {
        let mut input = tshirt();
        input.category_id = "cat_books".into();
        input.attributes = BTreeMap::from([("author".to_string(), AttributeValue::Text("Le Guin".into()))]);
        let p = create(input).unwrap();
        assert_eq!(p.category_path, vec!["cat_books"]);
    }

    #[test]
    fn a_number_attribute_is_bounded_and_a_vanishing_one_is_zero() {
        let with = |value: f64| {
            let mut input = tshirt();
            input.category_id = "cat_books".into();
            let number = serde_json::Number::from_f64(value).unwrap();
            input.attributes = BTreeMap::from([("pages".to_string(), AttributeValue::Number(number))]);
            create(input)
        };
        let pages = |p: Product| p.attributes["pages"].clone();
        assert_eq!(pages(with(5.681699633281039e-198).unwrap()), AttributeValue::Number(0.into()));
        assert_eq!(pages(with(-1e-10).unwrap()), AttributeValue::Number(0.into()));
        let kept = serde_json::Number::from_f64(2.5e-5).unwrap();
        assert_eq!(pages(with(2.5e-5).unwrap()), AttributeValue::Number(kept));
        assert!(with(1e15).is_ok() && with(-1e15).is_ok());
        assert_eq!(field_of(with(8.163651975659016e162).unwrap_err()), "attributes.pages");
        assert_eq!(field_of(with(-1.000001e15).unwrap_err()), "attributes.pages");
    }

    #[test]
    fn unknown_category_and_status_are_rejected() {
        let mut input = tshirt();
        input.category_id = "cat_nope".into();
        assert_eq!(field_of(create(input).unwrap_err()), "category_id");
        let mut input = tshirt();
        input.status = Some("deleted".into());
        assert_eq!(field_of(create(input).unwrap_err()), "status");
    }

    #[test]
    fn bundle_components_are_checked() {
        let mut input = tshirt();
        input.variants[0].components = Some(vec![
            ComponentInput { sku: "TS-BLU-M".into(), quantity: 2 },
            ComponentInput { sku: "GIFT-BOX".into(), quantity: 0 },
        ]);
        assert_eq!(field_of(create(input).unwrap_err()), "variants[0].components[1].quantity");
        let mut input = tshirt();
        input.variants[0].components = Some(vec![]);
        assert_eq!(field_of(create(input).unwrap_err()), "variants[0].components");
    }

    #[test]
    fn bundle_components_must_be_skus_of_the_bundles_seller() {
        let mut input = tshirt();
        input.variants[1].components = Some(vec![
            ComponentInput { sku: "TS-BLU-M".into(), quantity: 1 },
            ComponentInput { sku: "GIFT-BOX".into(), quantity: 1 },
        ]);
        let p = create(input).unwrap();
        assert_eq!(p.foreign_components(), vec!["GIFT-BOX".to_string()]);
        let view =
            |seller: &str| SkuView { seller_id: seller.into(), sku: "GIFT-BOX".into(), ..p.sku_views()[0].clone() };
        assert!(p.check_component_owners(&[view("seller-1")]).is_ok());
        for others in [vec![view("seller-2")], vec![]] {
            match p.check_component_owners(&others) {
                Err(DomainError::Refused { code, field, .. }) => {
                    assert_eq!((code, field.as_str()), (COMPONENT_NOT_OWNED, "variants[1].components[1].sku"))
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(create(tshirt()).unwrap().check_component_owners(&[]).is_ok(), "no bundle, nothing to look up");
    }

    #[test]
    fn a_patch_revalidates_and_bumps_the_version() {
        let p = create(tshirt()).unwrap();
        let patch = ProductPatch { title: Some("New".into()), status: Some("archived".into()), ..Default::default() };
        let next = p.patched(patch, &tree(), at(20)).unwrap();
        assert_eq!(next.title, "New");
        assert_eq!(next.status, ProductStatus::Archived);
        assert_eq!(next.version, 2);
        assert_eq!(next.created_at, p.created_at);
        assert_eq!(next.updated_at, at(20));
        assert_eq!(next.variants, p.variants);

        let bad = ProductPatch { title: Some(String::new()), ..Default::default() };
        assert_eq!(field_of(p.patched(bad, &tree(), at(20)).unwrap_err()), "title");
    }

    #[test]
    fn product_round_trips_through_json() {
        let p = create(tshirt()).unwrap();
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["attributes"]["weight_g"], 180);
        assert_eq!(json["variants"][0]["price"]["currency"], "USD");
        let back: Product = serde_json::from_value(json).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn category_rules_hold() {
        let t = tree();
        let dup = t.create(
            "cat_x".into(),
            CategoryInput { name: "clothing".into(), parent_id: None, attributes: vec![] },
            at(3),
        );
        assert!(matches!(dup, Err(DomainError::Conflict { code: ErrorCode::CategoryExists, .. })));

        let retyped = t.create(
            "cat_x".into(),
            CategoryInput {
                name: "Polos".into(),
                parent_id: Some("cat_clothing".into()),
                attributes: vec![def("fabric", "number")],
            },
            at(3),
        );
        assert_eq!(field_of(retyped.unwrap_err()), "attributes[0].type");

        let unknown_type = t.create(
            "cat_x".into(),
            CategoryInput { name: "Polos".into(), parent_id: None, attributes: vec![def("fabric", "colour")] },
            at(3),
        );
        assert_eq!(field_of(unknown_type.unwrap_err()), "attributes[0].type");

        let orphan = t.create(
            "cat_x".into(),
            CategoryInput { name: "X".into(), parent_id: Some("cat_nope".into()), attributes: vec![] },
            at(3),
        );
        assert_eq!(field_of(orphan.unwrap_err()), "parent_id");

        let mut all = t.sorted();
        let mut parent = "cat_tshirts".to_string();
        for depth in 3..=MAX_CATEGORY_DEPTH + 1 {
            let tree_now = CategoryTree::new(all.clone());
            let id = format!("cat_d{depth}");
            let made = tree_now.create(
                id.clone(),
                CategoryInput { name: id.clone(), parent_id: Some(parent.clone()), attributes: vec![] },
                at(4),
            );
            if depth <= MAX_CATEGORY_DEPTH {
                all.push(made.unwrap());
                parent = id;
            } else {
                assert_eq!(field_of(made.unwrap_err()), "parent_id");
            }
        }

        let clothing = t.get("cat_clothing").unwrap().clone();
        let conflicting = CategoryPatch { attributes: Some(vec![def("fit", "number")]), ..Default::default() };
        assert_eq!(field_of(t.patched(&clothing, conflicting, at(5)).unwrap_err()), "attributes[0].type");
        let renamed =
            t.patched(&clothing, CategoryPatch { name: Some("Apparel".into()), ..Default::default() }, at(5)).unwrap();
        assert_eq!((renamed.name.as_str(), renamed.version), ("Apparel", 2));
    }

    #[test]
    fn sorted_lists_parents_first() {
        let ids: Vec<String> = tree().sorted().into_iter().map(|c| c.category_id).collect();
        assert_eq!(ids, vec!["cat_books", "cat_clothing", "cat_tshirts"]);
    }

    #[test]
    fn limits_and_sorts_parse() {
        assert_eq!(PageLimit::parse(None).unwrap().get(), 20);
        assert_eq!(PageLimit::parse(Some("100")).unwrap().get(), 100);
        for bad in ["0", "101", "-1", "ten"] {
            assert!(
                matches!(PageLimit::parse(Some(bad)), Err(DomainError::InvalidParameter { ref field, .. }) if field == "limit")
            );
        }
        assert_eq!("price_desc".parse::<ListSort>().unwrap(), ListSort::PriceDesc);
        assert!("cheapest".parse::<ListSort>().is_err());
    }

    proptest! {
        #[test]
        fn price_range_brackets_every_variant(amounts in proptest::collection::vec(0i64..10_000_000, 1..MAX_VARIANTS)) {
            let mut input = tshirt();
            input.variants = amounts.iter().enumerate().map(|(i, a)| variant(&format!("P-{i}"), &i.to_string(), *a)).collect();
            let p = create(input).unwrap();
            prop_assert_eq!(p.price_min.amount, *amounts.iter().min().unwrap());
            prop_assert_eq!(p.price_max.amount, *amounts.iter().max().unwrap());
        }

        #[test]
        fn valid_skus_survive_and_others_are_named(sku in "[A-Za-z0-9 _.-]{0,70}") {
            let mut input = tshirt();
            input.variants[0].sku = sku.clone();
            input.variants[0].components = None;
            match create(input) {
                Ok(p) => prop_assert!(is_valid_sku(&p.variants[0].sku)),
                Err(DomainError::Validation { field, .. }) => prop_assert!(field.starts_with("variants[")),
                Err(other) => prop_assert!(false, "unexpected {other:?}"),
            }
        }
    }
}
