//! Implementations of the ports: DynamoDB, SQS, Step Functions, search engines, payment providers.

pub mod cart;
pub mod catalog;
pub mod dynamo;
pub mod flash_sale;
pub mod inventory;
pub mod orders;
pub mod payments;
#[cfg(feature = "search")]
pub mod search;
