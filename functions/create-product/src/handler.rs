//! Parses the caller and the product body, creates the product (a bundle of the seller's own SKUs only),
//! answers 201 with it.

use commerce_app::ports::{CategoryReader, ProductCreator, SkuCatalog};
use commerce_app::services::catalog;
use commerce_lambda::api;
use commerce_lambda::auth;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(
    store: &(impl CategoryReader + SkuCatalog + ProductCreator),
    req: Request,
) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::caller(&req)?;
        let input = api::parse_json(&req)?;
        catalog::create_product(store, store, store, &caller, input).await
    }
    .await;
    Ok(api::respond(api::StatusCode::CREATED, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_app::ports::ProductReader;
    use commerce_demo::catalog::FIRST_PRODUCT_ID;
    use commerce_domain::ids::ProductId;
    use commerce_testkit::http::{body_json, demo_store, request, sample_events, RequestBuilder, DEMO_SELLERS};
    use serde_json::json;

    const ROUTE: &str = "/v1/seller/products";

    fn post(body: serde_json::Value) -> RequestBuilder {
        request("POST", ROUTE, ROUTE).json(&body)
    }

    fn tshirt() -> serde_json::Value {
        json!({
            "title": "Classic tee", "description": "Soft cotton.", "category_id": "cat_tshirts", "brand": "Acme",
            "attributes": {"fabric": "cotton", "fit": "regular"},
            "images": ["https://img.example.com/tee.jpg"],
            "variants": [{"sku": "TS-BLU-M", "options": {"color": "blue", "size": "M"}, "price": {"amount": 1999, "currency": "USD"}}]
        })
    }

    #[tokio::test]
    async fn when_seller_posts_valid_product_should_201_and_store_it() {
        let store = demo_store();
        let response = handle(&store, post(tshirt()).caller("seller-9", "sellers").build()).await.unwrap();
        assert_eq!(response.status(), 201);
        let body = body_json(&response);
        let id = body["product_id"].as_str().unwrap();
        assert!(id.starts_with("prd_"));
        assert_eq!(body["seller_id"], "seller-9");
        assert_eq!(body["status"], "active");
        assert_eq!(body["variants"][0]["components"], json!([{"sku": "TS-BLU-M", "quantity": 1}]));
        assert_eq!(store.get_product(id).await.unwrap().unwrap().title, "Classic tee");
    }

    #[tokio::test]
    async fn when_shopper_posts_should_403() {
        let response = handle(&demo_store(), post(tshirt()).caller("shopper-1", "shoppers").build()).await.unwrap();
        assert_eq!(response.status(), 403);
        assert_eq!(body_json(&response)["error"]["code"], "forbidden");
    }

    #[tokio::test]
    async fn when_no_token_claims_should_401() {
        let response = handle(&demo_store(), post(tshirt()).build()).await.unwrap();
        assert_eq!(response.status(), 401);
    }

    #[tokio::test]
    async fn when_body_is_not_json_should_400() {
        let req = request("POST", ROUTE, ROUTE).body("{\"title\": ").caller("seller-9", "sellers").build();
        let response = handle(&demo_store(), req).await.unwrap();
        assert_eq!(response.status(), 400);
        assert_eq!(body_json(&response)["error"]["code"], "malformed_json");
    }

    #[tokio::test]
    async fn when_price_is_negative_should_422_naming_the_field() {
        let mut body = tshirt();
        body["variants"][0]["price"]["amount"] = json!(-5);
        let response = handle(&demo_store(), post(body).caller("seller-9", "sellers").build()).await.unwrap();
        assert_eq!(response.status(), 422);
        let error = &body_json(&response)["error"];
        assert_eq!(error["code"], "validation_failed");
        assert_eq!(error["field"], "variants[0].price.amount");
    }

    #[tokio::test]
    async fn when_price_is_zero_should_422_naming_the_field() {
        let mut body = tshirt();
        body["variants"][0]["price"]["amount"] = json!(0);
        let response = handle(&demo_store(), post(body).caller("seller-9", "sellers").build()).await.unwrap();
        assert_eq!(response.status(), 422, "{}", body_json(&response));
        let error = &body_json(&response)["error"];
        assert_eq!(error["code"], "validation_failed");
        assert_eq!(error["field"], "variants[0].price.amount");
    }

    #[tokio::test]
    async fn when_attribute_has_wrong_type_should_422_naming_it() {
        let mut body = tshirt();
        body["attributes"]["fit"] = json!(3);
        let response = handle(&demo_store(), post(body).caller("seller-9", "sellers").build()).await.unwrap();
        assert_eq!(response.status(), 422);
        assert_eq!(body_json(&response)["error"]["field"], "attributes.fit");
    }

    #[tokio::test]
    async fn when_sku_belongs_to_another_product_should_409_sku_taken() {
        let store = demo_store();
        let first = handle(&store, post(tshirt()).caller("seller-9", "sellers").build()).await.unwrap();
        assert_eq!(first.status(), 201);
        let second = handle(&store, post(tshirt()).caller("seller-8", "sellers").build()).await.unwrap();
        assert_eq!(second.status(), 409);
        assert_eq!(body_json(&second)["error"]["code"], "sku_taken");
    }

    fn bundle_of(component: &str) -> serde_json::Value {
        let mut body = tshirt();
        body["variants"][0]["sku"] = json!("TS-KIT-1");
        body["variants"][0]["components"] = json!([{"sku": component, "quantity": 1}]);
        body
    }

    #[tokio::test]
    async fn when_a_bundle_names_another_sellers_sku_should_422_component_not_owned() {
        let store = demo_store();
        let req = post(bundle_of("LAP-0001-8GB-256GB")).caller(DEMO_SELLERS[1], "sellers").build();
        let response = handle(&store, req).await.unwrap();
        assert_eq!(response.status(), 422, "{}", body_json(&response));
        let error = &body_json(&response)["error"];
        assert_eq!(error["code"], "component_not_owned");
        assert_eq!(error["field"], "variants[0].components[0].sku");
        let unknown = handle(&store, post(bundle_of("NO-SUCH-SKU")).caller(DEMO_SELLERS[1], "sellers").build());
        assert_eq!(body_json(&unknown.await.unwrap())["error"]["code"], "component_not_owned");
        let own = handle(&store, post(bundle_of("LAP-0001-8GB-256GB")).caller(DEMO_SELLERS[0], "sellers").build());
        assert_eq!(own.await.unwrap().status(), 201, "a bundle of the seller's own SKUs");
    }

    #[tokio::test]
    async fn when_a_deleted_products_sku_is_created_by_another_seller_should_409_sku_taken() {
        let store = demo_store();
        let owner = auth::Caller { user_id: DEMO_SELLERS[0].into(), email: None, roles: vec![auth::Role::Seller] };
        catalog::delete_product(&store, &store, &owner, &ProductId::parse(FIRST_PRODUCT_ID).unwrap()).await.unwrap();
        let mut body = tshirt();
        body["variants"][0]["sku"] = json!("LAP-0001-8GB-256GB");
        let other = handle(&store, post(body.clone()).caller(DEMO_SELLERS[1], "sellers").build()).await.unwrap();
        assert_eq!(other.status(), 409, "{}", body_json(&other));
        assert_eq!(body_json(&other)["error"]["code"], "sku_taken");
        let own = handle(&store, post(body).caller(DEMO_SELLERS[0], "sellers").build()).await.unwrap();
        assert_eq!(own.status(), 201, "the SKU's seller may use it again: {}", body_json(&own));
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/create-product").as_ref()) {
            let response = handle(&demo_store(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
