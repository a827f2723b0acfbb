//! A stand-in language-model provider for Callboard's tests and the demo.
//! It is **not a model**: it answers every chat with a deterministic reply
//! built from the prompt, so a test can tell exactly what arrived and what
//! should come back.
//!
//! It speaks the part of OpenAI's REST API that a chat client uses, on the
//! wire as OpenAI does (its tests run OpenAI's official Node client against
//! it), with `http://HOST:PORT/v1` as the base URL:
//!
//! - `POST /v1/chat/completions`: `Authorization: Bearer <key>` (401
//!   `invalid_api_key` otherwise); the request checked as OpenAI does (400
//!   `invalid_request_error` naming `param`, 404 `model_not_found`, 413 over
//!   1 MiB); a `chat.completion` object, or with `stream: true` a
//!   `text/event-stream` of `chat.completion.chunk`s ending in
//!   `data: [DONE]`, with the usage chunk when
//!   `stream_options.include_usage` is set; `max_tokens` /
//!   `max_completion_tokens` cut the reply (`finish_reason: "length"`).
//!   `n` must be 1; tools, logprobs, images and audio are not implemented
//!   (tool and assistant messages are accepted as history).
//! - `GET /v1/models`: the one model it serves.
//! - Anything else: OpenAI's 404 `Invalid URL` body.
//!
//! The reply is `Stand-in answer: ` and the first 200 characters of the last
//! user message, then ` See [n].` for each distinct citation marker `[n]` of
//! the system, developer and user messages (the first three, in order of
//! first appearance); [`Handle::set_reply`] replaces it. Tokens are the
//! reply's words, each with the whitespace before it (one streamed chunk
//! each); prompt tokens are, per message, its characters / 4 (rounded up)
//! plus 4.
//!
//! Tests script failures with [`Handle::set_fault`] and
//! [`Handle::fault_next`] (see [`Fault`]), and read every request back with
//! [`Handle::requests`].
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use callboard_demo_llm::{Fault, StandIn};
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let llm = callboard_demo_llm::serve(listener, StandIn::default()).await?;
//! llm.fault_next(Fault::RateLimited { retry_after: 1 }, 1);
//! println!("{} ({} requests so far)", llm.base_url(), llm.request_count());
//! # Ok(()) }
//! ```

mod protocol;

use std::{
    convert::Infallible,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    Json, Router,
    body::{Body, Bytes},
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::protocol::ApiError;

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY: usize = 1024 * 1024;

/// The `system_fingerprint` of every response.
const FINGERPRINT: &str = "fp_stand_in";

/// What the stand-in serves.
#[derive(Debug, Clone)]
pub struct StandIn {
    /// The one model it knows; requests naming another get 404 `model_not_found`.
    pub model: String,
    /// The key clients must send as `Authorization: Bearer <api_key>`.
    pub api_key: String,
}

impl Default for StandIn {
    fn default() -> Self {
        StandIn {
            model: "demo-model".to_owned(),
            api_key: "demo-key".to_owned(),
        }
    }
}

/// A failure scripted for chat-completion requests (other routes are never
/// faulted). One fault is active at a time, for the next N requests
/// ([`Handle::fault_next`]) or until cleared ([`Handle::set_fault`]); every
/// chat-completion request uses up one of the N, whatever it asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 429 `rate_limit_exceeded` with `retry-after: <retry_after>` (seconds),
    /// answered before the key and the body are checked.
    RateLimited {
        /// The `retry-after` header's value, in seconds.
        retry_after: u64,
    },
    /// This status with OpenAI's error body for it (500 and 502 `server_error`,
    /// 503 overloaded, 429 as [`Fault::RateLimited`] with one second, others
    /// generic), answered before the key and the body are checked.
    Status(u16),
    /// Wait this long before answering (before the response headers).
    Delay(Duration),
    /// Streamed responses: send the role chunk and the first `after` content
    /// chunks, then pause, then go on. A non-streaming answer is unaffected.
    Stall {
        /// Content chunks sent before the pause.
        after: usize,
        /// How long the pause lasts.
        pause: Duration,
    },
    /// Streamed responses: send the role chunk and the first `after` content
    /// chunks, then end the body cleanly without the finish chunk, usage or
    /// `[DONE]` (as a dropped upstream looks through a proxy). A
    /// non-streaming answer is unaffected.
    Cut {
        /// Content chunks sent before the end.
        after: usize,
    },
}

