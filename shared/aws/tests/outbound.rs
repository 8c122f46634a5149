//! The webhook delivery client against receivers on 127.0.0.1, and its refusals. Nothing here connects anywhere
//! but loopback: every refused URL is first checked by the pure policy, so a policy bug fails an assertion before
//! a request could leave, and host names are answered by an injected lookup, never by a name server.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use chrono::Utc;
use commerce_aws::outbound::{
    admit_resolved, check_url, Failure, Lookup, LookupFuture, Outbound, OutboundConfig, Refusal,
};
use commerce_domain::webhook::{
    verify, Disposition, MessageId, Received, WebhookHeaders, WebhookSecret, DEFAULT_TOLERANCE,
};
use tokio::net::TcpListener;

/// What the receiver got: the path, the headers and the body of each request.
type Captured = Arc<Mutex<Vec<(String, HeaderMap, Bytes)>>>;

/// A receiver on 127.0.0.1 whose path chooses its answer.
async fn receiver() -> (SocketAddr, Captured) {
    let captured: Captured = Arc::default();
    let log = captured.clone();
    let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
        let log = log.clone();
        async move {
            log.lock().unwrap().push((uri.path().to_owned(), headers, body));
            answer(uri.path()).await
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, captured)
}

async fn answer(path: &str) -> Response {
    match path {
        "/ok" => StatusCode::NO_CONTENT.into_response(),
        "/slow-down" => (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "7")]).into_response(),
        "/gone" => StatusCode::GONE.into_response(),
        "/busy" => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        "/busy-for-a-while" => (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "30")]).into_response(),
        "/moved" => (StatusCode::FOUND, [("location", "/ok")]).into_response(),
        "/hang" => {
            tokio::time::sleep(Duration::from_secs(10)).await;
            StatusCode::NO_CONTENT.into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A listener on 127.0.0.1 that only counts the connections it accepts: the target of URLs that must be refused.
async fn trap() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while listener.accept().await.is_ok() {
            count.fetch_add(1, Ordering::SeqCst);
        }
    });
    (port, accepted)
}

/// Answers from a table and counts the questions.
#[derive(Default)]
struct FakeLookup {
    answers: HashMap<String, Vec<IpAddr>>,
    asked: AtomicUsize,
}

impl FakeLookup {
    fn with(answers: &[(&str, &str)]) -> Arc<Self> {
        let mut map: HashMap<String, Vec<IpAddr>> = HashMap::new();
        for (host, ip) in answers {
            map.entry(host.to_string()).or_default().push(ip.parse().unwrap());
        }
        Arc::new(Self { answers: map, asked: AtomicUsize::new(0) })
    }
}

impl Lookup for FakeLookup {
    fn lookup(&self, host: String) -> LookupFuture {
        self.asked.fetch_add(1, Ordering::SeqCst);
        let answer =
            self.answers.get(&host).cloned().ok_or_else(|| std::io::Error::other(format!("no such host {host}")));
        Box::pin(async move { answer })
    }
}

fn client(allow_loopback_http: bool, lookup: Arc<FakeLookup>) -> Outbound {
    let config =
        OutboundConfig { allow_loopback_http, timeout: Duration::from_millis(1500), ..OutboundConfig::default() };
    Outbound::with_lookup(config, lookup).unwrap()
}

fn secret() -> WebhookSecret {
    WebhookSecret::from_random_bytes(&[42; 32]).unwrap()
}

fn signed(body: &[u8]) -> WebhookHeaders {
    let id = MessageId::for_event("01JABCDEFGHJKMNPQRSTVWXYZ0").unwrap();
    WebhookHeaders::sign(&[secret()], &id, Utc::now().timestamp(), body).unwrap()
}

