//! Retrieval, always as the asking person: every read goes through the
//! host's `search` and `catalog` interfaces, which answer only what that
//! person may read, so nothing else can reach an answer.
//!
//! Two kinds of evidence:
//! - **facts** from the catalog graph (owner, dependents, dependencies,
//!   system, APIs), read from relations of the entity the question names;
//! - **passages** from the search index (docs sections, entity
//!   descriptions, plugins' documents). The index matches every term of a
//!   query, which a sentence rarely satisfies, so the question's keywords
//!   are asked together and one by one and the rankings are fused
//!   (reciprocal rank fusion, weighted by how many keywords a query held).

use std::collections::HashMap;

use callboard_sdk::{
    models::{self, Message, ModelError},
    search::Hit,
};
use serde_json::Value;

use crate::question::{Intent, Question};

/// What retrieval reads. The plugin's is the host ([`Host`]); tests use
/// an in-memory catalog.
pub trait Sources {
    /// `search.query` as the asking person.
    fn search(&self, term: &str, limit: u32) -> Result<Vec<Hit>, String>;
    /// `search.query` of catalog entities only, as the asking person.
    fn search_catalog(&self, term: &str, limit: u32) -> Result<Vec<Hit>, String>;
    /// `catalog.get-entity` as the asking person (`None`: missing or out of reach).
    fn entity(&self, entity_ref: &str) -> Result<Option<Value>, String>;
    /// `catalog.query` as the asking person: each filter an alternative.
    fn query(&self, filters: &[String], limit: u32) -> Result<Vec<Value>, String>;
    /// The operator's language model, if one is configured and granted.
    fn model(&self) -> Option<String>;
    /// Asks the model; the error is a sentence fit to show.
    fn chat(&self, messages: &[Message]) -> Result<String, ModelError>;
}

/// The host's interfaces.
pub struct Host;

impl Sources for Host {
    fn search(&self, term: &str, limit: u32) -> Result<Vec<Hit>, String> {
        callboard_sdk::search::query(term, &[], limit).map_err(|e| e.to_string())
    }
    fn search_catalog(&self, term: &str, limit: u32) -> Result<Vec<Hit>, String> {
        callboard_sdk::search::query(term, &["software-catalog"], limit).map_err(|e| e.to_string())
    }
    fn entity(&self, entity_ref: &str) -> Result<Option<Value>, String> {
        callboard_sdk::catalog::get(entity_ref).map_err(|e| e.to_string())
    }
    fn query(&self, filters: &[String], limit: u32) -> Result<Vec<Value>, String> {
        let filters: Vec<&str> = filters.iter().map(String::as_str).collect();
        callboard_sdk::catalog::query(&filters, limit).map_err(|e| e.to_string())
    }
    fn model(&self) -> Option<String> {
        models::configured().map(|i| i.model)
    }
    fn chat(&self, messages: &[Message]) -> Result<String, ModelError> {
        models::chat(messages, Some(ANSWER_TOKENS), Some(0.2)).map(|a| a.content)
    }
}

/// Most tokens a model's answer may take.
const ANSWER_TOKENS: u32 = 700;

/// Hits asked per search.
const HITS_PER_QUERY: u32 = 10;
/// Single-keyword searches per question.
const SINGLE_QUERIES: usize = 5;
/// Reciprocal rank fusion's constant.
const RRF_K: f64 = 3.0;
/// Entities a graph question lists.
pub const MAX_LISTED: usize = 12;
/// Entities a relation query reads.
const RELATED_LIMIT: u32 = 200;

/// Where a piece of evidence comes from.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Source {
    /// `entity`, `docs`, or a plugin's document type.
    pub kind: String,
    pub title: String,
    /// A portal path or http(s) URL.
    pub href: String,
    /// The entity it belongs to (its owner gets the feedback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_ref: Option<String>,
}

/// A ranked passage.
#[derive(Debug, Clone, PartialEq)]
pub struct Passage {
    pub source: Source,
    pub text: String,
    pub score: f64,
}

/// An entity as the answer names it.
#[derive(Debug, Clone, PartialEq)]
pub struct Named {
    pub entity_ref: String,
    pub title: String,
    pub kind: String,
    pub description: String,
    pub owner: Option<String>,
}

