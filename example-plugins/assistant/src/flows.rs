//! What the routes and the page's actions share: asking, feedback,
//! forgetting and purging, each as the person the call runs for.

use callboard_sdk::{Error, Principal, config, kv, license, permissions};

use crate::{
    answer::{self, Context},
    question::{MAX_QUESTION_CHARS, Question},
    retrieve::{self, Host, Named, Sources},
    store::{self, Conversation, MAX_COMMENT_CHARS, MAX_TURNS, SourceVote, Turn, Vote},
};

/// Licence feature: thumbs and comments on answers and sources.
pub const FEEDBACK: &str = "feedback";
/// Licence feature: the knowledge-gaps view.
pub const KNOWLEDGE_GAPS: &str = "knowledge-gaps";
/// Declared permission: delete every kept question and all feedback.
pub const PURGE: &str = "assistant.purge";
/// Declared permission: see questions that found nothing (anyone's, without names).
pub const UNANSWERED: &str = "assistant.unanswered.read";

const DEFAULT_RETENTION_DAYS: u64 = 30;
const DEFAULT_QUESTIONS_PER_DAY: i64 = 200;
const DAY_MS: u64 = 86_400_000;

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Days questions are kept (`retention_days`, 1 to 3650).
pub fn retention_days() -> u64 {
    config::get("retention_days")
        .and_then(|v| v.trim().parse().ok())
        .filter(|d| (1..=3650).contains(d))
        .unwrap_or(DEFAULT_RETENTION_DAYS)
}

fn questions_per_day() -> i64 {
    config::get("questions_per_day")
        .and_then(|v| v.trim().parse().ok())
        .filter(|d| *d > 0)
        .unwrap_or(DEFAULT_QUESTIONS_PER_DAY)
}

/// Who asks: a signed-in person, or a token's service principal; never
/// nobody (answers are kept per person).
pub fn asker(principal: &Principal) -> Result<String, Error> {
    match principal {
        Principal::User { user_ref, .. } => Ok(user_ref.clone()),
        Principal::Service(name) if !name.starts_with("plugin:") => Ok(name.to_ascii_lowercase()),
        _ => Err(Error::new(401, "sign in to ask the assistant")),
    }
}

fn checked_text<'a>(what: &str, text: &'a str, max: usize) -> Result<&'a str, Error> {
    let text = text.trim();
    if text.chars().count() > max {
        return Err(Error::bad_request(format!(
            "{what} is longer than {max} characters"
        )));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Error::bad_request(format!(
            "{what} holds control characters"
        )));
    }
    Ok(text)
}

/// Asks `text`, in the person's current conversation (or `conversation`
/// of theirs), about `entity` when asked from its card.
pub fn ask(
    principal: &Principal,
    text: &str,
    conversation: Option<&str>,
    entity: Option<&str>,
) -> Result<Turn, Error> {
    let user = asker(principal)?;
    let text = checked_text("the question", text, MAX_QUESTION_CHARS)?;
    if text.is_empty() {
        return Err(Error::bad_request("ask a question"));
    }
    let now = now_ms();
    let asked_today = kv::increment(&format!("q/{user}/{}", now / DAY_MS), 1)?;
    if asked_today > questions_per_day() {
        return Err(Error::new(
            429,
            format!(
                "{user} asked {} questions today, the most this portal allows",
                asked_today - 1
            ),
        ));
    }
    let mut conversation = match conversation {
        Some(id) if !store::valid_id(id) => return Err(Error::not_found("no such conversation")),
        Some(id) => kv::get_json::<Conversation>(&store::conversation_key(&user, id))?
            .ok_or_else(|| Error::not_found("no such conversation"))?,
        None => store::current(&user)?.unwrap_or_default(),
    };
    if conversation.turns.len() >= MAX_TURNS {
        conversation = Conversation::default();
    }
    let mut earlier = Vec::new();
    for id in conversation.turns.iter().rev().take(3).rev() {
        if let Some(t) = store::load_turn(id)? {
            earlier.push(t);
        }
    }
    let previous = earlier.last();
    let mut question = Question::read(text);
    let mut context = Context {
        subject: previous.and_then(|t| t.answer.subject.clone()),
        keywords: previous
            .map(|t| t.answer.keywords.clone())
            .unwrap_or_default(),
        history: earlier
            .iter()
            .map(|t| (t.question.clone(), t.answer.text.clone()))
            .collect(),
    };
    if let Some(e) = entity {
        // Asked on an entity's card: the entity is what "it" means.
        context.subject = Some(e.to_owned());
        question.refers_back = true;
    }
    let answer = answer::answer(&Host, &question, &context).map_err(|e| Error::new(503, e))?;
    let id = store::new_turn_id(now)?;
    if conversation.id.is_empty() {
        conversation.id = id.clone();
    }
    let turn = Turn {
        id: id.clone(),
        user: user.clone(),
        conversation: conversation.id.clone(),
        at_ms: now,
        question: text.to_owned(),
        answer,
        entity: entity.map(str::to_owned),
        vote: None,
        comment: None,
        source_votes: Vec::new(),
    };
    store::save_turn(&turn)?;
    conversation.turns.push(id.clone());
    store::set_current(&user, &conversation)?;
    if !turn.answer.found {
        store::mark_unanswered(&id)?;
    }
    // For an analytics plugin (insights) to count: what was asked about,
    // never the question's text.
    let subject = turn.answer.subject.as_deref().unwrap_or("");
    publish("question", subject, &[("mode", &turn.answer.mode)]);
    if !turn.answer.found {
        publish("unanswered", subject, &[]);
    }
    if let Some(e) = entity {
        kv::set(&store::entity_key(&user, e), id.as_bytes())?;
    }
    Ok(turn)
}

