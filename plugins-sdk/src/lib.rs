//! Write [Callboard](https://example.invalid/callboard) plugins in Rust.
//!
//! A plugin is a WebAssembly component that answers HTTP requests routed to
//! `/api/plugins/<plugin-id>/...`. Implement [`Plugin`], call
//! [`export_plugin!`] once, and build with `cargo build --target wasm32-wasip2`.
//! Every request runs in a fresh instance: keep state in [`kv`], not in statics.
//!
//! # A complete plugin
//!
//! `Cargo.toml`:
//!
//! ```toml
//! [package]
//! name = "hello"
//! version = "1.0.0"
//! edition = "2024"
//!
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! callboard-sdk = "0.1"
//! ```
//!
//! `plugin.toml`, beside it, is the manifest `callboard plugin pack` embeds:
//!
//! ```toml
//! id = "hello"
//! name = "Hello"
//! version = "1.0.0"
//! description = "Greets people and counts visits"
//! license = "Apache-2.0"
//! ```
//!
//! `src/lib.rs`:
//!
//! ```no_run
//! use callboard_sdk::{Params, Plugin, Request, Response, Router, export_plugin, kv, log};
//!
//! struct Hello;
//!
//! impl Plugin for Hello {
//!     fn handle(request: Request) -> Response {
//!         Router::new()
//!             .get("/greet/{name}", greet)
//!             .post("/visits", |_: &Request, _: &Params| match kv::increment("visits", 1) {
//!                 Ok(n) => Response::json(&serde_json::json!({ "visits": n })),
//!                 Err(e) => Response::error(503, e.to_string()),
//!             })
//!             .handle(&request)
//!     }
//! }
//!
//! fn greet(_: &Request, params: &Params) -> Response {
//!     let name = params.get("name").unwrap_or("world");
//!     log::info(&format!("greeting {name}"));
//!     Response::text(format!("Hello, {name}!"))
//! }
//!
//! export_plugin!(Hello);
//! ```
//!
//! Then `cargo build --release --target wasm32-wasip2` and
//! `callboard plugin pack target/wasm32-wasip2/release/hello.wasm` write
//! `hello.wasm`, the one file an operator installs.
//!
//! # Beyond requests (plugin API 0.3 to 0.5)
//!
//! - **Views**: declare slots in plugin.toml (`[[views]] slot = "entity-card"`,
//!   `"entity-tab"` or `"page"`) and implement [`Plugin::view`], returning UI
//!   data built with [`ui`]; the portal renders it (and escapes it).
//! - **Events**: ask for `capabilities.events = ["usage", "catalog"]` and
//!   implement [`Plugin::on_events`]; batches arrive asynchronously.
//! - **Ticks**: set `tick_secs` and implement [`Plugin::on_tick`].
//! - **Reaching out**, each only if the operator grants it: [`catalog`]
//!   reads, [`fetch`] for HTTP(S) to granted hosts, read-only directories
//!   (`capabilities.files`) through `std::fs`, and the operator's
//!   [`config`] settings.
//! - **The person** (0.4): every [`Request`], [`ui::ViewRequest`] and
//!   [`ui::ActionRequest`] carries the [`Principal`] it runs for (their ref,
//!   display name and ownership; never their credentials).
//! - **Actions** (0.4): [`ui::Button`] and [`ui::Form`] blocks post to the
//!   portal, which runs [`Plugin::action`] as the person who pressed them.
//! - **Permissions** (0.4): declare `[[permissions]]` in plugin.toml and ask
//!   [`permissions::check`] / [`permissions::require`].
//! - **Search** (0.4, `capabilities.search`): [`search::put`] the plugin's
//!   own documents; [`search::query`] the index as the principal.
//! - **Language models** (0.5, `capabilities.models`): [`models::chat`]
//!   with the operator's model; the host holds the key and the budgets, and
//!   [`models::configured`] says whether there is one; [`events::publish`]
//!   (`capabilities.publish`) sends the plugin's own usage events, for an
//!   analytics plugin to count.
//! - **Errors**: handlers, views and actions return `Result<_, `[`Error`]`>`;
//!   every SDK error converts with `?` and answers a fitting HTTP status.
//!
//! # A plugin for every slot, with an action
//!
//! `plugin.toml`:
//!
//! ```toml
//! id = "owners"
//! name = "Owners"
//! version = "1.0.0"
//! license = "Apache-2.0"
//! tick_secs = 3600
//!
//! [capabilities]
//! kv = true
//! catalog = true
//! search = true
//!
//! [[views]]
//! slot = "entity-card"
//! title = "Owners"
//! [[views]]
//! slot = "entity-tab"
//! title = "Ownership"
//! [[views]]
//! slot = "page"
//! title = "Unowned"
//!
//! [[permissions]]
//! name = "owners.claim"
//! action = "update"
//! resource_type = "catalog-entity"
//! ```
//!
//! `src/lib.rs`:
//!
//! ```no_run
//! use callboard_sdk::{
//!     Error, Plugin, Request, Response, catalog, export_plugin, kv, permissions,
//!     search::{self, Document},
//!     ui::{ActionRequest, Block, Button, Card, Cell, Field, Form, Notice, Slot, Table, Tone, View, ViewRequest},
//! };
//!
//! struct Owners;
//!
//! impl Plugin for Owners {
//!     fn handle(request: Request) -> Response {
//!         // Who asks, never their credentials.
//!         Response::text(format!("hello, {}", request.principal().name()))
//!     }
//!
//!     fn view(request: ViewRequest) -> Result<Option<View>, Error> {
//!         match request.slot {
//!             // A card on each entity: who owns it, and whether the viewer does.
//!             Slot::EntityCard => {
//!                 let Some(entity) = &request.entity else { return Ok(None) };
//!                 let owner = entity["spec"]["owner"].as_str().unwrap_or("nobody");
//!                 let mine = request.principal.owns_through(owner);
//!                 Ok(Some(View::new("Owners").card(
//!                     Card::untitled().block(Block::Text(format!(
//!                         "Owned by {owner}{}",
//!                         if mine { " (your team)" } else { "" }
//!                     ))),
//!                 )))
//!             }
//!             // A tab: a note kept per entity, and a form to change it.
//!             Slot::EntityTab => {
//!                 let Some(entity) = request.entity_ref() else { return Ok(None) };
//!                 let note: Option<String> = kv::get_json(&format!("note:{entity}"))?;
//!                 Ok(Some(View::new("Ownership").card(
//!                     Card::untitled()
//!                         .block(Block::Text(note.unwrap_or_else(|| "No note yet.".into())))
//!                         .block(Block::Form(
//!                             Form::new("note", "Save").field(Field::text("text", "Note", "").required()),
//!                         ))
//!                         .block(Block::Button(Button::new("Claim", "claim").tone(Tone::Warning))),
//!                 )))
//!             }
//!             // A page: components without an owner, from the catalog.
//!             Slot::Page => {
//!                 let mut table = Table::new(["Component"]);
//!                 for e in catalog::query(&["kind=component,spec.owner=unknown"], 100)? {
//!                     let name = e["metadata"]["name"].as_str().unwrap_or_default().to_owned();
//!                     table = table.row(vec![Cell::link(name.clone(), format!("/catalog/default/component/{name}"))]);
//!                 }
//!                 Ok(Some(View::new("Unowned").card(Card::untitled().block(Block::Table(table)))))
//!             }
//!         }
//!     }
//!
//!     // A button or form was pressed, by `request.principal()`.
//!     fn action(request: ActionRequest) -> Result<Notice, Error> {
//!         let entity = request.view.entity_ref().ok_or_else(|| Error::bad_request("no entity"))?;
//!         match request.name.as_str() {
//!             "note" => {
//!                 let text = request.value("text").unwrap_or_default();
//!                 kv::set_json(&format!("note:{entity}"), &text)?;
//!                 Ok(Notice::new(Tone::Good, "Saved", None))
//!             }
//!             "claim" => {
//!                 // Owners only, as the operator's policy says.
//!                 permissions::require("owners.claim", Some(&entity))?;
//!                 Ok(Notice::new(Tone::Good, format!("{} claimed it", request.principal().name()), None))
//!             }
//!             other => Err(Error::not_found(format!("no action {other}"))),
//!         }
//!     }
//!
//!     // Hourly, as the plugin's own service principal: index the notes.
//!     fn on_tick(_now_ms: u64) {
//!         let Ok(keys) = kv::list_keys("note:", 1000) else { return };
//!         let docs: Vec<Document> = keys
//!             .iter()
//!             .filter_map(|k| {
//!                 let entity = k.strip_prefix("note:")?;
//!                 let text: String = kv::get_json(k).ok()??;
//!                 Some(Document::new(k.as_str(), format!("Ownership note: {entity}"), "/plugins/owners")
//!                     .text(text)
//!                     .entity(entity))
//!             })
//!             .collect();
//!         let _ = search::put(&docs);
//!     }
//! }
//!
//! export_plugin!(Owners);
//! ```

