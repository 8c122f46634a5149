//! Pricing benchmarks.
//! - `pricing-bench` (engine): prices carts the way checkout does, in process: 20 lines over 4 sellers, each line
//!   taxed under the address's rules (California's combined state and district rates on top of the price, or
//!   Germany's VAT inside it), one shipping line per seller part, then the order's and the parts' totals.
//!   Prints carts priced per second.
//! - `pricing-bench quote --state-dir DIR`: quotes a 20-line, two-seller demo cart through the running local
//!   stack's HTTP API, one request at a time, and prints p50/p95/max. It goes through the local DynamoDB
//!   emulator (the cart, the catalog, the tax regions and methods are read there; the quote is written
//!   there), so it measures the emulator as much as our code.
//! - `pricing-bench promotions --state-dir DIR`: the write units an order's promotions cost (from the encoded
//!   items' sizes and AWS's rules), then the promotion preview through the running local stack: a code put on a
//!   20-line cart and the cart read with it, one request at a time, p50/p95/max.
//! - `pricing-bench cached-reads --state-dir DIR`: a demo product (its prices and stock status) read through the
//!   running local stack without and with its current `ETag` as `If-None-Match`, one request at a time:
//!   p50/p95/max of the 200s and of the 304s, and the bytes of each body. The product is read from the local
//!   DynamoDB emulator either way (a 304 saves the body, not the read), so the latencies include the emulator's.

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
    #[command(subcommand)]
    mode: Option<Mode>,
}

