//! The payload format 2.0 event API Gateway HTTP APIs send to a function, and the function's answer turned
//! back into an HTTP response.

use std::collections::{BTreeMap, HashMap};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, SET_COOKIE};
use http::{HeaderMap, StatusCode};
use serde_json::{json, Map, Value};

use crate::lambda::ACCOUNT_ID;

/// The local API's id, as in `requestContext.apiId`.
pub const API_ID: &str = "local";

/// What the gateway knows about one request when it builds the event.
pub struct EventInput<'a> {
    pub method: &'a str,
    pub raw_path: &'a str,
    pub raw_query: &'a str,
    pub protocol: &'a str,
    pub headers: &'a HeaderMap,
    pub source_ip: &'a str,
    pub route_key: &'a str,
    pub path_parameters: &'a HashMap<String, String>,
    /// The verified claims, when the route has an authorizer.
    pub claims: Option<&'a HashMap<String, String>>,
    pub request_id: &'a str,
    pub time: chrono::DateTime<chrono::Utc>,
    pub body: &'a [u8],
}

/// Builds the event as API Gateway does: lower-case headers (repeats joined by commas, cookies moved to
/// `cookies`), decoded query parameters (repeats joined by commas), decoded path parameters, and the body
/// as text or base64.
pub fn build_event(input: &EventInput<'_>) -> Value {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies: Vec<String> = Vec::new();
    for (name, value) in input.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == http::header::COOKIE {
            cookies.extend(value.split(';').map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned));
            continue;
        }
        headers
            .entry(name.as_str().to_string())
            .and_modify(|existing| {
                existing.push(',');
                existing.push_str(&value);
            })
            .or_insert(value);
    }
    headers.entry("x-forwarded-for".into()).or_insert_with(|| input.source_ip.to_string());
    headers.entry("x-forwarded-proto".into()).or_insert_with(|| "http".into());
    let host = headers.get("host").cloned().unwrap_or_else(|| "localhost".to_string());
    if let Some(port) = host.rsplit_once(':').map(|(_, p)| p.to_string()) {
        headers.entry("x-forwarded-port".into()).or_insert(port);
    }
    let domain_prefix = host.split(['.', ':']).next().unwrap_or_default().to_string();
    let user_agent = headers.get("user-agent").cloned().unwrap_or_default();

    let mut query: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in form_urlencoded_pairs(input.raw_query) {
        query
            .entry(k)
            .and_modify(|existing| {
                existing.push(',');
                existing.push_str(&v);
            })
            .or_insert(v);
    }

    let mut context = json!({
        "accountId": ACCOUNT_ID,
        "apiId": API_ID,
        "domainName": host,
        "domainPrefix": domain_prefix,
        "http": {
            "method": input.method,
            "path": input.raw_path,
            "protocol": input.protocol,
            "sourceIp": input.source_ip,
            "userAgent": user_agent,
        },
        "requestId": input.request_id,
        "routeKey": input.route_key,
        "stage": "$default",
        "time": input.time.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
        "timeEpoch": input.time.timestamp_millis(),
    });
    if let Some(claims) = input.claims {
        context["authorizer"] = json!({ "jwt": { "claims": claims, "scopes": Value::Null } });
    }

    let mut event = Map::new();
    event.insert("version".into(), json!("2.0"));
    event.insert("routeKey".into(), json!(input.route_key));
    event.insert("rawPath".into(), json!(input.raw_path));
    event.insert("rawQueryString".into(), json!(input.raw_query));
    if !cookies.is_empty() {
        event.insert("cookies".into(), json!(cookies));
    }
    event.insert("headers".into(), json!(headers));
    if !query.is_empty() {
        event.insert("queryStringParameters".into(), json!(query));
    }
    if !input.path_parameters.is_empty() {
        event.insert("pathParameters".into(), json!(input.path_parameters));
    }
    event.insert("requestContext".into(), context);
    if input.body.is_empty() {
        event.insert("isBase64Encoded".into(), json!(false));
    } else {
        let content_type = headers.get("content-type").map(String::as_str);
        match std::str::from_utf8(input.body) {
            Ok(text) if is_text(content_type) => {
                event.insert("body".into(), json!(text));
                event.insert("isBase64Encoded".into(), json!(false));
            }
            _ => {
                event.insert("body".into(), json!(BASE64.encode(input.body)));
                event.insert("isBase64Encoded".into(), json!(true));
            }
        }
    }
    Value::Object(event)
}

