//! The JSON API at `/api/plugins/cost/...`.

use callboard_sdk::{Params, Request, Response, Router};
use serde_json::{Value, json};

use crate::format::{dollars, month_iso};
use crate::model::{self, Model, Settings};
use crate::placement::Placements;
use crate::report::{Summary, movers_by_amount, movers_by_ratio};
use crate::rollup::{self, ComponentCost, GroupCost, team_href};

/// The placements, or a 503 saying why costs cannot roll up.
fn placed(
    result: Result<Placements, callboard_sdk::catalog::CatalogError>,
) -> Result<Placements, Response> {
    result.map_err(|e| {
        Response::error(
            503,
            format!("costs cannot roll up to systems and teams: {e}"),
        )
    })
}
use crate::source::SourceError;

/// Routes a request.
pub fn handle(request: &Request) -> Response {
    Router::new()
        .get("/", |_: &Request, _: &Params| with_model(overview))
        .get("/components/{name}", |_: &Request, p: &Params| {
            let name = p.get("name").unwrap_or("").to_ascii_lowercase();
            with_model(|m, s| component(m, s, &name))
        })
        .get("/systems/{name}", |_: &Request, p: &Params| {
            let name = p.get("name").unwrap_or("").to_ascii_lowercase();
            with_model(|m, s| system(m, s, &name))
        })
        .get("/teams", |_: &Request, _: &Params| with_model(teams))
        .get("/teams/{name}", |_: &Request, p: &Params| {
            let name = p.get("name").unwrap_or("").to_ascii_lowercase();
            with_model(|m, s| team(m, s, &name))
        })
        .get("/anomalies", |_: &Request, _: &Params| {
            with_model(anomalies)
        })
        .handle(request)
}

/// Loads the model and answers with `f`'s JSON, or the source's problem.
fn with_model(f: impl FnOnce(&Model, &Settings) -> Result<Value, Response>) -> Response {
    let settings = Settings::read();
    match model::load(model::now_ms(), &settings) {
        Ok(model) => match f(&model, &settings) {
            Ok(mut body) => {
                if let Some(stale) = &model.stale {
                    body["stale"] = json!(stale);
                }
                Response::json(&body)
            }
            Err(response) => response,
        },
        Err(e @ (SourceError::Unreachable(_) | SourceError::Invalid(_))) => {
            Response::error(502, e.to_string())
        }
        Err(e) => Response::error(503, e.to_string()),
    }
}

fn summary_json(summary: &Summary) -> Value {
    let mut out = summary.json();
    out["trend"] = summary.trend_json();
    out
}

fn component_json(c: &ComponentCost) -> Value {
    let mut out = c.summary.json();
    out["component"] = json!(c.key);
    out["system"] = json!(c.placement.system);
    out["owner"] = json!(c.placement.owner);
    out
}

fn group_json(g: &GroupCost, name: &str) -> Value {
    let mut out = g.summary.json();
    out[name] = json!(g.key);
    out["components"] = json!(g.components.len());
    out
}

fn component(model: &Model, settings: &Settings, name: &str) -> Result<Value, Response> {
    let key = crate::source::component_key(name);
    // Without the catalog a component's costs are still its own.
    let placements = Placements::of_component(&key).unwrap_or_default();
    let components = rollup::components(model, &placements, settings.anomaly_min_cents);
    let c = components
        .iter()
        .find(|c| c.key == key)
        .ok_or_else(|| Response::not_found(format!("no costs for component {name}")))?;
    let mut out = component_json(c);
    out["trend"] = c.summary.trend_json();
    let mut services: Vec<(String, Summary)> = model.components[&key]
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
    out["services"] = services
        .iter()
        .map(|(service, s)| {
            let mut row = s.json();
            row["service"] = json!(service);
            row
        })
        .collect();
    Ok(out)
}

fn system(model: &Model, settings: &Settings, name: &str) -> Result<Value, Response> {
    let min = settings.anomaly_min_cents;
    let placements = placed(Placements::of_system(name))?;
    let components = rollup::components(model, &placements, min);
    let system = rollup::group(model, &components, min, name, |p| p.system.clone())
        .ok_or_else(|| Response::not_found(format!("no costs for system {name}")))?;
    let mut out = summary_json(&system.summary);
    out["system"] = json!(system.key);
    out["components"] = system.components.iter().map(component_json).collect();
    Ok(out)
}

