//! One page's Markdown (after the line-level pass) to HTML, table of
//! contents, search sections and the links it checked.
//!
//! pulldown-cmark parses; this module rewrites its events (headings get ids
//! and permalinks, code is highlighted, links are resolved, alerts become
//! admonitions, text runs get the inline extensions) and lets pulldown-cmark
//! write the HTML. Sanitising happens after, on the whole page.

use std::collections::HashSet;

use pulldown_cmark::{
    Alignment, CodeBlockKind, CowStr, Event, HeadingLevel, LinkType, Options, Parser, Tag, TagEnd,
};

use crate::blocks::{LineProblem, escape};
use crate::inline::{self, Inline};
use crate::links::{SiteIndex, Target};
use crate::model::{SearchSection, TocEntry};

mod code;
mod slug;

use code::{alert, code_block};
use slug::{slugify, unique};

/// Deepest element nesting passed on to the sanitiser, from Markdown or
/// from raw HTML each.
const MAX_TAG_DEPTH: usize = 64;

/// Deepest nesting of raw HTML (including the containers' own markup).
const MAX_RAW_DEPTH: usize = 256;

/// Elements without a closing tag.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr",
];

/// Most text kept per search section.
const SECTION_TEXT_BYTES: usize = 4096;

/// The Markdown of a page with each line's source line number.
pub(crate) struct Source<'a> {
    pub markdown: &'a str,
    /// Byte offset where each line of `markdown` starts.
    pub line_starts: &'a [usize],
    /// The source line each line of `markdown` stands for.
    pub line_numbers: &'a [u32],
}

impl Source<'_> {
    fn line_at(&self, offset: usize) -> u32 {
        let i = self.line_starts.partition_point(|start| *start <= offset);
        self.line_numbers
            .get(i.saturating_sub(1))
            .copied()
            .unwrap_or(1)
    }
}

/// Where the page sits, for links and titles.
pub(crate) struct PageContext<'a> {
    pub docs_path: &'a str,
    pub url: &'a str,
    pub title: &'a str,
    pub index: &'a SiteIndex,
    pub abbreviations: &'a [(String, String)],
}

/// A rendered page before sanitising.
#[derive(Debug, Default)]
pub(crate) struct Rendered {
    pub html: String,
    pub toc: Vec<TocEntry>,
    pub sections: Vec<SearchSection>,
    /// Docs-relative keys of the links and images checked.
    pub links: Vec<String>,
    pub problems: Vec<LineProblem>,
}

struct Heading<'a> {
    level: HeadingLevel,
    id: Option<String>,
    classes: Vec<String>,
    events: Vec<Event<'a>>,
    text: String,
}

struct Code {
    info: String,
    text: String,
}

struct Renderer<'a, 'c> {
    cx: &'c PageContext<'c>,
    out: Vec<Event<'a>>,
    heading: Option<Heading<'a>>,
    code: Option<Code>,
    used_ids: HashSet<String>,
    /// One entry per open link: whether an `<a>` was written for it.
    links_open: Vec<bool>,
    /// One entry per open image: whether it was dropped.
    images_open: Vec<bool>,
    in_table_head: bool,
    table_aligns: Vec<Alignment>,
    table_col: usize,
    in_metadata: bool,
    /// Adjacent text events joined, so inline extensions see whole runs
    /// (pulldown-cmark splits `x^2^` at the caret it tried).
    pending: Option<CowStr<'a>>,
    /// The run once it has more than one piece (appending to one buffer
    /// keeps a line split into many pieces linear).
    pending_more: Option<String>,
    /// Open tags from pulldown-cmark, each with whether it was dropped for
    /// being nested too deep.
    open_tags: Vec<bool>,
    /// Approximate nesting of raw HTML written so far.
    raw_depth: usize,
    /// One entry per open superscript: whether it was `^^insert^^`.
    supers_open: Vec<bool>,
    result: Rendered,
}

