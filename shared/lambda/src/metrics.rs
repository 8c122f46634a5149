//! Operational metrics in CloudWatch Embedded Metric Format (EMF): each document is one JSON line on stdout,
//! beside the tracing logs, and CloudWatch Logs turns it into metrics. Nothing calls CloudWatch, so emitting
//! costs no request and no IAM permission beyond the logs every function already writes.
//!
//! Every document carries the `Function` dimension (the Lambda function's name); a metric split by a further
//! dimension (`Reason`) is one document per value. The namespace is `METRICS_NAMESPACE` (template.yaml sets
//! the stack's name), `Commerce` without it. Outside a Lambda environment (no `AWS_LAMBDA_FUNCTION_NAME`, as
//! in tests and benchmarks) nothing is written. The names, units and alarms: docs/OPERATIONS.md.

use std::sync::OnceLock;

use aws_lambda_events::event::dynamodb::EventRecord;
use aws_lambda_events::event::sqs::SqsMessage;
use serde_json::{json, Map, Value};

/// The namespace when `METRICS_NAMESPACE` is not set.
pub const DEFAULT_NAMESPACE: &str = "Commerce";

/// The dimension every document has: the emitting function's name.
pub const FUNCTION: &str = "Function";

/// The dimension `CheckoutsFailed` is split by: the order's failure reason (`payment_declined`, ...).
pub const REASON: &str = "Reason";

/// The metrics the functions publish. Each has one fixed unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Orders the checkout saga confirmed.
    OrdersPlaced,
    /// Checkouts that ended with the order failed, by `Reason`.
    CheckoutsFailed,
    /// Flash-sale entries that won a unit.
    Admissions,
    /// Flash-sale entries turned away (sold out).
    Rejections,
    /// Broken stock rules a scheduled audit found (0 when it found none).
    StockInvariantViolations,
    /// Age of the oldest stream record of a batch when the batch starts.
    StreamLag,
    /// Age of the oldest queue message of a batch when the batch starts.
    QueueLag,
    /// Emails sent (one per event and recipient).
    EmailsSent,
    /// Emails not sent because the address bounced or complained before.
    EmailsSuppressed,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Self::OrdersPlaced => "OrdersPlaced",
            Self::CheckoutsFailed => "CheckoutsFailed",
            Self::Admissions => "Admissions",
            Self::Rejections => "Rejections",
            Self::StockInvariantViolations => "StockInvariantViolations",
            Self::StreamLag => "StreamLag",
            Self::QueueLag => "QueueLag",
            Self::EmailsSent => "EmailsSent",
            Self::EmailsSuppressed => "EmailsSuppressed",
        }
    }

    /// The CloudWatch unit.
    pub fn unit(self) -> &'static str {
        match self {
            Self::StreamLag | Self::QueueLag => "Milliseconds",
            _ => "Count",
        }
    }
}

/// One EMF document: metric values that share one set of dimensions, and properties that only go to the log
/// (searchable with Logs Insights, never a metric dimension: a sale id would make a metric per sale).
#[derive(Debug, Clone, Default)]
pub struct Document {
    dimensions: Vec<(&'static str, String)>,
    values: Vec<(Metric, u64)>,
    properties: Vec<(&'static str, String)>,
}

impl Document {
    pub fn new() -> Self {
        Self::default()
    }

    /// A dimension besides `Function`.
    pub fn dimension(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.dimensions.push((name, value.into()));
        self
    }

    pub fn value(mut self, metric: Metric, value: u64) -> Self {
        self.values.push((metric, value));
        self
    }

    pub fn property(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.properties.push((name, value.into()));
        self
    }

    /// The document as CloudWatch reads it: `_aws` names the namespace, the dimension set and each metric's
    /// unit; dimension values, metric values and properties are top-level members.
    pub fn to_json(&self, namespace: &str, function: &str, timestamp_ms: i64) -> Value {
        let mut root = Map::new();
        for (name, value) in &self.properties {
            root.insert((*name).to_owned(), json!(value));
        }
        let mut names = vec![FUNCTION];
        root.insert(FUNCTION.to_owned(), json!(function));
        for (name, value) in &self.dimensions {
            names.push(name);
            root.insert((*name).to_owned(), json!(value));
        }
        let metrics: Vec<Value> =
            self.values.iter().map(|(m, _)| json!({ "Name": m.name(), "Unit": m.unit() })).collect();
        for (metric, value) in &self.values {
            root.insert(metric.name().to_owned(), json!(value));
        }
        root.insert(
            "_aws".to_owned(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{ "Namespace": namespace, "Dimensions": [names], "Metrics": metrics }],
            }),
        );
        Value::Object(root)
    }

    /// Writes the document as one line to `out`.
    pub fn write_to(&self, out: &mut impl std::io::Write, namespace: &str, function: &str, now_ms: i64) {
        if self.values.is_empty() {
            return;
        }
        let mut line = self.to_json(namespace, function, now_ms).to_string().into_bytes();
        line.push(b'\n');
        // One write under stdout's lock, as the tracing logs are written: lines never interleave. A metric
        // that cannot be written is lost, never a failed invocation.
        let _ = out.write_all(&line);
    }

    /// Writes the document to stdout, in a Lambda environment only.
    pub fn emit(&self) {
        if let Some(context) = context() {
            let now_ms = chrono::Utc::now().timestamp_millis();
            self.write_to(&mut std::io::stdout().lock(), &context.namespace, &context.function, now_ms);
        }
    }
}

struct Context {
    namespace: String,
    function: String,
}

