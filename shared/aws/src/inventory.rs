//! The inventory table: stock items, warehouses and reservations (layout in docs/DATA_MODEL.md).
//!
//! - stock `SKU#<sku> / WH#<warehouse>`: counters `on_hand reserved safety sold received adjustments` and the
//!   derived `free = on_hand - reserved`, `avail = free - safety`. Every change is one conditional update:
//!   reserve `avail >= :q`, release and commit `reserved >= :q`, damage `free >= :-delta`; an absolute set is a
//!   compare-and-swap on the counters it read.
//! - warehouse `WAREHOUSES / WH#<warehouse>`.
//! - reservation `RES#<id> / RES`: status, lines, allocations, expiry; while held it is in the sparse index
//!   `gsi1` (`gsi1pk = RES_HELD`, `gsi1sk` = expiry) that the sweeper queries. Reserving, releasing and
//!   committing are transactions of the reservation record and its stock items, so a reservation's stock
//!   effect happens exactly once.

use crate::dynamo::{
    backoff, built, conditional, from_item, key, n, names, s, sdk_error, sortable, stock_key, text, to_av, to_item,
    transact_retrying, Cancellation, Item, Table,
};
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use commerce_app::ports::{
    FinishOutcome, ReservationReplacer, ReservationStore, StockReader, StockWriter, WarehouseReader, WarehouseWriter,
};
use commerce_domain::error::ErrorCode;
use commerce_domain::error::{DomainError, Result};
use commerce_domain::inventory::reservation::{net_change, ReleaseReason, ReplaceOutcome, ReserveOutcome};
use commerce_domain::inventory::{
    ledger::below_reserved, AdjustOutcome, AdjustmentKey, Reservation, ReservationStatus, SetStock, StockAdjustment,
    StockLevel, StockView, Warehouse, ADJUSTMENT_KEY_TTL_HOURS,
};
use futures::FutureExt;
use std::collections::HashMap;

pub use crate::dynamo::{item_size, transactional_write_units};

const WAREHOUSES_PK: &str = "WAREHOUSES";
const RESERVATION_SK: &str = "RES";
const HELD_PARTITION: &str = "RES_HELD";
/// Released reservations are deleted by TTL after this many days (held and committed ones are kept).
const RELEASED_RETENTION_DAYS: i64 = 30;
const SET_ATTEMPTS: u32 = 20;
const SET_UPDATE: &str = "SET #on_hand = :n, #free = :free, #avail = :avail, #safety = :safety, \
                          #adjustments = #adjustments + :d, #updated_at = :now";
const SET_CONDITION: &str = "#on_hand = :old_on_hand AND #reserved = :old_reserved AND #safety = :old_safety";
const ADJUST_UPDATE: &str = "SET #entity = :entity, #sku = :sku, #warehouse_id = :wh, #updated_at = :now, \
                             #safety = if_not_exists(#safety, :zero), #reserved = if_not_exists(#reserved, :zero), \
                             #sold = if_not_exists(#sold, :zero) \
                             ADD #on_hand :d, #free :d, #avail :d, #received :r, #adjustments :a";
const ADJUST_CONDITION: &str = "#free >= :neg";
/// An increase may not take on hand past `MAX_UNITS`: `:ceiling` is `MAX_UNITS - delta`.
const RECEIVE_CONDITION: &str = "attribute_not_exists(#on_hand) OR #on_hand <= :ceiling";
/// DynamoDB's limit of actions in one TransactWriteItems.
const MAX_TRANSACTION_ACTIONS: usize = 100;

/// Reservation moves, as a stock item's counters see them.
const HOLD: (&str, &str) = ("SET #avail = #avail - :q, #free = #free - :q, #reserved = #reserved + :q", "#avail >= :q");
const RELEASE: (&str, &str) =
    ("SET #avail = #avail + :q, #free = #free + :q, #reserved = #reserved - :q", "#reserved >= :q");
const COMMIT: (&str, &str) =
    ("SET #on_hand = #on_hand - :q, #reserved = #reserved - :q, #sold = #sold + :q", "#reserved >= :q");