#[tokio::test]
async fn when_the_url_is_a_forbidden_literal_address_should_refuse_without_connecting() {
    let (port, accepted) = trap().await;
    let lookup = FakeLookup::with(&[]);
    let outbound = client(false, lookup.clone());
    let urls = [
        format!("https://127.0.0.1:{port}/in"),
        format!("http://127.0.0.1:{port}/in"),
        format!("https://[::1]:{port}/in"),
        format!("https://[::ffff:127.0.0.1]:{port}/in"),
        format!("https://2130706433:{port}/in"),
        "https://10.1.2.3/in".to_owned(),
        "https://169.254.169.254/latest/meta-data/".to_owned(),
        "https://[fd00:ec2::254]/latest/meta-data/".to_owned(),
        "https://[::ffff:a9fe:a9fe]/latest/meta-data/".to_owned(),
    ];
    for url in &urls {
        assert!(check_url(url, false).is_err(), "the policy must refuse {url} before anything is sent");
        let outcome = outbound.deliver(url, &signed(b"{}"), b"{}").await;
        assert!(matches!(outcome.result, Err(Failure::Refused(_))), "{url}: {:?}", outcome.result);
        assert_eq!(outcome.disposition(Utc::now()), Disposition::GiveUp, "{url}");
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "no connection reached the listener");
    assert_eq!(lookup.asked.load(Ordering::SeqCst), 0, "literal addresses are not looked up");
}

#[tokio::test]
async fn when_a_host_name_resolves_to_a_forbidden_address_should_refuse_without_connecting() {
    let (port, accepted) = trap().await;
    let answers = [
        ("loopback.example.test", "127.0.0.1"),
        ("loopback6.example.test", "::1"),
        ("mapped.example.test", "::ffff:127.0.0.1"),
        ("internal.example.test", "10.1.2.3"),
        ("metadata.example.test", "169.254.169.254"),
        ("metadata6.example.test", "fd00:ec2::254"),
        ("mixed.example.test", "192.168.1.1"),
        ("mixed.example.test", "127.0.0.1"),
    ];
    let lookup = FakeLookup::with(&answers);
    let outbound = client(false, lookup.clone());
    let hosts: Vec<&str> = lookup.answers.keys().map(String::as_str).collect();
    for host in &hosts {
        assert!(admit_resolved(host, &lookup.answers[*host], false).is_err(), "the policy must refuse {host}'s answer");
    }
    for host in &hosts {
        let url = format!("https://{host}:{port}/in");
        let outcome = outbound.deliver(&url, &signed(b"{}"), b"{}").await;
        match &outcome.result {
            Err(Failure::Refused(Refusal::ResolvesToForbidden { host: refused, .. })) => assert_eq!(refused, host),
            other => panic!("{url}: {other:?}"),
        }
        assert_eq!(outcome.disposition(Utc::now()), Disposition::GiveUp);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "no connection reached the listener");
    assert_eq!(lookup.asked.load(Ordering::SeqCst), hosts.len(), "each name was resolved by our resolver");
}

#[tokio::test]
async fn when_loopback_is_allowed_should_deliver_the_signed_headers_and_body() {
    let (addr, captured) = receiver().await;
    let outbound = client(true, FakeLookup::with(&[("localhost", "127.0.0.1")]));
    let body = r#"{"type":"order.placed","timestamp":"2025-01-01T00:00:00Z","data":{"note":"ünïcödé ✓"}}"#.as_bytes();
    let headers = signed(body);
    let outcome = outbound.deliver(&format!("http://{addr}/ok"), &headers, body).await;
    assert_eq!(outcome.result.as_ref().unwrap().status, 204);
    assert_eq!(outcome.disposition(Utc::now()), Disposition::Delivered);
    assert!(outcome.latency < Duration::from_secs(1), "{:?}", outcome.latency);

    let (path, got, got_body) = captured.lock().unwrap().pop().unwrap();
    assert_eq!(path, "/ok");
    assert_eq!(got_body.as_ref(), body);
    let header = |name: &str| got.get(name).unwrap().to_str().unwrap().to_owned();
    assert_eq!(header("webhook-id"), "msg_01JABCDEFGHJKMNPQRSTVWXYZ0");
    assert_eq!(header("webhook-timestamp"), headers.timestamp);
    assert_eq!(header("webhook-signature"), headers.signature);
    assert_eq!(header("content-type"), "application/json");
    let (id, timestamp, signature) = (header("webhook-id"), header("webhook-timestamp"), header("webhook-signature"));
    let received = Received { id: &id, timestamp: &timestamp, signature: &signature, body: &got_body };
    assert_eq!(verify(&secret(), &received, Utc::now().timestamp(), DEFAULT_TOLERANCE), Ok(()));

    let by_name = outbound.deliver(&format!("http://localhost:{}/ok", addr.port()), &headers, body).await;
    assert_eq!(by_name.disposition(Utc::now()), Disposition::Delivered, "{:?}", by_name.result);
}

