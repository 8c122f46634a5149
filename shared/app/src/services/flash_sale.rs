//! Flash-sale use cases: sellers create sales (allocating units from inventory), shoppers enter and poll,
//! the admission worker meters the waiting room through the sharded stock gate, checkout consumes or gives
//! back a won hold, and the schedule expires holds and reconciles ended sales into inventory.

use crate::ports::{
    AdmissionStats, EntryOutcome, FlashAdmissions, FlashEntryWriter, FlashHolds, FlashReconciler, FlashSaleCreator,
    FlashSaleListing, FlashSaleReader, FlashTicketStore, HeldUnit, Settlement, SkuCatalog, TakeOutcome, WaitingRoom,
};
use chrono::{DateTime, Duration, Utc};
use commerce_domain::auth::Caller;
use commerce_domain::error::ErrorCode;
use commerce_domain::error::{DomainError, Result};
use commerce_domain::flash_sale::{
    self, pick_shard, position, rebalance_plan, ticket_id_for, EntryMessage, FlashSale, FlashSaleView, Gate,
    NewFlashSale, Take, Ticket, TicketStatus, TicketView,
};
use commerce_domain::ids::{SaleId, Sku, TicketId};
use commerce_domain::{idempotency, ids};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// A created sale as its seller sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreatedSale {
    #[serde(flatten)]
    pub sale: FlashSale,
    pub status: flash_sale::Phase,
}

/// Sale rules the deployment sets.
#[derive(Debug, Clone, Copy)]
pub struct SalePolicy {
    /// Most lanes a sale may have: the admission worker's concurrency (template.yaml
    /// `FlashSaleWorkerConcurrency`), so every lane can have its batch in flight at once.
    pub max_lanes: u32,
    /// Items holding a new sale's gate (template.yaml `FlashGateCopies`): the gate and its copies.
    pub gate_copies: u32,
}

/// A seller (for a SKU of their own products) or an admin creates a sale: the units leave the chosen
/// warehouse's available stock in the same transaction that writes the sale and its shards.
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
pub async fn create_sale(
    catalog: &impl SkuCatalog,
    creator: &impl FlashSaleCreator,
    caller: &Caller,
    input: NewFlashSale,
    policy: SalePolicy,
    now: DateTime<Utc>,
) -> Result<CreatedSale> {
    caller.require_seller()?;
    input.validate(now, policy.max_lanes)?;
    let variant = catalog
        .variants_by_sku(std::slice::from_ref(&input.sku))
        .await?
        .into_iter()
        .find(|v| v.sku == input.sku)
        .ok_or_else(|| DomainError::validation("sku", "no product has this SKU"))?;
    if !caller.is_admin() && variant.seller_id != caller.user_id {
        return Err(DomainError::forbidden("the SKU belongs to another seller"));
    }
    if variant.price.currency != input.price.currency {
        return Err(DomainError::validation("price.currency", "must be the product's currency"));
    }
    let stock = creator.available_by_warehouse(&input.sku).await?;
    let units = i64::from(input.units);
    let warehouse_id = match &input.warehouse_id {
        Some(wh) => wh.clone(),
        None => stock
            .iter()
            .filter(|(_, available)| *available >= units)
            .max_by_key(|(wh, available)| (*available, std::cmp::Reverse(wh.clone())))
            .map(|(wh, _)| wh.clone())
            .ok_or_else(|| DomainError::OutOfStock { sku: input.sku.clone() })?,
    };
    let sale_id = ids::new_id(flash_sale::SALE_ID_PREFIX);
    let sale = input
        .into_sale(sale_id, caller.user_id.clone(), warehouse_id, now, policy.max_lanes)
        .with_gate_copies(policy.gate_copies);
    creator.create_sale(&sale).await?;
    tracing::info!(sale_id = %sale.sale_id, sku = %sale.sku, units = sale.units, shards = sale.shards, lanes = sale.lanes, "flash sale created");
    let status = sale.phase(&Gate::default(), now);
    Ok(CreatedSale { sale, status })
}

/// The public view of a sale (upcoming, live, sold out or ended).
#[tracing::instrument(skip_all, fields(sale_id = %sale_id))]
pub async fn get_sale(reader: &impl FlashSaleReader, sale_id: &SaleId, now: DateTime<Utc>) -> Result<FlashSaleView> {
    let sale = reader.get_sale(sale_id).await?.ok_or_else(|| DomainError::not_found("flash sale"))?;
    let gate = reader.get_gate(sale_id, false).await?;
    Ok(sale.view(&gate, now))
}

/// The sales of a SKU, for its product page.
#[tracing::instrument(skip_all, fields(sku = %sku))]
pub async fn sales_for_sku(
    listing: &impl FlashSaleListing,
    reader: &impl FlashSaleReader,
    sku: &Sku,
    now: DateTime<Utc>,
) -> Result<Vec<FlashSaleView>> {
    let sku = sku.as_str();
    let mut views = Vec::new();
    for sale in listing.sales_for_sku(sku).await? {
        let gate = reader.get_gate(&sale.sale_id, false).await?;
        views.push(sale.view(&gate, now));
    }
    Ok(views)
}

/// Per-process caches of the entry function: sales (immutable once written) and gates, so entries cost at most
/// one eventually consistent gate read per `gate_ttl` per instance, open or closed: at tens of thousands of
/// entries per second a read per entry would exceed one item's read ceiling. A burst of rejected entries after
/// sell-out costs no write. An instance that saw the gate open may accept entries for up to `gate_ttl` after
/// it closes; the worker turns them away in line (`sold_out`), as it does every entry queued before the close.
#[derive(Debug)]
pub struct EntryCache {
    gate_ttl: Duration,
    sales: Mutex<HashMap<String, FlashSale>>,
    gates: Mutex<HashMap<String, (Gate, DateTime<Utc>)>>,
}

impl EntryCache {
    /// A cache that trusts an observed gate for `gate_ttl`.
    pub fn new(gate_ttl: Duration) -> Self {
        Self { gate_ttl, sales: Mutex::default(), gates: Mutex::default() }
    }

    async fn sale(&self, reader: &impl FlashSaleReader, sale_id: &str) -> Result<FlashSale> {
        if let Some(sale) = self.sales.lock().ok().and_then(|m| m.get(sale_id).cloned()) {
            return Ok(sale);
        }
        let sale = reader.get_sale(sale_id).await?.ok_or_else(|| DomainError::not_found("flash sale"))?;
        if let Ok(mut m) = self.sales.lock() {
            m.insert(sale_id.to_owned(), sale.clone());
        }
        Ok(sale)
    }

    async fn gate(&self, reader: &impl FlashSaleReader, sale_id: &str, now: DateTime<Utc>) -> Result<Gate> {
        let cached = self.gates.lock().ok().and_then(|m| m.get(sale_id).copied());
        if let Some((gate, _)) = cached.filter(|(_, seen)| *seen <= now && now - *seen < self.gate_ttl) {
            return Ok(gate);
        }
        let gate = reader.get_gate(sale_id, false).await?;
        if let Ok(mut m) = self.gates.lock() {
            m.insert(sale_id.to_owned(), (gate, now));
        }
        Ok(gate)
    }
}

