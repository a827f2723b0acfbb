//! Heading ids as Python-Markdown's `toc` makes them.

use std::collections::HashSet;

/// Python-Markdown's `toc` slug: ASCII word characters, spaces and hyphens
/// kept, lower-cased, runs of spaces and hyphens made one hyphen.
/// (Python first folds accents with NFKD, so `é` gives `e` there and
/// nothing here.)
pub(crate) fn slugify(text: &str) -> String {
    let kept: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-' || c.is_whitespace())
        .collect();
    let mut out = String::with_capacity(kept.len());
    let mut in_run = false;
    for c in kept.trim().chars() {
        if c == '-' || c.is_whitespace() {
            in_run = true;
            continue;
        }
        if in_run {
            out.push('-');
            in_run = false;
        }
        out.push(c.to_ascii_lowercase());
    }
    if in_run {
        out.push('-');
    }
    out
}

/// Python-Markdown's `unique`: `id`, `id_1`, `id_2`; an empty id is `_1`.
pub(crate) fn unique(mut id: String, used: &mut HashSet<String>) -> String {
    while id.is_empty() || used.contains(&id) {
        let next = match id.rsplit_once('_') {
            Some((stem, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => n
                .parse::<u64>()
                .ok()
                .and_then(|n| n.checked_add(1))
                .map(|n| format!("{stem}_{n}")),
            _ => None,
        };
        id = next.unwrap_or_else(|| format!("{id}_1"));
    }
    used.insert(id.clone());
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_like_python_markdown() {
        assert_eq!(slugify("Hello, World!"), "hello-world");
        assert_eq!(slugify("  a - b  "), "a-b");
        assert_eq!(slugify("Use `foo_bar` now"), "use-foo_bar-now");
        assert_eq!(slugify("Café"), "caf");
        let mut used = HashSet::new();
        let ids: Vec<String> = ["intro", "intro", "intro", "", ""]
            .iter()
            .map(|s| unique((*s).to_owned(), &mut used))
            .collect();
        assert_eq!(ids, ["intro", "intro_1", "intro_2", "_1", "_2"]);
    }
}
