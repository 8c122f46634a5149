//! Shipping: the methods a seller offers, what they cost for one parcel, and the quote a cart gets.
//!
//! A method serves a list of countries and has one rate: a flat amount, weight tiers (by the parcel's total
//! weight; a parcel with an unweighed variant gets no weight-tier method), free at or over a subtotal
//! threshold, or calculated by a carrier (priced at quote time only; checkout never calls a carrier).
//!
//! Overlaps: every method of the seller whose countries include the address's country is offered; the shopper
//! picks one, and without a pick the cheapest table-rate method is taken (ties by method id). Two methods of
//! one seller with the same name cannot share a country (409 `shipping_method_overlap`): the shopper could not
//! tell them apart.

use crate::error::{DomainError, ErrorCode, Result};
use crate::ids::{QuoteId, ShippingMethodId};
use crate::money::{Currency, Money, MAX_PRICE};
use crate::tax::TaxClass;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Most countries one method serves, and most weight tiers.
pub const MAX_COUNTRIES: usize = 250;
pub const MAX_TIERS: usize = 20;
/// Most methods one seller may have.
pub const MAX_METHODS: usize = 50;
/// The longest delivery estimate, in days.
pub const MAX_DAYS: u32 = 365;
/// How long a quote may be checked out with.
pub const QUOTE_TTL_SECONDS: i64 = 30 * 60;

/// The carriers a calculated rate can come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Carrier {
    /// Deterministic rates computed locally (development, tests, demos).
    Sandbox,
    /// EasyPost's rate API.
    Easypost,
}

impl Carrier {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sandbox => "sandbox",
            Self::Easypost => "easypost",
        }
    }
}

/// One weight tier: parcels up to `up_to_grams` cost `amount`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightTier {
    pub up_to_grams: u32,
    pub amount: Money,
}

/// How a method is priced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ShippingRate {
    Flat { amount: Money },
    WeightTiers { tiers: Vec<WeightTier> },
    FreeOver { amount: Money, threshold: Money },
    Carrier { carrier: Carrier, service: String },
}

impl ShippingRate {
    /// The currency of a table rate (`None` for a carrier's).
    pub fn currency(&self) -> Option<Currency> {
        match self {
            Self::Flat { amount } | Self::FreeOver { amount, .. } => Some(amount.currency),
            Self::WeightTiers { tiers } => tiers.first().map(|t| t.amount.currency),
            Self::Carrier { .. } => None,
        }
    }

    fn validate(&self) -> Result<()> {
        let amount_ok = |field: &str, m: &Money| -> Result<()> {
            if !(0..=MAX_PRICE).contains(&m.amount) {
                return Err(DomainError::validation(field, format!("must be within 0..={MAX_PRICE} minor units")));
            }
            Ok(())
        };
        match self {
            Self::Flat { amount } => amount_ok("rate.amount", amount),
            Self::FreeOver { amount, threshold } => {
                amount_ok("rate.amount", amount)?;
                amount_ok("rate.threshold", threshold)?;
                if amount.currency != threshold.currency {
                    return Err(DomainError::validation("rate.threshold", "must be in the amount's currency"));
                }
                Ok(())
            }
            Self::WeightTiers { tiers } => {
                if tiers.is_empty() || tiers.len() > MAX_TIERS {
                    return Err(DomainError::validation("rate.tiers", format!("must hold 1 to {MAX_TIERS} tiers")));
                }
                for (i, tier) in tiers.iter().enumerate() {
                    amount_ok(&format!("rate.tiers[{i}].amount"), &tier.amount)?;
                    if tier.amount.currency != tiers[0].amount.currency {
                        return Err(DomainError::validation(
                            format!("rate.tiers[{i}].amount"),
                            "one currency per method",
                        ));
                    }
                    if tier.up_to_grams == 0 || (i > 0 && tier.up_to_grams <= tiers[i - 1].up_to_grams) {
                        return Err(DomainError::validation(
                            format!("rate.tiers[{i}].up_to_grams"),
                            "must be positive and rise from tier to tier",
                        ));
                    }
                }
                Ok(())
            }
            Self::Carrier { service, .. } => {
                let ok = (1..=50).contains(&service.len())
                    && service.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b' '));
                if ok {
                    Ok(())
                } else {
                    Err(DomainError::validation("rate.service", "must be 1 to 50 letters, digits, '_', '-' or ' '"))
                }
            }
        }
    }
}

