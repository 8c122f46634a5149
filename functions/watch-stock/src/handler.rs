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
