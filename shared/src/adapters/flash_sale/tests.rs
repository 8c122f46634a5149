//! The flash-sale adapter and services against DynamoDB over the wire (moto behind the serializing launcher,
//! `LOCAL_AWS_ENDPOINT`), with real concurrency. Skipped, saying why, when no endpoint is set.

use super::stock::stock_key;
use super::*;
use crate::auth::{Caller, Role};
use crate::domain::flash_sale::{check_sale, EntryStatus, NewFlashSale};
use crate::domain::money::{Currency, Money};
use crate::services::flash_sale as service;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType,
};
use std::sync::Arc;

fn endpoint() -> Option<String> {
    let endpoint = std::env::var("LOCAL_AWS_ENDPOINT").ok().filter(|e| !e.is_empty());
    if endpoint.is_none() {
        eprintln!("skipped: LOCAL_AWS_ENDPOINT is not set (start infra/moto_launcher.py and point it there)");
    }
    endpoint
}

async fn client(endpoint: &str) -> Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "test"))
        .load()
        .await;
    Client::new(&config)
}

fn attr(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build().unwrap()
}

fn key_schema(hash: &str, range: &str) -> Vec<KeySchemaElement> {
    vec![
        KeySchemaElement::builder().attribute_name(hash).key_type(KeyType::Hash).build().unwrap(),
        KeySchemaElement::builder().attribute_name(range).key_type(KeyType::Range).build().unwrap(),
    ]
}

fn gsi(name: &str) -> GlobalSecondaryIndex {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .set_key_schema(Some(key_schema(&format!("{name}pk"), &format!("{name}sk"))))
        .projection(Projection::builder().projection_type(ProjectionType::All).build())
        .build()
        .unwrap()
}

/// Fresh tables and a stock item holding `on_hand` units of `sku` at `wh_east`.
async fn setup(client: &Client, sku: &str, on_hand: i64) -> DynamoFlashSales {
    let suffix = ulid::Ulid::new().to_string().to_lowercase();
    let (flash, inventory) = (format!("flash-{suffix}"), format!("inventory-{suffix}"));
    client
        .create_table()
        .table_name(&flash)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(
            ["pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk"].into_iter().map(attr).collect(),
        ))
        .set_key_schema(Some(key_schema("pk", "sk")))
        .global_secondary_indexes(gsi("gsi1"))
        .global_secondary_indexes(gsi("gsi2"))
        .send()
        .await
        .unwrap();
    client
        .create_table()
        .table_name(&inventory)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(vec![attr("pk"), attr("sk")]))
        .set_key_schema(Some(key_schema("pk", "sk")))
        .send()
        .await
        .unwrap();
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
    let item = store
        .client
        .get_item()
        .table_name(&store.inventory_table)
        .set_key(Some(stock_key(sku, "wh_east")))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
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

