//! Checks a promotion code and keeps it on the caller's cart without holding anything; answers 200 with the
//! cart and its promotions. Unknown code: 404; ended: 409 `promotion_expired`; not available (not started,
//! switched off, used up, a taken single-use code): 409 `promotion_unavailable`.

use commerce_app::ports::{CartStore, PromotionReader, SkuCatalog};
use commerce_app::services::cart::{CallerResolver, CartContext, CartInventory};
use commerce_app::services::promotions;
use commerce_domain::ids::CartId;
use commerce_lambda::api;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle<S: CartStore, C: SkuCatalog, I: CartInventory, R: CallerResolver>(
    ctx: &CartContext<S, C, I, R>,
    promotions: &impl PromotionReader,
    req: Request,
) -> Result<Response<Body>, Error> {
    let result = async {
        let access =
            ctx.access(api::header(&req, "authorization").as_deref(), api::header(&req, "x-cart-token")).await?;
        let cart_id: CartId = api::path(&req, "cart_id")?;
        let code = api::path_param(&req, "code")?;
        promotions::cart::add_code(ctx, promotions, &access, &cart_id, &code, chrono::Utc::now()).await
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_domain::cart::{Cart, CartHolds, CartLimits};
    use commerce_domain::money::{Currency, Money};
    use commerce_testkit::cart::{FixedCallers, InMemoryCarts};
    use commerce_testkit::catalog::InMemoryCatalog;
    use commerce_testkit::http::{body_json, demo_store, request, sample_events, RequestBuilder};
    use commerce_testkit::inventory::InMemoryInventory;
    use commerce_testkit::promotions::sample_promotions;

    type Ctx = CartContext<InMemoryCarts, InMemoryCatalog, InMemoryInventory, FixedCallers>;

    fn context() -> Ctx {
        CartContext {
            store: InMemoryCarts::new(),
            catalog: demo_store(),
            stock: InMemoryInventory::demo(),
            resolver: FixedCallers::default().shopper("token-u1", "u1"),
            limits: CartLimits::default(),
            holds: CartHolds::off(),
        }
    }

    async fn guest_cart(ctx: &Ctx) -> (String, String) {
        let now = chrono::Utc::now();
        let (mut cart, token) = Cart::new_guest(now);
        cart.set_quantity("LAP-0001-16GB-512GB", 2, Money::new(109_900, Currency::USD), &CartLimits::default(), now)
            .unwrap();
        ctx.store.create_cart(&cart).await.unwrap();
        (cart.cart_id, token)
    }

    fn at(method: &str, cart_id: &str, code: &str) -> RequestBuilder {
        request(method, "/v1/carts/{cart_id}/promotions/{code}", &format!("/v1/carts/{cart_id}/promotions/{code}"))
            .path_param("cart_id", cart_id)
            .path_param("code", code)
    }

    #[tokio::test]
    async fn a_code_shows_its_discount_per_line_and_holds_nothing() {
        let (ctx, promotions) = (context(), sample_promotions());
        let (cart_id, token) = guest_cart(&ctx).await;
        let response =
            handle(&ctx, &promotions, at("PUT", &cart_id, "welcome10").header("x-cart-token", &token).build())
                .await
                .unwrap();
        let body = body_json(&response);
        assert_eq!(response.status(), 200, "{body}");
        assert_eq!(body["promotions"]["codes"], serde_json::json!(["WELCOME10"]));
        assert_eq!(body["promotions"]["discount_total"]["amount"], 21_980);
        assert_eq!(body["lines"][0]["discounts"][0]["amount"], 21_980);
        assert_eq!(promotions.counts(commerce_testkit::promotions::PLATFORM_PROMOTION_ID), (0, 0, 0));
    }

    #[tokio::test]
    async fn an_unknown_code_is_404_and_another_s_cart_is_404() {
        let (ctx, promotions) = (context(), sample_promotions());
        let (cart_id, token) = guest_cart(&ctx).await;
        let response =
            handle(&ctx, &promotions, at("PUT", &cart_id, "NOPE-123").header("x-cart-token", &token).build())
                .await
                .unwrap();
        assert_eq!(response.status(), 404);
        let response =
            handle(&ctx, &promotions, at("PUT", &cart_id, "WELCOME10").header("x-cart-token", "guess").build())
                .await
                .unwrap();
        assert_eq!(response.status(), 404);
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/put-cart-promotion").as_ref()) {
            let response = handle(&context(), &sample_promotions(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
