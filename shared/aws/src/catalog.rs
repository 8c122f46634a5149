//! The catalog on DynamoDB (`CATALOG_TABLE`). Every product write is one TransactWriteItems: the product item
//! (conditioned on its version), its SKU items (a SKU belongs to at most one product, and only ever to one
//! seller) and its listing items, so listings and SKU lookups never disagree with the product. Layout:
//! `items`, docs/DATA_MODEL.md.

pub mod items;

use crate::dynamo::{applied, built, n, sdk_error, Cancellation, Table, CONDITION_FAILED, TRANSACTION_CONFLICT};
use aws_sdk_dynamodb::types::{ConditionCheck, Delete, KeysAndAttributes, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use chrono::Utc;
use commerce_app::ports::{
    CategoryListing, CategoryReader, CategoryUsage, CategoryWriter, ProductCreator, ProductReader, ProductRemover,
    ProductUpdater, SellerProducts, SkuCatalog,
};
use commerce_domain::catalog::{Category, CategoryQuery, ListSort, Page, PageLimit, Product, ProductSummary, SkuView};
use commerce_domain::error::ErrorCode;
use commerce_domain::error::{DomainError, Result};
use futures::FutureExt;
use items::{Index, Item, GSI1, GSI2, GSI3};
use std::collections::{BTreeSet, HashMap};

/// The catalog table, implementing every catalog port. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DynamoCatalog {
    table: Table,
}

/// What a transaction action protects, to explain a cancellation.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Guard {
    Product,
    Category,
    Sku(String),
    None,
}

/// A SKU item may become this product's variant if it is new, already this product's, or retired by the same
/// seller: a SKU never changes seller, so its stock and flash sales never do either.
const SKU_FREE_OR_OURS: &str =
    "attribute_not_exists(pk) OR product_id = :pid OR (attribute_not_exists(product_id) AND seller_id = :sid)";
/// A SKU item may be retired by the product that has it.
const SKU_OURS: &str = "attribute_not_exists(pk) OR product_id = :pid";
/// A product or category write on the version that was read (`:expected`).
const VERSION_IS_EXPECTED: &str = "#version = :expected";

impl DynamoCatalog {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { table: Table::new(client, table) }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        self.table.name()
    }

    fn put(&self, item: Item) -> Put {
        self.table.put(item).build().expect("table and item are set")
    }

    fn delete(&self, key: Item) -> Delete {
        self.table.delete(key).build().expect("table and key are set")
    }

    fn sku_put(&self, product: &Product, item: Item) -> Put {
        let mut put = self.put(item);
        put.condition_expression = Some(SKU_FREE_OR_OURS.to_owned());
        put.expression_attribute_values = Some(HashMap::from([
            (":pid".to_owned(), items::s(&product.product_id)),
            (":sid".to_owned(), items::s(&product.seller_id)),
        ]));
        put
    }

    /// Replaces the product's SKU item by the retired marker that keeps the SKU its seller's.
    fn sku_retire(&self, product: &Product, sku: &str) -> (Guard, TransactWriteItem) {
        let mut put = self.put(items::retired_sku_item(sku, &product.seller_id, &Utc::now()));
        put.condition_expression = Some(SKU_OURS.to_owned());
        put.expression_attribute_values = Some(HashMap::from([(":pid".to_owned(), items::s(&product.product_id))]));
        (Guard::Sku(sku.to_owned()), TransactWriteItem::builder().put(put).build())
    }

    fn category_exists(&self, category_id: &str) -> ConditionCheck {
        self.table
            .condition_check(items::category_key(category_id))
            .condition_expression("attribute_exists(pk)")
            .build()
            .expect("table, key and condition are set")
    }

    /// Runs a transaction and explains a cancellation by the first failed guard.
    async fn transact(&self, actions: Vec<(Guard, TransactWriteItem)>, product_exists_code: ErrorCode) -> Result<()> {
        let (guards, writes): (Vec<Guard>, Vec<TransactWriteItem>) = actions.into_iter().unzip();
        let result = self.table.client().transact_write_items().set_transact_items(Some(writes)).send().boxed().await;
        let err = match result {
            Ok(_) => return Ok(()),
            Err(err) => err,
        };
        let Some(cancellation) = Cancellation::of(&err) else { return Err(sdk_error(err)) };
        for (i, guard) in guards.iter().enumerate() {
            match (cancellation.code(i), guard) {
                (Some(CONDITION_FAILED), Guard::Product) => {
                    return Err(DomainError::conflict(product_exists_code, "the product changed concurrently"))
                }
                (Some(CONDITION_FAILED), Guard::Category) => {
                    return Err(DomainError::validation("category_id", "unknown category"))
                }
                (Some(CONDITION_FAILED), Guard::Sku(sku)) => {
                    return Err(DomainError::conflict(
                        ErrorCode::SkuTaken,
                        format!("SKU {sku} belongs to another product"),
                    ))
                }
                (Some(TRANSACTION_CONFLICT), _) => {
                    return Err(DomainError::conflict(ErrorCode::VersionConflict, "the product changed concurrently"))
                }
                _ => {}
            }
        }
        Err(sdk_error(err))
    }

    /// Writes demo or migrated categories and products with the same items the API writes, without
    /// conditions, in BatchWriteItem chunks. Returns the number of items written.
    pub async fn import(&self, categories: &[Category], products: &[Product]) -> Result<usize> {
        let mut all = Vec::new();
        for category in categories {
            all.push(items::category_item(category)?);
        }
        for product in products {
            all.push(items::product_item(product)?);
            all.extend(items::listing_items(product)?);
            all.extend(items::sku_items(product)?.into_iter().map(|(_, item)| item));
        }
        self.table.batch_put(&all).await?;
        Ok(all.len())
    }

    async fn query_page<T: serde::de::DeserializeOwned>(
        &self,
        index: Index,
        partition: String,
        forward: bool,
        limit: PageLimit,
        cursor: Option<&str>,
    ) -> Result<(Vec<T>, Option<String>)> {
        let query = self
            .table
            .query()
            .index_name(index.name)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", index.pk)
            .expression_attribute_values(":pk", items::s(&partition))
            .scan_index_forward(forward)
            .limit(limit.get() as i32);
        let (found, next) = self.table.page(query, index, &partition, cursor).await?;
        let found = found.into_iter().map(items::from_item).collect::<Result<Vec<T>>>()?;
        Ok((found, next))
    }
}