/// Entry rules an operator tunes.
#[derive(Debug, Clone, Copy)]
pub struct EntryPolicy {
    /// A customer's entries into one sale must be at least this far apart (429 with Retry-After otherwise).
    pub min_interval: Duration,
}

/// What entering a sale takes: the sales and their tickets, the instance's cache of them, the waiting room
/// and the operator's entry rules.
pub struct Entrance<'a, S, Q> {
    pub sales: &'a S,
    pub cache: &'a EntryCache,
    pub queue: &'a Q,
    pub policy: EntryPolicy,
}

impl<S, Q> Clone for Entrance<'_, S, Q> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S, Q> Copy for Entrance<'_, S, Q> {}

/// A signed-in shopper enters a sale. Before the start: 409 `not_started`; after sell-out: 410 `sold_out`
/// with no write and nothing enqueued; over the per-customer limit: 409; the same Idempotency-Key again:
/// the same ticket (re-enqueued while waiting, which the queue deduplicates).
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id, sale_id = %sale_id))]
pub async fn enter<S, Q>(
    entrance: &Entrance<'_, S, Q>,
    caller: &Caller,
    sale_id: &SaleId,
    idempotency_key: Option<&str>,
    now: DateTime<Utc>,
) -> Result<TicketView>
where
    S: FlashSaleReader + FlashEntryWriter,
    Q: WaitingRoom,
{
    let Entrance { sales: reader, cache, queue, policy } = *entrance;
    let writer = reader;
    let key = idempotency_key.ok_or_else(|| DomainError::invalid_parameter("Idempotency-Key", "is required"))?;
    idempotency::validate_key(key).map_err(|reason| DomainError::invalid_parameter("Idempotency-Key", reason))?;
    let sale = cache.sale(reader, sale_id).await?;
    let gate = cache.gate(reader, sale_id, now).await?;
    sale.check_entry(&gate, now)?;
    let ticket_id = ticket_id_for(sale_id, &caller.user_id, key);
    let lane = sale.lane_of(&ticket_id);
    let seq = writer.next_sequence(sale_id, lane).await?;
    let ticket = Ticket::waiting(
        ticket_id,
        sale_id.to_string(),
        caller.user_id.clone(),
        position(seq, lane, sale.lane_count()),
        now,
    );
    match writer.create_ticket(&ticket, sale.per_customer_limit, policy.min_interval).await? {
        EntryOutcome::Created => {
            queue.enqueue(&ticket, lane).await?;
            tracing::info!(sale_id = %sale_id, ticket_id = %ticket.ticket_id, position = ticket.position, "entry accepted");
            Ok(ticket.view(&gate, now))
        }
        EntryOutcome::Existing(existing) => {
            if existing.status == TicketStatus::Waiting {
                queue.enqueue(&existing, lane).await?;
            }
            Ok(existing.view(&gate, now))
        }
        EntryOutcome::LimitReached => Err(DomainError::conflict(
            flash_sale::LIMIT_REACHED,
            format!("at most {} entries per customer", sale.per_customer_limit),
        )),
        EntryOutcome::TooSoon => {
            let secs = policy.min_interval.num_milliseconds().div_euclid(1000) + 1;
            Err(DomainError::RateLimited { retry_after_secs: u64::try_from(secs).unwrap_or(1) })
        }
    }
}

/// Open gates a status-poll instance read, trusted for `ttl`: a waiting ticket's poll needs no gate read while
/// the sale is on (every poll reading the gate would put tens of thousands of reads per second on one item). A
/// closed gate is read consistently before a waiting ticket is settled `sold_out`, so a trusted open gate
/// that closed meanwhile only answers `waiting` for up to `ttl` longer.
#[derive(Debug)]
pub struct OpenGates {
    ttl: Duration,
    seen: Mutex<HashMap<String, DateTime<Utc>>>,
}

impl OpenGates {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, seen: Mutex::default() }
    }

    fn trusted(&self, sale_id: &str, now: DateTime<Utc>) -> bool {
        self.seen.lock().is_ok_and(|m| m.get(sale_id).is_some_and(|at| *at <= now && now - *at < self.ttl))
    }

    fn saw(&self, sale_id: &str, gate: &Gate, now: DateTime<Utc>) {
        if let Ok(mut m) = self.seen.lock() {
            if gate.sold_out {
                m.remove(sale_id);
            } else {
                m.insert(sale_id.to_owned(), now);
            }
        }
    }
}

/// A shopper reads an entry of theirs, settled on read: waiting behind a closed gate becomes sold out,
/// a hold past its expiry expires (the unit goes back to the sale for the next in line).
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id, sale_id = %sale_id, ticket_id = %ticket_id))]
pub async fn get_entry(
    reader: &impl FlashSaleReader,
    tickets: &impl FlashTicketStore,
    gates: &OpenGates,
    caller: &Caller,
    sale_id: &SaleId,
    ticket_id: &TicketId,
    now: DateTime<Utc>,
) -> Result<TicketView> {
    for _ in 0..3 {
        let ticket = tickets
            .get_ticket(ticket_id)
            .await?
            .filter(|t| t.sale_id == sale_id.as_str() && (t.customer_id == caller.user_id || caller.is_admin()))
            .ok_or_else(|| DomainError::not_found("entry"))?;
        match ticket.status {
            TicketStatus::Waiting => {
                if gates.trusted(sale_id, now) {
                    return Ok(ticket.view(&Gate::default(), now));
                }
                let gate = reader.get_gate(sale_id, true).await?;
                gates.saw(sale_id, &gate, now);
                if !gate.sold_out || tickets.mark_sold_out(&ticket).await? {
                    let mut settled = ticket;
                    if gate.sold_out {
                        settled.status = TicketStatus::SoldOut;
                    }
                    return Ok(settled.view(&gate, now));
                }
            }
            TicketStatus::Won if ticket.hold_expired(now) => {
                if tickets.return_unit(&ticket, TicketStatus::Expired, now).await? {
                    let expired = Ticket { status: TicketStatus::Expired, ..ticket };
                    return Ok(expired.view(&Gate::default(), now));
                }
            }
            _ => return Ok(ticket.view(&Gate::default(), now)),
        }
    }
    Err(DomainError::Transient("the entry kept changing while it was read".into()))
}

/// What the admission worker keeps between batches in one instance: the sales it saw, how many units it
/// believes each shard still holds (refreshed from the table whenever it runs dry), and the takes it knows are
/// settled (so the lane's next admission need not read their tickets).
#[derive(Debug, Default)]
pub struct AdmissionState {
    sales: Mutex<HashMap<String, (FlashSale, Vec<i64>)>>,
    settled: Mutex<HashSet<Take>>,
    /// Previous takes of a lane this instance could not settle yet (by sale): retried on its next batches.
    unsettled: Mutex<HashMap<String, Vec<(u32, Take)>>>,
    /// Open gates this instance read, and when: trusted for [`OPEN_GATE_TRUST`].
    open_gates: Mutex<HashMap<String, std::time::Instant>>,
}

