//! Deletes a seller's product with its listings; its SKUs stay the seller's. 204 on success.

use commerce_app::ports::{ProductReader, ProductRemover};
use commerce_app::services::catalog;
use commerce_domain::ids::ProductId;
use commerce_lambda::api;
use commerce_lambda::auth;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(store: &(impl ProductReader + ProductRemover), req: Request) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::seller(&req)?;
        let product_id: ProductId = api::path(&req, "product_id")?;
        catalog::delete_product(store, store, &caller, &product_id).await
    }
    .await;
    Ok(api::respond_no_content(result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_app::ports::SkuCatalog;
    use commerce_demo::catalog::FIRST_PRODUCT_ID;
    use commerce_testkit::http::{body_json, demo_store, request, sample_events, DEMO_SELLERS};

    fn delete(id: &str, sub: &str, groups: &str) -> Request {
        request("DELETE", "/v1/seller/products/{product_id}", &format!("/v1/seller/products/{id}"))
            .path_param("product_id", id)
            .caller(sub, groups)
            .build()
    }

    #[tokio::test]
    async fn when_owner_deletes_should_204_and_retire_the_skus() {
        let store = demo_store();
        let sku = store.stored(FIRST_PRODUCT_ID).unwrap().variants[0].sku.clone();
        let response = handle(&store, delete(FIRST_PRODUCT_ID, DEMO_SELLERS[0], "sellers")).await.unwrap();
        assert_eq!(response.status(), 204);
        assert!(store.stored(FIRST_PRODUCT_ID).is_none());
        assert!(store.variants_by_sku(&[sku]).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn when_other_seller_deletes_should_403_and_keep_it() {
        let store = demo_store();
        let response = handle(&store, delete(FIRST_PRODUCT_ID, DEMO_SELLERS[1], "sellers")).await.unwrap();
        assert_eq!(response.status(), 403);
        assert!(store.stored(FIRST_PRODUCT_ID).is_some());
    }

    #[tokio::test]
    async fn when_shopper_deletes_should_403() {
        let response = handle(&demo_store(), delete(FIRST_PRODUCT_ID, "shopper-1", "shoppers")).await.unwrap();
        assert_eq!(response.status(), 403);
    }

    #[tokio::test]
    async fn when_product_is_unknown_should_404() {
        let response = handle(&demo_store(), delete("prd_nope", DEMO_SELLERS[0], "sellers")).await.unwrap();
        assert_eq!(response.status(), 404);
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/delete-product").as_ref()) {
            let response = handle(&demo_store(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
