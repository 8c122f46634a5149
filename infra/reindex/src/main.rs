//! `reindex`: rebuilds the search index from the catalog table and swaps the alias, with a progress bar
//! and a rate limit. Safe while the catalog keeps changing (see the library docs).
//!
//! Locally: `cargo run -p reindex -- --table commerce-local-CatalogTable --endpoint embedded:.local/state/search`
//! with AWS_ENDPOINT_URL pointing at the local stack.

use clap::Parser;
use commerce_aws::search::SearchEngine;
use indicatif::{ProgressBar, ProgressStyle};
use reindex::{DynamoSource, Pace, Progress};

#[derive(Parser)]
#[command(about = "Rebuild the product search index from the catalog table, then swap the alias")]
struct Args {
    /// The catalog table.
    #[arg(long, env = "CATALOG_TABLE")]
    table: String,
    /// `embedded:<dir>` or the OpenSearch endpoint.
    #[arg(long, env = "SEARCH_ENDPOINT")]
    endpoint: String,
    /// The alias readers use.
    #[arg(long, env = "SEARCH_INDEX", default_value = "products")]
    alias: String,
    /// Most catalog items read per second.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// Items per scan page and per index batch.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(i32).range(1..=10_000))]
    batch: i32,
}

struct Bar(ProgressBar);

impl Progress for Bar {
    fn start(&self, estimate: Option<u64>) {
        if let Some(total) = estimate {
            self.0.set_length(total);
        }
    }
    fn advance(&self, products: u64) {
        self.0.inc(products);
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter("warn").init();
    let args = Args::parse();
    let aws = commerce_lambda::config::aws().await;
    let engine = SearchEngine::connect(&args.endpoint, &args.alias, &aws).await?;
    let source = DynamoSource { client: aws_sdk_dynamodb::Client::new(&aws), table: args.table };
    let bar = ProgressBar::new(0).with_style(ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} products ({per_sec})",
    )?);
    let report =
        reindex::rebuild(&source, &engine, Pace { batch: args.batch, items_per_second: args.rate }, &Bar(bar.clone()))
            .await;
    bar.finish();
    let report = report?;
    println!(
        "rebuilt {} with {} products ({} searchable); alias {} now points to it",
        report.index, report.products, report.searchable, args.alias
    );
    Ok(())
}
