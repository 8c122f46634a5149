//! The local Lambda service: every function runs as real processes behind a local Lambda Runtime API.
//!
//! One process is one execution environment. Each gets its own Runtime API server on `127.0.0.1:<ephemeral>`
//! (`AWS_LAMBDA_RUNTIME_API`), answering `GET /2018-06-01/runtime/invocation/next`,
//! `POST .../invocation/{id}/response`, `POST .../invocation/{id}/error` and `POST .../init/error` as the
//! official runtime client uses them. An environment runs one invocation at a time; when all are busy another
//! starts, up to `ReservedConcurrentExecutions` or `LOCAL_LAMBDA_MAX_INSTANCES` (default 8), and further
//! invocations queue. Idle environments are reused. An invocation that outlives the function's timeout kills
//! its environment (`Sandbox.Timedout`); an environment that exits mid-invocation fails it
//! (`Runtime.ExitError`).
//!
//! Children get `PR_SET_PDEATHSIG(SIGKILL)` and their own process group, so they die with the stack and a
//! terminal's Ctrl-C reaches only the stack, which kills them on [`Lambdas::shutdown`].
//!
//! After every invocation the environment picked up, the stack logs a `REPORT` line at INFO (see [`report`]):
//! `REPORT function=<logical id> request_id=<id> duration_ms=<f64> billed_ms=<u64> memory_mb=<MemorySize>
//! max_memory_mb=<peak RSS or ->`.
//!
//! A function's stdout and stderr are forwarded line by line to the stack's stderr as `[<function>] <line>`.
//! `LOCAL_LAMBDA_LOG_LEVEL` sets the functions' `AWS_LAMBDA_LOG_LEVEL` (default `INFO`).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes as AxumBytes;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::plan::FunctionPlan;

/// The largest synchronous invocation payload, request or response (6 MB).
pub const MAX_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;
/// The account id of every local ARN.
pub const ACCOUNT_ID: &str = "123456789012";
const DEFAULT_MAX_INSTANCES: usize = 8;
/// How long a new environment may take to start polling for its first invocation.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);
const RUNTIME_PREFIX: &str = "/2018-06-01/runtime";

/// The running functions. Cheap to clone.
#[derive(Clone)]
pub struct Lambdas {
    inner: Arc<Inner>,
}

/// The outcome of an invocation that reached the function.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// The function returned this payload.
    Success(Bytes),
    /// The function failed; `body` is `{"errorType": ..., "errorMessage": ...}`.
    FunctionError { error_type: String, body: Bytes },
}

impl Invocation {
    /// True for a function error whose type is `Sandbox.Timedout`.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Invocation::FunctionError { error_type, .. } if error_type == TIMED_OUT)
    }
}

const TIMED_OUT: &str = "Sandbox.Timedout";

/// Why an invocation could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("function not found: {0}")]
    UnknownFunction(String),
    #[error("request payload of {size} bytes exceeds the {limit} byte limit")]
    PayloadTooLarge { size: usize, limit: usize },
    #[error("function {0} has a reserved concurrency of 0: every invocation is throttled")]
    Throttled(String),
    #[error("the local Lambda service is shutting down")]
    ShuttingDown,
    #[error("could not start function {function}: {reason}")]
    Spawn { function: String, reason: String },
    #[error("invocation of {function} failed inside the local Lambda service: {reason}")]
    Internal { function: String, reason: String },
}

struct Inner {
    functions: BTreeMap<String, Arc<Function>>,
    shutdown: CancellationToken,
}

struct Function {
    name: String,
    arn: String,
    plan: FunctionPlan,
    /// Everything but the per-environment `AWS_LAMBDA_RUNTIME_API`.
    env: Vec<(String, String)>,
    permits: Arc<Semaphore>,
    max_instances: usize,
    idle: Mutex<Vec<Instance>>,
    live: Mutex<HashMap<u64, LiveInstance>>,
    next_instance: AtomicU64,
}

/// Control of a running environment, kept for shutdown.
struct LiveInstance {
    kill: CancellationToken,
    exited: watch::Receiver<Option<String>>,
}

