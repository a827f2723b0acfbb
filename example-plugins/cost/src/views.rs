//! The views: a card on components and systems, and pages (`/` overview,
//! `/teams`, `/teams/<team>`).

use callboard_sdk::ui::{
    Badge, Block, Card, Cell, Change, Chart, Link, Notice, Slot, Stat, Table, Tone, View,
    ViewRequest,
};

use callboard_sdk::catalog::CatalogError;

use crate::format::{self, month_label, usd, usd_delta};
use crate::model::{self, Model, Settings};
use crate::placement::{Placements, entity_key, placement_of};
use crate::report::{Mover, Summary, movers_by_amount, movers_by_ratio};
use crate::rollup::{self, ComponentCost, GroupCost, entity_href, team_entity_href, team_href};
use crate::source::SourceError;

/// Title of every view.
const TITLE: &str = "Cost";

/// Renders a slot.
pub fn render(request: &ViewRequest) -> Result<Option<View>, String> {
    let settings = Settings::read();
    let loaded = model::load(model::now_ms(), &settings);
    match request.slot {
        Slot::EntityCard | Slot::EntityTab => {
            let model = match loaded {
                Ok(model) => model,
                // Not set up: leave entity pages alone; the pages say why.
                Err(SourceError::NotConfigured) => return Ok(None),
                Err(e) => return Ok(Some(problem(TITLE, &e))),
            };
            let Some(entity) = &request.entity else {
                return Ok(None);
            };
            let key = entity_key(entity);
            Ok(match request.kind().as_str() {
                "component" => component_card(&model, &settings, &key, entity),
                "system" => system_card(&model, &settings, &key),
                _ => None,
            })
        }
        Slot::Page => {
            let path = request.path.trim_end_matches('/');
            let team = path.strip_prefix("/teams/").map(|t| {
                percent_encoding::percent_decode_str(t)
                    .decode_utf8_lossy()
                    .into_owned()
            });
            let title = match (&team, path) {
                (Some(team), _) => format!("Cost of {team}"),
                (None, "") => TITLE.to_owned(),
                (None, "/teams") => "Cost by team".to_owned(),
                _ => return Ok(None),
            };
            let model = match loaded {
                Ok(model) => model,
                Err(e) => return Ok(Some(problem(&title, &e))),
            };
            Ok(Some(match (team, path) {
                (Some(team), _) => team_page(&model, &settings, &team),
                (None, "") => overview(&model, &settings),
                _ => teams_page(&model, &settings),
            }))
        }
    }
}

/// A view that only says why there is nothing to show.
fn problem(title: &str, error: &SourceError) -> View {
    let (tone, detail) = match error {
        SourceError::Denied(_) => (
            Tone::Bad,
            "Grant it in callboard.toml under [grants.plugins.cost] http_hosts, \
             or point the billing_url setting at a granted host."
                .to_owned(),
        ),
        SourceError::NotConfigured => (
            Tone::Info,
            "See the cost plugin's README for the billing export format.".to_owned(),
        ),
        SourceError::Settings(_) => (
            Tone::Warning,
            "Fix [plugins.settings.cost] in callboard.toml.".to_owned(),
        ),
        SourceError::Unreachable(_) | SourceError::Invalid(_) => (
            Tone::Warning,
            "Costs are shown again once the billing source answers with billing rows.".to_owned(),
        ),
    };
    View::new(title).card(Card::untitled().block(Block::Notice(Notice::new(
        tone,
        error.to_string(),
        Some(detail),
    ))))
}

/// Why costs do not roll up to systems and teams.
fn catalog_notice(error: &CatalogError) -> Block {
    let detail = match error {
        CatalogError::Denied => {
            "Grant it in callboard.toml: [grants.plugins.cost] catalog = true.".to_owned()
        }
        other => other.to_string(),
    };
    Block::Notice(Notice::new(
        Tone::Warning,
        format!("Costs cannot roll up to systems and teams: {error}"),
        Some(detail),
    ))
}

/// The placements, or none and a notice saying why.
fn placed(result: Result<Placements, CatalogError>) -> (Placements, Option<Block>) {
    match result {
        Ok(p) => (p, None),
        Err(e) => (Placements::default(), Some(catalog_notice(&e))),
    }
}

/// Warnings about the data behind a view: stale, skipped rows.
fn warnings(model: &Model) -> Vec<Block> {
    let mut out = Vec::new();
    if let Some(why) = &model.stale {
        out.push(Block::Notice(Notice::new(
            Tone::Warning,
            "Showing costs cached before the billing source failed",
            Some(why.clone()),
        )));
    }
    if model.skipped > 0 {
        out.push(Block::Notice(Notice::new(
            Tone::Warning,
            format!("{} billing rows could not be read", model.skipped),
            model.first_skipped.clone(),
        )));
    }
    out
}

