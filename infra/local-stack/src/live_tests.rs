//! Provisioning, the AWS endpoint and demo users against a real moto (installed into `.local/venv` on first
//! run): tables, queues, pools and a state machine whose Task invokes a real local function process through
//! the endpoint; DynamoDB conditional writes under real concurrency.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::aws_proxy::{self, AwsProxy};
use crate::lambda::Lambdas;
use crate::moto::{self, Moto, MotoFiles};
use crate::provision::{self, Options};
use crate::stack::sdk_config;
use crate::template::{Environment, Template};
use crate::users;

/// A function speaking the Lambda Runtime API: echoes its event, or fails with the event's `fail` errorType.
const ECHO_RUNTIME: &str = r#"#!/usr/bin/env python3
import json, os, urllib.request
base = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"
def post(path, body):
    urllib.request.urlopen(urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST")).read()
while True:
    r = urllib.request.urlopen(base + "/invocation/next")
    rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
    event = json.loads(r.read() or b"null")
    if isinstance(event, dict) and event.get("fail"):
        post("/invocation/" + rid + "/error", {"errorType": event["fail"], "errorMessage": "failed on purpose"})
    else:
        post("/invocation/" + rid + "/response", {"echo": event, "table": os.environ.get("TABLE")})
"#;

const TEMPLATE: &str = r#"
Globals:
  Function:
    Timeout: 5
Resources:
  Pool:
    Type: AWS::Cognito::UserPool
    Properties:
      UsernameAttributes: [email]
      Policies:
        PasswordPolicy: {MinimumLength: 12, RequireNumbers: true, RequireSymbols: false}
  Client:
    Type: AWS::Cognito::UserPoolClient
    Properties:
      UserPoolId: !Ref Pool
      ExplicitAuthFlows: [ALLOW_USER_PASSWORD_AUTH, ALLOW_REFRESH_TOKEN_AUTH]
  Shoppers:
    Type: AWS::Cognito::UserPoolGroup
    Properties: {UserPoolId: !Ref Pool, GroupName: shoppers}
  Sellers:
    Type: AWS::Cognito::UserPoolGroup
    Properties: {UserPoolId: !Ref Pool, GroupName: sellers}
  Admins:
    Type: AWS::Cognito::UserPoolGroup
    Properties: {UserPoolId: !Ref Pool, GroupName: admins}
  Stock:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
        - {AttributeName: gsi1pk, AttributeType: S}
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
      GlobalSecondaryIndexes:
        - IndexName: gsi1
          KeySchema: [{AttributeName: gsi1pk, KeyType: HASH}]
          Projection: {ProjectionType: KEYS_ONLY}
      StreamSpecification: {StreamViewType: NEW_AND_OLD_IMAGES}
      TimeToLiveSpecification: {AttributeName: expires_at, Enabled: true}
  WorkDlq:
    Type: AWS::SQS::Queue
    Properties: {FifoQueue: true}
  Work:
    Type: AWS::SQS::Queue
    Properties:
      FifoQueue: true
      ContentBasedDeduplication: true
      VisibilityTimeout: 45
      RedrivePolicy: {deadLetterTargetArn: !GetAtt WorkDlq.Arn, maxReceiveCount: 3}
  SigningSecret:
    Type: AWS::SecretsManager::Secret
    Properties:
      Name: !Sub ${AWS::StackName}-signing-secret
      GenerateSecretString: {PasswordLength: 40, ExcludePunctuation: true}
  Echo:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties: {Binary: echo}
    Properties:
      Environment:
        Variables: {TABLE: !Ref Stock, SECRET_ARN: !Ref SigningSecret}
  Flow:
    Type: AWS::Serverless::StateMachine
    Properties:
      DefinitionSubstitutions:
        EchoArn: !GetAtt Echo.Arn
        QueueUrl: !Ref Work
      Definition:
        StartAt: Call
        States:
          Call:
            Type: Task
            Resource: arn:aws:states:::lambda:invoke
            Parameters: {FunctionName: "${EchoArn}", "Payload.$": "$"}
            OutputPath: $.Payload
            Catch:
              - ErrorEquals: [OutOfStock]
                Next: Compensate
            End: true
          Compensate:
            Type: Pass
            Result: {compensated: true, queue: "${QueueUrl}"}
            End: true
"#;

struct Live {
    moto: Moto,
    shutdown: CancellationToken,
    aws: aws_config::SdkConfig,
    lambdas: Lambdas,
    provisioned: provision::Provisioned,
    template: Template,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn start() -> Live {
    start_with(None).await
}

/// A live emulator and endpoint with `template` (a file) provisioned, or [`TEMPLATE`] if `None`.
async fn start_with(template: Option<&Path>) -> Live {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let files = MotoFiles::under(&root);
    let python = moto::ensure_venv(&files).await.expect("moto venv");
    let dir = TempDir(std::env::temp_dir().join(format!("local-stack-live-{}", ulid::Ulid::new())));
    std::fs::create_dir_all(&dir.0).expect("temp dir");
    let echo = dir.0.join("echo");
    std::fs::write(&echo, ECHO_RUNTIME).expect("write runtime");
    std::fs::set_permissions(&echo, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let aws_port = listener.local_addr().expect("addr").port();
    let moto = Moto::start(&python, &files, 0, aws_port, &dir.0.join("moto.log")).await.expect("moto starts");
    moto.configure().await.expect("configure");
    let (control, _rx) = tokio::sync::mpsc::channel(1);
    let proxy = AwsProxy::new(moto.port, control);
    let shutdown = CancellationToken::new();
    tokio::spawn(aws_proxy::serve(listener, Arc::clone(&proxy), shutdown.clone()));
    let aws = sdk_config(&format!("http://127.0.0.1:{aws_port}")).await;

    let env = Environment { search_dir: dir.0.join("search"), api_url: "http://127.0.0.1:1".into() };
    let mut template = match template {
        Some(path) => Template::load(path, &BTreeMap::new(), &env).expect("template"),
        None => Template::parse(TEMPLATE, dir.0.clone(), &BTreeMap::new(), &env).expect("template"),
    };
    let opts = Options { aws_port, bin_dir: dir.0.clone(), schedule_interval: None };
    let provisioned = provision::provision(&mut template, &aws, &opts).await.expect("provision");
    let base = BTreeMap::from([
        ("AWS_ENDPOINT_URL".to_string(), format!("http://127.0.0.1:{aws_port}")),
        ("AWS_REGION".to_string(), "us-east-1".to_string()),
    ]);
    let lambdas = Lambdas::start(provisioned.plan.functions.clone(), base).expect("lambdas");
    proxy.set_lambdas(Some(lambdas.clone()));
    Live { moto, shutdown, aws, lambdas, provisioned, template, _dir: dir }
}

impl Live {
    async fn stop(mut self) {
        self.shutdown.cancel();
        self.lambdas.shutdown().await;
        self.moto.stop().await;
    }
}

async fn run_execution(sfn: &aws_sdk_sfn::Client, arn: &str, input: Value) -> (String, Value) {
    let name = format!("t-{}", ulid::Ulid::new());
    let started =
        sfn.start_execution().state_machine_arn(arn).name(name).input(input.to_string()).send().await.expect("start");
    for _ in 0..100 {
        let d = sfn.describe_execution().execution_arn(started.execution_arn()).send().await.expect("describe");
        if d.status().as_str() != "RUNNING" {
            let output = d.output().map(|o| serde_json::from_str(o).expect("json output")).unwrap_or(Value::Null);
            return (d.status().as_str().to_string(), output);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("execution did not finish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_the_template_is_provisioned_should_create_everything_and_invoke_functions_from_step_functions() {
    let live = start().await;
    let ddb = aws_sdk_dynamodb::Client::new(&live.aws);
    let sqs = aws_sdk_sqs::Client::new(&live.aws);
    let sfn = aws_sdk_sfn::Client::new(&live.aws);

    let table = ddb.describe_table().table_name("commerce-local-Stock").send().await.expect("table exists");
    let table = table.table().expect("description");
    assert_eq!(table.global_secondary_indexes()[0].index_name(), Some("gsi1"));
    assert!(table.latest_stream_arn().is_some());
    let ttl = ddb.describe_time_to_live().table_name("commerce-local-Stock").send().await.expect("ttl");
    assert_eq!(ttl.time_to_live_description().and_then(|t| t.attribute_name()), Some("expires_at"));

    let work_url = &live.provisioned.names["Work"];
    assert!(work_url.ends_with("/commerce-local-Work.fifo"), "{work_url}");
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(work_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .expect("queue attributes");
    let attrs = attrs.attributes().expect("attributes");
    assert_eq!(attrs[&aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout], "45");
    let redrive: Value =
        serde_json::from_str(&attrs[&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy]).expect("redrive json");
    assert_eq!(redrive["deadLetterTargetArn"], "arn:aws:sqs:us-east-1:123456789012:commerce-local-WorkDlq.fifo");

    let flow = live.template.resolver.attribute("Flow", "Arn").and_then(Value::as_str).expect("arn").to_string();
    let (status, output) = run_execution(&sfn, &flow, json!({"sku": "A-1"})).await;
    assert_eq!(status, "SUCCEEDED", "{output}");
    assert_eq!(output, json!({"echo": {"sku": "A-1"}, "table": "commerce-local-Stock"}));
    let (status, output) = run_execution(&sfn, &flow, json!({"fail": "OutOfStock"})).await;
    assert_eq!(status, "SUCCEEDED", "Catch on the function's errorType: {output}");
    assert_eq!(output, json!({"compensated": true, "queue": work_url}));

    let lambda_unknown = reqwest::Client::new()
        .post(format!("{}/2015-03-31/functions/Nope/invocations", live.aws.endpoint_url().expect("endpoint")))
        .body("{}")
        .send()
        .await
        .expect("invoke");
    assert_eq!(lambda_unknown.status(), 404);
    assert_eq!(lambda_unknown.headers()["x-amzn-errortype"], "ResourceNotFoundException");
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_a_template_secret_is_provisioned_should_hold_a_generated_value_behind_its_arn() {
    let live = start().await;
    let arn = live.provisioned.plan.functions["Echo"].environment["SECRET_ARN"].clone();
    assert!(
        arn.starts_with("arn:aws:secretsmanager:us-east-1:123456789012:secret:commerce-local-signing-secret"),
        "{arn}"
    );
    let secrets = aws_sdk_secretsmanager::Client::new(&live.aws);
    let value = secrets.get_secret_value().secret_id(&arn).send().await.expect("the secret has a value");
    let value = value.secret_string().expect("a string value").to_string();
    assert_eq!(value.len(), 40, "{value}");
    assert!(value.chars().all(|c| c.is_ascii_alphanumeric()), "no punctuation: {value}");
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_demo_users_are_created_should_sign_in_with_fixed_subs_and_groups() {
    let live = start().await;
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&live.aws);
    let pool = live.provisioned.user_pool.clone().expect("pool");
    let demo = users::create_demo_users(&cognito, &live.moto, &pool).await.expect("demo users");
    assert_eq!(demo.users.len(), 5);
    for (name, group, sub) in users::DEMO_USERS {
        let token = users::id_token(&cognito, &pool, name).await.expect("token");
        let claims = claims(&token);
        assert_eq!(claims["sub"], sub, "{name}");
        assert_eq!(claims["cognito:groups"], json!([group]), "{name}");
        assert_eq!(claims["email"], format!("{name}@example.com"));
        assert_eq!(claims["aud"], pool.client_id.as_str());
        assert_eq!(claims["iss"], pool.issuer.as_str());
    }
    let token = users::id_token(&cognito, &pool, "shopper-42").await.expect("created on first use");
    assert_eq!(claims(&token)["cognito:groups"], json!(["shoppers"]));
    let again = users::id_token(&cognito, &pool, "shopper-42").await.expect("exists now");
    assert_eq!(claims(&again)["sub"], claims(&token)["sub"]);
    assert!(users::id_token(&cognito, &pool, "mallory").await.is_err());
    live.stop().await;
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("jwt payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64");
    serde_json::from_slice(&bytes).expect("claims json")
}

/// The launcher serializes DynamoDB: 64 concurrent clients x 10 conditional decrements of stock 100 must
/// succeed exactly 100 times and leave 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_many_clients_decrement_stock_conditionally_should_never_oversell() {
    let live = start().await;
    let ddb = aws_sdk_dynamodb::Client::new(&live.aws);
    let table = "commerce-local-Stock";
    ddb.put_item()
        .table_name(table)
        .item("pk", AttributeValue::S("sku".into()))
        .item("stock", AttributeValue::N("100".into()))
        .send()
        .await
        .expect("put");
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let ddb = ddb.clone();
        tasks.push(tokio::spawn(async move {
            let mut ok = 0u32;
            for _ in 0..10 {
                let r = ddb
                    .update_item()
                    .table_name(table)
                    .key("pk", AttributeValue::S("sku".into()))
                    .update_expression("SET stock = stock - :one")
                    .condition_expression("stock >= :one")
                    .expression_attribute_values(":one", AttributeValue::N("1".into()))
                    .send()
                    .await;
                match r {
                    Ok(_) => ok += 1,
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {}
                    Err(e) => panic!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(&e)),
                }
            }
            ok
        }));
    }
    let mut successes = 0;
    for t in tasks {
        successes += t.await.expect("task");
    }
    let item = ddb
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S("sku".into()))
        .consistent_read(true)
        .send()
        .await
        .expect("get");
    assert_eq!(successes, 100);
    assert_eq!(item.item().and_then(|i| i.get("stock")), Some(&AttributeValue::N("0".into())));
    live.stop().await;
}

/// A multipart/alternative order email as the send-emails function builds it: display names, an encoded
/// subject, a quoted-printable text part and a base64 HTML part.
fn order_email(to: &str) -> String {
    [
        "From: Commerce Demo Shop <orders@shop.example.com>",
        &format!("To: Ada Lovelace <{to}>"),
        "Subject: =?utf-8?q?Order_ord=5F42_confirmed_=E2=9C=94?=",
        "Message-ID: <ord_42.confirmed@shop.example.com>",
        "MIME-Version: 1.0",
        "Content-Type: multipart/alternative; boundary=\"alt-1\"",
        "",
        "--alt-1",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: quoted-printable",
        "",
        "Thanks, Ada =E2=80=94 your order ord_42 is confirmed.",
        "--alt-1",
        "Content-Type: text/html; charset=utf-8",
        "Content-Transfer-Encoding: base64",
        "",
        &base64::engine::general_purpose::STANDARD.encode("<p>Thanks, Ada &mdash; your order ord_42 is confirmed.</p>"),
        "--alt-1--",
        "",
    ]
    .join("\r\n")
}

async fn send_raw(
    sesv2: &aws_sdk_sesv2::Client,
    from: &str,
    to: &str,
    raw: String,
) -> Result<String, aws_sdk_sesv2::error::SdkError<aws_sdk_sesv2::operation::send_email::SendEmailError>> {
    use aws_sdk_sesv2::types::{Destination, EmailContent, RawMessage};
    let content = EmailContent::builder()
        .raw(RawMessage::builder().data(aws_sdk_sesv2::primitives::Blob::new(raw)).build().expect("raw message"))
        .build();
    let out = sesv2
        .send_email()
        .from_email_address(from)
        .destination(Destination::builder().to_addresses(to).build())
        .content(content)
        .configuration_set_name("commerce-local-mail")
        .send()
        .await?;
    Ok(out.message_id().expect("a message id").to_string())
}

/// The real template's mail resources in the emulator: the domain identity sends (SES v2, raw MIME, through
/// the local endpoint), the launcher lists what was sent, an unverified sender is refused, and a bounce from
/// the mailbox simulator reaches MailFeedbackQueue through the topic, as an SNS envelope.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_the_real_template_is_provisioned_should_send_mail_and_feed_bounces_back_to_the_queue() {
    use aws_sdk_sesv2::error::ProvideErrorMetadata as _;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let live = start_with(Some(&root.join("template.yaml"))).await;
    let sesv2 = aws_sdk_sesv2::Client::new(&live.aws);

    let identity = sesv2.get_email_identity().email_identity("shop.example.com").send().await.expect("identity");
    assert_eq!(identity.configuration_set_name(), Some("commerce-local-mail"));
    // GetConfigurationSet is not read back: moto 5.2.5 answers SendingOptions.SendingEnabled as an object.
    let sets = sesv2.list_configuration_sets().send().await.expect("sets");
    assert_eq!(sets.configuration_sets(), ["commerce-local-mail".to_string()]);
    let topic = live.template.resolver.attribute("MailFeedbackTopic", "Ref").and_then(Value::as_str).expect("topic");
    assert!(topic.starts_with("arn:aws:sns:us-east-1:123456789012:commerce-local-MailFeedbackTopic"), "{topic}");

    let id = send_raw(&sesv2, "orders@shop.example.com", "ada@example.com", order_email("ada@example.com"))
        .await
        .map_err(|e| aws_sdk_sesv2::error::DisplayErrorContext(e).to_string())
        .expect("a verified domain sends");
    let sent = crate::mail::fetch(&live.moto.url()).await.expect("sent list");
    let ours = sent.iter().find(|m| m.id == id).expect("the message is listed");
    assert_eq!(ours.source.as_deref(), Some("orders@shop.example.com"));
    assert!(ours.raw.as_deref().is_some_and(|r| r.contains("multipart/alternative")), "{ours:?}");
    let mail = crate::mail::view(ours);
    assert_eq!(mail.to, vec!["ada@example.com".to_string()]);
    assert_eq!(mail.subject.as_deref(), Some("Order ord_42 confirmed ✔"));
    assert_eq!(mail.text.as_deref().map(str::trim_end), Some("Thanks, Ada — your order ord_42 is confirmed."));
    assert_eq!(mail.html.as_deref(), Some("<p>Thanks, Ada &mdash; your order ord_42 is confirmed.</p>"));

    let refused = send_raw(&sesv2, "orders@elsewhere.example.net", "ada@example.com", order_email("ada@example.com"))
        .await
        .expect_err("an unverified domain is refused");
    let status = refused.raw_response().map(|r| r.status().as_u16());
    println!("unverified sender: HTTP {status:?}, code {:?}: {}", refused.code(), refused.message().unwrap_or(""));
    assert_eq!(status, Some(400), "{}", aws_sdk_sesv2::error::DisplayErrorContext(&refused));

    let bounce_id = send_raw(
        &sesv2,
        "orders@shop.example.com",
        "bounce@simulator.amazonses.com",
        order_email("bounce@simulator.amazonses.com"),
    )
    .await
    .expect("the simulator address is accepted");
    let sqs = aws_sdk_sqs::Client::new(&live.aws);
    let queue = &live.provisioned.names["MailFeedbackQueue"];
    let received = sqs
        .receive_message()
        .queue_url(queue)
        .wait_time_seconds(5)
        .max_number_of_messages(10)
        .send()
        .await
        .expect("receive");
    let messages = received.messages();
    assert_eq!(messages.len(), 1, "one notification for the bounce: {messages:?}");
    let body = messages[0].body().expect("a body");
    println!("MailFeedbackQueue body after sending {bounce_id} to the bounce simulator:\n{body}");
    let envelope: Value = serde_json::from_str(body).expect("the body is JSON");
    assert_eq!(envelope["Type"], "Notification");
    assert_eq!(envelope["TopicArn"], topic);
    let message = match &envelope["Message"] {
        Value::String(s) => serde_json::from_str::<Value>(s).expect("Message is JSON text"),
        other => other.clone(),
    };
    assert_eq!(message["bounce"]["bounceType"], "Permanent", "{message}");
    let handle = messages[0].receipt_handle().expect("receipt handle");
    sqs.delete_message().queue_url(queue).receipt_handle(handle).send().await.expect("delete");

    send_raw(
        &sesv2,
        "orders@shop.example.com",
        "complaint@simulator.amazonses.com",
        order_email("complaint@simulator.amazonses.com"),
    )
    .await
    .expect("the simulator address is accepted");
    let received = sqs.receive_message().queue_url(queue).wait_time_seconds(5).send().await.expect("receive");
    let envelope: Value =
        serde_json::from_str(received.messages()[0].body().expect("a body")).expect("the body is JSON");
    assert_eq!(envelope["Message"]["complaint"]["complainedRecipients"][0]["emailAddress"], "recipient1@example.com");
    let handle = received.messages()[0].receipt_handle().expect("receipt handle");
    sqs.delete_message().queue_url(queue).receipt_handle(handle).send().await.expect("delete");
    let again = sqs.receive_message().queue_url(queue).wait_time_seconds(1).send().await.expect("receive");
    assert!(again.messages().is_empty(), "ordinary sends make no notification: {:?}", again.messages());

    // `local-stack mail` against this emulator: a stack.json naming it, then one without a live process.
    let state_dir = live._dir.0.join("state");
    crate::state::StackInfo {
        api_url: "http://127.0.0.1:1".into(),
        aws_endpoint: live.aws.endpoint_url().expect("endpoint").to_string(),
        moto_url: live.moto.url(),
        region: "us-east-1".into(),
        user_pool_id: None,
        user_pool_client_id: None,
        issuer: None,
        state_dir: state_dir.clone(),
        pid: std::process::id(),
    }
    .write()
    .expect("stack.json");
    crate::mail::run(Some("ADA@example.com"), &state_dir).await.expect("mail lists the running stack's emails");
    let err = crate::mail::run(None, &live._dir.0.join("no-state")).await.expect_err("no stack");
    assert!(err.to_string().starts_with("no running stack in "), "{err}");
    live.stop().await;
}

/// The launcher writes DynamoDB's item answers itself (`fast_item_responses`): every attribute type, binary
/// values that are not UTF-8 and nesting come back from each reading and writing action exactly as written.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_items_are_read_back_every_attribute_type_should_arrive_as_written() {
    use aws_sdk_dynamodb::primitives::Blob;
    use aws_sdk_dynamodb::types::{KeysAndAttributes, ReturnValue, TransactGetItem};
    use std::collections::HashMap;

    let live = start().await;
    let ddb = aws_sdk_dynamodb::Client::new(&live.aws);
    let table = "commerce-local-Stock";
    let bytes = vec![0u8, 159, 146, 150, 255, b'"', b'\\'];
    let item: HashMap<String, AttributeValue> = HashMap::from([
        ("pk".to_string(), AttributeValue::S("types".into())),
        ("gsi1pk".to_string(), AttributeValue::S("g \"quoted\" \\ é ✓".into())),
        ("n".to_string(), AttributeValue::N("-12345678901234567890.5".into())),
        ("b".to_string(), AttributeValue::B(Blob::new(bytes.clone()))),
        ("ss".to_string(), AttributeValue::Ss(vec!["a".into(), "b\nc".into()])),
        ("ns".to_string(), AttributeValue::Ns(vec!["1".into(), "9223372036854775807".into()])),
        ("bs".to_string(), AttributeValue::Bs(vec![Blob::new(bytes.clone()), Blob::new(vec![1u8])])),
        ("null".to_string(), AttributeValue::Null(true)),
        ("bool".to_string(), AttributeValue::Bool(false)),
        (
            "m".to_string(),
            AttributeValue::M(HashMap::from([
                ("l".to_string(), AttributeValue::L(vec![AttributeValue::B(Blob::new(bytes.clone()))])),
                ("empty".to_string(), AttributeValue::M(HashMap::new())),
            ])),
        ),
    ]);
    let key = HashMap::from([("pk".to_string(), AttributeValue::S("types".into()))]);
    // Sets come back in any order, as from DynamoDB.
    let normal = |mut m: HashMap<String, AttributeValue>| {
        for v in m.values_mut() {
            match v {
                AttributeValue::Ss(s) | AttributeValue::Ns(s) => s.sort(),
                AttributeValue::Bs(s) => s.sort_by(|a, b| a.as_ref().cmp(b.as_ref())),
                _ => {}
            }
        }
        m
    };
    let expected = normal(item.clone());

    ddb.put_item().table_name(table).set_item(Some(item.clone())).send().await.expect("put");
    let old = ddb
        .put_item()
        .table_name(table)
        .set_item(Some(item.clone()))
        .return_values(ReturnValue::AllOld)
        .send()
        .await
        .expect("put again");
    assert_eq!(normal(old.attributes.expect("old item")), expected, "PutItem ALL_OLD");
    let got = ddb.get_item().table_name(table).set_key(Some(key.clone())).send().await.expect("get");
    assert_eq!(normal(got.item.expect("item")), expected, "GetItem");
    let queried = ddb
        .query()
        .table_name(table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S("types".into()))
        .send()
        .await
        .expect("query");
    assert_eq!(queried.items().len(), 1);
    assert_eq!(normal(queried.items()[0].clone()), expected, "Query");
    let scanned = ddb.scan().table_name(table).send().await.expect("scan");
    let found = scanned.items().iter().find(|i| i.get("pk") == key.get("pk")).expect("scanned item");
    assert_eq!(normal(found.clone()), expected, "Scan");
    let batch = ddb
        .batch_get_item()
        .request_items(table, KeysAndAttributes::builder().keys(key.clone()).build().expect("keys"))
        .send()
        .await
        .expect("batch get");
    let batch_items = batch.responses.expect("responses").remove(table).expect("table's items");
    assert_eq!(normal(batch_items[0].clone()), expected, "BatchGetItem");
    let transact = ddb
        .transact_get_items()
        .transact_items(
            TransactGetItem::builder()
                .get(
                    aws_sdk_dynamodb::types::Get::builder()
                        .table_name(table)
                        .set_key(Some(key.clone()))
                        .build()
                        .expect("get"),
                )
                .build(),
        )
        .send()
        .await
        .expect("transact get");
    let transact_item = transact.responses()[0].item.clone().expect("item");
    assert_eq!(normal(transact_item), expected, "TransactGetItems");
    let updated = ddb
        .update_item()
        .table_name(table)
        .set_key(Some(key.clone()))
        .update_expression("SET bool = :t")
        .expression_attribute_values(":t", AttributeValue::Bool(true))
        .return_values(ReturnValue::AllNew)
        .send()
        .await
        .expect("update");
    let mut after = expected.clone();
    after.insert("bool".into(), AttributeValue::Bool(true));
    assert_eq!(normal(updated.attributes.expect("new item")), after, "UpdateItem ALL_NEW");
    let deleted = ddb
        .delete_item()
        .table_name(table)
        .set_key(Some(key.clone()))
        .return_values(ReturnValue::AllOld)
        .send()
        .await
        .expect("delete");
    assert_eq!(normal(deleted.attributes.expect("old item")), after, "DeleteItem ALL_OLD");
    let gone = ddb.get_item().table_name(table).set_key(Some(key)).send().await.expect("get after delete");
    assert!(gone.item.is_none(), "deleted: {:?}", gone.item);
    live.stop().await;
}
