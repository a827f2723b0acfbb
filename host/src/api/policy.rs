//! Backstage's permission backend and the policy administration API.
//!
//! - `POST /api/permission/authorize`: Backstage's batch of permission
//!   questions (`{"items": [{id, permission, resourceRef?}]}`, at most
//!   [`MAX_AUTHORIZE_ITEMS`], at most [`MAX_AUTHORIZE_BODY`] bytes), each
//!   answered ALLOW, DENY or, for a resource permission asked without a
//!   resource, CONDITIONAL with the criteria (a conditional decision on a
//!   named resource is resolved by asking the catalog whether the entity
//!   matches). The caller is the request's identity; an anonymous one gets
//!   401 unless `auth.anonymous = "read"`.
//! - `/api/admin/policy` (reading needs `callboard.policy.read`, changing
//!   `callboard.policy.manage`, both checked before the body is read):
//!   - `GET    /api/admin/policy`                   the published policy and the draft
//!   - `GET    /api/admin/policy/versions`          the history
//!   - `PUT    /api/admin/policy/draft`             save the draft: Policy JSON, RHDH CSV
//!     (`text/csv`), or `{"csv", "conditional"}`; validated before it is stored
//!   - `DELETE /api/admin/policy/draft`             discard it
//!   - `GET    /api/admin/policy/diff`              the draft against the published policy
//!   - `POST   /api/admin/policy/publish`           `{"version": <draft id>}` (409 when stale)
//!   - `GET    /api/admin/policy/export.csv`,
//!     `GET    /api/admin/policy/export-conditional.yaml` the published policy in RHDH form
//!
//! Every change is recorded in the audit log (`policy.draft`,
//! `policy.publish`, `policy.discard`). [`diff`] is the pure comparison the
//! API and the roles pages show.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use axum::{
    Json, Router,
    body::Body,
    extract::{Request, State},
    http::{StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use callboard_store::{
    StoreError,
    access::{PolicyState, PolicyVersion},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{
    auth::{identity_of, refuse},
    error::{ApiError, backstage_errors},
};
use crate::{
    identity::{Identity, access::Access, config::Anonymous},
    permissions::{
        CALLBOARD_POLICY_MANAGE, CALLBOARD_POLICY_READ, CATALOG_ENTITY, Criteria, Decision, Effect,
        OWNER_REFS, Permissions, Policy, Rule, rhdh,
    },
};

/// Most questions one authorize request asks.
pub const MAX_AUTHORIZE_ITEMS: usize = 100;
/// Largest authorize request body, in bytes.
pub const MAX_AUTHORIZE_BODY: usize = 64 * 1024;
/// Largest draft (request body, or CSV and conditional text together), in
/// bytes: the store keeps policy documents up to the same size.
pub const MAX_DRAFT_BODY: usize = callboard_store::access::MAX_POLICY_DOCUMENT_BYTES;
/// Deepest nesting of JSON arrays and objects a request body may have
/// (a policy with conditions at their deepest needs about 25).
pub const MAX_JSON_DEPTH: usize = 32;
/// Largest publish request body, in bytes.
const MAX_PUBLISH_BODY: usize = 4 * 1024;
/// Most versions the history lists.
const MAX_HISTORY: usize = 200;

/// What the policy and permission API needs (the root projects it from
/// its state; the portal's roles pages use the same functions).
#[derive(Clone)]
pub struct PolicyApi {
    /// Policies and the audit log.
    pub stores: callboard_store::Stores,
    /// The catalog conditional decisions are applied to.
    pub catalog: callboard_catalog::Catalog,
    /// The published policy.
    pub access: Arc<Access>,
    /// What an anonymous caller may do.
    pub anonymous: Anonymous,
}

/// The routes, mounted at the root.
pub fn router(state: &PolicyApi) -> Router {
    let guard = |permission: &'static str| {
        middleware::from_fn_with_state((state.access.clone(), permission), require)
    };
    let reads = Router::new()
        .route("/api/admin/policy", get(show))
        .route("/api/admin/policy/versions", get(versions))
        .route("/api/admin/policy/diff", get(show_diff))
        .route("/api/admin/policy/export.csv", get(export_csv))
        .route(
            "/api/admin/policy/export-conditional.yaml",
            get(export_conditional),
        )
        .route_layer(guard(CALLBOARD_POLICY_READ));
    let changes = Router::new()
        .route("/api/admin/policy/draft", put(save).delete(discard))
        .route("/api/admin/policy/publish", post(publish))
        .route_layer(guard(CALLBOARD_POLICY_MANAGE));
    Router::new()
        .route("/api/permission/authorize", post(authorize))
        .merge(reads)
        .merge(changes)
        .layer(middleware::from_fn(backstage_errors))
        .with_state(state.clone())
}

/// Route layer: the caller must hold the basic `permission` (401 for an
/// anonymous caller, 403 otherwise), before any body is read.
async fn require(
    State((access, permission)): State<(Arc<Access>, &'static str)>,
    request: Request,
    next: Next,
) -> Response {
    let identity = identity_of(&request);
    if !access.allows(&identity, permission) {
        return refuse(&identity, permission).into_response();
    }
    next.run(request).await
}

// ---------------------------------------------------------------------------
// The diff.

/// How a role changed between two policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RoleChange {
    /// Only in the new policy.
    Added,
    /// Only in the old policy.
    Removed,
    /// In both, with different members, rules or description.
    Changed,
}

/// What changed in one role. Rules are shown as [`rule_line`]s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleDiff {
    /// The role's name (as the new policy spells it, if it has it).
    pub role: String,
    /// Added, removed or changed.
    pub change: RoleChange,
    /// Members the new policy gives the role.
    pub members_added: Vec<String>,
    /// Members the new policy takes away.
    pub members_removed: Vec<String>,
    /// Rules the new policy adds.
    pub rules_added: Vec<String>,
    /// Rules the new policy drops.
    pub rules_removed: Vec<String>,
    /// Whether the description changed.
    pub description_changed: bool,
}

