//! Selections, predicates, ordering, full-text and facets, compiled to
//! SQLite SQL.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use callboard_store::query::{
    FULL_TEXT_FIELDS, FacetCount, FullTextFilter, Matcher, Position, Predicate, Selection,
    relation_type,
};
use rusqlite::Connection;
use rusqlite::types::Value as SqlValue;

use crate::Res;

/// One selected entity as stored.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    /// Lower-case ref.
    pub(crate) key: String,
    /// Stored JSON without relations.
    pub(crate) body: String,
    /// Where it sits in the order.
    pub(crate) position: Position,
}

struct Sql {
    text: String,
    params: Vec<SqlValue>,
}

impl Sql {
    fn new() -> Self {
        Self {
            text: String::new(),
            params: Vec::new(),
        }
    }
    fn param(&mut self, v: impl Into<SqlValue>) {
        self.params.push(v.into());
        let _ = write!(self.text, "?{}", self.params.len());
    }
    fn list(&mut self, values: &[String]) {
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.param(v.clone());
        }
    }
}

/// `key` condition on entity alias `e`, as a correlated probe.
fn push_predicate(sql: &mut Sql, p: &Predicate) {
    match p {
        Predicate::All(items) | Predicate::Any(items) if items.is_empty() => {
            sql.text.push_str(if matches!(p, Predicate::All(_)) {
                "1"
            } else {
                "0"
            });
        }
        Predicate::All(items) | Predicate::Any(items) => {
            let joiner = if matches!(p, Predicate::All(_)) {
                " AND "
            } else {
                " OR "
            };
            sql.text.push('(');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    sql.text.push_str(joiner);
                }
                push_predicate(sql, item);
            }
            sql.text.push(')');
        }
        Predicate::Not(inner) => {
            sql.text.push_str("NOT ");
            push_predicate(sql, inner);
        }
        Predicate::Field { key, matcher } => push_field(sql, key, matcher),
    }
}

fn push_field(sql: &mut Sql, key: &str, matcher: &Matcher) {
    if let Matcher::Exists(false) = matcher {
        sql.text.push_str("NOT ");
        return push_field(sql, key, &Matcher::Exists(true));
    }
    if let Some(kind) = relation_type(key) {
        sql.text
            .push_str("EXISTS (SELECT 1 FROM relations r WHERE r.source = e.ref AND r.type = ");
        sql.param(kind.to_owned());
        match matcher {
            Matcher::AnyOf(values) => {
                sql.text.push_str(" AND r.target IN (");
                sql.list(values);
                sql.text.push(')');
            }
            Matcher::HasPrefix(prefix) => {
                sql.text.push_str(" AND substr(r.target, 1, length(");
                sql.param(prefix.clone());
                sql.text.push_str(")) = ");
                sql.param(prefix.clone());
            }
            Matcher::Exists(_) => {}
        }
        sql.text.push(')');
        return;
    }
    // `a.b.item` (exists, or `=true`) also matches an array `a.b` holding `item`.
    let item_form = match matcher {
        Matcher::Exists(true) => key.rsplit_once('.'),
        Matcher::AnyOf(values) if values.iter().any(|v| v == "true") => key.rsplit_once('.'),
        _ => None,
    };
    if let Some((parent, item)) = item_form {
        sql.text
            .push_str("(EXISTS (SELECT 1 FROM search s WHERE s.entity_id = e.id AND s.key = ");
        sql.param(parent.to_owned());
        sql.text.push_str(" AND s.value = ");
        sql.param(item.to_owned());
        sql.text.push_str(") OR ");
        push_search_field(sql, key, matcher);
        sql.text.push(')');
    } else {
        push_search_field(sql, key, matcher);
    }
}

fn push_search_field(sql: &mut Sql, key: &str, matcher: &Matcher) {
    sql.text
        .push_str("EXISTS (SELECT 1 FROM search s WHERE s.entity_id = e.id AND s.key = ");
    sql.param(key.to_owned());
    match matcher {
        Matcher::AnyOf(values) => {
            sql.text.push_str(" AND s.value IN (");
            sql.list(values);
            sql.text.push(')');
        }
        Matcher::HasPrefix(prefix) => {
            sql.text.push_str(" AND substr(s.value, 1, length(");
            sql.param(prefix.clone());
            sql.text.push_str(")) = ");
            sql.param(prefix.clone());
        }
        Matcher::Exists(_) => {
            // A key exists when it is a leaf or the parent of one: `key` or `key.*`.
            // '/' sorts right after '.', so the range is every `key.` prefix.
            sql.text.push_str(" OR (s.entity_id = e.id AND s.key > ");
            sql.param(format!("{key}."));
            sql.text.push_str(" AND s.key < ");
            sql.param(format!("{key}/"));
            sql.text.push(')');
        }
    }
    sql.text.push(')');
}