/// How long a worker instance trusts a gate it read open. The gate item shares nothing with the shards, but
/// every batch of every lane reading it would put thousands of consistent reads per second on one item. An
/// open gate that closed meanwhile costs a take that finds the shards empty, and the consistent read before
/// closing; a closed gate is read again on every batch (a unit given back reopens it).
const OPEN_GATE_TRUST: std::time::Duration = std::time::Duration::from_secs(1);

/// Settled takes an instance remembers before it starts over (a forgotten one costs one read).
const SETTLED_CACHE: usize = 100_000;

impl AdmissionState {
    fn cached(&self, sale_id: &str) -> Option<(FlashSale, Vec<i64>)> {
        self.sales.lock().ok().and_then(|m| m.get(sale_id).cloned())
    }

    fn store(&self, sale: &FlashSale, remaining: Vec<i64>) {
        if let Ok(mut m) = self.sales.lock() {
            m.insert(sale.sale_id.clone(), (sale.clone(), remaining));
        }
    }

    fn trusted_open_gate(&self, sale_id: &str) -> bool {
        self.open_gates.lock().is_ok_and(|m| m.get(sale_id).is_some_and(|seen| seen.elapsed() < OPEN_GATE_TRUST))
    }

    fn saw_gate(&self, sale_id: &str, gate: &Gate) {
        if let Ok(mut m) = self.open_gates.lock() {
            if gate.sold_out || gate.returns > 0 {
                m.remove(sale_id);
            } else {
                m.insert(sale_id.to_owned(), std::time::Instant::now());
            }
        }
    }

    fn is_settled(&self, take: &Take) -> bool {
        self.settled.lock().is_ok_and(|s| s.contains(take))
    }

    fn defer(&self, sale_id: &str, shard: u32, take: Take) {
        if let Ok(mut m) = self.unsettled.lock() {
            m.entry(sale_id.to_owned()).or_default().push((shard, take));
        }
    }

    fn deferred(&self, sale_id: &str) -> Vec<(u32, Take)> {
        self.unsettled.lock().ok().and_then(|mut m| m.remove(sale_id)).unwrap_or_default()
    }

    fn settled(&self, take: &Take) {
        if let Ok(mut s) = self.settled.lock() {
            if s.len() >= SETTLED_CACHE {
                s.clear();
            }
            s.insert(take.clone());
        }
    }
}

/// How one queued entry ended in a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Won,
    SoldOut,
    /// The ticket was already settled (a duplicate delivery).
    Skipped,
}

/// The emails of a batch's winners: one `FlashSaleWon` per won entry, with the hold's end as the ticket records
/// it. The winners' tickets are read side by side (at most one batch's entries), the sale comes from the
/// instance's cache the admission filled. The ticket id is the event id, so a redelivered win is not mailed
/// twice.
pub async fn win_emails(
    reader: &impl FlashSaleReader,
    tickets: &impl FlashTicketStore,
    state: &AdmissionState,
    messages: &[EntryMessage],
    results: &[Result<Admission>],
) -> Result<Vec<commerce_domain::email::MailEvent>> {
    let won: Vec<&EntryMessage> = messages
        .iter()
        .zip(results)
        .filter(|(_, result)| matches!(result, Ok(Admission::Won)))
        .map(|(message, _)| message)
        .collect();
    let read = futures::future::try_join_all(won.iter().map(|m| tickets.get_ticket(&m.ticket_id))).await?;
    let mut skus: HashMap<String, String> = HashMap::new();
    let mut events = Vec::new();
    for ticket in read.into_iter().flatten() {
        let Some(hold_expires_at) = ticket.hold_expires_at.filter(|_| ticket.status == TicketStatus::Won) else {
            continue;
        };
        if !skus.contains_key(&ticket.sale_id) {
            let sale = match state.cached(&ticket.sale_id) {
                Some((sale, _)) => Some(sale),
                None => reader.get_sale(&ticket.sale_id).await?,
            };
            skus.insert(ticket.sale_id.clone(), sale.map(|s| s.sku).unwrap_or_default());
        }
        events.push(commerce_domain::email::MailEvent::FlashSaleWon {
            event_id: ticket.ticket_id.clone(),
            customer_id: ticket.customer_id.clone(),
            title: skus.get(&ticket.sale_id).cloned().unwrap_or_default(),
            sale_id: ticket.sale_id,
            ticket_id: ticket.ticket_id,
            hold_expires_at,
        });
    }
    Ok(events)
}

/// How often settling the takes a write replaced is retried before they are deferred to the instance's memory.
const SETTLE_RETRIES: u32 = 3;

/// Write units of a single write of an item under 1 KB, and of one such item in a transaction (AWS's rules).
const WCU_SINGLE: u64 = 1;
const WCU_TRANSACTIONAL: u64 = 2;

/// Write units of closing the gate: one update, or a transaction over the gate and its copies.
fn close_gate_units(sale: &FlashSale) -> u64 {
    match sale.gate_copy_count() {
        1 => WCU_SINGLE,
        copies => WCU_TRANSACTIONAL * u64::from(copies),
    }
}

/// Admits one batch of queued entries, each lane (FIFO message group) in order. Returns, per message, the
/// outcome or the error that makes the message (and, to keep its lane's order, every later one of its lane) go
/// back to the queue; plus the batch's counters.
#[tracing::instrument(skip_all, fields(messages = messages.len()))]
pub async fn admit_batch(
    reader: &impl FlashSaleReader,
    admissions: &impl FlashAdmissions,
    tickets: &impl FlashTicketStore,
    state: &AdmissionState,
    messages: &[EntryMessage],
    now: DateTime<Utc>,
) -> (Vec<Result<Admission>>, HashMap<String, AdmissionStats>) {
    admit_batch_until(reader, admissions, tickets, state, messages, now, None).await
}

