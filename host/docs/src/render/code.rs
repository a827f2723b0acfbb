//! Fenced code and alerts as HTML.

use pulldown_cmark::BlockQuoteKind;

use crate::blocks::escape;
use crate::highlight::highlight;

/// GitHub alert kinds as the admonition types MkDocs themes style.
pub(super) fn alert(kind: BlockQuoteKind) -> (&'static str, &'static str) {
    match kind {
        BlockQuoteKind::Note => ("note", "Note"),
        BlockQuoteKind::Tip => ("tip", "Tip"),
        BlockQuoteKind::Important => ("info", "Important"),
        BlockQuoteKind::Warning => ("warning", "Warning"),
        BlockQuoteKind::Caution => ("danger", "Caution"),
    }
}

/// A fenced block: ```` ```python title="x.py" linenums="1" ```` or
/// pymdownx's ```` ``` { .python title="x.py" } ````. `linenums` and
/// `hl_lines` are accepted and not drawn.
pub(super) fn code_block(info: &str, code: &str) -> String {
    let info = info.trim();
    let braced = info.strip_prefix('{').map(|i| i.trim_end_matches('}'));
    let lang = match braced {
        Some(inner) => inner
            .split_whitespace()
            .find_map(|t| t.strip_prefix('.'))
            .unwrap_or(""),
        None => info.split_whitespace().next().unwrap_or(""),
    };
    let lang: String = lang
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+' | '#'))
        .collect();
    let mut html = String::from("<div class=\"highlight\">");
    if let Some(title) = attribute(info, "title") {
        html.push_str(&format!(
            "<span class=\"filename\">{}</span>",
            escape(title)
        ));
    }
    let body = if lang == "mermaid" {
        html.push_str("<p class=\"diagram-note\">Mermaid diagram: shown as source</p>");
        escape(code)
    } else {
        highlight(code, &lang).unwrap_or_else(|| escape(code))
    };
    let class = if lang.is_empty() {
        String::new()
    } else {
        format!(" class=\"language-{lang}\"")
    };
    html.push_str(&format!("<pre><code{class}>{body}</code></pre></div>\n"));
    html
}

/// `name="value"` in a fence's info string.
fn attribute<'i>(info: &'i str, name: &str) -> Option<&'i str> {
    let start = info.find(&format!("{name}=\""))? + name.len() + 2;
    let len = info[start..].find('"')?;
    Some(&info[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fence_info() {
        let html = code_block(
            "python title=\"x.py\" linenums=\"1\" hl_lines=\"2\"",
            "x = 1\n",
        );
        assert!(html.starts_with("<div class=\"highlight\"><span class=\"filename\">x.py</span><pre><code class=\"language-python\"><span class=\"hl-source hl-python\">"), "{html}");
        let html = code_block("{ .nope }", "<b>\n");
        assert_eq!(
            html,
            "<div class=\"highlight\"><pre><code class=\"language-nope\">&lt;b&gt;\n</code></pre></div>\n"
        );
    }
}
