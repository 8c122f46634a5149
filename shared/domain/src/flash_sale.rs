//! Flash sales: units of one SKU allocated from inventory, sold at a sale price to a queue of signed-in
//! shoppers, at most `per_customer_limit` units each.
//!
//! The model (see `docs/FLASH_SALES.md`):
//! - At creation `units` leave the stock item's available count and are split across `shards` shard items
//!   (the hot-SKU gate): each admission decrements one shard by one with a conditional write, so one SKU
//!   admits about `shards x 1,000` units per second in AWS.
//! - An entry is a [`Ticket`] (`waiting`), enqueued on the waiting-room queue. The admission worker moves a
//!   waiting ticket to `won` by taking a unit from a shard in the same transaction, with a checkout hold that
//!   expires after `hold_seconds`; when every shard is empty it closes the [`Gate`] (sold out) and every
//!   waiting ticket reads `sold_out`.
//! - A won ticket is `purchased` by checkout, or `expired`: its unit goes back to a shard and the gate reopens
//!   for the next in line.
//! - After `ends_at`, with no hold outstanding, the shards reconcile back into the stock item exactly:
//!   `allocated == returned + sold`.
//!
//! Everything here is pure; [`check_sale`] is the invariant checker that tests and the benchmark run against
//! stored state.

use crate::error::DomainError;
use crate::error::ErrorCode;
use crate::idempotency;
use crate::money::Money;
use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Id prefix of a sale.
pub const SALE_ID_PREFIX: &str = "fs";
/// Id prefix of an entry ticket.
pub const TICKET_ID_PREFIX: &str = "ftk";
/// Most units one sale may allocate.
pub const MAX_UNITS: u32 = 1_000_000;
/// Most shard items per sale: creation writes the stock item, the sale, its gate and every shard (and
/// reconciliation every shard) in one transaction of at most 100 actions.
pub const MAX_SHARDS: u32 = 50;
/// Highest per-customer limit.
pub const MAX_PER_CUSTOMER: u32 = 100;
/// Longest sale.
pub const MAX_SALE_DAYS: i64 = 30;
/// Default checkout hold of a winner.
pub const DEFAULT_HOLD_SECONDS: u32 = 600;
/// Units per shard the default shard count aims at.
const UNITS_PER_DEFAULT_SHARD: u32 = 250;
/// Default most shards when the seller does not choose.
const DEFAULT_MAX_SHARDS: u32 = 10;
/// Most lanes (waiting-room message groups) one shard serves as their home: each lane keeps two short marks on
/// its home shard item (see [`Mark`]), so 16 lanes keep the item, written on every take, under 1 KB (1 WCU).
pub const MAX_LANES_PER_SHARD: u32 = 16;
/// Lanes per shard when the seller does not choose: one batch of each lane in flight at a time, so the lanes
/// bound how many workers admit at once (see docs/FLASH_SALES.md).
pub const DEFAULT_LANES_PER_SHARD: u32 = 8;
/// Most lanes of one sale whatever the deployment allows: SQS's event source runs at most 1,000 batches at once.
pub const MAX_LANES: u32 = 1_000;
/// Most entries one conditional write on a shard takes units for: the waiting room's batch size.
pub const MAX_BATCH_TAKE: usize = 10;
/// Most items holding one sale's gate (the gate and its copies, written together in every transaction that
/// changes it; a reader reads one of them), so the sale's creation stays within a transaction's 100 items.
pub const MAX_GATE_COPIES: u32 = 16;

/// The stable error code of an entry before the start.
pub const NOT_STARTED: ErrorCode = ErrorCode::NotStarted;
/// The stable error code of an entry after sell-out.
pub const SOLD_OUT: ErrorCode = ErrorCode::SoldOut;
/// The stable error code of an entry after the end.
pub const SALE_ENDED: ErrorCode = ErrorCode::SaleEnded;
/// The stable error code when the per-customer limit is reached.
pub const LIMIT_REACHED: ErrorCode = ErrorCode::PerCustomerLimitReached;

/// What a seller sends to `POST /v1/seller/flash-sales`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewFlashSale {
    pub sku: String,
    pub units: u32,
    pub price: Money,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub per_customer_limit: u32,
    /// Shard items for the stock gate; by default one per 250 units, at most 10.
    #[serde(default)]
    pub shards: Option<u32>,
    /// Waiting-room lanes (FIFO message groups, admitted in parallel); by default 8 per shard, at most 16 per
    /// shard and at most what the deployment's worker concurrency allows.
    #[serde(default)]
    pub lanes: Option<u32>,
    /// How long a winner may take to check out (60..=3600 s, default 600).
    #[serde(default)]
    pub hold_seconds: Option<u32>,
    /// The warehouse the units come from; by default the one with the most available units.
    #[serde(default)]
    pub warehouse_id: Option<String>,
}

