//! Event sources end to end with the template's real functions. (The catalog stream -> index-products path
//! is covered by the search tests.) Here: a message on the order events queue reaches `notify-order-events`
//! through the SQS poller, and the message the function reports as failed is not deleted.

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
