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
    /// The error a checkout answers when a code the shopper gave does not apply: 409 with the problem's code
    /// (the same code may apply to another cart, or may have applied yesterday), naming the code and why.
    pub fn error(&self) -> DomainError {
        let which = self.code.clone().unwrap_or_else(|| self.promotion_id.clone());
        DomainError::conflict(self.problem.code(), format!("promotion code {which} does not apply ({})", self.reason))
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
        let t = &self.applies_to;
        self.in_scope(line)
            && (t.is_empty()
                || t.skus.contains(&line.sku)
                || t.products.contains(&line.product_id)
                || line.categories.iter().any(|c| t.categories.contains(c)))
    }
}

/// Sets `slot` to `value` when the PATCH gave one.
fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
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
    let ok =
        (3..=32).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
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

/// Longest promotion name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Highest `buy` and `get` of a `buy_x_get_y`.
pub const MAX_BUY_GET: u32 = 100;
/// Longest prefix of generated codes.
pub const MAX_CODE_PREFIX: usize = 16;
/// Characters of randomness after a generated code's prefix (5 bits each: 50 bits).
pub const GENERATED_CODE_CHARS: usize = 10;
/// Most candidates the best-set search weighs: as many as a cart may carry (codes plus automatic ones). It
/// enumerates every combinable subset, so this bounds it to 2^15 subsets whatever the caller passes.
pub const MAX_SEARCHED: usize = MAX_CODES_PER_CART + MAX_AUTOMATIC;

impl NewPromotion {
    /// Every rule of a new promotion (422 naming the field): a name of 1-200 characters; a valid code
    /// ([`normalize_code`]); the value the kind needs (`percent_bp` 1-10,000 for `percent`; a positive valid
    /// price for `fixed`; `buy` 1-100 and `get` 1-100 for `buy_x_get_y`; none for `free_shipping`); at most
    /// [`MAX_TARGETS`] per `applies_to` list, each a non-empty id; `min_subtotal` positive; `ends_at` after
    /// `starts_at` and not in the past; `usage_limit` 1-[`MAX_USAGE_LIMIT`]; `per_customer_limit` at least 1;
    /// `combines_with` without repeats; money in one currency (the fixed amount's and the minimum's).
    pub fn validate(&self, now: DateTime<Utc>) -> Result<()> {
        self.clone().into_promotion(String::new(), Scope::Platform, now).map(|_| ())
    }

    /// The promotion as first stored (validated; code normalized; version 1; active; shards from the limit).
    pub fn into_promotion(self, promotion_id: String, scope: Scope, now: DateTime<Utc>) -> Result<Promotion> {
        let promotion = Promotion {
            promotion_id,
            scope,
            name: self.name,
            code: self.code.as_deref().map(normalize_code).transpose()?,
            kind: self.kind,
            value: self.value,
            applies_to: self.applies_to,
            conditions: self.conditions,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            usage_limit: self.usage_limit,
            per_customer_limit: self.per_customer_limit,
            combines_with: self.combines_with,
            priority: self.priority,
            restore_on_cancel: self.restore_on_cancel,
            active: true,
            shards: shard_count(self.usage_limit),
            version: 1,
            created_at: now,
            updated_at: now,
        };
        promotion.rules().check(Some(now))?;
        Ok(promotion)
    }
}

impl Promotion {
    /// Applies a PATCH: the result must pass the same rules as a new promotion; `version` + 1, `updated_at`
    /// now. Lowering `usage_limit` below what is used and held is the store's to refuse (it knows the counts).
    ///
    /// `ends_at` must not be in the past only when the PATCH moves it: a promotion that has ended can still be
    /// renamed or switched off. A refused PATCH leaves the promotion as it was.
    pub fn apply(&mut self, patch: PromotionPatch, now: DateTime<Utc>) -> Result<()> {
        // Destructured, so a field added to the PATCH body cannot be forgotten here.
        let PromotionPatch {
            name,
            value,
            applies_to,
            conditions,
            starts_at,
            ends_at,
            usage_limit,
            per_customer_limit,
            combines_with,
            priority,
            restore_on_cancel,
            active,
        } = patch;
        let mut next = self.clone();
        set(&mut next.name, name);
        set(&mut next.value, value.map(Some));
        set(&mut next.applies_to, applies_to);
        set(&mut next.conditions, conditions);
        set(&mut next.starts_at, starts_at);
        set(&mut next.ends_at, ends_at);
        set(&mut next.usage_limit, usage_limit);
        set(&mut next.per_customer_limit, per_customer_limit);
        set(&mut next.combines_with, combines_with);
        set(&mut next.priority, priority);
        set(&mut next.restore_on_cancel, restore_on_cancel);
        set(&mut next.active, active);
        let end_moved = next.ends_at != self.ends_at;
        next.rules().check(end_moved.then_some(now))?;
        next.version = self.version.saturating_add(1);
        next.updated_at = now;
        *self = next;
        Ok(())
    }

