//! The sandbox carrier: deterministic rates computed locally, without I/O, for development, demos and tests.
//!
//! A rate, in major units of the request's currency, is
//!
//! ```text
//! base(service) + step(service) × ⌈weight_grams / 500⌉ + (international ? 10 : 0)
//! ```
//!
//! | service (any case) | base | step per started 500 g |
//! |--------------------|------|------------------------|
//! | `ground`           | 5    | 1                      |
//! | `priority`         | 9    | 2                      |
//! | `express`          | 15   | 3                      |
//!
//! and is answered in minor units: major units × 10^exponent (ISO 4217), so 8 USD is 800 cents, 8 JPY is 8 yen
//! and 8 KWD is 8000 fils. A parcel is international when its origin's country differs from the destination's,
//! or, with no origin known, when the destination is not `US`. A parcel of 500 g is one step, 501 g two.
//!
//! No rate (`Ok(None)`): an unknown service, or a parcel over `MAX_WEIGHT_GRAMS`.
//!
//! Failure hooks, decided by the destination's postal code alone so end-to-end tests can inject carrier
//! failures: `00000` is a `Transient` error, `99999` no rate. No real address uses either.

use commerce_app::ports::{CarrierRateRequest, ShippingRateProvider};
use commerce_domain::error::{DomainError, Result};
use commerce_domain::money::Money;

/// The heaviest parcel the sandbox carries (30 kg).
pub const MAX_WEIGHT_GRAMS: u64 = 30_000;
/// The weight one step of a rate covers.
pub const STEP_GRAMS: u64 = 500;
/// What an international parcel costs more, in major units.
pub const INTERNATIONAL_SURCHARGE: u64 = 10;
/// The destination postal code that makes the sandbox fail with a `Transient` error.
pub const FAILING_POSTAL_CODE: &str = "00000";
/// The destination postal code the sandbox has no rate for.
pub const UNSERVED_POSTAL_CODE: &str = "99999";
/// The country a parcel without a known origin ships from.
pub const DEFAULT_ORIGIN_COUNTRY: &str = "US";

/// The sandbox carrier (see the module's formula).
#[derive(Debug, Clone, Copy, Default)]
pub struct SandboxCarrier;

impl SandboxCarrier {
    pub fn new() -> Self {
        Self
    }

    /// The rate of `request`, by the module's formula and hooks.
    pub fn quote(&self, request: &CarrierRateRequest) -> Result<Option<Money>> {
        match request.destination.postal_code.trim() {
            FAILING_POSTAL_CODE => {
                return Err(DomainError::Transient(format!(
                    "sandbox carrier failure (destination postal code {FAILING_POSTAL_CODE})"
                )))
            }
            UNSERVED_POSTAL_CODE => return Ok(None),
            _ => {}
        }
        let Some((base, step)) = tariff(&request.service) else {
            return Ok(None);
        };
        if request.weight_grams > MAX_WEIGHT_GRAMS {
            return Ok(None);
        }
        let steps = request.weight_grams.div_ceil(STEP_GRAMS);
        let surcharge = if is_international(request) { INTERNATIONAL_SURCHARGE } else { 0 };
        // At most 15 + 3 × 60 + 10 = 205 major units: far inside i64 for every ISO 4217 exponent.
        let major = base + step * steps + surcharge;
        let minor = major
            .checked_mul(10u64.pow(request.currency.exponent()))
            .and_then(|m| i64::try_from(m).ok())
            .ok_or_else(|| DomainError::unexpected("sandbox rate overflow"))?;
        Ok(Some(Money::new(minor, request.currency)))
    }
}

/// `(base, step)` in major units of a service, whatever its case.
fn tariff(service: &str) -> Option<(u64, u64)> {
    match service.trim().to_ascii_lowercase().as_str() {
        "ground" => Some((5, 1)),
        "priority" => Some((9, 2)),
        "express" => Some((15, 3)),
        _ => None,
    }
}

fn is_international(request: &CarrierRateRequest) -> bool {
    let from = request.origin.as_ref().map_or(DEFAULT_ORIGIN_COUNTRY, |o| o.country.as_str());
    !from.trim().eq_ignore_ascii_case(request.destination.country.trim())
}