/// How many things a [`PolicyDiff`] changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiffSummary {
    /// Roles only in the new policy.
    pub roles_added: usize,
    /// Roles only in the old policy.
    pub roles_removed: usize,
    /// Roles in both that changed.
    pub roles_changed: usize,
    /// Members added, over all roles.
    pub members_added: usize,
    /// Members removed, over all roles.
    pub members_removed: usize,
    /// Rules added, over all roles.
    pub rules_added: usize,
    /// Rules removed, over all roles.
    pub rules_removed: usize,
}

/// The differences between two policies, role by role (the new policy's
/// order, then the roles it removes). Unchanged roles are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PolicyDiff {
    /// The roles that changed.
    pub roles: Vec<RoleDiff>,
}

impl PolicyDiff {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.roles.is_empty()
    }

    /// The counts.
    pub fn summary(&self) -> DiffSummary {
        let mut s = DiffSummary::default();
        for r in &self.roles {
            match r.change {
                RoleChange::Added => s.roles_added += 1,
                RoleChange::Removed => s.roles_removed += 1,
                RoleChange::Changed => s.roles_changed += 1,
            }
            s.members_added += r.members_added.len();
            s.members_removed += r.members_removed.len();
            s.rules_added += r.rules_added.len();
            s.rules_removed += r.rules_removed.len();
        }
        s
    }
}

/// Compares `to` (the draft) with `from` (the published policy). Roles are
/// matched by name, case-insensitively; members as sets; rules as
/// [`rule_line`]s, counted (a rule written twice and then once is one
/// removal). `perms` supplies a named permission's own action.
pub fn diff(from: &Policy, to: &Policy, perms: &Permissions) -> PolicyDiff {
    let old: HashMap<String, &crate::permissions::Role> = from
        .roles
        .iter()
        .map(|r| (r.name.to_lowercase(), r))
        .collect();
    let new_names: HashSet<String> = to.roles.iter().map(|r| r.name.to_lowercase()).collect();
    let lines = |role: &crate::permissions::Role| -> Vec<String> {
        role.rules
            .iter()
            .map(|rule| rule_line(&role.name, rule, perms))
            .collect()
    };
    let mut roles = Vec::new();
    for role in &to.roles {
        let Some(before) = old.get(&role.name.to_lowercase()) else {
            roles.push(RoleDiff {
                role: role.name.clone(),
                change: RoleChange::Added,
                members_added: unique(&role.members),
                members_removed: Vec::new(),
                rules_added: lines(role),
                rules_removed: Vec::new(),
                description_changed: !role.description.is_empty(),
            });
            continue;
        };
        let (members_added, members_removed) = set_diff(&before.members, &role.members);
        // Lines name the role as each policy spells it: compare under one.
        let renamed = crate::permissions::Role {
            name: role.name.clone(),
            ..(*before).clone()
        };
        let (rules_added, rules_removed) = bag_diff(&lines(&renamed), &lines(role));
        let description_changed = before.description != role.description;
        if members_added.is_empty()
            && members_removed.is_empty()
            && rules_added.is_empty()
            && rules_removed.is_empty()
            && !description_changed
        {
            continue;
        }
        roles.push(RoleDiff {
            role: role.name.clone(),
            change: RoleChange::Changed,
            members_added,
            members_removed,
            rules_added,
            rules_removed,
            description_changed,
        });
    }
    for role in &from.roles {
        if new_names.contains(&role.name.to_lowercase()) {
            continue;
        }
        roles.push(RoleDiff {
            role: role.name.clone(),
            change: RoleChange::Removed,
            members_added: Vec::new(),
            members_removed: unique(&role.members),
            rules_added: Vec::new(),
            rules_removed: lines(role),
            description_changed: !role.description.is_empty(),
        });
    }
    PolicyDiff { roles }
}

