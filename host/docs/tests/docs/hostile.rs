//! Hostile input stays inert, and bounded.

use std::time::Instant;

use super::{render, site};
use callboard_docs::build;

/// No tag in `html` may run, load or restyle anything. Escaped text
/// (`&lt;script&gt;`) is inert and allowed.
fn assert_inert(html: &str) {
    for tag in html.split('<').skip(1) {
        let tag = tag
            .split('>')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let name = tag.split([' ', '/', '\n']).next().unwrap_or_default();
        assert!(
            ![
                "script", "svg", "iframe", "object", "embed", "style", "math", "form", "frame",
                "base", "meta", "link"
            ]
            .contains(&name),
            "<{name}> survived in {html}"
        );
        for bad in [
            " on",
            "style=",
            "javascript:",
            "data:",
            "vbscript:",
            "srcdoc",
            "formaction",
        ] {
            assert!(!tag.contains(bad), "{bad:?} survived in <{tag}> of {html}");
        }
    }
}

#[test]
fn raw_html_attacks_are_removed() {
    let cases = [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "[x](<java\tscript:alert(1)>)",
        "<svg><script>alert(1)</script></svg>",
        "<svg onload=alert(1)>",
        "<a href=\"data:text/html,<script>alert(1)</script>\">x</a>",
        "<a href=\"javascript:alert(1)\">x</a>",
        "![x](data:image/png;base64,AAAA)",
        "<iframe src=\"https://evil.example\"></iframe>",
        "<p style=\"background:url(x)\">styled</p>",
        "<style>body{display:none}</style>",
        "<object data=\"x\"></object><embed src=\"x\">",
        "<math><mi>x</mi></math>",
        "<form action=\"https://evil.example\"><input type=\"submit\"></form>",
        "[x](vbscript:msgbox)",
        "<div onclick=\"alert(1)\">div</div>",
        "!!! note \"<img src=x onerror=alert(1)>\"\n    body\n",
        "=== \"<script>alert(1)</script>\"\n    body\n",
    ];
    for case in cases {
        let page = render(case);
        assert_inert(&page.html);
    }
    // What is allowed survives.
    let page =
        render("<kbd>Ctrl</kbd> <details><summary>More</summary>\n\nHidden.\n\n</details>\n");
    assert!(page.html.contains("<kbd>Ctrl</kbd>"), "{}", page.html);
    assert!(
        page.html.contains("<details><summary>More</summary>"),
        "{}",
        page.html
    );
}

#[test]
fn dropped_links_are_problems() {
    let page = render("[x](javascript:alert(1)) [y](//evil.example/x)\n");
    assert_eq!(page.html, "<p>x y</p>\n");
    assert_eq!(page.problems.len(), 2, "{:?}", page.problems);
    assert_eq!(page.problems[0].line, Some(1));
}

#[test]
fn paths_cannot_leave_the_site() {
    let files = site(&[(
        "index.md",
        "--8<-- \"../../etc/passwd\"\n--8<-- \"/etc/passwd\"\n--8<-- \"..\\\\..\\\\x\"\n\n![x](../../../secret.png) [y](../outside.md)\n",
    )]);
    let out = build(&files, None);
    let page = &out.pages[0];
    assert!(!page.html.contains("<img"), "{}", page.html);
    assert!(!page.html.contains("secret.png"), "{}", page.html);
    assert!(!page.html.contains("href"), "{}", page.html);
    let lines: Vec<Option<u32>> = page.problems.iter().map(|p| p.line).collect();
    assert_eq!(
        lines,
        [Some(1), Some(2), Some(3), Some(5), Some(5)],
        "{:?}",
        page.problems
    );
    assert!(page.problems[0].message.contains("refused"));
    assert!(
        page.problems[3].message.contains("leaves the docs folder"),
        "{:?}",
        page.problems[3]
    );
}

#[test]
fn deep_nesting_and_long_lines_are_bounded() {
    let start = Instant::now();
    // 200 nested admonitions: the first 32 levels are containers, the rest text.
    let mut text = String::new();
    for depth in 0..200 {
        text.push_str(&"    ".repeat(depth));
        text.push_str("!!! note\n");
    }
    text.push_str(&"    ".repeat(200));
    text.push_str("deep\n");
    let page = render(&text);
    assert_eq!(page.html.matches("class=\"admonition note\"").count(), 32);
    assert!(
        page.problems
            .iter()
            .any(|p| p.message.contains("nest deeper than 32")),
        "{:?}",
        page.problems
    );

    // Deep block quotes, lists and emphasis: pulldown-cmark and the sanitiser
    // must not recurse per level.
    for hostile in [
        ">".repeat(50_000),
        "- ".repeat(20_000),
        format!("{}x{}", "*".repeat(50_000), "*".repeat(50_000)),
        "<div>".repeat(50_000),
        format!("{}x", "[".repeat(50_000)),
    ] {
        let page = render(&hostile);
        assert_inert(&page.html);
    }

    // A 2 MB line of near-markers.
    let long = "==a ^b ~c :d http://e ".repeat(100_000);
    let page = render(&long);
    assert!(page.html.len() > long.len() / 2);
    assert!(start.elapsed().as_secs() < 60, "took {:?}", start.elapsed());
}
