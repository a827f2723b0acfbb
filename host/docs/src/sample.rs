//! A generated site for benchmarks and tests.

use crate::files::Files;

/// Pages per generated section folder.
const PER_SECTION: usize = 50;

/// Builds a site of `pages` pages (at least one) that uses every supported
/// extension on every page: for benchmarks (the host times 5,000 pages) and
/// tests. It has no problems when built: every link, image and snippet
/// resolves.
pub fn sample_site(pages: usize) -> Files {
    let pages = pages.max(1);
    let mut files = Files::new();
    let mut add = |path: &str, text: String| {
        files.insert(path, text).expect("generated paths are valid");
    };
    add(
        "mkdocs.yml",
        "site_name: Sample\nsite_description: A generated site\nrepo_url: https://example.com/sample\n\
         edit_uri: edit/main/docs/\nmarkdown_extensions:\n  - admonition\n  - pymdownx.details\n  \
         - pymdownx.tabbed:\n      alternate_style: true\n  - pymdownx.superfences\n  - pymdownx.snippets\n  \
         - pymdownx.emoji:\n      emoji_index: !!python/name:material.extensions.emoji.twemoji\n  \
         - toc:\n      permalink: true\n  - footnotes\n  - def_list\n  - abbr\n  - attr_list\nplugins:\n  - techdocs-core\n"
            .to_owned(),
    );
    add(
        "snippets/notice.md",
        "!!! info \"Shared notice\"\n    This text comes from a snippet.\n".to_owned(),
    );
    add(
        "snippets/example.py",
        "def greet(name):\n    return f\"hello {name}\"\n".to_owned(),
    );
    files
        .insert("docs/img/diagram.png", b"\x89PNG\r\n\x1a\n".to_vec())
        .expect("valid path");
    let mut add = |path: &str, text: String| {
        files.insert(path, text).expect("generated paths are valid");
    };
    add("docs/index.md", page_text(0, "index.md", pages));
    for i in 1..pages {
        let path = page_path(i);
        add(&format!("docs/{path}"), page_text(i, &path, pages));
    }
    files
}

fn page_path(i: usize) -> String {
    if i == 0 {
        "index.md".to_owned()
    } else {
        format!("section-{}/page-{i}.md", i / PER_SECTION)
    }
}

/// A path from the folder of `from` to the docs root.
fn up(from: &str) -> &'static str {
    if from.contains('/') { "../" } else { "" }
}

fn page_text(i: usize, path: &str, pages: usize) -> String {
    let root = up(path);
    let next = page_path((i + 1) % pages);
    let code = format!(
        "```python title=\"greet.py\" linenums=\"1\" hl_lines=\"2\"\n\
         def greet(name: str) -> str:\n    \"\"\"Say hello {i}.\"\"\"\n    return f\"hello {{name}}\"\n\n\
         for n in range({i}):\n    print(greet(str(n)))\n```"
    );
    format!(
        r#"# Page {i}

Welcome to page {i}. See the [home page]({root}index.md), the [next page]({root}{next}#usage)
and https://example.com/docs/{i}. The HTML spec[^spec] is ==important==, ^^new^^, ~~old~~,
H~2~O and x^2^ :rocket:.

![Diagram]({root}img/diagram.png)

## Usage {{#usage}}

!!! note "Remember"
    Admonitions hold **Markdown**, like `code` and [links]({root}index.md).

    ??? tip "Nested details"
        Hidden until opened.

???+ warning
    Open by default.

=== "Python"

    {code_indented}

=== "Rust"

    ```rust
    fn main() {{
        println!("page {i}");
    }}
    ```

    !!! example
        An admonition inside a tab.

> [!NOTE]
> A GitHub alert on page {i}.

## Reference

| Name | Kind | Default |
|:-----|:----:|--------:|
| `timeout` | duration | 30s |
| `retries` | integer | {i} |

- [x] written
- [ ] reviewed

Term
:   Its definition, on page {i}.

## Reference

```mermaid
graph TD; A-->B;
```

```unknownlang
<not highlighted>
```

--8<-- "snippets/notice.md"

```python
--8<-- "snippets/example.py"
```

### Details {{: .custom }}

The end of page {i}.

[^spec]: The specification.

*[HTML]: Hyper Text Markup Language
"#,
        code_indented = code.replace('\n', "\n    "),
    )
}
