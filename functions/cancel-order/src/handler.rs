//! Cancels the caller's order.

use commerce::services::orders::Restocking;
use commerce::{api, auth};
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(deps: &impl Restocking, req: Request) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::caller(&req)?;
        let order_id = api::path_param(&req, "order_id")?;
        let now = chrono::Utc::now();
        deps.cancel(&caller, &order_id, now).await
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce::adapters::catalog::testing::{body_json, sample_events};
    use commerce::adapters::orders::memory::restocking_deps;

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/cancel-order").as_ref()) {
            let deps = restocking_deps().await;
            let response = handle(&deps, event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
