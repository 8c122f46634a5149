//! Emails through the local stack, read back from the emulator's SES (`/_local/ses/sent`, what `make mail`
//! prints): a guest's confirmation opens the order by its link, shipped and delivered are mailed with the
//! carrier's link, a hard bounce suppresses the address, and a seller hears of low stock.

use crate::carts::{cart_call, guest_cart};
use crate::checkout::{checkout_body, checkout_with, stocked_sku};
use crate::inventory::{call, token};
use crate::orders::{answered, confirmed_order};
use mail_parser::{MessageParser, PartType};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;
use system_tests::{eventually, stack, unique};

/// One email the emulator's SES accepted.
#[derive(Debug, Clone)]
struct Sent {
    to: Vec<String>,
    subject: String,
    text: String,
    html: String,
}

async fn sent_emails() -> Vec<Sent> {
    let url = format!("{}/_local/ses/sent", stack().moto.trim_end_matches('/'));
    let list: Value = stack().http().get(&url).send().await.expect("sent emails").json().await.expect("a list");
    let mut emails = Vec::new();
    for message in list["messages"].as_array().expect("messages") {
        let Some(raw) = message["raw"].as_str() else { continue };
        let parsed = MessageParser::default().parse(raw.as_bytes()).expect("a MIME message");
        let part = |ids: &[u32], html: bool| -> String {
            ids.iter()
                .filter_map(|id| parsed.part(*id))
                .find_map(|p| match (&p.body, html) {
                    (PartType::Text(t), false) => Some(t.to_string()),
                    (PartType::Html(h), true) => Some(h.to_string()),
                    _ => None,
                })
                .unwrap_or_default()
        };
        let to = message["destinations"].as_array().expect("destinations");
        emails.push(Sent {
            to: to.iter().filter_map(Value::as_str).map(str::to_lowercase).collect(),
            subject: parsed.subject().unwrap_or_default().to_owned(),
            text: part(&parsed.text_body, false),
            html: part(&parsed.html_body, true),
        });
    }
    emails
}

/// The emails to `to` (any recipient for `None`) whose subject contains `subject`, once at least `n` arrived (or
/// whatever arrived after the wait).
async fn emails(to: Option<&str>, subject: &str, n: usize) -> Vec<Sent> {
    let to = to.map(str::to_lowercase);
    let pick = move |all: Vec<Sent>| -> Vec<Sent> {
        all.into_iter()
            .filter(|e| to.as_ref().is_none_or(|to| e.to.contains(to)) && e.subject.contains(subject))
            .collect()
    };
    let found = eventually(Duration::from_secs(90), || async {
        let found = pick(sent_emails().await);
        (found.len() >= n).then_some(found)
    })
    .await;
    match found {
        Some(found) => found,
        None => pick(sent_emails().await),
    }
}

async fn emails_to(to: &str, subject: &str, n: usize) -> Vec<Sent> {
    emails(Some(to), subject, n).await
}

/// A guest's checkout of one unit of `sku` with `email`; returns the order id.
async fn guest_order(sku: &str, email: &str) -> String {
    let (cart_id, cart_token) = guest_cart().await;
    let item = format!("/v1/carts/{cart_id}/items/{sku}");
    let (status, cart) = cart_call(Method::PUT, &item, None, Some(&cart_token), Some(json!({"quantity": 1}))).await;
    assert_eq!(status, 200, "{cart}");
    let mut body = checkout_body(&cart_id, "pm_card_visa");
    body["email"] = json!(email);
    let (status, _, accepted) = checkout_with(("x-cart-token", &cart_token), &unique("mail"), &body).await;
    assert_eq!(status, 202, "{accepted}");
    accepted["order_id"].as_str().expect("order_id").to_owned()
}