/// [`admit_batch`] that starts no admission once `stop_by` has passed (the invocation's deadline less a
/// margin): the entries left go back to the queue in order, instead of the whole batch coming back after the
/// visibility timeout because the function was killed mid-way.
///
/// Consecutive entries of one lane that are not redeliveries take their units together: one conditional write
/// on the lane's home shard for up to [`flash_sale::MAX_BATCH_TAKE`] units, then each ticket wins its unit.
#[tracing::instrument(skip_all, fields(messages = messages.len()))]
pub async fn admit_batch_until(
    reader: &impl FlashSaleReader,
    admissions: &impl FlashAdmissions,
    tickets: &impl FlashTicketStore,
    state: &AdmissionState,
    messages: &[EntryMessage],
    now: DateTime<Utc>,
    stop_by: Option<std::time::Instant>,
) -> (Vec<Result<Admission>>, HashMap<String, AdmissionStats>) {
    let mut results: Vec<Option<Result<Admission>>> = messages.iter().map(|_| None).collect();
    let mut stats: HashMap<String, AdmissionStats> = HashMap::new();
    let mut admitter = Admitter { reader, admissions, tickets, state, gates: HashMap::new(), now };
    let lanes = admitter.lanes(&mut stats, messages, &mut results).await;
    let mut started = false;
    for lane in lanes {
        let mut k = 0;
        while k < lane.len() {
            // The first entry always runs, so a batch makes progress however short its time.
            if started && stop_by.is_some_and(|at| std::time::Instant::now() >= at) {
                fail_from(&mut results, &lane[k..], "the batch ran out of time");
                break;
            }
            started = true;
            let run: Vec<&EntryMessage> = lane[k..]
                .iter()
                .take(flash_sale::MAX_BATCH_TAKE)
                .map(|&i| &messages[i])
                .take_while(|m| !m.redelivered)
                .collect();
            let s = stats.entry(messages[lane[k]].sale_id.clone()).or_default();
            let outcomes = if run.len() >= 2 {
                admitter.admit_run(s, &run).await
            } else {
                vec![admitter.admit(s, &messages[lane[k]]).await]
            };
            let failed = outcomes.iter().any(Result::is_err);
            for outcome in outcomes {
                results[lane[k]] = Some(outcome);
                k += 1;
            }
            if failed {
                fail_from(&mut results, &lane[k..], "an earlier entry of the lane failed");
                break;
            }
        }
    }
    let results = results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(DomainError::Transient("the entry was not admitted".into()))))
        .collect();
    (results, stats)
}

fn fail_from(results: &mut [Option<Result<Admission>>], rest: &[usize], reason: &str) {
    for &i in rest {
        results[i] = Some(Err(DomainError::Transient(reason.into())));
    }
}

/// One batch's admissions: the ports, the instance's state and the gates read so far.
struct Admitter<'a, R, A, T> {
    reader: &'a R,
    admissions: &'a A,
    tickets: &'a T,
    state: &'a AdmissionState,
    gates: HashMap<String, Gate>,
    now: DateTime<Utc>,
}

/// What a step of an admission decided: the entry's outcome, or nothing yet (the next step decides). An
/// error of the step itself (`Err` around it) ends the admission without caching the shards' units.
type Decided = Option<Result<Admission>>;

