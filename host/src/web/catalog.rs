//! `/catalog`: the entity table, with filters, search, sorting and keyset
//! pagination. Every control is a field of one GET form, so a filtered view
//! is a URL that can be shared, and the page works without JavaScript.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use axum::{extract::Query, response::Response};
use callboard_catalog::{
    EntityRef, FullTextFilter, OrderField, Position, Predicate, Selection, Start,
};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::{
    Facets, Scoped, Web, WebError, catalog_href, entity_href, facets_total, kind_label,
    layout::{Nav, kind_badge, lifecycle_badge, page},
    ref_of, render, short_ref, text,
};

/// Rows per page unless `limit` says otherwise.
const PAGE: usize = 50;
/// Options offered in the owner and tag pickers (the most used first).
const PICKER_OPTIONS: usize = 300;

/// The query string of `/catalog`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub(crate) struct Params {
    pub(crate) q: String,
    pub(crate) kind: String,
    #[serde(rename = "type")]
    pub(crate) ty: String,
    pub(crate) lifecycle: String,
    pub(crate) owner: String,
    pub(crate) tag: String,
    pub(crate) namespace: String,
    pub(crate) sort: String,
    pub(crate) order: String,
    pub(crate) after: String,
    pub(crate) before: String,
    pub(crate) limit: Option<usize>,
}

/// Sort keys the table offers: (URL value, header label, entity field).
const SORTS: &[(&str, &str, &str)] = &[
    ("name", "Name", "metadata.name"),
    ("kind", "Kind", "kind"),
    ("type", "Type", "spec.type"),
    ("owner", "Owner", "spec.owner"),
    ("lifecycle", "Lifecycle", "spec.lifecycle"),
];

