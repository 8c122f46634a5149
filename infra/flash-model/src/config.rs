//! What one simulated sale runs with: the workload, the deployment (from template.yaml), AWS's documented
//! limits (the quota named beside each), and a latency profile.

/// How buyers arrive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arrival {
    /// Every buyer's first entry at a uniformly random time within the first `window_s` seconds.
    Burst { window_s: f64 },
    /// Buyers arrive one after another at `per_s`.
    Rate { per_s: f64 },
    /// At most `in_flight` buyers at once, each entering and polling to a final answer before the next starts
    /// (how infra/flash-bench drives the local stack: `buffer_unordered(concurrency)`).
    Closed { in_flight: u32 },
}

impl std::str::FromStr for Arrival {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (kind, value) = s.split_once(':').unwrap_or((s, ""));
        let number = |default: f64| -> Result<f64, String> {
            if value.is_empty() {
                Ok(default)
            } else {
                value.parse::<f64>().map_err(|e| format!("{s}: {e}")).and_then(|v| {
                    if v > 0.0 {
                        Ok(v)
                    } else {
                        Err(format!("{s}: must be positive"))
                    }
                })
            }
        };
        match kind {
            "burst" => Ok(Arrival::Burst { window_s: number(1.0)? }),
            "rate" => Ok(Arrival::Rate { per_s: number(10_000.0)? }),
            "closed" => Ok(Arrival::Closed { in_flight: number(200.0)? as u32 }),
            _ => Err(format!("{s}: expected burst[:seconds], rate[:per_second] or closed[:in_flight]")),
        }
    }
}

impl std::fmt::Display for Arrival {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Arrival::Burst { window_s } => write!(f, "all within the first {window_s} s"),
            Arrival::Rate { per_s } => write!(f, "{per_s}/s"),
            Arrival::Closed { in_flight } => write!(f, "{in_flight} buyers at a time (closed loop)"),
        }
    }
}

/// Which admission code the worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Design {
    /// A batch's entries of one lane (up to ten, in queue order) take their units with one write on the
    /// lane's home shard (plus a take record for two or more); the tickets are then won concurrently. A lone
    /// entry takes from a shard picked by the units it holds.
    Batch,
    /// One conditional write per entry on a shard picked at random by the units it holds, then its ticket
    /// (the code before batch takes).
    Single,
}

/// How a FIFO receive fills a batch of up to BatchSize messages from the groups not in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Composition {
    /// AWS: "SQS returns as many messages with the same message group ID as possible", then other groups
    /// (repost.aws knowledge center, sqs-fifo-messages-not-returned).
    SameGroup,
    /// moto 5.2.5: the first visible messages in send order whose group is not in flight, across groups.
    SendOrder,
}

/// Per-operation times in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpTimes {
    pub get: f64,
    pub update: f64,
    pub put: f64,
    /// TransactWriteItems of two items.
    pub transact: f64,
    pub batch_get: f64,
    pub sqs_send: f64,
    pub sqs_receive: f64,
    pub sqs_delete: f64,
}

/// Where the time of a request goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: &'static str,
    /// Server time of each operation (AWS: the request's latency; local: the emulator's busy time).
    pub ops: OpTimes,
    /// One emulator lock serves every DynamoDB request in turn (moto behind the launcher's lock): requests
    /// queue for it. SQS requests take their own time beside it.
    pub serial: bool,
    /// Share of the lock's time taken by other work during a race (the stream pollers' GetRecords).
    pub background_share: f64,
    /// Per request, outside the server: the SDK, HTTP, signing (debug builds locally).
    pub client_ms: f64,
    /// The HTTP API in front of a function, per request (both ways).
    pub api_ms: f64,
    /// Handing an invocation to a warm function and back.
    pub invoke_ms: f64,
    /// The handler's own work per invocation, outside its requests.
    pub handler_ms: f64,
    /// A new execution environment's start (init and the first connection).
    pub cold_ms: f64,
    /// Environments per function (local: `LOCAL_LAMBDA_MAX_INSTANCES`, default 8; more invocations queue).
    pub max_instances: Option<u32>,
    /// The event source has one receive in flight at a time (the local poller's loop); AWS's pollers receive
    /// in parallel. Locally a receive that finds every group with messages in flight long-polls for
    /// `long_poll_s`, seeing only groups that were free when it started (moto 5.2.5 keeps the in-flight groups
    /// it read at the start of the call).
    pub single_receiver: bool,
    pub long_poll_s: f64,
    /// Where each number comes from.
    pub sources: &'static [&'static str],
}

