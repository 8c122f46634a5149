//! Seller webhooks on a virtual clock: the fan-out of order events to endpoints, exactly one delivery per event
//! however often the order events queue redelivers, the retry schedule, the breaker and the attempt budget over
//! a two-hour outage, and what is never retried.

use chrono::{DateTime, Duration, Utc};
use commerce_app::ports::{OrderWriter, WebhookDeliveries, WebhookEndpoints};
use commerce_app::services::webhooks::{self, Attempted, Deliverer, DeliveryPolicy};
use commerce_domain::auth::{Caller, Role};
use commerce_domain::money::{Currency, Money};
use commerce_domain::order::{Actor, Customer, NotificationKind, Order, OrderEventKind, OrderLine, OrderNotification};
use commerce_domain::seller_webhook::{DeliveryState, EndpointRequest};
use commerce_domain::webhook::{verify, Received as Incoming, WebhookSecret, DEFAULT_TOLERANCE};
use commerce_testkit::mail::MailOutQueue;
use commerce_testkit::orders::{demo_address, InMemoryOrders};
use commerce_testkit::webhooks::{Clock, InMemoryWebhooks, OpenGuard, Receiver, VirtualQueue};
use std::collections::{BTreeMap, BTreeSet};

fn start() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn seller(id: &str) -> Caller {
    Caller { user_id: id.into(), email: Some(format!("{id}@example.com")), roles: vec![Role::Seller] }
}

fn subscribe(url: &str, events: &[&str]) -> EndpointRequest {
    EndpointRequest { url: url.into(), events: events.iter().map(|e| e.to_string()).collect(), description: None }
}

/// A confirmed order with a line of each of `sellers`, placed at `at`.
fn order(id: &str, sellers: &[&str], at: DateTime<Utc>) -> Order {
    let lines = sellers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            OrderLine::new(format!("sku-{i}"), format!("prd_{i}"), *s, "Thing", 1, Money::new(1000, Currency::USD))
                .unwrap()
        })
        .collect();
    let customer = Customer { user_id: Some("shopper-1".into()), email: None };
    let mut order =
        Order::place(id.into(), customer, "crt_1".into(), lines, demo_address(), Actor::shopper("shopper-1"), at)
            .unwrap();
    order
        .record(OrderEventKind::Confirmed { payment_id: format!("pi_{id}") }, Actor::system("saga"), None, at)
        .unwrap();
    order
}

struct World {
    clock: Clock,
    orders: InMemoryOrders,
    store: InMemoryWebhooks,
    deliverer: Deliverer<InMemoryWebhooks, InMemoryWebhooks, VirtualQueue, Receiver, MailOutQueue>,
}

impl World {
    fn new(receiver: impl FnOnce(Clock) -> Receiver, policy: DeliveryPolicy) -> Self {
        let clock = Clock::at(start());
        let store = InMemoryWebhooks::new();
        let deliverer = Deliverer {
            endpoints: store.clone(),
            deliveries: store.clone(),
            queue: VirtualQueue::new(clock.clone()),
            sender: receiver(clock.clone()),
            mail: MailOutQueue::new(),
            policy,
        };
        Self { clock, orders: InMemoryOrders::new(), store, deliverer }
    }

    async fn register(&self, seller_id: &str, url: &str, events: &[&str]) -> (String, WebhookSecret) {
        let registered = webhooks::register(
            &self.store,
            &OpenGuard,
            &seller(seller_id),
            subscribe(url, events),
            &self.deliverer.policy,
            self.clock.now(),
        )
        .await
        .unwrap();
        (registered.endpoint.webhook_id, registered.secret.parse().unwrap())
    }

    async fn place(&self, order: &Order) -> OrderNotification {
        self.orders.create_order(order).await.unwrap();
        OrderNotification::new(NotificationKind::OrderPlaced, order, order.version(), None, Some(order.total()))
    }

    async fn fan_out(&self, notification: &OrderNotification) -> usize {
        let d = &self.deliverer;
        webhooks::fan_out(&d.endpoints, &d.deliveries, &d.queue, &self.orders, notification, self.clock.now())
            .await
            .unwrap()
    }

