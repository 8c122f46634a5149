//! Catalog use cases: sellers manage their own products (admins any), shoppers read active products and
//! category listings, admins manage categories. Authorization lives here, next to the rules it protects.

use crate::ports::{
    CategoryListing, CategoryReader, CategoryUsage, CategoryWriter, ProductCreator, ProductReader, ProductRemover,
    ProductUpdater, ReviewReader, SellerProducts, SkuCatalog, StockReader,
};
use chrono::{DateTime, Utc};
use commerce_domain::auth::Caller;
use commerce_domain::catalog::{
    Category, CategoryInput, CategoryPatch, CategoryQuery, CategoryTree, Page, PageLimit, Product, ProductInput,
    ProductPatch, ProductSummary, CATEGORY_ID_PREFIX, PRODUCT_ID_PREFIX,
};
use commerce_domain::error::ErrorCode;
use commerce_domain::error::{DomainError, Result};
use commerce_domain::ids;
use commerce_domain::ids::ProductId;
use commerce_domain::product_page::ProductPage;

/// How often an unconditional PATCH re-reads and retries after losing a race, before answering 409.
pub const UPDATE_ATTEMPTS: usize = 6;

/// The stable code of a lost optimistic-concurrency race.
pub const VERSION_CONFLICT: ErrorCode = ErrorCode::VersionConflict;

/// Reads all categories into a tree.
#[tracing::instrument(skip_all)]
pub async fn category_tree(reader: &impl CategoryReader) -> Result<CategoryTree> {
    Ok(CategoryTree::new(reader.list_categories().await?))
}

/// A seller creates a product they own. A bundle may consume only the seller's own SKUs (422
/// `component_not_owned`). A SKU another product has, or another seller ever had, is 409 `sku_taken`; a write
/// cancelled by a concurrent transaction on the same items wrote nothing and is tried again.
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
pub async fn create_product(
    categories: &impl CategoryReader,
    skus: &impl SkuCatalog,
    writer: &impl ProductCreator,
    caller: &Caller,
    input: ProductInput,
) -> Result<Product> {
    caller.require_seller()?;
    let tree = category_tree(categories).await?;
    let product = Product::create(ids::new_id(PRODUCT_ID_PREFIX), caller.user_id.clone(), input, &tree, Utc::now())?;
    components_owned(skus, &product).await?;
    for attempt in 1..=UPDATE_ATTEMPTS {
        match writer.create_product(&product).await {
            Ok(()) => break,
            Err(DomainError::Conflict { code: VERSION_CONFLICT, .. }) if attempt < UPDATE_ATTEMPTS => {
                backoff(attempt).await;
            }
            Err(err) => return Err(err),
        }
    }
    tracing::info!(product_id = %product.product_id, variants = product.variants.len(), "product created");
    Ok(product)
}

/// A product's seller (or an admin) changes it. With `expected_version` (from `If-Match`) a stale version is a
/// 409 at once; without it a lost race is retried on fresh data, so no concurrent update is ever overwritten.
/// The changed product's bundles may consume only its seller's SKUs (422 `component_not_owned`).
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id, product_id = %product_id))]
pub async fn update_product(
    catalog: &(impl ProductReader + CategoryReader + SkuCatalog + ProductUpdater),
    caller: &Caller,
    product_id: &ProductId,
    patch: ProductPatch,
    expected_version: Option<u64>,
) -> Result<Product> {
    caller.require_seller()?;
    let tree = category_tree(catalog).await?;
    let attempts = if expected_version.is_some() { 1 } else { UPDATE_ATTEMPTS };
    for attempt in 1..=attempts {
        let current = owned_product(catalog, caller, product_id).await?;
        if let Some(expected) = expected_version {
            if expected != current.version {
                return Err(version_conflict(current.version));
            }
        }
        if patch.is_empty() {
            return Ok(current);
        }
        let next = current.patched(patch.clone(), &tree, Utc::now())?;
        components_owned(catalog, &next).await?;
        match catalog.replace_product(&current, &next).await {
            Ok(()) => {
                tracing::info!(product_id = %product_id, version = next.version, attempt, "product updated");
                return Ok(next);
            }
            Err(DomainError::Conflict { code: VERSION_CONFLICT, .. }) if attempt < attempts => {
                tracing::info!(product_id = %product_id, attempt, "product changed concurrently, retrying");
                backoff(attempt).await;
            }
            Err(err) => return Err(err),
        }
    }
    Err(DomainError::conflict(VERSION_CONFLICT, "the product changed concurrently; retry"))
}

