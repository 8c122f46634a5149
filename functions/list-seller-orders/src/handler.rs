//! Lists the seller's order parts.

use commerce::domain::catalog::PageLimit;
use commerce::ports::SellerOrders;
use commerce::services::orders;
use commerce::{api, auth};
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(store: &impl SellerOrders, req: Request) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::caller(&req)?;
        let limit = PageLimit::parse(api::query_param(&req, "limit").as_deref())?;
        let cursor = api::query_param(&req, "cursor");
        orders::list_seller_orders(store, &caller, limit, cursor.as_deref()).await
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}
