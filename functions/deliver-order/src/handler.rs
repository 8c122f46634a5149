//! Records a seller's delivery.

use commerce::ports::{OrderReader, OrderWriter};
use commerce::services::orders;
use commerce::{api, auth};
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(store: &(impl OrderReader + OrderWriter), req: Request) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::caller(&req)?;
        let order_id = api::path_param(&req, "order_id")?;
        orders::deliver(store, &caller, &order_id, chrono::Utc::now()).await
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}