/// A product's seller (or an admin) deletes it with its listing entries; its SKUs stay its seller's.
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id, product_id = %product_id))]
pub async fn delete_product(
    reader: &impl ProductReader,
    remover: &impl ProductRemover,
    caller: &Caller,
    product_id: &ProductId,
) -> Result<()> {
    caller.require_seller()?;
    for attempt in 1..=UPDATE_ATTEMPTS {
        let product = owned_product(reader, caller, product_id).await?;
        match remover.delete_product(&product).await {
            Ok(()) => {
                tracing::info!(product_id = %product_id, "product deleted");
                return Ok(());
            }
            Err(DomainError::Conflict { code: VERSION_CONFLICT, .. }) if attempt < UPDATE_ATTEMPTS => {
                backoff(attempt).await;
            }
            Err(err) => return Err(err),
        }
    }
    Err(DomainError::conflict(VERSION_CONFLICT, "the product changed concurrently; retry"))
}

/// Anyone reads an active product; drafts and archived products are not found.
#[tracing::instrument(skip_all, fields(product_id = %product_id))]
pub async fn get_product(reader: &impl ProductReader, product_id: &ProductId) -> Result<Product> {
    match reader.get_product(product_id).await? {
        Some(product) if product.is_public() => Ok(product),
        _ => Err(DomainError::not_found("product")),
    }
}

/// Anyone reads an active product's page: the product, each variant's availability (in stock, low, out;
/// never the count) and its rating summary. The product and the rating are read at once, then the stock.
#[tracing::instrument(skip_all, fields(product_id = %product_id))]
pub async fn product_page(
    reader: &impl ProductReader,
    stock: &impl StockReader,
    ratings: &impl ReviewReader,
    product_id: &ProductId,
) -> Result<ProductPage> {
    let (product, rating) =
        futures::future::try_join(get_product(reader, product_id), ratings.rating(product_id.as_str())).await?;
    let levels = stock.stock_levels(&ProductPage::stock_skus(&product)).await?;
    Ok(ProductPage::new(product, &levels, rating.summary()))
}

/// Anyone lists the active products of a category and its descendants.
#[tracing::instrument(skip_all)]
pub async fn list_products(listing: &impl CategoryListing, query: CategoryQuery) -> Result<Page<ProductSummary>> {
    if !ids::is_valid(CATEGORY_ID_PREFIX, &query.category_id) {
        return Err(DomainError::invalid_parameter("category", "is not a category id"));
    }
    listing.list_category(&query).await
}

/// A seller lists their own whole products in every status (drafts included); an admin may name any seller.
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id, seller_id = ?seller_id))]
pub async fn list_seller_products(
    listing: &impl SellerProducts,
    caller: &Caller,
    seller_id: Option<&str>,
    limit: PageLimit,
    cursor: Option<&str>,
) -> Result<Page<Product>> {
    caller.require_seller()?;
    let seller_id = match seller_id {
        Some(other) if other != caller.user_id => {
            caller.require_admin()?;
            other
        }
        _ => caller.user_id.as_str(),
    };
    listing.list_seller(seller_id, limit, cursor).await
}

/// Anyone lists every category, parents before children.
#[tracing::instrument(skip_all)]
pub async fn list_categories(reader: &impl CategoryReader) -> Result<Vec<Category>> {
    Ok(category_tree(reader).await?.sorted())
}

/// An admin creates a category.
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
pub async fn create_category(
    reader: &impl CategoryReader,
    writer: &impl CategoryWriter,
    caller: &Caller,
    input: CategoryInput,
) -> Result<Category> {
    caller.require_admin()?;
    create_category_at(reader, writer, ids::new_id(CATEGORY_ID_PREFIX), input, Utc::now()).await
}

