//! The plugin API versions this host serves: one module per folder under
//! `wit/`, each holding its bindings, its linker and the conversions
//! between its generated types and the version-free domain model
//! (`callboard_plugin_contract`, [`super::call`]'s requests). Nothing
//! outside these modules names a generated type. Adding a version is one
//! new module, its WIT folder, and a line in [`ApiVersion`] and [`link`].
//!
//! A released version's module never changes in behaviour; the shared
//! capabilities are glued to each version's traits by the macros in
//! `capabilities/`.

pub mod v0_1;
pub mod v0_2;
pub mod v0_3;
pub mod v0_4;
pub mod v0_5;

use std::sync::Arc;

use wasmtime::{
    Engine, Store,
    component::{Component, Linker, types::ComponentItem},
};

use super::{
    call::{ActionRequest, PluginRequest, PluginResponse, ViewRequest},
    events::Event,
    state::HostState,
};
use callboard_plugin_contract::ui::{Outcome, View};

/// A component linked against its API version, ready to instantiate: every
/// call starts a fresh instance in the given store. The calls an older
/// version lacks answer [`Unsupported`]; callers check
/// [`ApiVersion::has`] first.
#[async_trait::async_trait]
pub trait Linked: Send + Sync {
    /// `handler.handle`.
    async fn handle(
        &self,
        store: &mut Store<HostState>,
        request: PluginRequest,
    ) -> wasmtime::Result<PluginResponse>;

    /// `ui.render` (0.3+); the plugin's own error comes back as `Ok(Err(message))`.
    async fn render(
        &self,
        _store: &mut Store<HostState>,
        _request: &ViewRequest,
    ) -> wasmtime::Result<Result<Option<View>, String>> {
        Err(Unsupported("views").into())
    }

    /// `actions.run` (0.4+).
    async fn run_action(
        &self,
        _store: &mut Store<HostState>,
        _request: &ActionRequest,
    ) -> wasmtime::Result<Result<Outcome, String>> {
        Err(Unsupported("actions").into())
    }

    /// `subscriber.on-events` (0.3+).
    async fn on_events(
        &self,
        _store: &mut Store<HostState>,
        _events: &[Arc<Event>],
    ) -> wasmtime::Result<()> {
        Err(Unsupported("events").into())
    }

    /// `scheduled.on-tick` (0.3+).
    async fn on_tick(&self, _store: &mut Store<HostState>, _now_ms: u64) -> wasmtime::Result<()> {
        Err(Unsupported("ticks").into())
    }
}

