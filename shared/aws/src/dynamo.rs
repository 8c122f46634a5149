//! The DynamoDB toolkit the adapters share, so that none of them carries its own copy of the plumbing:
//! - items and attribute values: [`Item`], [`s`], [`n`], [`key`], [`to_item`], [`from_item`], [`to_av`],
//!   [`from_av`], [`text`], [`num`], [`names`], [`sortable`], [`item_size`];
//! - outcomes and errors: [`sdk_error`], [`built`], [`is_condition_failed`], [`conditional`], [`applied`],
//!   [`updated_or_current`], [`Cancellation`] (why a transaction was cancelled) and [`transact_retrying`];
//! - [`backoff`] between retries;
//! - opaque page cursors over an [`Index`]: [`encode_cursor`], [`decode_cursor`];
//! - [`Table`]: a client and a table name, with the reads, paged reads and batch writes every adapter does.
//!
//! The requests that take several steps return boxed futures: the SDK's futures are deep, a function's whole
//! future has a depth limit (rustc's recursion limit, which the Lambda functions are close to), and a box keeps
//! every caller's future type small.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::builders::DeleteItemFluentBuilder;
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::builders::{ConditionCheckBuilder, DeleteBuilder, PutBuilder, UpdateBuilder};
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, ConditionCheck, Delete, KeysAndAttributes, Put, PutRequest, TransactWriteItem,
    Update, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use commerce_domain::error::{DomainError, Result};
use futures::future::BoxFuture;
use serde::{de::DeserializeOwned, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::time::Duration;

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// The partition key attribute of every table.
pub const PK: &str = "pk";
/// The sort key attribute of every table.
pub const SK: &str = "sk";

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The primary key of an item.
pub fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))])
}

/// The key of the inventory table's stock item of `sku` in `warehouse_id` (`SKU#<sku> / WH#<warehouse>`): the
/// inventory adapter and the flash sale's allocation both write it.
pub fn stock_key(sku: &str, warehouse_id: &str) -> Item {
    key(format!("SKU#{sku}"), format!("WH#{warehouse_id}"))
}

/// A value as an item (its fields as attributes).
pub fn to_item<T: Serialize + ?Sized>(value: &T) -> Result<Item> {
    serde_dynamo::aws_sdk_dynamodb_1::to_item(value).map_err(DomainError::unexpected)
}

/// Reads a value from an item (attributes it does not name, such as the keys, are ignored).
pub fn from_item<T: DeserializeOwned>(item: Item) -> Result<T> {
    serde_dynamo::aws_sdk_dynamodb_1::from_item(item).map_err(DomainError::unexpected)
}

/// A value as one attribute value. A unit enum variant is its serde name as a string (`TicketStatus::SoldOut`
/// is `S("sold_out")`), which is how statuses are written into expressions.
pub fn to_av<T: Serialize + ?Sized>(value: &T) -> Result<AttributeValue> {
    serde_dynamo::aws_sdk_dynamodb_1::to_attribute_value(value).map_err(DomainError::unexpected)
}

/// Reads a value from one attribute value.
pub fn from_av<T: DeserializeOwned>(value: &AttributeValue) -> Result<T> {
    serde_dynamo::aws_sdk_dynamodb_1::from_attribute_value(value.clone()).map_err(DomainError::unexpected)
}

/// A string attribute of an item, if it has one.
pub fn text<'a>(item: &'a Item, name: &str) -> Option<&'a String> {
    item.get(name).and_then(|v| v.as_s().ok())
}

/// A number attribute of an item; 0 when it is absent or not an integer.
pub fn num(item: &Item, name: &str) -> i64 {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// A builder's result: a missing required field is a bug, reported as unexpected.
pub fn built<T, E: std::error::Error + Send + Sync + 'static>(result: std::result::Result<T, E>) -> Result<T> {
    result.map_err(DomainError::unexpected)
}

