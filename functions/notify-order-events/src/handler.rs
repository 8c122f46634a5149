//! Delivers each message of a batch; failed ones are reported back for redelivery (then the DLQ).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use commerce_app::ports::NotificationSink;
use commerce_app::services::orders;
use commerce_domain::order::OrderNotification;
use lambda_runtime::{Error, LambdaEvent};

pub async fn handle(sink: &impl NotificationSink, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    commerce_lambda::metrics::queue_lag(&event.payload.records);
    let mut failures = Vec::new();
    for record in event.payload.records {
        let id = record.message_id.clone().unwrap_or_default();
        let parsed: Result<OrderNotification, _> = serde_json::from_str(record.body.as_deref().unwrap_or(""));
        let outcome = match parsed {
            Ok(notification) => orders::deliver_notification(sink, &notification).await.map(|_| ()),
            Err(err) => Err(commerce_domain::DomainError::MalformedBody(err.to_string())),
        };
        if let Err(err) = outcome {
            tracing::warn!(message_id = %id, error = %err, "notification not delivered");
            failures.push(id);
        }
    }
    Ok(commerce_lambda::batch::sqs_failures(failures))
}
