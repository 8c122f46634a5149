//! `POST /v1/seller/orders/{order_id}/return/approve`: a seller approves the return of their lines, which
//! refunds them through the provider and restocks them if the seller says so.

mod handler;

use commerce_lambda::telemetry;
use commerce_lambda::wiring::restocking_deps;
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let deps = restocking_deps().await?;
    run(service_fn(|req| handler::handle(&deps, req))).await
}
