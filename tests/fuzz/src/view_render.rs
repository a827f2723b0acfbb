//! The view renderer: UI data a plugin returns, turned into HTML. The input
//! is decoded into a view (any strings, any floats, any shape); the output
//! must hold no markup but the renderer's own: only known tags and
//! attributes, and links only to site paths or http(s).

use callboard::plugins::{View, ui};
use callboard::views;
use libfuzzer_sys::arbitrary::{Result, Unstructured};

/// One input: bytes decoded into a view.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(view) = view(&mut u) else {
        return;
    };
    // With a session, so buttons and forms render as forms.
    let forms = views::Forms {
        plugin: "fuzz".into(),
        csrf: Some("token".into()),
        slot: callboard::plugins::manifest::SlotKind::EntityCard,
        entity_ref: Some("component:default/x".into()),
        path: String::new(),
        query: String::new(),
    };
    let html = views::render(&view, Some(&forms)).into_string();
    if let Err(why) = check_html(&html) {
        panic!("{why}\n{html}");
    }
}

/// Fragments that exercise the escaping and link rules.
const TRICKY: [&str; 12] = [
    "javascript:alert(1)",
    "/",
    "//evil.example",
    "/\\evil.example",
    "https://x.example/",
    "http://",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[x](javascript:alert(1))",
    "\t",
    "&quot;\"'",
    "$",
];

fn text(u: &mut Unstructured<'_>) -> Result<String> {
    let mut s = String::new();
    for _ in 0..u.int_in_range(0..=3)? {
        if u.ratio(1, 3)? {
            s.push_str(u.choose(&TRICKY)?);
        } else {
            s.push_str(u.arbitrary::<&str>()?);
        }
    }
    Ok(s)
}

