//! Checkout: `POST /v1/checkout` prices the cart server-side, writes the pending order and starts the saga
//! (statemachines/checkout.asl.json); the saga's steps and compensations are the functions below. Every step
//! is idempotent, keyed by the order id, so a retried or duplicated step never reserves, authorizes, commits
//! or voids twice. Two executions of one order (Express is at-least-once) are told apart by the order itself:
//! `confirmed` and `compensating` exclude each other, and a compensation that finds the order confirmed
//! undoes nothing. Orders whose saga was lost are ended by `reap_pending_orders`.
//!
//! A flash-sale winner checks out the same way with `flash_ticket_id`: the order is that one unit at the sale's
//! price, the reserve step consumes the won hold instead of reserving stock (the sale already holds the unit,
//! and the sale's reconciliation books it as sold), and the compensation gives the hold back to the sale.

use crate::ports::{
    CartStore, CheckoutStarter, CustomerOrders, FlashHolds, FlashSaleReader, FlashTicketStore, OrderReader,
    OrderWriter, PaymentLedger, PaymentProvider, PendingOrders, PromotionReader, QuoteStore, ReservationStore,
    SkuCatalog, SoldStockReturns,
};
use crate::services::promotions;
use crate::services::quote::{live_quote, PricedCart, PricingTables, ShippingChoice};
use chrono::{DateTime, Utc};
use commerce_domain::cart::CartAccess;
use commerce_domain::catalog::SkuView;
use commerce_domain::error::ErrorCode;
use commerce_domain::error::{DomainError, Result};
use commerce_domain::inventory::returns::SoldReturn;
use commerce_domain::inventory::{Location, OwnerKind, ReservationLine, ReservationPolicy, ReservationRequest};
use commerce_domain::money::Money;
use commerce_domain::order::{
    Actor, ActorKind, Customer, FailureReason, NotificationKind, Order, OrderEventKind, OrderLine, OrderNotification,
    OrderStatus, ShippingAddress,
};
use commerce_domain::payment::{validate_payment_method, AuthorizeRequest, Payment};
use serde::{Deserialize, Serialize};

/// How often an order write is retried after a concurrent change.
const WRITE_ATTEMPTS: u32 = 5;

/// The body of `POST /v1/checkout`. Unknown fields are ignored: prices always come from the server. `cart_id` is
/// required unless `flash_ticket_id` names a won flash-sale hold (then the order is that unit and the cart is
/// not read).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CheckoutRequest {
    #[serde(default)]
    pub cart_id: String,
    pub shipping_address: ShippingAddress,
    pub payment_method: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub flash_ticket_id: Option<String>,
    /// The total the shopper was shown. When the server's total differs (a price rose between cart view and
    /// checkout), the checkout is refused with 409 `price_changed` before anything is reserved or charged.
    #[serde(default)]
    pub expected_total: Option<Money>,
    /// The quote and the methods chosen from it; omitted, each seller part ships by its cheapest table-rate
    /// option for the address.
    #[serde(default)]
    pub shipping: Option<ShippingChoice>,
    /// Promotion codes, applied with the cart's own (at most five in all). A code that does not apply is 422
    /// with its typed code (`promotion_expired`, `promotion_unavailable`, `promotion_not_applicable`).
    #[serde(default)]
    pub promotion_codes: Vec<String>,
}

/// 409 `price_changed` when the shopper expected another total than the order's.
fn check_expected_total(expected: Option<Money>, order: &Order) -> Result<()> {
    match expected {
        Some(expected) if expected != order.total() => {
            Err(DomainError::PriceChanged { expected, actual: order.total() })
        }
        _ => Ok(()),
    }
}

/// The won flash-sale hold an order buys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlashHold {
    pub ticket_id: String,
    pub customer_id: String,
}

/// The 202 answer. A guest's order comes with its `order_token` (for `X-Order-Token`), in the answer of the
/// request that placed the order only: a replay answers without it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutAccepted {
    pub order_id: String,
    pub status: OrderStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_token: Option<String>,
}

/// The saga's input: everything its steps need, fixed at checkout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SagaInput {
    pub order_id: String,
    pub cart_id: String,
    pub lines: Vec<ReservationLine>,
    pub owner: OwnerKind,
    pub payment_method: String,
    pub amount: Money,
    /// Set when the order buys a flash-sale unit; `lines` then holds only what is reserved from stock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flash: Option<FlashHold>,
    /// The shipping address's country and region: stock is taken from the nearest warehouses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ship_to: Option<Location>,
}

/// A saga step's error as the state machine's Catch records it (`ResultPath: $.error`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepError {
    #[serde(rename = "Error", default)]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: String,
}

fn validate_email(email: &str) -> Result<()> {
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        })
        && !email.chars().any(char::is_whitespace);
    if valid {
        Ok(())
    } else {
        Err(DomainError::validation("email", "is not an email address"))
    }
}

