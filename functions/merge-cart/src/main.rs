//! `POST /v1/me/cart/merge`: A signed-in shopper merges a guest cart into their cart.

mod handler;

use commerce::{adapters::cart, telemetry};
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let context = cart::context_from_env().await?;
    run(service_fn(|req| handler::handle(&context, req))).await
}
