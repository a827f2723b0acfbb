//! A small relation graph drawn on the server as SVG: the entity in the
//! middle, what it belongs to on the left, what it has or uses on the right.
//! Every node is a link; all text goes through maud's escaping.

use callboard_catalog::EntityRef;
use maud::{Markup, html};

use super::{catalog::truncate, entity_href, kind_label, short_ref};

/// Relation types drawn on the left (the entity belongs to, or is used by, them).
const LEFT: &[&str] = &[
    "ownedBy",
    "partOf",
    "childOf",
    "memberOf",
    "apiProvidedBy",
    "apiConsumedBy",
    "dependencyOf",
];
/// Relation types drawn on the right (the entity has, provides or uses them).
const RIGHT: &[&str] = &[
    "ownerOf",
    "hasPart",
    "parentOf",
    "hasMember",
    "providesApi",
    "consumesApi",
    "dependsOn",
];
/// Nodes per side before the rest is summarised as "+N more".
const PER_SIDE: usize = 9;

const WIDTH: i64 = 900;
const NODE_W: i64 = 200;
const NODE_H: i64 = 40;
const STEP: i64 = 50;
const CENTER_W: i64 = 190;

/// Words for a relation type, as the edge label.
pub(crate) fn relation_label(kind: &str) -> &'static str {
    match kind {
        "ownedBy" => "owned by",
        "ownerOf" => "owns",
        "partOf" => "part of",
        "hasPart" => "has part",
        "providesApi" => "provides API",
        "apiProvidedBy" => "API provided by",
        "consumesApi" => "consumes API",
        "apiConsumedBy" => "API consumed by",
        "dependsOn" => "depends on",
        "dependencyOf" => "dependency of",
        "parentOf" => "parent of",
        "childOf" => "child of",
        "memberOf" => "member of",
        "hasMember" => "has member",
        _ => "related to",
    }
}

/// The graph of `me` and its relations (`(type, target)` pairs).
pub(crate) fn relation_graph(
    me: &EntityRef,
    title: &str,
    relations: &[(String, EntityRef)],
) -> Markup {
    let side = |types: &[&str]| -> Vec<(&'static str, &EntityRef)> {
        let mut nodes = Vec::new();
        for t in types {
            for (kind, target) in relations {
                if kind.eq_ignore_ascii_case(t) {
                    nodes.push((relation_label(t), target));
                }
            }
        }
        nodes
    };
    let left = side(LEFT);
    let right = side(RIGHT);
    let rows = left
        .len()
        .min(PER_SIDE + 1)
        .max(right.len().min(PER_SIDE + 1))
        .max(1);
    let height = i64::try_from(rows).unwrap_or(1) * STEP + 30;
    let cy = height / 2;
    let cx = (WIDTH - CENTER_W) / 2;
    let label = format!("Relations of {}", short_ref(me));
    html! {
        figure.graph {
            svg xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {WIDTH} {height}"))
                role="group" aria-label=(label) {
                title { (label) }
                (column(&left, 10, height, cx, cy, true))
                (column(&right, WIDTH - NODE_W - 10, height, cx + CENTER_W, cy, false))
                g.node.center {
                    rect x=(cx) y=(cy - NODE_H / 2 - 4) width=(CENTER_W) height=(NODE_H + 8) rx="8" {}
                    text.kind x=(cx + CENTER_W / 2) y=(cy - 6) text-anchor="middle" { (kind_label(&me.kind)) }
                    text x=(cx + CENTER_W / 2) y=(cy + 12) text-anchor="middle" font-weight="600" { (truncate(title, 24)) }
                }
            }
            @if left.is_empty() && right.is_empty() {
                figcaption { "No relations to draw." }
            } @else {
                figcaption { "Left: what it belongs to or is used by. Right: what it has, provides or uses. Every box is a link." }
            }
        }
    }
}

/// One column of nodes with edges to the centre node's side at (`edge_x`, `cy`).
fn column(
    nodes: &[(&'static str, &EntityRef)],
    x: i64,
    height: i64,
    edge_x: i64,
    cy: i64,
    left: bool,
) -> Markup {
    let shown = if nodes.len() > PER_SIDE + 1 {
        PER_SIDE
    } else {
        nodes.len()
    };
    let more = nodes.len() - shown;
    let count = i64::try_from(shown + usize::from(more > 0)).unwrap_or(0);
    let top = (height - count * STEP) / 2 + (STEP - NODE_H) / 2;
    let near_x = if left { x + NODE_W } else { x };
    html! {
        @for (i, (label, target)) in nodes.iter().take(shown).enumerate() {
            @let y = top + i64::try_from(i).unwrap_or(0) * STEP;
            @let ny = y + NODE_H / 2;
            @let (lx, anchor) = if left { (near_x + 8, "start") } else { (near_x - 8, "end") };
            path.edge d=(format!("M{edge_x},{cy} C{mid},{cy} {mid},{ny} {near_x},{ny}", mid = (edge_x + near_x) / 2)) {}
            text.edge-label x=(lx) y=(ny - 4) text-anchor=(anchor) { (label) }
            a href=(entity_href(target)) {
                g.node {
                    title { (label) " " (target.to_string()) }
                    rect x=(x) y=(y) width=(NODE_W) height=(NODE_H) rx="7" {}
                    text.kind x=(x + 10) y=(y + 15) { (kind_label(&target.kind)) }
                    text x=(x + 10) y=(y + 32) { (truncate(&short_ref(target), 26)) }
                }
            }
        }
        @if more > 0 {
            @let y = top + i64::try_from(shown).unwrap_or(0) * STEP;
            g.node {
                rect x=(x) y=(y) width=(NODE_W) height=(NODE_H) rx="7" {}
                text x=(x + 10) y=(y + 25) { "+" (more) " more (listed below)" }
            }
        }
    }
}
