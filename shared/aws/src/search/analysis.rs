//! Text analysis shared by the embedded engine's index and queries, mirroring the OpenSearch analyzers in
//! infra/opensearch/products-index.json: standard-like word splitting, lower-casing, ASCII folding, English
//! stemming, and the same synonym list (read from that file at compile time, so both engines agree).

use commerce_domain::search::parse_synonyms;
use std::collections::HashMap;
use std::sync::OnceLock;
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, TextAnalyzer, TokenStream,
};

/// The OpenSearch index definition; its synonym filter is the one synonym list of the project.
pub const INDEX_DEFINITION: &str = include_str!("../../../../infra/opensearch/products-index.json");

/// Tokenizer name of stemmed product text.
pub const TEXT_ANALYZER: &str = "product_text";
/// Tokenizer name of unstemmed words (completion).
pub const WORDS_ANALYZER: &str = "suggest_words";

/// Lower-cased, folded, stemmed words.
pub fn text_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(Stemmer::new(Language::English))
        .build()
}

/// Lower-cased, folded words, not stemmed.
pub fn words_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

/// A word of text with its byte offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub from: usize,
    pub to: usize,
}

/// Runs an analyzer over text.
pub fn analyze(analyzer: &mut TextAnalyzer, text: &str) -> Vec<Word> {
    let mut stream = analyzer.token_stream(text);
    let mut words = Vec::new();
    while stream.advance() {
        let token = stream.token();
        words.push(Word { text: token.text.clone(), from: token.offset_from, to: token.offset_to });
    }
    words
}

/// The stem of one lower-cased word.
pub fn stem(word: &str) -> String {
    analyze(&mut text_analyzer(), word).into_iter().next().map(|w| w.text).unwrap_or_else(|| word.to_owned())
}

/// Words that carry no meaning in a product query; dropped unless the query has nothing else.
pub const STOP_WORDS: &[&str] =
    &["a", "an", "and", "are", "as", "at", "by", "for", "in", "is", "of", "on", "or", "the", "to", "with"];

/// Synonyms of a lower-cased word (not including itself).
pub fn synonyms(word: &str) -> &'static [String] {
    static TABLE: OnceLock<HashMap<String, Vec<String>>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let definition: serde_json::Value = serde_json::from_str(INDEX_DEFINITION).unwrap_or_default();
        let lines: Vec<&str> = definition["settings"]["analysis"]["filter"]["product_synonyms"]["synonyms"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        let mut table: HashMap<String, Vec<String>> = HashMap::new();
        for group in parse_synonyms(lines) {
            for word in &group {
                let others = group.iter().filter(|w| *w != word).cloned();
                table.entry(word.clone()).or_default().extend(others);
            }
        }
        table
    });
    table.get(word).map(Vec::as_slice).unwrap_or_default()
}

/// Levenshtein distance (with adjacent transpositions counted once), for highlighting fuzzy matches.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev2: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(prev2[j - 2] + 1);
            }
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synonyms_come_from_the_index_definition() {
        assert!(synonyms("laptop").contains(&"notebook".to_owned()));
        assert!(synonyms("notebook").contains(&"laptop".to_owned()));
        assert!(synonyms("zzz").is_empty());
    }

    #[test]
    fn stems_english() {
        assert_eq!(stem("running"), stem("runs"));
        assert_eq!(stem("Headphones"), stem("headphone"));
    }

    #[test]
    fn edit_distance_counts_transpositions_once() {
        assert_eq!(edit_distance("iphone", "iphne"), 1);
        assert_eq!(edit_distance("ipohne", "iphone"), 1);
        assert_eq!(edit_distance("abc", "abc"), 0);
        assert_eq!(edit_distance("", "ab"), 2);
    }
}
