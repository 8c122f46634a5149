//! In-memory reviews with the adapter's contract: one review per author per product, a change applies only at
//! the stored version, a vote or report once per user, the aggregate moved by each change's delta, and a
//! verified review only while its order shows the product delivered to the author. Also the purchase history
//! the verified check reads.

use commerce_app::ports::{PurchaseHistory, ReviewClaim, ReviewReader, ReviewWriter};
use commerce_domain::catalog::Page;
use commerce_domain::error::{DomainError, ErrorCode, Result};
use commerce_domain::review::{
    not_a_verified_buyer, RatingCounts, RatingDelta, Review, ReviewQuery, ReviewSort, ReviewStatus, Transition,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
struct State {
    reviews: BTreeMap<String, Review>,
    authors: HashSet<(String, String)>,
    claims: HashSet<(String, String)>,
    ratings: HashMap<String, RatingCounts>,
    /// (customer, product) -> order id of a delivered line.
    delivered: HashMap<(String, String), String>,
}

/// Reviews in memory. Clones share one state.
#[derive(Debug, Default, Clone)]
pub struct InMemoryReviews {
    state: Arc<Mutex<State>>,
}

impl InMemoryReviews {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records that `customer` has a delivered line of `product` in `order_id` (or, with `None`, that it was
    /// returned).
    pub fn deliver(&self, customer: &str, product: &str, order_id: Option<&str>) {
        let key = (customer.to_owned(), product.to_owned());
        match order_id {
            Some(order) => self.lock().delivered.insert(key, order.to_owned()),
            None => self.lock().delivered.remove(&key),
        };
    }

    /// Every stored review.
    pub fn all(&self) -> Vec<Review> {
        self.lock().reviews.values().cloned().collect()
    }

    /// Adds a review as it is, aggregate included (fixtures).
    pub fn insert(&self, review: Review) {
        let mut state = self.lock();
        state.authors.insert((review.author_id.clone(), review.product_id.to_string()));
        apply(&mut state, review.product_id.as_str(), &RatingDelta::between(None, Some(&review)));
        state.reviews.insert(review.review_id.to_string(), review);
    }
}

fn apply(state: &mut State, product_id: &str, delta: &RatingDelta) {
    if delta.is_zero() {
        return;
    }
    let counts = state.ratings.entry(product_id.to_owned()).or_default();
    for (c, d) in counts.stars.iter_mut().zip(delta.0) {
        *c = c.saturating_add_signed(d);
    }
    counts.version += 1;
}

fn claim_of(review_id: &str, claim: &ReviewClaim) -> (String, String) {
    match claim {
        ReviewClaim::Vote { user_id } => (review_id.to_owned(), format!("VOTE#{user_id}")),
        ReviewClaim::Report { user_id } => (review_id.to_owned(), format!("REPORT#{user_id}")),
    }
}

impl ReviewReader for InMemoryReviews {
    async fn get_review(&self, review_id: &str) -> Result<Option<Review>> {
        Ok(self.lock().reviews.get(review_id).cloned())
    }

    async fn list_reviews(&self, product_id: &str, query: &ReviewQuery) -> Result<Page<Review>> {
        let mut items: Vec<Review> = self
            .lock()
            .reviews
            .values()
            .filter(|r| r.product_id.as_str() == product_id && r.status == ReviewStatus::Approved)
            .filter(|r| query.rating.is_none_or(|stars| r.rating == stars))
            .cloned()
            .collect();
        let newest = |a: &Review, b: &Review| (b.created_at, &b.review_id).cmp(&(a.created_at, &a.review_id));
        items.sort_by(|a, b| match query.sort {
            ReviewSort::Newest => newest(a, b),
            ReviewSort::Helpful => b.helpful.cmp(&a.helpful).then_with(|| newest(a, b)),
            ReviewSort::RatingDesc => b.rating.cmp(&a.rating).then_with(|| newest(a, b)),
            // DynamoDB reads the star index ascending, so equal stars come oldest first; with a star filter the
            // adapter reads it descending (newest first).
            ReviewSort::RatingAsc if query.rating.is_none() => a.rating.cmp(&b.rating).then_with(|| newest(b, a)),
            ReviewSort::RatingAsc => newest(a, b),
        });
        let start = match &query.cursor {
            None => 0,
            Some(cursor) => cursor
                .parse::<usize>()
                .map_err(|_| DomainError::invalid_parameter("cursor", "is not a cursor this listing issued"))?,
        };
        let end = (start + query.limit as usize).min(items.len());
        let next_cursor = (end < items.len()).then(|| end.to_string());
        Ok(Page { items: items.get(start..end).unwrap_or_default().to_vec(), next_cursor })
    }

    async fn pending_reviews(&self, limit: u32, cursor: Option<&str>) -> Result<Page<Review>> {
        let mut items: Vec<Review> =
            self.lock().reviews.values().filter(|r| r.status == ReviewStatus::Pending).cloned().collect();
        items.sort_by(|a, b| (a.created_at, &a.review_id).cmp(&(b.created_at, &b.review_id)));
        let start = match cursor {
            None => 0,
            Some(cursor) => cursor
                .parse::<usize>()
                .map_err(|_| DomainError::invalid_parameter("cursor", "is not a cursor this listing issued"))?,
        };
        let end = (start + limit as usize).min(items.len());
        let next_cursor = (end < items.len()).then(|| end.to_string());
        Ok(Page { items: items.get(start..end).unwrap_or_default().to_vec(), next_cursor })
    }

    async fn rating(&self, product_id: &str) -> Result<RatingCounts> {
        Ok(self.lock().ratings.get(product_id).copied().unwrap_or_default())
    }
}

impl ReviewWriter for InMemoryReviews {
    async fn create_review(&self, created: &Transition, order_id: Option<&str>) -> Result<()> {
        let mut state = self.lock();
        let review = &created.next;
        let author = (review.author_id.clone(), review.product_id.to_string());
        if state.authors.contains(&author) {
            return Err(DomainError::conflict(ErrorCode::ReviewExists, "you already reviewed this product; edit it"));
        }
        if let Some(order_id) = order_id {
            if state.delivered.get(&author).map(String::as_str) != Some(order_id) {
                return Err(not_a_verified_buyer());
            }
        }
        state.authors.insert(author);
        apply(&mut state, review.product_id.as_str(), &created.delta);
        state.reviews.insert(review.review_id.to_string(), review.clone());
        Ok(())
    }

    async fn replace_review(
        &self,
        current: &Review,
        transition: &Transition,
        claim: Option<&ReviewClaim>,
    ) -> Result<()> {
        let mut state = self.lock();
        let id = current.review_id.to_string();
        if state.reviews.get(&id).map(|r| r.version) != Some(current.version) {
            return Err(DomainError::conflict(ErrorCode::VersionConflict, "the review changed concurrently"));
        }
        if let Some(claim) = claim {
            if !state.claims.insert(claim_of(&id, claim)) {
                return Err(match claim {
                    ReviewClaim::Vote { .. } => DomainError::conflict(ErrorCode::AlreadyVoted, "already voted"),
                    ReviewClaim::Report { .. } => DomainError::conflict(ErrorCode::AlreadyReported, "already reported"),
                });
            }
        }
        apply(&mut state, current.product_id.as_str(), &transition.delta);
        state.reviews.insert(id, transition.next.clone());
        Ok(())
    }

    async fn delete_review(&self, current: &Review, delta: &RatingDelta) -> Result<()> {
        let mut state = self.lock();
        let id = current.review_id.to_string();
        if state.reviews.get(&id).map(|r| r.version) != Some(current.version) {
            return Err(DomainError::conflict(ErrorCode::VersionConflict, "the review changed concurrently"));
        }
        state.reviews.remove(&id);
        state.authors.remove(&(current.author_id.clone(), current.product_id.to_string()));
        apply(&mut state, current.product_id.as_str(), delta);
        Ok(())
    }
}

impl PurchaseHistory for InMemoryReviews {
    async fn delivered_order(&self, customer_id: &str, product_id: &str) -> Result<Option<String>> {
        Ok(self.lock().delivered.get(&(customer_id.to_owned(), product_id.to_owned())).cloned())
    }
}

/// The products with approved reviews, for assertions.
pub fn reviewed_products(reviews: &[Review]) -> BTreeSet<String> {
    reviews.iter().filter(|r| r.status == ReviewStatus::Approved).map(|r| r.product_id.to_string()).collect()
}

/// A review fixture: `id` (a valid `rev_` id), of `product_id` sold by `seller_id`, by `author`, with
/// `rating` stars and `status`.
pub fn fixture_review(
    id: &str,
    product_id: &str,
    seller_id: &str,
    author: &str,
    rating: u8,
    status: ReviewStatus,
) -> Review {
    let at = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").map(|t| t.to_utc()).unwrap_or_default();
    Review {
        review_id: commerce_domain::ids::ReviewId::parse(id).unwrap_or_else(|_| panic!("{id} is not a review id")),
        product_id: commerce_domain::ids::ProductId::parse(product_id)
            .unwrap_or_else(|_| panic!("{product_id} is not a product id")),
        seller_id: seller_id.to_owned(),
        author_id: author.to_owned(),
        display_name: "Sam".to_owned(),
        rating,
        title: "Solid".to_owned(),
        body: "Does what it says.".to_owned(),
        status,
        verified: true,
        helpful: 0,
        reports: 0,
        reply: None,
        created_at: at,
        updated_at: at,
        version: 1,
    }
}