    /// Why the promotion cannot apply at `now` whatever the cart: ended (`Expired`, `ended`), not started or
    /// switched off (`Unavailable`, `not_started` / `inactive`).
    pub fn unavailable_at(&self, now: DateTime<Utc>) -> Option<(Problem, &'static str)> {
        if self.ends_at.is_some_and(|end| end <= now) {
            Some((Problem::Expired, "ended"))
        } else if self.starts_at > now {
            Some((Problem::Unavailable, "not_started"))
        } else if !self.active {
            Some((Problem::Unavailable, "inactive"))
        } else {
            None
        }
    }

    /// Whether `line` is in the promotion's scope (any line for the platform, the seller's own lines for a
    /// seller), whatever `applies_to` says: the lines `min_subtotal` is counted over.
    pub fn in_scope(&self, line: &EvalLine) -> bool {
        match &self.scope {
            Scope::Platform => true,
            Scope::Seller { seller_id } => &line.seller_id == seller_id,
        }
    }

    fn rules(&self) -> Rules<'_> {
        Rules {
            name: &self.name,
            code: self.code.as_deref(),
            kind: self.kind,
            value: self.value.as_ref(),
            applies_to: &self.applies_to,
            conditions: &self.conditions,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            usage_limit: self.usage_limit,
            per_customer_limit: self.per_customer_limit,
            combines_with: &self.combines_with,
        }
    }
}

/// The fields the rules read, borrowed from a new promotion or a patched one, so both pass the same checks.
struct Rules<'a> {
    name: &'a str,
    code: Option<&'a str>,
    kind: PromotionKind,
    value: Option<&'a PromotionValue>,
    applies_to: &'a AppliesTo,
    conditions: &'a Conditions,
    starts_at: DateTime<Utc>,
    ends_at: Option<DateTime<Utc>>,
    usage_limit: Option<u32>,
    per_customer_limit: Option<u32>,
    combines_with: &'a [DiscountClass],
}

impl Rules<'_> {
    /// Every rule of [`NewPromotion::validate`]; `now` is given when `ends_at` must not be in the past.
    fn check(&self, now: Option<DateTime<Utc>>) -> Result<()> {
        let name = self.name;
        if name.trim().is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(DomainError::validation(
                "name",
                format!("must be 1-{MAX_NAME_CHARS} characters, not blank, without control characters"),
            ));
        }
        if let Some(code) = self.code {
            normalize_code(code)?;
        }
        let fixed = check_value(self.kind, self.value)?;
        let lists = [
            ("applies_to.categories", &self.applies_to.categories),
            ("applies_to.products", &self.applies_to.products),
            ("applies_to.skus", &self.applies_to.skus),
        ];
        for (field, list) in lists {
            if list.len() > MAX_TARGETS {
                return Err(DomainError::validation(field, format!("must list at most {MAX_TARGETS} ids")));
            }
            if list.iter().any(|id| id.trim().is_empty()) {
                return Err(DomainError::validation(field, "must not list an empty id"));
            }
        }
        if let Some(min) = self.conditions.min_subtotal {
            if min.amount <= 0 {
                return Err(DomainError::validation("conditions.min_subtotal", "must be positive"));
            }
            if fixed.is_some_and(|amount| amount.currency != min.currency) {
                return Err(DomainError::validation(
                    "conditions.min_subtotal",
                    "must be in the currency of value.amount",
                ));
            }
        }
        if let Some(end) = self.ends_at {
            if end <= self.starts_at {
                return Err(DomainError::validation("ends_at", "must be after starts_at"));
            }
            if now.is_some_and(|now| end <= now) {
                return Err(DomainError::validation("ends_at", "must be in the future"));
            }
        }
        if self.usage_limit.is_some_and(|limit| !(1..=MAX_USAGE_LIMIT).contains(&limit)) {
            return Err(DomainError::validation("usage_limit", format!("must be within 1..={MAX_USAGE_LIMIT}")));
        }
        if self.per_customer_limit == Some(0) {
            return Err(DomainError::validation("per_customer_limit", "must be at least 1"));
        }
        let repeats = self.combines_with.iter().enumerate().any(|(i, class)| self.combines_with[..i].contains(class));
        if repeats {
            return Err(DomainError::validation("combines_with", "must not list a class twice"));
        }
        Ok(())
    }
}

