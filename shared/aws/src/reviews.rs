//! The reviews table (DynamoDB).
//!
//! Item layout (docs/DATA_MODEL.md):
//! - review `REVIEW#<id> / REVIEW`: the review and its `version`. While approved it is in three sparse
//!   indexes under `PRODUCT#<product>`: `gsi1` by time, `gsi2` by helpful votes then time, `gsi3` by stars
//!   then time; while pending in `gsi4` under `PENDING` by time (the moderation queue).
//! - author claim `AUTHOR#<user> / PRODUCT#<product>`: one review per customer per product, by key.
//! - vote `REVIEW#<id> / VOTE#<user>` and report `REVIEW#<id> / REPORT#<user>`: one per user per review.
//! - aggregate `RATING#<product> / RATING`: approved reviews per star `c1`..`c5` (integers) and `version`,
//!   only ever changed by `ADD` in the transaction of the review change that causes it (the stream feeds
//!   search from it).
//!
//! Every change is one transaction: the review put conditional on its version (or on its absence), the
//! claim put conditional on its absence, and the aggregate's `ADD`s.

use crate::dynamo::{from_item, key, n, num, s, sortable, text, to_item, Index, Item, Table, GSI1, GSI2, GSI3};
use aws_sdk_dynamodb::types::TransactWriteItem;
use commerce_app::ports::{ReviewClaim, ReviewReader, ReviewWriter};
use commerce_domain::catalog::Page;
use commerce_domain::error::{DomainError, ErrorCode, Result};
use commerce_domain::review::{
    not_a_verified_buyer, RatingCounts, RatingDelta, Review, ReviewQuery, ReviewSort, ReviewStatus, Transition,
};

const REVIEW_SK: &str = "REVIEW";
const RATING_SK: &str = "RATING";
const PENDING_PK: &str = "PENDING";
/// The moderation queue.
const GSI4: Index = Index { name: "gsi4", pk: "gsi4pk", sk: "gsi4sk" };

fn review_pk(review_id: &str) -> String {
    format!("REVIEW#{review_id}")
}

fn product_partition(product_id: &str) -> String {
    format!("PRODUCT#{product_id}")
}

fn rating_key(product_id: &str) -> Item {
    key(format!("RATING#{product_id}"), RATING_SK)
}

fn author_key(user_id: &str, product_id: &str) -> Item {
    key(format!("AUTHOR#{user_id}"), format!("PRODUCT#{product_id}"))
}

fn claim_key(review_id: &str, claim: &ReviewClaim) -> Item {
    match claim {
        ReviewClaim::Vote { user_id } => key(review_pk(review_id), format!("VOTE#{user_id}")),
        ReviewClaim::Report { user_id } => key(review_pk(review_id), format!("REPORT#{user_id}")),
    }
}

/// The review item with the index keys its status puts it under.
fn review_item(review: &Review) -> Result<Item> {
    let mut item = to_item(review)?;
    item.extend(key(review_pk(review.review_id.as_str()), REVIEW_SK));
    item.insert("entity".into(), s("review"));
    let at = format!("{}#{}", sortable(review.created_at), review.review_id);
    match review.status {
        ReviewStatus::Approved => {
            let partition = product_partition(review.product_id.as_str());
            for (index, sort) in [
                (GSI1, at.clone()),
                (GSI2, format!("{:010}#{at}", review.helpful)),
                (GSI3, format!("{}#{at}", review.rating)),
            ] {
                item.insert(index.pk.into(), s(partition.clone()));
                item.insert(index.sk.into(), s(sort));
            }
        }
        ReviewStatus::Pending => {
            item.insert(GSI4.pk.into(), s(PENDING_PK));
            item.insert(GSI4.sk.into(), s(at));
        }
        ReviewStatus::Rejected => {}
    }
    Ok(item)
}

/// Reviews, their claims and their products' aggregates in one DynamoDB table; a verified review's purchase
/// is checked against the orders table in the same transaction.
#[derive(Debug, Clone)]
pub struct DynamoReviews {
    table: Table,
    orders: Option<Table>,
}