/// Below this many matches a condition drives the query from its index;
/// above it, scanning entities in order and probing is cheaper for a page.
const SELECTIVE: i64 = 3000;

/// Match counts of single conditions (capped at [`SELECTIVE`]), kept until
/// the catalog is next written. They only steer plans: a count from before
/// a write another process made can cost speed, never change an answer.
/// Counting them was a third of a filtered page's CPU.
#[derive(Default)]
pub(crate) struct Estimates {
    /// Commits of this process's writer so far; a count is kept with the
    /// value read before it was taken.
    writes: AtomicU64,
    kept: Mutex<HashMap<String, (u64, i64)>>,
}

/// Conditions whose counts are kept at most; a full table starts afresh.
const MAX_ESTIMATES: usize = 1024;

/// Longest condition (key and values, as text) whose count is kept: the
/// table holds at most `MAX_ESTIMATES` of these, whatever callers send.
const MAX_ESTIMATE_ID: usize = 512;

impl Estimates {
    /// Forgets every count: the writer committed.
    pub(crate) fn written(&self) {
        self.writes.fetch_add(1, Ordering::AcqRel);
    }

    fn get(&self, conn: &Connection, key: &str, values: &[String]) -> Res<i64> {
        // Each part with its length: no two conditions share an id.
        let mut id = String::with_capacity(key.len() + 16 * values.len());
        for part in std::iter::once(key).chain(values.iter().map(String::as_str)) {
            let _ = write!(id, "{}:", part.len());
            id.push_str(part);
        }
        if id.len() > MAX_ESTIMATE_ID {
            return estimate(conn, key, values);
        }
        let now = self.writes.load(Ordering::Acquire);
        if let Some(&(at, n)) = self.table().get(&id)
            && at == now
        {
            return Ok(n);
        }
        let n = estimate(conn, key, values)?;
        let mut table = self.table();
        if table.len() >= MAX_ESTIMATES {
            table.retain(|_, (at, _)| *at == now);
            if table.len() >= MAX_ESTIMATES {
                table.clear();
            }
        }
        table.insert(id, (now, n));
        Ok(n)
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, i64)>> {
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn estimate(conn: &Connection, key: &str, values: &[String]) -> Res<i64> {
    let mut sql = Sql::new();
    sql.text
        .push_str("SELECT count(*) FROM (SELECT 1 FROM search WHERE key = ");
    sql.param(key.to_owned());
    sql.text.push_str(" AND value IN (");
    sql.list(values);
    let _ = write!(sql.text, ") LIMIT {SELECTIVE})");
    Ok(conn
        .prepare_cached(&sql.text)?
        .query_row(rusqlite::params_from_iter(sql.params), |r| r.get(0))?)
}

/// How a selection reads its rows.
struct Plan {
    /// `FROM ...` clause.
    from: &'static str,
    /// Conditions (`1 AND ...`).
    sql: Sql,
    /// The column holding the entity id in that plan's natural order.
    id: &'static str,
}

/// Joining from the `(key, value)` index yields rows in entity-id order and
/// stops as soon as a page is full, without touching non-matching entities.
const JOINED: &str = "FROM search d CROSS JOIN entities e ON e.id = d.entity_id";

/// Plans a selection. `whole` is true when every match is needed anyway
/// (counts, custom order), so driving from an index always pays.
fn plan(conn: &Connection, est: &Estimates, sel: &Selection, whole: bool) -> Res<Plan> {
    let mut sql = Sql::new();
    sql.text.push('1');
    let mut from = "FROM entities e";
    let mut id = "e.id";
    let mut driven = false;
    if let Some(p) = &sel.predicate {
        let conjuncts: Vec<&Predicate> = match p {
            Predicate::All(items) => items.iter().collect(),
            other => vec![other],
        };
        let candidates: Vec<(usize, &str, &[String])> = conjuncts
            .iter()
            .enumerate()
            .filter_map(|(i, c)| match c {
                Predicate::Field {
                    key,
                    matcher: Matcher::AnyOf(values),
                } if relation_type(key).is_none() && !values.iter().any(|v| v == "true") => {
                    Some((i, key.as_str(), values.as_slice()))
                }
                _ => None,
            })
            .collect();
        let mut driver: Option<(usize, i64)> = None;
        match candidates.as_slice() {
            // One candidate that drives whatever its size: no estimate needed.
            [(i, _, values)] if whole || (sel.order.is_empty() && values.len() == 1) => {
                driver = Some((*i, 0));
            }
            _ => {
                for (i, key, values) in candidates {
                    let n = est.get(conn, key, values)?;
                    if driver.is_none_or(|(_, best)| n < best) {
                        driver = Some((i, n));
                    }
                }
            }
        }
        let joined = driver.is_some_and(|(i, _)| {
            sel.order.is_empty()
                && matches!(conjuncts[i], Predicate::Field { matcher: Matcher::AnyOf(values), .. } if values.len() == 1)
        });
        let driver = driver
            .filter(|(_, n)| joined || whole || *n < SELECTIVE)
            .map(|(i, _)| i);
        driven = driver.is_some();
        for (i, c) in conjuncts.iter().enumerate() {
            sql.text.push_str(" AND ");
            match (driver == Some(i), c) {
                (
                    true,
                    Predicate::Field {
                        key,
                        matcher: Matcher::AnyOf(values),
                    },
                ) if joined => {
                    from = JOINED;
                    id = "d.entity_id";
                    sql.text.push_str("d.key = ");
                    sql.param(key.clone());
                    sql.text.push_str(" AND d.value = ");
                    sql.param(values[0].clone());
                }
                (
                    true,
                    Predicate::Field {
                        key,
                        matcher: Matcher::AnyOf(values),
                    },
                ) => {
                    sql.text
                        .push_str("e.id IN (SELECT entity_id FROM search WHERE key = ");
                    sql.param(key.clone());
                    sql.text.push_str(" AND value IN (");
                    sql.list(values);
                    sql.text.push_str("))");
                }
                _ => push_predicate(&mut sql, c),
            }
        }
    }
    if let Some(ft) = &sel.full_text {
        // With nothing else driving and the entities in id order, the
        // trigram index drives: it yields its matches in rowid order, so a
        // page stops after its last row instead of collecting every match.
        let drive = !driven && sel.order.is_empty();
        if push_full_text(&mut sql, ft, drive) {
            from = FULL_TEXT_JOINED;
            id = "fts.rowid";
        }
    }
    Ok(Plan { from, sql, id })
}

/// The trigram index joined to the entities it matches, in rowid order.
const FULL_TEXT_JOINED: &str = "FROM fts CROSS JOIN entities e ON e.id = fts.rowid";

/// Adds the full-text conditions; with `drive`, as a `MATCH` on
/// [`FULL_TEXT_JOINED`] when the index can answer alone. Returns whether it
/// did.
fn push_full_text(sql: &mut Sql, ft: &FullTextFilter, drive: bool) -> bool {
    let term = ft.term.trim().to_lowercase();
    if term.is_empty() {
        return false;
    }
    let fields: Vec<String> = ft.fields.iter().map(|f| f.to_lowercase()).collect();
    let indexed = fields
        .iter()
        .all(|f| FULL_TEXT_FIELDS.contains(&f.as_str()));
    // The trigram index answers substring queries of 3+ characters; shorter
    // terms fall back to LIKE over the same table.
    let matched = indexed && term.chars().count() >= 3;
    let driving = drive && matched;
    if driving {
        sql.text.push_str(" AND fts MATCH ");
        sql.param(format!("\"{}\"", term.replace('"', "\"\"")));
    } else if indexed {
        sql.text
            .push_str(" AND e.id IN (SELECT rowid FROM fts WHERE ");
        if matched {
            sql.text.push_str("fts MATCH ");
            sql.param(format!("\"{}\"", term.replace('"', "\"\"")));
        } else {
            sql.text.push_str("doc LIKE ");
            sql.param(format!("%{}%", escape_like(&term)));
            sql.text.push_str(" ESCAPE '\\'");
        }
        sql.text.push(')');
    }
    if !fields.is_empty() {
        sql.text.push_str(
            " AND EXISTS (SELECT 1 FROM search s WHERE s.entity_id = e.id AND s.key IN (",
        );
        sql.list(&fields);
        sql.text.push_str(") AND instr(s.value, ");
        sql.param(term);
        sql.text.push_str(") > 0)");
    }
    driving
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

fn sort_expr(sql: &mut Sql, field: &str) {
    match field.to_lowercase().as_str() {
        "metadata.name" => sql.text.push_str("e.name"),
        "kind" => sql.text.push_str("e.kind"),
        "metadata.namespace" => sql.text.push_str("e.namespace"),
        "metadata.uid" => sql.text.push_str("e.uid"),
        other => {
            sql.text.push_str(
                "coalesce((SELECT min(s.value) FROM search s WHERE s.entity_id = e.id AND s.key = ",
            );
            sql.param(other.to_owned());
            sql.text.push_str("), '')");
        }
    }
}

/// Selects entities in order. `after` continues after (or, with `reverse`,
/// before) a position; `reverse` returns rows in reverse order, which the
/// caller flips.
#[expect(
    clippy::too_many_arguments,
    reason = "internal; callers name each argument"
)]
pub(crate) fn select(
    conn: &Connection,
    est: &Estimates,
    sel: &Selection,
    with_body: bool,
    after: Option<&Position>,
    reverse: bool,
    offset: usize,
    limit: Option<usize>,
    mut each: impl FnMut(Row) -> Res<bool>,
) -> Res<()> {
    // A page in name order walks the name index and stops when it is full;
    // other orders sort every match, so driving from an index always pays.
    let whole = limit.is_none() || !(sel.order.is_empty() || in_name_order(sel));
    let mut sql = Sql::new();
    sql.text.push_str(if with_body {
        "SELECT e.id, e.ref, e.body"
    } else {
        "SELECT e.id, e.ref, ''"
    });
    for o in &sel.order {
        sql.text.push_str(", ");
        sort_expr(&mut sql, &o.field);
    }
    let plan = plan(conn, est, sel, whole)?;
    sql.text.push(' ');
    sql.text.push_str(plan.from);
    sql.text.push_str(" WHERE ");
    // Renumber the WHERE clause's parameters after the sort expressions'.
    let shift = sql.params.len();
    sql.text.push_str(&renumber(&plan.sql.text, shift));
    sql.params.extend(plan.sql.params);
    if let Some(pos) = after {
        push_keyset(&mut sql, sel, pos, reverse, plan.id);
    }
    sql.text.push_str(" ORDER BY ");
    for o in &sel.order {
        sort_expr(&mut sql, &o.field);
        sql.text.push_str(if o.descending != reverse {
            " DESC, "
        } else {
            " ASC, "
        });
    }
    sql.text.push_str(plan.id);
    sql.text.push_str(if reverse { " DESC" } else { " ASC" });
    if let Some(limit) = limit {
        // SQLite's LIMIT is a signed 64-bit integer.
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let _ = write!(sql.text, " LIMIT {limit}");
    } else if offset > 0 {
        sql.text.push_str(" LIMIT -1");
    }
    if offset > 0 {
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let _ = write!(sql.text, " OFFSET {offset}");
    }
    let mut stmt = conn.prepare_cached(&sql.text)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(sql.params))?;
    let n = sel.order.len();
    while let Some(r) = rows.next()? {
        let mut values = Vec::with_capacity(n);
        for i in 0..n {
            values.push(r.get::<_, String>(3 + i)?);
        }
        let row = Row {
            key: r.get(1)?,
            body: r.get(2)?,
            position: Position {
                values,
                id: r.get(0)?,
            },
        };
        if !each(row)? {
            break;
        }
    }
    Ok(())
}

