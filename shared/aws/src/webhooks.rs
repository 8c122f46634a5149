//! The webhooks table (DynamoDB) and the webhook deliveries queue (SQS).
//!
//! Item layout:
//! - endpoint `SELLER#<seller> / WEBHOOK#<webhook id>`: the endpoint's fields (secrets, breaker, budget) and
//!   `version`, which every write after creation is conditional on.
//! - count `SELLER#<seller> / COUNT`: `n`, the seller's endpoints; creating and deleting an endpoint change it
//!   in one transaction with the endpoint, so no race passes the limit.
//! - delivery `WEBHOOK#<webhook id> / DELIVERY#<delivery id>`: the delivery's fields and `version`; `gsi1`
//!   (`WEBHOOK#<webhook id>`, delivery id) lists them newest first (delivery ids start with the event's time);
//!   `expires_at` (TTL) 30 days after creation.

use crate::dynamo::{applied, from_item, key, n, s, to_item, Item, Table, GSI1};
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};
use commerce_app::ports::{DeliveryQueue, DeliveryTask, WebhookDeliveries, WebhookEndpoints};
use commerce_domain::catalog::{Page, PageLimit};
use commerce_domain::error::{DomainError, ErrorCode, Result};
use commerce_domain::seller_webhook::{Delivery, DeliveryView, Endpoint, MAX_ENDPOINTS_PER_SELLER};
use std::time::Duration;

/// How long a delivery's record is kept.
const DELIVERY_RETENTION_DAYS: i64 = 30;

fn seller_pk(seller_id: &str) -> String {
    format!("SELLER#{seller_id}")
}

fn endpoint_sk(webhook_id: &str) -> String {
    format!("WEBHOOK#{webhook_id}")
}

fn deliveries_pk(webhook_id: &str) -> String {
    format!("WEBHOOK#{webhook_id}")
}

fn delivery_sk(delivery_id: &str) -> String {
    format!("DELIVERY#{delivery_id}")
}

fn conflict() -> DomainError {
    DomainError::conflict(ErrorCode::ConcurrentUpdate, "changed since it was read; read it again")
}

#[derive(Debug, Clone)]
pub struct DynamoWebhooks {
    table: Table,
}

impl DynamoWebhooks {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { table: Table::new(client, table) }
    }

    fn endpoint_item(endpoint: &Endpoint) -> Result<Item> {
        let mut item = to_item(endpoint)?;
        item.insert("pk".into(), s(seller_pk(&endpoint.seller_id)));
        item.insert("sk".into(), s(endpoint_sk(&endpoint.webhook_id)));
        item.insert("entity".into(), s("webhook_endpoint"));
        Ok(item)
    }

    fn delivery_item(delivery: &Delivery) -> Result<Item> {
        let mut item = to_item(delivery)?;
        item.insert("pk".into(), s(deliveries_pk(&delivery.webhook_id)));
        item.insert("sk".into(), s(delivery_sk(&delivery.delivery_id)));
        item.insert("gsi1pk".into(), s(deliveries_pk(&delivery.webhook_id)));
        item.insert("gsi1sk".into(), s(&delivery.delivery_id));
        item.insert("entity".into(), s("webhook_delivery"));
        let expires = delivery.created_at + chrono::Duration::days(DELIVERY_RETENTION_DAYS);
        item.insert("expires_at".into(), n(expires.timestamp()));
        Ok(item)
    }

    fn count_key(seller_id: &str) -> Item {
        key(seller_pk(seller_id), "COUNT")
    }

    /// A put of `item` conditional on the stored `version` being `expected`.
    async fn put_versioned(&self, item: Item, expected: u64) -> Result<()> {
        let result = self
            .table
            .put_item()
            .set_item(Some(item))
            .condition_expression("#version = :expected")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":expected", n(expected))
            .send()
            .await;
        if applied(result)? {
            Ok(())
        } else {
            Err(conflict())
        }
    }
}

