//! JWT verification as API Gateway's HTTP API JWT authorizer performs it: an RS256 signature checked against
//! the issuer's JWKS (fetched and cached for an hour; fetched again sooner when a token names an unknown key,
//! but never more than once per 30 s, however many such tokens arrive or however the fetch fails; while the
//! issuer cannot be reached the cached keys stay in use), `iss` equal to the
//! issuer, `aud` (ID tokens) or `client_id` (access tokens) among the audiences, `exp` in the future, `nbf` and
//! `iat` not in the future, and a Cognito `token_use` of `id` or `access` when present.
//!
//! The claims come back rendered as API Gateway renders them into the request context (strings as they are,
//! numbers and booleans as text, arrays as `[a b]`), so [`commerce_domain::auth::Caller::from_claims`] reads the claims
//! the same way whether the authorizer or the function verified the token. The local stack's HTTP gateway
//! uses this module as its authorizer; functions on public routes that accept an optional token build a
//! verifier with [`JwtVerifier::from_env`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

/// Verified claims, every value rendered as text the way API Gateway passes them to functions.
pub type Claims = HashMap<String, String>;

/// How far `iat` and `nbf` may lie in the future (clock skew between issuer and verifier).
const CLOCK_SKEW_SECS: i64 = 60;
/// The shortest interval between two JWKS fetches, whatever asks for them (unknown key ids, an expired key
/// set) and whatever the last one answered.
const MIN_REFRESH: Duration = Duration::from_secs(30);
/// How long a fetched key set is used before it is fetched again, so keys the issuer retired stop verifying.
const KEYS_TTL: Duration = Duration::from_secs(3600);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a token was refused. Every variant means 401 to the caller; the text is for logs only.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("no token")]
    Missing,
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("unsupported signing algorithm {0}")]
    Algorithm(String),
    #[error("no key {0:?} in the issuer's JWKS")]
    UnknownKey(String),
    #[error("token rejected: {0}")]
    Rejected(String),
    #[error("JWKS unavailable: {0}")]
    Jwks(String),
    #[error("verifier configuration: {0}")]
    Config(String),
}

/// Verifies bearer tokens for one issuer and its accepted audiences.
pub struct JwtVerifier {
    issuer: String,
    audiences: Vec<String>,
    jwks_url: Option<String>,
    http: reqwest::Client,
    cache: tokio::sync::RwLock<KeyCache>,
    /// Held by the one caller that fetches; the others wait for its result instead of fetching too.
    refresh: tokio::sync::Mutex<()>,
    clock: Clock,
}

/// Where the verifier reads the time (tests turn it by hand).
type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, Arc<DecodingKey>>,
    /// When the keys were fetched; `None` for a fixed key set, which never expires.
    fetched_at: Option<Instant>,
    /// When the JWKS endpoint was last asked, whatever it answered.
    attempted_at: Option<Instant>,
}

/// What the cache says about a key id.
enum Lookup {
    Use(Arc<DecodingKey>),
    Fetch,
    Unknown,
}

impl KeyCache {
    /// The key for `kid`, or a fetch when the key is unknown or the set expired and the last attempt is
    /// `MIN_REFRESH` old; an expired set is used as it is until a fetch is allowed (or succeeds).
    fn lookup(&self, kid: &str, now: Instant, can_fetch: bool) -> Lookup {
        let key = self.keys.get(kid).cloned();
        let expired = self.fetched_at.is_some_and(|at| now.saturating_duration_since(at) >= KEYS_TTL);
        let may_fetch =
            can_fetch && self.attempted_at.is_none_or(|at| now.saturating_duration_since(at) >= MIN_REFRESH);
        match key {
            _ if may_fetch && (expired || key.is_none()) => Lookup::Fetch,
            Some(key) => Lookup::Use(key),
            None => Lookup::Unknown,
        }
    }
}

impl JwtVerifier {
    /// A verifier that fetches the issuer's keys from `jwks_url`.
    pub fn new(issuer: impl Into<String>, audiences: Vec<String>, jwks_url: impl Into<String>) -> Self {
        Self::build(issuer.into(), audiences, Some(jwks_url.into()), KeyCache::default())
    }

    /// A verifier with a fixed key set and no fetching.
    pub fn from_jwks(issuer: impl Into<String>, audiences: Vec<String>, jwks: &JwkSet) -> Result<Self, JwtError> {
        let keys = decoding_keys(jwks)?;
        Ok(Self::build(issuer.into(), audiences, None, KeyCache { keys, ..KeyCache::default() }))
    }

