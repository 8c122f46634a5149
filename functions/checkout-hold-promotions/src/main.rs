//! Checkout saga step before the authorization: holds one use of each of the order's promotions, with the
//! order's `promotions_held`, in one transaction; fails with `PromotionUnavailable` when one is gone.
// The use cases' tracing spans nest the saga step's future deeper than the default limit allows.
#![recursion_limit = "256"]

mod handler;

use commerce_lambda::{config, telemetry};
use lambda_runtime::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let aws = config::aws().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&aws);
    let deps = handler::Deps {
        orders: commerce_lambda::wiring::orders(&dynamo)?,
        promotions: commerce_aws::promotions::DynamoPromotions::new(dynamo, config::required("PROMOTIONS_TABLE")?),
    };
    run(service_fn(|event| handler::handle(&deps, event))).await
}
