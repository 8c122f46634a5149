//! The gateway in process: a real listener, the real Lambda service running the fake runtime from the
//! Lambda tests, a JWKS served over HTTP and tokens signed with keys generated here.

use super::*;
use crate::lambda::tests::FakeFunction;
use crate::plan::{FunctionPlan, RoutePlan};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

const ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_local";
const CLIENT: &str = "web-client";
const ORIGIN: &str = "https://shop.example.com";

struct Key {
    kid: &'static str,
    encoding: EncodingKey,
    jwk: Value,
}

fn keys() -> &'static (Key, Key) {
    static KEYS: OnceLock<(Key, Key)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let make = |kid: &'static str| {
            let private = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("key");
            let der = private.to_pkcs1_der().expect("der");
            let jwk = json!({"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
                "n": URL_SAFE_NO_PAD.encode(private.n().to_bytes_be()),
                "e": URL_SAFE_NO_PAD.encode(private.e().to_bytes_be())});
            Key { kid, encoding: EncodingKey::from_rsa_der(der.as_bytes()), jwk }
        };
        (make("local-key"), make("stranger-key"))
    })
}

fn sign(key: &Key, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_string());
    jsonwebtoken::encode(&header, claims, &key.encoding).expect("sign")
}

fn claims(overrides: Value) -> Value {
    let now = chrono::Utc::now().timestamp();
    let mut c = json!({"sub": "user-7", "iss": ISSUER, "aud": CLIENT, "token_use": "id",
        "cognito:groups": ["sellers"], "iat": now, "exp": now + 600});
    for (k, v) in overrides.as_object().expect("object") {
        c[k] = v.clone();
    }
    c
}

async fn serve_jwks(body: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = vec![0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });
    format!("http://{addr}/us-east-1_local/.well-known/jwks.json")
}

struct Api {
    base: String,
    lambdas: Lambdas,
    shutdown: CancellationToken,
    http: reqwest::Client,
    _fake: FakeFunction,
}

impl Api {
    async fn start() -> Api {
        let fake = FakeFunction::new();
        let jwks_url = serve_jwks(json!({"keys": [keys().0.jwk.clone()]}).to_string()).await;
        let auth = JwtAuthPlan {
            name: "CognitoAuthorizer".into(),
            identity_header: "authorization".into(),
            issuer: ISSUER.into(),
            audiences: vec![CLIENT.into()],
            jwks_url,
        };
        let route = |method: &str, path: &str, function: &str| RoutePlan {
            method: method.into(),
            path: path.into(),
            function: function.into(),
            auth: None,
            throttle: None,
        };
        let functions: BTreeMap<String, FunctionPlan> = ["Public", "Private", "Throttled"]
            .into_iter()
            .map(|name| (name.to_string(), fake.plan(name, Duration::from_secs(1), None)))
            .collect();
        let plan = Plan {
            functions: functions.clone(),
            routes: vec![
                route("GET", "/public/{id}", "Public"),
                route("ANY", "/public/files/{proxy+}", "Public"),
                route("POST", "/public/upload", "Public"),
                RoutePlan { auth: Some(auth), ..route("POST", "/private/items", "Private") },
                RoutePlan {
                    throttle: Some(ThrottlePlan { rate_limit: 0.5, burst_limit: 2 }),
                    ..route("GET", "/throttled", "Throttled")
                },
            ],
            cors: Some(CorsPlan {
                allow_origins: vec![ORIGIN.into()],
                allow_headers: vec!["authorization".into(), "content-type".into()],
                allow_methods: vec!["GET".into(), "POST".into()],
                expose_headers: vec!["retry-after".into()],
                max_age: Some(600),
                allow_credentials: false,
            }),
            ..Plan::default()
        };
        let lambdas = Lambdas::start(functions, BTreeMap::new()).expect("lambdas");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        tokio::spawn(serve(listener, Arc::new(plan), lambdas.clone(), shutdown.clone()));
        Api { base, lambdas, shutdown, http: reqwest::Client::new(), _fake: fake }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(format!("{}{path}", self.base)).send().await.expect("request")
    }

    async fn post_private(&self, token: Option<&str>) -> reqwest::Response {
        let mut req = self.http.post(format!("{}/private/items", self.base)).json(&json!({"name": "lamp"}));
        if let Some(token) = token {
            req = req.header("authorization", token);
        }
        req.send().await.expect("request")
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.lambdas.shutdown().await;
    }
}

