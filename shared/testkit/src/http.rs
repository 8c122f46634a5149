//! Support for the catalog functions' handler tests: API Gateway HTTP API (payload 2.0) requests with JWT
//! claims, the demo catalog in memory, and the sample events under `events/<function>/`, whose file names
//! start with the status they must produce.

use crate::catalog::InMemoryCatalog;
use commerce_demo::catalog as demo;
use lambda_http::{Body, Request, Response};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

pub use commerce_demo::catalog::DEMO_SELLERS;

/// The demo catalog in memory.
pub fn demo_store() -> InMemoryCatalog {
    let sellers: Vec<String> = DEMO_SELLERS.iter().map(|s| (*s).to_owned()).collect();
    match demo::catalog(&sellers) {
        Ok((categories, products)) => InMemoryCatalog::with(categories, products),
        Err(err) => panic!("the demo catalog is invalid: {err}"),
    }
}

/// Builds an HTTP API request event, as API Gateway sends it.
#[derive(Debug, Clone)]
pub struct RequestBuilder {
    method: String,
    route: String,
    path: String,
    path_params: Map<String, Value>,
    query: Map<String, Value>,
    headers: Map<String, Value>,
    claims: Option<Map<String, Value>>,
    body: Option<String>,
}

/// A request for `route` (e.g. `/v1/products/{product_id}`), with `path` the concrete path.
pub fn request(method: &str, route: &str, path: &str) -> RequestBuilder {
    RequestBuilder {
        method: method.to_owned(),
        route: route.to_owned(),
        path: path.to_owned(),
        path_params: Map::new(),
        query: Map::new(),
        headers: Map::from_iter([("content-type".to_owned(), json!("application/json"))]),
        claims: None,
        body: None,
    }
}

impl RequestBuilder {
    pub fn path_param(mut self, name: &str, value: &str) -> Self {
        self.path_params.insert(name.to_owned(), json!(value));
        self
    }

    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.query.insert(name.to_owned(), json!(value));
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.insert(name.to_lowercase(), json!(value));
        self
    }

    /// Signed in as `sub` in `groups` (e.g. `"sellers"`, `"admins"`).
    pub fn caller(mut self, sub: &str, groups: &str) -> Self {
        self.claims = Some(Map::from_iter([
            ("sub".to_owned(), json!(sub)),
            ("email".to_owned(), json!(format!("{sub}@example.com"))),
            ("cognito:groups".to_owned(), json!(format!("[{groups}]"))),
        ]));
        self
    }

    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = Some(body.into());
        self
    }

    pub fn json(self, value: &Value) -> Self {
        self.body(value.to_string())
    }

    /// The event as JSON (what `events/*.json` hold).
    pub fn event(&self) -> Value {
        let query_string = self
            .query
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join("&");
        let mut context = json!({
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {"method": self.method, "path": self.path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "tests"},
            "requestId": "req-1",
            "routeKey": format!("{} {}", self.method, self.route),
            "stage": "$default",
            "time": "01/Jan/2025:00:00:00 +0000",
            "timeEpoch": 1735689600000u64
        });
        if let Some(claims) = &self.claims {
            context["authorizer"] = json!({"jwt": {"claims": claims, "scopes": null}});
        }
        let mut event = json!({
            "version": "2.0",
            "routeKey": format!("{} {}", self.method, self.route),
            "rawPath": self.path,
            "rawQueryString": query_string,
            "headers": self.headers,
            "requestContext": context,
            "isBase64Encoded": false
        });
        if !self.query.is_empty() {
            event["queryStringParameters"] = Value::Object(self.query.clone());
        }
        if !self.path_params.is_empty() {
            event["pathParameters"] = Value::Object(self.path_params.clone());
        }
        if let Some(body) = &self.body {
            event["body"] = json!(body);
        }
        event
    }

    pub fn build(&self) -> Request {
        match lambda_http::request::from_str(&self.event().to_string()) {
            Ok(request) => request,
            Err(err) => panic!("not an HTTP API event: {err}"),
        }
    }
}

/// A response body as JSON (`null` when empty).
pub fn body_json(response: &Response<Body>) -> Value {
    match response.body() {
        Body::Text(text) => serde_json::from_str(text).unwrap_or(Value::Null),
        Body::Binary(bytes) => serde_json::from_slice(bytes).unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

/// A sample event: its file, the status its name promises, and the request.
#[derive(Debug)]
pub struct SampleEvent {
    pub path: PathBuf,
    pub expected_status: u16,
    pub request: Request,
}

/// Every `*.json` in `dir`, in name order. Panics on a file that is not an HTTP API event or whose name does
/// not start with a status code, so a broken fixture fails its test.
pub fn sample_events(dir: &Path) -> Vec<SampleEvent> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no sample events in {}", dir.display());
    paths
        .into_iter()
        .map(|path| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
            let expected_status = name
                .split(['-', '.'])
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{name} does not start with a status code"));
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            let request = lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            SampleEvent { path, expected_status, request }
        })
        .collect()
}
