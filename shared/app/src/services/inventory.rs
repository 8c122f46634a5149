//! Inventory use cases: sellers setting, adjusting and reading their stock; admins managing warehouses; and
//! the reservation API the checkout saga calls (`reserve`, `release`, `commit`, `get_reservation`) plus the
//! sweeper that releases expired reservations.
//!
//! A reservation is planned from a consistent read (warehouses nearest-first, stock per item) and written as
//! one conditional transaction. If stock moved between the read and the write, the write is refused as a
//! whole and the plan is made again; the read only chooses warehouses, the conditions decide.

use crate::ports::{
    FinishOutcome, ReservationReplacer, ReservationStore, SkuCatalog, StockReader, StockWriter, WarehouseReader,
    WarehouseWriter,
};
use chrono::{DateTime, Utc};
use commerce_domain::auth::Caller;
use commerce_domain::catalog::{Component, SkuView};
use commerce_domain::error::ErrorCode;
use commerce_domain::error::{DomainError, Result};
use commerce_domain::ids::Sku;
use commerce_domain::inventory::reservation::{expired, Action, ReplaceOutcome, Transition, MAX_ALLOCATIONS};
use commerce_domain::inventory::{
    allocate, bundle_lines, draws_on_own_stock, expand_lines, is_stock_item, item_violations, rank_warehouses,
    validate_warehouse_id, AdjustOutcome, AdjustmentKey, NewWarehouse, Reservation, ReservationPolicy,
    ReservationRequest, ReservationStatus, SetStock, SkuStock, StockAdjustment, StockLevel, StockView, Warehouse,
};
use std::collections::HashMap;
use std::time::Duration;

/// How many times a reservation is re-planned after losing a race for stock.
const RESERVE_ATTEMPTS: u32 = 12;
/// How many times a release or commit re-reads after a concurrent finish.
const FINISH_ATTEMPTS: u32 = 5;

/// The SKU, if the caller may manage its stock: a seller for their own products, or an admin.
async fn owned_sku(caller: &Caller, catalog: &impl SkuCatalog, sku: &str) -> Result<SkuView> {
    caller.require_seller()?;
    let view = catalog
        .variants_by_sku(&[sku.to_owned()])
        .await?
        .into_iter()
        .find(|v| v.sku == sku)
        .ok_or_else(|| DomainError::not_found("sku"))?;
    if view.seller_id != caller.user_id && !caller.is_admin() {
        return Err(DomainError::forbidden("this SKU belongs to another seller"));
    }
    Ok(view)
}

async fn stock_item(
    caller: &Caller,
    catalog: &impl SkuCatalog,
    warehouses: &impl WarehouseReader,
    sku: &str,
    warehouse_id: &str,
) -> Result<()> {
    validate_warehouse_id(warehouse_id)?;
    let view = owned_sku(caller, catalog, sku).await?;
    if !is_stock_item(&view) {
        return Err(DomainError::validation("sku", "a bundle has no stock of its own; set its components' stock"));
    }
    if !warehouses.list_warehouses().await?.iter().any(|w| w.warehouse_id == warehouse_id) {
        return Err(DomainError::not_found("warehouse"));
    }
    Ok(())
}

/// Sets a SKU's on-hand count (and optionally safety stock) in one warehouse.
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id, sku = %sku, warehouse_id = %warehouse_id))]
pub async fn set_stock(
    caller: &Caller,
    catalog: &impl SkuCatalog,
    warehouses: &impl WarehouseReader,
    writer: &impl StockWriter,
    sku: &Sku,
    warehouse_id: &str,
    set: SetStock,
) -> Result<StockView> {
    let sku = sku.as_str();
    set.validate()?;
    stock_item(caller, catalog, warehouses, sku, warehouse_id).await?;
    let level = writer.set_stock(sku, warehouse_id, &set).await?;
    tracing::info!(sku, warehouse_id, on_hand = level.on_hand, "stock set");
    Ok(StockView::from(&level))
}

/// What an adjustment under an Idempotency-Key answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adjusted {
    /// Applied now: the warehouse's stock after it.
    Applied(StockView),
    /// A retry of an applied adjustment: nothing changed; the first result.
    Replayed(StockView),
    /// The key was first used for a different adjustment (422 `idempotency_key_reused`).
    KeyReused,
}

