//! Test support: paths to the repository's files and a handle on a running local stack.
//!
//! [`stack()`] starts ONE local stack per test binary (`<target>/debug/local-stack up` on free ports with a
//! fresh state directory) the first time a test asks for it, and shares it with every test of the binary.
//! The stack runs as a child that dies with the test process (`PR_SET_PDEATHSIG`, set from a thread that
//! lives as long as the process). Its output is kept in memory ([`Stack::log`]) and in
//! `<state-dir>/stack.log`. Build first: `cargo build --workspace`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use serde::Deserialize;

/// How long a cold start of the stack may take: the first run installs the emulator's venv, and ready waits until
/// the seed is indexed (minutes on a busy 2-core machine).
const READY_TIMEOUT: Duration = Duration::from_secs(600);
const READY_LINE: &str = "local stack ready";

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The cargo target directory: `$CARGO_TARGET_DIR`, else `<repo>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                repo_root().join(dir)
            }
        }
        None => repo_root().join("target"),
    }
}

/// A running local stack.
pub struct Stack {
    /// Base URL of the HTTP API, `http://127.0.0.1:<port>`.
    pub api: String,
    /// The local AWS endpoint (`AWS_ENDPOINT_URL`).
    pub aws: String,
    pub state_dir: PathBuf,
    pub region: String,
    pub user_pool_id: String,
    pub user_pool_client_id: String,
    /// The `iss` of the pool's tokens.
    pub issuer: String,
    /// moto's own URL (for its admin API; AWS calls go through `aws`).
    pub moto: String,
    /// How many products a search found right after the ready line (ready means the demo catalog is indexed).
    pub searchable_at_ready: u64,
    bin: PathBuf,
    log: Arc<Mutex<String>>,
    tokens: Mutex<HashMap<String, String>>,
    http: reqwest::Client,
}

/// `<state-dir>/stack.json`, written by `local-stack up` once it is ready.
#[derive(Debug, Deserialize)]
struct StackInfo {
    api_url: String,
    aws_endpoint: String,
    moto_url: String,
    region: String,
    user_pool_id: Option<String>,
    user_pool_client_id: Option<String>,
    issuer: Option<String>,
}

/// The outcome of a Lambda Invoke through the local AWS endpoint.
#[derive(Debug, Clone)]
pub struct Invoked {
    pub status: u16,
    /// `X-Amz-Function-Error`, when the function failed.
    pub function_error: Option<String>,
    /// The payload (or the error document) as JSON; `Null` when empty or not JSON.
    pub body: serde_json::Value,
}

/// The `total` of one search, from a thread of its own (the stack starts inside a test's runtime).
fn search_total(url: &str) -> Result<u64> {
    let url = url.to_owned();
    let total = std::thread::spawn(move || -> Result<u64> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(async {
            let body: serde_json::Value =
                reqwest::Client::builder().no_proxy().build()?.get(&url).send().await?.json().await?;
            Ok(body["total"].as_u64().unwrap_or(0))
        })
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the search thread panicked"))??;
    Ok(total)
}

/// The shared stack of this test binary, started on first use. Panics with the stack's output when it does
/// not start.
pub fn stack() -> &'static Stack {
    static STACK: OnceLock<Result<Stack, String>> = OnceLock::new();
    match STACK.get_or_init(|| Stack::start().map_err(|e| format!("{e:#}"))) {
        Ok(stack) => stack,
        Err(e) => panic!("the local stack did not start: {e}"),
    }
}

