//! Emails through the use cases with in-memory adapters: exactly one email per event and recipient whatever
//! the queues redeliver, failures that lose nothing, suppression, guests' links, and the producers (webhook
//! endpoints disabled, low stock).

use chrono::{DateTime, Duration, Utc};
use commerce_app::ports::{MailLedger, OrderReader, OrderWriter, StockTransition, WebhookEndpoints};
use commerce_app::services::email::{self, MailDeps, Outcome, CLAIM_LEASE};
use commerce_app::services::stock_alerts::{self, AlertPorts};
use commerce_app::services::webhooks::{self, Attempted, Deliverer, DeliveryPolicy};
use commerce_domain::auth::{Caller, Role};
use commerce_domain::email::{ledger_key, Feedback, MailEvent, MailKind, Shop, SuppressionReason};
use commerce_domain::inventory::StockLevel;
use commerce_domain::money::{Currency, Money};
use commerce_domain::order::{
    Actor, Customer, NotificationKind, Order, OrderAccess, OrderEventKind, OrderLine, OrderNotification,
};
use commerce_domain::seller_webhook::EndpointRequest;
use commerce_testkit::mail::{Directory, InMemoryMail, MailOutQueue, Outbox};
use commerce_testkit::orders::{demo_address, InMemoryOrders};
use commerce_testkit::webhooks::{Clock, InMemoryWebhooks, OpenGuard, Receiver, VirtualQueue};

fn start() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn shop() -> Shop {
    Shop { name: "Test Shop".into(), base_url: "https://api.example.com".into() }
}

/// A confirmed order of seller-1's `sku-0`, by a signed-in shopper or (user `None`) a guest.
fn order(id: &str, user: Option<&str>, email: &str) -> Order {
    let line = OrderLine::new("sku-0", "prd_0", "seller-1", "Thing", 1, Money::new(1000, Currency::USD)).unwrap();
    let customer = Customer { user_id: user.map(str::to_owned), email: Some(email.to_owned()) };
    let actor = user.map_or(Actor::system("guest"), Actor::shopper);
    let mut order =
        Order::place(id.into(), customer, "crt_1".into(), vec![line], demo_address(), actor, start()).unwrap();
    order
        .record(OrderEventKind::Confirmed { payment_id: format!("pi_{id}") }, Actor::system("saga"), None, start())
        .unwrap();
    order
}

fn placed(order: &Order) -> OrderNotification {
    OrderNotification::new(NotificationKind::OrderPlaced, order, order.version(), None, Some(order.total()))
}

struct Mail {
    outbox: Outbox,
    ledger: InMemoryMail,
    orders: InMemoryOrders,
    directory: Directory,
    shop: Shop,
}

impl Mail {
    fn new() -> Self {
        Self {
            outbox: Outbox::new(),
            ledger: InMemoryMail::new(),
            orders: InMemoryOrders::new(),
            directory: Directory::with(&[("seller-1", "seller1@example.com"), ("shopper-9", "nine@example.com")]),
            shop: shop(),
        }
    }

    fn deps(&self) -> MailDeps<'_, Outbox, InMemoryMail, InMemoryOrders, Directory> {
        MailDeps {
            sender: &self.outbox,
            ledger: &self.ledger,
            orders: &self.orders,
            contacts: &self.directory,
            shop: &self.shop,
        }
    }

    async fn send(&self, event: &MailEvent, at: DateTime<Utc>) -> commerce_domain::error::Result<Outcome> {
        email::send(self.deps(), event, at).await
    }
}

