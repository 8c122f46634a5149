//! InventoryTable stream consumer (the stream's second reader, beside index-stock): a stock item whose
//! available units fall below LOW_STOCK_THRESHOLD raises `stock.low` for its seller's webhook endpoints and
//! queues the seller's email.

mod handler;

use commerce_aws::catalog::DynamoCatalog;
use commerce_aws::mail::SqsMailQueue;
use commerce_lambda::config;
use commerce_lambda::telemetry;
use lambda_runtime::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let aws = config::aws().await;
    let catalog = DynamoCatalog::new(aws_sdk_dynamodb::Client::new(&aws), config::required("CATALOG_TABLE")?);
    let webhooks = commerce_lambda::wiring::webhook_deps(&aws).await?;
    let queue = webhooks.queue()?;
    let mail = SqsMailQueue::new(aws_sdk_sqs::Client::new(&aws), config::required("EMAILS_QUEUE_URL")?);
    let threshold: i64 = config::parsed_or("LOW_STOCK_THRESHOLD", 5)?;
    let ports = handler::Ports {
        catalog: &catalog,
        endpoints: &webhooks.store,
        deliveries: &webhooks.store,
        queue,
        mail: &mail,
    };
    run(service_fn(|event| handler::handle(ports, threshold, event))).await
}
