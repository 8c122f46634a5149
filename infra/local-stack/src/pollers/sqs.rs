//! SQS -> function, as Lambda's SQS event source mapping behaves: long-polled batches of up to `batch_size`,
//! at most `maximum_concurrency` batches in flight (default 5). A successful batch is deleted; with
//! `ReportBatchItemFailures` everything but the reported `batchItemFailures[].itemIdentifier` is deleted; a
//! failed invocation deletes nothing, so the messages come back after the visibility timeout and the queue's
//! redrive policy moves them to its dead-letter queue.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Map, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::pause;
use crate::lambda::{Invocation, Lambdas};
use crate::plan::SqsSourcePlan;

const DEFAULT_CONCURRENCY: u32 = 5;
/// Long-poll wait: short so that shutdown is prompt.
const WAIT_SECONDS: i32 = 1;
const SQS_MAX_RECEIVE: u32 = 10;

/// Starts the poller of one queue.
pub fn start(
    source: SqsSourcePlan,
    region: &str,
    client: aws_sdk_sqs::Client,
    lambdas: Lambdas,
    shutdown: CancellationToken,
) -> Vec<JoinHandle<()>> {
    let poller = Arc::new(SqsPoller { source, region: region.to_string(), client, lambdas });
    vec![tokio::spawn(poller.run(shutdown))]
}

struct SqsPoller {
    source: SqsSourcePlan,
    region: String,
    client: aws_sdk_sqs::Client,
    lambdas: Lambdas,
}

impl SqsPoller {
    async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let concurrency = self.source.maximum_concurrency.unwrap_or(DEFAULT_CONCURRENCY).max(1) as usize;
        let slots = Arc::new(Semaphore::new(concurrency));
        let mut failing = false;
        tracing::debug!(queue = %self.source.queue_url, function = %self.source.function, concurrency, "SQS poller started");
        loop {
            let permit = tokio::select! {
                permit = slots.clone().acquire_owned() => match permit { Ok(p) => p, Err(_) => return },
                _ = shutdown.cancelled() => return,
            };
            let batch = tokio::select! {
                batch = self.receive_batch() => batch,
                _ = shutdown.cancelled() => return,
            };
            match batch {
                Ok(messages) if messages.is_empty() => failing = false,
                Ok(messages) => {
                    failing = false;
                    let poller = Arc::clone(&self);
                    tokio::spawn(async move {
                        poller.process(messages).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(queue = %self.source.queue_url, error = %e, "SQS receive failed; retrying");
                    }
                    failing = true;
                    if !pause(Duration::from_secs(1), &shutdown).await {
                        return;
                    }
                }
            }
        }
    }

    /// One batch: a long poll, then more receives while the batch is short and the batching window is open.
    async fn receive_batch(&self) -> Result<Vec<Message>, String> {
        let wanted = self.source.batch_size.max(1);
        let window_ends = tokio::time::Instant::now() + self.source.maximum_batching_window;
        let mut batch: Vec<Message> = Vec::new();
        loop {
            let missing = wanted - batch.len() as u32;
            let wait = if batch.is_empty() { WAIT_SECONDS } else { 0 };
            let received = self
                .client
                .receive_message()
                .queue_url(&self.source.queue_url)
                .max_number_of_messages(missing.min(SQS_MAX_RECEIVE) as i32)
                .wait_time_seconds(wait)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await
                .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
            let got = received.messages.unwrap_or_default();
            let empty = got.is_empty();
            batch.extend(got);
            if batch.is_empty() || batch.len() as u32 >= wanted || tokio::time::Instant::now() >= window_ends {
                return Ok(batch);
            }
            if empty {
                tokio::time::sleep(Duration::from_millis(50).min(self.source.maximum_batching_window)).await;
            }
        }
    }

    async fn process(&self, messages: Vec<Message>) {
        let function = &self.source.function;
        let event = build_event(&messages, &self.source.queue_arn, &self.region);
        let delete: Vec<&Message> = match self.lambdas.invoke(function, Bytes::from(event.to_string())).await {
            Ok(Invocation::Success(body)) if self.source.report_batch_item_failures => {
                let ids: HashSet<&str> = messages.iter().filter_map(|m| m.message_id()).collect();
                match batch_item_failures(&body, &ids) {
                    Ok(failed) => {
                        if !failed.is_empty() {
                            tracing::info!(%function, failed = failed.len(), batch = messages.len(), "partial batch failure");
                        }
                        messages.iter().filter(|m| !m.message_id().is_some_and(|id| failed.contains(id))).collect()
                    }
                    Err(reason) => {
                        tracing::warn!(%function, %reason, "invalid batch response; the whole batch will be retried");
                        Vec::new()
                    }
                }
            }
            Ok(Invocation::Success(_)) => messages.iter().collect(),
            Ok(Invocation::FunctionError { error_type, .. }) => {
                tracing::info!(%function, %error_type, batch = messages.len(), "batch failed; messages return after the visibility timeout");
                Vec::new()
            }
            Err(e) => {
                tracing::warn!(%function, error = %e, "batch not delivered");
                Vec::new()
            }
        };
        self.delete(&delete).await;
    }