/// Adjusts a SKU's on-hand count in one warehouse by a delta, exactly once per `Idempotency-Key` (required:
/// 400 `invalid_parameter` naming the header without one).
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id, sku = %sku, warehouse_id = %warehouse_id))]
pub async fn adjust_stock(
    caller: &Caller,
    catalog: &impl SkuCatalog,
    stock: &(impl WarehouseReader + StockWriter),
    sku: &Sku,
    warehouse_id: &str,
    adjustment: StockAdjustment,
    idempotency_key: Option<&str>,
) -> Result<Adjusted> {
    let sku = sku.as_str();
    adjustment.validate()?;
    let key = AdjustmentKey::new(&caller.user_id, sku, warehouse_id, idempotency_key, &adjustment)?;
    stock_item(caller, catalog, stock, sku, warehouse_id).await?;
    Ok(match stock.adjust_stock_once(sku, warehouse_id, &adjustment, &key).await? {
        AdjustOutcome::Applied(level) => {
            tracing::info!(sku, warehouse_id, delta = adjustment.delta, reason = ?adjustment.reason, "stock adjusted");
            Adjusted::Applied(StockView::from(&level))
        }
        AdjustOutcome::Replayed(view) => {
            tracing::info!(sku, warehouse_id, "adjustment replayed");
            Adjusted::Replayed(view)
        }
        AdjustOutcome::KeyReused => Adjusted::KeyReused,
    })
}

/// A seller's stock of one SKU in every warehouse.
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id, sku = %sku))]
pub async fn get_stock(
    caller: &Caller,
    catalog: &impl SkuCatalog,
    reader: &impl StockReader,
    sku: &Sku,
) -> Result<SkuStock> {
    let sku = sku.as_str();
    owned_sku(caller, catalog, sku).await?;
    let levels = reader.stock_levels(&[sku.to_owned()]).await?.remove(sku).unwrap_or_default();
    Ok(SkuStock::new(sku, &levels))
}

/// Checks each stock item a stream batch changed against the rules it keeps by itself
/// ([`commerce_domain::inventory::item_violations`]); logs every broken rule and answers how many there were.
pub fn audit_stock_images(levels: &[StockLevel]) -> usize {
    let mut broken = 0;
    for level in levels {
        for violation in item_violations(level) {
            tracing::error!(sku = %violation.sku, warehouse_id = %violation.warehouse_id, rule = %violation.message, "stock invariant violated");
            broken += 1;
        }
    }
    broken
}

/// Every warehouse, for sellers and admins.
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
pub async fn list_warehouses(caller: &Caller, reader: &impl WarehouseReader) -> Result<Vec<Warehouse>> {
    caller.require_seller()?;
    let mut warehouses = reader.list_warehouses().await?;
    warehouses.sort_by(|a, b| a.warehouse_id.cmp(&b.warehouse_id));
    Ok(warehouses)
}

/// Creates a warehouse (admins only).
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
pub async fn create_warehouse(
    caller: &Caller,
    writer: &impl WarehouseWriter,
    new: NewWarehouse,
    now: DateTime<Utc>,
) -> Result<Warehouse> {
    caller.require_admin()?;
    let warehouse = new.into_warehouse(now)?;
    writer.create_warehouse(&warehouse).await?;
    tracing::info!(warehouse_id = %warehouse.warehouse_id, "warehouse created");
    Ok(warehouse)
}

/// Units sellable now per SKU (bundles: their scarcest component), for carts and search.
#[tracing::instrument(skip_all)]
pub async fn sellable_units(reader: &impl StockReader, views: &[SkuView]) -> Result<HashMap<String, i64>> {
    let mut items: Vec<String> = views.iter().flat_map(|v| v.components.iter().map(|c| c.sku.clone())).collect();
    items.sort();
    items.dedup();
    let levels = reader.stock_levels(&items).await?;
    let available: HashMap<String, i64> =
        levels.iter().map(|(sku, levels)| (sku.clone(), commerce_domain::inventory::total_available(levels))).collect();
    Ok(views.iter().map(|v| (v.sku.clone(), commerce_domain::inventory::sellable_units(v, &available))).collect())
}

/// Holds stock for every line, all or nothing. The same `reservation_id` again returns the same reservation
/// (409 `reservation_id_reused` if the lines differ); an expired one is `Gone` (`reservation_expired`).
/// Fails with `OutOfStock { sku }` naming the first inventory item that cannot be covered.
#[tracing::instrument(skip_all, fields(reservation_id = %request.reservation_id))]
pub async fn reserve<C, I>(
    catalog: &C,
    inventory: &I,
    policy: &ReservationPolicy,
    request: ReservationRequest,
    now: DateTime<Utc>,
) -> Result<Reservation>
where
    C: SkuCatalog,
    I: StockReader + WarehouseReader + ReservationStore,
{
    hold(catalog, inventory, &NothingToReplace, policy, request, Vec::new(), now).await
}