#[tokio::test]
async fn a_thousand_events_each_delivered_three_times_make_a_thousand_deliveries_and_a_thousand_emails() {
    let mail = Mail::new();
    let clock = Clock::at(start());
    let store = InMemoryWebhooks::new();
    let deliverer = Deliverer {
        endpoints: store.clone(),
        deliveries: store.clone(),
        queue: VirtualQueue::new(clock.clone()),
        sender: Receiver::up(clock.clone()),
        mail: MailOutQueue::new(),
        policy: DeliveryPolicy::default(),
    };
    let seller = Caller { user_id: "seller-1".into(), email: None, roles: vec![Role::Seller] };
    let request = EndpointRequest {
        url: "https://a.example/hooks".into(),
        events: vec!["order.placed".into()],
        description: None,
    };
    webhooks::register(&store, &OpenGuard, &seller, request, &deliverer.policy, clock.now()).await.unwrap();
    let queued = MailOutQueue::new();
    let mut notifications = Vec::new();
    for i in 0..1000 {
        let order = order(&format!("ord_{i:04}"), Some("shopper-1"), &format!("shopper{i}@example.com"));
        mail.orders.create_order(&order).await.unwrap();
        notifications.push(placed(&order));
    }
    // The order events queue delivers each notification three times: notify-order-events fans it out and
    // queues its email each time.
    for notification in notifications.iter().chain(&notifications).chain(&notifications) {
        webhooks::fan_out(&store, &store, &deliverer.queue, &mail.orders, notification, clock.now()).await.unwrap();
        email::queue_order_mail(&queued, notification).await.unwrap();
    }
    while let Some((due, task)) = deliverer.queue.pop() {
        clock.set(due.max(clock.now()));
        deliverer.attempt(&task, clock.now(), 0.5).await.unwrap();
    }
    assert_eq!(deliverer.sender.received().len(), 1000, "one delivery per event");
    // The emails queue holds 3,000 messages; the workers take them ten at a time, side by side.
    let events = queued.queued();
    assert_eq!(events.len(), 3000);
    for batch in events.chunks(10) {
        let outcomes = futures::future::join_all(batch.iter().map(|e| mail.send(e, start()))).await;
        for outcome in outcomes {
            assert!(matches!(outcome, Ok(Outcome::Sent | Outcome::AlreadySent)), "{outcome:?}");
        }
    }
    let sent = mail.outbox.sent();
    assert_eq!(sent.len(), 1000, "exactly one email per event");
    let recipients: std::collections::BTreeSet<_> = sent.iter().map(|e| e.to.clone()).collect();
    assert_eq!(recipients.len(), 1000);
    assert!(sent.iter().all(|e| e.kind == MailKind::OrderConfirmed && e.subject.contains("confirmed")));
    assert_eq!(mail.ledger.sent_entries(), 1000);
}

#[tokio::test]
async fn the_same_event_raced_by_many_workers_is_sent_once() {
    let mail = Mail::new();
    let order = order("ord_race", Some("shopper-1"), "race@example.com");
    mail.orders.create_order(&order).await.unwrap();
    let event = MailEvent::Order { notification: placed(&order) };
    let outcomes = futures::future::join_all((0..32).map(|_| mail.send(&event, start()))).await;
    let sent = outcomes.iter().filter(|o| matches!(o, Ok(Outcome::Sent))).count();
    assert_eq!(sent, 1, "{outcomes:?}");
    assert_eq!(mail.outbox.sent().len(), 1);
    for outcome in outcomes {
        // The others saw it sent or still being sent (then their message comes back later, and is a duplicate).
        assert!(matches!(outcome, Ok(Outcome::Sent | Outcome::AlreadySent) | Err(_)), "{outcome:?}");
    }
    assert_eq!(mail.send(&event, start()).await.unwrap(), Outcome::AlreadySent);
}

#[tokio::test]
async fn a_failed_send_is_sent_by_the_redelivery_and_a_crashed_worker_by_the_one_after_its_lease() {
    let mail = Mail::new();
    let order = order("ord_fail", Some("shopper-1"), "f@example.com");
    mail.orders.create_order(&order).await.unwrap();
    let event = MailEvent::Order { notification: placed(&order) };
    // SES refuses (throttling): the error sends the message back; nothing is marked.
    mail.outbox.fail_next(1);
    assert!(mail.send(&event, start()).await.is_err());
    assert!(mail.outbox.sent().is_empty());
    assert_eq!(mail.ledger.claimed_entries(), 0, "the claim was released");
    assert_eq!(mail.send(&event, start()).await.unwrap(), Outcome::Sent);
    assert_eq!(mail.outbox.sent().len(), 1);

    // A worker that claimed and died: its claim holds the email until the lease runs out, then it is sent.
    let other = MailEvent::Order {
        notification: OrderNotification { notification_id: "ord_fail-99".into(), ..placed(&order) },
    };
    let key = ledger_key(&other.event_id(), "f@example.com");
    mail.ledger.claim(&key, start(), CLAIM_LEASE).await.unwrap();
    assert!(mail.send(&other, start() + Duration::seconds(30)).await.is_err(), "busy: comes back later");
    let after = start() + Duration::from_std(CLAIM_LEASE).unwrap() + Duration::seconds(1);
    assert_eq!(mail.send(&other, after).await.unwrap(), Outcome::Sent);
    assert_eq!(mail.outbox.sent().len(), 2);
}

