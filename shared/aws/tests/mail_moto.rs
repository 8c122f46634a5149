//! The mail adapters over the real wire protocol, against the local AWS endpoint in `LOCAL_AWS_ENDPOINT` (the
//! emulator): the mail table's ledger under racing claims and leases, the suppression list, the emails queue,
//! and (with the `mail` feature) SES v2 and the user pool. Without the variable the tests print why and pass
//! without running.

use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
use chrono::{Duration, Utc};
use commerce_app::ports::{MailClaim, MailLedger, MailQueue, Suppressions};
use commerce_aws::mail::{DynamoMail, SqsMailQueue};
use commerce_domain::email::{ledger_key, MailEvent, SuppressionReason};
use commerce_testkit::dynamo::{local_client, local_endpoint, unique_name};
use futures::future::join_all;

async fn config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "test"))
        .load()
        .await
}

/// A mail table as the template makes it (`pk` only), with its client and name.
async fn table_with_name() -> Option<(DynamoMail, aws_sdk_dynamodb::Client, String)> {
    let client = local_client(&local_endpoint()?).await;
    let name = unique_name("mail-test");
    client
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("pk").attribute_type(ScalarAttributeType::S).build().unwrap(),
        )
        .key_schema(KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build().unwrap())
        .send()
        .await
        .expect("create the mail table");
    Some((DynamoMail::new(client.clone(), &name), client, name))
}

async fn table() -> Option<DynamoMail> {
    table_with_name().await.map(|(mail, _, _)| mail)
}

/// The `state` of the ledger entry under `key`.
async fn state(client: &aws_sdk_dynamodb::Client, table: &str, key: &str) -> Option<String> {
    let key = aws_sdk_dynamodb::types::AttributeValue::S(key.to_owned());
    let item = client.get_item().table_name(table).key("pk", key).consistent_read(true).send().await.unwrap();
    item.item?.get("state")?.as_s().ok().cloned()
}

#[tokio::test]
async fn of_thirty_two_racing_claims_one_wins_and_a_sent_email_stays_sent() {
    let Some((mail, client, name)) = table_with_name().await else { return };
    let key = ledger_key("order:ord_1-2", "Ada@Example.com");
    let now = Utc::now();
    let lease = std::time::Duration::from_secs(60);
    let claims = join_all((0..32).map(|_| mail.claim(&key, now, lease))).await;
    let mine = claims.iter().filter(|c| matches!(c, Ok(MailClaim::Mine))).count();
    assert_eq!(mine, 1, "{claims:?}");
    assert!(claims.iter().all(|c| matches!(c, Ok(MailClaim::Mine | MailClaim::Busy))), "{claims:?}");
    mail.mark_sent(&key, "msg-1", now).await.unwrap();
    assert_eq!(state(&client, &name, &key).await.as_deref(), Some("sent"));
    // Long after any lease: still sent, and a release does not undo a sent email.
    assert_eq!(mail.claim(&key, now + Duration::days(1), lease).await.unwrap(), MailClaim::Sent);
    mail.release(&key).await.unwrap();
    assert_eq!(mail.claim(&key, now + Duration::days(1), lease).await.unwrap(), MailClaim::Sent);
}

#[tokio::test]
async fn a_claim_is_busy_until_its_lease_runs_out_or_it_is_released() {
    let Some(mail) = table().await else { return };
    let key = ledger_key("stock:42", "seller@example.com");
    let now = Utc::now();
    let lease = std::time::Duration::from_secs(60);
    assert_eq!(mail.claim(&key, now, lease).await.unwrap(), MailClaim::Mine);
    assert_eq!(mail.claim(&key, now + Duration::seconds(59), lease).await.unwrap(), MailClaim::Busy);
    assert_eq!(
        mail.claim(&key, now + Duration::seconds(61), lease).await.unwrap(),
        MailClaim::Mine,
        "a crashed worker's"
    );
    mail.release(&key).await.unwrap();
    assert_eq!(mail.claim(&key, now + Duration::seconds(62), lease).await.unwrap(), MailClaim::Mine, "released");
}

#[tokio::test]
async fn suppressed_addresses_are_found_whatever_their_case() {
    let Some(mail) = table().await else { return };
    assert!(!mail.is_suppressed("gone@example.com").await.unwrap());
    mail.suppress("Gone@Example.com", SuppressionReason::Bounce, Utc::now()).await.unwrap();
    mail.suppress("gone@example.com", SuppressionReason::Bounce, Utc::now()).await.unwrap();
    assert!(mail.is_suppressed("GONE@example.com").await.unwrap());
    assert!(!mail.is_suppressed("other@example.com").await.unwrap());
}

