//! The flash-sale adapter and services against DynamoDB over the wire (moto behind the serializing launcher,
//! `LOCAL_AWS_ENDPOINT`), with real concurrency. Skipped, saying why, when no endpoint is set.

use super::*;
use crate::dynamo::stock_key;
use aws_sdk_dynamodb::types::ProjectionType;
use commerce_app::services::flash_sale as service;
use commerce_domain::auth::{Caller, Role};
use commerce_domain::error::ErrorCode;
use commerce_domain::flash_sale::{check_sale, EntryStatus, NewFlashSale};
use commerce_domain::ids::{SaleId, TicketId};
use commerce_domain::money::{Currency, Money};
use commerce_testkit::dynamo::{create_table, local_client as client, local_endpoint as endpoint};
use std::sync::Arc;
mod batch;

/// Fresh tables and a stock item holding `on_hand` units of `sku` at `wh_east`.
async fn setup(client: &Client, sku: &str, on_hand: i64) -> DynamoFlashSales {
    let suffix = ulid::Ulid::new().to_string().to_lowercase();
    let (flash, inventory) = (format!("flash-{suffix}"), format!("inventory-{suffix}"));
    create_table(client, &flash, &[("gsi1", ProjectionType::All), ("gsi2", ProjectionType::All)]).await;
    create_table(client, &inventory, &[]).await;
    let mut item = stock_key(sku, "wh_east");
    for (name, value) in [
        ("on_hand", on_hand),
        ("reserved", 0),
        ("safety", 0),
        ("sold", 0),
        ("received", on_hand),
        ("adjustments", 0),
        ("free", on_hand),
        ("avail", on_hand),
    ] {
        item.insert(name.into(), n(value));
    }
    item.insert("sku".into(), s(sku));
    item.insert("warehouse_id".into(), s("wh_east"));
    client.put_item().table_name(&inventory).set_item(Some(item)).send().await.unwrap();
    DynamoFlashSales::new(client.clone(), flash, inventory)
}

async fn stock(store: &DynamoFlashSales, sku: &str) -> HashMap<String, i64> {
    let item = store.inventory.get(stock_key(sku, "wh_east")).await.unwrap().unwrap();
    ["on_hand", "reserved", "sold", "received", "adjustments", "free", "avail", "flash", "flash_sold"]
        .into_iter()
        .map(|k| (k.to_owned(), num(&item, k)))
        .collect()
}

fn assert_stock_ledger(level: &HashMap<String, i64>) {
    assert_eq!(
        level["free"] + level["reserved"] + level["sold"],
        level["received"] + level["adjustments"],
        "{level:?}"
    );
    assert_eq!(level["free"], level["on_hand"] - level["reserved"], "{level:?}");
}

fn shopper(id: &str) -> Caller {
    Caller { user_id: id.into(), email: None, roles: vec![Role::Shopper] }
}

/// A live sale with one lane per shard (so a lane's entries meet on one shard item); [`live_sale_with_lanes`]
/// for more.
fn live_sale(sku: &str, units: u32, shards: u32, limit: u32, hold_seconds: u32) -> FlashSale {
    live_sale_with_lanes(sku, units, shards, shards, limit, hold_seconds)
}

fn live_sale_with_lanes(sku: &str, units: u32, shards: u32, lanes: u32, limit: u32, hold_seconds: u32) -> FlashSale {
    let now = Utc::now();
    NewFlashSale {
        sku: sku.into(),
        units,
        price: Money::new(500, Currency::USD),
        starts_at: now - Duration::seconds(1),
        ends_at: now + Duration::hours(1),
        per_customer_limit: limit,
        shards: Some(shards),
        lanes: Some(lanes),
        hold_seconds: Some(hold_seconds),
        warehouse_id: None,
    }
    .into_sale(commerce_domain::ids::new_id("fs"), "seller".into(), "wh_east".into(), now, 160)
}

/// Writes waiting tickets for `buyers` distinct customers, returning their queue messages.
async fn enter_all(store: &DynamoFlashSales, sale: &FlashSale, buyers: usize) -> Vec<EntryMessage> {
    let mut messages = Vec::new();
    for i in 0..buyers {
        let ticket =
            Ticket::waiting(format!("ftk_{i:06}"), sale.sale_id.clone(), format!("c{i}"), i as u64 + 1, Utc::now());
        assert_eq!(
            store.create_ticket(&ticket, sale.per_customer_limit, Duration::zero()).await.unwrap(),
            EntryOutcome::Created
        );
        messages.push(EntryMessage::from(&ticket));
    }
    messages
}

#[tokio::test]
async fn allocation_moves_units_and_refuses_more_than_available() {
    let Some(endpoint) = endpoint() else { return };
    let store = setup(&client(&endpoint).await, "SKU-A", 100).await;
    let sale = live_sale("SKU-A", 60, 3, 1, 600);
    store.create_sale(&sale).await.unwrap();
    let level = stock(&store, "SKU-A").await;
    assert_eq!((level["avail"], level["reserved"], level["flash"], level["on_hand"]), (40, 60, 60, 100));
    assert_stock_ledger(&level);
    assert_eq!(store.shard_units(&sale).await.unwrap(), vec![20, 20, 20]);
    assert_eq!(store.available_by_warehouse("SKU-A").await.unwrap(), vec![("wh_east".to_owned(), 40)]);
    let too_big = live_sale("SKU-A", 41, 1, 1, 600);
    assert!(matches!(store.create_sale(&too_big).await, Err(DomainError::OutOfStock { .. })));
    assert!(store.get_sale(&too_big.sale_id).await.unwrap().is_none(), "nothing of a refused sale is written");
    assert_eq!(stock(&store, "SKU-A").await["avail"], 40);
}

