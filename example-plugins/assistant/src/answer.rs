//! Composing an answer from evidence, with numbered citations.
//!
//! - *Extractive* (no language model, or the model failed): catalog facts
//!   as sentences, then the best passages quoted, each marked `[n]` with
//!   its source listed under the answer.
//! - *Generative* (the operator configured a model): the same numbered
//!   sources and facts, the conversation's last turns and the question go
//!   to the model, told to answer from the sources only and cite them as
//!   `[n]`. When it cannot (budget, timeout, provider down), the extractive
//!   answer is given with a notice that says why.

use serde::{Deserialize, Serialize};

use crate::{
    question::{Intent, Question},
    retrieve::{self, Source, Sources},
};

/// Passages a general question shows.
const GENERAL_PASSAGES: usize = 5;
/// Passages added under a graph question's facts.
const GRAPH_PASSAGES: usize = 2;
/// Longest passage kept with a citation, in bytes.
pub const MAX_PASSAGE_BYTES: usize = 480;

/// One numbered source of an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Citation {
    pub n: u32,
    #[serde(flatten)]
    pub source: Source,
    /// The text the answer rests on.
    pub passage: String,
}

/// An answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// The answer, with `[n]` markers.
    pub text: String,
    pub citations: Vec<Citation>,
    /// Whether anything answered it (questions that found nothing are
    /// knowledge gaps).
    pub found: bool,
    /// `extractive` or `generative`.
    pub mode: String,
    /// Why the model did not answer, when one is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
    /// The model that answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The entity the question was about, kept for follow-ups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The keywords searched, kept for follow-ups.
    #[serde(default)]
    pub keywords: Vec<String>,
}

/// What the conversation carries into a follow-up.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    pub subject: Option<String>,
    pub keywords: Vec<String>,
    /// The conversation's last turns: (question, answer), oldest first.
    pub history: Vec<(String, String)>,
}

/// Turns of history a model is given.
const HISTORY_TURNS: usize = 3;

struct Citations(Vec<Citation>);

impl Citations {
    fn add(&mut self, source: Source, passage: &str) -> u32 {
        if let Some(c) = self.0.iter().find(|c| c.source.href == source.href) {
            return c.n;
        }
        let n = self.0.len() as u32 + 1;
        self.0.push(Citation {
            n,
            source,
            passage: cut(passage, MAX_PASSAGE_BYTES).to_owned(),
        });
        n
    }
}