/// The one line of a flash-sale order: the sale's SKU at the sale's price, from the caller's won hold.
async fn flash_line(
    catalog: &impl SkuCatalog,
    flash: &(impl FlashSaleReader + FlashTicketStore),
    ticket_id: &str,
    customer_id: &str,
    now: DateTime<Utc>,
) -> Result<(OrderLine, SkuView)> {
    let (_, sale) = crate::services::flash_sale::checkout_hold(flash, flash, ticket_id, customer_id, now).await?;
    let view = catalog
        .variants_by_sku(std::slice::from_ref(&sale.sku))
        .await?
        .into_iter()
        .find(|v| v.sku == sale.sku)
        .ok_or_else(|| DomainError::conflict(ErrorCode::SkuUnavailable, format!("{} is not for sale", sale.sku)))?;
    let line = OrderLine::new(sale.sku, &view.product_id, &view.seller_id, &view.title, 1, sale.price)?;
    Ok((line, view))
}

/// What a checkout request came to. The order id is derived from the request's scoped `Idempotency-Key`, and
/// the order item keeps the request's fingerprint, so the order is the key's idempotency record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckoutOutcome {
    /// This request placed the order and started the saga (202).
    Placed(CheckoutAccepted),
    /// An earlier request with the same key and body placed it: the same answer again (202, replayed). A
    /// still pending order's saga is started again (a no-op for a running one), which finishes a first attempt
    /// that failed after writing the order.
    Replayed(CheckoutAccepted),
    /// The key placed an order from a different request (422 `idempotency_key_reused`).
    KeyReused,
    /// A concurrent request with the same key placed the order while this one ran (409
    /// `idempotency_in_progress`).
    InProgress,
}

/// Writes a new order; `true` if this write created it, `false` if a concurrent one did first.
async fn create(orders: &impl OrderWriter, order: Order) -> Result<(Order, bool)> {
    let stored = orders.create_order(&order).await?;
    let mine = stored.header() == order.header();
    Ok((stored, mine))
}

/// What the checkout use case reads and writes.
pub struct CheckoutPorts<'a, K, C, F, O, S, T, Q, P> {
    pub carts: &'a K,
    pub catalog: &'a C,
    /// Flash-sale tickets and sales, read when the request names a `flash_ticket_id`.
    pub flash: &'a F,
    pub orders: &'a O,
    pub starter: &'a S,
    /// Shipping methods and tax regions.
    pub tables: &'a T,
    /// The cart's quotes, read when the request names one.
    pub quotes: &'a Q,
    /// Promotions, their codes and counts (read only: the saga holds the uses).
    pub promotions: &'a P,
}

/// A checkout request under its `Idempotency-Key`: the order id and the saga's execution name are derived from
/// the scoped key, and the order keeps the body's fingerprint.
#[derive(Debug, Clone)]
pub struct KeyedCheckout {
    pub request: CheckoutRequest,
    pub order_id: String,
    pub fingerprint: String,
    pub execution_name: String,
}

/// Validates the request, prices the cart from the catalog (or, with a flash ticket, the won unit at the
/// sale's price), writes the pending order (once per order id, with the request's `fingerprint`) and starts
/// the saga under `execution_name`. A request whose order exists is answered from it (see `CheckoutOutcome`);
/// a request that fails before the order is written leaves nothing behind, so its retry runs again.
#[tracing::instrument(skip_all, fields(order_id = %keyed.order_id))]
pub async fn start_checkout<K, C, F, O, S, T, Q, P>(
    ports: CheckoutPorts<'_, K, C, F, O, S, T, Q, P>,
    access: &CartAccess,
    caller_email: Option<String>,
    keyed: KeyedCheckout,
    now: DateTime<Utc>,
) -> Result<CheckoutOutcome>
where
    K: CartStore,
    C: SkuCatalog,
    F: FlashSaleReader + FlashTicketStore,
    O: OrderWriter + OrderReader + CustomerOrders,
    S: CheckoutStarter,
    T: PricingTables,
    Q: QuoteStore,
    P: PromotionReader,
{
    let KeyedCheckout { request, order_id, fingerprint, execution_name } = keyed;
    validate_payment_method(&request.payment_method)?;
    request.shipping_address.validate()?;
    let email = checkout_email(access, request.email.clone(), caller_email)?;
    let flash_hold = flash_hold(&request, access)?;
    if flash_hold.is_none() && request.cart_id.is_empty() {
        return Err(DomainError::validation("cart_id", "is required"));
    }
    if flash_hold.is_some() && request.shipping.is_some() {
        return Err(DomainError::validation("shipping", "a flash-sale unit ships by its seller's cheapest option"));
    }
    let mut order_token = None;
    let (order, placed_now) = match (ports.orders.get_order(&order_id).await?, &flash_hold) {
        (Some(existing), _) => (existing, false),
        (None, hold) => {
            let order = match hold {
                Some(hold) => flash_order(&ports, hold, &request, &order_id, email, now).await?,
                None => {
                    let (order, token) = cart_order(&ports, access, &request, &order_id, email, now).await?;
                    order_token = token;
                    order
                }
            };
            let (stored, mine) = create(ports.orders, order.with_request_fingerprint(&fingerprint)).await?;
            if !mine {
                return Ok(raced(&stored, &fingerprint));
            }
            (stored, true)
        }
    };
    if !same_request(&order, &fingerprint) {
        return Ok(CheckoutOutcome::KeyReused);
    }
    if order.status() == OrderStatus::Pending {
        start_saga(ports.starter, &order, flash_hold, request.payment_method, &execution_name).await?;
        tracing::info!(order_id = %order.id(), replayed = !placed_now, "checkout started");
    }
    let accepted = CheckoutAccepted { order_id: order.id().to_owned(), status: OrderStatus::Pending, order_token };
    Ok(if placed_now { CheckoutOutcome::Placed(accepted) } else { CheckoutOutcome::Replayed(accepted) })
}

