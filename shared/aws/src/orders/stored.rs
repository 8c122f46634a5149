//! How an order is encoded in its item: compact, so that a one-line order's item (and so each write of it)
//! stays under 1 KB, one write unit instead of two.
//!
//! Nothing derivable is stored twice: the order id is the item's `pk`, the signed-in customer's id its `gsi1pk`,
//! the creation time the first event's time, each line's total its price times its quantity, the order total
//! the sum of the lines, an event's number its position in the (append-only) list, and the currency, shared by
//! every line, is stored once. Attribute names inside the maps are short; times are epoch nanoseconds (exact:
//! the domain's timestamps are nanosecond precision). Decoding rebuilds exactly the `Order` that was encoded
//! (the tests check it), and the events keep who, when, why and what for every change.

use chrono::serde::ts_nanoseconds;
use chrono::{DateTime, Utc};
use commerce_domain::error::{DomainError, Result};
use commerce_domain::money::{Currency, Money};
use commerce_domain::order::Redemption;
use commerce_domain::order::{
    Actor, ActorKind, Charges, Customer, FailureReason, Order, OrderEvent, OrderEventKind, OrderHeader, OrderLine,
    OrderStatus, OrderSummary, ShippingAddress,
};
use commerce_domain::promotion::Share;
use commerce_domain::tax::{TaxClass, TaxComponent};
use serde::{Deserialize, Serialize};

/// The `header` attribute: the facts fixed at placement that cannot be derived from elsewhere in the item.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct StoredHeader {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    em: Option<String>,
    cart: String,
    cur: Currency,
    lines: Vec<StoredLine>,
    ship: StoredAddress,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    flash: Option<String>,
    /// The placing request's fingerprint (its `Idempotency-Key`'s record is this order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fp: Option<String>,
    /// A guest order's token hash (SHA-256, hex); the token is never stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tok: Option<String>,
    /// Shipping lines and how tax applied (absent: none, as for orders placed before taxes).
    #[serde(default, skip_serializing_if = "is_default")]
    chg: Charges,
    /// The promotions the order uses (absent: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    prm: Vec<Redemption>,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredLine {
    sku: String,
    prd: String,
    sel: String,
    title: String,
    qty: u32,
    /// Unit price in minor units of the order's currency.
    price: i64,
    /// Tax class (absent: `standard`), tax in minor units (absent: 0) and its components.
    #[serde(default, skip_serializing_if = "TaxClass::is_standard")]
    tc: TaxClass,
    #[serde(default, skip_serializing_if = "is_default")]
    tax: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tx: Vec<TaxComponent>,
    /// The promotions' shares taken off the line (absent: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ds: Vec<Share>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredAddress {
    name: String,
    l1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    l2: Option<String>,
    city: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    region: Option<String>,
    zip: String,
    cc: String,
}

/// One element of the `events` list: when, who (`as` kind, `who` id), why, and what (`type` and its fields,
/// as the domain names them).
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct StoredEvent {
    #[serde(with = "ts_nanoseconds")]
    at: DateTime<Utc>,
    #[serde(rename = "as")]
    actor_kind: ActorKind,
    who: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    why: Option<String>,
    #[serde(flatten)]
    kind: OrderEventKind,
}

/// The `summary` attribute (the only one `gsi1` projects besides the keys): a shopper's history line, minus
/// the order id (the projected `pk`).
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct StoredSummary {
    st: OrderStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fail: Option<FailureReason>,
    amt: i64,
    cur: Currency,
    n: u32,
    #[serde(with = "ts_nanoseconds")]
    at: DateTime<Utc>,
}

impl StoredHeader {
    pub(super) fn of(header: &OrderHeader) -> Self {
        let a = &header.shipping_address;
        Self {
            em: header.customer.email.clone(),
            cart: header.cart_id.clone(),
            cur: header.totals.total.currency,
            lines: header
                .lines
                .iter()
                .map(|l| StoredLine {
                    sku: l.sku.clone(),
                    prd: l.product_id.clone(),
                    sel: l.seller_id.clone(),
                    title: l.title.clone(),
                    qty: l.quantity,
                    price: l.unit_price.amount,
                    tc: l.tax_class.clone(),
                    tax: l.tax.amount,
                    tx: l.taxes.clone(),
                    ds: l.discounts.clone(),
                })
                .collect(),
            ship: StoredAddress {
                name: a.name.clone(),
                l1: a.line1.clone(),
                l2: a.line2.clone(),
                city: a.city.clone(),
                region: a.region.clone(),
                zip: a.postal_code.clone(),
                cc: a.country.clone(),
            },
            flash: header.flash_ticket_id.clone(),
            fp: header.request_fingerprint.clone(),
            tok: header.order_token_hash.clone(),
            chg: header.charges.clone(),
            prm: header.promotions.clone(),
        }
    }
}

