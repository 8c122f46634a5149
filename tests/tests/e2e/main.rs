//! End to end against one local stack per test binary (started on first use by `system_tests::stack()`).
//! Run after `cargo build --workspace`: `cargo test -p system-tests --test e2e`.

mod caching;
mod carts;
mod catalog;
mod checkout;
mod emails;
mod events;
mod flash_sales;
mod gateway;
mod inventory;
mod orders;
mod pricing;
mod promotions;
mod reviews;
mod search;
mod seller_webhooks;
mod tracking;
mod webhooks;
