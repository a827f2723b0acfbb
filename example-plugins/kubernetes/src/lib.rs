//! The kubernetes plugin: a component's workloads in every configured
//! cluster, health first, against plugin API 0.4.
//!
//! # Settings
//!
//! `[plugins.settings.kubernetes]` in callboard.toml:
//!
//! - `clusters`: a JSON array, `[{"name": "prod-eu", "url":
//!   "https://k8s.prod-eu.example:6443", "title": "Prod EU", "dashboardUrl":
//!   "https://..."}]` (`title` and `dashboardUrl` optional), or the short
//!   form `prod-eu=https://k8s.prod-eu.example:6443,staging=https://...`.
//!   Names are lower-case letters, digits, `-` and `.`; at most 20 clusters
//!   are asked.
//! - `cache_ttl_secs` (default 15): how long a cluster's answer is reused
//!   from key-value storage (0: never).
//! - `timeout_ms` (default 1000): how long to wait for a cluster; keep it
//!   under `[plugins] view_deadline_ms`, so a slow cluster is reported
//!   rather than the view timing out.
//! - `restart_threshold` (default 5): restarts of a container that count as
//!   an error.
//!
//! Each cluster's host must be granted (`[grants.plugins.kubernetes]
//! http_hosts`), and its credentials are the operator's:
//! `[plugins.credentials.kubernetes."host:port"] headers = { authorization
//! = "Bearer ..." }` (or a client certificate, a CA bundle). The host adds
//! them to the plugin's requests to that host; the plugin never sees them.
//!
//! # What it shows
//!
//! For a component annotated `backstage.io/kubernetes-id: <id>` (objects
//! labelled `backstage.io/kubernetes-id=<id>`) or
//! `backstage.io/kubernetes-label-selector: <selector>`, optionally
//! narrowed by `backstage.io/kubernetes-namespace`, every cluster is asked
//! at once (`fetch::send_all`) for pods, services, deployments,
//! replicasets, horizontalpodautoscalers, jobs, cronjobs and ingresses.
//!
//! - entity tab: a summary (one operator notice per cluster that refused
//!   the credentials, is unreachable or is not granted; clusters with
//!   nothing matching folded into one line), then per cluster its errors
//!   (the cause and a proposed fix, as Backstage's error detection finds
//!   them: `detect.rs`) and tables of deployments (with a restart button
//!   for those who may), pods, services, ingresses, autoscalers, jobs and
//!   cronjobs;
//! - entity card: pods ready and errors per cluster;
//! - page `/`: every workload with errors across the catalog's annotated
//!   components, from one batched fan-out (`in (...)` selectors);
//! - action `restart`: needs `kubernetes.restart` on the entity, checks the
//!   deployment really is the entity's, then patches it as `kubectl rollout
//!   restart` does;
//! - `POST /resources/workloads/query` (`{"entityRef": ...}` or
//!   `{"entity": {...}}`): Backstage's `ObjectsByEntityResponse`;
//!   `GET /clusters`: Backstage's cluster list.

mod backstage;
mod cluster;
mod detect;
mod kinds;
mod model;
mod restart;
mod selector;
mod settings;
mod views;

use std::collections::{BTreeMap, HashMap};

use callboard_sdk::{
    Error, Params, Plugin, Request, Response, Router, catalog, export_plugin, permissions,
    ui::{ActionRequest, Block, Card, Notice, Slot, Tone, View, ViewRequest},
};
use serde_json::Value;

use crate::{
    cluster::Ask,
    detect::{Detected, detect},
    kinds::Kind,
    model::{ClusterReport, Resources},
    selector::{ID_LABEL, MAX_SET_VALUES, Requirement, Selector, Target},
    settings::Settings,
    views::{EntityView, PageRow, Section},
};

/// Objects asked per kind and cluster for one entity.
const LIST_LIMIT: u32 = 100;
/// Objects asked per kind and cluster for the errors page (combined selectors).
const PAGE_LIMIT: u32 = 500;
/// Components the errors page looks at.
const MAX_PAGE_ENTITIES: u32 = 1000;
/// Requests the errors page sends in all (batches of 32).
const MAX_PAGE_ASKS: usize = 128;
/// Longest combined `in (...)` selector.
const MAX_COMBINED_LEN: usize = 1500;

struct Kubernetes;

impl Plugin for Kubernetes {
    fn handle(request: Request) -> Response {
        Router::new()
            .get("/clusters", clusters_route)
            .post("/resources/workloads/query", workloads_route)
            .handle(&request)
    }

