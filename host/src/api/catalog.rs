//! `/api/catalog`: Backstage's catalog REST API over [`callboard_catalog::Catalog`].
//!
//! Shapes, status codes and error bodies follow Backstage's
//! `plugins/catalog-backend/src/schema/openapi.yaml`, so that
//! `@backstage/catalog-client` works unchanged.

use axum::{
    Extension, Json, Router,
    body::Body,
    extract::{Path, Query, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use callboard_catalog::{
    Catalog, CatalogError, EntityRef, FullTextFilter, MAX_PAGE, OrderField, Position, Predicate,
    Selection, Start, entity_value, project, push_json_array,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{
    api::{
        auth,
        error::{ApiError, backstage_errors},
    },
    identity::{Identity, access::Scope},
};

type Params = Query<Vec<(String, String)>>;

/// The catalog router, mounted at `/api/catalog`. Every route names the
/// permission it needs ([`auth::require`], checked before the body is read);
/// reads also work out which entities the caller may read
/// ([`auth::read_scope`]), and every read applies that inside its query.
pub fn router(catalog: Catalog, access: auth::CatalogAccess) -> Router {
    use crate::permissions as p;
    use axum::{middleware::from_fn_with_state, routing::delete};
    let need =
        |permission: &'static str| from_fn_with_state((access.clone(), permission), auth::require);
    let scoped = Router::new()
        .route("/entities", get(get_entities))
        .route("/entities/by-query", get(get_by_query).post(post_by_query))
        .route(
            "/entities/by-uid/{uid}",
            get(get_by_uid).merge(delete(delete_by_uid).layer(need(p::CATALOG_ENTITY_DELETE))),
        )
        .route(
            "/entities/by-name/{kind}/{namespace}/{name}",
            get(get_by_name),
        )
        .route(
            "/entities/by-name/{kind}/{namespace}/{name}/ancestry",
            get(get_ancestry),
        )
        .route("/entities/by-refs", post(post_by_refs))
        .route("/entity-facets", get(get_facets).post(post_facets))
        .route(
            "/refresh",
            post(refresh).layer(need(p::CATALOG_ENTITY_REFRESH)),
        )
        .route(
            "/locations/by-entity/{kind}/{namespace}/{name}",
            get(get_location_by_entity).layer(need(p::CATALOG_LOCATION_READ)),
        )
        .route_layer(from_fn_with_state(access.clone(), auth::read_scope));
    let basic = Router::new()
        .route(
            "/validate-entity",
            post(validate_entity).layer(need(p::CATALOG_ENTITY_VALIDATE)),
        )
        .route(
            "/analyze-location",
            post(analyze_location).layer(need(p::CATALOG_LOCATION_ANALYZE)),
        )
        .route(
            "/locations",
            get(get_locations)
                .layer(need(p::CATALOG_LOCATION_READ))
                .merge(post(post_location).layer(need(p::CATALOG_LOCATION_CREATE))),
        )
        .route(
            "/locations/{id}",
            get(get_location)
                .layer(need(p::CATALOG_LOCATION_READ))
                .merge(
                    delete(delete_location)
                        .layer(from_fn_with_state(
                            catalog.clone(),
                            auth::keep_config_locations,
                        ))
                        .layer(need(p::CATALOG_LOCATION_DELETE)),
                ),
        );
    scoped
        .merge(basic)
        .layer(axum::Extension(access.clone()))
        .layer(from_fn_with_state(access, auth::standalone_identity))
        .layer(axum::middleware::from_fn(backstage_errors))
        .with_state(catalog)
}

/// Whether the caller may read `entity` (a served entity, with its ref).
async fn readable(
    catalog: &Catalog,
    scope: &auth::ReadScope,
    entity: &Value,
) -> Result<bool, ApiError> {
    may(catalog, &scope.0, entity).await
}

/// Whether `entity` is within `scope`: asked of the store, with the same
/// predicate a list would use.
async fn may(catalog: &Catalog, scope: &Scope, entity: &Value) -> Result<bool, ApiError> {
    if *scope == Scope::All {
        return Ok(true);
    }
    let Some(r) = entity_ref_of(entity) else {
        return Ok(false);
    };
    scope.reaches(catalog, &r).await.map_err(api_error)
}

fn entity_ref_of(entity: &Value) -> Option<String> {
    let kind = entity.get("kind")?.as_str()?;
    let metadata = entity.get("metadata")?;
    let namespace = metadata
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let name = metadata.get("name")?.as_str()?;
    Some(EntityRef::new(kind, namespace, name).to_string())
}

/// The check of a resource permission on one entity the caller can read:
/// 403 naming the permission when the policy's conditions exclude it.
async fn check_on(
    catalog: &Catalog,
    access: &auth::CatalogAccess,
    identity: &Identity,
    permission: &str,
    entity: &Value,
) -> Result<(), ApiError> {
    let scope = access.access().scope(identity, permission);
    if may(catalog, &scope, entity).await? {
        Ok(())
    } else {
        Err(auth::refuse(identity, permission))
    }
}

pub(crate) fn api_error(e: CatalogError) -> ApiError {
    match e {
        CatalogError::Store(e) if e.is_unavailable() => {
            tracing::error!("catalog API: {e}");
            ApiError::unavailable("The catalog database is unavailable; try again shortly")
        }
        CatalogError::Input(m) => ApiError::input(m),
        e @ CatalogError::Invalid(_) => ApiError::input(e.to_string()),
        CatalogError::NotFound(m) => ApiError::not_found(m),
        CatalogError::Conflict(m) => ApiError::conflict(m),
        CatalogError::Location(m) => ApiError::input(m),
        other => internal(other),
    }
}

fn all<'a>(params: &'a [(String, String)], key: &str) -> impl Iterator<Item = &'a str> {
    params
        .iter()
        .filter(move |(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn one<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    all(params, key).last()
}

fn number(params: &[(String, String)], key: &str) -> Result<Option<usize>, ApiError> {
    one(params, key)
        .map(|v| {
            v.parse::<usize>().map_err(|_| {
                ApiError::input(format!(
                    "Invalid {key} \"{v}\": expected a non-negative integer"
                ))
            })
        })
        .transpose()
}

/// `fields=a,b&fields=c` -> `[a, b, c]`; `None` when absent.
fn fields_param(params: &[(String, String)]) -> Option<Vec<String>> {
    let fields: Vec<String> = all(params, "fields")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect();
    (!fields.is_empty()).then_some(fields)
}

fn filters(params: &[(String, String)]) -> Result<Option<Predicate>, ApiError> {
    let filters: Vec<&str> = all(params, "filter").collect();
    Predicate::parse_filters(&filters).map_err(|e| api_error(e.into()))
}

/// Keeps only `fields` of each entity; without fields, the entities go out
/// as the text the store gave.
fn apply_fields(items: Vec<String>, fields: Option<&[String]>) -> Vec<String> {
    match fields {
        Some(fields) => items
            .iter()
            .map(|e| project(&entity_value(e), fields).to_string())
            .collect(),
        None => items,
    }
}

fn decode<T: for<'de> Deserialize<'de>>(what: &str, s: &str) -> Result<T, ApiError> {
    callboard_catalog::decode_cursor(what, s).map_err(api_error)
}

fn encode<T: Serialize>(value: &T) -> String {
    callboard_catalog::encode_cursor(value)
}

// ----- GET /entities -----

async fn get_entities(
    State(catalog): State<Catalog>,
    Extension(scope): Extension<auth::ReadScope>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let predicate = scope.apply(filters(&params)?);
    let mut order = Vec::new();
    for o in all(&params, "order") {
        let (dir, field) = o.split_once(':').ok_or_else(|| {
            ApiError::input(format!(
                "Invalid order \"{o}\": expected asc:<field> or desc:<field>"
            ))
        })?;
        let descending = match dir {
            "asc" => false,
            "desc" => true,
            _ => {
                return Err(ApiError::input(format!(
                    "Invalid order \"{o}\": expected asc:<field> or desc:<field>"
                )));
            }
        };
        order.push(OrderField {
            field: field.to_owned(),
            descending,
        });
    }
    let limit = number(&params, "limit")?;
    let offset = number(&params, "offset")?;
    let start = match (one(&params, "after"), offset) {
        (Some(after), _) => Start::After(decode::<Position>("after cursor", after)?),
        (None, Some(n)) => Start::Offset(n),
        (None, None) => Start::Beginning,
    };
    let selection = Selection {
        predicate,
        full_text: None,
        order,
    };
    let mut response = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json");
    let link = |end: &Position| {
        // The next page repeats this request's parameters with a new `after`.
        let mut query: Vec<(String, String)> = params
            .iter()
            .filter(|(k, _)| k != "after" && k != "offset")
            .cloned()
            .collect();
        query.push(("after".into(), encode(end)));
        let link = format!("</entities?{}>; rel=\"next\"", form_encode(&query));
        HeaderValue::from_str(&link).ok()
    };
    if let Some(limit) = limit.filter(|l| *l <= MAX_PAGE) {
        // A page fits in memory: read it once, for its rows and its link.
        let page = catalog
            .query(&selection, &start, limit)
            .await
            .map_err(api_error)?;
        if page.more
            && let Some(value) = page.last.as_ref().and_then(link)
        {
            response = response.header(header::LINK, value);
        }
        let items = apply_fields(page.items, fields_param(&params).as_deref());
        let mut body = String::new();
        push_json_array(&items, &mut body);
        return response.body(Body::from(body)).map_err(internal);
    }
    if let Some(limit) = limit {
        let (sel, st) = (selection.clone(), start.clone());
        if let Some(end) = catalog
            .page_end(&sel, &st, limit)
            .await
            .map_err(api_error)?
            && let Some(value) = link(&end)
        {
            response = response.header(header::LINK, value);
        }
    }
    let stream = catalog.stream_json_array(selection, start, limit, fields_param(&params));
    response.body(Body::from_stream(stream)).map_err(internal)
}

/// An error no caller can fix: logged, and answered without its details.
fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!("catalog API: {e}");
    ApiError::internal("Internal catalog error")
}

fn form_encode(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", percent(k), percent(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn percent(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ----- by-query -----

/// What a by-query cursor carries: the whole query, so later pages need
/// nothing else. POST cursors keep the predicate under `query` (the client
/// library looks for that key to pick the POST endpoint).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cursor {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    filter: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    query: Option<Value>,
    #[serde(default)]
    order: Vec<OrderField>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    full_text: Option<FullTextFilter>,
    /// Where the page starts: after this position, or before it if `before`.
    position: Position,
    #[serde(default)]
    before: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    total: Option<u64>,
}

struct ByQuery {
    filter: Vec<String>,
    query: Option<Value>,
    order: Vec<OrderField>,
    full_text: Option<FullTextFilter>,
    start: Start,
    limit: usize,
    fields: Option<Vec<String>>,
    include_total: bool,
    known_total: Option<u64>,
}

const DEFAULT_QUERY_LIMIT: usize = 20;

/// A by-query page holds its items in memory: larger limits are clamped
/// (the cursor reaches the rest).
fn page_limit(asked: Option<usize>) -> usize {
    asked
        .unwrap_or(DEFAULT_QUERY_LIMIT)
        .min(callboard_catalog::MAX_PAGE)
}

fn parse_order_field(s: &str) -> Result<OrderField, ApiError> {
    let (field, dir) = s.split_once(',').unwrap_or((s, "asc"));
    let descending = match dir.trim() {
        "asc" => false,
        "desc" => true,
        _ => {
            return Err(ApiError::input(format!(
                "Invalid orderField \"{s}\": expected <field>,asc or <field>,desc"
            )));
        }
    };
    Ok(OrderField {
        field: field.trim().to_owned(),
        descending,
    })
}

async fn get_by_query(
    State(catalog): State<Catalog>,
    Extension(scope): Extension<auth::ReadScope>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let term = one(&params, "fullTextFilterTerm")
        .map(str::trim)
        .filter(|t| !t.is_empty() && one(&params, "cursor").is_none())
        .map(str::to_owned);
    let body = get_by_query_json(catalog, params, &scope).await?;
    let results = Some(body.total_items.unwrap_or(body.items.len() as u64));
    let mut response = body.into_response();
    if let (Some(text), Some(results)) = (term, results) {
        response
            .extensions_mut()
            .insert(crate::usage::SearchNote { text, results });
    }
    Ok(response)
}

async fn get_by_query_json(
    catalog: Catalog,
    params: Vec<(String, String)>,
    scope: &auth::ReadScope,
) -> Result<ByQueryAnswer, ApiError> {
    let limit = page_limit(number(&params, "limit")?);
    let fields = fields_param(&params);
    let include_total = one(&params, "totalItems") != Some("exclude");
    let q = if let Some(cursor) = one(&params, "cursor") {
        from_cursor(decode("cursor", cursor)?, limit, fields, include_total)
    } else {
        let mut order = Vec::new();
        for o in all(&params, "orderField") {
            order.push(parse_order_field(o)?);
        }
        let term = one(&params, "fullTextFilterTerm")
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let full_text = term.map(|term| FullTextFilter {
            term: term.to_owned(),
            fields: all(&params, "fullTextFilterFields")
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .map(str::to_owned)
                .collect(),
        });
        ByQuery {
            filter: all(&params, "filter").map(str::to_owned).collect(),
            query: None,
            order,
            full_text,
            start: number(&params, "offset")?.map_or(Start::Beginning, Start::Offset),
            limit,
            fields,
            include_total,
            known_total: None,
        }
    };
    run_by_query(&catalog, q, scope).await
}

fn from_cursor(
    c: Cursor,
    limit: usize,
    fields: Option<Vec<String>>,
    include_total: bool,
) -> ByQuery {
    ByQuery {
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
        include_total,
        known_total: c.total,
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryBody {
    query: Option<Value>,
    cursor: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
    order_field: Option<Value>,
    order_by: Option<Value>,
    full_text_filter: Option<FullTextBody>,
    fields: Option<Vec<String>>,
    total_items: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct FullTextBody {
    term: Option<String>,
    fields: Option<Vec<String>>,
}

/// `orderField`/`orderBy` in a body: `{field, order}`, a list of them, or
/// `"field,asc"` strings.
fn body_order(v: Option<&Value>) -> Result<Vec<OrderField>, ApiError> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let items: Vec<&Value> = match v {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::String(s) => parse_order_field(s),
            Value::Object(o) => {
                let field = o
                    .get("field")
                    .and_then(Value::as_str)
                    .ok_or_else(|| ApiError::input("orderBy needs a field"))?;
                let descending = match o.get("order").and_then(Value::as_str).unwrap_or("asc") {
                    "asc" => false,
                    "desc" => true,
                    other => {
                        return Err(ApiError::input(format!(
                            "Invalid order \"{other}\": expected asc or desc"
                        )));
                    }
                };
                Ok(OrderField {
                    field: field.to_owned(),
                    descending,
                })
            }
            other => Err(ApiError::input(format!("Invalid orderBy {other}"))),
        })
        .collect()
}

async fn post_by_query(
    State(catalog): State<Catalog>,
    Extension(scope): Extension<auth::ReadScope>,
    body: Option<Json<QueryBody>>,
) -> Result<ByQueryAnswer, ApiError> {
    let Json(body) = body.ok_or_else(|| ApiError::input("Expected a JSON body"))?;
    let limit = page_limit(body.limit);
    let include_total = body
        .total_items
        .as_ref()
        .is_none_or(|t| t != "exclude" && t != &Value::Bool(false));
    let q = if let Some(cursor) = &body.cursor {
        from_cursor(
            decode("cursor", cursor)?,
            limit,
            body.fields.clone(),
            include_total,
        )
    } else {
        let mut order = body_order(body.order_by.as_ref())?;
        order.extend(body_order(body.order_field.as_ref())?);
        let full_text = body.full_text_filter.and_then(|f| {
            let term = f.term.unwrap_or_default();
            (!term.trim().is_empty()).then(|| FullTextFilter {
                term: term.trim().to_owned(),
                fields: f.fields.unwrap_or_default(),
            })
        });
        ByQuery {
            filter: Vec::new(),
            // Always set, so the cursor says "POST" to the client.
            query: Some(body.query.unwrap_or_else(|| json!({}))),
            order,
            full_text,
            start: body.offset.map_or(Start::Beginning, Start::Offset),
            limit,
            fields: body.fields,
            include_total,
            known_total: None,
        }
    };
    run_by_query(&catalog, q, &scope).await
}

fn predicate_of(filter: &[String], query: Option<&Value>) -> Result<Option<Predicate>, ApiError> {
    let from_filter = Predicate::parse_filters(filter).map_err(|e| api_error(e.into()))?;
    let from_query = match query {
        Some(Value::Object(o)) if o.is_empty() => None,
        Some(q) => Some(Predicate::from_json(q).map_err(|e| api_error(e.into()))?),
        None => None,
    };
    Ok(match (from_filter, from_query) {
        (Some(a), Some(b)) => {
            // Each is within the bounds; together they must be too.
            let both = a.and(b);
            both.check_bounds("filter and query")
                .map_err(|e| api_error(e.into()))?;
            Some(both)
        }
        (a, b) => a.or(b),
    })
}

/// The body of a by-query answer.
struct ByQueryAnswer {
    /// The store's JSON text of each entity, written out as it is.
    items: Vec<String>,
    page_info: serde_json::Map<String, Value>,
    total_items: Option<u64>,
}

impl IntoResponse for ByQueryAnswer {
    fn into_response(self) -> Response {
        // `{"items":[...],"pageInfo":{...},"totalItems":n}`
        let page_info = Value::Object(self.page_info).to_string();
        let mut body = String::with_capacity(page_info.len() + 64);
        body.push_str("{\"items\":");
        push_json_array(&self.items, &mut body);
        body.push_str(",\"pageInfo\":");
        body.push_str(&page_info);
        if let Some(total) = self.total_items {
            body.push_str(",\"totalItems\":");
            body.push_str(&total.to_string());
        }
        body.push('}');
        ([(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}

/// One page of a by-query answer. The cursor keeps the caller's own
/// filter, never the scope: each page is narrowed to what the caller who
/// sends it may read.
async fn run_by_query(
    catalog: &Catalog,
    q: ByQuery,
    scope: &auth::ReadScope,
) -> Result<ByQueryAnswer, ApiError> {
    let predicate = scope.apply(predicate_of(&q.filter, q.query.as_ref())?);
    let selection = Selection {
        predicate,
        full_text: q.full_text.clone(),
        order: q.order.clone(),
    };
    let (sel, start, limit) = (selection.clone(), q.start.clone(), q.limit);
    let need_total = q.include_total && q.known_total.is_none();
    let (page, total) = async {
        let page = catalog.query(&sel, &start, limit).await?;
        let total = if need_total {
            Some(catalog.count(&sel).await?)
        } else {
            None
        };
        Ok((page, total))
    }
    .await
    .map_err(api_error)?;
    let total = total.or(q.known_total);
    let cursor = |position: &Position, before: bool| {
        encode(&Cursor {
            filter: q.filter.clone(),
            query: q.query.clone(),
            order: q.order.clone(),
            full_text: q.full_text.clone(),
            position: position.clone(),
            before,
            total,
        })
    };
    let backwards = matches!(q.start, Start::Before(_));
    let next = match (&page.last, backwards) {
        (Some(last), false) if page.more => Some(cursor(last, false)),
        (Some(last), true) => Some(cursor(last, false)),
        _ => None,
    };
    let has_previous = match &q.start {
        Start::Beginning => false,
        Start::Offset(n) => *n > 0,
        Start::After(_) => true,
        Start::Before(_) => page.more,
    };
    let prev = page
        .first
        .as_ref()
        .filter(|_| has_previous)
        .map(|first| cursor(first, true));
    let mut page_info = serde_json::Map::new();
    if let Some(next) = next {
        page_info.insert("nextCursor".into(), Value::String(next));
    }
    if let Some(prev) = prev {
        page_info.insert("prevCursor".into(), Value::String(prev));
    }
    Ok(ByQueryAnswer {
        items: apply_fields(page.items, q.fields.as_deref()),
        page_info,
        total_items: total,
    })
}

// ----- single entities -----

fn path_ref(kind: &str, namespace: &str, name: &str) -> EntityRef {
    EntityRef::new(kind, namespace, name)
}

/// The entity with `uid` if the caller may read it (404 otherwise, as for
/// an unknown uid: no caller learns what exists beyond their reach).
async fn readable_by_uid(
    catalog: &Catalog,
    scope: &auth::ReadScope,
    uid: &str,
) -> Result<Value, ApiError> {
    let message = format!("No entity with uid {uid}");
    match catalog.get_by_uid(uid).await.map_err(api_error)? {
        Some(entity) if readable(catalog, scope, &entity).await? => Ok(entity),
        _ => Err(ApiError::not_found(message)),
    }
}

async fn get_by_uid(
    State(catalog): State<Catalog>,
    Extension(scope): Extension<auth::ReadScope>,
    Path(uid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    readable_by_uid(&catalog, &scope, &uid).await.map(Json)
}

async fn delete_by_uid(
    State(catalog): State<Catalog>,
    Extension(scope): Extension<auth::ReadScope>,
    Extension(access): Extension<auth::CatalogAccess>,
    Extension(identity): Extension<Identity>,
    Path(uid): Path<String>,
) -> Result<StatusCode, ApiError> {
    // As Backstage: allowed outright, an unknown uid is a no-op (204);
    // allowed on some entities only, the entity must be one of them (403
    // otherwise, unknown or not).
    let permission = crate::permissions::CATALOG_ENTITY_DELETE;
    if access.access().scope(&identity, permission) != Scope::All {
        let entity = readable_by_uid(&catalog, &scope, &uid)
            .await
            .map_err(|_| auth::refuse(&identity, permission))?;
        check_on(&catalog, &access, &identity, permission, &entity).await?;
    }
    catalog.delete_by_uid(&uid).await.map_err(api_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The entity `r` if the caller may read it (404 otherwise).
async fn readable_by_ref(
    catalog: &Catalog,
    scope: &auth::ReadScope,
    r: &EntityRef,
) -> Result<Value, ApiError> {
    let message = format!(
        "No {} entity in {} named \"{}\"",
        r.kind, r.namespace, r.name
    );
    match catalog.get_by_ref(r).await.map_err(api_error)? {
        Some(entity) if readable(catalog, scope, &entity).await? => Ok(entity),
        _ => Err(ApiError::not_found(message)),
    }
}

async fn get_by_name(
    State(catalog): State<Catalog>,
    Extension(scope): Extension<auth::ReadScope>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let r = path_ref(&kind, &namespace, &name);
    readable_by_ref(&catalog, &scope, &r).await.map(Json)
}

async fn get_ancestry(
    State(catalog): State<Catalog>,
    Extension(scope): Extension<auth::ReadScope>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let r = path_ref(&kind, &namespace, &name);
    let root = r.to_string();
    let message = format!("No {kind} entity in {namespace} named \"{name}\"");
    readable_by_ref(&catalog, &scope, &r).await?;
    let mut items = catalog
        .ancestry(&r)
        .await
        .map_err(api_error)?
        .ok_or_else(|| ApiError::not_found(message))?;
    // The chain above the root only as far as the caller may read it.
    if !matches!(scope.0, Scope::All) {
        let mut kept = Vec::with_capacity(items.len());
        for item in items {
            if readable(&catalog, &scope, &item.entity).await? {
                kept.push(item);
            }
        }
        items = kept;
    }
    Ok(Json(json!({"rootEntityRef": root, "items": items})))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ByRefsBody {
    entity_refs: Vec<String>,
    fields: Option<Vec<String>>,
    query: Option<Value>,
}

async fn post_by_refs(
    State(catalog): State<Catalog>,
    Extension(scope): Extension<auth::ReadScope>,
    Query(params): Params,
    body: Option<Json<ByRefsBody>>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body.ok_or_else(|| ApiError::input("Expected a JSON body with entityRefs"))?;
    let filter: Vec<String> = all(&params, "filter").map(str::to_owned).collect();
    let predicate = scope.apply(predicate_of(&filter, body.query.as_ref())?);
    let refs = body.entity_refs;
    let items = catalog
        .get_by_refs(&refs, predicate.as_ref())
        .await
        .map_err(api_error)?;
    let items: Vec<Value> = items
        .into_iter()
        .map(|e| match (e, &body.fields) {
            (Some(e), Some(fields)) if !fields.is_empty() => project(&e, fields),
            (Some(e), _) => e,
            (None, _) => Value::Null,
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}

// ----- facets -----

async fn get_facets(
    State(catalog): State<Catalog>,
    Extension(scope): Extension<auth::ReadScope>,
    Query(params): Params,
) -> Result<Json<Value>, ApiError> {
    let facets: Vec<String> = all(&params, "facet").map(str::to_owned).collect();
    if facets.is_empty() {
        return Err(ApiError::input("At least one facet is required"));
    }
    let predicate = scope.apply(filters(&params)?);
    facets_response(&catalog, facets, predicate).await
}

#[derive(Debug, Deserialize)]
struct FacetsBody {
    facets: Vec<String>,
    query: Option<Value>,
}

async fn post_facets(
    State(catalog): State<Catalog>,
    Extension(scope): Extension<auth::ReadScope>,
    body: Option<Json<FacetsBody>>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body.ok_or_else(|| ApiError::input("Expected a JSON body with facets"))?;
    if body.facets.is_empty() {
        return Err(ApiError::input("At least one facet is required"));
    }
    let predicate = scope.apply(predicate_of(&[], body.query.as_ref())?);
    facets_response(&catalog, body.facets, predicate).await
}

async fn facets_response(
    catalog: &Catalog,
    facets: Vec<String>,
    predicate: Option<Predicate>,
) -> Result<Json<Value>, ApiError> {
    let result = catalog
        .facets(&facets, predicate.as_ref())
        .await
        .map_err(api_error)?;
    Ok(Json(json!({ "facets": result })))
}

// ----- refresh and validation -----

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefreshBody {
    entity_ref: String,
}

async fn refresh(
    State(catalog): State<Catalog>,
    Extension(scope): Extension<auth::ReadScope>,
    Extension(access): Extension<auth::CatalogAccess>,
    Extension(identity): Extension<Identity>,
    body: Option<Json<RefreshBody>>,
) -> Result<StatusCode, ApiError> {
    let Json(body) = body.ok_or_else(|| ApiError::input("Expected a JSON body with entityRef"))?;
    let r = EntityRef::parse(&body.entity_ref).map_err(|e| ApiError::input(e.to_string()))?;
    let entity = readable_by_ref(&catalog, &scope, &r).await?;
    check_on(
        &catalog,
        &access,
        &identity,
        crate::permissions::CATALOG_ENTITY_REFRESH,
        &entity,
    )
    .await?;
    catalog.refresh_entity(&r).await.map_err(api_error)?;
    Ok(StatusCode::OK)
}

#[derive(Debug, Deserialize)]
struct ValidateBody {
    location: Option<String>,
    entity: Option<Value>,
}

async fn validate_entity(body: Option<Json<ValidateBody>>) -> Result<Response, ApiError> {
    let Json(body) =
        body.ok_or_else(|| ApiError::input("Expected a JSON body with location and entity"))?;
    let mut errors = Vec::new();
    match body.location.as_deref() {
        Some(l) if l.split_once(':').is_some_and(|(t, rest)| !t.is_empty() && !rest.is_empty()) => {}
        other => errors.push(json!({
            "name": "InputError",
            "message": format!("Invalid location ref {:?}, expected <type>:<target>", other.unwrap_or("")),
        })),
    }
    match &body.entity {
        Some(entity) => errors.extend(
            Catalog::validate(entity)
                .into_iter()
                .map(|e| json!({"name": "InputError", "message": e.message, "field": e.field})),
        ),
        None => errors.push(json!({"name": "InputError", "message": "\"entity\" is required"})),
    }
    if errors.is_empty() {
        Ok(StatusCode::OK.into_response())
    } else {
        Ok((StatusCode::BAD_REQUEST, Json(json!({ "errors": errors }))).into_response())
    }
}

// ----- locations -----

#[derive(Debug, Deserialize)]
struct LocationSpec {
    #[serde(rename = "type")]
    kind: String,
    target: String,
}

#[derive(Debug, Deserialize)]
struct AnalyzeBody {
    location: LocationSpec,
}

async fn analyze_location(
    State(catalog): State<Catalog>,
    body: Option<Json<AnalyzeBody>>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body.ok_or_else(|| ApiError::input("Expected a JSON body with location"))?;
    let added = catalog
        .add_location(&body.location.kind, &body.location.target, true)
        .await
        .map_err(api_error)?;
    let registered = catalog
        .location(&added.location.id)
        .await
        .map_err(api_error)?
        .is_some();
    let files: Vec<Value> = added
        .entities
        .into_iter()
        .filter(|e| !is_generated_location(e))
        .map(|entity| {
            let managed = entity
                .pointer("/metadata/annotations/backstage.io~1managed-by-location")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let (kind, target) = managed.split_once(':').unwrap_or(("file", managed.as_str()));
            json!({"location": {"type": kind, "target": target}, "isRegistered": registered, "entity": entity})
        })
        .collect();
    Ok(Json(
        json!({"existingEntityFiles": files, "generateEntities": []}),
    ))
}

fn is_generated_location(e: &Value) -> bool {
    e.get("kind").and_then(Value::as_str) == Some("Location")
        && e.pointer("/metadata/name")
            .and_then(Value::as_str)
            .is_some_and(|n| n.starts_with("generated-"))
}

async fn post_location(
    State(catalog): State<Catalog>,
    Query(params): Params,
    body: Option<Json<LocationSpec>>,
) -> Result<Response, ApiError> {
    let Json(spec) =
        body.ok_or_else(|| ApiError::input("Expected a JSON body with type and target"))?;
    let dry_run = one(&params, "dryRun") == Some("true");
    let added = catalog
        .add_location(&spec.kind, &spec.target, dry_run)
        .await
        .map_err(api_error)?;
    let mut out = json!({"location": added.location, "entities": added.entities});
    if dry_run {
        out["exists"] = json!(
            catalog
                .location(&added.location.id)
                .await
                .map_err(api_error)?
                .is_some()
        );
    }
    if !added.problems.is_empty() {
        out["errors"] = json!(added.problems);
    }
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

async fn get_locations(State(catalog): State<Catalog>) -> Result<Json<Value>, ApiError> {
    let rows = catalog.locations().await.map_err(api_error)?;
    Ok(Json(Value::Array(
        rows.into_iter().map(|l| json!({ "data": l })).collect(),
    )))
}

async fn get_location(
    State(catalog): State<Catalog>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let message = format!("Found no location with ID {id}");
    let row = catalog
        .location(&id)
        .await
        .map_err(api_error)?
        .ok_or_else(|| ApiError::not_found(message))?;
    Ok(Json(json!(row)))
}

async fn delete_location(
    State(catalog): State<Catalog>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    catalog.remove_location(&id).await.map_err(api_error)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_location_by_entity(
    State(catalog): State<Catalog>,
    Extension(scope): Extension<auth::ReadScope>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let r = path_ref(&kind, &namespace, &name);
    readable_by_ref(&catalog, &scope, &r).await?;
    let message = format!("Found no location for entity {r}");
    let row = catalog
        .location_by_entity(&r)
        .await
        .map_err(api_error)?
        .ok_or_else(|| ApiError::not_found(message))?;
    Ok(Json(json!(row)))
}
