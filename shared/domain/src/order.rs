//! Orders: lines grouped per seller, an append-only event history (who, when, why), and the status derived
//! from that history. Every transition is checked here; an illegal one is a 409 `illegal_transition`.
//!
//! A seller's shipment is two events around the capture: `shipping_started` (recorded before the provider is
//! asked for money) and `shipped` (after the capture), or `shipping_aborted` when the provider refused the
//! capture. Cancellation is only legal while the order is `confirmed`, which no order with a shipment begun
//! is: since every change is one write conditional on the order's version, a cancellation and a shipment
//! exclude each other before either touches the payment.

use crate::error::ErrorCode;
use crate::error::{DomainError, Result};
use crate::money::{Currency, Money};
use crate::payment::{Payment, PaymentView};
use crate::pricing::{LineAmounts, ShippingLine, Totals};
use crate::promotion::{DiscountClass, Share};
use crate::tax::{RegionCode, TaxClass, TaxComponent, Taxed};
use crate::tracking::{self, Carrier, Parcel, TimelineEntry, TrackingSource, TrackingStatus, TrackingUpdate};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Most lines one order may hold.
pub const MAX_LINES: usize = 100;
/// Most units of one line: what one reservation line may hold. With `money::MAX_PRICE` and `MAX_LINES` it keeps
/// every total and count of an order far inside `i64` and `u32`.
pub use crate::inventory::reservation::MAX_LINE_QUANTITY;

/// Where an order ships to. `country` is ISO 3166-1 alpha-2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShippingAddress {
    pub name: String,
    pub line1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    pub city: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub postal_code: String,
    pub country: String,
}

impl ShippingAddress {
    /// Where stock should ship to: the country and, when it is a short code, the region (warehouses in the
    /// same region rank first, then the same country).
    pub fn destination(&self) -> crate::inventory::Location {
        let region = self.region.as_ref().map(|r| r.trim().to_uppercase()).filter(|r| (1..=64).contains(&r.len()));
        crate::inventory::Location { country: self.country.clone(), region, coordinates: None, postal_code: None }
    }

    /// Checks every field's presence and length, and the country's shape.
    pub fn validate(&self) -> Result<()> {
        let required = [
            ("shipping_address.name", &self.name, 200),
            ("shipping_address.line1", &self.line1, 200),
            ("shipping_address.city", &self.city, 100),
            ("shipping_address.postal_code", &self.postal_code, 20),
        ];
        for (field, value, max) in required {
            if value.trim().is_empty() {
                return Err(DomainError::validation(field, "is required"));
            }
            if value.chars().count() > max {
                return Err(DomainError::validation(field, format!("must be at most {max} characters")));
            }
        }
        for (field, value) in [("shipping_address.line2", &self.line2), ("shipping_address.region", &self.region)] {
            if value.as_ref().is_some_and(|v| v.chars().count() > 200) {
                return Err(DomainError::validation(field, "must be at most 200 characters"));
            }
        }
        let country = self.country.as_bytes();
        if country.len() != 2 || !country.iter().all(u8::is_ascii_uppercase) {
            return Err(DomainError::validation(
                "shipping_address.country",
                "must be an ISO 3166-1 alpha-2 code such as US",
            ));
        }
        Ok(())
    }
}

/// One priced line. Prices come from the catalog at checkout, never from the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub sku: String,
    pub product_id: String,
    pub seller_id: String,
    pub title: String,
    pub quantity: u32,
    pub unit_price: Money,
    pub line_total: Money,
    #[serde(default)]
    pub tax_class: TaxClass,
    /// The line's tax: added on top of `line_total` where prices exclude tax, contained in it where they
    /// include it. Frozen at checkout.
    pub tax: Money,
    /// The tax's components (a state's and a city's rate), summing to `tax`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taxes: Vec<TaxComponent>,
    /// The promotions' shares taken off the line before tax, frozen at checkout; they sum to at most
    /// `line_total`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discounts: Vec<Share>,
}

impl OrderLine {
    /// A line with its total computed from price and quantity.
    pub fn new(
        sku: impl Into<String>,
        product_id: impl Into<String>,
        seller_id: impl Into<String>,
        title: impl Into<String>,
        quantity: u32,
        unit_price: Money,
    ) -> Result<Self> {
        if quantity == 0 || quantity > MAX_LINE_QUANTITY {
            return Err(DomainError::validation("quantity", format!("must be within 1..={MAX_LINE_QUANTITY}")));
        }
        unit_price.validate_price("unit_price")?;
        Ok(Self {
            sku: sku.into(),
            product_id: product_id.into(),
            seller_id: seller_id.into(),
            title: title.into(),
            quantity,
            line_total: unit_price.checked_mul(quantity)?,
            unit_price,
            tax_class: TaxClass::standard(),
            tax: Money::zero(unit_price.currency),
            taxes: Vec::new(),
            discounts: Vec::new(),
        })
    }

    /// The promotions' shares on this line (tax is then computed on what is left).
    pub fn with_discounts(mut self, discounts: Vec<Share>) -> Self {
        self.discounts = discounts;
        self
    }

    /// What the promotions took off the line.
    pub fn discount(&self) -> i64 {
        self.discounts.iter().map(|d| d.amount).sum()
    }

    /// The line of `class` with its tax set.
    pub fn taxed(mut self, class: TaxClass, taxed: Taxed) -> Self {
        self.tax_class = class;
        self.tax = Money::new(taxed.tax, self.unit_price.currency);
        self.taxes = taxed.components;
        self
    }

    /// The line's amounts as the pricing engine adds them up.
    pub fn amounts(&self) -> LineAmounts {
        LineAmounts { amount: self.line_total.amount, discount: self.discount(), tax: self.tax.amount }
    }
}

/// What an order charges besides its lines: each seller part's shipping, and how tax applies (from the
/// region of the shipping address). Frozen at checkout.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charges {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shipping: Vec<ShippingLine>,
    #[serde(default)]
    pub prices_include_tax: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_region: Option<RegionCode>,
}

impl Charges {
    /// The shipping of `seller_id`'s part, if any.
    pub fn shipping_of(&self, seller_id: &str) -> Option<&ShippingLine> {
        self.shipping.iter().find(|s| s.seller_id == seller_id)
    }

    /// The totals of `lines` with these charges.
    pub fn totals<'a>(&self, lines: impl IntoIterator<Item = &'a OrderLine>, currency: Currency) -> Result<Totals> {
        let lines: Vec<&OrderLine> = lines.into_iter().collect();
        let amounts: Vec<LineAmounts> = lines.iter().map(|l| l.amounts()).collect();
        let sellers: BTreeSet<&str> = lines.iter().map(|l| l.seller_id.as_str()).collect();
        let shipping: Vec<&ShippingLine> =
            self.shipping.iter().filter(|s| sellers.contains(s.seller_id.as_str())).collect();
        crate::pricing::totals(currency, self.prices_include_tax, &amounts, &shipping)
    }

    /// Every seller part has at most one shipping line, every shipping line a part, one currency throughout.
    fn check(&self, lines: &[OrderLine], currency: Currency) -> Result<()> {
        let sellers: BTreeSet<&str> = lines.iter().map(|l| l.seller_id.as_str()).collect();
        let mut shipped = BTreeSet::new();
        for s in &self.shipping {
            if !sellers.contains(s.seller_id.as_str()) || !shipped.insert(s.seller_id.as_str()) {
                return Err(DomainError::validation(
                    "shipping",
                    format!("one shipping line per seller part ({})", s.seller_id),
                ));
            }
            if s.amount.currency != currency || s.tax.currency != currency || s.amount.amount < 0 || s.tax.amount < 0 {
                return Err(DomainError::validation("shipping", "must be in the order's currency and not negative"));
            }
        }
        for line in lines {
            if line.unit_price.currency != currency || line.tax.currency != currency {
                return Err(DomainError::Refused {
                    code: ErrorCode::CurrencyMismatch,
                    field: "cart_id".into(),
                    reason: "every line of an order must be in one currency".into(),
                });
            }
            if line.tax.amount < 0 {
                return Err(DomainError::validation("tax", "cannot be negative"));
            }
        }
        Ok(())
    }
}

/// Why a checkout failed. Stable snake_case names on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    OutOfStock,
    /// A promotion's last use went to another checkout (or the customer's limit was reached) before this one
    /// could hold it; nothing was authorized.
    PromotionUnavailable,
    PaymentDeclined,
    PaymentError,
    Expired,
    Internal,
}

impl FailureReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OutOfStock => "out_of_stock",
            Self::PromotionUnavailable => "promotion_unavailable",
            Self::PaymentDeclined => "payment_declined",
            Self::PaymentError => "payment_error",
            Self::Expired => "expired",
            Self::Internal => "internal",
        }
    }

    /// The reason for a saga step's error type (`OutOfStock`, `PaymentDeclined`, `Expired`, ...).
    pub fn from_error_type(error_type: &str) -> Self {
        match error_type {
            "OutOfStock" => Self::OutOfStock,
            "PromotionUnavailable" => Self::PromotionUnavailable,
            "PaymentDeclined" => Self::PaymentDeclined,
            "Expired" | "Gone" => Self::Expired,
            "Transient" | "PaymentError" | "States.Timeout" | "Sandbox.Timedout" => Self::PaymentError,
            _ => Self::Internal,
        }
    }
}

/// An order write made on a version that is no longer the stored one (409 `concurrent_update`): appending
/// events is optimistic, so the writer reloads the order and tries again.
pub fn concurrent_update() -> DomainError {
    DomainError::conflict(ErrorCode::ConcurrentUpdate, "the order changed meanwhile; reload and retry")
}

/// An order's status, always derived from its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    Confirmed,
    /// A seller's shipment has begun (its capture is under way) and none has completed yet.
    Shipping,
    PartiallyShipped,
    Shipped,
    Delivered,
    Cancelled,
    ReturnRequested,
    Returned,
    Refunded,
    Failed,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Confirmed => "confirmed",
            Self::Shipping => "shipping",
            Self::PartiallyShipped => "partially_shipped",
            Self::Shipped => "shipped",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
            Self::ReturnRequested => "return_requested",
            Self::Returned => "returned",
            Self::Refunded => "refunded",
            Self::Failed => "failed",
        }
    }

    /// No further transition can happen.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Cancelled | Self::Refunded | Self::Failed)
    }
}

/// Who caused an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    Shopper,
    Guest,
    Seller,
    Admin,
    System,
    /// A carrier, through its signed webhook (`id` is the carrier's name).
    Carrier,
}

/// Who caused an event: a kind and an id (user sub, guest email hash, or a system component name).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: String,
}

impl Actor {
    pub fn system(component: &str) -> Self {
        Self { kind: ActorKind::System, id: component.to_owned() }
    }

    pub fn seller(id: &str) -> Self {
        Self { kind: ActorKind::Seller, id: id.to_owned() }
    }

    pub fn carrier(carrier: Carrier) -> Self {
        Self { kind: ActorKind::Carrier, id: carrier.as_str().to_owned() }
    }

    pub fn shopper(id: &str) -> Self {
        Self { kind: ActorKind::Shopper, id: id.to_owned() }
    }
}

/// The most emailed links one guest order may have (one per confirmation email, and its retries).
pub const MAX_ORDER_LINKS: usize = 8;

/// What happened to an order. `Compensating`: the checkout saga (or the pending-order reaper) gave the order
/// up; from then on it is never confirmed, and it stays pending until its compensation marks it failed. It is
/// written before anything is released or voided, so one execution's compensation cannot undo what another
/// execution confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OrderEventKind {
    Placed,
    Confirmed {
        payment_id: String,
    },
    Compensating,
    Failed {
        failure: FailureReason,
    },
    Cancelled,
    /// A seller's shipment began: recorded before the capture, so no cancellation can follow it.
    ShippingStarted {
        seller_id: String,
        tracking_number: String,
        /// The carrier and its link (absent in shipments recorded before tracking: carrier `other`, no link).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        carrier: Option<Carrier>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tracking_url: Option<String>,
    },
    /// The provider refused the capture of a begun shipment: nothing was captured, the lines are unshipped again.
    ShippingAborted {
        seller_id: String,
    },
    Shipped {
        seller_id: String,
        tracking_number: String,
        captured: Money,
    },
    Delivered {
        seller_id: String,
    },
    /// An update of a shipped part's parcel, from the seller or the carrier (the event's actor).
    Tracked {
        seller_id: String,
        status: TrackingStatus,
        occurred_at: DateTime<Utc>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        location: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event_id: Option<String>,
    },
    ReturnRequested,
    Returned {
        seller_id: String,
        restocked: bool,
    },
    Refunded {
        seller_id: String,
        amount: Money,
    },
    /// Part of a shipped seller part given back: units of its lines and/or its shipping. Recorded before the
    /// provider is asked (under `key`, the provider idempotency key), so two refunds of the same units cannot
    /// both pass; `amount` and `tax` are the frozen lines' cumulative shares (see `Order::partial_refund`).
    PartlyRefunded {
        seller_id: String,
        lines: Vec<RefundLine>,
        #[serde(default)]
        shipping: bool,
        amount: Money,
        tax: Money,
        key: String,
    },
    /// The checkout took one use of each of the order's promotions (before the payment is authorized).
    PromotionsHeld {
        uses: Vec<HeldUse>,
    },
    /// The checkout failed: the held uses went back.
    PromotionsReleased,
    /// A link that opens a guest's order was emailed: another token for it, stored as its hash like the one
    /// the checkout answered with (see [`MAX_ORDER_LINKS`]).
    LinkIssued {
        token_hash: String,
    },
    /// The confirmed order was cancelled or fully returned: its uses went back (the promotions that say so).
    PromotionsRestored,
}

