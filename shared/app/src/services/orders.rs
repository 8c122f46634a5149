//! Order use cases after checkout: the owner reads and lists orders, cancels before shipment (voiding the
//! authorization and returning the stock) and requests a return (a guest reads and cancels with the order's
//! token, `X-Order-Token`, instead of signing in); each seller lists their parts, ships their
//! lines with a tracking number (capturing exactly those lines' amount), marks them delivered, and approves
//! returns (refunding through the provider and restocking, or not). Notifications go through the queue.
//!
//! Side effects on the provider carry idempotency keys derived from the order and seller, and each is
//! recorded as an order event only after it succeeded, so a retried request finishes what a failed one began.
//! Shipment and cancellation exclude each other before any provider call: a shipment first records that it
//! began (`shipping_started`), a cancellation is only legal on a `confirmed` order, and both are writes
//! conditional on the order's version. Whatever money a cancelled order still has at the provider goes back:
//! the hold is voided and anything captured is refunded, each once by its key.

use crate::ports::{
    CustomerOrders, FlashSaleReader, FlashTicketStore, NotificationSink, OrderEventPublisher, OrderReader, OrderWriter,
    ParcelIndex, PaymentLedger, PaymentProvider, ReservationStore, SellerOrders, SoldStockReturns,
};
use crate::services::cart::CallerResolver;
use crate::services::checkout::update_order;
use chrono::{DateTime, Utc};
use commerce_domain::auth::Caller;
use commerce_domain::catalog::{Page, PageLimit};
use commerce_domain::error::ErrorCode;
use commerce_domain::error::{DomainError, Result};
use commerce_domain::ids::OrderId;
use commerce_domain::inventory::returns::{units_of_lines, SoldReturn};
use commerce_domain::inventory::{Allocation, ReservationStatus};
use commerce_domain::money::Money;
use commerce_domain::order::{
    Actor, NotificationKind, Order, OrderAccess, OrderEventKind, OrderNotification, OrderStatus, OrderSummary,
    RefundLine, SellerOrderView,
};
use commerce_domain::payment::Payment;
use commerce_domain::tracking::{Carrier, Parcel};
use serde::Deserialize;

/// `POST /v1/seller/orders/{order_id}/ship`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShipRequest {
    pub tracking_number: String,
    /// `ups`, `fedex`, `usps`, `dhl` (tracking link built, carrier webhook accepted) or `other` (the default).
    #[serde(default)]
    pub carrier: Option<Carrier>,
    /// Only with carrier `other`: the tracking page shoppers follow (https).
    #[serde(default)]
    pub tracking_url: Option<String>,
}

/// `POST /v1/orders/{order_id}/return`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReturnRequest {
    #[serde(default)]
    pub reason: Option<String>,
}

/// `POST /v1/seller/orders/{order_id}/return/approve`: whether the returned goods go back to stock.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveReturnRequest {
    pub restock: bool,
}

/// `POST /v1/seller/orders/{order_id}/refunds`: units of the seller's lines, and/or the part's shipping, given
/// back (a goodwill or partial refund; the goods are not returned to stock).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    #[serde(default)]
    pub lines: Vec<RefundLine>,
    #[serde(default)]
    pub shipping: bool,
    #[serde(default)]
    pub reason: Option<String>,
}

/// A signed-in caller's access to orders.
pub fn signed_in(caller: &Caller) -> OrderAccess {
    OrderAccess { user_id: Some(caller.user_id.clone()), admin: caller.is_admin(), order_token: None }
}

/// Who is asking about an order on the routes guests use too: the optional bearer token (verified here, since
/// those routes have no authorizer; one that does not verify is 401) and the optional `X-Order-Token`.
#[tracing::instrument(skip_all)]
pub async fn order_access(
    resolver: &impl CallerResolver,
    authorization: Option<&str>,
    order_token: Option<String>,
) -> Result<OrderAccess> {
    let caller = resolver.resolve(authorization).await?;
    let mut access = caller.as_ref().map(signed_in).unwrap_or_default();
    access.order_token = order_token.filter(|t| !t.is_empty());
    Ok(access)
}