impl Profile {
    /// Typical AWS latencies. DynamoDB documents single-digit milliseconds; SQS, API Gateway and Lambda
    /// publish no latency figures, so those are stated assumptions.
    pub fn aws() -> Self {
        Self {
            name: "aws",
            ops: OpTimes {
                get: 3.0,
                update: 5.0,
                put: 5.0,
                transact: 12.0,
                batch_get: 5.0,
                sqs_send: 10.0,
                sqs_receive: 10.0,
                sqs_delete: 10.0,
            },
            serial: false,
            background_share: 0.0,
            client_ms: 0.0,
            api_ms: 10.0,
            invoke_ms: 10.0,
            handler_ms: 1.0,
            cold_ms: 150.0,
            max_instances: None,
            single_receiver: false,
            long_poll_s: 0.0,
            sources: &[
                "DynamoDB GetItem 3 ms, UpdateItem/PutItem/BatchGetItem 5 ms: AWS documents single-digit millisecond latency (DynamoDB developer guide); the split is assumed",
                "TransactWriteItems (2 items) 12 ms: assumed (two-phase prepare + commit, about twice a single write)",
                "SQS SendMessage/ReceiveMessage/DeleteMessageBatch 10 ms each: assumed (AWS publishes no figure)",
                "API Gateway HTTP API 10 ms per request, Lambda invoke 10 ms, handler 1 ms: assumed (no published figure)",
                "cold start 150 ms: Rust init ~14 ms (published cold-start comparisons) plus the first SDK call's TLS handshake (assumed)",
            ],
        }
    }

    /// The local stack on this machine (moto 5.2.5 behind the launcher's DynamoDB lock, debug builds, 2 shared
    /// cores at load average ~10), measured with `LOCAL_MOTO_STATS_SECONDS=10` around flash-bench races of 300
    /// buyers for 30 units (1 and 4 shards): see docs/FLASH_SALES.md.
    pub fn local() -> Self {
        Self {
            name: "local",
            ops: OpTimes {
                get: 5.2,
                update: 7.2,
                put: 5.6,
                transact: 11.2,
                batch_get: 10.2,
                sqs_send: 17.7,
                sqs_receive: 17.7,
                sqs_delete: 5.8,
            },
            serial: true,
            background_share: 0.06,
            client_ms: 10.0,
            api_ms: 3.0,
            invoke_ms: 2.0,
            handler_ms: 2.0,
            cold_ms: 60.0,
            max_instances: Some(8),
            single_receiver: true,
            long_poll_s: 1.0,
            sources: &[
                "emulator busy time per request under the DynamoDB lock (GetItem 5.2, UpdateItem 7.2, PutItem 5.6, TransactWriteItems 11.2, BatchGetItem 10.2 ms) and SQS (SendMessage 17.7, DeleteMessageBatch 5.8 ms): launcher stats (LOCAL_MOTO_STATS_SECONDS=10) over four flash-bench races of 300 buyers / 30 units, 1 and 4 shards",
                "background: the stream pollers' GetRecords held the lock ~6% of the race windows (112-138 calls of 7-23 ms in 24-34 s)",
                "outside the lock 10 ms per request: an idle GetItem took 4.8 ms direct to moto and 5.9 ms through the stack's AWS endpoint with 1.3 ms under the lock; under race load the time under the lock grew about 4x (1.3 -> 5.2 ms) and so is taken for the rest",
                "handler 2 ms: enter-flash-sale's REPORT p10 (an instance answering 410 from its cached gate, no request); ReceiveMessage with messages visible taken as SendMessage's 17.7 ms (its long polls hide it), one at a time (infra/local-stack's SQS poller loop), a long poll of 1 s that sees only the groups free at its start (moto); front door 3 ms, invoke 2 ms, cold start 60 ms: assumed",
                "8 environments per function (LOCAL_LAMBDA_MAX_INSTANCES default); further invocations queue",
            ],
        }
    }
}

