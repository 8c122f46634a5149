//! Tax regions and sellers' shipping methods on the catalog table (`CATALOG_TABLE`), beside the catalog they
//! price. Layout (docs/DATA_MODEL.md, CatalogTable):
//! - tax region `TAX / REGION#<code>`: the whole `TaxRegion`; all regions are one small partition, read whole;
//! - shipping method `SHIP#<seller_id> / METHOD#<method_id>`: the whole `ShippingMethod`; a seller's methods are
//!   one partition, so a method is only ever found under its own seller.
//!
//! Every write is one conditional item write on the version that was read (`attribute_not_exists(pk)` for a new
//! item); a failed condition is a lost race, 409 `version_conflict`. Reads are consistent: the use cases decide
//! on what they read and write on its version.

use crate::dynamo::{applied, from_item, key, n, s, to_item, Item, Table};
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::Client;
use commerce_app::ports::{ShippingMethodReader, ShippingMethodWriter, TaxRegionReader, TaxRegionWriter};
use commerce_domain::error::{DomainError, ErrorCode, Result};
use commerce_domain::ids::ShippingMethodId;
use commerce_domain::shipping::ShippingMethod;
use commerce_domain::tax::TaxRegion;
use futures::FutureExt;

/// The partition of every tax region.
const TAX_PK: &str = "TAX";
const ENTITY: &str = "entity";
const VERSION_IS_EXPECTED: &str = "#version = :expected";

fn region_sk(code: &str) -> String {
    format!("REGION#{code}")
}

fn region_key(code: &str) -> Item {
    key(TAX_PK, region_sk(code))
}

fn region_item(region: &TaxRegion) -> Result<Item> {
    let mut item = to_item(region)?;
    item.extend(region_key(region.region.as_str()));
    item.insert(ENTITY.to_owned(), s("tax_region"));
    Ok(item)
}

/// The partition of one seller's methods.
fn methods_pk(seller_id: &str) -> String {
    format!("SHIP#{seller_id}")
}

fn method_sk(method_id: &str) -> String {
    format!("METHOD#{method_id}")
}

fn method_key(seller_id: &str, method_id: &str) -> Item {
    key(methods_pk(seller_id), method_sk(method_id))
}

fn method_item(method: &ShippingMethod) -> Result<Item> {
    let mut item = to_item(method)?;
    item.extend(method_key(&method.seller_id, &method.method_id));
    item.insert(ENTITY.to_owned(), s("shipping_method"));
    Ok(item)
}

/// Tax regions and shipping methods on the catalog table, implementing their ports. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DynamoShippingConfig {
    table: Table,
}

impl DynamoShippingConfig {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { table: Table::new(client, table) }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        self.table.name()
    }

    /// Every item of partition `pk`, read consistently.
    async fn partition<T: serde::de::DeserializeOwned>(&self, pk: &str) -> Result<Vec<T>> {
        let query = self.table.query().key_condition_expression("pk = :pk").expression_attribute_values(":pk", s(pk));
        let items = self.table.query_all(query.consistent_read(true)).await?;
        items.into_iter().map(from_item).collect()
    }

    /// Puts `item` if the stored item is at `expected` (absent for `None`); 409 `version_conflict` otherwise.
    async fn put_on_version(&self, item: Item, expected: Option<u64>, what: &str) -> Result<()> {
        if applied(on_version(self.table.put_item().set_item(Some(item)), expected).send().boxed().await)? {
            return Ok(());
        }
        Err(DomainError::conflict(ErrorCode::VersionConflict, format!("the {what} changed concurrently; retry")))
    }
}

fn on_version(request: PutItemFluentBuilder, expected: Option<u64>) -> PutItemFluentBuilder {
    match expected {
        None => request.condition_expression("attribute_not_exists(pk)"),
        Some(version) => request
            .condition_expression(VERSION_IS_EXPECTED)
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":expected", n(version)),
    }
}

impl TaxRegionReader for DynamoShippingConfig {
    async fn list_tax_regions(&self) -> Result<Vec<TaxRegion>> {
        self.partition(TAX_PK).await
    }
}

