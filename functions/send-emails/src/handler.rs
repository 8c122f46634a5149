//! Sends a batch's emails side by side; a message whose email could not be sent now (SES refused or throttled
//! it, another worker holds its claim) is reported back for redelivery, then the DLQ.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use commerce_app::ports::{Contacts, MailLedger, MailSender, OrderReader, OrderWriter, Suppressions};
use commerce_app::services::email::{self, MailDeps, Outcome};
use commerce_domain::email::MailEvent;
use commerce_lambda::metrics::{Document, Metric};
use lambda_runtime::{Error, LambdaEvent};

pub type Deps<'a, S, L, O, C> = MailDeps<'a, S, L, O, C>;

pub async fn handle<S, L, O, C>(
    deps: Deps<'_, S, L, O, C>,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error>
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

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_domain::email::Shop;
    use commerce_testkit::mail::{Directory, InMemoryMail, Outbox};
    use commerce_testkit::orders::InMemoryOrders;

    fn sample(name: &str) -> SqsEvent {
        let path = format!("{}/../../events/send-emails/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn the_samples_send_once_and_a_failed_send_comes_back_for_redelivery() {
        let (outbox, ledger, orders) = (Outbox::new(), InMemoryMail::new(), InMemoryOrders::new());
        let directory = Directory::with(&[("7a609683-ceaf-4915-8885-64e88216858f", "seller@example.com")]);
        let shop = Shop { name: "Demo".into(), base_url: "http://127.0.0.1:3000".into() };
        let deps = Deps { sender: &outbox, ledger: &ledger, orders: &orders, contacts: &directory, shop: &shop };
        let run = |event: SqsEvent| handle(deps, LambdaEvent::new(event, lambda_runtime::Context::default()));
        outbox.fail_next(1);
        let failed = run(sample("low-stock.json")).await.unwrap();
        assert_eq!(failed.batch_item_failures.len(), 1, "SES refused: back to the queue");
        for _ in 0..3 {
            assert!(run(sample("low-stock.json")).await.unwrap().batch_item_failures.is_empty());
        }
        let sent = outbox.sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].to, "seller@example.com");
        assert!(sent[0].subject.contains("LAP-0001-8GB-256GB"));
        // An order that is not there (another stack's sample): nothing to send, nothing to retry.
        assert!(run(sample("order-confirmed.json")).await.unwrap().batch_item_failures.is_empty());
        assert_eq!(outbox.sent().len(), 1);
    }
}
