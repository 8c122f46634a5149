//! The checkout use cases over the in-memory fakes.

use chrono::{DateTime, Utc};
use commerce_app::ports::OrderReader;
use commerce_app::ports::StockWriter;
use commerce_app::services::checkout::*;
use commerce_domain::error::DomainError;
use commerce_domain::error::ErrorCode;
use commerce_domain::inventory::{OwnerKind, ReservationLine};
use commerce_domain::inventory::{SetStock, StockLevel};
use commerce_domain::money::Currency;
use commerce_domain::money::Money;
use commerce_domain::order::{Actor, Customer, FailureReason, Order, OrderLine, OrderStatus};
use commerce_domain::payment::Payment;
use commerce_domain::payment::PaymentStatus;
use commerce_testkit::cart::InMemoryCarts;
use commerce_testkit::flash_sale::InMemoryFlashSales;
use commerce_testkit::inventory::InMemoryInventory;
use commerce_testkit::orders::{demo_address, InMemoryOrders, InMemoryPayments};

const SKU: &str = "saga-sku";
const WH: &str = "wh_east";

struct World {
    orders: InMemoryOrders,
    payments: InMemoryPayments,
    inventory: InMemoryInventory,
    carts: InMemoryCarts,
    flash: InMemoryFlashSales,
    input: SagaInput,
}

/// A pending order for 2 units of 5 on hand, its stock held under the order id (ReserveStock done).
async fn reserved_order() -> World {
    reserved_order_placed(Utc::now()).await
}

async fn reserved_order_placed(placed_at: DateTime<Utc>) -> World {
    let orders = InMemoryOrders::new();
    let inventory = InMemoryInventory::new();
    inventory.set_stock(SKU, WH, &SetStock { on_hand: 5, safety_stock: None }).await.unwrap();
    let price = Money::new(1500, Currency::USD);
    let line = OrderLine::new(SKU, "prd_saga", "seller-1", "Saga", 2, price).unwrap();
    let customer = Customer { user_id: Some("shopper-1".into()), email: None };
    let order = Order::place(
        "ord_saga".into(),
        customer,
        String::new(),
        vec![line],
        demo_address(),
        Actor::shopper("shopper-1"),
        placed_at,
    )
    .unwrap();
    let input = SagaInput {
        order_id: order.id().to_owned(),
        cart_id: String::new(),
        lines: vec![ReservationLine { sku: SKU.into(), quantity: 2 }],
        owner: OwnerKind::Shopper,
        payment_method: "pm_card_visa".into(),
        amount: order.total(),
        flash: None,
        ship_to: None,
    };
    orders.insert(order);
    assert!(inventory.hold("ord_saga", SKU, WH, 2));
    World {
        orders,
        payments: InMemoryPayments::new(),
        inventory,
        carts: InMemoryCarts::new(),
        flash: InMemoryFlashSales::default(),
        input,
    }
}

fn level(world: &World) -> StockLevel {
    world.inventory.ledger().levels(SKU).remove(0)
}

fn confirm_input(world: &World, payment: &Payment) -> ConfirmInput {
    ConfirmInput { saga: world.input.clone(), payment: AuthorizedPayment { payment_id: payment.payment_id.clone() } }
}

async fn order(world: &World) -> Order {
    world.orders.get_order("ord_saga").await.unwrap().unwrap()
}

#[tokio::test]
async fn when_a_duplicate_execution_compensates_after_the_other_confirmed_should_undo_nothing() {
    let world = reserved_order().await;
    let now = Utc::now();
    // Execution A runs to the end.
    let payment = authorize_payment(&world.payments, &world.orders, &world.input, Utc::now()).await.unwrap();
    commit_and_confirm(&world.inventory, &world.orders, &world.carts, &confirm_input(&world, &payment), now)
        .await
        .unwrap();
    // Execution B, whose authorization timed out meanwhile, runs the whole compensation chain.
    let timeout = StepError { error: "States.Timeout".into(), cause: String::new() };
    let _ = release_stock(&world.inventory, &world.flash, &world.orders, "ord_saga", None, now).await;
    let _ = void_unconfirmed(&world.payments, &world.orders, "ord_saga", now).await;
    let _ = fail_order(&world.orders, "ord_saga", &timeout, now).await;

    assert_eq!(order(&world).await.status(), OrderStatus::Confirmed);
    let payments = world.payments.payments();
    assert_eq!(payments.len(), 1, "authorized once");
    assert_eq!(payments[0].status, PaymentStatus::Authorized, "the confirmed order's authorization stands");
    let level = level(&world);
    assert_eq!((level.sold, level.reserved, level.returned, level.on_hand), (2, 0, 0, 3), "{level:?}");
}

