//! The pricing engine: an order's lines and shipping taxed under one address's rules, and the totals they
//! add up to. Everything is integer minor units; every total is a sum of integers already rounded, so the
//! parts always add up to the whole:
//!
//! - `subtotal` is the lines at their prices (the sticker price where prices include tax);
//! - `discount_total` is taken off before tax (a line is taxed on its amount less its discount, a shipping
//!   likewise): the lines' discounts and the shipping's;
//! - `shipping_total` is the shipping as priced, before its discount (gross where prices include tax);
//! - `tax_total` is the lines' taxes plus the shipping's;
//! - `total = subtotal − discount_total + shipping_total (+ tax_total where prices exclude tax)`.

use crate::error::{DomainError, Result};
use crate::ids::ShippingMethodId;
use crate::money::{Currency, Money};
use crate::promotion::Share;
use crate::tax::{TaxClass, TaxComponent, TaxRules, Taxed};
use serde::{Deserialize, Serialize};

/// A line's amounts, as the engine sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineAmounts {
    /// Price times quantity.
    pub amount: i64,
    /// Taken off before tax; at most `amount`.
    pub discount: i64,
    /// The tax on (or, where prices include tax, in) `amount − discount`.
    pub tax: i64,
}

/// A seller part's shipping, frozen into the order: the method, what the shopper pays, and its tax.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingLine {
    pub seller_id: String,
    pub method_id: ShippingMethodId,
    pub name: String,
    pub amount: Money,
    pub tax: Money,
    pub tax_class: TaxClass,
    pub min_days: u32,
    pub max_days: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taxes: Vec<TaxComponent>,
    /// The promotions' shares taken off `amount` (free shipping); `tax` is on what is left.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discounts: Vec<Share>,
}

impl ShippingLine {
    /// What the promotions took off.
    pub fn discount(&self) -> i64 {
        self.discounts.iter().map(|d| d.amount).sum()
    }

    /// The line with `discounts` taken off before tax, its tax recomputed under `rules`.
    pub fn discounted(mut self, rules: &TaxRules, discounts: Vec<Share>) -> Result<Self> {
        let off: i64 = discounts.iter().map(|d| d.amount).sum();
        if off < 0 || off > self.amount.amount || discounts.iter().any(|d| d.amount <= 0) {
            return Err(DomainError::validation("shipping", "a discount must be positive and within the shipping"));
        }
        let net = self.amount.amount - off;
        let taxed = if rules.shipping_taxable {
            rules.tax(net, &self.tax_class)
        } else {
            Taxed { net, tax: 0, gross: net, components: Vec::new() }
        };
        self.tax = Money::new(taxed.tax, self.amount.currency);
        self.taxes = taxed.components;
        self.discounts = discounts;
        Ok(self)
    }
}

/// An order's (or a seller part's) totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub subtotal: Money,
    pub discount_total: Money,
    pub shipping_total: Money,
    pub tax_total: Money,
    pub total: Money,
}

fn sum(currency: Currency, values: impl IntoIterator<Item = i64>) -> Result<Money> {
    values
        .into_iter()
        .try_fold(Money::zero(currency), |acc, v| acc.checked_add(Money::new(v, currency)))
        .map_err(Into::into)
}

/// The totals of `lines` and `shipping` (see the module's rules).
pub fn totals(
    currency: Currency,
    prices_include_tax: bool,
    lines: &[LineAmounts],
    shipping: &[&ShippingLine],
) -> Result<Totals> {
    let subtotal = sum(currency, lines.iter().map(|l| l.amount))?;
    let discount_total = sum(currency, lines.iter().map(|l| l.discount).chain(shipping.iter().map(|s| s.discount())))?;
    let shipping_total = sum(currency, shipping.iter().map(|s| s.amount.amount))?;
    let tax_total = sum(currency, lines.iter().map(|l| l.tax).chain(shipping.iter().map(|s| s.tax.amount)))?;
    let added_tax = if prices_include_tax { 0 } else { tax_total.amount };
    let total = sum(currency, [subtotal.amount, -discount_total.amount, shipping_total.amount, added_tax])?;
    Ok(Totals { subtotal, discount_total, shipping_total, tax_total, total })
}

/// The tax of a line of `amount` less `discount`, of `class`, under `rules`.
pub fn line_tax(rules: &TaxRules, amount: i64, discount: i64, class: &TaxClass) -> Result<Taxed> {
    if discount < 0 || discount > amount {
        return Err(DomainError::validation("discount", "must be within 0 and the line's amount"));
    }
    Ok(rules.tax(amount - discount, class))
}

