//! The cost plugin: cloud cost per component, system and owning team, from
//! billing export CSV files in a granted `/billing` directory or from a
//! billing HTTP API on a granted host. See README.md for the data format,
//! the settings and the anomaly rule.

mod api;
mod format;
mod model;
mod placement;
mod report;
mod rollup;
mod source;
mod views;

use callboard_sdk::{Plugin, Request, Response, export_plugin, log, ui};

struct Cost;

impl Plugin for Cost {
    fn handle(request: Request) -> Response {
        api::handle(&request)
    }

    fn view(request: ui::ViewRequest) -> Result<Option<ui::View>, callboard_sdk::Error> {
        Ok(views::render(&request)?)
    }

    /// Keeps the cached model fresh so views rarely rebuild it.
    fn on_tick(now_ms: u64) {
        match model::load(now_ms, &model::Settings::read()) {
            Ok(m) if m.stale.is_some() => {}
            Ok(_) | Err(source::SourceError::NotConfigured) => {}
            Err(e) => log::warn(&format!("cannot refresh costs: {e}")),
        }
    }
}

export_plugin!(Cost);
