//! Search engines behind [`commerce_app::ports::SearchIndex`] and [`commerce_app::ports::ProductSearch`]: OpenSearch in
//! AWS (SigV4-signed HTTPS), an embedded tantivy index locally and in tests. [`SearchEngine::from_env`] picks
//! one from `SEARCH_ENDPOINT`: `embedded:<dir>` opens the embedded index at `<dir>`, anything else is an
//! OpenSearch endpoint (`https://host` or a bare host name, as `!GetAtt Domain.DomainEndpoint` gives it).

pub mod analysis;
mod collector;
pub mod embedded;
pub mod opensearch;

use commerce_app::ports::{ProductSearch, SearchIndex};
use commerce_domain::error::Result;
use commerce_domain::search::{IndexChange, SearchQuery, SearchResults, StockUpdate, SuggestQuery, Suggestions};
pub use embedded::EmbeddedSearch;
pub use opensearch::OpenSearch;

/// Env var naming the engine endpoint.
pub const ENDPOINT_ENV: &str = "SEARCH_ENDPOINT";
/// Env var naming the alias (the index name readers use); default [`DEFAULT_ALIAS`].
pub const ALIAS_ENV: &str = "SEARCH_INDEX";
/// The default alias.
pub const DEFAULT_ALIAS: &str = "products";

/// The engine a function was configured with.
#[derive(Clone)]
pub enum SearchEngine {
    Embedded(EmbeddedSearch),
    OpenSearch(OpenSearch),
}

impl SearchEngine {
    /// Opens the engine for `endpoint` serving `alias`.
    pub async fn connect(endpoint: &str, alias: &str, aws: &aws_config::SdkConfig) -> Result<Self> {
        match endpoint.strip_prefix("embedded:") {
            Some(dir) => Ok(Self::Embedded(EmbeddedSearch::open(dir, alias)?)),
            None => Ok(Self::OpenSearch(OpenSearch::new(endpoint, alias, aws)?)),
        }
    }

    /// Reads `SEARCH_ENDPOINT` and `SEARCH_INDEX` and opens the engine.
    pub async fn from_env(
        aws: &aws_config::SdkConfig,
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let endpoint = crate::config::required(ENDPOINT_ENV)?;
        let alias = std::env::var(ALIAS_ENV).ok().filter(|a| !a.is_empty()).unwrap_or_else(|| DEFAULT_ALIAS.to_owned());
        Ok(Self::connect(&endpoint, &alias, aws).await?)
    }
}

impl SearchIndex for SearchEngine {
    async fn apply_changes(&self, changes: &[IndexChange]) -> Result<usize> {
        match self {
            Self::Embedded(e) => e.apply_changes(changes).await,
            Self::OpenSearch(o) => o.apply_changes(changes).await,
        }
    }

    async fn set_stock_status(&self, updates: &[StockUpdate]) -> Result<usize> {
        match self {
            Self::Embedded(e) => e.set_stock_status(updates).await,
            Self::OpenSearch(o) => o.set_stock_status(updates).await,
        }
    }
}

impl commerce_app::ports::RatingIndex for SearchEngine {
    async fn set_ratings(&self, updates: &[commerce_domain::search::RatingUpdate]) -> Result<usize> {
        match self {
            Self::Embedded(e) => e.set_ratings(updates).await,
            Self::OpenSearch(o) => o.set_ratings(updates).await,
        }
    }
}

impl ProductSearch for SearchEngine {
    async fn search(&self, query: &SearchQuery) -> Result<SearchResults> {
        match self {
            Self::Embedded(e) => e.search(query).await,
            Self::OpenSearch(o) => o.search(query).await,
        }
    }

    async fn suggest(&self, query: &SuggestQuery) -> Result<Suggestions> {
        match self {
            Self::Embedded(e) => e.suggest(query).await,
            Self::OpenSearch(o) => o.suggest(query).await,
        }
    }
}
