//! Promotions through checkout and the saga's steps over the in-memory fakes: discounts frozen into the order
//! before tax, a use held before the authorization, committed by the confirmation, released by a failed
//! checkout and given back once by a cancellation; limits, per-customer limits and single-use codes refused with
//! `promotion_unavailable`.

use chrono::Utc;
use commerce_app::ports::{CartStore, OrderReader, PromotionWriter};
use commerce_app::services::checkout::{
    self, start_checkout, CheckoutOutcome, CheckoutPorts, CheckoutRequest, KeyedCheckout,
};
use commerce_app::services::orders::{cancel_order, RestockPorts};
use commerce_app::services::promotions::hold_promotions;
use commerce_domain::cart::{Cart, CartAccess, CartLimits};
use commerce_domain::error::{DomainError, ErrorCode, Result};
use commerce_domain::ids::OrderId;
use commerce_domain::money::{Currency, Money};
use commerce_domain::order::{Order, OrderAccess, OrderStatus, ShippingAddress};
use commerce_domain::promotion::{AppliesTo, PromotionKind, PromotionValue, Scope};
use commerce_testkit::cart::InMemoryCarts;
use commerce_testkit::catalog::InMemoryCatalog;
use commerce_testkit::flash_sale::InMemoryFlashSales;
use commerce_testkit::http::{demo_store, DEMO_SELLERS};
use commerce_testkit::inventory::InMemoryInventory;
use commerce_testkit::orders::{InMemoryOrders, InMemoryPayments};
use commerce_testkit::promotions::{sample_promotion, InMemoryPromotions};
use commerce_testkit::shipping::InMemoryQuotes;
use commerce_testkit::shipping_config::InMemoryShippingConfig;

const LAPTOP: &str = "LAP-0001-16GB-512GB";
const LAPTOP_PRICE: i64 = 109_900;

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

struct Shop {
    catalog: InMemoryCatalog,
    carts: InMemoryCarts,
    orders: InMemoryOrders,
    promotions: InMemoryPromotions,
    inventory: InMemoryInventory,
    flash: InMemoryFlashSales,
    tables: InMemoryShippingConfig,
    quotes: InMemoryQuotes,
}

fn shop() -> Shop {
    let promotions = InMemoryPromotions::new();
    Shop {
        catalog: demo_store(),
        carts: InMemoryCarts::new(),
        orders: InMemoryOrders::new().with_promotions(promotions.clone()),
        promotions,
        inventory: InMemoryInventory::demo(),
        flash: InMemoryFlashSales::default(),
        tables: InMemoryShippingConfig::new(),
        quotes: InMemoryQuotes::new(),
    }
}

/// A promotion with `code`: 10 % off the order, `limit` uses, `per_customer` each.
async fn ten_percent(shop: &Shop, id: &str, code: &str, limit: Option<u32>, per_customer: Option<u32>) {
    let mut p = sample_promotion(id, Scope::Platform, Some(code));
    p.usage_limit = limit;
    p.per_customer_limit = per_customer;
    p.shards = commerce_domain::promotion::shard_count(limit);
    shop.promotions.create_promotion(&p).await.unwrap();
}

impl Shop {
    /// `shopper` checks out one laptop with `codes`; the pending order.
    async fn place(&self, shopper: &str, codes: &[&str]) -> Result<Order> {
        let now = Utc::now();
        let mut cart = Cart::new_shopper(shopper, now);
        cart.set_quantity(LAPTOP, 1, usd(LAPTOP_PRICE), &CartLimits::default(), now).unwrap();
        self.carts.create_cart(&cart).await.unwrap();
        let ports = CheckoutPorts {
            carts: &self.carts,
            catalog: &self.catalog,
            flash: &self.flash,
            orders: &self.orders,
            starter: &self.orders,
            tables: &self.tables,
            quotes: &self.quotes,
            promotions: &self.promotions,
        };
        let order_id = OrderId::generate().to_string();
        let request = CheckoutRequest {
            cart_id: cart.cart_id.clone(),
            shipping_address: address(),
            payment_method: "pm_card_visa".into(),
            email: None,
            flash_ticket_id: None,
            expected_total: None,
            shipping: None,
            promotion_codes: codes.iter().map(|c| (*c).to_owned()).collect(),
        };
        let keyed = KeyedCheckout {
            request,
            order_id: order_id.clone(),
            fingerprint: "f".into(),
            execution_name: order_id.clone(),
        };
        let access = CartAccess { user_id: Some(shopper.into()), cart_token: None };
        match start_checkout(ports, &access, None, keyed, now).await? {
            CheckoutOutcome::Placed(_) => Ok(self.orders.get_order(&order_id).await?.unwrap()),
            other => panic!("not placed: {other:?}"),
        }
    }

    async fn hold(&self, order: &Order) -> Result<()> {
        hold_promotions(&self.orders, &self.promotions, order.id(), Utc::now()).await
    }

    async fn confirm(&self, order: &Order) -> Order {
        checkout::confirm_order(&self.orders, order.id(), "pi_test", Utc::now()).await.unwrap();
        self.orders.get_order(order.id()).await.unwrap().unwrap()
    }

