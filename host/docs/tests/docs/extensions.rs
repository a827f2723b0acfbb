//! Each extension against the HTML it should produce.

use super::{html, render};

#[test]
fn admonition_with_title_default_title_and_none() {
    assert_eq!(
        html("!!! note \"Read *this*\"\n    Body **bold**.\n\n    Second.\n"),
        "<div class=\"admonition note\"><p class=\"admonition-title\">Read *this*</p>\
         <p>Body <strong>bold</strong>.</p><p>Second.</p></div>"
    );
    assert_eq!(
        html("!!! tip\n    Body.\n"),
        "<div class=\"admonition tip\"><p class=\"admonition-title\">Tip</p><p>Body.</p></div>"
    );
    assert_eq!(
        html("!!! warning \"\"\n    Body.\n"),
        "<div class=\"admonition warning\"><p>Body.</p></div>"
    );
    // Not indented: the body ends at once and the text is a paragraph.
    assert_eq!(
        html("!!! danger\nNot inside.\n"),
        "<div class=\"admonition danger\"><p class=\"admonition-title\">Danger</p></div><p>Not inside.</p>"
    );
}

#[test]
fn details_closed_and_open() {
    assert_eq!(
        html("??? question \"Why?\"\n    Because.\n"),
        "<details class=\"question\"><summary>Why?</summary><p>Because.</p></details>"
    );
    assert_eq!(
        html("???+ bug\n    Open.\n"),
        "<details class=\"bug\" open=\"\"><summary>Bug</summary><p>Open.</p></details>"
    );
}

#[test]
fn tabs_are_grouped_with_unique_ids() {
    let got = html(
        "=== \"One\"\n    First.\n\n=== \"Two\"\n    Second.\n\nBetween.\n\n===+ \"A\"\n    a\n===+ \"B\"\n    b\n",
    );
    assert_eq!(
        got,
        "<div class=\"tabbed-set tabbed-alternate\">\
         <input id=\"__tabbed_1_1\" name=\"__tabbed_1\" type=\"radio\" checked=\"\">\
         <input id=\"__tabbed_1_2\" name=\"__tabbed_1\" type=\"radio\">\
         <div class=\"tabbed-labels\"><label for=\"__tabbed_1_1\">One</label><label for=\"__tabbed_1_2\">Two</label></div>\
         <div class=\"tabbed-content\"><div class=\"tabbed-block\"><p>First.</p></div>\
         <div class=\"tabbed-block\"><p>Second.</p></div></div></div>\
         <p>Between.</p>\
         <div class=\"tabbed-set tabbed-alternate\">\
         <input id=\"__tabbed_2_1\" name=\"__tabbed_2\" type=\"radio\">\
         <input id=\"__tabbed_2_2\" name=\"__tabbed_2\" type=\"radio\" checked=\"\">\
         <div class=\"tabbed-labels\"><label for=\"__tabbed_2_1\">A</label><label for=\"__tabbed_2_2\">B</label></div>\
         <div class=\"tabbed-content\"><div class=\"tabbed-block\"><p>a</p></div>\
         <div class=\"tabbed-block\"><p>b</p></div></div></div>"
    );
    // `===!` starts a new set.
    assert_eq!(
        html("=== \"A\"\n    a\n===! \"B\"\n    b\n")
            .matches("tabbed-set")
            .count(),
        2
    );
}

#[test]
fn containers_nest() {
    let got = html(
        "??? note \"Outer\"\n    === \"Tab\"\n\n        !!! danger \"Inner\"\n            ```python\n            x = 1\n            ```\n\n    After.\n",
    );
    assert!(
        got.starts_with(
            "<details class=\"note\"><summary>Outer</summary><div class=\"tabbed-set tabbed-alternate\">"
        ),
        "{got}"
    );
    assert!(got.contains("<div class=\"tabbed-block\"><div class=\"admonition danger\"><p class=\"admonition-title\">Inner</p><div class=\"highlight\"><pre><code class=\"language-python\">"), "{got}");
    assert!(
        got.ends_with("</div></div></div></div><p>After.</p></details>"),
        "{got}"
    );
    // A marker inside a code fence is code.
    assert_eq!(
        render("```\n!!! note\n    x\n```\n").html,
        "<div class=\"highlight\"><pre><code>!!! note\n    x\n</code></pre></div>\n"
    );
}

#[test]
fn github_alerts_are_admonitions() {
    assert_eq!(
        html("> [!WARNING]\n> Careful.\n"),
        "<div class=\"admonition warning\"><p class=\"admonition-title\">Warning</p><p>Careful.</p></div>"
    );
    assert!(
        html("> [!CAUTION]\n> x\n").starts_with(
            "<div class=\"admonition danger\"><p class=\"admonition-title\">Caution</p>"
        )
    );
    assert_eq!(html("> plain\n"), "<blockquote><p>plain</p></blockquote>");
}

#[test]
fn gfm_blocks() {
    assert_eq!(
        html("- [x] done\n- [ ] todo\n"),
        "<ul><li><input disabled=\"\" type=\"checkbox\" checked=\"\">done</li><li><input disabled=\"\" type=\"checkbox\">todo</li></ul>"
    );
    assert_eq!(
        html("Text[^n].\n\n[^n]: Note.\n"),
        "<p>Text<sup class=\"footnote-reference\"><a href=\"#n\">1</a></sup>.</p>\
         <div class=\"footnote-definition\" id=\"n\"><sup class=\"footnote-definition-label\">1</sup><p>Note.</p></div>"
    );
    assert_eq!(
        html("| a | b |\n|:--|--:|\n| 1 | 2 |\n"),
        "<table><thead><tr><th align=\"left\">a</th><th align=\"right\">b</th></tr></thead><tbody>\
         <tr><td align=\"left\">1</td><td align=\"right\">2</td></tr></tbody></table>"
    );
    assert_eq!(
        html("Apple\n:   A fruit.\n"),
        "<dl><dt>Apple</dt><dd>A fruit.</dd></dl>"
    );
}

