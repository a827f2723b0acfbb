//! The catalog store: locations, entities with their search rows and
//! relations, and the queries of the catalog API.
//!
//! The catalog crate does every piece of catalog logic (reading locations,
//! validation, relations, the search rows of an entity) and hands a backend
//! ready [`EntityRecord`]s; a backend only stores and answers queries. The
//! one thing a backend assigns is identity: uid, etag and generation.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;

use crate::Result;
use crate::query::{FacetCount, Page, Position, Predicate, Selection, Start};

/// Annotation set to `"true"` when the source stops listing the entity.
pub const ORPHAN_ANNOTATION: &str = "backstage.io/orphan";

/// Values longer than this are not searchable (Backstage skips long values
/// too; it keeps API definitions out of the index).
pub const MAX_SEARCH_VALUE: usize = 1000;

/// A registered location.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LocationRow {
    /// UUID.
    pub id: String,
    /// `file` or `url`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Path, glob or URL.
    pub target: String,
}

/// Who registered a location: `config`, `api` or `cli`.
pub type LocationSource = String;

/// One relation an entity's spec implies, stored with the entity that
/// produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationRow {
    /// Lower-case ref of the entity the relation starts from.
    pub source: String,
    /// Relation type, e.g. `ownedBy`.
    pub kind: String,
    /// Lower-case ref of the target.
    pub target: String,
    /// The target as displayed.
    pub target_display: String,
}

/// An entity's JSON text without its identity (`metadata.uid`, `etag`,
/// `generation`), which a backend adds when it stores it: serialised by the
/// catalog's reading thread, so the one writing thread only splices.
#[derive(Debug, Clone, Default)]
pub struct Body {
    text: String,
    /// Where the identity goes: just after `"metadata":{` (and whether a
    /// comma must follow it); none when the entity has no metadata object.
    at: Option<(usize, bool)>,
}

/// The identity fields a backend assigns.
const IDENTITY: [&str; 3] = ["uid", "etag", "generation"];

impl Body {
    /// Serialises `entity`, leaving out any identity fields it carries.
    pub fn new(entity: &Value) -> Self {
        let Some(root) = entity.as_object() else {
            return Self {
                text: entity.to_string(),
                at: None,
            };
        };
        // Writing to a Vec cannot fail, nor can serialising a `Value`.
        let mut text: Vec<u8> = Vec::with_capacity(1024);
        let mut at = None;
        text.push(b'{');
        for (i, (key, value)) in root.iter().enumerate() {
            if i > 0 {
                text.push(b',');
            }
            let _ = serde_json::to_writer(&mut text, key);
            text.push(b':');
            match value {
                Value::Object(metadata) if key == "metadata" => {
                    text.push(b'{');
                    let start = text.len();
                    let mut first = true;
                    for (k, v) in metadata {
                        if IDENTITY.contains(&k.as_str()) {
                            continue;
                        }
                        if !first {
                            text.push(b',');
                        }
                        first = false;
                        let _ = serde_json::to_writer(&mut text, k);
                        text.push(b':');
                        let _ = serde_json::to_writer(&mut text, v);
                    }
                    at = Some((start, !first));
                    text.push(b'}');
                }
                _ => {
                    let _ = serde_json::to_writer(&mut text, value);
                }
            }
        }
        text.push(b'}');
        Self {
            // serde_json writes UTF-8 only.
            text: String::from_utf8(text).unwrap_or_default(),
            at,
        }
    }

    /// The text without identity (what a digest of the content reads).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The stored text: the entity with its identity.
    pub fn with_identity(&self, uid: &str, etag: &str, generation: i64) -> String {
        let Some((at, more)) = self.at else {
            return self.text.clone();
        };
        let mut out = String::with_capacity(self.text.len() + 128);
        out.push_str(&self.text[..at]);
        use std::fmt::Write as _;
        let _ = write!(
            out,
            "\"uid\":{},\"etag\":{},\"generation\":{generation}{}",
            Value::from(uid),
            Value::from(etag),
            if more { "," } else { "" }
        );
        out.push_str(&self.text[at..]);
        out
    }
}

/// An entity ready to store: the processed entity (no uid, etag,
/// generation or relations) and everything a backend indexes.
#[derive(Debug, Clone)]
pub struct EntityRecord {
    /// Lower-case ref `kind:namespace/name`.
    pub key: String,
    /// Lower-case kind, namespace and name.
    pub kind: String,
    /// Lower-case namespace.
    pub namespace: String,
    /// Lower-case name.
    pub name: String,
    /// The processed entity, as JSON text waiting for its identity.
    pub entity: Body,
    /// Lower-case ref of the Location entity that emitted it.
    pub parent_ref: Option<String>,
    /// The file or URL it was read from.
    pub location_key: String,
    /// Digest of the entity; unchanged digests are not rewritten.
    pub hash: String,
    /// Digest of its spec; a change bumps the generation.
    pub spec_hash: String,
    /// Search rows: `(dotted key, lower-cased value, value as written if
    /// different)`.
    pub rows: Vec<(String, String, Option<String>)>,
    /// Relations its spec implies (both directions).
    pub relations: Vec<RelationRow>,
    /// The text the full-text index holds.
    pub doc: String,
    /// Its document in the search index ([`crate::search::SearchDoc::for_entity`]).
    pub search: crate::search::SearchDoc,
}