/// The order and who acts on it, if `access` proves a right to it (see [`Order::authorize`]); anyone else
/// gets 404, never a hint that it exists.
#[tracing::instrument(skip_all, fields(order_id = %order_id))]
pub async fn owned_order(
    orders: &impl OrderReader,
    access: &OrderAccess,
    order_id: &OrderId,
) -> Result<(Order, Actor)> {
    if access.is_empty() {
        return Err(DomainError::not_found("order"));
    }
    let order = orders.get_order(order_id).await?.ok_or_else(|| DomainError::not_found("order"))?;
    let actor = order.authorize(access)?;
    Ok((order, actor))
}

/// An order as its owner sees it, with our record of its payment as its payment block (serialized as
/// `Order::view`).
#[derive(Debug, Clone)]
pub struct OrderDetails {
    order: Order,
    payment: Option<Payment>,
}

impl OrderDetails {
    pub fn new(order: Order, payment: Option<Payment>) -> Self {
        Self { order, payment }
    }

    pub fn order(&self) -> &Order {
        &self.order
    }
}

impl serde::Serialize for OrderDetails {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.order.view(self.payment.as_ref()).serialize(serializer)
    }
}

/// The order's view for its owner (or the holder of its token), with its payment, as JSON.
#[tracing::instrument(skip_all, fields(order_id = %order_id))]
pub async fn get_order(
    orders: &(impl OrderReader + PaymentLedger),
    access: &OrderAccess,
    order_id: &OrderId,
) -> Result<OrderDetails> {
    let (order, _) = owned_order(orders, access, order_id).await?;
    let payment = orders.payment_for_order(order_id).await?;
    Ok(OrderDetails::new(order, payment))
}

/// The caller's orders, newest first.
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
pub async fn list_my_orders(
    orders: &impl CustomerOrders,
    caller: &Caller,
    limit: PageLimit,
    cursor: Option<&str>,
) -> Result<Page<OrderSummary>> {
    orders.list_customer_orders(&caller.user_id, limit, cursor).await
}

/// The seller's parts of orders, newest first.
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
pub async fn list_seller_orders(
    orders: &impl SellerOrders,
    caller: &Caller,
    limit: PageLimit,
    cursor: Option<&str>,
) -> Result<Page<SellerOrderView>> {
    caller.require_seller()?;
    orders.list_seller_orders(&caller.user_id, limit, cursor).await
}

/// Returns the order's sold units to stock, once per (order, `reason`); `skus` limits it to some lines (a
/// bundle line's units are its components, as reserved).
/// Units committed through the order's reservation leave `sold` for on hand (one transaction with the
/// (order, reason) marker). A flash-sale unit goes back to its sale while the sale is live (the ticket's
/// state makes that once) and, once the sale is reconciled into inventory, back on hand from `flash_sold`.
async fn restock<I, F>(inventory: &I, flash: &F, order: &Order, reason: &str, skus: Option<&[String]>) -> Result<()>
where
    I: ReservationStore + SoldStockReturns,
    F: FlashTicketStore + FlashSaleReader,
{
    let now = Utc::now();
    if let Some(ticket_id) = &order.header().flash_ticket_id {
        return return_flash_unit(inventory, flash, order, ticket_id, reason, now).await;
    }
    let Some(reservation) = inventory.get_reservation(order.id()).await? else {
        return Ok(());
    };
    if reservation.status != ReservationStatus::Committed {
        return Ok(());
    }
    let lines: Vec<Allocation> = match skus {
        None => reservation.allocations,
        Some(skus) => units_of_lines(&reservation, skus),
    };
    if lines.is_empty() {
        return Ok(());
    }
    let request = SoldReturn { order_id: order.id().to_owned(), reason: reason.to_owned(), lines, flash: false };
    let applied = inventory.return_sold(&request, now).await?;
    tracing::info!(order_id = %order.id(), reason, applied, "sold units returned to stock");
    Ok(())
}

