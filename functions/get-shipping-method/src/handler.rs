//! Reads one of the caller's shipping methods (an admin may pass `seller_id`); another seller's is 404.

use commerce_app::ports::ShippingMethodReader;
use commerce_app::services::shipping_methods;
use commerce_domain::ids::ShippingMethodId;
use commerce_lambda::api;
use commerce_lambda::auth;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(store: &impl ShippingMethodReader, req: Request) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::seller(&req)?;
        let method_id: ShippingMethodId = api::path(&req, "method_id")?;
        let seller_id = api::query_param(&req, "seller_id");
        shipping_methods::get_shipping_method(store, &caller, seller_id.as_deref(), &method_id).await
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_testkit::http::{body_json, request, sample_events, RequestBuilder, DEMO_SELLERS};
    use commerce_testkit::shipping_config::{sample_shipping, OTHER_SELLER_METHOD_ID, STANDARD_METHOD_ID};
    use serde_json::json;

    fn get(id: &str) -> RequestBuilder {
        request("GET", "/v1/seller/shipping/methods/{method_id}", &format!("/v1/seller/shipping/methods/{id}"))
            .path_param("method_id", id)
    }

    #[tokio::test]
    async fn when_seller_reads_their_method_should_200_with_it() {
        let response = handle(&sample_shipping(), get(STANDARD_METHOD_ID).caller(DEMO_SELLERS[0], "sellers").build())
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body = body_json(&response);
        assert_eq!((&body["method_id"], &body["name"]), (&json!(STANDARD_METHOD_ID), &json!("Standard")));
        assert_eq!(body["rate"], json!({"type": "flat", "amount": {"amount": 599, "currency": "USD"}}));
    }

    #[tokio::test]
    async fn when_the_method_is_another_sellers_or_malformed_should_404_alike() {
        for id in [OTHER_SELLER_METHOD_ID, "shm_nope", "prd_demo-0001", "shm_../x"] {
            let response =
                handle(&sample_shipping(), get(id).caller(DEMO_SELLERS[0], "sellers").build()).await.unwrap();
            assert_eq!(response.status(), 404, "{id}");
            assert_eq!(body_json(&response)["error"]["code"], "not_found");
        }
    }

    #[tokio::test]
    async fn when_admin_names_the_seller_should_200() {
        let req = get(OTHER_SELLER_METHOD_ID).query("seller_id", DEMO_SELLERS[1]).caller("admin-1", "admins").build();
        assert_eq!(handle(&sample_shipping(), req).await.unwrap().status(), 200);
    }

    #[tokio::test]
    async fn when_shopper_reads_should_403() {
        let response =
            handle(&sample_shipping(), get(STANDARD_METHOD_ID).caller("shopper-1", "shoppers").build()).await.unwrap();
        assert_eq!(response.status(), 403);
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/get-shipping-method").as_ref()) {
            let response = handle(&sample_shipping(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