/// The kind as JSON spells it, for messages.
fn kind_name(kind: PromotionKind) -> &'static str {
    match kind {
        PromotionKind::Percent => "percent",
        PromotionKind::Fixed => "fixed",
        PromotionKind::FreeShipping => "free_shipping",
        PromotionKind::BuyXGetY => "buy_x_get_y",
    }
}

/// The value's rules for its kind; the fixed amount, whose currency the minimum must share.
fn check_value(kind: PromotionKind, value: Option<&PromotionValue>) -> Result<Option<Money>> {
    match (kind, value) {
        (PromotionKind::Percent, Some(PromotionValue::Percent { percent_bp })) => {
            if !(1..=FULL_BP).contains(percent_bp) {
                return Err(DomainError::validation("value.percent_bp", format!("must be within 1..={FULL_BP}")));
            }
            Ok(None)
        }
        (PromotionKind::Fixed, Some(PromotionValue::Fixed { amount })) => {
            amount.validate_price("value.amount")?;
            Ok(Some(*amount))
        }
        (PromotionKind::BuyXGetY, Some(PromotionValue::BuyGet { buy, get })) => {
            if !(1..=MAX_BUY_GET).contains(buy) {
                return Err(DomainError::validation("value.buy", format!("must be within 1..={MAX_BUY_GET}")));
            }
            if !(1..=MAX_BUY_GET).contains(get) {
                return Err(DomainError::validation("value.get", format!("must be within 1..={MAX_BUY_GET}")));
            }
            Ok(None)
        }
        (PromotionKind::FreeShipping, None) => Ok(None),
        (PromotionKind::FreeShipping, Some(_)) => {
            Err(DomainError::validation("value", "must be absent for free_shipping"))
        }
        (kind, None) => Err(DomainError::validation("value", format!("is required for {}", kind_name(kind)))),
        (kind, Some(_)) => {
            let shape = match kind {
                PromotionKind::Percent => "{\"percent_bp\": n}",
                PromotionKind::Fixed => "{\"amount\": money}",
                _ => "{\"buy\": n, \"get\": m}",
            };
            Err(DomainError::validation("value", format!("{} takes {shape}", kind_name(kind))))
        }
    }
}