#[tokio::test]
async fn bounced_and_complaining_addresses_get_nothing_more() {
    let mail = Mail::new();
    let feedback = Feedback::parse(&serde_json::json!({"eventType": "Bounce", "bounce": {"bounceType": "Permanent",
        "bouncedRecipients": [{"emailAddress": "Gone@Example.com", "action": "failed"}]}}));
    assert_eq!(email::apply_feedback(&mail.ledger, &feedback, start()).await.unwrap(), 1);
    assert_eq!(email::apply_feedback(&mail.ledger, &feedback, start()).await.unwrap(), 1, "twice is harmless");
    let complaint = Feedback::parse(
        &serde_json::json!({"complaint": {"complainedRecipients": [{"emailAddress": "angry@example.com"}]}}),
    );
    email::apply_feedback(&mail.ledger, &complaint, start()).await.unwrap();
    let suppressed = mail.ledger.suppressed();
    assert_eq!(suppressed.get("gone@example.com"), Some(&SuppressionReason::Bounce));
    assert_eq!(suppressed.get("angry@example.com"), Some(&SuppressionReason::Complaint));
    for (id, address) in [("ord_gone", "gone@example.com"), ("ord_angry", "ANGRY@example.com")] {
        let order = order(id, Some("shopper-1"), address);
        mail.orders.create_order(&order).await.unwrap();
        assert_eq!(
            mail.send(&MailEvent::Order { notification: placed(&order) }, start()).await.unwrap(),
            Outcome::Suppressed
        );
    }
    assert!(mail.outbox.sent().is_empty());
}

#[tokio::test]
async fn a_guests_confirmation_links_to_the_order_with_a_token_that_opens_it() {
    let mail = Mail::new();
    let order = order("ord_guest", None, "guest@example.com");
    mail.orders.create_order(&order).await.unwrap();
    let event = MailEvent::Order { notification: placed(&order) };
    assert_eq!(mail.send(&event, start()).await.unwrap(), Outcome::Sent);
    let sent = mail.outbox.sent();
    let text = &sent[0].text;
    let link = text.lines().find_map(|l| l.strip_prefix("Your order: ")).expect(text);
    let token = link.strip_prefix("https://api.example.com/v1/orders/ord_guest?order_token=").expect(link);
    let stored = mail.orders.get_order("ord_guest").await.unwrap().unwrap();
    let access = |t: &str| OrderAccess { user_id: None, admin: false, order_token: Some(t.to_owned()) };
    assert!(stored.authorize(&access(token)).is_ok(), "the emailed link opens the order");
    assert!(stored.authorize(&access("forged")).is_err());
    assert!(!serde_json::to_string(&stored.events()).unwrap().contains(token), "only the token's hash is stored");
    // A redelivery sends nothing and issues no second token.
    assert_eq!(mail.send(&event, start()).await.unwrap(), Outcome::AlreadySent);
    assert_eq!(mail.orders.get_order("ord_guest").await.unwrap().unwrap().version(), stored.version());
}

#[tokio::test]
async fn users_are_found_in_the_directory_and_nobody_is_emailed_without_an_address() {
    let mail = Mail::new();
    let won = MailEvent::FlashSaleWon {
        event_id: "tk_1".into(),
        customer_id: "shopper-9".into(),
        sale_id: "fs_1".into(),
        ticket_id: "tk_1".into(),
        title: "CONSOLE-1".into(),
        hold_expires_at: start() + Duration::minutes(10),
    };
    assert_eq!(mail.send(&won, start()).await.unwrap(), Outcome::Sent);
    let email = &mail.outbox.sent()[0];
    assert_eq!(email.to, "nine@example.com");
    assert!(
        email.text.contains("2027-01-15 08:10 UTC") && email.text.contains("/v1/flash-sales/fs_1/entries/tk_1"),
        "{}",
        email.text
    );
    let stranger = MailEvent::LowStock {
        event_id: "1".into(),
        seller_id: "nobody".into(),
        sku: "sku-0".into(),
        warehouse_id: None,
        available: 0,
        threshold: 5,
    };
    assert_eq!(mail.send(&stranger, start()).await.unwrap(), Outcome::NoRecipient);
    let no_address = order("ord_none", Some("shopper-1"), "not an address");
    mail.orders.create_order(&no_address).await.unwrap();
    assert_eq!(
        mail.send(&MailEvent::Order { notification: placed(&no_address) }, start()).await.unwrap(),
        Outcome::NoRecipient
    );
    let cancelled = OrderNotification { kind: NotificationKind::OrderCancelled, ..placed(&no_address) };
    assert_eq!(mail.send(&MailEvent::Order { notification: cancelled }, start()).await.unwrap(), Outcome::NotMailed);
    assert_eq!(mail.outbox.sent().len(), 1);
}

