//! The flash-sale race, as a library: the benchmark binary runs it at full size (10,000 shoppers for 1,000
//! units, 1 shard and N shards) and the end-to-end tests at a smaller size with the same invariants.
//!
//! Everything goes through the running local stack: tokens from `local-stack token --user shopper-<n>`, the
//! seller's stock and sale through the HTTP API, entries and polls through the HTTP API, and the final check
//! reads the stored sale, its shards and tickets and the stock item over the AWS endpoint.

use anyhow::{anyhow, bail, Context, Result};
use commerce_app::ports::AdmissionStats;
use commerce_aws::flash_sale::DynamoFlashSales;
use commerce_domain::flash_sale::check_sale;
use futures::stream::{self, StreamExt};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Where the running stack is and how to mint tokens.
#[derive(Debug, Clone)]
pub struct Stack {
    pub api: String,
    pub aws: String,
    /// The `local-stack` binary.
    pub local_stack: PathBuf,
    pub state_dir: PathBuf,
    /// Physical table names (`<stack>-<LogicalId>` locally).
    pub flash_table: String,
    pub inventory_table: String,
}

impl Stack {
    /// Reads `<state_dir>/stack.json`, written by `local-stack up`.
    pub fn from_state_dir(local_stack: PathBuf, state_dir: PathBuf) -> Result<Self> {
        let path = state_dir.join("stack.json");
        let info: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?)?;
        let field =
            |name: &str| info[name].as_str().map(str::to_owned).ok_or_else(|| anyhow!("{name} missing in stack.json"));
        Ok(Self {
            api: field("api_url")?,
            aws: field("aws_endpoint")?,
            local_stack,
            state_dir,
            flash_table: "commerce-local-FlashSalesTable".into(),
            inventory_table: "commerce-local-InventoryTable".into(),
        })
    }

    /// An ID token of a demo user (created on first use for `shopper-<n>`).
    pub async fn token(&self, user: &str) -> Result<String> {
        let out = tokio::process::Command::new(&self.local_stack)
            .args(["token", "--user", user, "--state-dir"])
            .arg(&self.state_dir)
            .output()
            .await
            .context("running local-stack token")?;
        if !out.status.success() {
            bail!("token for {user}: {}", String::from_utf8_lossy(&out.stderr));
        }
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .map(|l| l.trim().to_owned())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| anyhow!("no token printed for {user}"))
    }
}

/// One race.
#[derive(Debug, Clone)]
pub struct Race {
    pub buyers: usize,
    pub units: u32,
    pub shards: u32,
    /// First shopper number (`shopper-<first>` ...), so runs can use distinct shoppers.
    pub first_shopper: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// The demo product whose first variant is sold (owned by the demo `seller`).
    pub product_id: String,
}

/// A shopper who won a unit, and the ticket to check out with.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Winner {
    /// The user name (`shopper-<n>`).
    pub user: String,
    pub ticket_id: String,
}

/// What a race measured.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    pub sale_id: String,
    pub sku: String,
    pub winners: Vec<Winner>,
    pub shards: u32,
    pub buyers: usize,
    pub units: u32,
    pub won: usize,
    pub sold_out: usize,
    pub expired: usize,
    pub no_final_answer: usize,
    pub rejected_at_door: usize,
    pub throttled_retries: usize,
    pub p50_ms: u128,
    pub p99_ms: u128,
    /// From the first entry to the last buyer's final answer.
    pub race_s: f64,
    /// From the first entry until the last winner saw the win (within one status poll of the sell-out).
    pub last_win_s: f64,
    pub admissions_per_s: f64,
    pub token_mint_s: f64,
    pub late_entry_status: u16,
    pub late_entry_ms: u128,
    pub violations: Vec<String>,
    pub stock_violations: Vec<String>,
    /// Tickets stored for the sale after the late entry: one per entry accepted into the line, none for an
    /// entry refused at the door (so nothing of it was enqueued either).
    pub tickets_stored: usize,
    pub oversold: i64,
    pub stranded: i64,
    pub worker: AdmissionStats,
    pub entry_write_units: u64,
    pub write_units_per_sale: f64,
    pub write_units_per_rejection: f64,
}

/// A buyer's first status poll comes this long after the entry; each later one waits 1.5 times longer, up to
/// [`POLL_MAX`]. Polls cost two reads each, and the local emulator serves all reads one at a time, so a fixed
/// short interval would let the pollers crowd out the admissions they wait for.
const POLL_FIRST: Duration = Duration::from_millis(300);
const POLL_MAX: Duration = Duration::from_secs(3);