fn teams(model: &Model, settings: &Settings) -> Result<Value, Response> {
    let min = settings.anomaly_min_cents;
    let placements = placed(Placements::all())?;
    let components = rollup::components(model, &placements, min);
    let teams = rollup::groups(model, &components, min, |p| p.owner.clone());
    let not_in_catalog = Summary::of(
        &rollup::not_in_catalog(model, &placements, &components).0,
        model.first,
        min,
    );
    Ok(json!({
        "month": month_iso(model.latest()),
        "teams": teams.iter().map(|t| {
            let mut row = group_json(t, "team");
            row["name"] = json!(placements.team_name(&t.key));
            row["href"] = json!(team_href(&t.key));
            row
        }).collect::<Vec<_>>(),
        "not_in_catalog_usd": dollars(not_in_catalog.latest),
        "untagged_usd": dollars(model.unallocated.last().copied().unwrap_or(0)),
    }))
}

fn team(model: &Model, settings: &Settings, name: &str) -> Result<Value, Response> {
    let min = settings.anomaly_min_cents;
    let placements = placed(Placements::of_team(name))?;
    let components = rollup::components(model, &placements, min);
    let team = rollup::group(model, &components, min, name, |p| p.owner.clone())
        .ok_or_else(|| Response::not_found(format!("no costs for team {name}")))?;
    let mut out = summary_json(&team.summary);
    out["team"] = json!(team.key);
    out["name"] = json!(placements.team_name(&team.key));
    out["systems"] = rollup::groups(model, &team.components, min, |p| p.system.clone())
        .iter()
        .map(|s| group_json(s, "system"))
        .collect();
    out["components"] = team.components.iter().map(component_json).collect();
    out["movers"] = movers_by_amount(
        team.components
            .iter()
            .map(|c| (&c.key, c.series.as_slice())),
        5,
    )
    .iter()
    .map(|m| m.json())
    .collect();
    Ok(out)
}

fn anomalies(model: &Model, settings: &Settings) -> Result<Value, Response> {
    let min = settings.anomaly_min_cents;
    let placements = placed(Placements::all())?;
    let components = rollup::components(model, &placements, min);
    let flagged = |kind: &str, groups: Vec<GroupCost>| -> Vec<Value> {
        groups
            .iter()
            .filter(|g| g.summary.anomaly.is_some())
            .map(|g| {
                let mut row = g.summary.json();
                row["kind"] = json!(kind);
                row["name"] = json!(g.key);
                row
            })
            .collect()
    };
    let mut list: Vec<Value> = components
        .iter()
        .filter(|c| c.summary.anomaly.is_some())
        .map(|c| {
            let mut row = component_json(c);
            row["kind"] = json!("component");
            row["name"] = json!(c.key);
            row
        })
        .collect();
    list.extend(flagged(
        "system",
        rollup::groups(model, &components, min, |p| p.system.clone()),
    ));
    list.extend(flagged(
        "team",
        rollup::groups(model, &components, min, |p| p.owner.clone()),
    ));
    Ok(json!({
        "month": month_iso(model.latest()),
        "rule": RULE,
        "anomalies": list,
    }))
}

/// The anomaly rule in one sentence (see `report`).
const RULE: &str = "The latest month rose by at least anomaly_min_usd (default $100) and is \
                    either at least 30% above the month before, or at least 10% above it and \
                    above the mean of up to 6 months before plus 2 standard deviations (at \
                    least 10% of the mean), given 3 or more such months.";

fn overview(model: &Model, settings: &Settings) -> Result<Value, Response> {
    let min = settings.anomaly_min_cents;
    let (placements, catalog_error) = match Placements::all() {
        Ok(p) => (p, None),
        Err(e) => (Placements::default(), Some(e.to_string())),
    };
    let components = rollup::components(model, &placements, min);
    let org = Summary::of(&model.org_series(), model.first, min);
    let series = || components.iter().map(|c| (&c.key, c.series.as_slice()));
    let mut out = summary_json(&org);
    out["source"] = json!(model.source);
    out["components"] = json!(components.len());
    out["untagged_usd"] = json!(dollars(model.unallocated.last().copied().unwrap_or(0)));
    out["movers"] = movers_by_amount(series(), 10)
        .iter()
        .map(|m| m.json())
        .collect();
    out["relative_movers"] = movers_by_ratio(series(), min, 5)
        .iter()
        .map(|m| m.json())
        .collect();
    out["anomalies"] = json!(
        components
            .iter()
            .filter(|c| c.summary.anomaly.is_some())
            .count()
    );
    out["skipped_rows"] = json!(model.skipped);
    out["catalog_error"] = json!(catalog_error);
    out["routes"] = json!([
        "GET /components/{name}",
        "GET /systems/{name}",
        "GET /teams",
        "GET /teams/{name}",
        "GET /anomalies"
    ]);
    Ok(out)
}
