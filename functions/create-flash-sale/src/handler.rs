//! Parses the sale, creates it (allocating units), answers 201 with `sale_id`.

use commerce_app::ports::{FlashSaleCreator, SkuCatalog};
use commerce_app::services::flash_sale;
use commerce_lambda::api;
use commerce_lambda::auth;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(
    catalog: &impl SkuCatalog,
    sales: &impl FlashSaleCreator,
    policy: flash_sale::SalePolicy,
    req: Request,
) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::caller(&req)?;
        let input = api::parse_json(&req)?;
        flash_sale::create_sale(catalog, sales, &caller, input, policy, chrono::Utc::now()).await
    }
    .await;
    Ok(api::respond(api::StatusCode::CREATED, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_app::ports::SkuCatalog;
    use commerce_testkit::flash_sale::InMemoryFlashSales;
    use commerce_testkit::http::{body_json, demo_store, request, sample_events, DEMO_SELLERS};
    use serde_json::{json, Value};

    const POLICY: flash_sale::SalePolicy = flash_sale::SalePolicy { max_lanes: 160, gate_copies: 4 };

    async fn demo_sku(catalog: &impl SkuCatalog) -> String {
        let product = demo_store().stored(commerce_demo::catalog::FIRST_PRODUCT_ID).unwrap();
        let sku = product.variants[0].sku.clone();
        assert!(!catalog.variants_by_sku(std::slice::from_ref(&sku)).await.unwrap().is_empty());
        sku
    }

    fn body(sku: &str, units: u32) -> Value {
        json!({"sku": sku, "units": units, "price": {"amount": 999, "currency": "USD"},
               "starts_at": "2030-01-01T10:00:00Z", "ends_at": "2030-01-01T11:00:00Z", "per_customer_limit": 1})
    }

    fn post(caller: Option<(&str, &str)>, body: &Value) -> Request {
        let mut builder = request("POST", "/v1/seller/flash-sales", "/v1/seller/flash-sales").json(body);
        if let Some((sub, groups)) = caller {
            builder = builder.caller(sub, groups);
        }
        builder.build()
    }

    #[tokio::test]
    async fn when_seller_owns_sku_with_stock_should_201_with_sale_id_and_allocate() {
        let catalog = demo_store();
        let sku = demo_sku(&catalog).await;
        let sales = InMemoryFlashSales::default().with_stock(&sku, "wh_east", 50);
        let response =
            handle(&catalog, &sales, POLICY, post(Some((DEMO_SELLERS[0], "sellers")), &body(&sku, 40))).await.unwrap();
        assert_eq!(response.status(), 201, "{}", body_json(&response));
        let created = body_json(&response);
        assert!(created["sale_id"].as_str().is_some_and(|id| id.starts_with("fs_")));
        assert_eq!(created["status"], "upcoming");
        assert_eq!(sales.available_by_warehouse(&sku).await.unwrap(), vec![("wh_east".to_owned(), 10)]);
    }

    #[tokio::test]
    async fn when_stock_is_short_should_409_out_of_stock() {
        let catalog = demo_store();
        let sku = demo_sku(&catalog).await;
        let sales = InMemoryFlashSales::default().with_stock(&sku, "wh_east", 5);
        let response =
            handle(&catalog, &sales, POLICY, post(Some((DEMO_SELLERS[0], "sellers")), &body(&sku, 40))).await.unwrap();
        assert_eq!(response.status(), 409);
        assert_eq!(body_json(&response)["error"]["code"], "out_of_stock");
    }

    #[tokio::test]
    async fn when_another_seller_or_a_shopper_asks_should_403() {
        let catalog = demo_store();
        let sku = demo_sku(&catalog).await;
        let sales = InMemoryFlashSales::default().with_stock(&sku, "wh_east", 50);
        let other =
            handle(&catalog, &sales, POLICY, post(Some((DEMO_SELLERS[1], "sellers")), &body(&sku, 4))).await.unwrap();
        assert_eq!(other.status(), 403);
        let shopper = handle(&catalog, &sales, POLICY, post(Some(("u1", "shoppers")), &body(&sku, 4))).await.unwrap();
        assert_eq!(shopper.status(), 403);
        assert_eq!(handle(&catalog, &sales, POLICY, post(None, &body(&sku, 4))).await.unwrap().status(), 401);
    }

    #[tokio::test]
    async fn when_units_are_zero_should_422_naming_units() {
        let catalog = demo_store();
        let sku = demo_sku(&catalog).await;
        let sales = InMemoryFlashSales::default().with_stock(&sku, "wh_east", 50);
        let response =
            handle(&catalog, &sales, POLICY, post(Some((DEMO_SELLERS[0], "sellers")), &body(&sku, 0))).await.unwrap();
        assert_eq!(response.status(), 422);
        assert_eq!(body_json(&response)["error"]["field"], "units");
    }

    #[tokio::test]
    async fn when_the_price_is_zero_should_422_naming_price() {
        let catalog = demo_store();
        let sku = demo_sku(&catalog).await;
        let sales = InMemoryFlashSales::default().with_stock(&sku, "wh_east", 50);
        let mut free = body(&sku, 5);
        free["price"]["amount"] = json!(0);
        let response = handle(&catalog, &sales, POLICY, post(Some((DEMO_SELLERS[0], "sellers")), &free)).await.unwrap();
        assert_eq!(response.status(), 422, "{}", body_json(&response));
        assert_eq!(body_json(&response)["error"]["field"], "price");
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        let catalog = demo_store();
        let sku = demo_sku(&catalog).await;
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/create-flash-sale").as_ref()) {
            let sales = InMemoryFlashSales::default().with_stock(&sku, "wh_east", 100);
            let response = handle(&catalog, &sales, POLICY, event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