/// Feedback on an answer (`source` none) or on one of its sources.
pub fn feedback(
    principal: &Principal,
    turn_id: &str,
    source: Option<u32>,
    vote: Vote,
    comment: Option<&str>,
) -> Result<Turn, Error> {
    if !license::has_feature(FEEDBACK) {
        return Err(Error::forbidden(format!(
            "feedback needs the licence feature \"{FEEDBACK}\""
        )));
    }
    let user = asker(principal)?;
    let comment = comment
        .map(|c| checked_text("the comment", c, MAX_COMMENT_CHARS))
        .transpose()?
        .filter(|c| !c.is_empty());
    // Only the person who asked sees, and rates, their answer.
    let mut turn = store::load_turn(turn_id)?
        .filter(|t| t.user == user)
        .ok_or_else(|| Error::not_found("no such answer of yours"))?;
    let now = now_ms();
    publish(
        match vote {
            Vote::Up => "feedback-up",
            Vote::Down => "feedback-down",
        },
        "",
        &[("on", if source.is_some() { "source" } else { "answer" })],
    );
    match source {
        None => {
            turn.vote = Some(vote);
            turn.comment = comment.map(str::to_owned);
            store::save_turn(&turn)?;
            if vote == Vote::Down {
                for owner in owners(
                    &Host,
                    turn.answer
                        .citations
                        .iter()
                        .filter_map(|c| c.source.entity_ref.as_deref()),
                )? {
                    store::record_wrong_answer(&owner, &turn)?;
                }
            }
        }
        Some(n) => {
            let citation = turn
                .answer
                .citations
                .iter()
                .find(|c| c.n == n)
                .cloned()
                .ok_or_else(|| Error::bad_request(format!("the answer has no source [{n}]")))?;
            turn.source_votes.retain(|v| v.n != n);
            turn.source_votes.push(SourceVote {
                n,
                vote,
                comment: comment.map(str::to_owned),
            });
            store::save_turn(&turn)?;
            for owner in owners(&Host, citation.source.entity_ref.as_deref())? {
                store::record_source_feedback(
                    &owner,
                    &citation.source.title,
                    &citation.source.href,
                    vote,
                    comment.map(|c| (turn.id.as_str(), c)),
                    now,
                )?;
            }
        }
    }
    Ok(turn)
}

/// Publishes one of the assistant's usage events; one that cannot be
/// published (not granted, a full queue) is logged, never fails the call.
fn publish(kind: &str, subject: &str, attributes: &[(&str, &str)]) {
    if let Err(e) = callboard_sdk::events::publish(kind, subject, attributes) {
        callboard_sdk::log::info(&format!("usage event {kind} not published: {e}"));
    }
}

/// The owners of entities, read as the person (who saw them cited).
fn owners<'a>(
    sources: &dyn Sources,
    refs: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<String>, Error> {
    let mut out: Vec<String> = Vec::new();
    for r in refs {
        let entity = sources.entity(r).map_err(|e| Error::new(503, e))?;
        // A group owns itself; everything else is owned by its spec.owner.
        let owner = entity.and_then(|e| {
            let named = Named::of(&e);
            if named.kind.eq_ignore_ascii_case("group") {
                Some(named.entity_ref)
            } else {
                named.owner
            }
        });
        if let Some(o) = owner
            && !out.contains(&o)
        {
            out.push(o);
        }
    }
    Ok(out)
}

/// Deletes every kept question, conversation and all feedback.
pub fn purge() -> Result<usize, Error> {
    permissions::require(PURGE, None)?;
    let mut deleted = 0;
    for prefix in ["t/", "c/", "cur/", "e/", "gap/", "own/", "q/"] {
        deleted += store::delete_prefix(prefix)?;
    }
    Ok(deleted)
}

/// Whether the caller sees questions that found nothing.
pub fn sees_unanswered() -> bool {
    permissions::check(UNANSWERED, None).unwrap_or(false)
}

/// The refs the person owns through, for the knowledge-gaps view.
pub fn ownership(principal: &Principal) -> Vec<String> {
    match principal {
        Principal::User { ownership, .. } => ownership
            .iter()
            .filter(|r| r.starts_with("group:") || r.starts_with("user:"))
            .map(|r| retrieve::full_ref(r, "group"))
            .collect(),
        _ => Vec::new(),
    }
}
