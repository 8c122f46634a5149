//! An admin creates or replaces a tax region; answers 200 with it. The region code is the path's (400 when
//! malformed); the body is the whole region.

use chrono::Utc;
use commerce_app::ports::{TaxRegionReader, TaxRegionWriter};
use commerce_app::services::tax;
use commerce_domain::tax::RegionCode;
use commerce_lambda::api;
use commerce_lambda::auth;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(store: &(impl TaxRegionReader + TaxRegionWriter), req: Request) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::admin(&req)?;
        let region: RegionCode = api::path(&req, "region")?;
        let input = api::parse_json(&req)?;
        tax::put_tax_region(store, store, &caller, region, input, Utc::now()).await
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_testkit::http::{body_json, request, sample_events};
    use commerce_testkit::shipping_config::sample_shipping;
    use serde_json::json;

    fn put(region: &str, body: serde_json::Value, sub: &str, groups: &str) -> Request {
        request("PUT", "/v1/admin/tax/regions/{region}", &format!("/v1/admin/tax/regions/{region}"))
            .path_param("region", region)
            .json(&body)
            .caller(sub, groups)
            .build()
    }

    fn sales_tax(rate_ppm: u32) -> serde_json::Value {
        json!({"prices_include_tax": false, "shipping_taxable": true, "combinable": true,
               "rates": [{"tax_class": "standard", "rate_ppm": rate_ppm, "name": "NY sales tax"}]})
    }

    #[tokio::test]
    async fn when_admin_puts_a_new_region_should_200_at_version_1() {
        let store = sample_shipping();
        let response = handle(&store, put("US-NY", sales_tax(40_000), "admin-1", "admins")).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = body_json(&response);
        assert_eq!(
            (&body["region"], &body["version"], &body["combinable"]),
            (&json!("US-NY"), &json!(1), &json!(true))
        );
        assert_eq!(store.stored_region("US-NY").unwrap().rates[0].rate_ppm, 40_000);
    }

    #[tokio::test]
    async fn when_admin_replaces_a_region_should_200_with_the_next_version() {
        let store = sample_shipping();
        let body = json!({"prices_include_tax": true, "shipping_taxable": true,
                          "rates": [{"tax_class": "standard", "rate_ppm": 160000, "name": "MwSt"}]});
        let response = handle(&store, put("DE", body, "admin-1", "admins")).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(body_json(&response)["version"], 2);
        assert_eq!(store.stored_region("DE").unwrap().rates.len(), 1, "replaced whole");
    }

    #[tokio::test]
    async fn when_seller_puts_should_403_whatever_the_region() {
        for region in ["US-NY", "usa"] {
            let response = handle(&sample_shipping(), put(region, sales_tax(1), "seller-1", "sellers")).await.unwrap();
            assert_eq!(response.status(), 403, "{region}");
        }
    }

    #[tokio::test]
    async fn when_region_code_is_malformed_should_400_naming_region() {
        for region in ["usa", "US-", "US_NY", "USA-NY"] {
            let response = handle(&sample_shipping(), put(region, sales_tax(1), "admin-1", "admins")).await.unwrap();
            assert_eq!(response.status(), 400, "{region}");
            assert_eq!(body_json(&response)["error"]["field"], "region");
        }
    }

    #[tokio::test]
    async fn when_a_rate_is_over_100_percent_should_422_naming_it() {
        let store = sample_shipping();
        let response = handle(&store, put("US-NY", sales_tax(1_000_001), "admin-1", "admins")).await.unwrap();
        assert_eq!(response.status(), 422);
        assert_eq!(body_json(&response)["error"]["field"], "rates[0].rate_ppm");
        assert!(store.stored_region("US-NY").is_none());
    }

    #[tokio::test]
    async fn when_body_has_an_unknown_field_should_400() {
        let mut body = sales_tax(1);
        body["rate"] = json!(5);
        let response = handle(&sample_shipping(), put("US-NY", body, "admin-1", "admins")).await.unwrap();
        assert_eq!(response.status(), 400);
        assert_eq!(body_json(&response)["error"]["code"], "malformed_json");
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/put-tax-region").as_ref()) {
            let response = handle(&sample_shipping(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
