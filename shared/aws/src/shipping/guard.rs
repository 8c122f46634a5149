//! The guard every carrier runs behind: a timeout, a circuit breaker and a short negative cache, so a slow or
//! failing carrier costs a quote at most one timeout and then fails fast.
//!
//! - Timeout: a call that runs past `GuardConfig::timeout` (2 s) is `Transient`.
//! - Circuit breaker, one per guard (so per carrier): `failure_threshold` (5) consecutive `Transient` failures
//!   (timeouts included) open it; while open, calls fail fast with `Transient` without reaching the carrier.
//!   After `open_for` (30 s) it is half-open: one call, the probe, goes through while the others still fail
//!   fast; the probe's success closes the breaker, its failure opens it for another `open_for`. A probe that
//!   never reports back (its caller dropped the future) is replaced after `open_for`. Any answer that is not
//!   `Transient` (a rate, no rate, a refused key) shows the carrier is reachable: it closes the breaker and
//!   resets the count.
//! - Negative cache: a request that failed with `Transient` is answered with the same error, without calling
//!   the carrier, for `negative_ttl` (60 s). The key is a SHA-256 of all the request's fields, so no address is
//!   kept in memory. Fail-fast refusals are not cached; answers that are not `Transient` are never cached.
//!
//! Time comes from an injectable clock (`with_clock`), so the breaker and the cache are tested without
//! sleeping. The state sits behind a `std::sync::Mutex` held for a few map operations, never across an await:
//! one guard is shared by every concurrent call of a Lambda instance.

use commerce_app::ports::{CarrierRateRequest, ShippingRateProvider};
use commerce_domain::error::{DomainError, Result};
use commerce_domain::money::Money;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Where the guard reads the time (tests turn it by hand).
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// The most failed requests the negative cache remembers; past it, expired entries go first, then the oldest.
pub const MAX_NEGATIVE_ENTRIES: usize = 1_024;

/// The guard's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardConfig {
    /// How long one call may take.
    pub timeout: Duration,
    /// Consecutive `Transient` failures that open the breaker.
    pub failure_threshold: u32,
    /// How long the breaker stays open before a probe is let through.
    pub open_for: Duration,
    /// How long a failed request is answered from the negative cache.
    pub negative_ttl: Duration,
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(2),
            failure_threshold: 5,
            open_for: Duration::from_secs(30),
            negative_ttl: Duration::from_secs(60),
        }
    }
}

/// A carrier behind a timeout, a circuit breaker and a negative cache (see the module).
pub struct GuardedCarrier<P> {
    name: &'static str,
    inner: P,
    config: GuardConfig,
    clock: Clock,
    state: Mutex<State>,
}

impl<P: std::fmt::Debug> std::fmt::Debug for GuardedCarrier<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedCarrier")
            .field("name", &self.name)
            .field("inner", &self.inner)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

type Key = [u8; 32];

#[derive(Default)]
struct State {
    breaker: Breaker,
    negative: HashMap<Key, Failure>,
}

struct Failure {
    at: Instant,
    message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Breaker {
    Closed { failures: u32 },
    Open { since: Instant },
    HalfOpen { probe_since: Instant },
}

impl Default for Breaker {
    fn default() -> Self {
        Self::Closed { failures: 0 }
    }
}

/// What the guard lets a call do.
enum Admission {
    Call,
    Cached(String),
    Refused,
}

impl<P> GuardedCarrier<P> {
    /// `inner` behind a guard; `name` (the carrier's, e.g. `easypost`) is in every error and log line.
    pub fn new(name: &'static str, inner: P, config: GuardConfig) -> Self {
        Self { name, inner, config, clock: Arc::new(Instant::now), state: Mutex::new(State::default()) }
    }

    /// The same guard reading the time from `clock`.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn config(&self) -> GuardConfig {
        self.config
    }