impl ShippingRateProvider for SandboxCarrier {
    async fn rate(&self, request: &CarrierRateRequest) -> Result<Option<Money>> {
        self.quote(request)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use commerce_domain::inventory::Location;
    use commerce_domain::money::Currency;
    use commerce_domain::order::ShippingAddress;
    use commerce_domain::shipping::Carrier;

    pub(crate) fn request(service: &str, weight_grams: u64, from: Option<&str>, to: &str) -> CarrierRateRequest {
        CarrierRateRequest {
            carrier: Carrier::Sandbox,
            service: service.into(),
            seller_id: "seller-1".into(),
            origin: from.map(|country| Location {
                country: country.into(),
                region: None,
                coordinates: None,
                postal_code: None,
            }),
            destination: ShippingAddress {
                name: "Ada Lovelace".into(),
                line1: "1 Main St".into(),
                line2: None,
                city: "Springfield".into(),
                region: Some("IL".into()),
                postal_code: "62701".into(),
                country: to.into(),
            },
            weight_grams,
            currency: Currency::USD,
        }
    }

    fn amount(request: &CarrierRateRequest) -> Option<i64> {
        SandboxCarrier.quote(request).unwrap().map(|m| {
            assert_eq!(m.currency, request.currency);
            m.amount
        })
    }

    #[test]
    fn ground_is_its_base_plus_one_step_per_started_500_grams() {
        let cases = [(0, 500), (1, 600), (500, 600), (501, 700), (1_200, 800), (30_000, 6_500)];
        for (grams, cents) in cases {
            assert_eq!(amount(&request("ground", grams, Some("US"), "US")), Some(cents), "{grams} g");
        }
    }

    #[test]
    fn each_service_has_its_own_base_and_step_in_any_case() {
        assert_eq!(amount(&request("priority", 1_200, Some("US"), "US")), Some(1_500));
        assert_eq!(amount(&request("express", 1_200, Some("US"), "US")), Some(2_400));
        assert_eq!(amount(&request("Express", 1_200, Some("US"), "US")), Some(2_400));
        assert_eq!(amount(&request(" GROUND ", 1_200, Some("US"), "US")), Some(800));
    }

    #[test]
    fn an_international_parcel_pays_the_surcharge_and_without_origin_us_is_domestic() {
        assert_eq!(amount(&request("express", 1_200, Some("US"), "DE")), Some(3_400));
        assert_eq!(amount(&request("ground", 1_200, Some("DE"), "DE")), Some(800));
        assert_eq!(amount(&request("ground", 1_200, Some("de"), "DE")), Some(800));
        assert_eq!(amount(&request("ground", 1_200, None, "US")), Some(800));
        assert_eq!(amount(&request("ground", 1_200, None, "CA")), Some(1_800));
    }

    #[test]
    fn amounts_scale_with_the_currency_exponent() {
        let mut yen = request("priority", 500, Some("JP"), "JP");
        yen.currency = "JPY".parse().unwrap();
        assert_eq!(amount(&yen), Some(11));
        let mut dinar = request("ground", 501, Some("KW"), "KW");
        dinar.currency = "KWD".parse().unwrap();
        assert_eq!(amount(&dinar), Some(7_000));
        let mut euro = request("ground", 501, Some("FR"), "DE");
        euro.currency = Currency::EUR;
        assert_eq!(amount(&euro), Some(1_700));
    }

    #[test]
    fn an_unknown_service_and_an_overweight_parcel_have_no_rate() {
        assert_eq!(amount(&request("overnight", 1_200, Some("US"), "US")), None);
        assert_eq!(amount(&request("", 1_200, Some("US"), "US")), None);
        assert_eq!(amount(&request("ground", MAX_WEIGHT_GRAMS + 1, Some("US"), "US")), None);
        assert_eq!(amount(&request("ground", u64::MAX, Some("US"), "US")), None);
    }

    #[test]
    fn the_postal_code_hooks_inject_a_failure_and_a_missing_rate() {
        let mut failing = request("ground", 1_200, Some("US"), "US");
        failing.destination.postal_code = "00000".into();
        assert!(matches!(SandboxCarrier.quote(&failing), Err(DomainError::Transient(_))));
        let mut unserved = request("ground", 1_200, Some("US"), "US");
        unserved.destination.postal_code = "99999".into();
        assert_eq!(SandboxCarrier.quote(&unserved).unwrap(), None);
    }
}