/// A started environment that is not running an invocation.
struct Instance {
    id: u64,
    pid: u32,
    jobs: mpsc::Sender<Job>,
    api: Arc<RuntimeApi>,
    kill: CancellationToken,
    exited: watch::Receiver<Option<String>>,
}

struct Job {
    request_id: String,
    payload: Bytes,
    deadline_ms: u64,
    /// When the Runtime API handed the event to the function.
    started: oneshot::Sender<Instant>,
    result: oneshot::Sender<Completed>,
}

/// The function's answer and when it arrived at the Runtime API.
struct Completed {
    outcome: Outcome,
    at: Instant,
}

enum Outcome {
    Response(Bytes),
    Error { error_type: String, body: Bytes },
}

/// The Runtime API of one environment.
struct RuntimeApi {
    arn: String,
    jobs: tokio::sync::Mutex<mpsc::Receiver<Job>>,
    current: Mutex<Option<(String, oneshot::Sender<Completed>)>>,
    init_error: Mutex<Option<Outcome>>,
    kill: CancellationToken,
}

impl Lambdas {
    /// Prepares a runtime for every function; environments start on first invocation. `base_env` (region,
    /// endpoint, credentials) is given to every function under the template's own environment.
    pub fn start(
        functions: BTreeMap<String, FunctionPlan>,
        base_env: BTreeMap<String, String>,
    ) -> anyhow::Result<Lambdas> {
        let default_cap =
            match std::env::var("LOCAL_LAMBDA_MAX_INSTANCES") {
                Ok(raw) => raw.trim().parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    anyhow::anyhow!("LOCAL_LAMBDA_MAX_INSTANCES must be a positive integer, got {raw:?}")
                })?,
                Err(_) => DEFAULT_MAX_INSTANCES,
            };
        let log_level = std::env::var("LOCAL_LAMBDA_LOG_LEVEL").unwrap_or_else(|_| "INFO".to_string());
        let region = base_env.get("AWS_REGION").cloned().unwrap_or_else(|| "us-east-1".to_string());
        let mut missing = Vec::new();
        let mut table = BTreeMap::new();
        for (name, plan) in functions {
            if !plan.binary.is_file() {
                missing.push(format!("{name} ({})", plan.binary.display()));
            }
            let max_instances = plan.reserved_concurrency.map(|n| n as usize).unwrap_or(default_cap);
            let arn = format!("arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{name}");
            let env = function_env(&plan.logical_id, &plan, &base_env, &region, &log_level);
            table.insert(
                name.clone(),
                Arc::new(Function {
                    name,
                    arn,
                    plan,
                    env,
                    permits: Arc::new(Semaphore::new(max_instances)),
                    max_instances,
                    idle: Mutex::new(Vec::new()),
                    live: Mutex::new(HashMap::new()),
                    next_instance: AtomicU64::new(1),
                }),
            );
        }
        if !missing.is_empty() {
            tracing::warn!(
                functions = %missing.join(", "),
                "function binaries not found; run `cargo build --workspace` before invoking them"
            );
        }
        Ok(Lambdas { inner: Arc::new(Inner { functions: table, shutdown: CancellationToken::new() }) })
    }

    /// Runs one invocation of `function` (logical id, name, or ARN, possibly qualified) with `payload`.
    pub async fn invoke(&self, function: &str, payload: Bytes) -> Result<Invocation, InvokeError> {
        let f = self.function(function).ok_or_else(|| InvokeError::UnknownFunction(function.to_string()))?;
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(InvokeError::PayloadTooLarge { size: payload.len(), limit: MAX_PAYLOAD_BYTES });
        }
        if f.max_instances == 0 {
            return Err(InvokeError::Throttled(f.name.clone()));
        }
        // The invocation runs in its own task: a caller that goes away must not strand an environment.
        let inner = Arc::clone(&self.inner);
        let f = Arc::clone(f);
        let task = tokio::spawn(async move {
            let shutdown = &inner.shutdown;
            let permit = tokio::select! {
                permit = f.permits.clone().acquire_owned() => permit.map_err(|_| InvokeError::ShuttingDown)?,
                _ = shutdown.cancelled() => return Err(InvokeError::ShuttingDown),
            };
            if shutdown.is_cancelled() {
                return Err(InvokeError::ShuttingDown);
            }
            let (instance, cold) = match f.take_idle() {
                Some(instance) => (instance, false),
                None => (f.spawn().await?, true),
            };
            let started = Instant::now();
            let (outcome, reusable) = f.run(&instance, payload, cold).await;
            let ms = started.elapsed().as_millis() as u64;
            match &outcome {
                Invocation::Success(_) => {
                    tracing::debug!(function = %f.name, instance = instance.id, ms, cold, "invoked")
                }
                Invocation::FunctionError { error_type, .. } => tracing::info!(
                    function = %f.name, instance = instance.id, ms, cold, error_type = %error_type, "invocation failed"
                ),
            }
            if reusable && !shutdown.is_cancelled() {
                f.put_idle(instance, permit);
            } else {
                instance.kill.cancel();
            }
            Ok(outcome)
        });
        let outcome = task
            .await
            .map_err(|e| InvokeError::Internal { function: function.to_string(), reason: e.to_string() })??;
        Ok(outcome)
    }

    /// The ARN of a function, if it exists.
    pub fn function_arn(&self, function: &str) -> Option<String> {
        self.function(function).map(|f| f.arn.clone())
    }

    /// How many environments of `function` are running now.
    #[cfg(test)]
    pub fn running_instances(&self, function: &str) -> usize {
        self.function(function).map(|f| lock(&f.live).len()).unwrap_or(0)
    }

    /// Kills every environment and waits for them to exit.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        let mut exits = Vec::new();
        for f in self.inner.functions.values() {
            f.permits.close();
            lock(&f.idle).clear();
            for live in lock(&f.live).values() {
                live.kill.cancel();
                exits.push(live.exited.clone());
            }
        }
        for mut exited in exits {
            let _ = exited.wait_for(Option::is_some).await;
        }
    }

    fn function(&self, name: &str) -> Option<&Arc<Function>> {
        let functions = &self.inner.functions;
        functions.get(name).or_else(|| functions.get(function_name_from_ref(name)))
    }
}