#[tokio::test]
async fn concurrent_workers_sell_exactly_the_units_and_close_the_queue() {
    let Some(endpoint) = endpoint() else { return };
    let store = setup(&client(&endpoint).await, "SKU-B", 100).await;
    let sale = live_sale("SKU-B", 40, 4, 1, 600);
    store.create_sale(&sale).await.unwrap();
    let messages = enter_all(&store, &sale, 200).await;
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for chunk in messages.chunks(25) {
        let (store, chunk) = (store.clone(), chunk.to_vec());
        tasks.push(tokio::spawn(async move {
            let state = service::AdmissionState::default();
            let mut outcomes = Vec::new();
            for batch in chunk.chunks(5) {
                let (results, _) = service::admit_batch(&*store, &*store, &*store, &state, batch, Utc::now()).await;
                outcomes.extend(results.into_iter().map(|r| r.unwrap()));
            }
            outcomes
        }));
    }
    let mut won = 0;
    let mut sold_out = 0;
    for task in tasks {
        for outcome in task.await.unwrap() {
            match outcome {
                service::Admission::Won => won += 1,
                service::Admission::SoldOut => sold_out += 1,
                service::Admission::Skipped => {}
            }
        }
    }
    assert_eq!((won, sold_out), (40, 160));
    let snapshot = store.snapshot(&sale.sale_id).await.unwrap().unwrap();
    assert_eq!(check_sale(&snapshot), Vec::<String>::new());
    assert!(snapshot.gate.sold_out);
    assert_eq!(snapshot.shards, vec![0, 0, 0, 0]);
    // After sell-out, a new entry is refused by the gate alone.
    let cache = service::EntryCache::new(Duration::seconds(1));
    let queue = NoQueue;
    let policy = service::EntryPolicy { min_interval: Duration::zero() };
    let entrance = service::Entrance { sales: &*store, cache: &cache, queue: &queue, policy };
    let err =
        service::enter(&entrance, &shopper("late"), &SaleId::parse(&sale.sale_id).unwrap(), Some("k"), Utc::now())
            .await
            .unwrap_err();
    assert!(matches!(err, DomainError::Gone { code: ErrorCode::SoldOut, .. }), "{err:?}");
}

/// A queue that must not be used.
struct NoQueue;

impl WaitingRoom for NoQueue {
    async fn enqueue(&self, _: &Ticket, _: u32) -> Result<()> {
        panic!("nothing may be enqueued here")
    }
}

