//! Selections, counts and facets compiled to PostgreSQL SQL.
//!
//! A port of the SQLite backend's query compiler with the same semantics:
//! predicates are correlated `EXISTS` probes on `search` and `relations`
//! (PostgreSQL plans them as semi-joins, driving from whichever index is
//! selective, so the SQLite "driver" heuristic is not needed), full text is
//! a substring match on the lower-cased `doc` column (trigram index) or on
//! search rows, ordering is by columns or by the smallest search value of a
//! field, with the entity id as the final tie-breaker.

use std::fmt::Write as _;

use callboard_store::query::{
    FULL_TEXT_FIELDS, FullTextFilter, Matcher, Position, Predicate, Selection, relation_type,
};
use tokio_postgres::types::{ToSql, Type};

/// A parameter value.
#[derive(Debug, Clone)]
pub(crate) enum Param {
    Text(String),
    Texts(Vec<String>),
    Int(i64),
    Ints(Vec<i64>),
}

impl Param {
    fn typed(&self) -> (&(dyn ToSql + Sync), Type) {
        match self {
            Self::Text(v) => (v, Type::TEXT),
            Self::Texts(v) => (v, Type::TEXT_ARRAY),
            Self::Int(v) => (v, Type::INT8),
            Self::Ints(v) => (v, Type::INT8_ARRAY),
        }
    }

    fn pg_type(&self) -> Type {
        self.typed().1
    }
}

/// SQL text with its numbered parameters.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sql {
    pub(crate) text: String,
    pub(crate) params: Vec<Param>,
    /// The column conditions on `search` compare `entity_id` with (`e.id`
    /// unless set).
    entity: Option<&'static str>,
    /// `EXISTS` conditions written so far.
    exists: usize,
}

/// `EXISTS` conditions the planner may turn into joins; later ones are
/// fenced (`OFFSET 0`) and probed per entity. PostgreSQL's join search
/// grows faster than the number of joins: 64 `AND`ed conditions took 0.6 s
/// to plan and 100 took 2 s (one request could hold a database core that
/// long); fenced, 100 plan in 50 ms.
const JOINABLE_EXISTS: usize = 6;

impl Sql {
    /// Closes an `EXISTS (SELECT ...` condition.
    fn close_exists(&mut self) {
        self.exists += 1;
        if self.exists > JOINABLE_EXISTS {
            self.text.push_str(" OFFSET 0");
        }
        self.text.push(')');
    }

    fn entity_id(&self) -> &'static str {
        self.entity.unwrap_or("e.id")
    }

    /// Adds a parameter and returns its placeholder (`$n`).
    pub(crate) fn bind(&mut self, p: Param) -> String {
        self.params.push(p);
        format!("${}", self.params.len())
    }

    fn push_param(&mut self, p: Param) {
        let placeholder = self.bind(p);
        self.text.push_str(&placeholder);
    }

    fn push_text(&mut self, v: impl Into<String>) {
        self.push_param(Param::Text(v.into()));
    }

    /// The parameters as `query_typed` takes them.
    pub(crate) fn typed(&self) -> Vec<(&(dyn ToSql + Sync), Type)> {
        self.params.iter().map(Param::typed).collect()
    }

    /// The parameters' values, for a prepared statement.
    pub(crate) fn values(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params.iter().map(|p| p.typed().0).collect()
    }

    /// The parameters' types, to prepare the statement.
    pub(crate) fn types(&self) -> Vec<Type> {
        self.params.iter().map(Param::pg_type).collect()
    }
}