#[tokio::test]
async fn when_confirming_fails_after_the_commit_should_give_the_committed_units_back_once() {
    let world = reserved_order().await;
    let now = Utc::now();
    let payment = authorize_payment(&world.payments, &world.orders, &world.input, Utc::now()).await.unwrap();
    // Execution A commits the stock; execution B compensates before A confirms.
    commit_stock(&world.inventory, &world.input, now).await.unwrap();
    let timeout = StepError { error: "States.Timeout".into(), cause: String::new() };
    let _ = release_stock(&world.inventory, &world.flash, &world.orders, "ord_saga", None, now).await;
    let _ = void_unconfirmed(&world.payments, &world.orders, "ord_saga", now).await;
    let _ = fail_order(&world.orders, "ord_saga", &timeout, now).await;
    // A's confirmation fails, and A compensates too.
    let confirmed = confirm_order(&world.orders, "ord_saga", &payment.payment_id, now).await;
    assert!(confirmed.is_err(), "a compensated order is not confirmed: {confirmed:?}");
    release_stock(&world.inventory, &world.flash, &world.orders, "ord_saga", None, now).await.unwrap();
    void_unconfirmed(&world.payments, &world.orders, "ord_saga", now).await.unwrap();
    fail_order(&world.orders, "ord_saga", &StepError { error: "Conflict".into(), cause: String::new() }, now)
        .await
        .unwrap();

    assert_eq!(order(&world).await.status(), OrderStatus::Failed);
    assert_eq!(world.payments.payments()[0].status, PaymentStatus::Voided);
    let level = level(&world);
    assert_eq!(
        (level.on_hand, level.free, level.reserved, level.sold, level.returned),
        (5, 5, 0, 0, 2),
        "the committed units came back, once: {level:?}"
    );
}

#[tokio::test]
async fn when_the_claim_fails_the_order_should_stay_pending_until_the_reaper_gives_back_the_units_and_voids() {
    let placed = Utc::now();
    let world = reserved_order_placed(placed).await;
    let payment = authorize_payment(&world.payments, &world.orders, &world.input, placed).await.unwrap();
    commit_stock(&world.inventory, &world.input, placed).await.unwrap();
    // Confirming failed, and so did ReleaseStock's claim (throttled after its retries). The rest of the chain
    // runs: the void is skipped (the order is not given up), and failing the order must be refused.
    let throttled = StepError { error: "Transient".into(), cause: String::new() };
    assert_eq!(void_unconfirmed(&world.payments, &world.orders, "ord_saga", placed).await.unwrap(), None);
    let failed = fail_order(&world.orders, "ord_saga", &throttled, placed).await;
    assert!(matches!(failed, Err(DomainError::Conflict { code: ErrorCode::CompensationUnclaimed, .. })), "{failed:?}");
    assert_eq!(order(&world).await.status(), OrderStatus::Pending, "still listed for the reaper");
    assert_eq!(world.payments.payments()[0].status, PaymentStatus::Authorized);
    // Past its bound the reaper finishes the compensation: the units come back once, the card is released.
    let later = placed + chrono::Duration::hours(1);
    assert_eq!(reap(&world, later).await.expired, 1);
    assert_eq!(order(&world).await.status(), OrderStatus::Failed);
    assert_eq!(world.payments.payments()[0].status, PaymentStatus::Voided);
    assert_eq!(world.payments.payments()[0].payment_id, payment.payment_id);
    let level = level(&world);
    assert_eq!((level.on_hand, level.free, level.sold, level.returned), (5, 5, 0, 2), "{level:?}");
}

async fn reap(world: &World, now: DateTime<Utc>) -> ReapReport {
    let bound = chrono::Duration::minutes(10);
    reap_pending_orders(&world.orders, &world.inventory, &world.flash, &world.payments, bound, 100, now).await.unwrap()
}

