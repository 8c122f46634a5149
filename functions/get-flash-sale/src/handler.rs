//! Reads a sale's public view.

use commerce_app::ports::FlashSaleReader;
use commerce_app::services::flash_sale;
use commerce_domain::ids::SaleId;
use commerce_lambda::api;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(sales: &impl FlashSaleReader, req: Request) -> Result<Response<Body>, Error> {
    let result = async {
        let sale_id: SaleId = api::path(&req, "sale_id")?;
        flash_sale::get_sale(sales, &sale_id, chrono::Utc::now()).await
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_domain::flash_sale::NewFlashSale;
    use commerce_domain::money::{Currency, Money};
    use commerce_testkit::flash_sale::InMemoryFlashSales;
    use commerce_testkit::http::{body_json, request, sample_events};

    fn store() -> InMemoryFlashSales {
        let now = chrono::Utc::now();
        let sale = NewFlashSale {
            sku: "SKU-1".into(),
            units: 10,
            price: Money::new(100, Currency::USD),
            starts_at: now - chrono::Duration::minutes(1),
            ends_at: now + chrono::Duration::hours(1),
            per_customer_limit: 1,
            shards: None,
            lanes: None,
            hold_seconds: None,
            warehouse_id: None,
        }
        .into_sale("fs_live".into(), "seller".into(), "wh_east".into(), now, 160);
        InMemoryFlashSales::default().with_sale(sale)
    }

    fn get(id: &str) -> Request {
        request("GET", "/v1/flash-sales/{sale_id}", &format!("/v1/flash-sales/{id}")).path_param("sale_id", id).build()
    }

    #[tokio::test]
    async fn when_sale_is_live_should_say_live_then_sold_out() {
        let store = store();
        let response = handle(&store, get("fs_live")).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(body_json(&response)["status"], "live");
        store.close("fs_live");
        assert_eq!(body_json(&handle(&store, get("fs_live")).await.unwrap())["status"], "sold_out");
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/get-flash-sale").as_ref()) {
            let response = handle(&store(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
