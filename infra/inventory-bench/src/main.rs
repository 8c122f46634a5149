//! `make bench` (inventory): reservations per second, latency and write units per reservation.
//!
//! - `adapter`: the reservation service and the DynamoDB adapter alone, against a private emulator
//!   (`LOCAL_AWS_ENDPOINT`, e.g. through `infra/with-moto.sh`), on a small table and on a table holding the demo
//!   stock, which shows what the emulator bounds (it copies a whole table for every transaction).
//! - `http`: the same race through the running local stack's HTTP API (`make dev`), as an admin.
//!
//! Write units are computed from item sizes with AWS's rules (2 per KB per item in a transaction), not read
//! from the emulator. Numbers are printed, never asserted; the run fails only if the stock is oversold.

use anyhow::{bail, Context as _, Result};
use clap::{Parser, Subcommand};
use commerce_app::ports::{StockWriter, WarehouseWriter};
use commerce_app::services::inventory as service;
use commerce_aws::inventory::{transactional_write_units, DynamoInventory};
use commerce_demo::inventory as demo;
use commerce_domain::error::DomainError;
use commerce_domain::inventory::{
    check_invariant, OwnerKind, Reservation, ReservationLine, ReservationPolicy, ReservationRequest, SetStock,
};
use commerce_testkit::http::demo_store;
use futures::stream::{self, StreamExt};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "Reservation benchmark")]
struct Args {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// The service and adapter against a private emulator (LOCAL_AWS_ENDPOINT).
    Adapter {
        #[arg(long, default_value_t = 400)]
        reservations: usize,
        #[arg(long, default_value_t = 300)]
        units: i64,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
    /// Through the running local stack's HTTP API.
    Http {
        #[arg(long, default_value_t = 400)]
        reservations: usize,
        #[arg(long, default_value_t = 300)]
        units: i64,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        #[arg(long, default_value = ".local/state")]
        state_dir: PathBuf,
        #[arg(long, default_value = "target/debug/local-stack")]
        local_stack: PathBuf,
    },
}

const SKU: &str = "LAP-0001-16GB-512GB";

/// One run's outcome.
struct Outcome {
    won: usize,
    rejected: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Outcome {
    fn print(&self, label: &str, wcu_success: usize, wcu_cancelled: usize) {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let pct = |p: f64| sorted.get(((sorted.len() as f64 - 1.0) * p) as usize).map_or(0, |d| d.as_millis());
        let total = self.won + self.rejected + self.errors;
        println!(
            "{label:<34} {total:>6} {:>6} {:>6} {:>6} {:>9.1} {:>7} {:>7} {:>9} {:>14}",
            self.won,
            self.rejected,
            self.errors,
            total as f64 / self.elapsed.as_secs_f64(),
            pct(0.5),
            pct(0.99),
            wcu_success,
            format!("0 / {wcu_cancelled}"),
        );
    }
}

fn header() {
    println!(
        "{:<34} {:>6} {:>6} {:>6} {:>6} {:>9} {:>7} {:>7} {:>9} {:>14}",
        "run", "total", "won", "409", "error", "resv/s", "p50_ms", "p99_ms", "wcu/won", "wcu/rejection"
    );
}

fn request(id: String) -> ReservationRequest {
    ReservationRequest {
        reservation_id: id,
        lines: vec![ReservationLine { sku: SKU.into(), quantity: 1 }],
        ship_to: None,
        owner: OwnerKind::Guest,
        ttl_seconds: None,
    }
}

async fn adapter(reservations: usize, units: i64, concurrency: usize) -> Result<()> {
    let endpoint = std::env::var("LOCAL_AWS_ENDPOINT")
        .context("LOCAL_AWS_ENDPOINT is not set (run through infra/with-moto.sh)")?;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "test"))
        .load()
        .await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    println!("adapter path: {reservations} reservations of 1 unit for {units} units, {concurrency} at a time");
    header();
    for demo_stock in [false, true] {
        let table = create_table(&client).await?;
        let inventory = Arc::new(DynamoInventory::new(client.clone(), table));
        if demo_stock {
            let sellers = vec!["s1".to_string(), "s2".to_string()];
            let (_, products) = commerce_demo::catalog::catalog(&sellers)?;
            demo::seed(&inventory, &products).await?;
        } else {
            for warehouse in demo::warehouses() {
                inventory.create_warehouse(&warehouse).await?;
            }
        }
        inventory.set_stock(SKU, demo::EAST, &SetStock { on_hand: units, safety_stock: None }).await?;
        inventory.set_stock(SKU, demo::WEST, &SetStock { on_hand: 0, safety_stock: None }).await?;
        let catalog = Arc::new(demo_store());
        let run = ulid::Ulid::new().to_string();
        let started = Instant::now();
        let results: Vec<(Duration, Result<Reservation, DomainError>)> = stream::iter(0..reservations)
            .map(|i| {
                let (inventory, catalog, id) = (inventory.clone(), catalog.clone(), format!("bench-{run}-{i}"));
                async move {
                    let t = Instant::now();
                    let r = service::reserve(
                        &*catalog,
                        &*inventory,
                        &ReservationPolicy::default(),
                        request(id),
                        chrono::Utc::now(),
                    )
                    .await;
                    (t.elapsed(), r)
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        let elapsed = started.elapsed();
        let mut outcome = Outcome { won: 0, rejected: 0, errors: 0, elapsed, latencies: Vec::new() };
        let mut sample = None;
        for (latency, result) in results {
            outcome.latencies.push(latency);
            match result {
                Ok(r) => {
                    outcome.won += 1;
                    sample.get_or_insert(r);
                }
                Err(DomainError::OutOfStock { .. }) => outcome.rejected += 1,
                Err(err) => {
                    outcome.errors += 1;
                    eprintln!("error: {err}");
                }
            }
        }
        let stock_bytes = inventory.stock_item_bytes(SKU, demo::EAST).await?;
        let wcu = match &sample {
            Some(r) => inventory.reservation_write_units(r, stock_bytes)?,
            None => 0,
        };
        let label = if demo_stock { "adapter, table with demo stock" } else { "adapter, small table" };
        outcome.print(label, wcu, wcu);
        let (stock, reservations) = inventory.snapshot().await?;
        let violations = check_invariant(&stock, &reservations);
        if !violations.is_empty() || outcome.won as i64 > units {
            bail!("oversold or invariant broken: won {} of {units}: {violations:?}", outcome.won);
        }
        println!(
            "  stock item {stock_bytes} B -> {} WCU per transactional write; table items {}",
            transactional_write_units(stock_bytes),
            stock.len() + reservations.len()
        );
    }
    println!("rejections: a sold-out SKU is refused at planning (reads only: 0 WCU); a rejection that lost a race");
    println!("is a cancelled transaction, charged like the reservation it tried (second figure).");
    Ok(())
}

async fn create_table(client: &aws_sdk_dynamodb::Client) -> Result<String> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
        ScalarAttributeType,
    };
    let attr =
        |name: &str| AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build();
    let key = |hash: &str, range: &str| -> Result<Vec<KeySchemaElement>> {
        Ok(vec![
            KeySchemaElement::builder().attribute_name(hash).key_type(KeyType::Hash).build()?,
            KeySchemaElement::builder().attribute_name(range).key_type(KeyType::Range).build()?,
        ])
    };
    let name = format!("inventory-bench-{}", ulid::Ulid::new().to_string().to_lowercase());
    client
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(vec![attr("pk")?, attr("sk")?, attr("gsi1pk")?, attr("gsi1sk")?]))
        .set_key_schema(Some(key("pk", "sk")?))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("gsi1")
                .set_key_schema(Some(key("gsi1pk", "gsi1sk")?))
                .projection(Projection::builder().projection_type(ProjectionType::KeysOnly).build())
                .build()?,
        )
        .send()
        .await?;
    Ok(name)
}

