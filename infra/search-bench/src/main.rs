//! Search benchmark for the embedded engine: generates products, bulk-indexes them, measures query latency
//! percentiles for five query shapes, and the lag from an indexer write to a separate reader seeing it.
//!
//! `cargo run --profile bench-release -p search-bench -- --products 100000`

use clap::Parser;
use commerce_app::ports::{ProductSearch, SearchIndex};
use commerce_aws::search::EmbeddedSearch;
use commerce_domain::money::{Currency, Money};
use commerce_domain::search::{CategoryRef, IndexChange, SearchDocument, SearchQuery, SuggestQuery};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Benchmark the embedded search engine")]
struct Args {
    /// Products to generate.
    #[arg(long, default_value_t = 100_000)]
    products: usize,
    /// Queries per shape.
    #[arg(long, default_value_t = 300)]
    queries: usize,
    /// Documents per bulk batch (one writer, one commit per batch).
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// Lag samples.
    #[arg(long, default_value_t = 30)]
    lag_samples: usize,
}

const BRANDS: [&str; 40] = [
    "Acme",
    "Northwind",
    "Globex",
    "Initech",
    "Umbrella",
    "Soylent",
    "Hooli",
    "Vandelay",
    "Stark",
    "Wayne",
    "Cyberdyne",
    "Tyrell",
    "Wonka",
    "Gringotts",
    "Oscorp",
    "Aperture",
    "BlackMesa",
    "Massive",
    "Pied",
    "Dunder",
    "Kirin",
    "Orbit",
    "Lumen",
    "Sonique",
    "Auralis",
    "Quietude",
    "Basics",
    "Trailhead",
    "Summit",
    "Harbor",
    "Maple",
    "Cedar",
    "Granite",
    "Zephyr",
    "Nimbus",
    "Vertex",
    "Pulse",
    "Nomad",
    "Atlas",
    "Ember",
];
const ADJECTIVES: [&str; 30] = [
    "waterproof",
    "lightweight",
    "wireless",
    "organic",
    "classic",
    "premium",
    "compact",
    "portable",
    "ergonomic",
    "vintage",
    "modern",
    "rugged",
    "slim",
    "insulated",
    "breathable",
    "smart",
    "foldable",
    "heavy",
    "soft",
    "durable",
    "quiet",
    "fast",
    "ultra",
    "eco",
    "deluxe",
    "mini",
    "pro",
    "sport",
    "travel",
    "outdoor",
];
const NOUNS: [(&str, usize); 20] = [
    ("jacket", 0),
    ("hoodie", 0),
    ("sneakers", 1),
    ("boots", 1),
    ("laptop", 2),
    ("tablet", 2),
    ("headphones", 3),
    ("speaker", 3),
    ("phone", 4),
    ("charger", 4),
    ("kettle", 5),
    ("blender", 5),
    ("sofa", 6),
    ("lamp", 6),
    ("novel", 7),
    ("cookbook", 7),
    ("dumbbells", 8),
    ("yoga mat", 8),
    ("helmet", 9),
    ("bicycle", 9),
];
const LEAVES: [(&str, &str, &str, &str); 10] = [
    ("cat_clothing", "Clothing", "cat_outerwear", "Outerwear"),
    ("cat_clothing", "Clothing", "cat_footwear", "Footwear"),
    ("cat_electronics", "Electronics", "cat_computers", "Computers"),
    ("cat_electronics", "Electronics", "cat_audio", "Audio"),
    ("cat_electronics", "Electronics", "cat_phones", "Phones"),
    ("cat_home", "Home", "cat_kitchen", "Kitchen"),
    ("cat_home", "Home", "cat_furniture", "Furniture"),
    ("cat_books", "Books", "cat_fiction", "Fiction"),
    ("cat_sports", "Sports", "cat_fitness", "Fitness"),
    ("cat_sports", "Sports", "cat_cycling", "Cycling"),
];
const COLORS: [&str; 8] = ["black", "white", "blue", "red", "green", "grey", "navy", "olive"];
const SIZES: [&str; 6] = ["XS", "S", "M", "L", "XL", "XXL"];

