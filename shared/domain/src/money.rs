//! Money as integer minor units plus an ISO 4217 currency code. Never a float.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An ISO 4217 alphabetic currency code, upper case (`USD`, `EUR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    pub const USD: Currency = Currency(*b"USD");
    pub const EUR: Currency = Currency(*b"EUR");

    pub fn as_str(&self) -> &str {
        // Constructed only from ASCII upper-case letters.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }
}

impl TryFrom<String> for Currency {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl std::str::FromStr for Currency {
    type Err = String;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let bytes = value.as_bytes();
        if bytes.len() == 3 && bytes.iter().all(u8::is_ascii_uppercase) {
            Ok(Currency([bytes[0], bytes[1], bytes[2]]))
        } else {
            Err(format!("{value:?} is not an ISO 4217 currency code"))
        }
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.as_str().to_owned()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The highest price accepted: 100 million major units, in minor units.
pub const MAX_PRICE: i64 = 10_000_000_000;
/// The lowest price accepted: one minor unit. A zero price is refused everywhere a price is set (product
/// variants, flash sales), and a SKU stored with a price outside the bounds cannot be bought.
pub const MIN_PRICE: i64 = 1;

/// An amount in minor units (cents) of a currency.
/// A money rule broken: which field, and why. A use case sees it as `DomainError::Validation` (422 naming the
/// field); the money module itself knows no other error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct MoneyError {
    pub field: String,
    pub reason: String,
}

impl MoneyError {
    fn new(field: impl Into<String>, reason: impl fmt::Display) -> Self {
        Self { field: field.into(), reason: reason.to_string() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub amount: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount: i64, currency: Currency) -> Self {
        Self { amount, currency }
    }

    pub fn zero(currency: Currency) -> Self {
        Self { amount: 0, currency }
    }

    /// A price: from `MIN_PRICE` (one minor unit: nothing is sold for free, since an order must be paid to
    /// ship) to `MAX_PRICE` (422 naming `field` otherwise).
    pub fn validate_price(&self, field: &str) -> Result<(), MoneyError> {
        if self.amount < MIN_PRICE {
            return Err(MoneyError::new(field, format!("must be at least {MIN_PRICE} minor unit")));
        }
        if self.amount > MAX_PRICE {
            return Err(MoneyError::new(field, format!("must be at most {MAX_PRICE} minor units")));
        }
        Ok(())
    }

    /// Sum of two amounts in the same currency; errors on a currency mismatch or overflow.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::new("currency", format!("cannot add {} to {}", other.currency, self.currency)));
        }
        self.amount
            .checked_add(other.amount)
            .map(|amount| Money::new(amount, self.currency))
            .ok_or_else(|| MoneyError::new("amount", "overflow"))
    }

    /// The amount times a quantity; errors on overflow.
    pub fn checked_mul(self, quantity: u32) -> Result<Money, MoneyError> {
        self.amount
            .checked_mul(i64::from(quantity))
            .map(|amount| Money::new(amount, self.currency))
            .ok_or_else(|| MoneyError::new("amount", "overflow"))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::reservation::MAX_LINE_QUANTITY;
    use proptest::prelude::*;

    #[test]
    fn currency_must_be_three_upper_letters() {
        assert!("usd".parse::<Currency>().is_err());
        assert!("US".parse::<Currency>().is_err());
        assert_eq!("EUR".parse::<Currency>().unwrap(), Currency::EUR);
        let m: Money = serde_json::from_str(r#"{"amount": 1999, "currency": "USD"}"#).unwrap();
        assert_eq!(m, Money::new(1999, Currency::USD));
        assert!(serde_json::from_str::<Money>(r#"{"amount": 19.99, "currency": "USD"}"#).is_err());
    }

    #[test]
    fn adding_different_currencies_fails() {
        assert!(Money::new(1, Currency::USD).checked_add(Money::new(1, Currency::EUR)).is_err());
    }

    fn amount() -> impl Strategy<Value = i64> {
        crate::edges::i64_near(&[MAX_PRICE, MIN_PRICE])
    }

    fn quantity() -> impl Strategy<Value = u32> {
        prop_oneof![proptest::sample::select(vec![0, 1, 2, u32::MAX - 1, u32::MAX]), any::<u32>()]
    }

    proptest! {
        #[test]
        fn addition_is_exact(a in 0i64..1_000_000_000, b in 0i64..1_000_000_000) {
            let sum = Money::new(a, Currency::USD).checked_add(Money::new(b, Currency::USD)).unwrap();
            prop_assert_eq!(sum.amount, a + b);
        }

        /// At and around `i64::MIN` and `i64::MAX` a sum is exact or refused, never wrapped.
        #[test]
        fn addition_never_wraps(a in amount(), b in amount()) {
            let exact = i128::from(a) + i128::from(b);
            match Money::new(a, Currency::USD).checked_add(Money::new(b, Currency::USD)) {
                Ok(m) => prop_assert_eq!(i128::from(m.amount), exact),
                Err(e) => {
                    prop_assert!(i64::try_from(exact).is_err());
                    prop_assert!(matches!(crate::DomainError::from(e.clone()), crate::DomainError::Validation { .. }), "{:?}", e);
                }
            }
        }

        /// A price is accepted exactly from one minor unit to MAX_PRICE.
        #[test]
        fn a_price_is_accepted_exactly_within_its_limits(a in amount()) {
            let accepted = Money::new(a, Currency::USD).validate_price("price").is_ok();
            prop_assert_eq!(accepted, (MIN_PRICE..=MAX_PRICE).contains(&a));
        }

        /// Any accepted price times any quantity a line may hold, summed over the most lines an order may
        /// have, stays far inside i64.
        #[test]
        fn the_largest_order_cannot_overflow(a in MIN_PRICE..=MAX_PRICE, q in 1u32..=MAX_LINE_QUANTITY) {
            let line = Money::new(a, Currency::USD).checked_mul(q).unwrap();
            let mut total = Money::zero(Currency::USD);
            for _ in 0..crate::order::MAX_LINES {
                total = total.checked_add(line).unwrap();
            }
            prop_assert!(total.amount <= MAX_PRICE * i64::from(MAX_LINE_QUANTITY) * 100);
        }

        #[test]
        fn multiplication_never_wraps(a in amount(), q in quantity()) {
            let exact = i128::from(a) * i128::from(q);
            match Money::new(a, Currency::USD).checked_mul(q) {
                Ok(m) => prop_assert_eq!(i128::from(m.amount), exact),
                Err(_) => prop_assert!(i64::try_from(exact).is_err()),
            }
        }
    }
}
