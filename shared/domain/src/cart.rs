//! Carts: who owns one (a guest holding an opaque token, or a signed-in shopper), editing lines with
//! per-SKU limits, expiry, the merge of a guest cart into a shopper's on sign-in, and re-pricing with
//! typed per-line problems.

use crate::catalog::SkuView;
use crate::error::DomainError;
use crate::error::ErrorCode;
use crate::inventory::{validate_sku, OwnerKind, ReservationLine, ReservationPolicy, ReservationRequest};
use crate::money::{Currency, Money};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// A guest cart expires this long after its last change.
pub const GUEST_TTL_DAYS: i64 = 7;
/// A shopper's cart expires this long after its last change.
pub const SHOPPER_TTL_DAYS: i64 = 30;

/// Limits on what a cart may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CartLimits {
    /// Largest quantity of one SKU.
    pub max_quantity_per_sku: u32,
    /// Largest number of distinct SKUs.
    pub max_lines: usize,
}

impl Default for CartLimits {
    fn default() -> Self {
        Self { max_quantity_per_sku: 10, max_lines: 50 }
    }
}

impl CartLimits {
    /// Limits within what one reservation takes: 1..=`reservation::MAX_LINE_QUANTITY` units per SKU and
    /// 1..=`reservation::MAX_LINES` SKUs, so a full cart can always be reserved and its totals cannot overflow.
    pub fn new(max_quantity_per_sku: u32, max_lines: usize) -> Result<Self, crate::config::ConfigError> {
        use crate::config::ConfigError::Invalid;
        use crate::inventory::reservation::{MAX_LINES, MAX_LINE_QUANTITY};
        if !(1..=MAX_LINE_QUANTITY).contains(&max_quantity_per_sku) {
            let reason = format!("must be within 1..={MAX_LINE_QUANTITY}");
            return Err(Invalid { name: "CART_MAX_QUANTITY_PER_SKU", reason });
        }
        if !(1..=MAX_LINES).contains(&max_lines) {
            return Err(Invalid { name: "CART_MAX_LINES", reason: format!("must be within 1..={MAX_LINES}") });
        }
        Ok(Self { max_quantity_per_sku, max_lines })
    }
}

/// Reserve at add-to-cart: when enabled, a cart holds one reservation for all its lines, renewed by every
/// change, with the guest and shopper hold times of checkout's reservations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CartHolds {
    pub enabled: bool,
    pub policy: ReservationPolicy,
}

impl CartHolds {
    /// Off: carts hold no stock (the default).
    pub fn off() -> Self {
        Self { enabled: false, policy: ReservationPolicy::default() }
    }
}

/// The stock a cart holds: one reservation for all its lines, replaced by every change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartReservation {
    /// The reservation id (`<cart_id>:hold_<ulid>`).
    pub id: String,
    pub expires_at: DateTime<Utc>,
}

/// Who owns a cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CartOwner {
    /// A guest, who proves ownership with the token returned at creation. Only its SHA-256 is stored.
    Guest { token_hash: String },
    /// A signed-in shopper (the token's `sub`).
    Shopper { user_id: String },
}

/// Whether a cart can still be edited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CartStatus {
    Active,
    /// A guest cart merged into a shopper's; kept so a repeated merge is recognised.
    Merged,
}

/// One SKU in a cart, with the price it had when it was added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartLine {
    pub quantity: u32,
    pub added_price: Money,
    pub added_at: DateTime<Utc>,
    /// Set when a merge had to cap the quantity at the per-SKU limit; cleared by the next edit.
    #[serde(default)]
    pub quantity_limited: bool,
}

/// A cart as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cart {
    pub cart_id: String,
    pub owner: CartOwner,
    pub status: CartStatus,
    pub lines: BTreeMap<String, CartLine>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The stored version this cart was read at (0: never stored). A write stores `version + 1` if the stored
    /// version is still `version`.
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
    /// The stock held for the lines, when reserve at add-to-cart is on. It may have expired or been adopted
    /// by an order since: the reservation record says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation: Option<CartReservation>,
    /// The promotion codes the shopper entered (normalized), applied at every read and at checkout; a merge
    /// keeps the guest's too (up to `promotion::MAX_CODES_PER_CART`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub promotion_codes: Vec<String>,
}

