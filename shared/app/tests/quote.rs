//! Shipping quotes and checkout pricing over the in-memory fakes: options per seller part, the quote's
//! staleness, not shippable parts, carriers at quote time only, and the order's totals.

use chrono::{DateTime, Duration, Utc};
use commerce_app::ports::{CartStore, OrderReader, ProductReader};
use commerce_app::services::checkout::{
    start_checkout, CheckoutOutcome, CheckoutPorts, CheckoutRequest, KeyedCheckout,
};
use commerce_app::services::quote::{quote_cart, QuotePorts, QuoteRequest, QuoteView, ShippingChoice};
use commerce_domain::cart::{Cart, CartAccess, CartLimits};
use commerce_domain::error::{DomainError, ErrorCode, Result};
use commerce_domain::ids::{CartId, ShippingMethodId};
use commerce_domain::money::{Currency, Money};
use commerce_domain::order::{Order, ShippingAddress};
use commerce_domain::shipping::{Carrier, ShippingMethod, ShippingMethodInput, ShippingRate, WeightTier};
use commerce_domain::tax::{TaxRate, TaxRegion, TaxRegionInput};
use commerce_testkit::cart::InMemoryCarts;
use commerce_testkit::catalog::InMemoryCatalog;
use commerce_testkit::flash_sale::InMemoryFlashSales;
use commerce_testkit::http::demo_store;
use commerce_testkit::inventory::InMemoryInventory;
use commerce_testkit::orders::InMemoryOrders;
use commerce_testkit::shipping::{InMemoryQuotes, ScriptedCarrier};
use commerce_testkit::shipping_config::InMemoryShippingConfig;

fn usd(amount: i64) -> Money {
    Money::new(amount, Currency::USD)
}

fn address(country: &str, region: Option<&str>) -> ShippingAddress {
    ShippingAddress {
        name: "Ada Lovelace".into(),
        line1: "1 Main St".into(),
        line2: None,
        city: "Los Angeles".into(),
        region: region.map(str::to_owned),
        postal_code: "90012".into(),
        country: country.into(),
    }
}

fn method(seller: &str, name: &str, countries: &[&str], rate: ShippingRate) -> ShippingMethod {
    let input = ShippingMethodInput {
        name: name.into(),
        countries: countries.iter().map(|c| c.to_string()).collect(),
        rate,
        min_days: 2,
        max_days: 5,
        tax_class: None,
    };
    ShippingMethod::create(ShippingMethodId::generate(), seller, input, &[], Utc::now()).unwrap()
}

fn region(code: &str, inclusive: bool, shipping_taxable: bool, combinable: bool, rates: &[(u32, &str)]) -> TaxRegion {
    let input = TaxRegionInput {
        prices_include_tax: inclusive,
        shipping_taxable,
        rates: rates
            .iter()
            .map(|(ppm, name)| TaxRate { tax_class: "standard".parse().unwrap(), rate_ppm: *ppm, name: (*name).into() })
            .collect(),
        combinable,
    };
    TaxRegion::put(code.parse().unwrap(), input, None, Utc::now()).unwrap()
}

/// A shopper's cart with 2 units of seller A's laptop and 1 of seller B's t-shirt, A shipping to the US only
/// (ground 5.00, express 15.00, a carrier's priority), B to the US and Germany by weight; taxes for the US,
/// California (7.25 % + a 2.25 % district, shipping untaxed) and Germany (19 % inclusive, shipping taxed).
struct Shop {
    catalog: InMemoryCatalog,
    carts: InMemoryCarts,
    tables: InMemoryShippingConfig,
    quotes: InMemoryQuotes,
    carrier: ScriptedCarrier,
    orders: InMemoryOrders,
    flash: InMemoryFlashSales,
    warehouses: InMemoryInventory,
    cart_id: String,
    access: CartAccess,
    seller_a: String,
    seller_b: String,
    /// (unit price, quantity) of A's and B's line.
    lines: [(i64, u32); 2],
    ground: ShippingMethod,
    express: ShippingMethod,
    priority: ShippingMethod,
    by_weight: ShippingMethod,
}

