//! The shipping method use cases over the in-memory fake.

use chrono::Utc;
use commerce_app::services::shipping_methods::*;
use commerce_domain::auth::{Caller, Role};
use commerce_domain::error::{DomainError, ErrorCode};
use commerce_domain::ids::ShippingMethodId;
use commerce_domain::shipping::{ShippingMethodInput, ShippingMethodPatch};
use commerce_testkit::http::DEMO_SELLERS;
use commerce_testkit::shipping_config::{
    sample_shipping, ReadTogether, EXPRESS_METHOD_ID, OTHER_SELLER_METHOD_ID, STANDARD_METHOD_ID,
};
use serde_json::json;

fn caller(id: &str, role: Role) -> Caller {
    Caller { user_id: id.into(), email: None, roles: vec![role] }
}

fn seller() -> Caller {
    caller(DEMO_SELLERS[0], Role::Seller)
}

fn other_seller() -> Caller {
    caller(DEMO_SELLERS[1], Role::Seller)
}

fn admin() -> Caller {
    caller("admin-1", Role::Admin)
}

fn id(raw: &str) -> ShippingMethodId {
    ShippingMethodId::parse(raw).unwrap()
}

fn input(value: serde_json::Value) -> ShippingMethodInput {
    serde_json::from_value(value).unwrap()
}

fn patch(value: serde_json::Value) -> ShippingMethodPatch {
    serde_json::from_value(value).unwrap()
}

fn pickup() -> ShippingMethodInput {
    input(json!({"name": "Pickup point", "countries": ["US", "DE"], "min_days": 1, "max_days": 3,
                 "rate": {"type": "flat", "amount": {"amount": 0, "currency": "USD"}}}))
}

