//! One SQS batch in, admissions through the service, the failed messages out as `batchItemFailures`.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use commerce::domain::flash_sale::EntryMessage;
use commerce::ports::{FlashAdmissions, FlashSaleReader, FlashTicketStore};
use commerce::services::flash_sale::{self, AdmissionState};
use lambda_runtime::{Error, LambdaEvent};

pub async fn handle(
    sales: &(impl FlashSaleReader + FlashAdmissions + FlashTicketStore),
    state: &AdmissionState,
    instance: &str,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    let mut failures = Vec::new();
    let mut messages = Vec::new();
    let mut ids = Vec::new();
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
    let (results, stats) = flash_sale::admit_batch(sales, sales, sales, state, &messages, chrono::Utc::now()).await;
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
        if let Err(err) = sales.record(sale_id, instance, stats).await {
            tracing::warn!(sale_id, error = %err, "admission metrics not recorded");
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    Ok(response)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sample_events_are_sqs_events_with_entry_messages() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/admit-flash-sale-entries");
        let mut count = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let event: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_str(&text).unwrap();
            for record in event.records {
                let body = record.body.unwrap();
                serde_json::from_str::<commerce::domain::flash_sale::EntryMessage>(&body).unwrap();
                count += 1;
            }
        }
        assert!(count > 0);
    }
}