/// Units of one line given back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundLine {
    pub sku: String,
    pub quantity: u32,
}

/// A seller part's partial refunds so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct PartRefunds {
    /// Units given back per SKU.
    units: BTreeMap<String, u32>,
    shipping: bool,
    amount: i64,
    /// Per provider key: what it refunded (lines, shipping).
    keys: BTreeMap<String, (Vec<RefundLine>, bool)>,
}

impl OrderEventKind {
    /// A seller's shipment beginning with `parcel`. A named carrier's link is not stored: it is built from the
    /// number again when the history is read.
    pub fn shipping_started(seller_id: &str, parcel: &Parcel) -> Self {
        Self::ShippingStarted {
            seller_id: seller_id.to_owned(),
            tracking_number: parcel.tracking_number.clone(),
            carrier: Some(parcel.carrier),
            tracking_url: parcel.tracking_url.clone().filter(|_| parcel.carrier == Carrier::Other),
        }
    }
}

/// One recorded transition: append-only, numbered from 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEvent {
    pub seq: u32,
    pub at: DateTime<Utc>,
    pub actor: Actor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(flatten)]
    pub kind: OrderEventKind,
}

/// Who placed the order: a signed-in shopper (`user_id`) or a guest (email only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// The facts fixed when the order is placed; events never change them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderHeader {
    pub id: String,
    pub customer: Customer,
    pub cart_id: String,
    pub lines: Vec<OrderLine>,
    pub shipping_address: ShippingAddress,
    /// Shipping and how tax applied, frozen at checkout.
    #[serde(default)]
    pub charges: Charges,
    /// Derived from the lines and the charges when the order is placed or read.
    pub totals: Totals,
    pub created_at: DateTime<Utc>,
    /// The won flash-sale ticket the order bought its unit through (no reservation stands behind it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flash_ticket_id: Option<String>,
    /// The fingerprint of the checkout request that placed the order (its `Idempotency-Key` is the order id):
    /// a retry with the same key must carry the same request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_fingerprint: Option<String>,
    /// The SHA-256 of a guest order's token (`X-Order-Token`); the token itself is handed out once, never kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_token_hash: Option<String>,
    /// The promotions the order was priced with, each using one use (see [`Redemption`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub promotions: Vec<Redemption>,
}

/// A promotion an order uses: frozen at checkout with what its use must take (the counts it is held against)
/// and its amount (the sum of its shares on the lines and shipping).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redemption {
    pub promotion_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    pub name: String,
    pub class: DiscountClass,
    pub amount: Money,
    /// `code` is a single-use code: the use takes the code.
    #[serde(default)]
    pub single_use: bool,
    /// The promotion has a usage limit: the use takes one from its counter.
    #[serde(default)]
    pub limited: bool,
    /// The promotion's per-customer limit when the order was placed: the use counts against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_customer_limit: Option<u32>,
    /// Whether a cancelled or fully returned order gives the use back.
    #[serde(default)]
    pub restore_on_cancel: bool,
    /// The promotion's counter shards.
    pub shards: u32,
}

/// One use taken by [`OrderEventKind::PromotionsHeld`]: the promotion and the counter shard it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldUse {
    pub promotion_id: String,
    pub shard: u32,
}

/// A change to the promotions' counts that an appended event makes, to be written in the same transaction as
/// the event (so each happens exactly once per order, whatever retries or duplicate executions do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageChange {
    pub step: UsageStep,
    pub redemption: Redemption,
    pub shard: u32,
    /// The key the customer's uses are counted under (when the redemption counts per customer).
    pub customer_key: Option<String>,
    pub order_id: String,
}

/// What happens to one use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageStep {
    /// Held for a checkout: `remaining − 1` (conditional), `held + 1`, the customer's count + 1
    /// (conditional), the single-use code taken (conditional).
    Hold,
    /// The order is confirmed: `held − 1`, `used + 1`.
    Commit,
    /// The checkout failed: `held − 1`, `remaining + 1`, the customer's count − 1, the code freed.
    Release,
    /// A confirmed order cancelled or fully returned: `used − 1`, `remaining + 1`, the customer's count − 1,
    /// the code freed.
    Restore,
}

/// What a caller presents to read or cancel an order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderAccess {
    /// The signed-in caller's user id, if a valid bearer token came with the request.
    pub user_id: Option<String>,
    /// Whether that caller is an admin (admins act on any order).
    pub admin: bool,
    /// The `X-Order-Token` header, if any.
    pub order_token: Option<String>,
}

impl OrderAccess {
    /// Whether the access presents anything at all to prove a right to an order.
    pub fn is_empty(&self) -> bool {
        self.user_id.is_none() && self.order_token.is_none()
    }
}

/// A seller's part of an order: their lines, their shipping, and the totals (what the seller's capture takes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SellerPart {
    pub seller_id: String,
    pub lines: Vec<OrderLine>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping: Option<ShippingLine>,
    pub totals: Totals,
}

/// The state the events fold into.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Folded {
    placed: bool,
    /// The hashes of the emailed links' tokens.
    link_hashes: Vec<String>,
    confirmed_payment: Option<String>,
    compensating: bool,
    failure: Option<FailureReason>,
    cancelled: bool,
    /// Shipments begun and not yet shipped or aborted: seller -> tracking number.
    shipping: BTreeMap<String, String>,
    shipped: BTreeMap<String, (String, Money)>,
    /// Per seller whose shipment began or is done: the carrier and its link.
    parcels: BTreeMap<String, Parcel>,
    /// Tracking updates recorded, every seller together.
    tracking_updates: usize,
    delivered: BTreeSet<String>,
    return_requested: bool,
    returned: BTreeMap<String, bool>,
    refunded: BTreeMap<String, Money>,
    partly_refunded: BTreeMap<String, PartRefunds>,
    promotions_held: Option<Vec<HeldUse>>,
    promotions_released: bool,
    promotions_restored: bool,
}

/// An order: its header and its full event history. Status and payment facts are derived, never stored apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    header: OrderHeader,
    events: Vec<OrderEvent>,
    folded: Folded,
}

impl Order {
    /// Places a new order: lines non-empty, one currency, the totals computed here. It charges nothing but its
    /// lines until [`Order::with_charges`] adds shipping and tax.
    pub fn place(
        id: String,
        customer: Customer,
        cart_id: String,
        lines: Vec<OrderLine>,
        shipping_address: ShippingAddress,
        actor: Actor,
        at: DateTime<Utc>,
    ) -> Result<Self> {
        if lines.is_empty() {
            return Err(DomainError::validation("cart_id", "the cart is empty"));
        }
        if lines.len() > MAX_LINES {
            return Err(DomainError::validation("cart_id", format!("at most {MAX_LINES} lines per order")));
        }
        if customer.user_id.is_none() && customer.email.is_none() {
            return Err(DomainError::validation("email", "a guest checkout needs an email address"));
        }
        shipping_address.validate()?;
        let currency = lines[0].unit_price.currency;
        let charges = Charges::default();
        charges.check(&lines, currency)?;
        let totals = charges.totals(&lines, currency)?;
        let header = OrderHeader {
            id,
            customer,
            cart_id,
            lines,
            shipping_address,
            charges,
            totals,
            created_at: at,
            flash_ticket_id: None,
            request_fingerprint: None,
            order_token_hash: None,
            promotions: Vec::new(),
        };
        let mut order = Self { header, events: Vec::new(), folded: Folded::default() };
        order.record(OrderEventKind::Placed, actor, None, at)?;
        Ok(order)
    }

    /// The order with its shipping and tax charges (checked against its lines) and the totals they give; set
    /// before the order is first stored.
    pub fn with_charges(mut self, charges: Charges) -> Result<Self> {
        let currency = self.currency();
        charges.check(&self.header.lines, currency)?;
        self.header.totals = charges.totals(&self.header.lines, currency)?;
        self.header.charges = charges;
        Ok(self)
    }

    /// The order uses `promotions`: each one's amount must be the sum of its shares on the lines and shipping
    /// (already set by [`Order::with_charges`] and the lines), and every share must name one of them. Set before
    /// the order is first stored.
    pub fn with_promotions(mut self, promotions: Vec<Redemption>) -> Result<Self> {
        let currency = self.currency();
        let mut shares: BTreeMap<&str, i64> = BTreeMap::new();
        let line_shares = self.header.lines.iter().flat_map(|l| &l.discounts);
        for share in line_shares.chain(self.header.charges.shipping.iter().flat_map(|s| &s.discounts)) {
            *shares.entry(share.promotion_id.as_str()).or_default() += share.amount;
        }
        let mut seen = BTreeSet::new();
        for r in &promotions {
            let taken = shares.remove(r.promotion_id.as_str()).unwrap_or(0);
            if !seen.insert(r.promotion_id.as_str()) || r.amount.currency != currency || r.amount.amount != taken {
                return Err(DomainError::validation(
                    "promotions",
                    "each promotion once, its amount the sum of its shares",
                ));
            }
        }
        if !shares.is_empty() {
            return Err(DomainError::validation("promotions", "a discount names a promotion the order does not use"));
        }
        self.header.promotions = promotions;
        Ok(self)
    }

    /// Whether the order's promotions still have to be held (pending, not compensating, not yet held).
    pub fn promotions_to_hold(&self) -> bool {
        !self.header.promotions.is_empty()
            && self.folded.promotions_held.is_none()
            && self.status() == OrderStatus::Pending
            && !self.folded.compensating
    }

    /// Whether held uses must go back because the checkout failed.
    pub fn promotions_to_release(&self) -> bool {
        let f = &self.folded;
        f.promotions_held.is_some() && !f.promotions_released && f.confirmed_payment.is_none()
    }

    /// Whether a cancelled or fully returned order still has uses to give back.
    pub fn promotions_to_restore(&self) -> bool {
        let f = &self.folded;
        let ended = matches!(self.status(), OrderStatus::Cancelled | OrderStatus::Returned | OrderStatus::Refunded);
        ended
            && f.confirmed_payment.is_some()
            && f.promotions_held.is_some()
            && !f.promotions_restored
            && self.header.promotions.iter().any(|r| r.restore_on_cancel)
    }

    /// The count changes the events after `version` make, to be written with them (see [`UsageChange`]).
    pub fn usage_changes(&self, version: u32) -> Vec<UsageChange> {
        let Some(held) = &self.folded.promotions_held else {
            return Vec::new();
        };
        let customer_key = crate::promotion::customer_key(
            self.header.customer.user_id.as_deref(),
            self.header.customer.email.as_deref(),
        )
        .ok();
        let mut changes = Vec::new();
        for event in self.events_since(version) {
            let step = match &event.kind {
                OrderEventKind::PromotionsHeld { .. } => UsageStep::Hold,
                OrderEventKind::Confirmed { .. } => UsageStep::Commit,
                OrderEventKind::PromotionsReleased => UsageStep::Release,
                OrderEventKind::PromotionsRestored => UsageStep::Restore,
                _ => continue,
            };
            for (redemption, used) in self.header.promotions.iter().zip(held) {
                if step == UsageStep::Restore && !redemption.restore_on_cancel {
                    continue;
                }
                changes.push(UsageChange {
                    step,
                    redemption: redemption.clone(),
                    shard: used.shard,
                    customer_key: redemption.per_customer_limit.and(customer_key.clone()),
                    order_id: self.header.id.clone(),
                });
            }
        }
        changes
    }

    /// The order buys its unit through this won flash-sale ticket; set before the order is first stored.
    pub fn with_flash_ticket(mut self, ticket_id: impl Into<String>) -> Self {
        self.header.flash_ticket_id = Some(ticket_id.into());
        self
    }

    /// The order is placed by the checkout request with this fingerprint; set before it is first stored.
    pub fn with_request_fingerprint(mut self, fingerprint: impl Into<String>) -> Self {
        self.header.request_fingerprint = Some(fingerprint.into());
        self
    }

    /// Issues another token that opens a guest's order, for an emailed link: recorded as a `LinkIssued` event
    /// (its hash only); `None` for a signed-in customer's order, which opens by signing in, or once
    /// [`MAX_ORDER_LINKS`] were issued.
    pub fn issue_link(&mut self, actor: Actor, at: DateTime<Utc>) -> Option<String> {
        let (token, token_hash) = crate::token::new_token();
        self.record(OrderEventKind::LinkIssued { token_hash }, actor, None, at).ok()?;
        Some(token)
    }

