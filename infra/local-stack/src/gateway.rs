//! The local HTTP API: what API Gateway HTTP APIs do in front of the functions, from the plan's routes.
//!
//! Per request: CORS preflight answered by the gateway itself; route selection (see [`routes`]); route
//! throttling (token bucket, 429); the JWT authorizer (401 without invoking the function); the payload format
//! 2.0 event (see [`event`]); the function's answer turned into the response, with CORS headers added.
//! Limits: 10 MB request body (413), 6 MB event (413). Function error -> 500, function timeout -> 503. Every
//! gateway-made error is `{"message": "..."}` as API Gateway sends it. One access log line per request.

pub mod event;
pub mod routes;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use bytes::Bytes;
use commerce_aws::jwt::JwtVerifier;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::lambda::{Invocation, InvokeError, Lambdas};
use crate::plan::{CorsPlan, JwtAuthPlan, Plan, ThrottlePlan};
use event::{build_event, parse_response, EventInput};
use routes::RouteTable;

/// API Gateway's request body limit.
pub const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;

struct Gateway {
    plan: Arc<Plan>,
    routes: RouteTable,
    /// One verifier per distinct authorizer, by route index.
    verifiers: HashMap<usize, Arc<JwtVerifier>>,
    /// One bucket per throttled route, by route index.
    buckets: HashMap<usize, Mutex<TokenBucket>>,
    lambdas: Lambdas,
}

/// Serves the HTTP API on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    plan: Arc<Plan>,
    lambdas: Lambdas,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let gateway = Arc::new(Gateway::new(plan, lambdas)?);
    let app = axum::Router::new().fallback(handle).with_state(gateway);
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    Ok(())
}

impl Gateway {
    fn new(plan: Arc<Plan>, lambdas: Lambdas) -> anyhow::Result<Self> {
        let routes = RouteTable::new(plan.routes.iter().map(|r| (r.method.as_str(), r.path.as_str())))?;
        let mut by_authorizer: HashMap<(String, String, Vec<String>), Arc<JwtVerifier>> = HashMap::new();
        let mut verifiers = HashMap::new();
        let mut buckets = HashMap::new();
        for (index, route) in plan.routes.iter().enumerate() {
            if let Some(auth) = &route.auth {
                let JwtAuthPlan { issuer, audiences, jwks_url, .. } = auth;
                let key = (issuer.clone(), jwks_url.clone(), audiences.clone());
                let verifier = by_authorizer
                    .entry(key)
                    .or_insert_with(|| Arc::new(JwtVerifier::new(issuer, audiences.clone(), jwks_url)));
                verifiers.insert(index, verifier.clone());
            }
            if let Some(throttle) = &route.throttle {
                buckets.insert(index, Mutex::new(TokenBucket::new(throttle)));
            }
        }
        Ok(Self { plan, routes, verifiers, buckets, lambdas })
    }
}

async fn handle(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let origin = request.headers().get(http::header::ORIGIN).cloned();
    let request_id = uuid::Uuid::new_v4().simple().to_string()[..20].to_string();
    let (function, mut response) = route(&gw, peer, request, &request_id).await;
    if let (Some(cors), Some(origin)) = (&gw.plan.cors, &origin) {
        add_cors_headers(cors, origin, response.headers_mut());
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(HeaderName::from_static("apigw-requestid"), value);
    }
    tracing::info!(
        target: "access",
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        function = %function.as_deref().unwrap_or("-"),
        request_id = %request_id,
        "request"
    );
    response
}

