//! The search index in PostgreSQL, beside the entities, so catalog writes
//! update it in their own transaction and a reader's scope probes the
//! entities table inside the query.
//!
//! - `search_docs`: one row per document, with two stored generated
//!   columns: `tsv`, the words of the title (weight A), names (B) and text
//!   (D) for tiers 1, 2 and 4 (GIN index), and `folded`, the three
//!   lower-cased and folded, for tier 3's `LIKE '%term%'` (a `pg_trgm` GIN
//!   index where the extension can be installed, see
//!   [`crate::schema`]); and the same two over the title and names alone
//!   (`named` and `folded_named`), which the first tier of each kind of
//!   match ranks on its own; `named` also in the narrow `search_named`
//!   table with its own GIN index, for ranking without visiting wide rows.
//! - `callboard_fold(text)`: lower case without diacritics, through the
//!   `unaccent` extension when it can be installed (wrapped in an
//!   `IMMUTABLE` function, as generated columns need), else through a
//!   built-in table of Latin-1 and Latin Extended-A letters. The migration
//!   picks one for good: the stored columns and the queries always agree.
//! - `callboard_words(text)`: folded, ASCII punctuation turned into spaces,
//!   so the text search parser sees the words SQLite's `unicode61`
//!   tokenizer sees (no e-mail, host, path or version tokens; it still
//!   splits at other punctuation itself). Case folding of non-ASCII
//!   letters follows the database's `LC_CTYPE` (any UTF-8 locale folds
//!   them; the `C` locale folds ASCII only).
//!
//! Query terms go through the same folding (one round trip, only for terms
//! that are not plain ASCII), then into `to_tsquery('simple', $n)` and
//! `LIKE $n` parameters, never into the SQL text.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

use callboard_store::search::{
    Counted, MAX_COUNT, MIN_INFIX, SearchDoc, SearchQuery, SearchResults, SearchStore, Tier,
    one_edit,
};
use callboard_store::{Result, StoreError};
use serde_json::{Map, Value};
use tokio_postgres::Client;
use tokio_postgres::types::{ToSql, Type};

use crate::Db;
use crate::error::pg;
use crate::query::{Param, Sql, escape_like, push_predicate};

/// The catalog schema's search migration (see [`crate::schema::STORES`]):
/// the folding functions, the table, and the documents of existing
/// entities from their stored JSON, with the fields
/// [`SearchDoc::for_entity`] gives them (a body that is not valid `jsonb`
/// gets its document at its next write).
pub(crate) const CATALOG_V5: &str = r#"
DO $migration$
DECLARE
    own text := quote_ident(current_schema());
    dict text;
BEGIN
    BEGIN
        CREATE EXTENSION IF NOT EXISTS unaccent;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'unaccent is not available (%): search folds Latin-1 and Latin Extended-A diacritics only', SQLERRM;
    END;
    SELECT quote_ident(n.nspname) INTO dict
    FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace
    WHERE x.extname = 'unaccent';
    IF dict IS NOT NULL THEN
        EXECUTE format(
            'CREATE FUNCTION %s.callboard_fold(text) RETURNS text
             LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
             AS %L',
            own,
            format('SELECT lower(%s.unaccent(%L::regdictionary, $1))', dict, dict || '.unaccent'));
    ELSE
        EXECUTE format(
            'CREATE FUNCTION %s.callboard_fold(text) RETURNS text
             LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
             AS %L',
            own,
            $body$SELECT lower(replace(replace(replace(replace(replace(replace(translate($1,
                'ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚÛÜÝàáâãäåçèéêëìíîïðñòóôõöøùúûüýÿĀāĂăĄąĆćĈĉĊċČčĎďĐđĒēĔĕĖėĘęĚěĜĝĞğĠġĢģĤĥĦħĨĩĪīĬĭĮįİıĴĵĶķĹĺĻļĽľĿŀŁłŃńŅņŇňŌōŎŏŐőŔŕŖŗŘřŚśŜŝŞşŠšŢţŤťŦŧŨũŪūŬŭŮůŰűŲųŴŵŶŷŸŹźŻżŽž',
                'AAAAAACEEEEIIIIDNOOOOOOUUUUYaaaaaaceeeeiiiidnoooooouuuuyyAaAaAaCcCcCcCcDdDdEeEeEeEeEeGgGgGgGgHhHhIiIiIiIiIiJjKkLlLlLlLlLlNnNnNnOoOoOoRrRrRrSsSsSsSsTtTtTtUuUuUuUuUuUuWwYyYZzZzZz'),
                'Æ', 'AE'), 'æ', 'ae'), 'Œ', 'OE'), 'œ', 'oe'), 'ß', 'ss'), 'ẞ', 'SS'))$body$);
    END IF;
    -- Words for the text search parser: ASCII punctuation becomes spaces,
    -- so e-mails, paths, versions and refs split into their words as the
    -- query's terms do (the parser splits at other punctuation itself).
    EXECUTE format(
        'CREATE FUNCTION %s.callboard_words(text) RETURNS text
         LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
         AS %L',
        own,
        format('SELECT regexp_replace(%s.callboard_fold($1), %L, %L, %L)',
            own, '[^0-9A-Za-z\u0080-\U0010FFFF]+', ' ', 'g'));