fn form_urlencoded_pairs(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_component(k), decode_component(v))
        })
        .collect()
}

fn decode_component(raw: &str) -> String {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

/// Content types sent to the function as text; anything else is base64. A body without a content type is
/// text when it is valid UTF-8.
fn is_text(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return true };
    let ct = ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    ct.starts_with("text/")
        || ct == "application/json"
        || ct.ends_with("+json")
        || ct.ends_with("+xml")
        || ct == "application/xml"
        || ct == "application/javascript"
        || ct == "application/x-www-form-urlencoded"
        || ct == "application/graphql"
}

/// An HTTP response made from a function's answer.
#[derive(Debug)]
pub struct FunctionResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Interprets a function's answer: a JSON object with `statusCode` is a structured response (headers,
/// multiValueHeaders, cookies, body, isBase64Encoded); any other valid JSON is a 200 `application/json`
/// response whose body is that JSON. Anything else is a malformed answer (`Err`, a 500 to the caller).
pub fn parse_response(payload: &[u8]) -> Result<FunctionResponse, String> {
    let value: Value = serde_json::from_slice(payload).map_err(|e| format!("response is not JSON: {e}"))?;
    let Some(object) = value.as_object().filter(|o| o.contains_key("statusCode")) else {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        return Ok(FunctionResponse { status: StatusCode::OK, headers, body: Bytes::copy_from_slice(payload) });
    };
    let status = match &object["statusCode"] {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .and_then(|code| u16::try_from(code).ok())
    .and_then(|code| StatusCode::from_u16(code).ok())
    .ok_or_else(|| format!("invalid statusCode {}", object["statusCode"]))?;

    let mut headers = HeaderMap::new();
    if let Some(map) = object.get("multiValueHeaders").and_then(Value::as_object) {
        for (name, values) in map {
            for value in values.as_array().into_iter().flatten() {
                append(&mut headers, name, value)?;
            }
        }
    }
    if let Some(map) = object.get("headers").and_then(Value::as_object) {
        for (name, value) in map {
            let name = header_name(name)?;
            headers.remove(&name);
            append(&mut headers, name.as_str(), value)?;
        }
    }
    for cookie in object.get("cookies").and_then(Value::as_array).into_iter().flatten() {
        append(&mut headers, SET_COOKIE.as_str(), cookie)?;
    }
    let base64 = object.get("isBase64Encoded").and_then(Value::as_bool).unwrap_or(false);
    let body = match object.get("body") {
        None | Some(Value::Null) => Bytes::new(),
        Some(Value::String(text)) if base64 => {
            Bytes::from(BASE64.decode(text).map_err(|e| format!("body is not valid base64: {e}"))?)
        }
        Some(Value::String(text)) => Bytes::from(text.clone()),
        Some(other) => Bytes::from(other.to_string()),
    };
    Ok(FunctionResponse { status, headers, body })
}

fn header_name(name: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("invalid header name {name:?}"))
}