/// What a caller presents to use a cart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CartAccess {
    /// The signed-in shopper, if a valid bearer token came with the request.
    pub user_id: Option<String>,
    /// The `X-Cart-Token` header, if any.
    pub cart_token: Option<String>,
}

/// Whether an edit changed the cart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    Changed,
    Unchanged,
}

/// `PUT /v1/carts/{cart_id}/items/{sku}` body.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetQuantity {
    pub quantity: u32,
}

/// `POST /v1/me/cart/merge` body: the guest cart and its token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    pub cart_id: String,
    pub cart_token: String,
}

impl Cart {
    /// A new guest cart and the token that proves ownership of it (returned once, never stored).
    pub fn new_guest(now: DateTime<Utc>) -> (Self, String) {
        let (token, token_hash) = crate::token::new_token();
        (Self::new(CartOwner::Guest { token_hash }, now), token)
    }

    /// A new cart for a signed-in shopper.
    pub fn new_shopper(user_id: &str, now: DateTime<Utc>) -> Self {
        Self::new(CartOwner::Shopper { user_id: user_id.to_owned() }, now)
    }

    fn new(owner: CartOwner, now: DateTime<Utc>) -> Self {
        let mut cart = Self {
            cart_id: crate::ids::new_id("cart"),
            owner,
            status: CartStatus::Active,
            lines: BTreeMap::new(),
            created_at: now,
            updated_at: now,
            expires_at: now,
            version: 0,
            merged_into: None,
            reservation: None,
            promotion_codes: Vec::new(),
        };
        cart.touch(now);
        cart
    }