#[tokio::test]
async fn per_customer_limit_holds_under_concurrent_entries_and_retries() {
    let Some(endpoint) = endpoint() else { return };
    let store = Arc::new(setup(&client(&endpoint).await, "SKU-C", 10).await);
    let sale = live_sale("SKU-C", 10, 2, 2, 600);
    store.create_sale(&sale).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..12 {
        let (store, sale_id) = (store.clone(), sale.sale_id.clone());
        tasks.push(tokio::spawn(async move {
            let ticket = Ticket::waiting(format!("ftk_same{i:03}"), sale_id, "alice".into(), 1, Utc::now());
            store.create_ticket(&ticket, 2, Duration::zero()).await.unwrap()
        }));
    }
    let mut created = 0;
    for task in tasks {
        match task.await.unwrap() {
            EntryOutcome::Created => created += 1,
            EntryOutcome::LimitReached => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(created, 2);
    let retry = Ticket::waiting("ftk_same000".into(), sale.sale_id.clone(), "alice".into(), 9, Utc::now());
    let first_created = store.get_ticket("ftk_same000").await.unwrap().is_some();
    let outcome = store.create_ticket(&retry, 2, Duration::zero()).await.unwrap();
    if first_created {
        assert!(matches!(outcome, EntryOutcome::Existing(t) if t.position == 1), "a retry replays the ticket");
    }
    let rate = Ticket::waiting("ftk_bob1".into(), sale.sale_id.clone(), "bob".into(), 1, Utc::now());
    assert_eq!(store.create_ticket(&rate, 2, Duration::seconds(5)).await.unwrap(), EntryOutcome::Created);
    let again = Ticket { ticket_id: "ftk_bob2".into(), ..rate };
    assert_eq!(store.create_ticket(&again, 2, Duration::seconds(5)).await.unwrap(), EntryOutcome::TooSoon);
}

#[tokio::test]
async fn expired_hold_returns_the_unit_to_the_next_in_line_and_sale_reconciles_exactly() {
    let Some(endpoint) = endpoint() else { return };
    let store = setup(&client(&endpoint).await, "SKU-D", 10).await;
    // Two shards of one unit and one lane: the lane's three entries ask its home shard for three units, take
    // the one it has, then the other shard's; the third finds the sale sold out.
    let sale = live_sale_with_lanes("SKU-D", 2, 2, 1, 1, 60);
    store.create_sale(&sale).await.unwrap();
    let (state, t0) = two_win_and_the_third_is_sold_out(&store, &sale).await;

    // The first winner checks out; a replay of the same order answers the same unit.
    let unit = service::consume_hold(&store, &store, &store, "ftk_000000", "c0", "ord_1", t0).await.unwrap();
    assert_eq!((unit.sku.as_str(), unit.price.amount), ("SKU-D", 500));
    assert!(service::consume_hold(&store, &store, &store, "ftk_000000", "c0", "ord_1", t0).await.is_ok());
    assert!(service::consume_hold(&store, &store, &store, "ftk_000000", "c0", "ord_2", t0).await.is_err());

    // The second winner's hold runs out: the sweep returns the unit and reopens the gate.
    let later = t0 + Duration::seconds(61);
    assert!(matches!(
        service::consume_hold(&store, &store, &store, "ftk_000001", "c1", "ord_3", later).await,
        Err(DomainError::Gone { code: ErrorCode::HoldExpired, .. })
    ));
    let report = service::sweep(&store, &store, later).await.unwrap();
    assert_eq!(report.expired_holds, 1);
    let view = service::get_entry(
        &store,
        &store,
        &service::OpenGates::new(Duration::seconds(1)),
        &shopper("c1"),
        &SaleId::parse(&sale.sale_id).unwrap(),
        &TicketId::parse("ftk_000001").unwrap(),
        later,
    )
    .await
    .unwrap();
    assert_eq!(view.status, EntryStatus::Expired);
    let snapshot = store.snapshot(&sale.sale_id).await.unwrap().unwrap();
    assert!(!snapshot.gate.sold_out);
    assert_eq!(snapshot.shards.iter().sum::<i64>(), 1);
    assert_eq!(check_sale(&snapshot), Vec::<String>::new());

    // The next in line wins the returned unit.
    let next = enter_all_from(&store, &sale, 3).await;
    let (results, _) = service::admit_batch(&store, &store, &store, &state, &next, later).await;
    assert_eq!(results.into_iter().map(|r| r.unwrap()).collect::<Vec<_>>(), vec![service::Admission::Won]);

    // Checkout gives that unit back (payment failed), then the sale ends and reconciles.
    service::consume_hold(&store, &store, &store, "ftk_000003", "c3", "ord_4", later).await.unwrap();
    service::release_hold(&store, "ftk_000003", "ord_4", later).await.unwrap();
    service::release_hold(&store, "ftk_000003", "ord_4", later).await.unwrap();
    let just_ended = sale.ends_at + Duration::seconds(1);
    let report = service::sweep(&store, &store, just_ended).await.unwrap();
    assert_eq!(report.reconciled, 0, "takes of the last moments are settled before the sale reconciles");
    let after_end = sale.reconcilable_from();
    let report = service::sweep(&store, &store, after_end).await.unwrap();
    assert_eq!(report.reconciled, 1);
    let snapshot = store.snapshot(&sale.sale_id).await.unwrap().unwrap();
    assert_eq!(check_sale(&snapshot), Vec::<String>::new());
    let r = snapshot.sale.reconciliation.unwrap();
    assert_eq!((r.sold, r.returned), (1, 1));
    let level = stock(&store, "SKU-D").await;
    assert_stock_ledger(&level);
    assert_eq!((level["flash"], level["flash_sold"], level["sold"], level["avail"], level["on_hand"]), (0, 1, 1, 9, 9));
    assert_eq!(service::sweep(&store, &store, after_end).await.unwrap().sales, 0, "a reconciled sale is not live");
}

/// Three customers enter a two-unit sale and one batch admits them: two win, the third finds it sold out.
async fn two_win_and_the_third_is_sold_out(
    store: &DynamoFlashSales,
    sale: &FlashSale,
) -> (service::AdmissionState, DateTime<Utc>) {
    let messages = enter_all(store, sale, 3).await;
    let state = service::AdmissionState::default();
    let t0 = Utc::now();
    let (results, stats) = service::admit_batch(store, store, store, &state, &messages, t0).await;
    let outcomes: Vec<_> = results.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(outcomes, vec![service::Admission::Won, service::Admission::Won, service::Admission::SoldOut]);
    assert_eq!(stats[&sale.sale_id].admitted, 2);
    (state, t0)
}

async fn enter_all_from(store: &DynamoFlashSales, sale: &FlashSale, first: usize) -> Vec<EntryMessage> {
    let i = first;
    let ticket = Ticket::waiting(format!("ftk_{i:06}"), sale.sale_id.clone(), format!("c{i}"), 1, Utc::now());
    assert_eq!(store.create_ticket(&ticket, 1, Duration::zero()).await.unwrap(), EntryOutcome::Created);
    vec![EntryMessage::from(&ticket)]
}

/// The real adapter behind a worker that fails at chosen points: it dies right after its shard write
/// (`die_after_take`: the unit is taken and the lane's mark names the take, the ticket is not written), or it
/// cannot settle anything (`fail_settle`), so the invocation fails and SQS delivers the message again.
struct Faulty<'a> {
    store: &'a DynamoFlashSales,
    die_after_take: bool,
    fail_settle: bool,
    /// Settling this ticket's takes fails (the table throttles that partition, say).
    fail_settle_of: Option<String>,
}

fn dies_after_take(store: &DynamoFlashSales) -> Faulty<'_> {
    Faulty { store, die_after_take: true, fail_settle: false, fail_settle_of: None }
}

fn cannot_settle(store: &DynamoFlashSales) -> Faulty<'_> {
    Faulty { store, die_after_take: false, fail_settle: true, fail_settle_of: None }
}

impl FlashAdmissions for Faulty<'_> {
    async fn shard_units(&self, sale: &FlashSale) -> Result<Vec<i64>> {
        self.store.shard_units(sale).await
    }

    async fn shard_states(&self, sale: &FlashSale) -> Result<Vec<ShardState>> {
        self.store.shard_states(sale).await
    }

    async fn take_units(&self, sale: &FlashSale, shard: u32, takes: &[Take]) -> Result<TakeOutcome> {
        let outcome = self.store.take_units(sale, shard, takes).await?;
        if self.die_after_take && matches!(outcome, TakeOutcome::Taken { .. }) {
            return Err(DomainError::Transient("the worker died after taking the unit".into()));
        }
        Ok(outcome)
    }

    async fn settle(
        &self,
        sale: &FlashSale,
        shard: u32,
        take: &Take,
        hold: Option<DateTime<Utc>>,
    ) -> Result<Settlement> {
        if self.fail_settle || self.fail_settle_of.as_ref().is_some_and(|t| *t == take.ticket_id) {
            return Err(DomainError::Transient("the table is unreachable".into()));
        }
        self.store.settle(sale, shard, take, hold).await
    }

    async fn unsettled(&self, takes: &[(u32, Take)]) -> Result<Vec<(u32, Take)>> {
        self.store.unsettled(takes).await
    }

    async fn close_gate(&self, sale: &FlashSale, returns: u64) -> Result<bool> {
        self.store.close_gate(sale, returns).await
    }

    async fn move_units(&self, sale_id: &str, mv: Move) -> Result<bool> {
        self.store.move_units(sale_id, mv).await
    }

    async fn record(&self, sale_id: &str, instance: &str, stats: &AdmissionStats) -> Result<()> {
        self.store.record(sale_id, instance, stats).await
    }
}

