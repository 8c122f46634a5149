//! Flash sales on DynamoDB (`FLASH_SALES_TABLE`) and the waiting room on SQS (`WAITING_ROOM_QUEUE_URL`).
//!
//! Layout (docs/DATA_MODEL.md, "FlashSalesTable"): every hot item has a partition key of its own, so no two
//! of them share a partition's 1,000 writes/s.
//! - `SALE#<id>` / `META`: the sale (gsi1 `LIVE` until reconciled, gsi2 `SKU#<sku>` for the product page);
//! - `SALE#<id>` / `GATE`: `sold_out`, `returns`;
//! - `SALE#<id>#GATE#<k>` / `GATE` for `k` in `1..gate_copies`: copies of the gate, written in the same
//!   transaction as the gate whenever it changes, each in a partition of its own; a reader instance reads one;
//! - `SALE#<id>#SHARD#<k>` / `SHARD`: `units` (the stock gate), `closed` after reconciliation, `lane<j>` the mark
//!   of lane `j`'s last take from it (one take `<ticket>|<message key>`, or a batch take `*<take id>:<count>`),
//!   `prev<j>` the mark that one replaced;
//! - `TAKE#<sale>#<take id>` / `TAKE`: a batch take's record, `takes` the batch's takes in line order (written
//!   once, before the shard write that names it);
//! - `SALE#<id>#SEQ#<k>` / `SEQ`: `n`, the lane's entry sequence;
//! - `SALE#<id>#CUST#<customer>` / `CUST`: `count` of live entries, `last_ms` of the last one;
//! - `TICKET#<ticket_id>` / `TICKET`: the ticket; `taken_by` the message whose take it won, `given_back` the
//!   messages whose takes went back to the sale; while won, gsi1 `HOLDS#<sale>#<lane>` / `<expiry>#<ticket>`;
//! - `SALE#<id>#METRIC#<j>` / `METRIC#<instance>`: admission counters per worker instance, over
//!   [`METRIC_PARTITIONS`] partitions by instance (on `SALE#<id>` they would share the gate's partition).
//!
//! Units are allocated from the inventory table's stock item (`INVENTORY_TABLE`, `pk = SKU#<sku>`,
//! `sk = WH#<warehouse>`): creation moves them from `free`/`avail` to `reserved`, counted in `flash`;
//! reconciliation moves the unsold ones back and books the sold ones (`on_hand`/`reserved` down, `sold` and
//! `flash_sold` up), so `free + reserved + sold == received + adjustments` holds throughout.

pub mod stock;
#[cfg(test)]
mod tests;

use crate::dynamo::{
    applied, from_item, key, n, num, s, sdk_error, text, to_av, to_item, updated_or_current, Cancellation, Item, Table,
};
use crate::sharded::ShardedCounter;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Duration, Utc};
use commerce_app::ports::{
    AdmissionStats, EntryOutcome, FlashAdmissions, FlashEntryWriter, FlashHolds, FlashReconciler, FlashSaleCreator,
    FlashSaleListing, FlashSaleReader, FlashTicketStore, Settlement, ShardState, TakeOutcome, WaitingRoom,
};
use commerce_domain::error::ErrorCode;
use commerce_domain::error::{DomainError, Result};
use commerce_domain::flash_sale::{
    EntryMessage, FlashSale, Gate, Mark, Move, SaleSnapshot, Take, Ticket, TicketStatus,
};
use futures::FutureExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

fn meta_key(sale_id: &str) -> Item {
    key(format!("SALE#{sale_id}"), "META")
}

fn gate_key(sale_id: &str) -> Item {
    key(format!("SALE#{sale_id}"), "GATE")
}

/// The key of gate copy `copy` of a sale: the gate itself for copy 0.
fn gate_copy_key(sale_id: &str, copy: u32) -> Item {
    if copy == 0 {
        gate_key(sale_id)
    } else {
        key(format!("SALE#{sale_id}#GATE#{copy}"), "GATE")
    }
}

fn seq_key(sale_id: &str, k: u32) -> Item {
    key(format!("SALE#{sale_id}#SEQ#{k}"), "SEQ")
}

fn customer_key(sale_id: &str, customer_id: &str) -> Item {
    key(format!("SALE#{sale_id}#CUST#{customer_id}"), "CUST")
}

fn ticket_key(ticket_id: &str) -> Item {
    key(format!("TICKET#{ticket_id}"), "TICKET")
}

/// The shard item's attribute naming the last take from it through lane `lane` (the queue's message group):
/// the lane's messages are processed one after another, so the take a mark names is settled, or still in
/// flight with the one message of its lane that the queue has out.
fn lane_mark(lane: u32) -> String {
    format!("lane{lane}")
}

/// The shard item's attribute naming the take [`lane_mark`] replaced: a worker that dies after its decrement
/// loses the replaced take it was to settle, so its redelivery finds that take here.
fn prev_mark(lane: u32) -> String {
    format!("prev{lane}")
}

/// Whether a ticket item records `take` as settled: won by it, or its unit given back.
fn settled_in(item: &Item, take: &Take) -> Option<Settlement> {
    if text(item, "taken_by").is_some_and(|m| *m == take.message_key) {
        return Some(Settlement::AlreadyWon);
    }
    let given_back = item.get("given_back").and_then(|v| v.as_ss().ok());
    given_back.is_some_and(|set| set.contains(&take.message_key)).then_some(Settlement::AlreadyGivenBack)
}

