//! Promotions: admins manage the platform's, sellers their own (limited to their products); carts and
//! checkouts are priced with them; the checkout saga holds their uses before the payment is authorized.
//!
//! - A promotion is only ever found within its owner's reach: a seller asking for another seller's promotion, or
//!   for a platform one, gets 404 (admins reach every promotion).
//! - Evaluation (`evaluate`) reads the candidates (the codes given, and the automatic promotions of the platform
//!   and of the cart's sellers), what is left of each and the customer's uses, and runs the domain's engine.
//! - The hold (`hold_promotions`) takes one use of each of the order's promotions in one transaction with the
//!   order's `promotions_held`, trying the counter's other shards when one runs dry.

use crate::ports::{CustomerOrders, HoldOutcome, OrderReader, PromotionHolder, PromotionReader, PromotionWriter};
use chrono::{DateTime, Utc};
use commerce_domain::auth::Caller;
use commerce_domain::catalog::{Page, PageLimit, SkuView};
use commerce_domain::error::{DomainError, ErrorCode, Result};
use commerce_domain::ids::PromotionId;
use commerce_domain::money::{Currency, Money};
use commerce_domain::order::{HeldUse, Order, OrderLine, OrderStatus, Redemption};
use commerce_domain::pricing::{self, ShippingLine};
use commerce_domain::promotion::{
    self, Availability, Candidate, DiscountClass, EvalContext, EvalLine, EvalShipping, Evaluation, NewPromotion,
    Promotion, PromotionPatch, PromotionProblem, Scope, Shopper, Usage,
};
use commerce_domain::tax::TaxRules;
use serde::{Deserialize, Serialize};

/// How often a hold re-reads the order or moves to another shard before giving up (`Transient`).
const HOLD_ATTEMPTS: usize = 8;
/// How often a PATCH without `If-Match` re-reads and retries after losing a race.
const UPDATE_ATTEMPTS: usize = 6;
/// Pages of a shopper's orders (100 each, newest first) read to tell a first order; a history longer than that
/// with no confirmed order in it is not taken for a first order.
const FIRST_ORDER_PAGES: usize = 10;

/// Whose promotions the caller manages: the platform's (an admin, on the admin routes) or their own (a seller).
pub fn manager_scope(caller: &Caller, admin_route: bool) -> Result<Scope> {
    if admin_route {
        caller.require_admin()?;
        Ok(Scope::Platform)
    } else {
        caller.require_seller()?;
        Ok(Scope::Seller { seller_id: caller.user_id.clone() })
    }
}

/// Whether a manager of `scope` reaches `promotion`: admins every one, a seller their own.
fn reaches(scope: &Scope, promotion: &Promotion) -> bool {
    matches!(scope, Scope::Platform) || *scope == promotion.scope
}

fn not_found() -> DomainError {
    DomainError::not_found("promotion")
}

/// A promotion as its manager reads it: with its class and, exactly, its uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromotionView {
    #[serde(flatten)]
    pub promotion: Promotion,
    pub class: DiscountClass,
    pub used: u64,
    pub held: u64,
    pub remaining: Option<u64>,
}

impl PromotionView {
    fn of(promotion: Promotion, usage: Usage) -> Self {
        Self { class: promotion.class(), used: usage.used, held: usage.held, remaining: usage.remaining, promotion }
    }
}

/// Creates a promotion of `scope` (a seller's applies to their products only).
#[tracing::instrument(skip_all)]
pub async fn create_promotion(
    writer: &impl PromotionWriter,
    scope: Scope,
    input: NewPromotion,
    now: DateTime<Utc>,
) -> Result<PromotionView> {
    let promotion = input.into_promotion(PromotionId::generate().to_string(), scope, now)?;
    writer.create_promotion(&promotion).await?;
    tracing::info!(promotion_id = %promotion.promotion_id, "promotion created");
    let usage = Usage { remaining: promotion.usage_limit.map(u64::from), ..Usage::default() };
    Ok(PromotionView::of(promotion, usage))
}

/// One promotion with its uses, read exactly (every counter shard, consistently).
#[tracing::instrument(skip_all, fields(promotion_id = %promotion_id))]
pub async fn get_promotion(
    reader: &impl PromotionReader,
    scope: &Scope,
    promotion_id: &PromotionId,
) -> Result<PromotionView> {
    let promotion = reader.get_promotion(promotion_id).await?.filter(|p| reaches(scope, p)).ok_or_else(not_found)?;
    let usage = reader.usage(&promotion).await?;
    Ok(PromotionView::of(promotion, usage))
}