impl<R: FlashSaleReader, A: FlashAdmissions, T: FlashTicketStore> Admitter<'_, R, A, T> {
    /// Admits one queued entry: the sale and its shards' units (cached by the instance), the takes earlier
    /// batches left unsettled, the gate, then the decision; the units left are cached for the next entry.
    async fn admit(&mut self, stats: &mut AdmissionStats, message: &EntryMessage) -> Result<Admission> {
        let Some((sale, mut remaining)) = self.sale(stats, &message.sale_id).await? else {
            return Ok(Admission::Skipped);
        };
        self.settle_deferred(stats, &sale, &mut remaining).await;
        let mut gate = self.gate(stats, &sale).await?;
        let result = self.decide(stats, &sale, &mut remaining, &mut gate, message).await?;
        self.state.store(&sale, remaining);
        result
    }

    /// The batch's messages by lane (sale and lane, in order of first appearance), each lane's in queue order.
    /// An entry of an unknown sale is skipped; when a sale cannot be read, that entry and every later one fail
    /// (their lanes are not known).
    async fn lanes(
        &mut self,
        stats: &mut HashMap<String, AdmissionStats>,
        messages: &[EntryMessage],
        results: &mut [Option<Result<Admission>>],
    ) -> Vec<Vec<usize>> {
        let mut lanes: Vec<((String, u32), Vec<usize>)> = Vec::new();
        for (i, message) in messages.iter().enumerate() {
            let s = stats.entry(message.sale_id.clone()).or_default();
            let sale = match self.sale(s, &message.sale_id).await {
                Ok(Some((sale, remaining))) => {
                    self.state.store(&sale, remaining);
                    sale
                }
                Ok(None) => {
                    results[i] = Some(Ok(Admission::Skipped));
                    continue;
                }
                Err(err) => {
                    tracing::warn!(sale_id = %message.sale_id, error = %err, "sale not read; the rest of the batch goes back");
                    let rest: Vec<usize> = (i..messages.len()).collect();
                    fail_from(results, &rest, "the sale could not be read");
                    break;
                }
            };
            let lane = (sale.sale_id.clone(), sale.lane_of(&message.ticket_id));
            match lanes.iter_mut().find(|(key, _)| *key == lane) {
                Some((_, indices)) => indices.push(i),
                None => lanes.push((lane, vec![i])),
            }
        }
        lanes.into_iter().map(|(_, indices)| indices).collect()
    }

    /// Admits consecutive entries of one lane (none a redelivery) together: each conditional write on a shard
    /// takes units for as many of them as it can (the lane's home shard first, then others by the units they
    /// hold), and their tickets win them. Entries the shards could not serve this way, and every entry when
    /// the gate is closed or units came back after a close, go through [`Self::admit`] one at a time. After an
    /// error, the run's later entries fail too.
    async fn admit_run(&mut self, stats: &mut AdmissionStats, run: &[&EntryMessage]) -> Vec<Result<Admission>> {
        let mut outcomes = Vec::with_capacity(run.len());
        let taken = self.take_run(stats, run, &mut outcomes).await;
        if let Err(err) = taken {
            outcomes.push(Err(err));
        }
        while outcomes.len() < run.len() {
            if outcomes.last().is_some_and(Result::is_err) {
                outcomes.push(Err(DomainError::Transient("an earlier entry of the lane failed".into())));
                continue;
            }
            let outcome = self.admit(stats, run[outcomes.len()]).await;
            outcomes.push(outcome);
        }
        outcomes
    }

    /// The batch takes of [`Self::admit_run`]: pushes the outcomes of the entries it served, in order.
    async fn take_run(
        &mut self,
        stats: &mut AdmissionStats,
        run: &[&EntryMessage],
        outcomes: &mut Vec<Result<Admission>>,
    ) -> Result<()> {
        let Some((sale, mut remaining)) = self.sale(stats, &run[0].sale_id).await? else {
            outcomes.extend(run.iter().map(|_| Ok(Admission::Skipped)));
            return Ok(());
        };
        self.settle_deferred(stats, &sale, &mut remaining).await;
        let gate = self.gate(stats, &sale).await?;
        if gate.sold_out || gate.returns > 0 || self.now >= sale.ends_at || sale.reconciliation.is_some() {
            self.state.store(&sale, remaining);
            return Ok(());
        }
        let takes: Vec<Take> = run.iter().map(|m| Take::of(m)).collect();
        let home = sale.home_shard(sale.lane_of(&run[0].ticket_id));
        let mut rng = rand::rngs::StdRng::from_entropy();
        let mut attempts = 2 * sale.shards as usize + 8;
        let mut refreshed = false;
        while outcomes.len() < run.len() && attempts > 0 {
            attempts -= 1;
            let pick =
                if remaining.get(home).is_some_and(|u| *u > 0) { Some(home) } else { pick_shard(&remaining, &mut rng) };
            let Some(shard) = pick else { break };
            // Ask for what the shard is believed to hold at most: a short take costs a failed condition, and a
            // take of one needs no record.
            let believed = usize::try_from(remaining[shard]).unwrap_or(1).max(1);
            let left = &takes[outcomes.len()..];
            let wanted = &left[..left.len().min(believed)];
            let shard_u32 = u32::try_from(shard).unwrap_or(0);
            if wanted.len() >= 2 {
                stats.write_units += WCU_SINGLE; // the take record
            }
            match self.admissions.take_units(&sale, shard_u32, wanted).await {
                Err(err) => {
                    self.state.store(&sale, remaining);
                    return Err(err);
                }
                Ok(TakeOutcome::Taken { count, previous }) => {
                    // A short take first failed its condition (a write unit) and then took what was left.
                    stats.write_units += WCU_SINGLE * (1 + u64::from(count < wanted.len()));
                    stats.condition_failures += u64::from(count < wanted.len());
                    remaining[shard] -= i64::try_from(count).unwrap_or(0);
                    let served = &wanted[..count];
                    let settled = self.taken_together(stats, &sale, &mut remaining, shard_u32, served, previous).await;
                    let failed = settled.iter().any(Result::is_err);
                    outcomes.extend(settled);
                    if failed {
                        self.state.store(&sale, remaining);
                        return Ok(());
                    }
                }
                Ok(TakeOutcome::ShardEmpty { remaining: left }) => {
                    stats.write_units += WCU_SINGLE;
                    stats.fallbacks += 1;
                    stats.condition_failures += 1;
                    if refreshed {
                        remaining[shard] = left.unwrap_or(0).max(0);
                        continue;
                    }
                    // What the instance believes of the other shards is as old as what it believed of this
                    // one: one read of them all costs no write and takes nothing from a shard's write ceiling,
                    // where each blind fallback costs a failed write (and a take record).
                    refreshed = true;
                    match self.admissions.shard_units(&sale).await {
                        Ok(units) => {
                            stats.read_units += u64::from(sale.shards);
                            remaining = units;
                        }
                        Err(err) => {
                            self.state.store(&sale, remaining);
                            return Err(err);
                        }
                    }
                }
            }
        }
        self.state.store(&sale, remaining);
        Ok(())
    }

    /// The entries of `takes` took units of `shard` together: each ticket wins its unit (or, settled otherwise,
    /// the unit goes back), all at once; then the takes whose marks the write replaced are settled. After a
    /// failed settlement the later entries' outcomes are errors too (they go back to the queue in order, and
    /// their redelivery finds their takes settled or settles them).
    async fn taken_together(
        &self,
        stats: &mut AdmissionStats,
        sale: &FlashSale,
        remaining: &mut [i64],
        shard: u32,
        takes: &[Take],
        previous: Vec<Take>,
    ) -> Vec<Result<Admission>> {
        let hold = Some(sale.hold_expiry(self.now));
        let settled =
            futures::future::join_all(takes.iter().map(|take| self.admissions.settle(sale, shard, take, hold))).await;
        let mut outcomes = Vec::with_capacity(takes.len());
        for (take, settled) in takes.iter().zip(settled) {
            let outcome = settled.map(|settled| {
                count_settlement(settled, true, stats);
                if settled == Settlement::Won {
                    stats.admitted += 1;
                }
                self.state.settled(take);
                match settled {
                    Settlement::Won | Settlement::AlreadyWon => Admission::Won,
                    Settlement::GivenBack | Settlement::AlreadyGivenBack => {
                        remaining[shard as usize] += i64::from(settled == Settlement::GivenBack);
                        Admission::Skipped
                    }
                }
            });
            if outcomes.last().is_some_and(Result::is_err) {
                outcomes.push(Err(DomainError::Transient("an earlier entry of the lane failed".into())));
            } else {
                outcomes.push(outcome);
            }
        }
        self.settle_previous(stats, sale, remaining, shard, takes, previous).await;
        outcomes
    }

    /// Settles the takes whose marks a take replaced (the lane's last and the `prev` kept before it): named
    /// nowhere else now, so a failure keeps them in the instance's memory for its next batches.
    async fn settle_previous(
        &self,
        stats: &mut AdmissionStats,
        sale: &FlashSale,
        remaining: &mut [i64],
        shard: u32,
        own: &[Take],
        previous: Vec<Take>,
    ) {
        let before: Vec<(u32, Take)> = previous.into_iter().filter(|p| !own.contains(p)).map(|p| (shard, p)).collect();
        if before.is_empty() {
            return;
        }
        if let Err(err) = self.settle_replaced(stats, sale, &before, remaining).await {
            tracing::error!(sale_id = %sale.sale_id, shard, takes = before.len(), error = %err, "the lane's previous takes are not settled yet; retrying on the next batch");
            for (shard, previous) in before {
                self.state.defer(&sale.sale_id, shard, previous);
            }
        }
    }

    /// The sale and its shards' units, from the instance's cache or read; `None` for an unknown sale.
    async fn sale(&self, stats: &mut AdmissionStats, sale_id: &str) -> Result<Option<(FlashSale, Vec<i64>)>> {
        if let Some(cached) = self.state.cached(sale_id) {
            return Ok(Some(cached));
        }
        let Some(sale) = self.reader.get_sale(sale_id).await? else {
            tracing::warn!(sale_id = %sale_id, "entry for an unknown sale dropped");
            return Ok(None);
        };
        let remaining = self.admissions.shard_units(&sale).await?;
        stats.read_units += u64::from(sale.shards) + 1;
        Ok(Some((sale, remaining)))
    }

    /// Settles the takes an earlier batch could not; on a transient failure they wait for the next entry.
    async fn settle_deferred(&self, stats: &mut AdmissionStats, sale: &FlashSale, remaining: &mut [i64]) {
        let deferred = self.state.deferred(&sale.sale_id);
        if deferred.is_empty() {
            return;
        }
        let settled = settle_others(self.admissions, self.state, sale, &deferred, remaining, stats, self.now).await;
        if let Err(err) = settled {
            tracing::error!(sale_id = %sale.sale_id, error = %err, takes = deferred.len(), "previous takes still not settled");
            if matches!(err, DomainError::Transient(_)) {
                for (shard, take) in deferred {
                    self.state.defer(&sale.sale_id, shard, take);
                }
            }
        }
    }

    /// The sale's gate: read once per batch, or not at all while the instance trusts an open gate it read.
    async fn gate(&mut self, stats: &mut AdmissionStats, sale: &FlashSale) -> Result<Gate> {
        if let Some(gate) = self.gates.get(&sale.sale_id) {
            return Ok(*gate);
        }
        if self.state.trusted_open_gate(&sale.sale_id) {
            return Ok(Gate::default());
        }
        let gate = self.reader.get_gate(&sale.sale_id, true).await?;
        stats.read_units += 1;
        self.state.saw_gate(&sale.sale_id, &gate);
        self.gates.insert(sale.sale_id.clone(), gate);
        Ok(gate)
    }

    /// A redelivered entry's earlier take first, then the sale's state, then a unit of a shard.
    async fn decide(
        &mut self,
        stats: &mut AdmissionStats,
        sale: &FlashSale,
        remaining: &mut Vec<i64>,
        gate: &mut Gate,
        message: &EntryMessage,
    ) -> Result<Result<Admission>> {
        let ticket =
            &Ticket::waiting(message.ticket_id.clone(), sale.sale_id.clone(), message.customer_id.clone(), 0, self.now);
        let take = &Take::of(message);
        if message.redelivered {
            if let Some(decided) = self.redelivery(stats, sale, remaining, take, ticket).await? {
                return Ok(decided);
            }
        }
        if gate.sold_out || self.now >= sale.ends_at || sale.reconciliation.is_some() {
            return Ok(reject(self.tickets, ticket, stats).await);
        }
        if gate.returns > 0 {
            // Units came back after the line was settled once: entries still queued may be settled already,
            // and one read is cheaper than taking a unit only to give it back.
            stats.read_units += 1;
            if !self.tickets.get_ticket(&ticket.ticket_id).await?.is_some_and(|t| t.status == TicketStatus::Waiting) {
                return Ok(Ok(Admission::Skipped));
            }
        }
        self.take_a_unit(stats, sale, remaining, gate, take, ticket).await
    }

    /// A redelivered entry: the unit may have been taken before the worker died, so that take is settled
    /// before another is made.
    async fn redelivery(
        &self,
        stats: &mut AdmissionStats,
        sale: &FlashSale,
        remaining: &mut Vec<i64>,
        take: &Take,
        ticket: &Ticket,
    ) -> Result<Decided> {
        let shards = self.admissions.shard_states(sale).await?;
        stats.read_units += u64::from(sale.shards);
        *remaining = shards.iter().map(|s| s.units).collect();
        let own = shards.iter().position(|s| s.takes.contains(take)).and_then(|k| u32::try_from(k).ok());
        let Some(shard) = own else {
            // No shard names the take any more: the lane's later takes replaced its marks, which happens only
            // after it was settled (a lane's messages are admitted one after another). A take is made once
            // per message key: taking again would settle as "already won" or "already given back" and strand
            // the new unit. One consistent read of the ticket tells.
            stats.read_units += 1;
            if self.admissions.unsettled(&[(0, take.clone())]).await?.is_empty() {
                self.state.settled(take);
                return Ok(Some(Ok(Admission::Skipped)));
            }
            return Ok(None);
        };
        tracing::info!(ticket_id = %take.ticket_id, shard, "redelivered entry: its unit was already taken");
        // The take this message's decrement replaced (kept as the lane's `prev` mark) may be unsettled.
        let lane = sale.lane_of(&take.ticket_id);
        let before: Vec<(u32, Take)> = shards[shard as usize]
            .takes
            .iter()
            .filter(|t| *t != take && sale.lane_of(&t.ticket_id) == lane)
            .map(|t| (shard, t.clone()))
            .collect();
        settle_others(self.admissions, self.state, sale, &before, remaining, stats, self.now).await?;
        let settled =
            settle_own(self.admissions, self.state, sale, shard, take, sale.late_hold(self.now), stats).await?;
        match settled {
            Settlement::Won => Ok(Some(Ok(Admission::Won))),
            Settlement::AlreadyWon => Ok(Some(Ok(Admission::Skipped))),
            Settlement::GivenBack | Settlement::AlreadyGivenBack => {
                if settled == Settlement::GivenBack {
                    remaining[shard as usize] += 1;
                }
                // A ticket still waiting after its take went back can only be one whose sale is over (a waiting
                // ticket wins its take otherwise), and a message takes once: it is sold out.
                stats.read_units += 1;
                let current = self.tickets.get_ticket(&take.ticket_id).await?;
                Ok(Some(match current {
                    Some(t) if t.status == TicketStatus::Waiting => reject(self.tickets, ticket, stats).await,
                    _ => Ok(Admission::Skipped),
                }))
            }
        }
    }

    /// Takes a unit from a shard picked by the units it has left; when none seems to have any, reads the
    /// shards again (settling what they name and rebalancing), and closes the queue once they are empty.
    async fn take_a_unit(
        &mut self,
        stats: &mut AdmissionStats,
        sale: &FlashSale,
        remaining: &mut Vec<i64>,
        gate: &mut Gate,
        take: &Take,
        ticket: &Ticket,
    ) -> Result<Result<Admission>> {
        let mut fresh = false;
        let max_attempts = 2 * sale.shards as usize + 8;
        let mut rng = rand::rngs::StdRng::from_entropy();
        for _ in 0..max_attempts {
            let Some(shard) = pick_shard(remaining, &mut rng) else {
                if !fresh {
                    *gate = self.reader.get_gate(&sale.sale_id, true).await?;
                    stats.read_units += 1;
                    self.state.saw_gate(&sale.sale_id, gate);
                    if gate.sold_out {
                        // Another worker closed the queue, after settling every take the shards named.
                        self.gates.insert(sale.sale_id.clone(), *gate);
                        return Ok(reject(self.tickets, ticket, stats).await);
                    }
                    fresh = !self.refresh_shards(stats, sale, remaining).await?;
                    continue;
                }
                stats.write_units += close_gate_units(sale);
                if self.admissions.close_gate(sale, gate.returns).await? {
                    tracing::info!(sale_id = %sale.sale_id, "sold out: the queue is closed");
                    gate.sold_out = true;
                    self.state.saw_gate(&sale.sale_id, gate);
                    self.gates.insert(sale.sale_id.clone(), *gate);
                    return Ok(reject(self.tickets, ticket, stats).await);
                }
                stats.condition_failures += 1;
                fresh = false;
                continue;
            };
            let shard_u32 = u32::try_from(shard).unwrap_or(0);
            stats.write_units += WCU_SINGLE;
            match self.admissions.take_units(sale, shard_u32, std::slice::from_ref(take)).await? {
                TakeOutcome::Taken { previous, .. } => {
                    remaining[shard] -= 1;
                    return self.taken(stats, sale, remaining, shard_u32, take, previous).await.map(Ok);
                }
                TakeOutcome::ShardEmpty { remaining: left } => {
                    remaining[shard] = left.unwrap_or(0).max(0);
                    stats.fallbacks += 1;
                    stats.condition_failures += 1;
                }
            }
        }
        Ok(Err(DomainError::Transient("no shard admitted the entry".into())))
    }

    /// Reads the shards' units again. When they are all empty, first settles every take they name (a unit
    /// taken by a worker that died, and whose message gave up, would otherwise be stranded); then moves units
    /// towards empty shards. `true` when settling gave units back, so the read is stale already.
    async fn refresh_shards(
        &self,
        stats: &mut AdmissionStats,
        sale: &FlashSale,
        remaining: &mut Vec<i64>,
    ) -> Result<bool> {
        let shards = self.admissions.shard_states(sale).await?;
        stats.read_units += u64::from(sale.shards) + 1;
        *remaining = shards.iter().map(|s| s.units).collect();
        let mut stale = false;
        if remaining.iter().all(|units| *units <= 0) {
            let named: Vec<(u32, Take)> =
                shards.iter().zip(0u32..).flat_map(|(s, k)| s.takes.iter().map(move |t| (k, t.clone()))).collect();
            stale = settle_others(self.admissions, self.state, sale, &named, remaining, stats, self.now).await?;
        }
        for mv in rebalance_plan(remaining) {
            if self.admissions.move_units(&sale.sale_id, mv).await? {
                remaining[mv.from] -= mv.units;
                remaining[mv.to] += mv.units;
                stats.rebalances += 1;
            } else {
                stats.condition_failures += 1;
            }
            stats.write_units += 2 * WCU_TRANSACTIONAL;
        }
        Ok(stale)
    }

    /// Settles the takes a write replaced, retrying a transient failure a few times: once deferred, they live
    /// only in this instance's memory until its next batch (the shards no longer name them).
    async fn settle_replaced(
        &self,
        stats: &mut AdmissionStats,
        sale: &FlashSale,
        replaced: &[(u32, Take)],
        remaining: &mut [i64],
    ) -> Result<bool> {
        let mut attempt = 0u32;
        loop {
            match settle_others(self.admissions, self.state, sale, replaced, remaining, stats, self.now).await {
                Err(DomainError::Transient(reason)) if attempt < SETTLE_RETRIES => {
                    tracing::warn!(sale_id = %sale.sale_id, reason, attempt, "settling replaced takes: retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
                    attempt += 1;
                }
                settled => return settled,
            }
        }
    }

    /// This message took a unit of `shard`: its ticket wins it (or, settled otherwise, the unit goes back), and
    /// the takes whose marks the write replaced are settled.
    async fn taken(
        &self,
        stats: &mut AdmissionStats,
        sale: &FlashSale,
        remaining: &mut [i64],
        shard: u32,
        take: &Take,
        previous: Vec<Take>,
    ) -> Result<Admission> {
        let hold = Some(sale.hold_expiry(self.now));
        let settled = settle_own(self.admissions, self.state, sale, shard, take, hold, stats).await?;
        // This message's own take is settled: failing it would not help (its redelivery cannot see what its
        // write replaced), so the instance keeps the replaced takes and retries.
        self.settle_previous(stats, sale, remaining, shard, std::slice::from_ref(take), previous).await;
        Ok(match settled {
            Settlement::Won | Settlement::AlreadyWon => Admission::Won,
            Settlement::GivenBack | Settlement::AlreadyGivenBack => {
                remaining[shard as usize] += i64::from(settled == Settlement::GivenBack);
                Admission::Skipped
            }
        })
    }
}

