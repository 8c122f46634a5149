//! The HTTP mapping for the whole API: request parsing helpers, the one translation of `DomainError` into a
//! status code and a stable JSON error body `{"error": {"code", "message", "field"?}}`, and the caching
//! headers: every answer is `Cache-Control: no-store` unless a public read opts in with [`respond_public`]
//! (docs/CACHING.md).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use commerce_domain::error::DomainError;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

pub use http::StatusCode;

/// `Cache-Control` of every answer that is not a public read: carts, checkout, orders, anything signed in,
/// every error. Neither a browser nor a CDN keeps it.
pub const NO_STORE: &str = "no-store";

/// `Cache-Control` of a public read (the catalog, search): a browser reuses it for 30 s, a shared cache (the
/// CDN) for 60 s. A shared cache's `Age` counts against the browser's 30 s, so a price, a stock status or a
/// search hit is at most 60 s older than the table it was read from (plus the search index's own lag).
/// Checkout re-prices every line from the table, so a stale page can show an old price but never charge it.
pub const PUBLIC_CACHE: &str = "public, max-age=30, s-maxage=60";

/// The status and the stable code (from the registry, `ErrorCode`) for an error. Codes never change once
/// published.
pub fn status_and_code(err: &DomainError) -> (StatusCode, &'static str) {
    let status = match err {
        DomainError::Validation { .. } | DomainError::Refused { .. } | DomainError::PaymentDeclined { .. } => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        DomainError::InvalidParameter { .. } | DomainError::MalformedBody(_) => StatusCode::BAD_REQUEST,
        DomainError::Unauthenticated => StatusCode::UNAUTHORIZED,
        DomainError::Forbidden(_) | DomainError::Denied { .. } => StatusCode::FORBIDDEN,
        DomainError::NotFound { .. } => StatusCode::NOT_FOUND,
        DomainError::Conflict { .. } | DomainError::PriceChanged { .. } | DomainError::OutOfStock { .. } => {
            StatusCode::CONFLICT
        }
        DomainError::Gone { .. } => StatusCode::GONE,
        DomainError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        DomainError::Transient(_) => StatusCode::SERVICE_UNAVAILABLE,
        DomainError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, err.code().as_str())
}

/// Renders an error. Internal causes are logged with their chain and never sent to the caller.
pub fn error_response(err: &DomainError) -> Response<Body> {
    let (status, code) = status_and_code(err);
    let mut body = json!({ "code": code, "message": err.to_string() });
    match err {
        DomainError::Validation { field, .. }
        | DomainError::Refused { field, .. }
        | DomainError::InvalidParameter { field, .. } => {
            body["field"] = json!(field);
        }
        DomainError::OutOfStock { sku } => body["sku"] = json!(sku),
        DomainError::PriceChanged { expected, actual } => {
            body["expected"] = json!(expected);
            body["actual"] = json!(actual);
        }
        DomainError::Unexpected(source) => {
            tracing::error!(error = %source, chain = ?error_chain(source.as_ref()), "unexpected error");
            body["message"] = json!("internal error");
        }
        DomainError::Transient(cause) => {
            tracing::warn!(cause = %cause, "transient failure");
            body["message"] = json!("temporarily unavailable, retry later");
        }
        _ => {}
    }
    let mut response = json_response(status, &json!({ "error": body }));
    if let DomainError::RateLimited { retry_after_secs } = err {
        if let Ok(value) = retry_after_secs.to_string().parse() {
            response.headers_mut().insert(http::header::RETRY_AFTER, value);
        }
    }
    response
}

fn error_chain(err: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut chain = Vec::new();
    let mut current = err.source();
    while let Some(cause) = current {
        chain.push(cause.to_string());
        current = cause.source();
    }
    chain
}

/// A JSON response with the given status.
pub fn json_response<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Body::Binary(bytes));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    headers.insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static(NO_STORE));
    response
}

/// Maps a use-case result to a response: `status` with the JSON value on success, the error mapping otherwise.
/// Handlers return this as `Ok(..)`: a 4xx is a handled outcome, not a function error.
pub fn respond<T: Serialize>(status: StatusCode, result: Result<T, DomainError>) -> Response<Body> {
    match result {
        Ok(value) => json_response(status, &value),
        Err(err) => error_response(&err),
    }
}

/// An empty 204 response, or the error mapping.
pub fn respond_no_content(result: Result<(), DomainError>) -> Response<Body> {
    match result {
        Ok(()) => {
            let mut response = Response::new(Body::Empty);
            *response.status_mut() = StatusCode::NO_CONTENT;
            response.headers_mut().insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static(NO_STORE));
            response
        }
        Err(err) => error_response(&err),
    }
}

