//! Product reviews: one per customer per product, moderated, with exact integer rating aggregates.
//!
//! A review moves between `pending`, `approved` and `rejected`; only approved reviews are public and counted.
//! Every transition is a pure function of the stored review that returns the next review and the
//! [`RatingDelta`] it makes to its product's aggregate, so the adapter writes both in one conditional
//! transaction: a transition applies once or not at all, and the aggregate always equals a recount of the
//! approved reviews (per star, count and sum; no float is ever stored).

use crate::auth::Caller;
use crate::catalog::check_text;
use crate::error::{DomainError, ErrorCode, Result};
use crate::ids::{ProductId, ReviewId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const MAX_TITLE_CHARS: usize = 120;
pub const MAX_BODY_CHARS: usize = 5_000;
pub const MAX_DISPLAY_NAME_CHARS: usize = 40;
pub const MAX_REPLY_CHARS: usize = 2_000;
/// The name shown for an author who gave none (never their email).
pub const DEFAULT_DISPLAY_NAME: &str = "Customer";
/// The weight, in reviews, of the prior in the Bayesian average that search sorts by.
pub const PRIOR_WEIGHT: u64 = 10;
/// The prior mean rating, in hundredths of a star (3.50).
pub const PRIOR_MEAN_CENTI: u64 = 350;

/// Where a review stands. Only `approved` reviews are shown and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    Pending,
    Approved,
    Rejected,
}

/// How the shop moderates reviews (template parameters, read at the edge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReviewSettings {
    /// New and edited reviews are approved at once instead of waiting for an admin.
    pub auto_approve: bool,
    /// Customers without a delivered order line of the product may review it (marked `verified: false`).
    pub allow_unverified: bool,
    /// An approved review with this many reports goes back to pending.
    pub report_threshold: u32,
}

impl Default for ReviewSettings {
    fn default() -> Self {
        Self { auto_approve: false, allow_unverified: false, report_threshold: 3 }
    }
}

/// The seller's one reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SellerReply {
    pub body: String,
    pub replied_at: DateTime<Utc>,
}

/// A review as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub review_id: ReviewId,
    pub product_id: ProductId,
    /// The product's seller when the review was written: the one who may reply.
    pub seller_id: String,
    pub author_id: String,
    pub display_name: String,
    /// 1 to 5 stars.
    pub rating: u8,
    pub title: String,
    pub body: String,
    pub status: ReviewStatus,
    /// The author had a delivered order line of the product when writing it.
    pub verified: bool,
    pub helpful: u32,
    /// Reports since it was last approved.
    pub reports: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<SellerReply>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
}

/// A review as anyone reads it: no author id, no report count, no status (only approved ones are listed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicReview {
    pub review_id: ReviewId,
    pub product_id: ProductId,
    pub display_name: String,
    pub rating: u8,
    pub title: String,
    pub body: String,
    pub verified: bool,
    pub helpful: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<SellerReply>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Review> for PublicReview {
    fn from(review: &Review) -> Self {
        Self {
            review_id: review.review_id.clone(),
            product_id: review.product_id.clone(),
            display_name: review.display_name.clone(),
            rating: review.rating,
            title: review.title.clone(),
            body: review.body.clone(),
            verified: review.verified,
            helpful: review.helpful,
            reply: review.reply.clone(),
            created_at: review.created_at,
            updated_at: review.updated_at,
        }
    }
}

/// The body of `POST /v1/products/{product_id}/reviews`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewInput {
    pub rating: u8,
    pub title: String,
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// The body of `PATCH /v1/reviews/{review_id}`: any of the author's fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// The body of `POST /v1/seller/reviews/{review_id}/reply`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyInput {
    pub body: String,
}

/// An admin's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moderation {
    Approve,
    Reject,
}

/// The change a transition makes to its product's aggregate: per star 1..=5, how many approved reviews come
/// and go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RatingDelta(pub [i64; 5]);

impl RatingDelta {
    fn counting(review: &Review, sign: i64) -> Self {
        let mut delta = [0; 5];
        if review.status == ReviewStatus::Approved {
            delta[usize::from(review.rating - 1)] = sign;
        }
        Self(delta)
    }

    /// What moving from `before` to `after` changes (either absent: created or deleted).
    pub fn between(before: Option<&Review>, after: Option<&Review>) -> Self {
        let mut delta = [0; 5];
        for (review, sign) in [(before, -1), (after, 1)] {
            if let Some(review) = review {
                for (d, c) in delta.iter_mut().zip(Self::counting(review, sign).0) {
                    *d += c;
                }
            }
        }
        Self(delta)
    }