/// Settles this message's own take: its ticket wins it with `hold`, or (the ticket settled otherwise) the unit
/// goes back.
async fn settle_own(
    admissions: &impl FlashAdmissions,
    state: &AdmissionState,
    sale: &FlashSale,
    shard: u32,
    take: &Take,
    hold: Option<DateTime<Utc>>,
    stats: &mut AdmissionStats,
) -> Result<Settlement> {
    let settled = admissions.settle(sale, shard, take, hold).await?;
    count_settlement(settled, hold.is_some(), stats);
    if settled == Settlement::Won {
        stats.admitted += 1;
    }
    state.settled(take);
    Ok(settled)
}

/// Settles the takes other messages made (a lane's previous take, the takes an empty sale's shards name) that
/// are not settled yet: a waiting ticket wins its unit while the sale is on, otherwise the unit goes back.
/// `true` if any unit went back (`remaining` counts it).
async fn settle_others(
    admissions: &impl FlashAdmissions,
    state: &AdmissionState,
    sale: &FlashSale,
    takes: &[(u32, Take)],
    remaining: &mut [i64],
    stats: &mut AdmissionStats,
    now: DateTime<Utc>,
) -> Result<bool> {
    let unknown: Vec<(u32, Take)> = takes.iter().filter(|(_, t)| !state.is_settled(t)).cloned().collect();
    if unknown.is_empty() {
        return Ok(false);
    }
    stats.read_units += unknown.len() as u64;
    let mut gave_back = false;
    for (shard, take) in admissions.unsettled(&unknown).await? {
        tracing::warn!(sale_id = %sale.sale_id, shard, ticket_id = %take.ticket_id, "settling a take its worker left unsettled");
        let hold = sale.late_hold(now);
        let settled = admissions.settle(sale, shard, &take, hold).await?;
        count_settlement(settled, hold.is_some(), stats);
        if settled == Settlement::Won {
            stats.admitted += 1;
        }
        if settled == Settlement::GivenBack {
            gave_back = true;
            if let Some(units) = remaining.get_mut(shard as usize) {
                *units += 1;
            }
        }
    }
    for (_, take) in &unknown {
        state.settled(take);
    }
    Ok(gave_back)
}

