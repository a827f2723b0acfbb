//! `/catalog/{namespace}/{kind}/{name}`: one entity. Header, processing
//! errors, relations (links and an SVG graph), kind-specific sections (API
//! definition, group members, owned entities, parts), plugin cards on the
//! overview and plugin tabs (`?tab=<plugin id>`, plain links), and the
//! entity as YAML.

use std::time::{Duration, Instant};

use axum::{
    extract::{Path, Query},
    response::{IntoResponse, Response},
};
use callboard_catalog::EntityRef;
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;
use serde_json::Value;

use super::{
    Scoped, Web, WebError,
    catalog::{owner_of, ref_link, relation_targets, table, truncate},
    catalog_href, definition, entity_href,
    graph::{relation_graph, relation_label},
    home::problems,
    kind_label,
    layout::{Nav, kind_badge, lifecycle_badge, page},
    render_timed, short_ref, text,
};
use crate::{
    plugins::manifest::SlotKind,
    views::{self, ViewStatus},
};

/// Related entities listed in full (as table rows) before "and N more".
const LISTED: usize = 50;

/// Order in which relation types are listed.
const RELATION_ORDER: &[&str] = &[
    "ownedBy",
    "partOf",
    "hasPart",
    "providesApi",
    "consumesApi",
    "apiProvidedBy",
    "apiConsumedBy",
    "dependsOn",
    "dependencyOf",
    "childOf",
    "parentOf",
    "memberOf",
    "hasMember",
    "ownerOf",
];

/// A tab contributed by a plugin (its `entity-tab` view).
struct PluginTab {
    /// The plugin id, used in the URL (`?tab=<id>`).
    id: String,
    /// The tab's label: the manifest's title for the slot.
    title: String,
}

/// The tab on screen, when it is a plugin's.
struct OpenTab {
    /// Heading: the view's title.
    title: String,
    /// The view, or an error box in its place (already safe HTML).
    body: Option<Markup>,
    /// The plugin reported or failed: the error box is the body.
    failed: bool,
}

/// What plugins contribute to an entity page: cards on the overview and
/// tabs. Every card is fetched; a tab's view only while it is open, so the
/// overview never waits for tabs.
#[derive(Default)]
struct PluginViews {
    /// Cards shown on the overview, in plugin order.
    cards: Vec<PluginCard>,
    /// Extra tabs after "Overview", from the plugins' manifests.
    tabs: Vec<PluginTab>,
    /// The open tab's content (`None` on the overview).
    open: Option<OpenTab>,
}

/// One plugin card.
struct PluginCard {
    plugin: String,
    title: String,
    /// The view, or an error box in its place (already safe HTML).
    html: String,
    failed: bool,
}

/// The plugin area of the overview: the cards, or a note that there are none.
fn plugin_slot(cards: &[PluginCard]) -> Markup {
    html! {
        section.panel #plugin-cards aria-labelledby="plugin-cards-title" {
            h2 #plugin-cards-title { "From plugins" }
            @if cards.is_empty() {
                p.slot-empty { "No plugin shows anything for this entity yet. Plugins that add cards (cost, CI runs, docs…) appear here once installed." }
            } @else {
                div.plugin-cards {
                    @for card in cards {
                        @let id = format!("plugin-card-{}", card.plugin);
                        article.plugin-slot.failed[card.failed] #(id) aria-label=(card.title) {
                            h3.slot-title { (card.title) }
                            (PreEscaped(&card.html))
                        }
                    }
                }
            }
        }
    }
}