/// Appends `p` as a condition on entity alias `e`.
pub(crate) fn push_predicate(sql: &mut Sql, p: &Predicate) {
    match p {
        Predicate::All(items) if items.is_empty() => sql.text.push_str("TRUE"),
        Predicate::Any(items) if items.is_empty() => sql.text.push_str("FALSE"),
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
            sql.text.push_str("NOT (");
            push_predicate(sql, inner);
            sql.text.push(')');
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
        // Relation types compare case-insensitively (SQLite: COLLATE NOCASE).
        sql.text.push_str(
            "EXISTS (SELECT 1 FROM relations r WHERE r.source = e.ref AND lower(r.type) = ",
        );
        sql.push_text(kind.to_lowercase());
        match matcher {
            Matcher::AnyOf(values) => {
                sql.text.push_str(" AND r.target = ANY(");
                sql.push_param(Param::Texts(values.clone()));
                sql.text.push(')');
            }
            Matcher::HasPrefix(prefix) => {
                sql.text.push_str(" AND starts_with(r.target, ");
                sql.push_text(prefix.clone());
                sql.text.push(')');
            }
            Matcher::Exists(_) => {}
        }
        sql.close_exists();
        return;
    }
    // `a.b.item` (exists, or `=true`) also matches an array `a.b` holding `item`.
    let item_form = match matcher {
        Matcher::Exists(true) => key.rsplit_once('.'),
        Matcher::AnyOf(values) if values.iter().any(|v| v == "true") => key.rsplit_once('.'),
        _ => None,
    };
    if let Some((parent, item)) = item_form {
        let _ = write!(
            sql.text,
            "(EXISTS (SELECT 1 FROM search s WHERE s.entity_id = {} AND s.key = ",
            sql.entity_id()
        );
        sql.push_text(parent);
        sql.text.push_str(" AND s.value = ");
        sql.push_text(item);
        sql.close_exists();
        sql.text.push_str(" OR ");
        push_search_field(sql, key, matcher);
        sql.text.push(')');
    } else {
        push_search_field(sql, key, matcher);
    }
}

fn push_search_field(sql: &mut Sql, key: &str, matcher: &Matcher) {
    let _ = write!(
        sql.text,
        "EXISTS (SELECT 1 FROM search s WHERE s.entity_id = {} AND ",
        sql.entity_id()
    );
    match matcher {
        Matcher::AnyOf(values) => {
            sql.text.push_str("s.key = ");
            sql.push_text(key);
            if let [value] = values.as_slice() {
                sql.text.push_str(" AND s.value = ");
                sql.push_text(value.clone());
            } else {
                sql.text.push_str(" AND s.value = ANY(");
                sql.push_param(Param::Texts(values.clone()));
                sql.text.push(')');
            }
        }
        Matcher::HasPrefix(prefix) => {
            sql.text.push_str("s.key = ");
            sql.push_text(key);
            sql.text.push_str(" AND starts_with(s.value, ");
            sql.push_text(prefix.clone());
            sql.text.push(')');
        }
        Matcher::Exists(_) => {
            // A key exists when it is a leaf or the parent of one: `key` or
            // `key.*`. In byte order '/' follows '.', so the range holds every
            // `key.` prefix.
            sql.text.push_str("(s.key = ");
            sql.push_text(key);
            sql.text.push_str(" OR (s.key > ");
            sql.push_text(format!("{key}."));
            sql.text.push_str(" AND s.key < ");
            sql.push_text(format!("{key}/"));
            sql.text.push_str("))");
        }
    }
    sql.close_exists();
}

/// Appends the full-text filter (nothing for an empty term).
fn push_full_text(sql: &mut Sql, ft: &FullTextFilter) {
    let term = ft.term.trim().to_lowercase();
    if term.is_empty() {
        return;
    }
    let fields: Vec<String> = ft.fields.iter().map(|f| f.to_lowercase()).collect();
    let indexed = fields
        .iter()
        .all(|f| FULL_TEXT_FIELDS.contains(&f.as_str()));
    if indexed {
        // `doc` is stored lower-cased; the trigram index answers LIKE with
        // terms of 3+ characters, shorter ones scan.
        sql.text.push_str(" AND e.doc LIKE ");
        sql.push_text(format!("%{}%", escape_like(&term)));
    }
    if !fields.is_empty() {
        sql.text.push_str(
            " AND EXISTS (SELECT 1 FROM search s WHERE s.entity_id = e.id AND s.key = ANY(",
        );
        sql.push_param(Param::Texts(fields));
        sql.text.push_str(") AND strpos(s.value, ");
        sql.push_text(term);
        sql.text.push_str(") > 0)");
    }
}

/// Escapes LIKE's wildcards (the default escape character is `\`).
pub(crate) fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// The `WHERE` conditions of a selection (predicate and full text).
fn push_conditions(sql: &mut Sql, sel: &Selection) {
    sql.text.push_str("TRUE");
    if let Some(p) = &sel.predicate {
        sql.text.push_str(" AND ");
        push_predicate(sql, p);
    }
    if let Some(ft) = &sel.full_text {
        push_full_text(sql, ft);
    }
}