// The generated bindings name this crate by its absolute path, which must
// resolve inside the crate too.
extern crate self as callboard_sdk;

pub mod catalog;
pub mod config;
mod error;
pub mod events;
pub mod fetch;
mod http;
pub mod kv;
pub mod license;
pub mod log;
pub mod models;
pub mod permissions;
mod principal;
mod router;
pub mod search;
pub mod ui;

pub use error::{Error, IntoResponse};
pub use events::Event;
pub use http::{Request, Response};
pub use principal::Principal;
pub use router::{Params, Router};

/// The generated bindings for `callboard:plugin@0.5.0` (or, with the
/// test-only feature `api-0-4`, the frozen 0.4.0). Plugins use the safe
/// wrappers of this crate instead.
#[doc(hidden)]
#[allow(missing_docs, reason = "generated code; documented in wit/")]
pub mod bindings {
    #[cfg(not(feature = "api-0-4"))]
    wit_bindgen::generate!({
        path: "../wit/v0.5.0",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "__export_world",
        default_bindings_module: "::callboard_sdk::bindings",
        runtime_path: "::callboard_sdk::__private::wit_bindgen::rt",
    });
    #[cfg(feature = "api-0-4")]
    wit_bindgen::generate!({
        path: "../wit/v0.4.0",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "__export_world",
        default_bindings_module: "::callboard_sdk::bindings",
        runtime_path: "::callboard_sdk::__private::wit_bindgen::rt",
    });
}

