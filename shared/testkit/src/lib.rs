//! The test kit: in-memory fakes of the ports, the demo fixtures and HTTP request builders. A dev-dependency
//! only: no production crate depends on it.

pub mod cart;
pub mod catalog;
pub mod dynamo;
pub mod flash_sale;
pub mod http;
pub mod inventory;
pub mod mail;
pub mod orders;
pub mod promotions;
pub mod reviews;
#[cfg(feature = "search")]
pub mod search;
pub mod shipping;
pub mod shipping_config;
pub mod webhooks;