    /// Runs the worker until the queue is empty or the clock passes `until`; returns the attempts' times.
    async fn run(&self, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut draws = 0u64;
        let mut sent = Vec::new();
        while let Some((due, task)) = self.deliverer.queue.pop() {
            if due > until {
                // Not due within this run: put it back by queueing it for the rest of its delay.
                let rest = (due - self.clock.now()).to_std().unwrap();
                commerce_app::ports::DeliveryQueue::enqueue(&self.deliverer.queue, &task, rest).await.unwrap();
                break;
            }
            self.clock.set(due.max(self.clock.now()));
            draws += 1;
            // A deterministic spread of jitter draws in [0, 1).
            let fraction = (draws * 7919 % 1000) as f64 / 1000.0;
            if let Attempted::Sent { status: Some(_), .. } =
                self.deliverer.attempt(&task, self.clock.now(), fraction).await.unwrap()
            {
                sent.push(self.clock.now());
            }
        }
        sent
    }
}

#[tokio::test]
async fn a_thousand_events_each_fanned_out_three_times_make_exactly_a_thousand_deliveries_per_endpoint() {
    let world = World::new(Receiver::up, DeliveryPolicy::default());
    let (all, all_secret) =
        world.register("seller-1", "https://a.example/hooks", &["order.placed", "order.cancelled"]).await;
    let (placed_only, _) = world.register("seller-1", "https://b.example/hooks", &["order.placed"]).await;
    let (cancels, _) = world.register("seller-1", "https://c.example/hooks", &["order.cancelled"]).await;
    let (other_seller, _) = world.register("seller-2", "https://d.example/hooks", &["order.placed"]).await;
    let mut notifications = Vec::new();
    for i in 0..1000 {
        let at = start() + Duration::milliseconds(i);
        notifications.push(world.place(&order(&format!("ord_{i:04}"), &["seller-1"], at)).await);
    }
    // The order events queue delivers every notification three times (twice in a row, once much later).
    let mut made = 0;
    for notification in notifications.iter().chain(&notifications) {
        made += world.fan_out(notification).await;
    }
    world.run(start() + Duration::hours(1)).await;
    for notification in &notifications {
        made += world.fan_out(notification).await;
    }
    world.run(start() + Duration::hours(2)).await;
    assert_eq!(made, 2000, "one delivery per (event, subscribed endpoint)");
    assert!(world.deliverer.queue.is_empty());

    let received = world.deliverer.sender.received();
    let mut per_url: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for r in &received {
        per_url.entry(r.url.as_str()).or_default().insert(r.headers.id.as_str());
    }
    assert_eq!(received.len(), 2000, "no event is sent twice");
    assert_eq!(per_url["https://a.example/hooks"].len(), 1000);
    assert_eq!(per_url["https://b.example/hooks"].len(), 1000);
    assert!(!per_url.contains_key("https://c.example/hooks"), "not subscribed to order.placed");
    assert!(!per_url.contains_key("https://d.example/hooks"), "another seller's orders");
    for id in [&all, &placed_only] {
        assert!(world
            .store
            .deliveries_of(id)
            .iter()
            .all(|d| d.state == DeliveryState::Delivered && d.attempt_count == 1));
    }
    assert!(world.store.deliveries_of(&cancels).is_empty() && world.store.deliveries_of(&other_seller).is_empty());
    // Every request verifies with the endpoint's secret, and carries the seller's order.
    let first = received.iter().find(|r| r.url == "https://a.example/hooks").unwrap();
    let incoming = Incoming {
        id: &first.headers.id,
        timestamp: &first.headers.timestamp,
        signature: &first.headers.signature,
        body: first.body.as_bytes(),
    };
    verify(&all_secret, &incoming, first.at.timestamp(), DEFAULT_TOLERANCE).unwrap();
    let body: serde_json::Value = serde_json::from_str(&first.body).unwrap();
    assert_eq!(body["type"], "order.placed");
    assert_eq!(body["data"]["order"]["lines"][0]["seller_id"], "seller-1");
}

