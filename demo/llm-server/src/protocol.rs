//! The chat-completions protocol as the stand-in speaks it: OpenAI's request
//! checks and error bodies, the deterministic reply, and token counting.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};

/// The roles OpenAI accepts in `messages`.
const ROLES: [&str; 5] = ["system", "developer", "user", "assistant", "tool"];

/// Request parameters OpenAI knows; any other is refused, as OpenAI does, so
/// a misspelt parameter fails a test instead of being silently ignored.
const KNOWN: &str = "model messages stream stream_options max_tokens max_completion_tokens \
    temperature n top_p stop seed user frequency_penalty presence_penalty logit_bias logprobs \
    top_logprobs response_format tools tool_choice parallel_tool_calls functions function_call \
    store metadata service_tier reasoning_effort modalities audio prediction web_search_options \
    prompt_cache_key safety_identifier verbosity";

/// An error answered in OpenAI's shape:
/// `{"error":{"message","type","param","code"}}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub kind: &'static str,
    pub param: Option<String>,
    pub code: Option<&'static str>,
}

impl ApiError {
    /// An `invalid_request_error` with no `param`.
    pub fn new(status: StatusCode, code: Option<&'static str>, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            kind: "invalid_request_error",
            param: None,
            code,
        }
    }

    /// A 400 `invalid_request_error` about `param`.
    fn invalid(param: &str, code: Option<&'static str>, message: String) -> Self {
        ApiError {
            param: Some(param.to_owned()),
            ..Self::new(StatusCode::BAD_REQUEST, code, message)
        }
    }

    fn missing(param: &str) -> Self {
        Self::invalid(
            param,
            Some("missing_required_parameter"),
            format!("Missing required parameter: '{param}'."),
        )
    }

    fn wrong_type(param: &str, expected: &str, got: &Value) -> Self {
        let got = match got {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(n) if n.is_f64() => "a decimal",
            Value::Number(_) => "an integer",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        };
        Self::invalid(
            param,
            Some("invalid_type"),
            format!("Invalid type for '{param}': expected {expected}, but got {got} instead."),
        )
    }

    /// The body, `{"error": {...}}`.
    pub fn body(&self) -> Value {
        json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

/// One message of a request: its role and its text (a string content, or
/// the text parts joined by newlines).
#[derive(Debug)]
pub(crate) struct Message {
    pub role: String,
    pub text: String,
}

/// A request that passed the checks, reduced to what the stand-in uses.
#[derive(Debug)]
pub(crate) struct Chat {
    pub messages: Vec<Message>,
    pub stream: bool,
    pub include_usage: bool,
    pub max_tokens: Option<u64>,
}

/// Checks a request body as OpenAI does (400s naming `param`; an unknown
/// model is a 404 `model_not_found`).
pub(crate) fn parse(body: &[u8], model: &str) -> Result<Chat, ApiError> {
    let body: Value = serde_json::from_slice(body).map_err(|_| {
        let message = "We could not parse the JSON body of your request. (HINT: This likely \
            means you aren't using your HTTP library correctly. The OpenAI API expects a JSON \
            payload, but what was sent was not valid JSON.)";
        ApiError::new(StatusCode::BAD_REQUEST, None, message)
    })?;
    let Value::Object(body) = &body else {
        return Err(ApiError::wrong_type("body", "an object", &body));
    };
    if let Some(unknown) = body
        .keys()
        .find(|k| !KNOWN.split_whitespace().any(|known| known == *k))
    {
        return Err(ApiError::invalid(
            unknown,
            Some("unknown_parameter"),
            format!("Unrecognized request argument supplied: {unknown}"),
        ));
    }
    let asked = string(body, "model", "model")?;
    let messages = messages(body)?;
    let stream = boolean(body, "stream")?.unwrap_or(false);
    let include_usage = match body.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(options)) if stream => match options.get("include_usage") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(include)) => *include,
            Some(other) => {
                let param = "stream_options.include_usage";
                return Err(ApiError::wrong_type(param, "a boolean", other));
            }
        },
        Some(Value::Object(_)) => {
            return Err(ApiError::invalid(
                "stream_options",
                None,
                "The 'stream_options' parameter is only allowed when 'stream' is enabled."
                    .to_owned(),
            ));
        }
        Some(other) => return Err(ApiError::wrong_type("stream_options", "an object", other)),
    };
    let max_tokens = match positive(body, "max_completion_tokens")? {
        Some(n) => Some(n),
        None => positive(body, "max_tokens")?,
    };
    match body.get("temperature") {
        None | Some(Value::Null) => {}
        Some(Value::Number(t)) => {
            let t = t.as_f64().unwrap_or_default();
            if !(0.0..=2.0).contains(&t) {
                let (code, what) = if t < 0.0 {
                    (
                        "decimal_below_min_value",
                        "below minimum value. Expected a value >= 0",
                    )
                } else {
                    (
                        "decimal_above_max_value",
                        "above maximum value. Expected a value <= 2",
                    )
                };
                let message =
                    format!("Invalid 'temperature': decimal {what}, but got {t} instead.");
                return Err(ApiError::invalid("temperature", Some(code), message));
            }
        }
        Some(other) => return Err(ApiError::wrong_type("temperature", "a number", other)),
    }
    if let Some(n) = positive(body, "n")?
        && n != 1
    {
        return Err(ApiError::invalid(
            "n",
            Some("unsupported_value"),
            format!("Unsupported value: 'n' is {n}, but this stand-in only supports n = 1."),
        ));
    }
    if asked != model {
        let message =
            format!("The model `{asked}` does not exist or you do not have access to it.");
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            Some("model_not_found"),
            message,
        ));
    }
    Ok(Chat {
        messages,
        stream,
        include_usage,
        max_tokens,
    })
}

