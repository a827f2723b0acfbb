//! The API: routing by path as the API server does, authentication, the
//! fault modes, content negotiation (JSON, Table, PartialObjectMetadata),
//! lists with selectors and paging, gets, and the one write (PATCH of a
//! Deployment). Every error is a `Status` object.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::Engine as _;
use jiff::Timestamp;
use serde_json::{Map, Value, json};

use crate::{
    Fault, Options,
    objects::{GROUP_VERSIONS, RESOURCES, ResourceType, resource_index, stable_hash, stable_uid},
    selector::{FieldSelector, LabelSelector},
    table,
};

/// The largest PATCH body accepted.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Who the token authenticates as (named in `Forbidden` messages).
const USER: &str = "system:serviceaccount:callboard:callboard-reader";
const ANONYMOUS: &str = "system:anonymous";

pub(crate) struct Api {
    token: Option<String>,
    fault: Fault,
    /// `host:port`, for `serverAddressByClientCIDRs`.
    address: String,
    store: RwLock<Store>,
    pub(crate) requests: Arc<AtomicU64>,
}

struct Store {
    /// The cluster-wide resource version: the last one handed out.
    revision: u64,
    /// (resource index, namespace or "", name) -> object with kind/apiVersion.
    objects: BTreeMap<(usize, String, String), Value>,
}

impl Api {
    pub(crate) fn new(options: Options, address: String, now: Timestamp) -> Self {
        let Options {
            cluster,
            token,
            objects,
            fault,
        } = options;
        Self {
            token: token.filter(|t| !t.is_empty()),
            fault,
            address,
            store: RwLock::new(Store::load(&cluster, objects, now)),
            requests: Arc::new(AtomicU64::new(0)),
        }
    }
}

fn seconds(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

fn created(object: &Value) -> Option<Timestamp> {
    object
        .pointer("/metadata/creationTimestamp")?
        .as_str()?
        .parse()
        .ok()
}

impl Store {
    fn load(cluster: &str, objects: crate::Objects, now: Timestamp) -> Self {
        let now = seconds(now);
        let mut items = objects.into_indexed();
        // A namespace object for every namespace in use, and the defaults.
        let namespace_index = RESOURCES.iter().position(|r| r.kind == "Namespace");
        let namespace_index = namespace_index.unwrap_or_default();
        let oldest = items.iter().filter_map(|(_, o)| created(o)).min();
        let mut wanted: BTreeMap<String, Option<Timestamp>> =
            ["default", "kube-node-lease", "kube-public", "kube-system"]
                .into_iter()
                .map(|ns| {
                    (
                        ns.to_owned(),
                        oldest.map(|t| t - jiff::SignedDuration::from_hours(1)),
                    )
                })
                .collect();
        for (_, object) in &items {
            if let Some(ns) = object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
            {
                let first = created(object).map(|t| t - jiff::SignedDuration::from_mins(5));
                let entry = wanted.entry(ns.to_owned()).or_insert(first);
                if let (Some(current), Some(first)) = (*entry, first)
                    && first < current
                {
                    *entry = Some(first);
                }
            }
        }
        for (i, object) in &items {
            if *i == namespace_index
                && let Some(name) = object.pointer("/metadata/name").and_then(Value::as_str)
            {
                wanted.remove(name);
            }
        }
        for (name, at) in wanted {
            let at = at.unwrap_or(now);
            items.push((
                namespace_index,
                json!({
                    "kind": "Namespace",
                    "apiVersion": "v1",
                    "metadata": {
                        "name": name,
                        "creationTimestamp": seconds(at).to_string(),
                        "labels": {"kubernetes.io/metadata.name": name},
                    },
                    "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Active"},
                }),
            ));
        }
        // Fill in what the API server always sets.
        for (i, object) in &mut items {
            let resource = &RESOURCES[*i];
            let name = object
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let namespace = object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
                continue;
            };
            if !metadata.contains_key("uid") {
                metadata.insert(
                    "uid".into(),
                    json!(stable_uid(&[resource.kind, &namespace, &name])),
                );
            }
            if !metadata.contains_key("creationTimestamp") {
                metadata.insert("creationTimestamp".into(), json!(now.to_string()));
            }
            let generational = matches!(
                resource.kind,
                "Deployment" | "ReplicaSet" | "Job" | "CronJob" | "Ingress"
            );
            if generational && !metadata.contains_key("generation") {
                metadata.insert("generation".into(), json!(1));
            }
        }
        // Resource versions: oldest first, from a base that differs per cluster.
        items.sort_by(|(ia, a), (ib, b)| {
            (created(a), ia, key_of(a)).cmp(&(created(b), ib, key_of(b)))
        });
        let base = 4_000_000 + stable_hash(cluster) % 1_000_000;
        let mut revision = base;
        let mut objects = BTreeMap::new();
        for (i, mut object) in items {
            revision += 1;
            if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                metadata.insert("resourceVersion".into(), json!(revision.to_string()));
            }
            let (namespace, name) = key_of(&object);
            objects.insert((i, namespace, name), object);
        }
        Self { revision, objects }
    }
}