#[tokio::test]
async fn an_endpoint_that_answers_410_is_disabled_and_its_seller_told_once() {
    let clock = Clock::at(start());
    let store = InMemoryWebhooks::new();
    let deliverer = Deliverer {
        endpoints: store.clone(),
        deliveries: store.clone(),
        queue: VirtualQueue::new(clock.clone()),
        sender: Receiver::down_until(clock.clone(), start() + Duration::days(365), Some(410), None),
        mail: MailOutQueue::new(),
        policy: DeliveryPolicy::default(),
    };
    let seller = Caller { user_id: "seller-1".into(), email: None, roles: vec![Role::Seller] };
    let request =
        EndpointRequest { url: "https://gone.example/".into(), events: vec!["order.placed".into()], description: None };
    webhooks::register(&store, &OpenGuard, &seller, request, &deliverer.policy, clock.now()).await.unwrap();
    let orders = InMemoryOrders::new();
    for i in 0..3 {
        let order = order(&format!("ord_{i}"), Some("shopper-1"), "a@example.com");
        orders.create_order(&order).await.unwrap();
        webhooks::fan_out(&store, &store, &deliverer.queue, &orders, &placed(&order), clock.now()).await.unwrap();
    }
    while let Some((due, task)) = deliverer.queue.pop() {
        clock.set(due.max(clock.now()));
        let attempted = deliverer.attempt(&task, clock.now(), 0.5).await.unwrap();
        assert!(!matches!(attempted, Attempted::Waiting { .. }));
    }
    let told = deliverer.mail.queued();
    assert_eq!(told.len(), 1, "{told:?}");
    let MailEvent::WebhookDisabled { seller_id, url, reason, .. } = &told[0] else { panic!("{told:?}") };
    assert_eq!((seller_id.as_str(), url.as_str()), ("seller-1", "https://gone.example/"));
    assert!(reason.contains("410"));
    let endpoints = store.seller_endpoints("seller-1").await.unwrap();
    assert!(matches!(endpoints[0].breaker, commerce_domain::webhook::Breaker::Disabled { .. }));
}

/// Which seller sells each SKU.
struct Sellers(Vec<(&'static str, &'static str)>);

impl commerce_app::ports::SkuCatalog for Sellers {
    async fn variants_by_sku(
        &self,
        skus: &[String],
    ) -> commerce_domain::error::Result<Vec<commerce_domain::catalog::SkuView>> {
        let view = |sku: &str, seller: &str| commerce_domain::catalog::SkuView {
            sku: sku.into(),
            product_id: "prd_0".into(),
            seller_id: seller.into(),
            title: "Thing".into(),
            price: Money::new(1000, Currency::USD),
            status: commerce_domain::catalog::ProductStatus::Active,
            options: Default::default(),
            components: Vec::new(),
            image: None,
            product_version: 1,
            tax_class: Default::default(),
            weight_grams: None,
            category_path: Vec::new(),
        };
        Ok(self
            .0
            .iter()
            .filter(|(sku, _)| skus.iter().any(|s| s == sku))
            .map(|(sku, seller)| view(sku, seller))
            .collect())
    }
}

fn level(sku: &str, available: i64) -> StockLevel {
    StockLevel {
        on_hand: available,
        free: available,
        avail: available,
        received: available,
        ..StockLevel::empty(sku, "wh_1")
    }
}

