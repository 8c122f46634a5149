//! The embedded search engine (tantivy), used by the local stack and the tests in place of OpenSearch.
//!
//! Layout under the root directory (`SEARCH_ENDPOINT=embedded:<root>`):
//! - `<alias>.current`: a pointer file naming the live index directory (the "alias"), swapped by rename;
//! - `<alias>.next`: present while a rebuild runs; writers then apply every change to both indexes, so a
//!   change made during the rebuild is never lost across the swap;
//! - `<index-name>/`: one tantivy index per directory.
//!
//! Functions run as separate processes: the indexer writes (tantivy allows one writer per index, taken per
//! batch, committed, released; others wait for the lock), search processes read. A reader notices a new
//! commit or a swapped pointer with two small file checks per query and reloads only then.
//!
//! Each product id has one document holding an [`IndexedProduct`] (catalog part + stock part, each with its
//! own version), so merges are decided by the pure domain rules, and a tombstone remembers the version that
//! hid a product.

use super::analysis::{self, TEXT_ANALYZER, WORDS_ANALYZER};
use super::collector::{FacetCollector, Filters, SortKey};
use commerce_domain::error::{DomainError, Result};
use commerce_domain::search::{
    self, fuzziness, IndexChange, IndexedProduct, RatingUpdate, SearchCursor, SearchQuery, SearchResults, SearchSort,
    StockUpdate, SuggestQuery, Suggestion, Suggestions,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tantivy::collector::TopDocs;
use tantivy::directory::error::LockError;
use tantivy::query::{AllQuery, BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions, Value, FAST, INDEXED, STORED,
    STRING,
};
use tantivy::{
    DocAddress, Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, TantivyError, Term,
};

/// How long a writer waits for another process's writer lock before giving up (a transient failure).
const WRITER_LOCK_WAIT: Duration = Duration::from_secs(30);
/// Indexing memory of one writer thread.
const WRITER_HEAP: usize = 50_000_000;

/// The schema's fields.
#[derive(Clone, Copy)]
pub(crate) struct Fields {
    pub id: Field,
    pub record: Field,
    pub visible: Field,
    pub title: Field,
    pub brand_text: Field,
    pub description: Field,
    pub attr_text: Field,
    pub suggest: Field,
    pub brand: Field,
    pub category: Field,
    pub attrs: Field,
    pub price: Field,
    pub rating: Field,
    /// The Bayesian average `sort=rating` orders by.
    pub rating_score: Field,
    pub in_stock: Field,
    pub created: Field,
    pub tie: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = |analyzer: &str| {
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(analyzer)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        )
    };
    let fields = Fields {
        id: b.add_text_field("id", STRING | STORED),
        record: b.add_text_field("record", STORED),
        visible: b.add_bool_field("visible", INDEXED | FAST),
        title: b.add_text_field("title", text(TEXT_ANALYZER)),
        brand_text: b.add_text_field("brand_text", text(TEXT_ANALYZER)),
        description: b.add_text_field("description", text(TEXT_ANALYZER)),
        attr_text: b.add_text_field("attr_text", text(TEXT_ANALYZER)),
        suggest: b.add_text_field("suggest", text(WORDS_ANALYZER)),
        brand: b.add_text_field("brand", STRING | FAST),
        category: b.add_text_field("category", STRING | FAST),
        attrs: b.add_text_field("attrs", STRING | FAST),
        price: b.add_i64_field("price", NumericOptions::default().set_fast()),
        rating: b.add_f64_field("rating", NumericOptions::default().set_fast()),
        rating_score: b.add_f64_field("rating_score", NumericOptions::default().set_fast()),
        in_stock: b.add_bool_field("in_stock", FAST),
        created: b.add_i64_field("created", NumericOptions::default().set_fast()),
        tie: b.add_u64_field("tie", FAST),
    };
    (b.build(), fields)
}

fn fields_of(schema: &Schema) -> Result<Fields> {
    let get = |name: &str| schema.get_field(name).map_err(engine_error);
    let fields = Fields {
        id: get("id")?,
        record: get("record")?,
        visible: get("visible")?,
        title: get("title")?,
        brand_text: get("brand_text")?,
        description: get("description")?,
        attr_text: get("attr_text")?,
        suggest: get("suggest")?,
        brand: get("brand")?,
        category: get("category")?,
        attrs: get("attrs")?,
        price: get("price")?,
        rating: get("rating")?,
        rating_score: get("rating_score")?,
        in_stock: get("in_stock")?,
        created: get("created")?,
        tie: get("tie")?,
    };
    Ok(fields)
}

