//! `callboard:plugin/models` (API 0.5+): chat completions with the
//! operator's language model. Granted as `capabilities.models`.
//!
//! The host, never the plugin, talks to the provider (`[models]`,
//! [`ModelsConfig`]): it adds the key, streams the answer (so a provider
//! that stalls is stopped at the idle timeout, not at the total one), caps
//! what it reads, and counts tokens against two budgets: per plugin call
//! (one question) in the call's store, and per plugin per UTC day in the
//! shared [`Counters`] (every replica adds to the same sum). Prompts and
//! answers go nowhere but the provider; the log gets token counts, and
//! contents only with `models.log_contents`.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use callboard_store::coord::Counters;
use serde_json::{Value, json};

use crate::plugins::settings::ModelsConfig;

/// Most messages one chat carries.
pub const MAX_MESSAGES: usize = 64;
/// Most bytes of text one chat carries, all messages together.
pub const MAX_PROMPT_BYTES: usize = 256 << 10;
/// Most bytes of answer kept.
pub const MAX_ANSWER_BYTES: usize = 256 << 10;
/// Most bytes read from the provider for one chat (the stream's framing
/// and metadata included).
const MAX_READ_BYTES: usize = 4 << 20;
/// Most bytes of an error body read.
const MAX_ERROR_BYTES: usize = 16 << 10;

/// A chat message's author.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// A chat, as a plugin asks it.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub messages: Vec<(Role, String)>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
}

/// The provider's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    pub content: String,
    pub finish_reason: String,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub model: String,
}

/// Why a chat was not answered (every version's `models.error`). Each
/// message is fit to show a person: no key, no host internals.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    #[error("this plugin is not granted language models")]
    Denied,
    #[error("no language model is configured")]
    NotConfigured,
    #[error("{0}")]
    Budget(String),
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Invalid(String),
}

/// The configured provider, shared by every plugin granted `models`.
pub struct ModelClient {
    config: ModelsConfig,
    endpoint: String,
    key: String,
    http: reqwest::Client,
    counters: Arc<dyn Counters>,
}

impl std::fmt::Debug for ModelClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelClient")
            .field("endpoint", &self.endpoint)
            .field("model", &self.config.model)
            .finish_non_exhaustive()
    }
}

impl ModelClient {
    /// The client for `config`, or none when no provider is configured; an
    /// error names what cannot be used (the key file).
    pub fn new(
        config: &ModelsConfig,
        counters: Arc<dyn Counters>,
    ) -> anyhow::Result<Option<Arc<Self>>> {
        if !config.configured() {
            return Ok(None);
        }
        config.check().map_err(anyhow::Error::msg)?;
        let key = match &config.api_key_file {
            Some(file) => std::fs::read_to_string(file)
                .map_err(|e| anyhow::anyhow!("models.api_key_file {}: {e}", file.display()))?
                .trim()
                .to_owned(),
            None => config.api_key.trim().to_owned(),
        };
        if key.chars().any(|c| c.is_control()) {
            anyhow::bail!("models: the key holds control characters");
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(config.idle_timeout_secs.min(10)))
            .build()?;
        Ok(Some(Arc::new(Self {
            endpoint: format!(
                "{}/chat/completions",
                config.base_url.trim().trim_end_matches('/')
            ),
            config: config.clone(),
            key,
            http,
            counters,
        })))
    }

    /// The configured model's name.
    pub fn model(&self) -> &str {
        &self.config.model
    }

    /// Tokens one plugin call may spend.
    pub fn max_tokens_per_call(&self) -> u32 {
        self.config.max_tokens_per_call
    }

    fn day_counter(plugin: &str) -> String {
        let day = jiff::Timestamp::now().as_second().div_euclid(86_400);
        format!("models.tokens.{plugin}.{day}")
    }