/// The message as the queue delivers it again (same message id).
fn redelivered(message: &EntryMessage) -> EntryMessage {
    EntryMessage { redelivered: true, ..message.clone() }
}

/// The message as the queue first delivers it, with a queue message id.
fn delivered(message: &EntryMessage, message_id: &str) -> EntryMessage {
    EntryMessage { message_id: message_id.into(), ..message.clone() }
}

/// One batch of one message through `admissions`, with a fresh worker instance.
async fn admit_one_message(
    store: &DynamoFlashSales,
    admissions: &impl FlashAdmissions,
    message: &EntryMessage,
    now: DateTime<Utc>,
) -> Result<service::Admission> {
    let state = service::AdmissionState::default();
    let (mut results, _) =
        service::admit_batch(store, admissions, store, &state, std::slice::from_ref(message), now).await;
    results.remove(0)
}

async fn status_of(store: &DynamoFlashSales, ticket_id: &str) -> TicketStatus {
    store.get_ticket(ticket_id).await.unwrap().unwrap().status
}

async fn clean_snapshot(store: &DynamoFlashSales, sale: &FlashSale) -> SaleSnapshot {
    let snapshot = store.snapshot(&sale.sale_id).await.unwrap().unwrap();
    assert_eq!(check_sale(&snapshot), Vec::<String>::new(), "{snapshot:?}");
    snapshot
}

/// A sale of `units` in `shards` with two entries: the first message's worker died after its shard write, every
/// redelivery failed to settle, and the queue gave up on it after its fifth receive (dead-letter queue).
async fn first_message_gave_up_after_its_take(
    sku: &str,
    units: u32,
    shards: u32,
) -> Option<(DynamoFlashSales, FlashSale, EntryMessage, EntryMessage, DateTime<Utc>)> {
    let endpoint = endpoint()?;
    let store = setup(&client(&endpoint).await, sku, 10).await;
    let sale = live_sale(sku, units, shards, 1, 600);
    store.create_sale(&sale).await.unwrap();
    let entered = enter_all(&store, &sale, 2).await;
    let (first, second) = (delivered(&entered[0], "m-first"), delivered(&entered[1], "m-second"));
    let now = Utc::now();
    assert!(admit_one_message(&store, &dies_after_take(&store), &first, now).await.is_err());
    for _ in 0..4 {
        assert!(admit_one_message(&store, &cannot_settle(&store), &redelivered(&first), now).await.is_err());
    }
    Some((store, sale, first, second, now))
}

#[tokio::test]
async fn a_take_whose_message_gave_up_goes_to_its_ticket_when_the_lanes_next_entry_is_admitted() {
    let Some((store, sale, first, second, now)) = first_message_gave_up_after_its_take("SKU-G", 3, 1).await else {
        return;
    };
    assert_eq!(store.shard_units(&sale).await.unwrap(), vec![2], "the unit is taken, no ticket holds it");
    assert_eq!(status_of(&store, &first.ticket_id).await, TicketStatus::Waiting);

    // The lane's next entry takes from the same shard, wins, and settles the take before it: the first
    // ticket, still waiting while the sale is on, wins the unit taken for it.
    assert_eq!(admit_one_message(&store, &store, &second, now).await.unwrap(), service::Admission::Won);
    assert_eq!(status_of(&store, &first.ticket_id).await, TicketStatus::Won);
    assert_eq!(status_of(&store, &second.ticket_id).await, TicketStatus::Won);
    let totals = clean_snapshot(&store, &sale).await.totals();
    assert_eq!((totals.in_shards, totals.held), (1, 2));
}

#[tokio::test]
async fn a_take_whose_message_gave_up_survives_the_next_take_of_its_lane_dying_after_its_write() {
    let Some((store, sale, first, second, now)) = first_message_gave_up_after_its_take("SKU-M", 3, 1).await else {
        return;
    };
    // The lane's next entry takes from the same shard (replacing the first take's mark) and its worker dies
    // before settling anything; its redelivery settles both its own take and the one its write replaced.
    assert!(admit_one_message(&store, &dies_after_take(&store), &second, now).await.is_err());
    assert_eq!(store.shard_units(&sale).await.unwrap(), vec![1]);
    let outcome = admit_one_message(&store, &store, &redelivered(&second), now).await.unwrap();
    assert_eq!(outcome, service::Admission::Won);
    assert_eq!(status_of(&store, &first.ticket_id).await, TicketStatus::Won);
    let totals = clean_snapshot(&store, &sale).await.totals();
    assert_eq!((totals.in_shards, totals.held), (1, 2));
}

