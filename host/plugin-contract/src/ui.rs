//! UI as data: what a plugin view holds, whichever API version described
//! it. The host renders it (escaping every string); it never reaches a
//! browser as the plugin sent it.
//!
//! The names follow the WIT `ui` interface (API 0.3 and later), so a
//! version's conversion is a field-by-field copy.

use serde::Serialize;

/// How a value should be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tone {
    Neutral,
    Good,
    Warning,
    Bad,
    Info,
}

/// Which way a change went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Up,
    Down,
    Flat,
}

/// A change against a previous value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub text: String,
    pub direction: Direction,
    pub tone: Tone,
}

/// One figure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stat {
    pub label: String,
    pub value: String,
    pub change: Option<Change>,
}

/// A link.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Link {
    pub text: String,
    pub href: String,
}

/// A coloured label.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Badge {
    pub text: String,
    pub tone: Tone,
}

/// A table cell or list item.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cell {
    Text(String),
    /// Right-aligned in tables.
    Number(String),
    Link(Link),
    Badge(Badge),
}

/// A table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

/// One point of a series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    pub label: String,
    pub value: f64,
}

/// A named series of points.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    pub name: String,
    pub points: Vec<Point>,
}

/// A chart; every series shares the labels of the first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chart {
    pub title: Option<String>,
    pub unit: Option<String>,
    pub series: Vec<Series>,
}

/// A highlighted message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notice {
    pub tone: Tone,
    pub title: String,
    pub detail: Option<String>,
}

/// A button that runs one of the plugin's actions (API 0.4+).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Button {
    pub label: String,
    pub action: String,
    pub values: Vec<(String, String)>,
    pub tone: Tone,
}

/// A form whose submit button runs one of the plugin's actions (API 0.4+).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Form {
    pub action: String,
    pub fields: Vec<Field>,
    pub submit: String,
    pub hidden: Vec<(String, String)>,
}

/// One field of a form.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Field {
    pub name: String,
    pub label: String,
    pub kind: FieldKind,
    pub required: bool,
    pub help: Option<String>,
}

/// What a field takes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    Text {
        value: String,
        placeholder: Option<String>,
        max_length: Option<u32>,
    },
    Select {
        /// (value, label) pairs.
        options: Vec<(String, String)>,
        selected: Option<String>,
    },
    Checkbox(bool),
    Number {
        value: Option<f64>,
        min: Option<f64>,
        max: Option<f64>,
        step: Option<f64>,
    },
}

/// One piece of a card.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Block {
    Stats(Vec<Stat>),
    Table(Table),
    List(Vec<Cell>),
    Badges(Vec<Badge>),
    Link(Link),
    Text(String),
    /// CommonMark; raw HTML in it is shown as text.
    Markdown(String),
    LineChart(Chart),
    BarChart(Chart),
    Notice(Notice),
    Button(Button),
    Form(Form),
}

/// A card of blocks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Card {
    pub title: Option<String>,
    pub blocks: Vec<Block>,
}

/// What a slot shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct View {
    pub title: String,
    pub cards: Vec<Card>,
}

/// What an action reports, shown above the view rendered again.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub notice: Notice,
}
