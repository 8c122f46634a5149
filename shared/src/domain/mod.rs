//! Pure, synchronous domain types. No I/O, no SDK types.

pub mod cart;
pub mod catalog;
pub mod flash_sale;
pub mod idempotency;
pub mod ids;
pub mod inventory;
pub mod money;
pub mod order;
pub mod payment;
pub mod search;
pub mod token;
