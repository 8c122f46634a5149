//! The orders use cases over the in-memory fakes.

use chrono::{DateTime, Utc};
use commerce_app::ports::FinishOutcome;
use commerce_app::ports::{
    FlashSaleReader, FlashTicketStore, OrderReader, PaymentLedger, PaymentProvider, ReservationStore, SoldStockReturns,
};
use commerce_app::services::orders::*;
use commerce_domain::auth::Caller;
use commerce_domain::auth::Role;
use commerce_domain::error::ErrorCode;
use commerce_domain::error::{DomainError, Result};
use commerce_domain::flash_sale::{FlashSale, Gate, Ticket, TicketStatus};
use commerce_domain::ids::OrderId;
use commerce_domain::inventory::reservation::{ReleaseReason, ReserveOutcome};
use commerce_domain::inventory::returns::SoldReturn;
use commerce_domain::inventory::Reservation;
use commerce_domain::inventory::{Allocation, ReservationStatus};
use commerce_domain::money::Currency;
use commerce_domain::money::Money;
use commerce_domain::order::{Actor, Order, OrderEventKind, OrderStatus, SellerOrderView};
use commerce_domain::order::{Customer, OrderLine};
use commerce_domain::payment::Payment;
use commerce_domain::payment::{AuthorizeRequest, PaymentStatus};
use commerce_testkit::http::{demo_store, DEMO_SELLERS};
use commerce_testkit::inventory::InMemoryInventory;
use commerce_testkit::orders::{InMemoryOrders, InMemoryPayments};
use std::sync::Mutex;

/// Everything cancel and ship talk to, in memory, around the demo orders.
struct Shop {
    orders: InMemoryOrders,
    payments: InMemoryPayments,
    inventory: InMemoryInventory,
    flash: commerce_testkit::flash_sale::InMemoryFlashSales,
}

impl Shop {
    async fn new() -> Self {
        let payments = InMemoryPayments::new();
        let orders = commerce_testkit::orders::demo_orders(&payments).await;
        Self { orders, payments, inventory: InMemoryInventory::new(), flash: Default::default() }
    }

    async fn cancel(&self, provider: &impl PaymentProvider) -> Result<serde_json::Value> {
        let owner = signed_in(&Caller { user_id: "shopper-1".into(), email: None, roles: vec![Role::Shopper] });
        let (o, i, f) = (&self.orders, &self.inventory, &self.flash);
        let ports = RestockPorts { orders: o, provider, inventory: i, flash: f, publisher: o };
        let view = cancel_order(ports, &owner, &OrderId::parse("ord_demo-confirmed").unwrap(), Utc::now()).await?;
        Ok(serde_json::to_value(view).expect("an order view serializes"))
    }

