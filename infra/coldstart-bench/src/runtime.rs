//! A fake Lambda Runtime API that is also the functions' AWS endpoint, and one cold start measured against it.
//!
//! A measured init runs from spawning the binary to its first `GET /2018-06-01/runtime/invocation/next`, the
//! moment Lambda's `Init Duration` ends. That request is never answered: the process is killed once it is
//! seen. `AWS_ENDPOINT_URL` points at the same server, so an AWS call made during init (a secret read, say)
//! lands here, is recorded by its operation, and gets a well-formed fake answer: init completes and the call
//! shows in the report instead of reaching the network.

use anyhow::{Context as _, Result};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::sync::{oneshot, Notify};

/// How one cold start ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The first `next`: init took this long; the process's peak RSS then (KiB), if readable.
    Ready { init: Duration, peak_rss_kib: Option<u64> },
    /// The runtime reported an init error (`POST /runtime/init/error`).
    InitError(String),
    /// The process exited before asking for an invocation; the end of its stderr.
    Exited(String),
    /// No `next` within the timeout.
    TimedOut,
}

/// One measured cold start.
#[derive(Debug, Clone)]
pub struct Sample {
    pub outcome: Outcome,
    /// The AWS operations called during init, as `service.Operation` or `METHOD host/path`.
    pub aws_calls: Vec<String>,
}

#[derive(Default)]
struct Current {
    pid: Option<u32>,
    started: Option<Instant>,
    done: Option<oneshot::Sender<Outcome>>,
    aws_calls: Vec<String>,
}

/// The run in progress, and the signal that releases its held `next` once the process is gone.
#[derive(Default)]
struct Server {
    current: Mutex<Current>,
    released: Notify,
}

type Shared = Arc<Server>;

/// The server; cold starts run one at a time against it.
pub struct FakeRuntime {
    addr: SocketAddr,
    current: Shared,
}

impl FakeRuntime {
    /// Binds 127.0.0.1 on a free port and serves until the process ends.
    pub async fn start() -> Result<Self> {
        let current: Shared = Arc::default();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .fallback(aws)
            .with_state(current.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self { addr, current })
    }

    /// Spawns `binary` with exactly `env` (plus the Runtime API and AWS endpoint), waits for its first `next`,
    /// an init error, its exit or `timeout`, and kills it.
    pub async fn cold_start(&self, binary: &Path, env: &BTreeMap<String, String>, timeout: Duration) -> Result<Sample> {
        let (tx, rx) = oneshot::channel();
        *lock(&self.current.current) = Current { done: Some(tx), ..Current::default() };
        let mut cmd = tokio::process::Command::new(binary);
        cmd.env_clear()
            .envs(env)
            .env("AWS_LAMBDA_RUNTIME_API", self.addr.to_string())
            .env("AWS_ENDPOINT_URL", format!("http://{}", self.addr))
            .current_dir(binary.parent().unwrap_or(Path::new(".")))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        child_guard::die_with_parent(cmd.as_std_mut(), child_guard::Group::Own);
        let started = Instant::now();
        lock(&self.current.current).started = Some(started);
        let mut child = cmd.spawn().with_context(|| format!("running {}", binary.display()))?;
        lock(&self.current.current).pid = child.id();
        let output = Arc::new(Mutex::new(Vec::new()));
        let readers = [
            child.stdout.take().map(|o| tokio::spawn(collect(o, output.clone()))),
            child.stderr.take().map(|e| tokio::spawn(collect(e, output.clone()))),
        ];
        let outcome = tokio::select! {
            outcome = rx => outcome.unwrap_or(Outcome::TimedOut),
            status = child.wait() => {
                for reader in readers.into_iter().flatten() {
                    let _ = reader.await;
                }
                let out = output.lock().map(|o| String::from_utf8_lossy(&o).into_owned()).unwrap_or_default();
                let tail: String = out.trim().chars().rev().take(600).collect::<Vec<_>>().into_iter().rev().collect();
                Outcome::Exited(format!("{}: {tail}", status.map(|s| s.to_string()).unwrap_or_default()))
            }
            _ = tokio::time::sleep(timeout) => Outcome::TimedOut,
        };
        let _ = child.start_kill();
        let _ = child.wait().await;
        self.current.released.notify_waiters();
        let aws_calls = std::mem::take(&mut lock(&self.current.current).aws_calls);
        Ok(Sample { outcome, aws_calls })
    }
}

/// Keeps what a process prints (its logs), for the report of an init that failed.
async fn collect(mut from: impl tokio::io::AsyncRead + Unpin, into: Arc<Mutex<Vec<u8>>>) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 {
            break;
        }
        if let Ok(mut out) = into.lock() {
            out.extend_from_slice(&buf[..n]);
        }
    }
}