/// AWS's limits, as documented (service quotas pages unless named otherwise).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// API Gateway account throttle in the region: 10,000 requests/s, burst 5,000.
    pub api_account_rps: f64,
    pub api_account_burst: f64,
    /// Lambda account concurrency (default 1,000) and scaling (1,000 environments per function every 10 s).
    pub lambda_concurrency: u32,
    pub lambda_scale_per_10s: u32,
    /// SQS event source: starts with 5 concurrent batches, adds up to 300 a minute (AWS Lambda developer guide,
    /// "Configuring scaling behavior for SQS event source mappings").
    pub esm_initial: u32,
    pub esm_ramp_per_min: f64,
    /// One partition: 1,000 WCU/s and 3,000 RCU/s.
    pub partition_wcu: f64,
    pub partition_rcu: f64,
    /// On-demand table quota: 40,000 write and 40,000 read request units per second (raisable).
    pub table_wcu: f64,
    pub table_rcu: f64,
    /// High-throughput FIFO in us-east-1: 70,000 non-batched requests per second per action (SQS quotas).
    pub fifo_tps: f64,
    /// The Rust SDK's standard retry: 3 attempts, throttling backoff 1 s x 2^n with full jitter
    /// (aws-smithy-types RetryConfig).
    pub sdk_attempts: u32,
    pub sdk_backoff_s: f64,
}

impl Limits {
    pub fn aws() -> Self {
        Self {
            api_account_rps: 10_000.0,
            api_account_burst: 5_000.0,
            lambda_concurrency: 1_000,
            lambda_scale_per_10s: 1_000,
            esm_initial: 5,
            esm_ramp_per_min: 300.0,
            partition_wcu: 1_000.0,
            partition_rcu: 3_000.0,
            table_wcu: 40_000.0,
            table_rcu: 40_000.0,
            fifo_tps: 70_000.0,
            sdk_attempts: 3,
            sdk_backoff_s: 1.0,
        }
    }

    /// The local stack: no account throttle, no capacity limits, the poller runs MaximumConcurrency batches
    /// from the start.
    pub fn local() -> Self {
        Self {
            api_account_rps: f64::INFINITY,
            api_account_burst: f64::INFINITY,
            lambda_concurrency: u32::MAX,
            lambda_scale_per_10s: u32::MAX,
            esm_initial: u32::MAX,
            esm_ramp_per_min: 0.0,
            partition_wcu: f64::INFINITY,
            partition_rcu: f64::INFINITY,
            table_wcu: f64::INFINITY,
            table_rcu: f64::INFINITY,
            fifo_tps: f64::INFINITY,
            sdk_attempts: 3,
            sdk_backoff_s: 1.0,
        }
    }
}

/// One simulated sale.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub buyers: u32,
    pub units: u32,
    pub shards: u32,
    pub lanes: u32,
    pub arrival: Arrival,
    pub design: Design,
    pub composition: Composition,
    /// The worker's SQS event: BatchSize and ScalingConfig.MaximumConcurrency.
    pub batch_size: u32,
    pub concurrency: u32,
    pub worker_timeout_s: f64,
    pub visibility_timeout_s: f64,
    pub entry_memory_mb: f64,
    pub poll_memory_mb: f64,
    pub worker_memory_mb: f64,
    /// Route throttles (template.yaml RouteSettings).
    pub entry_rps: f64,
    pub entry_burst: f64,
    pub poll_rps: f64,
    pub poll_burst: f64,
    /// How long an entry function instance trusts the gate it read, open or closed (`FLASH_GATE_CACHE_MS`).
    pub gate_cache_s: f64,
    /// How long a status function instance trusts an open gate it read (its `FLASH_GATE_CACHE_MS`); a closed
    /// one is read consistently on every poll of a waiting ticket.
    pub poll_gate_cache_s: f64,
    /// Items holding the gate (`FLASH_GATE_COPIES`): the gate and `gate_copies - 1` copies, written together;
    /// each reader instance reads one of them.
    pub gate_copies: u32,
    /// Status polls: first after 0.3 s, then 1.5 times longer each time, at most 3 s (flash-bench's buyers).
    pub poll_first_s: f64,
    pub poll_factor: f64,
    pub poll_max_s: f64,
    /// A buyer whose entry got 429 or 5xx retries after this, doubling up to `retry_max_s` (with jitter).
    pub retry_first_s: f64,
    pub retry_max_s: f64,
    /// The worker moves half of the fullest shard into empty ones when half the shards are empty.
    pub rebalance: bool,
    /// Not the code: after a take the worker keeps the units the shard write left (its old values, returned
    /// with the write) instead of what it believed less what it took.
    pub learn_from_takes: bool,
    /// The event source runs MaximumConcurrency batches from the start (provisioned pollers) instead of
    /// ramping from 5.
    pub warm_pollers: bool,
    /// Provisioned concurrency of the entry and status functions: environments initialized before the sale,
    /// beyond which Lambda's scaling rate applies.
    pub provisioned: u32,
    pub limits: Limits,
    pub profile: Profile,
    pub seed: u64,
    /// Simulate every late buyer to their 410 instead of counting them once the sale has settled.
    pub full: bool,
    /// Simulated seconds after which a run is cut off.
    pub horizon_s: f64,
    /// Print every batch to stderr.
    pub trace: bool,
    /// The event source starts receiving this long after the sale opens (0: at once).
    pub pollers_start_s: f64,
}

