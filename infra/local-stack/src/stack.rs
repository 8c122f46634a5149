//! `local-stack up`: the lifecycle of a running stack. Binds the ports, starts moto and the AWS endpoint,
//! then runs generations: provision, demo users, seed, functions + HTTP API + pollers, until a signal
//! (stop) or a reset request (empty the emulator and start the next generation on the same ports).
//! On stop every child process is killed and waited for.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::aws_proxy::{self, AwsProxy, Control};
use crate::lambda::Lambdas;
use crate::moto::{self, Moto, MotoFiles};
use crate::provision::{self, Options, Provisioned};
use crate::state::StackInfo;
use crate::template::{Environment, Template, REGION};
use crate::users::{self, DemoUsers};
use crate::UpArgs;

/// An SDK configuration for the local AWS endpoint at `endpoint`, with the local dummy credentials.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    let credentials = aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "local-stack");
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(credentials)
        .load()
        .await
}

/// The logical id of the table the demo catalog goes into.
const CATALOG_TABLE: &str = "CatalogTable";
/// How long the ready line waits for the stream pollers to deliver the seed (seconds on an idle machine).
const SEED_DELIVERY_LIMIT: Duration = Duration::from_secs(300);
/// The logical id of the table the demo stock goes into.
const INVENTORY_TABLE: &str = "InventoryTable";
/// The template's promotions table, seeded with the demo codes.
const PROMOTIONS_TABLE: &str = "PromotionsTable";

/// Settings fixed for the life of the process.
struct Config {
    template: PathBuf,
    state_dir: PathBuf,
    params: BTreeMap<String, String>,
    no_seed: bool,
    api_port: u16,
    aws_port: u16,
    opts: Options,
}

/// Runs the stack until Ctrl-C or SIGTERM.
pub async fn up(args: UpArgs) -> Result<()> {
    let cwd = std::env::current_dir()?;
    let state_dir = cwd.join(&args.state_dir);
    let template = cwd.join(&args.template);
    if !template.is_file() {
        anyhow::bail!("template {} not found (run from the project root or pass --template)", template.display());
    }
    if let Some(info) = StackInfo::read_running(&state_dir)? {
        anyhow::bail!(
            "a local stack is already running (pid {}, API {}); stop it or use another --state-dir",
            info.pid,
            info.api_url
        );
    }
    crate::state::prepare(&state_dir)?;
    let mut params = BTreeMap::new();
    for p in &args.params {
        let (k, v) = p.split_once('=').ok_or_else(|| anyhow!("--param {p}: expected NAME=VALUE"))?;
        params.insert(k.to_string(), v.to_string());
    }

    let aws_listener = bind(args.aws_port, "--aws-port").await?;
    let api_listener = bind(args.api_port, "--api-port").await?;
    let aws_port = aws_listener.local_addr()?.port();
    let api_port = api_listener.local_addr()?.port();

    let started = Instant::now();
    let check_env =
        Environment { search_dir: state_dir.join("search"), api_url: format!("http://127.0.0.1:{api_port}") };
    Template::load(&template, &params, &check_env)?.provisioning_order()?;
    let files = MotoFiles::under(&provision::project_root(&template));
    let python = moto::ensure_venv(&files).await?;
    let mut moto = Moto::start(&python, &files, args.moto_port, aws_port, &state_dir.join("moto.log")).await?;
    tracing::info!(port = moto.port, "AWS emulator started");

    let config = Config {
        template,
        state_dir: state_dir.clone(),
        params,
        no_seed: args.no_seed,
        api_port,
        aws_port,
        opts: Options {
            aws_port,
            bin_dir: cwd.join(&args.bin_dir),
            schedule_interval: args.schedule_seconds.map(Duration::from_secs),
        },
    };
    let result = run(&config, &moto, aws_listener, api_listener, started).await;
    moto.stop().await;
    StackInfo::remove_if_ours(&state_dir);
    if result.is_ok() {
        eprintln!("local stack stopped");
    }
    result
}

async fn bind(port: u16, flag: &str) -> Result<TcpListener> {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}: is another stack running? ({flag} picks another)"))
}

/// One generation: what runs between two resets.
struct Running {
    shutdown: CancellationToken,
    gateway: JoinHandle<Result<()>>,
    pollers: Vec<JoinHandle<()>>,
    lambdas: Lambdas,
    backlog: crate::pollers::Backlog,
}

