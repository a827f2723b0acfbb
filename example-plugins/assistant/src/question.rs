//! Reading a question: its words, the keywords retrieval searches for, what
//! kind of question it is (a catalog-graph question is answered from
//! relations, never from guessed text), and whether it leans on the
//! conversation ("who owns it?").

/// Longest question, in characters.
pub const MAX_QUESTION_CHARS: usize = 500;
/// Words of a question looked at for entity names.
const MAX_WORDS: usize = 24;
/// Keywords kept for search (the index takes at most 8 terms).
pub const MAX_KEYWORDS: usize = 8;
/// Shortest keyword searched for.
pub const MIN_KEYWORD_CHARS: usize = 3;

/// What a question asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Intent {
    /// "Who owns X?"
    Owner,
    /// "What depends on X?", "who uses X?"
    Dependents,
    /// "Which teams' services use X?"
    TeamsUsing,
    /// "What does X depend on?"
    Dependencies,
    /// "Which system is X part of?"
    System,
    /// "Which APIs does X provide?"
    Apis,
    /// Anything else: answered from passages.
    General,
}

/// A question, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// As asked, trimmed.
    pub text: String,
    /// Lower-case words (letters, digits, `-`, `_`, `.` inside a word).
    pub words: Vec<String>,
    /// The words worth searching for, most specific first, at most
    /// [`MAX_KEYWORDS`].
    pub keywords: Vec<String>,
    /// What it asks.
    pub intent: Intent,
    /// It names nothing itself and points back ("it", "its", "that one").
    pub refers_back: bool,
}

/// Words that carry no meaning for retrieval.
const STOPWORDS: &[&str] = &[
    "a", "about", "above", "after", "again", "all", "also", "am", "an", "and", "any", "are", "as",
    "at", "be", "been", "before", "being", "between", "both", "but", "by", "can", "could", "did",
    "do", "does", "doing", "done", "during", "each", "else", "ever", "every", "few", "for", "from",
    "get", "gets", "give", "go", "got", "had", "has", "have", "having", "he", "her", "here",
    "hers", "him", "his", "how", "i", "if", "in", "into", "is", "it", "its", "it's", "itself",
    "just", "know", "let", "like", "me", "might", "more", "most", "much", "must", "my", "need",
    "no", "nor", "not", "now", "of", "off", "on", "once", "one", "only", "or", "other", "our",
    "ours", "out", "over", "own", "please", "same", "shall", "she", "should", "so", "some", "such",
    "tell", "than", "that", "the", "their", "theirs", "them", "then", "there", "these", "they",
    "this", "those", "through", "to", "too", "under", "until", "up", "us", "use", "used", "very",
    "want", "was", "we", "were", "what", "what's", "when", "where", "which", "while", "who",
    "whom", "whose", "why", "will", "with", "would", "you", "your", "yours",
];

/// Words that point back to what the conversation was about.
const BACK_REFERENCES: &[&str] = &[
    "it", "its", "it's", "itself", "they", "them", "their", "this", "that", "those", "these", "he",
    "she", "his", "her",
];

/// Words of a graph question that are not the subject's name.
const GRAPH_WORDS: &[&str] = &[
    "owns",
    "own",
    "owned",
    "owner",
    "owners",
    "owning",
    "responsible",
    "maintains",
    "maintain",
    "maintainer",
    "maintainers",
    "team",
    "teams",
    "team's",
    "teams'",
    "depends",
    "depend",
    "dependent",
    "dependents",
    "dependency",
    "dependencies",
    "uses",
    "using",
    "calls",
    "call",
    "consume",
    "consumes",
    "consumers",
    "need",
    "needs",
    "system",
    "part",
    "belong",
    "belongs",
    "apis",
    "api",
    "provide",
    "provides",
    "expose",
    "exposes",
    "services",
    "service",
    "components",
    "component",
    "break",
    "breaks",
    "affected",
    "rely",
    "relies",
];

impl Question {
    /// Reads `text` (callers bound its length first).
    pub fn read(text: &str) -> Self {
        let text = text.trim().to_owned();
        let words = words(&text);
        let intent = intent(&words);
        let refers_back = words.iter().any(|w| BACK_REFERENCES.contains(&w.as_str()));
        let graph = intent != Intent::General;
        let mut keywords: Vec<String> = Vec::new();
        for w in &words {
            let w = w.trim_end_matches("'s").trim_end_matches('\'');
            if STOPWORDS.contains(&w) || graph && GRAPH_WORDS.contains(&w) {
                continue;
            }
            // The index matches the parts of `service-kit-go` as words; a
            // part of one or two letters ("go") matches a large share of
            // any catalog and makes every query holding it slow, while
            // the other parts still find the name.
            for part in w.split(['-', '_', '.']) {
                if part.chars().count() >= MIN_KEYWORD_CHARS
                    && !STOPWORDS.contains(&part)
                    && !keywords.iter().any(|k| k == part)
                {
                    keywords.push(part.to_owned());
                }
            }
        }
        keywords.truncate(MAX_KEYWORDS);
        Self {
            text,
            words,
            keywords,
            intent,
            refers_back,
        }
    }