/// The marks a shard item holds.
fn marks_in(item: &Item) -> Vec<Mark> {
    item.iter()
        .filter(|(name, _)| name.starts_with("lane") || name.starts_with("prev"))
        .filter_map(|(_, value)| value.as_s().ok().and_then(|mark| Mark::parse(mark)))
        .collect()
}

fn take_record_key(sale_id: &str, take_id: &str) -> Item {
    key(format!("TAKE#{sale_id}#{take_id}"), "TAKE")
}

/// Partitions the workers' admission counters are spread over.
pub const METRIC_PARTITIONS: u32 = 32;

fn metric_partition(instance: &str) -> u32 {
    commerce_domain::flash_sale::lane_of(instance, METRIC_PARTITIONS)
}

fn metric_pk(sale_id: &str, partition: u32) -> String {
    format!("SALE#{sale_id}#METRIC#{partition}")
}

/// Take records an instance keeps (they never change, so a kept one is never stale) before it starts over.
const RECORD_CACHE: usize = 10_000;

/// The hold index partition (gsi1) of a won ticket: one per lane, so at tens of thousands of wins per second
/// no index partition takes more than its lane's share (a partition per shard would take a shard's lanes at
/// once). A sale stored before lanes were a setting has one lane per shard: the same partitions as before.
fn holds_pk(sale: &FlashSale, ticket_id: &str) -> String {
    format!("HOLDS#{}#{}", sale.sale_id, sale.lane_of(ticket_id))
}

fn holds_partition(sale_id: &str, lane: u32) -> String {
    format!("HOLDS#{sale_id}#{lane}")
}

fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// A unit cannot go back to a sale whose shards were closed by reconciliation.
fn sale_reconciled() -> DomainError {
    DomainError::conflict(ErrorCode::SaleReconciled, "the sale was already reconciled into inventory")
}

/// The flash sales table (and the inventory table for allocation and reconciliation). Cheap to clone.
#[derive(Debug, Clone)]
pub struct DynamoFlashSales {
    table: Table,
    inventory: Table,
    /// Take records this instance wrote or read, by take id.
    records: Arc<Mutex<HashMap<String, Vec<Take>>>>,
    /// The gate copy this instance reads (0: the gate itself); a sale with fewer copies is read at its gate.
    read_copy: u32,
    /// The gate copies of the sales this instance gave units back to (a sale's copy count never changes).
    copies: Arc<Mutex<HashMap<String, u32>>>,
}

impl DynamoFlashSales {
    /// The adapter over `table`, allocating from `inventory_table`.
    pub fn new(client: Client, table: impl Into<String>, inventory_table: impl Into<String>) -> Self {
        let table = Table::new(client, table);
        let inventory = table.sibling(inventory_table);
        Self { table, inventory, records: Arc::default(), read_copy: 0, copies: Arc::default() }
    }

    /// Reads one of `copies` gate items, picked at random for this instance (`FLASH_GATE_COPIES`), so the
    /// instances of a function spread their gate reads over the copies' partitions.
    pub fn reading_gate_copies(self, copies: u32) -> Self {
        Self { read_copy: rand::random::<u32>() % copies.max(1), ..self }
    }

    /// Sales, gates and tickets only, for the functions that neither allocate units from stock nor reconcile
    /// a sale (template.yaml gives them no INVENTORY_TABLE and no permission on it): a call that needs the
    /// inventory table fails, as IAM would refuse it.
    pub fn without_inventory(client: Client, table: impl Into<String>) -> Self {
        Self::new(client, table, String::new())
    }

    /// Runs a transaction (see [`Table::transact`]).
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<Option<Cancellation>> {
        self.table.transact(items).await
    }