/// What a write did to one entity, for change notifications.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Change {
    /// A new entity (its lower-case ref).
    Added(String),
    /// A changed entity.
    Changed(String),
    /// A removed entity.
    Removed(String),
}

/// Counts from applying one location's entities.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ApplySummary {
    /// Entities added.
    pub added: usize,
    /// Entities whose content changed.
    pub updated: usize,
    /// Entities read again without change.
    pub unchanged: usize,
    /// Entities the location no longer lists, now marked orphan.
    pub orphaned: usize,
}

/// A file or URL of a location whose content hash is stored: while its
/// content stays the same, a refresh need not read its entities again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceRow {
    /// The location key (`file:<path>` or `url:<url>`).
    pub key: String,
    /// Digest of its content when its entities were stored.
    pub hash: String,
    /// Lower-case refs of the entities it provides (orphans excluded).
    pub entities: Vec<String>,
}

/// How a location's refresh ends ([`LocationWriter::finish`]).
#[derive(Debug, Clone, Default)]
pub struct Finish {
    /// Sources (location keys) and refs whose last stored entities must be
    /// kept because this read failed for them, with the status to show.
    pub keep: HashMap<String, Value>,
    /// Sources not read again because their content has not changed: their
    /// entities stay as stored (orphans stay orphans).
    pub unchanged: HashSet<String>,
    /// `(location key, content hash)` of every source whose entities are all
    /// stored as read (the unchanged ones included): it replaces the
    /// location's stored set ([`CatalogStore::sources`]).
    pub hashes: Vec<(String, String)>,
}

/// What [`LocationWriter::put`] did with a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Put {
    /// Stored (or unchanged).
    Stored,
    /// Another location owns the entity; its id.
    Conflict(String),
    /// Listed twice by this location; the first one was kept.
    Duplicate,
}

/// One entity of an ancestry chain, as stored.
#[derive(Debug, Clone)]
pub struct AncestryRow {
    /// The entity as served.
    pub entity: Value,
    /// Lower-case ref of the entity that emitted it.
    pub parent: Option<String>,
}

/// The software catalog's storage. Every write that changes entities
/// appends its [`Change`]s to the change feed (topic [`crate::coord::CATALOG_TOPIC`])
/// in the same transaction, so every replica learns of it.
#[async_trait::async_trait]
pub trait CatalogStore: Send + Sync {
    // ----- entities -----

    /// The entity with this lower-case ref, as served (with relations).
    async fn get_by_ref(&self, key: &str) -> Result<Option<Value>>;
    /// The entity with this uid.
    async fn get_by_uid(&self, uid: &str) -> Result<Option<Value>>;
    /// Entities by lower-case ref, in input order (`None` for unknown refs,
    /// malformed ones given as `None`, and entities `predicate` rejects).
    async fn get_by_keys(
        &self,
        keys: &[Option<String>],
        predicate: Option<&Predicate>,
    ) -> Result<Vec<Option<Value>>>;
    /// A page of entities matching `selection` (at most
    /// [`crate::query::MAX_PAGE`]).
    async fn query(&self, selection: &Selection, start: &Start, limit: usize) -> Result<Page>;
    /// Position of the last row of a page if more rows follow it, without
    /// reading the entities.
    async fn page_end(
        &self,
        selection: &Selection,
        start: &Start,
        limit: usize,
    ) -> Result<Option<Position>>;
    /// Number of entities matching `selection`.
    async fn count(&self, selection: &Selection) -> Result<u64>;
    /// Value counts of each facet among entities matching `predicate`,
    /// most frequent first.
    async fn facets(
        &self,
        facets: &[String],
        predicate: Option<&Predicate>,
    ) -> Result<BTreeMap<String, Vec<FacetCount>>>;
    /// Streams matching entities as JSON text (with relations), in order,
    /// into `sink`, holding only a few in memory; stops when `sink` closes.
    async fn stream(
        &self,
        selection: Selection,
        start: Start,
        limit: Option<usize>,
        sink: tokio::sync::mpsc::Sender<Result<String>>,
    ) -> Result<()>;
    /// The chain of entities that emitted `key`, starting with it (`None`
    /// when it does not exist).
    async fn ancestry(&self, key: &str) -> Result<Option<Vec<AncestryRow>>>;
    /// Number of entities that did not come from this location (for the
    /// catalog-wide entity cap).
    async fn count_outside(&self, location_id: &str) -> Result<u64>;
    /// Removes the entity with this uid (nothing for an unknown uid).
    async fn delete_by_uid(&self, uid: &str) -> Result<Vec<Change>>;

