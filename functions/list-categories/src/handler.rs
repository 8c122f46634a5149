//! Lists every category, parents before children, as `{"items": [...]}`.

use commerce_app::ports::CategoryReader;
use commerce_app::services::catalog;
use commerce_lambda::api;
use lambda_http::{Body, Error, Request, Response};
use serde_json::json;

pub async fn handle(store: &impl CategoryReader, req: Request) -> Result<Response<Body>, Error> {
    let result = catalog::list_categories(store).await.map(|items| json!({ "items": items }));
    Ok(api::respond_public(&req, api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_testkit::http::{body_json, demo_store, request, sample_events};

    #[tokio::test]
    async fn when_anyone_lists_should_see_the_tree_parents_first() {
        let response = handle(&demo_store(), request("GET", "/v1/categories", "/v1/categories").build()).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], api::PUBLIC_CACHE);
        assert!(response.headers().contains_key("etag"));
        let body = body_json(&response);
        let items = body["items"].as_array().unwrap();
        let position = |id: &str| items.iter().position(|c| c["category_id"] == id).unwrap();
        assert!(position("cat_electronics") < position("cat_laptops"));
        let laptops = &items[position("cat_laptops")];
        assert_eq!(laptops["path"], json!(["cat_electronics", "cat_laptops"]));
        assert!(laptops["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "ram_gb" && a["type"] == "number"));
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/list-categories").as_ref()) {
            let response = handle(&demo_store(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