/// Expression attribute names for every `#name` in the expressions (attribute names such as `free` and
/// `status` are reserved words; unused names are rejected, so only those present are declared).
pub fn names(expressions: &[&str]) -> HashMap<String, String> {
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

/// A timestamp that sorts as text: fixed width, milliseconds, `Z`.
pub fn sortable(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// [`sortable`] to the microsecond (the catalog's index keys).
pub fn sortable_micros(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// How long to wait before retry `attempt` (from 0): exponential from 2 ms, capped at 128 ms, plus as much
/// again at random so that competing writers spread out.
pub fn backoff(attempt: u32) -> Duration {
    let base = 2u64 << attempt.min(6);
    Duration::from_millis(base + rand::random::<u64>() % base)
}

/// Maps an SDK failure that is not a domain outcome: throttling and timeouts are transient, the rest
/// unexpected. Call sites handle ConditionalCheckFailed and TransactionCanceled themselves, as outcomes.
pub fn sdk_error<E, R>(err: SdkError<E, R>) -> DomainError
where
    E: std::error::Error + Send + Sync + 'static + ProvideErrorMetadata,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let transient = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(service) => matches!(
            service.err().code(),
            Some(
                "ProvisionedThroughputExceededException"
                    | "ThrottlingException"
                    | "RequestLimitExceeded"
                    | "InternalServerError"
                    | "ServiceUnavailable"
                    | "TransactionConflictException"
            )
        ),
        _ => false,
    };
    if transient {
        DomainError::Transient(aws_sdk_dynamodb::error::DisplayErrorContext(&err).to_string())
    } else {
        DomainError::unexpected(err)
    }
}

/// Whether a single-item write failed because its condition did not hold.
pub fn is_condition_failed<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.as_service_error().is_some_and(|e| e.code() == Some("ConditionalCheckFailedException"))
}

/// A conditional write's outcome: its output when it applied, `None` when its condition failed.
pub fn conditional<O, E, R>(result: std::result::Result<O, SdkError<E, R>>) -> Result<Option<O>>
where
    E: std::error::Error + Send + Sync + 'static + ProvideErrorMetadata,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(output) => Ok(Some(output)),
        Err(err) if is_condition_failed(&err) => Ok(None),
        Err(err) => Err(sdk_error(err)),
    }
}

/// A conditional write's outcome: `true` when it applied, `false` when its condition failed.
pub fn applied<O, E, R>(result: std::result::Result<O, SdkError<E, R>>) -> Result<bool>
where
    E: std::error::Error + Send + Sync + 'static + ProvideErrorMetadata,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    conditional(result).map(|output| output.is_some())
}

/// A conditional `UpdateItem` that asked for the item on failure (`ReturnValuesOnConditionCheckFailure::AllOld`):
/// `Ok(output)` when it applied, `Err(item)` when its condition failed, with the item as it was (`None` when
/// there was none).
pub fn updated_or_current<R>(
    result: std::result::Result<UpdateItemOutput, SdkError<UpdateItemError, R>>,
) -> Result<std::result::Result<UpdateItemOutput, Option<Item>>>
where
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(output) => Ok(Ok(output)),
        Err(err) => match err.as_service_error() {
            Some(UpdateItemError::ConditionalCheckFailedException(failed)) => Ok(Err(failed.item().cloned())),
            _ => Err(sdk_error(err)),
        },
    }
}

/// A transaction action's cancellation code when its condition failed.
pub const CONDITION_FAILED: &str = "ConditionalCheckFailed";
/// A transaction action's cancellation code when another transaction was writing its item.
pub const TRANSACTION_CONFLICT: &str = "TransactionConflict";
/// How many times [`transact_retrying`] sends a transaction that conflicts with others.
const CONFLICT_ATTEMPTS: u32 = 5;

/// Why a transaction was cancelled: one reason per action, in the order of the actions.
#[derive(Debug, Clone)]
pub struct Cancellation {
    reasons: Vec<CancellationReason>,
}

impl Cancellation {
    /// The cancellation of a failed `TransactWriteItems`, if it was cancelled.
    pub fn of<R>(err: &SdkError<TransactWriteItemsError, R>) -> Option<Self> {
        match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                Some(Self { reasons: cancelled.cancellation_reasons().to_vec() })
            }
            _ => None,
        }
    }

    /// Action `i`'s cancellation code (`None` for an action that did not fail).
    pub fn code(&self, i: usize) -> Option<&str> {
        self.reasons.get(i).and_then(|r| r.code())
    }

    /// Every action's code, `"None"` for those that did not fail (for logs).
    pub fn codes(&self) -> Vec<&str> {
        self.reasons.iter().map(|r| r.code().unwrap_or("None")).collect()
    }

    /// Whether action `i`'s condition failed.
    pub fn failed(&self, i: usize) -> bool {
        self.code(i) == Some(CONDITION_FAILED)
    }

    /// The first action whose condition failed.
    pub fn first_failed(&self) -> Option<usize> {
        (0..self.reasons.len()).find(|i| self.failed(*i))
    }

    /// Whether another transaction was writing one of the items.
    pub fn conflicted(&self) -> bool {
        self.reasons.iter().any(|r| r.code() == Some(TRANSACTION_CONFLICT))
    }

    /// Action `i`'s item as it was, if the action asked for it on a failed condition.
    pub fn item(&self, i: usize) -> Option<&Item> {
        self.reasons.get(i).and_then(|r| r.item())
    }
}

