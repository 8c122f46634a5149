//! The tax region use cases over the in-memory fake.

use chrono::Utc;
use commerce_app::ports::TaxRegionReader;
use commerce_app::services::tax::{list_tax_regions, put_tax_region};
use commerce_domain::auth::{Caller, Role};
use commerce_domain::error::{DomainError, ErrorCode};
use commerce_domain::tax::{RegionCode, TaxRegionInput};
use commerce_testkit::shipping_config::{sample_shipping, InMemoryShippingConfig, ReadTogether};
use serde_json::json;

fn caller(id: &str, role: Role) -> Caller {
    Caller { user_id: id.into(), email: None, roles: vec![role] }
}

fn admin() -> Caller {
    caller("admin-1", Role::Admin)
}

fn region(code: &str) -> RegionCode {
    code.parse().unwrap()
}

fn input(value: serde_json::Value) -> TaxRegionInput {
    serde_json::from_value(value).unwrap()
}

fn vat(rate_ppm: u32) -> TaxRegionInput {
    input(json!({"prices_include_tax": true, "shipping_taxable": true,
                 "rates": [{"tax_class": "standard", "rate_ppm": rate_ppm, "name": "VAT"}]}))
}

fn field_of(err: DomainError) -> String {
    match err {
        DomainError::Validation { field, .. } => field,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[tokio::test]
async fn an_admin_creates_a_region_and_replacing_it_moves_its_version_on() {
    let store = InMemoryShippingConfig::new();
    let created = put_tax_region(&store, &store, &admin(), region("FR"), vat(200_000), Utc::now()).await.unwrap();
    assert_eq!((created.version, created.rates[0].rate_ppm), (1, 200_000));
    let replaced = put_tax_region(&store, &store, &admin(), region("FR"), vat(210_000), Utc::now()).await.unwrap();
    assert_eq!(replaced.version, 2);
    assert_eq!(store.stored_region("FR").unwrap(), replaced);
}

#[tokio::test]
async fn only_admins_read_or_write_regions() {
    let store = sample_shipping();
    for other in [caller("seller-1", Role::Seller), caller("shopper-1", Role::Shopper)] {
        let put = put_tax_region(&store, &store, &other, region("FR"), vat(200_000), Utc::now()).await;
        assert!(matches!(put, Err(DomainError::Forbidden(_))), "{put:?}");
        assert!(matches!(list_tax_regions(&store, &other).await, Err(DomainError::Forbidden(_))));
    }
    assert!(store.stored_region("FR").is_none());
}

#[tokio::test]
async fn regions_are_listed_by_code() {
    let store = sample_shipping();
    put_tax_region(&store, &store, &admin(), region("US"), vat(0), Utc::now()).await.unwrap();
    put_tax_region(&store, &store, &admin(), region("AT"), vat(200_000), Utc::now()).await.unwrap();
    let codes: Vec<String> =
        list_tax_regions(&store, &admin()).await.unwrap().into_iter().map(|r| r.region.to_string()).collect();
    assert_eq!(codes, ["AT", "DE", "US", "US-CA"]);
}

#[tokio::test]
async fn invalid_regions_are_refused_naming_the_field_and_nothing_is_written() {
    let store = InMemoryShippingConfig::new();
    let cases = [
        ("FR", vat(1_000_001), "rates[0].rate_ppm"),
        ("FR", input(json!({"prices_include_tax": false, "shipping_taxable": false, "rates": []})), "rates"),
        (
            "FR",
            input(json!({"prices_include_tax": false, "shipping_taxable": false, "rates": [
                {"tax_class": "standard", "rate_ppm": 1, "name": "A"},
                {"tax_class": "standard", "rate_ppm": 2, "name": "a"}]})),
            "rates[1].name",
        ),
        (
            "FR",
            input(json!({"prices_include_tax": false, "shipping_taxable": false, "combinable": true,
                         "rates": [{"tax_class": "standard", "rate_ppm": 1, "name": "A"}]})),
            "combinable",
        ),
        (
            "US-NY",
            input(json!({"prices_include_tax": false, "shipping_taxable": false,
                         "rates": [{"tax_class": "standard", "rate_ppm": 1, "name": "  "}]})),
            "rates[0].name",
        ),
    ];
    for (code, body, field) in cases {
        let err = put_tax_region(&store, &store, &admin(), region(code), body, Utc::now()).await.unwrap_err();
        assert_eq!(field_of(err), field);
    }
    assert!(store.list_tax_regions().await.unwrap().is_empty());
}

#[test]
fn a_malformed_region_code_is_a_bad_parameter() {
    for bad in ["", "us", "USA", "US-", "US-ABCD", "US_CA", "U1"] {
        let err = bad.parse::<RegionCode>().unwrap_err();
        assert!(matches!(&err, DomainError::InvalidParameter { field, .. } if field == "region"), "{bad}: {err:?}");
    }
}

#[tokio::test]
async fn of_two_admins_creating_one_region_at_once_one_wins_and_the_other_gets_409() {
    let store = ReadTogether::new(InMemoryShippingConfig::new());
    let (one, other) = (admin(), caller("admin-2", Role::Admin));
    let (first, second) = tokio::join!(
        put_tax_region(&store, &store, &one, region("FR"), vat(200_000), Utc::now()),
        put_tax_region(&store, &store, &other, region("FR"), vat(55_000), Utc::now()),
    );
    let (won, lost) = match (first, second) {
        (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won, lost),
        other => panic!("expected one winner and one conflict: {other:?}"),
    };
    assert_eq!(lost.code(), ErrorCode::VersionConflict);
    assert_eq!(store.inner.stored_region("FR").unwrap(), won, "the winner's write stands");
}

#[tokio::test]
async fn of_two_admins_replacing_one_region_at_once_one_wins_and_the_other_gets_409() {
    let store = ReadTogether::new(sample_shipping());
    let (one, other) = (admin(), caller("admin-2", Role::Admin));
    let (first, second) = tokio::join!(
        put_tax_region(&store, &store, &one, region("DE"), vat(160_000), Utc::now()),
        put_tax_region(&store, &store, &other, region("DE"), vat(200_000), Utc::now()),
    );
    assert_eq!(first.is_ok() as u8 + second.is_ok() as u8, 1, "{first:?} {second:?}");
    let lost = first.as_ref().err().or(second.as_ref().err()).unwrap();
    assert_eq!(lost.code(), ErrorCode::VersionConflict);
    assert_eq!(store.inner.stored_region("DE").unwrap().version, 2);
}
