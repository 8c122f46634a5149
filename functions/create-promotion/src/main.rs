//! `POST /v1/admin/promotions`, `POST /v1/seller/promotions`: creates a promotion (201 with it).

mod handler;

use commerce_lambda::telemetry;
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let store = commerce_lambda::wiring::promotions().await?;
    run(service_fn(|req| handler::handle(&store, req))).await
}