#[tokio::test]
async fn a_previous_take_that_cannot_be_settled_yet_is_retried_by_the_worker_instance() {
    let Some((store, sale, first, second, now)) = first_message_gave_up_after_its_take("SKU-L", 3, 1).await else {
        return;
    };
    let third = delivered(&enter_all_from(&store, &sale, 2).await[0], "m-third");
    // The lane's next admission wins its own unit but cannot settle the take before it: it does not fail (its
    // own take is settled), the instance keeps the other take and settles it with its next batch.
    let state = service::AdmissionState::default();
    let flaky = Faulty {
        store: &store,
        die_after_take: false,
        fail_settle: false,
        fail_settle_of: Some(first.ticket_id.clone()),
    };
    let (results, _) = service::admit_batch(&store, &flaky, &store, &state, &[second], now).await;
    assert_eq!(results.into_iter().map(|r| r.unwrap()).collect::<Vec<_>>(), vec![service::Admission::Won]);
    assert_eq!(status_of(&store, &first.ticket_id).await, TicketStatus::Waiting);
    let (results, _) = service::admit_batch(&store, &store, &store, &state, &[third], now).await;
    assert_eq!(results.into_iter().map(|r| r.unwrap()).collect::<Vec<_>>(), vec![service::Admission::Won]);
    assert_eq!(status_of(&store, &first.ticket_id).await, TicketStatus::Won);
    let totals = clean_snapshot(&store, &sale).await.totals();
    assert_eq!((totals.in_shards, totals.held), (0, 3));
}

#[tokio::test]
async fn a_last_unit_taken_by_a_worker_that_died_is_settled_before_the_queue_closes() {
    let Some((store, sale, first, second, now)) = first_message_gave_up_after_its_take("SKU-H", 1, 2).await else {
        return;
    };
    // Every shard reads empty: before closing the queue the worker settles the take the shards name.
    assert_eq!(admit_one_message(&store, &store, &second, now).await.unwrap(), service::Admission::SoldOut);
    assert_eq!(status_of(&store, &first.ticket_id).await, TicketStatus::Won);
    let snapshot = clean_snapshot(&store, &sale).await;
    assert!(snapshot.gate.sold_out);
    assert_eq!((snapshot.totals().held, snapshot.totals().sold_out), (1, 1));
}

#[tokio::test]
async fn a_duplicate_message_that_dies_before_giving_its_unit_back_leaves_nothing_stranded() {
    let Some(endpoint) = endpoint() else { return };
    let store = setup(&client(&endpoint).await, "SKU-I", 10).await;
    let sale = live_sale("SKU-I", 3, 1, 1, 600);
    store.create_sale(&sale).await.unwrap();
    let entered = enter_all(&store, &sale, 1).await;
    let now = Utc::now();
    let original = delivered(&entered[0], "m-original");
    assert_eq!(admit_one_message(&store, &store, &original, now).await.unwrap(), service::Admission::Won);
    // The entry is sent again after the queue's deduplication window (a client retry): another message for the
    // same ticket. Its worker takes a unit from the same shard, then dies before giving it back.
    let resend = delivered(&entered[0], "m-resend");
    assert!(admit_one_message(&store, &dies_after_take(&store), &resend, now).await.is_err());
    assert_eq!(store.shard_units(&sale).await.unwrap(), vec![1]);
    // Redelivered, it finds its take: the ticket won through the original message, so the unit goes back.
    let outcome = admit_one_message(&store, &store, &redelivered(&resend), now).await.unwrap();
    assert_eq!(outcome, service::Admission::Skipped);
    assert_eq!(store.shard_units(&sale).await.unwrap(), vec![2]);
    // Any later delivery of either message takes and gives nothing.
    for message in [redelivered(&resend), redelivered(&original)] {
        assert_eq!(admit_one_message(&store, &store, &message, now).await.unwrap(), service::Admission::Skipped);
    }
    let snapshot = clean_snapshot(&store, &sale).await;
    assert_eq!((snapshot.totals().in_shards, snapshot.totals().held), (2, 1));
    let won_by = store.get_ticket(&original.ticket_id).await.unwrap().unwrap().taken_by;
    assert_eq!(won_by, Some(Take::of(&original).message_key), "the ticket holds the original message's take");
}

#[tokio::test]
async fn the_schedule_settles_takes_left_behind_before_the_sale_reconciles_exactly() {
    let Some(endpoint) = endpoint() else { return };
    let store = setup(&client(&endpoint).await, "SKU-J", 10).await;
    let sale = live_sale("SKU-J", 2, 1, 1, 600);
    store.create_sale(&sale).await.unwrap();
    let entered = enter_all(&store, &sale, 2).await;
    let now = Utc::now();
    let original = delivered(&entered[0], "m-original");
    assert_eq!(admit_one_message(&store, &store, &original, now).await.unwrap(), service::Admission::Won);
    service::consume_hold(&store, &store, &store, &original.ticket_id, "c0", "ord_j1", now).await.unwrap();
    // A resend of the same entry takes the last unit, its worker dies, the message gives up; the other entry's
    // message gave up too, unsettled, after taking nothing. Nobody admits from this lane again.
    let resend = delivered(&entered[0], "m-resend");
    assert!(admit_one_message(&store, &dies_after_take(&store), &resend, now).await.is_err());
    assert_eq!(store.shard_units(&sale).await.unwrap(), vec![0]);

    // The sale ends. The schedule's audit gives the unit back (a waiting ticket no longer wins after the end);
    // the sale reconciles only after the grace period, with every unit accounted for.
    let ended = sale.ends_at + Duration::seconds(1);
    let report = service::sweep(&store, &store, ended).await.unwrap();
    assert_eq!((report.settled_takes, report.reconciled), (1, 0));
    assert_eq!(service::sweep(&store, &store, ended).await.unwrap().settled_takes, 0, "settled once");
    assert_eq!(store.shard_units(&sale).await.unwrap(), vec![1]);
    let report = service::sweep(&store, &store, sale.reconcilable_from()).await.unwrap();
    assert_eq!(report.reconciled, 1);
    let snapshot = clean_snapshot(&store, &sale).await;
    let r = snapshot.sale.reconciliation.unwrap();
    assert_eq!((r.sold, r.returned), (1, 1));
    let level = stock(&store, "SKU-J").await;
    assert_stock_ledger(&level);
    assert_eq!((level["flash"], level["flash_sold"], level["avail"]), (0, 1, 9));
}

