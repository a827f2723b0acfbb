//! Reading locations: files (with globs) and URLs, multi-document YAML,
//! Location entities pointing at further targets, and the status items that
//! carry every error to the entity it concerns.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::config::LocationKind;
use crate::entity_ref::{DEFAULT_NAMESPACE, EntityRef};
use crate::fetch::UrlPolicy;
use crate::files::Roots;
use crate::record::{EntityRecord, Prepared, Sent};
use crate::validation::validate_entity;
use crate::yaml::parse_documents;

/// Where an entity was read from, `<type>:<target>`.
pub const MANAGED_BY_LOCATION: &str = "backstage.io/managed-by-location";
/// The registered location whose tree produced the entity.
pub const MANAGED_BY_ORIGIN_LOCATION: &str = "backstage.io/managed-by-origin-location";
/// Set to `"true"` when the source stops listing the entity.
pub const ORPHAN_ANNOTATION: &str = callboard_store::catalog::ORPHAN_ANNOTATION;
/// Type of the status items the catalog writes.
pub const PROCESSING_STATUS: &str = "backstage.io/catalog-processing";

/// One problem found while reading a location.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IngestProblem {
    /// `<type>:<target>` of the file or URL.
    pub location: String,
    /// 1-based line, where known.
    pub line: Option<u32>,
    /// The entity's ref, or its kind and name as far as they could be read.
    pub entity: Option<String>,
    /// Backstage error name: `InputError`, `NotFoundError`, `ConflictError`.
    pub name: String,
    /// What is wrong, naming the field where it applies.
    pub message: String,
}