    pub fn is_zero(&self) -> bool {
        self.0.iter().all(|d| *d == 0)
    }
}

/// A product's rating: approved reviews per star, their count and their sum of stars.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RatingCounts {
    /// Approved reviews with 1..=5 stars.
    pub stars: [u64; 5],
    /// Bumped by every change, so that a stale copy never overwrites a newer one downstream.
    pub version: u64,
}

impl RatingCounts {
    pub fn count(&self) -> u64 {
        self.stars.iter().sum()
    }

    pub fn sum(&self) -> u64 {
        self.stars.iter().enumerate().map(|(i, c)| (i as u64 + 1) * c).sum()
    }

    /// The counts of the approved reviews among `reviews` (a recount).
    pub fn recount<'a>(reviews: impl IntoIterator<Item = &'a Review>) -> Self {
        let mut stars = [0; 5];
        for review in reviews.into_iter().filter(|r| r.status == ReviewStatus::Approved) {
            stars[usize::from(review.rating - 1)] += 1;
        }
        Self { stars, version: 0 }
    }

    /// The average in hundredths of a star, rounded half up; 0 without reviews.
    pub fn average_centi(&self) -> u64 {
        let count = self.count();
        if count == 0 {
            0
        } else {
            (self.sum() * 200 + count) / (count * 2)
        }
    }

    /// The Bayesian average in hundredths of a star: the mean pulled towards [`PRIOR_MEAN_CENTI`] by
    /// [`PRIOR_WEIGHT`] imaginary reviews, so one 5-star review does not outrank a thousand 4.8s.
    pub fn bayesian_centi(&self) -> u64 {
        let weight = PRIOR_WEIGHT + self.count();
        (PRIOR_WEIGHT * PRIOR_MEAN_CENTI + self.sum() * 100 + weight / 2) / weight
    }

    pub fn summary(&self) -> RatingSummary {
        RatingSummary {
            average: centi(self.average_centi()),
            count: self.count(),
            histogram: Histogram {
                one: self.stars[0],
                two: self.stars[1],
                three: self.stars[2],
                four: self.stars[3],
                five: self.stars[4],
            },
        }
    }
}

fn centi(value: u64) -> f64 {
    value as f64 / 100.0
}

/// How a product's rating reads: `{"average", "count", "histogram"}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RatingSummary {
    /// The mean of the approved reviews' stars, to two decimals; 0 without reviews.
    pub average: f64,
    pub count: u64,
    pub histogram: Histogram,
}

/// Approved reviews per star.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Histogram {
    #[serde(rename = "1")]
    pub one: u64,
    #[serde(rename = "2")]
    pub two: u64,
    #[serde(rename = "3")]
    pub three: u64,
    #[serde(rename = "4")]
    pub four: u64,
    #[serde(rename = "5")]
    pub five: u64,
}

/// A review's next state and what it does to the aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub next: Review,
    pub delta: RatingDelta,
}

fn check_rating(field: &str, rating: u8) -> Result<u8> {
    if (1..=5).contains(&rating) {
        Ok(rating)
    } else {
        Err(DomainError::validation(field, "must be 1 to 5"))
    }
}

fn check_display_name(raw: Option<&str>) -> Result<String> {
    match raw.map(str::trim).filter(|name| !name.is_empty()) {
        None => Ok(DEFAULT_DISPLAY_NAME.to_owned()),
        Some(name) => {
            let name = check_text("display_name", name, 1, MAX_DISPLAY_NAME_CHARS)?;
            if name.contains('@') {
                return Err(DomainError::validation("display_name", "must not be an email address"));
            }
            Ok(name)
        }
    }
}