async fn message_of(response: reqwest::Response) -> String {
    let body: Value = response.json().await.expect("json body");
    body["message"].as_str().expect("message").to_string()
}

async fn echoed_event(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json body");
    body["event"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_public_route_matches_should_send_the_v2_event_and_return_the_answer() {
    let api = Api::start().await;
    let response = api
        .http
        .get(format!("{}/public/item%201?tag=a&tag=b&q=red+shoes", api.base))
        .header("cookie", "session=s1; theme=dark")
        .header("x-repeat", "one")
        .send()
        .await
        .unwrap();
    assert!(response.headers().contains_key("apigw-requestid"));
    let event = echoed_event(response).await;
    assert_eq!(event["version"], "2.0");
    assert_eq!(event["routeKey"], "GET /public/{id}");
    assert_eq!(event["rawPath"], "/public/item%201");
    assert_eq!(event["pathParameters"]["id"], "item 1");
    assert_eq!(event["queryStringParameters"]["tag"], "a,b");
    assert_eq!(event["queryStringParameters"]["q"], "red shoes");
    assert_eq!(event["cookies"], json!(["session=s1", "theme=dark"]));
    assert_eq!(event["requestContext"]["http"]["sourceIp"], "127.0.0.1");
    assert_eq!(event["requestContext"]["stage"], "$default");
    assert!(event["requestContext"].get("authorizer").is_none());

    let greedy = echoed_event(api.get("/public/files/a/b/c.txt").await).await;
    assert_eq!(greedy["pathParameters"]["proxy"], "a/b/c.txt");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_no_route_matches_should_answer_404_not_found() {
    let api = Api::start().await;
    let response = api.get("/nowhere").await;
    assert_eq!(response.status(), 404);
    assert_eq!(message_of(response).await, "Not Found");
    let wrong_method = api.http.delete(format!("{}/public/x", api.base)).send().await.unwrap();
    assert_eq!(wrong_method.status(), 404);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_token_is_not_valid_should_answer_401_without_invoking_the_function() {
    let api = Api::start().await;
    let (good, stranger) = keys();
    let now = chrono::Utc::now().timestamp();
    let refused = [
        None,
        Some("garbage".to_string()),
        Some(format!("Bearer {}", sign(stranger, good.kid, &claims(json!({}))))),
        Some(sign(stranger, stranger.kid, &claims(json!({})))),
        Some(sign(good, good.kid, &claims(json!({"exp": now - 5, "iat": now - 700})))).map(|t| format!("Bearer {t}")),
        Some(sign(good, good.kid, &claims(json!({"aud": "another-app"})))),
        Some(sign(good, good.kid, &claims(json!({"iss": "https://cognito-idp.us-east-1.amazonaws.com/other"})))),
    ];
    for token in &refused {
        let response = api.post_private(token.as_deref()).await;
        assert_eq!(response.status(), 401, "token {token:?}");
        assert_eq!(message_of(response).await, "Unauthorized");
    }
    assert_eq!(api.lambdas.running_instances("Private"), 0, "no refused request reached the function");

    let token = sign(good, good.kid, &claims(json!({})));
    let event = echoed_event(api.post_private(Some(&format!("Bearer {token}"))).await).await;
    let jwt = &event["requestContext"]["authorizer"]["jwt"];
    assert_eq!(jwt["claims"]["sub"], "user-7");
    assert_eq!(jwt["claims"]["cognito:groups"], "[sellers]");
    assert_eq!(event["body"], r#"{"name":"lamp"}"#);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_function_fails_or_times_out_should_answer_500_or_503() {
    let api = Api::start().await;
    let failed = api.get("/public/x?mode=fail").await;
    assert_eq!(failed.status(), 500);
    assert_eq!(message_of(failed).await, "Internal Server Error");
    let slow = api.get("/public/x?mode=sleep&secs=5").await;
    assert_eq!(slow.status(), 503);
    assert_eq!(message_of(slow).await, "Service Unavailable");
    let too_big = api.get("/public/x?mode=big").await;
    assert_eq!(too_big.status(), 500, "a response over 6 MB is a function error");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_function_answers_should_map_status_headers_cookies_and_bodies() {
    let api = Api::start().await;
    let custom = api.get("/public/x?mode=custom").await;
    assert_eq!(custom.status(), 201);
    assert_eq!(custom.headers()["x-custom"], "1");
    assert_eq!(custom.headers().get_all("x-multi").iter().count(), 2);
    let cookies: Vec<_> =
        custom.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    assert_eq!(cookies, vec!["a=1; Path=/", "b=2"]);
    assert_eq!(custom.text().await.unwrap(), "created");

    let bare = api.get("/public/x?mode=bare").await;
    assert_eq!(bare.status(), 200);
    assert_eq!(bare.headers()["content-type"], "application/json");
    assert_eq!(bare.json::<Value>().await.unwrap(), json!({"hello": "world"}));

    let binary = api.get("/public/x?mode=binary").await;
    assert_eq!(&binary.bytes().await.unwrap()[..], &[0, 1, 2, 255]);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_request_is_conditional_should_pass_validators_and_a_bodiless_304_through() {
    let api = Api::start().await;
    let url = format!("{}/public/x?mode=conditional", api.base);
    let full = api.http.get(&url).send().await.unwrap();
    assert_eq!(full.status(), 200);
    assert_eq!(full.headers()["etag"], r#""v1""#);
    assert_eq!(full.headers()["cache-control"], "public, max-age=30, s-maxage=60");
    assert_eq!(full.text().await.unwrap(), r#"{"v": 1}"#);

    let not_modified = api.http.get(&url).header("if-none-match", r#"W/"v0", "v1""#).send().await.unwrap();
    assert_eq!(not_modified.status(), 304);
    assert_eq!(not_modified.headers()["etag"], r#""v1""#);
    assert_eq!(not_modified.headers()["cache-control"], "public, max-age=30, s-maxage=60");
    assert!(not_modified.headers().get("content-type").is_none());
    let length = not_modified.headers().get("content-length").map(|v| v.to_str().unwrap().to_owned());
    assert!(length.is_none(), "a 304 claims no length of its own: {length:?}");
    assert!(not_modified.bytes().await.unwrap().is_empty());
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_bodies_are_binary_or_too_large_should_encode_or_refuse_them() {
    let api = Api::start().await;
    let url = format!("{}/public/upload", api.base);
    let binary = api.http.post(&url).header("content-type", "image/png").body(vec![0u8, 1, 2, 255]).send().await;
    let event = echoed_event(binary.unwrap()).await;
    assert_eq!(event["isBase64Encoded"], true);
    assert_eq!(event["body"], "AAEC/w==");

    let over_request_limit = api.http.post(&url).body(vec![b'a'; MAX_REQUEST_BYTES + 1]).send().await.unwrap();
    assert_eq!(over_request_limit.status(), 413);
    let over_event_limit = api.http.post(&url).body(vec![b'a'; 7 * 1024 * 1024]).send().await.unwrap();
    assert_eq!(over_event_limit.status(), 413);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_cors_is_configured_should_answer_preflight_and_decorate_responses() {
    let api = Api::start().await;
    let preflight = api
        .http
        .request(Method::OPTIONS, format!("{}/private/items", api.base))
        .header("origin", ORIGIN)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    let h = preflight.headers();
    assert_eq!(h["access-control-allow-origin"], ORIGIN);
    assert_eq!(h["access-control-allow-methods"], "GET,POST");
    assert_eq!(h["access-control-allow-headers"], "authorization,content-type");
    assert_eq!(h["access-control-max-age"], "600");

    let stranger = api
        .http
        .request(Method::OPTIONS, format!("{}/private/items", api.base))
        .header("origin", "https://evil.example.com")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(!stranger.headers().contains_key("access-control-allow-origin"));

    let actual = api.http.get(format!("{}/public/x", api.base)).header("origin", ORIGIN).send().await.unwrap();
    assert_eq!(actual.headers()["access-control-allow-origin"], ORIGIN);
    assert_eq!(actual.headers()["access-control-expose-headers"], "retry-after");
    let unauthorized = api.http.post(format!("{}/private/items", api.base)).header("origin", ORIGIN).send().await;
    assert_eq!(unauthorized.unwrap().headers()["access-control-allow-origin"], ORIGIN);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_throttled_route_exceeds_its_burst_should_answer_429() {
    let api = Api::start().await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(api.get("/throttled").await.status().as_u16());
    }
    assert_eq!(statuses, vec![200, 200, 429]);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_requests_arrive_together_should_start_several_environments() {
    let api = Api::start().await;
    let calls = (0..4).map(|_| api.get("/public/x?mode=sleep&secs=0.5"));
    let responses = futures::future::join_all(calls).await;
    let mut pids = Vec::new();
    for response in responses {
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        pids.push(body["pid"].as_i64().unwrap());
    }
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), 4, "four concurrent requests ran in four environments");
    api.stop().await;
}
