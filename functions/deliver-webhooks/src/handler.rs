//! Attempts every message of a batch at once; a message whose attempt failed on our side (a table or queue
//! error) is reported back for redelivery, then the dead-letter queue.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use commerce_app::ports::{DeliveryQueue, DeliveryTask, MailQueue, WebhookDeliveries, WebhookEndpoints, WebhookSender};
use commerce_app::services::webhooks::Deliverer;
use lambda_runtime::{Error, LambdaEvent};

pub async fn handle<E, D, Q, S, M>(
    deliverer: &Deliverer<E, D, Q, S, M>,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error>
where
    E: WebhookEndpoints,
    D: WebhookDeliveries,
    Q: DeliveryQueue,
    S: WebhookSender,
    M: MailQueue,
{
    commerce_lambda::metrics::queue_lag(&event.payload.records);
    let attempts = event.payload.records.into_iter().map(|record| async move {
        let id = record.message_id.clone().unwrap_or_default();
        let task: Result<DeliveryTask, _> = serde_json::from_str(record.body.as_deref().unwrap_or(""));
        let outcome = match task {
            Ok(task) => deliverer.attempt(&task, chrono::Utc::now(), rand::random::<f64>()).await.map(|_| ()),
            Err(err) => Err(commerce_domain::DomainError::MalformedBody(err.to_string())),
        };
        outcome.err().map(|err| {
            tracing::warn!(message_id = %id, error = %err, "webhook delivery not attempted");
            id
        })
    });
    let failures: Vec<String> = futures::future::join_all(attempts).await.into_iter().flatten().collect();
    Ok(commerce_lambda::batch::sqs_failures(failures))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_app::services::webhooks::{self, DeliveryPolicy};
    use commerce_domain::auth::{Caller, Role};
    use commerce_domain::seller_webhook::{Delivery, EndpointRequest, SellerEvent};
    use commerce_domain::webhook::EventType;
    use commerce_testkit::webhooks::{Clock, InMemoryWebhooks, OpenGuard, Receiver, VirtualQueue};

    fn batch(bodies: &[String]) -> LambdaEvent<SqsEvent> {
        let records: Vec<serde_json::Value> = bodies
            .iter()
            .enumerate()
            .map(|(i, body)| serde_json::json!({"messageId": format!("m{i}"), "body": body}))
            .collect();
        let event: SqsEvent = serde_json::from_value(serde_json::json!({ "Records": records })).unwrap();
        LambdaEvent::new(event, Default::default())
    }

    #[tokio::test]
    async fn the_same_task_three_times_in_one_batch_sends_once_and_garbage_is_reported() {
        let clock = Clock::at(chrono::Utc::now());
        let store = InMemoryWebhooks::new();
        let seller = Caller { user_id: "seller-1".into(), email: None, roles: vec![Role::Seller] };
        let request = EndpointRequest {
            url: "https://hooks.example/in".into(),
            events: vec!["order.placed".into()],
            description: None,
        };
        let policy = DeliveryPolicy::default();
        let registered = webhooks::register(&store, &OpenGuard, &seller, request, &policy, clock.now()).await.unwrap();
        let endpoint =
            WebhookEndpoints::endpoint(&store, "seller-1", &registered.endpoint.webhook_id).await.unwrap().unwrap();
        let event = SellerEvent {
            event_id: "ord_1-2_ab".into(),
            seller_id: "seller-1".into(),
            event_type: EventType::OrderPlaced,
            body: b"{}".to_vec(),
            occurred_at: clock.now(),
        };
        let delivery = Delivery::new(&event, &endpoint, clock.now()).unwrap();
        store.create_delivery(&delivery).await.unwrap();
        let task = DeliveryTask {
            seller_id: "seller-1".into(),
            webhook_id: endpoint.webhook_id.clone(),
            delivery_id: delivery.delivery_id.clone(),
        };
        let body = serde_json::to_string(&task).unwrap();
        let deliverer = Deliverer {
            endpoints: store.clone(),
            deliveries: store.clone(),
            queue: VirtualQueue::new(clock.clone()),
            sender: Receiver::up(clock.clone()),
            mail: commerce_testkit::mail::MailOutQueue::new(),
            policy,
        };
        let response = handle(&deliverer, batch(&[body.clone(), body.clone(), body, "not json".into()])).await.unwrap();
        let failed: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
        assert_eq!(failed, ["m3"]);
        assert_eq!(deliverer.sender.received().len(), 1);
    }
}
