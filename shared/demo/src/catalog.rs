//! The demo catalog: a category tree with attribute definitions and 300 active products with variants, typed
//! attributes, images and a few bundles. Deterministic (pure index arithmetic, fixed ids and times), built
//! through the same domain rules the API applies, so sample events and docs can name its ids:
//! categories `cat_electronics`, `cat_laptops`, ...; products `prd_demo-0001` ... `prd_demo-0300`.

use chrono::{DateTime, Duration, TimeZone, Utc};
use commerce_aws::catalog::DynamoCatalog;
use commerce_domain::catalog::{
    AttributeDefinitionInput, AttributeValue, Category, CategoryInput, CategoryTree, ComponentInput, PriceInput,
    Product, ProductInput, VariantInput,
};
use commerce_domain::error::{DomainError, Result};
use std::collections::BTreeMap;

/// How many demo products there are.
pub const PRODUCT_COUNT: usize = 300;
/// The first demo product (a laptop, owned by the first seller).
pub const FIRST_PRODUCT_ID: &str = "prd_demo-0001";
/// A category with no products and no children (safe to delete in a demo).
pub const EMPTY_CATEGORY_ID: &str = "cat_gift-cards";

/// The demo sellers' ids (`seller`, `seller2`: the local stack gives its demo users fixed subs), as the local
/// stack seeds the demo catalog: the first owns `FIRST_PRODUCT_ID`, the second every fourth product.
pub const DEMO_SELLERS: [&str; 2] = ["9401d12a-b391-48d2-acd7-8b81507ee8f0", "c8aad468-ff33-4a63-9074-c888acf9888d"];

/// The id of the `n`th demo product, 1-based.
pub fn product_id(n: usize) -> String {
    format!("prd_demo-{n:04}")
}

fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).single().unwrap_or_default()
}

struct CategorySpec {
    id: &'static str,
    name: &'static str,
    parent: Option<&'static str>,
    attributes: &'static [(&'static str, &'static str, Option<&'static str>, bool, bool)],
}

const CATEGORIES: &[CategorySpec] = &[
    CategorySpec {
        id: "cat_electronics",
        name: "Electronics",
        parent: None,
        attributes: &[("warranty_months", "number", Some("months"), true, false)],
    },
    CategorySpec {
        id: "cat_laptops",
        name: "Laptops",
        parent: Some("cat_electronics"),
        attributes: &[
            ("ram_gb", "number", Some("GB"), true, true),
            ("cpu", "text", None, true, true),
            ("storage_gb", "number", Some("GB"), true, false),
            ("screen_in", "number", Some("in"), true, false),
            ("touchscreen", "boolean", None, true, false),
        ],
    },
    CategorySpec {
        id: "cat_phones",
        name: "Phones",
        parent: Some("cat_electronics"),
        attributes: &[
            ("os", "text", None, true, true),
            ("screen_in", "number", Some("in"), true, false),
            ("five_g", "boolean", None, true, false),
        ],
    },
    CategorySpec {
        id: "cat_headphones",
        name: "Headphones",
        parent: Some("cat_electronics"),
        attributes: &[
            ("wireless", "boolean", None, true, true),
            ("noise_cancelling", "boolean", None, true, false),
            ("battery_hours", "number", Some("h"), false, false),
        ],
    },
    CategorySpec {
        id: "cat_clothing",
        name: "Clothing",
        parent: None,
        attributes: &[("fabric", "text", None, true, false), ("care", "text_list", None, false, false)],
    },
    CategorySpec {
        id: "cat_tshirts",
        name: "T-shirts",
        parent: Some("cat_clothing"),
        attributes: &[("fit", "text", None, true, true), ("sleeve", "text", None, true, false)],
    },
    CategorySpec {
        id: "cat_shoes",
        name: "Shoes",
        parent: Some("cat_clothing"),
        attributes: &[("upper", "text", None, true, false), ("waterproof", "boolean", None, true, false)],
    },
    CategorySpec { id: "cat_home", name: "Home", parent: None, attributes: &[("material", "text", None, true, false)] },
    CategorySpec {
        id: "cat_kitchen",
        name: "Kitchen",
        parent: Some("cat_home"),
        attributes: &[
            ("dishwasher_safe", "boolean", None, true, false),
            ("capacity_l", "number", Some("L"), false, false),
        ],
    },
    CategorySpec {
        id: "cat_furniture",
        name: "Furniture",
        parent: Some("cat_home"),
        attributes: &[
            ("width_cm", "number", Some("cm"), false, false),
            ("depth_cm", "number", Some("cm"), false, false),
            ("height_cm", "number", Some("cm"), false, false),
            ("assembly_required", "boolean", None, true, false),
        ],
    },
    CategorySpec {
        id: "cat_books",
        name: "Books",
        parent: None,
        attributes: &[
            ("author", "text", None, true, true),
            ("pages", "number", None, false, false),
            ("language", "text", None, true, false),
            ("isbn", "text", None, false, false),
        ],
    },
    CategorySpec {
        id: "cat_sports",
        name: "Sports",
        parent: None,
        attributes: &[("sport", "text", None, true, false)],
    },
    CategorySpec {
        id: "cat_fitness",
        name: "Fitness",
        parent: Some("cat_sports"),
        attributes: &[("weight_kg", "number", Some("kg"), true, false)],
    },
    CategorySpec { id: "cat_cycling", name: "Cycling", parent: Some("cat_sports"), attributes: &[] },
    CategorySpec { id: EMPTY_CATEGORY_ID, name: "Gift cards", parent: None, attributes: &[] },
];

