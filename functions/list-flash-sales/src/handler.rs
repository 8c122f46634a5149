//! Lists a SKU's sales.

use commerce_app::ports::{FlashSaleListing, FlashSaleReader};
use commerce_app::services::flash_sale;
use commerce_domain::ids::Sku;
use commerce_domain::DomainError;
use commerce_lambda::api;
use lambda_http::{Body, Error, Request, Response};
use serde_json::json;

pub async fn handle(
    listing: &impl FlashSaleListing,
    reader: &impl FlashSaleReader,
    req: Request,
) -> Result<Response<Body>, Error> {
    let result = async {
        let sku = api::query_param(&req, "sku").ok_or_else(|| DomainError::invalid_parameter("sku", "is required"))?;
        let sku = Sku::parse(&sku)?;
        let items = flash_sale::sales_for_sku(listing, reader, &sku, chrono::Utc::now()).await?;
        Ok(json!({ "items": items }))
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_app::ports::FlashSaleReader;
    use commerce_domain::flash_sale::{FlashSale, Gate};
    use commerce_testkit::http::{body_json, request, sample_events};

    struct Empty;

    impl FlashSaleListing for Empty {
        async fn sales_for_sku(&self, _: &str) -> commerce_domain::error::Result<Vec<FlashSale>> {
            Ok(Vec::new())
        }
    }

    impl FlashSaleReader for Empty {
        async fn get_sale(&self, _: &str) -> commerce_domain::error::Result<Option<FlashSale>> {
            Ok(None)
        }
        async fn get_gate(&self, _: &str, _: bool) -> commerce_domain::error::Result<Gate> {
            Ok(Gate::default())
        }
    }

    #[tokio::test]
    async fn when_sku_is_missing_should_400_and_when_known_should_list() {
        let missing = request("GET", "/v1/flash-sales", "/v1/flash-sales").build();
        assert_eq!(handle(&Empty, &Empty, missing).await.unwrap().status(), 400);
        let ok = request("GET", "/v1/flash-sales", "/v1/flash-sales").query("sku", "SKU-1").build();
        let response = handle(&Empty, &Empty, ok).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(body_json(&response)["items"], serde_json::json!([]));
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/list-flash-sales").as_ref()) {
            let response = handle(&Empty, &Empty, event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