fn key_of(object: &Value) -> (String, String) {
    let field = |p: &str| {
        object
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    (field("/metadata/namespace"), field("/metadata/name"))
}

// ---------------------------------------------------------------------------
// Responses

fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = (status, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    response
}

/// A `Status` failure, the body of every error.
pub(crate) fn status(
    code: StatusCode,
    reason: &str,
    message: &str,
    details: Option<Value>,
) -> Response {
    let mut body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    });
    if let Some(details) = details {
        body["details"] = details;
    }
    body["code"] = json!(code.as_u16());
    json_response(code, &body)
}

fn not_found_path() -> Response {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        "the server could not find the requested resource",
        Some(json!({})),
    )
}

fn bad_request(message: &str) -> Response {
    status(StatusCode::BAD_REQUEST, "BadRequest", message, None)
}

fn method_not_allowed() -> Response {
    status(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
        Some(json!({})),
    )
}

fn details(resource: &ResourceType, name: Option<&str>) -> Value {
    let mut details = Map::new();
    if let Some(name) = name {
        details.insert("name".into(), json!(name));
    }
    if !resource.group.is_empty() {
        details.insert("group".into(), json!(resource.group));
    }
    details.insert("kind".into(), json!(resource.name));
    Value::Object(details)
}

fn object_not_found(resource: &ResourceType, name: &str) -> Response {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("{} \"{name}\" not found", resource.qualified()),
        Some(details(resource, Some(name))),
    )
}

// ---------------------------------------------------------------------------
// Routing

enum Route {
    Root,
    Version,
    Health,
    CoreVersions,
    Groups,
    Group(&'static str),
    Resources {
        group: &'static str,
        version: &'static str,
    },
    Collection {
        resource: usize,
        namespace: Option<String>,
    },
    Object {
        resource: usize,
        namespace: Option<String>,
        name: String,
    },
    NotFound,
}

fn decode_segment(segment: &str) -> Option<String> {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

fn route(path: &str) -> Route {
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    if path == "/" {
        return Route::Root;
    }
    let Some(segments) = path
        .strip_prefix('/')
        .unwrap_or(path)
        .split('/')
        .map(decode_segment)
        .collect::<Option<Vec<String>>>()
    else {
        return Route::NotFound;
    };
    if segments.iter().any(String::is_empty) {
        return Route::NotFound;
    }
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let (group, version, rest): (&'static str, &'static str, &[&str]) = match s.as_slice() {
        ["version"] => return Route::Version,
        ["healthz" | "livez" | "readyz"] => return Route::Health,
        ["api"] => return Route::CoreVersions,
        ["apis"] => return Route::Groups,
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", group] => {
            return match GROUP_VERSIONS.iter().find(|(g, _)| g == group) {
                Some((g, _)) => Route::Group(g),
                None => Route::NotFound,
            };
        }
        ["apis", group, version, rest @ ..] => {
            match GROUP_VERSIONS
                .iter()
                .find(|(g, v)| g == group && v == version)
            {
                Some((g, v)) => (g, v, rest),
                None => return Route::NotFound,
            }
        }
        _ => return Route::NotFound,
    };
    let find = |name: &str| resource_index(group, version, name);
    match rest {
        [] => Route::Resources { group, version },
        [resource] => match find(resource) {
            Some(resource) => Route::Collection {
                resource,
                namespace: None,
            },
            None => Route::NotFound,
        },
        [resource, name] => match find(resource) {
            Some(resource) if !RESOURCES[resource].namespaced => Route::Object {
                resource,
                namespace: None,
                name: (*name).to_owned(),
            },
            _ => Route::NotFound,
        },
        ["namespaces", namespace, resource] => match find(resource) {
            Some(resource) if RESOURCES[resource].namespaced => Route::Collection {
                resource,
                namespace: Some((*namespace).to_owned()),
            },
            _ => Route::NotFound,
        },
        ["namespaces", namespace, resource, name] => match find(resource) {
            Some(resource) if RESOURCES[resource].namespaced => Route::Object {
                resource,
                namespace: Some((*namespace).to_owned()),
                name: (*name).to_owned(),
            },
            _ => Route::NotFound,
        },
        _ => Route::NotFound,
    }
}

/// What the client asked the body to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    /// `meta.k8s.io` Table, of this version (`v1` or `v1beta1`).
    Table(&'static str),
    /// `meta.k8s.io/v1` PartialObjectMetadata(List).
    Metadata,
}

/// The first media range of `Accept` this server can answer; `None` when
/// there is an Accept header and nothing in it is answerable.
fn negotiate(headers: &HeaderMap) -> Option<Format> {
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    if accept.trim().is_empty() {
        return Some(Format::Json);
    }
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let mime = parts.next().unwrap_or("").to_ascii_lowercase();
        if !matches!(mime.as_str(), "application/json" | "application/*" | "*/*") {
            continue;
        }
        let params: HashMap<String, String> = parts
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| {
                (
                    k.trim().to_ascii_lowercase(),
                    v.trim().trim_matches('"').to_owned(),
                )
            })
            .collect();
        let group_ok = params.get("g").is_none_or(|g| g == "meta.k8s.io");
        match params.get("as").map(String::as_str) {
            None => return Some(Format::Json),
            Some("Table") if group_ok => match params.get("v").map(String::as_str) {
                Some("v1") => return Some(Format::Table("v1")),
                Some("v1beta1") => return Some(Format::Table("v1beta1")),
                _ => {}
            },
            Some("PartialObjectMetadata" | "PartialObjectMetadataList")
                if group_ok && params.get("v").map(String::as_str) == Some("v1") =>
            {
                return Some(Format::Metadata);
            }
            _ => {}
        }
    }
    None
}