/// A page of the promotions of `scope`, newest first.
pub async fn list_promotions(
    writer: &impl PromotionWriter,
    scope: &Scope,
    limit: PageLimit,
    cursor: Option<&str>,
) -> Result<Page<Promotion>> {
    writer.list_promotions(scope, limit, cursor).await
}

/// Changes a promotion. With `expected_version` (from `If-Match`) a stale version is 409 at once; without it a
/// lost race is retried on fresh data. A usage limit may move between numbers (uses left follow it; lowering it
/// below the uses taken is 422), not to or from unlimited.
#[tracing::instrument(skip_all, fields(promotion_id = %promotion_id))]
pub async fn update_promotion(
    store: &(impl PromotionReader + PromotionWriter),
    scope: &Scope,
    promotion_id: &PromotionId,
    patch: PromotionPatch,
    expected_version: Option<u64>,
    now: DateTime<Utc>,
) -> Result<PromotionView> {
    let attempts = if expected_version.is_some() { 1 } else { UPDATE_ATTEMPTS };
    for _ in 0..attempts {
        let current = store.get_promotion(promotion_id).await?.filter(|p| reaches(scope, p)).ok_or_else(not_found)?;
        if let Some(expected) = expected_version.filter(|v| *v != current.version) {
            return Err(DomainError::conflict(
                ErrorCode::VersionConflict,
                format!("the promotion is at version {}, not {expected}", current.version),
            ));
        }
        let mut next = current.clone();
        next.apply(patch.clone(), now)?;
        if current.usage_limit.is_some() != next.usage_limit.is_some() {
            return Err(DomainError::validation("usage_limit", "cannot change to or from unlimited"));
        }
        match store.replace_promotion(&current, &next).await {
            Ok(()) => {
                let usage = store.usage(&next).await?;
                return Ok(PromotionView::of(next, usage));
            }
            Err(DomainError::Conflict { code: ErrorCode::VersionConflict | ErrorCode::ConcurrentUpdate, .. })
                if expected_version.is_none() => {}
            Err(err) => return Err(err),
        }
    }
    Err(DomainError::conflict(ErrorCode::ConcurrentUpdate, "the promotion keeps changing; try again"))
}

/// The body of `POST .../promotions/{promotion_id}/codes`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NewCodes {
    pub count: u32,
    #[serde(default)]
    pub prefix: String,
}

/// Makes `count` single-use codes of a promotion; codes that collide with existing ones are made again.
#[tracing::instrument(skip_all, fields(promotion_id = %promotion_id))]
pub async fn create_codes(
    store: &(impl PromotionReader + PromotionWriter),
    scope: &Scope,
    promotion_id: &PromotionId,
    request: NewCodes,
) -> Result<Vec<String>> {
    let promotion = store.get_promotion(promotion_id).await?.filter(|p| reaches(scope, p)).ok_or_else(not_found)?;
    let mut stored = Vec::with_capacity(request.count as usize);
    for _ in 0..3 {
        let missing = request.count - u32::try_from(stored.len()).unwrap_or(u32::MAX);
        if missing == 0 {
            break;
        }
        let codes = promotion::generate_codes(&request.prefix, missing)?;
        stored.extend(store.add_codes(&promotion.promotion_id, &codes).await?);
    }
    if stored.len() < request.count as usize {
        return Err(DomainError::Transient("codes kept colliding; try a longer prefix".into()));
    }
    tracing::info!(count = stored.len(), "single-use codes created");
    Ok(stored)
}

/// Who is buying, as evaluation needs it.
#[derive(Debug, Clone, Default)]
pub struct Buyer<'a> {
    pub user_id: Option<&'a str>,
    pub email: Option<&'a str>,
    /// Read the buyer's order history to tell a first order (checkout); a cart read takes any signed-in
    /// shopper's word for it, checkout checks.
    pub check_history: bool,
    /// When they buy: the time windows are judged at it (the caller's one clock reading).
    pub at: DateTime<Utc>,
}