/// Sends a transaction, again after a [`backoff`] while it is cancelled by conflicts with other transactions
/// only, at most five times (then `Transient(busy)`). `None` when it applied; when a condition failed, the
/// first action whose condition failed and the whole cancellation; any other cancellation or failure is an
/// error.
pub fn transact_retrying<'a>(
    client: &'a Client,
    actions: &'a [TransactWriteItem],
    busy: &'a str,
) -> BoxFuture<'a, Result<Option<(usize, Cancellation)>>> {
    Box::pin(async move {
        for attempt in 0..CONFLICT_ATTEMPTS {
            let result = client.transact_write_items().set_transact_items(Some(actions.to_vec())).send().await;
            let err = match result {
                Ok(_) => return Ok(None),
                Err(err) => err,
            };
            let Some(cancellation) = Cancellation::of(&err) else { return Err(sdk_error(err)) };
            if let Some(first) = cancellation.first_failed() {
                return Ok(Some((first, cancellation)));
            }
            if !cancellation.conflicted() {
                return Err(sdk_error(err));
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
        Err(DomainError::Transient(busy.to_owned()))
    })
}

/// A secondary index: its name and key attribute names (every table names them `gsi<k>`, `gsi<k>pk`,
/// `gsi<k>sk`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Index {
    pub name: &'static str,
    pub pk: &'static str,
    pub sk: &'static str,
}

pub const GSI1: Index = Index { name: "gsi1", pk: "gsi1pk", sk: "gsi1sk" };
pub const GSI2: Index = Index { name: "gsi2", pk: "gsi2pk", sk: "gsi2sk" };
pub const GSI3: Index = Index { name: "gsi3", pk: "gsi3pk", sk: "gsi3sk" };

const MAX_CURSOR_LEN: usize = 4096;
const MAX_CURSOR_VALUE_LEN: usize = 1024;

/// Encodes a query's LastEvaluatedKey as an opaque page cursor (base64url JSON). Only string key attributes
/// exist in the tables' keys; a key with another kind yields no cursor.
pub fn encode_cursor(key: &Item) -> Option<String> {
    let plain: BTreeMap<&str, &str> = key
        .iter()
        .map(|(name, value)| value.as_s().ok().map(|v| (name.as_str(), v.as_str())))
        .collect::<Option<_>>()?;
    serde_json::to_vec(&plain).ok().map(|json| URL_SAFE_NO_PAD.encode(json))
}

/// Decodes a cursor for a query on `index` within `partition`. It must decode, hold exactly the table's and
/// the index's key attributes as non-empty strings of at most 1 KB, and belong to `partition`; anything else
/// is a 400 `invalid_parameter` naming `cursor`.
pub fn decode_cursor(raw: &str, index: Index, partition: &str) -> Result<Item> {
    let invalid = || DomainError::invalid_parameter("cursor", "is not a cursor this listing issued");
    if raw.len() > MAX_CURSOR_LEN {
        return Err(invalid());
    }
    let json = URL_SAFE_NO_PAD.decode(raw.trim_end_matches('=')).map_err(|_| invalid())?;
    let plain: HashMap<String, String> = serde_json::from_slice(&json).map_err(|_| invalid())?;
    let mut expected = [PK, SK, index.pk, index.sk];
    expected.sort_unstable();
    let mut names: Vec<&str> = plain.keys().map(String::as_str).collect();
    names.sort_unstable();
    if names != expected || plain.get(index.pk).map(String::as_str) != Some(partition) {
        return Err(invalid());
    }
    if plain.values().any(|v| v.is_empty() || v.len() > MAX_CURSOR_VALUE_LEN) {
        return Err(invalid());
    }
    Ok(plain.into_iter().map(|(name, value)| (name, s(value))).collect())
}