    /// The sale's gate counter: units of stock over the shards.
    fn gate(&self, sale_id: &str) -> ShardedCounter<'_> {
        ShardedCounter::new(&self.table, format!("SALE#{sale_id}"))
    }

    /// Every shard item of a sale with its index, read consistently.
    async fn shard_items(&self, sale: &FlashSale) -> Result<Vec<(u32, Item)>> {
        self.gate(&sale.sale_id).read(sale.shards).await
    }

    fn remember(&self, take_id: &str, takes: Vec<Take>) {
        if let Ok(mut records) = self.records.lock() {
            if records.len() >= RECORD_CACHE {
                records.clear();
            }
            records.insert(take_id.to_owned(), takes);
        }
    }

    /// Writes a batch take's record before the shard write that will name it; answers its take id.
    async fn write_take_record(&self, sale: &FlashSale, shard: u32, takes: &[Take]) -> Result<String> {
        let first = &takes[0];
        let take_id =
            Mark::batch_id(&format!("{}#{}#{}", sale.sale_id, first.message_key, commerce_domain::ids::new_id("tk")));
        let mut item = take_record_key(&sale.sale_id, &take_id);
        item.insert("takes".into(), AttributeValue::L(takes.iter().map(|t| s(t.mark())).collect()));
        item.insert("shard".into(), n(shard));
        self.table.put_item().set_item(Some(item)).send().await.map_err(sdk_error)?;
        self.remember(&take_id, takes.to_vec());
        Ok(take_id)
    }

    /// The takes `marks` name: a batch mark's first `count` takes of its record (kept, or read consistently).
    async fn resolve(&self, sale_id: &str, marks: Vec<Mark>) -> Result<Vec<Take>> {
        let known = |id: &str| self.records.lock().ok().and_then(|r| r.get(id).cloned());
        let mut missing: Vec<&str> = marks
            .iter()
            .filter_map(|m| match m {
                Mark::Batch { take_id, .. } if known(take_id).is_none() => Some(take_id.as_str()),
                _ => None,
            })
            .collect();
        missing.sort_unstable();
        missing.dedup();
        for chunk in missing.chunks(100) {
            let keys: Vec<Item> = chunk.iter().map(|id| take_record_key(sale_id, id)).collect();
            let request =
                KeysAndAttributes::builder().set_keys(Some(keys)).consistent_read(true).build().expect("keys are set");
            for item in self.table.batch_get(request).await? {
                let pk = text(&item, "pk").cloned().unwrap_or_default();
                let take_id = pk.rsplit('#').next().unwrap_or_default().to_owned();
                let takes = item
                    .get("takes")
                    .and_then(|v| v.as_l().ok())
                    .map(|l| l.iter().filter_map(|v| v.as_s().ok().and_then(|m| Take::from_mark(m))).collect())
                    .unwrap_or_default();
                self.remember(&take_id, takes);
            }
        }
        let mut takes = Vec::new();
        for mark in marks {
            match mark {
                Mark::One(take) => takes.push(take),
                Mark::Batch { take_id, count } => match known(&take_id) {
                    Some(record) => takes.extend_from_slice(commerce_domain::flash_sale::named_takes(&record, count)),
                    None => {
                        tracing::error!(sale_id, take_id, "a shard names a take record that does not exist");
                        return Err(DomainError::Transient("a take record could not be read".into()));
                    }
                },
            }
        }
        Ok(takes)
    }

    /// The second write of an admission: the waiting ticket wins `take`'s unit with a hold (unless that take
    /// already went back). `None` when it did; otherwise the ticket item as it was.
    async fn win_ticket(
        &self,
        sale: &FlashSale,
        take: &Take,
        shard: u32,
        hold_expires_at: DateTime<Utc>,
    ) -> Result<Option<Item>> {
        let result = self
            .table
            .update_item()
            .set_key(Some(ticket_key(&take.ticket_id)))
            .update_expression(
                "SET #status = :won, hold_expires_at = :exp, hold_expires_ms = :exp_ms, #shard = :shard, taken_by = :msg, gsi1pk = :hpk, gsi1sk = :hsk",
            )
            .condition_expression(
                "#status = :waiting AND (attribute_not_exists(given_back) OR NOT contains(given_back, :msg))",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#shard", "shard")
            .expression_attribute_values(":won", to_av(&TicketStatus::Won)?)
            .expression_attribute_values(":waiting", to_av(&TicketStatus::Waiting)?)
            .expression_attribute_values(":exp", s(hold_expires_at.to_rfc3339()))
            .expression_attribute_values(":exp_ms", n(millis(hold_expires_at)))
            .expression_attribute_values(":shard", n(shard))
            .expression_attribute_values(":msg", s(&take.message_key))
            .expression_attribute_values(":hpk", s(holds_pk(sale, &take.ticket_id)))
            .expression_attribute_values(":hsk", s(format!("{}#{}", millis(hold_expires_at), take.ticket_id)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .boxed()
            .await;
        Ok(updated_or_current(result)?.err().map(Option::unwrap_or_default))
    }

    /// Gives `take`'s unit back, once: the ticket records the message in `given_back` (on condition that it
    /// neither won nor gave back this take), the shard refills and the gate reopens (`returns + 1`, so a close
    /// racing this fails), in one transaction. `false` when the ticket's condition failed (settled meanwhile).
    async fn give_back(&self, sale: &FlashSale, shard: u32, take: &Take) -> Result<bool> {
        let record = self
            .table
            .update(ticket_key(&take.ticket_id), "ADD given_back :msgs")
            .condition_expression(
                "(attribute_not_exists(taken_by) OR taken_by <> :msg) AND (attribute_not_exists(given_back) OR NOT contains(given_back, :msg))",
            )
            .expression_attribute_values(":msgs", AttributeValue::Ss(vec![take.message_key.clone()]))
            .expression_attribute_values(":msg", s(&take.message_key))
            .build()
            .expect("table, key and expression are set");
        let items = [record, self.refill(&sale.sale_id, shard)]
            .into_iter()
            .chain(self.reopen_gate(&sale.sale_id, sale.gate_copy_count()))
            .map(|u| TransactWriteItem::builder().update(u).build())
            .collect();
        match self.transact(items).await? {
            None => {
                tracing::info!(sale_id = %sale.sale_id, shard, ticket_id = %take.ticket_id, "unit given back to the sale");
                Ok(true)
            }
            Some(cancelled) if cancelled.failed(1) => Err(sale_reconciled()),
            Some(_) => Ok(false),
        }
    }

    /// The shard's update when a unit comes back: `units + 1`, unless the sale was reconciled.
    fn refill(&self, sale_id: &str, shard: u32) -> Update {
        self.gate(sale_id)
            .refill(shard, 1, "")
            .condition_expression("attribute_exists(units) AND attribute_not_exists(closed)")
            .build()
            .expect("table, key and expression are set")
    }

    /// The updates of the gate and each of its `copies - 1` copies when a unit comes back: reopened,
    /// `returns + 1`. They go into the same transaction, so every copy always equals the gate.
    fn reopen_gate(&self, sale_id: &str, copies: u32) -> Vec<Update> {
        (0..copies.max(1))
            .map(|copy| {
                self.table
                    .update(gate_copy_key(sale_id, copy), "ADD #returns :one SET sold_out = :false")
                    .expression_attribute_names("#returns", "returns")
                    .expression_attribute_values(":one", n(1))
                    .expression_attribute_values(":false", AttributeValue::Bool(false))
                    .build()
                    .expect("table, key and expression are set")
            })
            .collect()
    }

    /// How many items hold the gate of `sale_id` (read once per instance and sale: it never changes).
    async fn gate_copies_of(&self, sale_id: &str) -> Result<u32> {
        if let Some(copies) = self.copies.lock().ok().and_then(|m| m.get(sale_id).copied()) {
            return Ok(copies);
        }
        let copies = self.get_sale(sale_id).await?.map_or(1, |sale| sale.gate_copy_count());
        if let Ok(mut m) = self.copies.lock() {
            m.insert(sale_id.to_owned(), copies);
        }
        Ok(copies)
    }

    /// Every stored item of one sale, read with scans: for tests, the benchmark and audits, never a request
    /// path (tickets of a sale are spread over many partitions on purpose).
    pub async fn snapshot(&self, sale_id: &str) -> Result<Option<SaleSnapshot>> {
        let Some(sale) = self.get_sale(sale_id).await? else {
            return Ok(None);
        };
        let gate = self.get_gate(sale_id, true).await?;
        let shards = self.shard_units(&sale).await?;
        let mut tickets = Vec::new();
        let mut customers = Vec::new();
        let customer_prefix = format!("SALE#{sale_id}#CUST#");
        let scan = self
            .table
            .scan()
            .consistent_read(true)
            .filter_expression("sale_id = :sale OR begins_with(pk, :cust)")
            .expression_attribute_values(":sale", s(sale_id))
            .expression_attribute_values(":cust", s(&customer_prefix));
        for item in self.table.scan_all(scan).await? {
            let pk = text(&item, "pk").cloned().unwrap_or_default();
            if let Some(customer) = pk.strip_prefix(&customer_prefix) {
                customers.push((customer.to_owned(), num(&item, "count")));
            } else if pk.starts_with("TICKET#") {
                tickets.push(from_item(item)?);
            }
        }
        Ok(Some(SaleSnapshot { sale, gate, shards, tickets, customers }))
    }

    /// The admission counters of every worker instance of a sale, summed.
    pub async fn admission_totals(&self, sale_id: &str) -> Result<AdmissionStats> {
        let mut items = Vec::new();
        for partition in 0..METRIC_PARTITIONS {
            let query = self
                .table
                .query()
                .consistent_read(true)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(metric_pk(sale_id, partition)));
            items.extend(self.table.query_all(query).await?);
        }
        let mut total = AdmissionStats::default();
        for item in items {
            let get = |name: &str| u64::try_from(num(&item, name)).unwrap_or(0);
            total.admitted += get("admitted");
            total.rejected += get("rejected");
            total.fallbacks += get("fallbacks");
            total.condition_failures += get("condition_failures");
            total.rebalances += get("rebalances");
            total.write_units += get("write_units");
            total.read_units += get("read_units");
        }
        Ok(total)
    }
}

impl FlashSaleCreator for DynamoFlashSales {
    async fn available_by_warehouse(&self, sku: &str) -> Result<Vec<(String, i64)>> {
        stock::available_by_warehouse(&self.inventory, sku).await
    }

    async fn create_sale(&self, sale: &FlashSale) -> Result<()> {
        let mut meta = to_item(sale)?;
        meta.extend(meta_key(&sale.sale_id));
        meta.insert("gsi1pk".into(), s("LIVE"));
        meta.insert("gsi1sk".into(), s(format!("{}#{}", sale.ends_at.to_rfc3339(), sale.sale_id)));
        meta.insert("gsi2pk".into(), s(format!("SKU#{}", sale.sku)));
        meta.insert("gsi2sk".into(), s(format!("{}#{}", sale.starts_at.to_rfc3339(), sale.sale_id)));
        let put = |item: Item| {
            TransactWriteItem::builder()
                .put(
                    self.table
                        .put(item)
                        .condition_expression("attribute_not_exists(pk)")
                        .build()
                        .expect("table and item are set"),
                )
                .build()
        };
        let mut items =
            vec![stock::allocate(&self.inventory, &sale.sku, &sale.warehouse_id, i64::from(sale.units)), put(meta)];
        for copy in 0..sale.gate_copy_count() {
            let mut gate = gate_copy_key(&sale.sale_id, copy);
            gate.insert("sold_out".into(), AttributeValue::Bool(false));
            gate.insert("returns".into(), n(0));
            items.push(put(gate));
        }
        for (k, units) in sale.shard_units().into_iter().enumerate() {
            let mut shard = self.gate(&sale.sale_id).seed(u32::try_from(k).unwrap_or(0), i64::from(units));
            shard.insert("sale_id".into(), s(&sale.sale_id));
            items.push(put(shard));
        }
        match self.transact(items).await? {
            None => Ok(()),
            Some(cancelled) if cancelled.failed(0) => Err(DomainError::OutOfStock { sku: sale.sku.clone() }),
            Some(_) => Err(DomainError::conflict(ErrorCode::SaleExists, "the sale already exists")),
        }
    }
}

impl FlashSaleReader for DynamoFlashSales {
    async fn get_sale(&self, sale_id: &str) -> Result<Option<FlashSale>> {
        self.table.read(meta_key(sale_id), false).await?.map(from_item).transpose()
    }

    /// Reads this instance's gate copy; a sale with fewer copies (created before, or with another setting) has
    /// none there, and its gate is read.
    async fn get_gate(&self, sale_id: &str, consistent: bool) -> Result<Gate> {
        let gate = |item: Item| Gate {
            sold_out: item.get("sold_out").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false),
            returns: u64::try_from(num(&item, "returns")).unwrap_or(0),
        };
        if self.read_copy > 0 {
            if let Some(item) = self.table.read(gate_copy_key(sale_id, self.read_copy), consistent).await? {
                return Ok(gate(item));
            }
        }
        Ok(self.table.read(gate_key(sale_id), consistent).await?.map(gate).unwrap_or_default())
    }
}