/// Maps the result of a public read (no caller, the same answer for everyone): on success a 200-style JSON
/// answer that a browser and a CDN may keep ([`PUBLIC_CACHE`]) with a strong `ETag` of its bytes, or `304 Not
/// Modified` with no body when the request's `If-None-Match` already names that tag. Errors are `no-store`: a
/// 404 is never cached.
pub fn respond_public<T: Serialize>(
    req: &Request,
    status: StatusCode,
    result: Result<T, DomainError>,
) -> Response<Body> {
    let value = match result {
        Ok(value) => value,
        Err(err) => return error_response(&err),
    };
    let mut response = json_response(status, &value);
    let tag = match response.body() {
        Body::Binary(bytes) => entity_tag(bytes),
        _ => entity_tag(b""),
    };
    let conditional = matches!(*req.method(), http::Method::GET | http::Method::HEAD);
    let not_modified = conditional
        && req
            .headers()
            .get_all(http::header::IF_NONE_MATCH)
            .iter()
            .any(|field| field.to_str().is_ok_and(|list| if_none_match_matches(list, &tag)));
    if not_modified {
        response = Response::new(Body::Empty);
        *response.status_mut() = StatusCode::NOT_MODIFIED;
    }
    let headers = response.headers_mut();
    headers.insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static(PUBLIC_CACHE));
    if let Ok(value) = http::HeaderValue::from_str(&tag) {
        headers.insert(http::header::ETAG, value);
    }
    response
}

/// The strong entity tag of a representation: the first 16 bytes of its SHA-256, base64url, quoted. Equal
/// bytes give equal tags on every instance of every function.
pub fn entity_tag(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    format!("\"{}\"", URL_SAFE_NO_PAD.encode(&digest[..16]))
}

/// Whether an `If-None-Match` field value matches `tag` (RFC 9110 13.1.2): `*`, or a comma-separated list of
/// entity tags compared weakly (`W/"x"` matches `"x"`). A malformed list matches nothing from the point it
/// stops parsing, so the full answer is sent.
pub fn if_none_match_matches(field: &str, tag: &str) -> bool {
    if field.trim() == "*" {
        return true;
    }
    let wanted = opaque_tag(tag);
    let mut rest = field;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return false;
        }
        let unprefixed = rest.strip_prefix("W/").unwrap_or(rest);
        let Some(after_quote) = unprefixed.strip_prefix('"') else { return false };
        let Some(end) = after_quote.find('"') else { return false };
        if Some(&after_quote[..end]) == wanted {
            return true;
        }
        rest = &after_quote[end + 1..];
    }
}

/// The characters between the quotes of an entity tag (`"x"` or `W/"x"`).
fn opaque_tag(tag: &str) -> Option<&str> {
    tag.strip_prefix("W/").unwrap_or(tag).strip_prefix('"')?.strip_suffix('"')
}

/// Parses the JSON body into `T`, naming the offending field on failure (400 `malformed_json`).
pub fn parse_json<T: DeserializeOwned>(req: &Request) -> Result<T, DomainError> {
    let bytes: &[u8] = match req.body() {
        Body::Empty => b"",
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => b"",
    };
    if bytes.is_empty() {
        return Err(DomainError::MalformedBody("a JSON body is required".into()));
    }
    let mut value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|err| DomainError::MalformedBody(err.to_string()))?;
    commerce_domain::json::integral_floats_as_integers(&mut value);
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if path.is_empty() || path == "." {
            DomainError::MalformedBody(inner.to_string())
        } else {
            DomainError::MalformedBody(format!("{path}: {inner}"))
        }
    })
}

/// A required path parameter (API Gateway always supplies declared ones; a missing one is a 400).
pub fn path_param(req: &Request, name: &str) -> Result<String, DomainError> {
    req.path_parameters()
        .first(name)
        .map(str::to_owned)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| DomainError::invalid_parameter(name, "is required"))
}

/// A path parameter parsed into its type once, here at the edge (`OrderId`, `Sku`, ...): a malformed value
/// is the type's own error (404 for an id, 400 naming `sku` for a SKU).
pub fn path<T>(req: &Request, name: &str) -> Result<T, DomainError>
where
    T: std::str::FromStr<Err = DomainError>,
{
    path_param(req, name)?.parse()
}

