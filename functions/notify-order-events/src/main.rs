//! The order events queue's consumer: delivers order notifications (placed, shipped, delivered, refunded,
//! cancelled; locally they are written to the orders table, `NOTIFY#<order>`, where tests read them) and makes
//! the sellers' webhook deliveries of each, and queues the customer's email of each (EMAILS_QUEUE_URL).

mod handler;

use commerce_aws::orders::DynamoOrders;
use commerce_lambda::config;
use commerce_lambda::telemetry;
use lambda_runtime::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let aws = config::aws().await;
    let orders = DynamoOrders::new(aws_sdk_dynamodb::Client::new(&aws), config::required("ORDERS_TABLE")?);
    let webhooks = commerce_lambda::wiring::webhook_deps(&aws).await?;
    let queue = webhooks.queue()?;
    let mail =
        commerce_aws::mail::SqsMailQueue::new(aws_sdk_sqs::Client::new(&aws), config::required("EMAILS_QUEUE_URL")?);
    run(service_fn(|event| handler::handle(&orders, &webhooks.store, queue, &mail, event))).await
}
