//! The pollers against moto: real queues (with a redrive policy), a real table stream, and the fake runtime
//! from the Lambda tests as the consumer, which logs every record it is handed.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    StreamSpecification, StreamViewType,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::lambda::tests::FakeFunction;
use crate::lambda::Lambdas;
use crate::moto::{self, Moto, MotoFiles};
use crate::plan::{Plan, SchedulePlan, SqsSourcePlan, StreamSourcePlan};

struct Emulator {
    moto: Moto,
    aws: aws_config::SdkConfig,
}

async fn emulator(dir: &Path) -> Emulator {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let files = MotoFiles::under(&root);
    let python = moto::ensure_venv(&files).await.expect("moto venv");
    let moto = Moto::start(&python, &files, 0, 0, &dir.join("moto.log")).await.expect("moto starts");
    let aws = crate::stack::sdk_config(&moto.url()).await;
    Emulator { moto, aws }
}

fn read_log(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

fn deliveries(log: &[Value], tag: &str) -> usize {
    log.iter().filter(|e| e["tag"] == tag).count()
}

async fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    attributes: &[(QueueAttributeName, String)],
) -> (String, String) {
    let mut req = sqs.create_queue().queue_name(name);
    for (k, v) in attributes {
        req = req.attributes(k.clone(), v);
    }
    let url = req.send().await.expect("create queue").queue_url.expect("url");
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes");
    let arn = attrs.attributes.and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned()).expect("arn");
    (url, arn)
}