impl NewFlashSale {
    /// Checks the request. `now` bounds the end: a sale must end in the future; `max_lanes` is the
    /// deployment's worker concurrency (a lane has one batch in flight at a time).
    pub fn validate(&self, now: DateTime<Utc>, max_lanes: u32) -> Result<(), DomainError> {
        crate::inventory::validate_sku(&self.sku)?;
        if self.units == 0 || self.units > MAX_UNITS {
            return Err(DomainError::validation("units", format!("must be within 1..={MAX_UNITS}")));
        }
        self.price.validate_price("price")?;
        if self.ends_at <= self.starts_at {
            return Err(DomainError::validation("ends_at", "must be after starts_at"));
        }
        if self.ends_at <= now {
            return Err(DomainError::validation("ends_at", "must be in the future"));
        }
        if self.ends_at - self.starts_at > Duration::days(MAX_SALE_DAYS) {
            return Err(DomainError::validation("ends_at", format!("a sale lasts at most {MAX_SALE_DAYS} days")));
        }
        if self.per_customer_limit == 0 || self.per_customer_limit > MAX_PER_CUSTOMER {
            return Err(DomainError::validation(
                "per_customer_limit",
                format!("must be within 1..={MAX_PER_CUSTOMER}"),
            ));
        }
        if let Some(shards) = self.shards {
            if shards == 0 || shards > MAX_SHARDS {
                return Err(DomainError::validation("shards", format!("must be within 1..={MAX_SHARDS}")));
            }
            if shards > self.units {
                return Err(DomainError::validation("shards", "must not exceed units"));
            }
        }
        if let Some(lanes) = self.lanes {
            let most = self.most_lanes(max_lanes);
            if lanes == 0 || lanes > most {
                return Err(DomainError::validation(
                    "lanes",
                    format!("must be within 1..={most} ({MAX_LANES_PER_SHARD} per shard, at most the worker concurrency {max_lanes})"),
                ));
            }
        }
        if let Some(hold) = self.hold_seconds {
            if !(60..=3600).contains(&hold) {
                return Err(DomainError::validation("hold_seconds", "must be within 60..=3600"));
            }
        }
        if let Some(wh) = &self.warehouse_id {
            crate::inventory::validate_warehouse_id(wh)?;
        }
        Ok(())
    }

    /// The shard count: the seller's choice, or one per 250 units (1..=10).
    pub fn shard_count(&self) -> u32 {
        self.shards
            .unwrap_or_else(|| self.units.div_ceil(UNITS_PER_DEFAULT_SHARD).clamp(1, DEFAULT_MAX_SHARDS))
            .min(self.units)
    }

    /// Most lanes this sale may have: [`MAX_LANES_PER_SHARD`] per shard, within the deployment's `max_lanes`.
    fn most_lanes(&self, max_lanes: u32) -> u32 {
        (self.shard_count() * MAX_LANES_PER_SHARD).min(max_lanes.clamp(1, MAX_LANES))
    }

    /// The lane count: the seller's choice, or [`DEFAULT_LANES_PER_SHARD`] per shard within `max_lanes`.
    pub fn lane_count(&self, max_lanes: u32) -> u32 {
        self.lanes.unwrap_or_else(|| (self.shard_count() * DEFAULT_LANES_PER_SHARD).min(self.most_lanes(max_lanes)))
    }

    /// The sale this request describes, drawing from `warehouse_id`, with at most `max_lanes` lanes.
    pub fn into_sale(
        self,
        sale_id: String,
        seller_id: String,
        warehouse_id: String,
        now: DateTime<Utc>,
        max_lanes: u32,
    ) -> FlashSale {
        let shards = self.shard_count();
        let lanes = self.lane_count(max_lanes);
        FlashSale {
            sale_id,
            seller_id,
            sku: self.sku,
            warehouse_id,
            units: self.units,
            price: self.price,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            per_customer_limit: self.per_customer_limit,
            shards,
            lanes,
            hold_seconds: self.hold_seconds.unwrap_or(DEFAULT_HOLD_SECONDS),
            created_at: now,
            gate_copies: 1,
            reconciliation: None,
        }
    }
}

/// A flash sale as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlashSale {
    pub sale_id: String,
    pub seller_id: String,
    pub sku: String,
    pub warehouse_id: String,
    /// Units allocated from inventory.
    pub units: u32,
    pub price: Money,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub per_customer_limit: u32,
    pub shards: u32,
    /// Waiting-room lanes; 0 (a sale stored before lanes were a setting) means one per shard.
    #[serde(default)]
    pub lanes: u32,
    pub hold_seconds: u32,
    pub created_at: DateTime<Utc>,
    /// Items holding the gate: the gate and `gate_copies - 1` copies with the same state, which every change of
    /// the gate writes together, so the entry, status and worker instances can spread their reads over them.
    /// 0 (a sale stored before copies) means the gate alone.
    #[serde(default)]
    pub gate_copies: u32,
    /// Set once the shards have gone back into inventory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciliation: Option<Reconciliation>,
}

/// How a sale's units went back into inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciliation {
    /// Units returned to the stock item's available count.
    pub returned: u32,
    /// Units sold through the sale (booked to the stock item's `sold`).
    pub sold: u32,
    pub at: DateTime<Utc>,
}

impl FlashSale {
    /// The initial units of each shard: an even split, the remainder on the first shards.
    pub fn shard_units(&self) -> Vec<u32> {
        split_units(self.units, self.shards)
    }

    /// The sale with its gate held by `copies` items (1..=[`MAX_GATE_COPIES`]).
    pub fn with_gate_copies(self, copies: u32) -> Self {
        Self { gate_copies: copies.clamp(1, MAX_GATE_COPIES), ..self }
    }

    /// Items holding the gate, the gate itself included (at least 1).
    pub fn gate_copy_count(&self) -> u32 {
        self.gate_copies.clamp(1, MAX_GATE_COPIES)
    }

    /// The waiting room's lanes (FIFO message groups, and sequence items) of this sale.
    pub fn lane_count(&self) -> u32 {
        if self.lanes == 0 {
            self.shards.max(1)
        } else {
            self.lanes
        }
    }

    /// The lane of a ticket of this sale.
    pub fn lane_of(&self, ticket_id: &str) -> u32 {
        lane_of(ticket_id, self.lane_count())
    }

