//! A stream batch in, the alerts it calls for raised; a failure retries the whole batch (the event source
//! bisects, then the DLQ): alerts already raised are recognised by their ids and not made twice.

use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::streams::DynamoDbEventResponse;
use commerce_app::ports::{DeliveryQueue, MailQueue, SkuCatalog, WebhookDeliveries, WebhookEndpoints};
use commerce_app::services::stock_alerts::{self, AlertPorts};
use commerce_aws::streams;
use lambda_runtime::{Error, LambdaEvent};

pub type Ports<'a, C, E, D, Q, M> = AlertPorts<'a, C, E, D, Q, M>;

pub async fn handle<C, E, D, Q, M>(
    ports: Ports<'_, C, E, D, Q, M>,
    threshold: i64,
    event: LambdaEvent<Event>,
) -> Result<DynamoDbEventResponse, Error>
where
    C: SkuCatalog,
    E: WebhookEndpoints,
    D: WebhookDeliveries,
    Q: DeliveryQueue,
    M: MailQueue,
{
    let records = &event.payload.records;
    commerce_lambda::metrics::stream_lag(records);
    let changes = streams::stock_transitions(records);
    let alerts = stock_alerts::watch(ports, &changes, threshold, chrono::Utc::now()).await?;
    tracing::info!(records = records.len(), alerts, "inventory stream batch watched");
    Ok(DynamoDbEventResponse::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_app::ports::WebhookEndpoints;
    use commerce_domain::email::MailEvent;
    use commerce_testkit::http::demo_store;
    use commerce_testkit::mail::MailOutQueue;
    use commerce_testkit::webhooks::{Clock, InMemoryWebhooks, VirtualQueue};

    #[tokio::test]
    async fn the_sample_fall_below_the_threshold_tells_the_skus_seller_once_per_record() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/watch-stock/fell-below-threshold.json");
        let event: Event = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let catalog = demo_store();
        let store = InMemoryWebhooks::new();
        let queue = VirtualQueue::new(Clock::at(chrono::Utc::now()));
        let mail = MailOutQueue::new();
        let ports = Ports { catalog: &catalog, endpoints: &store, deliveries: &store, queue: &queue, mail: &mail };
        for _ in 0..2 {
            handle(ports, 5, LambdaEvent::new(event.clone(), lambda_runtime::Context::default())).await.unwrap();
        }
        let queued = mail.queued();
        assert_eq!(queued.len(), 2, "one per run: the ids dedupe at the sender");
        let MailEvent::LowStock { sku, available, threshold, event_id, .. } = &queued[0] else { panic!("{queued:?}") };
        assert_eq!((sku.as_str(), *available, *threshold), ("LAP-0001-8GB-256GB", 3, 5));
        assert_eq!(queued[0].event_id(), queued[1].event_id());
        assert_eq!(event_id, "300000000000000000042");
        assert!(store.seller_endpoints("nobody").await.unwrap().is_empty());
        // Above the threshold of 3 before and after: nothing.
        handle(ports, 3, LambdaEvent::new(event, lambda_runtime::Context::default())).await.unwrap();
        assert_eq!(mail.queued().len(), 2);
    }
}