    /// Candidate entity names the question spells: runs of 1-4 of its
    /// words joined by `-` (`payment gateway` → `payment-gateway`), longest
    /// first, without stopwords at either end.
    pub fn name_candidates(&self) -> Vec<String> {
        let words: Vec<&str> = self
            .words
            .iter()
            .map(|w| w.trim_end_matches("'s").trim_end_matches('\''))
            .collect();
        let mut out: Vec<String> = Vec::new();
        for n in (1..=4).rev() {
            for run in words.windows(n) {
                let (first, last) = (run[0], run[n - 1]);
                if STOPWORDS.contains(&first)
                    || STOPWORDS.contains(&last)
                    || n == 1 && GRAPH_WORDS.contains(&first)
                {
                    continue;
                }
                let name = run.join("-");
                if name.len() >= 2 && !out.contains(&name) {
                    out.push(name);
                }
            }
        }
        out
    }
}

fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut flush = |current: &mut String| {
        let w = current.trim_matches(|c: char| matches!(c, '-' | '_' | '.' | '\''));
        if !w.is_empty() && out.len() < MAX_WORDS {
            out.push(w.to_lowercase());
        }
        current.clear();
    };
    for c in text.chars() {
        if c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '\'') {
            current.push(c);
        } else {
            flush(&mut current);
        }
    }
    flush(&mut current);
    out
}

fn has(words: &[String], w: &str) -> bool {
    words.iter().any(|x| x == w)
}

fn has_any(words: &[String], ws: &[&str]) -> bool {
    ws.iter().any(|w| has(words, w))
}

/// The phrase `a b` appears in order, adjacent.
fn phrase(words: &[String], a: &str, b: &str) -> bool {
    words.windows(2).any(|p| p[0] == a && p[1] == b)
}

/// Words a follow-up may start with before its question word.
const LEADS: &[&str] = &[
    "and", "so", "then", "also", "ok", "okay", "but", "now", "plus",
];

fn intent(words: &[String]) -> Intent {
    let first = words
        .iter()
        .map(String::as_str)
        .find(|w| !LEADS.contains(w))
        .unwrap_or("");
    let asks = matches!(first, "what" | "which" | "who" | "whom" | "list" | "show");
    let using = has_any(
        words,
        &[
            "use", "uses", "using", "depend", "depends", "call", "calls", "consume", "consumes",
            "rely", "relies", "need", "needs", "break", "affected",
        ],
    );
    if has_any(words, &["team", "teams", "team's", "teams'"])
        && using
        && !has_any(words, &["own", "owns"])
    {
        return Intent::TeamsUsing;
    }
    if has_any(
        words,
        &[
            "owns",
            "owner",
            "owners",
            "owned",
            "maintains",
            "maintainer",
            "maintainers",
            "responsible",
        ],
    ) {
        return Intent::Owner;
    }
    // "what does X depend on", "X's dependencies", "what does X use".
    if has_any(words, &["dependencies"])
        || has(words, "does") && using && !phrase(words, "depends", "on")
    {
        return Intent::Dependencies;
    }
    if asks && (phrase(words, "depends", "on") || phrase(words, "depend", "on") || using)
        || has_any(words, &["dependents", "consumers"])
    {
        return Intent::Dependents;
    }
    if has(words, "system") && (has(words, "part") || has_any(words, &["belong", "belongs", "in"]))
    {
        return Intent::System;
    }
    if has_any(words, &["apis", "api"])
        && has_any(words, &["provide", "provides", "expose", "exposes"])
    {
        return Intent::Apis;
    }
    Intent::General
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_graph_questions() {
        let cases = [
            ("Who owns the payment gateway?", Intent::Owner),
            ("who is responsible for ledger-service", Intent::Owner),
            ("What depends on the ledger service?", Intent::Dependents),
            ("Which services use the ledger API?", Intent::Dependents),
            (
                "Which teams' services use the ledger API?",
                Intent::TeamsUsing,
            ),
            ("What does payment-gateway depend on?", Intent::Dependencies),
            ("Which system is fraud-screen part of?", Intent::System),
            ("What APIs does the payment gateway provide?", Intent::Apis),
            ("How do I roll back a bad deploy?", Intent::General),
            ("And what depends on it?", Intent::Dependents),
        ];
        for (text, expected) in cases {
            assert_eq!(Question::read(text).intent, expected, "{text}");
        }
    }

    #[test]
    fn keywords_drop_stopwords_and_graph_words() {
        let q = Question::read("Who owns the Payment Gateway?");
        assert_eq!(q.keywords, ["payment", "gateway"]);
        let q = Question::read("How do I rotate the acquirer API key?");
        assert_eq!(q.keywords, ["rotate", "acquirer", "api", "key"]);
        let kit = Question::read("Where does service-kit-go read its settings from?");
        assert_eq!(kit.keywords, ["service", "kit", "read", "settings"]);
        assert!(kit.name_candidates().contains(&"service-kit-go".to_owned()));
        assert!(!q.refers_back);
        assert!(Question::read("and who owns it?").refers_back);
    }

    #[test]
    fn names_are_runs_of_words() {
        let q = Question::read("Who owns the payment gateway?");
        let names = q.name_candidates();
        assert!(names.contains(&"payment-gateway".to_owned()));
        assert!(
            names
                .iter()
                .all(|n| !n.starts_with("who") && !n.ends_with("the"))
        );
        assert!(!names.contains(&"owns".to_owned()));
        let q = Question::read("what depends on ledger-service");
        assert!(q.name_candidates().contains(&"ledger-service".to_owned()));
    }

    #[test]
    fn bounds_what_it_reads() {
        let long = "word ".repeat(1000);
        let q = Question::read(&long);
        assert!(q.words.len() <= MAX_WORDS);
        assert!(q.keywords.len() <= MAX_KEYWORDS);
    }
}