/// What one seller's part of a cart weighs and costs: what a rate is computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parcel {
    pub subtotal: Money,
    /// The total weight; `None` when a variant of the part has no weight.
    pub weight_grams: Option<u64>,
}

/// A method's price for a parcel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RatePrice {
    /// From the seller's table.
    Table(Money),
    /// Ask this carrier (at quote time only).
    Carrier { carrier: Carrier, service: String },
}

/// A seller's shipping method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingMethod {
    pub method_id: ShippingMethodId,
    pub seller_id: String,
    pub name: String,
    pub countries: BTreeSet<String>,
    pub rate: ShippingRate,
    pub min_days: u32,
    pub max_days: u32,
    pub tax_class: TaxClass,
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The body of `POST /v1/seller/shipping/methods`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShippingMethodInput {
    pub name: String,
    pub countries: Vec<String>,
    pub rate: ShippingRate,
    pub min_days: u32,
    pub max_days: u32,
    #[serde(default)]
    pub tax_class: Option<TaxClass>,
}

/// The body of `PATCH /v1/seller/shipping/methods/{method_id}`: what is given changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShippingMethodPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub countries: Option<Vec<String>>,
    #[serde(default)]
    pub rate: Option<ShippingRate>,
    #[serde(default)]
    pub min_days: Option<u32>,
    #[serde(default)]
    pub max_days: Option<u32>,
    #[serde(default)]
    pub tax_class: Option<TaxClass>,
}

fn countries(raw: Vec<String>) -> Result<BTreeSet<String>> {
    if raw.is_empty() || raw.len() > MAX_COUNTRIES {
        return Err(DomainError::validation("countries", format!("must list 1 to {MAX_COUNTRIES} countries")));
    }
    raw.into_iter()
        .enumerate()
        .map(|(i, c)| {
            if c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()) {
                Ok(c)
            } else {
                Err(DomainError::validation(format!("countries[{i}]"), "must be an ISO 3166-1 alpha-2 code such as US"))
            }
        })
        .collect()
}

impl ShippingMethod {
    /// A new method of `seller_id`, checked against the seller's `existing` methods.
    pub fn create(
        method_id: ShippingMethodId,
        seller_id: &str,
        input: ShippingMethodInput,
        existing: &[ShippingMethod],
        now: DateTime<Utc>,
    ) -> Result<Self> {
        if existing.len() >= MAX_METHODS {
            return Err(DomainError::validation("name", format!("a seller has at most {MAX_METHODS} methods")));
        }
        let method = Self {
            method_id,
            seller_id: seller_id.to_owned(),
            name: input.name.trim().to_owned(),
            countries: countries(input.countries)?,
            rate: input.rate,
            min_days: input.min_days,
            max_days: input.max_days,
            tax_class: input.tax_class.unwrap_or_default(),
            version: 1,
            created_at: now,
            updated_at: now,
        };
        method.validate(existing)?;
        Ok(method)
    }

    /// The method with `patch` applied, checked against the seller's `existing` methods; its version rises.
    pub fn patched(&self, patch: ShippingMethodPatch, existing: &[ShippingMethod], now: DateTime<Utc>) -> Result<Self> {
        if patch == ShippingMethodPatch::default() {
            return Err(DomainError::validation("body", "names nothing to change"));
        }
        let mut next = self.clone();
        if let Some(name) = patch.name {
            next.name = name.trim().to_owned();
        }
        if let Some(list) = patch.countries {
            next.countries = countries(list)?;
        }
        if let Some(rate) = patch.rate {
            next.rate = rate;
        }
        next.min_days = patch.min_days.unwrap_or(next.min_days);
        next.max_days = patch.max_days.unwrap_or(next.max_days);
        next.tax_class = patch.tax_class.unwrap_or(next.tax_class);
        next.version += 1;
        next.updated_at = now;
        next.validate(existing)?;
        Ok(next)
    }

    fn validate(&self, existing: &[ShippingMethod]) -> Result<()> {
        if self.name.is_empty() || self.name.chars().count() > 100 || self.name.chars().any(char::is_control) {
            return Err(DomainError::validation("name", "must be 1 to 100 characters"));
        }
        if self.min_days > self.max_days || self.max_days > MAX_DAYS {
            return Err(DomainError::validation("max_days", format!("must be within min_days..={MAX_DAYS}")));
        }
        self.rate.validate()?;
        let clash = existing.iter().find(|other| {
            other.method_id != self.method_id
                && other.name.to_lowercase() == self.name.to_lowercase()
                && !other.countries.is_disjoint(&self.countries)
        });
        if let Some(other) = clash {
            return Err(DomainError::conflict(
                ErrorCode::ShippingMethodOverlap,
                format!("method {} is also named {:?} and serves some of these countries", other.method_id, self.name),
            ));
        }
        Ok(())
    }

