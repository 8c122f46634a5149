//! Taxes: regions an admin configures, the rules they give one address, and the arithmetic, in integer minor
//! units and rates in parts per million (10.75 % = 107500; 8.875 % is exact).
//!
//! - Exclusive prices: a line's tax is `round(net × rate)`, per line, summed over lines.
//! - Inclusive prices: `net = round(gross / (1 + rate))` and `tax = gross − net`, so net + tax is the sticker
//!   price exactly (the net is rounded, never the tax).
//! - A combined rate (a subdivision marked combinable adds its country's rates) is computed as one rate; its
//!   components' exact shares are then allocated by largest remainder, so they sum to the combined amount.
//! - Rounding is half up (amounts are never negative here).

use crate::error::{DomainError, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// One in parts per million.
pub const PPM: u32 = 1_000_000;
/// Most rates one region may list.
pub const MAX_RATES: usize = 20;

/// A tax region: an ISO 3166-1 alpha-2 country (`DE`) or a country and an ISO 3166-2 subdivision (`US-CA`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RegionCode(String);

impl RegionCode {
    /// The region of a country and, if given, its subdivision (`US`, `CA` → `US-CA`).
    pub fn of(country: &str, subdivision: Option<&str>) -> Result<Self> {
        match subdivision {
            Some(sub) => format!("{country}-{sub}").parse(),
            None => country.parse(),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The country part.
    pub fn country(&self) -> &str {
        &self.0[..2]
    }

    /// The country of a subdivision; `None` for a country.
    pub fn parent(&self) -> Option<RegionCode> {
        (self.0.len() > 2).then(|| RegionCode(self.0[..2].to_owned()))
    }

    pub fn is_subdivision(&self) -> bool {
        self.0.len() > 2
    }
}

impl std::str::FromStr for RegionCode {
    type Err = DomainError;
    fn from_str(value: &str) -> Result<Self> {
        let bytes = value.as_bytes();
        let country_ok = bytes.len() >= 2 && bytes[..2].iter().all(u8::is_ascii_uppercase);
        let rest_ok = match bytes.get(2) {
            None => true,
            Some(b'-') => {
                let sub = &bytes[3..];
                (1..=3).contains(&sub.len()) && sub.iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            }
            Some(_) => false,
        };
        if country_ok && rest_ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(DomainError::invalid_parameter(
                "region",
                "must be a country (DE) or a country and subdivision (US-CA), upper case",
            ))
        }
    }
}

impl TryFrom<String> for RegionCode {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self> {
        value.parse()
    }
}

impl From<RegionCode> for String {
    fn from(value: RegionCode) -> Self {
        value.0
    }
}

impl fmt::Display for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A product's or a shipping method's tax class: lower-case letters, digits and `_`, 1 to 32 of them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TaxClass(String);

impl TaxClass {
    pub const STANDARD: &'static str = "standard";

    pub fn standard() -> Self {
        Self(Self::STANDARD.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_standard(&self) -> bool {
        self.0 == Self::STANDARD
    }
}

impl Default for TaxClass {
    fn default() -> Self {
        Self::standard()
    }
}

impl std::str::FromStr for TaxClass {
    type Err = DomainError;
    fn from_str(value: &str) -> Result<Self> {
        let ok = (1..=32).contains(&value.len())
            && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(DomainError::validation("tax_class", "must be 1 to 32 of a-z, 0-9 and _"))
        }
    }
}

impl TryFrom<String> for TaxClass {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self> {
        value.parse()
    }
}

impl From<TaxClass> for String {
    fn from(value: TaxClass) -> Self {
        value.0
    }
}

impl fmt::Display for TaxClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One rate of a region: a class, its rate in parts per million, and the name on the receipt. A region may
/// list several rates of one class (a state's and a district's): they combine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxRate {
    pub tax_class: TaxClass,
    pub rate_ppm: u32,
    pub name: String,
}

/// The body of `PUT /v1/admin/tax/regions/{region}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxRegionInput {
    pub prices_include_tax: bool,
    pub shipping_taxable: bool,
    pub rates: Vec<TaxRate>,
    #[serde(default)]
    pub combinable: bool,
}

/// A configured region. `version` counts its writes; quotes are fingerprinted with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxRegion {
    pub region: RegionCode,
    pub prices_include_tax: bool,
    pub shipping_taxable: bool,
    pub rates: Vec<TaxRate>,
    pub combinable: bool,
    pub version: u64,
    pub updated_at: DateTime<Utc>,
}

