//! DynamoDB stream -> function, as Lambda's stream event source mapping behaves: shards read in order from
//! `starting_position`, GetRecords every 200 ms while records come (backing off to once a second while the
//! stream is idle: every poll takes the emulator's one DynamoDB lock), batches of up to `batch_size`. A failed batch is retried in
//! place (nothing after it is delivered first), bisected when `bisect_on_error`, up to
//! `maximum_retry_attempts` (`-1`: without limit); then a failure record goes to the on-failure queue, as
//! Lambda's on-failure destination sends it, and the shard moves on. With `ReportBatchItemFailures` the
//! function names the first failed record by its `SequenceNumber`; the checkpoint stays before it and the
//! retry starts there.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;

use super::pause;
use crate::lambda::{Invocation, Lambdas};
use crate::plan::StreamSourcePlan;

const POLL_INTERVAL: Duration = Duration::from_millis(200);
const IDLE_POLL_INTERVAL: Duration = Duration::from_secs(1);
const SHARD_REFRESH: Duration = Duration::from_secs(10);
const RETRY_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Polls one table's stream into one function.
pub struct StreamPoller {
    source: StreamSourcePlan,
    region: String,
    streams: aws_sdk_dynamodbstreams::Client,
    sqs: aws_sdk_sqs::Client,
    lambdas: Lambdas,
    shutdown: CancellationToken,
}

struct Shard {
    iterator: Option<String>,
    /// The last record handed to the function (delivered or given up on): where a lost iterator resumes.
    last_sequence: Option<String>,
    /// The shard was read to its end.
    closed: bool,
}

/// What one delivery attempt of a batch came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    Done,
    /// The function reported records from this index on as failed (ReportBatchItemFailures).
    FailedFrom(usize),
    Failed(String),
}

impl StreamPoller {
    pub fn new(
        source: StreamSourcePlan,
        region: &str,
        streams: aws_sdk_dynamodbstreams::Client,
        sqs: aws_sdk_sqs::Client,
        lambdas: Lambdas,
        shutdown: CancellationToken,
    ) -> Self {
        Self { source, region: region.to_string(), streams, sqs, lambdas, shutdown }
    }

