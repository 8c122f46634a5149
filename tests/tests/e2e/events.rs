//! Event sources end to end with the template's real functions. (The catalog stream -> index-products path
//! is covered by the search tests.) Here: a message on the order events queue reaches `notify-order-events`
//! through the SQS poller, and the message the function reports as failed is not deleted. Every sample event
//! of the checkout saga's task functions and of the order events consumer runs through its function, and every
//! function crate has samples.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use system_tests::{eventually, stack, unique};

#[tokio::test]
async fn when_a_message_arrives_the_sqs_poller_should_invoke_the_function_and_keep_its_failures() {
    let s = stack();
    let sqs = aws_sdk_sqs::Client::new(&s.sdk_config().await);
    let queue_url = sqs
        .get_queue_url()
        .queue_name("commerce-local-OrderEventsQueue")
        .send()
        .await
        .expect("the template's order events queue")
        .queue_url
        .expect("queue url");
    let before = not_visible(&sqs, &queue_url).await;
    let sent = sqs
        .send_message()
        .queue_url(&queue_url)
        .message_body(format!("not an order notification {}", unique("poison")))
        .send()
        .await
        .expect("send");
    let message_id = sent.message_id.expect("message id");

    let seen = eventually(Duration::from_secs(15), || {
        let log = s.log();
        let message_id = message_id.clone();
        async move {
            log.lines().any(|l| l.starts_with("[NotifyOrderEventsFunction]") && l.contains(&message_id)).then_some(())
        }
    })
    .await;
    assert!(seen.is_some(), "notify-order-events logged the rejected message {message_id}");
    let in_flight = not_visible(&sqs, &queue_url).await;
    assert!(in_flight > before, "the reported failure was not deleted: it waits out its visibility timeout");
}

async fn not_visible(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> u64 {
    let out = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("queue attributes");
    out.attributes
        .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible).cloned())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The scheduled function's sample event runs through the real function (the API functions' samples run
/// through their handlers in each crate's tests).
#[tokio::test]
async fn when_the_reconcile_sample_event_is_invoked_the_function_should_answer_a_sweep_report() {
    let raw = std::fs::read_to_string(system_tests::repo_root().join("events/reconcile-flash-sale/scheduled.json"))
        .expect("sample event");
    let event: serde_json::Value = serde_json::from_str(&raw).expect("sample event is JSON");
    let invoked = stack().invoke("ReconcileFlashSaleFunction", &event).await.expect("invoke");
    assert_eq!(invoked.status, 200);
    assert_eq!(invoked.function_error, None, "{}", invoked.body);
    for field in ["sales", "expired_holds", "reconciled"] {
        assert!(invoked.body[field].is_u64(), "{field} missing in {}", invoked.body);
    }
}

/// The checkout saga's task functions, in the order a checkout that fails after its authorization runs them:
/// a sample may act on what an earlier one left (the release sample frees the reserve sample's hold, the void
/// sample voids the authorize sample's authorization).
const SAGA_TASKS: [&str; 7] = [
    "checkout-hold-promotions",
    "checkout-reserve-stock",
    "checkout-authorize-payment",
    "checkout-confirm-order",
    "checkout-release-stock",
    "checkout-void-payment",
    "checkout-fail-order",
];

/// The order events queue's consumer.
const QUEUE_CONSUMER: &str = "notify-order-events";

/// The `errorType` names a saga task fails with (`DomainError::error_type`), which the ASL's Retry and Catch
/// match on.
const ERROR_TYPES: [&str; 9] = [
    "OutOfStock",
    "PaymentDeclined",
    "Transient",
    "NotFound",
    "Conflict",
    "Gone",
    "Validation",
    "Forbidden",
    "Unexpected",
];

/// What a sample's file name announces: `ok-...` (the function answers), `<error-type>-...` (it fails with
/// that `errorType`, kebab-cased: `out-of-stock-...`), or, for the queue consumer, `batch-item-failure-...`
/// (it answers and reports back exactly the records that are not order notifications).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Fails(&'static str),
    BatchItemFailures,
}