/// `arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]`, `<account>:<name>` or `<name>[:<qualifier>]`
/// -> `<name>`.
fn function_name_from_ref(reference: &str) -> &str {
    let parts: Vec<&str> = reference.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "lambda", _, _, "function", name, ..] => name,
        [account, name, ..] if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) => name,
        [name, ..] => name,
        [] => reference,
    }
}

fn function_env(
    name: &str,
    plan: &FunctionPlan,
    base: &BTreeMap<String, String>,
    region: &str,
    log_level: &str,
) -> Vec<(String, String)> {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for key in ["PATH", "HOME", "RUST_BACKTRACE"] {
        if let Ok(value) = std::env::var(key) {
            env.insert(key.to_string(), value);
        }
    }
    env.insert("LANG".into(), "en_US.UTF-8".into());
    env.insert("TZ".into(), ":UTC".into());
    env.insert("AWS_REGION".into(), region.to_string());
    env.insert("AWS_DEFAULT_REGION".into(), region.to_string());
    env.extend(base.iter().map(|(k, v)| (k.clone(), v.clone())));
    env.extend(plan.environment.iter().map(|(k, v)| (k.clone(), v.clone())));
    let task_root = plan.binary.parent().map(|p| p.display().to_string()).unwrap_or_default();
    let reserved = [
        ("AWS_LAMBDA_FUNCTION_NAME", name.to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_string()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", plan.memory_mb.to_string()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_string()),
        ("AWS_LAMBDA_LOG_LEVEL", log_level.to_string()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_string()),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023".to_string()),
        ("LAMBDA_TASK_ROOT", task_root),
        ("_HANDLER", "bootstrap".to_string()),
    ];
    env.extend(reserved.into_iter().map(|(k, v)| (k.to_string(), v)));
    env.into_iter().collect()
}

impl Function {
    fn take_idle(&self) -> Option<Instance> {
        let mut idle = lock(&self.idle);
        while let Some(instance) = idle.pop() {
            if instance.exited.borrow().is_none() {
                return Some(instance);
            }
        }
        None
    }

    fn put_idle(&self, instance: Instance, permit: OwnedSemaphorePermit) {
        lock(&self.idle).push(instance);
        drop(permit);
    }

    /// Starts a new environment: its Runtime API server, then the process.
    async fn spawn(self: &Arc<Self>) -> Result<Instance, InvokeError> {
        let spawn_error = |reason: String| InvokeError::Spawn { function: self.name.clone(), reason };
        let binary = &self.plan.binary;
        if !binary.is_file() {
            return Err(spawn_error(format!(
                "binary {} not found; run `cargo build --workspace` (or `cargo build -p {}`)",
                binary.display(),
                binary.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()
            )));
        }
        let id = self.next_instance.fetch_add(1, Ordering::Relaxed);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| spawn_error(format!("cannot bind its Runtime API: {e}")))?;
        let addr = listener.local_addr().map_err(|e| spawn_error(e.to_string()))?;
        let (jobs_tx, jobs_rx) = mpsc::channel(1);
        let kill = CancellationToken::new();
        let api = Arc::new(RuntimeApi {
            arn: self.arn.clone(),
            jobs: tokio::sync::Mutex::new(jobs_rx),
            current: Mutex::new(None),
            init_error: Mutex::new(None),
            kill: kill.clone(),
        });
        let server = tokio::spawn(serve_runtime_api(listener, api.clone()));

        let mut cmd = Command::new(binary);
        cmd.env_clear()
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_LOG_STREAM_NAME", format!("local/[$LATEST]{id}"))
            .current_dir(binary.parent().unwrap_or(Path::new(".")))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        child_guard::die_with_parent(cmd.as_std_mut(), child_guard::Group::Parent);
        let mut child = match spawn_when_not_busy(&mut cmd).await {
            Ok(child) => child,
            Err(e) => {
                server.abort();
                return Err(spawn_error(format!("cannot run {}: {e}", binary.display())));
            }
        };
        let pid = child.id().unwrap_or_default();
        if let Some(out) = child.stdout.take() {
            tokio::spawn(forward_lines(self.name.clone(), out));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(forward_lines(self.name.clone(), err));
        }
        let (exited_tx, exited_rx) = watch::channel(None);
        lock(&self.live).insert(id, LiveInstance { kill: kill.clone(), exited: exited_rx.clone() });
        tracing::info!(function = %self.name, instance = id, pid, running = lock(&self.live).len(), "environment started");

        let function = Arc::clone(self);
        let kill_signal = kill.clone();
        tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status,
                _ = kill_signal.cancelled() => {
                    let _ = child.start_kill();
                    child.wait().await
                }
            };
            let status = match status {
                Ok(status) => status.to_string(),
                Err(e) => format!("unknown exit ({e})"),
            };
            server.abort();
            lock(&function.live).remove(&id);
            tracing::debug!(function = %function.name, instance = id, %status, "environment exited");
            let _ = exited_tx.send(Some(status));
        });

        Ok(Instance { id, pid, jobs: jobs_tx, api, kill, exited: exited_rx })
    }

    /// Runs one invocation on `instance`; returns the outcome and whether the environment may be reused.
    async fn run(&self, instance: &Instance, payload: Bytes, cold: bool) -> (Invocation, bool) {
        let request_id = uuid::Uuid::new_v4().to_string();
        let timeout = self.plan.timeout;
        let (started_tx, started_rx) = oneshot::channel();
        let (result_tx, mut result_rx) = oneshot::channel();
        let deadline_ms = epoch_ms() + timeout.as_millis() as u64;
        let job = Job { request_id: request_id.clone(), payload, deadline_ms, started: started_tx, result: result_tx };
        let mut exited = instance.exited.clone();
        if instance.jobs.send(job).await.is_err() {
            return (self.exit_error(instance, &request_id), false);
        }

        let pickup_limit = if cold { INIT_TIMEOUT } else { INIT_TIMEOUT.min(timeout) };
        let handed_over = tokio::select! {
            biased;
            picked = started_rx => match picked {
                Ok(at) => at,
                Err(_) => return (self.exit_error(instance, &request_id), false),
            },
            _ = exited.wait_for(Option::is_some) => return (self.exit_error(instance, &request_id), false),
            _ = tokio::time::sleep(pickup_limit) => {
                tracing::warn!(function = %self.name, instance = instance.id, "environment did not ask for its invocation in time");
                return (timed_out(&request_id, timeout), false);
            }
        };

        let deadline = tokio::time::Instant::from_std(handed_over) + timeout;
        let completed = tokio::select! {
            biased;
            completed = &mut result_rx => completed.ok(),
            _ = exited.wait_for(Option::is_some) => result_rx.try_recv().ok(),
            _ = tokio::time::sleep_until(deadline) => {
                lock(&instance.api.current).take();
                self.report(instance, &request_id, handed_over.elapsed());
                return (timed_out(&request_id, timeout), false);
            }
        };
        let ended = completed.as_ref().map(|c| c.at).unwrap_or_else(Instant::now);
        self.report(instance, &request_id, ended.saturating_duration_since(handed_over));
        match completed.map(|c| c.outcome) {
            Some(Outcome::Response(body)) if body.len() > MAX_PAYLOAD_BYTES => {
                let message = format!(
                    "Response payload size ({} bytes) exceeded maximum allowed payload size ({MAX_PAYLOAD_BYTES} bytes).",
                    body.len()
                );
                (function_error("Function.ResponseSizeTooLarge", &message), true)
            }
            Some(Outcome::Response(body)) => (Invocation::Success(body), true),
            Some(Outcome::Error { error_type, body }) => (Invocation::FunctionError { error_type, body }, true),
            None => (self.exit_error(instance, &request_id), false),
        }
    }

    /// Logs the invocation's `REPORT` line.
    fn report(&self, instance: &Instance, request_id: &str, duration: Duration) {
        let report = report::Report {
            function: &self.plan.logical_id,
            request_id,
            duration,
            memory_mb: self.plan.memory_mb,
            max_memory_mb: report::peak_rss_mb(instance.pid),
        };
        tracing::info!("{report}");
    }

    /// The failure of an invocation whose environment went away: its init error if it reported one.
    fn exit_error(&self, instance: &Instance, request_id: &str) -> Invocation {
        if let Some(Outcome::Error { error_type, body }) = lock(&instance.api.init_error).take() {
            return Invocation::FunctionError { error_type, body };
        }
        let status = instance.exited.borrow().clone().unwrap_or_else(|| "killed".to_string());
        function_error(
            "Runtime.ExitError",
            &format!("RequestId: {request_id} Error: Runtime exited with error: {status}"),
        )
    }
}

