//! Answers 200 with the caller's cart, re-priced, with typed problems per line and its promotions (each
//! discount on its line, the codes' problems). A cart that is not the
//! caller's (wrong or missing `X-Cart-Token`, another shopper) or that expired reads as 404.

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
        promotions::cart::get(ctx, promotions, &access, &cart_id, chrono::Utc::now()).await
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_app::ports::CartStore;
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
            resolver: FixedCallers::default().shopper("token-u1", "u1").shopper("token-u2", "u2"),
            limits: CartLimits::default(),
            holds: CartHolds::off(),
        }
    }

    fn get(cart_id: &str) -> RequestBuilder {
        request("GET", "/v1/carts/{cart_id}", &format!("/v1/carts/{cart_id}")).path_param("cart_id", cart_id)
    }

    async fn guest_cart(ctx: &Ctx) -> (String, String) {
        let now = chrono::Utc::now();
        let (mut cart, token) = Cart::new_guest(now);
        let limits = CartLimits::default();
        cart.set_quantity("LAP-0001-16GB-512GB", 2, Money::new(99_900, Currency::USD), &limits, now).unwrap();
        cart.set_quantity("LAP-0001-8GB-256GB", 1, Money::new(89_900, Currency::USD), &limits, now).unwrap();
        ctx.store.create_cart(&cart).await.unwrap();
        (cart.cart_id, token)
    }

    #[tokio::test]
    async fn when_owner_reads_should_reprice_and_list_problems() {
        let ctx = context();
        let (cart_id, token) = guest_cart(&ctx).await;
        let response =
            handle(&ctx, &sample_promotions(), get(&cart_id).header("x-cart-token", &token).build()).await.unwrap();
        assert_eq!(response.status(), 200, "{}", body_json(&response));
        let body = body_json(&response);
        let lines = body["lines"].as_array().unwrap();
        let line = |sku: &str| lines.iter().find(|l| l["sku"] == sku).unwrap().clone();
        let laptop = line("LAP-0001-16GB-512GB");
        assert_eq!(laptop["unit_price"]["amount"], 109_900);
        assert_eq!(laptop["problems"][0]["type"], "price_changed");
        assert_eq!(line("LAP-0001-8GB-256GB")["problems"][0]["type"], "out_of_stock");
        assert_eq!(body["has_problems"], true);
    }

    #[tokio::test]
    async fn when_token_is_wrong_or_missing_or_another_shopper_should_404() {
        let ctx = context();
        let (cart_id, _) = guest_cart(&ctx).await;
        for req in [
            get(&cart_id).header("x-cart-token", "guess").build(),
            get(&cart_id).build(),
            get(&cart_id).header("authorization", "Bearer token-u2").build(),
        ] {
            assert_eq!(handle(&ctx, &sample_promotions(), req).await.unwrap().status(), 404);
        }
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/get-cart").as_ref()) {
            let response = handle(&context(), &sample_promotions(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