    /// Tokens `plugin` spent today, summed over replicas.
    async fn spent_today(&self, plugin: &str) -> Result<u64, ModelError> {
        let name = Self::day_counter(plugin);
        let read = self.counters.read(&name).await.map_err(|e| {
            tracing::error!(target: "models", plugin, "reading the day's token count: {e}");
            ModelError::Unavailable("the portal could not read its token budget; try again".into())
        })?;
        Ok(read
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, v)| u64::try_from(*v).unwrap_or(0)))
    }

    /// Asks the provider, as `plugin` (`label` for logs), with `spent` of
    /// this call's budget already used and at most `remaining` time.
    pub async fn chat(
        &self,
        plugin: &str,
        label: &str,
        request: ChatRequest,
        spent: &mut u32,
        remaining: Duration,
    ) -> Result<ChatResponse, ModelError> {
        let bytes: usize = request.messages.iter().map(|(_, m)| m.len()).sum();
        if request.messages.is_empty() || request.messages.len() > MAX_MESSAGES {
            return Err(ModelError::Invalid(format!(
                "a chat takes 1 to {MAX_MESSAGES} messages, not {}",
                request.messages.len()
            )));
        }
        if bytes > MAX_PROMPT_BYTES {
            return Err(ModelError::Invalid(format!(
                "a chat takes at most {MAX_PROMPT_BYTES} bytes of text, not {bytes}"
            )));
        }
        if let Some(t) = request.temperature
            && !(0.0..=2.0).contains(&t)
        {
            return Err(ModelError::Invalid("temperature must be 0 to 2".into()));
        }
        // The per-call budget: what the prompt will take (about a token per
        // four bytes) must leave room for an answer.
        let per_call = self.config.max_tokens_per_call;
        let estimate =
            u32::try_from(bytes.div_ceil(4) + 4 * request.messages.len()).unwrap_or(u32::MAX);
        let left = per_call.saturating_sub(*spent).saturating_sub(estimate);
        if left < 16 {
            return Err(ModelError::Budget(format!(
                "this question would need more than the {per_call} tokens the portal allows per question"
            )));
        }
        let max_tokens = request.max_tokens.map_or(left, |m| m.min(left)).max(1);
        let per_day = self.config.max_tokens_per_day;
        let today = self.spent_today(plugin).await?;
        if today >= per_day {
            return Err(ModelError::Budget(format!(
                "the daily budget of {per_day} tokens for this plugin is spent; it renews at 00:00 UTC"
            )));
        }
        let mut body = json!({
            "model": self.config.model,
            "messages": request.messages.iter().map(|(role, content)| json!({"role": role.as_str(), "content": content})).collect::<Vec<_>>(),
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": max_tokens,
        });
        if let Some(t) = request.temperature {
            body["temperature"] = json!(t);
        }
        if self.config.log_contents {
            tracing::debug!(target: "models", plugin = label, prompt = %body["messages"], "model prompt");
        }
        let total = Duration::from_secs(self.config.timeout_secs).min(remaining);
        let started = Instant::now();
        let answer = tokio::time::timeout(total, self.send(&body))
            .await
            .unwrap_or_else(|_| {
                Err(ModelError::Timeout(format!(
                    "the language model did not finish within {} s",
                    total.as_secs_f32().ceil()
                )))
            });
        let ms = started.elapsed().as_millis() as u64;
        match &answer {
            Ok(a) => {
                let used = i64::from(a.prompt_tokens) + i64::from(a.completion_tokens);
                *spent = spent.saturating_add(u32::try_from(used).unwrap_or(u32::MAX));
                if let Err(e) = self
                    .counters
                    .add(&[(Self::day_counter(plugin), used)])
                    .await
                {
                    tracing::error!(target: "models", plugin = label, "recording {used} tokens: {e}");
                }
                metrics::counter!("callboard_model_tokens_total", "plugin" => plugin.to_owned(), "kind" => "prompt")
                    .increment(u64::from(a.prompt_tokens));
                metrics::counter!("callboard_model_tokens_total", "plugin" => plugin.to_owned(), "kind" => "completion")
                    .increment(u64::from(a.completion_tokens));
                tracing::info!(target: "models", plugin = label, model = %a.model,
                    prompt_tokens = a.prompt_tokens, completion_tokens = a.completion_tokens,
                    finish = %a.finish_reason, ms, "model chat");
                if self.config.log_contents {
                    tracing::debug!(target: "models", plugin = label, answer = %a.content, "model answer");
                }
            }
            Err(e) => {
                metrics::counter!("callboard_model_errors_total", "plugin" => plugin.to_owned())
                    .increment(1);
                tracing::warn!(target: "models", plugin = label, ms, "model chat failed: {e}");
            }
        }
        answer
    }

    async fn send(&self, body: &Value) -> Result<ChatResponse, ModelError> {
        let idle = Duration::from_secs(self.config.idle_timeout_secs);
        let header = self.config.api_key_header.trim().to_ascii_lowercase();
        let mut request = self
            .http
            .post(&self.endpoint)
            .header("accept", "text/event-stream")
            .json(body);
        if !self.key.is_empty() {
            request = if header == "authorization" {
                request.bearer_auth(&self.key)
            } else {
                request.header(header.as_str(), &self.key)
            };
        }
        let stalled = || {
            ModelError::Timeout(format!(
                "the language model sent nothing for {} s",
                idle.as_secs()
            ))
        };
        let mut response = tokio::time::timeout(idle, request.send())
            .await
            .map_err(|_| stalled())?
            .map_err(|e| {
                ModelError::Unavailable(format!(
                    "the language model could not be reached ({})",
                    if e.is_connect() {
                        "connection refused or unreachable"
                    } else {
                        "request failed"
                    }
                ))
            })?;
        let status = response.status();
        let mut read = Vec::new();
        let cap = if status.is_success() {
            MAX_READ_BYTES
        } else {
            MAX_ERROR_BYTES
        };
        let streamed = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let mut stream = Stream::default();
        loop {
            let chunk = tokio::time::timeout(idle, response.chunk())
                .await
                .map_err(|_| stalled())?
                .map_err(|_| {
                    ModelError::Unavailable("the language model's answer broke off".into())
                })?;
            let Some(chunk) = chunk else { break };
            if read.len() + chunk.len() > cap {
                if !status.is_success() {
                    break;
                }
                return Err(ModelError::Unavailable(format!(
                    "the language model's answer is over {} MiB",
                    MAX_READ_BYTES >> 20
                )));
            }
            read.extend_from_slice(&chunk);
            if status.is_success() && streamed {
                stream.feed(&mut read)?;
                if stream.done {
                    break;
                }
            }
        }
        if !status.is_success() {
            return Err(provider_error(status.as_u16(), &read));
        }
        if streamed {
            stream.finish(&self.config.model)
        } else {
            complete(&read, &self.config.model)
        }
    }
}