async fn http(
    reservations: usize,
    units: i64,
    concurrency: usize,
    state_dir: PathBuf,
    local_stack: PathBuf,
) -> Result<()> {
    let info: Value = serde_json::from_str(
        &std::fs::read_to_string(state_dir.join("stack.json")).context("no running local stack (make dev)")?,
    )?;
    let api = info["api_url"].as_str().context("stack.json has no api_url")?.to_owned();
    let token = |user: &str| -> Result<String> {
        let out = std::process::Command::new(&local_stack)
            .args(["token", "--user", user, "--state-dir"])
            .arg(&state_dir)
            .output()?;
        if !out.status.success() {
            bail!("local-stack token --user {user}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(format!("Bearer {}", String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().trim()))
    };
    let (admin, seller) = (token("admin")?, token("seller")?);
    let http = reqwest::Client::builder().no_proxy().build()?;
    for (wh, on_hand) in [(demo::EAST, units), (demo::WEST, 0)] {
        let status = http
            .put(format!("{api}/v1/seller/inventory/{SKU}/{wh}"))
            .header("authorization", &seller)
            .json(&json!({"on_hand": on_hand}))
            .send()
            .await?
            .status();
        if !status.is_success() {
            bail!("setting stock: {status}");
        }
    }
    println!("HTTP path ({api}): {reservations} reservations of 1 unit for {units} units, {concurrency} at a time");
    header();
    let run = ulid::Ulid::new().to_string();
    let started = Instant::now();
    let results: Vec<(Duration, u16, Value)> = stream::iter(0..reservations)
        .map(|i| {
            let (http, admin, api, id) = (http.clone(), admin.clone(), api.clone(), format!("bench-{run}-{i}"));
            async move {
                let t = Instant::now();
                let body = json!({"reservation_id": id, "owner": "guest", "lines": [{"sku": SKU, "quantity": 1}]});
                match http
                    .post(format!("{api}/v1/admin/reservations"))
                    .header("authorization", admin)
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        (t.elapsed(), status, response.json().await.unwrap_or(Value::Null))
                    }
                    Err(_) => (t.elapsed(), 0, Value::Null),
                }
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let mut outcome = Outcome { won: 0, rejected: 0, errors: 0, elapsed, latencies: Vec::new() };
    let mut won_ids = Vec::new();
    for (latency, status, body) in results {
        outcome.latencies.push(latency);
        match status {
            201 => {
                outcome.won += 1;
                won_ids.extend(body["reservation_id"].as_str().map(str::to_owned));
            }
            409 => outcome.rejected += 1,
            _ => outcome.errors += 1,
        }
    }
    // One reservation of one item: a record of a few hundred bytes and one stock item, each under 1 KB.
    outcome.print("http, local stack", 4, 4);
    if outcome.won as i64 > units {
        bail!("oversold: {} reservations for {units} units", outcome.won);
    }
    stream::iter(won_ids)
        .for_each_concurrent(concurrency, |id| {
            let (http, admin, api) = (http.clone(), admin.clone(), api.clone());
            async move {
                let _ = http
                    .post(format!("{api}/v1/admin/reservations/{id}/release"))
                    .header("authorization", admin)
                    .send()
                    .await;
            }
        })
        .await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    match Args::parse().mode {
        Mode::Adapter { reservations, units, concurrency } => adapter(reservations, units, concurrency).await,
        Mode::Http { reservations, units, concurrency, state_dir, local_stack } => {
            http(reservations, units, concurrency, state_dir, local_stack).await
        }
    }
}
