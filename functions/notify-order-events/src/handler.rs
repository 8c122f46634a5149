//! Delivers each message of a batch: the notification is recorded once, the sellers' webhook deliveries it
//! makes are created once and queued, and the customer's email is queued (send-emails sends it once). A failed
//! message is reported back for redelivery (then the DLQ); every step is safe to run again.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use commerce_app::ports::{
    DeliveryQueue, MailQueue, NotificationSink, OrderReader, WebhookDeliveries, WebhookEndpoints,
};
use commerce_app::services::{email, orders, webhooks};
use commerce_domain::order::OrderNotification;
use lambda_runtime::{Error, LambdaEvent};

pub async fn handle(
    orders_table: &(impl NotificationSink + OrderReader),
    webhooks_table: &(impl WebhookEndpoints + WebhookDeliveries),
    deliveries: &impl DeliveryQueue,
    mail: &impl MailQueue,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    commerce_lambda::metrics::queue_lag(&event.payload.records);
    let mut failures = Vec::new();
    for record in event.payload.records {
        let id = record.message_id.clone().unwrap_or_default();
        let parsed: Result<OrderNotification, _> = serde_json::from_str(record.body.as_deref().unwrap_or(""));
        let outcome = match parsed {
            Ok(notification) => async {
                orders::deliver_notification(orders_table, &notification).await?;
                let now = chrono::Utc::now();
                webhooks::fan_out(webhooks_table, webhooks_table, deliveries, orders_table, &notification, now).await?;
                email::queue_order_mail(mail, &notification).await
            }
            .await
            .map(|_| ()),
            Err(err) => Err(commerce_domain::DomainError::MalformedBody(err.to_string())),
        };
        if let Err(err) = outcome {
            tracing::warn!(message_id = %id, error = %err, "notification not delivered");
            failures.push(id);
        }
    }
    Ok(commerce_lambda::batch::sqs_failures(failures))
}
