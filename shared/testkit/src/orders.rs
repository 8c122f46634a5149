//! In-memory orders, payments, saga starter and queue: the fakes handler tests run against.
//! They keep the adapters' contracts (conditional creation, optimistic appends, claims, replayed keys).

use chrono::{DateTime, Utc};
use commerce_app::ports::{
    CheckoutStarter, CustomerOrders, NotificationSink, OrderEventPublisher, OrderReader, OrderWriter, ParcelIndex,
    PaymentLedger, PaymentProvider, SellerOrders,
};
use commerce_domain::catalog::{Page, PageLimit};
use commerce_domain::error::{DomainError, Result};
use commerce_domain::money::Money;
use commerce_domain::order::{Order, OrderNotification, OrderStatus, OrderSummary, SellerOrderView};
use commerce_domain::payment::{validate_payment_method, AuthorizeRequest, Payment};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
struct State {
    orders: BTreeMap<String, Order>,
    payments: HashMap<String, (Payment, DateTime<Utc>)>,
    claims: BTreeSet<String>,
    notifications: BTreeMap<String, OrderNotification>,
    published: Vec<OrderNotification>,
    started: Vec<(String, serde_json::Value)>,
    /// `PARCEL#<carrier>#<number>` -> (order id, seller id), as the table's parcel items.
    parcels: BTreeMap<String, BTreeSet<(String, String)>>,
}

/// Everything the order functions talk to, in memory. Clones share one state.
#[derive(Debug, Default, Clone)]
pub struct InMemoryOrders {
    state: Arc<Mutex<State>>,
    promotions: Option<crate::promotions::InMemoryPromotions>,
}

impl InMemoryOrders {
    pub fn new() -> Self {
        Self::default()
    }

    /// Order writes that change promotion counts apply them to `promotions` (as the adapter's transaction
    /// does); without it such a write fails.
    pub fn with_promotions(mut self, promotions: crate::promotions::InMemoryPromotions) -> Self {
        self.promotions = Some(promotions);
        self
    }

    /// Writes `order` over `expected_version` with the count changes its new events make.
    fn write(&self, order: &Order, expected_version: u32) -> Result<commerce_app::ports::HoldOutcome> {
        use commerce_app::ports::HoldOutcome;
        let mut state = self.lock();
        let stored = state.orders.get(order.id()).ok_or_else(|| DomainError::not_found("order"))?;
        if stored.version() != expected_version {
            return Ok(HoldOutcome::OrderChanged);
        }
        let changes = order.usage_changes(expected_version);
        if !changes.is_empty() {
            let promotions = self.promotions.as_ref().ok_or_else(|| {
                DomainError::unexpected("an order write changes promotion counts; no promotions attached")
            })?;
            let outcome = promotions.apply(&changes);
            if outcome != HoldOutcome::Held {
                return Ok(outcome);
            }
        }
        state.orders.insert(order.id().to_owned(), order.clone());
        Ok(HoldOutcome::Held)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stores an order as is (test setup).
    pub fn insert(&self, order: Order) {
        self.lock().orders.insert(order.id().to_owned(), order);
    }

    /// Saga executions started: (name, input).
    pub fn started(&self) -> Vec<(String, serde_json::Value)> {
        self.lock().started.clone()
    }

    /// Notifications published to the queue.
    pub fn published(&self) -> Vec<OrderNotification> {
        self.lock().published.clone()
    }

    /// Notifications delivered by the consumer.
    pub fn delivered(&self) -> Vec<OrderNotification> {
        self.lock().notifications.values().cloned().collect()
    }
}

pub(crate) fn page<T: Clone>(items: Vec<T>, limit: PageLimit, cursor: Option<&str>) -> Result<Page<T>> {
    let start: usize = match cursor {
        None => 0,
        Some(c) => {
            c.parse().map_err(|_| DomainError::invalid_parameter("cursor", "is not a cursor this listing issued"))?
        }
    };
    let end = (start + limit.get() as usize).min(items.len());
    let next_cursor = (end < items.len()).then(|| end.to_string());
    Ok(Page { items: items.get(start..end).map(<[T]>::to_vec).unwrap_or_default(), next_cursor })
}

impl OrderReader for InMemoryOrders {
    async fn get_order(&self, order_id: &str) -> Result<Option<Order>> {
        Ok(self.lock().orders.get(order_id).cloned())
    }
}

impl ParcelIndex for InMemoryOrders {
    async fn index_parcel(
        &self,
        parcel: &commerce_domain::tracking::Parcel,
        order_id: &str,
        seller_id: &str,
    ) -> Result<()> {
        let key = format!("{}#{}", parcel.carrier.as_str(), parcel.tracking_number);
        self.lock().parcels.entry(key).or_default().insert((order_id.to_owned(), seller_id.to_owned()));
        Ok(())
    }

