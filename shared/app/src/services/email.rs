//! Emails (docs/EMAIL.md): one message of the emails queue becomes at most one email per recipient, whatever
//! the queue redelivers, and none to a suppressed address; SES feedback suppresses addresses.
//!
//! Sending is claim, send, mark: the ledger entry of (event, recipient) is claimed with a lease before the
//! provider is called, marked sent after, and released if the send failed, so a redelivery sends it then.
//! A worker that crashes after the provider accepted the email and before marking it leaves a claim whose
//! lease runs out: that one email can go twice. It is the only way to a duplicate, and SES offers no
//! idempotency key that could close it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use commerce_domain::email::{self, Feedback, Letter, MailEvent, Shop};
use commerce_domain::error::{DomainError, Result};
use commerce_domain::order::{Actor, NotificationKind, Order, OrderNotification};

use crate::ports::{Contacts, MailClaim, MailLedger, MailQueue, MailSender, OrderReader, OrderWriter, Suppressions};
use crate::services::checkout::update_order;

/// How long a claim keeps other workers off an email: longer than one send takes, shorter than the queue's
/// visibility timeout, so a crashed worker's email is sent by the redelivery.
pub const CLAIM_LEASE: Duration = Duration::from_secs(60);

/// What became of one mail event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Sent before (a redelivery, or a second producer of the same event).
    AlreadySent,
    /// The address bounced or complained before.
    Suppressed,
    /// Nobody to write to: no address, or one mail cannot be sent to.
    NoRecipient,
    /// The event is not one that is mailed, or what it is about is gone.
    NotMailed,
}

/// What the sender talks to.
pub struct MailDeps<'a, S, L, O, C> {
    pub sender: &'a S,
    /// The ledger and the suppression list (one table).
    pub ledger: &'a L,
    pub orders: &'a O,
    pub contacts: &'a C,
    pub shop: &'a Shop,
}

impl<S, L, O, C> Clone for MailDeps<'_, S, L, O, C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S, L, O, C> Copy for MailDeps<'_, S, L, O, C> {}

/// Who an event is mailed to, before the letter is written.
enum Addressed {
    Order(OrderNotification, Box<Order>, String),
    Other(String),
}

