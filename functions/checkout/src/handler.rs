//! Parses the checkout request and runs it once per `Idempotency-Key`; answers 202 with the pending order.

use commerce::domain::cart::{hash_token, CartAccess};
use commerce::ports::{CartStore, CheckoutStarter, IdempotencyStore, OrderReader, OrderWriter, SkuCatalog};
use commerce::services::cart::CallerResolver;
use commerce::services::checkout::{self, CheckoutRequest};
use commerce::services::idempotency::{self, IdempotentRequest};
use commerce::{api, DomainError};
use lambda_http::{Body, Error, Request, Response};

/// What the handler needs, built once per cold start.
pub struct Deps<C, K, O, I, S, V> {
    pub carts: C,
    pub catalog: K,
    pub orders: O,
    pub idempotency: I,
    pub starter: S,
    pub verifier: V,
    pub lock: chrono::Duration,
}

pub async fn handle<C, K, O, I, S, V>(deps: &Deps<C, K, O, I, S, V>, req: Request) -> Result<Response<Body>, Error>
where
    C: CartStore,
    K: SkuCatalog,
    O: OrderReader + OrderWriter,
    I: IdempotencyStore,
    S: CheckoutStarter,
    V: CallerResolver,
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
    let now = chrono::Utc::now();
    let order_id = format!("ord_{}", key.digest());
    let execution = format!("checkout-{}", key.digest());
    let response = idempotency::run(&deps.idempotency, &key, deps.lock, now, || async {
        let result = checkout::start_checkout(
            &deps.carts, &deps.catalog, &deps.orders, &deps.starter, &access, email, request, order_id, &execution, now,
        )
        .await;
        api::respond(api::StatusCode::ACCEPTED, result)
    })
    .await;
    Ok(response)
}
