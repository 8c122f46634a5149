//! `POST /v1/flash-sales/{sale_id}/entries`: a signed-in shopper enters a sale's waiting room.

mod handler;

use commerce_app::services::flash_sale::{EntryCache, EntryPolicy};
use commerce_aws::flash_sale::{DynamoFlashSales, SqsWaitingRoom};
use commerce_lambda::config::{self, FromEnv};
use commerce_lambda::telemetry;
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let table = config::required("FLASH_SALES_TABLE")?;
    let queue_url = config::required("WAITING_ROOM_QUEUE_URL")?;
    let gate_cache_ms: i64 = config::parsed_or("FLASH_GATE_CACHE_MS", 1000)?;
    let policy = EntryPolicy::from_env()?;
    let aws = config::aws().await;
    let sales = DynamoFlashSales::without_inventory(aws_sdk_dynamodb::Client::new(&aws), table)
        .reading_gate_copies(config::gate_copies()?);
    let queue = SqsWaitingRoom::new(aws_sdk_sqs::Client::new(&aws), queue_url);
    let cache = EntryCache::new(chrono::Duration::milliseconds(gate_cache_ms));
    let deps = handler::Deps { sales: &sales, queue: &queue, cache: &cache, policy };
    run(service_fn(|req| handler::handle(&deps, req))).await
}