    /// Reads every shard until shutdown; tells `backlog` after the first pass that found every shard at its end.
    pub async fn run(self, backlog: super::Backlog) {
        let mut backlog = Some(backlog);
        let mut shards: BTreeMap<String, Shard> = BTreeMap::new();
        let mut first_discovery = true;
        let mut last_refresh: Option<tokio::time::Instant> = None;
        let mut failing = false;
        let mut interval = POLL_INTERVAL;
        tracing::debug!(
            table = %self.source.table_name,
            stream = %self.source.stream_arn,
            function = %self.source.function,
            "stream poller started"
        );
        while !self.shutdown.is_cancelled() {
            if last_refresh.is_none_or(|at| at.elapsed() >= SHARD_REFRESH) {
                match self.discover(&mut shards, first_discovery).await {
                    Ok(()) => {
                        first_discovery = false;
                        failing = false;
                        last_refresh = Some(tokio::time::Instant::now());
                    }
                    Err(e) => {
                        if !failing {
                            tracing::warn!(stream = %self.source.stream_arn, error = %e, "DescribeStream failed; retrying");
                        }
                        failing = true;
                        if !pause(Duration::from_secs(1), &self.shutdown).await {
                            return;
                        }
                        continue;
                    }
                }
            }
            let mut delivered = false;
            let mut at_end = true;
            for (shard_id, shard) in shards.iter_mut() {
                let Some(iterator) = shard.iterator.clone() else {
                    at_end &= shard.closed;
                    continue;
                };
                let result = self
                    .streams
                    .get_records()
                    .shard_iterator(iterator)
                    .limit(self.source.batch_size.clamp(1, 1000) as i32)
                    .send()
                    .await;
                match result {
                    Ok(out) => {
                        shard.closed = out.next_shard_iterator.is_none();
                        shard.iterator = out.next_shard_iterator;
                        let records = out.records.unwrap_or_default();
                        if let Some(last) = records.last().and_then(|r| r.dynamodb()).and_then(|d| d.sequence_number())
                        {
                            shard.last_sequence = Some(last.to_string());
                        }
                        if !records.is_empty() {
                            delivered = true;
                            self.deliver(shard_id, records).await;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(
                            shard = %shard_id,
                            error = %aws_sdk_dynamodbstreams::error::DisplayErrorContext(e),
                            "GetRecords failed; the shard will be reopened"
                        );
                        shard.iterator = None;
                        last_refresh = None;
                        at_end = false;
                    }
                }
                if self.shutdown.is_cancelled() {
                    return;
                }
            }
            if at_end && !delivered {
                if let Some(backlog) = backlog.take() {
                    backlog.caught_up();
                }
            }
            interval = if delivered { POLL_INTERVAL } else { (interval * 2).min(IDLE_POLL_INTERVAL) };
            if !pause(interval, &self.shutdown).await {
                return;
            }
        }
    }

    /// Adds shards not seen yet: the first time from `starting_position`, later ones (new shards) from their
    /// start. A shard whose iterator was lost resumes after its last delivered record.
    async fn discover(&self, shards: &mut BTreeMap<String, Shard>, first: bool) -> Result<(), String> {
        let mut start_after: Option<String> = None;
        loop {
            let out = self
                .streams
                .describe_stream()
                .stream_arn(&self.source.stream_arn)
                .set_exclusive_start_shard_id(start_after.clone())
                .send()
                .await
                .map_err(|e| aws_sdk_dynamodbstreams::error::DisplayErrorContext(e).to_string())?;
            let Some(description) = out.stream_description else {
                return Ok(());
            };
            for shard in description.shards.unwrap_or_default() {
                let Some(id) = shard.shard_id else { continue };
                let (kind, after) = match shards.get(&id) {
                    Some(existing) if existing.iterator.is_some() || existing.closed => continue,
                    Some(Shard { last_sequence: Some(seq), .. }) => {
                        (ShardIteratorType::AfterSequenceNumber, Some(seq.clone()))
                    }
                    None if first => (starting_position(&self.source.starting_position), None),
                    _ => (ShardIteratorType::TrimHorizon, None),
                };
                let iterator = self
                    .streams
                    .get_shard_iterator()
                    .stream_arn(&self.source.stream_arn)
                    .shard_id(&id)
                    .shard_iterator_type(kind)
                    .set_sequence_number(after.clone())
                    .send()
                    .await
                    .map_err(|e| aws_sdk_dynamodbstreams::error::DisplayErrorContext(e).to_string())?
                    .shard_iterator;
                shards.insert(id, Shard { iterator, last_sequence: after, closed: false });
            }
            match description.last_evaluated_shard_id {
                Some(last) => start_after = Some(last),
                None => return Ok(()),
            }
        }
    }

    /// Delivers one batch, in order, with retries, bisection and the on-failure destination.
    async fn deliver(&self, shard_id: &str, records: Vec<Record>) {
        let max_retries = self.source.maximum_retry_attempts;
        let mut pending: VecDeque<(Vec<Record>, i64)> = VecDeque::from([(records, 0)]);
        while let Some((batch, retries)) = pending.pop_front() {
            if self.shutdown.is_cancelled() {
                return;
            }
            let remaining = match self.invoke(&batch).await {
                Delivery::Done => continue,
                Delivery::FailedFrom(index) => batch[index..].to_vec(),
                Delivery::Failed(reason) => {
                    tracing::info!(function = %self.source.function, shard = %shard_id, %reason, batch = batch.len(), retries, "stream batch failed");
                    if self.source.bisect_on_error && batch.len() > 1 {
                        let mut first = batch;
                        let second = first.split_off(first.len() / 2);
                        pending.push_front((second, retries + 1));
                        pending.push_front((first, retries + 1));
                        continue;
                    }
                    batch
                }
            };
            if max_retries >= 0 && retries >= max_retries {
                self.send_to_on_failure(shard_id, &remaining, retries + 1).await;
                continue;
            }
            let backoff = RETRY_BACKOFF.saturating_mul(retries as u32 + 1).min(MAX_BACKOFF);
            if !pause(backoff, &self.shutdown).await {
                return;
            }
            pending.push_front((remaining, retries + 1));
        }
    }

    async fn invoke(&self, batch: &[Record]) -> Delivery {
        let event = build_event(batch, &self.source.stream_arn, &self.region);
        match self.lambdas.invoke(&self.source.function, Bytes::from(event.to_string())).await {
            Ok(Invocation::Success(body)) if self.source.report_batch_item_failures => {
                let sequence_numbers: Vec<&str> =
                    batch.iter().map(|r| r.dynamodb().and_then(|d| d.sequence_number()).unwrap_or_default()).collect();
                first_failed(&body, &sequence_numbers)
            }
            Ok(Invocation::Success(_)) => Delivery::Done,
            Ok(Invocation::FunctionError { error_type, .. }) => Delivery::Failed(error_type),
            Err(e) => Delivery::Failed(e.to_string()),
        }
    }

    async fn send_to_on_failure(&self, shard_id: &str, batch: &[Record], invoke_count: i64) {
        let Some(queue_url) = &self.source.on_failure_queue_url else {
            tracing::warn!(function = %self.source.function, shard = %shard_id, records = batch.len(), "retries exhausted; records skipped");
            return;
        };
        let function_arn = self.lambdas.function_arn(&self.source.function).unwrap_or_default();
        let message = failure_record(&function_arn, &self.source.stream_arn, shard_id, batch, invoke_count);
        let sent = self.sqs.send_message().queue_url(queue_url).message_body(message.to_string()).send().await;
        match sent {
            Ok(_) => tracing::warn!(
                function = %self.source.function, shard = %shard_id, records = batch.len(),
                "retries exhausted; batch info sent to the on-failure destination"
            ),
            Err(e) => tracing::error!(
                queue = %queue_url,
                error = %aws_sdk_sqs::error::DisplayErrorContext(e),
                "could not send to the on-failure destination; records skipped"
            ),
        }
    }
}

fn starting_position(position: &str) -> ShardIteratorType {
    match position.to_ascii_uppercase().as_str() {
        "LATEST" => ShardIteratorType::Latest,
        _ => ShardIteratorType::TrimHorizon,
    }
}

/// Reads a stream function's partial-batch response: the index of the earliest reported record, `Done` for
/// an empty report, `Failed` for an invalid one (an identifier that is empty or not in the batch).
pub fn first_failed(body: &[u8], sequence_numbers: &[&str]) -> Delivery {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Delivery::Done;
    }
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Delivery::Failed("invalid batch response".into());
    };
    let failures = match value.get("batchItemFailures") {
        None | Some(Value::Null) => return Delivery::Done,
        Some(Value::Array(items)) => items,
        Some(_) => return Delivery::Failed("batchItemFailures is not a list".into()),
    };
    let mut earliest: Option<usize> = None;
    for item in failures {
        let id = item.get("itemIdentifier").and_then(Value::as_str).filter(|id| !id.is_empty());
        let Some(index) = id.and_then(|id| sequence_numbers.iter().position(|s| *s == id)) else {
            return Delivery::Failed(format!("invalid batch item failure {item}"));
        };
        earliest = Some(earliest.map_or(index, |e| e.min(index)));
    }
    earliest.map_or(Delivery::Done, Delivery::FailedFrom)
}

