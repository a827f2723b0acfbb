//! The knowledge assistant with a language model: the operator's `[models]`
//! provider is `callboard-demo-llm`, a **stand-in** on 127.0.0.1 that
//! speaks OpenAI's chat-completions protocol (its own tests check it with
//! OpenAI's official client), not a model. These tests check the request
//! the host sends (shape, streaming, the key added by the host and never
//! seen by the plugin or written anywhere), that answers come from the
//! sources, and that a spent budget, a provider that fails, stalls, cuts
//! its stream or is down each give a clear reason and the extractive answer.

use std::time::Duration;

use callboard::config::{Config, ModelsConfig};
use callboard_demo_llm::{Fault, Handle, StandIn};
use serde_json::Value;

use crate::{
    assistant::{ask, demo_with},
    support::{captured_logs, session},
};

const KEY: &str = "sk-stand-in-4f1c9a77e2b0";
const DANIEL: &str = "user:default/daniel.reyes";

async fn provider() -> Handle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    callboard_demo_llm::serve(
        listener,
        StandIn {
            model: "demo-model".into(),
            api_key: KEY.into(),
        },
    )
    .await
    .unwrap()
}

fn models(provider: &Handle, tweak: impl FnOnce(&mut ModelsConfig)) -> impl FnOnce(&mut Config) {
    let mut m = ModelsConfig {
        base_url: provider.base_url(),
        model: "demo-model".into(),
        api_key: KEY.into(),
        ..ModelsConfig::default()
    };
    tweak(&mut m);
    move |config: &mut Config| {
        config.models = m;
        // A model's answer takes longer than the default deadline.
        config
            .plugins
            .overrides
            .entry("assistant".into())
            .or_default()
            .timeout_ms = Some(20_000);
    }
}

fn chats(provider: &Handle) -> Vec<callboard_demo_llm::Recorded> {
    provider
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/chat/completions")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_answers_from_the_sources_and_only_the_host_holds_the_key() {
    let provider = provider().await;
    let (server, dir) = demo_with(&[], models(&provider, |_| {})).await;
    let (daniel, _) = session(&server, DANIEL).await;

    let answer = ask(
        &server,
        &daniel,
        "When do driver app releases go out?",
        false,
    )
    .await;
    assert_eq!(answer["mode"], "generative", "{answer}");
    assert_eq!(answer["model"], "demo-model");
    let text = answer["answer"].as_str().unwrap();
    // The stand-in answers with the question and the citations it was shown.
    assert!(text.starts_with("Stand-in answer:"), "{text}");
    assert!(text.contains("See [1]."), "{text}");
    let driver = answer["citations"][0]["href"].as_str().unwrap();
    assert!(
        driver.starts_with("/docs/default/component/driver-app"),
        "{answer}"
    );

    // The request the host sent.
    let sent = chats(&provider);
    assert_eq!(sent.len(), 1);
    let chat = &sent[0];
    assert_eq!(chat.method, "POST");
    assert_eq!(
        chat.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(chat.header("accept"), Some("text/event-stream"));
    assert!(chat.header("cookie").is_none() && chat.header("x-callboard-user").is_none());
    let body = chat.body.as_ref().unwrap();
    assert_eq!(body["model"], "demo-model");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert!(body["max_tokens"].as_u64().unwrap() <= 700, "{body}");
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "system");
    assert!(
        messages[0]["content"]
            .as_str()
            .unwrap()
            .contains("using only the numbered sources")
    );
    let last = messages.last().unwrap()["content"].as_str().unwrap();
    assert!(
        last.contains("[1] ") && last.contains("every second Tuesday"),
        "the passages: {last}"
    );
    assert!(
        last.ends_with("Question: When do driver app releases go out?"),
        "{last}"
    );
    assert!(
        !body.to_string().contains("daniel"),
        "no person's identity goes to the provider: {body}"
    );

    // A follow-up carries the conversation.
    let again = ask(&server, &daniel, "And who owns it?", true).await;
    assert_eq!(again["mode"], "generative", "{again}");
    let sent = chats(&provider);
    let messages = sent[1].body.as_ref().unwrap()["messages"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        messages[1]["content"],
        "When do driver app releases go out?"
    );
    assert_eq!(messages[2]["role"], "assistant");
    assert_eq!(messages[2]["content"], answer["answer"]);

    // The key is nowhere the plugin or the portal wrote: not in what the
    // plugin answered, its key-value store, or the log (which has token
    // counts, not contents).
    let logs = captured_logs();
    assert!(
        logs.contains("model chat") && logs.contains("prompt_tokens"),
        "{logs}"
    );
    assert!(!logs.contains(KEY), "the key is never logged");
    assert!(
        !logs.contains("every second Tuesday"),
        "contents are not logged"
    );
    for file in ["kv.sqlite", "catalog.sqlite", "coord.sqlite"] {
        let bytes = std::fs::read(dir.path().join(file)).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(KEY), "{file} holds the key");
    }
    assert!(!answer.to_string().contains(KEY) && !again.to_string().contains(KEY));
}

