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

use crate::dynamo::sdk_error;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, SecondsFormat, Utc};
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
use std::collections::HashMap;
use std::time::Duration;

type Item = HashMap<String, AttributeValue>;

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
const CONFLICT_ATTEMPTS: u32 = 5;
/// DynamoDB's limit of actions in one TransactWriteItems.
const MAX_TRANSACTION_ACTIONS: usize = 100;

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn key(pk: String, sk: String) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

fn stock_key(sku: &str, warehouse_id: &str) -> Item {
    key(format!("SKU#{sku}"), format!("WH#{warehouse_id}"))
}

fn reservation_key(reservation_id: &str) -> Item {
    key(format!("RES#{reservation_id}"), RESERVATION_SK.to_owned())
}

/// A timestamp that sorts as text: fixed width, milliseconds, `Z`.
fn sortable(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Expression attribute names for every `#name` in the expressions (attribute names such as `free` and
/// `status` are reserved words; unused names are rejected, so only those present are declared).
fn names(expressions: &[&str]) -> HashMap<String, String> {
    let mut names = HashMap::new();
    for expression in expressions {
        for (i, _) in expression.match_indices('#') {
            let name: String =
                expression[i + 1..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            names.insert(format!("#{name}"), name);
        }
    }
    names
}

fn status_name(status: ReservationStatus) -> &'static str {
    match status {
        ReservationStatus::Held => "held",
        ReservationStatus::Released => "released",
        ReservationStatus::Committed => "committed",
        ReservationStatus::Expired => "expired",
    }
}

fn to_item<T: serde::Serialize>(value: &T) -> Result<Item> {
    serde_dynamo::aws_sdk_dynamodb_1::to_item(value).map_err(DomainError::unexpected)
}

fn from_item<T: serde::de::DeserializeOwned>(item: Item) -> Result<T> {
    serde_dynamo::aws_sdk_dynamodb_1::from_item(item).map_err(DomainError::unexpected)
}

fn built<T, E: std::error::Error + Send + Sync + 'static>(result: std::result::Result<T, E>) -> Result<T> {
    result.map_err(DomainError::unexpected)
}

fn jitter(attempt: u32) -> Duration {
    let base = 2u64 << attempt.min(6);
    Duration::from_millis(base + rand::random::<u64>() % base)
}

/// How a transaction was cancelled: per action, its reason code.
fn cancellation_codes<R>(err: &aws_sdk_dynamodb::error::SdkError<TransactWriteItemsError, R>) -> Option<Vec<String>> {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
            Some(cancelled.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None").to_owned()).collect())
        }
        _ => None,
    }
}

/// The inventory table, implementing every inventory port. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DynamoInventory {
    client: Client,
    table: String,
}

