//! Each message is an SNS envelope (`Type: Notification`) whose `Message` is SES's notification: a JSON
//! string from SNS, an object from the local emulator; both are read. A message that is not SES feedback is
//! logged and dropped; a failed write is reported back for redelivery.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use commerce_app::ports::Suppressions;
use commerce_app::services::email;
use commerce_domain::email::Feedback;
use commerce_domain::error::{DomainError, Result};
use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

/// SES's notification inside an SQS body (an SNS envelope, or the notification itself when delivered raw).
pub fn notification(body: &str) -> Result<Value> {
    let value: Value = serde_json::from_str(body).map_err(|e| DomainError::MalformedBody(e.to_string()))?;
    match value.get("Message") {
        Some(Value::String(inner)) => {
            serde_json::from_str(inner).map_err(|e| DomainError::MalformedBody(e.to_string()))
        }
        Some(inner @ Value::Object(_)) => Ok(inner.clone()),
        _ => Ok(value),
    }
}

pub async fn handle(suppressions: &impl Suppressions, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    let now = chrono::Utc::now();
    let mut failures = Vec::new();
    for record in event.payload.records {
        let id = record.message_id.clone().unwrap_or_default();
        let feedback = notification(record.body.as_deref().unwrap_or("")).map(|n| Feedback::parse(&n));
        let feedback = match feedback {
            Ok(feedback) => feedback,
            Err(err) => {
                tracing::error!(message_id = %id, error = %err, "not SES feedback: dropped");
                continue;
            }
        };
        if let Err(err) = email::apply_feedback(suppressions, &feedback, now).await {
            tracing::warn!(message_id = %id, error = %err, "feedback not applied");
            failures.push(id);
        }
    }
    Ok(commerce_lambda::batch::sqs_failures(failures))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_sns_envelope_from_sns_and_from_the_emulator() {
        let inner = serde_json::json!({"notificationType": "Bounce", "bounce": {"bounceType": "Permanent",
            "bouncedRecipients": [{"emailAddress": "gone@example.com", "action": "failed"}]}});
        let from_sns = serde_json::json!({"Type": "Notification", "Message": inner.to_string()}).to_string();
        let from_emulator = serde_json::json!({"Type": "Notification", "Message": inner}).to_string();
        for body in [from_sns, from_emulator, inner.to_string()] {
            let feedback = Feedback::parse(&notification(&body).unwrap());
            assert_eq!(feedback.suppress, vec!["gone@example.com".to_owned()], "{body}");
        }
        assert!(notification("not json").is_err());
        assert!(notification(r#"{"Type": "Notification", "Message": "not json"}"#).is_err());
    }
}

#[cfg(test)]
mod sample_events {
    use super::*;
    use commerce_testkit::mail::InMemoryMail;

    #[tokio::test]
    async fn the_sample_hard_bounce_suppresses_its_recipient_and_a_malformed_record_is_dropped() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/email-feedback/hard-bounce.json");
        let mut event: SqsEvent = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut malformed = event.records[0].clone();
        malformed.message_id = Some("m2".into());
        malformed.body = Some("not json".into());
        event.records.push(malformed);
        let mail = InMemoryMail::new();
        let response = handle(&mail, LambdaEvent::new(event, lambda_runtime::Context::default())).await.unwrap();
        assert!(response.batch_item_failures.is_empty());
        assert!(mail.is_suppressed("gone@example.com").await.unwrap());
        assert_eq!(mail.suppressed().len(), 1);
    }
}