impl ProductReader for DynamoCatalog {
    async fn get_product(&self, product_id: &str) -> Result<Option<Product>> {
        self.table.get_as(items::product_key(product_id)).await
    }
}

impl ProductCreator for DynamoCatalog {
    async fn create_product(&self, product: &Product) -> Result<()> {
        let mut product_put = self.put(items::product_item(product)?);
        product_put.condition_expression = Some("attribute_not_exists(pk)".to_owned());
        let mut actions = vec![
            (Guard::Product, TransactWriteItem::builder().put(product_put).build()),
            (
                Guard::Category,
                TransactWriteItem::builder().condition_check(self.category_exists(&product.category_id)).build(),
            ),
        ];
        for item in items::listing_items(product)? {
            actions.push((Guard::None, TransactWriteItem::builder().put(self.put(item)).build()));
        }
        for (sku, item) in items::sku_items(product)? {
            let put = self.sku_put(product, item);
            actions.push((Guard::Sku(sku), TransactWriteItem::builder().put(put).build()));
        }
        self.transact(actions, ErrorCode::ProductExists).await
    }
}

impl ProductUpdater for DynamoCatalog {
    async fn replace_product(&self, current: &Product, next: &Product) -> Result<()> {
        let product_put = built(
            self.table
                .put(items::product_item(next)?)
                .condition_expression(VERSION_IS_EXPECTED)
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":expected", n(current.version))
                .build(),
        )?;
        let mut actions = vec![(Guard::Product, TransactWriteItem::builder().put(product_put).build())];
        if next.category_id != current.category_id {
            let check = self.category_exists(&next.category_id);
            actions.push((Guard::Category, TransactWriteItem::builder().condition_check(check).build()));
        }
        let listed_now: BTreeSet<&String> = items::listed_under(next).iter().collect();
        for gone in items::listed_under(current).iter().filter(|c| !listed_now.contains(c)) {
            let delete = self.delete(items::listing_key(&current.product_id, gone));
            actions.push((Guard::None, TransactWriteItem::builder().delete(delete).build()));
        }
        for item in items::listing_items(next)? {
            actions.push((Guard::None, TransactWriteItem::builder().put(self.put(item)).build()));
        }
        let skus_now: BTreeSet<&str> = next.variants.iter().map(|v| v.sku.as_str()).collect();
        for gone in current.variants.iter().filter(|v| !skus_now.contains(v.sku.as_str())) {
            actions.push(self.sku_retire(current, &gone.sku));
        }
        for (sku, item) in items::sku_items(next)? {
            let put = self.sku_put(next, item);
            actions.push((Guard::Sku(sku), TransactWriteItem::builder().put(put).build()));
        }
        self.transact(actions, ErrorCode::VersionConflict).await
    }
}

