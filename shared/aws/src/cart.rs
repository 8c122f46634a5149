//! The carts table (layout in docs/DATA_MODEL.md):
//! - cart `CART#<id> / CART`: the whole cart (owner, status, lines with price snapshots, version), and `ttl`
//!   (epoch seconds of `expires_at`) for DynamoDB TTL; code treats an expired cart as gone before TTL acts.
//! - shopper pointer `SHOPPER#<user> / CART`: `cart_id` of the shopper's cart, so a shopper has one cart.
//!
//! Every write is conditional on the version that was read (`version = :previous`); a merge writes both
//! carts in one transaction.

use crate::dynamo::sdk_error;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use commerce_app::ports::CartStore;
use commerce_domain::cart::Cart;
use commerce_domain::error::ErrorCode;
use commerce_domain::error::{DomainError, Result};
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn key(pk: String) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s("CART"))])
}

fn cart_key(cart_id: &str) -> Item {
    key(format!("CART#{cart_id}"))
}

fn pointer_key(user_id: &str) -> Item {
    key(format!("SHOPPER#{user_id}"))
}

fn built<T, E: std::error::Error + Send + Sync + 'static>(result: std::result::Result<T, E>) -> Result<T> {
    result.map_err(DomainError::unexpected)
}

/// The carts table. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DynamoCarts {
    client: Client,
    table: String,
}

impl DynamoCarts {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// The item of `cart` as written: its version one past the version it was read at.
    fn item(cart: &Cart) -> Result<Item> {
        let mut next = cart.clone();
        next.version += 1;
        let mut item: Item = serde_dynamo::aws_sdk_dynamodb_1::to_item(&next).map_err(DomainError::unexpected)?;
        item.extend(cart_key(&cart.cart_id));
        item.insert("entity".into(), s("cart"));
        item.insert("ttl".into(), AttributeValue::N(cart.expires_at.timestamp().to_string()));
        Ok(item)
    }

    /// A conditional put of a cart: new (`version == 0`) or replacing the stored `version`.
    fn put(&self, cart: &Cart) -> Result<Put> {
        let builder = Put::builder().table_name(&self.table).set_item(Some(Self::item(cart)?));
        let builder = if cart.version == 0 {
            builder.condition_expression("attribute_not_exists(pk)")
        } else {
            builder
                .condition_expression("version = :previous")
                .expression_attribute_values(":previous", AttributeValue::N(cart.version.to_string()))
        };
        built(builder.build())
    }

    async fn transact(&self, puts: Vec<Put>) -> Result<bool> {
        let actions = puts.into_iter().map(|p| TransactWriteItem::builder().put(p).build()).collect();
        match self.client.transact_write_items().set_transact_items(Some(actions)).send().await {
            Ok(_) => Ok(true),
            Err(err) => match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancelled))
                    if cancelled
                        .cancellation_reasons()
                        .iter()
                        .any(|r| matches!(r.code(), Some("ConditionalCheckFailed" | "TransactionConflict"))) =>
                {
                    Ok(false)
                }
                _ => Err(sdk_error(err)),
            },
        }
    }
}

impl CartStore for DynamoCarts {
    async fn get_cart(&self, cart_id: &str) -> Result<Option<Cart>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(cart_key(cart_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        output
            .item
            .map(|item| serde_dynamo::aws_sdk_dynamodb_1::from_item(item).map_err(DomainError::unexpected))
            .transpose()
    }

    async fn shopper_cart_id(&self, user_id: &str) -> Result<Option<String>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(pointer_key(user_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(output.item.and_then(|item| item.get("cart_id").and_then(|v| v.as_s().ok()).cloned()))
    }

    async fn create_cart(&self, cart: &Cart) -> Result<()> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::item(cart)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Err(DomainError::conflict(ErrorCode::CartExists, "a cart with this id exists"))
            }
            Err(err) => Err(sdk_error(err)),
        }
    }

    async fn create_shopper_cart(&self, user_id: &str, cart: &Cart, replacing: Option<&str>) -> Result<bool> {
        let mut pointer = pointer_key(user_id);
        pointer.insert("entity".into(), s("shopper_cart"));
        pointer.insert("cart_id".into(), s(&cart.cart_id));
        let builder = Put::builder().table_name(&self.table).set_item(Some(pointer));
        let builder = match replacing {
            None => builder.condition_expression("attribute_not_exists(pk)"),
            Some(old) => builder.condition_expression("cart_id = :old").expression_attribute_values(":old", s(old)),
        };
        self.transact(vec![built(builder.build())?, self.put(cart)?]).await
    }

    async fn save_cart(&self, cart: &Cart) -> Result<bool> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::item(cart)?))
            .condition_expression("version = :previous")
            .expression_attribute_values(":previous", AttributeValue::N(cart.version.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(err) => Err(sdk_error(err)),
        }
    }

    async fn save_merge(&self, shopper: &Cart, guest: &Cart) -> Result<bool> {
        self.transact(vec![self.put(shopper)?, self.put(guest)?]).await
    }
}
