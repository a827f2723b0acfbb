//! Plugin views: ask plugins for what a slot shows, in parallel and within a
//! deadline, and render their UI data as HTML. Every string a plugin sends
//! is escaped (maud), links are kept only if relative or http(s), markdown
//! loses raw HTML and images, and charts are drawn as SVG here, so a plugin
//! can never put markup or script on a page.
//!
//! A view is gated by the plugin's licence like its routes (entity views at
//! the empty path, pages at their normalised path), is brought within
//! `[plugins.views]` before it is rendered ([`limits`]), and its HTML is
//! capped; only the HTML, never the plugin's raw data, leaves this module.

mod limits;
mod render;

use std::time::Duration;

use maud::{Markup, html};
use serde::Serialize;
use serde_json::Value;

pub use render::{Forms, render, render_notice, valid_action, valid_field};
/// The host's own fields in a view's forms.
pub mod fields {
    pub use super::render::{CSRF_FIELD, ENTITY_FIELD, PATH_FIELD, QUERY_FIELD, SLOT_FIELD};
}
pub(crate) use render::safe_href;

use crate::{
    api::plugins::path::{self, PathError},
    config::ViewLimits,
    plugins::{
        CallError, Caller, PluginHost, View, ViewRequest,
        manifest::{SlotKind, ViewSlot},
    },
};

/// How a slot's view turned out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewStatus {
    /// Rendered.
    Ok,
    /// The plugin has nothing to show here; the slot is left out.
    Empty,
    /// The plugin failed, trapped or refused; `error` says why.
    Error,
    /// The plugin did not answer within the page's deadline.
    Timeout,
}

/// Who is looking at views: the caller plugins render for, and the
/// session's CSRF token their buttons and forms carry (without a session
/// they are shown disabled: actions need a signed-in person).
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The caller the plugins' `render` runs for.
    pub caller: Caller,
    /// The session's CSRF token.
    pub csrf: Option<String>,
}

impl Viewer {
    /// The viewer for `identity`, through `callers`.
    pub fn of(
        callers: &crate::identity::callers::Callers,
        identity: &crate::identity::Identity,
    ) -> Self {
        Self {
            caller: callers.of(identity),
            csrf: identity.session.as_ref().map(|s| s.csrf.clone()),
        }
    }
}

/// One plugin's view for one slot, rendered.
#[derive(Debug, Clone, Serialize)]
pub struct RenderedView {
    /// The plugin id.
    pub plugin: String,
    /// The slot.
    pub slot: SlotKind,
    /// Heading: the view's title, or the manifest's for the slot.
    pub title: String,
    /// How it turned out.
    pub status: ViewStatus,
    /// The view (or error box) as HTML, safe to embed. The plugin's raw
    /// view data is not kept: it is unbounded text a client need not see.
    pub html: String,
    /// Why it failed, for `error` and `timeout`.
    pub error: Option<String>,
}

/// A top-level page a plugin provides.
#[derive(Debug, Clone, Serialize)]
pub struct PageEntry {
    /// Plugin id.
    pub plugin: String,
    /// Name in navigation.
    pub title: String,
    /// Path below the plugin's page root.
    pub path: String,
    /// Where the portal serves it.
    pub href: String,
}

/// Every top-level page of every live plugin, by plugin id.
pub fn pages(plugins: &PluginHost) -> Vec<PageEntry> {
    plugins
        .view_slots()
        .into_iter()
        .filter(|(_, slot)| slot.slot == SlotKind::Page)
        .map(|(plugin, slot)| {
            let path = slot.path.clone().unwrap_or_else(|| "/".into());
            let href = format!("/plugins/{plugin}{}", if path == "/" { "" } else { &path });
            PageEntry {
                plugin,
                title: slot.title,
                path,
                href,
            }
        })
        .collect()
}

/// The views plugins give `entity` for `slot` (or for both entity slots),
/// fetched in parallel; a plugin still running at `deadline` is reported
/// as a timeout and the others are not held up.
pub async fn entity_views(
    plugins: &PluginHost,
    entity: &Value,
    slot: Option<SlotKind>,
    viewer: &Viewer,
    deadline: Duration,
) -> Vec<RenderedView> {
    entity_views_where(
        plugins,
        entity,
        viewer,
        |_, s| slot.is_none_or(|want| s.slot == want),
        deadline,
    )
    .await
}