/// Fetches what plugins show for `entity`: every card, and the view of the
/// tab `tab` if that names a plugin's tab, in parallel under the configured
/// deadline. Failures and timeouts come back as error boxes.
async fn plugin_views(web: &Web, entity: &Value, tab: &str) -> PluginViews {
    let plugins = &web.app.plugins;
    let kind = text(entity, "kind").unwrap_or_default();
    let mut tabs: Vec<PluginTab> = Vec::new();
    let mut any_card = false;
    for (plugin, slot) in plugins.view_slots() {
        if !slot.applies_to(kind) {
            continue;
        }
        match slot.slot {
            SlotKind::EntityCard => any_card = true,
            // One tab per plugin: the request names the slot, not which one.
            SlotKind::EntityTab if !tabs.iter().any(|t| t.id == plugin) => tabs.push(PluginTab {
                id: plugin,
                title: slot.title,
            }),
            _ => {}
        }
    }
    let open = tabs.iter().find(|t| t.id == tab).map(|t| t.id.clone());
    if !any_card && open.is_none() {
        return PluginViews {
            tabs,
            ..PluginViews::default()
        };
    }
    let deadline = Duration::from_millis(web.app.config.plugins.view_deadline_ms);
    let viewer = views::Viewer::of(&web.app.callers, &web.identity);
    let rendered = views::entity_views_where(
        plugins,
        entity,
        &viewer,
        |plugin, slot| match slot.slot {
            SlotKind::EntityCard => true,
            SlotKind::EntityTab => open.as_deref() == Some(plugin),
            SlotKind::Page => false,
        },
        deadline,
    )
    .await;
    let mut out = PluginViews {
        tabs,
        ..PluginViews::default()
    };
    for view in rendered {
        let failed = matches!(view.status, ViewStatus::Error | ViewStatus::Timeout);
        match view.slot {
            SlotKind::EntityCard if view.status != ViewStatus::Empty => {
                out.cards.push(PluginCard {
                    plugin: view.plugin,
                    title: view.title,
                    html: view.html,
                    failed,
                });
            }
            SlotKind::EntityTab if out.open.is_none() => {
                out.open = Some(OpenTab {
                    title: view.title,
                    body: (view.status != ViewStatus::Empty).then_some(PreEscaped(view.html)),
                    failed,
                });
            }
            _ => {}
        }
    }
    out
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct EntityParams {
    tab: String,
}

/// Reads the entity, fetches plugin views for it (they need the entity and
/// must not hold a blocking thread while plugins run), then renders.
pub(super) async fn handler(
    Scoped(web): Scoped,
    Path((namespace, kind, name)): Path<(String, String, String)>,
    Query(params): Query<EntityParams>,
) -> Result<Response, WebError> {
    let r = EntityRef::new(&kind, &namespace, &name);
    let started = Instant::now();
    let mut entity = web.app.catalog.get_by_ref(&r).await?;
    // Beyond the caller's reach, an entity is as missing as an unknown one.
    if entity.is_some() && !web.may_read(&r).await? {
        entity = None;
    }
    let read = started.elapsed();
    let Some(entity) = entity else {
        let markup = tokio::task::spawn_blocking(move || not_found(&web, &r))
            .await
            .map_err(|e| WebError::Task(e.to_string()))??;
        return Ok((
            axum::http::StatusCode::NOT_FOUND,
            axum::response::Html(markup.into_string()),
        )
            .into_response());
    };
    let started = Instant::now();
    let views = plugin_views(&web, &entity, &params.tab).await;
    let fetched = started.elapsed();
    render_timed(&web, &[("entity", read), ("views", fetched)], move |web| {
        entity_page(web, &entity, &views, &params.tab)
    })
    .await
}

/// A missing entity. If a processing error names it, that is almost
/// certainly why it is missing, so show the error rather than a bare 404.
fn not_found(web: &Web, r: &EntityRef) -> Result<Markup, WebError> {
    let needle = r.name.to_lowercase();
    let related: Vec<_> = problems(web)?
        .into_iter()
        .filter(|(_, message)| message.to_lowercase().contains(&needle))
        .collect();
    let body = html! {
        div.error-page {
            h1 { "No such entity" }
            p { "The catalog has no " code { (r.to_string()) } "." }
            @if !related.is_empty() {
                div.alert role="alert" {
                    h2 { "It was rejected when the catalog read it" }
                    ul {
                        @for (location, message) in &related {
                            li { (message) " " span.muted { "(reported on " a href=(entity_href(location)) { (location.to_string()) } ")" } }
                        }
                    }
                    p { "Fix the file and the entity appears on the next refresh." }
                }
            }
            p { a href=(catalog_href(&[("q", &r.name)])) { "Search the catalog for " (r.name) } " · " a href="/" { "Home" } }
        }
    };
    Ok(page("No such entity", Nav::None, "", &body))
}

fn entity_page(
    web: &Web,
    entity: &Value,
    views: &PluginViews,
    tab: &str,
) -> Result<Markup, WebError> {
    let me = super::ref_of(entity);
    let kind = me.kind.to_lowercase();
    let title = text(entity, "metadata.title")
        .or_else(|| text(entity, "spec.profile.displayName"))
        .unwrap_or(&me.name)
        .to_owned();

    let relations: Vec<(String, EntityRef)> = entity
        .get("relations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|rel| {
            let t = rel.get("type")?.as_str()?;
            let target = EntityRef::parse(rel.get("targetRef")?.as_str()?).ok()?;
            Some((t.to_owned(), target))
        })
        .collect();

    let current_tab = views.tabs.iter().find(|t| t.id == tab);
    let body = html! {
        (errors(entity))
        (header(entity, &me, &title))
        (super::actions::panel(web, entity, &me)?)
        @let has_docs = crate::techdocs::source::annotation(entity).is_some();
        @if !views.tabs.is_empty() || has_docs {
            nav.tabs aria-label="Entity views" {
                ul {
                    li { a href=(entity_href(&me)) aria-current=[current_tab.is_none().then_some("page")] { "Overview" } }
                    @if has_docs { li { a #docs-tab href=(crate::techdocs::docs_base(&me)) { "Docs" } } }
                    @for t in &views.tabs {
                        li { a href=(format!("{}?tab={}", entity_href(&me), utf8(&t.id))) aria-current=[(current_tab.is_some_and(|c| c.id == t.id)).then_some("page")] { (t.title) } }
                    }
                }
            }
        }
        @if let Some(t) = current_tab {
            @let open = views.open.as_ref();
            @let heading = open.map_or(t.title.as_str(), |o| o.title.as_str());
            @let id = format!("plugin-tab-{}", t.id);
            section.panel.plugin-tab.failed[open.is_some_and(|o| o.failed)] #(id) aria-labelledby="plugin-tab-title" {
                h2 #plugin-tab-title { (heading) }
                @match open.and_then(|o| o.body.as_ref()) {
                    Some(body) => (body),
                    None => p.slot-empty { (t.title) " has nothing to show for " (title) "." },
                }
            }
        } @else {
            (overview(web, entity, &me, &kind, &title, &relations, views)?)
        }
    };
    Ok(page(&title, Nav::None, "", &body))
}

fn utf8(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, super::SEGMENT).to_string()
}

