//! DynamoDB for the adapters' tests: a client of the local emulator named by `LOCAL_AWS_ENDPOINT` (moto
//! behind `infra/moto_launcher.py`), and fresh tables keyed as every table of the stack is (`pk`, `sk`,
//! strings) with `gsi<k>` indexes (`gsi<k>pk`, `gsi<k>sk`).

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType,
};
use aws_sdk_dynamodb::Client;

/// The emulator's endpoint; `None`, saying why the test is skipped, when it is not set.
pub fn local_endpoint() -> Option<String> {
    let endpoint = std::env::var("LOCAL_AWS_ENDPOINT").ok().filter(|e| !e.is_empty());
    if endpoint.is_none() {
        eprintln!("skipped: LOCAL_AWS_ENDPOINT is not set (start infra/moto_launcher.py and point it there)");
    }
    endpoint
}

/// A client of the emulator at `endpoint`, with test credentials.
pub async fn local_client(endpoint: &str) -> Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "test"))
        .load()
        .await;
    Client::new(&config)
}

/// `prefix` and a fresh suffix: a table name no other test uses.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", ulid::Ulid::new().to_string().to_lowercase())
}

/// Creates the on-demand table `name` keyed by `pk`/`sk`, with one global secondary index per entry of
/// `indexes` (its name `gsi<k>`, keyed by `gsi<k>pk`/`gsi<k>sk`, and its projection).
pub async fn create_table(client: &Client, name: &str, indexes: &[(&str, ProjectionType)]) {
    let mut attributes = vec![string_attribute("pk"), string_attribute("sk")];
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema("pk", "sk")));
    for (index, projection) in indexes {
        let (pk, sk) = (format!("{index}pk"), format!("{index}sk"));
        attributes.extend([string_attribute(&pk), string_attribute(&sk)]);
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(*index)
                .set_key_schema(Some(key_schema(&pk, &sk)))
                .projection(Projection::builder().projection_type(projection.clone()).build())
                .build()
                .expect("name, key schema and projection are set"),
        );
    }
    request.set_attribute_definitions(Some(attributes)).send().await.expect("create table");
}

fn string_attribute(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .expect("name and type are set")
}

fn key_schema(hash: &str, range: &str) -> Vec<KeySchemaElement> {
    vec![
        KeySchemaElement::builder()
            .attribute_name(hash)
            .key_type(KeyType::Hash)
            .build()
            .expect("name and type are set"),
        KeySchemaElement::builder()
            .attribute_name(range)
            .key_type(KeyType::Range)
            .build()
            .expect("name and type are set"),
    ]
}
