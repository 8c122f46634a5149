//! In-memory email: the mail table (ledger with leases, suppression list) with the adapter's conditional
//! writes, an outbox that records what was sent (and can be made to fail), a user directory and an emails
//! queue that keeps what was queued.

use chrono::{DateTime, Utc};
use commerce_app::ports::{Contacts, MailClaim, MailLedger, MailQueue, MailSender, Suppressions};
use commerce_domain::email::{Email, MailEvent, SuppressionReason};
use commerce_domain::error::{DomainError, Result};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Sending { lease_until: i64 },
    Sent { message_id: String },
}

/// The mail table. Clones share one state.
#[derive(Debug, Default, Clone)]
pub struct InMemoryMail {
    ledger: Arc<Mutex<HashMap<String, Entry>>>,
    suppressed: Arc<Mutex<BTreeMap<String, SuppressionReason>>>,
}

impl InMemoryMail {
    pub fn new() -> Self {
        Self::default()
    }

    /// Ledger entries marked sent.
    pub fn sent_entries(&self) -> usize {
        self.ledger.lock().expect("ledger").values().filter(|e| matches!(e, Entry::Sent { .. })).count()
    }

    /// Ledger entries still claimed (a send that crashed before it was marked).
    pub fn claimed_entries(&self) -> usize {
        self.ledger.lock().expect("ledger").values().filter(|e| matches!(e, Entry::Sending { .. })).count()
    }

    pub fn suppressed(&self) -> BTreeMap<String, SuppressionReason> {
        self.suppressed.lock().expect("suppressed").clone()
    }
}

impl MailLedger for InMemoryMail {
    async fn claim(&self, key: &str, now: DateTime<Utc>, lease: Duration) -> Result<MailClaim> {
        let mut ledger = self.ledger.lock().expect("ledger");
        match ledger.get(key) {
            Some(Entry::Sent { .. }) => Ok(MailClaim::Sent),
            Some(Entry::Sending { lease_until }) if *lease_until >= now.timestamp() => Ok(MailClaim::Busy),
            _ => {
                let lease_until = now.timestamp() + lease.as_secs() as i64;
                ledger.insert(key.to_owned(), Entry::Sending { lease_until });
                Ok(MailClaim::Mine)
            }
        }
    }

    async fn mark_sent(&self, key: &str, message_id: &str, _now: DateTime<Utc>) -> Result<()> {
        self.ledger.lock().expect("ledger").insert(key.to_owned(), Entry::Sent { message_id: message_id.to_owned() });
        Ok(())
    }

    async fn release(&self, key: &str) -> Result<()> {
        let mut ledger = self.ledger.lock().expect("ledger");
        if matches!(ledger.get(key), Some(Entry::Sending { .. })) {
            ledger.remove(key);
        }
        Ok(())
    }
}

impl Suppressions for InMemoryMail {
    async fn is_suppressed(&self, address: &str) -> Result<bool> {
        Ok(self.suppressed.lock().expect("suppressed").contains_key(&address.trim().to_lowercase()))
    }

    async fn suppress(&self, address: &str, reason: SuppressionReason, _now: DateTime<Utc>) -> Result<()> {
        self.suppressed.lock().expect("suppressed").insert(address.trim().to_lowercase(), reason);
        Ok(())
    }
}

/// What was sent. `fail_next(n)` makes the next `n` sends fail as SES refusing them would.
#[derive(Debug, Default, Clone)]
pub struct Outbox {
    sent: Arc<Mutex<Vec<Email>>>,
    failures: Arc<AtomicU32>,
}

impl Outbox {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn sent(&self) -> Vec<Email> {
        self.sent.lock().expect("outbox").clone()
    }

    pub fn fail_next(&self, n: u32) {
        self.failures.store(n, Ordering::SeqCst);
    }
}

impl MailSender for Outbox {
    async fn send(&self, email: &Email) -> Result<String> {
        let failing = self.failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        if failing {
            return Err(DomainError::Transient("SES refused the email (Throttling)".into()));
        }
        let mut sent = self.sent.lock().expect("outbox");
        sent.push(email.clone());
        Ok(format!("msg-{}", sent.len()))
    }
}

/// Users' addresses by user id.
#[derive(Debug, Default, Clone)]
pub struct Directory(Arc<Mutex<HashMap<String, String>>>);

impl Directory {
    pub fn with(entries: &[(&str, &str)]) -> Self {
        Self(Arc::new(Mutex::new(entries.iter().map(|(u, e)| ((*u).to_owned(), (*e).to_owned())).collect())))
    }
}

impl Contacts for Directory {
    async fn email_of(&self, user_id: &str) -> Result<Option<String>> {
        Ok(self.0.lock().expect("directory").get(user_id).cloned())
    }
}

/// An emails queue that keeps what was queued.
#[derive(Debug, Default, Clone)]
pub struct MailOutQueue(Arc<Mutex<Vec<MailEvent>>>);

impl MailOutQueue {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn queued(&self) -> Vec<MailEvent> {
        self.0.lock().expect("queue").clone()
    }
}

impl MailQueue for MailOutQueue {
    async fn enqueue(&self, events: &[MailEvent]) -> Result<()> {
        self.0.lock().expect("queue").extend_from_slice(events);
        Ok(())
    }
}
