//! Lists the caller's shipping methods (an admin may pass `seller_id`), by method id, as `{"items": [...]}`.

use commerce_app::ports::ShippingMethodReader;
use commerce_app::services::shipping_methods;
use commerce_lambda::api;
use commerce_lambda::auth;
use lambda_http::{Body, Error, Request, Response};
use serde_json::json;

pub async fn handle(store: &impl ShippingMethodReader, req: Request) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::caller(&req)?;
        let seller_id = api::query_param(&req, "seller_id");
        shipping_methods::list_shipping_methods(store, &caller, seller_id.as_deref()).await
    }
    .await
    .map(|items| json!({ "items": items }));
    Ok(api::respond(api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_testkit::http::{body_json, request, sample_events, RequestBuilder, DEMO_SELLERS};
    use commerce_testkit::shipping_config::{
        sample_shipping, EXPRESS_METHOD_ID, OTHER_SELLER_METHOD_ID, STANDARD_METHOD_ID,
    };

    const ROUTE: &str = "/v1/seller/shipping/methods";

    fn list() -> RequestBuilder {
        request("GET", ROUTE, ROUTE)
    }

    fn ids(response: &Response<Body>) -> Vec<String> {
        let body = body_json(response);
        body["items"].as_array().unwrap().iter().map(|m| m["method_id"].as_str().unwrap().to_owned()).collect()
    }

    #[tokio::test]
    async fn when_seller_lists_should_see_only_their_methods_by_id() {
        let response = handle(&sample_shipping(), list().caller(DEMO_SELLERS[0], "sellers").build()).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(ids(&response), [EXPRESS_METHOD_ID, STANDARD_METHOD_ID]);
    }

    #[tokio::test]
    async fn when_shopper_lists_should_403() {
        let response = handle(&sample_shipping(), list().caller("shopper-1", "shoppers").build()).await.unwrap();
        assert_eq!(response.status(), 403);
    }

    #[tokio::test]
    async fn when_seller_names_another_seller_should_403_but_admin_may() {
        let req = list().query("seller_id", DEMO_SELLERS[1]).caller(DEMO_SELLERS[0], "sellers").build();
        assert_eq!(handle(&sample_shipping(), req).await.unwrap().status(), 403);
        let req = list().query("seller_id", DEMO_SELLERS[1]).caller("admin-1", "admins").build();
        let response = handle(&sample_shipping(), req).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(ids(&response), [OTHER_SELLER_METHOD_ID]);
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/list-shipping-methods").as_ref())
        {
            let response = handle(&sample_shipping(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
