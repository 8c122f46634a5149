//! The sandbox payment provider: deterministic test payment methods, with its state in DynamoDB so that
//! authorize, capture, void and refund work across separate function processes, and idempotency keys replay
//! their first outcome as Stripe's do.
//!
//! Test payment methods (Stripe's documented ids where they exist):
//! - `pm_card_visa`, `pm_card_mastercard`: approve.
//! - `pm_card_visa_chargeDeclined`: declined (`card_declined`).
//! - `pm_card_visa_chargeDeclinedInsufficientFunds`: declined (`insufficient_funds`).
//! - `pm_sandbox_slow`: approves after `SANDBOX_SLOW_MS`.
//! - `pm_sandbox_timeout`: the authorization is made but its response never arrives (every attempt hangs
//!   for `SANDBOX_HANG_MS`): the client times out, and a compensation must find and void it.
//! - `pm_sandbox_hang_once`: the first attempt makes the authorization and then hangs past the function's
//!   timeout (the instance is killed); a retry with the same key gets the authorization.
//! - `pm_sandbox_error`: the provider fails (a 500): `Transient`, nothing is authorized.
//! - `pm_sandbox_capture_fails`: authorizes; every capture fails.
//!
//! Items: `SANDBOX#PI#<id> / PI` (the payment, its method and version), `SANDBOX#ORDER#<order> / ORDER` (the
//! order's payment id), `SANDBOX#KEY#<key> / KEY` (an idempotency key's request and outcome, TTL 24 h).

use crate::dynamo::{applied, from_av, key, n, num, s, sdk_error, text, to_av, Item, Table};
use chrono::Utc;
use commerce_domain::error::ErrorCode;
use commerce_domain::error::{DomainError, Result};
use commerce_domain::idempotency::key_digest;
use commerce_domain::money::Money;
use commerce_domain::payment::{validate_payment_method, AuthorizeRequest, Payment};
use futures::FutureExt;
use std::time::Duration;

pub const APPROVE: &str = "pm_card_visa";
pub const APPROVE_MASTERCARD: &str = "pm_card_mastercard";
pub const DECLINE: &str = "pm_card_visa_chargeDeclined";
pub const INSUFFICIENT_FUNDS: &str = "pm_card_visa_chargeDeclinedInsufficientFunds";
pub const SLOW: &str = "pm_sandbox_slow";
pub const TIMEOUT: &str = "pm_sandbox_timeout";
pub const HANG_ONCE: &str = "pm_sandbox_hang_once";
pub const ERROR: &str = "pm_sandbox_error";
pub const CAPTURE_FAILS: &str = "pm_sandbox_capture_fails";

/// What an idempotency key's first call ended with.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
enum Outcome {
    Payment { payment: Payment },
    Declined { reason: String },
}

impl Outcome {
    fn into_result(self) -> Result<Payment> {
        match self {
            Outcome::Payment { payment } => Ok(payment),
            Outcome::Declined { reason } => Err(DomainError::PaymentDeclined { reason }),
        }
    }
}

/// The sandbox provider.
#[derive(Debug, Clone)]
pub struct SandboxProvider {
    table: Table,
    slow: Duration,
    hang: Duration,
}

