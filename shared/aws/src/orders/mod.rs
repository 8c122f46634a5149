//! The orders table (DynamoDB), the order events queue (SQS) and the checkout state machine (Step Functions).
//!
//! Item layout (docs/DATA_MODEL.md):
//! - order `ORDER#<id> / ORDER`: the fixed facts (`header`), the append-only `events` (only ever extended
//!   with `list_append`), the derived status, `version` (= last event number) and a summary; `gsi1`
//!   `CUSTOMER#<user>` by creation time for signed-in shoppers; while pending, `gsi3` `PENDING#<shard>` by
//!   creation time (sparse: removed by the write that takes it out of pending). Creating it is one conditional put and every
//!   later change one conditional update (`version = :expected`): one item, never a transaction. Header,
//!   events and summary are in a compact encoding (`stored`) that keeps a one-line order under 1 KB.
//! - seller part `ORDER#<id> / SELLER#<seller>`: that seller's view, from confirmation on, a projection of the
//!   order item written after it and guarded by `version`; `gsi2` `SELLER#<seller>` by creation time.
//! - payment `ORDER#<id> / PAYMENT`: the payment as last reported, with the time it was observed.
//! - claim `ONCE#<id> / ONCE`: a webhook event or one-time effect already done (TTL `expires_at`).
//! - notification `NOTIFY#<order id> / <notification id>`: a delivered notification (local sink).
//! - parcel `PARCEL#<carrier>#<tracking number> / ORDER#<order id>#<seller>`: a shipment that ships (or may
//!   ship) in that parcel, for the carrier's webhook; written before the shipment begins, checked against the
//!   order when read.

mod stored;

use crate::dynamo::{
    applied, from_av, key, n, s, sdk_error, sortable, text, to_av, Index, Item, Table, GSI1, GSI2, GSI3,
};
use crate::dynamo::{transact_retrying, Cancellation};
use crate::promotions::{usage_actions, UsagePart};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::types::TransactWriteItem;
use chrono::{DateTime, Utc};
use commerce_app::ports::HoldOutcome;
use commerce_app::ports::{
    CheckoutStarter, CustomerOrders, NotificationSink, OrderEventPublisher, OrderReader, OrderWriter, ParcelIndex,
    PaymentLedger, PurchaseHistory, SellerOrders,
};
use commerce_domain::catalog::{Page, PageLimit};
use commerce_domain::error::{DomainError, Result};
use commerce_domain::order::{Order, OrderNotification, OrderStatus, OrderSummary, SellerOrderView};
use commerce_domain::payment::Payment;
use futures::FutureExt;
use stored::{StoredEvent, StoredHeader, StoredSummary};

const ORDER_SK: &str = "ORDER";
/// The order item's set of products delivered and not returned (what a verified review checks).
const DELIVERED: &str = "delivered_products";
/// Partitions of the pending-orders index (`PENDING#0` ..): every checkout writes it twice, so one partition
/// would cap the checkout rate.
const PENDING_SHARDS: u32 = 8;
const PAYMENT_SK: &str = "PAYMENT";
/// How long a claim is remembered (providers retry webhooks for up to 3 days).
const WEBHOOK_MEMORY_DAYS: i64 = 7;

/// The pending-orders index partition of an order (a stable digest of its id).
fn pending_pk(order_id: &str) -> String {
    let shard = order_id.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b))) % PENDING_SHARDS;
    format!("PENDING#{shard}")
}

pub(crate) fn order_pk(order_id: &str) -> String {
    format!("ORDER#{order_id}")
}

fn time_key(at: DateTime<Utc>, id: &str) -> String {
    format!("{}#{id}", sortable(at))
}

fn attr<'a>(item: &'a Item, name: &str) -> Result<&'a AttributeValue> {
    item.get(name).ok_or_else(|| DomainError::unexpected(format!("stored item lacks {name}")))
}

fn stored_events(events: &[commerce_domain::order::OrderEvent]) -> Vec<StoredEvent> {
    events.iter().map(StoredEvent::of).collect()
}

