//! Promotions, their codes and their usage counts on the promotions table (`PROMOTIONS_TABLE`). Layout
//! (docs/DATA_MODEL.md, PromotionsTable):
//! - promotion `PROMO#<id> / META`: the whole `Promotion`; gsi1 `OWNER#platform` or `OWNER#SELLER#<seller>` by
//!   creation time (the admin's and each seller's list); an automatic one also gsi2 `AUTO#platform` or
//!   `AUTO#SELLER#<seller>` (what a cart's evaluation reads);
//! - counter shards `PROMO#<id>#SHARD#<k> / SHARD` (the sharded counter the flash-sale gate uses too): `units`
//!   (uses left; 0 and unused when unlimited), `held`, `used`; per shard `units + held + used` is the shard's share
//!   of the limit at every read, so the sum over the shards is exact;
//! - a customer's count `PROMO#<id>#CUST#<customer key> / CUST`: `uses` held or used (kept when the promotion
//!   has a per-customer limit);
//! - a code `CODE#<CODE> / CODE`: the promotion it names; a single-use code also `used_by` (the order).
//!
//! The counts change only in the transactions that append an order's `promotions_held`, `confirmed`,
//! `promotions_released` and `promotions_restored` (see `orders`), each conditional on the order's version, so
//! each happens once per order.

use crate::dynamo::{
    applied, from_item, key, n, num, s, sortable, text, to_item, Cancellation, Item, Table, GSI1, GSI2,
};
use crate::sharded::ShardedCounter;
use aws_sdk_dynamodb::types::TransactWriteItem;
use aws_sdk_dynamodb::Client;
use commerce_app::ports::{CodeRecord, PromotionReader, PromotionWriter};
use commerce_domain::catalog::{Page, PageLimit};
use commerce_domain::error::{DomainError, ErrorCode, Result};
use commerce_domain::flash_sale::split_units;
use commerce_domain::order::{Redemption, UsageChange, UsageStep};
use commerce_domain::promotion::{Promotion, Scope, Usage};
use futures::{FutureExt, StreamExt};

const META: &str = "META";
/// Codes written at once by `add_codes`.
const CODE_WRITES_IN_FLIGHT: usize = 16;

fn meta_key(promotion_id: &str) -> Item {
    key(format!("PROMO#{promotion_id}"), META)
}

fn code_key(code: &str) -> Item {
    key(format!("CODE#{code}"), "CODE")
}

fn customer_key(promotion_id: &str, customer: &str) -> Item {
    key(format!("PROMO#{promotion_id}#CUST#{customer}"), "CUST")
}

/// The promotion's usage counter.
pub(crate) fn counter<'a>(table: &'a Table, promotion_id: &str) -> ShardedCounter<'a> {
    ShardedCounter::new(table, format!("PROMO#{promotion_id}"))
}

fn owner_pk(scope: &Scope) -> String {
    match scope {
        Scope::Platform => "OWNER#platform".into(),
        Scope::Seller { seller_id } => format!("OWNER#SELLER#{seller_id}"),
    }
}

fn auto_pk(scope: &Scope) -> String {
    match scope {
        Scope::Platform => "AUTO#platform".into(),
        Scope::Seller { seller_id } => format!("AUTO#SELLER#{seller_id}"),
    }
}

fn promotion_item(promotion: &Promotion) -> Result<Item> {
    let mut item = to_item(promotion)?;
    item.extend(meta_key(&promotion.promotion_id));
    item.insert("entity".into(), s("promotion"));
    item.insert("gsi1pk".into(), s(owner_pk(&promotion.scope)));
    item.insert("gsi1sk".into(), s(format!("{}#{}", sortable(promotion.created_at), promotion.promotion_id)));
    if promotion.code.is_none() {
        item.insert("gsi2pk".into(), s(auto_pk(&promotion.scope)));
        item.insert("gsi2sk".into(), s(&promotion.promotion_id));
    }
    Ok(item)
}

fn code_item(code: &str, promotion_id: &str, single_use: bool) -> Item {
    let mut item = code_key(code);
    item.insert("entity".into(), s("promotion_code"));
    item.insert("promotion_id".into(), s(promotion_id));
    item.insert("single_use".into(), aws_sdk_dynamodb::types::AttributeValue::Bool(single_use));
    item
}

fn transact_update(update: aws_sdk_dynamodb::types::builders::UpdateBuilder) -> TransactWriteItem {
    TransactWriteItem::builder().update(update.build().expect("table, key and expression are set")).build()
}

fn transact_put(table: &Table, item: Item, condition: Option<&str>) -> TransactWriteItem {
    let put = table.put(item);
    let put = match condition {
        Some(c) => put.condition_expression(c),
        None => put,
    };
    TransactWriteItem::builder().put(put.build().expect("table and item are set")).build()
}

/// What an action of a usage transaction writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UsagePart {
    Shard,
    Customer,
    Code,
}