    /// The shard a lane takes from first: lanes spread evenly over the shards, so each shard item carries the
    /// marks of at most [`MAX_LANES_PER_SHARD`] lanes and is written by only its own lanes until it runs dry.
    pub fn home_shard(&self, lane: u32) -> usize {
        (lane % self.shards.max(1)) as usize
    }

    /// Where the sale stands at `now`, given the gate.
    pub fn phase(&self, gate: &Gate, now: DateTime<Utc>) -> Phase {
        if now < self.starts_at {
            Phase::Upcoming
        } else if now >= self.ends_at || self.reconciliation.is_some() {
            Phase::Ended
        } else if gate.sold_out {
            Phase::SoldOut
        } else {
            Phase::Live
        }
    }

    /// Whether an entry may be accepted at `now`: 409 `not_started`, 410 `sale_ended` or 410 `sold_out`.
    pub fn check_entry(&self, gate: &Gate, now: DateTime<Utc>) -> Result<(), DomainError> {
        match self.phase(gate, now) {
            Phase::Live => Ok(()),
            Phase::Upcoming => Err(DomainError::conflict(
                NOT_STARTED,
                format!("the sale has not started; it starts at {}", self.starts_at.to_rfc3339()),
            )),
            Phase::SoldOut => Err(sold_out()),
            Phase::Ended => Err(DomainError::Gone { code: SALE_ENDED, message: "the sale has ended".into() }),
        }
    }

    /// The expiry of a hold won at `now`.
    pub fn hold_expiry(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + Duration::seconds(i64::from(self.hold_seconds))
    }

    /// The hold a take settled late (on a redelivery, by the next admission of its lane, or by an audit) may
    /// still win at `now`: one until the sale ends; after the end, none (the unit goes back to the sale).
    pub fn late_hold(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        (now < self.ends_at).then(|| self.hold_expiry(now))
    }

    /// When the schedule may reconcile the sale: its end plus [`RECONCILE_GRACE_SECONDS`].
    pub fn reconcilable_from(&self) -> DateTime<Utc> {
        self.ends_at + Duration::seconds(RECONCILE_GRACE_SECONDS)
    }

    /// Whether the schedule may reconcile the sale at `now`.
    pub fn reconcilable(&self, now: DateTime<Utc>) -> bool {
        now >= self.reconcilable_from()
    }

    /// The public view at `now`.
    pub fn view(&self, gate: &Gate, now: DateTime<Utc>) -> FlashSaleView {
        FlashSaleView {
            sale_id: self.sale_id.clone(),
            sku: self.sku.clone(),
            price: self.price,
            units: self.units,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            per_customer_limit: self.per_customer_limit,
            hold_seconds: self.hold_seconds,
            status: self.phase(gate, now),
        }
    }
}

/// The 410 a sold-out sale answers.
pub fn sold_out() -> DomainError {
    DomainError::Gone { code: SOLD_OUT, message: "the sale is sold out".into() }
}

/// Splits `units` evenly over `shards` (at least one).
pub fn split_units(units: u32, shards: u32) -> Vec<u32> {
    let shards = shards.max(1);
    let (base, extra) = (units / shards, units % shards);
    (0..shards).map(|i| base + u32::from(i < extra)).collect()
}

/// Where a sale stands, as the product page and the sale show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Upcoming,
    Live,
    SoldOut,
    Ended,
}

/// The sale's sold-out flag: one small item read (eventually consistent) before any write, so a rejected
/// entry after sell-out costs no write. `returns` counts units that came back from expired or released holds;
/// closing the gate is conditional on it, so a unit returned while the gate closes reopens it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Gate {
    pub sold_out: bool,
    pub returns: u64,
}

/// The public view of a sale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlashSaleView {
    pub sale_id: String,
    pub sku: String,
    pub price: Money,
    pub units: u32,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub per_customer_limit: u32,
    pub hold_seconds: u32,
    pub status: Phase,
}

/// A ticket's stored state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    /// In the waiting room.
    Waiting,
    /// Admitted: a unit is held until `hold_expires_at`.
    Won,
    /// Checkout consumed the hold.
    Purchased,
    /// The queue closed before this ticket was admitted.
    SoldOut,
    /// The hold ran out; the unit went back to the sale.
    Expired,
    /// Checkout gave the unit back (payment failed); the unit went back to the sale.
    Released,
}

impl TicketStatus {
    /// Whether the ticket still counts against the customer's limit.
    pub fn counts_against_limit(self) -> bool {
        matches!(self, TicketStatus::Waiting | TicketStatus::Won | TicketStatus::Purchased)
    }
}

/// One entry into a sale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    pub ticket_id: String,
    pub sale_id: String,
    pub customer_id: String,
    /// Place in line when entered (approximate across queue partitions).
    pub position: u64,
    pub status: TicketStatus,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_expires_at: Option<DateTime<Utc>>,
    /// The shard the held unit came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// The key of the waiting-room message whose take this ticket won (see [`Take`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taken_by: Option<String>,
}

impl Ticket {
    /// A new waiting ticket.
    pub fn waiting(ticket_id: String, sale_id: String, customer_id: String, position: u64, now: DateTime<Utc>) -> Self {
        Self {
            ticket_id,
            sale_id,
            customer_id,
            position,
            status: TicketStatus::Waiting,
            created_at: now,
            hold_expires_at: None,
            shard: None,
            order_id: None,
            taken_by: None,
        }
    }

    /// Whether a won hold has run out at `now`.
    pub fn hold_expired(&self, now: DateTime<Utc>) -> bool {
        self.status == TicketStatus::Won && self.hold_expires_at.is_none_or(|at| at <= now)
    }