pub(crate) fn render(source: &Source<'_>, cx: &PageContext<'_>) -> Rendered {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_HEADING_ATTRIBUTES
        | Options::ENABLE_GFM
        | Options::ENABLE_DEFINITION_LIST
        | Options::ENABLE_SUPERSCRIPT
        | Options::ENABLE_SUBSCRIPT
        | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS;
    let mut r = Renderer {
        cx,
        out: Vec::new(),
        heading: None,
        code: None,
        used_ids: HashSet::new(),
        links_open: Vec::new(),
        images_open: Vec::new(),
        in_table_head: false,
        table_aligns: Vec::new(),
        table_col: 0,
        in_metadata: false,
        pending: None,
        pending_more: None,
        open_tags: Vec::new(),
        raw_depth: 0,
        supers_open: Vec::new(),
        result: Rendered::default(),
    };
    r.result.sections.push(SearchSection {
        anchor: String::new(),
        title: cx.title.to_owned(),
        text: String::new(),
    });
    for (event, range) in Parser::new_ext(source.markdown, options).into_offset_iter() {
        let event = match event {
            Event::Text(text) if r.code.is_none() => {
                match (&mut r.pending_more, &r.pending) {
                    (Some(more), _) => more.push_str(&text),
                    (None, Some(first)) => r.pending_more = Some(format!("{first}{text}")),
                    (None, None) => r.pending = Some(text),
                }
                continue;
            }
            other => other,
        };
        if let Some(text) = r.take_pending() {
            r.event(Event::Text(text), source.line_at(range.start));
        }
        // Past MAX_TAG_DEPTH tags are flattened (their content kept): the
        // HTML5 parser in the sanitiser walks the open-element stack per
        // element, so unbounded nesting would be quadratic.
        let event = match event {
            Event::Start(tag) => {
                let drop = r.open_tags.len() >= MAX_TAG_DEPTH;
                r.open_tags.push(drop);
                if drop {
                    continue;
                }
                Event::Start(tag)
            }
            Event::End(tag) => {
                if r.open_tags.pop().unwrap_or(false) {
                    continue;
                }
                Event::End(tag)
            }
            other => other,
        };
        if let Event::Start(Tag::Superscript) = event {
            // pulldown-cmark reads `^^x^^` as a superscript too;
            // pymdownx.caret makes it an insertion.
            let insert = source.markdown[range.start..].starts_with("^^");
            r.supers_open.push(insert);
            if insert {
                r.html("<ins>".to_owned());
                continue;
            }
        }
        if let Event::End(TagEnd::Superscript) = event
            && r.supers_open.pop() == Some(true)
        {
            r.html("</ins>".to_owned());
            continue;
        }
        let line = source.line_at(range.start);
        r.event(event, line);
    }
    if let Some(text) = r.take_pending() {
        r.event(Event::Text(text), 0);
    }
    let mut html = String::with_capacity(source.markdown.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, r.out.into_iter());
    r.result.html = html;
    r.result.links.sort();
    r.result.links.dedup();
    r.result
}

