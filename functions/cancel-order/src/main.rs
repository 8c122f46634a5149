//! `POST /v1/orders/{order_id}/cancel`: the owner (or a guest with the order's token) cancels an order before
//! shipment, which voids the authorization and returns the stock.

mod handler;

use commerce::adapters::orders::restocking_deps_from_env;
use commerce::{jwt::JwtVerifier, telemetry};
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let deps = restocking_deps_from_env().await?;
    let verifier = JwtVerifier::from_env()?;
    run(service_fn(|req| handler::handle(&deps, &verifier, req))).await
}
