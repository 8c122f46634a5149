//! Seller webhooks: endpoints (register, list, delete, rotate the secret), the fan-out of order events to the
//! endpoints that want them, and the delivery attempts (breaker, attempt budget, signing, retry schedule).
//!
//! Exactly one delivery per (endpoint, event): the fan-out creates each delivery with a conditional write keyed
//! by the event's stable id, so a redelivered order event finds it instead of making another. An attempt first
//! takes the delivery with a write conditional on its version (so two queue messages for one delivery never
//! both send), after the endpoint's breaker and budget allowed it (also one conditional write). SQS delays stop
//! at 15 minutes: a task that comes back before its delivery is due is queued again for the rest.

use crate::ports::{
    DeliveryQueue, DeliveryTask, MailQueue, OrderReader, UrlGuard, WebhookDeliveries, WebhookEndpoints, WebhookSender,
};
use chrono::{DateTime, Utc};
use commerce_domain::auth::Caller;
use commerce_domain::catalog::{Page, PageLimit};
use commerce_domain::email::MailEvent;
use commerce_domain::error::{DomainError, ErrorCode, Result};
use commerce_domain::order::OrderNotification;
use commerce_domain::seller_webhook::{
    seller_events, Attempt, Budget, Delivery, DeliveryState, DeliveryView, Endpoint, EndpointRequest, EndpointView,
    SellerEvent, MAX_ENDPOINTS_PER_SELLER,
};
use commerce_domain::webhook::{
    classify, next_step, Admission, Breaker, BreakerPolicy, Disposition, Jitter, WebhookHeaders, WebhookSecret,
};
use serde::Serialize;
use std::time::Duration;

/// The longest delay SQS gives a message.
pub const MAX_QUEUE_DELAY: Duration = Duration::from_secs(15 * 60);
/// How far apart tasks held back together come back (see `wait`).
pub const WAIT_SPREAD_SECS: u64 = 30;
/// Tries of a write that lost to another on the same endpoint or delivery.
const WRITE_ATTEMPTS: usize = 8;

/// How fast each endpoint may be tried, and its breaker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeliveryPolicy {
    /// Attempts per second per endpoint (WEBHOOK_RATE_PER_SEC).
    pub rate_per_sec: f64,
    /// Attempts an idle endpoint may get at once (WEBHOOK_BURST).
    pub burst: f64,
    pub breaker: BreakerPolicy,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self { rate_per_sec: 10.0, burst: 20.0, breaker: BreakerPolicy::default() }
    }
}

/// A new endpoint and its secret, shown this once.
#[derive(Debug, Clone, Serialize)]
pub struct Registered {
    #[serde(flatten)]
    pub endpoint: EndpointView,
    pub secret: String,
}

fn new_secret() -> WebhookSecret {
    let bytes: [u8; 32] = rand::random();
    WebhookSecret::from_random_bytes(&bytes).expect("32 bytes is a valid secret length")
}

