//! `make model`: simulates a flash sale of the deployed configuration (template.yaml) under AWS's documented
//! limits and prints admissions/s per SKU, the time to sell out, the busiest partition, throttling, Lambda
//! concurrency and cost; `flash-model sweep` varies shards, lanes and worker concurrency.

use clap::{Parser, Subcommand, ValueEnum};
use flash_model::config::{default_lanes, default_shards, Arrival, Composition, Config, Design, Limits, Profile};
use flash_model::report::{self, Report};
use flash_model::template::{self, Setting, TemplateSettings};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LatencyProfile {
    /// Measured on the local stack (one emulator, debug builds, 8 environments per function).
    Local,
    /// AWS's documented typical latencies.
    Aws,
}

#[derive(Parser, Debug)]
#[command(about = "Simulates the flash-sale pipeline with AWS's limits and template.yaml's settings")]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    opts: Opts,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// One sale (the default).
    Run,
    /// A sweep over shards, lanes and worker concurrency, with the account quotas as documented and raised.
    Sweep,
}

#[derive(clap::Args, Debug, Clone)]
struct Opts {
    #[arg(long, default_value = "template.yaml")]
    template: PathBuf,
    #[arg(long, value_enum, default_value_t = LatencyProfile::Aws)]
    latency_profile: LatencyProfile,
    #[arg(long, value_enum, default_value_t = Design::Batch)]
    design: Design,
    /// How a receive fills a batch (default: same-group for aws, send-order for local, as moto does).
    #[arg(long, value_enum)]
    composition: Option<Composition>,
    #[arg(long, default_value_t = 500_000)]
    buyers: u32,
    #[arg(long, default_value_t = 10_000)]
    units: u32,
    /// Shard items (default: one per 250 units, at most 10).
    #[arg(long)]
    shards: Option<u32>,
    /// Waiting-room lanes (default: 8 per shard within the deployment's lane cap; single takes: one per shard).
    #[arg(long)]
    lanes: Option<u32>,
    /// The worker's MaximumConcurrency (default: template.yaml).
    #[arg(long)]
    concurrency: Option<u32>,
    /// The worker's BatchSize (default: template.yaml).
    #[arg(long)]
    batch_size: Option<u32>,
    /// burst[:seconds], rate[:per_second] or closed[:in_flight].
    #[arg(long, default_value = "burst:1")]
    arrival: Arrival,
    /// Entry route throttle, requests/s and burst (default: template.yaml RouteSettings).
    #[arg(long)]
    entry_rps: Option<f64>,
    #[arg(long)]
    entry_burst: Option<f64>,
    #[arg(long)]
    poll_rps: Option<f64>,
    #[arg(long)]
    poll_burst: Option<f64>,
    /// API Gateway account throttle (documented default 10,000 rps, burst 5,000).
    #[arg(long)]
    account_rps: Option<f64>,
    #[arg(long)]
    account_burst: Option<f64>,
    /// Lambda account concurrency (documented default 1,000).
    #[arg(long)]
    lambda_concurrency: Option<u32>,
    /// On-demand table quota, write and read request units per second (documented default 40,000).
    #[arg(long)]
    table_wcu: Option<f64>,
    #[arg(long)]
    table_rcu: Option<f64>,
    /// The event source starts at MaximumConcurrency (provisioned pollers) instead of ramping from 5.
    #[arg(long)]
    warm_pollers: bool,
    /// Simulated seconds after which a run stops (a sale not sold out by then is reported as such).
    #[arg(long, default_value_t = 600.0)]
    horizon: f64,
    /// Print every admission batch (start, end, lanes) to stderr.
    #[arg(long)]
    trace: bool,
    /// Not the code: after a take the worker keeps the units the shard write left (returned with the write)
    /// instead of what it believed less what it took.
    #[arg(long)]
    learn_from_takes: bool,
    /// Provisioned concurrency of the entry and status functions (environments ready before the sale; Lambda's
    /// scaling rate applies beyond them).
    #[arg(long, default_value_t = 0)]
    provisioned: u32,
    /// Items holding each sale's gate (default: template.yaml's FLASH_GATE_COPIES).
    #[arg(long)]
    gate_copies: Option<u32>,
    /// No rebalancing of units between shards near sell-out.
    #[arg(long)]
    no_rebalance: bool,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Simulate every late buyer to their 410 (slow at 500,000 buyers) instead of counting them.
    #[arg(long)]
    full: bool,
}

