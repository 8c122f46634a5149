//! What a simulated sale measured, what it costs at list prices, and what bounded it.

use crate::config::Config;
use std::collections::BTreeMap;

/// us-east-1 on-demand list prices, entered by hand from the AWS pricing pages (DynamoDB on-demand, SQS, Lambda
/// arm64, API Gateway HTTP APIs first tier). They are list prices as entered, not read from AWS: check them
/// before a decision rests on them.
pub struct Prices {
    pub dynamodb_write_per_million: f64,
    pub dynamodb_read_per_million: f64,
    pub sqs_fifo_per_million: f64,
    pub lambda_request_per_million: f64,
    pub lambda_gb_second: f64,
    pub http_api_per_million: f64,
}

pub const PRICES: Prices = Prices {
    dynamodb_write_per_million: 0.625,
    dynamodb_read_per_million: 0.125,
    sqs_fifo_per_million: 0.50,
    lambda_request_per_million: 0.20,
    lambda_gb_second: 0.000_013_333_4,
    http_api_per_million: 1.00,
};

#[derive(Debug, Clone, Default)]
pub struct PartitionReport {
    pub name: String,
    pub kind: &'static str,
    pub peak_wcu: f64,
    pub peak_rcu: f64,
    pub total_wcu: f64,
    pub throttled: u64,
    /// Of `throttled`, requests refused for their writes.
    pub throttled_writes: u64,
}

#[derive(Debug, Clone, Default)]
pub struct FunctionReport {
    pub name: &'static str,
    pub invocations: u64,
    pub peak: u32,
    pub cold_starts: u64,
    pub gb_s: f64,
    pub memory_mb: f64,
    /// Mean billed duration of an invocation.
    pub mean_ms: f64,
}

/// Everything one run counted.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub won: u64,
    pub oversold: u64,
    pub in_shards: u64,
    pub buyers_won: u64,
    pub rejected_in_line: u64,
    pub rejected_in_line_by_poll: u64,
    pub rejected_by_worker: u64,
    pub rejected_at_door: u64,
    /// Buyers still trying to enter when the sale settled: all answered 410 at the door, counted, not simulated.
    pub late_buyers: u64,
    pub unanswered: u64,
    pub entries_accepted: u64,
    pub first_win_s: Option<f64>,
    pub last_win_s: Option<f64>,
    pub sell_out_s: Option<f64>,
    pub gate_closed_s: Option<f64>,
    pub last_win_seen_s: f64,
    pub admissions_steady: f64,
    pub admissions_average: f64,
    pub admissions_peak_second: u64,
    pub p50_s: f64,
    pub p99_s: f64,
    pub race_s: f64,
    // Requests.
    pub api_requests: u64,
    pub polls: u64,
    pub entry_429: u64,
    pub poll_429: u64,
    pub entry_5xx: u64,
    pub lambda_throttles: u64,
    /// Of the throttled invocations: the account's concurrency was in use, or the function could not add
    /// environments fast enough (1,000 per 10 s).
    pub lambda_throttles_concurrency: u64,
    pub lambda_throttles_scaling: u64,
    pub lambda_peak_total: u32,
    pub ddb_requests: u64,
    pub ops: BTreeMap<&'static str, u64>,
    /// Time the emulator's lock was busy (local profile).
    pub server_busy_s: f64,
    pub ddb_throttled: u64,
    pub ddb_failed: u64,
    pub sqs_sends: u64,
    pub sqs_receives: u64,
    pub sqs_deletes: u64,
    pub sqs_throttled: u64,
    // The worker.
    pub batches: u64,
    pub runs: BTreeMap<u32, u64>,
    pub take_records: u64,
    pub shard_writes: u64,
    pub condition_failures: u64,
    /// Shard writes whose condition failed (the shard held fewer units than asked).
    pub take_failures: u64,
    /// Failed batch takes that then took what the shard held (a short take).
    pub short_takes: u64,
    /// Read units on `SALE#<id>` (sale and gate) by function (entry, status, worker): in total and in each one's
    /// busiest second.
    pub sale_rcu_total: [f64; 3],
    pub sale_rcu_peak: [f64; 3],
    /// Reads of `SALE#<id>` refused by function, after and before the gate closed.
    pub sale_throttled: [[u64; 2]; 3],
    /// Batches that found the shards empty and the gate closed by another worker: turned away without an audit.
    pub closed_by_another: u64,
    /// Rejections of entries already settled (by a status poll).
    pub reject_failures: u64,
    pub rebalance_failures: u64,
    pub fallbacks: u64,
    pub rebalances: u64,
    pub gate_closes: u64,
    pub metric_writes: u64,
    pub given_back: u64,
    pub unsettled_takes: u64,
    /// Takes settled by the audit before a close (their worker gave up on the ticket write).
    pub audit_settled: u64,
    /// Closes that failed because a unit came back after the shards were read.
    pub close_failures: u64,
    pub redelivered: u64,
    /// Write units as the worker's own counters count them (`AdmissionStats::write_units`, metrics included).
    pub worker_counted_wcu: f64,
    pub worker_reads: u64,
    /// The worker's counters when the last buyer got a final answer (what flash-bench reads after a race;
    /// batches of already answered entries may still be queued then).
    pub at_last_answer: Option<WorkerCounters>,
    pub entry_wcu: f64,
    pub poll_wcu: f64,
    // Capacity.
    pub total_wcu: f64,
    pub total_rcu: f64,
    pub table_peak_wcu: f64,
    pub table_peak_rcu: f64,
    pub table_throttled: u64,
    pub partitions: Vec<PartitionReport>,
    pub shard_item_wcu: f64,
    pub functions: Vec<FunctionReport>,
    pub worker_busy: f64,
    pub esm_ramp_end_s: f64,
    /// Batches the event source could have in flight at sell-out.
    pub slots_at_sell_out: u32,
    // Order.
    pub lane_inversions: u64,
    pub passed_over: u64,
    pub settled: bool,
    pub cut_off: bool,
}