/// The replacer of a plain reservation, which replaces nothing (`hold` calls it only with old holds).
struct NothingToReplace;

impl ReservationReplacer for NothingToReplace {
    async fn try_replace(&self, _: &[Reservation], _: &Reservation) -> Result<ReplaceOutcome> {
        Err(DomainError::unexpected(std::io::Error::other("a plain reservation replaces nothing")))
    }
}

/// Holds stock for every line under a new reservation id, replacing the reservations `replacing` in the same
/// transaction: only the difference moves (units the new lines share with the old holds stay held), the old
/// ones read as released with reason `replaced`. Ids that are unknown or no longer held are left out. All or
/// nothing: on `OutOfStock` every old hold is still held and stock is unchanged.
#[tracing::instrument(skip_all, fields(reservation_id = %request.reservation_id))]
pub async fn replace<C, I>(
    catalog: &C,
    inventory: &I,
    policy: &ReservationPolicy,
    request: ReservationRequest,
    replacing: &[String],
    now: DateTime<Utc>,
) -> Result<Reservation>
where
    C: SkuCatalog,
    I: StockReader + WarehouseReader + ReservationStore + ReservationReplacer,
{
    let held = still_held(inventory, replacing).await?;
    hold(catalog, inventory, inventory, policy, request, held, now).await
}

async fn still_held(inventory: &impl ReservationStore, ids: &[String]) -> Result<Vec<Reservation>> {
    let mut held = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(r) = inventory.get_reservation(id).await? {
            if r.status == ReservationStatus::Held && !held.iter().any(|h: &Reservation| h.reservation_id == *id) {
                held.push(r);
            }
        }
    }
    Ok(held)
}

