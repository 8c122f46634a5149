//! `PUT /v1/carts/{cart_id}/items/{sku}`: The cart's owner sets a line's quantity.

mod handler;

use commerce_lambda::telemetry;
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let context = commerce_lambda::wiring::cart_context().await?;
    run(service_fn(|req| handler::handle(&context, req))).await
}
