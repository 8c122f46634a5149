//! `DELETE /v1/carts/{cart_id}/promotions/{code}`: takes a code off the cart.

mod handler;

use commerce_lambda::telemetry;
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let context = commerce_lambda::wiring::cart_context().await?;
    let promotions = commerce_lambda::wiring::promotions().await?;
    run(service_fn(|req| handler::handle(&context, &promotions, req))).await
}