impl Params {
    fn sort_key(&self) -> &'static (&'static str, &'static str, &'static str) {
        SORTS
            .iter()
            .find(|(k, _, _)| *k == self.sort)
            .unwrap_or(&SORTS[0])
    }

    fn descending(&self) -> bool {
        self.order == "desc"
    }

    /// The owner filter as a ref key: a bare name means a group.
    fn owner_key(&self) -> Option<String> {
        let owner = self.owner.trim();
        if owner.is_empty() {
            return None;
        }
        Some(
            EntityRef::parse_with_defaults(owner, Some("group"), "default")
                .map(|r| r.key())
                .unwrap_or_else(|_| owner.to_lowercase()),
        )
    }

    /// What to ask the catalog for, given facet counts over what the
    /// reader may read and the share of the whole catalog that is (see
    /// [`Plan`] and [`Web::scope_share`]).
    fn plan(&self, facets: &Facets, share: f64, limit: usize, by_name: bool) -> Plan {
        let total = facets_total(facets);
        let count_of = |field: &str, value: &str| -> u64 {
            facets
                .get(field)
                .and_then(|values| values.iter().find(|f| f.value.eq_ignore_ascii_case(value)))
                .map_or(0, |f| f.count)
        };
        // (predicate, how many entities match it alone)
        let mut filters: Vec<(Predicate, u64)> = Vec::new();
        for (key, value) in [
            ("kind", &self.kind),
            ("spec.type", &self.ty),
            ("spec.lifecycle", &self.lifecycle),
            ("metadata.tags", &self.tag),
            ("metadata.namespace", &self.namespace),
        ] {
            let value = value.trim();
            if !value.is_empty() {
                filters.push((Predicate::eq(key, &[value]), count_of(key, value)));
            }
        }
        if let Some(owner) = self.owner_key() {
            filters.push((
                owner_predicate(&owner),
                count_of("relations.ownedBy", &owner),
            ));
        }
        let q = self.q.trim();
        let exact = match (filters.as_slice(), q.is_empty()) {
            ([], true) => Some(total),
            ([(_, n)], true) => Some(*n),
            _ => None,
        };
        let sort = if by_name { &SORTS[0] } else { self.sort_key() };
        let descending = self.descending();
        let indexed_sort = matches!(sort.0, "name" | "kind");
        // The catalog drives a query from the index of its most selective
        // plain condition. That is right for rare values, but for common ones
        // (kind=component is most of a catalog) it reads and sorts every
        // match for one page. Then it is far cheaper to walk the sort index
        // and test each row, which finds a page of matches in a few hundred
        // rows: so wrap the conditions (nested, they do not drive). The
        // walk goes through the whole catalog, so a reader restricted to a
        // small share of it (what their groups own) walks far more rows:
        // then their scope's condition drives instead.
        let smallest = filters.iter().map(|(_, n)| *n).min().unwrap_or(total);
        let fraction: f64 = share
            * filters
                .iter()
                .map(|(_, n)| *n as f64 / total.max(1) as f64)
                .product::<f64>();
        let rows_walked = limit as f64 / fraction.max(1e-9);
        let walk = indexed_sort && smallest > DRIVE_BELOW && rows_walked < WALK_AT_MOST;
        let plain: Vec<Predicate> = filters.into_iter().map(|(p, _)| p).collect();
        let wrapped: Vec<Predicate> = if walk {
            plain
                .iter()
                .map(|p| Predicate::All(vec![p.clone()]))
                .collect()
        } else {
            plain.clone()
        };
        let full_text = (!q.is_empty()).then(|| FullTextFilter {
            term: q.to_owned(),
            fields: Vec::new(),
        });
        Plan {
            selection: Selection {
                predicate: (!wrapped.is_empty()).then_some(Predicate::All(wrapped)),
                full_text: full_text.clone(),
                order: vec![OrderField {
                    field: sort.2.to_owned(),
                    descending,
                }],
            },
            // Counting reads every match anyway: there the index always pays.
            counting: Selection {
                predicate: (!plain.is_empty()).then_some(Predicate::All(plain)),
                full_text,
                order: Vec::new(),
            },
            exact,
            indexed_sort,
        }
    }

    /// The filters (not the cursor) as URL pairs, to build links from.
    fn pairs(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("q", self.q.trim()),
            ("kind", self.kind.trim()),
            ("type", self.ty.trim()),
            ("lifecycle", self.lifecycle.trim()),
            ("owner", self.owner.trim()),
            ("tag", self.tag.trim()),
            ("namespace", self.namespace.trim()),
        ]
    }

    fn href_with(&self, extra: &[(&'static str, &str)]) -> String {
        let mut pairs = self.pairs();
        let limit = self.limit.map(|l| l.to_string()).unwrap_or_default();
        pairs.push(("limit", &limit));
        if !self.sort.is_empty() && !extra.iter().any(|(k, _)| *k == "sort") {
            pairs.push(("sort", &self.sort));
            pairs.push(("order", &self.order));
        }
        pairs.extend_from_slice(extra);
        catalog_href(&pairs)
    }

    fn filtered(&self) -> bool {
        self.pairs().iter().any(|(_, v)| !v.is_empty())
    }
}

/// Entities owned by `owner` (a ref key). The catalog drives a query from
/// an index only for plain field conditions, not relation ones, so this
/// matches every way `spec.owner` can spell the ref (the only source of
/// `ownedBy`) instead of `relations.ownedBy`, which at 100k entities would
/// probe every row.
fn owner_predicate(owner: &str) -> Predicate {
    let Ok(r) = EntityRef::parse(owner) else {
        return Predicate::eq("relations.ownedBy", &[owner]);
    };
    let (kind, namespace, name) = (
        r.kind.to_lowercase(),
        r.namespace.to_lowercase(),
        r.name.to_lowercase(),
    );
    let mut spellings = vec![format!("{kind}:{namespace}/{name}")];
    let default_namespace = namespace == callboard_catalog::entity_ref::DEFAULT_NAMESPACE;
    if default_namespace {
        spellings.push(format!("{kind}:{name}"));
    }
    // `group` is spec.owner's default kind.
    if kind == "group" {
        spellings.push(format!("{namespace}/{name}"));
        if default_namespace {
            spellings.push(name);
        }
    }
    let spellings: Vec<&str> = spellings.iter().map(String::as_str).collect();
    Predicate::eq("spec.owner", &spellings)
}

/// A condition matching fewer entities than this drives the query.
const DRIVE_BELOW: u64 = 5_000;
/// Walking the sort index is abandoned when it would test more rows than this.
const WALK_AT_MOST: f64 = 20_000.0;
/// Sorting by a field without an index (type, owner, lifecycle) reads every
/// match; above this many it would be slow, so the page sorts by name.
const SORT_ANY_AT_MOST: u64 = 20_000;

/// How long a page waits for its count once the page itself is read.
const COUNT_GRACE: std::time::Duration = std::time::Duration::from_millis(5);

/// How a page is read.
struct Plan {
    selection: Selection,
    /// The same conditions, shaped for counting.
    counting: Selection,
    /// The number of matches, when the facet counts already say it.
    exact: Option<u64>,
    /// Whether the sort key has an index (name, kind).
    indexed_sort: bool,
}

fn cursor(position: &Position) -> String {
    callboard_catalog::encode_cursor(position)
}

fn decode(cursor: &str) -> Result<Position, WebError> {
    callboard_catalog::decode_cursor("page cursor", cursor).map_err(|_| {
        WebError::BadRequest(
            "This page link is malformed or out of date; start again from the first page.".into(),
        )
    })
}

pub(super) async fn handler(
    Scoped(web): Scoped,
    Query(params): Query<Params>,
) -> Result<Response, WebError> {
    let search = params.q.trim().to_owned();
    let found = Arc::new(AtomicU64::new(0));
    let counted = found.clone();
    let mut response = render(&web, move |web| catalog_page(web, &params, &counted)).await?;
    if !search.is_empty() {
        response.extensions_mut().insert(crate::usage::SearchNote {
            text: search,
            results: found.load(Ordering::Relaxed),
        });
    }
    Ok(response)
}

/// Renders the catalog table; stores in `found` how many entities match
/// (at least the ones shown when the count did not finish in time).
fn catalog_page(web: &Web, params: &Params, found: &AtomicU64) -> Result<Markup, WebError> {
    let limit = params.limit.unwrap_or(PAGE).clamp(1, 500);
    let start = if !params.after.is_empty() {
        Start::After(decode(&params.after)?)
    } else if !params.before.is_empty() {
        Start::Before(decode(&params.before)?)
    } else {
        Start::Beginning
    };
    let catalog = web.catalog();
    let facets = web.facets()?;
    let share = web.scope_share(&facets)?;
    let mut plan = params.plan(&facets, share, limit, false);
    let mut sort_note = None;
    if !plan.indexed_sort {
        // Counts are remembered by the catalog until it changes.
        let total = match plan.exact {
            Some(n) => n,
            None => catalog.count(&plan.counting)?,
        };
        plan.exact = Some(total);
        if total > SORT_ANY_AT_MOST {
            let field = params.sort_key().1.to_lowercase();
            sort_note = Some(format!(
                "Sorting by {field} works on up to {SORT_ANY_AT_MOST} matches; these {total} are sorted by name. Narrow the filters to sort by {field}."
            ));
            plan = Plan {
                exact: Some(total),
                ..params.plan(&facets, share, limit, true)
            };
        }
    }
    // The count and the page are independent reads: count on another thread
    // while the page is read. A count over many matches (a common search
    // word) can take longer than the page itself; the page does not wait
    // for it past a short grace, and the catalog remembers the result for
    // the next view (until the catalog changes).
    let counting = match plan.exact {
        Some(n) => Err(n),
        None => {
            let (tx, rx) = std::sync::mpsc::channel();
            let (web, selection) = (web.clone(), plan.counting.clone());
            std::thread::spawn(move || {
                let _ = tx.send(web.catalog().count(&selection));
            });
            Ok(rx)
        }
    };
    let page_rows = catalog.query(&plan.selection, &start, limit)?;
    let total: Option<u64> = match counting {
        Err(n) => Some(n),
        Ok(rx) => match rx.recv_timeout(COUNT_GRACE) {
            Ok(counted) => Some(counted?),
            Err(_) => None,
        },
    };

    found.store(
        total.unwrap_or(page_rows.items.len() as u64),
        Ordering::Relaxed,
    );
    let (has_prev, has_next) = match start {
        Start::Before(_) => (page_rows.more, true),
        Start::After(_) => (true, page_rows.more),
        _ => (false, page_rows.more),
    };
    let title = if params.kind.is_empty() {
        "Catalog".to_owned()
    } else {
        format!("{} catalog", kind_label(&params.kind))
    };
    let options = |field: &str| -> Vec<(String, u64)> {
        facets
            .get(field)
            .map(|v| v.iter().map(|f| (f.value.clone(), f.count)).collect())
            .unwrap_or_default()
    };
    let select = |name: &str, label: &str, field: &str, current: &str| {
        let id = format!("f-{name}");
        html! {
            label for=(id) {
                (label)
                select #(id) name=(name) {
                    option value="" { "Any" }
                    @for (value, count) in options(field).iter().take(PICKER_OPTIONS) {
                        option value=(value) selected[value.eq_ignore_ascii_case(current.trim())] {
                            (value) " (" (count) ")"
                        }
                    }
                }
            }
        }
    };
    let picker = |name: &str, label: &str, field: &str, current: &str, hint: &str| {
        let id = format!("f-{name}");
        let list = format!("{id}-options");
        html! {
            label for=(id) {
                (label)
                input #(id) type="text" name=(name) value=(current) list=(list) placeholder=(hint) autocomplete="off";
                datalist #(list) {
                    @for (value, _) in options(field).iter().take(PICKER_OPTIONS) {
                        option value=(value) {}
                    }
                }
            }
        }
    };
    let sort_header = |key: &str, label: &str| {
        let current = params.sort_key().0 == key;
        let next_order = if current && !params.descending() {
            "desc"
        } else {
            "asc"
        };
        let href = params.href_with(&[("sort", key), ("order", next_order)]);
        let state = match (current, params.descending()) {
            (false, _) => None,
            (true, false) => Some("ascending"),
            (true, true) => Some("descending"),
        };
        html! {
            th scope="col" aria-sort=[state] {
                a href=(href) { (label) @if let Some(s) = state { (if s == "ascending" { " ▲" } else { " ▼" }) } }
            }
        }
    };

    let body = html! {
        h1 { (title) }
        p.muted {
            "Everything your organisation builds and runs: components, APIs, resources, systems, domains, teams and people. "
            "Filter with the form, click a column to sort, open a row for its page."
        }
        section.panel aria-label="Filters" {
            form.filters method="get" action="/catalog" {
                label.wide for="f-q" {
                    "Search"
                    input #f-q type="search" name="q" value=(params.q) placeholder="Name, title, description, tag…";
                }
                (select("kind", "Kind", "kind", &params.kind))
                (select("type", "Type", "spec.type", &params.ty))
                (select("lifecycle", "Lifecycle", "spec.lifecycle", &params.lifecycle))
                (picker("owner", "Owner", "relations.ownedBy", &params.owner, "e.g. platform-team"))
                (picker("tag", "Tag", "metadata.tags", &params.tag, "e.g. kafka"))
                (select("namespace", "Namespace", "metadata.namespace", &params.namespace))
                label for="f-sort" {
                    "Sort by"
                    select #f-sort name="sort" {
                        @for (key, label, _) in SORTS {
                            option value=(key) selected[params.sort_key().0 == *key] { (label) }
                        }
                    }
                }
                label for="f-order" {
                    "Order"
                    select #f-order name="order" {
                        option value="asc" selected[!params.descending()] { "Ascending" }
                        option value="desc" selected[params.descending()] { "Descending" }
                    }
                }
                div.actions {
                    button type="submit" { "Apply" }
                    @if params.filtered() { a.button.secondary href="/catalog" { "Clear" } }
                }
            }
        }
        @if let Some(note) = &sort_note { p.notice role="status" { (note) } }
        div.summary-line {
            p #result-count role="status" {
                @match total {
                    Some(total) => { strong { (total) } (if total == 1 { " entity" } else { " entities" }) },
                    None => { strong { "Many" } " entities" },
                }
                @if params.filtered() { " match these filters" }
            }
            (pager(params, &page_rows.first, &page_rows.last, has_prev, has_next))
        }
        @if page_rows.items.is_empty() {
            div.panel {
                p { "Nothing matches. " a href="/catalog" { "Clear the filters" } " or try another search." }
            }
        } @else {
            table.entities {
                caption.visually-hidden { (title) ", sorted by " (params.sort_key().1) }
                thead {
                    tr {
                        (sort_header("name", "Name"))
                        (sort_header("kind", "Kind"))
                        (sort_header("type", "Type"))
                        (sort_header("owner", "Owner"))
                        (sort_header("lifecycle", "Lifecycle"))
                        th.hide-narrow scope="col" { "Tags" }
                    }
                }
                tbody {
                    @for entity in &page_rows.values() { (row(entity)) }
                }
            }
            (pager(params, &page_rows.first, &page_rows.last, has_prev, has_next))
        }
    };
    let nav = match params.kind.to_lowercase().as_str() {
        "api" => Nav::Apis,
        "group" => Nav::Teams,
        _ => Nav::Catalog,
    };
    Ok(page(&title, nav, &params.q, &body))
}

