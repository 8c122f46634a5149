//! Emails to shoppers and sellers: which event is mailed to whom, and what the message says, as a text and an
//! HTML part from compiled templates (`templates/email/`, checked at build time).
//!
//! An email is addressed per event and recipient: [`ledger_key`] is what makes "exactly one email per event per
//! recipient" hold when a queue redelivers. Sending, the ledger and the suppression list are ports.

use askama::Template;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{DomainError, Result};
use crate::money::Money;
use crate::order::{FailureReason, NotificationKind, Order, OrderLine, OrderNotification};

/// The longest address SMTP carries (RFC 5321 path limit less the brackets).
pub const MAX_ADDRESS_LEN: usize = 254;

/// Why someone is emailed: stable names for metrics and the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailKind {
    OrderConfirmed,
    PaymentFailed,
    OrderShipped,
    OrderDelivered,
    RefundIssued,
    ReturnApproved,
    FlashSaleWon,
    LowStock,
    WebhookDisabled,
}

impl MailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrderConfirmed => "order_confirmed",
            Self::PaymentFailed => "payment_failed",
            Self::OrderShipped => "order_shipped",
            Self::OrderDelivered => "order_delivered",
            Self::RefundIssued => "refund_issued",
            Self::ReturnApproved => "return_approved",
            Self::FlashSaleWon => "flash_sale_won",
            Self::LowStock => "low_stock",
            Self::WebhookDisabled => "webhook_disabled",
        }
    }

    /// The order notifications that are mailed to the order's customer, and as what.
    pub fn of_notification(kind: NotificationKind) -> Option<Self> {
        match kind {
            NotificationKind::OrderPlaced => Some(Self::OrderConfirmed),
            NotificationKind::PaymentFailed => Some(Self::PaymentFailed),
            NotificationKind::OrderShipped => Some(Self::OrderShipped),
            NotificationKind::OrderDelivered => Some(Self::OrderDelivered),
            NotificationKind::OrderRefunded => Some(Self::RefundIssued),
            NotificationKind::ReturnApproved => Some(Self::ReturnApproved),
            NotificationKind::ReturnRequested | NotificationKind::OrderCancelled => None,
        }
    }

    /// What `order`'s customer is mailed for the notification, if anything. A guest's failed payment is not
    /// mailed: a guest's address is whatever the checkout was given, and a declined card costs nothing, so
    /// mailing it would let anyone make the shop email any address. Guests see the failure in the order's status.
    pub fn of_order(kind: NotificationKind, order: &Order) -> Option<Self> {
        match Self::of_notification(kind)? {
            Self::PaymentFailed if order.header().customer.user_id.is_none() => None,
            kind => Some(kind),
        }
    }
}

/// One message of the emails queue: an event someone is to be emailed about. `event_id` is stable per event,
/// so a redelivered or re-sent message is the same event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MailEvent {
    /// An order's notification, mailed to the order's customer (rendered from the order as it is when sent).
    Order { notification: OrderNotification },
    /// A flash-sale entry won a unit: mailed to the entrant.
    FlashSaleWon {
        event_id: String,
        customer_id: String,
        sale_id: String,
        ticket_id: String,
        title: String,
        hold_expires_at: DateTime<Utc>,
    },
    /// A SKU's available stock fell below its seller's alert level: mailed to the seller.
    LowStock {
        event_id: String,
        seller_id: String,
        sku: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        warehouse_id: Option<String>,
        available: i64,
        threshold: i64,
    },
    /// A seller's webhook endpoint was disabled after failing for days: mailed to the seller.
    WebhookDisabled { event_id: String, seller_id: String, webhook_id: String, url: String, reason: String },
}

impl MailEvent {
    /// What the event is mailed as; `None` for an order notification that is not mailed.
    pub fn kind(&self) -> Option<MailKind> {
        match self {
            Self::Order { notification } => MailKind::of_notification(notification.kind),
            Self::FlashSaleWon { .. } => Some(MailKind::FlashSaleWon),
            Self::LowStock { .. } => Some(MailKind::LowStock),
            Self::WebhookDisabled { .. } => Some(MailKind::WebhookDisabled),
        }
    }