// ---------------------------------------------------------------------------
// The handler

pub(crate) async fn handle(State(api): State<Arc<Api>>, request: Request) -> Response {
    api.requests.fetch_add(1, Ordering::SeqCst);
    if let Fault::Slow(delay) = api.fault {
        tokio::time::sleep(delay).await;
    }
    let (parts, body) = request.into_parts();
    if let Some(response) = api.reject(&parts.headers) {
        return response;
    }
    let query: Vec<(String, String)> =
        form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let query = Query(query);
    let route = route(parts.uri.path());
    let user = if api.token.is_some() { USER } else { ANONYMOUS };

    // The forbidden fault: the account may discover, not touch resources.
    if api.fault == Fault::Forbidden {
        let verb = match (&parts.method, &route) {
            (&Method::PATCH, _) => "patch",
            (_, Route::Collection { .. }) if query.flag("watch") => "watch",
            (_, Route::Collection { .. }) => "list",
            (&Method::GET | &Method::HEAD, _) => "get",
            (&Method::POST, _) => "create",
            (&Method::DELETE, _) => "delete",
            _ => "update",
        };
        match &route {
            Route::Collection {
                resource,
                namespace,
            } => {
                return forbidden(
                    &RESOURCES[*resource],
                    verb,
                    namespace.as_deref(),
                    None,
                    user,
                );
            }
            Route::Object {
                resource,
                namespace,
                name,
            } => {
                let resource = &RESOURCES[*resource];
                // RBAC checks a namespace's own name as its namespace.
                let namespace = namespace
                    .as_deref()
                    .or((resource.kind == "Namespace").then_some(name.as_str()));
                return forbidden(resource, verb, namespace, Some(name), user);
            }
            _ => {}
        }
    }

    let read = parts.method == Method::GET || parts.method == Method::HEAD;
    match route {
        Route::NotFound => not_found_path(),
        Route::Object {
            resource,
            namespace,
            name,
        } if parts.method == Method::PATCH => {
            if RESOURCES[resource].kind != "Deployment" {
                return method_not_allowed();
            }
            api.patch(
                resource,
                namespace.unwrap_or_default(),
                &name,
                &parts.headers,
                &query,
                body,
            )
            .await
        }
        _ if !read => method_not_allowed(),
        Route::Root => json_response(StatusCode::OK, &root_paths()),
        Route::Version => json_response(StatusCode::OK, &version()),
        Route::Health => {
            let mut response = (StatusCode::OK, "ok").into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            response
        }
        Route::CoreVersions => json_response(
            StatusCode::OK,
            &json!({
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": api.address}],
            }),
        ),
        Route::Groups => json_response(
            StatusCode::OK,
            &json!({
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": GROUP_VERSIONS.iter().map(|(g, v)| group_json(g, v)).collect::<Vec<_>>(),
            }),
        ),
        Route::Group(group) => {
            let (g, v) = GROUP_VERSIONS
                .iter()
                .find(|(g, _)| *g == group)
                .copied()
                .unwrap_or((group, "v1"));
            let mut body = group_json(g, v);
            body["kind"] = json!("APIGroup");
            body["apiVersion"] = json!("v1");
            json_response(StatusCode::OK, &body)
        }
        Route::Resources { group, version } => {
            json_response(StatusCode::OK, &resource_list(group, version))
        }
        Route::Collection {
            resource,
            namespace,
        } => {
            let Some(format) = negotiate(&parts.headers) else {
                return not_acceptable();
            };
            if query.flag("watch") {
                return status(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "MethodNotAllowed",
                    "watch is not supported by this server",
                    Some(json!({})),
                );
            }
            api.list(resource, namespace.as_deref(), &query, format)
        }
        Route::Object {
            resource,
            namespace,
            name,
        } => {
            let Some(format) = negotiate(&parts.headers) else {
                return not_acceptable();
            };
            api.get(resource, namespace.as_deref(), &name, &query, format)
        }
    }
}

