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

pub(crate) struct Sql {
    pub(crate) text: String,
    pub(crate) params: Vec<SqlValue>,
}

impl Sql {
    pub(crate) fn new() -> Self {
        Self {
            text: String::new(),
            params: Vec::new(),
        }
    }
    pub(crate) fn param(&mut self, v: impl Into<SqlValue>) {
        self.params.push(v.into());
        let _ = write!(self.text, "?{}", self.params.len());
    }
    pub(crate) fn list(&mut self, values: &[String]) {
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.param(v.clone());
        }
    }
}

/// `key` condition on entity alias `e`, as a correlated probe.
pub(crate) fn push_predicate(sql: &mut Sql, p: &Predicate) {
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
    sql.text.push_str("SELECT count(*) FROM (");
    push_matching(&mut sql, key, values);
    let _ = write!(sql.text, " LIMIT {SELECTIVE})");
    Ok(conn
        .prepare_cached(&sql.text)?
        .query_row(rusqlite::params_from_iter(sql.params), |r| r.get(0))?)
}

/// `SELECT <column>` of the entities whose `key` has one of `values`, from
/// the index that starts with that condition: `search (key, value)` yields
/// entity ids, `relations (type, target, source)` entity refs.
fn push_matching(sql: &mut Sql, key: &str, values: &[String]) {
    if let Some(kind) = relation_type(key) {
        sql.text
            .push_str("SELECT source FROM relations WHERE type = ");
        sql.param(kind.to_owned());
        sql.text.push_str(" AND target IN (");
    } else {
        sql.text
            .push_str("SELECT entity_id FROM search WHERE key = ");
        sql.param(key.to_owned());
        sql.text.push_str(" AND value IN (");
    }
    sql.list(values);
    sql.text.push(')');
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
    // The driving condition matches few entities (its estimate says so).
    let mut few = false;
    if let Some(p) = &sel.predicate {
        let conjuncts: Vec<&Predicate> = match p {
            Predicate::All(items) => items.iter().collect(),
            other => vec![other],
        };
        // Plain conditions (`search`) and relation conditions (`relations`)
        // can drive; an item form (`a.b.item=true`) cannot.
        let candidates: Vec<(usize, &str, &[String])> = conjuncts
            .iter()
            .enumerate()
            .filter_map(|(i, c)| match c {
                Predicate::Field {
                    key,
                    matcher: Matcher::AnyOf(values),
                } if relation_type(key).is_some() || !values.iter().any(|v| v == "true") => {
                    Some((i, key.as_str(), values.as_slice()))
                }
                _ => None,
            })
            .collect();
        let mut driver: Option<(usize, i64)> = None;
        match candidates.as_slice() {
            // One candidate that drives whatever its size: no estimate
            // needed, unless a full-text condition asks whether it is few.
            [(i, key, values)]
                if sel.full_text.is_none()
                    && (whole
                        || (sel.order.is_empty()
                            && values.len() == 1
                            && relation_type(key).is_none())) =>
            {
                driver = Some((*i, i64::MAX));
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
        // Only `search` rows come in entity-id order, the order of a page.
        let joined = driver.is_some_and(|(i, _)| {
            sel.order.is_empty()
                && matches!(conjuncts[i], Predicate::Field { key, matcher: Matcher::AnyOf(values) } if values.len() == 1 && relation_type(key).is_none())
        });
        let driver = driver.filter(|(_, n)| joined || whole || *n < SELECTIVE);
        few = driver.is_some_and(|(_, n)| n < SELECTIVE) && !joined;
        let driver = driver.map(|(i, _)| i);
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
                    sql.text.push_str(if relation_type(key).is_some() {
                        "e.ref IN ("
                    } else {
                        "e.id IN ("
                    });
                    push_matching(&mut sql, key, values);
                    sql.text.push(')');
                }
                _ => push_predicate(&mut sql, c),
            }
        }
    }
    if let Some(ft) = &sel.full_text {
        // With nothing else driving and the entities in id order, the
        // trigram index drives: it yields its matches in rowid order, so a
        // page stops after its last row instead of collecting every match.
        let how = if !driven && sel.order.is_empty() {
            FullText::Drive
        } else if few {
            FullText::Probe
        } else {
            FullText::Subquery
        };
        if push_full_text(&mut sql, ft, how) {
            from = FULL_TEXT_JOINED;
            id = "fts.rowid";
        }
    }
    Ok(Plan { from, sql, id })
}