/// The worker's own counters at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct WorkerCounters {
    pub at_s: f64,
    pub won: u64,
    pub wcu: f64,
    pub reads: u64,
    pub condition_failures: u64,
    pub fallbacks: u64,
    pub rejected: u64,
}

impl WorkerCounters {
    /// flash-bench's write units per sale: the worker's writes plus each winner's entry (5), per unit won.
    pub fn wcu_per_sale(&self) -> f64 {
        (self.wcu + self.won as f64 * 5.0) / self.won.max(1) as f64
    }
}

/// Dollars per sale, by service.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cost {
    pub dynamodb_writes: f64,
    pub dynamodb_reads: f64,
    pub sqs: f64,
    pub lambda: f64,
    pub api: f64,
}

impl Cost {
    pub fn total(&self) -> f64 {
        self.dynamodb_writes + self.dynamodb_reads + self.sqs + self.lambda + self.api
    }
}

impl Report {
    /// The headline: admissions per second while the middle 80 % of the units were won.
    pub fn admissions_per_s(&self) -> f64 {
        if self.admissions_steady.is_finite() {
            self.admissions_steady
        } else {
            self.admissions_average
        }
    }

    /// Write units per unit sold, as infra/flash-bench computes it: the worker's counted writes plus each
    /// winner's entry (5), over the units won.
    pub fn wcu_per_sale(&self) -> f64 {
        (self.worker_counted_wcu + self.won as f64 * 5.0) / self.won.max(1) as f64
    }

    /// The admission's own write units per unit won: take records, shard writes (failed ones too), the won
    /// tickets and their hold index entries.
    pub fn admission_wcu_per_unit(&self) -> f64 {
        (self.take_records + self.shard_writes + self.take_failures + 2 * self.won) as f64 / self.won.max(1) as f64
    }

    /// Write units per buyer turned away, as infra/flash-bench computes it: entry (5) and rejection (2) of
    /// everyone turned away in line, over everyone turned away.
    pub fn wcu_per_rejection(&self) -> f64 {
        let rejected = (self.rejected_in_line + self.rejected_at_door).max(1) as f64;
        self.rejected_in_line as f64 * 7.0 / rejected
    }

    pub fn busiest_write(&self) -> Option<&PartitionReport> {
        self.partitions.iter().max_by(|a, b| a.peak_wcu.total_cmp(&b.peak_wcu))
    }

    pub fn busiest_read(&self) -> Option<&PartitionReport> {
        self.partitions.iter().max_by(|a, b| a.peak_rcu.total_cmp(&b.peak_rcu))
    }

