//! `DELETE /v1/carts/{cart_id}/items/{sku}`: The cart's owner removes a line.

mod handler;

use commerce::{adapters::cart, telemetry};
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let context = cart::context_from_env().await?;
    run(service_fn(|req| handler::handle(&context, req))).await
}