/// The leaf categories products are filed under, in the order products cycle through them.
/// One unit's shipping weight per leaf category, in grams.
const WEIGHTS_GRAMS: [u32; 10] = [1_800, 200, 300, 180, 900, 1_200, 15_000, 450, 2_500, 9_000];
/// The tax class per leaf category: books are `reduced` (DE 7 %), everything else `standard`.
const TAX_CLASSES: [&str; 10] = [
    "standard", "standard", "standard", "standard", "standard", "standard", "standard", "reduced", "standard",
    "standard",
];

const LEAVES: [&str; 10] = [
    "cat_laptops",
    "cat_phones",
    "cat_headphones",
    "cat_tshirts",
    "cat_shoes",
    "cat_kitchen",
    "cat_furniture",
    "cat_books",
    "cat_fitness",
    "cat_cycling",
];

/// A deterministic pseudo-random number from an index and a salt.
fn mix(i: usize, salt: usize) -> usize {
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (salt as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 32;
    x as usize
}

fn pick<'a>(list: &[&'a str], i: usize, salt: usize) -> &'a str {
    list[mix(i, salt) % list.len()]
}

fn text(v: &str) -> AttributeValue {
    AttributeValue::Text(v.to_owned())
}

fn num(v: impl Into<serde_json::Number>) -> AttributeValue {
    AttributeValue::Number(v.into())
}

fn decimal(v: f64) -> AttributeValue {
    serde_json::Number::from_f64(v).map_or(AttributeValue::Number(0.into()), AttributeValue::Number)
}

fn flag(v: bool) -> AttributeValue {
    AttributeValue::Boolean(v)
}

fn code(value: &str) -> String {
    value.chars().filter(char::is_ascii_alphanumeric).take(6).collect::<String>().to_ascii_uppercase()
}

