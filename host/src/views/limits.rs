//! Bringing a plugin's view within `[plugins.views]` before it is rendered.
//!
//! Rendering multiplies: an empty table cell becomes `<td></td>`, a chart
//! point a circle with a tooltip, a `<` four bytes. Unchecked, ~16 MB of
//! plugin output became 119-152 MiB of HTML. So long tables and lists are
//! cut (with a note saying so), long chart series are averaged down, and
//! then what is left is counted: items and text over their caps refuse the
//! view. The rendered HTML is capped by the caller.

use crate::{
    config::ViewLimits,
    plugins::{View, ui},
};

/// Cuts and downsamples `view` to `limits`; `Err` says which cap the rest
/// is over.
pub(super) fn fit(view: &mut View, limits: &ViewLimits) -> Result<(), String> {
    for card in &mut view.cards {
        let blocks = std::mem::take(&mut card.blocks);
        for mut block in blocks {
            let cut = cut(&mut block, limits);
            card.blocks.push(block);
            if let Some(note) = cut {
                card.blocks.push(note);
            }
        }
    }
    let (items, text) = measure(view);
    if items > limits.max_items {
        return Err(format!(
            "{items} items (cards, blocks, cells, points...) are over the limit of {}",
            limits.max_items
        ));
    }
    if text > limits.max_text_bytes {
        return Err(format!(
            "{text} bytes of text are over the limit of {} bytes",
            limits.max_text_bytes
        ));
    }
    Ok(())
}

/// Cuts one block to `max_rows` rows or items (returning a notice saying
/// how many were left out) and averages its charts down to `max_points`.
fn cut(block: &mut ui::Block, limits: &ViewLimits) -> Option<ui::Block> {
    let max = limits.max_rows;
    let (len, what) = match block {
        ui::Block::Table(t) => (truncate(&mut t.rows, max), "rows"),
        ui::Block::List(items) => (truncate(items, max), "items"),
        ui::Block::Badges(badges) => (truncate(badges, max), "badges"),
        ui::Block::Stats(stats) => (truncate(stats, max), "figures"),
        ui::Block::LineChart(c) | ui::Block::BarChart(c) => {
            for series in &mut c.series {
                downsample(&mut series.points, limits.max_points);
            }
            return None;
        }
        _ => return None,
    };
    (len > max).then(|| {
        ui::Block::Notice(ui::Notice {
            tone: ui::Tone::Info,
            title: format!("Showing the first {max} of {len} {what}"),
            detail: Some(format!(
                "The portal shows at most {max} {what} of one block (plugins.views.max_rows)."
            )),
        })
    })
}

/// Cuts `list` to `max` and returns its length before.
fn truncate<T>(list: &mut Vec<T>, max: usize) -> usize {
    let len = list.len();
    list.truncate(max);
    list.shrink_to_fit();
    len
}

/// Averages `points` down to at most `max` buckets of neighbouring points;
/// a bucket is labelled `first – last`.
fn downsample(points: &mut Vec<ui::Point>, max: usize) {
    let n = points.len();
    if n <= max {
        return;
    }
    if max == 0 {
        points.clear();
        return;
    }
    let mut rest = std::mem::take(points).into_iter();
    let mut out = Vec::with_capacity(max);
    for b in 0..max {
        let size = (b + 1) * n / max - b * n / max;
        let bucket: Vec<ui::Point> = rest.by_ref().take(size).collect();
        let (Some(first), Some(last)) = (bucket.first(), bucket.last()) else {
            continue;
        };
        let label = if bucket.len() == 1 {
            first.label.clone()
        } else {
            format!("{} – {}", first.label, last.label)
        };
        let finite: Vec<f64> = bucket
            .iter()
            .map(|p| p.value)
            .filter(|v| v.is_finite())
            .collect();
        let value = if finite.is_empty() {
            f64::NAN
        } else {
            finite.iter().sum::<f64>() / finite.len() as f64
        };
        out.push(ui::Point { label, value });
    }
    *points = out;
}

/// Bytes of names and values.
fn pairs(pairs: &[(String, String)]) -> usize {
    pairs.iter().map(|(n, v)| n.len() + v.len()).sum()
}