/// Whether the request came in on an admin route (`/v1/admin/...`): functions that serve an admin and a seller
/// route with one handler tell the two apart by it.
pub fn is_admin_route(req: &Request) -> bool {
    req.uri().path().starts_with("/v1/admin/")
}

/// An optional query-string parameter.
pub fn query_param(req: &Request, name: &str) -> Option<String> {
    req.query_string_parameters().first(name).map(str::to_owned)
}

/// An optional query parameter parsed with `FromStr`, 400 naming the parameter when it does not parse.
pub fn query_parse<T: std::str::FromStr>(req: &Request, name: &str) -> Result<Option<T>, DomainError> {
    match query_param(req, name) {
        None => Ok(None),
        Some(raw) => {
            raw.parse().map(Some).map_err(|_| DomainError::invalid_parameter(name, format!("cannot parse {raw:?}")))
        }
    }
}

/// The body's bytes as they arrived (what a webhook's signature covers); empty without a body.
pub fn raw_body(req: &Request) -> &[u8] {
    match req.body() {
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => b"",
    }
}

/// A request header as a string, if present and valid UTF-8.
pub fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_domain::error::ErrorCode;

    fn body_json(response: &Response<Body>) -> serde_json::Value {
        match response.body() {
            Body::Binary(bytes) => serde_json::from_slice(bytes).unwrap(),
            Body::Text(text) => serde_json::from_str(text).unwrap(),
            _ => serde_json::Value::Null,
        }
    }

    #[test]
    fn when_validation_fails_should_name_field_with_422() {
        let response = error_response(&DomainError::validation("title", "must not be empty"));
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body = body_json(&response);
        assert_eq!(body["error"]["code"], "validation_failed");
        assert_eq!(body["error"]["field"], "title");
    }

    #[test]
    fn when_refused_should_422_with_its_own_code_and_the_field() {
        let response =
            error_response(&DomainError::refused(ErrorCode::ComponentNotOwned, "variants[0].sku", "not yours"));
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body = body_json(&response);
        assert_eq!(
            (&body["error"]["code"], &body["error"]["field"]),
            (&json!("component_not_owned"), &json!("variants[0].sku"))
        );
    }

    #[test]
    fn when_unexpected_should_hide_internals() {
        let err = DomainError::unexpected(std::io::Error::other("table Foo does not exist at 10.0.0.1"));
        let response = error_response(&err);
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let text = body_json(&response).to_string();
        assert!(!text.contains("10.0.0.1"), "{text}");
        assert!(text.contains("\"internal\""));
    }

    #[test]
    fn when_rate_limited_should_send_retry_after() {
        let response = error_response(&DomainError::RateLimited { retry_after_secs: 3 });
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "3");
    }

    #[test]
    fn when_body_has_wrong_type_should_name_path() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Payload {
            quantity: u32,
        }
        let req = Request::new(Body::Text(r#"{"quantity": "three"}"#.into()));
        let err = parse_json::<Payload>(&req).unwrap_err();
        assert!(matches!(&err, DomainError::MalformedBody(m) if m.starts_with("quantity")), "{err:?}");
    }

    #[test]
    fn when_an_integer_is_written_as_a_float_without_fraction_should_take_it() {
        #[derive(Debug, serde::Deserialize, PartialEq)]
        struct Payload {
            quantity: u32,
            delta: i64,
            lines: Vec<i64>,
        }
        let req = Request::new(Body::Text(r#"{"quantity": 3.0, "delta": -12.0, "lines": [1e3, 2]}"#.into()));
        assert_eq!(parse_json::<Payload>(&req).unwrap(), Payload { quantity: 3, delta: -12, lines: vec![1000, 2] });
        for body in [r#"{"quantity": 3.5, "delta": 0, "lines": []}"#, r#"{"quantity": 1, "delta": 1e19, "lines": []}"#]
        {
            let err = parse_json::<Payload>(&Request::new(Body::Text(body.into()))).unwrap_err();
            assert_eq!(status_and_code(&err), (StatusCode::BAD_REQUEST, "malformed_json"), "{body}");
        }
        let req = Request::new(Body::Text(r#"{"quantity": 1, "delta": -9.223372036854775808e18, "lines": []}"#.into()));
        assert_eq!(parse_json::<Payload>(&req).unwrap().delta, i64::MIN);
        let req = Request::new(Body::Text(r#"{"quantity": 1, "delta": -9.3e18, "lines": []}"#.into()));
        assert!(parse_json::<Payload>(&req).is_err());
    }

    fn get_with(if_none_match: &[&str]) -> Request {
        let mut req = Request::new(Body::Empty);
        for value in if_none_match {
            req.headers_mut().append(http::header::IF_NONE_MATCH, value.parse().unwrap());
        }
        req
    }

    #[test]
    fn when_any_response_is_built_should_be_no_store() {
        let ok = respond(StatusCode::OK, Ok(json!({"cart_id": "c1"})));
        let created = json_response(StatusCode::CREATED, &json!({}));
        let empty = respond_no_content(Ok(()));
        let error = respond::<()>(StatusCode::OK, Err(DomainError::Unauthenticated));
        for response in [ok, created, empty, error] {
            assert_eq!(response.headers()["cache-control"], NO_STORE, "{}", response.status());
            assert!(response.headers().get("etag").is_none());
        }
    }

    #[test]
    fn when_a_public_read_succeeds_should_be_public_with_a_strong_tag_of_the_bytes() {
        let response = respond_public(&get_with(&[]), StatusCode::OK, Ok(json!({"price": 1999})));
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], PUBLIC_CACHE);
        assert_eq!(response.headers()["content-type"], "application/json");
        let tag = response.headers()["etag"].to_str().unwrap().to_owned();
        assert_eq!(tag, entity_tag(br#"{"price":1999}"#));
        assert!(tag.starts_with('"') && tag.ends_with('"') && tag.len() == 24, "{tag}");
        let changed = respond_public(&get_with(&[]), StatusCode::OK, Ok(json!({"price": 2099})));
        assert_ne!(changed.headers()["etag"], tag.as_str());
    }

    #[test]
    fn when_if_none_match_names_the_tag_should_304_without_a_body_and_with_the_same_headers() {
        let tag = entity_tag(br#"{"price":1999}"#);
        let weak = format!("W/{tag}");
        let listed = format!(r#""other", {tag}"#);
        for field in [tag.as_str(), weak.as_str(), listed.as_str(), "*"] {
            let response = respond_public(&get_with(&[field]), StatusCode::OK, Ok(json!({"price": 1999})));
            assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{field}");
            assert!(matches!(response.body(), Body::Empty), "{field}");
            assert_eq!(response.headers()["etag"], tag.as_str());
            assert_eq!(response.headers()["cache-control"], PUBLIC_CACHE);
            assert!(response.headers().get("content-type").is_none());
        }
        let second_field = respond_public(&get_with(&[r#""a""#, &tag]), StatusCode::OK, Ok(json!({"price": 1999})));
        assert_eq!(second_field.status(), StatusCode::NOT_MODIFIED, "repeated fields are one list");
        let other = respond_public(&get_with(&[r#""stale""#]), StatusCode::OK, Ok(json!({"price": 1999})));
        assert_eq!(other.status(), StatusCode::OK);
    }

    #[test]
    fn when_the_request_is_not_a_get_should_ignore_if_none_match() {
        let mut req = get_with(&["*"]);
        *req.method_mut() = http::Method::POST;
        assert_eq!(respond_public(&req, StatusCode::OK, Ok(json!({}))).status(), StatusCode::OK);
    }

    #[test]
    fn when_a_public_read_fails_should_be_no_store_without_a_tag() {
        let err = DomainError::NotFound { entity: "product" };
        let response = respond_public::<()>(&get_with(&["*"]), StatusCode::OK, Err(err));
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.headers()["cache-control"], NO_STORE);
        assert!(response.headers().get("etag").is_none());
    }

    #[test]
    fn if_none_match_follows_rfc_9110() {
        let tag = r#""abc""#;
        for (field, expected) in [
            (r#""abc""#, true),
            (r#"W/"abc""#, true),
            (r#""x", "abc""#, true),
            (r#""x",W/"abc""#, true),
            (" ,\t\"abc\" , ", true),
            ("*", true),
            (" * ", true),
            (r#""a,b", "abc""#, true),
            (r#""abcd""#, false),
            (r#""ab""#, false),
            ("abc", false),
            (r#""abc"#, false),
            ("", false),
            (r#"w/"abc""#, false),
            (r#"junk, "abc""#, false),
        ] {
            assert_eq!(if_none_match_matches(field, tag), expected, "{field:?}");
        }
        assert!(if_none_match_matches(r#""abc""#, r#"W/"abc""#), "a weak tag of ours matches too");
    }

    #[test]
    fn when_body_is_not_json_should_be_malformed() {
        let req = Request::new(Body::Text("{not json".into()));
        let err = parse_json::<serde_json::Value>(&req).unwrap_err();
        assert_eq!(status_and_code(&err), (StatusCode::BAD_REQUEST, "malformed_json"));
    }
}
