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

pub use crate::bindings::exports::callboard::plugin::ui::{
    Badge, Block, Button, Card, Cell, Change, Chart, Direction, Field, FieldKind, Form, Link,
    Notice, NumberField, Point, SelectField, Series, Slot, Stat, Table, TextField, Tone, View,
};
use crate::{Principal, bindings::exports::callboard::plugin::ui as wit};

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
    /// Who is looking (plugin API 0.4).
    pub principal: Principal,
}

impl ViewRequest {
    pub(crate) fn from_wit(r: wit::ViewRequest) -> Self {
        Self {
            slot: r.slot,
            entity: r.entity.and_then(|e| serde_json::from_str(&e).ok()),
            path: r.path,
            query: r.query,
            principal: Principal::from_wit(r.principal),
        }
    }

    /// The entity's ref, `kind:namespace/name` lower-case (none outside
    /// entity slots).
    pub fn entity_ref(&self) -> Option<String> {
        let e = self.entity.as_ref()?;
        Some(
            format!(
                "{}:{}/{}",
                e["kind"].as_str()?,
                e["metadata"]["namespace"].as_str().unwrap_or("default"),
                e["metadata"]["name"].as_str()?
            )
            .to_lowercase(),
        )
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

/// A button or form of one of the plugin's views was pressed (plugin API
/// 0.4): what [`crate::Plugin::action`] gets.
#[derive(Debug, Clone)]
pub struct ActionRequest {
    /// The action's name, from the button or form.
    pub name: String,
    /// The values sent (fields and hidden values), in order.
    pub values: Vec<(String, String)>,
    /// Where the button was, and who pressed it (`view.principal`).
    pub view: ViewRequest,
}

impl ActionRequest {
    pub(crate) fn from_wit(
        r: crate::bindings::exports::callboard::plugin::actions::ActionRequest,
    ) -> Self {
        Self {
            name: r.name,
            values: r.values,
            view: ViewRequest::from_wit(r.view),
        }
    }

    /// Who pressed it.
    pub fn principal(&self) -> &Principal {
        &self.view.principal
    }

    /// The first value named `name`.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Button {
    /// A button running `action` (lower-case letters, digits, `-`).
    pub fn new(label: impl Into<String>, action: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            action: action.into(),
            values: Vec::new(),
            tone: Tone::Neutral,
        }
    }

    /// Sends `name=value` with it (names: lower-case letters, digits, `-`, `_`).
    pub fn value(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.values.push((name.into(), value.into()));
        self
    }

    /// Draws it in `tone` (`Tone::Bad` for a destructive action).
    pub fn tone(mut self, tone: Tone) -> Self {
        self.tone = tone;
        self
    }
}

impl Form {
    /// A form running `action`, with a submit button labelled `submit`.
    pub fn new(action: impl Into<String>, submit: impl Into<String>) -> Self {
        Self {
            action: action.into(),
            fields: Vec::new(),
            submit: submit.into(),
            hidden: Vec::new(),
        }
    }

    /// Adds a field.
    pub fn field(mut self, field: Field) -> Self {
        self.fields.push(field);
        self
    }

    /// Sends `name=value` with it, not shown.
    pub fn hidden(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.hidden.push((name.into(), value.into()));
        self
    }
}

impl Field {
    fn new(name: impl Into<String>, label: impl Into<String>, kind: FieldKind) -> Self {
        Self {
            name: name.into(),
            label: label.into(),
            kind,
            required: false,
            help: None,
        }
    }

    /// A one-line text field.
    pub fn text(
        name: impl Into<String>,
        label: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        Self::new(
            name,
            label,
            FieldKind::Text(TextField {
                value: value.into(),
                placeholder: None,
                max_length: None,
            }),
        )
    }

    /// A choice among `(value, label)` options.
    pub fn select<V: Into<String>, L: Into<String>>(
        name: impl Into<String>,
        label: impl Into<String>,
        options: impl IntoIterator<Item = (V, L)>,
        selected: Option<&str>,
    ) -> Self {
        Self::new(
            name,
            label,
            FieldKind::Select(SelectField {
                options: options
                    .into_iter()
                    .map(|(v, l)| (v.into(), l.into()))
                    .collect(),
                selected: selected.map(str::to_owned),
            }),
        )
    }

    /// A checkbox (sent as `on` when checked).
    pub fn checkbox(name: impl Into<String>, label: impl Into<String>, checked: bool) -> Self {
        Self::new(name, label, FieldKind::Checkbox(checked))
    }

    /// A number within optional bounds.
    pub fn number(
        name: impl Into<String>,
        label: impl Into<String>,
        value: Option<f64>,
        (min, max): (Option<f64>, Option<f64>),
    ) -> Self {
        Self::new(
            name,
            label,
            FieldKind::Number(NumberField {
                value,
                min,
                max,
                step: None,
            }),
        )
    }

    /// The browser refuses to submit the form without a value.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Shown under the field.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}
