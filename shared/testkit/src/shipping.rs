//! In-memory quotes and a scripted carrier: the fakes of `QuoteStore` and `ShippingRateProvider` (the tax and
//! shipping tables' fake is `shipping_config::InMemoryShippingConfig`).

use commerce_app::ports::{CarrierRateRequest, QuoteStore, ShippingRateProvider};
use commerce_domain::error::{DomainError, Result};
use commerce_domain::ids::QuoteId;
use commerce_domain::money::Money;
use commerce_domain::shipping::Quote;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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
/// failure for the service `"down"`. Keeps what it was asked.
#[derive(Debug, Default)]
pub struct ScriptedCarrier {
    pub rates: BTreeMap<String, Option<Money>>,
    asked: Mutex<Vec<CarrierRateRequest>>,
}

impl ScriptedCarrier {
    pub fn new(rates: impl IntoIterator<Item = (&'static str, Option<Money>)>) -> Self {
        Self { rates: rates.into_iter().map(|(s, m)| (s.to_owned(), m)).collect(), asked: Mutex::default() }
    }

    pub fn calls(&self) -> usize {
        lock(&self.asked).len()
    }

    /// Every request it was asked, in order.
    pub fn asked(&self) -> Vec<CarrierRateRequest> {
        lock(&self.asked).clone()
    }
}

impl ShippingRateProvider for ScriptedCarrier {
    async fn rate(&self, request: &CarrierRateRequest) -> Result<Option<Money>> {
        lock(&self.asked).push(request.clone());
        if request.service == "down" {
            return Err(DomainError::Transient("carrier unavailable".into()));
        }
        Ok(self.rates.get(&request.service).copied().flatten())
    }
}