fn unique(items: &[String]) -> Vec<String> {
    let mut seen = HashSet::new();
    items
        .iter()
        .filter(|m| seen.insert(m.as_str()))
        .cloned()
        .collect()
}

/// (in `new` only, in `old` only), as sets, in their lists' order.
fn set_diff(old: &[String], new: &[String]) -> (Vec<String>, Vec<String>) {
    let old_set: HashSet<&str> = old.iter().map(String::as_str).collect();
    let new_set: HashSet<&str> = new.iter().map(String::as_str).collect();
    let added = unique(new)
        .into_iter()
        .filter(|m| !old_set.contains(m.as_str()))
        .collect();
    let removed = unique(old)
        .into_iter()
        .filter(|m| !new_set.contains(m.as_str()))
        .collect();
    (added, removed)
}

/// (in `new` only, in `old` only), as multisets, in their lists' order.
fn bag_diff(old: &[String], new: &[String]) -> (Vec<String>, Vec<String>) {
    fn count(list: &[String]) -> HashMap<&str, usize> {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for line in list {
            *counts.entry(line.as_str()).or_default() += 1;
        }
        counts
    }
    let take = |list: &[String], mut other: HashMap<&str, usize>| -> Vec<String> {
        list.iter()
            .filter(|line| match other.get_mut(line.as_str()) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    false
                }
                _ => true,
            })
            .cloned()
            .collect()
    };
    (take(new, count(old)), take(old, count(new)))
}

/// A rule as one line: RHDH's CSV line (`p, <role>, <permission>,
/// <action>, <effect>`, the action a named permission's own, `*` for
/// any), followed by ` when <conditions in words>` for a conditional rule.
pub fn rule_line(role: &str, rule: &Rule, perms: &Permissions) -> String {
    let action = rule
        .action
        .or_else(|| perms.get(&rule.permission).map(|p| p.action))
        .map_or("*", |a| a.as_str());
    let effect = match rule.effect {
        Effect::Allow => "allow",
        Effect::Deny => "deny",
    };
    let mut line = format!("p, {role}, {}, {action}, {effect}", rule.permission);
    if let Some(c) = &rule.conditions {
        line.push_str(" when ");
        line.push_str(&criteria_words(c));
    }
    line
}

/// Conditions in words: `owned by the caller or their groups`, `of kind
/// api or component`, `labelled tier=gold`, joined with `and`, `or`,
/// `not`, parenthesised where nested. Unknown rules are shown as their name
/// and parameters.
pub fn criteria_words(c: &Criteria) -> String {
    let join = |items: &[Criteria], word: &str| {
        let parts: Vec<String> = items
            .iter()
            .map(|i| match i {
                Criteria::AllOf(inner) | Criteria::AnyOf(inner) if inner.len() > 1 => {
                    format!("({})", criteria_words(i))
                }
                _ => criteria_words(i),
            })
            .collect();
        parts.join(word)
    };
    match c {
        Criteria::AllOf(items) => join(items, " and "),
        Criteria::AnyOf(items) => join(items, " or "),
        Criteria::Not(inner) => match &**inner {
            Criteria::Rule { .. } | Criteria::Not(_) => format!("not {}", criteria_words(inner)),
            _ => format!("not ({})", criteria_words(inner)),
        },
        Criteria::Rule { rule, params, .. } => rule_words(rule, params),
    }
}

fn rule_words(rule: &str, params: &Value) -> String {
    let text = |key: &str| params.get(key).and_then(Value::as_str);
    let list = |key: &str| -> Option<String> {
        let items = params.get(key)?.as_array()?;
        let words: Vec<String> = items
            .iter()
            .map(|v| match v.as_str() {
                Some(OWNER_REFS) => "the caller or their groups".to_owned(),
                Some(s) => s.to_owned(),
                None => v.to_string(),
            })
            .collect();
        Some(words.join(" or "))
    };
    let with_value = |what: &str, key: &str| {
        text(key).map(|k| match text("value") {
            Some(v) => format!("{what} {k}={v}"),
            None => format!("{what} {k}"),
        })
    };
    let words = match rule {
        "IS_ENTITY_OWNER" => list("claims").map(|c| format!("owned by {c}")),
        "IS_ENTITY_KIND" => list("kinds").map(|k| format!("of kind {k}")),
        "HAS_LABEL" => text("label").map(|l| format!("labelled {l}")),
        "HAS_ANNOTATION" => with_value("annotated", "annotation"),
        "HAS_METADATA" => with_value("with metadata", "key"),
        "HAS_SPEC" => with_value("with spec", "key"),
        _ => None,
    };
    words.unwrap_or_else(|| format!("{rule} {params}"))
}