/// Whether the selection is ordered by name alone, which the `(name, id)`
/// index yields in either direction.
fn in_name_order(sel: &Selection) -> bool {
    matches!(sel.order.as_slice(), [o] if o.field.eq_ignore_ascii_case("metadata.name"))
}

/// Rows strictly after `pos` in the (possibly reversed) order.
fn push_keyset(sql: &mut Sql, sel: &Selection, pos: &Position, reverse: bool, id: &str) {
    // (a > x) OR (a = x AND b > y) OR ... OR (a = x AND b = y AND id > i)
    sql.text.push_str(" AND (");
    let n = sel.order.len();
    for level in 0..=n {
        if level > 0 {
            sql.text.push_str(" OR ");
        }
        sql.text.push('(');
        for (j, o) in sel.order.iter().enumerate().take(level) {
            if j > 0 {
                sql.text.push_str(" AND ");
            }
            sort_expr(sql, &o.field);
            sql.text.push_str(" = ");
            sql.param(pos.values.get(j).cloned().unwrap_or_default());
        }
        if level > 0 {
            sql.text.push_str(" AND ");
        }
        if level < n {
            let o = &sel.order[level];
            sort_expr(sql, &o.field);
            sql.text.push_str(if o.descending != reverse {
                " < "
            } else {
                " > "
            });
            sql.param(pos.values.get(level).cloned().unwrap_or_default());
        } else {
            sql.text.push_str(id);
            sql.text.push_str(if reverse { " < " } else { " > " });
            sql.param(pos.id);
        }
        sql.text.push(')');
    }
    sql.text.push(')');
}