    // ----- locations -----

    /// Registered locations with who registered them, in registration order
    /// (only those of `source`, if given).
    async fn locations(&self, source: Option<&str>) -> Result<Vec<(LocationRow, LocationSource)>>;
    /// One registered location.
    async fn location(&self, id: &str) -> Result<Option<LocationRow>>;
    /// The location with this type and target.
    async fn location_by_target(&self, kind: &str, target: &str) -> Result<Option<LocationRow>>;
    /// The location an entity came from.
    async fn location_of_entity(&self, key: &str) -> Result<Option<LocationRow>>;
    /// Registers `row` unless a location with its type and target exists;
    /// returns the registered one and whether it is new. Safe when two
    /// replicas register the same target at once.
    async fn insert_location(&self, row: &LocationRow, source: &str)
    -> Result<(LocationRow, bool)>;
    /// Unregisters a location and removes its entities, in one transaction.
    /// `None` when it does not exist.
    async fn remove_location(&self, id: &str) -> Result<Option<Vec<Change>>>;
    /// Makes the locations of `source` exactly `wanted` (`(type, target)`):
    /// registers the missing ones and removes the others with their
    /// entities, in one transaction.
    async fn sync_locations(
        &self,
        source: &str,
        wanted: &[(String, String)],
    ) -> Result<Vec<Change>>;

    // ----- ingestion -----

    /// Starts storing one location's entities in one transaction; `None`
    /// when the location is no longer registered. Dropping the writer
    /// without [`LocationWriter::finish`] stores nothing.
    async fn begin(&self, location_id: &str) -> Result<Option<Box<dyn LocationWriter>>>;
    /// [`CatalogStore::begin`] for one source (file or URL) of the location
    /// only: `finish` orphans the unlisted entities of that source alone and
    /// replaces that source's hash alone; `put` of an entity another
    /// source of the location provides is a [`Put::Duplicate`] (an orphan
    /// of the location is taken over).
    async fn begin_source(
        &self,
        location_id: &str,
        source: &str,
    ) -> Result<Option<Box<dyn LocationWriter>>>;
    /// The sources of a location whose content hash is stored, with the
    /// entities each provides. Removing an entity (by uid) forgets its
    /// source's hash, so that the next refresh reads it again.
    async fn sources(&self, location_id: &str) -> Result<Vec<SourceRow>>;
    /// One source of [`CatalogStore::sources`], if its hash is stored.
    async fn source(&self, location_id: &str, key: &str) -> Result<Option<SourceRow>>;
    /// Refreshes the planner's statistics after large writes.
    async fn optimize(&self) -> Result<()>;
}

/// One location's entities, stored as they stream in, inside one
/// transaction: new and changed ones are written, entities another location
/// owns are refused (the first owner keeps them).
#[async_trait::async_trait]
pub trait LocationWriter: Send {
    /// Stores a batch; one answer per record.
    async fn put(&mut self, records: Vec<EntityRecord>) -> Result<Vec<Put>>;
    /// Marks the entities the location no longer lists as orphans, except
    /// those whose source (location key) or ref is in `done.keep`, which
    /// get that status, and those of `done.unchanged` sources, which stay
    /// as they are; stores `done.hashes`; commits, and returns what
    /// changed. The changes are also appended to the change feed in the
    /// same transaction.
    async fn finish(self: Box<Self>, done: Finish) -> Result<(ApplySummary, Vec<Change>)>;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::Body;

    fn with_identity(entity: &serde_json::Value) -> serde_json::Value {
        let text = Body::new(entity).with_identity("u-1", "e\"tag", 3);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    #[test]
    fn identity_is_spliced_into_metadata_and_replaces_any_the_file_carries() {
        let entity = json!({
            "apiVersion": "v1", "kind": "Component",
            "metadata": {"name": "a", "uid": "forged", "etag": "forged", "generation": 99,
                "annotations": {"a\"b": "c\\d"}, "tags": ["x"]},
            "spec": {"metadata": {"uid": "kept: not the entity's metadata"}},
        });
        let mut expected = entity.clone();
        expected["metadata"]["uid"] = json!("u-1");
        expected["metadata"]["etag"] = json!("e\"tag");
        expected["metadata"]["generation"] = json!(3);
        assert_eq!(with_identity(&entity), expected);
        assert!(
            !Body::new(&entity).as_str().contains("forged"),
            "the digested text leaves out identity fields"
        );
    }

    #[test]
    fn entities_without_usable_metadata_are_stored_as_they_are() {
        let empty = json!({"kind": "Component", "metadata": {}});
        assert_eq!(
            with_identity(&empty),
            json!({"kind": "Component",
                "metadata": {"uid": "u-1", "etag": "e\"tag", "generation": 3}})
        );
        for entity in [
            json!({"kind": "Component"}),
            json!({"kind": "Component", "metadata": "text"}),
            json!([1, 2]),
        ] {
            assert_eq!(with_identity(&entity), entity);
        }
    }
}