#[derive(clap::Subcommand)]
enum Mode {
    /// Quotes through the running local stack's HTTP API.
    Quote {
        #[arg(long, default_value_t = 200)]
        quotes: usize,
        #[arg(long, default_value = ".local/state")]
        state_dir: std::path::PathBuf,
        #[arg(long, default_value = "target/debug/local-stack")]
        local_stack: std::path::PathBuf,
    },
    /// A product read through the local stack without and with a matching `If-None-Match`.
    CachedReads {
        #[arg(long, default_value_t = 200)]
        requests: usize,
        #[arg(long, default_value = ".local/state")]
        state_dir: std::path::PathBuf,
    },
    /// Write units per order with and without a code, and the preview's latency through the local stack.
    Promotions {
        #[arg(long, default_value_t = 200)]
        requests: usize,
        #[arg(long, default_value = ".local/state")]
        state_dir: std::path::PathBuf,
        #[arg(long, default_value = "target/debug/local-stack")]
        local_stack: std::path::PathBuf,
    },
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
    if let Some(Mode::Quote { quotes, state_dir, local_stack }) = args.mode {
        return tokio::runtime::Runtime::new()?.block_on(quote(quotes, &state_dir, &local_stack));
    }
    if let Some(Mode::CachedReads { requests, state_dir }) = args.mode {
        return tokio::runtime::Runtime::new()?.block_on(cached_reads(requests, &state_dir));
    }
    if let Some(Mode::Promotions { requests, state_dir, local_stack }) = args.mode {
        write_units()?;
        return tokio::runtime::Runtime::new()?.block_on(preview(requests, &state_dir, &local_stack));
    }
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

/// 1 write unit per started KB, twice in a transaction.
fn wcu(bytes: usize, transactional: bool) -> usize {
    bytes.div_ceil(1024) * if transactional { 2 } else { 1 }
}

/// The write units of a one-line order's writes that promotions change, without and with one code (a limited
/// promotion without, then with, a per-customer limit), from the encoded order item's size at each write.
fn write_units() -> Result<()> {
    use commerce_aws::orders::order_item_size;
    use commerce_domain::order::{HeldUse, OrderEventKind, Redemption};
    use commerce_domain::promotion::{DiscountClass, Share};
    let usd = |amount| Money::new(amount, Currency::USD);
    let line = || {
        OrderLine::new(
            "LAP-0001-16GB-512GB",
            "prd_demo-0001",
            "9401d12a-b391-48d2-acd7-8b81507ee8f0",
            "Laptop 1",
            1,
            usd(109_900),
        )
    };
    let customer = Customer {
        user_id: Some("47a6c574-7e9a-4982-bc09-aa2239f94310".into()),
        email: Some("shopper@example.com".into()),
    };
    let id = "ord_k2v8v7d3q9x4m1n6b5c0z8y7w6t5";
    let place = |lines| {
        Order::place(
            id.into(),
            customer.clone(),
            "cart_01jh0000000000000000000000".into(),
            lines,
            address("US", Some("IL")),
            Actor::shopper("u"),
            Utc::now(),
        )
    };
    let confirm = |order: &mut Order| {
        order
            .record(
                OrderEventKind::Confirmed { payment_id: "pi_3Qx1234567890abcdefghij".into() },
                Actor::system("checkout"),
                None,
                Utc::now(),
            )
            .map(|_| ())
    };
    // Without a code: the put and the confirmation, as before.
    let mut plain = place(vec![line()?])?;
    let plain_put = order_item_size(&plain)?;
    confirm(&mut plain)?;
    let plain_confirm = order_item_size(&plain)?;
    let plain_wcu = wcu(plain_put, false) + wcu(plain_confirm, false);
    // With one code: the same put (a larger item), the hold (a transaction of the order and one shard), the
    // confirmation (a transaction of the order and the shard).
    let promotion_id = "prm_01jh0000000000000000000000";
    let shares = vec![Share { promotion_id: promotion_id.into(), amount: 10_990 }];
    let redemption = |per_customer| Redemption {
        promotion_id: promotion_id.into(),
        code: Some("WELCOME10".into()),
        name: "Welcome".into(),
        class: DiscountClass::Order,
        amount: usd(10_990),
        single_use: false,
        limited: true,
        per_customer_limit: per_customer,
        restore_on_cancel: true,
        shards: 16,
    };
    // A counter shard or a customer's count: keys and three numbers, far under 1 KB.
    let small = 120;
    println!("write units of a one-line order (order item {plain_put} B placed, {plain_confirm} B confirmed):");
    println!("  without a code: {plain_wcu} for the put and the confirmation, 0 extra (no promotion attribute, no transaction)");
    for (label, per_customer) in [("one code", None), ("one code with a per-customer limit", Some(1))] {
        let mut order =
            place(vec![line()?.with_discounts(shares.clone())])?.with_promotions(vec![redemption(per_customer)])?;
        let put = order_item_size(&order)?;
        order.record(
            OrderEventKind::PromotionsHeld { uses: vec![HeldUse { promotion_id: promotion_id.into(), shard: 3 }] },
            Actor::system("promotions"),
            None,
            Utc::now(),
        )?;
        let held = order_item_size(&order)?;
        confirm(&mut order)?;
        let confirmed = order_item_size(&order)?;
        let counts = if per_customer.is_some() { 2 } else { 1 };
        let hold = wcu(held, true) + counts * wcu(small, true);
        let total = wcu(put, false) + hold + wcu(confirmed, true) + wcu(small, true);
        println!(
            "  {label}: put {} ({put} B) + hold {hold} + confirm {} = {total}, {} extra",
            wcu(put, false),
            wcu(confirmed, true) + wcu(small, true),
            total - plain_wcu
        );
    }
    Ok(())
}

/// Puts the demo code `WELCOME10` on a 20-line, two-seller cart `requests` times and reads the cart with it as
/// often, one request at a time; prints p50/p95/max of each.
async fn preview(requests: usize, state_dir: &std::path::Path, local_stack: &std::path::Path) -> Result<()> {
    use serde_json::Value;
    let (http, api, token, cart_id) = demo_cart(state_dir, local_stack, "shopper-9002").await?;
    for (label, method, path) in [
        (
            "PUT the code (checked, kept, evaluated)",
            reqwest::Method::PUT,
            format!("/v1/carts/{cart_id}/promotions/WELCOME10"),
        ),
        ("GET the cart with the code (evaluated)", reqwest::Method::GET, format!("/v1/carts/{cart_id}")),
    ] {
        let mut latencies = Vec::with_capacity(requests);
        for _ in 0..requests {
            let started = Instant::now();
            let response =
                http.request(method.clone(), format!("{api}{path}")).header("authorization", &token).send().await?;
            let status = response.status();
            let body: Value = response.json().await?;
            anyhow::ensure!(status.is_success(), "{label}: {status} {body}");
            anyhow::ensure!(body["promotions"]["discount_total"]["amount"].as_i64() > Some(0), "no discount: {body}");
            latencies.push(started.elapsed());
        }
        latencies.sort();
        let at =
            |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)].as_secs_f64() * 1e3;
        println!(
            "promotion preview, {label} (20 lines, 2 sellers; {requests} sequential): p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
            at(0.5),
            at(0.95),
            at(1.0)
        );
    }
    Ok(())
}

/// The address of the running local stack's HTTP API.
fn api_url(state_dir: &std::path::Path) -> Result<String> {
    let info: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(state_dir.join("stack.json"))
            .map_err(|e| anyhow::anyhow!("no running local stack: {e}"))?,
    )?;
    Ok(info["api_url"].as_str().ok_or_else(|| anyhow::anyhow!("stack.json has no api_url"))?.to_owned())
}

/// p50, p95 and max of `latencies`, in ms.
fn percentiles(latencies: &mut [std::time::Duration]) -> (f64, f64, f64) {
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)].as_secs_f64() * 1e3;
    (at(0.5), at(0.95), at(1.0))
}