async fn return_flash_unit<I, F>(
    inventory: &I,
    flash: &F,
    order: &Order,
    ticket_id: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<()>
where
    I: SoldStockReturns,
    F: FlashTicketStore + FlashSaleReader,
{
    match crate::services::flash_sale::release_hold(flash, ticket_id, order.id(), now).await {
        Ok(()) => {
            tracing::info!(order_id = %order.id(), reason, "flash unit returned to its sale");
            Ok(())
        }
        Err(DomainError::Conflict { code: ErrorCode::SaleReconciled, .. }) => {
            let ticket = flash.get_ticket(ticket_id).await?.ok_or_else(|| DomainError::not_found("flash ticket"))?;
            let sale = flash.get_sale(&ticket.sale_id).await?.ok_or_else(|| DomainError::not_found("flash sale"))?;
            let line = Allocation { sku: sale.sku, warehouse_id: sale.warehouse_id, quantity: 1 };
            let request = SoldReturn {
                order_id: order.id().to_owned(),
                reason: reason.to_owned(),
                lines: vec![line],
                flash: true,
            };
            let applied = inventory.return_sold(&request, now).await?;
            tracing::info!(order_id = %order.id(), reason, applied, "flash unit returned to stock");
            Ok(())
        }
        Err(err) => Err(err),
    }
}

/// What cancelling an order and approving a return touch: the orders (with their payment records), the
/// provider, the stock and flash-sale units that go back, and the order events.
pub struct RestockPorts<'a, O, P, I, F, Q> {
    pub orders: &'a O,
    pub provider: &'a P,
    pub inventory: &'a I,
    pub flash: &'a F,
    pub publisher: &'a Q,
}

impl<O, P, I, F, Q> Clone for RestockPorts<'_, O, P, I, F, Q> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<O, P, I, F, Q> Copy for RestockPorts<'_, O, P, I, F, Q> {}

/// What a seller's shipment and partial refunds talk to: the orders (with their payment records), the payment
/// provider and the order events queue.
pub struct PaymentDeps<O, P, Q> {
    pub orders: O,
    pub provider: P,
    pub events: Q,
}

/// Publishes that `amount` of `seller`'s part of `order` was refunded (the order's last event).
async fn publish_refund(
    publisher: &impl OrderEventPublisher,
    order: &Order,
    seller: &str,
    amount: Money,
) -> Result<()> {
    let notification = OrderNotification::new(
        NotificationKind::OrderRefunded,
        order,
        order.version(),
        Some(seller.to_owned()),
        Some(amount),
    );
    publisher.publish(&notification).await
}

/// What the order changes that give stock and money back (cancel, approve a return) talk to.
pub struct RestockingDeps<O, I, F, P, Q> {
    /// Orders and their payment records.
    pub orders: O,
    /// Reservations and sold stock.
    pub inventory: I,
    /// Flash-sale tickets and sales: where the unit of a flash-sale order goes back.
    pub flash: F,
    pub provider: P,
    pub events: Q,
}

impl<O, I, F, P, Q> RestockingDeps<O, I, F, P, Q> {
    /// The ports, borrowed.
    pub fn ports(&self) -> RestockPorts<'_, O, P, I, F, Q> {
        RestockPorts {
            orders: &self.orders,
            provider: &self.provider,
            inventory: &self.inventory,
            flash: &self.flash,
            publisher: &self.events,
        }
    }
}

/// The order changes that give stock and money back, as the cancel-order and approve-return handlers call them.
pub trait Restocking: Send + Sync {
    /// [`cancel_order`].
    fn cancel(
        &self,
        access: &OrderAccess,
        order_id: &OrderId,
        now: DateTime<Utc>,
    ) -> impl std::future::Future<Output = Result<OrderDetails>> + Send;
    /// [`approve_return`].
    fn approve_return(
        &self,
        caller: &Caller,
        order_id: &OrderId,
        request: ApproveReturnRequest,
        now: DateTime<Utc>,
    ) -> impl std::future::Future<Output = Result<SellerOrderView>> + Send;
}