/// What a plugin implements. Only [`Plugin::handle`] is required; the other
/// methods default to doing nothing. Each call runs in a fresh instance.
pub trait Plugin {
    /// Answers one request to `/api/plugins/<id>/...`. Panicking is a bug:
    /// the host answers 500 and logs it against the plugin.
    fn handle(request: Request) -> Response;

    /// Renders a slot declared in plugin.toml's `[[views]]`. `Ok(None)` leaves
    /// the slot out (nothing to show for this entity); `Err` is shown to the
    /// user as an error box in place of the view.
    fn view(request: ui::ViewRequest) -> Result<Option<ui::View>, Error> {
        let _ = request;
        Ok(None)
    }

    /// Runs an action: a [`ui::Button`] or [`ui::Form`] in one of the
    /// plugin's views was pressed by [`ui::ActionRequest::principal`]. The
    /// notice returned is shown above the view, rendered again; `Err` is
    /// shown as a `bad` notice. Check the plugin's own [`permissions`]
    /// first: the host only checked that the person may use the plugin.
    fn action(request: ui::ActionRequest) -> Result<ui::Notice, Error> {
        Err(Error::not_found(format!(
            "no action named {:?}",
            request.name
        )))
    }

    /// Receives a batch of subscribed events (manifest `capabilities.events`).
    fn on_events(events: Vec<Event>) {
        let _ = events;
    }

    /// Runs every `tick-secs` seconds (manifest), with the tick's time in
    /// milliseconds since the Unix epoch.
    fn on_tick(now_ms: u64) {
        let _ = now_ms;
    }
}

/// Exports a [`Plugin`] implementation as the component's handler, views,
/// event subscriber and scheduled task. Call it once, at the crate root.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[doc(hidden)]
        pub struct __CallboardExport;

        impl $crate::bindings::exports::callboard::plugin::handler::Guest for __CallboardExport {
            fn handle(
                request: $crate::bindings::callboard::plugin::types::Request,
            ) -> $crate::bindings::callboard::plugin::types::Response {
                $crate::__private::handle::<$plugin>(request)
            }
        }

        impl $crate::bindings::exports::callboard::plugin::ui::Guest for __CallboardExport {
            fn render(
                request: $crate::bindings::exports::callboard::plugin::ui::ViewRequest,
            ) -> Result<Option<$crate::bindings::exports::callboard::plugin::ui::View>, String>
            {
                $crate::__private::render::<$plugin>(request)
            }
        }

        impl $crate::bindings::exports::callboard::plugin::actions::Guest for __CallboardExport {
            fn run(
                request: $crate::bindings::exports::callboard::plugin::actions::ActionRequest,
            ) -> Result<$crate::bindings::exports::callboard::plugin::actions::Outcome, String>
            {
                $crate::__private::run::<$plugin>(request)
            }
        }

        impl $crate::bindings::exports::callboard::plugin::subscriber::Guest for __CallboardExport {
            fn on_events(events: Vec<$crate::bindings::callboard::plugin::events::Event>) {
                $crate::__private::on_events::<$plugin>(events)
            }
        }

        impl $crate::bindings::exports::callboard::plugin::scheduled::Guest for __CallboardExport {
            fn on_tick(now_ms: u64) {
                <$plugin as $crate::Plugin>::on_tick(now_ms)
            }
        }

        // Only a WebAssembly build exports anything: natively (`cargo
        // test` of the plugin's logic) the crate links without the
        // component's export names, which no native linker accepts.
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::__export_world!(__CallboardExport);
    };
}

/// Used by [`export_plugin!`]; not public API.
#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;

    use crate::bindings::{
        callboard::plugin::{events, types},
        exports::callboard::plugin::{actions, ui},
    };

    pub fn handle<P: crate::Plugin>(request: types::Request) -> types::Response {
        P::handle(crate::Request::from_wit(request)).into_wit()
    }

    pub fn render<P: crate::Plugin>(request: ui::ViewRequest) -> Result<Option<ui::View>, String> {
        P::view(crate::ui::ViewRequest::from_wit(request)).map_err(|e| e.message)
    }

    pub fn run<P: crate::Plugin>(
        request: actions::ActionRequest,
    ) -> Result<actions::Outcome, String> {
        P::action(crate::ui::ActionRequest::from_wit(request))
            .map(|notice| actions::Outcome { notice })
            .map_err(|e| e.message)
    }

    pub fn on_events<P: crate::Plugin>(events: Vec<events::Event>) {
        P::on_events(events.into_iter().map(crate::Event::from_wit).collect())
    }
}