/// The order item: keys, the compact encoding of header, events and summary (see `stored`), status, version.
fn order_item(order: &Order) -> Result<Item> {
    let header = order.header();
    let mut item = Item::from([
        ("pk".into(), s(order_pk(&header.id))),
        ("sk".into(), s(ORDER_SK)),
        ("entity".into(), s("order")),
        ("header".into(), to_av(&StoredHeader::of(header))?),
        ("status".into(), s(order.status().as_str())),
        ("version".into(), n(order.version())),
        ("summary".into(), to_av(&StoredSummary::of(&order.summary()))?),
        ("events".into(), to_av(&stored_events(order.events()))?),
    ]);
    if let Some(user_id) = &header.customer.user_id {
        item.insert("gsi1pk".into(), s(format!("CUSTOMER#{user_id}")));
        item.insert("gsi1sk".into(), s(time_key(header.created_at, &header.id)));
    }
    if order.status() == OrderStatus::Pending {
        item.insert("gsi3pk".into(), s(pending_pk(&header.id)));
        item.insert("gsi3sk".into(), s(time_key(header.created_at, &header.id)));
    }
    let delivered = order.delivered_products();
    if !delivered.is_empty() {
        item.insert(DELIVERED.into(), AttributeValue::Ss(delivered.into_iter().collect()));
    }
    Ok(item)
}

/// The size in bytes of `order`'s item as DynamoDB bills it (what each write of it costs; benchmarks).
pub fn order_item_size(order: &Order) -> Result<usize> {
    Ok(crate::dynamo::item_size(&order_item(order)?))
}

/// Orders, payments records, webhook claims and the local notification sink in one DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoOrders {
    table: Table,
    /// The promotions table, for the functions whose order writes change promotion counts.
    promotions: Option<Table>,
}

impl DynamoOrders {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { table: Table::new(client, table), promotions: None }
    }

    /// Order writes that hold, commit, release or give back promotion uses also write their counts in
    /// `promotions_table` (template.yaml gives those functions `PROMOTIONS_TABLE`); without it such a write
    /// fails, as IAM would refuse it.
    pub fn with_promotions(mut self, promotions_table: impl Into<String>) -> Self {
        self.promotions = Some(self.table.sibling(promotions_table));
        self
    }

    /// The order item's update appending the events after `expected_version` (conditional on it).
    fn append_update(&self, order: &Order, expected_version: u32) -> Result<aws_sdk_dynamodb::types::Update> {
        let mut set = String::from(
            "SET #events = list_append(#events, :new), #status = :status, #version = :version, #summary = :summary",
        );
        let mut remove: Vec<&str> = Vec::new();
        if order.status() != OrderStatus::Pending {
            remove.extend(["gsi3pk", "gsi3sk"]);
        }
        let delivered = order.delivered_products();
        if delivered.is_empty() {
            remove.push(DELIVERED);
        } else {
            set.push_str(", #delivered = :delivered");
        }
        let expression = if remove.is_empty() { set } else { format!("{set} REMOVE {}", remove.join(", ")) };
        let mut update = self
            .table
            .update(key(order_pk(order.id()), ORDER_SK), expression)
            .condition_expression("#version = :expected")
            .expression_attribute_names("#events", "events")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#version", "version")
            .expression_attribute_names("#summary", "summary")
            .expression_attribute_values(":new", to_av(&stored_events(order.events_since(expected_version)))?)
            .expression_attribute_values(":status", s(order.status().as_str()))
            .expression_attribute_values(":version", n(order.version()))
            .expression_attribute_values(":summary", to_av(&StoredSummary::of(&order.summary()))?)
            .expression_attribute_values(":expected", n(expected_version));
        if !delivered.is_empty() {
            update = update
                .expression_attribute_names("#delivered", DELIVERED)
                .expression_attribute_values(":delivered", AttributeValue::Ss(delivered.into_iter().collect()));
        }
        Ok(update.build().expect("table, key and expression are set"))
    }

    /// Appends the events after `expected_version` in one transaction with the promotion counts they change:
    /// `None` when it applied, else the cancellation and what each action after the order's wrote.
    async fn append_with_usage(
        &self,
        order: &Order,
        expected_version: u32,
        changes: &[commerce_domain::order::UsageChange],
    ) -> Result<Option<(Cancellation, Vec<(String, u32, UsagePart)>)>> {
        let promotions = self.promotions.as_ref().ok_or_else(|| {
            DomainError::unexpected("an order write changes promotion counts but PROMOTIONS_TABLE is not set")
        })?;
        let mut actions =
            vec![TransactWriteItem::builder().update(self.append_update(order, expected_version)?).build()];
        let mut parts = Vec::new();
        for change in changes {
            for (action, part) in usage_actions(promotions, change) {
                actions.push(action);
                parts.push((change.redemption.promotion_id.clone(), change.shard, part));
            }
        }
        // A hot promotion's shards are written by many checkouts at once: a transaction cancelled only by
        // conflicts with others is sent again after a backoff.
        let busy = "the promotion counters are busy; retry";
        Ok(transact_retrying(self.table.client(), &actions, busy).await?.map(|(_, cancelled)| (cancelled, parts)))
    }

    /// Puts each seller's view of `order` unless a view of a later version is stored: the parts are a
    /// projection of the order item, written after it, so a late or repeated writer never moves one back.
    async fn put_seller_parts(&self, order: &Order) -> Result<()> {
        if matches!(order.status(), OrderStatus::Pending | OrderStatus::Failed) {
            return Ok(());
        }
        let header = order.header();
        for seller in order.seller_ids() {
            let Some(view) = order.seller_view(seller) else {
                continue;
            };
            let result = self
                .table
                .put_item()
                .item("pk", s(order_pk(&header.id)))
                .item("sk", s(format!("SELLER#{seller}")))
                .item("entity", s("seller_part"))
                .item("view", to_av(&view)?)
                .item("version", n(order.version()))
                .item("gsi2pk", s(format!("SELLER#{seller}")))
                .item("gsi2sk", s(time_key(header.created_at, &header.id)))
                .condition_expression("attribute_not_exists(#version) OR #version < :version")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":version", n(order.version()))
                .send()
                .boxed()
                .await;
            // A failed condition: a view of this version or a later one is stored.
            applied(result)?;
        }
        Ok(())
    }
}

