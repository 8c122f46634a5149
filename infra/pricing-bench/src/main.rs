//! Prices carts the way checkout does, in process: 20 lines over 4 sellers, each line taxed under the address's
//! rules (California's combined state and district rates on top of the price, or Germany's VAT inside it),
//! one shipping line per seller part, then the order's and the parts' totals. Prints carts priced per second.

use anyhow::Result;
use chrono::Utc;
use clap::Parser;
use commerce_domain::ids::ShippingMethodId;
use commerce_domain::money::{Currency, Money};
use commerce_domain::order::{Actor, Charges, Customer, Order, OrderLine, ShippingAddress};
use commerce_domain::pricing::{line_tax, shipping_line};
use commerce_domain::tax::{TaxClass, TaxRate, TaxRegion, TaxRegionInput, TaxRules};
use std::hint::black_box;
use std::time::Instant;

#[derive(Parser)]
struct Args {
    /// Carts to price per region.
    #[arg(long, default_value_t = 200_000)]
    carts: u32,
}

fn region(code: &str, inclusive: bool, combinable: bool, rates: &[(u32, &str)]) -> Result<TaxRegion> {
    let input = TaxRegionInput {
        prices_include_tax: inclusive,
        shipping_taxable: inclusive,
        rates: rates
            .iter()
            .map(|(ppm, name)| TaxRate { tax_class: TaxClass::standard(), rate_ppm: *ppm, name: (*name).into() })
            .collect(),
        combinable,
    };
    Ok(TaxRegion::put(code.parse()?, input, None, Utc::now())?)
}

fn address(country: &str, region: Option<&str>) -> ShippingAddress {
    ShippingAddress {
        name: "Ada".into(),
        line1: "1 Main St".into(),
        line2: None,
        city: "Town".into(),
        region: region.map(str::to_owned),
        postal_code: "90012".into(),
        country: country.into(),
    }
}

/// Prices one 20-line cart; returns its total.
fn price(rules: &TaxRules, to: &ShippingAddress, seed: u64, method: &ShippingMethodId) -> Result<i64> {
    let class = TaxClass::standard();
    let mut lines = Vec::with_capacity(20);
    for i in 0..20u64 {
        let unit = 100
            + ((seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i * 1_442_695_040_888_963_407)) >> 40) as i64;
        let line = OrderLine::new(
            format!("SKU-{i}"),
            "prd_1",
            format!("seller-{}", i % 4),
            "Item",
            1 + (i % 3) as u32,
            Money::new(unit, Currency::USD),
        )?;
        let tax = line_tax(rules, line.line_total.amount, 0, &class)?;
        lines.push(line.taxed(class.clone(), tax));
    }
    let shipping = (0..4)
        .map(|s| {
            shipping_line(
                rules,
                &format!("seller-{s}"),
                method.clone(),
                "Standard",
                Money::new(599, Currency::USD),
                &class,
                (2, 5),
            )
        })
        .collect();
    let charges = Charges { shipping, prices_include_tax: rules.prices_include_tax, tax_region: rules.region.clone() };
    let customer = Customer { user_id: Some("u1".into()), email: None };
    let order =
        Order::place("ord_1".into(), customer, "cart_1".into(), lines, to.clone(), Actor::shopper("u1"), Utc::now())?
            .with_charges(charges)?;
    let parts: i64 = order.seller_parts().iter().map(|p| p.totals.total.amount).sum();
    anyhow::ensure!(parts == order.total().amount, "the parts do not add up to the order");
    Ok(order.total().amount)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let regions = vec![
        region("US", false, false, &[(0, "none")])?,
        region("US-CA", false, true, &[(72_500, "California"), (22_500, "LA district")])?,
        region("DE", true, false, &[(190_000, "MwSt")])?,
    ];
    let method = ShippingMethodId::parse("shm_bench")?;
    for (label, to) in
        [("US-CA, exclusive, combined rates", address("US", Some("CA"))), ("DE, inclusive", address("DE", None))]
    {
        let rules = TaxRules::for_address(&regions, &to.country, to.region.as_deref());
        let started = Instant::now();
        let mut sum = 0i64;
        for seed in 0..u64::from(args.carts) {
            sum = sum.wrapping_add(black_box(price(&rules, &to, seed, &method)?));
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "pricing ({label}): {} carts of 20 lines in {secs:.2} s = {:.0} carts/s ({:.1} µs per cart; checksum {sum})",
            args.carts,
            f64::from(args.carts) / secs,
            secs * 1e6 / f64::from(args.carts)
        );
    }
    Ok(())
}