    async fn parcel_shipments(
        &self,
        carrier: commerce_domain::tracking::Carrier,
        tracking_number: &str,
    ) -> Result<Vec<(String, String)>> {
        let key = format!("{}#{tracking_number}", carrier.as_str());
        let found = self.lock().parcels.get(&key).cloned().unwrap_or_default();
        Ok(found.into_iter().take(commerce_domain::tracking::MAX_ORDERS_PER_PARCEL).collect())
    }
}

impl OrderWriter for InMemoryOrders {
    async fn create_order(&self, order: &Order) -> Result<Order> {
        let mut state = self.lock();
        Ok(state.orders.entry(order.id().to_owned()).or_insert_with(|| order.clone()).clone())
    }

    async fn append_events(&self, order: &Order, expected_version: u32) -> Result<()> {
        if order.events_since(expected_version).is_empty() {
            return Ok(());
        }
        match self.write(order, expected_version)? {
            commerce_app::ports::HoldOutcome::Held => Ok(()),
            commerce_app::ports::HoldOutcome::OrderChanged => Err(commerce_domain::order::concurrent_update()),
            other => Err(DomainError::unexpected(format!("a promotion count refused: {other:?}"))),
        }
    }
}

impl commerce_app::ports::PromotionHolder for InMemoryOrders {
    async fn hold_promotions(&self, order: &Order, expected_version: u32) -> Result<commerce_app::ports::HoldOutcome> {
        self.write(order, expected_version)
    }
}

impl CustomerOrders for InMemoryOrders {
    async fn list_customer_orders(
        &self,
        user_id: &str,
        limit: PageLimit,
        cursor: Option<&str>,
    ) -> Result<Page<OrderSummary>> {
        let state = self.lock();
        let mut orders: Vec<&Order> =
            state.orders.values().filter(|o| o.header().customer.user_id.as_deref() == Some(user_id)).collect();
        orders.sort_by_key(|o| std::cmp::Reverse((o.header().created_at, o.id().to_owned())));
        page(orders.into_iter().map(Order::summary).collect(), limit, cursor)
    }
}

impl SellerOrders for InMemoryOrders {
    async fn list_seller_orders(
        &self,
        seller_id: &str,
        limit: PageLimit,
        cursor: Option<&str>,
    ) -> Result<Page<SellerOrderView>> {
        let state = self.lock();
        let mut orders: Vec<&Order> = state
            .orders
            .values()
            .filter(|o| !matches!(o.status(), OrderStatus::Pending | OrderStatus::Failed))
            .collect();
        orders.sort_by_key(|o| std::cmp::Reverse((o.header().created_at, o.id().to_owned())));
        page(orders.into_iter().filter_map(|o| o.seller_view(seller_id)).collect(), limit, cursor)
    }
}

impl PaymentLedger for InMemoryOrders {
    async fn record_payment(&self, payment: &Payment, observed_at: DateTime<Utc>) -> Result<()> {
        let mut state = self.lock();
        let newer = state.payments.get(&payment.order_id).is_none_or(|(_, at)| *at <= observed_at);
        if newer {
            state.payments.insert(payment.order_id.clone(), (payment.clone(), observed_at));
        }
        Ok(())
    }

    async fn bind_payment(&self, payment: &Payment, observed_at: DateTime<Utc>) -> Result<()> {
        self.lock().payments.entry(payment.order_id.clone()).or_insert_with(|| (payment.clone(), observed_at));
        Ok(())
    }