/// Like [`entity_views`], for the entity slots (that apply to the entity's
/// kind) that `wanted(plugin, slot)` picks: the portal fetches every card
/// but only the tab on screen.
pub async fn entity_views_where(
    plugins: &PluginHost,
    entity: &Value,
    viewer: &Viewer,
    wanted: impl Fn(&str, &ViewSlot) -> bool,
    deadline: Duration,
) -> Vec<RenderedView> {
    let kind = entity["kind"].as_str().unwrap_or_default();
    let wanted: Vec<(String, ViewSlot)> = plugins
        .view_slots()
        .into_iter()
        .filter(|(plugin, s)| s.slot != SlotKind::Page && s.applies_to(kind) && wanted(plugin, s))
        .collect();
    if wanted.is_empty() {
        return Vec::new();
    }
    let json = entity.to_string();
    let requests = wanted.into_iter().map(|(plugin, s)| {
        let request = ViewRequest {
            caller: viewer.caller.clone(),
            slot: s.slot,
            entity: Some(json.clone()),
            path: String::new(),
            query: String::new(),
        };
        (plugin, s, request)
    });
    fetch_all(plugins, requests.collect(), viewer, deadline).await
}

/// Plugin `plugin`'s page at `raw_path` (below its page root, as the
/// client sent it, still percent-encoded), or `None` if it has no pages.
/// The path is normalised like a route's ([`path::normalise`]); one that
/// is ambiguous is refused.
pub async fn page_view(
    plugins: &PluginHost,
    plugin: &str,
    raw_path: &str,
    query: &str,
    viewer: &Viewer,
    deadline: Duration,
) -> Result<Option<RenderedView>, PathError> {
    let path = path::normalise(raw_path)?;
    let Some((_, slot)) = plugins
        .view_slots()
        .into_iter()
        .find(|(id, s)| id == plugin && s.slot == SlotKind::Page)
    else {
        return Ok(None);
    };
    let request = ViewRequest {
        caller: viewer.caller.clone(),
        slot: SlotKind::Page,
        entity: None,
        path,
        query: query.to_owned(),
    };
    Ok(fetch_all(
        plugins,
        vec![(plugin.to_owned(), slot, request)],
        viewer,
        deadline,
    )
    .await
    .pop())
}

/// `kind:namespace/name` of an entity given as JSON.
fn entity_ref_of(json: &str) -> Option<String> {
    let entity: Value = serde_json::from_str(json).ok()?;
    let text = |p: &str| entity.pointer(p).and_then(Value::as_str);
    Some(
        format!(
            "{}:{}/{}",
            text("/kind")?,
            text("/metadata/namespace").unwrap_or("default"),
            text("/metadata/name")?
        )
        .to_lowercase(),
    )
}

/// The plugin id and the rest of the path, as sent (still percent-encoded),
/// from `<id>/<rest>` (what follows a pages prefix such as `/plugins/`).
pub fn split_page_path(below: &str) -> (String, &str) {
    let below = below.strip_prefix('/').unwrap_or(below);
    let (id, rest) = match below.find('/') {
        Some(i) => (&below[..i], &below[i..]),
        None => (below, ""),
    };
    let id = percent_encoding::percent_decode_str(id)
        .decode_utf8_lossy()
        .into_owned();
    (id, rest)
}