    async fn delete(&self, messages: &[&Message]) {
        for chunk in messages.chunks(SQS_MAX_RECEIVE as usize) {
            let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle()?)
                        .build()
                        .ok()
                })
                .collect();
            if entries.is_empty() {
                continue;
            }
            let result = self
                .client
                .delete_message_batch()
                .queue_url(&self.source.queue_url)
                .set_entries(Some(entries))
                .send()
                .await;
            match result {
                Ok(out) if !out.failed.is_empty() => {
                    tracing::warn!(queue = %self.source.queue_url, failed = out.failed.len(), "some messages were not deleted")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(
                    queue = %self.source.queue_url,
                    error = %aws_sdk_sqs::error::DisplayErrorContext(e),
                    "delete failed"
                ),
            }
        }
    }
}

/// The message ids a partial-batch response reports as failed. An empty or null list, or no list at all,
/// means success; an identifier that is empty or not in the batch makes the whole response invalid (`Err`),
/// which Lambda treats as a failure of the whole batch.
pub fn batch_item_failures(body: &[u8], batch: &HashSet<&str>) -> Result<HashSet<String>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(HashSet::new());
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("response is not JSON: {e}"))?;
    let failures = match value.get("batchItemFailures") {
        None | Some(Value::Null) => return Ok(HashSet::new()),
        Some(Value::Array(items)) => items,
        Some(other) => return Err(format!("batchItemFailures is not a list: {other}")),
    };
    let mut ids = HashSet::new();
    for item in failures {
        let id = item
            .get("itemIdentifier")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| format!("invalid batch item failure {item}"))?;
        if !batch.contains(id) {
            return Err(format!("itemIdentifier {id} is not in the batch"));
        }
        ids.insert(id.to_string());
    }
    Ok(ids)
}

/// The SQS event Lambda sends: one record per message, with its system and message attributes.
pub fn build_event(messages: &[Message], queue_arn: &str, region: &str) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let attributes: Map<String, Value> = m
                .attributes()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.as_str().to_string(), json!(v)))
                .collect();
            let message_attributes: Map<String, Value> = m
                .message_attributes()
                .into_iter()
                .flatten()
                .map(|(name, value)| {
                    let binary = value.binary_value().map(|b| BASE64.encode(b.as_ref()));
                    let attribute = json!({
                        "stringValue": value.string_value(),
                        "binaryValue": binary,
                        "stringListValues": value.string_list_values(),
                        "binaryListValues": value.binary_list_values().iter().map(|b| BASE64.encode(b.as_ref())).collect::<Vec<_>>(),
                        "dataType": value.data_type(),
                    });
                    (name.clone(), attribute)
                })
                .collect();
            json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body().unwrap_or_default(),
                "attributes": attributes,
                "messageAttributes": message_attributes,
                "md5OfBody": m.md5_of_body(),
                "md5OfMessageAttributes": m.md5_of_message_attributes(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            })
        })
        .collect();
    json!({ "Records": records })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::types::MessageAttributeValue;

    fn message(id: &str) -> Message {
        Message::builder()
            .message_id(id)
            .receipt_handle(format!("rh-{id}"))
            .body(format!("{{\"n\":\"{id}\"}}"))
            .md5_of_body("abc")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "2")
            .attributes(MessageSystemAttributeName::SentTimestamp, "1700000000000")
            .message_attributes(
                "kind",
                MessageAttributeValue::builder().data_type("String").string_value("order").build().unwrap(),
            )
            .build()
    }

    #[test]
    fn builds_the_sqs_event_as_lambda_does() {
        let event = build_event(&[message("m1"), message("m2")], "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1");
        let records = event["Records"].as_array().unwrap();
        assert_eq!(records.len(), 2);
        let r = &records[0];
        assert_eq!(r["messageId"], "m1");
        assert_eq!(r["receiptHandle"], "rh-m1");
        assert_eq!(r["body"], r#"{"n":"m1"}"#);
        assert_eq!(r["attributes"]["ApproximateReceiveCount"], "2");
        assert_eq!(r["messageAttributes"]["kind"]["stringValue"], "order");
        assert_eq!(r["messageAttributes"]["kind"]["dataType"], "String");
        assert_eq!(r["eventSource"], "aws:sqs");
        assert_eq!(r["eventSourceARN"], "arn:aws:sqs:us-east-1:123456789012:q");
        let parsed: aws_lambda_events::sqs::SqsEvent = serde_json::from_value(event).expect("the runtime's SqsEvent");
        assert_eq!(parsed.records[1].message_id.as_deref(), Some("m2"));
    }

    #[test]
    fn partial_batch_responses_follow_lambda_rules() {
        let batch: HashSet<&str> = ["m1", "m2"].into_iter().collect();
        let failed = batch_item_failures(br#"{"batchItemFailures":[{"itemIdentifier":"m2"}]}"#, &batch).unwrap();
        assert_eq!(failed, HashSet::from(["m2".to_string()]));
        for success in [&b""[..], b"null", b"{}", br#"{"batchItemFailures":[]}"#, br#"{"batchItemFailures":null}"#] {
            assert!(batch_item_failures(success, &batch).unwrap().is_empty());
        }
        for invalid in [
            &br#"{"batchItemFailures":[{"itemIdentifier":"nope"}]}"#[..],
            br#"{"batchItemFailures":[{"itemIdentifier":""}]}"#,
            br#"{"batchItemFailures":[{"id":"m1"}]}"#,
            br#"{"batchItemFailures":"m1"}"#,
            b"not json",
        ] {
            assert!(batch_item_failures(invalid, &batch).is_err(), "{}", String::from_utf8_lossy(invalid));
        }
    }
}