/// A sort key's SQL: a column, or the smallest search value of the field
/// (`''` when the entity has none).
fn sort_expr(sql: &mut Sql, field: &str) -> (String, bool) {
    match field.to_lowercase().as_str() {
        "metadata.name" => ("e.name".to_owned(), true),
        "kind" => ("e.kind".to_owned(), true),
        "metadata.namespace" => ("e.namespace".to_owned(), true),
        "metadata.uid" => ("e.uid".to_owned(), true),
        other => {
            let key = sql.bind(Param::Text(other.to_owned()));
            (
                format!(
                    "coalesce((SELECT min(s.value) FROM search s WHERE s.entity_id = e.id AND s.key = {key}), '')"
                ),
                false,
            )
        }
    }
}

/// How to read a selection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window<'a> {
    /// Read the bodies (else `''`).
    pub(crate) with_body: bool,
    /// Continue after (or, with `reverse`, before) this position.
    pub(crate) after: Option<&'a Position>,
    /// Read in reverse order (the caller flips the rows).
    pub(crate) reverse: bool,
    /// Rows to skip.
    pub(crate) offset: usize,
    /// Most rows.
    pub(crate) limit: Option<usize>,
}

/// Order of relation rows: by type, then target as displayed, so that
/// duplicates (two entities implying the same relation) are adjacent.
const RELATION_ORDER: &str = "ORDER BY r.type, r.target_display";

/// The relations of the entity whose ref is `ref_column`, in
/// [`RELATION_ORDER`], as one `text[]`: each element is the type's length
/// in bytes, `:`, the type and the target as displayed (see
/// [`split_relation`]). One array instead of one per column halves the
/// lookups per entity: a page of 101 components read 1.5-1.7x faster.
pub(crate) fn relations(ref_column: &str) -> String {
    format!(
        "ARRAY(SELECT octet_length(r.type) || ':' || r.type || r.target_display \
         FROM relations r WHERE r.source = {ref_column} {RELATION_ORDER})"
    )
}

/// The `(type, target as displayed)` of an element of [`relations`].
pub(crate) fn split_relation(item: &str) -> Option<(&str, &str)> {
    let (len, rest) = item.split_once(':')?;
    let len: usize = len.parse().ok()?;
    rest.is_char_boundary(len).then(|| rest.split_at(len))
}

/// The column [`relations`] gives for reads without bodies.
const NO_RELATIONS: &str = "'{}'::text[]";

/// Index of the first sort value among [`select`]'s columns.
pub(crate) const SORT_COLUMNS: usize = 4;

/// A selection in id order whose conditions are all on `search`, split
/// into the one that drives (`key = value`) and the others.
struct SearchOnly<'a> {
    key: &'a str,
    value: &'a str,
    others: Vec<&'a Predicate>,
}

/// Whether a predicate reads the entity row (relations compare its ref).
fn reads_entity_row(p: &Predicate) -> bool {
    match p {
        Predicate::All(items) | Predicate::Any(items) => items.iter().any(reads_entity_row),
        Predicate::Not(inner) => reads_entity_row(inner),
        Predicate::Field { key, .. } => relation_type(key).is_some(),
    }
}

/// A selection answered from `search` alone, in entity-id order: no sort
/// keys, no full text, no relation condition, and one `key = value`
/// condition to drive from. Its index yields that condition's entities in
/// id order, so a page stops after its last row instead of walking the
/// entities from the first id (which PostgreSQL's merge join did).
fn search_only(sel: &Selection) -> Option<SearchOnly<'_>> {
    if !sel.order.is_empty() || sel.full_text.is_some() {
        return None;
    }
    let p = sel.predicate.as_ref()?;
    let conjuncts: Vec<&Predicate> = match p {
        Predicate::All(items) => items.iter().collect(),
        other => vec![other],
    };
    if conjuncts.iter().any(|c| reads_entity_row(c)) {
        return None;
    }
    let driver = conjuncts.iter().position(|c| {
        matches!(c, Predicate::Field { matcher: Matcher::AnyOf(values), .. }
            if values.len() == 1 && values[0] != "true")
    })?;
    let Predicate::Field {
        key,
        matcher: Matcher::AnyOf(values),
    } = conjuncts[driver]
    else {
        return None;
    };
    let mut others = conjuncts;
    others.remove(driver);
    Some(SearchOnly {
        key,
        value: &values[0],
        others,
    })
}

/// Whether [`select`] reads `sel` with a plan that suits any values of its
/// parameters, so that a prepared statement's generic plan is as good as
/// one planned for the values: a [`search_only`] selection is read from
/// the driving condition's index in id order, each other condition probed
/// per entity, whatever the values are. Other shapes (sorts, full text,
/// relations) choose between plans by how many entities match, so they are
/// planned at every call.
pub(crate) fn plan_is_stable(sel: &Selection) -> bool {
    search_only(sel).is_some()
}

