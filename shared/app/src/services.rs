//! Use cases, generic over ports.

pub mod cart;
pub mod catalog;
pub mod checkout;
pub mod email;
pub mod flash_audit;
pub mod flash_sale;
pub mod idempotency;
pub mod inventory;
pub mod orders;
pub mod payments;
pub mod promotions;
pub mod quote;
pub mod reviews;
pub mod search;
pub mod shipping_methods;
pub mod stock_alerts;
pub mod tax;
pub mod tracking;
pub mod webhooks;