/// The trigram index joined to the entities it matches, in rowid order.
const FULL_TEXT_JOINED: &str = "FROM fts CROSS JOIN entities e ON e.id = fts.rowid";

/// How a full-text condition joins the rest of a query.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FullText {
    /// As a `MATCH` on [`FULL_TEXT_JOINED`]: the index yields the rows.
    Drive,
    /// Tested on each row another condition yields, by reading its
    /// document: a condition that drives matches few entities (an owner
    /// scope, say), and the index would gather every match of a common
    /// term (its doclists are read again at each probe with `MATCH`).
    Probe,
    /// As the set of the index's matches, which the rows are tested against.
    Subquery,
}

/// Registers the SQL functions the catalog's queries call on `conn`.
pub(crate) fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    // `callboard_fold(text)`: lower-cased as Rust lower-cases the terms (and
    // as PostgreSQL's stored documents are), for the full-text probe.
    conn.create_scalar_function(
        "callboard_fold",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let text = ctx.get_raw(0);
            Ok(match text {
                rusqlite::types::ValueRef::Text(t) => {
                    Some(String::from_utf8_lossy(t).to_lowercase())
                }
                _ => None,
            })
        },
    )
}

/// Adds the full-text conditions; with [`FullText::Drive`], as a `MATCH` on
/// [`FULL_TEXT_JOINED`] when the index can answer alone. Returns whether it
/// did.
fn push_full_text(sql: &mut Sql, ft: &FullTextFilter, how: FullText) -> bool {
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
    let driving = how == FullText::Drive && matched;
    if indexed && how == FullText::Probe {
        sql.text.push_str(
            " AND EXISTS (SELECT 1 FROM fts WHERE fts.rowid = e.id AND instr(callboard_fold(fts.doc), ",
        );
        sql.param(term.clone());
        sql.text.push_str(") > 0)");
    } else if driving {
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

pub(crate) fn escape_like(s: &str) -> String {
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

pub(crate) fn renumber(text: &str, shift: usize) -> String {
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

    /// The catalog's tables with `n` entities, each owned by `group-<i % 100>`.
    fn catalog(n: i64) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        register_functions(&conn).unwrap();
        for m in crate::catalog::MIGRATIONS {
            conn.execute_batch(m).unwrap();
        }
        for i in 0..n {
            let r = format!("component:default/c-{i}");
            conn.execute(
                "INSERT INTO entities (id, ref, uid, kind, namespace, name, hash, spec_hash, generation, body)
                 VALUES (?1, ?2, ?2, 'component', 'default', ?2, '', '', 1, '{}')",
                rusqlite::params![i + 1, r],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO search VALUES (?1, 'kind', 'component', NULL)",
                [i + 1],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO relations VALUES (?1, ?2, 'ownedBy', ?3, ?3)",
                rusqlite::params![i + 1, r, format!("group:default/group-{}", i % 100)],
            )
            .unwrap();
            // Every third entity's document has the word, in capitals.
            let doc = if i % 3 == 0 {
                "Le Service ÉCOLE"
            } else {
                "other"
            };
            conn.execute(
                "INSERT INTO fts (rowid, doc) VALUES (?1, ?2)",
                rusqlite::params![i + 1, doc],
            )
            .unwrap();
        }
        conn
    }

    fn plan_of(conn: &Connection, sel: &Selection, whole: bool) -> (String, String) {
        let plan = plan(conn, &Estimates::default(), sel, whole).unwrap();
        let sql = format!(
            "SELECT e.id {} WHERE {} ORDER BY {}",
            plan.from, plan.sql.text, plan.id
        );
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let steps: Vec<String> = stmt
            .query_map(rusqlite::params_from_iter(plan.sql.params), |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        (sql, steps.join("\n"))
    }

    #[test]
    fn a_selective_relation_condition_drives_from_the_relations_index() {
        let conn = catalog(2000);
        let owned = Predicate::eq(
            "relations.ownedby",
            &["group:default/group-7", "group:default/group-8"],
        );
        let sel = Selection {
            predicate: Some(Predicate::eq("kind", &["component"]).and(owned)),
            ..Selection::default()
        };
        let (sql, steps) = plan_of(&conn, &sel, false);
        assert!(
            sql.contains("e.ref IN (SELECT source FROM relations"),
            "{sql}"
        );
        assert!(steps.contains("relations_target"), "{steps}");
        // Answers are the same as the probe's: 40 of 2,000.
        assert_eq!(count(&conn, &Estimates::default(), &sel).unwrap(), 40);
        let mut ids = Vec::new();
        select(
            &conn,
            &Estimates::default(),
            &sel,
            false,
            None,
            false,
            0,
            Some(100),
            |row| {
                ids.push(row.position.id);
                Ok(true)
            },
        )
        .unwrap();
        assert_eq!(ids.len(), 40);
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "in id order: {ids:?}");
        assert!(ids.iter().all(|id| matches!((id - 1) % 100, 7 | 8)));
    }

    #[test]
    fn full_text_is_probed_per_row_after_a_selective_driver_with_the_same_answers() {
        let conn = catalog(2000);
        let est = Estimates::default();
        let ids = |sel: &Selection| {
            let mut ids = Vec::new();
            select(&conn, &est, sel, false, None, false, 0, None, |row| {
                ids.push(row.position.id);
                Ok(true)
            })
            .unwrap();
            ids
        };
        for term in ["école", "ec", "service é", "none"] {
            let ft = Some(FullTextFilter {
                term: term.to_owned(),
                fields: Vec::new(),
            });
            // Owned: group-7, 20 entities; the index alone drives the other.
            let owned = Selection {
                predicate: Some(Predicate::eq(
                    "relations.ownedby",
                    &["group:default/group-7"],
                )),
                full_text: ft.clone(),
                ..Selection::default()
            };
            let (sql, _) = plan_of(&conn, &owned, false);
            assert!(sql.contains("instr(callboard_fold(fts.doc)"), "{sql}");
            let everything = Selection {
                full_text: ft,
                ..Selection::default()
            };
            let expected: Vec<i64> = ids(&everything)
                .into_iter()
                .filter(|id| (id - 1) % 100 == 7)
                .collect();
            assert_eq!(ids(&owned), expected, "{term}");
            assert_eq!(
                count(&conn, &est, &owned).unwrap(),
                expected.len() as u64,
                "{term}"
            );
        }
        // "école" matches every third entity: 6 of group-7's 20.
        let ft = FullTextFilter {
            term: "ÉCOLE".to_lowercase(),
            fields: Vec::new(),
        };
        let sel = Selection {
            predicate: Some(Predicate::eq(
                "relations.ownedby",
                &["group:default/group-7"],
            )),
            full_text: Some(ft),
            ..Selection::default()
        };
        assert_eq!(ids(&sel).len(), 6);
    }

    #[test]
    fn a_common_relation_condition_is_probed_on_a_page() {
        // Half the catalog: a page walks entities in order and probes.
        let conn = catalog(8000);
        let groups: Vec<String> = (0..50)
            .map(|g| format!("group:default/group-{g}"))
            .collect();
        let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
        let sel = Selection {
            predicate: Some(Predicate::eq("relations.ownedby", &groups)),
            ..Selection::default()
        };
        let (sql, _) = plan_of(&conn, &sel, false);
        assert!(sql.contains("EXISTS (SELECT 1 FROM relations r"), "{sql}");
        // Counting reads every match anyway: the index drives.
        let (sql, _) = plan_of(&conn, &sel, true);
        assert!(sql.contains("e.ref IN"), "{sql}");
    }

    #[test]
    fn renumbers() {
        assert_eq!(
            renumber("a = ?1 AND b IN (?2, ?10)", 3),
            "a = ?4 AND b IN (?5, ?13)"
        );
    }
}