/// The promotions of an evaluation and what the engine made of them.
#[derive(Debug, Clone, Default)]
pub struct Priced {
    pub evaluation: Evaluation,
    /// The applied promotions as the order keeps them.
    pub redemptions: Vec<Redemption>,
    /// Problems of the codes the shopper gave (an automatic promotion that does not apply is no problem).
    pub code_problems: Vec<PromotionProblem>,
}

/// The candidates read for one evaluation.
struct Loaded {
    /// Codes no promotion has (any more).
    unknown: Vec<String>,
    promotions: Vec<Promotion>,
    codes: Vec<Option<String>>,
    single_use: Vec<bool>,
    availability: Vec<Availability>,
}

/// Normalizes and de-duplicates codes (at most `MAX_CODES_PER_CART`).
pub fn normalize_codes<'a>(codes: impl IntoIterator<Item = &'a String>) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for (i, raw) in codes.into_iter().enumerate() {
        let code = promotion::normalize_code(raw)
            .map_err(|_| DomainError::validation(format!("promotion_codes[{i}]"), "is not a promotion code"))?;
        if !out.contains(&code) {
            out.push(code);
        }
    }
    if out.len() > promotion::MAX_CODES_PER_CART {
        return Err(DomainError::validation(
            "promotion_codes",
            format!("at most {} codes at once", promotion::MAX_CODES_PER_CART),
        ));
    }
    Ok(out)
}

async fn load(
    reader: &impl PromotionReader,
    codes: &[String],
    sellers: &[String],
    customer: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Loaded> {
    let mut loaded = Loaded {
        unknown: Vec::new(),
        promotions: Vec::new(),
        codes: Vec::new(),
        single_use: Vec::new(),
        availability: Vec::new(),
    };
    let mut code_taken = Vec::new();
    for code in codes {
        let record = reader.find_code(code).await?;
        let promotion = match &record {
            Some(r) => reader.get_promotion(&r.promotion_id).await?,
            None => None,
        };
        let (Some(record), Some(promotion)) = (record, promotion) else {
            loaded.unknown.push(code.clone());
            continue;
        };
        code_taken.push(record.single_use && record.used_by.is_some());
        loaded.single_use.push(record.single_use);
        loaded.codes.push(Some(code.clone()));
        loaded.promotions.push(promotion);
    }
    let mut automatic = reader.automatic_promotions(sellers).await?;
    automatic.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.promotion_id.cmp(&b.promotion_id)));
    for promotion in automatic.into_iter().filter(|p| p.unavailable_at(now).is_none()).take(promotion::MAX_AUTOMATIC) {
        code_taken.push(false);
        loaded.single_use.push(false);
        loaded.codes.push(None);
        loaded.promotions.push(promotion);
    }
    for (promotion, taken) in loaded.promotions.iter().zip(code_taken) {
        let used_up = taken
            || (promotion.usage_limit.is_some() && reader.usage(promotion).await?.remaining.is_some_and(|r| r == 0));
        let customer_limit_reached = match (promotion.per_customer_limit, customer) {
            (Some(limit), Some(key)) => reader.customer_uses(&promotion.promotion_id, key).await? >= limit,
            _ => false,
        };
        loaded.availability.push(Availability { used_up, customer_limit_reached });
    }
    Ok(loaded)
}

/// Whether the signed-in buyer has no earlier order that was confirmed: every order of theirs is pending or
/// failed. Read page by page until one is not; after `FIRST_ORDER_PAGES` pages the answer is no.
async fn first_order(orders: &impl CustomerOrders, user_id: &str) -> Result<bool> {
    let limit = PageLimit::new(PageLimit::MAX)?;
    let mut cursor: Option<String> = None;
    for _ in 0..FIRST_ORDER_PAGES {
        let page = orders.list_customer_orders(user_id, limit, cursor.as_deref()).await?;
        if page.items.iter().any(|o| !matches!(o.status, OrderStatus::Pending | OrderStatus::Failed)) {
            return Ok(false);
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(true),
        }
    }
    Ok(false)
}