fn new_webhook_id() -> String {
    let bytes: [u8; 12] = rand::random();
    format!("wh_{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// `POST /v1/seller/webhooks`: registers an endpoint for the seller; the answer carries the secret once.
pub async fn register(
    endpoints: &impl WebhookEndpoints,
    guard: &impl UrlGuard,
    caller: &Caller,
    request: EndpointRequest,
    policy: &DeliveryPolicy,
    now: DateTime<Utc>,
) -> Result<Registered> {
    caller.require_seller()?;
    let checked = request.validated()?;
    guard.check(&checked.0).await?;
    let secret = new_secret();
    let budget = Budget::full(policy.rate_per_sec, policy.burst, now);
    let endpoint = Endpoint::new(new_webhook_id(), caller.user_id.clone(), checked, &secret, budget, now);
    if !endpoints.create_endpoint(&endpoint).await? {
        return Err(DomainError::validation(
            "url",
            format!("a seller has at most {MAX_ENDPOINTS_PER_SELLER} endpoints; delete one first"),
        ));
    }
    tracing::info!(seller_id = %caller.user_id, webhook_id = %endpoint.webhook_id, "webhook endpoint registered");
    Ok(Registered { endpoint: endpoint.view(), secret: secret.reveal() })
}

/// `GET /v1/seller/webhooks`: the seller's endpoints, without secrets.
pub async fn list(endpoints: &impl WebhookEndpoints, caller: &Caller) -> Result<Vec<EndpointView>> {
    caller.require_seller()?;
    let mut found = endpoints.seller_endpoints(&caller.user_id).await?;
    found.sort_by_key(|e| e.created_at);
    Ok(found.iter().map(Endpoint::view).collect())
}

/// Longest webhook or delivery id we look up: longer ones name nothing (and would pass DynamoDB's key limits).
const MAX_ID_LEN: usize = 200;

async fn owned(endpoints: &impl WebhookEndpoints, caller: &Caller, webhook_id: &str) -> Result<Endpoint> {
    caller.require_seller()?;
    if webhook_id.len() > MAX_ID_LEN {
        return Err(DomainError::not_found("webhook"));
    }
    endpoints.endpoint(&caller.user_id, webhook_id).await?.ok_or_else(|| DomainError::not_found("webhook"))
}

/// `DELETE /v1/seller/webhooks/{webhook_id}`: its queued deliveries fail when their turn comes.
pub async fn delete(endpoints: &impl WebhookEndpoints, caller: &Caller, webhook_id: &str) -> Result<()> {
    caller.require_seller()?;
    if webhook_id.len() > MAX_ID_LEN || !endpoints.delete_endpoint(&caller.user_id, webhook_id).await? {
        return Err(DomainError::not_found("webhook"));
    }
    Ok(())
}

/// `POST /v1/seller/webhooks/{webhook_id}/rotate`: a new secret (shown once); the old one keeps signing for a
/// day beside it. Rotating also re-enables a disabled endpoint: the seller has looked at it.
pub async fn rotate(
    endpoints: &impl WebhookEndpoints,
    caller: &Caller,
    webhook_id: &str,
    now: DateTime<Utc>,
) -> Result<Registered> {
    for _ in 0..WRITE_ATTEMPTS {
        let mut endpoint = owned(endpoints, caller, webhook_id).await?;
        let expected = endpoint.version;
        let secret = new_secret();
        endpoint.rotate(&secret, now);
        if matches!(endpoint.breaker, Breaker::Disabled { .. }) {
            endpoint.breaker = Breaker::default();
        }
        endpoint.version += 1;
        match endpoints.save_endpoint(&endpoint, expected).await {
            Ok(()) => return Ok(Registered { endpoint: endpoint.view(), secret: secret.reveal() }),
            Err(err) if is_conflict(&err) => continue,
            Err(err) => return Err(err),
        }
    }
    Err(DomainError::Transient("the endpoint is changing concurrently".into()))
}

fn is_conflict(err: &DomainError) -> bool {
    matches!(err, DomainError::Conflict { code: ErrorCode::ConcurrentUpdate, .. })
}

/// `GET /v1/seller/webhooks/{webhook_id}/deliveries`: newest first.
pub async fn deliveries(
    endpoints: &impl WebhookEndpoints,
    deliveries: &impl WebhookDeliveries,
    caller: &Caller,
    webhook_id: &str,
    limit: PageLimit,
    cursor: Option<&str>,
) -> Result<Page<DeliveryView>> {
    owned(endpoints, caller, webhook_id).await?;
    deliveries.list_deliveries(webhook_id, limit, cursor).await
}

/// `POST /v1/seller/webhooks/{webhook_id}/deliveries/{delivery_id}/retry`: sends a delivery again now, whatever
/// it came to (its attempts so far are kept). One being sent is 409.
pub async fn retry(
    endpoints: &impl WebhookEndpoints,
    deliveries: &impl WebhookDeliveries,
    queue: &impl DeliveryQueue,
    caller: &Caller,
    webhook_id: &str,
    delivery_id: &str,
    now: DateTime<Utc>,
) -> Result<DeliveryView> {
    owned(endpoints, caller, webhook_id).await?;
    if delivery_id.len() > MAX_ID_LEN {
        return Err(DomainError::not_found("delivery"));
    }
    let mut delivery =
        deliveries.delivery(webhook_id, delivery_id).await?.ok_or_else(|| DomainError::not_found("delivery"))?;
    if matches!(delivery.state, DeliveryState::Sending { lease_until } if lease_until > now) {
        return Err(DomainError::conflict(ErrorCode::ConcurrentUpdate, "this delivery is being sent now"));
    }
    let expected = delivery.version;
    delivery.reopen(now);
    deliveries.save_delivery(&delivery, expected).await?;
    queue.enqueue(&task_of(&delivery), Duration::ZERO).await?;
    Ok(delivery.view())
}

fn task_of(delivery: &Delivery) -> DeliveryTask {
    DeliveryTask {
        seller_id: delivery.seller_id.clone(),
        webhook_id: delivery.webhook_id.clone(),
        delivery_id: delivery.delivery_id.clone(),
    }
}

/// Makes the deliveries of one order notification: one per (seller event, endpoint of that seller subscribed
/// to its type and not disabled), each queued. Safe to run again for the same notification: a delivery that
/// exists is not made twice, and one still waiting for its first attempt is queued again (the first run may have
/// stopped between the two). Returns how many deliveries it made.
pub async fn fan_out<E, D, Q, O>(
    endpoints: &E,
    deliveries: &D,
    queue: &Q,
    orders: &O,
    notification: &OrderNotification,
    now: DateTime<Utc>,
) -> Result<usize>
where
    E: WebhookEndpoints,
    D: WebhookDeliveries,
    Q: DeliveryQueue,
    O: OrderReader,
{
    let Some(order) = orders.get_order(&notification.order_id).await? else {
        // Orders are never deleted and are written before their notifications: redelivering this would not help.
        tracing::warn!(order_id = %notification.order_id, "a notification about an order that does not exist");
        return Ok(0);
    };
    deliver_events(endpoints, deliveries, queue, &seller_events(notification, &order)?, now).await
}

/// Makes and queues the deliveries of sellers' events (see [`fan_out`]); safe to run again.
pub async fn deliver_events<E, D, Q>(
    endpoints: &E,
    deliveries: &D,
    queue: &Q,
    events: &[SellerEvent],
    now: DateTime<Utc>,
) -> Result<usize>
where
    E: WebhookEndpoints,
    D: WebhookDeliveries,
    Q: DeliveryQueue,
{
    let mut made = 0;
    for event in events {
        let wanted = endpoints.seller_endpoints(&event.seller_id).await?;
        for endpoint in wanted.iter().filter(|e| e.events.contains(&event.event_type)) {
            if matches!(endpoint.breaker, Breaker::Disabled { .. }) {
                continue;
            }
            let delivery = Delivery::new(event, endpoint, now)?;
            let queue_it = match deliveries.create_delivery(&delivery).await? {
                None => {
                    made += 1;
                    true
                }
                Some(existing) => {
                    existing.attempt_count == 0 && matches!(existing.state, DeliveryState::Pending { .. })
                }
            };
            if queue_it {
                queue.enqueue(&task_of(&delivery), Duration::ZERO).await?;
            }
        }
    }
    Ok(made)
}

/// What one task came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempted {
    /// Sent; the delivery is now `Delivered`, `Pending` (retry queued) or `Failed`.
    Sent { status: Option<u16>, state: DeliveryState },
    /// Not due yet, the breaker is open, or the budget is spent: queued again for `until`.
    Waiting { until: DateTime<Utc> },
    /// Nothing to do: done already, taken by another worker, or gone.
    Skipped,
}

/// What the delivery worker talks to, and how it paces each endpoint.
pub struct Deliverer<E, D, Q, S, M> {
    pub endpoints: E,
    pub deliveries: D,
    pub queue: Q,
    pub sender: S,
    /// Where the seller's email goes when an endpoint is disabled.
    pub mail: M,
    pub policy: DeliveryPolicy,
}

impl<E, D, Q, S, M> Deliverer<E, D, Q, S, M>
where
    E: WebhookEndpoints,
    D: WebhookDeliveries,
    Q: DeliveryQueue,
    S: WebhookSender,
    M: MailQueue,
{
    /// Handles one task of the deliveries queue at `now`; `fraction` in [0, 1) draws the retry's jitter.
    pub async fn attempt(&self, task: &DeliveryTask, now: DateTime<Utc>, fraction: f64) -> Result<Attempted> {
        let ports = (&self.endpoints, &self.deliveries, &self.queue, &self.sender, &self.mail);
        attempt(ports, task, &self.policy, (now, fraction)).await
    }
}

async fn attempt<E, D, Q, S, M>(
    (endpoints, deliveries, queue, sender, mail): (&E, &D, &Q, &S, &M),
    task: &DeliveryTask,
    policy: &DeliveryPolicy,
    (now, fraction): (DateTime<Utc>, f64),
) -> Result<Attempted>
where
    E: WebhookEndpoints,
    D: WebhookDeliveries,
    Q: DeliveryQueue,
    S: WebhookSender,
    M: MailQueue,
{
    let Some(mut delivery) = deliveries.delivery(&task.webhook_id, &task.delivery_id).await? else {
        return Ok(Attempted::Skipped);
    };
    match delivery.due(now) {
        Ok(()) => {}
        Err(None) => return Ok(Attempted::Skipped),
        // Not due yet (a task that came back early): no spread, its time is its own.
        Err(Some(until)) => return wait(queue, task, until, (now, 0.0)).await,
    }
    let Some(endpoint) = endpoints.endpoint(&task.seller_id, &task.webhook_id).await? else {
        let expected = delivery.version;
        delivery.state = DeliveryState::Failed { reason: "the endpoint was deleted".into() };
        delivery.version += 1;
        return settle(deliveries, &delivery, expected).await;
    };
    let endpoint = match admit(endpoints, endpoint, policy, now).await? {
        Admitted::Go(endpoint) => endpoint,
        Admitted::Disabled => {
            let expected = delivery.version;
            delivery.state = DeliveryState::Failed { reason: "the endpoint is disabled".into() };
            delivery.version += 1;
            return settle(deliveries, &delivery, expected).await;
        }
        Admitted::Wait(until) => {
            let expected = delivery.version;
            delivery.postpone(until);
            if let Err(err) = deliveries.save_delivery(&delivery, expected).await {
                return if is_conflict(&err) { Ok(Attempted::Skipped) } else { Err(err) };
            }
            return wait(queue, task, until, (now, fraction)).await;
        }
    };
    // Take the delivery: one worker per attempt.
    let expected = delivery.version;
    let number = delivery.start(now);
    match deliveries.save_delivery(&delivery, expected).await {
        Ok(()) => {}
        Err(err) if is_conflict(&err) => return Ok(Attempted::Skipped),
        Err(err) => return Err(err),
    }
    let headers = WebhookHeaders::sign(
        &endpoint.signing_secrets(now)?,
        &delivery.message_id()?,
        now.timestamp(),
        delivery.body.as_bytes(),
    )
    .map_err(DomainError::unexpected)?;
    let sent = sender.send(&endpoint.url, &headers, delivery.body.as_bytes()).await;
    let done = now + chrono::Duration::from_std(sent.latency).unwrap_or_default();
    let disposition = classify(&sent.outcome(), done);
    let next = next_step(number, disposition, Jitter::Full, fraction);
    let attempt = Attempt {
        number,
        at: now,
        status: sent.status,
        error: sent.error.map(str::to_owned),
        latency_ms: sent.latency.as_millis() as u64,
    };
    let expected = delivery.version;
    delivery.finish(attempt, next, done);
    deliveries.save_delivery(&delivery, expected).await?;
    let url = endpoint.url.clone();
    if report(endpoints, *endpoint, disposition, sent.status, policy, done).await? {
        tell_seller(mail, task, &url, sent.status, done).await;
    }
    if let DeliveryState::Pending { next_at } = delivery.state {
        wait(queue, task, next_at, (now, 0.0)).await?;
    }
    tracing::info!(
        webhook_id = %task.webhook_id, delivery_id = %task.delivery_id, attempt = number, status = ?sent.status,
        error = ?sent.error, latency_ms = sent.latency.as_millis() as u64, ?next, "webhook attempt"
    );
    Ok(Attempted::Sent { status: sent.status, state: delivery.state })
}

/// Queues the task again for `until`: in whole seconds (SQS's unit; never 0, which would spin), spread by up to
/// [`WAIT_SPREAD_SECS`] with the task's `fraction` so that tasks held back together (by an open breaker, or an
/// empty budget) do not all come back in the same instant.
async fn wait(
    queue: &impl DeliveryQueue,
    task: &DeliveryTask,
    until: DateTime<Utc>,
    (now, fraction): (DateTime<Utc>, f64),
) -> Result<Attempted> {
    let base = (until - now).to_std().unwrap_or_default();
    let secs = base.as_secs() + u64::from(base.subsec_nanos() > 0);
    let spread = (fraction.clamp(0.0, 1.0) * WAIT_SPREAD_SECS as f64) as u64;
    let delay = Duration::from_secs((secs + spread).max(1)).min(MAX_QUEUE_DELAY);
    queue.enqueue(task, delay).await?;
    Ok(Attempted::Waiting { until })
}

async fn settle(deliveries: &impl WebhookDeliveries, delivery: &Delivery, expected: u64) -> Result<Attempted> {
    match deliveries.save_delivery(delivery, expected).await {
        Ok(()) => Ok(Attempted::Sent { status: None, state: delivery.state.clone() }),
        Err(err) if is_conflict(&err) => Ok(Attempted::Skipped),
        Err(err) => Err(err),
    }
}

enum Admitted {
    Go(Box<Endpoint>),
    Wait(DateTime<Utc>),
    Disabled,
}

/// The breaker's and the budget's leave for one attempt, written to the endpoint (conditional on its version,
/// re-read and decided again when another attempt wrote first).
async fn admit(
    endpoints: &impl WebhookEndpoints,
    mut endpoint: Endpoint,
    policy: &DeliveryPolicy,
    now: DateTime<Utc>,
) -> Result<Admitted> {
    for _ in 0..WRITE_ATTEMPTS {
        let (admission, breaker) = endpoint.breaker.admit(now);
        match admission {
            Admission::Disabled => return Ok(Admitted::Disabled),
            Admission::Wait { until } => return Ok(Admitted::Wait(until)),
            Admission::Send | Admission::Probe => {}
        }
        // The endpoint's own budget, at the rate configured now (a changed setting applies at once).
        let budget = Budget { rate_per_sec: policy.rate_per_sec, burst: policy.burst, ..endpoint.budget };
        let budget = match budget.take(now) {
            Ok(budget) => budget,
            Err(until) => return Ok(Admitted::Wait(until)),
        };
        let expected = endpoint.version;
        let mut next = endpoint.clone();
        next.breaker = breaker;
        next.budget = budget;
        next.version += 1;
        match endpoints.save_endpoint(&next, expected).await {
            Ok(()) => return Ok(Admitted::Go(Box::new(next))),
            Err(err) if is_conflict(&err) => {
                endpoint = match endpoints.endpoint(&endpoint.seller_id, &endpoint.webhook_id).await? {
                    Some(current) => current,
                    None => return Ok(Admitted::Disabled),
                };
            }
            Err(err) => return Err(err),
        }
    }
    Err(DomainError::Transient("the endpoint is changing concurrently".into()))
}

/// Emails the seller that its endpoint was disabled (once per disabling: the event id is the endpoint and the
/// time). A failure to queue it is logged: the endpoint shows as disabled in its listing either way.
async fn tell_seller(mail: &impl MailQueue, task: &DeliveryTask, url: &str, status: Option<u16>, at: DateTime<Utc>) {
    let reason = match status {
        Some(410) => "it answered 410 Gone".to_owned(),
        _ => "it kept failing for days".to_owned(),
    };
    let event = MailEvent::WebhookDisabled {
        event_id: format!("{}-{}", task.webhook_id, at.timestamp()),
        seller_id: task.seller_id.clone(),
        webhook_id: task.webhook_id.clone(),
        url: url.to_owned(),
        reason,
    };
    if let Err(err) = mail.enqueue(&[event]).await {
        tracing::error!(webhook_id = %task.webhook_id, error = %err, "the seller's email about the disabled endpoint was not queued");
    }
}

/// Feeds an attempt's result to the endpoint's breaker: a delivery closes it, a retryable failure counts
/// against it, a 410 Gone disables the endpoint at once (the receiver said it is gone for good). Other
/// refusals (4xx) say nothing about the endpoint's health.
/// Starts from the endpoint as the admission wrote it, so the common case (a delivery to a closed breaker)
/// reads and writes nothing; it reads the endpoint again only after losing a write to another attempt.
async fn report(
    endpoints: &impl WebhookEndpoints,
    admitted: Endpoint,
    disposition: Disposition,
    status: Option<u16>,
    policy: &DeliveryPolicy,
    now: DateTime<Utc>,
) -> Result<bool> {
    let (seller_id, webhook_id) = (admitted.seller_id.clone(), admitted.webhook_id.clone());
    let mut current = Some(admitted);
    for _ in 0..WRITE_ATTEMPTS {
        let Some(mut endpoint) = current.take() else {
            return Ok(false);
        };
        let before = endpoint.breaker.clone();
        endpoint.breaker = match disposition {
            Disposition::Delivered => before.on_success(),
            Disposition::Retry | Disposition::RetryAfter(_) => before.on_failure(now, &policy.breaker),
            Disposition::GiveUp if status == Some(410) => Breaker::Disabled { since: now },
            Disposition::GiveUp => before.clone(),
        };
        if endpoint.breaker == before {
            return Ok(false);
        }
        let became_disabled = matches!(endpoint.breaker, Breaker::Disabled { .. });
        let expected = endpoint.version;
        endpoint.version += 1;
        match endpoints.save_endpoint(&endpoint, expected).await {
            Ok(()) => {
                if became_disabled {
                    tracing::warn!(%seller_id, %webhook_id, "webhook endpoint disabled");
                }
                return Ok(became_disabled);
            }
            Err(err) if is_conflict(&err) => current = endpoints.endpoint(&seller_id, &webhook_id).await?,
            Err(err) => return Err(err),
        }
    }
    Err(DomainError::Transient("the endpoint is changing concurrently".into()))
}
