//! The demo catalog the local stack loads at start: a category tree with attribute definitions and 300 active
//! products (`prd_demo-0001` ... `prd_demo-0300`), written through the catalog adapter so that the items are
//! exactly the ones the API writes. The data itself is `commerce_demo::catalog`.

use anyhow::{Context as _, Result};
use commerce_aws::catalog::DynamoCatalog;
use commerce_demo::catalog as demo;

/// Seeds `catalog_table`; `sellers` are the demo sellers' subs (the first owns three products in four).
/// Running it again overwrites the same ids. Returns the number of products.
pub async fn seed(aws: &aws_config::SdkConfig, catalog_table: &str, sellers: &[String]) -> Result<usize> {
    let catalog = DynamoCatalog::new(aws_sdk_dynamodb::Client::new(aws), catalog_table);
    demo::seed(&catalog, sellers).await.with_context(|| format!("seeding the demo catalog into {catalog_table}"))
}
