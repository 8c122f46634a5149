//! Shipping quotes and the prices an order is placed at: lines taxed under the address's region, each seller
//! part's shipping options (table rates, and carrier rates at quote time only), and the quote fingerprint
//! checkout compares against.
//!
//! - `POST /v1/carts/{cart_id}/quote` prices every option of every seller part for an address and keeps the
//!   quote (30 minutes) with the fingerprint of everything its prices came from.
//! - Checkout with `shipping.quote_id` recomputes the fingerprint from the cart, address, methods and tax
//!   tables as they are now: any difference (or an expired quote) is 409 `quote_stale`. The chosen options'
//!   amounts come from the quote (a carrier's rate is never asked again at checkout).
//! - Checkout without a quote takes each part's cheapest table-rate option for the address.
//! - A seller with no shipping method at all ships free; a seller whose methods do not serve the address is
//!   422 `not_shippable` naming the seller. No tax region for the address: no tax.

use crate::ports::{
    CarrierRateRequest, QuoteStore, ShippingMethodReader, ShippingRateProvider, TaxRegionReader, WarehouseReader,
};
use chrono::{DateTime, Duration, Utc};
use commerce_domain::catalog::SkuView;
use commerce_domain::error::{DomainError, ErrorCode, Result};
use commerce_domain::ids::QuoteId;
use commerce_domain::inventory::allocation::rank_warehouses;
use commerce_domain::money::{Currency, Money};
use commerce_domain::order::{Charges, OrderLine, ShippingAddress};
use commerce_domain::pricing::{self, ShippingLine};
use commerce_domain::shipping::{self, Parcel, Quote, QuoteOption, QuotePart, RatePrice, ShippingMethod};
use commerce_domain::tax::TaxRules;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The body of `POST /v1/carts/{cart_id}/quote`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QuoteRequest {
    pub shipping_address: ShippingAddress,
}

/// Checkout's `shipping`: the quote and, per seller, the method chosen from it (omitted: the cheapest).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ShippingChoice {
    pub quote_id: String,
    #[serde(default)]
    pub methods: BTreeMap<String, String>,
}

/// A quote as the shopper sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteView {
    pub quote_id: QuoteId,
    pub expires_at: DateTime<Utc>,
    pub currency: Currency,
    pub subtotal: Money,
    pub prices_include_tax: bool,
    pub parts: Vec<QuotePart>,
}

/// What pricing reads: the sellers' methods and the tax regions.
pub trait PricingTables: ShippingMethodReader + TaxRegionReader {}
impl<T: ShippingMethodReader + TaxRegionReader> PricingTables for T {}

/// A cart's lines for one address, with everything their prices depend on.
pub struct PricedCart {
    /// Taxed under `rules`.
    pub lines: Vec<OrderLine>,
    pub rules: TaxRules,
    /// Per seller with lines: their methods (all of them, serving the address or not).
    pub methods: BTreeMap<String, Vec<ShippingMethod>>,
    /// Per line SKU: the unit's weight, if the variant has one.
    weights: BTreeMap<String, Option<u32>>,
    pub fingerprint: String,
}

impl PricedCart {
    /// `lines` (untaxed, priced from `views`) taxed for `address`, with the sellers' methods.
    pub async fn price(
        tables: &impl PricingTables,
        cart_id: &str,
        lines: Vec<OrderLine>,
        views: &[SkuView],
        address: &ShippingAddress,
    ) -> Result<Self> {
        // The regions and every seller's methods are read at once: one round trip, not one per seller.
        let sellers: std::collections::BTreeSet<&str> = lines.iter().map(|l| l.seller_id.as_str()).collect();
        let (regions, lists) = futures::future::join(
            tables.list_tax_regions(),
            futures::future::try_join_all(sellers.iter().map(|s| tables.list_shipping_methods(s))),
        )
        .await;
        let rules = TaxRules::for_address(&regions?, &address.country, address.region.as_deref());
        let methods: BTreeMap<String, Vec<ShippingMethod>> =
            sellers.into_iter().map(str::to_owned).zip(lists?).collect();
        let view_of = |sku: &str| views.iter().find(|v| v.sku == sku);
        let mut taxed = Vec::with_capacity(lines.len());
        let mut weights = BTreeMap::new();
        for line in lines {
            let view = view_of(&line.sku);
            let class = view.map(|v| v.tax_class.clone()).unwrap_or_default();
            weights.insert(line.sku.clone(), view.and_then(|v| v.weight_grams));
            let tax = pricing::line_tax(&rules, line.line_total.amount, 0, &class)?;
            taxed.push(line.taxed(class, tax));
        }
        let fingerprint = fingerprint(cart_id, &taxed, &weights, address, &methods, &rules)?;
        Ok(Self { lines: taxed, rules, methods, weights, fingerprint })
    }

