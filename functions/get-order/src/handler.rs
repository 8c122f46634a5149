//! Reads the caller's order; another caller's order is 404.

use commerce::ports::OrderReader;
use commerce::services::orders;
use commerce::{api, auth};
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(reader: &impl OrderReader, req: Request) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::caller(&req)?;
        let order_id = api::path_param(&req, "order_id")?;
        orders::get_order(reader, &caller, &order_id).await
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}
