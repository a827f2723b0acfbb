//! What the assistant keeps, in its key-value store. Every key starts with
//! what it is:
//!
//! - `t/<turn>`: one question and its answer, with its feedback. Turn ids
//!   start with the time in hex (13 digits of milliseconds), so keys sort
//!   oldest first and retention deletes from the front.
//! - `c/<user>/<conversation>`: a conversation's turn ids (the last
//!   [`MAX_TURNS`]); `cur/<user>`: the person's current conversation;
//!   `e/<user>/<entity>`: their latest turn asked from that entity's card.
//! - `gap/n/<turn>`: a question that found nothing.
//! - `own/<owner>/w/<turn>`: an answer marked wrong that cited a source
//!   `<owner>` owns; `own/<owner>/s/<source>`: feedback on one of their
//!   sources (counts and the latest comments).
//!
//! Who asked is kept on the turn only, so the knowledge-gaps view shows
//! questions and feedback without names.

use callboard_sdk::kv::{self, KvError};
use serde::{Deserialize, Serialize};

use crate::answer::Answer;

/// Turns a conversation keeps (older ones leave the context).
pub const MAX_TURNS: usize = 20;
/// Comments kept per source.
const MAX_SOURCE_COMMENTS: usize = 20;
/// Longest comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 1000;
/// Keys one listing reads.
pub const LIST_LIMIT: u32 = 10_000;

/// Helpful or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Vote {
    Up,
    Down,
}

impl Vote {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "up" => Some(Self::Up),
            "down" => Some(Self::Down),
            _ => None,
        }
    }
}

/// Feedback on one cited source of a turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceVote {
    pub n: u32,
    pub vote: Vote,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// One question and its answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    pub id: String,
    pub user: String,
    pub conversation: String,
    pub at_ms: u64,
    pub question: String,
    pub answer: Answer,
    /// Asked from this entity's card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vote: Option<Vote>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_votes: Vec<SourceVote>,
}

/// A conversation: its turns, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: String,
    pub turns: Vec<String>,
}

/// Feedback on one source, kept for its owner.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceFeedback {
    pub title: String,
    pub href: String,
    pub up: u64,
    pub down: u64,
    /// The latest comments (turn id, text), newest last.
    pub comments: Vec<(String, String)>,
    pub last_at_ms: u64,
}

/// An answer marked wrong, kept for the owners of what it cited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WrongAnswer {
    pub question: String,
    pub answer: String,
    pub comment: Option<String>,
    pub at_ms: u64,
}

pub fn turn_key(id: &str) -> String {
    format!("t/{id}")
}

/// A new turn id: the time, then a sequence number.
pub fn new_turn_id(now_ms: u64) -> Result<String, KvError> {
    let seq = kv::increment("seq", 1)?;
    Ok(format!("{now_ms:013x}{:06x}", seq.rem_euclid(1 << 24)))
}

/// When a turn id was made.
pub fn turn_time(id: &str) -> Option<u64> {
    u64::from_str_radix(id.get(..13)?, 16).ok()
}

pub fn load_turn(id: &str) -> Result<Option<Turn>, KvError> {
    if !valid_id(id) {
        return Ok(None);
    }
    kv::get_json(&turn_key(id))
}

pub fn save_turn(turn: &Turn) -> Result<(), KvError> {
    kv::set_json(&turn_key(&turn.id), turn)
}

