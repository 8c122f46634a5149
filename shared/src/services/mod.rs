//! Use cases, generic over ports.

pub mod cart;
pub mod catalog;
pub mod flash_sale;
pub mod inventory;
pub mod search;
pub mod checkout;
pub mod idempotency;
pub mod orders;
pub mod payments;
