//! In-memory promotions: promotions, codes and their counts, with the adapter's contract (a hold takes a use
//! only if one is left, the customer is under their limit and a single-use code is free; every change of the
//! counts happens with the order write that makes it). Attach it to `InMemoryOrders::with_promotions`.

use commerce_app::ports::{CodeRecord, HoldOutcome, PromotionReader, PromotionWriter};
use commerce_domain::catalog::{Page, PageLimit};
use commerce_domain::error::{DomainError, ErrorCode, Result};
use commerce_domain::order::{Redemption, UsageChange, UsageStep};
use commerce_domain::promotion::{Promotion, Scope, Usage};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    remaining: i64,
    held: i64,
    used: i64,
}

#[derive(Debug, Default)]
struct State {
    promotions: BTreeMap<String, Promotion>,
    codes: HashMap<String, CodeRecord>,
    counts: HashMap<String, Counts>,
    customers: HashMap<(String, String), u32>,
}

/// Promotions in memory. Clones share one state.
#[derive(Debug, Default, Clone)]
pub struct InMemoryPromotions {
    state: Arc<Mutex<State>>,
}

impl InMemoryPromotions {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies the count changes of one order write, all or nothing (what the adapter's transaction does).
    pub fn apply(&self, changes: &[UsageChange]) -> HoldOutcome {
        let mut state = self.lock();
        for change in changes.iter().filter(|c| c.step == UsageStep::Hold) {
            let r = &change.redemption;
            let counts = state.counts.get(&r.promotion_id).copied().unwrap_or_default();
            if r.limited && counts.remaining < 1 {
                return HoldOutcome::ShardEmpty { promotion_id: r.promotion_id.clone(), shard: change.shard };
            }
            if let (Some(limit), Some(customer)) = (r.per_customer_limit, &change.customer_key) {
                let uses = state.customers.get(&(r.promotion_id.clone(), customer.clone())).copied().unwrap_or(0);
                if uses >= limit {
                    return HoldOutcome::Unavailable { promotion_id: r.promotion_id.clone(), reason: "customer_limit" };
                }
            }
            let code_taken =
                r.code.as_ref().and_then(|c| state.codes.get(c)).is_some_and(|c| c.single_use && c.used_by.is_some());
            if r.single_use && code_taken {
                return HoldOutcome::Unavailable { promotion_id: r.promotion_id.clone(), reason: "code_used" };
            }
        }
        for change in changes {
            apply_one(&mut state, change);
        }
        HoldOutcome::Held
    }

    /// `(used, held, remaining)` of a promotion.
    pub fn counts(&self, promotion_id: &str) -> (i64, i64, i64) {
        let c = self.lock().counts.get(promotion_id).copied().unwrap_or_default();
        (c.used, c.held, c.remaining)
    }
}

fn apply_one(state: &mut State, change: &UsageChange) {
    let r: &Redemption = &change.redemption;
    let limited = i64::from(r.limited);
    let counts = state.counts.entry(r.promotion_id.clone()).or_default();
    let customer_delta: i64 = match change.step {
        UsageStep::Hold => {
            counts.remaining -= limited;
            counts.held += 1;
            1
        }
        UsageStep::Commit => {
            counts.held -= 1;
            counts.used += 1;
            0
        }
        UsageStep::Release => {
            counts.remaining += limited;
            counts.held -= 1;
            -1
        }
        UsageStep::Restore => {
            counts.remaining += limited;
            counts.used -= 1;
            -1
        }
    };
    if let (Some(_), Some(customer)) = (r.per_customer_limit, &change.customer_key) {
        let uses = state.customers.entry((r.promotion_id.clone(), customer.clone())).or_default();
        *uses = u32::try_from(i64::from(*uses) + customer_delta).unwrap_or(0);
    }
    if let (true, Some(code)) = (r.single_use, &r.code) {
        if let Some(record) = state.codes.get_mut(code) {
            match change.step {
                UsageStep::Hold => record.used_by = Some(change.order_id.clone()),
                UsageStep::Commit => {}
                UsageStep::Release | UsageStep::Restore => record.used_by = None,
            }
        }
    }
}

impl PromotionReader for InMemoryPromotions {
    async fn get_promotion(&self, promotion_id: &str) -> Result<Option<Promotion>> {
        Ok(self.lock().promotions.get(promotion_id).cloned())
    }

