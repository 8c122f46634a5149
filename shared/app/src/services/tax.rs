//! Tax regions: admins configure, per country or subdivision, whether prices include tax, whether shipping is
//! taxed and the rate of each tax class. Only admins read or write them; quotes read them through the same port.

use crate::ports::{TaxRegionReader, TaxRegionWriter};
use chrono::{DateTime, Utc};
use commerce_domain::auth::Caller;
use commerce_domain::error::Result;
use commerce_domain::tax::{RegionCode, TaxRegion, TaxRegionInput};

/// An admin creates `region` or replaces it whole. The write is conditional on what was read (the region absent,
/// or at the version read), so of two admins writing one region at once the second gets 409 `version_conflict`
/// instead of silently undoing the first.
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id, region = %region))]
pub async fn put_tax_region(
    reader: &impl TaxRegionReader,
    writer: &impl TaxRegionWriter,
    caller: &Caller,
    region: RegionCode,
    input: TaxRegionInput,
    now: DateTime<Utc>,
) -> Result<TaxRegion> {
    caller.require_admin()?;
    let previous = reader.list_tax_regions().await?.into_iter().find(|r| r.region == region);
    let next = TaxRegion::put(region, input, previous.as_ref(), now)?;
    writer.put_tax_region(&next, previous.as_ref().map(|p| p.version)).await?;
    tracing::info!(version = next.version, rates = next.rates.len(), "tax region written");
    Ok(next)
}

/// An admin lists every configured region, by code (a country before its subdivisions).
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
pub async fn list_tax_regions(reader: &impl TaxRegionReader, caller: &Caller) -> Result<Vec<TaxRegion>> {
    caller.require_admin()?;
    let mut regions = reader.list_tax_regions().await?;
    regions.sort_by(|a, b| a.region.cmp(&b.region));
    Ok(regions)
}