impl TaxRegion {
    /// The region as `input` sets it, written over `previous` (its version then follows the previous one).
    pub fn put(
        region: RegionCode,
        input: TaxRegionInput,
        previous: Option<&TaxRegion>,
        now: DateTime<Utc>,
    ) -> Result<Self> {
        if input.rates.is_empty() {
            return Err(DomainError::validation("rates", "must list at least one rate"));
        }
        if input.rates.len() > MAX_RATES {
            return Err(DomainError::validation("rates", format!("at most {MAX_RATES} rates")));
        }
        if input.combinable && !region.is_subdivision() {
            return Err(DomainError::validation("combinable", "only a subdivision's rates combine with its country's"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, rate) in input.rates.iter().enumerate() {
            if rate.rate_ppm > PPM {
                return Err(DomainError::validation(format!("rates[{i}].rate_ppm"), "must be at most 1000000 (100 %)"));
            }
            let name = rate.name.trim();
            if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
                return Err(DomainError::validation(format!("rates[{i}].name"), "must be 1 to 100 characters"));
            }
            if !seen.insert((rate.tax_class.clone(), name.to_lowercase())) {
                return Err(DomainError::validation(format!("rates[{i}].name"), "names this class's rate twice"));
            }
        }
        let rates = input.rates.into_iter().map(|r| TaxRate { name: r.name.trim().to_owned(), ..r }).collect();
        Ok(Self {
            region,
            prices_include_tax: input.prices_include_tax,
            shipping_taxable: input.shipping_taxable,
            rates,
            combinable: input.combinable,
            version: previous.map_or(1, |p| p.version + 1),
            updated_at: now,
        })
    }

    /// The rates of `class` (several combine: a state's and a district's), or of `standard` when the region
    /// lists none for the class.
    fn rates_or_standard(&self, class: &TaxClass) -> Vec<&TaxRate> {
        let of = |c: &TaxClass| self.rates.iter().filter(|r| &r.tax_class == c).collect::<Vec<_>>();
        let own = of(class);
        if own.is_empty() {
            of(&TaxClass::standard())
        } else {
            own
        }
    }
}

/// One part of a combined rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateComponent {
    pub name: String,
    pub rate_ppm: u32,
}

/// The tax rules one address gets: from its subdivision's region if configured (plus its country's rates when
/// that region is combinable), else from its country's, else none (no tax).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaxRules {
    /// The most specific region that applies, if any.
    pub region: Option<RegionCode>,
    pub prices_include_tax: bool,
    pub shipping_taxable: bool,
    regions: Vec<TaxRegion>,
}

impl TaxRules {
    /// The rules for an address in `country` (and `subdivision`), from every configured region.
    pub fn for_address<'a>(
        regions: impl IntoIterator<Item = &'a TaxRegion>,
        country: &str,
        subdivision: Option<&str>,
    ) -> Self {
        let by_code: BTreeMap<&str, &TaxRegion> = regions.into_iter().map(|r| (r.region.as_str(), r)).collect();
        let sub = subdivision.and_then(|s| RegionCode::of(country, Some(s)).ok());
        let sub_region = sub.as_ref().and_then(|code| by_code.get(code.as_str()).copied());
        let country_region = by_code.get(country).copied();
        let applied: Vec<TaxRegion> = match (sub_region, country_region) {
            (Some(s), Some(c)) if s.combinable => vec![s.clone(), c.clone()],
            (Some(s), _) => vec![s.clone()],
            (None, Some(c)) => vec![c.clone()],
            (None, None) => Vec::new(),
        };
        match applied.first() {
            Some(first) => Self {
                region: Some(first.region.clone()),
                prices_include_tax: first.prices_include_tax,
                shipping_taxable: first.shipping_taxable,
                regions: applied,
            },
            None => Self::default(),
        }
    }

    /// The components of `class`'s rate: the subdivision's first, then its country's when combined.
    pub fn components(&self, class: &TaxClass) -> Vec<RateComponent> {
        self.regions
            .iter()
            .flat_map(|r| r.rates_or_standard(class))
            .map(|r| RateComponent { name: r.name.clone(), rate_ppm: r.rate_ppm })
            .collect()
    }

    /// The regions applied and their versions (`US-CA@3,US@1`): what a quote's fingerprint covers.
    pub fn fingerprint(&self) -> String {
        self.regions.iter().map(|r| format!("{}@{}", r.region, r.version)).collect::<Vec<_>>().join(",")
    }

    /// The tax of one amount of `class` under these rules (exclusive or inclusive per the region).
    pub fn tax(&self, amount: i64, class: &TaxClass) -> Taxed {
        tax_amount(amount, self.prices_include_tax, &self.components(class))
    }
}

