//! `make bench-lambda`: every function's deployed binary size (arm64, `cargo lambda build --release --arm64`)
//! and its init duration, from spawning the binary to its first `GET /2018-06-01/runtime/invocation/next` on
//! a fake Runtime API, with the environment template.yaml gives it. Prints both tables, marks the targets,
//! and names the functions that miss them and why (an init error, an AWS call made during init).
//!
//! Init is measured on binaries built for this machine with the release profile: an arm64 binary does not
//! run on x86_64. It is a proxy for Lambda's `Init Duration` on Graviton, not the same number.

mod runtime;
mod template;

use anyhow::{bail, Result};
use clap::Parser;
use runtime::{FakeRuntime, Outcome, Sample};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use template::Function;

const MB: f64 = 1_000_000.0;

#[derive(Parser, Debug)]
#[command(about = "Binary size and init duration of every Lambda function")]
struct Args {
    #[arg(long, default_value = "template.yaml")]
    template: PathBuf,
    /// Where `cargo lambda build` put the deployed binaries (`<dir>/<function>/bootstrap`): prints their sizes.
    #[arg(long)]
    size_dir: Option<PathBuf>,
    /// Where the native release binaries are (`<dir>/<function>`): measures their init.
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Cold starts per function.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Give up on an init after this long.
    #[arg(long, default_value_t = 10)]
    timeout_s: u64,
    #[arg(long, default_value_t = 8.0)]
    size_target_mb: f64,
    #[arg(long, default_value_t = 20.0)]
    init_target_ms: f64,
    /// An extra variable for every function, NAME=VALUE (e.g. SSL_CERT_FILE, to see what the CA store costs).
    #[arg(long = "env", value_parser = parse_var)]
    extra_env: Vec<(String, String)>,
    /// The functions (binary names) to report; every function of the template when none.
    functions: Vec<String>,
}

/// One function's results.
struct Row {
    function: Function,
    size: Option<u64>,
    init: Option<Init>,
}

struct Init {
    /// Initialization durations of the runs that reached `next`, in ms, sorted.
    ms: Vec<f64>,
    peak_rss_kib: Option<u64>,
    failure: Option<String>,
    /// False when there was no binary to run (not built yet).
    built: bool,
    aws_calls: Vec<String>,
}