    async fn record_payment_report(&self, payment: &Payment, observed_at: DateTime<Utc>) -> Result<()> {
        let mut state = self.lock();
        if let Some(stored) = state.payments.get_mut(&payment.order_id) {
            if stored.0.payment_id == payment.payment_id && stored.1 <= observed_at {
                *stored = (payment.clone(), observed_at);
            }
        }
        Ok(())
    }

    async fn payment_for_order(&self, order_id: &str) -> Result<Option<Payment>> {
        Ok(self.lock().payments.get(order_id).map(|(p, _)| p.clone()))
    }

    async fn claim_once(&self, id: &str) -> Result<bool> {
        Ok(self.lock().claims.insert(id.to_owned()))
    }
}

impl NotificationSink for InMemoryOrders {
    async fn deliver(&self, notification: &OrderNotification) -> Result<bool> {
        let mut state = self.lock();
        if state.notifications.contains_key(&notification.notification_id) {
            return Ok(false);
        }
        state.notifications.insert(notification.notification_id.clone(), notification.clone());
        Ok(true)
    }
}

impl OrderEventPublisher for InMemoryOrders {
    async fn publish(&self, notification: &OrderNotification) -> Result<()> {
        self.lock().published.push(notification.clone());
        Ok(())
    }
}

impl CheckoutStarter for InMemoryOrders {
    async fn start_checkout(&self, execution_name: &str, input: &serde_json::Value) -> Result<()> {
        let mut state = self.lock();
        if !state.started.iter().any(|(name, _)| name == execution_name) {
            state.started.push((execution_name.to_owned(), input.clone()));
        }
        Ok(())
    }
}

impl commerce_app::ports::PendingOrders for InMemoryOrders {
    async fn pending_before(&self, cutoff: DateTime<Utc>, limit: usize) -> Result<Vec<String>> {
        let mut pending: Vec<(DateTime<Utc>, String)> = self
            .lock()
            .orders
            .values()
            .filter(|o| o.status() == OrderStatus::Pending && o.header().created_at < cutoff)
            .map(|o| (o.header().created_at, o.id().to_owned()))
            .collect();
        pending.sort();
        Ok(pending.into_iter().take(limit).map(|(_, id)| id).collect())
    }
}

/// Payments by id, and each idempotency key's outcome (a payment, or a decline reason).
type PaymentBook = (HashMap<String, Payment>, HashMap<String, Result<Payment, String>>);

/// A payment provider in memory with the sandbox's approve/decline test methods and replayed keys.
#[derive(Debug, Default)]
pub struct InMemoryPayments {
    state: Mutex<PaymentBook>,
}

impl InMemoryPayments {
    pub fn new() -> Self {
        Self::default()
    }

    fn with_key(
        &self,
        key: &str,
        op: impl FnOnce(&mut HashMap<String, Payment>) -> Result<Payment>,
    ) -> Result<Payment> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(outcome) = state.1.get(key) {
            return outcome.clone().map_err(|reason| DomainError::PaymentDeclined { reason });
        }
        let outcome = op(&mut state.0);
        match &outcome {
            Ok(payment) => {
                state.1.insert(key.to_owned(), Ok(payment.clone()));
            }
            Err(DomainError::PaymentDeclined { reason }) => {
                state.1.insert(key.to_owned(), Err(reason.clone()));
            }
            Err(_) => {}
        }
        outcome
    }

    fn change(
        payments: &mut HashMap<String, Payment>,
        id: &str,
        f: impl FnOnce(&mut Payment) -> Result<()>,
    ) -> Result<Payment> {
        let payment = payments.get_mut(id).ok_or_else(|| DomainError::not_found("payment"))?;
        let mut next = payment.clone();
        f(&mut next)?;
        *payment = next.clone();
        Ok(next)
    }

    /// Every payment, by id.
    pub fn payments(&self) -> Vec<Payment> {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).0.values().cloned().collect()
    }
}

