//! An admin renames a category or replaces its attribute definitions.

use commerce_app::ports::{CategoryReader, CategoryWriter};
use commerce_app::services::catalog;
use commerce_lambda::api;
use commerce_lambda::auth;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(store: &(impl CategoryReader + CategoryWriter), req: Request) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::caller(&req)?;
        let category_id = api::path_param(&req, "category_id")?;
        let patch = api::parse_json(&req)?;
        catalog::update_category(store, store, &caller, &category_id, patch).await
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_testkit::http::{body_json, demo_store, request, sample_events};
    use serde_json::json;

    fn patch(id: &str, body: serde_json::Value, sub: &str, groups: &str) -> Request {
        request("PATCH", "/v1/admin/categories/{category_id}", &format!("/v1/admin/categories/{id}"))
            .path_param("category_id", id)
            .json(&body)
            .caller(sub, groups)
            .build()
    }

    #[tokio::test]
    async fn when_admin_renames_should_200_with_next_version() {
        let response = handle(&demo_store(), patch("cat_books", json!({"name": "Books & Media"}), "admin-1", "admins"))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body = body_json(&response);
        assert_eq!(body["name"], "Books & Media");
        assert_eq!(body["version"], 2);
    }

    #[tokio::test]
    async fn when_seller_updates_should_403() {
        let response =
            handle(&demo_store(), patch("cat_books", json!({"name": "X"}), "seller-1", "sellers")).await.unwrap();
        assert_eq!(response.status(), 403);
    }

    #[tokio::test]
    async fn when_category_is_unknown_should_404() {
        let response =
            handle(&demo_store(), patch("cat_nope", json!({"name": "X"}), "admin-1", "admins")).await.unwrap();
        assert_eq!(response.status(), 404);
    }

    #[tokio::test]
    async fn when_moving_a_category_should_400() {
        let response = handle(&demo_store(), patch("cat_books", json!({"parent_id": "cat_home"}), "admin-1", "admins"))
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/update-category").as_ref()) {
            let response = handle(&demo_store(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