    pub fn serves(&self, country: &str) -> bool {
        self.countries.contains(country)
    }

    /// The method's price for `parcel`, or `None` when it cannot carry it: another currency, an unweighed or
    /// too heavy parcel for weight tiers.
    pub fn price(&self, parcel: &Parcel) -> Option<RatePrice> {
        let currency = parcel.subtotal.currency;
        if self.rate.currency().is_some_and(|c| c != currency) {
            return None;
        }
        match &self.rate {
            ShippingRate::Flat { amount } => Some(RatePrice::Table(*amount)),
            ShippingRate::FreeOver { amount, threshold } => {
                Some(RatePrice::Table(if parcel.subtotal.amount >= threshold.amount {
                    Money::zero(currency)
                } else {
                    *amount
                }))
            }
            ShippingRate::WeightTiers { tiers } => {
                let weight = parcel.weight_grams?;
                tiers.iter().find(|t| u64::from(t.up_to_grams) >= weight).map(|t| RatePrice::Table(t.amount))
            }
            ShippingRate::Carrier { carrier, service } => {
                Some(RatePrice::Carrier { carrier: *carrier, service: service.clone() })
            }
        }
    }
}

/// One priced way to ship a seller's part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteOption {
    pub method_id: ShippingMethodId,
    pub name: String,
    /// What the shopper pays for shipping: the gross where prices include tax, the net where they do not.
    pub amount: Money,
    /// The tax on (or in) `amount`.
    pub tax: Money,
    pub min_days: u32,
    pub max_days: u32,
}

/// A seller's part of a quote: its options, cheapest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotePart {
    pub seller_id: String,
    pub options: Vec<QuoteOption>,
}

/// A cart's shipping quote for one address: valid until `expires_at` while nothing it was computed from
/// changes (its fingerprint).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub quote_id: QuoteId,
    pub cart_id: String,
    pub expires_at: DateTime<Utc>,
    pub subtotal: Money,
    pub parts: Vec<QuotePart>,
    /// What the quote was computed from (see `fingerprint`); stored, never shown (see `QuoteView`).
    pub fingerprint: String,
}

impl Quote {
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires_at
    }
}

