//! The discrete-event simulation of one sale: buyers, the HTTP API's throttles, the entry and status
//! functions, the FIFO waiting room and its event source, the admission worker, and DynamoDB's partitions
//! with per-second write and read accounting.
//!
//! Every request goes through [`Sim::ddb`] or [`Sim::sqs`]: they charge capacity units to the partitions the
//! request touches (by AWS's rules: 1 WCU per KB written, 2 per item in a transaction, 0.5 RCU per eventually
//! consistent and 1 per consistent read of up to 4 KB), refuse it when a partition's or the table's second is
//! full (the SDK then retries with backoff, 3 attempts), and answer when it completes. State changes (a shard's
//! units, a ticket's status) happen when a request is accepted, in event order.

use crate::config::{Arrival, Composition, Config, Design};
use crate::report::{FunctionReport, PartitionReport, Report, WorkerCounters};
use commerce_domain::flash_sale;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};

/// Simulated time in microseconds.
pub type Us = u64;
pub const SEC: Us = 1_000_000;

fn us(ms: f64) -> Us {
    if ms.is_finite() {
        (ms * 1000.0).round().max(0.0) as Us
    } else {
        Us::MAX / 4
    }
}

pub fn secs(t: Us) -> f64 {
    t as f64 / SEC as f64
}

/// Bytes of a shard item without marks (`pk` SALE#<id>#SHARD#<k>, `sk`, `units`, `sale_id`), and of one mark
/// with its name (`lane<j>` or `prev<j>`): a single take names its ticket and message
/// (`ftk_<26>|<13>`), a batch take its record (`*<13>:<count>`). DynamoDB counts names and values in bytes.
const SHARD_ITEM_BYTES: u64 = 95;
const SINGLE_MARK_BYTES: u64 = 50;
const BATCH_MARK_BYTES: u64 = 23;

fn mark_bytes(batch: bool) -> u64 {
    if batch {
        BATCH_MARK_BYTES
    } else {
        SINGLE_MARK_BYTES
    }
}
/// Most entries one shard write takes units for (`MAX_BATCH_TAKE`).
const MAX_BATCH_TAKE: usize = 10;
/// The worker stops starting admissions this long before its deadline (`DEADLINE_MARGIN`).
const DEADLINE_MARGIN: Us = 4 * SEC;
/// How long a worker instance trusts an open gate it read (`OPEN_GATE_TRUST`).
const WORKER_OPEN_GATE_TRUST: Us = SEC;
/// Partitions the workers' metrics items are spread over, by instance (`METRIC_PARTITIONS`).
const METRIC_PARTITIONS: u32 = 32;

/// The metrics partition of worker instance `env`: a hash of its name modulo [`METRIC_PARTITIONS`] (instance
/// names are random, so any well-mixed hash of the instance serves).
fn metric_partition(env: u32) -> u32 {
    let mut x = u64::from(env).wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((x ^ (x >> 31)) % u64::from(METRIC_PARTITIONS)) as u32
}

/// A DynamoDB partition the model keeps accounts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    /// `SALE#<id>`: the sale and its gate (gate copy 0).
    Sale,
    /// `SALE#<id>#GATE#<k>`: gate copy k >= 1, written with the gate in one transaction.
    GateCopy(u32),
    Shard(u32),
    Seq(u32),
    /// The hold index (gsi1) partition `HOLDS#<sale>#<lane>` every won ticket of a lane is written to.
    Holds(u32),
    /// `SALE#<id>#METRIC#<j>`: the metrics items of the worker instances whose name hashes to `j`.
    Metric(u32),
    /// Items with a partition of their own (tickets, customer counters, take records): never hot.
    Own,
}

