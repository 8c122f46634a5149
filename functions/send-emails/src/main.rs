//! The emails queue's consumer: each message is an event someone is emailed about (an order's notification, a
//! flash-sale win, low stock, a disabled webhook); the email is rendered and sent through SES once per
//! recipient (the mail table's ledger), never to a suppressed address.

mod handler;

use commerce_aws::mail::{CognitoContacts, DynamoMail, SesMailer};
use commerce_domain::email::Shop;
use commerce_lambda::config;
use commerce_lambda::telemetry;
use lambda_runtime::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let aws = config::aws().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&aws);
    let shop = Shop { name: config::required("SHOP_NAME")?, base_url: config::required("SHOP_URL")? };
    let sender = SesMailer::new(
        aws_sdk_sesv2::Client::new(&aws),
        shop.name.clone(),
        config::required("MAIL_FROM")?,
        config::required("MAIL_CONFIGURATION_SET")?,
    );
    let ledger = DynamoMail::new(dynamo.clone(), config::required("MAIL_TABLE")?);
    let orders = commerce_lambda::wiring::orders(&dynamo)?;
    let contacts =
        CognitoContacts::new(aws_sdk_cognitoidentityprovider::Client::new(&aws), config::required("USER_POOL_ID")?);
    let deps = handler::Deps { sender: &sender, ledger: &ledger, orders: &orders, contacts: &contacts, shop: &shop };
    run(service_fn(|event| handler::handle(deps, event))).await
}