fn list<T>(
    u: &mut Unstructured<'_>,
    max: u32,
    f: impl Fn(&mut Unstructured<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let n = u.int_in_range(0..=max)?;
    (0..n).map(|_| f(u)).collect()
}

fn option<T>(
    u: &mut Unstructured<'_>,
    f: impl Fn(&mut Unstructured<'_>) -> Result<T>,
) -> Result<Option<T>> {
    Ok(if u.arbitrary()? { Some(f(u)?) } else { None })
}

fn tone(u: &mut Unstructured<'_>) -> Result<ui::Tone> {
    Ok(*u.choose(&[
        ui::Tone::Neutral,
        ui::Tone::Good,
        ui::Tone::Warning,
        ui::Tone::Bad,
        ui::Tone::Info,
    ])?)
}

fn link(u: &mut Unstructured<'_>) -> Result<ui::Link> {
    Ok(ui::Link {
        text: text(u)?,
        href: text(u)?,
    })
}

fn badge(u: &mut Unstructured<'_>) -> Result<ui::Badge> {
    Ok(ui::Badge {
        text: text(u)?,
        tone: tone(u)?,
    })
}

fn cell(u: &mut Unstructured<'_>) -> Result<ui::Cell> {
    Ok(match u.int_in_range(0..=3)? {
        0 => ui::Cell::Text(text(u)?),
        1 => ui::Cell::Number(text(u)?),
        2 => ui::Cell::Link(link(u)?),
        _ => ui::Cell::Badge(badge(u)?),
    })
}

fn chart(u: &mut Unstructured<'_>) -> Result<ui::Chart> {
    Ok(ui::Chart {
        title: option(u, text)?,
        unit: option(u, text)?,
        series: list(u, 4, |u| {
            Ok(ui::Series {
                name: text(u)?,
                points: list(u, 40, |u| {
                    Ok(ui::Point {
                        label: text(u)?,
                        value: u.arbitrary()?,
                    })
                })?,
            })
        })?,
    })
}

fn block(u: &mut Unstructured<'_>) -> Result<ui::Block> {
    Ok(match u.int_in_range(0..=12)? {
        0 => ui::Block::Stats(list(u, 4, |u| {
            Ok(ui::Stat {
                label: text(u)?,
                value: text(u)?,
                change: option(u, |u| {
                    Ok(ui::Change {
                        text: text(u)?,
                        direction: *u.choose(&[
                            ui::Direction::Up,
                            ui::Direction::Down,
                            ui::Direction::Flat,
                        ])?,
                        tone: tone(u)?,
                    })
                })?,
            })
        })?),
        1 => ui::Block::Table(ui::Table {
            columns: list(u, 4, text)?,
            rows: list(u, 4, |u| list(u, 4, cell))?,
        }),
        2 => ui::Block::List(list(u, 4, cell)?),
        3 => ui::Block::Badges(list(u, 4, badge)?),
        4 => ui::Block::Link(link(u)?),
        5 => ui::Block::Text(text(u)?),
        6 | 7 => ui::Block::Markdown(text(u)?),
        8 => ui::Block::LineChart(chart(u)?),
        9 => ui::Block::BarChart(chart(u)?),
        10 => ui::Block::Button(ui::Button {
            label: text(u)?,
            action: name(u)?,
            values: list(u, 3, |u| Ok((name(u)?, text(u)?)))?,
            tone: tone(u)?,
        }),
        11 => ui::Block::Form(ui::Form {
            action: name(u)?,
            fields: list(u, 4, field)?,
            submit: text(u)?,
            hidden: list(u, 3, |u| Ok((name(u)?, text(u)?)))?,
        }),
        _ => ui::Block::Notice(ui::Notice {
            tone: tone(u)?,
            title: text(u)?,
            detail: option(u, text)?,
        }),
    })
}

/// An action or field name: usually valid, sometimes anything.
fn name(u: &mut Unstructured<'_>) -> Result<String> {
    if u.ratio(3, 4)? {
        Ok(
            u.choose(&["bump", "restart-deployment", "note", "a_b", "x1"])?
                .to_string(),
        )
    } else {
        text(u)
    }
}

fn number(u: &mut Unstructured<'_>) -> Result<Option<f64>> {
    option(u, |u| u.arbitrary::<f64>())
}

fn field(u: &mut Unstructured<'_>) -> Result<ui::Field> {
    Ok(ui::Field {
        name: name(u)?,
        label: text(u)?,
        kind: match u.int_in_range(0..=3)? {
            0 => ui::FieldKind::Text {
                value: text(u)?,
                placeholder: option(u, text)?,
                max_length: u.arbitrary()?,
            },
            1 => ui::FieldKind::Select {
                options: list(u, 4, |u| Ok((text(u)?, text(u)?)))?,
                selected: option(u, text)?,
            },
            2 => ui::FieldKind::Checkbox(u.arbitrary()?),
            _ => ui::FieldKind::Number {
                value: number(u)?,
                min: number(u)?,
                max: number(u)?,
                step: number(u)?,
            },
        },
        required: u.arbitrary()?,
        help: option(u, text)?,
    })
}

fn view(u: &mut Unstructured<'_>) -> Result<View> {
    Ok(View {
        title: text(u)?,
        cards: list(u, 3, |u| {
            Ok(ui::Card {
                title: option(u, text)?,
                blocks: list(u, 4, block)?,
            })
        })?,
    })
}

/// Tags the renderer (maud templates, CommonMark without raw HTML, SVG
/// charts) writes.
const TAGS: &[&str] = &[
    "a",
    "button",
    "fieldset",
    "form",
    "input",
    "label",
    "option",
    "select",
    "small",
    "blockquote",
    "br",
    "circle",
    "code",
    "dd",
    "del",
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
    "li",
    "line",
    "ol",
    "p",
    "polyline",
    "pre",
    "rect",
    "section",
    "span",
    "strong",
    "svg",
    "table",
    "tbody",
    "td",
    "text",
    "th",
    "thead",
    "title",
    "tr",
    "ul",
];

const ATTRIBUTES: &[&str] = &[
    "action",
    "checked",
    "disabled",
    "max",
    "maxlength",
    "method",
    "min",
    "name",
    "placeholder",
    "required",
    "selected",
    "step",
    "type",
    "value",
    "aria-hidden",
    "aria-label",
    "class",
    "cx",
    "cy",
    "fill",
    "height",
    "href",
    "points",
    "r",
    "rel",
    "role",
    "scope",
    "start",
    "text-anchor",
    "title",
    "viewbox",
    "width",
    "x",
    "x1",
    "x2",
    "y",
    "y1",
    "y2",
];

/// Checks every tag of `html` (text is escaped, so each `<` + letter opens one).
pub fn check_html(html: &str) -> std::result::Result<(), String> {
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        if rest.starts_with('/') {
            continue;
        }
        let name_end = rest
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(rest.len());
        let name = rest[..name_end].to_ascii_lowercase();
        if !TAGS.contains(&name.as_str()) {
            return Err(format!("unexpected tag <{name}>"));
        }
        rest = &rest[name_end..];
        loop {
            rest = rest.trim_start();
            if let Some(after) = rest.strip_prefix('>').or_else(|| rest.strip_prefix("/>")) {
                rest = after;
                break;
            }
            let attr_end = rest
                .find(|c: char| c == '=' || c == '>' || c.is_whitespace())
                .ok_or_else(|| format!("unterminated <{name}>"))?;
            let attr = rest[..attr_end].to_ascii_lowercase();
            if !ATTRIBUTES.contains(&attr.as_str()) {
                return Err(format!("unexpected attribute {attr:?} on <{name}>"));
            }
            rest = &rest[attr_end..];
            if let Some(after) = rest.strip_prefix("=\"") {
                let close = after
                    .find('"')
                    .ok_or_else(|| format!("unterminated {attr} on <{name}>"))?;
                let value = &after[..close];
                if attr == "href" && !safe_link(value) {
                    return Err(format!("unsafe link {value:?}"));
                }
                // Forms post only to the portal's action route for this plugin.
                if attr == "action" && !value.starts_with("/plugins/fuzz/-/actions/") {
                    return Err(format!("a form posting elsewhere: {value:?}"));
                }
                if attr == "type"
                    && !["hidden", "submit", "text", "number", "checkbox", "button"]
                        .contains(&value)
                {
                    return Err(format!("input type {value:?}"));
                }
                rest = &after[close + 1..];
            } else if rest.starts_with('=') {
                return Err(format!("unquoted {attr} on <{name}>"));
            }
        }
    }
    Ok(())
}

/// Whether a browser would take the attribute value as a link within the
/// site or to http(s): it decodes entities, drops tabs and newlines anywhere
/// and control characters and spaces at the ends before parsing the URL.
/// `mailto:` is allowed too.
fn safe_link(value: &str) -> bool {
    let decoded = value
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&amp;", "&");
    let url: String = decoded
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    let url = url.trim_matches(|c: char| c <= ' ');
    let lower = url.to_ascii_lowercase();
    // CommonMark email autolinks keep their `mailto:` even when the renderer
    // empties the address; mail links run nothing.
    url.is_empty()
        || lower.starts_with("mailto:")
        || (url.starts_with('/') && !url.starts_with("//") && !url.starts_with("/\\"))
        || lower.starts_with("http://")
        || lower.starts_with("https://")
}