/// Evaluates the codes given and the automatic promotions against priced lines (and shipping, once priced).
pub async fn evaluate(
    reader: &impl PromotionReader,
    orders: &impl CustomerOrders,
    lines: &[OrderLine],
    views: &[SkuView],
    shipping: Option<&[ShippingLine]>,
    codes: &[String],
    buyer: &Buyer<'_>,
) -> Result<Priced> {
    let Some(currency) = lines.first().map(|l| l.unit_price.currency) else {
        return Ok(Priced::default());
    };
    let customer = promotion::customer_key(buyer.user_id, buyer.email).ok();
    let mut sellers: Vec<String> = lines.iter().map(|l| l.seller_id.clone()).collect();
    sellers.sort();
    sellers.dedup();
    let loaded = load(reader, codes, &sellers, customer.as_deref(), buyer.at).await?;
    let wants_history = loaded.promotions.iter().any(|p| p.conditions.first_order);
    let first = match buyer.user_id {
        Some(user_id) if wants_history && buyer.check_history => first_order(orders, user_id).await?,
        Some(_) => true,
        None => false,
    };
    let ctx = EvalContext {
        currency,
        now: buyer.at,
        shopper: Shopper { signed_in: buyer.user_id.is_some(), first_order: first },
        shipping_known: shipping.is_some(),
    };
    let eval_lines: Vec<EvalLine> = lines.iter().map(|l| eval_line(l, views)).collect();
    let eval_shipping: Vec<EvalShipping> = shipping
        .unwrap_or_default()
        .iter()
        .map(|s| EvalShipping { seller_id: s.seller_id.clone(), amount: s.amount.amount })
        .collect();
    let candidates: Vec<Candidate<'_>> = loaded
        .promotions
        .iter()
        .zip(&loaded.codes)
        .zip(&loaded.availability)
        .map(|((promotion, code), availability)| Candidate {
            promotion,
            code: code.clone(),
            availability: *availability,
        })
        .collect();
    let evaluation = promotion::evaluate(&eval_lines, &eval_shipping, &candidates, &ctx);
    let redemptions = evaluation
        .applied
        .iter()
        .filter_map(|applied| {
            let i = loaded.promotions.iter().position(|p| p.promotion_id == applied.promotion_id)?;
            Some(redemption(&loaded.promotions[i], applied, loaded.single_use[i], currency))
        })
        .collect();
    let unknown = loaded.unknown.iter().map(|code| PromotionProblem {
        promotion_id: String::new(),
        code: Some(code.clone()),
        problem: promotion::Problem::NotApplicable,
        reason: "unknown_code".into(),
    });
    let code_problems = unknown.chain(evaluation.problems.iter().filter(|p| p.code.is_some()).cloned()).collect();
    Ok(Priced { evaluation, redemptions, code_problems })
}

fn eval_line(line: &OrderLine, views: &[SkuView]) -> EvalLine {
    let categories = views.iter().find(|v| v.sku == line.sku).map(|v| v.category_path.clone()).unwrap_or_default();
    EvalLine {
        sku: line.sku.clone(),
        product_id: line.product_id.clone(),
        seller_id: line.seller_id.clone(),
        categories,
        quantity: line.quantity,
        unit_price: line.unit_price.amount,
        amount: line.line_total.amount,
    }
}

fn redemption(promotion: &Promotion, applied: &promotion::Applied, single_use: bool, currency: Currency) -> Redemption {
    Redemption {
        promotion_id: promotion.promotion_id.clone(),
        code: applied.code.clone(),
        name: promotion.name.clone(),
        class: applied.class,
        amount: Money::new(applied.amount, currency),
        single_use,
        limited: promotion.usage_limit.is_some(),
        per_customer_limit: promotion.per_customer_limit,
        restore_on_cancel: promotion.restore_on_cancel,
        shards: promotion.shards,
    }
}

impl Priced {
    /// The first problem of a code the shopper gave, as the error a checkout answers.
    pub fn refuse_code_problems(&self) -> Result<()> {
        match self.code_problems.first() {
            Some(problem) => Err(problem.error()),
            None => Ok(()),
        }
    }

    /// `lines` and `shipping` with the evaluation's discounts taken off before tax, taxed again under `rules`.
    pub fn discount(
        &self,
        rules: &TaxRules,
        lines: Vec<OrderLine>,
        shipping: Vec<ShippingLine>,
    ) -> Result<(Vec<OrderLine>, Vec<ShippingLine>)> {
        let lines = lines
            .into_iter()
            .zip(self.evaluation.lines.iter().chain(std::iter::repeat(&Vec::new())))
            .map(|(line, shares)| {
                let class = line.tax_class.clone();
                let line = line.with_discounts(shares.clone());
                let tax = pricing::line_tax(rules, line.line_total.amount, line.discount(), &class)?;
                Ok(line.taxed(class, tax))
            })
            .collect::<Result<Vec<_>>>()?;
        let shipping = shipping
            .into_iter()
            .zip(self.evaluation.shipping.iter().chain(std::iter::repeat(&Vec::new())))
            .map(|(ship, shares)| if shares.is_empty() { Ok(ship) } else { ship.discounted(rules, shares.clone()) })
            .collect::<Result<Vec<_>>>()?;
        Ok((lines, shipping))
    }
}

