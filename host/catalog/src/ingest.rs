//! Reading locations: files (with globs) and URLs, multi-document YAML,
//! Location entities pointing at further targets, and the status items that
//! carry every error to the entity it concerns.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::config::LocationKind;
use crate::entity_ref::{DEFAULT_NAMESPACE, EntityRef};
use crate::fetch::UrlPolicy;
use crate::files::{FileError, Roots, read_limited, within};
use crate::store::{EntityRecord, LocationRow, Prepared};
use crate::validation::validate_entity;
use crate::yaml::parse_documents;

/// Where an entity was read from, `<type>:<target>`.
pub const MANAGED_BY_LOCATION: &str = "backstage.io/managed-by-location";
/// The registered location whose tree produced the entity.
pub const MANAGED_BY_ORIGIN_LOCATION: &str = "backstage.io/managed-by-origin-location";
/// Set to `"true"` when the source stops listing the entity.
pub const ORPHAN_ANNOTATION: &str = "backstage.io/orphan";
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
    fn problem(&mut self, parent: Option<usize>, p: IngestProblem) {
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
    pub(crate) fn conflict(&mut self, parent: usize, record: &EntityRecord, owner: &str) {
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

/// Where the non-Location entities of a harvest go, file by file.
pub(crate) enum Sink<'a> {
    /// Kept in memory (dry runs, validation).
    Collect(&'a mut Batch),
    /// Streamed to the writer, so memory stays flat at any catalog size
    /// (the reader runs on a blocking thread).
    Send(&'a tokio::sync::mpsc::Sender<Batch>),
}

/// Per-location ingestion caps (see [`crate::CatalogConfig`]).
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) max_file_bytes: u64,
    pub(crate) max_files: usize,
    pub(crate) max_entities: usize,
    pub(crate) max_bytes: u64,
    pub(crate) max_depth: usize,
    pub(crate) max_urls: usize,
}

impl Limits {
    pub(crate) fn of(c: &crate::CatalogConfig) -> Self {
        Self {
            max_file_bytes: c.max_file_bytes,
            max_files: c.max_files_per_location,
            max_entities: c.max_entities_per_location,
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
struct Usage {
    files: usize,
    bytes: u64,
    urls: usize,
    entities: usize,
}

/// A target to read, already resolved.
#[derive(Debug, Clone)]
enum Target {
    File(PathBuf),
    Url(url::Url),
}

impl Target {
    fn key(&self) -> String {
        match self {
            Self::File(p) => format!("file:{}", p.display()),
            Self::Url(u) => format!("url:{u}"),
        }
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

/// Reads a location the way ingestion would, without a database, and returns
/// every problem found (for `callboard catalog validate`: the operator's own
/// files, so any folder may be read; `url` targets follow `config`).
pub async fn check_location(
    kind: LocationKind,
    target: &str,
    config: &crate::CatalogConfig,
) -> Vec<IngestProblem> {
    let target = match normalize_target(kind, target) {
        Ok(t) => t,
        Err(message) => return vec![problem(target, None, None, "InputError", message)],
    };
    let reader = match Reader::new(config) {
        Ok(r) => r,
        Err(message) => return vec![problem(&target, None, None, "InputError", message)],
    };
    let row = LocationRow {
        id: String::new(),
        kind: kind.as_str().to_owned(),
        target,
    };
    let scope = Scope {
        roots: None,
        max_entities: config.max_entities_per_location,
        entities_cap: "catalog.max_entities_per_location".into(),
    };
    let task = tokio::task::spawn_blocking(move || {
        let mut records = Vec::new();
        let h = reader.harvest(&row, &scope, Sink::Collect(&mut records));
        let mut problems = h.problems;
        if let Some(message) = h.aborted {
            problems.push(problem(
                &format!("{}:{}", row.kind, row.target),
                None,
                None,
                "InputError",
                message,
            ));
        }
        problems
    });
    task.await.unwrap_or_else(|e| {
        vec![problem(
            "",
            None,
            None,
            "Error",
            format!("reading stopped: {e}"),
        )]
    })
}

impl Reader {
    pub(crate) fn new(config: &crate::CatalogConfig) -> Result<Self, String> {
        let urls = Arc::new(UrlPolicy::new(
            &config.url_allowed_hosts,
            &config.url_allowed_ips,
        )?);
        let http = crate::fetch::client(
            urls.clone(),
            std::time::Duration::from_secs(config.url_timeout_secs.max(1)),
        )?;
        Ok(Self {
            http,
            urls,
            limits: Limits::of(config),
        })
    }

    /// Reads a registered location and everything it leads to. Blocking:
    /// file IO, glob walks and YAML parsing happen here, so it runs on a
    /// blocking thread (inside a tokio runtime, for `url` targets).
    pub(crate) fn harvest(
        &self,
        location: &LocationRow,
        scope: &Scope,
        mut sink: Sink<'_>,
    ) -> Harvest {
        let mut h = Harvest::default();
        let origin = format!("{}:{}", location.kind, location.target);
        let root = EntityRef::new(
            "Location",
            DEFAULT_NAMESPACE,
            &generated_name(&location.kind, &location.target),
        );
        let root_entity = json!({
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Location",
            "metadata": {
                "name": root.name,
                "namespace": DEFAULT_NAMESPACE,
                "annotations": {MANAGED_BY_LOCATION: origin, MANAGED_BY_ORIGIN_LOCATION: origin},
            },
            "spec": {"type": location.kind, "target": location.target},
        });
        h.records.push(EntityRecord {
            entity_ref: root,
            entity: root_entity,
            parent_ref: None,
            location_key: origin.clone(),
            prepared: None,
        });
        h.parents.push(None);
        h.keys.push(h.records[0].entity_ref.key());
        let first = match LocationKind::parse(&location.kind) {
            Some(LocationKind::File) => Target::File(PathBuf::from(&location.target)),
            Some(LocationKind::Url) => match url::Url::parse(&location.target) {
                Ok(u) => Target::Url(u),
                Err(e) => {
                    h.problem(
                        Some(0),
                        problem(
                            &origin,
                            None,
                            None,
                            "InputError",
                            format!("Invalid URL: {e}"),
                        ),
                    );
                    return h.finish();
                }
            },
            None => {
                let message = format!("Unknown location type \"{}\"", location.kind);
                h.problem(Some(0), problem(&origin, None, None, "InputError", message));
                return h.finish();
            }
        };
        let mut queue = vec![(0usize, first, true, 0usize)];
        let mut visited = HashSet::new();
        let mut seen_refs: HashMap<String, String> = HashMap::new();
        let mut usage = Usage::default();
        while let Some((parent, target, required, depth)) = queue.pop() {
            let files = self.expand(
                &mut h,
                &mut usage,
                &mut visited,
                scope,
                parent,
                &target,
                required,
            );
            if h.aborted.is_some() {
                return h;
            }
            for (source, text) in files {
                let before = queue.len();
                let batch = self.read_file(
                    &mut h,
                    parent,
                    &source,
                    &text,
                    &origin,
                    &mut seen_refs,
                    &mut queue,
                );
                for item in &mut queue[before..] {
                    item.3 = depth + 1;
                }
                usage.entities += batch.len();
                if queue.len() > before && depth + 1 > self.limits.max_depth {
                    h.aborted = Some(format!(
                        "Location entities nest deeper than {} levels (catalog.max_location_depth)",
                        self.limits.max_depth
                    ));
                } else if usage.entities + h.records.len() > scope.max_entities {
                    h.aborted = Some(format!(
                        "it provides more than {} entities ({})",
                        scope.max_entities, scope.entities_cap
                    ));
                }
                if h.aborted.is_some() {
                    return h;
                }
                match &mut sink {
                    Sink::Collect(all) => all.extend(batch),
                    Sink::Send(tx) => {
                        if tx.blocking_send(batch).is_err() {
                            // The writer failed; it reports why.
                            return h;
                        }
                    }
                }
            }
        }
        h
    }

    /// Resolves a target into the files it names and their text; failures
    /// are reported on `parent`, caps breached set `h.aborted`.
    #[expect(
        clippy::too_many_arguments,
        reason = "one call site; a struct would only rename these"
    )]
    fn expand(
        &self,
        h: &mut Harvest,
        usage: &mut Usage,
        visited: &mut HashSet<String>,
        scope: &Scope,
        parent: usize,
        target: &Target,
        required: bool,
    ) -> Vec<(Target, String)> {
        let key = target.key();
        let mut fail = |h: &mut Harvest, key: &str, name: &str, message: String| {
            h.keep.insert(
                key.to_owned(),
                json!({"items": [status_item("error", name, &message)]}),
            );
            h.problem(Some(parent), problem(key, None, None, name, message));
        };
        match target {
            Target::File(path) => {
                let pattern = path.display().to_string();
                if !within(path, &scope.roots) {
                    let message = format!("Unable to read {key}: {}", FileError::Outside);
                    fail(h, &key, "InputError", message);
                    return Vec::new();
                }
                let paths: Vec<PathBuf> = if is_glob(&pattern) {
                    match glob::glob(&pattern) {
                        Ok(paths) => {
                            let mut found = Vec::new();
                            for p in paths.filter_map(Result::ok).filter(|p| p.is_file()) {
                                found.push(p);
                                if found.len() > self.limits.max_files {
                                    break;
                                }
                            }
                            found.sort();
                            if found.is_empty() && required {
                                h.problem(
                                    Some(parent),
                                    problem(
                                        &key,
                                        None,
                                        None,
                                        "NotFoundError",
                                        format!("No files match {pattern}"),
                                    ),
                                );
                            }
                            found
                        }
                        Err(e) => {
                            h.problem(
                                Some(parent),
                                problem(
                                    &key,
                                    None,
                                    None,
                                    "InputError",
                                    format!("Invalid glob: {}", e.msg),
                                ),
                            );
                            Vec::new()
                        }
                    }
                } else {
                    vec![path.clone()]
                };
                let mut out = Vec::new();
                for path in paths {
                    let file = Target::File(path.clone());
                    if !visited.insert(file.key()) {
                        continue;
                    }
                    usage.files += 1;
                    if usage.files > self.limits.max_files {
                        h.aborted = Some(format!(
                            "it reads more than {} files (catalog.max_files_per_location)",
                            self.limits.max_files
                        ));
                        return out;
                    }
                    match read_limited(&path, &scope.roots, self.limits.max_file_bytes) {
                        Ok(text) => {
                            if !self.count_bytes(h, usage, text.len()) {
                                return out;
                            }
                            out.push((file, text));
                        }
                        Err(FileError::NotFound) if !required => {}
                        Err(e) => {
                            let name = match e {
                                FileError::NotFound => "NotFoundError",
                                FileError::Io => "Error",
                                _ => "InputError",
                            };
                            let message = format!("Unable to read {}: {e}", file.key());
                            fail(h, &file.key(), name, message);
                        }
                    }
                }
                out
            }
            Target::Url(url) => {
                if !visited.insert(key.clone()) {
                    return Vec::new();
                }
                usage.urls += 1;
                if usage.urls > self.limits.max_urls {
                    h.aborted = Some(format!(
                        "it reads more than {} URLs (catalog.max_urls_per_location)",
                        self.limits.max_urls
                    ));
                    return Vec::new();
                }
                let fetched = tokio::runtime::Handle::current().block_on(crate::fetch::fetch(
                    &self.http,
                    &self.urls,
                    url,
                    self.limits.max_file_bytes,
                ));
                match fetched {
                    Ok(Some(text)) => {
                        if !self.count_bytes(h, usage, text.len()) {
                            return Vec::new();
                        }
                        vec![(target.clone(), text)]
                    }
                    Ok(None) if !required => Vec::new(),
                    Ok(None) => {
                        let message = format!("Unable to read {url}: not found (HTTP 404)");
                        fail(h, &key, "NotFoundError", message);
                        Vec::new()
                    }
                    Err(message) => {
                        let message = format!("Unable to read {url}: {message}");
                        fail(h, &key, "Error", message);
                        Vec::new()
                    }
                }
            }
        }
    }

    /// Adds a file's size to the location's total; false once past the cap.
    fn count_bytes(&self, h: &mut Harvest, usage: &mut Usage, len: usize) -> bool {
        usage.bytes = usage.bytes.saturating_add(len as u64);
        if usage.bytes > self.limits.max_bytes {
            h.aborted = Some(format!(
                "it reads more than {} bytes (catalog.max_bytes_per_location)",
                self.limits.max_bytes
            ));
            return false;
        }
        true
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one call site; a struct would only rename these"
    )]
    fn read_file(
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

fn problem(
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
