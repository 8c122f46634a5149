//! Outbound HTTP for webhook deliveries. The URL is a seller's, so every request could be an attempt to reach
//! what only we can reach: the instance metadata service, the VPC, our own loopback. A URL must be https, carry no
//! credentials and name a host; the addresses are checked where the connection is made, inside the client's DNS
//! resolver, so a name that resolves to a private address, or that changes its answer between a check and the
//! connect (DNS rebinding), is refused like a literal one. No proxy, no redirects (a `Location` would be a second
//! URL nobody checked), bounded connect and total time.

use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use commerce_domain::webhook::{classify, Disposition, HttpOutcome, WebhookHeaders};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use url::{Host, Url};

/// The AWS instance metadata service over IPv4 (link-local, named on its own for the logs).
const METADATA_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
/// The AWS instance metadata service over IPv6 (inside fc00::/7).
const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

/// Why `ip` must not be connected to, or `None` for a public unicast address. IPv6 forms that embed an IPv4
/// address (mapped, compatible, NAT64, 6to4) are judged by that address.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let reason = match (a, b, c) {
        _ if ip == METADATA_V4 => "instance metadata (169.254.169.254)",
        _ if ip.is_broadcast() => "broadcast",
        _ if ip.is_unspecified() => "unspecified",
        (0, ..) => "this network (0.0.0.0/8)",
        (10, ..) => "private (10.0.0.0/8)",
        (100, 64..=127, _) => "shared address space, CGNAT (100.64.0.0/10)",
        (127, ..) => "loopback (127.0.0.0/8)",
        (169, 254, _) => "link-local (169.254.0.0/16)",
        (172, 16..=31, _) => "private (172.16.0.0/12)",
        (192, 0, 0) => "IETF protocol assignments (192.0.0.0/24)",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (192, 88, 99) => "6to4 relay anycast (192.88.99.0/24)",
        (192, 168, _) => "private (192.168.0.0/16)",
        (198, 18..=19, _) => "benchmarking (198.18.0.0/15)",
        (224..=239, ..) => "multicast (224.0.0.0/4)",
        (240..=255, ..) => "reserved (240.0.0.0/4)",
        _ => return None,
    };
    Some(reason)
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = embedded_v4(ip) {
        return forbidden_v4(v4);
    }
    let reason = match ip.segments() {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_loopback() => "loopback (::1)",
        _ if ip == METADATA_V6 => "instance metadata (fd00:ec2::254)",
        [0x64, 0xff9b, 1, ..] => "local-use NAT64 (64:ff9b:1::/48)",
        [0x100, 0, 0, 0, ..] => "discard-only (100::/64)",
        [0x2001, 0, ..] => "Teredo (2001::/32)",
        [0x2001, 2, 0, ..] => "benchmarking (2001:2::/48)",
        [0x2001, 0xdb8, ..] => "documentation (2001:db8::/32)",
        [0x3fff, b, ..] if b < 0x1000 => "documentation (3fff::/20)",
        [a, ..] if a & 0xfe00 == 0xfc00 => "unique local (fc00::/7)",
        [a, ..] if a & 0xffc0 == 0xfe80 => "link-local (fe80::/10)",
        [a, ..] if a & 0xffc0 == 0xfec0 => "site-local (fec0::/10)",
        [a, ..] if a & 0xff00 == 0xff00 => "multicast (ff00::/8)",
        [a, ..] if a & 0xe000 != 0x2000 => "not global unicast (outside 2000::/3)",
        _ => return None,
    };
    Some(reason)
}

