//! Parses the checkout request and runs it once per `Idempotency-Key`; answers 202 with the pending order. The
//! order id is derived from the scoped key and the order keeps the request's fingerprint, so the order is the
//! key's record: a retry gets the same answer (replayed), a different request with the key 422, a concurrent
//! one 409.

use commerce_app::ports::QuoteStore;
use commerce_app::ports::{
    CartStore, CheckoutStarter, CustomerOrders, FlashSaleReader, FlashTicketStore, OrderReader, OrderWriter,
    PromotionReader, SkuCatalog,
};
use commerce_app::services::cart::CallerResolver;
use commerce_app::services::checkout::{self, CheckoutOutcome, CheckoutPorts, CheckoutRequest, KeyedCheckout};
use commerce_app::services::idempotency::IdempotentRequest;
use commerce_app::services::quote::PricingTables;
use commerce_domain::cart::CartAccess;
use commerce_domain::token::hash_token;
use commerce_domain::DomainError;
use commerce_lambda::api;
use commerce_lambda::idempotency;
use lambda_http::{Body, Error, Request, Response};

/// What the handler needs, built once per cold start.
pub struct Deps<C, K, F, O, S, V, T, Q, P> {
    pub carts: C,
    pub catalog: K,
    /// Shipping methods and tax regions.
    pub tables: T,
    /// The carts' shipping quotes.
    pub quotes: Q,
    /// Flash-sale tickets and sales, read when the body names a `flash_ticket_id`.
    pub flash: F,
    pub orders: O,
    pub starter: S,
    pub verifier: V,
    /// Promotions, their codes and counts (read only).
    pub promotions: P,
}

