//! The sharded counter: a count split over shard items `<owner>#SHARD#<k> / SHARD` (attribute `units`), so a
//! hot count is not capped by one item's write limit (about 1,000 writes per second per partition). A take is a
//! conditional decrement of one shard (`units >= k`); a shard that runs dry sends the taker to the others.
//!
//! Two counters stand on it: the flash-sale gate (`SALE#<id>`, units of stock) and a promotion's uses
//! (`PROMO#<id>`, uses left, with `held` and `used` beside `units` so that `used + held + units` per shard is
//! the shard's share of the limit at every consistent read).

use crate::dynamo::{key, n, text, Item, Table};
use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::KeysAndAttributes;
use commerce_domain::error::Result;

/// The counter of `owner` (the partition-key prefix of its shards) in `table`.
#[derive(Debug, Clone)]
pub struct ShardedCounter<'a> {
    table: &'a Table,
    owner: String,
}

impl<'a> ShardedCounter<'a> {
    pub fn new(table: &'a Table, owner: impl Into<String>) -> Self {
        Self { table, owner: owner.into() }
    }

    /// The key of shard `k`.
    pub fn key(&self, k: u32) -> Item {
        key(format!("{}#SHARD#{k}", self.owner), "SHARD")
    }

    /// Shard `k`'s first item: `units`, with whatever else its owner keeps on it.
    pub fn seed(&self, k: u32, units: i64) -> Item {
        let mut item = self.key(k);
        item.insert("units".into(), n(units));
        item
    }

    /// Takes `units` from shard `k`, if it has them: `ADD units -units` on `units >= units`, followed by `also`
    /// (more `ADD` clauses of the owner's, e.g. `, held :one`).
    pub fn take(&self, k: u32, units: i64, also: &str) -> UpdateBuilder {
        self.table
            .update(self.key(k), format!("ADD units :take_minus{also}"))
            .condition_expression("units >= :take")
            .expression_attribute_values(":take_minus", n(-units))
            .expression_attribute_values(":take", n(units))
    }

    /// Gives `units` back to shard `k`: `ADD units units`, followed by `also`; the shard must exist.
    pub fn refill(&self, k: u32, units: i64, also: &str) -> UpdateBuilder {
        self.table
            .update(self.key(k), format!("ADD units :refill{also}"))
            .condition_expression("attribute_exists(units)")
            .expression_attribute_values(":refill", n(units))
    }

    /// Every shard item of `shards` with its index, read consistently (at most 100 shards).
    pub async fn read(&self, shards: u32) -> Result<Vec<(u32, Item)>> {
        let keys: Vec<Item> = (0..shards).map(|k| self.key(k)).collect();
        let request =
            KeysAndAttributes::builder().set_keys(Some(keys)).consistent_read(true).build().expect("keys are set");
        let mut found = Vec::with_capacity(shards as usize);
        for item in self.table.batch_get(request).await? {
            let pk = text(&item, "pk").cloned().unwrap_or_default();
            if let Some(k) = pk.rsplit('#').next().and_then(|k| k.parse::<u32>().ok()) {
                found.push((k, item));
            }
        }
        found.sort_by_key(|(k, _)| *k);
        Ok(found)
    }
}