impl Part {
    pub fn name(self) -> String {
        match self {
            Part::Sale => "SALE#<id> (gate, sale)".into(),
            Part::GateCopy(k) => format!("SALE#<id>#GATE#{k} (gate copy)"),
            Part::Shard(k) => format!("SALE#<id>#SHARD#{k}"),
            Part::Seq(j) => format!("SALE#<id>#SEQ#{j} (lane sequence)"),
            Part::Holds(j) => format!("gsi1 HOLDS#<id>#{j} (hold index, lane {j})"),
            Part::Metric(j) => format!("SALE#<id>#METRIC#{j} (worker metrics)"),
            Part::Own => "tickets, counters, take records".into(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Get,
    Update,
    Put,
    Transact,
    BatchGet,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Get => "GetItem",
            Op::Update => "UpdateItem",
            Op::Put => "PutItem",
            Op::Transact => "TransactWriteItems",
            Op::BatchGet => "BatchGetItem",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SqsOp {
    Send,
    Receive,
    Delete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Arrive(u32),
    Entry(u32),
    Poll(u32),
    PollStep(u32),
    Enqueue(u32),
    Slot(u32),
    Receive(u32),
    PollTimeout(u64),
    Batch(u32),
    Unlock(u32),
    Requeue(u32),
    Release(u8, u32),
}

#[derive(Debug, Default, Clone, Copy)]
struct Bucket {
    second: u64,
    wcu: f64,
    rcu: f64,
    peak_wcu: f64,
    peak_rcu: f64,
    total_wcu: f64,
    total_rcu: f64,
    throttled: u64,
    throttled_writes: u64,
    peak_second: u64,
}

impl Bucket {
    fn roll(&mut self, second: u64) {
        if self.second != second {
            self.second = second;
            self.wcu = 0.0;
            self.rcu = 0.0;
        }
    }

    fn fits(&self, wcu: f64, rcu: f64, wcu_limit: f64, rcu_limit: f64) -> bool {
        self.wcu + wcu <= wcu_limit + 1e-9 && self.rcu + rcu <= rcu_limit + 1e-9
    }

    fn add(&mut self, wcu: f64, rcu: f64) {
        self.wcu += wcu;
        self.rcu += rcu;
        self.total_wcu += wcu;
        self.total_rcu += rcu;
        if self.wcu > self.peak_wcu {
            self.peak_wcu = self.wcu;
            self.peak_second = self.second;
        }
        self.peak_rcu = self.peak_rcu.max(self.rcu);
    }
}

struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Us,
}

impl TokenBucket {
    fn new(rate: f64, burst: f64) -> Self {
        Self { rate, burst, tokens: burst, last: 0 }
    }

    fn refill(&mut self, now: Us) {
        if self.rate.is_finite() {
            self.tokens = (self.tokens + secs(now.saturating_sub(self.last)) * self.rate).min(self.burst);
        }
        self.last = now;
    }

    fn has(&mut self, now: Us) -> bool {
        self.refill(now);
        !self.rate.is_finite() || self.tokens >= 1.0
    }

    fn take(&mut self) {
        if self.rate.is_finite() {
            self.tokens -= 1.0;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Waiting,
    Won,
    SoldOutByWorker,
    SoldOutByPoll,
}

#[derive(Debug, Clone)]
struct Ticket {
    lane: u32,
    seq: u64,
    status: Status,
    enqueued: bool,
    /// A unit taken for this ticket whose win the worker gave up on (throttled past the SDK's retries): the
    /// message's redelivery settles it.
    taken: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Pending,
    Won,
    SoldOutInLine,
    SoldOutAtDoor,
}

#[derive(Debug, Clone)]
struct Buyer {
    start: Us,
    ticket: Option<u32>,
    pause: Us,
    retry: Us,
    done: Option<Us>,
    outcome: Outcome,
    won_seen: Option<Us>,
}

#[derive(Debug, Default)]
struct Lane {
    queue: VecDeque<(u64, u32)>,
    in_flight: bool,
    next_seq: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fun {
    Entry = 0,
    Poll = 1,
    Worker = 2,
}

const FUNS: [Fun; 3] = [Fun::Entry, Fun::Poll, Fun::Worker];

#[derive(Debug, Clone, Default)]
struct Env {
    /// Takes (by mark id) this worker instance made or has seen settled.
    known: std::collections::HashSet<u64>,
    sale_cached: bool,
    /// When the instance last read the gate, and whether it was closed: the entry function trusts either for
    /// its cache time, the status and worker functions only an open one.
    gate_read: Option<(Us, bool)>,
    believed: Vec<i64>,
    started: Us,
}

#[derive(Debug, Clone, Copy)]
enum Waiter {
    Entry(u32),
    Poll(u32),
    Batch(u32),
}

#[derive(Debug, Default)]
struct Function {
    envs: Vec<Env>,
    idle: Vec<u32>,
    busy: u32,
    peak: u32,
    invocations: u64,
    cold: u64,
    billed_gb_s: f64,
    busy_ms: f64,
    memory_mb: f64,
    waiters: VecDeque<Waiter>,
}

enum Acquired {
    Env(u32, bool),
    Throttled,
    Queued,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EPhase {
    ReadSale,
    ReadGate,
    Seq,
    Ticket,
    Send,
    Respond(u16),
}

#[derive(Debug, Clone, Copy)]
struct EntryTask {
    buyer: u32,
    env: u32,
    phase: EPhase,
    attempt: u32,
    lane: u32,
    seq: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PPhase {
    ReadTicket,
    ReadGate,
    MarkTicket,
    MarkCounter,
    Respond(bool),
}

#[derive(Debug, Clone, Copy)]
struct PollTask {
    buyer: u32,
    env: u32,
    phase: PPhase,
    attempt: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BPhase {
    Acquire,
    ReadSale,
    ReadShards,
    ReadGate,
    Next,
    /// The take record of a take of two or more units (written before the shard write).
    TakeRecord {
        shard: u32,
        want: u32,
    },
    /// The conditional write on a shard; `batch` when it names a take record.
    Take {
        shard: u32,
        want: u32,
        batch: bool,
    },
    Win {
        shard: u32,
        count: u32,
        previous: Previous,
    },
    CheckPrevious {
        previous: Previous,
    },
    Refresh,
    RefreshShards,
    /// A run's take found its shard empty: one read of every shard's units before it falls back.
    FallbackRead,
    Rebalance,
    Audit {
        reads: u32,
    },
    CloseGate,
    Reject,
    RejectCounter,
    Metrics,
    Finish,
    Delete,
}

/// The takes a shard write replaced that this instance did not make: their take records (batch marks) and
/// tickets are read to see whether they were settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Previous {
    records: u32,
    tickets: u32,
}

#[derive(Debug, Clone)]
struct BatchTask {
    slot: u32,
    env: u32,
    msgs: Vec<u32>,
    idx: usize,
    phase: BPhase,
    attempt: u32,
    started: Us,
    gate_closed: bool,
    run_len: usize,
    run_taken: usize,
    refreshed: bool,
    /// The run read every shard after its first failed take (the code does this once per run).
    fallback_read: bool,
    tries: u32,
    moves: Vec<(usize, usize, i64)>,
    pending_wins: Vec<u32>,
    done_at: Us,
    failed_from: Option<usize>,
}

/// The local poller's one receive at a time: the slots waiting for it, and the receive under way with the
/// groups that were in flight when it started.
#[derive(Debug, Default)]
struct Receiver {
    busy: bool,
    generation: u64,
    waiting: VecDeque<u32>,
    slot: u32,
    pending: Vec<bool>,
    long_poll: bool,
}

/// A lane's two marks on a shard item (`lane<j>`, `prev<j>`): mark id, the units it took, and whether it names
/// a take record (a batch mark).
type LaneMarks = [Option<(u64, u32, bool)>; 2];

/// One sale in simulation.
pub struct Sim<'a> {
    cfg: &'a Config,
    now: Us,
    heap: BinaryHeap<Reverse<(Us, u64, Ev)>>,
    seq: u64,
    rng: StdRng,
    // The sale.
    units: Vec<i64>,
    /// Bytes of each shard item (it grows with the marks of every lane that took from it).
    shard_bytes: Vec<u64>,
    /// Per shard and lane, the last take and the one before it (`lane<j>`, `prev<j>`): mark id, size.
    marks: HashMap<(u32, u32), LaneMarks>,
    next_mark: u64,
    gate_closed: bool,
    gate_closed_at: Option<Us>,
    won: u32,
    win_times: Vec<Us>,
    admissions: Vec<u32>,
    // People and their tickets.
    buyers: Vec<Buyer>,
    next_buyer: u32,
    tickets: Vec<Ticket>,
    open_tickets: u64,
    /// Tickets with a taken, unsettled unit.
    pending_takes: Vec<u32>,
    answered: u32,
    entries_between_gate_and_queue: u64,
    // The HTTP API.
    api_account: TokenBucket,
    api_entry: TokenBucket,
    api_poll: TokenBucket,
    // Lambda.
    functions: [Function; 3],
    busy_total: u32,
    // The waiting room.
    lanes: Vec<Lane>,
    send_seq: u64,
    queued: u64,
    available_lanes: u32,
    idle_slots: Vec<u32>,
    receiver: Receiver,
    sqs_buckets: [Bucket; 3],
    // DynamoDB.
    parts: HashMap<Part, Bucket>,
    table: Bucket,
    /// Read units on the sale's partition in the current second, by function.
    sale_reads: [(u64, f64); 3],
    server_free: Us,
    // Tasks.
    entries: Vec<EntryTask>,
    free_entries: Vec<u32>,
    polls: Vec<PollTask>,
    free_polls: Vec<u32>,
    batches: Vec<BatchTask>,
    free_batches: Vec<u32>,
    running_batches: u32,
    // Counters.
    r: Report,
    batch_spans: Vec<(Us, Us)>,
}

impl<'a> Sim<'a> {
    pub fn new(cfg: &'a Config) -> Self {
        let shards = cfg.shards.max(1);
        let lanes = cfg.lanes.max(1);
        let units = split_units(cfg.units, shards);
        let mut functions: [Function; 3] = Default::default();
        functions[Fun::Entry as usize].memory_mb = cfg.entry_memory_mb;
        functions[Fun::Poll as usize].memory_mb = cfg.poll_memory_mb;
        functions[Fun::Worker as usize].memory_mb = cfg.worker_memory_mb;
        for f in [Fun::Entry, Fun::Poll] {
            // Provisioned environments are initialized before the sale: warm, idle, not cold starts.
            let func = &mut functions[f as usize];
            for env in 0..cfg.provisioned {
                func.envs.push(Env::default());
                func.idle.push(env);
            }
        }
        Self {
            cfg,
            now: 0,
            heap: BinaryHeap::new(),
            seq: 0,
            rng: StdRng::seed_from_u64(cfg.seed),
            units,
            shard_bytes: vec![SHARD_ITEM_BYTES; shards as usize],
            marks: HashMap::new(),
            next_mark: 0,
            gate_closed: false,
            gate_closed_at: None,
            won: 0,
            win_times: Vec::new(),
            admissions: Vec::new(),
            buyers: Vec::new(),
            next_buyer: 0,
            tickets: Vec::new(),
            open_tickets: 0,
            pending_takes: Vec::new(),
            answered: 0,
            entries_between_gate_and_queue: 0,
            api_account: TokenBucket::new(cfg.limits.api_account_rps, cfg.limits.api_account_burst),
            api_entry: TokenBucket::new(cfg.entry_rps, cfg.entry_burst),
            api_poll: TokenBucket::new(cfg.poll_rps, cfg.poll_burst),
            functions,
            busy_total: 0,
            lanes: (0..lanes).map(|_| Lane::default()).collect(),
            send_seq: 0,
            queued: 0,
            available_lanes: 0,
            idle_slots: Vec::new(),
            receiver: Receiver::default(),
            sqs_buckets: Default::default(),
            parts: HashMap::new(),
            table: Bucket::default(),
            sale_reads: [(0, 0.0); 3],
            server_free: 0,
            entries: Vec::new(),
            free_entries: Vec::new(),
            polls: Vec::new(),
            free_polls: Vec::new(),
            batches: Vec::new(),
            free_batches: Vec::new(),
            running_batches: 0,
            r: Report::default(),
            batch_spans: Vec::new(),
        }
    }

    /// Runs the sale until every buyer has a final answer (or, unless `full`, until the sale has settled:
    /// the gate is closed, the queue is empty and every ticket is final; the buyers still trying to enter then
    /// all get 410 at the door and are counted, not simulated).
    pub fn run(mut self) -> Report {
        let cfg = self.cfg;
        let mut starts: Vec<Us> = match cfg.arrival {
            Arrival::Burst { window_s } => {
                (0..cfg.buyers).map(|_| us(self.rng.gen::<f64>() * window_s * 1000.0)).collect()
            }
            Arrival::Rate { per_s } => (0..cfg.buyers).map(|i| us(f64::from(i) / per_s * 1000.0)).collect(),
            Arrival::Closed { in_flight } => (0..cfg.buyers).map(|i| if i < in_flight { 0 } else { Us::MAX }).collect(),
        };
        if matches!(cfg.arrival, Arrival::Burst { .. }) {
            starts.sort_unstable();
        }
        self.buyers = starts
            .iter()
            .map(|&start| Buyer {
                start,
                ticket: None,
                pause: us(cfg.poll_first_s * 1000.0),
                retry: us(cfg.retry_first_s * 1000.0),
                done: None,
                outcome: Outcome::Pending,
                won_seen: None,
            })
            .collect();
        for (i, &start) in starts.iter().enumerate() {
            if start != Us::MAX {
                self.at(start, Ev::Arrive(i as u32));
                self.next_buyer = self.next_buyer.max(i as u32 + 1);
            }
        }
        for slot in 0..cfg.concurrency {
            self.at(us(cfg.pollers_start_s * 1000.0), Ev::Slot(slot));
        }
        while let Some(Reverse((t, _, ev))) = self.heap.pop() {
            if t > us(cfg.horizon_s * 1000.0) {
                self.r.cut_off = true;
                break;
            }
            self.now = t;
            self.dispatch(ev);
            if !cfg.full && self.settled() {
                break;
            }
        }
        self.finish()
    }

    fn at(&mut self, t: Us, ev: Ev) {
        self.seq += 1;
        self.heap.push(Reverse((t.max(self.now), self.seq, ev)));
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Arrive(b) => self.arrive(b),
            Ev::Entry(t) => self.entry_step(t),
            Ev::Poll(b) => self.poll(b),
            Ev::PollStep(t) => self.poll_step(t),
            Ev::Enqueue(t) => self.enqueue(t),
            Ev::Slot(s) => self.slot(s),
            Ev::Receive(s) => self.receive(s),
            Ev::PollTimeout(generation) => self.poll_timeout(generation),
            Ev::Batch(t) => self.batch_step(t),
            Ev::Unlock(t) => self.unlock(t),
            Ev::Requeue(l) => self.requeue(l),
            Ev::Release(f, env) => self.release(FUNS[f as usize], env),
        }
    }

    /// The gate is closed, nothing is queued or being admitted or entered, and every ticket is final.
    fn settled(&self) -> bool {
        self.gate_closed
            && self.queued == 0
            && self.running_batches == 0
            && self.open_tickets == 0
            && self.entries_between_gate_and_queue == 0
    }

    fn jitter(&mut self) -> f64 {
        0.5 + self.rng.gen::<f64>()
    }

    /// One DynamoDB request touching `touches` (partition, write units, read units): `None` when throttled.
    fn ddb(&mut self, op: Op, touches: &[(Part, f64, f64)]) -> Option<Us> {
        let limits = &self.cfg.limits;
        let second = self.now / SEC;
        let (w_sum, r_sum): (f64, f64) = touches.iter().fold((0.0, 0.0), |(w, r), t| (w + t.1, r + t.2));
        self.table.roll(second);
        let mut fits = self.table.fits(w_sum, r_sum, limits.table_wcu, limits.table_rcu);
        for &(part, w, r) in touches {
            if part == Part::Own {
                continue;
            }
            let bucket = self.parts.entry(part).or_default();
            bucket.roll(second);
            if !bucket.fits(w, r, limits.partition_wcu, limits.partition_rcu) {
                fits = false;
                bucket.throttled += 1;
                if w > 0.0 && !bucket.fits(w, 0.0, limits.partition_wcu, f64::INFINITY) {
                    bucket.throttled_writes += 1;
                }
            }
        }
        if !fits {
            self.r.ddb_throttled += 1;
            if self.table.fits(w_sum, r_sum, limits.table_wcu, limits.table_rcu) {
                return None;
            }
            self.table.throttled += 1;
            return None;
        }
        self.table.add(w_sum, r_sum);
        for &(part, w, r) in touches {
            self.parts.entry(part).or_default().add(w, r);
        }
        self.r.ddb_requests += 1;
        *self.r.ops.entry(op.name()).or_default() += 1;
        let p = &self.cfg.profile;
        let ms = match op {
            Op::Get => p.ops.get,
            Op::Update => p.ops.update,
            Op::Put => p.ops.put,
            Op::Transact => p.ops.transact,
            Op::BatchGet => p.ops.batch_get,
        };
        Some(self.serve(ms, true))
    }

    /// One SQS request: `None` when the FIFO queue's requests per second are used up.
    fn sqs(&mut self, op: SqsOp) -> Option<Us> {
        let second = self.now / SEC;
        let bucket = &mut self.sqs_buckets[op as usize];
        bucket.roll(second);
        if !bucket.fits(1.0, 0.0, self.cfg.limits.fifo_tps, f64::INFINITY) {
            bucket.throttled += 1;
            self.r.sqs_throttled += 1;
            return None;
        }
        bucket.add(1.0, 0.0);
        let p = &self.cfg.profile;
        let ms = match op {
            SqsOp::Send => p.ops.sqs_send,
            SqsOp::Receive => p.ops.sqs_receive,
            SqsOp::Delete => p.ops.sqs_delete,
        };
        match op {
            SqsOp::Send => self.r.sqs_sends += 1,
            SqsOp::Receive => self.r.sqs_receives += 1,
            SqsOp::Delete => self.r.sqs_deletes += 1,
        }
        Some(self.serve(ms, false))
    }

    /// When a request of `ms` server time issued now completes: a DynamoDB request on the emulator after the
    /// requests before it (and the lock's share of other work).
    fn serve(&mut self, ms: f64, dynamodb: bool) -> Us {
        let j = self.jitter();
        let p = &self.cfg.profile;
        if p.serial && dynamodb {
            let start = self.server_free.max(self.now);
            let busy = us(ms * j / (1.0 - p.background_share));
            self.r.server_busy_s += secs(busy);
            self.server_free = start + busy;
            self.server_free + us(p.client_ms)
        } else {
            self.now + us(ms * j + p.client_ms)
        }
    }

    /// The SDK's next attempt after a throttled request, or `None` when its attempts are used up.
    fn backoff(&mut self, attempt: u32) -> Option<Us> {
        let limits = &self.cfg.limits;
        if attempt + 1 >= limits.sdk_attempts {
            self.r.ddb_failed += 1;
            return None;
        }
        let cap = (limits.sdk_backoff_s * f64::from(1u32 << attempt.min(10))).min(20.0);
        Some(self.now + us(self.rng.gen::<f64>() * cap * 1000.0))
    }

    /// A GetItem on the sale's partition (the sale or its gate) by function `f`, whose read units are kept
    /// per function: per second (the peak) and in total.
    fn sale_read(&mut self, f: Fun, rcu: f64) -> Option<Us> {
        self.read_part(f, Part::Sale, rcu)
    }

    /// A read of the gate by instance `env` of `f`: of the gate copy the instance picked (`env mod copies`).
    fn gate_read(&mut self, f: Fun, env: u32, rcu: f64) -> Option<Us> {
        let copy = env % self.cfg.gate_copies.max(1);
        self.read_part(f, if copy == 0 { Part::Sale } else { Part::GateCopy(copy) }, rcu)
    }

    /// The gate and its copies, as one write touches them: one item, or a transaction over all copies.
    fn gate_writes(&self) -> (Op, Vec<(Part, f64, f64)>) {
        let copies = self.cfg.gate_copies.max(1);
        if copies == 1 {
            return (Op::Update, vec![(Part::Sale, 1.0, 0.0)]);
        }
        let mut touches = vec![(Part::Sale, 2.0, 0.0)];
        touches.extend((1..copies).map(|k| (Part::GateCopy(k), 2.0, 0.0)));
        (Op::Transact, touches)
    }

    fn read_part(&mut self, f: Fun, part: Part, rcu: f64) -> Option<Us> {
        let Some(done) = self.ddb(Op::Get, &[(part, 0.0, rcu)]) else {
            let open = usize::from(!self.gate_closed);
            self.r.sale_throttled[f as usize][open] += 1;
            return None;
        };
        let second = self.now / SEC;
        let (at, current) = &mut self.sale_reads[f as usize];
        if *at != second {
            if self.cfg.trace && *current > 0.0 {
                eprintln!("SALE#<id> reads by {:?} in second {}: {:.0} RCU", f, *at, *current);
            }
            *at = second;
            *current = 0.0;
        }
        *current += rcu;
        let r = &mut self.r;
        r.sale_rcu_total[f as usize] += rcu;
        r.sale_rcu_peak[f as usize] = r.sale_rcu_peak[f as usize].max(*current);
        Some(done)
    }

    fn shard_item_wcu(&self, shard: u32) -> f64 {
        self.shard_bytes[shard as usize].div_ceil(1024).max(1) as f64
    }

    // Lambda ---------------------------------------------------------------------------------------------

    fn acquire(&mut self, f: Fun) -> Acquired {
        let cfg = self.cfg;
        let now = self.now;
        let busy_total = self.busy_total;
        if busy_total >= cfg.limits.lambda_concurrency {
            self.r.lambda_throttles_concurrency += 1;
            return Acquired::Throttled;
        }
        let func = &mut self.functions[f as usize];
        let got = if let Some(env) = func.idle.pop() {
            Some((env, false))
        } else {
            let count = func.envs.len() as u64;
            let provisioned = if f == Fun::Worker { 0 } else { u64::from(cfg.provisioned) };
            let allowed_by_scaling =
                provisioned + u64::from(cfg.limits.lambda_scale_per_10s).saturating_mul(1 + now / (10 * SEC));
            let local_cap = cfg.profile.max_instances.map_or(u64::MAX, u64::from);
            if count >= local_cap {
                return Acquired::Queued;
            }
            if count >= allowed_by_scaling {
                self.r.lambda_throttles_scaling += 1;
                return Acquired::Throttled;
            }
            func.envs.push(Env { believed: Vec::new(), ..Env::default() });
            func.cold += 1;
            Some((count as u32, true))
        };
        let (env, cold) = got.expect("an environment");
        func.busy += 1;
        func.peak = func.peak.max(func.busy);
        func.invocations += 1;
        func.envs[env as usize].started = now;
        self.busy_total += 1;
        self.r.lambda_peak_total = self.r.lambda_peak_total.max(self.busy_total);
        Acquired::Env(env, cold)
    }

    /// The invocation on `env` ends at `at` (billed to the millisecond).
    fn end_invocation(&mut self, f: Fun, env: u32, at: Us) {
        self.at(at, Ev::Release(f as u8, env));
    }

    fn release(&mut self, f: Fun, env: u32) {
        let now = self.now;
        let func = &mut self.functions[f as usize];
        let started = func.envs[env as usize].started;
        let ms = (now.saturating_sub(started) as f64 / 1000.0).ceil().max(1.0);
        func.billed_gb_s += ms / 1000.0 * func.memory_mb / 1024.0;
        func.busy_ms += ms;
        func.busy -= 1;
        self.busy_total -= 1;
        if let Some(waiter) = func.waiters.pop_front() {
            func.busy += 1;
            func.invocations += 1;
            func.envs[env as usize].started = now;
            self.busy_total += 1;
            match waiter {
                Waiter::Entry(b) => self.start_entry(b, env, false),
                Waiter::Poll(b) => self.start_poll(b, env, false),
                Waiter::Batch(t) => self.start_batch(t, env, false),
            }
        } else {
            func.idle.push(env);
        }
    }

    fn env(&mut self, f: Fun, env: u32) -> &mut Env {
        &mut self.functions[f as usize].envs[env as usize]
    }

    // Buyers and the entry function ------------------------------------------------------------------------

    /// A buyer whose entry was refused at `from` tries again later.
    fn client_retry(&mut self, b: u32, from: Us) {
        let buyer = &mut self.buyers[b as usize];
        let wait = buyer.retry;
        buyer.retry = (buyer.retry * 2).min(us(self.cfg.retry_max_s * 1000.0));
        let j = self.jitter();
        self.at(from + (wait as f64 * j) as Us, Ev::Arrive(b));
    }

    fn arrive(&mut self, b: u32) {
        if !(self.api_entry.has(self.now) && self.api_account.has(self.now)) {
            self.r.entry_429 += 1;
            self.client_retry(b, self.now);
            return;
        }
        self.api_entry.take();
        self.api_account.take();
        self.r.api_requests += 1;
        match self.acquire(Fun::Entry) {
            Acquired::Env(env, cold) => self.start_entry(b, env, cold),
            Acquired::Throttled => {
                self.r.lambda_throttles += 1;
                self.client_retry(b, self.now);
            }
            Acquired::Queued => self.functions[Fun::Entry as usize].waiters.push_back(Waiter::Entry(b)),
        }
    }

    fn start_entry(&mut self, b: u32, env: u32, cold: bool) {
        let lane = self.rng.gen_range(0..self.cfg.lanes.max(1));
        let task = EntryTask { buyer: b, env, phase: EPhase::ReadSale, attempt: 0, lane, seq: 0 };
        let id = match self.free_entries.pop() {
            Some(id) => {
                self.entries[id as usize] = task;
                id
            }
            None => {
                self.entries.push(task);
                (self.entries.len() - 1) as u32
            }
        };
        let p = &self.cfg.profile;
        let start = self.now + us(p.api_ms / 2.0 + p.invoke_ms + if cold { p.cold_ms } else { 0.0 });
        self.at(start, Ev::Entry(id));
    }

    fn entry_step(&mut self, id: u32) {
        let task = self.entries[id as usize];
        let (next, at) = match task.phase {
            EPhase::ReadSale => {
                if self.env(Fun::Entry, task.env).sale_cached {
                    (EPhase::ReadGate, None)
                } else {
                    match self.sale_read(Fun::Entry, 0.5) {
                        Some(done) => {
                            self.env(Fun::Entry, task.env).sale_cached = true;
                            (EPhase::ReadGate, Some(done))
                        }
                        None => return self.entry_throttled(id),
                    }
                }
            }
            EPhase::ReadGate => {
                // The instance trusts the gate it read, open or closed, for its cache time.
                let now = self.now;
                let ttl = us(self.cfg.gate_cache_s * 1000.0);
                let trusted = match self.env(Fun::Entry, task.env).gate_read {
                    Some((t, closed)) if now - t < ttl => Some(closed),
                    _ => None,
                };
                if trusted == Some(true) {
                    (EPhase::Respond(410), None)
                } else if trusted == Some(false) {
                    self.entries_between_gate_and_queue += 1;
                    (EPhase::Seq, None)
                } else {
                    match self.gate_read(Fun::Entry, task.env, 0.5) {
                        Some(done) => {
                            let closed = self.gate_closed;
                            self.env(Fun::Entry, task.env).gate_read = Some((now, closed));
                            if closed {
                                (EPhase::Respond(410), Some(done))
                            } else {
                                self.entries_between_gate_and_queue += 1;
                                (EPhase::Seq, Some(done))
                            }
                        }
                        None => return self.entry_throttled(id),
                    }
                }
            }
            EPhase::Seq => match self.ddb(Op::Update, &[(Part::Seq(task.lane), 1.0, 0.0)]) {
                Some(done) => {
                    let lane = &mut self.lanes[task.lane as usize];
                    lane.next_seq += 1;
                    self.entries[id as usize].seq = lane.next_seq;
                    self.r.entry_wcu += 1.0;
                    (EPhase::Ticket, Some(done))
                }
                None => return self.entry_throttled(id),
            },
            EPhase::Ticket => match self.ddb(Op::Transact, &[(Part::Own, 4.0, 0.0)]) {
                Some(done) => {
                    self.r.entry_wcu += 4.0;
                    let buyer = &mut self.buyers[task.buyer as usize];
                    if buyer.ticket.is_none() {
                        self.tickets.push(Ticket {
                            lane: task.lane,
                            seq: self.entries[id as usize].seq,
                            status: Status::Waiting,
                            enqueued: false,
                            taken: None,
                        });
                        buyer.ticket = Some((self.tickets.len() - 1) as u32);
                        self.open_tickets += 1;
                        self.r.entries_accepted += 1;
                    }
                    (EPhase::Send, Some(done))
                }
                None => return self.entry_throttled(id),
            },
            EPhase::Send => {
                let ticket = self.buyers[task.buyer as usize].ticket.expect("a ticket");
                if self.tickets[ticket as usize].enqueued {
                    self.entries_between_gate_and_queue -= 1;
                    (EPhase::Respond(202), None)
                } else {
                    match self.sqs(SqsOp::Send) {
                        Some(done) => {
                            self.tickets[ticket as usize].enqueued = true;
                            self.at(done, Ev::Enqueue(ticket));
                            (EPhase::Respond(202), Some(done))
                        }
                        None => return self.entry_throttled(id),
                    }
                }
            }
            EPhase::Respond(code) => {
                let p = &self.cfg.profile;
                let end = self.now + us(p.handler_ms);
                let answered = end + us(p.api_ms / 2.0);
                self.end_invocation(Fun::Entry, task.env, end);
                self.free_entries.push(id);
                let b = task.buyer;
                match code {
                    410 => self.buyer_done(b, Outcome::SoldOutAtDoor, answered),
                    202 => self.poll_later(b, answered, false),
                    _ => {
                        self.r.entry_5xx += 1;
                        self.client_retry(b, answered);
                    }
                }
                return;
            }
        };
        self.entries[id as usize].phase = next;
        self.entries[id as usize].attempt = 0;
        match at {
            Some(t) => self.at(t, Ev::Entry(id)),
            None => self.entry_step(id),
        }
    }

    fn entry_throttled(&mut self, id: u32) {
        let task = self.entries[id as usize];
        match self.backoff(task.attempt) {
            Some(t) => {
                self.entries[id as usize].attempt += 1;
                self.at(t, Ev::Entry(id));
            }
            None => {
                if matches!(task.phase, EPhase::Seq | EPhase::Ticket | EPhase::Send) {
                    self.entries_between_gate_and_queue -= 1;
                }
                self.entries[id as usize].phase = EPhase::Respond(500);
                self.entry_step(id);
            }
        }
    }

    fn buyer_done(&mut self, b: u32, outcome: Outcome, at: Us) {
        let buyer = &mut self.buyers[b as usize];
        if buyer.done.is_some() {
            return;
        }
        buyer.done = Some(at);
        buyer.outcome = outcome;
        if buyer.ticket.is_some() {
            self.open_tickets -= 1;
        }
        self.answered += 1;
        if self.answered == self.cfg.buyers {
            self.r.at_last_answer = Some(WorkerCounters {
                at_s: secs(at),
                won: u64::from(self.won),
                wcu: self.r.worker_counted_wcu,
                reads: self.r.worker_reads,
                condition_failures: self.r.condition_failures,
                fallbacks: self.r.fallbacks,
                rejected: self.r.rejected_by_worker,
            });
        }
        if let Arrival::Closed { .. } = self.cfg.arrival {
            if self.next_buyer < self.cfg.buyers {
                let next = self.next_buyer;
                self.next_buyer += 1;
                self.buyers[next as usize].start = at;
                self.at(at, Ev::Arrive(next));
            }
        }
    }

    // Status polls -----------------------------------------------------------------------------------------

    fn poll(&mut self, b: u32) {
        if !(self.api_poll.has(self.now) && self.api_account.has(self.now)) {
            self.r.poll_429 += 1;
            self.poll_later(b, self.now, true);
            return;
        }
        self.api_poll.take();
        self.api_account.take();
        self.r.api_requests += 1;
        self.r.polls += 1;
        match self.acquire(Fun::Poll) {
            Acquired::Env(env, cold) => self.start_poll(b, env, cold),
            Acquired::Throttled => {
                self.r.lambda_throttles += 1;
                self.poll_later(b, self.now, true);
            }
            Acquired::Queued => self.functions[Fun::Poll as usize].waiters.push_back(Waiter::Poll(b)),
        }
    }

    /// The buyer's next poll after an answer at `from` (flash-bench's loop: wait, grow the pause by 1.5 up to
    /// 3 s; after a 429 wait at least a second).
    fn poll_later(&mut self, b: u32, from: Us, refused: bool) {
        let (factor, max) = (self.cfg.poll_factor, us(self.cfg.poll_max_s * 1000.0));
        let buyer = &mut self.buyers[b as usize];
        let wait = if refused { buyer.pause.max(SEC) } else { buyer.pause };
        buyer.pause = ((wait as f64 * factor) as Us).min(max);
        self.at(from + wait, Ev::Poll(b));
    }

    fn start_poll(&mut self, b: u32, env: u32, cold: bool) {
        let task = PollTask { buyer: b, env, phase: PPhase::ReadTicket, attempt: 0 };
        let id = match self.free_polls.pop() {
            Some(id) => {
                self.polls[id as usize] = task;
                id
            }
            None => {
                self.polls.push(task);
                (self.polls.len() - 1) as u32
            }
        };
        let p = &self.cfg.profile;
        let start = self.now + us(p.api_ms / 2.0 + p.invoke_ms + if cold { p.cold_ms } else { 0.0 });
        self.at(start, Ev::PollStep(id));
    }

    fn poll_step(&mut self, id: u32) {
        let task = self.polls[id as usize];
        let ticket = self.buyers[task.buyer as usize].ticket.expect("a polling buyer has a ticket") as usize;
        let (next, at) = match task.phase {
            PPhase::ReadTicket => match self.ddb(Op::Get, &[(Part::Own, 0.0, 1.0)]) {
                Some(done) => match self.tickets[ticket].status {
                    Status::Waiting => (PPhase::ReadGate, Some(done)),
                    _ => (PPhase::Respond(true), Some(done)),
                },
                None => return self.poll_throttled(id),
            },
            PPhase::ReadGate => {
                // The instance trusts an open gate it read for its cache time; otherwise (never read, expired,
                // or closed) it reads the gate consistently before it marks a waiting ticket sold out.
                let (now, ttl) = (self.now, us(self.cfg.poll_gate_cache_s * 1000.0));
                match self.env(Fun::Poll, task.env).gate_read {
                    Some((t, false)) if now - t < ttl => (PPhase::Respond(false), None),
                    _ => match self.gate_read(Fun::Poll, task.env, 1.0) {
                        Some(done) => {
                            let closed = self.gate_closed;
                            self.env(Fun::Poll, task.env).gate_read = Some((now, closed));
                            if closed {
                                (PPhase::MarkTicket, Some(done))
                            } else {
                                (PPhase::Respond(false), Some(done))
                            }
                        }
                        None => return self.poll_throttled(id),
                    },
                }
            }
            PPhase::MarkTicket => match self.ddb(Op::Update, &[(Part::Own, 1.0, 0.0)]) {
                Some(done) => {
                    self.r.poll_wcu += 1.0;
                    if self.tickets[ticket].status == Status::Waiting {
                        self.tickets[ticket].status = Status::SoldOutByPoll;
                        (PPhase::MarkCounter, Some(done))
                    } else {
                        (PPhase::Respond(true), Some(done))
                    }
                }
                None => return self.poll_throttled(id),
            },
            PPhase::MarkCounter => match self.ddb(Op::Update, &[(Part::Own, 1.0, 0.0)]) {
                Some(done) => {
                    self.r.poll_wcu += 1.0;
                    (PPhase::Respond(true), Some(done))
                }
                None => return self.poll_throttled(id),
            },
            PPhase::Respond(last) => {
                let p = &self.cfg.profile;
                let end = self.now + us(p.handler_ms);
                let answered = end + us(p.api_ms / 2.0);
                self.end_invocation(Fun::Poll, task.env, end);
                self.free_polls.push(id);
                let b = task.buyer;
                if last {
                    let outcome = match self.tickets[ticket].status {
                        Status::Won => Outcome::Won,
                        _ => Outcome::SoldOutInLine,
                    };
                    if outcome == Outcome::Won {
                        self.buyers[b as usize].won_seen = Some(answered);
                    }
                    self.buyer_done(b, outcome, answered);
                } else {
                    self.poll_later(b, answered, false);
                }
                return;
            }
        };
        self.polls[id as usize].phase = next;
        self.polls[id as usize].attempt = 0;
        match at {
            Some(t) => self.at(t, Ev::PollStep(id)),
            None => self.poll_step(id),
        }
    }

    fn poll_throttled(&mut self, id: u32) {
        let task = self.polls[id as usize];
        match self.backoff(task.attempt) {
            Some(t) => {
                self.polls[id as usize].attempt += 1;
                self.at(t, Ev::PollStep(id));
            }
            None => {
                self.polls[id as usize].phase = PPhase::Respond(false);
                self.poll_step(id);
            }
        }
    }

    // The waiting room and its event source ----------------------------------------------------------------

    fn enqueue(&mut self, ticket: u32) {
        let lane = self.tickets[ticket as usize].lane;
        self.send_seq += 1;
        let seq = self.send_seq;
        let l = &mut self.lanes[lane as usize];
        let was_available = !l.in_flight && !l.queue.is_empty();
        l.queue.push_back((seq, ticket));
        if !l.in_flight && !was_available {
            self.available_lanes += 1;
        }
        self.queued += 1;
        self.entries_between_gate_and_queue -= 1;
        if self.cfg.profile.single_receiver {
            // A long poll sees a new message of a group that was free when it started.
            let r = &self.receiver;
            if r.busy && r.long_poll && !r.pending.get(lane as usize).copied().unwrap_or(false) {
                self.receiver.long_poll = false;
                self.receiver.generation += 1;
                let slot = self.receiver.slot;
                let done = self.sqs(SqsOp::Receive).unwrap_or(self.now + SEC / 10);
                self.at(done, Ev::Receive(slot));
            } else {
                self.pump_receiver();
            }
            return;
        }
        self.wake_idle();
    }

    fn wake_idle(&mut self) {
        let n = (self.available_lanes as usize).min(self.idle_slots.len());
        for _ in 0..n {
            if let Some(slot) = self.idle_slots.pop() {
                self.at(self.now, Ev::Slot(slot));
            }
        }
    }

    /// Batches the event source may have in flight at `t`: MaximumConcurrency, ramping from 5 by 300 a minute.
    fn active_slots(&self, t: Us) -> u32 {
        let cfg = self.cfg;
        if cfg.warm_pollers || cfg.limits.esm_initial >= cfg.concurrency {
            return cfg.concurrency;
        }
        let ramped = f64::from(cfg.limits.esm_initial) + cfg.limits.esm_ramp_per_min * secs(t) / 60.0;
        (ramped.floor() as u32).min(cfg.concurrency)
    }

    fn slot(&mut self, slot: u32) {
        if slot >= self.active_slots(self.now) {
            let limits = &self.cfg.limits;
            let needed = f64::from(slot + 1 - limits.esm_initial.min(slot + 1));
            let at = us(needed / limits.esm_ramp_per_min * 60.0 * 1000.0);
            self.at(at.max(self.now + 1), Ev::Slot(slot));
            return;
        }
        if self.cfg.profile.single_receiver {
            self.receiver.waiting.push_back(slot);
            self.pump_receiver();
            return;
        }
        if self.available_lanes == 0 {
            self.idle_slots.push(slot);
            return;
        }
        // The receive's answer holds what is visible when it is served.
        let done = match self.sqs(SqsOp::Receive) {
            Some(done) => done,
            None => self.now + SEC / 10,
        };
        self.at(done, Ev::Receive(slot));
    }

    /// The local poller starts its next receive: served at once when a group with messages is free, else a
    /// long poll that only a message in a group free at its start ends early.
    fn pump_receiver(&mut self) {
        if self.receiver.busy {
            return;
        }
        let Some(slot) = self.receiver.waiting.pop_front() else { return };
        let pending: Vec<bool> = self.lanes.iter().map(|l| l.in_flight).collect();
        let r = &mut self.receiver;
        r.busy = true;
        r.generation += 1;
        r.slot = slot;
        r.pending = pending;
        if self.available_lanes > 0 {
            self.receiver.long_poll = false;
            let done = self.sqs(SqsOp::Receive).unwrap_or(self.now + SEC / 10);
            self.at(done, Ev::Receive(slot));
        } else {
            self.receiver.long_poll = true;
            let generation = self.receiver.generation;
            self.at(self.now + us(self.cfg.profile.long_poll_s * 1000.0), Ev::PollTimeout(generation));
        }
    }

    fn poll_timeout(&mut self, generation: u64) {
        if self.receiver.generation != generation || !self.receiver.long_poll {
            return;
        }
        self.r.sqs_receives += 1;
        let r = &mut self.receiver;
        r.long_poll = false;
        r.busy = false;
        r.waiting.push_front(r.slot);
        self.pump_receiver();
    }

    fn receive(&mut self, slot: u32) {
        let single = self.cfg.profile.single_receiver;
        let pending = if single { std::mem::take(&mut self.receiver.pending) } else { Vec::new() };
        let msgs = self.compose(&pending);
        if single {
            self.receiver.busy = false;
        }
        if msgs.is_empty() {
            if single {
                self.receiver.waiting.push_front(slot);
                self.pump_receiver();
            } else {
                self.idle_slots.push(slot);
            }
            return;
        }
        if single {
            self.pump_receiver();
        }
        let done = self.now;
        let task = BatchTask {
            slot,
            env: 0,
            msgs,
            idx: 0,
            phase: BPhase::Acquire,
            attempt: 0,
            started: done,
            gate_closed: false,
            run_len: 0,
            run_taken: 0,
            refreshed: false,
            fallback_read: false,
            tries: 0,
            moves: Vec::new(),
            pending_wins: Vec::new(),
            done_at: 0,
            failed_from: None,
        };
        let id = match self.free_batches.pop() {
            Some(id) => {
                self.batches[id as usize] = task;
                id
            }
            None => {
                self.batches.push(task);
                (self.batches.len() - 1) as u32
            }
        };
        self.running_batches += 1;
        self.r.batches += 1;
        self.at(done, Ev::Batch(id));
    }

    /// Takes up to BatchSize visible messages from groups not in flight (nor in `pending`, the groups in flight
    /// when a local receive started), and marks those groups in flight.
    fn compose(&mut self, pending: &[bool]) -> Vec<u32> {
        let excluded = |lane: u32| pending.get(lane as usize).copied().unwrap_or(false);
        let batch = self.cfg.batch_size.max(1) as usize;
        let mut taken: Vec<u32> = Vec::with_capacity(batch);
        let mut picked: Vec<u32> = Vec::new();
        match self.cfg.composition {
            Composition::SameGroup => {
                while taken.len() < batch {
                    let Some(lane) = self.oldest_available(&picked, pending) else { break };
                    picked.push(lane);
                    let l = &mut self.lanes[lane as usize];
                    while taken.len() < batch {
                        let Some((_, t)) = l.queue.pop_front() else { break };
                        taken.push(t);
                    }
                }
            }
            Composition::SendOrder => {
                // The first messages in send order across the groups that were not in flight.
                let mut candidates: Vec<u32> = (0..self.lanes.len() as u32)
                    .filter(|&l| {
                        !self.lanes[l as usize].in_flight && !self.lanes[l as usize].queue.is_empty() && !excluded(l)
                    })
                    .collect();
                while taken.len() < batch && !candidates.is_empty() {
                    let (pos, &lane) = candidates
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, l)| self.lanes[**l as usize].queue.front().map_or(u64::MAX, |m| m.0))
                        .expect("a candidate");
                    let Some((_, t)) = self.lanes[lane as usize].queue.pop_front() else {
                        candidates.swap_remove(pos);
                        continue;
                    };
                    taken.push(t);
                    if !picked.contains(&lane) {
                        picked.push(lane);
                    }
                    if self.lanes[lane as usize].queue.is_empty() {
                        candidates.swap_remove(pos);
                    }
                }
            }
        }
        for lane in picked {
            self.lanes[lane as usize].in_flight = true;
            self.available_lanes -= 1;
        }
        self.queued -= taken.len() as u64;
        taken
    }

    fn oldest_available(&self, picked: &[u32], pending: &[bool]) -> Option<u32> {
        self.lanes
            .iter()
            .enumerate()
            .filter(|(i, l)| {
                !l.in_flight && !picked.contains(&(*i as u32)) && !pending.get(*i).copied().unwrap_or(false)
            })
            .filter_map(|(i, l)| l.queue.front().map(|m| (m.0, i as u32)))
            .min()
            .map(|(_, i)| i)
    }

    /// A batch's messages are deleted: its groups deliver again, and the slot receives its next batch.
    fn unlock(&mut self, id: u32) {
        let task = self.batches[id as usize].clone();
        let failed: Vec<u32> = task.failed_from.map(|i| task.msgs[i..].to_vec()).unwrap_or_default();
        let mut lanes: Vec<u32> = task.msgs.iter().map(|&t| self.tickets[t as usize].lane).collect();
        lanes.sort_unstable();
        lanes.dedup();
        let blocked: Vec<u32> = failed.iter().map(|&t| self.tickets[t as usize].lane).collect();
        for &t in failed.iter().rev() {
            let lane = self.tickets[t as usize].lane;
            self.lanes[lane as usize].queue.push_front((0, t));
            self.queued += 1;
            self.r.redelivered += 1;
        }
        for lane in lanes {
            if blocked.contains(&lane) {
                let visible = self.now + us(self.cfg.visibility_timeout_s * 1000.0);
                self.at(visible, Ev::Requeue(lane));
            } else {
                self.requeue(lane);
            }
        }
        self.running_batches -= 1;
        self.batch_spans.push((task.started, self.now));
        if self.cfg.trace {
            let lanes_in: Vec<u32> = task.msgs.iter().map(|&t| self.tickets[t as usize].lane).collect();
            eprintln!(
                "batch {:.2}..{:.2} s: {} messages, lanes {:?}",
                secs(task.started),
                secs(self.now),
                task.msgs.len(),
                lanes_in
            );
        }
        self.free_batches.push(id);
        self.at(self.now, Ev::Slot(task.slot));
    }

    fn requeue(&mut self, lane: u32) {
        let l = &mut self.lanes[lane as usize];
        if l.in_flight {
            l.in_flight = false;
            if !l.queue.is_empty() {
                self.available_lanes += 1;
            }
        }
        self.wake_idle();
    }

    // The admission worker ---------------------------------------------------------------------------------

    fn start_batch(&mut self, id: u32, env: u32, cold: bool) {
        let p = &self.cfg.profile;
        let start = self.now + us(p.invoke_ms + if cold { p.cold_ms } else { 0.0 });
        let task = &mut self.batches[id as usize];
        task.env = env;
        task.phase = BPhase::ReadSale;
        task.done_at = self.now + us(self.cfg.worker_timeout_s * 1000.0);
        self.at(start, Ev::Batch(id));
    }

    fn lane_at(&self, id: u32, i: usize) -> u32 {
        self.tickets[self.batches[id as usize].msgs[i] as usize].lane
    }

    fn batch_step(&mut self, id: u32) {
        let task = self.batches[id as usize].clone();
        let env = task.env;
        let shards = self.cfg.shards.max(1);
        let set = |s: &mut Self, phase: BPhase, at: Option<Us>| {
            let t = &mut s.batches[id as usize];
            t.phase = phase;
            t.attempt = 0;
            match at {
                Some(at) => s.at(at, Ev::Batch(id)),
                None => s.batch_step(id),
            }
        };
        match task.phase {
            BPhase::Acquire => match self.acquire(Fun::Worker) {
                Acquired::Env(env, cold) => self.start_batch(id, env, cold),
                Acquired::Throttled => {
                    self.r.lambda_throttles += 1;
                    self.at(self.now + SEC / 10, Ev::Batch(id));
                }
                Acquired::Queued => self.functions[Fun::Worker as usize].waiters.push_back(Waiter::Batch(id)),
            },
            BPhase::ReadSale => {
                if self.env(Fun::Worker, env).sale_cached {
                    set(self, BPhase::ReadGate, None);
                } else {
                    match self.sale_read(Fun::Worker, 0.5) {
                        Some(done) => {
                            self.r.worker_reads += 1;
                            set(self, BPhase::ReadShards, Some(done));
                        }
                        None => self.batch_throttled(id),
                    }
                }
            }
            BPhase::FallbackRead => {
                let touches: Vec<(Part, f64, f64)> = (0..shards).map(|k| (Part::Shard(k), 0.0, 1.0)).collect();
                match self.ddb(Op::BatchGet, &touches) {
                    Some(done) => {
                        self.r.worker_reads += u64::from(shards);
                        let units = self.units.clone();
                        self.env(Fun::Worker, env).believed = units;
                        self.batches[id as usize].fallback_read = true;
                        let phase = self.choose(id);
                        set(self, phase, Some(done));
                    }
                    None => self.batch_throttled(id),
                }
            }
            BPhase::ReadShards | BPhase::RefreshShards => {
                let touches: Vec<(Part, f64, f64)> = (0..shards).map(|k| (Part::Shard(k), 0.0, 1.0)).collect();
                match self.ddb(Op::BatchGet, &touches) {
                    Some(done) => {
                        self.r.worker_reads += u64::from(shards);
                        let units = self.units.clone();
                        let e = self.env(Fun::Worker, env);
                        e.believed = units;
                        e.sale_cached = true;
                        if task.phase == BPhase::ReadShards {
                            set(self, BPhase::ReadGate, Some(done));
                        } else {
                            self.batches[id as usize].refreshed = true;
                            self.after_refresh(id, done);
                        }
                    }
                    None => self.batch_throttled(id),
                }
            }
            BPhase::ReadGate
                if self
                    .env(Fun::Worker, env)
                    .gate_read
                    .is_some_and(|(t, closed)| !closed && self.now.saturating_sub(t) < WORKER_OPEN_GATE_TRUST) =>
            {
                // The instance trusts an open gate it read within the last second: no read for this batch.
                self.batches[id as usize].gate_closed = false;
                set(self, BPhase::Next, None);
            }
            BPhase::ReadGate | BPhase::Refresh => match self.gate_read(Fun::Worker, env, 1.0) {
                Some(done) => {
                    self.r.worker_reads += 1;
                    let (now, closed) = (self.now, self.gate_closed);
                    self.env(Fun::Worker, env).gate_read = Some((now, closed));
                    self.batches[id as usize].gate_closed = closed;
                    if task.phase == BPhase::ReadGate {
                        set(self, BPhase::Next, Some(done));
                    } else if closed {
                        // The shards looked empty and another worker has closed the gate (after its audit):
                        // the rest of the batch is turned away without an audit of its own.
                        self.r.closed_by_another += 1;
                        let t = &mut self.batches[id as usize];
                        t.idx += t.run_taken;
                        t.run_taken = 0;
                        set(self, BPhase::Next, Some(done));
                    } else {
                        set(self, BPhase::RefreshShards, Some(done));
                    }
                }
                None => self.batch_throttled(id),
            },
            BPhase::Next => {
                if task.idx >= task.msgs.len() {
                    return set(self, BPhase::Metrics, None);
                }
                if task.idx > 0 && self.now + DEADLINE_MARGIN >= task.done_at {
                    self.batches[id as usize].failed_from = Some(task.idx);
                    return set(self, BPhase::Metrics, None);
                }
                if task.idx == 0 && task.run_len == 0 && self.cfg.design == Design::Batch {
                    // The batch's messages by lane, in order of first appearance, each lane's in queue order.
                    let mut order: Vec<u32> = Vec::new();
                    let mut keyed: Vec<(usize, u32)> = Vec::with_capacity(task.msgs.len());
                    for &t in &task.msgs {
                        let lane = self.tickets[t as usize].lane;
                        let rank = order.iter().position(|l| *l == lane).unwrap_or_else(|| {
                            order.push(lane);
                            order.len() - 1
                        });
                        keyed.push((rank, t));
                    }
                    keyed.sort_by_key(|(rank, _)| *rank);
                    self.batches[id as usize].msgs = keyed.into_iter().map(|(_, t)| t).collect();
                }
                let msgs = self.batches[id as usize].msgs.clone();
                if self.tickets[msgs[task.idx] as usize].status == Status::Won {
                    // A redelivered entry whose take was settled meanwhile: one read tells, nothing is taken.
                    return match self.ddb(Op::BatchGet, &[(Part::Own, 0.0, 1.0)]) {
                        Some(done) => {
                            self.r.worker_reads += 1;
                            self.batches[id as usize].idx += 1;
                            set(self, BPhase::Next, Some(done));
                        }
                        None => self.batch_throttled(id),
                    };
                }
                if let Some(shard) = self.tickets[msgs[task.idx] as usize].taken.take() {
                    // A redelivered entry whose unit was taken: its ticket wins it now.
                    let t = &mut self.batches[id as usize];
                    t.run_len = 1;
                    t.run_taken = 0;
                    return set(self, BPhase::Win { shard, count: 1, previous: Previous::default() }, None);
                }
                if task.gate_closed {
                    return set(self, BPhase::Reject, None);
                }
                let lane = self.lane_at(id, task.idx);
                let run_len = match self.cfg.design {
                    Design::Single => 1,
                    Design::Batch => msgs[task.idx..]
                        .iter()
                        .take(MAX_BATCH_TAKE)
                        .take_while(|&&t| self.tickets[t as usize].lane == lane)
                        .count(),
                };
                let t = &mut self.batches[id as usize];
                t.run_len = run_len;
                t.run_taken = 0;
                t.refreshed = false;
                t.fallback_read = false;
                t.tries = 0;
                *self.r.runs.entry(run_len as u32).or_default() += 1;
                let phase = self.choose(id);
                set(self, phase, None);
            }
            BPhase::TakeRecord { shard, want } => match self.ddb(Op::Put, &[(Part::Own, 1.0, 0.0)]) {
                Some(done) => {
                    self.r.take_records += 1;
                    self.r.worker_counted_wcu += 1.0;
                    set(self, BPhase::Take { shard, want, batch: true }, Some(done));
                }
                None => self.batch_throttled(id),
            },
            BPhase::Take { shard, want, batch } => {
                let wcu = self.shard_item_wcu(shard);
                match self.ddb(Op::Update, &[(Part::Shard(shard), wcu, 0.0)]) {
                    Some(done) => {
                        self.r.worker_counted_wcu += 1.0;
                        let left = self.units[shard as usize];
                        if left >= i64::from(want) {
                            self.units[shard as usize] -= i64::from(want);
                            // As the code does: what it believed, less what it took (the write's old values
                            // and a short take's failed condition told it the shard's units, which it does not
                            // keep); or, as an alternative, the units the write left.
                            let (left_now, learn) = (self.units[shard as usize], self.cfg.learn_from_takes);
                            let believed = &mut self.env(Fun::Worker, env).believed[shard as usize];
                            if learn {
                                *believed = left_now;
                            } else {
                                *believed -= i64::from(want);
                            }
                            self.r.shard_writes += 1;
                            let lane = self.lane_at(id, task.idx + task.run_taken);
                            let previous = self.mark(shard, lane, env, want, batch);
                            set(self, BPhase::Win { shard, count: want, previous }, Some(done));
                        } else {
                            self.r.condition_failures += 1;
                            self.r.take_failures += 1;
                            if batch && left > 0 {
                                // A short take: the first entries take what is left, under the same record.
                                self.r.short_takes += 1;
                                set(self, BPhase::Take { shard, want: left as u32, batch }, Some(done));
                            } else {
                                self.env(Fun::Worker, env).believed[shard as usize] = left;
                                self.r.fallbacks += 1;
                                self.batches[id as usize].tries += 1;
                                // A run of two or more (the code's batch path) reads every shard once before
                                // its first fallback; a lone entry picks from what it believes.
                                let first_fallback = self.cfg.design == Design::Batch
                                    && task.run_len >= 2
                                    && !self.batches[id as usize].fallback_read;
                                let phase = if first_fallback { BPhase::FallbackRead } else { self.choose(id) };
                                set(self, phase, Some(done));
                            }
                        }
                    }
                    None => self.batch_throttled(id),
                }
            }
            BPhase::Win { shard, count, previous } => {
                let first = task.idx + task.run_taken;
                let pending: Vec<u32> = if task.pending_wins.is_empty() {
                    task.msgs[first..first + count as usize].to_vec()
                } else {
                    task.pending_wins.clone()
                };
                let mut done_max = self.now;
                let mut throttled = Vec::new();
                for t in pending {
                    let lane = self.tickets[t as usize].lane;
                    match self.ddb(Op::Update, &[(Part::Own, 1.0, 0.0), (Part::Holds(lane), 1.0, 0.0)]) {
                        Some(done) => {
                            done_max = done_max.max(done);
                            self.r.worker_counted_wcu += 2.0;
                            self.win(t, shard, done);
                        }
                        None => throttled.push(t),
                    }
                }
                if !throttled.is_empty() {
                    match self.backoff(task.attempt) {
                        Some(at) => {
                            let t = &mut self.batches[id as usize];
                            t.pending_wins = throttled;
                            t.attempt += 1;
                            self.at(at.max(done_max), Ev::Batch(id));
                        }
                        None => {
                            // Given up: these entries and the rest of the batch go back to the queue; each
                            // redelivery finds its take and settles it.
                            self.r.unsettled_takes += throttled.len() as u64;
                            for &t in &throttled {
                                self.tickets[t as usize].taken = Some(shard);
                                self.pending_takes.push(t);
                            }
                            let first_failed =
                                task.msgs.iter().position(|t| throttled.contains(t)).unwrap_or(task.msgs.len());
                            let b = &mut self.batches[id as usize];
                            b.pending_wins.clear();
                            b.failed_from = Some(first_failed);
                            b.phase = BPhase::Metrics;
                            b.attempt = 0;
                            self.at(done_max, Ev::Batch(id));
                        }
                    }
                    return;
                }
                self.batches[id as usize].pending_wins.clear();
                self.after_win(id, count, previous, done_max);
            }
            BPhase::CheckPrevious { previous } => {
                // The take records first (one batch read), then the tickets (another).
                let (reads, next) = if previous.records > 0 {
                    (previous.records, BPhase::CheckPrevious { previous: Previous { records: 0, ..previous } })
                } else {
                    (previous.tickets, BPhase::Next)
                };
                match self.ddb(Op::BatchGet, &[(Part::Own, 0.0, f64::from(reads))]) {
                    Some(done) => {
                        if next == BPhase::Next {
                            self.r.worker_reads += u64::from(reads);
                        }
                        let phase = if next == BPhase::Next { self.next_in_run(id) } else { next };
                        set(self, phase, Some(done));
                    }
                    None => self.batch_throttled(id),
                }
            }
            BPhase::Rebalance => {
                let Some(&(from, to, moved)) = task.moves.last() else {
                    let phase = self.choose(id);
                    return set(self, phase, None);
                };
                match self
                    .ddb(Op::Transact, &[(Part::Shard(from as u32), 2.0, 0.0), (Part::Shard(to as u32), 2.0, 0.0)])
                {
                    Some(done) => {
                        self.batches[id as usize].moves.pop();
                        self.r.worker_counted_wcu += 4.0;
                        if self.units[from] >= moved {
                            self.units[from] -= moved;
                            self.units[to] += moved;
                            let units = self.units.clone();
                            let e = self.env(Fun::Worker, env);
                            e.believed[from] = units[from];
                            e.believed[to] = units[to];
                            self.r.rebalances += 1;
                        } else {
                            self.r.condition_failures += 1;
                            self.r.rebalance_failures += 1;
                        }
                        set(self, BPhase::Rebalance, Some(done));
                    }
                    None => self.batch_throttled(id),
                }
            }
            BPhase::Audit { reads } => match self.ddb(Op::BatchGet, &[(Part::Own, 0.0, f64::from(reads))]) {
                Some(done) => {
                    self.r.worker_reads += u64::from(reads);
                    // Takes the shards name that their workers left unsettled: a waiting ticket wins its unit.
                    for t in std::mem::take(&mut self.pending_takes) {
                        if let Some(shard) = self.tickets[t as usize].taken.take() {
                            self.r.worker_counted_wcu += 2.0;
                            self.r.audit_settled += 1;
                            let lane = self.tickets[t as usize].lane;
                            self.parts.entry(Part::Holds(lane)).or_default().add(1.0, 0.0);
                            self.win(t, shard, done);
                        }
                    }
                    set(self, BPhase::CloseGate, Some(done));
                }
                None => self.batch_throttled(id),
            },
            BPhase::CloseGate => {
                // The close writes the gate and every copy of it (one transaction when there are copies).
                let (op, touches) = self.gate_writes();
                let wcu: f64 = touches.iter().map(|t| t.1).sum();
                match self.ddb(op, &touches) {
                    Some(done) if self.units.iter().any(|u| *u > 0) => {
                        // A unit came back since the shards were read (`returns` changed): the close fails and
                        // the shards are read again.
                        self.r.worker_counted_wcu += wcu;
                        self.r.condition_failures += 1;
                        self.r.close_failures += 1;
                        self.batches[id as usize].refreshed = false;
                        set(self, BPhase::Refresh, Some(done));
                    }
                    Some(done) => {
                        self.r.worker_counted_wcu += wcu;
                        self.r.gate_closes += 1;
                        if !self.gate_closed {
                            self.gate_closed = true;
                            self.gate_closed_at = Some(done);
                        }
                        let now = self.now;
                        self.env(Fun::Worker, env).gate_read = Some((now, true));
                        let t = &mut self.batches[id as usize];
                        t.gate_closed = true;
                        t.idx += t.run_taken;
                        t.run_taken = 0;
                        set(self, BPhase::Next, Some(done));
                    }
                    None => self.batch_throttled(id),
                }
            }
            BPhase::Reject => match self.ddb(Op::Update, &[(Part::Own, 1.0, 0.0)]) {
                Some(done) => {
                    self.r.worker_counted_wcu += 2.0;
                    let t = task.msgs[task.idx] as usize;
                    if self.tickets[t].status == Status::Waiting {
                        self.tickets[t].status = Status::SoldOutByWorker;
                        self.r.rejected_by_worker += 1;
                        set(self, BPhase::RejectCounter, Some(done));
                    } else {
                        self.r.condition_failures += 1;
                        self.r.reject_failures += 1;
                        self.batches[id as usize].idx += 1;
                        set(self, BPhase::Next, Some(done));
                    }
                }
                None => self.batch_throttled(id),
            },
            BPhase::RejectCounter => match self.ddb(Op::Update, &[(Part::Own, 1.0, 0.0)]) {
                Some(done) => {
                    self.batches[id as usize].idx += 1;
                    set(self, BPhase::Next, Some(done));
                }
                None => self.batch_throttled(id),
            },
            BPhase::Metrics => match self.ddb(Op::Update, &[(Part::Metric(metric_partition(env)), 1.0, 0.0)]) {
                Some(done) => {
                    self.r.worker_counted_wcu += 1.0;
                    self.r.metric_writes += 1;
                    set(self, BPhase::Finish, Some(done));
                }
                None => self.batch_throttled(id),
            },
            BPhase::Finish => {
                let end = self.now + us(self.cfg.profile.handler_ms);
                self.end_invocation(Fun::Worker, env, end);
                set(self, BPhase::Delete, Some(end));
            }
            BPhase::Delete => {
                let done = self.sqs(SqsOp::Delete).unwrap_or(self.now + SEC / 10);
                self.at(done, Ev::Unlock(id));
            }
        }
    }

    /// The admission worker gave up on a request: this message and the rest of the batch go back to the queue
    /// (visible again after the visibility timeout).
    fn batch_throttled(&mut self, id: u32) {
        let task = self.batches[id as usize].clone();
        match self.backoff(task.attempt) {
            Some(at) => {
                self.batches[id as usize].attempt += 1;
                self.at(at, Ev::Batch(id));
            }
            None => {
                let t = &mut self.batches[id as usize];
                t.failed_from = Some(t.idx + t.run_taken);
                t.phase = BPhase::Finish;
                self.batch_step(id);
            }
        }
    }

    /// The shard to take the rest of the current run from: the lane's home shard first (batch takes), else
    /// one picked at random by the units the instance believes each holds; a refresh when none seems to hold
    /// any, and closing the gate when a fresh read found them all empty.
    fn choose(&mut self, id: u32) -> BPhase {
        let task = &self.batches[id as usize];
        let env = task.env;
        let want = (task.run_len - task.run_taken) as u32;
        let lane = self.lane_at(id, task.idx + task.run_taken);
        let shards = self.cfg.shards.max(1);
        let believed = &self.functions[Fun::Worker as usize].envs[env as usize].believed;
        let home = (lane % shards) as usize;
        // A run of two or more takes from its lane's home shard first; a single take picks by units.
        let pick = if self.cfg.design == Design::Batch && task.run_len >= 2 && believed[home] > 0 {
            Some(home)
        } else {
            let total: i64 = believed.iter().map(|u| (*u).max(0)).sum();
            if total <= 0 {
                None
            } else {
                let mut target = self.rng.gen_range(0..total);
                believed.iter().position(|u| {
                    let u = (*u).max(0);
                    if target < u {
                        true
                    } else {
                        target -= u;
                        false
                    }
                })
            }
        };
        match pick {
            Some(shard) => {
                // A take asks for no more than the shard is believed to hold (at least one); a take of one
                // needs no take record.
                let want = i64::from(want).min(believed[shard]).max(1) as u32;
                if self.cfg.design == Design::Batch && want >= 2 {
                    BPhase::TakeRecord { shard: shard as u32, want }
                } else {
                    BPhase::Take { shard: shard as u32, want, batch: false }
                }
            }
            None if !task.refreshed => BPhase::Refresh,
            None => BPhase::CloseGate,
        }
    }

    fn after_refresh(&mut self, id: u32, done: Us) {
        let env = self.batches[id as usize].env;
        if self.units.iter().all(|u| *u <= 0) {
            let named: Vec<(u64, u32)> =
                self.marks.values().flat_map(|m| m.iter().flatten().map(|&(mark, k, _)| (mark, k))).collect();
            let known = &mut self.functions[Fun::Worker as usize].envs[env as usize].known;
            let reads = named.into_iter().filter(|(mark, _)| known.insert(*mark)).map(|(_, k)| k).sum::<u32>();
            let phase = if reads > 0 { BPhase::Audit { reads } } else { BPhase::CloseGate };
            self.batches[id as usize].phase = phase;
            self.at(done, Ev::Batch(id));
            return;
        }
        let moves = if self.cfg.rebalance { rebalance_plan(&self.units) } else { Vec::new() };
        let phase = if moves.is_empty() {
            self.choose(id)
        } else {
            self.batches[id as usize].moves = moves;
            BPhase::Rebalance
        };
        self.batches[id as usize].phase = phase;
        self.at(done, Ev::Batch(id));
    }

    fn after_win(&mut self, id: u32, count: u32, previous: Previous, done: Us) {
        let t = &mut self.batches[id as usize];
        t.run_taken += count as usize;
        t.tries = 0;
        let phase = if previous.tickets > 0 { BPhase::CheckPrevious { previous } } else { self.next_in_run(id) };
        let t = &mut self.batches[id as usize];
        t.phase = phase;
        t.attempt = 0;
        self.at(done, Ev::Batch(id));
    }

    fn next_in_run(&mut self, id: u32) -> BPhase {
        let t = &mut self.batches[id as usize];
        if t.run_taken >= t.run_len {
            t.idx += t.run_len;
            t.run_taken = 0;
            t.run_len = 0;
            BPhase::Next
        } else {
            self.choose(id)
        }
    }

    /// Records a take of `count` units of `lane` on `shard` by `env`; the takes its marks replace that the
    /// instance neither made nor saw settled (their take records and tickets are read).
    fn mark(&mut self, shard: u32, lane: u32, env: u32, count: u32, batch: bool) -> Previous {
        self.next_mark += 1;
        let id = self.next_mark;
        let entry = *self.marks.entry((shard, lane)).or_insert([None, None]);
        // The new mark replaces the lane's last, which becomes `prev`; the old `prev` goes.
        let bytes = &mut self.shard_bytes[shard as usize];
        *bytes += mark_bytes(batch);
        if let Some((_, _, dropped)) = entry[1] {
            *bytes -= mark_bytes(dropped);
        }
        let known = &mut self.functions[Fun::Worker as usize].envs[env as usize].known;
        let mut previous = Previous::default();
        for (mark, k, record) in entry.iter().flatten() {
            if known.insert(*mark) {
                previous.tickets += k;
                previous.records += u32::from(*record);
            }
        }
        known.insert(id);
        self.marks.insert((shard, lane), [Some((id, count, batch)), entry[0]]);
        previous
    }

    /// A ticket wins its taken unit; a ticket settled meanwhile (a status poll saw the gate closed by another
    /// worker between this take and this write) gives the unit back and reopens the gate.
    fn win(&mut self, ticket: u32, shard: u32, at: Us) {
        let t = &mut self.tickets[ticket as usize];
        if t.status != Status::Waiting {
            self.r.condition_failures += 1;
            self.r.given_back += 1;
            // The give-back transaction reopens the gate and each of its copies (2 WCU each).
            self.r.worker_counted_wcu += 6.0 + 2.0 * f64::from(self.cfg.gate_copies.max(1) - 1);
            self.units[shard as usize] += 1;
            self.gate_closed = false;
            self.gate_closed_at = None;
            return;
        }
        t.status = Status::Won;
        self.won += 1;
        self.win_times.push(at);
        self.admissions.push(ticket);
    }

    // The report -------------------------------------------------------------------------------------------

    fn finish(mut self) -> Report {
        let cfg = self.cfg;
        let mut r = std::mem::take(&mut self.r);
        r.won = u64::from(self.won);
        r.oversold = (self.units.iter().filter(|u| **u < 0).map(|u| -u).sum::<i64>()).max(0) as u64;
        r.in_shards = self.units.iter().sum::<i64>().max(0) as u64;
        let mut times = self.win_times.clone();
        times.sort_unstable();
        let pick = |f: f64| -> Option<f64> {
            if times.is_empty() {
                return None;
            }
            let i = ((times.len() as f64 * f).ceil() as usize).clamp(1, times.len()) - 1;
            Some(secs(times[i]))
        };
        r.first_win_s = pick(0.0);
        r.sell_out_s = if self.won >= cfg.units { pick(1.0) } else { None };
        r.last_win_s = pick(1.0);
        r.gate_closed_s = self.gate_closed_at.map(secs);
        if let (Some(a), Some(b)) = (pick(0.1), pick(0.9)) {
            let n = (times.len() as f64 * 0.8).max(1.0);
            r.admissions_steady = if b > a { n / (b - a) } else { f64::INFINITY };
        }
        if let Some(end) = r.last_win_s {
            r.admissions_average = r.won as f64 / end.max(1e-6);
        }
        let mut per_second: BTreeMap<u64, u64> = BTreeMap::new();
        for t in &times {
            *per_second.entry(t / SEC).or_default() += 1;
        }
        r.admissions_peak_second = per_second.values().copied().max().unwrap_or(0);

        // Buyers.
        let mut latencies: Vec<f64> = Vec::new();
        for b in &self.buyers {
            match b.outcome {
                Outcome::Won => r.buyers_won += 1,
                Outcome::SoldOutInLine => r.rejected_in_line += 1,
                Outcome::SoldOutAtDoor => r.rejected_at_door += 1,
                Outcome::Pending => r.unanswered += 1,
            }
            if let Some(done) = b.done {
                latencies.push(secs(done.saturating_sub(b.start)));
            }
            if let Some(seen) = b.won_seen {
                r.last_win_seen_s = r.last_win_seen_s.max(secs(seen));
            }
        }
        let settled = self.settled();
        if settled {
            // Everyone still trying to enter gets 410 at the door; their requests are counted, not simulated.
            r.late_buyers =
                r.unanswered - self.buyers.iter().filter(|b| b.ticket.is_some() && b.done.is_none()).count() as u64;
            r.rejected_at_door += r.late_buyers;
            r.unanswered -= r.late_buyers;
        }
        latencies.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            latencies.get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0.0)
        };
        r.p50_s = pct(0.5);
        r.p99_s = pct(0.99);
        r.race_s = self.buyers.iter().filter_map(|b| b.done).max().map(secs).unwrap_or(0.0);
        r.rejected_in_line_by_poll = self.tickets.iter().filter(|t| t.status == Status::SoldOutByPoll).count() as u64;

        // FIFO order: within each lane, a ticket admitted after one with a later place in line.
        let mut last_seq: HashMap<u32, u64> = HashMap::new();
        for &t in &self.admissions {
            let ticket = &self.tickets[t as usize];
            let last = last_seq.entry(ticket.lane).or_default();
            if ticket.seq < *last {
                r.lane_inversions += 1;
            }
            *last = (*last).max(ticket.seq);
        }
        let mut best_win: HashMap<u32, u64> = HashMap::new();
        for t in self.tickets.iter().filter(|t| t.status == Status::Won) {
            let e = best_win.entry(t.lane).or_default();
            *e = (*e).max(t.seq);
        }
        r.passed_over = self
            .tickets
            .iter()
            .filter(|t| matches!(t.status, Status::SoldOutByWorker | Status::SoldOutByPoll))
            .filter(|t| best_win.get(&t.lane).is_some_and(|w| t.seq < *w))
            .count() as u64;

        // Partitions.
        r.table_peak_wcu = self.table.peak_wcu;
        r.table_peak_rcu = self.table.peak_rcu;
        r.table_throttled = self.table.throttled;
        let mut parts: Vec<(Part, Bucket)> = self.parts.iter().map(|(p, b)| (*p, *b)).collect();
        parts.sort_by_key(|(p, _)| *p);
        for (part, b) in parts {
            r.total_wcu += b.total_wcu;
            r.total_rcu += b.total_rcu;
            if part == Part::Own {
                continue;
            }
            r.partitions.push(PartitionReport {
                name: part.name(),
                kind: match part {
                    Part::Sale => "sale",
                    Part::GateCopy(_) => "gate copy",
                    Part::Shard(_) => "shard",
                    Part::Seq(_) => "sequence",
                    Part::Holds(_) => "hold index",
                    Part::Metric(_) => "metrics",
                    Part::Own => "own",
                },
                peak_wcu: b.peak_wcu,
                peak_rcu: b.peak_rcu,
                total_wcu: b.total_wcu,
                throttled: b.throttled,
                throttled_writes: b.throttled_writes,
            });
        }
        r.shard_item_wcu = (0..cfg.shards.max(1)).map(|k| self.shard_item_wcu(k)).fold(0.0, f64::max);

        // Lambda.
        for f in FUNS {
            let func = &self.functions[f as usize];
            r.functions.push(FunctionReport {
                name: match f {
                    Fun::Entry => "enter-flash-sale",
                    Fun::Poll => "get-flash-sale-entry",
                    Fun::Worker => "admit-flash-sale-entries",
                },
                invocations: func.invocations,
                peak: func.peak,
                cold_starts: func.cold,
                gb_s: func.billed_gb_s,
                memory_mb: func.memory_mb,
                mean_ms: func.busy_ms / func.invocations.max(1) as f64,
            });
        }
        if let Some(end) = r.sell_out_s.or(r.last_win_s) {
            let end_us = us(end * 1000.0);
            let busy: f64 = self.batch_spans.iter().map(|(a, b)| secs((*b).min(end_us).saturating_sub(*a))).sum();
            r.worker_busy = busy / (f64::from(cfg.concurrency.max(1)) * end.max(1e-6));
        }
        r.esm_ramp_end_s = if cfg.warm_pollers || cfg.limits.esm_initial >= cfg.concurrency {
            0.0
        } else {
            f64::from(cfg.concurrency - cfg.limits.esm_initial) / cfg.limits.esm_ramp_per_min * 60.0
        };
        r.slots_at_sell_out = self.active_slots(us(r.sell_out_s.or(r.last_win_s).unwrap_or(0.0) * 1000.0));
        r.settled = settled;
        r
    }
}

/// The shards' initial units, as the sale splits them (the domain's `split_units`).
pub fn split_units(units: u32, shards: u32) -> Vec<i64> {
    flash_sale::split_units(units, shards).into_iter().map(i64::from).collect()
}

/// The worker's rebalancing near sell-out: the domain's own `rebalance_plan`, as (from, to, units).
pub fn rebalance_plan(remaining: &[i64]) -> Vec<(usize, usize, i64)> {
    flash_sale::rebalance_plan(remaining).into_iter().map(|m| (m.from, m.to, m.units)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Arrival, Config, Design};
    use crate::report::PartitionReport;

    fn part_wcu(r: &Report, kind: &str) -> f64 {
        r.partitions.iter().filter(|p| p.kind == kind).map(|p| p.total_wcu).sum()
    }

    /// 30 buyers for 30 units on one shard and one lane, the queue filled before the pollers start: three
    /// batches of ten, each one take record (1 WCU), one shard write (1 WCU), ten tickets won (1 WCU each) with
    /// their hold index entries (1 WCU each, on the lane's index partition) and the worker's metrics (1 WCU, on
    /// a metrics partition); every entry 5 WCU. The sale's own partition is only read.
    #[test]
    fn a_sale_of_full_batches_costs_the_designs_closed_form_write_units() {
        let cfg = Config { pollers_start_s: 5.0, ..Config::example(30, 30, 1, 1) };
        let r = Sim::new(&cfg).run();
        assert_eq!((r.won, r.oversold, r.in_shards), (30, 0, 0));
        assert_eq!(r.runs.get(&10), Some(&3), "{:?}", r.runs);
        assert_eq!((r.take_records, r.shard_writes, r.condition_failures, r.fallbacks), (3, 3, 0, 0));
        assert_eq!(r.entry_wcu, 30.0 * 5.0);
        let per_batch = 1.0 + 1.0 + 10.0 * 2.0;
        assert_eq!(r.worker_counted_wcu, 3.0 * per_batch + 3.0, "three batches and their metrics writes");
        assert_eq!(part_wcu(&r, "shard"), 3.0);
        assert_eq!(part_wcu(&r, "hold index"), 30.0);
        assert_eq!(part_wcu(&r, "sequence"), 30.0);
        assert_eq!(part_wcu(&r, "metrics"), 3.0);
        assert_eq!(part_wcu(&r, "sale"), 0.0, "nobody was turned away, so the gate stayed open");
        assert_eq!(r.total_wcu, 150.0 + 3.0 * per_batch + 3.0);
        assert!((r.wcu_per_sale() - (5.0 + (3.0 * per_batch + 3.0) / 30.0)).abs() < 1e-9);
    }

    /// 30 buyers for 25 units: the third batch asks the shard for the 5 units the worker believes it holds
    /// (no failed condition), and the other five entries find the shards empty: a consistent gate read, a
    /// fresh read of the shards, the close and five rejections.
    #[test]
    fn a_take_asks_for_what_the_shard_is_believed_to_hold() {
        let cfg = Config { pollers_start_s: 5.0, ..Config::example(30, 25, 1, 1) };
        let r = Sim::new(&cfg).run();
        assert_eq!((r.won, r.oversold, r.in_shards, r.rejected_by_worker), (25, 0, 0, 5));
        assert_eq!((r.take_records, r.shard_writes, r.take_failures, r.short_takes), (3, 3, 0, 0));
        assert_eq!((r.gate_closes, r.closed_by_another), (1, 0));
    }

    /// The hold index is written by lane and the metrics by instance: with 8 lanes on one shard no index
    /// partition takes more than its lane's wins, and the sale's partition takes only the close.
    #[test]
    fn wins_spread_over_the_lanes_index_partitions() {
        let cfg = Config { arrival: Arrival::Closed { in_flight: 200 }, ..Config::example(600, 300, 1, 8) };
        let r = Sim::new(&cfg).run();
        assert_eq!(r.won, 300);
        let holds: Vec<&PartitionReport> = r.partitions.iter().filter(|p| p.kind == "hold index").collect();
        assert_eq!(holds.len(), 8, "one index partition per lane");
        assert_eq!(holds.iter().map(|p| p.total_wcu).sum::<f64>(), 300.0);
        assert_eq!(part_wcu(&r, "metrics"), r.metric_writes as f64);
        assert_eq!(part_wcu(&r, "sale"), (r.gate_closes + r.close_failures) as f64);
    }

    /// The same sale with single takes: per unit one shard write and one ticket with its index entry.
    #[test]
    fn single_takes_cost_three_write_units_per_unit() {
        let cfg = Config { pollers_start_s: 5.0, design: Design::Single, ..Config::example(30, 30, 1, 1) };
        let r = Sim::new(&cfg).run();
        assert_eq!(r.won, 30);
        assert_eq!((r.take_records, r.shard_writes), (0, 30));
        assert_eq!(r.worker_counted_wcu, 30.0 * 3.0 + r.metric_writes as f64);
    }

    /// With more buyers than units every write the worker made is one the design names: runs (a take record
    /// for two or more, a shard write), wins (ticket and index), failed takes, rejections (2 as counted),
    /// gate closes, rebalancing moves and metrics.
    #[test]
    fn every_counted_write_is_one_of_the_designs() {
        for (shards, lanes) in [(1, 8), (4, 32), (10, 80)] {
            let cfg =
                Config { arrival: Arrival::Closed { in_flight: 200 }, ..Config::example(3000, 300, shards, lanes) };
            let r = Sim::new(&cfg).run();
            assert_eq!((r.won, r.oversold, r.in_shards, r.unanswered), (300, 0, 0, 0), "{shards} shards");
            let expected = r.take_records as f64
                + (r.shard_writes + r.take_failures) as f64
                + 2.0 * (r.won + r.given_back - r.audit_settled) as f64
                + 6.0 * r.given_back as f64
                + 2.0 * (r.rejected_by_worker + r.reject_failures) as f64
                + (r.gate_closes + r.close_failures) as f64
                + 4.0 * (r.rebalances + r.rebalance_failures) as f64
                + 2.0 * r.audit_settled as f64
                + r.metric_writes as f64;
            let failures = r.take_failures + r.reject_failures + r.rebalance_failures + r.given_back + r.close_failures;
            assert_eq!(r.condition_failures, failures, "{shards} shards");
            assert_eq!(r.worker_counted_wcu, expected, "{shards} shards: {r:?}");
            assert_eq!(r.rejected_in_line + r.rejected_at_door + r.won, 3000);
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_sale() {
        let cfg = Config::example(20_000, 1_000, 4, 32);
        let (a, b) = (Sim::new(&cfg).run(), Sim::new(&cfg).run());
        assert_eq!((a.won, a.sell_out_s, a.total_wcu), (b.won, b.sell_out_s, b.total_wcu));
    }
}
