//! Batch takes against the emulator: one shard write takes units for several entries of a lane, a short take
//! serves the first entries, and a worker that dies between the take and the settlements loses nothing.

use super::*;
use rand::{Rng, SeedableRng};

async fn admit(
    store: &DynamoFlashSales,
    admissions: &impl FlashAdmissions,
    batch: &[EntryMessage],
) -> Vec<Result<service::Admission>> {
    let state = service::AdmissionState::default();
    service::admit_batch(store, admissions, store, &state, batch, Utc::now()).await.0
}

fn delivered_all(messages: &[EntryMessage], prefix: &str) -> Vec<EntryMessage> {
    messages.iter().enumerate().map(|(i, m)| delivered(m, &format!("{prefix}-{i}"))).collect()
}

#[tokio::test]
async fn a_batch_take_that_meets_fewer_units_than_it_asked_for_serves_the_first_entries() {
    let Some(endpoint) = endpoint() else { return };
    let store = setup(&client(&endpoint).await, "SKU-BP", 10).await;
    let sale = live_sale_with_lanes("SKU-BP", 5, 1, 1, 1, 600);
    store.create_sale(&sale).await.unwrap();
    let entered = delivered_all(&enter_all(&store, &sale, 7).await, "m");
    use service::Admission::{SoldOut, Won};
    // One worker instance admits an entry and believes four units are left; another takes two of them.
    let (stale, other) = (service::AdmissionState::default(), service::AdmissionState::default());
    let now = Utc::now();
    let (results, _) = service::admit_batch(&store, &store, &store, &stale, &entered[..1], now).await;
    assert_eq!(results.into_iter().map(|r| r.unwrap()).collect::<Vec<_>>(), vec![Won]);
    let (results, _) = service::admit_batch(&store, &store, &store, &other, &entered[1..3], now).await;
    assert_eq!(results.into_iter().map(|r| r.unwrap()).collect::<Vec<_>>(), vec![Won, Won]);
    // The first instance asks for four units for the next four entries and meets two: the first two entries
    // take them, the other two find the sale sold out.
    let (results, stats) = service::admit_batch(&store, &store, &store, &stale, &entered[3..], now).await;
    // The winners' emails: one per won entry, with the hold's end as the ticket records it; none for sold out.
    let emails = service::win_emails(&store, &store, &stale, &entered[3..], &results).await.unwrap();
    assert_eq!(emails.len(), 2, "{emails:?}");
    for (email, message) in emails.iter().zip(&entered[3..5]) {
        let commerce_domain::email::MailEvent::FlashSaleWon { ticket_id, customer_id, title, hold_expires_at, .. } =
            email
        else {
            panic!("{email:?}")
        };
        let ticket = store.get_ticket(&message.ticket_id).await.unwrap().unwrap();
        assert_eq!((ticket_id, customer_id, title.as_str()), (&message.ticket_id, &message.customer_id, "SKU-BP"));
        assert_eq!(Some(*hold_expires_at), ticket.hold_expires_at);
    }
    let outcomes: Vec<_> = results.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(outcomes, vec![Won, Won, SoldOut, SoldOut], "in line order");
    let stats = stats[&sale.sale_id];
    assert_eq!((stats.admitted, stats.rejected), (2, 2));
    assert!(stats.condition_failures >= 1, "the take asked for four and met two: {stats:?}");
    // The shard's lane mark names exactly the two entries that took a unit (its `prev` the batch before).
    let shard = &store.shard_states(&sale).await.unwrap()[0];
    for (i, message) in entered.iter().enumerate() {
        assert_eq!(shard.takes.contains(&Take::of(message)), (1..5).contains(&i), "entry {i}: {:?}", shard.takes);
    }
    let snapshot = clean_snapshot(&store, &sale).await;
    assert!(snapshot.gate.sold_out);
    assert_eq!((snapshot.totals().in_shards, snapshot.totals().held, snapshot.totals().sold_out), (0, 5, 2));
}

#[tokio::test]
async fn a_batch_whose_worker_dies_between_the_take_and_the_settlements_is_settled_by_its_redelivery() {
    let Some(endpoint) = endpoint() else { return };
    let store = setup(&client(&endpoint).await, "SKU-BD", 10).await;
    let sale = live_sale_with_lanes("SKU-BD", 10, 1, 1, 1, 600);
    store.create_sale(&sale).await.unwrap();
    let batch = delivered_all(&enter_all(&store, &sale, 4).await, "m");
    let results = admit(&store, &dies_after_take(&store), &batch).await;
    assert!(results.iter().all(Result::is_err), "the whole batch goes back: {results:?}");
    assert_eq!(store.shard_units(&sale).await.unwrap(), vec![6], "four units taken by one write");
    for message in &batch {
        assert_eq!(status_of(&store, &message.ticket_id).await, TicketStatus::Waiting);
    }
    // The queue delivers the batch again: the first redelivery finds the batch's take and settles it whole;
    // the others find theirs settled.
    let again: Vec<EntryMessage> = batch.iter().map(redelivered).collect();
    let outcomes: Vec<_> = admit(&store, &store, &again).await.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(outcomes.iter().filter(|o| **o == service::Admission::Won).count(), 1, "{outcomes:?}");
    for message in &batch {
        assert_eq!(status_of(&store, &message.ticket_id).await, TicketStatus::Won);
    }
    // Any later delivery takes nothing.
    let outcomes: Vec<_> = admit(&store, &store, &again).await.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(outcomes, vec![service::Admission::Skipped; 4]);
    let totals = clean_snapshot(&store, &sale).await.totals();
    assert_eq!((totals.in_shards, totals.held), (6, 4));
}