fn not_acceptable() -> Response {
    status(
        StatusCode::NOT_ACCEPTABLE,
        "NotAcceptable",
        "only the following media types are accepted: application/json, application/json;as=Table;v=v1;g=meta.k8s.io, application/json;as=Table;v=v1beta1;g=meta.k8s.io, application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io",
        Some(json!({})),
    )
}

fn forbidden(
    resource: &ResourceType,
    verb: &str,
    namespace: Option<&str>,
    name: Option<&str>,
    user: &str,
) -> Response {
    let subject = match name {
        Some(name) => format!("{} \"{name}\"", resource.qualified()),
        None => resource.qualified(),
    };
    let scope = match namespace {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_owned(),
    };
    status(
        StatusCode::FORBIDDEN,
        "Forbidden",
        &format!(
            "{subject} is forbidden: User \"{user}\" cannot {verb} resource \"{}\" in API group \"{}\" {scope}",
            resource.name, resource.group
        ),
        Some(details(resource, name)),
    )
}

struct Query(Vec<(String, String)>);

impl Query {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }
}

fn root_paths() -> Value {
    let mut paths = vec!["/api".to_owned(), "/api/v1".to_owned(), "/apis".to_owned()];
    for (g, v) in GROUP_VERSIONS {
        paths.push(format!("/apis/{g}"));
        paths.push(format!("/apis/{g}/{v}"));
    }
    paths.extend(["/healthz", "/livez", "/readyz", "/version"].map(str::to_owned));
    json!({ "paths": paths })
}

