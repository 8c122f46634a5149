//! The catalog table's item layout: keys, index keys and the conversion of domain values to items and back.
//! One place knows the layout; docs/DATA_MODEL.md describes it.
//!
//! - product `PRODUCT#<id> / PRODUCT`: the whole product; `gsi1` `CATEGORY_PRODUCTS#<leaf>` (every status,
//!   for the "category in use" check), `gsi3` `SELLER#<seller>` by creation time.
//! - listing `PRODUCT#<id> / LISTING#<category>`: one per category on the product's path, only while active;
//!   a product summary; `gsi1` `LISTING#<category>` by creation time, `gsi2` by lowest price.
//! - SKU `SKU#<sku> / SKU`: the variant as other slices read it while a product has it; once no product has
//!   it, a retired marker (`entity = sku_retired`, `sku`, `seller_id`, `retired_at`, no `product_id`) that
//!   keeps the SKU its seller's for good. Either way its existence makes the SKU taken.
//! - category `CATEGORIES / CATEGORY#<id>`: the whole category.

use crate::dynamo::{sortable_micros, to_item};
use chrono::{DateTime, Utc};
use commerce_domain::catalog::{Category, Product, ProductSummary, SkuView};
use commerce_domain::error::Result;

pub use crate::dynamo::{from_item, key, s, Index, Item, PK, SK};

pub const ENTITY: &str = "entity";
pub const PRODUCT_SK: &str = "PRODUCT";
pub const SKU_SK: &str = "SKU";
pub const CATEGORIES_PK: &str = "CATEGORIES";
/// The attribute only a live SKU item has (a retired one names no product).
pub const PRODUCT_ID: &str = "product_id";

/// Listings by category, newest first; also products by leaf category in any status.
pub const GSI1: Index = crate::dynamo::GSI1;
/// Listings by category and lowest price.
pub const GSI2: Index = crate::dynamo::GSI2;
/// Products by seller, newest first.
pub const GSI3: Index = crate::dynamo::GSI3;

pub fn product_pk(product_id: &str) -> String {
    format!("PRODUCT#{product_id}")
}

pub fn listing_sk(category_id: &str) -> String {
    format!("LISTING#{category_id}")
}

pub fn listing_partition(category_id: &str) -> String {
    format!("LISTING#{category_id}")
}

pub fn category_products_partition(category_id: &str) -> String {
    format!("CATEGORY_PRODUCTS#{category_id}")
}

pub fn seller_partition(seller_id: &str) -> String {
    format!("SELLER#{seller_id}")
}

pub fn sku_pk(sku: &str) -> String {
    format!("SKU#{sku}")
}

pub fn category_sk(category_id: &str) -> String {
    format!("CATEGORY#{category_id}")
}

pub fn product_key(product_id: &str) -> Item {
    key(product_pk(product_id), PRODUCT_SK)
}

pub fn listing_key(product_id: &str, category_id: &str) -> Item {
    key(product_pk(product_id), listing_sk(category_id))
}

pub fn sku_key(sku: &str) -> Item {
    key(sku_pk(sku), SKU_SK)
}

pub fn category_key(category_id: &str) -> Item {
    key(CATEGORIES_PK.to_owned(), category_sk(category_id))
}

fn newest_sk(product: &Product) -> String {
    format!("{}#{}", sortable_micros(product.created_at), product.product_id)
}

fn price_sk(product: &Product) -> String {
    format!("{:012}#{}", product.price_min.amount.max(0), product.product_id)
}