/// How many items (cards, blocks, columns, cells, list items, badges,
/// stats, series, points) and how many bytes of text `view` holds.
fn measure(view: &View) -> (usize, usize) {
    let mut items = 0;
    let mut text = view.title.len();
    let link = |l: &ui::Link| l.text.len() + l.href.len();
    let cell = |c: &ui::Cell| match c {
        ui::Cell::Text(t) | ui::Cell::Number(t) => t.len(),
        ui::Cell::Link(l) => link(l),
        ui::Cell::Badge(b) => b.text.len(),
    };
    for card in &view.cards {
        items += 1 + card.blocks.len();
        text += card.title.as_ref().map_or(0, String::len);
        for block in &card.blocks {
            match block {
                ui::Block::Stats(stats) => {
                    items += stats.len();
                    text += stats
                        .iter()
                        .map(|s| {
                            s.label.len()
                                + s.value.len()
                                + s.change.as_ref().map_or(0, |c| c.text.len())
                        })
                        .sum::<usize>();
                }
                ui::Block::Table(t) => {
                    items += t.columns.len() + t.rows.iter().map(Vec::len).sum::<usize>();
                    text += t.columns.iter().map(String::len).sum::<usize>();
                    text += t.rows.iter().flatten().map(cell).sum::<usize>();
                }
                ui::Block::List(list) => {
                    items += list.len();
                    text += list.iter().map(cell).sum::<usize>();
                }
                ui::Block::Badges(badges) => {
                    items += badges.len();
                    text += badges.iter().map(|b| b.text.len()).sum::<usize>();
                }
                ui::Block::Link(l) => text += link(l),
                ui::Block::Text(t) | ui::Block::Markdown(t) => text += t.len(),
                ui::Block::LineChart(c) | ui::Block::BarChart(c) => {
                    text += c.title.as_ref().map_or(0, String::len);
                    text += c.unit.as_ref().map_or(0, String::len);
                    for s in &c.series {
                        items += 1 + s.points.len();
                        text += s.name.len();
                        text += s.points.iter().map(|p| p.label.len()).sum::<usize>();
                    }
                }
                ui::Block::Notice(n) => {
                    text += n.title.len() + n.detail.as_ref().map_or(0, String::len);
                }
                ui::Block::Button(b) => {
                    items += b.values.len();
                    text += b.label.len() + b.action.len() + pairs(&b.values);
                }
                ui::Block::Form(f) => {
                    items += f.fields.len() + f.hidden.len();
                    text += f.action.len() + f.submit.len() + pairs(&f.hidden);
                    for field in &f.fields {
                        text += field.name.len()
                            + field.label.len()
                            + field.help.as_ref().map_or(0, String::len);
                        match &field.kind {
                            ui::FieldKind::Text {
                                value, placeholder, ..
                            } => text += value.len() + placeholder.as_ref().map_or(0, String::len),
                            ui::FieldKind::Select { options, selected } => {
                                items += options.len();
                                text += pairs(options) + selected.as_ref().map_or(0, String::len);
                            }
                            ui::FieldKind::Checkbox(_) | ui::FieldKind::Number { .. } => {}
                        }
                    }
                }
            }
        }
    }
    (items, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(blocks: Vec<ui::Block>) -> View {
        View {
            title: "t".into(),
            cards: vec![ui::Card {
                title: None,
                blocks,
            }],
        }
    }

    fn points(n: usize) -> Vec<ui::Point> {
        (0..n)
            .map(|i| ui::Point {
                label: format!("p{i}"),
                value: i as f64,
            })
            .collect()
    }

    #[test]
    fn long_tables_are_cut_with_a_note() {
        let rows = (0..1000)
            .map(|i| vec![ui::Cell::Text(i.to_string())])
            .collect();
        let mut v = view(vec![ui::Block::Table(ui::Table {
            columns: vec!["n".into()],
            rows,
        })]);
        fit(&mut v, &ViewLimits::default()).unwrap();
        let ui::Block::Table(t) = &v.cards[0].blocks[0] else {
            panic!()
        };
        assert_eq!(t.rows.len(), 500);
        let ui::Block::Notice(n) = &v.cards[0].blocks[1] else {
            panic!()
        };
        assert_eq!(n.title, "Showing the first 500 of 1000 rows");
    }

    #[test]
    fn long_series_are_averaged_down() {
        let mut p = points(1000);
        downsample(&mut p, 200);
        assert_eq!(p.len(), 200);
        assert_eq!(p[0].label, "p0 – p4");
        assert_eq!(p[0].value, 2.0);
        assert_eq!(p[199].label, "p995 – p999");
        let mut p = points(7);
        downsample(&mut p, 3);
        let labels: Vec<&str> = p.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(labels, ["p0 – p1", "p2 – p3", "p4 – p6"]);
        let mut p = points(5);
        downsample(&mut p, 200);
        assert_eq!(p.len(), 5);
    }

    #[test]
    fn too_much_text_or_too_many_items_is_refused() {
        let mut v = view(vec![ui::Block::Text("x".repeat(2 << 20))]);
        let error = fit(&mut v, &ViewLimits::default()).unwrap_err();
        assert!(error.contains("bytes of text"), "{error}");
        let many = (0..30_000)
            .map(|_| ui::Block::Text(String::new()))
            .collect();
        let error = fit(&mut view(many), &ViewLimits::default()).unwrap_err();
        assert!(error.contains("items"), "{error}");
    }
}