fn kebab(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_uppercase() && !out.is_empty() {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn announced(file_stem: &str) -> Option<Outcome> {
    if file_stem.starts_with("ok-") {
        return Some(Outcome::Ok);
    }
    if file_stem.starts_with("batch-item-failure-") {
        return Some(Outcome::BatchItemFailures);
    }
    ERROR_TYPES.into_iter().find(|t| file_stem.starts_with(&format!("{}-", kebab(t)))).map(Outcome::Fails)
}

/// Every `events/<crate>/*.json` as (file stem, parsed event), sorted by name.
fn samples(crate_name: &str) -> Vec<(String, serde_json::Value)> {
    let dir = system_tests::repo_root().join("events").join(crate_name);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let raw = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let event = serde_json::from_str(&raw).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
            let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            (stem, event)
        })
        .collect()
}

/// Binary (= crate) name -> the template's logical id of its function.
fn template_functions() -> BTreeMap<String, String> {
    let path = system_tests::repo_root().join("template.yaml");
    let text = std::fs::read_to_string(&path).expect("template.yaml");
    let template: serde_yaml::Value = serde_yaml::from_str(&text).expect("template.yaml is YAML");
    let resources = template["Resources"].as_mapping().expect("Resources");
    resources
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .filter_map(|(id, r)| {
            let binary = r["Metadata"]["BuildProperties"]["Binary"].as_str()?;
            Some((binary.to_owned(), id.as_str()?.to_owned()))
        })
        .collect()
}

/// The checkout state machine's Lambda tasks: logical id -> the fields its `ResultSelector` reads from the
/// function's answer (`$.Payload.<field>`), which a successful answer must carry.
fn saga_task_fields() -> BTreeMap<String, Vec<String>> {
    let path = system_tests::repo_root().join("statemachines/checkout.asl.json");
    let asl: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("checkout.asl.json")).expect("ASL is JSON");
    let states = asl["States"].as_object().expect("States");
    let mut tasks = BTreeMap::new();
    for state in states.values() {
        let Some(function) = state["Parameters"]["FunctionName"].as_str() else { continue };
        let id = function.trim_start_matches("${").trim_end_matches('}').trim_end_matches("Arn").to_owned();
        let fields = state["ResultSelector"]
            .as_object()
            .into_iter()
            .flat_map(|s| s.values())
            .filter_map(|v| v.as_str()?.strip_prefix("$.Payload.").map(str::to_owned))
            .collect();
        tasks.insert(id, fields);
    }
    tasks
}

/// A reservation as the admin API reads it.
async fn reservation_status(reservation_id: &str) -> serde_json::Value {
    let s = stack();
    let token = s.token("admin").expect("admin token");
    let response = s
        .http()
        .get(s.url(&format!("/v1/admin/reservations/{reservation_id}")))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET reservation");
    assert_eq!(response.status().as_u16(), 200, "reservation {reservation_id}");
    let body: serde_json::Value = response.json().await.expect("reservation JSON");
    body["status"].clone()
}

