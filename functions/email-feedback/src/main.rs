//! SES feedback: the configuration set publishes bounces and complaints to an SNS topic, the topic to
//! MailFeedbackQueue, and this consumer adds hard-bounced and complaining addresses to the mail table's
//! suppression list, which send-emails checks before every email.

mod handler;

use commerce_aws::mail::DynamoMail;
use commerce_lambda::config;
use commerce_lambda::telemetry;
use lambda_runtime::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let aws = config::aws().await;
    let mail = DynamoMail::new(aws_sdk_dynamodb::Client::new(&aws), config::required("MAIL_TABLE")?);
    run(service_fn(|event| handler::handle(&mail, event))).await
}
