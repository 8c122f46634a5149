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

#[cfg(test)]
mod tests {
    use super::*;
    use commerce::adapters::catalog::testing::{body_json, sample_events};
    use commerce::adapters::orders::memory::{demo_orders, InMemoryPayments};

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/get-order").as_ref()) {
            let store = demo_orders(&InMemoryPayments::new()).await;
            let response = handle(&store, event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }

    #[tokio::test]
    async fn when_owner_reads_should_see_status_derived_from_events() {
        use commerce::adapters::catalog::testing::request;
        let store = demo_orders(&InMemoryPayments::new()).await;
        let req = request("GET", "/v1/orders/{order_id}", "/v1/orders/ord_demo-shipped")
            .path_param("order_id", "ord_demo-shipped")
            .caller("shopper-1", "[shoppers]")
            .build();
        let body = body_json(&handle(&store, req).await.unwrap());
        assert_eq!(body["status"], "shipped");
        assert_eq!(body["events"].as_array().map(Vec::len), Some(4));
        assert_eq!(body["shipments"].as_array().map(Vec::len), Some(2));
    }
}
