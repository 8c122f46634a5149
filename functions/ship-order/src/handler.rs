//! Parses the tracking number and ships the seller's lines.

use commerce::ports::{OrderEventPublisher, OrderReader, OrderWriter, PaymentLedger, PaymentProvider};
use commerce::services::orders::{self, ShipRequest};
use commerce::{api, auth};
use lambda_http::{Body, Error, Request, Response};

/// What the handler needs.
pub struct Deps<O, P, Q> {
    pub orders: O,
    pub provider: P,
    pub events: Q,
}

pub async fn handle<O, P, Q>(deps: &Deps<O, P, Q>, req: Request) -> Result<Response<Body>, Error>
where
    O: OrderReader + OrderWriter + PaymentLedger,
    P: PaymentProvider,
    Q: OrderEventPublisher,
{
    let result = async {
        let caller = auth::caller(&req)?;
        let order_id = api::path_param(&req, "order_id")?;
        let body: ShipRequest = api::parse_json(&req)?;
        let now = chrono::Utc::now();
        orders::ship(&deps.orders, &deps.provider, &deps.orders, &deps.events, &caller, &order_id, body, now).await
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}
