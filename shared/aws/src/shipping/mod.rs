//! Carrier rates: the sandbox (deterministic, local) and EasyPost, each behind its own guard (timeout, circuit
//! breaker, negative cache), and `Carriers`, the one `ShippingRateProvider` a quote function is given: it
//! routes a request by its `carrier`.
//!
//! EasyPost is optional: without an API key, an EasyPost request has no rate (`Ok(None)`, logged): the method
//! is not offered, as for any carrier that cannot serve a request, and retrying would not help, so it is not
//! `Transient`.

pub mod easypost;
pub mod guard;
pub mod sandbox;
pub mod webhooks;

pub use easypost::EasyPostCarrier;
pub use guard::{Clock, GuardConfig, GuardedCarrier};
pub use sandbox::SandboxCarrier;

use crate::config::ConfigError;
use commerce_app::ports::{CarrierRateRequest, ShippingRateProvider};
use commerce_domain::error::Result;
use commerce_domain::money::Money;
use commerce_domain::shipping::Carrier;

/// Every carrier, each behind its own guard.
#[derive(Debug)]
pub struct Carriers {
    sandbox: GuardedCarrier<SandboxCarrier>,
    easypost: Option<GuardedCarrier<EasyPostCarrier>>,
}

impl Carriers {
    /// The given guarded carriers; `easypost` is `None` when no API key is configured.
    pub fn new(sandbox: GuardedCarrier<SandboxCarrier>, easypost: Option<GuardedCarrier<EasyPostCarrier>>) -> Self {
        Self { sandbox, easypost }
    }

    /// What a function's `main` builds once: the sandbox, and EasyPost when `easypost_api_key` is set and not
    /// blank (its value read from Secrets Manager at cold start), at `easypost_base_url` or `easypost::API_BASE`;
    /// every guard with `GuardConfig::default()` (2 s timeout, which also bounds the HTTP client).
    pub fn from_env_parts(
        easypost_api_key: Option<String>,
        easypost_base_url: Option<String>,
    ) -> std::result::Result<Self, ConfigError> {
        let config = GuardConfig::default();
        let easypost = match easypost_api_key.filter(|key| !key.trim().is_empty()) {
            None => None,
            Some(key) => {
                let base = easypost_base_url
                    .filter(|base| !base.trim().is_empty())
                    .unwrap_or_else(|| easypost::API_BASE.to_owned());
                let client = EasyPostCarrier::new(key, base, config.timeout)
                    .map_err(|e| ConfigError::Invalid { name: "EASYPOST_API_BASE", reason: e.to_string() })?;
                Some(GuardedCarrier::new(Carrier::Easypost.as_str(), client, config))
            }
        };
        Ok(Self::new(GuardedCarrier::new(Carrier::Sandbox.as_str(), SandboxCarrier::new(), config), easypost))
    }

    /// Whether EasyPost requests are sent anywhere.
    pub fn easypost_configured(&self) -> bool {
        self.easypost.is_some()
    }
}

