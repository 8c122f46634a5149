//! Narrow async traits, one per capability, matching the IAM permissions a function is given.

// ---------------------------------------------------------------------------------------------------------
// Catalog (CatalogTable)
// ---------------------------------------------------------------------------------------------------------

use crate::domain::catalog;

/// Reads one product by id. IAM: `dynamodb:GetItem` on the catalog table.
pub trait ProductReader: Send + Sync {
    fn get_product(&self, product_id: &str) -> impl std::future::Future<Output = crate::error::Result<Option<catalog::Product>>> + Send;
}

/// Writes a new product with its SKU and listing entries; SKUs are unique platform-wide (409 `sku_taken`) and
/// the category must still exist. IAM: `dynamodb:PutItem`, `dynamodb:ConditionCheckItem`.
pub trait ProductCreator: Send + Sync {
    fn create_product(&self, product: &catalog::Product) -> impl std::future::Future<Output = crate::error::Result<()>> + Send;
}

/// Replaces `current` with `next` if the stored version is still `current.version` (409 `version_conflict`
/// otherwise), adding, rewriting and removing SKU and listing entries in the same transaction.
/// IAM: `dynamodb:PutItem`, `dynamodb:DeleteItem`, `dynamodb:ConditionCheckItem`.
pub trait ProductUpdater: Send + Sync {
    fn replace_product(&self, current: &catalog::Product, next: &catalog::Product) -> impl std::future::Future<Output = crate::error::Result<()>> + Send;
}

/// Deletes a product, its SKU and listing entries, if the stored version is still `product.version`.
/// IAM: `dynamodb:DeleteItem`.
pub trait ProductRemover: Send + Sync {
    fn delete_product(&self, product: &catalog::Product) -> impl std::future::Future<Output = crate::error::Result<()>> + Send;
}

/// Public category listings of active products (a category includes its descendants).
/// IAM: `dynamodb:Query` on the catalog table's `gsi1` and `gsi2` indexes.
pub trait CategoryListing: Send + Sync {
    fn list_category(&self, query: &catalog::CategoryQuery) -> impl std::future::Future<Output = crate::error::Result<catalog::Page<catalog::ProductSummary>>> + Send;
}

/// A seller's products in every status, newest first. IAM: `dynamodb:Query` on the `gsi3` index.
pub trait SellerProducts: Send + Sync {
    fn list_seller(
        &self,
        seller_id: &str,
        limit: catalog::PageLimit,
        cursor: Option<&str>,
    ) -> impl std::future::Future<Output = crate::error::Result<catalog::Page<catalog::ProductSummary>>> + Send;
}

/// Reads variants by SKU for carts, checkout and inventory: price, seller, status, components.
/// Unknown SKUs are absent from the result. IAM: `dynamodb:BatchGetItem` on the catalog table.
pub trait SkuCatalog: Send + Sync {
    fn variants_by_sku(&self, skus: &[String]) -> impl std::future::Future<Output = crate::error::Result<Vec<catalog::SkuView>>> + Send;
}

/// Reads every category (one small partition). IAM: `dynamodb:Query` on the catalog table.
pub trait CategoryReader: Send + Sync {
    fn list_categories(&self) -> impl std::future::Future<Output = crate::error::Result<Vec<catalog::Category>>> + Send;
}

/// Creates, replaces (optimistically, by version) and deletes categories.
/// IAM: `dynamodb:PutItem`, `dynamodb:DeleteItem`.
pub trait CategoryWriter: Send + Sync {
    /// Writes `category`; with `expected_version` the stored version must match (409 `version_conflict`),
    /// without it the category must not exist yet.
    fn put_category(
        &self,
        category: &catalog::Category,
        expected_version: Option<u64>,
    ) -> impl std::future::Future<Output = crate::error::Result<()>> + Send;
    fn delete_category(&self, category: &catalog::Category) -> impl std::future::Future<Output = crate::error::Result<()>> + Send;
}

/// Whether any product (in any status) is filed directly under a category. IAM: `dynamodb:Query` on `gsi1`.
pub trait CategoryUsage: Send + Sync {
    fn category_in_use(&self, category_id: &str) -> impl std::future::Future<Output = crate::error::Result<bool>> + Send;
}
