//! Email: the mail table (DynamoDB), the emails queue (SQS), sending through SES v2 and users' addresses from
//! Cognito.
//!
//! Mail table items (`pk` only):
//! - `SENT#<event>#<sha256 of the recipient>`: `state` (`sending` with `lease_until`, then `sent` with
//!   `message_id` and `sent_at`), `expires_at` (TTL) 30 days after the claim.
//! - `SUPPRESSED#<address>`: `reason` (`bounce` or `complaint`) and `at`; kept until removed by hand.

use crate::dynamo::{applied, n, s, text, Item, Table};
use commerce_app::ports::{MailClaim, MailLedger, MailQueue, Suppressions};
use commerce_domain::email::{MailEvent, SuppressionReason};
use commerce_domain::error::{DomainError, Result};
use std::collections::HashMap;
use std::time::Duration;

/// How long a ledger entry is kept: longer than any redelivery of its event.
const LEDGER_RETENTION_DAYS: i64 = 30;

fn pk(value: impl Into<String>) -> Item {
    HashMap::from([("pk".to_owned(), s(value))])
}

fn suppressed_pk(address: &str) -> String {
    format!("SUPPRESSED#{}", address.trim().to_lowercase())
}

#[derive(Debug, Clone)]
pub struct DynamoMail {
    table: Table,
}

impl DynamoMail {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { table: Table::new(client, table) }
    }
}

impl MailLedger for DynamoMail {
    async fn claim(&self, key: &str, now: chrono::DateTime<chrono::Utc>, lease: Duration) -> Result<MailClaim> {
        let lease_until = now.timestamp() + lease.as_secs() as i64;
        let expires = now.timestamp() + LEDGER_RETENTION_DAYS * 86_400;
        let mut item = pk(key);
        item.insert("state".into(), s("sending"));
        item.insert("lease_until".into(), n(lease_until));
        item.insert("expires_at".into(), n(expires));
        let put = self
            .table
            .client()
            .put_item()
            .table_name(self.table.name())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR (#state = :sending AND lease_until < :now)")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":sending", s("sending"))
            .expression_attribute_values(":now", n(now.timestamp()))
            .send()
            .await;
        if applied(put)? {
            return Ok(MailClaim::Mine);
        }
        let current = self.table.get(pk(key)).await?;
        Ok(match current.as_ref().and_then(|item| text(item, "state")).map(String::as_str) {
            Some("sent") => MailClaim::Sent,
            Some(_) => MailClaim::Busy,
            // Released between the two requests: the redelivery claims it.
            None => MailClaim::Busy,
        })
    }

    async fn mark_sent(&self, key: &str, message_id: &str, now: chrono::DateTime<chrono::Utc>) -> Result<()> {
        self.table
            .client()
            .update_item()
            .table_name(self.table.name())
            .set_key(Some(pk(key)))
            .update_expression("SET #state = :sent, message_id = :id, sent_at = :at REMOVE lease_until")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":sent", s("sent"))
            .expression_attribute_values(":id", s(message_id))
            .expression_attribute_values(":at", s(now.to_rfc3339()))
            .send()
            .await
            .map_err(crate::dynamo::sdk_error)?;
        Ok(())
    }

    async fn release(&self, key: &str) -> Result<()> {
        let deleted = self
            .table
            .client()
            .delete_item()
            .table_name(self.table.name())
            .set_key(Some(pk(key)))
            .condition_expression("#state = :sending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":sending", s("sending"))
            .send()
            .await;
        applied(deleted).map(|_| ())
    }
}

impl Suppressions for DynamoMail {
    async fn is_suppressed(&self, address: &str) -> Result<bool> {
        Ok(self.table.get(pk(suppressed_pk(address))).await?.is_some())
    }

    async fn suppress(
        &self,
        address: &str,
        reason: SuppressionReason,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<()> {
        let reason = match reason {
            SuppressionReason::Bounce => "bounce",
            SuppressionReason::Complaint => "complaint",
        };
        let mut item = pk(suppressed_pk(address));
        item.insert("reason".into(), s(reason));
        item.insert("at".into(), s(now.to_rfc3339()));
        self.table
            .client()
            .put_item()
            .table_name(self.table.name())
            .set_item(Some(item))
            .send()
            .await
            .map_err(crate::dynamo::sdk_error)?;
        Ok(())
    }
}

/// The emails queue.
#[derive(Debug, Clone)]
pub struct SqsMailQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsMailQueue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self { client, queue_url: queue_url.into() }
    }
}