async fn drain(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    let out = sqs.receive_message().queue_url(url).max_number_of_messages(10).wait_time_seconds(1).send().await;
    out.expect("receive").messages.unwrap_or_default().into_iter().filter_map(|m| m.body).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_sources_deliver_retry_and_dead_letter_against_moto() {
    let fake = FakeFunction::new();
    let mut em = emulator(fake.dir()).await;
    let sqs = aws_sdk_sqs::Client::new(&em.aws);
    let ddb = aws_sdk_dynamodb::Client::new(&em.aws);

    // SQS: partial batch failures, redrive to the DLQ after two receives. The visibility timeout outlasts a
    // delivery to a function on a busy machine, so a message that succeeded is never received twice.
    let (dlq_url, dlq_arn) = create_queue(&sqs, "work-dlq", &[]).await;
    let redrive = json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"}).to_string();
    let (queue_url, queue_arn) = create_queue(
        &sqs,
        "work",
        &[(QueueAttributeName::RedrivePolicy, redrive), (QueueAttributeName::VisibilityTimeout, "5".into())],
    )
    .await;
    for (tag, fail) in [("a", false), ("b", true), ("c", false)] {
        let body = json!({"tag": tag, "fail": fail}).to_string();
        sqs.send_message().queue_url(&queue_url).message_body(body).send().await.expect("send");
    }

    // Streams: a poison record between two good ones, bisection, one retry, then the on-failure queue.
    let (failure_url, _) = create_queue(&sqs, "stream-failures", &[]).await;
    let table = ddb
        .create_table()
        .table_name("items")
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("pk").attribute_type(ScalarAttributeType::S).build().unwrap(),
        )
        .key_schema(KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build().unwrap())
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("create table");
    let stream_arn = table.table_description.and_then(|t| t.latest_stream_arn).expect("stream arn");
    for (pk, fail) in [("p1", false), ("p2", true), ("p3", false)] {
        ddb.put_item()
            .table_name("items")
            .item("pk", AttributeValue::S(pk.into()))
            .item("fail", AttributeValue::Bool(fail))
            .send()
            .await
            .expect("put");
    }

    let sqs_log = fake.dir().join("sqs.log");
    let stream_log = fake.dir().join("stream.log");
    let schedule_log = fake.dir().join("schedule.log");
    let mut consumer = fake.plan("Consumer", Duration::from_secs(5), None);
    consumer.environment.insert("FAKE_LOG".into(), sqs_log.display().to_string());
    consumer.environment.insert("FAKE_BATCH_MODE".into(), "report".into());
    let mut stream_consumer = fake.plan("StreamConsumer", Duration::from_secs(5), None);
    stream_consumer.environment.insert("FAKE_LOG".into(), stream_log.display().to_string());
    let mut sweeper = fake.plan("Sweeper", Duration::from_secs(5), None);
    sweeper.environment.insert("FAKE_LOG".into(), schedule_log.display().to_string());
    let functions = BTreeMap::from([
        ("Consumer".to_string(), consumer),
        ("StreamConsumer".to_string(), stream_consumer),
        ("Sweeper".to_string(), sweeper),
    ]);
    let plan = Plan {
        functions: functions.clone(),
        sqs_sources: vec![SqsSourcePlan {
            function: "Consumer".into(),
            queue_url: queue_url.clone(),
            queue_arn,
            batch_size: 10,
            report_batch_item_failures: true,
            maximum_concurrency: None,
            maximum_batching_window: Duration::from_millis(300),
        }],
        stream_sources: vec![StreamSourcePlan {
            function: "StreamConsumer".into(),
            table_name: "items".into(),
            stream_arn: stream_arn.clone(),
            batch_size: 10,
            starting_position: "TRIM_HORIZON".into(),
            bisect_on_error: true,
            maximum_retry_attempts: 1,
            report_batch_item_failures: false,
            on_failure_queue_url: Some(failure_url.clone()),
        }],
        schedules: vec![SchedulePlan {
            function: "Sweeper".into(),
            interval: Duration::from_millis(300),
            input: Some(
                json!({"Records": [{"eventSource": "aws:sqs", "messageId": "tick", "body": "{\"tag\":\"tick\"}", "attributes": {}}]}),
            ),
        }],
        ..Plan::default()
    };
    let lambdas = Lambdas::start(functions, BTreeMap::new()).expect("lambdas");
    let shutdown = CancellationToken::new();
    let (tasks, backlog) = super::start(&plan, lambdas.clone(), em.aws.clone(), shutdown.clone());

    wait_for("the poison message to reach the DLQ", Duration::from_secs(60), || {
        deliveries(&read_log(&sqs_log), "b") >= 2
    })
    .await;
    let mut dead = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while dead.is_empty() && Instant::now() < deadline {
        dead = drain(&sqs, &dlq_url).await;
    }
    let log = read_log(&sqs_log);
    assert_eq!(deliveries(&log, "a"), 1, "a succeeded once and was deleted: {log:?}");
    assert_eq!(deliveries(&log, "c"), 1, "c succeeded once and was deleted: {log:?}");
    assert_eq!(dead.len(), 1, "exactly the failed message was dead-lettered: {dead:?}");
    assert_eq!(serde_json::from_str::<Value>(&dead[0]).unwrap()["tag"], "b");
    let counts: Vec<&str> = log.iter().filter(|e| e["tag"] == "b").filter_map(|e| e["count"].as_str()).collect();
    assert_eq!(&counts[..2], ["1", "2"], "ApproximateReceiveCount rises with each delivery");

    let mut failures = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while failures.is_empty() && Instant::now() < deadline {
        failures = drain(&sqs, &failure_url).await;
    }
    assert_eq!(failures.len(), 1, "one failure record: {failures:?}");
    let failure: Value = serde_json::from_str(&failures[0]).unwrap();
    let stream = read_log(&stream_log);
    let seq_of = |tag: &str| stream.iter().find(|e| e["tag"] == tag).map(|e| e["id"].clone()).expect("delivered");
    let info = &failure["DDBStreamBatchInfo"];
    assert_eq!(info["startSequenceNumber"], seq_of("p2"), "{failure}");
    assert_eq!(info["endSequenceNumber"], seq_of("p2"));
    assert_eq!(info["batchSize"], 1);
    assert_eq!(info["streamArn"], stream_arn.as_str());
    assert_eq!(failure["requestContext"]["condition"], "RetryAttemptsExhausted");
    // The stream's backlog counts as drained only once every record written before the start was handled.
    tokio::time::timeout(Duration::from_secs(30), backlog.drained()).await.expect("the stream backlog drains");
    assert!(read_log(&stream_log).iter().any(|e| e["tag"] == "p3"), "drained means p3 was delivered");
    wait_for("p3 after the poison record", Duration::from_secs(5), || {
        read_log(&stream_log).iter().filter(|e| e["tag"] == "p3").count() >= 2
    })
    .await;
    let stream = read_log(&stream_log);
    let last_p2 = stream.iter().rposition(|e| e["tag"] == "p2").unwrap();
    let last_p3 = stream.iter().rposition(|e| e["tag"] == "p3").unwrap();
    assert!(last_p3 > last_p2, "in order per shard: p3 is delivered for good only after p2 is given up: {stream:?}");
    assert_eq!(stream.iter().filter(|e| e["tag"] == "p1").count(), 2, "p1: in the first batch and its bisected half");

    wait_for("two scheduled invocations", Duration::from_secs(5), || deliveries(&read_log(&schedule_log), "tick") >= 2)
        .await;

    let stop = Instant::now();
    shutdown.cancel();
    for task in tasks {
        task.await.expect("poller task");
    }
    assert!(stop.elapsed() < Duration::from_secs(3), "pollers stop promptly: {:?}", stop.elapsed());
    lambdas.shutdown().await;
    em.moto.stop().await;
}