/// Sold units coming back (a return), and flash sale units coming back.
const RETURN_SOLD: (&str, &str) = (
    "SET #on_hand = #on_hand + :q, #free = #free + :q, #avail = #avail + :q, #sold = #sold - :q ADD #returned :q",
    "#sold >= :q",
);
const RETURN_FLASH_SOLD: (&str, &str) = (
    "SET #on_hand = #on_hand + :q, #free = #free + :q, #avail = #avail + :q, #sold = #sold - :q, \
     #flash_sold = #flash_sold - :q",
    "#sold >= :q AND #flash_sold >= :q",
);
/// A transaction that kept conflicting with others.
const BUSY: &str = "stock items are busy; retry";
/// A stock change that kept conflicting with others.
const CHANGING: &str = "stock is changing too quickly; retry";

fn reservation_key(reservation_id: &str) -> Item {
    key(format!("RES#{reservation_id}"), RESERVATION_SK.to_owned())
}

/// A stock item's `reserved` below a held reservation's units: the ledger is broken, so it is logged with the
/// transaction's cancellation codes and unexpected.
fn reserved_below_held(reservation_id: &str, cancelled: &Cancellation) -> DomainError {
    let codes = cancelled.codes();
    tracing::error!(reservation_id = %reservation_id, ?codes, "stock item holds fewer units than its reservation");
    DomainError::unexpected(std::io::Error::other("reserved stock below a held reservation"))
}

/// The inventory table, implementing every inventory port. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DynamoInventory {
    table: Table,
}

