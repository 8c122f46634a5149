//! `GET /v1/search/suggest`: completions for a typed prefix, typo-tolerant.

mod handler;

use commerce_aws::search::SearchEngine;
use commerce_lambda::config;
use commerce_lambda::telemetry;
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let aws = config::aws().await;
    let engine = SearchEngine::from_env(&aws).await?;
    run(service_fn(|req| handler::handle(&engine, req))).await
}