fn with_warnings(mut card: Card, model: &Model, catalog: Option<Block>) -> Card {
    let mut blocks = warnings(model);
    blocks.extend(catalog);
    blocks.append(&mut card.blocks);
    card.blocks = blocks;
    card
}

/// `+12%` up and bad, `-3%` down and good.
fn change(summary: &Summary) -> Change {
    let text = summary.change_text();
    match summary.delta() {
        d if d > 0 => Change::up_bad(text),
        d if d < 0 => Change::down_good(text),
        _ => Change::flat(text),
    }
}

/// The headline figure: `$4,210 / month`, `+12%`.
fn monthly_stat(summary: &Summary) -> Stat {
    Stat::new(
        format!(
            "{} (vs {})",
            month_label(summary.month),
            month_label(summary.month - 1)
        ),
        format!("{} / month", usd(summary.latest)),
    )
    .with_change(change(summary))
}

fn trend_chart(name: &str, summary: &Summary) -> Block {
    Block::LineChart(
        Chart::new(Some("Last 12 months"), Some("$")).series(
            name,
            summary
                .trend
                .iter()
                .map(|(m, c)| (format::month_iso(*m), format::dollars(*c))),
        ),
    )
}

fn anomaly_blocks(summary: &Summary) -> Vec<Block> {
    match &summary.anomaly {
        None => Vec::new(),
        Some(a) => vec![
            Block::Badges(vec![Badge::new("Cost anomaly", Tone::Bad)]),
            Block::Text(a.reasons.join(". ") + "."),
        ],
    }
}

fn change_cell(summary: &Summary) -> Cell {
    Cell::number(summary.change_text())
}

fn flag_cell(summary: &Summary) -> Cell {
    if summary.anomaly.is_some() {
        Cell::badge("anomaly", Tone::Bad)
    } else {
        Cell::text("")
    }
}

fn team_cell(placements: &Placements, owner: Option<&str>) -> Cell {
    match owner {
        Some(team) => Cell::link(placements.team_name(team), team_href(team)),
        None => Cell::text("not in the catalog"),
    }
}

fn component_cell(key: &str) -> Cell {
    Cell::link(key, entity_href("component", key))
}

fn component_card(
    model: &Model,
    settings: &Settings,
    key: &str,
    entity: &serde_json::Value,
) -> Option<View> {
    let series = model.component_series(key)?;
    let summary = Summary::of(&series, model.first, settings.anomaly_min_cents);
    if !summary.has_recent_cost() {
        return None;
    }
    let mut card = Card::untitled().block(Block::Stats(vec![
        monthly_stat(&summary),
        Stat::new("Last 12 months", usd(summary.total_12m)),
    ]));
    for block in anomaly_blocks(&summary) {
        card = card.block(block);
    }
    card = card.block(trend_chart(key, &summary));

    let mut services: Vec<(String, Summary)> = model.components[key]
        .iter()
        .map(|(service, s)| {
            (
                service.clone(),
                Summary::of(s, model.first, settings.anomaly_min_cents),
            )
        })
        .filter(|(_, s)| s.has_recent_cost())
        .collect();
    services.sort_by(|a, b| b.1.latest.cmp(&a.1.latest).then_with(|| a.0.cmp(&b.0)));
    let mut table = Table::new([
        "Service".to_owned(),
        month_label(summary.month),
        month_label(summary.month - 1),
        "Change".to_owned(),
    ]);
    for (service, s) in &services {
        table = table.row(vec![
            Cell::text(service),
            Cell::number(usd(s.latest)),
            Cell::number(usd(s.previous)),
            change_cell(s),
        ]);
    }
    let mut by_service = Card::new("By service").block(Block::Table(table));
    // The entity itself says who owns it, even before the cache catches up.
    if let Some(team) = placement_of(entity).owner {
        by_service = by_service.block(Block::Link(Link::new(
            format!("Costs of {team}"),
            team_href(&team),
        )));
    }
    Some(
        View::new(TITLE)
            .card(with_warnings(card, model, None))
            .card(by_service),
    )
}

fn system_card(model: &Model, settings: &Settings, key: &str) -> Option<View> {
    let placements = match Placements::of_system(key) {
        Ok(p) => p,
        Err(e) => return Some(View::new(TITLE).card(Card::untitled().block(catalog_notice(&e)))),
    };
    let components = rollup::components(model, &placements, settings.anomaly_min_cents);
    let system = rollup::group(model, &components, settings.anomaly_min_cents, key, |p| {
        p.system.clone()
    })?;
    let summary = &system.summary;
    let mut card = Card::untitled().block(Block::Stats(vec![
        monthly_stat(summary),
        Stat::new("Last 12 months", usd(summary.total_12m)),
        Stat::new("Components", system.components.len().to_string()),
    ]));
    for block in anomaly_blocks(summary) {
        card = card.block(block);
    }
    card = card.block(trend_chart(key, summary));
    let mut table = Table::new([
        "Component".to_owned(),
        "Owner".to_owned(),
        month_label(summary.month),
        "Change".to_owned(),
        String::new(),
    ]);
    for c in &system.components {
        table = table.row(vec![
            component_cell(&c.key),
            team_cell(&placements, c.placement.owner.as_deref()),
            Cell::number(usd(c.summary.latest)),
            change_cell(&c.summary),
            flag_cell(&c.summary),
        ]);
    }
    Some(
        View::new(TITLE)
            .card(with_warnings(card, model, None))
            .card(Card::new("By component").block(Block::Table(table))),
    )
}