    /// Issues a guest order's token, before the order is first stored: the order keeps only its hash, the
    /// token is returned to be handed out once.
    pub fn with_new_order_token(mut self) -> (Self, String) {
        let (token, hash) = crate::token::new_token();
        self.header.order_token_hash = Some(hash);
        (self, token)
    }

    /// Who acts on the order, if `access` proves a right to it: its signed-in owner (a shopper), an admin, or
    /// the holder of the order's token (a guest). Anyone else gets 404, never a hint that the order exists.
    pub fn authorize(&self, access: &OrderAccess) -> Result<Actor> {
        let owner = self.header.customer.user_id.as_deref();
        if let Some(user_id) = access.user_id.as_deref() {
            if owner == Some(user_id) {
                return Ok(Actor::shopper(user_id));
            }
            if access.admin {
                return Ok(Actor { kind: ActorKind::Admin, id: user_id.to_owned() });
            }
        }
        let holds_token = access.order_token.as_deref().is_some_and(|token| {
            self.header
                .order_token_hash
                .iter()
                .chain(&self.folded.link_hashes)
                .any(|hash| crate::token::token_matches(token, hash))
        });
        if holds_token {
            return Ok(Actor { kind: ActorKind::Guest, id: self.header.cart_id.clone() });
        }
        Err(DomainError::not_found("order"))
    }

    /// Rebuilds an order from storage, replaying and re-checking every event.
    pub fn from_history(header: OrderHeader, mut events: Vec<OrderEvent>) -> Result<Self> {
        events.sort_by_key(|e| e.seq);
        let mut order = Self { header, events: Vec::with_capacity(events.len()), folded: Folded::default() };
        for event in events {
            if event.seq as usize != order.events.len() + 1 {
                return Err(DomainError::unexpected(format!(
                    "order {} has a gap in its events at {}",
                    order.header.id, event.seq
                )));
            }
            order.folded = order.check(&event.kind).map_err(|e| {
                DomainError::unexpected(format!("order {} has an invalid stored event: {e}", order.header.id))
            })?;
            order.events.push(event);
        }
        Ok(order)
    }

    pub fn id(&self) -> &str {
        &self.header.id
    }

    pub fn header(&self) -> &OrderHeader {
        &self.header
    }

    pub fn events(&self) -> &[OrderEvent] {
        &self.events
    }

    /// What the shopper pays: the amount authorized, and the sum of the seller parts' captures.
    pub fn total(&self) -> Money {
        self.header.totals.total
    }

    pub fn totals(&self) -> &Totals {
        &self.header.totals
    }

    pub fn currency(&self) -> Currency {
        self.header.totals.total.currency
    }

    /// The payment the order was confirmed with.
    pub fn payment_id(&self) -> Option<&str> {
        self.folded.confirmed_payment.as_deref()
    }

    pub fn failure(&self) -> Option<FailureReason> {
        self.folded.failure
    }

    /// Whether the checkout gave the order up (`compensating` recorded): it can no longer be confirmed.
    pub fn compensating(&self) -> bool {
        self.folded.compensating
    }

    /// The number of the last event; the version writers compare against.
    pub fn version(&self) -> u32 {
        self.events.len() as u32
    }

    /// The status, derived from the events.
    pub fn status(&self) -> OrderStatus {
        let f = &self.folded;
        let sellers = self.seller_ids();
        if f.failure.is_some() {
            OrderStatus::Failed
        } else if f.cancelled {
            OrderStatus::Cancelled
        } else if f.return_requested {
            if sellers.iter().all(|s| f.refunded.contains_key(*s)) {
                OrderStatus::Refunded
            } else if sellers.iter().all(|s| f.returned.contains_key(*s)) {
                OrderStatus::Returned
            } else {
                OrderStatus::ReturnRequested
            }
        } else if !sellers.is_empty() && sellers.iter().all(|s| f.delivered.contains(*s)) {
            OrderStatus::Delivered
        } else if !sellers.is_empty() && sellers.iter().all(|s| f.shipped.contains_key(*s)) {
            OrderStatus::Shipped
        } else if !f.shipped.is_empty() {
            OrderStatus::PartiallyShipped
        } else if !f.shipping.is_empty() {
            OrderStatus::Shipping
        } else if f.confirmed_payment.is_some() {
            OrderStatus::Confirmed
        } else {
            OrderStatus::Pending
        }
    }

    /// The distinct sellers, in a stable order.
    pub fn seller_ids(&self) -> BTreeSet<&str> {
        self.header.lines.iter().map(|l| l.seller_id.as_str()).collect()
    }

    /// One seller's lines and subtotal, or `None` if the seller has no line in this order.
    pub fn seller_part(&self, seller_id: &str) -> Option<SellerPart> {
        let lines: Vec<OrderLine> = self.header.lines.iter().filter(|l| l.seller_id == seller_id).cloned().collect();
        lines.first()?;
        let totals = self.header.charges.totals(&lines, self.currency()).ok()?;
        Some(SellerPart {
            seller_id: seller_id.to_owned(),
            lines,
            shipping: self.header.charges.shipping_of(seller_id).cloned(),
            totals,
        })
    }

    /// Every seller's part.
    pub fn seller_parts(&self) -> Vec<SellerPart> {
        self.seller_ids().into_iter().filter_map(|s| self.seller_part(s)).collect()
    }

    /// Tracking number and captured amount of a seller's shipment, if shipped.
    pub fn shipment(&self, seller_id: &str) -> Option<(&str, Money)> {
        self.folded.shipped.get(seller_id).map(|(tracking, money)| (tracking.as_str(), *money))
    }

    /// The tracking number of a seller's shipment that has begun and is not shipped (nor aborted) yet.
    pub fn shipping(&self, seller_id: &str) -> Option<&str> {
        self.folded.shipping.get(seller_id).map(String::as_str)
    }

    /// Whether a seller's capture is the order's last one (the provider then releases any uncaptured rest):
    /// every other seller had shipped when this seller's shipment first began. The history fixes it, so a
    /// retried capture asks the provider exactly what its first attempt asked.
    pub fn is_last_capture(&self, seller_id: &str) -> bool {
        let began = self
            .events
            .iter()
            .position(|e| matches!(&e.kind, OrderEventKind::ShippingStarted { seller_id: s, .. } if s == seller_id))
            .unwrap_or(self.events.len());
        let before = &self.events[..began];
        self.seller_ids()
            .into_iter()
            .filter(|s| *s != seller_id)
            .all(|s| before.iter().any(|e| matches!(&e.kind, OrderEventKind::Shipped { seller_id: x, .. } if x == s)))
    }

    /// The carrier, tracking number and link of a seller's shipment, once it began.
    pub fn parcel(&self, seller_id: &str) -> Option<&Parcel> {
        self.folded.parcels.get(seller_id)
    }

    /// A shipped part's id in this order: `shp_` and the number of the event that shipped it (the history is
    /// append-only, so it never changes).
    pub fn shipment_id(&self, seller_id: &str) -> Option<String> {
        self.events
            .iter()
            .find(|e| matches!(&e.kind, OrderEventKind::Shipped { seller_id: s, .. } if s == seller_id))
            .map(|e| format!("shp_{}", e.seq))
    }

    /// The seller whose shipped part `shipment_id` names.
    pub fn shipment_seller(&self, shipment_id: &str) -> Option<&str> {
        let seq: u32 = shipment_id.strip_prefix("shp_")?.parse().ok()?;
        match &self.events.get((seq as usize).checked_sub(1)?)?.kind {
            OrderEventKind::Shipped { seller_id, .. } => Some(seller_id),
            _ => None,
        }
    }

    /// Records an update of a seller's shipped parcel (`update` already validated). The same update again
    /// (see [`TrackingUpdate::same_as`]) records nothing. A `delivered` update also delivers the part, when a
    /// delivery may still be recorded (not yet delivered, no return requested). Past
    /// [`tracking::MAX_UPDATES_PER_ORDER`] only delivered and exception updates are recorded.
    pub fn track(
        &mut self,
        seller_id: &str,
        update: TrackingUpdate,
        actor: Actor,
        at: DateTime<Utc>,
    ) -> Result<Tracked> {
        if !self.folded.shipped.contains_key(seller_id) {
            return Err(self.illegal("track a shipment of"));
        }
        if self.tracking_updates(seller_id).any(|known| known.same_as(&update)) {
            return Ok(Tracked::Duplicate);
        }
        if self.folded.tracking_updates >= tracking::MAX_UPDATES_PER_ORDER && !update.status.is_outcome() {
            return Ok(Tracked::Ignored);
        }
        let delivers = update.status == TrackingStatus::Delivered;
        let kind = OrderEventKind::Tracked {
            seller_id: seller_id.to_owned(),
            status: update.status,
            occurred_at: update.occurred_at,
            location: update.location,
            detail: update.detail,
            event_id: update.event_id,
        };
        self.record(kind, actor.clone(), None, at)?;
        let delivery = OrderEventKind::Delivered { seller_id: seller_id.to_owned() };
        let delivered = delivers && !self.is_delivered(seller_id) && self.check(&delivery).is_ok();
        if delivered {
            self.record(delivery, actor, Some("the parcel was delivered".into()), at)?;
        }
        Ok(Tracked::Recorded { delivered })
    }

    /// The updates recorded for a seller's parcel, oldest first.
    fn tracking_updates<'a>(&'a self, seller_id: &'a str) -> impl Iterator<Item = TrackingUpdate> + 'a {
        self.events.iter().filter_map(move |e| match &e.kind {
            OrderEventKind::Tracked { seller_id: s, status, occurred_at, location, detail, event_id }
                if s == seller_id =>
            {
                Some(TrackingUpdate {
                    status: *status,
                    occurred_at: *occurred_at,
                    location: location.clone(),
                    detail: detail.clone(),
                    event_id: event_id.clone(),
                })
            }
            _ => None,
        })
    }

    /// A shipped part's parcel and timeline: `label_created` when it shipped, every update, and the delivery
    /// when the seller recorded it without a delivered update; its status is the latest entry's.
    pub fn shipment_view(&self, seller_id: &str) -> Option<ShipmentView> {
        let (tracking_number, amount) = self.folded.shipped.get(seller_id)?;
        let parcel = self.folded.parcels.get(seller_id);
        let source = |actor: &Actor| match actor.kind {
            ActorKind::Carrier => TrackingSource::Carrier,
            _ => TrackingSource::Seller,
        };
        let mut timeline = Vec::new();
        // The latest reported entry (every entry but the label the shipment began with): (when, index).
        let mut latest: Option<(DateTime<Utc>, usize)> = None;
        let mut delivered_update = false;
        for event in &self.events {
            let entry = match &event.kind {
                OrderEventKind::Shipped { seller_id: s, .. } if s == seller_id => TimelineEntry {
                    status: TrackingStatus::LabelCreated,
                    occurred_at: event.at,
                    location: None,
                    detail: None,
                    source: source(&event.actor),
                },
                OrderEventKind::Tracked { seller_id: s, status, occurred_at, location, detail, .. }
                    if s == seller_id =>
                {
                    delivered_update |= *status == TrackingStatus::Delivered;
                    TimelineEntry {
                        status: *status,
                        occurred_at: *occurred_at,
                        location: location.clone(),
                        detail: detail.clone(),
                        source: source(&event.actor),
                    }
                }
                OrderEventKind::Delivered { seller_id: s } if s == seller_id && !delivered_update => TimelineEntry {
                    status: TrackingStatus::Delivered,
                    occurred_at: event.at,
                    location: None,
                    detail: None,
                    source: source(&event.actor),
                },
                _ => continue,
            };
            let reported = !matches!(event.kind, OrderEventKind::Shipped { .. });
            if reported && latest.is_none_or(|(when, _)| entry.occurred_at >= when) {
                latest = Some((entry.occurred_at, timeline.len()));
            }
            timeline.push(entry);
        }
        let status = latest.map_or(TrackingStatus::LabelCreated, |(_, i)| timeline[i].status);
        timeline.sort_by_key(|e| e.occurred_at);
        Some(ShipmentView {
            shipment_id: self.shipment_id(seller_id)?,
            seller_id: seller_id.to_owned(),
            carrier: parcel.map_or(Carrier::Other, |p| p.carrier),
            tracking_number: tracking_number.clone(),
            tracking_url: parcel.and_then(|p| p.tracking_url.clone()),
            status,
            amount: *amount,
            delivered: self.is_delivered(seller_id),
            timeline,
        })
    }

    pub fn is_delivered(&self, seller_id: &str) -> bool {
        self.folded.delivered.contains(seller_id)
    }

    /// The products of the lines delivered and not returned: what the customer may review as a verified
    /// buyer.
    pub fn delivered_products(&self) -> std::collections::BTreeSet<String> {
        self.header
            .lines
            .iter()
            .filter(|line| self.is_delivered(&line.seller_id) && self.returned(&line.seller_id).is_none())
            .map(|line| line.product_id.clone())
            .collect()
    }