impl PaymentProvider for InMemoryPayments {
    async fn authorize(&self, request: &AuthorizeRequest) -> Result<Payment> {
        validate_payment_method(&request.payment_method)?;
        self.with_key(&request.idempotency_key, |payments| match request.payment_method.as_str() {
            "pm_card_visa_chargeDeclined" => Err(DomainError::PaymentDeclined { reason: "card_declined".into() }),
            "pm_card_visa_chargeDeclinedInsufficientFunds" => {
                Err(DomainError::PaymentDeclined { reason: "insufficient_funds".into() })
            }
            "pm_sandbox_error" => Err(DomainError::Transient("provider error".into())),
            _ => {
                let id = format!("pi_mem_{}", payments.len() + 1);
                let payment = Payment::authorized(id.clone(), request.order_id.clone(), request.amount);
                payments.insert(id, payment.clone());
                Ok(payment)
            }
        })
    }

    async fn capture(&self, payment_id: &str, amount: Money, final_capture: bool, key: &str) -> Result<Payment> {
        self.with_key(key, |p| Self::change(p, payment_id, |payment| payment.capture(amount, final_capture)))
    }

    async fn void(&self, payment_id: &str, key: &str) -> Result<Payment> {
        self.with_key(key, |p| Self::change(p, payment_id, Payment::void))
    }

    async fn refund(&self, payment_id: &str, amount: Money, key: &str) -> Result<Payment> {
        self.with_key(key, |p| Self::change(p, payment_id, |payment| payment.refund(amount)))
    }

    async fn find_for_order(&self, order_id: &str) -> Result<Option<Payment>> {
        Ok(self.payments().into_iter().find(|p| p.order_id == order_id))
    }
}

/// The two lines of every demo order: 2 x 15.00 from `seller-1`, 1 x 9.00 from `seller-2`.
fn demo_lines() -> Result<Vec<commerce_domain::order::OrderLine>> {
    use commerce_domain::money::Currency;
    use commerce_domain::order::OrderLine;
    let usd = |a| Money::new(a, Currency::USD);
    vec![
        OrderLine::new("demo-sku-1", "prd_demo-0001", "seller-1", "Demo one", 2, usd(1500)),
        OrderLine::new("demo-sku-2", "prd_demo-0002", "seller-2", "Demo two", 1, usd(900)),
    ]
    .into_iter()
    .collect()
}

/// Authorizes `order`'s total in `payments` as the checkout saga would.
async fn demo_authorization(payments: &InMemoryPayments, order: &Order) -> Result<Payment> {
    let request = AuthorizeRequest {
        order_id: order.id().to_owned(),
        amount: order.total(),
        payment_method: "pm_card_visa".into(),
        idempotency_key: format!("authorize-{}", order.id()),
    };
    payments.authorize(&request).await
}

/// The order token of the demo guest order `ord_demo-guest` (see [`demo_guest_order`]).
pub const DEMO_ORDER_TOKEN: &str = "demo-order-token-4Jq9Xv2LmT7wR1sK8nB3cZ6yH0pD5fGa";

/// Adds the demo guest order `ord_demo-guest`: the demo lines, placed by a guest (email only), confirmed with a
/// payment authorized in `payments`, readable with [`DEMO_ORDER_TOKEN`] as its `X-Order-Token`.
pub async fn demo_guest_order(store: &InMemoryOrders, payments: &InMemoryPayments) -> Result<()> {
    use commerce_domain::order::{Actor, ActorKind, Customer, OrderEventKind};
    let at: DateTime<Utc> = "2025-01-02T00:00:00Z".parse().map_err(DomainError::unexpected)?;
    let customer = Customer { user_id: None, email: Some("guest@example.com".into()) };
    let guest = Actor { kind: ActorKind::Guest, id: "cart_demo-guest".into() };
    let placed = Order::place(
        "ord_demo-guest".into(),
        customer,
        "cart_demo-guest".into(),
        demo_lines()?,
        demo_address(),
        guest,
        at,
    )?;
    let mut header = placed.header().clone();
    header.order_token_hash = Some(commerce_domain::token::hash_token(DEMO_ORDER_TOKEN));
    let mut order = Order::from_history(header, placed.events().to_vec())?;
    let payment = demo_authorization(payments, &order).await?;
    order.record(OrderEventKind::Confirmed { payment_id: payment.payment_id }, Actor::system("demo"), None, at)?;
    store.insert(order);
    Ok(())
}