/// The IPv4 address an IPv6 address stands for, in the forms a connection can reach it through.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| Some(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    match s {
        [0, 0, 0, 0, 0, 0xffff, hi, lo] => v4(hi, lo),    // mapped, ::ffff:0:0/96
        [0, 0, 0, 0, 0xffff, 0, hi, lo] => v4(hi, lo),    // translated, ::ffff:0:0:0/96
        [0, 0, 0, 0, 0, 0, 0, 0 | 1] => None,             // :: and ::1 are themselves
        [0, 0, 0, 0, 0, 0, hi, lo] => v4(hi, lo),         // compatible (deprecated), ::/96
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => v4(hi, lo), // NAT64 well-known prefix, 64:ff9b::/96
        [0x2002, hi, lo, ..] => v4(hi, lo),               // 6to4, 2002::/16
        _ => None,
    }
}

/// Why a delivery was not attempted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("not a URL: {0}")]
    InvalidUrl(url::ParseError),
    #[error("the scheme must be https, not `{0}`")]
    NotHttps(String),
    #[error("a URL with a user name or password is refused")]
    Credentials,
    #[error("the URL names no host")]
    NoHost,
    #[error("{ip} is refused: {reason}")]
    ForbiddenAddress { ip: IpAddr, reason: &'static str },
    #[error("{host} resolves only to refused addresses ({ip}: {reason})")]
    ResolvesToForbidden { host: String, ip: IpAddr, reason: &'static str },
}

/// Whether a connection to `ip` is allowed; loopback only with `allow_loopback`.
pub fn admit(ip: IpAddr, allow_loopback: bool) -> Result<(), &'static str> {
    if allow_loopback && ip.to_canonical().is_loopback() {
        return Ok(());
    }
    forbidden(ip).map_or(Ok(()), Err)
}

/// The URL if it may be delivered to: https (or, with `allow_loopback_http`, http to a loopback host), no
/// userinfo, a host, and a literal IP checked here because the client does not resolve, so does not filter, one.
pub fn check_url(raw: &str, allow_loopback_http: bool) -> Result<Url, Refusal> {
    let url = Url::parse(raw).map_err(Refusal::InvalidUrl)?;
    let host = url.host().ok_or(Refusal::NoHost)?;
    let loopback_http = allow_loopback_http && url.scheme() == "http" && is_loopback_host(&host);
    if url.scheme() != "https" && !loopback_http {
        return Err(Refusal::NotHttps(url.scheme().to_owned()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refusal::Credentials);
    }
    if let Some(ip) = literal_ip(&host) {
        admit(ip, allow_loopback_http).map_err(|reason| Refusal::ForbiddenAddress { ip, reason })?;
    }
    Ok(url)
}

fn literal_ip(host: &Host<&str>) -> Option<IpAddr> {
    match *host {
        Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        Host::Domain(_) => None,
    }
}

fn is_loopback_host(host: &Host<&str>) -> bool {
    match literal_ip(host) {
        Some(ip) => ip.to_canonical().is_loopback(),
        None => matches!(*host, Host::Domain(name) if name.eq_ignore_ascii_case("localhost")),
    }
}

/// The addresses of `host` that may be connected to, or the refusal naming the first that may not.
pub fn admit_resolved(host: &str, ips: &[IpAddr], allow_loopback: bool) -> Result<Vec<IpAddr>, Refusal> {
    let allowed: Vec<IpAddr> = ips.iter().copied().filter(|ip| admit(*ip, allow_loopback).is_ok()).collect();
    if !allowed.is_empty() {
        return Ok(allowed);
    }
    let refused = ips.iter().find_map(|ip| admit(*ip, allow_loopback).err().map(|reason| (*ip, reason)));
    match refused {
        Some((ip, reason)) => Err(Refusal::ResolvesToForbidden { host: host.to_owned(), ip, reason }),
        None => Ok(allowed),
    }
}

/// The future of a host name lookup.
pub type LookupFuture = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;

/// Host name to addresses. The system resolver in production; tests inject answers so no test depends on, or
/// sends anything to, a real name server.
pub trait Lookup: Send + Sync + 'static {
    fn lookup(&self, host: String) -> LookupFuture;
}

