//! `PATCH .../promotions/{promotion_id}`: changes a promotion (`If-Match` makes it conditional).

mod handler;

use commerce_lambda::telemetry;
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let store = commerce_lambda::wiring::promotions().await?;
    run(service_fn(|req| handler::handle(&store, req))).await
}
