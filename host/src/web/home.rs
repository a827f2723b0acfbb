//! `/`: what a newcomer needs first. What Callboard is, a search box, what
//! the catalog holds (counts by kind), what changed lately, what plugins
//! offer, and anything the catalog could not read.

use axum::response::Response;
use callboard_catalog::{EntityRef, Predicate, Selection, Start};
use maud::{Markup, html};
use serde_json::Value;

use super::{
    Scoped, Web, WebError, ago, catalog_href, entity_href, kind_label,
    layout::{Nav, page},
    ref_of, render, short_ref, text,
};

/// What each kind means, for people new to the Backstage model.
const KINDS: &[(&str, &str)] = &[
    ("component", "Services, websites, libraries and jobs"),
    ("api", "Interfaces components provide and consume"),
    ("resource", "Databases, queues, buckets and caches"),
    ("system", "Components and APIs that work together"),
    ("domain", "Business areas grouping systems"),
    ("group", "Teams and departments"),
    ("user", "People and their teams"),
    ("location", "Where the catalog reads its files"),
];

/// How many Location entities are checked for processing errors.
const LOCATIONS_CHECKED: usize = 500;

pub(super) async fn handler(Scoped(web): Scoped) -> Result<Response, WebError> {
    render(&web, home).await
}

/// Processing errors the catalog reported on Location entities (where it puts
/// errors about entities it had to reject): (location, message).
pub(crate) fn problems(web: &Web) -> Result<Vec<(EntityRef, String)>, WebError> {
    let selection = Selection {
        predicate: Some(Predicate::eq("kind", &["location"])),
        ..Selection::default()
    };
    let page = web
        .catalog()
        .query(&selection, &Start::Beginning, LOCATIONS_CHECKED)?;
    Ok(page
        .values()
        .iter()
        .flat_map(|location| {
            let r = ref_of(location);
            location
                .pointer("/status/items")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|i| i.get("level").and_then(Value::as_str) == Some("error"))
                .filter_map(|i| i.get("message").and_then(Value::as_str))
                .map(move |m| (r.clone(), m.to_owned()))
                .collect::<Vec<_>>()
        })
        .collect())
}