/// A call the plugin's API version does not have.
#[derive(Debug, thiserror::Error)]
#[error("this plugin API version has no {0}")]
pub struct Unsupported(pub &'static str);

/// One linker per API version, built once: linking is a short list of
/// `add_to_linker` calls.
pub struct Linkers {
    by_version: Vec<(ApiVersion, Linker<HostState>)>,
}

impl Linkers {
    /// Every version's linker.
    pub fn new(engine: &Engine) -> anyhow::Result<Self> {
        let by_version = ApiVersion::ALL
            .iter()
            .map(|&v| {
                let linker = match v {
                    ApiVersion::V0_1_0 => v0_1::linker(engine),
                    ApiVersion::V0_2_0 => v0_2::linker(engine),
                    ApiVersion::V0_3_0 => v0_3::linker(engine),
                    ApiVersion::V0_4_0 => v0_4::linker(engine),
                    ApiVersion::V0_5_0 => v0_5::linker(engine),
                }?;
                Ok((v, linker))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self { by_version })
    }

    /// Links `component`, built against `api`.
    pub fn link(&self, api: ApiVersion, component: &Component) -> anyhow::Result<Arc<dyn Linked>> {
        let linker = &self
            .by_version
            .iter()
            .find(|(v, _)| *v == api)
            .expect("a linker for every version")
            .1;
        let pre = linker.instantiate_pre(component)?;
        Ok(match api {
            ApiVersion::V0_1_0 => v0_1::link(pre)?,
            ApiVersion::V0_2_0 => v0_2::link(pre)?,
            ApiVersion::V0_3_0 => v0_3::link(pre)?,
            ApiVersion::V0_4_0 => v0_4::link(pre)?,
            ApiVersion::V0_5_0 => v0_5::link(pre)?,
        })
    }
}

/// A plugin API version this host can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum ApiVersion {
    /// `callboard:plugin@0.1.0`.
    #[serde(rename = "0.1.0")]
    V0_1_0,
    /// `callboard:plugin@0.2.0`.
    #[serde(rename = "0.2.0")]
    V0_2_0,
    /// `callboard:plugin@0.3.0`.
    #[serde(rename = "0.3.0")]
    V0_3_0,
    /// `callboard:plugin@0.4.0`.
    #[serde(rename = "0.4.0")]
    V0_4_0,
    /// `callboard:plugin@0.5.0`.
    #[serde(rename = "0.5.0")]
    V0_5_0,
}

impl ApiVersion {
    /// Every version this host serves, oldest first.
    pub const ALL: &[ApiVersion] = &[
        ApiVersion::V0_1_0,
        ApiVersion::V0_2_0,
        ApiVersion::V0_3_0,
        ApiVersion::V0_4_0,
        ApiVersion::V0_5_0,
    ];

    /// Whether plugins of this version have views, events and ticks (0.3+).
    pub fn has_views(self) -> bool {
        self >= ApiVersion::V0_3_0
    }

    /// Whether plugins of this version have actions, permissions checks,
    /// search and the principal (0.4+).
    pub fn has_actions(self) -> bool {
        self >= ApiVersion::V0_4_0
    }

    /// Whether plugins of this version may ask language models (0.5+).
    pub fn has_models(self) -> bool {
        self >= ApiVersion::V0_5_0
    }

    /// The version as written in WIT.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V0_1_0 => "0.1.0",
            ApiVersion::V0_2_0 => "0.2.0",
            ApiVersion::V0_3_0 => "0.3.0",
            ApiVersion::V0_4_0 => "0.4.0",
            ApiVersion::V0_5_0 => "0.5.0",
        }
    }

    /// The API version a component was built against, read from the version
    /// of the `callboard:plugin/handler` interface it exports.
    pub fn of(component: &Component) -> Result<ApiVersion, String> {
        let ty = component.component_type();
        let engine = component.engine();
        let mut exported = Vec::new();
        for (name, item) in ty.exports(engine) {
            if let (Some(rest), ComponentItem::ComponentInstance(_)) =
                (name.strip_prefix("callboard:plugin/handler@"), item.ty)
            {
                exported.push(rest.to_owned());
            }
        }
        match exported.as_slice() {
            [] => Err(
                "does not export `callboard:plugin/handler`; is it built with callboard-sdk?"
                    .into(),
            ),
            [version] => ApiVersion::ALL
                .iter()
                .copied()
                .find(|v| v.as_str() == version)
                .ok_or_else(|| {
                    format!(
                        "is built against plugin API {version}, which this host does not support \
                         (supported: {})",
                        ApiVersion::ALL
                            .iter()
                            .map(|v| v.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }),
            _ => Err(format!(
                "exports several plugin API versions: {}",
                exported.join(", ")
            )),
        }
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `handler.handle` for the versions whose request carries no principal
/// (0.1-0.3): the same record in each version's own generated types.
macro_rules! handle_without_principal {
    ($pre:expr, $store:ident, $request:ident) => {{
        use exports::callboard::plugin::handler::Request;
        let instance = $pre.instantiate_async(&mut *$store).await?;
        let request = Request {
            method: $request.method,
            path: $request.path,
            query: $request.query,
            headers: $request.headers,
            body: $request.body,
        };
        let response = instance
            .callboard_plugin_handler()
            .call_handle(&mut *$store, &request)
            .await?;
        Ok(PluginResponse {
            status: response.status,
            headers: response.headers,
            body: response.body,
            served_by: Arc::from(""),
        })
    }};
}

use handle_without_principal;

/// Conversions from a version's `ui` types into the domain model, for the
/// types 0.3 and later share; each version converts its own `block`.
macro_rules! ui_from {
    ($wit:path) => {
        const _: () = {
            use callboard_plugin_contract::ui;
            use $wit as wit;

            impl From<wit::Tone> for ui::Tone {
                fn from(t: wit::Tone) -> Self {
                    match t {
                        wit::Tone::Neutral => ui::Tone::Neutral,
                        wit::Tone::Good => ui::Tone::Good,
                        wit::Tone::Warning => ui::Tone::Warning,
                        wit::Tone::Bad => ui::Tone::Bad,
                        wit::Tone::Info => ui::Tone::Info,
                    }
                }
            }

            impl From<wit::Direction> for ui::Direction {
                fn from(d: wit::Direction) -> Self {
                    match d {
                        wit::Direction::Up => ui::Direction::Up,
                        wit::Direction::Down => ui::Direction::Down,
                        wit::Direction::Flat => ui::Direction::Flat,
                    }
                }
            }

            impl From<wit::Link> for ui::Link {
                fn from(l: wit::Link) -> Self {
                    ui::Link {
                        text: l.text,
                        href: l.href,
                    }
                }
            }

            impl From<wit::Badge> for ui::Badge {
                fn from(b: wit::Badge) -> Self {
                    ui::Badge {
                        text: b.text,
                        tone: b.tone.into(),
                    }
                }
            }

            impl From<wit::Stat> for ui::Stat {
                fn from(s: wit::Stat) -> Self {
                    ui::Stat {
                        label: s.label,
                        value: s.value,
                        change: s.change.map(|c| ui::Change {
                            text: c.text,
                            direction: c.direction.into(),
                            tone: c.tone.into(),
                        }),
                    }
                }
            }

            impl From<wit::Cell> for ui::Cell {
                fn from(c: wit::Cell) -> Self {
                    match c {
                        wit::Cell::Text(t) => ui::Cell::Text(t),
                        wit::Cell::Number(t) => ui::Cell::Number(t),
                        wit::Cell::Link(l) => ui::Cell::Link(l.into()),
                        wit::Cell::Badge(b) => ui::Cell::Badge(b.into()),
                    }
                }
            }

            impl From<wit::Table> for ui::Table {
                fn from(t: wit::Table) -> Self {
                    ui::Table {
                        columns: t.columns,
                        rows: t
                            .rows
                            .into_iter()
                            .map(|r| r.into_iter().map(Into::into).collect())
                            .collect(),
                    }
                }
            }

            impl From<wit::Chart> for ui::Chart {
                fn from(c: wit::Chart) -> Self {
                    ui::Chart {
                        title: c.title,
                        unit: c.unit,
                        series: c
                            .series
                            .into_iter()
                            .map(|s| ui::Series {
                                name: s.name,
                                points: s
                                    .points
                                    .into_iter()
                                    .map(|p| ui::Point {
                                        label: p.label,
                                        value: p.value,
                                    })
                                    .collect(),
                            })
                            .collect(),
                    }
                }
            }

            impl From<wit::Notice> for ui::Notice {
                fn from(n: wit::Notice) -> Self {
                    ui::Notice {
                        tone: n.tone.into(),
                        title: n.title,
                        detail: n.detail,
                    }
                }
            }

            impl From<wit::View> for ui::View {
                fn from(v: wit::View) -> Self {
                    ui::View {
                        title: v.title,
                        cards: v
                            .cards
                            .into_iter()
                            .map(|c| ui::Card {
                                title: c.title,
                                blocks: c.blocks.into_iter().map(Into::into).collect(),
                            })
                            .collect(),
                    }
                }
            }

            impl From<crate::plugins::manifest::SlotKind> for wit::Slot {
                fn from(s: crate::plugins::manifest::SlotKind) -> Self {
                    use crate::plugins::manifest::SlotKind;
                    match s {
                        SlotKind::EntityCard => wit::Slot::EntityCard,
                        SlotKind::EntityTab => wit::Slot::EntityTab,
                        SlotKind::Page => wit::Slot::Page,
                    }
                }
            }
        };
    };
}

use ui_from;

/// A batch of events in a version's `events.event` type (0.3+).
macro_rules! events_into {
    ($wit:path, $events:expr) => {{
        use $wit as wit;
        $events
            .iter()
            .map(|e| wit::Event {
                kind: e.kind.to_string(),
                at_ms: e.at_ms,
                user: e.user.clone(),
                subject: e.subject.clone(),
                attributes: e
                    .attributes
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect::<Vec<_>>(),
            })
            .collect::<Vec<_>>()
    }};
}

use events_into;

#[cfg(test)]
mod tests {
    use std::path::Path;

    use sha2::{Digest, Sha256};

    /// A released WIT folder never changes (plugins built against it must
    /// keep loading): its digest is recorded in `wit/frozen.sha256`. A
    /// folder still in development is listed with `-` instead of a digest.
    #[test]
    fn released_wit_folders_are_frozen() {
        let wit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
        let recorded = std::fs::read_to_string(wit.join("frozen.sha256")).unwrap();
        let recorded: Vec<(&str, &str)> = recorded
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| l.split_once("  ").expect("`<digest>  <folder>`"))
            .map(|(digest, folder)| (folder.trim(), digest.trim()))
            .collect();
        let mut folders: Vec<String> = std::fs::read_dir(&wit)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        folders.sort();
        for folder in &folders {
            let Some((_, digest)) = recorded.iter().find(|(f, _)| f == folder) else {
                panic!("wit/{folder} is not listed in wit/frozen.sha256");
            };
            if *digest == "-" {
                continue;
            }
            let mut files: Vec<_> = std::fs::read_dir(wit.join(folder))
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            files.sort();
            let mut hash = Sha256::new();
            for file in files {
                hash.update(file.file_name().unwrap().as_encoded_bytes());
                hash.update([0]);
                hash.update(std::fs::read(&file).unwrap());
                hash.update([0]);
            }
            assert_eq!(
                hex::encode(hash.finalize()),
                *digest,
                "wit/{folder} is released and frozen, but its files changed: put the change \
                 in a new version's folder instead"
            );
        }
    }
}