#[test]
fn headings_have_ids_permalinks_and_a_toc() {
    let page = render(
        "# Title\n\nIntro.\n\n## Getting started\n\n## Getting started\n\n### Deep `code`\n\n#### Deeper\n\n## Custom {#mine .fancy}\n\n## Colon {: #colon }\n",
    );
    let got = super::squash(&page.html);
    assert!(got.starts_with("<h1 id=\"title\">Title<a class=\"headerlink\" href=\"#title\" title=\"Permanent link\">¶</a></h1>"), "{got}");
    assert!(got.contains("<h2 id=\"getting-started_1\">Getting started<a class=\"headerlink\" href=\"#getting-started_1\""), "{got}");
    assert!(
        got.contains("<h3 id=\"deep-code\">Deep <code>code</code><a"),
        "{got}"
    );
    assert!(
        got.contains("<h2 id=\"mine\" class=\"fancy\">Custom<a"),
        "{got}"
    );
    let toc: Vec<(u8, &str, &str)> = page
        .toc
        .iter()
        .map(|t| (t.level, t.id.as_str(), t.title.as_str()))
        .collect();
    assert_eq!(
        toc,
        [
            (2, "getting-started", "Getting started"),
            (2, "getting-started_1", "Getting started"),
            (3, "deep-code", "Deep code"),
            (2, "mine", "Custom"),
            (2, "colon", "Colon"),
        ]
    );
    assert_eq!(page.title, "Title");
    assert_eq!(page.sections[0].anchor, "");
    assert_eq!(page.sections[0].title, "Title");
    assert_eq!(page.sections[0].text, "Intro.");
    assert_eq!(page.sections[1].anchor, "getting-started");
}

#[test]
fn code_is_highlighted_with_classes() {
    let page = render(
        "```rust title=\"main.rs\" linenums=\"1\" hl_lines=\"2\"\nfn main() {}\n```\n\n```nosuchlang\n<b>&\n```\n\n    indented <i>\n",
    );
    assert!(page.html.contains("<div class=\"highlight\"><span class=\"filename\">main.rs</span><pre><code class=\"language-rust\"><span class=\"hl-source hl-rust\">"), "{}", page.html);
    assert!(
        page.html
            .contains("<span class=\"hl-storage hl-type hl-function hl-rust\">fn</span>"),
        "{}",
        page.html
    );
    assert!(
        page.html
            .contains("<pre><code class=\"language-nosuchlang\">&lt;b&gt;&amp;\n</code></pre>"),
        "{}",
        page.html
    );
    assert!(
        page.html
            .contains("<pre><code>indented &lt;i&gt;\n</code></pre>"),
        "{}",
        page.html
    );
    assert!(page.html.contains("Mermaid") || !page.html.contains("mermaid"));
    let css = callboard_docs::highlight_css();
    assert!(css.contains(".hl-keyword"), "{css}");
    let mermaid = html("```mermaid\ngraph TD; A-->B;\n```\n");
    assert_eq!(
        mermaid,
        "<div class=\"highlight\"><p class=\"diagram-note\">Mermaid diagram: shown as source</p><pre><code class=\"language-mermaid\">graph TD; A--&gt;B;</code></pre></div>"
    );
}

#[test]
fn inline_extensions() {
    assert_eq!(
        html("==mark== ^^ins^^ ~~del~~ H~2~O x^2^ a ~sub~ :rocket: https://example.com/x.\n"),
        "<p><mark>mark</mark> <ins>ins</ins> <del>del</del> H<sub>2</sub>O x<sup>2</sup> a <sub>sub</sub> 🚀 \
         <a href=\"https://example.com/x\" rel=\"noopener noreferrer\">https://example.com/x</a>.</p>"
    );
    assert_eq!(
        html("The HTML spec, not XHTML.\n\n*[HTML]: Hyper Text Markup Language\n"),
        "<p>The <abbr title=\"Hyper Text Markup Language\">HTML</abbr> spec, not XHTML.</p>"
    );
    // Inside inline code nothing applies.
    assert_eq!(
        html("`==x== :rocket:`\n"),
        "<p><code>==x== :rocket:</code></p>"
    );
    // Inside a link, a URL is not linked again.
    assert_eq!(
        html("[https://a.example/](https://b.example/)\n"),
        "<p><a href=\"https://b.example/\" rel=\"noopener noreferrer\">https://a.example/</a></p>"
    );
}

#[test]
fn front_matter_sets_the_title_and_is_not_shown() {
    let page = render("---\ntitle: From meta\n---\n# Heading\n");
    assert_eq!(page.title, "From meta");
    assert!(!page.html.contains("title:"), "{}", page.html);
}

#[test]
fn search_sections_are_split_and_bounded() {
    let long = "word ".repeat(2000);
    let page = render(&format!(
        "# T\n\nTop text.\n\n## One\n\nFirst {long}\n\n### Two\n\nSecond.\n\n```python\nx = 1\n```\n"
    ));
    let heads: Vec<(&str, &str)> = page
        .sections
        .iter()
        .map(|s| (s.anchor.as_str(), s.title.as_str()))
        .collect();
    assert_eq!(heads, [("", "T"), ("one", "One"), ("two", "Two")]);
    assert_eq!(page.sections[0].text, "Top text.");
    let one = &page.sections[1].text;
    assert!(
        one.starts_with("First word") && one.len() <= 4096 && one.len() > 4000,
        "{}",
        one.len()
    );
    assert_eq!(page.sections[2].text, "Second. x = 1");
}