/// What `/version` says: a Kubernetes 1.31 API server.
pub(crate) fn version() -> Value {
    json!({
        "major": "1",
        "minor": "31",
        "gitVersion": "v1.31.4",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2024-12-10T11:43:21Z",
        "goVersion": "go1.22.9",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn group_json(group: &str, version: &str) -> Value {
    let gv = || json!({"groupVersion": format!("{group}/{version}"), "version": version});
    json!({
        "name": group,
        "versions": [gv()],
        "preferredVersion": gv(),
    })
}

fn resource_list(group: &str, version: &str) -> Value {
    let resources: Vec<Value> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .map(|r| {
            let mut entry = json!({
                "name": r.name,
                "singularName": r.singular,
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": r.verbs,
            });
            if !r.short_names.is_empty() {
                entry["shortNames"] = json!(r.short_names);
            }
            if !r.categories.is_empty() {
                entry["categories"] = json!(r.categories);
            }
            entry
        })
        .collect();
    if group.is_empty() {
        json!({"kind": "APIResourceList", "groupVersion": version, "resources": resources})
    } else {
        json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": format!("{group}/{version}"),
            "resources": resources,
        })
    }
}

impl Api {
    /// The 401 for a request without the right token (or under the
    /// unauthorized fault).
    fn reject(&self, headers: &HeaderMap) -> Option<Response> {
        let unauthorized = || {
            status(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "Unauthorized",
                None,
            )
        };
        if self.fault == Fault::Unauthorized {
            return Some(unauthorized());
        }
        let Some(token) = &self.token else {
            return None;
        };
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, value)| value.trim());
        match presented {
            Some(presented) if constant_time_eq(presented.as_bytes(), token.as_bytes()) => None,
            _ => Some(unauthorized()),
        }
    }

    fn list(
        &self,
        index: usize,
        namespace: Option<&str>,
        query: &Query,
        format: Format,
    ) -> Response {
        let resource = &RESOURCES[index];
        let labels = match LabelSelector::parse(query.get("labelSelector").unwrap_or("")) {
            Ok(selector) => selector,
            Err(e) => return bad_request(&e),
        };
        let fields = match FieldSelector::parse(query.get("fieldSelector").unwrap_or("")) {
            Ok(selector) => selector,
            Err(e) => return bad_request(&e),
        };
        if let Err(e) = fields.check_fields(supported_fields(resource)) {
            return bad_request(&e);
        }
        let limit = match query.get("limit").filter(|l| !l.is_empty()) {
            None => None,
            Some(l) => match l.parse::<i64>() {
                Ok(l) if l > 0 => usize::try_from(l).ok(),
                Ok(_) => None,
                Err(e) => return bad_request(&format!("invalid limit {l:?}: {e}")),
            },
        };
        let start = match query.get("continue").filter(|c| !c.is_empty()) {
            None => None,
            Some(token) => match decode_continue(token) {
                Ok(start) => Some(start),
                Err(e) => {
                    return bad_request(&format!("continue key is not valid: {e}"));
                }
            },
        };
        let store = self.store.read().unwrap_or_else(|e| e.into_inner());
        let matching = store
            .objects
            .range((index, String::new(), String::new())..(index + 1, String::new(), String::new()))
            .filter(|((_, ns, _), _)| namespace.is_none_or(|want| ns == want))
            .filter(|((_, ns, name), _)| {
                start
                    .as_ref()
                    .is_none_or(|(after_ns, after_name)| (ns, name) > (after_ns, after_name))
            })
            .filter(|(_, object)| labels.matches(&labels_of(object)))
            .filter(|(_, object)| fields.matches(|field| field_value(object, field)));
        let mut items: Vec<&Value> = Vec::new();
        let mut remaining = 0usize;
        for (_, object) in matching {
            if limit.is_some_and(|limit| items.len() >= limit) {
                remaining += 1;
            } else {
                items.push(object);
            }
        }
        let mut metadata = json!({"resourceVersion": store.revision.to_string()});
        if remaining > 0
            && let Some(last) = items.last()
        {
            let (ns, name) = key_of(last);
            metadata["continue"] = json!(encode_continue(store.revision, &ns, &name));
            if labels.is_everything() && fields == FieldSelector::default() {
                metadata["remainingItemCount"] = json!(remaining);
            }
        }
        let now = Timestamp::now();
        let body = match format {
            Format::Json => json!({
                "kind": format!("{}List", resource.kind),
                "apiVersion": resource.api_version(),
                "metadata": metadata,
                "items": items.iter().map(|o| strip_type(o)).collect::<Vec<_>>(),
            }),
            Format::Table(version) => table_json(
                resource,
                &items,
                &metadata,
                version,
                query.get("includeObject"),
                now,
            ),
            Format::Metadata => json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": metadata,
                "items": items.iter().map(|o| partial_metadata(o, "v1")).collect::<Vec<_>>(),
            }),
        };
        json_response(StatusCode::OK, &body)
    }

    fn get(
        &self,
        index: usize,
        namespace: Option<&str>,
        name: &str,
        query: &Query,
        format: Format,
    ) -> Response {
        let resource = &RESOURCES[index];
        let store = self.store.read().unwrap_or_else(|e| e.into_inner());
        let key = (index, namespace.unwrap_or("").to_owned(), name.to_owned());
        let Some(object) = store.objects.get(&key) else {
            return object_not_found(resource, name);
        };
        let body = match format {
            Format::Json => object.clone(),
            Format::Table(version) => {
                let metadata = json!({
                    "resourceVersion": object.pointer("/metadata/resourceVersion").cloned().unwrap_or(json!("")),
                });
                table_json(
                    resource,
                    &[object],
                    &metadata,
                    version,
                    query.get("includeObject"),
                    Timestamp::now(),
                )
            }
            Format::Metadata => partial_metadata(object, "v1"),
        };
        json_response(StatusCode::OK, &body)
    }

    async fn patch(
        &self,
        index: usize,
        namespace: String,
        name: &str,
        headers: &HeaderMap,
        query: &Query,
        body: Body,
    ) -> Response {
        let resource = &RESOURCES[index];
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let strategic = match content_type.as_str() {
            "application/strategic-merge-patch+json" => true,
            "application/merge-patch+json" => false,
            _ => {
                return status(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "UnsupportedMediaType",
                    &format!(
                        "the body of the request was in an unknown format ({content_type:?}) - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json"
                    ),
                    Some(json!({})),
                );
            }
        };
        let bytes: Bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
            Ok(bytes) => bytes,
            Err(_) => {
                return status(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "RequestEntityTooLarge",
                    &format!("Request entity too large: limit is {MAX_BODY_BYTES}"),
                    Some(json!({})),
                );
            }
        };
        let patch: Value = match serde_json::from_slice(&bytes) {
            Ok(Value::Object(patch)) => Value::Object(patch),
            Ok(_) => return bad_request("error decoding patch: the patch is not a JSON object"),
            Err(e) => return bad_request(&format!("error decoding patch: {e}")),
        };
        let dry_run = query.get("dryRun") == Some("All");
        if let Some(dry_run) = query.get("dryRun").filter(|d| *d != "All") {
            return bad_request(&format!(
                "dryRun: Unsupported value: \"{dry_run}\": supported values: \"All\""
            ));
        }
        let mut store = self.store.write().unwrap_or_else(|e| e.into_inner());
        let key = (index, namespace, name.to_owned());
        let Some(current) = store.objects.get(&key) else {
            return object_not_found(resource, name);
        };
        let current_version = current
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if let Some(wanted) = patch
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            && wanted != current_version
        {
            return status(
                StatusCode::CONFLICT,
                "Conflict",
                &format!(
                    "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                    resource.qualified()
                ),
                Some(details(resource, Some(name))),
            );
        }
        let mut updated = current.clone();
        if strategic {
            strategic_merge(&mut updated, &patch, None);
        } else {
            merge_patch(&mut updated, &patch);
        }
        // What a patch cannot change.
        for field in ["kind", "apiVersion", "status"] {
            match current.get(field) {
                Some(value) => updated[field] = value.clone(),
                None => {
                    if let Some(map) = updated.as_object_mut() {
                        map.remove(field);
                    }
                }
            }
        }
        for field in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "generation",
            "resourceVersion",
        ] {
            let value = current.pointer(&format!("/metadata/{field}")).cloned();
            match (
                updated.get_mut("metadata").and_then(Value::as_object_mut),
                value,
            ) {
                (Some(metadata), Some(value)) => {
                    metadata.insert(field.into(), value);
                }
                (Some(metadata), None) => {
                    metadata.remove(field);
                }
                (None, _) => {}
            }
        }
        if let Err(causes) = validate_deployment(&updated) {
            let message = causes
                .iter()
                .map(|(field, message)| format!("{field}: {message}"))
                .collect::<Vec<_>>()
                .join(", ");
            return status(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid",
                &format!(
                    "{} \"{name}\" is invalid: {message}",
                    resource.qualified_kind()
                ),
                Some(json!({
                    "name": name,
                    "group": resource.group,
                    "kind": resource.kind,
                    "causes": causes.iter().map(|(field, message)| json!({
                        "reason": "FieldValueInvalid",
                        "message": message,
                        "field": field,
                    })).collect::<Vec<_>>(),
                })),
            );
        }
        if updated == *current {
            // A no-op patch changes nothing, not even the resource version.
            return json_response(StatusCode::OK, &updated);
        }
        let revision = store.revision + 1;
        if current.get("spec") != updated.get("spec") {
            let generation = current
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1)
                + 1;
            updated["metadata"]["generation"] = json!(generation);
            // The controller observes the new generation at once.
            if let Some(status) = updated.get_mut("status").and_then(Value::as_object_mut) {
                status.insert("observedGeneration".into(), json!(generation));
            }
        }
        updated["metadata"]["resourceVersion"] = json!(revision.to_string());
        if !dry_run {
            store.revision = revision;
            store.objects.insert(key, updated.clone());
        }
        json_response(StatusCode::OK, &updated)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn labels_of(object: &Value) -> BTreeMap<String, String> {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// The field selectors each kind supports (as the API server's field label
/// conversion functions list them, the common subset).
fn supported_fields(resource: &ResourceType) -> &'static [&'static str] {
    match resource.kind {
        "Pod" => &[
            "metadata.name",
            "metadata.namespace",
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        "Namespace" => &["metadata.name", "status.phase"],
        "ReplicaSet" => &["metadata.name", "metadata.namespace", "status.replicas"],
        "Job" => &["metadata.name", "metadata.namespace", "status.successful"],
        _ => &["metadata.name", "metadata.namespace"],
    }
}

fn field_value(object: &Value, field: &str) -> String {
    let value = match field {
        "status.successful" => object.pointer("/status/succeeded"),
        _ => object.pointer(&format!("/{}", field.replace('.', "/"))),
    };
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ if field == "status.successful" || field == "status.replicas" => "0".to_owned(),
        _ => String::new(),
    }
}

