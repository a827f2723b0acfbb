//! The knowledge assistant: ask the portal in plain language and get an
//! answer with numbered sources, each a link to the entity, docs section or
//! plugin document it came from, with the passage shown.
//!
//! A commercial plugin (vendor `lanternfish`), against plugin API 0.5.
//!
//! - **Retrieval runs as the asking person** (`retrieve.rs`): the host's
//!   `search` and `catalog` interfaces answer only what that person may
//!   read, so nothing else can reach an answer. Passages come from the
//!   search index (docs sections, entity descriptions, plugins'
//!   documents); "who owns X", "what depends on Y", "which teams' services
//!   use Z", "what does X depend on", "which system is X part of" and
//!   "which APIs does X provide" are answered from the catalog's relations
//!   (`question.rs` reads which).
//! - **Answers** (`answer.rs`) are written by the operator's language model
//!   (`models`, when configured) from the numbered sources only, or, with
//!   no model or when it fails (budget, timeout, provider down: the answer
//!   says which), extractive: facts as sentences and the best passages
//!   quoted, marked `[n]`. Follow-ups keep the conversation's subject ("who
//!   owns it?") and, for the model, its last turns.
//! - **Feedback** (licence feature `feedback`): thumbs and a comment on an
//!   answer or one of its sources. The owners of the cited entities and
//!   docs sites see it on the knowledge-gaps page (licence feature
//!   `knowledge-gaps`), without the asker's name; holders of
//!   `assistant.unanswered.read` also see the questions that found nothing.
//! - **Retention**: questions are kept `retention_days` (default 30); the
//!   tick deletes older ones. A person can forget their own questions;
//!   holders of `assistant.purge` delete everything.
//!
//! Routes (JSON): `POST /ask` `{"question", "conversation"?, "entity"?,
//! "new"?}` (`new`: start a new conversation),
//! `GET /conversation`, `POST /feedback` `{"turn", "vote": "up"|"down",
//! "source"?: n, "comment"?}`, `GET /gaps`, `DELETE /questions` (mine),
//! `POST /purge`.
//!
//! Settings (`[plugins.settings.assistant]`): `retention_days`,
//! `questions_per_day` (per person, default 200).

mod answer;
mod flows;
mod question;
mod retrieve;
mod store;
mod views;

use callboard_sdk::{
    Error, Params, Plugin, Request, Response, Router, export_plugin,
    ui::{ActionRequest, Notice, Slot, Tone, View, ViewRequest},
};
use serde::Deserialize;
use serde_json::json;

use crate::store::Vote;

struct Assistant;

impl Plugin for Assistant {
    fn handle(request: Request) -> Response {
        Router::new()
            .post("/ask", ask_route)
            .get("/conversation", conversation_route)
            .post("/feedback", feedback_route)
            .get("/gaps", gaps_route)
            .delete("/questions", forget_route)
            .post("/purge", purge_route)
            .handle(&request)
    }

    fn view(request: ViewRequest) -> Result<Option<View>, Error> {
        match (request.slot, request.path.trim_end_matches('/')) {
            (Slot::Page, "") => views::page(&request).map(Some),
            (Slot::Page, "/gaps") => views::gaps(&request).map(Some),
            (Slot::EntityCard, _) => views::card(&request),
            _ => Ok(None),
        }
    }

    fn action(request: ActionRequest) -> Result<Notice, Error> {
        let principal = request.principal();
        match request.name.as_str() {
            views::ASK => {
                let text = request.value("q").unwrap_or("");
                let entity = match request.view.slot {
                    Slot::EntityCard | Slot::EntityTab => request.view.entity_ref(),
                    Slot::Page => None,
                };
                let turn = flows::ask(principal, text, None, entity.as_deref())?;
                Ok(if turn.answer.found {
                    Notice::new(
                        Tone::Good,
                        format!("Answered from {} sources", turn.answer.citations.len()),
                        None,
                    )
                } else {
                    Notice::new(
                        Tone::Warning,
                        "Nothing you can read answers this",
                        Some("The question is listed as a knowledge gap.".into()),
                    )
                })
            }
            views::NEW => {
                store::end_current(&flows::asker(principal)?)?;
                Ok(Notice::new(Tone::Neutral, "New conversation", None))
            }
            views::FORGET => {
                let n = store::forget(&flows::asker(principal)?)?;
                Ok(Notice::new(
                    Tone::Neutral,
                    format!("Forgot {n} of your questions"),
                    None,
                ))
            }
            views::RATE => {
                let turn = request.value("turn").unwrap_or("");
                let vote = Vote::parse(request.value("vote").unwrap_or(""))
                    .ok_or_else(|| Error::bad_request("vote must be up or down"))?;
                let source = match request.value("source") {
                    None | Some("answer") | Some("") => None,
                    Some(n) => Some(
                        n.parse()
                            .map_err(|_| Error::bad_request("no such source"))?,
                    ),
                };
                flows::feedback(principal, turn, source, vote, request.value("comment"))?;
                Ok(Notice::new(
                    Tone::Good,
                    "Thank you: the sources' owners will see it",
                    None,
                ))
            }
            views::PURGE => {
                let n = flows::purge()?;
                Ok(Notice::new(
                    Tone::Neutral,
                    format!("Deleted {n} kept records"),
                    None,
                ))
            }
            other => Err(Error::not_found(format!("no action named {other:?}"))),
        }
    }

