//! Entity references: `[<kind>:][<namespace>/]<name>`.

use std::fmt;

/// The namespace an entity lives in when its metadata names none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// A parsed entity reference. Comparisons between references go through
/// [`EntityRef::key`], because names are unique case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntityRef {
    /// Entity kind as written, e.g. `Component`.
    pub kind: String,
    /// Namespace as written.
    pub namespace: String,
    /// Name as written.
    pub name: String,
}

/// A reference that is not on the form `[<kind>:][<namespace>/]<name>`, or
/// that lacks a kind where no default applies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    /// Malformed reference.
    #[error("Entity reference \"{0}\" was not on the form [<kind>:][<namespace>/]<name>")]
    Malformed(String),
    /// A bare name where the field has no default kind.
    #[error(
        "Entity reference \"{0}\" had missing or empty kind (e.g. did not start with \"component:\" or similar)"
    )]
    MissingKind(String),
}

impl EntityRef {
    /// Builds a reference from its parts.
    pub fn new(kind: &str, namespace: &str, name: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }

    /// Parses a full reference; a missing kind or namespace is filled from the
    /// defaults, and a missing kind without a default is an error.
    pub fn parse_with_defaults(
        input: &str,
        default_kind: Option<&str>,
        default_namespace: &str,
    ) -> Result<Self, RefError> {
        let (kind, namespace, name) = split(input)?;
        let kind = match (kind, default_kind) {
            (Some(kind), _) => kind,
            (None, Some(kind)) => kind,
            (None, None) => return Err(RefError::MissingKind(input.to_owned())),
        };
        Ok(Self::new(
            kind,
            namespace.unwrap_or(default_namespace),
            name,
        ))
    }

    /// Parses a reference that must name its kind (namespace defaults to `default`).
    pub fn parse(input: &str) -> Result<Self, RefError> {
        Self::parse_with_defaults(input, None, DEFAULT_NAMESPACE)
    }

    /// The lower-cased canonical form, used as the identity of an entity.
    pub fn key(&self) -> String {
        let mut key =
            String::with_capacity(self.kind.len() + self.namespace.len() + self.name.len() + 2);
        key.push_str(&self.kind.to_lowercase());
        key.push(':');
        key.push_str(&self.namespace.to_lowercase());
        key.push('/');
        key.push_str(&self.name.to_lowercase());
        key
    }
}

impl fmt::Display for EntityRef {
    /// Backstage's `stringifyEntityRef`: kind and namespace lower-cased, name as written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}/{}",
            self.kind.to_lowercase(),
            self.namespace.to_lowercase(),
            self.name
        )
    }
}

/// Splits a reference into optional kind, optional namespace and name, the way
/// Backstage's `parseEntityRef` does: a `/` before the first `:` means there is
/// no kind part.
fn split(input: &str) -> Result<(Option<&str>, Option<&str>, &str), RefError> {
    let malformed = || RefError::Malformed(input.to_owned());
    let slash = input.find('/');
    let colon = input.find(':').filter(|c| slash.is_none_or(|s| *c < s));
    let (kind, rest) = match colon {
        Some(c) => (Some(&input[..c]), &input[c + 1..]),
        None => (None, input),
    };
    let (namespace, name) = match rest.find('/') {
        Some(s) => (Some(&rest[..s]), &rest[s + 1..]),
        None => (None, rest),
    };
    if kind == Some("") || namespace == Some("") || name.is_empty() || name.contains('/') {
        return Err(malformed());
    }
    Ok((kind, namespace, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let r = EntityRef::parse("Component:Default/Artist-Web").unwrap();
        assert_eq!(r.key(), "component:default/artist-web");
        assert_eq!(r.to_string(), "component:default/Artist-Web");
        let r = EntityRef::parse_with_defaults("team-a", Some("Group"), "ns").unwrap();
        assert_eq!(r.key(), "group:ns/team-a");
        let r = EntityRef::parse_with_defaults("other/team-a", Some("Group"), "ns").unwrap();
        assert_eq!(r.key(), "group:other/team-a");
        // a slash before the colon: no kind part
        let r = EntityRef::parse_with_defaults("ns/a:b", Some("Group"), "default").unwrap();
        assert_eq!((r.namespace.as_str(), r.name.as_str()), ("ns", "a:b"));
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["", ":a", "k:/a", "k:ns/", "a/b/c"] {
            let err = EntityRef::parse_with_defaults(bad, Some("x"), "default").unwrap_err();
            assert!(
                err.to_string().contains("was not on the form"),
                "{bad}: {err}"
            );
        }
        assert!(matches!(
            EntityRef::parse("x"),
            Err(RefError::MissingKind(_))
        ));
    }
}