// ---------------------------------------------------------------------------
// Shared by the API and the roles pages.

/// Why a draft, publish or discard did not happen.
#[derive(Debug, thiserror::Error)]
pub enum PolicyChangeError {
    /// The draft is not a valid policy (the message names the role, rule
    /// or line), or is beyond a bound.
    #[error("{0}")]
    Invalid(String),
    /// The draft named is not the current draft any more.
    #[error("{0}")]
    Stale(String),
    /// There is no draft.
    #[error("there is no draft")]
    NoDraft,
    /// The store failed (logged).
    #[error("the policy store is unavailable: {0}")]
    Store(String),
}

impl From<PolicyChangeError> for ApiError {
    fn from(e: PolicyChangeError) -> Self {
        match e {
            PolicyChangeError::Invalid(m) => ApiError::input(m),
            PolicyChangeError::Stale(m) => ApiError::conflict(m),
            PolicyChangeError::NoDraft => ApiError::not_found("there is no policy draft"),
            PolicyChangeError::Store(_) => {
                ApiError::unavailable("the policy store is unavailable, try again")
            }
        }
    }
}

fn store_error(e: StoreError) -> PolicyChangeError {
    match e {
        StoreError::Input(m) => PolicyChangeError::Invalid(m),
        other => {
            tracing::error!("policy store: {other}");
            PolicyChangeError::Store(other.to_string())
        }
    }
}

/// A stored version's policy.
fn parse_version(v: &PolicyVersion) -> Result<Policy, PolicyChangeError> {
    serde_json::from_str(&v.document).map_err(|e| {
        tracing::error!(
            version = v.id,
            "policy store: a stored policy is not valid: {e}"
        );
        PolicyChangeError::Store(format!("version {} is not a valid policy", v.id))
    })
}

/// The published version and its policy (the built-in policy in force,
/// version 0, when none is stored).
pub(crate) async fn published(
    app: &PolicyApi,
) -> Result<(Option<PolicyVersion>, Policy), PolicyChangeError> {
    match app.stores.policies.published().await.map_err(store_error)? {
        Some(v) => {
            let policy = parse_version(&v)?;
            Ok((Some(v), policy))
        }
        None => Ok((None, app.access.policy())),
    }
}

/// The draft and its policy, if there is one.
pub(crate) async fn draft(
    app: &PolicyApi,
) -> Result<Option<(PolicyVersion, Policy)>, PolicyChangeError> {
    // The draft, when there is one, is the newest version: versions are
    // numbered in order and only a draft becomes published.
    let newest = app.stores.policies.versions(1).await.map_err(store_error)?;
    match newest.into_iter().find(|v| v.state == PolicyState::Draft) {
        Some(v) => {
            let policy = parse_version(&v)?;
            Ok(Some((v, policy)))
        }
        None => Ok(None),
    }
}

/// Imports RHDH's CSV and conditional policies as a draft policy, validated.
pub(crate) fn import_draft(
    app: &PolicyApi,
    csv: &str,
    conditional: Option<&str>,
) -> Result<Policy, PolicyChangeError> {
    let size = csv.len() + conditional.map_or(0, str::len);
    if size > MAX_DRAFT_BODY {
        return Err(PolicyChangeError::Invalid(format!(
            "the draft is {size} bytes, more than the {MAX_DRAFT_BODY} allowed"
        )));
    }
    let conditional = conditional.filter(|c| !c.trim().is_empty());
    let policy =
        rhdh::import(csv, conditional).map_err(|e| PolicyChangeError::Invalid(e.to_string()))?;
    validate(app, &policy)?;
    Ok(policy)
}

fn validate(app: &PolicyApi, policy: &Policy) -> Result<(), PolicyChangeError> {
    policy
        .validate(&app.access.permissions())
        .map_err(|e| PolicyChangeError::Invalid(e.to_string()))
}

/// Validates `policy` and saves it as the draft, written by `who`; audits
/// `policy.draft`. Returns the draft's id.
pub(crate) async fn save_draft(
    app: &PolicyApi,
    who: &Identity,
    policy: &Policy,
) -> Result<i64, PolicyChangeError> {
    validate(app, policy)?;
    let document = serde_json::to_string(policy)
        .map_err(|e| PolicyChangeError::Invalid(format!("cannot serialise the draft: {e}")))?;
    let id = app
        .stores
        .policies
        .save_draft(&document, &who.name(), crate::auth::now_ms())
        .await
        .map_err(store_error)?;
    let (_, current) = published(app).await?;
    let summary = diff(&current, policy, &app.access.permissions()).summary();
    crate::audit::record(
        &app.stores.audit,
        who,
        "policy.draft",
        "policy",
        json!({"version": id, "roles": policy.roles.len(), "diff": summary}),
    )
    .await;
    Ok(id)
}

