//! Composition roots several functions share: the adapters a group of functions needs, built once per cold
//! start from the configuration template.yaml gives them.

use crate::config::{self, FromEnv};
use commerce_app::services::cart::CartContext;
use commerce_app::services::orders::RestockingDeps;
use commerce_aws::cart::DynamoCarts;
use commerce_aws::catalog::DynamoCatalog;
use commerce_aws::flash_sale::DynamoFlashSales;
use commerce_aws::inventory::DynamoInventory;
use commerce_aws::jwt::JwtVerifier;
use commerce_aws::orders::{DynamoOrders, SqsOrderEvents};
use commerce_aws::payments::ConfiguredProvider;
use commerce_domain::cart::{CartHolds, CartLimits};

type InitError = Box<dyn std::error::Error + Send + Sync>;

/// The cart functions' composition root: the carts, catalog and inventory tables (CARTS_TABLE, CATALOG_TABLE,
/// INVENTORY_TABLE), the cart limits, reserve at add-to-cart (`CartHolds::from_env`) and the JWT verifier for
/// optional bearer tokens. Called once per cold start.
pub async fn cart_context() -> Result<CartContext<DynamoCarts, DynamoCatalog, DynamoInventory, JwtVerifier>, InitError>
{
    let carts_table = config::required("CARTS_TABLE")?;
    let catalog_table = config::required("CATALOG_TABLE")?;
    let inventory_table = config::required("INVENTORY_TABLE")?;
    let limits = CartLimits::from_env()?;
    let holds = CartHolds::from_env()?;
    let resolver = JwtVerifier::from_env()?;
    let client = aws_sdk_dynamodb::Client::new(&config::aws().await);
    Ok(CartContext {
        store: DynamoCarts::new(client.clone(), carts_table),
        catalog: DynamoCatalog::new(client.clone(), catalog_table),
        stock: DynamoInventory::new(client, inventory_table),
        resolver,
        limits,
        holds,
    })
}

/// The composition root of the order changes that give stock and money back (cancel-order, approve-return):
/// ORDERS_TABLE, INVENTORY_TABLE, FLASH_SALES_TABLE, ORDER_EVENTS_QUEUE_URL and the configured payment
/// provider. Called once per cold start.
pub async fn restocking_deps() -> Result<
    RestockingDeps<DynamoOrders, DynamoInventory, DynamoFlashSales, ConfiguredProvider, SqsOrderEvents>,
    InitError,
> {
    let aws = config::aws().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&aws);
    let inventory_table = config::required("INVENTORY_TABLE")?;
    let flash_table = config::required("FLASH_SALES_TABLE")?;
    Ok(RestockingDeps {
        orders: orders(&dynamo)?,
        inventory: DynamoInventory::new(dynamo.clone(), inventory_table.clone()),
        flash: DynamoFlashSales::new(dynamo, flash_table, inventory_table),
        provider: ConfiguredProvider::from_env(&aws).await?,
        events: SqsOrderEvents::new(aws_sdk_sqs::Client::new(&aws), config::required("ORDER_EVENTS_QUEUE_URL")?),
    })
}

/// The composition root of a seller's shipment and partial refunds (ship-order, refund-order-part):
/// ORDERS_TABLE, ORDER_EVENTS_QUEUE_URL and the configured payment provider. Called once per cold start.
pub async fn payment_deps(
) -> Result<commerce_app::services::orders::PaymentDeps<DynamoOrders, ConfiguredProvider, SqsOrderEvents>, InitError> {
    let aws = config::aws().await;
    Ok(commerce_app::services::orders::PaymentDeps {
        orders: DynamoOrders::new(aws_sdk_dynamodb::Client::new(&aws), config::required("ORDERS_TABLE")?),
        provider: ConfiguredProvider::from_env(&aws).await?,
        events: SqsOrderEvents::new(aws_sdk_sqs::Client::new(&aws), config::required("ORDER_EVENTS_QUEUE_URL")?),
    })
}

/// The carriers a quote asks for rates: the sandbox always, EasyPost when `CARRIER_RATES` is `easypost` (its key
/// read once from the secret EASYPOST_API_KEY_ARN names; EASYPOST_API_BASE overrides its address).
pub async fn carriers(aws: &aws_config::SdkConfig) -> Result<commerce_aws::shipping::Carriers, InitError> {
    let easypost_key = match std::env::var("CARRIER_RATES").as_deref() {
        Ok("easypost") => Some(config::secret(aws, "EASYPOST_API_KEY_ARN").await?),
        Ok("sandbox") | Err(_) => None,
        Ok(other) => {
            return Err(format!("CARRIER_RATES must be sandbox or easypost, not {other:?}").into());
        }
    };
    let base = std::env::var("EASYPOST_API_BASE").ok();
    Ok(commerce_aws::shipping::Carriers::from_env_parts(easypost_key, base)?)
}

/// The tax regions and shipping methods (on CATALOG_TABLE): what the tax-region and shipping-method functions
/// need. Called once per cold start.
pub async fn shipping_config() -> Result<commerce_aws::shipping_config::DynamoShippingConfig, InitError> {
    let table = config::required("CATALOG_TABLE")?;
    let aws = config::aws().await;
    Ok(commerce_aws::shipping_config::DynamoShippingConfig::new(aws_sdk_dynamodb::Client::new(&aws), table))
}

/// The promotions table (PROMOTIONS_TABLE): what the promotion functions and the cart reads that evaluate
/// promotions need. Called once per cold start.
pub async fn promotions() -> Result<commerce_aws::promotions::DynamoPromotions, InitError> {
    let table = config::required("PROMOTIONS_TABLE")?;
    let aws = config::aws().await;
    Ok(commerce_aws::promotions::DynamoPromotions::new(aws_sdk_dynamodb::Client::new(&aws), table))
}