impl ProductRemover for DynamoCatalog {
    async fn delete_product(&self, product: &Product) -> Result<()> {
        let product_delete = built(
            self.table
                .delete(items::product_key(&product.product_id))
                .condition_expression(VERSION_IS_EXPECTED)
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":expected", n(product.version))
                .build(),
        )?;
        let mut actions = vec![(Guard::Product, TransactWriteItem::builder().delete(product_delete).build())];
        for category_id in items::listed_under(product) {
            let delete = self.delete(items::listing_key(&product.product_id, category_id));
            actions.push((Guard::None, TransactWriteItem::builder().delete(delete).build()));
        }
        for variant in &product.variants {
            actions.push(self.sku_retire(product, &variant.sku));
        }
        self.transact(actions, ErrorCode::VersionConflict).await
    }
}

impl CategoryListing for DynamoCatalog {
    async fn list_category(&self, query: &CategoryQuery) -> Result<Page<ProductSummary>> {
        let (index, forward) = match query.sort {
            ListSort::Newest => (GSI1, false),
            ListSort::PriceAsc => (GSI2, true),
            ListSort::PriceDesc => (GSI2, false),
        };
        let partition = items::listing_partition(&query.category_id);
        let (items, next_cursor) =
            self.query_page(index, partition, forward, query.limit, query.cursor.as_deref()).await?;
        Ok(Page { items, next_cursor })
    }
}

impl SellerProducts for DynamoCatalog {
    async fn list_seller(&self, seller_id: &str, limit: PageLimit, cursor: Option<&str>) -> Result<Page<Product>> {
        let partition = items::seller_partition(seller_id);
        let (items, next_cursor) = self.query_page(GSI3, partition, false, limit, cursor).await?;
        Ok(Page { items, next_cursor })
    }
}

impl SkuCatalog for DynamoCatalog {
    async fn variants_by_sku(&self, skus: &[String]) -> Result<Vec<SkuView>> {
        let wanted: Vec<&String> = {
            let mut seen = BTreeSet::new();
            skus.iter().filter(|s| commerce_domain::catalog::is_valid_sku(s) && seen.insert(s.as_str())).collect()
        };
        let mut found: HashMap<String, SkuView> = HashMap::with_capacity(wanted.len());
        for chunk in wanted.chunks(100) {
            let keys: Vec<Item> = chunk.iter().map(|sku| items::sku_key(sku)).collect();
            let request = built(KeysAndAttributes::builder().set_keys(Some(keys)).build())?;
            for item in self.table.batch_get(request).await?.into_iter().filter(items::is_live_sku) {
                let view: SkuView = items::from_item(item)?;
                found.insert(view.sku.clone(), view);
            }
        }
        Ok(wanted.into_iter().filter_map(|sku| found.remove(sku.as_str())).collect())
    }
}

impl CategoryReader for DynamoCatalog {
    async fn list_categories(&self) -> Result<Vec<Category>> {
        let query = self
            .table
            .query()
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", items::s(items::CATEGORIES_PK));
        self.table.query_all(query).await?.into_iter().map(items::from_item).collect()
    }
}

impl CategoryWriter for DynamoCatalog {
    async fn put_category(&self, category: &Category, expected_version: Option<u64>) -> Result<()> {
        let mut request = self.table.put_item().set_item(Some(items::category_item(category)?));
        request = match expected_version {
            None => request.condition_expression("attribute_not_exists(pk)"),
            Some(version) => request
                .condition_expression(VERSION_IS_EXPECTED)
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":expected", n(version)),
        };
        if applied(request.send().boxed().await)? {
            return Ok(());
        }
        Err(match expected_version {
            None => DomainError::conflict(ErrorCode::CategoryExists, "the category already exists"),
            Some(_) => DomainError::conflict(ErrorCode::VersionConflict, "the category changed concurrently; retry"),
        })
    }

    async fn delete_category(&self, category: &Category) -> Result<()> {
        let result = self
            .table
            .delete_item()
            .set_key(Some(items::category_key(&category.category_id)))
            .condition_expression(VERSION_IS_EXPECTED)
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":expected", n(category.version))
            .send()
            .boxed()
            .await;
        if !applied(result)? {
            return Err(DomainError::conflict(ErrorCode::VersionConflict, "the category changed concurrently; retry"));
        }
        Ok(())
    }
}

impl CategoryUsage for DynamoCatalog {
    async fn category_in_use(&self, category_id: &str) -> Result<bool> {
        let output = self
            .table
            .query()
            .index_name(GSI1.name)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", GSI1.pk)
            .expression_attribute_values(":pk", items::s(items::category_products_partition(category_id)))
            .limit(1)
            .send()
            .boxed()
            .await
            .map_err(sdk_error)?;
        Ok(output.count > 0)
    }
}
