//! Low stock (docs/EMAIL.md, docs/WEBHOOKS.md): the inventory stream's changes that take a SKU's available
//! units in a warehouse below the threshold become a `stock.low` webhook event and an email to the SKU's
//! seller. Once per fall: a SKU that stays low says nothing more until it is restocked above the threshold
//! and falls again. Each alert's id is its stream record's, so a retried batch makes no second alert.

use chrono::{DateTime, Utc};
use commerce_domain::email::MailEvent;
use commerce_domain::error::Result;
use commerce_domain::inventory::fell_below;
use commerce_domain::seller_webhook::stock_low_event;
use std::collections::HashMap;

use crate::ports::{DeliveryQueue, MailQueue, SkuCatalog, StockTransition, WebhookDeliveries, WebhookEndpoints};
use crate::services::webhooks::deliver_events;

/// What the watcher talks to.
pub struct AlertPorts<'a, C, E, D, Q, M> {
    pub catalog: &'a C,
    pub endpoints: &'a E,
    pub deliveries: &'a D,
    pub queue: &'a Q,
    pub mail: &'a M,
}

impl<C, E, D, Q, M> Clone for AlertPorts<'_, C, E, D, Q, M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C, E, D, Q, M> Copy for AlertPorts<'_, C, E, D, Q, M> {}

/// Raises the alerts a batch of stock changes calls for; returns how many.
pub async fn watch<C, E, D, Q, M>(
    ports: AlertPorts<'_, C, E, D, Q, M>,
    changes: &[StockTransition],
    threshold: i64,
    now: DateTime<Utc>,
) -> Result<usize>
where
    C: SkuCatalog,
    E: WebhookEndpoints,
    D: WebhookDeliveries,
    Q: DeliveryQueue,
    M: MailQueue,
{
    let low: Vec<&StockTransition> = changes.iter().filter(|c| fell_below(c.old.as_ref(), &c.new, threshold)).collect();
    if low.is_empty() {
        return Ok(0);
    }
    let mut skus: Vec<String> = low.iter().map(|c| c.new.sku.clone()).collect();
    skus.sort();
    skus.dedup();
    let sellers: HashMap<String, String> =
        ports.catalog.variants_by_sku(&skus).await?.into_iter().map(|v| (v.sku, v.seller_id)).collect();
    let mut events = Vec::new();
    let mut mails = Vec::new();
    for change in low {
        let Some(seller_id) = sellers.get(&change.new.sku) else {
            tracing::warn!(sku = %change.new.sku, "low stock of a SKU no product has: nobody to tell");
            continue;
        };
        let at = if change.at.timestamp() > 0 { change.at } else { now };
        events.push(stock_low_event(seller_id, &change.new, threshold, &change.sequence_number, at)?);
        mails.push(MailEvent::LowStock {
            event_id: change.sequence_number.clone(),
            seller_id: seller_id.clone(),
            sku: change.new.sku.clone(),
            warehouse_id: Some(change.new.warehouse_id.clone()),
            available: change.new.available(),
            threshold,
        });
    }
    deliver_events(ports.endpoints, ports.deliveries, ports.queue, &events, now).await?;
    ports.mail.enqueue(&mails).await?;
    tracing::info!(alerts = mails.len(), "low stock alerts raised");
    Ok(mails.len())
}