fn movers_table(
    model: &Model,
    placements: &Placements,
    movers: &[Mover],
    components: &[ComponentCost],
) -> Table {
    let month = model.latest();
    let mut table = Table::new([
        "Component".to_owned(),
        "Team".to_owned(),
        month_label(month - 1),
        month_label(month),
        "Change".to_owned(),
        "%".to_owned(),
    ]);
    for m in movers {
        let owner = components
            .iter()
            .find(|c| c.key == m.key)
            .and_then(|c| c.placement.owner.as_deref());
        table = table.row(vec![
            component_cell(&m.key),
            team_cell(placements, owner),
            Cell::number(usd(m.previous)),
            Cell::number(usd(m.latest)),
            Cell::number(usd_delta(m.delta())),
            Cell::number(m.pct().map_or_else(|| "new".to_owned(), format::pct)),
        ]);
    }
    table
}

fn anomalies_table(placements: &Placements, anomalies: &[&ComponentCost]) -> Table {
    let mut table = Table::new(["Component", "Team", "Cost", "Change", "Why"]);
    for c in anomalies {
        let reasons = c
            .summary
            .anomaly
            .as_ref()
            // The first rule that fired; the card and the API give them all.
            .and_then(|a| a.reasons.first().cloned())
            .unwrap_or_default();
        table = table.row(vec![
            component_cell(&c.key),
            team_cell(placements, c.placement.owner.as_deref()),
            Cell::number(usd(c.summary.latest)),
            change_cell(&c.summary),
            Cell::text(reasons),
        ]);
    }
    table
}

fn series_of(components: &[ComponentCost]) -> impl Iterator<Item = (&String, &[i64])> {
    components.iter().map(|c| (&c.key, c.series.as_slice()))
}

fn overview(model: &Model, settings: &Settings) -> View {
    let min = settings.anomaly_min_cents;
    let (placements, catalog) = placed(Placements::all());
    let components = rollup::components(model, &placements, min);
    let org = Summary::of(&model.org_series(), model.first, min);
    let untagged = model.unallocated.last().copied().unwrap_or(0);
    let anomalies: Vec<&ComponentCost> = components
        .iter()
        .filter(|c| c.summary.anomaly.is_some())
        .collect();
    let mut headline = Card::new(format!("Cloud cost, {}", month_label(org.month)))
        .block(Block::Stats(vec![
            monthly_stat(&org),
            Stat::new("Last 12 months", usd(org.total_12m)),
            Stat::new("Components", components.len().to_string()),
            Stat::new("Anomalies", anomalies.len().to_string()),
            Stat::new("Not tagged with a component", usd(untagged)),
        ]))
        .block(trend_chart("Total", &org))
        .block(Block::Link(Link::new(
            "Cost by team",
            "/plugins/cost/teams",
        )));
    headline = headline.block(Block::Text(format!("Source: {}", model.source)));

    let mut view = View::new(TITLE).card(with_warnings(headline, model, catalog));
    let anomalies_card = if anomalies.is_empty() {
        Card::new("Anomalies").block(Block::Text(format!(
            "No component's cost in {} looks unusual.",
            month_label(org.month)
        )))
    } else {
        Card::new("Anomalies").block(Block::Table(anomalies_table(&placements, &anomalies)))
    };
    view = view.card(anomalies_card);
    view = view.card(Card::new("Top movers").block(Block::Table(movers_table(
        model,
        &placements,
        &movers_by_amount(series_of(&components), 10),
        &components,
    ))));
    view.card(
        Card::new("Largest relative changes").block(Block::Table(movers_table(
            model,
            &placements,
            &movers_by_ratio(series_of(&components), min, 5),
            &components,
        ))),
    )
}

