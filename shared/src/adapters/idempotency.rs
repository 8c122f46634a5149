//! Idempotency records in DynamoDB. One item per scoped key (`pk`), taken by a conditional put that succeeds
//! only when no live record holds the key: absent, past its 24 h expiry (`expires_at`, also the table's TTL
//! attribute, in epoch seconds), or in progress past its lock (`locked_until`, epoch milliseconds). A failed
//! put returns the record that holds the key, read atomically with the check.

use crate::adapters::dynamo::sdk_error;
use crate::domain::idempotency::{IdempotencyRecord, RecordState, StoredResponse};
use crate::error::{DomainError, Result};
use crate::ports::IdempotencyStore;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use chrono::{DateTime, TimeZone, Utc};
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

const IN_PROGRESS: &str = "in_progress";
const COMPLETED: &str = "completed";

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| DomainError::unexpected(format!("idempotency record lacks {name}")))
}

fn get_n(item: &Item, name: &str) -> Result<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| DomainError::unexpected(format!("idempotency record lacks {name}")))
}

fn millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn to_record(item: &Item) -> Result<IdempotencyRecord> {
    let state = match get_s(item, "state")? {
        COMPLETED => RecordState::Completed {
            response: StoredResponse {
                status: u16::try_from(get_n(item, "response_status")?).map_err(DomainError::unexpected)?,
                body: get_s(item, "response_body")?.to_owned(),
            },
        },
        _ => RecordState::InProgress { locked_until: millis(get_n(item, "locked_until")?) },
    };
    Ok(IdempotencyRecord {
        key: get_s(item, "pk")?.to_owned(),
        fingerprint: get_s(item, "fingerprint")?.to_owned(),
        state,
        created_at: millis(get_n(item, "created_at")?),
        expires_at: millis(get_n(item, "expires_at")?.saturating_mul(1000)),
    })
}

/// The DynamoDB idempotency store.
#[derive(Debug, Clone)]
pub struct DynamoIdempotency {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoIdempotency {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

impl IdempotencyStore for DynamoIdempotency {
    async fn try_begin(&self, record: &IdempotencyRecord, now: DateTime<Utc>) -> Result<Option<IdempotencyRecord>> {
        let RecordState::InProgress { locked_until } = record.state else {
            return Err(DomainError::unexpected("a new idempotency record must be in progress"));
        };
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&record.key))
            .item("fingerprint", s(&record.fingerprint))
            .item("state", s(IN_PROGRESS))
            .item("locked_until", n(locked_until.timestamp_millis()))
            .item("created_at", n(record.created_at.timestamp_millis()))
            .item("expires_at", n(record.expires_at.timestamp()))
            .condition_expression(
                "attribute_not_exists(pk) OR expires_at <= :now_s OR (#state = :in_progress AND locked_until <= :now_ms)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":now_s", n(now.timestamp()))
            .expression_attribute_values(":now_ms", n(now.timestamp_millis()))
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(None),
            Err(err) => match err.as_service_error() {
                Some(aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(ccf)) => {
                    match ccf.item() {
                        Some(item) => to_record(item).map(Some),
                        None => Err(DomainError::Transient("idempotency record changed meanwhile".into())),
                    }
                }
                _ => Err(sdk_error(err)),
            },
        }
    }

    async fn complete(&self, key: &str, fingerprint: &str, response: &StoredResponse) -> Result<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .update_expression(
                "SET #state = :completed, response_status = :status, response_body = :body REMOVE locked_until",
            )
            .condition_expression("fingerprint = :fp AND #state = :in_progress")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":completed", s(COMPLETED))
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .expression_attribute_values(":status", n(i64::from(response.status)))
            .expression_attribute_values(":body", s(&response.body))
            .expression_attribute_values(":fp", s(fingerprint))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                tracing::warn!("idempotency record was taken over before completion");
                Ok(())
            }
            Err(err) => Err(sdk_error(err)),
        }
    }

    async fn abandon(&self, key: &str, fingerprint: &str) -> Result<()> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .condition_expression("fingerprint = :fp AND #state = :in_progress")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .expression_attribute_values(":fp", s(fingerprint))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(err) => Err(sdk_error(err)),
        }
    }
}
