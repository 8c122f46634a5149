//! Shipment tracking: a seller posts updates of their shipment, a carrier posts them to its signed webhook.
//! Each update is recorded once on the order (see `Order::track`); a `delivered` update delivers the seller's
//! part, and the order is delivered when every part is.

use crate::ports::{CarrierSignature, OrderEventPublisher, OrderReader, OrderWriter, ParcelIndex};
use crate::services::checkout::update_order;
use crate::services::orders::publish_delivered;
use chrono::{DateTime, Utc};
use commerce_domain::auth::Caller;
use commerce_domain::error::{DomainError, Result};
use commerce_domain::ids::OrderId;
use commerce_domain::order::{Actor, OrderStatus, ShipmentView, Tracked};
use commerce_domain::tracking::{Carrier, CarrierEvent, TrackingStatus, TrackingUpdate};
use serde::Serialize;

/// `POST /v1/seller/orders/{order_id}/shipments/{shipment_id}/events`: the seller's update of their own
/// shipment. Another seller's shipment, or an order without this seller's lines, is 404.
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id, order_id = %order_id, shipment_id = %shipment_id))]
pub async fn seller_update<O, Q>(
    orders: &O,
    publisher: &Q,
    caller: &Caller,
    order_id: &OrderId,
    shipment_id: &str,
    update: TrackingUpdate,
    now: DateTime<Utc>,
) -> Result<(Tracked, ShipmentView)>
where
    O: OrderReader + OrderWriter,
    Q: OrderEventPublisher,
{
    caller.require_seller()?;
    let update = update.validated(now)?;
    let seller = caller.user_id.clone();
    let mut outcome = Tracked::Duplicate;
    let order = update_order(orders, order_id, |order| {
        if order.status() == OrderStatus::Pending || order.shipment_seller(shipment_id) != Some(seller.as_str()) {
            return Err(DomainError::not_found("shipment"));
        }
        outcome = order.track(&seller, update.clone(), Actor::seller(&seller), now)?;
        Ok(matches!(outcome, Tracked::Recorded { .. }))
    })
    .await?;
    if update.status == TrackingStatus::Delivered {
        // Also on a duplicate: the first request may have stopped before publishing.
        publish_delivered(publisher, &order, &seller).await?;
    }
    let view = order.shipment_view(&seller).ok_or_else(|| DomainError::not_found("shipment"))?;
    Ok((outcome, view))
}

/// What a carrier's delivery came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CarrierOutcome {
    /// Shipments the update was recorded on (a parcel may carry several orders).
    pub recorded: usize,
    /// Shipments that already had it (a redelivery).
    pub duplicate: usize,
    /// Shipments that keep no more updates (see `tracking::MAX_UPDATES_PER_ORDER`).
    pub ignored: usize,
}

/// `POST /v1/webhooks/carriers/{carrier}`: checks the signature, then records the update on every shipment
/// of the parcel. A parcel no shipment of ours has (yet) is 404 `not_found`, so the carrier tries again later;
/// an index entry whose order shipped with another parcel (the shipment was aborted and shipped again) is
/// skipped.
#[tracing::instrument(skip_all, fields(carrier = %carrier_name))]
pub async fn carrier_update<O, Q>(
    orders: &O,
    publisher: &Q,
    signatures: &impl CarrierSignature,
    carrier_name: &str,
    signature: Option<&str>,
    payload: &[u8],
    now: DateTime<Utc>,
) -> Result<CarrierOutcome>
where
    O: OrderReader + OrderWriter + ParcelIndex,
    Q: OrderEventPublisher,
{
    let carrier =
        Carrier::parse(carrier_name).filter(|c| c.has_webhook()).ok_or_else(|| DomainError::not_found("carrier"))?;
    let signature = signature.ok_or_else(|| DomainError::invalid_parameter("Carrier-Signature", "is missing"))?;
    signatures.verify(signature, payload, now)?;
    let event: CarrierEvent = serde_json::from_slice(payload)
        .map_err(|err| DomainError::MalformedBody(format!("not a carrier event: {err}")))?;
    if event.id.trim().is_empty() || event.id.len() > commerce_domain::tracking::MAX_EVENT_ID {
        return Err(DomainError::validation("id", "must be 1 to 100 characters"));
    }
    let update = event.update().validated(now)?;
    let number = event.tracking_number.trim();
    if number.is_empty() || number.chars().count() > commerce_domain::tracking::MAX_TRACKING_NUMBER {
        // No shipment of ours has such a number (and it could not be a key).
        return Err(DomainError::not_found("shipment"));
    }
    let mut outcome = CarrierOutcome { recorded: 0, duplicate: 0, ignored: 0 };
    let mut found = false;
    for (order_id, seller) in orders.parcel_shipments(carrier, number).await? {
        let mut tracked = None;
        let order = update_order(orders, &order_id, |order| {
            tracked = None;
            let ours = order.parcel(&seller).is_some_and(|p| p.carrier == carrier && p.tracking_number == number);
            if !ours || order.shipment(&seller).is_none() {
                return Ok(false);
            }
            let result = order.track(&seller, update.clone(), Actor::carrier(carrier), now)?;
            tracked = Some(result);
            Ok(matches!(result, Tracked::Recorded { .. }))
        })
        .await?;
        match tracked {
            None => continue,
            Some(Tracked::Recorded { .. }) => outcome.recorded += 1,
            Some(Tracked::Duplicate) => outcome.duplicate += 1,
            Some(Tracked::Ignored) => outcome.ignored += 1,
        }
        found = true;
        if update.status == TrackingStatus::Delivered {
            publish_delivered(publisher, &order, &seller).await?;
        }
    }
    if !found {
        return Err(DomainError::not_found("shipment"));
    }
    tracing::info!(event_id = %event.id, status = update.status.as_str(), ?outcome, "carrier update");
    Ok(outcome)
}