impl DynamoInventory {
    /// Writes warehouses and stock items as they are, in batches (seeding an empty table: the demo stack,
    /// benchmarks). Not for a live table: it bypasses the conditional writes that keep the counters whole.
    pub async fn load(&self, warehouses: &[Warehouse], levels: &[StockLevel]) -> Result<()> {
        use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
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
        for chunk in items.chunks(25) {
            let mut pending: Vec<WriteRequest> = chunk
                .iter()
                .map(|item| {
                    PutRequest::builder()
                        .set_item(Some(item.clone()))
                        .build()
                        .map(|put| WriteRequest::builder().put_request(put).build())
                })
                .collect::<std::result::Result<_, _>>()
                .map_err(DomainError::unexpected)?;
            for attempt in 0..8u32 {
                if pending.is_empty() {
                    break;
                }
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(self.table(), pending.clone())
                    .send()
                    .await
                    .map_err(sdk_error)?;
                pending = output.unprocessed_items.and_then(|mut u| u.remove(self.table())).unwrap_or_default();
                if !pending.is_empty() {
                    tokio::time::sleep(jitter(attempt)).await;
                }
            }
            if !pending.is_empty() {
                return Err(DomainError::Transient("inventory load throttled".into()));
            }
        }
        Ok(())
    }

    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    fn stock_update(&self, sku: &str, warehouse_id: &str) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
        Update::builder().table_name(&self.table).set_key(Some(stock_key(sku, warehouse_id)))
    }

    /// Every stock item and every reservation, read consistently: the input of the invariant checker. Meant
    /// for tests and audits on a quiet table; it scans the whole table.
    pub async fn snapshot(&self) -> Result<(Vec<StockLevel>, Vec<Reservation>)> {
        let mut stock = Vec::new();
        let mut reservations = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_error)?;
            for item in page.items().iter().cloned() {
                let pk = item.get("pk").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                if pk.starts_with("SKU#") {
                    stock.push(from_item(item)?);
                } else if pk.starts_with("RES#") {
                    reservations.push(from_item(item)?);
                }
            }
            match page.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => break,
            }
        }
        Ok((stock, reservations))
    }

    async fn get_level(&self, sku: &str, warehouse_id: &str) -> Result<Option<StockLevel>> {
        self.stock_item(sku, warehouse_id).await?.map(from_item).transpose()
    }

    async fn levels_of(&self, sku: &str) -> Result<Vec<StockLevel>> {
        let mut levels = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("pk = :pk AND begins_with(sk, :wh)")
                .expression_attribute_values(":pk", s(format!("SKU#{sku}")))
                .expression_attribute_values(":wh", s("WH#"))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_error)?;
            for item in page.items().iter().cloned() {
                levels.push(from_item(item)?);
            }
            match page.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => break,
            }
        }
        Ok(levels)
    }

    fn reservation_item(&self, reservation: &Reservation) -> Result<Item> {
        let mut item = to_item(reservation)?;
        item.extend(reservation_key(&reservation.reservation_id));
        item.insert("entity".into(), s("reservation"));
        item.insert("gsi1pk".into(), s(HELD_PARTITION));
        item.insert("gsi1sk".into(), s(sortable(reservation.expires_at)));
        Ok(item)
    }

    fn hold_action(&self, sku: &str, warehouse_id: &str, quantity: u32) -> Result<TransactWriteItem> {
        let (update, condition) =
            ("SET #avail = #avail - :q, #free = #free - :q, #reserved = #reserved + :q", "#avail >= :q");
        let update = built(
            self.stock_update(sku, warehouse_id)
                .update_expression(update)
                .condition_expression(condition)
                .set_expression_attribute_names(Some(names(&[update, condition])))
                .expression_attribute_values(":q", n(i64::from(quantity)))
                .build(),
        )?;
        Ok(TransactWriteItem::builder().update(update).build())
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
            .table_name(&self.table)
            .set_key(Some(reservation_key(reservation_id)))
            .condition_expression("#status = :held")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":to", s(status_name(to)))
            .expression_attribute_values(":held", s("held"))
            .expression_attribute_values(":now", s(sortable(now)));
        if let Some(reason) = reason {
            set.push_str(", release_reason = :reason");
            let value = match reason {
                ReleaseReason::Explicit => "explicit",
                ReleaseReason::Expired => "expired",
                ReleaseReason::Replaced => "replaced",
            };
            update = update.expression_attribute_values(":reason", s(value));
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

    fn finish_stock_action(
        &self,
        to: ReservationStatus,
        sku: &str,
        warehouse_id: &str,
        quantity: u32,
    ) -> Result<TransactWriteItem> {
        let expression = match to {
            ReservationStatus::Committed => {
                "SET #on_hand = #on_hand - :q, #reserved = #reserved - :q, #sold = #sold + :q"
            }
            _ => "SET #avail = #avail + :q, #free = #free + :q, #reserved = #reserved - :q",
        };
        let condition = "#reserved >= :q";
        let update = built(
            self.stock_update(sku, warehouse_id)
                .update_expression(expression)
                .condition_expression(condition)
                .set_expression_attribute_names(Some(names(&[expression, condition])))
                .expression_attribute_values(":q", n(i64::from(quantity)))
                .build(),
        )?;
        Ok(TransactWriteItem::builder().update(update).build())
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
                    let result = self
                        .client
                        .put_item()
                        .table_name(&self.table)
                        .set_item(Some(item))
                        .condition_expression("attribute_not_exists(pk)")
                        .send()
                        .await;
                    match result {
                        Ok(_) => return Ok(level),
                        Err(err)
                            if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                        Err(err) => return Err(sdk_error(err)),
                    }
                }
                Some(old) => {
                    if set.on_hand < old.reserved {
                        return Err(below_reserved());
                    }
                    let safety = set.safety_stock.unwrap_or(old.safety);
                    let free = set.on_hand - old.reserved;
                    let result = self
                        .client
                        .update_item()
                        .table_name(&self.table)
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
                        .await;
                    match result {
                        Ok(output) => return from_item(output.attributes.unwrap_or_default()),
                        Err(err)
                            if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                        Err(err) => return Err(sdk_error(err)),
                    }
                }
            }
            tokio::time::sleep(jitter(attempt)).await;
        }
        Err(DomainError::Transient("stock is changing too quickly; retry".into()))
    }

    async fn adjust_stock(&self, sku: &str, warehouse_id: &str, adjustment: &StockAdjustment) -> Result<StockLevel> {
        let action = self.adjust_update(sku, warehouse_id, adjustment)?;
        for attempt in 0..CONFLICT_ATTEMPTS {
            let result = self.client.transact_write_items().transact_items(action.clone()).send().await;
            let err = match result {
                Ok(_) => {
                    let level = self.get_level(sku, warehouse_id).await?;
                    return Ok(level.unwrap_or_else(|| StockLevel::empty(sku, warehouse_id)));
                }
                Err(err) => err,
            };
            let Some(codes) = cancellation_codes(&err) else { return Err(sdk_error(err)) };
            if codes.iter().any(|c| c == "ConditionalCheckFailed") {
                return Err(below_reserved());
            }
            if !codes.iter().any(|c| c == "TransactionConflict") {
                return Err(sdk_error(err));
            }
            tokio::time::sleep(jitter(attempt)).await;
        }
        Err(DomainError::Transient("stock is changing too quickly; retry".into()))
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
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(record))
                .condition_expression("attribute_not_exists(pk) OR #ttl <= :now")
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_values(":now", n(now.timestamp()))
                .build(),
        )?;
        let actions =
            vec![TransactWriteItem::builder().put(put).build(), self.adjust_update(sku, warehouse_id, adjustment)?];
        for attempt in 0..CONFLICT_ATTEMPTS {
            let result = self.client.transact_write_items().set_transact_items(Some(actions.clone())).send().await;
            let err = match result {
                Ok(_) => {
                    let level = self
                        .get_level(sku, warehouse_id)
                        .await?
                        .unwrap_or_else(|| StockLevel::empty(sku, warehouse_id));
                    let recorded = self
                        .client
                        .update_item()
                        .table_name(&self.table)
                        .set_key(Some(record_key))
                        .update_expression("SET #result = :result")
                        .condition_expression("fingerprint = :fp AND attribute_not_exists(#result)")
                        .expression_attribute_names("#result", "result")
                        .expression_attribute_values(":result", AttributeValue::M(to_item(&StockView::from(&level))?))
                        .expression_attribute_values(":fp", s(&key.fingerprint))
                        .send()
                        .await;
                    if let Err(err) = recorded {
                        tracing::warn!(error = %sdk_error(err), "adjustment result not recorded");
                    }
                    return Ok(AdjustOutcome::Applied(level));
                }
                Err(err) => err,
            };
            let Some(codes) = cancellation_codes(&err) else { return Err(sdk_error(err)) };
            if codes.first().is_some_and(|c| c == "ConditionalCheckFailed") {
                return self.replay_adjustment(record_key, key, sku, warehouse_id).await;
            }
            if codes.get(1).is_some_and(|c| c == "ConditionalCheckFailed") {
                return Err(if adjustment.delta > 0 { StockAdjustment::over_limit() } else { below_reserved() });
            }
            if !codes.iter().any(|c| c == "TransactionConflict") {
                return Err(sdk_error(err));
            }
            tokio::time::sleep(jitter(attempt)).await;
        }
        Err(DomainError::Transient("stock is changing too quickly; retry".into()))
    }
}

