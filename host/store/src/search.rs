//! The search index: one index over every document type (catalog entities,
//! TechDocs sections, documents plugins contribute), kept by the backend
//! beside the catalog so that writes update it in their own transaction and
//! a reader's catalog scope filters it inside the query.
//!
//! Matching is the same on every backend, in tiers:
//! 1. every term is a whole word of the document;
//! 2. every term starts a word (prefix);
//! 3. every term occurs inside the document (infix, terms of 3+ characters;
//!    shorter ones must still start a word);
//! 4. only when the first three find nothing: every term is a word within
//!    one edit (insertion, deletion, substitution, transposition) of a word
//!    of the document.
//!
//! A hit's tier orders it first; within a tier, the backend's relevance
//! (title and names weigh more than text) does. Highlighting happens here,
//! in Rust, on the page of hits ([`highlight`]), so every backend marks
//! the same words.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Result;
use crate::query::Predicate;

/// Document type of catalog entities (Backstage's collator name).
pub const CATALOG_TYPE: &str = "software-catalog";
/// Document type of TechDocs sections.
pub const TECHDOCS_TYPE: &str = "techdocs";

/// Most terms a query keeps (further ones are ignored).
pub const MAX_TERMS: usize = 8;
/// Longest term kept, in characters (longer ones are cut).
pub const MAX_TERM_CHARS: usize = 48;
/// Deepest result a query may page to: paging is by offset, and a deep
/// offset costs the database every skipped row.
pub const MAX_OFFSET: usize = 10_000;
/// Most hits in one page.
pub const MAX_LIMIT: usize = 100;
/// Counting stops here; [`SearchResults::total`] says `capped` beyond.
pub const MAX_COUNT: u64 = 1_000;
/// Most filter fields, and values per field, one query may carry.
pub const MAX_FILTERS: usize = 16;
/// Longest text of a document the index keeps (bytes; cut at a character
/// boundary).
pub const MAX_TEXT: usize = 16 * 1024;
/// Terms longer than this get no typo tier: their one-edit neighbourhood
/// (about 75 words per character) grows past what one query should ask.
pub const MAX_FUZZY_CHARS: usize = 24;
/// Terms shorter than this match only as words and prefixes (a trigram
/// index cannot answer them, and one or two letters inside words match
/// everything).
pub const MIN_INFIX: usize = 3;

/// One document of the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchDoc {
    /// `software-catalog`, `techdocs`, or a plugin's type.
    pub doc_type: String,
    /// Unique in the index (e.g. the entity ref, or a docs page and anchor).
    pub key: String,
    /// Lower-case ref of the entity whose read permission governs the
    /// document; the document is hidden when the entity is out of the
    /// reader's scope or no longer exists.
    pub entity_ref: Option<String>,
    /// A permission the reader must hold besides (plugins' documents).
    pub permission: Option<String>,
    /// Title (weighs most).
    pub title: String,
    /// Names, refs and tags (weigh almost as much as the title).
    pub names: String,
    /// Body text.
    pub text: String,
    /// Where the document is shown (a portal path).
    pub location: String,
    /// The rest of the document as Backstage's clients read it (`kind`,
    /// `namespace`, `lifecycle`, `owner`, ...); filters match these.
    pub fields: Map<String, Value>,
}

