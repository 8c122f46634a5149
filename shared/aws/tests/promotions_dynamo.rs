//! Promotion uses under real concurrency, over the wire protocol against the local AWS endpoint in
//! `LOCAL_AWS_ENDPOINT` (the emulator): the orders and promotions adapters and the saga's use cases, racing.
//! After every scenario the counts are checked against the orders (`used` = confirmed orders holding a use,
//! `held` = pending ones, `used + held + remaining = limit`). Without the variable the tests print why and
//! pass without running.

use aws_sdk_dynamodb::types::ProjectionType;
use chrono::Utc;
use commerce_app::ports::{OrderReader, OrderWriter, PromotionReader, PromotionWriter};
use commerce_app::services::checkout::{self, update_order};
use commerce_app::services::promotions::{self, hold_promotions};
use commerce_aws::orders::DynamoOrders;
use commerce_aws::promotions::DynamoPromotions;
use commerce_domain::error::{DomainError, ErrorCode};
use commerce_domain::money::{Currency, Money};
use commerce_domain::order::{
    Actor, Customer, Order, OrderEventKind, OrderLine, OrderStatus, Redemption, ShippingAddress,
};
use commerce_domain::promotion::{DiscountClass, Promotion, Scope, Share, Usage};
use commerce_testkit::dynamo::{create_table, local_client, local_endpoint, unique_name};
use commerce_testkit::promotions::sample_promotion;
use futures::StreamExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Requests in flight at once: enough to race for the last uses, few enough that the one-process emulator
/// accepts every connection (a thousand at once time out connecting).
const IN_FLIGHT: usize = 48;

/// Runs the futures with at most `IN_FLIGHT` at a time; their outputs in order.
async fn join_all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    futures::stream::iter(futures).buffered(IN_FLIGHT).collect().await
}

struct Tables {
    orders: DynamoOrders,
    promotions: DynamoPromotions,
}

async fn tables() -> Option<Arc<Tables>> {
    let client = local_client(&local_endpoint()?).await;
    let (orders, promotions) = (unique_name("orders-promo-test"), unique_name("promotions-test"));
    let all = ProjectionType::All;
    create_table(&client, &orders, &[("gsi1", all.clone()), ("gsi2", all.clone()), ("gsi3", all.clone())]).await;
    create_table(&client, &promotions, &[("gsi1", all.clone()), ("gsi2", all)]).await;
    Some(Arc::new(Tables {
        orders: DynamoOrders::new(client.clone(), orders).with_promotions(promotions.clone()),
        promotions: DynamoPromotions::new(client, promotions),
    }))
}

fn usd(amount: i64) -> Money {
    Money::new(amount, Currency::USD)
}

/// A code promotion of `limit` uses (`per_customer` each), stored.
async fn promotion(t: &Tables, code: &str, limit: Option<u32>, per_customer: Option<u32>) -> Promotion {
    let id = commerce_domain::ids::PromotionId::generate().to_string();
    let mut p = sample_promotion(&id, Scope::Platform, Some(code));
    p.usage_limit = limit;
    p.per_customer_limit = per_customer;
    p.shards = commerce_domain::promotion::shard_count(limit);
    t.promotions.create_promotion(&p).await.unwrap();
    p
}

/// A pending order of `customer` using `p` (1,000 off a 10,000 line), stored.
async fn order(t: &Tables, p: &Promotion, customer: String) -> Order {
    let line = OrderLine::new("SKU-1", "prd_1", "seller-1", "Thing", 1, usd(10_000))
        .unwrap()
        .with_discounts(vec![Share { promotion_id: p.promotion_id.clone(), amount: 1_000 }]);
    let address = ShippingAddress {
        name: "Ada".into(),
        line1: "1 Main St".into(),
        line2: None,
        city: "Springfield".into(),
        region: None,
        postal_code: "62701".into(),
        country: "US".into(),
    };
    let redemption = Redemption {
        promotion_id: p.promotion_id.clone(),
        code: p.code.clone(),
        name: p.name.clone(),
        class: DiscountClass::Order,
        amount: usd(1_000),
        single_use: false,
        limited: p.usage_limit.is_some(),
        per_customer_limit: p.per_customer_limit,
        restore_on_cancel: p.restore_on_cancel,
        shards: p.shards,
    };
    let id = commerce_domain::ids::OrderId::generate().to_string();
    let customer = Customer { user_id: Some(customer), email: None };
    let order = Order::place(id, customer, "cart_1".into(), vec![line], address, Actor::shopper("u"), Utc::now())
        .unwrap()
        .with_promotions(vec![redemption])
        .unwrap();
    t.orders.create_order(&order).await.unwrap()
}