impl FlashSaleListing for DynamoFlashSales {
    async fn sales_for_sku(&self, sku: &str) -> Result<Vec<FlashSale>> {
        let out = self
            .table
            .query()
            .index_name("gsi2")
            .key_condition_expression("gsi2pk = :pk")
            .expression_attribute_values(":pk", s(format!("SKU#{sku}")))
            .scan_index_forward(false)
            .limit(20)
            .send()
            .boxed()
            .await
            .map_err(sdk_error)?;
        out.items.unwrap_or_default().into_iter().map(from_item).collect()
    }
}

impl FlashEntryWriter for DynamoFlashSales {
    async fn next_sequence(&self, sale_id: &str, k: u32) -> Result<u64> {
        let out = self
            .table
            .update_item()
            .set_key(Some(seq_key(sale_id, k)))
            .update_expression("ADD n :one")
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .boxed()
            .await
            .map_err(sdk_error)?;
        Ok(out.attributes.map(|a| u64::try_from(num(&a, "n")).unwrap_or(0)).unwrap_or(0))
    }

    async fn create_ticket(&self, ticket: &Ticket, limit: u32, min_interval: Duration) -> Result<EntryOutcome> {
        let mut item = to_item(ticket)?;
        item.extend(ticket_key(&ticket.ticket_id));
        let now_ms = millis(ticket.created_at);
        let put = self
            .table
            .put(item)
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .expect("table and item are set");
        let counter = self
            .table
            .update(customer_key(&ticket.sale_id, &ticket.customer_id), "ADD #count :one SET last_ms = :now")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":limit", n(limit))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let counter = if min_interval > Duration::zero() {
            counter
                .condition_expression(
                    "(attribute_not_exists(#count) OR #count < :limit) AND (attribute_not_exists(last_ms) OR last_ms <= :since)",
                )
                .expression_attribute_values(":since", n(now_ms - min_interval.num_milliseconds()))
        } else {
            counter.condition_expression("attribute_not_exists(#count) OR #count < :limit")
        }
        .build()
        .expect("table, key and expression are set");
        let items =
            vec![TransactWriteItem::builder().put(put).build(), TransactWriteItem::builder().update(counter).build()];
        match self.transact(items).await? {
            None => Ok(EntryOutcome::Created),
            Some(cancelled) => {
                if cancelled.failed(0) {
                    let item = match cancelled.item(0) {
                        Some(item) => item.clone(),
                        None => self
                            .table
                            .get(ticket_key(&ticket.ticket_id))
                            .await?
                            .ok_or_else(|| DomainError::Transient("ticket vanished".into()))?,
                    };
                    return Ok(EntryOutcome::Existing(from_item(item)?));
                }
                let counter = cancelled.item(1).cloned().unwrap_or_default();
                if num(&counter, "count") >= i64::from(limit) {
                    Ok(EntryOutcome::LimitReached)
                } else {
                    Ok(EntryOutcome::TooSoon)
                }
            }
        }
    }
}