impl SearchDoc {
    /// The catalog's document for an entity, with the fields of Backstage's
    /// `DefaultCatalogCollator`: title (`metadata.title` or name), text
    /// (description; users add their display name and e-mail), kind,
    /// namespace, name, type and componentType (`spec.type`), lifecycle,
    /// owner, location `/catalog/<namespace>/<kind>/<name>`.
    pub fn for_entity(entity: &Value) -> Self {
        let text_at = |pointer: &str| entity.pointer(pointer).and_then(Value::as_str);
        let kind = text_at("/kind").unwrap_or_default();
        let namespace = text_at("/metadata/namespace").unwrap_or("default");
        let name = text_at("/metadata/name").unwrap_or_default();
        let key = format!("{kind}:{namespace}/{name}").to_lowercase();
        let mut text = text_at("/metadata/description")
            .unwrap_or_default()
            .to_owned();
        for extra in ["/spec/profile/displayName", "/spec/profile/email"] {
            if let Some(v) = text_at(extra) {
                if !text.is_empty() {
                    text.push(' ');
                }
                text.push_str(v);
            }
        }
        let mut names = vec![name.to_owned(), key.clone()];
        if let Some(tags) = entity.pointer("/metadata/tags").and_then(Value::as_array) {
            names.extend(tags.iter().filter_map(Value::as_str).map(str::to_owned));
        }
        let mut fields = Map::new();
        let mut put = |field: &str, value: Option<&str>| {
            if let Some(v) = value.filter(|v| !v.is_empty()) {
                fields.insert(field.to_owned(), Value::from(v));
            }
        };
        put("kind", Some(kind));
        put("namespace", Some(namespace));
        put("name", Some(name));
        put("type", text_at("/spec/type"));
        put("componentType", text_at("/spec/type"));
        put("lifecycle", text_at("/spec/lifecycle"));
        put("owner", text_at("/spec/owner"));
        let location = format!(
            "/catalog/{}/{}/{}",
            namespace.to_lowercase(),
            kind.to_lowercase(),
            name
        );
        let mut doc = Self {
            doc_type: CATALOG_TYPE.to_owned(),
            entity_ref: Some(key.clone()),
            key,
            permission: None,
            title: text_at("/metadata/title").unwrap_or(name).to_owned(),
            names: names.join(" "),
            text,
            location,
            fields,
        };
        doc.bound();
        doc
    }

    /// Cuts the title, names and text to what the index keeps.
    pub fn bound(&mut self) {
        cut(&mut self.title, 1024);
        cut(&mut self.names, 4096);
        cut(&mut self.text, MAX_TEXT);
    }

    /// The document's `kind` field, if it has one.
    pub fn kind(&self) -> Option<&str> {
        self.fields.get("kind").and_then(Value::as_str)
    }
}

/// Cuts `s` to at most `max` bytes, at a character boundary.
fn cut(s: &mut String, max: usize) {
    if s.len() > max {
        let mut at = max;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
    }
}

/// The group of the catalog document of an entity (its lower-case ref).
pub fn entity_group(key: &str) -> String {
    format!("entity:{key}")
}

/// A search request, checked and normalised by [`SearchQuery::new`].
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    /// Lower-cased terms ([`terms`]); none lists every document.
    pub terms: Vec<String>,
    /// Document types to keep (none: all).
    pub types: Vec<String>,
    /// `(field, values)`: a document's field must equal one of the values
    /// (compared lower-cased).
    pub filters: Vec<(String, Vec<String>)>,
    /// The reader's catalog read scope; `None` reads everything.
    pub scope: Option<Predicate>,
    /// Permissions the reader holds among those documents ask for; `None`
    /// holds them all.
    pub permissions: Option<Vec<String>>,
    /// Hits to skip.
    pub offset: usize,
    /// Hits to return.
    pub limit: usize,
}

impl SearchQuery {
    /// A query for `term` (split into [`terms`]), bounded.
    pub fn new(term: &str, offset: usize, limit: usize) -> Self {
        Self {
            terms: terms(term),
            offset: offset.min(MAX_OFFSET),
            limit: limit.clamp(1, MAX_LIMIT),
            ..Self::default()
        }
    }

    /// Whether `field` names a document field a filter may use.
    pub fn valid_field(field: &str) -> bool {
        !field.is_empty()
            && field.len() <= 64
            && field
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    }
}

/// The words of a query: runs of letters and digits, lower-cased, at most
/// [`MAX_TERMS`] of at most [`MAX_TERM_CHARS`] characters, duplicates
/// dropped. Everything else separates words, so no input reaches a
/// database's query syntax.
pub fn terms(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let word: String = word.to_lowercase().chars().take(MAX_TERM_CHARS).collect();
        if !out.contains(&word) {
            out.push(word);
        }
        if out.len() == MAX_TERMS {
            break;
        }
    }
    out
}