/// How long a spawn waits for a binary that is still open for writing somewhere (`ETXTBSY`) before it fails.
const BUSY_BINARY_WAIT: Duration = Duration::from_secs(5);

/// Spawns `cmd`, again while its binary is busy. A binary written a moment ago fails to execute with `ETXTBSY`
/// while any process still holds it open for writing, and a process forked by another thread of this one
/// between the writer's `open` and `close` holds that descriptor until it executes its own program: in a
/// process that spawns from many threads (the stack, its tests) that window is real and short.
async fn spawn_when_not_busy(cmd: &mut Command) -> std::io::Result<tokio::process::Child> {
    let started = tokio::time::Instant::now();
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && started.elapsed() < BUSY_BINARY_WAIT => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            other => return other,
        }
    }
}

fn timed_out(request_id: &str, timeout: Duration) -> Invocation {
    tracing::warn!(request_id, timeout_s = timeout.as_secs_f64(), "invocation timed out; environment killed");
    function_error(TIMED_OUT, &format!("Task timed out after {:.2} seconds", timeout.as_secs_f64()))
}

fn function_error(error_type: &str, message: &str) -> Invocation {
    let body = serde_json::json!({ "errorType": error_type, "errorMessage": message });
    Invocation::FunctionError { error_type: error_type.to_string(), body: Bytes::from(body.to_string()) }
}

