//! Records a return request.

use commerce_app::ports::{OrderEventPublisher, OrderReader, OrderWriter, PaymentLedger};
use commerce_app::services::orders::{self, ReturnRequest};
use commerce_domain::ids::OrderId;
use commerce_lambda::api;
use commerce_lambda::auth;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(
    store: &(impl OrderReader + OrderWriter + PaymentLedger),
    events: &impl OrderEventPublisher,
    req: Request,
) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::caller(&req)?;
        let order_id: OrderId = api::path(&req, "order_id")?;
        let body: ReturnRequest = match req.body() {
            Body::Empty => ReturnRequest::default(),
            _ => api::parse_json(&req)?,
        };
        orders::request_return(store, events, &caller, &order_id, body, chrono::Utc::now()).await
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_testkit::http::{body_json, sample_events};
    use commerce_testkit::orders::{demo_orders, InMemoryPayments};

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/request-return").as_ref()) {
            let store = demo_orders(&InMemoryPayments::new()).await;
            let response =
                handle(&store, &commerce_testkit::orders::InMemoryOrders::new(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