/// DynamoDB's size of an item in bytes, by AWS's rules: attribute names plus values (strings and binaries by
/// length, numbers about one byte per two digits plus one, lists and maps 3 bytes plus 1 per element plus
/// their contents, booleans and nulls 1 byte).
pub fn item_size(item: &Item) -> usize {
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

/// Rounds of a batch read or write that still leaves unprocessed keys or items before it gives up.
const BATCH_ATTEMPTS: u32 = 8;
/// Items in one BatchWriteItem.
const BATCH_WRITE_ITEMS: usize = 25;

/// One table: the client and the table's name, with the requests every adapter makes on it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Table {
    client: Client,
    name: String,
}

impl Table {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Self { client, name: name.into() }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A table on the same client.
    pub fn sibling(&self, name: impl Into<String>) -> Self {
        Self::new(self.client.clone(), name)
    }

    /// The item under `key`, read consistently.
    pub fn get(&self, key: Item) -> BoxFuture<'_, Result<Option<Item>>> {
        self.read(key, true)
    }

    /// The item under `key`, read consistently, as a `T`.
    pub fn get_as<T: DeserializeOwned + 'static>(&self, key: Item) -> BoxFuture<'_, Result<Option<T>>> {
        Box::pin(async move { self.read(key, true).await?.map(from_item).transpose() })
    }

    /// The item under `key`, read consistently or not.
    pub fn read(&self, key: Item, consistent: bool) -> BoxFuture<'_, Result<Option<Item>>> {
        Box::pin(async move {
            let output = self
                .client
                .get_item()
                .table_name(&self.name)
                .set_key(Some(key))
                .consistent_read(consistent)
                .send()
                .await
                .map_err(sdk_error)?;
            Ok(output.item)
        })
    }

    /// Puts `item` unless an item with its key exists (`attribute_not_exists(pk)`): `false` when one does.
    pub fn put_new(&self, item: Item) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move {
            applied(self.put_item().set_item(Some(item)).condition_expression("attribute_not_exists(pk)").send().await)
        })
    }

    pub fn put_item(&self) -> PutItemFluentBuilder {
        self.client.put_item().table_name(&self.name)
    }

    pub fn update_item(&self) -> UpdateItemFluentBuilder {
        self.client.update_item().table_name(&self.name)
    }

    pub fn delete_item(&self) -> DeleteItemFluentBuilder {
        self.client.delete_item().table_name(&self.name)
    }

    pub fn query(&self) -> QueryFluentBuilder {
        self.client.query().table_name(&self.name)
    }

    pub fn scan(&self) -> ScanFluentBuilder {
        self.client.scan().table_name(&self.name)
    }

    /// Every item a query finds, page after page.
    pub fn query_all(&self, query: QueryFluentBuilder) -> BoxFuture<'static, Result<Vec<Item>>> {
        Box::pin(all_pages(move |start| {
            let page = query.clone().set_exclusive_start_key(start).send();
            async move {
                let page = page.await.map_err(sdk_error)?;
                Ok((page.items.unwrap_or_default(), page.last_evaluated_key))
            }
        }))
    }

    /// One page of `index`'s `partition`, newest (greatest sort key) first, `limit` items at most.
    pub fn newest_first<'a>(
        &'a self,
        index: Index,
        partition: &'a str,
        limit: commerce_domain::catalog::PageLimit,
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(Vec<Item>, Option<String>)>> {
        let query = self
            .query()
            .index_name(index.name)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", index.pk)
            .expression_attribute_values(":pk", s(partition))
            .scan_index_forward(false)
            .limit(i32::try_from(limit.get()).unwrap_or(i32::MAX));
        self.page(query, index, partition, cursor)
    }

    /// One page of `query`, a query on `index` within `partition`: resumed from `cursor` (checked by
    /// [`decode_cursor`] before anything is read), with the cursor of the next page if there is one.
    pub fn page<'a>(
        &'a self,
        query: QueryFluentBuilder,
        index: Index,
        partition: &'a str,
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(Vec<Item>, Option<String>)>> {
        Box::pin(async move {
            let start = cursor.map(|raw| decode_cursor(raw, index, partition)).transpose()?;
            let output = query.set_exclusive_start_key(start).send().await.map_err(sdk_error)?;
            let next = output.last_evaluated_key.as_ref().and_then(encode_cursor);
            Ok((output.items.unwrap_or_default(), next))
        })
    }

    /// Every item a scan finds, page after page.
    pub fn scan_all(&self, scan: ScanFluentBuilder) -> BoxFuture<'static, Result<Vec<Item>>> {
        Box::pin(all_pages(move |start| {
            let page = scan.clone().set_exclusive_start_key(start).send();
            async move {
                let page = page.await.map_err(sdk_error)?;
                Ok((page.items.unwrap_or_default(), page.last_evaluated_key))
            }
        }))
    }

    /// Runs a transaction: `None` when it applied, its cancellation when a condition failed (a cancellation by
    /// a conflict with another transaction is `Transient`).
    pub fn transact(&self, items: Vec<TransactWriteItem>) -> BoxFuture<'_, Result<Option<Cancellation>>> {
        Box::pin(async move {
            match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
                Ok(_) => Ok(None),
                Err(err) => match Cancellation::of(&err) {
                    Some(cancelled) if cancelled.conflicted() => {
                        Err(DomainError::Transient("transaction conflict".into()))
                    }
                    Some(cancelled) => Ok(Some(cancelled)),
                    None => Err(sdk_error(err)),
                },
            }
        })
    }

    /// A transaction's put of `item`.
    pub fn put(&self, item: Item) -> PutBuilder {
        Put::builder().table_name(&self.name).set_item(Some(item))
    }

    /// A transaction's update of the item under `key`.
    pub fn update(&self, key: Item, expression: impl Into<String>) -> UpdateBuilder {
        Update::builder().table_name(&self.name).set_key(Some(key)).update_expression(expression)
    }

    /// A transaction's delete of the item under `key`.
    pub fn delete(&self, key: Item) -> DeleteBuilder {
        Delete::builder().table_name(&self.name).set_key(Some(key))
    }

    /// A transaction's condition check on the item under `key`.
    pub fn condition_check(&self, key: Item) -> ConditionCheckBuilder {
        ConditionCheck::builder().table_name(&self.name).set_key(Some(key))
    }

    /// Puts `items` as they are, unconditionally, in BatchWriteItem calls of 25 (unprocessed items again
    /// after a [`backoff`]).
    pub fn batch_put<'a>(&'a self, items: &'a [Item]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            for chunk in items.chunks(BATCH_WRITE_ITEMS) {
                let mut pending = chunk
                    .iter()
                    .map(|item| {
                        let put = built(PutRequest::builder().set_item(Some(item.clone())).build())?;
                        Ok(WriteRequest::builder().put_request(put).build())
                    })
                    .collect::<Result<Vec<_>>>()?;
                for attempt in 0..BATCH_ATTEMPTS {
                    let output = self
                        .client
                        .batch_write_item()
                        .request_items(&self.name, pending)
                        .send()
                        .await
                        .map_err(sdk_error)?;
                    pending = output.unprocessed_items.and_then(|mut u| u.remove(&self.name)).unwrap_or_default();
                    if pending.is_empty() || attempt + 1 == BATCH_ATTEMPTS {
                        break;
                    }
                    tokio::time::sleep(backoff(attempt)).await;
                }
                if !pending.is_empty() {
                    return Err(DomainError::Transient("batch write left unprocessed items".into()));
                }
            }
            Ok(())
        })
    }

    /// The items a BatchGetItem request (at most 100 keys) finds, unprocessed keys asked again after a
    /// [`backoff`].
    pub fn batch_get(&self, request: KeysAndAttributes) -> BoxFuture<'_, Result<Vec<Item>>> {
        Box::pin(async move {
            let mut found = Vec::new();
            let mut pending = request;
            for attempt in 0..BATCH_ATTEMPTS {
                let output =
                    self.client.batch_get_item().request_items(&self.name, pending).send().await.map_err(sdk_error)?;
                found.extend(output.responses.and_then(|mut r| r.remove(&self.name)).unwrap_or_default());
                match output.unprocessed_keys.and_then(|mut u| u.remove(&self.name)) {
                    Some(unprocessed) if !unprocessed.keys().is_empty() => pending = unprocessed,
                    _ => return Ok(found),
                }
                if attempt + 1 < BATCH_ATTEMPTS {
                    tokio::time::sleep(backoff(attempt)).await;
                }
            }
            Err(DomainError::Transient("batch get left unprocessed keys".into()))
        })
    }
}