fn pager(
    params: &Params,
    first: &Option<Position>,
    last: &Option<Position>,
    has_prev: bool,
    has_next: bool,
) -> Markup {
    let prev = first
        .as_ref()
        .filter(|_| has_prev)
        .map(|p| params.href_with(&[("before", &cursor(p))]));
    let next = last
        .as_ref()
        .filter(|_| has_next)
        .map(|p| params.href_with(&[("after", &cursor(p))]));
    html! {
        nav.pager aria-label="Pages" {
            @if has_prev { a.button.secondary href=(params.href_with(&[])) { "⇤ First" } }
            @match prev {
                Some(href) => a.button.secondary href=(href) rel="prev" { "← Previous" },
                None => span.disabled aria-disabled="true" { "← Previous" },
            }
            @match next {
                Some(href) => a.button.secondary href=(href) rel="next" { "Next →" },
                None => span.disabled aria-disabled="true" { "Next →" },
            }
        }
    }
}

/// The owner of a served entity as a ref (from its `ownedBy` relation, which
/// has the full ref, else from `spec.owner`).
pub(crate) fn owner_of(entity: &Value) -> Option<EntityRef> {
    relation_targets(entity, "ownedBy")
        .into_iter()
        .next()
        .or_else(|| {
            text(entity, "spec.owner")
                .and_then(|o| EntityRef::parse_with_defaults(o, Some("group"), "default").ok())
        })
}

