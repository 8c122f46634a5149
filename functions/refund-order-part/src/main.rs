//! `POST /v1/seller/orders/{order_id}/refunds`: a seller gives back units of their shipped lines and/or their
//! part's shipping, each line's share of what the shopper paid, tax included (required `Idempotency-Key`).

mod handler;

use commerce_aws::orders::{DynamoOrders, SqsOrderEvents};
use commerce_aws::payments::ConfiguredProvider;
use commerce_lambda::config;
use commerce_lambda::telemetry;
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let aws = config::aws().await;
    let deps = handler::Deps {
        orders: DynamoOrders::new(aws_sdk_dynamodb::Client::new(&aws), config::required("ORDERS_TABLE")?),
        provider: ConfiguredProvider::from_env(&aws).await?,
        events: SqsOrderEvents::new(aws_sdk_sqs::Client::new(&aws), config::required("ORDER_EVENTS_QUEUE_URL")?),
    };
    run(service_fn(|req| handler::handle(&deps, req))).await
}
