//! Lists the caller's endpoints.

use commerce_app::ports::WebhookEndpoints;
use commerce_app::services::webhooks;
use commerce_lambda::api;
use commerce_lambda::auth;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(endpoints: &impl WebhookEndpoints, req: Request) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::seller(&req)?;
        webhooks::list(endpoints, &caller).await
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result.map(|items| serde_json::json!({ "items": items }))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_testkit::http::{body_json, sample_events};
    use commerce_testkit::webhooks::InMemoryWebhooks;

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/list-webhooks").as_ref()) {
            let response = handle(&InMemoryWebhooks::new(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
