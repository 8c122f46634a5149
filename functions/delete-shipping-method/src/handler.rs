//! Deletes one of the caller's shipping methods (an admin may pass `seller_id`); 204 on success, another
//! seller's method is 404.

use commerce_app::ports::{ShippingMethodReader, ShippingMethodWriter};
use commerce_app::services::shipping_methods;
use commerce_domain::ids::ShippingMethodId;
use commerce_lambda::api;
use commerce_lambda::auth;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(
    store: &(impl ShippingMethodReader + ShippingMethodWriter),
    req: Request,
) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::seller(&req)?;
        let method_id: ShippingMethodId = api::path(&req, "method_id")?;
        let seller_id = api::query_param(&req, "seller_id");
        shipping_methods::delete_shipping_method(store, store, &caller, seller_id.as_deref(), &method_id).await
    }
    .await;
    Ok(api::respond_no_content(result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_testkit::http::{body_json, request, sample_events, DEMO_SELLERS};
    use commerce_testkit::shipping_config::{sample_shipping, EXPRESS_METHOD_ID, OTHER_SELLER_METHOD_ID};

    fn delete(id: &str, sub: &str, groups: &str) -> Request {
        request("DELETE", "/v1/seller/shipping/methods/{method_id}", &format!("/v1/seller/shipping/methods/{id}"))
            .path_param("method_id", id)
            .caller(sub, groups)
            .build()
    }

    #[tokio::test]
    async fn when_seller_deletes_their_method_should_204_then_404() {
        let store = sample_shipping();
        assert_eq!(handle(&store, delete(EXPRESS_METHOD_ID, DEMO_SELLERS[0], "sellers")).await.unwrap().status(), 204);
        assert!(store.stored_method(EXPRESS_METHOD_ID).is_none());
        assert_eq!(handle(&store, delete(EXPRESS_METHOD_ID, DEMO_SELLERS[0], "sellers")).await.unwrap().status(), 404);
    }

    #[tokio::test]
    async fn when_the_method_is_another_sellers_should_404_and_keep_it() {
        let store = sample_shipping();
        let response = handle(&store, delete(OTHER_SELLER_METHOD_ID, DEMO_SELLERS[0], "sellers")).await.unwrap();
        assert_eq!(response.status(), 404);
        assert!(store.stored_method(OTHER_SELLER_METHOD_ID).is_some());
    }

    #[tokio::test]
    async fn when_shopper_deletes_should_403() {
        let response = handle(&sample_shipping(), delete(EXPRESS_METHOD_ID, "shopper-1", "shoppers")).await.unwrap();
        assert_eq!(response.status(), 403);
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/delete-shipping-method").as_ref())
        {
            let response = handle(&sample_shipping(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