/// Evaluates `candidates` against a cart (see the module docs for the rules).
///
/// Candidates are put in canonical order (priority high to low, then promotion id; of two naming the same
/// promotion the one with a code, then the available one, then the smaller code is kept), so the answer does not
/// depend on the order they are given in. Each is checked against the cart (dates, uses, the shopper, currency,
/// `min_subtotal`, eligible items) and reported in `problems` if it fails; the best combinable set of the rest
/// is then found by enumerating every pairwise-combinable subset (at most [`MAX_SEARCHED`] candidates are
/// weighed: the first in canonical order that discount something alone).
///
/// Amounts are integer minor units; a negative line or shipping amount counts as 0. A cart whose lines and
/// shipping add up beyond `i64::MAX` cannot be priced at all: nothing is applied to it (`no_discount`), so no
/// total here can overflow.
pub fn evaluate(
    lines: &[EvalLine],
    shipping: &[EvalShipping],
    candidates: &[Candidate<'_>],
    ctx: &EvalContext,
) -> Evaluation {
    let mut evaluation = Evaluation {
        lines: vec![Vec::new(); lines.len()],
        shipping: vec![Vec::new(); shipping.len()],
        ..Evaluation::default()
    };
    let canonical = canonical_order(candidates);
    let line_left: Vec<i64> = lines.iter().map(|l| l.amount.max(0)).collect();
    let ship_left: Vec<i64> = shipping.iter().map(|s| s.amount.max(0)).collect();
    let priceable = line_left.iter().chain(&ship_left).try_fold(0i64, |sum, amount| sum.checked_add(*amount)).is_some();

    let mut problems: Vec<(usize, Problem, &'static str)> = Vec::new();
    let mut passing: Vec<Prepared<'_>> = Vec::new();
    for (canon, candidate) in canonical.iter().enumerate() {
        match prepare(canon, candidate.promotion, &candidate.availability, lines, shipping, ctx) {
            Err((problem, reason)) => problems.push((canon, problem, reason)),
            Ok(None) => evaluation.pending_shipping.push(candidate.promotion.promotion_id.clone()),
            Ok(Some(prepared)) => passing.push(prepared),
        }
    }

    // Each passing candidate alone, on the cart as priced: no set gives it more than this (the ones before it
    // only leave less), so one that discounts nothing alone is never in the best set.
    let mut out = Vec::new();
    let alone: Vec<i128> = passing
        .iter()
        .map(|p| if priceable { shares(p, lines, &line_left, &ship_left, &mut out) } else { 0 })
        .collect();
    let mut pool: Vec<(&Prepared<'_>, i128)> =
        passing.iter().zip(alone.iter().copied()).filter(|(_, d)| *d > 0).take(MAX_SEARCHED).collect();
    pool.sort_by_key(|(p, _)| (p.class, p.canon));
    let chosen = best_set(&pool, lines, &line_left, &ship_left);

    let (mut left, mut ship) = (line_left, ship_left);
    for p in &chosen {
        let amount = shares(p, lines, &left, &ship, &mut out);
        take(&out, &mut left, &mut ship);
        let promotion_id = &p.promotion.promotion_id;
        for (target, share) in &out {
            let share = Share { promotion_id: promotion_id.clone(), amount: *share };
            match *target {
                Target::Line(i) => evaluation.lines[i].push(share),
                Target::Shipping(j) => evaluation.shipping[j].push(share),
            }
        }
        evaluation.applied.push(Applied {
            promotion_id: promotion_id.clone(),
            code: canonical[p.canon].code.clone(),
            name: p.promotion.name.clone(),
            class: p.class,
            amount: narrow(amount),
        });
    }
    for (p, d) in passing.iter().zip(&alone) {
        if !chosen.iter().any(|c| c.canon == p.canon) {
            problems.push((p.canon, Problem::NotApplicable, if *d > 0 { "not_combinable" } else { "no_discount" }));
        }
    }
    problems.sort_by_key(|(canon, _, _)| *canon);
    evaluation.problems = problems
        .into_iter()
        .map(|(canon, problem, reason)| PromotionProblem {
            promotion_id: canonical[canon].promotion.promotion_id.clone(),
            code: canonical[canon].code.clone(),
            problem,
            reason: reason.to_owned(),
        })
        .collect();
    evaluation
}

/// The candidates in canonical order, one per promotion.
fn canonical_order<'c, 'p>(candidates: &'c [Candidate<'p>]) -> Vec<&'c Candidate<'p>> {
    let blocked = |c: &Candidate<'_>| (c.availability.used_up, c.availability.customer_limit_reached);
    let mut order: Vec<&Candidate<'p>> = candidates.iter().collect();
    // First the one kept of each promotion, next to its duplicates: a code first, then an available one, then
    // the smaller code (the priority too, should two copies of one promotion differ).
    order.sort_by(|a, b| {
        a.promotion
            .promotion_id
            .cmp(&b.promotion.promotion_id)
            .then_with(|| b.code.is_some().cmp(&a.code.is_some()))
            .then_with(|| blocked(a).cmp(&blocked(b)))
            .then_with(|| a.code.cmp(&b.code))
            .then_with(|| b.promotion.priority.cmp(&a.promotion.priority))
    });
    order.dedup_by(|later, kept| later.promotion.promotion_id == kept.promotion.promotion_id);
    order.sort_by(|a, b| {
        b.promotion
            .priority
            .cmp(&a.promotion.priority)
            .then_with(|| a.promotion.promotion_id.cmp(&b.promotion.promotion_id))
    });
    order
}

/// What a promotion takes, as its kind, value and class say; `Nothing` for a value that does not fit the kind
/// (validation never stores one).
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// Basis points off each targeted line.
    LinePercent(i128),
    /// Minor units off each unit of each targeted line.
    LineFixed(i128),
    BuyGet {
        buy: u128,
        get: u128,
    },
    /// Basis points off the lines in scope, allocated.
    OrderPercent(i128),
    /// Minor units off the lines in scope, allocated.
    OrderFixed(i128),
    FreeShipping,
    Nothing,
}

fn rule_of(promotion: &Promotion, class: DiscountClass) -> Rule {
    let order = class == DiscountClass::Order;
    match (promotion.kind, promotion.value) {
        (PromotionKind::Percent, Some(PromotionValue::Percent { percent_bp })) => {
            let bp = i128::from(percent_bp.min(FULL_BP));
            if order {
                Rule::OrderPercent(bp)
            } else {
                Rule::LinePercent(bp)
            }
        }
        (PromotionKind::Fixed, Some(PromotionValue::Fixed { amount })) => {
            let amount = i128::from(amount.amount.max(0));
            if order {
                Rule::OrderFixed(amount)
            } else {
                Rule::LineFixed(amount)
            }
        }
        (PromotionKind::BuyXGetY, Some(PromotionValue::BuyGet { buy, get })) => {
            Rule::BuyGet { buy: u128::from(buy), get: u128::from(get) }
        }
        (PromotionKind::FreeShipping, _) => Rule::FreeShipping,
        _ => Rule::Nothing,
    }
}

/// A candidate that passed every check against the cart, ready to be weighed.
#[derive(Debug)]
struct Prepared<'p> {
    /// Its index in canonical order.
    canon: usize,
    promotion: &'p Promotion,
    class: DiscountClass,
    rule: Rule,
    /// The lines it targets, in input order.
    lines: Vec<usize>,
    /// The shipping entries it may take (a shipping promotion's: those of the sellers of its lines).
    shipping: Vec<usize>,
}

