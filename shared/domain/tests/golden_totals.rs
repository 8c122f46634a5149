//! Golden order totals, computed by hand (the working is in each case's comments), for the tax regimes a shop
//! meets first: inclusive VAT with two classes (DE, EUR), inclusive VAT (GB, GBP), a US state with a combined
//! district rate, exclusive (US-CA, USD), inclusive consumption tax in a currency without decimals (JP, JPY), a
//! currency with three decimals (KW, KWD), shipping taxed (DE, GB, JP) and not (US-CA, KW).

use chrono::Utc;
use commerce_domain::ids::ShippingMethodId;
use commerce_domain::money::{Currency, Money};
use commerce_domain::order::{Actor, Charges, Customer, Order, OrderLine, ShippingAddress};
use commerce_domain::pricing::{line_tax, shipping_line};
use commerce_domain::tax::{TaxClass, TaxRate, TaxRegion, TaxRegionInput, TaxRules};

struct Region<'a> {
    code: &'a str,
    inclusive: bool,
    shipping_taxable: bool,
    combinable: bool,
    rates: &'a [(&'a str, u32, &'a str)],
}

fn region(r: &Region) -> TaxRegion {
    let input = TaxRegionInput {
        prices_include_tax: r.inclusive,
        shipping_taxable: r.shipping_taxable,
        rates: r
            .rates
            .iter()
            .map(|(class, ppm, name)| TaxRate {
                tax_class: class.parse().unwrap(),
                rate_ppm: *ppm,
                name: (*name).into(),
            })
            .collect(),
        combinable: r.combinable,
    };
    TaxRegion::put(r.code.parse().unwrap(), input, None, Utc::now()).unwrap()
}

fn address(country: &str, region: Option<&str>) -> ShippingAddress {
    ShippingAddress {
        name: "Ada".into(),
        line1: "1 Main St".into(),
        line2: None,
        city: "Town".into(),
        region: region.map(str::to_owned),
        postal_code: "12345".into(),
        country: country.into(),
    }
}

/// Lines as (unit price, quantity, class); one seller, one shipping line.
fn order(
    regions: &[TaxRegion],
    to: &ShippingAddress,
    currency: Currency,
    lines: &[(i64, u32, &str)],
    shipping: i64,
) -> Order {
    let rules = TaxRules::for_address(regions, &to.country, to.region.as_deref());
    let lines: Vec<OrderLine> = lines
        .iter()
        .enumerate()
        .map(|(i, (price, qty, class))| {
            let line =
                OrderLine::new(format!("SKU-{i}"), "prd_1", "seller-1", "Item", *qty, Money::new(*price, currency))
                    .unwrap();
            let class: TaxClass = class.parse().unwrap();
            let tax = line_tax(&rules, line.line_total.amount, 0, &class).unwrap();
            line.taxed(class, tax)
        })
        .collect();
    let ship = shipping_line(
        &rules,
        "seller-1",
        ShippingMethodId::parse("shm_std").unwrap(),
        "Standard",
        Money::new(shipping, currency),
        &TaxClass::standard(),
        (2, 4),
    );
    let charges = Charges {
        shipping: vec![ship],
        prices_include_tax: rules.prices_include_tax,
        tax_region: rules.region.clone(),
    };
    let customer = Customer { user_id: Some("u1".into()), email: None };
    Order::place("ord_1".into(), customer, "cart_1".into(), lines, to.clone(), Actor::shopper("u1"), Utc::now())
        .unwrap()
        .with_charges(charges)
        .unwrap()
}

/// (line taxes, shipping tax, subtotal, shipping_total, tax_total, total)
fn figures(order: &Order) -> (Vec<i64>, i64, i64, i64, i64, i64) {
    let t = order.totals();
    (
        order.header().lines.iter().map(|l| l.tax.amount).collect(),
        order.header().charges.shipping[0].tax.amount,
        t.subtotal.amount,
        t.shipping_total.amount,
        t.tax_total.amount,
        t.total.amount,
    )
}

#[test]
fn germany_19_and_7_percent_inclusive_in_euros() {
    let de = region(&Region {
        code: "DE",
        inclusive: true,
        shipping_taxable: true,
        combinable: false,
        rates: &[("standard", 190_000, "MwSt 19 %"), ("reduced", 70_000, "MwSt 7 %")],
    });
    // 2 x 19.99 = 39.98: net 3998 / 1.19 = 3359.66 -> 3360, tax 638.
    // 1 x 24.00 (a book, reduced): net 2400 / 1.07 = 2242.99 -> 2243, tax 157.
    // Shipping 4.90: net 490 / 1.19 = 411.76 -> 412, tax 78.
    // Total = the sticker prices: 3998 + 2400 + 490 = 6888; tax 638 + 157 + 78 = 873.
    let o = order(&[de], &address("DE", None), Currency::EUR, &[(1999, 2, "standard"), (2400, 1, "reduced")], 490);
    assert_eq!(figures(&o), (vec![638, 157], 78, 6398, 490, 873, 6888));
}