/// The order's email: the request's, else the signed-in caller's; a guest must give one.
fn checkout_email(access: &CartAccess, requested: Option<String>, caller: Option<String>) -> Result<Option<String>> {
    match (&access.user_id, requested.or(caller)) {
        (_, Some(email)) => {
            validate_email(&email)?;
            Ok(Some(email))
        }
        (None, None) => Err(DomainError::validation("email", "a guest checkout needs an email address")),
        (Some(_), None) => Ok(None),
    }
}

/// The flash ticket the request buys with, which only its signed-in owner may.
fn flash_hold(request: &CheckoutRequest, access: &CartAccess) -> Result<Option<FlashHold>> {
    match (&request.flash_ticket_id, &access.user_id) {
        (Some(_), None) => Err(DomainError::Unauthenticated),
        (Some(ticket_id), Some(user_id)) => {
            Ok(Some(FlashHold { ticket_id: ticket_id.clone(), customer_id: user_id.clone() }))
        }
        (None, _) => Ok(None),
    }
}

/// The order of a won flash-sale unit, at the sale's price, shipped by its seller's cheapest option.
async fn flash_order<K, C, F, O, S, T, Q, P>(
    ports: &CheckoutPorts<'_, K, C, F, O, S, T, Q, P>,
    hold: &FlashHold,
    request: &CheckoutRequest,
    order_id: &str,
    email: Option<String>,
    now: DateTime<Utc>,
) -> Result<Order>
where
    C: SkuCatalog,
    F: FlashSaleReader + FlashTicketStore,
    T: PricingTables,
{
    let (line, view) = flash_line(ports.catalog, ports.flash, &hold.ticket_id, &hold.customer_id, now).await?;
    let address = &request.shipping_address;
    let priced = PricedCart::price(ports.tables, &request.cart_id, vec![line], &[view], address).await?;
    let charges = priced.charges(address, None)?;
    let customer = Customer { user_id: Some(hold.customer_id.clone()), email };
    let order = Order::place(
        order_id.to_owned(),
        customer,
        request.cart_id.clone(),
        priced.lines,
        request.shipping_address.clone(),
        Actor::shopper(&hold.customer_id),
        now,
    )?
    .with_charges(charges)?
    .with_flash_ticket(&hold.ticket_id);
    check_expected_total(request.expected_total, &order)?;
    Ok(order)
}

/// The order of the caller's cart, priced from the catalog, taxed and shipped for the address (by the quote's
/// options when the request names one); a guest's order gets a new order token.
async fn cart_order<K, C, F, O, S, T, Q, P>(
    ports: &CheckoutPorts<'_, K, C, F, O, S, T, Q, P>,
    access: &CartAccess,
    request: &CheckoutRequest,
    order_id: &str,
    email: Option<String>,
    now: DateTime<Utc>,
) -> Result<(Order, Option<String>)>
where
    K: CartStore,
    C: SkuCatalog,
    O: CustomerOrders,
    T: PricingTables,
    Q: QuoteStore,
    P: PromotionReader,
{
    let (lines, views, cart_codes) =
        crate::services::quote::cart_lines(ports.carts, ports.catalog, access, &request.cart_id, now).await?;
    let codes = promotions::normalize_codes(cart_codes.iter().chain(&request.promotion_codes))?;
    let address = &request.shipping_address;
    let priced = PricedCart::price(ports.tables, &request.cart_id, lines, &views, address).await?;
    let mut charges = match &request.shipping {
        Some(choice) => {
            let quote = live_quote(ports.quotes, &request.cart_id, choice, &priced, now).await?;
            priced.charges(address, Some((choice, &quote)))?
        }
        None => priced.charges(address, None)?,
    };
    let buyer =
        promotions::Buyer { user_id: access.user_id.as_deref(), email: email.as_deref(), check_history: true, at: now };
    let discounts = promotions::evaluate(
        ports.promotions,
        ports.orders,
        &priced.lines,
        &views,
        Some(&charges.shipping),
        &codes,
        &buyer,
    )
    .await?;
    discounts.refuse_code_problems()?;
    let (lines, shipping) = discounts.discount(&priced.rules, priced.lines, std::mem::take(&mut charges.shipping))?;
    charges.shipping = shipping;
    let actor = match &access.user_id {
        Some(user_id) => Actor::shopper(user_id),
        None => Actor { kind: ActorKind::Guest, id: request.cart_id.clone() },
    };
    let customer = Customer { user_id: access.user_id.clone(), email };
    let order = Order::place(
        order_id.to_owned(),
        customer,
        request.cart_id.clone(),
        lines,
        request.shipping_address.clone(),
        actor,
        now,
    )?
    .with_charges(charges)?
    .with_promotions(discounts.redemptions)?;
    check_expected_total(request.expected_total, &order)?;
    if access.user_id.is_some() {
        return Ok((order, None));
    }
    let (with_token, token) = order.with_new_order_token();
    Ok((with_token, Some(token)))
}