pub async fn handle<C, K, F, O, S, V, T, Q, P>(
    deps: &Deps<C, K, F, O, S, V, T, Q, P>,
    req: Request,
) -> Result<Response<Body>, Error>
where
    C: CartStore,
    K: SkuCatalog,
    F: FlashSaleReader + FlashTicketStore,
    O: OrderReader + OrderWriter + CustomerOrders,
    S: CheckoutStarter,
    V: CallerResolver,
    T: PricingTables,
    Q: QuoteStore,
    P: PromotionReader,
{
    let prepared = async {
        let body: serde_json::Value = api::parse_json(&req)?;
        let caller = deps.verifier.resolve(api::header(&req, "authorization").as_deref()).await?;
        let cart_token = api::header(&req, "x-cart-token").filter(|t| !t.is_empty());
        let scope = match (&caller, &cart_token) {
            (Some(caller), _) => caller.user_id.clone(),
            (None, Some(token)) => format!("guest-{}", hash_token(token)),
            (None, None) => return Err(DomainError::Unauthenticated),
        };
        let key = IdempotentRequest::new("checkout", &scope, api::header(&req, "idempotency-key").as_deref(), &body)?;
        let request: CheckoutRequest =
            serde_json::from_value(body).map_err(|e| DomainError::MalformedBody(e.to_string()))?;
        let access = CartAccess { user_id: caller.as_ref().map(|c| c.user_id.clone()), cart_token };
        Ok((key, request, access, caller.and_then(|c| c.email)))
    }
    .await;
    let (key, request, access, email) = match prepared {
        Ok(prepared) => prepared,
        Err(err) => return Ok(api::error_response(&err)),
    };
    let keyed = KeyedCheckout {
        request,
        order_id: format!("ord_{}", key.digest()),
        fingerprint: key.fingerprint.clone(),
        execution_name: format!("checkout-{}", key.digest()),
    };
    let ports = CheckoutPorts {
        carts: &deps.carts,
        catalog: &deps.catalog,
        flash: &deps.flash,
        orders: &deps.orders,
        starter: &deps.starter,
        tables: &deps.tables,
        quotes: &deps.quotes,
        promotions: &deps.promotions,
    };
    let outcome = checkout::start_checkout(ports, &access, email, keyed, chrono::Utc::now()).await;
    let accepted = |a| serde_json::to_value(a).map_err(DomainError::unexpected);
    Ok(match outcome {
        Ok(CheckoutOutcome::Placed(a)) => api::respond(api::StatusCode::ACCEPTED, accepted(a)),
        Ok(CheckoutOutcome::Replayed(a)) => match accepted(a) {
            Ok(body) => idempotency::replay(api::StatusCode::ACCEPTED, &body),
            Err(err) => api::error_response(&err),
        },
        Ok(CheckoutOutcome::KeyReused) => idempotency::key_reused(),
        Ok(CheckoutOutcome::InProgress) => idempotency::in_progress(),
        Err(err) => api::error_response(&err),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_app::ports::{CartStore, OrderReader, ProductReader as _};
    use commerce_domain::cart::{Cart, CartLimits};
    use commerce_domain::order::OrderStatus;
    use commerce_testkit::cart::{FixedCallers, InMemoryCarts};
    use commerce_testkit::catalog::InMemoryCatalog;
    use commerce_testkit::flash_sale::InMemoryFlashSales;
    use commerce_testkit::http::{body_json, demo_store, request, sample_events};
    use commerce_testkit::orders::InMemoryOrders;
    use commerce_testkit::shipping::InMemoryQuotes;
    use commerce_testkit::shipping_config::InMemoryShippingConfig;

    type TestDeps = Deps<
        InMemoryCarts,
        InMemoryCatalog,
        InMemoryFlashSales,
        InMemoryOrders,
        InMemoryOrders,
        FixedCallers,
        InMemoryShippingConfig,
        InMemoryQuotes,
        commerce_testkit::promotions::InMemoryPromotions,
    >;

    async fn deps() -> (TestDeps, String) {
        let catalog = demo_store();
        let carts = InMemoryCarts::new();
        let now = chrono::Utc::now();
        let mut cart = Cart::new_shopper("shopper-1", now);
        let product = catalog.get_product("prd_demo-0001").await.unwrap().unwrap();
        let (sku, price) = (product.variants[0].sku.clone(), product.variants[0].price);
        cart.set_quantity(&sku, 2, price, &CartLimits::default(), now).unwrap();
        let cart_id = cart.cart_id.clone();
        carts.create_cart(&cart).await.unwrap();
        let orders = InMemoryOrders::new();
        let deps = Deps {
            carts,
            catalog,
            flash: InMemoryFlashSales::default(),
            orders: orders.clone(),
            starter: orders,
            verifier: FixedCallers::default().shopper("<id token>", "shopper-1"),
            tables: InMemoryShippingConfig::new(),
            quotes: InMemoryQuotes::new(),
            promotions: commerce_testkit::promotions::sample_promotions(),
        };
        (deps, cart_id)
    }

    fn checkout(cart_id: &str, key: &str, method: &str) -> lambda_http::Request {
        let mut body = checkout_body(cart_id, method);
        body["total"] = serde_json::json!({"amount": 1, "currency": "USD"});
        signed_in(key, &body)
    }

    fn checkout_body(cart_id: &str, method: &str) -> serde_json::Value {
        serde_json::json!({
            "cart_id": cart_id,
            "shipping_address": {"name": "Ada", "line1": "1 Main St", "city": "Springfield", "postal_code": "62701", "country": "US"},
            "payment_method": method,
        })
    }

    /// A checkout request of the signed-in shopper of `deps()`.
    fn signed_in(key: &str, body: &serde_json::Value) -> lambda_http::Request {
        request("POST", "/v1/checkout", "/v1/checkout")
            .header("authorization", "Bearer <id token>")
            .header("idempotency-key", key)
            .json(body)
            .build()
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        let (deps, _) = deps().await;
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/checkout").as_ref()) {
            let response = handle(&deps, event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }

    #[tokio::test]
    async fn when_checking_out_should_202_price_server_side_and_start_one_saga() {
        let (deps, cart_id) = deps().await;
        let first = handle(&deps, checkout(&cart_id, "k-1", "pm_card_visa")).await.unwrap();
        assert_eq!(first.status(), 202, "{}", body_json(&first));
        let body = body_json(&first);
        assert_eq!(body["status"], "pending");
        let order_id = body["order_id"].as_str().unwrap().to_owned();
        let order = deps.orders.get_order(&order_id).await.unwrap().unwrap();
        assert_eq!(order.status(), OrderStatus::Pending);
        assert_ne!(order.total().amount, 1, "the client's total is ignored");
        let replay = handle(&deps, checkout(&cart_id, "k-1", "pm_card_visa")).await.unwrap();
        assert_eq!(replay.status(), 202);
        assert_eq!(replay.headers()["idempotent-replayed"], "true");
        assert_eq!(body_json(&replay)["order_id"], order_id.as_str());
        assert_eq!(deps.orders.started().len(), 1);
        let reused = handle(&deps, checkout(&cart_id, "k-1", "pm_card_mastercard")).await.unwrap();
        assert_eq!(reused.status(), 422);
        assert_eq!(body_json(&reused)["error"]["code"], "idempotency_key_reused");
    }

    #[tokio::test]
    async fn when_a_sku_in_the_cart_is_priced_zero_should_409_sku_unavailable_and_place_nothing() {
        let (mut deps, cart_id) = deps().await;
        let sellers: Vec<String> = commerce_testkit::http::DEMO_SELLERS.map(String::from).to_vec();
        let (categories, mut products) = commerce_demo::catalog::catalog(&sellers).unwrap();
        products[0].variants[0].price.amount = 0;
        deps.catalog = InMemoryCatalog::with(categories, products);
        let response = handle(&deps, checkout(&cart_id, "k-zero", "pm_card_visa")).await.unwrap();
        assert_eq!(response.status(), 409, "{}", body_json(&response));
        assert_eq!(body_json(&response)["error"]["code"], "sku_unavailable");
        assert!(deps.orders.started().is_empty());
    }

    #[tokio::test]
    async fn when_a_guest_cart_was_merged_should_409_cart_merged_and_place_nothing() {
        let (deps, _) = deps().await;
        let now = chrono::Utc::now();
        let (mut guest, token) = Cart::new_guest(now);
        guest
            .set_quantity(
                "LAP-0001-16GB-512GB",
                1,
                commerce_domain::money::Money::new(109_900, commerce_domain::money::Currency::USD),
                &CartLimits::default(),
                now,
            )
            .unwrap();
        let mut shopper = Cart::new_shopper("shopper-2", now);
        shopper.merge_from(&mut guest, &CartLimits::default(), now).unwrap();
        deps.carts.create_cart(&guest).await.unwrap();
        let mut body = checkout_body(&guest.cart_id, "pm_card_visa");
        body["email"] = serde_json::json!("guest@example.com");
        let req = request("POST", "/v1/checkout", "/v1/checkout")
            .header("x-cart-token", &token)
            .header("idempotency-key", "k-merged")
            .json(&body)
            .build();
        let response = handle(&deps, req).await.unwrap();
        assert_eq!(response.status(), 409, "{}", body_json(&response));
        assert_eq!(body_json(&response)["error"]["code"], "cart_merged");
        assert!(deps.orders.started().is_empty());
    }

    fn expecting(cart_id: &str, key: &str, expected_total: serde_json::Value) -> lambda_http::Request {
        let mut body = checkout_body(cart_id, "pm_card_visa");
        body["expected_total"] = expected_total;
        signed_in(key, &body)
    }

    #[tokio::test]
    async fn when_the_expected_total_differs_should_409_price_changed_with_both_amounts_and_place_nothing() {
        let (deps, cart_id) = deps().await;
        let actual = serde_json::json!({"amount": 2 * 89_900, "currency": "USD"});
        for stale in [
            serde_json::json!({"amount": 199_800, "currency": "USD"}),
            serde_json::json!({"amount": 179_800, "currency": "EUR"}),
        ] {
            let response = handle(&deps, expecting(&cart_id, "k-stale", stale.clone())).await.unwrap();
            assert_eq!(response.status(), 409, "{}", body_json(&response));
            let error = &body_json(&response)["error"];
            assert_eq!(error["code"], "price_changed");
            assert_eq!((&error["expected"], &error["actual"]), (&stale, &actual));
        }
        assert!(deps.orders.started().is_empty());
        let placed = handle(&deps, expecting(&cart_id, "k-stale", actual)).await.unwrap();
        assert_eq!(placed.status(), 202, "{}", body_json(&placed));
        assert!(placed.headers().get("idempotent-replayed").is_none(), "nothing was stored under the key before");
        assert_eq!(deps.orders.started().len(), 1);
    }

    #[tokio::test]
    async fn when_the_expected_total_is_not_money_should_400_naming_it() {
        let (deps, cart_id) = deps().await;
        let response =
            handle(&deps, expecting(&cart_id, "k-bad", serde_json::json!({"amount": "lots", "currency": "USD"})))
                .await
                .unwrap();
        assert_eq!(response.status(), 400, "{}", body_json(&response));
        assert_eq!(body_json(&response)["error"]["code"], "malformed_json");
    }

    #[tokio::test]
    async fn when_a_guest_checks_out_should_hand_out_the_order_token_once_and_keep_only_its_hash() {
        use commerce_domain::order::OrderAccess;
        let (deps, _) = deps().await;
        let now = chrono::Utc::now();
        let (mut cart, cart_token) = Cart::new_guest(now);
        let product = deps.catalog.get_product("prd_demo-0001").await.unwrap().unwrap();
        cart.set_quantity(&product.variants[0].sku, 1, product.variants[0].price, &CartLimits::default(), now).unwrap();
        deps.carts.create_cart(&cart).await.unwrap();
        let guest = || {
            let body = serde_json::json!({
                "cart_id": cart.cart_id,
                "email": "guest@example.com",
                "shipping_address": {"name": "Ada", "line1": "1 Main St", "city": "Springfield", "postal_code": "62701", "country": "US"},
                "payment_method": "pm_card_visa"
            });
            request("POST", "/v1/checkout", "/v1/checkout")
                .header("x-cart-token", &cart_token)
                .header("idempotency-key", "guest-1")
                .json(&body)
                .build()
        };
        let placed = handle(&deps, guest()).await.unwrap();
        assert_eq!(placed.status(), 202, "{}", body_json(&placed));
        let body = body_json(&placed);
        let token = body["order_token"].as_str().expect("a guest gets an order token").to_owned();
        assert_eq!(token.len(), 43, "256 bits, base64url");
        let order = deps.orders.get_order(body["order_id"].as_str().unwrap()).await.unwrap().unwrap();
        let stored = order.header().order_token_hash.clone().expect("the hash is stored");
        assert!(!stored.contains(&token), "never the token itself");
        let access = OrderAccess { order_token: Some(token.clone()), ..OrderAccess::default() };
        assert!(order.authorize(&access).is_ok(), "the token opens the order");

        let replay = handle(&deps, guest()).await.unwrap();
        assert_eq!(
            (replay.status().as_u16(), replay.headers()["idempotent-replayed"].to_str().ok()),
            (202, Some("true"))
        );
        assert_eq!(body_json(&replay)["order_id"], body["order_id"]);
        assert!(body_json(&replay).get("order_token").is_none(), "a replay hands out no token");
        let order = deps.orders.get_order(body["order_id"].as_str().unwrap()).await.unwrap().unwrap();
        assert_eq!(order.header().order_token_hash.as_deref(), Some(stored.as_str()), "the token is not replaced");
    }

    #[tokio::test]
    async fn when_a_shopper_checks_out_should_get_no_order_token() {
        let (deps, cart_id) = deps().await;
        let placed = handle(&deps, checkout(&cart_id, "k-3", "pm_card_visa")).await.unwrap();
        assert_eq!(placed.status(), 202);
        assert!(body_json(&placed).get("order_token").is_none(), "a signed-in shopper reads with their bearer token");
    }

    #[tokio::test]
    async fn when_card_number_is_sent_should_422_naming_payment_method() {
        let (deps, cart_id) = deps().await;
        let response = handle(&deps, checkout(&cart_id, "k-2", "4242424242424242")).await.unwrap();
        assert_eq!(response.status(), 422);
        assert_eq!(body_json(&response)["error"]["field"], "payment_method");
    }
}
