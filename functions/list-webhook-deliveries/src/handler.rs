//! Lists one of the caller's endpoints' deliveries, a page at a time.

use commerce_app::ports::{WebhookDeliveries, WebhookEndpoints};
use commerce_app::services::webhooks;
use commerce_domain::catalog::PageLimit;
use commerce_lambda::api;
use commerce_lambda::auth;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(
    store: &(impl WebhookEndpoints + WebhookDeliveries),
    req: Request,
) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::seller(&req)?;
        let webhook_id = api::path_param(&req, "webhook_id")?;
        let limit = PageLimit::parse(api::query_param(&req, "limit").as_deref())?;
        let cursor = api::query_param(&req, "cursor");
        webhooks::deliveries(store, store, &caller, &webhook_id, limit, cursor.as_deref()).await
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_testkit::http::{body_json, sample_events};
    use commerce_testkit::webhooks::InMemoryWebhooks;

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in
            sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/list-webhook-deliveries").as_ref())
        {
            let response = handle(&InMemoryWebhooks::new(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