/// What the hold step reads and writes.
pub trait HoldPorts: OrderReader + PromotionHolder {}
impl<T: OrderReader + PromotionHolder> HoldPorts for T {}

/// Saga step: take one use of each of the order's promotions, with the order's `promotions_held`, in one
/// transaction (the global count on a shard, the customer's count, a single-use code). Idempotent: an order
/// already held is done. A promotion with no use left anywhere, a customer at their limit or a code already
/// taken is `promotion_unavailable` (the saga compensates; nothing is authorized).
#[tracing::instrument(skip_all, fields(order_id = %order_id))]
pub async fn hold_promotions(
    orders: &impl HoldPorts,
    promotions: &impl PromotionReader,
    order_id: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut empty: Vec<(String, u32)> = Vec::new();
    for _ in 0..HOLD_ATTEMPTS {
        let order = orders.get_order(order_id).await?.ok_or_else(|| DomainError::not_found("order"))?;
        if !order.promotions_to_hold() {
            return Ok(());
        }
        let mut uses = Vec::new();
        for r in &order.header().promotions {
            uses.push(HeldUse {
                promotion_id: r.promotion_id.clone(),
                shard: pick_shard(promotions, order_id, r, &empty).await?,
            });
        }
        let expected = order.version();
        let mut next = order.clone();
        next.record(
            commerce_domain::order::OrderEventKind::PromotionsHeld { uses },
            commerce_domain::order::Actor::system("promotions"),
            None,
            now,
        )?;
        match orders.hold_promotions(&next, expected).await? {
            HoldOutcome::Held => {
                tracing::info!(order_id, "promotion uses held");
                return Ok(());
            }
            HoldOutcome::OrderChanged => {}
            HoldOutcome::ShardEmpty { promotion_id, shard } => empty.push((promotion_id, shard)),
            HoldOutcome::Unavailable { promotion_id, reason } => return Err(unavailable(&promotion_id, reason)),
        }
    }
    Err(DomainError::Transient("the promotion counters kept changing".into()))
}

/// The shard a use is taken from: the order's own (a stable digest of its id, so racing checkouts spread over
/// the shards), else another that still has uses; none left anywhere is `promotion_unavailable`.
async fn pick_shard(
    promotions: &impl PromotionReader,
    order_id: &str,
    redemption: &Redemption,
    empty: &[(String, u32)],
) -> Result<u32> {
    let shards = redemption.shards.max(1);
    let home = order_id.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b))) % shards;
    let dry = |k: u32| empty.iter().any(|(p, s)| *p == redemption.promotion_id && *s == k);
    if !dry(home) {
        return Ok(home);
    }
    let open = promotions.shards_with_uses(redemption).await?;
    open.into_iter()
        .filter(|k| !dry(*k))
        .min_by_key(|k| (k + shards - home) % shards)
        .ok_or_else(|| unavailable(&redemption.promotion_id, "usage_limit"))
}

fn unavailable(promotion_id: &str, reason: &str) -> DomainError {
    DomainError::conflict(
        ErrorCode::PromotionUnavailable,
        format!("promotion {promotion_id} is no longer available ({reason})"),
    )
}

/// The order's held uses go back (the checkout failed): `promotions_released` with its counts, once.
pub fn release(order: &mut Order, now: DateTime<Utc>) -> Result<bool> {
    if !order.promotions_to_release() {
        return Ok(false);
    }
    let event = commerce_domain::order::OrderEventKind::PromotionsReleased;
    order.record(event, commerce_domain::order::Actor::system("promotions"), None, now)?;
    Ok(true)
}

/// A cancelled or fully returned order gives its uses back: `promotions_restored`, once.
pub fn restore(order: &mut Order, now: DateTime<Utc>) -> Result<bool> {
    if !order.promotions_to_restore() {
        return Ok(false);
    }
    let event = commerce_domain::order::OrderEventKind::PromotionsRestored;
    order.record(event, commerce_domain::order::Actor::system("promotions"), None, now)?;
    Ok(true)
}