    fn view(request: ViewRequest) -> Result<Option<View>, Error> {
        match request.slot {
            Slot::Page => {
                if request.path.trim_end_matches('/').is_empty() {
                    page_view().map(Some)
                } else {
                    Ok(None)
                }
            }
            Slot::EntityTab => entity_view(&request, true),
            Slot::EntityCard => entity_view(&request, false),
        }
    }

    fn action(request: ActionRequest) -> Result<Notice, Error> {
        match request.name.as_str() {
            views::RESTART => restart::run(&request),
            other => Err(Error::not_found(format!("no action named {other:?}"))),
        }
    }
}

/// Seconds since the epoch.
fn now_secs() -> i64 {
    i64::try_from(cluster::now_ms() / 1000).unwrap_or(0)
}

/// `/catalog/<namespace>/<kind>/<name>` of an entity.
fn entity_href(entity: &Value) -> String {
    let meta = &entity["metadata"];
    format!(
        "/catalog/{}/{}/{}",
        meta["namespace"].as_str().unwrap_or("default"),
        entity["kind"].as_str().unwrap_or("component"),
        meta["name"].as_str().unwrap_or("")
    )
    .to_ascii_lowercase()
}

/// A view with one warning notice.
fn notice_view(title: String, detail: Option<String>) -> View {
    View::new("Kubernetes").card(Card::untitled().block(Block::Notice(Notice::new(
        Tone::Warning,
        title,
        detail,
    ))))
}

/// The view when no cluster is configured (with what is wrong with the settings).
fn unconfigured(settings: &Settings) -> View {
    let mut card = Card::untitled().block(Block::Notice(Notice::new(
        Tone::Warning,
        "kubernetes: no clusters are configured; an operator should set [plugins.settings.kubernetes] clusters",
        Some(
            "e.g. clusters = \"prod=https://k8s.example:6443\", with the host granted in [grants.plugins.kubernetes] http_hosts and its token bound in [plugins.credentials.kubernetes.\"k8s.example:6443\"]."
                .to_owned(),
        ),
    )));
    for problem in &settings.problems {
        card = card.block(Block::Notice(Notice::new(
            Tone::Warning,
            problem.clone(),
            None,
        )));
    }
    View::new("Kubernetes").card(card)
}

/// Asks every cluster for `kinds` of what `target` selects.
fn entity_reports(settings: &Settings, target: &Target, kinds: &[Kind]) -> Vec<ClusterReport> {
    let mut asks = Vec::new();
    for kind in kinds {
        for cluster in &settings.clusters {
            asks.push(Ask {
                cluster,
                kind: *kind,
                path: kind.list_path(target.namespace.as_deref(), &target.selector, LIST_LIMIT),
            });
        }
    }
    let outcomes = cluster::ask_all(settings, &asks);
    let mut reports: Vec<ClusterReport> = settings
        .clusters
        .iter()
        .cloned()
        .map(ClusterReport::new)
        .collect();
    for (ask, outcome) in asks.iter().zip(&outcomes) {
        if let Some(report) = reports
            .iter_mut()
            .find(|r| r.cluster.name == ask.cluster.name)
        {
            // The server filtered already; a stand-in that did not cannot
            // show another component's objects here.
            report.add(ask.kind, &ask.path, outcome, |o| target.selects(o));
        }
    }
    reports
}

fn entity_view(request: &ViewRequest, tab: bool) -> Result<Option<View>, Error> {
    let Some(entity) = &request.entity else {
        return Ok(None);
    };
    let target = match Target::of_entity(entity) {
        None => return Ok(None),
        Some(Err(why)) => {
            return Ok(Some(notice_view(
                format!("kubernetes: {why}"),
                Some("Fix the entity's annotation in its catalog file.".to_owned()),
            )));
        }
        Some(Ok(target)) => target,
    };
    let settings = Settings::load();
    if settings.clusters.is_empty() {
        return Ok(Some(unconfigured(&settings)));
    }
    let entity_ref = request.entity_ref().unwrap_or_default();
    let kinds: &[Kind] = if tab { &Kind::ALL } else { &Kind::HEALTH };
    let reports = entity_reports(&settings, &target, kinds);
    let now = now_secs();
    let errors: Vec<Vec<Detected>> = reports
        .iter()
        .map(|r| detect(&r.resources, now, settings.restart_threshold))
        .collect();
    // The buttons only for those who may press them (the action checks again).
    let can_restart = tab
        && reports
            .iter()
            .any(|r| !r.resources.get(Kind::Deployments).is_empty())
        && permissions::check(restart::PERMISSION, Some(&entity_ref)).unwrap_or(false);
    let href = entity_href(entity);
    let selector = match &target.namespace {
        Some(ns) => format!("{} in namespace {ns}", target.selector),
        None => target.selector.to_string(),
    };
    let view = EntityView {
        entity_ref: &entity_ref,
        entity_href: &href,
        selector: &selector,
        sections: reports
            .iter()
            .zip(&errors)
            .map(|(report, errors)| Section { report, errors })
            .collect(),
        problems: &settings.problems,
        can_restart,
        now,
    };
    Ok(Some(if tab { view.tab() } else { view.card() }))
}