/// An amount's tax: `net + tax` is what the buyer pays for it (`gross`), and the components sum to `tax`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Taxed {
    pub net: i64,
    pub tax: i64,
    pub gross: i64,
    pub components: Vec<TaxComponent>,
}

/// A component's share of a tax.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxComponent {
    pub name: String,
    pub rate_ppm: u32,
    pub amount: i64,
}

/// `numerator / denominator` rounded half up, for non-negative numerators and positive denominators.
fn div_half_up(numerator: i128, denominator: i128) -> i128 {
    (2 * numerator + denominator) / (2 * denominator)
}

/// The tax of `amount` (minor units, not negative) at the combined rate of `components`: added on top
/// (`inclusive` false) or taken out of it (`inclusive` true).
pub fn tax_amount(amount: i64, inclusive: bool, components: &[RateComponent]) -> Taxed {
    let amount = amount.max(0);
    let combined: i128 = components.iter().map(|c| i128::from(c.rate_ppm)).sum();
    let ppm = i128::from(PPM);
    let a = i128::from(amount);
    let (net, tax, share_denominator) = if inclusive {
        let net = div_half_up(a * ppm, ppm + combined);
        (net, a - net, ppm + combined)
    } else {
        (a, div_half_up(a * combined, ppm), ppm)
    };
    // Each component's exact share is amount × rate / denominator; the floors are allocated, then the rest
    // of the combined tax goes one unit each to the largest remainders (ties to the earlier component).
    let shares: Vec<(i128, i128)> = components
        .iter()
        .map(|c| (a * i128::from(c.rate_ppm)).div_euclid(share_denominator))
        .zip(components.iter().map(|c| (a * i128::from(c.rate_ppm)).rem_euclid(share_denominator)))
        .collect();
    let amounts = largest_remainder(tax, &shares);
    let components = components
        .iter()
        .zip(amounts)
        .map(|(c, amount)| TaxComponent { name: c.name.clone(), rate_ppm: c.rate_ppm, amount: to_i64(amount) })
        .collect();
    Taxed { net: to_i64(net), tax: to_i64(tax), gross: to_i64(net + tax), components }
}

/// `(floor, remainder)` shares topped up to `total`: one unit each to the largest remainders, ties to the
/// earlier share. The caller's `total` lies between the sum of the floors and the sum of the floors plus the
/// number of shares with a remainder (a rounded sum of the exact shares always does), so every share gets at
/// most one unit.
pub fn largest_remainder(total: i128, shares: &[(i128, i128)]) -> Vec<i128> {
    let mut amounts: Vec<i128> = shares.iter().map(|(floor, _)| *floor).collect();
    let rest = usize::try_from(total - amounts.iter().sum::<i128>()).unwrap_or(0);
    debug_assert!(rest <= shares.iter().filter(|(_, r)| *r > 0).count(), "{total} cannot be reached from {shares:?}");
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&x, &y| shares[y].1.cmp(&shares[x].1).then(x.cmp(&y)));
    for &i in order.iter().take(rest) {
        amounts[i] += 1;
    }
    amounts
}

/// Amounts here are bounded by prices and quantities far inside `i64`.
fn to_i64(value: i128) -> i64 {
    i64::try_from(value).unwrap_or(if value < 0 { i64::MIN } else { i64::MAX })
}