fn overview(
    web: &Web,
    entity: &Value,
    me: &EntityRef,
    kind: &str,
    title: &str,
    relations: &[(String, EntityRef)],
    views: &PluginViews,
) -> Result<Markup, WebError> {
    Ok(html! {
        div.grid {
            section.panel.relations aria-labelledby="relations-title" {
                h2 #relations-title { "Relations" }
                (relation_list(relations))
            }
            @if kind == "group" || kind == "user" {
                (people(web, entity, kind)?)
            }
        }
        (plugin_slot(&views.cards))
        section.panel aria-labelledby="graph-title" {
            h2 #graph-title { "Relation graph" }
            (relation_graph(me, title, relations))
        }
        @if kind == "api" {
            section.panel #definition aria-labelledby="definition-title" {
                h2 #definition-title { "Definition" }
                @match text(entity, "spec.definition") {
                    Some(d) => (definition::render(text(entity, "spec.type").unwrap_or(""), d)),
                    None => p.muted { "This API has no definition." },
                }
            }
        }
        @if kind == "location" {
            (location_targets(entity))
        }
        (related_table(web, relations, "ownerOf", "Owned entities", Some(("owner", me)))?)
        (related_table(web, relations, "hasPart", "Parts", None)?)
        (related_table(web, relations, "apiConsumedBy", "Consumers of this API", None)?)
        section.panel aria-labelledby="yaml-title" {
            details {
                summary { h2.inline #yaml-title { "Entity as YAML" } }
                (yaml(entity))
            }
        }
    })
}