impl std::fmt::Display for IngestProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.location)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(entity) = &self.entity {
            write!(f, " ({entity})")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A status item (Backstage's `status.items[]`).
pub(crate) fn status_item(level: &str, name: &str, message: &str) -> Value {
    json!({
        "type": PROCESSING_STATUS,
        "level": level,
        "message": format!("{name}: {message}"),
        "error": {"name": name, "message": message},
    })
}

/// Everything one registered location yields.
#[derive(Debug, Default)]
pub(crate) struct Harvest {
    /// The Location entities met (the generated root first); other entities
    /// go to the [`Sink`] as they are read.
    pub(crate) records: Vec<EntityRecord>,
    /// Refs (lower-case) of every entity read, Locations included.
    pub(crate) keys: Vec<String>,
    /// Index of the Location entity that emitted each record.
    pub(crate) parents: Vec<Option<usize>>,
    /// Status items per record index.
    pub(crate) statuses: HashMap<usize, Vec<Value>>,
    /// Sources (location keys) and refs whose last stored entities must be
    /// kept because this read failed for them, with the status to show.
    pub(crate) keep: HashMap<String, Value>,
    pub(crate) problems: Vec<IngestProblem>,
    /// Set when a cap stopped the read: nothing of it may be stored.
    pub(crate) aborted: Option<String>,
}

impl Harvest {
    pub(crate) fn problem(&mut self, parent: Option<usize>, p: IngestProblem) {
        tracing::warn!(location = %p.location, line = ?p.line, entity = ?p.entity, "catalog: {}", p.message);
        if let Some(parent) = parent {
            let message = match &p.entity {
                Some(e) => format!("{} ({e}): {}", p.location, p.message),
                None => format!("{}: {}", p.location, p.message),
            };
            self.statuses
                .entry(parent)
                .or_default()
                .push(status_item("error", &p.name, &message));
        }
        self.problems.push(p);
    }

    /// Reports an entity another location already owns (the first owner
    /// keeps it) on the Location entity that emitted it.
    pub(crate) fn conflict(&mut self, parent: usize, record: &Sent, owner: &str) {
        let p = IngestProblem {
            location: record.location_key.clone(),
            line: None,
            entity: Some(record.entity_ref.to_string()),
            name: "ConflictError".into(),
            message: format!(
                "Entity {} is already provided by location {owner}; this location's copy is ignored",
                record.entity_ref
            ),
        };
        self.problem(Some(parent), p);
    }

    /// Writes the collected status items into their entities.
    pub(crate) fn finish(mut self) -> Self {
        for (i, items) in std::mem::take(&mut self.statuses) {
            if let Some(root) = self
                .records
                .get_mut(i)
                .and_then(|r| r.entity.as_object_mut())
            {
                root.insert("status".into(), json!({ "items": items }));
            }
        }
        self
    }
}

/// Entities of one file, each with the index of the Location that emitted it.
pub(crate) type Batch = Vec<(EntityRecord, usize)>;

/// One file or URL of a harvest, as the reader hands it to the writer.
#[derive(Debug)]
pub(crate) struct Piece {
    /// Its location key.
    pub(crate) source: String,
    /// Its entities (Locations excepted), converted for the store on the
    /// reading thread, each with what a report needs and the index of the
    /// Location that emitted it; empty when `unchanged`.
    pub(crate) records: Vec<(callboard_store::catalog::EntityRecord, Sent, usize)>,
    /// Its content hash, when it was read without a problem and holds no
    /// Location entity (a refresh may then skip it while it stays the same).
    pub(crate) hash: Option<String>,
    /// Not read again: its content hash is the stored one, so its entities
    /// (this many) stay as stored.
    pub(crate) unchanged: Option<usize>,
}

/// Where the non-Location entities of a harvest go, file by file.
pub(crate) enum Sink<'a> {
    /// Kept in memory (dry runs, validation); every file is read.
    Collect(&'a mut Batch),
    /// Streamed to the writer, so memory stays flat at any catalog size
    /// (the reader runs on a blocking thread); files whose content hash is
    /// in [`Scope::sources`] are not read again.
    Send(&'a tokio::sync::mpsc::Sender<Piece>),
}

/// The content hash of a file as read under `parent_ref` (the Location
/// entity that lists it): the reader's version, the parent and the text,
/// so that an upgrade or a move under another Location reads it again.
pub(crate) fn content_hash(parent_ref: &str, text: &str) -> String {
    use sha2::Digest as _;
    let mut digest = sha2::Sha256::new();
    digest.update(concat!(
        "callboard-catalog-reader/",
        env!("CARGO_PKG_VERSION"),
        "\0"
    ));
    digest.update(parent_ref.as_bytes());
    digest.update(b"\0");
    digest.update(text.as_bytes());
    let mut hex = String::with_capacity(64);
    for b in digest.finalize() {
        use std::fmt::Write as _;
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// Per-location ingestion caps (see [`crate::CatalogConfig`]).
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) max_file_bytes: u64,
    pub(crate) max_files: usize,
    pub(crate) max_bytes: u64,
    pub(crate) max_depth: usize,
    pub(crate) max_urls: usize,
}

impl Limits {
    pub(crate) fn of(c: &crate::CatalogConfig) -> Self {
        Self {
            max_file_bytes: c.max_file_bytes,
            max_files: c.max_files_per_location,
            max_bytes: c.max_bytes_per_location,
            max_depth: c.max_location_depth,
            max_urls: c.max_urls_per_location,
        }
    }
}

/// What one read of a location may touch.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    /// Folders file targets may be read from; `None` for anywhere.
    pub(crate) roots: Roots,
    /// Entities this read may yield before it stops; and why, for the message.
    pub(crate) max_entities: usize,
    pub(crate) entities_cap: String,
    /// The location's sources with a stored content hash, by location key.
    pub(crate) sources: Arc<HashMap<String, callboard_store::catalog::SourceRow>>,
}

/// Reads targets. Holds the HTTP client for `url` targets.
#[derive(Clone)]
pub(crate) struct Reader {
    pub(crate) http: reqwest::Client,
    pub(crate) urls: Arc<UrlPolicy>,
    pub(crate) limits: Limits,
}

/// What a read has consumed so far, against [`Limits`].
#[derive(Debug, Default)]
pub(crate) struct Usage {
    pub(crate) files: usize,
    pub(crate) bytes: u64,
    pub(crate) urls: usize,
    pub(crate) entities: usize,
}

/// A target to read, already resolved.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    File(PathBuf),
    Url(url::Url),
}

impl Target {
    pub(crate) fn key(&self) -> String {
        match self {
            Self::File(p) => format!("file:{}", p.display()),
            Self::Url(u) => format!("url:{u}"),
        }
    }

    /// The target of a [`Target::key`].
    pub(crate) fn from_key(key: &str) -> Option<Self> {
        if let Some(path) = key.strip_prefix("file:") {
            return Some(Self::File(PathBuf::from(path)));
        }
        url::Url::parse(key.strip_prefix("url:")?)
            .ok()
            .map(Self::Url)
    }
}

/// The generated Location entity's name for a registered location, stable
/// across restarts (Backstage: `generated-<sha1>`).
pub(crate) fn generated_name(kind: &str, target: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("{kind}:{target}").as_bytes());
    let mut name = String::from("generated-");
    for b in &digest[..20] {
        use std::fmt::Write as _;
        let _ = write!(name, "{b:02x}");
    }
    name
}