/// Adds a settlement's writes: the ticket write (and its hold index entry when won), or, when the unit went
/// back, the transaction of ticket, shard and gate.
fn count_settlement(settled: Settlement, tried_to_win: bool, stats: &mut AdmissionStats) {
    if tried_to_win {
        stats.write_units += WCU_SINGLE;
    }
    match settled {
        Settlement::Won => stats.write_units += WCU_SINGLE, // the hold index entry
        Settlement::GivenBack => {
            stats.write_units += 3 * WCU_TRANSACTIONAL;
            stats.condition_failures += u64::from(tried_to_win);
        }
        Settlement::AlreadyWon | Settlement::AlreadyGivenBack => {
            stats.condition_failures += u64::from(tried_to_win);
        }
    }
}

async fn reject(tickets: &impl FlashTicketStore, ticket: &Ticket, stats: &mut AdmissionStats) -> Result<Admission> {
    stats.write_units += 2 * WCU_SINGLE;
    if tickets.mark_sold_out(ticket).await? {
        stats.rejected += 1;
        Ok(Admission::SoldOut)
    } else {
        stats.condition_failures += 1;
        Ok(Admission::Skipped)
    }
}

use rand::SeedableRng;

/// What checkout may sell for a ticket: the customer's own won ticket with an unexpired hold, and its sale
/// (whose price is charged). An expired hold is 410 `hold_expired`, a used one 409 `hold_consumed`, one that
/// never won 409 `not_won`; someone else's ticket does not exist.
#[tracing::instrument(skip_all, fields(ticket_id = %ticket_id, customer_id = %customer_id))]
pub async fn checkout_hold(
    reader: &impl FlashSaleReader,
    tickets: &impl FlashTicketStore,
    ticket_id: &str,
    customer_id: &str,
    now: DateTime<Utc>,
) -> Result<(Ticket, FlashSale)> {
    if TicketId::parse(ticket_id).is_err() {
        return Err(DomainError::not_found("flash ticket"));
    }
    let ticket = tickets
        .get_ticket(ticket_id)
        .await?
        .filter(|t| t.customer_id == customer_id)
        .ok_or_else(|| DomainError::not_found("flash ticket"))?;
    match ticket.status {
        TicketStatus::Won if !ticket.hold_expired(now) => {}
        TicketStatus::Won | TicketStatus::Expired | TicketStatus::Released => {
            return Err(DomainError::Gone {
                code: ErrorCode::HoldExpired,
                message: "the checkout hold has expired".into(),
            })
        }
        TicketStatus::Purchased => {
            return Err(DomainError::conflict(ErrorCode::HoldConsumed, "the hold was used by another order"))
        }
        TicketStatus::Waiting | TicketStatus::SoldOut => {
            return Err(DomainError::conflict(ErrorCode::NotWon, "this entry has not won a unit"))
        }
    }
    let sale = reader.get_sale(&ticket.sale_id).await?.ok_or_else(|| DomainError::not_found("flash sale"))?;
    Ok((ticket, sale))
}

