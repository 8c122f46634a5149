//! ReviewsTable stream consumer: keeps the search index's ratings in step with the review aggregates.

mod handler;

use commerce_aws::search::SearchEngine;
use commerce_lambda::{config, telemetry};
use lambda_runtime::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let engine = SearchEngine::from_env(&config::aws().await).await?;
    run(service_fn(|event| handler::handle(&engine, event))).await
}