fn main() -> Result<(), String> {
    let args = Args::parse();
    let settings = template::read(&args.opts.template)?;
    match args.command.unwrap_or(Command::Run) {
        Command::Run => {
            let (cfg, sources) = config(&args.opts, &settings);
            let report = flash_model::simulate(&cfg);
            report::print(&cfg, &report, &sources);
            println!("admissions/s per SKU: {:.0}", report.admissions_per_s());
        }
        Command::Sweep => sweep(&args.opts, &settings),
    }
    Ok(())
}

/// The run's configuration, and where each setting came from.
fn config(o: &Opts, t: &TemplateSettings) -> (Config, Vec<(String, String)>) {
    let mut sources: Vec<(String, String)> = Vec::new();
    let mut pick = |name: &str, cli: Option<f64>, setting: &Setting| -> f64 {
        match cli {
            Some(v) => {
                sources.push((format!("{name} {v}"), "command line".into()));
                v
            }
            None => {
                sources.push((format!("{name} {}", setting.value), setting.source.clone()));
                setting.value
            }
        }
    };
    let local = o.latency_profile == LatencyProfile::Local;
    let batch_size = pick("BatchSize", o.batch_size.map(f64::from), &t.batch_size) as u32;
    let concurrency = pick("MaximumConcurrency", o.concurrency.map(f64::from), &t.max_concurrency) as u32;
    let entry_rps = pick("entry route rps", o.entry_rps, &t.entry_rps);
    let entry_burst = pick("entry route burst", o.entry_burst, &t.entry_burst);
    let poll_rps = pick("status route rps", o.poll_rps, &t.poll_rps);
    let poll_burst = pick("status route burst", o.poll_burst, &t.poll_burst);
    let worker_timeout_s = pick("worker Timeout s", None, &t.worker_timeout_s);
    let visibility_timeout_s = pick("VisibilityTimeout s", None, &t.visibility_timeout_s);
    let entry_memory_mb = pick("entry MemorySize MB", None, &t.entry_memory_mb);
    let poll_memory_mb = pick("status MemorySize MB", None, &t.poll_memory_mb);
    let worker_memory_mb = pick("worker MemorySize MB", None, &t.worker_memory_mb);
    let gate_cache_ms = pick("entry gate cache ms", None, &t.gate_cache_ms);
    let poll_gate_cache_ms = pick("status open-gate trust ms", None, &t.poll_gate_cache_ms);
    let gate_copies = pick("gate copies", o.gate_copies.map(f64::from), &t.gate_copies) as u32;
    sources.push(("worker open-gate trust 1000 ms".into(), "OPEN_GATE_TRUST (shared/app flash_sale.rs)".into()));
    let shards = o.shards.unwrap_or_else(|| default_shards(o.units));
    sources.push((
        format!("shards {shards}"),
        if o.shards.is_some() { "command line".into() } else { "default: one per 250 units, at most 10".into() },
    ));
    let max_lanes = t.max_lanes.as_ref().map_or(f64::from(concurrency), |s| s.value) as u32;
    let lanes = match (o.lanes, o.design) {
        (Some(l), _) => {
            sources.push((format!("lanes {l}"), "command line".into()));
            l
        }
        (None, Design::Single) => {
            sources.push((format!("lanes {shards}"), "one per shard (single takes)".into()));
            shards
        }
        (None, Design::Batch) => {
            let l = default_lanes(shards, max_lanes);
            let cap = match &t.max_lanes {
                Some(s) => format!("{} {}", s.value, s.source),
                None => format!("MaximumConcurrency {concurrency} (no FLASH_MAX_LANES in the template)"),
            };
            sources.push((format!("lanes {l}"), format!("default: 8 per shard, capped by {cap}")));
            l
        }
    };
    let mut limits = if local { Limits::local() } else { Limits::aws() };
    if let Some(v) = o.account_rps {
        limits.api_account_rps = v;
    }
    if let Some(v) = o.account_burst {
        limits.api_account_burst = v;
    }
    if let Some(v) = o.lambda_concurrency {
        limits.lambda_concurrency = v;
    }
    if let Some(v) = o.table_wcu {
        limits.table_wcu = v;
    }
    if let Some(v) = o.table_rcu {
        limits.table_rcu = v;
    }
    if !local {
        sources.push((
            format!("API account {} rps, burst {}", limits.api_account_rps, limits.api_account_burst),
            if o.account_rps.is_some() { "command line".into() } else { "API Gateway quota (default)".into() },
        ));
        sources.push((
            format!("Lambda concurrency {}", limits.lambda_concurrency),
            if o.lambda_concurrency.is_some() { "command line".into() } else { "Lambda quota (default)".into() },
        ));
        sources.push((
            format!("table {} WCU/s, {} RCU/s", limits.table_wcu, limits.table_rcu),
            "DynamoDB on-demand table quota (default 40,000 each, raisable)".into(),
        ));
        sources.push((
            "partition 1000 WCU/s, 3000 RCU/s".into(),
            "DynamoDB partition limit (adaptive capacity isolates, never exceeds)".into(),
        ));
        sources.push((
            if o.warm_pollers {
                format!("event source {concurrency} batches from the start")
            } else {
                "event source 5 batches + 300/min".into()
            },
            if o.warm_pollers {
                "command line (provisioned pollers)".into()
            } else {
                "Lambda SQS event source scaling (documented)".into()
            },
        ));
        if t.high_throughput_fifo {
            sources.push(("FIFO 70000 requests/s per action".into(), "high-throughput FIFO quota, us-east-1".into()));
        }
    }
    let composition = o.composition.unwrap_or(if local { Composition::SendOrder } else { Composition::SameGroup });
    let cfg = Config {
        buyers: o.buyers,
        units: o.units,
        shards,
        lanes: lanes.max(1),
        arrival: o.arrival,
        design: o.design,
        composition,
        batch_size,
        concurrency: concurrency.max(1),
        worker_timeout_s,
        visibility_timeout_s,
        entry_memory_mb,
        poll_memory_mb,
        worker_memory_mb,
        entry_rps,
        entry_burst,
        poll_rps,
        poll_burst,
        gate_cache_s: gate_cache_ms / 1000.0,
        poll_gate_cache_s: poll_gate_cache_ms / 1000.0,
        gate_copies: gate_copies.max(1),
        horizon_s: o.horizon,
        trace: o.trace,
        pollers_start_s: 0.0,
        poll_first_s: 0.3,
        poll_factor: 1.5,
        poll_max_s: 3.0,
        retry_first_s: 0.25,
        retry_max_s: 4.0,
        rebalance: !o.no_rebalance,
        learn_from_takes: o.learn_from_takes,
        warm_pollers: o.warm_pollers || local,
        provisioned: o.provisioned,
        limits,
        profile: if local { Profile::local() } else { Profile::aws() },
        seed: o.seed,
        full: o.full,
    };
    (cfg, sources)
}