/// Error and warning status items, at the top where nobody misses them.
fn errors(entity: &Value) -> Markup {
    let items: Vec<(&str, &str)> = entity
        .pointer("/status/items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|i| {
            (
                i.get("level").and_then(Value::as_str).unwrap_or("error"),
                i.get("message").and_then(Value::as_str).unwrap_or(""),
            )
        })
        .collect();
    html! {
        @if !items.is_empty() {
            @let warning = items.iter().all(|(level, _)| *level != "error");
            section.alert.warning[warning] #processing-errors role="alert" aria-labelledby="errors-title" {
                h2 #errors-title { "Processing " (if warning { "warnings" } else { "errors" }) " (" (items.len()) ")" }
                ul { @for (level, message) in &items { li { strong { (level) ": " } (message) } } }
            }
        }
    }
}

fn header(entity: &Value, me: &EntityRef, title: &str) -> Markup {
    let tags: Vec<&str> = entity
        .pointer("/metadata/tags")
        .and_then(Value::as_array)
        .map(|t| t.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let links: Vec<(&str, &str)> = entity
        .pointer("/metadata/links")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|l| {
            let url = l.get("url")?.as_str()?;
            Some((url, l.get("title").and_then(Value::as_str).unwrap_or(url)))
        })
        .collect();
    let first = |t: &str| relation_targets(entity, t).into_iter().next();
    let owner = owner_of(entity);
    let system = first("partOf").filter(|r| r.kind.eq_ignore_ascii_case("system"));
    let domain = first("partOf").filter(|r| r.kind.eq_ignore_ascii_case("domain"));
    let parent = first("childOf");
    let profile_email = text(entity, "spec.profile.email");
    html! {
        section.panel aria-labelledby="entity-title" {
            div.entity-head {
                div {
                    p { (kind_badge(&me.kind)) " "
                        @if let Some(t) = text(entity, "spec.type") { span.badge { (t) } " " }
                        @if let Some(l) = text(entity, "spec.lifecycle") { (lifecycle_badge(l)) }
                    }
                    h1 #entity-title { (title) }
                    p.ref { (me.to_string()) }
                }
            }
            @if let Some(d) = text(entity, "metadata.description") { p { (d) } }
            dl.facts {
                @if let Some(o) = &owner { dt { "Owner" } dd { (kind_badge(&o.kind)) " " (ref_link(o)) } }
                @if let Some(s) = &system { dt { "System" } dd { (ref_link(s)) } }
                @if let Some(d) = &domain { dt { "Domain" } dd { (ref_link(d)) } }
                @if let Some(p) = &parent { dt { "Parent" } dd { (ref_link(p)) } }
                @if let Some(l) = text(entity, "spec.lifecycle") { dt { "Lifecycle" } dd { (l) } }
                @if let Some(e) = profile_email { dt { "Email" } dd { a href=(format!("mailto:{e}")) { (e) } } }
                dt { "Namespace" } dd { (me.namespace) }
                @if !tags.is_empty() {
                    dt { "Tags" }
                    dd { @for t in &tags { a.tag href=(catalog_href(&[("tag", t)])) { (t) } } }
                }
            }
            @if !links.is_empty() {
                nav.links aria-label="Links" {
                    @for (url, label) in &links {
                        @if url.starts_with("http://") || url.starts_with("https://") || url.starts_with("mailto:") {
                            a href=(url) rel="noopener noreferrer" { (label) " ↗" }
                        } @else {
                            span.tag { (label) ": " (url) }
                        }
                    }
                }
            }
        }
    }
}