impl TaxRegionWriter for DynamoShippingConfig {
    async fn put_tax_region(&self, region: &TaxRegion, expected_version: Option<u64>) -> Result<()> {
        self.put_on_version(region_item(region)?, expected_version, "tax region").await
    }
}

impl ShippingMethodReader for DynamoShippingConfig {
    async fn list_shipping_methods(&self, seller_id: &str) -> Result<Vec<ShippingMethod>> {
        self.partition(&methods_pk(seller_id)).await
    }

    async fn get_shipping_method(
        &self,
        seller_id: &str,
        method_id: &ShippingMethodId,
    ) -> Result<Option<ShippingMethod>> {
        self.table.get_as(method_key(seller_id, method_id)).await
    }
}

impl ShippingMethodWriter for DynamoShippingConfig {
    async fn put_shipping_method(&self, method: &ShippingMethod, expected_version: Option<u64>) -> Result<()> {
        self.put_on_version(method_item(method)?, expected_version, "shipping method").await
    }

    async fn delete_shipping_method(&self, method: &ShippingMethod) -> Result<()> {
        let result = self
            .table
            .delete_item()
            .set_key(Some(method_key(&method.seller_id, &method.method_id)))
            .condition_expression(VERSION_IS_EXPECTED)
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":expected", n(method.version))
            .send()
            .boxed()
            .await;
        if !applied(result)? {
            return Err(DomainError::conflict(
                ErrorCode::VersionConflict,
                "the shipping method changed concurrently; retry",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use commerce_domain::shipping::ShippingMethodInput;
    use commerce_domain::tax::TaxRegionInput;
    use serde_json::json;

    fn at() -> chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).single().unwrap()
    }

    fn get<'a>(item: &'a Item, name: &str) -> &'a str {
        item[name].as_s().unwrap()
    }

    #[test]
    fn a_region_item_is_keyed_under_tax_and_round_trips() {
        let input: TaxRegionInput = serde_json::from_value(json!({
            "prices_include_tax": false, "shipping_taxable": true, "combinable": true,
            "rates": [{"tax_class": "standard", "rate_ppm": 72500, "name": "CA"},
                      {"tax_class": "food", "rate_ppm": 0, "name": "CA food"}]
        }))
        .unwrap();
        let region = TaxRegion::put("US-CA".parse().unwrap(), input, None, at()).unwrap();
        let item = region_item(&region).unwrap();
        assert_eq!((get(&item, "pk"), get(&item, "sk"), get(&item, "entity")), ("TAX", "REGION#US-CA", "tax_region"));
        assert_eq!(from_item::<TaxRegion>(item).unwrap(), region);
    }

    #[test]
    fn a_method_item_is_keyed_under_its_seller_and_round_trips_every_rate() {
        let rates = [
            json!({"type": "flat", "amount": {"amount": 599, "currency": "USD"}}),
            json!({"type": "weight_tiers", "tiers": [{"up_to_grams": 500, "amount": {"amount": 400, "currency": "EUR"}},
                                                     {"up_to_grams": 4000000000u32, "amount": {"amount": 900, "currency": "EUR"}}]}),
            json!({"type": "free_over", "amount": {"amount": 0, "currency": "JPY"}, "threshold": {"amount": 10000000000i64, "currency": "JPY"}}),
            json!({"type": "carrier", "carrier": "easypost", "service": "Priority"}),
        ];
        for rate in rates {
            let input: ShippingMethodInput = serde_json::from_value(json!({
                "name": "Standard", "countries": ["US", "CA"], "rate": rate, "min_days": 0, "max_days": 365,
                "tax_class": "shipping_reduced"
            }))
            .unwrap();
            let method = ShippingMethod::create(ShippingMethodId::generate(), "seller-1", input, &[], at()).unwrap();
            let item = method_item(&method).unwrap();
            assert_eq!(get(&item, "pk"), "SHIP#seller-1");
            assert_eq!(get(&item, "sk"), format!("METHOD#{}", method.method_id));
            assert_eq!(get(&item, "entity"), "shipping_method");
            assert_eq!(from_item::<ShippingMethod>(item).unwrap(), method);
        }
    }
}