/// The API server's continue token: base64url of
/// `{"v":"meta.k8s.io/v1","rv":N,"start":"<namespace>/<name>\u0000"}`,
/// the key after the last item served.
fn encode_continue(revision: u64, namespace: &str, name: &str) -> String {
    let key = if namespace.is_empty() {
        name.to_owned()
    } else {
        format!("{namespace}/{name}")
    };
    let token = json!({"v": "meta.k8s.io/v1", "rv": revision, "start": format!("{key}\u{0}")});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_string())
}

/// The (namespace, name) a continued list starts after.
fn decode_continue(token: &str) -> Result<(String, String), String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|e| e.to_string())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    if value.get("v").and_then(Value::as_str) != Some("meta.k8s.io/v1") {
        return Err("continue key version is not supported".into());
    }
    let start = value
        .get("start")
        .and_then(Value::as_str)
        .and_then(|s| s.strip_suffix('\u{0}'))
        .ok_or("continue key has no valid start")?;
    Ok(match start.split_once('/') {
        Some((ns, name)) => (ns.to_owned(), name.to_owned()),
        None => (String::new(), start.to_owned()),
    })
}

/// A list item: real lists leave `kind` and `apiVersion` out of items.
fn strip_type(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(map) = object.as_object_mut() {
        map.remove("kind");
        map.remove("apiVersion");
    }
    object
}