impl<O, I, F, P, Q> Restocking for RestockingDeps<O, I, F, P, Q>
where
    O: OrderReader + OrderWriter + PaymentLedger,
    I: ReservationStore + SoldStockReturns,
    F: FlashTicketStore + FlashSaleReader,
    P: PaymentProvider,
    Q: OrderEventPublisher,
{
    async fn cancel(&self, access: &OrderAccess, order_id: &OrderId, now: DateTime<Utc>) -> Result<OrderDetails> {
        cancel_order(self.ports(), access, order_id, now).await
    }

    async fn approve_return(
        &self,
        caller: &Caller,
        order_id: &OrderId,
        request: ApproveReturnRequest,
        now: DateTime<Utc>,
    ) -> Result<SellerOrderView> {
        approve_return(self.ports(), caller, order_id, request, now).await
    }
}

/// The provider idempotency key of the refund of whatever was captured on an order that is cancelled.
pub fn cancel_refund_key(order_id: &str) -> String {
    format!("refund-{order_id}-cancel")
}

/// Gives back the money of a cancelled order: voids the hold (key `void-<order>`) and refunds anything
/// captured (key `refund-<order>-cancel`), so no cancelled order keeps money, and a repeat moves none twice.
async fn release_payment(
    provider: &impl PaymentProvider,
    ledger: &impl PaymentLedger,
    order_id: &OrderId,
    now: DateTime<Utc>,
) -> Result<Option<Payment>> {
    let payment = match crate::services::checkout::void_payment(provider, ledger, order_id, now).await {
        // Our record said the hold was open, but the provider had captured: ask the provider.
        Err(DomainError::Conflict { code: ErrorCode::PaymentNotVoidable, .. }) => {
            provider.find_for_order(order_id).await?
        }
        other => other?,
    };
    let Some(payment) = payment else {
        return Ok(None);
    };
    let kept = payment.captured - payment.refunded;
    if kept <= 0 {
        return Ok(Some(payment));
    }
    let amount = Money::new(kept, payment.currency());
    let refunded = provider.refund(&payment.payment_id, amount, &cancel_refund_key(order_id)).await?;
    ledger.record_payment(&refunded, now).await?;
    tracing::warn!(order_id = %order_id, amount = kept, "captured money of a cancelled order refunded");
    Ok(Some(refunded))
}

/// Cancels a confirmed order none of whose shipments has begun: records the cancellation first (a write
/// conditional on the order's version, so no shipment can begin, nor capture, after it), then voids the
/// authorization (refunding anything captured) and returns the stock. Repeating it finishes what is left.
#[tracing::instrument(skip_all, fields(order_id = %order_id))]
pub async fn cancel_order<O, P, I, F, Q>(
    ports: RestockPorts<'_, O, P, I, F, Q>,
    access: &OrderAccess,
    order_id: &OrderId,
    now: DateTime<Utc>,
) -> Result<OrderDetails>
where
    O: OrderReader + OrderWriter + PaymentLedger,
    P: PaymentProvider,
    I: ReservationStore + SoldStockReturns,
    F: FlashTicketStore + FlashSaleReader,
    Q: OrderEventPublisher,
{
    let RestockPorts { orders, provider, inventory, flash, publisher } = ports;
    let ledger = orders;
    let (_, who) = owned_order(orders, access, order_id).await?;
    // The promotions' uses go back in the same write as the cancellation (or, after a write that stopped
    // before them, with the repeat), once.
    let order = update_order(orders, order_id, |order| {
        let mut changed = false;
        if order.status() != OrderStatus::Cancelled {
            order.record(OrderEventKind::Cancelled, who.clone(), None, now)?;
            changed = true;
        }
        Ok(crate::services::promotions::restore(order, now)? || changed)
    })
    .await?;
    let payment = release_payment(provider, ledger, order_id, now).await?;
    restock(inventory, flash, &order, "cancel", None).await?;
    let seq = order.events().iter().find(|e| e.kind == OrderEventKind::Cancelled).map_or(order.version(), |e| e.seq);
    publisher.publish(&OrderNotification::new(NotificationKind::OrderCancelled, &order, seq, None, None)).await?;
    Ok(OrderDetails::new(order, payment))
}