impl Running {
    async fn stop(self, proxy: &AwsProxy) {
        proxy.set_lambdas(None);
        self.shutdown.cancel();
        self.lambdas.shutdown().await;
        for p in self.pollers {
            let _ = p.await;
        }
        if !self.gateway.is_finished() {
            let _ = tokio::time::timeout(Duration::from_secs(5), self.gateway).await;
        }
    }
}

enum Event {
    Stop,
    Reset(oneshot::Sender<Result<(), String>>),
    GatewayEnded(String),
}

async fn run(
    config: &Config,
    moto: &Moto,
    aws_listener: TcpListener,
    api_listener: TcpListener,
    started: Instant,
) -> Result<()> {
    let (control_tx, mut control_rx) = mpsc::channel(4);
    let proxy = AwsProxy::new(moto.port, control_tx);
    let endpoint_shutdown = CancellationToken::new();
    let endpoint = tokio::spawn(aws_proxy::serve(aws_listener, Arc::clone(&proxy), endpoint_shutdown.clone()));
    let aws_endpoint = format!("http://127.0.0.1:{}", config.aws_port);
    let aws = sdk_config(&aws_endpoint).await;

    let signal = shutdown_signal();
    tokio::pin!(signal);
    let mut listener = Some(api_listener);
    let mut pending_ack: Option<oneshot::Sender<Result<(), String>>> = None;
    let mut first = true;
    let outcome = loop {
        let api_listener = match listener.take() {
            Some(l) => l,
            None => bind(config.api_port, "--api-port").await?,
        };
        let generation = tokio::select! {
            g = start_generation(config, moto, &aws, &proxy, api_listener) => g,
            _ = &mut signal => break Ok(()),
        };
        let (running, provisioned) = match generation {
            Ok(g) => g,
            Err(e) => {
                if let Some(ack) = pending_ack.take() {
                    let _ = ack.send(Err(format!("{e:#}")));
                }
                break Err(e);
            }
        };
        let info = StackInfo {
            api_url: format!("http://127.0.0.1:{}", config.api_port),
            aws_endpoint: aws_endpoint.clone(),
            moto_url: moto.url(),
            region: REGION.to_string(),
            user_pool_id: provisioned.user_pool.as_ref().map(|p| p.pool_id.clone()),
            user_pool_client_id: provisioned.user_pool.as_ref().map(|p| p.client_id.clone()),
            issuer: provisioned.user_pool.as_ref().map(|p| p.issuer.clone()),
            state_dir: config.state_dir.clone(),
            pid: std::process::id(),
        };
        info.write()?;
        // Ready means ready: the seed's stream records are delivered (the demo catalog is searchable).
        let backlog = running.backlog.clone();
        tokio::select! {
            drained = tokio::time::timeout(SEED_DELIVERY_LIMIT, backlog.drained()) => {
                if drained.is_err() {
                    tracing::warn!(limit_s = SEED_DELIVERY_LIMIT.as_secs(), "the seed's stream records are not all delivered yet");
                }
            }
            _ = &mut signal => {
                Running::stop(running, &proxy).await;
                break Ok(());
            }
        }
        if let Some(ack) = pending_ack.take() {
            let _ = ack.send(Ok(()));
            tracing::info!("local stack reset");
        }
        if first {
            first = false;
            tracing::info!(
                seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
                functions = provisioned.plan.functions.len(),
                routes = provisioned.plan.routes.len(),
                aws_endpoint = %aws_endpoint,
                "started"
            );
            println!("local stack ready: API on {}", info.api_url);
        }

        let Running { shutdown, mut gateway, pollers, lambdas, backlog } = running;
        let event = tokio::select! {
            _ = &mut signal => Event::Stop,
            Some(Control::Reset(ack)) = control_rx.recv() => Event::Reset(ack),
            ended = &mut gateway => Event::GatewayEnded(match ended {
                Ok(Ok(())) => "the HTTP API stopped".to_string(),
                Ok(Err(e)) => format!("the HTTP API failed: {e:#}"),
                Err(e) => format!("the HTTP API task failed: {e}"),
            }),
        };
        Running { shutdown, gateway, pollers, lambdas, backlog }.stop(&proxy).await;
        match event {
            Event::Stop => break Ok(()),
            Event::GatewayEnded(why) => break Err(anyhow!(why)),
            Event::Reset(ack) => {
                tracing::info!("resetting: emptying the emulator");
                if let Err(e) = moto.reset().await {
                    let _ = ack.send(Err(format!("{e:#}")));
                    break Err(e);
                }
                pending_ack = Some(ack);
            }
        }
    };
    endpoint_shutdown.cancel();
    let _ = endpoint.await;
    outcome
}