impl OrderReader for DynamoOrders {
    /// Reads only the order item (`pk` and `sk` both fixed): the seller parts and the payment beside it are
    /// not billed.
    async fn get_order(&self, order_id: &str) -> Result<Option<Order>> {
        let out = self
            .table
            .query()
            .key_condition_expression("pk = :pk AND sk = :sk")
            .expression_attribute_values(":pk", s(order_pk(order_id)))
            .expression_attribute_values(":sk", s(ORDER_SK))
            .consistent_read(true)
            .send()
            .boxed()
            .await
            .map_err(sdk_error)?;
        let Some(item) = out.items().first() else {
            return Ok(None);
        };
        let user_id = text(item, "gsi1pk").and_then(|pk| stored::customer_of_gsi1pk(pk));
        let header: StoredHeader = from_av(attr(item, "header")?)?;
        let events: Vec<StoredEvent> = from_av(attr(item, "events")?)?;
        stored::decode(order_id.to_owned(), user_id.map(str::to_owned), header, events).map(Some)
    }
}

impl OrderWriter for DynamoOrders {
    /// One conditional put of the order item, its first event inside: a second create finds it and returns
    /// the stored order.
    async fn create_order(&self, order: &Order) -> Result<Order> {
        if self.table.put_new(order_item(order)?).await? {
            return Ok(order.clone());
        }
        self.get_order(order.id())
            .await?
            .ok_or_else(|| DomainError::Transient("order creation raced with a concurrent writer; retry".into()))
    }

