//! Creates a guest cart (no token: 201 with `cart_id` and `cart_token`) or returns the signed-in shopper's
//! cart, creating it once (201 the first time, 200 after).

use commerce_app::ports::{CartStore, SkuCatalog};
use commerce_app::services::cart::{self, CallerResolver, CartContext, CartInventory};
use commerce_lambda::api;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle<S: CartStore, C: SkuCatalog, I: CartInventory, R: CallerResolver>(
    ctx: &CartContext<S, C, I, R>,
    req: Request,
) -> Result<Response<Body>, Error> {
    let result = async {
        let access = ctx.access(api::header(&req, "authorization").as_deref(), None).await?;
        cart::create_cart(&ctx.store, &access, chrono::Utc::now()).await
    }
    .await;
    Ok(match result {
        Ok(created) => {
            let status = if created.created { api::StatusCode::CREATED } else { api::StatusCode::OK };
            api::json_response(status, &created)
        }
        Err(err) => api::error_response(&err),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_domain::cart::{CartHolds, CartLimits};
    use commerce_testkit::cart::{FixedCallers, InMemoryCarts};
    use commerce_testkit::catalog::InMemoryCatalog;
    use commerce_testkit::http::{body_json, demo_store, request, sample_events};
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

    #[tokio::test]
    async fn when_guest_creates_should_get_id_and_token() {
        let response = handle(&context(), request("POST", "/v1/carts", "/v1/carts").build()).await.unwrap();
        assert_eq!(response.status(), 201);
        let body = body_json(&response);
        assert!(body["cart_id"].as_str().unwrap().starts_with("cart_"));
        assert!(body["cart_token"].as_str().unwrap().len() >= 43);
        assert_eq!(body["owner"], "guest");
    }

    #[tokio::test]
    async fn when_shopper_creates_twice_should_get_one_cart() {
        let ctx = context();
        let req = || request("POST", "/v1/carts", "/v1/carts").header("authorization", "Bearer token-u1").build();
        let first = handle(&ctx, req()).await.unwrap();
        let second = handle(&ctx, req()).await.unwrap();
        assert_eq!((first.status().as_u16(), second.status().as_u16()), (201, 200));
        assert_eq!(body_json(&first)["cart_id"], body_json(&second)["cart_id"]);
        assert!(body_json(&first).get("cart_token").is_none());
    }

    #[tokio::test]
    async fn when_token_is_invalid_should_401_not_a_guest_cart() {
        let req = request("POST", "/v1/carts", "/v1/carts").header("authorization", "Bearer forged").build();
        assert_eq!(handle(&context(), req).await.unwrap().status(), 401);
    }

    #[tokio::test]
    async fn when_running_the_sample_events_should_answer_the_status_in_their_names() {
        for event in sample_events(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/create-cart").as_ref()) {
            let response = handle(&context(), event.request).await.unwrap();
            assert_eq!(response.status(), event.expected_status, "{}: {}", event.path.display(), body_json(&response));
        }
    }
}