impl DynamoInventory {
    /// Writes warehouses and stock items as they are, in batches (seeding an empty table: the demo stack,
    /// benchmarks). Not for a live table: it bypasses the conditional writes that keep the counters whole.
    pub async fn load(&self, warehouses: &[Warehouse], levels: &[StockLevel]) -> Result<()> {
        let mut items = Vec::new();
        for warehouse in warehouses {
            let mut item = to_item(&warehouse)?;
            item.extend(key(WAREHOUSES_PK.to_owned(), format!("WH#{}", warehouse.warehouse_id)));
            item.insert("entity".into(), s("warehouse"));
            items.push(item);
        }
        for level in levels {
            let mut item = to_item(level)?;
            item.extend(stock_key(&level.sku, &level.warehouse_id));
            item.insert("entity".into(), s("stock"));
            items.push(item);
        }
        self.table.batch_put(&items).await
    }

    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { table: Table::new(client, table) }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        self.table.name()
    }

    /// Every stock item and every reservation, read consistently: the input of the invariant checker. Meant
    /// for tests and audits on a quiet table; it scans the whole table.
    pub async fn snapshot(&self) -> Result<(Vec<StockLevel>, Vec<Reservation>)> {
        let mut stock = Vec::new();
        let mut reservations = Vec::new();
        for item in self.table.scan_all(self.table.scan().consistent_read(true)).await? {
            let pk = text(&item, "pk").cloned().unwrap_or_default();
            if pk.starts_with("SKU#") {
                stock.push(from_item(item)?);
            } else if pk.starts_with("RES#") {
                reservations.push(from_item(item)?);
            }
        }
        Ok((stock, reservations))
    }

    async fn get_level(&self, sku: &str, warehouse_id: &str) -> Result<Option<StockLevel>> {
        self.table.get_as(stock_key(sku, warehouse_id)).await
    }

    async fn levels_of(&self, sku: &str) -> Result<Vec<StockLevel>> {
        let query = self
            .table
            .query()
            .consistent_read(true)
            .key_condition_expression("pk = :pk AND begins_with(sk, :wh)")
            .expression_attribute_values(":pk", s(format!("SKU#{sku}")))
            .expression_attribute_values(":wh", s("WH#"));
        self.table.query_all(query).await?.into_iter().map(from_item).collect()
    }

    fn reservation_item(&self, reservation: &Reservation) -> Result<Item> {
        let mut item = to_item(reservation)?;
        item.extend(reservation_key(&reservation.reservation_id));
        item.insert("entity".into(), s("reservation"));
        item.insert("gsi1pk".into(), s(HELD_PARTITION));
        item.insert("gsi1sk".into(), s(sortable(reservation.expires_at)));
        Ok(item)
    }

    /// A transaction's put of a new reservation record (conditional on its absence).
    fn create_reservation_action(&self, reservation: &Reservation) -> Result<TransactWriteItem> {
        let put = built(
            self.table
                .put(self.reservation_item(reservation)?)
                .condition_expression("attribute_not_exists(pk)")
                .build(),
        )?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// The stored reservation a create found in its place.
    async fn existing_reservation(&self, reservation_id: &str) -> Result<Reservation> {
        self.table
            .get_as(reservation_key(reservation_id))
            .await?
            .ok_or_else(|| DomainError::Transient("reservation record vanished during a retry".into()))
    }

    /// A transaction's action moving `quantity` units of a stock item by `(expression, condition)`, one of the
    /// moves above ([`HOLD`], [`RELEASE`], [`COMMIT`], [`RETURN_SOLD`], [`RETURN_FLASH_SOLD`]).
    fn stock_action(
        &self,
        sku: &str,
        warehouse_id: &str,
        (expression, condition): (&str, &str),
        quantity: u32,
    ) -> Result<TransactWriteItem> {
        let update = built(
            self.table
                .update(stock_key(sku, warehouse_id), expression)
                .condition_expression(condition)
                .set_expression_attribute_names(Some(names(&[expression, condition])))
                .expression_attribute_values(":q", n(quantity))
                .build(),
        )?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// The stock move that finishes a held reservation's allocation as `to` (committed, or released).
    fn finish_stock_action(
        &self,
        to: ReservationStatus,
        sku: &str,
        warehouse_id: &str,
        quantity: u32,
    ) -> Result<TransactWriteItem> {
        let change = if to == ReservationStatus::Committed { COMMIT } else { RELEASE };
        self.stock_action(sku, warehouse_id, change, quantity)
    }

    /// The update that moves a held reservation to `to` (conditional on `held`) and takes it out of `gsi1`.
    fn finish_update(
        &self,
        reservation_id: &str,
        to: ReservationStatus,
        reason: Option<ReleaseReason>,
        now: DateTime<Utc>,
    ) -> Result<Update> {
        let mut set = String::from("SET #status = :to, updated_at = :now");
        let mut update = Update::builder()
            .table_name(self.table.name())
            .set_key(Some(reservation_key(reservation_id)))
            .condition_expression("#status = :held")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":to", to_av(&to)?)
            .expression_attribute_values(":held", to_av(&ReservationStatus::Held)?)
            .expression_attribute_values(":now", s(sortable(now)));
        if let Some(reason) = reason {
            set.push_str(", release_reason = :reason");
            update = update.expression_attribute_values(":reason", to_av(&reason)?);
        }
        if to == ReservationStatus::Released {
            set.push_str(", #ttl = :ttl");
            let expires = now + chrono::Duration::days(RELEASED_RETENTION_DAYS);
            update = update
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_values(":ttl", n(expires.timestamp()));
        }
        built(update.update_expression(format!("{set} REMOVE gsi1pk, gsi1sk")).build())
    }
}

impl StockReader for DynamoInventory {
    async fn stock_levels(&self, skus: &[String]) -> Result<HashMap<String, Vec<StockLevel>>> {
        let mut wanted: Vec<&String> = skus.iter().collect();
        wanted.sort();
        wanted.dedup();
        let reads =
            wanted.iter().map(|sku| async move { Ok::<_, DomainError>(((*sku).clone(), self.levels_of(sku).await?)) });
        Ok(futures::future::try_join_all(reads).await?.into_iter().collect())
    }
}