impl StoredEvent {
    pub(super) fn of(event: &OrderEvent) -> Self {
        Self {
            at: event.at,
            actor_kind: event.actor.kind,
            who: event.actor.id.clone(),
            why: event.reason.clone(),
            kind: event.kind.clone(),
        }
    }
}

impl StoredSummary {
    pub(super) fn of(summary: &OrderSummary) -> Self {
        Self {
            st: summary.status,
            fail: summary.failure_reason,
            amt: summary.total.amount,
            cur: summary.total.currency,
            n: summary.item_count,
            at: summary.created_at,
        }
    }

    pub(super) fn into_summary(self, order_id: String) -> OrderSummary {
        OrderSummary {
            order_id,
            status: self.st,
            failure_reason: self.fail,
            total: Money::new(self.amt, self.cur),
            item_count: self.n,
            created_at: self.at,
        }
    }
}

/// Rebuilds the order from its id, its customer's user id (from `gsi1pk`), the stored header and events.
pub(super) fn decode(
    order_id: String,
    user_id: Option<String>,
    header: StoredHeader,
    events: Vec<StoredEvent>,
) -> Result<Order> {
    let corrupt = |what: &str| DomainError::unexpected(format!("order {order_id}: {what}"));
    let created_at = events.first().map(|e| e.at).ok_or_else(|| corrupt("no events stored"))?;
    let currency = header.cur;
    let mut lines = Vec::with_capacity(header.lines.len());
    for l in header.lines {
        let unit_price = Money::new(l.price, currency);
        let line_total = unit_price.checked_mul(l.qty).map_err(|_| corrupt("a line total overflows"))?;
        lines.push(OrderLine {
            sku: l.sku,
            product_id: l.prd,
            seller_id: l.sel,
            title: l.title,
            quantity: l.qty,
            unit_price,
            line_total,
            tax_class: l.tc,
            tax: Money::new(l.tax, currency),
            taxes: l.tx,
            discounts: l.ds,
        });
    }
    let totals = header.chg.totals(&lines, currency).map_err(|_| corrupt("the total overflows"))?;
    let a = header.ship;
    let header = OrderHeader {
        id: order_id,
        customer: Customer { user_id, email: header.em },
        cart_id: header.cart,
        lines,
        shipping_address: ShippingAddress {
            name: a.name,
            line1: a.l1,
            line2: a.l2,
            city: a.city,
            region: a.region,
            postal_code: a.zip,
            country: a.cc,
        },
        totals,
        charges: header.chg,
        created_at,
        flash_ticket_id: header.flash,
        request_fingerprint: header.fp,
        order_token_hash: header.tok,
        promotions: header.prm,
    };
    let events = events
        .into_iter()
        .zip(1u32..)
        .map(|(e, seq)| OrderEvent {
            seq,
            at: e.at,
            actor: Actor { kind: e.actor_kind, id: e.who },
            reason: e.why,
            kind: e.kind,
        })
        .collect();
    Order::from_history(header, events)
}

/// The customer id a `gsi1pk` names.
pub(super) fn customer_of_gsi1pk(gsi1pk: &str) -> Option<&str> {
    gsi1pk.strip_prefix("CUSTOMER#")
}