fn renumber(text: &str, shift: usize) -> String {
    if shift == 0 {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut chars = text.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        out.push(c);
        if c == '?' {
            let mut digits = String::new();
            while let Some((_, d)) = chars.peek().filter(|(_, d)| d.is_ascii_digit()) {
                digits.push(*d);
                chars.next();
            }
            let n: usize = digits.parse().unwrap_or(0);
            let _ = write!(out, "{}", n + shift);
        }
    }
    out
}

/// Whether the entity with this id satisfies `p`.
pub(crate) fn matches(conn: &Connection, p: &Predicate, id: i64) -> Res<bool> {
    let mut sql = Sql::new();
    sql.text
        .push_str("SELECT EXISTS (SELECT 1 FROM entities e WHERE e.id = ");
    sql.param(id);
    sql.text.push_str(" AND ");
    push_predicate(&mut sql, p);
    sql.text.push(')');
    Ok(conn
        .prepare_cached(&sql.text)?
        .query_row(rusqlite::params_from_iter(sql.params), |r| r.get(0))?)
}

/// Number of entities a selection matches (order ignored).
pub(crate) fn count(conn: &Connection, est: &Estimates, sel: &Selection) -> Res<u64> {
    let plan = plan(conn, est, sel, true)?;
    let (from, text) = if plan.from == JOINED && !plan.sql.text.contains("e.ref") {
        // Nothing needs the entity row: count straight off the index.
        (
            "FROM search d",
            plan.sql.text.replace("e.id", "d.entity_id"),
        )
    } else {
        (plan.from, plan.sql.text)
    };
    let sql = format!("SELECT count(*) {from} WHERE {text}");
    let n: i64 = conn
        .prepare_cached(&sql)?
        .query_row(rusqlite::params_from_iter(plan.sql.params), |r| r.get(0))?;
    Ok(n.try_into().unwrap_or(0))
}

