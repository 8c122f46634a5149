//! Reads the saga input and holds the order's promotion uses (idempotent: an order already held is done);
//! fails with `PromotionUnavailable` when a promotion has no use left, the customer's limit is reached or a
//! single-use code is taken, so the saga compensates before anything is authorized.

use commerce_app::ports::PromotionReader;
use commerce_app::services::checkout::{self, SagaInput};
use commerce_app::services::promotions::{self, HoldPorts};
use commerce_lambda::saga::task_error;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::{json, Value};

/// What the step needs.
pub struct Deps<O, P> {
    pub orders: O,
    pub promotions: P,
}

pub async fn handle<O: HoldPorts, P: PromotionReader>(
    deps: &Deps<O, P>,
    event: LambdaEvent<Value>,
) -> Result<Value, Diagnostic> {
    let input: SagaInput = checkout::step_input(event.payload).map_err(task_error)?;
    promotions::hold_promotions(&deps.orders, &deps.promotions, &input.order_id, chrono::Utc::now())
        .await
        .map_err(task_error)?;
    Ok(json!({ "held": true }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commerce_app::ports::{OrderReader, OrderWriter, PromotionWriter};
    use commerce_domain::money::{Currency, Money};
    use commerce_domain::order::{Actor, Customer, Order, OrderLine, Redemption, ShippingAddress};
    use commerce_domain::promotion::{DiscountClass, Scope, Share};
    use commerce_testkit::orders::InMemoryOrders;
    use commerce_testkit::promotions::{sample_promotion, InMemoryPromotions};

    fn deps() -> Deps<InMemoryOrders, InMemoryPromotions> {
        let promotions = InMemoryPromotions::new();
        Deps { orders: InMemoryOrders::new().with_promotions(promotions.clone()), promotions }
    }

    /// A pending order of one line, with a use of `prm_one` (limit 1) when `promoted`.
    async fn order(deps: &Deps<InMemoryOrders, InMemoryPromotions>, id: &str, promoted: bool) -> Value {
        let usd = |amount| Money::new(amount, Currency::USD);
        let mut line = OrderLine::new("SKU-1", "prd_1", "seller-1", "Thing", 1, usd(1000)).unwrap();
        let mut redemptions = Vec::new();
        if promoted {
            line = line.with_discounts(vec![Share { promotion_id: "prm_one".into(), amount: 100 }]);
            let r = Redemption {
                promotion_id: "prm_one".into(),
                code: Some("ONE".into()),
                name: "One".into(),
                class: DiscountClass::Order,
                amount: usd(100),
                single_use: false,
                limited: true,
                per_customer_limit: None,
                restore_on_cancel: true,
                shards: 1,
            };
            redemptions.push(r);
        }
        let address = ShippingAddress {
            name: "Ada".into(),
            line1: "1 Main St".into(),
            line2: None,
            city: "Springfield".into(),
            region: None,
            postal_code: "62701".into(),
            country: "US".into(),
        };
        let customer = Customer { user_id: Some("u1".into()), email: None };
        let placed = Order::place(
            id.into(),
            customer,
            "cart_1".into(),
            vec![line],
            address,
            Actor::shopper("u1"),
            chrono::Utc::now(),
        )
        .unwrap()
        .with_promotions(redemptions)
        .unwrap();
        deps.orders.create_order(&placed).await.unwrap();
        serde_json::json!({"order_id": id, "cart_id": "cart_1", "lines": [{"sku": "SKU-1", "quantity": 1}],
                           "owner": "shopper", "payment_method": "pm_card_visa",
                           "amount": {"amount": 900, "currency": "USD"}})
    }

    fn event(payload: Value) -> LambdaEvent<Value> {
        LambdaEvent::new(payload, lambda_runtime::Context::default())
    }

    #[tokio::test]
    async fn the_last_use_is_held_once_and_the_next_order_fails_promotion_unavailable() {
        let deps = deps();
        let mut one = sample_promotion("prm_one", Scope::Platform, Some("ONE"));
        one.usage_limit = Some(1);
        one.shards = 1;
        deps.promotions.create_promotion(&one).await.unwrap();
        let first = order(&deps, "ord_first", true).await;
        assert_eq!(handle(&deps, event(first.clone())).await.unwrap()["held"], true);
        assert_eq!(handle(&deps, event(first)).await.unwrap()["held"], true, "a retried step holds nothing more");
        assert_eq!(deps.promotions.counts("prm_one"), (0, 1, 0));
        let second = order(&deps, "ord_second", true).await;
        let err = handle(&deps, event(second)).await.unwrap_err();
        assert_eq!(err.error_type, "PromotionUnavailable");
        let stored = deps.orders.get_order("ord_second").await.unwrap().unwrap();
        assert_eq!(stored.version(), 1, "the loser's order is untouched");
    }

    #[tokio::test]
    async fn an_order_without_promotions_passes_and_an_unknown_order_is_not_found() {
        let deps = deps();
        let plain = order(&deps, "ord_plain", false).await;
        assert_eq!(handle(&deps, event(plain)).await.unwrap()["held"], true);
        let path =
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/checkout-hold-promotions/not-found-unknown-order.json");
        let sample: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(handle(&deps, event(sample)).await.unwrap_err().error_type, "NotFound");
    }
}