fn epoch_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn forward_lines(function: String, stream: impl AsyncRead + Unpin) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        eprintln!("[{function}] {line}");
    }
}

async fn serve_runtime_api(listener: tokio::net::TcpListener, api: Arc<RuntimeApi>) {
    let router = Router::new()
        .route(&format!("{RUNTIME_PREFIX}/invocation/next"), get(next_invocation))
        .route(&format!("{RUNTIME_PREFIX}/invocation/{{id}}/response"), post(invocation_response))
        .route(&format!("{RUNTIME_PREFIX}/invocation/{{id}}/error"), post(invocation_error))
        .route(&format!("{RUNTIME_PREFIX}/init/error"), post(init_error))
        .layer(DefaultBodyLimit::max(MAX_PAYLOAD_BYTES + 1024 * 1024))
        .with_state(api);
    if let Err(e) = axum::serve(listener, router).await {
        tracing::warn!(error = %e, "runtime API server stopped");
    }
}

async fn next_invocation(State(api): State<Arc<RuntimeApi>>) -> Response {
    let job = {
        let mut jobs = api.jobs.lock().await;
        tokio::select! {
            job = jobs.recv() => job,
            _ = api.kill.cancelled() => None,
        }
    };
    let Some(job) = job else {
        return (StatusCode::GONE, "environment is shutting down").into_response();
    };
    *lock(&api.current) = Some((job.request_id.clone(), job.result));
    let _ = job.started.send(Instant::now());
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    put("lambda-runtime-aws-request-id", &job.request_id);
    put("lambda-runtime-deadline-ms", &job.deadline_ms.to_string());
    put("lambda-runtime-invoked-function-arn", &api.arn);
    put("lambda-runtime-trace-id", &trace_id(&job.request_id));
    put("content-type", "application/json");
    (StatusCode::OK, headers, job.payload).into_response()
}