async fn shop() -> Shop {
    let catalog = demo_store();
    let a = catalog.get_product("prd_demo-0001").await.unwrap().unwrap();
    let b = catalog.get_product("prd_demo-0004").await.unwrap().unwrap();
    assert_ne!(a.seller_id, b.seller_id);
    let now = Utc::now();
    let mut cart = Cart::new_shopper("shopper-1", now);
    cart.set_quantity(&a.variants[0].sku, 2, a.variants[0].price, &CartLimits::default(), now).unwrap();
    cart.set_quantity(&b.variants[0].sku, 1, b.variants[0].price, &CartLimits::default(), now).unwrap();
    let carts = InMemoryCarts::new();
    carts.create_cart(&cart).await.unwrap();
    let ground = method(&a.seller_id, "Ground", &["US"], ShippingRate::Flat { amount: usd(500) });
    let express = method(&a.seller_id, "Express", &["US"], ShippingRate::Flat { amount: usd(1500) });
    let priority = method(
        &a.seller_id,
        "Priority",
        &["US"],
        ShippingRate::Carrier { carrier: Carrier::Sandbox, service: "priority".into() },
    );
    let tiers =
        vec![WeightTier { up_to_grams: 100, amount: usd(300) }, WeightTier { up_to_grams: 1000, amount: usd(650) }];
    let by_weight = method(&b.seller_id, "Parcel", &["US", "DE"], ShippingRate::WeightTiers { tiers });
    let regions = [
        region("US", false, false, false, &[(0, "none")]),
        region("US-CA", false, false, true, &[(72_500, "California"), (22_500, "LA district")]),
        region("DE", true, true, false, &[(190_000, "MwSt")]),
    ];
    let tables =
        InMemoryShippingConfig::with(regions, [ground.clone(), express.clone(), priority.clone(), by_weight.clone()]);
    Shop {
        catalog,
        carts,
        tables,
        quotes: InMemoryQuotes::new(),
        carrier: ScriptedCarrier::new([("priority", Some(usd(1200)))]),
        orders: InMemoryOrders::new(),
        flash: InMemoryFlashSales::default(),
        warehouses: InMemoryInventory::demo(),
        cart_id: cart.cart_id.clone(),
        access: CartAccess { user_id: Some("shopper-1".into()), cart_token: None },
        seller_a: a.seller_id.clone(),
        seller_b: b.seller_id.clone(),
        lines: [(a.variants[0].price.amount, 2), (b.variants[0].price.amount, 1)],
        ground,
        express,
        priority,
        by_weight,
    }
}

impl Shop {
    async fn quote(&self, to: ShippingAddress) -> Result<QuoteView> {
        self.quote_at(to, Utc::now()).await
    }

    async fn quote_at(&self, to: ShippingAddress, now: DateTime<Utc>) -> Result<QuoteView> {
        let ports = QuotePorts {
            carts: &self.carts,
            catalog: &self.catalog,
            tables: &self.tables,
            carriers: &self.carrier,
            quotes: &self.quotes,
            warehouses: &self.warehouses,
        };
        let cart_id = CartId::parse(&self.cart_id).unwrap();
        quote_cart(ports, &self.access, &cart_id, QuoteRequest { shipping_address: to }, now).await
    }

    async fn checkout(&self, to: ShippingAddress, shipping: Option<ShippingChoice>) -> Result<Order> {
        self.checkout_at(to, shipping, Utc::now()).await
    }

    async fn checkout_at(
        &self,
        to: ShippingAddress,
        shipping: Option<ShippingChoice>,
        now: DateTime<Utc>,
    ) -> Result<Order> {
        let ports = CheckoutPorts {
            carts: &self.carts,
            catalog: &self.catalog,
            flash: &self.flash,
            orders: &self.orders,
            starter: &self.orders,
            tables: &self.tables,
            quotes: &self.quotes,
            promotions: &commerce_testkit::promotions::InMemoryPromotions::new(),
        };
        let order_id = commerce_domain::ids::OrderId::generate().to_string();
        let request = CheckoutRequest {
            cart_id: self.cart_id.clone(),
            shipping_address: to,
            payment_method: "pm_card_visa".into(),
            email: None,
            flash_ticket_id: None,
            expected_total: None,
            shipping,
            promotion_codes: Vec::new(),
        };
        let keyed = KeyedCheckout {
            request,
            order_id: order_id.clone(),
            fingerprint: "f".into(),
            execution_name: order_id.clone(),
        };
        match start_checkout(ports, &self.access, None, keyed, now).await? {
            CheckoutOutcome::Placed(_) => Ok(self.orders.get_order(&order_id).await?.unwrap()),
            other => panic!("{other:?}"),
        }
    }

    fn subtotal(&self) -> i64 {
        self.lines.iter().map(|(p, q)| p * i64::from(*q)).sum()
    }
}

fn choice(quote: &QuoteView, picks: &[(&str, &ShippingMethod)]) -> ShippingChoice {
    ShippingChoice {
        quote_id: quote.quote_id.to_string(),
        methods: picks.iter().map(|(s, m)| ((*s).to_owned(), m.method_id.to_string())).collect(),
    }
}

fn is_stale(result: Result<Order>) -> bool {
    matches!(result, Err(DomainError::Conflict { code: ErrorCode::QuoteStale, .. }))
}