/// The operating system's resolver, through tokio.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: String) -> LookupFuture {
        Box::pin(async move { Ok(tokio::net::lookup_host((host.as_str(), 0)).await?.map(|a| a.ip()).collect()) })
    }
}

/// The client's resolver: looks up, then keeps only the addresses the policy admits.
struct PolicyResolver {
    lookup: Arc<dyn Lookup>,
    allow_loopback: bool,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let (lookup, allow_loopback, host) = (self.lookup.clone(), self.allow_loopback, name.as_str().to_owned());
        Box::pin(async move {
            let ips = lookup.lookup(host.clone()).await?;
            if ips.is_empty() {
                return Err(io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address")).into());
            }
            let allowed = admit_resolved(&host, &ips, allow_loopback)?;
            Ok(Box::new(allowed.into_iter().map(|ip| SocketAddr::new(ip, 0))) as Addrs)
        })
    }
}

/// The delivery client's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboundConfig {
    pub connect_timeout: Duration,
    /// The whole request, connect included: within the 15 to 30 s the specification recommends receivers get.
    pub timeout: Duration,
    /// Lets http://127.0.0.1:<port> (and localhost, [::1]) receive: the local stack and tests only.
    pub allow_loopback_http: bool,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self { connect_timeout: Duration::from_secs(5), timeout: Duration::from_secs(15), allow_loopback_http: false }
    }
}

/// What a receiver answered; its body is not read (a receiver could send anything, of any size).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub retry_after: Option<String>,
}

/// Why no answer came.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("refused: {0}")]
    Refused(#[from] Refusal),
    #[error("timed out")]
    Timeout(#[source] reqwest::Error),
    #[error("connection failed")]
    Connection(#[source] reqwest::Error),
}

/// One attempt: the answer or the failure, and how long it took.
#[derive(Debug)]
pub struct Outcome {
    pub latency: Duration,
    pub result: Result<Response, Failure>,
}

impl Outcome {
    /// The attempt as the domain's retry rules see it.
    pub fn http_outcome(&self) -> HttpOutcome<'_> {
        match &self.result {
            Ok(r) => HttpOutcome::Status { code: r.status, retry_after: r.retry_after.as_deref() },
            Err(Failure::Refused(_)) => HttpOutcome::Refused,
            Err(Failure::Timeout(_)) => HttpOutcome::Timeout,
            Err(Failure::Connection(_)) => HttpOutcome::ConnectionFailed,
        }
    }

    /// Delivered, retry (after the receiver's `Retry-After`), or give up.
    pub fn disposition(&self, now: DateTime<Utc>) -> Disposition {
        classify(&self.http_outcome(), now)
    }
}

/// The SSRF-safe client webhook deliveries go through. Build once and share: it pools connections.
#[derive(Debug, Clone)]
pub struct Outbound {
    client: reqwest::Client,
    allow_loopback_http: bool,
    lookup: Arc<dyn Lookup>,
}

impl std::fmt::Debug for dyn Lookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lookup")
    }
}

impl Outbound {
    /// With the system resolver.
    pub fn new(config: OutboundConfig) -> Result<Self, reqwest::Error> {
        Self::with_lookup(config, Arc::new(SystemLookup))
    }

