//! Approves a return for the calling seller's lines.

use commerce_app::services::orders::{ApproveReturnRequest, Restocking};
use commerce_domain::ids::OrderId;
use commerce_lambda::api;
use commerce_lambda::auth;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(deps: &impl Restocking, req: Request) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::seller(&req)?;
        let order_id: OrderId = api::path(&req, "order_id")?;
        let body: ApproveReturnRequest = api::parse_json(&req)?;
        let now = chrono::Utc::now();
        deps.approve_return(&caller, &order_id, body, now).await
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_testkit::http::{body_json, sample_events};
    use commerce_testkit::orders::restocking_deps;

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/approve-return").as_ref()) {
            let deps = restocking_deps().await;
            let response = handle(&deps, event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