/// Checks a candidate against the cart: the first problem it has, or `None` for a shipping promotion waiting
/// for shipping to be priced, or the candidate ready to be weighed.
fn prepare<'p>(
    canon: usize,
    promotion: &'p Promotion,
    availability: &Availability,
    lines: &[EvalLine],
    shipping: &[EvalShipping],
    ctx: &EvalContext,
) -> std::result::Result<Option<Prepared<'p>>, (Problem, &'static str)> {
    if let Some(problem) = promotion.unavailable_at(ctx.now) {
        return Err(problem);
    }
    if availability.used_up {
        return Err((Problem::Unavailable, "usage_limit"));
    }
    if availability.customer_limit_reached {
        return Err((Problem::Unavailable, "customer_limit"));
    }
    let conditions = &promotion.conditions;
    let shopper = ctx.shopper;
    if conditions.requires_sign_in && !shopper.signed_in {
        return Err((Problem::Unavailable, "sign_in_required"));
    }
    // A guest is never on a first order, whatever the flag says.
    if conditions.first_order && !(shopper.signed_in && shopper.first_order) {
        return Err((Problem::NotApplicable, "first_order"));
    }
    let fixed = match promotion.value {
        Some(PromotionValue::Fixed { amount }) => Some(amount),
        _ => None,
    };
    if fixed.iter().chain(&conditions.min_subtotal).any(|money| money.currency != ctx.currency) {
        return Err((Problem::NotApplicable, "currency"));
    }
    if let Some(min) = conditions.min_subtotal {
        let subtotal: i128 = lines.iter().filter(|l| promotion.in_scope(l)).map(|l| i128::from(l.amount.max(0))).sum();
        if subtotal < i128::from(min.amount) {
            return Err((Problem::NotApplicable, "min_subtotal"));
        }
    }
    let targeted: Vec<usize> = (0..lines.len()).filter(|&i| promotion.targets(&lines[i])).collect();
    let class = promotion.class();
    let ship_targets: Vec<usize> = if class == DiscountClass::Shipping {
        (0..shipping.len()).filter(|&j| targeted.iter().any(|&i| lines[i].seller_id == shipping[j].seller_id)).collect()
    } else {
        Vec::new()
    };
    let shipping_missing = class == DiscountClass::Shipping && ctx.shipping_known && ship_targets.is_empty();
    if targeted.is_empty() || shipping_missing {
        return Err((Problem::NotApplicable, "no_eligible_items"));
    }
    if class == DiscountClass::Shipping && !ctx.shipping_known {
        return Ok(None);
    }
    Ok(Some(Prepared {
        canon,
        promotion,
        class,
        rule: rule_of(promotion, class),
        lines: targeted,
        shipping: ship_targets,
    }))
}