    fn currency(&self) -> Currency {
        self.lines.first().map_or(Currency::USD, |l| l.unit_price.currency)
    }

    /// The lines' sum.
    pub fn subtotal(&self) -> Result<Money> {
        self.lines
            .iter()
            .try_fold(Money::zero(self.currency()), |sum, l| sum.checked_add(l.line_total))
            .map_err(Into::into)
    }

    /// One seller's parcel: the subtotal and weight of their lines.
    fn parcel(&self, seller_id: &str) -> Result<Parcel> {
        let mut subtotal = Money::zero(self.currency());
        let mut weight = Some(0u64);
        for line in self.lines.iter().filter(|l| l.seller_id == seller_id) {
            subtotal = subtotal.checked_add(line.line_total)?;
            let unit = self.weights.get(&line.sku).copied().flatten();
            weight = weight.zip(unit).map(|(w, u)| w + u64::from(u) * u64::from(line.quantity));
        }
        Ok(Parcel { subtotal, weight_grams: weight })
    }

    /// The option of `method` at `amount`, its tax computed under the rules.
    fn option(&self, method: &ShippingMethod, amount: Money) -> QuoteOption {
        let line = self.shipping_line(method, amount);
        QuoteOption {
            method_id: method.method_id.clone(),
            name: method.name.clone(),
            amount,
            tax: line.tax,
            min_days: method.min_days,
            max_days: method.max_days,
        }
    }

    fn shipping_line(&self, method: &ShippingMethod, amount: Money) -> ShippingLine {
        pricing::shipping_line(
            &self.rules,
            &method.seller_id,
            method.method_id.clone(),
            &method.name,
            amount,
            &method.tax_class,
            (method.min_days, method.max_days),
        )
    }