    /// Whether the seller accepted the return, and if so whether the goods went back to stock.
    pub fn returned(&self, seller_id: &str) -> Option<bool> {
        self.folded.returned.get(seller_id).copied()
    }

    pub fn refunded(&self, seller_id: &str) -> Option<Money> {
        self.folded.refunded.get(seller_id).copied()
    }

    /// What the seller's capture still holds: captured, less the partial refunds recorded (zero before the
    /// shipment).
    pub fn refundable(&self, seller_id: &str) -> Money {
        let captured = self.folded.shipped.get(seller_id).map_or(0, |(_, m)| m.amount);
        let partly = self.folded.partly_refunded.get(seller_id).map_or(0, |p| p.amount);
        Money::new(captured - partly, self.currency())
    }

    /// The lines and shipping flag a partial refund recorded under provider key `key`, if any.
    pub fn partial_refund_under(&self, seller_id: &str, key: &str) -> Option<(&[RefundLine], bool)> {
        let (lines, shipping) = self.folded.partly_refunded.get(seller_id)?.keys.get(key)?;
        Some((lines.as_slice(), *shipping))
    }

    /// What giving back `lines` (and the part's shipping, with `shipping`) of the seller's shipped part refunds,
    /// and the tax in it. Each line gives its cumulative share of what the shopper paid for it (its amount,
    /// plus its tax where prices exclude tax) and of its tax: the share of the units refunded so far plus these,
    /// less the share of those refunded before, each rounded half up. Any sequence of partial refunds that ends
    /// with every unit (and the shipping) returns exactly what was charged, tax included, to the unit.
    pub fn partial_refund(&self, seller_id: &str, lines: &[RefundLine], shipping: bool) -> Result<(Money, Money)> {
        if !self.folded.shipped.contains_key(seller_id) || self.folded.refunded.contains_key(seller_id) {
            return Err(self.illegal("partly refund"));
        }
        if lines.is_empty() && !shipping {
            return Err(DomainError::validation("lines", "name at least one line, or the shipping"));
        }
        let part = self.seller_part(seller_id).ok_or_else(|| DomainError::not_found("order"))?;
        let done = self.folded.partly_refunded.get(seller_id).cloned().unwrap_or_default();
        let inclusive = self.header.charges.prices_include_tax;
        let (mut amount, mut tax) = (0i64, 0i64);
        let mut seen = BTreeSet::new();
        for (i, wanted) in lines.iter().enumerate() {
            let field = format!("lines[{i}]");
            let line = part.lines.iter().find(|l| l.sku == wanted.sku).ok_or_else(|| {
                DomainError::validation(format!("{field}.sku"), "is not a line of this seller's part")
            })?;
            if !seen.insert(wanted.sku.as_str()) {
                return Err(DomainError::validation(format!("{field}.sku"), "is named twice"));
            }
            let before = done.units.get(&line.sku).copied().unwrap_or(0);
            if wanted.quantity == 0 || wanted.quantity > line.quantity - before {
                return Err(DomainError::validation(
                    format!("{field}.quantity"),
                    format!("must be within 1..={} (units bought and not yet refunded)", line.quantity - before),
                ));
            }
            let paid = line.amounts().amount - line.amounts().discount + if inclusive { 0 } else { line.tax.amount };
            amount += crate::tax::cumulative_share(paid, line.quantity, before, wanted.quantity);
            tax += crate::tax::cumulative_share(line.tax.amount, line.quantity, before, wanted.quantity);
        }
        if shipping {
            let ship = part.shipping.as_ref().filter(|_| !done.shipping).ok_or_else(|| {
                DomainError::validation("shipping", "this part's shipping is already refunded, or there is none")
            })?;
            amount += ship.amount.amount - ship.discount() + if inclusive { 0 } else { ship.tax.amount };
            tax += ship.tax.amount;
        }
        if amount <= 0 {
            return Err(DomainError::validation("lines", "refund nothing: what they name was free"));
        }
        Ok((Money::new(amount, self.currency()), Money::new(tax, self.currency())))
    }

    /// Total captured so far over all shipments. Each capture is its seller part's total, so the sum never
    /// passes the order's total.
    pub fn captured_total(&self) -> Money {
        self.folded.shipped.values().fold(Money::zero(self.currency()), |sum, (_, m)| {
            Money::new(sum.amount.saturating_add(m.amount), sum.currency)
        })
    }

    /// The status one seller sees for their part.
    pub fn seller_status(&self, seller_id: &str) -> OrderStatus {
        let f = &self.folded;
        match self.status() {
            s @ (OrderStatus::Pending | OrderStatus::Failed | OrderStatus::Cancelled) => s,
            _ if f.refunded.contains_key(seller_id) => OrderStatus::Refunded,
            _ if f.returned.contains_key(seller_id) => OrderStatus::Returned,
            _ if f.return_requested => OrderStatus::ReturnRequested,
            _ if f.delivered.contains(seller_id) => OrderStatus::Delivered,
            _ if f.shipped.contains_key(seller_id) => OrderStatus::Shipped,
            _ if f.shipping.contains_key(seller_id) => OrderStatus::Shipping,
            _ => OrderStatus::Confirmed,
        }
    }

    /// Applies a transition if it is legal now, appending its event. Illegal ones are 409 `illegal_transition`.
    pub fn record(
        &mut self,
        kind: OrderEventKind,
        actor: Actor,
        reason: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<&OrderEvent> {
        let folded = self.check(&kind)?;
        self.folded = folded;
        let seq = self.version() + 1;
        self.events.push(OrderEvent { seq, at, actor, reason, kind });
        Ok(&self.events[self.events.len() - 1])
    }

    /// The events after `version`: what a writer must append.
    pub fn events_since(&self, version: u32) -> &[OrderEvent] {
        &self.events[(version as usize).min(self.events.len())..]
    }

    fn illegal(&self, what: &str) -> DomainError {
        DomainError::conflict(
            ErrorCode::IllegalTransition,
            format!("cannot {what} an order that is {}", self.status().as_str()),
        )
    }

    /// The seller's part, if the seller may ship it now with `tracking_number`.
    fn shippable(&self, seller_id: &str, tracking_number: &str) -> Result<SellerPart> {
        if !matches!(self.status(), OrderStatus::Confirmed | OrderStatus::Shipping | OrderStatus::PartiallyShipped) {
            return Err(self.illegal("ship"));
        }
        let part = self.seller_part(seller_id).ok_or_else(|| DomainError::not_found("order"))?;
        if self.folded.shipped.contains_key(seller_id) {
            return Err(DomainError::conflict(ErrorCode::AlreadyShipped, "these lines are already shipped"));
        }
        if tracking_number.trim().is_empty() || tracking_number.len() > 100 {
            return Err(DomainError::validation("tracking_number", "must be 1 to 100 characters"));
        }
        Ok(part)
    }

    /// The folded state after `kind`, or why `kind` is not allowed now.
    fn check(&self, kind: &OrderEventKind) -> Result<Folded> {
        let mut next = self.folded.clone();
        match kind {
            OrderEventKind::Placed => {
                if self.folded.placed {
                    return Err(self.illegal("place"));
                }
                next.placed = true;
            }
            _ if !self.folded.placed => return Err(self.illegal("change")),
            OrderEventKind::Confirmed { .. }
            | OrderEventKind::Compensating
            | OrderEventKind::Failed { .. }
            | OrderEventKind::Cancelled => self.check_settlement(kind, &mut next)?,
            OrderEventKind::ShippingStarted { .. }
            | OrderEventKind::ShippingAborted { .. }
            | OrderEventKind::Shipped { .. }
            | OrderEventKind::Delivered { .. }
            | OrderEventKind::Tracked { .. } => self.check_shipment(kind, &mut next)?,
            OrderEventKind::ReturnRequested
            | OrderEventKind::Returned { .. }
            | OrderEventKind::Refunded { .. }
            | OrderEventKind::PartlyRefunded { .. } => self.check_return(kind, &mut next)?,
            OrderEventKind::PromotionsHeld { .. }
            | OrderEventKind::PromotionsReleased
            | OrderEventKind::PromotionsRestored => self.check_promotions(kind, &mut next)?,
            OrderEventKind::LinkIssued { token_hash } => {
                if self.header.customer.user_id.is_some() || self.folded.link_hashes.len() >= MAX_ORDER_LINKS {
                    return Err(self.illegal("issue another link to"));
                }
                next.link_hashes.push(token_hash.clone());
            }
        }
        Ok(next)
    }

    /// The uses of the order's promotions: held once while pending, then released once if the checkout fails,
    /// or (confirmed) given back once if the order is cancelled or fully returned.
    fn check_promotions(&self, kind: &OrderEventKind, next: &mut Folded) -> Result<()> {
        let status = self.status();
        let f = &self.folded;
        match kind {
            OrderEventKind::PromotionsHeld { uses } => {
                let matches = uses.len() == self.header.promotions.len()
                    && uses
                        .iter()
                        .zip(&self.header.promotions)
                        .all(|(u, r)| u.promotion_id == r.promotion_id && u.shard < r.shards.max(1));
                if status != OrderStatus::Pending || f.compensating || f.promotions_held.is_some() || !matches {
                    return Err(self.illegal("hold the promotions of"));
                }
                next.promotions_held = Some(uses.clone());
            }
            OrderEventKind::PromotionsReleased => {
                let failing = f.compensating || f.failure.is_some();
                if f.promotions_held.is_none() || f.promotions_released || !failing || f.confirmed_payment.is_some() {
                    return Err(self.illegal("release the promotions of"));
                }
                next.promotions_released = true;
            }
            OrderEventKind::PromotionsRestored => {
                let ended = matches!(status, OrderStatus::Cancelled | OrderStatus::Returned | OrderStatus::Refunded);
                if f.promotions_held.is_none() || f.confirmed_payment.is_none() || f.promotions_restored || !ended {
                    return Err(self.illegal("give back the promotions of"));
                }
                next.promotions_restored = true;
            }
            _ => return Err(self.illegal("change")),
        }
        Ok(())
    }

    /// A pending order confirmed, compensated or failed; a confirmed one cancelled.
    fn check_settlement(&self, kind: &OrderEventKind, next: &mut Folded) -> Result<()> {
        let status = self.status();
        match kind {
            OrderEventKind::Confirmed { payment_id } => {
                if status != OrderStatus::Pending || self.folded.compensating {
                    return Err(self.illegal("confirm"));
                }
                if !self.header.promotions.is_empty() && self.folded.promotions_held.is_none() {
                    return Err(self.illegal("confirm (its promotions are not held)"));
                }
                next.confirmed_payment = Some(payment_id.clone());
            }
            OrderEventKind::Compensating => {
                if status != OrderStatus::Pending || self.folded.compensating {
                    return Err(self.illegal("compensate"));
                }
                next.compensating = true;
            }
            OrderEventKind::Failed { failure } => {
                if status != OrderStatus::Pending {
                    return Err(self.illegal("fail"));
                }
                next.failure = Some(*failure);
            }
            OrderEventKind::Cancelled => {
                if status != OrderStatus::Confirmed {
                    return Err(self.illegal("cancel"));
                }
                next.cancelled = true;
            }
            _ => return Err(self.illegal("change")),
        }
        Ok(())
    }

    /// A seller's lines shipped (begun, aborted, done) and delivered.
    fn check_shipment(&self, kind: &OrderEventKind, next: &mut Folded) -> Result<()> {
        let status = self.status();
        match kind {
            OrderEventKind::ShippingStarted { seller_id, tracking_number, carrier, tracking_url } => {
                self.shippable(seller_id, tracking_number)?;
                if let Some(started) = self.folded.shipping.get(seller_id) {
                    return Err(DomainError::conflict(
                        ErrorCode::ShipmentInProgress,
                        format!("the shipment of these lines with tracking number {started} is under way"),
                    ));
                }
                let parcel = Parcel::new(carrier.unwrap_or_default(), tracking_number, tracking_url.as_deref())?;
                next.shipping.insert(seller_id.clone(), tracking_number.clone());
                next.parcels.insert(seller_id.clone(), parcel);
            }
            OrderEventKind::ShippingAborted { seller_id } => {
                if next.shipping.remove(seller_id).is_none() {
                    return Err(self.illegal("abort a shipment of"));
                }
                next.parcels.remove(seller_id);
            }
            OrderEventKind::Shipped { seller_id, tracking_number, captured } => {
                let part = self.shippable(seller_id, tracking_number)?;
                if self.folded.shipping.get(seller_id).is_some_and(|started| started != tracking_number) {
                    return Err(DomainError::validation("tracking_number", "must be the one the shipment began with"));
                }
                if *captured != part.totals.total {
                    return Err(DomainError::validation("captured", "must equal the seller part's total"));
                }
                next.shipping.remove(seller_id);
                next.shipped.insert(seller_id.clone(), (tracking_number.clone(), *captured));
                next.parcels.entry(seller_id.clone()).or_insert_with(|| Parcel {
                    carrier: Carrier::Other,
                    tracking_number: tracking_number.clone(),
                    tracking_url: None,
                });
            }
            OrderEventKind::Tracked { seller_id, .. } => {
                if !self.folded.shipped.contains_key(seller_id) {
                    return Err(self.illegal("track a shipment of"));
                }
                next.tracking_updates += 1;
            }
            OrderEventKind::Delivered { seller_id } => {
                if !self.folded.shipped.contains_key(seller_id) || status.is_final() || self.folded.return_requested {
                    return Err(self.illegal("deliver"));
                }
                if !next.delivered.insert(seller_id.clone()) {
                    return Err(DomainError::conflict(
                        ErrorCode::AlreadyDelivered,
                        "these lines are already delivered",
                    ));
                }
            }
            _ => return Err(self.illegal("change")),
        }
        Ok(())
    }

    /// A delivered order's return: requested, approved per seller, refunded.
    fn check_return(&self, kind: &OrderEventKind, next: &mut Folded) -> Result<()> {
        let status = self.status();
        match kind {
            OrderEventKind::ReturnRequested => {
                if status != OrderStatus::Delivered {
                    return Err(self.illegal("request a return for"));
                }
                next.return_requested = true;
            }
            OrderEventKind::Returned { seller_id, restocked } => {
                if !matches!(status, OrderStatus::ReturnRequested | OrderStatus::Returned) {
                    return Err(self.illegal("accept a return for"));
                }
                if self.seller_part(seller_id).is_none() {
                    return Err(DomainError::not_found("order"));
                }
                if self.folded.returned.contains_key(seller_id) {
                    return Err(DomainError::conflict(ErrorCode::AlreadyReturned, "this return is already approved"));
                }
                next.returned.insert(seller_id.clone(), *restocked);
            }
            OrderEventKind::Refunded { seller_id, amount } => {
                if !self.folded.returned.contains_key(seller_id) || self.folded.refunded.contains_key(seller_id) {
                    return Err(self.illegal("refund"));
                }
                let rest = self.refundable(seller_id);
                let fits = amount.currency == self.currency() && amount.amount <= rest.amount;
                if !fits || (amount.amount <= 0 && rest.amount > 0) || amount.amount < 0 {
                    return Err(DomainError::validation(
                        "amount",
                        "must be positive and at most what was captured and not yet refunded",
                    ));
                }
                next.refunded.insert(seller_id.clone(), *amount);
            }
            OrderEventKind::PartlyRefunded { seller_id, lines, shipping, amount, tax, key } => {
                let (a, t) = self.partial_refund(seller_id, lines, *shipping)?;
                if (a, t) != (*amount, *tax) {
                    return Err(DomainError::validation("amount", "must be the lines' share of what was charged"));
                }
                let part = next.partly_refunded.entry(seller_id.clone()).or_default();
                if part.keys.insert(key.clone(), (lines.clone(), *shipping)).is_some() {
                    return Err(self.illegal("record a second time a refund of"));
                }
                for line in lines {
                    *part.units.entry(line.sku.clone()).or_default() += line.quantity;
                }
                part.shipping |= *shipping;
                part.amount += amount.amount;
            }
            _ => return Err(self.illegal("change")),
        }
        Ok(())
    }
}

/// The order as its owner sees it.
#[derive(Debug, Clone, Serialize)]
pub struct OrderView<'a> {
    pub order_id: &'a str,
    pub status: OrderStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<FailureReason>,
    pub lines: &'a [OrderLine],
    /// `subtotal`, `discount_total`, `shipping_total`, `tax_total` and `total` (what was authorized).
    #[serde(flatten)]
    pub totals: Totals,
    pub prices_include_tax: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tax_region: Option<&'a RegionCode>,
    /// Per seller: its shipping and its totals (what its shipment captures).
    pub parts: Vec<PartView>,
    /// The promotions applied: each one's code, name, class and what it took off in all.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub promotions: Vec<crate::promotion::Applied>,
    pub shipping_address: &'a ShippingAddress,
    pub shipments: Vec<ShipmentView>,
    pub created_at: DateTime<Utc>,
    /// The history, less the emailed links' tokens (their hashes are nobody's business).
    pub events: Vec<&'a OrderEvent>,
    /// The payment: null while there is none (a pending order, a declined card).
    pub payment: Option<PaymentView>,
}

