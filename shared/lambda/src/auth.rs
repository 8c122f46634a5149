//! Who is calling: the verified JWT claims API Gateway's authorizer put in the request context, turned into a
//! `Caller` with roles from the Cognito groups. Functions never parse tokens on routes that have an authorizer.

use commerce_domain::error::DomainError;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use std::collections::HashMap;

pub use commerce_domain::auth::{parse_groups, Caller, Role};

/// The JWT claims in an API Gateway HTTP API (payload 2.0) request, if an authorizer ran.
pub fn claims(req: &Request) -> Option<HashMap<String, String>> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(ctx) => ctx.authorizer.as_ref()?.jwt.as_ref().map(|jwt| jwt.claims.clone()),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// The authenticated caller, or 401.
pub fn caller(req: &Request) -> Result<Caller, DomainError> {
    let claims = claims(req).ok_or(DomainError::Unauthenticated)?;
    Caller::from_claims(&claims)
}

/// The authenticated caller if they may use seller routes (a seller or an admin): 401 without a caller, 403
/// for anyone else. Seller handlers call it before they read the body, so a shopper is refused whatever they
/// send.
pub fn seller(req: &Request) -> Result<Caller, DomainError> {
    let caller = caller(req)?;
    caller.require_seller()?;
    Ok(caller)
}

/// The authenticated caller if an admin: 401 without a caller, 403 for anyone else. Admin handlers that take a
/// path parameter or a body call it first, so anyone else is refused whatever they send.
pub fn admin(req: &Request) -> Result<Caller, DomainError> {
    let caller = caller(req)?;
    caller.require_admin()?;
    Ok(caller)
}