/// `text` cut to at most `max` bytes at a character boundary.
pub fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Answers `question` as the person `sources` reads for.
pub fn answer(
    sources: &dyn Sources,
    question: &Question,
    context: &Context,
) -> Result<Answer, String> {
    let t0 = std::time::Instant::now();
    let subject = retrieve::subject(sources, question, context.subject.as_deref())?;
    let t_subject = t0.elapsed();
    let subject_ref = subject.as_ref().map(callboard_sdk::catalog::entity_ref);
    let mut citations = Citations(Vec::new());
    let mut sentences: Vec<String> = Vec::new();
    let graph = question.intent != Intent::General;
    if graph {
        match &subject {
            Some(entity) => {
                for fact in retrieve::facts(sources, question.intent, entity)? {
                    let mut sentence = fact.sentence;
                    for (i, named) in fact.entities.iter().enumerate() {
                        let n = citations.add(named.source(), &named.passage());
                        sentence = sentence.replace(&format!("{{{i}}}"), &format!("[{n}]"));
                    }
                    sentences.push(sentence);
                }
            }
            None => sentences.push(
                "I could not tell which entity this is about from the catalog you can see; \
                 name it as the catalog does, by its name or title."
                    .into(),
            ),
        }
    }
    // What to search: the question's own words; a follow-up that points
    // back adds the subject's name, one with no words of its own reuses
    // the previous question's.
    let mut keywords = question.keywords.clone();
    if let Some(r) = &subject_ref
        && (question.refers_back || keywords.is_empty())
    {
        let name = r.rsplit('/').next().unwrap_or(r);
        for part in name.split('-').rev() {
            if part.chars().count() >= crate::question::MIN_KEYWORD_CHARS
                && !keywords.iter().any(|k| k == part)
            {
                keywords.insert(0, part.to_owned());
            }
        }
    }
    if keywords.is_empty() {
        keywords = context.keywords.clone();
    }
    keywords.truncate(crate::question::MAX_KEYWORDS);
    let limit = if graph {
        GRAPH_PASSAGES
    } else {
        GENERAL_PASSAGES
    };
    let t_facts = t0.elapsed();
    let passages = if keywords.is_empty() {
        Vec::new()
    } else {
        retrieve::passages(sources, &keywords, subject_ref.as_deref(), limit)?
    };
    let t_passages = t0.elapsed();
    callboard_sdk::log::debug(&format!(
        "answered in {t_passages:?}: subject {t_subject:?}, facts {:?}, passages {:?}",
        t_facts - t_subject,
        t_passages - t_facts
    ));
    let facts_found = graph && subject.is_some();
    let mut first = true;
    let mut also = Vec::new();
    for p in passages {
        let known = citations.0.len();
        let n = citations.add(p.source.clone(), &p.text);
        if n as usize <= known {
            // Already cited by a fact.
            continue;
        }
        if !graph && first {
            sentences.push(format!(
                "{} says: “{}” [{n}]",
                p.source.title,
                cut(&p.text, MAX_PASSAGE_BYTES).trim()
            ));
            first = false;
        } else {
            also.push(format!("{} [{n}]", p.source.title));
        }
    }
    if !also.is_empty() {
        sentences.push(format!(
            "{}: {}.",
            if graph { "More in" } else { "Also relevant" },
            also.join(", ")
        ));
    }
    let found = facts_found || !citations.0.is_empty();
    if !found {
        sentences.push(
            "I found nothing you can read that answers this. Try other words; questions that \
             find nothing are listed for the portal's maintainers, so the missing page can be \
             written."
                .into(),
        );
    }
    let mut answer = Answer {
        text: sentences.join(" "),
        citations: citations.0,
        found,
        mode: "extractive".into(),
        notice: None,
        model: None,
        subject: subject_ref,
        keywords,
    };
    // Nothing found: nothing to ground a model's answer in.
    if found && let Some(model) = sources.model() {
        match sources.chat(&prompt(question, &answer, context)) {
            Ok(text) if !text.trim().is_empty() => {
                answer.text = text.trim().to_owned();
                answer.mode = "generative".into();
                answer.model = Some(model);
            }
            Ok(_) => answer.notice = Some("The language model gave an empty answer.".into()),
            Err(e) => answer.notice = Some(format!("The language model could not answer: {e}.")),
        }
    }
    Ok(answer)
}

/// The model's instructions.
const INSTRUCTIONS: &str = "You are the knowledge assistant of an internal developer portal. \
Answer the question using only the numbered sources and catalog facts given with it. Cite every \
statement with the numbers of its sources in square brackets, like [1] or [2][3]. If the sources \
do not answer the question, say so plainly and do not guess. Answer in a few sentences.";

/// The chat for a generative answer: instructions, the conversation's last
/// turns, then the sources and the question.
pub fn prompt(
    question: &Question,
    evidence: &Answer,
    context: &Context,
) -> Vec<callboard_sdk::models::Message> {
    use callboard_sdk::models::Message;
    let mut messages = vec![Message::system(INSTRUCTIONS)];
    let skip = context.history.len().saturating_sub(HISTORY_TURNS);
    for (q, a) in context.history.iter().skip(skip) {
        messages.push(Message::user(q.clone()));
        messages.push(Message::assistant(a.clone()));
    }
    let mut text = String::from("Sources:\n");
    for c in &evidence.citations {
        text.push_str(&format!(
            "[{}] {} ({})\n{}\n\n",
            c.n, c.source.title, c.source.href, c.passage
        ));
    }
    if question.intent != Intent::General {
        text.push_str(&format!("Catalog facts: {}\n\n", evidence.text));
    }
    text.push_str(&format!("Question: {}", question.text));
    messages.push(Message::user(text));
    messages
}