/// The owner asks to return a delivered order.
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id, order_id = %order_id))]
pub async fn request_return(
    orders: &(impl OrderReader + OrderWriter + PaymentLedger),
    publisher: &impl OrderEventPublisher,
    caller: &Caller,
    order_id: &OrderId,
    request: ReturnRequest,
    now: DateTime<Utc>,
) -> Result<OrderDetails> {
    if request.reason.as_ref().is_some_and(|r| r.chars().count() > 500) {
        return Err(DomainError::validation("reason", "must be at most 500 characters"));
    }
    let (_, who) = owned_order(orders, &signed_in(caller), order_id).await?;
    let order = update_order(orders, order_id, |order| {
        if order.status() == OrderStatus::ReturnRequested {
            return Ok(false);
        }
        order.record(OrderEventKind::ReturnRequested, who.clone(), request.reason.clone(), now)?;
        Ok(true)
    })
    .await?;
    // Also when it was requested before: that request may have stopped before publishing (same notification id).
    if let Some(seq) = order.events().iter().find(|e| e.kind == OrderEventKind::ReturnRequested).map(|e| e.seq) {
        let notification = OrderNotification::new(NotificationKind::ReturnRequested, &order, seq, None, None);
        publisher.publish(&notification).await?;
    }
    let payment = orders.payment_for_order(order_id).await?;
    Ok(OrderDetails::new(order, payment))
}

/// The order if the calling seller has lines in it (admins may act for any seller); 404 otherwise.
async fn seller_order(orders: &impl OrderReader, caller: &Caller, order_id: &OrderId) -> Result<Order> {
    caller.require_seller()?;
    let order = orders.get_order(order_id).await?.ok_or_else(|| DomainError::not_found("order"))?;
    if order.seller_part(&caller.user_id).is_none() || order.status() == OrderStatus::Pending {
        return Err(DomainError::not_found("order"));
    }
    Ok(order)
}

/// The provider idempotency key of a seller's capture.
pub fn capture_key(order_id: &str, seller_id: &str) -> String {
    format!("capture-{order_id}-{seller_id}")
}

/// Whether the provider refused a capture outright, so that nothing was captured (a timeout, a 5xx or any
/// other error leaves that unknown).
fn capture_refused(err: &DomainError) -> bool {
    matches!(
        err,
        DomainError::PaymentDeclined { .. }
            | DomainError::Validation { .. }
            | DomainError::Conflict { code: ErrorCode::PaymentNotCapturable, .. }
    )
}

