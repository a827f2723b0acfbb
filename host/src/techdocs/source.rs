//! Where an entity's docs come from: `backstage.io/techdocs-ref`.
//!
//! - `dir:<path>`: a folder relative to the entity's descriptor file, as
//!   Backstage resolves it (`dir:.` is the folder of `catalog-info.yaml`);
//!   it must lie within the folders the catalog may read (the configured
//!   file locations' folders and `catalog.file_roots`), after resolving
//!   `..` and symbolic links.
//! - `url:<url>`: not read here (it needs the source host's archive API);
//!   the site reports that as a problem.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The annotation naming an entity's docs.
pub const ANNOTATION: &str = "backstage.io/techdocs-ref";
/// Where the catalog read the entity from (`file:<path>` or `url:<url>`).
const MANAGED_BY: &str = "backstage.io/managed-by-location";

/// A resolved docs source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A folder on this machine.
    Dir(PathBuf),
}

impl Source {
    /// `(type, target)` as Backstage's `locationMetadata` gives it.
    pub fn location_metadata(&self) -> (&'static str, String) {
        match self {
            Source::Dir(p) => ("dir", p.display().to_string()),
        }
    }
}

/// Why an entity's docs cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// No annotation.
    #[error("the entity has no {ANNOTATION} annotation")]
    NotAnnotated,
    /// The annotation is not `dir:` or `url:`.
    #[error("{ANNOTATION} \"{0}\" is neither dir:<path> nor url:<url>")]
    Malformed(String),
    /// `url:` sources.
    #[error(
        "{ANNOTATION} \"{0}\": url: sources are not read by this version; use dir: next to the catalog file"
    )]
    UrlUnsupported(String),
    /// `dir:` on an entity not read from a file.
    #[error(
        "{ANNOTATION} \"{0}\": dir: needs an entity read from a file location, this one came from {1}"
    )]
    NotFromFile(String, String),
    /// The folder is missing or outside what the catalog may read.
    #[error("{ANNOTATION} \"{0}\": {1}")]
    Folder(String, &'static str),
}

/// The entity's annotation value, if any.
pub fn annotation(entity: &Value) -> Option<&str> {
    entity
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(ANNOTATION))
        .and_then(Value::as_str)
}

/// Resolves the entity's docs source within `roots`.
pub fn resolve(entity: &Value, roots: &[PathBuf]) -> Result<Source, SourceError> {
    let value = annotation(entity).ok_or(SourceError::NotAnnotated)?;
    if let Some(rest) = value.strip_prefix("url:") {
        let _ = rest;
        return Err(SourceError::UrlUnsupported(value.to_owned()));
    }
    let Some(dir) = value.strip_prefix("dir:") else {
        return Err(SourceError::Malformed(value.to_owned()));
    };
    let origin = entity
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(MANAGED_BY))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(file) = origin.strip_prefix("file:") else {
        return Err(SourceError::NotFromFile(
            value.to_owned(),
            if origin.is_empty() {
                "nowhere known".to_owned()
            } else {
                origin.to_owned()
            },
        ));
    };
    let base = Path::new(file).parent().unwrap_or(Path::new("/"));
    let wanted = base.join(dir.trim());
    let canonical = std::fs::canonicalize(&wanted)
        .map_err(|_| SourceError::Folder(value.to_owned(), "the folder does not exist"))?;
    if !canonical.is_dir() {
        return Err(SourceError::Folder(value.to_owned(), "not a folder"));
    }
    if !roots.iter().any(|r| canonical.starts_with(r)) {
        return Err(SourceError::Folder(
            value.to_owned(),
            "outside the folders the catalog may read (catalog.file_roots)",
        ));
    }
    Ok(Source::Dir(canonical))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn entity(annotation: &str, origin: &str) -> Value {
        json!({"kind": "Component", "metadata": {"name": "x", "annotations": {
            ANNOTATION: annotation, MANAGED_BY: origin}}})
    }

    #[test]
    fn dir_sources_resolve_next_to_the_descriptor_and_stay_inside_the_roots() {
        let root = tempfile::tempdir().unwrap();
        let root_path = std::fs::canonicalize(root.path()).unwrap();
        std::fs::create_dir_all(root_path.join("svc/docs")).unwrap();
        let file = format!("file:{}", root_path.join("svc/catalog-info.yaml").display());
        let roots = vec![root_path.clone()];
        assert_eq!(
            resolve(&entity("dir:.", &file), &roots),
            Ok(Source::Dir(root_path.join("svc")))
        );
        assert!(matches!(
            resolve(&entity("dir:../..", &file), &roots),
            Err(SourceError::Folder(_, m)) if m.contains("outside")
        ));
        assert!(matches!(
            resolve(&entity("dir:missing", &file), &roots),
            Err(SourceError::Folder(..))
        ));
        assert!(matches!(
            resolve(&entity("dir:.", "url:https://example.com/x.yaml"), &roots),
            Err(SourceError::NotFromFile(..))
        ));
        assert!(matches!(
            resolve(&entity("url:https://github.com/o/r", &file), &roots),
            Err(SourceError::UrlUnsupported(_))
        ));
        assert!(matches!(
            resolve(&entity("git:x", &file), &roots),
            Err(SourceError::Malformed(_))
        ));
    }
}