fn engine_error(err: impl std::fmt::Display) -> DomainError {
    DomainError::unexpected(std::io::Error::other(format!("search index: {err}")))
}

fn io_error(err: std::io::Error) -> DomainError {
    DomainError::unexpected(err)
}

/// A stable 64-bit tie-breaker for a product id (FNV-1a).
fn tie_of(product_id: &str) -> u64 {
    product_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// One opened index directory with its reader.
struct OpenIndex {
    dir: PathBuf,
    index: Index,
    reader: IndexReader,
    fields: Fields,
    stamp: Mutex<Option<(SystemTime, u64)>>,
}

impl OpenIndex {
    fn open(dir: &Path) -> Result<Self> {
        let index = Index::open_in_dir(dir).map_err(engine_error)?;
        register_tokenizers(&index);
        let fields = fields_of(&index.schema())?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into().map_err(engine_error)?;
        let open = Self { dir: dir.to_owned(), index, reader, fields, stamp: Mutex::new(None) };
        open.stamp.lock().map(|mut s| *s = open.meta_stamp()).ok();
        Ok(open)
    }

    fn meta_stamp(&self) -> Option<(SystemTime, u64)> {
        let meta = std::fs::metadata(self.dir.join("meta.json")).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    }

    /// A searcher on the latest commit: reloads only when `meta.json` changed since the last look.
    fn searcher(&self) -> Result<Searcher> {
        let now = self.meta_stamp();
        let mut stamp = self.stamp.lock().map_err(|_| engine_error("poisoned lock"))?;
        if *stamp != now {
            let mut attempt = 0;
            loop {
                match self.reader.reload() {
                    Ok(()) => break,
                    Err(err) if attempt < 5 => {
                        tracing::debug!(error = %err, "index reload raced a commit, retrying");
                        attempt += 1;
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(err) => return Err(engine_error(err)),
                }
            }
            *stamp = now;
        }
        Ok(self.reader.searcher())
    }

    /// Takes the index's writer, waiting while another process holds it.
    fn writer(&self, threads: usize) -> Result<IndexWriter<TantivyDocument>> {
        let deadline = Instant::now() + WRITER_LOCK_WAIT;
        loop {
            match self.index.writer_with_num_threads(threads, WRITER_HEAP * threads) {
                Ok(writer) => return Ok(writer),
                Err(TantivyError::LockFailure(LockError::LockBusy, _)) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(15));
                }
                Err(TantivyError::LockFailure(LockError::LockBusy, _)) => {
                    return Err(DomainError::Transient("search index writer is busy".into()))
                }
                Err(err) => return Err(engine_error(err)),
            }
        }
    }

    /// The records held for these product ids (absent ids are not in the map).
    fn load_records(&self, searcher: &Searcher, ids: &HashSet<&str>) -> Result<HashMap<String, IndexedProduct>> {
        let mut found = HashMap::with_capacity(ids.len());
        for (ord, segment) in searcher.segment_readers().iter().enumerate() {
            let inverted = segment.inverted_index(self.fields.id).map_err(engine_error)?;
            let alive = segment.alive_bitset();
            for id in ids {
                let term = Term::from_field_text(self.fields.id, id);
                let Some(mut postings) =
                    inverted.read_postings(&term, IndexRecordOption::Basic).map_err(engine_error)?
                else {
                    continue;
                };
                use tantivy::DocSet;
                let mut doc = postings.doc();
                while doc != tantivy::TERMINATED {
                    if alive.is_none_or(|a| a.is_alive(doc)) {
                        let record = self.record_at(searcher, DocAddress::new(ord as u32, doc))?;
                        found.insert(record.product_id.clone(), record);
                    }
                    doc = postings.advance();
                }
            }
        }
        Ok(found)
    }

    fn record_at(&self, searcher: &Searcher, address: DocAddress) -> Result<IndexedProduct> {
        let doc: TantivyDocument = searcher.doc(address).map_err(engine_error)?;
        let json = doc.get_first(self.fields.record).and_then(|v| v.as_str()).unwrap_or("{}");
        serde_json::from_str(json).map_err(engine_error)
    }

    fn document(&self, record: &IndexedProduct) -> Result<TantivyDocument> {
        let f = &self.fields;
        let mut doc = TantivyDocument::new();
        doc.add_text(f.id, &record.product_id);
        doc.add_text(f.record, serde_json::to_string(record).map_err(engine_error)?);
        doc.add_bool(f.visible, record.visible());
        doc.add_bool(f.in_stock, record.in_stock());
        doc.add_u64(f.tie, tie_of(&record.product_id));
        if let Some(d) = &record.document {
            doc.add_text(f.title, &d.title);
            doc.add_text(f.brand_text, &d.brand);
            doc.add_text(f.description, &d.description);
            doc.add_text(f.attr_text, d.attribute_text());
            doc.add_text(f.suggest, format!("{} {}", d.title, d.brand));
            if !d.brand.is_empty() {
                doc.add_text(f.brand, &d.brand);
            }
            if !d.categories.is_empty() {
                doc.add_text(f.category, d.category_key());
            }
            for term in d.attribute_terms() {
                doc.add_text(f.attrs, term);
            }
            doc.add_i64(f.price, d.price.amount);
            doc.add_f64(f.rating, record.rating.average());
            doc.add_f64(f.rating_score, record.rating.score());
            doc.add_i64(f.created, d.created_at.timestamp_millis());
        }
        Ok(doc)
    }
}

