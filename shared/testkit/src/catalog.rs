//! An in-memory catalog with the same observable rules as the DynamoDB adapter (SKU uniqueness, a SKU never
//! changing seller, version checks, active-only category listings that include descendants, seller listings, opaque cursors). Handler
//! tests use it as the fake of every catalog port.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use commerce_app::ports::{
    CategoryListing, CategoryReader, CategoryUsage, CategoryWriter, ProductCreator, ProductReader, ProductRemover,
    ProductUpdater, SellerProducts, SkuCatalog,
};
use commerce_app::services::catalog::VERSION_CONFLICT;
use commerce_domain::catalog::{Category, CategoryQuery, ListSort, Page, PageLimit, Product, ProductSummary, SkuView};
use commerce_domain::error::ErrorCode;
use commerce_domain::error::{DomainError, Result};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

#[derive(Debug, Default)]
struct State {
    products: BTreeMap<String, Product>,
    sku_owner: HashMap<String, String>,
    /// Every SKU ever written and its seller; never forgotten, like the adapter's retired SKU items.
    sku_seller: HashMap<String, String>,
    categories: BTreeMap<String, Category>,
}

/// The in-memory catalog.
#[derive(Debug, Default)]
pub struct InMemoryCatalog {
    state: Mutex<State>,
}

impl InMemoryCatalog {
    pub fn new() -> Self {
        Self::default()
    }

    /// A catalog holding these categories and products, written without checks (like `DynamoCatalog::import`).
    pub fn with(categories: impl IntoIterator<Item = Category>, products: impl IntoIterator<Item = Product>) -> Self {
        let catalog = Self::new();
        {
            let mut state = catalog.lock();
            for c in categories {
                state.categories.insert(c.category_id.clone(), c);
            }
            for p in products {
                for v in &p.variants {
                    state.sku_owner.insert(v.sku.clone(), p.product_id.clone());
                    state.sku_seller.insert(v.sku.clone(), p.seller_id.clone());
                }
                state.products.insert(p.product_id.clone(), p);
            }
        }
        catalog
    }

    /// A snapshot of a stored product, whatever its status.
    pub fn stored(&self, product_id: &str) -> Option<Product> {
        self.lock().products.get(product_id).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self, state: &mut State, previous: Option<&Product>, next: &Product) -> Result<()> {
        if !state.categories.contains_key(&next.category_id) {
            return Err(DomainError::validation("category_id", "unknown category"));
        }
        for v in &next.variants {
            let other_product = state.sku_owner.get(&v.sku).is_some_and(|owner| *owner != next.product_id);
            let other_seller = state.sku_seller.get(&v.sku).is_some_and(|seller| *seller != next.seller_id);
            if other_product || other_seller {
                return Err(DomainError::conflict(
                    ErrorCode::SkuTaken,
                    format!("SKU {} belongs to another product", v.sku),
                ));
            }
        }
        if let Some(previous) = previous {
            for v in &previous.variants {
                state.sku_owner.remove(&v.sku);
            }
        }
        for v in &next.variants {
            state.sku_owner.insert(v.sku.clone(), next.product_id.clone());
            state.sku_seller.insert(v.sku.clone(), next.seller_id.clone());
        }
        state.products.insert(next.product_id.clone(), next.clone());
        Ok(())
    }
}

fn page<T>(mut all: Vec<T>, limit: PageLimit, cursor: Option<&str>, scope: &str) -> Result<Page<T>> {
    let offset = match cursor {
        None => 0,
        Some(raw) => URL_SAFE_NO_PAD
            .decode(raw)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|text| text.strip_prefix(&format!("{scope}|")).and_then(|n| n.parse::<usize>().ok()))
            .ok_or_else(|| DomainError::invalid_parameter("cursor", "is not a cursor this listing issued"))?,
    };
    let end = (offset + limit.get() as usize).min(all.len());
    let next_cursor = (end < all.len()).then(|| URL_SAFE_NO_PAD.encode(format!("{scope}|{end}")));
    let items = if offset < all.len() { all.drain(offset..end).collect() } else { Vec::new() };
    Ok(Page { items, next_cursor })
}

impl ProductReader for InMemoryCatalog {
    async fn get_product(&self, product_id: &str) -> Result<Option<Product>> {
        Ok(self.lock().products.get(product_id).cloned())
    }
}

impl ProductCreator for InMemoryCatalog {
    async fn create_product(&self, product: &Product) -> Result<()> {
        let mut state = self.lock();
        if state.products.contains_key(&product.product_id) {
            return Err(DomainError::conflict(ErrorCode::ProductExists, "the product exists"));
        }
        self.write(&mut state, None, product)
    }
}

