//! UI as data: describe what a slot shows and the host renders it, escaping
//! every string. Declare the slots in `plugin.toml`:
//!
//! ```toml
//! [[views]]
//! slot = "entity-card"      # or "entity-tab", "page"
//! title = "Cost"
//! kinds = ["component", "system"]   # entity slots: which kinds (default: all)
//! ```
//!
//! and answer [`crate::Plugin::view`]:
//!
//! ```
//! use callboard_sdk::ui::{Block, Card, Change, Stat, View};
//!
//! let view = View::new("Cost").card(
//!     Card::new("This month").block(Block::Stats(vec![
//!         Stat::new("Monthly cost", "$4,210").with_change(Change::up_bad("+12%")),
//!     ])),
//! );
//! assert_eq!(view.cards.len(), 1);
//! ```

use serde_json::Value;

use crate::bindings::exports::callboard::plugin::ui as wit;
pub use crate::bindings::exports::callboard::plugin::ui::{
    Badge, Block, Card, Cell, Change, Chart, Direction, Link, Notice, Point, Series, Slot, Stat,
    Table, Tone, View,
};

/// What the host asks a plugin to render.
#[derive(Debug, Clone)]
pub struct ViewRequest {
    /// The slot.
    pub slot: Slot,
    /// For entity slots: the entity, in the Backstage shape.
    pub entity: Option<Value>,
    /// For pages: the path below the plugin's page root, starting with `/`.
    pub path: String,
    /// For pages: the raw query string.
    pub query: String,
}

impl ViewRequest {
    pub(crate) fn from_wit(r: wit::ViewRequest) -> Self {
        Self {
            slot: r.slot,
            entity: r.entity.and_then(|e| serde_json::from_str(&e).ok()),
            path: r.path,
            query: r.query,
        }
    }

    /// The entity's kind, lower-case (empty outside entity slots).
    pub fn kind(&self) -> String {
        self.entity
            .as_ref()
            .and_then(|e| e["kind"].as_str())
            .unwrap_or("")
            .to_ascii_lowercase()
    }

    /// The entity's `metadata.annotations[name]`.
    pub fn annotation(&self, name: &str) -> Option<&str> {
        self.entity.as_ref()?["metadata"]["annotations"][name].as_str()
    }

    /// The first value of query parameter `name`, decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

impl View {
    /// A view with a title and no cards.
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            cards: Vec::new(),
        }
    }

    /// Adds a card.
    pub fn card(mut self, card: Card) -> Self {
        self.cards.push(card);
        self
    }
}

impl Card {
    /// A card with a title.
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: Some(title.into()),
            blocks: Vec::new(),
        }
    }

    /// A card without a title.
    pub fn untitled() -> Self {
        Self {
            title: None,
            blocks: Vec::new(),
        }
    }

    /// Adds a block.
    pub fn block(mut self, block: Block) -> Self {
        self.blocks.push(block);
        self
    }
}

impl Stat {
    /// A figure without a change indicator.
    pub fn new(label: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            value: value.into(),
            change: None,
        }
    }

    /// Adds a change indicator.
    pub fn with_change(mut self, change: Change) -> Self {
        self.change = Some(change);
        self
    }
}

impl Change {
    /// A change with every part given.
    pub fn new(text: impl Into<String>, direction: Direction, tone: Tone) -> Self {
        Self {
            text: text.into(),
            direction,
            tone,
        }
    }
    /// Up, and that is good.
    pub fn up_good(text: impl Into<String>) -> Self {
        Self::new(text, Direction::Up, Tone::Good)
    }
    /// Up, and that is bad (e.g. cost).
    pub fn up_bad(text: impl Into<String>) -> Self {
        Self::new(text, Direction::Up, Tone::Bad)
    }
    /// Down, and that is good (e.g. cost).
    pub fn down_good(text: impl Into<String>) -> Self {
        Self::new(text, Direction::Down, Tone::Good)
    }
    /// Down, and that is bad.
    pub fn down_bad(text: impl Into<String>) -> Self {
        Self::new(text, Direction::Down, Tone::Bad)
    }
    /// No change.
    pub fn flat(text: impl Into<String>) -> Self {
        Self::new(text, Direction::Flat, Tone::Neutral)
    }
}

impl Link {
    /// A link; the host keeps only relative (`/...`) and http(s) targets.
    pub fn new(text: impl Into<String>, href: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            href: href.into(),
        }
    }
}

impl Badge {
    /// A badge.
    pub fn new(text: impl Into<String>, tone: Tone) -> Self {
        Self {
            text: text.into(),
            tone,
        }
    }
}

impl Cell {
    /// A text cell.
    pub fn text(text: impl Into<String>) -> Self {
        Cell::Text(text.into())
    }
    /// A right-aligned figure.
    pub fn number(text: impl Into<String>) -> Self {
        Cell::Number(text.into())
    }
    /// A link cell.
    pub fn link(text: impl Into<String>, href: impl Into<String>) -> Self {
        Cell::Link(Link::new(text, href))
    }
    /// A badge cell.
    pub fn badge(text: impl Into<String>, tone: Tone) -> Self {
        Cell::Badge(Badge::new(text, tone))
    }
}

impl Table {
    /// A table with column headings and no rows.
    pub fn new<S: Into<String>>(columns: impl IntoIterator<Item = S>) -> Self {
        Self {
            columns: columns.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(mut self, cells: Vec<Cell>) -> Self {
        self.rows.push(cells);
        self
    }
}

impl Chart {
    /// A chart with no series.
    pub fn new(title: Option<&str>, unit: Option<&str>) -> Self {
        Self {
            title: title.map(str::to_owned),
            unit: unit.map(str::to_owned),
            series: Vec::new(),
        }
    }

    /// Adds a series of `(label, value)` points.
    pub fn series<L: Into<String>>(
        mut self,
        name: impl Into<String>,
        points: impl IntoIterator<Item = (L, f64)>,
    ) -> Self {
        self.series.push(Series {
            name: name.into(),
            points: points
                .into_iter()
                .map(|(label, value)| Point {
                    label: label.into(),
                    value,
                })
                .collect(),
        });
        self
    }
}

impl Notice {
    /// A notice.
    pub fn new(tone: Tone, title: impl Into<String>, detail: Option<String>) -> Self {
        Self {
            tone,
            title: title.into(),
            detail,
        }
    }
}
