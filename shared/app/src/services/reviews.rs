//! Reviews: a signed-in customer reviews a product once (a verified buyer unless the shop allows otherwise),
//! admins moderate, shoppers vote and report, the product's seller replies. Every change is one conditional
//! write of the review with its aggregate delta; a change that lost a race is retried on fresh data.

use crate::ports::{ProductReader, PurchaseHistory, ReviewClaim, ReviewReader, ReviewWriter};
use chrono::{DateTime, Utc};
use commerce_domain::auth::Caller;
use commerce_domain::catalog::Page;
use commerce_domain::error::{DomainError, ErrorCode, Result};
use commerce_domain::ids::{ProductId, ReviewId};
use commerce_domain::review::{
    Moderation, PublicReview, RatingSummary, ReplyInput, Review, ReviewInput, ReviewPatch, ReviewQuery, ReviewSettings,
    Transition,
};

/// How often a change that lost a race re-reads and tries again before answering 409.
pub const ATTEMPTS: usize = 8;

/// What creating a review reads and writes: the catalog (the product must be public), the customer's orders
/// (a delivered line makes a verified buyer), the reviews, and the shop's settings.
pub struct Submission<C, O, R> {
    pub catalog: C,
    pub orders: O,
    pub reviews: R,
    pub settings: ReviewSettings,
}

/// A signed-in customer reviews a public product: 201 with the review (pending unless the shop
/// auto-approves), 403 `not_a_verified_buyer` without a delivered order line of it (unless the shop allows
/// unverified reviews), 409 `review_exists` for a second review.
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id, product_id = %product_id))]
pub async fn create_review<C, O, R>(
    deps: &Submission<C, O, R>,
    caller: &Caller,
    product_id: &ProductId,
    input: ReviewInput,
    now: DateTime<Utc>,
) -> Result<Review>
where
    C: ProductReader,
    O: PurchaseHistory,
    R: ReviewWriter,
{
    let product = match deps.catalog.get_product(product_id.as_str()).await? {
        Some(product) if product.is_public() => product,
        _ => return Err(DomainError::not_found("product")),
    };
    let order = deps.orders.delivered_order(&caller.user_id, product_id.as_str()).await?;
    let verified = order.is_some();
    let created = Review::submit(product_id.clone(), &product.seller_id, caller, input, verified, deps.settings, now)?;
    deps.reviews.create_review(&created, order.as_deref()).await?;
    tracing::info!(review_id = %created.next.review_id, status = ?created.next.status, verified, "review created");
    Ok(created.next)
}

/// Reads a review: anyone an approved one, its author and admins any (else 404).
pub async fn get_review(reader: &impl ReviewReader, caller: Option<&Caller>, review_id: &ReviewId) -> Result<Review> {
    match reader.get_review(review_id.as_str()).await? {
        Some(review) if review.visible_to(caller) => Ok(review),
        _ => Err(DomainError::not_found("review")),
    }
}

/// Runs `attempt` until it is not beaten by a concurrent change (a version conflict or a transaction conflict),
/// at most [`ATTEMPTS`] times with a short randomized pause between; the last outcome stands.
async fn retrying<T, F, Fut>(attempt: F) -> Result<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(DomainError::Conflict { code: ErrorCode::VersionConflict, .. }) | Err(DomainError::Transient(_))
                if tries < ATTEMPTS =>
            {
                backoff(tries).await;
                tries += 1;
            }
            outcome => return outcome,
        }
    }
}

/// The stored review, or 404.
async fn stored(store: &impl ReviewReader, review_id: &ReviewId) -> Result<Review> {
    store.get_review(review_id.as_str()).await?.ok_or_else(|| DomainError::not_found("review"))
}

/// Applies `change` to the stored review (nothing when it answers `None`), re-reading and retrying when another
/// change won the race.
async fn change_review<S, F>(store: &S, review_id: &ReviewId, claim: Option<&ReviewClaim>, change: F) -> Result<Review>
where
    S: ReviewReader + ReviewWriter,
    F: Fn(&Review) -> Result<Option<Transition>> + Send + Sync,
{
    let change = &change;
    retrying(|| async move {
        let current = stored(store, review_id).await?;
        let Some(transition) = change(&current)? else {
            return Ok(current);
        };
        store.replace_review(&current, &transition, claim).await?;
        Ok(transition.next)
    })
    .await
}

