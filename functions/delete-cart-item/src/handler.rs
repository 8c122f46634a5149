//! Removes a line from the caller's cart (an absent SKU changes nothing), answers 200 with the cart.

use commerce_app::ports::{CartStore, SkuCatalog};
use commerce_app::services::cart::{CallerResolver, CartContext, CartInventory};
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
        ctx.remove_item(&access, &cart_id, &sku, chrono::Utc::now()).await
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

    fn delete(cart_id: &str, sku: &str) -> RequestBuilder {
        request("DELETE", "/v1/carts/{cart_id}/items/{sku}", &format!("/v1/carts/{cart_id}/items/{sku}"))
            .path_param("cart_id", cart_id)
            .path_param("sku", sku)
    }

    #[tokio::test]
    async fn when_owner_removes_should_drop_the_line_once() {
        let ctx = context();
        let now = chrono::Utc::now();
        let mut cart = Cart::new_shopper("u1", now);
        cart.set_quantity("TSH-0004-WHITE-M", 1, Money::new(2249, Currency::USD), &CartLimits::default(), now).unwrap();
        ctx.store.create_cart(&cart).await.unwrap();
        let auth = "Bearer token-u1";
        let response = handle(&ctx, delete(&cart.cart_id, "TSH-0004-WHITE-M").header("authorization", auth).build())
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", body_json(&response));
        assert!(body_json(&response)["lines"].as_array().unwrap().is_empty());
        let version = ctx.store.get_cart(&cart.cart_id).await.unwrap().unwrap().version;
        let again = handle(&ctx, delete(&cart.cart_id, "TSH-0004-WHITE-M").header("authorization", auth).build())
            .await
            .unwrap();
        assert_eq!(again.status(), 200);
        assert_eq!(ctx.store.get_cart(&cart.cart_id).await.unwrap().unwrap().version, version);
        let guest = handle(&ctx, delete(&cart.cart_id, "TSH-0004-WHITE-M").build()).await.unwrap();
        assert_eq!(guest.status(), 404);
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/delete-cart-item").as_ref()) {
            let response = handle(&context(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
