//! Order use cases after checkout: the owner reads and lists orders, cancels before shipment (voiding the
//! authorization and returning the stock) and requests a return; each seller lists their parts, ships their
//! lines with a tracking number (capturing exactly those lines' amount), marks them delivered, and approves
//! returns (refunding through the provider and restocking, or not). Notifications go through the queue.
//!
//! Side effects on the provider carry idempotency keys derived from the order and seller, and each is
//! recorded as an order event only after it succeeded, so a retried request finishes what a failed one began.

use crate::auth::Caller;
use crate::domain::catalog::{Page, PageLimit};
use crate::domain::inventory::returns::{units_of_lines, SoldReturn};
use crate::domain::inventory::{Allocation, ReservationStatus};
use crate::domain::order::{
    Actor, ActorKind, NotificationKind, Order, OrderEventKind, OrderNotification, OrderStatus, OrderSummary,
    SellerOrderView,
};
use crate::error::{DomainError, Result};
use crate::ports::{
    CustomerOrders, FlashSaleReader, FlashTicketStore, NotificationSink, OrderEventPublisher, OrderReader, OrderWriter,
    PaymentLedger, PaymentProvider, ReservationStore, SellerOrders, SoldStockReturns,
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
        caller: &Caller,
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
    async fn cancel(&self, caller: &Caller, order_id: &str, now: DateTime<Utc>) -> Result<serde_json::Value> {
        let d = self;
        cancel_order(&d.orders, &d.provider, &d.orders, &d.inventory, &d.flash, &d.events, caller, order_id, now).await
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

/// Cancels a confirmed, unshipped order: records the cancellation first (so no shipment can capture after
/// it), then voids the authorization and returns the stock. Repeating it finishes what is left.
#[allow(clippy::too_many_arguments)]
pub async fn cancel_order<O, P, L, I, F, Q>(
    orders: &O,
    provider: &P,
    ledger: &L,
    inventory: &I,
    flash: &F,
    publisher: &Q,
    caller: &Caller,
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
    restock(inventory, flash, &order, "cancel", None).await?;
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
    use crate::domain::payment::AuthorizeRequest;
    use crate::ports::FinishOutcome;
    use std::sync::Mutex;

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
        let owner = Caller { user_id: "shopper-1".into(), email: None, roles: vec![Role::Shopper] };
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