/// The waiting room: a FIFO queue, one message group per lane, the ticket id as deduplication id.
#[derive(Debug, Clone)]
pub struct SqsWaitingRoom {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsWaitingRoom {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self { client, queue_url: queue_url.into() }
    }
}

impl WaitingRoom for SqsWaitingRoom {
    async fn enqueue(&self, ticket: &Ticket, lane: u32) -> Result<()> {
        let body = serde_json::to_string(&EntryMessage::from(ticket)).map_err(DomainError::unexpected)?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .message_group_id(commerce_domain::flash_sale::message_group(&ticket.sale_id, lane))
            .message_deduplication_id(&ticket.ticket_id)
            .send()
            .boxed()
            .await
            .map_err(|err| DomainError::Transient(aws_sdk_sqs::error::DisplayErrorContext(&err).to_string()))?;
        Ok(())
    }
}

impl FlashTicketStore for DynamoFlashSales {
    async fn get_ticket(&self, ticket_id: &str) -> Result<Option<Ticket>> {
        self.table.get_as(ticket_key(ticket_id)).await
    }

    async fn mark_sold_out(&self, ticket: &Ticket) -> Result<bool> {
        let result = self
            .table
            .update_item()
            .set_key(Some(ticket_key(&ticket.ticket_id)))
            .update_expression("SET #status = :sold_out")
            .condition_expression("#status = :waiting")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":sold_out", to_av(&TicketStatus::SoldOut)?)
            .expression_attribute_values(":waiting", to_av(&TicketStatus::Waiting)?)
            .send()
            .boxed()
            .await;
        if !applied(result)? {
            return Ok(false);
        }
        // A crash before this write leaves the counter one high: the safe direction for a limit (and a counter
        // already at zero is left as it is).
        let result = self
            .table
            .update_item()
            .set_key(Some(customer_key(&ticket.sale_id, &ticket.customer_id)))
            .update_expression("ADD #count :minus")
            .condition_expression("#count > :zero")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":minus", n(-1))
            .expression_attribute_values(":zero", n(0))
            .send()
            .boxed()
            .await;
        applied(result)?;
        Ok(true)
    }

    async fn return_unit(&self, ticket: &Ticket, to: TicketStatus, now: DateTime<Utc>) -> Result<bool> {
        let Some(shard) = ticket.shard else {
            return Err(DomainError::unexpected(std::io::Error::other("a held ticket without a shard")));
        };
        let ticket_update = match to {
            TicketStatus::Expired => self
                .table
                .update(ticket_key(&ticket.ticket_id), "SET #status = :to REMOVE gsi1pk, gsi1sk")
                .condition_expression("#status = :won AND hold_expires_ms <= :now")
                .expression_attribute_values(":won", to_av(&TicketStatus::Won)?)
                .expression_attribute_values(":now", n(millis(now))),
            _ => self
                .table
                .update(ticket_key(&ticket.ticket_id), "SET #status = :to REMOVE gsi1pk, gsi1sk")
                .condition_expression("#status = :purchased AND order_id = :order")
                .expression_attribute_values(":purchased", to_av(&TicketStatus::Purchased)?)
                .expression_attribute_values(":order", s(ticket.order_id.clone().unwrap_or_default())),
        }
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":to", to_av(&to)?)
        .build()
        .expect("table, key and expression are set");
        let shard_update = self.refill(&ticket.sale_id, shard);
        let gate_updates = self.reopen_gate(&ticket.sale_id, self.gate_copies_of(&ticket.sale_id).await?);
        let counter_update = self
            .table
            .update(customer_key(&ticket.sale_id, &ticket.customer_id), "ADD #count :minus")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":minus", n(-1))
            .build()
            .expect("table, key and expression are set");
        let items = [ticket_update, shard_update, counter_update]
            .into_iter()
            .chain(gate_updates)
            .map(|u| TransactWriteItem::builder().update(u).build())
            .collect();
        match self.transact(items).await? {
            None => Ok(true),
            Some(cancelled) if cancelled.failed(1) => Err(sale_reconciled()),
            Some(_) => Ok(false),
        }
    }
}