    /// How long this kind of cart lives after its last change.
    pub fn ttl(&self) -> Duration {
        match self.owner {
            CartOwner::Guest { .. } => Duration::days(GUEST_TTL_DAYS),
            CartOwner::Shopper { .. } => Duration::days(SHOPPER_TTL_DAYS),
        }
    }

    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires_at
    }

    /// Adds a promotion code (normalized by the caller); `false` when the cart already has it. At most
    /// `promotion::MAX_CODES_PER_CART` codes (422 naming `code`).
    pub fn add_code(&mut self, code: &str, now: DateTime<Utc>) -> Result<bool, DomainError> {
        self.require_active()?;
        if self.promotion_codes.iter().any(|c| c == code) {
            return Ok(false);
        }
        if self.promotion_codes.len() >= crate::promotion::MAX_CODES_PER_CART {
            return Err(DomainError::validation(
                "code",
                format!("a cart holds at most {} codes", crate::promotion::MAX_CODES_PER_CART),
            ));
        }
        self.promotion_codes.push(code.to_owned());
        self.touch(now);
        Ok(true)
    }

    /// Removes a promotion code; `false` when the cart does not have it.
    pub fn remove_code(&mut self, code: &str, now: DateTime<Utc>) -> Result<bool, DomainError> {
        self.require_active()?;
        let before = self.promotion_codes.len();
        self.promotion_codes.retain(|c| c != code);
        if self.promotion_codes.len() == before {
            return Ok(false);
        }
        self.touch(now);
        Ok(true)
    }

    fn touch(&mut self, now: DateTime<Utc>) {
        self.updated_at = now;
        self.expires_at = now + self.ttl();
    }

    /// Checks that the caller owns this cart. A cart that is not the caller's reads as not found, so
    /// cart ids reveal nothing; an expired cart reads as gone the same way.
    pub fn authorize(&self, access: &CartAccess, now: DateTime<Utc>) -> Result<(), DomainError> {
        let owns = match &self.owner {
            CartOwner::Guest { token_hash } => {
                access.cart_token.as_deref().is_some_and(|token| crate::token::token_matches(token, token_hash))
            }
            CartOwner::Shopper { user_id } => access.user_id.as_deref() == Some(user_id.as_str()),
        };
        if !owns || self.is_expired(now) {
            return Err(DomainError::not_found("cart"));
        }
        Ok(())
    }

    /// Who a hold for this cart is for (guest and shopper hold times differ).
    pub fn owner_kind(&self) -> OwnerKind {
        match self.owner {
            CartOwner::Guest { .. } => OwnerKind::Guest,
            CartOwner::Shopper { .. } => OwnerKind::Shopper,
        }
    }

    /// What a hold for the current lines asks for, under a new reservation id; `None` for an empty cart.
    pub fn hold_request(&self) -> Option<ReservationRequest> {
        if self.lines.is_empty() {
            return None;
        }
        Some(ReservationRequest {
            reservation_id: format!("{}:{}", self.cart_id, crate::ids::new_id("hold")),
            lines: self
                .lines
                .iter()
                .map(|(sku, line)| ReservationLine { sku: sku.clone(), quantity: line.quantity })
                .collect(),
            ship_to: None,
            owner: self.owner_kind(),
            ttl_seconds: None,
        })
    }

    /// An active cart, else 409 `cart_merged`: a merged guest cart can no longer be edited or checked out.
    pub fn require_active(&self) -> Result<(), DomainError> {
        match self.status {
            CartStatus::Active => Ok(()),
            CartStatus::Merged => {
                Err(DomainError::conflict(ErrorCode::CartMerged, "this cart was merged into a shopper's cart"))
            }
        }
    }

    /// Sets a line's quantity (1..=limit). Setting the quantity a line already has changes nothing; a new
    /// line snapshots `price`.
    pub fn set_quantity(
        &mut self,
        sku: &str,
        quantity: u32,
        price: Money,
        limits: &CartLimits,
        now: DateTime<Utc>,
    ) -> Result<Edit, DomainError> {
        self.require_active()?;
        validate_sku(sku)?;
        if quantity == 0 || quantity > limits.max_quantity_per_sku {
            return Err(DomainError::validation(
                "quantity",
                format!("must be within 1..={}", limits.max_quantity_per_sku),
            ));
        }
        match self.lines.get_mut(sku) {
            Some(line) if line.quantity == quantity && !line.quantity_limited => return Ok(Edit::Unchanged),
            Some(line) => {
                line.quantity = quantity;
                line.quantity_limited = false;
            }
            None => {
                if self.lines.len() >= limits.max_lines {
                    return Err(DomainError::validation(
                        "sku",
                        format!("a cart holds at most {} SKUs", limits.max_lines),
                    ));
                }
                if self.currency().is_some_and(|currency| currency != price.currency) {
                    return Err(DomainError::validation("sku", "all items in a cart must share one currency"));
                }
                self.lines.insert(
                    sku.to_owned(),
                    CartLine { quantity, added_price: price, added_at: now, quantity_limited: false },
                );
            }
        }
        self.touch(now);
        Ok(Edit::Changed)
    }

    /// Removes a line; removing a SKU that is not there changes nothing.
    pub fn remove(&mut self, sku: &str, now: DateTime<Utc>) -> Result<Edit, DomainError> {
        self.require_active()?;
        if self.lines.remove(sku).is_none() {
            return Ok(Edit::Unchanged);
        }
        self.touch(now);
        Ok(Edit::Changed)
    }

    /// The currency of the cart's prices (every line is added in one currency); `None` when it is empty.
    pub fn currency(&self) -> Option<Currency> {
        self.lines.values().next().map(|line| line.added_price.currency)
    }

    /// Merges a guest cart's lines into this (shopper's) cart and marks the guest cart merged. Carts priced
    /// in different currencies are not merged (409 `currency_mismatch`), and neither changes.
    pub fn merge_from(&mut self, guest: &mut Cart, limits: &CartLimits, now: DateTime<Utc>) -> Result<(), DomainError> {
        guest.require_active()?;
        self.require_active()?;
        if let (Some(mine), Some(theirs)) = (self.currency(), guest.currency()) {
            if mine != theirs {
                return Err(DomainError::conflict(
                    ErrorCode::CurrencyMismatch,
                    format!("the guest cart is priced in {theirs} and this cart in {mine}; carts of two currencies cannot be merged"),
                ));
            }
        }
        self.lines = merge_lines(&self.lines, &guest.lines, limits);
        for code in &guest.promotion_codes {
            if !self.promotion_codes.contains(code) && self.promotion_codes.len() < crate::promotion::MAX_CODES_PER_CART
            {
                self.promotion_codes.push(code.clone());
            }
        }
        guest.status = CartStatus::Merged;
        guest.merged_into = Some(self.cart_id.clone());
        guest.updated_at = now;
        self.touch(now);
        Ok(())
    }
}

