//! Demo tax regions and shipping methods, so that `make dev` shows real totals at once:
//! - taxes: the US (no federal sales tax; shipping untaxed), California (7.25 % plus a 2.25 % Los Angeles
//!   district rate, combined), New York (4 % plus New York City's 4.875 %), Texas (6.25 %), all on top of the
//!   price; Germany (19 %, books 7 %) and Great Britain (20 %, books 0 %) inside the price, shipping taxed;
//! - shipping: every demo seller ships the US by a free "Standard" (the first seller's a flat 0.00, the second's
//!   free over 0.00) and a weight-tiered "Express", and Canada, Germany and Great Britain by a flat
//!   "International" (19.99); the second seller also offers the sandbox carrier's "Priority".

use chrono::{DateTime, TimeZone, Utc};
use commerce_app::ports::{ShippingMethodWriter, TaxRegionWriter};
use commerce_aws::shipping_config::DynamoShippingConfig;
use commerce_domain::error::{DomainError, ErrorCode, Result};
use commerce_domain::ids::ShippingMethodId;
use commerce_domain::money::{Currency, Money};
use commerce_domain::shipping::{Carrier, ShippingMethod, ShippingMethodInput, ShippingRate, WeightTier};
use commerce_domain::tax::{TaxRate, TaxRegion, TaxRegionInput};

fn created_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).single().unwrap_or_default()
}

fn usd(amount: i64) -> Money {
    Money::new(amount, Currency::USD)
}

fn region(code: &str, inclusive: bool, shipping_taxable: bool, rates: &[(&str, u32, &str)]) -> Result<TaxRegion> {
    let input = TaxRegionInput {
        prices_include_tax: inclusive,
        shipping_taxable,
        rates: rates
            .iter()
            .map(|(class, ppm, name)| Ok(TaxRate { tax_class: class.parse()?, rate_ppm: *ppm, name: (*name).into() }))
            .collect::<Result<_>>()?,
        combinable: code.len() > 2,
    };
    TaxRegion::put(code.parse()?, input, None, created_at())
}

/// The demo tax regions.
pub fn tax_regions() -> Result<Vec<TaxRegion>> {
    Ok(vec![
        region("US", false, false, &[("standard", 0, "No federal sales tax")])?,
        region(
            "US-CA",
            false,
            false,
            &[("standard", 72_500, "California sales tax"), ("standard", 22_500, "Los Angeles district tax")],
        )?,
        region(
            "US-NY",
            false,
            false,
            &[("standard", 40_000, "New York sales tax"), ("standard", 48_750, "New York City sales tax")],
        )?,
        region("US-TX", false, false, &[("standard", 62_500, "Texas sales tax")])?,
        region("DE", true, true, &[("standard", 190_000, "MwSt 19 %"), ("reduced", 70_000, "MwSt 7 %")])?,
        region("GB", true, true, &[("standard", 200_000, "VAT 20 %"), ("reduced", 0, "VAT 0 %")])?,
    ])
}

fn method(
    id: String,
    seller: &str,
    name: &str,
    countries: &[&str],
    rate: ShippingRate,
    days: (u32, u32),
) -> Result<ShippingMethod> {
    let input = ShippingMethodInput {
        name: name.into(),
        countries: countries.iter().map(|c| (*c).to_owned()).collect(),
        rate,
        min_days: days.0,
        max_days: days.1,
        tax_class: None,
    };
    ShippingMethod::create(ShippingMethodId::parse(&id)?, seller, input, &[], created_at())
}

/// The demo sellers' shipping methods (`shm_demo-<n>-standard`, `-express`, `-international`, and
/// `shm_demo-2-priority` for the second seller).
pub fn shipping_methods(sellers: &[String]) -> Result<Vec<ShippingMethod>> {
    let mut methods = Vec::new();
    for (i, seller) in sellers.iter().enumerate() {
        let n = i + 1;
        let id = |what: &str| format!("shm_demo-{n}-{what}");
        let standard = if n == 2 {
            ShippingRate::FreeOver { amount: usd(599), threshold: usd(0) }
        } else {
            ShippingRate::Flat { amount: usd(0) }
        };
        let tiers = vec![
            WeightTier { up_to_grams: 1_000, amount: usd(1_299) },
            WeightTier { up_to_grams: 5_000, amount: usd(1_999) },
            WeightTier { up_to_grams: 30_000, amount: usd(3_999) },
        ];
        methods.push(method(id("standard"), seller, "Standard", &["US"], standard, (3, 6))?);
        methods.push(method(id("express"), seller, "Express", &["US"], ShippingRate::WeightTiers { tiers }, (1, 2))?);
        let abroad = ShippingRate::Flat { amount: usd(1_999) };
        methods.push(method(id("international"), seller, "International", &["CA", "DE", "GB"], abroad, (5, 12))?);
        if n == 2 {
            let carrier = ShippingRate::Carrier { carrier: Carrier::Sandbox, service: "priority".into() };
            methods.push(method(id("priority"), seller, "Priority", &["US"], carrier, (2, 3))?);
        }
    }
    Ok(methods)
}

/// Writes the demo regions and methods; what is already there (a second run) is left as it is.
pub async fn seed(config: &DynamoShippingConfig, sellers: &[String]) -> Result<(usize, usize)> {
    let kept = |result: Result<()>| match result {
        Err(DomainError::Conflict { code: ErrorCode::VersionConflict, .. }) => Ok(()),
        other => other,
    };
    let regions = tax_regions()?;
    for region in &regions {
        kept(config.put_tax_region(region, None).await)?;
    }
    let methods = shipping_methods(sellers)?;
    for method in &methods {
        kept(config.put_shipping_method(method, None).await)?;
    }
    Ok((regions.len(), methods.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_tables_are_valid_and_every_seller_ships_the_us() {
        let regions = tax_regions().unwrap();
        assert_eq!(regions.len(), 6);
        let sellers = vec!["seller-a".to_owned(), "seller-b".to_owned()];
        let methods = shipping_methods(&sellers).unwrap();
        assert_eq!(methods.len(), 7);
        for seller in &sellers {
            assert!(methods.iter().any(|m| &m.seller_id == seller && m.serves("US")));
        }
    }
}