fn mix(i: usize, salt: usize) -> usize {
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (salt as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 32;
    x as usize
}

fn product(i: usize, version: u64) -> SearchDocument {
    let (noun, leaf) = NOUNS[mix(i, 1) % NOUNS.len()];
    let (root_id, root_name, leaf_id, leaf_name) = LEAVES[leaf];
    let brand = BRANDS[mix(i, 2) % BRANDS.len()];
    let adjective = ADJECTIVES[mix(i, 3) % ADJECTIVES.len()];
    let second = ADJECTIVES[mix(i, 4) % ADJECTIVES.len()];
    let title = format!("{brand} {adjective} {second} {noun} {}", 100 + mix(i, 5) % 900);
    let price = 500 + (mix(i, 6) % 2_000) as i64 * 100;
    let created = chrono::DateTime::from_timestamp(1_700_000_000 + i as i64 * 60, 0).unwrap_or_default();
    let attributes = BTreeMap::from([
        (
            "color".to_owned(),
            vec![COLORS[mix(i, 7) % COLORS.len()].to_owned(), COLORS[mix(i, 8) % COLORS.len()].to_owned()],
        ),
        ("size".to_owned(), SIZES.iter().take(1 + mix(i, 9) % SIZES.len()).map(|s| (*s).to_owned()).collect()),
    ]);
    SearchDocument {
        product_id: format!("prd_bench{i:07}"),
        version,
        seller_id: format!("usr_{}", mix(i, 10) % 500),
        title,
        description: format!("A {adjective} {noun} by {brand}, built to last. Great for everyday use and gifts."),
        brand: brand.to_owned(),
        categories: vec![
            CategoryRef { id: root_id.into(), name: root_name.into() },
            CategoryRef { id: leaf_id.into(), name: leaf_name.into() },
        ],
        attributes,
        other_attribute_text: Vec::new(),
        price: Money::new(price, Currency::USD),
        price_max: price + 1_000,
        skus: vec![format!("SKU-{i}-A"), format!("SKU-{i}-B")],
        image: None,
        rating: (mix(i, 11) % 51) as f64 / 10.0,
        review_count: (mix(i, 12) % 500) as u32,
        created_at: created,
        updated_at: created,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name:<28} p50 {:>7.2} ms   p95 {:>7.2} ms   p99 {:>7.2} ms   (n={})",
        percentile(&samples, 50.0),
        percentile(&samples, 95.0),
        percentile(&samples, 99.0),
        samples.len()
    );
}

async fn time_queries(engine: &EmbeddedSearch, queries: &[SearchQuery]) -> anyhow::Result<Vec<Duration>> {
    let mut samples = Vec::with_capacity(queries.len());
    for query in queries {
        let start = Instant::now();
        let results = engine.search(query).await?;
        samples.push(start.elapsed());
        std::hint::black_box(results);
    }
    Ok(samples)
}