fn append(headers: &mut HeaderMap, name: &str, value: &Value) -> Result<(), String> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Null => return Ok(()),
        other => other.to_string(),
    };
    let value = HeaderValue::from_str(&text).map_err(|_| format!("invalid value for header {name}"))?;
    headers.append(header_name(name)?, value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(headers: &'a HeaderMap, params: &'a HashMap<String, String>, body: &'a [u8]) -> EventInput<'a> {
        EventInput {
            method: "POST",
            raw_path: "/v1/products/a%20b",
            raw_query: "q=red+shoes&tag=a&tag=b&empty=&x=%26",
            protocol: "HTTP/1.1",
            headers,
            source_ip: "127.0.0.1",
            route_key: "POST /v1/products/{product_id}",
            path_parameters: params,
            claims: None,
            request_id: "req-1",
            time: chrono::DateTime::from_timestamp(1_583_348_638, 390_000_000).unwrap(),
            body,
        }
    }

    #[test]
    fn builds_the_v2_event() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("127.0.0.1:3000"));
        headers.append("x-multi", HeaderValue::from_static("a"));
        headers.append("x-multi", HeaderValue::from_static("b"));
        headers.insert("cookie", HeaderValue::from_static("c1=v1; c2=v2"));
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert("user-agent", HeaderValue::from_static("tests/1.0"));
        let params = HashMap::from([("product_id".to_string(), "a b".to_string())]);
        let event = build_event(&input(&headers, &params, br#"{"a":1}"#));

        assert_eq!(event["version"], "2.0");
        assert_eq!(event["routeKey"], "POST /v1/products/{product_id}");
        assert_eq!(event["rawPath"], "/v1/products/a%20b");
        assert_eq!(event["rawQueryString"], "q=red+shoes&tag=a&tag=b&empty=&x=%26");
        assert_eq!(event["cookies"], json!(["c1=v1", "c2=v2"]));
        assert_eq!(event["headers"]["x-multi"], "a,b");
        assert!(event["headers"].get("cookie").is_none());
        assert_eq!(event["queryStringParameters"], json!({"q": "red shoes", "tag": "a,b", "empty": "", "x": "&"}));
        assert_eq!(event["pathParameters"], json!({"product_id": "a b"}));
        assert!(event.get("stageVariables").is_none());
        let ctx = &event["requestContext"];
        assert_eq!(ctx["accountId"], "123456789012");
        assert_eq!(ctx["stage"], "$default");
        assert_eq!(ctx["domainName"], "127.0.0.1:3000");
        assert_eq!(ctx["http"]["method"], "POST");
        assert_eq!(ctx["http"]["userAgent"], "tests/1.0");
        assert_eq!(ctx["time"], "04/Mar/2020:19:03:58 +0000");
        assert_eq!(ctx["timeEpoch"], 1_583_348_638_390i64);
        assert!(ctx.get("authorizer").is_none());
        assert_eq!(event["body"], r#"{"a":1}"#);
        assert_eq!(event["isBase64Encoded"], false);

        let parsed: aws_lambda_events::apigw::ApiGatewayV2httpRequest =
            serde_json::from_value(event).expect("the event deserializes as the runtime's v2 request");
        assert_eq!(parsed.path_parameters.get("product_id").map(String::as_str), Some("a b"));
    }

    #[test]
    fn binary_bodies_are_base64_and_claims_reach_the_authorizer_context() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("image/png"));
        let params = HashMap::new();
        let claims = HashMap::from([("sub".to_string(), "u1".to_string())]);
        let mut i = input(&headers, &params, &[0, 1, 2, 255]);
        i.claims = Some(&claims);
        let event = build_event(&i);
        assert_eq!(event["isBase64Encoded"], true);
        assert_eq!(event["body"], "AAEC/w==");
        assert_eq!(event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"], "u1");
        assert!(event.get("pathParameters").is_none());
    }

    #[test]
    fn parses_structured_and_bare_responses() {
        let r = parse_response(
            br#"{"statusCode":201,"headers":{"x-a":"1","x-n":5},"multiValueHeaders":{"x-m":["p","q"]},
                 "cookies":["a=1","b=2"],"body":"hi"}"#,
        )
        .unwrap();
        assert_eq!(r.status, StatusCode::CREATED);
        assert_eq!(r.headers["x-a"], "1");
        assert_eq!(r.headers["x-n"], "5");
        assert_eq!(r.headers.get_all("x-m").iter().count(), 2);
        assert_eq!(r.headers.get_all("set-cookie").iter().count(), 2);
        assert_eq!(r.body, "hi");

        let r = parse_response(br#"{"statusCode":200,"isBase64Encoded":true,"body":"AAEC/w=="}"#).unwrap();
        assert_eq!(&r.body[..], &[0, 1, 2, 255]);

        let r = parse_response(br#"{"hello":"world"}"#).unwrap();
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(r.body, r#"{"hello":"world"}"#);

        assert!(parse_response(b"not json").is_err());
        assert!(parse_response(br#"{"statusCode":"abc"}"#).is_err());
        assert!(parse_response(br#"{"statusCode":200,"isBase64Encoded":true,"body":"%%%"}"#).is_err());
    }
}