impl DynamoInventory {
    /// The stock update of an adjustment, as one action of a transaction.
    fn adjust_update(&self, sku: &str, warehouse_id: &str, adjustment: &StockAdjustment) -> Result<TransactWriteItem> {
        let (received, adjustments) = adjustment.ledger_split();
        let mut update = self
            .stock_update(sku, warehouse_id)
            .update_expression(ADJUST_UPDATE)
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
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(record_key))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        let record = output.item.unwrap_or_default();
        if record.get("fingerprint").and_then(|v| v.as_s().ok()) != Some(&key.fingerprint) {
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
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(WAREHOUSES_PK))
            .send()
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
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Err(DomainError::conflict(ErrorCode::WarehouseExists, "a warehouse with this id exists"))
            }
            Err(err) => Err(sdk_error(err)),
        }
    }
}

impl ReservationStore for DynamoInventory {
    async fn try_reserve(&self, reservation: &Reservation) -> Result<ReserveOutcome> {
        let put = built(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(self.reservation_item(reservation)?))
                .condition_expression("attribute_not_exists(pk)")
                .build(),
        )?;
        let mut actions = vec![TransactWriteItem::builder().put(put).build()];
        for a in &reservation.allocations {
            actions.push(self.hold_action(&a.sku, &a.warehouse_id, a.quantity)?);
        }
        for attempt in 0..CONFLICT_ATTEMPTS {
            let result = self.client.transact_write_items().set_transact_items(Some(actions.clone())).send().await;
            let err = match result {
                Ok(_) => return Ok(ReserveOutcome::Reserved(reservation.clone())),
                Err(err) => err,
            };
            let Some(codes) = cancellation_codes(&err) else { return Err(sdk_error(err)) };
            if codes.first().is_some_and(|c| c == "ConditionalCheckFailed") {
                return match self.get_reservation(&reservation.reservation_id).await? {
                    Some(existing) => Ok(ReserveOutcome::Existing(existing)),
                    None => Err(DomainError::Transient("reservation record vanished during a retry".into())),
                };
            }
            if let Some(i) = codes.iter().skip(1).position(|c| c == "ConditionalCheckFailed") {
                let a = &reservation.allocations[i];
                return Ok(ReserveOutcome::Insufficient { sku: a.sku.clone(), warehouse_id: a.warehouse_id.clone() });
            }
            if !codes.iter().any(|c| c == "TransactionConflict") {
                return Err(sdk_error(err));
            }
            tokio::time::sleep(jitter(attempt)).await;
        }
        Err(DomainError::Transient("stock items are busy; retry".into()))
    }

    async fn get_reservation(&self, reservation_id: &str) -> Result<Option<Reservation>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(reservation_key(reservation_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        output.item.map(from_item).transpose()
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
        for attempt in 0..CONFLICT_ATTEMPTS {
            let result = self.client.transact_write_items().set_transact_items(Some(actions.clone())).send().await;
            let err = match result {
                Ok(_) => {
                    let mut done = reservation.clone();
                    done.status = to;
                    done.release_reason = reason;
                    return Ok(FinishOutcome::Done(done));
                }
                Err(err) => err,
            };
            let Some(codes) = cancellation_codes(&err) else { return Err(sdk_error(err)) };
            if codes.first().is_some_and(|c| c == "ConditionalCheckFailed") {
                return Ok(FinishOutcome::NotHeld);
            }
            if codes.iter().any(|c| c == "ConditionalCheckFailed") {
                tracing::error!(reservation_id = %reservation.reservation_id, ?codes, "stock item holds fewer units than its reservation");
                return Err(DomainError::unexpected(std::io::Error::other("reserved stock below a held reservation")));
            }
            if !codes.iter().any(|c| c == "TransactionConflict") {
                return Err(sdk_error(err));
            }
            tokio::time::sleep(jitter(attempt)).await;
        }
        Err(DomainError::Transient("stock items are busy; retry".into()))
    }

    async fn expired_reservations(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        let mut start: Option<Item> = None;
        while ids.len() < limit {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("gsi1")
                .key_condition_expression("gsi1pk = :held AND gsi1sk <= :now")
                .expression_attribute_values(":held", s(HELD_PARTITION))
                .expression_attribute_values(":now", s(sortable(now)))
                .limit(i32::try_from(limit - ids.len()).unwrap_or(100))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_error)?;
            for item in page.items() {
                if let Some(id) = item.get("pk").and_then(|v| v.as_s().ok()).and_then(|pk| pk.strip_prefix("RES#")) {
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
        let put = built(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(self.reservation_item(new)?))
                .condition_expression("attribute_not_exists(pk)")
                .build(),
        )?;
        actions.push(TransactWriteItem::builder().put(put).build());
        let changes = net_change(replacing.iter().flat_map(|r| &r.allocations), &new.allocations);
        for (sku, warehouse_id, q) in &changes {
            let quantity = u32::try_from(q.unsigned_abs()).map_err(DomainError::unexpected)?;
            actions.push(if *q > 0 {
                self.hold_action(sku, warehouse_id, quantity)?
            } else {
                self.finish_stock_action(ReservationStatus::Released, sku, warehouse_id, quantity)?
            });
        }
        if actions.len() > MAX_TRANSACTION_ACTIONS {
            return Err(DomainError::validation("lines", "the hold needs too many stock locations"));
        }
        let olds = replacing.len();
        for attempt in 0..CONFLICT_ATTEMPTS {
            let result = self.client.transact_write_items().set_transact_items(Some(actions.clone())).send().await;
            let err = match result {
                Ok(_) => return Ok(ReplaceOutcome::Replaced(new.clone())),
                Err(err) => err,
            };
            let Some(codes) = cancellation_codes(&err) else { return Err(sdk_error(err)) };
            let failed = |i: usize| codes.get(i).is_some_and(|c| c == "ConditionalCheckFailed");
            if (0..olds).any(&failed) {
                return Ok(ReplaceOutcome::NotHeld);
            }
            if failed(olds) {
                return match self.get_reservation(&new.reservation_id).await? {
                    Some(existing) => Ok(ReplaceOutcome::Existing(existing)),
                    None => Err(DomainError::Transient("reservation record vanished during a retry".into())),
                };
            }
            if let Some(i) = (olds + 1..codes.len()).find(|i| failed(*i)) {
                let (sku, warehouse_id, q) = &changes[i - olds - 1];
                if *q < 0 {
                    tracing::error!(reservation_id = %new.reservation_id, ?codes, "stock item holds fewer units than its reservation");
                    return Err(DomainError::unexpected(std::io::Error::other(
                        "reserved stock below a held reservation",
                    )));
                }
                return Ok(ReplaceOutcome::Insufficient { sku: sku.clone(), warehouse_id: warehouse_id.clone() });
            }
            if !codes.iter().any(|c| c == "TransactionConflict") {
                return Err(sdk_error(err));
            }
            tokio::time::sleep(jitter(attempt)).await;
        }
        Err(DomainError::Transient("stock items are busy; retry".into()))
    }
}

/// DynamoDB's size of an item in bytes, by AWS's rules: attribute names plus values (strings and binaries by
/// length, numbers about one byte per two digits plus one, lists and maps 3 bytes plus 1 per element plus
/// their contents, booleans and nulls 1 byte).
pub fn item_size(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter().map(|(name, value)| name.len() + value_size(value)).sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.trim_start_matches('-').len().div_ceil(2) + 1,
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => 3 + map.iter().map(|(k, v)| 1 + k.len() + value_size(v)).sum::<usize>(),
        AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
        AttributeValue::Ns(set) => set.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
        AttributeValue::Bs(set) => set.iter().map(|b| b.as_ref().len()).sum(),
        _ => 0,
    }
}