impl Review {
    /// A new review by `author` of `product_id` (sold by `seller_id`): pending unless the shop auto-approves.
    /// An unverified author is refused (403 `not_a_verified_buyer`) unless the shop allows unverified reviews.
    pub fn submit(
        product_id: ProductId,
        seller_id: &str,
        author: &Caller,
        input: ReviewInput,
        verified: bool,
        settings: ReviewSettings,
        now: DateTime<Utc>,
    ) -> Result<Transition> {
        if !verified && !settings.allow_unverified {
            return Err(not_a_verified_buyer());
        }
        let review = Review {
            review_id: ReviewId::generate(),
            product_id,
            seller_id: seller_id.to_owned(),
            author_id: author.user_id.clone(),
            display_name: check_display_name(input.display_name.as_deref())?,
            rating: check_rating("rating", input.rating)?,
            title: check_text("title", &input.title, 1, MAX_TITLE_CHARS)?,
            body: check_text("body", &input.body, 1, MAX_BODY_CHARS)?,
            status: if settings.auto_approve { ReviewStatus::Approved } else { ReviewStatus::Pending },
            verified,
            helpful: 0,
            reports: 0,
            reply: None,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let delta = RatingDelta::between(None, Some(&review));
        Ok(Transition { next: review, delta })
    }

    /// Whether `caller` may see it although it is not approved: its author or an admin.
    pub fn visible_to(&self, caller: Option<&Caller>) -> bool {
        self.status == ReviewStatus::Approved || caller.is_some_and(|c| c.is_admin() || c.user_id == self.author_id)
    }

    fn next(&self, now: DateTime<Utc>) -> Review {
        Review { updated_at: now, version: self.version + 1, ..self.clone() }
    }

    fn transition(&self, next: Review) -> Transition {
        let delta = RatingDelta::between(Some(self), Some(&next));
        Transition { next, delta }
    }

    /// The author edits it. An edited review is moderated again (pending) unless the shop auto-approves;
    /// `None` when the patch changes nothing.
    pub fn edit(
        &self,
        caller: &Caller,
        patch: ReviewPatch,
        settings: ReviewSettings,
        now: DateTime<Utc>,
    ) -> Result<Option<Transition>> {
        if caller.user_id != self.author_id {
            return Err(DomainError::not_found("review"));
        }
        let mut next = self.next(now);
        if let Some(rating) = patch.rating {
            next.rating = check_rating("rating", rating)?;
        }
        if let Some(title) = &patch.title {
            next.title = check_text("title", title, 1, MAX_TITLE_CHARS)?;
        }
        if let Some(body) = &patch.body {
            next.body = check_text("body", body, 1, MAX_BODY_CHARS)?;
        }
        if let Some(name) = &patch.display_name {
            next.display_name = check_display_name(Some(name))?;
        }
        let unchanged = (next.rating, &next.title, &next.body, &next.display_name)
            == (self.rating, &self.title, &self.body, &self.display_name);
        if unchanged {
            return Ok(None);
        }
        next.status = if settings.auto_approve { ReviewStatus::Approved } else { ReviewStatus::Pending };
        Ok(Some(self.transition(next)))
    }

    /// The author (or an admin) deletes it: the aggregate loses it if it was counted.
    pub fn delete(&self, caller: &Caller) -> Result<RatingDelta> {
        if caller.user_id != self.author_id && !caller.is_admin() {
            return Err(DomainError::not_found("review"));
        }
        Ok(RatingDelta::between(Some(self), None))
    }

    /// An admin approves or rejects it; `None` when it is already so. Approval clears the reports.
    pub fn moderate(&self, caller: &Caller, decision: Moderation, now: DateTime<Utc>) -> Result<Option<Transition>> {
        caller.require_admin()?;
        let status = match decision {
            Moderation::Approve => ReviewStatus::Approved,
            Moderation::Reject => ReviewStatus::Rejected,
        };
        if self.status == status {
            return Ok(None);
        }
        let mut next = self.next(now);
        next.status = status;
        if status == ReviewStatus::Approved {
            next.reports = 0;
        }
        Ok(Some(self.transition(next)))
    }

    /// A shopper reports it (once each, the adapter's claim): at the shop's threshold it goes back to pending.
    pub fn report(&self, caller: &Caller, settings: ReviewSettings, now: DateTime<Utc>) -> Result<Transition> {
        self.public_for_others(caller)?;
        let mut next = self.next(now);
        next.reports = self.reports.saturating_add(1);
        if next.reports >= settings.report_threshold.max(1) {
            next.status = ReviewStatus::Pending;
        }
        Ok(self.transition(next))
    }

    /// A shopper marks it helpful (once each, the adapter's claim); not the author's own.
    pub fn vote(&self, caller: &Caller, now: DateTime<Utc>) -> Result<Transition> {
        self.public_for_others(caller)?;
        let mut next = self.next(now);
        next.helpful = self.helpful.saturating_add(1);
        Ok(self.transition(next))
    }

    /// The product's seller replies, once.
    pub fn reply(&self, caller: &Caller, input: ReplyInput, now: DateTime<Utc>) -> Result<Transition> {
        caller.require_seller()?;
        if self.status != ReviewStatus::Approved {
            return Err(DomainError::not_found("review"));
        }
        if caller.user_id != self.seller_id && !caller.is_admin() {
            return Err(DomainError::forbidden("the review is of another seller's product"));
        }
        if self.reply.is_some() {
            return Err(DomainError::conflict(ErrorCode::ReplyExists, "the seller already replied to this review"));
        }
        let mut next = self.next(now);
        next.reply = Some(SellerReply { body: check_text("body", &input.body, 1, MAX_REPLY_CHARS)?, replied_at: now });
        Ok(self.transition(next))
    }

    /// Votes and reports are for approved reviews (others are not found) by someone other than the author.
    fn public_for_others(&self, caller: &Caller) -> Result<()> {
        if self.status != ReviewStatus::Approved {
            return Err(DomainError::not_found("review"));
        }
        if caller.user_id == self.author_id {
            return Err(DomainError::forbidden("authors cannot vote on or report their own review"));
        }
        Ok(())
    }
}

pub fn not_a_verified_buyer() -> DomainError {
    DomainError::denied(
        ErrorCode::NotAVerifiedBuyer,
        "only a customer with a delivered order of this product may review it",
    )
}

/// The order of a review listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReviewSort {
    Newest,
    Helpful,
    RatingDesc,
    RatingAsc,
}