/// Starts (or starts again: a no-op for a running execution) the saga of a pending order.
async fn start_saga(
    starter: &impl CheckoutStarter,
    order: &Order,
    flash: Option<FlashHold>,
    payment_method: String,
    execution_name: &str,
) -> Result<()> {
    let lines = if flash.is_some() {
        Vec::new()
    } else {
        order.header().lines.iter().map(|l| ReservationLine { sku: l.sku.clone(), quantity: l.quantity }).collect()
    };
    let input = SagaInput {
        order_id: order.id().to_owned(),
        cart_id: order.header().cart_id.clone(),
        lines,
        owner: if order.header().customer.user_id.is_some() { OwnerKind::Shopper } else { OwnerKind::Guest },
        payment_method,
        amount: order.total(),
        flash,
        ship_to: Some(order.header().shipping_address.destination()),
    };
    let value = serde_json::to_value(&input).map_err(DomainError::unexpected)?;
    starter.start_checkout(execution_name, &value).await
}

/// Whether `order` was placed by the request with `fingerprint` (an order stored without one predates the
/// fingerprint and matches).
fn same_request(order: &Order, fingerprint: &str) -> bool {
    order.header().request_fingerprint.as_deref().is_none_or(|f| f == fingerprint)
}

/// The answer when a concurrent request with the same key wrote the order first.
fn raced(stored: &Order, fingerprint: &str) -> CheckoutOutcome {
    if same_request(stored, fingerprint) {
        CheckoutOutcome::InProgress
    } else {
        CheckoutOutcome::KeyReused
    }
}

/// What ReserveStock hands the state machine: the reservation (named by the order id), when it expires (none
/// for a flash-sale unit alone) and the sale a won flash unit came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockReserved {
    pub reservation_id: String,
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flash_sale_id: Option<String>,
}

/// Saga step: hold the stock (the reservation id is the order id) and consume the order's flash-sale hold,
/// if any (idempotent per order: a repeat answers the same unit). With `cart_holds` (reserve at add-to-cart
/// on) the cart's live hold of exactly the order's lines becomes the order's reservation; otherwise the order
/// reserves fresh and the cart's hold is released.
#[tracing::instrument(skip_all, fields(order_id = %input.order_id))]
pub async fn reserve_stock<C, I, F, K>(
    catalog: &C,
    inventory: &I,
    flash: &F,
    cart_holds: Option<&K>,
    policy: &ReservationPolicy,
    input: &SagaInput,
    now: DateTime<Utc>,
) -> Result<StockReserved>
where
    C: SkuCatalog,
    I: crate::services::cart::CartInventory,
    F: FlashSaleReader + FlashTicketStore + FlashHolds,
    K: CartStore,
{
    let mut reserved = StockReserved { reservation_id: input.order_id.clone(), expires_at: None, flash_sale_id: None };
    if !input.lines.is_empty() {
        reserved = reserve_lines(catalog, inventory, cart_holds, policy, input, now).await?;
    }
    if let Some(hold) = &input.flash {
        let unit = crate::services::flash_sale::consume_hold(
            flash,
            flash,
            flash,
            &hold.ticket_id,
            &hold.customer_id,
            &input.order_id,
            now,
        )
        .await?;
        reserved.flash_sale_id = Some(unit.sale_id);
    }
    Ok(reserved)
}

