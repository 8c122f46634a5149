//! The Lambda service against a real process speaking the Runtime API: a small Python runtime client that
//! behaves as the event tells it (echo, sleep, fail, crash), as an HTTP API function when the event has a
//! `rawPath` (answers per the `mode` query parameter), or as an SQS / stream consumer when it has `Records`
//! (logs each record to `$FAKE_LOG`, fails records marked `fail`, per `$FAKE_BATCH_MODE`).

use super::*;
use std::path::PathBuf;

const FAKE_RUNTIME: &str = r#"#!/usr/bin/env python3
import json, os, sys, time, urllib.request

base = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"

def post(path, payload, headers=None):
    req = urllib.request.Request(base + path, data=json.dumps(payload).encode(), method="POST")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    urllib.request.urlopen(req).read()

init = os.environ.get("FAKE_INIT", "")
if init == "crash":
    sys.exit(3)
if init == "error":
    post("/init/error", {"errorType": "Runtime.InitError", "errorMessage": "bad config"},
         {"Lambda-Runtime-Function-Error-Type": "Runtime.InitError"})
    time.sleep(30)
if init == "slow":
    time.sleep(30)

def http_answer(event):
    q = event.get("queryStringParameters") or {}
    mode = q.get("mode", "echo")
    if mode == "sleep":
        time.sleep(float(q.get("secs", "5")))
    if mode == "fail":
        return None
    if mode == "bare":
        return {"hello": "world"}
    if mode == "text":
        return "just text"
    if mode == "custom":
        return {"statusCode": 201, "headers": {"x-custom": "1", "content-type": "text/plain"},
                "cookies": ["a=1; Path=/", "b=2"], "multiValueHeaders": {"x-multi": ["m1", "m2"]},
                "body": "created"}
    if mode == "binary":
        return {"statusCode": 200, "headers": {"content-type": "application/octet-stream"},
                "isBase64Encoded": True, "body": "AAEC/w=="}
    if mode == "conditional":
        headers = {"etag": '"v1"', "cache-control": "public, max-age=30, s-maxage=60"}
        if (event.get("headers") or {}).get("if-none-match") == 'W/"v0", "v1"':
            return {"statusCode": 304, "headers": headers, "multiValueHeaders": {}, "isBase64Encoded": False,
                    "cookies": []}
        headers["content-type"] = "application/json"
        return {"statusCode": 200, "headers": headers, "body": json.dumps({"v": 1})}
    if mode == "big":
        return {"statusCode": 200, "body": "x" * (6 * 1024 * 1024 + 10)}
    return {"statusCode": 200, "headers": {"content-type": "application/json"},
            "body": json.dumps({"event": event, "pid": os.getpid()})}

while True:
    with urllib.request.urlopen(base + "/invocation/next") as r:
        rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
        meta = {
            "deadline": int(r.headers["Lambda-Runtime-Deadline-Ms"]),
            "arn": r.headers["Lambda-Runtime-Invoked-Function-Arn"],
            "trace": r.headers["Lambda-Runtime-Trace-Id"],
        }
        event = json.loads(r.read())
    if isinstance(event, dict) and "Records" in event:
        failed, seen = [], []
        for rec in event["Records"]:
            if rec.get("eventSource") == "aws:sqs":
                ident, body = rec["messageId"], json.loads(rec["body"])
                bad, tag = body.get("fail", False), body.get("tag")
                count = rec["attributes"].get("ApproximateReceiveCount")
            else:
                ident, image = rec["dynamodb"]["SequenceNumber"], rec["dynamodb"].get("NewImage", {})
                bad, tag, count = image.get("fail", {}).get("BOOL", False), image["pk"]["S"], None
            seen.append({"id": ident, "tag": tag, "count": count, "batch": rid})
            if bad:
                failed.append(ident)
        with open(os.environ["FAKE_LOG"], "a") as log:
            for entry in seen:
                log.write(json.dumps(entry) + "\n")
        if failed and os.environ.get("FAKE_BATCH_MODE") == "report":
            post("/invocation/" + rid + "/response", {"batchItemFailures": [{"itemIdentifier": i} for i in failed]})
        elif failed:
            post("/invocation/" + rid + "/error", {"errorType": "RecordFailed", "errorMessage": "bad record"})
        else:
            post("/invocation/" + rid + "/response", {})
        continue
    if isinstance(event, dict) and "rawPath" in event:
        answer = http_answer(event)
        if answer is None:
            post("/invocation/" + rid + "/error", {"errorType": "HandlerError", "errorMessage": "boom"})
        else:
            post("/invocation/" + rid + "/response", answer)
        continue
    action = event.get("action") if isinstance(event, dict) else None
    if action == "sleep":
        time.sleep(event["secs"])
    if action == "crash":
        os._exit(7)
    if action == "error":
        post("/invocation/" + rid + "/error", {"errorType": "MyError", "errorMessage": "boom"},
             {"Lambda-Runtime-Function-Error-Type": "Unhandled"})
        continue
    env = {k: os.environ.get(k) for k in ("AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION",
           "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_LOG_FORMAT", "AWS_LAMBDA_LOG_LEVEL", "_HANDLER",
           "AWS_REGION", "TABLE", "BASE_ONLY", "CARGO")}
    post("/invocation/" + rid + "/response", {"event": event, "pid": os.getpid(), "request_id": rid,
         "meta": meta, "env": env})