async fn hold(t: &Tables, order: &Order) -> Result<(), DomainError> {
    hold_promotions(&t.orders, &t.promotions, order.id(), Utc::now()).await
}

async fn confirm(t: &Tables, order: &Order) {
    checkout::confirm_order(&t.orders, order.id(), "pi_test", Utc::now()).await.unwrap();
}

/// What a failed checkout's compensation does to the order's promotions: claim it, release the held use.
async fn fail(t: &Tables, order: &Order) {
    assert!(checkout::claim_compensation(&t.orders, order.id(), Utc::now()).await.unwrap());
    update_order(&t.orders, order.id(), |o| promotions::release(o, Utc::now())).await.unwrap();
}

async fn cancel(t: &Tables, order: &Order) {
    update_order(&t.orders, order.id(), |o| {
        let mut changed = false;
        if o.status() != OrderStatus::Cancelled {
            o.record(OrderEventKind::Cancelled, Actor::shopper("u"), None, Utc::now())?;
            changed = true;
        }
        Ok(promotions::restore(o, Utc::now())? || changed)
    })
    .await
    .unwrap();
}

fn is_unavailable(result: &Result<(), DomainError>) -> bool {
    matches!(result, Err(DomainError::Conflict { code: ErrorCode::PromotionUnavailable, .. }))
}

/// The counts against what the orders say: `used` = confirmed and not given back, `held` = held, not yet
/// confirmed nor released.
async fn check_counts(t: &Tables, p: &Promotion, orders: &[Order]) -> Usage {
    let usage = t.promotions.usage(p).await.unwrap();
    let (mut used, mut held) = (0u64, 0u64);
    let stored = join_all(orders.iter().map(|o| t.orders.get_order(o.id()))).await;
    for o in stored {
        let o = o.unwrap().unwrap();
        let events: Vec<&OrderEventKind> = o.events().iter().map(|e| &e.kind).collect();
        let took = events.iter().any(|k| matches!(k, OrderEventKind::PromotionsHeld { .. }));
        let gone =
            events.iter().any(|k| matches!(k, OrderEventKind::PromotionsReleased | OrderEventKind::PromotionsRestored));
        let confirmed = events.iter().any(|k| matches!(k, OrderEventKind::Confirmed { .. }));
        match (took && !gone, confirmed) {
            (true, true) => used += 1,
            (true, false) => held += 1,
            _ => {}
        }
    }
    assert_eq!((usage.used, usage.held), (used, held), "the counts are the orders'");
    if let (Some(limit), Some(remaining)) = (p.usage_limit, usage.remaining) {
        assert_eq!(usage.used + usage.held + remaining, u64::from(limit), "{usage:?}");
    }
    usage
}

#[tokio::test]
async fn four_hundred_racing_holds_on_a_hundred_uses_take_exactly_a_hundred() {
    let Some(t) = tables().await else { return };
    let p = promotion(&t, "RACE-100", Some(100), None).await;
    let orders = join_all((0..400).map(|n| {
        let (t, p) = (t.clone(), p.clone());
        async move { order(&t, &p, format!("customer-{n}")).await }
    }))
    .await;
    let started = std::time::Instant::now();
    let holds = join_all(orders.iter().map(|o| {
        let t = t.clone();
        let o = o.clone();
        async move { hold(&t, &o).await }
    }))
    .await;
    println!("400 holds in {:?}", started.elapsed());
    assert_eq!(holds.iter().filter(|h| h.is_ok()).count(), 100);
    assert_eq!(
        holds.iter().filter(|h| is_unavailable(h)).count(),
        300,
        "{:?}",
        holds.iter().find(|h| h.is_err() && !is_unavailable(h))
    );
    // The winners confirm (a loser's compensation moves no count: its hold never happened).
    join_all(orders.iter().zip(&holds).filter(|(_, h)| h.is_ok()).map(|(o, _)| confirm(&t, o))).await;
    let usage = check_counts(&t, &p, &orders).await;
    assert_eq!((usage.used, usage.held, usage.remaining), (100, 0, Some(0)));
}

