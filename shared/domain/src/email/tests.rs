use super::*;
use crate::money::Currency;
use crate::order::{Actor, Customer, OrderAccess, OrderEventKind, ShippingAddress};
use crate::tracking::Carrier;

fn usd(amount: i64) -> Money {
    Money::new(amount, Currency::USD)
}

fn shop() -> Shop {
    Shop { name: "Corner Shop".into(), base_url: "https://api.example.com/".into() }
}

fn order(user: Option<&str>) -> Order {
    let lines = vec![
        OrderLine::new("sku-a", "prd_a", "seller-1", "Mug <b>large</b>", 2, usd(1000)).unwrap(),
        OrderLine::new("sku-b", "prd_b", "seller-2", "Tea", 1, usd(550)).unwrap(),
    ];
    let address = ShippingAddress {
        name: "Ada".into(),
        line1: "1 Main St".into(),
        line2: None,
        city: "Springfield".into(),
        region: Some("IL".into()),
        postal_code: "62701".into(),
        country: "US".into(),
    };
    let customer = Customer { user_id: user.map(str::to_owned), email: Some("Ada@Example.com".into()) };
    let actor = user.map_or(Actor::system("guest"), Actor::shopper);
    let mut order = Order::place("ord_1".into(), customer, "crt_1".into(), lines, address, actor, Utc::now()).unwrap();
    order
        .record(OrderEventKind::Confirmed { payment_id: "pi_1".into() }, Actor::system("saga"), None, Utc::now())
        .unwrap();
    order
}

fn notification(
    kind: NotificationKind,
    order: &Order,
    seller: Option<&str>,
    amount: Option<Money>,
) -> OrderNotification {
    OrderNotification::new(kind, order, order.version(), seller.map(str::to_owned), amount)
}

#[test]
fn the_confirmation_shows_the_shop_the_lines_the_totals_and_the_link_in_both_parts() {
    let order = order(None);
    let url = shop().order_url("ord_1", Some("tok"));
    let letter =
        Letter::of_order(&notification(NotificationKind::OrderPlaced, &order, None, None), &order, Some(url)).unwrap();
    let email = letter.render(&shop(), "ada@example.com").unwrap();
    assert_eq!(email.kind, MailKind::OrderConfirmed);
    assert_eq!(email.subject, "Corner Shop: order ord_1 confirmed");
    for part in [&email.text, &email.html] {
        assert!(part.contains("Corner Shop"), "{part}");
        assert!(part.contains("sku-a") && part.contains("sku-b"), "{part}");
        assert!(part.contains("20.00 USD") && part.contains("5.50 USD") && part.contains("25.50 USD"), "{part}");
        assert!(part.contains("https://api.example.com/v1/orders/ord_1?order_token=tok"), "{part}");
    }
    assert!(email.text.contains("2 x Mug <b>large</b>"), "the text part is not escaped: {}", email.text);
    assert!(email.html.contains("Mug &#60;b&#62;large&#60;/b&#62;"), "a title cannot inject HTML: {}", email.html);
    assert!(!email.html.contains("<b>large"), "{}", email.html);
}

