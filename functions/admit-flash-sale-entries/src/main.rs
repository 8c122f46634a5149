//! The waiting room's worker (SQS, FIFO, `ScalingConfig.MaximumConcurrency` caps how many batches run at
//! once): admits entries in order through the sharded stock gate, reporting partial batch failures.
// The use cases' tracing spans nest the saga step's future deeper than the default limit allows.
#![recursion_limit = "256"]

mod handler;

use commerce_app::services::flash_sale::AdmissionState;
use commerce_aws::flash_sale::DynamoFlashSales;
use commerce_lambda::config;
use commerce_lambda::telemetry;
use lambda_runtime::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let table = config::required("FLASH_SALES_TABLE")?;
    let aws = config::aws().await;
    let sales = DynamoFlashSales::without_inventory(aws_sdk_dynamodb::Client::new(&aws), table)
        .reading_gate_copies(config::gate_copies()?);
    let state = AdmissionState::default();
    let instance = ulid::Ulid::new().to_string().to_lowercase();
    let mail =
        commerce_aws::mail::SqsMailQueue::new(aws_sdk_sqs::Client::new(&aws), config::required("EMAILS_QUEUE_URL")?);
    run(service_fn(|event| handler::handle(&sales, &state, &instance, &mail, event))).await
}
