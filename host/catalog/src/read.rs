//! Reading one location: the walk from its target through files, URLs and
//! Location entities, on a blocking thread, under the per-location caps.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;

use crate::config::LocationKind;
use crate::entity_ref::{DEFAULT_NAMESPACE, EntityRef};
use crate::fetch::UrlPolicy;
use crate::files::{FileError, read_limited, within};
use crate::ingest::IngestProblem;
use crate::ingest::{
    Harvest, Limits, MANAGED_BY_LOCATION, MANAGED_BY_ORIGIN_LOCATION, Reader, Scope, Sink, Target,
    Usage, generated_name, is_glob, normalize_target, problem, status_item,
};
use crate::record::EntityRecord;
use crate::{AddedLocation, Catalog, CatalogError, files, ingest};
use callboard_store::catalog::LocationRow;

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
        sources: Arc::default(),
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
                let key = source.key();
                let hash = ingest::content_hash(&h.records[parent].entity_ref.key(), &text);
                if let Sink::Send(tx) = &sink
                    && let Some(known) = scope.sources.get(&key)
                    && known.hash == hash
                    && !known.entities.iter().any(|r| seen_refs.contains_key(r))
                {
                    // Unchanged since its entities were stored: they stay.
                    for r in &known.entities {
                        seen_refs.insert(r.clone(), key.clone());
                    }
                    h.keys.extend(known.entities.iter().cloned());
                    usage.entities += known.entities.len();
                    if !self.within_entities(&mut h, &usage, scope) {
                        return h;
                    }
                    let piece = ingest::Piece {
                        source: key,
                        records: Vec::new(),
                        hash: Some(hash),
                        unchanged: Some(known.entities.len()),
                    };
                    if tx.blocking_send(piece).is_err() {
                        return h;
                    }
                    continue;
                }
                let before = queue.len();
                let (problems, kept, locations) = (h.problems.len(), h.keep.len(), h.records.len());
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
                    return h;
                }
                if !self.within_entities(&mut h, &usage, scope) {
                    return h;
                }
                let clean = queue.len() == before
                    && h.problems.len() == problems
                    && h.keep.len() == kept
                    && h.records.len() == locations;
                match &mut sink {
                    Sink::Collect(all) => all.extend(batch),
                    Sink::Send(tx) => {
                        let records = batch
                            .into_iter()
                            .map(|(record, parent)| {
                                let (stored, sent) = record.into_store();
                                (stored, sent, parent)
                            })
                            .collect();
                        let piece = ingest::Piece {
                            source: key,
                            records,
                            hash: clean.then_some(hash),
                            unchanged: None,
                        };
                        if tx.blocking_send(piece).is_err() {
                            // The writer failed; it reports why.
                            return h;
                        }
                    }
                }
            }
        }
        h
    }

    /// Reads one file or URL of a location again, on its own (a one-entity
    /// refresh): its content hash and entities, or `None` when it cannot be
    /// read cleanly on its own (a read problem, a Location entity, an
    /// invalid or duplicated entity): the whole location is read then.
    pub(crate) fn read_one(
        &self,
        source: &Target,
        parent: EntityRef,
        origin: &str,
        scope: &Scope,
        known_hash: &str,
    ) -> ReadOne {
        let mut h = Harvest::default();
        let parent_ref = parent.key();
        h.records.push(EntityRecord {
            entity_ref: parent,
            entity: serde_json::Value::Null,
            parent_ref: None,
            location_key: origin.to_owned(),
            prepared: None,
        });
        h.parents.push(None);
        let mut usage = Usage::default();
        let mut visited = HashSet::new();
        let files = self.expand(&mut h, &mut usage, &mut visited, scope, 0, source, true);
        let [(file, text)] = files.as_slice() else {
            return ReadOne::Whole;
        };
        if h.aborted.is_some() || !h.problems.is_empty() || !h.keep.is_empty() {
            return ReadOne::Whole;
        }
        let hash = ingest::content_hash(&parent_ref, text);
        if hash == known_hash {
            return ReadOne::Unchanged;
        }
        let mut queue = Vec::new();
        let mut seen_refs = HashMap::new();
        let batch = self.read_file(&mut h, 0, file, text, origin, &mut seen_refs, &mut queue);
        let clean =
            queue.is_empty() && h.problems.is_empty() && h.keep.is_empty() && h.records.len() == 1;
        if !clean {
            return ReadOne::Whole;
        }
        ReadOne::Changed(hash, batch.into_iter().map(|(record, _)| record).collect())
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
        let fail = |h: &mut Harvest, key: &str, name: &str, message: String| {
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

    /// False (and the harvest aborted) once the location yields more
    /// entities than it may.
    fn within_entities(&self, h: &mut Harvest, usage: &Usage, scope: &Scope) -> bool {
        if usage.entities + h.records.len() > scope.max_entities {
            h.aborted = Some(format!(
                "it provides more than {} entities ({})",
                scope.max_entities, scope.entities_cap
            ));
            return false;
        }
        true
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
}

impl Catalog {
    /// Reads a location without storing anything (dry runs, analysis).
    pub(crate) async fn preview_location(
        &self,
        location: LocationRow,
    ) -> Result<AddedLocation, CatalogError> {
        let _permit = self.read_permit().await?;
        let scope = self.scope(&location, "api").await?;
        let (harvest, records) = self
            .blocking(move |c| {
                let mut records = Vec::new();
                let harvest =
                    c.inner
                        .reader
                        .harvest(&location, &scope, ingest::Sink::Collect(&mut records));
                Ok(((harvest, location), records))
            })
            .await?;
        let (harvest, location) = harvest;
        if let Some(reason) = harvest.aborted {
            return Err(not_read(&location, &reason));
        }
        let entities = harvest
            .records
            .iter()
            .chain(records.iter().map(|(r, _)| r))
            .map(crate::preview)
            .collect();
        Ok(AddedLocation {
            location,
            entities,
            problems: harvest.problems,
        })
    }

    pub(crate) async fn read_permit(
        &self,
    ) -> Result<tokio::sync::SemaphorePermit<'_>, CatalogError> {
        self.inner
            .reads
            .acquire()
            .await
            .map_err(|e| CatalogError::Task(e.to_string()))
    }

    /// What one read of `location` may touch: the folders (its own, if the
    /// operator declared it, those of configured locations, `file_roots`) and
    /// the entities left under the per-location and global caps.
    pub(crate) async fn scope(
        &self,
        location: &LocationRow,
        source: &str,
    ) -> Result<ingest::Scope, CatalogError> {
        let config = &self.inner.config;
        let roots = self.roots(location, source);
        let others = self.inner.store.count_outside(&location.id).await?;
        let left = config
            .max_entities
            .saturating_sub(usize::try_from(others).unwrap_or(usize::MAX));
        let (max_entities, entities_cap) = if left < config.max_entities_per_location {
            (left, "catalog.max_entities")
        } else {
            (
                config.max_entities_per_location,
                "catalog.max_entities_per_location",
            )
        };
        Ok(ingest::Scope {
            roots,
            max_entities,
            entities_cap: entities_cap.into(),
            sources: Arc::default(),
        })
    }

    /// The folders a read of `location` (registered by `source`) may touch.
    pub(crate) fn roots(&self, location: &LocationRow, source: &str) -> files::Roots {
        let config = &self.inner.config;
        let mut dirs: Vec<PathBuf> = config.file_roots.clone();
        for l in config
            .locations
            .iter()
            .filter(|l| l.kind == LocationKind::File)
        {
            if let Ok(target) = ingest::normalize_target(l.kind, &l.target) {
                dirs.push(files::base_dir(&target));
            }
        }
        if source != "api" && location.kind == LocationKind::File.as_str() {
            dirs.push(files::base_dir(&location.target));
        }
        Some(files::canonical_roots(dirs))
    }
}

/// What reading one file or URL on its own found.
pub(crate) enum ReadOne {
    /// Its content hash is the stored one.
    Unchanged,
    /// New content, read cleanly: its hash and entities.
    Changed(String, Vec<EntityRecord>),
    /// It cannot stand on its own: the whole location must be read.
    Whole,
}

/// The error for a location a cap stopped; it names the location.
pub(crate) fn not_read(location: &LocationRow, reason: &str) -> CatalogError {
    CatalogError::Location(format!(
        "Location {}:{} was not read: {reason}; it keeps the entities it had",
        location.kind, location.target
    ))
}