/// Publishes draft `version` as `who`: checks it is still the draft and
/// still valid, publishes, reloads this replica's policy and audits
/// `policy.publish`. Returns what changed.
pub(crate) async fn publish_draft(
    app: &PolicyApi,
    who: &Identity,
    version: i64,
) -> Result<DiffSummary, PolicyChangeError> {
    let stale = || {
        PolicyChangeError::Stale(format!(
            "version {version} is not the current draft (it was published, discarded or never existed)"
        ))
    };
    let Some((current, policy)) = draft(app).await? else {
        return Err(stale());
    };
    if current.id != version {
        return Err(stale());
    }
    validate(app, &policy)?;
    let (_, before) = published(app).await?;
    let summary = diff(&before, &policy, &app.access.permissions()).summary();
    let done = app
        .stores
        .policies
        .publish(version, &who.name(), crate::auth::now_ms())
        .await
        .map_err(store_error)?;
    if !done {
        return Err(stale());
    }
    if let Err(e) = app.access.reload().await {
        tracing::error!(version, "access: reloading the published policy: {e}");
    }
    crate::audit::record(
        &app.stores.audit,
        who,
        "policy.publish",
        "policy",
        json!({"version": version, "diff": summary}),
    )
    .await;
    Ok(summary)
}

/// Discards the draft as `who`; audits `policy.discard`.
pub(crate) async fn discard_draft(
    app: &PolicyApi,
    who: &Identity,
) -> Result<(), PolicyChangeError> {
    let id = draft(app).await?.map(|(v, _)| v.id);
    if !app
        .stores
        .policies
        .discard_draft()
        .await
        .map_err(store_error)?
    {
        return Err(PolicyChangeError::NoDraft);
    }
    crate::audit::record(
        &app.stores.audit,
        who,
        "policy.discard",
        "policy",
        json!({ "version": id }),
    )
    .await;
    Ok(())
}

/// Milliseconds since the epoch as RFC 3339.
pub(crate) fn timestamp(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}

// ---------------------------------------------------------------------------
// Request bodies.

/// Reads a body of at most `limit` bytes (413 naming the bound) whose JSON
/// nests at most [`MAX_JSON_DEPTH`] deep when `json` (400 naming it).
async fn read_body(body: Body, limit: usize, what: &str) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLargeError",
            format!("{what} is larger than the {limit} bytes allowed"),
        )
    })
}