impl ProductUpdater for InMemoryCatalog {
    async fn replace_product(&self, current: &Product, next: &Product) -> Result<()> {
        let mut state = self.lock();
        let stored = state.products.get(&current.product_id).cloned();
        match stored {
            Some(stored) if stored.version == current.version => self.write(&mut state, Some(&stored), next),
            _ => Err(DomainError::conflict(VERSION_CONFLICT, "the product changed concurrently")),
        }
    }
}

impl ProductRemover for InMemoryCatalog {
    async fn delete_product(&self, product: &Product) -> Result<()> {
        let mut state = self.lock();
        match state.products.get(&product.product_id) {
            Some(stored) if stored.version == product.version => {
                for v in &product.variants {
                    state.sku_owner.remove(&v.sku);
                }
                state.products.remove(&product.product_id);
                Ok(())
            }
            _ => Err(DomainError::conflict(VERSION_CONFLICT, "the product changed concurrently")),
        }
    }
}

impl CategoryListing for InMemoryCatalog {
    async fn list_category(&self, query: &CategoryQuery) -> Result<Page<ProductSummary>> {
        let mut listed: Vec<ProductSummary> = self
            .lock()
            .products
            .values()
            .filter(|p| p.is_public() && p.category_path.contains(&query.category_id))
            .map(Product::summary)
            .collect();
        match query.sort {
            ListSort::Newest => {
                listed.sort_by(|a, b| (b.created_at, &b.product_id).cmp(&(a.created_at, &a.product_id)))
            }
            ListSort::PriceAsc => {
                listed.sort_by(|a, b| (a.price_min.amount, &a.product_id).cmp(&(b.price_min.amount, &b.product_id)))
            }
            ListSort::PriceDesc => {
                listed.sort_by(|a, b| (b.price_min.amount, &b.product_id).cmp(&(a.price_min.amount, &a.product_id)))
            }
        }
        let scope = format!("{}:{:?}", query.category_id, query.sort);
        page(listed, query.limit, query.cursor.as_deref(), &scope)
    }
}

impl SellerProducts for InMemoryCatalog {
    async fn list_seller(&self, seller_id: &str, limit: PageLimit, cursor: Option<&str>) -> Result<Page<Product>> {
        let mut listed: Vec<Product> =
            self.lock().products.values().filter(|p| p.seller_id == seller_id).cloned().collect();
        listed.sort_by(|a, b| (b.created_at, &b.product_id).cmp(&(a.created_at, &a.product_id)));
        page(listed, limit, cursor, seller_id)
    }
}

impl SkuCatalog for InMemoryCatalog {
    async fn variants_by_sku(&self, skus: &[String]) -> Result<Vec<SkuView>> {
        let state = self.lock();
        let mut seen = std::collections::BTreeSet::new();
        Ok(skus
            .iter()
            .filter(|sku| seen.insert(sku.as_str()))
            .filter_map(|sku| {
                let product = state.products.get(state.sku_owner.get(sku)?)?;
                product.sku_views().into_iter().find(|view| view.sku == *sku)
            })
            .collect())
    }
}

impl CategoryReader for InMemoryCatalog {
    async fn list_categories(&self) -> Result<Vec<Category>> {
        Ok(self.lock().categories.values().cloned().collect())
    }
}

impl CategoryWriter for InMemoryCatalog {
    async fn put_category(&self, category: &Category, expected_version: Option<u64>) -> Result<()> {
        let mut state = self.lock();
        let stored = state.categories.get(&category.category_id).map(|c| c.version);
        match (stored, expected_version) {
            (None, None) => {}
            (Some(version), Some(expected)) if version == expected => {}
            (Some(_), None) => {
                return Err(DomainError::conflict(ErrorCode::CategoryExists, "the category already exists"))
            }
            _ => return Err(DomainError::conflict(VERSION_CONFLICT, "the category changed concurrently; retry")),
        }
        state.categories.insert(category.category_id.clone(), category.clone());
        Ok(())
    }

    async fn delete_category(&self, category: &Category) -> Result<()> {
        let mut state = self.lock();
        match state.categories.get(&category.category_id) {
            Some(stored) if stored.version == category.version => {
                state.categories.remove(&category.category_id);
                Ok(())
            }
            _ => Err(DomainError::conflict(VERSION_CONFLICT, "the category changed concurrently; retry")),
        }
    }
}

impl CategoryUsage for InMemoryCatalog {
    async fn category_in_use(&self, category_id: &str) -> Result<bool> {
        Ok(self.lock().products.values().any(|p| p.category_id == category_id))
    }
}
