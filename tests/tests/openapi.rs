//! The API description says what the server does: requests generated from docs/openapi.yaml for every operation
//! (schemathesis, see infra/openapi-check.sh and tests/openapi/) go to a stack of their own, and every answer must
//! be documented, none a 5xx, and no schema-valid request refused as malformed (400) or invalid (422).
//!
//! The run has its own stack (this binary's) because generated requests delete and change what they find. Its
//! seed is fixed, so `make test` sends the same requests every time; `OPENAPI_SEED=random` (or any number) and
//! `OPENAPI_MAX_EXAMPLES` explore further.

use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;
use system_tests::{repo_root, stack};

/// The seed `make test` runs with.
const SEED: &str = "20261204";
/// Generous: the run takes about a minute on an idle two-core machine.
const LIMIT: Duration = Duration::from_secs(900);

async fn call(method: reqwest::Method, path: &str, token: &str, body: Option<Value>) -> Value {
    let s = stack();
    let mut request = s.http().request(method, s.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

async fn webhook_secret(name: &str) -> String {
    let secrets = aws_sdk_secretsmanager::Client::new(&stack().sdk_config().await);
    let out = secrets.get_secret_value().secret_id(format!("commerce-local-{name}")).send().await;
    out.expect("the stack provisioned the webhook secret").secret_string().expect("a string value").to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_generated_from_the_openapi_document_get_the_answers_it_documents() {
    let s = stack();
    let (shopper, seller, admin) = (s.token("shopper").unwrap(), s.token("seller").unwrap(), s.token("admin").unwrap());
    // A root category without attribute definitions, for the generated products.
    let category = call(
        reqwest::Method::POST,
        "/v1/admin/categories",
        &admin,
        Some(json!({"name": format!("OpenAPI run {}", system_tests::unique("c"))})),
    )
    .await;
    let category_id = category["category_id"].as_str().expect("category id").to_owned();
    // A SKU of the seller's, for the generated flash sales.
    let products = call(reqwest::Method::GET, "/v1/seller/products?limit=5", &seller, None).await;
    let variant = &products["items"][0]["variants"][0];
    let (sku, currency) =
        (variant["sku"].as_str().expect("a demo SKU"), variant["price"]["currency"].as_str().unwrap());
    let secret = webhook_secret("payment-webhook-secret").await;
    let carrier_secret = webhook_secret("carrier-webhook-secret").await;

    let seed = std::env::var("OPENAPI_SEED").unwrap_or_else(|_| SEED.to_owned());
    let mut args = vec!["--max-examples".to_owned(), std::env::var("OPENAPI_MAX_EXAMPLES").unwrap_or("25".into())];
    if seed != "random" {
        args.extend(["--seed".to_owned(), seed]);
    }
    let mut command = Command::new(repo_root().join("infra/openapi-check.sh"));
    command
        .args(&args)
        .env("API_URL", s.url(""))
        .env("SHOPPER_TOKEN", &shopper)
        .env("SELLER_TOKEN", &seller)
        .env("ADMIN_TOKEN", &admin)
        .env("OPENAPI_OPEN_CATEGORY", &category_id)
        .env("OPENAPI_SELLER_SKU", sku)
        .env("OPENAPI_SELLER_CURRENCY", currency)
        .env("PAYMENT_WEBHOOK_SECRET", &secret)
        .env("CARRIER_WEBHOOK_SECRET", &carrier_secret);
    let output = tokio::time::timeout(LIMIT, tokio::task::spawn_blocking(move || command.output()))
        .await
        .expect("the OpenAPI run finishes in time")
        .expect("the OpenAPI run thread")
        .expect("infra/openapi-check.sh runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the OpenAPI run failed ({}):\n{stdout}\n{stderr}", output.status);
    // The run reached every operation of the document.
    let document = std::fs::read_to_string(repo_root().join("docs/openapi.yaml")).expect("docs/openapi.yaml");
    let operations = document.lines().filter(|line| line.trim_start().starts_with("operationId:")).count();
    assert!(operations > 40, "{operations} operations");
    assert!(stdout.contains(&format!("Tested: {operations}\n")), "not every operation was tested:\n{stdout}");
}
