//! `/plugins`: the pages plugins provide (their `page` views), inside the
//! portal's shell. `/plugins` lists them; `/plugins/{plugin}` and
//! `/plugins/{plugin}/{*path}` show one, with the query string passed to the
//! plugin, so the relative links plugins put in views (`/plugins/cost/teams/x`)
//! land here.

use std::time::{Duration, Instant};

use axum::{
    extract::RawQuery,
    http::{StatusCode, Uri},
    response::Response,
};
use maud::{Markup, PreEscaped, html};

use super::{
    Scoped, Web, WebError,
    layout::{Nav, page},
    render, render_timed,
};
use crate::views::{self, PageEntry, RenderedView, ViewStatus};

/// `/plugins`: every plugin page, by plugin.
pub(super) async fn index(Scoped(web): Scoped) -> Result<Response, WebError> {
    render(&web, |web| {
        let pages = views::pages(&web.app.plugins);
        let body = html! {
            h1 { "Plugin pages" }
            p.lead { "Pages the installed plugins provide: reports and overviews that are not about one entity. Their cards and tabs show on entity pages." }
            @if pages.is_empty() {
                div.panel {
                    p { "No installed plugin provides pages yet. An operator installs plugins on the " a href="/admin" { "admin page" } " or by adding their files to the plugins folder; their pages appear here at once." }
                }
            } @else {
                div.grid {
                    @for (plugin, entries) in by_plugin(&pages) {
                        section.panel aria-label=(name_of(web, plugin)) {
                            h2 { (name_of(web, plugin)) }
                            ul.plain {
                                @for p in entries {
                                    li { a href=(p.href) { (p.title) } }
                                }
                            }
                        }
                    }
                }
            }
        };
        Ok(page("Plugin pages", Nav::Plugins, "", &body))
    })
    .await
}

/// `/plugins/{plugin}`: the plugin's page root.
pub(super) async fn root(
    Scoped(web): Scoped,
    uri: Uri,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    show(web, &uri, query.unwrap_or_default()).await
}

/// `/plugins/{plugin}/{*path}`: a page below the plugin's root.
pub(super) async fn page_at(
    Scoped(web): Scoped,
    uri: Uri,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    show(web, &uri, query.unwrap_or_default()).await
}

/// The plugin and the page path come from the URI as sent, so the path is
/// normalised once, like a route's; the plugin gets that path and its
/// licence is checked against it.
async fn show(web: Web, uri: &Uri, query: String) -> Result<Response, WebError> {
    let below = uri.path().strip_prefix("/plugins").unwrap_or(uri.path());
    let (plugin, raw_path) = views::split_page_path(below);
    let path = crate::api::plugins::path::normalise(raw_path)
        .map_err(|e| WebError::BadRequest(e.to_string()))?;
    let started = Instant::now();
    let deadline = Duration::from_millis(web.app.config.plugins.view_deadline_ms);
    let viewer = views::Viewer::of(&web.app.callers, &web.identity);
    let view = views::page_view(&web.app.plugins, &plugin, &path, &query, &viewer, deadline)
        .await
        .map_err(|e| WebError::BadRequest(e.to_string()))?;
    let fetched = started.elapsed();
    let Some(view) = view else {
        return Err(WebError::NotFound(format!(
            "No plugin named \"{plugin}\" provides pages. See the plugin pages that exist."
        )));
    };
    let status = match view.status {
        ViewStatus::Ok => StatusCode::OK,
        ViewStatus::Empty => StatusCode::NOT_FOUND,
        ViewStatus::Error => StatusCode::BAD_GATEWAY,
        ViewStatus::Timeout => StatusCode::GATEWAY_TIMEOUT,
    };
    let mut response = render_timed(&web, &[("views", fetched)], move |web| {
        Ok(plugin_page(web, &plugin, &path, &view))
    })
    .await?;
    *response.status_mut() = status;
    Ok(response)
}

fn plugin_page(web: &Web, plugin: &str, path: &str, view: &RenderedView) -> Markup {
    let name = name_of(web, plugin);
    let own: Vec<PageEntry> = views::pages(&web.app.plugins)
        .into_iter()
        .filter(|p| p.plugin == plugin)
        .collect();
    let here = format!("/plugins/{plugin}{}", if path == "/" { "" } else { path });
    let body = html! {
        nav.breadcrumbs aria-label="Breadcrumb" {
            a href="/plugins" { "Plugins" } " › " (name)
        }
        h1 { (view.title) }
        @if own.len() > 1 {
            nav.tabs aria-label={ (name) " pages" } {
                ul {
                    @for p in &own {
                        li { a href=(p.href) aria-current=[(p.href == here).then_some("page")] { (p.title) } }
                    }
                }
            }
        }
        @match view.status {
            ViewStatus::Empty => div.panel {
                p { (name) " has no page at " code { (path) } "." }
                @if let Some(first) = own.first() { p { a href=(first.href) { "Go to " (first.title) } } }
            },
            _ => div.plugin-page { (PreEscaped(&view.html)) },
        }
    };
    page(&view.title, Nav::Plugins, "", &body)
}

/// Pages grouped by plugin, in the order given (plugins sorted by id).
fn by_plugin(pages: &[PageEntry]) -> Vec<(&str, Vec<&PageEntry>)> {
    let mut out: Vec<(&str, Vec<&PageEntry>)> = Vec::new();
    for p in pages {
        match out.last_mut() {
            Some((id, entries)) if *id == p.plugin => entries.push(p),
            _ => out.push((&p.plugin, vec![p])),
        }
    }
    out
}

/// A plugin's display name (its id if it is gone).
pub(super) fn name_of(web: &Web, plugin: &str) -> String {
    web.app
        .plugins
        .get(plugin)
        .map_or_else(|| plugin.to_owned(), |p| p.name)
}