#[tokio::test]
async fn an_order_of_two_sellers_tells_each_only_its_own_part() {
    let world = World::new(Receiver::up, DeliveryPolicy::default());
    world.register("seller-1", "https://one.example/", &["order.placed"]).await;
    world.register("seller-2", "https://two.example/", &["order.placed"]).await;
    let notification = world.place(&order("ord_both", &["seller-1", "seller-2"], start())).await;
    world.fan_out(&notification).await;
    world.run(start() + Duration::minutes(1)).await;
    let received = world.deliverer.sender.received();
    assert_eq!(received.len(), 2);
    for r in received {
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        let want = if r.url.contains("one") { "seller-1" } else { "seller-2" };
        let lines = body["data"]["order"]["lines"].as_array().unwrap();
        assert!(lines.iter().all(|l| l["seller_id"] == want), "{} got {body}", r.url);
        assert_eq!(lines.len(), 1);
    }
}

#[tokio::test]
async fn after_a_two_hour_outage_every_event_arrives_and_no_second_ever_exceeds_the_budget() {
    let outage = start() + Duration::hours(2);
    let policy = DeliveryPolicy { rate_per_sec: 5.0, burst: 5.0, ..DeliveryPolicy::default() };
    let world = World::new(|clock| Receiver::down_until(clock, outage, Some(503), None), policy);
    world.register("seller-1", "https://down.example/", &["order.placed"]).await;
    // 300 orders spread over the outage's first hour.
    let mut notifications = Vec::new();
    for i in 0..300 {
        let at = start() + Duration::seconds(i * 12);
        notifications.push(world.place(&order(&format!("ord_{i:03}"), &["seller-1"], at)).await);
    }
    for (i, notification) in notifications.iter().enumerate() {
        world.clock.set(start() + Duration::seconds(i as i64 * 12));
        world.fan_out(notification).await;
        world.run(world.clock.now()).await;
    }
    let attempts = world.run(start() + Duration::hours(30)).await;
    let received = world.deliverer.sender.received();
    let delivered: BTreeSet<&str> = received.iter().filter(|r| r.at >= outage).map(|r| r.headers.id.as_str()).collect();
    assert_eq!(delivered.len(), 300, "every event arrives after the outage");
    assert!(world.deliverer.queue.is_empty());
    // The breaker: while the endpoint was down, attempts were a handful of failures and probes, not 300 x retries.
    let during = received.iter().filter(|r| r.at < outage).count();
    assert!(during < 40, "{during} attempts against a dead endpoint");
    // The budget: no window of one second holds more than the burst plus the rate.
    let mut times: Vec<DateTime<Utc>> = received.iter().map(|r| r.at).collect();
    times.sort();
    let mut busiest = 0;
    for (i, t) in times.iter().enumerate() {
        let within = times[i..].iter().take_while(|u| **u < *t + Duration::seconds(1)).count();
        busiest = busiest.max(within);
    }
    assert!(busiest <= 10, "{busiest} attempts in one second");
    assert!(attempts.len() >= 300);
}

