//! Cart use cases: create (guest or shopper), read with re-pricing and problems, set and remove lines,
//! merge a guest cart into the shopper's on sign-in. Every write is conditional on the version read and is
//! retried on a concurrent change, so edits and merges racing each other never lose an update.
//!
//! Cart routes are public (guests have no token), so the caller is resolved here from an optional bearer
//! token: a present but invalid token is 401, never silently a guest.

use crate::auth::Caller;
use crate::domain::cart::{price_cart, Cart, CartAccess, CartLimits, CartOwner, CartStatus, Edit, PricedCart};
use crate::domain::inventory::validate_sku;
use crate::error::{DomainError, Result};
use crate::ports::{CartStore, SkuCatalog, StockReader};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// How many times a write is retried after a concurrent change.
const WRITE_ATTEMPTS: u32 = 8;

/// Turns an optional `Authorization` header into a caller. Implemented by `jwt::JwtVerifier`.
pub trait CallerResolver: Send + Sync {
    /// `Ok(None)` without a header; 401 for a header that does not verify.
    fn resolve(&self, authorization: Option<&str>) -> impl std::future::Future<Output = Result<Option<Caller>>> + Send;
}

impl CallerResolver for crate::jwt::JwtVerifier {
    async fn resolve(&self, authorization: Option<&str>) -> Result<Option<Caller>> {
        let Some(header) = authorization.filter(|h| !h.trim().is_empty()) else { return Ok(None) };
        match self.verify(header).await {
            Ok(claims) => Caller::from_claims(&claims).map(Some),
            Err(err) => {
                tracing::info!(error = %err, "bearer token refused");
                Err(DomainError::Unauthenticated)
            }
        }
    }
}

/// Who is asking, from the optional bearer token and the optional `X-Cart-Token` header.
pub async fn access(
    resolver: &impl CallerResolver,
    authorization: Option<&str>,
    cart_token: Option<String>,
) -> Result<CartAccess> {
    let caller = resolver.resolve(authorization).await?;
    Ok(CartAccess { user_id: caller.map(|c| c.user_id), cart_token: cart_token.filter(|t| !t.is_empty()) })
}

/// The answer to `POST /v1/carts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreatedCart {
    pub cart_id: String,
    /// Only for a new guest cart: the secret that proves ownership (send it as `X-Cart-Token`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cart_token: Option<String>,
    pub owner: &'static str,
    pub expires_at: DateTime<Utc>,
    /// False when a shopper's existing cart was returned.
    pub created: bool,
}

/// Creates a guest cart (no caller) or returns the shopper's cart, creating it once.
pub async fn create_cart(store: &impl CartStore, access: &CartAccess, now: DateTime<Utc>) -> Result<CreatedCart> {
    match &access.user_id {
        None => {
            let (cart, token) = Cart::new_guest(now);
            store.create_cart(&cart).await?;
            tracing::info!(cart_id = %cart.cart_id, "guest cart created");
            Ok(CreatedCart {
                cart_id: cart.cart_id,
                cart_token: Some(token),
                owner: "guest",
                expires_at: cart.expires_at,
                created: true,
            })
        }
        Some(user_id) => {
            let (cart, created) = shopper_cart(store, user_id, now).await?;
            Ok(CreatedCart {
                cart_id: cart.cart_id,
                cart_token: None,
                owner: "shopper",
                expires_at: cart.expires_at,
                created,
            })
        }
    }
}

/// The shopper's live cart, created if there is none (or it expired). Concurrent calls agree on one cart.
pub async fn shopper_cart(store: &impl CartStore, user_id: &str, now: DateTime<Utc>) -> Result<(Cart, bool)> {
    for _ in 0..WRITE_ATTEMPTS {
        let current = store.shopper_cart_id(user_id).await?;
        if let Some(cart_id) = &current {
            if let Some(cart) = store.get_cart(cart_id).await? {
                if !cart.is_expired(now) {
                    return Ok((cart, false));
                }
            }
        }
        let mut cart = Cart::new_shopper(user_id, now);
        if store.create_shopper_cart(user_id, &cart, current.as_deref()).await? {
            tracing::info!(cart_id = %cart.cart_id, "shopper cart created");
            cart.version = 1;
            return Ok((cart, true));
        }
    }
    Err(busy())
}

fn busy() -> DomainError {
    DomainError::conflict("cart_busy", "the cart is changing concurrently; retry")
}

async fn owned_cart(store: &impl CartStore, access: &CartAccess, cart_id: &str, now: DateTime<Utc>) -> Result<Cart> {
    if !crate::domain::ids::is_valid("cart", cart_id) {
        return Err(DomainError::not_found("cart"));
    }
    let cart = store.get_cart(cart_id).await?.ok_or_else(|| DomainError::not_found("cart"))?;
    cart.authorize(access, now)?;
    if cart.status == CartStatus::Merged {
        return Err(DomainError::not_found("cart"));
    }
    Ok(cart)
}

/// Prices a cart against the catalog and current stock.
pub async fn priced(
    catalog: &impl SkuCatalog,
    stock: &impl StockReader,
    cart: &Cart,
    limits: &CartLimits,
) -> Result<PricedCart> {
    let skus: Vec<String> = cart.lines.keys().cloned().collect();
    let views = if skus.is_empty() { Vec::new() } else { catalog.variants_by_sku(&skus).await? };
    let units = crate::services::inventory::sellable_units(stock, &views).await?;
    let views = views.into_iter().map(|v| (v.sku.clone(), v)).collect();
    Ok(price_cart(cart, &views, &units, limits))
}