#[tokio::test]
async fn a_batch_whose_messages_gave_up_after_the_take_is_settled_by_the_lanes_next_take() {
    let Some(endpoint) = endpoint() else { return };
    let store = setup(&client(&endpoint).await, "SKU-BG", 10).await;
    let sale = live_sale_with_lanes("SKU-BG", 10, 1, 1, 1, 600);
    store.create_sale(&sale).await.unwrap();
    let entered = delivered_all(&enter_all(&store, &sale, 6).await, "m");
    assert!(admit(&store, &dies_after_take(&store), &entered[..4]).await.iter().all(Result::is_err));
    // The four messages go to the dead-letter queue; the lane's next batch replaces the batch's mark and settles
    // its takes: the waiting tickets win the units taken for them.
    let outcomes: Vec<_> = admit(&store, &store, &entered[4..]).await.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(outcomes, vec![service::Admission::Won; 2]);
    for message in &entered {
        assert_eq!(status_of(&store, &message.ticket_id).await, TicketStatus::Won);
    }
    let totals = clean_snapshot(&store, &sale).await.totals();
    assert_eq!((totals.in_shards, totals.held), (4, 6));
}

#[tokio::test]
async fn lanes_taking_in_batches_while_workers_die_at_random_sell_every_unit_once() {
    let Some(endpoint) = endpoint() else { return };
    let store = Arc::new(setup(&client(&endpoint).await, "SKU-BR", 200).await);
    // Two shards, eight lanes (four per home shard), fewer units than buyers.
    let sale = live_sale_with_lanes("SKU-BR", 60, 2, 8, 1, 600);
    store.create_sale(&sale).await.unwrap();
    let entered = enter_all(&store, &sale, 120).await;
    let mut lanes: Vec<Vec<EntryMessage>> = vec![Vec::new(); sale.lane_count() as usize];
    for (i, message) in entered.iter().enumerate() {
        lanes[sale.lane_of(&message.ticket_id) as usize].push(delivered(message, &format!("m-{i}")));
    }
    // One task per lane, batches of up to ten in order, as the queue delivers a message group. A batch's first
    // delivery dies after its shard write one time in three; then the queue delivers the failed messages again,
    // or, one time in four, gives up on them and moves on to the lane's next messages.
    let mut tasks = Vec::new();
    for (lane, messages) in lanes.into_iter().enumerate() {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(1_000 + lane as u64);
            let (mut died, mut gave_up) = (0, 0);
            let mut rest = messages.as_slice();
            while !rest.is_empty() {
                let batch = &rest[..rest.len().min(rng.gen_range(1..=10))];
                rest = &rest[batch.len()..];
                let results = if rng.gen_bool(1.0 / 3.0) {
                    admit(&store, &dies_after_take(&store), batch).await
                } else {
                    admit(&store, &*store, batch).await
                };
                let failed: Vec<EntryMessage> =
                    batch.iter().zip(&results).filter(|(_, r)| r.is_err()).map(|(m, _)| redelivered(m)).collect();
                if failed.is_empty() {
                    continue;
                }
                died += 1;
                if rng.gen_bool(0.25) {
                    gave_up += failed.len();
                    continue;
                }
                for result in admit(&store, &*store, &failed).await {
                    result.unwrap();
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
    // The schedule's audit (the sale is sold out) settles what only given-up messages named; then every unit is
    // in a shard or held, at most once.
    service::sweep(&*store, &*store, Utc::now()).await.unwrap();
    let snapshot = clean_snapshot(&store, &sale).await;
    let totals = snapshot.totals();
    assert_eq!(totals.in_shards + totals.held, 60, "{totals:?}");
    for ticket in snapshot.tickets.iter().filter(|t| t.status == TicketStatus::Won) {
        let order = format!("ord_{}", ticket.ticket_id);
        service::consume_hold(&*store, &*store, &*store, &ticket.ticket_id, &ticket.customer_id, &order, Utc::now())
            .await
            .unwrap();
    }
    service::sweep(&*store, &*store, sale.ends_at + Duration::seconds(1)).await.unwrap();
    assert_eq!(service::sweep(&*store, &*store, sale.reconcilable_from()).await.unwrap().reconciled, 1);
    let snapshot = clean_snapshot(&store, &sale).await;
    let r = snapshot.sale.reconciliation.unwrap();
    assert_eq!(i64::from(r.sold), totals.held);
    assert!(r.sold > 0);
    assert_eq!(r.sold + r.returned, 60);
    let level = stock(&store, "SKU-BR").await;
    assert_stock_ledger(&level);
    assert_eq!(level["flash_sold"], i64::from(r.sold));
    eprintln!("{died} batch deliveries died after their shard write, {gave_up} messages gave up; {} won", r.sold);
}
