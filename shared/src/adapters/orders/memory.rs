//! In-memory orders, payments, idempotency, saga starter and queue: the fakes handler tests run against.
//! They keep the adapters' contracts (conditional creation, optimistic appends, claims, replayed keys).

use crate::domain::catalog::{Page, PageLimit};
use crate::domain::idempotency::{self, IdempotencyRecord, RecordState, StoredResponse};
use crate::domain::money::Money;
use crate::domain::order::{Order, OrderNotification, OrderStatus, OrderSummary, SellerOrderView};
use crate::domain::payment::{validate_payment_method, AuthorizeRequest, Payment};
use crate::error::{DomainError, Result};
use crate::ports::{
    CheckoutStarter, CustomerOrders, IdempotencyStore, NotificationSink, OrderEventPublisher, OrderReader,
    OrderWriter, PaymentLedger, PaymentProvider, SellerOrders,
};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

#[derive(Debug, Default)]
struct State {
    orders: BTreeMap<String, Order>,
    payments: HashMap<String, (Payment, DateTime<Utc>)>,
    claims: BTreeSet<String>,
    notifications: BTreeMap<String, OrderNotification>,
    published: Vec<OrderNotification>,
    started: Vec<(String, serde_json::Value)>,
    idempotency: HashMap<String, IdempotencyRecord>,
}

/// Everything the order functions talk to, in memory.
#[derive(Debug, Default)]
pub struct InMemoryOrders {
    state: Mutex<State>,
}

impl InMemoryOrders {
    pub fn new() -> Self {
        Self::default()
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

fn page<T: Clone>(items: Vec<T>, limit: PageLimit, cursor: Option<&str>) -> Result<Page<T>> {
    let start: usize = match cursor {
        None => 0,
        Some(c) => c.parse().map_err(|_| DomainError::invalid_parameter("cursor", "is not a cursor this listing issued"))?,
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

impl OrderWriter for InMemoryOrders {
    async fn create_order(&self, order: &Order) -> Result<Order> {
        let mut state = self.lock();
        Ok(state.orders.entry(order.id().to_owned()).or_insert_with(|| order.clone()).clone())
    }

    async fn append_events(&self, order: &Order, expected_version: u32) -> Result<()> {
        let mut state = self.lock();
        let stored = state.orders.get(order.id()).ok_or_else(|| DomainError::not_found("order"))?;
        if stored.version() != expected_version {
            return Err(DomainError::conflict("concurrent_update", "the order changed meanwhile; reload and retry"));
        }
        state.orders.insert(order.id().to_owned(), order.clone());
        Ok(())
    }
}

impl CustomerOrders for InMemoryOrders {
    async fn list_customer_orders(&self, user_id: &str, limit: PageLimit, cursor: Option<&str>) -> Result<Page<OrderSummary>> {
        let state = self.lock();
        let mut orders: Vec<&Order> =
            state.orders.values().filter(|o| o.header().customer.user_id.as_deref() == Some(user_id)).collect();
        orders.sort_by_key(|o| std::cmp::Reverse((o.header().created_at, o.id().to_owned())));
        page(orders.into_iter().map(Order::summary).collect(), limit, cursor)
    }
}

impl SellerOrders for InMemoryOrders {
    async fn list_seller_orders(&self, seller_id: &str, limit: PageLimit, cursor: Option<&str>) -> Result<Page<SellerOrderView>> {
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

impl IdempotencyStore for InMemoryOrders {
    async fn try_begin(&self, record: &IdempotencyRecord, now: DateTime<Utc>) -> Result<Option<IdempotencyRecord>> {
        let mut state = self.lock();
        match state.idempotency.get(&record.key) {
            Some(existing) if idempotency::decide(existing, &record.fingerprint, now) != idempotency::Decision::TakeOver => {
                Ok(Some(existing.clone()))
            }
            _ => {
                state.idempotency.insert(record.key.clone(), record.clone());
                Ok(None)
            }
        }
    }

    async fn complete(&self, key: &str, fingerprint: &str, response: &StoredResponse) -> Result<()> {
        if let Some(record) = self.lock().idempotency.get_mut(key).filter(|r| r.fingerprint == fingerprint) {
            record.state = RecordState::Completed { response: response.clone() };
        }
        Ok(())
    }

    async fn abandon(&self, key: &str, fingerprint: &str) -> Result<()> {
        let mut state = self.lock();
        if state.idempotency.get(key).is_some_and(|r| r.fingerprint == fingerprint) {
            state.idempotency.remove(key);
        }
        Ok(())
    }
}

/// A payment provider in memory with the sandbox's approve/decline test methods and replayed keys.
#[derive(Debug, Default)]
pub struct InMemoryPayments {
    state: Mutex<(HashMap<String, Payment>, HashMap<String, Result<Payment, String>>)>,
}

impl InMemoryPayments {
    pub fn new() -> Self {
        Self::default()
    }

    fn with_key(&self, key: &str, op: impl FnOnce(&mut HashMap<String, Payment>) -> Result<Payment>) -> Result<Payment> {
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

    fn change(payments: &mut HashMap<String, Payment>, id: &str, f: impl FnOnce(&mut Payment) -> Result<()>) -> Result<Payment> {
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