fn lock(m: &Mutex<Current>) -> std::sync::MutexGuard<'_, Current> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The end of init: report it, and answer only once the process has been killed.
async fn next(State(server): State<Shared>) -> impl IntoResponse {
    let now = Instant::now();
    let released = server.released.notified();
    tokio::pin!(released);
    released.as_mut().enable();
    let (done, started, pid) = {
        let mut c = lock(&server.current);
        (c.done.take(), c.started, c.pid)
    };
    if let (Some(done), Some(started)) = (done, started) {
        let _ = done.send(Outcome::Ready { init: now - started, peak_rss_kib: pid.and_then(peak_rss_kib) });
    }
    released.await;
    StatusCode::NO_CONTENT
}

async fn init_error(State(server): State<Shared>, body: Bytes) -> impl IntoResponse {
    if let Some(done) = lock(&server.current).done.take() {
        let _ = done.send(Outcome::InitError(String::from_utf8_lossy(&body).into_owned()));
    }
    (StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
}

/// Any other request is an AWS call made during init: recorded, and answered so that init can go on.
async fn aws(State(server): State<Shared>, method: Method, uri: Uri, headers: HeaderMap) -> impl IntoResponse {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let call = match &target {
        Some(t) => t.clone(),
        None => format!("{method} {}", uri.path()),
    };
    lock(&server.current).aws_calls.push(call);
    match target.as_deref() {
        Some("secretsmanager.GetSecretValue") => (
            StatusCode::OK,
            [("content-type", "application/x-amz-json-1.1")],
            serde_json::json!({
                "ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:bench",
                "Name": "bench",
                "SecretString": "bench-secret-value-0123456789abcdef",
                "VersionId": "00000000-0000-0000-0000-000000000000",
            })
            .to_string(),
        ),
        _ => (
            StatusCode::BAD_REQUEST,
            [("content-type", "application/x-amz-json-1.1")],
            r#"{"__type":"UnknownOperationException","message":"the cold-start bench answers only GetSecretValue"}"#
                .to_owned(),
        ),
    }
}

/// `VmHWM` of a live process.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    /// A stand-in "function": a bash script that talks HTTP to the Runtime API over /dev/tcp.
    fn function(dir: &Path, body: &str) -> std::path::PathBuf {
        let path = dir.join("bootstrap");
        let script = format!(
            "#!/bin/bash\nset -e\nhost=${{AWS_LAMBDA_RUNTIME_API%:*}}; port=${{AWS_LAMBDA_RUNTIME_API#*:}}\n\
             call() {{ exec 3<>/dev/tcp/$host/$port; printf \"$1 $2 HTTP/1.1\\r\\nHost: x\\r\\n$3Content-Length: 0\\r\\n\\r\\n\" >&3; }}\n\
             {body}\n"
        );
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn env() -> BTreeMap<String, String> {
        [("PATH".to_owned(), "/usr/bin:/bin".to_owned())].into()
    }

    #[tokio::test]
    async fn when_the_function_asks_for_its_first_invocation_should_time_its_init() {
        let dir = tempfile::tempdir().unwrap();
        let bin = function(dir.path(), "sleep 0.05\ncall GET /2018-06-01/runtime/invocation/next\nexec sleep 30");
        let runtime = FakeRuntime::start().await.unwrap();
        for _ in 0..2 {
            let sample = runtime.cold_start(&bin, &env(), Duration::from_secs(20)).await.unwrap();
            match sample.outcome {
                Outcome::Ready { init, .. } => assert!(init >= Duration::from_millis(50), "{init:?}"),
                other => panic!("expected ready, got {other:?}"),
            }
            assert!(sample.aws_calls.is_empty());
        }
    }

    #[tokio::test]
    async fn when_init_reads_a_secret_should_record_the_call_and_still_reach_next() {
        let dir = tempfile::tempdir().unwrap();
        let bin = function(
            dir.path(),
            "call POST / 'X-Amz-Target: secretsmanager.GetSecretValue\\r\\n'\nhead -c 12 <&3 >/dev/null\n\
             call GET /2018-06-01/runtime/invocation/next\nexec sleep 30",
        );
        let runtime = FakeRuntime::start().await.unwrap();
        let sample = runtime.cold_start(&bin, &env(), Duration::from_secs(20)).await.unwrap();
        assert!(matches!(sample.outcome, Outcome::Ready { .. }), "{:?}", sample.outcome);
        assert_eq!(sample.aws_calls, vec!["secretsmanager.GetSecretValue".to_owned()]);
    }

    #[tokio::test]
    async fn when_the_function_exits_during_init_should_report_its_output() {
        let dir = tempfile::tempdir().unwrap();
        let bin = function(dir.path(), "echo 'CATALOG_TABLE is not set' >&2\nexit 3");
        let runtime = FakeRuntime::start().await.unwrap();
        let sample = runtime.cold_start(&bin, &env(), Duration::from_secs(20)).await.unwrap();
        match sample.outcome {
            Outcome::Exited(text) => assert!(text.contains("CATALOG_TABLE is not set"), "{text}"),
            other => panic!("expected exit, got {other:?}"),
        }
    }
}