    /// What the shopper sees at `now`. A waiting ticket behind a closed gate reads as sold out; a won hold past
    /// its expiry reads as expired.
    pub fn view(&self, gate: &Gate, now: DateTime<Utc>) -> TicketView {
        let status = match self.status {
            TicketStatus::Waiting if gate.sold_out => EntryStatus::SoldOut,
            TicketStatus::Waiting => EntryStatus::Waiting,
            TicketStatus::Won if self.hold_expired(now) => EntryStatus::Expired,
            TicketStatus::Won | TicketStatus::Purchased => EntryStatus::Won,
            TicketStatus::SoldOut => EntryStatus::SoldOut,
            TicketStatus::Expired | TicketStatus::Released => EntryStatus::Expired,
        };
        let won = status == EntryStatus::Won;
        TicketView {
            ticket_id: self.ticket_id.clone(),
            sale_id: self.sale_id.clone(),
            status,
            position: (status == EntryStatus::Waiting).then_some(self.position),
            hold_expires_at: if won { self.hold_expires_at } else { None },
            checkout: (won && self.status == TicketStatus::Won).then(|| CheckoutHint {
                method: "POST".into(),
                path: "/v1/checkout".into(),
                flash_ticket_id: self.ticket_id.clone(),
            }),
            order_id: self.order_id.clone(),
        }
    }
}

/// The four answers a shopper gets about an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryStatus {
    Waiting,
    Won,
    SoldOut,
    Expired,
}

impl EntryStatus {
    /// Whether the answer is final (the shopper may stop polling).
    pub fn is_final(self) -> bool {
        self != EntryStatus::Waiting
    }
}

/// How a winner checks out: `POST /v1/checkout` with `flash_ticket_id` in the body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutHint {
    pub method: String,
    pub path: String,
    pub flash_ticket_id: String,
}

/// `GET /v1/flash-sales/{sale_id}/entries/{ticket_id}` and the 202 of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketView {
    pub ticket_id: String,
    pub sale_id: String,
    pub status: EntryStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_expires_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout: Option<CheckoutHint>,
    /// The order that consumed the hold, once checked out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
}

/// The waiting-room message of one entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryMessage {
    pub sale_id: String,
    pub ticket_id: String,
    pub customer_id: String,
    /// Set by the worker (never sent): the queue delivered this message before (`ApproximateReceiveCount > 1`),
    /// so a unit may already have been taken for it.
    #[serde(default, skip_serializing)]
    pub redelivered: bool,
    /// Set by the worker (never sent): the queue's id of this message, the same on every redelivery of it.
    #[serde(default, skip_serializing)]
    pub message_id: String,
}

/// One unit taken from a shard for an entry: its ticket and the waiting-room message that took it (named by a
/// 13-character digest of the queue's message id, the same on every redelivery of that message; a resent entry
/// is another message). A take is settled exactly once: its ticket wins it (the ticket records the message in
/// `taken_by`), or the unit goes back to the sale (the ticket adds the message to `given_back`). Both are
/// conditional writes on the ticket item, so a redelivery, the lane's next admission and an audit racing to
/// settle the same take cannot both succeed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Take {
    pub ticket_id: String,
    pub message_key: String,
}

impl Take {
    /// The take a message makes; a message without a queue id (a test's, a sample's) is named by its ticket.
    pub fn of(message: &EntryMessage) -> Self {
        let id = if message.message_id.is_empty() { &message.ticket_id } else { &message.message_id };
        Self { ticket_id: message.ticket_id.clone(), message_key: idempotency::key_digest(id)[..13].to_owned() }
    }

    /// The shard item's record of the take (`<ticket>|<message key>`), kept short: the shard item holds one per
    /// lane and is written on every admission.
    pub fn mark(&self) -> String {
        format!("{}|{}", self.ticket_id, self.message_key)
    }

    /// Reads a mark written by [`Take::mark`]; `None` for an empty or foreign value.
    pub fn from_mark(mark: &str) -> Option<Self> {
        let (ticket_id, message_key) = mark.split_once('|')?;
        (!ticket_id.is_empty() && !message_key.is_empty())
            .then(|| Self { ticket_id: ticket_id.to_owned(), message_key: message_key.to_owned() })
    }
}

/// What a shard item records of a lane's take: one take named inline (`<ticket>|<message key>`), or a batch
/// take named by its take record (`*<take id>:<count>`). A take record lists a batch's takes in line order,
/// written before the shard write that names it; the first `count` of them took a unit, the rest did not.
/// Both forms are short: a shard item carries two marks per lane and is written on every take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mark {
    One(Take),
    Batch { take_id: String, count: usize },
}

impl Mark {
    /// The attribute value on the shard item.
    pub fn encode(&self) -> String {
        match self {
            Mark::One(take) => take.mark(),
            Mark::Batch { take_id, count } => format!("*{take_id}:{count}"),
        }
    }

    /// Reads a value written by [`Mark::encode`]; `None` for an empty or foreign value.
    pub fn parse(value: &str) -> Option<Self> {
        match value.strip_prefix('*') {
            Some(batch) => {
                let (take_id, count) = batch.split_once(':')?;
                let count: usize = count.parse().ok()?;
                (!take_id.is_empty() && (1..=MAX_BATCH_TAKE).contains(&count))
                    .then(|| Mark::Batch { take_id: take_id.to_owned(), count })
            }
            None => Take::from_mark(value).map(Mark::One),
        }
    }

    /// The id of a new take record, from something unique to it (13 characters, like a message key).
    pub fn batch_id(unique: &str) -> String {
        idempotency::key_digest(unique)[..13].to_owned()
    }
}

