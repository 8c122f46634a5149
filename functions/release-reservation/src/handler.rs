//! Releases a reservation's stock (again: no effect), answers 200 with the reservation.

use commerce_app::ports::ReservationStore;
use commerce_domain::inventory::reservation::Action;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(store: &impl ReservationStore, req: Request) -> Result<Response<Body>, Error> {
    Ok(commerce_lambda::inventory::admin_finish(store, &req, Action::Release, chrono::Utc::now()).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_testkit::http::{body_json, sample_events};
    use commerce_testkit::inventory::InMemoryInventory;

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/release-reservation").as_ref()) {
            let response = handle(&InMemoryInventory::demo(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