    /// The Cognito user pool's verifier, from `USER_POOL_ID`, `USER_POOL_CLIENT_ID` and `AWS_REGION`. The
    /// issuer is `https://cognito-idp.<region>.amazonaws.com/<pool>`; the JWKS is `<issuer>/.well-known/jwks.json`,
    /// or `$AWS_ENDPOINT_URL/<pool>/.well-known/jwks.json` when `AWS_ENDPOINT_URL` is set (the local stack).
    pub fn from_env() -> Result<Self, JwtError> {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| JwtError::Config(format!("{name} is not set")))
        };
        let pool = var("USER_POOL_ID")?;
        let client = var("USER_POOL_CLIENT_ID")?;
        let region = var("AWS_REGION").or_else(|_| var("AWS_DEFAULT_REGION"))?;
        let endpoint = std::env::var("AWS_ENDPOINT_URL").ok().filter(|v| !v.trim().is_empty());
        let (issuer, jwks_url) = cognito_urls(&region, &pool, endpoint.as_deref());
        Ok(Self::new(issuer, vec![client], jwks_url))
    }

    fn build(issuer: String, audiences: Vec<String>, jwks_url: Option<String>, cache: KeyCache) -> Self {
        let http = reqwest::Client::builder().timeout(FETCH_TIMEOUT).build().unwrap_or_default();
        Self {
            issuer,
            audiences,
            jwks_url,
            http,
            cache: tokio::sync::RwLock::new(cache),
            refresh: tokio::sync::Mutex::new(()),
            clock: Arc::new(Instant::now),
        }
    }

    /// The expected `iss`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Verifies a token (an `Authorization` header value; the `Bearer ` prefix is optional) and returns its
    /// claims.
    pub async fn verify(&self, header_value: &str) -> Result<Claims, JwtError> {
        let token = bearer_token(header_value).ok_or(JwtError::Missing)?;
        let header = jsonwebtoken::decode_header(token).map_err(|e| JwtError::Malformed(e.to_string()))?;
        if header.alg != Algorithm::RS256 {
            return Err(JwtError::Algorithm(format!("{:?}", header.alg)));
        }
        let kid = header.kid.ok_or_else(|| JwtError::Malformed("no kid in the header".into()))?;
        let key = self.key(&kid).await?;

        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "iss"]);
        validation.validate_aud = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| JwtError::Rejected(e.to_string()))?;
        let claims = data.claims;
        self.check_times(&claims)?;
        self.check_audience(&claims)?;
        match claims.get("token_use").and_then(Value::as_str) {
            None | Some("id") | Some("access") => {}
            Some(other) => return Err(JwtError::Rejected(format!("token_use {other} is not accepted"))),
        }
        Ok(render_claims(&claims))
    }

    fn check_times(&self, claims: &Map<String, Value>) -> Result<(), JwtError> {
        let now = chrono::Utc::now().timestamp();
        for name in ["nbf", "iat"] {
            match claims.get(name) {
                None => {}
                Some(v) => match v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)) {
                    Some(t) if t <= now + CLOCK_SKEW_SECS => {}
                    Some(_) => return Err(JwtError::Rejected(format!("{name} is in the future"))),
                    None => return Err(JwtError::Rejected(format!("{name} is not a number"))),
                },
            }
        }
        Ok(())
    }

    fn check_audience(&self, claims: &Map<String, Value>) -> Result<(), JwtError> {
        let accepted = |v: &str| self.audiences.iter().any(|a| a == v);
        let aud_ok = match claims.get("aud") {
            Some(Value::String(aud)) => accepted(aud),
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).any(accepted),
            _ => false,
        };
        let client_ok = claims.get("client_id").and_then(Value::as_str).is_some_and(accepted);
        if aud_ok || client_ok {
            Ok(())
        } else {
            Err(JwtError::Rejected("neither aud nor client_id is an accepted audience".into()))
        }
    }

    async fn key(&self, kid: &str) -> Result<Arc<DecodingKey>, JwtError> {
        let can_fetch = self.jwks_url.is_some();
        let unknown = || JwtError::UnknownKey(kid.to_string());
        let found = self.cache.read().await.lookup(kid, (self.clock)(), can_fetch);
        match found {
            Lookup::Use(key) => return Ok(key),
            Lookup::Unknown => {
                // A fetch may be under way (it marks its attempt before it answers): wait for it, then look
                // again, so the requests that arrive while the first key set is fetched are not refused.
                let _wait = self.refresh.lock().await;
                return self.cache.read().await.keys.get(kid).cloned().ok_or_else(unknown);
            }
            Lookup::Fetch => {}
        }
        let _single = self.refresh.lock().await;
        let now = (self.clock)();
        let stale = {
            let mut cache = self.cache.write().await;
            match cache.lookup(kid, now, can_fetch) {
                Lookup::Use(key) => return Ok(key),
                Lookup::Unknown => return Err(unknown()),
                Lookup::Fetch => {}
            }
            cache.attempted_at = Some(now);
            cache.keys.get(kid).cloned()
        };
        match self.fetch().await {
            Ok(keys) => {
                tracing::debug!(issuer = %self.issuer, keys = keys.len(), "JWKS fetched");
                let mut cache = self.cache.write().await;
                cache.keys = keys;
                cache.fetched_at = Some(now);
                cache.keys.get(kid).cloned().ok_or_else(unknown)
            }
            Err(err) => {
                tracing::warn!(issuer = %self.issuer, error = %err, "JWKS fetch failed; cached keys stay in use");
                stale.ok_or(err)
            }
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, Arc<DecodingKey>>, JwtError> {
        let url = self.jwks_url.as_deref().ok_or_else(|| JwtError::Jwks("no JWKS URL".into()))?;
        let response = self.http.get(url).send().await.map_err(|e| JwtError::Jwks(e.to_string()))?;
        let response = response.error_for_status().map_err(|e| JwtError::Jwks(e.to_string()))?;
        let jwks: JwkSet = response.json().await.map_err(|e| JwtError::Jwks(e.to_string()))?;
        decoding_keys(&jwks)
    }
}

/// The issuer and JWKS URL of a Cognito user pool; the JWKS comes from `endpoint` when one is given.
pub fn cognito_urls(region: &str, pool_id: &str, endpoint: Option<&str>) -> (String, String) {
    let issuer = format!("https://cognito-idp.{region}.amazonaws.com/{pool_id}");
    let jwks = match endpoint {
        Some(endpoint) => format!("{}/{pool_id}/.well-known/jwks.json", endpoint.trim_end_matches('/')),
        None => format!("{issuer}/.well-known/jwks.json"),
    };
    (issuer, jwks)
}

/// The token in an `Authorization` value: after an optional `Bearer ` prefix, trimmed; `None` when empty.
pub fn bearer_token(header_value: &str) -> Option<&str> {
    let value = header_value.trim();
    let token = match (value.get(..6), value.get(6..)) {
        (Some(prefix), Some(rest))
            if prefix.eq_ignore_ascii_case("bearer") && (rest.is_empty() || rest.starts_with(char::is_whitespace)) =>
        {
            rest
        }
        _ => value,
    };
    Some(token.trim()).filter(|t| !t.is_empty())
}

fn decoding_keys(jwks: &JwkSet) -> Result<HashMap<String, Arc<DecodingKey>>, JwtError> {
    let mut keys = HashMap::new();
    let mut seen = HashSet::new();
    for jwk in &jwks.keys {
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        if !seen.insert(kid.clone()) {
            continue;
        }
        match DecodingKey::from_jwk(jwk) {
            Ok(key) => {
                keys.insert(kid, Arc::new(key));
            }
            Err(e) => tracing::warn!(kid = %kid, error = %e, "JWKS key skipped"),
        }
    }
    if keys.is_empty() {
        return Err(JwtError::Jwks("the key set has no usable key".into()));
    }
    Ok(keys)
}

/// Renders claims as API Gateway does in `requestContext.authorizer.jwt.claims`.
pub fn render_claims(claims: &Map<String, Value>) -> Claims {
    claims.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), render_claim(v))).collect()
}