/// The takes a batch mark names: the first `count` takes of its record.
pub fn named_takes(record: &[Take], count: usize) -> &[Take] {
    &record[..count.min(record.len())]
}

/// Seconds after a sale's end before the schedule reconciles it: longer than the admission worker's timeout, so
/// every take made before the end has been settled by its worker or is visible to the audit that precedes
/// reconciliation.
pub const RECONCILE_GRACE_SECONDS: i64 = 60;

impl From<&Ticket> for EntryMessage {
    fn from(t: &Ticket) -> Self {
        Self {
            sale_id: t.sale_id.clone(),
            ticket_id: t.ticket_id.clone(),
            customer_id: t.customer_id.clone(),
            redelivered: false,
            message_id: String::new(),
        }
    }
}

/// The queue lane (and sequence shard) of a ticket: stable per ticket, so a resend lands in the same lane.
pub fn lane_of(ticket_id: &str, lanes: u32) -> u32 {
    let hash = ticket_id.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    hash % lanes.max(1)
}

/// The ticket id of an entry: derived from the sale, the customer and the Idempotency-Key, so a retry names the
/// same ticket and the conditional put that creates it is the idempotency check.
pub fn ticket_id_for(sale_id: &str, customer_id: &str, idempotency_key: &str) -> String {
    let scoped = idempotency::scoped_key(&format!("flash-entry#{sale_id}"), customer_id, idempotency_key);
    format!("{TICKET_ID_PREFIX}_{}", idempotency::key_digest(&scoped))
}

/// A place in line from a sharded sequence: the `seq`-th entry counted by sequence shard `k` of `n`.
/// Shards advance at about the same rate, so interleaving them approximates arrival order without one hot
/// counter.
pub fn position(seq: u64, k: u32, n: u32) -> u64 {
    seq.saturating_sub(1).saturating_mul(u64::from(n.max(1))).saturating_add(u64::from(k) + 1)
}

/// The queue partition (FIFO message group) of sequence shard `k`: one ordered lane per shard.
pub fn message_group(sale_id: &str, k: u32) -> String {
    format!("{sale_id}#{k}")
}

/// Picks a shard at random, weighted by the units each is believed to hold; `None` when all look empty.
/// Weighting spreads admissions across full shards and steers them off empty ones near sell-out.
pub fn pick_shard(remaining: &[i64], rng: &mut impl Rng) -> Option<usize> {
    let total: i64 = remaining.iter().map(|r| (*r).max(0)).sum();
    if total <= 0 {
        return None;
    }
    let mut target = rng.gen_range(0..total);
    for (i, r) in remaining.iter().enumerate() {
        let r = (*r).max(0);
        if target < r {
            return Some(i);
        }
        target -= r;
    }
    None
}

/// A move of units between two shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    pub from: usize,
    pub to: usize,
    pub units: i64,
}

/// Rebalancing near sell-out: when at least half the shards are empty while another holds two or more units,
/// move half of the fullest shard's units, spread over the empty ones, so randomly chosen shards keep hitting
/// stock instead of failing their condition. Empty when no move helps.
pub fn rebalance_plan(remaining: &[i64]) -> Vec<Move> {
    let empty: Vec<usize> = remaining.iter().enumerate().filter(|(_, r)| **r <= 0).map(|(i, _)| i).collect();
    if remaining.len() < 2 || empty.len() * 2 < remaining.len() {
        return Vec::new();
    }
    let Some((from, &max)) = remaining.iter().enumerate().max_by_key(|(_, r)| **r) else {
        return Vec::new();
    };
    if max < 2 {
        return Vec::new();
    }
    let movable = max / 2;
    let receivers = empty.len().min(usize::try_from(movable).unwrap_or(usize::MAX));
    let per = split_units(u32::try_from(movable).unwrap_or(u32::MAX), u32::try_from(receivers).unwrap_or(1));
    empty.into_iter().take(receivers).zip(per).map(|(to, units)| Move { from, to, units: i64::from(units) }).collect()
}

/// A sale's stored state for the invariant check.
#[derive(Debug, Clone, PartialEq)]
pub struct SaleSnapshot {
    pub sale: FlashSale,
    pub gate: Gate,
    /// Units in each shard, by shard index.
    pub shards: Vec<i64>,
    pub tickets: Vec<Ticket>,
    /// Per-customer counters (customer id, count).
    pub customers: Vec<(String, i64)>,
}

/// What a snapshot adds up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct SaleTotals {
    pub in_shards: i64,
    pub held: i64,
    pub purchased: i64,
    pub waiting: i64,
    pub sold_out: i64,
    pub expired: i64,
}

impl SaleSnapshot {
    /// Sums the snapshot.
    pub fn totals(&self) -> SaleTotals {
        let mut t = SaleTotals { in_shards: self.shards.iter().sum(), ..SaleTotals::default() };
        for ticket in &self.tickets {
            match ticket.status {
                TicketStatus::Won => t.held += 1,
                TicketStatus::Purchased => t.purchased += 1,
                TicketStatus::Waiting => t.waiting += 1,
                TicketStatus::SoldOut => t.sold_out += 1,
                TicketStatus::Expired | TicketStatus::Released => t.expired += 1,
            }
        }
        t
    }
}