#[tokio::test]
async fn a_whole_batch_redelivered_after_its_worker_timed_out_takes_nothing_again() {
    let Some(endpoint) = endpoint() else { return };
    let store = setup(&client(&endpoint).await, "SKU-R", 10).await;
    // One shard, so every take of the lane lands on the same shard item and the later takes of the batch
    // replace the lane marks of the earlier ones.
    let sale = live_sale("SKU-R", 5, 1, 1, 600);
    store.create_sale(&sale).await.unwrap();
    let entered = enter_all(&store, &sale, 5).await;
    let batch: Vec<EntryMessage> = entered[..3].to_vec();
    let now = Utc::now();

    // The worker admits the batch's entries (one take each: a batch of one), then hits its timeout before the
    // queue deletes the messages.
    let state = service::AdmissionState::default();
    for message in &batch {
        let (results, _) =
            service::admit_batch(&store, &store, &store, &state, std::slice::from_ref(message), now).await;
        assert_eq!(results.into_iter().map(|r| r.unwrap()).collect::<Vec<_>>(), vec![service::Admission::Won]);
    }
    let shard = &store.shard_states(&sale).await.unwrap()[0];
    assert!(!shard.takes.contains(&Take::of(&batch[0])), "the first take's mark was replaced: {shard:?}");

    // The batch comes back to another instance after the visibility timeout: every message is settled already,
    // so none takes another unit.
    let again: Vec<EntryMessage> = batch.iter().map(redelivered).collect();
    let (results, _) =
        service::admit_batch(&store, &store, &store, &service::AdmissionState::default(), &again, now).await;
    assert_eq!(results.into_iter().map(|r| r.unwrap()).collect::<Vec<_>>(), vec![service::Admission::Skipped; 3]);
    let totals = clean_snapshot(&store, &sale).await.totals();
    assert_eq!((totals.in_shards, totals.held, totals.waiting), (2, 3, 2));

    // The rest of the line buys the two units left, and the queue closes with nothing stranded.
    let rest: Vec<EntryMessage> = entered[3..].to_vec();
    let (results, _) =
        service::admit_batch(&store, &store, &store, &service::AdmissionState::default(), &rest, now).await;
    assert_eq!(results.into_iter().map(|r| r.unwrap()).collect::<Vec<_>>(), vec![service::Admission::Won; 2]);
    let totals = clean_snapshot(&store, &sale).await.totals();
    assert_eq!((totals.in_shards, totals.held), (0, 5));
}

#[tokio::test]
async fn a_batch_out_of_time_admits_its_first_entry_and_sends_the_rest_back_in_order() {
    let Some(endpoint) = endpoint() else { return };
    let store = setup(&client(&endpoint).await, "SKU-T", 10).await;
    let sale = live_sale_with_lanes("SKU-T", 8, 1, 2, 1, 600);
    store.create_sale(&sale).await.unwrap();
    let entered = enter_all(&store, &sale, 6).await;
    let state = service::AdmissionState::default();
    let (results, _) = service::admit_batch_until(
        &store,
        &store,
        &store,
        &state,
        &entered,
        Utc::now(),
        Some(std::time::Instant::now()),
    )
    .await;
    // The first step always runs: the first entry's lane takes its units together. Every entry of the other
    // lane goes back to the queue.
    let first_lane = sale.lane_of(&entered[0].ticket_id);
    let mut won = 0;
    for (message, result) in entered.iter().zip(&results) {
        if sale.lane_of(&message.ticket_id) == first_lane {
            assert_eq!(result.as_ref().ok(), Some(&service::Admission::Won));
            won += 1;
        } else {
            assert!(matches!(result, Err(DomainError::Transient(_))), "{results:?}");
        }
    }
    assert!(won < 6, "both lanes have entries");
    let totals = clean_snapshot(&store, &sale).await.totals();
    assert_eq!((totals.in_shards, totals.held, totals.waiting), (8 - won, won, 6 - won));
}

