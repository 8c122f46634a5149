//! Parses `{"quantity": n}`, sets the line (the same quantity again changes nothing), answers 200 with the
//! re-priced cart.

use commerce_app::ports::{CartStore, SkuCatalog};
use commerce_app::services::cart::{CallerResolver, CartContext, CartInventory};
use commerce_domain::cart::SetQuantity;
use commerce_domain::ids::{CartId, Sku};
use commerce_lambda::api;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle<S: CartStore, C: SkuCatalog, I: CartInventory, R: CallerResolver>(
    ctx: &CartContext<S, C, I, R>,
    req: Request,
) -> Result<Response<Body>, Error> {
    let result = async {
        let access =
            ctx.access(api::header(&req, "authorization").as_deref(), api::header(&req, "x-cart-token")).await?;
        let cart_id: CartId = api::path(&req, "cart_id")?;
        let sku: Sku = api::path(&req, "sku")?;
        let body: SetQuantity = api::parse_json(&req)?;
        ctx.set_item(&access, &cart_id, &sku, body.quantity, chrono::Utc::now()).await
    }
    .await;
    Ok(api::respond(api::StatusCode::OK, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_app::ports::CartStore;
    use commerce_domain::cart::{Cart, CartHolds, CartLimits};
    use commerce_testkit::cart::{FixedCallers, InMemoryCarts};
    use commerce_testkit::catalog::InMemoryCatalog;
    use commerce_testkit::http::{body_json, demo_store, request, sample_events, RequestBuilder};
    use commerce_testkit::inventory::InMemoryInventory;
    use serde_json::json;

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

    fn put(cart_id: &str, sku: &str, quantity: serde_json::Value) -> RequestBuilder {
        request("PUT", "/v1/carts/{cart_id}/items/{sku}", &format!("/v1/carts/{cart_id}/items/{sku}"))
            .path_param("cart_id", cart_id)
            .path_param("sku", sku)
            .json(&json!({ "quantity": quantity }))
    }

    async fn guest_cart(ctx: &Ctx) -> (String, String) {
        let (cart, token) = Cart::new_guest(chrono::Utc::now());
        ctx.store.create_cart(&cart).await.unwrap();
        (cart.cart_id, token)
    }

    #[tokio::test]
    async fn when_same_quantity_is_put_twice_should_change_nothing() {
        let ctx = context();
        let (cart_id, token) = guest_cart(&ctx).await;
        let first = handle(&ctx, put(&cart_id, "TSH-0004-WHITE-M", json!(2)).header("x-cart-token", &token).build())
            .await
            .unwrap();
        assert_eq!(first.status(), 200, "{}", body_json(&first));
        assert_eq!(body_json(&first)["lines"][0]["unit_price"]["amount"], 2249);
        let stored = ctx.store.get_cart(&cart_id).await.unwrap().unwrap();
        let second = handle(&ctx, put(&cart_id, "TSH-0004-WHITE-M", json!(2)).header("x-cart-token", &token).build())
            .await
            .unwrap();
        assert_eq!(second.status(), 200);
        assert_eq!(ctx.store.get_cart(&cart_id).await.unwrap().unwrap(), stored);
        assert_eq!(body_json(&first), body_json(&second));
    }

    #[tokio::test]
    async fn when_quantity_exceeds_the_limit_should_422() {
        let ctx = context();
        let (cart_id, token) = guest_cart(&ctx).await;
        let response =
            handle(&ctx, put(&cart_id, "TSH-0004-WHITE-M", json!(11)).header("x-cart-token", &token).build())
                .await
                .unwrap();
        assert_eq!(response.status(), 422);
        assert_eq!(body_json(&response)["error"]["field"], "quantity");
    }

    #[tokio::test]
    async fn when_sku_is_unknown_or_not_owner_should_404() {
        let ctx = context();
        let (cart_id, token) = guest_cart(&ctx).await;
        let unknown =
            handle(&ctx, put(&cart_id, "NOPE-1", json!(1)).header("x-cart-token", &token).build()).await.unwrap();
        assert_eq!(unknown.status(), 404);
        let stranger = handle(
            &ctx,
            put(&cart_id, "TSH-0004-WHITE-M", json!(1)).header("authorization", "Bearer token-u1").build(),
        )
        .await
        .unwrap();
        assert_eq!(stranger.status(), 404);
    }

    #[tokio::test]
    async fn when_holds_are_on_and_stock_is_short_should_409_out_of_stock_and_keep_the_cart() {
        let mut ctx = context();
        ctx.holds = CartHolds { enabled: true, policy: Default::default() };
        let (cart_id, token) = guest_cart(&ctx).await;
        let held = handle(&ctx, put(&cart_id, "TSH-0004-WHITE-M", json!(2)).header("x-cart-token", &token).build())
            .await
            .unwrap();
        assert_eq!(held.status(), 200, "{}", body_json(&held));
        let hold_id = body_json(&held)["reservation"]["id"].as_str().unwrap().to_owned();
        assert!(hold_id.starts_with(&cart_id));
        let before = (ctx.store.get_cart(&cart_id).await.unwrap(), ctx.stock.ledger().stock);

        let sold_out = put(&cart_id, "LAP-0001-8GB-256GB", json!(1)).header("x-cart-token", &token).build();
        let refused = handle(&ctx, sold_out).await.unwrap();
        assert_eq!(refused.status(), 409);
        assert_eq!(body_json(&refused)["error"]["code"], "out_of_stock");
        assert_eq!((ctx.store.get_cart(&cart_id).await.unwrap(), ctx.stock.ledger().stock), before);
        let ledger = ctx.stock.ledger();
        assert_eq!(ledger.reservations[&hold_id].allocations.iter().map(|a| a.quantity).sum::<u32>(), 2);
        assert!(ledger.violations().is_empty());
    }

    #[tokio::test]
    async fn when_holds_are_off_should_hold_nothing() {
        let ctx = context();
        let (cart_id, token) = guest_cart(&ctx).await;
        let response = handle(&ctx, put(&cart_id, "TSH-0004-WHITE-M", json!(2)).header("x-cart-token", &token).build())
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(body_json(&response)["reservation"].is_null());
        assert!(ctx.stock.ledger().reservations.is_empty());
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/put-cart-item").as_ref()) {
            let response = handle(&context(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
