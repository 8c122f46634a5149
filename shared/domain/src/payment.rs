//! Payments as the provider holds them: an authorization for the order total, captured (in parts, at each
//! seller's shipment), voided, or refunded. The rules here bind every adapter: nothing is captured beyond
//! what was authorized, nothing refunded beyond what was captured, and a voided payment stays voided.

use crate::error::ErrorCode;
use crate::error::{DomainError, Result};
use crate::money::{Currency, Money};
use serde::{Deserialize, Serialize};

/// A payment's lifecycle state, named as the API and the provider webhooks use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Authorized,
    PartiallyCaptured,
    Captured,
    Voided,
    PartiallyRefunded,
    Refunded,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authorized => "authorized",
            Self::PartiallyCaptured => "partially_captured",
            Self::Captured => "captured",
            Self::Voided => "voided",
            Self::PartiallyRefunded => "partially_refunded",
            Self::Refunded => "refunded",
        }
    }

    /// Whether money is still held on the card without being captured.
    pub fn holds_funds(self) -> bool {
        matches!(self, Self::Authorized | Self::PartiallyCaptured)
    }
}

impl std::str::FromStr for PaymentStatus {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "authorized" => Self::Authorized,
            "partially_captured" => Self::PartiallyCaptured,
            "captured" => Self::Captured,
            "voided" => Self::Voided,
            "partially_refunded" => Self::PartiallyRefunded,
            "refunded" => Self::Refunded,
            other => return Err(DomainError::unexpected(format!("unknown payment status {other}"))),
        })
    }
}

/// A request to hold the order total on the shopper's payment method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizeRequest {
    pub order_id: String,
    pub amount: Money,
    /// A provider token (`pm_...`), never card data.
    pub payment_method: String,
    /// The provider-side idempotency key: retries of this authorization replay its first outcome.
    pub idempotency_key: String,
}

/// A payment as the provider reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// The provider's id (`pi_...`).
    pub payment_id: String,
    pub order_id: String,
    pub status: PaymentStatus,
    /// The authorized amount.
    pub amount: Money,
    /// Captured so far, minor units.
    pub captured: i64,
    /// Refunded so far, minor units.
    pub refunded: i64,
}

impl Payment {
    /// A fresh authorization.
    pub fn authorized(payment_id: String, order_id: String, amount: Money) -> Self {
        Self { payment_id, order_id, status: PaymentStatus::Authorized, amount, captured: 0, refunded: 0 }
    }

    pub fn currency(&self) -> Currency {
        self.amount.currency
    }

    /// Captures `amount` more. With `final_capture` the uncaptured rest is released, as Stripe does.
    pub fn capture(&mut self, amount: Money, final_capture: bool) -> Result<()> {
        self.same_currency(amount)?;
        if !self.status.holds_funds() {
            return Err(DomainError::conflict(
                ErrorCode::PaymentNotCapturable,
                format!("a {} payment cannot be captured", self.status.as_str()),
            ));
        }
        let captured = self.captured.checked_add(amount.amount).filter(|c| *c <= self.amount.amount);
        let Some(captured) = captured.filter(|_| amount.amount > 0) else {
            return Err(DomainError::validation("amount", "must be positive and within the authorized amount"));
        };
        self.captured = captured;
        self.status = if final_capture || self.captured == self.amount.amount {
            PaymentStatus::Captured
        } else {
            PaymentStatus::PartiallyCaptured
        };
        Ok(())
    }

    /// Releases the uncaptured hold. Voiding twice is a no-op; voiding after a capture releases the rest.
    pub fn void(&mut self) -> Result<()> {
        match self.status {
            PaymentStatus::Voided => Ok(()),
            PaymentStatus::Authorized => {
                self.status = PaymentStatus::Voided;
                Ok(())
            }
            PaymentStatus::PartiallyCaptured => {
                self.status = PaymentStatus::Captured;
                Ok(())
            }
            other => Err(DomainError::conflict(
                ErrorCode::PaymentNotVoidable,
                format!("a {} payment cannot be voided", other.as_str()),
            )),
        }
    }

    /// Refunds `amount` of what was captured.
    pub fn refund(&mut self, amount: Money) -> Result<()> {
        self.same_currency(amount)?;
        let refunded = self.refunded.checked_add(amount.amount).filter(|r| *r <= self.captured);
        let Some(refunded) = refunded.filter(|_| amount.amount > 0) else {
            return Err(DomainError::validation("amount", "must be positive and within the captured amount"));
        };
        self.refunded = refunded;
        if !self.status.holds_funds() {
            self.status =
                if self.refunded == self.captured { PaymentStatus::Refunded } else { PaymentStatus::PartiallyRefunded };
        }
        Ok(())
    }

    fn same_currency(&self, amount: Money) -> Result<()> {
        if amount.currency == self.amount.currency {
            Ok(())
        } else {
            Err(DomainError::validation("currency", "must match the payment's currency"))
        }
    }
}

/// A payment as the order's owner sees it: where it stands and how much was authorized, captured and
/// refunded, each as Money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PaymentView {
    pub status: PaymentStatus,
    pub authorized: Money,
    pub captured: Money,
    pub refunded: Money,
}

