//! `callboard:plugin@0.4.0`: adds the principal to every request, view and
//! action; `permissions` checks; `search` documents and queries; actions in
//! views (buttons and forms, the `actions` export); `http.send-all` and
//! operator-held credentials.

use std::sync::Arc;

use callboard_plugin_contract::{Principal, ui};
use wasmtime::{
    Engine, Store,
    component::{HasSelf, InstancePre, Linker},
};

use super::{Linked, events_into, ui_from};
use crate::plugins::{
    call::{ActionRequest, PluginRequest, PluginResponse, ViewRequest},
    capabilities::{
        catalog::catalog_glue, config::config_glue, http::http_glue, kv::kv_glue,
        license::license_glue, log::log_glue, permissions::permissions_glue, search::search_glue,
    },
    events::Event,
    state::HostState,
};

wasmtime::component::bindgen!({
    path: "../wit/v0.4.0",
    world: "plugin",
    imports: {
        "callboard:plugin/http.send": async,
        "callboard:plugin/http.send-all": async,
        "callboard:plugin/kv.get": async,
        "callboard:plugin/kv.set": async,
        "callboard:plugin/kv.delete": async,
        "callboard:plugin/kv.increment": async,
        "callboard:plugin/kv.list-keys": async,
        "callboard:plugin/kv.usage": async,
        "callboard:plugin/catalog.get-entity": async,
        "callboard:plugin/catalog.query": async,
        "callboard:plugin/permissions.check": async,
        "callboard:plugin/search.put": async,
        "callboard:plugin/search.remove": async,
        "callboard:plugin/search.clear": async,
        "callboard:plugin/search.query": async,
    },
    exports: { default: async },
});

kv_glue!(self::callboard::plugin::kv);
log_glue!(self::callboard::plugin);
license_glue!(self::callboard::plugin::license);
catalog_glue!(self::callboard::plugin::catalog);
config_glue!(self::callboard::plugin);
http_glue!(self::callboard::plugin::http, send_all);
permissions_glue!(self::callboard::plugin::permissions);
search_glue!(self::callboard::plugin::search);
ui_from!(exports::callboard::plugin::ui);

/// What 0.4 and every later version that keeps its shape share: the
/// conversions of the principal, `ui` blocks and fields, and the calls of
/// the `Linked` trait. Expanded in each version's module, next to its own
/// bindings (`$name` is the linked type, `$events` its `events` interface).
macro_rules! shape_0_4 {
    ($name:ident, $events:path) => {
        use self::callboard::plugin::types as wit_types;
        use exports::callboard::plugin::ui as wit_ui;

        fn principal(p: &Principal) -> wit_types::Principal {
            match p {
                Principal::User {
                    user_ref,
                    display_name,
                    ownership,
                } => wit_types::Principal::User(wit_types::User {
                    ref_: user_ref.clone(),
                    display_name: display_name.clone(),
                    ownership: ownership.clone(),
                }),
                Principal::Anonymous => wit_types::Principal::Anonymous,
                Principal::Service(name) => wit_types::Principal::Service(name.clone()),
            }
        }

        impl From<wit_ui::Block> for ui::Block {
            fn from(b: wit_ui::Block) -> Self {
                use wit_ui::Block as B;
                match b {
                    B::Stats(s) => ui::Block::Stats(s.into_iter().map(Into::into).collect()),
                    B::Table(t) => ui::Block::Table(t.into()),
                    B::List(items) => ui::Block::List(items.into_iter().map(Into::into).collect()),
                    B::Badges(b) => ui::Block::Badges(b.into_iter().map(Into::into).collect()),
                    B::Link(l) => ui::Block::Link(l.into()),
                    B::Text(t) => ui::Block::Text(t),
                    B::Markdown(m) => ui::Block::Markdown(m),
                    B::LineChart(c) => ui::Block::LineChart(c.into()),
                    B::BarChart(c) => ui::Block::BarChart(c.into()),
                    B::Notice(n) => ui::Block::Notice(n.into()),
                    B::Button(b) => ui::Block::Button(ui::Button {
                        label: b.label,
                        action: b.action,
                        values: b.values,
                        tone: b.tone.into(),
                    }),
                    B::Form(f) => ui::Block::Form(ui::Form {
                        action: f.action,
                        fields: f.fields.into_iter().map(field).collect(),
                        submit: f.submit,
                        hidden: f.hidden,
                    }),
                }
            }
        }

        fn field(f: wit_ui::Field) -> ui::Field {
            ui::Field {
                name: f.name,
                label: f.label,
                kind: match f.kind {
                    wit_ui::FieldKind::Text(t) => ui::FieldKind::Text {
                        value: t.value,
                        placeholder: t.placeholder,
                        max_length: t.max_length,
                    },
                    wit_ui::FieldKind::Select(s) => ui::FieldKind::Select {
                        options: s.options,
                        selected: s.selected,
                    },
                    wit_ui::FieldKind::Checkbox(on) => ui::FieldKind::Checkbox(on),
                    wit_ui::FieldKind::Number(n) => ui::FieldKind::Number {
                        value: n.value,
                        min: n.min,
                        max: n.max,
                        step: n.step,
                    },
                },
                required: f.required,
                help: f.help,
            }
        }

        fn view_request(request: &ViewRequest) -> wit_ui::ViewRequest {
            wit_ui::ViewRequest {
                slot: request.slot.into(),
                entity: request.entity.clone(),
                path: request.path.clone(),
                query: request.query.clone(),
                principal: principal(&request.caller.principal),
            }
        }

        struct $name(PluginPre<HostState>);

        #[async_trait::async_trait]
        impl Linked for $name {
            async fn handle(
                &self,
                store: &mut Store<HostState>,
                request: PluginRequest,
            ) -> wasmtime::Result<PluginResponse> {
                let principal = principal(&request.caller.principal);
                let request = wit_types::Request {
                    method: request.method,
                    path: request.path,
                    query: request.query,
                    headers: request.headers,
                    body: request.body,
                    principal,
                };
                let instance = self.0.instantiate_async(&mut *store).await?;
                let response = instance
                    .callboard_plugin_handler()
                    .call_handle(&mut *store, &request)
                    .await?;
                Ok(PluginResponse {
                    status: response.status,
                    headers: response.headers,
                    body: response.body,
                    served_by: Arc::from(""),
                })
            }

            async fn render(
                &self,
                store: &mut Store<HostState>,
                request: &ViewRequest,
            ) -> wasmtime::Result<Result<Option<ui::View>, String>> {
                let request = view_request(request);
                let instance = self.0.instantiate_async(&mut *store).await?;
                let view = instance
                    .callboard_plugin_ui()
                    .call_render(&mut *store, &request)
                    .await?;
                Ok(view.map(|v| v.map(Into::into)))
            }

            async fn run_action(
                &self,
                store: &mut Store<HostState>,
                request: &ActionRequest,
            ) -> wasmtime::Result<Result<ui::Outcome, String>> {
                use exports::callboard::plugin::actions as wit;
                let request = wit::ActionRequest {
                    name: request.name.clone(),
                    values: request.values.clone(),
                    view: view_request(&request.view),
                };
                let instance = self.0.instantiate_async(&mut *store).await?;
                let outcome = instance
                    .callboard_plugin_actions()
                    .call_run(&mut *store, &request)
                    .await?;
                Ok(outcome.map(|o| ui::Outcome {
                    notice: o.notice.into(),
                }))
            }

            async fn on_events(
                &self,
                store: &mut Store<HostState>,
                events: &[Arc<Event>],
            ) -> wasmtime::Result<()> {
                let batch = events_into!($events, events);
                let instance = self.0.instantiate_async(&mut *store).await?;
                instance
                    .callboard_plugin_subscriber()
                    .call_on_events(&mut *store, &batch)
                    .await
            }

            async fn on_tick(
                &self,
                store: &mut Store<HostState>,
                now_ms: u64,
            ) -> wasmtime::Result<()> {
                let instance = self.0.instantiate_async(&mut *store).await?;
                instance
                    .callboard_plugin_scheduled()
                    .call_on_tick(&mut *store, now_ms)
                    .await
            }
        }
    };
}