fn context() -> Option<&'static Context> {
    static CONTEXT: OnceLock<Option<Context>> = OnceLock::new();
    CONTEXT
        .get_or_init(|| {
            let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok().filter(|f| !f.is_empty())?;
            let namespace =
                std::env::var("METRICS_NAMESPACE").ok().filter(|n| !n.is_empty()).unwrap_or(DEFAULT_NAMESPACE.into());
            Some(Context { namespace, function })
        })
        .as_ref()
}

/// Emits `metric` = `n`.
pub fn count(metric: Metric, n: u64) {
    Document::new().value(metric, n).emit();
}

/// Emits `metric` = `n` under `dimension` = `value` (one document per value).
pub fn count_by(metric: Metric, dimension: &'static str, value: &str, n: u64) {
    Document::new().dimension(dimension, value).value(metric, n).emit();
}

/// Emits `QueueLag`: how long the batch's oldest message waited (from its `SentTimestamp`).
pub fn queue_lag(records: &[SqsMessage]) {
    let sent = records.iter().filter_map(|r| r.attributes.get("SentTimestamp")?.parse::<i64>().ok());
    if let Some(age) = oldest_age_ms(sent, chrono::Utc::now().timestamp_millis()) {
        count(Metric::QueueLag, age);
    }
}

/// Emits `StreamLag`: how long ago the batch's oldest record was written (its `ApproximateCreationDateTime`,
/// whole seconds).
pub fn stream_lag(records: &[EventRecord]) {
    let created = records.iter().map(|r| r.change.approximate_creation_date_time.timestamp_millis());
    if let Some(age) = oldest_age_ms(created, chrono::Utc::now().timestamp_millis()) {
        count(Metric::StreamLag, age);
    }
}

/// Milliseconds from the oldest of `times` (epoch milliseconds; 0 or less means unknown) to `now_ms`, 0 for a
/// clock ahead of ours; `None` when no time is known.
fn oldest_age_ms(times: impl Iterator<Item = i64>, now_ms: i64) -> Option<u64> {
    let oldest = times.filter(|t| *t > 0).min()?;
    Some(u64::try_from(now_ms.saturating_sub(oldest)).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_767_225_600_000;

    fn lines(documents: &[Document]) -> Vec<Value> {
        let mut out = Vec::new();
        for d in documents {
            d.write_to(&mut out, "commerce-test", "CheckoutFailOrder", NOW);
        }
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with('\n'), "every document ends its line");
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    #[test]
    fn a_document_names_namespace_dimensions_and_units_and_carries_values_at_top_level() {
        let doc =
            Document::new().value(Metric::OrdersPlaced, 1).value(Metric::QueueLag, 1500).property("sale_id", "fs_1");
        let [json] = &lines(&[doc])[..] else { panic!("one line") };
        assert_eq!(json["_aws"]["Timestamp"], NOW);
        let directive = &json["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "commerce-test");
        assert_eq!(directive["Dimensions"], json!([["Function"]]));
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "OrdersPlaced", "Unit": "Count"}, {"Name": "QueueLag", "Unit": "Milliseconds"}])
        );
        assert_eq!(json["Function"], "CheckoutFailOrder");
        assert_eq!(json["OrdersPlaced"], 1);
        assert_eq!(json["QueueLag"], 1500);
        assert_eq!(json["sale_id"], "fs_1", "a property is in the log, not a dimension");
    }

    #[test]
    fn a_metric_split_by_reason_is_one_document_per_reason() {
        let docs: Vec<Document> = [("payment_declined", 2), ("internal", 1)]
            .into_iter()
            .map(|(reason, n)| Document::new().dimension(REASON, reason).value(Metric::CheckoutsFailed, n))
            .collect();
        let json = lines(&docs);
        assert_eq!(json.len(), 2);
        for (doc, (reason, n)) in json.iter().zip([("payment_declined", 2), ("internal", 1)]) {
            assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Function", "Reason"]]));
            assert_eq!(doc["Reason"], reason);
            assert_eq!(doc["CheckoutsFailed"], n);
        }
    }

    #[test]
    fn a_document_without_values_writes_nothing() {
        let mut out = Vec::new();
        Document::new().dimension(REASON, "internal").write_to(&mut out, "n", "f", NOW);
        assert!(out.is_empty());
    }

    #[test]
    fn lag_is_the_age_of_the_oldest_known_time() {
        assert_eq!(oldest_age_ms([NOW - 5_000, NOW - 61_000, NOW].into_iter(), NOW), Some(61_000));
        assert_eq!(oldest_age_ms([0, NOW - 10].into_iter(), NOW), Some(10), "an unknown time is skipped");
        assert_eq!(oldest_age_ms([NOW + 3].into_iter(), NOW), Some(0), "a clock ahead of ours is no lag");
        assert_eq!(oldest_age_ms(std::iter::empty(), NOW), None);
    }

    #[test]
    fn sample_events_carry_the_times_lag_is_measured_from() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events");
        let sqs: aws_lambda_events::event::sqs::SqsEvent =
            serde_json::from_str(&read_first(&format!("{root}/notify-order-events"))).unwrap();
        assert!(sqs
            .records
            .iter()
            .any(|r| r.attributes.get("SentTimestamp").is_some_and(|t| t.parse::<i64>().is_ok())));
        let stream: aws_lambda_events::event::dynamodb::Event =
            serde_json::from_str(&read_first(&format!("{root}/index-stock"))).unwrap();
        assert!(stream.records.iter().any(|r| r.change.approximate_creation_date_time.timestamp() > 0));
    }

    fn read_first(dir: &str) -> String {
        let mut paths: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        paths.sort();
        std::fs::read_to_string(&paths[0]).unwrap()
    }
}