impl<'a> Renderer<'a, '_> {
    fn take_pending(&mut self) -> Option<CowStr<'a>> {
        let first = self.pending.take();
        self.pending_more.take().map(CowStr::from).or(first)
    }

    /// Raw HTML past MAX_RAW_DEPTH open elements is shown as text, for the
    /// same reason as deep Markdown nesting is flattened. Containers are
    /// raw HTML too, so this bound is above what 32 nested tabs need.
    fn raw_html(&mut self, html: CowStr<'a>, block: bool) {
        let mut depth = self.raw_depth;
        for tag in html.split('<').skip(1) {
            let name: String = tag
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '/')
                .collect::<String>()
                .to_ascii_lowercase();
            let self_closing = tag.split('>').next().is_some_and(|t| t.ends_with('/'));
            if let Some(closing) = name.strip_prefix('/') {
                if !closing.is_empty() {
                    depth = depth.saturating_sub(1);
                }
            } else if !name.is_empty() && !self_closing && !VOID.contains(&name.as_str()) {
                depth += 1;
            }
        }
        if depth > MAX_RAW_DEPTH {
            self.emit(Event::Text(html));
            return;
        }
        self.raw_depth = depth;
        self.emit(if block {
            Event::Html(html)
        } else {
            Event::InlineHtml(html)
        });
    }

    fn emit(&mut self, event: Event<'a>) {
        match &mut self.heading {
            Some(heading) => heading.events.push(event),
            None => self.out.push(event),
        }
    }

    fn html(&mut self, html: String) {
        self.emit(Event::InlineHtml(CowStr::from(html)));
    }

    fn search_text(&mut self, text: &str) {
        if let Some(heading) = &mut self.heading {
            heading.text.push_str(text);
            return;
        }
        let Some(section) = self.result.sections.last_mut() else {
            return;
        };
        let room = SECTION_TEXT_BYTES.saturating_sub(section.text.len());
        if room == 0 {
            return;
        }
        if !section.text.is_empty() && !section.text.ends_with(' ') {
            section.text.push(' ');
        }
        let text = text.trim();
        let mut cut = text.len().min(room);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        section.text.push_str(&text[..cut]);
    }

    fn event(&mut self, event: Event<'a>, line: u32) {
        if self.in_metadata {
            if let Event::End(TagEnd::MetadataBlock(_)) = event {
                self.in_metadata = false;
            }
            return;
        }
        if let Some(code) = &mut self.code {
            match event {
                Event::Text(text) => code.text.push_str(&text),
                Event::End(TagEnd::CodeBlock) => self.end_code(),
                _ => {}
            }
            return;
        }
        match event {
            Event::Start(Tag::MetadataBlock(_)) => self.in_metadata = true,
            Event::Start(Tag::Heading {
                level, id, classes, ..
            }) => {
                self.heading = Some(Heading {
                    level,
                    id: id.map(|id| id.to_string()),
                    classes: classes.iter().map(ToString::to_string).collect(),
                    events: Vec::new(),
                    text: String::new(),
                });
            }
            Event::End(TagEnd::Heading(_)) => self.end_heading(),
            Event::Start(Tag::CodeBlock(kind)) => {
                let info = match kind {
                    CodeBlockKind::Fenced(info) => info.to_string(),
                    CodeBlockKind::Indented => String::new(),
                };
                self.code = Some(Code {
                    info,
                    text: String::new(),
                });
            }
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                ..
            }) => self.start_link(link_type, &dest_url, &title, line),
            Event::End(TagEnd::Link) => {
                if self.links_open.pop() == Some(true) {
                    self.html("</a>".to_owned());
                }
            }
            Event::Start(Tag::Image {
                link_type,
                dest_url,
                title,
                id,
            }) => match self.resolve(&dest_url, line, "image") {
                Some((href, _)) => {
                    self.images_open.push(false);
                    self.emit(Event::Start(Tag::Image {
                        link_type,
                        dest_url: CowStr::from(href),
                        title,
                        id,
                    }));
                }
                None => self.images_open.push(true),
            },
            Event::End(TagEnd::Image) => {
                if self.images_open.pop() == Some(false) {
                    self.emit(Event::End(TagEnd::Image));
                }
            }
            Event::Start(Tag::BlockQuote(Some(kind))) => {
                let (class, title) = alert(kind);
                self.html(format!(
                    "<div class=\"admonition {class}\">\n<p class=\"admonition-title\">{title}</p>\n"
                ));
            }
            Event::End(TagEnd::BlockQuote(Some(_))) => self.html("</div>\n".to_owned()),
            Event::Start(Tag::Table(aligns)) => {
                self.table_aligns = aligns;
                self.emit(Event::Start(Tag::Table(Vec::new())));
            }
            Event::Start(Tag::TableHead) => {
                self.in_table_head = true;
                self.table_col = 0;
                self.emit(Event::Start(Tag::TableHead));
            }
            Event::End(TagEnd::TableHead) => {
                self.in_table_head = false;
                self.emit(Event::End(TagEnd::TableHead));
            }
            Event::Start(Tag::TableRow) => {
                self.table_col = 0;
                self.emit(Event::Start(Tag::TableRow));
            }
            Event::Start(Tag::TableCell) => {
                // `align` rather than pulldown-cmark's `style`, which the
                // sanitiser removes.
                let tag = if self.in_table_head { "th" } else { "td" };
                let align = match self.table_aligns.get(self.table_col) {
                    Some(Alignment::Left) => " align=\"left\"",
                    Some(Alignment::Center) => " align=\"center\"",
                    Some(Alignment::Right) => " align=\"right\"",
                    _ => "",
                };
                self.html(format!("<{tag}{align}>"));
            }
            Event::End(TagEnd::TableCell) => {
                let tag = if self.in_table_head { "th" } else { "td" };
                self.table_col += 1;
                self.html(format!("</{tag}>"));
            }
            Event::Text(text) => {
                self.search_text(&text);
                if !self.images_open.is_empty() {
                    self.emit(Event::Text(text));
                    return;
                }
                let cx = Inline {
                    abbreviations: self.cx.abbreviations,
                    in_link: !self.links_open.is_empty(),
                };
                match inline::render(&text, &cx) {
                    Some(html) => self.html(html),
                    None => self.emit(Event::Text(text)),
                }
            }
            Event::Html(html) => self.raw_html(html, true),
            Event::InlineHtml(html) => self.raw_html(html, false),
            Event::Code(text) => {
                self.search_text(&text);
                self.emit(Event::Code(text));
            }
            other => self.emit(other),
        }
    }

    /// Resolves a link or image target, recording problems; `None` when it
    /// is dropped. The flag is whether the target is missing.
    fn resolve(&mut self, dest: &str, line: u32, what: &str) -> Option<(String, TargetKind)> {
        match self.cx.index.resolve(self.cx.docs_path, self.cx.url, dest) {
            Target::Keep { href, external } => Some((
                href,
                if external {
                    TargetKind::External
                } else {
                    TargetKind::Plain
                },
            )),
            Target::Internal { href, key, broken } => {
                self.result.links.push(key);
                if broken {
                    self.result
                        .problems
                        .push((line, format!("{what} target {dest:?} does not exist")));
                    Some((href, TargetKind::Broken))
                } else {
                    Some((href, TargetKind::Plain))
                }
            }
            Target::Drop(reason) => {
                self.result
                    .problems
                    .push((line, format!("{what} {dest:?} removed: {reason}")));
                None
            }
        }
    }

    fn start_link(&mut self, link_type: LinkType, dest: &str, title: &str, line: u32) {
        let dest = if link_type == LinkType::Email {
            format!("mailto:{dest}")
        } else {
            dest.to_owned()
        };
        let Some((href, kind)) = self.resolve(&dest, line, "link") else {
            self.links_open.push(false);
            return;
        };
        let mut tag = format!("<a href=\"{}\"", escape(&href));
        if !title.is_empty() {
            tag.push_str(&format!(" title=\"{}\"", escape(title)));
        }
        match kind {
            TargetKind::External => tag.push_str(" rel=\"noopener noreferrer\""),
            TargetKind::Broken => tag.push_str(" class=\"broken\""),
            TargetKind::Plain => {}
        }
        tag.push('>');
        self.links_open.push(true);
        self.html(tag);
    }

    fn end_heading(&mut self) {
        let Some(heading) = self.heading.take() else {
            return;
        };
        let text = heading.text.trim().to_owned();
        let id = match heading.id {
            Some(id) => {
                self.used_ids.insert(id.clone());
                id
            }
            None => unique(slugify(&text), &mut self.used_ids),
        };
        let mut inner = String::new();
        pulldown_cmark::html::push_html(&mut inner, heading.events.into_iter());
        let level = heading.level as u8;
        let class = if heading.classes.is_empty() {
            String::new()
        } else {
            format!(" class=\"{}\"", escape(&heading.classes.join(" ")))
        };
        let id_attr = escape(&id);
        self.html(format!(
            "<h{level} id=\"{id_attr}\"{class}>{inner}<a class=\"headerlink\" href=\"#{id_attr}\" title=\"Permanent link\">¶</a></h{level}>\n"
        ));
        if level == 2 || level == 3 {
            self.result.toc.push(TocEntry {
                level,
                id: id.clone(),
                title: text.clone(),
            });
        }
        if level >= 2 {
            self.result.sections.push(SearchSection {
                anchor: id,
                title: text,
                text: String::new(),
            });
        }
    }

    fn end_code(&mut self) {
        let Some(code) = self.code.take() else {
            return;
        };
        self.search_text(&code.text);
        let html = code_block(&code.info, &code.text);
        self.html(html);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TargetKind {
    Plain,
    External,
    Broken,
}