    /// One conditional update of the order item (`version = :expected`) appends the new events to its list
    /// (append only: `list_append`) with the derived status; then each seller's part is put, guarded by
    /// version. With no new events it only re-puts the parts, which finishes a write interrupted between the
    /// two.
    /// An order write that changes promotion counts (commit, release, give back) is one transaction with
    /// them; the counts' own conditions never fail there (only a hold's can, see `hold_promotions`).
    async fn append_events(&self, order: &Order, expected_version: u32) -> Result<()> {
        let new_events = order.events_since(expected_version);
        let changes = order.usage_changes(expected_version);
        if !changes.is_empty() {
            if let Some((cancelled, _)) = self.append_with_usage(order, expected_version, &changes).await? {
                if cancelled.failed(0) {
                    return Err(commerce_domain::order::concurrent_update());
                }
                return Err(DomainError::unexpected(format!("a promotion count refused: {:?}", cancelled.codes())));
            }
        } else if !new_events.is_empty() {
            let update = self.append_update(order, expected_version)?;
            let result = self
                .table
                .update_item()
                .set_key(Some(update.key))
                .update_expression(update.update_expression)
                .set_condition_expression(update.condition_expression)
                .set_expression_attribute_names(update.expression_attribute_names)
                .set_expression_attribute_values(update.expression_attribute_values)
                .send()
                .boxed()
                .await;
            if !applied(result)? {
                return Err(commerce_domain::order::concurrent_update());
            }
        }
        self.put_seller_parts(order).await
    }
}

impl commerce_app::ports::PromotionHolder for DynamoOrders {
    /// Appends `promotions_held` with its takes in one transaction and says which condition failed, if one did.
    async fn hold_promotions(&self, order: &Order, expected_version: u32) -> Result<HoldOutcome> {
        let changes = order.usage_changes(expected_version);
        let Some((cancelled, parts)) = self.append_with_usage(order, expected_version, &changes).await? else {
            return Ok(HoldOutcome::Held);
        };
        if cancelled.failed(0) {
            return Ok(HoldOutcome::OrderChanged);
        }
        let failed = (1..=parts.len()).find(|i| cancelled.failed(*i)).and_then(|i| parts.get(i - 1));
        Ok(match failed {
            Some((promotion_id, shard, UsagePart::Shard)) => {
                HoldOutcome::ShardEmpty { promotion_id: promotion_id.clone(), shard: *shard }
            }
            Some((promotion_id, _, UsagePart::Customer)) => {
                HoldOutcome::Unavailable { promotion_id: promotion_id.clone(), reason: "customer_limit" }
            }
            Some((promotion_id, _, UsagePart::Code)) => {
                HoldOutcome::Unavailable { promotion_id: promotion_id.clone(), reason: "code_used" }
            }
            None => return Err(DomainError::unexpected(format!("hold cancelled: {:?}", cancelled.codes()))),
        })
    }
}

impl DynamoOrders {
    /// One page of an index partition, newest first, each item read by `read`, behind an opaque cursor.
    async fn newest_first<T>(
        &self,
        index: Index,
        partition: String,
        read: impl Fn(&Item) -> Result<T>,
        limit: PageLimit,
        cursor: Option<&str>,
    ) -> Result<Page<T>> {
        let query = self
            .table
            .query()
            .index_name(index.name)
            .key_condition_expression(format!("{} = :pk", index.pk))
            .expression_attribute_values(":pk", s(&partition))
            .scan_index_forward(false)
            .limit(limit.get() as i32);
        let (found, next_cursor) = self.table.page(query, index, &partition, cursor).await?;
        let items = found.iter().map(read).collect::<Result<Vec<_>>>()?;
        Ok(Page { items, next_cursor })
    }
}