fn relation_list(relations: &[(String, EntityRef)]) -> Markup {
    html! {
        @if relations.is_empty() {
            p.muted { "No relations." }
        } @else {
            dl {
                @for t in RELATION_ORDER {
                    @let targets: Vec<&EntityRef> = relations.iter().filter(|(k, _)| k.eq_ignore_ascii_case(t)).map(|(_, r)| r).collect();
                    @if !targets.is_empty() {
                        dt { (capitalise(relation_label(t))) " (" (targets.len()) ")" }
                        dd {
                            @for r in targets.iter().take(LISTED) {
                                a href=(entity_href(r)) title=(r.to_string()) { span.muted { (kind_label(&r.kind)) " " } (short_ref(r)) }
                            }
                            @if targets.len() > LISTED { span.muted { "and " (targets.len() - LISTED) " more" } }
                        }
                    }
                }
            }
        }
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// Members, parent and child groups of a group; groups of a user.
fn people(web: &Web, entity: &Value, kind: &str) -> Result<Markup, WebError> {
    let members = relation_targets(entity, "hasMember");
    let member_entities = web.catalog().get_by_refs(
        &members
            .iter()
            .take(LISTED * 2)
            .map(EntityRef::key)
            .collect::<Vec<_>>(),
        None,
    )?;
    let parents = relation_targets(entity, "childOf");
    let children = relation_targets(entity, "parentOf");
    let groups = relation_targets(entity, "memberOf");
    Ok(html! {
        section.panel #people aria-labelledby="people-title" {
            @if kind == "group" {
                h2 #people-title { "Members (" (members.len()) ")" }
                @if members.is_empty() { p.muted { "No members." } }
                ul.plain {
                    @for (r, e) in members.iter().zip(member_entities.iter()) {
                        li {
                            a href=(entity_href(r)) {
                                (e.as_ref().and_then(|e| text(e, "spec.profile.displayName")).unwrap_or(&r.name))
                            }
                            @if let Some(email) = e.as_ref().and_then(|e| text(e, "spec.profile.email")) {
                                " " span.muted { (email) }
                            }
                        }
                    }
                }
                @if members.len() > LISTED * 2 { p.muted { "and " (members.len() - LISTED * 2) " more" } }
                h3 { "Parent group" }
                @if parents.is_empty() { p.muted { "None: this is a top-level group." } }
                @for p in &parents { p { (ref_link(p)) } }
                h3 { "Child groups (" (children.len()) ")" }
                @if children.is_empty() { p.muted { "None." } }
                ul.plain { @for c in &children { li { (ref_link(c)) } } }
            } @else {
                h2 #people-title { "Member of (" (groups.len()) ")" }
                @if groups.is_empty() { p.muted { "No groups." } }
                ul.plain { @for g in &groups { li { (ref_link(g)) } } }
            }
        }
    })
}

/// A table of the targets of one relation type (read by ref, which stays
/// fast however big the catalog is), with a link to the full list.
fn related_table(
    web: &Web,
    relations: &[(String, EntityRef)],
    relation: &str,
    heading: &str,
    filter: Option<(&str, &EntityRef)>,
) -> Result<Markup, WebError> {
    let targets: Vec<String> = relations
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(relation))
        .map(|(_, r)| r.key())
        .collect();
    if targets.is_empty() {
        return Ok(html! {});
    }
    let items: Vec<Value> = web
        .catalog()
        .get_by_refs(&targets[..targets.len().min(LISTED)], None)?
        .into_iter()
        .flatten()
        .collect();
    let id = format!("rel-{}", relation.to_lowercase());
    Ok(html! {
        section.panel #(id) aria-label=(heading) {
            h2 { (heading) " (" (targets.len()) ")" }
            (table(&items, heading))
            @if targets.len() > LISTED {
                p.muted {
                    "Showing " (LISTED) " of " (targets.len()) ". "
                    @if let Some((param, r)) = filter { a href=(catalog_href(&[(param, &r.key())])) { "See them all in the catalog" } }
                }
            }
        }
    })
}

fn location_targets(entity: &Value) -> Markup {
    let targets: Vec<&str> = entity
        .pointer("/spec/targets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .chain(text(entity, "spec.target"))
        .collect();
    html! {
        section.panel aria-labelledby="targets-title" {
            h2 #targets-title { "Targets (" (targets.len()) ")" }
            ul.plain { @for t in targets { li { code { (t) } } } }
        }
    }
}

/// The entity as stored (relations are derived, so they are left out).
fn yaml(entity: &Value) -> Markup {
    let mut stored = entity.clone();
    if let Some(root) = stored.as_object_mut() {
        root.remove("relations");
    }
    let text = serde_saphyr::to_string(&stored)
        .unwrap_or_else(|_| serde_json::to_string_pretty(&stored).unwrap_or_default());
    definition::highlighted("yaml", &truncate(&text, 200_000))
}
