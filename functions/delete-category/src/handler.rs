//! An admin deletes a category with no subcategories and no products; 204 on success.

use commerce_app::ports::{CategoryReader, CategoryUsage, CategoryWriter};
use commerce_app::services::catalog;
use commerce_lambda::api;
use commerce_lambda::auth;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(
    store: &(impl CategoryReader + CategoryUsage + CategoryWriter),
    req: Request,
) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::caller(&req)?;
        let category_id = api::path_param(&req, "category_id")?;
        catalog::delete_category(store, store, store, &caller, &category_id).await
    }
    .await;
    Ok(api::respond_no_content(result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_demo::catalog::EMPTY_CATEGORY_ID;
    use commerce_testkit::http::{body_json, demo_store, request, sample_events};

    fn delete(id: &str, sub: &str, groups: &str) -> Request {
        request("DELETE", "/v1/admin/categories/{category_id}", &format!("/v1/admin/categories/{id}"))
            .path_param("category_id", id)
            .caller(sub, groups)
            .build()
    }

    #[tokio::test]
    async fn when_admin_deletes_an_empty_category_should_204() {
        let store = demo_store();
        assert_eq!(handle(&store, delete(EMPTY_CATEGORY_ID, "admin-1", "admins")).await.unwrap().status(), 204);
        assert_eq!(handle(&store, delete(EMPTY_CATEGORY_ID, "admin-1", "admins")).await.unwrap().status(), 404);
    }

    #[tokio::test]
    async fn when_category_has_children_or_products_should_409() {
        for id in ["cat_electronics", "cat_laptops"] {
            let response = handle(&demo_store(), delete(id, "admin-1", "admins")).await.unwrap();
            assert_eq!(response.status(), 409, "{id}");
            assert_eq!(body_json(&response)["error"]["code"], "category_not_empty");
        }
    }

    #[tokio::test]
    async fn when_seller_deletes_should_403() {
        let response = handle(&demo_store(), delete(EMPTY_CATEGORY_ID, "seller-1", "sellers")).await.unwrap();
        assert_eq!(response.status(), 403);
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/delete-category").as_ref()) {
            let response = handle(&demo_store(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