async fn start_generation(
    config: &Config,
    moto: &Moto,
    aws: &SdkConfig,
    proxy: &AwsProxy,
    api_listener: TcpListener,
) -> Result<(Running, Provisioned)> {
    moto.configure().await?;
    let search_dir = config.state_dir.join("search");
    clear_dir(&search_dir)?;
    let env = Environment { search_dir, api_url: format!("http://127.0.0.1:{}", config.api_port) };
    let mut template = Template::load(&config.template, &config.params, &env)?;
    let provisioned = provision::provision(&mut template, aws, &config.opts).await?;
    let users = match &provisioned.user_pool {
        Some(pool) => {
            let cognito = aws_sdk_cognitoidentityprovider::Client::new(aws);
            users::create_demo_users(&cognito, moto, pool).await?
        }
        None => {
            tracing::warn!("the template has no user pool with an app client: no demo users");
            DemoUsers::default()
        }
    };
    if !config.no_seed {
        seed(aws, &provisioned, &users).await.context("seeding the demo catalog")?;
    }

    let lambdas = Lambdas::start(provisioned.plan.functions.clone(), base_env(config.aws_port))?;
    proxy.set_lambdas(Some(lambdas.clone()));
    let shutdown = CancellationToken::new();
    let plan = Arc::new(provisioned.plan.clone());
    let gateway =
        tokio::spawn(crate::gateway::serve(api_listener, Arc::clone(&plan), lambdas.clone(), shutdown.clone()));
    let (pollers, backlog) = crate::pollers::start(&plan, lambdas.clone(), aws.clone(), shutdown.clone());
    Ok((Running { shutdown, gateway, pollers, lambdas, backlog }, provisioned))
}

/// The environment every function gets under its template environment.
fn base_env(aws_port: u16) -> BTreeMap<String, String> {
    BTreeMap::from(
        [
            ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{aws_port}")),
            ("AWS_REGION", REGION.to_string()),
            ("AWS_DEFAULT_REGION", REGION.to_string()),
            ("AWS_ACCESS_KEY_ID", "test".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
            // Sellers' webhook endpoints on this machine (test receivers, a developer's) get deliveries: http
            // to loopback only; private and metadata addresses stay refused.
            ("WEBHOOK_ALLOW_LOOPBACK_HTTP", "true".to_string()),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    )
}

/// Loads the demo catalog into the template's CatalogTable, owned by the demo sellers, then its stock into
/// the InventoryTable.
async fn seed(aws: &SdkConfig, provisioned: &Provisioned, users: &DemoUsers) -> Result<()> {
    let sellers: Vec<String> = users.in_group("sellers").map(|u| u.sub.clone()).collect();
    let started = Instant::now();
    match provisioned.names.get(CATALOG_TABLE) {
        Some(table) => {
            let products = crate::seed_catalog::seed(aws, table, &sellers).await?;
            tracing::info!(products, ms = started.elapsed().as_millis() as u64, "demo catalog seeded");
            let config = commerce_aws::shipping_config::DynamoShippingConfig::new(
                aws_sdk_dynamodb::Client::new(aws),
                table.as_str(),
            );
            let (regions, methods) = commerce_demo::shipping::seed(&config, &sellers)
                .await
                .context("seeding the demo tax regions and shipping methods")?;
            tracing::info!(regions, methods, "demo taxes and shipping seeded");
        }
        None => tracing::warn!("the template has no {CATALOG_TABLE}: no demo catalog"),
    }
    if let Some(table) = provisioned.names.get(PROMOTIONS_TABLE) {
        let store = commerce_aws::promotions::DynamoPromotions::new(aws_sdk_dynamodb::Client::new(aws), table.as_str());
        let promotions =
            commerce_demo::promotions::seed(&store, &sellers).await.context("seeding the demo promotions")?;
        tracing::info!(promotions, "demo promotions seeded");
    }
    if let Some(table) = provisioned.names.get(INVENTORY_TABLE) {
        let started = Instant::now();
        let items = crate::seed_inventory::seed(aws, table, &sellers).await.context("seeding the demo inventory")?;
        tracing::info!(stock_items = items, ms = started.elapsed().as_millis() as u64, "demo inventory seeded");
    }
    Ok(())
}

/// Empties `dir`: the emulator starts empty, so must everything derived from it.
fn clear_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping");
}