async fn reserve_lines<C, I, K>(
    catalog: &C,
    inventory: &I,
    cart_holds: Option<&K>,
    policy: &ReservationPolicy,
    input: &SagaInput,
    now: DateTime<Utc>,
) -> Result<StockReserved>
where
    C: SkuCatalog,
    I: crate::services::cart::CartInventory,
    K: CartStore,
{
    let request = ReservationRequest {
        reservation_id: input.order_id.clone(),
        lines: input.lines.clone(),
        ship_to: input.ship_to.clone(),
        owner: input.owner,
        ttl_seconds: None,
    };
    let reserved = match cart_holds.filter(|_| !input.cart_id.is_empty()) {
        Some(carts) => {
            crate::services::cart::reserve_for_order(carts, catalog, inventory, policy, request, &input.cart_id, now)
                .await
        }
        None => crate::services::inventory::reserve(catalog, inventory, policy, request, now).await,
    };
    match reserved {
        Ok(reservation) => Ok(StockReserved {
            reservation_id: reservation.reservation_id,
            expires_at: Some(reservation.expires_at),
            flash_sale_id: None,
        }),
        Err(DomainError::Conflict { code: ErrorCode::SkuUnavailable, message }) => {
            Err(DomainError::OutOfStock { sku: message })
        }
        Err(err) => Err(err),
    }
}

/// The provider idempotency key of an order's authorization.
pub fn authorization_key(order_id: &str) -> String {
    format!("authorize-{order_id}")
}

/// Saga step: authorize the total, outside any lock. A retry replays the provider's first outcome. The
/// authorization binds the order to its payment (the payment record, written once: only this call sets
/// the payment id a webhook may then report on); a compensation that finds no record asks the provider
/// (`find_for_order`), which also covers an authorization whose response was lost.
#[tracing::instrument(skip_all, fields(order_id = %input.order_id))]
pub async fn authorize_payment(
    provider: &impl PaymentProvider,
    ledger: &impl PaymentLedger,
    input: &SagaInput,
    now: DateTime<Utc>,
) -> Result<Payment> {
    let request = AuthorizeRequest {
        order_id: input.order_id.clone(),
        amount: input.amount,
        payment_method: input.payment_method.clone(),
        idempotency_key: authorization_key(&input.order_id),
    };
    let payment = provider.authorize(&request).await?;
    ledger.bind_payment(&payment, now).await?;
    tracing::info!(order_id = %input.order_id, payment_id = %payment.payment_id, "payment authorized");
    Ok(payment)
}

/// Saga step: the reserved units become sold. An expired reservation is `Gone` (failure reason `expired`).
/// A consumed flash hold needs nothing here: the sale books its purchased units as sold when it reconciles.
#[tracing::instrument(skip_all, fields(order_id = %input.order_id))]
pub async fn commit_stock(store: &impl ReservationStore, input: &SagaInput, now: DateTime<Utc>) -> Result<()> {
    if input.lines.is_empty() {
        return Ok(());
    }
    crate::services::inventory::commit(store, &input.order_id, now).await.map(|_| ())
}

async fn load(orders: &impl OrderReader, order_id: &str) -> Result<Order> {
    orders.get_order(order_id).await?.ok_or_else(|| DomainError::not_found("order"))
}

/// Applies `change` to the order and appends its events, re-reading after a concurrent change. `change`
/// returns `false` when the order already is as wanted (an idempotent repeat); the writer is then asked to
/// append nothing, which finishes the projections a failed earlier attempt may have left behind.
#[tracing::instrument(skip_all, fields(order_id = %order_id))]
pub async fn update_order<O, F>(orders: &O, order_id: &str, mut change: F) -> Result<Order>
where
    O: OrderReader + OrderWriter,
    F: FnMut(&mut Order) -> Result<bool>,
{
    for _ in 0..WRITE_ATTEMPTS {
        let mut order = load(orders, order_id).await?;
        let version = order.version();
        if !change(&mut order)? {
            orders.append_events(&order, version).await?;
            return Ok(order);
        }
        match orders.append_events(&order, version).await {
            Ok(()) => return Ok(order),
            Err(DomainError::Conflict { code: ErrorCode::ConcurrentUpdate, .. }) => continue,
            Err(err) => return Err(err),
        }
    }
    Err(DomainError::Transient("the order is changing concurrently".into()))
}

/// Saga step: confirm the order with its payment; returns the OrderPlaced notification to publish.
#[tracing::instrument(skip_all, fields(order_id = %order_id, payment_id = %payment_id))]
pub async fn confirm_order(
    orders: &(impl OrderReader + OrderWriter),
    order_id: &str,
    payment_id: &str,
    now: DateTime<Utc>,
) -> Result<OrderNotification> {
    let order = update_order(orders, order_id, |order| {
        if order.payment_id() == Some(payment_id) {
            return Ok(false);
        }
        let kind = OrderEventKind::Confirmed { payment_id: payment_id.to_owned() };
        order.record(kind, Actor::system("checkout"), None, now)?;
        Ok(true)
    })
    .await?;
    let seq = order
        .events()
        .iter()
        .find(|e| matches!(e.kind, OrderEventKind::Confirmed { .. }))
        .map_or(order.version(), |e| e.seq);
    tracing::info!(order_id, "order confirmed");
    Ok(OrderNotification::new(NotificationKind::OrderPlaced, &order, seq, None, Some(order.total())))
}

/// The saga's `$.payment` as the confirm step reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizedPayment {
    pub payment_id: String,
}