/// An X-Ray style trace header for the invocation.
fn trace_id(request_id: &str) -> String {
    let hex: String = request_id.chars().filter(char::is_ascii_hexdigit).collect();
    let epoch = format!("{:08x}", epoch_ms() / 1000);
    let root = hex.get(..24).unwrap_or("000000000000000000000000");
    let parent = hex.get(16..32).unwrap_or("0000000000000000");
    format!("Root=1-{epoch}-{root};Parent={parent};Sampled=0;Lineage=local")
}

async fn invocation_response(
    State(api): State<Arc<RuntimeApi>>,
    UrlPath(id): UrlPath<String>,
    body: AxumBytes,
) -> Response {
    complete(&api, &id, Outcome::Response(body))
}

async fn invocation_error(
    State(api): State<Arc<RuntimeApi>>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: AxumBytes,
) -> Response {
    let outcome = error_outcome(&headers, body);
    complete(&api, &id, outcome)
}

async fn init_error(State(api): State<Arc<RuntimeApi>>, headers: HeaderMap, body: AxumBytes) -> Response {
    let outcome = match error_outcome(&headers, body) {
        Outcome::Error { error_type, body } if error_type == "Unhandled" => {
            Outcome::Error { error_type: "Runtime.InitError".into(), body }
        }
        other => other,
    };
    *lock(&api.init_error) = Some(outcome);
    api.kill.cancel();
    accepted()
}

fn complete(api: &RuntimeApi, id: &str, outcome: Outcome) -> Response {
    let at = Instant::now();
    let mut current = lock(&api.current);
    match current.take() {
        Some((request_id, result)) if request_id == id => {
            let _ = result.send(Completed { outcome, at });
            accepted()
        }
        other => {
            *current = other;
            let body = serde_json::json!({
                "errorMessage": format!("Invalid request ID: {id}"),
                "errorType": "InvalidRequestID",
            });
            (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
        }
    }
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, axum::Json(serde_json::json!({ "status": "OK" }))).into_response()
}

/// A runtime's error report: the `errorType` of its JSON body, else its error-type header.
fn error_outcome(headers: &HeaderMap, body: AxumBytes) -> Outcome {
    let header_type = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .unwrap_or("Unhandled")
        .to_string();
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(value) if value.is_object() => {
            let error_type = value
                .get("errorType")
                .and_then(|t| t.as_str())
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .unwrap_or(header_type);
            Outcome::Error { error_type, body }
        }
        _ => {
            let message = String::from_utf8_lossy(&body).into_owned();
            let body = serde_json::json!({ "errorType": header_type, "errorMessage": message });
            Outcome::Error { error_type: header_type, body: Bytes::from(body.to_string()) }
        }
    }
}

mod report;

#[cfg(test)]
pub(crate) mod tests;