fn params(pairs: &[(&str, String)]) -> anyhow::Result<SearchQuery> {
    Ok(SearchQuery::from_params(pairs.iter().map(|(k, v)| (*k, v.as_str())))?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let engine = EmbeddedSearch::open(dir.path(), "products")?;
    println!("search benchmark: embedded engine, {} products, {} queries per shape", args.products, args.queries);

    let docs: Vec<IndexChange> = (0..args.products).map(|i| IndexChange::Upsert(product(i, 1))).collect();
    let start = Instant::now();
    for chunk in docs.chunks(args.batch) {
        engine.apply_bulk(chunk)?;
    }
    let elapsed = start.elapsed();
    println!(
        "bulk indexing                {:.0} docs/s ({} docs in {:.2} s, batches of {})",
        args.products as f64 / elapsed.as_secs_f64(),
        args.products,
        elapsed.as_secs_f64(),
        args.batch
    );
    println!("searchable products          {}", engine.visible_count()?);

    let n = args.queries;
    let one_word: Vec<SearchQuery> =
        (0..n).map(|i| SearchQuery::text(NOUNS[i % NOUNS.len()].0.split(' ').next().unwrap_or("lamp"))).collect();
    let three_words: Vec<SearchQuery> = (0..n)
        .map(|i| {
            SearchQuery::text(format!(
                "{} {} {}",
                BRANDS[mix(i, 20) % BRANDS.len()],
                ADJECTIVES[mix(i, 21) % ADJECTIVES.len()],
                NOUNS[mix(i, 22) % NOUNS.len()].0.split(' ').next().unwrap_or("lamp")
            ))
        })
        .collect();
    let typo: Vec<SearchQuery> = (0..n)
        .map(|i| {
            let word = NOUNS[i % NOUNS.len()].0.split(' ').next().unwrap_or("lamp");
            let mut chars: Vec<char> = word.chars().collect();
            let at = 1 + mix(i, 23) % (chars.len() - 2);
            chars.swap(at, at + 1);
            SearchQuery::text(chars.into_iter().collect::<String>())
        })
        .collect();
    let faceted: Vec<SearchQuery> = (0..n)
        .map(|i| {
            params(&[
                ("q", NOUNS[i % NOUNS.len()].0.split(' ').next().unwrap_or("lamp").to_owned()),
                ("brand", format!("{},{}", BRANDS[mix(i, 24) % BRANDS.len()], BRANDS[mix(i, 25) % BRANDS.len()])),
                ("price_min", "2000".to_owned()),
                ("price_max", "150000".to_owned()),
                ("attr.color", COLORS[mix(i, 26) % COLORS.len()].to_owned()),
                ("in_stock", "true".to_owned()),
            ])
        })
        .collect::<anyhow::Result<_>>()?;
    let browse: Vec<SearchQuery> = (0..n)
        .map(|i| params(&[("category", LEAVES[i % LEAVES.len()].2.to_owned()), ("sort", "price_asc".to_owned())]))
        .collect::<anyhow::Result<_>>()?;

    // Warm the reader (first query opens the segments).
    engine.search(&SearchQuery::text("warmup")).await?;
    report("one word", time_queries(&engine, &one_word).await?);
    report("three words", time_queries(&engine, &three_words).await?);
    report("typo", time_queries(&engine, &typo).await?);
    report("filtered facet query", time_queries(&engine, &faceted).await?);
    report("browse category, by price", time_queries(&engine, &browse).await?);
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let word = NOUNS[i % NOUNS.len()].0;
        let prefix: String = word.chars().take(3 + i % 3).collect();
        let start = Instant::now();
        let found = engine.suggest(&SuggestQuery { prefix, limit: 10 }).await?;
        samples.push(start.elapsed());
        std::hint::black_box(found);
    }
    report("suggest", samples);

    // Lag: the indexer process's write + commit until a separate reader (its own handle on the same files,
    // as a search function process has) finds the product.
    let reader = EmbeddedSearch::open(dir.path(), "products")?;
    reader.search(&SearchQuery::text("warmup")).await?;
    let mut lags = Vec::with_capacity(args.lag_samples);
    for k in 0..args.lag_samples {
        let mut doc = product(args.products + k, 1);
        doc.title = format!("Freshness probe zq{k}x");
        let probe_id = doc.product_id.clone();
        let start = Instant::now();
        engine.apply_changes(&[IndexChange::Upsert(doc)]).await?;
        loop {
            let found = reader.search(&SearchQuery::text(format!("zq{k}x"))).await?;
            if found.hits.iter().any(|h| h.product_id == probe_id) {
                break;
            }
            if start.elapsed() > Duration::from_secs(30) {
                anyhow::bail!("probe {k} not searchable after 30 s");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        lags.push(start.elapsed());
    }
    report("write-to-searchable lag", lags);
    Ok(())
}
