//! The knowledge assistant at scale: the demo catalog and its docs inside a
//! synthetic company (100k entities by default, read from files by the real
//! catalog) and 50k more docs sections in the search index, on a real
//! server (SQLite) on 127.0.0.1.
//!
//! 1. Time to an extractive answer: the question set
//!    (`tests/assistant/questions.json`) asked through `POST
//!    /api/plugins/assistant/ask` as a signed-in person (their read scope
//!    applies), each question in a new conversation, `ROUNDS` times.
//! 2. Retrieval recall at that scale: the right source among the first
//!    three, per question.
//! 3. The host's overhead around a provider call: the same server again
//!    with `[models]` pointing at the chat-completions stand-in
//!    (`callboard-demo-llm`, in-process, answering at once), against the
//!    same requests sent to the stand-in directly.
//!
//! `cargo xtask bench assistant [-- ENTITIES SECTIONS]`. Prints Markdown.

use std::time::{Duration, Instant};

use callboard::{
    config::{Config, ModelsConfig, TrustedVendor},
    plugins::{
        license::{self, LicenseTerms},
        manifest::Capabilities,
        signing::VendorKey,
    },
};
use callboard_catalog::{LocationConfig, LocationKind, Selection};
use jiff::{Timestamp, ToSpan as _};
use serde_json::{Value, json};

#[path = "shared/catalog_gen.rs"]
mod catalog_gen;
#[path = "shared/rng.rs"]
mod rng;
use catalog_gen::generate;
#[path = "shared/sections.rs"]
mod sections;
use sections::load_sections;
#[path = "support.rs"]
#[allow(dead_code, reason = "shared by the benchmark binaries")]
mod support;
use support::{machine, percentiles, plugins_dir};

/// Times each question is asked, per phase (`CALLBOARD_BENCH_ROUNDS`).
const ROUNDS: usize = 20;
const DANIEL: &str = "user:default/daniel.reyes";

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn config(data: &std::path::Path, files: &std::path::Path, key: &VendorKey) -> Config {
    let mut config = Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.to_owned(),
        ..Config::default()
    };
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/catalog/all.yaml");
    config.catalog.locations = vec![
        LocationConfig {
            kind: LocationKind::File,
            target: format!("{}/*.yaml", files.display()),
        },
        LocationConfig {
            kind: LocationKind::File,
            target: demo.display().to_string(),
        },
    ];
    config.catalog.refresh_interval_secs = 0;
    config.catalog.max_entities = 2_000_000;
    config.catalog.max_entities_per_location = 2_000_000;
    config.catalog.max_bytes_per_location = u64::MAX;
    config.organization = "Brightwharf".into();
    config.trust.vendors = vec![TrustedVendor {
        id: "lanternfish".into(),
        public_key: key.public().public_key,
    }];
    config.grants.plugins.insert(
        "assistant".into(),
        Capabilities {
            kv: true,
            catalog: true,
            search: true,
            models: true,
            publish: true,
            ..Capabilities::default()
        },
    );
    config
        .plugins
        .overrides
        .entry("assistant".into())
        .or_default()
        .timeout_ms = Some(30_000);
    // The benchmark asks more than a person's daily allowance.
    config.plugins.settings.insert(
        "assistant".into(),
        [("questions_per_day".to_owned(), "1000000".to_owned())].into(),
    );
    config
}

fn install(data: &std::path::Path, key: &VendorKey) {
    let plugin = key
        .sign_plugin(&std::fs::read(plugins_dir().join("assistant.wasm")).unwrap())
        .unwrap();
    std::fs::create_dir_all(data.join("plugins")).unwrap();
    std::fs::write(data.join("plugins/assistant.wasm"), plugin).unwrap();
    std::fs::create_dir_all(data.join("licenses")).unwrap();
    let now = Timestamp::now();
    let text = license::issue(
        key,
        &LicenseTerms {
            plugin: "assistant".into(),
            vendor: key.vendor.clone(),
            customer: "Brightwharf".into(),
            features: vec![],
            issued: now,
            not_before: now - 1.hour(),
            expires: now + 24.hours(),
        },
    );
    std::fs::write(data.join("licenses/assistant.license"), text).unwrap();
}