/// The confirm step's input: the saga input and the authorization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfirmInput {
    #[serde(flatten)]
    pub saga: SagaInput,
    pub payment: AuthorizedPayment,
}

/// Saga step, the three things that always run together after the authorization: commit the stock (an
/// expired reservation is `Gone`), confirm the order, then take the ordered SKUs out of the cart. The cart is
/// best effort: the order stands whatever happens to it. Every part is a no-op when already done, so a
/// retried step repeats nothing.
#[tracing::instrument(skip_all, fields(order_id = %input.saga.order_id))]
pub async fn commit_and_confirm(
    inventory: &impl ReservationStore,
    orders: &(impl OrderReader + OrderWriter),
    carts: &impl CartStore,
    input: &ConfirmInput,
    now: DateTime<Utc>,
) -> Result<OrderNotification> {
    commit_stock(inventory, &input.saga, now).await?;
    let notification = confirm_order(orders, &input.saga.order_id, &input.payment.payment_id, now).await?;
    let skus: Vec<String> = input.saga.lines.iter().map(|l| l.sku.clone()).collect();
    if let Err(err) = clear_cart(carts, &input.saga.cart_id, &skus, now).await {
        tracing::warn!(order_id = %input.saga.order_id, error = %err, "cart not cleared");
    }
    Ok(notification)
}

/// Saga step: take the ordered SKUs out of the cart (the rest of the cart stays).
#[tracing::instrument(skip_all, fields(cart_id = %cart_id))]
pub async fn clear_cart(carts: &impl CartStore, cart_id: &str, skus: &[String], now: DateTime<Utc>) -> Result<()> {
    if skus.is_empty() || cart_id.is_empty() {
        return Ok(());
    }
    for _ in 0..WRITE_ATTEMPTS {
        let Some(mut cart) = carts.get_cart(cart_id).await? else {
            return Ok(());
        };
        let mut changed = false;
        for sku in skus {
            if cart.lines.contains_key(sku) {
                cart.remove(sku, now)?;
                changed = true;
            }
        }
        // The codes were used by the order (or refused): the next order starts without them.
        if !cart.promotion_codes.is_empty() {
            cart.promotion_codes.clear();
            changed = true;
        }
        if !changed || carts.save_cart(&cart).await? {
            return Ok(());
        }
    }
    Err(DomainError::Transient("the cart is changing concurrently".into()))
}

/// The dedupe scope of committed units a compensation gives back (one marker per order and reason).
pub const CHECKOUT_RETURN: &str = "checkout";

/// Whether the order is given up (compensating, or failed): only then may anything be released or voided.
fn given_up(order: &Order) -> bool {
    match order.status() {
        OrderStatus::Failed => true,
        OrderStatus::Pending => order.compensating(),
        _ => false,
    }
}

/// The first act of every compensation: records `compensating` on a pending order (a conditional append, so
/// it and a confirmation exclude each other). `true` when the order is given up (now or before) and may be
/// compensated; `false` when another execution confirmed it, so this compensation must undo nothing.
#[tracing::instrument(skip_all, fields(order_id = %order_id))]
pub async fn claim_compensation(
    orders: &(impl OrderReader + OrderWriter),
    order_id: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let claimed = update_order(orders, order_id, |order| {
        if order.status() != OrderStatus::Pending || order.compensating() {
            return Ok(false);
        }
        order.record(OrderEventKind::Compensating, Actor::system("checkout"), None, now)?;
        Ok(true)
    })
    .await;
    let order = match claimed {
        Ok(order) => order,
        // No order was ever written under this id, so none can be confirmed: whatever is held under it goes
        // back, as `void_unconfirmed` voids what it finds.
        Err(DomainError::NotFound { .. }) => {
            tracing::warn!(order_id, "compensating an order that was never written: nothing to fence");
            return Ok(true);
        }
        Err(err) => return Err(err),
    };
    let claimed = given_up(&order);
    if !claimed {
        tracing::warn!(order_id, status = order.status().as_str(), "compensation skipped: the order went on");
    }
    Ok(claimed)
}

/// Compensation: claims the order (`claim_compensation`), then gives its stock back: releases the
/// reservation (no effect if never made or already released), or, when the reservation was already committed
/// (the confirmation failed after the commit), returns the committed units to stock once per order; and gives
/// the flash-sale unit, if any, back to its sale. `false` (and nothing touched) when the order went on.
#[tracing::instrument(skip_all, fields(order_id = %order_id))]
pub async fn release_stock<S, F, O>(
    store: &S,
    flash: &F,
    orders: &O,
    order_id: &str,
    hold: Option<&FlashHold>,
    now: DateTime<Utc>,
) -> Result<bool>
where
    S: ReservationStore + SoldStockReturns,
    F: FlashTicketStore,
    O: OrderReader + OrderWriter,
{
    if !claim_compensation(orders, order_id, now).await? {
        return Ok(false);
    }
    let held = match hold {
        Some(hold) => release_flash_hold(flash, order_id, hold, now).await,
        None => Ok(()),
    };
    give_back_stock(store, order_id, now).await?;
    release_promotions(orders, order_id, now).await?;
    held.map(|()| true)
}