impl SandboxProvider {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>, slow: Duration, hang: Duration) -> Self {
        Self { table: Table::new(client, table), slow, hang }
    }

    /// The sandbox's payment id for an authorization key: stable, so a retried authorization finds its payment.
    pub fn payment_id_for(idempotency_key: &str) -> String {
        format!("pi_sbx_{}", key_digest(idempotency_key))
    }

    /// The stored outcome of `key` if it was used before; a different request under the same key is refused.
    async fn replay(&self, key: &str, request: &str) -> Result<Option<Outcome>> {
        let Some(item) = self.table.get(self::key(format!("SANDBOX#KEY#{key}"), "KEY")).await? else {
            return Ok(None);
        };
        let stored_request = text(&item, "request").map(String::as_str);
        if stored_request != Some(request) {
            return Err(DomainError::conflict(
                ErrorCode::IdempotencyKeyReused,
                "the provider idempotency key was used for a different request",
            ));
        }
        let outcome = item.get("outcome").ok_or_else(|| DomainError::unexpected("sandbox key lacks outcome"))?;
        from_av(outcome).map(Some)
    }

    /// Stores `outcome` for `key` unless a concurrent call stored one first; returns the one that counts.
    async fn remember(&self, key: &str, request: &str, outcome: Outcome) -> Result<Payment> {
        let expires = Utc::now() + chrono::Duration::hours(24);
        let item = Item::from([
            ("pk".into(), s(format!("SANDBOX#KEY#{key}"))),
            ("sk".into(), s("KEY")),
            ("request".into(), s(request)),
            ("outcome".into(), to_av(&outcome)?),
            ("expires_at".into(), n(expires.timestamp())),
        ]);
        if self.table.put_new(item).await? {
            return outcome.into_result();
        }
        match self.replay(key, request).await? {
            Some(first) => first.into_result(),
            None => Err(DomainError::Transient("sandbox key vanished".into())),
        }
    }

    async fn load(&self, payment_id: &str) -> Result<(Payment, String, u64)> {
        let item = self
            .table
            .get(key(format!("SANDBOX#PI#{payment_id}"), "PI"))
            .await?
            .ok_or_else(|| DomainError::not_found("payment"))?;
        let payment: Payment = from_av(item.get("payment").ok_or_else(|| DomainError::unexpected("no payment"))?)?;
        let method = text(&item, "method").cloned().unwrap_or_default();
        let version = u64::try_from(num(&item, "version")).unwrap_or(0);
        Ok((payment, method, version))
    }

    /// Creates the payment item if absent; true if this call created it. The order's index item is written
    /// first, so a payment that exists is always findable by order.
    async fn create(&self, payment: &Payment, method: &str) -> Result<bool> {
        self.table
            .put_item()
            .item("pk", s(format!("SANDBOX#ORDER#{}", payment.order_id)))
            .item("sk", s("ORDER"))
            .item("payment_id", s(&payment.payment_id))
            .send()
            .boxed()
            .await
            .map_err(sdk_error)?;
        self.table
            .put_new(Item::from([
                ("pk".into(), s(format!("SANDBOX#PI#{}", payment.payment_id))),
                ("sk".into(), s("PI")),
                ("payment".into(), to_av(payment)?),
                ("method".into(), s(method)),
                ("version".into(), n(1)),
            ]))
            .await
    }

    /// Applies `change` to a payment under its version, replaying `key` if it was used before.
    async fn mutate(
        &self,
        payment_id: &str,
        key: &str,
        request: String,
        change: impl Fn(&mut Payment, &str) -> Result<()>,
    ) -> Result<Payment> {
        if let Some(outcome) = self.replay(key, &request).await? {
            return outcome.into_result();
        }
        for _ in 0..5 {
            let (mut payment, method, version) = self.load(payment_id).await?;
            match change(&mut payment, &method) {
                Ok(()) => {}
                Err(DomainError::PaymentDeclined { reason }) => {
                    return self.remember(key, &request, Outcome::Declined { reason }).await
                }
                Err(err) => return Err(err),
            }
            let result = self
                .table
                .update_item()
                .key("pk", s(format!("SANDBOX#PI#{payment_id}")))
                .key("sk", s("PI"))
                .update_expression("SET payment = :payment, version = :next")
                .condition_expression("version = :version")
                .expression_attribute_values(":payment", to_av(&payment)?)
                .expression_attribute_values(":next", n(version + 1))
                .expression_attribute_values(":version", n(version))
                .send()
                .boxed()
                .await;
            if applied(result)? {
                return self.remember(key, &request, Outcome::Payment { payment }).await;
            }
        }
        Err(DomainError::Transient("sandbox payment is busy".into()))
    }

    pub async fn authorize(&self, request: &AuthorizeRequest) -> Result<Payment> {
        validate_payment_method(&request.payment_method)?;
        if request.amount.amount <= 0 {
            return Err(DomainError::validation("amount", "must be positive"));
        }
        let fingerprint = format!(
            "authorize:{}:{}:{}:{}",
            request.order_id, request.amount.amount, request.amount.currency, request.payment_method
        );
        let key = &request.idempotency_key;
        if let Some(outcome) = self.replay(key, &fingerprint).await? {
            return outcome.into_result();
        }
        let declined = |reason: &str| Outcome::Declined { reason: reason.to_owned() };
        let method = request.payment_method.as_str();
        match method {
            DECLINE => return self.remember(key, &fingerprint, declined("card_declined")).await,
            INSUFFICIENT_FUNDS => return self.remember(key, &fingerprint, declined("insufficient_funds")).await,
            ERROR => return Err(DomainError::Transient("sandbox provider error (500)".into())),
            APPROVE | APPROVE_MASTERCARD | SLOW | TIMEOUT | HANG_ONCE | CAPTURE_FAILS => {}
            _ => return self.remember(key, &fingerprint, declined("payment_method_invalid")).await,
        }
        let payment = Payment::authorized(Self::payment_id_for(key), request.order_id.clone(), request.amount);
        let created = self.create(&payment, method).await?;
        match method {
            TIMEOUT => {
                tokio::time::sleep(self.hang).await;
                return Err(DomainError::Transient("sandbox provider did not answer".into()));
            }
            HANG_ONCE if created => {
                tracing::warn!(order_id = %request.order_id, "sandbox: hanging after authorization");
                tokio::time::sleep(self.hang).await;
                return Err(DomainError::Transient("sandbox provider did not answer".into()));
            }
            SLOW => tokio::time::sleep(self.slow).await,
            _ => {}
        }
        let (current, _, _) = self.load(&payment.payment_id).await?;
        self.remember(key, &fingerprint, Outcome::Payment { payment: current }).await
    }

    pub async fn capture(&self, payment_id: &str, amount: Money, final_capture: bool, key: &str) -> Result<Payment> {
        let request = format!("capture:{payment_id}:{}:{}:{final_capture}", amount.amount, amount.currency);
        self.mutate(payment_id, key, request, |payment, method| {
            if method == CAPTURE_FAILS {
                return Err(DomainError::PaymentDeclined { reason: "capture_failed".into() });
            }
            payment.capture(amount, final_capture)
        })
        .await
    }

    pub async fn void(&self, payment_id: &str, key: &str) -> Result<Payment> {
        self.mutate(payment_id, key, format!("void:{payment_id}"), |payment, _| payment.void()).await
    }

    pub async fn refund(&self, payment_id: &str, amount: Money, key: &str) -> Result<Payment> {
        let request = format!("refund:{payment_id}:{}:{}", amount.amount, amount.currency);
        self.mutate(payment_id, key, request, |payment, _| payment.refund(amount)).await
    }

    pub async fn find_for_order(&self, order_id: &str) -> Result<Option<Payment>> {
        let Some(item) = self.table.get(key(format!("SANDBOX#ORDER#{order_id}"), "ORDER")).await? else {
            return Ok(None);
        };
        let Some(payment_id) = text(&item, "payment_id") else {
            return Ok(None);
        };
        match self.load(payment_id).await {
            Ok((payment, _, _)) => Ok(Some(payment)),
            Err(DomainError::NotFound { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }
}