#[tokio::test]
async fn a_worker_killed_between_the_shard_write_and_the_ticket_write_loses_no_unit_on_redelivery() {
    let Some(endpoint) = endpoint() else { return };
    let store = setup(&client(&endpoint).await, "SKU-F", 10).await;
    let sale = live_sale("SKU-F", 3, 2, 1, 600);
    store.create_sale(&sale).await.unwrap();
    // Two entries in different lanes (message groups): SQS holds back the rest of a lane while one of its
    // messages waits for redelivery, so only other lanes' messages can be admitted in between.
    let entered = enter_all(&store, &sale, 8).await;
    let lane = |m: &EntryMessage| sale.lane_of(&m.ticket_id);
    let first = entered[0].clone();
    let other = entered.iter().find(|m| lane(m) != lane(&first)).expect("an entry in the other lane").clone();
    let third = entered.iter().find(|m| m.ticket_id != first.ticket_id && m.ticket_id != other.ticket_id).unwrap();
    let messages = [first, other, third.clone()];
    let now = Utc::now();

    // First delivery of the first two entries: each worker dies after its shard write.
    for message in &messages[..2] {
        let outcome = admit_one_message(&store, &dies_after_take(&store), message, now).await;
        assert!(matches!(outcome, Err(DomainError::Transient(_))), "{outcome:?}");
    }
    let snapshot = store.snapshot(&sale.sale_id).await.unwrap().unwrap();
    assert_eq!(snapshot.shards.iter().sum::<i64>(), 1, "two units taken, no ticket won yet");
    assert_eq!(snapshot.totals().waiting, 8);

    // The second entry is settled as sold out before its message comes back (a poll saw a closed gate).
    assert!(store
        .mark_sold_out(&Ticket::waiting(messages[1].ticket_id.clone(), sale.sale_id.clone(), "c1".into(), 0, now))
        .await
        .unwrap());

    // Redelivery: the first entry wins the unit already taken for it, exactly once; the second entry's unit
    // goes back to its shard; the third entry is admitted normally.
    let state = service::AdmissionState::default();
    let batch = vec![redelivered(&messages[0]), redelivered(&messages[1]), messages[2].clone()];
    let (results, stats) = service::admit_batch(&store, &store, &store, &state, &batch, now).await;
    let outcomes: Vec<_> = results.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(outcomes, vec![service::Admission::Won, service::Admission::Skipped, service::Admission::Won]);
    assert_eq!(stats[&sale.sale_id].admitted, 2);
    let snapshot = store.snapshot(&sale.sale_id).await.unwrap().unwrap();
    assert_eq!(check_sale(&snapshot), Vec::<String>::new());
    let totals = snapshot.totals();
    assert_eq!((totals.held, totals.sold_out, totals.waiting, totals.in_shards), (2, 1, 5, 1), "{snapshot:?}");
    let first = store.get_ticket(&messages[0].ticket_id).await.unwrap().unwrap();
    assert_eq!(first.status, TicketStatus::Won);
    assert!(first.shard.is_some());

    // The same message delivered yet again (the worker died after the ticket write, before the delete):
    // nothing more is taken.
    let (results, _) = service::admit_batch(&store, &store, &store, &state, &[redelivered(&messages[0])], now).await;
    assert_eq!(results.into_iter().map(|r| r.unwrap()).collect::<Vec<_>>(), vec![service::Admission::Skipped]);
    let again = store.snapshot(&sale.sale_id).await.unwrap().unwrap();
    assert_eq!((again.totals().in_shards, again.totals().held), (1, 2));
    assert_eq!(check_sale(&again), Vec::<String>::new());

    // The last unit sells and the queue closes with every shard empty.
    let rest: Vec<EntryMessage> =
        entered.iter().filter(|m| !messages.iter().any(|d| d.ticket_id == m.ticket_id)).cloned().collect();
    let (results, _) = service::admit_batch(&store, &store, &store, &state, &rest, now).await;
    let outcomes: Vec<_> = results.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(outcomes.iter().filter(|o| **o == service::Admission::Won).count(), 1, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| **o == service::Admission::SoldOut).count(), 4, "{outcomes:?}");
    let snapshot = store.snapshot(&sale.sale_id).await.unwrap().unwrap();
    assert!(snapshot.gate.sold_out);
    assert_eq!(check_sale(&snapshot), Vec::<String>::new());
    assert_eq!(snapshot.totals().held, 3);
}

#[tokio::test]
async fn workers_dying_at_random_under_concurrency_sell_every_unit_once_and_reconcile_exactly() {
    use rand::{Rng, SeedableRng};
    let Some(endpoint) = endpoint() else { return };
    let store = Arc::new(setup(&client(&endpoint).await, "SKU-K", 100).await);
    let sale = live_sale("SKU-K", 30, 4, 1, 600);
    store.create_sale(&sale).await.unwrap();
    let entered = enter_all(&store, &sale, 90).await;
    // One task per lane (the queue's message groups run concurrently, each in order): a message's first
    // delivery dies after its shard write one time in four; the queue then delivers it again, or, one time in
    // three, gives up on it (dead-letter queue) and moves on to the lane's next message.
    let mut lanes: Vec<Vec<EntryMessage>> = vec![Vec::new(); sale.lane_count() as usize];
    for (i, message) in entered.iter().enumerate() {
        let lane = sale.lane_of(&message.ticket_id) as usize;
        lanes[lane].push(delivered(message, &format!("m-{i}")));
    }
    let mut tasks = Vec::new();
    for (lane, messages) in lanes.into_iter().enumerate() {
        let (store, now) = (store.clone(), Utc::now());
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(lane as u64);
            let (mut died, mut gave_up) = (0, 0);
            for message in messages {
                let faulty = rng.gen_bool(0.25);
                let first = if faulty {
                    admit_one_message(&store, &dies_after_take(&store), &message, now).await
                } else {
                    admit_one_message(&store, &*store, &message, now).await
                };
                if first.is_err() {
                    died += 1;
                    if rng.gen_bool(1.0 / 3.0) {
                        gave_up += 1;
                        continue;
                    }
                    admit_one_message(&store, &*store, &redelivered(&message), now).await.unwrap();
                }
            }
            (died, gave_up)
        }));
    }
    let (mut died, mut gave_up) = (0, 0);
    for task in tasks {
        let (d, g) = task.await.unwrap();
        (died, gave_up) = (died + d, gave_up + g);
    }
    assert!(died > 0 && gave_up > 0, "faults were injected: {died} died, {gave_up} gave up");
    // Whatever the faults, once the line has run every unit is in a shard or held by a ticket; the gate is closed
    // only with every shard empty.
    let snapshot = clean_snapshot(&store, &sale).await;
    let totals = snapshot.totals();
    assert_eq!(totals.in_shards + totals.held, 30, "{totals:?}");
    // Every winner buys; the sale ends and reconciles with exactly the purchased units sold.
    for ticket in snapshot.tickets.iter().filter(|t| t.status == TicketStatus::Won) {
        let order = format!("ord_{}", ticket.ticket_id);
        let now = Utc::now();
        service::consume_hold(&*store, &*store, &*store, &ticket.ticket_id, &ticket.customer_id, &order, now)
            .await
            .unwrap();
    }
    service::sweep(&*store, &*store, sale.ends_at + Duration::seconds(1)).await.unwrap();
    assert_eq!(service::sweep(&*store, &*store, sale.reconcilable_from()).await.unwrap().reconciled, 1);
    let snapshot = clean_snapshot(&store, &sale).await;
    let r = snapshot.sale.reconciliation.unwrap();
    assert_eq!(i64::from(r.sold), totals.held);
    assert_eq!(r.sold + r.returned, 30);
    let level = stock(&store, "SKU-K").await;
    assert_stock_ledger(&level);
    assert_eq!(level["flash_sold"], i64::from(r.sold));
    eprintln!("{died} deliveries died after their shard write, {gave_up} messages gave up; {} won", r.sold);
}