fn with(mut item: Item, attributes: impl IntoIterator<Item = (&'static str, String)>) -> Item {
    for (name, value) in attributes {
        item.insert(name.to_owned(), s(value));
    }
    item
}

pub fn product_item(product: &Product) -> Result<Item> {
    Ok(with(
        to_item(product)?,
        [
            (PK, product_pk(&product.product_id)),
            (SK, PRODUCT_SK.to_owned()),
            (ENTITY, "product".to_owned()),
            (GSI1.pk, category_products_partition(&product.category_id)),
            (GSI1.sk, newest_sk(product)),
            (GSI3.pk, seller_partition(&product.seller_id)),
            (GSI3.sk, newest_sk(product)),
        ],
    ))
}

/// The categories a product is listed under: its whole path while active, none otherwise.
pub fn listed_under(product: &Product) -> &[String] {
    if product.is_public() {
        &product.category_path
    } else {
        &[]
    }
}

pub fn listing_items(product: &Product) -> Result<Vec<Item>> {
    let summary: ProductSummary = product.summary();
    listed_under(product)
        .iter()
        .map(|category_id| {
            Ok(with(
                to_item(&summary)?,
                [
                    (PK, product_pk(&product.product_id)),
                    (SK, listing_sk(category_id)),
                    (ENTITY, "listing".to_owned()),
                    (GSI1.pk, listing_partition(category_id)),
                    (GSI1.sk, newest_sk(product)),
                    (GSI2.pk, listing_partition(category_id)),
                    (GSI2.sk, price_sk(product)),
                ],
            ))
        })
        .collect()
}

pub fn sku_items(product: &Product) -> Result<Vec<(String, Item)>> {
    product
        .sku_views()
        .into_iter()
        .map(|view: SkuView| {
            let item =
                with(to_item(&view)?, [(PK, sku_pk(&view.sku)), (SK, SKU_SK.to_owned()), (ENTITY, "sku".to_owned())]);
            Ok((view.sku, item))
        })
        .collect()
}

/// The marker left when no product has `sku` any more: it keeps the SKU `seller_id`'s.
pub fn retired_sku_item(sku: &str, seller_id: &str, at: &DateTime<Utc>) -> Item {
    with(
        key(sku_pk(sku), SKU_SK),
        [
            (ENTITY, "sku_retired".to_owned()),
            ("sku", sku.to_owned()),
            ("seller_id", seller_id.to_owned()),
            ("retired_at", sortable_micros(*at)),
        ],
    )
}

/// Whether a SKU item is a product's variant (not a retired marker).
pub fn is_live_sku(item: &Item) -> bool {
    item.contains_key(PRODUCT_ID)
}

pub fn category_item(category: &Category) -> Result<Item> {
    Ok(with(
        to_item(category)?,
        [(PK, CATEGORIES_PK.to_owned()), (SK, category_sk(&category.category_id)), (ENTITY, "category".to_owned())],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use commerce_domain::catalog::{CategoryInput, CategoryTree, ProductInput, ProductStatus};

    fn product(status: &str) -> Product {
        let now = Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).single().unwrap();
        let root = CategoryTree::default()
            .create("cat_a".into(), CategoryInput { name: "A".into(), parent_id: None, attributes: vec![] }, now)
            .unwrap();
        let leaf = CategoryTree::new([root.clone()])
            .create(
                "cat_b".into(),
                CategoryInput { name: "B".into(), parent_id: Some("cat_a".into()), attributes: vec![] },
                now,
            )
            .unwrap();
        let input: ProductInput = serde_json::from_value(serde_json::json!({
            "title": "Thing", "category_id": "cat_b", "status": status,
            "attributes": {"ram_gb": 16, "cpu": "M3", "touch": false, "colors": ["red"]},
            "variants": [{"sku": "A-1", "price": {"amount": 705, "currency": "USD"}},
                         {"sku": "A-2", "options": {"size": "L"}, "price": {"amount": 900, "currency": "USD"}}]
        }))
        .unwrap();
        Product::create("prd_x".into(), "s1".into(), input, &CategoryTree::new([root, leaf]), now).unwrap()
    }

    fn get<'a>(item: &'a Item, name: &str) -> &'a str {
        item[name].as_s().unwrap()
    }

    #[test]
    fn product_item_round_trips_and_carries_index_keys() {
        let p = product("active");
        let item = product_item(&p).unwrap();
        assert_eq!(get(&item, "pk"), "PRODUCT#prd_x");
        assert_eq!(get(&item, "gsi1pk"), "CATEGORY_PRODUCTS#cat_b");
        assert_eq!(get(&item, "gsi3pk"), "SELLER#s1");
        assert_eq!(get(&item, "gsi3sk"), "2025-01-02T03:04:05.000000Z#prd_x");
        assert!(item["attributes"].as_m().unwrap()["ram_gb"].as_n().is_ok());
        let back: Product = from_item(item).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn active_products_are_listed_under_every_ancestor() {
        let items = listing_items(&product("active")).unwrap();
        let partitions: Vec<&str> = items.iter().map(|i| get(i, "gsi1pk")).collect();
        assert_eq!(partitions, vec!["LISTING#cat_a", "LISTING#cat_b"]);
        assert_eq!(get(&items[0], "gsi2sk"), "000000000705#prd_x");
        let summary: ProductSummary = from_item(items[0].clone()).unwrap();
        assert_eq!(summary.price_min.amount, 705);
        assert_eq!(summary.status, ProductStatus::Active);
        assert!(listing_items(&product("draft")).unwrap().is_empty());
    }

    #[test]
    fn a_retired_sku_keeps_its_seller_and_names_no_product() {
        let item = retired_sku_item("A-1", "s1", &Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).single().unwrap());
        assert_eq!((get(&item, "pk"), get(&item, "sk"), get(&item, "seller_id")), ("SKU#A-1", "SKU", "s1"));
        assert!(!is_live_sku(&item));
        assert!(sku_items(&product("active")).unwrap().iter().all(|(_, item)| is_live_sku(item)));
    }

    #[test]
    fn sku_items_carry_the_view() {
        let items = sku_items(&product("active")).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(get(&items[1].1, "pk"), "SKU#A-2");
        let view: SkuView = from_item(items[1].1.clone()).unwrap();
        assert_eq!(view.components[0].sku, "A-2");
        assert_eq!(view.price.amount, 900);
    }
}