fn partial_metadata(object: &Value, version: &str) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": format!("meta.k8s.io/{version}"),
        "metadata": object.get("metadata").cloned().unwrap_or(json!({})),
    })
}

fn table_json(
    resource: &ResourceType,
    items: &[&Value],
    metadata: &Value,
    version: &str,
    include: Option<&str>,
    now: Timestamp,
) -> Value {
    let rows: Vec<Value> = items
        .iter()
        .map(|object| {
            let embedded = match include.unwrap_or("Metadata") {
                "None" => Value::Null,
                "Object" => (*object).clone(),
                _ => partial_metadata(object, version),
            };
            let mut row = json!({
                "cells": table::cells(resource, object, now),
                "object": embedded,
            });
            if let Some(conditions) = table::row_conditions(resource, object) {
                row["conditions"] = conditions;
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": format!("meta.k8s.io/{version}"),
        "metadata": metadata,
        "columnDefinitions": table::columns(resource),
        "rows": rows,
    })
}

// ---------------------------------------------------------------------------
// Patches

/// RFC 7386 JSON merge patch.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// The list merge keys of the strategic merge patch for the fields a
/// Deployment has (`patchMergeKey` in the Go types).
fn merge_key(field: &str, elements: &[Value]) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets" => Some("name"),
        "volumeMounts" => Some("mountPath"),
        "conditions" => Some("type"),
        "ownerReferences" => Some("uid"),
        "ports" => {
            if elements.iter().any(|e| e.get("containerPort").is_some()) {
                Some("containerPort")
            } else {
                Some("port")
            }
        }
        _ => None,
    }
}