/// Gives a failed checkout's held promotion uses back (`promotions_released`, once, with its counts).
async fn release_promotions(
    orders: &(impl OrderReader + OrderWriter),
    order_id: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    match update_order(orders, order_id, |order| promotions::release(order, now)).await {
        Ok(_) | Err(DomainError::NotFound { .. }) => Ok(()),
        Err(err) => Err(err),
    }
}

async fn give_back_stock(
    store: &(impl ReservationStore + SoldStockReturns),
    order_id: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    match crate::services::inventory::release(store, order_id, now).await {
        Ok(_) | Err(DomainError::NotFound { .. }) => Ok(()),
        Err(DomainError::Conflict { code: ErrorCode::ReservationCommitted, .. }) => {
            let reservation =
                store.get_reservation(order_id).await?.ok_or_else(|| DomainError::not_found("reservation"))?;
            let request = SoldReturn {
                order_id: order_id.to_owned(),
                reason: CHECKOUT_RETURN.to_owned(),
                lines: reservation.allocations,
                flash: false,
            };
            let applied = store.return_sold(&request, now).await?;
            tracing::info!(order_id, applied, "committed units of an unconfirmed order returned to stock");
            Ok(())
        }
        Err(err) => Err(err),
    }
}

/// Gives the order's flash-sale unit back to its sale (the next in line may win it). No effect if the hold
/// was never consumed by this order or is already back.
async fn release_flash_hold(
    tickets: &impl FlashTicketStore,
    order_id: &str,
    hold: &FlashHold,
    now: DateTime<Utc>,
) -> Result<()> {
    match crate::services::flash_sale::release_hold(tickets, &hold.ticket_id, order_id, now).await {
        Ok(()) | Err(DomainError::NotFound { .. }) => Ok(()),
        Err(DomainError::Conflict { code: ErrorCode::HoldNotConsumed, .. }) => Ok(()),
        Err(err) => Err(err),
    }
}

/// The provider idempotency key of an order's void.
pub fn void_key(order_id: &str) -> String {
    format!("void-{order_id}")
}