/// The DynamoDB stream event Lambda sends.
pub fn build_event(records: &[Record], stream_arn: &str, region: &str) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|r| {
            let mut dynamodb = Map::new();
            if let Some(d) = r.dynamodb() {
                if let Some(t) = d.approximate_creation_date_time() {
                    dynamodb.insert("ApproximateCreationDateTime".into(), json!(t.secs()));
                }
                for (name, image) in [("Keys", d.keys()), ("NewImage", d.new_image()), ("OldImage", d.old_image())] {
                    if let Some(image) = image {
                        dynamodb.insert(name.into(), item_json(image));
                    }
                }
                if let Some(seq) = d.sequence_number() {
                    dynamodb.insert("SequenceNumber".into(), json!(seq));
                }
                if let Some(size) = d.size_bytes() {
                    dynamodb.insert("SizeBytes".into(), json!(size));
                }
                if let Some(view) = d.stream_view_type() {
                    dynamodb.insert("StreamViewType".into(), json!(view.as_str()));
                }
            }
            let mut record = json!({
                "eventID": r.event_id(),
                "eventName": r.event_name().map(|n| n.as_str()),
                "eventVersion": r.event_version().unwrap_or("1.1"),
                "eventSource": r.event_source().unwrap_or("aws:dynamodb"),
                "awsRegion": r.aws_region().unwrap_or(region),
                "dynamodb": dynamodb,
                "eventSourceARN": stream_arn,
            });
            if let Some(identity) = r.user_identity() {
                record["userIdentity"] = json!({ "type": identity.r#type(), "principalId": identity.principal_id() });
            }
            record
        })
        .collect();
    json!({ "Records": records })
}

