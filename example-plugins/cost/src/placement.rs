//! Where components sit in the catalog: their system and owning team, read
//! live for each view (never cached, so a catalog change shows at once),
//! narrowed by the catalog's relation filters where a view needs only part.

use std::collections::BTreeMap;

use callboard_sdk::catalog::{self, CatalogError};
use serde_json::Value;

/// Most components read for one view.
const LIMIT: u32 = 10_000;

/// Where a component sits in the catalog.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    /// System key (`payments`, or `ns/name` outside the default namespace).
    pub system: Option<String>,
    /// Team key: a group's name (`billing-team`), or `kind:name` for other
    /// owners (`user:tomasz.wojcik`).
    pub owner: Option<String>,
}

/// Placements of (some) components, and display names of teams.
#[derive(Debug, Clone, Default)]
pub struct Placements {
    components: BTreeMap<String, Placement>,
    team_names: BTreeMap<String, String>,
}

impl Placements {
    /// Every component, and every group's name.
    pub fn all() -> Result<Self, CatalogError> {
        let mut out = Self::query(&["kind=component"])?;
        out.add_owner_names()?;
        Ok(out)
    }

    /// The components that are part of system `key`.
    pub fn of_system(key: &str) -> Result<Self, CatalogError> {
        let filter = format!(
            "kind=component,relations.partOf=system:{}",
            with_namespace(key)
        );
        let mut out = Self::query(&[&filter])?;
        out.add_owner_names()?;
        Ok(out)
    }

    /// The components team `team` owns, and the team's name.
    pub fn of_team(team: &str) -> Result<Self, CatalogError> {
        let owner = team_ref(team);
        let mut out = Self::query(&[&format!("kind=component,relations.ownedBy={owner}")])?;
        if let Some(entity) = catalog::get(&owner)? {
            out.add_team_name(&entity);
        }
        Ok(out)
    }

    /// One component, if it is in the catalog.
    pub fn of_component(key: &str) -> Result<Self, CatalogError> {
        let mut out = Self::default();
        if let Some(entity) = catalog::get(&format!("component:{}", with_namespace(key)))? {
            out.components
                .insert(entity_key(&entity), placement_of(&entity));
        }
        Ok(out)
    }

    fn query(filter: &[&str]) -> Result<Self, CatalogError> {
        let mut out = Self::default();
        for entity in catalog::query(filter, LIMIT)? {
            out.components
                .insert(entity_key(&entity), placement_of(&entity));
        }
        Ok(out)
    }

    /// Reads the display names of the groups and users that own the
    /// components, in one query (repeated keys in a filter are alternatives).
    fn add_owner_names(&mut self) -> Result<(), CatalogError> {
        let mut filters: BTreeMap<&str, String> = BTreeMap::new();
        for owner in self.components.values().filter_map(|p| p.owner.as_deref()) {
            let (kind, key) = owner.split_once(':').unwrap_or(("group", owner));
            if kind != "group" && kind != "user" {
                continue;
            }
            let name = key.rsplit('/').next().unwrap_or(key);
            let filter = filters
                .entry(kind)
                .or_insert_with(|| format!("kind={kind}"));
            filter.push_str(",metadata.name=");
            filter.push_str(name);
        }
        if filters.is_empty() {
            return Ok(());
        }
        let filters: Vec<&str> = filters.values().map(String::as_str).collect();
        for owner in catalog::query(&filters, LIMIT)? {
            self.add_team_name(&owner);
        }
        Ok(())
    }

    fn add_team_name(&mut self, entity: &Value) {
        let key = team_key(&format!(
            "{}:{}",
            entity["kind"].as_str().unwrap_or("group"),
            entity_key(entity)
        ));
        let name = entity["spec"]["profile"]["displayName"]
            .as_str()
            .or_else(|| entity["metadata"]["title"].as_str())
            .map_or_else(|| key.clone(), str::to_owned);
        self.team_names.insert(key, name);
    }

    /// A component's placement, if the catalog has it.
    pub fn get(&self, key: &str) -> Option<&Placement> {
        self.components.get(key)
    }

    /// A team's display name (its key when the catalog has none).
    pub fn team_name(&self, team: &str) -> String {
        self.team_names
            .get(team)
            .cloned()
            .unwrap_or_else(|| team.to_owned())
    }
}

