//! The HTTP API's own behavior on the real routes: the JWT authorizer, routing, CORS, scaling out.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::{BigUint, RsaPrivateKey};
use serde_json::{json, Value};
use system_tests::stack;

/// A seller route behind the JWT authorizer.
const GUARDED: &str = "/v1/seller/products";

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let payload = payload.trim_end_matches('=');
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON claims")
}

fn big(jwk: &Value, field: &str) -> BigUint {
    let text = jwk[field].as_str().unwrap_or_else(|| panic!("JWK field {field}"));
    BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).expect("base64url"))
}

/// Signs `claims` with moto's own Cognito key: the signature is as valid as a real token's.
fn sign_as_moto(claims: &Value) -> String {
    let jwk = stack().moto_signing_jwk().expect("moto's signing key");
    // moto ships n, e and d only; the primes are recovered from them.
    let key =
        RsaPrivateKey::from_components(big(&jwk, "n"), big(&jwk, "e"), big(&jwk, "d"), Vec::new()).expect("moto's key");
    let der = key.to_pkcs1_der().expect("der");
    let mut header = Header::new(Algorithm::RS256);
    header.kid = jwk["kid"].as_str().map(str::to_string);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(der.as_bytes())).expect("sign")
}

async fn post_guarded(token: Option<&str>) -> reqwest::Response {
    let s = stack();
    let mut req = s.http().post(s.url(GUARDED)).json(&json!({"title": "x"}));
    if let Some(token) = token {
        req = req.header("authorization", token);
    }
    req.send().await.expect("request")
}

async fn assert_unauthorized(token: Option<&str>, case: &str) {
    let response = post_guarded(token).await;
    assert_eq!(response.status(), 401, "{case}");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body, json!({"message": "Unauthorized"}), "{case}: the gateway answered, not the function");
}

#[tokio::test]
async fn when_the_token_is_missing_or_garbage_should_answer_401() {
    assert_unauthorized(None, "no token").await;
    assert_unauthorized(Some("Bearer not-a-token"), "garbage").await;
    assert_unauthorized(Some("Bearer a.b.c"), "three garbage segments").await;
}

#[tokio::test]
async fn when_the_token_is_signed_by_another_key_should_answer_401() {
    let real = stack().token("seller").expect("seller token");
    let claims = claims_of(&real);
    let stranger = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("key");
    let der = stranger.to_pkcs1_der().expect("der");
    let mut header = Header::new(Algorithm::RS256);
    header.kid = jsonwebtoken::decode_header(&real).expect("header").kid;
    let forged = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_der(der.as_bytes())).expect("sign");
    assert_unauthorized(Some(&format!("Bearer {forged}")), "same kid, another key").await;
}

#[tokio::test]
async fn when_a_validly_signed_token_is_expired_or_for_someone_else_should_answer_401() {
    let real = stack().token("seller").expect("seller token");
    let claims = claims_of(&real);
    let now = chrono::Utc::now().timestamp();

    // Control: moto's key re-signing unchanged claims passes the authorizer, so each refusal below is
    // caused by the one claim it changes.
    let control = post_guarded(Some(&format!("Bearer {}", sign_as_moto(&claims)))).await;
    assert_ne!(control.status(), 401, "a token re-signed with moto's key is accepted");

    let mut expired = claims.clone();
    expired["exp"] = json!(now - 60);
    expired["iat"] = json!(now - 3700);
    expired["auth_time"] = json!(now - 3700);
    assert_unauthorized(Some(&format!("Bearer {}", sign_as_moto(&expired))), "expired").await;

    let mut other_audience = claims.clone();
    other_audience["aud"] = json!("some-other-app-client");
    assert_unauthorized(Some(&sign_as_moto(&other_audience)), "another audience").await;

    let mut other_issuer = claims.clone();
    other_issuer["iss"] = json!("https://cognito-idp.us-east-1.amazonaws.com/us-east-1_SomeoneElse");
    assert_unauthorized(Some(&sign_as_moto(&other_issuer)), "another issuer").await;
}

#[tokio::test]
async fn when_no_route_matches_should_answer_404_from_the_gateway() {
    let s = stack();
    let response = s.http().get(s.url("/v1/no-such-route")).send().await.expect("request");
    assert_eq!(response.status(), 404);
    assert_eq!(response.json::<Value>().await.expect("json"), json!({"message": "Not Found"}));
}

#[tokio::test]
async fn when_a_browser_sends_a_preflight_should_answer_it_from_the_cors_configuration() {
    let s = stack();
    let response = s
        .http()
        .request(reqwest::Method::OPTIONS, s.url(GUARDED))
        .header("origin", "https://shop.example.com")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization,content-type")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 204, "answered without a token and without the function");
    let h = response.headers();
    assert_eq!(h["access-control-allow-origin"], "*");
    let methods = h["access-control-allow-methods"].to_str().unwrap();
    assert!(methods.contains("POST") && methods.contains("GET"), "{methods}");
    assert!(h["access-control-allow-headers"].to_str().unwrap().contains("authorization"));
    assert_eq!(h["access-control-max-age"], "600");

    let actual = s
        .http()
        .get(s.url("/v1/no-such-route"))
        .header("origin", "https://shop.example.com")
        .send()
        .await
        .expect("request");
    assert_eq!(actual.headers()["access-control-allow-origin"], "*");
    let exposed = actual.headers()["access-control-expose-headers"].to_str().unwrap();
    assert!(exposed.contains("retry-after") && exposed.contains("etag"), "{exposed}");
}

#[tokio::test]
async fn when_requests_arrive_together_should_run_several_instances_of_one_function() {
    let s = stack();
    let calls = (0..6).map(|i| {
        let url = s.url(&format!("/v1/products/prd_{}", system_tests::unique(&format!("missing{i}"))));
        async move { s.http().get(url).send().await.expect("request") }
    });
    for response in futures::future::join_all(calls).await {
        assert_eq!(response.status(), 404);
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"]["code"], "not_found", "the function answered: {body}");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let instances: Vec<u32> = s
        .log()
        .lines()
        .filter(|l| l.contains("environment started") && l.contains("function=GetProductFunction"))
        .filter_map(|l| l.split("instance=").nth(1)?.split_whitespace().next()?.parse().ok())
        .collect();
    let most = instances.iter().copied().max().unwrap_or(0);
    assert!(most >= 2, "concurrent requests started several environments, saw instances {instances:?}");
}