fn change(seq: u32, sku: &str, before: Option<i64>, after: i64) -> StockTransition {
    StockTransition {
        sequence_number: format!("{seq:020}"),
        old: before.map(|b| level(sku, b)),
        new: level(sku, after),
        at: start(),
    }
}

#[tokio::test]
async fn low_stock_alerts_the_seller_once_per_fall_by_webhook_and_email() {
    let clock = Clock::at(start());
    let store = InMemoryWebhooks::new();
    let queue = VirtualQueue::new(clock.clone());
    let mail = MailOutQueue::new();
    let catalog = Sellers(vec![("sku-0", "seller-1"), ("sku-x", "seller-2")]);
    let seller = Caller { user_id: "seller-1".into(), email: None, roles: vec![Role::Seller] };
    let policy = DeliveryPolicy::default();
    let request =
        EndpointRequest { url: "https://s.example/".into(), events: vec!["stock.low".into()], description: None };
    let endpoint = webhooks::register(&store, &OpenGuard, &seller, request, &policy, clock.now()).await.unwrap();
    let ports = AlertPorts { catalog: &catalog, endpoints: &store, deliveries: &store, queue: &queue, mail: &mail };
    let batch = [
        change(1, "sku-0", Some(7), 6), // still above 5
        change(2, "sku-0", Some(6), 4), // falls below: alert
        change(3, "sku-0", Some(4), 2), // stays low: nothing
        change(4, "sku-0", None, 1),    // a new item: nothing
        change(5, "sku-x", Some(5), 0), // another seller's SKU: its seller, not this endpoint
    ];
    assert_eq!(stock_alerts::watch(ports, &batch, 5, start()).await.unwrap(), 2);
    // The stream retries the batch: the same records make no new delivery (the emails dedupe by their ids).
    stock_alerts::watch(ports, &batch, 5, start()).await.unwrap();
    let deliveries = store.deliveries_of(&endpoint.endpoint.webhook_id);
    assert_eq!(deliveries.len(), 1);
    let body: serde_json::Value = serde_json::from_slice(deliveries[0].body.as_bytes()).unwrap();
    assert_eq!(body["type"], "stock.low");
    assert_eq!(
        body["data"],
        serde_json::json!({"sku": "sku-0", "warehouse_id": "wh_1", "available": 4, "threshold": 5})
    );
    let emails = mail.queued();
    assert_eq!(emails.len(), 4, "two alerts, queued twice");
    let ids: std::collections::BTreeSet<_> = emails.iter().map(MailEvent::event_id).collect();
    assert_eq!(ids.len(), 2);
    assert!(emails.iter().any(|e| matches!(e, MailEvent::LowStock { seller_id, .. } if seller_id == "seller-2")));
    // Restocked above and sold down again: a new fall, a new alert; a threshold of 0 never alerts.
    let again = [change(6, "sku-0", Some(2), 9), change(7, "sku-0", Some(9), 3)];
    assert_eq!(stock_alerts::watch(ports, &again, 5, start()).await.unwrap(), 1);
    assert_eq!(stock_alerts::watch(ports, &again, 0, start()).await.unwrap(), 0);
    assert_eq!(
        stock_alerts::watch(ports, &[change(8, "sku-0", Some(i64::MAX), i64::MIN)], i64::MAX, start()).await.unwrap(),
        1
    );
}

#[tokio::test]
async fn a_guests_failed_payment_is_not_mailed_and_leaves_no_claim_while_a_shoppers_is_mailed() {
    let mail = Mail::new();
    let failed = |order: &Order| MailEvent::Order {
        notification: OrderNotification { kind: NotificationKind::PaymentFailed, ..placed(order) },
    };
    let guest = order("ord_guest", None, "anyone@example.com");
    mail.orders.create_order(&guest).await.unwrap();
    assert_eq!(mail.send(&failed(&guest), start()).await.unwrap(), Outcome::NotMailed);
    assert_eq!(mail.ledger.claimed_entries(), 0, "no claim left for the guest");
    let shopper = order("ord_shopper", Some("shopper-1"), "ada@example.com");
    mail.orders.create_order(&shopper).await.unwrap();
    assert_eq!(mail.send(&failed(&shopper), start()).await.unwrap(), Outcome::Sent);
    assert_eq!(mail.outbox.sent().len(), 1);
    assert_eq!(mail.outbox.sent()[0].to, "ada@example.com");
}
