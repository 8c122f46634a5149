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

use crate::auth::Caller;
use crate::domain::catalog::{Page, PageLimit};
use crate::domain::inventory::returns::{units_of_lines, SoldReturn};
use crate::domain::inventory::{Allocation, ReservationStatus};
use crate::domain::money::Money;
use crate::domain::order::{
    Actor, NotificationKind, Order, OrderAccess, OrderEventKind, OrderNotification, OrderStatus, OrderSummary,
    SellerOrderView,
};
use crate::domain::payment::Payment;
use crate::error::{DomainError, Result};
use crate::ports::{
    CustomerOrders, FlashSaleReader, FlashTicketStore, NotificationSink, OrderEventPublisher, OrderReader, OrderWriter,
    PaymentLedger, PaymentProvider, ReservationStore, SellerOrders, SoldStockReturns,
};
use crate::services::cart::CallerResolver;
use crate::services::checkout::update_order;
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// `POST /v1/seller/orders/{order_id}/ship`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShipRequest {
    pub tracking_number: String,
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

/// A signed-in caller's access to orders.
pub fn signed_in(caller: &Caller) -> OrderAccess {
    OrderAccess { user_id: Some(caller.user_id.clone()), admin: caller.is_admin(), order_token: None }
}

/// Who is asking about an order on the routes guests use too: the optional bearer token (verified here, since
/// those routes have no authorizer; one that does not verify is 401) and the optional `X-Order-Token`.
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
pub async fn owned_order(orders: &impl OrderReader, access: &OrderAccess, order_id: &str) -> Result<(Order, Actor)> {
    if access.is_empty() || !crate::domain::ids::is_valid("ord", order_id) {
        return Err(DomainError::not_found("order"));
    }
    let order = orders.get_order(order_id).await?.ok_or_else(|| DomainError::not_found("order"))?;
    let actor = order.authorize(access)?;
    Ok((order, actor))
}

/// The owner's view of `order` as JSON, with `payment` (our record of it) as its payment block.
fn order_json(order: &Order, payment: Option<&Payment>) -> Result<serde_json::Value> {
    serde_json::to_value(order.view(payment)).map_err(DomainError::unexpected)
}

/// The order's view for its owner (or the holder of its token), with its payment, as JSON.
pub async fn get_order(
    orders: &(impl OrderReader + PaymentLedger),
    access: &OrderAccess,
    order_id: &str,
) -> Result<serde_json::Value> {
    let (order, _) = owned_order(orders, access, order_id).await?;
    let payment = orders.payment_for_order(order_id).await?;
    order_json(&order, payment.as_ref())
}

/// The caller's orders, newest first.
pub async fn list_my_orders(
    orders: &impl CustomerOrders,
    caller: &Caller,
    limit: PageLimit,
    cursor: Option<&str>,
) -> Result<Page<OrderSummary>> {
    orders.list_customer_orders(&caller.user_id, limit, cursor).await
}

