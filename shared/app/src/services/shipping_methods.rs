//! A seller's shipping methods: sellers manage their own (admins any seller's, naming it). A method is only
//! ever looked up within its seller's methods, so another seller's id is simply not found there (404): nobody
//! learns that it exists.

use crate::ports::{ShippingMethodReader, ShippingMethodWriter};
use chrono::{DateTime, Utc};
use commerce_domain::auth::Caller;
use commerce_domain::error::{DomainError, ErrorCode, Result};
use commerce_domain::ids::ShippingMethodId;
use commerce_domain::shipping::{ShippingMethod, ShippingMethodInput, ShippingMethodPatch};

pub use crate::services::catalog::parse_if_match;

/// How often a write without `If-Match` re-reads and retries after losing a race, before answering 409.
pub const UPDATE_ATTEMPTS: usize = 6;

/// A seller creates a method (an admin may name the seller). Two methods of one seller with the same name may
/// not share a country (409 `shipping_method_overlap`); a seller has at most `shipping::MAX_METHODS`.
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id, seller_id = ?seller_id))]
pub async fn create_shipping_method(
    reader: &impl ShippingMethodReader,
    writer: &impl ShippingMethodWriter,
    caller: &Caller,
    seller_id: Option<&str>,
    input: ShippingMethodInput,
    now: DateTime<Utc>,
) -> Result<ShippingMethod> {
    let seller = seller_scope(caller, seller_id)?;
    let existing = reader.list_shipping_methods(seller).await?;
    let method = ShippingMethod::create(ShippingMethodId::generate(), seller, input, &existing, now)?;
    writer.put_shipping_method(&method, None).await?;
    tracing::info!(method_id = %method.method_id, "shipping method created");
    Ok(method)
}

/// A seller reads one of their methods (an admin one of the named seller's).
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id, seller_id = ?seller_id, method_id = %method_id))]
pub async fn get_shipping_method(
    reader: &impl ShippingMethodReader,
    caller: &Caller,
    seller_id: Option<&str>,
    method_id: &ShippingMethodId,
) -> Result<ShippingMethod> {
    let seller = seller_scope(caller, seller_id)?;
    reader.get_shipping_method(seller, method_id).await?.ok_or_else(not_found)
}

/// A seller lists their methods by method id (an admin the named seller's).
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id, seller_id = ?seller_id))]
pub async fn list_shipping_methods(
    reader: &impl ShippingMethodReader,
    caller: &Caller,
    seller_id: Option<&str>,
) -> Result<Vec<ShippingMethod>> {
    let seller = seller_scope(caller, seller_id)?;
    let mut methods = reader.list_shipping_methods(seller).await?;
    methods.sort_by(|a, b| a.method_id.cmp(&b.method_id));
    Ok(methods)
}

/// A seller changes one of their methods (an admin one of the named seller's). With `expected_version` (from
/// `If-Match`) a stale version is a 409 at once; without it a lost race is retried on fresh data, so no
/// concurrent change is ever overwritten.
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id, seller_id = ?seller_id, method_id = %method_id))]
pub async fn update_shipping_method(
    store: &(impl ShippingMethodReader + ShippingMethodWriter),
    caller: &Caller,
    seller_id: Option<&str>,
    method_id: &ShippingMethodId,
    patch: ShippingMethodPatch,
    expected_version: Option<u64>,
    now: DateTime<Utc>,
) -> Result<ShippingMethod> {
    let seller = seller_scope(caller, seller_id)?;
    let attempts = if expected_version.is_some() { 1 } else { UPDATE_ATTEMPTS };
    for attempt in 1..=attempts {
        // The seller's methods, read once: the one to change and the others its name must keep clear of.
        let existing = store.list_shipping_methods(seller).await?;
        let current = existing.iter().find(|m| &m.method_id == method_id).ok_or_else(not_found)?;
        if let Some(expected) = expected_version {
            if expected != current.version {
                return Err(version_conflict(current.version));
            }
        }
        let next = current.patched(patch.clone(), &existing, now)?;
        match store.put_shipping_method(&next, Some(current.version)).await {
            Ok(()) => {
                tracing::info!(version = next.version, attempt, "shipping method updated");
                return Ok(next);
            }
            Err(DomainError::Conflict { code: ErrorCode::VersionConflict, .. }) if attempt < attempts => {
                tracing::info!(attempt, "shipping method changed concurrently, retrying");
                backoff(attempt).await;
            }
            Err(err) => return Err(err),
        }
    }
    Err(DomainError::conflict(ErrorCode::VersionConflict, "the shipping method changed concurrently; retry"))
}

/// A seller deletes one of their methods (an admin one of the named seller's).
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id, seller_id = ?seller_id, method_id = %method_id))]
pub async fn delete_shipping_method(
    reader: &impl ShippingMethodReader,
    writer: &impl ShippingMethodWriter,
    caller: &Caller,
    seller_id: Option<&str>,
    method_id: &ShippingMethodId,
) -> Result<()> {
    let seller = seller_scope(caller, seller_id)?;
    for attempt in 1..=UPDATE_ATTEMPTS {
        let method = reader.get_shipping_method(seller, method_id).await?.ok_or_else(not_found)?;
        match writer.delete_shipping_method(&method).await {
            Ok(()) => {
                tracing::info!("shipping method deleted");
                return Ok(());
            }
            Err(DomainError::Conflict { code: ErrorCode::VersionConflict, .. }) if attempt < UPDATE_ATTEMPTS => {
                backoff(attempt).await;
            }
            Err(err) => return Err(err),
        }
    }
    Err(DomainError::conflict(ErrorCode::VersionConflict, "the shipping method changed concurrently; retry"))
}

/// Whose methods the caller acts on: their own, or with `seller_id` another seller's (admins only; 403 for a
/// seller naming anyone but themselves, as with products). Shoppers get 403.
fn seller_scope<'a>(caller: &'a Caller, seller_id: Option<&'a str>) -> Result<&'a str> {
    caller.require_seller()?;
    match seller_id {
        Some(other) if other != caller.user_id => {
            caller.require_admin()?;
            Ok(other)
        }
        _ => Ok(caller.user_id.as_str()),
    }
}

fn not_found() -> DomainError {
    DomainError::not_found("shipping method")
}

fn version_conflict(current: u64) -> DomainError {
    DomainError::conflict(ErrorCode::VersionConflict, format!("the shipping method is at version {current}"))
}

/// A short randomized pause before retrying a lost race, so that racing writers spread out.
async fn backoff(attempt: usize) {
    let millis = rand::Rng::gen_range(&mut rand::thread_rng(), 5..=25u64) * attempt as u64;
    tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
}