/// The provider's error, as a sentence: its status and, when it says, its
/// message (OpenAI's `{"error": {"message"}}`), cut short.
fn provider_error(status: u16, body: &[u8]) -> ModelError {
    // A refused key's message may quote part of the key: never pass it on.
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .filter(|_| !matches!(status, 401 | 403))
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .map(|m| crate::plugins::capabilities::log::truncate(&m, 300).to_owned());
    let what = match status {
        401 | 403 => "refused the portal's key",
        404 => "does not know the model or the address",
        429 => "is rate limiting the portal",
        500..=599 => "failed",
        _ => "refused the request",
    };
    ModelError::Unavailable(match message {
        Some(m) => format!("the language model provider {what} ({status}: {m})"),
        None => format!("the language model provider {what} ({status})"),
    })
}

/// A non-streamed `chat.completion`.
fn complete(body: &[u8], model: &str) -> Result<ChatResponse, ModelError> {
    let bad =
        || ModelError::Unavailable("the language model's answer is not a chat completion".into());
    let v: Value = serde_json::from_slice(body).map_err(|_| bad())?;
    let choice = &v["choices"][0];
    let content = choice["message"]["content"].as_str().ok_or_else(bad)?;
    Ok(ChatResponse {
        content: cut(content).to_owned(),
        finish_reason: choice["finish_reason"]
            .as_str()
            .unwrap_or("stop")
            .to_owned(),
        prompt_tokens: tokens(&v["usage"]["prompt_tokens"]),
        completion_tokens: tokens(&v["usage"]["completion_tokens"]),
        model: v["model"].as_str().unwrap_or(model).to_owned(),
    })
}

fn tokens(v: &Value) -> u32 {
    v.as_u64()
        .map_or(0, |t| u32::try_from(t).unwrap_or(u32::MAX))
}