fn home(web: &Web) -> Result<Markup, WebError> {
    let facets = web.facets()?;
    let kinds: Vec<(String, u64)> = facets
        .get("kind")
        .map(|k| k.iter().map(|f| (f.value.clone(), f.count)).collect())
        .unwrap_or_default();
    let total: u64 = kinds.iter().map(|(_, n)| n).sum();
    let count_of = |kind: &str| {
        kinds
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(kind))
            .map(|(_, n)| *n)
            .sum::<u64>()
    };
    // Known kinds first in a teaching order, then any others the catalog has.
    let mut cards: Vec<(String, u64, &str)> = KINDS
        .iter()
        .map(|(k, what)| ((*k).to_owned(), count_of(k), *what))
        .filter(|(_, n, _)| *n > 0)
        .collect();
    for (k, n) in &kinds {
        if !KINDS.iter().any(|(known, _)| known.eq_ignore_ascii_case(k)) {
            cards.push((k.to_lowercase(), *n, ""));
        }
    }

    let recent = web.recent();
    let recent_entities = web.catalog().get_by_refs(
        &recent.iter().map(|r| r.key.clone()).collect::<Vec<_>>(),
        None,
    )?;
    let plugins = web.app.plugins.list();
    let pages = crate::views::pages(&web.app.plugins);
    let problems = problems(web)?;

    let body = html! {
        section.hero aria-labelledby="welcome" {
            h1 #welcome { "Find any service, API or team" }
            p {
                "Callboard is your developer portal: one catalog of the software your organisation builds and runs, "
                "who owns each piece, what it provides and depends on, and what plugins know about it. "
                "Search below, or pick a kind of thing to browse."
            }
            form role="search" action="/search" method="get" {
                label.visually-hidden for="home-search" { "Search the catalog and docs" }
                input #home-search type="search" name="query" placeholder="Try a service name, a team, a tag, a runbook…";
                button type="submit" { "Search" }
            }
        }
        h2 { "In the catalog " span.muted { "(" (total) " entities)" } }
        @if cards.is_empty() {
            div.panel {
                p { "The catalog is empty. Point " code { "[catalog] locations" } " in " code { "callboard.toml" } " at your " code { "catalog-info.yaml" } " files; they are read at start-up and on every refresh." }
            }
        }
        nav.kinds aria-label="Browse by kind" {
            @for (kind, count, what) in &cards {
                a href=(catalog_href(&[("kind", kind)])) {
                    span.count { (count) }
                    strong { (plural_kind(kind)) }
                    @if !what.is_empty() { span.what { " · " (what) } }
                }
            }
        }
        @if !problems.is_empty() {
            section.alert #problems role="alert" aria-labelledby="problems-title" {
                h2 #problems-title { "The catalog could not read everything (" (problems.len()) ")" }
                ul {
                    @for (location, message) in &problems {
                        li { (message) " " span.muted { "(on " a href=(entity_href(location)) { (short_ref(location)) } ")" } }
                    }
                }
            }
        }
        div.grid {
            section.panel aria-labelledby="recent-title" {
                h2 #recent-title { "Recently changed" }
                @if recent.is_empty() {
                    p.muted { "No changes since the server started." }
                }
                ul.plain {
                    @for (change, entity) in recent.iter().zip(recent_entities.iter()) {
                        li {
                            @match (entity, EntityRef::parse(&change.key)) {
                                (Some(e), _) => {
                                    @let r = ref_of(e);
                                    a href=(entity_href(&r)) { (text(e, "metadata.title").unwrap_or(&r.name)) }
                                    " " span.muted { (kind_label(&r.kind)) " · " (change.what) " " (ago(change.at)) }
                                },
                                (None, Ok(r)) => {
                                    (short_ref(&r)) " " span.muted { (kind_label(&r.kind)) " · " (change.what) " " (ago(change.at)) }
                                },
                                (None, Err(_)) => { (change.key) }
                            }
                        }
                    }
                }
            }
            section.panel #plugins aria-labelledby="plugins-title" {
                h2 #plugins-title { "Plugins" }
                @if plugins.is_empty() {
                    p { "No plugins are installed yet. Plugins add pages and cards (cost per team, CI runs, docs, insights…); an operator installs one by adding its file to the plugins folder, without a restart." }
                } @else {
                    @if !pages.is_empty() {
                        h3 { "Plugin pages" }
                        ul.plain.plugin-pages {
                            @for entry in &pages {
                                li {
                                    a href=(entry.href) { (entry.title) }
                                    " " span.muted { "· " (plugins.iter().find(|p| p.id == entry.plugin).map_or(entry.plugin.as_str(), |p| p.name.as_str())) }
                                }
                            }
                        }
                        h3 { "Installed" }
                    }
                    ul.plain {
                        @for p in &plugins {
                            li {
                                strong { (p.name) } " " span.badge { (p.version) }
                                @if let Some(d) = &p.description { br; span.muted { (d) } }
                            }
                        }
                    }
                    p.muted { "Plugins also add cards and tabs to entity pages. " a href="/plugins" { "All plugin pages" } }
                }
            }
            section.panel aria-labelledby="start-title" {
                h2 #start-title { "Good places to start" }
                ul.plain {
                    li { a href=(catalog_href(&[("kind", "component"), ("type", "service")])) { "Services" } span.muted { " · what runs in production and who owns it" } }
                    li { a href=(catalog_href(&[("kind", "api")])) { "APIs" } span.muted { " · with their operations and consumers" } }
                    li { a href=(catalog_href(&[("kind", "group")])) { "Teams" } span.muted { " · members and what each team owns" } }
                    li { a href=(catalog_href(&[("kind", "system")])) { "Systems" } span.muted { " · how components fit together" } }
                    li { a href=(catalog_href(&[("lifecycle", "deprecated")])) { "Deprecated software" } span.muted { " · what to move off" } }
                }
            }
        }
    };
    Ok(page("Home", Nav::Home, "", &body))
}

fn plural_kind(kind: &str) -> String {
    match kind {
        "api" => "APIs".to_owned(),
        "user" => "People".to_owned(),
        "group" => "Groups".to_owned(),
        "system" => "Systems".to_owned(),
        "domain" => "Domains".to_owned(),
        "resource" => "Resources".to_owned(),
        "component" => "Components".to_owned(),
        "location" => "Locations".to_owned(),
        other => format!("{}s", kind_label(other)),
    }
}
