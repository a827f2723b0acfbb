//! A view's UI data as HTML and SVG: every string a plugin sent is escaped
//! (maud), links are kept only if site-relative or http(s), markdown loses
//! raw HTML and images, and charts are drawn here.

use std::fmt::Write as _;

use maud::{Markup, PreEscaped, html};

use crate::plugins::{View, manifest::SlotKind, ui};

/// Where a view's buttons and forms post, and the context they carry back:
/// `POST /plugins/<plugin>/-/actions/<action>` with the session's CSRF
/// token, the slot, the entity and the page path and query, so the portal
/// can run the action as the person and render the view again.
#[derive(Debug, Clone)]
pub struct Forms {
    /// The plugin whose view it is.
    pub plugin: String,
    /// The session's CSRF token; none: the controls are disabled.
    pub csrf: Option<String>,
    /// The slot the view fills.
    pub slot: SlotKind,
    /// Entity slots: the entity's ref.
    pub entity_ref: Option<String>,
    /// Pages: the path below the plugin's page root.
    pub path: String,
    /// Pages: the raw query string.
    pub query: String,
}

/// The host's own form fields (a plugin's names never start with `_`).
pub const CSRF_FIELD: &str = "_csrf";
/// The slot field.
pub const SLOT_FIELD: &str = "_slot";
/// The entity field.
pub const ENTITY_FIELD: &str = "_entity";
/// The page path field.
pub const PATH_FIELD: &str = "_path";
/// The page query field.
pub const QUERY_FIELD: &str = "_query";