/// `FROM search d WHERE` the driving condition and the others, on
/// `d.entity_id`.
fn push_search_only(sql: &mut Sql, q: &SearchOnly<'_>) {
    sql.text.push_str("FROM search d WHERE d.key = ");
    sql.push_text(q.key);
    sql.text.push_str(" AND d.value = ");
    sql.push_text(q.value);
    sql.entity = Some("d.entity_id");
    for c in &q.others {
        sql.text.push_str(" AND ");
        push_predicate(sql, c);
    }
    sql.entity = None;
}

/// [`select`] of a [`search_only`] selection: the page's ids from the
/// index, then their entities.
fn select_search_only(q: &SearchOnly<'_>, window: &Window<'_>) -> Sql {
    let mut sql = Sql::default();
    let (body, relations) = if window.with_body {
        ("e.body", relations("e.ref"))
    } else {
        ("''::text", NO_RELATIONS.to_owned())
    };
    let dir = if window.reverse { "DESC" } else { "ASC" };
    let _ = write!(
        sql.text,
        "SELECT e.id, e.ref, {body}, {relations} FROM (SELECT d.entity_id "
    );
    push_search_only(&mut sql, q);
    if let Some(pos) = window.after {
        let id = sql.bind(Param::Int(pos.id));
        let op = if window.reverse { "<" } else { ">" };
        let _ = write!(sql.text, " AND d.entity_id {op} {id}");
    }
    let _ = write!(sql.text, " ORDER BY d.entity_id {dir}");
    push_window(&mut sql, window);
    let _ = write!(
        sql.text,
        ") p JOIN entities e ON e.id = p.entity_id ORDER BY e.id {dir}"
    );
    sql
}

/// The window's ` LIMIT` and ` OFFSET`.
fn push_window(sql: &mut Sql, window: &Window<'_>) {
    if let Some(limit) = window.limit {
        let _ = write!(
            sql.text,
            " LIMIT {}",
            i64::try_from(limit).unwrap_or(i64::MAX)
        );
    }
    if window.offset > 0 {
        let _ = write!(
            sql.text,
            " OFFSET {}",
            i64::try_from(window.offset).unwrap_or(i64::MAX)
        );
    }
}

/// `SELECT id, ref, body, relations, sort values...` of a selection, in
/// order. Columns: 0 id (bigint), 1 ref, 2 body, 3 [`relations`] (empty
/// without bodies), 4.. sort values (text).
pub(crate) fn select(sel: &Selection, window: &Window<'_>) -> Sql {
    if let Some(q) = search_only(sel) {
        return select_search_only(&q, window);
    }
    let mut sql = Sql::default();
    let sorts: Vec<(String, bool)> = sel
        .order
        .iter()
        .map(|o| sort_expr(&mut sql, &o.field))
        .collect();
    // Computed sort values are evaluated once per row in a fenced subquery
    // (`OFFSET 0`); column sorts stay inline so their indexes serve ORDER BY.
    let fenced = sorts.iter().any(|(_, column)| !column);
    let body = if window.with_body {
        "e.body"
    } else {
        "''::text"
    };
    let relations = if window.with_body {
        relations("e.ref")
    } else {
        NO_RELATIONS.to_owned()
    };
    let (id, exprs): (&str, Vec<String>) = if fenced {
        let _ = write!(
            sql.text,
            "SELECT q.id, q.ref, q.body, {}",
            relations.replace("e.ref", "q.ref"),
        );
        for i in 0..sorts.len() {
            let _ = write!(sql.text, ", q.o{i}");
        }
        let _ = write!(sql.text, " FROM (SELECT e.id, e.ref, {body} AS body");
        for (i, (expr, _)) in sorts.iter().enumerate() {
            let _ = write!(sql.text, ", {expr} AS o{i}");
        }
        sql.text.push_str(" FROM entities e WHERE ");
        push_conditions(&mut sql, sel);
        sql.text.push_str(" OFFSET 0) q WHERE TRUE");
        (
            "q.id",
            (0..sorts.len()).map(|i| format!("q.o{i}")).collect(),
        )
    } else {
        let _ = write!(sql.text, "SELECT e.id, e.ref, {body}, {relations}");
        for (expr, _) in &sorts {
            let _ = write!(sql.text, ", {expr}");
        }
        sql.text.push_str(" FROM entities e WHERE ");
        push_conditions(&mut sql, sel);
        ("e.id", sorts.into_iter().map(|(e, _)| e).collect())
    };
    if let Some(pos) = window.after {
        push_keyset(&mut sql, sel, &exprs, id, pos, window.reverse);
    }
    sql.text.push_str(" ORDER BY ");
    for (o, expr) in sel.order.iter().zip(&exprs) {
        sql.text.push_str(expr);
        sql.text.push_str(if o.descending != window.reverse {
            " DESC, "
        } else {
            " ASC, "
        });
    }
    sql.text.push_str(id);
    sql.text
        .push_str(if window.reverse { " DESC" } else { " ASC" });
    push_window(&mut sql, window);
    sql
}

