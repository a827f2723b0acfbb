//! Insights: how the portal is used. Consumes the host's usage events
//! (page and entity views, API and plugin calls, searches) and shows daily
//! and weekly active users, top entities and pages, plugin usage and the
//! searches that found nothing, and plugins' own events (the assistant's
//! questions and feedback), as a page and as JSON.
//!
//! A commercial plugin: the host runs it only signed by its vendor and with
//! a valid licence; the licence's customer is shown on the page, and the CSV
//! export needs the licence feature `export`.
//!
//! Routes: `GET /` (index), `GET /summary?days=N` (JSON), `GET /export.csv?days=N`.

use std::collections::BTreeMap;

mod model;
mod report;
mod store;

use callboard_sdk::{
    Event, Params, Plugin, Request, Response, Router, catalog, export_plugin,
    kv::KvError,
    license, log,
    ui::{
        Block, Card, Cell, Change, Chart, Direction, Notice, Slot, Stat, Table, Tone, View,
        ViewRequest,
    },
};
use serde_json::json;

use crate::{
    model::{Day, top},
    report::{Report, TOP, change_text},
};

/// Period lengths offered on the page; `?days=` accepts 1 to 90.
const PERIODS: [u64; 3] = [7, 30, 90];
const DEFAULT_DAYS: u64 = 30;

struct Insights;

impl Plugin for Insights {
    fn handle(request: Request) -> Response {
        Router::new()
            .get("/", |_: &Request, _: &Params| {
                Response::json(&json!({
                    "plugin": "insights",
                    "licensed_to": license::current().map(|l| l.customer),
                    "routes": ["GET /summary?days=N", "GET /export.csv?days=N (licence feature \"export\")"],
                }))
            })
            .get("/summary", summary)
            .get("/export.csv", export)
            .handle(&request)
    }

    fn view(request: ViewRequest) -> Result<Option<View>, callboard_sdk::Error> {
        if request.slot != Slot::Page || !request.path.trim_end_matches('/').is_empty() {
            return Ok(None);
        }
        let days = match request.query_param("days") {
            Some(text) => parse_days(&text)?,
            None => DEFAULT_DAYS,
        };
        let report = load(days).map_err(|e| format!("cannot read usage data: {e}"))?;
        Ok(Some(page(&report, days)))
    }

    fn on_events(events: Vec<Event>) {
        if let Err(e) = store::record(&events) {
            log::error(&format!("dropping a batch of {} events: {e}", events.len()));
        }
    }

