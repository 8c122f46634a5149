//! `POST /v1/checkout`: prices the cart server-side (lines, shipping, taxes), writes the pending order and
//! starts the checkout saga, under an `Idempotency-Key`.

mod handler;

use commerce_aws::cart::DynamoCarts;
use commerce_aws::catalog::DynamoCatalog;
use commerce_aws::flash_sale::DynamoFlashSales;
use commerce_aws::jwt::JwtVerifier;
use commerce_aws::orders::{DynamoOrders, SfnCheckoutStarter};
use commerce_aws::shipping_config::DynamoShippingConfig;
use commerce_lambda::config;
use commerce_lambda::telemetry;
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let aws = config::aws().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&aws);
    let dynamo_promotions = dynamo.clone();
    let catalog_table = config::required("CATALOG_TABLE")?;
    let carts = DynamoCarts::new(dynamo.clone(), config::required("CARTS_TABLE")?);
    let deps = handler::Deps {
        carts: carts.clone(),
        catalog: DynamoCatalog::new(dynamo.clone(), catalog_table.clone()),
        tables: DynamoShippingConfig::new(dynamo.clone(), catalog_table),
        quotes: carts,
        flash: DynamoFlashSales::without_inventory(dynamo.clone(), config::required("FLASH_SALES_TABLE")?),
        orders: DynamoOrders::new(dynamo, config::required("ORDERS_TABLE")?),
        starter: SfnCheckoutStarter::new(
            aws_sdk_sfn::Client::new(&aws),
            config::required("CHECKOUT_STATE_MACHINE_ARN")?,
        ),
        verifier: JwtVerifier::from_env()?,
        promotions: commerce_aws::promotions::DynamoPromotions::new(
            dynamo_promotions,
            config::required("PROMOTIONS_TABLE")?,
        ),
    };
    run(service_fn(|req| handler::handle(&deps, req))).await
}