enum Final {
    /// The buyer's index and ticket, and when (since the race began) the win was seen.
    Won(usize, String, Duration),
    SoldOut {
        at_door: bool,
    },
    Expired,
    None,
}

async fn send(req: reqwest::RequestBuilder) -> Result<(u16, Option<u64>, Value)> {
    let response = req.send().await?;
    let status = response.status().as_u16();
    let retry = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    Ok((status, retry, body))
}

/// A seller's SKU with at least `units` available: the first variant of the first demo product, topped up.
async fn prepare_stock(
    http: &reqwest::Client,
    stack: &Stack,
    seller: &str,
    product_id: &str,
    units: u32,
) -> Result<String> {
    let (status, _, product) = send(http.get(format!("{}/v1/products/{product_id}", stack.api))).await?;
    if status != 200 {
        bail!("demo product: {status} {product}");
    }
    let sku = product["variants"][0]["sku"].as_str().ok_or_else(|| anyhow!("demo product has no variant"))?.to_owned();
    let (_, _, warehouses) = send(http.get(format!("{}/v1/warehouses", stack.api)).bearer_auth(seller)).await?;
    let warehouse = warehouses["items"][0]["warehouse_id"]
        .as_str()
        .or_else(|| warehouses[0]["warehouse_id"].as_str())
        .ok_or_else(|| anyhow!("no warehouse: {warehouses}"))?
        .to_owned();
    let url = format!("{}/v1/seller/inventory/{sku}/{warehouse}/adjustments", stack.api);
    let (status, _, body) = send(
        http.post(url)
            .bearer_auth(seller)
            .header("idempotency-key", format!("flash-bench-{}", ulid::Ulid::new()))
            .json(&json!({"delta": units, "reason": "receipt"})),
    )
    .await?;
    if status != 200 && status != 201 {
        bail!("adding stock: {status} {body}");
    }
    Ok(sku)
}

/// Signed-in shoppers `shopper-<first>` ... `shopper-<first + count - 1>` (created on first use), with their
/// ID tokens (valid for an hour, so several races can share them).
#[derive(Debug, Clone)]
pub struct Buyers {
    pub users: Vec<String>,
    pub tokens: Vec<String>,
    /// How long minting took.
    pub mint_s: f64,
}

impl Buyers {
    /// Mints the tokens, a few at a time.
    pub async fn sign_in(stack: &Stack, first: usize, count: usize) -> Result<Self> {
        let minted = Instant::now();
        let users: Vec<String> = (first..first + count).map(|n| format!("shopper-{n}")).collect();
        let tokens: Vec<Result<String>> =
            stream::iter(users.iter().map(|u| stack.token(u))).buffered(16).collect().await;
        let tokens: Vec<String> = tokens.into_iter().collect::<Result<_>>()?;
        Ok(Self { users, tokens, mint_s: minted.elapsed().as_secs_f64() })
    }
}