impl FlashAdmissions for DynamoFlashSales {
    async fn shard_units(&self, sale: &FlashSale) -> Result<Vec<i64>> {
        let mut units = vec![0i64; sale.shards as usize];
        for (k, item) in self.shard_items(sale).await? {
            if let Some(slot) = units.get_mut(k as usize) {
                *slot = num(&item, "units");
            }
        }
        Ok(units)
    }

    async fn shard_states(&self, sale: &FlashSale) -> Result<Vec<ShardState>> {
        let mut states = vec![ShardState::default(); sale.shards as usize];
        for (k, item) in self.shard_items(sale).await? {
            if let Some(state) = states.get_mut(k as usize) {
                let takes = self.resolve(&sale.sale_id, marks_in(&item)).await?;
                *state = ShardState { units: num(&item, "units"), takes };
            }
        }
        Ok(states)
    }

    async fn take_units(&self, sale: &FlashSale, shard: u32, takes: &[Take]) -> Result<TakeOutcome> {
        let Some(first) = takes.first() else {
            return Ok(TakeOutcome::Taken { count: 0, previous: Vec::new() });
        };
        let lane = sale.lane_of(&first.ticket_id);
        let take_id = match takes.len() {
            1 => None,
            _ => Some(self.write_take_record(sale, shard, takes).await?),
        };
        let mut want = takes.len();
        loop {
            let mark = match &take_id {
                Some(take_id) => Mark::Batch { take_id: take_id.clone(), count: want },
                None => Mark::One(first.clone()),
            };
            let taken = self
                .table
                .update_item()
                .set_key(Some(self.gate(&sale.sale_id).key(shard)))
                .update_expression("ADD units :minus SET #prev = if_not_exists(#lane, :none), #lane = :take")
                .condition_expression("units >= :want")
                .expression_attribute_names("#lane", lane_mark(lane))
                .expression_attribute_names("#prev", prev_mark(lane))
                .expression_attribute_values(":minus", n(-i64::try_from(want).unwrap_or(1)))
                .expression_attribute_values(":none", s(""))
                .expression_attribute_values(":want", n(want))
                .expression_attribute_values(":take", s(mark.encode()))
                .return_values(ReturnValue::UpdatedOld)
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .send()
                .boxed()
                .await;
            match updated_or_current(taken)? {
                Ok(out) => {
                    let old = out.attributes.unwrap_or_default();
                    let marks = [lane_mark(lane), prev_mark(lane)]
                        .iter()
                        .filter_map(|name| text(&old, name))
                        .filter_map(|mark| Mark::parse(mark))
                        .collect();
                    let previous = self.resolve(&sale.sale_id, marks).await?;
                    return Ok(TakeOutcome::Taken { count: want, previous });
                }
                Err(current) => {
                    let left = current.map(|item| num(&item, "units"));
                    match left.and_then(|units| usize::try_from(units).ok()) {
                        // Fewer than the batch asked for: the first entries take what is left.
                        Some(units) if units > 0 && units < want => want = units,
                        _ => return Ok(TakeOutcome::ShardEmpty { remaining: left }),
                    }
                }
            }
        }
    }