"#;

/// A directory holding the fake runtime as an executable, removed on drop.
pub(crate) struct FakeFunction {
    dir: PathBuf,
}

impl FakeFunction {
    pub(crate) fn new() -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("local-stack-fake-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("bootstrap");
        std::fs::write(&path, FAKE_RUNTIME).expect("write fake runtime");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        Self { dir }
    }

    pub(crate) fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    pub(crate) fn plan(&self, name: &str, timeout: Duration, reserved: Option<u32>) -> FunctionPlan {
        FunctionPlan {
            logical_id: name.to_string(),
            binary: self.dir.join("bootstrap"),
            environment: BTreeMap::from([("TABLE".to_string(), "t1".to_string())]),
            timeout,
            memory_mb: 256,
            reserved_concurrency: reserved,
        }
    }
}

impl Drop for FakeFunction {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn base_env() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("AWS_REGION".to_string(), "us-east-1".to_string()),
        ("BASE_ONLY".to_string(), "yes".to_string()),
        ("TABLE".to_string(), "overridden".to_string()),
    ])
}

fn start_one(fake: &FakeFunction, timeout: Duration, reserved: Option<u32>) -> Lambdas {
    let plan = fake.plan("Echo", timeout, reserved);
    Lambdas::start(BTreeMap::from([("Echo".to_string(), plan)]), base_env()).expect("start")
}

fn success_json(outcome: Invocation) -> serde_json::Value {
    match outcome {
        Invocation::Success(body) => serde_json::from_slice(&body).expect("json response"),
        other => panic!("expected success, got {other:?}"),
    }
}

