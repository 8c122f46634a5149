//! Quotes the caller's cart for an address: 200 with the options of every seller part, cheapest first, and
//! their taxes. A cart that is not the caller's reads as 404; a part that cannot ship there is 422
//! `not_shippable` naming its seller.

use commerce_app::ports::{CartStore, QuoteStore, ShippingRateProvider, SkuCatalog, WarehouseReader};
use commerce_app::services::cart::CallerResolver;
use commerce_app::services::quote::{self, PricingTables, QuotePorts};
use commerce_domain::cart::CartAccess;
use commerce_domain::ids::CartId;
use commerce_lambda::api;
use lambda_http::{Body, Error, Request, Response};

/// What the handler needs, built once per cold start.
pub struct Deps<K, C, T, R, Q, V, W> {
    pub carts: K,
    pub catalog: C,
    pub tables: T,
    pub carriers: R,
    pub quotes: Q,
    pub verifier: V,
    /// Where carrier-rated parcels ship from.
    pub warehouses: W,
}

pub async fn handle<K, C, T, R, Q, V, W>(
    deps: &Deps<K, C, T, R, Q, V, W>,
    req: Request,
) -> Result<Response<Body>, Error>
where
    K: CartStore,
    C: SkuCatalog,
    T: PricingTables,
    R: ShippingRateProvider,
    Q: QuoteStore,
    V: CallerResolver,
    W: WarehouseReader,
{
    let result = async {
        let caller = deps.verifier.resolve(api::header(&req, "authorization").as_deref()).await?;
        let access = CartAccess { user_id: caller.map(|c| c.user_id), cart_token: api::header(&req, "x-cart-token") };
        let cart_id: CartId = api::path(&req, "cart_id")?;
        let input = api::parse_json(&req)?;
        let ports = QuotePorts {
            carts: &deps.carts,
            catalog: &deps.catalog,
            tables: &deps.tables,
            carriers: &deps.carriers,
            quotes: &deps.quotes,
            warehouses: &deps.warehouses,
        };
        quote::quote_cart(ports, &access, &cart_id, input, chrono::Utc::now()).await
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_app::ports::ProductReader;
    use commerce_domain::cart::{Cart, CartLimits};
    use commerce_testkit::cart::{FixedCallers, InMemoryCarts};
    use commerce_testkit::catalog::InMemoryCatalog;
    use commerce_testkit::http::{body_json, demo_store, request, sample_events};
    use commerce_testkit::inventory::InMemoryInventory;
    use commerce_testkit::shipping::{InMemoryQuotes, ScriptedCarrier};
    use commerce_testkit::shipping_config::InMemoryShippingConfig;
    use serde_json::json;

    type TestDeps = Deps<
        InMemoryCarts,
        InMemoryCatalog,
        InMemoryShippingConfig,
        ScriptedCarrier,
        InMemoryQuotes,
        FixedCallers,
        InMemoryInventory,
    >;

    async fn deps() -> (TestDeps, String) {
        let catalog = demo_store();
        let carts = InMemoryCarts::new();
        let now = chrono::Utc::now();
        let mut cart = Cart::new_shopper("shopper-1", now);
        let product = catalog.get_product("prd_demo-0001").await.unwrap().unwrap();
        cart.set_quantity(&product.variants[0].sku, 1, product.variants[0].price, &CartLimits::default(), now).unwrap();
        carts.create_cart(&cart).await.unwrap();
        let deps = Deps {
            carts,
            catalog,
            tables: InMemoryShippingConfig::new(),
            carriers: ScriptedCarrier::default(),
            quotes: InMemoryQuotes::new(),
            verifier: FixedCallers::default().shopper("token-1", "shopper-1").shopper("token-2", "shopper-2"),
            warehouses: InMemoryInventory::demo(),
        };
        (deps, cart.cart_id)
    }

    fn post(cart_id: &str, token: &str, body: serde_json::Value) -> Request {
        request("POST", "/v1/carts/{cart_id}/quote", &format!("/v1/carts/{cart_id}/quote"))
            .path_param("cart_id", cart_id)
            .header("authorization", &format!("Bearer {token}"))
            .json(&body)
            .build()
    }

    fn address() -> serde_json::Value {
        json!({"shipping_address": {"name": "Ada", "line1": "1 Main St", "city": "LA", "region": "CA",
                                    "postal_code": "90012", "country": "US"}})
    }

    #[tokio::test]
    async fn when_the_owner_quotes_should_200_with_a_quote_id_and_one_part_per_seller() {
        let (deps, cart_id) = deps().await;
        let response = handle(&deps, post(&cart_id, "token-1", address())).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = body_json(&response);
        assert!(body["quote_id"].as_str().unwrap().starts_with("qt_"), "{body}");
        assert_eq!(body["parts"].as_array().unwrap().len(), 1);
        assert!(body.get("fingerprint").is_none());
    }

    #[tokio::test]
    async fn when_another_shopper_quotes_the_cart_should_404() {
        let (deps, cart_id) = deps().await;
        let response = handle(&deps, post(&cart_id, "token-2", address())).await.unwrap();
        assert_eq!(response.status(), 404);
    }

    #[tokio::test]
    async fn when_the_address_is_bad_or_unknown_fields_come_should_4xx_naming_them() {
        let (deps, cart_id) = deps().await;
        let mut bad = address();
        bad["shipping_address"]["country"] = json!("usa");
        let response = handle(&deps, post(&cart_id, "token-1", bad)).await.unwrap();
        assert_eq!(response.status(), 422);
        assert_eq!(body_json(&response)["error"]["field"], "shipping_address.country");
        let mut extra = address();
        extra["coupon"] = json!("FREE");
        let response = handle(&deps, post(&cart_id, "token-1", extra)).await.unwrap();
        assert_eq!(response.status(), 400);
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        let (deps, _) = deps().await;
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/quote-cart").as_ref()) {
            let response = handle(&deps, event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