/// The lines of `into` plus those of `from`: quantities of a shared SKU add up and are capped at the
/// per-SKU limit (the line is then flagged `quantity_limited`); the earlier price snapshot is kept. SKUs from
/// `from` beyond the line limit are dropped.
pub fn merge_lines(
    into: &BTreeMap<String, CartLine>,
    from: &BTreeMap<String, CartLine>,
    limits: &CartLimits,
) -> BTreeMap<String, CartLine> {
    let mut merged = into.clone();
    for (sku, line) in from {
        let room = merged.len() < limits.max_lines;
        match merged.get_mut(sku) {
            Some(existing) => {
                let sum = existing.quantity.saturating_add(line.quantity);
                existing.quantity_limited = sum > limits.max_quantity_per_sku;
                existing.quantity = sum.min(limits.max_quantity_per_sku);
                if line.added_at < existing.added_at {
                    existing.added_price = line.added_price;
                    existing.added_at = line.added_at;
                }
            }
            None if room => {
                let mut line = line.clone();
                line.quantity_limited = line.quantity > limits.max_quantity_per_sku;
                line.quantity = line.quantity.min(limits.max_quantity_per_sku);
                merged.insert(sku.clone(), line);
            }
            None => {}
        }
    }
    merged
}

/// A problem with one line, found when the cart is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LineProblem {
    /// The price now differs from the price when the item was added.
    PriceChanged { previous: Money, current: Money },
    /// None can be bought now.
    OutOfStock,
    /// Fewer than the quantity can be bought now.
    InsufficientStock { available: i64 },
    /// The SKU no longer exists or is not for sale.
    Unavailable,
    /// The quantity was capped at the per-SKU limit.
    QuantityLimited { max: u32 },
    /// The SKU is now priced in another currency than the cart: it is left out of the subtotal and cannot be
    /// checked out with the rest; remove it and add it again to buy it on its own.
    CurrencyMismatch { cart_currency: Currency },
}

/// A line as read: current price, totals and problems.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricedLine {
    pub sku: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    pub quantity: u32,
    /// The current price (the added price when the SKU is unavailable).
    pub unit_price: Money,
    pub added_price: Money,
    pub line_total: Money,
    pub problems: Vec<LineProblem>,
    /// The promotions' shares of this line (shown on reads that evaluate promotions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discounts: Vec<crate::promotion::Share>,
}

/// The promotions on a cart as read: the cart's codes, what applies (each share on its line), the shipping
/// promotions that apply once shipping is priced (at the quote and checkout), and why a code does not apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartPromotions {
    pub codes: Vec<String>,
    pub applied: Vec<crate::promotion::Applied>,
    pub pending_shipping: Vec<String>,
    pub problems: Vec<crate::promotion::PromotionProblem>,
    pub discount_total: Money,
    /// `subtotal − discount_total`, before shipping and tax.
    pub discounted_subtotal: Money,
}

/// A cart as read by its owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricedCart {
    pub cart_id: String,
    /// `guest` or `shopper`.
    pub owner: &'static str,
    pub lines: Vec<PricedLine>,
    pub item_count: u32,
    /// Sum of the line totals of the lines that can be bought; absent for an empty cart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtotal: Option<Money>,
    pub has_problems: bool,
    pub updated_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The live stock hold of the cart's lines (reserve at add-to-cart), or null.
    pub reservation: Option<CartReservation>,
    /// The promotions, on reads that evaluate them (`GET` and the promotion endpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotions: Option<CartPromotions>,
}

