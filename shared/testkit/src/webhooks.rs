//! In-memory seller webhooks: endpoints and deliveries with the adapter's conditional writes, a deliveries
//! queue on a virtual clock (each task due at the time it was queued for), and a receiver that can be down.

use chrono::{DateTime, Utc};
use commerce_app::ports::{
    DeliveryQueue, DeliveryTask, Sent, UrlGuard, WebhookDeliveries, WebhookEndpoints, WebhookSender,
};
use commerce_domain::catalog::{Page, PageLimit};
use commerce_domain::error::{DomainError, ErrorCode, Result};
use commerce_domain::seller_webhook::{Delivery, DeliveryView, Endpoint, MAX_ENDPOINTS_PER_SELLER};
use commerce_domain::webhook::WebhookHeaders;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn conflict() -> DomainError {
    DomainError::conflict(ErrorCode::ConcurrentUpdate, "changed since it was read")
}

/// A clock the test moves.
#[derive(Debug, Clone)]
pub struct Clock(Arc<Mutex<DateTime<Utc>>>);

impl Clock {
    pub fn at(now: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new(now)))
    }

    pub fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock")
    }

    pub fn set(&self, now: DateTime<Utc>) {
        *self.0.lock().expect("clock") = now;
    }
}

/// Endpoints and deliveries, keyed as the table keys them. Clones share one state.
#[derive(Debug, Default, Clone)]
pub struct InMemoryWebhooks {
    endpoints: Arc<Mutex<BTreeMap<(String, String), Endpoint>>>,
    deliveries: Arc<Mutex<BTreeMap<(String, String), Delivery>>>,
}

impl InMemoryWebhooks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every delivery of an endpoint, oldest first.
    pub fn deliveries_of(&self, webhook_id: &str) -> Vec<Delivery> {
        self.deliveries.lock().expect("deliveries").values().filter(|d| d.webhook_id == webhook_id).cloned().collect()
    }
}

impl WebhookEndpoints for InMemoryWebhooks {
    async fn create_endpoint(&self, endpoint: &Endpoint) -> Result<bool> {
        let mut all = self.endpoints.lock().expect("endpoints");
        if all.keys().filter(|(seller, _)| *seller == endpoint.seller_id).count() >= MAX_ENDPOINTS_PER_SELLER {
            return Ok(false);
        }
        all.insert((endpoint.seller_id.clone(), endpoint.webhook_id.clone()), endpoint.clone());
        Ok(true)
    }

    async fn seller_endpoints(&self, seller_id: &str) -> Result<Vec<Endpoint>> {
        let all = self.endpoints.lock().expect("endpoints");
        Ok(all.iter().filter(|((seller, _), _)| seller == seller_id).map(|(_, e)| e.clone()).collect())
    }

    async fn endpoint(&self, seller_id: &str, webhook_id: &str) -> Result<Option<Endpoint>> {
        Ok(self.endpoints.lock().expect("endpoints").get(&(seller_id.to_owned(), webhook_id.to_owned())).cloned())
    }

    async fn save_endpoint(&self, endpoint: &Endpoint, expected_version: u64) -> Result<()> {
        let mut all = self.endpoints.lock().expect("endpoints");
        let key = (endpoint.seller_id.clone(), endpoint.webhook_id.clone());
        match all.get(&key) {
            Some(stored) if stored.version == expected_version => {
                all.insert(key, endpoint.clone());
                Ok(())
            }
            _ => Err(conflict()),
        }
    }

    async fn delete_endpoint(&self, seller_id: &str, webhook_id: &str) -> Result<bool> {
        Ok(self.endpoints.lock().expect("endpoints").remove(&(seller_id.to_owned(), webhook_id.to_owned())).is_some())
    }
}

impl WebhookDeliveries for InMemoryWebhooks {
    async fn create_delivery(&self, delivery: &Delivery) -> Result<Option<Delivery>> {
        let mut all = self.deliveries.lock().expect("deliveries");
        let key = (delivery.webhook_id.clone(), delivery.delivery_id.clone());
        if let Some(existing) = all.get(&key) {
            return Ok(Some(existing.clone()));
        }
        all.insert(key, delivery.clone());
        Ok(None)
    }

    async fn delivery(&self, webhook_id: &str, delivery_id: &str) -> Result<Option<Delivery>> {
        Ok(self.deliveries.lock().expect("deliveries").get(&(webhook_id.to_owned(), delivery_id.to_owned())).cloned())
    }