    /// The event's stable id, with its kind: the first half of the ledger key.
    pub fn event_id(&self) -> String {
        match self {
            Self::Order { notification } => format!("order:{}", notification.notification_id),
            Self::FlashSaleWon { event_id, .. } => format!("flash:{event_id}"),
            Self::LowStock { event_id, .. } => format!("stock:{event_id}"),
            Self::WebhookDisabled { event_id, .. } => format!("webhook:{event_id}"),
        }
    }
}

/// The ledger key of one email: the event and a hash of the normalized recipient (no address in a key).
pub fn ledger_key(event_id: &str, to: &str) -> String {
    let recipient = hex::encode(Sha256::digest(to.trim().to_lowercase().as_bytes()));
    format!("SENT#{event_id}#{recipient}")
}

/// An address mail can be sent to, lowercased and trimmed; `None` for anything else. Deliberately plain: one
/// `@`, a local part, a dotted domain, no spaces, quotes, brackets or control characters, at most 254 bytes.
pub fn normalize_address(address: &str) -> Option<String> {
    let address = address.trim().to_lowercase();
    if address.is_empty() || address.len() > MAX_ADDRESS_LEN {
        return None;
    }
    let (local, domain) = address.split_once('@')?;
    let plain = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_graphic() && !"@<>()[]\\,;:\"".contains(c));
    let dotted = domain.split('.').count() >= 2 && domain.split('.').all(|label| !label.is_empty());
    (plain(local) && plain(domain) && dotted && local.len() <= 64).then_some(address)
}

/// The shop, as emails name it and link to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shop {
    pub name: String,
    /// Where order links point: `<base_url>/v1/orders/<order_id>`.
    pub base_url: String,
}

impl Shop {
    /// The order's page; a guest's carries a token that opens it.
    pub fn order_url(&self, order_id: &str, token: Option<&str>) -> String {
        let base = self.base_url.trim_end_matches('/');
        match token {
            Some(token) => format!("{base}/v1/orders/{order_id}?order_token={token}"),
            None => format!("{base}/v1/orders/{order_id}"),
        }
    }

    /// Where a won flash-sale entry is checked out.
    pub fn flash_checkout_url(&self, sale_id: &str, ticket_id: &str) -> String {
        format!("{}/v1/flash-sales/{sale_id}/entries/{ticket_id}", self.base_url.trim_end_matches('/'))
    }
}

/// Money as an email shows it: `12.34 USD`.
fn shown(money: Money) -> String {
    format!("{} {}", money.to_decimal(), money.currency)
}

/// One line of an order, as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineRow {
    pub sku: String,
    pub title: String,
    pub quantity: u32,
    pub total: String,
}

impl LineRow {
    fn of(line: &OrderLine) -> Self {
        Self {
            sku: line.sku.clone(),
            title: line.title.clone(),
            quantity: line.quantity,
            total: shown(line.line_total),
        }
    }
}

/// The order's lines and totals, as every order email shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderBlock {
    pub order_id: String,
    pub lines: Vec<LineRow>,
    pub subtotal: String,
    pub discount: Option<String>,
    pub shipping: String,
    pub tax: String,
    pub total: String,
    pub url: Option<String>,
}

impl OrderBlock {
    pub fn of(order: &Order, url: Option<String>) -> Self {
        let totals = order.totals();
        Self {
            order_id: order.id().to_owned(),
            lines: order.header().lines.iter().map(LineRow::of).collect(),
            subtotal: shown(totals.subtotal),
            discount: (totals.discount_total.amount != 0).then(|| shown(totals.discount_total)),
            shipping: shown(totals.shipping_total),
            tax: shown(totals.tax_total),
            total: shown(totals.total),
            url,
        }
    }
}

