//! Cart use cases: create (guest or shopper), read with re-pricing and problems, set and remove lines,
//! merge a guest cart into the shopper's on sign-in. Every write is conditional on the version read and is
//! retried on a concurrent change, so edits and merges racing each other never lose an update.
//!
//! Cart routes are public (guests have no token), so the caller is resolved here from an optional bearer
//! token: a present but invalid token is 401, never silently a guest.

use crate::ports::{CartStore, ReservationReplacer, ReservationStore, SkuCatalog, StockReader, WarehouseReader};
use chrono::{DateTime, Utc};
use commerce_domain::auth::Caller;
use commerce_domain::cart::{
    price_cart, Cart, CartAccess, CartHolds, CartLimits, CartOwner, CartReservation, CartStatus, Edit, PricedCart,
};
use commerce_domain::catalog::SkuView;
use commerce_domain::error::ErrorCode;
use commerce_domain::error::{DomainError, Result};
use commerce_domain::ids::{CartId, Sku};
use commerce_domain::inventory::{Reservation, ReservationPolicy, ReservationRequest, ReservationStatus};
use serde::Serialize;

/// How many times a write is retried after a concurrent change.
pub(crate) const WRITE_ATTEMPTS: u32 = 8;

pub use crate::ports::CallerResolver;

/// Who is asking, from the optional bearer token and the optional `X-Cart-Token` header.
#[tracing::instrument(skip_all)]
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
#[tracing::instrument(skip_all)]
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
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
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

pub(crate) fn busy() -> DomainError {
    DomainError::conflict(ErrorCode::CartBusy, "the cart is changing concurrently; retry")
}

pub(crate) async fn owned_cart(
    store: &impl CartStore,
    access: &CartAccess,
    cart_id: &CartId,
    now: DateTime<Utc>,
) -> Result<Cart> {
    let cart = store.get_cart(cart_id).await?.ok_or_else(|| DomainError::not_found("cart"))?;
    cart.authorize(access, now)?;
    if cart.status == CartStatus::Merged {
        return Err(DomainError::not_found("cart"));
    }
    Ok(cart)
}

/// The cart's hold, if it is still held and unexpired.
async fn live_hold(holds: &impl ReservationStore, cart: &Cart, now: DateTime<Utc>) -> Result<Option<Reservation>> {
    let Some(hold) = &cart.reservation else { return Ok(None) };
    let reservation = holds.get_reservation(&hold.id).await?;
    Ok(reservation.filter(|r| r.status_at(now) == ReservationStatus::Held))
}

/// Prices a cart against the catalog and current stock; units the cart's live hold keeps for it count as
/// sellable to it, and the hold is shown (null when there is none or it expired).
#[tracing::instrument(skip_all)]
pub async fn priced(
    catalog: &impl SkuCatalog,
    stock: &(impl StockReader + ReservationStore),
    cart: &Cart,
    limits: &CartLimits,
    now: DateTime<Utc>,
) -> Result<PricedCart> {
    priced_with_views(catalog, stock, cart, limits, now).await.map(|(priced, _)| priced)
}

/// [`priced`], and the catalog views it priced from (what a promotion's targets are matched against).
pub(crate) async fn priced_with_views(
    catalog: &impl SkuCatalog,
    stock: &(impl StockReader + ReservationStore),
    cart: &Cart,
    limits: &CartLimits,
    now: DateTime<Utc>,
) -> Result<(PricedCart, Vec<SkuView>)> {
    let skus: Vec<String> = cart.lines.keys().cloned().collect();
    let views = if skus.is_empty() { Vec::new() } else { catalog.variants_by_sku(&skus).await? };
    let mut units = crate::services::inventory::sellable_units(stock, &views).await?;
    let hold = live_hold(stock, cart, now).await?;
    for line in hold.iter().flat_map(|h| &h.lines) {
        *units.entry(line.sku.clone()).or_default() += i64::from(line.quantity);
    }
    let by_sku = views.iter().map(|v| (v.sku.clone(), v.clone())).collect();
    let mut priced = price_cart(cart, &by_sku, &units, limits)?;
    priced.reservation = hold.map(|h| CartReservation { id: h.reservation_id, expires_at: h.expires_at });
    Ok((priced, views))
}