/// Ids are lower-case hex: nothing else may reach a key.
pub fn valid_id(id: &str) -> bool {
    (13..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

pub fn conversation_key(user: &str, id: &str) -> String {
    format!("c/{user}/{id}")
}

/// The person's current conversation, if any.
pub fn current(user: &str) -> Result<Option<Conversation>, KvError> {
    let Some(id) = kv::get(&format!("cur/{user}"))? else {
        return Ok(None);
    };
    let id = String::from_utf8_lossy(&id).into_owned();
    if !valid_id(&id) {
        return Ok(None);
    }
    kv::get_json(&conversation_key(user, &id))
}

pub fn set_current(user: &str, conversation: &Conversation) -> Result<(), KvError> {
    kv::set_json(&conversation_key(user, &conversation.id), conversation)?;
    kv::set(&format!("cur/{user}"), conversation.id.as_bytes())
}

/// Starts the person's next question in a new conversation.
pub fn end_current(user: &str) -> Result<(), KvError> {
    kv::delete(&format!("cur/{user}")).map(|_| ())
}

/// The turns of a conversation that are still kept, oldest first.
pub fn turns(conversation: &Conversation) -> Result<Vec<Turn>, KvError> {
    let mut out = Vec::new();
    for id in &conversation.turns {
        if let Some(t) = load_turn(id)? {
            out.push(t);
        }
    }
    Ok(out)
}

pub fn entity_key(user: &str, entity: &str) -> String {
    format!("e/{user}/{entity}")
}

pub fn mark_unanswered(id: &str) -> Result<(), KvError> {
    kv::set(&format!("gap/n/{id}"), b"")
}

/// The newest questions that found nothing, newest first.
pub fn unanswered(limit: usize) -> Result<Vec<Turn>, KvError> {
    let keys = kv::list_keys("gap/n/", LIST_LIMIT)?;
    let mut out = Vec::new();
    for key in keys.iter().rev().take(limit) {
        if let Some(t) = load_turn(key.trim_start_matches("gap/n/"))? {
            out.push(t);
        }
    }
    Ok(out)
}

/// A short, stable key for a source's link.
pub fn source_key(href: &str) -> String {
    // FNV-1a, 64 bits: keys stay short whatever the link.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in href.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Records a vote (and comment) on a source for its owner.
pub fn record_source_feedback(
    owner: &str,
    title: &str,
    href: &str,
    vote: Vote,
    comment: Option<(&str, &str)>,
    now_ms: u64,
) -> Result<(), KvError> {
    let key = format!("own/{owner}/s/{}", source_key(href));
    let mut f: SourceFeedback = kv::get_json(&key)?.unwrap_or_default();
    f.title = title.to_owned();
    f.href = href.to_owned();
    match vote {
        Vote::Up => f.up += 1,
        Vote::Down => f.down += 1,
    }
    if let Some((turn, text)) = comment {
        f.comments.push((turn.to_owned(), text.to_owned()));
        let extra = f.comments.len().saturating_sub(MAX_SOURCE_COMMENTS);
        f.comments.drain(..extra);
    }
    f.last_at_ms = now_ms;
    kv::set_json(&key, &f)
}

pub fn record_wrong_answer(owner: &str, turn: &Turn) -> Result<(), KvError> {
    kv::set_json(
        &format!("own/{owner}/w/{}", turn.id),
        &WrongAnswer {
            question: turn.question.clone(),
            answer: turn.answer.text.clone(),
            comment: turn.comment.clone(),
            at_ms: turn.at_ms,
        },
    )
}

/// Feedback on the sources `owner` owns, most marked unhelpful first.
pub fn source_feedback(owner: &str, limit: usize) -> Result<Vec<SourceFeedback>, KvError> {
    let mut out = Vec::new();
    for key in kv::list_keys(&format!("own/{owner}/s/"), LIST_LIMIT)? {
        if let Some(f) = kv::get_json::<SourceFeedback>(&key)? {
            out.push(f);
        }
    }
    out.sort_by(|a, b| {
        b.down
            .cmp(&a.down)
            .then(a.up.cmp(&b.up))
            .then(a.href.cmp(&b.href))
    });
    out.truncate(limit);
    Ok(out)
}

/// Answers marked wrong that cited `owner`'s sources, newest first.
pub fn wrong_answers(owner: &str, limit: usize) -> Result<Vec<WrongAnswer>, KvError> {
    let keys = kv::list_keys(&format!("own/{owner}/w/"), LIST_LIMIT)?;
    let mut out = Vec::new();
    for key in keys.iter().rev().take(limit) {
        if let Some(w) = kv::get_json(key)? {
            out.push(w);
        }
    }
    Ok(out)
}

/// Deletes every key under `prefix`; how many.
pub fn delete_prefix(prefix: &str) -> Result<usize, KvError> {
    let mut deleted = 0;
    loop {
        let keys = kv::list_keys(prefix, 1000)?;
        if keys.is_empty() {
            return Ok(deleted);
        }
        for key in &keys {
            kv::delete(key)?;
        }
        deleted += keys.len();
    }
}

/// Deletes turns (and their gap markers and wrong-answer records) older
/// than `cutoff_ms`; how many turns. Owners' source counts stay; their
/// comments older than the cutoff go.
pub fn expire(cutoff_ms: u64) -> Result<usize, KvError> {
    let mut deleted = 0;
    for key in kv::list_keys("t/", LIST_LIMIT)? {
        let id = key.trim_start_matches("t/");
        if turn_time(id).is_some_and(|at| at >= cutoff_ms) {
            break;
        }
        kv::delete(&key)?;
        kv::delete(&format!("gap/n/{id}"))?;
        deleted += 1;
    }
    for key in kv::list_keys("own/", LIST_LIMIT)? {
        if let Some(id) = key.rsplit_once("/w/").map(|(_, id)| id)
            && turn_time(id).is_some_and(|at| at < cutoff_ms)
        {
            kv::delete(&key)?;
        } else if key.contains("/s/")
            && let Some(mut f) = kv::get_json::<SourceFeedback>(&key)?
        {
            let before = f.comments.len();
            f.comments
                .retain(|(turn, _)| turn_time(turn).is_some_and(|at| at >= cutoff_ms));
            if f.comments.len() != before {
                kv::set_json(&key, &f)?;
            }
        }
    }
    Ok(deleted)
}

/// Deletes the per-person daily question counts of days before `today`.
pub fn expire_counters(today: u64) -> Result<usize, KvError> {
    let mut deleted = 0;
    for key in kv::list_keys("q/", LIST_LIMIT)? {
        let day = key.rsplit('/').next().and_then(|d| d.parse::<u64>().ok());
        if day.is_some_and(|d| d < today) {
            kv::delete(&key)?;
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// Forgets one person's questions: their turns, conversations and the
/// gap markers of their turns.
pub fn forget(user: &str) -> Result<usize, KvError> {
    let mut deleted = 0;
    for key in kv::list_keys(&format!("c/{user}/"), LIST_LIMIT)? {
        if let Some(c) = kv::get_json::<Conversation>(&key)? {
            for id in &c.turns {
                if kv::delete(&turn_key(id))? {
                    deleted += 1;
                }
                kv::delete(&format!("gap/n/{id}"))?;
            }
        }
        kv::delete(&key)?;
    }
    delete_prefix(&format!("e/{user}/"))?;
    kv::delete(&format!("cur/{user}"))?;
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_ids_sort_by_time_and_are_checked() {
        let a = format!("{:013x}{:06x}", 1_700_000_000_000u64, 5);
        let b = format!("{:013x}{:06x}", 1_700_000_000_001u64, 1);
        assert!(a < b);
        assert_eq!(turn_time(&a), Some(1_700_000_000_000));
        assert!(valid_id(&a));
        assert!(!valid_id("../x"));
        assert!(!valid_id("ABCDEF0123456789"));
        assert!(!valid_id(""));
    }

    #[test]
    fn source_keys_are_short_and_stable() {
        let k = source_key("/docs/default/component/payment-gateway/runbook#rollback");
        assert_eq!(k.len(), 16);
        assert_eq!(
            k,
            source_key("/docs/default/component/payment-gateway/runbook#rollback")
        );
        assert_ne!(
            k,
            source_key("/docs/default/component/payment-gateway/runbook")
        );
    }
}
