//! Payment providers: the sandbox (local runs and tests, state in DynamoDB) and Stripe (production), behind
//! one `PaymentProvider`, chosen by configuration. Every call is bounded by the client timeout; a call that
//! runs past it is `Transient`, and its effect is found later by idempotency key or by order.

pub mod sandbox;
pub mod stripe;

use crate::config::{self, ConfigError};
use commerce_app::ports::PaymentProvider;
use commerce_domain::error::{DomainError, Result};
use commerce_domain::money::Money;
use commerce_domain::payment::{AuthorizeRequest, Payment};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use sandbox::SandboxProvider;
pub use stripe::StripeProvider;

/// The configured provider with its client timeout.
#[derive(Debug, Clone)]
pub struct ConfiguredProvider {
    inner: Inner,
    timeout: Duration,
}

#[derive(Debug, Clone)]
enum Inner {
    Sandbox(SandboxProvider),
    Stripe(StripeProvider),
}

impl ConfiguredProvider {
    /// From PAYMENT_PROVIDER (`sandbox` or `stripe`) and PAYMENT_TIMEOUT_MS (default 5000). The sandbox reads
    /// PAYMENT_SANDBOX_TABLE, SANDBOX_SLOW_MS and SANDBOX_HANG_MS; Stripe reads its API key from the secret
    /// STRIPE_SECRET_KEY_ARN names (once, here) and STRIPE_API_BASE.
    pub async fn from_env(aws: &aws_config::SdkConfig) -> std::result::Result<Self, ConfigError> {
        let timeout = Duration::from_millis(config::parsed_or("PAYMENT_TIMEOUT_MS", 5_000u64)?);
        let inner = match config::required("PAYMENT_PROVIDER")?.as_str() {
            "sandbox" => Inner::Sandbox(SandboxProvider::new(
                aws_sdk_dynamodb::Client::new(aws),
                config::required("PAYMENT_SANDBOX_TABLE")?,
                Duration::from_millis(config::parsed_or("SANDBOX_SLOW_MS", 3_000u64)?),
                Duration::from_millis(config::parsed_or("SANDBOX_HANG_MS", 120_000u64)?),
            )),
            "stripe" => Inner::Stripe(
                StripeProvider::new(
                    config::secret(aws, "STRIPE_SECRET_KEY_ARN").await?,
                    std::env::var("STRIPE_API_BASE").unwrap_or_else(|_| stripe::API_BASE.to_owned()),
                    timeout,
                )
                .map_err(|e| ConfigError::Invalid { name: "STRIPE_API_BASE", reason: e.to_string() })?,
            ),
            other => {
                return Err(ConfigError::Invalid {
                    name: "PAYMENT_PROVIDER",
                    reason: format!("unknown provider {other}"),
                })
            }
        };
        Ok(Self { inner, timeout })
    }

    /// The sandbox with an explicit timeout (tests).
    pub fn sandbox(provider: SandboxProvider, timeout: Duration) -> Self {
        Self { inner: Inner::Sandbox(provider), timeout }
    }

    /// Runs a provider call within the timeout. Boxed: provider futures are deep, and erasing them keeps
    /// every caller's future type small.
    async fn bounded<T>(&self, call: Pin<Box<dyn Future<Output = Result<T>> + Send + '_>>) -> Result<T> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(DomainError::Transient("payment provider timed out".into())),
        }
    }
}

impl PaymentProvider for ConfiguredProvider {
    async fn authorize(&self, request: &AuthorizeRequest) -> Result<Payment> {
        match &self.inner {
            Inner::Sandbox(p) => self.bounded(Box::pin(p.authorize(request))).await,
            Inner::Stripe(p) => self.bounded(Box::pin(p.authorize(request))).await,
        }
    }

    async fn capture(&self, payment_id: &str, amount: Money, final_capture: bool, key: &str) -> Result<Payment> {
        match &self.inner {
            Inner::Sandbox(p) => self.bounded(Box::pin(p.capture(payment_id, amount, final_capture, key))).await,
            Inner::Stripe(p) => self.bounded(Box::pin(p.capture(payment_id, amount, final_capture, key))).await,
        }
    }

    async fn void(&self, payment_id: &str, key: &str) -> Result<Payment> {
        match &self.inner {
            Inner::Sandbox(p) => self.bounded(Box::pin(p.void(payment_id, key))).await,
            Inner::Stripe(p) => self.bounded(Box::pin(p.void(payment_id, key))).await,
        }
    }

    async fn refund(&self, payment_id: &str, amount: Money, key: &str) -> Result<Payment> {
        match &self.inner {
            Inner::Sandbox(p) => self.bounded(Box::pin(p.refund(payment_id, amount, key))).await,
            Inner::Stripe(p) => self.bounded(Box::pin(p.refund(payment_id, amount, key))).await,
        }
    }

    async fn find_for_order(&self, order_id: &str) -> Result<Option<Payment>> {
        match &self.inner {
            Inner::Sandbox(p) => self.bounded(Box::pin(p.find_for_order(order_id))).await,
            Inner::Stripe(p) => self.bounded(Box::pin(p.find_for_order(order_id))).await,
        }
    }
}
