//! Narrow async traits, one per capability, matching the IAM permissions a function is given.

// ---------------------------------------------------------------------------------------------------------
// Catalog (CatalogTable)
// ---------------------------------------------------------------------------------------------------------

use commerce_domain::catalog;

/// Reads one product by id. IAM: `dynamodb:GetItem` on the catalog table.
pub trait ProductReader: Send + Sync {
    fn get_product(
        &self,
        product_id: &str,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Option<catalog::Product>>> + Send;
}

/// Writes a new product with its SKU and listing entries; SKUs are unique platform-wide and never change seller
/// (409 `sku_taken`), and the category must still exist. IAM: `dynamodb:PutItem`, `dynamodb:ConditionCheckItem`.
pub trait ProductCreator: Send + Sync {
    fn create_product(
        &self,
        product: &catalog::Product,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<()>> + Send;
}

/// Replaces `current` with `next` if the stored version is still `current.version` (409 `version_conflict`
/// otherwise), adding, rewriting and retiring SKU entries and listing entries in the same transaction.
/// IAM: `dynamodb:PutItem`, `dynamodb:DeleteItem`, `dynamodb:ConditionCheckItem`.
pub trait ProductUpdater: Send + Sync {
    fn replace_product(
        &self,
        current: &catalog::Product,
        next: &catalog::Product,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<()>> + Send;
}

/// Deletes a product and its listing entries, if the stored version is still `product.version`; its SKUs stay
/// its seller's (retired, not freed). IAM: `dynamodb:DeleteItem`, `dynamodb:PutItem`.
pub trait ProductRemover: Send + Sync {
    fn delete_product(
        &self,
        product: &catalog::Product,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<()>> + Send;
}

/// Public category listings of active products (a category includes its descendants).
/// IAM: `dynamodb:Query` on the catalog table's `gsi1` and `gsi2` indexes.
pub trait CategoryListing: Send + Sync {
    fn list_category(
        &self,
        query: &catalog::CategoryQuery,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<catalog::Page<catalog::ProductSummary>>> + Send;
}

/// A seller's whole products in every status, newest first. IAM: `dynamodb:Query` on the `gsi3` index.
pub trait SellerProducts: Send + Sync {
    fn list_seller(
        &self,
        seller_id: &str,
        limit: catalog::PageLimit,
        cursor: Option<&str>,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<catalog::Page<catalog::Product>>> + Send;
}

/// Reads variants by SKU for carts, checkout and inventory: price, seller, status, components.
/// Unknown SKUs are absent from the result. IAM: `dynamodb:BatchGetItem` on the catalog table.
pub trait SkuCatalog: Send + Sync {
    fn variants_by_sku(
        &self,
        skus: &[String],
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Vec<catalog::SkuView>>> + Send;
}

/// Reads every category (one small partition). IAM: `dynamodb:Query` on the catalog table.
pub trait CategoryReader: Send + Sync {
    fn list_categories(
        &self,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Vec<catalog::Category>>> + Send;
}

/// Creates, replaces (optimistically, by version) and deletes categories.
/// IAM: `dynamodb:PutItem`, `dynamodb:DeleteItem`.
pub trait CategoryWriter: Send + Sync {
    /// Writes `category`; with `expected_version` the stored version must match (409 `version_conflict`),
    /// without it the category must not exist yet.
    fn put_category(
        &self,
        category: &catalog::Category,
        expected_version: Option<u64>,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<()>> + Send;
    fn delete_category(
        &self,
        category: &catalog::Category,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<()>> + Send;
}

/// Whether any product (in any status) is filed directly under a category. IAM: `dynamodb:Query` on `gsi1`.
pub trait CategoryUsage: Send + Sync {
    fn category_in_use(
        &self,
        category_id: &str,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<bool>> + Send;
}

// ---------------------------------------------------------------------------------------------------------
// Search (OpenSearch in AWS, the embedded engine locally)
// ---------------------------------------------------------------------------------------------------------

use commerce_domain::search;

/// Keeps the search index in step with the catalog and inventory. Every write is order-safe: a change
/// carrying a lower catalog `version` (or, per SKU, a lower `stock_version`) than the index holds is
/// ignored, so replays and reordering never overwrite newer data, and a stock update never clobbers the
/// catalog fields (nor the reverse). IAM: `es:ESHttpGet`, `es:ESHttpPost`, `es:ESHttpPut` on the index.
pub trait SearchIndex: Send + Sync {
    /// Applies catalog changes (in order) and makes them searchable; returns how many changed the index.
    fn apply_changes(
        &self,
        changes: &[search::IndexChange],
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<usize>> + Send;
    /// Applies stock changes per SKU; returns how many changed the index.
    fn set_stock_status(
        &self,
        updates: &[search::StockUpdate],
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<usize>> + Send;
}

/// Queries the search index. IAM: `es:ESHttpGet`, `es:ESHttpPost` on the index's `_search`.
pub trait ProductSearch: Send + Sync {
    fn search(
        &self,
        query: &search::SearchQuery,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<search::SearchResults>> + Send;
    fn suggest(
        &self,
        query: &search::SuggestQuery,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<search::Suggestions>> + Send;
}

// ---------------------------------------------------------------------------------------------------------
// Orders, payments, checkout (OrdersTable, the checkout state machine,
// the order events queue, the payment provider)
// ---------------------------------------------------------------------------------------------------------

use commerce_domain::{order, payment};

/// Reads one order with its whole event history. IAM: `dynamodb:Query` on the orders table.
pub trait OrderReader: Send + Sync {
    fn get_order(
        &self,
        order_id: &str,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Option<order::Order>>> + Send;
}

/// Orders still pending that were placed before `cutoff`, oldest first, at most `limit`: the work list of the
/// pending-order reaper (a pending order's index entry goes when it leaves pending). IAM: `dynamodb:Query` on
/// the orders table's `gsi3`.
pub trait PendingOrders: Send + Sync {
    fn pending_before(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Vec<String>>> + Send;
}

/// Writes orders: a new order once (a second create returns the stored one), then events appended under
/// optimistic concurrency: `expected_version` must still be the stored version (409 `concurrent_update`).
/// IAM: `dynamodb:PutItem`, `dynamodb:UpdateItem`, `dynamodb:ConditionCheckItem` on the orders table.
pub trait OrderWriter: Send + Sync {
    fn create_order(
        &self,
        order: &order::Order,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<order::Order>> + Send;
    fn append_events(
        &self,
        order: &order::Order,
        expected_version: u32,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<()>> + Send;
}

/// Which orders' shipments a carrier's parcel belongs to, for the carrier's webhook: entries are written before
/// the shipment begins (so no crash can leave a shipped parcel unfindable) and a reader checks each against the
/// order. One parcel may carry several orders. IAM: `dynamodb:PutItem` (write) or `dynamodb:Query` (read) on
/// the orders table.
pub trait ParcelIndex: Send + Sync {
    fn index_parcel(
        &self,
        parcel: &commerce_domain::tracking::Parcel,
        order_id: &str,
        seller_id: &str,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<()>> + Send;
    /// The (order id, seller id) pairs indexed under the carrier's tracking number, at most
    /// [`commerce_domain::tracking::MAX_ORDERS_PER_PARCEL`].
    fn parcel_shipments(
        &self,
        carrier: commerce_domain::tracking::Carrier,
        tracking_number: &str,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Vec<(String, String)>>> + Send;
}

/// Checks the signature of a carrier's webhook delivery (`t=<unix>,v1=<hex HMAC-SHA256>` over `t.body`, as
/// for payments). A missing, stale or wrong signature is 400 naming the header.
pub trait CarrierSignature: Send + Sync {
    fn verify(
        &self,
        signature: &str,
        payload: &[u8],
        now: chrono::DateTime<chrono::Utc>,
    ) -> commerce_domain::error::Result<()>;
}

/// A signed-in shopper's orders, newest first. IAM: `dynamodb:Query` on the orders table's `gsi1`.
pub trait CustomerOrders: Send + Sync {
    fn list_customer_orders(
        &self,
        user_id: &str,
        limit: commerce_domain::catalog::PageLimit,
        cursor: Option<&str>,
    ) -> impl std::future::Future<
        Output = commerce_domain::error::Result<commerce_domain::catalog::Page<order::OrderSummary>>,
    > + Send;
}

/// A seller's parts of orders (their lines only), newest first. IAM: `dynamodb:Query` on `gsi2`.
pub trait SellerOrders: Send + Sync {
    fn list_seller_orders(
        &self,
        seller_id: &str,
        limit: commerce_domain::catalog::PageLimit,
        cursor: Option<&str>,
    ) -> impl std::future::Future<
        Output = commerce_domain::error::Result<commerce_domain::catalog::Page<order::SellerOrderView>>,
    > + Send;
}

/// Our record of each order's payment as the provider last reported it, and webhook deduplication.
/// IAM: `dynamodb:PutItem`, `dynamodb:GetItem` on the orders table.
pub trait PaymentLedger: Send + Sync {
    /// Stores `payment` unless a report observed later than `observed_at` is already stored.
    fn record_payment(
        &self,
        payment: &payment::Payment,
        observed_at: chrono::DateTime<chrono::Utc>,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<()>> + Send;
    /// Binds the order to the payment our own authorization returned: stores it unless the order already has
    /// a payment record (a retried authorization then changes nothing).
    fn bind_payment(
        &self,
        payment: &payment::Payment,
        observed_at: chrono::DateTime<chrono::Utc>,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<()>> + Send;
    /// Stores a state the provider reported for the order's payment: only over a stored record of that same
    /// payment id (a report never re-points the order to another payment, nor creates its record), and
    /// unless a report observed later than `observed_at` is already stored.
    fn record_payment_report(
        &self,
        payment: &payment::Payment,
        observed_at: chrono::DateTime<chrono::Utc>,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<()>> + Send;
    fn payment_for_order(
        &self,
        order_id: &str,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Option<payment::Payment>>> + Send;
    /// True the first time an id is claimed (a webhook event, a one-time effect such as a restock), false
    /// for every repeat.
    fn claim_once(&self, id: &str) -> impl std::future::Future<Output = commerce_domain::error::Result<bool>> + Send;
}

/// A payment provider. Every call carries an idempotency key: a retry with the same key never moves money
/// twice. A decline is `PaymentDeclined`; timeouts, 5xx and throttling are `Transient`.
pub trait PaymentProvider: Send + Sync {
    fn authorize(
        &self,
        request: &payment::AuthorizeRequest,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<payment::Payment>> + Send;
    /// Captures `amount` more; `final_capture` releases the uncaptured rest.
    fn capture(
        &self,
        payment_id: &str,
        amount: commerce_domain::money::Money,
        final_capture: bool,
        idempotency_key: &str,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<payment::Payment>> + Send;
    /// Releases the uncaptured hold (a no-op when already voided).
    fn void(
        &self,
        payment_id: &str,
        idempotency_key: &str,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<payment::Payment>> + Send;
    fn refund(
        &self,
        payment_id: &str,
        amount: commerce_domain::money::Money,
        idempotency_key: &str,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<payment::Payment>> + Send;
    /// The payment an order's authorization created, if any: how a compensation finds an authorization
    /// whose response was lost (timeout, crash).
    fn find_for_order(
        &self,
        order_id: &str,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Option<payment::Payment>>> + Send;
}

/// Starts the checkout saga. Starting an execution name twice is not an error: the first one runs.
/// IAM: `states:StartExecution` on the checkout state machine.
pub trait CheckoutStarter: Send + Sync {
    fn start_checkout(
        &self,
        execution_name: &str,
        input: &serde_json::Value,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<()>> + Send;
}

/// Publishes order notifications to the order events queue. IAM: `sqs:SendMessage` on that queue.
pub trait OrderEventPublisher: Send + Sync {
    fn publish(
        &self,
        notification: &order::OrderNotification,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<()>> + Send;
}

/// Delivers notifications (email in production; a readable record locally). Returns false for a duplicate.
/// IAM: `dynamodb:PutItem` on the orders table.
pub trait NotificationSink: Send + Sync {
    fn deliver(
        &self,
        notification: &order::OrderNotification,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<bool>> + Send;
}

// ---------------------------------------------------------------------------------------------------------
// Inventory (InventoryTable) and carts (CartsTable)
// ---------------------------------------------------------------------------------------------------------

use commerce_domain::{cart, inventory};

/// Reads stock levels of SKUs in every warehouse (unknown SKUs map to no levels).
/// IAM: `dynamodb:Query` on the inventory table.
pub trait StockReader: Send + Sync {
    fn stock_levels(
        &self,
        skus: &[String],
    ) -> impl std::future::Future<
        Output = commerce_domain::error::Result<std::collections::HashMap<String, Vec<inventory::StockLevel>>>,
    > + Send;
}

/// Sets stock to an absolute count and adjusts it by a delta; both never lose a concurrent update and never
/// take reserved units (409 `stock_reserved`). IAM: `dynamodb:GetItem`, `dynamodb:PutItem`,
/// `dynamodb:UpdateItem` on the inventory table.
pub trait StockWriter: Send + Sync {
    fn set_stock(
        &self,
        sku: &str,
        warehouse_id: &str,
        set: &inventory::SetStock,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<inventory::StockLevel>> + Send;
    fn adjust_stock(
        &self,
        sku: &str,
        warehouse_id: &str,
        adjustment: &inventory::StockAdjustment,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<inventory::StockLevel>> + Send;
    /// Applies an adjustment exactly once per `key`: the stock update and the key's record are one transaction;
    /// a key already used answers its record (the first result, or the other request's fingerprint).
    fn adjust_stock_once(
        &self,
        sku: &str,
        warehouse_id: &str,
        adjustment: &inventory::StockAdjustment,
        key: &inventory::AdjustmentKey,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<inventory::AdjustOutcome>> + Send;
}

/// Lists warehouses (one small partition). IAM: `dynamodb:Query` on the inventory table.
pub trait WarehouseReader: Send + Sync {
    fn list_warehouses(
        &self,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Vec<inventory::Warehouse>>> + Send;
}

/// Creates a warehouse (409 `warehouse_exists` for a taken id). IAM: `dynamodb:PutItem`.
pub trait WarehouseWriter: Send + Sync {
    fn create_warehouse(
        &self,
        warehouse: &inventory::Warehouse,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<()>> + Send;
}

/// How finishing a reservation went.
#[derive(Debug, Clone, PartialEq)]
pub enum FinishOutcome {
    /// The reservation moved out of `held` and its stock effect was applied, in one transaction.
    Done(inventory::Reservation),
    /// It was no longer held when the write arrived (someone else finished it): re-read and decide again.
    NotHeld,
}

/// Holds, releases and commits stock for reservations: every change is one DynamoDB transaction of the
/// reservation record and its stock items, with conditions, never read-then-write.
/// IAM: `dynamodb:TransactWriteItems`, `dynamodb:PutItem`, `dynamodb:UpdateItem`, `dynamodb:GetItem` on the
/// inventory table, `dynamodb:Query` on its `gsi1` index (expired reservations).
pub trait ReservationStore: Send + Sync {
    /// Writes a planned reservation all or nothing.
    fn try_reserve(
        &self,
        reservation: &inventory::Reservation,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<inventory::reservation::ReserveOutcome>> + Send;
    fn get_reservation(
        &self,
        reservation_id: &str,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Option<inventory::Reservation>>> + Send;
    /// Moves a held reservation to `to` (released or committed) and applies the stock effect.
    fn finish(
        &self,
        reservation: &inventory::Reservation,
        to: inventory::ReservationStatus,
        reason: Option<inventory::reservation::ReleaseReason>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<FinishOutcome>> + Send;
    /// Ids of held reservations that expired at or before `now`, oldest first, at most `limit`.
    fn expired_reservations(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Vec<String>>> + Send;
}

/// Returns an order's sold units to stock exactly once per (order, reason): the marker's conditional put
/// and every stock update (`sold >= q`, or `flash_sold >= q` for flash-sale units) are one transaction.
/// `true` when applied now, `false` when this (order, reason) was already applied.
/// IAM: `dynamodb:TransactWriteItems` (`PutItem` marker, `UpdateItem` stock) on the inventory table.
pub trait SoldStockReturns: Send + Sync {
    fn return_sold(
        &self,
        request: &inventory::returns::SoldReturn,
        now: chrono::DateTime<chrono::Utc>,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<bool>> + Send;
}

/// Replaces held reservations by a new one: writes `new` and releases `replacing` (reason `replaced`) all or
/// nothing, in one transaction that moves only the net difference of stock. Re-holds a cart's changed lines
/// and hands a cart's hold to its order. IAM: `dynamodb:PutItem`, `dynamodb:UpdateItem`, `dynamodb:GetItem`
/// on the inventory table.
pub trait ReservationReplacer: Send + Sync {
    fn try_replace(
        &self,
        replacing: &[inventory::Reservation],
        new: &inventory::Reservation,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<inventory::reservation::ReplaceOutcome>> + Send;
}

/// Reads and writes carts. Every write is conditional on the version read, so concurrent edits and merges
/// never lose an update (a `false` result means "changed meanwhile: re-read and retry").
/// IAM: `dynamodb:GetItem`, `dynamodb:PutItem`, `dynamodb:TransactWriteItems` on the carts table.
pub trait CartStore: Send + Sync {
    fn get_cart(
        &self,
        cart_id: &str,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Option<cart::Cart>>> + Send;
    /// The id of a shopper's cart, if one was created.
    fn shopper_cart_id(
        &self,
        user_id: &str,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Option<String>>> + Send;
    /// Writes a new guest cart (version 0, stored as 1).
    fn create_cart(
        &self,
        cart: &cart::Cart,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<()>> + Send;
    /// Writes a new shopper cart and points the shopper at it, if the shopper still has no cart
    /// (`replacing: None`) or still points at the expired `replacing` cart.
    fn create_shopper_cart(
        &self,
        user_id: &str,
        cart: &cart::Cart,
        replacing: Option<&str>,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<bool>> + Send;
    /// Stores `cart` as version `cart.version + 1` if the stored version is still `cart.version`.
    fn save_cart(
        &self,
        cart: &cart::Cart,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<bool>> + Send;
    /// Stores a merge: both carts, each if its stored version is still its `version`.
    fn save_merge(
        &self,
        shopper: &cart::Cart,
        guest: &cart::Cart,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<bool>> + Send;
}

// ---------------------------------------------------------------------------------------------------------
// Flash sales (FlashSalesTable, the waiting-room queue, units allocated from InventoryTable)
// ---------------------------------------------------------------------------------------------------------

use commerce_domain::flash_sale;

/// Creates sales: reads a SKU's stock per warehouse, then allocates the units and writes the sale, its gate
/// and its shards in one transaction with the stock item (`OutOfStock` when the warehouse no longer has them).
/// IAM: `dynamodb:Query` and `dynamodb:UpdateItem` (in a transaction) on the inventory table,
/// `dynamodb:PutItem` (in a transaction) on the flash sales table, `dynamodb:TransactWriteItems`.
pub trait FlashSaleCreator: Send + Sync {
    /// Available units of `sku` per warehouse id.
    fn available_by_warehouse(
        &self,
        sku: &str,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Vec<(String, i64)>>> + Send;
    fn create_sale(
        &self,
        sale: &flash_sale::FlashSale,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<()>> + Send;
}

/// Reads a sale and its sold-out gate. IAM: `dynamodb:GetItem` on the flash sales table.
pub trait FlashSaleReader: Send + Sync {
    fn get_sale(
        &self,
        sale_id: &str,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Option<flash_sale::FlashSale>>> + Send;
    /// The gate; `consistent: false` is an eventually consistent read (half the cost), fine for rejecting.
    fn get_gate(
        &self,
        sale_id: &str,
        consistent: bool,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<flash_sale::Gate>> + Send;
}

/// Sales of one SKU, newest first. IAM: `dynamodb:Query` on the flash sales table's `gsi2` index.
pub trait FlashSaleListing: Send + Sync {
    fn sales_for_sku(
        &self,
        sku: &str,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Vec<flash_sale::FlashSale>>> + Send;
}

/// How writing an entry went.
#[derive(Debug, Clone, PartialEq)]
pub enum EntryOutcome {
    /// The ticket was written and the customer's counter raised, in one transaction.
    Created,
    /// A ticket with this id exists: a retry with the same Idempotency-Key.
    Existing(flash_sale::Ticket),
    /// The customer already holds `per_customer_limit` live entries.
    LimitReached,
    /// The customer entered less than the minimum interval ago.
    TooSoon,
}

/// Writes entries. IAM: `dynamodb:UpdateItem` (sequence shards), `dynamodb:GetItem` and
/// `dynamodb:TransactWriteItems` (ticket `PutItem` + customer counter `UpdateItem`) on the flash sales table.
pub trait FlashEntryWriter: Send + Sync {
    /// The next value of sequence shard `k` of a sale (1, 2, ...).
    fn next_sequence(
        &self,
        sale_id: &str,
        k: u32,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<u64>> + Send;
    /// Writes a waiting ticket if it does not exist, raising the customer's counter only while it is below
    /// `limit` and the customer's previous entry is at least `min_interval` old.
    fn create_ticket(
        &self,
        ticket: &flash_sale::Ticket,
        limit: u32,
        min_interval: chrono::Duration,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<EntryOutcome>> + Send;
}

/// The waiting room's queue. IAM: `sqs:SendMessage` on the waiting-room queue.
pub trait WaitingRoom: Send + Sync {
    /// Enqueues a ticket in its lane (FIFO message group); the ticket id deduplicates a resend.
    fn enqueue(
        &self,
        ticket: &flash_sale::Ticket,
        lane: u32,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<()>> + Send;
}

/// Reads tickets and settles them on read: a waiting ticket behind a closed gate becomes sold out, a won hold
/// past its expiry expires (its unit goes back to its shard and the gate reopens).
/// IAM: `dynamodb:GetItem`, `dynamodb:UpdateItem`, `dynamodb:TransactWriteItems` on the flash sales table.
pub trait FlashTicketStore: Send + Sync {
    fn get_ticket(
        &self,
        ticket_id: &str,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Option<flash_sale::Ticket>>> + Send;
    /// Moves a waiting ticket to sold out and lowers the customer's counter; `false` if it was not waiting.
    fn mark_sold_out(
        &self,
        ticket: &flash_sale::Ticket,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<bool>> + Send;
    /// Moves a won ticket whose hold ran out by `now` (or, with `to: Released`, a purchased one whose
    /// checkout gave up) back: the unit returns to its shard, the gate reopens, the counter drops, in one
    /// transaction. `false` if the ticket was no longer in the expected state.
    fn return_unit(
        &self,
        ticket: &flash_sale::Ticket,
        to: flash_sale::TicketStatus,
        now: chrono::DateTime<chrono::Utc>,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<bool>> + Send;
}

/// What one take attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TakeOutcome {
    /// The shard gave units to the first `count` takes asked for (fewer than asked when it held fewer);
    /// `previous` holds the takes whose marks the write replaced there: its lane's last take and the one kept
    /// before that (`prev`), to be settled if they are not.
    Taken { count: usize, previous: Vec<flash_sale::Take> },
    /// The shard was empty; `remaining` is what it held when the condition failed, if known.
    ShardEmpty { remaining: Option<i64> },
}

/// How settling a take ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// Its ticket won it, now.
    Won,
    /// Its ticket had already won it.
    AlreadyWon,
    /// The unit went back to the sale (shard refilled, gate reopened), now.
    GivenBack,
    /// The unit had already gone back.
    AlreadyGivenBack,
}

/// A shard as read: its units and the takes its lanes' marks name (the last take of each lane there and the
/// one it replaced).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShardState {
    pub units: i64,
    pub takes: Vec<flash_sale::Take>,
}

/// Counters an admission worker adds up per batch (for the benchmark and capacity planning).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct AdmissionStats {
    pub admitted: u64,
    pub rejected: u64,
    /// Admissions that hit an empty shard and fell back to another.
    pub fallbacks: u64,
    /// Writes whose condition failed (each still costs write units in AWS).
    pub condition_failures: u64,
    pub rebalances: u64,
    /// Write units by AWS's rules (1 per KB per single write, 2 per KB per transactional item).
    pub write_units: u64,
    pub read_units: u64,
}

/// The admission worker's writes. IAM: `dynamodb:BatchGetItem` (shards, tickets), `dynamodb:GetItem` (ticket),
/// `dynamodb:UpdateItem` (shard, ticket, gate, metrics) and `dynamodb:TransactWriteItems` (rebalancing, giving a
/// unit back) on the flash sales table.
pub trait FlashAdmissions: Send + Sync {
    /// Units in every shard, by index, read consistently.
    fn shard_units(
        &self,
        sale: &flash_sale::FlashSale,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Vec<i64>>> + Send;
    /// Every shard's units and the takes its lane marks name, by index, read consistently.
    fn shard_states(
        &self,
        sale: &flash_sale::FlashSale,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Vec<ShardState>>> + Send;
    /// The first write of an admission: one conditional write takes a unit from `shard` for each of `takes`
    /// (consecutive entries of one lane, at most [`flash_sale::MAX_BATCH_TAKE`]; when the shard holds fewer,
    /// the first entries take what is left) and records them as the lane's last take there (keeping the one it
    /// replaces beside it), answering the previous takes (to be settled if they are not). A batch of two or
    /// more is named by a take record written before the shard write.
    fn take_units(
        &self,
        sale: &flash_sale::FlashSale,
        shard: u32,
        takes: &[flash_sale::Take],
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<TakeOutcome>> + Send;
    /// Settles a take of `shard`, exactly once: with `hold_expires_at`, its ticket wins the unit if still
    /// waiting; otherwise (or without a hold) the unit goes back to the sale unless the ticket already won it
    /// or it already went back. A reconciled sale is 409 `sale_reconciled`.
    fn settle(
        &self,
        sale: &flash_sale::FlashSale,
        shard: u32,
        take: &flash_sale::Take,
        hold_expires_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Settlement>> + Send;
    /// The takes (with their shards) that are not settled yet: one consistent batch read of their tickets.
    fn unsettled(
        &self,
        takes: &[(u32, flash_sale::Take)],
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Vec<(u32, flash_sale::Take)>>> + Send;
    /// Closes the gate (and every copy of it) if no unit came back since the gate read `returns`; `false`
    /// otherwise.
    fn close_gate(
        &self,
        sale: &flash_sale::FlashSale,
        returns: u64,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<bool>> + Send;
    /// Moves units between shards (conditional on the source holding them); `false` if it no longer did.
    fn move_units(
        &self,
        sale_id: &str,
        mv: flash_sale::Move,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<bool>> + Send;
    /// Adds a batch's counters to this worker instance's metrics item.
    fn record(
        &self,
        sale_id: &str,
        instance: &str,
        stats: &AdmissionStats,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<()>> + Send;
}

/// A unit checkout took from a won hold.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HeldUnit {
    pub ticket_id: String,
    pub sale_id: String,
    pub sku: String,
    pub warehouse_id: String,
    pub price: commerce_domain::money::Money,
    pub order_id: String,
}

/// Checkout's side of a won hold. IAM: `dynamodb:GetItem`, `dynamodb:UpdateItem`,
/// `dynamodb:TransactWriteItems` on the flash sales table.
pub trait FlashHolds: Send + Sync {
    /// Moves a won, unexpired ticket of `customer_id` to purchased by `order_id`; `false` if it was not
    /// (the caller re-reads to tell a replay from an expired or foreign hold).
    fn consume(
        &self,
        ticket_id: &str,
        customer_id: &str,
        order_id: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<bool>> + Send;
}

/// The schedule's reads and the final write of a sale. IAM: `dynamodb:Query` on the flash sales table's
/// `gsi1` index, `dynamodb:BatchGetItem`, `dynamodb:TransactWriteItems` (stock item `UpdateItem` on the
/// inventory table, sale and shards on the flash sales table).
pub trait FlashReconciler: Send + Sync {
    /// Sales not yet reconciled.
    fn live_sales(
        &self,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Vec<flash_sale::FlashSale>>> + Send;
    /// Won tickets whose hold ran out by `now`, at most `limit`.
    fn expired_holds(
        &self,
        sale: &flash_sale::FlashSale,
        now: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Vec<flash_sale::Ticket>>> + Send;
    /// Whether any hold is outstanding (won, expired or not).
    fn has_holds(
        &self,
        sale: &flash_sale::FlashSale,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<bool>> + Send;
    /// Returns the shards (holding `shards` units, as read) to the stock item and books the rest as sold, if
    /// no shard changed since; `false` otherwise.
    fn reconcile(
        &self,
        sale: &flash_sale::FlashSale,
        shards: &[i64],
        now: chrono::DateTime<chrono::Utc>,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<bool>> + Send;
}

/// Reads a payment provider's webhook delivery: checks its signature against the endpoint's secret and parses
/// it. A missing, stale or wrong signature is 400 naming the signature header; an unreadable body is 400.
pub trait WebhookReader: Send + Sync {
    fn read(
        &self,
        signature: &str,
        payload: &[u8],
        now: chrono::DateTime<chrono::Utc>,
    ) -> commerce_domain::error::Result<commerce_domain::payment::WebhookEvent>;
}

/// Turns an optional `Authorization` header into a caller. Implemented by `jwt::JwtVerifier`.
pub trait CallerResolver: Send + Sync {
    /// `Ok(None)` without a header; 401 for a header that does not verify.
    fn resolve(
        &self,
        authorization: Option<&str>,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Option<commerce_domain::auth::Caller>>> + Send;
}

/// A stream record as the adapter decoded it: its sequence number and what it carries. `Ok(None)` is an item
/// the use case does not index; `Err` a record that cannot be decoded.
#[derive(Debug)]
pub struct StreamRecord<T> {
    pub sequence_number: String,
    pub item: commerce_domain::error::Result<Option<T>>,
}

/// One stock item's change from the inventory stream: before (none for a new item) and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockTransition {
    pub sequence_number: String,
    pub old: Option<commerce_domain::inventory::StockLevel>,
    pub new: commerce_domain::inventory::StockLevel,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// What a catalog stream record says of a product.
// Nearly every event carries a product; boxing it would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum ProductEvent {
    Current(commerce_domain::catalog::Product),
    Deleted { product_id: String, version: u64 },
}

/// What an inventory stream record says of a SKU's stock at one warehouse: its `avail` before and after
/// (`None` when the item was created or removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockChange {
    pub sku: String,
    pub old_avail: Option<i64>,
    pub new_avail: Option<i64>,
}

impl StockChange {
    /// Whether the change may have flipped the SKU's availability. A SKU is in stock when some warehouse has
    /// `avail > 0`, so only a per-warehouse flip can flip the SKU. A created or removed item always counts: a
    /// SKU never reported shows as in stock.
    pub fn may_flip(&self) -> bool {
        self.old_avail.is_none()
            || self.new_avail.is_none()
            || commerce_domain::inventory::stock_status_change(self.old_avail, self.new_avail).is_some()
    }
}

// ---------------------------------------------------------------------------------------------------------
// Taxes and shipping (CatalogTable: `TAX` / `REGION#<code>`, `SHIP#<seller>` / `METHOD#<id>`;
// CartsTable: `CART#<cart_id>` / `QUOTE#<quote_id>`)
// ---------------------------------------------------------------------------------------------------------

use commerce_domain::shipping;
use commerce_domain::tax;

/// Reads every configured tax region (one small partition). IAM: `dynamodb:Query` on the catalog table, leading
/// key `TAX`.
pub trait TaxRegionReader: Send + Sync {
    fn list_tax_regions(
        &self,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Vec<tax::TaxRegion>>> + Send;
}

/// Writes a tax region. IAM: `dynamodb:PutItem` on the catalog table, leading key `TAX`.
pub trait TaxRegionWriter: Send + Sync {
    /// Writes `region`; with `expected_version` the stored version must match, without it the region must not
    /// exist yet (409 `version_conflict` otherwise: a concurrent write won).
    fn put_tax_region(
        &self,
        region: &tax::TaxRegion,
        expected_version: Option<u64>,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<()>> + Send;
}

/// Reads a seller's shipping methods. IAM: `dynamodb:Query` and `dynamodb:GetItem` on the catalog table.
pub trait ShippingMethodReader: Send + Sync {
    /// Every method of `seller_id`, by method id.
    fn list_shipping_methods(
        &self,
        seller_id: &str,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Vec<shipping::ShippingMethod>>> + Send;
    /// One method of `seller_id` (`None` if absent or another seller's).
    fn get_shipping_method(
        &self,
        seller_id: &str,
        method_id: &commerce_domain::ids::ShippingMethodId,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Option<shipping::ShippingMethod>>> + Send;
}

/// Creates, replaces (optimistically, by version) and deletes shipping methods.
/// IAM: `dynamodb:PutItem`, `dynamodb:DeleteItem` on the catalog table.
pub trait ShippingMethodWriter: Send + Sync {
    /// Writes `method`; with `expected_version` the stored version must match (409 `version_conflict`),
    /// without it the method must not exist yet.
    fn put_shipping_method(
        &self,
        method: &shipping::ShippingMethod,
        expected_version: Option<u64>,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<()>> + Send;
    /// Deletes `method` if its stored version is still `method.version` (409 `version_conflict` otherwise).
    fn delete_shipping_method(
        &self,
        method: &shipping::ShippingMethod,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<()>> + Send;
}

/// What a carrier is asked to price: one parcel from a seller to an address.
#[derive(Debug, Clone, PartialEq)]
pub struct CarrierRateRequest {
    pub carrier: shipping::Carrier,
    pub service: String,
    pub seller_id: String,
    /// Where the parcel ships from: the warehouse nearest the destination, when there is one.
    pub origin: Option<commerce_domain::inventory::Location>,
    pub destination: commerce_domain::order::ShippingAddress,
    pub weight_grams: u64,
    /// The currency the rate must be in; a rate in another currency is refused.
    pub currency: commerce_domain::money::Currency,
}

/// A carrier's rate API, called at quote time only (never by checkout). An unreachable, slow or failing
/// carrier is `Transient`; a carrier that cannot serve the request (no such service to that address) answers
/// `Ok(None)`. IAM: none (HTTPS to the carrier; its key from Secrets Manager at start).
pub trait ShippingRateProvider: Send + Sync {
    fn rate(
        &self,
        request: &CarrierRateRequest,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Option<commerce_domain::money::Money>>> + Send;
}

/// Stores a cart's shipping quotes until they expire. IAM: `dynamodb:PutItem`, `dynamodb:GetItem` on the carts
/// table.
pub trait QuoteStore: Send + Sync {
    fn put_quote(
        &self,
        quote: &shipping::Quote,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<()>> + Send;
    /// The quote of `cart_id` named `quote_id` (`None` if absent, expired past its TTL, or another cart's).
    fn get_quote(
        &self,
        cart_id: &str,
        quote_id: &commerce_domain::ids::QuoteId,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Option<shipping::Quote>>> + Send;
}

// ---------------------------------------------------------------------------------------------------------
// Promotions (PromotionsTable)
// ---------------------------------------------------------------------------------------------------------

use commerce_domain::promotion;

/// A code as stored: the promotion it names, and for a single-use code the order that took it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRecord {
    pub code: String,
    pub promotion_id: String,
    pub single_use: bool,
    pub used_by: Option<String>,
}

/// Reads promotions, their codes and their counts. IAM: `dynamodb:GetItem`, `dynamodb:BatchGetItem`,
/// `dynamodb:Query` on the promotions table.
pub trait PromotionReader: Send + Sync {
    fn get_promotion(
        &self,
        promotion_id: &str,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Option<promotion::Promotion>>> + Send;
    /// The code, if any promotion has it.
    fn find_code(
        &self,
        code: &str,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Option<CodeRecord>>> + Send;
    /// The automatic promotions (no code) of the platform and of `sellers`, active or not.
    fn automatic_promotions(
        &self,
        sellers: &[String],
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Vec<promotion::Promotion>>> + Send;
    /// Used, held and left, exactly: every shard read consistently.
    fn usage(
        &self,
        promotion: &promotion::Promotion,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<promotion::Usage>> + Send;
    /// The shards that still have a use, for a hold to take from.
    fn shards_with_uses(
        &self,
        promotion: &commerce_domain::order::Redemption,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Vec<u32>>> + Send;
    /// How many uses (held or used) the customer has of the promotion.
    fn customer_uses(
        &self,
        promotion_id: &str,
        customer_key: &str,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<u32>> + Send;
}

/// Creates and changes promotions and their codes. IAM: `dynamodb:PutItem`, `dynamodb:UpdateItem`,
/// `dynamodb:Query`, `dynamodb:BatchGetItem` on the promotions table (transactions).
pub trait PromotionWriter: Send + Sync {
    /// The promotion with its counter shards and its code (409 `promotion_code_taken` if another promotion
    /// has it).
    fn create_promotion(
        &self,
        promotion: &promotion::Promotion,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<()>> + Send;
    /// Replaces `current` with `next` if the stored version is still `current.version` (409
    /// `version_conflict`); a changed usage limit moves the shards' uses left with it, refused (409
    /// `promotion_unavailable`... see the adapter) when fewer are left than it takes away.
    fn replace_promotion(
        &self,
        current: &promotion::Promotion,
        next: &promotion::Promotion,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<()>> + Send;
    /// A page of the promotions of `scope`, newest first.
    fn list_promotions(
        &self,
        scope: &promotion::Scope,
        limit: catalog::PageLimit,
        cursor: Option<&str>,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<catalog::Page<promotion::Promotion>>> + Send;
    /// Single-use codes of the promotion; a code another promotion already has is left out (the answer lists the
    /// codes stored).
    fn add_codes(
        &self,
        promotion_id: &str,
        codes: &[String],
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Vec<String>>> + Send;
}

/// How a hold of an order's promotion uses ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldOutcome {
    /// The uses are held (recorded on the order).
    Held,
    /// The order changed since it was read: read it again.
    OrderChanged,
    /// That shard of that promotion had no use left: try another shard.
    ShardEmpty { promotion_id: String, shard: u32 },
    /// The customer's limit is reached or the single-use code is taken.
    Unavailable { promotion_id: String, reason: &'static str },
}

/// Holds an order's promotion uses: appends `promotions_held` to the order in one transaction with the counts
/// it takes. IAM: `dynamodb:UpdateItem` on the orders and promotions tables (a transaction).
pub trait PromotionHolder: Send + Sync {
    fn hold_promotions(
        &self,
        order: &commerce_domain::order::Order,
        expected_version: u32,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<HoldOutcome>> + Send;
}

// ---------------------------------------------------------------------------------------------------------
// Reviews (ReviewsTable; the verified-purchase check reads the orders table)
// ---------------------------------------------------------------------------------------------------------

use commerce_domain::review;

/// Reads reviews and ratings. IAM: `dynamodb:GetItem`, `dynamodb:Query` on the reviews table.
pub trait ReviewReader: Send + Sync {
    fn get_review(
        &self,
        review_id: &str,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Option<review::Review>>> + Send;
    /// A page of the product's approved reviews in the query's order.
    fn list_reviews(
        &self,
        product_id: &str,
        query: &review::ReviewQuery,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<catalog::Page<review::Review>>> + Send;
    /// A page of the reviews waiting for moderation, oldest first.
    fn pending_reviews(
        &self,
        limit: u32,
        cursor: Option<&str>,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<catalog::Page<review::Review>>> + Send;
    /// The product's aggregate (zero counts when it has no approved review).
    fn rating(
        &self,
        product_id: &str,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<review::RatingCounts>> + Send;
}

/// A once-per-user mark that goes with a review's transition: written in the same transaction, refused when
/// the user already has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReviewClaim {
    Vote { user_id: String },
    Report { user_id: String },
}

/// Writes reviews with their product's aggregate, each change one transaction. IAM: `dynamodb:PutItem`,
/// `dynamodb:UpdateItem`, `dynamodb:DeleteItem` on the reviews table; creating a verified review also
/// `dynamodb:ConditionCheckItem` on the orders table.
pub trait ReviewWriter: Send + Sync {
    /// The review, its author's claim on the product (409 `review_exists` when the author has a review of
    /// it), its aggregate delta and, for a verified review, a check that `order_id` still shows the product
    /// delivered to the author (403 `not_a_verified_buyer` otherwise).
    fn create_review(
        &self,
        created: &review::Transition,
        order_id: Option<&str>,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<()>> + Send;
    /// Replaces `current` with the transition's review if the stored version is still `current.version`
    /// (409 `version_conflict`), with the aggregate delta and the claim (409 `already_voted` /
    /// `already_reported`).
    fn replace_review(
        &self,
        current: &review::Review,
        transition: &review::Transition,
        claim: Option<&ReviewClaim>,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<()>> + Send;
    /// Deletes `current` (at its version) with its author's claim, and takes `delta` off the aggregate.
    fn delete_review(
        &self,
        current: &review::Review,
        delta: &review::RatingDelta,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<()>> + Send;
}

/// Finds a customer's order with a delivered line of a product. IAM: `dynamodb:Query` on the orders table's
/// customer index.
pub trait PurchaseHistory: Send + Sync {
    fn delivered_order(
        &self,
        customer_id: &str,
        product_id: &str,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Option<String>>> + Send;
}

/// Keeps the search index's ratings in step with the aggregates: a lower `version` than the index holds is
/// ignored. IAM: `es:ESHttpPost` on the index.
pub trait RatingIndex: Send + Sync {
    fn set_ratings(
        &self,
        updates: &[search::RatingUpdate],
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<usize>> + Send;
}

// ---------------------------------------------------------------------------------------------------------
// Seller webhooks (WebhooksTable, the webhook deliveries queue, outbound HTTPS)
// ---------------------------------------------------------------------------------------------------------

use commerce_domain::seller_webhook::{Delivery, DeliveryView, Endpoint};

/// Sellers' webhook endpoints. Writes after creation are conditional on the endpoint's `version`
/// (409 `concurrent_update` when another write came first). IAM: `dynamodb:PutItem`, `dynamodb:Query`,
/// `dynamodb:GetItem`, `dynamodb:DeleteItem`, `dynamodb:UpdateItem` on the webhooks table.
pub trait WebhookEndpoints: Send + Sync {
    /// Creates the endpoint unless its seller already has
    /// [`commerce_domain::seller_webhook::MAX_ENDPOINTS_PER_SELLER`]: false then.
    fn create_endpoint(
        &self,
        endpoint: &Endpoint,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<bool>> + Send;
    fn seller_endpoints(
        &self,
        seller_id: &str,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Vec<Endpoint>>> + Send;
    fn endpoint(
        &self,
        seller_id: &str,
        webhook_id: &str,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Option<Endpoint>>> + Send;
    fn save_endpoint(
        &self,
        endpoint: &Endpoint,
        expected_version: u64,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<()>> + Send;
    /// False when there was none.
    fn delete_endpoint(
        &self,
        seller_id: &str,
        webhook_id: &str,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<bool>> + Send;
}

/// Deliveries of events to endpoints, one per (endpoint, event). IAM: `dynamodb:PutItem`, `dynamodb:GetItem`,
/// `dynamodb:Query` on the webhooks table.
pub trait WebhookDeliveries: Send + Sync {
    /// Creates the delivery unless one with its id exists for its endpoint: `None` when created, else the stored
    /// one.
    fn create_delivery(
        &self,
        delivery: &Delivery,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Option<Delivery>>> + Send;
    fn delivery(
        &self,
        webhook_id: &str,
        delivery_id: &str,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Option<Delivery>>> + Send;
    /// Writes it if its stored version is `expected_version` (else 409 `concurrent_update`).
    fn save_delivery(
        &self,
        delivery: &Delivery,
        expected_version: u64,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<()>> + Send;
    /// Newest first.
    fn list_deliveries(
        &self,
        webhook_id: &str,
        limit: commerce_domain::catalog::PageLimit,
        cursor: Option<&str>,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<commerce_domain::catalog::Page<DeliveryView>>> + Send;
}

/// A delivery to attempt: what the deliveries queue carries.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeliveryTask {
    pub seller_id: String,
    pub webhook_id: String,
    pub delivery_id: String,
}

/// The webhook deliveries queue. `delay` is capped at SQS's 15 minutes by the caller (a longer wait is
/// re-queued when it comes back early). IAM: `sqs:SendMessage` on that queue.
pub trait DeliveryQueue: Send + Sync {
    fn enqueue(
        &self,
        task: &DeliveryTask,
        delay: std::time::Duration,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<()>> + Send;
}

/// What one POST to an endpoint came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub status: Option<u16>,
    pub retry_after: Option<String>,
    /// Without a response: `timeout`, `connection_failed` or `address_refused`.
    pub error: Option<&'static str>,
    pub latency: std::time::Duration,
}

impl Sent {
    pub fn outcome(&self) -> commerce_domain::webhook::HttpOutcome<'_> {
        use commerce_domain::webhook::HttpOutcome;
        match (self.status, self.error) {
            (Some(code), _) => HttpOutcome::Status { code, retry_after: self.retry_after.as_deref() },
            (None, Some("timeout")) => HttpOutcome::Timeout,
            (None, Some("address_refused")) => HttpOutcome::Refused,
            _ => HttpOutcome::ConnectionFailed,
        }
    }
}

/// POSTs a signed body to an endpoint over the SSRF-safe client (addresses checked after DNS, no redirects).
/// No IAM permission: outbound HTTPS.
pub trait WebhookSender: Send + Sync {
    fn send(
        &self,
        url: &str,
        headers: &commerce_domain::webhook::WebhookHeaders,
        body: &[u8],
    ) -> impl std::future::Future<Output = Sent> + Send;
}

/// Refuses an endpoint URL we would never connect to: not https (unless the local stack allows loopback
/// http), or a host that is or resolves only to private, loopback, link-local or metadata addresses (422 naming
/// `url`). Connections are checked again at every attempt. No IAM permission.
pub trait UrlGuard: Send + Sync {
    fn check(&self, url: &str) -> impl std::future::Future<Output = commerce_domain::error::Result<()>> + Send;
}

// ---------------------------------------------------------------------------------------------------------------
// Email

/// Sends one rendered email (text and HTML) from the shop's address through its configuration set; answers
/// the provider's message id. IAM: `ses:SendEmail` on the identity and the configuration set.
pub trait MailSender: Send + Sync {
    fn send(
        &self,
        email: &commerce_domain::email::Email,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<String>> + Send;
}

/// The outcome of claiming an email in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailClaim {
    /// Ours to send: nobody sent it, and nobody is sending it now.
    Mine,
    /// Already sent.
    Sent,
    /// Another worker is sending it (its lease has not run out).
    Busy,
}

/// One entry per (event, recipient): claimed with a lease before sending, marked sent after, released when the
/// send failed. IAM: `dynamodb:PutItem`, `dynamodb:UpdateItem`, `dynamodb:DeleteItem` on the mail table.
pub trait MailLedger: Send + Sync {
    fn claim(
        &self,
        key: &str,
        now: chrono::DateTime<chrono::Utc>,
        lease: std::time::Duration,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<MailClaim>> + Send;
    fn mark_sent(
        &self,
        key: &str,
        message_id: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<()>> + Send;
    fn release(&self, key: &str) -> impl std::future::Future<Output = commerce_domain::error::Result<()>> + Send;
}

/// Addresses that get no mail (hard bounces, complaints). IAM: `dynamodb:GetItem` (check) or
/// `dynamodb:PutItem` (suppress) on the mail table.
pub trait Suppressions: Send + Sync {
    fn is_suppressed(
        &self,
        address: &str,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<bool>> + Send;
    fn suppress(
        &self,
        address: &str,
        reason: commerce_domain::email::SuppressionReason,
        now: chrono::DateTime<chrono::Utc>,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<()>> + Send;
}

/// A user's (shopper's or seller's) verified email address by user id. IAM: `cognito-idp:ListUsers` on the
/// user pool.
pub trait Contacts: Send + Sync {
    fn email_of(
        &self,
        user_id: &str,
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<Option<String>>> + Send;
}

/// The emails queue: events someone is to be emailed about. IAM: `sqs:SendMessage` on that queue.
pub trait MailQueue: Send + Sync {
    fn enqueue(
        &self,
        events: &[commerce_domain::email::MailEvent],
    ) -> impl std::future::Future<Output = commerce_domain::error::Result<()>> + Send;
}