#[tokio::test]
async fn when_the_receiver_answers_should_classify_the_status() {
    let (addr, captured) = receiver().await;
    let outbound = client(true, FakeLookup::with(&[]));
    let cases = [
        ("/slow-down", 429, Some("7"), Disposition::RetryAfter(Duration::from_secs(7))),
        ("/gone", 410, None, Disposition::GiveUp),
        ("/busy", 503, None, Disposition::Retry),
        ("/busy-for-a-while", 503, Some("30"), Disposition::RetryAfter(Duration::from_secs(30))),
        ("/moved", 302, None, Disposition::GiveUp),
        ("/nowhere", 404, None, Disposition::GiveUp),
    ];
    for (path, status, retry_after, disposition) in cases {
        let outcome = outbound.deliver(&format!("http://{addr}{path}"), &signed(b"{}"), b"{}").await;
        let response = outcome.result.as_ref().unwrap();
        assert_eq!((response.status, response.retry_after.as_deref()), (status, retry_after), "{path}");
        assert_eq!(outcome.disposition(Utc::now()), disposition, "{path}");
    }
    let paths: Vec<String> = captured.lock().unwrap().iter().map(|(path, ..)| path.clone()).collect();
    assert_eq!(
        paths,
        ["/slow-down", "/gone", "/busy", "/busy-for-a-while", "/moved", "/nowhere"],
        "no redirect followed"
    );
}

#[tokio::test]
async fn when_the_receiver_hangs_or_is_down_should_retry() {
    let (addr, _) = receiver().await;
    let outbound = client(true, FakeLookup::with(&[]));
    let hung = outbound.deliver(&format!("http://{addr}/hang"), &signed(b"{}"), b"{}").await;
    assert!(matches!(hung.result, Err(Failure::Timeout(_))), "{:?}", hung.result);
    assert_eq!(hung.disposition(Utc::now()), Disposition::Retry);
    assert!(hung.latency >= Duration::from_millis(1500) && hung.latency < Duration::from_secs(5), "{:?}", hung.latency);

    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let down = outbound.deliver(&format!("http://127.0.0.1:{port}/in"), &signed(b"{}"), b"{}").await;
    assert!(matches!(down.result, Err(Failure::Connection(_))), "{:?}", down.result);
    assert_eq!(down.disposition(Utc::now()), Disposition::Retry);
}

/// Registration refuses what delivery would refuse: the `UrlGuard` of the same client, on literal addresses and
/// on names that resolve only to refused ones; a name that does not resolve yet is accepted (every attempt
/// looks it up again).
#[tokio::test]
async fn registering_an_endpoint_refuses_private_loopback_and_metadata_addresses() {
    use commerce_app::ports::UrlGuard;
    let lookup = FakeLookup::with(&[
        ("internal.example", "10.1.2.3"),
        ("metadata.example", "169.254.169.254"),
        ("mixed.example", "10.0.0.1"),
        ("mixed.example", "93.184.216.34"),
        ("public.example", "93.184.216.34"),
    ]);
    let guard = client(false, lookup);
    for url in [
        "https://127.0.0.1/hook",
        "https://10.0.0.8/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[fd00:ec2::254]/",
        "https://internal.example/hook",
        "https://metadata.example/hook",
        "http://public.example/hook",
        "https://user:pw@public.example/hook",
    ] {
        let err = guard.check(url).await.expect_err(url);
        assert!(
            matches!(&err, commerce_domain::error::DomainError::Validation { field, .. } if field == "url"),
            "{url}: {err:?}"
        );
    }
    for url in ["https://public.example/hook", "https://mixed.example/hook", "https://not-yet.example/hook"] {
        guard.check(url).await.unwrap_or_else(|e| panic!("{url}: {e:?}"));
    }
    // The local stack's setting admits http to loopback, and still nothing private.
    let local = client(true, FakeLookup::with(&[]));
    local.check("http://127.0.0.1:9000/hook").await.unwrap();
    assert!(local.check("http://10.0.0.8/hook").await.is_err());
}