/// What an email says, before it is addressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Letter {
    OrderConfirmed {
        order: OrderBlock,
    },
    PaymentFailed {
        order: OrderBlock,
        reason: String,
    },
    OrderShipped {
        order: OrderBlock,
        carrier: String,
        tracking_number: String,
        tracking_url: Option<String>,
        parcel: Vec<LineRow>,
    },
    OrderDelivered {
        order: OrderBlock,
        tracking_number: Option<String>,
        parcel: Vec<LineRow>,
    },
    RefundIssued {
        order: OrderBlock,
        amount: String,
    },
    ReturnApproved {
        order: OrderBlock,
        parcel: Vec<LineRow>,
    },
    FlashSaleWon {
        title: String,
        expires_at: String,
        checkout_url: String,
    },
    LowStock {
        sku: String,
        available: i64,
        threshold: i64,
        warehouse: Option<String>,
    },
    WebhookDisabled {
        webhook_id: String,
        url: String,
        reason: String,
    },
}

impl Letter {
    /// The letter of an order notification to the order's customer, `None` for notifications not mailed.
    /// `url` is the order's page as the customer opens it (with a token for a guest).
    pub fn of_order(notification: &OrderNotification, order: &Order, url: Option<String>) -> Option<Self> {
        let block = OrderBlock::of(order, url);
        let seller = notification.seller_id.as_deref().unwrap_or_default();
        let parcel = || order.header().lines.iter().filter(|l| l.seller_id == seller).map(LineRow::of).collect();
        let letter = match MailKind::of_order(notification.kind, order)? {
            MailKind::OrderConfirmed => Self::OrderConfirmed { order: block },
            MailKind::PaymentFailed => Self::PaymentFailed {
                order: block,
                reason: failure_text(order.failure().unwrap_or(FailureReason::PaymentDeclined)).to_owned(),
            },
            MailKind::OrderShipped => {
                let shipment = order.shipment_view(seller)?;
                Self::OrderShipped {
                    order: block,
                    carrier: shipment.carrier.name().to_owned(),
                    tracking_number: shipment.tracking_number,
                    tracking_url: shipment.tracking_url,
                    parcel: parcel(),
                }
            }
            MailKind::OrderDelivered => Self::OrderDelivered {
                order: block,
                tracking_number: order.shipment_view(seller).map(|s| s.tracking_number),
                parcel: parcel(),
            },
            MailKind::RefundIssued => {
                Self::RefundIssued { order: block, amount: shown(notification.amount.unwrap_or(order.total())) }
            }
            MailKind::ReturnApproved => Self::ReturnApproved { order: block, parcel: parcel() },
            MailKind::FlashSaleWon | MailKind::LowStock | MailKind::WebhookDisabled => return None,
        };
        Some(letter)
    }

    pub fn kind(&self) -> MailKind {
        match self {
            Self::OrderConfirmed { .. } => MailKind::OrderConfirmed,
            Self::PaymentFailed { .. } => MailKind::PaymentFailed,
            Self::OrderShipped { .. } => MailKind::OrderShipped,
            Self::OrderDelivered { .. } => MailKind::OrderDelivered,
            Self::RefundIssued { .. } => MailKind::RefundIssued,
            Self::ReturnApproved { .. } => MailKind::ReturnApproved,
            Self::FlashSaleWon { .. } => MailKind::FlashSaleWon,
            Self::LowStock { .. } => MailKind::LowStock,
            Self::WebhookDisabled { .. } => MailKind::WebhookDisabled,
        }
    }

    fn subject(&self, shop: &str) -> String {
        match self {
            Self::OrderConfirmed { order } => format!("{shop}: order {} confirmed", order.order_id),
            Self::PaymentFailed { order, .. } => format!("{shop}: payment failed for order {}", order.order_id),
            Self::OrderShipped { order, .. } => format!("{shop}: order {} has shipped", order.order_id),
            Self::OrderDelivered { order, .. } => format!("{shop}: order {} was delivered", order.order_id),
            Self::RefundIssued { order, amount } => format!("{shop}: {amount} refunded for order {}", order.order_id),
            Self::ReturnApproved { order, .. } => format!("{shop}: return approved for order {}", order.order_id),
            Self::FlashSaleWon { title, .. } => format!("{shop}: you got {title}, check out to keep it"),
            Self::LowStock { sku, available, .. } => format!("{shop}: low stock for {sku} ({available} left)"),
            Self::WebhookDisabled { webhook_id, .. } => format!("{shop}: webhook {webhook_id} disabled"),
        }
    }