impl Named {
    pub fn of(entity: &Value) -> Self {
        let kind = entity["kind"].as_str().unwrap_or("").to_owned();
        let name = entity["metadata"]["name"].as_str().unwrap_or("");
        let entity_ref = callboard_sdk::catalog::entity_ref(entity);
        let title = entity["metadata"]["title"]
            .as_str()
            .or_else(|| entity["spec"]["profile"]["displayName"].as_str())
            .unwrap_or(name)
            .to_owned();
        let description = entity["metadata"]["description"]
            .as_str()
            .unwrap_or("")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let owner = entity["spec"]["owner"]
            .as_str()
            .map(|o| full_ref(o, "group"));
        Self {
            entity_ref,
            title,
            kind,
            description,
            owner,
        }
    }

    pub fn href(&self) -> String {
        let (kind, rest) = self.entity_ref.split_once(':').unwrap_or(("component", ""));
        let (ns, name) = rest.split_once('/').unwrap_or(("default", rest));
        format!("/catalog/{ns}/{kind}/{name}")
    }

    pub fn source(&self) -> Source {
        Source {
            kind: "entity".into(),
            title: format!("{} ({})", self.title, self.kind.to_ascii_lowercase()),
            href: self.href(),
            entity_ref: Some(self.entity_ref.clone()),
        }
    }

    /// What the answer quotes for it.
    pub fn passage(&self) -> String {
        let mut text = self.description.clone();
        if let Some(owner) = &self.owner {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(&format!("Owner: {owner}."));
        }
        text
    }
}

/// `name`, `ns/name` or `kind:ns/name` → `kind:ns/name`, lower-case.
pub fn full_ref(r: &str, default_kind: &str) -> String {
    let r = r.to_ascii_lowercase();
    let (kind, rest) = match r.split_once(':') {
        Some((k, rest)) => (k.to_owned(), rest.to_owned()),
        None => (default_kind.to_owned(), r.clone()),
    };
    if rest.contains('/') {
        format!("{kind}:{rest}")
    } else {
        format!("{kind}:default/{rest}")
    }
}

/// The entity a question is about: one it names (the longest name it
/// spells, a kind it mentions breaking ties), else, for a question that
/// points back, the conversation's. Names are looked up in the search
/// index's catalog documents (a name is a few index probes at any size),
/// as the person, then the entity is read.
pub fn subject(
    sources: &dyn Sources,
    question: &Question,
    previous: Option<&str>,
) -> Result<Option<Value>, String> {
    let candidates = question.name_candidates();
    if !candidates.is_empty() && !question.keywords.is_empty() {
        let general = question.intent == Intent::General;
        let rank = |entity_ref: &str| {
            let (kind, name) = entity_ref
                .split_once(':')
                .map(|(k, rest)| (k, rest.rsplit('/').next().unwrap_or(rest)))
                .unwrap_or(("", entity_ref));
            let position = candidates.iter().position(|c| c == name)?;
            // A general question names an entity only by a name of two or
            // more words ("payment gateway"), not by one common word.
            if general && !name.contains('-') {
                return None;
            }
            let words = name.split('-').count();
            let mentioned = question.words.iter().any(|w| {
                w == kind
                    || (kind == "group" && (w == "team" || w == "teams"))
                    || (kind == "api" && w == "apis")
            });
            let kind_order = [
                "component",
                "api",
                "system",
                "resource",
                "domain",
                "group",
                "user",
            ]
            .iter()
            .position(|k| *k == kind)
            .unwrap_or(9);
            Some((std::cmp::Reverse(words), !mentioned, kind_order, position))
        };
        // All the keywords first; then each, most specific first, until one names it.
        let mut terms = vec![question.keywords.join(" ")];
        if question.keywords.len() > 1 {
            terms.extend(question.keywords.iter().take(3).cloned());
        }
        for term in terms {
            let best = sources
                .search_catalog(&term, NAME_HITS)?
                .into_iter()
                .filter_map(|hit| hit.entity_ref)
                .filter_map(|r| rank(&r).map(|k| (k, r)))
                .min();
            if let Some((_, r)) = best {
                return sources.entity(&r);
            }
        }
    }
    match previous {
        Some(r) if question.refers_back || question.keywords.is_empty() => sources.entity(r),
        _ => Ok(None),
    }
}

/// Catalog hits read to find a named entity.
const NAME_HITS: u32 = 25;

/// One fact from the catalog graph, with the entities it rests on.
#[derive(Debug, Clone, PartialEq)]
pub struct Fact {
    /// The sentence, with `{0}`, `{1}`, ... where the citation of
    /// `entities[i]` goes.
    pub sentence: String,
    pub entities: Vec<Named>,
}

fn cite(i: usize) -> String {
    format!("{{{i}}}")
}