/// What a leaf generator produces for one product.
struct Draft {
    title: String,
    brand: String,
    description: String,
    attributes: Vec<(&'static str, AttributeValue)>,
    /// Option sets with prices in cents.
    variants: Vec<(Vec<(&'static str, String)>, i64)>,
}

fn options(pairs: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

fn laptop(k: usize) -> Draft {
    let brand = pick(&["Lumen", "Northwind", "Aster", "Kestrel", "Vantage"], k, 1);
    let model = pick(&["Air 13", "Pro 14", "Studio 16", "Flex 15", "Go 12", "Ultra 14"], k, 2);
    let cpu = pick(&["Ryzen 7 8840U", "Core Ultra 7 155H", "M3", "Core i5-1340P", "Snapdragon X Elite"], k, 3);
    let screen: f64 = match model {
        "Air 13" => 13.3,
        "Pro 14" | "Ultra 14" => 14.0,
        "Studio 16" => 16.0,
        "Flex 15" => 15.6,
        _ => 12.4,
    };
    let configs =
        [("8 GB", "256 GB", 0), ("16 GB", "512 GB", 20000), ("32 GB", "1 TB", 50000), ("64 GB", "2 TB", 90000)];
    let count = 1 + mix(k, 4) % 4;
    let base = 69_900 + (mix(k, 5) % 12) as i64 * 10_000;
    let ram_gb = configs[0].0.trim_end_matches(" GB").parse::<u32>().unwrap_or(8);
    Draft {
        title: format!("{brand} {model} Laptop"),
        brand: brand.to_owned(),
        description: format!(
            "A {screen}-inch laptop with a {cpu} processor, all-day battery and a backlit keyboard. Built for work, study and travel."
        ),
        attributes: vec![
            ("warranty_months", num(12 + 12 * (mix(k, 6) % 3) as u32)),
            ("ram_gb", num(ram_gb)),
            ("cpu", text(cpu)),
            ("storage_gb", num(256)),
            ("screen_in", decimal(screen)),
            ("touchscreen", flag(mix(k, 7).is_multiple_of(3))),
        ],
        variants: configs[..count]
            .iter()
            .map(|(ram, storage, extra)| (options(&[("memory", ram), ("storage", storage)]), base + extra))
            .collect(),
    }
}

fn phone(k: usize) -> Draft {
    let brand = pick(&["Orbit", "Pixelate", "Nova", "Helio"], k, 11);
    let model = pick(&["One", "Mini", "Max", "Lite", "Edge", "Fold"], k, 12);
    let generation = 5 + mix(k, 13) % 6;
    let os = if brand == "Orbit" { "OrbitOS" } else { "Android" };
    let colors = ["Graphite", "Silver", "Blue", "Sage"];
    let storages = [("128 GB", 0i64), ("256 GB", 10_000), ("512 GB", 30_000)];
    let count = 1 + mix(k, 14) % 6;
    let base = 39_900 + (mix(k, 15) % 8) as i64 * 10_000;
    let variants = (0..count)
        .map(|v| {
            let (storage, extra) = storages[v / colors.len() % storages.len()];
            (options(&[("color", colors[v % colors.len()]), ("storage", storage)]), base + extra)
        })
        .collect();
    Draft {
        title: format!("{brand} {generation} {model}"),
        brand: brand.to_owned(),
        description: format!(
            "The {brand} {generation} {model}: a bright OLED display, a dual camera and fast charging."
        ),
        attributes: vec![
            ("warranty_months", num(12)),
            ("os", text(os)),
            ("screen_in", decimal(if model == "Mini" { 5.4 } else { 6.1 + (mix(k, 16) % 6) as f64 / 10.0 })),
            ("five_g", flag(generation > 6)),
        ],
        variants,
    }
}

fn headphones(k: usize) -> Draft {
    let brand = pick(&["Sonique", "Auralis", "Beat Lab", "Quietude"], k, 21);
    let kind = pick(&["Over-Ear Headphones", "Earbuds", "On-Ear Headphones", "Sport Earbuds"], k, 22);
    let series = pick(&["Q", "Studio", "Air", "Pulse", "Nomad"], k, 23);
    let wireless = !mix(k, 24).is_multiple_of(5);
    let anc = wireless && mix(k, 25).is_multiple_of(2);
    let colors = ["Black", "White", "Navy", "Rose"];
    let count = 1 + mix(k, 26) % 4;
    let price = 4_900 + (mix(k, 27) % 25) as i64 * 1_000 + if anc { 10_000 } else { 0 };
    let mut attributes =
        vec![("warranty_months", num(12)), ("wireless", flag(wireless)), ("noise_cancelling", flag(anc))];
    if wireless {
        attributes.push(("battery_hours", num(20 + (mix(k, 28) % 5) as u32 * 5)));
    }
    Draft {
        title: format!("{brand} {series} {kind}"),
        brand: brand.to_owned(),
        description: format!(
            "{} {} with rich, balanced sound{}.",
            if wireless { "Wireless" } else { "Wired" },
            kind.to_lowercase(),
            if anc { " and active noise cancelling" } else { "" }
        ),
        attributes,
        variants: colors[..count].iter().map(|c| (options(&[("color", c)]), price)).collect(),
    }
}

fn tshirt(k: usize) -> Draft {
    let brand = pick(&["Threadline", "Cotton & Co", "Basecamp", "Urban Loom"], k, 31);
    let style = pick(
        &["Essential Crew Tee", "Heavyweight Tee", "Pocket Tee", "V-Neck Tee", "Graphic Tee", "Long Sleeve Tee"],
        k,
        32,
    );
    let fabric = pick(&["cotton", "organic cotton", "cotton blend", "linen blend"], k, 33);
    let fit = pick(&["regular", "slim", "relaxed"], k, 34);
    let colors = ["Blue", "Black", "White", "Olive"];
    let sizes = ["S", "M", "L", "XL"];
    let count = 1 + mix(k, 35) % 6;
    let first_color = mix(k, 36) % colors.len();
    let base = 1_499 + (mix(k, 37) % 8) as i64 * 250;
    let variants = (0..count)
        .map(|v| {
            let color = colors[(first_color + v / sizes.len()) % colors.len()];
            let size = sizes[v % sizes.len()];
            (options(&[("color", color), ("size", size)]), base + if size == "XL" { 200 } else { 0 })
        })
        .collect();
    Draft {
        title: format!("{brand} {style}"),
        brand: brand.to_owned(),
        description: format!("A {fit}-fit tee in soft {fabric}. Pre-shrunk, with taped shoulder seams."),
        attributes: vec![
            ("fabric", text(fabric)),
            ("care", AttributeValue::TextList(vec!["machine wash cold".into(), "tumble dry low".into()])),
            ("fit", text(fit)),
            ("sleeve", text(if style == "Long Sleeve Tee" { "long" } else { "short" })),
        ],
        variants,
    }
}

fn shoe(k: usize) -> Draft {
    let brand = pick(&["Stride", "Trailhead", "Pace", "Cloudfoot"], k, 41);
    let model = pick(&["Runner", "Trail GTX", "Court Classic", "Walker", "Tempo", "Hiker Mid"], k, 42);
    let waterproof = model.contains("GTX") || model.contains("Hiker");
    let upper = pick(&["engineered mesh", "leather", "suede", "knit"], k, 43);
    let sizes = ["US 7", "US 8", "US 9", "US 10", "US 11", "US 12"];
    let count = 1 + mix(k, 44) % 6;
    let price = 6_900 + (mix(k, 45) % 10) as i64 * 1_000;
    Draft {
        title: format!("{brand} {model} Shoe"),
        brand: brand.to_owned(),
        description: format!("{brand}'s {model} with a {upper} upper and a cushioned, grippy sole."),
        attributes: vec![("upper", text(upper)), ("waterproof", flag(waterproof)), ("fabric", text(upper))],
        variants: sizes[..count].iter().map(|s| (options(&[("size", s)]), price)).collect(),
    }
}

fn kitchen(k: usize) -> Draft {
    let brand = pick(&["Copperpot", "Hearth", "Mise", "Ovenly"], k, 51);
    let (item, material, dishwasher, capacity) = match mix(k, 52) % 6 {
        0 => ("Chef's Knife 8\"", "stainless steel", false, None),
        1 => ("Cast Iron Skillet", "cast iron", false, None),
        2 => ("Pour-over Kettle", "stainless steel", false, Some(1.0)),
        3 => ("Ceramic Mixing Bowl Set", "ceramic", true, Some(3.5)),
        4 => ("Bamboo Cutting Board", "bamboo", false, None),
        _ => ("Dutch Oven", "enamelled cast iron", true, Some(5.5)),
    };
    let finishes = ["Natural", "Matte Black", "Cream"];
    let count = 1 + mix(k, 53) % 3;
    let price = 1_999 + (mix(k, 54) % 20) as i64 * 500;
    let mut attributes = vec![("material", text(material)), ("dishwasher_safe", flag(dishwasher))];
    if let Some(litres) = capacity {
        attributes.push(("capacity_l", decimal(litres)));
    }
    Draft {
        title: format!("{brand} {item}"),
        brand: brand.to_owned(),
        description: format!("A {material} {} for everyday cooking, made to last for years.", item.to_lowercase()),
        attributes,
        variants: finishes[..count].iter().map(|f| (options(&[("finish", f)]), price)).collect(),
    }
}

fn furniture(k: usize) -> Draft {
    let brand = pick(&["Oakridge", "Nordhem", "Loft & Co"], k, 61);
    let (item, w, d, h) = match mix(k, 62) % 5 {
        0 => ("Side Table", 45, 45, 55),
        1 => ("Bookshelf", 80, 30, 180),
        2 => ("Desk", 120, 60, 75),
        3 => ("Lounge Chair", 70, 80, 85),
        _ => ("Coffee Table", 110, 60, 42),
    };
    let material = pick(&["oak", "walnut", "ash", "pine"], k, 63);
    let finishes = ["Natural", "Black", "White"];
    let count = 1 + mix(k, 64) % 3;
    let price = 9_900 + (mix(k, 65) % 30) as i64 * 2_000;
    Draft {
        title: format!("{brand} {} {item}", capitalize(material)),
        brand: brand.to_owned(),
        description: format!("A solid {material} {} with clean lines, {w} x {d} x {h} cm.", item.to_lowercase()),
        attributes: vec![
            ("material", text(material)),
            ("width_cm", num(w)),
            ("depth_cm", num(d)),
            ("height_cm", num(h)),
            ("assembly_required", flag(item != "Lounge Chair")),
        ],
        variants: finishes[..count].iter().map(|f| (options(&[("finish", f)]), price)).collect(),
    }
}

fn book(k: usize) -> Draft {
    let publisher = pick(&["Harbor Press", "Lantern Books", "Meridian"], k, 71);
    let first = pick(&["The Quiet", "A Field Guide to", "The Last", "Notes on", "The Long", "Small"], k, 72);
    let second = pick(&["Harbour", "Algorithms", "Summer", "Mountains", "Cities", "Rivers", "Machines"], k, 73);
    let author = format!(
        "{} {}",
        pick(&["Ada", "Tomas", "Priya", "Jun", "Elena", "Kwame"], k, 74),
        pick(&["Lindqvist", "Okafor", "Moreau", "Tanaka", "Rossi", "Haddad"], k, 75)
    );
    let formats = [("Paperback", 1_499i64), ("Hardcover", 2_699), ("E-book", 999)];
    let count = 1 + mix(k, 76) % 3;
    let bump = (mix(k, 77) % 5) as i64 * 100;
    Draft {
        title: format!("{first} {second}"),
        brand: publisher.to_owned(),
        description: format!("{author}'s acclaimed book, now from {publisher}."),
        attributes: vec![
            ("author", text(&author)),
            ("pages", num(180 + (mix(k, 78) % 300) as u32)),
            ("language", text(pick(&["English", "English", "French", "Spanish"], k, 79))),
            ("isbn", text(&format!("978-0-{:04}-{:04}-{}", mix(k, 80) % 10_000, k, k % 10))),
        ],
        variants: formats[..count].iter().map(|(f, p)| (options(&[("format", f)]), p + bump)).collect(),
    }
}

fn fitness(k: usize) -> Draft {
    let brand = pick(&["Ironform", "FlexCore", "Peak"], k, 81);
    let (item, sport, options_list, weights): (&str, &str, &[&str], &[f64]) = match mix(k, 82) % 4 {
        0 => ("Kettlebell", "strength", &["8 kg", "12 kg", "16 kg", "20 kg", "24 kg"], &[8.0, 12.0, 16.0, 20.0, 24.0]),
        1 => ("Yoga Mat", "yoga", &["Purple", "Teal", "Charcoal"], &[1.2]),
        2 => ("Resistance Band Set", "strength", &["Light", "Medium", "Heavy"], &[0.4]),
        _ => ("Adjustable Dumbbell", "strength", &["Single", "Pair"], &[11.0]),
    };
    let count = 1 + mix(k, 83) % options_list.len();
    let price = 2_499 + (mix(k, 84) % 10) as i64 * 700;
    let key = if item == "Kettlebell" {
        "weight"
    } else if item == "Adjustable Dumbbell" {
        "quantity"
    } else {
        "variant"
    };
    Draft {
        title: format!("{brand} {item}"),
        brand: brand.to_owned(),
        description: format!("A durable {} for home and gym workouts.", item.to_lowercase()),
        attributes: vec![("sport", text(sport)), ("weight_kg", decimal(weights[0]))],
        variants: options_list[..count]
            .iter()
            .enumerate()
            .map(|(v, o)| (options(&[(key, o)]), price + v as i64 * 800))
            .collect(),
    }
}

fn cycling(k: usize) -> Draft {
    let brand = pick(&["Velo", "Ridgeline", "Spoke & Chain"], k, 91);
    let (item, opts, key): (&str, &[&str], &str) = match mix(k, 92) % 4 {
        0 => ("Road Helmet", &["S", "M", "L"], "size"),
        1 => ("LED Light Set", &["400 lm", "800 lm"], "output"),
        2 => ("Cycling Jersey", &["S", "M", "L", "XL"], "size"),
        _ => ("Floor Pump", &["Standard"], "model"),
    };
    let count = 1 + mix(k, 93) % opts.len();
    let price = 2_999 + (mix(k, 94) % 12) as i64 * 500;
    Draft {
        title: format!("{brand} {item}"),
        brand: brand.to_owned(),
        description: format!("{brand}'s {} for road and gravel riding.", item.to_lowercase()),
        attributes: vec![("sport", text("cycling"))],
        variants: opts[..count].iter().map(|o| (options(&[(key, o)]), price)).collect(),
    }
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

const SKU_CODES: [&str; 10] = ["LAP", "PHN", "HPH", "TSH", "SHO", "KIT", "FUR", "BOK", "FIT", "CYC"];

/// The demo categories and products, products owned by `sellers` (the first owns three in four).
pub fn catalog(sellers: &[String]) -> Result<(Vec<Category>, Vec<Product>)> {
    if sellers.is_empty() {
        return Err(DomainError::validation("sellers", "at least one seller is required"));
    }
    let mut tree = CategoryTree::default();
    let mut categories = Vec::with_capacity(CATEGORIES.len());
    for (i, spec) in CATEGORIES.iter().enumerate() {
        let input = CategoryInput {
            name: spec.name.to_owned(),
            parent_id: spec.parent.map(str::to_owned),
            attributes: spec
                .attributes
                .iter()
                .map(|(name, kind, unit, facetable, required)| AttributeDefinitionInput {
                    name: (*name).to_owned(),
                    kind: (*kind).to_owned(),
                    unit: unit.map(str::to_owned),
                    facetable: *facetable,
                    required: *required,
                })
                .collect(),
        };
        let category = tree.create(spec.id.to_owned(), input, epoch() + Duration::seconds(i as i64))?;
        categories.push(category);
        tree = CategoryTree::new(categories.clone());
    }

    let mut products: Vec<Product> = Vec::with_capacity(PRODUCT_COUNT);
    for n in 1..=PRODUCT_COUNT {
        let leaf = (n - 1) % LEAVES.len();
        let k = (n - 1) / LEAVES.len();
        let draft = match leaf {
            0 => laptop(k),
            1 => phone(k),
            2 => headphones(k),
            3 => tshirt(k),
            4 => shoe(k),
            5 => kitchen(k),
            6 => furniture(k),
            7 => book(k),
            8 => fitness(k),
            _ => cycling(k),
        };
        let id = product_id(n);
        let mut variants: Vec<VariantInput> = draft
            .variants
            .iter()
            .map(|(opts, cents)| {
                let suffix: Vec<String> = opts.iter().map(|(_, v)| code(v)).collect();
                VariantInput {
                    sku: format!("{}-{n:04}-{}", SKU_CODES[leaf], suffix.join("-")),
                    options: opts.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect(),
                    price: PriceInput { amount: *cents, currency: "USD".into() },
                    components: None,
                    weight_grams: Some(WEIGHTS_GRAMS[leaf]),
                    compare_at_price: None,
                }
            })
            .collect();
        let seller =
            if sellers.len() > 1 && n % 4 == 0 { &sellers[1 + (n / 4) % (sellers.len() - 1)] } else { &sellers[0] };
        let mut title = draft.title;
        if leaf == 5 && k % 10 == 9 {
            // A bundle of the first variants of the two latest kitchen products of the same seller: a bundle
            // consumes only its seller's SKUs.
            let parts: Vec<String> = products
                .iter()
                .rev()
                .filter(|p| {
                    p.category_id == LEAVES[leaf] && p.seller_id == *seller && p.foreign_components().is_empty()
                })
                .take(2)
                .map(|p| p.variants[0].sku.clone())
                .collect();
            title = "Starter Kitchen Bundle".to_owned();
            variants = vec![VariantInput {
                sku: format!("KIT-{n:04}-BUNDLE"),
                options: BTreeMap::new(),
                price: PriceInput { amount: 5_999, currency: "USD".into() },
                components: Some(parts.into_iter().map(|sku| ComponentInput { sku, quantity: 1 }).collect()),
                weight_grams: Some(2 * WEIGHTS_GRAMS[leaf]),
                compare_at_price: None,
            }];
        }
        let images =
            (1..=1 + mix(n, 99) % 3).map(|i| format!("https://images.example.com/demo/{id}/{i}.jpg")).collect();
        let input = ProductInput {
            title,
            description: Some(draft.description),
            category_id: LEAVES[leaf].to_owned(),
            brand: Some(draft.brand),
            attributes: draft.attributes.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            images,
            variants,
            tax_class: Some(TAX_CLASSES[leaf].parse()?),
            status: Some("active".into()),
        };
        let created = epoch() + Duration::hours(1) + Duration::minutes(37 * n as i64);
        products.push(Product::create(id, seller.clone(), input, &tree, created)?);
    }
    Ok((categories, products))
}

/// Writes the demo catalog to the table. Returns the number of products.
pub async fn seed(catalog: &DynamoCatalog, sellers: &[String]) -> Result<usize> {
    let (categories, products) = self::catalog(sellers)?;
    let items = catalog.import(&categories, &products).await?;
    tracing::info!(categories = categories.len(), products = products.len(), items, "demo catalog seeded");
    Ok(products.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn the_demo_catalog_is_valid_deterministic_and_varied() {
        let sellers = vec!["seller-a".to_string(), "seller-b".to_string()];
        let (categories, products) = catalog(&sellers).unwrap();
        let (_, again) = catalog(&sellers).unwrap();
        assert_eq!(products, again);
        assert_eq!(products.len(), PRODUCT_COUNT);
        assert_eq!(products[0].product_id, FIRST_PRODUCT_ID);
        assert_eq!(products[0].seller_id, "seller-a");
        assert!(categories.iter().any(|c| c.category_id == EMPTY_CATEGORY_ID));
        assert!(products.iter().all(|p| p.category_id != EMPTY_CATEGORY_ID && p.is_public()));

        let skus: Vec<&str> = products.iter().flat_map(|p| p.variants.iter().map(|v| v.sku.as_str())).collect();
        assert_eq!(skus.len(), skus.iter().collect::<BTreeSet<_>>().len(), "SKUs are unique across products");
        let counts: BTreeSet<usize> = products.iter().map(|p| p.variants.len()).collect();
        assert!(counts.contains(&1) && counts.contains(&6), "{counts:?}");
        let by_b = products.iter().filter(|p| p.seller_id == "seller-b").count();
        assert!(by_b > 0 && by_b < PRODUCT_COUNT / 2, "{by_b}");
        assert!(products.iter().any(|p| p.variants[0].components.len() == 2), "bundles exist");
        let titles: BTreeSet<&str> = products.iter().map(|p| p.title.as_str()).collect();
        assert!(titles.len() > 150, "titles vary: {}", titles.len());
    }

    #[test]
    fn every_demo_bundle_consumes_skus_of_its_own_seller() {
        let sellers = vec!["seller-a".to_string(), "seller-b".to_string()];
        let (_, products) = catalog(&sellers).unwrap();
        let owner: std::collections::HashMap<&str, &str> = products
            .iter()
            .flat_map(|p| p.variants.iter().map(move |v| (v.sku.as_str(), p.seller_id.as_str())))
            .collect();
        let mut bundles = 0;
        for product in &products {
            for variant in product.variants.iter().filter(|v| v.components.iter().any(|c| c.sku != v.sku)) {
                bundles += 1;
                for component in &variant.components {
                    assert_eq!(
                        owner.get(component.sku.as_str()),
                        Some(&product.seller_id.as_str()),
                        "{} in {} of {}",
                        component.sku,
                        variant.sku,
                        product.seller_id
                    );
                }
            }
        }
        assert_eq!(bundles, 3);
    }
}
