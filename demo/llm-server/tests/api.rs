//! The stand-in over HTTP: auth, request checks, both response shapes,
//! usage, `max_tokens`, every fault, and request recording.

use std::time::{Duration, Instant};

use callboard_demo_llm::{Fault, Handle, StandIn};
use serde_json::{Value, json};

async fn start() -> Handle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    callboard_demo_llm::serve(listener, StandIn::default())
        .await
        .unwrap()
}

fn body(stream: bool) -> Value {
    json!({
        "model": "demo-model",
        "messages": [
            {"role": "system", "content": "Answer from the sources. [2] Runbook. [1] Owners. [2]"},
            {"role": "user", "content": [{"type": "text", "text": "Who owns billing?"}]},
        ],
        "stream": stream,
    })
}

/// Posts `body` to chat completions with `key` (if any): status, headers, text.
async fn post(
    llm: &Handle,
    key: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/chat/completions", llm.base_url()))
        .header("content-type", "application/json")
        .body(body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

async fn chat(llm: &Handle, body: &Value) -> (u16, reqwest::header::HeaderMap, String) {
    post(llm, Some("demo-key"), body.to_string()).await
}

/// The JSON events of an event stream, and whether it ended with `[DONE]`.
fn sse(text: &str) -> (Vec<Value>, bool) {
    assert!(text.ends_with("\n\n"), "{text:?}");
    let mut done = false;
    let mut events = Vec::new();
    for event in text.trim_end_matches("\n\n").split("\n\n") {
        let data = event
            .strip_prefix("data: ")
            .unwrap_or_else(|| panic!("{event:?}"));
        assert!(!done, "an event after [DONE]: {text}");
        if data == "[DONE]" {
            done = true;
        } else {
            events.push(serde_json::from_str(data).unwrap());
        }
    }
    (events, done)
}

fn content(events: &[Value]) -> String {
    events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect()
}

fn error(text: &str) -> Value {
    serde_json::from_str::<Value>(text).unwrap()["error"].clone()
}

#[tokio::test]
async fn keys_are_checked_with_openai_401s() {
    let llm = start().await;
    for key in [None, Some("sk-wrong-key-123456"), Some("")] {
        let (status, _, text) = post(&llm, key, body(false).to_string()).await;
        assert_eq!(status, 401, "{key:?}: {text}");
        let error = error(&text);
        assert_eq!(error["type"], "invalid_request_error");
        assert_eq!(error["code"], "invalid_api_key");
        assert_eq!(error["param"], Value::Null);
        if key == Some("sk-wrong-key-123456") {
            let message = error["message"].as_str().unwrap();
            assert!(
                message.starts_with("Incorrect API key provided: sk-****3456."),
                "{message}"
            );
        }
    }
}

#[tokio::test]
async fn bad_requests_name_the_parameter() {
    let llm = start().await;
    let user = |content: Value| json!([{"role": "user", "content": content}]);
    // Each `extra` is merged into a valid body; the error's "param code".
    let cases = [
        (json!({"model": null}), "model missing_required_parameter"),
        (json!({"model": 5}), "model invalid_type"),
        (
            json!({"messages": null}),
            "messages missing_required_parameter",
        ),
        (json!({"messages": []}), "messages empty_array"),
        (json!({"messages": ["hi"]}), "messages[0] invalid_type"),
        (
            json!({"messages": [{"content": "hi"}]}),
            "messages[0].role missing_required_parameter",
        ),
        (
            json!({"messages": [{"role": "robot", "content": "hi"}]}),
            "messages[0].role invalid_value",
        ),
        (
            json!({"messages": [{"role": "user"}]}),
            "messages[0].content missing_required_parameter",
        ),
        (
            json!({"messages": user(json!(3))}),
            "messages[0].content invalid_type",
        ),
        (
            json!({"messages": user(json!([{"type": "image_url"}]))}),
            "messages[0].content[0].type invalid_value",
        ),
        (
            json!({"messages": user(json!([{"type": "text"}]))}),
            "messages[0].content[0].text missing_required_parameter",
        ),
        (json!({"stream": "yes"}), "stream invalid_type"),
        (
            json!({"stream": true, "stream_options": {"include_usage": 1}}),
            "stream_options.include_usage invalid_type",
        ),
        (
            json!({"stream_options": {"include_usage": true}}),
            "stream_options null",
        ),
        (
            json!({"max_tokens": 0}),
            "max_tokens integer_below_min_value",
        ),
        (
            json!({"max_completion_tokens": 1.5}),
            "max_completion_tokens invalid_type",
        ),
        (
            json!({"temperature": 2.5}),
            "temperature decimal_above_max_value",
        ),
        (
            json!({"temperature": -1}),
            "temperature decimal_below_min_value",
        ),
        (json!({"n": 2}), "n unsupported_value"),
        (json!({"max_tokenz": 5}), "max_tokenz unknown_parameter"),
    ];
    let with = |extra: &Value| {
        let mut body = json!({"model": "demo-model", "messages": user(json!("hi"))});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body.to_string()
    };
    let mut cases: Vec<(String, &str)> = cases.iter().map(|(e, want)| (with(e), *want)).collect();
    cases.extend([
        ("{not json".to_owned(), "null null"),
        ("[]".to_owned(), "body invalid_type"),
    ]);
    for (body, want) in cases {
        let (status, _, text) = post(&llm, Some("demo-key"), body.clone()).await;
        let error = error(&text);
        let got = format!(
            "{} {}",
            error["param"].as_str().unwrap_or("null"),
            error["code"].as_str().unwrap_or("null")
        );
        assert_eq!((status, got.as_str()), (400, want), "{body}: {text}");
        assert_eq!(error["type"], "invalid_request_error", "{body}: {text}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let (status, _, text) = post(&llm, Some("demo-key"), with(&json!({"model": "gpt-9"}))).await;
    assert_eq!(
        (status, &error(&text)["code"]),
        (404, &json!("model_not_found"))
    );
    // Optional parameters may be null, temperature at its bounds, n = 1.
    let fine = json!({"temperature": 2, "n": 1, "stream": null, "max_tokens": null, "top_p": 1});
    assert_eq!(post(&llm, Some("demo-key"), with(&fine)).await.0, 200);
    let (status, _, text) = post(&llm, Some("demo-key"), vec![b' '; 2 * 1024 * 1024]).await;
    assert_eq!(status, 413, "{text}");
}

#[tokio::test]
async fn a_completion_has_openais_shape() {
    let llm = start().await;
    let (status, headers, text) = chat(&llm, &body(false)).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(headers["content-type"], "application/json");
    assert!(headers.contains_key("x-request-id"));
    let mut completion: Value = serde_json::from_str(&text).unwrap();
    assert!(completion["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(completion["created"].as_u64().unwrap() > 1_700_000_000);
    completion["id"] = json!("x");
    completion["created"] = json!(0);
    let reply = "Stand-in answer: Who owns billing? See [2]. See [1].";
    // system: 53 chars -> 14 + 4; user: 17 chars -> 5 + 4; reply: 9 words.
    assert_eq!(
        completion,
        json!({
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": "demo-model",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": reply, "refusal": null, "annotations": []},
                "logprobs": null,
                "finish_reason": "stop",
            }],
            "usage": {
                "prompt_tokens": 27,
                "completion_tokens": 9,
                "total_tokens": 36,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0, "audio_tokens": 0,
                    "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": "fp_stand_in",
        })
    );
    llm.set_reply(Some("Scripted  reply.".to_owned()));
    let (_, _, text) = chat(&llm, &body(false)).await;
    let completion: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        completion["choices"][0]["message"]["content"],
        "Scripted  reply."
    );
    assert_eq!(completion["usage"]["completion_tokens"], 2);
}

#[tokio::test]
async fn a_stream_reassembles_to_the_same_reply() {
    let llm = start().await;
    let (_, _, text) = chat(&llm, &body(false)).await;
    let completion: Value = serde_json::from_str(&text).unwrap();
    let (status, headers, text) = chat(&llm, &body(true)).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(headers["content-type"], "text/event-stream; charset=utf-8");
    let (events, done) = sse(&text);
    assert!(done);
    assert_eq!(
        content(&events),
        completion["choices"][0]["message"]["content"]
    );
    // Role chunk, 9 words, finish chunk; no usage anywhere.
    assert_eq!(events.len(), 11);
    assert_eq!(
        events[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": "", "refusal": null})
    );
    assert_eq!(
        events[1]["choices"][0]["delta"],
        json!({"content": "Stand-in"})
    );
    assert_eq!(
        events[2]["choices"][0]["delta"],
        json!({"content": " answer:"})
    );
    assert_eq!(
        events[10]["choices"][0],
        json!({"index": 0, "delta": {}, "logprobs": null, "finish_reason": "stop"})
    );
    for event in &events {
        assert_eq!(event["object"], "chat.completion.chunk");
        assert_eq!(event["id"], events[0]["id"]);
        assert!(event.get("usage").is_none(), "{event}");
    }

    let mut with_usage = body(true);
    with_usage["stream_options"] = json!({"include_usage": true});
    let (_, _, text) = chat(&llm, &with_usage).await;
    let (events, done) = sse(&text);
    assert!(done);
    assert_eq!(events.len(), 12);
    let (last, rest) = events.split_last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"], completion["usage"]);
    assert!(
        rest.iter()
            .all(|e| e["usage"].is_null() && e.get("usage").is_some())
    );
}

#[tokio::test]
async fn max_tokens_cuts_the_reply() {
    let llm = start().await;
    for (name, stream) in [("max_tokens", false), ("max_completion_tokens", true)] {
        let mut request = body(stream);
        request[name] = json!(3);
        let (status, _, text) = chat(&llm, &request).await;
        assert_eq!(status, 200, "{text}");
        let (content, finish) = if stream {
            let (events, _) = sse(&text);
            let finish = events.last().unwrap()["choices"][0]["finish_reason"].clone();
            (content(&events), finish)
        } else {
            let completion: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(completion["usage"]["completion_tokens"], 3);
            let choice = &completion["choices"][0];
            (
                choice["message"]["content"].as_str().unwrap().to_owned(),
                choice["finish_reason"].clone(),
            )
        };
        assert_eq!(content, "Stand-in answer: Who");
        assert_eq!(finish, "length");
    }
    let mut request = body(false);
    request["max_tokens"] = json!(9);
    let (_, _, text) = chat(&llm, &request).await;
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
}

#[tokio::test]
async fn scripted_statuses_apply_to_the_next_requests() {
    let llm = start().await;
    llm.fault_next(Fault::RateLimited { retry_after: 7 }, 2);
    for _ in 0..2 {
        // Even with a wrong key: the fault comes first.
        let (status, headers, text) = post(&llm, Some("wrong"), body(false).to_string()).await;
        assert_eq!(status, 429, "{text}");
        assert_eq!(headers["retry-after"], "7");
        let error = error(&text);
        assert_eq!(error["code"], "rate_limit_exceeded");
        assert_eq!(error["type"], "requests");
    }
    assert_eq!(chat(&llm, &body(false)).await.0, 200);

    llm.set_fault(Some(Fault::Status(500)));
    for _ in 0..3 {
        let (status, _, text) = chat(&llm, &body(true)).await;
        assert_eq!(status, 500);
        assert_eq!(error(&text)["type"], "server_error");
    }
    llm.set_fault(None);
    assert_eq!(chat(&llm, &body(true)).await.0, 200);

    llm.fault_next(Fault::Status(503), 1);
    let (status, _, text) = chat(&llm, &body(false)).await;
    assert_eq!(status, 503);
    assert_eq!(error(&text)["type"], "server_error");
    assert_eq!(chat(&llm, &body(false)).await.0, 200);
}

#[tokio::test]
async fn delays_stalls_and_cuts() {
    let llm = start().await;
    llm.fault_next(Fault::Delay(Duration::from_millis(600)), 1);
    let started = Instant::now();
    assert_eq!(chat(&llm, &body(false)).await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(600));
    let started = Instant::now();
    assert_eq!(chat(&llm, &body(false)).await.0, 200);
    assert!(started.elapsed() < Duration::from_millis(600));

    // A stall after two words: those arrive at once (each chunk is flushed),
    // the rest after the pause.
    let pause = Duration::from_millis(1500);
    llm.fault_next(Fault::Stall { after: 2, pause }, 1);
    let started = Instant::now();
    let mut response = reqwest::Client::new()
        .post(format!("{}/chat/completions", llm.base_url()))
        .bearer_auth("demo-key")
        .json(&body(true))
        .send()
        .await
        .unwrap();
    let mut text = String::new();
    while !text.contains("\" answer:\"") {
        let chunk = response
            .chunk()
            .await
            .unwrap()
            .expect("the stream ended early");
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "{:?}",
        started.elapsed()
    );
    while let Some(chunk) = response.chunk().await.unwrap() {
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(started.elapsed() >= pause);
    let (events, done) = sse(&text);
    assert!(done);
    assert_eq!(
        content(&events),
        "Stand-in answer: Who owns billing? See [2]. See [1]."
    );

    llm.fault_next(Fault::Cut { after: 3 }, 1);
    let (status, _, text) = chat(&llm, &body(true)).await;
    assert_eq!(status, 200);
    let (events, done) = sse(&text);
    assert!(!done);
    assert_eq!(events.len(), 4);
    assert_eq!(content(&events), "Stand-in answer: Who");
    assert!(
        events
            .iter()
            .all(|e| e["choices"][0]["finish_reason"].is_null())
    );
}

#[tokio::test]
async fn every_request_is_recorded() {
    let llm = start().await;
    assert_eq!(llm.request_count(), 0);
    let _ = post(&llm, None, body(false).to_string()).await;
    let _ = post(&llm, Some("demo-key"), "not json").await;
    let response = reqwest::Client::new()
        .get(format!("{}/models?limit=1", llm.base_url()))
        .bearer_auth("demo-key")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let models: Value = response.json().await.unwrap();
    assert_eq!(models["data"][0]["id"], "demo-model");
    let response = reqwest::get(format!("{}/completions", llm.base_url()))
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        error(&response.text().await.unwrap())["message"],
        "Invalid URL (GET /v1/completions)"
    );

    let requests = llm.requests();
    assert_eq!(llm.request_count(), 4);
    let first = &requests[0];
    assert_eq!(
        (first.method.as_str(), first.path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(first.header("content-type"), Some("application/json"));
    assert_eq!(first.header("authorization"), None);
    assert_eq!(first.body.as_ref(), Some(&body(false)));
    assert!(
        first
            .headers
            .iter()
            .all(|(name, _)| *name == name.to_lowercase())
    );
    assert_eq!(requests[1].header("authorization"), Some("Bearer demo-key"));
    assert_eq!(
        (requests[1].body.as_ref(), requests[1].text.as_str()),
        (None, "not json")
    );
    assert_eq!(
        (requests[2].path.as_str(), requests[2].query.as_deref()),
        ("/v1/models", Some("limit=1"))
    );
    assert_eq!(requests[3].method, "GET");
}
