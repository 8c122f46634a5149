//! `POST /v1/webhooks/carriers/{carrier}`: a carrier's tracking update, verified by signature, recorded once
//! on every shipment of the parcel.

mod handler;

use commerce_aws::shipping::webhooks::CarrierWebhooks;
use commerce_lambda::config;
use commerce_lambda::telemetry;
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let aws = config::aws().await;
    let (orders, events) = commerce_lambda::wiring::tracking_deps(&aws).await?;
    let signatures = CarrierWebhooks::new(config::secret(&aws, "CARRIER_WEBHOOK_SECRET_ARN").await?);
    run(service_fn(|req| handler::handle(&orders, &events, &signatures, req))).await
}