    /// The addressed email: subject, text and HTML. The subject keeps no control character: a seller's SKU or a
    /// shop name with a line break cannot add a header.
    pub fn render(&self, shop: &Shop, to: &str) -> Result<Email> {
        let subject: String = self.subject(&shop.name).chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        let text = TextPart { shop: &shop.name, letter: self }
            .render()
            .map_err(|e| DomainError::unexpected(format!("email text: {e}")))?;
        let html = HtmlPart { shop: &shop.name, subject: &subject, letter: self }
            .render()
            .map_err(|e| DomainError::unexpected(format!("email html: {e}")))?;
        Ok(Email { kind: self.kind(), to: to.to_owned(), subject, text, html })
    }
}

fn failure_text(reason: FailureReason) -> &'static str {
    match reason {
        FailureReason::PaymentDeclined => "the card was declined",
        FailureReason::PaymentError => "the payment provider could not be reached",
        FailureReason::OutOfStock => "an item sold out",
        FailureReason::PromotionUnavailable => "a promotion was used up",
        FailureReason::Expired => "the payment was not completed in time",
        FailureReason::Internal => "of an error on our side",
    }
}

/// When a flash-sale hold ends, as the email shows it.
pub fn shown_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[derive(Template)]
#[template(path = "email/mail.txt", escape = "none")]
struct TextPart<'a> {
    shop: &'a str,
    letter: &'a Letter,
}

#[derive(Template)]
#[template(path = "email/mail.html")]
struct HtmlPart<'a> {
    shop: &'a str,
    subject: &'a str,
    letter: &'a Letter,
}

/// A rendered email, addressed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Email {
    pub kind: MailKind,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Why an address gets no more mail: SES feedback about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionReason {
    /// A permanent (hard) bounce: the address does not exist or refuses mail for good.
    Bounce,
    /// The recipient marked a message as spam.
    Complaint,
}

/// What SES reported about a message (an SNS notification of a bounce or complaint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feedback {
    /// The addresses to suppress (none for a transient bounce).
    pub suppress: Vec<String>,
    pub reason: Option<SuppressionReason>,
    /// SES's id of the feedback, for logs.
    pub feedback_id: Option<String>,
}

impl Feedback {
    /// Reads an SES notification: the event-publishing shape (`eventType`) or the identity-notification shape
    /// (`notificationType`), told apart by the `bounce` or `complaint` object they carry. Transient and
    /// undetermined bounces suppress nobody; a permanent bounce suppresses its failed recipients, a complaint
    /// its complainants.
    pub fn parse(message: &serde_json::Value) -> Self {
        let addresses = |list: Option<&serde_json::Value>| -> Vec<String> {
            list.and_then(|l| l.as_array())
                .map(|l| {
                    l.iter()
                        .filter_map(|r| r.get("emailAddress").and_then(|a| a.as_str()))
                        .filter_map(normalize_address)
                        .collect()
                })
                .unwrap_or_default()
        };
        if let Some(bounce) = message.get("bounce") {
            let permanent = bounce.get("bounceType").and_then(|t| t.as_str()) == Some("Permanent");
            let failed: Vec<_> = bounce
                .get("bouncedRecipients")
                .and_then(|l| l.as_array())
                .map(|l| {
                    l.iter()
                        .filter(|r| r.get("action").and_then(|a| a.as_str()).is_none_or(|a| a == "failed"))
                        .cloned()
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            let failed = serde_json::Value::Array(failed);
            return Self {
                suppress: if permanent { addresses(Some(&failed)) } else { Vec::new() },
                reason: permanent.then_some(SuppressionReason::Bounce),
                feedback_id: bounce.get("feedbackId").and_then(|v| v.as_str()).map(str::to_owned),
            };
        }
        if let Some(complaint) = message.get("complaint") {
            return Self {
                suppress: addresses(complaint.get("complainedRecipients")),
                reason: Some(SuppressionReason::Complaint),
                feedback_id: complaint.get("feedbackId").and_then(|v| v.as_str()).map(str::to_owned),
            };
        }
        Self { suppress: Vec::new(), reason: None, feedback_id: None }
    }
}

#[cfg(test)]
mod tests;
