//! Promotions: discounts an admin gives on the whole platform or a seller gives on their own products, applied
//! automatically or by a code, with usage limits that hold exactly under any concurrency (the counting is the
//! store's: see `docs/PROMOTIONS.md`). Everything here is pure.
//!
//! ## Classes
//! A promotion's class follows from its kind and target:
//! - `product`: `percent` or `fixed` with a non-empty `applies_to`, and every `buy_x_get_y`;
//! - `order`: `percent` or `fixed` with an empty `applies_to` (the whole order; a seller's promotion: the seller's
//!   lines);
//! - `shipping`: `free_shipping`.
//!
//! ## Evaluation order (fixed)
//! 1. product discounts, each on the line amounts left by the ones before it (priority order);
//! 2. order discounts on what the lines in scope have left, allocated to those lines by largest remainder in
//!    proportion to what each has left;
//! 3. shipping discounts on the shipping of the parts in scope;
//! 4. tax, by the caller, on the discounted amounts.
//!
//! No line and no shipping goes below zero. Of the candidates, the engine applies the best combinable set: two
//! promotions combine when each lists the other's class in `combines_with` (an empty list: exclusive, never
//! combined); the best set gives the largest discount, then has the fewest promotions, then comes first in the
//! candidates' canonical order (priority high to low, then promotion id), so the choice does not depend on the
//! order the candidates were given in. A promotion that discounts 0 is not applied and uses nothing.

use crate::error::{DomainError, ErrorCode, Result};
use crate::money::{Currency, Money};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Id prefix of a promotion (`prm_...`).
pub const PROMOTION_PREFIX: &str = "prm";
/// Most codes a cart (or a checkout) carries.
pub const MAX_CODES_PER_CART: usize = 5;
/// Most automatic promotions considered for one cart (the first by priority, then id).
pub const MAX_AUTOMATIC: usize = 10;
/// Most single-use codes made by one request.
pub const MAX_CODES_PER_BATCH: u32 = 1_000;
/// Most entries in each `applies_to` list.
pub const MAX_TARGETS: usize = 100;
/// Highest usage limit (fits a shard count times a shard's share in any integer we store).
pub const MAX_USAGE_LIMIT: u32 = 100_000_000;
/// Most shards a promotion's usage counter is split over.
pub const MAX_SHARDS: u32 = 16;
/// Uses per shard the shard count aims at.
pub const USES_PER_SHARD: u32 = 50;
/// Basis points of 100 %.
pub const FULL_BP: u32 = 10_000;

/// What a promotion does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromotionKind {
    Percent,
    Fixed,
    FreeShipping,
    BuyXGetY,
}

/// How much: `{"percent_bp": 1000}` (10 %), `{"amount": Money}`, `{"buy": n, "get": m}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum PromotionValue {
    Percent { percent_bp: u32 },
    Fixed { amount: Money },
    BuyGet { buy: u32, get: u32 },
}

/// The class a discount belongs to, which fixes when it is applied and what it combines with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscountClass {
    Product,
    Order,
    Shipping,
}

/// What a promotion targets. Empty lists: everything in the promotion's scope. A line matches when its SKU,
/// its product, or any category on its product's category path is listed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppliesTo {
    #[serde(default)]
    pub categories: Vec<String>,
    #[serde(default)]
    pub products: Vec<String>,
    #[serde(default)]
    pub skus: Vec<String>,
}

impl AppliesTo {
    pub fn is_empty(&self) -> bool {
        self.categories.is_empty() && self.products.is_empty() && self.skus.is_empty()
    }
}

/// When a promotion may apply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    /// The lines in scope, before any discount, add up to at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_subtotal: Option<Money>,
    /// Only a signed-in customer with no earlier confirmed order.
    #[serde(default)]
    pub first_order: bool,
    /// Only signed-in customers (guests are counted by e-mail otherwise).
    #[serde(default)]
    pub requires_sign_in: bool,
}

/// Who gives the promotion: the platform (an admin), or one seller, on their own products only.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Scope {
    Platform,
    Seller { seller_id: String },
}

