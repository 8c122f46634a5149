//! `POST /v1/seller/orders/{order_id}/ship`: a seller ships their lines with a tracking number, which
//! captures the payment for exactly those lines.

mod handler;

use commerce_lambda::telemetry;
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let deps = commerce_lambda::wiring::payment_deps().await?;
    run(service_fn(|req| handler::handle(&deps, req))).await
}
