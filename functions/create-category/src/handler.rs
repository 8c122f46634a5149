//! An admin creates a category; answers 201 with it.

use commerce_app::ports::{CategoryReader, CategoryWriter};
use commerce_app::services::catalog;
use commerce_lambda::api;
use commerce_lambda::auth;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(store: &(impl CategoryReader + CategoryWriter), req: Request) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::caller(&req)?;
        let input = api::parse_json(&req)?;
        catalog::create_category(store, store, &caller, input).await
    }
    .await;
    Ok(api::respond(api::StatusCode::CREATED, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_testkit::http::{body_json, demo_store, request, sample_events};
    use serde_json::json;

    fn post(body: serde_json::Value, sub: &str, groups: &str) -> Request {
        request("POST", "/v1/admin/categories", "/v1/admin/categories").json(&body).caller(sub, groups).build()
    }

    #[tokio::test]
    async fn when_admin_creates_a_subcategory_should_201_with_its_path() {
        let store = demo_store();
        let body = json!({"name": "Tablets", "parent_id": "cat_electronics",
                          "attributes": [{"name": "stylus", "type": "boolean", "facetable": true}]});
        let response = handle(&store, post(body, "admin-1", "admins")).await.unwrap();
        assert_eq!(response.status(), 201);
        let created = body_json(&response);
        let id = created["category_id"].as_str().unwrap();
        assert!(id.starts_with("cat_"));
        assert_eq!(created["path"], json!(["cat_electronics", id]));
    }

    #[tokio::test]
    async fn when_seller_creates_a_category_should_403() {
        let response = handle(&demo_store(), post(json!({"name": "Mine"}), "seller-1", "sellers")).await.unwrap();
        assert_eq!(response.status(), 403);
    }

    #[tokio::test]
    async fn when_attribute_type_is_unknown_should_422_naming_it() {
        let body = json!({"name": "Toys", "attributes": [{"name": "age", "type": "integer"}]});
        let response = handle(&demo_store(), post(body, "admin-1", "admins")).await.unwrap();
        assert_eq!(response.status(), 422);
        assert_eq!(body_json(&response)["error"]["field"], "attributes[0].type");
    }

    #[tokio::test]
    async fn when_sibling_has_the_name_should_409() {
        let response = handle(&demo_store(), post(json!({"name": "books"}), "admin-1", "admins")).await.unwrap();
        assert_eq!(response.status(), 409);
        assert_eq!(body_json(&response)["error"]["code"], "category_exists");
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/create-category").as_ref()) {
            let response = handle(&demo_store(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