    async fn settle(
        &self,
        sale: &FlashSale,
        shard: u32,
        take: &Take,
        hold_expires_at: Option<DateTime<Utc>>,
    ) -> Result<Settlement> {
        for _ in 0..3 {
            let ticket = match hold_expires_at {
                Some(expires) => match self.win_ticket(sale, take, shard, expires).await? {
                    None => return Ok(Settlement::Won),
                    Some(item) => item,
                },
                None => self.table.get(ticket_key(&take.ticket_id)).await?.unwrap_or_default(),
            };
            if let Some(settled) = settled_in(&ticket, take) {
                return Ok(settled);
            }
            if self.give_back(sale, shard, take).await? {
                return Ok(Settlement::GivenBack);
            }
        }
        Err(DomainError::Transient("the take's ticket kept changing".into()))
    }

    async fn unsettled(&self, takes: &[(u32, Take)]) -> Result<Vec<(u32, Take)>> {
        let mut ids: Vec<&str> = takes.iter().map(|(_, t)| t.ticket_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut tickets: HashMap<String, Item> = HashMap::new();
        for chunk in ids.chunks(100) {
            let keys: Vec<Item> = chunk.iter().map(|id| ticket_key(id)).collect();
            let request = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .projection_expression("pk, taken_by, given_back")
                .build()
                .expect("keys are set");
            for item in self.table.batch_get(request).await? {
                let pk = text(&item, "pk").cloned().unwrap_or_default();
                tickets.insert(pk.trim_start_matches("TICKET#").to_owned(), item);
            }
        }
        Ok(takes
            .iter()
            .filter(|(_, take)| tickets.get(&take.ticket_id).and_then(|item| settled_in(item, take)).is_none())
            .cloned()
            .collect())
    }

    /// Closes the gate and every copy of it, on condition that `returns` is still what the worker read (one
    /// transaction when there are copies: a unit given back meanwhile cancels it).
    async fn close_gate(&self, sale: &FlashSale, returns: u64) -> Result<bool> {
        let copies = sale.gate_copy_count();
        if copies == 1 {
            let result = self
                .table
                .update_item()
                .set_key(Some(gate_key(&sale.sale_id)))
                .update_expression("SET sold_out = :true")
                .condition_expression("#returns = :returns")
                .expression_attribute_names("#returns", "returns")
                .expression_attribute_values(":true", AttributeValue::Bool(true))
                .expression_attribute_values(":returns", n(returns))
                .send()
                .boxed()
                .await;
            return applied(result);
        }
        let items = (0..copies)
            .map(|copy| {
                let update = self
                    .table
                    .update(gate_copy_key(&sale.sale_id, copy), "SET sold_out = :true")
                    .condition_expression("#returns = :returns")
                    .expression_attribute_names("#returns", "returns")
                    .expression_attribute_values(":true", AttributeValue::Bool(true))
                    .expression_attribute_values(":returns", n(returns))
                    .build()
                    .expect("table, key and expression are set");
                TransactWriteItem::builder().update(update).build()
            })
            .collect();
        Ok(self.transact(items).await?.is_none())
    }

    async fn move_units(&self, sale_id: &str, mv: Move) -> Result<bool> {
        let (Ok(from), Ok(to)) = (u32::try_from(mv.from), u32::try_from(mv.to)) else {
            return Ok(false);
        };
        let gate = self.gate(sale_id);
        let take = gate
            .take(from, mv.units, "")
            .condition_expression("units >= :take AND attribute_not_exists(closed)")
            .build()
            .expect("table, key and expression are set");
        let give = gate
            .refill(to, mv.units, "")
            .condition_expression("attribute_exists(units) AND attribute_not_exists(closed)")
            .build()
            .expect("table, key and expression are set");
        let items =
            vec![TransactWriteItem::builder().update(take).build(), TransactWriteItem::builder().update(give).build()];
        Ok(self.transact(items).await?.is_none())
    }

    async fn record(&self, sale_id: &str, instance: &str, stats: &AdmissionStats) -> Result<()> {
        self.table
            .update_item()
            .set_key(Some(key(metric_pk(sale_id, metric_partition(instance)), format!("METRIC#{instance}"))))
            .update_expression(
                "ADD admitted :a, rejected :r, fallbacks :f, condition_failures :c, rebalances :b, write_units :w, read_units :u",
            )
            .expression_attribute_values(":a", n(stats.admitted))
            .expression_attribute_values(":r", n(stats.rejected))
            .expression_attribute_values(":f", n(stats.fallbacks))
            .expression_attribute_values(":c", n(stats.condition_failures))
            .expression_attribute_values(":b", n(stats.rebalances))
            .expression_attribute_values(":w", n(stats.write_units + 1))
            .expression_attribute_values(":u", n(stats.read_units))
            .send()
            .boxed()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }
}

impl FlashHolds for DynamoFlashSales {
    async fn consume(&self, ticket_id: &str, customer_id: &str, order_id: &str, now: DateTime<Utc>) -> Result<bool> {
        let result = self
            .table
            .update_item()
            .set_key(Some(ticket_key(ticket_id)))
            .update_expression("SET #status = :purchased, order_id = :order REMOVE gsi1pk, gsi1sk")
            .condition_expression("#status = :won AND customer_id = :customer AND hold_expires_ms > :now")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":purchased", to_av(&TicketStatus::Purchased)?)
            .expression_attribute_values(":won", to_av(&TicketStatus::Won)?)
            .expression_attribute_values(":order", s(order_id))
            .expression_attribute_values(":customer", s(customer_id))
            .expression_attribute_values(":now", n(millis(now)))
            .send()
            .boxed()
            .await;
        applied(result)
    }
}