#[tokio::test]
async fn when_the_saga_never_started_the_reaper_should_release_the_hold_and_fail_the_order_expired() {
    let now = Utc::now();
    let world = reserved_order_placed(now - chrono::Duration::hours(1)).await;
    let report = reap(&world, now).await;
    assert_eq!(report, ReapReport { expired: 1, skipped: 0, failed: 0 });
    let order = order(&world).await;
    assert_eq!((order.status(), order.failure()), (OrderStatus::Failed, Some(FailureReason::Expired)));
    assert!(world.payments.payments().is_empty(), "nothing was authorized, nothing to void");
    let level = level(&world);
    assert_eq!((level.on_hand, level.reserved, level.sold), (5, 0, 0), "{level:?}");
    assert_eq!(reap(&world, now).await, ReapReport::default(), "a failed order is no longer listed");
}

#[tokio::test]
async fn when_the_saga_stopped_after_the_commit_the_reaper_should_return_the_units_and_void_once() {
    let now = Utc::now();
    let world = reserved_order_placed(now - chrono::Duration::hours(1)).await;
    authorize_payment(&world.payments, &world.orders, &world.input, Utc::now()).await.unwrap();
    commit_stock(&world.inventory, &world.input, now).await.unwrap();
    // The execution ends here (TimeoutSeconds): no confirmation, no compensation.
    assert_eq!(reap(&world, now).await.expired, 1);
    assert_eq!(reap(&world, now).await, ReapReport::default());
    let order = order(&world).await;
    assert_eq!((order.status(), order.failure()), (OrderStatus::Failed, Some(FailureReason::Expired)));
    assert_eq!(world.payments.payments()[0].status, PaymentStatus::Voided);
    let level = level(&world);
    assert_eq!((level.on_hand, level.free, level.sold, level.returned), (5, 5, 0, 2), "{level:?}");
    // The execution's own late confirmation can no longer confirm it.
    assert!(confirm_order(&world.orders, "ord_saga", "pi_mem_1", now).await.is_err());
}

#[tokio::test]
async fn when_an_order_is_pending_within_its_bound_or_confirmed_the_reaper_should_leave_it() {
    let now = Utc::now();
    let world = reserved_order_placed(now - chrono::Duration::minutes(2)).await;
    assert_eq!(reap(&world, now).await, ReapReport::default());
    let payment = authorize_payment(&world.payments, &world.orders, &world.input, Utc::now()).await.unwrap();
    commit_and_confirm(&world.inventory, &world.orders, &world.carts, &confirm_input(&world, &payment), now)
        .await
        .unwrap();
    assert_eq!(reap(&world, now + chrono::Duration::hours(1)).await, ReapReport::default());
    assert_eq!(order(&world).await.status(), OrderStatus::Confirmed);
    assert_eq!(world.payments.payments()[0].status, PaymentStatus::Authorized);
}

#[tokio::test]
async fn when_the_payment_fails_the_compensation_should_tell_the_customer_once_per_failure_and_other_failures_not() {
    for (error, told) in [
        ("PaymentDeclined", true),
        ("PaymentError", true),
        ("OutOfStock", false),
        ("States.Timeout", true),
        ("Expired", false),
        ("Conflict", false),
    ] {
        let world = reserved_order().await;
        let now = Utc::now();
        release_stock(&world.inventory, &world.flash, &world.orders, "ord_saga", None, now).await.unwrap();
        let step = StepError { error: error.into(), cause: String::new() };
        // The step runs twice (a retried task): the same notification both times.
        for _ in 0..2 {
            fail_order_and_tell(&world.orders, &world.orders, "ord_saga", &step, now).await.unwrap();
        }
        let published = world.orders.published();
        let kinds: Vec<_> = published.iter().map(|n| n.kind).collect();
        if told {
            assert_eq!(kinds, vec![commerce_domain::order::NotificationKind::PaymentFailed; 2], "{error}");
            assert_eq!(published[0].notification_id, published[1].notification_id);
        } else {
            assert!(published.is_empty(), "{error}: {published:?}");
        }
        assert_eq!(order(&world).await.status(), OrderStatus::Failed);
    }
}