fn field_of(err: DomainError) -> String {
    match err {
        DomainError::Validation { field, .. } => field,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_seller_creates_a_method_of_their_own() {
    let store = sample_shipping();
    let created = create_shipping_method(&store, &store, &seller(), None, pickup(), Utc::now()).await.unwrap();
    assert!(created.method_id.starts_with("shm_"));
    assert_eq!((created.seller_id.as_str(), created.version), (DEMO_SELLERS[0], 1));
    assert_eq!(created.tax_class.as_str(), "standard");
    let read = get_shipping_method(&store, &seller(), None, &created.method_id).await.unwrap();
    assert_eq!(read, created);
}

#[tokio::test]
async fn shoppers_are_forbidden_every_use_case() {
    let store = sample_shipping();
    let shopper = caller("shopper-1", Role::Shopper);
    let standard = id(STANDARD_METHOD_ID);
    let results = [
        create_shipping_method(&store, &store, &shopper, None, pickup(), Utc::now()).await.err(),
        get_shipping_method(&store, &shopper, None, &standard).await.err(),
        list_shipping_methods(&store, &shopper, None).await.err(),
        update_shipping_method(&store, &shopper, None, &standard, patch(json!({"name": "X"})), None, Utc::now())
            .await
            .err(),
        delete_shipping_method(&store, &store, &shopper, None, &standard).await.err(),
    ];
    for result in results {
        assert!(matches!(result, Some(DomainError::Forbidden(_))), "{result:?}");
    }
    assert_eq!(store.method_count(), 3);
}

#[tokio::test]
async fn another_sellers_method_is_not_found_and_stays_as_it_was() {
    let store = sample_shipping();
    let theirs = id(OTHER_SELLER_METHOD_ID);
    let before = store.stored_method(OTHER_SELLER_METHOD_ID).unwrap();
    let get = get_shipping_method(&store, &seller(), None, &theirs).await;
    let update =
        update_shipping_method(&store, &seller(), None, &theirs, patch(json!({"name": "Mine"})), None, Utc::now())
            .await;
    let delete = delete_shipping_method(&store, &store, &seller(), None, &theirs).await;
    for result in [get.map(|_| ()), update.map(|_| ()), delete] {
        assert!(matches!(result, Err(DomainError::NotFound { entity: "shipping method" })), "{result:?}");
    }
    assert_eq!(store.stored_method(OTHER_SELLER_METHOD_ID).unwrap(), before);
    let listed = list_shipping_methods(&store, &seller(), None).await.unwrap();
    assert!(listed.iter().all(|m| m.seller_id == DEMO_SELLERS[0]));
    let ids: Vec<&str> = listed.iter().map(|m| m.method_id.as_str()).collect();
    assert_eq!(ids, [EXPRESS_METHOD_ID, STANDARD_METHOD_ID], "the caller's own, by id");
}

#[tokio::test]
async fn an_admin_acts_on_a_named_sellers_methods_and_a_seller_may_not_name_another() {
    let store = sample_shipping();
    let theirs = id(OTHER_SELLER_METHOD_ID);
    let read = get_shipping_method(&store, &admin(), Some(DEMO_SELLERS[1]), &theirs).await.unwrap();
    assert_eq!(read.seller_id, DEMO_SELLERS[1]);
    let renamed = update_shipping_method(
        &store,
        &admin(),
        Some(DEMO_SELLERS[1]),
        &theirs,
        patch(json!({"name": "Economy"})),
        Some(1),
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!((renamed.name.as_str(), renamed.version), ("Economy", 2));
    let created =
        create_shipping_method(&store, &store, &admin(), Some(DEMO_SELLERS[1]), pickup(), Utc::now()).await.unwrap();
    assert_eq!(created.seller_id, DEMO_SELLERS[1]);

    let named = list_shipping_methods(&store, &seller(), Some(DEMO_SELLERS[1])).await;
    assert!(matches!(named, Err(DomainError::Forbidden(_))), "{named:?}");
    let own = list_shipping_methods(&store, &seller(), Some(DEMO_SELLERS[0])).await.unwrap();
    assert_eq!(own.len(), 2, "naming oneself is the caller's own scope");
}

#[tokio::test]
async fn a_name_taken_in_a_shared_country_is_409_overlap_on_create_and_update() {
    let store = sample_shipping();
    let clash = input(json!({"name": "standard", "countries": ["CA"], "min_days": 1, "max_days": 2,
                             "rate": {"type": "flat", "amount": {"amount": 100, "currency": "USD"}}}));
    let err = create_shipping_method(&store, &store, &seller(), None, clash, Utc::now()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::ShippingMethodOverlap);
    let rename = patch(json!({"name": "Standard"}));
    let err = update_shipping_method(&store, &seller(), None, &id(EXPRESS_METHOD_ID), rename, None, Utc::now())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ShippingMethodOverlap);
    assert_eq!(store.method_count(), 3);
    assert_eq!(store.stored_method(EXPRESS_METHOD_ID).unwrap().version, 1);
    // Another seller's method of the same name is no clash.
    let theirs = input(json!({"name": "Standard", "countries": ["CA"], "min_days": 1, "max_days": 2,
                              "rate": {"type": "flat", "amount": {"amount": 100, "currency": "USD"}}}));
    assert!(create_shipping_method(&store, &store, &other_seller(), None, theirs, Utc::now()).await.is_ok());
}

#[tokio::test]
async fn invalid_methods_are_refused_naming_the_field() {
    let store = sample_shipping();
    let flat = json!({"type": "flat", "amount": {"amount": 100, "currency": "USD"}});
    let cases = [
        (json!({"name": "A", "countries": ["us"], "min_days": 1, "max_days": 2, "rate": flat}), "countries[0]"),
        (json!({"name": "A", "countries": [], "min_days": 1, "max_days": 2, "rate": flat}), "countries"),
        (json!({"name": " ", "countries": ["US"], "min_days": 1, "max_days": 2, "rate": flat}), "name"),
        (json!({"name": "A", "countries": ["US"], "min_days": 3, "max_days": 2, "rate": flat}), "max_days"),
        (
            json!({"name": "A", "countries": ["US"], "min_days": 1, "max_days": 2,
                   "rate": {"type": "flat", "amount": {"amount": -1, "currency": "USD"}}}),
            "rate.amount",
        ),
        (
            json!({"name": "A", "countries": ["US"], "min_days": 1, "max_days": 2,
                   "rate": {"type": "free_over", "amount": {"amount": 1, "currency": "USD"},
                            "threshold": {"amount": 1, "currency": "EUR"}}}),
            "rate.threshold",
        ),
        (
            json!({"name": "A", "countries": ["US"], "min_days": 1, "max_days": 2,
                   "rate": {"type": "weight_tiers", "tiers": [
                       {"up_to_grams": 500, "amount": {"amount": 1, "currency": "USD"}},
                       {"up_to_grams": 400, "amount": {"amount": 2, "currency": "USD"}}]}}),
            "rate.tiers[1].up_to_grams",
        ),
        (
            json!({"name": "A", "countries": ["US"], "min_days": 1, "max_days": 2,
                   "rate": {"type": "carrier", "carrier": "sandbox", "service": ""}}),
            "rate.service",
        ),
    ];
    for (body, field) in cases {
        let err = create_shipping_method(&store, &store, &seller(), None, input(body), Utc::now()).await.unwrap_err();
        assert_eq!(field_of(err), field);
    }
    let standard = id(STANDARD_METHOD_ID);
    let empty = update_shipping_method(&store, &seller(), None, &standard, patch(json!({})), None, Utc::now()).await;
    assert_eq!(field_of(empty.unwrap_err()), "body");
    let slower = patch(json!({"min_days": 9}));
    let err = update_shipping_method(&store, &seller(), None, &standard, slower, None, Utc::now()).await;
    assert_eq!(field_of(err.unwrap_err()), "max_days", "the patched whole is checked");
    assert_eq!(store.method_count(), 3);
}

#[tokio::test]
async fn if_match_applies_a_change_only_to_that_version() {
    let store = sample_shipping();
    let standard = id(STANDARD_METHOD_ID);
    let stale =
        update_shipping_method(&store, &seller(), None, &standard, patch(json!({"min_days": 1})), Some(7), Utc::now())
            .await;
    assert_eq!(stale.unwrap_err().code(), ErrorCode::VersionConflict);
    let current =
        update_shipping_method(&store, &seller(), None, &standard, patch(json!({"min_days": 1})), Some(1), Utc::now())
            .await
            .unwrap();
    assert_eq!((current.min_days, current.version), (1, 2));
}

#[tokio::test]
async fn of_two_concurrent_patches_on_one_version_one_wins_and_the_other_gets_409() {
    let store = ReadTogether::new(sample_shipping());
    let standard = id(STANDARD_METHOD_ID);
    let (one, other) = (seller(), seller());
    let (first, second) = tokio::join!(
        update_shipping_method(&store, &one, None, &standard, patch(json!({"name": "Ground"})), Some(1), Utc::now()),
        update_shipping_method(&store, &other, None, &standard, patch(json!({"max_days": 9})), Some(1), Utc::now()),
    );
    let (won, lost) = match (first, second) {
        (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won, lost),
        other => panic!("expected one winner and one conflict: {other:?}"),
    };
    assert_eq!(lost.code(), ErrorCode::VersionConflict);
    assert_eq!(won.version, 2);
    assert_eq!(store.inner.stored_method(STANDARD_METHOD_ID).unwrap(), won, "the winner's change stands alone");
}

#[tokio::test]
async fn without_if_match_the_loser_of_a_race_retries_on_fresh_data_and_nothing_is_lost() {
    let store = ReadTogether::new(sample_shipping());
    let standard = id(STANDARD_METHOD_ID);
    let (one, other) = (seller(), seller());
    let (first, second) = tokio::join!(
        update_shipping_method(&store, &one, None, &standard, patch(json!({"name": "Ground"})), None, Utc::now()),
        update_shipping_method(&store, &other, None, &standard, patch(json!({"max_days": 9})), None, Utc::now()),
    );
    assert!(first.is_ok() && second.is_ok(), "{first:?} {second:?}");
    let stored = store.inner.stored_method(STANDARD_METHOD_ID).unwrap();
    assert_eq!((stored.name.as_str(), stored.max_days, stored.version), ("Ground", 9, 3));
}

#[tokio::test]
async fn a_deleted_method_is_gone() {
    let store = sample_shipping();
    let express = id(EXPRESS_METHOD_ID);
    delete_shipping_method(&store, &store, &seller(), None, &express).await.unwrap();
    assert!(matches!(get_shipping_method(&store, &seller(), None, &express).await, Err(DomainError::NotFound { .. })));
    assert!(matches!(
        delete_shipping_method(&store, &store, &seller(), None, &express).await,
        Err(DomainError::NotFound { .. })
    ));
    assert_eq!(store.method_count(), 2);
}
