//! The carts table (layout in docs/DATA_MODEL.md):
//! - cart `CART#<id> / CART`: the whole cart (owner, status, lines with price snapshots, version), and `ttl`
//!   (epoch seconds of `expires_at`) for DynamoDB TTL; code treats an expired cart as gone before TTL acts.
//! - shopper pointer `SHOPPER#<user> / CART`: `cart_id` of the shopper's cart, so a shopper has one cart.
//! - quote `CART#<id> / QUOTE#<quote_id>`: a shipping quote (its options and fingerprint), `ttl` its expiry.
//!
//! Every write is conditional on the version that was read (`version = :previous`); a merge writes both
//! carts in one transaction.

use crate::dynamo::{applied, built, key, n, s, sdk_error, text, to_item, Cancellation, Item, Table};
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use commerce_app::ports::{CartStore, QuoteStore};
use commerce_domain::cart::Cart;
use commerce_domain::error::ErrorCode;
use commerce_domain::error::{DomainError, Result};
use commerce_domain::ids::QuoteId;
use commerce_domain::shipping::Quote;
use futures::FutureExt;

fn cart_key(cart_id: &str) -> Item {
    key(format!("CART#{cart_id}"), "CART")
}

fn pointer_key(user_id: &str) -> Item {
    key(format!("SHOPPER#{user_id}"), "CART")
}

/// The carts table. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DynamoCarts {
    table: Table,
}

impl DynamoCarts {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { table: Table::new(client, table) }
    }

    /// The item of `cart` as written: its version one past the version it was read at.
    fn item(cart: &Cart) -> Result<Item> {
        let mut next = cart.clone();
        next.version += 1;
        let mut item = to_item(&next)?;
        item.extend(cart_key(&cart.cart_id));
        item.insert("entity".into(), s("cart"));
        item.insert("ttl".into(), n(cart.expires_at.timestamp()));
        Ok(item)
    }

    /// A conditional put of a cart: new (`version == 0`) or replacing the stored `version`.
    fn put(&self, cart: &Cart) -> Result<Put> {
        let builder = self.table.put(Self::item(cart)?);
        let builder = if cart.version == 0 {
            builder.condition_expression("attribute_not_exists(pk)")
        } else {
            builder
                .condition_expression("version = :previous")
                .expression_attribute_values(":previous", n(cart.version))
        };
        built(builder.build())
    }

    async fn transact(&self, puts: Vec<Put>) -> Result<bool> {
        let actions = puts.into_iter().map(|p| TransactWriteItem::builder().put(p).build()).collect();
        match self.table.client().transact_write_items().set_transact_items(Some(actions)).send().boxed().await {
            Ok(_) => Ok(true),
            Err(err) => match Cancellation::of(&err) {
                Some(cancelled) if cancelled.first_failed().is_some() || cancelled.conflicted() => Ok(false),
                _ => Err(sdk_error(err)),
            },
        }
    }
}

fn quote_key(cart_id: &str, quote_id: &QuoteId) -> Item {
    key(format!("CART#{cart_id}"), format!("QUOTE#{quote_id}"))
}

impl QuoteStore for DynamoCarts {
    async fn put_quote(&self, quote: &Quote) -> Result<()> {
        let mut item = to_item(quote)?;
        item.extend(quote_key(&quote.cart_id, &quote.quote_id));
        item.insert("entity".into(), s("quote"));
        item.insert("ttl".into(), n(quote.expires_at.timestamp()));
        if !self.table.put_new(item).await? {
            return Err(DomainError::unexpected(format!("quote {} exists", quote.quote_id)));
        }
        Ok(())
    }

    async fn get_quote(&self, cart_id: &str, quote_id: &QuoteId) -> Result<Option<Quote>> {
        let quote: Option<Quote> = self.table.get_as(quote_key(cart_id, quote_id)).await?;
        Ok(quote.filter(|q| q.cart_id == cart_id))
    }
}

impl CartStore for DynamoCarts {
    async fn get_cart(&self, cart_id: &str) -> Result<Option<Cart>> {
        self.table.get_as(cart_key(cart_id)).await
    }

    async fn shopper_cart_id(&self, user_id: &str) -> Result<Option<String>> {
        Ok(self.table.get(pointer_key(user_id)).await?.and_then(|item| text(&item, "cart_id").cloned()))
    }

    async fn create_cart(&self, cart: &Cart) -> Result<()> {
        if !self.table.put_new(Self::item(cart)?).await? {
            return Err(DomainError::conflict(ErrorCode::CartExists, "a cart with this id exists"));
        }
        Ok(())
    }

    async fn create_shopper_cart(&self, user_id: &str, cart: &Cart, replacing: Option<&str>) -> Result<bool> {
        let mut pointer = pointer_key(user_id);
        pointer.insert("entity".into(), s("shopper_cart"));
        pointer.insert("cart_id".into(), s(&cart.cart_id));
        let builder = self.table.put(pointer);
        let builder = match replacing {
            None => builder.condition_expression("attribute_not_exists(pk)"),
            Some(old) => builder.condition_expression("cart_id = :old").expression_attribute_values(":old", s(old)),
        };
        self.transact(vec![built(builder.build())?, self.put(cart)?]).await
    }

    async fn save_cart(&self, cart: &Cart) -> Result<bool> {
        let result = self
            .table
            .put_item()
            .set_item(Some(Self::item(cart)?))
            .condition_expression("version = :previous")
            .expression_attribute_values(":previous", n(cart.version))
            .send()
            .boxed()
            .await;
        applied(result)
    }

    async fn save_merge(&self, shopper: &Cart, guest: &Cart) -> Result<bool> {
        self.transact(vec![self.put(shopper)?, self.put(guest)?]).await
    }
}
