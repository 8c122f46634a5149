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

    /// The number of decimal places of the currency's minor unit, from ISO 4217: 0 for JPY, 3 for KWD, 2 for
    /// most (and for any code the table does not list).
    pub fn exponent(&self) -> u32 {
        match &self.0 {
            b"BIF" | b"CLP" | b"DJF" | b"GNF" | b"ISK" | b"JPY" | b"KMF" | b"KRW" | b"PYG" | b"RWF" | b"UGX"
            | b"UYI" | b"VND" | b"VUV" | b"XAF" | b"XOF" | b"XPF" => 0,
            b"BHD" | b"IQD" | b"JOD" | b"KWD" | b"LYD" | b"OMR" | b"TND" => 3,
            b"CLF" | b"UYW" => 4,
            _ => 2,
        }
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

impl Money {
    /// An amount written in major units with at most the currency's decimals (`"7.58"` USD is 758, `"1200"`
    /// JPY is 1200, `"1.250"` KWD is 1250): how carriers write prices. Refuses more decimals than the currency
    /// has, a sign, and anything over `MAX_PRICE`.
    pub fn from_decimal(text: &str, currency: Currency, field: &str) -> Result<Money, MoneyError> {
        let exponent = currency.exponent() as usize;
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(fraction) || (text.contains('.') && fraction.is_empty()) {
            return Err(MoneyError::new(field, format!("{text:?} is not a decimal amount")));
        }
        if fraction.len() > exponent {
            return Err(MoneyError::new(field, format!("{currency} has {exponent} decimals, {text:?} has more")));
        }
        let padded = format!("{whole}{fraction:0<exponent$}");
        let amount = padded.trim_start_matches('0').parse::<i64>().or_else(|e| {
            if padded.bytes().all(|b| b == b'0') {
                Ok(0)
            } else {
                Err(MoneyError::new(field, e))
            }
        })?;
        if amount > MAX_PRICE {
            return Err(MoneyError::new(field, format!("must be at most {MAX_PRICE} minor units")));
        }
        Ok(Money::new(amount, currency))
    }

    /// The amount in major units with the currency's decimals (`12.34`, `1200`, `1.250`).
    pub fn to_decimal(&self) -> String {
        let exponent = self.currency.exponent() as usize;
        let sign = if self.amount < 0 { "-" } else { "" };
        let digits = format!("{:0>width$}", self.amount.unsigned_abs(), width = exponent + 1);
        if exponent == 0 {
            return format!("{sign}{digits}");
        }
        let (whole, fraction) = digits.split_at(digits.len() - exponent);
        format!("{sign}{whole}.{fraction}")
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
    fn exponents_come_from_iso_4217() {
        let exp = |c: &str| c.parse::<Currency>().unwrap().exponent();
        assert_eq!((exp("JPY"), exp("USD"), exp("EUR"), exp("KWD"), exp("BHD"), exp("CLF")), (0, 2, 2, 3, 3, 4));
    }

    #[test]
    fn decimal_amounts_follow_the_currency_exponent() {
        let cur = |c: &str| c.parse::<Currency>().unwrap();
        let parse = |t: &str, c: &str| Money::from_decimal(t, cur(c), "rate").map(|m| m.amount);
        assert_eq!(parse("7.58", "USD"), Ok(758));
        assert_eq!(parse("7.5", "USD"), Ok(750));
        assert_eq!(parse("7", "USD"), Ok(700));
        assert_eq!(parse("0.00", "USD"), Ok(0));
        assert_eq!(parse("1200", "JPY"), Ok(1200));
        assert_eq!(parse("1.250", "KWD"), Ok(1250));
        for bad in ["7.585", "-1", "1.", ".5", "", "1e3", "1,00", " 1", "100000000.01"] {
            assert!(parse(bad, "USD").is_err(), "{bad}");
        }
        assert!(parse("12.5", "JPY").is_err());
        assert_eq!(Money::new(758, cur("USD")).to_decimal(), "7.58");
        assert_eq!(Money::new(5, cur("USD")).to_decimal(), "0.05");
        assert_eq!(Money::new(1200, cur("JPY")).to_decimal(), "1200");
        assert_eq!(Money::new(1250, cur("KWD")).to_decimal(), "1.250");
        assert_eq!(Money::new(-5, cur("KWD")).to_decimal(), "-0.005");
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
