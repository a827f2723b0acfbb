//! The line-level extensions pulldown-cmark does not know, applied to the
//! source before it is parsed: `pymdownx.snippets` includes, `abbr`
//! definitions, and the indented containers (`!!!` admonitions, `???`
//! details, `===` tabs).
//!
//! A container becomes raw HTML lines around its dedented body, separated by
//! blank lines, so CommonMark ends each HTML block at once and parses the
//! body as Markdown in the same document: footnotes and reference links keep
//! working across containers, and nesting is plain recursion on the body.
//! Every output line remembers its source line for problems.

use std::borrow::Cow;

use crate::files::{Files, normalise};

/// Deepest container nesting interpreted; deeper markers stay text.
pub(crate) const MAX_DEPTH: usize = 32;
/// Deepest snippet include chain, as pymdownx's own bound.
const MAX_INCLUDE_DEPTH: usize = 4;

/// A line of Markdown and the 1-based source line it stands for.
pub(crate) type Line<'a> = (Cow<'a, str>, u32);

/// A problem at a line of the page.
pub(crate) type LineProblem = (u32, String);

/// A page's source with snippets included.
#[derive(Debug, Default)]
pub(crate) struct Expanded<'a> {
    pub lines: Vec<Line<'a>>,
    /// Each snippet asked for: site-relative path found, or the path as
    /// written with `None` when missing or refused. Part of the page hash.
    pub includes: Vec<(String, bool)>,
    pub problems: Vec<LineProblem>,
}

/// Splits `text` into lines and includes `--8<-- "path"` snippets, looked up
/// under `docs_dir` first and then the site root.
pub(crate) fn expand<'a>(files: &'a Files, docs_dir: &str, text: &'a str) -> Expanded<'a> {
    let mut out = Expanded::default();
    include(files, docs_dir, text, None, "", 0, &mut out);
    out
}

fn include<'a>(
    files: &'a Files,
    docs_dir: &str,
    text: &'a str,
    at: Option<u32>,
    indent: &str,
    depth: usize,
    out: &mut Expanded<'a>,
) {
    for (n, line) in text.lines().enumerate() {
        let line_no = at.unwrap_or(n as u32 + 1);
        let Some(directive) = snippet(line) else {
            out.lines.push(if indent.is_empty() {
                (Cow::Borrowed(line), line_no)
            } else {
                (Cow::Owned(format!("{indent}{line}")), line_no)
            });
            continue;
        };
        let Snippet {
            indent: own,
            escaped,
            path,
        } = directive;
        if escaped {
            let literal = line.replacen(';', "", 1);
            out.lines
                .push((Cow::Owned(format!("{indent}{literal}")), line_no));
            continue;
        }
        let Some(clean) = normalise(path).filter(|_| !path.starts_with(['/', '\\'])) else {
            out.problems.push((
                line_no,
                format!("snippet {path:?} refused: it must be a relative path inside the site"),
            ));
            out.includes.push((path.to_owned(), false));
            continue;
        };
        if depth >= MAX_INCLUDE_DEPTH {
            out.problems.push((
                line_no,
                format!(
                    "snippet {path:?} not included: snippets nest deeper than {MAX_INCLUDE_DEPTH}"
                ),
            ));
            continue;
        }
        let in_docs = format!("{docs_dir}/{clean}");
        let found = [in_docs, clean.clone()]
            .into_iter()
            .find_map(|p| files.get(&p).map(|bytes| (p, bytes)));
        let Some((found_path, bytes)) = found else {
            out.problems
                .push((line_no, format!("snippet {path:?} not found")));
            out.includes.push((clean, false));
            continue;
        };
        out.includes.push((found_path, true));
        match std::str::from_utf8(bytes) {
            Ok(snippet_text) => {
                let indent = format!("{indent}{own}");
                include(
                    files,
                    docs_dir,
                    snippet_text,
                    Some(line_no),
                    &indent,
                    depth + 1,
                    out,
                );
            }
            Err(_) => out
                .problems
                .push((line_no, format!("snippet {path:?} is not UTF-8 text"))),
        }
    }
}

struct Snippet<'a> {
    indent: &'a str,
    escaped: bool,
    path: &'a str,
}