/// Inventory as the cart functions use it: stock levels to re-price, reservations to hold a cart's lines.
pub trait CartInventory: StockReader + WarehouseReader + ReservationStore + ReservationReplacer {}

impl<T: StockReader + WarehouseReader + ReservationStore + ReservationReplacer> CartInventory for T {}

/// What every cart function works with, built once in `main` (`adapters::cart::context_from_env`).
#[derive(Debug)]
pub struct CartContext<S, C, I, R> {
    pub store: S,
    pub catalog: C,
    pub stock: I,
    pub resolver: R,
    pub limits: CartLimits,
    /// Reserve at add-to-cart (off by default).
    pub holds: CartHolds,
}

/// How a cart change treats a hold that cannot be renewed for want of stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnShortage {
    /// Refuse the change (an add): `OutOfStock`, the cart and its hold unchanged.
    Refuse,
    /// Make the change and drop the hold (a removal, a smaller quantity, a merge).
    DropHold,
}

/// A renewed hold: the new reservation to give back if the cart cannot be saved, and the old ones to
/// release once it is.
#[derive(Debug, Default)]
struct Renewal {
    new: Option<String>,
    release_after_save: Vec<String>,
}

impl<S: CartStore, C: SkuCatalog, I: CartInventory, R: CallerResolver> CartContext<S, C, I, R> {
    /// The caller's access from the request's `Authorization` and `X-Cart-Token` headers.
    #[tracing::instrument(skip_all)]
    pub async fn access(&self, authorization: Option<&str>, cart_token: Option<String>) -> Result<CartAccess> {
        access(&self.resolver, authorization, cart_token).await
    }

    async fn priced(&self, cart: &Cart, now: DateTime<Utc>) -> Result<PricedCart> {
        priced(&self.catalog, &self.stock, cart, &self.limits, now).await
    }

    /// With holds on, re-holds the edited `cart`'s lines under a new reservation that replaces its old hold
    /// (and `also`, a merged guest cart's hold) in one transaction; sets `cart.reservation`.
    async fn renew_hold(
        &self,
        cart: &mut Cart,
        also: Option<CartReservation>,
        on_shortage: OnShortage,
        now: DateTime<Utc>,
    ) -> Result<Renewal> {
        if !self.holds.enabled {
            return Ok(Renewal::default());
        }
        let old: Vec<String> = cart.reservation.iter().chain(also.iter()).map(|r| r.id.clone()).collect();
        let Some(request) = cart.hold_request() else {
            cart.reservation = None;
            return Ok(Renewal { new: None, release_after_save: old });
        };
        let policy = &self.holds.policy;
        match crate::services::inventory::replace(&self.catalog, &self.stock, policy, request, &old, now).await {
            Ok(hold) => {
                cart.reservation =
                    Some(CartReservation { id: hold.reservation_id.clone(), expires_at: hold.expires_at });
                Ok(Renewal { new: Some(hold.reservation_id), release_after_save: Vec::new() })
            }
            Err(DomainError::OutOfStock { .. } | DomainError::Conflict { code: ErrorCode::SkuUnavailable, .. })
                if on_shortage == OnShortage::DropHold =>
            {
                cart.reservation = None;
                Ok(Renewal { new: None, release_after_save: old })
            }
            Err(err) => Err(err),
        }
    }

    /// Releases holds nobody points at any more; a failure only delays the release until expiry.
    async fn release_all(&self, ids: &[String], now: DateTime<Utc>) {
        for id in ids {
            if let Err(err) = crate::services::inventory::release(&self.stock, id, now).await {
                tracing::warn!(reservation_id = %id, error = %err, "cart hold not released; it will expire");
            }
        }
    }

