//! The domain: types, rules and errors. Pure and synchronous: no I/O, no environment, no AWS SDK, no Lambda
//! runtime, no async runtime. Everything else in the workspace depends on it; it depends on nothing of ours.

pub mod auth;
pub mod cart;
pub mod catalog;
pub mod config;
pub mod email;
pub mod error;
pub mod flash_sale;
pub mod idempotency;
pub mod ids;
pub mod inventory;
pub mod json;
pub mod money;
pub mod order;
pub mod payment;
pub mod pricing;
pub mod product_page;
pub mod promotion;
pub mod review;
pub mod search;
pub mod seller_webhook;
pub mod shipping;
pub mod tax;
pub mod token;
pub mod tracking;
pub mod webhook;

pub use error::DomainError;

/// Property-test inputs at the integer boundaries money and stock rules must survive.
#[cfg(test)]
pub(crate) mod edges {
    use proptest::prelude::*;

    /// `i64::MIN`, `i64::MAX` and their neighbours, zero and ±1, each of `limits` with its neighbours and its
    /// negation, or any `i64`.
    pub fn i64_near(limits: &[i64]) -> impl Strategy<Value = i64> {
        let mut points = vec![i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX];
        for limit in limits {
            points.extend([limit.saturating_sub(1), *limit, limit.saturating_add(1), limit.saturating_neg()]);
        }
        prop_oneof![proptest::sample::select(points), any::<i64>()]
    }
}