fn cut(text: &str) -> &str {
    crate::plugins::capabilities::log::truncate(text, MAX_ANSWER_BYTES)
}

/// A server-sent-event stream of `chat.completion.chunk`s, fed as bytes
/// arrive.
#[derive(Default)]
struct Stream {
    content: String,
    finish: Option<String>,
    usage: Option<(u32, u32)>,
    model: Option<String>,
    done: bool,
}

impl Stream {
    /// Takes the complete lines out of `buffer`.
    fn feed(&mut self, buffer: &mut Vec<u8>) -> Result<(), ModelError> {
        while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\r', '\n']);
            let Some(data) = line.strip_prefix("data:") else {
                // Comments, `event:` and blank lines carry nothing here.
                continue;
            };
            let data = data.trim_start();
            if data == "[DONE]" {
                self.done = true;
                return Ok(());
            }
            let Ok(chunk) = serde_json::from_str::<Value>(data) else {
                return Err(ModelError::Unavailable(
                    "the language model's stream held a malformed event".into(),
                ));
            };
            if let Some(message) = chunk["error"]["message"].as_str() {
                return Err(ModelError::Unavailable(format!(
                    "the language model provider failed mid-answer: {}",
                    crate::plugins::capabilities::log::truncate(message, 300)
                )));
            }
            if let Some(m) = chunk["model"].as_str() {
                self.model.get_or_insert_with(|| m.to_owned());
            }
            if let Some(piece) = chunk["choices"][0]["delta"]["content"].as_str()
                && self.content.len() < MAX_ANSWER_BYTES
            {
                self.content.push_str(piece);
            }
            if let Some(f) = chunk["choices"][0]["finish_reason"].as_str() {
                self.finish = Some(f.to_owned());
            }
            if chunk["usage"].is_object() {
                self.usage = Some((
                    tokens(&chunk["usage"]["prompt_tokens"]),
                    tokens(&chunk["usage"]["completion_tokens"]),
                ));
            }
        }
        Ok(())
    }

    fn finish(self, model: &str) -> Result<ChatResponse, ModelError> {
        let Some(finish_reason) = self.finish else {
            return Err(ModelError::Unavailable(
                "the language model's answer broke off before it finished".into(),
            ));
        };
        // A provider that does not report usage in streams is counted at
        // about four bytes a token.
        let (prompt_tokens, completion_tokens) = self.usage.unwrap_or((
            0,
            u32::try_from(self.content.len().div_ceil(4)).unwrap_or(u32::MAX),
        ));
        Ok(ChatResponse {
            content: cut(&self.content).to_owned(),
            finish_reason,
            prompt_tokens,
            completion_tokens,
            model: self.model.unwrap_or_else(|| model.to_owned()),
        })
    }
}

/// What the `models` glue sees of a call.
pub struct ModelsView<'a> {
    pub(in crate::plugins) label: &'a str,
    pub(in crate::plugins) plugin: &'a str,
    /// The provider, when the plugin is granted `models` and one is configured.
    pub(in crate::plugins) client: Option<&'a Arc<ModelClient>>,
    pub(in crate::plugins) granted: bool,
    /// Tokens this call has spent.
    pub(in crate::plugins) spent: &'a mut u32,
    /// What remains of the call's deadline.
    pub(in crate::plugins) remaining: Duration,
}

/// The linker's projection onto [`ModelsView`].
pub struct Models;

impl wasmtime::component::HasData for Models {
    type Data<'a> = ModelsView<'a>;
}

impl ModelsView<'_> {
    /// `models.configured`: the model and the per-call budget.
    pub(in crate::plugins) fn models_configured(&self) -> Option<(String, u32)> {
        let client = self.client.filter(|_| self.granted)?;
        Some((client.model().to_owned(), client.max_tokens_per_call()))
    }

    /// `models.chat`.
    pub(in crate::plugins) async fn models_chat(
        &mut self,
        request: ChatRequest,
    ) -> Result<ChatResponse, ModelError> {
        if !self.granted {
            crate::telemetry::metrics::plugin_denied(self.label);
            return Err(ModelError::Denied);
        }
        let Some(client) = self.client else {
            return Err(ModelError::NotConfigured);
        };
        client
            .chat(self.plugin, self.label, request, self.spent, self.remaining)
            .await
    }
}