    fn on_tick(now_ms: u64) {
        let cutoff = now_ms.saturating_sub(flows::retention_days() * 86_400_000);
        match store::expire(cutoff) {
            Ok(0) => {}
            Ok(n) => callboard_sdk::log::info(&format!("deleted {n} questions past retention")),
            Err(e) => callboard_sdk::log::warn(&format!("retention: {e}")),
        }
        if let Err(e) = store::expire_counters(now_ms / 86_400_000) {
            callboard_sdk::log::warn(&format!("retention of daily counts: {e}"));
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AskBody {
    question: String,
    #[serde(default)]
    conversation: Option<String>,
    #[serde(default)]
    entity: Option<String>,
    /// Start a new conversation with this question.
    #[serde(default)]
    new: bool,
}

fn turn_json(turn: &store::Turn) -> serde_json::Value {
    json!({
        "turn": turn.id,
        "conversation": turn.conversation,
        "question": turn.question,
        "answer": turn.answer.text,
        "mode": turn.answer.mode,
        "model": turn.answer.model,
        "notice": turn.answer.notice,
        "found": turn.answer.found,
        "subject": turn.answer.subject,
        "citations": turn.answer.citations,
        "vote": turn.vote,
        "comment": turn.comment,
        "sourceVotes": turn.source_votes,
    })
}

fn ask_route(request: &Request, _: &Params) -> Result<Response, Error> {
    let body: AskBody = request
        .json()
        .map_err(|e| Error::bad_request(format!("body: {e}")))?;
    let entity = body
        .entity
        .map(|e| retrieve::full_ref(&e, "component"))
        .filter(|e| e.len() <= 300);
    if body.new && body.conversation.is_none() {
        store::end_current(&flows::asker(request.principal())?)?;
    }
    let turn = flows::ask(
        request.principal(),
        &body.question,
        body.conversation.as_deref(),
        entity.as_deref(),
    )?;
    Ok(Response::json(&turn_json(&turn)))
}

fn conversation_route(request: &Request, _: &Params) -> Result<Response, Error> {
    let user = flows::asker(request.principal())?;
    let turns = match store::current(&user)? {
        Some(c) => store::turns(&c)?,
        None => Vec::new(),
    };
    Ok(Response::json(&json!({
        "turns": turns.iter().map(turn_json).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackBody {
    turn: String,
    vote: Vote,
    #[serde(default)]
    source: Option<u32>,
    #[serde(default)]
    comment: Option<String>,
}

fn feedback_route(request: &Request, _: &Params) -> Result<Response, Error> {
    let body: FeedbackBody = request
        .json()
        .map_err(|e| Error::bad_request(format!("body: {e}")))?;
    let turn = flows::feedback(
        request.principal(),
        &body.turn,
        body.source,
        body.vote,
        body.comment.as_deref(),
    )?;
    Ok(Response::json(&turn_json(&turn)))
}

fn gaps_route(request: &Request, _: &Params) -> Result<Response, Error> {
    let owners = flows::ownership(request.principal());
    let mut sources = Vec::new();
    let mut wrong = Vec::new();
    for owner in &owners {
        for f in store::source_feedback(owner, 50)? {
            sources.push(
                json!({"owner": owner, "title": f.title, "href": f.href, "up": f.up, "down": f.down,
                "comments": f.comments.iter().map(|(_, c)| c).collect::<Vec<_>>()}),
            );
        }
        for w in store::wrong_answers(owner, 20)? {
            wrong.push(json!({"owner": owner, "question": w.question, "answer": w.answer, "comment": w.comment}));
        }
    }
    let unanswered = if flows::sees_unanswered() {
        Some(
            store::unanswered(50)?
                .into_iter()
                .map(|t| t.question)
                .collect::<Vec<_>>(),
        )
    } else {
        None
    };
    Ok(Response::json(&json!({
        "owners": owners,
        "sources": sources,
        "wrongAnswers": wrong,
        "unanswered": unanswered,
    })))
}

fn forget_route(request: &Request, _: &Params) -> Result<Response, Error> {
    let n = store::forget(&flows::asker(request.principal())?)?;
    Ok(Response::json(&json!({ "forgotten": n })))
}

fn purge_route(_: &Request, _: &Params) -> Result<Response, Error> {
    let n = flows::purge()?;
    Ok(Response::json(&json!({ "deleted": n })))
}

export_plugin!(Assistant);