/// Reads the first demo product `requests` times without `If-None-Match` and as often with its current `ETag`;
/// prints p50/p95/max and the body's bytes of each.
async fn cached_reads(requests: usize, state_dir: &std::path::Path) -> Result<()> {
    let url = format!("{}/v1/products/{}", api_url(state_dir)?, commerce_demo::catalog::FIRST_PRODUCT_ID);
    let http = reqwest::Client::builder().no_proxy().build()?;
    let first = http.get(&url).send().await?;
    anyhow::ensure!(first.status() == 200, "GET {url}: {}", first.status());
    let etag = first.headers().get("etag").ok_or_else(|| anyhow::anyhow!("no ETag on {url}"))?.clone();
    for (label, if_none_match, expected) in
        [("without If-None-Match", None, 200), ("with the current ETag as If-None-Match", Some(etag), 304)]
    {
        let mut latencies = Vec::with_capacity(requests);
        let mut body_bytes = 0;
        for _ in 0..requests {
            let started = Instant::now();
            let mut request = http.get(&url);
            if let Some(tag) = &if_none_match {
                request = request.header("if-none-match", tag);
            }
            let response = request.send().await?;
            let status = response.status();
            body_bytes = response.bytes().await?.len();
            anyhow::ensure!(status == expected, "{label}: {status}, expected {expected}");
            latencies.push(started.elapsed());
        }
        let (p50, p95, max) = percentiles(&mut latencies);
        println!(
            "product GET {label} ({requests} sequential): {expected} with a {body_bytes}-byte body; p50 {p50:.1} ms, p95 {p95:.1} ms, max {max:.1} ms"
        );
    }
    Ok(())
}

/// A new cart of `user` holding the first 20 demo products (every fourth the second seller's) on the running
/// local stack: the HTTP client, the API's address, the bearer token and the cart id.
async fn demo_cart(
    state_dir: &std::path::Path,
    local_stack: &std::path::Path,
    user: &str,
) -> Result<(reqwest::Client, String, String, String)> {
    use serde_json::{json, Value};
    let api = api_url(state_dir)?;
    let out = std::process::Command::new(local_stack)
        .args(["token", "--user", user, "--state-dir"])
        .arg(state_dir)
        .output()?;
    anyhow::ensure!(out.status.success(), "local-stack token: {}", String::from_utf8_lossy(&out.stderr));
    let token = format!("Bearer {}", String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().trim());
    let http = reqwest::Client::builder().no_proxy().build()?;
    let cart: Value = http.post(format!("{api}/v1/carts")).header("authorization", &token).send().await?.json().await?;
    let cart_id = cart["cart_id"].as_str().ok_or_else(|| anyhow::anyhow!("no cart: {cart}"))?.to_owned();
    let sellers = ["a".to_owned(), "b".to_owned()];
    let (_, products) = commerce_demo::catalog::catalog(&sellers)?;
    for product in products.iter().take(20) {
        let sku = &product.variants[0].sku;
        let status = http
            .put(format!("{api}/v1/carts/{cart_id}/items/{sku}"))
            .header("authorization", &token)
            .json(&json!({"quantity": 1}))
            .send()
            .await?
            .status();
        anyhow::ensure!(status.is_success(), "adding {sku}: {status}");
    }
    Ok((http, api, token, cart_id))
}

/// Quotes one two-seller cart `quotes` times to Los Angeles (table rates and the sandbox carrier) and to Berlin
/// (table rates only), one request at a time; prints p50/p95/max per address.
async fn quote(quotes: usize, state_dir: &std::path::Path, local_stack: &std::path::Path) -> Result<()> {
    use serde_json::json;
    let (http, api, token, cart_id) = demo_cart(state_dir, local_stack, "shopper-9001").await?;
    for (label, address) in [
        (
            "Los Angeles: table rates and the sandbox carrier",
            json!({"name": "Ada", "line1": "1 Main St", "city": "Los Angeles", "region": "CA", "postal_code": "90012", "country": "US"}),
        ),
        (
            "Berlin: table rates",
            json!({"name": "Ada", "line1": "1 Hauptstr.", "city": "Berlin", "postal_code": "10115", "country": "DE"}),
        ),
    ] {
        let mut latencies = Vec::with_capacity(quotes);
        for _ in 0..quotes {
            let started = Instant::now();
            let response = http
                .post(format!("{api}/v1/carts/{cart_id}/quote"))
                .header("authorization", &token)
                .json(&json!({"shipping_address": address}))
                .send()
                .await?;
            let status = response.status();
            let _ = response.bytes().await?;
            anyhow::ensure!(status.is_success(), "quote: {status}");
            latencies.push(started.elapsed());
        }
        latencies.sort();
        let at =
            |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)].as_secs_f64() * 1e3;
        println!(
            "quote ({label}; 20 lines, 2 sellers; {quotes} sequential): p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
            at(0.5),
            at(0.95),
            at(1.0)
        );
    }
    Ok(())
}