/// Re-prices a cart against the catalog's current SKUs and the units sellable per SKU. The subtotal is in the
/// cart's currency; a line now priced in another is flagged, never silently left out.
pub fn price_cart(
    cart: &Cart,
    skus: &HashMap<String, SkuView>,
    sellable_units: &HashMap<String, i64>,
    limits: &CartLimits,
) -> Result<PricedCart, DomainError> {
    let mut lines = Vec::with_capacity(cart.lines.len());
    let mut subtotal: Option<Money> = None;
    let currency = cart.currency();
    for (sku, line) in &cart.lines {
        let mut problems = Vec::new();
        let info = skus.get(sku).filter(|i| i.is_purchasable());
        let unit_price = match info {
            None => {
                problems.push(LineProblem::Unavailable);
                line.added_price
            }
            Some(info) => {
                if info.price != line.added_price {
                    problems.push(LineProblem::PriceChanged { previous: line.added_price, current: info.price });
                }
                let units = sellable_units.get(sku).copied().unwrap_or(0);
                if units <= 0 {
                    problems.push(LineProblem::OutOfStock);
                } else if units < i64::from(line.quantity) {
                    problems.push(LineProblem::InsufficientStock { available: units });
                }
                info.price
            }
        };
        if line.quantity_limited {
            problems.push(LineProblem::QuantityLimited { max: limits.max_quantity_per_sku });
        }
        let line_total = unit_price.checked_mul(line.quantity)?;
        match currency {
            Some(cart_currency) if unit_price.currency != cart_currency => {
                problems.push(LineProblem::CurrencyMismatch { cart_currency });
            }
            _ if info.is_some() => {
                subtotal = Some(match subtotal {
                    None => line_total,
                    Some(sum) => sum.checked_add(line_total)?,
                });
            }
            _ => {}
        }
        lines.push(PricedLine {
            sku: sku.clone(),
            title: info.map(|i| i.title.clone()),
            product_id: info.map(|i| i.product_id.clone()),
            quantity: line.quantity,
            unit_price,
            added_price: line.added_price,
            line_total,
            problems,
            discounts: Vec::new(),
        });
    }
    Ok(PricedCart {
        cart_id: cart.cart_id.clone(),
        owner: match cart.owner {
            CartOwner::Guest { .. } => "guest",
            CartOwner::Shopper { .. } => "shopper",
        },
        item_count: lines.iter().fold(0, |n, l| n.saturating_add(l.quantity)),
        has_problems: lines.iter().any(|l| !l.problems.is_empty()),
        lines,
        subtotal,
        updated_at: cart.updated_at,
        expires_at: cart.expires_at,
        reservation: None,
        promotions: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Component;
    use proptest::prelude::*;

    fn usd(amount: i64) -> Money {
        Money::new(amount, Currency::USD)
    }

    fn info(sku: &str, price: i64) -> SkuView {
        SkuView {
            sku: sku.into(),
            product_id: "prd_1".into(),
            seller_id: "s1".into(),
            title: sku.into(),
            price: usd(price),
            status: crate::catalog::ProductStatus::Active,
            options: Default::default(),
            components: vec![Component { sku: sku.into(), quantity: 1 }],
            image: None,
            product_version: 1,
            tax_class: Default::default(),
            weight_grams: None,
            category_path: Vec::new(),
        }
    }

    #[test]
    fn limits_stay_within_what_a_reservation_takes() {
        use crate::inventory::reservation::{MAX_LINES, MAX_LINE_QUANTITY};
        assert_eq!(CartLimits::new(10, 50).unwrap(), CartLimits::default());
        assert!(CartLimits::new(MAX_LINE_QUANTITY, MAX_LINES).is_ok());
        for (quantity, lines) in [(0, 50), (MAX_LINE_QUANTITY + 1, 50), (u32::MAX, 50), (10, 0), (10, MAX_LINES + 1)] {
            assert!(CartLimits::new(quantity, lines).is_err(), "{quantity} per SKU, {lines} lines");
        }
    }

    #[test]
    fn setting_the_same_quantity_twice_changes_nothing() {
        let now = Utc::now();
        let (mut cart, _) = Cart::new_guest(now);
        let limits = CartLimits::default();
        assert_eq!(cart.set_quantity("A", 2, usd(500), &limits, now).unwrap(), Edit::Changed);
        let snapshot = cart.clone();
        let later = now + Duration::minutes(5);
        assert_eq!(cart.set_quantity("A", 2, usd(700), &limits, later).unwrap(), Edit::Unchanged);
        assert_eq!(cart, snapshot);
        assert!(cart.set_quantity("A", 11, usd(500), &limits, later).is_err());
    }

    #[test]
    fn ownership_is_checked() {
        let now = Utc::now();
        let (guest, token) = Cart::new_guest(now);
        assert!(guest.authorize(&CartAccess { user_id: None, cart_token: Some(token.clone()) }, now).is_ok());
        assert!(guest.authorize(&CartAccess { user_id: None, cart_token: Some("nope".into()) }, now).is_err());
        assert!(guest.authorize(&CartAccess { user_id: Some("u1".into()), cart_token: None }, now).is_err());
        let later = now + Duration::days(GUEST_TTL_DAYS);
        assert!(guest.authorize(&CartAccess { user_id: None, cart_token: Some(token) }, later).is_err());
        let shopper = Cart::new_shopper("u1", now);
        assert!(shopper.authorize(&CartAccess { user_id: Some("u1".into()), cart_token: None }, now).is_ok());
        assert!(shopper.authorize(&CartAccess { user_id: Some("u2".into()), cart_token: None }, now).is_err());
        assert!(shopper.authorize(&CartAccess::default(), now).is_err());
    }

    #[test]
    fn reading_reprices_and_lists_problems() {
        let now = Utc::now();
        let (mut cart, _) = Cart::new_guest(now);
        let limits = CartLimits::default();
        for (sku, qty) in [("A", 2), ("B", 3), ("C", 1), ("D", 1)] {
            cart.set_quantity(sku, qty, usd(100), &limits, now).unwrap();
        }
        let skus = HashMap::from([
            ("A".to_string(), info("A", 100)),
            ("B".to_string(), info("B", 120)),
            ("C".to_string(), info("C", 100)),
        ]);
        let stock = HashMap::from([("A".to_string(), 5), ("B".to_string(), 1), ("C".to_string(), 0)]);
        let priced = price_cart(&cart, &skus, &stock, &limits).unwrap();
        let problems: HashMap<&str, &Vec<LineProblem>> =
            priced.lines.iter().map(|l| (l.sku.as_str(), &l.problems)).collect();
        assert!(problems["A"].is_empty());
        assert_eq!(
            problems["B"],
            &vec![
                LineProblem::PriceChanged { previous: usd(100), current: usd(120) },
                LineProblem::InsufficientStock { available: 1 }
            ]
        );
        assert_eq!(problems["C"], &vec![LineProblem::OutOfStock]);
        assert_eq!(problems["D"], &vec![LineProblem::Unavailable]);
        assert_eq!(priced.subtotal, Some(usd(2 * 100 + 3 * 120 + 100)));
        assert!(priced.has_problems);
    }

    /// A guest cart of two A at 1.00 and one B at 3.00.
    fn two_line_cart() -> (Cart, CartLimits) {
        let now = Utc::now();
        let (mut cart, _) = Cart::new_guest(now);
        let limits = CartLimits::default();
        cart.set_quantity("A", 2, usd(100), &limits, now).unwrap();
        cart.set_quantity("B", 1, usd(300), &limits, now).unwrap();
        (cart, limits)
    }

    #[test]
    fn a_sku_priced_zero_reads_as_unavailable_and_out_of_the_subtotal() {
        let (cart, limits) = two_line_cart();
        let skus = HashMap::from([("A".to_string(), info("A", 0)), ("B".to_string(), info("B", 300))]);
        let stock = HashMap::from([("A".to_string(), 5), ("B".to_string(), 5)]);
        let priced = price_cart(&cart, &skus, &stock, &limits).unwrap();
        assert_eq!(priced.lines[0].problems, vec![LineProblem::Unavailable]);
        assert_eq!(priced.subtotal, Some(usd(300)));
    }

    #[test]
    fn a_line_repriced_in_another_currency_is_a_problem_not_a_silent_gap_in_the_subtotal() {
        let (cart, limits) = two_line_cart();
        let mut euro = info("B", 250);
        euro.price = Money::new(250, Currency::EUR);
        let skus = HashMap::from([("A".to_string(), info("A", 100)), ("B".to_string(), euro)]);
        let stock = HashMap::from([("A".to_string(), 5), ("B".to_string(), 5)]);
        let priced = price_cart(&cart, &skus, &stock, &limits).unwrap();
        assert_eq!(priced.subtotal, Some(usd(200)));
        assert!(
            priced.lines[1].problems.contains(&LineProblem::CurrencyMismatch { cart_currency: Currency::USD }),
            "{:?}",
            priced.lines[1].problems
        );
        assert!(priced.has_problems);
    }

    #[test]
    fn merging_a_cart_of_another_currency_is_refused_and_changes_neither() {
        let now = Utc::now();
        let limits = CartLimits::default();
        let mut shopper = Cart::new_shopper("u1", now);
        shopper.set_quantity("A", 1, usd(100), &limits, now).unwrap();
        let (mut guest, _) = Cart::new_guest(now);
        guest.set_quantity("B", 1, Money::new(90, Currency::EUR), &limits, now).unwrap();
        let (shopper_before, guest_before) = (shopper.clone(), guest.clone());
        let err = shopper.merge_from(&mut guest, &limits, now).unwrap_err();
        assert!(matches!(err, DomainError::Conflict { code: ErrorCode::CurrencyMismatch, .. }), "{err:?}");
        assert_eq!((shopper, guest), (shopper_before, guest_before));
    }

    fn lines_strategy() -> impl Strategy<Value = BTreeMap<String, CartLine>> {
        proptest::collection::btree_map("[A-F]", 1u32..=10, 0..6).prop_map(|m| {
            let now = Utc::now();
            m.into_iter()
                .map(|(sku, quantity)| {
                    (sku, CartLine { quantity, added_price: usd(100), added_at: now, quantity_limited: false })
                })
                .collect()
        })
    }

    proptest! {
        /// Merging keeps every SKU, adds quantities up to the limit, flags exactly the capped lines, and
        /// gives the same quantities whichever cart is merged into which.
        #[test]
        fn merge_adds_quantities_within_limits(a in lines_strategy(), b in lines_strategy(), max in 1u32..=12) {
            let limits = CartLimits { max_quantity_per_sku: max, max_lines: 50 };
            let within = |mut lines: BTreeMap<String, CartLine>| {
                lines.values_mut().for_each(|l| l.quantity = l.quantity.min(max));
                lines
            };
            let (a, b) = (within(a), within(b));
            let merged = merge_lines(&a, &b, &limits);
            let reverse = merge_lines(&b, &a, &limits);
            for sku in a.keys().chain(b.keys()) {
                let sum = a.get(sku).map_or(0, |l| l.quantity) + b.get(sku).map_or(0, |l| l.quantity);
                let line = &merged[sku];
                prop_assert_eq!(line.quantity, sum.min(max));
                prop_assert_eq!(line.quantity_limited, sum > max);
                prop_assert_eq!(reverse[sku].quantity, line.quantity);
            }
            prop_assert_eq!(merged.len(), a.keys().chain(b.keys()).collect::<std::collections::BTreeSet<_>>().len());
        }

        #[test]
        fn merge_marks_guest_cart_and_is_not_repeatable(a in lines_strategy(), b in lines_strategy()) {
            let now = Utc::now();
            let limits = CartLimits::default();
            let mut shopper = Cart::new_shopper("u1", now);
            shopper.lines = a;
            let (mut guest, _) = Cart::new_guest(now);
            guest.lines = b;
            shopper.merge_from(&mut guest, &limits, now).unwrap();
            prop_assert_eq!(guest.status, CartStatus::Merged);
            prop_assert_eq!(guest.merged_into.as_deref(), Some(shopper.cart_id.as_str()));
            let before = shopper.lines.clone();
            prop_assert!(shopper.merge_from(&mut guest, &limits, now).is_err());
            prop_assert_eq!(before, shopper.lines);
        }
    }
}