    /// One seller part's options priced from the table for `country`, and its carrier-rated methods still to
    /// be asked (with what to ask).
    fn table_options<'m>(
        &self,
        seller_id: &str,
        methods: &'m [ShippingMethod],
        address: &ShippingAddress,
    ) -> Result<(Vec<QuoteOption>, Vec<CarrierAsk<'m>>)> {
        let parcel = self.parcel(seller_id)?;
        let mut options = Vec::new();
        let mut ask = Vec::new();
        for method in methods.iter().filter(|m| m.serves(&address.country)) {
            match method.price(&parcel) {
                Some(RatePrice::Table(amount)) => options.push(self.option(method, amount)),
                Some(RatePrice::Carrier { carrier, service }) => {
                    let request = CarrierRateRequest {
                        carrier,
                        service,
                        seller_id: seller_id.to_owned(),
                        origin: None,
                        destination: address.clone(),
                        weight_grams: parcel.weight_grams.unwrap_or(0),
                        currency: parcel.subtotal.currency,
                    };
                    ask.push((method, request));
                }
                None => {}
            }
        }
        Ok((options, ask))
    }

    /// A seller part of `options`, cheapest first; none at all for a seller with methods is `not_shippable`.
    fn part(
        seller_id: &str,
        methods: &[ShippingMethod],
        mut options: Vec<QuoteOption>,
        country: &str,
    ) -> Result<QuotePart> {
        if options.is_empty() && !methods.is_empty() {
            return Err(shipping::not_shippable(seller_id, country));
        }
        options.sort_by(|a, b| a.amount.amount.cmp(&b.amount.amount).then_with(|| a.method_id.cmp(&b.method_id)));
        Ok(QuotePart { seller_id: seller_id.to_owned(), options })
    }

    /// Every seller part's options for `address`, cheapest first, carrier rates asked of `carriers` all at once
    /// (so a quote waits for its slowest carrier, not their sum). A carrier that fails leaves its option out.
    pub async fn options(
        &self,
        address: &ShippingAddress,
        carriers: &impl ShippingRateProvider,
        warehouses: &impl WarehouseReader,
    ) -> Result<Vec<QuotePart>> {
        let mut tables = Vec::with_capacity(self.methods.len());
        let mut asks = Vec::new();
        for (seller_id, methods) in &self.methods {
            let (options, ask) = self.table_options(seller_id, methods, address)?;
            asks.extend(ask.into_iter().map(|(method, request)| (tables.len(), method, request)));
            tables.push((seller_id, methods, options));
        }
        if !asks.is_empty() {
            // Carriers price from where the parcel leaves: the warehouse nearest the address (read only when a
            // carrier is asked).
            let list = warehouses.list_warehouses().await?;
            let origin = rank_warehouses(&list, Some(&address.destination())).first().map(|w| w.location.clone());
            for (_, _, request) in &mut asks {
                request.origin = origin.clone();
            }
        }
        let rates = futures::future::join_all(asks.iter().map(|(_, _, request)| carriers.rate(request))).await;
        for ((part, method, _), rate) in asks.iter().zip(rates) {
            match rate {
                Ok(Some(amount)) => tables[*part].2.push(self.option(method, amount)),
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(method_id = %method.method_id, error = %err, "carrier rate unavailable: option left out");
                }
            }
        }
        tables
            .into_iter()
            .map(|(seller_id, methods, options)| Self::part(seller_id, methods, options, &address.country))
            .collect()
    }

    /// The order's charges: per seller part, the option chosen in `quote` (or its cheapest), or without a quote
    /// the cheapest table-rate option for `address` (checkout never asks a carrier).
    pub fn charges(&self, address: &ShippingAddress, choice: Option<(&ShippingChoice, &Quote)>) -> Result<Charges> {
        let parts = match choice {
            Some((_, quote)) => quote.parts.clone(),
            None => self
                .methods
                .iter()
                .map(|(seller_id, methods)| {
                    let (options, _) = self.table_options(seller_id, methods, address)?;
                    Self::part(seller_id, methods, options, &address.country)
                })
                .collect::<Result<_>>()?,
        };
        let mut shipping = Vec::new();
        for part in &parts {
            let Some(methods) = self.methods.get(&part.seller_id) else { continue };
            if methods.is_empty() {
                continue;
            }
            let wanted = choice.and_then(|(c, _)| c.methods.get(&part.seller_id));
            let option = match wanted {
                Some(method_id) => {
                    part.options.iter().find(|o| o.method_id.as_str() == method_id).ok_or_else(|| {
                        DomainError::validation(
                            format!("shipping.methods.{}", part.seller_id),
                            "is not an option of the quote for this seller",
                        )
                    })?
                }
                None => shipping::cheapest(&part.options)
                    .ok_or_else(|| shipping::not_shippable(&part.seller_id, &address.country))?,
            };
            let method = methods
                .iter()
                .find(|m| m.method_id == option.method_id)
                .ok_or_else(|| quote_stale("a shipping method of the quote is gone"))?;
            shipping.push(self.shipping_line(method, option.amount));
        }
        if let Some((choice, _)) = choice {
            if let Some(seller) = choice.methods.keys().find(|s| !self.methods.contains_key(*s)) {
                return Err(DomainError::validation(format!("shipping.methods.{seller}"), "has no lines in the cart"));
            }
        }
        Ok(Charges {
            shipping,
            prices_include_tax: self.rules.prices_include_tax,
            tax_region: self.rules.region.clone(),
        })
    }
}

/// 409 `quote_stale`.
fn quote_stale(why: &str) -> DomainError {
    DomainError::conflict(ErrorCode::QuoteStale, format!("{why}; ask for a new quote"))
}

/// Loads the quote `choice` names for `cart_id` and checks it against `priced` (409 `quote_stale` if it
/// is unknown, expired, or computed from anything that changed since).
pub async fn live_quote(
    quotes: &impl QuoteStore,
    cart_id: &str,
    choice: &ShippingChoice,
    priced: &PricedCart,
    now: DateTime<Utc>,
) -> Result<Quote> {
    let quote_id = QuoteId::parse(&choice.quote_id).map_err(|_| quote_stale("there is no such quote for this cart"))?;
    let quote = quotes
        .get_quote(cart_id, &quote_id)
        .await?
        .ok_or_else(|| quote_stale("there is no such quote for this cart"))?;
    if quote.is_expired(now) {
        return Err(quote_stale("the quote expired"));
    }
    if quote.fingerprint != priced.fingerprint {
        return Err(quote_stale("the cart, the address, a shipping rate or a tax table changed since the quote"));
    }
    Ok(quote)
}