    async fn ship(&self, provider: &impl PaymentProvider, seller: &str) -> Result<SellerOrderView> {
        let caller = Caller { user_id: seller.into(), email: None, roles: vec![Role::Seller] };
        let request = ShipRequest { tracking_number: format!("1Z-{seller}"), carrier: None, tracking_url: None };
        let o = &self.orders;
        ship(o, provider, o, &caller, &OrderId::parse("ord_demo-confirmed").unwrap(), request, Utc::now()).await
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
    async fn authorize(&self, request: &commerce_domain::payment::AuthorizeRequest) -> Result<Payment> {
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
        matches!(cancelled, Err(DomainError::Conflict { code: ErrorCode::IllegalTransition, .. })),
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
    let kind = OrderEventKind::ShippingStarted {
        seller_id: "seller-1".into(),
        tracking_number: "1Z-seller-1".into(),
        carrier: None,
        tracking_url: None,
    };
    order.record(kind, Actor::seller("seller-1"), None, Utc::now()).unwrap();
    shop.orders.insert(order);
    let refused = shop.cancel(&shop.payments).await;
    assert!(matches!(refused, Err(DomainError::Conflict { code: ErrorCode::IllegalTransition, .. })), "{refused:?}");
    // The first attempt's capture went through before the process died.
    let payment_id = shop.order().await.payment_id().unwrap().to_owned();
    let usd = Money::new(3000, Currency::USD);
    shop.payments.capture(&payment_id, usd, false, &capture_key("ord_demo-confirmed", "seller-1")).await.unwrap();
    let view = shop.ship(&shop.payments, "seller-1").await.unwrap();
    assert_eq!((view.status, view.tracking_number.as_deref()), (OrderStatus::Shipped, Some("1Z-seller-1")));
    assert_eq!(shop.payment().captured, 3000, "captured once");
    let other = ShipRequest { tracking_number: "1Z-other".into(), carrier: None, tracking_url: None };
    let caller = Caller { user_id: "seller-1".into(), email: None, roles: vec![Role::Seller] };
    let o = &shop.orders;
    let again =
        ship(o, &shop.payments, o, &caller, &OrderId::parse("ord_demo-confirmed").unwrap(), other, Utc::now()).await;
    assert!(matches!(again, Err(DomainError::Conflict { code: ErrorCode::AlreadyShipped, .. })), "{again:?}");
}

#[tokio::test]
async fn when_the_provider_refuses_the_capture_should_abort_the_shipment_and_allow_the_cancel() {
    let shop = Shop::new().await;
    let payment_id = shop.order().await.payment_id().unwrap().to_owned();
    shop.payments.void(&payment_id, "void-elsewhere").await.unwrap();
    let refused = shop.ship(&shop.payments, "seller-1").await;
    assert!(matches!(refused, Err(DomainError::Conflict { code: ErrorCode::PaymentNotCapturable, .. })), "{refused:?}");
    let order = shop.order().await;
    let kinds: Vec<&OrderEventKind> = order.events().iter().map(|e| &e.kind).collect();
    assert!(matches!(kinds[..], [.., OrderEventKind::ShippingStarted { .. }, OrderEventKind::ShippingAborted { .. }]));
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
            return Err(DomainError::conflict(ErrorCode::SaleReconciled, "the sale was already reconciled"));
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
    let address = commerce_testkit::orders::demo_address();
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
        lanes: 1,
        hold_seconds: 60,
        created_at: now,
        gate_copies: 1,
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
        let ports = RestockPorts { orders: &orders, provider: &provider, inventory, flash, publisher: &orders };
        let view = cancel_order(ports, &owner, &OrderId::parse("ord_flash").unwrap(), now).await;
        assert_eq!(view.unwrap().order().status(), OrderStatus::Cancelled);
    }
}

/// Demo bundle `KIT-0096-BUNDLE` (the second demo seller's) sold once under order `ord_kit`, reserved and
/// committed in `inventory`, captured, shipped, delivered and with a return requested.
async fn returned_bundle_order(orders: &InMemoryOrders, provider: &InMemoryPayments, inventory: &InMemoryInventory) {
    use commerce_app::ports::PaymentProvider;
    use commerce_domain::inventory::{OwnerKind, ReservationLine, ReservationPolicy, ReservationRequest};
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
    commerce_app::services::inventory::reserve(&demo_store(), inventory, &policy, request, now).await.unwrap();
    commerce_app::services::inventory::commit(inventory, "ord_kit", now).await.unwrap();
    let line = OrderLine::new("KIT-0096-BUNDLE", "prd_demo-0096", seller, "Kit", 1, Money::new(5999, Currency::USD));
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
    let flash = commerce_testkit::flash_sale::InMemoryFlashSales::default();
    for _ in 0..2 {
        let request = ApproveReturnRequest { restock: true };
        let ports = RestockPorts {
            orders: &orders,
            provider: &provider,
            inventory: &inventory,
            flash: &flash,
            publisher: &orders,
        };
        let view =
            approve_return(ports, &seller, &OrderId::parse("ord_kit").unwrap(), request, Utc::now()).await.unwrap();
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
    assert_eq!((applied[0].flash, &applied[0].lines, applied[0].reason.as_str()), (true, &vec![expected], "cancel"));
}

impl Shop {
    async fn refund(&self, seller: &str, lines: &[(&str, u32)], key: Option<&str>) -> Result<SellerOrderView> {
        let caller = Caller { user_id: seller.into(), email: None, roles: vec![Role::Seller] };
        let request = RefundRequest {
            lines: lines
                .iter()
                .map(|(sku, quantity)| commerce_domain::order::RefundLine { sku: (*sku).into(), quantity: *quantity })
                .collect(),
            shipping: false,
            reason: Some("scratched".into()),
        };
        let keyed = KeyedRefund { request, idempotency_key: key };
        let o = &self.orders;
        let id = OrderId::parse("ord_demo-confirmed").unwrap();
        refund_part(o, &self.payments, o, &caller, &id, keyed, Utc::now()).await
    }
}

#[tokio::test]
async fn a_partial_refund_moves_each_units_share_once_per_key_and_a_key_names_one_refund() {
    let shop = Shop::new().await;
    shop.ship(&shop.payments, "seller-1").await.unwrap();
    shop.refund("seller-1", &[("demo-sku-1", 1)], Some("r1")).await.unwrap();
    assert_eq!(shop.payment().refunded, 1500);
    // A replay of the key refunds nothing more; the key with another refund is refused.
    shop.refund("seller-1", &[("demo-sku-1", 1)], Some("r1")).await.unwrap();
    assert_eq!(shop.payment().refunded, 1500, "refunded once");
    let reused = shop.refund("seller-1", &[("demo-sku-1", 2)], Some("r1")).await;
    assert!(matches!(reused, Err(DomainError::Conflict { code: ErrorCode::IdempotencyKeyReused, .. })), "{reused:?}");
    // No key, another seller, more units than are left.
    let keyless = shop.refund("seller-1", &[("demo-sku-1", 1)], None).await;
    assert!(matches!(keyless, Err(DomainError::InvalidParameter { .. })), "{keyless:?}");
    let stranger = shop.refund("seller-9", &[("demo-sku-1", 1)], Some("r2")).await;
    assert!(matches!(stranger, Err(DomainError::NotFound { .. })), "{stranger:?}");
    let too_many = shop.refund("seller-1", &[("demo-sku-1", 2)], Some("r3")).await;
    assert!(matches!(too_many, Err(DomainError::Validation { .. })), "{too_many:?}");
    // Seller 2 has shipped nothing: nothing to refund.
    let unshipped = shop.refund("seller-2", &[("demo-sku-2", 1)], Some("r4")).await;
    assert!(
        matches!(unshipped, Err(DomainError::Conflict { code: ErrorCode::IllegalTransition, .. })),
        "{unshipped:?}"
    );
    assert_eq!(shop.payment().refunded, 1500, "no refused request moved money");
}

#[tokio::test]
async fn two_refunds_racing_for_the_last_unit_refund_it_once() {
    let shop = Shop::new().await;
    shop.ship(&shop.payments, "seller-1").await.unwrap();
    shop.refund("seller-1", &[("demo-sku-1", 1)], Some("first")).await.unwrap();
    let (a, b) = tokio::join!(
        shop.refund("seller-1", &[("demo-sku-1", 1)], Some("a")),
        shop.refund("seller-1", &[("demo-sku-1", 1)], Some("b")),
    );
    assert_eq!(u8::from(a.is_ok()) + u8::from(b.is_ok()), 1, "{a:?} {b:?}");
    assert_eq!(shop.payment().refunded, 3000, "both units, each once");
    assert_eq!(shop.order().await.refundable("seller-1").amount, 0);
}