    pub fn most_throttled(&self) -> Option<&PartitionReport> {
        self.partitions.iter().filter(|p| p.throttled > 0).max_by_key(|p| p.throttled)
    }

    /// The sale's cost at [`PRICES`]; late buyers (counted, not simulated) cost one API request and one short
    /// invocation each (their gate read is the instance's cached one).
    pub fn cost(&self, cfg: &Config) -> Cost {
        let p = &PRICES;
        let invocations: u64 = self.functions.iter().map(|f| f.invocations).sum::<u64>() + self.late_buyers;
        let late_gb_s = self.late_buyers as f64 * 0.001 * cfg.entry_memory_mb / 1024.0;
        let gb_s: f64 = self.functions.iter().map(|f| f.gb_s).sum::<f64>() + late_gb_s;
        Cost {
            dynamodb_writes: self.total_wcu / 1e6 * p.dynamodb_write_per_million,
            dynamodb_reads: self.total_rcu / 1e6 * p.dynamodb_read_per_million,
            sqs: (self.sqs_sends + self.sqs_receives + self.sqs_deletes) as f64 / 1e6 * p.sqs_fifo_per_million,
            lambda: invocations as f64 / 1e6 * p.lambda_request_per_million + gb_s * p.lambda_gb_second,
            api: (self.api_requests + self.late_buyers) as f64 / 1e6 * p.http_api_per_million,
        }
    }

    /// What held admissions back, most telling first: throttled partitions (with what was refused), the
    /// table quota, the event source's ramp, busy lanes or worker concurrency, Lambda throttling, and the API
    /// throttle on entries.
    pub fn bound(&self, cfg: &Config) -> String {
        let mut found: Vec<String> = Vec::new();
        let mut throttled: Vec<&PartitionReport> = self.partitions.iter().filter(|p| p.throttled > 0).collect();
        throttled.sort_by_key(|p| std::cmp::Reverse(p.throttled));
        for p in throttled.iter().take(2) {
            let what = match (p.throttled_writes, p.throttled - p.throttled_writes) {
                (0, _) => "reads",
                (_, 0) => "writes",
                _ => "reads and writes",
            };
            let name = p.name.split(' ').next().unwrap_or("");
            if p.kind == "sale" && self.sale_throttled.iter().all(|t| t[1] == 0) {
                // Refused only after the gate closed: they delay answers, not admissions.
                found.push(format!("{name} {what} throttled after the close ({})", p.throttled));
            } else {
                found.push(format!("{name} {what} throttled ({})", p.throttled));
            }
        }
        if self.table_throttled > 0 {
            found.push(format!("table quota ({:.0} units/s)", cfg.limits.table_wcu));
        }
        let sell_out = self.sell_out_s.or(self.last_win_s).unwrap_or(0.0);
        if self.esm_ramp_end_s > sell_out {
            found.push(format!(
                "event source ramp ({} of {} batches at sell-out)",
                self.slots_at_sell_out, cfg.concurrency
            ));
        }
        let parallel = cfg.lanes.min(cfg.concurrency).max(1);
        let busy = self.worker_busy * f64::from(cfg.concurrency.max(1)) / f64::from(parallel);
        if busy >= 0.8 && self.esm_ramp_end_s <= sell_out {
            if cfg.lanes < cfg.concurrency {
                found.push(format!("lanes ({}, one batch in flight each)", cfg.lanes));
            } else {
                found.push(format!("worker concurrency ({})", cfg.concurrency));
            }
        }
        if self.lambda_throttles_concurrency > 0 {
            found.push(format!("Lambda concurrency ({})", cfg.limits.lambda_concurrency));
        }
        if self.lambda_throttles_scaling > 0 {
            found.push(format!(
                "Lambda scaling ({} environments per function per 10 s)",
                cfg.limits.lambda_scale_per_10s
            ));
        }
        let entry_limit = cfg.entry_rps.min(cfg.limits.api_account_rps);
        let entries_per_s = self.entries_accepted as f64 / sell_out.max(1e-6);
        if self.entry_429 > 0 && entries_per_s >= 0.5 * entry_limit {
            found.push(format!("API throttle ({entry_limit:.0} rps)"));
        }
        if found.is_empty() {
            found.push("request latency (nothing throttled or saturated)".to_owned());
        }
        found.join("; ")
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2} s"))
}