/// The order id an order item's `pk` names.
pub(super) fn order_of_pk(pk: &str) -> Option<&str> {
    pk.strip_prefix("ORDER#")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes through DynamoDB attribute values and decodes, as a write then a read would.
    fn round_trip(order: &Order) -> Order {
        let header: StoredHeader =
            crate::dynamo::from_av(&crate::dynamo::to_av(&StoredHeader::of(order.header())).unwrap()).unwrap();
        let events: Vec<StoredEvent> = crate::dynamo::from_av(
            &crate::dynamo::to_av(&order.events().iter().map(StoredEvent::of).collect::<Vec<_>>()).unwrap(),
        )
        .unwrap();
        decode(order.id().to_owned(), order.header().customer.user_id.clone(), header, events).unwrap()
    }

    fn usd(amount: i64) -> Money {
        Money::new(amount, Currency::USD)
    }

    fn placed(user_id: Option<&str>, email: Option<&str>) -> Order {
        let at: DateTime<Utc> = "2026-11-22T08:50:10.705157123Z".parse().unwrap();
        let lines = vec![
            OrderLine::new("SKU-A", "prd_a", "seller-1", "Lamp", 2, usd(1999)).unwrap(),
            OrderLine::new("SKU-B", "prd_b", "seller-2", "Chair", 1, usd(12_500)).unwrap(),
            OrderLine::new("SKU-C", "prd_c", "seller-1", "Bulb", 3, usd(250)).unwrap(),
        ];
        let address = ShippingAddress {
            name: "Ada Lovelace".into(),
            line1: "1 Main St".into(),
            line2: Some("Apt 2".into()),
            city: "Springfield".into(),
            region: None,
            postal_code: "62701".into(),
            country: "US".into(),
        };
        let customer = Customer { user_id: user_id.map(str::to_owned), email: email.map(str::to_owned) };
        let actor = match user_id {
            Some(id) => Actor::shopper(id),
            None => Actor { kind: ActorKind::Guest, id: "cart_1".into() },
        };
        Order::place("ord_1".into(), customer, "cart_1".into(), lines, address, actor, at).unwrap()
    }

    #[test]
    fn every_event_kind_and_field_survives_the_round_trip() {
        let mut order = placed(Some("user-1"), Some("ada@example.com")).with_request_fingerprint("ab".repeat(32));
        let mut at = order.header().created_at;
        let mut next = |order: &mut Order, kind, actor, reason: Option<&str>| {
            at += chrono::Duration::nanoseconds(1_000_000_007);
            order.record(kind, actor, reason.map(str::to_owned), at).unwrap();
        };
        next(&mut order, OrderEventKind::Confirmed { payment_id: "pi_1".into() }, Actor::system("checkout"), None);
        for (seller, subtotal) in [("seller-1", 4748), ("seller-2", 12_500)] {
            let kind = OrderEventKind::Shipped {
                seller_id: seller.into(),
                tracking_number: format!("TRK-{seller}"),
                captured: usd(subtotal),
            };
            next(&mut order, kind, Actor::seller(seller), None);
            next(&mut order, OrderEventKind::Delivered { seller_id: seller.into() }, Actor::seller(seller), None);
        }
        next(&mut order, OrderEventKind::ReturnRequested, Actor::shopper("user-1"), Some("arrived broken"));
        let returned = OrderEventKind::Returned { seller_id: "seller-1".into(), restocked: true };
        next(&mut order, returned, Actor::seller("seller-1"), None);
        let refunded = OrderEventKind::Refunded { seller_id: "seller-1".into(), amount: usd(4000) };
        next(&mut order, refunded, Actor::seller("seller-1"), Some("partial"));

        let back = round_trip(&order);
        assert_eq!(back, order);
        assert_eq!(back.header().totals.total, usd(3 * 250 + 2 * 1999 + 12_500));
        assert_eq!(back.events().len(), 9);
    }

    #[test]
    fn taxes_and_shipping_survive_the_round_trip() {
        use commerce_domain::ids::ShippingMethodId;
        use commerce_domain::pricing::ShippingLine;
        use commerce_domain::tax::Taxed;
        let plain = placed(Some("user-1"), None);
        let component = |name: &str, amount| TaxComponent { name: name.into(), rate_ppm: 72_500, amount };
        let lines: Vec<OrderLine> = plain
            .header()
            .lines
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, l)| {
                let tax = 100 + i as i64;
                let taxed = Taxed { net: l.line_total.amount, tax, gross: 0, components: vec![component("CA", tax)] };
                l.taxed(if i == 1 { "reduced".parse().unwrap() } else { TaxClass::standard() }, taxed)
            })
            .collect();
        let charges = Charges {
            shipping: vec![ShippingLine {
                seller_id: "seller-2".into(),
                method_id: ShippingMethodId::parse("shm_1").unwrap(),
                name: "Ground".into(),
                amount: usd(700),
                tax: usd(51),
                tax_class: TaxClass::standard(),
                min_days: 2,
                max_days: 5,
                taxes: vec![component("CA", 51)],
                discounts: Vec::new(),
            }],
            prices_include_tax: false,
            tax_region: Some("US-CA".parse().unwrap()),
        };
        let h = plain.header();
        let order = Order::place(
            "ord_2".into(),
            h.customer.clone(),
            h.cart_id.clone(),
            lines,
            h.shipping_address.clone(),
            Actor::shopper("user-1"),
            h.created_at,
        )
        .unwrap()
        .with_charges(charges)
        .unwrap();
        let back = round_trip(&order);
        assert_eq!(back, order);
        assert_eq!(back.total(), usd(3 * 250 + 2 * 1999 + 12_500 + 700 + 100 + 101 + 102 + 51));
        assert_eq!(back.seller_part("seller-2").unwrap().totals.total, usd(12_500 + 101 + 700 + 51));
    }

    #[test]
    fn promotions_and_their_uses_survive_the_round_trip() {
        use commerce_domain::order::{HeldUse, Redemption};
        use commerce_domain::promotion::{DiscountClass, Share};
        let plain = placed(Some("user-1"), None);
        let id = "prm_01jh00000000000000000000000";
        let h = plain.header();
        let mut lines = h.lines.clone();
        lines[0] = lines[0].clone().with_discounts(vec![Share { promotion_id: id.into(), amount: 75 }]);
        let redemption = Redemption {
            promotion_id: id.into(),
            code: Some("SUMMER10".into()),
            name: "Summer".into(),
            class: DiscountClass::Order,
            amount: usd(75),
            single_use: false,
            limited: true,
            per_customer_limit: Some(1),
            restore_on_cancel: true,
            shards: 2,
        };
        let mut order = Order::place(
            "ord_3".into(),
            h.customer.clone(),
            h.cart_id.clone(),
            lines,
            h.shipping_address.clone(),
            Actor::shopper("user-1"),
            h.created_at,
        )
        .unwrap()
        .with_promotions(vec![redemption])
        .unwrap();
        let held = OrderEventKind::PromotionsHeld { uses: vec![HeldUse { promotion_id: id.into(), shard: 1 }] };
        order.record(held, Actor::system("promotions"), None, h.created_at).unwrap();
        order.record(OrderEventKind::Compensating, Actor::system("checkout"), None, h.created_at).unwrap();
        order.record(OrderEventKind::PromotionsReleased, Actor::system("promotions"), None, h.created_at).unwrap();
        let back = round_trip(&order);
        assert_eq!(back, order);
        assert_eq!(back.header().totals.discount_total, usd(75));
        assert!(!back.promotions_to_release(), "released once");
    }

    #[test]
    fn a_partial_refund_survives_the_round_trip() {
        use commerce_domain::order::RefundLine;
        let mut order = placed(Some("user-1"), None);
        let at = order.header().created_at;
        order
            .record(OrderEventKind::Confirmed { payment_id: "pi_1".into() }, Actor::system("checkout"), None, at)
            .unwrap();
        let captured = order.seller_part("seller-1").unwrap().totals.total;
        let shipped = OrderEventKind::Shipped { seller_id: "seller-1".into(), tracking_number: "1Z".into(), captured };
        order.record(shipped, Actor::seller("seller-1"), None, at).unwrap();
        let lines = vec![RefundLine { sku: "SKU-C".into(), quantity: 2 }];
        let (amount, tax) = order.partial_refund("seller-1", &lines, false).unwrap();
        let kind = OrderEventKind::PartlyRefunded {
            seller_id: "seller-1".into(),
            lines,
            shipping: false,
            amount,
            tax,
            key: "refund-ord_1-seller-1-abc".into(),
        };
        order.record(kind, Actor::seller("seller-1"), Some("scratched".into()), at).unwrap();
        let back = round_trip(&order);
        assert_eq!(back, order);
        assert_eq!(back.refundable("seller-1"), usd(2 * 1999 + 250));
    }

    #[test]
    fn guest_flash_and_failed_orders_survive_the_round_trip() {
        let (guest, token) = placed(None, Some("guest@example.com")).with_new_order_token();
        let back = round_trip(&guest);
        assert_eq!(back, guest);
        assert!(back
            .header()
            .order_token_hash
            .as_deref()
            .is_some_and(|hash| hash.len() == 64 && !hash.contains(&token)));

        let mut flash = placed(Some("user-2"), None).with_flash_ticket("tkt_9");
        let failed = OrderEventKind::Failed { failure: FailureReason::PaymentDeclined };
        flash.record(failed, Actor::system("checkout"), Some("PaymentDeclined".into()), Utc::now()).unwrap();
        let back = round_trip(&flash);
        assert_eq!(back, flash);
        assert_eq!(back.status(), OrderStatus::Failed);
    }

    #[test]
    fn summary_survives_its_round_trip_with_the_id_from_the_key() {
        let order = placed(Some("user-1"), None);
        let stored: StoredSummary =
            crate::dynamo::from_av(&crate::dynamo::to_av(&StoredSummary::of(&order.summary())).unwrap()).unwrap();
        assert_eq!(stored.into_summary(order.id().to_owned()), order.summary());
    }

    #[test]
    fn keys_name_their_ids() {
        assert_eq!(customer_of_gsi1pk("CUSTOMER#u-1"), Some("u-1"));
        assert_eq!(order_of_pk("ORDER#ord_1"), Some("ord_1"));
        assert_eq!(order_of_pk("SELLER#x"), None);
    }
}