async fn fetch_all(
    plugins: &PluginHost,
    requests: Vec<(String, ViewSlot, ViewRequest)>,
    viewer: &Viewer,
    deadline: Duration,
) -> Vec<RenderedView> {
    let until = tokio::time::Instant::now() + deadline;
    let limits = plugins.settings().plugins.views;
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|(plugin, slot, request)| {
            // Gated like the plugin's routes: entity views at the empty
            // path (which only a gate on `/` covers), pages at theirs.
            let forms = Forms {
                plugin: plugin.clone(),
                csrf: viewer.csrf.clone(),
                slot: request.slot,
                entity_ref: request.entity.as_deref().and_then(entity_ref_of),
                path: request.path.clone(),
                query: request.query.clone(),
            };
            let task = plugins.admits(&plugin, &request.path).map(|()| {
                let host = plugins.clone();
                let id = plugin.clone();
                tokio::spawn(async move { host.render_view(&id, request).await })
            });
            (plugin, slot, task, forms)
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for (plugin, slot, task, forms) in tasks {
        let outcome = match task {
            Err(refused) => Some(Err(refused)),
            Ok(mut task) => match tokio::time::timeout_at(until, &mut task).await {
                Ok(Ok(result)) => Some(result),
                Ok(Err(join)) => Some(Err(CallError::Trap {
                    plugin: plugin.as_str().into(),
                    message: join.to_string(),
                })),
                Err(_) => {
                    // Abandoned: cancelling drops its instance and frees its
                    // slots now, not at the plugin's own (longer) deadline.
                    task.abort();
                    None
                }
            },
        };
        out.push(rendered(
            plugins,
            plugin,
            &slot,
            outcome,
            deadline,
            (&limits, &forms),
        ));
    }
    out
}

fn rendered(
    plugins: &PluginHost,
    plugin: String,
    slot: &ViewSlot,
    outcome: Option<Result<Result<Option<View>, String>, CallError>>,
    deadline: Duration,
    (limits, forms): (&ViewLimits, &Forms),
) -> RenderedView {
    let mut view = RenderedView {
        plugin,
        slot: slot.slot,
        title: slot.title.clone(),
        status: ViewStatus::Ok,
        html: String::new(),
        error: None,
    };
    let error = match outcome {
        Some(Ok(Ok(Some(mut v)))) => {
            match within_limits(plugins, &view.plugin, &mut v, (limits, forms)) {
                Ok(html) => {
                    if !v.title.trim().is_empty() {
                        view.title = v.title;
                    }
                    view.html = html;
                    return view;
                }
                Err(error) => error,
            }
        }
        Some(Ok(Ok(None))) => {
            view.status = ViewStatus::Empty;
            return view;
        }
        Some(Ok(Err(message))) => format!("plugin {} reported: {message}", view.plugin),
        Some(Err(e @ (CallError::Unlicensed { .. } | CallError::NotEntitled { .. }))) => {
            let error = e.to_string();
            view.status = ViewStatus::Error;
            view.html = licence_notice(&view.title, &error).into_string();
            view.error = Some(error);
            return view;
        }
        Some(Err(e)) => e.to_string(),
        None => {
            view.status = ViewStatus::Timeout;
            format!(
                "plugin {} did not answer within {} ms",
                view.plugin,
                deadline.as_millis()
            )
        }
    };
    if view.status == ViewStatus::Ok {
        view.status = ViewStatus::Error;
    }
    view.html = error_box(&view.title, &error).into_string();
    view.error = Some(error);
    view
}

/// `view` brought within `limits` and rendered; `Err` names the plugin and
/// the cap it went over.
fn within_limits(
    plugins: &PluginHost,
    plugin: &str,
    view: &mut View,
    (limits, forms): (&ViewLimits, &Forms),
) -> Result<String, String> {
    let label = || {
        plugins
            .get(plugin)
            .map_or_else(|| plugin.to_owned(), |p| format!("{}@{}", p.id, p.version))
    };
    let over = |what: String| {
        let message = format!("plugin {}'s view is too large: {what}", label());
        tracing::warn!("{message}");
        message
    };
    limits::fit(view, limits).map_err(over)?;
    let html = render(view, Some(forms)).into_string();
    if html.len() > limits.max_html_bytes {
        return Err(over(format!(
            "it renders to {} bytes of HTML, over the limit of {} bytes",
            html.len(),
            limits.max_html_bytes
        )));
    }
    Ok(html)
}

/// What a failed view shows in its place.
pub fn error_box(title: &str, message: &str) -> Markup {
    html! {
        div.plugin-error role="alert" {
            strong { "“" (title) "” could not be shown" }
            p { (message) }
        }
    }
}

/// What a view shows when the plugin's licence does not cover it.
pub fn licence_notice(title: &str, message: &str) -> Markup {
    html! {
        div class="notice tone-warning" role="status" {
            strong { "“" (title) "” needs a licence" }
            p { (message) }
        }
    }
}
