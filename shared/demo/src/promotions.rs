//! Demo promotions, so that `make dev` has codes to try (none is automatic: the demo prices stay as they are
//! unless a shopper enters a code):
//! - `WELCOME10`: the platform's 10 % off the order, once per customer, 10,000 uses, combines with free shipping;
//! - `SHIPFREE`: the platform's free shipping, combines with everything;
//! - `SELLER5`: the first seller's 5.00 off each unit of their products, 1,000 uses.

use chrono::{DateTime, TimeZone, Utc};
use commerce_app::ports::PromotionWriter;
use commerce_aws::promotions::DynamoPromotions;
use commerce_domain::error::{DomainError, ErrorCode, Result};
use commerce_domain::money::{Currency, Money};
use commerce_domain::promotion::{
    AppliesTo, DiscountClass, NewPromotion, Promotion, PromotionKind, PromotionValue, Scope,
};

fn starts_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).single().unwrap_or_default()
}

fn new(name: &str, code: &str, kind: PromotionKind, value: Option<PromotionValue>) -> NewPromotion {
    NewPromotion {
        name: name.into(),
        code: Some(code.into()),
        kind,
        value,
        applies_to: AppliesTo::default(),
        conditions: Default::default(),
        starts_at: starts_at(),
        ends_at: None,
        usage_limit: None,
        per_customer_limit: None,
        combines_with: vec![DiscountClass::Product, DiscountClass::Order, DiscountClass::Shipping],
        priority: 0,
        restore_on_cancel: true,
    }
}

/// The demo promotions, the seller's owned by the first of `sellers` (fixed ids, so a second seed finds them).
pub fn promotions(sellers: &[String]) -> Result<Vec<Promotion>> {
    let mut welcome =
        new("Welcome", "WELCOME10", PromotionKind::Percent, Some(PromotionValue::Percent { percent_bp: 1000 }));
    welcome.usage_limit = Some(10_000);
    welcome.per_customer_limit = Some(1);
    welcome.combines_with = vec![DiscountClass::Shipping];
    let ship = new("Free shipping", "SHIPFREE", PromotionKind::FreeShipping, None);
    let mut out = vec![
        welcome.into_promotion("prm_demo-welcome10".into(), Scope::Platform, starts_at())?,
        ship.into_promotion("prm_demo-shipfree".into(), Scope::Platform, starts_at())?,
    ];
    if let Some(seller) = sellers.first() {
        let amount = Money::new(500, Currency::USD);
        let mut five = new("Five off", "SELLER5", PromotionKind::Fixed, Some(PromotionValue::Fixed { amount }));
        five.usage_limit = Some(1_000);
        let scope = Scope::Seller { seller_id: seller.clone() };
        out.push(five.into_promotion("prm_demo-seller5".into(), scope, starts_at())?);
    }
    Ok(out)
}

/// Writes the demo promotions; those already there (a second run) are left as they are.
pub async fn seed(store: &DynamoPromotions, sellers: &[String]) -> Result<usize> {
    let promotions = promotions(sellers)?;
    for promotion in &promotions {
        match store.create_promotion(promotion).await {
            Ok(())
            | Err(DomainError::Conflict { code: ErrorCode::VersionConflict | ErrorCode::PromotionCodeTaken, .. }) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(promotions.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_promotions_are_valid_codes_and_none_is_automatic() {
        let promotions = promotions(&["seller-a".to_owned()]).unwrap();
        assert_eq!(promotions.len(), 3);
        assert!(promotions.iter().all(|p| p.code.is_some() && p.active));
        assert_eq!(promotions[2].scope, Scope::Seller { seller_id: "seller-a".into() });
    }
}
