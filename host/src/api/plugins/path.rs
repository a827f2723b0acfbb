//! The one normal form of a path below a plugin's mount point (`/api/plugins/<id>/...`,
//! `/plugins/<id>/...`, `/api/views/pages/<id>/...`).
//!
//! The host checks licence entitlements against this path and hands the
//! plugin exactly this path, so the two cannot disagree: a path that a
//! router could read as something else (`//export.csv`, `/%2Fexport.csv`,
//! `/a/../export.csv`) is refused instead of guessed at. Segments come back
//! percent-encoded in one canonical way (only what must be encoded is), so
//! a plugin decodes each segment once.

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

/// What a path segment keeps encoded: everything RFC 3986 does not allow
/// raw in a segment.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// Why a path was refused (the caller answers 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// `//` or an empty segment anywhere but at the end.
    #[error("the path {0} has an empty segment (\"//\")")]
    Empty(String),
    /// `.` or `..`, written plainly or encoded.
    #[error("the path {0} has a \".\" or \"..\" segment")]
    Dot(String),
    /// `%2F` or `%5C` (or a raw backslash): one segment that a router
    /// might split in two.
    #[error("the path {0} has an encoded \"/\" or a \"\\\" in a segment")]
    Separator(String),
    /// A control character, or bytes that are not UTF-8 once decoded.
    #[error("the path {0} has control characters or invalid UTF-8 in a segment")]
    Invalid(String),
}

/// The longest path quoted back in an error.
const QUOTED: usize = 200;

fn quoted(raw: &str) -> String {
    let mut cut = raw.len().min(QUOTED);
    while !raw.is_char_boundary(cut) {
        cut -= 1;
    }
    let ellipsis = if cut < raw.len() { "…" } else { "" };
    format!("\"{}{ellipsis}\"", &raw[..cut])
}

/// `raw` (the path below the mount point as the client sent it, still
/// percent-encoded; empty means `/`) in normal form: starting with `/`,
/// every segment non-empty (one trailing `/` is kept), no dot segments,
/// and each segment re-encoded canonically.
pub fn normalise(raw: &str) -> Result<String, PathError> {
    let rest = raw.strip_prefix('/').unwrap_or(raw);
    if rest.is_empty() {
        return Ok("/".to_owned());
    }
    let segments: Vec<&str> = rest.split('/').collect();
    let mut out = String::with_capacity(raw.len() + 1);
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        if segment.is_empty() {
            if last {
                out.push('/');
                break;
            }
            return Err(PathError::Empty(quoted(raw)));
        }
        let decoded = percent_decode_str(segment)
            .decode_utf8()
            .map_err(|_| PathError::Invalid(quoted(raw)))?;
        if decoded == "." || decoded == ".." {
            return Err(PathError::Dot(quoted(raw)));
        }
        if decoded.contains(['/', '\\']) {
            return Err(PathError::Separator(quoted(raw)));
        }
        if decoded.chars().any(char::is_control) {
            return Err(PathError::Invalid(quoted(raw)));
        }
        out.push('/');
        out.extend(utf8_percent_encode(&decoded, SEGMENT));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_paths_stay_as_they_are() {
        assert_eq!(normalise("").unwrap(), "/");
        assert_eq!(normalise("/").unwrap(), "/");
        assert_eq!(normalise("/export.csv").unwrap(), "/export.csv");
        assert_eq!(normalise("/a/b/").unwrap(), "/a/b/");
        assert_eq!(normalise("/greet/Ada%20L").unwrap(), "/greet/Ada%20L");
        assert_eq!(normalise("runs/o/r").unwrap(), "/runs/o/r");
    }

    #[test]
    fn encodings_become_canonical() {
        assert_eq!(normalise("/export%2Ecsv").unwrap(), "/export.csv");
        assert_eq!(normalise("/%65xport.csv").unwrap(), "/export.csv");
        assert_eq!(normalise("/a b").unwrap(), "/a%20b");
        assert_eq!(normalise("/%25").unwrap(), "/%25");
        assert_eq!(normalise("/caf%C3%A9").unwrap(), "/caf%C3%A9");
        assert_eq!(normalise("/café").unwrap(), "/caf%C3%A9");
    }

    #[test]
    fn ambiguous_paths_are_refused() {
        for raw in ["//export.csv", "/a//b", "/export.csv//"] {
            assert!(matches!(normalise(raw), Err(PathError::Empty(_))), "{raw}");
        }
        for raw in ["/./export.csv", "/a/../export.csv", "/%2e%2E/x", "/%2E"] {
            assert!(matches!(normalise(raw), Err(PathError::Dot(_))), "{raw}");
        }
        for raw in ["/%2Fexport.csv", "/%2fexport.csv", "/a%5Cb", "/a\\b"] {
            assert!(
                matches!(normalise(raw), Err(PathError::Separator(_))),
                "{raw}"
            );
        }
        for raw in ["/a%00", "/a%0A", "/%09x", "/%FF"] {
            assert!(
                matches!(normalise(raw), Err(PathError::Invalid(_))),
                "{raw}"
            );
        }
    }

    #[test]
    fn errors_quote_at_most_a_bounded_prefix() {
        let long = format!("//{}", "é".repeat(1000));
        let message = normalise(&long).unwrap_err().to_string();
        assert!(message.len() < QUOTED + 80, "{message}");
    }
}
