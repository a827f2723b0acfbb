//! The hello plugin: a few routes, a visit counter in key-value storage, logs.

use callboard_sdk::{
    Params, Plugin, Request, Response, Router, export_plugin, kv, license, log,
    ui::{Block, Card, Stat, View, ViewRequest},
};
use serde_json::json;

struct Hello;

impl Plugin for Hello {
    fn handle(request: Request) -> Response {
        Router::new()
            .get("/", index)
            .get("/ping", |_: &Request, _: &Params| Response::text("pong"))
            .get("/greet/{name}", greet)
            .get("/visits", visits)
            .get("/license", |_: &Request, _: &Params| {
                Response::json(
                    &license::current()
                        .map(|e| json!({ "customer": e.customer, "features": e.features })),
                )
            })
            .post("/visits", visit)
            .post("/echo", |request: &Request, _: &Params| {
                Response::new(200)
                    .with_header("content-type", "application/octet-stream")
                    .with_body(request.body())
            })
            .handle(&request)
    }

    /// A card on every component: a greeting and the visit counter.
    fn view(request: ViewRequest) -> Result<Option<View>, callboard_sdk::Error> {
        let Some(entity) = &request.entity else {
            return Ok(None);
        };
        let title = entity["metadata"]["title"]
            .as_str()
            .or(entity["metadata"]["name"].as_str())
            .unwrap_or("there");
        let visits = kv::get("visits")
            .map_err(|e| e.to_string())?
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, i64::from_le_bytes);
        Ok(Some(
            View::new("Hello").card(
                Card::untitled()
                    .block(Block::Text(format!("Hello, {title}!")))
                    .block(Block::Stats(vec![Stat::new("Visits", visits.to_string())])),
            ),
        ))
    }
}

fn index(_: &Request, _: &Params) -> Response {
    Response::json(&json!({
        "plugin": "hello",
        "routes": ["GET /ping", "GET /greet/{name}", "GET /visits", "POST /visits", "POST /echo", "GET /license"],
    }))
}

fn greet(request: &Request, params: &Params) -> Response {
    let name = params.get("name").unwrap_or("world");
    let greeting = request
        .query_param("greeting")
        .unwrap_or_else(|| "Hello".to_owned());
    log::info(&format!("greeting {name}"));
    Response::text(format!("{greeting}, {name}!"))
}

fn visits(_: &Request, _: &Params) -> Response {
    match kv::get("visits") {
        Ok(value) => {
            let n = value
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, i64::from_le_bytes);
            Response::json(&json!({ "visits": n }))
        }
        Err(e) => Response::error(503, e.to_string()),
    }
}

fn visit(_: &Request, _: &Params) -> Response {
    match kv::increment("visits", 1) {
        Ok(n) => {
            log::info(&format!("visit number {n}"));
            Response::json(&json!({ "visits": n }))
        }
        Err(e) => Response::error(503, e.to_string()),
    }
}

export_plugin!(Hello);