#[test]
fn every_mailed_kind_renders_and_the_others_are_not_mailed() {
    let mut order = order(Some("u1"));
    let started = OrderEventKind::ShippingStarted {
        seller_id: "seller-1".into(),
        tracking_number: "1Z999".into(),
        carrier: Some(Carrier::Ups),
        tracking_url: None,
    };
    order.record(started, Actor::seller("seller-1"), None, Utc::now()).unwrap();
    let captured = order.seller_part("seller-1").unwrap().totals.total;
    let shipped = OrderEventKind::Shipped { seller_id: "seller-1".into(), tracking_number: "1Z999".into(), captured };
    order.record(shipped, Actor::seller("seller-1"), None, Utc::now()).unwrap();
    let cases = [
        (NotificationKind::OrderShipped, "has shipped", "1Z999"),
        (NotificationKind::OrderDelivered, "was delivered", "1Z999"),
        (NotificationKind::OrderRefunded, "3.25 USD refunded", "3.25 USD"),
        (NotificationKind::ReturnApproved, "return approved", "Mug"),
        (NotificationKind::PaymentFailed, "payment failed", "declined"),
    ];
    for (kind, subject, body) in cases {
        let n = notification(kind, &order, Some("seller-1"), Some(usd(325)));
        let email = Letter::of_order(&n, &order, None).unwrap().render(&shop(), "a@example.com").unwrap();
        assert!(email.subject.contains(subject), "{kind:?}: {}", email.subject);
        assert!(email.text.contains(body) && email.html.contains(body), "{kind:?}: {}", email.text);
    }
    let shipped = notification(NotificationKind::OrderShipped, &order, Some("seller-1"), None);
    let text = Letter::of_order(&shipped, &order, None).unwrap().render(&shop(), "a@example.com").unwrap().text;
    let link = order.shipment_view("seller-1").unwrap().tracking_url.unwrap();
    assert!(text.contains("Carrier: UPS") && text.contains(&format!("Track it: {link}")), "{text}");
    for kind in [NotificationKind::OrderCancelled, NotificationKind::ReturnRequested] {
        assert!(Letter::of_order(&notification(kind, &order, None, None), &order, None).is_none(), "{kind:?}");
    }
    let others = [
        Letter::FlashSaleWon {
            title: "Console".into(),
            expires_at: shown_time(Utc::now()),
            checkout_url: shop().flash_checkout_url("fs_1", "tk_1"),
        },
        Letter::LowStock { sku: "sku-a".into(), available: 2, threshold: 5, warehouse: Some("wh_1".into()) },
        Letter::WebhookDisabled {
            webhook_id: "wh_1".into(),
            url: "https://x.example".into(),
            reason: "410 Gone".into(),
        },
    ];
    for letter in others {
        let email = letter.render(&shop(), "s@example.com").unwrap();
        assert!(email.text.contains("Corner Shop") && email.html.contains("<html"), "{letter:?}");
    }
}

#[test]
fn a_line_break_in_a_subject_cannot_add_a_header() {
    let shop = Shop { name: "Shop\r\nBcc: victim@example.com".into(), base_url: "https://x.example".into() };
    let letter = Letter::LowStock { sku: "SKU\nX-Evil: 1".into(), available: 1, threshold: 5, warehouse: None };
    let email = letter.render(&shop, "s@example.com").unwrap();
    assert!(!email.subject.contains('\n') && !email.subject.contains('\r'), "{:?}", email.subject);
}

#[test]
fn a_guests_failed_payment_is_not_mailed_to_the_address_the_checkout_was_given() {
    let guest = order(None);
    let n = notification(NotificationKind::PaymentFailed, &guest, None, None);
    assert!(Letter::of_order(&n, &guest, None).is_none());
    let shopper = order(Some("u1"));
    let n = notification(NotificationKind::PaymentFailed, &shopper, None, None);
    assert!(Letter::of_order(&n, &shopper, None).is_some());
}

#[test]
fn a_shipped_email_needs_the_shipment() {
    let order = order(Some("u1"));
    let n = notification(NotificationKind::OrderShipped, &order, Some("seller-1"), None);
    assert!(Letter::of_order(&n, &order, None).is_none(), "nothing shipped: no email rather than a wrong one");
}

#[test]
fn emailed_links_open_a_guests_order_only_and_are_capped() {
    let mut guest = order(None);
    let token = guest.issue_link(Actor::system("email"), Utc::now()).unwrap();
    let access = |token: &str| OrderAccess { user_id: None, admin: false, order_token: Some(token.to_owned()) };
    assert!(guest.authorize(&access(&token)).is_ok());
    assert!(guest.authorize(&access("nope")).is_err());
    let view = serde_json::to_string(&guest.view(None)).unwrap();
    assert!(!view.contains("link_issued"), "the owner's history leaves the tokens out: {view}");
    for _ in 1..crate::order::MAX_ORDER_LINKS {
        assert!(guest.issue_link(Actor::system("email"), Utc::now()).is_some());
    }
    assert!(guest.issue_link(Actor::system("email"), Utc::now()).is_none(), "capped");
    let mut signed_in = order(Some("u1"));
    assert!(signed_in.issue_link(Actor::system("email"), Utc::now()).is_none());
}