/// Targets of one relation type of a served entity.
pub(crate) fn relation_targets(entity: &Value, kind: &str) -> Vec<EntityRef> {
    entity
        .get("relations")
        .and_then(Value::as_array)
        .map(|rels| {
            rels.iter()
                .filter(|r| {
                    r.get("type")
                        .and_then(Value::as_str)
                        .is_some_and(|t| t.eq_ignore_ascii_case(kind))
                })
                .filter_map(|r| r.get("targetRef").and_then(Value::as_str))
                .filter_map(|t| EntityRef::parse(t).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// A link to an entity, labelled with its short ref.
pub(crate) fn ref_link(r: &EntityRef) -> Markup {
    html! { a href=(entity_href(r)) { (short_ref(r)) } }
}

/// One table row.
fn row(entity: &Value) -> Markup {
    let r = ref_of(entity);
    let title = text(entity, "metadata.title").unwrap_or(&r.name);
    let description = text(entity, "metadata.description").unwrap_or("");
    let tags: Vec<&str> = entity
        .pointer("/metadata/tags")
        .and_then(Value::as_array)
        .map(|t| t.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    html! {
        tr {
            td.name {
                a href=(entity_href(&r)) { (title) }
                @if title != r.name { " " span.muted { "(" (short_ref(&r)) ")" } }
                @if !description.is_empty() { span.desc { (truncate(description, 140)) } }
            }
            td { (kind_badge(&r.kind)) }
            td { (text(entity, "spec.type").unwrap_or("")) }
            td { @if let Some(owner) = owner_of(entity) { (ref_link(&owner)) } }
            td { @if let Some(l) = text(entity, "spec.lifecycle") { (lifecycle_badge(l)) } }
            td.hide-narrow { @for t in tags { span.tag { (t) } } }
        }
    }
}

/// A compact table of entities (used on group and user pages).
pub(crate) fn table(items: &[Value], caption: &str) -> Markup {
    html! {
        table.entities {
            caption.visually-hidden { (caption) }
            thead { tr { th scope="col" { "Name" } th scope="col" { "Kind" } th scope="col" { "Type" } th scope="col" { "Owner" } th scope="col" { "Lifecycle" } th.hide-narrow scope="col" { "Tags" } } }
            tbody { @for e in items { (row(e)) } }
        }
    }
}

/// At most `max` characters, ending with an ellipsis when cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    let s = s.trim();
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", s[..i].trim_end()),
        None => s.to_owned(),
    }
}