/// Makes a file target absolute (relative to the current directory) so that
/// annotations and conflicts do not depend on how it was written.
pub(crate) fn normalize_target(kind: LocationKind, target: &str) -> Result<String, String> {
    match kind {
        LocationKind::File => {
            let path = Path::new(target);
            let path = if path.is_absolute() {
                path.to_owned()
            } else {
                std::env::current_dir()
                    .map_err(|e| {
                        tracing::error!("catalog: current directory: {e}");
                        "The current directory could not be read".to_owned()
                    })?
                    .join(path)
            };
            Ok(clean(&path).display().to_string())
        }
        LocationKind::Url => {
            let url =
                url::Url::parse(target).map_err(|e| format!("Invalid URL \"{target}\": {e}"))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(format!(
                    "Invalid URL \"{target}\": only http and https are supported"
                ));
            }
            Ok(url.to_string())
        }
    }
}

/// Removes `.` and `..` components without touching the file system.
fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

pub(crate) fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// A location target for a command-line path: a directory means every
/// `*.yaml`/`*.yml` below it (`glob` has no `{yaml,yml}`; `*.y*ml` covers both).
pub fn path_target(path: &Path) -> String {
    let text = path.display().to_string();
    if path.is_dir() {
        format!("{}/**/*.y*ml", text.trim_end_matches('/'))
    } else {
        text
    }
}

/// Expands command-line paths into descriptor files: a directory means every
/// `*.yaml`/`*.yml` below it, a glob its matches, a file itself. Missing
/// paths are returned as they are, so that reading them reports the error.
pub fn expand_paths(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for path in paths {
        let text = path.display().to_string();
        if path.is_dir() {
            // glob has no {yaml,yml}; "*.y*ml" covers both.
            let pattern = format!("{}/**/*.y*ml", text.trim_end_matches('/'));
            let mut found: Vec<PathBuf> = glob::glob(&pattern)
                .map(|paths| {
                    paths
                        .filter_map(Result::ok)
                        .filter(|p| p.is_file())
                        .collect()
                })
                .unwrap_or_default();
            found.sort();
            out.extend(found);
        } else if is_glob(&text) {
            let mut found: Vec<PathBuf> = glob::glob(&text)
                .map(|paths| {
                    paths
                        .filter_map(Result::ok)
                        .filter(|p| p.is_file())
                        .collect()
                })
                .unwrap_or_default();
            found.sort();
            out.extend(found);
        } else {
            out.push(path.clone());
        }
    }
    out
}

pub use crate::read::check_location;

impl Reader {
    #[expect(
        clippy::too_many_arguments,
        reason = "one call site; a struct would only rename these"
    )]
    pub(crate) fn read_file(
        &self,
        h: &mut Harvest,
        parent: usize,
        source: &Target,
        text: &str,
        origin: &str,
        seen_refs: &mut HashMap<String, String>,
        queue: &mut Vec<(usize, Target, bool, usize)>,
    ) -> Vec<(EntityRecord, usize)> {
        let mut out = Vec::new();
        let key = source.key();
        let docs = match parse_documents(text) {
            Ok(docs) => docs,
            Err(e) => {
                let message = format!("Invalid YAML: {}", e.message);
                h.keep.insert(key.clone(), json!({"items": [status_item("error", "InputError", &format!("{key}: {message}"))]}));
                h.problem(
                    Some(parent),
                    problem(&key, e.line, None, "InputError", message),
                );
                return out;
            }
        };
        let parent_ref = h.records[parent].entity_ref.key();
        for doc in docs {
            let label = describe(&doc.value);
            let errors = validate_entity(&doc.value);
            if !errors.is_empty() {
                let message = errors
                    .iter()
                    .map(|e| e.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; ");
                if let Some(r) = entity_ref_of(&doc.value) {
                    let status = json!({"items": [status_item("error", "InputError", &format!("{key}:{}: {message}", doc.line))]});
                    h.keep.insert(r.key(), status);
                }
                h.problem(
                    Some(parent),
                    problem(&key, Some(doc.line), label, "InputError", message),
                );
                continue;
            }
            let Some(r) = entity_ref_of(&doc.value) else {
                continue;
            };
            if let Some(first) = seen_refs.get(&r.key()) {
                let message =
                    format!("Entity {r} is also defined in {first}; the first definition is kept");
                h.problem(
                    Some(parent),
                    problem(
                        &key,
                        Some(doc.line),
                        Some(r.to_string()),
                        "ConflictError",
                        message,
                    ),
                );
                continue;
            }
            seen_refs.insert(r.key(), key.clone());
            let mut entity = doc.value;
            prepare(&mut entity, &key, origin);
            let index = h.records.len();
            if r.kind.eq_ignore_ascii_case("location") {
                let spec = entity.get("spec").cloned().unwrap_or(Value::Null);
                let required = spec.get("presence").and_then(Value::as_str) != Some("optional");
                let mut targets: Vec<String> = spec
                    .get("target")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .into_iter()
                    .collect();
                if let Some(list) = spec.get("targets").and_then(Value::as_array) {
                    targets.extend(list.iter().filter_map(Value::as_str).map(str::to_owned));
                }
                let kind = spec.get("type").and_then(Value::as_str);
                for t in targets {
                    match resolve(source, kind, &t) {
                        Ok(target) => queue.push((index, target, required, 0)),
                        Err(message) => {
                            h.statuses.entry(index).or_default().push(status_item(
                                "error",
                                "InputError",
                                &message,
                            ));
                            h.problems.push(problem(
                                &key,
                                Some(doc.line),
                                Some(r.to_string()),
                                "InputError",
                                message,
                            ));
                        }
                    }
                }
            }
            h.keys.push(r.key());
            let is_location = r.kind.eq_ignore_ascii_case("location");
            // Location entities get status items later, so they are prepared
            // by the writer; everything else here, off the writer's core.
            let prepared = (!is_location).then(|| Prepared::of(&entity, &r));
            let record = EntityRecord {
                entity_ref: r,
                entity,
                parent_ref: Some(parent_ref.clone()),
                location_key: key.clone(),
                prepared,
            };
            if is_location {
                h.records.push(record);
                h.parents.push(Some(parent));
            } else {
                out.push((record, parent));
            }
        }
        out
    }
}

