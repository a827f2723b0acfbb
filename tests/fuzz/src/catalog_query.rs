//! The catalog's read API as requests reach it, against a small seeded
//! catalog: a query string (`GET /entities/by-query`, `GET /entities`:
//! `filter`, `orderField`, `order`, full-text, `offset`, `after` and
//! `cursor`, which the server decodes) or, when the input starts with `{`,
//! a JSON body (`POST /entities/by-query`: `query` predicates, `cursor`,
//! `orderBy`/`orderField`, `fullTextFilter`; `POST /entities/by-refs`:
//! `entityRefs`). The request parsing mirrors `host/src/api/catalog.rs`.

use std::sync::OnceLock;

use callboard_catalog::{
    Catalog, CatalogConfig, FullTextFilter, LocationConfig, LocationKind, OrderField, Position,
    Predicate, Selection, Start, decode_cursor, project,
};
use serde::Deserialize;
use serde_json::Value;

/// Entities of every kind, with relations, labels, tags and annotations.
const SEED: &str = include_str!("../seed-catalog.yaml");

/// The API clamps page sizes (issue 10); larger ones only cost time here.
const MAX_LIMIT: usize = 50;

/// What a by-query cursor carries (`Cursor` in the API).
#[derive(Deserialize)]
struct Cursor {
    #[serde(default)]
    filter: Vec<String>,
    #[serde(default)]
    query: Option<Value>,
    #[serde(default)]
    order: Vec<OrderField>,
    #[serde(default)]
    full_text: Option<FullTextFilter>,
    position: Position,
    #[serde(default)]
    before: bool,
}

/// One parsed request.
#[derive(Default)]
struct Request {
    filter: Vec<String>,
    query: Option<Value>,
    order: Vec<OrderField>,
    full_text: Option<FullTextFilter>,
    start: Start,
    limit: usize,
    fields: Option<Vec<String>>,
    facets: Vec<String>,
    refs: Vec<String>,
}

/// One input: a query string or a JSON body.
pub fn run(data: &[u8]) {
    let request = if data.first() == Some(&b'{') {
        body_request(data)
    } else {
        query_request(data)
    };
    if let Some(request) = request {
        let (runtime, catalog) = catalog();
        runtime.block_on(execute(catalog, &request));
    }
}

fn catalog() -> &'static (tokio::runtime::Runtime, Catalog) {
    static CATALOG: OnceLock<(tokio::runtime::Runtime, Catalog)> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir").keep();
        let seed = dir.join("seed.yaml");
        std::fs::write(&seed, SEED).expect("writing the seed catalog");
        let config = CatalogConfig {
            locations: vec![LocationConfig {
                kind: LocationKind::File,
                target: seed.display().to_string(),
            }],
            refresh_interval_secs: 0,
            ..CatalogConfig::default()
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let catalog = runtime.block_on(async {
            let stores = callboard_store_sqlite::open(&dir, &Default::default()).expect("stores");
            let catalog = Catalog::open(&stores, &config).await.expect("catalog");
            catalog.sync_config_locations().await.expect("locations");
            catalog.refresh_all().await.expect("seeding the catalog");
            catalog
        });
        (runtime, catalog)
    })
}

fn query_request(data: &[u8]) -> Option<Request> {
    let params: Vec<(String, String)> = form_urlencoded::parse(data).into_owned().collect();
    let all = |key: &'static str| all(&params, key);
    let one = |key: &'static str| all(key).last();
    // Absent is `Some(None)`; not a number fails the request (`None`).
    let number = |key: &'static str| match one(key) {
        None => Some(None),
        Some(v) => v.parse::<usize>().ok().map(Some),
    };
    let list = |key: &'static str| -> Vec<String> {
        all(key)
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let fields = Some(list("fields")).filter(|f| !f.is_empty());
    let limit = number("limit")?.unwrap_or(20).min(MAX_LIMIT);
    let facets = list("facet");
    if let Some(cursor) = one("cursor") {
        let c: Cursor = decode_cursor("cursor", cursor).ok()?;
        return Some(Request {
            filter: c.filter,
            query: c.query,
            order: c.order,
            full_text: c.full_text,
            start: if c.before {
                Start::Before(c.position)
            } else {
                Start::After(c.position)
            },
            limit,
            fields,
            facets,
            refs: Vec::new(),
        });
    }
    let mut order = Vec::new();
    for o in all("orderField") {
        order.push(order_field(o)?);
    }
    // `GET /entities`: `order=asc:<field>`.
    for o in all("order") {
        let (dir, field) = o.split_once(':')?;
        order.push(OrderField {
            field: field.to_owned(),
            descending: direction(dir)?,
        });
    }
    let full_text = one("fullTextFilterTerm")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|term| FullTextFilter {
            term: term.to_owned(),
            fields: list("fullTextFilterFields"),
        });
    let start = match (one("after"), number("offset")?) {
        (Some(after), _) => Start::After(decode_cursor("after cursor", after).ok()?),
        (None, Some(n)) => Start::Offset(n),
        (None, None) => Start::Beginning,
    };
    Some(Request {
        filter: all("filter").map(str::to_owned).collect(),
        order,
        full_text,
        start,
        limit,
        fields,
        facets,
        ..Request::default()
    })
}