impl commerce_app::ports::PendingOrders for DynamoOrders {
    /// One query per `gsi3` partition (`gsi3sk < cutoff`, oldest first), merged oldest first.
    async fn pending_before(&self, cutoff: DateTime<Utc>, limit: usize) -> Result<Vec<String>> {
        let mut found = Vec::new();
        for shard in 0..PENDING_SHARDS {
            let out = self
                .table
                .query()
                .index_name(GSI3.name)
                .key_condition_expression("gsi3pk = :pk AND gsi3sk < :cutoff")
                .expression_attribute_values(":pk", s(format!("PENDING#{shard}")))
                .expression_attribute_values(":cutoff", s(time_key(cutoff, "")))
                .limit(i32::try_from(limit).unwrap_or(i32::MAX).max(1))
                .send()
                .boxed()
                .await
                .map_err(sdk_error)?;
            for item in out.items() {
                let sk = attr(item, "gsi3sk")?.as_s().map_err(|_| DomainError::unexpected("gsi3sk is not a string"))?;
                let pk = attr(item, "pk")?.as_s().ok().and_then(|pk| stored::order_of_pk(pk));
                let order_id = pk.ok_or_else(|| DomainError::unexpected("pending index entry without an order pk"))?;
                found.push((sk.clone(), order_id.to_owned()));
            }
        }
        found.sort();
        Ok(found.into_iter().take(limit).map(|(_, id)| id).collect())
    }
}

impl CustomerOrders for DynamoOrders {
    async fn list_customer_orders(
        &self,
        user_id: &str,
        limit: PageLimit,
        cursor: Option<&str>,
    ) -> Result<Page<OrderSummary>> {
        let read = |item: &Item| {
            let pk = attr(item, "pk")?.as_s().ok().and_then(|pk| stored::order_of_pk(pk));
            let order_id = pk.ok_or_else(|| DomainError::unexpected("order index entry without an order pk"))?;
            let summary: StoredSummary = from_av(attr(item, "summary")?)?;
            Ok(summary.into_summary(order_id.to_owned()))
        };
        self.newest_first(GSI1, format!("CUSTOMER#{user_id}"), read, limit, cursor).await
    }
}

fn parcel_pk(carrier: commerce_domain::tracking::Carrier, tracking_number: &str) -> String {
    format!("PARCEL#{}#{tracking_number}", carrier.as_str())
}

impl ParcelIndex for DynamoOrders {
    async fn index_parcel(
        &self,
        parcel: &commerce_domain::tracking::Parcel,
        order_id: &str,
        seller_id: &str,
    ) -> Result<()> {
        self.table
            .put_item()
            .item("pk", s(parcel_pk(parcel.carrier, &parcel.tracking_number)))
            .item("sk", s(format!("ORDER#{order_id}#{seller_id}")))
            .item("entity", s("parcel"))
            .item("order_id", s(order_id))
            .item("seller_id", s(seller_id))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    async fn parcel_shipments(
        &self,
        carrier: commerce_domain::tracking::Carrier,
        tracking_number: &str,
    ) -> Result<Vec<(String, String)>> {
        let limit = commerce_domain::tracking::MAX_ORDERS_PER_PARCEL;
        let page = self
            .table
            .query()
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(parcel_pk(carrier, tracking_number)))
            .limit(limit as i32)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(page
            .items
            .unwrap_or_default()
            .iter()
            .filter_map(|item| Some((text(item, "order_id")?.clone(), text(item, "seller_id")?.clone())))
            .collect())
    }
}

impl PurchaseHistory for DynamoOrders {
    async fn delivered_order(&self, customer_id: &str, product_id: &str) -> Result<Option<String>> {
        let query = self
            .table
            .query()
            .index_name(GSI1.name)
            .key_condition_expression("#pk = :pk")
            .filter_expression("contains(#delivered, :product)")
            .expression_attribute_names("#pk", GSI1.pk)
            .expression_attribute_names("#delivered", DELIVERED)
            .expression_attribute_values(":pk", s(format!("CUSTOMER#{customer_id}")))
            .expression_attribute_values(":product", s(product_id))
            .projection_expression("pk");
        let found = self.table.query_all(query).await?;
        Ok(found
            .iter()
            .filter_map(|item| text(item, "pk").and_then(|pk| stored::order_of_pk(pk)))
            .map(str::to_owned)
            .next())
    }
}

impl SellerOrders for DynamoOrders {
    async fn list_seller_orders(
        &self,
        seller_id: &str,
        limit: PageLimit,
        cursor: Option<&str>,
    ) -> Result<Page<SellerOrderView>> {
        self.newest_first(
            GSI2,
            format!("SELLER#{seller_id}"),
            |item: &Item| from_av(attr(item, "view")?),
            limit,
            cursor,
        )
        .await
    }
}