    async fn save_delivery(&self, delivery: &Delivery, expected_version: u64) -> Result<()> {
        let mut all = self.deliveries.lock().expect("deliveries");
        let key = (delivery.webhook_id.clone(), delivery.delivery_id.clone());
        match all.get(&key) {
            Some(stored) if stored.version == expected_version => {
                all.insert(key, delivery.clone());
                Ok(())
            }
            _ => Err(conflict()),
        }
    }

    async fn list_deliveries(
        &self,
        webhook_id: &str,
        limit: PageLimit,
        cursor: Option<&str>,
    ) -> Result<Page<DeliveryView>> {
        let mut views: Vec<DeliveryView> = self.deliveries_of(webhook_id).iter().map(Delivery::view).collect();
        views.reverse();
        crate::orders::page(views, limit, cursor)
    }
}

/// A queued task: when it is due, its place in the order of sending, the task.
type Queued = (DateTime<Utc>, u64, DeliveryTask);

/// The deliveries queue on a virtual clock: a task queued with a delay is due at the clock's time plus it.
#[derive(Debug, Clone)]
pub struct VirtualQueue {
    clock: Clock,
    tasks: Arc<Mutex<Vec<Queued>>>,
    sent: Arc<Mutex<u64>>,
}

impl VirtualQueue {
    pub fn new(clock: Clock) -> Self {
        Self { clock, tasks: Arc::default(), sent: Arc::default() }
    }

    /// The earliest due task (first queued first among equals), taken off the queue.
    pub fn pop(&self) -> Option<(DateTime<Utc>, DeliveryTask)> {
        let mut tasks = self.tasks.lock().expect("tasks");
        let i = (0..tasks.len()).min_by_key(|&i| (tasks[i].0, tasks[i].1))?;
        let (due, _, task) = tasks.remove(i);
        Some((due, task))
    }

    pub fn len(&self) -> usize {
        self.tasks.lock().expect("tasks").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl DeliveryQueue for VirtualQueue {
    async fn enqueue(&self, task: &DeliveryTask, delay: Duration) -> Result<()> {
        assert!(delay <= Duration::from_secs(900), "SQS delays stop at 15 minutes: {delay:?}");
        let due = self.clock.now() + chrono::Duration::from_std(delay).expect("a queue delay");
        let mut sent = self.sent.lock().expect("sent");
        *sent += 1;
        self.tasks.lock().expect("tasks").push((due, *sent, task.clone()));
        Ok(())
    }
}

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: DateTime<Utc>,
    pub url: String,
    pub headers: WebhookHeaders,
    pub body: String,
}

/// A receiver on the virtual clock: answers `status_while_down` (with `retry_after`) until `down_until`, then
/// 200; every request is kept.
#[derive(Debug, Clone)]
pub struct Receiver {
    clock: Clock,
    down_until: Arc<Mutex<DateTime<Utc>>>,
    status_while_down: Option<u16>,
    retry_after: Option<String>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    /// Up from the start.
    pub fn up(clock: Clock) -> Self {
        let now = clock.now();
        Self::down_until(clock, now, Some(503), None)
    }

    /// Down until `until`: `status` (None: the connection fails) and a `Retry-After` header.
    pub fn down_until(clock: Clock, until: DateTime<Utc>, status: Option<u16>, retry_after: Option<&str>) -> Self {
        Self {
            clock,
            down_until: Arc::new(Mutex::new(until)),
            status_while_down: status,
            retry_after: retry_after.map(str::to_owned),
            received: Arc::default(),
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("received").clone()
    }
}

impl WebhookSender for Receiver {
    async fn send(&self, url: &str, headers: &WebhookHeaders, body: &[u8]) -> Sent {
        let now = self.clock.now();
        self.received.lock().expect("received").push(Received {
            at: now,
            url: url.to_owned(),
            headers: headers.clone(),
            body: String::from_utf8_lossy(body).into_owned(),
        });
        let latency = Duration::from_millis(20);
        if now < *self.down_until.lock().expect("down") {
            return match self.status_while_down {
                Some(status) => {
                    Sent { status: Some(status), retry_after: self.retry_after.clone(), error: None, latency }
                }
                None => Sent { status: None, retry_after: None, error: Some("connection_failed"), latency },
            };
        }
        Sent { status: Some(200), retry_after: None, error: None, latency }
    }
}

/// A guard that admits every URL the domain accepted (the address rules are the adapter's, tested there).
#[derive(Debug, Default, Clone, Copy)]
pub struct OpenGuard;

impl UrlGuard for OpenGuard {
    async fn check(&self, _url: &str) -> Result<()> {
        Ok(())
    }
}