/// The body of `POST /v1/admin/promotions` and `POST /v1/seller/promotions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPromotion {
    pub name: String,
    /// A multi-use code (`SUMMER10`), or null for an automatic promotion.
    #[serde(default)]
    pub code: Option<String>,
    pub kind: PromotionKind,
    /// Absent for `free_shipping`.
    #[serde(default)]
    pub value: Option<PromotionValue>,
    #[serde(default)]
    pub applies_to: AppliesTo,
    #[serde(default)]
    pub conditions: Conditions,
    pub starts_at: DateTime<Utc>,
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    /// Uses in all (null: unlimited).
    #[serde(default)]
    pub usage_limit: Option<u32>,
    /// Uses per customer (null: unlimited).
    #[serde(default)]
    pub per_customer_limit: Option<u32>,
    /// The classes this promotion combines with; empty: exclusive.
    #[serde(default)]
    pub combines_with: Vec<DiscountClass>,
    /// Higher first, in application order and in ties.
    #[serde(default)]
    pub priority: i32,
    /// Whether a cancelled or fully returned order gives its use back.
    #[serde(default = "yes")]
    pub restore_on_cancel: bool,
}

fn yes() -> bool {
    true
}

/// A promotion as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promotion {
    pub promotion_id: String,
    pub scope: Scope,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    pub kind: PromotionKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<PromotionValue>,
    pub applies_to: AppliesTo,
    pub conditions: Conditions,
    pub starts_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_customer_limit: Option<u32>,
    pub combines_with: Vec<DiscountClass>,
    pub priority: i32,
    pub restore_on_cancel: bool,
    /// Switched off by PATCH: applies to nothing, holds nothing.
    pub active: bool,
    /// The usage counter's shards (fixed at creation).
    pub shards: u32,
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The body of `PATCH .../promotions/{promotion_id}` (with `If-Match`): every field optional. The code, kind,
/// scope and shards never change (make a new promotion instead).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromotionPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub value: Option<PromotionValue>,
    #[serde(default)]
    pub applies_to: Option<AppliesTo>,
    #[serde(default)]
    pub conditions: Option<Conditions>,
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    /// `Some(None)` (JSON null) removes the end.
    #[serde(default, with = "crate::json::double_option")]
    pub ends_at: Option<Option<DateTime<Utc>>>,
    #[serde(default, with = "crate::json::double_option")]
    pub usage_limit: Option<Option<u32>>,
    #[serde(default, with = "crate::json::double_option")]
    pub per_customer_limit: Option<Option<u32>>,
    #[serde(default)]
    pub combines_with: Option<Vec<DiscountClass>>,
    #[serde(default)]
    pub priority: Option<i32>,
    #[serde(default)]
    pub restore_on_cancel: Option<bool>,
    #[serde(default)]
    pub active: Option<bool>,
}

/// Where a promotion's uses stand, exactly, at one consistent read: `used + held + remaining == usage_limit`
/// when there is a limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Committed by confirmed orders (less those given back).
    pub used: u64,
    /// Taken by checkouts not yet confirmed or failed.
    pub held: u64,
    /// Left to take; null when unlimited.
    pub remaining: Option<u64>,
}

/// Why a promotion does not apply to a cart, as the cart and checkout say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    /// `promotion_expired`: past its end.
    Expired,
    /// `promotion_unavailable`: not started, switched off, used up, the customer's limit reached, or sign-in
    /// required.
    Unavailable,
    /// `promotion_not_applicable`: its conditions are not met, nothing in the cart is eligible, another currency,
    /// it would discount nothing, or it does not combine with a better set.
    NotApplicable,
}

impl Problem {
    pub fn code(self) -> ErrorCode {
        match self {
            Self::Expired => ErrorCode::PromotionExpired,
            Self::Unavailable => ErrorCode::PromotionUnavailable,
            Self::NotApplicable => ErrorCode::PromotionNotApplicable,
        }
    }
}

/// A problem and its detail: `ended`, `not_started`, `inactive`, `usage_limit`, `customer_limit`,
/// `sign_in_required`, `first_order`, `min_subtotal`, `no_eligible_items`, `currency`, `no_discount`,
/// `not_combinable`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromotionProblem {
    pub promotion_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    pub problem: Problem,
    pub reason: String,
}

impl PromotionProblem {
    /// The error a checkout answers when a code the shopper gave does not apply.
    pub fn error(&self) -> DomainError {
        let field = self.code.clone().unwrap_or_else(|| self.promotion_id.clone());
        DomainError::refused(self.problem.code(), format!("promotion_codes.{field}"), &self.reason)
    }
}