/// The hex SHA-256 of everything a quote's prices depend on, in a canonical order: the cart's lines (SKU,
/// quantity, price, tax class, weight), the address, every method considered (id and version) and the tax
/// regions applied (code and version). A checkout whose fingerprint differs is `quote_stale`.
pub fn fingerprint(parts: &[String]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// The cheapest of `options` (ties by method id).
pub fn cheapest(options: &[QuoteOption]) -> Option<&QuoteOption> {
    options.iter().min_by(|a, b| a.amount.amount.cmp(&b.amount.amount).then_with(|| a.method_id.cmp(&b.method_id)))
}

/// 422 `not_shippable` naming the first seller whose part cannot ship to the address.
pub fn not_shippable(seller_id: &str, country: &str) -> DomainError {
    DomainError::refused(
        ErrorCode::NotShippable,
        "shipping_address.country",
        format!("seller {seller_id} does not ship these items to {country}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(amount: i64) -> Money {
        Money::new(amount, Currency::USD)
    }

    fn input(name: &str, countries: &[&str], rate: ShippingRate) -> ShippingMethodInput {
        ShippingMethodInput {
            name: name.into(),
            countries: countries.iter().map(|c| c.to_string()).collect(),
            rate,
            min_days: 2,
            max_days: 5,
            tax_class: None,
        }
    }

    fn create(i: ShippingMethodInput, existing: &[ShippingMethod]) -> Result<ShippingMethod> {
        ShippingMethod::create(ShippingMethodId::generate(), "seller-1", i, existing, Utc::now())
    }

    fn parcel(subtotal: i64, weight: Option<u64>) -> Parcel {
        Parcel { subtotal: usd(subtotal), weight_grams: weight }
    }

    #[test]
    fn rates_price_a_parcel() {
        let flat = create(input("Std", &["US"], ShippingRate::Flat { amount: usd(500) }), &[]).unwrap();
        assert_eq!(flat.price(&parcel(100, None)), Some(RatePrice::Table(usd(500))));
        let free = ShippingRate::FreeOver { amount: usd(700), threshold: usd(5000) };
        let free = create(input("Free", &["US"], free), &[]).unwrap();
        assert_eq!(free.price(&parcel(4999, None)), Some(RatePrice::Table(usd(700))));
        assert_eq!(free.price(&parcel(5000, None)), Some(RatePrice::Table(usd(0))));
        let tiers = ShippingRate::WeightTiers {
            tiers: vec![
                WeightTier { up_to_grams: 500, amount: usd(400) },
                WeightTier { up_to_grams: 2000, amount: usd(900) },
            ],
        };
        let tiers = create(input("Tiers", &["US"], tiers), &[]).unwrap();
        assert_eq!(tiers.price(&parcel(1, Some(500))), Some(RatePrice::Table(usd(400))));
        assert_eq!(tiers.price(&parcel(1, Some(501))), Some(RatePrice::Table(usd(900))));
        assert_eq!(tiers.price(&parcel(1, Some(2001))), None);
        assert_eq!(tiers.price(&parcel(1, None)), None);
        let eur = Parcel { subtotal: Money::new(1, Currency::EUR), weight_grams: Some(1) };
        assert_eq!(flat.price(&eur), None);
    }

    #[test]
    fn methods_refuse_bad_values() {
        let field = |r: Result<ShippingMethod>| match r.unwrap_err() {
            DomainError::Validation { field, .. } => field,
            other => panic!("{other:?}"),
        };
        let flat = ShippingRate::Flat { amount: usd(1) };
        assert_eq!(field(create(input("", &["US"], flat.clone()), &[])), "name");
        assert_eq!(field(create(input("A", &[], flat.clone()), &[])), "countries");
        assert_eq!(field(create(input("A", &["us"], flat.clone()), &[])), "countries[0]");
        assert_eq!(field(create(input("A", &["US"], ShippingRate::Flat { amount: usd(-1) }), &[])), "rate.amount");
        assert_eq!(
            field(create(input("A", &["US"], ShippingRate::Flat { amount: usd(MAX_PRICE + 1) }), &[])),
            "rate.amount"
        );
        let falling = ShippingRate::WeightTiers {
            tiers: vec![
                WeightTier { up_to_grams: 500, amount: usd(1) },
                WeightTier { up_to_grams: 500, amount: usd(2) },
            ],
        };
        assert_eq!(field(create(input("A", &["US"], falling), &[])), "rate.tiers[1].up_to_grams");
        let mut slow = input("A", &["US"], flat.clone());
        slow.min_days = 6;
        assert_eq!(field(create(slow, &[])), "max_days");
        let carrier = ShippingRate::Carrier { carrier: Carrier::Easypost, service: "Priority;DROP".into() };
        assert_eq!(field(create(input("A", &["US"], carrier), &[])), "rate.service");
    }

    #[test]
    fn a_seller_cannot_have_two_methods_of_one_name_in_one_country() {
        let flat = ShippingRate::Flat { amount: usd(1) };
        let first = create(input("Standard", &["US", "CA"], flat.clone()), &[]).unwrap();
        let clash = create(input("standard", &["CA"], flat.clone()), std::slice::from_ref(&first)).unwrap_err();
        assert_eq!(clash.code(), ErrorCode::ShippingMethodOverlap);
        assert!(create(input("Standard", &["DE"], flat.clone()), std::slice::from_ref(&first)).is_ok());
        assert!(create(input("Express", &["US"], flat), std::slice::from_ref(&first)).is_ok());
        // A method patched keeps clear of itself.
        let renamed = first.patched(
            ShippingMethodPatch { name: Some("Standard ".into()), ..Default::default() },
            std::slice::from_ref(&first),
            Utc::now(),
        );
        assert_eq!(renamed.unwrap().version, 2);
    }

    #[test]
    fn the_cheapest_option_wins_and_ties_go_to_the_lower_id() {
        let option = |id: &str, amount| QuoteOption {
            method_id: ShippingMethodId::parse(id).unwrap(),
            name: id.into(),
            amount: usd(amount),
            tax: usd(0),
            min_days: 1,
            max_days: 2,
        };
        let options = vec![option("shm_b", 500), option("shm_a", 500), option("shm_c", 900)];
        assert_eq!(cheapest(&options).unwrap().method_id.as_str(), "shm_a");
    }
}
