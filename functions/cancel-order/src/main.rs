//! `POST /v1/orders/{order_id}/cancel`: the owner (or a guest with the order's token) cancels an order before
//! shipment, which voids the authorization and returns the stock.

mod handler;

use commerce_aws::jwt::JwtVerifier;
use commerce_lambda::telemetry;
use commerce_lambda::wiring::restocking_deps;
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let deps = restocking_deps().await?;
    let verifier = JwtVerifier::from_env()?;
    run(service_fn(|req| handler::handle(&deps, &verifier, req))).await
}