/// Moves the live hold `hold_id` to the reservation `request` asks for, if it holds exactly the requested
/// lines: no stock moves, the new reservation gets the request's expiry and the hold reads as released
/// (`replaced`). `None` when the hold is gone, expired, or holds other lines. A repeat answers the
/// reservation made the first time.
#[tracing::instrument(skip_all, fields(reservation_id = %request.reservation_id, hold_id = %hold_id))]
pub async fn adopt(
    inventory: &(impl ReservationStore + ReservationReplacer),
    policy: &ReservationPolicy,
    request: &ReservationRequest,
    hold_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<Reservation>> {
    let lines = request.normalized_lines()?;
    let Some(hold) = inventory.get_reservation(hold_id).await? else { return Ok(None) };
    if hold.status_at(now) != ReservationStatus::Held || !hold.matches(&lines) {
        return Ok(None);
    }
    let adopted = Reservation {
        reservation_id: request.reservation_id.clone(),
        status: ReservationStatus::Held,
        owner: request.owner,
        lines,
        allocations: hold.allocations.clone(),
        bundles: hold.bundles.clone(),
        created_at: now,
        expires_at: policy.expires_at(request, now),
        release_reason: None,
    };
    match inventory.try_replace(std::slice::from_ref(&hold), &adopted).await? {
        ReplaceOutcome::Replaced(reservation) => {
            tracing::info!(reservation_id = %reservation.reservation_id, hold_id, "hold adopted");
            Ok(Some(reservation))
        }
        ReplaceOutcome::Existing(existing) => {
            existing_reservation(inventory, existing, &adopted.lines, now).await.map(Some)
        }
        ReplaceOutcome::NotHeld | ReplaceOutcome::Insufficient { .. } => Ok(None),
    }
}

/// Adds the units of the holds being replaced back to the levels read, so the plan may reuse them.
fn give_back(stock: &mut HashMap<String, Vec<StockLevel>>, replacing: &[Reservation]) {
    for a in replacing.iter().flat_map(|r| &r.allocations) {
        if let Some(level) =
            stock.get_mut(&a.sku).and_then(|levels| levels.iter_mut().find(|l| l.warehouse_id == a.warehouse_id))
        {
            let q = i64::from(a.quantity);
            level.avail += q;
            level.free += q;
            level.reserved -= q;
        }
    }
}

async fn hold<C, I, R>(
    catalog: &C,
    inventory: &I,
    replacer: &R,
    policy: &ReservationPolicy,
    request: ReservationRequest,
    mut replacing: Vec<Reservation>,
    now: DateTime<Utc>,
) -> Result<Reservation>
where
    C: SkuCatalog,
    I: StockReader + WarehouseReader + ReservationStore,
    R: ReservationReplacer,
{
    let lines = request.normalized_lines()?;
    if let Some(existing) = inventory.get_reservation(&request.reservation_id).await? {
        return existing_reservation(inventory, existing, &lines, now).await;
    }
    let skus: Vec<String> = lines.iter().map(|l| l.sku.clone()).collect();
    let components = consumption(catalog, &skus).await?;
    if let Some(missing) = skus.iter().find(|sku| !components.contains_key(*sku)) {
        return Err(DomainError::conflict(ErrorCode::SkuUnavailable, format!("{missing} is not for sale")));
    }
    let demand = expand_lines(&lines, &components)?;
    let bundles = bundle_lines(&lines, &components);
    if demand.len() > MAX_ALLOCATIONS {
        return Err(DomainError::validation("lines", format!("at most {MAX_ALLOCATIONS} inventory items")));
    }
    let items: Vec<String> = demand.keys().cloned().collect();
    let warehouses = inventory.list_warehouses().await?;
    let ranked = rank_warehouses(&warehouses, request.ship_to.as_ref());
    let order: Vec<&str> = ranked.iter().map(|w| w.warehouse_id.as_str()).collect();
    for attempt in 0..RESERVE_ATTEMPTS {
        let mut stock = inventory.stock_levels(&items).await?;
        give_back(&mut stock, &replacing);
        let allocations = allocate(&demand, &stock, &order)?;
        if allocations.len() > MAX_ALLOCATIONS {
            return Err(DomainError::validation("lines", "the reservation needs too many stock locations"));
        }
        let reservation = Reservation {
            reservation_id: request.reservation_id.clone(),
            status: ReservationStatus::Held,
            owner: request.owner,
            lines: lines.clone(),
            allocations,
            bundles: bundles.clone(),
            created_at: now,
            expires_at: policy.expires_at(&request, now),
            release_reason: None,
        };
        let outcome = if replacing.is_empty() {
            ReplaceOutcome::from(inventory.try_reserve(&reservation).await?)
        } else {
            replacer.try_replace(&replacing, &reservation).await?
        };
        match outcome {
            ReplaceOutcome::Replaced(reservation) => {
                tracing::info!(
                    reservation_id = %reservation.reservation_id,
                    allocations = reservation.allocations.len(),
                    replaced = replacing.len(),
                    attempt,
                    "reserved"
                );
                return Ok(reservation);
            }
            ReplaceOutcome::Existing(existing) => return existing_reservation(inventory, existing, &lines, now).await,
            ReplaceOutcome::NotHeld => {
                let ids: Vec<String> = replacing.iter().map(|r| r.reservation_id.clone()).collect();
                replacing = still_held(inventory, &ids).await?;
            }
            ReplaceOutcome::Insufficient { sku, warehouse_id } => {
                tracing::debug!(%sku, %warehouse_id, attempt, "stock moved during reservation; re-planning");
                tokio::time::sleep(backoff(attempt)).await;
            }
        }
    }
    Err(DomainError::Transient("stock is changing too quickly; retry".into()))
}

/// What each purchasable SKU of `skus` consumes. A bundle with a part that is not a SKU of the bundle's
/// seller is left out (it reads as not for sale): a bundle never draws on another seller's stock, even one
/// written before product writes checked that.
async fn consumption(catalog: &impl SkuCatalog, skus: &[String]) -> Result<HashMap<String, Vec<Component>>> {
    let views: Vec<SkuView> =
        catalog.variants_by_sku(skus).await?.into_iter().filter(SkuView::is_purchasable).collect();
    let mut parts: Vec<String> =
        views.iter().flat_map(|v| v.components.iter().filter(|c| c.sku != v.sku).map(|c| c.sku.clone())).collect();
    parts.sort();
    parts.dedup();
    let sellers: HashMap<String, String> = if parts.is_empty() {
        HashMap::new()
    } else {
        catalog.variants_by_sku(&parts).await?.into_iter().map(|p| (p.sku, p.seller_id)).collect()
    };
    let mut components = HashMap::with_capacity(views.len());
    for view in views {
        if draws_on_own_stock(&view, &sellers) {
            components.insert(view.sku, view.components);
        } else {
            tracing::warn!(sku = %view.sku, seller_id = %view.seller_id, "bundle part is not its seller's SKU");
        }
    }
    Ok(components)
}

fn backoff(attempt: u32) -> Duration {
    let base = 5u64 << attempt.min(5);
    Duration::from_millis(base + rand::random::<u64>() % base)
}

async fn existing_reservation(
    inventory: &impl ReservationStore,
    existing: Reservation,
    lines: &[commerce_domain::inventory::ReservationLine],
    now: DateTime<Utc>,
) -> Result<Reservation> {
    if !existing.matches(lines) {
        return Err(DomainError::conflict(
            ErrorCode::ReservationIdReused,
            "this reservation id was used for other lines",
        ));
    }
    match existing.status_at(now) {
        ReservationStatus::Expired => {
            finish(inventory, &existing.reservation_id, Action::Release, now).await?;
            Err(expired())
        }
        ReservationStatus::Released
            if existing.release_reason == Some(commerce_domain::inventory::reservation::ReleaseReason::Expired) =>
        {
            Err(expired())
        }
        _ => Ok(existing.view_at(now)),
    }
}

/// Releases a reservation's stock. Releasing twice has no effect; releasing a committed one is 409
/// `reservation_committed`.
#[tracing::instrument(skip_all, fields(reservation_id = %reservation_id))]
pub async fn release(store: &impl ReservationStore, reservation_id: &str, now: DateTime<Utc>) -> Result<Reservation> {
    finish(store, reservation_id, Action::Release, now).await
}

/// Commits a reservation when its order is placed: reserved units become sold. Committing twice has no
/// effect; an expired reservation is `Gone` (`reservation_expired`), a released one 409 `reservation_released`.
#[tracing::instrument(skip_all, fields(reservation_id = %reservation_id))]
pub async fn commit(store: &impl ReservationStore, reservation_id: &str, now: DateTime<Utc>) -> Result<Reservation> {
    finish(store, reservation_id, Action::Commit, now).await
}

/// Reads a reservation. A held reservation past its expiry is released on the spot and reads as released.
#[tracing::instrument(skip_all, fields(reservation_id = %reservation_id))]
pub async fn get_reservation(
    store: &impl ReservationStore,
    reservation_id: &str,
    now: DateTime<Utc>,
) -> Result<Reservation> {
    let reservation =
        store.get_reservation(reservation_id).await?.ok_or_else(|| DomainError::not_found("reservation"))?;
    if reservation.status_at(now) == ReservationStatus::Expired {
        return finish(store, reservation_id, Action::Release, now).await;
    }
    Ok(reservation.view_at(now))
}

/// Commits or releases a reservation; doing it again has no effect.
#[tracing::instrument(skip_all, fields(reservation_id = %reservation_id))]
pub async fn finish(
    store: &impl ReservationStore,
    reservation_id: &str,
    action: Action,
    now: DateTime<Utc>,
) -> Result<Reservation> {
    // An id no reservation can have names none (404), as on a read.
    if commerce_domain::inventory::reservation::validate_reservation_id(reservation_id).is_err() {
        return Err(DomainError::not_found("reservation"));
    }
    for _ in 0..FINISH_ATTEMPTS {
        let reservation =
            store.get_reservation(reservation_id).await?.ok_or_else(|| DomainError::not_found("reservation"))?;
        let (to, reason) = match reservation.transition(action, now)? {
            Transition::NoEffect => return Ok(reservation.view_at(now)),
            Transition::Apply(to, reason) => (to, reason),
        };
        match store.finish(&reservation, to, reason, now).await? {
            FinishOutcome::Done(done) => {
                tracing::info!(reservation_id, status = ?done.status, reason = ?done.release_reason, "reservation finished");
                return Ok(done);
            }
            FinishOutcome::NotHeld => continue,
        }
    }
    Err(DomainError::Transient("the reservation is changing concurrently; retry".into()))
}

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SweepReport {
    /// Expired reservations this sweep released.
    pub released: usize,
    /// Listed as expired but already released or committed by someone else.
    pub already_finished: usize,
    /// Failed to release (left for the next sweep).
    pub failed: usize,
}

/// Releases held reservations that expired at or before `now`, at most `limit` of them.
#[tracing::instrument(skip_all)]
pub async fn sweep(store: &impl ReservationStore, now: DateTime<Utc>, limit: usize) -> Result<SweepReport> {
    let ids = store.expired_reservations(now, limit).await?;
    let mut report = SweepReport::default();
    for id in ids {
        let before = store.get_reservation(&id).await?;
        if before.as_ref().is_none_or(|r| r.status != ReservationStatus::Held) {
            report.already_finished += 1;
            continue;
        }
        match finish(store, &id, Action::Release, now).await {
            Ok(r) if r.release_reason == Some(commerce_domain::inventory::reservation::ReleaseReason::Expired) => {
                report.released += 1
            }
            Ok(_) => report.already_finished += 1,
            Err(err) => {
                tracing::warn!(reservation_id = %id, error = %err, "sweep could not release");
                report.failed += 1;
            }
        }
    }
    Ok(report)
}
