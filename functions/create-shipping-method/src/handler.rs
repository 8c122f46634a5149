//! A seller creates a shipping method of their own (an admin, for the seller named by `seller_id`); answers 201
//! with it.

use chrono::Utc;
use commerce_app::ports::{ShippingMethodReader, ShippingMethodWriter};
use commerce_app::services::shipping_methods;
use commerce_lambda::api;
use commerce_lambda::auth;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(
    store: &(impl ShippingMethodReader + ShippingMethodWriter),
    req: Request,
) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::seller(&req)?;
        let seller_id = api::query_param(&req, "seller_id");
        let input = api::parse_json(&req)?;
        shipping_methods::create_shipping_method(store, store, &caller, seller_id.as_deref(), input, Utc::now()).await
    }
    .await;
    Ok(api::respond(api::StatusCode::CREATED, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_testkit::http::{body_json, request, sample_events, RequestBuilder, DEMO_SELLERS};
    use commerce_testkit::shipping_config::sample_shipping;
    use serde_json::json;

    const ROUTE: &str = "/v1/seller/shipping/methods";

    fn post(body: serde_json::Value) -> RequestBuilder {
        request("POST", ROUTE, ROUTE).json(&body)
    }

    fn courier() -> serde_json::Value {
        json!({"name": "Courier", "countries": ["US", "DE"], "min_days": 1, "max_days": 2, "tax_class": "standard",
               "rate": {"type": "free_over", "amount": {"amount": 990, "currency": "USD"},
                        "threshold": {"amount": 10000, "currency": "USD"}}})
    }

    #[tokio::test]
    async fn when_seller_posts_a_method_should_201_and_store_it_as_theirs() {
        let store = sample_shipping();
        let response = handle(&store, post(courier()).caller(DEMO_SELLERS[0], "sellers").build()).await.unwrap();
        assert_eq!(response.status(), 201, "{}", body_json(&response));
        let body = body_json(&response);
        let id = body["method_id"].as_str().unwrap();
        assert!(id.starts_with("shm_"));
        assert_eq!((&body["seller_id"], &body["version"]), (&json!(DEMO_SELLERS[0]), &json!(1)));
        assert_eq!(body["countries"], json!(["DE", "US"]));
        assert_eq!(body["rate"]["type"], "free_over");
        assert_eq!(store.stored_method(id).unwrap().seller_id, DEMO_SELLERS[0]);
    }

    #[tokio::test]
    async fn when_shopper_posts_should_403_before_reading_the_body() {
        let req = request("POST", ROUTE, ROUTE).body("{not json").caller("shopper-1", "shoppers").build();
        assert_eq!(handle(&sample_shipping(), req).await.unwrap().status(), 403);
    }

    #[tokio::test]
    async fn when_admin_names_a_seller_should_create_it_for_them_but_a_seller_may_not() {
        let store = sample_shipping();
        let req = post(courier()).query("seller_id", DEMO_SELLERS[1]).caller("admin-1", "admins").build();
        let response = handle(&store, req).await.unwrap();
        assert_eq!(response.status(), 201);
        assert_eq!(body_json(&response)["seller_id"], DEMO_SELLERS[1]);
        let req = post(courier()).query("seller_id", DEMO_SELLERS[1]).caller(DEMO_SELLERS[0], "sellers").build();
        assert_eq!(handle(&store, req).await.unwrap().status(), 403);
    }

    #[tokio::test]
    async fn when_the_name_is_taken_in_a_shared_country_should_409_overlap() {
        let mut body = courier();
        body["name"] = json!("STANDARD");
        let response = handle(&sample_shipping(), post(body).caller(DEMO_SELLERS[0], "sellers").build()).await.unwrap();
        assert_eq!(response.status(), 409);
        assert_eq!(body_json(&response)["error"]["code"], "shipping_method_overlap");
    }

    #[tokio::test]
    async fn when_a_value_breaks_a_rule_should_422_naming_the_field() {
        let cases = [
            ("/countries/1", json!("de"), "countries[1]"),
            ("/max_days", json!(366), "max_days"),
            ("/rate/threshold/currency", json!("EUR"), "rate.threshold"),
        ];
        for (pointer, value, field) in cases {
            let mut body = courier();
            *body.pointer_mut(pointer).unwrap() = value;
            let response =
                handle(&sample_shipping(), post(body).caller(DEMO_SELLERS[0], "sellers").build()).await.unwrap();
            let error = &body_json(&response)["error"];
            assert_eq!(response.status(), 422, "{pointer}: {error}");
            assert_eq!(error["field"], field);
        }
    }

    #[tokio::test]
    async fn when_the_rate_type_or_the_tax_class_cannot_be_read_should_400() {
        let cases = [
            ("/rate", json!({"type": "per_item", "amount": {"amount": 100, "currency": "USD"}})),
            ("/tax_class", json!("Reduced")),
        ];
        for (pointer, value) in cases {
            let mut body = courier();
            *body.pointer_mut(pointer).unwrap() = value;
            let response =
                handle(&sample_shipping(), post(body).caller(DEMO_SELLERS[0], "sellers").build()).await.unwrap();
            assert_eq!(response.status(), 400, "{pointer}");
            assert_eq!(body_json(&response)["error"]["code"], "malformed_json");
        }
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/create-shipping-method").as_ref())
        {
            let response = handle(&sample_shipping(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
