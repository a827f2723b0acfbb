//! Text-level extensions pulldown-cmark has no syntax for, applied to each
//! run of plain text: `==mark==`, `^^insert^^` (when the run still holds
//! it), `:emoji:` shortcodes, bare URLs (magiclink) and `abbr`.
//!
//! They work within one text run, so `==a *b* c==` (markup inside) stays as
//! written; that is the price of not re-implementing the inline parser.

use crate::blocks::escape;

/// How far a closing marker is looked for.
const WINDOW: usize = 1024;

/// Context a text run is rendered in.
pub(crate) struct Inline<'a> {
    pub abbreviations: &'a [(String, String)],
    /// Inside a link already: bare URLs must not become nested links.
    pub in_link: bool,
}

/// The run as HTML, or `None` when nothing in it applies (the caller then
/// emits it as plain text).
pub(crate) fn render(text: &str, cx: &Inline<'_>) -> Option<String> {
    let candidates =
        text.contains("==") || text.contains(['^', '~', ':']) || !cx.abbreviations.is_empty();
    if !candidates {
        return None;
    }
    let mut out = String::new();
    let mut done = 0;
    let mut changed = false;
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < bytes.len() {
        let rest = &text[i..];
        let at_word_start = i == 0 || !is_word(text[..i].chars().next_back().unwrap_or(' '));
        let replacement = if rest.starts_with("==") {
            pair(rest, "==", "mark")
        } else if rest.starts_with("^^") {
            pair(rest, "^^", "ins")
        } else if rest.starts_with('^') {
            tight(rest, '^', "sup")
        } else if rest.starts_with('~') && !rest.starts_with("~~") {
            tight(rest, '~', "sub")
        } else if bytes[i] == b':' {
            emoji(rest)
        } else if at_word_start
            && !cx.in_link
            && (rest.starts_with("https://") || rest.starts_with("http://"))
        {
            url(rest)
        } else if at_word_start {
            abbreviation(rest, cx.abbreviations)
        } else {
            None
        };
        if let Some((html, len)) = replacement {
            out.push_str(&escape(&text[done..i]));
            out.push_str(&html);
            i += len;
            done = i;
            changed = true;
        } else {
            i += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
    if !changed {
        return None;
    }
    out.push_str(&escape(&text[done..]));
    Some(out)
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `==text==` style pairs; the inner text may not start or end with a space.
fn pair(rest: &str, marker: &str, tag: &str) -> Option<(String, usize)> {
    let inner_start = marker.len();
    // Bounded, so a long line of unmatched markers stays linear.
    let mut window = (inner_start + WINDOW).min(rest.len());
    while !rest.is_char_boundary(window) {
        window -= 1;
    }
    let close = rest[inner_start..window].find(marker)? + inner_start;
    let inner = &rest[inner_start..close];
    if inner.is_empty() || inner.starts_with(' ') || inner.ends_with(' ') {
        return None;
    }
    Some((
        format!("<{tag}>{}</{tag}>", escape(inner)),
        close + marker.len(),
    ))
}

/// `H~2~O`, `x^2^`: pymdownx's sub- and superscript also work inside a
/// word, which pulldown-cmark's do not; the content may not hold spaces.
fn tight(rest: &str, marker: char, tag: &str) -> Option<(String, usize)> {
    let body = &rest[1..];
    let close = body
        .char_indices()
        .take(WINDOW)
        .find(|(_, c)| *c == marker || c.is_whitespace())?;
    if close.1 != marker || close.0 == 0 {
        return None;
    }
    let inner = &body[..close.0];
    Some((format!("<{tag}>{}</{tag}>", escape(inner)), close.0 + 2))
}

/// `:name:` for a GitHub (gemoji) shortcode.
fn emoji(rest: &str) -> Option<(String, usize)> {
    let body = &rest[1..];
    let end = body
        .char_indices()
        .take(64)
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-')))
        .map(|(i, _)| i)?;
    if end == 0 || !body[end..].starts_with(':') {
        return None;
    }
    let found = emojis::get_by_shortcode(&body[..end])?;
    Some((found.as_str().to_owned(), end + 2))
}

/// A bare `http(s)://` URL, up to whitespace, without trailing punctuation.
fn url(rest: &str) -> Option<(String, usize)> {
    let end = rest
        .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"'))
        .unwrap_or(rest.len());
    let link = rest[..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')', '\'', '*', '_']);
    let after_scheme = link.split_once("://").map_or("", |(_, host)| host);
    if after_scheme.is_empty() {
        return None;
    }
    let escaped = escape(link);
    Some((
        format!("<a href=\"{escaped}\" rel=\"noopener noreferrer\">{escaped}</a>"),
        link.len(),
    ))
}

fn abbreviation(rest: &str, abbreviations: &[(String, String)]) -> Option<(String, usize)> {
    abbreviations.iter().find_map(|(abbr, expansion)| {
        let after = rest.strip_prefix(abbr.as_str())?;
        if after.chars().next().is_some_and(is_word) {
            return None;
        }
        Some((
            format!(
                "<abbr title=\"{}\">{}</abbr>",
                escape(expansion),
                escape(abbr)
            ),
            abbr.len(),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str) -> Option<String> {
        let abbrs = vec![("HTML".to_owned(), "Hyper Text".to_owned())];
        render(
            text,
            &Inline {
                abbreviations: &abbrs,
                in_link: false,
            },
        )
    }

    #[test]
    fn text_extensions() {
        assert_eq!(r("a ==b c== d").as_deref(), Some("a <mark>b c</mark> d"));
        assert_eq!(r("x ^^new^^").as_deref(), Some("x <ins>new</ins>"));
        assert_eq!(r("hi :smile: <"), Some("hi 😄 &lt;".to_owned()));
        assert_eq!(r("see https://example.com/a?b=1."), Some("see <a href=\"https://example.com/a?b=1\" rel=\"noopener noreferrer\">https://example.com/a?b=1</a>.".to_owned()));
        assert_eq!(
            r("HTML and XHTML").as_deref(),
            Some("<abbr title=\"Hyper Text\">HTML</abbr> and XHTML")
        );
        assert_eq!(r("time 10:30: no"), None);
        assert_eq!(r("a == b"), None);
        assert_eq!(
            r("H~2~O x^2^ a~b c").as_deref(),
            Some("H<sub>2</sub>O x<sup>2</sup> a~b c")
        );
    }
}