/// A seller's part as the order's owner sees it.
#[derive(Debug, Clone, Serialize)]
pub struct PartView {
    pub seller_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shipping: Option<ShippingLine>,
    #[serde(flatten)]
    pub totals: Totals,
}

/// A seller's shipment as shoppers and sellers see it: the parcel, what its capture took, whether the part
/// is delivered, and the timeline (oldest first) whose latest entry is `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentView {
    pub shipment_id: String,
    pub seller_id: String,
    pub carrier: Carrier,
    pub tracking_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_url: Option<String>,
    pub status: TrackingStatus,
    pub amount: Money,
    pub delivered: bool,
    pub timeline: Vec<TimelineEntry>,
}

/// What [`Order::track`] did with an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Tracked {
    /// Recorded; `delivered`: it delivered the part too.
    Recorded { delivered: bool },
    /// The same update was recorded before: nothing changed.
    Duplicate,
    /// The order holds the most updates it keeps and this one is not an outcome: not recorded.
    Ignored,
}

/// One seller's view of an order: only their lines.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SellerOrderView {
    pub order_id: String,
    pub status: OrderStatus,
    pub lines: Vec<OrderLine>,
    /// The part's `subtotal`, `discount_total`, `shipping_total`, `tax_total` and `total` (its capture).
    #[serde(flatten)]
    pub totals: Totals,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping: Option<ShippingLine>,
    pub shipping_address: ShippingAddress,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_number: Option<String>,
    /// The part's shipment once shipped: parcel, status and timeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipment: Option<ShipmentView>,
    pub created_at: DateTime<Utc>,
}

impl Order {
    /// The payment as its owner sees it: `recorded`, the provider's last report we stored for this order, or
    /// before any report the authorization the order was confirmed with (for the order's total).
    pub fn payment_view(&self, recorded: Option<&Payment>) -> Option<PaymentView> {
        if let Some(payment) = recorded.filter(|p| p.order_id == self.header.id) {
            return Some(payment.into());
        }
        let payment_id = self.payment_id()?;
        Some((&Payment::authorized(payment_id.to_owned(), self.header.id.clone(), self.header.totals.total)).into())
    }

    /// The owner's view, with the payment (see [`Order::payment_view`]).
    pub fn view(&self, payment: Option<&Payment>) -> OrderView<'_> {
        OrderView {
            order_id: &self.header.id,
            status: self.status(),
            failure_reason: self.failure(),
            lines: &self.header.lines,
            totals: self.header.totals,
            prices_include_tax: self.header.charges.prices_include_tax,
            tax_region: self.header.charges.tax_region.as_ref(),
            parts: self
                .seller_parts()
                .into_iter()
                .map(|p| PartView { seller_id: p.seller_id, shipping: p.shipping, totals: p.totals })
                .collect(),
            promotions: self
                .header
                .promotions
                .iter()
                .map(|r| crate::promotion::Applied {
                    promotion_id: r.promotion_id.clone(),
                    code: r.code.clone(),
                    name: r.name.clone(),
                    class: r.class,
                    amount: r.amount.amount,
                })
                .collect(),
            shipping_address: &self.header.shipping_address,
            shipments: self.folded.shipped.keys().filter_map(|seller| self.shipment_view(seller)).collect(),
            created_at: self.header.created_at,
            events: self.events.iter().filter(|e| !matches!(e.kind, OrderEventKind::LinkIssued { .. })).collect(),
            payment: self.payment_view(payment),
        }
    }

    /// A seller's view, or `None` if the seller has no lines here.
    pub fn seller_view(&self, seller_id: &str) -> Option<SellerOrderView> {
        let part = self.seller_part(seller_id)?;
        Some(SellerOrderView {
            order_id: self.header.id.clone(),
            status: self.seller_status(seller_id),
            lines: part.lines,
            totals: part.totals,
            shipping: part.shipping,
            shipping_address: self.header.shipping_address.clone(),
            tracking_number: self.shipment(seller_id).map(|(t, _)| t.to_owned()),
            shipment: self.shipment_view(seller_id),
            created_at: self.header.created_at,
        })
    }
}

/// One line of a shopper's order history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSummary {
    pub order_id: String,
    pub status: OrderStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<FailureReason>,
    pub total: Money,
    pub item_count: u32,
    pub created_at: DateTime<Utc>,
}

impl Order {
    /// The history line for this order.
    pub fn summary(&self) -> OrderSummary {
        OrderSummary {
            order_id: self.header.id.clone(),
            status: self.status(),
            failure_reason: self.failure(),
            total: self.header.totals.total,
            item_count: self.header.lines.iter().fold(0, |n, l| n.saturating_add(l.quantity)),
            created_at: self.header.created_at,
        }
    }
}

/// What happened, for notifications and analytics: sent through the order events queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    OrderPlaced,
    OrderShipped,
    /// A seller's part was delivered (by the seller's word or the carrier's).
    OrderDelivered,
    /// The shopper asked to return the order.
    ReturnRequested,
    /// A seller took its part back (the refund follows as its own notification).
    ReturnApproved,
    OrderRefunded,
    OrderCancelled,
    /// The checkout could not take the payment; the order failed and nothing was charged.
    PaymentFailed,
}

/// An order notification. `notification_id` is stable per (order, event) so redeliveries dedupe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderNotification {
    pub notification_id: String,
    pub kind: NotificationKind,
    pub order_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seller_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Money>,
    pub at: DateTime<Utc>,
}