/// The actions that write one use's change, each with what it writes (a hold's conditions: a use left on the
/// shard, the customer under their limit, the single-use code free).
pub(crate) fn usage_actions(table: &Table, change: &UsageChange) -> Vec<(TransactWriteItem, UsagePart)> {
    let r: &Redemption = &change.redemption;
    let shard = counter(table, &r.promotion_id);
    let k = change.shard;
    let one = |u: aws_sdk_dynamodb::types::builders::UpdateBuilder| {
        u.expression_attribute_values(":one", n(1)).expression_attribute_values(":minus_one", n(-1))
    };
    let plain =
        |expression: &str| one(table.update(shard.key(k), expression).condition_expression("attribute_exists(pk)"));
    let shard_update = match (change.step, r.limited) {
        (UsageStep::Hold, true) => one(shard.take(k, 1, ", held :one")),
        (UsageStep::Hold, false) => plain("ADD held :one"),
        (UsageStep::Commit, _) => plain("ADD held :minus_one, used :one"),
        (UsageStep::Release, true) => one(shard.refill(k, 1, ", held :minus_one")),
        (UsageStep::Release, false) => plain("ADD held :minus_one"),
        (UsageStep::Restore, true) => one(shard.refill(k, 1, ", used :minus_one")),
        (UsageStep::Restore, false) => plain("ADD used :minus_one"),
    };
    let mut actions = vec![(transact_update(shard_update), UsagePart::Shard)];
    if change.step == UsageStep::Commit {
        return actions;
    }
    if let (Some(customer), Some(limit)) = (&change.customer_key, r.per_customer_limit) {
        let update = table.update(customer_key(&r.promotion_id, customer), "ADD uses :delta");
        let update = if change.step == UsageStep::Hold {
            update
                .condition_expression("attribute_not_exists(uses) OR uses < :limit")
                .expression_attribute_values(":limit", n(limit))
                .expression_attribute_values(":delta", n(1))
        } else {
            update.expression_attribute_values(":delta", n(-1))
        };
        actions.push((transact_update(update), UsagePart::Customer));
    }
    if let (true, Some(code)) = (r.single_use, &r.code) {
        let update = if change.step == UsageStep::Hold {
            table
                .update(code_key(code), "SET used_by = :order")
                .condition_expression("attribute_exists(pk) AND attribute_not_exists(used_by)")
        } else {
            table.update(code_key(code), "REMOVE used_by").condition_expression("used_by = :order")
        };
        actions.push((
            transact_update(update.expression_attribute_values(":order", s(&change.order_id))),
            UsagePart::Code,
        ));
    }
    actions
}

/// Promotions on their table, implementing their ports. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DynamoPromotions {
    table: Table,
}

impl DynamoPromotions {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { table: Table::new(client, table) }
    }

    /// Runs a transaction (see [`Table::transact`]).
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<Option<Cancellation>> {
        self.table.transact(items).await
    }

    /// The shard updates that move the uses left by `delta` (a raised or lowered limit): added evenly, or taken
    /// from the shards that have them (each conditional on having them).
    async fn limit_change(&self, promotion: &Promotion, delta: i64) -> Result<Vec<TransactWriteItem>> {
        let shards = counter(&self.table, &promotion.promotion_id);
        if delta >= 0 {
            let adds = split_units(u32::try_from(delta).unwrap_or(u32::MAX), promotion.shards);
            return Ok(adds
                .into_iter()
                .zip(0u32..)
                .filter(|(units, _)| *units > 0)
                .map(|(units, k)| transact_update(shards.refill(k, i64::from(units), "")))
                .collect());
        }
        let mut left = -delta;
        let mut actions = Vec::new();
        for (k, item) in shards.read(promotion.shards).await? {
            let take = num(&item, "units").min(left);
            if take > 0 {
                actions.push(transact_update(shards.take(k, take, "")));
                left -= take;
            }
        }
        if left > 0 {
            return Err(DomainError::validation("usage_limit", "is below the uses already taken"));
        }
        Ok(actions)
    }
}

impl PromotionReader for DynamoPromotions {
    async fn get_promotion(&self, promotion_id: &str) -> Result<Option<Promotion>> {
        self.table.read(meta_key(promotion_id), true).await?.map(from_item).transpose()
    }