/// Reads a cart, re-priced, with its problems.
pub async fn get_cart(
    store: &impl CartStore,
    catalog: &impl SkuCatalog,
    stock: &impl StockReader,
    access: &CartAccess,
    cart_id: &str,
    limits: &CartLimits,
    now: DateTime<Utc>,
) -> Result<PricedCart> {
    let cart = owned_cart(store, access, cart_id, now).await?;
    priced(catalog, stock, &cart, limits).await
}

/// Sets a line's quantity (PUT: the same quantity twice changes nothing). A new line snapshots the price.
#[allow(clippy::too_many_arguments)]
pub async fn set_item(
    store: &impl CartStore,
    catalog: &impl SkuCatalog,
    stock: &impl StockReader,
    access: &CartAccess,
    cart_id: &str,
    sku: &str,
    quantity: u32,
    limits: &CartLimits,
    now: DateTime<Utc>,
) -> Result<PricedCart> {
    validate_sku(sku)?;
    let view = catalog
        .variants_by_sku(&[sku.to_owned()])
        .await?
        .into_iter()
        .find(|v| v.sku == sku && v.is_purchasable())
        .ok_or_else(|| DomainError::validation("sku", "is not for sale"))?;
    for _ in 0..WRITE_ATTEMPTS {
        let mut cart = owned_cart(store, access, cart_id, now).await?;
        match cart.set_quantity(sku, quantity, view.price, limits, now)? {
            Edit::Unchanged => return priced(catalog, stock, &cart, limits).await,
            Edit::Changed if store.save_cart(&cart).await? => {
                tracing::info!(cart_id, sku, quantity, "cart line set");
                return priced(catalog, stock, &cart, limits).await;
            }
            Edit::Changed => continue,
        }
    }
    Err(busy())
}

/// Removes a line (removing an absent SKU changes nothing).
#[allow(clippy::too_many_arguments)]
pub async fn remove_item(
    store: &impl CartStore,
    catalog: &impl SkuCatalog,
    stock: &impl StockReader,
    access: &CartAccess,
    cart_id: &str,
    sku: &str,
    limits: &CartLimits,
    now: DateTime<Utc>,
) -> Result<PricedCart> {
    validate_sku(sku)?;
    for _ in 0..WRITE_ATTEMPTS {
        let mut cart = owned_cart(store, access, cart_id, now).await?;
        match cart.remove(sku, now)? {
            Edit::Unchanged => return priced(catalog, stock, &cart, limits).await,
            Edit::Changed if store.save_cart(&cart).await? => {
                tracing::info!(cart_id, sku, "cart line removed");
                return priced(catalog, stock, &cart, limits).await;
            }
            Edit::Changed => continue,
        }
    }
    Err(busy())
}

/// Merges a guest cart (proved by its token) into the signed-in shopper's cart: quantities add up, capped at
/// the per-SKU limit. Merging the same guest cart again returns the shopper's cart unchanged.
#[allow(clippy::too_many_arguments)]
pub async fn merge(
    store: &impl CartStore,
    catalog: &impl SkuCatalog,
    stock: &impl StockReader,
    caller: &Caller,
    guest_cart_id: &str,
    guest_token: &str,
    limits: &CartLimits,
    now: DateTime<Utc>,
) -> Result<PricedCart> {
    if !crate::domain::ids::is_valid("cart", guest_cart_id) {
        return Err(DomainError::not_found("cart"));
    }
    let guest_access = CartAccess { user_id: None, cart_token: Some(guest_token.to_owned()) };
    for _ in 0..WRITE_ATTEMPTS {
        let mut guest = store.get_cart(guest_cart_id).await?.ok_or_else(|| DomainError::not_found("cart"))?;
        guest.authorize(&guest_access, now)?;
        if !matches!(guest.owner, CartOwner::Guest { .. }) {
            return Err(DomainError::validation("cart_id", "is not a guest cart"));
        }
        let (mut shopper, _) = shopper_cart(store, &caller.user_id, now).await?;
        if guest.status == CartStatus::Merged {
            if guest.merged_into.as_deref() == Some(shopper.cart_id.as_str()) {
                return priced(catalog, stock, &shopper, limits).await;
            }
            return Err(DomainError::not_found("cart"));
        }
        shopper.merge_from(&mut guest, limits, now)?;
        if store.save_merge(&shopper, &guest).await? {
            tracing::info!(guest_cart_id, cart_id = %shopper.cart_id, lines = shopper.lines.len(), "carts merged");
            return priced(catalog, stock, &shopper, limits).await;
        }
    }
    Err(busy())
}

/// What every cart function works with, built once in `main`.
#[derive(Debug)]
pub struct CartContext<S, C, I, R> {
    pub store: S,
    pub catalog: C,
    pub stock: I,
    pub resolver: R,
    pub limits: CartLimits,
}

impl<S: CartStore, C: SkuCatalog, I: StockReader, R: CallerResolver> CartContext<S, C, I, R> {
    /// The caller's access from the request's `Authorization` and `X-Cart-Token` headers.
    pub async fn access(&self, authorization: Option<&str>, cart_token: Option<String>) -> Result<CartAccess> {
        access(&self.resolver, authorization, cart_token).await
    }
}