impl Stack {
    fn start() -> Result<Stack> {
        let root = repo_root();
        let bin = target_dir().join("debug").join("local-stack");
        // The function binaries: target/debug, or E2E_BIN_DIR (the checkout cost benchmark runs optimized ones).
        let bin_dir = std::env::var_os("E2E_BIN_DIR").map(PathBuf::from).unwrap_or_else(|| target_dir().join("debug"));
        if !bin.is_file() {
            bail!("{} not found: run `cargo build --workspace` first", bin.display());
        }
        let state_dir = fresh_state_dir()?;
        let log = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();

        // The thread that starts the stack must outlive it: PR_SET_PDEATHSIG fires when the forking thread
        // ends. It waits for the child, so it lives exactly as long as the stack does.
        let spawn = {
            let bin = bin.clone();
            let bin_dir = bin_dir.clone();
            let state_dir = state_dir.clone();
            let log = Arc::clone(&log);
            move || {
                let mut cmd = Command::new(&bin);
                cmd.current_dir(&root)
                    .args(["up", "--api-port", "0", "--aws-port", "0", "--state-dir"])
                    .arg(&state_dir)
                    .arg("--bin-dir")
                    .arg(&bin_dir)
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
                child_guard::die_with_parent(&mut cmd, child_guard::Group::Parent);
                let mut child = match cmd.spawn() {
                    Ok(child) => child,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("cannot run {}: {e}", bin.display())));
                        return;
                    }
                };
                let file = std::fs::File::create(state_dir.join("stack.log")).ok().map(|f| Arc::new(Mutex::new(f)));
                if let Some(out) = child.stdout.take() {
                    let (log, file, ready) = (Arc::clone(&log), file.clone(), ready_tx.clone());
                    std::thread::spawn(move || collect(out, &log, file.as_deref(), Some(ready)));
                }
                if let Some(err) = child.stderr.take() {
                    let (log, file) = (Arc::clone(&log), file.clone());
                    std::thread::spawn(move || collect(err, &log, file.as_deref(), None));
                }
                let status = child.wait();
                let _ = ready_tx.send(Err(format!("the stack exited: {status:?}")));
            }
        };
        std::thread::Builder::new().name("local-stack".into()).spawn(spawn)?;

        let outcome = ready_rx.recv_timeout(READY_TIMEOUT);
        let output = || log.lock().map(|l| l.clone()).unwrap_or_default();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => bail!("{e}\n--- stack output ---\n{}", output()),
            Err(_) => bail!("not ready within {READY_TIMEOUT:?}\n--- stack output ---\n{}", output()),
        }
        let info_path = state_dir.join("stack.json");
        let info: StackInfo = serde_json::from_slice(
            &std::fs::read(&info_path).with_context(|| format!("reading {}", info_path.display()))?,
        )?;
        // Every #[tokio::test] has its own runtime, and a pooled connection dies with the runtime that opened
        // it: keep no idle connections, so no test reuses one from a finished test.
        let http = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(0).build()?;
        let searchable_at_ready = search_total(&format!("{}/v1/search?page_size=1", info.api_url))?;
        Ok(Stack {
            api: info.api_url,
            aws: info.aws_endpoint,
            region: info.region,
            user_pool_id: info.user_pool_id.unwrap_or_default(),
            user_pool_client_id: info.user_pool_client_id.unwrap_or_default(),
            issuer: info.issuer.unwrap_or_default(),
            moto: info.moto_url,
            searchable_at_ready,
            state_dir,
            bin,
            log,
            tokens: Mutex::new(HashMap::new()),
            http,
        })
    }

    /// `<api><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api)
    }

    /// An HTTP client for the API (no proxy).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// A fresh ID token of a demo user (`shopper`, `seller`, `admin`, ... or `shopper-<n>`, created on first
    /// use), cached per user for the life of the binary.
    pub fn token(&self, user: &str) -> Result<String> {
        if let Some(token) = self.tokens.lock().ok().and_then(|t| t.get(user).cloned()) {
            return Ok(token);
        }
        let out = Command::new(&self.bin)
            .current_dir(repo_root())
            .args(["token", "--user", user, "--state-dir"])
            .arg(&self.state_dir)
            .output()
            .context("running local-stack token")?;
        if !out.status.success() {
            bail!("local-stack token --user {user} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let token = stdout.lines().last().unwrap_or_default().trim().to_string();
        if token.is_empty() {
            bail!("local-stack token --user {user} printed no token");
        }
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.insert(user.to_string(), token.clone());
        }
        Ok(token)
    }

    /// Invokes a function (logical id) through the local AWS endpoint, as the SDK's Invoke does.
    pub async fn invoke(&self, function: &str, payload: &serde_json::Value) -> Result<Invoked> {
        let url = format!("{}/2015-03-31/functions/{function}/invocations", self.aws);
        let response =
            self.http.post(url).header("content-type", "application/json").body(payload.to_string()).send().await?;
        let status = response.status().as_u16();
        let function_error =
            response.headers().get("x-amz-function-error").and_then(|v| v.to_str().ok()).map(str::to_string);
        let bytes = response.bytes().await?;
        let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        Ok(Invoked { status, function_error, body })
    }

    /// An AWS SDK configuration for the stack's AWS endpoint (region and dummy credentials of the stack).
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        let credentials = aws_sdk_sqs::config::Credentials::new("test", "test", None, None, "system-tests");
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(self.region.clone()))
            .endpoint_url(&self.aws)
            .credentials_provider(credentials)
            .load()
            .await
    }

    /// Everything the stack printed so far (its own log and its functions' output).
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// moto's private signing key for Cognito tokens (a JWK with `kid`, `n`, `e`, `d`), as shipped
    /// in its package: lets tests forge tokens that carry a valid signature.
    pub fn moto_signing_jwk(&self) -> Result<serde_json::Value> {
        let python = repo_root().join(".local/venv/bin/python");
        let script = "import gzip, os, sys, moto.cognitoidp as c\n\
            p = os.path.join(os.path.dirname(c.__file__), 'resources', 'jwks-private.json.gz')\n\
            sys.stdout.write(gzip.open(p).read().decode())";
        let out = Command::new(&python).args(["-c", script]).output().context("running the venv's python")?;
        if !out.status.success() {
            bail!("reading moto's signing key: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    }
}

fn collect(
    stream: impl std::io::Read,
    log: &Mutex<String>,
    file: Option<&Mutex<std::fs::File>>,
    ready: Option<mpsc::Sender<Result<(), String>>>,
) {
    use std::io::Write as _;
    let mut ready = ready;
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { break };
        if let Ok(mut log) = log.lock() {
            log.push_str(&line);
            log.push('\n');
        }
        if let Some(file) = file {
            if let Ok(mut f) = file.lock() {
                let _ = writeln!(f, "{line}");
            }
        }
        if line.contains(READY_LINE) {
            if let Some(tx) = ready.take() {
                let _ = tx.send(Ok(()));
            }
        }
    }
}

/// A new state directory for this process under the system temp dir; directories of test processes that
/// are gone are removed.
fn fresh_state_dir() -> Result<PathBuf> {
    let base = std::env::temp_dir().join("commerce-system-tests");
    std::fs::create_dir_all(&base)?;
    for entry in std::fs::read_dir(&base)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name.split('-').next().and_then(|p| p.parse::<libc::pid_t>().ok());
        // SAFETY: signal 0 only checks that the process exists.
        if pid.is_some_and(|pid| unsafe { libc::kill(pid, 0) } != 0) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let dir = base.join(format!("{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A name unique to this test run, for data that must not collide with other tests: `<prefix>-<random>`.
pub fn unique(prefix: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{prefix}-{}-{n}-{nanos:x}", std::process::id())
}

/// Waits until `check` returns `Some`, polling every 100 ms, up to `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Held by the scenarios that load the one-process emulator hardest (the flash-sale race, concurrent checkouts,
/// hundreds of concurrent reservations), so no two of them overlap: each asserts exact outcomes, and a
/// payment call that times out behind another scenario's load ends its order `payment_error` instead.
pub async fn heavy_scenario() -> tokio::sync::MutexGuard<'static, ()> {
    static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    HEAVY.lock().await
}
