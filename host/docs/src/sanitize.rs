//! The last step of every page: an explicit allow-list, so raw HTML in
//! Markdown can format text but never run, load or restyle anything.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use ammonia::{Builder, UrlRelative};

/// Elements a page may contain: text formatting, structure, tables, images,
/// and what the renderer's own markup needs (details, tab inputs and
/// labels, task-list checkboxes).
const TAGS: &[&str] = &[
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "caption",
    "cite",
    "code",
    "col",
    "colgroup",
    "dd",
    "del",
    "details",
    "dfn",
    "div",
    "dl",
    "dt",
    "em",
    "figcaption",
    "figure",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "input",
    "ins",
    "kbd",
    "label",
    "li",
    "mark",
    "ol",
    "p",
    "pre",
    "q",
    "s",
    "samp",
    "small",
    "span",
    "strong",
    "sub",
    "summary",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "u",
    "ul",
    "var",
    "wbr",
];

/// Elements dropped with everything inside them (others that are not
/// allowed lose the tag but keep their text).
const DROP_WITH_CONTENT: &[&str] = &[
    "script",
    "style",
    "iframe",
    "object",
    "embed",
    "svg",
    "math",
    "template",
    "noscript",
    "textarea",
    "select",
    "frameset",
    "frame",
    "applet",
    "noembed",
    "xmp",
    "plaintext",
    "title",
];

static SANITISER: LazyLock<Builder<'static>> = LazyLock::new(|| {
    let per_tag: HashMap<&'static str, HashSet<&'static str>> = [
        ("a", &["href", "rel"][..]),
        ("img", &["src", "alt", "width", "height", "loading"]),
        ("input", &["type", "checked", "disabled", "name"]),
        ("label", &["for"]),
        ("details", &["open"]),
        ("td", &["align", "colspan", "rowspan"]),
        ("th", &["align", "colspan", "rowspan", "scope"]),
        ("ol", &["start", "reversed"]),
        ("col", &["span"]),
        ("colgroup", &["span"]),
        ("abbr", &["title"]),
    ]
    .into_iter()
    .map(|(tag, attrs)| (tag, attrs.iter().copied().collect()))
    .collect();
    let mut builder = Builder::empty();
    builder
        .tags(TAGS.iter().copied().collect())
        .clean_content_tags(DROP_WITH_CONTENT.iter().copied().collect())
        .tag_attributes(per_tag)
        .tag_attribute_values(HashMap::new())
        .set_tag_attribute_values(HashMap::new())
        .generic_attributes(["class", "id", "title", "lang"].into_iter().collect())
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .url_relative(UrlRelative::PassThrough)
        // The renderer sets `rel` itself, on external links only.
        .link_rel(None)
        .strip_comments(true)
        .attribute_filter(filter);
    builder
});

fn filter<'a>(element: &str, attribute: &str, value: &'a str) -> Option<Cow<'a, str>> {
    match (element, attribute) {
        // Checkboxes (task lists) and radios (tabs) only: no text fields or
        // buttons in documentation.
        ("input", "type") => matches!(value, "checkbox" | "radio").then_some(Cow::Borrowed(value)),
        ("a", "rel") => {
            matches!(value, "noopener noreferrer" | "nofollow").then_some(Cow::Borrowed(value))
        }
        ("td" | "th", "align") => {
            matches!(value, "left" | "center" | "right").then_some(Cow::Borrowed(value))
        }
        _ => Some(Cow::Borrowed(value)),
    }
}

/// Sanitises one page body.
pub(crate) fn clean(html: &str) -> String {
    SANITISER.clean(html).to_string()
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn builder_is_consistent() {
        // Ammonia panics on contradictory settings at the first clean.
        assert_eq!(clean("<p class=\"x\">a</p>"), "<p class=\"x\">a</p>");
    }

    #[test]
    fn inputs_are_only_checkboxes_and_radios() {
        assert_eq!(
            clean("<input type=\"text\" name=\"q\"><input type=\"radio\" checked>"),
            "<input name=\"q\"><input type=\"radio\" checked=\"\">"
        );
    }
}