/// Value counts of each facet among the entities matching `predicate`.
pub(crate) fn facets(
    conn: &Connection,
    est: &Estimates,
    names: &[String],
    predicate: Option<&Predicate>,
) -> Res<BTreeMap<String, Vec<FacetCount>>> {
    let mut out = BTreeMap::new();
    for name in names {
        let key = name.to_lowercase();
        let mut sql = Sql::new();
        if let Some(kind) = relation_type(&key) {
            sql.text.push_str("SELECT r.target_display, count(DISTINCT r.source) FROM relations r WHERE r.type = ");
            sql.param(kind.to_owned());
            if predicate.is_some() {
                sql.text.push_str(" AND r.source IN (");
            }
        } else {
            // Grouped by the lower-cased value (index order, no sort); the value
            // as written is looked up once per group.
            sql.text.push_str(
                "SELECT (SELECT coalesce(o.original, o.value) FROM search o WHERE o.key = ?1 AND o.value = s.value LIMIT 1), count(*) FROM search s WHERE s.key = ",
            );
            sql.param(key.clone());
            if predicate.is_some() {
                sql.text.push_str(" AND s.entity_id IN (");
            }
        }
        if let Some(p) = predicate {
            let sel = Selection {
                predicate: Some(p.clone()),
                ..Selection::default()
            };
            let plan = plan(conn, est, &sel, true)?;
            let column = if relation_type(&key).is_some() {
                "e.ref"
            } else {
                plan.id
            };
            let inner =
                if plan.from == JOINED && column == plan.id && !plan.sql.text.contains("e.ref") {
                    // Only ids are needed: stay on the index, skip the entity rows.
                    format!(
                        "SELECT d.entity_id FROM search d WHERE {}",
                        plan.sql.text.replace("e.id", "d.entity_id")
                    )
                } else {
                    format!("SELECT {column} {} WHERE {}", plan.from, plan.sql.text)
                };
            sql.text.push_str(&renumber(&inner, sql.params.len()));
            sql.params.extend(plan.sql.params);
            sql.text.push(')');
        }
        sql.text.push_str(if relation_type(&key).is_some() {
            " GROUP BY r.target, r.target_display"
        } else {
            " GROUP BY s.value"
        });
        let mut stmt = conn.prepare_cached(&sql.text)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(sql.params), |r| {
            Ok(FacetCount {
                value: r.get(0)?,
                count: r.get::<_, i64>(1)?.try_into().unwrap_or(0),
            })
        })?;
        let mut counts = rows.collect::<Result<Vec<_>, _>>()?;
        counts.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
        out.insert(name.clone(), counts);
    }
    Ok(out)
}

