//! Sends a batch's emails side by side; a message whose email could not be sent now (SES refused or throttled
//! it, another worker holds its claim) is reported back for redelivery, then the DLQ.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use commerce_app::ports::{Contacts, MailLedger, MailSender, OrderReader, OrderWriter, Suppressions};
use commerce_app::services::email::{self, MailDeps, Outcome};
use commerce_domain::email::MailEvent;
use commerce_lambda::metrics::{Document, Metric};
use lambda_runtime::{Error, LambdaEvent};

pub type Deps<'a, S, L, O, C> = MailDeps<'a, S, L, O, C>;

pub async fn handle<S, L, O, C>(deps: Deps<'_, S, L, O, C>, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error>
where
    S: MailSender,
    L: MailLedger + Suppressions,
    O: OrderReader + OrderWriter,
    C: Contacts,
{
    commerce_lambda::metrics::queue_lag(&event.payload.records);
    let now = chrono::Utc::now();
    let sends = event.payload.records.iter().map(|record| async move {
        let id = record.message_id.clone().unwrap_or_default();
        let outcome = match serde_json::from_str::<MailEvent>(record.body.as_deref().unwrap_or("")) {
            Ok(mail) => email::send(deps, &mail, now).await,
            // Nothing a retry could fix: logged and dropped rather than poisoning the queue.
            Err(err) => {
                tracing::error!(message_id = %id, error = %err, "not an email event");
                Ok(Outcome::NotMailed)
            }
        };
        (id, outcome)
    });
    let mut failures = Vec::new();
    let (mut sent, mut suppressed) = (0, 0);
    for (id, outcome) in futures::future::join_all(sends).await {
        match outcome {
            Ok(Outcome::Sent) => sent += 1,
            Ok(Outcome::Suppressed) => suppressed += 1,
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(message_id = %id, error = %err, "email not sent");
                failures.push(id);
            }
        }
    }
    Document::new().value(Metric::EmailsSent, sent).value(Metric::EmailsSuppressed, suppressed).emit();
    Ok(commerce_lambda::batch::sqs_failures(failures))
}