/// Rows strictly after `pos` in the (possibly reversed) order:
/// `(a > x) OR (a = x AND b > y) OR ... OR (a = x AND b = y AND id > i)`.
fn push_keyset(
    sql: &mut Sql,
    sel: &Selection,
    exprs: &[String],
    id: &str,
    pos: &Position,
    reverse: bool,
) {
    let values: Vec<String> = (0..exprs.len())
        .map(|i| sql.bind(Param::Text(pos.values.get(i).cloned().unwrap_or_default())))
        .collect();
    let pos_id = sql.bind(Param::Int(pos.id));
    sql.text.push_str(" AND (");
    let n = exprs.len();
    for level in 0..=n {
        if level > 0 {
            sql.text.push_str(" OR ");
        }
        sql.text.push('(');
        for j in 0..level {
            if j > 0 {
                sql.text.push_str(" AND ");
            }
            let _ = write!(sql.text, "{} = {}", exprs[j], values[j]);
        }
        if level > 0 {
            sql.text.push_str(" AND ");
        }
        if level < n {
            let op = if sel.order[level].descending != reverse {
                "<"
            } else {
                ">"
            };
            let _ = write!(sql.text, "{} {op} {}", exprs[level], values[level]);
        } else {
            let op = if reverse { "<" } else { ">" };
            let _ = write!(sql.text, "{id} {op} {pos_id}");
        }
        sql.text.push(')');
    }
    sql.text.push(')');
}

/// `SELECT count(*)` of a selection.
pub(crate) fn count(sel: &Selection) -> Sql {
    let mut sql = Sql::default();
    if let Some(q) = search_only(sel) {
        sql.text.push_str("SELECT count(*) ");
        push_search_only(&mut sql, &q);
        return sql;
    }
    sql.text.push_str("SELECT count(*) FROM entities e WHERE ");
    push_conditions(&mut sql, sel);
    sql
}

/// Which of `ids` satisfy `p`.
pub(crate) fn matching_ids(p: &Predicate, ids: Vec<i64>) -> Sql {
    let mut sql = Sql::default();
    sql.text
        .push_str("SELECT e.id FROM entities e WHERE e.id = ANY(");
    sql.push_param(Param::Ints(ids));
    sql.text.push_str(") AND ");
    push_predicate(&mut sql, p);
    sql
}