/// Prints one run.
pub fn print(cfg: &Config, r: &Report, sources: &[(String, String)]) {
    println!(
        "flash-sale model: {} buyers ({}) for {} units; {} shards, {} lanes; worker BatchSize {}, MaximumConcurrency {}; {} takes; latency profile {}",
        cfg.buyers,
        cfg.arrival,
        cfg.units,
        cfg.shards,
        cfg.lanes,
        cfg.batch_size,
        cfg.concurrency,
        match cfg.design {
            crate::config::Design::Batch => "batch",
            crate::config::Design::Single => "single",
        },
        cfg.profile.name
    );
    println!("parameters:");
    for (name, source) in sources {
        println!("  {name:<34} {source}");
    }
    println!("latencies ({}):", cfg.profile.name);
    let o = cfg.profile.ops;
    println!(
        "  GetItem {} ms, UpdateItem {} ms, PutItem {} ms, TransactWriteItems {} ms, BatchGetItem {} ms; SQS send {} / receive {} / delete {} ms",
        o.get, o.update, o.put, o.transact, o.batch_get, o.sqs_send, o.sqs_receive, o.sqs_delete
    );
    println!(
        "  {}per request outside the server {} ms; API {} ms; invoke {} ms; handler {} ms; cold start {} ms{}",
        if cfg.profile.serial { "one emulator serves requests in turn; " } else { "" },
        cfg.profile.client_ms,
        cfg.profile.api_ms,
        cfg.profile.invoke_ms,
        cfg.profile.handler_ms,
        cfg.profile.cold_ms,
        cfg.profile.max_instances.map(|n| format!("; {n} environments per function")).unwrap_or_default()
    );
    for s in cfg.profile.sources {
        println!("  source: {s}");
    }
    println!("outcome:");
    println!(
        "  won {} of {} units, oversold {}, left in shards {}; rejected in line {} (worker {}, status poll {}), at the door {} ({} after the sale settled, counted){}",
        r.won,
        cfg.units,
        r.oversold,
        r.in_shards,
        r.rejected_in_line,
        r.rejected_by_worker,
        r.rejected_in_line_by_poll,
        r.rejected_at_door,
        r.late_buyers,
        if r.unanswered > 0 { format!(", {} without an answer", r.unanswered) } else { String::new() }
    );
    println!(
        "  time to sell out {} (first win {}, gate closed {}); last winner told {:.2} s; buyers' time to a final answer p50 {:.2} s, p99 {:.2} s",
        opt(r.sell_out_s),
        opt(r.first_win_s),
        opt(r.gate_closed_s),
        r.last_win_seen_s,
        r.p50_s,
        r.p99_s
    );
    println!(
        "  admissions/s: {:.0} while the middle 80% of units were won, {:.0} on average to the last win, {} in the busiest second",
        r.admissions_per_s(),
        r.admissions_average,
        r.admissions_peak_second
    );
    println!(
        "  FIFO: {} admissions after a later place of their lane, {} buyers turned away behind a winner of their lane",
        r.lane_inversions, r.passed_over
    );
    println!("writes (AWS's rules):");
    println!(
        "  per unit sold {:.2} WCU (flash-bench's count: worker counters + entry 5), of which the admission's own {:.2}; per buyer turned away {:.2}; worker counted {:.0} WCU, read {} RCU",
        r.wcu_per_sale(),
        r.admission_wcu_per_unit(),
        r.wcu_per_rejection(),
        r.worker_counted_wcu,
        r.worker_reads
    );
    if let Some(c) = &r.at_last_answer {
        println!(
            "  at the last buyer's answer ({:.2} s, what flash-bench reads): per unit sold {:.2} WCU, worker counted {:.0} WCU, read {} RCU, condition failures {}, fallbacks {}, rejected {}",
            c.at_s,
            c.wcu_per_sale(),
            c.wcu,
            c.reads,
            c.condition_failures,
            c.fallbacks,
            c.rejected
        );
    }
    let runs: Vec<String> = r.runs.iter().map(|(k, n)| format!("{k}x{n}")).collect();
    println!(
        "  batches {}, runs by length [{}], take records {}, shard writes {}, condition failures {}, short takes {}, fallbacks {}, rebalances {}, gate closes {}, closed by another worker when found empty {}, metrics writes {}, units given back {}",
        r.batches,
        runs.join(" "),
        r.take_records,
        r.shard_writes,
        r.condition_failures,
        r.short_takes,
        r.fallbacks,
        r.rebalances,
        r.gate_closes,
        r.closed_by_another,
        r.metric_writes,
        r.given_back
    );
    println!(
        "  total {:.0} WCU, {:.0} RCU; table peak {:.0} WCU/s, {:.0} RCU/s; shard item {} WCU per write",
        r.total_wcu, r.total_rcu, r.table_peak_wcu, r.table_peak_rcu, r.shard_item_wcu
    );
    let ops: Vec<String> = r.ops.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!(
        "  requests: {}; SQS send {} receive {} delete {}{}",
        ops.join(", "),
        r.sqs_sends,
        r.sqs_receives,
        r.sqs_deletes,
        if cfg.profile.serial { format!("; emulator lock busy {:.1} s", r.server_busy_s) } else { String::new() }
    );
    if let Some(p) = r.busiest_write() {
        println!("  busiest partition (writes): {} {:.0} WCU/s", p.name, p.peak_wcu);
    }
    if let Some(p) = r.busiest_read() {
        println!("  busiest partition (reads): {} {:.0} RCU/s", p.name, p.peak_rcu);
    }
    let mut kinds: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for p in &r.partitions {
        let e = kinds.entry(p.kind).or_default();
        e.0 = e.0.max(p.peak_wcu);
        e.1 = e.1.max(p.peak_rcu);
    }
    let kinds: Vec<String> = kinds.iter().map(|(k, (w, rd))| format!("{k} {w:.0} WCU/s {rd:.0} RCU/s")).collect();
    println!("  peak per kind: {}", kinds.join("; "));
    let (t, pk) = (r.sale_rcu_total, r.sale_rcu_peak);
    let th = r.sale_throttled;
    println!(
        "  SALE#<id> reads by function (total RCU / busiest second RCU / refused while open, after close): entry {:.0} / {:.0} / {}, {}; status {:.0} / {:.0} / {}, {}; worker {:.0} / {:.0} / {}, {}",
        t[0], pk[0], th[0][1], th[0][0], t[1], pk[1], th[1][1], th[1][0], t[2], pk[2], th[2][1], th[2][0]
    );
    println!("throttling and scaling:");
    println!(
        "  API 429: entries {}, polls {}; Lambda throttles {} ({} concurrency, {} scaling); DynamoDB throttled requests {} (given up after retries {}); SQS throttled {}; messages redelivered {}",
        r.entry_429,
        r.poll_429,
        r.lambda_throttles,
        r.lambda_throttles_concurrency,
        r.lambda_throttles_scaling,
        r.ddb_throttled, r.ddb_failed, r.sqs_throttled, r.redelivered
    );
    for f in &r.functions {
        println!(
            "  {:<26} {:>9} invocations, mean {:>7.1} ms, peak {:>5} concurrent, {:>5} cold starts, {:.1} GB-s",
            f.name, f.invocations, f.mean_ms, f.peak, f.cold_starts, f.gb_s
        );
    }
    println!(
        "  Lambda peak across functions {}; worker batches busy {:.0}% of MaximumConcurrency x time to sell out; event source at MaximumConcurrency after {:.1} s",
        r.lambda_peak_total,
        r.worker_busy * 100.0,
        r.esm_ramp_end_s
    );
    let c = r.cost(cfg);
    let per_million = |v: f64| v / r.won.max(1) as f64 * 1e6;
    println!("cost (us-east-1 list prices entered in the model, not read from AWS):");
    println!(
        "  per sale ${:.2}: DynamoDB writes ${:.2}, reads ${:.2}, SQS ${:.2}, Lambda ${:.2}, API Gateway ${:.2}",
        c.total(),
        c.dynamodb_writes,
        c.dynamodb_reads,
        c.sqs,
        c.lambda,
        c.api
    );
    println!(
        "  per million units sold ${:.0} (writes ${:.0}, reads ${:.0}, SQS ${:.0}, Lambda ${:.0}, API ${:.0})",
        per_million(c.total()),
        per_million(c.dynamodb_writes),
        per_million(c.dynamodb_reads),
        per_million(c.sqs),
        per_million(c.lambda),
        per_million(c.api)
    );
    println!("bounded by: {}", r.bound(cfg));
    if r.cut_off {
        println!("WARNING: cut off at the simulation horizon");
    }
}