/// The seller's parts of orders, newest first.
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
        Err(DomainError::Conflict { code: "sale_reconciled", .. }) => {
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

/// The order changes that give stock and money back, as the cancel-order and approve-return handlers call them.
pub trait Restocking: Send + Sync {
    /// [`cancel_order`].
    fn cancel(
        &self,
        access: &OrderAccess,
        order_id: &str,
        now: DateTime<Utc>,
    ) -> impl std::future::Future<Output = Result<serde_json::Value>> + Send;
    /// [`approve_return`].
    fn approve_return(
        &self,
        caller: &Caller,
        order_id: &str,
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
    async fn cancel(&self, access: &OrderAccess, order_id: &str, now: DateTime<Utc>) -> Result<serde_json::Value> {
        let d = self;
        cancel_order(&d.orders, &d.provider, &d.orders, &d.inventory, &d.flash, &d.events, access, order_id, now).await
    }

    async fn approve_return(
        &self,
        caller: &Caller,
        order_id: &str,
        request: ApproveReturnRequest,
        now: DateTime<Utc>,
    ) -> Result<SellerOrderView> {
        let d = self;
        approve_return(
            &d.orders,
            &d.provider,
            &d.orders,
            &d.inventory,
            &d.flash,
            &d.events,
            caller,
            order_id,
            request,
            now,
        )
        .await
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
    order_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<Payment>> {
    let payment = match crate::services::checkout::void_payment(provider, ledger, order_id, now).await {
        // Our record said the hold was open, but the provider had captured: ask the provider.
        Err(DomainError::Conflict { code: "payment_not_voidable", .. }) => provider.find_for_order(order_id).await?,
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
    tracing::warn!(order_id, amount = kept, "captured money of a cancelled order refunded");
    Ok(Some(refunded))
}

/// Cancels a confirmed order none of whose shipments has begun: records the cancellation first (a write
/// conditional on the order's version, so no shipment can begin, nor capture, after it), then voids the
/// authorization (refunding anything captured) and returns the stock. Repeating it finishes what is left.
#[allow(clippy::too_many_arguments)]
pub async fn cancel_order<O, P, L, I, F, Q>(
    orders: &O,
    provider: &P,
    ledger: &L,
    inventory: &I,
    flash: &F,
    publisher: &Q,
    access: &OrderAccess,
    order_id: &str,
    now: DateTime<Utc>,
) -> Result<serde_json::Value>
where
    O: OrderReader + OrderWriter,
    P: PaymentProvider,
    L: PaymentLedger,
    I: ReservationStore + SoldStockReturns,
    F: FlashTicketStore + FlashSaleReader,
    Q: OrderEventPublisher,
{
    let (_, who) = owned_order(orders, access, order_id).await?;
    let order = update_order(orders, order_id, |order| {
        if order.status() == OrderStatus::Cancelled {
            return Ok(false);
        }
        order.record(OrderEventKind::Cancelled, who.clone(), None, now)?;
        Ok(true)
    })
    .await?;
    let payment = release_payment(provider, ledger, order_id, now).await?;
    restock(inventory, flash, &order, "cancel", None).await?;
    let seq = order.events().iter().find(|e| e.kind == OrderEventKind::Cancelled).map_or(order.version(), |e| e.seq);
    publisher.publish(&OrderNotification::new(NotificationKind::OrderCancelled, &order, seq, None, None)).await?;
    order_json(&order, payment.as_ref())
}

/// The owner asks to return a delivered order.
pub async fn request_return(
    orders: &(impl OrderReader + OrderWriter + PaymentLedger),
    caller: &Caller,
    order_id: &str,
    request: ReturnRequest,
    now: DateTime<Utc>,
) -> Result<serde_json::Value> {
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
    let payment = orders.payment_for_order(order_id).await?;
    order_json(&order, payment.as_ref())
}

/// The order if the calling seller has lines in it (admins may act for any seller); 404 otherwise.
async fn seller_order(orders: &impl OrderReader, caller: &Caller, order_id: &str) -> Result<Order> {
    caller.require_seller()?;
    if !crate::domain::ids::is_valid("ord", order_id) {
        return Err(DomainError::not_found("order"));
    }
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
            | DomainError::Conflict { code: "payment_not_capturable", .. }
    )
}

/// A seller ships their lines, in three steps: records that the shipment began (one write conditional on the
/// order's version: from then on the order cannot be cancelled), captures exactly the seller's subtotal, then
/// records the shipment. A retry with the same tracking number finishes a shipment that stopped anywhere in
/// between (the capture's key replays its first outcome); a capture the provider refuses aborts the shipment,
/// which leaves the order as it was before (cancellable again).
#[allow(clippy::too_many_arguments)]
pub async fn ship<O, P, L, Q>(
    orders: &O,
    provider: &P,
    ledger: &L,
    publisher: &Q,
    caller: &Caller,
    order_id: &str,
    request: ShipRequest,
    now: DateTime<Utc>,
) -> Result<SellerOrderView>
where
    O: OrderReader + OrderWriter,
    P: PaymentProvider,
    L: PaymentLedger,
    Q: OrderEventPublisher,
{
    let tracking = request.tracking_number.trim().to_owned();
    if tracking.is_empty() || tracking.len() > 100 {
        return Err(DomainError::validation("tracking_number", "must be 1 to 100 characters"));
    }
    let seller = caller.user_id.clone();
    seller_order(orders, caller, order_id).await?;
    let order = update_order(orders, order_id, |order| {
        let done = order.shipment(&seller).is_some_and(|(existing, _)| existing == tracking);
        if done || order.shipping(&seller) == Some(tracking.as_str()) {
            return Ok(false);
        }
        let kind = OrderEventKind::ShippingStarted { seller_id: seller.clone(), tracking_number: tracking.clone() };
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
    let payment = match provider.capture(payment_id, part.subtotal, last, &capture_key(order_id, &seller)).await {
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
                tracing::warn!(order_id, seller_id = %seller, error = %err, "capture refused: shipment aborted");
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
            captured: part.subtotal,
        };
        order.record(kind, Actor::seller(&seller), None, now)?;
        Ok(true)
    })
    .await?;
    let seq = order.version();
    let notification =
        OrderNotification::new(NotificationKind::OrderShipped, &order, seq, Some(seller.clone()), Some(part.subtotal));
    publisher.publish(&notification).await?;
    tracing::info!(order_id, seller_id = %seller, amount = part.subtotal.amount, "lines shipped and captured");
    order.seller_view(&seller).ok_or_else(|| DomainError::not_found("order"))
}

/// A seller marks their shipped lines delivered.
pub async fn deliver(
    orders: &(impl OrderReader + OrderWriter),
    caller: &Caller,
    order_id: &str,
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
    order.seller_view(&seller).ok_or_else(|| DomainError::not_found("order"))
}

/// The provider idempotency key of a seller's refund.
pub fn refund_key(order_id: &str, seller_id: &str) -> String {
    format!("refund-{order_id}-{seller_id}")
}

/// A seller approves the return of their lines: records it, refunds what was captured for them, and
/// returns the units to stock if the seller says so.
#[allow(clippy::too_many_arguments)]
pub async fn approve_return<O, P, L, I, F, Q>(
    orders: &O,
    provider: &P,
    ledger: &L,
    inventory: &I,
    flash: &F,
    publisher: &Q,
    caller: &Caller,
    order_id: &str,
    request: ApproveReturnRequest,
    now: DateTime<Utc>,
) -> Result<SellerOrderView>
where
    O: OrderReader + OrderWriter,
    P: PaymentProvider,
    L: PaymentLedger,
    I: ReservationStore + SoldStockReturns,
    F: FlashTicketStore + FlashSaleReader,
    Q: OrderEventPublisher,
{
    let seller = caller.user_id.clone();
    seller_order(orders, caller, order_id).await?;
    let order = update_order(orders, order_id, |order| {
        if order.returned(&seller).is_some() {
            return Ok(false);
        }
        let kind = OrderEventKind::Returned { seller_id: seller.clone(), restocked: request.restock };
        order.record(kind, Actor::seller(&seller), None, now)?;
        Ok(true)
    })
    .await?;
    if order.refunded(&seller).is_none() {
        let (_, captured) =
            order.shipment(&seller).ok_or_else(|| DomainError::unexpected("returned without shipment"))?;
        let payment_id = order.payment_id().ok_or_else(|| DomainError::unexpected("order without payment"))?;
        let payment = provider.refund(payment_id, captured, &refund_key(order_id, &seller)).await?;
        ledger.record_payment(&payment, now).await?;
        let order = update_order(orders, order_id, |order| {
            if order.refunded(&seller).is_some() {
                return Ok(false);
            }
            let kind = OrderEventKind::Refunded { seller_id: seller.clone(), amount: captured };
            order.record(kind, Actor::seller(&seller), None, now)?;
            Ok(true)
        })
        .await?;
        let notification = OrderNotification::new(
            NotificationKind::OrderRefunded,
            &order,
            order.version(),
            Some(seller.clone()),
            Some(captured),
        );
        publisher.publish(&notification).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::catalog::testing::{demo_store, DEMO_SELLERS};
    use crate::adapters::inventory::memory::InMemoryInventory;
    use crate::adapters::orders::memory::{InMemoryOrders, InMemoryPayments};
    use crate::auth::Role;
    use crate::domain::flash_sale::{FlashSale, Gate, Ticket, TicketStatus};
    use crate::domain::inventory::reservation::{ReleaseReason, ReserveOutcome};
    use crate::domain::inventory::Reservation;
    use crate::domain::money::{Currency, Money};
    use crate::domain::order::{Customer, OrderLine};
    use crate::domain::payment::{AuthorizeRequest, Payment, PaymentStatus};
    use crate::ports::FinishOutcome;
    use std::sync::Mutex;

    /// Everything cancel and ship talk to, in memory, around the demo orders.
    struct Shop {
        orders: InMemoryOrders,
        payments: InMemoryPayments,
        inventory: InMemoryInventory,
        flash: crate::adapters::flash_sale::memory::InMemoryFlashSales,
    }

    impl Shop {
        async fn new() -> Self {
            let payments = InMemoryPayments::new();
            let orders = crate::adapters::orders::memory::demo_orders(&payments).await;
            Self { orders, payments, inventory: InMemoryInventory::new(), flash: Default::default() }
        }

        async fn cancel(&self, provider: &impl PaymentProvider) -> Result<serde_json::Value> {
            let owner = signed_in(&Caller { user_id: "shopper-1".into(), email: None, roles: vec![Role::Shopper] });
            let (o, i, f) = (&self.orders, &self.inventory, &self.flash);
            cancel_order(o, provider, o, i, f, o, &owner, "ord_demo-confirmed", Utc::now()).await
        }

        async fn ship(&self, provider: &impl PaymentProvider, seller: &str) -> Result<SellerOrderView> {
            let caller = Caller { user_id: seller.into(), email: None, roles: vec![Role::Seller] };
            let request = ShipRequest { tracking_number: format!("1Z-{seller}") };
            let o = &self.orders;
            ship(o, provider, o, o, &caller, "ord_demo-confirmed", request, Utc::now()).await
        }

        async fn order(&self) -> Order {
            self.orders.get_order("ord_demo-confirmed").await.unwrap().unwrap()
        }

        fn payment(&self) -> Payment {
            self.payments.payments().into_iter().find(|p| p.order_id == "ord_demo-confirmed").unwrap()
        }
    }

    /// The provider of a race, made deterministic: the shopper's cancellation runs right after the capture
    /// took the money and before the shipment could record it.
    struct CancelAfterCapture<'a> {
        shop: &'a Shop,
        cancelled: Mutex<Option<Result<serde_json::Value>>>,
    }

    impl PaymentProvider for CancelAfterCapture<'_> {
        async fn authorize(&self, request: &crate::domain::payment::AuthorizeRequest) -> Result<Payment> {
            self.shop.payments.authorize(request).await
        }
        async fn capture(&self, payment_id: &str, amount: Money, last: bool, key: &str) -> Result<Payment> {
            let payment = self.shop.payments.capture(payment_id, amount, last, key).await?;
            let cancelled = self.shop.cancel(&self.shop.payments).await;
            *self.cancelled.lock().unwrap() = Some(cancelled);
            Ok(payment)
        }
        async fn void(&self, payment_id: &str, key: &str) -> Result<Payment> {
            self.shop.payments.void(payment_id, key).await
        }
        async fn refund(&self, payment_id: &str, amount: Money, key: &str) -> Result<Payment> {
            self.shop.payments.refund(payment_id, amount, key).await
        }
        async fn find_for_order(&self, order_id: &str) -> Result<Option<Payment>> {
            self.shop.payments.find_for_order(order_id).await
        }
    }

    #[tokio::test]
    async fn when_a_cancel_arrives_while_the_capture_runs_should_refuse_it_and_keep_no_cancelled_money() {
        let shop = Shop::new().await;
        let racing = CancelAfterCapture { shop: &shop, cancelled: Mutex::new(None) };
        let shipped = shop.ship(&racing, "seller-1").await;
        let (order, payment) = (shop.order().await, shop.payment());
        assert!(
            order.status() != OrderStatus::Cancelled || payment.captured == payment.refunded,
            "a cancelled order keeps captured money: {payment:?}"
        );
        let cancelled = racing.cancelled.lock().unwrap().take().expect("the cancel ran during the capture");
        assert!(
            matches!(cancelled, Err(DomainError::Conflict { code: "illegal_transition", .. })),
            "the begun shipment excludes the cancel: {cancelled:?}"
        );
        assert_eq!(shipped.unwrap().status, OrderStatus::Shipped);
        assert_eq!((order.status(), payment.captured), (OrderStatus::PartiallyShipped, 3000));
    }

    #[tokio::test]
    async fn when_a_cancelled_order_kept_captured_money_a_repeated_cancel_refunds_it_once() {
        let shop = Shop::new().await;
        // What the race used to leave: seller-1's lines captured, then the order cancelled.
        let payment_id = shop.order().await.payment_id().unwrap().to_owned();
        let usd = Money::new(3000, Currency::USD);
        let captured = shop.payments.capture(&payment_id, usd, false, "capture-ord_demo-confirmed-seller-1").await;
        shop.orders.record_payment(&captured.unwrap(), Utc::now()).await.unwrap();
        let mut order = shop.order().await;
        order.record(OrderEventKind::Cancelled, Actor::shopper("shopper-1"), None, Utc::now()).unwrap();
        shop.orders.insert(order);
        for _ in 0..2 {
            assert_eq!(shop.cancel(&shop.payments).await.unwrap()["status"], "cancelled");
        }
        let payment = shop.payment();
        assert_eq!((payment.status, payment.captured, payment.refunded), (PaymentStatus::Refunded, 3000, 3000));
        let recorded = shop.orders.payment_for_order("ord_demo-confirmed").await.unwrap().unwrap();
        assert_eq!(recorded, payment, "our record follows the refund");
    }

    #[tokio::test]
    async fn when_a_shipment_stopped_after_it_began_a_retry_captures_once_and_ships() {
        let shop = Shop::new().await;
        let mut order = shop.order().await;
        let kind =
            OrderEventKind::ShippingStarted { seller_id: "seller-1".into(), tracking_number: "1Z-seller-1".into() };
        order.record(kind, Actor::seller("seller-1"), None, Utc::now()).unwrap();
        shop.orders.insert(order);
        let refused = shop.cancel(&shop.payments).await;
        assert!(matches!(refused, Err(DomainError::Conflict { code: "illegal_transition", .. })), "{refused:?}");
        // The first attempt's capture went through before the process died.
        let payment_id = shop.order().await.payment_id().unwrap().to_owned();
        let usd = Money::new(3000, Currency::USD);
        shop.payments.capture(&payment_id, usd, false, &capture_key("ord_demo-confirmed", "seller-1")).await.unwrap();
        let view = shop.ship(&shop.payments, "seller-1").await.unwrap();
        assert_eq!((view.status, view.tracking_number.as_deref()), (OrderStatus::Shipped, Some("1Z-seller-1")));
        assert_eq!(shop.payment().captured, 3000, "captured once");
        let other = ShipRequest { tracking_number: "1Z-other".into() };
        let caller = Caller { user_id: "seller-1".into(), email: None, roles: vec![Role::Seller] };
        let o = &shop.orders;
        let again = ship(o, &shop.payments, o, o, &caller, "ord_demo-confirmed", other, Utc::now()).await;
        assert!(matches!(again, Err(DomainError::Conflict { code: "already_shipped", .. })), "{again:?}");
    }

    #[tokio::test]
    async fn when_the_provider_refuses_the_capture_should_abort_the_shipment_and_allow_the_cancel() {
        let shop = Shop::new().await;
        let payment_id = shop.order().await.payment_id().unwrap().to_owned();
        shop.payments.void(&payment_id, "void-elsewhere").await.unwrap();
        let refused = shop.ship(&shop.payments, "seller-1").await;
        assert!(matches!(refused, Err(DomainError::Conflict { code: "payment_not_capturable", .. })), "{refused:?}");
        let order = shop.order().await;
        let kinds: Vec<&OrderEventKind> = order.events().iter().map(|e| &e.kind).collect();
        assert!(matches!(
            kinds[..],
            [.., OrderEventKind::ShippingStarted { .. }, OrderEventKind::ShippingAborted { .. }]
        ));
        assert_eq!(order.status(), OrderStatus::Confirmed);
        assert_eq!(shop.cancel(&shop.payments).await.unwrap()["status"], "cancelled");
        assert_eq!(shop.payment().status, PaymentStatus::Voided);
    }

    /// A flash sale with one purchased ticket, live or already reconciled into inventory.
    struct OneTicketSale {
        sale: FlashSale,
        ticket: Mutex<Ticket>,
        in_shards: Mutex<i64>,
        reconciled: bool,
    }

    impl FlashSaleReader for OneTicketSale {
        async fn get_sale(&self, _: &str) -> Result<Option<FlashSale>> {
            Ok(Some(self.sale.clone()))
        }
        async fn get_gate(&self, _: &str, _: bool) -> Result<Gate> {
            Ok(Gate::default())
        }
    }

    impl FlashTicketStore for OneTicketSale {
        async fn get_ticket(&self, _: &str) -> Result<Option<Ticket>> {
            Ok(Some(self.ticket.lock().unwrap().clone()))
        }
        async fn mark_sold_out(&self, _: &Ticket) -> Result<bool> {
            Ok(false)
        }
        async fn return_unit(&self, ticket: &Ticket, to: TicketStatus, _: DateTime<Utc>) -> Result<bool> {
            let mut stored = self.ticket.lock().unwrap();
            if stored.status != TicketStatus::Purchased || stored.order_id != ticket.order_id {
                return Ok(false);
            }
            if self.reconciled {
                return Err(DomainError::conflict("sale_reconciled", "the sale was already reconciled"));
            }
            stored.status = to;
            *self.in_shards.lock().unwrap() += 1;
            Ok(true)
        }
    }

    /// The in-memory inventory, recording the returns it was asked for and applying each marker once.
    #[derive(Default)]
    struct Returns {
        inner: InMemoryInventory,
        applied: Mutex<Vec<SoldReturn>>,
    }

    impl ReservationStore for Returns {
        async fn try_reserve(&self, reservation: &Reservation) -> Result<ReserveOutcome> {
            self.inner.try_reserve(reservation).await
        }
        async fn get_reservation(&self, id: &str) -> Result<Option<Reservation>> {
            self.inner.get_reservation(id).await
        }
        async fn finish(
            &self,
            reservation: &Reservation,
            to: ReservationStatus,
            reason: Option<ReleaseReason>,
            now: DateTime<Utc>,
        ) -> Result<FinishOutcome> {
            self.inner.finish(reservation, to, reason, now).await
        }
        async fn expired_reservations(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<String>> {
            self.inner.expired_reservations(now, limit).await
        }
    }

    impl SoldStockReturns for Returns {
        async fn return_sold(&self, request: &SoldReturn, _: DateTime<Utc>) -> Result<bool> {
            let mut applied = self.applied.lock().unwrap();
            if applied.iter().any(|r| r.marker_id() == request.marker_id()) {
                return Ok(false);
            }
            applied.push(request.clone());
            Ok(true)
        }
    }

    /// Order `order_id` of `shopper-1` with the one line, placed at `now`.
    fn placed(order_id: &str, line: Result<OrderLine>, now: DateTime<Utc>) -> Order {
        let address = crate::adapters::orders::memory::demo_address();
        let customer = Customer { user_id: Some("shopper-1".into()), email: None };
        let shopper = Actor::shopper("shopper-1");
        Order::place(order_id.into(), customer, String::new(), vec![line.unwrap()], address, shopper, now).unwrap()
    }

    fn flash_order(now: DateTime<Utc>) -> Order {
        let line = OrderLine::new("FLASH-1", "prd_1", "seller-1", "Flash tee", 1, Money::new(100, Currency::USD));
        let mut order = placed("ord_flash", line, now).with_flash_ticket("tkt_1");
        order
            .record(OrderEventKind::Confirmed { payment_id: "pi_1".into() }, Actor::system("checkout"), None, now)
            .unwrap();
        order
    }

    fn sale(reconciled: bool, now: DateTime<Utc>) -> OneTicketSale {
        let sale = FlashSale {
            sale_id: "fls_1".into(),
            seller_id: "seller-1".into(),
            sku: "FLASH-1".into(),
            warehouse_id: "wh_east".into(),
            units: 10,
            price: Money::new(100, Currency::USD),
            starts_at: now,
            ends_at: now,
            per_customer_limit: 1,
            shards: 1,
            hold_seconds: 60,
            created_at: now,
            reconciliation: None,
        };
        let mut ticket = Ticket::waiting("tkt_1".into(), "fls_1".into(), "shopper-1".into(), 1, now);
        ticket.status = TicketStatus::Purchased;
        ticket.shard = Some(0);
        ticket.order_id = Some("ord_flash".into());
        OneTicketSale { sale, ticket: Mutex::new(ticket), in_shards: Mutex::new(0), reconciled }
    }

    async fn cancel_twice(flash: &OneTicketSale, inventory: &Returns) {
        let now = Utc::now();
        let orders = InMemoryOrders::new();
        orders.insert(flash_order(now));
        let provider = InMemoryPayments::new();
        let owner = signed_in(&Caller { user_id: "shopper-1".into(), email: None, roles: vec![Role::Shopper] });
        for _ in 0..2 {
            let view =
                cancel_order(&orders, &provider, &orders, inventory, flash, &orders, &owner, "ord_flash", now).await;
            assert_eq!(view.unwrap()["status"], "cancelled");
        }
    }

    /// Demo bundle `KIT-0096-BUNDLE` (the second demo seller's) sold once under order `ord_kit`, reserved and
    /// committed in `inventory`, captured, shipped, delivered and with a return requested.
    async fn returned_bundle_order(
        orders: &InMemoryOrders,
        provider: &InMemoryPayments,
        inventory: &InMemoryInventory,
    ) {
        use crate::domain::inventory::{OwnerKind, ReservationLine, ReservationPolicy, ReservationRequest};
        use crate::ports::PaymentProvider;
        let now = Utc::now();
        let seller = DEMO_SELLERS[1];
        let request = ReservationRequest {
            reservation_id: "ord_kit".into(),
            lines: vec![ReservationLine { sku: "KIT-0096-BUNDLE".into(), quantity: 1 }],
            ship_to: None,
            owner: OwnerKind::Shopper,
            ttl_seconds: None,
        };
        let policy = ReservationPolicy::default();
        crate::services::inventory::reserve(&demo_store(), inventory, &policy, request, now).await.unwrap();
        crate::services::inventory::commit(inventory, "ord_kit", now).await.unwrap();
        let line =
            OrderLine::new("KIT-0096-BUNDLE", "prd_demo-0096", seller, "Kit", 1, Money::new(5999, Currency::USD));
        let mut order = placed("ord_kit", line, now);
        let authorize = AuthorizeRequest {
            order_id: "ord_kit".into(),
            amount: order.total(),
            payment_method: "pm_card_visa".into(),
            idempotency_key: "authorize-ord_kit".into(),
        };
        let payment = provider.authorize(&authorize).await.unwrap();
        let captured = provider.capture(&payment.payment_id, order.total(), true, "capture-ord_kit").await.unwrap();
        let events = [
            OrderEventKind::Confirmed { payment_id: payment.payment_id.clone() },
            OrderEventKind::Shipped { seller_id: seller.into(), tracking_number: "1Z".into(), captured: order.total() },
            OrderEventKind::Delivered { seller_id: seller.into() },
            OrderEventKind::ReturnRequested,
        ];
        for kind in events {
            order.record(kind, Actor::system("test"), None, now).unwrap();
        }
        orders.record_payment(&captured, now).await.unwrap();
        orders.insert(order);
    }

    #[tokio::test]
    async fn when_a_bundle_return_is_approved_with_restock_should_restock_its_components_once() {
        let (orders, provider, inventory) = (InMemoryOrders::new(), InMemoryPayments::new(), InMemoryInventory::demo());
        let parts = ["KIT-0076-NATURA", "KIT-0056-NATURA"];
        let on_hand = |inventory: &InMemoryInventory| -> Vec<(i64, i64)> {
            let ledger = inventory.ledger();
            parts
                .iter()
                .map(|sku| ledger.levels(sku).iter().fold((0, 0), |(h, s), l| (h + l.on_hand, s + l.sold)))
                .collect()
        };
        let before = on_hand(&inventory);
        returned_bundle_order(&orders, &provider, &inventory).await;
        assert_eq!(
            on_hand(&inventory),
            before.iter().map(|(h, s)| (h - 1, s + 1)).collect::<Vec<_>>(),
            "one of each part sold"
        );
        let seller = Caller { user_id: DEMO_SELLERS[1].into(), email: None, roles: vec![Role::Seller] };
        let flash = crate::adapters::flash_sale::memory::InMemoryFlashSales::default();
        for _ in 0..2 {
            let request = ApproveReturnRequest { restock: true };
            let view = approve_return(
                &orders,
                &provider,
                &orders,
                &inventory,
                &flash,
                &orders,
                &seller,
                "ord_kit",
                request,
                Utc::now(),
            )
            .await
            .unwrap();
            assert_eq!(view.status, OrderStatus::Refunded);
        }
        assert_eq!(on_hand(&inventory), before, "each part back on hand, once");
        assert!(inventory.ledger().violations().is_empty(), "{:?}", inventory.ledger().violations());
    }

    #[tokio::test]
    async fn when_a_live_flash_sale_order_is_cancelled_should_give_the_unit_back_to_the_sale_once() {
        let flash = sale(false, Utc::now());
        let inventory = Returns::default();
        cancel_twice(&flash, &inventory).await;
        assert_eq!(*flash.in_shards.lock().unwrap(), 1, "back in the sale, once");
        assert_eq!(flash.ticket.lock().unwrap().status, TicketStatus::Released);
        assert!(inventory.applied.lock().unwrap().is_empty(), "inventory never reserved it: nothing to release");
    }

    #[tokio::test]
    async fn when_a_reconciled_flash_sale_order_is_cancelled_should_return_the_sold_unit_to_stock_once() {
        let flash = sale(true, Utc::now());
        let inventory = Returns::default();
        cancel_twice(&flash, &inventory).await;
        assert_eq!(*flash.in_shards.lock().unwrap(), 0, "a reconciled sale takes nothing back");
        let applied = inventory.applied.lock().unwrap();
        assert_eq!(applied.len(), 1, "{applied:?}");
        let expected = Allocation { sku: "FLASH-1".into(), warehouse_id: "wh_east".into(), quantity: 1 };
        assert_eq!(
            (applied[0].flash, &applied[0].lines, applied[0].reason.as_str()),
            (true, &vec![expected], "cancel")
        );
    }
}