/// Creates a category with a chosen id and time (the demo catalog uses fixed ids).
#[tracing::instrument(skip_all, fields(category_id = %category_id))]
pub async fn create_category_at(
    reader: &impl CategoryReader,
    writer: &impl CategoryWriter,
    category_id: String,
    input: CategoryInput,
    now: DateTime<Utc>,
) -> Result<Category> {
    let tree = category_tree(reader).await?;
    let category = tree.create(category_id, input, now)?;
    writer.put_category(&category, None).await?;
    tracing::info!(category_id = %category.category_id, "category created");
    Ok(category)
}

/// An admin renames a category or changes its attribute definitions. Products keep their attributes until
/// their next write, which is checked against the new definitions.
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id, category_id = %category_id))]
pub async fn update_category(
    reader: &impl CategoryReader,
    writer: &impl CategoryWriter,
    caller: &Caller,
    category_id: &str,
    patch: CategoryPatch,
) -> Result<Category> {
    caller.require_admin()?;
    let tree = category_tree(reader).await?;
    let current = tree.get(category_id).ok_or_else(|| DomainError::not_found("category"))?;
    let next = tree.patched(current, patch, Utc::now())?;
    writer.put_category(&next, Some(current.version)).await?;
    tracing::info!(category_id, version = next.version, "category updated");
    Ok(next)
}

/// An admin deletes a category that has no subcategories and no products (409 `category_not_empty`).
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id, category_id = %category_id))]
pub async fn delete_category(
    reader: &impl CategoryReader,
    usage: &impl CategoryUsage,
    writer: &impl CategoryWriter,
    caller: &Caller,
    category_id: &str,
) -> Result<()> {
    caller.require_admin()?;
    let tree = category_tree(reader).await?;
    let category = tree.get(category_id).ok_or_else(|| DomainError::not_found("category"))?;
    if tree.has_children(category_id) {
        return Err(DomainError::conflict(ErrorCode::CategoryNotEmpty, "the category has subcategories"));
    }
    if usage.category_in_use(category_id).await? {
        return Err(DomainError::conflict(ErrorCode::CategoryNotEmpty, "products are filed under the category"));
    }
    writer.delete_category(category).await?;
    tracing::info!(category_id, "category deleted");
    Ok(())
}

/// 422 `component_not_owned` unless every SKU the product's variants consume is its seller's.
async fn components_owned(skus: &impl SkuCatalog, product: &Product) -> Result<()> {
    let foreign = product.foreign_components();
    let views = if foreign.is_empty() { Vec::new() } else { skus.variants_by_sku(&foreign).await? };
    product.check_component_owners(&views)
}

/// The product, if it exists and the caller may change it: 404 when absent, 403 when another seller's.
async fn owned_product(reader: &impl ProductReader, caller: &Caller, product_id: &ProductId) -> Result<Product> {
    let product = reader.get_product(product_id).await?.ok_or_else(|| DomainError::not_found("product"))?;
    if !product.may_be_changed_by(&caller.user_id, caller.is_admin()) {
        return Err(DomainError::forbidden("the product belongs to another seller"));
    }
    Ok(product)
}

/// A short randomized pause before retrying a lost race, so that racing writers spread out.
async fn backoff(attempt: usize) {
    let millis = rand::Rng::gen_range(&mut rand::thread_rng(), 5..=25u64) * attempt as u64;
    tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
}

fn version_conflict(current: u64) -> DomainError {
    DomainError::conflict(VERSION_CONFLICT, format!("the product is at version {current}"))
}

/// Parses an `If-Match` header carrying a version (of a product, a shipping method): `3`, `"3"` or `W/"3"`.
pub fn parse_if_match(raw: Option<&str>) -> Result<Option<u64>> {
    let Some(raw) = raw else { return Ok(None) };
    let trimmed = raw.trim().trim_start_matches("W/").trim_matches('"');
    trimmed.parse().map(Some).map_err(|_| {
        DomainError::invalid_parameter("If-Match", "must be the version the change is based on, e.g. \"3\"")
    })
}