/// Compensation: voids the order's authorization (`void_payment`) only when the order is given up
/// (compensating or failed): a confirmed order keeps its authorization, whichever execution's compensation
/// asks. `None` when nothing was voided.
#[tracing::instrument(skip_all, fields(order_id = %order_id))]
pub async fn void_unconfirmed(
    provider: &impl PaymentProvider,
    ledger: &(impl PaymentLedger + OrderReader),
    order_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<Payment>> {
    if let Some(order) = ledger.get_order(order_id).await? {
        if !given_up(&order) {
            tracing::warn!(order_id, status = order.status().as_str(), "void skipped: the order is not given up");
            return Ok(None);
        }
    }
    void_payment(provider, ledger, order_id, now).await
}

/// Voids whatever authorization the order has, including one whose response was lost.
#[tracing::instrument(skip_all, fields(order_id = %order_id))]
pub async fn void_payment(
    provider: &impl PaymentProvider,
    ledger: &impl PaymentLedger,
    order_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<Payment>> {
    let known = match ledger.payment_for_order(order_id).await? {
        Some(payment) => Some(payment),
        None => provider.find_for_order(order_id).await?,
    };
    let Some(payment) = known else {
        return Ok(None);
    };
    if !payment.status.holds_funds() {
        return Ok(Some(payment));
    }
    let voided = provider.void(&payment.payment_id, &void_key(order_id)).await?;
    ledger.record_payment(&voided, now).await?;
    tracing::info!(order_id, payment_id = %voided.payment_id, "authorization voided");
    Ok(Some(voided))
}

/// Compensation: mark the order failed with the reason the failing step's error names. Only an order this
/// compensation claimed is failed (`compensating`, after its stock went back and its authorization was voided):
/// a pending order nobody claimed is refused (409 `compensation_unclaimed`) and stays pending, listed for the
/// reaper, rather than failed with its units sold and its card held.
#[tracing::instrument(skip_all, fields(order_id = %order_id))]
pub async fn fail_order(
    orders: &(impl OrderReader + OrderWriter),
    order_id: &str,
    error: &StepError,
    now: DateTime<Utc>,
) -> Result<FailureReason> {
    failed_order(orders, order_id, error, now).await.map(|(reason, _)| reason)
}

/// [`fail_order`], then tells the customer when the payment was the reason (the saga's compensation step).
pub async fn fail_order_and_tell(
    orders: &(impl OrderReader + OrderWriter),
    publisher: &impl crate::ports::OrderEventPublisher,
    order_id: &str,
    error: &StepError,
    now: DateTime<Utc>,
) -> Result<FailureReason> {
    let (reason, order) = failed_order(orders, order_id, error, now).await?;
    if let Some(notification) = payment_failed(&order) {
        publisher.publish(&notification).await?;
    }
    Ok(reason)
}

async fn failed_order(
    orders: &(impl OrderReader + OrderWriter),
    order_id: &str,
    error: &StepError,
    now: DateTime<Utc>,
) -> Result<(FailureReason, Order)> {
    let reason = FailureReason::from_error_type(&error.error);
    let order = update_order(orders, order_id, |order| {
        if order.status() != OrderStatus::Pending {
            return Ok(false);
        }
        if !order.compensating() {
            return Err(DomainError::conflict(
                ErrorCode::CompensationUnclaimed,
                "the order was not claimed for compensation; the reaper finishes it",
            ));
        }
        let kind = OrderEventKind::Failed { failure: reason };
        order.record(kind, Actor::system("checkout"), Some(error.error.clone()), now)?;
        Ok(true)
    })
    .await?;
    if order.status() != OrderStatus::Failed {
        tracing::error!(
            order_id,
            status = order.status().as_str(),
            "compensation reached an order that is not pending"
        );
    }
    tracing::info!(order_id, reason = reason.as_str(), "order failed");
    Ok((order.failure().unwrap_or(reason), order))
}

/// The `PaymentFailed` notification of an order that failed because its payment did (a declined card, the
/// provider unreachable); `None` for other failures, which the checkout's caller is answered and nobody is
/// mailed. Its id is the failure's event, so a repeat publishes the same notification.
fn payment_failed(order: &Order) -> Option<OrderNotification> {
    let seq = order.events().iter().find_map(|e| match e.kind {
        OrderEventKind::Failed { failure: FailureReason::PaymentDeclined | FailureReason::PaymentError } => Some(e.seq),
        _ => None,
    })?;
    Some(OrderNotification::new(NotificationKind::PaymentFailed, order, seq, None, None))
}

/// What one run of the pending-order reaper did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReapReport {
    /// Orders compensated and failed as `expired` now.
    pub expired: usize,
    /// Orders listed but no longer pending, or confirmed meanwhile: left as they are.
    pub skipped: usize,
    /// Orders whose compensation failed (left pending for the next run).
    pub failed: usize,
}

/// The error type a reaped order fails with (reason `expired`).
const REAPED: &str = "Gone";

/// The pending-order reaper: every order still pending `bound` after it was placed (longer than any
/// execution may run) has lost its saga (the machine's `TimeoutSeconds` ended it without compensation, or
/// the checkout crashed between writing the order and starting it). Each one is driven to an end through the
/// saga's own compensation: claimed (`compensating`; an order an execution confirms meanwhile is left alone),
/// stock released or committed units returned, flash unit given back, authorization voided, failed as
/// `expired`. At most `limit` orders per run, oldest first; one order's failure does not stop the others.
#[tracing::instrument(skip_all)]
pub async fn reap_pending_orders<O, S, F, P>(
    orders: &O,
    inventory: &S,
    flash: &F,
    provider: &P,
    bound: chrono::Duration,
    limit: usize,
    now: DateTime<Utc>,
) -> Result<ReapReport>
where
    O: PendingOrders + OrderReader + OrderWriter + PaymentLedger,
    S: ReservationStore + SoldStockReturns,
    F: FlashTicketStore,
    P: PaymentProvider,
{
    let mut report = ReapReport::default();
    for order_id in orders.pending_before(now - bound, limit).await? {
        match reap(orders, inventory, flash, provider, &order_id, now).await {
            Ok(true) => report.expired += 1,
            Ok(false) => report.skipped += 1,
            Err(err) => {
                tracing::warn!(order_id, error = %err, "pending order not reaped; left for the next run");
                report.failed += 1;
            }
        }
    }
    Ok(report)
}

async fn reap<O, S, F, P>(
    orders: &O,
    inventory: &S,
    flash: &F,
    provider: &P,
    order_id: &str,
    now: DateTime<Utc>,
) -> Result<bool>
where
    O: OrderReader + OrderWriter + PaymentLedger,
    S: ReservationStore + SoldStockReturns,
    F: FlashTicketStore,
    P: PaymentProvider,
{
    let order = load(orders, order_id).await?;
    if order.status() != OrderStatus::Pending {
        return Ok(false);
    }
    let hold = order.header().flash_ticket_id.as_ref().map(|ticket_id| FlashHold {
        ticket_id: ticket_id.clone(),
        customer_id: order.header().customer.user_id.clone().unwrap_or_default(),
    });
    if !release_stock(inventory, flash, orders, order_id, hold.as_ref(), now).await? {
        return Ok(false);
    }
    void_unconfirmed(provider, orders, order_id, now).await?;
    let error = StepError { error: REAPED.into(), cause: "the order stayed pending past its bound".into() };
    fail_order(orders, order_id, &error, now).await?;
    tracing::info!(order_id, "pending order expired");
    Ok(true)
}

/// Reads a step's input.
pub fn step_input<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| DomainError::MalformedBody(e.to_string()))
}