/// What Lambda's on-failure destination receives for a stream batch whose retries ran out.
pub fn failure_record(
    function_arn: &str,
    stream_arn: &str,
    shard_id: &str,
    batch: &[Record],
    invoke_count: i64,
) -> Value {
    let seq = |r: Option<&Record>| r.and_then(|r| r.dynamodb()).and_then(|d| d.sequence_number()).map(str::to_string);
    let arrival = |r: Option<&Record>| {
        r.and_then(|r| r.dynamodb())
            .and_then(|d| d.approximate_creation_date_time())
            .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    };
    json!({
        "requestContext": {
            "requestId": uuid::Uuid::new_v4().to_string(),
            "functionArn": function_arn,
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": invoke_count,
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "version": "1.0",
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": seq(batch.first()),
            "endSequenceNumber": seq(batch.last()),
            "approximateArrivalOfFirstRecord": arrival(batch.first()),
            "approximateArrivalOfLastRecord": arrival(batch.last()),
            "batchSize": batch.len(),
            "streamArn": stream_arn,
        },
    })
}

fn item_json(item: &std::collections::HashMap<String, AttributeValue>) -> Value {
    Value::Object(item.iter().map(|(k, v)| (k.clone(), attribute_json(v))).collect())
}

/// DynamoDB JSON (`{"S": "..."}`, `{"N": "..."}` ...) for one attribute value.
pub fn attribute_json(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::B(b) => json!({ "B": BASE64.encode(b.as_ref()) }),
        AttributeValue::Ss(list) => json!({ "SS": list }),
        AttributeValue::Ns(list) => json!({ "NS": list }),
        AttributeValue::Bs(list) => {
            json!({ "BS": list.iter().map(|b| BASE64.encode(b.as_ref())).collect::<Vec<_>>() })
        }
        AttributeValue::M(map) => json!({ "M": item_json(map) }),
        AttributeValue::L(list) => {
            json!({ "L": list.iter().map(attribute_json).collect::<Vec<_>>() })
        }
        AttributeValue::Null(b) => json!({ "NULL": b }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        _ => json!({ "NULL": true }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodbstreams::types::{OperationType, StreamRecord, StreamViewType};
    use aws_smithy_types::{Blob, DateTime};

    fn record(seq: &str) -> Record {
        Record::builder()
            .event_id(format!("ev-{seq}"))
            .event_name(OperationType::Modify)
            .event_version("1.1")
            .event_source("aws:dynamodb")
            .aws_region("us-east-1")
            .dynamodb(
                StreamRecord::builder()
                    .approximate_creation_date_time(DateTime::from_secs(1_700_000_000))
                    .keys("pk", AttributeValue::S("P#1".into()))
                    .new_image("pk", AttributeValue::S("P#1".into()))
                    .new_image("qty", AttributeValue::N("3".into()))
                    .new_image("tags", AttributeValue::Ss(vec!["a".into()]))
                    .new_image("blob", AttributeValue::B(Blob::new(vec![0u8, 255])))
                    .new_image("meta", AttributeValue::M([("ok".to_string(), AttributeValue::Bool(true))].into()))
                    .old_image("pk", AttributeValue::S("P#1".into()))
                    .old_image("qty", AttributeValue::N("5".into()))
                    .sequence_number(seq)
                    .size_bytes(42)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build(),
            )
            .build()
    }

    const STREAM: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2024-01-01T00:00:00.000";

    #[test]
    fn builds_the_stream_event_as_lambda_does() {
        let event = build_event(&[record("100"), record("200")], STREAM, "us-east-1");
        let r = &event["Records"][0];
        assert_eq!(r["eventName"], "MODIFY");
        assert_eq!(r["eventSource"], "aws:dynamodb");
        assert_eq!(r["eventSourceARN"], STREAM);
        let d = &r["dynamodb"];
        assert_eq!(d["Keys"], json!({"pk": {"S": "P#1"}}));
        assert_eq!(d["NewImage"]["qty"], json!({"N": "3"}));
        assert_eq!(d["NewImage"]["blob"], json!({"B": "AP8="}));
        assert_eq!(d["NewImage"]["meta"], json!({"M": {"ok": {"BOOL": true}}}));
        assert_eq!(d["OldImage"]["qty"], json!({"N": "5"}));
        assert_eq!(d["SequenceNumber"], "100");
        assert_eq!(d["SizeBytes"], 42);
        assert_eq!(d["StreamViewType"], "NEW_AND_OLD_IMAGES");
        assert_eq!(d["ApproximateCreationDateTime"], 1_700_000_000);
        let parsed: aws_lambda_events::dynamodb::Event = serde_json::from_value(event).expect("the runtime's Event");
        assert_eq!(parsed.records.len(), 2);
        assert_eq!(parsed.records[1].change.sequence_number.as_deref(), Some("200"));
    }

    #[test]
    fn partial_batch_response_checkpoints_before_the_earliest_failure() {
        let seqs = ["1", "2", "3"];
        assert_eq!(
            first_failed(br#"{"batchItemFailures":[{"itemIdentifier":"3"},{"itemIdentifier":"2"}]}"#, &seqs),
            Delivery::FailedFrom(1)
        );
        assert_eq!(first_failed(br#"{"batchItemFailures":[]}"#, &seqs), Delivery::Done);
        assert_eq!(first_failed(b"null", &seqs), Delivery::Done);
        assert!(matches!(
            first_failed(br#"{"batchItemFailures":[{"itemIdentifier":"9"}]}"#, &seqs),
            Delivery::Failed(_)
        ));
        assert!(matches!(first_failed(b"{{", &seqs), Delivery::Failed(_)));
    }

    #[test]
    fn failure_record_names_the_shard_and_sequence_range() {
        let batch = [record("100"), record("200")];
        let f = failure_record("arn:aws:lambda:us-east-1:123456789012:function:F", STREAM, "shard-1", &batch, 3);
        assert_eq!(f["requestContext"]["condition"], "RetryAttemptsExhausted");
        assert_eq!(f["requestContext"]["approximateInvokeCount"], 3);
        let info = &f["DDBStreamBatchInfo"];
        assert_eq!(info["shardId"], "shard-1");
        assert_eq!(info["startSequenceNumber"], "100");
        assert_eq!(info["endSequenceNumber"], "200");
        assert_eq!(info["batchSize"], 2);
        assert_eq!(info["streamArn"], STREAM);
        assert_eq!(info["approximateArrivalOfFirstRecord"], "2023-11-14T22:13:20.000Z");
    }
}