/// How a hit matched (lower is better).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Every term is a whole word.
    Word = 1,
    /// Every term starts a word.
    Prefix = 2,
    /// Every term occurs inside the text.
    Infix = 3,
    /// Every term is within one edit of a word.
    Fuzzy = 4,
}

impl Tier {
    /// The tier from its number.
    pub fn from_number(n: i64) -> Self {
        match n {
            1 => Self::Word,
            2 => Self::Prefix,
            3 => Self::Infix,
            _ => Self::Fuzzy,
        }
    }
}

/// One hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    /// The document.
    pub doc: SearchDoc,
    /// How it matched.
    pub tier: Tier,
}

/// Total number of hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Total {
    /// Hits counted.
    pub count: u64,
    /// Whether counting stopped at [`MAX_COUNT`].
    pub capped: bool,
}

/// A page of hits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchResults {
    /// The hits of the page, best first.
    pub hits: Vec<SearchHit>,
    /// All hits (within the caller's scope, types and filters).
    pub total: Total,
    /// Hits by document type (ignoring the type filter), most first.
    pub types: Vec<(String, u64)>,
    /// Hits by `kind` field (ignoring a kind filter), most first.
    pub kinds: Vec<(String, u64)>,
    /// The fuzzy tier's corrected words, when it answered.
    pub corrections: Vec<String>,
}

/// One match as a backend counts it for the totals and facets: its type
/// and lower-cased `kind` field (empty when it has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    /// The document's type.
    pub doc_type: String,
    /// Its `kind` field, lower-cased.
    pub kind: String,
}

impl SearchResults {
    /// Assembles a backend's answer: `counted` holds up to [`MAX_COUNT`] +
    /// 1 matches read with every filter but the type and kind filters
    /// (which the facets ignore for their own field and the total
    /// applies); `page` the ids of the page in rank order, at most
    /// `q.limit` of them, and `docs` their documents.
    pub fn assemble(
        q: &SearchQuery,
        counted: &[Counted],
        page: Vec<(i64, Tier)>,
        mut docs: HashMap<i64, SearchDoc>,
    ) -> Self {
        let kind_filter = q.filters.iter().find(|(f, _)| f == "kind").map(|(_, v)| v);
        let mut types: HashMap<&str, u64> = HashMap::new();
        let mut kinds: HashMap<&str, u64> = HashMap::new();
        let mut count = 0u64;
        for c in counted
            .iter()
            .take(usize::try_from(MAX_COUNT).unwrap_or(usize::MAX))
        {
            let type_ok = q.types.is_empty() || q.types.contains(&c.doc_type);
            let kind_ok = kind_filter.is_none_or(|values| values.contains(&c.kind));
            if kind_ok {
                *types.entry(&c.doc_type).or_default() += 1;
            }
            if type_ok && !c.kind.is_empty() {
                *kinds.entry(&c.kind).or_default() += 1;
            }
            if type_ok && kind_ok {
                count += 1;
            }
        }
        let sorted = |counts: HashMap<&str, u64>| {
            let mut v: Vec<(String, u64)> =
                counts.into_iter().map(|(k, n)| (k.to_owned(), n)).collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            v
        };
        Self {
            hits: page
                .into_iter()
                .take(q.limit)
                .filter_map(|(id, tier)| docs.remove(&id).map(|doc| SearchHit { doc, tier }))
                .collect(),
            total: Total {
                count,
                capped: counted.len() as u64 > MAX_COUNT,
            },
            types: sorted(types),
            kinds: sorted(kinds),
            corrections: Vec::new(),
        }
    }
}