/// The sale's invariant over a consistent snapshot; each broken rule is one message.
/// - no shard below zero;
/// - no oversell: `in shards + held + purchased == units` until reconciled, then
///   `returned + sold == units`, `sold == purchased` and every shard zero;
/// - no stranded unit: a closed gate means every shard is empty;
/// - no customer holds more than the limit (waiting + won + purchased tickets), and each counter covers its
///   customer's live tickets.
pub fn check_sale(snapshot: &SaleSnapshot) -> Vec<String> {
    let mut violations = Vec::new();
    let sale = &snapshot.sale;
    let units = i64::from(sale.units);
    let t = snapshot.totals();
    for (i, units) in snapshot.shards.iter().enumerate() {
        if *units < 0 {
            violations.push(format!("shard {i} holds {units} units"));
        }
    }
    if snapshot.shards.len() != sale.shards as usize {
        violations.push(format!("{} shard items for {} shards", snapshot.shards.len(), sale.shards));
    }
    match &sale.reconciliation {
        None => {
            if t.in_shards + t.held + t.purchased != units {
                violations.push(format!(
                    "in shards {} + held {} + purchased {} != allocated {units}",
                    t.in_shards, t.held, t.purchased
                ));
            }
        }
        Some(r) => {
            if i64::from(r.returned) + i64::from(r.sold) != units {
                violations.push(format!("returned {} + sold {} != allocated {units}", r.returned, r.sold));
            }
            if i64::from(r.sold) != t.purchased {
                violations.push(format!("reconciled sold {} != purchased tickets {}", r.sold, t.purchased));
            }
            if t.in_shards != 0 || t.held != 0 {
                violations.push(format!("after reconciliation {} units in shards, {} held", t.in_shards, t.held));
            }
        }
    }
    if snapshot.gate.sold_out && t.in_shards != 0 {
        violations.push(format!("stranded: the gate is closed while shards hold {} units", t.in_shards));
    }
    let mut live: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for ticket in &snapshot.tickets {
        if ticket.status.counts_against_limit() {
            *live.entry(ticket.customer_id.as_str()).or_default() += 1;
        }
    }
    let limit = i64::from(sale.per_customer_limit);
    for (customer, count) in &live {
        if *count > limit {
            violations.push(format!("customer {customer} holds {count} entries over the limit {limit}"));
        }
        let counter = snapshot.customers.iter().find(|(c, _)| c == customer).map_or(0, |(_, n)| *n);
        if counter < *count {
            violations.push(format!("customer {customer} counter {counter} < live entries {count}"));
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;
    use proptest::prelude::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn request() -> NewFlashSale {
        NewFlashSale {
            sku: "SKU-1".into(),
            units: 1000,
            price: Money::new(999, Currency::USD),
            starts_at: at("2030-01-01T10:00:00Z"),
            ends_at: at("2030-01-01T11:00:00Z"),
            per_customer_limit: 2,
            shards: None,
            lanes: None,
            hold_seconds: None,
            warehouse_id: None,
        }
    }

    fn sale() -> FlashSale {
        request().into_sale("fs_1".into(), "seller".into(), "wh_east".into(), at("2029-12-31T00:00:00Z"), 160)
    }

    #[test]
    fn a_take_is_named_by_its_message_and_read_back_from_its_mark() {
        let message = EntryMessage {
            sale_id: "fs_1".into(),
            ticket_id: "ftk_1".into(),
            customer_id: "c1".into(),
            redelivered: false,
            message_id: "0f6e-msg".into(),
        };
        let take = Take::of(&message);
        assert_eq!(take.message_key.len(), 13);
        assert_eq!(take.mark(), format!("ftk_1|{}", take.message_key));
        assert_eq!(Take::from_mark(&take.mark()), Some(take.clone()));
        let redelivered = Take::of(&EntryMessage { redelivered: true, ..message.clone() });
        assert_eq!(redelivered, take, "a redelivery is the same take");
        let resent = Take::of(&EntryMessage { message_id: "another".into(), ..message.clone() });
        assert_ne!(resent, take, "a resend is another take");
        let unnamed = Take::of(&EntryMessage { message_id: String::new(), ..message });
        assert_eq!(unnamed.message_key, idempotency::key_digest("ftk_1")[..13], "named by its ticket");
        for foreign in ["", "ftk_1", "|m", "ftk_1|"] {
            assert_eq!(Take::from_mark(foreign), None, "{foreign:?}");
        }
        assert!(!serde_json::to_string(&EntryMessage::from(&Ticket::waiting(
            "t".into(),
            "s".into(),
            "c".into(),
            1,
            at("2030-01-01T00:00:00Z")
        )))
        .unwrap()
        .contains("message_id"));
    }

    #[test]
    fn a_late_settlement_wins_a_hold_only_while_the_sale_is_on_and_reconciliation_waits_out_the_grace() {
        let sale = sale();
        assert_eq!(
            sale.late_hold(sale.ends_at - Duration::seconds(1)),
            Some(sale.hold_expiry(sale.ends_at - Duration::seconds(1)))
        );
        assert_eq!(sale.late_hold(sale.ends_at), None);
        assert!(!sale.reconcilable(sale.ends_at + Duration::seconds(RECONCILE_GRACE_SECONDS - 1)));
        assert!(sale.reconcilable(sale.ends_at + Duration::seconds(RECONCILE_GRACE_SECONDS)));
    }

    #[test]
    fn when_request_is_valid_should_default_shards_and_hold() {
        let req = request();
        assert!(req.validate(at("2029-12-31T00:00:00Z"), 160).is_ok());
        let sale = sale();
        assert_eq!(sale.shards, 4);
        assert_eq!(sale.hold_seconds, DEFAULT_HOLD_SECONDS);
        assert_eq!(sale.shard_units(), vec![250, 250, 250, 250]);
    }

    #[test]
    fn when_request_breaks_rules_should_name_field() {
        let now = at("2029-12-31T00:00:00Z");
        let cases: Vec<(&str, NewFlashSale)> = vec![
            ("units", NewFlashSale { units: 0, ..request() }),
            ("ends_at", NewFlashSale { ends_at: at("2030-01-01T09:00:00Z"), ..request() }),
            ("per_customer_limit", NewFlashSale { per_customer_limit: 0, ..request() }),
            ("shards", NewFlashSale { shards: Some(51), ..request() }),
            ("shards", NewFlashSale { units: 3, shards: Some(4), ..request() }),
            ("hold_seconds", NewFlashSale { hold_seconds: Some(10), ..request() }),
        ];
        for (field, req) in cases {
            match req.validate(now, 160) {
                Err(DomainError::Validation { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        assert!(NewFlashSale { sku: "a#b".into(), ..request() }.validate(now, 160).is_err());
    }

    #[test]
    fn when_before_start_should_refuse_with_not_started() {
        let err = sale().check_entry(&Gate::default(), at("2030-01-01T09:59:59Z")).unwrap_err();
        assert!(matches!(err, DomainError::Conflict { code: NOT_STARTED, .. }), "{err:?}");
    }

    #[test]
    fn when_gate_closed_should_answer_gone_sold_out() {
        let gate = Gate { sold_out: true, returns: 0 };
        let err = sale().check_entry(&gate, at("2030-01-01T10:30:00Z")).unwrap_err();
        assert!(matches!(err, DomainError::Gone { code: SOLD_OUT, .. }));
        assert_eq!(sale().phase(&gate, at("2030-01-01T10:30:00Z")), Phase::SoldOut);
        assert!(sale().check_entry(&Gate::default(), at("2030-01-01T10:30:00Z")).is_ok());
        let ended = sale().check_entry(&Gate::default(), at("2030-01-01T11:00:00Z")).unwrap_err();
        assert!(matches!(ended, DomainError::Gone { code: SALE_ENDED, .. }));
    }

    #[test]
    fn ticket_views_follow_gate_and_expiry() {
        let now = at("2030-01-01T10:30:00Z");
        let mut t = Ticket::waiting("ftk_1".into(), "fs_1".into(), "c".into(), 7, now);
        assert_eq!(t.view(&Gate::default(), now).status, EntryStatus::Waiting);
        assert_eq!(t.view(&Gate::default(), now).position, Some(7));
        assert_eq!(t.view(&Gate { sold_out: true, returns: 0 }, now).status, EntryStatus::SoldOut);
        t.status = TicketStatus::Won;
        t.hold_expires_at = Some(now + Duration::seconds(60));
        let won = t.view(&Gate { sold_out: true, returns: 0 }, now);
        assert_eq!(won.status, EntryStatus::Won);
        assert_eq!(won.checkout.unwrap().flash_ticket_id, "ftk_1");
        assert_eq!(t.view(&Gate::default(), now + Duration::seconds(60)).status, EntryStatus::Expired);
    }

    #[test]
    fn ticket_ids_are_stable_per_key_and_distinct_across_customers() {
        let a = ticket_id_for("fs_1", "alice", "k1");
        assert_eq!(a, ticket_id_for("fs_1", "alice", "k1"));
        assert_ne!(a, ticket_id_for("fs_1", "bob", "k1"));
        assert_ne!(a, ticket_id_for("fs_2", "alice", "k1"));
        assert!(crate::ids::is_valid(TICKET_ID_PREFIX, &a));
    }

    #[test]
    fn lanes_default_to_eight_per_shard_within_the_worker_concurrency() {
        let sale = request().into_sale("fs_1".into(), "s".into(), "wh".into(), at("2029-12-31T00:00:00Z"), 160);
        assert_eq!((sale.shards, sale.lanes), (4, 32));
        let capped = request().into_sale("fs_1".into(), "s".into(), "wh".into(), at("2029-12-31T00:00:00Z"), 20);
        assert_eq!(capped.lanes, 20);
        let chosen = NewFlashSale { lanes: Some(64), ..request() };
        assert_eq!(chosen.into_sale("fs_1".into(), "s".into(), "wh".into(), at("2029-12-31T00:00:00Z"), 160).lanes, 64);
        let stored_before_lanes = FlashSale { lanes: 0, ..sale };
        assert_eq!(stored_before_lanes.lane_count(), 4, "one lane per shard, as such sales were entered");
    }

    #[test]
    fn gate_copies_are_within_one_and_sixteen_and_a_sale_stored_before_them_has_its_gate_alone() {
        let sale = request().into_sale("fs_1".into(), "s".into(), "wh".into(), at("2029-12-31T00:00:00Z"), 160);
        assert_eq!(sale.gate_copy_count(), 1);
        assert_eq!(sale.clone().with_gate_copies(0).gate_copy_count(), 1);
        assert_eq!(sale.clone().with_gate_copies(4).gate_copies, 4);
        assert_eq!(sale.clone().with_gate_copies(u32::MAX).gate_copies, MAX_GATE_COPIES);
        let mut stored = serde_json::to_value(&sale).unwrap();
        stored.as_object_mut().unwrap().remove("gate_copies");
        let stored: FlashSale = serde_json::from_value(stored).unwrap();
        assert_eq!((stored.gate_copies, stored.gate_copy_count()), (0, 1));
    }

    #[test]
    fn lanes_are_bounded_by_sixteen_per_shard_and_the_worker_concurrency() {
        let now = at("2029-12-31T00:00:00Z");
        for lanes in [0, 65] {
            let err = NewFlashSale { lanes: Some(lanes), ..request() }.validate(now, 160).unwrap_err();
            assert!(matches!(err, DomainError::Validation { ref field, .. } if field == "lanes"), "{lanes}: {err:?}");
        }
        assert!(NewFlashSale { lanes: Some(64), ..request() }.validate(now, 160).is_ok());
        assert!(NewFlashSale { lanes: Some(64), ..request() }.validate(now, 63).is_err());
    }

    #[test]
    fn lanes_spread_evenly_over_their_home_shards() {
        let sale = FlashSale { shards: 7, lanes: 100, ..sale() };
        let mut per_shard = vec![0u32; 7];
        for lane in 0..sale.lane_count() {
            per_shard[sale.home_shard(lane)] += 1;
        }
        assert!(per_shard.iter().all(|n| *n == 14 || *n == 15), "{per_shard:?}");
    }

    #[test]
    fn marks_name_one_take_or_a_batch_record() {
        let take = Take { ticket_id: "ftk_abc".into(), message_key: "0123456789abc".into() };
        assert_eq!(Mark::parse(&Mark::One(take.clone()).encode()), Some(Mark::One(take)));
        let batch = Mark::Batch { take_id: Mark::batch_id("x"), count: 10 };
        assert_eq!(batch.encode().len(), 17, "a short mark keeps the shard item small");
        assert_eq!(Mark::parse(&batch.encode()), Some(batch));
        for foreign in ["", "*", "*id:0", "*id:11", "*:3", "*id:x", "no-separator"] {
            assert_eq!(Mark::parse(foreign), None, "{foreign}");
        }
        let record: Vec<Take> =
            (0..4).map(|i| Take { ticket_id: format!("t{i}"), message_key: format!("k{i}") }).collect();
        assert_eq!(named_takes(&record, 2), &record[..2], "a short take names only the entries that took a unit");
        assert_eq!(named_takes(&record, 9).len(), 4);
    }

    #[test]
    fn positions_interleave_sequence_shards() {
        assert_eq!(position(1, 0, 4), 1);
        assert_eq!(position(1, 3, 4), 4);
        assert_eq!(position(2, 0, 4), 5);
    }

    #[test]
    fn rebalance_moves_half_of_the_fullest_into_empty_shards() {
        assert!(rebalance_plan(&[5, 5, 0, 5]).is_empty());
        let plan = rebalance_plan(&[0, 9, 0, 1]);
        assert_eq!(plan.iter().map(|m| m.units).sum::<i64>(), 4);
        assert!(plan.iter().all(|m| m.from == 1 && (m.to == 0 || m.to == 2)));
        assert!(rebalance_plan(&[0, 1, 0, 0]).is_empty());
    }

    #[test]
    fn checker_finds_oversell_stranding_and_limit_breaks() {
        let sale = FlashSale { units: 2, shards: 2, per_customer_limit: 1, ..sale() };
        let now = at("2030-01-01T10:30:00Z");
        let ticket = |id: &str, c: &str, status| Ticket {
            status,
            ..Ticket::waiting(id.into(), "fs_1".into(), c.into(), 1, now)
        };
        let good = SaleSnapshot {
            sale: sale.clone(),
            gate: Gate { sold_out: true, returns: 0 },
            shards: vec![0, 0],
            tickets: vec![ticket("a", "c1", TicketStatus::Won), ticket("b", "c2", TicketStatus::Purchased)],
            customers: vec![("c1".into(), 1), ("c2".into(), 1)],
        };
        assert!(check_sale(&good).is_empty(), "{:?}", check_sale(&good));
        let oversold = SaleSnapshot {
            tickets: vec![
                ticket("a", "c1", TicketStatus::Won),
                ticket("b", "c2", TicketStatus::Purchased),
                ticket("c", "c3", TicketStatus::Won),
            ],
            customers: vec![("c1".into(), 1), ("c2".into(), 1), ("c3".into(), 1)],
            ..good.clone()
        };
        assert_eq!(check_sale(&oversold).len(), 1);
        let stranded =
            SaleSnapshot { shards: vec![1, 0], tickets: vec![ticket("a", "c1", TicketStatus::Won)], ..good.clone() };
        assert!(check_sale(&stranded).iter().any(|v| v.starts_with("stranded")));
        let over_limit = SaleSnapshot {
            tickets: vec![ticket("a", "c1", TicketStatus::Won), ticket("b", "c1", TicketStatus::Purchased)],
            ..good
        };
        assert!(check_sale(&over_limit).iter().any(|v| v.contains("over the limit")));
    }

    proptest! {
        #[test]
        fn split_keeps_every_unit(units in 1u32..100_000, shards in 1u32..=50) {
            let split = split_units(units, shards);
            prop_assert_eq!(split.iter().sum::<u32>(), units);
            let (min, max) = (split.iter().min().unwrap(), split.iter().max().unwrap());
            prop_assert!(max - min <= 1);
        }

        #[test]
        fn picked_shards_always_hold_units(remaining in proptest::collection::vec(-2i64..5, 1..12), seed in any::<u64>()) {
            use rand::SeedableRng;
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            match pick_shard(&remaining, &mut rng) {
                Some(i) => prop_assert!(remaining[i] > 0),
                None => prop_assert!(remaining.iter().all(|r| *r <= 0)),
            }
        }

        #[test]
        fn rebalancing_conserves_units(remaining in proptest::collection::vec(0i64..50, 1..12)) {
            let mut after = remaining.clone();
            for m in rebalance_plan(&remaining) {
                after[m.from] -= m.units;
                after[m.to] += m.units;
            }
            prop_assert_eq!(after.iter().sum::<i64>(), remaining.iter().sum::<i64>());
            prop_assert!(after.iter().all(|r| *r >= 0));
        }
    }
}
