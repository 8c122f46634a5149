//! Records a return request.

use commerce::ports::{OrderReader, OrderWriter};
use commerce::services::orders::{self, ReturnRequest};
use commerce::{api, auth};
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(store: &(impl OrderReader + OrderWriter), req: Request) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::caller(&req)?;
        let order_id = api::path_param(&req, "order_id")?;
        let body: ReturnRequest = match req.body() {
            Body::Empty => ReturnRequest::default(),
            _ => api::parse_json(&req)?,
        };
        orders::request_return(store, &caller, &order_id, body, chrono::Utc::now()).await
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}