    fn on_tick(now_ms: u64) {
        if let Err(e) = store::compact(now_ms) {
            log::warn(&format!("roll-up and pruning stopped: {e}"));
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn parse_days(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(n) if (1..=store::RETENTION_DAYS).contains(&n) => Ok(n),
        _ => Err(format!(
            "days must be a whole number from 1 to {}, not {text:?}",
            store::RETENTION_DAYS
        )),
    }
}

/// The period ending today plus what the comparisons need before it.
fn load(days: u64) -> Result<Report, KvError> {
    let history = store::days_until(now_ms(), (2 * days).max(14))
        .into_iter()
        .map(|day| store::load_day(&day).map(|usage| (day, usage)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Report::new(days, history))
}

fn days_param(request: &Request) -> Result<u64, Response> {
    request
        .query_param("days")
        .map_or(Ok(DEFAULT_DAYS), |d| parse_days(&d))
        .map_err(|e| Response::error(400, e))
}

fn summary(request: &Request, _: &Params) -> Response {
    let days = match days_param(request) {
        Ok(d) => d,
        Err(response) => return response,
    };
    match load(days) {
        Ok(report) => {
            let customer = license::current().map(|l| l.customer);
            Response::json(&report.to_json(customer.as_deref(), &entity_title))
        }
        Err(e) => Response::error(503, format!("cannot read usage data: {e}")),
    }
}

fn export(request: &Request, _: &Params) -> Response {
    let days = match days_param(request) {
        Ok(d) => d,
        Err(response) => return response,
    };
    match load(days) {
        Ok(report) => Response::new(200)
            .with_header("content-type", "text/csv; charset=utf-8")
            .with_header(
                "content-disposition",
                format!("attachment; filename=\"insights-{days}d.csv\""),
            )
            .with_body(report.to_csv()),
        Err(e) => Response::error(503, format!("cannot read usage data: {e}")),
    }
}

/// An entity's title from the catalog, if the plugin may read it and it has one.
fn entity_title(entity_ref: &str) -> Option<String> {
    match catalog::get(entity_ref) {
        Ok(Some(entity)) => entity["metadata"]["title"].as_str().map(str::to_owned),
        _ => None,
    }
}

/// `kind:namespace/name` → the entity's portal page.
fn entity_href(entity_ref: &str) -> Option<String> {
    let (kind, rest) = entity_ref.split_once(':')?;
    let (namespace, name) = rest.split_once('/')?;
    Some(format!("/catalog/{namespace}/{kind}/{name}"))
}

fn stat(label: &str, now: u64, before: u64, period: &str) -> Stat {
    let text = format!("{} vs previous {period}", change_text(now, before));
    let change = match now.cmp(&before) {
        std::cmp::Ordering::Greater => Change::up_good(text),
        std::cmp::Ordering::Less => Change::down_bad(text),
        std::cmp::Ordering::Equal => Change::flat(text),
    };
    Stat::new(label, now.to_string()).with_change(change)
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn page(report: &Report, days: u64) -> View {
    let period = format!("{days} days");
    let total = &report.total;
    let previous = &report.previous;
    let mut view = View::new("Insights");

    let mut overview = Card::new(format!("Last {period}"));
    overview = overview.block(Block::Stats(vec![
        stat(
            "Active users",
            count(report.active_users()),
            count(previous.users.len()),
            &period,
        ),
        stat(
            "Weekly active users",
            count(report.wau),
            count(report.wau_previous),
            "week",
        ),
        Stat::new("Active today", report.dau_today().to_string()),
        stat(
            "Page views",
            total.kind("page-view"),
            previous.kind("page-view"),
            &period,
        ),
        stat(
            "Entity views",
            total.kind("entity-view"),
            previous.kind("entity-view"),
            &period,
        ),
        searches_stat(total.kind("search"), report.zero_result_searches()),
    ]));
    overview = overview.block(Block::List(
        PERIODS
            .iter()
            .map(|d| {
                if *d == days {
                    Cell::badge(format!("{d} days"), Tone::Info)
                } else {
                    Cell::link(format!("{d} days"), format!("/plugins/insights?days={d}"))
                }
            })
            .collect(),
    ));
    if shows_nothing(total) {
        overview = overview.block(Block::Notice(Notice::new(
            Tone::Info,
            "No usage recorded in this period yet",
            Some(
                "Insights counts the portal's usage events; the operator grants them with \
                 `events = [\"usage\"]` under `[grants.plugins.insights]`."
                    .to_owned(),
            ),
        )));
    }
    view = view.card(overview);

    view = view.card(Card::new("Daily active users").block(Block::LineChart(
        Chart::new(None, None).series(
            "Active users",
            report.period.iter().map(|(day, usage)| {
                (
                    day.get(5..).unwrap_or(day).to_owned(),
                    usage.users.len() as f64,
                )
            }),
        ),
    )));

    let mut entities = Table::new(["Entity", "Views"]);
    for (entity, views) in top(&total.entities, TOP) {
        let label =
            entity_title(&entity).map_or_else(|| entity.clone(), |t| format!("{t} ({entity})"));
        let cell = match entity_href(&entity) {
            Some(href) => Cell::link(label, href),
            None => Cell::text(label),
        };
        entities = entities.row(vec![cell, Cell::number(views.to_string())]);
    }
    view = view.card(table_card(
        "Top entities",
        entities,
        "No entity pages viewed.",
    ));

    let mut pages = Table::new(["Page", "Views"]);
    for (path, views) in top(&total.pages, TOP) {
        let cell = if path.starts_with('/') {
            Cell::link(path.clone(), path)
        } else {
            Cell::text(path)
        };
        pages = pages.row(vec![cell, Cell::number(views.to_string())]);
    }
    view = view.card(table_card("Top pages", pages, "No pages viewed."));

    let mut plugins = Table::new(["Plugin", "Calls"]);
    for (plugin, calls) in top(&total.plugins, TOP) {
        plugins = plugins.row(vec![Cell::text(plugin), Cell::number(calls.to_string())]);
    }
    view = view.card(table_card("Plugin usage", plugins, "No plugin calls."));

    // Plugins' own events (`<plugin-id>.<kind>`, published with
    // `events.publish`), e.g. the assistant's questions and feedback.
    let mut own = Table::new(["Plugin event", "Count"]);
    let own_events: BTreeMap<String, u64> = total
        .kinds
        .iter()
        .filter(|(kind, _)| kind.contains('.'))
        .map(|(k, n)| (k.clone(), *n))
        .collect();
    for (kind, n) in top(&own_events, 2 * TOP) {
        own = own.row(vec![Cell::text(kind), Cell::number(n.to_string())]);
    }
    view = view.card(table_card(
        "Plugins' own events",
        own,
        "No plugin published events (the assistant's questions and feedback show here).",
    ));

    let mut zero = Table::new(["Search", "Times"]);
    for (query, times) in top(&total.zero, 2 * TOP) {
        let href = format!(
            "/catalog?q={}",
            form_urlencoded::byte_serialize(query.as_bytes()).collect::<String>()
        );
        zero = zero.row(vec![
            Cell::link(query, href),
            Cell::number(times.to_string()),
        ]);
    }
    view = view.card(table_card(
        "Searches that found nothing",
        zero,
        "Every search found something.",
    ));

    view.card(
        Card::untitled().block(Block::Text(match license::current() {
            Some(l) => format!(
                "Licensed to {} until {}. Counts are kept for {} days.",
                l.customer,
                l.expires.get(..10).unwrap_or(&l.expires),
                store::RETENTION_DAYS
            ),
            None => "Unlicensed.".to_owned(),
        })),
    )
}

/// Whether none of what the page shows was counted (API calls alone are not shown).
fn shows_nothing(usage: &Day) -> bool {
    usage.users.is_empty()
        && usage.pages.is_empty()
        && usage.entities.is_empty()
        && usage.plugins.is_empty()
        && usage.kind("search") == 0
}

fn searches_stat(searches: u64, zero: u64) -> Stat {
    let tone = if zero == 0 { Tone::Good } else { Tone::Warning };
    let share = (zero * 100).checked_div(searches).unwrap_or(0);
    Stat::new("Searches", searches.to_string()).with_change(Change::new(
        format!("{zero} found nothing ({share}%)"),
        Direction::Flat,
        tone,
    ))
}

fn table_card(title: &str, table: Table, empty: &str) -> Card {
    let card = Card::new(title);
    if table.rows.is_empty() {
        card.block(Block::Text(empty.to_owned()))
    } else {
        card.block(Block::Table(table))
    }
}

export_plugin!(Insights);
