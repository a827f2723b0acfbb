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
    MAX_COUNT, MIN_INFIX, SearchDoc, SearchHit, SearchQuery, SearchResults, SearchStore, Tier,
    Total, one_edit,
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

    /// Every term within one edit of a word (short terms as prefixes).
    fn fuzzy(terms: &[String]) -> String {
        let groups: Vec<String> = terms
            .iter()
            .map(|t| {
                let variants = one_edit(t);
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
        groups.join(" AND ")
    }
}

/// One matching document before paging.
struct Candidate {
    id: i64,
    tier: Tier,
    doc_type: String,
    kind: String,
}

fn search(conn: &Connection, q: &SearchQuery) -> Res<SearchResults> {
    let mut candidates = if q.terms.is_empty() {
        candidates(conn, q, None)?
    } else {
        let tiers = Tiers::new(&q.terms);
        let mut sql = Sql::new();
        sql.text
            .push_str("WITH m (id, tier, score) AS MATERIALIZED (");
        let _ = write!(
            sql.text,
            "SELECT rowid, 1, bm25(search_words, {WEIGHTS}) FROM search_words WHERE search_words MATCH "
        );
        sql.param(tiers.word);
        let _ = write!(
            sql.text,
            " UNION ALL SELECT rowid, 2, bm25(search_words, {WEIGHTS}) FROM search_words WHERE search_words MATCH "
        );
        sql.param(tiers.prefix);
        if let Some((grams, short)) = tiers.infix {
            let _ = write!(
                sql.text,
                " UNION ALL SELECT rowid, 3, bm25(search_grams, {WEIGHTS}) FROM search_grams WHERE search_grams MATCH "
            );
            sql.param(grams);
            if let Some(short) = short {
                sql.text.push_str(
                    " AND rowid IN (SELECT rowid FROM search_words WHERE search_words MATCH ",
                );
                sql.param(short);
                sql.text.push(')');
            }
        }
        sql.text.push(')');
        let found = candidates(conn, q, Some(sql))?;
        if found.is_empty() {
            let mut sql = Sql::new();
            let _ = write!(
                sql.text,
                "WITH m (id, tier, score) AS MATERIALIZED (SELECT rowid, 4, bm25(search_words, {WEIGHTS}) FROM search_words WHERE search_words MATCH "
            );
            sql.param(Tiers::fuzzy(&q.terms));
            sql.text.push(')');
            candidates(conn, q, Some(sql))?
        } else {
            found
        }
    };
    let capped = candidates.len() as u64 > MAX_COUNT;
    candidates.truncate(usize::try_from(MAX_COUNT).unwrap_or(usize::MAX));
    // Facets ignore their own filter; everything else applies to both.
    let kind_filter = filter_values(q, "kind");
    let mut types: HashMap<String, u64> = HashMap::new();
    let mut kinds: HashMap<String, u64> = HashMap::new();
    let mut kept = Vec::new();
    for c in candidates {
        let type_ok = q.types.is_empty() || q.types.contains(&c.doc_type);
        let kind_ok = kind_filter.is_none_or(|values| values.contains(&c.kind));
        if kind_ok {
            *types.entry(c.doc_type.clone()).or_default() += 1;
        }
        if type_ok && !c.kind.is_empty() {
            *kinds.entry(c.kind.clone()).or_default() += 1;
        }
        if type_ok && kind_ok {
            kept.push((c.id, c.tier));
        }
    }
    let total = Total {
        count: kept.len() as u64,
        capped,
    };
    let page: Vec<(i64, Tier)> = kept.into_iter().skip(q.offset).take(q.limit).collect();
    let docs = load(conn, &page.iter().map(|(id, _)| *id).collect::<Vec<_>>())?;
    let hits = page
        .into_iter()
        .filter_map(|(id, tier)| {
            docs.get(&id).map(|doc| SearchHit {
                doc: doc.clone(),
                tier,
            })
        })
        .collect();
    Ok(SearchResults {
        hits,
        total,
        types: sorted(types),
        kinds: sorted(kinds),
        corrections: Vec::new(),
    })
}

fn sorted(counts: HashMap<String, u64>) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

/// The lower-cased values of the filter on `field`, if any.
fn filter_values<'q>(q: &'q SearchQuery, field: &str) -> Option<&'q Vec<String>> {
    q.filters.iter().find(|(f, _)| f == field).map(|(_, v)| v)
}

/// Matching documents in rank order (at most [`MAX_COUNT`] + 1), with the
/// scope, permissions and field filters applied, but not the type and kind
/// filters, which the facets count without. `matches` is a `WITH m (id,
/// tier, score) AS (...)` prefix; `None` lists every document.
fn candidates(conn: &Connection, q: &SearchQuery, matches: Option<Sql>) -> Res<Vec<Candidate>> {
    let mut sql = matches.unwrap_or_else(Sql::new);
    let listing = sql.text.is_empty();
    if listing {
        sql.text.push_str(
            "SELECT d.id, 1, d.type, lower(coalesce(json_extract(d.fields, '$.kind'), '')) FROM search_docs d WHERE 1",
        );
    } else {
        sql.text.push_str(
            ", best AS (SELECT id, min(tier) AS tier, min(score) AS score FROM m GROUP BY id)
             SELECT d.id, best.tier, d.type, lower(coalesce(json_extract(d.fields, '$.kind'), ''))
             FROM best JOIN search_docs d ON d.id = best.id WHERE 1",
        );
    }
    for (field, values) in &q.filters {
        if field == "kind" || values.is_empty() {
            continue;
        }
        sql.text.push_str(" AND lower(json_extract(d.fields, ");
        sql.param(format!("$.\"{field}\""));
        sql.text.push_str(")) IN (");
        sql.list(values);
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
        push_predicate(&mut sql, scope);
        sql.text.push_str("))");
    }
    if listing {
        sql.text.push_str(" ORDER BY d.type, d.title, d.id");
    } else {
        sql.text.push_str(" ORDER BY best.tier, best.score, d.id");
    }
    let _ = write!(sql.text, " LIMIT {}", MAX_COUNT + 1);
    let mut stmt = conn.prepare_cached(&sql.text)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(sql.params), |r| {
        Ok(Candidate {
            id: r.get(0)?,
            tier: Tier::from_number(r.get(1)?),
            doc_type: r.get(2)?,
            kind: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
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
