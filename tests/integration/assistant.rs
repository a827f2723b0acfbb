//! The knowledge assistant (`example-plugins/assistant`), a commercial
//! plugin, over the demo catalog and its docs on a real server: the
//! question set in `tests/assistant/questions.json` (the right source among
//! the first three for at least 9 of 10), follow-ups that keep the
//! conversation's subject, a person who may not read an entity never seeing
//! it cited or quoted, feedback reaching the owners' knowledge-gaps view,
//! and the page and entity card asking through the portal's actions.

use callboard::{
    config::{Config, TrustedVendor},
    identity::config::Anonymous,
    permissions::{Criteria, Policy},
    plugins::{manifest::Capabilities, signing::VendorKey},
};
use jiff::{Timestamp, ToSpan as _};
use serde_json::{Value, json};

use crate::{
    people::no_redirects,
    support::{TestServer, admin_token, licence, page, plugin_file, publish, session},
    techdocs::built,
    web::{demo_catalog, server_configured},
};

const PLUGIN: &str = "assistant";
const DANIEL: &str = "user:default/daniel.reyes"; // shipping-team
const INGRID: &str = "user:default/ingrid.solberg"; // billing-team
/// Valid entities in the demo catalog.
const DEMO_ENTITIES: u64 = 107;
/// The demo's docs sites the question set reads.
const SITES: [&str; 6] = [
    "component:default/payment-gateway",
    "component:default/ledger-service",
    "component:default/auth-service",
    "component:default/driver-app",
    "component:default/service-kit-go",
    "component:default/booking-service",
];

/// The demo catalog with the assistant installed (signed by a vendor the
/// server trusts, licensed with `features`), sign-in required, and every
/// docs site built.
async fn demo_with_assistant(features: &[&str]) -> (TestServer, tempfile::TempDir) {
    demo_with(features, |_| {}).await
}

/// Installs plugin `id`, signed with `key`, licensed with `features`.
fn install_signed(data: &std::path::Path, key: &VendorKey, id: &str, features: &[&str]) {
    let plugin = key
        .sign_plugin(&std::fs::read(plugin_file(id)).unwrap())
        .unwrap();
    std::fs::create_dir_all(data.join("plugins")).unwrap();
    std::fs::write(data.join(format!("plugins/{id}.wasm")), plugin).unwrap();
    std::fs::create_dir_all(data.join("licenses")).unwrap();
    std::fs::write(
        data.join(format!("licenses/{id}.license")),
        licence(
            key,
            id,
            "Brightwharf",
            Timestamp::now() + 24.hours() * 365,
            features,
        ),
    )
    .unwrap();
}

/// [`demo_with_assistant`], with `tweak` applied to the config.
pub(crate) async fn demo_with(
    features: &[&str],
    tweak: impl FnOnce(&mut Config),
) -> (TestServer, tempfile::TempDir) {
    let key = VendorKey::generate("lanternfish").unwrap();
    let (server, dir) = server_configured(&demo_catalog(), DEMO_ENTITIES, |data, config| {
        install_signed(data, &key, PLUGIN, features);
        configure(config, &key);
        tweak(config);
    })
    .await;
    for site in SITES {
        built(&server, site).await;
    }
    (server, dir)
}

fn configure(config: &mut Config, key: &VendorKey) {
    config.auth.anonymous = Anonymous::None;
    config.organization = "Brightwharf".into();
    config.trust.vendors = vec![TrustedVendor {
        id: "lanternfish".into(),
        public_key: key.public().public_key,
    }];
    config.grants.plugins.insert(
        PLUGIN.into(),
        Capabilities {
            kv: true,
            catalog: true,
            search: true,
            models: true,
            publish: true,
            ..Capabilities::default()
        },
    );
}

async fn call(
    server: &TestServer,
    method: &str,
    path: &str,
    cookie: &str,
    body: Option<Value>,
) -> (u16, Value) {
    call_to(server, PLUGIN, method, path, cookie, body).await
}