fn alive(pid: i64) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_invoked_should_run_the_process_with_lambda_environment_and_reuse_it() {
    let fake = FakeFunction::new();
    let lambdas = start_one(&fake, Duration::from_secs(5), None);

    let first = success_json(lambdas.invoke("Echo", Bytes::from(r#"{"n":1}"#)).await.unwrap());
    assert_eq!(first["event"], serde_json::json!({"n": 1}));
    let env = &first["env"];
    assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], "Echo");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "256");
    assert_eq!(env["AWS_LAMBDA_LOG_FORMAT"], "JSON");
    assert_eq!(env["_HANDLER"], "bootstrap");
    assert_eq!(env["TABLE"], "t1", "the template's environment wins over the base environment");
    assert_eq!(env["BASE_ONLY"], "yes");
    assert!(env["CARGO"].is_null(), "the stack's own environment does not leak into functions");
    assert_eq!(first["meta"]["arn"], "arn:aws:lambda:us-east-1:123456789012:function:Echo");
    let deadline = first["meta"]["deadline"].as_u64().unwrap();
    let now = epoch_ms();
    assert!(deadline > now && deadline <= now + 5_000, "deadline {deadline} vs now {now}");
    assert!(first["meta"]["trace"].as_str().unwrap().starts_with("Root=1-"));

    let by_arn = "arn:aws:lambda:us-east-1:123456789012:function:Echo:$LATEST";
    let second = success_json(lambdas.invoke(by_arn, Bytes::from("{}")).await.unwrap());
    assert_eq!(first["pid"], second["pid"], "a warm environment is reused");
    assert_ne!(first["request_id"], second["request_id"]);
    assert_eq!(lambdas.running_instances("Echo"), 1);
    lambdas.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_handler_fails_should_return_its_error_and_keep_the_environment() {
    let fake = FakeFunction::new();
    let lambdas = start_one(&fake, Duration::from_secs(5), None);
    let pid = success_json(lambdas.invoke("Echo", Bytes::from("{}")).await.unwrap())["pid"].clone();

    match lambdas.invoke("Echo", Bytes::from(r#"{"action":"error"}"#)).await.unwrap() {
        Invocation::FunctionError { error_type, body } => {
            assert_eq!(error_type, "MyError");
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body["errorMessage"], "boom");
        }
        other => panic!("expected a function error, got {other:?}"),
    }
    let after = success_json(lambdas.invoke("Echo", Bytes::from("{}")).await.unwrap());
    assert_eq!(after["pid"], pid);
    lambdas.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_timeout_passes_should_kill_the_environment_and_report_sandbox_timedout() {
    let fake = FakeFunction::new();
    let lambdas = start_one(&fake, Duration::from_secs(1), None);
    let pid = success_json(lambdas.invoke("Echo", Bytes::from("{}")).await.unwrap())["pid"].as_i64().unwrap();

    let started = Instant::now();
    let outcome = lambdas.invoke("Echo", Bytes::from(r#"{"action":"sleep","secs":30}"#)).await.unwrap();
    let took = started.elapsed();
    assert!(outcome.is_timeout(), "{outcome:?}");
    let Invocation::FunctionError { body, .. } = outcome else { unreachable!() };
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["errorType"], "Sandbox.Timedout");
    assert_eq!(body["errorMessage"], "Task timed out after 1.00 seconds");
    assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(3), "took {took:?}");

    let deadline = Instant::now() + Duration::from_secs(3);
    while alive(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!alive(pid), "the timed-out environment was killed");
    let next = success_json(lambdas.invoke("Echo", Bytes::from("{}")).await.unwrap());
    assert_ne!(next["pid"].as_i64().unwrap(), pid, "a fresh environment serves the next invocation");
    lambdas.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_process_exits_mid_invocation_should_report_runtime_exit_error() {
    let fake = FakeFunction::new();
    let lambdas = start_one(&fake, Duration::from_secs(5), None);
    match lambdas.invoke("Echo", Bytes::from(r#"{"action":"crash"}"#)).await.unwrap() {
        Invocation::FunctionError { error_type, body } => {
            assert_eq!(error_type, "Runtime.ExitError");
            assert!(String::from_utf8_lossy(&body).contains("exit status: 7"), "{body:?}");
        }
        other => panic!("expected an exit error, got {other:?}"),
    }
    success_json(lambdas.invoke("Echo", Bytes::from("{}")).await.unwrap());
    lambdas.shutdown().await;
}

#[tokio::test]
async fn when_the_binary_is_still_open_for_writing_should_run_it_once_it_is_closed() {
    let fake = FakeFunction::new();
    // What a process forked meanwhile by another thread does to a binary just written: keeps it open for writing.
    let writer = std::fs::OpenOptions::new().append(true).open(fake.dir().join("bootstrap")).unwrap();
    let lambdas = Lambdas::start(
        BTreeMap::from([("Busy".to_string(), fake.plan("Busy", Duration::from_secs(5), None))]),
        base_env(),
    )
    .unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(writer);
    });
    match lambdas.invoke("Busy", Bytes::from("{}")).await.unwrap() {
        Invocation::Success(_) => {}
        other => panic!("a busy binary must run once it is closed: {other:?}"),
    }
    release.await.unwrap();
    lambdas.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_init_fails_should_report_the_failure() {
    let fake = FakeFunction::new();
    let mut crash = fake.plan("Crash", Duration::from_secs(5), None);
    crash.environment.insert("FAKE_INIT".into(), "crash".into());
    let mut init_error = fake.plan("InitError", Duration::from_secs(5), None);
    init_error.environment.insert("FAKE_INIT".into(), "error".into());
    let lambdas = Lambdas::start(
        BTreeMap::from([("Crash".to_string(), crash), ("InitError".to_string(), init_error)]),
        base_env(),
    )
    .unwrap();

    match lambdas.invoke("Crash", Bytes::from("{}")).await.unwrap() {
        Invocation::FunctionError { error_type, .. } => assert_eq!(error_type, "Runtime.ExitError"),
        other => panic!("{other:?}"),
    }
    match lambdas.invoke("InitError", Bytes::from("{}")).await.unwrap() {
        Invocation::FunctionError { error_type, body } => {
            assert_eq!(error_type, "Runtime.InitError");
            assert!(String::from_utf8_lossy(&body).contains("bad config"));
        }
        other => panic!("{other:?}"),
    }
    lambdas.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_busy_should_start_more_environments_up_to_the_cap_and_queue_the_rest() {
    let fake = FakeFunction::new();
    let lambdas = start_one(&fake, Duration::from_secs(10), Some(3));
    let started = Instant::now();
    let calls = (0..6).map(|_| {
        let lambdas = lambdas.clone();
        tokio::spawn(async move {
            let out = lambdas.invoke("Echo", Bytes::from(r#"{"action":"sleep","secs":0.6}"#)).await.unwrap();
            (success_json(out)["pid"].as_i64().unwrap(), lambdas.running_instances("Echo"))
        })
    });
    let results = futures::future::join_all(calls).await;
    let took = started.elapsed();
    let mut pids: Vec<i64> = results.iter().map(|r| r.as_ref().unwrap().0).collect();
    let most_running = results.iter().map(|r| r.as_ref().unwrap().1).max().unwrap();
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), 3, "three environments served six concurrent invocations");
    assert!(most_running <= 3, "never more than the reserved concurrency: {most_running}");
    assert!(took >= Duration::from_millis(1200), "the excess invocations queued: {took:?}");
    lambdas.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_shut_down_should_leave_no_process_behind() {
    let fake = FakeFunction::new();
    let lambdas = start_one(&fake, Duration::from_secs(10), None);
    let busy = {
        let lambdas = lambdas.clone();
        tokio::spawn(async move { lambdas.invoke("Echo", Bytes::from(r#"{"action":"sleep","secs":30}"#)).await })
    };
    while lambdas.running_instances("Echo") < 1 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let idle = success_json(lambdas.invoke("Echo", Bytes::from("{}")).await.unwrap())["pid"].as_i64().unwrap();
    assert_eq!(lambdas.running_instances("Echo"), 2);
    lambdas.shutdown().await;
    assert!(!alive(idle));
    assert_eq!(lambdas.running_instances("Echo"), 0);
    let outcome = busy.await.unwrap().unwrap();
    assert!(matches!(outcome, Invocation::FunctionError { ref error_type, .. } if error_type == "Runtime.ExitError"));
    assert!(matches!(lambdas.invoke("Echo", Bytes::from("{}")).await, Err(InvokeError::ShuttingDown)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_request_is_invalid_should_refuse_before_running() {
    let fake = FakeFunction::new();
    let mut missing = fake.plan("Missing", Duration::from_secs(3), None);
    missing.binary = PathBuf::from("/nonexistent/target/debug/get-thing");
    let lambdas = Lambdas::start(
        BTreeMap::from([
            ("Echo".to_string(), fake.plan("Echo", Duration::from_secs(3), None)),
            ("Missing".to_string(), missing),
        ]),
        base_env(),
    )
    .unwrap();
    assert!(matches!(lambdas.invoke("Nope", Bytes::new()).await, Err(InvokeError::UnknownFunction(_))));
    let too_big = Bytes::from(vec![b' '; MAX_PAYLOAD_BYTES + 1]);
    assert!(matches!(lambdas.invoke("Echo", too_big).await, Err(InvokeError::PayloadTooLarge { .. })));
    let err = lambdas.invoke("Missing", Bytes::from("{}")).await.unwrap_err().to_string();
    assert!(err.contains("Missing") && err.contains("/nonexistent/target/debug/get-thing"), "{err}");
    assert!(err.contains("cargo build"), "{err}");
    lambdas.shutdown().await;
}

#[test]
fn function_references_resolve_to_names() {
    assert_eq!(function_name_from_ref("GetProduct"), "GetProduct");
    assert_eq!(function_name_from_ref("arn:aws:lambda:us-east-1:123456789012:function:GetProduct"), "GetProduct");
    assert_eq!(
        function_name_from_ref("arn:aws:lambda:us-east-1:123456789012:function:GetProduct:$LATEST"),
        "GetProduct"
    );
    assert_eq!(function_name_from_ref("123456789012:GetProduct"), "GetProduct");
    assert_eq!(function_name_from_ref("GetProduct:live"), "GetProduct");
}