impl Config {
    /// A sale with the deployed defaults (BatchSize 10, MaximumConcurrency 160, the entry route's 40,000 rps,
    /// the status route's 10,000, 256 MB, 10 s worker timeout) and AWS's limits and latencies.
    pub fn example(buyers: u32, units: u32, shards: u32, lanes: u32) -> Self {
        Self {
            buyers,
            units,
            shards,
            lanes,
            arrival: Arrival::Burst { window_s: 1.0 },
            design: Design::Batch,
            composition: Composition::SameGroup,
            batch_size: 10,
            concurrency: 160,
            worker_timeout_s: 10.0,
            visibility_timeout_s: 60.0,
            entry_memory_mb: 256.0,
            poll_memory_mb: 256.0,
            worker_memory_mb: 256.0,
            entry_rps: 40_000.0,
            entry_burst: 5_000.0,
            poll_rps: 10_000.0,
            poll_burst: 5_000.0,
            gate_cache_s: 1.0,
            poll_gate_cache_s: 1.0,
            gate_copies: 1,
            poll_first_s: 0.3,
            poll_factor: 1.5,
            poll_max_s: 3.0,
            retry_first_s: 0.25,
            retry_max_s: 4.0,
            rebalance: true,
            learn_from_takes: false,
            warm_pollers: false,
            provisioned: 0,
            limits: Limits::aws(),
            profile: Profile::aws(),
            seed: 1,
            full: false,
            horizon_s: 600.0,
            trace: false,
            pollers_start_s: 0.0,
        }
    }
}

/// Shard items per sale by default: one per 250 units, at most 10 (`NewFlashSale::shard_count`).
pub fn default_shards(units: u32) -> u32 {
    units.div_ceil(250).clamp(1, 10).min(units.max(1))
}

/// Lanes per sale by default: 8 per shard, at most 16 per shard and at most the deployment's lane cap
/// (`NewFlashSale::lane_count`, `DEFAULT_LANES_PER_SHARD`, `MAX_LANES_PER_SHARD`, `FLASH_MAX_LANES`).
pub fn default_lanes(shards: u32, max_lanes: u32) -> u32 {
    (shards * 8).min(shards * 16).min(max_lanes.clamp(1, 1000)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrivals_parse() {
        assert_eq!("burst".parse::<Arrival>().unwrap(), Arrival::Burst { window_s: 1.0 });
        assert_eq!("rate:500".parse::<Arrival>().unwrap(), Arrival::Rate { per_s: 500.0 });
        assert_eq!("closed:200".parse::<Arrival>().unwrap(), Arrival::Closed { in_flight: 200 });
        assert!("closed:0".parse::<Arrival>().is_err());
        assert!("sometimes".parse::<Arrival>().is_err());
    }

    #[test]
    fn defaults_follow_the_sale_rules() {
        assert_eq!(default_shards(10_000), 10);
        assert_eq!(default_shards(30), 1);
        assert_eq!(default_lanes(10, 8), 8);
        assert_eq!(default_lanes(10, 160), 80);
        assert_eq!(default_lanes(1, 160), 8);
    }
}