/// The search index's storage.
#[async_trait::async_trait]
pub trait SearchStore: Send + Sync {
    /// A page of hits for `query`, with counts.
    async fn search(&self, query: &SearchQuery) -> Result<SearchResults>;
    /// Replaces every document of `group` (a docs page, a plugin's set) with
    /// `docs`, in one transaction. Keys already used by another group are
    /// taken over.
    async fn replace_group(&self, group: &str, docs: Vec<SearchDoc>) -> Result<()>;
    /// Replaces the documents of each group, all in one transaction.
    async fn replace_groups(&self, groups: Vec<(String, Vec<SearchDoc>)>) -> Result<()>;
    /// Number of documents whose group starts with `prefix`.
    async fn count_groups(&self, prefix: &str) -> Result<u64>;
    /// Removes every document whose group starts with `prefix`.
    async fn remove_groups(&self, prefix: &str) -> Result<u64>;
    /// Number of documents by type.
    async fn counts(&self) -> Result<BTreeMap<String, u64>>;
}

/// Every word within one edit of `term` (insertions and substitutions over
/// `a-z`, `0-9` and the term's own characters, deletions, transpositions of
/// neighbours), without `term` itself, and never shorter than
/// [`MIN_INFIX`] (deleting a letter of `kit` makes `it`, which is in almost
/// every text: one such variant made a query that found nothing read every
/// document). Empty for terms shorter than [`MIN_INFIX`], where one edit
/// makes almost any word, and longer than [`MAX_FUZZY_CHARS`].
pub fn one_edit(term: &str) -> Vec<String> {
    let chars: Vec<char> = term.chars().collect();
    if chars.len() < MIN_INFIX || chars.len() > MAX_FUZZY_CHARS {
        return Vec::new();
    }
    let mut alphabet: Vec<char> = ('a'..='z').chain('0'..='9').collect();
    for c in &chars {
        if !alphabet.contains(c) {
            alphabet.push(*c);
        }
    }
    let mut out = std::collections::BTreeSet::new();
    let word = |cs: &[char]| cs.iter().collect::<String>();
    for i in 0..=chars.len() {
        for &c in &alphabet {
            let mut v = chars.clone();
            v.insert(i, c);
            out.insert(word(&v));
        }
    }
    for i in 0..chars.len() {
        let mut v = chars.clone();
        v.remove(i);
        out.insert(word(&v));
        for &c in &alphabet {
            let mut v = chars.clone();
            v[i] = c;
            out.insert(word(&v));
        }
        if i + 1 < chars.len() {
            let mut v = chars.clone();
            v.swap(i, i + 1);
            out.insert(word(&v));
        }
    }
    out.remove(term);
    out.into_iter()
        .filter(|v| v.chars().count() >= MIN_INFIX)
        .collect()
}

/// Whether `a` and `b` are within one edit (as [`one_edit`] counts).
pub fn within_one_edit(a: &str, b: &str) -> bool {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a == b {
        return true;
    }
    let (short, long) = if a.len() <= b.len() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    match long.len() - short.len() {
        0 => {
            let diff: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
            diff.len() == 1
                || (diff.len() == 2
                    && diff[1] == diff[0] + 1
                    && a[diff[0]] == b[diff[1]]
                    && a[diff[1]] == b[diff[0]])
        }
        1 => {
            let at = (0..short.len())
                .find(|&i| short[i] != long[i])
                .unwrap_or(short.len());
            short[at..] == long[at + 1..]
        }
        _ => false,
    }
}

/// Marks the matches of `terms` in `text` with `pre` and `post`, as a hit
/// of `tier` matched them ([`segments`]). `None` when nothing matches.
pub fn highlight(
    text: &str,
    terms: &[String],
    tier: Tier,
    pre: &str,
    post: &str,
    window: Option<usize>,
) -> Option<String> {
    let mut out = String::new();
    for (part, marked) in segments(text, terms, tier, window)? {
        if marked {
            out.push_str(pre);
            out.push_str(part);
            out.push_str(post);
        } else {
            out.push_str(part);
        }
    }
    Some(out)
}