/// `GET /v1/products/{product_id}/reviews?sort=&rating=&cursor=&limit=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewQuery {
    pub sort: ReviewSort,
    /// Only reviews with this many stars.
    pub rating: Option<u8>,
    pub cursor: Option<String>,
    pub limit: u32,
}

impl ReviewQuery {
    pub const DEFAULT_LIMIT: u32 = 20;
    pub const MAX_LIMIT: u32 = 50;

    /// Parses the query parameters (400 naming the parameter).
    pub fn parse(sort: Option<&str>, rating: Option<&str>, cursor: Option<&str>, limit: Option<&str>) -> Result<Self> {
        let sort = match sort.unwrap_or("newest") {
            "newest" => ReviewSort::Newest,
            "helpful" => ReviewSort::Helpful,
            "rating_desc" => ReviewSort::RatingDesc,
            "rating_asc" => ReviewSort::RatingAsc,
            _ => {
                return Err(DomainError::invalid_parameter(
                    "sort",
                    "must be one of newest, helpful, rating_desc, rating_asc",
                ))
            }
        };
        let rating = rating
            .map(|raw| {
                raw.parse::<u8>()
                    .ok()
                    .filter(|r| (1..=5).contains(r))
                    .ok_or_else(|| DomainError::invalid_parameter("rating", "must be 1 to 5"))
            })
            .transpose()?;
        let limit = match limit {
            None => Self::DEFAULT_LIMIT,
            Some(raw) => {
                raw.parse::<u32>().ok().filter(|l| (1..=Self::MAX_LIMIT).contains(l)).ok_or_else(|| {
                    DomainError::invalid_parameter("limit", format!("must be 1 to {}", Self::MAX_LIMIT))
                })?
            }
        };
        Ok(Self { sort, rating, cursor: cursor.map(str::to_owned), limit })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use proptest::prelude::*;

    fn caller(id: &str, role: Role) -> Caller {
        Caller { user_id: id.into(), email: Some(format!("{id}@example.com")), roles: vec![role] }
    }

    fn input(rating: u8) -> ReviewInput {
        ReviewInput { rating, title: "Good".into(), body: "Works well".into(), display_name: None }
    }

    fn submit(author: &str, rating: u8, settings: ReviewSettings) -> Transition {
        let product = ProductId::parse("prd_01hzzzzzzzzzzzzzzzzzzzzzzz").unwrap();
        let author = caller(author, Role::Shopper);
        Review::submit(product, "seller-1", &author, input(rating), true, settings, Utc::now()).unwrap()
    }

    #[test]
    fn a_submitted_review_is_pending_and_counts_nothing_until_approved() {
        let t = submit("u1", 4, ReviewSettings::default());
        assert_eq!((t.next.status, t.delta), (ReviewStatus::Pending, RatingDelta::default()));
        let approved = t.next.moderate(&caller("a", Role::Admin), Moderation::Approve, Utc::now()).unwrap().unwrap();
        assert_eq!(approved.delta, RatingDelta([0, 0, 0, 1, 0]));
        assert!(approved.next.moderate(&caller("a", Role::Admin), Moderation::Approve, Utc::now()).unwrap().is_none());
        let rejected = approved.next.moderate(&caller("a", Role::Admin), Moderation::Reject, Utc::now()).unwrap();
        assert_eq!(rejected.unwrap().delta, RatingDelta([0, 0, 0, -1, 0]));
    }

    #[test]
    fn an_unverified_author_is_refused_unless_the_shop_allows_it() {
        let product = ProductId::parse("prd_01hzzzzzzzzzzzzzzzzzzzzzzz").unwrap();
        let author = caller("u1", Role::Shopper);
        let refused =
            Review::submit(product.clone(), "s", &author, input(5), false, ReviewSettings::default(), Utc::now());
        assert_eq!(refused.unwrap_err().code(), ErrorCode::NotAVerifiedBuyer);
        let open = ReviewSettings { allow_unverified: true, auto_approve: true, ..ReviewSettings::default() };
        let t = Review::submit(product, "s", &author, input(5), false, open, Utc::now()).unwrap();
        assert!(!t.next.verified);
        assert_eq!(t.delta, RatingDelta([0, 0, 0, 0, 1]));
    }

    #[test]
    fn values_out_of_range_name_their_field() {
        let product = ProductId::parse("prd_01hzzzzzzzzzzzzzzzzzzzzzzz").unwrap();
        let author = caller("u1", Role::Shopper);
        let cases = [
            (ReviewInput { rating: 0, ..input(1) }, "rating"),
            (ReviewInput { rating: 6, ..input(1) }, "rating"),
            (ReviewInput { title: " ".into(), ..input(1) }, "title"),
            (ReviewInput { body: "x".repeat(MAX_BODY_CHARS + 1), ..input(1) }, "body"),
            (ReviewInput { display_name: Some("me@example.com".into()), ..input(1) }, "display_name"),
        ];
        for (bad, field) in cases {
            let err = Review::submit(product.clone(), "s", &author, bad, true, ReviewSettings::default(), Utc::now())
                .unwrap_err();
            assert!(matches!(&err, DomainError::Validation { field: f, .. } if f == field), "{field}: {err:?}");
        }
    }

    #[test]
    fn an_approved_edit_moves_the_star_or_goes_back_to_moderation() {
        let auto = ReviewSettings { auto_approve: true, ..ReviewSettings::default() };
        let t = submit("u1", 2, auto);
        let author = caller("u1", Role::Shopper);
        let patch = ReviewPatch { rating: Some(5), ..ReviewPatch::default() };
        let edited = t.next.edit(&author, patch.clone(), auto, Utc::now()).unwrap().unwrap();
        assert_eq!(edited.delta, RatingDelta([0, -1, 0, 0, 1]));
        let moderated = t.next.edit(&author, patch, ReviewSettings::default(), Utc::now()).unwrap().unwrap();
        assert_eq!((moderated.next.status, moderated.delta), (ReviewStatus::Pending, RatingDelta([0, -1, 0, 0, 0])));
        let same = ReviewPatch { rating: Some(2), ..ReviewPatch::default() };
        assert!(t.next.edit(&author, same, auto, Utc::now()).unwrap().is_none());
        let other = caller("u2", Role::Shopper);
        assert!(t.next.edit(&other, ReviewPatch::default(), auto, Utc::now()).is_err());
    }

    #[test]
    fn reports_send_an_approved_review_back_at_the_threshold() {
        let settings = ReviewSettings { auto_approve: true, report_threshold: 2, ..ReviewSettings::default() };
        let t = submit("u1", 3, settings);
        let one = t.next.report(&caller("u2", Role::Shopper), settings, Utc::now()).unwrap();
        assert_eq!((one.next.status, one.delta), (ReviewStatus::Approved, RatingDelta::default()));
        let two = one.next.report(&caller("u3", Role::Shopper), settings, Utc::now()).unwrap();
        assert_eq!((two.next.status, two.delta), (ReviewStatus::Pending, RatingDelta([0, 0, -1, 0, 0])));
        assert!(t.next.report(&caller("u1", Role::Shopper), settings, Utc::now()).is_err());
        let back = two.next.moderate(&caller("a", Role::Admin), Moderation::Approve, Utc::now()).unwrap().unwrap();
        assert_eq!(back.next.reports, 0);
    }

    #[test]
    fn only_the_products_seller_replies_and_only_once() {
        let auto = ReviewSettings { auto_approve: true, ..ReviewSettings::default() };
        let t = submit("u1", 3, auto);
        let reply = || ReplyInput { body: "Thanks".into() };
        assert!(t.next.reply(&caller("seller-2", Role::Seller), reply(), Utc::now()).is_err());
        let replied = t.next.reply(&caller("seller-1", Role::Seller), reply(), Utc::now()).unwrap();
        let again = replied.next.reply(&caller("seller-1", Role::Seller), reply(), Utc::now()).unwrap_err();
        assert_eq!(again.code(), ErrorCode::ReplyExists);
    }

    #[test]
    fn averages_are_exact_integers_rounded_half_up_and_the_bayesian_one_needs_many_reviews() {
        let one_five = RatingCounts { stars: [0, 0, 0, 0, 1], version: 1 };
        let many = RatingCounts { stars: [0, 0, 0, 200, 800], version: 1 };
        assert_eq!((one_five.average_centi(), many.average_centi()), (500, 480));
        assert!(one_five.bayesian_centi() < many.bayesian_centi());
        assert_eq!(RatingCounts { stars: [1, 0, 0, 0, 2], version: 0 }.average_centi(), 367);
        assert_eq!(RatingCounts::default().average_centi(), 0);
        let summary = many.summary();
        assert_eq!((summary.average, summary.count, summary.histogram.five), (4.8, 1000, 800));
    }

    #[test]
    fn query_parameters_are_checked() {
        assert!(ReviewQuery::parse(Some("best"), None, None, None).is_err());
        assert!(ReviewQuery::parse(None, Some("6"), None, None).is_err());
        assert!(ReviewQuery::parse(None, None, None, Some("51")).is_err());
        let q = ReviewQuery::parse(Some("helpful"), Some("4"), None, Some("10")).unwrap();
        assert_eq!((q.sort, q.rating, q.limit), (ReviewSort::Helpful, Some(4), 10));
    }

    #[derive(Debug, Clone)]
    enum Step {
        Submit(u8),
        Approve(usize),
        Reject(usize),
        Edit(usize, u8),
        Delete(usize),
        Report(usize),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (1u8..=5).prop_map(Step::Submit),
            any::<usize>().prop_map(Step::Approve),
            any::<usize>().prop_map(Step::Reject),
            (any::<usize>(), 1u8..=5).prop_map(|(i, r)| Step::Edit(i, r)),
            any::<usize>().prop_map(Step::Delete),
            any::<usize>().prop_map(Step::Report),
        ]
    }