#[tokio::test]
async fn a_4xx_is_not_retried_and_a_410_disables_the_endpoint() {
    let world = World::new(
        |clock| Receiver::down_until(clock, start() + Duration::days(9), Some(400), None),
        DeliveryPolicy::default(),
    );
    let (id, _) = world.register("seller-1", "https://refuses.example/", &["order.placed"]).await;
    let notification = world.place(&order("ord_a", &["seller-1"], start())).await;
    world.fan_out(&notification).await;
    world.run(start() + Duration::days(2)).await;
    assert_eq!(world.deliverer.sender.received().len(), 1, "a 400 is final: no traffic storm (saleor#14557)");
    let delivery = &world.store.deliveries_of(&id)[0];
    assert!(
        matches!(&delivery.state, DeliveryState::Failed { reason } if reason.contains("400")),
        "{:?}",
        delivery.state
    );

    let gone = World::new(
        |clock| Receiver::down_until(clock, start() + Duration::days(9), Some(410), None),
        DeliveryPolicy::default(),
    );
    let (id, _) = gone.register("seller-1", "https://gone.example/", &["order.placed"]).await;
    for name in ["ord_1", "ord_2"] {
        let notification = gone.place(&order(name, &["seller-1"], start())).await;
        gone.fan_out(&notification).await;
    }
    gone.run(start() + Duration::days(2)).await;
    assert_eq!(gone.deliverer.sender.received().len(), 1, "after a 410 nothing more is sent");
    let endpoint = WebhookEndpoints::endpoint(&gone.store, "seller-1", &id).await.unwrap().unwrap();
    assert_eq!(endpoint.view().state, "disabled");
    // A disabled endpoint gets no new deliveries; rotating its secret enables it again.
    let later = gone.place(&order("ord_3", &["seller-1"], start())).await;
    assert_eq!(gone.fan_out(&later).await, 0);
    webhooks::rotate(&gone.store, &seller("seller-1"), &id, gone.clock.now()).await.unwrap();
    assert_eq!(gone.fan_out(&gone.place(&order("ord_4", &["seller-1"], start())).await).await, 1);
}

#[tokio::test]
async fn retry_after_on_429_is_honoured_and_the_seller_can_send_one_again() {
    let until = start() + Duration::minutes(3);
    let world =
        World::new(|clock| Receiver::down_until(clock, until, Some(429), Some("120")), DeliveryPolicy::default());
    let (id, _) = world.register("seller-1", "https://busy.example/", &["order.placed"]).await;
    let notification = world.place(&order("ord_a", &["seller-1"], start())).await;
    world.fan_out(&notification).await;
    world.run(start() + Duration::hours(1)).await;
    let times: Vec<i64> = world.deliverer.sender.received().iter().map(|r| (r.at - start()).num_seconds()).collect();
    // Each retry waits the 120 s the receiver asked for, counted from its answer, in SQS's whole seconds.
    assert_eq!(times.len(), 3, "{times:?}");
    assert!(times.windows(2).all(|w| (120..=121).contains(&(w[1] - w[0]))), "{times:?}");
    let delivery = world.store.deliveries_of(&id).remove(0);
    assert_eq!(delivery.state, DeliveryState::Delivered);
    // The seller's retry sends it once more, now; another seller cannot.
    let store = &world.store;
    let d = &world.deliverer;
    let other =
        webhooks::retry(store, store, &d.queue, &seller("seller-2"), &id, &delivery.delivery_id, world.clock.now())
            .await;
    assert!(matches!(other.unwrap_err(), commerce_domain::error::DomainError::NotFound { .. }));
    webhooks::retry(store, store, &d.queue, &seller("seller-1"), &id, &delivery.delivery_id, world.clock.now())
        .await
        .unwrap();
    world.run(world.clock.now() + Duration::minutes(1)).await;
    assert_eq!(world.deliverer.sender.received().len(), 4);
    let listed = webhooks::deliveries(store, store, &seller("seller-1"), &id, Default::default(), None).await.unwrap();
    assert_eq!(listed.items[0].attempt_count, 4);
    assert!(WebhookDeliveries::delivery(store, &id, &delivery.delivery_id).await.unwrap().is_some());
    // Ids far past any key's size name nothing: 404, not a storage error.
    let huge = "x".repeat(5000);
    let now = world.clock.now();
    let not_found =
        |r: commerce_domain::error::Result<_>| matches!(r, Err(commerce_domain::error::DomainError::NotFound { .. }));
    assert!(not_found(webhooks::retry(store, store, &d.queue, &seller("seller-1"), &id, &huge, now).await.map(|_| ())));
    assert!(not_found(webhooks::retry(store, store, &d.queue, &seller("seller-1"), &huge, "x", now).await.map(|_| ())));
    assert!(not_found(webhooks::delete(store, &seller("seller-1"), &huge).await));
    assert!(not_found(webhooks::rotate(store, &seller("seller-1"), &huge, now).await.map(|_| ())));
}