/// What the store knows of a candidate's uses for this customer, read before evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Availability {
    /// The promotion has no use left (`remaining == 0`).
    pub used_up: bool,
    /// The customer has used (or holds) `per_customer_limit` uses.
    pub customer_limit_reached: bool,
}

/// A promotion the engine may apply: an automatic one, or one named by a code on the cart or the checkout.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub promotion: &'a Promotion,
    /// The code that brought it (a single-use code, or the promotion's own); none for an automatic one.
    pub code: Option<String>,
    pub availability: Availability,
}

/// A cart line as the engine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalLine {
    pub sku: String,
    pub product_id: String,
    pub seller_id: String,
    /// The product's category path, root first.
    pub categories: Vec<String>,
    pub quantity: u32,
    pub unit_price: i64,
    /// `unit_price × quantity`.
    pub amount: i64,
}

/// A seller part's shipping as priced before discounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalShipping {
    pub seller_id: String,
    pub amount: i64,
}

/// Who is buying, as far as conditions need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Shopper {
    pub signed_in: bool,
    /// Signed in and no earlier confirmed order.
    pub first_order: bool,
}

/// The context of one evaluation.
#[derive(Debug, Clone, Copy)]
pub struct EvalContext {
    pub currency: Currency,
    pub now: DateTime<Utc>,
    pub shopper: Shopper,
    /// False while no shipping is priced (a cart read): shipping promotions are then reported in
    /// [`Evaluation::pending_shipping`] and not evaluated.
    pub shipping_known: bool,
}

/// One promotion's share of a line or a shipping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    pub promotion_id: String,
    pub amount: i64,
}

/// A promotion the engine applied, and how much it took off in all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub promotion_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    pub name: String,
    pub class: DiscountClass,
    pub amount: i64,
}

/// The engine's answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Evaluation {
    /// Per input line (same index): the shares taken off it, in application order. Their sum is at most the line's
    /// amount.
    pub lines: Vec<Vec<Share>>,
    /// Per input shipping (same index): the shares taken off it.
    pub shipping: Vec<Vec<Share>>,
    /// The applied set, in application order; each amount is the sum of its shares.
    pub applied: Vec<Applied>,
    /// Every candidate not applied, with why.
    pub problems: Vec<PromotionProblem>,
    /// Shipping promotions that would be evaluated once shipping is priced (only when `shipping_known` is false).
    pub pending_shipping: Vec<String>,
}

impl Evaluation {
    /// Everything taken off.
    pub fn total(&self) -> i64 {
        self.applied.iter().map(|a| a.amount).sum()
    }
}

impl Promotion {
    /// The promotion's class (see the module docs).
    pub fn class(&self) -> DiscountClass {
        class_of(self.kind, &self.applies_to)
    }

    /// Whether `self` and `other` may apply together.
    pub fn combines(&self, other: &Promotion) -> bool {
        self.combines_with.contains(&other.class()) && other.combines_with.contains(&self.class())
    }

    /// Whether the lines of `line` are in the promotion's scope and target.
    pub fn targets(&self, line: &EvalLine) -> bool {
        let in_scope = match &self.scope {
            Scope::Platform => true,
            Scope::Seller { seller_id } => &line.seller_id == seller_id,
        };
        let t = &self.applies_to;
        in_scope
            && (t.is_empty()
                || t.skus.contains(&line.sku)
                || t.products.contains(&line.product_id)
                || line.categories.iter().any(|c| t.categories.contains(c)))
    }
}

/// The class of a kind with a target.
pub fn class_of(kind: PromotionKind, applies_to: &AppliesTo) -> DiscountClass {
    match kind {
        PromotionKind::FreeShipping => DiscountClass::Shipping,
        PromotionKind::BuyXGetY => DiscountClass::Product,
        PromotionKind::Percent | PromotionKind::Fixed if applies_to.is_empty() => DiscountClass::Order,
        PromotionKind::Percent | PromotionKind::Fixed => DiscountClass::Product,
    }
}