/// Parses a `--8<-- "path"` line (`;--8<--` is an escaped, literal one).
fn snippet(line: &str) -> Option<Snippet<'_>> {
    if !line.contains("8<") {
        return None;
    }
    let rest = line.trim_start_matches([' ', '\t']);
    let indent = &line[..line.len() - rest.len()];
    let (escaped, rest) = match rest.strip_prefix(';') {
        Some(r) => (true, r.trim_start_matches(';')),
        None => (false, rest),
    };
    let after = rest.trim_start_matches('-');
    if after.len() == rest.len() {
        return None;
    }
    let after = after.strip_prefix("8<")?;
    let quoted = after.trim_start_matches('-');
    if quoted.len() == after.len() || !quoted.starts_with([' ', '\t']) {
        return None;
    }
    let quoted = quoted.trim();
    let quote = quoted.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let path = quoted.strip_prefix(quote)?.strip_suffix(quote)?;
    (!path.is_empty()).then_some(Snippet {
        indent,
        escaped,
        path,
    })
}

/// The page after the container pass.
#[derive(Debug, Default)]
pub(crate) struct Blocks<'a> {
    pub lines: Vec<Line<'a>>,
    /// `*[ABBR]: Expansion` definitions, removed from the text.
    pub abbreviations: Vec<(String, String)>,
    pub problems: Vec<LineProblem>,
    tab_sets: usize,
    too_deep: bool,
}

/// Runs the container pass over expanded lines.
pub(crate) fn containers<'a>(lines: Vec<Line<'a>>) -> Blocks<'a> {
    let mut blocks = Blocks::default();
    blocks.process(lines, 0);
    blocks
}

#[derive(Debug, PartialEq, Eq)]
enum Header {
    Admonition {
        classes: Vec<String>,
        title: Option<String>,
    },
    Details {
        open: bool,
        classes: Vec<String>,
        title: Option<String>,
    },
    Tab {
        new_set: bool,
        selected: bool,
        title: String,
    },
}

impl<'a> Blocks<'a> {
    fn push(&mut self, text: impl Into<Cow<'a, str>>, line: u32) {
        self.lines.push((text.into(), line));
    }

    fn process(&mut self, lines: Vec<Line<'a>>, depth: usize) {
        let mut fence: Option<(char, usize)> = None;
        let mut last_line = 0;
        let mut iter = lines.into_iter().peekable();
        while let Some((text, line_no)) = iter.next() {
            last_line = line_no;
            if let Some(open) = fence {
                if closes_fence(&text, open) {
                    fence = None;
                }
                self.push(text, line_no);
                continue;
            }
            if let Some(open) = opens_fence(&text) {
                fence = Some(open);
                self.push(text, line_no);
                continue;
            }
            if let Some(abbr) = abbreviation(&text) {
                self.abbreviations.push(abbr);
                continue;
            }
            let Some(found) = header(&text) else {
                self.push(attr_list_heading(text), line_no);
                continue;
            };
            if depth >= MAX_DEPTH {
                if !self.too_deep {
                    self.too_deep = true;
                    self.problems.push((
                        line_no,
                        format!(
                            "blocks nest deeper than {MAX_DEPTH} levels; the rest is shown as text"
                        ),
                    ));
                }
                self.push(text, line_no);
                continue;
            }
            let body = take_body(&mut iter);
            match found {
                Header::Admonition { classes, title } => {
                    let title = title.map_or_else(|| capitalise(&classes[0]), |t| escape(&t));
                    self.push("", line_no);
                    self.push(
                        format!("<div class=\"admonition {}\">", classes.join(" ")),
                        line_no,
                    );
                    if !title.is_empty() {
                        self.push(
                            format!("<p class=\"admonition-title\">{title}</p>"),
                            line_no,
                        );
                    }
                    self.body(body, depth, line_no);
                    self.push("</div>", line_no);
                    self.push("", line_no);
                }
                Header::Details {
                    open,
                    classes,
                    title,
                } => {
                    let title = match (title, classes.first()) {
                        (Some(t), _) => escape(&t),
                        (None, Some(class)) => capitalise(class),
                        (None, None) => "Details".to_owned(),
                    };
                    let open = if open { " open" } else { "" };
                    self.push("", line_no);
                    self.push(
                        format!("<details class=\"{}\"{open}>", classes.join(" ")),
                        line_no,
                    );
                    self.push(format!("<summary>{title}</summary>"), line_no);
                    self.body(body, depth, line_no);
                    self.push("</details>", line_no);
                    self.push("", line_no);
                }
                Header::Tab {
                    selected, title, ..
                } => {
                    let mut tabs = vec![(selected, title, body, line_no)];
                    loop {
                        while iter.peek().is_some_and(|(t, _)| t.trim().is_empty()) {
                            iter.next();
                        }
                        let Some(Header::Tab {
                            new_set: false,
                            selected,
                            title,
                        }) = iter.peek().and_then(|(t, _)| header(t))
                        else {
                            break;
                        };
                        let (_, line_no) = iter.next().unwrap_or_default();
                        let body = take_body(&mut iter);
                        tabs.push((selected, title, body, line_no));
                    }
                    self.tabs(tabs, depth);
                }
            }
        }
        if let Some((c, n)) = fence {
            // An unclosed fence would swallow the container's closing tag.
            self.push(c.to_string().repeat(n), last_line);
        }
    }