impl PaymentLedger for DynamoOrders {
    async fn record_payment(&self, payment: &Payment, observed_at: DateTime<Utc>) -> Result<()> {
        self.put_payment(payment, observed_at, "attribute_not_exists(pk) OR observed_at <= :t", None).await
    }

    async fn bind_payment(&self, payment: &Payment, observed_at: DateTime<Utc>) -> Result<()> {
        self.put_payment(payment, observed_at, "attribute_not_exists(pk)", None).await
    }

    async fn record_payment_report(&self, payment: &Payment, observed_at: DateTime<Utc>) -> Result<()> {
        let condition = "#payment.payment_id = :pid AND observed_at <= :t";
        self.put_payment(payment, observed_at, condition, Some(&payment.payment_id)).await
    }

    async fn payment_for_order(&self, order_id: &str) -> Result<Option<Payment>> {
        let item = self.table.get(key(order_pk(order_id), PAYMENT_SK)).await?;
        item.map(|item| from_av(attr(&item, "payment")?)).transpose()
    }

    async fn claim_once(&self, id: &str) -> Result<bool> {
        let expires = Utc::now() + chrono::Duration::days(WEBHOOK_MEMORY_DAYS);
        self.table
            .put_new(Item::from([
                ("pk".into(), s(format!("ONCE#{id}"))),
                ("sk".into(), s("ONCE")),
                ("entity".into(), s("claim")),
                ("expires_at".into(), n(expires.timestamp())),
            ]))
            .await
    }
}

impl DynamoOrders {
    /// Puts the order's payment record under `condition` (`:t` is `observed_at`, `:pid` the stored payment
    /// id `same_id` must match); a failed condition stores nothing and is not an error.
    async fn put_payment(
        &self,
        payment: &Payment,
        observed_at: DateTime<Utc>,
        condition: &str,
        same_id: Option<&str>,
    ) -> Result<()> {
        let at = observed_at.timestamp_millis();
        let mut put = self
            .table
            .put_item()
            .item("pk", s(order_pk(&payment.order_id)))
            .item("sk", s(PAYMENT_SK))
            .item("entity", s("payment"))
            .item("payment", to_av(payment)?)
            .item("observed_at", n(at))
            .condition_expression(condition);
        if condition.contains(":t") {
            put = put.expression_attribute_values(":t", n(at));
        }
        if let Some(id) = same_id {
            put = put.expression_attribute_names("#payment", "payment").expression_attribute_values(":pid", s(id));
        }
        applied(put.send().boxed().await)?;
        Ok(())
    }

    /// The notifications delivered for an order (the local sink), for tests and local tools.
    pub async fn notifications(&self, order_id: &str) -> Result<Vec<OrderNotification>> {
        let out = self
            .table
            .query()
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(format!("NOTIFY#{order_id}")))
            .consistent_read(true)
            .send()
            .boxed()
            .await
            .map_err(sdk_error)?;
        out.items().iter().map(|item| from_av(attr(item, "notification")?)).collect()
    }
}

impl NotificationSink for DynamoOrders {
    async fn deliver(&self, notification: &OrderNotification) -> Result<bool> {
        self.table
            .put_new(Item::from([
                ("pk".into(), s(format!("NOTIFY#{}", notification.order_id))),
                ("sk".into(), s(&notification.notification_id)),
                ("entity".into(), s("notification")),
                ("notification".into(), to_av(notification)?),
            ]))
            .await
    }
}

/// Publishes order notifications to an SQS queue.
#[derive(Debug, Clone)]
pub struct SqsOrderEvents {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsOrderEvents {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self { client, queue_url: queue_url.into() }
    }
}

impl OrderEventPublisher for SqsOrderEvents {
    async fn publish(&self, notification: &OrderNotification) -> Result<()> {
        let body = serde_json::to_string(notification).map_err(DomainError::unexpected)?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .boxed()
            .await
            .map_err(sqs_error)?;
        Ok(())
    }
}