fn messages(body: &Map<String, Value>) -> Result<Vec<Message>, ApiError> {
    let items = match body.get("messages") {
        None | Some(Value::Null) => return Err(ApiError::missing("messages")),
        Some(Value::Array(items)) => items,
        Some(other) => return Err(ApiError::wrong_type("messages", "an array", other)),
    };
    if items.is_empty() {
        return Err(ApiError::invalid(
            "messages",
            Some("empty_array"),
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got \
             an empty array instead."
                .to_owned(),
        ));
    }
    let mut messages = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("messages[{i}]");
        let Value::Object(item) = item else {
            return Err(ApiError::wrong_type(&at, "an object", item));
        };
        let role = string(item, "role", &format!("{at}.role"))?;
        if !ROLES.contains(&role) {
            let message = format!(
                "Invalid value: '{role}'. Supported values are: 'system', 'developer', 'user', \
                 'assistant', and 'tool'."
            );
            return Err(ApiError::invalid(
                &format!("{at}.role"),
                Some("invalid_value"),
                message,
            ));
        }
        let content = format!("{at}.content");
        let text = match item.get("content") {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Array(parts)) => {
                let mut texts = Vec::with_capacity(parts.len());
                for (j, part) in parts.iter().enumerate() {
                    let at = format!("{content}[{j}]");
                    let Value::Object(part) = part else {
                        return Err(ApiError::wrong_type(&at, "an object", part));
                    };
                    let kind = string(part, "type", &format!("{at}.type"))?;
                    if kind != "text" {
                        let message = format!(
                            "Invalid value: '{kind}'. This stand-in supports only 'text' parts."
                        );
                        let param = format!("{at}.type");
                        return Err(ApiError::invalid(&param, Some("invalid_value"), message));
                    }
                    texts.push(string(part, "text", &format!("{at}.text"))?);
                }
                texts.join("\n")
            }
            // An assistant turn may carry only tool calls.
            None | Some(Value::Null) if role == "assistant" => String::new(),
            None => return Err(ApiError::missing(&content)),
            Some(other) => {
                return Err(ApiError::wrong_type(
                    &content,
                    "one of a string or array of objects",
                    other,
                ));
            }
        };
        messages.push(Message {
            role: role.to_owned(),
            text,
        });
    }
    Ok(messages)
}

/// A required string, `param` naming it in errors.
fn string<'a>(map: &'a Map<String, Value>, key: &str, param: &str) -> Result<&'a str, ApiError> {
    match map.get(key) {
        None | Some(Value::Null) => Err(ApiError::missing(param)),
        Some(Value::String(text)) => Ok(text),
        Some(other) => Err(ApiError::wrong_type(param, "a string", other)),
    }
}

/// An optional boolean parameter (null counts as absent).
fn boolean(body: &Map<String, Value>, name: &str) -> Result<Option<bool>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(ApiError::wrong_type(name, "a boolean", other)),
    }
}