pub(super) use shape_0_4;

shape_0_4!(V0_4, crate::plugins::api::v0_4::callboard::plugin::events);

/// Adds WASI and the interfaces 0.4 imports (but `events`, which gains
/// functions in 0.5) to `$linker`, each seeing only its capability's view
/// of the call; later versions add theirs after.
macro_rules! interfaces_0_4 {
    ($linker:ident) => {{
        wasmtime_wasi::p2::add_to_linker_async(&mut $linker)?;
        use self::callboard::plugin as i;
        use crate::plugins::capabilities as c;
        i::types::add_to_linker::<_, HasSelf<HostState>>(&mut $linker, |s| s)?;
        i::log::add_to_linker::<_, c::log::Log>(&mut $linker, HostState::log_view)?;
        i::kv::add_to_linker::<_, c::kv::Kv>(&mut $linker, HostState::kv_view)?;
        i::license::add_to_linker::<_, c::license::License>(&mut $linker, HostState::license_view)?;
        i::config::add_to_linker::<_, c::config::Config>(&mut $linker, HostState::config_view)?;
        i::catalog::add_to_linker::<_, c::catalog::CatalogData>(
            &mut $linker,
            HostState::catalog_view,
        )?;
        i::http::add_to_linker::<_, c::http::Http>(&mut $linker, HostState::http_view)?;
        i::permissions::add_to_linker::<_, c::permissions::Permissions>(
            &mut $linker,
            HostState::permissions_view,
        )?;
        i::search::add_to_linker::<_, c::search::Search>(&mut $linker, HostState::search_view)?;
    }};
}

pub(super) use interfaces_0_4;

/// This version's linker: WASI and its imports.
pub(super) fn linker(engine: &Engine) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    interfaces_0_4!(linker);
    // Types only: linked with the store's data itself.
    self::callboard::plugin::events::add_to_linker::<_, HasSelf<HostState>>(&mut linker, |s| s)?;
    Ok(linker)
}

/// A component of this version, linked.
pub(super) fn link(pre: InstancePre<HostState>) -> anyhow::Result<Arc<dyn Linked>> {
    Ok(Arc::new(V0_4(PluginPre::new(pre)?)))
}