/// Facts answering a graph question about `subject`.
pub fn facts(sources: &dyn Sources, intent: Intent, subject: &Value) -> Result<Vec<Fact>, String> {
    let me = Named::of(subject);
    let relations = |kind: &str| -> Vec<String> {
        subject["relations"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["type"].as_str() == Some(kind))
            .filter_map(|r| r["targetRef"].as_str().map(str::to_ascii_lowercase))
            .collect()
    };
    // Only what the person may read is named: each related entity is read
    // as them, and one out of reach is left out without a trace.
    let readable = |refs: Vec<String>| -> Result<Vec<Named>, String> {
        let mut out = Vec::new();
        for r in refs.into_iter().take(MAX_LISTED) {
            if let Some(e) = sources.entity(&r)? {
                out.push(Named::of(&e));
            }
        }
        Ok(out)
    };
    let mut facts = Vec::new();
    match intent {
        Intent::Owner => match &me.owner {
            Some(owner) => {
                let owner_entity = sources.entity(owner)?.map(|e| Named::of(&e));
                let sentence = match &owner_entity {
                    Some(o) => format!(
                        "{} {} is owned by {} {}.",
                        me.title,
                        cite(0),
                        o.title,
                        cite(1)
                    ),
                    None => format!("{} {} is owned by {owner}.", me.title, cite(0)),
                };
                facts.push(Fact {
                    sentence,
                    entities: std::iter::once(me.clone()).chain(owner_entity).collect(),
                });
            }
            None => facts.push(Fact {
                sentence: format!("The catalog names no owner for {} {}.", me.title, cite(0)),
                entities: vec![me.clone()],
            }),
        },
        Intent::Dependents | Intent::TeamsUsing => {
            let mut targets = vec![me.entity_ref.clone()];
            targets.extend(relations("providesApi"));
            let filters: Vec<String> = targets
                .iter()
                .flat_map(|t| {
                    [
                        format!("relations.dependsOn={t}"),
                        format!("relations.consumesApi={t}"),
                    ]
                })
                .collect();
            // One query per relation: each is driven by the relations
            // index, where one query of alternatives scans the catalog.
            let mut users: Vec<Named> = Vec::new();
            for filter in &filters {
                for e in sources.query(std::slice::from_ref(filter), RELATED_LIMIT)? {
                    let n = Named::of(&e);
                    if n.entity_ref != me.entity_ref
                        && !users.iter().any(|u| u.entity_ref == n.entity_ref)
                    {
                        users.push(n);
                    }
                }
            }
            if users.is_empty() {
                facts.push(Fact {
                    sentence: format!(
                        "Nothing you can see in the catalog depends on {} or its APIs {}.",
                        me.title,
                        cite(0)
                    ),
                    entities: vec![me],
                });
            } else if intent == Intent::TeamsUsing {
                let mut by_owner: Vec<(String, Vec<Named>)> = Vec::new();
                for u in users {
                    let owner = u.owner.clone().unwrap_or_else(|| "no owner".into());
                    match by_owner.iter_mut().find(|(o, _)| *o == owner) {
                        Some((_, list)) => list.push(u),
                        None => by_owner.push((owner, vec![u])),
                    }
                }
                let mut entities = vec![me.clone()];
                let mut parts = Vec::new();
                for (owner, list) in &by_owner {
                    let names: Vec<String> = list
                        .iter()
                        .take(MAX_LISTED)
                        .map(|u| {
                            entities.push(u.clone());
                            format!("{} {}", u.title, cite(entities.len() - 1))
                        })
                        .collect();
                    parts.push(format!("{} ({})", short(owner), names.join(", ")));
                }
                facts.push(Fact {
                    sentence: format!(
                        "{} team{} use{} {} {}: {}.",
                        by_owner.len(),
                        if by_owner.len() == 1 { "" } else { "s" },
                        if by_owner.len() == 1 { "s" } else { "" },
                        me.title,
                        cite(0),
                        parts.join("; ")
                    ),
                    entities,
                });
            } else {
                let total = users.len();
                let mut entities = vec![me.clone()];
                let names: Vec<String> = users
                    .into_iter()
                    .take(MAX_LISTED)
                    .map(|u| {
                        let text = format!("{} {}", u.title, cite(entities.len()));
                        entities.push(u);
                        text
                    })
                    .collect();
                let more = total.saturating_sub(MAX_LISTED);
                facts.push(Fact {
                    sentence: format!(
                        "{total} {} on {} {}: {}{}.",
                        if total == 1 {
                            "entity depends"
                        } else {
                            "entities depend"
                        },
                        me.title,
                        cite(0),
                        names.join(", "),
                        if more > 0 {
                            format!(" and {more} more")
                        } else {
                            String::new()
                        }
                    ),
                    entities,
                });
            }
        }
        Intent::Dependencies => {
            let mut refs = relations("dependsOn");
            refs.extend(relations("consumesApi"));
            let deps = readable(refs)?;
            facts.push(listing(
                &me,
                deps,
                "depends on",
                "depends on nothing the catalog lists",
            ));
        }
        Intent::System => {
            let systems = readable(relations("partOf"))?;
            facts.push(listing(
                &me,
                systems,
                "is part of",
                "is part of no system in the catalog",
            ));
        }
        Intent::Apis => {
            let apis = readable(relations("providesApi"))?;
            facts.push(listing(
                &me,
                apis,
                "provides",
                "provides no API the catalog lists",
            ));
        }
        Intent::General => {}
    }
    Ok(facts)
}