/// The WIT glue for every API version with this interface.
macro_rules! models_glue {
    ($wit:path) => {
        const _: () = {
            use $crate::plugins::capabilities::models::{
                ChatRequest, ModelError, ModelsView, Role,
            };
            use $wit as wit;

            impl From<ModelError> for wit::Error {
                fn from(e: ModelError) -> Self {
                    match e {
                        ModelError::Denied => wit::Error::Denied,
                        ModelError::NotConfigured => wit::Error::NotConfigured,
                        ModelError::Budget(why) => wit::Error::BudgetExhausted(why),
                        ModelError::Timeout(why) => wit::Error::Timeout(why),
                        ModelError::Unavailable(why) => wit::Error::Unavailable(why),
                        ModelError::Invalid(why) => wit::Error::Invalid(why),
                    }
                }
            }

            impl wit::Host for ModelsView<'_> {
                fn configured(&mut self) -> Option<wit::Info> {
                    self.models_configured()
                        .map(|(model, max_tokens_per_call)| wit::Info {
                            model,
                            max_tokens_per_call,
                        })
                }

                async fn chat(
                    &mut self,
                    request: wit::ChatRequest,
                ) -> Result<wit::ChatResponse, wit::Error> {
                    let request = ChatRequest {
                        messages: request
                            .messages
                            .into_iter()
                            .map(|m| {
                                let role = match m.role {
                                    wit::Role::System => Role::System,
                                    wit::Role::User => Role::User,
                                    wit::Role::Assistant => Role::Assistant,
                                };
                                (role, m.content)
                            })
                            .collect(),
                        max_tokens: request.max_tokens,
                        temperature: request.temperature,
                    };
                    let a = self.models_chat(request).await?;
                    Ok(wit::ChatResponse {
                        content: a.content,
                        finish_reason: a.finish_reason,
                        usage: wit::Usage {
                            prompt_tokens: a.prompt_tokens,
                            completion_tokens: a.completion_tokens,
                        },
                        model: a.model,
                    })
                }
            }
        };
    };
}

pub(in crate::plugins) use models_glue;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_is_read_as_it_arrives() {
        let mut s = Stream::default();
        let mut buf = b"data: {\"model\":\"m\",\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"Hel".to_vec();
        s.feed(&mut buf).unwrap();
        assert_eq!(s.content, "");
        buf.extend_from_slice(b"lo\"}}]}\n\n: keep-alive\n\ndata: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n");
        s.feed(&mut buf).unwrap();
        assert!(s.done);
        let a = s.finish("x").unwrap();
        assert_eq!(a.content, "Hello");
        assert_eq!((a.prompt_tokens, a.completion_tokens), (7, 2));
        assert_eq!(a.model, "m");
        assert_eq!(a.finish_reason, "stop");
    }

    #[test]
    fn a_cut_stream_or_bad_event_is_an_error_not_an_answer() {
        let mut s = Stream::default();
        let mut buf = b"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n".to_vec();
        s.feed(&mut buf).unwrap();
        assert!(matches!(s.finish("m"), Err(ModelError::Unavailable(_))));
        let mut s = Stream::default();
        let mut buf = b"data: {not json\n\n".to_vec();
        assert!(s.feed(&mut buf).is_err());
    }

    #[test]
    fn provider_errors_say_what_happened_without_internals() {
        let e = provider_error(401, br#"{"error":{"message":"Incorrect API key provided: sk-abc","code":"invalid_api_key"}}"#);
        assert_eq!(
            e.to_string(),
            "the language model provider refused the portal's key (401)"
        );
        let e = provider_error(
            429,
            br#"{"error":{"message":"Rate limit reached","code":"rate_limit_exceeded"}}"#,
        );
        assert!(
            e.to_string()
                .contains("rate limiting the portal (429: Rate limit reached)"),
            "{e}"
        );
        let e = provider_error(503, b"<html>down</html>");
        assert_eq!(e.to_string(), "the language model provider failed (503)");
    }
}
