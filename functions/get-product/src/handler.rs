//! Reads an active product by id; anyone may call it.

use commerce_app::ports::ProductReader;
use commerce_app::services::catalog;
use commerce_domain::ids::ProductId;
use commerce_lambda::api;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(store: &impl ProductReader, req: Request) -> Result<Response<Body>, Error> {
    let result = async {
        let product_id: ProductId = api::path(&req, "product_id")?;
        catalog::get_product(store, &product_id).await
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_app::ports::ProductUpdater;
    use commerce_demo::catalog::FIRST_PRODUCT_ID;
    use commerce_testkit::http::{body_json, demo_store, request, sample_events};

    fn get(id: &str) -> Request {
        request("GET", "/v1/products/{product_id}", &format!("/v1/products/{id}")).path_param("product_id", id).build()
    }

    #[tokio::test]
    async fn when_product_is_active_should_200_without_a_token() {
        let response = handle(&demo_store(), get(FIRST_PRODUCT_ID)).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = body_json(&response);
        assert_eq!(body["product_id"], FIRST_PRODUCT_ID);
        assert!(body["variants"].as_array().is_some_and(|v| !v.is_empty()));
        assert_eq!(body["price_min"]["currency"], "USD");
    }

    #[tokio::test]
    async fn when_product_is_unknown_should_404() {
        let response = handle(&demo_store(), get("prd_01hzzzzzzzzzzzzzzzzzzzzzzz")).await.unwrap();
        assert_eq!(response.status(), 404);
        assert_eq!(body_json(&response)["error"]["code"], "not_found");
    }

    #[tokio::test]
    async fn when_id_is_junk_should_404_without_reading() {
        let response = handle(&demo_store(), get("../../etc/passwd")).await.unwrap();
        assert_eq!(response.status(), 404);
    }

    #[tokio::test]
    async fn when_product_is_draft_should_404() {
        let store = demo_store();
        let current = store.stored(FIRST_PRODUCT_ID).unwrap();
        let mut draft = current.clone();
        draft.status = commerce_domain::catalog::ProductStatus::Draft;
        draft.version += 1;
        store.replace_product(&current, &draft).await.unwrap();
        assert_eq!(handle(&store, get(FIRST_PRODUCT_ID)).await.unwrap().status(), 404);
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/get-product").as_ref()) {
            let response = handle(&demo_store(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