/// Every sample of the saga's task functions and of the queue consumer runs through the template's function
/// on the local stack and ends as its file name says. A successful task answer carries every field the ASL's
/// `ResultSelector` reads; the reserve sample's hold is held afterwards and released by the release sample; a
/// void sample whose state carries `$.payment` voids that authorization.
#[tokio::test]
async fn every_saga_task_and_order_events_sample_should_end_as_its_file_name_says() {
    let _heavy = system_tests::heavy_scenario().await;
    let functions = template_functions();
    let fields = saga_task_fields();
    let task_ids: BTreeSet<&String> = fields.keys().collect();
    let listed: BTreeSet<&String> = SAGA_TASKS.iter().map(|c| &functions[*c]).collect();
    assert_eq!(listed, task_ids, "SAGA_TASKS lists the checkout state machine's Lambda tasks");

    let mut ran = 0;
    for crate_name in SAGA_TASKS.iter().copied().chain([QUEUE_CONSUMER]) {
        let function = &functions[crate_name];
        for (name, event) in samples(crate_name) {
            let sample = format!("events/{crate_name}/{name}.json");
            let outcome = announced(&name).unwrap_or_else(|| {
                panic!("{sample}: the name starts with ok-, batch-item-failure- or a kebab-cased error type")
            });
            let invoked = stack().invoke(function, &event).await.unwrap_or_else(|e| panic!("{sample}: {e:#}"));
            assert_eq!(invoked.status, 200, "{sample}: {}", invoked.body);
            match outcome {
                Outcome::Fails(error_type) => {
                    assert!(invoked.function_error.is_some(), "{sample} answered: {}", invoked.body);
                    assert_eq!(invoked.body["errorType"], error_type, "{sample}: {}", invoked.body);
                }
                Outcome::Ok | Outcome::BatchItemFailures => {
                    assert_eq!(invoked.function_error, None, "{sample}: {}", invoked.body);
                }
            }
            if crate_name == QUEUE_CONSUMER {
                assert_batch_response(&sample, outcome, &event, &invoked.body);
            } else if outcome == Outcome::Ok {
                for field in fields.get(function).into_iter().flatten() {
                    assert!(invoked.body.get(field).is_some(), "{sample}: no {field} for the ASL in {}", invoked.body);
                }
                assert_effect(crate_name, &sample, &event, &invoked.body).await;
            }
            ran += 1;
        }
    }
    assert!(ran > SAGA_TASKS.len(), "only {ran} samples ran");
}

/// The queue consumer reports back exactly the records whose body is not an order notification.
fn assert_batch_response(sample: &str, outcome: Outcome, event: &serde_json::Value, body: &serde_json::Value) {
    let records = event["Records"].as_array().unwrap_or_else(|| panic!("{sample}: no Records"));
    let malformed: BTreeSet<&str> = records
        .iter()
        .filter(|r| {
            let body = r["body"].as_str().unwrap_or_default();
            serde_json::from_str::<commerce_domain::order::OrderNotification>(body).is_err()
        })
        .filter_map(|r| r["messageId"].as_str())
        .collect();
    let reported: BTreeSet<&str> = body["batchItemFailures"]
        .as_array()
        .unwrap_or_else(|| panic!("{sample}: no batchItemFailures in {body}"))
        .iter()
        .filter_map(|f| f["itemIdentifier"].as_str())
        .collect();
    assert_eq!(reported, malformed, "{sample}: reported failures");
    assert_eq!(outcome == Outcome::BatchItemFailures, !reported.is_empty(), "{sample}: the name vs {body}");
}

/// What a successful compensation or reservation left behind.
async fn assert_effect(crate_name: &str, sample: &str, event: &serde_json::Value, body: &serde_json::Value) {
    let order_id = event["order_id"].as_str().unwrap_or_else(|| panic!("{sample}: no order_id"));
    let reserves_stock = event["lines"].as_array().is_some_and(|lines| !lines.is_empty());
    match crate_name {
        "checkout-reserve-stock" if reserves_stock => {
            assert_eq!(body["reservation_id"], order_id, "{sample}: the reservation id is the order id");
            assert_eq!(reservation_status(order_id).await, "held", "{sample}");
        }
        "checkout-release-stock" if event.get("reservation").is_some() => {
            assert_eq!(reservation_status(order_id).await, "released", "{sample}");
        }
        "checkout-void-payment" if event.get("payment").is_some() => {
            assert_eq!(body["payment_id"], event["payment"]["payment_id"], "{sample}: {body}");
            assert_eq!(body["status"], "voided", "{sample}: {body}");
        }
        _ => {}
    }
}

/// Every function crate has at least one sample event to invoke it with.
#[test]
fn every_function_crate_should_have_a_sample_event() {
    let root = system_tests::repo_root();
    let crates: Vec<String> = std::fs::read_dir(root.join("functions"))
        .expect("functions/")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(crates.len() > SAGA_TASKS.len(), "functions/ lists the function crates");
    let without: Vec<&String> = crates.iter().filter(|c| samples(c).is_empty()).collect();
    assert!(without.is_empty(), "function crates without a sample under events/<crate>/: {without:?}");
}