impl OrderNotification {
    /// A notification about `order`'s event number `seq`.
    pub fn new(
        kind: NotificationKind,
        order: &Order,
        seq: u32,
        seller_id: Option<String>,
        amount: Option<Money>,
    ) -> Self {
        let at = order.events.iter().find(|e| e.seq == seq).map_or(order.header.created_at, |e| e.at);
        Self {
            notification_id: format!("{}-{seq}", order.header.id),
            kind,
            order_id: order.header.id.clone(),
            user_id: order.header.customer.user_id.clone(),
            seller_id,
            amount,
            at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn usd(amount: i64) -> Money {
        Money::new(amount, Currency::USD)
    }

    fn address() -> ShippingAddress {
        ShippingAddress {
            name: "Ada Lovelace".into(),
            line1: "1 Main St".into(),
            line2: None,
            city: "Springfield".into(),
            region: Some("IL".into()),
            postal_code: "62701".into(),
            country: "US".into(),
        }
    }

    fn two_seller_order() -> Order {
        let lines = vec![
            OrderLine::new("sku-a", "prd_a", "seller-1", "A", 2, usd(1000)).unwrap(),
            OrderLine::new("sku-b", "prd_b", "seller-2", "B", 1, usd(550)).unwrap(),
            OrderLine::new("sku-c", "prd_c", "seller-1", "C", 3, usd(100)).unwrap(),
        ];
        let customer = Customer { user_id: Some("u1".into()), email: None };
        Order::place("ord_1".into(), customer, "crt_1".into(), lines, address(), Actor::shopper("u1"), Utc::now())
            .unwrap()
    }

    /// The two-seller order with one promotion: 300 off seller-1's first line and 50 off seller-2's, limited,
    /// one per customer, given back on cancel.
    fn promoted_order() -> Order {
        let share = |amount| vec![Share { promotion_id: "prm_1".into(), amount }];
        let mut lines = two_seller_order().header.lines.clone();
        lines[0] = lines[0].clone().with_discounts(share(300));
        lines[1] = lines[1].clone().with_discounts(share(50));
        let redemption = Redemption {
            promotion_id: "prm_1".into(),
            code: Some("SAVE".into()),
            name: "Save".into(),
            class: DiscountClass::Order,
            amount: usd(350),
            single_use: false,
            limited: true,
            per_customer_limit: Some(1),
            restore_on_cancel: true,
            shards: 2,
        };
        let customer = Customer { user_id: Some("u1".into()), email: None };
        Order::place("ord_p".into(), customer, "crt_1".into(), lines, address(), Actor::shopper("u1"), Utc::now())
            .unwrap()
            .with_promotions(vec![redemption])
            .unwrap()
    }

    fn held(shard: u32) -> OrderEventKind {
        OrderEventKind::PromotionsHeld { uses: vec![HeldUse { promotion_id: "prm_1".into(), shard }] }
    }

    fn steps(order: &Order, since: u32) -> Vec<UsageStep> {
        order.usage_changes(since).iter().map(|c| c.step).collect()
    }

    #[test]
    fn a_promotion_is_held_before_confirmation_committed_with_it_and_given_back_once_on_cancel() {
        let mut order = promoted_order();
        assert_eq!(order.header().totals.discount_total, usd(350));
        assert_eq!(order.seller_part("seller-1").unwrap().totals.discount_total, usd(300), "each part its share");
        let at = Utc::now();
        let confirmed = OrderEventKind::Confirmed { payment_id: "pi".into() };
        assert!(
            order.clone().record(confirmed.clone(), Actor::system("checkout"), None, at).is_err(),
            "not before the hold"
        );
        assert!(order.promotions_to_hold());
        assert!(
            order.clone().record(held(2), Actor::system("promotions"), None, at).is_err(),
            "a shard it does not have"
        );
        order.record(held(1), Actor::system("promotions"), None, at).unwrap();
        assert!(order.clone().record(held(0), Actor::system("promotions"), None, at).is_err(), "held once");
        assert_eq!(steps(&order, 1), [UsageStep::Hold]);
        let change = &order.usage_changes(1)[0];
        assert_eq!((change.shard, change.customer_key.as_deref()), (1, Some("user#u1")));
        order.record(confirmed, Actor::system("checkout"), None, at).unwrap();
        assert_eq!(steps(&order, 2), [UsageStep::Commit]);
        assert!(!order.promotions_to_release(), "a confirmed order's use is not released");
        assert!(!order.promotions_to_restore());
        order.record(OrderEventKind::Cancelled, Actor::shopper("u1"), None, at).unwrap();
        assert!(order.promotions_to_restore());
        order.record(OrderEventKind::PromotionsRestored, Actor::system("promotions"), None, at).unwrap();
        assert_eq!(steps(&order, 4), [UsageStep::Restore]);
        assert!(!order.promotions_to_restore());
        let mut copy = order.clone();
        let again = copy.record(OrderEventKind::PromotionsRestored, Actor::system("promotions"), None, at).map(|_| ());
        assert!(again.is_err(), "given back once");
    }

    #[test]
    fn a_failed_checkout_releases_its_held_use_once_and_a_plain_order_moves_no_count() {
        let mut order = promoted_order();
        let at = Utc::now();
        let release = OrderEventKind::PromotionsReleased;
        assert!(order.clone().record(release.clone(), Actor::system("promotions"), None, at).is_err(), "nothing held");
        order.record(held(0), Actor::system("promotions"), None, at).unwrap();
        assert!(
            order.clone().record(release.clone(), Actor::system("promotions"), None, at).is_err(),
            "not while it may confirm"
        );
        order.record(OrderEventKind::Compensating, Actor::system("checkout"), None, at).unwrap();
        assert!(order.promotions_to_release());
        order.record(release.clone(), Actor::system("promotions"), None, at).unwrap();
        assert!(order.clone().record(release, Actor::system("promotions"), None, at).is_err(), "released once");
        assert_eq!(steps(&order, 0), [UsageStep::Hold, UsageStep::Release]);
        let mut plain = two_seller_order();
        assert!(!plain.promotions_to_hold());
        assert!(plain.clone().record(held(0), Actor::system("promotions"), None, at).is_err());
        confirm(&mut plain);
        assert!(plain.usage_changes(0).is_empty());
    }

    #[test]
    fn redemptions_must_be_the_sum_of_their_shares() {
        let mut lines = two_seller_order().header.lines.clone();
        lines[0] = lines[0].clone().with_discounts(vec![Share { promotion_id: "prm_1".into(), amount: 300 }]);
        let place = || {
            let customer = Customer { user_id: Some("u1".into()), email: None };
            Order::place(
                "ord_q".into(),
                customer,
                "crt_1".into(),
                lines.clone(),
                address(),
                Actor::shopper("u1"),
                Utc::now(),
            )
            .unwrap()
        };
        let mut r = promoted_order().header.promotions[0].clone();
        assert!(place().with_promotions(vec![r.clone()]).is_err(), "350 claimed, 300 shared");
        r.amount = usd(300);
        assert!(place().with_promotions(vec![r.clone()]).is_ok());
        assert!(place().with_promotions(vec![]).is_err(), "a share of a promotion the order does not use");
        assert!(place().with_promotions(vec![r.clone(), r]).is_err(), "a promotion twice");
    }

    fn confirm(order: &mut Order) {
        order
            .record(OrderEventKind::Confirmed { payment_id: "pi_1".into() }, Actor::system("saga"), None, Utc::now())
            .unwrap();
    }

    fn ship(order: &mut Order, seller: &str) -> Result<()> {
        let captured = order.seller_part(seller).unwrap().totals.total;
        order
            .record(
                OrderEventKind::Shipped { seller_id: seller.into(), tracking_number: "1Z999".into(), captured },
                Actor::seller(seller),
                None,
                Utc::now(),
            )
            .map(|_| ())
    }

    /// A confirmed one-seller order of `lines` (price, quantity, tax) with a shipping line of (amount, tax),
    /// priced inclusive or exclusive, shipped.
    fn shipped_priced(lines: &[(i64, u32, i64)], shipping: (i64, i64), inclusive: bool) -> Order {
        use crate::ids::ShippingMethodId;
        use crate::pricing::ShippingLine;
        use crate::tax::{TaxClass, Taxed};
        let lines: Vec<OrderLine> = lines
            .iter()
            .enumerate()
            .map(|(i, (price, qty, tax))| {
                let taxed = Taxed { net: 0, tax: *tax, gross: 0, components: Vec::new() };
                OrderLine::new(format!("SKU-{i}"), "prd_a", "seller-1", "A", *qty, usd(*price))
                    .unwrap()
                    .taxed(TaxClass::standard(), taxed)
            })
            .collect();
        let charges = Charges {
            shipping: vec![ShippingLine {
                seller_id: "seller-1".into(),
                method_id: ShippingMethodId::parse("shm_1").unwrap(),
                name: "Std".into(),
                amount: usd(shipping.0),
                tax: usd(shipping.1),
                tax_class: TaxClass::standard(),
                min_days: 1,
                max_days: 2,
                taxes: Vec::new(),
                discounts: Vec::new(),
            }],
            prices_include_tax: inclusive,
            tax_region: None,
        };
        let customer = Customer { user_id: Some("u1".into()), email: None };
        let mut order =
            Order::place("ord_1".into(), customer, "crt_1".into(), lines, address(), Actor::shopper("u1"), Utc::now())
                .unwrap()
                .with_charges(charges)
                .unwrap();
        confirm(&mut order);
        ship(&mut order, "seller-1").unwrap();
        order
    }

    fn refund_part(order: &mut Order, lines: Vec<RefundLine>, shipping: bool, key: &str) -> Result<(Money, Money)> {
        let (amount, tax) = order.partial_refund("seller-1", &lines, shipping)?;
        let kind = OrderEventKind::PartlyRefunded {
            seller_id: "seller-1".into(),
            lines,
            shipping,
            amount,
            tax,
            key: key.into(),
        };
        order.record(kind, Actor::seller("seller-1"), None, Utc::now())?;
        Ok((amount, tax))
    }

    fn units(sku: &str, quantity: u32) -> Vec<RefundLine> {
        vec![RefundLine { sku: sku.into(), quantity }]
    }

    #[test]
    fn a_partial_refund_gives_back_each_units_share_and_refuses_more_than_was_bought() {
        // 3 units at 10.00 with 2.15 tax on top (exclusive): 3215 paid for the line; shipping 5.00 + 0.36.
        let mut order = shipped_priced(&[(1000, 3, 215)], (500, 36), false);
        let (a, t) = refund_part(&mut order, units("SKU-0", 1), false, "k1").unwrap();
        assert_eq!((a.amount, t.amount), (1072, 72)); // 3215 / 3 = 1071.67 -> 1072; 215 / 3 = 71.67 -> 72
        let (a, t) = refund_part(&mut order, units("SKU-0", 1), false, "k2").unwrap();
        assert_eq!((a.amount, t.amount), (1071, 71)); // 2143 - 1072; 143 - 72
        let err = order.partial_refund("seller-1", &units("SKU-0", 2), false).unwrap_err();
        assert!(matches!(&err, DomainError::Validation { field, .. } if field == "lines[0].quantity"), "{err:?}");
        for bad in [units("SKU-9", 1), units("SKU-0", 0)] {
            assert!(order.partial_refund("seller-1", &bad, false).is_err());
        }
        let twice = vec![RefundLine { sku: "SKU-0".into(), quantity: 1 }; 2];
        assert!(order.partial_refund("seller-1", &twice, false).is_err());
        // The same key cannot be recorded twice.
        assert!(refund_part(&mut order, units("SKU-0", 1), false, "k2").is_err());
        let (a, _) = refund_part(&mut order, units("SKU-0", 1), true, "k3").unwrap();
        assert_eq!(a.amount, 1072 + 536);
        assert_eq!(order.refundable("seller-1").amount, 0);
        assert!(order.partial_refund("seller-1", &[], true).is_err(), "the shipping is refunded once");
    }

    #[test]
    fn a_return_after_partial_refunds_refunds_only_the_rest() {
        let mut order = shipped_priced(&[(1999, 2, 0), (500, 1, 0)], (0, 0), true);
        refund_part(&mut order, units("SKU-0", 1), false, "k1").unwrap();
        let rest = order.refundable("seller-1");
        assert_eq!(rest.amount, 1999 + 500);
        order
            .record(
                OrderEventKind::Delivered { seller_id: "seller-1".into() },
                Actor::seller("seller-1"),
                None,
                Utc::now(),
            )
            .unwrap();
        order.record(OrderEventKind::ReturnRequested, Actor::shopper("u1"), None, Utc::now()).unwrap();
        order
            .record(
                OrderEventKind::Returned { seller_id: "seller-1".into(), restocked: true },
                Actor::seller("seller-1"),
                None,
                Utc::now(),
            )
            .unwrap();
        let too_much = OrderEventKind::Refunded { seller_id: "seller-1".into(), amount: usd(rest.amount + 1) };
        assert!(order.record(too_much, Actor::seller("seller-1"), None, Utc::now()).is_err());
        let exact = OrderEventKind::Refunded { seller_id: "seller-1".into(), amount: rest };
        order.record(exact, Actor::seller("seller-1"), None, Utc::now()).unwrap();
        assert!(order.partial_refund("seller-1", &units("SKU-0", 1), false).is_err(), "nothing after the full refund");
    }

    #[test]
    fn nothing_is_refunded_before_the_part_shipped() {
        let mut order = two_seller_order();
        confirm(&mut order);
        assert!(order.partial_refund("seller-1", &units("sku-a", 1), false).is_err());
    }

    fn code(err: &DomainError) -> &'static str {
        match err {
            DomainError::Conflict { code, .. } => code.as_str(),
            _ => "other",
        }
    }

    #[test]
    fn a_line_quantity_is_bounded_so_counts_and_totals_never_overflow() {
        use crate::inventory::reservation::MAX_LINE_QUANTITY;
        use crate::money::MAX_PRICE;
        for quantity in [MAX_LINE_QUANTITY + 1, u32::MAX] {
            let err = OrderLine::new("sku-a", "prd_a", "seller-1", "A", quantity, usd(1)).unwrap_err();
            assert!(matches!(&err, DomainError::Validation { field, .. } if field == "quantity"), "{err:?}");
        }
        let lines = (0..MAX_LINES)
            .map(|i| OrderLine::new(format!("sku-{i}"), "prd_a", "seller-1", "A", MAX_LINE_QUANTITY, usd(MAX_PRICE)))
            .collect::<Result<Vec<_>>>()
            .unwrap();
        let order = Order::place(
            "ord_1".into(),
            Customer { user_id: Some("u1".into()), email: None },
            "cart_1".into(),
            lines,
            address(),
            Actor::shopper("u1"),
            Utc::now(),
        )
        .unwrap();
        assert_eq!(order.summary().item_count, MAX_LINE_QUANTITY * MAX_LINES as u32);
        assert_eq!(order.total().amount, MAX_PRICE * i64::from(MAX_LINE_QUANTITY) * MAX_LINES as i64);
    }

    #[test]
    fn totals_are_summed_in_minor_units_per_order_and_seller() {
        let order = two_seller_order();
        assert_eq!(order.total(), usd(2000 + 550 + 300));
        assert_eq!(order.seller_part("seller-1").unwrap().totals.subtotal, usd(2300));
        assert_eq!(order.seller_part("seller-2").unwrap().totals.subtotal, usd(550));
        assert!(order.seller_part("seller-3").is_none());
        assert_eq!(order.status(), OrderStatus::Pending);
    }

    #[test]
    fn when_each_seller_ships_status_moves_through_partial_shipment() {
        let mut order = two_seller_order();
        confirm(&mut order);
        ship(&mut order, "seller-1").unwrap();
        assert_eq!(order.status(), OrderStatus::PartiallyShipped);
        assert_eq!(order.seller_status("seller-1"), OrderStatus::Shipped);
        assert_eq!(order.seller_status("seller-2"), OrderStatus::Confirmed);
        ship(&mut order, "seller-2").unwrap();
        assert_eq!(order.status(), OrderStatus::Shipped);
        assert_eq!(order.captured_total(), order.total());
    }

    #[test]
    fn when_seller_ships_twice_should_conflict() {
        let mut order = two_seller_order();
        confirm(&mut order);
        ship(&mut order, "seller-1").unwrap();
        assert_eq!(code(&ship(&mut order, "seller-1").unwrap_err()), "already_shipped");
    }

    #[test]
    fn when_capture_differs_from_seller_lines_should_refuse() {
        let mut order = two_seller_order();
        confirm(&mut order);
        let err = order
            .record(
                OrderEventKind::Shipped { seller_id: "seller-2".into(), tracking_number: "T".into(), captured: usd(1) },
                Actor::seller("seller-2"),
                None,
                Utc::now(),
            )
            .unwrap_err();
        assert!(matches!(err, DomainError::Validation { .. }));
    }

    #[test]
    fn when_pending_order_is_shipped_should_be_illegal() {
        let mut order = two_seller_order();
        assert_eq!(code(&ship(&mut order, "seller-1").unwrap_err()), "illegal_transition");
    }

    #[test]
    fn when_cancelled_after_shipment_should_be_illegal() {
        let mut order = two_seller_order();
        confirm(&mut order);
        ship(&mut order, "seller-1").unwrap();
        let err = order.record(OrderEventKind::Cancelled, Actor::shopper("u1"), None, Utc::now()).unwrap_err();
        assert_eq!(code(&err), "illegal_transition");
    }

    fn update(status: TrackingStatus, occurred_at: DateTime<Utc>, id: Option<&str>) -> TrackingUpdate {
        TrackingUpdate { status, occurred_at, location: None, detail: None, event_id: id.map(str::to_owned) }
    }

    /// Both sellers shipped: seller-1 with UPS (through `shipping_started`), seller-2 directly.
    fn shipped_with_ups() -> Order {
        let mut order = two_seller_order();
        confirm(&mut order);
        let started = OrderEventKind::ShippingStarted {
            seller_id: "seller-1".into(),
            tracking_number: "1Z999".into(),
            carrier: Some(Carrier::Ups),
            tracking_url: None,
        };
        order.record(started, Actor::seller("seller-1"), None, Utc::now()).unwrap();
        ship(&mut order, "seller-1").unwrap();
        ship(&mut order, "seller-2").unwrap();
        order
    }

    #[test]
    fn a_shipment_shows_its_carrier_link_and_a_timeline_in_the_order_it_happened() {
        let mut order = shipped_with_ups();
        let id = order.shipment_id("seller-1").unwrap();
        assert_eq!(order.shipment_seller(&id), Some("seller-1"));
        assert_eq!(order.shipment_seller(&order.shipment_id("seller-2").unwrap()), Some("seller-2"));
        for wrong in ["shp_1", "shp_0", "shp_", "shp_-1", "shp_4294967296", "1Z999", ""] {
            assert_eq!(order.shipment_seller(wrong), None, "{wrong}");
        }
        let now = Utc::now();
        let carrier = Actor::carrier(Carrier::Ups);
        // Scans from before the seller told us, and one that arrives after a later one.
        let t = |minutes: i64| now - chrono::Duration::minutes(minutes);
        assert_eq!(
            order
                .track("seller-1", update(TrackingStatus::OutForDelivery, t(5), Some("e3")), carrier.clone(), now)
                .ok(),
            Some(Tracked::Recorded { delivered: false })
        );
        order.track("seller-1", update(TrackingStatus::InTransit, t(60), Some("e2")), carrier.clone(), now).unwrap();
        let view = order.shipment_view("seller-1").unwrap();
        assert_eq!(
            (view.carrier, view.tracking_url.as_deref()),
            (Carrier::Ups, Some("https://www.ups.com/track?tracknum=1Z999"))
        );
        assert_eq!(view.status, TrackingStatus::OutForDelivery, "the latest by when it happened");
        let statuses: Vec<_> = view.timeline.iter().map(|e| e.status).collect();
        assert_eq!(statuses, [TrackingStatus::InTransit, TrackingStatus::OutForDelivery, TrackingStatus::LabelCreated]);
        assert_eq!(view.timeline[0].source, TrackingSource::Carrier);
        let other = order.shipment_view("seller-2").unwrap();
        assert_eq!(
            (other.carrier, other.tracking_url, other.status),
            (Carrier::Other, None, TrackingStatus::LabelCreated)
        );
        assert_eq!(other.timeline.len(), 1);
    }

    #[test]
    fn the_same_update_twice_is_recorded_once() {
        let mut order = shipped_with_ups();
        let now = Utc::now();
        let carrier = Actor::carrier(Carrier::Ups);
        let first = update(TrackingStatus::InTransit, now, Some("e1"));
        assert_eq!(
            order.track("seller-1", first.clone(), carrier.clone(), now).ok(),
            Some(Tracked::Recorded { delivered: false })
        );
        let version = order.version();
        let mut changed = first.clone();
        changed.detail = Some("the same id whatever it says".into());
        assert_eq!(order.track("seller-1", changed, carrier.clone(), now).ok(), Some(Tracked::Duplicate));
        // Without an id, the same status, time, place and detail is the same update (also as one with an id).
        let same_without_id = update(TrackingStatus::InTransit, now, None);
        assert_eq!(
            order.track("seller-1", same_without_id, Actor::seller("seller-1"), now).ok(),
            Some(Tracked::Duplicate)
        );
        let no_id = update(TrackingStatus::InTransit, now - chrono::Duration::seconds(1), None);
        assert_eq!(
            order.track("seller-1", no_id.clone(), Actor::seller("seller-1"), now).ok(),
            Some(Tracked::Recorded { delivered: false })
        );
        assert_eq!(order.track("seller-1", no_id, Actor::seller("seller-1"), now).ok(), Some(Tracked::Duplicate));
        assert_eq!(order.version(), version + 1);
        // Per seller: the same id on another seller's shipment is another update.
        assert_eq!(order.track("seller-2", first, carrier, now).ok(), Some(Tracked::Recorded { delivered: false }));
    }

    #[test]
    fn a_delivered_update_delivers_the_part_once_and_the_order_when_every_part_is() {
        let mut order = shipped_with_ups();
        let now = Utc::now();
        let carrier = Actor::carrier(Carrier::Ups);
        let done = order.track("seller-1", update(TrackingStatus::Delivered, now, Some("d1")), carrier.clone(), now);
        assert_eq!(done.ok(), Some(Tracked::Recorded { delivered: true }));
        assert_eq!((order.status(), order.seller_status("seller-1")), (OrderStatus::Shipped, OrderStatus::Delivered));
        let again = order.track("seller-1", update(TrackingStatus::Delivered, now, Some("d2")), carrier.clone(), now);
        assert_eq!(
            again.ok(),
            Some(Tracked::Recorded { delivered: false }),
            "a second delivered scan delivers nothing"
        );
        // A later exception shows, the delivery stays.
        let later = now + chrono::Duration::minutes(1);
        order.track("seller-1", update(TrackingStatus::Exception, later, None), carrier, later).unwrap();
        assert_eq!(order.shipment_view("seller-1").unwrap().status, TrackingStatus::Exception);
        assert!(order.is_delivered("seller-1"));
        // The other seller delivers through the seller route: the timeline shows it, and the order is delivered.
        order
            .record(OrderEventKind::Delivered { seller_id: "seller-2".into() }, Actor::seller("seller-2"), None, now)
            .unwrap();
        assert_eq!(order.status(), OrderStatus::Delivered);
        let view = order.shipment_view("seller-2").unwrap();
        assert_eq!((view.status, view.timeline.len()), (TrackingStatus::Delivered, 2));
        let delivered = order.events().iter().filter(|e| matches!(e.kind, OrderEventKind::Delivered { .. })).count();
        assert_eq!(delivered, 2);
    }

    #[test]
    fn updates_need_a_shipped_part_and_never_deliver_a_returned_one() {
        let mut order = two_seller_order();
        confirm(&mut order);
        let now = Utc::now();
        let code = |r: Result<Tracked>| r.unwrap_err().code();
        assert_eq!(
            code(order.track("seller-1", update(TrackingStatus::InTransit, now, None), Actor::seller("seller-1"), now)),
            ErrorCode::IllegalTransition
        );
        assert_eq!(
            code(order.track("seller-9", update(TrackingStatus::InTransit, now, None), Actor::seller("seller-9"), now)),
            ErrorCode::IllegalTransition
        );
        let mut order = shipped_with_ups();
        for seller in ["seller-1", "seller-2"] {
            order
                .record(OrderEventKind::Delivered { seller_id: seller.into() }, Actor::seller(seller), None, now)
                .unwrap();
        }
        order.record(OrderEventKind::ReturnRequested, Actor::shopper("u1"), None, now).unwrap();
        let late = order.track(
            "seller-1",
            update(TrackingStatus::Delivered, now, Some("x")),
            Actor::carrier(Carrier::Ups),
            now,
        );
        assert_eq!(late.ok(), Some(Tracked::Recorded { delivered: false }));
        assert_eq!(order.status(), OrderStatus::ReturnRequested);
    }

    #[test]
    fn past_the_cap_only_outcomes_are_recorded() {
        let mut order = shipped_with_ups();
        let now = Utc::now();
        let carrier = Actor::carrier(Carrier::Ups);
        for i in 0..tracking::MAX_UPDATES_PER_ORDER {
            let seller = if i % 2 == 0 { "seller-1" } else { "seller-2" };
            let id = format!("scan-{i}");
            order.track(seller, update(TrackingStatus::InTransit, now, Some(&id)), carrier.clone(), now).unwrap();
        }
        let version = order.version();
        assert_eq!(
            order
                .track("seller-1", update(TrackingStatus::InTransit, now, Some("one-more")), carrier.clone(), now)
                .ok(),
            Some(Tracked::Ignored)
        );
        assert_eq!(order.version(), version);
        let done = order.track("seller-1", update(TrackingStatus::Delivered, now, Some("d")), carrier, now);
        assert_eq!(done.ok(), Some(Tracked::Recorded { delivered: true }));
    }

    #[test]
    fn shipments_recorded_before_tracking_read_back_as_carrier_other() {
        let json = r#"{"type":"shipping_started","seller_id":"seller-1","tracking_number":"T1"}"#;
        let kind: OrderEventKind = serde_json::from_str(json).unwrap();
        assert_eq!(
            kind,
            OrderEventKind::ShippingStarted {
                seller_id: "seller-1".into(),
                tracking_number: "T1".into(),
                carrier: None,
                tracking_url: None
            }
        );
        assert_eq!(serde_json::to_string(&kind).unwrap(), json, "written as before when there is no carrier");
    }

    fn begin_shipment(order: &mut Order, seller: &str, tracking: &str) -> Result<()> {
        let kind = OrderEventKind::ShippingStarted {
            seller_id: seller.into(),
            tracking_number: tracking.into(),
            carrier: None,
            tracking_url: None,
        };
        order.record(kind, Actor::seller(seller), None, Utc::now()).map(|_| ())
    }

    fn cancel(order: &mut Order) -> Result<()> {
        order.record(OrderEventKind::Cancelled, Actor::shopper("u1"), None, Utc::now()).map(|_| ())
    }

    #[test]
    fn when_a_shipment_has_begun_should_refuse_to_cancel() {
        let mut order = two_seller_order();
        confirm(&mut order);
        begin_shipment(&mut order, "seller-2", "1Z999").unwrap();
        assert_eq!((order.status(), order.seller_status("seller-2")), (OrderStatus::Shipping, OrderStatus::Shipping));
        assert_eq!(order.seller_status("seller-1"), OrderStatus::Confirmed);
        assert_eq!(code(&cancel(&mut order).unwrap_err()), "illegal_transition");
        assert_eq!(code(&begin_shipment(&mut order, "seller-2", "1Z999").unwrap_err()), "shipment_in_progress");
        ship(&mut order, "seller-2").unwrap();
        assert_eq!((order.status(), order.shipping("seller-2")), (OrderStatus::PartiallyShipped, None));
        assert_eq!(code(&cancel(&mut order).unwrap_err()), "illegal_transition");
    }

    #[test]
    fn when_cancelled_should_refuse_to_begin_a_shipment() {
        let mut order = two_seller_order();
        confirm(&mut order);
        cancel(&mut order).unwrap();
        assert_eq!(code(&begin_shipment(&mut order, "seller-1", "1Z999").unwrap_err()), "illegal_transition");
        assert_eq!(code(&ship(&mut order, "seller-1").unwrap_err()), "illegal_transition");
    }

    #[test]
    fn when_the_capture_is_refused_the_aborted_shipment_leaves_the_order_cancellable() {
        let mut order = two_seller_order();
        confirm(&mut order);
        let abort = |order: &mut Order| {
            let kind = OrderEventKind::ShippingAborted { seller_id: "seller-1".into() };
            order.record(kind, Actor::seller("seller-1"), Some("payment_declined".into()), Utc::now()).map(|_| ())
        };
        assert_eq!(code(&abort(&mut order).unwrap_err()), "illegal_transition", "nothing to abort");
        begin_shipment(&mut order, "seller-1", "1Z999").unwrap();
        abort(&mut order).unwrap();
        assert_eq!((order.status(), order.shipping("seller-1")), (OrderStatus::Confirmed, None));
        cancel(&mut order).unwrap();
        assert_eq!(order.status(), OrderStatus::Cancelled);
    }

    #[test]
    fn a_begun_shipment_ships_only_under_its_own_tracking_number() {
        let mut order = two_seller_order();
        confirm(&mut order);
        begin_shipment(&mut order, "seller-1", "OTHER").unwrap();
        assert!(
            matches!(ship(&mut order, "seller-1"), Err(DomainError::Validation { field, .. }) if field == "tracking_number")
        );
        assert_eq!(order.shipping("seller-1"), Some("OTHER"));
    }

    #[test]
    fn the_last_capture_is_fixed_by_when_the_shipment_began() {
        let mut order = two_seller_order();
        confirm(&mut order);
        begin_shipment(&mut order, "seller-1", "1Z999").unwrap();
        begin_shipment(&mut order, "seller-2", "1Z999").unwrap();
        ship(&mut order, "seller-2").unwrap();
        assert!(!order.is_last_capture("seller-1"), "seller-2 had not shipped when seller-1 began");
        assert!(!order.is_last_capture("seller-2"));
        ship(&mut order, "seller-1").unwrap();
        let mut later = two_seller_order();
        confirm(&mut later);
        ship(&mut later, "seller-1").unwrap();
        begin_shipment(&mut later, "seller-2", "1Z999").unwrap();
        assert!(later.is_last_capture("seller-2"));
    }

    #[test]
    fn an_order_opens_to_its_owner_an_admin_or_its_token_and_to_no_one_else() {
        let (guest, token) = Order::place(
            "ord_g".into(),
            Customer { user_id: None, email: Some("g@example.com".into()) },
            "crt_g".into(),
            two_seller_order().header().lines.clone(),
            address(),
            Actor { kind: ActorKind::Guest, id: "crt_g".into() },
            Utc::now(),
        )
        .unwrap()
        .with_new_order_token();
        let shopper = two_seller_order();
        let access = |user: Option<&str>, admin: bool, token: Option<&str>| OrderAccess {
            user_id: user.map(str::to_owned),
            admin,
            order_token: token.map(str::to_owned),
        };
        let kind = |order: &Order, a: OrderAccess| order.authorize(&a).map(|actor| actor.kind);
        assert_eq!(kind(&shopper, access(Some("u1"), false, None)).unwrap(), ActorKind::Shopper);
        assert_eq!(kind(&shopper, access(Some("root"), true, None)).unwrap(), ActorKind::Admin);
        assert_eq!(kind(&guest, access(None, false, Some(&token))).unwrap(), ActorKind::Guest);
        assert_eq!(kind(&guest, access(Some("u2"), false, Some(&token))).unwrap(), ActorKind::Guest);
        let refused = [
            (&shopper, access(Some("u2"), false, None)),
            (&shopper, access(None, false, Some(&token))),
            (&guest, access(None, false, Some("wrong"))),
            (&guest, access(None, false, None)),
            (&guest, access(Some("u1"), false, None)),
        ];
        for (order, a) in refused {
            assert!(matches!(order.authorize(&a), Err(DomainError::NotFound { .. })), "{a:?}");
        }
    }

    #[test]
    fn the_payment_is_the_recorded_one_or_the_confirmed_authorization() {
        use crate::payment::PaymentStatus;
        let mut order = two_seller_order();
        assert_eq!(order.payment_view(None), None, "no payment before the confirmation");
        confirm(&mut order);
        let authorized = order.payment_view(None).unwrap();
        assert_eq!(
            (authorized.status, authorized.authorized, authorized.captured),
            (PaymentStatus::Authorized, usd(2850), usd(0))
        );
        let mut recorded = Payment::authorized("pi_1".into(), "ord_1".into(), usd(2850));
        recorded.capture(usd(2300), false).unwrap();
        recorded.refund(usd(300)).unwrap();
        let shown = order.payment_view(Some(&recorded)).unwrap();
        assert_eq!(
            (shown.status, shown.captured, shown.refunded),
            (PaymentStatus::PartiallyCaptured, usd(2300), usd(300))
        );
        let other = Payment::authorized("pi_9".into(), "ord_9".into(), usd(1));
        assert_eq!(order.payment_view(Some(&other)), Some(authorized), "another order's record is ignored");
    }

    #[test]
    fn full_lifecycle_ends_refunded_with_history() {
        let mut order = two_seller_order();
        confirm(&mut order);
        for seller in ["seller-1", "seller-2"] {
            ship(&mut order, seller).unwrap();
        }
        for seller in ["seller-1", "seller-2"] {
            order
                .record(OrderEventKind::Delivered { seller_id: seller.into() }, Actor::seller(seller), None, Utc::now())
                .unwrap();
        }
        assert_eq!(order.status(), OrderStatus::Delivered);
        order
            .record(OrderEventKind::ReturnRequested, Actor::shopper("u1"), Some("too small".into()), Utc::now())
            .unwrap();
        for seller in ["seller-1", "seller-2"] {
            let amount = order.shipment(seller).unwrap().1;
            order
                .record(
                    OrderEventKind::Returned { seller_id: seller.into(), restocked: true },
                    Actor::seller(seller),
                    None,
                    Utc::now(),
                )
                .unwrap();
            order
                .record(
                    OrderEventKind::Refunded { seller_id: seller.into(), amount },
                    Actor::seller(seller),
                    None,
                    Utc::now(),
                )
                .unwrap();
        }
        assert_eq!(order.status(), OrderStatus::Refunded);
        assert_eq!(order.version(), 11);
        let rebuilt = Order::from_history(order.header().clone(), order.events().to_vec()).unwrap();
        assert_eq!(rebuilt.status(), OrderStatus::Refunded);
    }

    #[test]
    fn when_failed_then_confirmed_should_be_illegal() {
        let mut order = two_seller_order();
        order
            .record(
                OrderEventKind::Failed { failure: FailureReason::PaymentDeclined },
                Actor::system("saga"),
                None,
                Utc::now(),
            )
            .unwrap();
        assert_eq!(order.status(), OrderStatus::Failed);
        let err = order
            .record(OrderEventKind::Confirmed { payment_id: "pi".into() }, Actor::system("saga"), None, Utc::now())
            .unwrap_err();
        assert_eq!(code(&err), "illegal_transition");
    }

    #[test]
    fn when_history_has_gap_should_refuse_to_load() {
        let mut order = two_seller_order();
        confirm(&mut order);
        let mut events = order.events().to_vec();
        events.remove(0);
        assert!(Order::from_history(order.header().clone(), events).is_err());
    }

    #[test]
    fn address_rules() {
        assert!(address().validate().is_ok());
        let mut bad = address();
        bad.country = "USA".into();
        assert!(bad.validate().is_err());
        bad.country = "us".into();
        assert!(bad.validate().is_err());
        let mut empty = address();
        empty.line1 = " ".into();
        assert!(
            matches!(empty.validate(), Err(DomainError::Validation { field, .. }) if field == "shipping_address.line1")
        );
    }

    #[test]
    fn events_round_trip_as_json() {
        let mut order = two_seller_order();
        confirm(&mut order);
        let json = serde_json::to_value(order.events()).unwrap();
        assert_eq!(json[1]["type"], "confirmed");
        assert_eq!(json[1]["payment_id"], "pi_1");
        let back: Vec<OrderEvent> = serde_json::from_value(json).unwrap();
        assert_eq!(back, order.events());
    }

    fn arb_kind() -> impl Strategy<Value = OrderEventKind> {
        let seller = prop_oneof![Just("seller-1".to_string()), Just("seller-2".to_string()), Just("x".to_string())];
        prop_oneof![
            Just(OrderEventKind::Placed),
            Just(OrderEventKind::Confirmed { payment_id: "pi".into() }),
            Just(OrderEventKind::Compensating),
            Just(OrderEventKind::Failed { failure: FailureReason::OutOfStock }),
            Just(OrderEventKind::Cancelled),
            seller.clone().prop_map(|s| OrderEventKind::ShippingStarted {
                seller_id: s,
                tracking_number: "T1".into(),
                carrier: None,
                tracking_url: None
            }),
            seller.clone().prop_map(|s| OrderEventKind::ShippingAborted { seller_id: s }),
            (seller.clone(), prop_oneof![Just(2300i64), Just(550i64), Just(1i64)]).prop_map(|(s, a)| {
                OrderEventKind::Shipped { seller_id: s, tracking_number: "T1".into(), captured: usd(a) }
            }),
            seller.clone().prop_map(|s| OrderEventKind::Delivered { seller_id: s }),
            Just(OrderEventKind::ReturnRequested),
            (seller.clone(), any::<bool>()).prop_map(|(s, r)| OrderEventKind::Returned { seller_id: s, restocked: r }),
            (seller, 1i64..3000).prop_map(|(s, a)| OrderEventKind::Refunded { seller_id: s, amount: usd(a) }),
        ]
    }

    proptest! {
        /// Random parts (1-8 lines, prices up to 10^8, quantities 1-10, any tax, inclusive or not) refunded in
        /// random partial steps, then the rest: every step is positive and the steps return exactly the part's
        /// total and its tax.
        #[test]
        fn any_sequence_of_partial_refunds_returns_exactly_what_was_charged(
            lines in proptest::collection::vec((1i64..=100_000_000, 1u32..=10, 0i64..=30_000_000), 1..=8),
            shipping in (0i64..=100_000, 0i64..=20_000),
            inclusive in any::<bool>(),
            cuts in proptest::collection::vec((0usize..8, 1u32..=10, any::<bool>()), 0..20),
        ) {
            // Inclusive prices contain their tax: keep it below the line's amount.
            let lines: Vec<(i64, u32, i64)> = lines.into_iter().map(|(p, q, t)| (p, q, if inclusive { t.min(p * i64::from(q)) } else { t })).collect();
            let shipping = (shipping.0, if inclusive { shipping.1.min(shipping.0) } else { shipping.1 });
            let mut order = shipped_priced(&lines, shipping, inclusive);
            let part = order.seller_part("seller-1").unwrap().totals;
            let mut left: Vec<u32> = lines.iter().map(|l| l.1).collect();
            let (mut amount, mut tax) = (0i64, 0i64);
            let mut shipped_back = false;
            for (n, (line, want, ship)) in cuts.into_iter().enumerate() {
                let line = line % left.len();
                let q = want.min(left[line]);
                let with_ship = ship && !shipped_back && shipping.0 + shipping.1 > 0;
                if q == 0 && !with_ship { continue; }
                let wanted = if q > 0 { units(&format!("SKU-{line}"), q) } else { Vec::new() };
                let (a, t) = refund_part(&mut order, wanted, with_ship, &format!("k{n}")).unwrap();
                prop_assert!(a.amount > 0 && t.amount >= 0);
                amount += a.amount;
                tax += t.amount;
                left[line] -= q;
                shipped_back |= with_ship;
            }
            let rest: Vec<RefundLine> = left.iter().enumerate().filter(|(_, q)| **q > 0).map(|(i, q)| RefundLine { sku: format!("SKU-{i}"), quantity: *q }).collect();
            let ship_rest = !shipped_back && shipping.0 + shipping.1 > 0;
            if !rest.is_empty() || ship_rest {
                let (a, t) = refund_part(&mut order, rest, ship_rest, "last").unwrap();
                amount += a.amount;
                tax += t.amount;
            }
            prop_assert_eq!(amount, part.total.amount);
            prop_assert_eq!(tax, part.tax_total.amount);
            prop_assert_eq!(order.refundable("seller-1").amount, 0);
        }
    }

    proptest! {
        /// Whatever is attempted, the history stays replayable, final states stay final, captures never exceed
        /// the total, refunds never exceed captures, and a cancelled order has no shipment begun or done.
        #[test]
        fn any_sequence_of_attempts_keeps_invariants(kinds in proptest::collection::vec(arb_kind(), 0..40)) {
            let mut order = two_seller_order();
            for kind in kinds {
                let before = order.status();
                let version = order.version();
                match order.record(kind, Actor::system("prop"), None, Utc::now()) {
                    Ok(_) => {
                        prop_assert!(!before.is_final(), "moved out of final {:?}", before);
                        prop_assert_eq!(order.version(), version + 1);
                    }
                    Err(_) => {
                        prop_assert_eq!(order.status(), before);
                        prop_assert_eq!(order.version(), version);
                    }
                }
                prop_assert!(order.captured_total().amount <= order.total().amount);
                for seller in ["seller-1", "seller-2"] {
                    if let Some(refund) = order.refunded(seller) {
                        prop_assert!(refund.amount <= order.shipment(seller).unwrap().1.amount);
                    }
                    if order.status() == OrderStatus::Cancelled {
                        prop_assert!(order.shipping(seller).is_none() && order.shipment(seller).is_none());
                    }
                }
            }
            let rebuilt = Order::from_history(order.header().clone(), order.events().to_vec()).unwrap();
            prop_assert_eq!(rebuilt.status(), order.status());
            prop_assert_eq!(rebuilt.captured_total(), order.captured_total());
        }
    }
}