/// A seller ships their lines, in three steps: records that the shipment began (one write conditional on the
/// order's version: from then on the order cannot be cancelled), captures exactly the seller part's total
/// (lines, shipping and tax), then records the shipment. A retry with the same tracking number finishes a
/// shipment that stopped anywhere in between (the capture's key replays its first outcome); a capture the
/// provider refuses aborts the shipment, which leaves the order as it was before (cancellable again).
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id, order_id = %order_id))]
pub async fn ship<O, P, Q>(
    orders: &O,
    provider: &P,
    publisher: &Q,
    caller: &Caller,
    order_id: &OrderId,
    request: ShipRequest,
    now: DateTime<Utc>,
) -> Result<SellerOrderView>
where
    O: OrderReader + OrderWriter + PaymentLedger + ParcelIndex,
    P: PaymentProvider,
    Q: OrderEventPublisher,
{
    let ledger = orders;
    let parcel =
        Parcel::new(request.carrier.unwrap_or_default(), &request.tracking_number, request.tracking_url.as_deref())?;
    let tracking = parcel.tracking_number.clone();
    let seller = caller.user_id.clone();
    let current = seller_order(orders, caller, order_id).await?;
    let resumed = current.shipment(&seller).is_some_and(|(t, _)| t == tracking)
        || current.shipping(&seller) == Some(tracking.as_str());
    if parcel.carrier.has_webhook() && !resumed {
        // Before the shipment begins, so that the carrier's updates always find it.
        orders.index_parcel(&parcel, order_id, &seller).await?;
    }
    let order = update_order(orders, order_id, |order| {
        let done = order.shipment(&seller).is_some_and(|(existing, _)| existing == tracking);
        if done || order.shipping(&seller) == Some(tracking.as_str()) {
            return Ok(false);
        }
        let kind = OrderEventKind::shipping_started(&seller, &parcel);
        order.record(kind, Actor::seller(&seller), None, now)?;
        Ok(true)
    })
    .await?;
    if order.shipment(&seller).is_some() {
        return order.seller_view(&seller).ok_or_else(|| DomainError::not_found("order"));
    }
    let part = order.seller_part(&seller).ok_or_else(|| DomainError::not_found("order"))?;
    let payment_id = order.payment_id().ok_or_else(|| DomainError::unexpected("confirmed order without payment"))?;
    let last = order.is_last_capture(&seller);
    let payment = match provider.capture(payment_id, part.totals.total, last, &capture_key(order_id, &seller)).await {
        Ok(payment) => payment,
        Err(err) => {
            if capture_refused(&err) {
                let reason = err.error_type().to_owned();
                update_order(orders, order_id, |order| {
                    if order.shipping(&seller).is_none() {
                        return Ok(false);
                    }
                    let kind = OrderEventKind::ShippingAborted { seller_id: seller.clone() };
                    order.record(kind, Actor::seller(&seller), Some(reason.clone()), now)?;
                    Ok(true)
                })
                .await?;
                tracing::warn!(order_id = %order_id, seller_id = %seller, error = %err, "capture refused: shipment aborted");
            }
            return Err(err);
        }
    };
    ledger.record_payment(&payment, now).await?;
    let order = update_order(orders, order_id, |order| {
        if order.shipment(&seller).is_some() {
            return Ok(false);
        }
        let kind = OrderEventKind::Shipped {
            seller_id: seller.clone(),
            tracking_number: tracking.clone(),
            captured: part.totals.total,
        };
        order.record(kind, Actor::seller(&seller), None, now)?;
        Ok(true)
    })
    .await?;
    let seq = order.version();
    let notification = OrderNotification::new(
        NotificationKind::OrderShipped,
        &order,
        seq,
        Some(seller.clone()),
        Some(part.totals.total),
    );
    publisher.publish(&notification).await?;
    tracing::info!(order_id = %order_id, seller_id = %seller, amount = part.totals.total.amount, "lines shipped and captured");
    order.seller_view(&seller).ok_or_else(|| DomainError::not_found("order"))
}

/// A seller marks their shipped lines delivered.
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id, order_id = %order_id))]
pub async fn deliver(
    orders: &(impl OrderReader + OrderWriter),
    publisher: &impl OrderEventPublisher,
    caller: &Caller,
    order_id: &OrderId,
    now: DateTime<Utc>,
) -> Result<SellerOrderView> {
    let seller = caller.user_id.clone();
    seller_order(orders, caller, order_id).await?;
    let order = update_order(orders, order_id, |order| {
        if order.is_delivered(&seller) {
            return Ok(false);
        }
        order.record(OrderEventKind::Delivered { seller_id: seller.clone() }, Actor::seller(&seller), None, now)?;
        Ok(true)
    })
    .await?;
    publish_delivered(publisher, &order, &seller).await?;
    order.seller_view(&seller).ok_or_else(|| DomainError::not_found("order"))
}