impl From<&Payment> for PaymentView {
    fn from(payment: &Payment) -> Self {
        let currency = payment.currency();
        Self {
            status: payment.status,
            authorized: payment.amount,
            captured: Money::new(payment.captured, currency),
            refunded: Money::new(payment.refunded, currency),
        }
    }
}

/// Checks that a payment method is a provider token and cannot be raw card data.
pub fn validate_payment_method(token: &str) -> Result<()> {
    let shaped = token.len() <= 255
        && token.starts_with("pm_")
        && token[3..].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && token.len() > 3;
    let mut run = 0;
    let looks_like_pan = token.bytes().any(|b| {
        run = if b.is_ascii_digit() { run + 1 } else { 0 };
        run >= 12
    });
    if shaped && !looks_like_pan {
        Ok(())
    } else {
        Err(DomainError::validation("payment_method", "must be a payment method token (pm_...), never card data"))
    }
}

/// How far a provider's webhook may be from now: its signature's age, and how far in the future its
/// `created` may lie (a report dated later would outrank every later one).
pub const WEBHOOK_TOLERANCE_SECS: i64 = 300;

/// A webhook event, as far as it concerns payments.
#[derive(Debug, Clone)]
pub struct WebhookEvent {
    pub id: String,
    pub kind: String,
    pub created: chrono::DateTime<chrono::Utc>,
    /// The payment the event reports, for `payment_intent.*` events that carry an order id.
    pub payment: Option<Payment>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn usd(a: i64) -> Money {
        Money::new(a, Currency::USD)
    }

    #[test]
    fn tokens_only() {
        assert!(validate_payment_method("pm_card_visa").is_ok());
        assert!(validate_payment_method("pm_card_visa_chargeDeclined").is_ok());
        assert!(validate_payment_method("4242424242424242").is_err());
        assert!(validate_payment_method("pm_4242424242424242").is_err());
        assert!(validate_payment_method("pm_").is_err());
        assert!(validate_payment_method("pm_a b").is_err());
    }

    #[test]
    fn partial_captures_then_final() {
        let mut p = Payment::authorized("pi_1".into(), "ord_1".into(), usd(1000));
        p.capture(usd(300), false).unwrap();
        assert_eq!(p.status, PaymentStatus::PartiallyCaptured);
        p.capture(usd(700), false).unwrap();
        assert_eq!(p.status, PaymentStatus::Captured);
        assert!(p.capture(usd(1), false).is_err());
    }

    #[test]
    fn when_voided_should_not_capture() {
        let mut p = Payment::authorized("pi_1".into(), "ord_1".into(), usd(1000));
        p.void().unwrap();
        p.void().unwrap();
        assert!(matches!(
            p.capture(usd(1), true),
            Err(DomainError::Conflict { code: ErrorCode::PaymentNotCapturable, .. })
        ));
    }

    #[test]
    fn refund_after_capture() {
        let mut p = Payment::authorized("pi_1".into(), "ord_1".into(), usd(1000));
        assert!(p.refund(usd(1)).is_err());
        p.capture(usd(1000), true).unwrap();
        p.refund(usd(400)).unwrap();
        assert_eq!(p.status, PaymentStatus::PartiallyRefunded);
        p.refund(usd(600)).unwrap();
        assert_eq!(p.status, PaymentStatus::Refunded);
        assert!(p.refund(usd(1)).is_err());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Capture(i64, bool),
        Void,
        Refund(i64),
    }

    /// Amounts a provider call may carry: ordinary ones and the i64 bounds.
    fn amount() -> impl Strategy<Value = i64> {
        prop_oneof![3 => 0i64..50_000, 1 => crate::edges::i64_near(&[])]
    }

    proptest! {
        /// Captures and refunds of any amounts, `i64::MAX` included, never overflow the running totals.
        #[test]
        fn never_captures_beyond_authorized_nor_refunds_beyond_captured(
            total in prop_oneof![1i64..100_000, Just(i64::MAX - 1), Just(i64::MAX)],
            ops in proptest::collection::vec(prop_oneof![
                (amount(), any::<bool>()).prop_map(|(a, f)| Op::Capture(a, f)),
                Just(Op::Void),
                amount().prop_map(Op::Refund),
            ], 0..20)
        ) {
            let mut p = Payment::authorized("pi".into(), "ord".into(), usd(total));
            for op in ops {
                let before = p.clone();
                let voided = p.status == PaymentStatus::Voided;
                let result = match op {
                    Op::Capture(a, f) => p.capture(usd(a), f),
                    Op::Void => p.void(),
                    Op::Refund(a) => p.refund(usd(a)),
                };
                if result.is_err() {
                    prop_assert_eq!(&p, &before);
                }
                prop_assert!(0 <= p.captured && p.captured <= p.amount.amount);
                prop_assert!(0 <= p.refunded && p.refunded <= p.captured);
                if voided {
                    prop_assert_eq!(p.captured, 0);
                }
            }
        }
    }
}