/// Half up, as the engine rounds: `amount × ppm / 10^6`.
fn exclusive_tax(amount: i64, ppm: i64) -> i64 {
    (2 * amount * ppm + 1_000_000) / 2_000_000
}

#[tokio::test]
async fn a_quote_prices_every_option_of_every_seller_part_cheapest_first() {
    let shop = shop().await;
    let quote = shop.quote(address("US", Some("CA"))).await.unwrap();
    assert_eq!(quote.subtotal, usd(shop.subtotal()));
    assert_eq!(quote.parts.len(), 2);
    let part_a = quote.parts.iter().find(|p| p.seller_id == shop.seller_a).unwrap();
    let names: Vec<(&str, i64, i64)> =
        part_a.options.iter().map(|o| (o.name.as_str(), o.amount.amount, o.tax.amount)).collect();
    assert_eq!(names, vec![("Ground", 500, 0), ("Priority", 1200, 0), ("Express", 1500, 0)]);
    let part_b = quote.parts.iter().find(|p| p.seller_id == shop.seller_b).unwrap();
    // One t-shirt of 180 g: the second tier.
    assert_eq!(part_b.options.iter().map(|o| o.amount.amount).collect::<Vec<_>>(), vec![650]);
    assert_eq!(shop.carrier.calls(), 1);
    // The carrier prices from the warehouse nearest Los Angeles (the West one, in Ontario, California).
    let origin = shop.carrier.asked()[0].origin.clone().expect("an origin");
    assert_eq!((origin.region.as_deref(), origin.postal_code.as_deref()), (Some("CA"), Some("91761")));
}

#[tokio::test]
async fn checkout_with_the_quote_charges_the_chosen_options_and_taxes_and_authorizes_the_total() {
    let shop = shop().await;
    let quote = shop.quote(address("US", Some("CA"))).await.unwrap();
    let calls = shop.carrier.calls();
    let picks = choice(&quote, &[(&shop.seller_a, &shop.priority)]);
    let order = shop.checkout(address("US", Some("CA")), Some(picks)).await.unwrap();
    assert_eq!(shop.carrier.calls(), calls, "checkout never calls a carrier");
    let [(pa, qa), (pb, qb)] = shop.lines;
    let (tax_a, tax_b) = (exclusive_tax(pa * i64::from(qa), 95_000), exclusive_tax(pb * i64::from(qb), 95_000));
    let t = order.totals();
    assert_eq!(t.subtotal.amount, shop.subtotal());
    assert_eq!(t.shipping_total.amount, 1200 + 650, "the quoted carrier rate and B's cheapest");
    assert_eq!(t.tax_total.amount, tax_a + tax_b);
    assert_eq!(t.total.amount, shop.subtotal() + 1200 + 650 + tax_a + tax_b);
    let parts: i64 = order.seller_parts().iter().map(|p| p.totals.total.amount).sum();
    assert_eq!(parts, t.total.amount, "the captures add up to the order");
    let (_, input) = shop.orders.started().pop().unwrap();
    assert_eq!(input["amount"]["amount"], t.total.amount, "the amount authorized is the total");
    assert_eq!(input["ship_to"], serde_json::json!({"country": "US", "region": "CA"}), "stock ships from near CA");
}

#[tokio::test]
async fn checkout_without_a_quote_takes_each_parts_cheapest_table_rate() {
    let shop = shop().await;
    let order = shop.checkout(address("US", Some("NY")), None).await.unwrap();
    let shipping: Vec<(String, i64)> =
        order.header().charges.shipping.iter().map(|s| (s.name.clone(), s.amount.amount)).collect();
    let mut expected = vec![("Ground".to_owned(), 500), ("Parcel".to_owned(), 650)];
    expected.sort_by_key(|(name, _)| if name == "Ground" { shop.seller_a.clone() } else { shop.seller_b.clone() });
    let mut got = shipping.clone();
    got.sort_by_key(|(name, _)| if name == "Ground" { shop.seller_a.clone() } else { shop.seller_b.clone() });
    assert_eq!(got, expected);
    assert_eq!(shop.carrier.calls(), 0);
    // New York has no region: the US's zero rate.
    assert_eq!(order.totals().tax_total.amount, 0);
}