impl StockWriter for DynamoInventory {
    async fn set_stock(&self, sku: &str, warehouse_id: &str, set: &SetStock) -> Result<StockLevel> {
        for attempt in 0..SET_ATTEMPTS {
            let now = sortable(Utc::now());
            match self.get_level(sku, warehouse_id).await? {
                None => {
                    let safety = set.safety_stock.unwrap_or(0);
                    let level = StockLevel {
                        on_hand: set.on_hand,
                        free: set.on_hand,
                        avail: set.on_hand - safety,
                        safety,
                        adjustments: set.on_hand,
                        ..StockLevel::empty(sku, warehouse_id)
                    };
                    let mut item = to_item(&level)?;
                    item.extend(stock_key(sku, warehouse_id));
                    item.insert("entity".into(), s("stock"));
                    item.insert("updated_at".into(), s(now));
                    if self.table.put_new(item).await? {
                        return Ok(level);
                    }
                }
                Some(old) => {
                    if set.on_hand < old.reserved {
                        return Err(below_reserved());
                    }
                    let safety = set.safety_stock.unwrap_or(old.safety);
                    let free = set.on_hand - old.reserved;
                    let result = self
                        .table
                        .update_item()
                        .set_key(Some(stock_key(sku, warehouse_id)))
                        .update_expression(SET_UPDATE)
                        .condition_expression(SET_CONDITION)
                        .set_expression_attribute_names(Some(names(&[SET_UPDATE, SET_CONDITION])))
                        .expression_attribute_values(":n", n(set.on_hand))
                        .expression_attribute_values(":free", n(free))
                        .expression_attribute_values(":avail", n(free - safety))
                        .expression_attribute_values(":safety", n(safety))
                        .expression_attribute_values(":d", n(set.on_hand - old.on_hand))
                        .expression_attribute_values(":now", s(now))
                        .expression_attribute_values(":old_on_hand", n(old.on_hand))
                        .expression_attribute_values(":old_reserved", n(old.reserved))
                        .expression_attribute_values(":old_safety", n(old.safety))
                        .return_values(ReturnValue::AllNew)
                        .send()
                        .boxed()
                        .await;
                    if let Some(output) = conditional(result)? {
                        return from_item(output.attributes.unwrap_or_default());
                    }
                }
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
        Err(DomainError::Transient(CHANGING.into()))
    }

    async fn adjust_stock(&self, sku: &str, warehouse_id: &str, adjustment: &StockAdjustment) -> Result<StockLevel> {
        let action = self.adjust_update(sku, warehouse_id, adjustment)?;
        if transact_retrying(self.table.client(), &[action], CHANGING).await?.is_some() {
            return Err(below_reserved());
        }
        let level = self.get_level(sku, warehouse_id).await?;
        Ok(level.unwrap_or_else(|| StockLevel::empty(sku, warehouse_id)))
    }

    async fn adjust_stock_once(
        &self,
        sku: &str,
        warehouse_id: &str,
        adjustment: &StockAdjustment,
        key: &AdjustmentKey,
    ) -> Result<AdjustOutcome> {
        let now = Utc::now();
        let record_key = self::key(format!("ADJ#{}", key.id), "ADJ".to_owned());
        let mut record = record_key.clone();
        record.insert("entity".into(), s("adjustment"));
        record.insert("sku".into(), s(sku));
        record.insert("warehouse_id".into(), s(warehouse_id));
        record.insert("fingerprint".into(), s(&key.fingerprint));
        record.insert("delta".into(), n(adjustment.delta));
        record.insert("created_at".into(), s(sortable(now)));
        let ttl = now + chrono::Duration::hours(ADJUSTMENT_KEY_TTL_HOURS);
        record.insert("ttl".into(), n(ttl.timestamp()));
        let put = built(
            self.table
                .put(record)
                .condition_expression("attribute_not_exists(pk) OR #ttl <= :now")
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_values(":now", n(now.timestamp()))
                .build(),
        )?;
        let actions =
            vec![TransactWriteItem::builder().put(put).build(), self.adjust_update(sku, warehouse_id, adjustment)?];
        if let Some((first, _)) = transact_retrying(self.table.client(), &actions, CHANGING).await? {
            if first == 0 {
                return self.replay_adjustment(record_key, key, sku, warehouse_id).await;
            }
            // The stock update's condition (the only other action) failed.
            return Err(if adjustment.delta > 0 { StockAdjustment::over_limit() } else { below_reserved() });
        }
        let level = self.get_level(sku, warehouse_id).await?.unwrap_or_else(|| StockLevel::empty(sku, warehouse_id));
        let recorded = self
            .table
            .update_item()
            .set_key(Some(record_key))
            .update_expression("SET #result = :result")
            .condition_expression("fingerprint = :fp AND attribute_not_exists(#result)")
            .expression_attribute_names("#result", "result")
            .expression_attribute_values(":result", AttributeValue::M(to_item(&StockView::from(&level))?))
            .expression_attribute_values(":fp", s(&key.fingerprint))
            .send()
            .boxed()
            .await;
        if let Err(err) = recorded {
            tracing::warn!(error = %sdk_error(err), "adjustment result not recorded");
        }
        Ok(AdjustOutcome::Applied(level))
    }
}

impl DynamoInventory {
    /// The stock update of an adjustment, as one action of a transaction.
    fn adjust_update(&self, sku: &str, warehouse_id: &str, adjustment: &StockAdjustment) -> Result<TransactWriteItem> {
        let (received, adjustments) = adjustment.ledger_split();
        let mut update = self
            .table
            .update(stock_key(sku, warehouse_id), ADJUST_UPDATE)
            .expression_attribute_values(":entity", s("stock"))
            .expression_attribute_values(":sku", s(sku))
            .expression_attribute_values(":wh", s(warehouse_id))
            .expression_attribute_values(":now", s(sortable(Utc::now())))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":d", n(adjustment.delta))
            .expression_attribute_values(":r", n(received))
            .expression_attribute_values(":a", n(adjustments));
        update = match adjustment.on_hand_ceiling() {
            None => update
                .condition_expression(ADJUST_CONDITION)
                .set_expression_attribute_names(Some(names(&[ADJUST_UPDATE, ADJUST_CONDITION])))
                .expression_attribute_values(":neg", n(adjustment.delta.saturating_neg())),
            Some(ceiling) => update
                .condition_expression(RECEIVE_CONDITION)
                .set_expression_attribute_names(Some(names(&[ADJUST_UPDATE, RECEIVE_CONDITION])))
                .expression_attribute_values(":ceiling", n(ceiling)),
        };
        Ok(TransactWriteItem::builder().update(built(update.build())?).build())
    }

    /// What a used adjustment key answers: 422 for another adjustment, else its first result (or the stock
    /// now, if the first result was never recorded).
    async fn replay_adjustment(
        &self,
        record_key: Item,
        key: &AdjustmentKey,
        sku: &str,
        warehouse_id: &str,
    ) -> Result<AdjustOutcome> {
        let record = self.table.get(record_key).await?.unwrap_or_default();
        if text(&record, "fingerprint") != Some(&key.fingerprint) {
            return Ok(AdjustOutcome::KeyReused);
        }
        if let Some(result) = record.get("result").and_then(|v| v.as_m().ok()) {
            return Ok(AdjustOutcome::Replayed(from_item(result.clone())?));
        }
        let level = self.get_level(sku, warehouse_id).await?.unwrap_or_else(|| StockLevel::empty(sku, warehouse_id));
        Ok(AdjustOutcome::Replayed(StockView::from(&level)))
    }
}

impl WarehouseReader for DynamoInventory {
    async fn list_warehouses(&self) -> Result<Vec<Warehouse>> {
        let output = self
            .table
            .query()
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(WAREHOUSES_PK))
            .send()
            .boxed()
            .await
            .map_err(sdk_error)?;
        output.items().iter().cloned().map(from_item).collect()
    }
}