#[tokio::test]
async fn twenty_five_mail_events_are_queued_in_batches_of_ten_and_read_back_whole() {
    let Some(endpoint) = local_endpoint() else { return };
    let sqs = aws_sdk_sqs::Client::new(&config(&endpoint).await);
    let url = sqs.create_queue().queue_name(unique_name("emails")).send().await.unwrap().queue_url.unwrap();
    let queue = SqsMailQueue::new(sqs.clone(), &url);
    let events: Vec<MailEvent> = (0..25)
        .map(|i| MailEvent::LowStock {
            event_id: format!("{i}"),
            seller_id: "seller-1".into(),
            sku: format!("SKU-{i}"),
            warehouse_id: Some("wh_east".into()),
            available: i64::MIN + i,
            threshold: i64::MAX,
        })
        .collect();
    queue.enqueue(&events).await.unwrap();
    let mut read = Vec::new();
    while read.len() < 25 {
        let got = sqs.receive_message().queue_url(&url).max_number_of_messages(10).send().await.unwrap();
        let messages = got.messages.unwrap_or_default();
        assert!(!messages.is_empty(), "only {} came back", read.len());
        for m in messages {
            read.push(serde_json::from_str::<MailEvent>(m.body.as_deref().unwrap()).unwrap());
        }
    }
    read.sort_by_key(MailEvent::event_id);
    let mut sent = events.clone();
    sent.sort_by_key(MailEvent::event_id);
    assert_eq!(read, sent);
}

#[cfg(feature = "mail")]
mod sending {
    use super::*;
    use commerce_app::ports::{Contacts, MailSender};
    use commerce_aws::mail::{CognitoContacts, SesMailer};
    use commerce_domain::email::{Email, MailKind};

    #[tokio::test]
    async fn ses_sends_a_text_and_html_message_from_a_verified_domain_only() {
        let Some(endpoint) = local_endpoint() else { return };
        let ses = aws_sdk_sesv2::Client::new(&config(&endpoint).await);
        let domain = format!("{}.example.com", unique_name("shop"));
        ses.create_email_identity().email_identity(&domain).send().await.unwrap();
        let set = unique_name("mail");
        ses.create_configuration_set().configuration_set_name(&set).send().await.unwrap();
        let email = Email {
            kind: MailKind::OrderConfirmed,
            to: "ada@example.com".into(),
            subject: "Shop: order ord_1 confirmed — thank you".into(),
            text: format!("Your order: https://api.example.com/v1/orders/ord_1?order_token={}\n", "x".repeat(90)),
            html: "<p>Thank you</p>".into(),
        };
        let mailer = SesMailer::new(ses.clone(), "Shop \"Ltd\"", format!("orders@{domain}"), &set);
        let id = mailer.send(&email).await.unwrap();
        assert!(!id.is_empty());
        // The MIME message holds both parts; a long link survives the transfer encoding.
        let mime = String::from_utf8(mailer.mime(&email).unwrap()).unwrap();
        assert!(mime.contains("multipart/alternative") && mime.contains("text/plain") && mime.contains("text/html"));
        let parsed = mail_parser::MessageParser::default().parse(mime.as_bytes()).unwrap();
        assert_eq!(parsed.subject(), Some(email.subject.as_str()));
        assert_eq!(parsed.body_text(0).unwrap().trim_end(), email.text.trim_end());
        let refused = SesMailer::new(ses, "Shop", "orders@unverified.example.net", &set).send(&email).await;
        assert!(refused.is_err(), "an unverified sender is refused");
    }

    #[tokio::test]
    async fn a_users_verified_address_is_found_by_its_sub_and_an_unverified_one_is_not() {
        let Some(endpoint) = local_endpoint() else { return };
        let cognito = aws_sdk_cognitoidentityprovider::Client::new(&config(&endpoint).await);
        let pool = cognito.create_user_pool().pool_name(unique_name("pool")).send().await.unwrap();
        let pool_id = pool.user_pool.unwrap().id.unwrap();
        let mut subs = Vec::new();
        for (name, verified) in [("verified", "true"), ("unverified", "false")] {
            use aws_sdk_cognitoidentityprovider::types::AttributeType;
            let attribute = |n: &str, v: &str| AttributeType::builder().name(n).value(v).build().unwrap();
            let user = cognito
                .admin_create_user()
                .user_pool_id(&pool_id)
                .username(name)
                .user_attributes(attribute("email", &format!("{name}@example.com")))
                .user_attributes(attribute("email_verified", verified))
                .send()
                .await
                .unwrap();
            let attrs = user.user.unwrap().attributes.unwrap_or_default();
            subs.push(attrs.iter().find(|a| a.name == "sub").and_then(|a| a.value.clone()).unwrap());
        }
        let contacts = CognitoContacts::new(cognito, &pool_id);
        assert_eq!(contacts.email_of(&subs[0]).await.unwrap().as_deref(), Some("verified@example.com"));
        assert_eq!(contacts.email_of(&subs[1]).await.unwrap(), None);
        for nobody in ["", "no-such-user", "\" or sub ^= \"", &"a".repeat(200)] {
            assert_eq!(contacts.email_of(nobody).await.unwrap(), None, "{nobody}");
        }
    }
}
