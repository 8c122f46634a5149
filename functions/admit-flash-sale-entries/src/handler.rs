//! One SQS batch in, admissions through the service, the failed messages out as `batchItemFailures`.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use commerce_app::ports::{FlashAdmissions, FlashSaleReader, FlashTicketStore, MailQueue};
use commerce_app::services::flash_sale::{self, AdmissionState};
use commerce_domain::flash_sale::EntryMessage;
use commerce_lambda::metrics::{self, Document, Metric};
use lambda_runtime::{Error, LambdaEvent};

pub async fn handle(
    sales: &(impl FlashSaleReader + FlashAdmissions + FlashTicketStore),
    state: &AdmissionState,
    instance: &str,
    mail: &impl MailQueue,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    let mut failures = Vec::new();
    let mut messages = Vec::new();
    let mut ids = Vec::new();
    let deadline = event.context.deadline;
    metrics::queue_lag(&event.payload.records);
    for record in event.payload.records {
        let id = record.message_id.unwrap_or_default();
        let receive_count: u32 =
            record.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1);
        match record.body.as_deref().map(serde_json::from_str::<EntryMessage>) {
            Some(Ok(mut message)) => {
                message.redelivered = receive_count > 1;
                message.message_id.clone_from(&id);
                messages.push(message);
                ids.push(id);
            }
            _ => {
                tracing::error!(message_id = %id, "malformed waiting-room message");
                failures.push(id);
            }
        }
    }
    let stop_by = stop_by(deadline);
    let (results, stats) =
        flash_sale::admit_batch_until(sales, sales, sales, state, &messages, chrono::Utc::now(), stop_by).await;
    // The winners' emails. Not a reason to send the batch back: a redelivered win is skipped, so a failure
    // here loses those emails (logged); the entry's status still shows the win and its hold.
    match flash_sale::win_emails(sales, sales, state, &messages, &results).await {
        Ok(events) if !events.is_empty() => {
            if let Err(err) = mail.enqueue(&events).await {
                tracing::error!(error = %err, winners = events.len(), "winners' emails not queued");
            }
        }
        Ok(_) => {}
        Err(err) => tracing::error!(error = %err, "winners' emails not built"),
    }
    for (id, result) in ids.into_iter().zip(results) {
        if let Err(err) = result {
            tracing::warn!(message_id = %id, error = %err, "entry not admitted yet; back to the queue");
            failures.push(id);
        }
    }
    for (sale_id, stats) in &stats {
        tracing::info!(
            sale_id,
            admitted = stats.admitted,
            rejected = stats.rejected,
            fallbacks = stats.fallbacks,
            "batch admitted"
        );
        Document::new()
            .value(Metric::Admissions, stats.admitted)
            .value(Metric::Rejections, stats.rejected)
            .property("sale_id", sale_id.as_str())
            .emit();
        if let Err(err) = sales.record(sale_id, instance, stats).await {
            tracing::warn!(sale_id, error = %err, "admission metrics not recorded");
        }
    }
    Ok(commerce_lambda::batch::sqs_failures(failures))
}

/// Time kept back from the invocation's deadline: one admission can take a few seconds on a busy host, and a
/// function killed by its timeout sends its whole batch back after the queue's visibility timeout.
const DEADLINE_MARGIN: std::time::Duration = std::time::Duration::from_secs(4);

/// When to stop starting admissions: `DEADLINE_MARGIN` before the deadline (epoch milliseconds; 0 when unknown).
fn stop_by(deadline_ms: u64) -> Option<std::time::Instant> {
    if deadline_ms == 0 {
        return None;
    }
    let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(u64::MAX);
    let left = std::time::Duration::from_millis(deadline_ms.saturating_sub(now_ms));
    Some(std::time::Instant::now() + left.saturating_sub(DEADLINE_MARGIN))
}

#[cfg(test)]
mod tests {
    #[test]
    fn admissions_stop_a_margin_before_the_deadline() {
        assert_eq!(super::stop_by(0), None, "no deadline known");
        let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap();
        let passed = super::stop_by(now_ms - 1_000).unwrap();
        assert!(passed <= std::time::Instant::now());
        let later = super::stop_by(now_ms + 10_000).unwrap();
        let left = later.saturating_duration_since(std::time::Instant::now());
        assert!(left <= std::time::Duration::from_secs(6) && left >= std::time::Duration::from_secs(2), "{left:?}");
    }

    #[test]
    fn sample_events_are_sqs_events_with_entry_messages() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/admit-flash-sale-entries");
        let mut count = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let event: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_str(&text).unwrap();
            for record in event.records {
                let body = record.body.unwrap();
                serde_json::from_str::<commerce_domain::flash_sale::EntryMessage>(&body).unwrap();
                count += 1;
            }
        }
        assert!(count > 0);
    }
}
