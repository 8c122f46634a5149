//! Order use cases after checkout: the owner reads and lists orders, cancels before shipment (voiding the
//! authorization and returning the stock) and requests a return; each seller lists their parts, ships their
//! lines with a tracking number (capturing exactly those lines' amount), marks them delivered, and approves
//! returns (refunding through the provider and restocking, or not). Notifications go through the queue.
//!
//! Side effects on the provider carry idempotency keys derived from the order and seller, and each is
//! recorded as an order event only after it succeeded, so a retried request finishes what a failed one began.

use crate::auth::Caller;
use crate::domain::catalog::{Page, PageLimit};
use crate::domain::inventory::{AdjustmentReason, StockAdjustment};
use crate::domain::order::{
    Actor, ActorKind, NotificationKind, Order, OrderEventKind, OrderNotification, OrderStatus, OrderSummary,
    SellerOrderView,
};
use crate::error::{DomainError, Result};
use crate::ports::{
    CustomerOrders, NotificationSink, OrderEventPublisher, OrderReader, OrderWriter, PaymentLedger, PaymentProvider,
    ReservationStore, SellerOrders, StockWriter,
};
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

fn actor(caller: &Caller) -> Actor {
    let kind = if caller.is_admin() { ActorKind::Admin } else { ActorKind::Shopper };
    Actor { kind, id: caller.user_id.clone() }
}

/// The order if the caller owns it (or is an admin); anyone else gets 404, never a hint that it exists.
pub async fn owned_order(orders: &impl OrderReader, caller: &Caller, order_id: &str) -> Result<Order> {
    if !crate::domain::ids::is_valid("ord", order_id) {
        return Err(DomainError::not_found("order"));
    }
    let order = orders.get_order(order_id).await?.ok_or_else(|| DomainError::not_found("order"))?;
    if caller.is_admin() || order.header().customer.user_id.as_deref() == Some(caller.user_id.as_str()) {
        Ok(order)
    } else {
        Err(DomainError::not_found("order"))
    }
}

/// The order's view for its owner, as JSON.
pub async fn get_order(orders: &impl OrderReader, caller: &Caller, order_id: &str) -> Result<serde_json::Value> {
    let order = owned_order(orders, caller, order_id).await?;
    serde_json::to_value(order.view()).map_err(DomainError::unexpected)
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

/// Returns the committed units of the order's reservation to stock, once; `skus` limits it to some lines.
async fn restock<I, L>(inventory: &I, ledger: &L, order: &Order, scope: &str, skus: Option<&[String]>) -> Result<()>
where
    I: ReservationStore + StockWriter,
    L: PaymentLedger,
{
    let Some(reservation) = inventory.get_reservation(order.id()).await? else {
        return Ok(());
    };
    for allocation in &reservation.allocations {
        if skus.is_some_and(|skus| !skus.contains(&allocation.sku)) {
            continue;
        }
        let claim = format!("restock-{}-{scope}-{}-{}", order.id(), allocation.sku, allocation.warehouse_id);
        if !ledger.claim_once(&claim).await? {
            continue;
        }
        let adjustment =
            StockAdjustment { delta: i64::from(allocation.quantity), reason: AdjustmentReason::Correction };
        inventory.adjust_stock(&allocation.sku, &allocation.warehouse_id, &adjustment).await?;
    }
    tracing::info!(order_id = %order.id(), scope, "stock returned");
    Ok(())
}

/// Cancels a confirmed, unshipped order: records the cancellation first (so no shipment can capture after
/// it), then voids the authorization and returns the stock. Repeating it finishes what is left.
#[allow(clippy::too_many_arguments)]
pub async fn cancel_order<O, P, L, I, Q>(
    orders: &O,
    provider: &P,
    ledger: &L,
    inventory: &I,
    publisher: &Q,
    caller: &Caller,
    order_id: &str,
    now: DateTime<Utc>,
) -> Result<serde_json::Value>
where
    O: OrderReader + OrderWriter,
    P: PaymentProvider,
    L: PaymentLedger,
    I: ReservationStore + StockWriter,
    Q: OrderEventPublisher,
{
    owned_order(orders, caller, order_id).await?;
    let who = actor(caller);
    let order = update_order(orders, order_id, |order| {
        if order.status() == OrderStatus::Cancelled {
            return Ok(false);
        }
        order.record(OrderEventKind::Cancelled, who.clone(), None, now)?;
        Ok(true)
    })
    .await?;
    crate::services::checkout::void_payment(provider, ledger, order_id, now).await?;
    restock(inventory, ledger, &order, "cancel", None).await?;
    let seq = order.events().iter().find(|e| e.kind == OrderEventKind::Cancelled).map_or(order.version(), |e| e.seq);
    publisher.publish(&OrderNotification::new(NotificationKind::OrderCancelled, &order, seq, None, None)).await?;
    serde_json::to_value(order.view()).map_err(DomainError::unexpected)
}

/// The owner asks to return a delivered order.
pub async fn request_return(
    orders: &(impl OrderReader + OrderWriter),
    caller: &Caller,
    order_id: &str,
    request: ReturnRequest,
    now: DateTime<Utc>,
) -> Result<serde_json::Value> {
    if request.reason.as_ref().is_some_and(|r| r.chars().count() > 500) {
        return Err(DomainError::validation("reason", "must be at most 500 characters"));
    }
    owned_order(orders, caller, order_id).await?;
    let who = actor(caller);
    let order = update_order(orders, order_id, |order| {
        if order.status() == OrderStatus::ReturnRequested {
            return Ok(false);
        }
        order.record(OrderEventKind::ReturnRequested, who.clone(), request.reason.clone(), now)?;
        Ok(true)
    })
    .await?;
    serde_json::to_value(order.view()).map_err(DomainError::unexpected)
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

/// A seller ships their lines: captures exactly their subtotal, then records the shipment.
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
    let order = seller_order(orders, caller, order_id).await?;
    if let Some((existing, _)) = order.shipment(&seller) {
        if existing == tracking {
            return order.seller_view(&seller).ok_or_else(|| DomainError::not_found("order"));
        }
        return Err(DomainError::conflict("already_shipped", "these lines are already shipped"));
    }
    if !matches!(order.status(), OrderStatus::Confirmed | OrderStatus::PartiallyShipped) {
        return Err(DomainError::conflict(
            "illegal_transition",
            format!("cannot ship an order that is {}", order.status().as_str()),
        ));
    }
    let part = order.seller_part(&seller).ok_or_else(|| DomainError::not_found("order"))?;
    let payment_id = order.payment_id().ok_or_else(|| DomainError::unexpected("confirmed order without payment"))?;
    let last = order.seller_ids().iter().all(|s| *s == seller || order.shipment(s).is_some());
    let payment = provider.capture(payment_id, part.subtotal, last, &capture_key(order_id, &seller)).await?;
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
pub async fn approve_return<O, P, L, I, Q>(
    orders: &O,
    provider: &P,
    ledger: &L,
    inventory: &I,
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
    I: ReservationStore + StockWriter,
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
        restock(inventory, ledger, &order, &format!("return-{seller}"), Some(&skus)).await?;
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