    fn body(&mut self, body: Vec<Line<'a>>, depth: usize, line_no: u32) {
        self.push("", line_no);
        self.process(body, depth + 1);
        self.push("", line_no);
    }

    fn tabs(&mut self, tabs: Vec<(bool, String, Vec<Line<'a>>, u32)>, depth: usize) {
        self.tab_sets += 1;
        let set = self.tab_sets;
        let first_line = tabs[0].3;
        let checked = tabs.iter().rposition(|t| t.0).unwrap_or(0);
        self.push("", first_line);
        self.push("<div class=\"tabbed-set tabbed-alternate\">", first_line);
        for n in 0..tabs.len() {
            let check = if n == checked { " checked" } else { "" };
            self.push(
                format!("<input id=\"__tabbed_{set}_{}\" name=\"__tabbed_{set}\" type=\"radio\"{check}>", n + 1),
                first_line,
            );
        }
        let labels: String = tabs
            .iter()
            .enumerate()
            .map(|(n, t)| {
                format!(
                    "<label for=\"__tabbed_{set}_{}\">{}</label>",
                    n + 1,
                    escape(&t.1)
                )
            })
            .collect();
        self.push(
            format!("<div class=\"tabbed-labels\">{labels}</div>"),
            first_line,
        );
        self.push("<div class=\"tabbed-content\">", first_line);
        for (_, _, body, line_no) in tabs {
            self.push("<div class=\"tabbed-block\">", line_no);
            self.body(body, depth, line_no);
            self.push("</div>", line_no);
        }
        self.push("</div>", first_line);
        self.push("</div>", first_line);
        self.push("", first_line);
    }
}

/// The indented lines after a header (blank lines inside included),
/// dedented by four columns; trailing blank lines are left in `iter`'s place.
fn take_body<'a, I: Iterator<Item = Line<'a>>>(iter: &mut std::iter::Peekable<I>) -> Vec<Line<'a>> {
    let mut body = Vec::new();
    while let Some((text, _)) = iter.peek() {
        if !text.trim().is_empty() && indent_width(text) < 4 {
            break;
        }
        let Some((text, line_no)) = iter.next() else {
            break;
        };
        body.push((dedent(text), line_no));
    }
    while body.last().is_some_and(|(t, _)| t.is_empty()) {
        body.pop();
    }
    body
}

fn indent_width(text: &str) -> usize {
    let mut width = 0;
    for c in text.chars() {
        match c {
            ' ' => width += 1,
            '\t' => width += 4 - width % 4,
            _ => break,
        }
    }
    width
}