/// Every item holding the sale's gate, read consistently: (sold out, returns) of the gate and of each copy.
async fn gate_items(store: &DynamoFlashSales, sale: &FlashSale) -> Vec<(bool, i64)> {
    let mut items = Vec::new();
    for copy in 0..sale.gate_copy_count() {
        let item = store.table.read(gate_copy_key(&sale.sale_id, copy), true).await.unwrap().unwrap();
        items.push((item.get("sold_out").and_then(|v| v.as_bool().ok()).copied().unwrap(), num(&item, "returns")));
    }
    items
}

/// Reopens the gate as a unit coming back does (`returns + 1` on the gate and every copy), retrying a
/// transaction that conflicted with another.
async fn reopen(store: &DynamoFlashSales, sale: &FlashSale) {
    for _ in 0..20 {
        let items = store
            .reopen_gate(&sale.sale_id, sale.gate_copy_count())
            .into_iter()
            .map(|u| TransactWriteItem::builder().update(u).build())
            .collect();
        match store.transact(items).await {
            Ok(None) => return,
            Err(DomainError::Transient(_)) => continue,
            other => panic!("a reopen has no condition: {other:?}"),
        }
    }
    panic!("the reopen kept conflicting");
}

/// The copies equal the gate, and an instance reading any copy sees it.
async fn assert_copies_agree(store: &DynamoFlashSales, sale: &FlashSale, sold_out: bool, returns: i64) {
    assert_eq!(gate_items(store, sale).await, vec![(sold_out, returns); sale.gate_copy_count() as usize]);
    for copy in 0..sale.gate_copy_count() + 2 {
        let reader = DynamoFlashSales { read_copy: copy, ..store.clone() };
        let gate = reader.get_gate(&sale.sale_id, true).await.unwrap();
        assert_eq!((gate.sold_out, gate.returns), (sold_out, returns as u64), "reader of copy {copy}");
    }
}

#[tokio::test]
async fn every_change_of_the_gate_writes_its_copies_and_readers_of_any_copy_see_it() {
    let Some(endpoint) = endpoint() else { return };
    let store = setup(&client(&endpoint).await, "SKU-G", 10).await;
    let sale = live_sale_with_lanes("SKU-G", 2, 2, 1, 1, 60).with_gate_copies(4);
    store.create_sale(&sale).await.unwrap();
    assert_copies_agree(&store, &sale, false, 0).await;

    // The worker sells both units and closes the gate: one transaction closes every copy.
    let (state, t0) = two_win_and_the_third_is_sold_out(&store, &sale).await;
    assert_copies_agree(&store, &sale, true, 0).await;

    // A new entry through an instance that reads copy 3 is turned away at the door.
    let reader = DynamoFlashSales { read_copy: 3, ..store.clone() };
    let cache = service::EntryCache::new(Duration::zero());
    let policy = service::EntryPolicy { min_interval: Duration::zero() };
    let entrance = service::Entrance { sales: &reader, cache: &cache, queue: &NoQueue, policy };
    let sale_id = SaleId::parse(&sale.sale_id).unwrap();
    let err = service::enter(&entrance, &shopper("late"), &sale_id, Some("k"), Utc::now()).await.unwrap_err();
    assert!(matches!(err, DomainError::Gone { code: ErrorCode::SoldOut, .. }), "{err:?}");

    // A hold runs out: the unit comes back and every copy reopens (`returns` 1), also through an adapter that
    // never saw the sale (it reads the sale for its copy count).
    let later = t0 + Duration::seconds(61);
    let fresh = DynamoFlashSales { copies: Arc::default(), ..store.clone() };
    assert_eq!(service::sweep(&fresh, &fresh, later).await.unwrap().expired_holds, 2);
    assert_copies_agree(&store, &sale, false, 2).await;

    // A close on a stale `returns` fails and changes no copy; on the current one it closes them all.
    assert!(!store.close_gate(&sale, 0).await.unwrap());
    assert_copies_agree(&store, &sale, false, 2).await;
    assert!(store.close_gate(&sale, 2).await.unwrap());
    assert_copies_agree(&store, &sale, true, 2).await;

    // Closes racing returns: whatever the order, the copies end equal to the gate.
    let next = enter_all_from(&store, &sale, 3).await;
    reopen(&store, &sale).await;
    assert_copies_agree(&store, &sale, false, 3).await;
    let (results, _) = service::admit_batch(&store, &store, &store, &state, &next, later).await;
    assert_eq!(results.into_iter().map(|r| r.unwrap()).collect::<Vec<_>>(), vec![service::Admission::Won]);
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (store, sale) = (store.clone(), sale.clone());
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                let returns = store.get_gate(&sale.sale_id, true).await.unwrap().returns;
                // A close that lost to a reopen, or kept conflicting, changed nothing.
                match store.close_gate(&sale, returns).await {
                    Ok(_) | Err(DomainError::Transient(_)) => {}
                    Err(err) => panic!("{err:?}"),
                }
            } else {
                reopen(&store, &sale).await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let items = gate_items(&store, &sale).await;
    assert_eq!(items[0].1, 3 + 8, "every reopen counted once");
    assert!(items.iter().all(|item| *item == items[0]), "copies differ from the gate: {items:?}");

    // A sale stored before copies (or with fewer) is read at its gate by an instance reading copy 3.
    let old = live_sale_with_lanes("SKU-G", 1, 1, 1, 1, 60);
    store.create_sale(&old).await.unwrap();
    assert!(store.close_gate(&old, 0).await.unwrap());
    assert_copies_agree(&store, &old, true, 0).await;
}