#[test]
fn great_britain_20_percent_inclusive_in_pounds() {
    let gb = region(&Region {
        code: "GB",
        inclusive: true,
        shipping_taxable: true,
        combinable: false,
        rates: &[("standard", 200_000, "VAT 20 %"), ("zero", 0, "VAT 0 %")],
    });
    // 3 x 9.99 = 29.97: net 2997 / 1.2 = 2497.5 -> 2498 (half up), tax 499.
    // 1 x 12.00 children's clothing (zero): tax 0.
    // Shipping 3.99: net 399 / 1.2 = 332.5 -> 333, tax 66.
    let gbp: Currency = "GBP".parse().unwrap();
    let o = order(&[gb], &address("GB", None), gbp, &[(999, 3, "standard"), (1200, 1, "zero")], 399);
    assert_eq!(figures(&o), (vec![499, 0], 66, 4197, 399, 565, 4596));
}

#[test]
fn california_with_a_combined_district_rate_exclusive_in_dollars_shipping_untaxed() {
    let us = region(&Region {
        code: "US",
        inclusive: false,
        shipping_taxable: false,
        combinable: false,
        rates: &[("standard", 0, "No federal sales tax")],
    });
    let ca = region(&Region {
        code: "US-CA",
        inclusive: false,
        shipping_taxable: false,
        combinable: true,
        rates: &[("standard", 72_500, "California 7.25 %"), ("standard", 22_500, "Los Angeles district 2.25 %")],
    });
    // 2 x 19.99 = 39.98 at 9.5 %: 379.81 -> 380. Components 289.855 and 89.955: floors 289 + 89 = 378, the
    // two units left go to both remainders: 290 + 90.
    // 1 x 5.00 at 9.5 %: 47.5 -> 48. Components 36.25 and 11.25: floors 36 + 11, the unit left goes to the
    // tie's first component: 37 + 11.
    // Shipping 7.00, not taxed. Total 3998 + 500 + 700 + 380 + 48 = 5626.
    let o = order(
        &[us, ca],
        &address("US", Some("CA")),
        Currency::USD,
        &[(1999, 2, "standard"), (500, 1, "standard")],
        700,
    );
    assert_eq!(figures(&o), (vec![380, 48], 0, 4498, 700, 428, 5626));
    let parts: Vec<Vec<i64>> = o.header().lines.iter().map(|l| l.taxes.iter().map(|c| c.amount).collect()).collect();
    assert_eq!(parts, vec![vec![290, 90, 0], vec![37, 11, 0]]);
    // Texas has no region of its own: the country's (zero) rate applies.
    let us = region(&Region {
        code: "US",
        inclusive: false,
        shipping_taxable: false,
        combinable: false,
        rates: &[("standard", 0, "none")],
    });
    let tx = order(&[us], &address("US", Some("TX")), Currency::USD, &[(1999, 2, "standard")], 700);
    assert_eq!(figures(&tx), (vec![0], 0, 3998, 700, 0, 4698));
}

#[test]
fn japan_10_percent_inclusive_in_yen() {
    let jp = region(&Region {
        code: "JP",
        inclusive: true,
        shipping_taxable: true,
        combinable: false,
        rates: &[("standard", 100_000, "Consumption tax 10 %"), ("reduced", 80_000, "Consumption tax 8 %")],
    });
    // ¥3,280: net 3280 / 1.1 = 2981.82 -> 2982, tax 298. 2 x ¥1,100 = 2200: net 2000, tax 200.
    // Shipping ¥500: net 454.55 -> 455, tax 45. Total 3280 + 2200 + 500 = 5980; tax 543.
    let yen: Currency = "JPY".parse().unwrap();
    let o = order(&[jp], &address("JP", None), yen, &[(3280, 1, "standard"), (1100, 2, "standard")], 500);
    assert_eq!(figures(&o), (vec![298, 200], 45, 5480, 500, 543, 5980));
    assert_eq!(o.total().to_decimal(), "5980");
}

#[test]
fn a_three_decimal_currency_exclusive_shipping_untaxed() {
    let kw = region(&Region {
        code: "KW",
        inclusive: false,
        shipping_taxable: false,
        combinable: false,
        rates: &[("standard", 50_000, "VAT 5 %")],
    });
    // 12.345 KWD = 12345 fils at 5 %: 617.25 -> 617. 3 x 0.999 = 2997 fils: 149.85 -> 150.
    // Shipping 2.500 untaxed. Total 15342 + 2500 + 767 = 18609 fils = 18.609 KWD.
    let kwd: Currency = "KWD".parse().unwrap();
    let o = order(&[kw], &address("KW", None), kwd, &[(12_345, 1, "standard"), (999, 3, "standard")], 2500);
    assert_eq!(figures(&o), (vec![617, 150], 0, 15_342, 2500, 767, 18_609));
    assert_eq!(o.total().to_decimal(), "18.609");
}

#[test]
fn the_seller_parts_add_up_to_the_order() {
    let de = region(&Region {
        code: "DE",
        inclusive: true,
        shipping_taxable: true,
        combinable: false,
        rates: &[("standard", 190_000, "MwSt 19 %")],
    });
    let o = order(&[de], &address("DE", None), Currency::EUR, &[(1999, 2, "standard"), (2400, 1, "standard")], 490);
    let parts: i64 = o.seller_parts().iter().map(|p| p.totals.total.amount).sum();
    assert_eq!(parts, o.total().amount);
}