/// Value counts of one facet among the entities matching `predicate`:
/// rows of (value as written, count).
pub(crate) fn facet(key: &str, predicate: Option<&Predicate>) -> Sql {
    let mut sql = Sql::default();
    if let Some(kind) = relation_type(key) {
        sql.text.push_str(
            "SELECT r.target_display, count(DISTINCT r.source) FROM relations r WHERE lower(r.type) = ",
        );
        sql.push_text(kind.to_lowercase());
        if let Some(p) = predicate {
            sql.text
                .push_str(" AND r.source IN (SELECT e.ref FROM entities e WHERE ");
            push_predicate(&mut sql, p);
            sql.text.push(')');
        }
        sql.text.push_str(" GROUP BY r.target, r.target_display");
    } else {
        // Grouped by the lower-cased value; the value as written is that of
        // the first entity holding it.
        let k = sql.bind(Param::Text(key.to_owned()));
        let _ = write!(
            sql.text,
            "SELECT (SELECT coalesce(o.original, o.value) FROM search o WHERE o.key = {k} AND o.value = g.value ORDER BY o.entity_id LIMIT 1), g.n \
             FROM (SELECT s.value, count(*) AS n FROM search s WHERE s.key = {k}"
        );
        if let Some(p) = predicate {
            sql.text
                .push_str(" AND s.entity_id IN (SELECT e.id FROM entities e WHERE ");
            push_predicate(&mut sql, p);
            sql.text.push(')');
        }
        sql.text.push_str(" GROUP BY s.value) g");
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;
    use callboard_store::query::OrderField;

    #[test]
    fn filters_in_id_order_read_the_search_index_alone() {
        let sel = Selection {
            predicate: Some(Predicate::All(vec![
                Predicate::eq("kind", &["component"]),
                Predicate::eq("spec.lifecycle", &["production"]),
            ])),
            ..Selection::default()
        };
        let window = Window {
            with_body: true,
            after: None,
            reverse: false,
            offset: 0,
            limit: Some(101),
        };
        let sql = select(&sel, &window);
        assert!(
            sql.text.contains("FROM (SELECT d.entity_id FROM search d WHERE d.key = $1 AND d.value = $2 AND EXISTS (SELECT 1 FROM search s WHERE s.entity_id = d.entity_id"),
            "{}",
            sql.text
        );
        assert!(sql.text.contains("ORDER BY d.entity_id ASC LIMIT 101) p"));
        assert!(
            count(&sel)
                .text
                .starts_with("SELECT count(*) FROM search d")
        );
        // A relation condition needs the entity's ref: the general form.
        let sel = Selection {
            predicate: Some(Predicate::All(vec![
                Predicate::eq("kind", &["component"]),
                Predicate::eq("relations.ownedBy", &["group:default/a"]),
            ])),
            ..Selection::default()
        };
        assert!(!select(&sel, &window).text.contains("search d"));
    }

    #[test]
    fn relation_items_split_at_the_type_length() {
        assert_eq!(
            split_relation("7:ownedBygroup:default/a:b"),
            Some(("ownedBy", "group:default/a:b"))
        );
        assert_eq!(split_relation("0:x"), Some(("", "x")));
        // Damaged items are refused, never split elsewhere.
        assert_eq!(split_relation("9:ownedBy"), None);
        assert_eq!(split_relation("ownedBy"), None);
        assert_eq!(split_relation("1:\u{e9}x"), None);
    }

    #[test]
    fn conditions_past_the_first_few_are_probed_not_joined() {
        // Hostile: a filter of 200 conditions. Planned as joins it would
        // hold a database core for seconds; all but the first few are
        // fenced, so planning grows linearly.
        let sel = Selection {
            predicate: Some(Predicate::All(
                (0..200)
                    .map(|i| Predicate::eq(&format!("metadata.annotations.k{i}"), &["v"]))
                    .collect(),
            )),
            ..Selection::default()
        };
        for sql in [
            select(
                &sel,
                &Window {
                    with_body: true,
                    after: None,
                    reverse: false,
                    offset: 0,
                    limit: Some(10),
                },
            ),
            count(&sel),
        ] {
            let exists = sql.text.matches("EXISTS (").count();
            let fenced = sql.text.matches(" OFFSET 0)").count();
            // search_only drives from one condition, so 199 are EXISTS.
            assert_eq!(exists, 199, "{}", sql.text);
            assert_eq!(exists - fenced, JOINABLE_EXISTS, "{}", sql.text);
        }
    }

    #[test]
    fn placeholders_are_numbered_in_order() {
        let sel = Selection {
            predicate: Some(Predicate::All(vec![
                Predicate::eq("kind", &["component"]),
                Predicate::Field {
                    key: "metadata.tags.java".into(),
                    matcher: Matcher::Exists(true),
                },
            ])),
            full_text: Some(FullTextFilter {
                term: "50%_".into(),
                fields: vec![],
            }),
            order: vec![OrderField {
                field: "spec.owner".into(),
                descending: true,
            }],
        };
        let pos = Position {
            values: vec!["x".into()],
            id: 7,
        };
        let sql = select(
            &sel,
            &Window {
                with_body: true,
                after: Some(&pos),
                reverse: false,
                offset: 0,
                limit: Some(10),
            },
        );
        let n = sql.params.len();
        assert!(sql.text.contains(&format!("${n}")));
        assert!(!sql.text.contains(&format!("${}", n + 1)));
        assert!(sql.text.contains("OFFSET 0) q"));
        assert!(sql.text.ends_with("q.o0 DESC, q.id ASC LIMIT 10"));
        assert!(
            sql.params
                .iter()
                .any(|p| matches!(p, Param::Text(t) if t == "%50\\%\\_%"))
        );
    }
}
