//! The tax region and shipping method adapter, and their use cases, over the real wire protocol against the
//! local AWS endpoint in `LOCAL_AWS_ENDPOINT` (the emulator). Each test creates its own table. Without the
//! variable the tests print why and pass without running.

use aws_sdk_dynamodb::types::ProjectionType;
use chrono::Utc;
use commerce_app::ports::{ShippingMethodReader, ShippingMethodWriter, TaxRegionReader, TaxRegionWriter};
use commerce_app::services::{shipping_methods as methods, tax};
use commerce_aws::shipping_config::DynamoShippingConfig;
use commerce_domain::auth::{Caller, Role};
use commerce_domain::error::{DomainError, ErrorCode};
use commerce_domain::ids::ShippingMethodId;
use commerce_domain::shipping::{ShippingMethod, ShippingMethodInput, ShippingMethodPatch};
use commerce_domain::tax::{TaxRegion, TaxRegionInput};
use commerce_testkit::dynamo::{create_table, local_client, local_endpoint, unique_name};
use serde_json::json;
use std::sync::Arc;

async fn table() -> Option<DynamoShippingConfig> {
    let client = local_client(&local_endpoint()?).await;
    let name = unique_name("shipping-config-test");
    // Keyed as the catalog table is; these items carry no index keys.
    let all = ProjectionType::All;
    create_table(&client, &name, &[("gsi1", all.clone()), ("gsi2", all.clone()), ("gsi3", all)]).await;
    Some(DynamoShippingConfig::new(client, name))
}

fn caller(id: &str, role: Role) -> Caller {
    Caller { user_id: id.into(), email: None, roles: vec![role] }
}

fn vat(rate_ppm: u32) -> TaxRegionInput {
    serde_json::from_value(json!({"prices_include_tax": true, "shipping_taxable": true,
                                  "rates": [{"tax_class": "standard", "rate_ppm": rate_ppm, "name": "VAT"}]}))
    .unwrap()
}

fn method_input(name: &str, countries: &[&str]) -> ShippingMethodInput {
    serde_json::from_value(json!({
        "name": name, "countries": countries, "min_days": 2, "max_days": 5,
        "rate": {"type": "weight_tiers", "tiers": [{"up_to_grams": 500, "amount": {"amount": 450, "currency": "USD"}},
                                                   {"up_to_grams": 2000, "amount": {"amount": 900, "currency": "USD"}}]}
    }))
    .unwrap()
}

fn is_version_conflict<T: std::fmt::Debug>(result: &Result<T, DomainError>) -> bool {
    matches!(result, Err(DomainError::Conflict { code: ErrorCode::VersionConflict, .. }))
}

#[tokio::test]
async fn tax_regions_round_trip_and_a_write_on_another_version_is_409() {
    let Some(store) = table().await else { return };
    let admin = caller("admin-1", Role::Admin);
    let de =
        tax::put_tax_region(&store, &store, &admin, "DE".parse().unwrap(), vat(190_000), Utc::now()).await.unwrap();
    let ca =
        tax::put_tax_region(&store, &store, &admin, "US-CA".parse().unwrap(), vat(72_500), Utc::now()).await.unwrap();
    let at =
        tax::put_tax_region(&store, &store, &admin, "AT".parse().unwrap(), vat(200_000), Utc::now()).await.unwrap();
    assert_eq!(tax::list_tax_regions(&store, &admin).await.unwrap(), vec![at, de.clone(), ca]);

    let replaced =
        tax::put_tax_region(&store, &store, &admin, "DE".parse().unwrap(), vat(160_000), Utc::now()).await.unwrap();
    assert_eq!(replaced.version, 2);

    // The adapter's conditions: a new region must not exist, a replacement must find the version it replaces.
    let again = TaxRegion { version: 1, ..de.clone() };
    assert!(is_version_conflict(&store.put_tax_region(&again, None).await));
    let stale = TaxRegion { version: 2, ..de };
    assert!(is_version_conflict(&store.put_tax_region(&stale, Some(1)).await));
    let stored = store.list_tax_regions().await.unwrap();
    assert_eq!(stored.iter().find(|r| r.region.as_str() == "DE"), Some(&replaced), "the lost writes changed nothing");
}

#[tokio::test]
async fn of_many_concurrent_writes_on_one_region_version_exactly_one_applies() {
    let Some(store) = table().await else { return };
    let admin = caller("admin-1", Role::Admin);
    let first =
        tax::put_tax_region(&store, &store, &admin, "FR".parse().unwrap(), vat(200_000), Utc::now()).await.unwrap();
    let store = Arc::new(store);
    let tasks: Vec<_> = (0..8u32)
        .map(|i| {
            let (store, first) = (store.clone(), first.clone());
            tokio::spawn(async move {
                let next = TaxRegion::put(first.region.clone(), vat(100_000 + i), Some(&first), Utc::now()).unwrap();
                store.put_tax_region(&next, Some(first.version)).await.map(|()| next)
            })
        })
        .collect();
    let mut won = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(next) => won.push(next),
            Err(err) => assert_eq!(err.code(), ErrorCode::VersionConflict),
        }
    }
    assert_eq!(won.len(), 1, "exactly one writer of version 1 wins");
    let stored = store.list_tax_regions().await.unwrap();
    assert_eq!(stored, won);
}

