//! Reopens one of the caller's deliveries and queues it: 202.

use commerce_app::ports::{DeliveryQueue, WebhookDeliveries, WebhookEndpoints};
use commerce_app::services::webhooks;
use commerce_lambda::api;
use commerce_lambda::auth;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(
    store: &(impl WebhookEndpoints + WebhookDeliveries),
    queue: &impl DeliveryQueue,
    req: Request,
) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::seller(&req)?;
        let webhook_id = api::path_param(&req, "webhook_id")?;
        let delivery_id = api::path_param(&req, "delivery_id")?;
        webhooks::retry(store, store, queue, &caller, &webhook_id, &delivery_id, chrono::Utc::now()).await
    }
    .await;
    Ok(api::respond(api::StatusCode::ACCEPTED, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_testkit::http::{body_json, sample_events};
    use commerce_testkit::webhooks::{Clock, InMemoryWebhooks, VirtualQueue};

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/retry-webhook-delivery").as_ref())
        {
            let queue = VirtualQueue::new(Clock::at(chrono::Utc::now()));
            let response = handle(&InMemoryWebhooks::new(), &queue, event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