#[tokio::test]
async fn a_guests_confirmation_email_opens_the_order_and_comes_once() {
    let sku = stocked_sku("MAILG", 2).await;
    let address = format!("{}@example.com", unique("guest").to_lowercase());
    let order_id = guest_order(&sku, &address).await;
    let found = emails_to(&address, &format!("order {order_id} confirmed"), 1).await;
    assert_eq!(found.len(), 1, "one confirmation: {found:?}");
    let email = &found[0];
    assert!(email.subject.starts_with("Commerce Demo Shop: "), "the shop's name: {}", email.subject);
    assert!(email.text.contains(&sku) && email.html.contains(&sku), "the lines: {}", email.text);
    assert!(email.text.contains("Total"), "the totals: {}", email.text);
    let link = email.text.lines().find_map(|l| l.strip_prefix("Your order: ")).expect("a link").trim().to_owned();
    assert!(email.html.contains(&link.replace('&', "&amp;")), "the HTML part links the same page: {}", email.html);
    // The link opens the order on its own: no header, no sign-in.
    let answer = stack().http().get(&link).send().await.expect("the link");
    assert_eq!(answer.status().as_u16(), 200, "{link}");
    let order: Value = answer.json().await.expect("the order");
    assert_eq!(order["order_id"], order_id.as_str());
    assert!(!order.to_string().contains("link_issued"), "the token's record stays out of the history");
    // Its token opens nothing else.
    let token = link.split("order_token=").nth(1).expect("a token");
    let other = guest_order(&sku, &format!("{}@example.com", unique("other").to_lowercase())).await;
    let (status, _) = call(Method::GET, &format!("/v1/orders/{other}?order_token={token}"), None, None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_shipped_and_delivered_order_is_mailed_with_the_carriers_link() {
    let sku = stocked_sku("MAILS", 2).await;
    let (_shopper, order_id) = confirmed_order(&sku, 1).await;
    // The order's email is the signed-in shopper's (a fresh demo shopper-<n>).
    let confirmed = emails(None, &format!("order {order_id} confirmed"), 1).await;
    assert_eq!(confirmed.len(), 1, "{confirmed:?}");
    let shopper_address = confirmed[0].to[0].clone();
    assert!(shopper_address.starts_with("shopper-") && shopper_address.ends_with("@example.com"), "{shopper_address}");
    let shopper_address = shopper_address.as_str();
    let seller = token("seller");
    let number = format!("1Z{}", unique("M").replace(|c: char| !c.is_ascii_alphanumeric(), "").to_uppercase());
    let ship = json!({"tracking_number": number, "carrier": "ups"});
    let (status, part) =
        answered(Method::POST, &format!("/v1/seller/orders/{order_id}/ship"), &seller, Some(ship)).await;
    assert_eq!(status, 200, "{part}");
    let shipped = emails_to(shopper_address, &format!("order {order_id} has shipped"), 1).await;
    assert_eq!(shipped.len(), 1, "{shipped:?}");
    assert!(shipped[0].text.contains("Carrier: UPS"), "{}", shipped[0].text);
    assert!(shipped[0].text.contains(&format!("https://www.ups.com/track?tracknum={number}")), "{}", shipped[0].text);
    let (status, body) = answered(Method::POST, &format!("/v1/seller/orders/{order_id}/deliver"), &seller, None).await;
    assert_eq!(status, 200, "{body}");
    let delivered = emails_to(shopper_address, &format!("order {order_id} was delivered"), 1).await;
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert!(delivered[0].text.contains(&number), "{}", delivered[0].text);
}

#[tokio::test]
async fn a_hard_bounce_suppresses_the_address() {
    let sku = stocked_sku("MAILB", 4).await;
    // The emulator answers mail to its bounce simulator with a permanent bounce of recipient1@example.com,
    // through the configuration set's topic and MailFeedbackQueue to email-feedback.
    guest_order(&sku, "bounce@simulator.amazonses.com").await;
    let dynamo = aws_sdk_dynamodb::Client::new(&stack().sdk_config().await);
    let key = aws_sdk_dynamodb::types::AttributeValue::S("SUPPRESSED#recipient1@example.com".into());
    let suppressed = eventually(Duration::from_secs(90), || async {
        let item = dynamo.get_item().table_name("commerce-local-MailTable").key("pk", key.clone()).send().await.ok()?;
        item.item.filter(|i| i.get("reason").and_then(|r| r.as_s().ok()).is_some_and(|r| r == "bounce"))
    })
    .await;
    assert!(suppressed.is_some(), "the bounce was recorded");
    // A suppressed address gets nothing: sent straight to send-emails, the email of a new order is refused
    // there (the queue's own copy of the same event comes to the same).
    let order_id = guest_order(&sku, "Recipient1@Example.com").await;
    let notification = json!({"type": "order", "notification": {"notification_id": format!("{order_id}-9"),
        "kind": "order_placed", "order_id": order_id, "at": chrono::Utc::now().to_rfc3339()}});
    let batch = json!({"Records": [{"messageId": "m1", "body": notification.to_string(), "eventSource": "aws:sqs",
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1"}}]});
    let answer = eventually(Duration::from_secs(60), || async {
        let order = call(Method::GET, &format!("/v1/orders/{order_id}"), Some(&token("admin")), None).await;
        (order.1["status"] == "confirmed").then_some(())
    })
    .await;
    assert!(answer.is_some(), "the order was confirmed");
    let invoked = stack().invoke("SendEmailsFunction", &batch).await.expect("invoke send-emails");
    assert_eq!(invoked.body["batchItemFailures"], json!([]), "{invoked:?}");
    assert!(
        sent_emails().await.iter().all(|e| !e.to.contains(&"recipient1@example.com".to_owned())),
        "nothing was sent to the suppressed address"
    );
}

#[tokio::test]
async fn a_seller_is_emailed_once_when_stock_falls_below_the_threshold() {
    let sku = stocked_sku("MAILLOW", 9).await;
    let seller = token("seller");
    let path = format!("/v1/seller/inventory/{sku}/wh_east");
    for on_hand in [3, 2] {
        let (status, body) = call(Method::PUT, &path, Some(&seller), Some(json!({"on_hand": on_hand}))).await;
        assert_eq!(status, 200, "{body}");
    }
    let found = emails_to("seller@example.com", &format!("low stock for {sku}"), 1).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].text.contains("3 available") && found[0].text.contains("at 5"), "{}", found[0].text);
    // Still low after the second change: no second email (the stream is read in order, so the second change
    // was read by the time the first email went; a moment more for a wrongly queued second one to be sent).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let subject = format!("low stock for {sku}");
    let again = sent_emails().await.into_iter().filter(|e| e.subject.contains(&subject)).count();
    assert_eq!(again, 1);
}