    proptest! {
        /// Whatever happens to a product's reviews, the sum of the deltas equals a recount of the approved ones.
        #[test]
        fn the_deltas_always_sum_to_a_recount(steps in proptest::collection::vec(step(), 1..60), auto in any::<bool>()) {
            let settings = ReviewSettings { auto_approve: auto, report_threshold: 2, ..ReviewSettings::default() };
            let admin = caller("admin", Role::Admin);
            let mut reviews: Vec<Review> = Vec::new();
            let mut total = [0i64; 5];
            let mut add = |delta: RatingDelta| for (t, d) in total.iter_mut().zip(delta.0) { *t += d };
            for (n, step) in steps.into_iter().enumerate() {
                let pick = |i: usize| if reviews.is_empty() { None } else { Some(i % reviews.len()) };
                match step {
                    Step::Submit(r) => {
                        let t = submit(&format!("u{n}"), r, settings);
                        add(t.delta);
                        reviews.push(t.next);
                    }
                    Step::Approve(i) | Step::Reject(i) | Step::Edit(i, _) | Step::Report(i) | Step::Delete(i) => {
                        let Some(i) = pick(i) else { continue };
                        let review = &reviews[i];
                        let author = caller(&review.author_id, Role::Shopper);
                        let outcome = match step {
                            Step::Approve(_) => review.moderate(&admin, Moderation::Approve, Utc::now()).unwrap(),
                            Step::Reject(_) => review.moderate(&admin, Moderation::Reject, Utc::now()).unwrap(),
                            Step::Edit(_, r) => review
                                .edit(&author, ReviewPatch { rating: Some(r), ..ReviewPatch::default() }, settings, Utc::now())
                                .unwrap(),
                            Step::Report(_) => review.report(&caller(&format!("r{n}"), Role::Shopper), settings, Utc::now()).ok(),
                            _ => {
                                add(review.delete(&author).unwrap());
                                reviews.remove(i);
                                continue;
                            }
                        };
                        if let Some(t) = outcome {
                            add(t.delta);
                            reviews[i] = t.next;
                        }
                    }
                }
            }
            let recount = RatingCounts::recount(&reviews);
            prop_assert_eq!(total.map(|t| t as u64), recount.stars);
        }
    }
}