/// `text` cut into pieces, the matched ones flagged: whole words (tier 1),
/// word starts (2), anywhere (3, terms of [`MIN_INFIX`]+ characters;
/// shorter ones at word starts), words within one edit (4). With `window`,
/// only about that many bytes around the first match, with `…` pieces
/// where cut. `None` when nothing matches.
pub fn segments<'t>(
    text: &'t str,
    terms: &[String],
    tier: Tier,
    window: Option<usize>,
) -> Option<Vec<(&'t str, bool)>> {
    let spans = match_spans(text, terms, tier);
    let first = spans.first()?.0;
    let (from, to) = match window {
        Some(w) if text.len() > w => {
            let mut from = first.saturating_sub(w / 4);
            while from > 0 && !text.is_char_boundary(from) {
                from -= 1;
            }
            // Start at a word.
            if from > 0
                && let Some(space) = text[from..first].find(char::is_whitespace)
            {
                from += space + 1;
            }
            let mut to = (from + w).min(text.len());
            while !text.is_char_boundary(to) {
                to -= 1;
            }
            if to < text.len()
                && let Some(space) = text[first.max(from)..to].rfind(char::is_whitespace)
            {
                to = first.max(from) + space;
            }
            (from, to)
        }
        _ => (0, text.len()),
    };
    let mut out = Vec::new();
    if from > 0 {
        out.push(("…", false));
    }
    let mut at = from;
    for &(s, e) in &spans {
        if s < at || e > to {
            continue;
        }
        if s > at {
            out.push((&text[at..s], false));
        }
        out.push((&text[s..e], true));
        at = e;
    }
    if to > at {
        out.push((&text[at..to], false));
    }
    if to < text.len() {
        out.push(("…", false));
    }
    Some(out)
}

/// Byte spans of `text` the terms match, in order, not overlapping.
fn match_spans(text: &str, terms: &[String], tier: Tier) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    // Words of the text with their byte spans.
    let mut words: Vec<(usize, usize)> = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                words.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        words.push((s, text.len()));
    }
    for &(s, e) in &words {
        let word = text[s..e].to_lowercase();
        for term in terms {
            let found = match tier {
                Tier::Word => (word == *term).then_some((s, e)),
                Tier::Fuzzy => (word == *term || within_one_edit(&word, term)).then_some((s, e)),
                Tier::Prefix => word
                    .starts_with(term.as_str())
                    .then(|| (s, prefix_end(&text[s..e], term.chars().count()) + s)),
                Tier::Infix if term.chars().count() < MIN_INFIX => word
                    .starts_with(term.as_str())
                    .then(|| (s, prefix_end(&text[s..e], term.chars().count()) + s)),
                Tier::Infix => infix(&text[s..e], term).map(|(a, b)| (s + a, s + b)),
            };
            if let Some(span) = found {
                spans.push(span);
                break;
            }
        }
    }
    spans
}

/// Byte length of the first `n` characters of `word`.
fn prefix_end(word: &str, n: usize) -> usize {
    word.char_indices().nth(n).map_or(word.len(), |(i, _)| i)
}