fn render_claim(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => format!("[{}]", items.iter().map(render_claim).collect::<Vec<_>>().join(" ")),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

impl commerce_app::ports::CallerResolver for JwtVerifier {
    async fn resolve(
        &self,
        authorization: Option<&str>,
    ) -> commerce_domain::error::Result<Option<commerce_domain::auth::Caller>> {
        let Some(header) = authorization.filter(|h| !h.trim().is_empty()) else { return Ok(None) };
        match self.verify(header).await {
            Ok(claims) => commerce_domain::auth::Caller::from_claims(&claims).map(Some),
            Err(err) => {
                tracing::info!(error = %err, "bearer token refused");
                Err(commerce_domain::DomainError::Unauthenticated)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use jsonwebtoken::{EncodingKey, Header};
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    use rsa::RsaPrivateKey;
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Mutex, OnceLock};

    const ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_test";
    const CLIENT: &str = "client-123";

    struct TestKey {
        kid: String,
        encoding: EncodingKey,
        jwk: Value,
    }

    impl TestKey {
        fn generate(kid: &str) -> Self {
            let private = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("generate key");
            let der = private.to_pkcs1_der().expect("pkcs1");
            let jwk = json!({
                "kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
                "n": URL_SAFE_NO_PAD.encode(private.n().to_bytes_be()),
                "e": URL_SAFE_NO_PAD.encode(private.e().to_bytes_be()),
            });
            Self { kid: kid.to_string(), encoding: EncodingKey::from_rsa_der(der.as_bytes()), jwk }
        }

        fn sign(&self, claims: &Value) -> String {
            let mut header = Header::new(Algorithm::RS256);
            header.kid = Some(self.kid.clone());
            jsonwebtoken::encode(&header, claims, &self.encoding).expect("sign")
        }

        fn sign_as(&self, kid: &str, claims: &Value) -> String {
            let mut header = Header::new(Algorithm::RS256);
            header.kid = Some(kid.to_string());
            jsonwebtoken::encode(&header, claims, &self.encoding).expect("sign")
        }
    }

    /// Key generation is slow in debug builds: two keys for the whole module.
    fn keys() -> &'static (TestKey, TestKey) {
        static KEYS: OnceLock<(TestKey, TestKey)> = OnceLock::new();
        KEYS.get_or_init(|| (TestKey::generate("key-a"), TestKey::generate("key-b")))
    }

    fn jwks(keys: &[&TestKey]) -> JwkSet {
        serde_json::from_value(json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() })).unwrap()
    }

    fn verifier() -> JwtVerifier {
        JwtVerifier::from_jwks(ISSUER, vec![CLIENT.into()], &jwks(&[&keys().0])).unwrap()
    }

    fn id_claims() -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({
            "sub": "user-1", "iss": ISSUER, "aud": CLIENT, "token_use": "id",
            "cognito:groups": ["sellers", "admins"], "email": "s@example.com", "email_verified": "true",
            "auth_time": now, "iat": now, "exp": now + 3600,
        })
    }

    fn with(mut claims: Value, key: &str, value: Value) -> Value {
        claims[key] = value;
        claims
    }

    fn without(mut claims: Value, key: &str) -> Value {
        claims.as_object_mut().unwrap().remove(key);
        claims
    }

    #[tokio::test]
    async fn when_an_id_token_is_valid_should_return_claims_rendered_like_api_gateway() {
        let token = keys().0.sign(&id_claims());
        let claims = verifier().verify(&format!("Bearer {token}")).await.unwrap();
        assert_eq!(claims["sub"], "user-1");
        assert_eq!(claims["cognito:groups"], "[sellers admins]");
        assert_eq!(claims["email_verified"], "true");
        assert!(claims["exp"].parse::<i64>().is_ok());
        let caller = commerce_domain::auth::Caller::from_claims(&claims).unwrap();
        assert!(caller.require_seller().is_ok() && caller.is_admin());
        assert_eq!(verifier().verify(&token).await.unwrap(), claims, "the Bearer prefix is optional");
    }

    #[tokio::test]
    async fn when_an_access_token_names_the_client_should_accept_it() {
        let claims = with(without(id_claims(), "aud"), "client_id", json!(CLIENT));
        let token = keys().0.sign(&with(claims, "token_use", json!("access")));
        assert_eq!(verifier().verify(&token).await.unwrap()["client_id"], CLIENT);
    }

    #[tokio::test]
    async fn when_a_token_is_wrong_should_refuse_it() {
        let now = chrono::Utc::now().timestamp();
        let (good, other) = keys();
        let cases = [
            ("signed by another key under a known kid", other.sign_as("key-a", &id_claims())),
            ("unknown key", other.sign(&id_claims())),
            ("expired", good.sign(&with(id_claims(), "exp", json!(now - 10)))),
            ("no exp", good.sign(&without(id_claims(), "exp"))),
            ("other issuer", good.sign(&with(id_claims(), "iss", json!("https://elsewhere.example.com/p")))),
            ("no issuer", good.sign(&without(id_claims(), "iss"))),
            ("other audience", good.sign(&with(id_claims(), "aud", json!("another-client")))),
            ("no audience", good.sign(&without(id_claims(), "aud"))),
            ("not yet valid", good.sign(&with(id_claims(), "nbf", json!(now + 600)))),
            ("issued in the future", good.sign(&with(id_claims(), "iat", json!(now + 600)))),
            ("refresh token use", good.sign(&with(id_claims(), "token_use", json!("refresh")))),
            ("garbage", "not.a.token".to_string()),
            ("empty", "Bearer ".to_string()),
        ];
        let verifier = verifier();
        for (case, token) in cases {
            assert!(verifier.verify(&token).await.is_err(), "{case} was accepted");
        }
    }

    #[tokio::test]
    async fn when_the_algorithm_is_not_rs256_should_refuse_it() {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("key-a".into());
        let token = jsonwebtoken::encode(&header, &id_claims(), &EncodingKey::from_secret(b"secret")).unwrap();
        assert!(matches!(verifier().verify(&token).await, Err(JwtError::Algorithm(_))));
    }

    /// What the test's JWKS endpoint answers: a status and a body, changed by the test as keys rotate.
    #[derive(Clone)]
    struct Issuer {
        answer: Arc<Mutex<(u16, String)>>,
        hits: Arc<AtomicUsize>,
    }

    impl Issuer {
        fn serve(&self, keys: &[&TestKey]) {
            *self.answer.lock().unwrap() = (200, serde_json::to_string(&jwks(keys)).unwrap());
        }

        fn fail(&self) {
            *self.answer.lock().unwrap() = (500, "{}".to_string());
        }

        fn hits(&self) -> usize {
            self.hits.load(Ordering::SeqCst)
        }
    }

    /// A JWKS endpoint on 127.0.0.1:0 serving what the returned `Issuer` says, counting requests.
    async fn jwks_server(keys: &[&TestKey]) -> (String, Issuer) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let issuer = Issuer { answer: Arc::new(Mutex::new((200, String::new()))), hits: Arc::new(AtomicUsize::new(0)) };
        issuer.serve(keys);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = issuer.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = vec![0u8; 4096];
                let _ = socket.read(&mut buf).await;
                state.hits.fetch_add(1, Ordering::SeqCst);
                let (status, body) = state.answer.lock().unwrap().clone();
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            }
        });
        (format!("http://{addr}/us-east-1_test/.well-known/jwks.json"), issuer)
    }

    /// A clock the test turns by hand, so no assertion depends on how fast the machine is.
    #[derive(Clone)]
    struct ManualClock(Arc<Mutex<Instant>>);

    impl ManualClock {
        fn advance(&self, by: Duration) {
            *self.0.lock().unwrap() += by;
        }
    }

    /// A fetching verifier for `url` on a hand-turned clock.
    fn fetching(url: String) -> (JwtVerifier, ManualClock) {
        let clock = ManualClock(Arc::new(Mutex::new(Instant::now())));
        let mut verifier = JwtVerifier::new(ISSUER, vec![CLIENT.into()], url);
        let now = clock.0.clone();
        verifier.clock = Arc::new(move || *now.lock().unwrap());
        (verifier, clock)
    }

    /// A token naming `kid` with a signature nobody made: what a flood of forged tokens looks like.
    fn forged(kid: &str) -> String {
        let header = URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "typ": "JWT", "kid": kid}).to_string());
        let payload = URL_SAFE_NO_PAD.encode(id_claims().to_string());
        format!("{header}.{payload}.c2lnbmF0dXJl")
    }

    #[tokio::test]
    async fn when_keys_rotate_should_refetch_on_an_unknown_kid_at_most_once_per_interval() {
        let (a, b) = keys();
        let (url, issuer) = jwks_server(&[a]).await;
        let (verifier, clock) = fetching(url);
        verifier.verify(&a.sign(&id_claims())).await.unwrap();
        verifier.verify(&a.sign(&id_claims())).await.unwrap();
        assert_eq!(issuer.hits(), 1, "the key set is cached");

        issuer.serve(&[a, b]);
        let rotated = b.sign(&id_claims());
        clock.advance(Duration::from_secs(29));
        assert!(matches!(verifier.verify(&rotated).await, Err(JwtError::UnknownKey(_))));
        assert_eq!(issuer.hits(), 1, "no refetch within 30 s of the last one");

        clock.advance(Duration::from_secs(1));
        verifier.verify(&rotated).await.unwrap();
        assert_eq!(issuer.hits(), 2, "the unknown kid triggered one refetch, which found the rotated key");
        verifier.verify(&a.sign(&id_claims())).await.unwrap();
        assert_eq!(issuer.hits(), 2);
    }

    #[tokio::test]
    async fn when_the_keys_are_older_than_the_ttl_should_refetch_them_and_drop_retired_ones() {
        let (a, b) = keys();
        let (url, issuer) = jwks_server(&[a]).await;
        let (verifier, clock) = fetching(url);
        let token = a.sign(&id_claims());
        verifier.verify(&token).await.unwrap();
        issuer.serve(&[b]);

        clock.advance(Duration::from_secs(3599));
        verifier.verify(&token).await.unwrap();
        assert_eq!(issuer.hits(), 1, "keys younger than an hour are used as they are");

        clock.advance(Duration::from_secs(1));
        assert!(matches!(verifier.verify(&token).await, Err(JwtError::UnknownKey(_))), "key-a was retired");
        assert_eq!(issuer.hits(), 2);
        verifier.verify(&b.sign(&id_claims())).await.unwrap();
        assert_eq!(issuer.hits(), 2);
    }

    #[tokio::test]
    async fn a_flood_of_unknown_kids_does_not_hammer_the_jwks_endpoint_even_when_it_fails() {
        let (a, _) = keys();
        let (url, issuer) = jwks_server(&[a]).await;
        let (verifier, clock) = fetching(url);
        let known = a.sign(&id_claims());
        verifier.verify(&known).await.unwrap();
        let flood = |round: usize| {
            let verifier = &verifier;
            futures::future::join_all(
                (0..50).map(move |i| async move { verifier.verify(&forged(&format!("kid-{round}-{i}"))).await }),
            )
        };

        clock.advance(Duration::from_secs(30));
        assert!(flood(1).await.iter().all(|r| matches!(r, Err(JwtError::UnknownKey(_)))));
        assert_eq!(issuer.hits(), 2, "50 concurrent unknown kids: one refetch");
        assert!(flood(2).await.iter().all(Result::is_err));
        assert_eq!(issuer.hits(), 2, "and none more within the interval");

        issuer.fail();
        clock.advance(Duration::from_secs(30));
        assert!(flood(3).await.iter().all(Result::is_err));
        assert_eq!(issuer.hits(), 3, "a failing endpoint is tried once per interval, not once per token");
        verifier.verify(&known).await.unwrap();

        clock.advance(Duration::from_secs(3600));
        verifier.verify(&known).await.expect("while the issuer is unreachable the cached keys still verify");
        assert_eq!(issuer.hits(), 4, "the expired key set was refetched once");
        verifier.verify(&known).await.unwrap();
        assert!(flood(4).await.iter().all(Result::is_err));
        assert_eq!(issuer.hits(), 4, "and is retried no sooner than the interval allows");
    }

    #[tokio::test]
    async fn requests_arriving_while_the_first_key_set_is_fetched_wait_for_it_instead_of_being_refused() {
        let (a, _) = keys();
        let (url, issuer) = jwks_server(&[a]).await;
        let (verifier, _clock) = fetching(url);
        let token = a.sign(&id_claims());
        let all = futures::future::join_all((0..20).map(|_| verifier.verify(&token))).await;
        assert!(all.iter().all(Result::is_ok), "{:?}", all.iter().find(|r| r.is_err()));
        assert_eq!(issuer.hits(), 1, "one fetch for all of them");
    }

    #[test]
    fn cognito_urls_follow_the_local_endpoint_when_set() {
        let (issuer, jwks) = cognito_urls("us-east-1", "us-east-1_abc", Some("http://127.0.0.1:4566/"));
        assert_eq!(issuer, "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc");
        assert_eq!(jwks, "http://127.0.0.1:4566/us-east-1_abc/.well-known/jwks.json");
        let (_, jwks) = cognito_urls("eu-west-1", "eu-west-1_x", None);
        assert_eq!(jwks, "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_x/.well-known/jwks.json");
    }

    #[test]
    fn bearer_prefix_is_optional_and_case_insensitive() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("abc"), Some("abc"));
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token(""), None);
    }
}