/// Whether `name` may name an action: 1-64 of `a-z`, `0-9`, `-`.
pub fn valid_action(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Whether `name` may name a plugin's form value: 1-64 of `a-z`, `0-9`,
/// `-`, `_`, not starting with `_` (the host's own).
pub fn valid_field(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with('_')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Renders a view's cards; `forms` says where its buttons and forms post
/// (none: they are shown disabled).
pub fn render(view: &View, forms: Option<&Forms>) -> Markup {
    html! {
        div.plugin-view {
            @for card in &view.cards {
                section.plugin-card {
                    @if let Some(title) = &card.title {
                        h3 { (title) }
                    }
                    @for block in &card.blocks {
                        (render_block(block, forms))
                    }
                }
            }
        }
    }
}

/// A form posting `action` with the host's context fields, or a disabled
/// fieldset without a session; `Err` names what is invalid.
fn action_form(
    forms: Option<&Forms>,
    action: &str,
    values: &[(String, String)],
    class: &str,
    inner: &Markup,
) -> Markup {
    if !valid_action(action) {
        return invalid("an action name must be 1-64 lower-case letters, digits or '-'");
    }
    if let Some((name, _)) = values.iter().find(|(n, _)| !valid_field(n)) {
        return invalid(&format!(
            "value name {:?} must be 1-64 lower-case letters, digits, '-' or '_', not starting with '_'",
            super::super::plugins::capabilities::log::truncate(name, 64)
        ));
    }
    match forms.filter(|f| f.csrf.is_some()) {
        Some(f) => html! {
            form method="post" class=(class)
                action={ "/plugins/" (f.plugin) "/-/actions/" (action) } {
                input type="hidden" name=(CSRF_FIELD) value=(f.csrf.as_deref().unwrap_or_default());
                input type="hidden" name=(SLOT_FIELD) value=(f.slot.as_str());
                @if let Some(r) = &f.entity_ref { input type="hidden" name=(ENTITY_FIELD) value=(r); }
                input type="hidden" name=(PATH_FIELD) value=(f.path);
                input type="hidden" name=(QUERY_FIELD) value=(f.query);
                @for (name, value) in values { input type="hidden" name=(name) value=(value); }
                (inner)
            }
        },
        None => html! {
            fieldset class=(class) disabled title="Sign in to use this" { (inner) }
        },
    }
}

/// A notice: a view's, or an action's outcome.
pub fn render_notice(n: &ui::Notice) -> Markup {
    html! {
        div class={"notice " (tone(n.tone))} role="status" {
            strong { (n.title) }
            @if let Some(d) = &n.detail { p { (d) } }
        }
    }
}

fn invalid(why: &str) -> Markup {
    html! { p.plugin-error role="alert" { "A control was left out: " (why) "." } }
}

fn render_field(field: &ui::Field) -> Markup {
    if !valid_field(&field.name) {
        return invalid(&format!(
            "field name {:?} must be 1-64 lower-case letters, digits, '-' or '_', not starting with '_'",
            super::super::plugins::capabilities::log::truncate(&field.name, 64)
        ));
    }
    let f = |v: Option<f64>| v.filter(|v| v.is_finite()).map(|v| v.to_string());
    html! {
        label.field {
            span { (field.label) }
            @match &field.kind {
                ui::FieldKind::Text { value, placeholder, max_length } => {
                    input type="text" name=(field.name) value=(value) placeholder=[placeholder]
                        maxlength=[max_length.map(|m| m.min(16_384))] required[field.required];
                }
                ui::FieldKind::Select { options, selected } => {
                    select name=(field.name) required[field.required] {
                        @for (value, label) in options {
                            option value=(value) selected[selected.as_deref() == Some(value.as_str())] { (label) }
                        }
                    }
                }
                ui::FieldKind::Checkbox(on) => {
                    input type="checkbox" name=(field.name) checked[*on] required[field.required];
                }
                ui::FieldKind::Number { value, min, max, step } => {
                    input type="number" name=(field.name) value=[f(*value)] min=[f(*min)] max=[f(*max)]
                        step=[f(*step)] required[field.required];
                }
            }
            @if let Some(help) = &field.help { small.help { (help) } }
        }
    }
}

fn tone(t: ui::Tone) -> &'static str {
    match t {
        ui::Tone::Neutral => "tone-neutral",
        ui::Tone::Good => "tone-good",
        ui::Tone::Warning => "tone-warning",
        ui::Tone::Bad => "tone-bad",
        ui::Tone::Info => "tone-info",
    }
}

/// `href` if it is safe to link to: a site-relative path or http(s).
///
/// Browsers drop tabs and newlines from URLs and read `\` as `/`, so
/// `/\t/evil.example` or `/\\evil.example` would leave the site: an href
/// with any whitespace, control character or backslash is refused outright
/// (a real URL encodes them), as is one that starts with `//`.
pub(crate) fn safe_href(href: &str) -> Option<&str> {
    let href = href.trim_matches(|c: char| c == ' ');
    if href
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return None;
    }
    if href.starts_with('/') {
        return (!href.starts_with("//")).then_some(href);
    }
    let lower = href.to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://")).then_some(href)
}

fn render_link(link: &ui::Link) -> Markup {
    match safe_href(&link.href) {
        Some(href) if href.starts_with('/') => html! { a href=(href) { (link.text) } },
        Some(href) => html! { a href=(href) rel="noopener noreferrer" { (link.text) } },
        None => html! { span.unsafe-link title="link removed: not http(s)" { (link.text) } },
    }
}

fn render_cell(cell: &ui::Cell) -> Markup {
    match cell {
        ui::Cell::Text(t) | ui::Cell::Number(t) => html! { (t) },
        ui::Cell::Link(l) => render_link(l),
        ui::Cell::Badge(b) => html! { span class={"badge " (tone(b.tone))} { (b.text) } },
    }
}

