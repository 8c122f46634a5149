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
    Ok(api::respond_public(&req, api::StatusCode::OK, result))
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
    async fn when_the_etag_is_current_should_304_and_when_the_price_changes_should_tag_anew() {
        let store = demo_store();
        let first = handle(&store, get(FIRST_PRODUCT_ID)).await.unwrap();
        assert_eq!(first.headers()["cache-control"], api::PUBLIC_CACHE);
        let etag = first.headers()["etag"].to_str().unwrap().to_owned();

        let conditional = || {
            request("GET", "/v1/products/{product_id}", &format!("/v1/products/{FIRST_PRODUCT_ID}"))
                .path_param("product_id", FIRST_PRODUCT_ID)
                .header("if-none-match", &etag)
                .build()
        };
        let second = handle(&store, conditional()).await.unwrap();
        assert_eq!(second.status(), 304);
        assert!(matches!(second.body(), Body::Empty));
        assert_eq!(second.headers()["etag"], etag.as_str());

        let current = store.stored(FIRST_PRODUCT_ID).unwrap();
        let mut repriced = current.clone();
        repriced.variants[0].price.amount += 100;
        repriced.version += 1;
        store.replace_product(&current, &repriced).await.unwrap();
        let after = handle(&store, conditional()).await.unwrap();
        assert_eq!(after.status(), 200);
        assert_ne!(after.headers()["etag"], etag.as_str());
        assert_eq!(body_json(&after)["variants"][0]["price"]["amount"], repriced.variants[0].price.amount);
    }

    #[tokio::test]
    async fn when_product_is_unknown_should_404_uncached() {
        let response = handle(&demo_store(), get("prd_01hzzzzzzzzzzzzzzzzzzzzzzz")).await.unwrap();
        assert_eq!(response.status(), 404);
        assert_eq!(body_json(&response)["error"]["code"], "not_found");
        assert_eq!(response.headers()["cache-control"], api::NO_STORE);
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
