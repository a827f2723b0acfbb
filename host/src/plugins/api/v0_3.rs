//! `callboard:plugin@0.3.0`: adds `catalog`, `http`, `config`, `events`
//! (with the `subscriber` and `scheduled` exports) and `ui` views.

use std::sync::Arc;

use callboard_plugin_contract::ui;
use wasmtime::{
    Engine, Store,
    component::{HasSelf, InstancePre, Linker},
};

use super::{Linked, events_into, ui_from};
use crate::plugins::{
    call::{PluginRequest, PluginResponse, ViewRequest},
    capabilities::{
        catalog::catalog_glue, config::config_glue, http::http_glue, kv::kv_glue,
        license::license_glue, log::log_glue,
    },
    events::Event,
    state::HostState,
};

wasmtime::component::bindgen!({
    path: "../wit/v0.3.0",
    world: "plugin",
    imports: {
        "callboard:plugin/http.send": async,
        "callboard:plugin/kv.get": async,
        "callboard:plugin/kv.set": async,
        "callboard:plugin/kv.delete": async,
        "callboard:plugin/kv.increment": async,
        "callboard:plugin/kv.list-keys": async,
        "callboard:plugin/kv.usage": async,
        "callboard:plugin/catalog.get-entity": async,
        "callboard:plugin/catalog.query": async,
    },
    exports: { default: async },
});

kv_glue!(self::callboard::plugin::kv);
log_glue!(self::callboard::plugin);
license_glue!(self::callboard::plugin::license);
catalog_glue!(self::callboard::plugin::catalog);
config_glue!(self::callboard::plugin);
http_glue!(self::callboard::plugin::http);
ui_from!(exports::callboard::plugin::ui);

impl From<exports::callboard::plugin::ui::Block> for ui::Block {
    fn from(b: exports::callboard::plugin::ui::Block) -> Self {
        use exports::callboard::plugin::ui::Block as B;
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
        }
    }
}

/// This version's linker: WASI and its imports.
pub(super) fn linker(engine: &Engine) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    // Each interface sees only its capability's view of the call.
    use self::callboard::plugin as i;
    use crate::plugins::capabilities as c;
    i::types::add_to_linker::<_, HasSelf<HostState>>(&mut linker, |s| s)?;
    i::events::add_to_linker::<_, HasSelf<HostState>>(&mut linker, |s| s)?;
    i::log::add_to_linker::<_, c::log::Log>(&mut linker, HostState::log_view)?;
    i::kv::add_to_linker::<_, c::kv::Kv>(&mut linker, HostState::kv_view)?;
    i::license::add_to_linker::<_, c::license::License>(&mut linker, HostState::license_view)?;
    i::config::add_to_linker::<_, c::config::Config>(&mut linker, HostState::config_view)?;
    i::catalog::add_to_linker::<_, c::catalog::CatalogData>(&mut linker, HostState::catalog_view)?;
    i::http::add_to_linker::<_, c::http::Http>(&mut linker, HostState::http_view)?;
    Ok(linker)
}

/// A component of this version, linked.
pub(super) fn link(pre: InstancePre<HostState>) -> anyhow::Result<Arc<dyn Linked>> {
    Ok(Arc::new(V0_3(PluginPre::new(pre)?)))
}

struct V0_3(PluginPre<HostState>);

#[async_trait::async_trait]
impl Linked for V0_3 {
    async fn handle(
        &self,
        store: &mut Store<HostState>,
        request: PluginRequest,
    ) -> wasmtime::Result<PluginResponse> {
        super::handle_without_principal!(self.0, store, request)
    }

    async fn render(
        &self,
        store: &mut Store<HostState>,
        request: &ViewRequest,
    ) -> wasmtime::Result<Result<Option<ui::View>, String>> {
        use exports::callboard::plugin::ui as wit;
        let request = wit::ViewRequest {
            slot: request.slot.into(),
            entity: request.entity.clone(),
            path: request.path.clone(),
            query: request.query.clone(),
        };
        let instance = self.0.instantiate_async(&mut *store).await?;
        let view = instance
            .callboard_plugin_ui()
            .call_render(&mut *store, &request)
            .await?;
        Ok(view.map(|v| v.map(Into::into)))
    }

    async fn on_events(
        &self,
        store: &mut Store<HostState>,
        events: &[Arc<Event>],
    ) -> wasmtime::Result<()> {
        let batch = events_into!(crate::plugins::api::v0_3::callboard::plugin::events, events);
        let instance = self.0.instantiate_async(&mut *store).await?;
        instance
            .callboard_plugin_subscriber()
            .call_on_events(&mut *store, &batch)
            .await
    }

    async fn on_tick(&self, store: &mut Store<HostState>, now_ms: u64) -> wasmtime::Result<()> {
        let instance = self.0.instantiate_async(&mut *store).await?;
        instance
            .callboard_plugin_scheduled()
            .call_on_tick(&mut *store, now_ms)
            .await
    }
}
