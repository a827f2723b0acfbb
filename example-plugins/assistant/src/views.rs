//! The assistant's views: the Ask page (the conversation, then the
//! question box), the "Ask about this" card on entities, and the
//! knowledge-gaps page for owners. UI as data; the portal renders it.

use callboard_sdk::{
    Error, license,
    ui::{Block, Button, Card, Cell, Field, Form, Notice, Stat, Table, Tone, View, ViewRequest},
};

use crate::{
    answer::cut,
    flows::{self, FEEDBACK, KNOWLEDGE_GAPS},
    question::MAX_QUESTION_CHARS,
    store::{self, MAX_COMMENT_CHARS, Turn, Vote},
};

pub const ASK: &str = "ask";
pub const NEW: &str = "new-conversation";
pub const FORGET: &str = "forget";
pub const RATE: &str = "rate";
pub const PURGE: &str = "purge";

fn ask_form(entity: bool) -> Form {
    let field = Field::text(
        "q",
        if entity {
            "Ask about this"
        } else {
            "Your question"
        },
        "",
    )
    .required()
    .help(if entity {
        "Answered from its docs, its catalog entry and its relations, as you may read them."
    } else {
        "Answered from the docs, the catalog and plugins' documents you may read, with sources. \
             Follow-up questions keep the conversation's context."
    });
    let field = match field.kind {
        callboard_sdk::ui::FieldKind::Text(mut t) => {
            t.placeholder = Some(if entity {
                "Who owns it? What depends on it? How do I deploy it?".into()
            } else {
                "Who owns payment-gateway? How do I roll back a bad deploy?".into()
            });
            t.max_length = Some(MAX_QUESTION_CHARS as u32);
            Field {
                kind: callboard_sdk::ui::FieldKind::Text(t),
                ..field
            }
        }
        _ => field,
    };
    Form::new(ASK, "Ask").field(field)
}

/// One answer: the question, the answer with `[n]` markers, its sources.
fn turn_blocks(turn: &Turn) -> Vec<Block> {
    let mut blocks = Vec::new();
    if let Some(why) = &turn.answer.notice {
        blocks.push(Block::Notice(Notice::new(
            Tone::Warning,
            "Answered without the language model",
            Some(why.clone()),
        )));
    }
    blocks.push(Block::Text(turn.answer.text.clone()));
    if !turn.answer.citations.is_empty() {
        let mut table = Table::new(["", "Source", "Passage"]);
        for c in &turn.answer.citations {
            let kind = match c.source.kind.as_str() {
                "entity" => "Catalog",
                "docs" => "Docs",
                other => other,
            };
            table = table.row(vec![
                Cell::text(format!("[{}]", c.n)),
                Cell::link(format!("{kind}: {}", c.source.title), c.source.href.clone()),
                Cell::text(c.passage.clone()),
            ]);
        }
        blocks.push(Block::Table(table));
    }
    blocks
}

fn feedback_blocks(turn: &Turn) -> Vec<Block> {
    let mut blocks = Vec::new();
    match turn.vote {
        Some(Vote::Up) => blocks.push(Block::Badges(vec![callboard_sdk::ui::Badge {
            text: "You marked this answer helpful".into(),
            tone: Tone::Good,
        }])),
        Some(Vote::Down) => blocks.push(Block::Badges(vec![callboard_sdk::ui::Badge {
            text: "You marked this answer wrong: the owners of its sources see it".into(),
            tone: Tone::Warning,
        }])),
        None => {
            blocks.push(Block::Button(
                Button::new("Helpful", RATE)
                    .value("turn", &turn.id)
                    .value("vote", "up"),
            ));
            blocks.push(Block::Button(
                Button::new("Wrong", RATE)
                    .value("turn", &turn.id)
                    .value("vote", "down")
                    .tone(Tone::Bad),
            ));
        }
    }
    let mut options = vec![("answer".to_owned(), "The answer".to_owned())];
    for c in &turn.answer.citations {
        options.push((
            c.n.to_string(),
            format!("[{}] {}", c.n, cut(&c.source.title, 80)),
        ));
    }
    blocks.push(Block::Form(
        Form::new(RATE, "Send feedback")
            .hidden("turn", &turn.id)
            .field(Field::select("source", "On", options, Some("answer")))
            .field(Field::select(
                "vote",
                "It is",
                [("down", "Wrong or unhelpful"), ("up", "Helpful")],
                Some("down"),
            ))
            .field(Field::text("comment", "Comment", "").help(format!(
                "What is wrong or missing? The source's owner reads it (without your name); at most {MAX_COMMENT_CHARS} characters."
            ))),
    ));
    blocks
}

/// The Ask page.
pub fn page(request: &ViewRequest) -> Result<View, Error> {
    let user = flows::asker(&request.principal)?;
    let turns = match store::current(&user)? {
        Some(c) => store::turns(&c)?,
        None => Vec::new(),
    };
    let feedback = license::has_feature(FEEDBACK);
    let mut view = View::new("Ask");
    let last = turns.len().saturating_sub(1);
    for (i, turn) in turns.iter().enumerate() {
        let mut card = Card::new(cut(&turn.question, 160));
        for b in turn_blocks(turn) {
            card = card.block(b);
        }
        if feedback && i == last {
            for b in feedback_blocks(turn) {
                card = card.block(b);
            }
        }
        view = view.card(card);
    }
    let mut ask = Card::new(if turns.is_empty() {
        "Ask the portal"
    } else {
        "Ask a follow-up"
    })
    .block(Block::Form(ask_form(false)));
    if !turns.is_empty() {
        ask = ask.block(Block::Button(Button::new("New conversation", NEW)));
    }
    ask = ask.block(Block::Button(
        Button::new("Forget my questions", FORGET).tone(Tone::Bad),
    ));
    let how = match callboard_sdk::models::configured() {
        Some(info) => format!(
            "Answers are written by {} from the sources you may read, each claim citing them.",
            info.model
        ),
        None => "Answers are extractive: the best passages and catalog facts, quoted with their \
                 sources (no language model is configured)."
            .to_owned(),
    };
    ask = ask.block(Block::Text(format!(
        "{how} Questions are kept for {} days.",
        flows::retention_days()
    )));
    if license::has_feature(KNOWLEDGE_GAPS) {
        ask = ask.block(Block::Link(callboard_sdk::ui::Link {
            text: "Knowledge gaps in the sources you own".into(),
            href: "/plugins/assistant/gaps".into(),
        }));
    }
    Ok(view.card(ask))
}

