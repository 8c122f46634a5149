//! Pure, synchronous domain types. No I/O, no SDK types.

pub mod ids;
pub mod inventory;
pub mod cart;
pub mod catalog;
pub mod money;
pub mod idempotency;
pub mod order;
pub mod payment;
pub mod search;
pub mod flash_sale;
