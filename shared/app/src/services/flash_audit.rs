//! The flash-sale stock checks the schedule can afford every minute: one consistent read of each live sale's
//! shard items, the same read the sweep makes. The whole invariant
//! ([`commerce_domain::flash_sale::check_sale`]: units in shards + held + purchased == allocated, per-customer
//! limits) needs every ticket of a sale, a scan, so it runs in tests and the benchmark, not here.

use crate::ports::{FlashAdmissions, FlashReconciler};
use commerce_domain::error::Result;
use commerce_domain::flash_sale::FlashSale;
use serde::Serialize;

/// What one audit read and found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    /// Live (not yet reconciled) sales checked.
    pub sales: usize,
    /// Broken rules found, each logged as an error with its sale.
    pub violations: usize,
}

/// The rules a single read of each shard item can prove broken, whatever runs meanwhile (one item's read is
/// serializable, so none of them can be a moment between two writes):
/// - no shard below zero: the gate gave a unit it did not have (an oversell);
/// - no shard above the sale's units: units came back that were never allocated.
///
/// The sum over shards is not checked: the shards are read one by one, so a rebalance between two reads can
/// count the units it moves twice.
pub fn shard_violations(sale: &FlashSale, shards: &[i64]) -> Vec<String> {
    let units = i64::from(sale.units);
    let mut violations = Vec::new();
    for (i, held) in shards.iter().enumerate() {
        if *held < 0 {
            violations.push(format!("shard {i} holds {held} units"));
        } else if *held > units {
            violations.push(format!("shard {i} holds {held} units, more than the {units} allocated"));
        }
    }
    violations
}

/// Checks every live sale's shards ([`shard_violations`]); each violation is logged as an error.
#[tracing::instrument(skip_all)]
pub async fn audit_live_sales(sales: &(impl FlashReconciler + FlashAdmissions)) -> Result<AuditReport> {
    let mut report = AuditReport::default();
    for sale in sales.live_sales().await? {
        let shards = sales.shard_units(&sale).await?;
        for violation in shard_violations(&sale, &shards) {
            tracing::error!(sale_id = %sale.sale_id, %violation, "flash-sale stock invariant violated");
            report.violations += 1;
        }
        report.sales += 1;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sale(units: u32, shards: u32) -> FlashSale {
        serde_json::from_value(serde_json::json!({
            "sale_id": "fs_1", "seller_id": "sel_1", "sku": "TS-BLU-M", "warehouse_id": "wh_east",
            "units": units, "price": {"amount": 999, "currency": "USD"},
            "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2026-01-01T01:00:00Z",
            "per_customer_limit": 1, "shards": shards, "hold_seconds": 600, "created_at": "2026-01-01T00:00:00Z"
        }))
        .unwrap()
    }

    #[test]
    fn shards_within_zero_and_the_allocation_break_no_rule() {
        assert!(shard_violations(&sale(10, 3), &[4, 0, 3]).is_empty());
        assert!(shard_violations(&sale(10, 2), &[10, 0]).is_empty(), "a rebalance may move every unit to one shard");
    }

    #[test]
    fn a_negative_shard_or_one_over_the_allocation_is_a_violation() {
        let found = shard_violations(&sale(10, 3), &[-1, 11, 2]);
        assert_eq!(found, ["shard 0 holds -1 units", "shard 1 holds 11 units, more than the 10 allocated"]);
    }
}