/// Order history for a read that takes a signed-in shopper's word for a first order (a cart read): never asked.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHistory;

impl CustomerOrders for NoHistory {
    async fn list_customer_orders(
        &self,
        _user_id: &str,
        _limit: PageLimit,
        _cursor: Option<&str>,
    ) -> Result<Page<commerce_domain::order::OrderSummary>> {
        Ok(Page { items: Vec::new(), next_cursor: None })
    }
}

/// Cart reads and the cart's codes, with the promotions evaluated.
pub mod cart {
    use super::{evaluate, normalize_codes, Buyer, NoHistory};
    use crate::ports::{CartStore, PromotionReader, SkuCatalog};
    use crate::services::cart::{
        busy, owned_cart, priced_with_views, CallerResolver, CartContext, CartInventory, WRITE_ATTEMPTS,
    };
    use chrono::{DateTime, Utc};
    use commerce_domain::cart::{Cart, CartAccess, CartPromotions, PricedCart};
    use commerce_domain::catalog::SkuView;
    use commerce_domain::error::{DomainError, Result};
    use commerce_domain::ids::CartId;
    use commerce_domain::money::Money;
    use commerce_domain::order::OrderLine;
    use commerce_domain::promotion::{self, Problem};

    /// The cart's lines that can be bought (for sale, in the cart's currency), as order lines.
    fn buyable(cart: &Cart, views: &[SkuView], priced: &PricedCart) -> Result<Vec<OrderLine>> {
        let currency = priced.subtotal.map(|s| s.currency);
        let mut lines = Vec::new();
        for (sku, line) in &cart.lines {
            let Some(view) = views.iter().find(|v| &v.sku == sku && v.is_purchasable()) else { continue };
            if Some(view.price.currency) != currency {
                continue;
            }
            lines.push(OrderLine::new(
                sku.clone(),
                view.product_id.clone(),
                view.seller_id.clone(),
                view.title.clone(),
                line.quantity,
                view.price,
            )?);
        }
        Ok(lines)
    }

    /// `cart` priced, with its promotions: each applied share on its line, the cart's codes' problems.
    pub async fn view<S, C, I, R>(
        ctx: &CartContext<S, C, I, R>,
        promotions: &impl PromotionReader,
        access: &CartAccess,
        cart: &Cart,
        now: DateTime<Utc>,
    ) -> Result<PricedCart>
    where
        S: CartStore,
        C: SkuCatalog,
        I: CartInventory,
        R: CallerResolver,
    {
        let (mut out, views) = priced_with_views(&ctx.catalog, &ctx.stock, cart, &ctx.limits, now).await?;
        let Some(subtotal) = out.subtotal else {
            return Ok(out);
        };
        let lines = buyable(cart, &views, &out)?;
        let codes = normalize_codes(&cart.promotion_codes)?;
        let buyer = Buyer { user_id: access.user_id.as_deref(), email: None, check_history: false, at: now };
        let found = evaluate(promotions, &NoHistory, &lines, &views, None, &codes, &buyer).await?;
        for (line, shares) in lines.iter().zip(&found.evaluation.lines) {
            if let Some(priced_line) = out.lines.iter_mut().find(|l| l.sku == line.sku) {
                priced_line.discounts = shares.clone();
            }
        }
        let discount_total = Money::new(found.evaluation.total(), subtotal.currency);
        out.promotions = Some(CartPromotions {
            codes,
            applied: found.evaluation.applied.clone(),
            pending_shipping: found.evaluation.pending_shipping.clone(),
            problems: found.code_problems.clone(),
            discount_total,
            discounted_subtotal: Money::new(subtotal.amount - discount_total.amount, subtotal.currency),
        });
        Ok(out)
    }

    /// `GET /v1/carts/{cart_id}`: the cart re-priced with its promotions.
    #[tracing::instrument(skip_all, fields(cart_id = %cart_id))]
    pub async fn get<S, C, I, R>(
        ctx: &CartContext<S, C, I, R>,
        promotions: &impl PromotionReader,
        access: &CartAccess,
        cart_id: &CartId,
        now: DateTime<Utc>,
    ) -> Result<PricedCart>
    where
        S: CartStore,
        C: SkuCatalog,
        I: CartInventory,
        R: CallerResolver,
    {
        let cart = owned_cart(&ctx.store, access, cart_id, now).await?;
        view(ctx, promotions, access, &cart, now).await
    }

