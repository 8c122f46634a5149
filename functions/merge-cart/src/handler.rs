//! Parses `{"cart_id", "cart_token"}` of a guest cart, merges it into the signed-in shopper's cart
//! (quantities add up within the per-SKU limit), answers 200 with the shopper's cart.

use commerce_app::ports::{CartStore, SkuCatalog};
use commerce_app::services::cart::{CallerResolver, CartContext, CartInventory};
use commerce_domain::cart::MergeRequest;
use commerce_domain::ids::CartId;
use commerce_lambda::api;
use commerce_lambda::auth;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle<S: CartStore, C: SkuCatalog, I: CartInventory, R: CallerResolver>(
    ctx: &CartContext<S, C, I, R>,
    req: Request,
) -> Result<Response<Body>, Error> {
    let result = async {
        let caller = auth::caller(&req)?;
        let body: MergeRequest = api::parse_json(&req)?;
        let guest_cart = CartId::parse(&body.cart_id)?;
        ctx.merge(&caller, &guest_cart, &body.cart_token, chrono::Utc::now()).await
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
    use commerce_testkit::http::{body_json, demo_store, request, sample_events};
    use commerce_testkit::inventory::InMemoryInventory;
    use serde_json::json;

    type Ctx = CartContext<InMemoryCarts, InMemoryCatalog, InMemoryInventory, FixedCallers>;

    fn context() -> Ctx {
        CartContext {
            store: InMemoryCarts::new(),
            catalog: demo_store(),
            stock: InMemoryInventory::demo(),
            resolver: FixedCallers::default(),
            limits: CartLimits::default(),
            holds: CartHolds::off(),
        }
    }

    fn merge(user: &str, cart_id: &str, token: &str) -> Request {
        request("POST", "/v1/me/cart/merge", "/v1/me/cart/merge")
            .json(&json!({"cart_id": cart_id, "cart_token": token}))
            .caller(user, "shoppers")
            .build()
    }

    #[tokio::test]
    async fn when_guest_cart_merges_should_add_quantities_once() {
        let ctx = context();
        let now = chrono::Utc::now();
        let limits = CartLimits::default();
        let price = Money::new(2249, Currency::USD);
        let (mut guest, token) = Cart::new_guest(now);
        guest.set_quantity("TSH-0004-WHITE-M", 3, price, &limits, now).unwrap();
        guest.set_quantity("TSH-0004-WHITE-L", 9, price, &limits, now).unwrap();
        ctx.store.create_cart(&guest).await.unwrap();
        let (mut mine, _) = commerce_app::services::cart::shopper_cart(&ctx.store, "u1", now).await.unwrap();
        mine.set_quantity("TSH-0004-WHITE-M", 2, price, &limits, now).unwrap();
        mine.set_quantity("TSH-0004-WHITE-L", 4, price, &limits, now).unwrap();
        assert!(ctx.store.save_cart(&mine).await.unwrap());

        let response = handle(&ctx, merge("u1", &guest.cart_id, &token)).await.unwrap();
        assert_eq!(response.status(), 200, "{}", body_json(&response));
        let body = body_json(&response);
        let quantity = |sku: &str| body["lines"].as_array().unwrap().iter().find(|l| l["sku"] == sku).unwrap().clone();
        assert_eq!(quantity("TSH-0004-WHITE-M")["quantity"], 5);
        assert_eq!(quantity("TSH-0004-WHITE-L")["quantity"], 10);
        assert_eq!(quantity("TSH-0004-WHITE-L")["problems"][0]["type"], "quantity_limited");

        let again = handle(&ctx, merge("u1", &guest.cart_id, &token)).await.unwrap();
        assert_eq!(again.status(), 200);
        assert_eq!(body_json(&again)["lines"], body["lines"], "a repeated merge adds nothing");
        assert_eq!(handle(&ctx, merge("u2", &guest.cart_id, &token)).await.unwrap().status(), 404);
    }

    #[tokio::test]
    async fn when_the_carts_hold_different_currencies_should_409_currency_mismatch_and_change_neither() {
        let ctx = context();
        let now = chrono::Utc::now();
        let limits = CartLimits::default();
        let (mut guest, token) = Cart::new_guest(now);
        guest.set_quantity("TSH-0004-WHITE-M", 2, Money::new(1900, Currency::EUR), &limits, now).unwrap();
        ctx.store.create_cart(&guest).await.unwrap();
        let (mut mine, _) = commerce_app::services::cart::shopper_cart(&ctx.store, "u1", now).await.unwrap();
        mine.set_quantity("TSH-0004-WHITE-L", 1, Money::new(2249, Currency::USD), &limits, now).unwrap();
        assert!(ctx.store.save_cart(&mine).await.unwrap());
        let (guest_before, mine_before) =
            (ctx.store.get_cart(&guest.cart_id).await.unwrap(), ctx.store.get_cart(&mine.cart_id).await.unwrap());

        let response = handle(&ctx, merge("u1", &guest.cart_id, &token)).await.unwrap();
        assert_eq!(response.status(), 409, "{}", body_json(&response));
        assert_eq!(body_json(&response)["error"]["code"], "currency_mismatch");
        assert_eq!(ctx.store.get_cart(&guest.cart_id).await.unwrap(), guest_before);
        assert_eq!(ctx.store.get_cart(&mine.cart_id).await.unwrap(), mine_before);
    }

    #[tokio::test]
    async fn when_token_is_wrong_should_404() {
        let ctx = context();
        let (guest, _) = Cart::new_guest(chrono::Utc::now());
        ctx.store.create_cart(&guest).await.unwrap();
        assert_eq!(handle(&ctx, merge("u1", &guest.cart_id, "guess")).await.unwrap().status(), 404);
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/merge-cart").as_ref()) {
            let response = handle(&context(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