/// The author edits their review (moderated again unless the shop auto-approves).
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id, review_id = %review_id))]
pub async fn update_review(
    store: &(impl ReviewReader + ReviewWriter),
    settings: ReviewSettings,
    caller: &Caller,
    review_id: &ReviewId,
    patch: ReviewPatch,
    now: DateTime<Utc>,
) -> Result<Review> {
    change_review(store, review_id, None, |review| review.edit(caller, patch.clone(), settings, now)).await
}

/// The author (or an admin) deletes a review; the aggregate loses it if it counted.
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id, review_id = %review_id))]
pub async fn delete_review(
    store: &(impl ReviewReader + ReviewWriter),
    caller: &Caller,
    review_id: &ReviewId,
) -> Result<()> {
    retrying(|| async {
        let current = stored(store, review_id).await?;
        let delta = current.delete(caller)?;
        store.delete_review(&current, &delta).await
    })
    .await
}

/// An admin approves or rejects a review; doing it again changes nothing.
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id, review_id = %review_id))]
pub async fn moderate(
    store: &(impl ReviewReader + ReviewWriter),
    caller: &Caller,
    review_id: &ReviewId,
    decision: Moderation,
    now: DateTime<Utc>,
) -> Result<Review> {
    caller.require_admin()?;
    change_review(store, review_id, None, |review| review.moderate(caller, decision, now)).await
}

/// A shopper reports an approved review, once (409 `already_reported`); at the shop's threshold it goes back
/// to pending.
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id, review_id = %review_id))]
pub async fn report(
    store: &(impl ReviewReader + ReviewWriter),
    settings: ReviewSettings,
    caller: &Caller,
    review_id: &ReviewId,
    now: DateTime<Utc>,
) -> Result<()> {
    let claim = ReviewClaim::Report { user_id: caller.user_id.clone() };
    change_review(store, review_id, Some(&claim), |review| review.report(caller, settings, now).map(Some)).await?;
    Ok(())
}

/// A shopper marks an approved review helpful, once (409 `already_voted`).
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id, review_id = %review_id))]
pub async fn vote(
    store: &(impl ReviewReader + ReviewWriter),
    caller: &Caller,
    review_id: &ReviewId,
    now: DateTime<Utc>,
) -> Result<PublicReview> {
    let claim = ReviewClaim::Vote { user_id: caller.user_id.clone() };
    let review = change_review(store, review_id, Some(&claim), |review| review.vote(caller, now).map(Some)).await?;
    Ok(PublicReview::from(&review))
}

/// The product's seller replies to an approved review, once (409 `reply_exists`).
#[tracing::instrument(skip_all, fields(user_id = %caller.user_id, review_id = %review_id))]
pub async fn reply(
    store: &(impl ReviewReader + ReviewWriter),
    caller: &Caller,
    review_id: &ReviewId,
    input: ReplyInput,
    now: DateTime<Utc>,
) -> Result<PublicReview> {
    caller.require_seller()?;
    let review =
        change_review(store, review_id, None, |review| review.reply(caller, input.clone(), now).map(Some)).await?;
    Ok(PublicReview::from(&review))
}

/// Anyone lists a product's approved reviews.
pub async fn list_reviews(
    reader: &impl ReviewReader,
    product_id: &ProductId,
    query: &ReviewQuery,
) -> Result<Page<PublicReview>> {
    let page = reader.list_reviews(product_id.as_str(), query).await?;
    Ok(Page { items: page.items.iter().map(PublicReview::from).collect(), next_cursor: page.next_cursor })
}

/// An admin lists the reviews waiting for moderation, oldest first.
pub async fn pending_reviews(
    reader: &impl ReviewReader,
    caller: &Caller,
    limit: u32,
    cursor: Option<&str>,
) -> Result<Page<Review>> {
    caller.require_admin()?;
    reader.pending_reviews(limit, cursor).await
}

/// A product's rating summary.
pub async fn rating(reader: &impl ReviewReader, product_id: &ProductId) -> Result<RatingSummary> {
    Ok(reader.rating(product_id.as_str()).await?.summary())
}

async fn backoff(attempt: usize) {
    let millis = rand::Rng::gen_range(&mut rand::thread_rng(), 5..=25u64) * attempt as u64;
    tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
}
