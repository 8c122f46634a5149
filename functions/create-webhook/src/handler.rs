//! Parses the endpoint and registers it: 201 with the secret.

use commerce_app::ports::{UrlGuard, WebhookEndpoints};
use commerce_app::services::webhooks::{self, DeliveryPolicy};
use commerce_domain::seller_webhook::EndpointRequest;
use commerce_lambda::api;
use commerce_lambda::auth;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(
    endpoints: &impl WebhookEndpoints,
    guard: &impl UrlGuard,
    policy: &DeliveryPolicy,
    req: Request,
) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::seller(&req)?;
        let body: EndpointRequest = api::parse_json(&req)?;
        webhooks::register(endpoints, guard, &caller, body, policy, chrono::Utc::now()).await
    }
    .await;
    Ok(api::respond(api::StatusCode::CREATED, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_testkit::http::{body_json, request, sample_events};
    use commerce_testkit::webhooks::{InMemoryWebhooks, OpenGuard};

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/create-webhook").as_ref()) {
            let response =
                handle(&InMemoryWebhooks::new(), &OpenGuard, &DeliveryPolicy::default(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }

    #[tokio::test]
    async fn the_secret_is_shown_once_and_listed_endpoints_never_show_it() {
        let store = InMemoryWebhooks::new();
        let body = serde_json::json!({"url": "https://hooks.example/in", "events": ["order.placed"]});
        let req = request("POST", "/v1/seller/webhooks", "/v1/seller/webhooks")
            .caller("seller-1", "sellers")
            .json(&body)
            .build();
        let response = handle(&store, &OpenGuard, &DeliveryPolicy::default(), req).await.unwrap();
        let json = body_json(&response);
        assert_eq!(response.status(), 201, "{json}");
        assert!(json["secret"].as_str().unwrap().starts_with("whsec_"));
        assert!(json["webhook_id"].as_str().unwrap().starts_with("wh_"));
        let caller = commerce_domain::auth::Caller {
            user_id: "seller-1".into(),
            email: None,
            roles: vec![commerce_domain::auth::Role::Seller],
        };
        let listed = serde_json::to_string(&webhooks::list(&store, &caller).await.unwrap()).unwrap();
        assert!(listed.contains("hooks.example") && !listed.contains("whsec_"), "{listed}");
    }
}