/// Drops four columns of indentation; blank lines become empty.
fn dedent(text: Cow<'_, str>) -> Cow<'_, str> {
    if text.trim().is_empty() {
        return Cow::Borrowed("");
    }
    let cut = if text.starts_with('\t') {
        1
    } else {
        text.bytes().take(4).take_while(|b| *b == b' ').count()
    };
    match text {
        Cow::Borrowed(s) => Cow::Borrowed(&s[cut..]),
        Cow::Owned(s) => Cow::Owned(s[cut..].to_owned()),
    }
}

fn opens_fence(text: &str) -> Option<(char, usize)> {
    let rest = text.trim_start_matches(' ');
    if text.len() - rest.len() > 3 {
        return None;
    }
    let c = rest.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let n = rest.chars().take_while(|x| *x == c).count();
    (n >= 3 && !(c == '`' && rest[n..].contains('`'))).then_some((c, n))
}

fn closes_fence(text: &str, (c, n): (char, usize)) -> bool {
    let rest = text.trim_start_matches(' ');
    if text.len() - rest.len() > 3 {
        return false;
    }
    let run = rest.chars().take_while(|x| *x == c).count();
    run >= n && rest[run..].trim().is_empty()
}

/// Python-Markdown's `attr_list` also takes `## Title {: #id .class }`;
/// pulldown-cmark only the form without the colon.
fn attr_list_heading(text: Cow<'_, str>) -> Cow<'_, str> {
    if text.starts_with('#') && text.trim_end().ends_with('}') && text.contains("{:") {
        Cow::Owned(text.replacen("{:", "{", 1))
    } else {
        text
    }
}

/// `*[HTML]: Hyper Text Markup Language`.
fn abbreviation(text: &str) -> Option<(String, String)> {
    let rest = text.strip_prefix("*[")?;
    let (abbr, expansion) = rest.split_once("]:")?;
    let (abbr, expansion) = (abbr.trim(), expansion.trim());
    (!abbr.is_empty() && !abbr.contains(']')).then(|| (abbr.to_owned(), expansion.to_owned()))
}

fn header(text: &str) -> Option<Header> {
    if let Some(rest) = text.strip_prefix("!!!") {
        let (classes, title) = classes_and_title(rest)?;
        return (!classes.is_empty()).then_some(Header::Admonition { classes, title });
    }
    if let Some(rest) = text.strip_prefix("???") {
        let (open, rest) = match rest.strip_prefix('+') {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let (classes, title) = classes_and_title(rest)?;
        return (!classes.is_empty() || title.is_some()).then_some(Header::Details {
            open,
            classes,
            title,
        });
    }
    let rest = text.strip_prefix("===")?;
    let flags = &rest[..rest.len() - rest.trim_start_matches(['!', '+']).len()];
    let rest = &rest[flags.len()..];
    if flags.len() > 2 || !rest.starts_with(' ') {
        return None;
    }
    let title = rest.trim().strip_prefix('"')?.strip_suffix('"')?;
    Some(Header::Tab {
        new_set: flags.contains('!'),
        selected: flags.contains('+'),
        title: title.to_owned(),
    })
}

/// `type more-classes "Title"` (title optional) after a marker.
fn classes_and_title(rest: &str) -> Option<(Vec<String>, Option<String>)> {
    let rest = rest.trim();
    let (classes, title) = match rest.find('"') {
        Some(i) => {
            let title = rest[i..].strip_prefix('"')?.strip_suffix('"')?;
            (&rest[..i], Some(title))
        }
        None => (rest, None),
    };
    if title.is_some() && !classes.is_empty() && !classes.ends_with(' ') {
        return None;
    }
    let classes: Vec<String> = classes.split_whitespace().map(str::to_owned).collect();
    let word = |c: &String| {
        c.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    };
    classes
        .iter()
        .all(word)
        .then(|| (classes, title.map(str::to_owned)))
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map_or_else(String::new, |first| {
        first
            .to_uppercase()
            .chain(chars.flat_map(char::to_lowercase))
            .collect()
    })
}

/// Escapes text for HTML content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        assert_eq!(
            header("!!! note \"Hi there\""),
            Some(Header::Admonition {
                classes: vec!["note".into()],
                title: Some("Hi there".into())
            })
        );
        assert_eq!(
            header("!!! warning \"\""),
            Some(Header::Admonition {
                classes: vec!["warning".into()],
                title: Some(String::new())
            })
        );
        assert_eq!(header("!!!"), None);
        assert_eq!(
            header("???+ tip"),
            Some(Header::Details {
                open: true,
                classes: vec!["tip".into()],
                title: None
            })
        );
        assert_eq!(
            header("=== \"A\""),
            Some(Header::Tab {
                new_set: false,
                selected: false,
                title: "A".into()
            })
        );
        assert_eq!(
            header("===! \"B\""),
            Some(Header::Tab {
                new_set: true,
                selected: false,
                title: "B".into()
            })
        );
        assert_eq!(header("==="), None);
    }

    #[test]
    fn snippet_lines() {
        let s = snippet("  --8<-- \"a/b.md\"").unwrap();
        assert_eq!((s.indent, s.escaped, s.path), ("  ", false, "a/b.md"));
        assert!(snippet(";--8<-- 'x'").unwrap().escaped);
        assert!(snippet("--8<--").is_none());
        assert!(snippet("a --8<-- \"x\"").is_none());
    }
}