/// An optional integer parameter that must be at least 1.
fn positive(body: &Map<String, Value>, name: &str) -> Result<Option<u64>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n >= 1) => Ok(n.as_u64()),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Err(ApiError::invalid(
            name,
            Some("integer_below_min_value"),
            format!(
                "Invalid '{name}': integer below minimum value. Expected a value >= 1, but got {n} instead."
            ),
        )),
        Some(other) => Err(ApiError::wrong_type(name, "an integer", other)),
    }
}

/// The default reply: `Stand-in answer: ` and the first 200 characters of
/// the last user message, then ` See [n].` for each distinct citation
/// marker of the system, developer and user messages (first three, in order
/// of first appearance).
pub(crate) fn default_reply(messages: &[Message]) -> String {
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .map_or("", |m| m.text.as_str());
    let mut reply = format!(
        "Stand-in answer: {}",
        last_user.chars().take(200).collect::<String>()
    );
    for n in citations(messages) {
        reply.push_str(&format!(" See [{n}]."));
    }
    reply
}

/// Distinct `[n]` markers (n decimal digits) in order of first appearance, at most three.
fn citations(messages: &[Message]) -> Vec<&str> {
    let mut found: Vec<&str> = Vec::new();
    let sources = messages
        .iter()
        .filter(|m| matches!(m.role.as_str(), "system" | "developer" | "user"));
    for message in sources {
        let mut rest = message.text.as_str();
        while let Some(open) = rest.find('[') {
            rest = &rest[open + 1..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits > 0 && rest[digits..].starts_with(']') {
                let n = &rest[..digits];
                if !found.contains(&n) {
                    found.push(n);
                    if found.len() == 3 {
                        return found;
                    }
                }
            }
        }
    }
    found
}

/// The reply split into tokens: each word with the whitespace before it
/// (trailing whitespace stays on the last word), so the pieces joined give
/// the reply back exactly.
pub(crate) fn tokens(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let (mut start, mut in_word) = (0, false);
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            if in_word {
                pieces.push(&text[start..i]);
                start = i;
                in_word = false;
            }
        } else {
            in_word = true;
        }
    }
    let tail = &text[start..];
    match pieces.last_mut() {
        Some(last) if !in_word => *last = &text[text.len() - last.len() - tail.len()..],
        _ if !tail.is_empty() => pieces.push(tail),
        _ => {}
    }
    pieces
}

/// Prompt tokens: per message, its characters divided by four (rounded up)
/// plus four.
pub(crate) fn prompt_tokens(messages: &[Message]) -> u64 {
    messages
        .iter()
        .map(|m| (m.text.chars().count() as u64).div_ceil(4) + 4)
        .sum()
}

/// OpenAI's `usage` object.
pub(crate) fn usage(prompt: u64, completion: u64) -> Value {
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(role: &str, text: &str) -> Message {
        Message {
            role: role.to_owned(),
            text: text.to_owned(),
        }
    }

    #[test]
    fn tokens_join_back_to_the_text() {
        for text in [
            "",
            "one",
            "  lead and  trail  ",
            "a\nb\tc",
            "   ",
            "é ü [1].",
        ] {
            let pieces = tokens(text);
            assert_eq!(pieces.concat(), text, "{pieces:?}");
            assert!(pieces.iter().all(|p| !p.is_empty()));
        }
        assert_eq!(
            tokens("Stand-in answer: hi "),
            ["Stand-in", " answer:", " hi "]
        );
        assert_eq!(tokens("  a"), ["  a"]);
    }

    #[test]
    fn the_reply_quotes_the_last_question_and_cites_in_order() {
        let messages = [
            message("system", "Sources: [2] alpha [1] beta [2] [x] [] [3] [4]"),
            message("user", "first"),
            message("assistant", "[9]"),
            message("user", "What is [5]?"),
        ];
        assert_eq!(
            default_reply(&messages),
            "Stand-in answer: What is [5]? See [2]. See [1]. See [3]."
        );
        let long = "é".repeat(300);
        let reply = default_reply(&[message("user", &long)]);
        assert_eq!(reply.chars().count(), "Stand-in answer: ".len() + 200);
        assert_eq!(
            prompt_tokens(&[message("user", "12345"), message("system", "")]),
            2 + 4 + 4
        );
    }
}