impl WebhookEndpoints for DynamoWebhooks {
    async fn create_endpoint(&self, endpoint: &Endpoint) -> Result<bool> {
        let built = |e: aws_sdk_dynamodb::error::BuildError| DomainError::unexpected(e);
        let count = Update::builder()
            .table_name(self.table.name())
            .set_key(Some(Self::count_key(&endpoint.seller_id)))
            .update_expression("SET n = if_not_exists(n, :zero) + :one")
            .condition_expression("attribute_not_exists(n) OR n < :max")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(MAX_ENDPOINTS_PER_SELLER))
            .build()
            .map_err(built)?;
        let put = Put::builder()
            .table_name(self.table.name())
            .set_item(Some(Self::endpoint_item(endpoint)?))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(built)?;
        let actions =
            vec![TransactWriteItem::builder().update(count).build(), TransactWriteItem::builder().put(put).build()];
        match self.table.transact(actions).await? {
            None => Ok(true),
            Some(cancelled) if cancelled.failed(0) => Ok(false),
            Some(_) => Err(DomainError::unexpected("a new webhook id was taken")),
        }
    }

    async fn seller_endpoints(&self, seller_id: &str) -> Result<Vec<Endpoint>> {
        let query = self
            .table
            .query()
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(seller_pk(seller_id)))
            .expression_attribute_values(":prefix", s("WEBHOOK#"))
            .consistent_read(true);
        self.table.query_all(query).await?.into_iter().map(from_item).collect()
    }

    async fn endpoint(&self, seller_id: &str, webhook_id: &str) -> Result<Option<Endpoint>> {
        self.table.get_as(key(seller_pk(seller_id), endpoint_sk(webhook_id))).await
    }

    async fn save_endpoint(&self, endpoint: &Endpoint, expected_version: u64) -> Result<()> {
        self.put_versioned(Self::endpoint_item(endpoint)?, expected_version).await
    }

    async fn delete_endpoint(&self, seller_id: &str, webhook_id: &str) -> Result<bool> {
        let built = |e: aws_sdk_dynamodb::error::BuildError| DomainError::unexpected(e);
        let delete = Delete::builder()
            .table_name(self.table.name())
            .set_key(Some(key(seller_pk(seller_id), endpoint_sk(webhook_id))))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(built)?;
        let count = Update::builder()
            .table_name(self.table.name())
            .set_key(Some(Self::count_key(seller_id)))
            .update_expression("SET n = n - :one")
            .condition_expression("n > :zero")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(built)?;
        let actions = vec![
            TransactWriteItem::builder().delete(delete).build(),
            TransactWriteItem::builder().update(count).build(),
        ];
        match self.table.transact(actions).await? {
            None => Ok(true),
            Some(cancelled) if cancelled.failed(0) => Ok(false),
            Some(_) => Err(DomainError::unexpected("the seller's endpoint count is below its endpoints")),
        }
    }
}

impl WebhookDeliveries for DynamoWebhooks {
    async fn create_delivery(&self, delivery: &Delivery) -> Result<Option<Delivery>> {
        if self.table.put_new(Self::delivery_item(delivery)?).await? {
            return Ok(None);
        }
        let stored = self.delivery(&delivery.webhook_id, &delivery.delivery_id).await?;
        stored.map(Some).ok_or_else(|| DomainError::unexpected("a delivery both exists and does not"))
    }

    async fn delivery(&self, webhook_id: &str, delivery_id: &str) -> Result<Option<Delivery>> {
        self.table.get_as(key(deliveries_pk(webhook_id), delivery_sk(delivery_id))).await
    }

    async fn save_delivery(&self, delivery: &Delivery, expected_version: u64) -> Result<()> {
        self.put_versioned(Self::delivery_item(delivery)?, expected_version).await
    }

    async fn list_deliveries(
        &self,
        webhook_id: &str,
        limit: PageLimit,
        cursor: Option<&str>,
    ) -> Result<Page<DeliveryView>> {
        let partition = deliveries_pk(webhook_id);
        let (found, next_cursor) = self.table.newest_first(GSI1, &partition, limit, cursor).await?;
        let items =
            found.into_iter().map(|item| from_item::<Delivery>(item).map(|d| d.view())).collect::<Result<_>>()?;
        Ok(Page { items, next_cursor })
    }
}

/// The webhook deliveries queue.
#[derive(Debug, Clone)]
pub struct SqsDeliveryQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsDeliveryQueue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self { client, queue_url: queue_url.into() }
    }
}

impl DeliveryQueue for SqsDeliveryQueue {
    async fn enqueue(&self, task: &DeliveryTask, delay: Duration) -> Result<()> {
        let body = serde_json::to_string(task).map_err(DomainError::unexpected)?;
        let secs = delay.as_secs().min(900) as i32;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .delay_seconds(secs)
            .send()
            .await
            .map_err(crate::orders::sqs_error)?;
        Ok(())
    }
}