/// Where a share is taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Line(usize),
    Shipping(usize),
}

/// `numerator / denominator` rounded half up (both not negative, the denominator positive).
fn div_half_up(numerator: i128, denominator: i128) -> i128 {
    (2 * numerator + denominator) / (2 * denominator)
}

/// An amount already bounded by an `i64` one (a share never exceeds what is left).
fn narrow(value: i128) -> i64 {
    i64::try_from(value).unwrap_or(if value < 0 { 0 } else { i64::MAX })
}

fn push(out: &mut Vec<(Target, i64)>, target: Target, amount: i128) {
    if amount > 0 {
        out.push((target, narrow(amount)));
    }
}

/// The shares `p` takes of what is left (`left` per line, `ship_left` per shipping), into `out` (cleared
/// first; positive shares only, lines in input order); returns their sum. Nothing is taken off yet: see
/// [`take`].
fn shares(p: &Prepared<'_>, lines: &[EvalLine], left: &[i64], ship_left: &[i64], out: &mut Vec<(Target, i64)>) -> i128 {
    out.clear();
    let full = i128::from(FULL_BP);
    let in_scope = || p.lines.iter().map(|&i| i128::from(left[i])).sum::<i128>();
    match p.rule {
        Rule::LinePercent(bp) => {
            for &i in &p.lines {
                let l = i128::from(left[i]);
                push(out, Target::Line(i), div_half_up(l * bp, full).min(l));
            }
        }
        Rule::LineFixed(each) => {
            for &i in &p.lines {
                let l = i128::from(left[i]);
                push(out, Target::Line(i), (each * i128::from(lines[i].quantity)).min(l));
            }
        }
        Rule::BuyGet { buy, get } => buy_get(buy, get, &p.lines, lines, left, out),
        Rule::OrderPercent(bp) => {
            let sum = in_scope();
            allocate(div_half_up(sum * bp, full).min(sum), sum, &p.lines, left, out);
        }
        Rule::OrderFixed(amount) => {
            let sum = in_scope();
            allocate(amount.min(sum), sum, &p.lines, left, out);
        }
        Rule::FreeShipping => {
            for &j in &p.shipping {
                push(out, Target::Shipping(j), i128::from(ship_left[j]));
            }
        }
        Rule::Nothing => {}
    }
    out.iter().map(|(_, amount)| i128::from(*amount)).sum()
}

/// Takes `out`'s shares off what is left.
fn take(out: &[(Target, i64)], left: &mut [i64], ship_left: &mut [i64]) {
    for (target, amount) in out {
        match *target {
            Target::Line(i) => left[i] -= amount,
            Target::Shipping(j) => ship_left[j] -= amount,
        }
    }
}

/// `total` (at most `sum`, the sum of what `indexes` have left) over those lines in proportion to what each has
/// left: the floors of the exact shares, then one unit each to the largest remainders, ties to the earlier
/// line ([`crate::tax::largest_remainder`]'s rule), so the shares add up to `total` and none exceeds what its
/// line has left. Only the few remainders that get a unit are picked out, not all sorted: this runs once per
/// subset the best-set search weighs. The caller keeps `sum` within `i64`, so `total × left` fits an `i128`.
fn allocate(total: i128, sum: i128, indexes: &[usize], left: &[i64], out: &mut Vec<(Target, i64)>) {
    if total <= 0 || sum <= 0 {
        return;
    }
    // (floor, remainder) per line of `indexes`.
    let mut exact: Vec<(i128, i128)> = indexes
        .iter()
        .map(|&i| {
            let part = total * i128::from(left[i]);
            let floor = part / sum;
            (floor, part - floor * sum)
        })
        .collect();
    // The rest is below the number of lines with a remainder: the exact shares add up to `total`.
    let rest = usize::try_from(total - exact.iter().map(|e| e.0).sum::<i128>()).unwrap_or(0);
    if rest > 0 {
        let mut order: Vec<usize> = (0..exact.len()).collect();
        let by_remainder = |x: &usize, y: &usize| exact[*y].1.cmp(&exact[*x].1).then(x.cmp(y));
        if rest < order.len() {
            order.select_nth_unstable_by(rest, by_remainder);
        }
        for k in order.into_iter().take(rest) {
            exact[k].0 += 1;
        }
    }
    for (&i, (amount, _)) in indexes.iter().zip(exact) {
        push(out, Target::Line(i), amount);
    }
}