/// The shipping of a seller part priced at `amount` (what the shopper pays before tax is added, or gross where
/// prices include tax), taxed under `rules` when the region taxes shipping.
pub fn shipping_line(
    rules: &TaxRules,
    seller_id: &str,
    method_id: ShippingMethodId,
    name: &str,
    amount: Money,
    tax_class: &TaxClass,
    days: (u32, u32),
) -> ShippingLine {
    let taxed = if rules.shipping_taxable {
        rules.tax(amount.amount, tax_class)
    } else {
        Taxed { net: amount.amount, tax: 0, gross: amount.amount, components: Vec::new() }
    };
    ShippingLine {
        seller_id: seller_id.to_owned(),
        method_id,
        name: name.to_owned(),
        amount,
        tax: Money::new(taxed.tax, amount.currency),
        tax_class: tax_class.clone(),
        min_days: days.0,
        max_days: days.1,
        taxes: taxed.components,
        discounts: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tax::{TaxRate, TaxRegion, TaxRegionInput};
    use chrono::Utc;
    use proptest::prelude::*;

    fn rules(code: &str, inclusive: bool, shipping_taxable: bool, rates: &[(&str, u32)]) -> TaxRules {
        let regions = vec![TaxRegion::put(
            code.parse().unwrap(),
            TaxRegionInput {
                prices_include_tax: inclusive,
                shipping_taxable,
                rates: rates
                    .iter()
                    .map(|(c, r)| TaxRate { tax_class: c.parse().unwrap(), rate_ppm: *r, name: (*c).into() })
                    .collect(),
                combinable: false,
            },
            None,
            Utc::now(),
        )
        .unwrap()];
        TaxRules::for_address(&regions, &code[..2], None)
    }

    fn class(name: &str) -> TaxClass {
        name.parse().unwrap()
    }

    proptest! {
        /// Random carts: 1-50 lines, prices up to 10^8 minor units, quantities 1-10, rates 0-30 %.
        #[test]
        fn inclusive_totals_are_the_sticker_prices_plus_shipping(
            lines in proptest::collection::vec((1i64..=100_000_000, 1i64..=10, 0u32..=300_000), 1..=50),
            shipping in 0i64..=100_000,
            currency in proptest::sample::select(vec!["JPY", "USD", "KWD"]),
        ) {
            // Amounts are minor units whatever the exponent (0, 2 or 3): the arithmetic must not care.
            let currency: Currency = currency.parse().unwrap();
            let amounts: Vec<LineAmounts> = lines.iter().map(|(price, qty, rate)| {
                let r = rules("DE", true, true, &[("standard", *rate)]);
                let taxed = line_tax(&r, price * qty, 0, &class("standard")).unwrap();
                prop_assert!(taxed.tax >= 0 && taxed.net >= 0);
                Ok(LineAmounts { amount: price * qty, discount: 0, tax: taxed.tax })
            }).collect::<std::result::Result<_, _>>()?;
            let r = rules("DE", true, true, &[("standard", 190_000)]);
            let ship = shipping_line(&r, "s", ShippingMethodId::generate(), "Std", Money::new(shipping, currency), &class("standard"), (1, 2));
            let t = totals(currency, true, &amounts, &[&ship]).unwrap();
            let stickers: i64 = lines.iter().map(|(p, q, _)| p * q).sum();
            prop_assert_eq!(t.total.amount, stickers + shipping);
            prop_assert!(t.tax_total.amount <= t.total.amount);
        }

        #[test]
        fn exclusive_totals_add_the_taxes_and_do_not_depend_on_line_order(
            lines in proptest::collection::vec((1i64..=100_000_000, 1i64..=10, 0i64..=100), 1..=50),
            shipping in 0i64..=100_000,
            seed in any::<u64>(),
        ) {
            let r = rules("US", false, true, &[("standard", 72_500)]);
            let amounts = |lines: &[(i64, i64, i64)]| -> Vec<LineAmounts> {
                lines.iter().map(|(price, qty, off)| {
                    let amount = price * qty;
                    let discount = amount * off / 100;
                    let taxed = line_tax(&r, amount, discount, &class("standard")).unwrap();
                    LineAmounts { amount, discount, tax: taxed.tax }
                }).collect()
            };
            let ship = shipping_line(&r, "s", ShippingMethodId::generate(), "Std", Money::new(shipping, Currency::USD), &class("standard"), (1, 2));
            let t = totals(Currency::USD, false, &amounts(&lines), &[&ship]).unwrap();
            prop_assert_eq!(t.total.amount, t.subtotal.amount - t.discount_total.amount + t.shipping_total.amount + t.tax_total.amount);
            prop_assert!(amounts(&lines).iter().all(|l| l.tax >= 0 && l.amount - l.discount >= 0));
            let mut shuffled = lines.clone();
            let len = shuffled.len();
            shuffled.rotate_left((seed as usize) % len);
            shuffled.reverse();
            prop_assert_eq!(totals(Currency::USD, false, &amounts(&shuffled), &[&ship]).unwrap(), t);
        }
    }

    #[test]
    fn a_discount_is_taken_off_before_tax_and_never_past_the_line() {
        let r = rules("US", false, false, &[("standard", 100_000)]);
        assert_eq!(line_tax(&r, 1000, 200, &class("standard")).unwrap().tax, 80);
        assert!(line_tax(&r, 1000, 1001, &class("standard")).is_err());
        assert!(line_tax(&r, 1000, -1, &class("standard")).is_err());
    }

    #[test]
    fn shipping_is_taxed_only_where_the_region_says_so() {
        let taxed = rules("GB", true, true, &[("standard", 200_000)]);
        let untaxed = rules("US", false, false, &[("standard", 72_500)]);
        let line = |r: &TaxRules| {
            shipping_line(
                r,
                "s",
                ShippingMethodId::generate(),
                "Std",
                Money::new(600, Currency::USD),
                &class("standard"),
                (1, 2),
            )
        };
        assert_eq!(line(&taxed).tax.amount, 100); // 600 / 1.2 = 500 net
        assert_eq!(line(&untaxed).tax.amount, 0);
    }
}