END
$migration$;

CREATE TABLE search_docs (
    id bigserial PRIMARY KEY,
    grp text COLLATE "C" NOT NULL,
    key text COLLATE "C" NOT NULL UNIQUE,
    type text COLLATE "C" NOT NULL,
    entity_ref text COLLATE "C",
    permission text COLLATE "C",
    title text COLLATE "C" NOT NULL,
    names text NOT NULL,
    text text NOT NULL,
    location text NOT NULL,
    fields jsonb NOT NULL,
    tsv tsvector NOT NULL GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', callboard_words(title)), 'A') ||
        setweight(to_tsvector('simple', callboard_words(names)), 'B') ||
        setweight(to_tsvector('simple', callboard_words(text)), 'D')) STORED,
    folded text NOT NULL GENERATED ALWAYS AS (
        callboard_fold(title || ' ' || names || ' ' || text)) STORED
);
CREATE INDEX search_docs_grp ON search_docs (grp);
CREATE INDEX search_docs_tsv ON search_docs USING gin (tsv);

CREATE FUNCTION pg_temp.cb_json(body text) RETURNS jsonb LANGUAGE plpgsql AS $f$
BEGIN
    RETURN body::jsonb;
EXCEPTION WHEN OTHERS THEN
    RETURN NULL;
END
$f$;
CREATE FUNCTION pg_temp.cb_str(j jsonb) RETURNS text LANGUAGE sql IMMUTABLE AS $f$
    SELECT CASE WHEN jsonb_typeof(j) = 'string' THEN j #>> '{}' END
$f$;
CREATE FUNCTION pg_temp.cb_join(a text, b text) RETURNS text LANGUAGE sql IMMUTABLE AS $f$
    SELECT CASE WHEN b IS NULL THEN a WHEN a = '' THEN b ELSE a || ' ' || b END
$f$;
CREATE FUNCTION pg_temp.cb_cut(s text, n int) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $f$
DECLARE
    lo int := 0;
    hi int := n;
    mid int;
BEGIN
    IF octet_length(s) <= n THEN
        RETURN s;
    END IF;
    WHILE lo < hi LOOP
        mid := (lo + hi + 1) / 2;
        IF octet_length(left(s, mid)) <= n THEN lo := mid; ELSE hi := mid - 1; END IF;
    END LOOP;
    RETURN left(s, lo);
END
$f$;
INSERT INTO search_docs (grp, key, type, entity_ref, title, names, text, location, fields)
SELECT 'entity:' || x.ref, x.ref, 'software-catalog', x.ref,
    pg_temp.cb_cut(coalesce(x.title, x.name, ''), 1024),
    pg_temp.cb_cut(concat_ws(' ', coalesce(x.name, ''), x.ref, x.tags), 4096),
    pg_temp.cb_cut(pg_temp.cb_join(pg_temp.cb_join(coalesce(x.description, ''), x.display_name), x.email), 16384),
    '/catalog/' || lower(x.namespace) || '/' || lower(coalesce(x.kind, '')) || '/' || coalesce(x.name, ''),
    jsonb_strip_nulls(jsonb_build_object(
        'kind', nullif(x.kind, ''), 'namespace', nullif(x.namespace, ''), 'name', nullif(x.name, ''),
        'type', nullif(x.type, ''), 'componentType', nullif(x.type, ''),
        'lifecycle', nullif(x.lifecycle, ''), 'owner', nullif(x.owner, '')))