#[tokio::test]
async fn one_customer_racing_fifty_checkouts_with_a_limit_of_one_gets_one() {
    let Some(t) = tables().await else { return };
    let p = promotion(&t, "ONCE-EACH", None, Some(1)).await;
    let orders = join_all((0..50).map(|_| order(&t, &p, "the-customer".into()))).await;
    let holds = join_all(orders.iter().map(|o| hold(&t, o))).await;
    assert_eq!(holds.iter().filter(|h| h.is_ok()).count(), 1);
    assert!(holds.iter().filter(|h| h.is_err()).all(is_unavailable));
    assert_eq!(t.promotions.customer_uses(&p.promotion_id, "user#the-customer").await.unwrap(), 1);
    let usage = check_counts(&t, &p, &orders).await;
    assert_eq!((usage.used, usage.held), (0, 1));
}

#[tokio::test]
async fn with_a_fifth_of_the_checkouts_failing_or_stranded_the_counts_never_pass_the_limit_and_end_exact() {
    let Some(t) = tables().await else { return };
    let p = promotion(&t, "FAULTY-100", Some(100), None).await;
    let orders: Vec<Order> = join_all((0..300).map(|n| order(&t, &p, format!("c-{n}")))).await;
    let done = Arc::new(AtomicBool::new(false));
    // A reader watching the counts while the checkouts run: used + held never above the limit.
    let watcher = {
        let (t, p, done) = (t.clone(), p.clone(), done.clone());
        tokio::spawn(async move {
            let mut reads = 0;
            while !done.load(Ordering::SeqCst) {
                let u = t.promotions.usage(&p).await.unwrap();
                assert!(u.used + u.held <= 100, "{u:?}");
                assert_eq!(u.used + u.held + u.remaining.unwrap(), 100, "{u:?}");
                reads += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            reads
        })
    };
    // Each checkout: hold; then one in five payments declines (compensation releases), one in ten is stranded
    // (the execution dies: the hold stays until the reaper), the rest confirm. A checkout that loses the race
    // for a use fails, as the saga would.
    let outcomes = join_all(orders.iter().enumerate().map(|(n, o)| {
        let t = t.clone();
        async move {
            match hold(&t, o).await {
                Ok(()) if n % 5 == 0 => fail(&t, o).await,
                Ok(()) if n % 10 == 3 => {}
                Ok(()) => confirm(&t, o).await,
                Err(e) => {
                    assert!(is_unavailable(&Err(e)));
                    fail(&t, o).await;
                }
            }
        }
    }))
    .await;
    assert_eq!(outcomes.len(), 300);
    let before_sweep = check_counts(&t, &p, &orders).await;
    // The sweep: every order still pending is compensated as the reaper does.
    join_all(orders.iter().map(|o| async {
        if t.orders.get_order(o.id()).await.unwrap().unwrap().status() == OrderStatus::Pending {
            fail(&t, o).await;
        }
    }))
    .await;
    done.store(true, Ordering::SeqCst);
    let reads = watcher.await.unwrap();
    let after = check_counts(&t, &p, &orders).await;
    println!("before the sweep {before_sweep:?}, after {after:?}, {reads} consistent reads meanwhile");
    assert_eq!(after.held, 0, "every stranded hold released");
    let confirmed = join_all(orders.iter().map(|o| t.orders.get_order(o.id()))).await;
    let confirmed =
        confirmed.iter().filter(|o| o.as_ref().unwrap().as_ref().unwrap().status() == OrderStatus::Confirmed).count();
    assert_eq!(after.used, confirmed as u64);
    assert!(before_sweep.held > 0, "some holds were stranded before the sweep");
}

#[tokio::test]
async fn cancellations_interleaved_with_new_checkouts_give_each_use_back_once() {
    let Some(t) = tables().await else { return };
    let p = promotion(&t, "CANCEL-ME", Some(300), Some(2)).await;
    let first: Vec<Order> = join_all((0..250).map(|n| order(&t, &p, format!("c-{n}")))).await;
    join_all(first.iter().map(|o| async {
        hold(&t, o).await.unwrap();
        confirm(&t, o).await;
    }))
    .await;
    let second: Vec<Order> = join_all((0..250).map(|n| order(&t, &p, format!("c-{n}")))).await;
    // 250 cancellations (each sent twice) and 250 new checkouts, interleaved.
    let gate = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let cancels = first.iter().flat_map(|o| [o.clone(), o.clone()]).map(|o| {
        let (t, gate) = (t.clone(), gate.clone());
        tokio::spawn(async move {
            let _slot = gate.acquire().await.unwrap();
            cancel(&t, &o).await
        })
    });
    let checkouts = second.iter().cloned().map(|o| {
        let (t, gate) = (t.clone(), gate.clone());
        tokio::spawn(async move {
            let _slot = gate.acquire().await.unwrap();
            match hold(&t, &o).await {
                Ok(()) => confirm(&t, &o).await,
                Err(e) => {
                    assert!(is_unavailable(&Err(e)));
                    fail(&t, &o).await;
                }
            }
        })
    });
    // Interleaved: a cancellation, its repeat and a checkout in turn, so the semaphore hands out slots mixed.
    let (mut cancels, mut checkouts) =
        (cancels.collect::<Vec<_>>().into_iter(), checkouts.collect::<Vec<_>>().into_iter());
    let mut tasks = Vec::new();
    loop {
        let before = tasks.len();
        tasks.extend(cancels.next());
        tasks.extend(cancels.next());
        tasks.extend(checkouts.next());
        if tasks.len() == before {
            break;
        }
    }
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (t, p, done) = (t.clone(), p.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::SeqCst) {
                let u = t.promotions.usage(&p).await.unwrap();
                assert_eq!(u.used + u.held + u.remaining.unwrap(), 300, "{u:?}");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
    };
    for task in tasks {
        task.await.unwrap();
    }
    done.store(true, Ordering::SeqCst);
    watcher.await.unwrap();
    let all: Vec<Order> = first.iter().chain(&second).cloned().collect();
    let usage = check_counts(&t, &p, &all).await;
    assert_eq!(usage.held, 0);
    let new_confirmed = join_all(second.iter().map(|o| t.orders.get_order(o.id()))).await;
    let new_confirmed = new_confirmed
        .iter()
        .filter(|o| o.as_ref().unwrap().as_ref().unwrap().status() == OrderStatus::Confirmed)
        .count();
    assert_eq!(usage.used, new_confirmed as u64, "every cancelled order gave its use back, once");
    println!("{usage:?} after 500 cancellations and 250 checkouts");
}

#[tokio::test]
async fn codes_are_unique_across_promotions_and_a_lowered_limit_cannot_go_below_the_uses_taken() {
    let Some(t) = tables().await else { return };
    let p = promotion(&t, "UNIQUE-1", Some(3), None).await;
    let mut other = sample_promotion("prm_other", Scope::Platform, Some("UNIQUE-1"));
    other.usage_limit = Some(1);
    let taken = t.promotions.create_promotion(&other).await;
    assert!(matches!(taken, Err(DomainError::Conflict { code: ErrorCode::PromotionCodeTaken, .. })), "{taken:?}");
    let stored = t.promotions.add_codes(&p.promotion_id, &["ONE-A".into(), "UNIQUE-1".into(), "ONE-B".into()]).await;
    assert_eq!(stored.unwrap(), ["ONE-A", "ONE-B"], "a taken code is left out");
    let record = t.promotions.find_code("ONE-A").await.unwrap().unwrap();
    assert!(record.single_use && record.promotion_id == p.promotion_id && record.used_by.is_none());
    let o = order(&t, &p, "c-1".into()).await;
    hold(&t, &o).await.unwrap();
    let o2 = order(&t, &p, "c-2".into()).await;
    hold(&t, &o2).await.unwrap();
    let mut lower = p.clone();
    lower.usage_limit = Some(1);
    lower.version += 1;
    let refused = t.promotions.replace_promotion(&p, &lower).await;
    assert!(matches!(refused, Err(DomainError::Validation { ref field, .. }) if field == "usage_limit"), "{refused:?}");
    lower.usage_limit = Some(2);
    t.promotions.replace_promotion(&p, &lower).await.unwrap();
    let usage = t.promotions.usage(&lower).await.unwrap();
    assert_eq!((usage.held, usage.remaining), (2, Some(0)));
    let o3 = order(&t, &lower, "c-3".into()).await;
    assert!(is_unavailable(&hold(&t, &o3).await));
    assert_eq!(t.promotions.get_promotion(&p.promotion_id).await.unwrap().unwrap().version, 2);
}