/// Sends the email `event` calls for, once per recipient. A `Busy` claim or a failed send is an error, so the
/// queue brings the message back.
#[tracing::instrument(skip_all, fields(event_id = %event.event_id()))]
pub async fn send<S, L, O, C>(deps: MailDeps<'_, S, L, O, C>, event: &MailEvent, now: DateTime<Utc>) -> Result<Outcome>
where
    S: MailSender,
    L: MailLedger + Suppressions,
    O: OrderReader + OrderWriter,
    C: Contacts,
{
    let Some(kind) = event.kind() else {
        return Ok(Outcome::NotMailed);
    };
    let addressed = match event {
        MailEvent::Order { notification } => {
            let Some(order) = deps.orders.get_order(&notification.order_id).await? else {
                return Ok(Outcome::NotMailed);
            };
            // Before any claim: an order whose customer is not mailed this (a guest's failed payment) costs no write.
            if email::MailKind::of_order(notification.kind, &order).is_none() {
                return Ok(Outcome::NotMailed);
            }
            let to = order.header().customer.email.clone().unwrap_or_default();
            Addressed::Order(notification.clone(), Box::new(order), to)
        }
        MailEvent::FlashSaleWon { customer_id: user, .. }
        | MailEvent::LowStock { seller_id: user, .. }
        | MailEvent::WebhookDisabled { seller_id: user, .. } => {
            Addressed::Other(deps.contacts.email_of(user).await?.unwrap_or_default())
        }
    };
    let raw_to = match &addressed {
        Addressed::Order(_, _, to) | Addressed::Other(to) => to,
    };
    let Some(to) = email::normalize_address(raw_to) else {
        tracing::info!(kind = kind.as_str(), "no address to email");
        return Ok(Outcome::NoRecipient);
    };
    if deps.ledger.is_suppressed(&to).await? {
        tracing::info!("suppressed address: not emailed");
        return Ok(Outcome::Suppressed);
    }
    let key = email::ledger_key(&event.event_id(), &to);
    match deps.ledger.claim(&key, now, CLAIM_LEASE).await? {
        MailClaim::Sent => return Ok(Outcome::AlreadySent),
        MailClaim::Busy => return Err(DomainError::Transient("another worker is sending this email".into())),
        MailClaim::Mine => {}
    }
    let sent = async {
        let Some(letter) = letter(deps, addressed, event, now).await? else {
            return Ok(None);
        };
        let rendered = letter.render(deps.shop, &to)?;
        deps.sender.send(&rendered).await.map(Some)
    }
    .await;
    match sent {
        Ok(Some(message_id)) => {
            deps.ledger.mark_sent(&key, &message_id, now).await?;
            tracing::info!(kind = kind.as_str(), %message_id, "email sent");
            Ok(Outcome::Sent)
        }
        Ok(None) => {
            deps.ledger.release(&key).await?;
            Ok(Outcome::NotMailed)
        }
        Err(err) => {
            // Best effort: if this fails too, the lease runs out and the redelivery sends it.
            if let Err(release) = deps.ledger.release(&key).await {
                tracing::warn!(error = %release, "claim not released");
            }
            Err(err)
        }
    }
}

/// The letter for the event; a guest's confirmation gets a link with a new token that opens the order.
async fn letter<S, L, O, C>(
    deps: MailDeps<'_, S, L, O, C>,
    addressed: Addressed,
    event: &MailEvent,
    now: DateTime<Utc>,
) -> Result<Option<Letter>>
where
    O: OrderReader + OrderWriter,
{
    let letter = match (event, addressed) {
        (MailEvent::Order { .. }, Addressed::Order(notification, order, _)) => {
            let guest = order.header().customer.user_id.is_none();
            let (order, token) = if guest && notification.kind == NotificationKind::OrderPlaced {
                let mut token = None;
                let order = update_order(deps.orders, order.id(), |order| {
                    token = order.issue_link(Actor::system("email"), now);
                    Ok(token.is_some())
                })
                .await?;
                (order, token)
            } else {
                (*order, None)
            };
            // A guest's other emails carry no link: each new token is one more key to the order in a mailbox.
            let url = (!guest || token.is_some()).then(|| deps.shop.order_url(order.id(), token.as_deref()));
            return Ok(Letter::of_order(&notification, &order, url));
        }
        (MailEvent::FlashSaleWon { sale_id, ticket_id, title, hold_expires_at, .. }, _) => Letter::FlashSaleWon {
            title: title.clone(),
            expires_at: email::shown_time(*hold_expires_at),
            checkout_url: deps.shop.flash_checkout_url(sale_id, ticket_id),
        },
        (MailEvent::LowStock { sku, warehouse_id, available, threshold, .. }, _) => Letter::LowStock {
            sku: sku.clone(),
            available: *available,
            threshold: *threshold,
            warehouse: warehouse_id.clone(),
        },
        (MailEvent::WebhookDisabled { webhook_id, url, reason, .. }, _) => {
            Letter::WebhookDisabled { webhook_id: webhook_id.clone(), url: url.clone(), reason: reason.clone() }
        }
        (MailEvent::Order { .. }, Addressed::Other(_)) => return Ok(None),
    };
    Ok(Some(letter))
}

/// The emails an order notification calls for, to queue (none for a notification that is not mailed).
pub fn order_mail(notification: &OrderNotification) -> Option<MailEvent> {
    email::MailKind::of_notification(notification.kind).map(|_| MailEvent::Order { notification: notification.clone() })
}

/// Queues the email of an order notification, if it is mailed.
pub async fn queue_order_mail(queue: &impl MailQueue, notification: &OrderNotification) -> Result<()> {
    match order_mail(notification) {
        Some(event) => queue.enqueue(&[event]).await,
        None => Ok(()),
    }
}

/// Applies SES feedback: suppresses a hard bounce's failed recipients and a complaint's complainants. Safe to
/// apply twice.
pub async fn apply_feedback(
    suppressions: &impl Suppressions,
    feedback: &Feedback,
    now: DateTime<Utc>,
) -> Result<usize> {
    let Some(reason) = feedback.reason else {
        return Ok(0);
    };
    for address in &feedback.suppress {
        suppressions.suppress(address, reason, now).await?;
    }
    if !feedback.suppress.is_empty() {
        tracing::info!(count = feedback.suppress.len(), ?reason, feedback_id = ?feedback.feedback_id, "addresses suppressed");
    }
    Ok(feedback.suppress.len())
}
