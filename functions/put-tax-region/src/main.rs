//! `PUT /v1/admin/tax/regions/{region}`: An admin creates or replaces a tax region.

mod handler;

use commerce_lambda::telemetry;
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let store = commerce_lambda::wiring::shipping_config().await?;
    run(service_fn(|req| handler::handle(&store, req))).await
}
