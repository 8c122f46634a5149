//! The local stack: runs the whole system described by template.yaml on one machine.
//!
//! `up` installs and starts the AWS emulator (moto), serves the local AWS endpoint, provisions the
//! template's resources, creates the demo users, seeds the demo catalog and stock, then runs the functions,
//! the HTTP API and the event-source pollers until Ctrl-C or SIGTERM. `token` prints an ID token of a demo
//! user of the running stack; `mail` prints the emails it sent; `reset` empties and re-provisions a running
//! stack, or deletes the state of a stopped one.

mod aws_proxy;
mod gateway;
mod lambda;
#[cfg(test)]
mod live_tests;
mod mail;
mod moto;
mod plan;
mod pollers;
mod provision;
mod seed_catalog;
mod seed_inventory;
mod stack;
mod state;
mod template;
mod users;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use clap::{Args, Parser, Subcommand};

/// Runs the commerce backend described by template.yaml on this machine.
#[derive(Debug, Parser)]
#[command(name = "local-stack", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start everything: AWS emulator, provisioning, demo users and catalog, functions, HTTP API, pollers.
    Up(UpArgs),
    /// Print a fresh ID token of a demo user of the running stack (last line of stdout).
    Token {
        /// shopper, shopper2, seller, seller2, admin, or shopper-<n> (created on first use).
        #[arg(long)]
        user: String,
        #[arg(long, default_value = ".local/state")]
        state_dir: PathBuf,
    },
    /// Print the emails the running stack sent, one JSON line each, newest last:
    /// `{"id", "to": [...], "subject", "text", "html"}`.
    Mail {
        /// Only the emails to this address (case-insensitive).
        #[arg(long)]
        to: Option<String>,
        #[arg(long, default_value = ".local/state")]
        state_dir: PathBuf,
    },
    /// Install the pinned AWS emulator into `.local/venv` (done by `up` too; CI runs it ahead of the tests).
    Setup {
        #[arg(long, default_value = "template.yaml")]
        template: PathBuf,
    },
    /// Reset the running stack's data (re-provision, re-seed), or delete the state of a stopped one.
    Reset {
        #[arg(long, default_value = ".local/state")]
        state_dir: PathBuf,
    },
}

/// Options of `up`.
#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// Port of the HTTP API (0: any free port).
    #[arg(long, env = "LOCAL_API_PORT", default_value_t = 3000)]
    pub api_port: u16,
    /// Port of the local AWS endpoint, AWS_ENDPOINT_URL (0: any free port).
    #[arg(long, env = "LOCAL_AWS_PORT", default_value_t = 4566)]
    pub aws_port: u16,
    /// Port of the emulator itself (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub moto_port: u16,
    #[arg(long, default_value = ".local/state")]
    pub state_dir: PathBuf,
    /// Where the function binaries are.
    #[arg(long, default_value = "target/debug")]
    pub bin_dir: PathBuf,
    #[arg(long, default_value = "template.yaml")]
    pub template: PathBuf,
    /// Skip the demo catalog.
    #[arg(long)]
    pub no_seed: bool,
    /// Override a template parameter: `--param Name=Value` (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Run every schedule at this interval (seconds) instead of its rate.
    #[arg(long, env = "LOCAL_SCHEDULE_SECONDS")]
    pub schedule_seconds: Option<u64>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| {
            runtime.block_on(async move {
                match cli.command {
                    Command::Up(args) => stack::up(args).await,
                    Command::Token { user, state_dir } => token(&user, &state_dir).await,
                    Command::Mail { to, state_dir } => mail::run(to.as_deref(), &state_dir).await,
                    Command::Reset { state_dir } => reset(&state_dir).await,
                    Command::Setup { template } => {
                        let files = moto::MotoFiles::under(&provision::project_root(&template));
                        moto::ensure_venv(&files).await.map(|python| println!("emulator ready: {}", python.display()))
                    }
                }
            })
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("LOCAL_STACK_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,aws_config=warn,aws_smithy_runtime=warn,hyper=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

async fn token(user: &str, state_dir: &std::path::Path) -> Result<()> {
    let info = state::StackInfo::read_running(state_dir)?
        .with_context(|| format!("no running stack in {}: start one with `local-stack up`", state_dir.display()))?;
    let (Some(pool_id), Some(client_id)) = (info.user_pool_id.clone(), info.user_pool_client_id.clone()) else {
        bail!("the running stack has no user pool with an app client");
    };
    let aws = stack::sdk_config(&info.aws_endpoint).await;
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&aws);
    let described = cognito
        .describe_user_pool()
        .user_pool_id(&pool_id)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", aws_sdk_cognitoidentityprovider::error::DisplayErrorContext(&e)))?;
    let username_is_email = described
        .user_pool
        .and_then(|p| p.username_attributes)
        .is_some_and(|a| a.iter().any(|x| x.as_str() == "email"));
    let pool = provision::UserPoolInfo {
        issuer: info.issuer.clone().unwrap_or_else(|| provision::cognito_issuer(&pool_id)),
        pool_id,
        client_id,
        username_is_email,
    };
    let token = users::id_token(&cognito, &pool, user).await?;
    println!("{token}");
    Ok(())
}

async fn reset(state_dir: &std::path::Path) -> Result<()> {
    match state::StackInfo::read_running(state_dir)? {
        Some(info) => {
            let http = reqwest::Client::builder().no_proxy().build()?;
            let resp = http
                .post(format!("{}/_local/reset", info.aws_endpoint))
                .timeout(std::time::Duration::from_secs(300))
                .send()
                .await
                .context("asking the running stack to reset")?;
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            if !status.is_success() {
                bail!("reset failed: HTTP {status}: {body}");
            }
            println!("local stack reset: data re-provisioned and re-seeded");
        }
        None => {
            if state::delete(state_dir)? {
                println!("no running stack; removed {}", state_dir.display());
            } else {
                println!("no running stack and no state in {}", state_dir.display());
            }
        }
    }
    Ok(())
}