/// A code as stored and compared: trimmed, upper case; 3-32 of letters, digits, `-` and `_`.
pub fn normalize_code(raw: &str) -> Result<String> {
    let code = raw.trim().to_ascii_uppercase();
    let ok = (3..=32).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(code)
    } else {
        Err(DomainError::validation("code", "must be 3-32 letters, digits, '-' or '_'"))
    }
}

/// The key a customer's uses are counted under: `user#<id>` when signed in, else `email#<normalized e-mail>`
/// (trimmed, lower case, a `+tag` in the local part dropped), so a guest cannot pass a per-customer limit by
/// changing the case or tagging the address.
pub fn customer_key(user_id: Option<&str>, email: Option<&str>) -> Result<String> {
    if let Some(user) = user_id {
        return Ok(format!("user#{user}"));
    }
    let email = email.ok_or_else(|| DomainError::validation("email", "is required for a guest"))?;
    let email = email.trim().to_lowercase();
    let (local, domain) = email.split_once('@').ok_or_else(|| DomainError::validation("email", "is not an address"))?;
    let local = local.split('+').next().unwrap_or(local);
    if local.is_empty() || domain.is_empty() {
        return Err(DomainError::validation("email", "is not an address"));
    }
    Ok(format!("email#{local}@{domain}"))
}

/// The shard count of a usage counter: one shard per `USES_PER_SHARD` uses of the limit, at most `MAX_SHARDS`
/// (unlimited promotions take the most, so their counts never meet one item's write limit).
pub fn shard_count(usage_limit: Option<u32>) -> u32 {
    match usage_limit {
        None => MAX_SHARDS,
        Some(limit) => limit.div_ceil(USES_PER_SHARD).clamp(1, MAX_SHARDS),
    }
}

impl NewPromotion {
    /// Every rule of a new promotion (422 naming the field): a name of 1-200 characters; a valid code
    /// ([`normalize_code`]); the value the kind needs (`percent_bp` 1-10,000 for `percent`; a positive valid
    /// price for `fixed`; `buy` 1-100 and `get` 1-100 for `buy_x_get_y`; none for `free_shipping`); at most
    /// [`MAX_TARGETS`] per `applies_to` list, each a non-empty id; `min_subtotal` positive; `ends_at` after
    /// `starts_at` and not in the past; `usage_limit` 1-[`MAX_USAGE_LIMIT`]; `per_customer_limit` at least 1;
    /// `combines_with` without repeats; money in one currency (the fixed amount's and the minimum's).
    pub fn validate(&self, now: DateTime<Utc>) -> Result<()> {
        let _ = now;
        todo!("promotion engine")
    }

    /// The promotion as first stored (validated; code normalized; version 1; active; shards from the limit).
    pub fn into_promotion(self, promotion_id: String, scope: Scope, now: DateTime<Utc>) -> Result<Promotion> {
        let _ = (promotion_id, scope, now);
        todo!("promotion engine")
    }
}

impl Promotion {
    /// Applies a PATCH: the result must pass the same rules as a new promotion; `version` + 1, `updated_at`
    /// now. Lowering `usage_limit` below what is used and held is the store's to refuse (it knows the counts).
    pub fn apply(&mut self, patch: PromotionPatch, now: DateTime<Utc>) -> Result<()> {
        let _ = (patch, now);
        todo!("promotion engine")
    }

    /// Why the promotion cannot apply at `now` whatever the cart: ended (`Expired`, `ended`), not started or
    /// switched off (`Unavailable`, `not_started` / `inactive`).
    pub fn unavailable_at(&self, now: DateTime<Utc>) -> Option<(Problem, &'static str)> {
        let _ = now;
        todo!("promotion engine")
    }
}

/// Evaluates `candidates` against a cart (see the module docs for the rules).
pub fn evaluate(
    lines: &[EvalLine],
    shipping: &[EvalShipping],
    candidates: &[Candidate<'_>],
    ctx: &EvalContext,
) -> Evaluation {
    let _ = (lines, shipping, candidates, ctx);
    todo!("promotion engine")
}

/// `count` new single-use codes: `prefix` (normalized, at most 16 characters, may be empty) followed by 10
/// characters of Crockford base32 from the operating system's CSPRNG (50 bits), distinct within the batch.
pub fn generate_codes(prefix: &str, count: u32) -> Result<Vec<String>> {
    let _ = (prefix, count);
    todo!("promotion engine")
}