/// Buy `buy`, get `get`: every targeted unit, worth its line's left amount split evenly over the line's
/// quantity (cumulatively exact, as [`crate::tax::cumulative_share`] splits: `left mod quantity` units worth
/// one more than the others), sorted by worth high to low then line; in each full group of `buy + get`
/// consecutive units the last `get` are free, and each line is discounted what its free units are worth.
///
/// Units of one line and one worth are interchangeable, so they are walked as runs (at most two per line),
/// never one by one: the cost is the lines', whatever the quantities.
fn buy_get(buy: u128, get: u128, indexes: &[usize], lines: &[EvalLine], left: &[i64], out: &mut Vec<(Target, i64)>) {
    let group = buy + get;
    if get == 0 {
        return;
    }
    // (worth of a unit, position in `indexes`, units)
    let mut runs: Vec<(i128, usize, u128)> = Vec::with_capacity(indexes.len() * 2);
    for (k, &i) in indexes.iter().enumerate() {
        let quantity = u128::from(lines[i].quantity);
        if quantity == 0 {
            continue;
        }
        let l = u128::try_from(left[i]).unwrap_or(0);
        let (each, more) = (l / quantity, l % quantity);
        let each = i128::try_from(each).unwrap_or(0);
        if more > 0 {
            runs.push((each + 1, k, more));
        }
        runs.push((each, k, quantity - more));
    }
    // (worth, position) is unique per run: a line has at most one run of each worth.
    runs.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let units: u128 = runs.iter().map(|r| r.2).sum();
    let grouped = units / group * group;
    // Free units among the first `x` (x within the full groups).
    let free_before = |x: u128| x / group * get + (x % group).saturating_sub(buy);
    let mut discount = vec![0i128; indexes.len()];
    let mut start = 0u128;
    for (worth, k, count) in runs {
        let end = start + count;
        let free = free_before(end.min(grouped)) - free_before(start.min(grouped));
        discount[k] += worth * i128::try_from(free).unwrap_or(0);
        start = end;
    }
    for (k, amount) in discount.into_iter().enumerate() {
        push(out, Target::Line(indexes[k]), amount);
    }
}

/// The best combinable set of `pool` (each with what it takes alone; in application order: class, then canonical
/// order), in application order. Every subset whose members pairwise combine is weighed by a depth-first walk
/// that applies one member at a time on what the ones before it left; a member that would take nothing is not
/// added (the set without it is the same and smaller). Best: the largest total, then the fewest promotions,
/// then the smallest list of canonical indexes. The empty set is the start.
///
/// What a promotion takes alone bounds what it takes in any set (every rule takes less from less: a percent,
/// a fixed amount, a minimum, the free units of a sorted list, a shipping), so a branch whose total plus what
/// the rest could take alone falls short of the best so far is not walked. The bound only cuts branches that
/// cannot reach the best total, so the answer is the one the full walk gives.
fn best_set<'a, 'p>(
    pool: &[(&'a Prepared<'p>, i128)],
    lines: &[EvalLine],
    left: &[i64],
    ship_left: &[i64],
) -> Vec<&'a Prepared<'p>> {
    let n = pool.len().min(MAX_SEARCHED);
    let compatible: Vec<u32> = (0..n)
        .map(|a| {
            (0..n)
                .filter(|&b| a != b && pool[a].0.promotion.combines(pool[b].0.promotion))
                .fold(0u32, |mask, b| mask | (1 << b))
        })
        .collect();
    let mut search = Search { pool: &pool[..n], compatible, lines, best: (0, Vec::new()) };
    search.visit(0, &mut Vec::new(), 0, left, ship_left, 0);
    search.best.1.into_iter().map(|k| pool[k].0).collect()
}