/// Write units of one transactional write of an item of `bytes`: 2 per started KB (prepare + commit).
pub fn transactional_write_units(bytes: usize) -> usize {
    2 * bytes.div_ceil(1024).max(1)
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
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(stock_key(sku, warehouse_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(output.item)
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
                .table_name(&self.table)
                .item("pk", s(format!("RETURN#{}", request.marker_id())))
                .item("sk", s("RETURN"))
                .item("entity", s("sold_return"))
                .item("order_id", s(&request.order_id))
                .item("reason", s(&request.reason))
                .item("lines", crate::orders::to_av(&request.lines)?)
                .item("created_at", s(sortable(now)))
                .condition_expression("attribute_not_exists(pk)")
                .build(),
        )?;
        let (expression, condition) = if request.flash {
            (
                "SET #on_hand = #on_hand + :q, #free = #free + :q, #avail = #avail + :q, #sold = #sold - :q, \
                 #flash_sold = #flash_sold - :q",
                "#sold >= :q AND #flash_sold >= :q",
            )
        } else {
            (
                "SET #on_hand = #on_hand + :q, #free = #free + :q, #avail = #avail + :q, #sold = #sold - :q \
                 ADD #returned :q",
                "#sold >= :q",
            )
        };
        let mut actions = vec![TransactWriteItem::builder().put(marker).build()];
        for line in &request.lines {
            let update = built(
                self.stock_update(&line.sku, &line.warehouse_id)
                    .update_expression(expression)
                    .condition_expression(condition)
                    .set_expression_attribute_names(Some(names(&[expression, condition])))
                    .expression_attribute_values(":q", n(i64::from(line.quantity)))
                    .build(),
            )?;
            actions.push(TransactWriteItem::builder().update(update).build());
        }
        for attempt in 0..CONFLICT_ATTEMPTS {
            let result = self.client.transact_write_items().set_transact_items(Some(actions.clone())).send().await;
            let err = match result {
                Ok(_) => return Ok(true),
                Err(err) => err,
            };
            let Some(codes) = cancellation_codes(&err) else { return Err(sdk_error(err)) };
            if codes.first().is_some_and(|c| c == "ConditionalCheckFailed") {
                return Ok(false);
            }
            if codes.iter().any(|c| c == "ConditionalCheckFailed") {
                tracing::error!(order_id = %request.order_id, ?codes, "fewer units sold than an order returns");
                return Err(DomainError::conflict(ErrorCode::NotSold, "fewer units are sold than would come back"));
            }
            if !codes.iter().any(|c| c == "TransactionConflict") {
                return Err(sdk_error(err));
            }
            tokio::time::sleep(jitter(attempt)).await;
        }
        Err(DomainError::Transient("stock items are busy; retry".into()))
    }
}