    async fn compensate(&self, order: &Order) {
        checkout::release_stock(&self.inventory, &self.flash, &self.orders, order.id(), None, Utc::now())
            .await
            .unwrap();
    }

    async fn cancel(&self, order: &Order, shopper: &str) -> Order {
        let provider = InMemoryPayments::default();
        let ports = RestockPorts {
            orders: &self.orders,
            provider: &provider,
            inventory: &self.inventory,
            flash: &self.flash,
            publisher: &self.orders,
        };
        let access = OrderAccess { user_id: Some(shopper.into()), admin: false, order_token: None };
        let id = OrderId::parse(order.id()).unwrap();
        cancel_order(ports, &access, &id, Utc::now()).await.unwrap().order().clone()
    }
}

fn unavailable(result: Result<impl std::fmt::Debug>) {
    match result {
        Err(DomainError::Conflict { code: ErrorCode::PromotionUnavailable, .. }) => {}
        other => panic!("expected promotion_unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_code_is_taken_off_before_tax_held_committed_and_given_back_once() {
    let shop = shop();
    ten_percent(&shop, "prm_ten", "TEN", Some(5), None).await;
    let order = shop.place("shopper-1", &["ten"]).await.unwrap();
    let totals = order.header().totals;
    assert_eq!((totals.subtotal.amount, totals.discount_total.amount), (LAPTOP_PRICE, 10_990));
    assert_eq!(totals.total.amount, LAPTOP_PRICE - 10_990);
    let redemption = &order.header().promotions[0];
    assert_eq!((redemption.code.as_deref(), redemption.amount.amount), (Some("TEN"), 10_990));
    assert_eq!(order.header().lines[0].discount(), 10_990, "the discount sits on the line");
    assert_eq!(shop.promotions.counts("prm_ten"), (0, 0, 5), "checkout itself holds nothing");

    shop.hold(&order).await.unwrap();
    shop.hold(&order).await.unwrap();
    assert_eq!(shop.promotions.counts("prm_ten"), (0, 1, 4), "held once whatever the retries");
    let confirmed = shop.confirm(&order).await;
    assert_eq!(confirmed.status(), OrderStatus::Confirmed);
    assert_eq!(shop.promotions.counts("prm_ten"), (1, 0, 4));
    let cancelled = shop.cancel(&order, "shopper-1").await;
    assert_eq!(cancelled.status(), OrderStatus::Cancelled);
    assert_eq!(shop.promotions.counts("prm_ten"), (0, 0, 5), "the use is given back");
    shop.cancel(&order, "shopper-1").await;
    assert_eq!(shop.promotions.counts("prm_ten"), (0, 0, 5), "and only once");
}

#[tokio::test]
async fn the_last_use_goes_to_one_checkout_and_the_other_fails_unavailable_before_any_authorization() {
    let shop = shop();
    ten_percent(&shop, "prm_last", "LAST", Some(1), None).await;
    let first = shop.place("shopper-1", &["LAST"]).await.unwrap();
    let second = shop.place("shopper-2", &["LAST"]).await.unwrap();
    shop.hold(&first).await.unwrap();
    unavailable(shop.hold(&second).await);
    assert_eq!(shop.promotions.counts("prm_last"), (0, 1, 0));
    shop.compensate(&second).await;
    assert_eq!(shop.promotions.counts("prm_last"), (0, 1, 0), "a use never held is not released");
    unavailable(shop.place("shopper-3", &["LAST"]).await);
    shop.compensate(&first).await;
    assert_eq!(shop.promotions.counts("prm_last"), (0, 0, 1), "a failed checkout gives its use back");
    shop.compensate(&first).await;
    assert_eq!(shop.promotions.counts("prm_last"), (0, 0, 1), "once");
    let third = shop.place("shopper-3", &["LAST"]).await.unwrap();
    shop.hold(&third).await.unwrap();
    shop.confirm(&third).await;
    assert_eq!(shop.promotions.counts("prm_last"), (1, 0, 0));
}

#[tokio::test]
async fn one_customer_gets_their_limit_and_no_more() {
    let shop = shop();
    ten_percent(&shop, "prm_once", "ONCE", None, Some(1)).await;
    let first = shop.place("shopper-1", &["ONCE"]).await.unwrap();
    let second = shop.place("shopper-1", &["ONCE"]).await.unwrap();
    shop.hold(&first).await.unwrap();
    unavailable(shop.hold(&second).await);
    shop.confirm(&first).await;
    unavailable(shop.place("shopper-1", &["ONCE"]).await);
    let other = shop.place("shopper-2", &["ONCE"]).await.unwrap();
    shop.hold(&other).await.unwrap();
}

#[tokio::test]
async fn a_single_use_code_is_taken_by_one_order_and_freed_by_its_failure() {
    let shop = shop();
    ten_percent(&shop, "prm_batch", "BATCH-MAIN", None, None).await;
    shop.promotions.add_codes("prm_batch", &["VIP-1".into()]).await.unwrap();
    let first = shop.place("shopper-1", &["vip-1"]).await.unwrap();
    let second = shop.place("shopper-2", &["VIP-1"]).await.unwrap();
    assert!(first.header().promotions[0].single_use);
    shop.hold(&first).await.unwrap();
    unavailable(shop.hold(&second).await);
    unavailable(shop.place("shopper-3", &["VIP-1"]).await);
    shop.compensate(&first).await;
    let third = shop.place("shopper-3", &["VIP-1"]).await.unwrap();
    shop.hold(&third).await.unwrap();
}

#[tokio::test]
async fn a_seller_promotion_discounts_only_their_lines_and_an_unknown_or_ended_code_is_refused() {
    let shop = shop();
    let mut five = sample_promotion("prm_five", Scope::Seller { seller_id: DEMO_SELLERS[1].into() }, Some("FIVE"));
    five.kind = PromotionKind::Fixed;
    five.value = Some(PromotionValue::Fixed { amount: usd(500) });
    five.applies_to = AppliesTo::default();
    shop.promotions.create_promotion(&five).await.unwrap();
    match shop.place("shopper-1", &["FIVE"]).await {
        Err(DomainError::Conflict { code: ErrorCode::PromotionNotApplicable, .. }) => {}
        other => panic!("another seller's promotion does not apply to this laptop: {other:?}"),
    }
    match shop.place("shopper-1", &["NOPE-1"]).await {
        Err(DomainError::Conflict { code: ErrorCode::PromotionNotApplicable, message }) => {
            assert!(message.contains("NOPE-1") && message.contains("unknown_code"), "{message}");
        }
        other => panic!("an unknown code is refused: {other:?}"),
    }
    let mut ended = sample_promotion("prm_ended", Scope::Platform, Some("ENDED"));
    ended.ends_at = Some(Utc::now() - chrono::Duration::days(1));
    shop.promotions.create_promotion(&ended).await.unwrap();
    match shop.place("shopper-1", &["ENDED"]).await {
        Err(DomainError::Conflict { code: ErrorCode::PromotionExpired, .. }) => {}
        other => panic!("an ended promotion is promotion_expired: {other:?}"),
    }
    let plain = shop.place("shopper-1", &[]).await.unwrap();
    assert!(plain.header().promotions.is_empty());
    assert_eq!(plain.header().totals.total.amount, LAPTOP_PRICE);
}

#[tokio::test]
async fn an_automatic_promotion_applies_by_itself_and_a_checkout_without_promotions_holds_nothing() {
    let shop = shop();
    let auto = sample_promotion("prm_auto", Scope::Seller { seller_id: DEMO_SELLERS[0].into() }, None);
    shop.promotions.create_promotion(&auto).await.unwrap();
    let order = shop.place("shopper-1", &[]).await.unwrap();
    assert_eq!(order.header().promotions.len(), 1);
    assert_eq!(order.header().totals.discount_total.amount, 10_990);
    shop.hold(&order).await.unwrap();
    shop.confirm(&order).await;
    assert_eq!(shop.promotions.counts("prm_auto").0, 1);

    let bare = self::shop();
    let plain = bare.place("shopper-9", &[]).await.unwrap();
    assert!(plain.header().promotions.is_empty() && plain.usage_changes(0).is_empty());
    bare.hold(&plain).await.unwrap();
    assert_eq!(bare.orders.get_order(plain.id()).await.unwrap().unwrap().version(), plain.version(), "no write");
}

#[tokio::test]
async fn fifty_racing_holds_on_ten_uses_take_exactly_ten() {
    let shop = std::sync::Arc::new(shop());
    ten_percent(&shop, "prm_race", "RACE", Some(10), None).await;
    let mut orders = Vec::new();
    for n in 0..50 {
        orders.push(shop.place(&format!("shopper-{n}"), &["RACE"]).await.unwrap());
    }
    let holds = futures::future::join_all(orders.iter().map(|o| {
        let shop = shop.clone();
        async move { shop.hold(o).await }
    }))
    .await;
    assert_eq!(holds.iter().filter(|h| h.is_ok()).count(), 10);
    assert_eq!(shop.promotions.counts("prm_race"), (0, 10, 0));
}

#[tokio::test]
async fn a_first_order_promotion_applies_until_the_shopper_has_a_confirmed_order() {
    let shop = shop();
    let mut first_only = sample_promotion("prm_first", Scope::Platform, Some("FIRST"));
    first_only.conditions.first_order = true;
    shop.promotions.create_promotion(&first_only).await.unwrap();
    let pending = shop.place("shopper-1", &["FIRST"]).await.unwrap();
    let again = shop.place("shopper-1", &["FIRST"]).await.unwrap();
    assert_eq!(again.header().promotions.len(), 1, "pending orders do not count");
    shop.hold(&pending).await.unwrap();
    shop.confirm(&pending).await;
    match shop.place("shopper-1", &["FIRST"]).await {
        Err(DomainError::Conflict { code: ErrorCode::PromotionNotApplicable, message }) => {
            assert!(message.contains("first_order"), "{message}");
        }
        other => panic!("a shopper with a confirmed order is past their first: {other:?}"),
    }
    assert_eq!(shop.place("shopper-2", &["FIRST"]).await.unwrap().header().promotions.len(), 1);
}