fn all<'a>(params: &'a [(String, String)], key: &'a str) -> impl Iterator<Item = &'a str> {
    params
        .iter()
        .filter(move |(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn body_request(data: &[u8]) -> Option<Request> {
    let body: Value = serde_json::from_slice(data).ok()?;
    let limit = match body.get("limit") {
        Some(v) => usize::try_from(v.as_u64()?).ok()?,
        None => 20,
    }
    .min(MAX_LIMIT);
    let strings = |key: &str| -> Option<Vec<String>> {
        body.get(key).map_or(Some(Vec::new()), |v| {
            serde_json::from_value::<Vec<String>>(v.clone()).ok()
        })
    };
    let fields = Some(strings("fields")?).filter(|f| !f.is_empty());
    let facets = strings("facets")?;
    let refs = strings("entityRefs")?;
    if let Some(cursor) = body.get("cursor") {
        let c: Cursor = decode_cursor("cursor", cursor.as_str()?).ok()?;
        return Some(Request {
            filter: c.filter,
            query: c.query,
            order: c.order,
            full_text: c.full_text,
            start: if c.before {
                Start::Before(c.position)
            } else {
                Start::After(c.position)
            },
            limit,
            fields,
            facets,
            refs,
        });
    }
    let mut order = body_order(body.get("orderBy"))?;
    order.extend(body_order(body.get("orderField"))?);
    let full_text = body.get("fullTextFilter").and_then(|f| {
        let term = f.get("term")?.as_str()?.trim();
        (!term.is_empty()).then(|| FullTextFilter {
            term: term.to_owned(),
            fields: f
                .get("fields")
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default(),
        })
    });
    let start = match body.get("offset") {
        Some(v) => Start::Offset(usize::try_from(v.as_u64()?).ok()?),
        None => Start::Beginning,
    };
    Some(Request {
        filter: Vec::new(),
        query: Some(body.get("query").cloned().unwrap_or(Value::Null)),
        order,
        full_text,
        start,
        limit,
        fields,
        facets,
        refs,
    })
}

fn direction(s: &str) -> Option<bool> {
    match s.trim() {
        "asc" => Some(false),
        "desc" => Some(true),
        _ => None,
    }
}

fn order_field(s: &str) -> Option<OrderField> {
    let (field, dir) = s.split_once(',').unwrap_or((s, "asc"));
    Some(OrderField {
        field: field.trim().to_owned(),
        descending: direction(dir)?,
    })
}

fn body_order(v: Option<&Value>) -> Option<Vec<OrderField>> {
    let Some(v) = v else {
        return Some(Vec::new());
    };
    let items: Vec<&Value> = match v {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::String(s) => order_field(s),
            Value::Object(o) => Some(OrderField {
                field: o.get("field")?.as_str()?.to_owned(),
                descending: direction(o.get("order").and_then(Value::as_str).unwrap_or("asc"))?,
            }),
            _ => None,
        })
        .collect()
}

fn predicate(request: &Request) -> Option<Option<Predicate>> {
    let from_filter = Predicate::parse_filters(&request.filter).ok()?;
    let from_query = match &request.query {
        None | Some(Value::Null) => None,
        Some(Value::Object(o)) if o.is_empty() => None,
        Some(q) => Some(Predicate::from_json(q).ok()?),
    };
    Some(match (from_filter, from_query) {
        (Some(a), Some(b)) => Some(Predicate::All(vec![a, b])),
        (a, b) => a.or(b),
    })
}

fn uids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .filter_map(|e| e.pointer("/metadata/uid").and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

async fn execute(catalog: &Catalog, request: &Request) {
    let Some(predicate) = predicate(request) else {
        return;
    };
    if !request.refs.is_empty() {
        let _ = catalog.get_by_refs(&request.refs, predicate.as_ref()).await;
    }
    let selection = Selection {
        predicate,
        full_text: request.full_text.clone(),
        order: request.order.clone(),
    };
    let limit = request.limit;
    let _ = catalog.count(&selection).await;
    let _ = catalog.page_end(&selection, &request.start, limit).await;
    if let Ok(page) = catalog.query(&selection, &request.start, limit).await {
        if let Some(fields) = &request.fields {
            for item in &page.values() {
                let _ = project(item, fields);
            }
        }
        // Keyset paging: the next page starts strictly after this one.
        if let (true, false, Some(last)) = (page.more, page.items.is_empty(), page.last.clone())
            && let Ok(next) = catalog.query(&selection, &Start::After(last), limit).await
        {
            let seen = uids(&page.values());
            for uid in uids(&next.values()) {
                assert!(!seen.contains(&uid), "entity {uid} is on two pages");
            }
        }
    }
    let mut chunks = catalog.stream_json_array(
        selection.clone(),
        request.start.clone(),
        Some(limit),
        request.fields.clone(),
    );
    while std::future::poll_fn(|cx| {
        futures_core::Stream::poll_next(std::pin::Pin::new(&mut chunks), cx)
    })
    .await
    .is_some()
    {}
    if !request.facets.is_empty() {
        let _ = catalog
            .facets(&request.facets, selection.predicate.as_ref())
            .await;
    }
}
