//! The catalog use cases over the in-memory fakes.

use commerce_app::ports::{CategoryReader, ProductCreator, ProductReader, ProductUpdater, SkuCatalog};
use commerce_app::services::catalog::*;
use commerce_domain::auth::Caller;
use commerce_domain::auth::Role;
use commerce_domain::catalog::{Category, Product, ProductInput, ProductPatch, SkuView};
use commerce_domain::error::{DomainError, Result};
use commerce_domain::ids::ProductId;
use commerce_testkit::catalog::InMemoryCatalog;
use commerce_testkit::http::{demo_store, DEMO_SELLERS};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Loses the race `losses` times before letting writes through.
struct Contended {
    inner: InMemoryCatalog,
    losses: AtomicUsize,
}

impl ProductUpdater for Contended {
    async fn replace_product(&self, current: &Product, next: &Product) -> Result<()> {
        if self.losses.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(DomainError::conflict(VERSION_CONFLICT, "lost"));
        }
        self.inner.replace_product(current, next).await
    }
}

impl ProductReader for Contended {
    async fn get_product(&self, product_id: &str) -> Result<Option<Product>> {
        self.inner.get_product(product_id).await
    }
}

impl CategoryReader for Contended {
    async fn list_categories(&self) -> Result<Vec<Category>> {
        self.inner.list_categories().await
    }
}

impl SkuCatalog for Contended {
    async fn variants_by_sku(&self, skus: &[String]) -> Result<Vec<SkuView>> {
        self.inner.variants_by_sku(skus).await
    }
}

fn owner() -> Caller {
    Caller { user_id: DEMO_SELLERS[0].into(), email: None, roles: vec![Role::Seller] }
}

fn rename() -> ProductPatch {
    ProductPatch { title: Some("Renamed".into()), ..Default::default() }
}

const ID: &str = commerce_demo::catalog::FIRST_PRODUCT_ID;

#[tokio::test]
async fn a_lost_race_is_retried_on_fresh_data() {
    let store = Contended { inner: demo_store(), losses: AtomicUsize::new(UPDATE_ATTEMPTS - 1) };
    let updated = update_product(&store, &owner(), &ProductId::parse(ID).unwrap(), rename(), None).await.unwrap();
    assert_eq!((updated.title.as_str(), updated.version), ("Renamed", 2));
}

#[tokio::test]
async fn too_many_lost_races_answer_409_and_if_match_never_retries() {
    let store = Contended { inner: demo_store(), losses: AtomicUsize::new(UPDATE_ATTEMPTS) };
    let err = update_product(&store, &owner(), &ProductId::parse(ID).unwrap(), rename(), None).await.unwrap_err();
    assert!(matches!(err, DomainError::Conflict { code: VERSION_CONFLICT, .. }));
    assert_eq!(store.inner.stored(ID).unwrap().version, 1);

    let store = Contended { inner: demo_store(), losses: AtomicUsize::new(1) };
    let err = update_product(&store, &owner(), &ProductId::parse(ID).unwrap(), rename(), Some(1)).await.unwrap_err();
    assert!(matches!(err, DomainError::Conflict { code: VERSION_CONFLICT, .. }));
}

impl ProductCreator for Contended {
    async fn create_product(&self, product: &Product) -> Result<()> {
        if self.losses.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(DomainError::conflict(VERSION_CONFLICT, "lost"));
        }
        self.inner.create_product(product).await
    }
}

#[tokio::test]
async fn a_create_cancelled_by_a_concurrent_transaction_is_retried() {
    let store = Contended { inner: demo_store(), losses: AtomicUsize::new(2) };
    let input: ProductInput = serde_json::from_value(serde_json::json!({
        "title": "Tee", "category_id": "cat_tshirts", "attributes": {"fabric": "cotton", "fit": "regular"},
        "variants": [{"sku": "TEE-RETRY", "price": {"amount": 100, "currency": "USD"}}]
    }))
    .unwrap();
    let created = create_product(&store.inner, &store.inner, &store, &owner(), input).await.unwrap();
    assert_eq!(store.inner.stored(&created.product_id).map(|p| p.version), Some(1));
}

#[test]
fn if_match_accepts_quoted_and_weak_versions() {
    assert_eq!(parse_if_match(Some("\"3\"")).unwrap(), Some(3));
    assert_eq!(parse_if_match(Some("W/\"4\"")).unwrap(), Some(4));
    assert_eq!(parse_if_match(None).unwrap(), None);
    assert!(matches!(parse_if_match(Some("*")), Err(DomainError::InvalidParameter { .. })));
}