/// The reviews table (REVIEWS_TABLE), with the orders table (ORDERS_TABLE) where template.yaml gives it (the
/// verified-purchase check of create-review), and the shop's review settings. Called once per cold start.
pub async fn reviews(
) -> Result<(commerce_aws::reviews::DynamoReviews, commerce_domain::review::ReviewSettings), InitError> {
    reviews_on(&aws_sdk_dynamodb::Client::new(&config::aws().await))
}

/// [`reviews`] on a client the function already made (one AWS configuration load per cold start).
pub fn reviews_on(
    client: &aws_sdk_dynamodb::Client,
) -> Result<(commerce_aws::reviews::DynamoReviews, commerce_domain::review::ReviewSettings), InitError> {
    let table = config::required("REVIEWS_TABLE")?;
    let settings = commerce_domain::review::ReviewSettings::from_env()?;
    let reviews = commerce_aws::reviews::DynamoReviews::new(client.clone(), table);
    Ok(match std::env::var("ORDERS_TABLE") {
        Ok(orders) if !orders.is_empty() => (reviews.with_orders(orders), settings),
        _ => (reviews, settings),
    })
}

/// The orders table (ORDERS_TABLE) for a function whose order writes move promotion counts: with
/// PROMOTIONS_TABLE when template.yaml gives it (confirm, compensation, cancel, return, reaper, hold).
pub fn orders(client: &aws_sdk_dynamodb::Client) -> Result<DynamoOrders, InitError> {
    let orders = DynamoOrders::new(client.clone(), config::required("ORDERS_TABLE")?);
    Ok(match std::env::var("PROMOTIONS_TABLE") {
        Ok(table) if !table.is_empty() => orders.with_promotions(table),
        _ => orders,
    })
}

/// The composition root of shipment tracking (deliver-order, track-shipment, carrier-webhook): the orders table
/// (ORDERS_TABLE) and the order events queue (ORDER_EVENTS_QUEUE_URL) deliveries are published to.
pub async fn tracking_deps(aws: &aws_config::SdkConfig) -> Result<(DynamoOrders, SqsOrderEvents), InitError> {
    Ok((
        DynamoOrders::new(aws_sdk_dynamodb::Client::new(aws), config::required("ORDERS_TABLE")?),
        SqsOrderEvents::new(aws_sdk_sqs::Client::new(aws), config::required("ORDER_EVENTS_QUEUE_URL")?),
    ))
}

/// The seller webhooks' composition root: the webhooks table (WEBHOOKS_TABLE), the deliveries queue
/// (WEBHOOK_DELIVERIES_QUEUE_URL, when the function sends to it) and each endpoint's pace
/// (WEBHOOK_RATE_PER_SEC, WEBHOOK_BURST). The HTTP client is [`outbound`], built only by the functions that
/// connect to endpoints.
pub struct WebhookDeps {
    pub store: commerce_aws::webhooks::DynamoWebhooks,
    pub queue: Option<commerce_aws::webhooks::SqsDeliveryQueue>,
    pub policy: commerce_app::services::webhooks::DeliveryPolicy,
}

/// The SSRF-safe client that registers (checks) and delivers to endpoints: http to loopback only with
/// WEBHOOK_ALLOW_LOOPBACK_HTTP=true, which the local stack sets.
pub fn outbound() -> Result<commerce_aws::outbound::Outbound, InitError> {
    let allow_loopback_http = config::parsed_or("WEBHOOK_ALLOW_LOOPBACK_HTTP", false)?;
    let settings = commerce_aws::outbound::OutboundConfig {
        allow_loopback_http,
        ..commerce_aws::outbound::OutboundConfig::default()
    };
    Ok(commerce_aws::outbound::Outbound::new(settings)?)
}

/// The webhooks table alone (WEBHOOKS_TABLE): the functions that only read or change endpoints.
pub fn webhooks_table(aws: &aws_config::SdkConfig) -> Result<commerce_aws::webhooks::DynamoWebhooks, InitError> {
    Ok(commerce_aws::webhooks::DynamoWebhooks::new(
        aws_sdk_dynamodb::Client::new(aws),
        config::required("WEBHOOKS_TABLE")?,
    ))
}

pub async fn webhook_deps(aws: &aws_config::SdkConfig) -> Result<WebhookDeps, InitError> {
    let defaults = commerce_app::services::webhooks::DeliveryPolicy::default();
    Ok(WebhookDeps {
        store: webhooks_table(aws)?,
        queue: std::env::var("WEBHOOK_DELIVERIES_QUEUE_URL")
            .ok()
            .filter(|url| !url.is_empty())
            .map(|url| commerce_aws::webhooks::SqsDeliveryQueue::new(aws_sdk_sqs::Client::new(aws), url)),
        policy: commerce_app::services::webhooks::DeliveryPolicy {
            rate_per_sec: config::parsed_or("WEBHOOK_RATE_PER_SEC", defaults.rate_per_sec)?,
            burst: config::parsed_or("WEBHOOK_BURST", defaults.burst)?,
            ..defaults
        },
    })
}

impl WebhookDeps {
    /// The deliveries queue, required by the functions that send to it.
    pub fn queue(&self) -> Result<&commerce_aws::webhooks::SqsDeliveryQueue, InitError> {
        self.queue.as_ref().ok_or_else(|| config::ConfigError::Missing("WEBHOOK_DELIVERIES_QUEUE_URL").into())
    }
}
