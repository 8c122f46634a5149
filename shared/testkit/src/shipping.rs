//! In-memory shipping and tax tables, quotes and a scripted carrier: the fakes of `TaxRegionReader`,
//! `ShippingMethodReader`, `QuoteStore` and `ShippingRateProvider`, with the adapters' version rules.

use commerce_app::ports::{
    CarrierRateRequest, QuoteStore, ShippingMethodReader, ShippingMethodWriter, ShippingRateProvider, TaxRegionReader,
    TaxRegionWriter,
};
use commerce_domain::error::{DomainError, ErrorCode, Result};
use commerce_domain::ids::{QuoteId, ShippingMethodId};
use commerce_domain::money::Money;
use commerce_domain::shipping::{Quote, ShippingMethod};
use commerce_domain::tax::TaxRegion;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn version_conflict(what: &str) -> DomainError {
    DomainError::conflict(ErrorCode::VersionConflict, format!("the {what} changed concurrently; retry"))
}

/// Tax regions and shipping methods in memory.
#[derive(Debug, Default)]
pub struct InMemoryShippingTables {
    regions: Mutex<BTreeMap<String, TaxRegion>>,
    methods: Mutex<BTreeMap<(String, String), ShippingMethod>>,
}

impl InMemoryShippingTables {
    pub fn new() -> Self {
        Self::default()
    }

    /// Tables holding these regions and methods, written without checks.
    pub fn with(
        regions: impl IntoIterator<Item = TaxRegion>,
        methods: impl IntoIterator<Item = ShippingMethod>,
    ) -> Self {
        let tables = Self::new();
        for r in regions {
            lock(&tables.regions).insert(r.region.to_string(), r);
        }
        for m in methods {
            lock(&tables.methods).insert((m.seller_id.clone(), m.method_id.to_string()), m);
        }
        tables
    }

    /// Replaces a region or a method as an admin or seller would (version bumped), without checks.
    pub fn replace_region(&self, region: TaxRegion) {
        lock(&self.regions).insert(region.region.to_string(), region);
    }

    pub fn replace_method(&self, method: ShippingMethod) {
        lock(&self.methods).insert((method.seller_id.clone(), method.method_id.to_string()), method);
    }
}

impl TaxRegionReader for InMemoryShippingTables {
    async fn list_tax_regions(&self) -> Result<Vec<TaxRegion>> {
        Ok(lock(&self.regions).values().cloned().collect())
    }
}

impl TaxRegionWriter for InMemoryShippingTables {
    async fn put_tax_region(&self, region: &TaxRegion, expected_version: Option<u64>) -> Result<()> {
        let mut regions = lock(&self.regions);
        let stored = regions.get(region.region.as_str()).map(|r| r.version);
        if stored != expected_version {
            return Err(version_conflict("tax region"));
        }
        regions.insert(region.region.to_string(), region.clone());
        Ok(())
    }
}

impl ShippingMethodReader for InMemoryShippingTables {
    async fn list_shipping_methods(&self, seller_id: &str) -> Result<Vec<ShippingMethod>> {
        Ok(lock(&self.methods).values().filter(|m| m.seller_id == seller_id).cloned().collect())
    }

    async fn get_shipping_method(
        &self,
        seller_id: &str,
        method_id: &ShippingMethodId,
    ) -> Result<Option<ShippingMethod>> {
        Ok(lock(&self.methods).get(&(seller_id.to_owned(), method_id.to_string())).cloned())
    }
}

impl ShippingMethodWriter for InMemoryShippingTables {
    async fn put_shipping_method(&self, method: &ShippingMethod, expected_version: Option<u64>) -> Result<()> {
        let mut methods = lock(&self.methods);
        let key = (method.seller_id.clone(), method.method_id.to_string());
        if methods.get(&key).map(|m| m.version) != expected_version {
            return Err(version_conflict("shipping method"));
        }
        methods.insert(key, method.clone());
        Ok(())
    }

    async fn delete_shipping_method(&self, method: &ShippingMethod) -> Result<()> {
        let mut methods = lock(&self.methods);
        let key = (method.seller_id.clone(), method.method_id.to_string());
        if methods.get(&key).map(|m| m.version) != Some(method.version) {
            return Err(version_conflict("shipping method"));
        }
        methods.remove(&key);
        Ok(())
    }
}

/// Quotes in memory, keyed by cart and quote id.
#[derive(Debug, Default)]
pub struct InMemoryQuotes {
    quotes: Mutex<BTreeMap<(String, String), Quote>>,
}

impl InMemoryQuotes {
    pub fn new() -> Self {
        Self::default()
    }
}

impl QuoteStore for InMemoryQuotes {
    async fn put_quote(&self, quote: &Quote) -> Result<()> {
        lock(&self.quotes).insert((quote.cart_id.clone(), quote.quote_id.to_string()), quote.clone());
        Ok(())
    }

    async fn get_quote(&self, cart_id: &str, quote_id: &QuoteId) -> Result<Option<Quote>> {
        Ok(lock(&self.quotes).get(&(cart_id.to_owned(), quote_id.to_string())).cloned())
    }
}

/// A carrier answering from a script: per service, a rate (or `None`: no such service), or a transient
/// failure for the service `"down"`. Counts its calls.
#[derive(Debug, Default)]
pub struct ScriptedCarrier {
    pub rates: BTreeMap<String, Option<Money>>,
    calls: AtomicUsize,
}

impl ScriptedCarrier {
    pub fn new(rates: impl IntoIterator<Item = (&'static str, Option<Money>)>) -> Self {
        Self { rates: rates.into_iter().map(|(s, m)| (s.to_owned(), m)).collect(), calls: AtomicUsize::new(0) }
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl ShippingRateProvider for ScriptedCarrier {
    async fn rate(&self, request: &CarrierRateRequest) -> Result<Option<Money>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if request.service == "down" {
            return Err(DomainError::Transient("carrier unavailable".into()));
        }
        Ok(self.rates.get(&request.service).copied().flatten())
    }
}