impl WarehouseWriter for DynamoInventory {
    async fn create_warehouse(&self, warehouse: &Warehouse) -> Result<()> {
        let mut item = to_item(warehouse)?;
        item.extend(key(WAREHOUSES_PK.to_owned(), format!("WH#{}", warehouse.warehouse_id)));
        item.insert("entity".into(), s("warehouse"));
        if !self.table.put_new(item).await? {
            return Err(DomainError::conflict(ErrorCode::WarehouseExists, "a warehouse with this id exists"));
        }
        Ok(())
    }
}

impl ReservationStore for DynamoInventory {
    async fn try_reserve(&self, reservation: &Reservation) -> Result<ReserveOutcome> {
        let mut actions = vec![self.create_reservation_action(reservation)?];
        for a in &reservation.allocations {
            actions.push(self.stock_action(&a.sku, &a.warehouse_id, HOLD, a.quantity)?);
        }
        match transact_retrying(self.table.client(), &actions, BUSY).await? {
            None => Ok(ReserveOutcome::Reserved(reservation.clone())),
            Some((0, _)) => Ok(ReserveOutcome::Existing(self.existing_reservation(&reservation.reservation_id).await?)),
            Some((i, _)) => {
                let a = &reservation.allocations[i - 1];
                Ok(ReserveOutcome::Insufficient { sku: a.sku.clone(), warehouse_id: a.warehouse_id.clone() })
            }
        }
    }