fn live_sale(sku: &str, units: u32, shards: u32, limit: u32, hold_seconds: u32) -> FlashSale {
    let now = Utc::now();
    NewFlashSale {
        sku: sku.into(),
        units,
        price: Money::new(500, Currency::USD),
        starts_at: now - Duration::seconds(1),
        ends_at: now + Duration::hours(1),
        per_customer_limit: limit,
        shards: Some(shards),
        hold_seconds: Some(hold_seconds),
        warehouse_id: None,
    }
    .into_sale(crate::domain::ids::new_id("fs"), "seller".into(), "wh_east".into(), now)
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
    let err = service::enter(
        &*store,
        &cache,
        &*store,
        &queue,
        policy,
        &shopper("late"),
        &sale.sale_id,
        Some("k"),
        Utc::now(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, DomainError::Gone { code: "sold_out", .. }), "{err:?}");
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
    let sale = live_sale("SKU-D", 2, 2, 1, 60);
    store.create_sale(&sale).await.unwrap();
    let messages = enter_all(&store, &sale, 3).await;
    let state = service::AdmissionState::default();
    let t0 = Utc::now();
    let (results, stats) = service::admit_batch(&store, &store, &store, &state, &messages, t0).await;
    let outcomes: Vec<_> = results.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(outcomes, vec![service::Admission::Won, service::Admission::Won, service::Admission::SoldOut]);
    assert_eq!(stats[&sale.sale_id].admitted, 2);

    // The first winner checks out; a replay of the same order answers the same unit.
    let unit = service::consume_hold(&store, &store, &store, "ftk_000000", "c0", "ord_1", t0).await.unwrap();
    assert_eq!((unit.sku.as_str(), unit.price.amount), ("SKU-D", 500));
    assert!(service::consume_hold(&store, &store, &store, "ftk_000000", "c0", "ord_1", t0).await.is_ok());
    assert!(service::consume_hold(&store, &store, &store, "ftk_000000", "c0", "ord_2", t0).await.is_err());

    // The second winner's hold runs out: the sweep returns the unit and reopens the gate.
    let later = t0 + Duration::seconds(61);
    assert!(matches!(
        service::consume_hold(&store, &store, &store, "ftk_000001", "c1", "ord_3", later).await,
        Err(DomainError::Gone { code: "hold_expired", .. })
    ));
    let report = service::sweep(&store, &store, later).await.unwrap();
    assert_eq!(report.expired_holds, 1);
    let view = service::get_entry(&store, &store, &shopper("c1"), &sale.sale_id, "ftk_000001", later).await.unwrap();
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
    let after_end = sale.ends_at + Duration::seconds(1);
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

async fn enter_all_from(store: &DynamoFlashSales, sale: &FlashSale, first: usize) -> Vec<EntryMessage> {
    let i = first;
    let ticket = Ticket::waiting(format!("ftk_{i:06}"), sale.sale_id.clone(), format!("c{i}"), 1, Utc::now());
    assert_eq!(store.create_ticket(&ticket, 1, Duration::zero()).await.unwrap(), EntryOutcome::Created);
    vec![EntryMessage::from(&ticket)]
}

/// The worker dies between an admission's two writes: the shard gave its unit (and marked the ticket as its
/// lane's last admission), the ticket write never happened, the invocation failed, so SQS delivers the message
/// again. Everything but `admit` is the real adapter.
struct DiesAfterTakingUnit<'a>(&'a DynamoFlashSales);

impl FlashAdmissions for DiesAfterTakingUnit<'_> {
    async fn shard_units(&self, sale: &FlashSale) -> Result<Vec<i64>> {
        self.0.shard_units(sale).await
    }

    async fn admit(&self, sale: &FlashSale, ticket_id: &str, shard: u32, _: DateTime<Utc>) -> Result<AdmitOutcome> {
        if let Some(remaining) = self.0.take_unit(sale, ticket_id, shard).await? {
            return Ok(AdmitOutcome::ShardEmpty { remaining });
        }
        Err(DomainError::Transient("the worker died after taking the unit".into()))
    }

    async fn admitted_shard(&self, sale: &FlashSale, ticket_id: &str) -> Result<Option<u32>> {
        self.0.admitted_shard(sale, ticket_id).await
    }

    async fn complete_admission(
        &self,
        sale: &FlashSale,
        ticket_id: &str,
        shard: u32,
        hold_expires_at: DateTime<Utc>,
    ) -> Result<AdmitOutcome> {
        self.0.complete_admission(sale, ticket_id, shard, hold_expires_at).await
    }

    async fn close_gate(&self, sale_id: &str, returns: u64) -> Result<bool> {
        self.0.close_gate(sale_id, returns).await
    }

    async fn move_units(&self, sale_id: &str, mv: Move) -> Result<bool> {
        self.0.move_units(sale_id, mv).await
    }

    async fn record(&self, sale_id: &str, instance: &str, stats: &AdmissionStats) -> Result<()> {
        self.0.record(sale_id, instance, stats).await
    }
}

fn redelivered(message: &EntryMessage) -> EntryMessage {
    EntryMessage { redelivered: true, ..message.clone() }
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
    let lane = |m: &EntryMessage| crate::domain::flash_sale::lane_of(&m.ticket_id, sale.shards);
    let first = entered[0].clone();
    let other = entered.iter().find(|m| lane(m) != lane(&first)).expect("an entry in the other lane").clone();
    let third = entered.iter().find(|m| m.ticket_id != first.ticket_id && m.ticket_id != other.ticket_id).unwrap();
    let messages = [first, other, third.clone()];
    let now = Utc::now();

    // First delivery of the first two entries: each worker dies after its shard write.
    for message in &messages[..2] {
        let (results, _) = service::admit_batch(
            &store,
            &DiesAfterTakingUnit(&store),
            &store,
            &service::AdmissionState::default(),
            std::slice::from_ref(message),
            now,
        )
        .await;
        assert!(matches!(results[0], Err(DomainError::Transient(_))), "{results:?}");
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