/// Publishes a seller part's delivery: its notification id comes from the `delivered` event, so a retry (of
/// the request, or of a write that applied before its answer was lost) publishes the same notification.
pub async fn publish_delivered(publisher: &impl OrderEventPublisher, order: &Order, seller: &str) -> Result<()> {
    let seq = order.events().iter().find_map(|e| match &e.kind {
        OrderEventKind::Delivered { seller_id } if seller_id == seller => Some(e.seq),
        _ => None,
    });
    let Some(seq) = seq else {
        return Ok(());
    };
    let notification =
        OrderNotification::new(NotificationKind::OrderDelivered, order, seq, Some(seller.to_owned()), None);
    publisher.publish(&notification).await
}

/// The provider idempotency key of a seller's refund.
pub fn refund_key(order_id: &str, seller_id: &str) -> String {
    format!("refund-{order_id}-{seller_id}")
}

/// A refund request under the caller's `Idempotency-Key` header (required).
#[derive(Debug, Clone)]
pub struct KeyedRefund<'a> {
    pub request: RefundRequest,
    pub idempotency_key: Option<&'a str>,
}

/// A seller gives back part of their shipped part: units of lines and/or its shipping, each line's share of
/// what the shopper paid (tax included), as `Order::partial_refund` computes it from the frozen lines. The
/// refund is recorded first (one write conditional on the order's version, so two refunds of the same units
/// cannot both pass), then the provider is asked under a key derived from the caller's required
/// `Idempotency-Key`; a retry with the key asks again (the provider replays its first answer) and changes
/// nothing else, the key with another request is 422 `idempotency_key_reused`.
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id, order_id = %order_id))]
pub async fn refund_part<O, P, Q>(
    orders: &O,
    provider: &P,
    publisher: &Q,
    caller: &Caller,
    order_id: &OrderId,
    keyed: KeyedRefund<'_>,
    now: DateTime<Utc>,
) -> Result<SellerOrderView>
where
    O: OrderReader + OrderWriter + PaymentLedger,
    P: PaymentProvider,
    Q: OrderEventPublisher,
{
    let KeyedRefund { request, idempotency_key } = keyed;
    let key = idempotency_key.unwrap_or_default();
    commerce_domain::idempotency::validate_key(key)
        .map_err(|reason| DomainError::invalid_parameter("Idempotency-Key", reason))?;
    if request.reason.as_ref().is_some_and(|r| r.chars().count() > 500) {
        return Err(DomainError::validation("reason", "must be at most 500 characters"));
    }
    let seller = caller.user_id.clone();
    seller_order(orders, caller, order_id).await?;
    let scoped = commerce_domain::idempotency::scoped_key("refund", &seller, key);
    let provider_key =
        format!("{}-{}", refund_key(order_id, &seller), commerce_domain::idempotency::key_digest(&scoped));
    let mut placed = None;
    let order = update_order(orders, order_id, |order| {
        if let Some((lines, shipping)) = order.partial_refund_under(&seller, &provider_key) {
            if lines != request.lines.as_slice() || shipping != request.shipping {
                return Err(DomainError::conflict(ErrorCode::IdempotencyKeyReused, "the key named another refund"));
            }
            return Ok(false);
        }
        let (amount, tax) = order.partial_refund(&seller, &request.lines, request.shipping)?;
        let kind = OrderEventKind::PartlyRefunded {
            seller_id: seller.clone(),
            lines: request.lines.clone(),
            shipping: request.shipping,
            amount,
            tax,
            key: provider_key.clone(),
        };
        order.record(kind, Actor::seller(&seller), request.reason.clone(), now)?;
        placed = Some(amount);
        Ok(true)
    })
    .await?;
    let amount = order
        .events()
        .iter()
        .find_map(|e| match &e.kind {
            OrderEventKind::PartlyRefunded { key, amount, .. } if *key == provider_key => Some(*amount),
            _ => None,
        })
        .ok_or_else(|| DomainError::unexpected("a recorded refund is missing"))?;
    let payment_id = order.payment_id().ok_or_else(|| DomainError::unexpected("order without payment"))?;
    let payment = provider.refund(payment_id, amount, &provider_key).await?;
    orders.record_payment(&payment, now).await?;
    if placed.is_some() {
        publish_refund(publisher, &order, &seller, amount).await?;
    }
    tracing::info!(order_id = %order_id, seller_id = %seller, amount = amount.amount, "part refunded");
    order.seller_view(&seller).ok_or_else(|| DomainError::not_found("order"))
}