impl Init {
    fn median(&self) -> Option<f64> {
        self.ms.get(self.ms.len() / 2).copied()
    }
    fn min(&self) -> Option<f64> {
        self.ms.first().copied()
    }
    fn max(&self) -> Option<f64> {
        self.ms.last().copied()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let mut functions = template::load(&args.template)?;
    if !args.functions.is_empty() {
        let unknown: Vec<_> = args.functions.iter().filter(|f| !functions.iter().any(|t| &t.binary == *f)).collect();
        if !unknown.is_empty() {
            bail!("not functions of {}: {unknown:?}", args.template.display());
        }
        functions.retain(|f| args.functions.contains(&f.binary));
    }
    let mut rows: Vec<Row> = functions.into_iter().map(|function| Row { function, size: None, init: None }).collect();

    if let Some(dir) = &args.size_dir {
        for row in &mut rows {
            row.size = std::fs::metadata(dir.join(&row.function.binary).join("bootstrap")).ok().map(|m| m.len());
        }
        print_sizes(&rows, args.size_target_mb);
    }
    if let Some(dir) = &args.bin_dir {
        let runtime = FakeRuntime::start().await?;
        for row in &mut rows {
            row.init = Some(measure(&runtime, dir, &row.function, &args, Duration::from_secs(args.timeout_s)).await?);
        }
        print_inits(&rows, dir, args.runs, args.init_target_ms);
    }
    print_misses(&rows, &args);
    Ok(())
}

async fn measure(
    runtime: &FakeRuntime,
    dir: &Path,
    function: &Function,
    args: &Args,
    timeout: Duration,
) -> Result<Init> {
    let mut init = Init { ms: Vec::new(), peak_rss_kib: None, failure: None, built: false, aws_calls: Vec::new() };
    let Ok(binary) = dir.join(&function.binary).canonicalize() else {
        return Ok(init);
    };
    init.built = true;
    let mut env = lambda_env(function);
    env.extend(args.extra_env.iter().cloned());
    for _ in 0..args.runs {
        let Sample { outcome, aws_calls } = runtime.cold_start(&binary, &env, timeout).await?;
        for call in aws_calls {
            if !init.aws_calls.contains(&call) {
                init.aws_calls.push(call);
            }
        }
        match outcome {
            Outcome::Ready { init: took, peak_rss_kib } => {
                init.ms.push(took.as_secs_f64() * 1000.0);
                init.peak_rss_kib = init.peak_rss_kib.max(peak_rss_kib);
            }
            Outcome::InitError(body) => init.failure = Some(format!("init error: {body}")),
            Outcome::Exited(tail) => init.failure = Some(format!("exited before its first next: {tail}")),
            Outcome::TimedOut => init.failure = Some(format!("no next within {} s", timeout.as_secs())),
        }
    }
    init.ms.sort_by(f64::total_cmp);
    Ok(init)
}

/// What Lambda sets for a `provided.al2023` function, fake credentials, and the template's variables.
fn lambda_env(function: &Function) -> BTreeMap<String, String> {
    let name = &function.logical_id;
    let mut env: BTreeMap<String, String> = [
        ("PATH", "/usr/local/bin:/usr/bin:/bin".to_owned()),
        ("LANG", "en_US.UTF-8".to_owned()),
        ("TZ", ":UTC".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_DEFAULT_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7BENCH00".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "bench/secret/access/key/not/a/real/one000".to_owned()),
        ("AWS_SESSION_TOKEN", "bench-session-token".to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", name.clone()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", function.memory_mb.to_string()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_owned()),
        ("AWS_LAMBDA_LOG_LEVEL", "INFO".to_owned()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench/[$LATEST]0".to_owned()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023".to_owned()),
        ("_HANDLER", "bootstrap".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    env.extend(function.environment.clone());
    env
}

fn print_sizes(rows: &[Row], target_mb: f64) {
    let mut sorted: Vec<&Row> = rows.iter().collect();
    sorted.sort_by_key(|r| std::cmp::Reverse(r.size));
    println!("binary size (arm64, cargo lambda build --release --arm64; MB = 10^6 bytes), target <= {target_mb} MB");
    println!("{:<30} {:>12} {:>8}", "function", "bytes", "MB");
    for row in sorted {
        match row.size {
            Some(bytes) => {
                let mb = bytes as f64 / MB;
                let mark = if mb > target_mb { "  MISS" } else { "" };
                println!("{:<30} {:>12} {:>8.2}{mark}", row.function.binary, bytes, mb);
            }
            None => println!("{:<30} {:>12} {:>8}", row.function.binary, "not built", "-"),
        }
    }
    let sizes: Vec<u64> = rows.iter().filter_map(|r| r.size).collect();
    if !sizes.is_empty() {
        let total: u64 = sizes.iter().sum();
        println!(
            "{} binaries, {:.2} MB on average, {:.2} MB largest",
            sizes.len(),
            total as f64 / MB / sizes.len() as f64,
            sizes.iter().max().copied().unwrap_or(0) as f64 / MB
        );
    }
    println!();
}

fn print_inits(rows: &[Row], dir: &Path, runs: usize, target_ms: f64) {
    let mut sorted: Vec<&Row> = rows.iter().collect();
    sorted.sort_by(|a, b| {
        let key = |r: &Row| r.init.as_ref().and_then(Init::median).unwrap_or(f64::INFINITY);
        key(b).total_cmp(&key(a))
    });
    println!(
        "init: spawn to the first GET /2018-06-01/runtime/invocation/next, {runs} cold starts each, target < {target_ms} ms"
    );
    println!(
        "({} binaries from {}: the deployed arm64 binaries do not run on this machine; load average {})",
        std::env::consts::ARCH,
        dir.display(),
        std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split(' ').next().map(str::to_owned))
            .unwrap_or_default()
    );
    println!(
        "{:<30} {:>7} {:>9} {:>7} {:>7}  aws calls during init",
        "function", "min_ms", "median_ms", "max_ms", "rss_mb"
    );
    for row in sorted {
        let Some(init) = &row.init else { continue };
        let fmt = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into());
        let rss = init.peak_rss_kib.map(|k| format!("{:.1}", k as f64 / 1024.0)).unwrap_or_else(|| "-".into());
        let mark = match (init.median(), &init.failure) {
            _ if !init.built => "  not built",
            (_, Some(_)) => "  FAILED",
            (Some(m), None) if m >= target_ms => "  MISS",
            _ => "",
        };
        let calls = if init.aws_calls.is_empty() { "-".to_owned() } else { init.aws_calls.join(", ") };
        println!(
            "{:<30} {:>7} {:>9} {:>7} {:>7}  {calls}{mark}",
            row.function.binary,
            fmt(init.min()),
            fmt(init.median()),
            fmt(init.max()),
            rss
        );
    }
    println!();
}

fn print_misses(rows: &[Row], args: &Args) {
    let mut by_size: Vec<&Row> = rows.iter().filter(|r| r.size.is_some()).collect();
    by_size.sort_by_key(|r| std::cmp::Reverse(r.size));
    let over_size: Vec<String> = by_size
        .iter()
        .filter_map(|r| {
            let mb = r.size? as f64 / MB;
            (mb > args.size_target_mb).then(|| format!("{} ({mb:.2} MB)", r.function.binary))
        })
        .collect();
    if args.size_dir.is_some() {
        println!("over {} MB: {}", args.size_target_mb, list(&over_size));
    }
    if args.bin_dir.is_none() {
        return;
    }
    let inits: Vec<(&Row, &Init)> = rows.iter().filter_map(|r| Some((r, r.init.as_ref()?))).collect();
    let slow: Vec<String> = inits
        .iter()
        .filter_map(|(r, i)| {
            let m = i.median()?;
            (m >= args.init_target_ms).then(|| format!("{} ({m:.1} ms)", r.function.binary))
        })
        .collect();
    println!("init at or over {} ms (median): {}", args.init_target_ms, list(&slow));
    let calling: Vec<String> = inits
        .iter()
        .filter(|(_, i)| !i.aws_calls.is_empty())
        .map(|(r, i)| format!("{} ({}: one network round trip each in AWS)", r.function.binary, i.aws_calls.join(", ")))
        .collect();
    println!("AWS calls during init: {}", list(&calling));
    let missing: Vec<String> = inits.iter().filter(|(_, i)| !i.built).map(|(r, _)| r.function.binary.clone()).collect();
    if !missing.is_empty() {
        println!(
            "not measured (no binary in {}): {}",
            args.bin_dir.as_deref().unwrap_or(Path::new("")).display(),
            list(&missing)
        );
    }
    for (row, init) in inits {
        if let Some(failure) = &init.failure {
            println!("init FAILED for {}: {failure}", row.function.binary);
        }
    }
}

fn parse_var(raw: &str) -> Result<(String, String), String> {
    let (name, value) = raw.split_once('=').ok_or_else(|| format!("{raw:?} is not NAME=VALUE"))?;
    Ok((name.to_owned(), value.to_owned()))
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join("; ")
    }
}