/// Waits (up to a minute) until the demo catalog's stream backlog is indexed: the seed writes 300 products
/// and their stock at start, and indexing them through the streams takes the emulator's one DynamoDB lock for
/// most of a minute, which a race started meanwhile would measure instead of itself. Settled means the search
/// index holds every product and its stock counts did not move for three seconds.
pub async fn wait_for_seed_indexed(stack: &Stack) -> Result<()> {
    let http = reqwest::Client::new();
    let began = Instant::now();
    let mut last: Option<Value> = None;
    while began.elapsed() < Duration::from_secs(60) {
        let (status, _, body) = send(http.get(format!("{}/v1/search?q=", stack.api))).await?;
        let seen =
            (status == 200 && body["total"].as_u64().unwrap_or(0) >= 300).then(|| body["facets"]["in_stock"].clone());
        if seen.is_some() && seen == last {
            return Ok(());
        }
        last = seen;
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    bail!("the demo catalog was not indexed within a minute")
}

/// Runs one race with freshly signed-in buyers and checks its invariants.
pub async fn run(stack: &Stack, race: &Race) -> Result<Report> {
    let buyers = Buyers::sign_in(stack, race.first_shopper, race.buyers).await?;
    run_with(stack, race, &buyers).await
}

/// Runs one race with the first `race.buyers` of `buyers` and checks its invariants.
pub async fn run_with(stack: &Stack, race: &Race, buyers: &Buyers) -> Result<Report> {
    if buyers.tokens.len() < race.buyers {
        bail!("{} buyers signed in, {} needed", buyers.tokens.len(), race.buyers);
    }
    let http = reqwest::Client::builder().pool_max_idle_per_host(race.concurrency).build()?;
    let seller = stack.token("seller").await?;
    let sku = prepare_stock(&http, stack, &seller, &race.product_id, race.units).await?;
    let users = &buyers.users[..race.buyers];
    let tokens = &buyers.tokens[..race.buyers];
    let token_mint_s = buyers.mint_s;

    let starts_at = chrono::Utc::now() + chrono::Duration::seconds(3);
    let sale = json!({
        "sku": sku, "units": race.units, "price": {"amount": 100, "currency": "USD"},
        "starts_at": starts_at.to_rfc3339(), "ends_at": (starts_at + chrono::Duration::hours(1)).to_rfc3339(),
        "per_customer_limit": 1, "shards": race.shards, "hold_seconds": 3600
    });
    let (status, _, created) =
        send(http.post(format!("{}/v1/seller/flash-sales", stack.api)).bearer_auth(&seller).json(&sale)).await?;
    if status != 201 {
        bail!("creating the sale: {status} {created}");
    }
    let sale_id = created["sale_id"].as_str().ok_or_else(|| anyhow!("no sale_id"))?.to_owned();
    let wait = (starts_at - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(200)).await;

    let began = Instant::now();
    let entries = format!("{}/v1/flash-sales/{sale_id}/entries", stack.api);
    let results: Vec<(Final, Duration, usize)> = stream::iter(tokens.iter().enumerate().map(|(i, token)| {
        let (http, entries) = (http.clone(), entries.clone());
        async move {
            let start = Instant::now();
            let mut throttled = 0;
            let key = format!("bench-{i}");
            let ticket = loop {
                match send(http.post(&entries).bearer_auth(token).header("idempotency-key", &key)).await {
                    Ok((202, _, body)) => break body["ticket_id"].as_str().map(str::to_owned),
                    Ok((410, _, _)) => return (Final::SoldOut { at_door: true }, start.elapsed(), throttled),
                    Ok((429 | 503, retry, _)) | Ok((500..=599, retry, _)) => {
                        throttled += 1;
                        tokio::time::sleep(Duration::from_millis(retry.map_or(250, |s| s * 1000))).await;
                    }
                    _ => return (Final::None, start.elapsed(), throttled),
                }
                if start.elapsed() > Duration::from_secs(600) {
                    return (Final::None, start.elapsed(), throttled);
                }
            };
            let Some(ticket) = ticket else {
                return (Final::None, start.elapsed(), throttled);
            };
            let url = format!("{entries}/{ticket}");
            let mut pause = POLL_FIRST;
            while start.elapsed() < Duration::from_secs(900) {
                tokio::time::sleep(pause).await;
                pause = (pause * 3 / 2).min(POLL_MAX);
                match send(http.get(&url).bearer_auth(token)).await {
                    Ok((200, _, body)) => match body["status"].as_str() {
                        Some("won") => return (Final::Won(i, ticket, began.elapsed()), start.elapsed(), throttled),
                        Some("sold_out") => return (Final::SoldOut { at_door: false }, start.elapsed(), throttled),
                        Some("expired") => return (Final::Expired, start.elapsed(), throttled),
                        _ => {}
                    },
                    Ok((429, retry, _)) => {
                        throttled += 1;
                        pause = pause.max(Duration::from_secs(retry.unwrap_or(1)));
                    }
                    _ => {}
                }
            }
            (Final::None, start.elapsed(), throttled)
        }
    }))
    .buffer_unordered(race.concurrency)
    .collect()
    .await;
    let elapsed = began.elapsed();

    let mut report = Report {
        sale_id: sale_id.clone(),
        sku: sku.clone(),
        shards: race.shards,
        buyers: race.buyers,
        units: race.units,
        token_mint_s,
        ..Report::default()
    };
    let mut times: Vec<u128> = Vec::with_capacity(results.len());
    for (outcome, took, throttled) in &results {
        report.throttled_retries += throttled;
        times.push(took.as_millis());
        match outcome {
            Final::Won(i, ticket, at) => {
                report.won += 1;
                report.last_win_s = report.last_win_s.max(at.as_secs_f64());
                report.winners.push(Winner { user: users[*i].clone(), ticket_id: ticket.clone() });
            }
            Final::SoldOut { at_door } => {
                report.sold_out += 1;
                report.rejected_at_door += usize::from(*at_door);
            }
            Final::Expired => report.expired += 1,
            Final::None => report.no_final_answer += 1,
        }
    }
    times.sort_unstable();
    let pct = |p: f64| times.get(((times.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0);
    report.p50_ms = pct(0.50);
    report.p99_ms = pct(0.99);
    report.race_s = elapsed.as_secs_f64();
    report.admissions_per_s = report.won as f64 / elapsed.as_secs_f64().max(0.001);

    let late = Instant::now();
    let (status, _, _) =
        send(http.post(&entries).bearer_auth(&tokens[0]).header("idempotency-key", "late-entry")).await?;
    report.late_entry_status = status;
    report.late_entry_ms = late.elapsed().as_millis();

    let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&stack.aws)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("local", "local", None, None, "local-stack"))
        .load()
        .await;
    let client = aws_sdk_dynamodb::Client::new(&aws);
    let store = DynamoFlashSales::new(client.clone(), &stack.flash_table, &stack.inventory_table);
    let snapshot = store.snapshot(&sale_id).await?.ok_or_else(|| anyhow!("sale {sale_id} not stored"))?;
    report.violations = check_sale(&snapshot);
    report.tickets_stored = snapshot.tickets.len();
    let totals = snapshot.totals();
    report.oversold = (totals.held + totals.purchased - i64::from(race.units)).max(0);
    report.stranded = if snapshot.gate.sold_out { totals.in_shards } else { 0 };
    report.stock_violations = stock_check(&client, &stack.inventory_table, &sku).await?;
    report.worker = store.admission_totals(&sale_id).await?;
    let accepted = (report.sold_out - report.rejected_at_door + report.won) as u64;
    report.entry_write_units = accepted * 5;
    let rejections = report.sold_out.max(1) as f64;
    let in_line_rejections = (report.sold_out - report.rejected_at_door) as f64;
    report.write_units_per_sale =
        (report.worker.write_units as f64 + report.won as f64 * 5.0) / report.won.max(1) as f64;
    report.write_units_per_rejection = in_line_rejections * (5.0 + 2.0) / rejections;
    Ok(report)
}

/// The stock ledger of every warehouse of a SKU: `free + reserved + sold == received + adjustments`,
/// `free == on_hand - reserved`, counters not negative.
async fn stock_check(client: &aws_sdk_dynamodb::Client, table: &str, sku: &str) -> Result<Vec<String>> {
    let out = client
        .query()
        .table_name(table)
        .key_condition_expression("pk = :pk AND begins_with(sk, :wh)")
        .expression_attribute_values(":pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("SKU#{sku}")))
        .expression_attribute_values(":wh", aws_sdk_dynamodb::types::AttributeValue::S("WH#".into()))
        .consistent_read(true)
        .send()
        .await?;
    let mut violations = Vec::new();
    for item in out.items.unwrap_or_default() {
        let get = |k: &str| item.get(k).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        let (free, reserved, sold, on_hand) = (get("free"), get("reserved"), get("sold"), get("on_hand"));
        if free + reserved + sold != get("received") + get("adjustments") {
            violations
                .push(format!("{sku}: free {free} + reserved {reserved} + sold {sold} != received + adjustments"));
        }
        if free != on_hand - reserved
            || reserved < get("flash")
            || [free, reserved, sold, on_hand].iter().any(|v| *v < 0)
        {
            violations.push(format!("{sku}: counters inconsistent: {item:?}"));
        }
    }
    Ok(violations)
}

impl Report {
    /// Every invariant the race promises, as failures.
    pub fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        if self.won != self.units as usize {
            failures.push(format!("{} won, expected exactly {}", self.won, self.units));
        }
        if self.oversold != 0 || self.stranded != 0 {
            failures.push(format!("oversold {} stranded {}", self.oversold, self.stranded));
        }
        if self.no_final_answer != 0 || self.expired != 0 {
            failures.push(format!("{} buyers without a final answer, {} expired", self.no_final_answer, self.expired));
        }
        if self.won + self.sold_out != self.buyers {
            failures.push(format!("won {} + sold out {} != buyers {}", self.won, self.sold_out, self.buyers));
        }
        if self.late_entry_status != 410 {
            failures.push(format!("an entry after sell-out answered {}", self.late_entry_status));
        }
        let accepted = self.won + self.sold_out - self.rejected_at_door;
        if self.tickets_stored != accepted {
            failures
                .push(format!("{} tickets stored for {accepted} entries accepted into the line", self.tickets_stored));
        }
        failures.extend(self.violations.iter().cloned());
        failures.extend(self.stock_violations.iter().cloned());
        failures
    }
}