impl MailQueue for SqsMailQueue {
    async fn enqueue(&self, events: &[MailEvent]) -> Result<()> {
        use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
        for chunk in events.chunks(10) {
            let mut entries = Vec::with_capacity(chunk.len());
            for (i, event) in chunk.iter().enumerate() {
                let body = serde_json::to_string(event).map_err(DomainError::unexpected)?;
                let entry = SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(body).build();
                entries.push(entry.map_err(DomainError::unexpected)?);
            }
            let sent = self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(crate::orders::sqs_error)?;
            if let Some(failed) = sent.failed.first() {
                return Err(DomainError::Transient(format!("an email was not queued: {}", failed.code)));
            }
        }
        Ok(())
    }
}

#[cfg(feature = "mail")]
pub use sending::{CognitoContacts, SesMailer};

#[cfg(feature = "mail")]
mod sending {
    use aws_sdk_sesv2::primitives::Blob;
    use aws_sdk_sesv2::types::{Destination, EmailContent, MessageTag, RawMessage};
    use commerce_app::ports::{Contacts, MailSender};
    use commerce_domain::email::Email;
    use commerce_domain::error::{DomainError, Result};

    /// Sends through SES v2 as one MIME message with a text and an HTML part (multipart/alternative), from
    /// `"<shop name>" <from>`, through the configuration set (whose event destination reports bounces and
    /// complaints). Tagged with the email's kind.
    #[derive(Debug, Clone)]
    pub struct SesMailer {
        client: aws_sdk_sesv2::Client,
        shop_name: String,
        from: String,
        configuration_set: String,
    }

    impl SesMailer {
        pub fn new(
            client: aws_sdk_sesv2::Client,
            shop_name: impl Into<String>,
            from: impl Into<String>,
            configuration_set: impl Into<String>,
        ) -> Self {
            Self { client, shop_name: shop_name.into(), from: from.into(), configuration_set: configuration_set.into() }
        }

        /// The MIME message.
        pub fn mime(&self, email: &Email) -> Result<Vec<u8>> {
            mail_builder::MessageBuilder::new()
                .from((self.shop_name.as_str(), self.from.as_str()))
                .to(email.to.as_str())
                .subject(email.subject.as_str())
                .text_body(email.text.as_str())
                .html_body(email.html.as_str())
                .write_to_vec()
                .map_err(DomainError::unexpected)
        }
    }

    impl MailSender for SesMailer {
        async fn send(&self, email: &Email) -> Result<String> {
            let raw =
                RawMessage::builder().data(Blob::new(self.mime(email)?)).build().map_err(DomainError::unexpected)?;
            let tag = MessageTag::builder()
                .name("kind")
                .value(email.kind.as_str())
                .build()
                .map_err(DomainError::unexpected)?;
            let sent = self
                .client
                .send_email()
                .from_email_address(&self.from)
                .destination(Destination::builder().to_addresses(&email.to).build())
                .content(EmailContent::builder().raw(raw).build())
                .configuration_set_name(&self.configuration_set)
                .email_tags(tag)
                .send()
                .await
                .map_err(|err| {
                    use aws_sdk_sesv2::error::ProvideErrorMetadata;
                    let code = err.as_service_error().and_then(|e| e.code()).unwrap_or("unknown").to_owned();
                    DomainError::Transient(format!(
                        "SES refused the email ({code}): {}",
                        aws_sdk_sesv2::error::DisplayErrorContext(&err)
                    ))
                })?;
            Ok(sent.message_id.unwrap_or_default())
        }
    }

    /// Users' verified email addresses from the user pool, by `sub` (the user id of every token).
    #[derive(Debug, Clone)]
    pub struct CognitoContacts {
        client: aws_sdk_cognitoidentityprovider::Client,
        user_pool_id: String,
    }

    impl CognitoContacts {
        pub fn new(client: aws_sdk_cognitoidentityprovider::Client, user_pool_id: impl Into<String>) -> Self {
            Self { client, user_pool_id: user_pool_id.into() }
        }
    }

    impl Contacts for CognitoContacts {
        async fn email_of(&self, user_id: &str) -> Result<Option<String>> {
            // A filter value is quoted: an id that could break out of the quotes is nobody's.
            if user_id.is_empty() || user_id.len() > 128 || user_id.contains(['"', '\\']) {
                return Ok(None);
            }
            let found = self
                .client
                .list_users()
                .user_pool_id(&self.user_pool_id)
                .filter(format!("sub = \"{user_id}\""))
                .limit(1)
                .send()
                .await
                .map_err(|err| {
                    DomainError::Transient(format!(
                        "user pool: {}",
                        aws_sdk_cognitoidentityprovider::error::DisplayErrorContext(&err)
                    ))
                })?;
            // Only an address its owner proved: mail to an unverified one could go to a stranger.
            let address = found.users().first().and_then(|user| {
                let attribute =
                    |name: &str| user.attributes().iter().find(|a| a.name() == name).and_then(|a| a.value());
                (attribute("email_verified") == Some("true")).then(|| attribute("email").map(str::to_owned)).flatten()
            });
            Ok(address)
        }
    }
}