impl DynamoReviews {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { table: Table::new(client, table), orders: None }
    }

    /// Creating a verified review checks the order in `orders_table` (template.yaml gives create-review
    /// `ORDERS_TABLE` and ConditionCheckItem on it).
    pub fn with_orders(mut self, orders_table: impl Into<String>) -> Self {
        self.orders = Some(self.table.sibling(orders_table));
        self
    }

    /// The aggregate's `ADD`s for `delta`, `None` when it changes nothing.
    fn aggregate_update(&self, product_id: &str, delta: &RatingDelta) -> Option<TransactWriteItem> {
        if delta.is_zero() {
            return None;
        }
        let mut adds: Vec<String> = vec!["#version :one".into()];
        let mut update = self.table.update(rating_key(product_id), "");
        for (i, d) in delta.0.iter().enumerate().filter(|(_, d)| **d != 0) {
            adds.push(format!("c{} :d{}", i + 1, i + 1));
            update = update.expression_attribute_values(format!(":d{}", i + 1), n(d));
        }
        let update = update
            .update_expression(format!("ADD {} SET product_id = :pid, entity = :entity", adds.join(", ")))
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":pid", s(product_id))
            .expression_attribute_values(":entity", s("rating"))
            .build()
            .expect("table, key and expression are set");
        Some(TransactWriteItem::builder().update(update).build())
    }

    fn put_new(&self, item: Item) -> TransactWriteItem {
        let put = self.table.put(item).condition_expression("attribute_not_exists(pk)").build();
        TransactWriteItem::builder().put(put.expect("table and item are set")).build()
    }
}

impl ReviewReader for DynamoReviews {
    async fn get_review(&self, review_id: &str) -> Result<Option<Review>> {
        self.table.get_as(key(review_pk(review_id), REVIEW_SK)).await
    }

    async fn list_reviews(&self, product_id: &str, query: &ReviewQuery) -> Result<Page<Review>> {
        let partition = product_partition(product_id);
        let (index, forward) = match (query.sort, query.rating) {
            (ReviewSort::Newest, None) => (GSI1, false),
            (ReviewSort::Helpful, _) => (GSI2, false),
            (ReviewSort::RatingAsc, None) => (GSI3, true),
            _ => (GSI3, false),
        };
        let mut request = self
            .table
            .query()
            .index_name(index.name)
            .scan_index_forward(forward)
            .limit(i32::try_from(query.limit).unwrap_or(50))
            .expression_attribute_names("#pk", index.pk)
            .expression_attribute_values(":pk", s(partition.clone()));
        request = match (query.rating, index.name) {
            (Some(stars), "gsi3") => request
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :stars)")
                .expression_attribute_names("#sk", index.sk)
                .expression_attribute_values(":stars", s(format!("{stars}#"))),
            (Some(stars), _) => request
                .key_condition_expression("#pk = :pk")
                .filter_expression("#rating = :stars")
                .expression_attribute_names("#rating", "rating")
                .expression_attribute_values(":stars", n(stars)),
            (None, _) => request.key_condition_expression("#pk = :pk"),
        };
        let (items, next_cursor) = self.table.page(request, index, &partition, query.cursor.as_deref()).await?;
        let items = items.into_iter().map(from_item).collect::<Result<Vec<Review>>>()?;
        Ok(Page { items, next_cursor })
    }

    async fn pending_reviews(&self, limit: u32, cursor: Option<&str>) -> Result<Page<Review>> {
        let request = self
            .table
            .query()
            .index_name(GSI4.name)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", GSI4.pk)
            .expression_attribute_values(":pk", s(PENDING_PK))
            .limit(i32::try_from(limit).unwrap_or(50));
        let (items, next_cursor) = self.table.page(request, GSI4, PENDING_PK, cursor).await?;
        let items = items.into_iter().map(from_item).collect::<Result<Vec<Review>>>()?;
        Ok(Page { items, next_cursor })
    }

    async fn rating(&self, product_id: &str) -> Result<RatingCounts> {
        Ok(self.table.get(rating_key(product_id)).await?.map(|item| counts_of(&item)).unwrap_or_default())
    }
}

/// An aggregate item's counts (absent counters are 0).
pub fn counts_of(item: &Item) -> RatingCounts {
    let mut stars = [0u64; 5];
    for (i, c) in stars.iter_mut().enumerate() {
        *c = u64::try_from(num(item, &format!("c{}", i + 1))).unwrap_or(0);
    }
    RatingCounts { stars, version: u64::try_from(num(item, "version")).unwrap_or(0) }
}