/// Checkout takes the unit of a won, unexpired hold for `order_id`. A replay with the same order answers the
/// same unit; an expired hold is 410 `hold_expired`; a ticket that never won is 409 `not_won`.
#[tracing::instrument(skip_all, fields(ticket_id = %ticket_id, customer_id = %customer_id, order_id = %order_id))]
pub async fn consume_hold(
    reader: &impl FlashSaleReader,
    tickets: &impl FlashTicketStore,
    holds: &impl FlashHolds,
    ticket_id: &str,
    customer_id: &str,
    order_id: &str,
    now: DateTime<Utc>,
) -> Result<HeldUnit> {
    for _ in 0..3 {
        let ticket = tickets
            .get_ticket(ticket_id)
            .await?
            .filter(|t| t.customer_id == customer_id)
            .ok_or_else(|| DomainError::not_found("flash ticket"))?;
        match ticket.status {
            TicketStatus::Purchased if ticket.order_id.as_deref() == Some(order_id) => {
                return held_unit(reader, &ticket, order_id).await;
            }
            TicketStatus::Won if !ticket.hold_expired(now) => {
                if holds.consume(ticket_id, customer_id, order_id, now).await? {
                    tracing::info!(ticket_id = %ticket_id, order_id = %order_id, "flash hold consumed");
                    return held_unit(reader, &ticket, order_id).await;
                }
            }
            TicketStatus::Won | TicketStatus::Expired | TicketStatus::Released => {
                return Err(DomainError::Gone {
                    code: ErrorCode::HoldExpired,
                    message: "the checkout hold has expired".into(),
                })
            }
            TicketStatus::Purchased => {
                return Err(DomainError::conflict(ErrorCode::HoldConsumed, "the hold was used by another order"))
            }
            TicketStatus::Waiting | TicketStatus::SoldOut => {
                return Err(DomainError::conflict(ErrorCode::NotWon, "this entry has not won a unit"))
            }
        }
    }
    Err(DomainError::Transient("the hold kept changing".into()))
}

async fn held_unit(reader: &impl FlashSaleReader, ticket: &Ticket, order_id: &str) -> Result<HeldUnit> {
    let sale = reader.get_sale(&ticket.sale_id).await?.ok_or_else(|| DomainError::not_found("flash sale"))?;
    Ok(HeldUnit {
        ticket_id: ticket.ticket_id.clone(),
        sale_id: sale.sale_id,
        sku: sale.sku,
        warehouse_id: sale.warehouse_id,
        price: sale.price,
        order_id: order_id.to_owned(),
    })
}

/// Checkout's compensation: the order that consumed the hold failed, so the unit goes back to the sale for the
/// next in line. Idempotent; a hold consumed by another order is left alone (409).
#[tracing::instrument(skip_all, fields(ticket_id = %ticket_id, order_id = %order_id))]
pub async fn release_hold(
    tickets: &impl FlashTicketStore,
    ticket_id: &str,
    order_id: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    for _ in 0..3 {
        let ticket = tickets.get_ticket(ticket_id).await?.ok_or_else(|| DomainError::not_found("flash ticket"))?;
        match ticket.status {
            TicketStatus::Purchased if ticket.order_id.as_deref() == Some(order_id) => {
                if tickets.return_unit(&ticket, TicketStatus::Released, now).await? {
                    tracing::info!(ticket_id = %ticket_id, order_id = %order_id, "flash hold released");
                    return Ok(());
                }
            }
            TicketStatus::Released | TicketStatus::Expired | TicketStatus::Won => return Ok(()),
            _ => return Err(DomainError::conflict(ErrorCode::HoldNotConsumed, "this order does not hold the unit")),
        }
    }
    Err(DomainError::Transient("the hold kept changing".into()))
}

/// What one schedule run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct SweepReport {
    pub sales: usize,
    pub expired_holds: usize,
    /// Takes found unsettled by the audit (their worker died and their message gave up), now settled.
    pub settled_takes: usize,
    pub reconciled: usize,
}

/// Expires run-out holds of every live sale (their units go back for the next in line); audits the takes the
/// shards of a sold-out or ended sale name (one left unsettled goes to its waiting ticket while the sale is
/// on, back to the sale after); and reconciles each sale ended [`flash_sale::RECONCILE_GRACE_SECONDS`] ago with
/// no hold outstanding: the shards go back into the stock item, the rest is booked as sold.
#[tracing::instrument(skip_all)]
pub async fn sweep(
    reconciler: &(impl FlashReconciler + FlashAdmissions + FlashSaleReader),
    tickets: &impl FlashTicketStore,
    now: DateTime<Utc>,
) -> Result<SweepReport> {
    let mut report = SweepReport::default();
    for sale in reconciler.live_sales().await? {
        report.sales += 1;
        for ticket in reconciler.expired_holds(&sale, now, 500).await? {
            if tickets.return_unit(&ticket, TicketStatus::Expired, now).await? {
                report.expired_holds += 1;
            }
        }
        if now >= sale.ends_at || reconciler.get_gate(&sale.sale_id, true).await?.sold_out {
            report.settled_takes += audit_takes(reconciler, &sale, now).await?;
        }
        if sale.reconcilable(now) && !reconciler.has_holds(&sale).await? {
            let shards = reconciler.shard_units(&sale).await?;
            if reconciler.reconcile(&sale, &shards, now).await? {
                let returned: i64 = shards.iter().sum();
                tracing::info!(sale_id = %sale.sale_id, returned, sold = i64::from(sale.units) - returned, "flash sale reconciled");
                report.reconciled += 1;
            }
        }
    }
    Ok(report)
}

/// Settles every take the sale's shards name that is not settled yet; how many there were.
async fn audit_takes(admissions: &impl FlashAdmissions, sale: &FlashSale, now: DateTime<Utc>) -> Result<usize> {
    let named: Vec<(u32, Take)> = admissions
        .shard_states(sale)
        .await?
        .into_iter()
        .zip(0u32..)
        .flat_map(|(s, k)| s.takes.into_iter().map(move |t| (k, t)))
        .collect();
    let unsettled = admissions.unsettled(&named).await?;
    for (shard, take) in &unsettled {
        let settled = admissions.settle(sale, *shard, take, sale.late_hold(now)).await?;
        tracing::warn!(sale_id = %sale.sale_id, shard, ticket_id = %take.ticket_id, ?settled, "audit settled a take its worker left");
    }
    Ok(unsettled.len())
}