/// Answers one request; returns the function that served it, if any.
async fn route(gw: &Gateway, peer: SocketAddr, request: Request, request_id: &str) -> (Option<String>, Response) {
    let time = chrono::Utc::now();
    let (parts, body) = request.into_parts();

    if parts.method == Method::OPTIONS && parts.headers.contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD) {
        if let Some(cors) = &gw.plan.cors {
            return (None, preflight(cors, &parts.headers));
        }
    }

    let Some(matched) = gw.routes.find(parts.method.as_str(), parts.uri.path()) else {
        return (None, message(StatusCode::NOT_FOUND, "Not Found"));
    };
    let route = &gw.plan.routes[matched.index];
    let function = Some(route.function.clone());

    if let Some(bucket) = gw.buckets.get(&matched.index) {
        let allowed = bucket.lock().map(|mut b| b.take()).unwrap_or(true);
        if !allowed {
            return (function, message(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests"));
        }
    }

    let claims = match (&route.auth, gw.verifiers.get(&matched.index)) {
        (Some(auth), Some(verifier)) => {
            let token = parts.headers.get(auth.identity_header.as_str()).and_then(|v| v.to_str().ok());
            let verified = match token {
                Some(token) => verifier.verify(token).await,
                None => Err(commerce_aws::jwt::JwtError::Missing),
            };
            match verified {
                Ok(claims) => Some(claims),
                Err(e) => {
                    tracing::info!(route = %matched.route_key, reason = %e, "token refused");
                    return (function, message(StatusCode::UNAUTHORIZED, "Unauthorized"));
                }
            }
        }
        _ => None,
    };

    let body = match axum::body::to_bytes(body, MAX_REQUEST_BYTES).await {
        Ok(body) => body,
        Err(_) => {
            return (function, message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"));
        }
    };
    let source_ip = peer.ip().to_string();
    let protocol = format!("{:?}", parts.version);
    let event = build_event(&EventInput {
        method: parts.method.as_str(),
        raw_path: parts.uri.path(),
        raw_query: parts.uri.query().unwrap_or(""),
        protocol: &protocol,
        headers: &parts.headers,
        source_ip: &source_ip,
        route_key: &matched.route_key,
        path_parameters: &matched.path_parameters,
        claims: claims.as_ref(),
        request_id,
        time,
        body: &body,
    });
    let payload = Bytes::from(event.to_string());
    let response = match gw.lambdas.invoke(&route.function, payload).await {
        Ok(Invocation::Success(answer)) => match parse_response(&answer) {
            Ok(answer) => {
                let mut response = Response::new(Body::from(answer.body));
                *response.status_mut() = answer.status;
                *response.headers_mut() = answer.headers;
                response
            }
            Err(reason) => {
                tracing::warn!(function = %route.function, %reason, "malformed function response");
                message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
        },
        Ok(outcome @ Invocation::FunctionError { .. }) if outcome.is_timeout() => {
            message(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
        }
        Ok(Invocation::FunctionError { error_type, .. }) => {
            tracing::warn!(function = %route.function, %error_type, "function error");
            message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
        Err(InvokeError::PayloadTooLarge { .. }) => message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"),
        Err(e) => {
            tracing::error!(function = %route.function, error = %e, "invocation failed");
            message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    };
    (function, response)
}

/// A gateway-made response: `{"message": "..."}`.
fn message(status: StatusCode, text: &str) -> Response {
    let body = serde_json::json!({ "message": text }).to_string();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn allowed_origin(cors: &CorsPlan, origin: &HeaderValue) -> Option<HeaderValue> {
    if cors.allow_origins.iter().any(|o| o == "*") && !cors.allow_credentials {
        return Some(HeaderValue::from_static("*"));
    }
    let origin_text = origin.to_str().ok()?;
    cors.allow_origins.iter().any(|o| o == "*" || o.eq_ignore_ascii_case(origin_text)).then(|| origin.clone())
}

fn header_list(values: &[String]) -> Option<HeaderValue> {
    (!values.is_empty()).then(|| HeaderValue::from_str(&values.join(",")).ok()).flatten()
}

/// The preflight answer API Gateway gives when CORS is configured.
fn preflight(cors: &CorsPlan, request: &HeaderMap) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let Some(origin) = request.get(http::header::ORIGIN).and_then(|o| allowed_origin(cors, o)) else {
        return response;
    };
    let headers = response.headers_mut();
    headers.insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    if let Some(methods) = header_list(&cors.allow_methods) {
        headers.insert(http::header::ACCESS_CONTROL_ALLOW_METHODS, methods);
    }
    if let Some(allow) = header_list(&cors.allow_headers) {
        headers.insert(http::header::ACCESS_CONTROL_ALLOW_HEADERS, allow);
    }
    if let Some(max_age) = cors.max_age {
        headers.insert(http::header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(max_age));
    }
    if cors.allow_credentials {
        headers.insert(http::header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
    }
    response
}

/// CORS headers on an actual (non-preflight) response to a cross-origin request.
fn add_cors_headers(cors: &CorsPlan, origin: &HeaderValue, headers: &mut HeaderMap) {
    let Some(allowed) = allowed_origin(cors, origin) else {
        return;
    };
    if allowed != "*" {
        headers.append(http::header::VARY, HeaderValue::from_static("origin"));
    }
    headers.insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
    if let Some(expose) = header_list(&cors.expose_headers) {
        headers.insert(http::header::ACCESS_CONTROL_EXPOSE_HEADERS, expose);
    }
    if cors.allow_credentials {
        headers.insert(http::header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
    }
}

/// Route throttling: `burst_limit` tokens, refilled at `rate_limit` per second.
struct TokenBucket {
    capacity: f64,
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(plan: &ThrottlePlan) -> Self {
        let capacity = f64::from(plan.burst_limit);
        Self { capacity, rate: plan.rate_limit.max(0.0), tokens: capacity, last: Instant::now() }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests;
