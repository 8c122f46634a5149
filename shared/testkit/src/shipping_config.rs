//! In-memory tax regions and shipping methods with the DynamoDB adapter's observable rules: a write names the
//! version it replaces (none for a new item) and fails with 409 `version_conflict` when the stored one differs,
//! a seller's methods are found only under that seller. Also the sample configuration the handler tests and
//! the sample events use.

use chrono::{DateTime, TimeZone, Utc};
use commerce_app::ports::{ShippingMethodReader, ShippingMethodWriter, TaxRegionReader, TaxRegionWriter};
use commerce_demo::catalog::DEMO_SELLERS;
use commerce_domain::error::{DomainError, ErrorCode, Result};
use commerce_domain::ids::ShippingMethodId;
use commerce_domain::money::{Currency, Money};
use commerce_domain::shipping::{ShippingMethod, ShippingMethodInput, ShippingRate, WeightTier};
use commerce_domain::tax::{RegionCode, TaxRate, TaxRegion, TaxRegionInput};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// The first demo seller's standard method (US, CA; flat 5.99 USD) in [`sample_shipping`].
pub const STANDARD_METHOD_ID: &str = "shm_demo-standard";
/// The first demo seller's express method (US; weight tiers) in [`sample_shipping`].
pub const EXPRESS_METHOD_ID: &str = "shm_demo-express";
/// The second demo seller's method (US; free over 50 USD) in [`sample_shipping`].
pub const OTHER_SELLER_METHOD_ID: &str = "shm_demo-seller2-standard";

#[derive(Debug, Default)]
struct State {
    regions: BTreeMap<RegionCode, TaxRegion>,
    methods: BTreeMap<(String, ShippingMethodId), ShippingMethod>,
}

/// The in-memory tax and shipping configuration.
#[derive(Debug, Default)]
pub struct InMemoryShippingConfig {
    state: Mutex<State>,
}

impl InMemoryShippingConfig {
    pub fn new() -> Self {
        Self::default()
    }

    /// A configuration holding these regions and methods, written without checks.
    pub fn with(
        regions: impl IntoIterator<Item = TaxRegion>,
        methods: impl IntoIterator<Item = ShippingMethod>,
    ) -> Self {
        let config = Self::new();
        {
            let mut state = config.lock();
            for region in regions {
                state.regions.insert(region.region.clone(), region);
            }
            for method in methods {
                state.methods.insert((method.seller_id.clone(), method.method_id.clone()), method);
            }
        }
        config
    }

    /// A snapshot of a stored region.
    pub fn stored_region(&self, code: &str) -> Option<TaxRegion> {
        self.lock().regions.values().find(|r| r.region.as_str() == code).cloned()
    }

    /// A snapshot of a stored method, whoever's it is.
    pub fn stored_method(&self, method_id: &str) -> Option<ShippingMethod> {
        self.lock().methods.values().find(|m| m.method_id.as_str() == method_id).cloned()
    }

    /// Replaces a region as an admin's write would, without checks.
    pub fn replace_region(&self, region: TaxRegion) {
        self.lock().regions.insert(region.region.clone(), region);
    }

    /// Replaces a method as its seller's write would, without checks.
    pub fn replace_method(&self, method: ShippingMethod) {
        self.lock().methods.insert((method.seller_id.clone(), method.method_id.clone()), method);
    }

    /// How many methods are stored, every seller's.
    pub fn method_count(&self) -> usize {
        self.lock().methods.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Whether a write expecting `expected` (`None`: a new item) may replace an item stored at `stored`.
fn version_matches(stored: Option<u64>, expected: Option<u64>) -> Result<()> {
    if stored == expected {
        Ok(())
    } else {
        Err(DomainError::conflict(ErrorCode::VersionConflict, "changed concurrently; retry"))
    }
}

impl TaxRegionReader for InMemoryShippingConfig {
    async fn list_tax_regions(&self) -> Result<Vec<TaxRegion>> {
        Ok(self.lock().regions.values().cloned().collect())
    }
}

impl TaxRegionWriter for InMemoryShippingConfig {
    async fn put_tax_region(&self, region: &TaxRegion, expected_version: Option<u64>) -> Result<()> {
        let mut state = self.lock();
        version_matches(state.regions.get(&region.region).map(|r| r.version), expected_version)?;
        state.regions.insert(region.region.clone(), region.clone());
        Ok(())
    }
}

impl ShippingMethodReader for InMemoryShippingConfig {
    async fn list_shipping_methods(&self, seller_id: &str) -> Result<Vec<ShippingMethod>> {
        Ok(self.lock().methods.values().filter(|m| m.seller_id == seller_id).cloned().collect())
    }

    async fn get_shipping_method(
        &self,
        seller_id: &str,
        method_id: &ShippingMethodId,
    ) -> Result<Option<ShippingMethod>> {
        Ok(self.lock().methods.get(&(seller_id.to_owned(), method_id.clone())).cloned())
    }
}

impl ShippingMethodWriter for InMemoryShippingConfig {
    async fn put_shipping_method(&self, method: &ShippingMethod, expected_version: Option<u64>) -> Result<()> {
        let mut state = self.lock();
        let key = (method.seller_id.clone(), method.method_id.clone());
        version_matches(state.methods.get(&key).map(|m| m.version), expected_version)?;
        state.methods.insert(key, method.clone());
        Ok(())
    }

    async fn delete_shipping_method(&self, method: &ShippingMethod) -> Result<()> {
        let mut state = self.lock();
        let key = (method.seller_id.clone(), method.method_id.clone());
        version_matches(state.methods.get(&key).map(|m| m.version), Some(method.version))?;
        state.methods.remove(&key);
        Ok(())
    }
}

fn usd(amount: i64) -> Money {
    Money::new(amount, Currency::USD)
}

fn fixed_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).single().unwrap_or_default()
}

