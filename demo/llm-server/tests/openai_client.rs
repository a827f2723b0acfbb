//! OpenAI's official Node client (npm `openai`, pinned in
//! tests/openai-client/package.json) against the stand-in: a plain
//! completion, a stream with usage, and a wrong key.

use std::{path::PathBuf, process::Command};

use callboard_demo_llm::StandIn;
use serde_json::{Value, json};

fn client_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/openai-client")
}

/// Installs tests/openai-client's locked packages into the cache once.
fn install() -> PathBuf {
    callboard_test_npm::Packages {
        dir: &client_dir(),
        cache: "npm-openai",
        cache_env: "CALLBOARD_OPENAI_NPM_CACHE",
        probe: "openai",
        needed_by: "the stand-in LLM provider is tested with OpenAI's official client (npm package openai)",
    }
    .install()
}

#[tokio::test]
async fn openais_node_client_talks_to_the_stand_in() {
    let node_modules = tokio::task::spawn_blocking(install).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let llm = callboard_demo_llm::serve(listener, StandIn::default())
        .await
        .unwrap();
    let base_url = llm.base_url();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(client_dir().join("client.mjs"))
            .args([&base_url, "demo-key", "demo-model"])
            .env("CALLBOARD_OPENAI_NODE_MODULES", &node_modules)
            .output()
            .expect("starting node tests/openai-client/client.mjs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "client.mjs failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("client.mjs printed no JSON line ({e}): {stdout}"));

    // (a) A plain completion, parsed by the client.
    let reply = "Stand-in answer: Who owns billing? [2] See [1]. See [2].";
    let plain = &results["plain"];
    assert!(
        plain["id"].as_str().unwrap().starts_with("chatcmpl-"),
        "{plain}"
    );
    assert_eq!(plain["object"], "chat.completion");
    assert_eq!(plain["model"], "demo-model");
    assert_eq!(plain["role"], "assistant");
    assert_eq!(plain["content"], reply);
    assert_eq!(plain["finish_reason"], "stop");
    // system: 62 chars -> 16 + 4; user: 21 -> 6 + 4; reply: 10 words.
    assert_eq!(plain["usage"]["prompt_tokens"], 30);
    assert_eq!(plain["usage"]["completion_tokens"], 10);
    assert_eq!(plain["usage"]["total_tokens"], 40);

    // (b) The stream, through the client's SSE parser: cut at 4 tokens.
    let stream = &results["stream"];
    assert_eq!(stream["role"], "assistant");
    assert_eq!(stream["content"], "Stand-in answer: Who owns");
    assert_eq!(stream["finish_reason"], "length");
    // Role chunk, 4 words, finish chunk, usage chunk.
    assert_eq!(stream["chunks"], 7);
    assert_eq!(
        (
            &stream["usage"]["prompt_tokens"],
            &stream["usage"]["completion_tokens"]
        ),
        (&json!(30), &json!(4))
    );

    // (c) A wrong key: the client's AuthenticationError.
    let wrong = &results["wrong_key"];
    assert_eq!(wrong["name"], "AuthenticationError", "{wrong}");
    assert_eq!(wrong["status"], 401);
    assert_eq!(wrong["code"], "invalid_api_key");
    assert_eq!(wrong["type"], "invalid_request_error");
    assert!(
        wrong["message"]
            .as_str()
            .unwrap()
            .starts_with("Incorrect API key provided")
    );

    // What the client sent.
    let requests = llm.requests();
    assert_eq!(requests.len(), 3);
    let first = &requests[0];
    assert_eq!(first.path, "/v1/chat/completions");
    assert_eq!(first.header("authorization"), Some("Bearer demo-key"));
    assert_eq!(first.body.as_ref().unwrap()["temperature"], 0);
    assert_eq!(
        requests[1].body.as_ref().unwrap()["stream_options"],
        json!({"include_usage": true})
    );
}