    /// The guarded carrier.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a few counters and a cache: still consistent after a panic elsewhere.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn admit(&self, key: &Key, now: Instant) -> Admission {
        let mut state = self.lock();
        if let Some(failure) = state.negative.get(key) {
            if now.saturating_duration_since(failure.at) < self.config.negative_ttl {
                return Admission::Cached(failure.message.clone());
            }
            state.negative.remove(key);
        }
        let open_for = self.config.open_for;
        match state.breaker {
            Breaker::Closed { .. } => Admission::Call,
            Breaker::Open { since } | Breaker::HalfOpen { probe_since: since }
                if now.saturating_duration_since(since) >= open_for =>
            {
                state.breaker = Breaker::HalfOpen { probe_since: now };
                tracing::info!(carrier = self.name, "carrier circuit half-open: probing");
                Admission::Call
            }
            Breaker::Open { .. } | Breaker::HalfOpen { .. } => Admission::Refused,
        }
    }

    fn record(&self, key: Key, outcome: &Result<Option<Money>>, now: Instant) {
        let mut state = self.lock();
        let Err(DomainError::Transient(message)) = outcome else {
            if state.breaker != Breaker::default() {
                if !matches!(state.breaker, Breaker::Closed { .. }) {
                    tracing::info!(carrier = self.name, "carrier circuit closed");
                }
                state.breaker = Breaker::default();
            }
            return;
        };
        tracing::warn!(carrier = self.name, error = %message, "carrier call failed");
        remember(&mut state.negative, key, Failure { at: now, message: message.clone() }, self.config.negative_ttl);
        state.breaker = match state.breaker {
            Breaker::Closed { failures } if failures + 1 < self.config.failure_threshold => {
                Breaker::Closed { failures: failures + 1 }
            }
            Breaker::Closed { .. } | Breaker::HalfOpen { .. } => {
                tracing::warn!(
                    carrier = self.name,
                    open_for_secs = self.config.open_for.as_secs(),
                    "carrier circuit open"
                );
                Breaker::Open { since: now }
            }
            open @ Breaker::Open { .. } => open,
        };
    }
}

/// Stores a failure, keeping the cache within `MAX_NEGATIVE_ENTRIES`.
fn remember(cache: &mut HashMap<Key, Failure>, key: Key, failure: Failure, ttl: Duration) {
    if cache.len() >= MAX_NEGATIVE_ENTRIES && !cache.contains_key(&key) {
        let now = failure.at;
        cache.retain(|_, f| now.saturating_duration_since(f.at) < ttl);
        if cache.len() >= MAX_NEGATIVE_ENTRIES {
            if let Some(oldest) = cache.iter().min_by_key(|(_, f)| f.at).map(|(k, _)| *k) {
                cache.remove(&oldest);
            }
        }
    }
    cache.insert(key, failure);
}

/// A digest of every field of the request (its `Debug` form, which names each one).
fn request_key(request: &CarrierRateRequest) -> Key {
    Sha256::digest(format!("{request:?}").as_bytes()).into()
}

