//! An admin lists every tax region, by code, as `{"items": [...]}`.

use commerce_app::ports::TaxRegionReader;
use commerce_app::services::tax;
use commerce_lambda::api;
use commerce_lambda::auth;
use lambda_http::{Body, Error, Request, Response};
use serde_json::json;

pub async fn handle(store: &impl TaxRegionReader, req: Request) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::caller(&req)?;
        tax::list_tax_regions(store, &caller).await
    }
    .await
    .map(|items| json!({ "items": items }));
    Ok(api::respond(api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_testkit::http::{body_json, request, sample_events};
    use commerce_testkit::shipping_config::sample_shipping;

    const ROUTE: &str = "/v1/admin/tax/regions";

    #[tokio::test]
    async fn when_admin_lists_should_see_every_region_by_code() {
        let response =
            handle(&sample_shipping(), request("GET", ROUTE, ROUTE).caller("admin-1", "admins").build()).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = body_json(&response);
        let codes: Vec<&str> =
            body["items"].as_array().unwrap().iter().map(|r| r["region"].as_str().unwrap()).collect();
        assert_eq!(codes, ["DE", "US-CA"]);
        assert_eq!(body["items"][0]["rates"][0], json!({"tax_class": "standard", "rate_ppm": 190000, "name": "MwSt"}));
    }

    #[tokio::test]
    async fn when_seller_or_anonymous_lists_should_403_or_401() {
        let seller = request("GET", ROUTE, ROUTE).caller("seller-1", "sellers").build();
        assert_eq!(handle(&sample_shipping(), seller).await.unwrap().status(), 403);
        assert_eq!(handle(&sample_shipping(), request("GET", ROUTE, ROUTE).build()).await.unwrap().status(), 401);
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/list-tax-regions").as_ref()) {
            let response = handle(&sample_shipping(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