/// "Ask about this" on an entity's overview.
pub fn card(request: &ViewRequest) -> Result<Option<View>, Error> {
    let Some(entity) = request.entity_ref() else {
        return Ok(None);
    };
    let Ok(user) = flows::asker(&request.principal) else {
        return Ok(None);
    };
    let mut card = Card::new(format!("Ask about this {}", request.kind()));
    if let Some(id) = callboard_sdk::kv::get(&store::entity_key(&user, &entity))?
        && let Some(turn) = store::load_turn(&String::from_utf8_lossy(&id))?
    {
        card = card.block(Block::Text(format!(
            "You asked: {}",
            cut(&turn.question, 200)
        )));
        for b in turn_blocks(&turn) {
            card = card.block(b);
        }
        card = card.block(Block::Link(callboard_sdk::ui::Link {
            text: "Continue in the assistant".into(),
            href: "/plugins/assistant".into(),
        }));
    }
    Ok(Some(
        View::new("Ask").card(card.block(Block::Form(ask_form(true)))),
    ))
}

/// Feedback on the viewer's sources, and (for those allowed) questions
/// that found nothing.
pub fn gaps(request: &ViewRequest) -> Result<View, Error> {
    let owners = flows::ownership(&request.principal);
    let mut view = View::new("Knowledge gaps");
    let mut sources = Vec::new();
    let mut wrong = Vec::new();
    for owner in &owners {
        for f in store::source_feedback(owner, 50)? {
            sources.push((owner.clone(), f));
        }
        for w in store::wrong_answers(owner, 20)? {
            wrong.push((owner.clone(), w));
        }
    }
    sources.sort_by_key(|s| std::cmp::Reverse(s.1.down));
    wrong.sort_by_key(|w| std::cmp::Reverse(w.1.at_ms));
    let down: u64 = sources.iter().map(|(_, f)| f.down).sum();
    let up: u64 = sources.iter().map(|(_, f)| f.up).sum();
    view = view.card(Card::untitled().block(Block::Stats(vec![
        Stat::new("Your sources marked unhelpful", down.to_string()),
        Stat::new("Marked helpful", up.to_string()),
        Stat::new("Wrong answers citing them", wrong.len().to_string()),
    ])));
    let mut table = Table::new(["Source", "Owner", "Unhelpful", "Helpful", "Latest comment"]);
    for (owner, f) in &sources {
        table = table.row(vec![
            Cell::link(f.title.clone(), f.href.clone()),
            Cell::text(owner.clone()),
            Cell::number(f.down.to_string()),
            Cell::number(f.up.to_string()),
            Cell::text(
                f.comments
                    .last()
                    .map(|(_, c)| c.clone())
                    .unwrap_or_default(),
            ),
        ]);
    }
    let mut card = Card::new("Sources you own, most often marked unhelpful");
    card = if sources.is_empty() {
        card.block(Block::Text(
            "No feedback on the sources you own yet.".into(),
        ))
    } else {
        card.block(Block::Table(table))
    };
    view = view.card(card);
    if !wrong.is_empty() {
        let mut table = Table::new(["Question", "Answer", "Comment", "Owner"]);
        for (owner, w) in &wrong {
            table = table.row(vec![
                Cell::text(cut(&w.question, 200)),
                Cell::text(cut(&w.answer, 300)),
                Cell::text(w.comment.clone().unwrap_or_default()),
                Cell::text(owner.clone()),
            ]);
        }
        view = view.card(
            Card::new("Answers marked wrong that cited your sources").block(Block::Table(table)),
        );
    }
    if flows::sees_unanswered() {
        let unanswered = store::unanswered(50)?;
        let mut card = Card::new("Questions that found nothing");
        if unanswered.is_empty() {
            card = card.block(Block::Text("Every recent question found something.".into()));
        } else {
            let mut table = Table::new(["Question", "Asked"]);
            for t in &unanswered {
                table = table.row(vec![
                    Cell::text(cut(&t.question, 200)),
                    Cell::text(days_ago(t.at_ms)),
                ]);
            }
            card = card.block(Block::Table(table));
        }
        view = view.card(card);
    }
    if owners.is_empty() {
        view = view.card(Card::untitled().block(Block::Notice(Notice::new(
            Tone::Neutral,
            "You own nothing in the catalog",
            Some("Feedback reaches the owners of the cited entities and docs sites.".into()),
        ))));
    }
    Ok(view)
}

fn days_ago(at_ms: u64) -> String {
    let days = flows::now_ms().saturating_sub(at_ms) / 86_400_000;
    match days {
        0 => "today".into(),
        1 => "yesterday".into(),
        d => format!("{d} days ago"),
    }
}
