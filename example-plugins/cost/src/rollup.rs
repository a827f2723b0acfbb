//! Costs rolled up per component, system and team: what both the views and
//! the JSON API show, computed once from the model.

use std::collections::BTreeMap;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use crate::model::{Model, add};
use crate::placement::{Placement, Placements};
use crate::report::Summary;

/// One component's costs and place.
#[derive(Debug, Clone)]
pub struct ComponentCost {
    /// Catalog key.
    pub key: String,
    /// System and owner, from the catalog.
    pub placement: Placement,
    /// Monthly cents.
    pub series: Vec<i64>,
    /// Figures at the latest month.
    pub summary: Summary,
}

/// A group of components (a system or a team) and their summed costs.
#[derive(Debug, Clone)]
pub struct GroupCost {
    /// System or team key.
    pub key: String,
    /// Its components, most expensive in the latest month first.
    pub components: Vec<ComponentCost>,
    /// Figures at the latest month.
    pub summary: Summary,
}

/// Every component with a cost in the last 12 months, placed where
/// `placements` says (components it does not list get no system or owner).
pub fn components(model: &Model, placements: &Placements, min_cents: i64) -> Vec<ComponentCost> {
    model
        .components
        .keys()
        .filter_map(|key| {
            let series = model.component_series(key)?;
            Some(ComponentCost {
                summary: Summary::of(&series, model.first, min_cents),
                key: key.clone(),
                placement: placements.get(key).cloned().unwrap_or_default(),
                series,
            })
        })
        .filter(|c| c.summary.has_recent_cost())
        .collect()
}

/// Components grouped by `group` (left out where it gives `None`), most
/// expensive group in the latest month first.
pub fn groups(
    model: &Model,
    components: &[ComponentCost],
    min_cents: i64,
    group: impl Fn(&Placement) -> Option<String>,
) -> Vec<GroupCost> {
    let mut by_key: BTreeMap<String, Vec<ComponentCost>> = BTreeMap::new();
    for c in components {
        if let Some(key) = group(&c.placement) {
            by_key.entry(key).or_default().push(c.clone());
        }
    }
    let mut groups: Vec<GroupCost> = by_key
        .into_iter()
        .map(|(key, mut components)| {
            let mut series = vec![0; model.len];
            for c in &components {
                add(&mut series, &c.series);
            }
            sort_by_latest(&mut components);
            GroupCost {
                summary: Summary::of(&series, model.first, min_cents),
                key,
                components,
            }
        })
        .collect();
    groups.sort_by(|a, b| {
        b.summary
            .latest
            .cmp(&a.summary.latest)
            .then_with(|| a.key.cmp(&b.key))
    });
    groups
}

/// Most expensive in the latest month first, ties by key.
pub fn sort_by_latest(components: &mut [ComponentCost]) {
    components.sort_by(|a, b| {
        b.summary
            .latest
            .cmp(&a.summary.latest)
            .then_with(|| a.key.cmp(&b.key))
    });
}

/// One group: the components `group` maps to `key`, or `None` if none has
/// a recent cost.
pub fn group(
    model: &Model,
    components: &[ComponentCost],
    min_cents: i64,
    key: &str,
    group: impl Fn(&Placement) -> Option<String>,
) -> Option<GroupCost> {
    groups(model, components, min_cents, |p| {
        group(p).filter(|g| g == key)
    })
    .pop()
}

/// The summed monthly cents of components `placements` does not know, and
/// how many there are.
pub fn not_in_catalog(
    model: &Model,
    placements: &Placements,
    components: &[ComponentCost],
) -> (Vec<i64>, usize) {
    let mut series = vec![0; model.len];
    let mut count = 0;
    for c in components {
        if placements.get(&c.key).is_none() {
            add(&mut series, &c.series);
            count += 1;
        }
    }
    (series, count)
}

/// Characters escaped in a path segment.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// A URL path segment for `text`.
pub fn segment(text: &str) -> String {
    utf8_percent_encode(text, SEGMENT).to_string()
}

/// This plugin's page for a team.
pub fn team_href(team: &str) -> String {
    format!("/plugins/cost/teams/{}", segment(team))
}

/// The portal's page for an entity, from its kind and key (`name` or `ns/name`).
pub fn entity_href(kind: &str, key: &str) -> String {
    let (namespace, name) = key.split_once('/').unwrap_or(("default", key));
    format!("/catalog/{}/{kind}/{}", segment(namespace), segment(name))
}

/// A team's catalog page: groups and users by their kind, others not at all.
pub fn team_entity_href(team: &str) -> Option<String> {
    match team.split_once(':') {
        None => Some(entity_href("group", team)),
        Some(("user", key)) => Some(entity_href("user", key)),
        Some(_) => None,
    }
}