#[tokio::test]
async fn shipping_methods_round_trip_per_seller_and_no_seller_sees_anothers() {
    let Some(store) = table().await else { return };
    let (a, b) = (caller("seller-a", Role::Seller), caller("seller-b", Role::Seller));
    let standard =
        methods::create_shipping_method(&store, &store, &a, None, method_input("Standard", &["US", "CA"]), Utc::now())
            .await
            .unwrap();
    let express =
        methods::create_shipping_method(&store, &store, &a, None, method_input("Express", &["US"]), Utc::now())
            .await
            .unwrap();
    let theirs =
        methods::create_shipping_method(&store, &store, &b, None, method_input("Standard", &["US"]), Utc::now())
            .await
            .unwrap();

    assert_eq!(methods::get_shipping_method(&store, &a, None, &standard.method_id).await.unwrap(), standard);
    let mut own = vec![standard.clone(), express.clone()];
    own.sort_by(|x, y| x.method_id.cmp(&y.method_id));
    assert_eq!(methods::list_shipping_methods(&store, &a, None).await.unwrap(), own);
    assert_eq!(methods::list_shipping_methods(&store, &b, None).await.unwrap(), vec![theirs.clone()]);
    assert_eq!(store.get_shipping_method("seller-a", &theirs.method_id).await.unwrap(), None);
    let peek = methods::get_shipping_method(&store, &a, None, &theirs.method_id).await;
    assert!(matches!(peek, Err(DomainError::NotFound { .. })), "{peek:?}");

    let overlap =
        methods::create_shipping_method(&store, &store, &a, None, method_input("standard", &["CA"]), Utc::now()).await;
    assert!(matches!(overlap, Err(DomainError::Conflict { code: ErrorCode::ShippingMethodOverlap, .. })));

    let patch: ShippingMethodPatch = serde_json::from_value(json!({"name": "Ground", "max_days": 9})).unwrap();
    let updated = methods::update_shipping_method(&store, &a, None, &standard.method_id, patch, Some(1), Utc::now())
        .await
        .unwrap();
    assert_eq!(store.get_shipping_method("seller-a", &standard.method_id).await.unwrap(), Some(updated.clone()));
    assert_eq!((updated.name.as_str(), updated.max_days, updated.version), ("Ground", 9, 2));

    methods::delete_shipping_method(&store, &store, &a, None, &express.method_id).await.unwrap();
    assert_eq!(methods::list_shipping_methods(&store, &a, None).await.unwrap(), vec![updated]);
    assert_eq!(methods::list_shipping_methods(&store, &b, None).await.unwrap(), vec![theirs], "untouched");
}

#[tokio::test]
async fn a_method_write_or_delete_on_another_version_is_409_and_changes_nothing() {
    let Some(store) = table().await else { return };
    let method = ShippingMethod::create(
        ShippingMethodId::generate(),
        "seller-a",
        method_input("Standard", &["US"]),
        &[],
        Utc::now(),
    )
    .unwrap();
    store.put_shipping_method(&method, None).await.unwrap();
    assert!(is_version_conflict(&store.put_shipping_method(&method, None).await), "a new method must not exist");
    let patch: ShippingMethodPatch = serde_json::from_value(json!({"min_days": 1})).unwrap();
    let next = method.patched(patch, std::slice::from_ref(&method), Utc::now()).unwrap();
    assert!(is_version_conflict(&store.put_shipping_method(&next, Some(2)).await));
    store.put_shipping_method(&next, Some(1)).await.unwrap();
    assert!(is_version_conflict(&store.delete_shipping_method(&method).await), "a delete of version 1 is stale");
    assert_eq!(store.get_shipping_method("seller-a", &method.method_id).await.unwrap(), Some(next.clone()));
    store.delete_shipping_method(&next).await.unwrap();
    assert_eq!(store.get_shipping_method("seller-a", &method.method_id).await.unwrap(), None);
}

#[tokio::test]
async fn of_many_concurrent_patches_with_if_match_exactly_one_applies() {
    let Some(store) = table().await else { return };
    let seller = caller("seller-a", Role::Seller);
    let method =
        methods::create_shipping_method(&store, &store, &seller, None, method_input("Standard", &["US"]), Utc::now())
            .await
            .unwrap();
    let store = Arc::new(store);
    let tasks: Vec<_> = (0..8u32)
        .map(|i| {
            let (store, seller, id) = (store.clone(), seller.clone(), method.method_id.clone());
            tokio::spawn(async move {
                let patch: ShippingMethodPatch = serde_json::from_value(json!({"max_days": 10 + i})).unwrap();
                methods::update_shipping_method(&*store, &seller, None, &id, patch, Some(1), Utc::now()).await
            })
        })
        .collect();
    let mut won = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(updated) => won.push(updated),
            Err(err) => assert_eq!(err.code(), ErrorCode::VersionConflict),
        }
    }
    assert_eq!(won.len(), 1, "exactly one patch of version 1 applies");
    assert_eq!(store.get_shipping_method("seller-a", &method.method_id).await.unwrap(), won.pop());
}