/// `method` on plugin `plugin`'s route `path` with the session `cookie`:
/// (status, body as JSON, or as a string when it is not JSON).
async fn call_to(
    server: &TestServer,
    plugin: &str,
    method: &str,
    path: &str,
    cookie: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let url = server.url(&format!("/api/plugins/{plugin}{path}"));
    let client = no_redirects();
    let request = match method {
        "GET" => client.get(url),
        "DELETE" => client.delete(url),
        _ => client.post(url),
    };
    let request = match body {
        Some(b) => request.json(&b),
        None => request,
    };
    let response = request.header("cookie", cookie).send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Asks `question` in a new conversation (or, `follow_up`, the current one).
pub(crate) async fn ask(
    server: &TestServer,
    cookie: &str,
    question: &str,
    follow_up: bool,
) -> Value {
    let (status, answer) = call(
        server,
        "POST",
        "/ask",
        cookie,
        Some(json!({"question": question, "new": !follow_up})),
    )
    .await;
    assert_eq!(status, 200, "{question}: {answer}");
    answer
}

/// Each citation's link and entity ref, in order.
fn cited(answer: &Value) -> Vec<String> {
    answer["citations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                c["href"].as_str().unwrap_or(""),
                c["entity_ref"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_question_set_finds_the_right_source_in_the_top_three() {
    let (server, _dir) = demo_with_assistant(&[]).await;
    let (daniel, _) = session(&server, DANIEL).await;
    let set: Value = serde_json::from_str(include_str!("../assistant/questions.json")).unwrap();
    let questions = set["questions"].as_array().unwrap();
    assert_eq!(questions.len(), 10);
    let mut found = 0;
    let mut report = Vec::new();
    for q in questions {
        let text = q["question"].as_str().unwrap();
        let answer = ask(&server, &daniel, text, false).await;
        assert_eq!(answer["mode"], "extractive");
        let top3: Vec<String> = cited(&answer).into_iter().take(3).collect();
        let hit = q["expect"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| top3.iter().any(|c| c.contains(e.as_str().unwrap())));
        found += usize::from(hit);
        report.push(format!(
            "{} {text}\n    answer: {}\n    top 3: {top3:?}",
            if hit { "ok  " } else { "MISS" },
            answer["answer"]
        ));
        // Every citation number in the text has its source listed.
        for c in answer["citations"].as_array().unwrap() {
            assert!(c["passage"].is_string() && c["title"].is_string(), "{c}");
        }
    }
    let report = report.join("\n");
    println!("{report}");
    assert!(found >= 9, "recall in the top 3: {found} of 10\n{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_from_relations_and_follow_ups_keep_the_subject() {
    let (server, _dir) = demo_with_assistant(&[]).await;
    let (daniel, _) = session(&server, DANIEL).await;
    let owner = ask(&server, &daniel, "Who owns the ledger service?", false).await;
    assert_eq!(
        owner["subject"], "component:default/ledger-service",
        "{owner}"
    );
    let text = owner["answer"].as_str().unwrap();
    assert!(text.contains("Ledger Service [1] is owned by"), "{text}");
    assert!(
        cited(&owner)[1].contains("group:default/billing-team"),
        "{owner}"
    );
    // "it" is the ledger service.
    let dependents = ask(&server, &daniel, "And what depends on it?", true).await;
    assert_eq!(
        dependents["subject"], "component:default/ledger-service",
        "{dependents}"
    );
    assert_eq!(dependents["conversation"], owner["conversation"]);
    let sources = cited(&dependents).join("\n");
    for e in [
        "component:default/reconciliation-job",
        "component:default/payment-gateway",
    ] {
        assert!(sources.contains(e), "{e} in {sources}");
    }
    // The conversation keeps both turns, in order.
    let (status, conversation) = call(&server, "GET", "/conversation", &daniel, None).await;
    assert_eq!(status, 200);
    let turns = conversation["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 2, "{conversation}");
    assert_eq!(turns[1]["question"], "And what depends on it?");
    // Another person does not see it.
    let (ingrid, _) = session(&server, INGRID).await;
    let (_, theirs) = call(&server, "GET", "/conversation", &ingrid, None).await;
    assert_eq!(theirs["turns"], json!([]), "{theirs}");
    // Hostile input is refused with a reason, not stored.
    let long = "why ".repeat(200);
    for (body, why) in [
        (json!({"question": long}), "longer than 500"),
        (json!({"question": "a\u{0}b"}), "control characters"),
        (json!({"question": "  "}), "ask a question"),
        (
            json!({"question": "x", "conversation": "../../etc"}),
            "no such conversation",
        ),
        (json!({"question": "x", "extra": 1}), "unknown field"),
    ] {
        let (status, answer) = call(&server, "POST", "/ask", &daniel, Some(body)).await;
        assert!(status == 400 || status == 404, "{status} {answer}");
        assert!(answer.to_string().contains(why), "{why}: {answer}");
    }
    // Nobody signed in may not ask.
    let (status, _) = call(
        &server,
        "POST",
        "/ask",
        "",
        Some(json!({"question": "who owns x"})),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_never_sees_an_entity_they_may_not_read_cited_or_quoted() {
    let (server, _dir) = demo_with_assistant(&[]).await;
    // Everyone reads only what their groups own: Daniel (shipping) may not
    // read the billing team's payment gateway or its docs.
    let mut policy = Policy::default_policy(&[]);
    policy.roles[0].rules[0].conditions = Some(Criteria::Rule {
        rule: "IS_ENTITY_OWNER".into(),
        resource_type: "catalog-entity".into(),
        params: json!({"claims": ["$ownerRefs"]}),
    });
    publish(&server, &policy).await;
    let (daniel, _) = session(&server, DANIEL).await;
    let (ingrid, _) = session(&server, INGRID).await;
    let questions = [
        "Who owns the payment gateway?",
        "What should on-call do when the authorisation failure rate is above 5%?",
        "What does payment-gateway depend on?",
        "Which teams' services use the ledger API?",
        "How do I create a payment intent?",
    ];
    for q in questions {
        // Ingrid, in the billing team, is answered from them.
        let hers = ask(&server, &ingrid, q, false).await;
        assert!(
            hers.to_string().to_lowercase().contains("payment"),
            "the control: {q}: {hers}"
        );
        let his = ask(&server, &daniel, q, false).await;
        // What the answer says and cites (the question itself is his).
        let text = format!("{} {}", his["answer"], his["citations"]).to_lowercase();
        for secret in [
            "payment-gateway",
            "payment gateway",
            "acquirer",
            "billing-team",
            "ledger-api",
            "ledger-service",
        ] {
            assert!(!text.contains(secret), "{q}: Daniel saw {secret:?}: {his}");
        }
    }
    // What he may read still answers: the owner is named from the entity's
    // own spec (the group itself is out of his reach, so it is not cited).
    let own = ask(&server, &daniel, "Who owns the booking service?", false).await;
    assert!(
        own["answer"]
            .as_str()
            .unwrap()
            .starts_with("Booking Service [1] is owned by group:default/shipping-team."),
        "{own}"
    );
    assert!(
        cited(&own)[0].contains("component:default/booking-service"),
        "{own}"
    );
    assert!(!cited(&own).join(" ").contains("group:"), "{own}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_reaches_the_owners_knowledge_gaps_view() {
    let (server, dir) = demo_with_assistant(&["feedback", "knowledge-gaps"]).await;
    let (daniel, _) = session(&server, DANIEL).await; // owns the booking service's docs
    let (ingrid, _) = session(&server, INGRID).await;
    let answer = ask(
        &server,
        &ingrid,
        "How do I get started with the booking service quick start?",
        false,
    )
    .await;
    let turn = answer["turn"].as_str().unwrap().to_owned();
    let booking = answer["citations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["href"]
                .as_str()
                .unwrap_or("")
                .starts_with("/docs/default/component/booking-service")
        })
        .unwrap_or_else(|| panic!("the booking docs are cited: {answer}"))
        .clone();
    let n = booking["n"].as_u64().unwrap();
    let (status, rated) = call(
        &server,
        "POST",
        "/feedback",
        &ingrid,
        Some(json!({"turn": turn, "source": n, "vote": "down", "comment": "The quick start still says Java 11"})),
    )
    .await;
    assert_eq!(status, 200, "{rated}");
    let (status, rated) = call(
        &server,
        "POST",
        "/feedback",
        &ingrid,
        Some(json!({"turn": turn, "vote": "down", "comment": "Wrong version"})),
    )
    .await;
    assert_eq!(status, 200, "{rated}");
    assert_eq!(rated["vote"], "down");
    // Only the asker rates their answer.
    let (status, _) = call(
        &server,
        "POST",
        "/feedback",
        &daniel,
        Some(json!({"turn": turn, "vote": "up"})),
    )
    .await;
    assert_eq!(status, 404);

    // Daniel's team owns the booking service: he sees the feedback, not who gave it.
    let (status, gaps) = call(&server, "GET", "/gaps", &daniel, None).await;
    assert_eq!(status, 200, "{gaps}");
    let sources = gaps["sources"].as_array().unwrap();
    let source = sources
        .iter()
        .find(|s| s["href"] == booking["href"])
        .unwrap_or_else(|| panic!("{gaps}"));
    assert_eq!(source["down"], 1);
    assert_eq!(
        source["comments"],
        json!(["The quick start still says Java 11"])
    );
    assert!(
        gaps["wrongAnswers"].to_string().contains("Wrong version"),
        "{gaps}"
    );
    assert!(!gaps.to_string().contains("ingrid"), "no names: {gaps}");
    assert_eq!(
        gaps["unanswered"],
        Value::Null,
        "Daniel may not see unanswered questions"
    );
    // The page shows it too.
    let (_, page) = page(&server, "/plugins/assistant/gaps", &daniel).await;
    assert!(
        page.contains("The quick start still says Java 11"),
        "{page}"
    );

    // A question that finds nothing is a gap the maintainers (the admin
    // token holds every permission) see, without who asked.
    let nothing = ask(&server, &daniel, "flibbertigibbet quokkas zyxwv?", false).await;
    assert_eq!(nothing["found"], false, "{nothing}");
    assert!(nothing["citations"].as_array().unwrap().is_empty());
    let admin = format!("Bearer {}", admin_token(dir.path()));
    let gaps: Value = no_redirects()
        .get(server.url("/api/plugins/assistant/gaps"))
        .header("authorization", admin.as_str())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        gaps["unanswered"],
        json!(["flibbertigibbet quokkas zyxwv?"]),
        "{gaps}"
    );

    // Forgetting: Ingrid's questions go; the purge (admin) takes the rest.
    let (status, forgot) = call(&server, "DELETE", "/questions", &ingrid, None).await;
    assert_eq!(status, 200, "{forgot}");
    assert_eq!(forgot["forgotten"], 1);
    let (status, _) = call(&server, "POST", "/purge", &daniel, None).await;
    assert_eq!(status, 403, "Daniel may not purge");
    let purged = no_redirects()
        .post(server.url("/api/plugins/assistant/purge"))
        .header("authorization", admin.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(purged.status(), 200);
    let (_, gaps) = call(&server, "GET", "/gaps", &daniel, None).await;
    assert_eq!(gaps["sources"], json!([]), "{gaps}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_needs_its_licence_feature() {
    let (server, _dir) = demo_with_assistant(&[]).await;
    let (daniel, _) = session(&server, DANIEL).await;
    let answer = ask(&server, &daniel, "Who owns the booking service?", false).await;
    let (status, body) = call(
        &server,
        "POST",
        "/feedback",
        &daniel,
        Some(json!({"turn": answer["turn"], "vote": "up"})),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.to_string().contains("feedback"), "{body}");
    let (status, _) = call(&server, "GET", "/gaps", &daniel, None).await;
    assert_eq!(status, 403);
}

/// Posts the `ask` form as a browser would.
async fn press(server: &TestServer, cookie: &str, fields: &[(&str, &str)]) -> (u16, String) {
    crate::support::press(server, PLUGIN, "ask", cookie, fields).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_the_entity_card_ask_through_the_portal() {
    let (server, _dir) = demo_with_assistant(&["feedback"]).await;
    let (daniel, csrf) = session(&server, DANIEL).await;
    let (_, ask_page) = page(&server, "/plugins/assistant", &daniel).await;
    assert!(ask_page.contains("Ask the portal"), "{ask_page}");
    assert!(!ask_page.contains("<script"), "{ask_page}");
    // The page's form.
    let (status, body) = press(
        &server,
        &daniel,
        &[
            ("_csrf", &csrf),
            ("_slot", "page"),
            ("_path", "/"),
            ("_query", ""),
            ("q", "When do driver app releases go out?"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Answered from"), "{body}");
    assert!(
        body.contains("every second Tuesday"),
        "the passage is quoted: {body}"
    );
    assert!(
        body.contains("href=\"/docs/default/component/driver-app"),
        "{body}"
    );
    assert!(
        body.contains("Send feedback"),
        "feedback is licensed: {body}"
    );
    // The card on an entity: "it" is that entity.
    let (status, body) = press(
        &server,
        &daniel,
        &[
            ("_csrf", &csrf),
            ("_slot", "entity-card"),
            ("_entity", "component:default/booking-service"),
            ("q", "Who owns it?"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, card) = page(
        &server,
        "/catalog/default/component/booking-service",
        &daniel,
    )
    .await;
    assert!(card.contains("Ask about this component"), "{card}");
    assert!(card.contains("Booking Service [1] is owned by"), "{card}");
    // Without the CSRF token nothing is asked.
    let (status, _) = press(
        &server,
        &daniel,
        &[("_slot", "page"), ("_path", "/"), ("q", "x")],
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insights_counts_the_assistants_questions_and_feedback() {
    let (server, _dir) = demo_with(&["feedback"], |config| {
        let key = VendorKey::generate("lanternfish").unwrap();
        // Both plugins by the same vendor, trusted under one key.
        install_signed(&config.data_dir, &key, PLUGIN, &["feedback"]);
        install_signed(&config.data_dir, &key, "insights", &[]);
        configure(config, &key);
        config.grants.plugins.insert(
            "insights".into(),
            Capabilities {
                kv: true,
                catalog: true,
                events: vec!["usage".into()],
                ..Capabilities::default()
            },
        );
    })
    .await;
    let (daniel, _) = session(&server, DANIEL).await;
    let answered = ask(&server, &daniel, "Who owns the booking service?", false).await;
    let nothing = ask(&server, &daniel, "flibbertigibbet quokkas zyxwv?", false).await;
    assert_eq!(nothing["found"], false);
    let (status, _) = call(
        &server,
        "POST",
        "/feedback",
        &daniel,
        Some(json!({"turn": answered["turn"], "vote": "down"})),
    )
    .await;
    assert_eq!(status, 200);
    // Insights counts them as they arrive: wait for the counts, not for time.
    let totals = crate::support::eventually(60, "insights to count the assistant's events", || {
        let (server, daniel) = (&server, daniel.clone());
        async move {
            let (status, summary) =
                call_to(server, "insights", "GET", "/summary?days=1", &daniel, None).await;
            let totals = summary["totals"].clone();
            (status == 200
                && totals["assistant.question"] == 2
                && totals["assistant.unanswered"] == 1
                && totals["assistant.feedback-down"] == 1)
                .then_some(totals)
        }
    })
    .await;
    // What was asked about, never the question's text.
    assert!(!totals.to_string().contains("quokka"), "{totals}");
    let (_, page) = page(&server, "/plugins/insights", &daniel).await;
    assert!(
        page.contains("Plugins&#39; own events") || page.contains("Plugins' own events"),
        "{page}"
    );
    assert!(page.contains("assistant.question"), "{page}");
}
