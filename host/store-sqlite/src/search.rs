//! The search index in `catalog.sqlite`, beside the entities, so catalog
//! writes update it in their own transaction and a reader's scope joins
//! the entities table inside the query.
//!
//! - `search_docs`: one row per document (title, names, text, fields).
//! - `search_words`: FTS5 over it, `unicode61` words with diacritics
//!   folded and prefix indexes of 2-4 characters (tiers 1, 2 and 4).
//! - `search_grams`: FTS5 `trigram` over it (tier 3: inside words).
//!
//! Both FTS tables are external-content tables kept by triggers, so a
//! document's text is stored once and every insert or delete of a
//! document updates both.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

use callboard_store::Result;
use callboard_store::search::{
    Counted, MAX_COUNT, MIN_INFIX, SearchDoc, SearchQuery, SearchResults, SearchStore, Tier,
    one_edit,
};
use rusqlite::{Connection, Transaction, params};

use crate::Res;
use crate::db::Db;
use crate::query::{Sql, push_predicate};

/// The catalog schema's search migration (see [`crate::catalog::MIGRATIONS`]).
/// Existing entities get their documents from their stored JSON, with the
/// fields [`SearchDoc::for_entity`] gives them (a merge patch drops the
/// missing ones).
pub(crate) const SEARCH_V4: &str = r#"
CREATE TABLE IF NOT EXISTS search_docs (
    id INTEGER PRIMARY KEY,
    grp TEXT NOT NULL,
    key TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    entity_ref TEXT,
    permission TEXT,
    title TEXT NOT NULL,
    names TEXT NOT NULL,
    text TEXT NOT NULL,
    location TEXT NOT NULL,
    fields TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS search_docs_grp ON search_docs (grp);
CREATE VIRTUAL TABLE IF NOT EXISTS search_words USING fts5 (
    title, names, text, content = 'search_docs', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3 4'
);
CREATE VIRTUAL TABLE IF NOT EXISTS search_grams USING fts5 (
    title, names, text, content = 'search_docs', content_rowid = 'id',
    tokenize = 'trigram remove_diacritics 1'
);
CREATE TRIGGER IF NOT EXISTS search_docs_insert AFTER INSERT ON search_docs BEGIN
    INSERT INTO search_words (rowid, title, names, text) VALUES (new.id, new.title, new.names, new.text);
    INSERT INTO search_grams (rowid, title, names, text) VALUES (new.id, new.title, new.names, new.text);
END;
CREATE TRIGGER IF NOT EXISTS search_docs_delete AFTER DELETE ON search_docs BEGIN
    INSERT INTO search_words (search_words, rowid, title, names, text)
        VALUES ('delete', old.id, old.title, old.names, old.text);
    INSERT INTO search_grams (search_grams, rowid, title, names, text)
        VALUES ('delete', old.id, old.title, old.names, old.text);
END;
INSERT OR IGNORE INTO search_docs (grp, key, type, entity_ref, title, names, text, location, fields)
SELECT 'entity:' || e.ref, e.ref, 'software-catalog', e.ref,
    coalesce(json_extract(e.body, '$.metadata.title'), json_extract(e.body, '$.metadata.name'), ''),
    trim(coalesce(json_extract(e.body, '$.metadata.name'), '') || ' ' || e.ref || ' ' ||
        coalesce((SELECT group_concat(t.value, ' ') FROM json_each(e.body, '$.metadata.tags') t
                  WHERE t.type = 'text'), '')),
    trim(coalesce(json_extract(e.body, '$.metadata.description'), '') || ' ' ||
        coalesce(json_extract(e.body, '$.spec.profile.displayName'), '') || ' ' ||
        coalesce(json_extract(e.body, '$.spec.profile.email'), '')),
    '/catalog/' || e.namespace || '/' || e.kind || '/' || coalesce(json_extract(e.body, '$.metadata.name'), e.name),
    json_patch('{}', json_object(
        'kind', json_extract(e.body, '$.kind'),
        'namespace', coalesce(json_extract(e.body, '$.metadata.namespace'), 'default'),
        'name', json_extract(e.body, '$.metadata.name'),
        'type', json_extract(e.body, '$.spec.type'),
        'componentType', json_extract(e.body, '$.spec.type'),
        'lifecycle', json_extract(e.body, '$.spec.lifecycle'),
        'owner', json_extract(e.body, '$.spec.owner')))
FROM entities e;
"#;

/// The words of the index, for the typo tier (an `fts5vocab` table: each
/// term probed by equality).
pub(crate) const SEARCH_VOCAB_V5: &str =
    "CREATE VIRTUAL TABLE IF NOT EXISTS search_vocab USING fts5vocab('search_words', 'row');";

/// Relevance weights of title, names and text.
const WEIGHTS: &str = "10.0, 6.0, 1.0";

pub(crate) struct SqliteSearch {
    db: Arc<Db>,
}

impl SqliteSearch {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

/// Replaces the documents of `group` with `docs` inside `tx`.
pub(crate) fn replace_group(tx: &Transaction<'_>, group: &str, docs: &[SearchDoc]) -> Res<()> {
    tx.prepare_cached("DELETE FROM search_docs WHERE grp = ?1")?
        .execute([group])?;
    let mut take_over = tx.prepare_cached("DELETE FROM search_docs WHERE key = ?1")?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO search_docs (grp, key, type, entity_ref, permission, title, names, text, location, fields)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for doc in docs {
        let mut doc = doc.clone();
        doc.bound();
        take_over.execute([&doc.key])?;
        let fields = serde_json::Value::Object(doc.fields).to_string();
        insert.execute(params![
            group,
            doc.key,
            doc.doc_type,
            doc.entity_ref,
            doc.permission,
            doc.title,
            doc.names,
            doc.text,
            doc.location,
            fields
        ])?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl SearchStore for SqliteSearch {
    async fn search(&self, query: &SearchQuery) -> Result<SearchResults> {
        let query = query.clone();
        self.db.read(move |conn| search(conn, &query)).await
    }

    async fn replace_group(&self, group: &str, docs: Vec<SearchDoc>) -> Result<()> {
        let group = group.to_owned();
        self.db
            .write(move |tx| replace_group(tx, &group, &docs))
            .await
    }

    async fn replace_groups(&self, groups: Vec<(String, Vec<SearchDoc>)>) -> Result<()> {
        self.db
            .write(move |tx| {
                for (group, docs) in &groups {
                    replace_group(tx, group, docs)?;
                }
                Ok(())
            })
            .await
    }

    async fn count_groups(&self, prefix: &str) -> Result<u64> {
        let pattern = format!("{}%", crate::query::escape_like(prefix));
        self.db
            .read(move |conn| {
                let n: i64 = conn
                    .prepare_cached(
                        "SELECT count(*) FROM search_docs WHERE grp LIKE ?1 ESCAPE '\\'",
                    )?
                    .query_row([pattern], |row| row.get(0))?;
                Ok(u64::try_from(n).unwrap_or(0))
            })
            .await
    }

    async fn remove_groups(&self, prefix: &str) -> Result<u64> {
        let pattern = format!("{}%", crate::query::escape_like(prefix));
        self.db
            .write(move |tx| {
                let n = tx
                    .prepare_cached("DELETE FROM search_docs WHERE grp LIKE ?1 ESCAPE '\\'")?
                    .execute([pattern])?;
                Ok(u64::try_from(n).unwrap_or(0))
            })
            .await
    }

    async fn counts(&self) -> Result<BTreeMap<String, u64>> {
        self.db
            .read(|conn| {
                let mut stmt =
                    conn.prepare_cached("SELECT type, count(*) FROM search_docs GROUP BY type")?;
                let rows =
                    stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
                let mut out = BTreeMap::new();
                for row in rows {
                    let (t, n) = row?;
                    out.insert(t, u64::try_from(n).unwrap_or(0));
                }
                Ok(out)
            })
            .await
    }
}

/// An FTS5 string literal.
fn quoted(term: &str) -> String {
    format!("\"{}\"", term.replace('"', "\"\""))
}

/// The match expressions of each tier for these terms.
struct Tiers {
    word: String,
    prefix: String,
    /// Trigram expression over the long terms, and a word-prefix expression
    /// over the short ones (both must hold).
    infix: Option<(String, Option<String>)>,
}

impl Tiers {
    fn new(terms: &[String]) -> Self {
        let join = |f: &dyn Fn(&String) -> String, items: &mut dyn Iterator<Item = &String>| {
            items.map(f).collect::<Vec<_>>().join(" AND ")
        };
        let (long, short): (Vec<&String>, Vec<&String>) =
            terms.iter().partition(|t| t.chars().count() >= MIN_INFIX);
        let prefix_of = |t: &String| format!("{}*", quoted(t));
        let infix = (!long.is_empty()).then(|| {
            (
                join(&|t| quoted(t), &mut long.iter().copied()),
                (!short.is_empty()).then(|| join(&prefix_of, &mut short.iter().copied())),
            )
        });
        Self {
            word: join(&|t| quoted(t), &mut terms.iter()),
            prefix: join(&prefix_of, &mut terms.iter()),
            infix,
        }
    }

    /// Every term within one edit of a word the index holds (short terms
    /// as prefixes); `known` keeps the variants that are words of the index.
    fn fuzzy(terms: &[String], known: &dyn Fn(Vec<String>) -> Res<Vec<String>>) -> Res<String> {
        let groups: Vec<String> = terms
            .iter()
            .map(|t| {
                let variants = known(one_edit(t)).unwrap_or_default();
                if variants.is_empty() {
                    return format!("{}*", quoted(t));
                }
                let mut g = String::from("(");
                g.push_str(&quoted(t));
                for v in variants {
                    g.push_str(" OR ");
                    g.push_str(&quoted(&v));
                }
                g.push(')');
                g
            })
            .collect();
        Ok(groups.join(" AND "))
    }
}

/// One tier's matches: a table-valued source of `(id, score)` rows.
struct Source {
    tier: Tier,
    /// `SELECT rowid AS id, <score> AS score FROM ... WHERE ... MATCH ?`.
    ranked: Sql,
    /// `SELECT rowid ...`: the same rows, unranked (for counting and
    /// exclusion).
    ids: Sql,
}

impl Source {
    fn new(tier: Tier, table: &str, expr: &str, short: Option<&str>) -> Self {
        let build = |columns: &str| {
            let mut sql = Sql::new();
            let _ = write!(
                sql.text,
                "SELECT {columns} FROM {table} WHERE {table} MATCH "
            );
            sql.param(expr.to_owned());
            if let Some(short) = short {
                // `+rowid`: a filter against the short terms' matches, read
                // once. A bare `rowid IN` is handed to the FTS table, which
                // then runs the whole trigram match once per listed row: at
                // 100k documents `service kit go` took 1.6 s that way.
                sql.text.push_str(
                    " AND +rowid IN (SELECT rowid FROM search_words WHERE search_words MATCH ",
                );
                sql.param(short.to_owned());
                sql.text.push(')');
            }
            sql
        };
        Self {
            tier,
            ranked: build(&format!("rowid AS id, bm25({table}, {WEIGHTS}) AS score")),
            ids: build("rowid"),
        }
    }
}

/// The tiers for `terms`, best first, and the superset tier's index (the
/// last one: every word or prefix match is also an infix match).
fn sources(terms: &[String]) -> Vec<Source> {
    let tiers = Tiers::new(terms);
    // Within the word and prefix tiers, matches in titles and names come
    // first: they outweigh text, and ranking them alone is cheap where a
    // common word matches most texts.
    let named = |expr: &str| format!("{{title names}} : ({expr})");
    let mut out = vec![
        Source::new(Tier::Word, "search_words", &tiers.word, None),
        Source::new(Tier::Word, "search_words", &named(&tiers.word), None),
        Source::new(Tier::Prefix, "search_words", &named(&tiers.prefix), None),
        Source::new(Tier::Prefix, "search_words", &tiers.prefix, None),
    ];
    // The page reads tier 1's named part first; `search` counts from the
    // whole tier 1 (index 1).
    out.swap(0, 1);
    if let Some((grams, short)) = tiers.infix {
        out.push(Source::new(
            Tier::Infix,
            "search_grams",
            &named(&grams),
            short.as_deref(),
        ));
        out.push(Source::new(
            Tier::Infix,
            "search_grams",
            &grams,
            short.as_deref(),
        ));
    }
    out
}

/// Appends the reader's scope, permissions and field filters (`kind`
/// and the types only when `with_facet_filters`) on alias `d`.
fn push_filters(sql: &mut Sql, q: &SearchQuery, with_facet_filters: bool) {
    for (field, values) in &q.filters {
        if values.is_empty() || (field == "kind" && !with_facet_filters) {
            continue;
        }
        sql.text.push_str(" AND lower(json_extract(d.fields, ");
        sql.param(format!("$.\"{field}\""));
        sql.text.push_str(")) IN (");
        sql.list(values);
        sql.text.push(')');
    }
    if with_facet_filters && !q.types.is_empty() {
        sql.text.push_str(" AND d.type IN (");
        sql.list(&q.types);
        sql.text.push(')');
    }
    if let Some(held) = &q.permissions {
        sql.text
            .push_str(" AND (d.permission IS NULL OR d.permission IN (");
        sql.list(held);
        sql.text.push_str("))");
    }
    if let Some(scope) = &q.scope {
        sql.text.push_str(
            " AND (d.entity_ref IS NULL OR EXISTS (SELECT 1 FROM entities e WHERE e.ref = d.entity_ref AND ",
        );
        push_predicate(sql, scope);
        sql.text.push_str("))");
    }
}

/// Appends `other`'s text and parameters to `sql`, renumbering `?N`.
fn append(sql: &mut Sql, other: &Sql) {
    let shift = sql.params.len();
    sql.text
        .push_str(&crate::query::renumber(&other.text, shift));
    sql.params.extend(other.params.iter().cloned());
}

/// The first `need` rows of the page in rank order: tier by tier, each
/// excluding what the tiers before it matched, so a common word fills the
/// page from the first tier and no tier ranks more than it must.
fn page(conn: &Connection, q: &SearchQuery, sources: &[Source]) -> Res<Vec<(i64, Tier)>> {
    let need = q.offset + q.limit;
    let mut out: Vec<(i64, Tier)> = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        if out.len() >= need {
            break;
        }
        let mut sql = Sql::new();
        sql.text.push_str("SELECT t.id FROM (");
        append(&mut sql, &source.ranked);
        sql.text
            .push_str(") t JOIN search_docs d ON d.id = t.id WHERE 1");
        for before in &sources[..i] {
            sql.text.push_str(" AND t.id NOT IN (");
            append(&mut sql, &before.ids);
            sql.text.push(')');
        }
        push_filters(&mut sql, q, true);
        let _ = write!(
            sql.text,
            " ORDER BY t.score, t.id LIMIT {}",
            need - out.len()
        );
        let mut stmt = conn.prepare_cached(&sql.text)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(sql.params), |r| {
            r.get::<_, i64>(0)
        })?;
        for id in rows {
            out.push((id?, source.tier));
        }
    }
    Ok(out)
}

/// The words of `candidates` the index holds (its vocabulary, one probe
/// each), so a typo's query names a handful of words, not hundreds.
fn vocabulary(conn: &Connection, candidates: Vec<String>) -> Res<Vec<String>> {
    if candidates.is_empty() {
        return Ok(candidates);
    }
    let mut stmt = conn.prepare_cached("SELECT 1 FROM search_vocab WHERE term = ?1")?;
    let mut out = Vec::new();
    for word in candidates {
        if stmt.exists([&word])? {
            out.push(word);
        }
    }
    Ok(out)
}

/// Up to [`MAX_COUNT`] + 1 documents of `superset` (every match; `None`:
/// every document), unordered and unranked, with every filter but the
/// type and kind filters, which the facets count without.
fn counted(conn: &Connection, q: &SearchQuery, superset: Option<&Sql>) -> Res<Vec<Counted>> {
    let mut sql = Sql::new();
    sql.text
        .push_str("SELECT d.type, lower(coalesce(json_extract(d.fields, '$.kind'), '')) FROM ");
    // Driven by the matches (a co-routine, no ordering): reading stops at
    // the limit, however many documents match.
    match superset {
        Some(ids) => {
            sql.text.push('(');
            append(&mut sql, ids);
            sql.text
                .push_str(") t CROSS JOIN search_docs d ON d.id = t.rowid WHERE 1");
        }
        None => sql.text.push_str("search_docs d WHERE 1"),
    }
    push_filters(&mut sql, q, false);
    let _ = write!(sql.text, " LIMIT {}", MAX_COUNT + 1);
    let mut stmt = conn.prepare_cached(&sql.text)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(sql.params), |r| {
        Ok(Counted {
            doc_type: r.get(0)?,
            kind: r.get(1)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every document in type and title order (an empty search), paged.
fn listing(conn: &Connection, q: &SearchQuery) -> Res<Vec<(i64, Tier)>> {
    let mut sql = Sql::new();
    sql.text.push_str("SELECT d.id FROM search_docs d WHERE 1");
    push_filters(&mut sql, q, true);
    let _ = write!(
        sql.text,
        " ORDER BY d.type, d.title, d.id LIMIT {} OFFSET {}",
        q.limit, q.offset
    );
    let mut stmt = conn.prepare_cached(&sql.text)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(sql.params), |r| {
        r.get::<_, i64>(0)
    })?;
    rows.map(|id| Ok((id?, Tier::Word))).collect()
}

fn search(conn: &Connection, q: &SearchQuery) -> Res<SearchResults> {
    let (page_ids, counted) = if q.terms.is_empty() {
        (listing(conn, q)?, counted(conn, q, None)?)
    } else {
        let tiers = sources(&q.terms);
        // The whole-word tier first: when it alone passes the count's cap,
        // the superset (every tier's matches) need not be read.
        let mut found = counted(conn, q, Some(&tiers[1].ids))?;
        if found.len() as u64 <= MAX_COUNT {
            found = counted(conn, q, Some(&tiers[tiers.len() - 1].ids))?;
        }
        if found.is_empty() {
            let known = |variants: Vec<String>| vocabulary(conn, variants);
            let fuzzy = vec![Source::new(
                Tier::Fuzzy,
                "search_words",
                &Tiers::fuzzy(&q.terms, &known)?,
                None,
            )];
            let found = counted(conn, q, Some(&fuzzy[0].ids))?;
            (skip(page(conn, q, &fuzzy)?, q.offset), found)
        } else {
            (skip(page(conn, q, &tiers)?, q.offset), found)
        }
    };
    let docs = load(
        conn,
        &page_ids.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
    )?;
    Ok(SearchResults::assemble(q, &counted, page_ids, docs))
}

fn skip(rows: Vec<(i64, Tier)>, n: usize) -> Vec<(i64, Tier)> {
    rows.into_iter().skip(n).collect()
}

/// The documents with these ids.
fn load(conn: &Connection, ids: &[i64]) -> Res<HashMap<i64, SearchDoc>> {
    let mut out = HashMap::with_capacity(ids.len());
    if ids.is_empty() {
        return Ok(out);
    }
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let mut stmt = conn.prepare(&format!(
        "SELECT id, type, key, entity_ref, permission, title, names, text, location, fields
         FROM search_docs WHERE id IN ({list})"
    ))?;
    let rows = stmt.query_map([], |r| {
        let fields: String = r.get(9)?;
        Ok((
            r.get::<_, i64>(0)?,
            SearchDoc {
                doc_type: r.get(1)?,
                key: r.get(2)?,
                entity_ref: r.get(3)?,
                permission: r.get(4)?,
                title: r.get(5)?,
                names: r.get(6)?,
                text: r.get(7)?,
                location: r.get(8)?,
                fields: serde_json::from_str(&fields).unwrap_or_default(),
            },
        ))
    })?;
    for row in rows {
        let (id, doc) = row?;
        out.insert(id, doc);
    }
    Ok(out)
}
