//! The adapters: implementations of the application's ports on DynamoDB, SQS, Step Functions, Secrets Manager,
//! the search engines, the payment providers, the shipping carriers and Cognito's tokens. Depends on the
//! application and the domain.

pub mod cart;
pub mod catalog;
pub mod config;
pub mod dynamo;
pub mod flash_sale;
pub mod inventory;
pub mod jwt;
pub mod mail;
pub mod orders;
pub mod outbound;
pub mod payments;
pub mod promotions;
pub mod reviews;
#[cfg(feature = "search")]
pub mod search;
pub mod sharded;
pub mod shipping;
pub mod shipping_config;
#[cfg(feature = "streams")]
pub mod streams;
pub mod webhooks;