fn register_tokenizers(index: &Index) {
    index.tokenizers().register(TEXT_ANALYZER, analysis::text_analyzer());
    index.tokenizers().register(WORDS_ANALYZER, analysis::words_analyzer());
}

/// What one write batch does to a product's record.
enum Op<'a> {
    Catalog(&'a IndexChange),
    Stock(&'a StockUpdate),
    Rating(&'a RatingUpdate),
    /// Rebuild: the catalog's current state, with stock carried over from the live index.
    Rebuild(&'a IndexChange, Option<&'a IndexedProduct>),
}

impl Op<'_> {
    fn product_id(&self) -> &str {
        match self {
            Op::Catalog(c) | Op::Rebuild(c, _) => c.product_id(),
            Op::Stock(s) => &s.product_id,
            Op::Rating(r) => &r.product_id,
        }
    }
}

/// The embedded engine: implements [`commerce_app::ports::SearchIndex`] and [`commerce_app::ports::ProductSearch`].
#[derive(Clone)]
pub struct EmbeddedSearch {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    alias: String,
    opened: Mutex<HashMap<String, Arc<OpenIndex>>>,
}

impl EmbeddedSearch {
    /// Opens (creating on first use) the engine rooted at `root`, serving the index the alias names.
    pub fn open(root: impl Into<PathBuf>, alias: impl Into<String>) -> Result<Self> {
        let engine = Self {
            inner: Arc::new(Inner { root: root.into(), alias: alias.into(), opened: Mutex::new(HashMap::new()) }),
        };
        engine.ensure_initialized()?;
        Ok(engine)
    }

    fn pointer(&self, which: &str) -> PathBuf {
        self.inner.root.join(format!("{}.{which}", self.inner.alias))
    }

    fn read_pointer(&self, which: &str) -> Result<Option<String>> {
        match std::fs::read_to_string(self.pointer(which)) {
            Ok(name) => Ok(Some(name.trim().to_owned()).filter(|n| !n.is_empty())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(io_error(err)),
        }
    }

    fn write_pointer(&self, which: &str, name: &str) -> Result<()> {
        let tmp = self.inner.root.join(format!(".{}.{which}.{}.tmp", self.inner.alias, std::process::id()));
        std::fs::write(&tmp, name).map_err(io_error)?;
        std::fs::rename(&tmp, self.pointer(which)).map_err(io_error)
    }

    fn ensure_initialized(&self) -> Result<()> {
        std::fs::create_dir_all(&self.inner.root).map_err(io_error)?;
        if self.read_pointer("current")?.is_some() {
            return Ok(());
        }
        let name = format!("{}-0", self.inner.alias);
        let dir = self.inner.root.join(&name);
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                let (schema, _) = schema();
                Index::create_in_dir(&dir, schema).map_err(engine_error)?;
                self.write_pointer("current", &name)
            }
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline {
                    if self.read_pointer("current")?.is_some() {
                        return Ok(());
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                if dir.join("meta.json").exists() {
                    return self.write_pointer("current", &name);
                }
                Err(engine_error(format!("{} exists but holds no index", dir.display())))
            }
            Err(err) => Err(io_error(err)),
        }
    }

    fn index(&self, name: &str) -> Result<Arc<OpenIndex>> {
        let mut opened = self.inner.opened.lock().map_err(|_| engine_error("poisoned lock"))?;
        if let Some(index) = opened.get(name) {
            return Ok(index.clone());
        }
        if name.contains('/') || name.contains("..") {
            return Err(engine_error("bad index name"));
        }
        let index = Arc::new(OpenIndex::open(&self.inner.root.join(name))?);
        opened.retain(|_, i| Arc::strong_count(i) > 1);
        opened.insert(name.to_owned(), index.clone());
        Ok(index)
    }

    /// The index the alias names now.
    pub fn current_index(&self) -> Result<String> {
        self.read_pointer("current")?.ok_or_else(|| engine_error("the search alias points nowhere"))
    }

    /// The indexes writes must reach: the live one and, during a rebuild, the new one.
    fn write_targets(&self) -> Result<Vec<String>> {
        let mut targets = vec![self.current_index()?];
        if let Some(next) = self.read_pointer("next")? {
            if !targets.contains(&next) && self.inner.root.join(&next).join("meta.json").exists() {
                targets.push(next);
            }
        }
        Ok(targets)
    }

    fn write(&self, name: &str, ops: &[Op<'_>], threads: usize) -> Result<usize> {
        let index = self.index(name)?;
        let mut writer = index.writer(threads)?;
        let searcher = {
            *index.stamp.lock().map_err(|_| engine_error("poisoned lock"))? = None;
            index.searcher()?
        };
        let ids: HashSet<&str> = ops.iter().map(Op::product_id).collect();
        let mut records = index.load_records(&searcher, &ids)?;
        let mut changed: Vec<String> = Vec::new();
        for op in ops {
            let id = op.product_id();
            let record = records.entry(id.to_owned()).or_insert_with(|| IndexedProduct::new(id));
            let did = match op {
                Op::Catalog(change) => record.apply(change),
                Op::Stock(update) => record.apply_stock(update),
                Op::Rating(update) => record.apply_rating(update),
                Op::Rebuild(change, live) => {
                    let mut did = record.apply(change);
                    if let Some(live) = live {
                        did |= record.apply_rating(&RatingUpdate {
                            product_id: id.to_owned(),
                            stars: live.rating.stars,
                            version: live.rating.version,
                        });
                        for (sku, stock) in &live.stock {
                            did |= record.apply_stock(&StockUpdate {
                                product_id: id.to_owned(),
                                sku: sku.clone(),
                                available: stock.available,
                                stock_version: stock.version,
                            });
                        }
                    }
                    did
                }
            };
            if did && !changed.iter().any(|c| c == id) {
                changed.push(id.to_owned());
            }
        }
        for id in &changed {
            if let Some(record) = records.get(id) {
                writer.delete_term(Term::from_field_text(index.fields.id, id));
                writer.add_document(index.document(record)?).map_err(engine_error)?;
            }
        }
        if !changed.is_empty() {
            writer.commit().map_err(engine_error)?;
        }
        writer.wait_merging_threads().map_err(engine_error)?;
        Ok(changed.len())
    }

    fn apply_sync(&self, ops: &[Op<'_>]) -> Result<usize> {
        let mut changed = 0;
        for (i, target) in self.write_targets()?.iter().enumerate() {
            let n = self.write(target, ops, 1)?;
            if i == 0 {
                changed = n;
            }
        }
        Ok(changed)
    }

    /// Starts a rebuild: creates a fresh index and makes writers apply every change to it too.
    /// Returns the new index's name.
    pub fn begin_rebuild(&self) -> Result<String> {
        let name = format!("{}-{}", self.inner.alias, commerce_domain::ids::new_id("ix").trim_start_matches("ix_"));
        let dir = self.inner.root.join(&name);
        std::fs::create_dir(&dir).map_err(io_error)?;
        let (schema, _) = schema();
        Index::create_in_dir(&dir, schema).map_err(engine_error)?;
        self.write_pointer("next", &name)?;
        Ok(name)
    }

    /// Writes catalog states into the rebuilt index, carrying each product's stock over from the live index.
    /// Version rules apply, so a newer change that a writer already put there wins.
    pub fn load_rebuild(&self, name: &str, changes: &[IndexChange]) -> Result<usize> {
        let live_name = self.current_index()?;
        let live = self.index(&live_name)?;
        let searcher = live.searcher()?;
        let ids: HashSet<&str> = changes.iter().map(IndexChange::product_id).collect();
        let live_records = live.load_records(&searcher, &ids)?;
        let ops: Vec<Op<'_>> = changes.iter().map(|c| Op::Rebuild(c, live_records.get(c.product_id()))).collect();
        self.write(name, &ops, 2)
    }

    /// Swaps the alias to the rebuilt index and stops dual writes. Stock changes written to the old index
    /// after the last load are carried over first. The old index stays on disk for readers still using it;
    /// indexes older than it are removed.
    pub fn finish_rebuild(&self, name: &str) -> Result<()> {
        if self.read_pointer("next")?.as_deref() != Some(name) {
            return Err(engine_error("no rebuild of this index is in progress"));
        }
        let previous = self.current_index()?;
        self.write_pointer("current", name)?;
        std::fs::remove_file(self.pointer("next")).map_err(io_error)?;
        for entry in std::fs::read_dir(&self.inner.root).map_err(io_error)?.flatten() {
            let file_name = entry.file_name().to_string_lossy().into_owned();
            let ours = file_name.starts_with(&format!("{}-", self.inner.alias));
            if ours && file_name != name && file_name != previous && entry.path().is_dir() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        Ok(())
    }

    /// Abandons a rebuild: writers stop writing to it and it is removed.
    pub fn abort_rebuild(&self, name: &str) -> Result<()> {
        if self.read_pointer("next")?.as_deref() == Some(name) {
            std::fs::remove_file(self.pointer("next")).map_err(io_error)?;
        }
        let _ = std::fs::remove_dir_all(self.inner.root.join(name));
        Ok(())
    }

    /// The record held for a product in the live index (tests, diagnostics).
    pub fn record(&self, product_id: &str) -> Result<Option<IndexedProduct>> {
        let index = self.index(&self.current_index()?)?;
        let searcher = index.searcher()?;
        Ok(index.load_records(&searcher, &HashSet::from([product_id]))?.remove(product_id))
    }

    /// Number of searchable products in the live index.
    pub fn visible_count(&self) -> Result<u64> {
        let index = self.index(&self.current_index()?)?;
        let searcher = index.searcher()?;
        let query = TermQuery::new(Term::from_field_bool(index.fields.visible, true), IndexRecordOption::Basic);
        searcher.search(&query, &tantivy::collector::Count).map(|n| n as u64).map_err(engine_error)
    }

    /// Applies catalog changes with several indexing threads (bulk loads, benchmarks).
    pub fn apply_bulk(&self, changes: &[IndexChange]) -> Result<usize> {
        let ops: Vec<Op<'_>> = changes.iter().map(Op::Catalog).collect();
        let mut changed = 0;
        for (i, target) in self.write_targets()?.iter().enumerate() {
            let n = self.write(target, &ops, 2)?;
            if i == 0 {
                changed = n;
            }
        }
        Ok(changed)
    }

    fn live(&self) -> Result<(Arc<OpenIndex>, Searcher)> {
        let index = self.index(&self.current_index()?)?;
        let searcher = index.searcher()?;
        Ok((index, searcher))
    }

    /// Runs a search synchronously.
    pub fn search_sync(&self, query: &SearchQuery) -> Result<SearchResults> {
        let (index, searcher) = self.live()?;
        let f = index.fields;
        let plan = TextPlan::new(&query.text);
        let text_query = plan.query(&f);
        let after = match &query.cursor {
            Some(cursor) => Some(SortKey::from_cursor(cursor)?),
            None => None,
        };
        let collector = FacetCollector {
            fields: f,
            filters: Filters::from_query(query),
            sort: query.sort,
            scored: query.sort == SearchSort::Relevance && !plan.is_empty(),
            limit: query.page_size as usize + 1,
            after,
        };
        let fruit = searcher.search(text_query.as_ref(), &collector).map_err(engine_error)?;
        let page = query.page_size as usize;
        let more = fruit.top.len() > page;
        let mut hits = Vec::with_capacity(page);
        let mut last_key = None;
        for (key, address) in fruit.top.into_iter().take(page) {
            let record = index.record_at(&searcher, address)?;
            if let Some(doc) = &record.document {
                let highlights = BTreeMap::from([("title".to_owned(), plan.highlight(&doc.title))]);
                hits.push(record.hit(doc, highlights));
            }
            last_key = Some(key);
        }
        let next_cursor = match (more, last_key) {
            (true, Some(key)) => Some(key.to_cursor(query.sort).encode()),
            _ => None,
        };
        Ok(SearchResults { hits, total: fruit.total, facets: fruit.facets, next_cursor })
    }

    /// Completes a prefix synchronously.
    pub fn suggest_sync(&self, query: &SuggestQuery) -> Result<Suggestions> {
        let (index, searcher) = self.live()?;
        let f = index.fields;
        let words = analysis::analyze(&mut analysis::words_analyzer(), &query.prefix);
        let Some((last, earlier)) = words.split_last() else {
            return Ok(Suggestions { suggestions: Vec::new() });
        };
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(
            Occur::Must,
            Box::new(TermQuery::new(Term::from_field_bool(f.visible, true), IndexRecordOption::Basic)),
        )];
        for word in earlier {
            let term = Term::from_field_text(f.suggest, &word.text);
            let d = fuzziness(word.text.chars().count());
            clauses.push((
                Occur::Must,
                Box::new(BooleanQuery::new(vec![
                    (Occur::Should, boost(TermQuery::new(term.clone(), IndexRecordOption::WithFreqs), 3.0)),
                    (Occur::Should, Box::new(FuzzyTermQuery::new(term, d, true))),
                ])),
            ));
        }
        let term = Term::from_field_text(f.suggest, &last.text);
        let chars = last.text.chars().count();
        let d = match chars {
            0..=3 => 0,
            4..=7 => 1,
            _ => 2,
        };
        let mut last_clause: Vec<(Occur, Box<dyn Query>)> =
            vec![(Occur::Should, boost(FuzzyTermQuery::new_prefix(term.clone(), 0, true), 3.0))];
        if d > 0 {
            last_clause.push((Occur::Should, Box::new(FuzzyTermQuery::new_prefix(term, d, true))));
        }
        clauses.push((Occur::Must, Box::new(BooleanQuery::new(last_clause))));
        let top = searcher
            .search(&BooleanQuery::new(clauses), &TopDocs::with_limit(50).order_by_score())
            .map_err(engine_error)?;
        let mut seen = HashSet::new();
        let mut suggestions = Vec::new();
        for (_, address) in top {
            let record = index.record_at(&searcher, address)?;
            if let Some(doc) = record.document {
                if seen.insert(doc.title.to_lowercase()) {
                    suggestions.push(Suggestion { text: doc.title, product_id: doc.product_id });
                }
            }
            if suggestions.len() >= query.limit {
                break;
            }
        }
        Ok(Suggestions { suggestions })
    }
}

fn boost(query: impl Query + 'static, by: f32) -> Box<dyn Query> {
    Box::new(BoostQuery::new(Box::new(query), by))
}

/// The words of a text query, their stems and synonyms: builds the engine query and the highlighter.
struct TextPlan {
    /// Per query word: (stem, fuzziness, synonym stems).
    words: Vec<(String, u8, Vec<String>)>,
}

impl TextPlan {
    fn new(text: &str) -> Self {
        let raw = analysis::analyze(&mut analysis::words_analyzer(), text);
        let meaningful: Vec<_> = raw.iter().filter(|w| !analysis::STOP_WORDS.contains(&w.text.as_str())).collect();
        let kept: Vec<_> = if meaningful.is_empty() { raw.iter().collect() } else { meaningful };
        let words = kept
            .into_iter()
            .take(12)
            .map(|w| {
                let synonyms = analysis::synonyms(&w.text).iter().map(|s| analysis::stem(s)).collect();
                (analysis::stem(&w.text), fuzziness(w.text.chars().count()), synonyms)
            })
            .collect();
        Self { words }
    }

    fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Every word must match some field: exactly (BM25, by field weight), through a synonym, or within
    /// its edit distance in the title or brand.
    fn query(&self, f: &Fields) -> Box<dyn Query> {
        if self.words.is_empty() {
            return Box::new(AllQuery);
        }
        let weighted = [(f.title, 3.0), (f.brand_text, 2.0), (f.attr_text, 1.0), (f.description, 0.5)];
        let musts = self
            .words
            .iter()
            .map(|(stem, distance, synonyms)| {
                let mut should: Vec<(Occur, Box<dyn Query>)> = Vec::new();
                for alternative in std::iter::once(stem).chain(synonyms) {
                    let weight = if alternative == stem { 1.0 } else { 0.8 };
                    for (field, field_weight) in weighted {
                        let term = Term::from_field_text(field, alternative);
                        should.push((
                            Occur::Should,
                            boost(TermQuery::new(term, IndexRecordOption::WithFreqs), field_weight * weight),
                        ));
                    }
                }
                if *distance > 0 {
                    for (field, by) in [(f.title, 0.6), (f.brand_text, 0.4)] {
                        let term = Term::from_field_text(field, stem);
                        should.push((Occur::Should, boost(FuzzyTermQuery::new(term, *distance, true), by)));
                    }
                }
                (Occur::Must, Box::new(BooleanQuery::new(should)) as Box<dyn Query>)
            })
            .collect();
        Box::new(BooleanQuery::new(musts))
    }

    /// The title with matching words in `<em>`.
    fn highlight(&self, title: &str) -> String {
        let mut marks = Vec::new();
        for word in analysis::analyze(&mut analysis::words_analyzer(), title) {
            let stem = analysis::stem(&word.text);
            let hit = self.words.iter().any(|(s, d, synonyms)| {
                *s == stem
                    || synonyms.contains(&stem)
                    || (*d > 0 && analysis::edit_distance(s, &stem) <= usize::from(*d))
            });
            if hit {
                marks.push((word.from, word.to));
            }
        }
        search::highlight(title, &marks)
    }
}

impl commerce_app::ports::SearchIndex for EmbeddedSearch {
    async fn apply_changes(&self, changes: &[IndexChange]) -> Result<usize> {
        let engine = self.clone();
        let changes = changes.to_vec();
        run_blocking(move || {
            let ops: Vec<Op<'_>> = changes.iter().map(Op::Catalog).collect();
            engine.apply_sync(&ops)
        })
        .await
    }

    async fn set_stock_status(&self, updates: &[StockUpdate]) -> Result<usize> {
        let engine = self.clone();
        let updates = updates.to_vec();
        run_blocking(move || {
            let ops: Vec<Op<'_>> = updates.iter().map(Op::Stock).collect();
            engine.apply_sync(&ops)
        })
        .await
    }
}

impl commerce_app::ports::RatingIndex for EmbeddedSearch {
    async fn set_ratings(&self, updates: &[RatingUpdate]) -> Result<usize> {
        let engine = self.clone();
        let updates = updates.to_vec();
        run_blocking(move || {
            let ops: Vec<Op<'_>> = updates.iter().map(Op::Rating).collect();
            engine.apply_sync(&ops)
        })
        .await
    }
}

impl commerce_app::ports::ProductSearch for EmbeddedSearch {
    async fn search(&self, query: &SearchQuery) -> Result<SearchResults> {
        let engine = self.clone();
        let query = query.clone();
        run_blocking(move || engine.search_sync(&query)).await
    }

    async fn suggest(&self, query: &SuggestQuery) -> Result<Suggestions> {
        let engine = self.clone();
        let query = query.clone();
        run_blocking(move || engine.suggest_sync(&query)).await
    }
}

async fn run_blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(DomainError::unexpected)?
}

impl SortKey {
    fn from_cursor(cursor: &SearchCursor) -> Result<Self> {
        let bad = || DomainError::invalid_parameter("cursor", "is not a valid cursor for this query");
        match cursor.after.as_slice() {
            [primary, tie] => Ok(SortKey {
                primary: primary.as_str().and_then(|s| s.parse().ok()).ok_or_else(bad)?,
                tie: tie.as_str().and_then(|s| s.parse().ok()).ok_or_else(bad)?,
            }),
            _ => Err(bad()),
        }
    }

    fn to_cursor(self, sort: SearchSort) -> SearchCursor {
        SearchCursor {
            sort,
            after: vec![serde_json::json!(self.primary.to_string()), serde_json::json!(self.tie.to_string())],
        }
    }
}