/// A request as received, any route and any outcome.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, e.g. `/v1/chat/completions`.
    pub path: String,
    /// The query string, without `?`.
    pub query: Option<String>,
    /// Every header in arrival order, names lower-case.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON; `None` when it is not JSON (or too large).
    pub body: Option<Value>,
    /// The body as text (lossy UTF-8); empty when over [`MAX_BODY`].
    pub text: String,
}

impl Recorded {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A running stand-in, serving on its own task. Dropping it stops the
/// server: it accepts no more connections and closes the open ones once idle.
#[derive(Debug)]
pub struct Handle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

#[derive(Debug)]
struct Shared {
    config: StandIn,
    state: Mutex<Scripted>,
}

#[derive(Debug, Default)]
struct Scripted {
    reply: Option<String>,
    /// The active fault and how many more requests it applies to (`None`: all).
    fault: Option<(Fault, Option<u32>)>,
    requests: Vec<Recorded>,
    answered: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Scripted> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Uses up one application of the active fault.
    fn take_fault(&self) -> Option<Fault> {
        let mut state = self.lock();
        let (fault, left) = state.fault.as_mut()?;
        let fault = fault.clone();
        if let Some(left) = left {
            *left -= 1;
            if *left == 0 {
                state.fault = None;
            }
        }
        Some(fault)
    }
}

impl Handle {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The origin, e.g. `http://127.0.0.1:7012`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The base URL OpenAI clients take, e.g. `http://127.0.0.1:7012/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Replaces the default reply with `reply` for the following requests
    /// (`None`: back to the default). `max_tokens` still cuts it.
    pub fn set_reply(&self, reply: Option<String>) {
        self.shared.lock().reply = reply;
    }

    /// Applies `fault` to every chat-completion request until cleared with
    /// `set_fault(None)`; replaces any active fault.
    pub fn set_fault(&self, fault: Option<Fault>) {
        self.shared.lock().fault = fault.map(|f| (f, None));
    }

    /// Applies `fault` to the next `times` chat-completion requests, then
    /// clears it; replaces any active fault (`times` 0 clears).
    pub fn fault_next(&self, fault: Fault, times: u32) {
        self.shared.lock().fault = (times > 0).then_some((fault, Some(times)));
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }

    /// How many requests were received so far (any route, any outcome).
    pub fn request_count(&self) -> usize {
        self.shared.lock().requests.len()
    }

    /// Serves until the server fails (it does not stop by itself).
    pub async fn wait(mut self) -> std::io::Result<()> {
        self.join().await
    }

    /// Stops accepting connections and waits for the open ones to close.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.join().await
    }

    async fn join(&mut self) -> std::io::Result<()> {
        match self.task.take() {
            Some(task) => task.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts serving `config` on `listener`, on a spawned task.
pub async fn serve(listener: tokio::net::TcpListener, config: StandIn) -> std::io::Result<Handle> {
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        config,
        state: Mutex::default(),
    });
    let app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/models", get(models))
        .fallback(invalid_url)
        .method_not_allowed_fallback(invalid_url)
        .layer(middleware::from_fn_with_state(shared.clone(), record))
        .with_state(shared.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    Ok(Handle {
        addr,
        shared,
        stop: Some(stop),
        task: Some(task),
    })
}

/// Records every request (reading its body, up to [`MAX_BODY`]: 413 beyond).
async fn record(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let bytes = match declared {
        Some(length) if length > MAX_BODY as u64 => None,
        _ => axum::body::to_bytes(body, MAX_BODY).await.ok(),
    };
    let text = bytes
        .as_deref()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    shared.lock().requests.push(Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: serde_json::from_str(&text).ok(),
        text,
    });
    match bytes {
        Some(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        None => {
            let message = format!("Request body too large: the limit is {MAX_BODY} bytes.");
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                Some("request_too_large"),
                message,
            )
            .into_response()
        }
    }
}

/// OpenAI's 401s: no key, or another key.
fn authorize(shared: &Shared, headers: &HeaderMap) -> Result<(), ApiError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim());
    let message = match presented {
        Some(key) if key == shared.config.api_key => return Ok(()),
        Some(key) if !key.is_empty() => {
            let shown = if key.chars().count() > 8 {
                let head: String = key.chars().take(3).collect();
                let tail: String = key.chars().skip(key.chars().count() - 4).collect();
                format!("{head}****{tail}")
            } else {
                "*".repeat(key.chars().count())
            };
            format!(
                "Incorrect API key provided: {shown}. You can find your API key at \
                 https://platform.openai.com/account/api-keys."
            )
        }
        _ => "You didn't provide an API key. You need to provide your API key in an \
              Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            .to_owned(),
    };
    Err(ApiError::new(
        StatusCode::UNAUTHORIZED,
        Some("invalid_api_key"),
        message,
    ))
}

/// A scripted error status with OpenAI's body for it.
fn fault_response(status: u16, retry_after: Option<u64>, model: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let retry_after = retry_after.unwrap_or(1);
    let message = match status.as_u16() {
        429 => format!(
            "Rate limit reached for {model} in organization org-stand-in on requests per min \
             (RPM): Limit 3, Used 3, Requested 1. Please try again in {retry_after}s."
        ),
        500 | 502 => {
            "The server had an error while processing your request. Sorry about that!".to_owned()
        }
        503 => "The engine is currently overloaded, please try again later.".to_owned(),
        _ => format!("The request failed with {status}."),
    };
    let (kind, code) = match status.as_u16() {
        429 => ("requests", Some("rate_limit_exceeded")),
        500.. => ("server_error", None),
        _ => ("invalid_request_error", None),
    };
    let error = ApiError {
        kind,
        ..ApiError::new(status, code, message)
    };
    let mut response = error.into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        let value = HeaderValue::from(retry_after);
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

async fn chat(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let model = shared.config.model.as_str();
    let fault = shared.take_fault();
    match fault {
        Some(Fault::Delay(delay)) => tokio::time::sleep(delay).await,
        Some(Fault::RateLimited { retry_after }) => {
            return fault_response(429, Some(retry_after), model);
        }
        Some(Fault::Status(status)) => return fault_response(status, None, model),
        _ => {}
    }
    if let Err(e) = authorize(&shared, &headers) {
        return e.into_response();
    }
    let chat = match protocol::parse(&body, model) {
        Ok(chat) => chat,
        Err(e) => return e.into_response(),
    };
    let (reply, answered) = {
        let mut state = shared.lock();
        state.answered += 1;
        (state.reply.clone(), state.answered)
    };
    let reply = reply.unwrap_or_else(|| protocol::default_reply(&chat.messages));
    let mut pieces: Vec<String> = protocol::tokens(&reply)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let finish = match chat.max_tokens {
        Some(max) if max < pieces.len() as u64 => {
            pieces.truncate(max as usize);
            "length"
        }
        _ => "stop",
    };
    let usage = protocol::usage(protocol::prompt_tokens(&chat.messages), pieces.len() as u64);
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let id = format!("chatcmpl-standin{created:x}{answered:08}");
    let request_id = HeaderValue::from_str(&format!("req_standin{created:x}{answered:08}"))
        .unwrap_or(HeaderValue::from_static("req_standin"));
    let meta = Meta {
        id,
        created,
        model: model.to_owned(),
    };
    let mut response = if chat.stream {
        let (tx, rx) = mpsc::channel(8);
        tokio::spawn(stream(
            tx,
            meta,
            pieces,
            finish,
            chat.include_usage.then_some(usage),
            fault,
        ));
        let mut response = Body::from_stream(Chunks(rx)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream; charset=utf-8"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    } else {
        Json(json!({
            "id": meta.id,
            "object": "chat.completion",
            "created": meta.created,
            "model": meta.model,
            "choices": [{
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": pieces.concat(),
                    "refusal": null,
                    "annotations": [],
                },
                "logprobs": null,
                "finish_reason": finish,
            }],
            "usage": usage,
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
        }))
        .into_response()
    };
    let headers = response.headers_mut();
    headers.insert("x-request-id", request_id);
    headers.insert("openai-version", HeaderValue::from_static("2020-10-01"));
    headers.insert("openai-processing-ms", HeaderValue::from_static("1"));
    response
}

/// The fields every chunk of one completion shares.
struct Meta {
    id: String,
    created: u64,
    model: String,
}

/// Produces the event stream into `tx`, one `data: ...\n\n` event per send
/// (each is flushed as it is sent); stops early if the client goes away.
async fn stream(
    tx: mpsc::Sender<Bytes>,
    meta: Meta,
    pieces: Vec<String>,
    finish: &'static str,
    usage: Option<Value>,
    fault: Option<Fault>,
) {
    let include_usage = usage.is_some();
    let chunk = |choices: Value, usage: Option<&Value>| {
        let mut chunk = json!({
            "id": meta.id,
            "object": "chat.completion.chunk",
            "created": meta.created,
            "model": meta.model,
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
            "choices": choices,
        });
        if include_usage {
            chunk["usage"] = usage.cloned().unwrap_or(Value::Null);
        }
        Bytes::from(format!("data: {chunk}\n\n"))
    };
    let delta = |delta: Value, finish: Option<&str>| json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]);
    let first = delta(
        json!({"role": "assistant", "content": "", "refusal": null}),
        None,
    );
    if tx.send(chunk(first, None)).await.is_err() {
        return;
    }
    for i in 0..=pieces.len() {
        match &fault {
            Some(Fault::Stall { after, pause }) if *after == i => tokio::time::sleep(*pause).await,
            Some(Fault::Cut { after }) if *after == i => return,
            _ => {}
        }
        if let Some(piece) = pieces.get(i)
            && tx
                .send(chunk(delta(json!({"content": piece}), None), None))
                .await
                .is_err()
        {
            return;
        }
    }
    let mut tail = vec![chunk(delta(json!({}), Some(finish)), None)];
    if let Some(usage) = &usage {
        tail.push(chunk(json!([]), Some(usage)));
    }
    tail.push(Bytes::from_static(b"data: [DONE]\n\n"));
    for event in tail {
        if tx.send(event).await.is_err() {
            return;
        }
    }
}

/// The receiving end of the event channel, as a body stream.
struct Chunks(mpsc::Receiver<Bytes>);

impl futures_core::Stream for Chunks {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|event| event.map(Ok))
    }
}

/// OpenAI's `List models`, with the one model served.
async fn models(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Err(e) = authorize(&shared, &headers) {
        return e.into_response();
    }
    Json(json!({
        "object": "list",
        "data": [{
            "id": shared.config.model,
            "object": "model",
            "created": 1_700_000_000,
            "owned_by": "callboard-stand-in",
        }],
    }))
    .into_response()
}

/// OpenAI's answer to an unknown route or method.
async fn invalid_url(request: Request) -> Response {
    let message = format!(
        "Invalid URL ({} {})",
        request.method(),
        request.uri().path()
    );
    ApiError::new(StatusCode::NOT_FOUND, None, message).into_response()
}