/// The statement [`render`] reads an entity's relations with. The covering
/// index returns rows ordered by (type, target): duplicates (two entities
/// implying the same relation) are adjacent.
pub(crate) fn relations_of(conn: &Connection) -> Res<rusqlite::CachedStatement<'_>> {
    Ok(conn.prepare_cached("SELECT type, target_display FROM relations WHERE source = ?1")?)
}

/// Appends the stored `body` of entity `key` with its relations to `out`.
pub(crate) fn render(
    relations: &mut rusqlite::Statement<'_>,
    key: &str,
    body: &str,
    out: &mut String,
) -> Res<()> {
    let mut rows = relations.query([key])?;
    let mut splice = callboard_store::query::Splice::open(body, out);
    while let Some(row) = rows.next()? {
        let text = |i: usize| -> rusqlite::Result<&str> {
            row.get_ref(i)?.as_str().map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
            })
        };
        splice.push(text(0)?, text(1)?);
    }
    splice.close();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_are_kept_until_the_writer_commits() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE search (entity_id INTEGER, key TEXT, value TEXT);
             INSERT INTO search VALUES (1, 'kind', 'component'), (2, 'kind', 'api');",
        )
        .unwrap();
        let est = Estimates::default();
        let kinds = ["component".to_owned(), "api".to_owned()];
        assert_eq!(est.get(&conn, "kind", &kinds).unwrap(), 2);
        assert_eq!(est.get(&conn, "kind", &kinds[..1]).unwrap(), 1);
        conn.execute("INSERT INTO search VALUES (3, 'kind', 'component')", [])
            .unwrap();
        // Kept: no commit of the writer was announced.
        assert_eq!(est.get(&conn, "kind", &kinds).unwrap(), 2);
        est.written();
        assert_eq!(est.get(&conn, "kind", &kinds).unwrap(), 3);
        assert_eq!(est.get(&conn, "kind", &kinds[..1]).unwrap(), 2);
        // Values are part of the key: a value holding the separator is its own condition.
        assert_eq!(
            est.get(&conn, "kind", &["component\0api".to_owned()])
                .unwrap(),
            0
        );
        // Bounded: a long condition is counted each time, never kept...
        let long = ["x".repeat(MAX_ESTIMATE_ID)];
        assert_eq!(est.get(&conn, "kind", &long).unwrap(), 0);
        assert!(est.table().keys().all(|id| id.len() <= MAX_ESTIMATE_ID));
        // ...and a full table starts afresh.
        for i in 0..MAX_ESTIMATES + 10 {
            est.get(&conn, "kind", &[i.to_string()]).unwrap();
        }
        assert!(est.table().len() <= MAX_ESTIMATES);
    }

    #[test]
    fn renumbers() {
        assert_eq!(
            renumber("a = ?1 AND b IN (?2, ?10)", 3),
            "a = ?4 AND b IN (?5, ?13)"
        );
    }
}