impl ShippingRateProvider for Carriers {
    #[tracing::instrument(skip_all, fields(carrier = request.carrier.as_str(), service = %request.service, seller_id = %request.seller_id))]
    async fn rate(&self, request: &CarrierRateRequest) -> Result<Option<Money>> {
        match request.carrier {
            Carrier::Sandbox => self.sandbox.rate(request).await,
            Carrier::Easypost => match &self.easypost {
                Some(easypost) => easypost.rate(request).await,
                None => {
                    tracing::warn!("carrier easypost is not configured: no rate");
                    Ok(None)
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::easypost::tests::{request as easypost_request, FakeServer, Reply, RESPONSE_FIXTURE};
    use super::guard::tests::ManualClock;
    use super::sandbox::tests::request as sandbox_request;
    use super::*;
    use commerce_domain::error::DomainError;
    use commerce_domain::money::Currency;
    use std::time::Duration;

    fn with_fake_easypost(base: &str, clock: &ManualClock) -> Carriers {
        let config = GuardConfig::default();
        let client = EasyPostCarrier::new("EZTK_test_key".into(), base.into(), config.timeout).unwrap();
        Carriers::new(
            GuardedCarrier::new("sandbox", SandboxCarrier::new(), config).with_clock(clock.clock()),
            Some(GuardedCarrier::new("easypost", client, config).with_clock(clock.clock())),
        )
    }

    #[tokio::test]
    async fn sandbox_requests_are_priced_by_the_sandbox() {
        let carriers = Carriers::from_env_parts(None, None).unwrap();
        let rate = carriers.rate(&sandbox_request("express", 1_200, Some("US"), "DE")).await.unwrap();
        assert_eq!(rate, Some(Money::new(3_400, Currency::USD)));
    }

    #[tokio::test]
    async fn without_an_api_key_easypost_has_no_rate() {
        for key in [None, Some(String::new()), Some("  ".into())] {
            let carriers = Carriers::from_env_parts(key, Some("http://127.0.0.1:9".into())).unwrap();
            assert!(!carriers.easypost_configured());
            assert_eq!(carriers.rate(&easypost_request()).await.unwrap(), None);
        }
    }

    #[tokio::test]
    async fn easypost_requests_go_to_the_configured_base_and_sandbox_ones_do_not() {
        let server = FakeServer::start(vec![Reply::Json(200, RESPONSE_FIXTURE.into())]).await;
        let carriers = Carriers::from_env_parts(Some("EZTK_test_key".into()), Some(server.base.clone())).unwrap();
        assert!(carriers.easypost_configured());
        assert_eq!(carriers.rate(&easypost_request()).await.unwrap(), Some(Money::new(758, Currency::USD)));
        assert!(carriers.rate(&sandbox_request("ground", 1_000, Some("US"), "US")).await.unwrap().is_some());
        assert_eq!(server.hits(), 1);
    }

    #[tokio::test]
    async fn a_failed_easypost_request_is_answered_from_the_negative_cache_without_calling_again() {
        let server = FakeServer::start(vec![
            Reply::Json(500, r#"{"error":{"code":"INTERNAL_SERVER_ERROR"}}"#.into()),
            Reply::Json(200, RESPONSE_FIXTURE.into()),
        ])
        .await;
        let clock = ManualClock::new();
        let carriers = with_fake_easypost(&server.base, &clock);
        let first = carriers.rate(&easypost_request()).await.unwrap_err().to_string();
        assert_eq!(first, "temporarily unavailable: easypost answered 500");
        clock.advance(Duration::from_secs(59));
        let second = carriers.rate(&easypost_request()).await.unwrap_err().to_string();
        assert_eq!((second.as_str(), server.hits()), (first.as_str(), 1));
        clock.advance(Duration::from_secs(1));
        assert_eq!(carriers.rate(&easypost_request()).await.unwrap(), Some(Money::new(758, Currency::USD)));
        assert_eq!(server.hits(), 2);
    }

    #[tokio::test]
    async fn five_failing_easypost_requests_open_its_breaker_and_leave_the_sandbox_alone() {
        let server = FakeServer::start(vec![
            Reply::Json(503, String::new()),
            Reply::Json(503, String::new()),
            Reply::Json(503, String::new()),
            Reply::Json(503, String::new()),
            Reply::Json(503, String::new()),
            Reply::Json(200, RESPONSE_FIXTURE.into()),
        ])
        .await;
        let clock = ManualClock::new();
        let carriers = with_fake_easypost(&server.base, &clock);
        let weighing = |grams: u64| {
            let mut request = easypost_request();
            request.weight_grams = grams;
            request
        };
        for grams in 1_000..1_005 {
            assert!(matches!(carriers.rate(&weighing(grams)).await, Err(DomainError::Transient(_))));
        }
        assert_eq!(server.hits(), 5);
        let refused = carriers.rate(&weighing(2_000)).await;
        assert!(
            matches!(&refused, Err(DomainError::Transient(m)) if m == "carrier easypost unavailable: too many recent failures"),
            "{refused:?}"
        );
        assert_eq!(server.hits(), 5, "an open breaker sends nothing");
        assert!(carriers.rate(&sandbox_request("ground", 1_000, Some("US"), "US")).await.unwrap().is_some());
        clock.advance(Duration::from_secs(30));
        assert_eq!(carriers.rate(&weighing(2_000)).await.unwrap(), Some(Money::new(758, Currency::USD)));
        assert_eq!(server.hits(), 6);
    }

    #[tokio::test]
    async fn a_sandbox_failure_hook_goes_through_the_guard() {
        let carriers = Carriers::from_env_parts(None, None).unwrap();
        let mut failing = sandbox_request("ground", 1_000, Some("US"), "US");
        failing.destination.postal_code = "00000".into();
        let first = carriers.rate(&failing).await.unwrap_err().to_string();
        assert_eq!(first, "temporarily unavailable: sandbox carrier failure (destination postal code 00000)");
        assert_eq!(carriers.rate(&failing).await.unwrap_err().to_string(), first);
    }

    #[tokio::test]
    async fn an_easypost_server_that_never_answers_is_cut_off_by_the_guard() {
        let server = FakeServer::start(vec![Reply::Hang]).await;
        let config = GuardConfig { timeout: Duration::from_millis(200), ..GuardConfig::default() };
        // The client's own timeout is generous: the guard's is the one that fires.
        let client =
            EasyPostCarrier::new("EZTK_test_key".into(), server.base.clone(), Duration::from_secs(30)).unwrap();
        let guarded = GuardedCarrier::new("easypost", client, config);
        let outcome = guarded.rate(&easypost_request()).await;
        assert!(
            matches!(&outcome, Err(DomainError::Transient(m)) if m == "carrier easypost did not answer within 200 ms"),
            "{outcome:?}"
        );
    }
}