    async fn find_code(&self, code: &str) -> Result<Option<CodeRecord>> {
        Ok(self.lock().codes.get(code).cloned())
    }

    async fn automatic_promotions(&self, sellers: &[String]) -> Result<Vec<Promotion>> {
        Ok(self
            .lock()
            .promotions
            .values()
            .filter(|p| p.code.is_none())
            .filter(|p| match &p.scope {
                Scope::Platform => true,
                Scope::Seller { seller_id } => sellers.contains(seller_id),
            })
            .cloned()
            .collect())
    }

    async fn usage(&self, promotion: &Promotion) -> Result<Usage> {
        let c = self.lock().counts.get(&promotion.promotion_id).copied().unwrap_or_default();
        Ok(Usage {
            used: u64::try_from(c.used).unwrap_or(0),
            held: u64::try_from(c.held).unwrap_or(0),
            remaining: promotion.usage_limit.map(|_| u64::try_from(c.remaining).unwrap_or(0)),
        })
    }

    async fn shards_with_uses(&self, redemption: &Redemption) -> Result<Vec<u32>> {
        let c = self.lock().counts.get(&redemption.promotion_id).copied().unwrap_or_default();
        Ok(if !redemption.limited || c.remaining > 0 { (0..redemption.shards.max(1)).collect() } else { Vec::new() })
    }

    async fn customer_uses(&self, promotion_id: &str, customer_key: &str) -> Result<u32> {
        Ok(self.lock().customers.get(&(promotion_id.to_owned(), customer_key.to_owned())).copied().unwrap_or(0))
    }
}

impl PromotionWriter for InMemoryPromotions {
    async fn create_promotion(&self, promotion: &Promotion) -> Result<()> {
        let mut state = self.lock();
        if let Some(code) = &promotion.code {
            if state.codes.contains_key(code) {
                return Err(DomainError::conflict(ErrorCode::PromotionCodeTaken, "another promotion has this code"));
            }
            let record = CodeRecord {
                code: code.clone(),
                promotion_id: promotion.promotion_id.clone(),
                single_use: false,
                used_by: None,
            };
            state.codes.insert(code.clone(), record);
        }
        let remaining = i64::from(promotion.usage_limit.unwrap_or(0));
        state.counts.insert(promotion.promotion_id.clone(), Counts { remaining, ..Counts::default() });
        state.promotions.insert(promotion.promotion_id.clone(), promotion.clone());
        Ok(())
    }

    async fn replace_promotion(&self, current: &Promotion, next: &Promotion) -> Result<()> {
        let mut state = self.lock();
        if state.promotions.get(&current.promotion_id).map(|p| p.version) != Some(current.version) {
            return Err(DomainError::conflict(ErrorCode::VersionConflict, "the promotion changed; read it again"));
        }
        if let (Some(before), Some(after)) = (current.usage_limit, next.usage_limit) {
            let counts = state.counts.entry(current.promotion_id.clone()).or_default();
            let remaining = counts.remaining + i64::from(after) - i64::from(before);
            if remaining < 0 {
                return Err(DomainError::validation("usage_limit", "is below the uses already taken"));
            }
            counts.remaining = remaining;
        }
        state.promotions.insert(next.promotion_id.clone(), next.clone());
        Ok(())
    }