/// How deep JSON arrays and objects nest in `text`, counted up to
/// `limit + 1` (no parse: this runs before one).
fn json_depth(text: &[u8], limit: usize) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in text {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
                if deepest > limit {
                    return deepest;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Parses a JSON body, refusing one nested deeper than [`MAX_JSON_DEPTH`].
fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ApiError> {
    if json_depth(body, MAX_JSON_DEPTH) > MAX_JSON_DEPTH {
        return Err(ApiError::input(format!(
            "{what} nests deeper than the {MAX_JSON_DEPTH} levels of JSON allowed"
        )));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::input(format!("{what}: {e}")))
}

// ---------------------------------------------------------------------------
// Admin handlers.

fn version_json(v: &PolicyVersion, policy: Option<&Policy>) -> Value {
    let mut out = json!({
        "version": v.id,
        "state": v.state,
        "author": v.author,
        "createdAt": timestamp(v.created_ms),
        "publishedAt": v.published_ms.map(timestamp),
        "publishedBy": v.published_by,
    });
    if let Some(policy) = policy {
        out["policy"] = json!(policy);
    }
    out
}

async fn show(State(app): State<PolicyApi>) -> Result<Json<Value>, ApiError> {
    let (version, policy) = published(&app).await?;
    let published = match &version {
        Some(v) => version_json(v, Some(&policy)),
        None => json!({"version": 0, "publishedAt": null, "publishedBy": null, "policy": policy}),
    };
    let draft = draft(&app)
        .await?
        .map(|(v, policy)| version_json(&v, Some(&policy)));
    Ok(Json(json!({"published": published, "draft": draft})))
}

async fn versions(State(app): State<PolicyApi>) -> Result<Json<Value>, ApiError> {
    let list = app
        .stores
        .policies
        .versions(MAX_HISTORY)
        .await
        .map_err(store_error)?;
    let items: Vec<Value> = list
        .iter()
        .map(|v| {
            let mut item = version_json(v, None);
            item["id"] = json!(v.id);
            item
        })
        .collect();
    Ok(Json(json!({ "versions": items })))
}

async fn show_diff(State(app): State<PolicyApi>) -> Result<Json<Value>, ApiError> {
    let Some((draft, to)) = draft(&app).await? else {
        return Err(PolicyChangeError::NoDraft.into());
    };
    let (published, from) = published(&app).await?;
    let d = diff(&from, &to, &app.access.permissions());
    Ok(Json(json!({
        "from": published.map_or(0, |v| v.id),
        "to": draft.id,
        "summary": d.summary(),
        "roles": d.roles,
    })))
}

/// The conditional policies as a second text of a JSON draft.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DraftText {
    csv: String,
    #[serde(default)]
    conditional: Option<String>,
}

async fn save(State(app): State<PolicyApi>, request: Request) -> Result<Response, ApiError> {
    let identity = identity_of(&request);
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let body = read_body(request.into_body(), MAX_DRAFT_BODY, "the policy draft").await?;
    let policy = match content_type.as_str() {
        "text/csv" => {
            let csv = std::str::from_utf8(&body)
                .map_err(|_| ApiError::input("the CSV is not UTF-8 text"))?;
            import_draft(&app, csv, None)?
        }
        "application/json" => {
            let value: Value = parse_json(&body, "the policy draft")?;
            if value.get("csv").is_some() {
                let text: DraftText = serde_json::from_value(value)
                    .map_err(|e| ApiError::input(format!("the policy draft: {e}")))?;
                import_draft(&app, &text.csv, text.conditional.as_deref())?
            } else {
                serde_json::from_value(value)
                    .map_err(|e| ApiError::input(format!("the policy draft: {e}")))?
            }
        }
        other => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UnsupportedMediaTypeError",
                format!(
                    "a draft is application/json (a policy, or {{\"csv\", \"conditional\"}}) or \
                     text/csv, not \"{}\"",
                    crate::permissions::shown(other)
                ),
            ));
        }
    };
    let id = save_draft(&app, &identity, &policy).await?;
    Ok(Json(json!({"version": id, "state": "draft"})).into_response())
}