fn sample_region(code: &str, prices_include_tax: bool, rates: &[(&str, u32, &str)]) -> TaxRegion {
    let input = TaxRegionInput {
        prices_include_tax,
        shipping_taxable: true,
        rates: rates
            .iter()
            .map(|(class, rate_ppm, name)| TaxRate {
                tax_class: class.parse().unwrap_or_default(),
                rate_ppm: *rate_ppm,
                name: (*name).to_owned(),
            })
            .collect(),
        combinable: false,
    };
    let region = code.parse().unwrap_or_else(|err| panic!("sample region {code}: {err}"));
    TaxRegion::put(region, input, None, fixed_time()).unwrap_or_else(|err| panic!("sample region {code}: {err}"))
}

fn sample_method(id: &str, seller: &str, name: &str, countries: &[&str], rate: ShippingRate) -> ShippingMethod {
    let method_id = ShippingMethodId::parse(id).unwrap_or_else(|err| panic!("sample method {id}: {err}"));
    let input = ShippingMethodInput {
        name: name.to_owned(),
        countries: countries.iter().map(|c| (*c).to_owned()).collect(),
        rate,
        min_days: 2,
        max_days: 5,
        tax_class: None,
    };
    ShippingMethod::create(method_id, seller, input, &[], fixed_time())
        .unwrap_or_else(|err| panic!("sample method {id}: {err}"))
}

/// Regions `DE` (prices include 19 %, 7 % `reduced`) and `US-CA` (7.25 % on top), and three methods: the first
/// demo seller's [`STANDARD_METHOD_ID`] and [`EXPRESS_METHOD_ID`], the second's [`OTHER_SELLER_METHOD_ID`].
pub fn sample_shipping() -> InMemoryShippingConfig {
    let regions = [
        sample_region("DE", true, &[("standard", 190_000, "MwSt"), ("reduced", 70_000, "MwSt (ermäßigt)")]),
        sample_region("US-CA", false, &[("standard", 72_500, "CA sales tax")]),
    ];
    let tiers = ShippingRate::WeightTiers {
        tiers: vec![
            WeightTier { up_to_grams: 1_000, amount: usd(1_500) },
            WeightTier { up_to_grams: 5_000, amount: usd(2_900) },
        ],
    };
    let methods = [
        sample_method(
            STANDARD_METHOD_ID,
            DEMO_SELLERS[0],
            "Standard",
            &["US", "CA"],
            ShippingRate::Flat { amount: usd(599) },
        ),
        sample_method(EXPRESS_METHOD_ID, DEMO_SELLERS[0], "Express", &["US"], tiers),
        sample_method(
            OTHER_SELLER_METHOD_ID,
            DEMO_SELLERS[1],
            "Standard",
            &["US"],
            ShippingRate::FreeOver { amount: usd(499), threshold: usd(5_000) },
        ),
    ];
    InMemoryShippingConfig::with(regions, methods)
}

/// The tables behind a gate: the first two reads (of regions or of a seller's methods) finish before either
/// caller goes on, so two writers both act on the same version and race for the write.
pub struct ReadTogether {
    pub inner: InMemoryShippingConfig,
    barrier: tokio::sync::Barrier,
    reads: std::sync::atomic::AtomicUsize,
}

impl ReadTogether {
    pub fn new(inner: InMemoryShippingConfig) -> Self {
        Self { inner, barrier: tokio::sync::Barrier::new(2), reads: std::sync::atomic::AtomicUsize::new(0) }
    }

    async fn gate(&self) {
        if self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2 {
            self.barrier.wait().await;
        }
    }
}

impl TaxRegionReader for ReadTogether {
    async fn list_tax_regions(&self) -> Result<Vec<TaxRegion>> {
        let regions = self.inner.list_tax_regions().await;
        self.gate().await;
        regions
    }
}

impl TaxRegionWriter for ReadTogether {
    async fn put_tax_region(&self, region: &TaxRegion, expected_version: Option<u64>) -> Result<()> {
        self.inner.put_tax_region(region, expected_version).await
    }
}

impl ShippingMethodReader for ReadTogether {
    async fn list_shipping_methods(&self, seller_id: &str) -> Result<Vec<ShippingMethod>> {
        let methods = self.inner.list_shipping_methods(seller_id).await;
        self.gate().await;
        methods
    }

    async fn get_shipping_method(
        &self,
        seller_id: &str,
        method_id: &ShippingMethodId,
    ) -> Result<Option<ShippingMethod>> {
        self.inner.get_shipping_method(seller_id, method_id).await
    }
}

impl ShippingMethodWriter for ReadTogether {
    async fn put_shipping_method(&self, method: &ShippingMethod, expected_version: Option<u64>) -> Result<()> {
        self.inner.put_shipping_method(method, expected_version).await
    }

    async fn delete_shipping_method(&self, method: &ShippingMethod) -> Result<()> {
        self.inner.delete_shipping_method(method).await
    }
}