fn render_block(block: &ui::Block, forms: Option<&Forms>) -> Markup {
    match block {
        ui::Block::Stats(stats) => html! {
            dl.stats {
                @for s in stats {
                    div.stat {
                        dt { (s.label) }
                        dd.value { (s.value) }
                        @if let Some(c) = &s.change {
                            dd class={"change " (tone(c.tone))} {
                                span aria-hidden="true" { (match c.direction {
                                    ui::Direction::Up => "▲ ",
                                    ui::Direction::Down => "▼ ",
                                    ui::Direction::Flat => "■ ",
                                }) }
                                (c.text)
                            }
                        }
                    }
                }
            }
        },
        ui::Block::Table(t) => html! {
            div.table-scroll {
                table {
                    thead { tr { @for c in &t.columns { th scope="col" { (c) } } } }
                    tbody {
                        @for row in &t.rows {
                            tr {
                                @for cell in row {
                                    @if matches!(cell, ui::Cell::Number(_)) {
                                        td.num { (render_cell(cell)) }
                                    } @else {
                                        td { (render_cell(cell)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
        ui::Block::List(items) => html! {
            ul { @for item in items { li { (render_cell(item)) } } }
        },
        ui::Block::Badges(badges) => html! {
            p.badges { @for b in badges { span class={"badge " (tone(b.tone))} { (b.text) } " " } }
        },
        ui::Block::Link(l) => html! { p { (render_link(l)) } },
        ui::Block::Text(t) => html! { p { (t) } },
        ui::Block::Markdown(md) => html! { div.markdown { (markdown(md)) } },
        ui::Block::LineChart(c) => chart(c, ChartKind::Line),
        ui::Block::BarChart(c) => chart(c, ChartKind::Bar),
        ui::Block::Notice(n) => render_notice(n),
        ui::Block::Button(b) => action_form(
            forms,
            &b.action,
            &b.values,
            "plugin-action",
            &html! { button type="submit" class={"button " (tone(b.tone))} { (b.label) } },
        ),
        ui::Block::Form(f) => action_form(
            forms,
            &f.action,
            &f.hidden,
            "plugin-form",
            &html! {
                @for field in &f.fields { (render_field(field)) }
                button type="submit" class="button" { (f.submit) }
            },
        ),
    }
}

/// CommonMark to HTML without raw HTML (shown as text), without images
/// (their alt text stays), and with unsafe link targets removed.
fn markdown(text: &str) -> PreEscaped<String> {
    use pulldown_cmark::{Event, Parser, Tag, TagEnd};
    let events = Parser::new(text).filter_map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Some(Event::Text(raw)),
        Event::Start(Tag::Image { .. }) | Event::End(TagEnd::Image) => None,
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => {
            let dest_url = if safe_href(&dest_url).is_some() {
                dest_url
            } else {
                "".into()
            };
            Some(Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }))
        }
        other => Some(other),
    });
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, events);
    PreEscaped(out)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ChartKind {
    Line,
    Bar,
}

const CHART_W: f64 = 640.0;
const CHART_H: f64 = 220.0;
const PAD_L: f64 = 56.0;
const PAD_R: f64 = 12.0;
const PAD_T: f64 = 12.0;
const PAD_B: f64 = 28.0;

/// Formats an axis or value figure compactly: 1234567 → "1.2M".
fn compact(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if a.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn chart(c: &ui::Chart, kind: ChartKind) -> Markup {
    let labels: Vec<&str> = c
        .series
        .first()
        .map(|s| s.points.iter().map(|p| p.label.as_str()).collect())
        .unwrap_or_default();
    let values = c
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.value))
        .filter(|v| v.is_finite());
    let max = values.fold(0.0_f64, f64::max);
    let max = if max <= 0.0 { 1.0 } else { max };
    let unit = c.unit.as_deref().unwrap_or("");
    let figure = |v: f64| with_unit(unit, &compact(v));
    let n = labels.len().max(1);
    let plot_w = CHART_W - PAD_L - PAD_R;
    let plot_h = CHART_H - PAD_T - PAD_B;
    let y = |v: f64| PAD_T + plot_h - (v.max(0.0) / max) * plot_h;
    let slot_w = plot_w / n as f64;
    let x_center = |i: usize| PAD_L + slot_w * (i as f64 + 0.5);
    let label_every = n.div_ceil(8).max(1);
    let description = format!(
        "{} chart{}: {}",
        if kind == ChartKind::Line {
            "Line"
        } else {
            "Bar"
        },
        c.title
            .as_deref()
            .map(|t| format!(" of {t}"))
            .unwrap_or_default(),
        c.series
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let series_count = c.series.len().max(1);
    html! {
        figure.chart {
            @if let Some(title) = &c.title { figcaption { (title) } }
            svg viewBox={"0 0 " (CHART_W) " " (CHART_H)} role="img" aria-label=(description) {
                title { (description) }
                line.axis x1=(PAD_L) y1=(y(0.0)) x2=(CHART_W - PAD_R) y2=(y(0.0)) {}
                line.grid x1=(PAD_L) y1=(y(max)) x2=(CHART_W - PAD_R) y2=(y(max)) {}
                text.tick x=(PAD_L - 6.0) y=(y(max) + 4.0) text-anchor="end" { (figure(max)) }
                text.tick x=(PAD_L - 6.0) y=(y(0.0) + 4.0) text-anchor="end" { (figure(0.0)) }
                @for (i, label) in labels.iter().enumerate() {
                    // The last label also when off the stride, if it fits
                    // beside the one before.
                    @if i % label_every == 0 || (i + 1 == n && label_width(label) <= slot_w * (i % label_every) as f64) {
                        @let shown = fit(label, slot_w * label_every as f64);
                        text.tick x=(x_center(i)) y=(CHART_H - 8.0) text-anchor="middle" {
                            @if shown != *label { title { (label) } }
                            (shown)
                        }
                    }
                }
                @for (si, s) in c.series.iter().enumerate() {
                    @let class = format!("series series-{}", si % 6);
                    @if kind == ChartKind::Line {
                        polyline class=(class) fill="none" points=(points(s, &x_center, &y)) {}
                        @for (i, p) in s.points.iter().enumerate().filter(|(_, p)| p.value.is_finite()) {
                            circle class=(class) cx=(x_center(i)) cy=(y(p.value)) r="3" {
                                title { (s.name) " · " (p.label) ": " (figure(p.value)) }
                            }
                        }
                    } @else {
                        @let bar_w = slot_w * 0.8 / series_count as f64;
                        @for (i, p) in s.points.iter().enumerate().filter(|(_, p)| p.value.is_finite()) {
                            @let x = PAD_L + slot_w * i as f64 + slot_w * 0.1 + bar_w * si as f64;
                            rect class=(class) x=(x) y=(y(p.value)) width=(bar_w.max(1.0)) height=((y(0.0) - y(p.value)).max(0.0)) {
                                title { (s.name) " · " (p.label) ": " (figure(p.value)) }
                            }
                        }
                    }
                }
            }
            @if c.series.len() > 1 {
                ul.legend {
                    @for (si, s) in c.series.iter().enumerate() {
                        li { span class={"swatch series-" (si % 6)} aria-hidden="true" {} (s.name) }
                    }
                }
            }
        }
    }
}

/// `figure` with its unit: a currency symbol goes before it (`$12k`), any
/// other symbol right after it (`12%`), a word after a space (`12 runs`).
fn with_unit(unit: &str, figure: &str) -> String {
    let mut chars = unit.chars();
    match (chars.next(), chars.next()) {
        (None, _) => figure.to_owned(),
        (Some(c @ ('$' | '€' | '£' | '¥' | '₹')), None) => format!("{c}{figure}"),
        (Some(c), None) if !c.is_alphanumeric() => format!("{figure}{c}"),
        _ => format!("{figure} {unit}"),
    }
}

/// Width of one character of tick text, in chart units (11px text averages
/// under this).
const CHAR_W: f64 = 6.5;

fn label_width(label: &str) -> f64 {
    label.chars().count() as f64 * CHAR_W
}

/// `label` cut (with "…") to about `width` chart units at the tick font
/// size, so neighbouring axis labels do not overlap; the full label stays
/// in the bar's or point's tooltip.
fn fit(label: &str, width: f64) -> String {
    let max = ((width / CHAR_W).floor() as usize).max(3);
    if label.chars().count() <= max {
        return label.to_owned();
    }
    let mut out: String = label.chars().take(max - 1).collect();
    out.push('…');
    out
}

fn points(s: &ui::Series, x: &impl Fn(usize) -> f64, y: &impl Fn(f64) -> f64) -> String {
    let mut out = String::new();
    for (i, p) in s.points.iter().enumerate() {
        if p.value.is_finite() {
            let _ = write!(out, "{:.1},{:.1} ", x(i), y(p.value));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_go_before_or_after() {
        assert_eq!(with_unit("$", "4.2k"), "$4.2k");
        assert_eq!(with_unit("runs", "12"), "12 runs");
        assert_eq!(with_unit("", "12"), "12");
        assert_eq!(with_unit("%", "12"), "12%");
    }

    #[test]
    fn links_are_kept_only_when_safe() {
        assert_eq!(safe_href("/catalog"), Some("/catalog"));
        assert_eq!(safe_href("https://x.example"), Some("https://x.example"));
        assert_eq!(safe_href("javascript:alert(1)"), None);
        assert_eq!(safe_href("//evil.example"), None);
        assert_eq!(safe_href(" JaVaScRiPt:alert(1)"), None);
        assert_eq!(safe_href("data:text/html,x"), None);
        assert_eq!(safe_href(" /catalog "), Some("/catalog"));
    }

    #[test]
    fn links_that_browsers_send_elsewhere_are_refused() {
        for href in [
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r/evil.example",
            "/\\evil.example",
            "\\/evil.example",
            "/\\/evil.example",
            " //evil.example",
            "\t//evil.example",
            "//evil.example",
            "/\u{0}/evil.example",
            "/\u{a0}/evil.example",
            "https://ok.example/a b",
            "java\nscript:alert(1)",
        ] {
            assert_eq!(safe_href(href), None, "{href:?}");
        }
        assert_eq!(
            safe_href("/plugins/cost/teams/x?y=1"),
            Some("/plugins/cost/teams/x?y=1")
        );
    }

    #[test]
    fn axis_labels_are_cut_to_their_slot() {
        assert_eq!(fit("2026-09", 71.5), "2026-09");
        assert_eq!(fit("Shipping Experience", 71.5), "Shipping E…");
        assert_eq!(fit("Tomasz Wójcik", 300.0), "Tomasz Wójcik");
        assert_eq!(fit("abcdef", 1.0), "ab…");
    }

    #[test]
    fn markdown_shows_raw_html_as_text() {
        let html =
            markdown("hi <script>alert(1)</script> [x](javascript:alert(1)) ![i](http://t/p.png)")
                .into_string();
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(!html.contains("<img"), "{html}");
    }

    #[test]
    fn every_string_is_escaped() {
        let evil = "<img src=x onerror=alert(1)>";
        let view = View {
            title: evil.into(),
            cards: vec![ui::Card {
                title: Some(evil.into()),
                blocks: vec![
                    ui::Block::Text(evil.into()),
                    ui::Block::Stats(vec![ui::Stat {
                        label: evil.into(),
                        value: evil.into(),
                        change: None,
                    }]),
                    ui::Block::Table(ui::Table {
                        columns: vec![evil.into()],
                        rows: vec![vec![ui::Cell::Link(ui::Link {
                            text: evil.into(),
                            href: "javascript:alert(1)".into(),
                        })]],
                    }),
                    ui::Block::LineChart(ui::Chart {
                        title: Some(evil.into()),
                        unit: Some(evil.into()),
                        series: vec![ui::Series {
                            name: evil.into(),
                            points: vec![ui::Point {
                                label: evil.into(),
                                value: 1.0,
                            }],
                        }],
                    }),
                ],
            }],
        };
        let html = render(&view, None).into_string();
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(html.contains("&lt;img"), "{html}");
    }
}