fn teams_page(model: &Model, settings: &Settings) -> View {
    let min = settings.anomaly_min_cents;
    let (placements, catalog) = placed(Placements::all());
    let components = rollup::components(model, &placements, min);
    let teams = rollup::groups(model, &components, min, |p| p.owner.clone());
    let month = model.latest();
    let chart = Chart::new(None, Some("$")).series(
        month_label(month),
        teams.iter().map(|t| {
            (
                placements.team_name(&t.key),
                format::dollars(t.summary.latest),
            )
        }),
    );
    let mut table = Table::new([
        "Team".to_owned(),
        "Components".to_owned(),
        month_label(month),
        month_label(month - 1),
        "Change".to_owned(),
        "Last 12 months".to_owned(),
        String::new(),
    ]);
    for team in &teams {
        let flagged = team
            .components
            .iter()
            .filter(|c| c.summary.anomaly.is_some())
            .count();
        table = table.row(vec![
            team_cell(&placements, Some(&team.key)),
            Cell::number(team.components.len().to_string()),
            Cell::number(usd(team.summary.latest)),
            Cell::number(usd(team.summary.previous)),
            change_cell(&team.summary),
            Cell::number(usd(team.summary.total_12m)),
            if flagged > 0 {
                Cell::badge(
                    format!("{flagged} anomal{}", if flagged == 1 { "y" } else { "ies" }),
                    Tone::Bad,
                )
            } else {
                Cell::text("")
            },
        ]);
    }
    let (outside, outside_count) = rollup::not_in_catalog(model, &placements, &components);
    let outside = Summary::of(&outside, model.first, min);
    if outside.has_recent_cost() {
        table = table.row(vec![
            Cell::text("Components not in the catalog"),
            Cell::number(outside_count.to_string()),
            Cell::number(usd(outside.latest)),
            Cell::number(usd(outside.previous)),
            change_cell(&outside),
            Cell::number(usd(outside.total_12m)),
            Cell::text(""),
        ]);
    }
    let card = Card::new(format!("Cost by owning team, {}", month_label(month)))
        .block(Block::BarChart(chart))
        .block(Block::Table(table));
    View::new("Cost by team").card(with_warnings(card, model, catalog))
}

fn team_page(model: &Model, settings: &Settings, team: &str) -> View {
    let min = settings.anomaly_min_cents;
    let (placements, catalog) = placed(Placements::of_team(team));
    let components = rollup::components(model, &placements, min);
    let name = placements.team_name(team);
    let title = format!("Cost of {name}");
    let Some(owned) = rollup::group(model, &components, min, team, |p| p.owner.clone()) else {
        let none = Card::untitled().block(Block::Notice(Notice::new(
            Tone::Info,
            format!("No costs for team {team}"),
            Some(format!(
                "No component owned by {team} has costs in the last 12 months of {}.",
                model.source
            )),
        )));
        return View::new(title).card(with_warnings(none, model, catalog));
    };
    let summary = &owned.summary;
    let mut card = Card::untitled().block(Block::Stats(vec![
        monthly_stat(summary),
        Stat::new("Last 12 months", usd(summary.total_12m)),
        Stat::new("Components", owned.components.len().to_string()),
    ]));
    for block in anomaly_blocks(summary) {
        card = card.block(block);
    }
    card = card.block(trend_chart(&name, summary));
    if let Some(href) = team_entity_href(team) {
        card = card.block(Block::Link(Link::new(
            format!("{name} in the catalog"),
            href,
        )));
    }
    card = card.block(Block::Link(Link::new("All teams", "/plugins/cost/teams")));

    let systems = rollup::groups(model, &owned.components, min, |p| p.system.clone());
    let mut systems_table = Table::new([
        "System".to_owned(),
        month_label(summary.month),
        month_label(summary.month - 1),
        "Change".to_owned(),
    ]);
    for s in &systems {
        systems_table = systems_table.row(system_row(s));
    }
    let mut components_table = Table::new([
        "Component".to_owned(),
        "System".to_owned(),
        month_label(summary.month),
        month_label(summary.month - 1),
        "Change".to_owned(),
        String::new(),
    ]);
    for c in &owned.components {
        components_table = components_table.row(vec![
            component_cell(&c.key),
            match &c.placement.system {
                Some(s) => Cell::link(s, entity_href("system", s)),
                None => Cell::text(""),
            },
            Cell::number(usd(c.summary.latest)),
            Cell::number(usd(c.summary.previous)),
            change_cell(&c.summary),
            flag_cell(&c.summary),
        ]);
    }
    View::new(title)
        .card(with_warnings(card, model, catalog))
        .card(Card::new("By system").block(Block::Table(systems_table)))
        .card(Card::new("By component").block(Block::Table(components_table)))
        .card(Card::new("Top movers").block(Block::Table(movers_table(
            model,
            &placements,
            &movers_by_amount(series_of(&owned.components), 5),
            &owned.components,
        ))))
}

fn system_row(s: &GroupCost) -> Vec<Cell> {
    vec![
        Cell::link(&s.key, entity_href("system", &s.key)),
        Cell::number(usd(s.summary.latest)),
        Cell::number(usd(s.summary.previous)),
        change_cell(&s.summary),
    ]
}