/// One row of the sweep.
struct Row {
    raised: bool,
    shards: u32,
    lanes: u32,
    concurrency: u32,
    /// Provisioned concurrency of the entry and status functions.
    provisioned: u32,
    /// Items holding the gate (None: template.yaml's FLASH_GATE_COPIES).
    gate_copies: Option<u32>,
    /// Units of the sale (None: the command line's).
    units: Option<u32>,
}

/// The sweep: the deployed configuration, then shards, lanes and worker concurrency with the account quotas as
/// documented and raised (API Gateway, Lambda, the table quota, provisioned pollers).
fn sweep(o: &Opts, t: &TemplateSettings) {
    let deployed = config(o, t).0;
    let raised = Opts {
        entry_rps: Some(100_000.0),
        entry_burst: Some(50_000.0),
        poll_rps: Some(200_000.0),
        poll_burst: Some(100_000.0),
        account_rps: Some(300_000.0),
        account_burst: Some(150_000.0),
        lambda_concurrency: Some(20_000),
        table_wcu: Some(1_000_000.0),
        table_rcu: Some(1_000_000.0),
        warm_pollers: true,
        ..o.clone()
    };
    let row = |raised, shards, lanes, concurrency| Row {
        raised,
        shards,
        lanes,
        concurrency,
        provisioned: 0,
        gate_copies: None,
        units: None,
    };
    let pc = |shards, lanes, concurrency, gate_copies| Row {
        raised: true,
        shards,
        lanes,
        concurrency,
        provisioned: 3_000,
        gate_copies,
        units: None,
    };
    let (n, l, c) = (deployed.shards, deployed.lanes, deployed.concurrency);
    let rows = [
        row(false, n, l, c),
        row(false, 50, 400, 1000),
        row(true, n, l, c),
        row(true, 20, 160, 320),
        row(true, 40, 320, 640),
        row(true, 50, 400, 1000),
        row(true, 50, 800, 1000),
        pc(20, 160, 320, None),
        pc(20, 160, 320, Some(16)),
        pc(50, 800, 1000, Some(1)),
        pc(50, 800, 1000, None),
        pc(50, 800, 1000, Some(16)),
        // Ten times the units: the rate held for seconds, not over the tenth of a second 8,000 units take.
        Row { units: Some(100_000), ..pc(50, 800, 1000, Some(16)) },
    ];
    println!(
        "flash-model sweep: {} buyers ({}) for {} units, latency profile {:?}, {} takes",
        o.buyers,
        o.arrival,
        o.units,
        o.latency_profile,
        if o.design == Design::Batch { "batch" } else { "single" }
    );
    println!("  quotas documented: API account 10,000 rps, Lambda 1,000, table 40,000 units/s, event source 5 + 300/min; routes as template.yaml");
    println!("  quotas raised: API account 300,000 rps, entry route 100,000 rps, status route 200,000 rps, Lambda 20,000, table 1,000,000 units/s, provisioned pollers");
    println!("  raised+pc: raised, and 3,000 provisioned environments each for the entry and status functions (Lambda's scaling rate applies beyond them)");
    println!("  gates: items holding the gate (the gate and its copies, FLASH_GATE_COPIES); each instance reads one");
    println!("  gate reads as the code does: an entry instance trusts its read for 1 s (open or closed), status and worker instances an open one for 1 s");
    println!("  adm wcu/u: the admission's own writes per unit (take record, shard, ticket, hold index); wcu/u: flash-bench's count (worker counters incl. rejections and metrics, + entry 5)");
    println!("  partitions: S = SALE#<id>, S#SHARD#k, S#SEQ#j, S#METRIC#j, HOLDS#<id>#j (gsi1, by lane)");
    println!(
        "{:<10} {:>7} {:>6} {:>5} {:>5} {:>5} {:>8} {:>8} {:>6} {:>6} {:>20} {:>16} {:>8} {:>6} {:>5}  bounded by",
        "quotas",
        "units",
        "shards",
        "lanes",
        "C",
        "gates",
        "adm/s",
        "sellout",
        "adm/u",
        "wcu/u",
        "busiest WCU/s",
        "busiest RCU/s",
        "throttl",
        "lambda",
        "$/1M"
    );
    let mut best = (0.0, String::new());
    for row in rows {
        let base = if row.raised { &raised } else { o };
        let opts = Opts {
            shards: Some(row.shards),
            lanes: Some(row.lanes),
            concurrency: Some(row.concurrency),
            provisioned: row.provisioned,
            gate_copies: row.gate_copies.or(base.gate_copies),
            units: row.units.unwrap_or(base.units),
            ..base.clone()
        };
        let (cfg, _) = config(&opts, t);
        let r = flash_model::simulate(&cfg);
        let label = match (row.raised, row.provisioned) {
            (false, _) => "documented",
            (true, 0) => "raised",
            (true, _) => "raised+pc",
        };
        print_row(label, &cfg, &r);
        if r.admissions_per_s() > best.0 && r.oversold == 0 && r.in_shards == 0 {
            let name = format!(
                "{label}, {} units, {} shards, {} lanes, MaximumConcurrency {}, {} gate items",
                cfg.units, cfg.shards, cfg.lanes, cfg.concurrency, cfg.gate_copies
            );
            best = (r.admissions_per_s(), name);
        }
    }
    println!("best (0 oversold, 0 left in the shards): {}", best.1);
    println!("admissions/s per SKU: {:.0}", best.0);
}

