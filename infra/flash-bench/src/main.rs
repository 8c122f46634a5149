//! `make bench` (flash sales): distinct signed-in shoppers race for a few units through the running local
//! stack, once per shard count, and the run fails if any invariant breaks. Numbers are printed, not asserted
//! against targets: locally the emulator (one lock around DynamoDB) bounds throughput and latency.

use anyhow::{bail, Result};
use clap::Parser;
use flash_bench::{run_with, Buyers, Race, Stack};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(about = "Flash-sale race through the local HTTP API")]
struct Args {
    #[arg(long, default_value_t = 10_000)]
    buyers: usize,
    #[arg(long, default_value_t = 1_000)]
    units: u32,
    /// Shard counts to compare, in one run.
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    shards: Vec<u32>,
    #[arg(long, default_value_t = 200)]
    concurrency: usize,
    /// First shopper number. Every shard count races with the same signed-in shoppers (one sale each).
    #[arg(long, default_value_t = 100_000)]
    first_shopper: usize,
    #[arg(long, default_value = ".local/state")]
    state_dir: PathBuf,
    #[arg(long, default_value = "target/debug/local-stack")]
    local_stack: PathBuf,
    /// The demo product whose first variant is sold.
    #[arg(long, default_value = "prd_demo-0001")]
    product: String,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let stack = Stack::from_state_dir(args.local_stack.clone(), args.state_dir.clone())?;
    let mut failed = false;
    println!("flash sale: {} buyers for {} units, shard counts {:?}", args.buyers, args.units, args.shards);
    println!(
        "{:>6} {:>6} {:>8} {:>8} {:>8} {:>8} {:>9} {:>10} {:>10} {:>10} {:>9} {:>9} {:>8}",
        "shards",
        "won",
        "soldout",
        "at_door",
        "p50_ms",
        "p99_ms",
        "adm/s",
        "wcu/sale",
        "wcu/rej",
        "cond_fail",
        "fallback",
        "rebalance",
        "late"
    );
    flash_bench::wait_for_seed_indexed(&stack).await?;
    let buyers = Buyers::sign_in(&stack, args.first_shopper, args.buyers).await?;
    println!("{} shoppers signed in in {:.1} s", args.buyers, buyers.mint_s);
    for shards in &args.shards {
        let race = Race {
            buyers: args.buyers,
            units: args.units,
            shards: *shards,
            first_shopper: args.first_shopper,
            concurrency: args.concurrency,
            product_id: args.product.clone(),
        };
        let report = run_with(&stack, &race, &buyers).await?;
        println!(
            "{:>6} {:>6} {:>8} {:>8} {:>8} {:>8} {:>9.1} {:>10.2} {:>10.2} {:>10} {:>9} {:>9} {:>8}",
            report.shards,
            report.won,
            report.sold_out,
            report.rejected_at_door,
            report.p50_ms,
            report.p99_ms,
            report.admissions_per_s,
            report.write_units_per_sale,
            report.write_units_per_rejection,
            report.worker.condition_failures,
            report.worker.fallbacks,
            report.worker.rebalances,
            report.late_entry_status,
        );
        println!(
            "        race {:.1} s, last win seen at {:.1} s; worker write units {} read units {}; entry write units {}; throttled retries {}; oversold {} stranded {}",
            report.race_s,
            report.last_win_s,
            report.worker.write_units,
            report.worker.read_units,
            report.entry_write_units,
            report.throttled_retries,
            report.oversold,
            report.stranded
        );
        for failure in report.failures() {
            failed = true;
            println!("        FAILED: {failure}");
        }
    }
    println!("The emulator serializes every DynamoDB request (about 300-400/s): latency and admissions/s measure it,");
    println!("not the design. Write units, condition failures and fallbacks are the design's (AWS's counting rules).");
    if failed {
        bail!("invariants failed");
    }
    Ok(())
}