    async fn get_reservation(&self, reservation_id: &str) -> Result<Option<Reservation>> {
        self.table.get_as(reservation_key(reservation_id)).await
    }

    async fn finish(
        &self,
        reservation: &Reservation,
        to: ReservationStatus,
        reason: Option<ReleaseReason>,
        now: DateTime<Utc>,
    ) -> Result<FinishOutcome> {
        let update = self.finish_update(&reservation.reservation_id, to, reason, now)?;
        let mut actions = vec![TransactWriteItem::builder().update(update).build()];
        for a in &reservation.allocations {
            actions.push(self.finish_stock_action(to, &a.sku, &a.warehouse_id, a.quantity)?);
        }
        match transact_retrying(self.table.client(), &actions, BUSY).await? {
            None => {
                let mut done = reservation.clone();
                done.status = to;
                done.release_reason = reason;
                Ok(FinishOutcome::Done(done))
            }
            Some((0, _)) => Ok(FinishOutcome::NotHeld),
            Some((_, cancelled)) => Err(reserved_below_held(&reservation.reservation_id, &cancelled)),
        }
    }

    async fn expired_reservations(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        let mut start: Option<Item> = None;
        while ids.len() < limit {
            let page = self
                .table
                .query()
                .index_name("gsi1")
                .key_condition_expression("gsi1pk = :held AND gsi1sk <= :now")
                .expression_attribute_values(":held", s(HELD_PARTITION))
                .expression_attribute_values(":now", s(sortable(now)))
                .limit(i32::try_from(limit - ids.len()).unwrap_or(100))
                .set_exclusive_start_key(start.take())
                .send()
                .boxed()
                .await
                .map_err(sdk_error)?;
            for item in page.items() {
                if let Some(id) = text(item, "pk").and_then(|pk| pk.strip_prefix("RES#")) {
                    ids.push(id.to_owned());
                }
            }
            match page.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => break,
            }
        }
        Ok(ids)
    }
}