    async fn list_promotions(&self, scope: &Scope, limit: PageLimit, cursor: Option<&str>) -> Result<Page<Promotion>> {
        let mut items: Vec<Promotion> =
            self.lock().promotions.values().filter(|p| &p.scope == scope).cloned().collect();
        items.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.promotion_id.cmp(&a.promotion_id)));
        let start: usize = cursor.and_then(|c| c.parse().ok()).unwrap_or(0);
        let end = (start + limit.get() as usize).min(items.len());
        let next_cursor = (end < items.len()).then(|| end.to_string());
        Ok(Page { items: items.get(start..end).map(<[Promotion]>::to_vec).unwrap_or_default(), next_cursor })
    }

    async fn add_codes(&self, promotion_id: &str, codes: &[String]) -> Result<Vec<String>> {
        let mut state = self.lock();
        let mut stored = Vec::new();
        for code in codes {
            if state.codes.contains_key(code) {
                continue;
            }
            let record = CodeRecord {
                code: code.clone(),
                promotion_id: promotion_id.to_owned(),
                single_use: true,
                used_by: None,
            };
            state.codes.insert(code.clone(), record);
            stored.push(code.clone());
        }
        Ok(stored)
    }
}

/// The platform's sample promotion: code `WELCOME10`, 10 % off the order, unlimited, combines with shipping.
pub const PLATFORM_PROMOTION_ID: &str = "prm_01hplatformwelcome000000001";
/// The first demo seller's sample promotion: code `SELLER5`, 5 USD off each of their units, 50 uses, one per
/// customer.
pub const SELLER_PROMOTION_ID: &str = "prm_01hsellerfivedollars0000001";

impl InMemoryPromotions {
    /// Stores a promotion as is, with its code and all its uses left (test setup).
    pub fn insert(&self, promotion: Promotion) {
        let mut state = self.lock();
        if let Some(code) = &promotion.code {
            let record = CodeRecord {
                code: code.clone(),
                promotion_id: promotion.promotion_id.clone(),
                single_use: false,
                used_by: None,
            };
            state.codes.insert(code.clone(), record);
        }
        let remaining = i64::from(promotion.usage_limit.unwrap_or(0));
        state.counts.insert(promotion.promotion_id.clone(), Counts { remaining, ..Counts::default() });
        state.promotions.insert(promotion.promotion_id.clone(), promotion);
    }
}

/// A promotion of the samples' shape (started a year ago, no end, active, version 1).
pub fn sample_promotion(promotion_id: &str, scope: Scope, code: Option<&str>) -> Promotion {
    use commerce_domain::promotion::{AppliesTo, Conditions, PromotionKind, PromotionValue};
    let at = chrono::Utc::now() - chrono::Duration::days(365);
    Promotion {
        promotion_id: promotion_id.to_owned(),
        scope,
        name: "Sample".into(),
        code: code.map(str::to_owned),
        kind: PromotionKind::Percent,
        value: Some(PromotionValue::Percent { percent_bp: 1000 }),
        applies_to: AppliesTo::default(),
        conditions: Conditions::default(),
        starts_at: at,
        ends_at: None,
        usage_limit: None,
        per_customer_limit: None,
        combines_with: vec![commerce_domain::promotion::DiscountClass::Shipping],
        priority: 0,
        restore_on_cancel: true,
        active: true,
        shards: commerce_domain::promotion::shard_count(None),
        version: 1,
        created_at: at,
        updated_at: at,
    }
}

/// The two sample promotions (see the constants).
pub fn sample_promotions() -> InMemoryPromotions {
    use commerce_domain::money::{Currency, Money};
    use commerce_domain::promotion::{AppliesTo, PromotionKind, PromotionValue};
    let store = InMemoryPromotions::new();
    let mut welcome = sample_promotion(PLATFORM_PROMOTION_ID, Scope::Platform, Some("WELCOME10"));
    welcome.name = "Welcome".into();
    store.insert(welcome);
    let seller = crate::http::DEMO_SELLERS[0].to_owned();
    let mut five = sample_promotion(SELLER_PROMOTION_ID, Scope::Seller { seller_id: seller }, Some("SELLER5"));
    five.name = "Five off".into();
    five.kind = PromotionKind::Fixed;
    five.value = Some(PromotionValue::Fixed { amount: Money::new(500, Currency::USD) });
    five.applies_to = AppliesTo { skus: vec!["LAP-0001-16GB-512GB".into()], ..AppliesTo::default() };
    five.usage_limit = Some(50);
    five.per_customer_limit = Some(1);
    five.shards = commerce_domain::promotion::shard_count(Some(50));
    store.insert(five);
    store
}