/// An SQS send's error: a timeout or a failed dispatch is `Transient` (the caller may retry), anything else not.
pub(crate) fn sqs_error<E, R>(err: aws_sdk_sqs::error::SdkError<E, R>) -> DomainError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match &err {
        aws_sdk_sqs::error::SdkError::TimeoutError(_) | aws_sdk_sqs::error::SdkError::DispatchFailure(_) => {
            DomainError::Transient(aws_sdk_sqs::error::DisplayErrorContext(&err).to_string())
        }
        _ => DomainError::unexpected(err),
    }
}

/// Starts checkout executions on a Step Functions state machine.
#[derive(Debug, Clone)]
pub struct SfnCheckoutStarter {
    client: aws_sdk_sfn::Client,
    state_machine_arn: String,
}

impl SfnCheckoutStarter {
    pub fn new(client: aws_sdk_sfn::Client, state_machine_arn: impl Into<String>) -> Self {
        Self { client, state_machine_arn: state_machine_arn.into() }
    }
}

impl CheckoutStarter for SfnCheckoutStarter {
    async fn start_checkout(&self, execution_name: &str, input: &serde_json::Value) -> Result<()> {
        let result = self
            .client
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(execution_name)
            .input(input.to_string())
            .send()
            .boxed()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_execution_already_exists()) => Ok(()),
            Err(aws_sdk_sfn::error::SdkError::ServiceError(service))
                if matches!(
                    aws_sdk_sfn::error::ProvideErrorMetadata::code(service.err()),
                    Some("ThrottlingException" | "ServiceUnavailable")
                ) =>
            {
                Err(DomainError::Transient("step functions throttled".into()))
            }
            Err(
                err
                @ (aws_sdk_sfn::error::SdkError::TimeoutError(_) | aws_sdk_sfn::error::SdkError::DispatchFailure(_)),
            ) => Err(DomainError::Transient(aws_sdk_sfn::error::DisplayErrorContext(&err).to_string())),
            Err(err) => Err(DomainError::unexpected(err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-line order as checkout writes it (ids as long as the real ones: Cognito subs, ULIDs, a SHA-256
    /// fingerprint, an email and a full address): its item must stay under 1 KB placed and confirmed, so its
    /// creation and its confirmation each cost one write unit.
    #[test]
    fn one_line_order_item_stays_under_one_kilobyte_through_confirmation() {
        use crate::dynamo::item_size;
        use commerce_domain::money::{Currency, Money};
        use commerce_domain::order::{Actor, Customer, OrderEventKind, OrderLine};

        let at: DateTime<Utc> = "2026-11-22T08:50:10.705157123Z".parse().unwrap();
        let user = "8d7c6b5a-4e3f-4a2b-9c1d-0e9f8a7b6c5d";
        let line = OrderLine::new(
            "E2E-COST-01M816S7JVB93ZSMJZT0PC2PP5-M",
            "prd_01m816s7jvb93zsmjzt0pc2pp5",
            "1f0e8a3c-6d2b-4b7e-9a55-2c1d3e4f5a6b",
            "Desk lamp with a long product title, brass",
            1,
            Money::new(1999, Currency::USD),
        )
        .unwrap();
        let address = commerce_testkit::orders::demo_address();
        let customer = Customer { user_id: Some(user.into()), email: Some("shopper-123456789@example.com".into()) };
        let cart = "cart_01m816ty114avxn8nrjh126zfx".to_owned();
        let mut order = Order::place(
            "ord_z61wn6p26hxs126cjmr2s2pzc5".into(),
            customer,
            cart,
            vec![line],
            address,
            Actor::shopper(user),
            at,
        )
        .unwrap()
        .with_request_fingerprint("9f".repeat(32));
        let placed = item_size(&order_item(&order).unwrap());
        let confirmed = OrderEventKind::Confirmed { payment_id: "pi_01m816ty114avxn8nrjh126zfx".into() };
        order.record(confirmed, Actor::system("checkout"), None, at).unwrap();
        let confirmed = item_size(&order_item(&order).unwrap());
        assert!(placed < confirmed && confirmed <= 1024, "placed {placed} B, confirmed {confirmed} B");
    }
}
