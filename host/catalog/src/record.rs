//! Entities ready to store: the CPU work of storing one (digests, search
//! rows, relations, full-text document), done on the reading side so the
//! writer only writes.

use callboard_store::catalog::{Body, EntityRecord as StoreRecord, MAX_SEARCH_VALUE, RelationRow};
use callboard_store::query::FULL_TEXT_FIELDS;
use callboard_store::search::SearchDoc;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::entity_ref::EntityRef;
use crate::relations::relations_of;

/// An entity produced by ingestion, ready to store.
#[derive(Debug, Clone)]
pub(crate) struct EntityRecord {
    pub(crate) entity_ref: EntityRef,
    /// The processed entity: defaults, annotations and status applied; no
    /// uid/etag/generation/relations.
    pub(crate) entity: Value,
    pub(crate) parent_ref: Option<String>,
    pub(crate) location_key: String,
    /// Hashes and index rows, computed by the reading side so the writer
    /// only writes (reading and writing run on different cores).
    pub(crate) prepared: Option<Prepared>,
}

/// The CPU work of storing an entity, done ahead of the transaction.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub(crate) hash: String,
    pub(crate) spec_hash: String,
    /// The entity as JSON text; its digest is `hash`.
    body: Body,
    /// `(key, lower-cased value, value as written if different)`.
    rows: Vec<(String, String, Option<String>)>,
    relations: Vec<RelationRow>,
    doc: String,
    search: SearchDoc,
}

impl Prepared {
    pub(crate) fn of(entity: &Value, r: &EntityRef) -> Self {
        let mut flat = Vec::with_capacity(32);
        flatten(entity, &mut String::new(), &mut flat);
        let mut doc = String::new();
        let mut rows = Vec::with_capacity(flat.len());
        for (key, original) in flat {
            if FULL_TEXT_FIELDS.contains(&key.as_str()) {
                doc.push_str(&original);
                doc.push('\n');
            }
            let value = original.to_lowercase();
            // The value as written is only stored when it differs, to keep rows small.
            let original = (value != original).then_some(original);
            rows.push((key, value, original));
        }
        let relations = relations_of(entity, r)
            .into_iter()
            .map(|rel| RelationRow {
                source: rel.source.key(),
                kind: rel.kind.to_owned(),
                target: rel.target.key(),
                target_display: rel.target.to_string(),
            })
            .collect();
        let body = Body::new(entity);
        Self {
            hash: digest(body.as_str()),
            spec_hash: digest(&entity.get("spec").unwrap_or(&Value::Null).to_string()),
            body,
            rows,
            relations,
            doc,
            search: SearchDoc::for_entity(entity),
        }
    }
}

impl EntityRecord {
    /// The record as a backend stores it (indexes computed now if the
    /// reading side did not), and what a report about the entity needs
    /// (its ref and the file it came from).
    pub(crate) fn into_store(self) -> (StoreRecord, Sent) {
        let prepared = match self.prepared {
            Some(p) => p,
            None => Prepared::of(&self.entity, &self.entity_ref),
        };
        let r = &self.entity_ref;
        let record = StoreRecord {
            key: r.key(),
            kind: r.kind.to_lowercase(),
            namespace: r.namespace.to_lowercase(),
            name: r.name.to_lowercase(),
            entity: prepared.body,
            parent_ref: self.parent_ref,
            location_key: self.location_key.clone(),
            hash: prepared.hash,
            spec_hash: prepared.spec_hash,
            rows: prepared.rows,
            relations: prepared.relations,
            doc: prepared.doc,
            search: prepared.search,
        };
        let sent = Sent {
            entity_ref: self.entity_ref,
            location_key: self.location_key,
        };
        (record, sent)
    }
}

/// What is kept of a record handed to the store: enough to report it.
#[derive(Debug, Clone)]
pub(crate) struct Sent {
    pub(crate) entity_ref: EntityRef,
    pub(crate) location_key: String,
}

/// The first 128 bits of the text's SHA-256, in hex.
fn digest(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut out = String::with_capacity(32);
    for b in &digest[..16] {
        use std::fmt::Write as _;
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Leaf values by dotted, lower-cased path; arrays repeat their path.
/// Relations and status are not searchable this way (relations have their own
/// table).
fn flatten(value: &Value, path: &mut String, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if path.is_empty() && (k == "relations" || k == "status") {
                    continue;
                }
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&k.to_lowercase());
                flatten(v, path, out);
                path.truncate(len);
            }
        }
        Value::Array(items) => {
            for item in items {
                // Backstage also matches primitive items as `<path>.<item>=true`
                // (e.g. `metadata.tags.java`); the query layer answers that
                // form from these rows rather than storing it twice.
                flatten(item, path, out);
            }
        }
        Value::String(s) if s.len() <= MAX_SEARCH_VALUE => out.push((path.clone(), s.clone())),
        Value::String(_) => {}
        Value::Null => {}
        Value::Bool(b) => out.push((path.clone(), b.to_string())),
        Value::Number(n) => out.push((path.clone(), n.to_string())),
    }
}