/// Demo orders for handler tests and sample events, all placed by `shopper-1` with lines from `seller-1` and
/// `seller-2`: `ord_demo-pending`, `ord_demo-confirmed`, `ord_demo-shipped` (both sellers shipped),
/// `ord_demo-delivered`, `ord_demo-return` (return requested). Payments are authorized in `payments`.
pub async fn demo_orders(payments: &InMemoryPayments) -> InMemoryOrders {
    use commerce_domain::order::{Actor, Customer, OrderEventKind};
    let store = InMemoryOrders::new();
    let at: DateTime<Utc> = "2025-01-01T00:00:00Z".parse().unwrap_or_default();
    let steps = ["pending", "confirmed", "shipped", "delivered", "return"];
    for (i, name) in steps.iter().enumerate() {
        let id = format!("ord_demo-{name}");
        let Ok(lines) = demo_lines() else { continue };
        let address = demo_address();
        let customer = Customer { user_id: Some("shopper-1".into()), email: Some("shopper@example.com".into()) };
        let placed_at = at + chrono::Duration::minutes(i as i64);
        let Ok(mut order) = Order::place(
            id.clone(),
            customer,
            "cart_demo".into(),
            lines,
            address,
            Actor::shopper("shopper-1"),
            placed_at,
        ) else {
            continue;
        };
        if i >= 1 {
            let Ok(payment) = demo_authorization(payments, &order).await else {
                continue;
            };
            let _ = order.record(
                OrderEventKind::Confirmed { payment_id: payment.payment_id.clone() },
                Actor::system("demo"),
                None,
                placed_at,
            );
            if i >= 2 {
                for seller in ["seller-1", "seller-2"] {
                    let Some(part) = order.seller_part(seller) else {
                        continue;
                    };
                    let _ = payments
                        .capture(
                            &payment.payment_id,
                            part.totals.total,
                            seller == "seller-2",
                            &format!("capture-{id}-{seller}"),
                        )
                        .await;
                    let kind = OrderEventKind::Shipped {
                        seller_id: seller.into(),
                        tracking_number: "1ZDEMO".into(),
                        captured: part.totals.total,
                    };
                    let _ = order.record(kind, Actor::seller(seller), None, placed_at);
                }
            }
            if i >= 3 {
                for seller in ["seller-1", "seller-2"] {
                    let _ = order.record(
                        OrderEventKind::Delivered { seller_id: seller.into() },
                        Actor::seller(seller),
                        None,
                        placed_at,
                    );
                }
            }
            if i >= 4 {
                let _ = order.record(OrderEventKind::ReturnRequested, Actor::shopper("shopper-1"), None, placed_at);
            }
            let latest = payments.find_for_order(&id).await.ok().flatten().unwrap_or(payment);
            let _ = store.record_payment(&latest, placed_at).await;
        }
        store.insert(order);
    }
    store
}

/// The in-memory dependencies of cancel-order and approve-return: demo orders (see [`demo_orders`] and
/// [`demo_guest_order`]), stock, flash sales, a provider holding the demo orders' payments, and an events queue.
pub async fn restocking_deps() -> commerce_app::services::orders::RestockingDeps<
    InMemoryOrders,
    crate::inventory::InMemoryInventory,
    crate::flash_sale::InMemoryFlashSales,
    InMemoryPayments,
    InMemoryOrders,
> {
    let provider = InMemoryPayments::new();
    let orders = demo_orders(&provider).await;
    if let Err(err) = demo_guest_order(&orders, &provider).await {
        tracing::error!(error = %err, "demo guest order not added");
    }
    commerce_app::services::orders::RestockingDeps {
        orders,
        inventory: crate::inventory::InMemoryInventory::new(),
        flash: crate::flash_sale::InMemoryFlashSales::default(),
        provider,
        events: InMemoryOrders::new(),
    }
}

/// The shipping address of the demo orders and of tests that need one.
pub fn demo_address() -> commerce_domain::order::ShippingAddress {
    commerce_domain::order::ShippingAddress {
        name: "Ada Lovelace".into(),
        line1: "1 Main St".into(),
        line2: None,
        city: "Springfield".into(),
        region: Some("IL".into()),
        postal_code: "62701".into(),
        country: "US".into(),
    }
}