    /// `PUT /v1/carts/{cart_id}/promotions/{code}`: checks the code and keeps it on the cart, holding nothing.
    /// No promotion with the code: 404. Ended: 409 `promotion_expired`; not started, switched off, used up, a
    /// single-use code already taken: 409 `promotion_unavailable` (neither is kept). A code whose conditions the
    /// cart does not meet yet is kept and shows its problem (`promotion_not_applicable`) until it applies.
    #[tracing::instrument(skip_all, fields(cart_id = %cart_id))]
    pub async fn add_code<S, C, I, R>(
        ctx: &CartContext<S, C, I, R>,
        promotions: &impl PromotionReader,
        access: &CartAccess,
        cart_id: &CartId,
        raw_code: &str,
        now: DateTime<Utc>,
    ) -> Result<PricedCart>
    where
        S: CartStore,
        C: SkuCatalog,
        I: CartInventory,
        R: CallerResolver,
    {
        let code = promotion::normalize_code(raw_code).map_err(|_| DomainError::not_found("promotion"))?;
        let record = promotions.find_code(&code).await?.ok_or_else(|| DomainError::not_found("promotion"))?;
        let found = promotions.get_promotion(&record.promotion_id).await?;
        let promotion = found.ok_or_else(|| DomainError::not_found("promotion"))?;
        let refuse = |problem: Problem, reason: &str| {
            DomainError::conflict(problem.code(), format!("the promotion is not available ({reason})"))
        };
        if let Some((problem, reason)) = promotion.unavailable_at(now) {
            return Err(refuse(problem, reason));
        }
        if record.single_use && record.used_by.is_some() {
            return Err(refuse(Problem::Unavailable, "code_used"));
        }
        if promotion.usage_limit.is_some() && promotions.usage(&promotion).await?.remaining == Some(0) {
            return Err(refuse(Problem::Unavailable, "usage_limit"));
        }
        let promotion_id = promotion.promotion_id.clone();
        let saved = save(ctx, promotions, access, cart_id, now, |cart| cart.add_code(&code, now)).await?;
        tracing::info!(cart_id = %cart_id, promotion_id = %promotion_id, "code on the cart");
        Ok(saved)
    }

    /// `DELETE /v1/carts/{cart_id}/promotions/{code}`: takes the code off the cart (404 if the cart lacks it).
    #[tracing::instrument(skip_all, fields(cart_id = %cart_id))]
    pub async fn remove_code<S, C, I, R>(
        ctx: &CartContext<S, C, I, R>,
        promotions: &impl PromotionReader,
        access: &CartAccess,
        cart_id: &CartId,
        raw_code: &str,
        now: DateTime<Utc>,
    ) -> Result<PricedCart>
    where
        S: CartStore,
        C: SkuCatalog,
        I: CartInventory,
        R: CallerResolver,
    {
        let code = promotion::normalize_code(raw_code).map_err(|_| DomainError::not_found("promotion"))?;
        save(ctx, promotions, access, cart_id, now, |cart| match cart.remove_code(&code, now)? {
            true => Ok(true),
            false => Err(DomainError::not_found("promotion")),
        })
        .await
    }

    /// Applies `edit` to the caller's cart and saves it (again on fresh data after a lost race, `false` when
    /// the edit changed nothing); the cart as it then reads.
    async fn save<S, C, I, R>(
        ctx: &CartContext<S, C, I, R>,
        promotions: &impl PromotionReader,
        access: &CartAccess,
        cart_id: &CartId,
        now: DateTime<Utc>,
        edit: impl Fn(&mut Cart) -> Result<bool>,
    ) -> Result<PricedCart>
    where
        S: CartStore,
        C: SkuCatalog,
        I: CartInventory,
        R: CallerResolver,
    {
        for _ in 0..WRITE_ATTEMPTS {
            let mut cart = owned_cart(&ctx.store, access, cart_id, now).await?;
            if !edit(&mut cart)? || ctx.store.save_cart(&cart).await? {
                return view(ctx, promotions, access, &cart, now).await;
            }
        }
        Err(busy())
    }
}