/// Byte span of `term` inside `word`, compared lower-cased character by
/// character (so spans stay on `word`'s own boundaries).
fn infix(word: &str, term: &str) -> Option<(usize, usize)> {
    let lower: Vec<(usize, char)> = word
        .char_indices()
        .map(|(i, c)| (i, c.to_lowercase().next().unwrap_or(c)))
        .collect();
    let t: Vec<char> = term.chars().collect();
    if t.is_empty() || t.len() > lower.len() {
        return None;
    }
    (0..=lower.len() - t.len()).find_map(|i| {
        lower[i..i + t.len()]
            .iter()
            .map(|(_, c)| *c)
            .eq(t.iter().copied())
            .then(|| {
                let end = lower.get(i + t.len()).map_or(word.len(), |(b, _)| *b);
                (lower[i].0, end)
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn terms_are_words_lower_cased_bounded_and_never_syntax() {
        assert_eq!(
            terms("Petstore-API  \"x\" OR y*"),
            t(&["petstore", "api", "x", "or", "y"])
        );
        assert_eq!(terms("a a a"), t(&["a"]));
        assert_eq!(terms(&"w ".repeat(100)).len(), 1);
        let many: String = (0..20).map(|i| format!("w{i} ")).collect();
        assert_eq!(terms(&many).len(), MAX_TERMS);
        assert_eq!(terms(&"x".repeat(500))[0].len(), MAX_TERM_CHARS);
        assert!(terms("\"*:^()'-+&|!<>").is_empty());
        assert_eq!(terms("Ünïcode Straße"), t(&["ünïcode", "straße"]));
    }

    #[test]
    fn one_edit_covers_each_kind_of_edit() {
        let v = one_edit("stars");
        for w in ["stras", "star", "starss", "stare", "tars", "sstars"] {
            assert!(v.contains(&w.to_owned()), "{w}");
            assert!(within_one_edit(w, "stars"), "{w}");
        }
        assert!(!v.contains(&"stars".to_owned()));
        assert!(!v.contains(&"stores".to_owned()));
        assert!(!within_one_edit("stores", "stars"));
        assert!(!within_one_edit("team", "tech"));
        assert!(one_edit("ab").is_empty());
        assert!(
            !one_edit("kit")
                .iter()
                .any(|v| v.chars().count() < MIN_INFIX)
        );
        assert!(one_edit(&"x".repeat(MAX_FUZZY_CHARS + 1)).is_empty());
    }

    #[test]
    fn highlight_marks_by_tier() {
        let text = "Techdocs for the team: biotech notes";
        let h = |terms: &[&str], tier| highlight(text, &t(terms), tier, "<", ">", None);
        assert_eq!(
            h(&["team"], Tier::Word).as_deref(),
            Some("Techdocs for the <team>: biotech notes")
        );
        assert_eq!(
            h(&["tech"], Tier::Prefix).as_deref(),
            Some("<Tech>docs for the team: biotech notes")
        );
        assert_eq!(
            h(&["tech"], Tier::Infix).as_deref(),
            Some("<Tech>docs for the team: bio<tech> notes")
        );
        assert_eq!(
            h(&["taem"], Tier::Fuzzy).as_deref(),
            Some("Techdocs for the <team>: biotech notes")
        );
        assert_eq!(h(&["nothing"], Tier::Word), None);
    }

    #[test]
    fn highlight_cuts_a_window_around_the_first_match() {
        let text = format!("{} needle {}", "lead ".repeat(100), "tail ".repeat(100));
        let out =
            highlight(&text, &t(&["needle"]), Tier::Word, "[", "]", Some(80)).unwrap_or_default();
        assert!(out.starts_with('…') && out.ends_with('…'), "{out}");
        assert!(out.contains("[needle]"), "{out}");
        assert!(out.chars().count() < 100, "{out}");
        let multi = "é".repeat(60) + " needle";
        let out = highlight(&multi, &t(&["needle"]), Tier::Word, "[", "]", Some(20));
        assert!(out.is_some_and(|o| o.contains("[needle]")));
    }

    #[test]
    fn entity_documents_carry_backstage_fields() {
        let doc = SearchDoc::for_entity(&serde_json::json!({
            "kind": "User", "metadata": {"name": "jdoe", "tags": ["x"], "description": "d"},
            "spec": {"profile": {"displayName": "Jane Doe", "email": "jane@example.com"}}
        }));
        assert_eq!(doc.key, "user:default/jdoe");
        assert_eq!(doc.entity_ref.as_deref(), Some("user:default/jdoe"));
        assert_eq!(doc.title, "jdoe");
        assert_eq!(doc.text, "d Jane Doe jane@example.com");
        assert_eq!(doc.location, "/catalog/default/user/jdoe");
        assert_eq!(doc.kind(), Some("User"));
        assert!(doc.names.contains('x'));
    }
}
