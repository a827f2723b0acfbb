//! `callboard:plugin@0.1.0`: the HTTP-style `handler` export; `log` and
//! per-plugin key-value (`kv`) imports.

use std::sync::Arc;

use wasmtime::{
    Engine, Store,
    component::{HasSelf, InstancePre, Linker},
};

use super::Linked;
use crate::plugins::{
    call::{PluginRequest, PluginResponse},
    capabilities::{kv::kv_glue, log::log_glue},
    state::HostState,
};

wasmtime::component::bindgen!({
    path: "../wit/v0.1.0",
    world: "plugin",
    // kv runs SQLite: async, so it can run on the blocking pool.
    imports: {
        "callboard:plugin/kv.get": async,
        "callboard:plugin/kv.set": async,
        "callboard:plugin/kv.delete": async,
        "callboard:plugin/kv.increment": async,
        "callboard:plugin/kv.list-keys": async,
        "callboard:plugin/kv.usage": async,
    },
    exports: { default: async },
});

kv_glue!(self::callboard::plugin::kv);
log_glue!(self::callboard::plugin);

/// This version's linker: WASI and its imports.
pub(super) fn linker(engine: &Engine) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    // Each interface sees only its capability's view of the call.
    use self::callboard::plugin as i;
    use crate::plugins::capabilities as c;
    i::types::add_to_linker::<_, HasSelf<HostState>>(&mut linker, |s| s)?;
    i::log::add_to_linker::<_, c::log::Log>(&mut linker, HostState::log_view)?;
    i::kv::add_to_linker::<_, c::kv::Kv>(&mut linker, HostState::kv_view)?;
    Ok(linker)
}

/// A component of this version, linked.
pub(super) fn link(pre: InstancePre<HostState>) -> anyhow::Result<Arc<dyn Linked>> {
    Ok(Arc::new(V0_1(PluginPre::new(pre)?)))
}

struct V0_1(PluginPre<HostState>);

#[async_trait::async_trait]
impl Linked for V0_1 {
    async fn handle(
        &self,
        store: &mut Store<HostState>,
        request: PluginRequest,
    ) -> wasmtime::Result<PluginResponse> {
        super::handle_without_principal!(self.0, store, request)
    }
}