/// Reads page after page: `page(start)` reads the page that begins after `start` (from the beginning for
/// `None`) and answers its items and its LastEvaluatedKey, until there is none.
async fn all_pages<F, P>(mut page: F) -> Result<Vec<Item>>
where
    F: FnMut(Option<Item>) -> P,
    P: Future<Output = Result<(Vec<Item>, Option<Item>)>>,
{
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let (found, last) = page(start.take()).await?;
        items.extend(found);
        match last {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return Ok(items),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_domain::flash_sale::TicketStatus;
    use commerce_domain::inventory::reservation::{ReleaseReason, ReservationStatus};

    fn listing_key() -> Item {
        HashMap::from([
            ("pk".to_string(), AttributeValue::S("PRODUCT#prd_1".into())),
            ("sk".to_string(), AttributeValue::S("LISTING#cat_a".into())),
            ("gsi1pk".to_string(), AttributeValue::S("LISTING#cat_a".into())),
            ("gsi1sk".to_string(), AttributeValue::S("2025#prd_1".into())),
        ])
    }

    fn is_cursor_error(result: Result<Item>) -> bool {
        matches!(result, Err(DomainError::InvalidParameter { ref field, .. }) if field == "cursor")
    }

    #[test]
    fn round_trips() {
        let raw = encode_cursor(&listing_key()).unwrap();
        assert_eq!(decode_cursor(&raw, GSI1, "LISTING#cat_a").unwrap(), listing_key());
    }

    #[test]
    fn rejects_tampering() {
        let raw = encode_cursor(&listing_key()).unwrap();
        assert!(is_cursor_error(decode_cursor(&raw, GSI1, "LISTING#cat_b")), "other partition");
        assert!(is_cursor_error(decode_cursor(&raw, GSI2, "LISTING#cat_a")), "other index");
        assert!(is_cursor_error(decode_cursor("!!!", GSI1, "LISTING#cat_a")), "not base64");
        assert!(is_cursor_error(decode_cursor(&URL_SAFE_NO_PAD.encode("[1]"), GSI1, "LISTING#cat_a")), "not a key");
        let mut flipped = raw.into_bytes();
        flipped[3] ^= 0x01;
        assert!(is_cursor_error(decode_cursor(&String::from_utf8_lossy(&flipped), GSI1, "LISTING#cat_a")));
    }

    #[test]
    fn cursor_round_trips_and_rejects_other_partitions() {
        let key = Item::from([
            ("pk".to_string(), s("ORDER#ord_1")),
            ("sk".to_string(), s("ORDER")),
            ("gsi1pk".to_string(), s("CUSTOMER#u1")),
            ("gsi1sk".to_string(), s("2025-01-01T00:00:00.000Z#ord_1")),
        ]);
        let cursor = encode_cursor(&key).unwrap();
        assert_eq!(decode_cursor(&cursor, GSI1, "CUSTOMER#u1").unwrap(), key);
        assert!(decode_cursor(&cursor, GSI1, "CUSTOMER#u2").is_err());
        assert!(decode_cursor(&cursor, GSI2, "CUSTOMER#u1").is_err());
        assert!(decode_cursor("%%%", GSI1, "CUSTOMER#u1").is_err());
    }

    #[test]
    fn statuses_are_written_by_their_serde_names() {
        let written = [
            (to_av(&TicketStatus::Waiting), "waiting"),
            (to_av(&TicketStatus::Won), "won"),
            (to_av(&TicketStatus::Purchased), "purchased"),
            (to_av(&TicketStatus::SoldOut), "sold_out"),
            (to_av(&TicketStatus::Expired), "expired"),
            (to_av(&TicketStatus::Released), "released"),
            (to_av(&ReservationStatus::Held), "held"),
            (to_av(&ReservationStatus::Released), "released"),
            (to_av(&ReservationStatus::Committed), "committed"),
            (to_av(&ReservationStatus::Expired), "expired"),
            (to_av(&ReleaseReason::Explicit), "explicit"),
            (to_av(&ReleaseReason::Expired), "expired"),
            (to_av(&ReleaseReason::Replaced), "replaced"),
        ];
        for (value, name) in written {
            assert_eq!(value.unwrap(), s(name));
        }
    }

    #[test]
    fn names_declare_every_placeholder_once() {
        let declared = names(&["SET #avail = #avail - :q, #free = #free - :q", "#avail >= :q AND #flash_sold > :z"]);
        let expected: HashMap<String, String> =
            ["avail", "free", "flash_sold"].into_iter().map(|n| (format!("#{n}"), n.to_owned())).collect();
        assert_eq!(declared, expected);
    }
}
