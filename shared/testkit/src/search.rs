//! Support for search tests: the demo catalog indexed in a temporary embedded index.

use crate::http::DEMO_SELLERS;
use commerce_aws::search::EmbeddedSearch;
use commerce_domain::search::{change_for_product, IndexChange};

/// The demo catalog's index changes (300 active products).
pub fn demo_changes() -> Vec<IndexChange> {
    let sellers: Vec<String> = DEMO_SELLERS.iter().map(|s| (*s).to_owned()).collect();
    let (categories, products) = match commerce_demo::catalog::catalog(&sellers) {
        Ok(catalog) => catalog,
        Err(err) => panic!("the demo catalog is invalid: {err}"),
    };
    products.iter().map(|p| change_for_product(p, &categories)).collect()
}

/// A temporary embedded index holding the demo catalog. Keep the directory alive while using the engine.
pub fn demo_index() -> (tempfile::TempDir, EmbeddedSearch) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let engine = EmbeddedSearch::open(dir.path(), "products").unwrap_or_else(|e| panic!("open: {e}"));
    if let Err(err) = engine.apply_bulk(&demo_changes()) {
        panic!("indexing the demo catalog failed: {err}");
    }
    (dir, engine)
}