struct Search<'s, 'a, 'p> {
    /// The candidates and what each takes alone.
    pool: &'s [(&'a Prepared<'p>, i128)],
    /// Per member of the pool, the mask of those it combines with.
    compatible: Vec<u32>,
    lines: &'s [EvalLine],
    /// The best total so far and its members (positions in the pool, ascending).
    best: (i128, Vec<usize>),
}

impl Search<'_, '_, '_> {
    fn visit(&mut self, from: usize, set: &mut Vec<usize>, mask: u32, left: &[i64], ship_left: &[i64], total: i128) {
        self.consider(set, total);
        // What each later candidate that combines with the whole set could add at most, summed from the end.
        let mut reach = vec![0i128; self.pool.len() + 1];
        for next in (from..self.pool.len()).rev() {
            let fits = self.compatible[next] & mask == mask;
            reach[next] = reach[next + 1] + if fits { self.pool[next].1 } else { 0 };
        }
        let mut out = Vec::new();
        for (next, could) in (from..).zip(&reach[from..self.pool.len()]) {
            if total + could < self.best.0 {
                break; // nor can any later start reach it: their reach is smaller still
            }
            if self.compatible[next] & mask != mask {
                continue;
            }
            let discount = shares(self.pool[next].0, self.lines, left, ship_left, &mut out);
            if discount <= 0 {
                continue;
            }
            let (mut left, mut ship_left) = (left.to_vec(), ship_left.to_vec());
            take(&out, &mut left, &mut ship_left);
            set.push(next);
            self.visit(next + 1, set, mask | (1 << next), &left, &ship_left, total + discount);
            set.pop();
        }
    }

    fn consider(&mut self, set: &[usize], total: i128) {
        let (best_total, best) = &self.best;
        let better = match total.cmp(best_total).then(best.len().cmp(&set.len())) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => {
                let canon = |members: &[usize]| {
                    let mut c: Vec<usize> = members.iter().map(|&k| self.pool[k].0.canon).collect();
                    c.sort_unstable();
                    c
                };
                canon(set) < canon(best)
            }
        };
        if better {
            self.best = (total, set.to_vec());
        }
    }
}

/// Crockford's base32 alphabet: no I, L, O or U, so a code read aloud or retyped is not mistaken.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// `count` new single-use codes: `prefix` (normalized, at most 16 characters, may be empty) followed by 10
/// characters of Crockford base32 from the operating system's CSPRNG (50 bits), distinct within the batch.
pub fn generate_codes(prefix: &str, count: u32) -> Result<Vec<String>> {
    use rand::RngCore;
    if count == 0 || count > MAX_CODES_PER_BATCH {
        return Err(DomainError::validation("count", format!("must be within 1..={MAX_CODES_PER_BATCH}")));
    }
    let prefix = prefix.trim().to_ascii_uppercase();
    let prefix_ok =
        prefix.len() <= MAX_CODE_PREFIX && prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !prefix_ok {
        return Err(DomainError::validation(
            "prefix",
            format!("must be at most {MAX_CODE_PREFIX} letters, digits, '-' or '_'"),
        ));
    }
    let wanted = usize::try_from(count).unwrap_or(usize::MAX);
    let mut seen = std::collections::HashSet::with_capacity(wanted);
    let mut codes = Vec::with_capacity(wanted);
    while codes.len() < wanted {
        let mut bytes = [0u8; 8];
        rand::rngs::OsRng.try_fill_bytes(&mut bytes).map_err(DomainError::unexpected)?;
        let bits = u64::from_le_bytes(bytes);
        let mut code = String::with_capacity(prefix.len() + GENERATED_CODE_CHARS);
        code.push_str(&prefix);
        for k in 0..GENERATED_CODE_CHARS {
            let digit = (bits >> (5 * k)) & 0x1f;
            code.push(char::from(CROCKFORD[usize::try_from(digit).unwrap_or(0)]));
        }
        if seen.insert(code.clone()) {
            codes.push(code);
        }
    }
    Ok(codes)
}