pub(crate) fn problem(
    location: &str,
    line: Option<u32>,
    entity: Option<String>,
    name: &str,
    message: String,
) -> IngestProblem {
    IngestProblem {
        location: location.to_owned(),
        line,
        entity,
        name: name.to_owned(),
        message,
    }
}

/// Resolves a Location entity's target against the file it was read from.
fn resolve(from: &Target, kind: Option<&str>, target: &str) -> Result<Target, String> {
    let kind = match kind {
        Some(k) => {
            LocationKind::parse(k).ok_or_else(|| format!("Unknown location type \"{k}\""))?
        }
        None => match from {
            Target::File(_) => LocationKind::File,
            Target::Url(_) => LocationKind::Url,
        },
    };
    match (kind, from) {
        (LocationKind::File, Target::File(file)) => {
            let base = file.parent().unwrap_or(Path::new("/"));
            Ok(Target::File(clean(&base.join(target))))
        }
        (LocationKind::File, Target::Url(_)) => Err(format!(
            "A file target \"{target}\" cannot be read from a url location"
        )),
        (LocationKind::Url, Target::Url(base)) => base
            .join(target)
            .map(Target::Url)
            .map_err(|e| format!("Invalid URL \"{target}\": {e}")),
        (LocationKind::Url, Target::File(_)) => url::Url::parse(target)
            .map(Target::Url)
            .map_err(|e| format!("Invalid URL \"{target}\": {e}")),
    }
}

/// The entity's kind and name as far as they can be read, for messages.
fn describe(v: &Value) -> Option<String> {
    let kind = v.get("kind").and_then(Value::as_str);
    let name = v.pointer("/metadata/name").and_then(Value::as_str);
    match (kind, name) {
        (Some(k), Some(n)) => {
            let ns = v
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or(DEFAULT_NAMESPACE);
            Some(format!("{}:{}/{n}", k.to_lowercase(), ns.to_lowercase()))
        }
        (None, Some(n)) => Some(format!("entity \"{n}\"")),
        (Some(k), None) => Some(format!("a {k} without a name")),
        (None, None) => None,
    }
}

/// The ref of an entity whose kind and name are usable.
pub(crate) fn entity_ref_of(v: &Value) -> Option<EntityRef> {
    let kind = v.get("kind")?.as_str()?;
    let name = v.pointer("/metadata/name")?.as_str()?;
    let namespace = v
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_NAMESPACE);
    (crate::validation::is_valid_kind(kind)
        && crate::validation::is_valid_name(name)
        && crate::validation::is_valid_namespace(namespace))
    .then(|| EntityRef::new(kind, namespace, name))
}

/// Defaults and catalog annotations for an entity read from `source`.
pub(crate) fn prepare(entity: &mut Value, source: &str, origin: &str) {
    let Some(metadata) = entity.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    metadata
        .entry("namespace")
        .or_insert_with(|| Value::String(DEFAULT_NAMESPACE.into()));
    let annotations = metadata
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(annotations) = annotations.as_object_mut() {
        annotations.insert(MANAGED_BY_LOCATION.into(), Value::String(source.to_owned()));
        annotations.insert(
            MANAGED_BY_ORIGIN_LOCATION.into(),
            Value::String(origin.to_owned()),
        );
    }
}