impl<P: ShippingRateProvider> ShippingRateProvider for GuardedCarrier<P> {
    async fn rate(&self, request: &CarrierRateRequest) -> Result<Option<Money>> {
        let key = request_key(request);
        match self.admit(&key, (self.clock)()) {
            Admission::Call => {}
            Admission::Cached(message) => return Err(DomainError::Transient(message)),
            Admission::Refused => {
                return Err(DomainError::Transient(format!(
                    "carrier {} unavailable: too many recent failures",
                    self.name
                )))
            }
        }
        let outcome = match tokio::time::timeout(self.config.timeout, self.inner.rate(request)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(DomainError::Transient(format!(
                "carrier {} did not answer within {} ms",
                self.name,
                self.config.timeout.as_millis()
            ))),
        };
        self.record(key, &outcome, (self.clock)());
        outcome
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::shipping::sandbox::tests::request;
    use commerce_domain::money::Currency;
    use std::future::Future;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A clock the test turns by hand, so no assertion depends on how fast the machine is.
    #[derive(Clone)]
    pub(crate) struct ManualClock(Arc<Mutex<Instant>>);

    impl ManualClock {
        pub(crate) fn new() -> Self {
            Self(Arc::new(Mutex::new(Instant::now())))
        }

        pub(crate) fn advance(&self, by: Duration) {
            *self.0.lock().unwrap() += by;
        }

        pub(crate) fn clock(&self) -> Clock {
            let now = self.0.clone();
            Arc::new(move || *now.lock().unwrap())
        }
    }

    #[derive(Clone, Copy)]
    enum Answer {
        Rate(i64),
        Fail,
        Refused,
        Hang,
    }

    /// A scripted carrier that counts its calls; with a gate, each call waits for `release` after signalling
    /// `entered`.
    #[derive(Clone)]
    struct Fake(Arc<FakeState>);

    struct FakeState {
        answer: Mutex<Answer>,
        calls: AtomicUsize,
        gate: Option<(tokio::sync::Notify, tokio::sync::Notify)>,
    }

    impl Fake {
        fn new(answer: Answer) -> Self {
            Self(Arc::new(FakeState { answer: Mutex::new(answer), calls: AtomicUsize::new(0), gate: None }))
        }

        fn gated(answer: Answer) -> Self {
            let gate = Some((tokio::sync::Notify::new(), tokio::sync::Notify::new()));
            Self(Arc::new(FakeState { answer: Mutex::new(answer), calls: AtomicUsize::new(0), gate }))
        }

        fn answer(&self, answer: Answer) {
            *self.0.answer.lock().unwrap() = answer;
        }

        fn calls(&self) -> usize {
            self.0.calls.load(Ordering::SeqCst)
        }
    }

    impl ShippingRateProvider for Fake {
        async fn rate(&self, request: &CarrierRateRequest) -> Result<Option<Money>> {
            self.0.calls.fetch_add(1, Ordering::SeqCst);
            if let Some((entered, release)) = &self.0.gate {
                entered.notify_one();
                release.notified().await;
            }
            let answer = *self.0.answer.lock().unwrap();
            match answer {
                Answer::Rate(amount) => Ok(Some(Money::new(amount, request.currency))),
                Answer::Fail => Err(DomainError::Transient(format!("boom {}", request.weight_grams))),
                Answer::Refused => Err(DomainError::unexpected("key refused")),
                Answer::Hang => std::future::pending().await,
            }
        }
    }

    fn guarded(fake: &Fake) -> (GuardedCarrier<Fake>, ManualClock) {
        let clock = ManualClock::new();
        (GuardedCarrier::new("fake", fake.clone(), GuardConfig::default()).with_clock(clock.clock()), clock)
    }

    /// A distinct request per `n`, so the negative cache never answers for another.
    fn nth(n: u64) -> CarrierRateRequest {
        request("ground", 1_000 + n, Some("US"), "US")
    }

    fn is_unavailable(outcome: &Result<Option<Money>>) -> bool {
        matches!(outcome, Err(DomainError::Transient(m)) if m.contains("unavailable"))
    }

    async fn open(guard: &GuardedCarrier<Fake>, fake: &Fake) {
        fake.answer(Answer::Fail);
        for n in 0..5 {
            assert!(matches!(guard.rate(&nth(n)).await, Err(DomainError::Transient(_))));
        }
    }

    #[tokio::test]
    async fn the_breaker_opens_after_five_consecutive_failures_and_then_fails_fast() {
        let fake = Fake::new(Answer::Fail);
        let (guard, clock) = guarded(&fake);
        for n in 0..4 {
            assert_eq!(
                guard.rate(&nth(n)).await.unwrap_err().to_string(),
                format!("temporarily unavailable: boom {}", 1_000 + n)
            );
        }
        assert_eq!(fake.calls(), 4);
        assert!(!is_unavailable(&guard.rate(&nth(4)).await));
        assert_eq!(fake.calls(), 5);
        fake.answer(Answer::Rate(700));
        clock.advance(Duration::from_secs(29));
        assert!(is_unavailable(&guard.rate(&nth(5)).await));
        assert!(is_unavailable(&guard.rate(&nth(6)).await));
        assert_eq!(fake.calls(), 5, "an open breaker calls nobody");
    }

    #[tokio::test]
    async fn a_success_resets_the_count_of_consecutive_failures() {
        let fake = Fake::new(Answer::Fail);
        let (guard, _clock) = guarded(&fake);
        for n in 0..4 {
            guard.rate(&nth(n)).await.unwrap_err();
        }
        fake.answer(Answer::Rate(700));
        assert_eq!(guard.rate(&nth(4)).await.unwrap().map(|m| m.amount), Some(700));
        fake.answer(Answer::Fail);
        for n in 5..9 {
            assert!(!is_unavailable(&guard.rate(&nth(n)).await));
        }
        assert_eq!(fake.calls(), 9);
    }

    #[tokio::test]
    async fn after_the_open_period_one_probe_goes_through_and_its_success_closes_the_breaker() {
        let fake = Fake::new(Answer::Fail);
        let (guard, clock) = guarded(&fake);
        open(&guard, &fake).await;
        fake.answer(Answer::Rate(700));
        clock.advance(Duration::from_secs(30));
        assert_eq!(guard.rate(&nth(10)).await.unwrap().map(|m| m.amount), Some(700));
        assert_eq!(fake.calls(), 6);
        assert_eq!(guard.rate(&nth(11)).await.unwrap().map(|m| m.amount), Some(700));
        assert_eq!(fake.calls(), 7, "closed again: every call goes through");
    }

    #[tokio::test]
    async fn a_failed_probe_opens_the_breaker_for_another_period() {
        let fake = Fake::new(Answer::Fail);
        let (guard, clock) = guarded(&fake);
        open(&guard, &fake).await;
        clock.advance(Duration::from_secs(30));
        assert!(!is_unavailable(&guard.rate(&nth(10)).await));
        assert_eq!(fake.calls(), 6);
        fake.answer(Answer::Rate(700));
        clock.advance(Duration::from_secs(29));
        assert!(is_unavailable(&guard.rate(&nth(11)).await));
        clock.advance(Duration::from_secs(1));
        assert_eq!(guard.rate(&nth(11)).await.unwrap().map(|m| m.amount), Some(700));
        assert_eq!(fake.calls(), 7);
    }

    #[tokio::test]
    async fn while_the_probe_is_in_flight_other_calls_fail_fast() {
        let fake = Fake::gated(Answer::Fail);
        let clock = ManualClock::new();
        let guard =
            Arc::new(GuardedCarrier::new("fake", fake.clone(), GuardConfig::default()).with_clock(clock.clock()));
        let (entered, release) = fake.0.gate.as_ref().unwrap();
        for n in 0..5 {
            let call = tokio::spawn({
                let guard = guard.clone();
                async move { guard.rate(&nth(n)).await }
            });
            entered.notified().await;
            release.notify_one();
            call.await.unwrap().unwrap_err();
        }
        assert!(is_unavailable(&guard.rate(&nth(9)).await));
        fake.answer(Answer::Rate(700));
        clock.advance(Duration::from_secs(30));
        let probe = tokio::spawn({
            let guard = guard.clone();
            async move { guard.rate(&nth(10)).await }
        });
        entered.notified().await;
        assert!(is_unavailable(&guard.rate(&nth(11)).await));
        assert_eq!(fake.calls(), 6, "only the probe reached the carrier");
        release.notify_one();
        assert_eq!(probe.await.unwrap().unwrap().map(|m| m.amount), Some(700));
        let after = tokio::spawn({
            let guard = guard.clone();
            async move { guard.rate(&nth(11)).await }
        });
        entered.notified().await;
        release.notify_one();
        assert_eq!(after.await.unwrap().unwrap().map(|m| m.amount), Some(700));
        assert_eq!(fake.calls(), 7);
    }

    #[tokio::test]
    async fn an_abandoned_probe_is_replaced_after_the_open_period() {
        let fake = Fake::new(Answer::Fail);
        let (guard, clock) = guarded(&fake);
        open(&guard, &fake).await;
        fake.answer(Answer::Hang);
        clock.advance(Duration::from_secs(30));
        {
            let request = nth(10);
            let probe = guard.rate(&request);
            let waker = futures::task::noop_waker();
            let mut context = std::task::Context::from_waker(&waker);
            let mut probe = std::pin::pin!(probe);
            assert!(probe.as_mut().poll(&mut context).is_pending());
        }
        assert_eq!(fake.calls(), 6);
        fake.answer(Answer::Rate(700));
        clock.advance(Duration::from_secs(29));
        assert!(is_unavailable(&guard.rate(&nth(11)).await));
        clock.advance(Duration::from_secs(1));
        assert_eq!(guard.rate(&nth(11)).await.unwrap().map(|m| m.amount), Some(700));
    }

    #[tokio::test]
    async fn a_transient_failure_is_answered_from_the_negative_cache_for_sixty_seconds() {
        let fake = Fake::new(Answer::Fail);
        let (guard, clock) = guarded(&fake);
        let first = guard.rate(&nth(0)).await.unwrap_err().to_string();
        fake.answer(Answer::Rate(700));
        clock.advance(Duration::from_secs(59));
        assert_eq!(guard.rate(&nth(0)).await.unwrap_err().to_string(), first, "the same error");
        assert_eq!(fake.calls(), 1, "the carrier was not called again");
        assert_eq!(guard.rate(&nth(1)).await.unwrap().map(|m| m.amount), Some(700), "another request is called");
        let mut other_currency = nth(0);
        other_currency.currency = Currency::EUR;
        assert!(guard.rate(&other_currency).await.is_ok(), "every field is in the key");
        clock.advance(Duration::from_secs(1));
        assert_eq!(guard.rate(&nth(0)).await.unwrap().map(|m| m.amount), Some(700));
        assert_eq!(fake.calls(), 4);
    }

    #[tokio::test]
    async fn cache_hits_and_refusals_do_not_count_as_failures() {
        let fake = Fake::new(Answer::Fail);
        let (guard, _clock) = guarded(&fake);
        for _ in 0..10 {
            guard.rate(&nth(0)).await.unwrap_err();
        }
        assert_eq!(fake.calls(), 1);
        fake.answer(Answer::Rate(700));
        assert!(guard.rate(&nth(1)).await.is_ok(), "one failure, not ten: the breaker is closed");
    }

    #[tokio::test]
    async fn errors_that_are_not_transient_neither_open_the_breaker_nor_are_cached() {
        let fake = Fake::new(Answer::Refused);
        let (guard, _clock) = guarded(&fake);
        for _ in 0..6 {
            assert!(matches!(guard.rate(&nth(0)).await, Err(DomainError::Unexpected(_))));
        }
        assert_eq!(fake.calls(), 6);
        fake.answer(Answer::Rate(700));
        assert!(guard.rate(&nth(0)).await.is_ok());
    }

    #[tokio::test]
    async fn a_carrier_that_never_answers_is_cut_off_by_the_timeout() {
        let fake = Fake::new(Answer::Hang);
        let config = GuardConfig { timeout: Duration::from_millis(200), ..GuardConfig::default() };
        let guard = GuardedCarrier::new("fake", fake.clone(), config);
        let err = guard.rate(&nth(0)).await.unwrap_err();
        assert!(
            matches!(&err, DomainError::Transient(m) if m == "carrier fake did not answer within 200 ms"),
            "{err:?}"
        );
        fake.answer(Answer::Rate(700));
        assert!(matches!(guard.rate(&nth(0)).await, Err(DomainError::Transient(_))), "cached");
        assert_eq!(fake.calls(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_failures_open_the_breaker_once_for_everyone() {
        let fake = Fake::new(Answer::Fail);
        let (guard, _clock) = guarded(&fake);
        let guard = Arc::new(guard);
        let calls: Vec<_> = (0..40)
            .map(|n| {
                let guard = guard.clone();
                tokio::spawn(async move { guard.rate(&nth(n)).await })
            })
            .collect();
        for call in calls {
            assert!(matches!(call.await.unwrap(), Err(DomainError::Transient(_))));
        }
        let reached = fake.calls();
        assert!((5..=40).contains(&reached), "{reached}");
        fake.answer(Answer::Rate(700));
        assert!(is_unavailable(&guard.rate(&nth(100)).await));
        assert_eq!(fake.calls(), reached);
    }

    #[test]
    fn the_negative_cache_stays_bounded() {
        let mut cache = HashMap::new();
        let start = Instant::now();
        let ttl = Duration::from_secs(60);
        for n in 0..(MAX_NEGATIVE_ENTRIES + 10) {
            let key = request_key(&nth(n as u64));
            let at = start + Duration::from_millis(n as u64);
            remember(&mut cache, key, Failure { at, message: String::new() }, ttl);
        }
        assert_eq!(cache.len(), MAX_NEGATIVE_ENTRIES);
        assert!(!cache.contains_key(&request_key(&nth(0))), "the oldest went first");
        assert!(cache.contains_key(&request_key(&nth(MAX_NEGATIVE_ENTRIES as u64 + 9))));
    }
}
