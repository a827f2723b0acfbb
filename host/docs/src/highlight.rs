//! Server-side highlighting: CSS classes (`hl-` prefixed), no inline
//! styles, so the sanitiser's "no style attribute" rule holds and the host
//! picks the colours with [`highlight_css`].

use std::sync::LazyLock;

use syntect::highlighting::ThemeSet;
use syntect::html::{ClassStyle, ClassedHTMLGenerator, css_for_theme_with_class_style};
use syntect::parsing::SyntaxSet;
use syntect::util::LinesWithEndings;

const STYLE: ClassStyle = ClassStyle::SpacedPrefixed { prefix: "hl-" };

/// Code longer than this is shown plain: highlighting is the slowest part of
/// a page, and a generated file of megabytes gains little from colour.
const MAX_HIGHLIGHT_BYTES: usize = 128 * 1024;

/// Loaded once: parsing the bundled grammars takes tens of milliseconds.
static SYNTAXES: LazyLock<SyntaxSet> = LazyLock::new(SyntaxSet::load_defaults_newlines);

/// Highlights `code` as `lang`; `None` when the language is unknown (the
/// caller shows it escaped) or the grammar fails on it.
pub(crate) fn highlight(code: &str, lang: &str) -> Option<String> {
    if code.len() > MAX_HIGHLIGHT_BYTES {
        return None;
    }
    let token = match lang.to_ascii_lowercase().as_str() {
        "shell" | "console" | "sh" | "zsh" | "shell-session" => "bash".to_owned(),
        "py" | "python3" => "python".to_owned(),
        "yml" => "yaml".to_owned(),
        "text" | "txt" | "plain" | "plaintext" | "" => return None,
        other => other.to_owned(),
    };
    let syntaxes = &*SYNTAXES;
    let syntax = syntaxes.find_syntax_by_token(&token)?;
    let mut generator = ClassedHTMLGenerator::new_with_class_style(syntax, syntaxes, STYLE);
    for line in LinesWithEndings::from(code) {
        generator
            .parse_html_for_line_which_includes_newline(line)
            .ok()?;
    }
    Some(generator.finalize())
}

/// CSS for the highlighting classes (`.hl-keyword` ...) in a light theme
/// (syntect's bundled InspiredGitHub), for the host to serve beside pages.
pub fn highlight_css() -> String {
    let themes = ThemeSet::load_defaults();
    themes
        .themes
        .get("InspiredGitHub")
        .and_then(|theme| css_for_theme_with_class_style(theme, STYLE).ok())
        .unwrap_or_default()
}