/// A strategic merge patch: a merge patch whose lists with a merge key are
/// merged element by element (`$patch: delete` removes one), and whose
/// `$`-directives are otherwise dropped.
pub(crate) fn strategic_merge(target: &mut Value, patch: &Value, field: Option<&str>) {
    match patch {
        Value::Object(patch) => {
            if patch.get("$patch").and_then(Value::as_str) == Some("replace") {
                let mut replacement = patch.clone();
                replacement.retain(|k, _| !k.starts_with('$'));
                *target = Value::Object(replacement);
                return;
            }
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(target) = target {
                for (key, value) in patch {
                    if key.starts_with('$') {
                        continue;
                    }
                    if value.is_null() {
                        target.remove(key);
                    } else {
                        strategic_merge(
                            target.entry(key.clone()).or_insert(Value::Null),
                            value,
                            Some(key),
                        );
                    }
                }
            }
        }
        Value::Array(elements) => {
            let key = field.and_then(|f| merge_key(f, elements));
            match (key, target.as_array_mut()) {
                (Some(key), Some(current)) => {
                    for element in elements {
                        let id = element.get(key);
                        let position =
                            id.and_then(|id| current.iter().position(|c| c.get(key) == Some(id)));
                        let delete =
                            element.get("$patch").and_then(Value::as_str) == Some("delete");
                        match (position, delete) {
                            (Some(i), true) => {
                                current.remove(i);
                            }
                            (None, true) => {}
                            (Some(i), false) => strategic_merge(&mut current[i], element, None),
                            (None, false) => {
                                let mut fresh = Value::Null;
                                strategic_merge(&mut fresh, element, None);
                                current.push(fresh);
                            }
                        }
                    }
                }
                _ => {
                    let mut replacement = Vec::with_capacity(elements.len());
                    for element in elements {
                        let mut fresh = Value::Null;
                        strategic_merge(&mut fresh, element, None);
                        replacement.push(fresh);
                    }
                    *target = Value::Array(replacement);
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// The checks of a patched Deployment that matter to clients: the rest
/// is trusted.
fn validate_deployment(object: &Value) -> Result<(), Vec<(String, String)>> {
    let mut causes = Vec::new();
    if let Some(replicas) = object.pointer("/spec/replicas")
        && replicas
            .as_i64()
            .is_none_or(|r| !(0..=i64::from(i32::MAX)).contains(&r))
    {
        causes.push((
            "spec.replicas".to_owned(),
            format!("Invalid value: {replicas}: must be greater than or equal to 0"),
        ));
    }
    for path in [
        "metadata.labels",
        "metadata.annotations",
        "spec.template.metadata.labels",
        "spec.template.metadata.annotations",
    ] {
        let pointer = format!("/{}", path.replace('.', "/"));
        if let Some(map) = object.pointer(&pointer)
            && !map
                .as_object()
                .is_some_and(|m| m.values().all(Value::is_string))
        {
            causes.push((
                path.to_owned(),
                "Invalid value: must map strings to strings".to_owned(),
            ));
        }
    }
    if object
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        causes.push((
            "spec.template.spec.containers".to_owned(),
            "Required value".to_owned(),
        ));
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(causes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert!(matches!(
            route("/api/v1/pods"),
            Route::Collection {
                namespace: None,
                ..
            }
        ));
        assert!(matches!(
            route("/api/v1/namespaces/payments/pods"),
            Route::Collection { namespace: Some(ref ns), .. } if ns == "payments"
        ));
        assert!(matches!(
            route("/apis/apps/v1/namespaces/payments/deployments/web"),
            Route::Object { ref name, .. } if name == "web"
        ));
        assert!(matches!(
            route("/api/v1/namespaces/payments"),
            Route::Object { namespace: None, ref name, .. } if name == "payments"
        ));
        assert!(matches!(route("/api/v1/pods/web"), Route::NotFound));
        assert!(matches!(
            route("/api/v1/namespaces/p/pods/web/log"),
            Route::NotFound
        ));
        assert!(matches!(
            route("/apis/apps/v2/deployments"),
            Route::NotFound
        ));
        assert!(matches!(route("/apis/apps/v1/pods"), Route::NotFound));
        assert!(matches!(route("/apis/apps/v1"), Route::Resources { .. }));
        assert!(matches!(route("/apis/apps"), Route::Group("apps")));
        assert!(matches!(route("/api//v1"), Route::NotFound));
        assert!(matches!(route("/"), Route::Root));
        assert!(matches!(route("/version"), Route::Version));
    }

    #[test]
    fn accept_headers() {
        let accept = |v: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
            negotiate(&headers)
        };
        assert_eq!(negotiate(&HeaderMap::new()), Some(Format::Json));
        assert_eq!(
            accept(
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
            ),
            Some(Format::Table("v1"))
        );
        assert_eq!(
            accept("application/json;as=Table;v=v1beta1;g=meta.k8s.io, application/json"),
            Some(Format::Table("v1beta1"))
        );
        assert_eq!(
            accept("application/vnd.kubernetes.protobuf, application/json"),
            Some(Format::Json)
        );
        assert_eq!(
            accept("application/json;as=Widget;v=v1;g=x.io, */*"),
            Some(Format::Json)
        );
        assert_eq!(accept("application/yaml"), None);
    }

    #[test]
    fn merge_patches() {
        let mut target = json!({"a": {"b": 1, "c": 2}, "d": [1, 2]});
        merge_patch(&mut target, &json!({"a": {"b": null, "e": 3}, "d": [3]}));
        assert_eq!(target, json!({"a": {"c": 2, "e": 3}, "d": [3]}));

        let mut deployment = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "app:1", "ports": [{"containerPort": 8080}]},
            {"name": "sidecar", "image": "proxy:1"},
        ]}}}});
        strategic_merge(
            &mut deployment,
            &json!({"spec": {"template": {
                "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}},
                "spec": {
                    "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
                    "containers": [{"name": "app", "image": "app:2"}, {"name": "sidecar", "$patch": "delete"}],
                },
            }}}),
            None,
        );
        assert_eq!(
            deployment,
            json!({"spec": {"template": {
                "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}},
                "spec": {"containers": [
                    {"name": "app", "image": "app:2", "ports": [{"containerPort": 8080}]},
                ]},
            }}})
        );
    }

    #[test]
    fn continue_tokens_round_trip() {
        let token = encode_continue(42, "payments", "web-1");
        assert_eq!(
            decode_continue(&token).unwrap(),
            ("payments".to_owned(), "web-1".to_owned())
        );
        let token = encode_continue(42, "", "payments");
        assert_eq!(
            decode_continue(&token).unwrap(),
            (String::new(), "payments".to_owned())
        );
        assert!(decode_continue("not base64!").is_err());
        assert!(decode_continue("e30").is_err());
    }
}