/// `part` of `whole` as a share of `amount`, cumulative: the share of the first `done + now` units minus the
/// share of the first `done`, each rounded half up. Any sequence of calls over `whole` units in total adds up to
/// `amount` exactly.
pub fn cumulative_share(amount: i64, whole: u32, done: u32, now: u32) -> i64 {
    if whole == 0 {
        return 0;
    }
    let upto = |k: u32| div_half_up(i128::from(amount.max(0)) * i128::from(k.min(whole)), i128::from(whole));
    to_i64(upto(done.saturating_add(now)) - upto(done))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn comp(name: &str, rate_ppm: u32) -> RateComponent {
        RateComponent { name: name.into(), rate_ppm }
    }

    fn region(code: &str, inclusive: bool, combinable: bool, rates: &[(&str, u32)]) -> TaxRegion {
        let input = TaxRegionInput {
            prices_include_tax: inclusive,
            shipping_taxable: true,
            rates: rates
                .iter()
                .map(|(c, r)| TaxRate { tax_class: c.parse().unwrap(), rate_ppm: *r, name: format!("{code} {c}") })
                .collect(),
            combinable,
        };
        TaxRegion::put(code.parse().unwrap(), input, None, Utc::now()).unwrap()
    }

    #[test]
    fn region_codes_are_a_country_or_a_country_and_subdivision() {
        for good in ["DE", "US-CA", "GB-ENG", "FR-75"] {
            assert!(good.parse::<RegionCode>().is_ok(), "{good}");
        }
        for bad in ["de", "D", "DEU", "US-", "US-ABCD", "US_CA", "US-ca", "", "ÜS"] {
            assert!(bad.parse::<RegionCode>().is_err(), "{bad}");
        }
        let ca: RegionCode = "US-CA".parse().unwrap();
        assert_eq!(ca.parent().unwrap().as_str(), "US");
        assert_eq!(ca.country(), "US");
    }

    #[test]
    fn a_region_refuses_rates_over_100_percent_twice_listed_classes_and_a_combinable_country() {
        let put = |code: &str, rates: Vec<TaxRate>, combinable| {
            let input = TaxRegionInput { prices_include_tax: false, shipping_taxable: false, rates, combinable };
            TaxRegion::put(code.parse().unwrap(), input, None, Utc::now())
        };
        let rate = |c: &str, r| TaxRate { tax_class: c.parse().unwrap(), rate_ppm: r, name: "VAT".into() };
        let field = |e: DomainError| match e {
            DomainError::Validation { field, .. } => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(put("DE", vec![rate("standard", PPM + 1)], false).unwrap_err()), "rates[0].rate_ppm");
        assert_eq!(
            field(put("DE", vec![rate("standard", 1), rate("standard", 2)], false).unwrap_err()),
            "rates[1].name"
        );
        let district = TaxRate { tax_class: TaxClass::standard(), rate_ppm: 22_500, name: "LA district".into() };
        assert!(put("US-CA", vec![rate("standard", 72_500), district], true).is_ok());
        assert_eq!(field(put("DE", vec![rate("standard", 1)], true).unwrap_err()), "combinable");
        assert_eq!(field(put("DE", vec![], false).unwrap_err()), "rates");
        assert!(put("US-CA", vec![rate("standard", PPM)], true).is_ok());
    }

    #[test]
    fn the_most_specific_region_applies_and_a_combinable_one_adds_its_country() {
        let us = region("US", false, false, &[("standard", 0)]);
        let ca = region("US-CA", false, true, &[("standard", 72_500)]);
        let ny = region("US-NY", false, false, &[("standard", 40_000)]);
        let all = [us.clone(), ca, ny];
        let rates = |sub: Option<&str>| -> Vec<u32> {
            TaxRules::for_address(&all, "US", sub)
                .components(&TaxClass::standard())
                .iter()
                .map(|c| c.rate_ppm)
                .collect()
        };
        assert_eq!(rates(Some("CA")), vec![72_500, 0]);
        assert_eq!(rates(Some("NY")), vec![40_000]);
        assert_eq!(rates(Some("TX")), vec![0]);
        assert_eq!(rates(None), vec![0]);
        assert!(TaxRules::for_address(&all, "FR", None).components(&TaxClass::standard()).is_empty());
        assert_eq!(TaxRules::for_address(&all, "US", Some("CA")).fingerprint(), "US-CA@1,US@1");
    }

    #[test]
    fn a_class_the_region_does_not_list_is_taxed_at_its_standard_rate() {
        let de = region("DE", true, false, &[("standard", 190_000), ("reduced", 70_000)]);
        let rules = TaxRules::for_address([&de], "DE", None);
        assert_eq!(rules.components(&"reduced".parse().unwrap())[0].rate_ppm, 70_000);
        assert_eq!(rules.components(&"luxury".parse().unwrap())[0].rate_ppm, 190_000);
    }

    /// Golden values, computed by hand.
    #[test]
    fn inclusive_tax_takes_the_rounded_net_out_of_the_sticker_price() {
        // 19.99 EUR at 19 %: 1999 / 1.19 = 1679.83 -> net 1680, tax 319.
        let t = tax_amount(1999, true, &[comp("MwSt", 190_000)]);
        assert_eq!((t.net, t.tax, t.gross), (1680, 319, 1999));
        // 1000 JPY at 10 %: 1000 / 1.1 = 909.09 -> 909, tax 91.
        let t = tax_amount(1000, true, &[comp("JCT", 100_000)]);
        assert_eq!((t.net, t.tax, t.gross), (909, 91, 1000));
    }

    #[test]
    fn exclusive_tax_rounds_half_up_per_amount() {
        // 10.00 USD at 7.25 %: 72.5 -> 73.
        assert_eq!(tax_amount(1000, false, &[comp("CA", 72_500)]).tax, 73);
        // saleor#6720: 112 units of 1 cent at 0.9 % taxed per line: 112 x 0.009 = 1.008 -> 1, not 112 x 0.
        assert_eq!(tax_amount(112, false, &[comp("x", 9_000)]).tax, 1);
        // 8.875 % is exact: 10000 -> 887.5 -> 888.
        assert_eq!(tax_amount(10_000, false, &[comp("NYC", 88_750)]).tax, 888);
    }

    #[test]
    fn combined_components_sum_to_the_combined_tax() {
        // 1.00 USD at 7.25 % + 3.5 %: combined 10.75 -> 11; components 7.25 and 3.5: floors 7 + 3, the
        // remainders .25 and .5: the unit goes to the local rate.
        let t = tax_amount(100, false, &[comp("CA", 72_500), comp("local", 35_000)]);
        assert_eq!(t.tax, 11);
        assert_eq!(t.components.iter().map(|c| c.amount).collect::<Vec<_>>(), vec![7, 4]);
    }

    fn components() -> impl Strategy<Value = Vec<RateComponent>> {
        proptest::collection::vec((0u32..=300_000).prop_map(|r| comp("c", r)), 0..4)
    }

    proptest! {
        #[test]
        fn inclusive_net_and_tax_are_the_sticker_price(amount in 0i64..=10_000_000_000 * 10, rates in components()) {
            let t = tax_amount(amount, true, &rates);
            prop_assert_eq!(t.net + t.tax, amount);
            prop_assert!(t.tax >= 0 && t.net >= 0);
            prop_assert_eq!(t.components.iter().map(|c| c.amount).sum::<i64>(), t.tax);
            prop_assert!(t.components.iter().all(|c| c.amount >= 0));
        }

        #[test]
        fn exclusive_tax_is_the_rounded_product(amount in 0i64..=10_000_000_000 * 10, rates in components()) {
            let t = tax_amount(amount, false, &rates);
            let combined: i128 = rates.iter().map(|c| i128::from(c.rate_ppm)).sum();
            let exact = i128::from(amount) * combined;
            // |tax - exact| <= 1/2
            prop_assert!((i128::from(t.tax) * 1_000_000 - exact).abs() * 2 <= 1_000_000);
            prop_assert_eq!(t.net, amount);
            prop_assert_eq!(t.components.iter().map(|c| c.amount).sum::<i64>(), t.tax);
            prop_assert!(t.components.iter().all(|c| c.amount >= 0));
        }

        #[test]
        fn cumulative_shares_add_up_exactly(amount in 0i64..=1_000_000_000_000, whole in 1u32..=10, cuts in proptest::collection::vec(0u32..=10, 0..10)) {
            let mut done = 0;
            let mut sum = 0;
            for cut in cuts {
                let now = cut.min(whole - done);
                let share = cumulative_share(amount, whole, done, now);
                prop_assert!(share >= 0);
                sum += share;
                done += now;
            }
            sum += cumulative_share(amount, whole, done, whole - done);
            prop_assert_eq!(sum, amount);
        }
    }
}