fn print_row(label: &str, cfg: &Config, r: &Report) {
    let short = |p: Option<&report::PartitionReport>, w: bool| {
        p.map_or_else(
            || "-".to_owned(),
            |p| {
                let name = p.name.trim_start_matches("gsi1 ").split(' ').next().unwrap_or("").replace("SALE#<id>", "S");
                format!("{} {:.0}", name, if w { p.peak_wcu } else { p.peak_rcu })
            },
        )
    };
    let cost = r.cost(cfg).total() / r.won.max(1) as f64 * 1e6;
    println!(
        "{:<10} {:>7} {:>6} {:>5} {:>5} {:>5} {:>8.0} {:>8} {:>6.2} {:>6.2} {:>20} {:>16} {:>8} {:>6} {:>5.0}  {}",
        label,
        cfg.units,
        cfg.shards,
        cfg.lanes,
        cfg.concurrency,
        cfg.gate_copies,
        r.admissions_per_s(),
        r.sell_out_s.map_or_else(|| "-".into(), |s| format!("{s:.2}s")),
        r.admission_wcu_per_unit(),
        r.wcu_per_sale(),
        short(r.busiest_write(), true),
        short(r.busiest_read(), false),
        r.ddb_throttled,
        r.lambda_peak_total,
        cost,
        r.bound(cfg)
    );
}