/// Every question asked `rounds` times in new conversations: the time of
/// each, by question, and the last answer of each.
async fn ask_all(
    running: &callboard::server::Running,
    questions: &[Value],
    rounds: usize,
) -> (Vec<Vec<Duration>>, Vec<Value>) {
    let session = running.state.sessions.create(DANIEL).await.unwrap();
    let cookie = format!("{}={}", callboard::identity::COOKIE, session.id);
    let client = reqwest::Client::new();
    let url = format!("{}/api/plugins/assistant/ask", running.url());
    let mut times = vec![Vec::new(); questions.len()];
    let mut answers = vec![Value::Null; questions.len()];
    for round in 0..=rounds {
        for (i, q) in questions.iter().enumerate() {
            let started = Instant::now();
            let response = client
                .post(&url)
                .header("cookie", &cookie)
                .json(&json!({"question": q["question"], "new": true}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{}", q["question"]);
            let answer: Value = response.json().await.unwrap();
            // Round 0 warms the compiled plugin and the database's pages.
            if round > 0 {
                times[i].push(started.elapsed());
            }
            answers[i] = answer;
        }
    }
    (times, answers)
}

fn top3_hit(question: &Value, answer: &Value) -> bool {
    let cited: Vec<String> = answer["citations"]
        .as_array()
        .unwrap()
        .iter()
        .take(3)
        .map(|c| format!("{} {}", c["href"], c["entity_ref"]))
        .collect();
    question["expect"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| cited.iter().any(|c| c.contains(e.as_str().unwrap())))
}

async fn wait_ready(running: &callboard::server::Running, entities: u64) {
    loop {
        let count = running
            .state
            .catalog
            .count(&Selection::default())
            .await
            .unwrap();
        let docs = running
            .state
            .techdocs
            .store()
            .site("component:default/service-kit-go", false)
            .await
            .ok()
            .flatten()
            .is_some();
        if count >= entities && docs {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::main]
async fn main() {
    // The plugin's own timings (debug) and the host's warnings.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .try_init();
    let rounds = std::env::var("CALLBOARD_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(ROUNDS);
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(100_000);
    let sections = args.get(1).copied().unwrap_or(50_000);
    let set: Value = serde_json::from_str(include_str!("../assistant/questions.json")).unwrap();
    let questions = set["questions"].as_array().unwrap().clone();

    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("catalog");
    let data = dir.path().join("data");
    let total = generate(&files, n);
    let key = VendorKey::generate("lanternfish").unwrap();
    install(&data, &key);

    // 1 and 2: extractive.
    let started = Instant::now();
    let running = callboard::server::start(config(&data, &files, &key))
        .await
        .unwrap();
    wait_ready(&running, total as u64 + 100).await;
    load_sections(
        &running.state.stores,
        sections,
        catalog_gen::counts(n).components,
    )
    .await;
    running.state.stores.catalog.optimize().await.unwrap();
    eprintln!("loaded in {:.1} s", started.elapsed().as_secs_f64());
    // `CALLBOARD_BENCH_PROBE="a b|c"`: time these search terms (as the
    // admin, through the search API) and stop.
    if let Ok(probe) = std::env::var("CALLBOARD_BENCH_PROBE") {
        let token = std::fs::read_to_string(data.join("admin-token")).unwrap();
        let client = reqwest::Client::new();
        for term in probe.split('|') {
            for _ in 0..2 {
                let started = Instant::now();
                let body: Value = client
                    .get(format!("{}/api/search/query", running.url()))
                    .query(&[("term", term), ("pageLimit", "10")])
                    .bearer_auth(token.trim())
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                println!(
                    "{term:?}: {} ({} results)",
                    ms(started.elapsed()),
                    body["numberOfResults"]
                );
            }
        }
        return;
    }
    let (mut extractive, answers) = ask_all(&running, &questions, rounds).await;
    running.shutdown().await.unwrap();

    // 3: the same server with the stand-in provider.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let provider = callboard_demo_llm::serve(listener, callboard_demo_llm::StandIn::default())
        .await
        .unwrap();
    let mut with_model = config(&data, &files, &key);
    with_model.models = ModelsConfig {
        base_url: provider.base_url(),
        model: "demo-model".into(),
        api_key: "demo-key".into(),
        ..ModelsConfig::default()
    };
    let running = callboard::server::start(with_model).await.unwrap();
    wait_ready(&running, total as u64 + 100).await;
    let (mut generative, model_answers) = ask_all(&running, &questions, rounds).await;
    running.shutdown().await.unwrap();
    // The same requests, straight to the stand-in.
    let client = reqwest::Client::new();
    let sent: Vec<Value> = provider
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/chat/completions")
        .filter_map(|r| r.body)
        .collect();
    let mut direct = Vec::new();
    for body in sent.iter().skip(questions.len()) {
        let started = Instant::now();
        let response = client
            .post(format!("{}/chat/completions", provider.base_url()))
            .bearer_auth("demo-key")
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let _ = response.bytes().await.unwrap();
        direct.push(started.elapsed());
    }

    println!(
        "\nMachine: {}; {total} synthetic entities + the demo catalog, {sections} synthetic docs sections + the demo's docs; SQLite; {rounds} rounds of {} questions, each in a new conversation, as {DANIEL}.\n",
        machine(),
        questions.len()
    );
    println!(
        "| question | extractive p50 / p99 | top 3 holds the source | with the stand-in model p50 |"
    );
    println!("|---|---|---|---|");
    let mut all_ex = Vec::new();
    let mut all_gen = Vec::new();
    let mut hits = 0;
    for (i, q) in questions.iter().enumerate() {
        let (p50, p99) = percentiles(&mut extractive[i]);
        let (g50, _) = percentiles(&mut generative[i]);
        let hit = top3_hit(q, &answers[i]);
        hits += usize::from(hit);
        assert_eq!(
            model_answers[i]["mode"], "generative",
            "{}",
            model_answers[i]
        );
        println!(
            "| {} | {} / {} | {} | {} |",
            q["question"].as_str().unwrap(),
            ms(p50),
            ms(p99),
            if hit { "yes" } else { "**no**" },
            ms(g50)
        );
        all_ex.extend(extractive[i].iter().copied());
        all_gen.extend(generative[i].iter().copied());
    }
    let (ex50, ex99) = percentiles(&mut all_ex);
    let (gen50, gen99) = percentiles(&mut all_gen);
    let (d50, d99) = percentiles(&mut direct);
    println!("\n| all questions | p50 | p99 |\n|---|---|---|");
    println!("| extractive answer | {} | {} |", ms(ex50), ms(ex99));
    println!(
        "| answer with the stand-in model | {} | {} |",
        ms(gen50),
        ms(gen99)
    );
    println!(
        "| the same chat sent to the stand-in directly | {} | {} |",
        ms(d50),
        ms(d99)
    );
    println!(
        "| host overhead around the provider call (model − extractive − direct, p50) | {} | |",
        ms(gen50.saturating_sub(ex50).saturating_sub(d50))
    );
    println!(
        "\nRecall: the right source among the first three for {hits} of {} questions.",
        questions.len()
    );
}
