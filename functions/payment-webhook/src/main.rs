//! `POST /v1/webhooks/payments`: the payment provider's events, verified by signature and deduplicated.

mod handler;

use commerce_aws::orders::DynamoOrders;
use commerce_aws::payments::stripe::StripeWebhooks;
use commerce_lambda::config;
use commerce_lambda::telemetry;
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let aws = config::aws().await;
    let ledger = DynamoOrders::new(aws_sdk_dynamodb::Client::new(&aws), config::required("ORDERS_TABLE")?);
    let webhooks = StripeWebhooks::new(config::secret(&aws, "PAYMENT_WEBHOOK_SECRET_ARN").await?);
    run(service_fn(|req| handler::handle(&ledger, &webhooks, req))).await
}