/// The product id an aggregate item counts for.
pub fn rated_product(item: &Item) -> Option<&String> {
    text(item, "product_id")
}

impl ReviewWriter for DynamoReviews {
    async fn create_review(&self, created: &Transition, order_id: Option<&str>) -> Result<()> {
        let review = &created.next;
        let mut claim = author_key(&review.author_id, review.product_id.as_str());
        claim.insert("review_id".into(), s(review.review_id.as_str()));
        let mut actions = vec![self.put_new(review_item(review)?), self.put_new(claim)];
        if let Some(order_id) = order_id {
            let orders = self.orders.as_ref().ok_or_else(|| {
                DomainError::unexpected("a verified review checks its order but ORDERS_TABLE is not set")
            })?;
            let check = orders
                .condition_check(key(crate::orders::order_pk(order_id), "ORDER"))
                .condition_expression("contains(#delivered, :product) AND #customer = :customer")
                .expression_attribute_names("#delivered", "delivered_products")
                .expression_attribute_names("#customer", "gsi1pk")
                .expression_attribute_values(":product", s(review.product_id.as_str()))
                .expression_attribute_values(":customer", s(format!("CUSTOMER#{}", review.author_id)))
                .build()
                .expect("table, key and condition are set");
            actions.push(TransactWriteItem::builder().condition_check(check).build());
        }
        actions.extend(self.aggregate_update(review.product_id.as_str(), &created.delta));
        match self.table.transact(actions).await? {
            None => Ok(()),
            Some(cancelled) if cancelled.failed(1) => {
                Err(DomainError::conflict(ErrorCode::ReviewExists, "you already reviewed this product; edit it"))
            }
            Some(cancelled) if order_id.is_some() && cancelled.failed(2) => Err(not_a_verified_buyer()),
            Some(cancelled) => Err(DomainError::unexpected(format!("review write cancelled: {:?}", cancelled.codes()))),
        }
    }

    async fn replace_review(
        &self,
        current: &Review,
        transition: &Transition,
        claim: Option<&ReviewClaim>,
    ) -> Result<()> {
        let put = self
            .table
            .put(review_item(&transition.next)?)
            .condition_expression("#version = :expected")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":expected", n(current.version))
            .build()
            .expect("table and item are set");
        let mut actions = vec![TransactWriteItem::builder().put(put).build()];
        if let Some(claim) = claim {
            actions.push(self.put_new(claim_key(current.review_id.as_str(), claim)));
        }
        actions.extend(self.aggregate_update(current.product_id.as_str(), &transition.delta));
        match self.table.transact(actions).await? {
            None => Ok(()),
            Some(cancelled) if cancelled.failed(0) => {
                Err(DomainError::conflict(ErrorCode::VersionConflict, "the review changed concurrently"))
            }
            Some(cancelled) if claim.is_some() && cancelled.failed(1) => Err(match claim {
                Some(ReviewClaim::Vote { .. }) => {
                    DomainError::conflict(ErrorCode::AlreadyVoted, "you already marked this review helpful")
                }
                _ => DomainError::conflict(ErrorCode::AlreadyReported, "you already reported this review"),
            }),
            Some(cancelled) => Err(DomainError::unexpected(format!("review write cancelled: {:?}", cancelled.codes()))),
        }
    }

    async fn delete_review(&self, current: &Review, delta: &RatingDelta) -> Result<()> {
        let delete = self
            .table
            .delete(key(review_pk(current.review_id.as_str()), REVIEW_SK))
            .condition_expression("#version = :expected")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":expected", n(current.version))
            .build()
            .expect("table and key are set");
        let claim = self
            .table
            .delete(author_key(&current.author_id, current.product_id.as_str()))
            .build()
            .expect("table and key are set");
        let mut actions = vec![
            TransactWriteItem::builder().delete(delete).build(),
            TransactWriteItem::builder().delete(claim).build(),
        ];
        actions.extend(self.aggregate_update(current.product_id.as_str(), delta));
        match self.table.transact(actions).await? {
            None => Ok(()),
            Some(cancelled) if cancelled.failed(0) => {
                Err(DomainError::conflict(ErrorCode::VersionConflict, "the review changed concurrently"))
            }
            Some(cancelled) => {
                Err(DomainError::unexpected(format!("review delete cancelled: {:?}", cancelled.codes())))
            }
        }
    }
}