fn listing(me: &Named, others: Vec<Named>, verb: &str, none: &str) -> Fact {
    if others.is_empty() {
        return Fact {
            sentence: format!("{} {none} {}.", me.title, cite(0)),
            entities: vec![me.clone()],
        };
    }
    let names: Vec<String> = others
        .iter()
        .enumerate()
        .map(|(i, o)| format!("{} {}", o.title, cite(i + 1)))
        .collect();
    Fact {
        sentence: format!("{} {} {verb} {}.", me.title, cite(0), names.join(", ")),
        entities: std::iter::once(me.clone()).chain(others).collect(),
    }
}

/// `group:default/payments` → `payments`.
fn short(r: &str) -> &str {
    r.rsplit_once('/').map_or(r, |(_, n)| n)
}

/// The best passages for `keywords`, the conversation's subject first
/// among equals.
pub fn passages(
    sources: &dyn Sources,
    keywords: &[String],
    subject: Option<&str>,
    limit: usize,
) -> Result<Vec<Passage>, String> {
    let mut queries: Vec<(String, f64)> = Vec::new();
    if keywords.len() > 1 {
        queries.push((keywords.join(" "), keywords.len() as f64));
        // Adjacent pairs: phrases ("api key", "payment gateway").
        for pair in keywords.windows(2).take(3) {
            queries.push((pair.join(" "), 2.0));
        }
    }
    let mut singles: Vec<&String> = keywords.iter().collect();
    singles.sort_by_key(|k| std::cmp::Reverse(k.chars().count()));
    for k in singles.into_iter().take(SINGLE_QUERIES) {
        queries.push((k.clone(), 1.0));
    }
    let mut fused: HashMap<String, Passage> = HashMap::new();
    for (term, weight) in queries {
        let hits = sources.search(&term, HITS_PER_QUERY)?;
        // A word that matches everywhere says little.
        let weight = if hits.len() as u32 >= HITS_PER_QUERY && weight <= 1.0 {
            weight * 0.5
        } else {
            weight
        };
        for (rank, hit) in hits.into_iter().enumerate() {
            // A heading with no text of its own quotes nothing.
            if hit.text.trim().is_empty() {
                continue;
            }
            let score = weight / (RRF_K + rank as f64);
            let entry = fused
                .entry(hit.location.clone())
                .or_insert_with(|| Passage {
                    source: source_of(&hit),
                    text: hit.text.clone(),
                    score: 0.0,
                });
            entry.score += score;
            // Keep the snippet of the most specific query.
            if weight > 1.0 && entry.text != hit.text && rank == 0 {
                entry.text = hit.text;
            }
        }
    }
    let mut out: Vec<Passage> = fused.into_values().collect();
    for p in &mut out {
        if subject.is_some() && p.source.entity_ref.as_deref() == subject {
            p.score *= 1.5;
        }
        // Docs sections hold procedures and figures; an entity's
        // description rarely answers more than what it is.
        if p.source.kind == "docs" {
            p.score *= 1.25;
        }
    }
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.source.href.cmp(&b.source.href))
    });
    out.truncate(limit);
    Ok(out)
}

fn source_of(hit: &Hit) -> Source {
    let kind = match hit.doc_type.as_str() {
        "software-catalog" => "entity",
        "techdocs" => "docs",
        other => other,
    };
    Source {
        kind: kind.to_owned(),
        title: hit.title.clone(),
        href: hit.location.clone(),
        entity_ref: hit.entity_ref.clone(),
    }
}
