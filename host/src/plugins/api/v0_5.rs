//! `callboard:plugin@0.5.0`: 0.4, `models` (the operator's language model:
//! chat completions through the host, which holds the key and enforces the
//! budgets) and `events.publish` (a plugin's own usage events).

use std::sync::Arc;

use callboard_plugin_contract::{Principal, ui};
use wasmtime::{
    Engine, Store,
    component::{HasSelf, InstancePre, Linker},
};

use super::{
    Linked, events_into, ui_from,
    v0_4::{interfaces_0_4, shape_0_4},
};
use crate::plugins::{
    call::{ActionRequest, PluginRequest, PluginResponse, ViewRequest},
    capabilities::{
        catalog::catalog_glue, config::config_glue, events::events_glue, http::http_glue,
        kv::kv_glue, license::license_glue, log::log_glue, models::models_glue,
        permissions::permissions_glue, search::search_glue,
    },
    events::Event,
    state::HostState,
};

wasmtime::component::bindgen!({
    path: "../wit/v0.5.0",
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
        "callboard:plugin/models.chat": async,
    },
    exports: { default: async },
});

kv_glue!(self::callboard::plugin::kv);
log_glue!(self::callboard::plugin);
license_glue!(self::callboard::plugin::license);
catalog_glue!(self::callboard::plugin::catalog);
config_glue!(self::callboard::plugin, own_events);
events_glue!(self::callboard::plugin::events);
http_glue!(self::callboard::plugin::http, send_all);
permissions_glue!(self::callboard::plugin::permissions);
search_glue!(self::callboard::plugin::search);
models_glue!(self::callboard::plugin::models);
ui_from!(exports::callboard::plugin::ui);

shape_0_4!(V0_5, crate::plugins::api::v0_5::callboard::plugin::events);

/// This version's linker: 0.4's interfaces, `events` with `publish`, and `models`.
pub(super) fn linker(engine: &Engine) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    interfaces_0_4!(linker);
    self::callboard::plugin::events::add_to_linker::<
        _,
        crate::plugins::capabilities::events::Events,
    >(&mut linker, HostState::events_view)?;
    self::callboard::plugin::models::add_to_linker::<
        _,
        crate::plugins::capabilities::models::Models,
    >(&mut linker, HostState::models_view)?;
    Ok(linker)
}

/// A component of this version, linked.
pub(super) fn link(pre: InstancePre<HostState>) -> anyhow::Result<Arc<dyn Linked>> {
    Ok(Arc::new(V0_5(PluginPre::new(pre)?)))
}