impl FlashReconciler for DynamoFlashSales {
    async fn live_sales(&self) -> Result<Vec<FlashSale>> {
        let query = self
            .table
            .query()
            .index_name("gsi1")
            .key_condition_expression("gsi1pk = :live")
            .expression_attribute_values(":live", s("LIVE"));
        self.table.query_all(query).await?.into_iter().map(from_item).collect()
    }

    async fn expired_holds(&self, sale: &FlashSale, now: DateTime<Utc>, limit: usize) -> Result<Vec<Ticket>> {
        let mut found = Vec::new();
        for lane in 0..sale.lane_count() {
            if found.len() >= limit {
                break;
            }
            let out = self
                .table
                .query()
                .index_name("gsi1")
                .key_condition_expression("gsi1pk = :pk AND gsi1sk < :now")
                .expression_attribute_values(":pk", s(holds_partition(&sale.sale_id, lane)))
                .expression_attribute_values(":now", s(format!("{}#", millis(now))))
                .limit(i32::try_from(limit - found.len()).unwrap_or(100))
                .send()
                .boxed()
                .await
                .map_err(sdk_error)?;
            for item in out.items.unwrap_or_default() {
                found.push(from_item(item)?);
            }
        }
        Ok(found)
    }

    async fn has_holds(&self, sale: &FlashSale) -> Result<bool> {
        for lane in 0..sale.lane_count() {
            let out = self
                .table
                .query()
                .index_name("gsi1")
                .key_condition_expression("gsi1pk = :pk")
                .expression_attribute_values(":pk", s(holds_partition(&sale.sale_id, lane)))
                .limit(1)
                .send()
                .boxed()
                .await
                .map_err(sdk_error)?;
            if out.count > 0 {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn reconcile(&self, sale: &FlashSale, shards: &[i64], now: DateTime<Utc>) -> Result<bool> {
        let returned: i64 = shards.iter().sum();
        let sold = i64::from(sale.units) - returned;
        let reconciliation = commerce_domain::flash_sale::Reconciliation {
            returned: u32::try_from(returned).unwrap_or(0),
            sold: u32::try_from(sold).unwrap_or(0),
            at: now,
        };
        let record = to_av(&reconciliation)?;
        let mut items = vec![
            stock::reconcile(&self.inventory, &sale.sku, &sale.warehouse_id, i64::from(sale.units), returned),
            TransactWriteItem::builder()
                .update(
                    self.table
                        .update(meta_key(&sale.sale_id), "SET reconciliation = :r REMOVE gsi1pk, gsi1sk")
                        .condition_expression("attribute_exists(pk) AND attribute_not_exists(reconciliation)")
                        .expression_attribute_values(":r", record)
                        .build()
                        .expect("table, key and expression are set"),
                )
                .build(),
        ];
        for (k, units) in shards.iter().enumerate() {
            let k = u32::try_from(k).unwrap_or(0);
            items.push(
                TransactWriteItem::builder()
                    .update(
                        self.table
                            .update(self.gate(&sale.sale_id).key(k), "SET units = :zero, closed = :true")
                            .condition_expression("units = :read AND attribute_not_exists(closed)")
                            .expression_attribute_values(":zero", n(0))
                            .expression_attribute_values(":true", AttributeValue::Bool(true))
                            .expression_attribute_values(":read", n(units))
                            .build()
                            .expect("table, key and expression are set"),
                    )
                    .build(),
            );
        }
        Ok(self.transact(items).await?.is_none())
    }
}