    /// With `lookup` answering host names.
    pub fn with_lookup(config: OutboundConfig, lookup: Arc<dyn Lookup>) -> Result<Self, reqwest::Error> {
        let resolver = Arc::new(PolicyResolver { lookup: lookup.clone(), allow_loopback: config.allow_loopback_http });
        let client = reqwest::Client::builder()
            .dns_resolver(resolver)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .https_only(!config.allow_loopback_http)
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .user_agent(concat!("commerce-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, allow_loopback_http: config.allow_loopback_http, lookup })
    }

    /// POSTs `body` (JSON) with the signature headers to `url`, unless the policy refuses it.
    pub async fn deliver(&self, url: &str, headers: &WebhookHeaders, body: &[u8]) -> Outcome {
        let started = Instant::now();
        let result = self.send(url, headers, body).await;
        Outcome { latency: started.elapsed(), result }
    }

    async fn send(&self, url: &str, headers: &WebhookHeaders, body: &[u8]) -> Result<Response, Failure> {
        let url = check_url(url, self.allow_loopback_http)?;
        let mut request = self.client.post(url).header(CONTENT_TYPE, "application/json").body(body.to_vec());
        for (name, value) in headers.pairs() {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(failure)?;
        let retry_after = response.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_owned);
        Ok(Response { status: response.status().as_u16(), retry_after })
    }
}

impl commerce_app::ports::WebhookSender for Outbound {
    async fn send(&self, url: &str, headers: &WebhookHeaders, body: &[u8]) -> commerce_app::ports::Sent {
        let outcome = self.deliver(url, headers, body).await;
        let (status, retry_after, error) = match outcome.result {
            Ok(response) => (Some(response.status), response.retry_after, None),
            Err(Failure::Refused(refusal)) => {
                tracing::warn!(%url, %refusal, "webhook address refused");
                (None, None, Some("address_refused"))
            }
            Err(Failure::Timeout(_)) => (None, None, Some("timeout")),
            Err(Failure::Connection(_)) => (None, None, Some("connection_failed")),
        };
        commerce_app::ports::Sent { status, retry_after, error, latency: outcome.latency }
    }
}

impl commerce_app::ports::UrlGuard for Outbound {
    /// The URL rules and a literal address at once; a host name is looked up now, and refused when every
    /// address it has is refused. A name that does not resolve yet is accepted: every attempt looks it up again.
    async fn check(&self, url: &str) -> commerce_domain::error::Result<()> {
        let refused = |r: Refusal| commerce_domain::error::DomainError::validation("url", r);
        let parsed = check_url(url, self.allow_loopback_http).map_err(refused)?;
        if let Some(url::Host::Domain(name)) = parsed.host() {
            let answer = tokio::time::timeout(Duration::from_secs(2), self.lookup.lookup(name.to_owned())).await;
            if let Ok(Ok(ips)) = answer {
                admit_resolved(name, &ips, self.allow_loopback_http).map_err(refused)?;
            }
        }
        Ok(())
    }
}

/// A client error as a failure: our resolver's refusal travels inside it, as the source of a source.
fn failure(err: reqwest::Error) -> Failure {
    if let Some(refusal) = refusal_in(&err) {
        return Failure::Refused(refusal);
    }
    if err.is_timeout() {
        Failure::Timeout(err)
    } else {
        Failure::Connection(err)
    }
}

fn refusal_in(err: &(dyn StdError + 'static)) -> Option<Refusal> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(refusal) = e.downcast_ref::<Refusal>() {
            return Some(refusal.clone());
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn when_an_address_is_not_public_should_be_forbidden_with_its_reason() {
        let cases = [
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "this network (0.0.0.0/8)"),
            ("10.0.0.0", "private (10.0.0.0/8)"),
            ("10.1.2.3", "private (10.0.0.0/8)"),
            ("10.255.255.255", "private (10.0.0.0/8)"),
            ("100.64.0.0", "shared address space, CGNAT (100.64.0.0/10)"),
            ("100.100.100.200", "shared address space, CGNAT (100.64.0.0/10)"),
            ("100.127.255.255", "shared address space, CGNAT (100.64.0.0/10)"),
            ("127.0.0.1", "loopback (127.0.0.0/8)"),
            ("127.255.255.254", "loopback (127.0.0.0/8)"),
            ("169.254.169.254", "instance metadata (169.254.169.254)"),
            ("169.254.170.2", "link-local (169.254.0.0/16)"),
            ("169.254.0.1", "link-local (169.254.0.0/16)"),
            ("172.16.0.1", "private (172.16.0.0/12)"),
            ("172.31.255.255", "private (172.16.0.0/12)"),
            ("192.0.0.192", "IETF protocol assignments (192.0.0.0/24)"),
            ("192.0.2.1", "documentation"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.9", "documentation"),
            ("192.88.99.1", "6to4 relay anycast (192.88.99.0/24)"),
            ("192.168.0.1", "private (192.168.0.0/16)"),
            ("198.18.0.1", "benchmarking (198.18.0.0/15)"),
            ("198.19.255.255", "benchmarking (198.18.0.0/15)"),
            ("224.0.0.1", "multicast (224.0.0.0/4)"),
            ("239.255.255.250", "multicast (224.0.0.0/4)"),
            ("240.0.0.1", "reserved (240.0.0.0/4)"),
            ("255.255.255.255", "broadcast"),
            ("::", "unspecified"),
            ("::1", "loopback (::1)"),
            ("fd00:ec2::254", "instance metadata (fd00:ec2::254)"),
            ("fc00::1", "unique local (fc00::/7)"),
            ("fdff:ffff::1", "unique local (fc00::/7)"),
            ("fe80::1", "link-local (fe80::/10)"),
            ("febf::1", "link-local (fe80::/10)"),
            ("fec0::1", "site-local (fec0::/10)"),
            ("ff02::1", "multicast (ff00::/8)"),
            ("2001:db8::1", "documentation (2001:db8::/32)"),
            ("3fff::1", "documentation (3fff::/20)"),
            ("2001::1", "Teredo (2001::/32)"),
            ("2001:2::1", "benchmarking (2001:2::/48)"),
            ("64:ff9b:1::1", "local-use NAT64 (64:ff9b:1::/48)"),
            ("100::1", "discard-only (100::/64)"),
            ("1::1", "not global unicast (outside 2000::/3)"),
            ("4000::1", "not global unicast (outside 2000::/3)"),
            // IPv6 forms of forbidden IPv4 addresses are judged by the IPv4 address.
            ("::ffff:127.0.0.1", "loopback (127.0.0.0/8)"),
            ("::ffff:10.1.2.3", "private (10.0.0.0/8)"),
            ("::ffff:169.254.169.254", "instance metadata (169.254.169.254)"),
            ("::ffff:0:192.168.1.1", "private (192.168.0.0/16)"),
            ("::127.0.0.1", "loopback (127.0.0.0/8)"),
            ("::169.254.169.254", "instance metadata (169.254.169.254)"),
            ("::0.0.0.2", "this network (0.0.0.0/8)"),
            ("64:ff9b::10.0.0.1", "private (10.0.0.0/8)"),
            ("64:ff9b::127.0.0.1", "loopback (127.0.0.0/8)"),
            ("2002:a9fe:a9fe::1", "instance metadata (169.254.169.254)"),
            ("2002:7f00:1::", "loopback (127.0.0.0/8)"),
            ("::ffff:255.255.255.255", "broadcast"),
        ];
        for (text, reason) in cases {
            assert_eq!(forbidden(ip(text)), Some(reason), "{text}");
        }
    }

    #[test]
    fn when_an_address_is_public_should_be_allowed() {
        let public = [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.1",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.1",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "52.94.76.1",
            "2600:1f18::1",
            "2a00:1450:4001::200e",
            "2001:4860:4860::8888",
            "2001:db9::1",
            "2002:0808:0808::1",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
            "3fff:1000::1",
        ];
        for text in public {
            assert_eq!(forbidden(ip(text)), None, "{text}");
        }
    }

    #[test]
    fn when_loopback_is_allowed_only_loopback_should_pass_the_policy() {
        for text in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"] {
            assert_eq!(admit(ip(text), true), Ok(()), "{text}");
            assert!(admit(ip(text), false).is_err(), "{text}");
        }
        for text in ["10.1.2.3", "169.254.169.254", "fd00:ec2::254", "0.0.0.0", "::"] {
            assert!(admit(ip(text), true).is_err(), "{text}");
        }
    }

    #[test]
    fn when_a_url_breaks_the_policy_should_say_why() {
        let forbidden_at = |text: &str| {
            let addr = ip(text);
            move |reason| Refusal::ForbiddenAddress { ip: addr, reason }
        };
        let cases: Vec<(&str, Refusal)> = vec![
            ("not a url", Refusal::InvalidUrl(url::ParseError::RelativeUrlWithoutBase)),
            ("https://", Refusal::InvalidUrl(url::ParseError::EmptyHost)),
            ("http://hooks.example.com/in", Refusal::NotHttps("http".into())),
            ("ftp://hooks.example.com/in", Refusal::NotHttps("ftp".into())),
            ("file:///etc/passwd", Refusal::NoHost),
            ("https://user@hooks.example.com/in", Refusal::Credentials),
            ("https://user:pw@hooks.example.com/in", Refusal::Credentials),
            ("https://:pw@hooks.example.com/in", Refusal::Credentials),
            ("https://127.0.0.1/in", forbidden_at("127.0.0.1")("loopback (127.0.0.0/8)")),
            ("https://2130706433/in", forbidden_at("127.0.0.1")("loopback (127.0.0.0/8)")),
            ("https://0x7f.1/in", forbidden_at("127.0.0.1")("loopback (127.0.0.0/8)")),
            ("https://10.1.2.3:8443/in", forbidden_at("10.1.2.3")("private (10.0.0.0/8)")),
            (
                "https://169.254.169.254/latest/meta-data/",
                forbidden_at("169.254.169.254")("instance metadata (169.254.169.254)"),
            ),
            ("https://[::1]/in", forbidden_at("::1")("loopback (::1)")),
            ("https://[::ffff:127.0.0.1]/in", forbidden_at("::ffff:127.0.0.1")("loopback (127.0.0.0/8)")),
            ("https://[fd00:ec2::254]/in", forbidden_at("fd00:ec2::254")("instance metadata (fd00:ec2::254)")),
        ];
        for (url, want) in cases {
            assert_eq!(check_url(url, false), Err(want), "{url}");
        }
        for url in ["https://hooks.example.com/in?x=1", "https://hooks.example.com:8443/in", "https://8.8.8.8/in"] {
            assert!(check_url(url, false).is_ok(), "{url}");
        }
    }

    #[test]
    fn when_loopback_http_is_allowed_should_open_only_loopback() {
        for url in
            ["http://127.0.0.1:8080/in", "http://localhost:8080/in", "http://[::1]:8080/in", "https://127.0.0.1/in"]
        {
            assert!(check_url(url, true).is_ok(), "{url}");
            assert!(check_url(url, false).is_err(), "{url}");
        }
        assert_eq!(check_url("http://hooks.example.com/in", true), Err(Refusal::NotHttps("http".into())));
        assert_eq!(check_url("http://10.0.0.1/in", true), Err(Refusal::NotHttps("http".into())));
        assert!(matches!(check_url("https://10.0.0.1/in", true), Err(Refusal::ForbiddenAddress { .. })));
    }

    #[test]
    fn when_a_name_resolves_should_keep_only_allowed_addresses() {
        let ips = [ip("10.0.0.1"), ip("93.184.216.34"), ip("::1"), ip("2606:2800:220:1::1")];
        assert_eq!(admit_resolved("h", &ips, false), Ok(vec![ip("93.184.216.34"), ip("2606:2800:220:1::1")]));
        let private = [ip("169.254.169.254"), ip("10.0.0.1")];
        assert_eq!(
            admit_resolved("h", &private, false),
            Err(Refusal::ResolvesToForbidden {
                host: "h".into(),
                ip: ip("169.254.169.254"),
                reason: "instance metadata (169.254.169.254)"
            })
        );
        assert_eq!(admit_resolved("h", &[ip("127.0.0.1")], true), Ok(vec![ip("127.0.0.1")]));
    }
}