/// `ns/name`, with `default/` for a bare name.
fn with_namespace(key: &str) -> String {
    if key.contains('/') {
        key.to_owned()
    } else {
        format!("default/{key}")
    }
}

/// A team key as an entity ref: `team-b` is `group:default/team-b`,
/// `user:ada` is `user:default/ada`.
fn team_ref(team: &str) -> String {
    let (kind, key) = team.split_once(':').unwrap_or(("group", team));
    format!("{kind}:{}", with_namespace(key))
}

/// An entity's key: its name, prefixed with `ns/` outside the default namespace.
pub fn entity_key(entity: &Value) -> String {
    name_key(
        namespace_of(entity),
        entity["metadata"]["name"].as_str().unwrap_or(""),
    )
}

fn namespace_of(entity: &Value) -> &str {
    entity["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
}

fn name_key(namespace: &str, name: &str) -> String {
    if namespace.eq_ignore_ascii_case("default") {
        name.to_ascii_lowercase()
    } else {
        format!("{namespace}/{name}").to_ascii_lowercase()
    }
}

/// A component's system and owner from its `spec`. Refs without a namespace
/// are in the component's, as in Backstage.
pub fn placement_of(entity: &Value) -> Placement {
    let spec = &entity["spec"];
    let namespace = namespace_of(entity);
    Placement {
        system: spec["system"]
            .as_str()
            .map(|r| ref_key(r, "system", namespace).1)
            .filter(|s| !s.is_empty()),
        owner: spec["owner"]
            .as_str()
            .map(|r| match ref_key(r, "group", namespace) {
                (kind, key) if kind == "group" => key,
                (kind, key) => format!("{kind}:{key}"),
            })
            .filter(|s| !s.is_empty()),
    }
}

/// `[kind:][namespace/]name` → (kind, key).
fn ref_key(reference: &str, default_kind: &str, default_namespace: &str) -> (String, String) {
    let reference = reference.trim();
    let (kind, rest) = match reference.split_once(':') {
        Some((kind, rest)) => (kind.to_ascii_lowercase(), rest),
        None => (default_kind.to_owned(), reference),
    };
    let key = match rest.split_once('/') {
        Some((namespace, name)) => name_key(namespace, name),
        None => name_key(default_namespace, rest),
    };
    (kind, key)
}

/// A `kind:key` owner as a team key: groups by key alone.
fn team_key(owner: &str) -> String {
    match owner.split_once(':') {
        Some((kind, key)) if kind.eq_ignore_ascii_case("group") => key.to_owned(),
        _ => owner.to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_become_keys() {
        let entity = |spec: Value| {
            serde_json::json!({
                "kind": "Component",
                "metadata": {"name": "payment-gateway"},
                "spec": spec,
            })
        };
        let p = placement_of(&entity(
            serde_json::json!({"system": "system:default/Payments", "owner": "billing-team"}),
        ));
        assert_eq!(p.system.as_deref(), Some("payments"));
        assert_eq!(p.owner.as_deref(), Some("billing-team"));
        let p = placement_of(&entity(
            serde_json::json!({"owner": "group:default/billing-team"}),
        ));
        assert_eq!((p.system, p.owner.as_deref()), (None, Some("billing-team")));
        let p = placement_of(&entity(serde_json::json!({"owner": "user:tomasz.wojcik"})));
        assert_eq!(p.owner.as_deref(), Some("user:tomasz.wojcik"));
        let in_ops = serde_json::json!({
            "kind": "Component",
            "metadata": {"name": "backup", "namespace": "ops"},
            "spec": {"owner": "sre", "system": "default/storage"},
        });
        assert_eq!(entity_key(&in_ops), "ops/backup");
        let p = placement_of(&in_ops);
        assert_eq!(
            (p.system.as_deref(), p.owner.as_deref()),
            (Some("storage"), Some("ops/sre"))
        );
        assert_eq!(team_ref("team-b"), "group:default/team-b");
        assert_eq!(team_ref("ops/sre"), "group:ops/sre");
        assert_eq!(team_ref("user:ada"), "user:default/ada");
        assert_eq!(team_key("group:team-b"), "team-b");
        assert_eq!(team_key("user:ada"), "user:ada");
    }
}