/// A seller approves the return of their lines: records it, refunds what was captured for them, and
/// returns the units to stock if the seller says so.
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id, order_id = %order_id))]
pub async fn approve_return<O, P, I, F, Q>(
    ports: RestockPorts<'_, O, P, I, F, Q>,
    caller: &Caller,
    order_id: &OrderId,
    request: ApproveReturnRequest,
    now: DateTime<Utc>,
) -> Result<SellerOrderView>
where
    O: OrderReader + OrderWriter + PaymentLedger,
    P: PaymentProvider,
    I: ReservationStore + SoldStockReturns,
    F: FlashTicketStore + FlashSaleReader,
    Q: OrderEventPublisher,
{
    let RestockPorts { orders, provider, inventory, flash, publisher } = ports;
    let ledger = orders;
    let seller = caller.user_id.clone();
    seller_order(orders, caller, order_id).await?;
    // The last seller's approval makes the order fully returned: its promotions' uses go back with it, once.
    let order = update_order(orders, order_id, |order| {
        let mut changed = false;
        if order.returned(&seller).is_none() {
            let kind = OrderEventKind::Returned { seller_id: seller.clone(), restocked: request.restock };
            order.record(kind, Actor::seller(&seller), None, now)?;
            changed = true;
        }
        Ok(crate::services::promotions::restore(order, now)? || changed)
    })
    .await?;
    // The customer hears of the approval (once: the notification's id is the return's event), then the refund.
    let returned = order.events().iter().find_map(|e| match &e.kind {
        OrderEventKind::Returned { seller_id, .. } if *seller_id == seller => Some(e.seq),
        _ => None,
    });
    if let Some(seq) = returned {
        let approved =
            OrderNotification::new(NotificationKind::ReturnApproved, &order, seq, Some(seller.clone()), None);
        publisher.publish(&approved).await?;
    }
    if order.refunded(&seller).is_none() {
        // What the capture still holds: partial refunds recorded before this return are not refunded again.
        let rest = order.refundable(&seller);
        if rest.amount > 0 {
            let payment_id = order.payment_id().ok_or_else(|| DomainError::unexpected("order without payment"))?;
            let payment = provider.refund(payment_id, rest, &refund_key(order_id, &seller)).await?;
            ledger.record_payment(&payment, now).await?;
        }
        let order = update_order(orders, order_id, |order| {
            if order.refunded(&seller).is_some() {
                return Ok(false);
            }
            let kind = OrderEventKind::Refunded { seller_id: seller.clone(), amount: rest };
            order.record(kind, Actor::seller(&seller), None, now)?;
            Ok(true)
        })
        .await?;
        publish_refund(publisher, &order, &seller, rest).await?;
    }
    if order.returned(&seller) == Some(true) {
        let skus: Vec<String> =
            order.seller_part(&seller).map(|p| p.lines.into_iter().map(|l| l.sku).collect()).unwrap_or_default();
        restock(inventory, flash, &order, &format!("return-{seller}"), Some(&skus)).await?;
    }
    let order = orders.get_order(order_id).await?.ok_or_else(|| DomainError::not_found("order"))?;
    order.seller_view(&seller).ok_or_else(|| DomainError::not_found("order"))
}

/// Delivers one notification from the queue; duplicates are recognised and dropped.
#[tracing::instrument(skip_all)]
pub async fn deliver_notification(sink: &impl NotificationSink, notification: &OrderNotification) -> Result<bool> {
    let first = sink.deliver(notification).await?;
    tracing::info!(
        notification_id = %notification.notification_id,
        kind = ?notification.kind,
        duplicate = !first,
        "notification delivered"
    );
    Ok(first)
}