/// Asks and expects the extractive answer, with a notice containing `why`.
async fn falls_back(server: &crate::support::TestServer, cookie: &str, why: &str) -> Value {
    let answer = ask(server, cookie, "How long does a refresh token last?", false).await;
    assert_eq!(answer["mode"], "extractive", "{why}: {answer}");
    let notice = answer["notice"]
        .as_str()
        .unwrap_or_else(|| panic!("{why}: no notice: {answer}"));
    assert!(notice.contains(why), "{notice:?} does not say {why:?}");
    assert!(
        answer["citations"]
            .as_array()
            .unwrap()
            .iter()
            .take(3)
            .any(|c| c["href"]
                .as_str()
                .unwrap()
                .starts_with("/docs/default/component/auth-service")),
        "{why}: the extractive answer still cites its sources: {answer}"
    );
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_provider_gives_the_reason_and_the_extractive_answer() {
    let provider = provider().await;
    let (server, _dir) = demo_with(
        &[],
        models(&provider, |m| {
            m.idle_timeout_secs = 1;
            m.timeout_secs = 3;
        }),
    )
    .await;
    let (daniel, _) = session(&server, DANIEL).await;
    provider.fault_next(Fault::Status(500), 1);
    falls_back(&server, &daniel, "provider failed (500").await;
    provider.fault_next(Fault::RateLimited { retry_after: 7 }, 1);
    falls_back(&server, &daniel, "rate limiting the portal (429").await;
    provider.fault_next(Fault::Delay(Duration::from_secs(2)), 1);
    falls_back(&server, &daniel, "sent nothing for 1 s").await;
    provider.fault_next(
        Fault::Stall {
            after: 1,
            pause: Duration::from_secs(2),
        },
        1,
    );
    falls_back(&server, &daniel, "sent nothing for 1 s").await;
    provider.fault_next(Fault::Cut { after: 2 }, 1);
    falls_back(&server, &daniel, "broke off before it finished").await;
    // Working again.
    let answer = ask(
        &server,
        &daniel,
        "How long does a refresh token last?",
        false,
    )
    .await;
    assert_eq!(answer["mode"], "generative", "{answer}");
    // Down.
    provider.shutdown().await.unwrap();
    falls_back(&server, &daniel, "could not be reached").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spent_budgets_give_the_reason_and_the_extractive_answer() {
    let provider = provider().await;
    // A question's prompt takes a few hundred tokens: 120 per call is too few.
    let (small, _dir) = demo_with(&[], models(&provider, |m| m.max_tokens_per_call = 120)).await;
    let (daniel, _) = session(&small, DANIEL).await;
    falls_back(&small, &daniel, "tokens the portal allows per question").await;
    assert!(
        chats(&provider).is_empty(),
        "refused before the provider is asked"
    );
    small.stop().await;

    let (server, _dir) = demo_with(&[], models(&provider, |m| m.max_tokens_per_day = 1)).await;
    let (daniel, _) = session(&server, DANIEL).await;
    // The first chat spends more than the day's single token; the next is refused.
    let first = ask(
        &server,
        &daniel,
        "How long does a refresh token last?",
        false,
    )
    .await;
    assert_eq!(first["mode"], "generative", "{first}");
    falls_back(
        &server,
        &daniel,
        "daily budget of 1 tokens for this plugin is spent",
    )
    .await;
    assert_eq!(chats(&provider).len(), 1);
}