async fn discard(State(app): State<PolicyApi>, request: Request) -> Result<StatusCode, ApiError> {
    discard_draft(&app, &identity_of(&request)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishBody {
    version: i64,
}

async fn publish(State(app): State<PolicyApi>, request: Request) -> Result<Json<Value>, ApiError> {
    let identity = identity_of(&request);
    let body = read_body(request.into_body(), MAX_PUBLISH_BODY, "a publish request").await?;
    let PublishBody { version } = parse_json(&body, "a publish request")?;
    let summary = publish_draft(&app, &identity, version).await?;
    Ok(Json(
        json!({"version": version, "state": "published", "diff": summary}),
    ))
}

fn attachment(content_type: &'static str, filename: &str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response()
}

async fn export_csv(State(app): State<PolicyApi>) -> Result<Response, ApiError> {
    let (_, policy) = published(&app).await?;
    let (csv, _) = rhdh::export(&policy);
    Ok(attachment(
        "text/csv; charset=utf-8",
        "rbac-policy.csv",
        csv,
    ))
}

async fn export_conditional(State(app): State<PolicyApi>) -> Result<Response, ApiError> {
    let (_, policy) = published(&app).await?;
    let (_, yaml) = rhdh::export(&policy);
    Ok(attachment(
        "application/yaml; charset=utf-8",
        "conditional-policies.yaml",
        yaml,
    ))
}

// ---------------------------------------------------------------------------
// Backstage's authorize.

#[derive(Deserialize)]
struct AuthorizeRequest {
    items: Vec<AuthorizeItem>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthorizeItem {
    id: String,
    permission: AskedPermission,
    #[serde(default)]
    resource_ref: Option<String>,
}

/// The permission as Backstage sends it; only its name is decided on (the
/// type and resource type are Callboard's own, from the catalogue).
#[derive(Deserialize)]
struct AskedPermission {
    name: String,
}

/// One answer.
enum Answer {
    Allow,
    Deny,
    Conditional {
        resource_type: String,
        criteria: Criteria,
    },
}

async fn authorize(
    State(app): State<PolicyApi>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    let identity = identity_of(&request);
    if identity.is_anonymous() && app.anonymous != Anonymous::Read {
        return Err(ApiError::unauthenticated(
            "the permission API needs a signed-in user or `Authorization: Bearer <token>`",
        ));
    }
    let body = read_body(
        request.into_body(),
        MAX_AUTHORIZE_BODY,
        "an authorize request",
    )
    .await?;
    let asked: AuthorizeRequest = parse_json(&body, "an authorize request")?;
    if asked.items.len() > MAX_AUTHORIZE_ITEMS {
        return Err(ApiError::input(format!(
            "{} items, more than the {MAX_AUTHORIZE_ITEMS} one request may ask",
            asked.items.len()
        )));
    }
    let permissions = app.access.permissions();
    // One decision per permission name.
    let mut decisions: HashMap<&str, Answer> = HashMap::new();
    for item in &asked.items {
        let name = item.permission.name.as_str();
        if decisions.contains_key(name) {
            continue;
        }
        // Unknown to the catalogue: DENY, whoever asks (`Access::decide`
        // allows the admin token anything, named or not).
        if permissions.get(name).is_none() {
            decisions.insert(name, Answer::Deny);
            continue;
        }
        let answer = match app.access.decide(&identity, name) {
            Decision::Allow => Answer::Allow,
            Decision::Deny => Answer::Deny,
            Decision::Conditional(criteria) => {
                match permissions.get(name).and_then(|p| p.resource_type.clone()) {
                    Some(resource_type) => Answer::Conditional {
                        resource_type,
                        criteria,
                    },
                    None => Answer::Deny,
                }
            }
        };
        decisions.insert(name, answer);
    }
    // Conditional decisions on named resources: one catalog query per
    // permission, for all its refs.
    let mut asked_refs: HashMap<&str, Vec<String>> = HashMap::new();
    for item in &asked.items {
        if let (Some(r), Some(Answer::Conditional { .. })) = (
            &item.resource_ref,
            decisions.get(item.permission.name.as_str()),
        ) {
            asked_refs
                .entry(item.permission.name.as_str())
                .or_default()
                .push(r.clone());
        }
    }
    let mut matched: HashSet<(&str, String)> = HashSet::new();
    for (name, refs) in &asked_refs {
        let Some(Answer::Conditional {
            resource_type,
            criteria,
        }) = decisions.get(name)
        else {
            continue;
        };
        if resource_type != CATALOG_ENTITY {
            continue;
        }
        let predicate = match crate::permissions::to_predicate(criteria) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(
                    permission = name,
                    "authorize: a condition cannot be applied: {e}"
                );
                continue;
            }
        };
        let found = app
            .catalog
            .get_by_refs(refs, Some(&predicate))
            .await
            .map_err(|e| {
                tracing::error!("authorize: catalog: {e}");
                ApiError::unavailable("the catalog is unavailable, try again")
            })?;
        for (r, entity) in refs.iter().zip(found) {
            if entity.is_some() {
                matched.insert((name, r.clone()));
            }
        }
    }
    let items: Vec<Value> = asked
        .items
        .iter()
        .map(|item| {
            let name = item.permission.name.as_str();
            match (decisions.get(name), &item.resource_ref) {
                (Some(Answer::Allow), _) => json!({"id": item.id, "result": "ALLOW"}),
                (Some(Answer::Conditional { .. }), Some(r)) => {
                    let result = if matched.contains(&(name, r.clone())) {
                        "ALLOW"
                    } else {
                        "DENY"
                    };
                    json!({"id": item.id, "result": result})
                }
                (
                    Some(Answer::Conditional {
                        resource_type,
                        criteria,
                    }),
                    None,
                ) => json!({
                    "id": item.id,
                    "result": "CONDITIONAL",
                    "pluginId": plugin_of(resource_type),
                    "resourceType": resource_type,
                    "conditions": criteria,
                }),
                (Some(Answer::Deny) | None, _) => json!({"id": item.id, "result": "DENY"}),
            }
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}

/// The plugin that owns a resource type (`catalog-entity`: `catalog`).
fn plugin_of(resource_type: &str) -> &str {
    if resource_type == CATALOG_ENTITY {
        "catalog"
    } else {
        resource_type.split(['-', '.']).next().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permissions::{Action, Role};

    fn role(name: &str, members: &[&str], rules: Vec<Rule>) -> Role {
        Role {
            name: name.into(),
            description: String::new(),
            members: members.iter().map(|m| (*m).to_owned()).collect(),
            rules,
        }
    }

    fn allow(permission: &str) -> Rule {
        Rule {
            permission: permission.into(),
            action: None,
            effect: Effect::Allow,
            conditions: None,
        }
    }

    fn owned() -> Criteria {
        Criteria::Rule {
            rule: "IS_ENTITY_OWNER".into(),
            resource_type: CATALOG_ENTITY.into(),
            params: json!({"claims": [OWNER_REFS]}),
        }
    }

    #[test]
    fn the_same_policy_has_no_diff() {
        let p = Policy::default_policy(&["user:default/root".into()]);
        let d = diff(&p, &p, &Permissions::builtin());
        assert!(d.is_empty());
        assert_eq!(d.summary(), DiffSummary::default());
    }

    #[test]
    fn roles_members_and_rules_added_and_removed() {
        let perms = Permissions::builtin();
        let from = Policy {
            roles: vec![
                role(
                    "role:default/dev",
                    &["group:default/a", "user:default/x"],
                    vec![allow("catalog.entity.read"), allow("catalog.location.read")],
                ),
                role("role:default/gone", &["user:default/y"], vec![allow("*")]),
            ],
        };
        let to = Policy {
            roles: vec![
                role(
                    "role:default/DEV",
                    &["group:default/a", "group:default/b"],
                    vec![
                        allow("catalog.entity.read"),
                        Rule {
                            conditions: Some(owned()),
                            ..allow("catalog.entity.delete")
                        },
                    ],
                ),
                role(
                    "role:default/new",
                    &["user:default/z", "user:default/z"],
                    vec![Rule {
                        permission: "catalog-entity".into(),
                        action: Some(Action::Read),
                        effect: Effect::Deny,
                        conditions: None,
                    }],
                ),
            ],
        };
        let d = diff(&from, &to, &perms);
        assert_eq!(d.roles.len(), 3, "{d:#?}");
        let dev = &d.roles[0];
        assert_eq!(dev.change, RoleChange::Changed);
        assert_eq!(dev.members_added, ["group:default/b"]);
        assert_eq!(dev.members_removed, ["user:default/x"]);
        assert_eq!(
            dev.rules_added,
            [
                "p, role:default/DEV, catalog.entity.delete, delete, allow when owned by the caller or their groups"
            ]
        );
        assert_eq!(
            dev.rules_removed,
            ["p, role:default/DEV, catalog.location.read, read, allow"]
        );
        let new = &d.roles[1];
        assert_eq!(new.change, RoleChange::Added);
        assert_eq!(new.members_added, ["user:default/z"]);
        assert_eq!(
            new.rules_added,
            ["p, role:default/new, catalog-entity, read, deny"]
        );
        let gone = &d.roles[2];
        assert_eq!(gone.change, RoleChange::Removed);
        assert_eq!(gone.rules_removed, ["p, role:default/gone, *, *, allow"]);
        assert_eq!(
            d.summary(),
            DiffSummary {
                roles_added: 1,
                roles_removed: 1,
                roles_changed: 1,
                members_added: 2,
                members_removed: 2,
                rules_added: 2,
                rules_removed: 2,
            }
        );
    }

    #[test]
    fn repeated_rules_count_and_descriptions_show() {
        let perms = Permissions::builtin();
        let r = |n| {
            role(
                "role:default/r",
                &["*"],
                vec![allow("catalog.entity.read"); n],
            )
        };
        let d = diff(
            &Policy { roles: vec![r(2)] },
            &Policy { roles: vec![r(1)] },
            &perms,
        );
        assert_eq!(d.roles[0].rules_removed.len(), 1);
        assert!(d.roles[0].rules_added.is_empty());
        let mut described = r(1);
        described.description = "new words".into();
        let d = diff(
            &Policy { roles: vec![r(1)] },
            &Policy {
                roles: vec![described],
            },
            &perms,
        );
        assert!(d.roles[0].description_changed);
        assert_eq!(d.summary().roles_changed, 1);
    }

    #[test]
    fn conditions_in_words() {
        let kind = Criteria::Rule {
            rule: "IS_ENTITY_KIND".into(),
            resource_type: CATALOG_ENTITY.into(),
            params: json!({"kinds": ["api", "component"]}),
        };
        let label = Criteria::Rule {
            rule: "HAS_LABEL".into(),
            resource_type: CATALOG_ENTITY.into(),
            params: json!({"label": "secret"}),
        };
        let c = Criteria::AllOf(vec![
            Criteria::AnyOf(vec![owned(), kind]),
            Criteria::Not(Box::new(label)),
        ]);
        assert_eq!(
            criteria_words(&c),
            "(owned by the caller or their groups or of kind api or component) and not labelled secret"
        );
        let odd = Criteria::Rule {
            rule: "HAS_SPEC".into(),
            resource_type: CATALOG_ENTITY.into(),
            params: json!({"key": "type", "value": "service"}),
        };
        assert_eq!(criteria_words(&odd), "with spec type=service");
    }

    #[test]
    fn json_depth_counts_outside_strings_only() {
        assert_eq!(json_depth(br#"{"a": [1, {"b": "[[[{{{"}]}"#, 99), 3);
        assert_eq!(json_depth(br#"["\"[[["]"#, 99), 1);
        let deep = "[".repeat(1000);
        assert_eq!(json_depth(deep.as_bytes(), 32), 33);
    }
}