FROM (
    SELECT e.id, e.ref,
        pg_temp.cb_str(b -> 'kind') AS kind,
        coalesce(pg_temp.cb_str(b #> '{metadata,namespace}'), 'default') AS namespace,
        pg_temp.cb_str(b #> '{metadata,name}') AS name,
        pg_temp.cb_str(b #> '{metadata,title}') AS title,
        pg_temp.cb_str(b #> '{metadata,description}') AS description,
        pg_temp.cb_str(b #> '{spec,profile,displayName}') AS display_name,
        pg_temp.cb_str(b #> '{spec,profile,email}') AS email,
        pg_temp.cb_str(b #> '{spec,type}') AS type,
        pg_temp.cb_str(b #> '{spec,lifecycle}') AS lifecycle,
        pg_temp.cb_str(b #> '{spec,owner}') AS owner,
        (SELECT string_agg(t #>> '{}', ' ' ORDER BY n)
         FROM jsonb_array_elements(CASE WHEN jsonb_typeof(b #> '{metadata,tags}') = 'array'
                                        THEN b #> '{metadata,tags}' ELSE '[]' END)
              WITH ORDINALITY AS a(t, n)
         WHERE jsonb_typeof(t) = 'string') AS tags
    FROM entities e, pg_temp.cb_json(e.body) AS b
    WHERE b IS NOT NULL
) x
ORDER BY x.id
ON CONFLICT (key) DO NOTHING;
DROP FUNCTION pg_temp.cb_json(text), pg_temp.cb_str(jsonb), pg_temp.cb_join(text, text), pg_temp.cb_cut(text, int);
"#;

/// The title and names apart: `named` (their words) and `folded_named`
/// (folded) on each document, and `search_named`, a narrow copy of
/// `named` by id with its own GIN index, kept by a trigger. Ranking a
/// common word's thousands of title and name matches reads that narrow
/// table (18 MB at 150,000 documents) instead of visiting as many rows of
/// `search_docs` (ten times that), so a page of a common word costs a third.
pub(crate) const CATALOG_V6: &str = r#"
ALTER TABLE search_docs
    ADD COLUMN named tsvector NOT NULL GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', callboard_words(title)), 'A') ||
        setweight(to_tsvector('simple', callboard_words(names)), 'B')) STORED,
    ADD COLUMN folded_named text NOT NULL GENERATED ALWAYS AS (
        callboard_fold(title || ' ' || names)) STORED;
CREATE TABLE search_named (
    id bigint PRIMARY KEY REFERENCES search_docs (id) ON DELETE CASCADE,
    named tsvector NOT NULL
);
INSERT INTO search_named (id, named) SELECT id, named FROM search_docs;
CREATE INDEX search_named_words ON search_named USING gin (named);
CREATE FUNCTION search_named_keep() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    INSERT INTO search_named (id, named) VALUES (NEW.id, NEW.named)
    ON CONFLICT (id) DO UPDATE SET named = EXCLUDED.named;
    RETURN NULL;
END
$f$;
CREATE TRIGGER search_named_keep AFTER INSERT OR UPDATE OF title, names ON search_docs
    FOR EACH ROW EXECUTE FUNCTION search_named_keep();
"#;

/// Relevance weights of text (D), unused (C), names (B) and title (A):
/// the ratios of SQLite's `bm25` weights (10, 6, 1).
const WEIGHTS: &str = "'{0.1, 0.2, 0.6, 1.0}'::float4[]";
/// `ts_rank` normalisation: divide by 1 + log(document length), as `bm25`
/// favours short documents.
const NORMALIZATION: i32 = 1;

pub(crate) struct PgSearch {
    db: Arc<Db>,
}

impl PgSearch {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

/// PostgreSQL text cannot hold NUL characters.
fn clean(s: &str) -> String {
    s.replace('\0', "")
}

/// A JSON value without NUL characters (`jsonb` refuses `\u0000`).
fn clean_value(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(clean(s)),
        Value::Array(items) => Value::Array(items.iter().map(clean_value).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (clean(k), clean_value(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Replaces the documents of the groups `clear` with `docs` (each with its
/// group) inside the caller's transaction. A key another group holds is
/// taken over; of equal keys in `docs`, the last wins (SQLite deletes by
/// key before each insert).
pub(crate) async fn write_docs(
    client: &Client,
    clear: &[String],
    docs: &[(String, &SearchDoc)],
) -> Result<()> {
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(docs.len());
    for (i, (_, doc)) in docs.iter().enumerate() {
        last.insert(doc.key.as_str(), i);
    }
    let n = last.len();
    let mut groups = Vec::with_capacity(n);
    let mut keys = Vec::with_capacity(n);
    let mut types = Vec::with_capacity(n);
    let mut refs: Vec<Option<String>> = Vec::with_capacity(n);
    let mut permissions: Vec<Option<String>> = Vec::with_capacity(n);
    let mut titles = Vec::with_capacity(n);
    let mut names = Vec::with_capacity(n);
    let mut texts = Vec::with_capacity(n);
    let mut locations = Vec::with_capacity(n);
    let mut fields = Vec::with_capacity(n);
    for (i, (group, doc)) in docs.iter().enumerate() {
        if last.get(doc.key.as_str()) != Some(&i) {
            continue;
        }
        let mut doc = (*doc).clone();
        doc.bound();
        groups.push(clean(group));
        keys.push(clean(&doc.key));
        types.push(clean(&doc.doc_type));
        refs.push(doc.entity_ref.as_deref().map(clean));
        permissions.push(doc.permission.as_deref().map(clean));
        titles.push(clean(&doc.title));
        names.push(clean(&doc.names));
        texts.push(clean(&doc.text));
        locations.push(clean(&doc.location));
        fields.push(clean_value(&Value::Object(doc.fields)).to_string());
    }
    let clear: Vec<String> = clear.iter().map(|g| clean(g)).collect();
    let delete = async {
        if clear.is_empty() {
            return Ok(Vec::new());
        }
        client
            .query_typed(
                "DELETE FROM search_docs WHERE grp = ANY($1)",
                &[(&clear, Type::TEXT_ARRAY)],
            )
            .await
    };
    let insert = async {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let params: [(&(dyn ToSql + Sync), Type); 10] = [
            (&groups, Type::TEXT_ARRAY),
            (&keys, Type::TEXT_ARRAY),
            (&types, Type::TEXT_ARRAY),
            (&refs, Type::TEXT_ARRAY),
            (&permissions, Type::TEXT_ARRAY),
            (&titles, Type::TEXT_ARRAY),
            (&names, Type::TEXT_ARRAY),
            (&texts, Type::TEXT_ARRAY),
            (&locations, Type::TEXT_ARRAY),
            (&fields, Type::TEXT_ARRAY),
        ];
        // A key another transaction inserts meanwhile is taken over too
        // (instead of failing on the unique index).
        client
            .query_typed(
                "INSERT INTO search_docs (grp, key, type, entity_ref, permission, title, names, text,
                    location, fields)
                 SELECT u.grp, u.key, u.type, u.entity_ref, u.permission, u.title, u.names, u.text,
                    u.location, u.fields::jsonb
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                             $7::text[], $8::text[], $9::text[], $10::text[]) WITH ORDINALITY
                      AS u(grp, key, type, entity_ref, permission, title, names, text, location,
                           fields, ord)
                 ORDER BY u.ord
                 ON CONFLICT (key) DO UPDATE SET grp = EXCLUDED.grp, type = EXCLUDED.type,
                    entity_ref = EXCLUDED.entity_ref, permission = EXCLUDED.permission,
                    title = EXCLUDED.title, names = EXCLUDED.names, text = EXCLUDED.text,
                    location = EXCLUDED.location, fields = EXCLUDED.fields",
                &params,
            )
            .await
    };
    // Pipelined, in order: the delete reaches the server first.
    let (deleted, inserted) = tokio::join!(delete, insert);
    deleted.map_err(|e| pg(&e))?;
    inserted.map_err(|e| pg(&e))?;
    Ok(())
}

#[async_trait::async_trait]
impl SearchStore for PgSearch {
    async fn search(&self, query: &SearchQuery) -> Result<SearchResults> {
        let client = self.db.get().await?;
        search(&client, query).await
    }

    async fn replace_group(&self, group: &str, docs: Vec<SearchDoc>) -> Result<()> {
        let mut client = self.db.get().await?;
        let tx = client.transaction().await.map_err(|e| pg(&e))?;
        let rows: Vec<(String, &SearchDoc)> = docs.iter().map(|d| (group.to_owned(), d)).collect();
        write_docs(tx.client(), &[group.to_owned()], &rows).await?;
        tx.commit().await.map_err(|e| pg(&e))
    }

    async fn replace_groups(&self, groups: Vec<(String, Vec<SearchDoc>)>) -> Result<()> {
        let mut client = self.db.get().await?;
        let tx = client.transaction().await.map_err(|e| pg(&e))?;
        let clear: Vec<String> = groups.iter().map(|(g, _)| g.clone()).collect();
        let rows: Vec<(String, &SearchDoc)> = groups
            .iter()
            .flat_map(|(g, docs)| docs.iter().map(move |d| (g.clone(), d)))
            .collect();
        write_docs(tx.client(), &clear, &rows).await?;
        tx.commit().await.map_err(|e| pg(&e))
    }

    async fn count_groups(&self, prefix: &str) -> Result<u64> {
        let client = self.db.get().await?;
        let pattern = format!("{}%", escape_like(&clean(prefix)));
        let row = client
            .query_one(
                "SELECT count(*) FROM search_docs WHERE grp LIKE $1",
                &[&pattern],
            )
            .await
            .map_err(|e| pg(&e))?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }

    async fn remove_groups(&self, prefix: &str) -> Result<u64> {
        let client = self.db.get().await?;
        let pattern = format!("{}%", escape_like(&clean(prefix)));
        client
            .execute("DELETE FROM search_docs WHERE grp LIKE $1", &[&pattern])
            .await
            .map_err(|e| pg(&e))
    }

    async fn counts(&self) -> Result<BTreeMap<String, u64>> {
        let client = self.db.get().await?;
        let rows = client
            .query("SELECT type, count(*) FROM search_docs GROUP BY type", &[])
            .await
            .map_err(|e| pg(&e))?;
        let mut out = BTreeMap::new();
        for (t, n) in crate::error::pairs::<String, i64>(&rows)? {
            out.insert(t, u64::try_from(n).unwrap_or(0));
        }
        Ok(out)
    }
}

/// A lexeme of a `tsquery`, quoted (the words are letters and digits, but
/// nothing is left to chance).
fn lexeme(word: &str) -> String {
    format!("'{}'", word.replace('\\', "\\\\").replace('\'', "''"))
}

/// The terms as the index folds them: lower case, diacritics removed, split
/// where the index splits. Plain ASCII terms are already folded; others
/// ask the database ([`CATALOG_V5`]'s `callboard_words`).
async fn fold(client: &Client, terms: &[String]) -> Result<Vec<String>> {
    let folded: Vec<String> = if terms.iter().all(|t| t.is_ascii()) {
        terms.to_vec()
    } else {
        let rows = client
            .query_typed(
                "SELECT coalesce(callboard_words(t), '')
                 FROM unnest($1::text[]) WITH ORDINALITY AS u(t, n) ORDER BY n",
                &[(&terms, Type::TEXT_ARRAY)],
            )
            .await
            .map_err(|e| pg(&e))?;
        rows.iter()
            .map(|r| r.try_get::<_, String>(0).map_err(|e| pg(&e)))
            .collect::<Result<_>>()?
    };
    let mut words: Vec<String> = Vec::new();
    for word in folded.iter().flat_map(|t| t.split_whitespace()) {
        if !words.iter().any(|w| w == word) {
            words.push(word.to_owned());
        }
    }
    Ok(words)
}

/// One tier of matches: a predicate on `search_docs d` and the score that
/// orders the tier (higher first; empty: document order).
struct Level {
    tier: Tier,
    cond: String,
    score: String,
    /// `cond` and `score` are on `search_named n`, not `search_docs d`.
    narrow: bool,
}

/// Builds the tiers of one search, binding their parameters in the given
/// statement (each statement binds its own).
type Build<'a> = dyn Fn(&mut Sql) -> Vec<Level> + Sync + 'a;

/// The tiers for these folded words, best first, their parameters bound in
/// `sql`: whole words in titles and names, whole words, prefixes in titles
/// and names, prefixes, infixes in titles and names, infixes. Each tier's
/// rows exclude the tiers before it; the last holds every match (every word
/// or prefix match is also an infix match). Ranking a common word's
/// title and name matches alone is cheap where ranking every text that
/// holds it is not.
fn tiers(sql: &mut Sql, words: &[String]) -> Vec<Level> {
    let word = tsquery(sql, join(words.iter().map(|w| lexeme(w))));
    let prefix = tsquery(sql, join(words.iter().map(|w| prefix_of(w))));
    // Each query over the title and names first, then over everything.
    let mut out = Vec::new();
    for (tier, query) in [(Tier::Word, &word), (Tier::Prefix, &prefix)] {
        // A named tier ranks on the title and names alone, from the
        // narrow table: most of a document's bytes are its text, and
        // ranking thousands of title matches of a common word over whole
        // rows is what this tier exists to avoid.
        for (column, narrow) in [("n.named", true), ("d.tsv", false)] {
            out.push(Level {
                tier,
                cond: format!("{column} @@ {query}"),
                score: format!("ts_rank({WEIGHTS}, {column}, {query}, {NORMALIZATION})"),
                narrow,
            });
        }
    }
    let (long, short): (Vec<&String>, Vec<&String>) =
        words.iter().partition(|w| w.chars().count() >= MIN_INFIX);
    if long.is_empty() {
        return out;
    }
    let patterns: Vec<String> = long
        .iter()
        .map(|w| sql.bind(Param::Text(format!("%{}%", escape_like(w)))))
        .collect();
    let all = |column: &str| {
        patterns
            .iter()
            .map(|p| format!("d.{column} LIKE {p}"))
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    let mut infix = all("folded");
    if !short.is_empty() {
        let short = tsquery(sql, join(short.iter().map(|w| prefix_of(w))));
        let _ = write!(infix, " AND d.tsv @@ {short}");
    }
    // Within the named infix tier, a title outweighs names.
    let named_score = patterns
        .iter()
        .map(|p| format!("CASE WHEN callboard_fold(d.title) LIKE {p} THEN 1.0 ELSE 0.6 END"))
        .collect::<Vec<_>>()
        .join(" + ");
    out.push(Level {
        tier: Tier::Infix,
        cond: format!("({infix} AND {})", all("folded_named")),
        score: named_score,
        narrow: false,
    });
    out.push(Level {
        tier: Tier::Infix,
        cond: format!("({} OR ({infix}))", out[3].cond),
        score: String::new(),
        narrow: false,
    });
    out
}

/// The first `need` rows of the page in rank order: tier by tier, so a
/// common word fills the page from the first tier and no tier ranks more
/// than it must. Each tier excludes the rows the tiers before it gave: a
/// tier that gave fewer than it was asked for gave every row it holds
/// that passes the filters, so excluding those ids excludes the earlier
/// tiers exactly, without evaluating their conditions again.
async fn page(client: &Client, q: &SearchQuery, build: &Build<'_>) -> Result<Vec<(i64, Tier)>> {
    let need = q.offset + q.limit;
    let mut out: Vec<(i64, Tier)> = Vec::new();
    let count = build(&mut Sql::default()).len();
    let filtered = has_filters(q);
    for i in 0..count {
        if out.len() >= need {
            break;
        }
        let mut sql = Sql::default();
        let tiers = build(&mut sql);
        let tier = &tiers[i];
        let (id, from) = match (tier.narrow, filtered) {
            (false, _) => ("d.id", "search_docs d"),
            (true, false) => ("n.id", "search_named n"),
            (true, true) => ("n.id", "search_named n JOIN search_docs d ON d.id = n.id"),
        };
        let _ = write!(sql.text, "SELECT {id} FROM {from} WHERE {}", tier.cond);
        if !out.is_empty() {
            let seen = sql.bind(Param::Ints(out.iter().map(|(id, _)| *id).collect()));
            let _ = write!(sql.text, " AND NOT ({id} = ANY({seen}))");
        }
        push_filters(&mut sql, q, true);
        sql.text.push_str(" ORDER BY ");
        if !tier.score.is_empty() {
            let _ = write!(sql.text, "{} DESC, ", tier.score);
        }
        // `+ 0`: walking the primary key in order, filtering every row
        // until the limit, is what the planner would otherwise pick for a
        // tier in document order, and it reads the whole table when the
        // tier is small.
        let _ = write!(sql.text, "{id} + 0 LIMIT {}", need - out.len());
        for row in query(client, &sql).await? {
            out.push((row.try_get(0).map_err(|e| pg(&e))?, tier.tier));
        }
    }
    Ok(out.into_iter().skip(q.offset).collect())
}

/// Whether anything but the terms narrows the search.
fn has_filters(q: &SearchQuery) -> bool {
    q.filters.iter().any(|(_, values)| !values.is_empty())
        || !q.types.is_empty()
        || q.permissions.is_some()
        || q.scope.is_some()
}

async fn query(client: &Client, sql: &Sql) -> Result<Vec<tokio_postgres::Row>> {
    client
        .query_typed(&sql.text, &sql.typed())
        .await
        .map_err(|e| pg(&e))
}

/// Appends the reader's scope, permissions and field filters (`kind` and
/// the types only when `with_facet_filters`) on alias `d`.
fn push_filters(sql: &mut Sql, q: &SearchQuery, with_facet_filters: bool) {
    for (field, values) in &q.filters {
        if values.is_empty() || (field == "kind" && !with_facet_filters) {
            continue;
        }
        if field == "kind" {
            let values = sql.bind(Param::Texts(values.clone()));
            let _ = write!(sql.text, " AND {KIND} = ANY({values})");
            continue;
        }
        let field = sql.bind(Param::Text(field.clone()));
        let values = sql.bind(Param::Texts(values.clone()));
        let _ = write!(sql.text, " AND lower(d.fields ->> {field}) = ANY({values})");
    }
    if with_facet_filters && !q.types.is_empty() {
        let types = sql.bind(Param::Texts(q.types.clone()));
        let _ = write!(sql.text, " AND d.type = ANY({types})");
    }
    if let Some(held) = &q.permissions {
        let held = sql.bind(Param::Texts(held.clone()));
        let _ = write!(
            sql.text,
            " AND (d.permission IS NULL OR d.permission = ANY({held}))"
        );
    }
    if let Some(scope) = &q.scope {
        sql.text.push_str(
            " AND (d.entity_ref IS NULL OR EXISTS (SELECT 1 FROM entities e WHERE e.ref = d.entity_ref AND ",
        );
        push_predicate(sql, scope);
        sql.text.push_str("))");
    }
}

/// A document's kind, lower-cased, for the kind facet and filter.
const KIND: &str = "lower(coalesce(d.fields ->> 'kind', ''))";

/// Up to [`MAX_COUNT`] + 1 documents matching the last of `build`'s tiers
/// (`None`: every document), unordered and unranked, with every filter but
/// the type and kind filters, which the facets count without.
async fn counted(
    client: &Client,
    q: &SearchQuery,
    build: Option<&Build<'_>>,
    tier: Option<usize>,
) -> Result<Vec<Counted>> {
    let mut sql = Sql::default();
    let cond = match build {
        Some(build) => {
            let tiers = build(&mut sql);
            let i = tier.unwrap_or(tiers.len() - 1).min(tiers.len() - 1);
            debug_assert!(!tiers[i].narrow, "counts read search_docs");
            tiers[i].cond.clone()
        }
        None => "TRUE".to_owned(),
    };
    let _ = write!(
        sql.text,
        "SELECT d.type, {KIND} FROM search_docs d WHERE {cond}"
    );
    push_filters(&mut sql, q, false);
    let _ = write!(sql.text, " LIMIT {}", MAX_COUNT + 1);
    query(client, &sql)
        .await?
        .iter()
        .map(|r| {
            Ok(Counted {
                doc_type: r.try_get(0).map_err(|e| pg(&e))?,
                kind: r.try_get(1).map_err(|e| pg(&e))?,
            })
        })
        .collect()
}

/// Every document in type and title order (an empty search), paged.
async fn listing(client: &Client, q: &SearchQuery) -> Result<Vec<(i64, Tier)>> {
    let mut sql = Sql::default();
    sql.text
        .push_str("SELECT d.id FROM search_docs d WHERE TRUE");
    push_filters(&mut sql, q, true);
    let _ = write!(
        sql.text,
        " ORDER BY d.type, d.title, d.id LIMIT {} OFFSET {}",
        q.limit, q.offset
    );
    query(client, &sql)
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0).map_err(|e| pg(&e))?, Tier::Word)))
        .collect()
}

async fn search(client: &Client, q: &SearchQuery) -> Result<SearchResults> {
    let words = fold(client, &q.terms).await?;
    let (page_ids, counted) = if q.terms.is_empty() {
        (
            listing(client, q).await?,
            counted(client, q, None, None).await?,
        )
    } else if words.is_empty() {
        // Only characters the index does not keep: nothing matches.
        (Vec::new(), Vec::new())
    } else {
        let build = |sql: &mut Sql| tiers(sql, &words);
        // The whole-word tier first: when it alone passes the count's cap,
        // the superset (every tier's matches) need not be read.
        let mut found = counted(client, q, Some(&build), Some(1)).await?;
        if found.len() as u64 <= MAX_COUNT {
            found = counted(client, q, Some(&build), None).await?;
        }
        if found.is_empty() {
            let fuzzy = fuzzy(client, &words).await?;
            let build = |sql: &mut Sql| {
                let query = tsquery(sql, fuzzy.clone());
                vec![Level {
                    tier: Tier::Fuzzy,
                    cond: format!("d.tsv @@ {query}"),
                    score: format!("ts_rank({WEIGHTS}, d.tsv, {query}, {NORMALIZATION})"),
                    narrow: false,
                }]
            };
            let found = counted(client, q, Some(&build), None).await?;
            (page(client, q, &build).await?, found)
        } else {
            (page(client, q, &build).await?, found)
        }
    };
    let docs = load(client, page_ids.iter().map(|(id, _)| *id).collect()).await?;
    Ok(SearchResults::assemble(q, &counted, page_ids, docs))
}

/// `to_tsquery('simple', $n)` of `query`.
fn tsquery(sql: &mut Sql, query: String) -> String {
    format!("to_tsquery('simple', {})", sql.bind(Param::Text(query)))
}
/// `a & b & ...`
fn join(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(" & ")
}

fn prefix_of(word: &str) -> String {
    format!("{}:*", lexeme(word))
}

/// The tier 4 `tsquery`: every word, or a word within one edit of it, is
/// a word of the document (short words as prefixes): `(t | v1 | v2 ...) &
/// (...)`. Of the hundreds of variants of each word, only those some
/// document holds are kept (one probe of the GIN index each, in one
/// statement): a `tsquery` of hundreds of lexemes makes the planner expect
/// most rows to match and costs tens of microseconds per row to evaluate,
/// where the few real words cost nothing.
async fn fuzzy(client: &Client, words: &[String]) -> Result<String> {
    let variants: Vec<Vec<String>> = words.iter().map(|w| one_edit(w)).collect();
    let all: Vec<&str> = variants.iter().flatten().map(String::as_str).collect();
    let present: std::collections::HashSet<String> = if all.is_empty() {
        std::collections::HashSet::new()
    } else {
        client
            .query_typed(
                "SELECT w FROM unnest($1::text[]) AS u(w)
                 WHERE EXISTS (SELECT 1 FROM search_docs d
                               WHERE d.tsv @@ to_tsquery('simple', quote_literal(u.w)))",
                &[(&all, Type::TEXT_ARRAY)],
            )
            .await
            .map_err(|e| pg(&e))?
            .iter()
            .map(|r| r.try_get::<_, String>(0).map_err(|e| pg(&e)))
            .collect::<Result<_>>()?
    };
    Ok(join(words.iter().zip(&variants).map(|(w, variants)| {
        if variants.is_empty() {
            return prefix_of(w);
        }
        let mut group = String::from("(");
        group.push_str(&lexeme(w));
        for v in variants.iter().filter(|v| present.contains(*v)) {
            group.push_str(" | ");
            group.push_str(&lexeme(v));
        }
        group.push(')');
        group
    })))
}

/// The documents with these ids.
async fn load(client: &Client, ids: Vec<i64>) -> Result<HashMap<i64, SearchDoc>> {
    let mut out = HashMap::with_capacity(ids.len());
    if ids.is_empty() {
        return Ok(out);
    }
    let rows = client
        .query_typed(
            "SELECT id, type, key, entity_ref, permission, title, names, text, location, fields
             FROM search_docs WHERE id = ANY($1)",
            &[(&ids, Type::INT8_ARRAY)],
        )
        .await
        .map_err(|e| pg(&e))?;
    for r in &rows {
        let get = |i: usize| -> Result<String> { r.try_get(i).map_err(|e| pg(&e)) };
        let fields: Value = r.try_get(9).map_err(|e| pg(&e))?;
        let fields: Map<String, Value> = match fields {
            Value::Object(map) => map,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "search document fields are not an object: {other}"
                )));
            }
        };
        let id: i64 = r.try_get(0).map_err(|e| pg(&e))?;
        out.insert(
            id,
            SearchDoc {
                doc_type: get(1)?,
                key: get(2)?,
                entity_ref: r.try_get(3).map_err(|e| pg(&e))?,
                permission: r.try_get(4).map_err(|e| pg(&e))?,
                title: get(5)?,
                names: get(6)?,
                text: get(7)?,
                location: get(8)?,
                fields,
            },
        );
    }
    Ok(out)
}
