//! `POST /v1/seller/orders/{order_id}/shipments/{shipment_id}/events`: a seller's update of their shipment
//! (in transit, out for delivery, delivered, exception); a delivered update delivers their lines.

mod handler;

use commerce_lambda::config;
use commerce_lambda::telemetry;
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let aws = config::aws().await;
    let (orders, events) = commerce_lambda::wiring::tracking_deps(&aws).await?;
    run(service_fn(|req| handler::handle(&orders, &events, req))).await
}