/// The quote fingerprint: the cart id, every line (SKU, quantity, unit price, tax class, unit weight), the
/// address, every method of every seller in the cart (id and version) and the tax regions applied.
fn fingerprint(
    cart_id: &str,
    lines: &[OrderLine],
    weights: &BTreeMap<String, Option<u32>>,
    address: &ShippingAddress,
    methods: &BTreeMap<String, Vec<ShippingMethod>>,
    rules: &TaxRules,
) -> Result<String> {
    let mut parts = vec![cart_id.to_owned()];
    let mut sorted: Vec<&OrderLine> = lines.iter().collect();
    sorted.sort_by(|a, b| a.sku.cmp(&b.sku));
    for l in sorted {
        let weight = weights.get(&l.sku).copied().flatten().map_or("-".to_owned(), |w| w.to_string());
        parts.push(format!("{}|{}|{}|{}|{}", l.sku, l.quantity, l.unit_price, l.tax_class, weight));
    }
    parts.push(serde_json::to_string(address).map_err(DomainError::unexpected)?);
    for (seller, list) in methods {
        let ids: Vec<String> = list.iter().map(|m| format!("{}@{}", m.method_id, m.version)).collect();
        parts.push(format!("{seller}:{}", ids.join(",")));
    }
    parts.push(rules.fingerprint());
    Ok(shipping::fingerprint(&parts))
}

/// The caller's cart as untaxed order lines priced from the catalog, and the catalog's views of them.
pub async fn cart_lines(
    carts: &impl crate::ports::CartStore,
    catalog: &impl crate::ports::SkuCatalog,
    access: &commerce_domain::cart::CartAccess,
    cart_id: &str,
    now: DateTime<Utc>,
) -> Result<(Vec<OrderLine>, Vec<SkuView>, Vec<String>)> {
    let cart = carts.get_cart(cart_id).await?.ok_or_else(|| DomainError::not_found("cart"))?;
    cart.authorize(access, now)?;
    cart.require_active()?;
    if cart.lines.is_empty() {
        return Err(DomainError::validation("cart_id", "the cart is empty"));
    }
    let skus: Vec<String> = cart.lines.keys().cloned().collect();
    let views = catalog.variants_by_sku(&skus).await?;
    let mut lines = Vec::with_capacity(skus.len());
    for (sku, line) in &cart.lines {
        let view = views
            .iter()
            .find(|v| &v.sku == sku && v.is_purchasable())
            .ok_or_else(|| DomainError::conflict(ErrorCode::SkuUnavailable, format!("{sku} is not for sale")))?;
        lines.push(OrderLine::new(
            sku.clone(),
            view.product_id.clone(),
            view.seller_id.clone(),
            view.title.clone(),
            line.quantity,
            view.price,
        )?);
    }
    Ok((lines, views, cart.promotion_codes))
}

/// A carrier-rated method and what its carrier is asked.
type CarrierAsk<'m> = (&'m ShippingMethod, CarrierRateRequest);

/// What the quote use case reads and writes.
pub struct QuotePorts<'a, K, C, T, R, Q, W> {
    pub carts: &'a K,
    pub catalog: &'a C,
    pub tables: &'a T,
    pub carriers: &'a R,
    pub quotes: &'a Q,
    /// Where carrier-rated parcels ship from.
    pub warehouses: &'a W,
}

/// `POST /v1/carts/{cart_id}/quote`: the cart's shipping options and taxes for an address, kept 30 minutes.
#[tracing::instrument(skip_all, fields(cart_id = %cart_id))]
pub async fn quote_cart<K, C, T, R, Q, W>(
    ports: QuotePorts<'_, K, C, T, R, Q, W>,
    access: &commerce_domain::cart::CartAccess,
    cart_id: &commerce_domain::ids::CartId,
    request: QuoteRequest,
    now: DateTime<Utc>,
) -> Result<QuoteView>
where
    K: crate::ports::CartStore,
    C: crate::ports::SkuCatalog,
    T: PricingTables,
    R: ShippingRateProvider,
    Q: QuoteStore,
    W: WarehouseReader,
{
    request.shipping_address.validate()?;
    let (lines, views, _) = cart_lines(ports.carts, ports.catalog, access, cart_id, now).await?;
    let priced = PricedCart::price(ports.tables, cart_id, lines, &views, &request.shipping_address).await?;
    let parts = priced.options(&request.shipping_address, ports.carriers, ports.warehouses).await?;
    let quote = Quote {
        quote_id: QuoteId::generate(),
        cart_id: cart_id.to_string(),
        expires_at: now + Duration::seconds(shipping::QUOTE_TTL_SECONDS),
        subtotal: priced.subtotal()?,
        parts,
        fingerprint: priced.fingerprint.clone(),
    };
    ports.quotes.put_quote(&quote).await?;
    tracing::info!(quote_id = %quote.quote_id, "cart quoted");
    Ok(QuoteView {
        quote_id: quote.quote_id,
        expires_at: quote.expires_at,
        currency: quote.subtotal.currency,
        subtotal: quote.subtotal,
        prices_include_tax: priced.rules.prices_include_tax,
        parts: quote.parts,
    })
}