#[test]
fn addresses_are_normalized_and_nonsense_is_refused() {
    assert_eq!(normalize_address("  Ada@Example.COM ").as_deref(), Some("ada@example.com"));
    let too_long = format!("{}@example.com", "a".repeat(250));
    for bad in [
        "",
        "ada",
        "@example.com",
        "ada@",
        "ada@localhost",
        "a b@example.com",
        "a@b@example.com",
        "<a@x.com>",
        "a@x..com",
        &too_long,
    ] {
        assert_eq!(normalize_address(bad), None, "{bad}");
    }
    assert_eq!(ledger_key("order:ord_1-2", "Ada@Example.com"), ledger_key("order:ord_1-2", "ada@example.com "));
    assert_ne!(ledger_key("order:ord_1-2", "ada@example.com"), ledger_key("order:ord_1-3", "ada@example.com"));
    assert!(!ledger_key("e", "ada@example.com").contains("ada"), "no address in a key");
}

#[test]
fn feedback_suppresses_hard_bounces_and_complaints_only() {
    // The event-publishing shape (configuration set -> SNS).
    let hard = serde_json::json!({"eventType": "Bounce", "bounce": {"bounceType": "Permanent", "feedbackId": "f1",
        "bouncedRecipients": [{"emailAddress": "Gone@Example.com", "action": "failed"}]}});
    let parsed = Feedback::parse(&hard);
    assert_eq!(parsed.suppress, vec!["gone@example.com".to_owned()]);
    assert_eq!(parsed.reason, Some(SuppressionReason::Bounce));
    let soft = serde_json::json!({"eventType": "Bounce", "bounce": {"bounceType": "Transient",
        "bouncedRecipients": [{"emailAddress": "full@example.com"}]}});
    assert!(Feedback::parse(&soft).suppress.is_empty(), "a full mailbox is not suppressed");
    // The identity-notification shape, as the emulator publishes it: a delayed recipient is not suppressed.
    let moto = serde_json::json!({"notificationType": "Bounce, Complaint, or Delivery.", "bounce": {"bounceType": "Permanent",
        "bouncedRecipients": [{"emailAddress": "recipient1@example.com", "action": "failed"},
                              {"emailAddress": "recipient2@example.com", "action": "delayed"}]}});
    assert_eq!(Feedback::parse(&moto).suppress, vec!["recipient1@example.com".to_owned()]);
    let complaint = serde_json::json!({"notificationType": "Complaint",
        "complaint": {"complainedRecipients": [{"emailAddress": "angry@example.com"}, {"emailAddress": "not an address"}]}});
    let parsed = Feedback::parse(&complaint);
    assert_eq!(parsed.suppress, vec!["angry@example.com".to_owned()]);
    assert_eq!(parsed.reason, Some(SuppressionReason::Complaint));
    assert!(Feedback::parse(&serde_json::json!({"eventType": "Delivery"})).suppress.is_empty());
}

#[test]
fn mail_events_have_stable_ids_per_kind() {
    let order = order(None);
    let n = notification(NotificationKind::OrderPlaced, &order, None, None);
    let event = MailEvent::Order { notification: n.clone() };
    let json = serde_json::to_string(&event).unwrap();
    let back: MailEvent = serde_json::from_str(&json).unwrap();
    assert_eq!(back, event);
    assert_eq!(event.event_id(), format!("order:{}", n.notification_id));
    let stock = MailEvent::LowStock {
        event_id: "sku-a-7".into(),
        seller_id: "s".into(),
        sku: "sku-a".into(),
        warehouse_id: None,
        available: i64::MIN,
        threshold: i64::MAX,
    };
    assert_eq!(stock.event_id(), "stock:sku-a-7");
}