impl ReservationReplacer for DynamoInventory {
    async fn try_replace(&self, replacing: &[Reservation], new: &Reservation) -> Result<ReplaceOutcome> {
        let now = Utc::now();
        let mut actions = Vec::with_capacity(replacing.len() + 1);
        for old in replacing {
            let update = self.finish_update(
                &old.reservation_id,
                ReservationStatus::Released,
                Some(ReleaseReason::Replaced),
                now,
            )?;
            actions.push(TransactWriteItem::builder().update(update).build());
        }
        actions.push(self.create_reservation_action(new)?);
        let changes = net_change(replacing.iter().flat_map(|r| &r.allocations), &new.allocations);
        for (sku, warehouse_id, q) in &changes {
            let quantity = u32::try_from(q.unsigned_abs()).map_err(DomainError::unexpected)?;
            actions.push(self.stock_action(sku, warehouse_id, if *q > 0 { HOLD } else { RELEASE }, quantity)?);
        }
        if actions.len() > MAX_TRANSACTION_ACTIONS {
            return Err(DomainError::validation("lines", "the hold needs too many stock locations"));
        }
        // Actions: the replaced reservations, the new one, then one stock change per entry of `changes`.
        let olds = replacing.len();
        let (first, cancelled) = match transact_retrying(self.table.client(), &actions, BUSY).await? {
            None => return Ok(ReplaceOutcome::Replaced(new.clone())),
            Some(failed) => failed,
        };
        if first < olds {
            return Ok(ReplaceOutcome::NotHeld);
        }
        if first == olds {
            return Ok(ReplaceOutcome::Existing(self.existing_reservation(&new.reservation_id).await?));
        }
        let (sku, warehouse_id, q) = &changes[first - olds - 1];
        if *q < 0 {
            return Err(reserved_below_held(&new.reservation_id, &cancelled));
        }
        Ok(ReplaceOutcome::Insufficient { sku: sku.clone(), warehouse_id: warehouse_id.clone() })
    }
}

impl DynamoInventory {
    /// The write units AWS charges for writing `reservation` (the transaction of its record and its stock
    /// updates), computed from item sizes: the emulator's ConsumedCapacity figures are not AWS's.
    pub fn reservation_write_units(&self, reservation: &Reservation, stock_item_bytes: usize) -> Result<usize> {
        let record = transactional_write_units(item_size(&self.reservation_item(reservation)?));
        Ok(record + reservation.allocations.len() * transactional_write_units(stock_item_bytes))
    }

    /// The size of a stored stock item, as read back.
    pub async fn stock_item_bytes(&self, sku: &str, warehouse_id: &str) -> Result<usize> {
        Ok(self.stock_item(sku, warehouse_id).await?.as_ref().map(item_size).unwrap_or(0))
    }

    /// One warehouse's stock item of a SKU, read consistently.
    async fn stock_item(&self, sku: &str, warehouse_id: &str) -> Result<Option<Item>> {
        self.table.get(stock_key(sku, warehouse_id)).await
    }
}

impl commerce_app::ports::SoldStockReturns for DynamoInventory {
    /// One transaction: the marker `RETURN#<order>#<reason> / RETURN` put if absent, and per line
    /// `SET on_hand, free, avail += q, sold -= q` with `ADD returned q` (flash units: `flash_sold -= q`) if
    /// enough units are booked as sold. A cancelled marker means it was already done.
    async fn return_sold(
        &self,
        request: &commerce_domain::inventory::returns::SoldReturn,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        request.validate()?;
        let marker = built(
            Put::builder()
                .table_name(self.table.name())
                .item("pk", s(format!("RETURN#{}", request.marker_id())))
                .item("sk", s("RETURN"))
                .item("entity", s("sold_return"))
                .item("order_id", s(&request.order_id))
                .item("reason", s(&request.reason))
                .item("lines", to_av(&request.lines)?)
                .item("created_at", s(sortable(now)))
                .condition_expression("attribute_not_exists(pk)")
                .build(),
        )?;
        let change = if request.flash { RETURN_FLASH_SOLD } else { RETURN_SOLD };
        let mut actions = vec![TransactWriteItem::builder().put(marker).build()];
        for line in &request.lines {
            actions.push(self.stock_action(&line.sku, &line.warehouse_id, change, line.quantity)?);
        }
        match transact_retrying(self.table.client(), &actions, BUSY).await? {
            None => Ok(true),
            Some((0, _)) => Ok(false),
            Some((_, cancelled)) => {
                let codes = cancelled.codes();
                tracing::error!(order_id = %request.order_id, ?codes, "fewer units sold than an order returns");
                Err(DomainError::conflict(ErrorCode::NotSold, "fewer units are sold than would come back"))
            }
        }
    }
}