    async fn find_code(&self, code: &str) -> Result<Option<CodeRecord>> {
        let Some(item) = self.table.read(code_key(code), true).await? else {
            return Ok(None);
        };
        Ok(Some(CodeRecord {
            code: code.to_owned(),
            promotion_id: text(&item, "promotion_id").cloned().unwrap_or_default(),
            single_use: item.get("single_use").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false),
            used_by: text(&item, "used_by").cloned(),
        }))
    }

    async fn automatic_promotions(&self, sellers: &[String]) -> Result<Vec<Promotion>> {
        let mut partitions = vec![auto_pk(&Scope::Platform)];
        partitions.extend(sellers.iter().map(|seller_id| auto_pk(&Scope::Seller { seller_id: seller_id.clone() })));
        let queries = partitions.iter().map(|pk| {
            let query = self
                .table
                .query()
                .index_name(GSI2.name)
                .key_condition_expression("gsi2pk = :pk")
                .expression_attribute_values(":pk", s(pk));
            self.table.query_all(query)
        });
        let mut found = Vec::new();
        for items in futures::future::try_join_all(queries).await? {
            for item in items {
                found.push(from_item(item)?);
            }
        }
        Ok(found)
    }

    async fn usage(&self, promotion: &Promotion) -> Result<Usage> {
        let mut usage = Usage { remaining: promotion.usage_limit.map(|_| 0), ..Usage::default() };
        for (_, item) in counter(&self.table, &promotion.promotion_id).read(promotion.shards).await? {
            usage.used += u64::try_from(num(&item, "used")).unwrap_or(0);
            usage.held += u64::try_from(num(&item, "held")).unwrap_or(0);
            if let Some(remaining) = usage.remaining.as_mut() {
                *remaining += u64::try_from(num(&item, "units")).unwrap_or(0);
            }
        }
        Ok(usage)
    }

    async fn shards_with_uses(&self, redemption: &Redemption) -> Result<Vec<u32>> {
        if !redemption.limited {
            return Ok((0..redemption.shards.max(1)).collect());
        }
        let shards = counter(&self.table, &redemption.promotion_id).read(redemption.shards).await?;
        Ok(shards.into_iter().filter(|(_, item)| num(item, "units") > 0).map(|(k, _)| k).collect())
    }

    async fn customer_uses(&self, promotion_id: &str, customer: &str) -> Result<u32> {
        let item = self.table.read(customer_key(promotion_id, customer), true).await?;
        Ok(item.map_or(0, |item| u32::try_from(num(&item, "uses")).unwrap_or(0)))
    }
}

impl PromotionWriter for DynamoPromotions {
    async fn create_promotion(&self, promotion: &Promotion) -> Result<()> {
        let mut items = vec![transact_put(&self.table, promotion_item(promotion)?, Some("attribute_not_exists(pk)"))];
        let shards = counter(&self.table, &promotion.promotion_id);
        let units = split_units(promotion.usage_limit.unwrap_or(0), promotion.shards);
        for (units, k) in units.into_iter().zip(0u32..) {
            let mut item = shards.seed(k, i64::from(units));
            item.insert("held".into(), n(0));
            item.insert("used".into(), n(0));
            items.push(transact_put(&self.table, item, None));
        }
        if let Some(code) = &promotion.code {
            let item = code_item(code, &promotion.promotion_id, false);
            items.push(transact_put(&self.table, item, Some("attribute_not_exists(pk)")));
        }
        let code_at = items.len() - 1;
        match self.transact(items).await? {
            None => Ok(()),
            Some(cancelled) if promotion.code.is_some() && cancelled.failed(code_at) => {
                Err(DomainError::conflict(ErrorCode::PromotionCodeTaken, "another promotion has this code"))
            }
            Some(_) => Err(DomainError::conflict(ErrorCode::VersionConflict, "the promotion already exists")),
        }
    }

    async fn replace_promotion(&self, current: &Promotion, next: &Promotion) -> Result<()> {
        let put = self
            .table
            .put(promotion_item(next)?)
            .condition_expression("#version = :expected")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":expected", n(current.version));
        let mut items = vec![TransactWriteItem::builder().put(put.build().expect("table and item are set")).build()];
        if let (Some(before), Some(after)) = (current.usage_limit, next.usage_limit) {
            items.extend(self.limit_change(current, i64::from(after) - i64::from(before)).await?);
        }
        match self.transact(items).await? {
            None => Ok(()),
            Some(cancelled) if cancelled.failed(0) => {
                Err(DomainError::conflict(ErrorCode::VersionConflict, "the promotion changed; read it again"))
            }
            Some(_) => Err(DomainError::conflict(
                ErrorCode::ConcurrentUpdate,
                "uses were taken while the limit changed; try again",
            )),
        }
    }

    async fn list_promotions(&self, scope: &Scope, limit: PageLimit, cursor: Option<&str>) -> Result<Page<Promotion>> {
        let partition = owner_pk(scope);
        let (found, next_cursor) = self.table.newest_first(GSI1, &partition, limit, cursor).await?;
        let items = found.into_iter().map(from_item).collect::<Result<Vec<_>>>()?;
        Ok(Page { items, next_cursor })
    }

    async fn add_codes(&self, promotion_id: &str, codes: &[String]) -> Result<Vec<String>> {
        let writes = codes.iter().cloned().map(|code| {
            let put = self
                .table
                .put_item()
                .set_item(Some(code_item(&code, promotion_id, true)))
                .condition_expression("attribute_not_exists(pk)")
                .send();
            async move { applied(put.await).map(|stored| stored.then_some(code)) }.boxed()
        });
        let stored: Vec<Result<Option<String>>> =
            futures::stream::iter(writes).buffered(CODE_WRITES_IN_FLIGHT).collect().await;
        stored.into_iter().filter_map(Result::transpose).collect()
    }
}
