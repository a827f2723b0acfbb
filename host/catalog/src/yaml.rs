//! Multi-document YAML with the line each document starts on.

use serde_json::Value;

/// One YAML document of a file.
#[derive(Debug)]
pub struct Document {
    /// 1-based line of the document's first node.
    pub line: u32,
    /// The document as JSON.
    pub value: Value,
}

/// A file that is not valid YAML.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct YamlError {
    /// 1-based line, when the parser knows it.
    pub line: Option<u32>,
    /// The parser's message.
    pub message: String,
}

/// Parses every document of a file; empty documents are skipped.
pub fn parse_documents(text: &str) -> Result<Vec<Document>, YamlError> {
    let docs: Vec<serde_saphyr::Spanned<Value>> =
        serde_saphyr::from_multiple(text).map_err(|e| YamlError {
            line: e
                .location()
                .map(|l| u32::try_from(l.line()).unwrap_or(u32::MAX)),
            message: first_line(&e.to_string()),
        })?;
    Ok(docs
        .into_iter()
        .map(|d| Document {
            line: u32::try_from(d.referenced.line()).unwrap_or(u32::MAX),
            value: d.value,
        })
        .collect())
}

/// The rendered error carries a source snippet; the first line is the message.
fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_documents() {
        let text = "# head\n---\na: 1\n---\n\n---\nb:\n  - x\n";
        let docs = parse_documents(text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].line, 3);
        assert_eq!(docs[1].line, 7);
        assert_eq!(docs[1].value["b"][0], "x");
    }

    #[test]
    fn error_has_line() {
        let err = parse_documents("a: 1\nb: [\n").unwrap_err();
        assert!(err.line.is_some(), "{err:?}");
    }
}