#[tokio::test]
async fn a_quote_goes_stale_when_the_address_a_quantity_a_rate_or_a_tax_table_changes() {
    let to = || address("US", Some("CA"));
    // The address.
    let shop = shop().await;
    let quote = shop.quote(to()).await.unwrap();
    assert!(is_stale(shop.checkout(address("US", Some("NV")), Some(choice(&quote, &[]))).await));
    // A quantity.
    let quote = shop.quote(to()).await.unwrap();
    let mut cart = shop.carts.get_cart(&shop.cart_id).await.unwrap().unwrap();
    let sku = cart.lines.keys().next().unwrap().clone();
    let price = cart.lines[&sku].added_price;
    cart.set_quantity(&sku, 3, price, &CartLimits::default(), Utc::now()).unwrap();
    shop.carts.save_cart(&cart).await.unwrap();
    assert!(is_stale(shop.checkout(to(), Some(choice(&quote, &[]))).await));
    // A rate.
    let quote = shop.quote(to()).await.unwrap();
    let mut dearer = shop.express.clone();
    dearer.rate = ShippingRate::Flat { amount: usd(1600) };
    dearer.version += 1;
    shop.tables.replace_method(dearer);
    assert!(is_stale(shop.checkout(to(), Some(choice(&quote, &[]))).await));
    // A tax table.
    let quote = shop.quote(to()).await.unwrap();
    let mut ca = region("US-CA", false, false, true, &[(72_500, "California"), (25_000, "LA district")]);
    ca.version = 2;
    shop.tables.replace_region(ca);
    assert!(is_stale(shop.checkout(to(), Some(choice(&quote, &[]))).await));
    // Unchanged since: the same prices again, as often as asked.
    let quote = shop.quote(to()).await.unwrap();
    let first = shop.checkout(to(), Some(choice(&quote, &[]))).await.unwrap();
    let again = shop.checkout(to(), Some(choice(&quote, &[]))).await.unwrap();
    assert_eq!(first.totals(), again.totals());
    // Expired, unknown, malformed.
    let later = Utc::now() + Duration::minutes(31);
    assert!(is_stale(shop.checkout_at(to(), Some(choice(&quote, &[])), later).await));
    let unknown = ShippingChoice { quote_id: "qt_01unknown".into(), methods: Default::default() };
    assert!(is_stale(shop.checkout(to(), Some(unknown)).await));
    let malformed = ShippingChoice { quote_id: "../etc".into(), methods: Default::default() };
    assert!(is_stale(shop.checkout(to(), Some(malformed)).await));
}

#[tokio::test]
async fn a_part_that_cannot_ship_to_the_address_is_not_shippable_naming_its_seller() {
    let shop = shop().await;
    for result in
        [shop.quote(address("DE", None)).await.map(|_| ()), shop.checkout(address("DE", None), None).await.map(|_| ())]
    {
        match result {
            Err(DomainError::Refused { code: ErrorCode::NotShippable, reason, .. }) => {
                assert!(reason.contains(&shop.seller_a), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn a_method_the_quote_did_not_offer_or_a_seller_not_in_the_cart_is_refused() {
    let shop = shop().await;
    let quote = shop.quote(address("US", Some("CA"))).await.unwrap();
    let wrong = choice(&quote, &[(&shop.seller_a, &shop.by_weight)]);
    let err = shop.checkout(address("US", Some("CA")), Some(wrong)).await.unwrap_err();
    assert!(
        matches!(&err, DomainError::Validation { field, .. } if field == &format!("shipping.methods.{}", shop.seller_a)),
        "{err:?}"
    );
    let stranger = choice(&quote, &[("seller-nobody", &shop.ground)]);
    let err = shop.checkout(address("US", Some("CA")), Some(stranger)).await.unwrap_err();
    assert!(
        matches!(&err, DomainError::Validation { field, .. } if field == "shipping.methods.seller-nobody"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_carrier_that_fails_leaves_its_option_out_of_the_quote() {
    let mut shop = shop().await;
    let mut down = shop.priority.clone();
    down.rate = ShippingRate::Carrier { carrier: Carrier::Sandbox, service: "down".into() };
    down.version += 1;
    shop.tables.replace_method(down);
    shop.carrier = ScriptedCarrier::new([]);
    let quote = shop.quote(address("US", Some("CA"))).await.unwrap();
    let part_a = quote.parts.iter().find(|p| p.seller_id == shop.seller_a).unwrap();
    assert_eq!(part_a.options.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(), vec!["Ground", "Express"]);
}

#[tokio::test]
async fn in_an_inclusive_region_the_total_is_the_sticker_prices_plus_shipping() {
    let shop = shop().await;
    let mut everywhere = shop.ground.clone();
    everywhere.countries.insert("DE".into());
    everywhere.version += 1;
    shop.tables.replace_method(everywhere);
    let order = shop.checkout(address("DE", None), None).await.unwrap();
    let t = order.totals();
    assert_eq!(t.total.amount, shop.subtotal() + 500 + 650);
    assert!(t.tax_total.amount > 0);
    assert!(order.header().charges.prices_include_tax);
}