    /// Saves an edited cart with its renewed hold. `Ok(false)`: the cart changed meanwhile (nothing leaked:
    /// the new hold is given back), re-read and retry.
    async fn save_edit(&self, cart: &mut Cart, on_shortage: OnShortage, now: DateTime<Utc>) -> Result<bool> {
        let renewal = match self.renew_hold(cart, None, on_shortage, now).await {
            Ok(renewal) => renewal,
            Err(DomainError::OutOfStock { .. }) if self.changed_meanwhile(cart).await? => return Ok(false),
            Err(err) => return Err(err),
        };
        if self.store.save_cart(cart).await? {
            self.release_all(&renewal.release_after_save, now).await;
            return Ok(true);
        }
        self.release_all(renewal.new.as_slice(), now).await;
        Ok(false)
    }

    /// Whether the stored cart moved past the version `cart` was read at (then a shortage may only be a
    /// concurrent change's hold, and the edit is retried rather than refused).
    async fn changed_meanwhile(&self, cart: &Cart) -> Result<bool> {
        Ok(self.store.get_cart(&cart.cart_id).await?.is_none_or(|stored| stored.version != cart.version))
    }

    /// Reads a cart, re-priced, with its problems and its hold.
    #[tracing::instrument(skip_all, fields(cart_id = %cart_id))]
    pub async fn get_cart(&self, access: &CartAccess, cart_id: &CartId, now: DateTime<Utc>) -> Result<PricedCart> {
        let cart = owned_cart(&self.store, access, cart_id, now).await?;
        self.priced(&cart, now).await
    }

    /// Sets a line's quantity (PUT: the same quantity twice changes nothing). A new line snapshots the price.
    /// With holds on, a larger quantity or a new line that stock cannot cover is refused (`OutOfStock`) and
    /// the cart stays as it was.
    #[tracing::instrument(skip_all, fields(cart_id = %cart_id, sku = %sku))]
    pub async fn set_item(
        &self,
        access: &CartAccess,
        cart_id: &CartId,
        sku: &Sku,
        quantity: u32,
        now: DateTime<Utc>,
    ) -> Result<PricedCart> {
        let sku = sku.as_str();
        let view = self
            .catalog
            .variants_by_sku(&[sku.to_owned()])
            .await?
            .into_iter()
            .find(|v| v.sku == sku && v.is_purchasable())
            // The SKU in the path names nothing for sale: the resource is not there (404), as for a cart.
            .ok_or_else(|| DomainError::not_found("sku"))?;
        for _ in 0..WRITE_ATTEMPTS {
            let mut cart = owned_cart(&self.store, access, cart_id, now).await?;
            let grows = cart.lines.get(sku).is_none_or(|line| quantity > line.quantity);
            let on_shortage = if grows { OnShortage::Refuse } else { OnShortage::DropHold };
            if cart.set_quantity(sku, quantity, view.price, &self.limits, now)? == Edit::Unchanged {
                return self.priced(&cart, now).await;
            }
            if self.save_edit(&mut cart, on_shortage, now).await? {
                tracing::info!(cart_id = %cart_id, sku, quantity, "cart line set");
                return self.priced(&cart, now).await;
            }
        }
        Err(busy())
    }

    /// Removes a line (removing an absent SKU changes nothing).
    #[tracing::instrument(skip_all, fields(cart_id = %cart_id, sku = %sku))]
    pub async fn remove_item(
        &self,
        access: &CartAccess,
        cart_id: &CartId,
        sku: &Sku,
        now: DateTime<Utc>,
    ) -> Result<PricedCart> {
        let sku = sku.as_str();
        for _ in 0..WRITE_ATTEMPTS {
            let mut cart = owned_cart(&self.store, access, cart_id, now).await?;
            if cart.remove(sku, now)? == Edit::Unchanged {
                return self.priced(&cart, now).await;
            }
            if self.save_edit(&mut cart, OnShortage::DropHold, now).await? {
                tracing::info!(cart_id = %cart_id, sku, "cart line removed");
                return self.priced(&cart, now).await;
            }
        }
        Err(busy())
    }