/// A component the errors page checks.
struct Subject {
    entity_ref: String,
    href: String,
    target: Target,
}

/// The errors page: the annotated components (as the viewer may read
/// them), their objects from one batched fan-out with combined selectors,
/// attributed back to each component.
fn page_view() -> Result<View, Error> {
    let settings = Settings::load();
    if settings.clusters.is_empty() {
        return Ok(unconfigured(&settings));
    }
    let entities = catalog::query(
        &[
            &format!(
                "kind=component,metadata.annotations.{}",
                selector::ID_ANNOTATION
            ),
            &format!(
                "kind=component,metadata.annotations.{}",
                selector::SELECTOR_ANNOTATION
            ),
        ],
        MAX_PAGE_ENTITIES,
    )?;
    let mut malformed = 0;
    let subjects: Vec<Subject> = entities
        .iter()
        .filter_map(|e| match Target::of_entity(e) {
            Some(Ok(target)) => Some(Subject {
                entity_ref: catalog::entity_ref(e),
                href: entity_href(e),
                target,
            }),
            Some(Err(_)) => {
                malformed += 1;
                None
            }
            None => None,
        })
        .collect();

    // The selectors asked: the plain ids together in `in (...)` sets, each
    // custom selector on its own.
    let mut ids: Vec<&str> = subjects
        .iter()
        .filter_map(|s| s.target.plain_id())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut groups: Vec<Selector> = Vec::new();
    let mut chunk: Vec<String> = Vec::new();
    for id in ids {
        let len: usize = chunk.iter().map(|v| v.len() + 1).sum();
        if chunk.len() == MAX_SET_VALUES || len + id.len() > MAX_COMBINED_LEN {
            groups.push(Selector(vec![Requirement::In(
                ID_LABEL.to_owned(),
                std::mem::take(&mut chunk),
            )]));
        }
        chunk.push(id.to_owned());
    }
    if !chunk.is_empty() {
        groups.push(Selector(vec![Requirement::In(ID_LABEL.to_owned(), chunk)]));
    }
    let mut customs: Vec<usize> = (0..subjects.len())
        .filter(|&i| subjects[i].target.plain_id().is_none())
        .collect();
    for &i in &customs {
        let s = &subjects[i].target.selector;
        if !groups.contains(s) {
            groups.push(s.clone());
        }
    }
    let per_group = Kind::HEALTH.len() * settings.clusters.len();
    let allowed = (MAX_PAGE_ASKS / per_group.max(1)).max(1);
    let skipped_groups = groups.len().saturating_sub(allowed);
    groups.truncate(allowed);
    // Objects are matched only against the custom selectors asked.
    customs.retain(|&i| groups.contains(&subjects[i].target.selector));

    let mut asks = Vec::new();
    for kind in Kind::HEALTH {
        for group in &groups {
            for cluster in &settings.clusters {
                asks.push(Ask {
                    cluster,
                    kind,
                    path: kind.list_path(None, group, PAGE_LIMIT),
                });
            }
        }
    }
    let outcomes = cluster::ask_all(&settings, &asks);

    // Attribute objects to components: by id through an index, custom
    // selectors one by one.
    let mut by_id: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, s) in subjects.iter().enumerate() {
        if let Some(id) = s.target.plain_id() {
            by_id.entry(id).or_default().push(i);
        }
    }
    let mut problems: Vec<ClusterReport> = settings
        .clusters
        .iter()
        .cloned()
        .map(ClusterReport::new)
        .collect();
    let mut found: BTreeMap<(usize, usize), Resources> = BTreeMap::new();
    for (ask, outcome) in asks.iter().zip(&outcomes) {
        let ci = settings
            .clusters
            .iter()
            .position(|c| c.name == ask.cluster.name)
            .unwrap_or(0);
        problems[ci].add(ask.kind, &ask.path, outcome, |_| false);
        let Ok(listed) = outcome else { continue };
        for item in &listed.items {
            let id = item["metadata"]["labels"][ID_LABEL].as_str();
            let candidates = id
                .and_then(|id| by_id.get(id))
                .into_iter()
                .flatten()
                .chain(customs.iter());
            for &si in candidates {
                if !subjects[si].target.selects(item) {
                    continue;
                }
                let list = found
                    .entry((si, ci))
                    .or_default()
                    .0
                    .entry(ask.kind)
                    .or_default();
                let uid = &item["metadata"]["uid"];
                if uid.is_null() || !list.iter().any(|o| &o["metadata"]["uid"] == uid) {
                    list.push(item.clone());
                }
            }
        }
    }
    let now = now_secs();
    let detected: Vec<((usize, usize), Vec<Detected>)> = found
        .iter()
        .map(|(&key, resources)| (key, detect(resources, now, settings.restart_threshold)))
        .collect();
    let mut rows: Vec<PageRow<'_>> = Vec::new();
    for ((si, ci), errors) in &detected {
        for error in errors {
            rows.push(PageRow {
                entity_ref: &subjects[*si].entity_ref,
                entity_href: &subjects[*si].href,
                cluster: &settings.clusters[*ci].name,
                error,
            });
        }
    }
    let mut notices: Vec<Block> = settings
        .problems
        .iter()
        .map(|p| Block::Notice(Notice::new(Tone::Warning, p.clone(), None)))
        .collect();
    for report in &problems {
        if let Some((title, detail, all)) = report.problem() {
            notices.push(Block::Notice(Notice::new(
                if all { Tone::Bad } else { Tone::Warning },
                title,
                Some(detail),
            )));
        }
    }
    let mut notes = Vec::new();
    if skipped_groups > 0 {
        notes.push(format!(
            "{skipped_groups} selector groups were not asked (at most {MAX_PAGE_ASKS} requests per page view): some components are not checked."
        ));
    }
    if malformed > 0 {
        notes.push(format!(
            "{malformed} components have a malformed Kubernetes annotation and are not checked."
        ));
    }
    if entities.len() >= MAX_PAGE_ENTITIES as usize {
        notes.push(format!(
            "Only the first {MAX_PAGE_ENTITIES} annotated components are checked."
        ));
    }
    Ok(views::page(
        &mut rows,
        notices,
        subjects.len(),
        settings.clusters.len(),
        (!notes.is_empty()).then(|| notes.join(" ")),
    ))
}

