//! `POST /v1/seller/orders/{order_id}/refunds`: a seller gives back units of their shipped lines and/or their
//! part's shipping, each line's share of what the shopper paid, tax included (required `Idempotency-Key`).

mod handler;

use commerce_lambda::telemetry;
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let deps = commerce_lambda::wiring::payment_deps().await?;
    run(service_fn(|req| handler::handle(&deps, req))).await
}