    /// Merges a guest cart (proved by its token) into the signed-in shopper's cart: quantities add up, capped
    /// at the per-SKU limit. Merging the same guest cart again returns the shopper's cart unchanged. With
    /// holds on, one new hold for the merged lines replaces both carts' holds (dropped if stock is short).
    #[tracing::instrument(skip_all, fields(user_id = %caller.user_id, guest_cart_id = %guest_cart_id))]
    pub async fn merge(
        &self,
        caller: &Caller,
        guest_cart_id: &CartId,
        guest_token: &str,
        now: DateTime<Utc>,
    ) -> Result<PricedCart> {
        let guest_access = CartAccess { user_id: None, cart_token: Some(guest_token.to_owned()) };
        for _ in 0..WRITE_ATTEMPTS {
            let mut guest = self.store.get_cart(guest_cart_id).await?.ok_or_else(|| DomainError::not_found("cart"))?;
            guest.authorize(&guest_access, now)?;
            if !matches!(guest.owner, CartOwner::Guest { .. }) {
                return Err(DomainError::validation("cart_id", "is not a guest cart"));
            }
            let (mut shopper, _) = shopper_cart(&self.store, &caller.user_id, now).await?;
            if guest.status == CartStatus::Merged {
                if guest.merged_into.as_deref() == Some(shopper.cart_id.as_str()) {
                    return self.priced(&shopper, now).await;
                }
                return Err(DomainError::not_found("cart"));
            }
            shopper.merge_from(&mut guest, &self.limits, now)?;
            let guest_hold = if self.holds.enabled { guest.reservation.take() } else { None };
            let renewal = self.renew_hold(&mut shopper, guest_hold, OnShortage::DropHold, now).await?;
            if self.store.save_merge(&shopper, &guest).await? {
                self.release_all(&renewal.release_after_save, now).await;
                tracing::info!(guest_cart_id = %guest_cart_id, cart_id = %shopper.cart_id, lines = shopper.lines.len(), "carts merged");
                return self.priced(&shopper, now).await;
            }
            self.release_all(renewal.new.as_slice(), now).await;
        }
        Err(busy())
    }
}

/// Checkout's reservation of a cart's order: with holds on, the cart's live hold becomes the order's
/// reservation (`request.reservation_id`) if it holds exactly the requested lines; otherwise the order
/// reserves fresh and the cart's hold, now redundant, is released. Idempotent per reservation id.
#[tracing::instrument(skip_all, fields(reservation_id = %request.reservation_id, cart_id = %cart_id))]
pub async fn reserve_for_order<K, C, I>(
    carts: &K,
    catalog: &C,
    inventory: &I,
    policy: &ReservationPolicy,
    request: ReservationRequest,
    cart_id: &str,
    now: DateTime<Utc>,
) -> Result<Reservation>
where
    K: CartStore,
    C: SkuCatalog,
    I: CartInventory,
{
    let hold = match carts.get_cart(cart_id).await? {
        Some(cart) => cart.reservation.map(|r| r.id),
        None => None,
    };
    if let Some(hold_id) = &hold {
        if inventory.get_reservation(&request.reservation_id).await?.is_none() {
            if let Some(adopted) = crate::services::inventory::adopt(inventory, policy, &request, hold_id, now).await? {
                return Ok(adopted);
            }
        }
    }
    let reservation = crate::services::inventory::reserve(catalog, inventory, policy, request, now).await?;
    if let Some(hold_id) = hold.filter(|id| *id != reservation.reservation_id) {
        match crate::services::inventory::release(inventory, &hold_id, now).await {
            Ok(_) | Err(DomainError::NotFound { .. }) => {}
            Err(err) => {
                tracing::warn!(reservation_id = %hold_id, error = %err, "cart hold not released; it will expire")
            }
        }
    }
    Ok(reservation)
}