/// `GET /clusters`.
fn clusters_route(_: &Request, _: &Params) -> Response {
    Response::json(&backstage::clusters(&Settings::load().clusters))
}

/// `POST /resources/workloads/query`: the entity is always read from the
/// catalog as the caller (a posted entity only names it), so a caller can
/// neither see an entity they may not read nor make up a selector.
fn workloads_route(request: &Request, _: &Params) -> Result<Response, Error> {
    let body: Value = request.json()?;
    let entity_ref = match (body["entityRef"].as_str(), body.get("entity")) {
        (Some(r), _) if !r.trim().is_empty() => r.trim().to_owned(),
        (_, Some(e)) if e["metadata"]["name"].is_string() => catalog::entity_ref(e),
        _ => {
            return Err(Error::bad_request(
                "expected {\"entityRef\": \"kind:namespace/name\"} or {\"entity\": {...}}",
            ));
        }
    };
    let entity = catalog::get(&entity_ref)?
        .ok_or_else(|| Error::not_found(format!("no entity {entity_ref}")))?;
    let target = match Target::of_entity(&entity) {
        Some(Ok(target)) => target,
        Some(Err(why)) => return Err(Error::bad_request(why)),
        // As Backstage: without annotations, the entity's name is its id.
        None => {
            let name = entity["metadata"]["name"].as_str().unwrap_or("");
            selector::valid_value(name).map_err(Error::bad_request)?;
            Target {
                selector: Selector::equals(ID_LABEL, name),
                namespace: None,
            }
        }
    };
    let settings = Settings::load();
    let reports = entity_reports(&settings, &target, &Kind::ALL);
    let now = now_secs();
    let errors: Vec<Vec<Detected>> = reports
        .iter()
        .map(|r| detect(&r.resources, now, settings.restart_threshold))
        .collect();
    Ok(Response::json(&backstage::workloads(&reports, &errors)))
}

export_plugin!(Kubernetes);
