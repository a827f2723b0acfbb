//! Host bindings for every released plugin API version (one module per
//! folder under `wit/`). A released version's bindings never change; a new
//! version adds a module and a variant to [`ApiVersion`].

use wasmtime::component::{Component, types::ComponentItem};

/// `callboard:plugin@0.1.0`.
pub mod v0_1_0 {
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
}

/// `callboard:plugin@0.2.0`: adds `license`.
pub mod v0_2_0 {
    wasmtime::component::bindgen!({
        path: "../wit/v0.2.0",
        world: "plugin",
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
}

/// `callboard:plugin@0.3.0`: adds `catalog`, `http`, `config`, `events`
/// (with the `subscriber` and `scheduled` exports) and `ui` views.
pub mod v0_3_0 {
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
        additional_derives: [serde::Serialize],
    });
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
}

impl ApiVersion {
    /// Every version this host serves, oldest first.
    pub const ALL: &[ApiVersion] = &[ApiVersion::V0_1_0, ApiVersion::V0_2_0, ApiVersion::V0_3_0];

    /// The version as written in WIT.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V0_1_0 => "0.1.0",
            ApiVersion::V0_2_0 => "0.2.0",
            ApiVersion::V0_3_0 => "0.3.0",
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
