//! Label and field selectors, parsed as `k8s.io/apimachinery` parses them
//! (`labels.Parse`, `fields.ParseSelector`), with the same error wording
//! where it matters, and bounded: a selector longer than
//! [`MAX_SELECTOR_LEN`] is refused before parsing. The parser is a loop over
//! tokens, never recursive, so nesting cannot exhaust the stack.

use std::collections::{BTreeMap, BTreeSet};

/// The longest selector accepted, in bytes.
pub const MAX_SELECTOR_LEN: usize = 4096;

/// A parsed label selector: requirements that must all hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
    values: BTreeSet<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Equals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Identifier(String),
    In,
    NotIn,
    /// `!`
    DoesNotExist,
    /// `=` or `==`
    Equals,
    NotEquals,
    GreaterThan,
    LessThan,
    OpenPar,
    ClosedPar,
    Comma,
    End,
}

impl Token {
    fn literal(&self) -> &str {
        match self {
            Token::Identifier(s) => s,
            Token::In => "in",
            Token::NotIn => "notin",
            Token::DoesNotExist => "!",
            Token::Equals => "=",
            Token::NotEquals => "!=",
            Token::GreaterThan => ">",
            Token::LessThan => "<",
            Token::OpenPar => "(",
            Token::ClosedPar => ")",
            Token::Comma => ",",
            Token::End => "",
        }
    }

    /// In a value position, the keywords are plain identifiers.
    fn as_value(&self) -> Token {
        match self {
            Token::In => Token::Identifier("in".into()),
            Token::NotIn => Token::Identifier("notin".into()),
            other => other.clone(),
        }
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

fn lex(input: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = input.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if matches!(c, ' ' | '\t' | '\r' | '\n') {
            chars.next();
        } else if is_special(c) {
            // Longest match among the operators, as the Go lexer does.
            let mut buffer = String::new();
            let mut best: Option<Token> = None;
            while let Some(&(_, c)) = chars.peek() {
                if !is_special(c) {
                    break;
                }
                buffer.push(c);
                let token = match buffer.as_str() {
                    "=" | "==" => Some(Token::Equals),
                    "!" => Some(Token::DoesNotExist),
                    "!=" => Some(Token::NotEquals),
                    "(" => Some(Token::OpenPar),
                    ")" => Some(Token::ClosedPar),
                    "," => Some(Token::Comma),
                    ">" => Some(Token::GreaterThan),
                    "<" => Some(Token::LessThan),
                    _ => None,
                };
                match token {
                    Some(t) => {
                        best = Some(t);
                        chars.next();
                    }
                    None if best.is_some() => break,
                    None => {
                        chars.next();
                    }
                }
            }
            match best {
                Some(t) => tokens.push(t),
                None => return Err(format!("error expected: keyword found '{buffer}'")),
            }
        } else {
            let mut end = start;
            while let Some(&(i, c)) = chars.peek() {
                if matches!(c, ' ' | '\t' | '\r' | '\n') || is_special(c) {
                    break;
                }
                end = i + c.len_utf8();
                chars.next();
            }
            let word = &input[start..end];
            tokens.push(match word {
                "in" => Token::In,
                "notin" => Token::NotIn,
                _ => Token::Identifier(word.to_owned()),
            });
        }
    }
    tokens.push(Token::End);
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.tokens[self.at.min(self.tokens.len() - 1)]
    }

    fn peek_value(&self) -> Token {
        self.peek().as_value()
    }

    fn next(&mut self) -> Token {
        let token = self.peek().clone();
        if self.at < self.tokens.len() - 1 {
            self.at += 1;
        }
        token
    }

    fn next_value(&mut self) -> Token {
        self.next().as_value()
    }
}

impl LabelSelector {
    /// Everything matches.
    pub fn everything() -> Self {
        Self::default()
    }

    /// Parses the `labelSelector` syntax: `a=b`, `a==b`, `a!=b`,
    /// `a in (x,y)`, `a notin (x)`, `a`, `!a`, `a>1`, `a<1`, joined by
    /// commas (AND). The message of an error is what the API server says.
    pub fn parse(input: &str) -> Result<Self, String> {
        if input.len() > MAX_SELECTOR_LEN {
            return Err(format!(
                "label selector is {} bytes long, longer than the {MAX_SELECTOR_LEN} accepted",
                input.len()
            ));
        }
        let tokens = lex(input).map_err(|e| format!("unable to parse requirement: {e}"))?;
        let mut parser = Parser { tokens, at: 0 };
        let mut requirements = Vec::new();
        loop {
            match parser.peek_value() {
                Token::Identifier(_) | Token::DoesNotExist => {
                    let requirement = parse_requirement(&mut parser)
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    requirements.push(requirement);
                    match parser.next_value() {
                        Token::End => break,
                        Token::Comma => match parser.peek_value() {
                            Token::Identifier(_) | Token::DoesNotExist => {}
                            other => {
                                return Err(format!(
                                    "found '{}', expected: identifier after ','",
                                    other.literal()
                                ));
                            }
                        },
                        other => {
                            return Err(format!(
                                "found '{}', expected: ',' or 'end of string'",
                                other.literal()
                            ));
                        }
                    }
                }
                Token::End => break,
                other => {
                    return Err(format!(
                        "found '{}', expected: !, identifier, or 'end of string'",
                        other.literal()
                    ));
                }
            }
        }
        Ok(Self { requirements })
    }

    /// Whether labels satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    pub fn is_everything(&self) -> bool {
        self.requirements.is_empty()
    }
}

fn parse_requirement(parser: &mut Parser) -> Result<Requirement, String> {
    // The key, and `!key` / bare `key`.
    let mut op = None;
    let mut token = parser.next_value();
    if token == Token::DoesNotExist {
        op = Some(Op::DoesNotExist);
        token = parser.next_value();
    }
    let Token::Identifier(key) = token else {
        return Err(format!("found '{}', expected: identifier", token.literal()));
    };
    validate_label_key(&key)?;
    // `!key` ends the requirement whatever follows (the caller then
    // expects a comma or the end); a bare `key` does before `,` or the end.
    if op.is_some() || matches!(parser.peek_value(), Token::End | Token::Comma) {
        return Ok(Requirement {
            key,
            op: op.unwrap_or(Op::Exists),
            values: BTreeSet::new(),
        });
    }
    let op = match parser.next() {
        Token::In => Op::In,
        Token::NotIn => Op::NotIn,
        Token::Equals => Op::Equals,
        Token::NotEquals => Op::NotEquals,
        Token::GreaterThan => Op::GreaterThan,
        Token::LessThan => Op::LessThan,
        other => {
            return Err(format!(
                "found '{}', expected: {}",
                other.literal(),
                "=, !=, ==, in, notin, gt, lt"
            ));
        }
    };
    let values = match op {
        Op::In | Op::NotIn => parse_set(parser)?,
        _ => parse_exact_value(parser)?,
    };
    match op {
        Op::In | Op::NotIn if values.is_empty() => {
            return Err("for 'in', 'notin' operators, values set can't be empty".into());
        }
        Op::GreaterThan | Op::LessThan => {
            let value = values.iter().next().map(String::as_str).unwrap_or("");
            if value.parse::<i64>().is_err() {
                return Err(format!(
                    "values[0][{key}]: Invalid value: \"{value}\": for 'Gt', 'Lt' operators, the value must be an integer"
                ));
            }
        }
        _ => {}
    }
    for value in &values {
        validate_label_value(&key, value)?;
    }
    Ok(Requirement { key, op, values })
}

fn parse_set(parser: &mut Parser) -> Result<BTreeSet<String>, String> {
    let open = parser.next_value();
    if open != Token::OpenPar {
        return Err(format!("found '{}' expected: '('", open.literal()));
    }
    let mut values = BTreeSet::new();
    match parser.peek_value() {
        Token::ClosedPar => {
            // `()`: one empty value, as the Go parser has it.
            parser.next();
            values.insert(String::new());
            return Ok(values);
        }
        Token::Identifier(_) | Token::Comma => {}
        other => {
            return Err(format!(
                "found '{}', expected: ',', ')' or identifier",
                other.literal()
            ));
        }
    }
    loop {
        match parser.next_value() {
            Token::Identifier(value) => {
                values.insert(value);
                match parser.peek_value() {
                    Token::Comma => {}
                    Token::ClosedPar => break,
                    other => {
                        return Err(format!("found '{}', expected: ',' or ')'", other.literal()));
                    }
                }
            }
            Token::Comma => {
                if values.is_empty() {
                    values.insert(String::new());
                }
                match parser.peek_value() {
                    Token::ClosedPar => {
                        values.insert(String::new());
                        break;
                    }
                    Token::Comma => {
                        parser.next();
                        values.insert(String::new());
                    }
                    _ => {}
                }
            }
            other => {
                return Err(format!(
                    "found '{}', expected: ',', or identifier",
                    other.literal()
                ));
            }
        }
    }
    let close = parser.next_value();
    if close != Token::ClosedPar {
        return Err(format!("found '{}', expected: ')'", close.literal()));
    }
    Ok(values)
}

fn parse_exact_value(parser: &mut Parser) -> Result<BTreeSet<String>, String> {
    let mut values = BTreeSet::new();
    match parser.peek_value() {
        Token::End | Token::Comma => {
            values.insert(String::new());
        }
        _ => match parser.next_value() {
            Token::Identifier(value) => {
                values.insert(value);
            }
            other => return Err(format!("found '{}', expected: identifier", other.literal())),
        },
    }
    Ok(values)
}

impl Requirement {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.op {
            Op::Equals | Op::In => value.is_some_and(|v| self.values.contains(v)),
            Op::NotEquals | Op::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Op::Exists => value.is_some(),
            Op::DoesNotExist => value.is_none(),
            Op::GreaterThan | Op::LessThan => {
                let Some(have) = value.and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                let Some(want) = self
                    .values
                    .iter()
                    .next()
                    .and_then(|v| v.parse::<i64>().ok())
                else {
                    return false;
                };
                if self.op == Op::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

/// `[prefix/]name`: the prefix a DNS subdomain, the name at most 63 of
/// `[A-Za-z0-9_.-]` with alphanumerics at both ends.
fn validate_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let invalid = |why: &str| Err(format!("key: Invalid value: \"{key}\": {why}"));
    if let Some(prefix) = prefix
        && !crate::objects::is_dns_subdomain(prefix)
    {
        return invalid(
            "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        );
    }
    if name.is_empty() {
        return invalid("name part must be non-empty");
    }
    if name.len() > 63 {
        return invalid("name part must be no more than 63 characters");
    }
    if !is_label_name(name) {
        return invalid(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        );
    }
    Ok(())
}

fn validate_label_value(key: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    if value.len() > 63 || !is_label_name(value) {
        return Err(format!(
            "values[0][{key}]: Invalid value: \"{value}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        ));
    }
    Ok(())
}

fn is_label_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A parsed field selector: `field=value`, `field==value`, `field!=value`
/// terms joined by commas, with `\,` `\=` `\\` escapes in values.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldTerm {
    field: String,
    equal: bool,
    value: String,
}

impl FieldSelector {
    /// Parses the syntax only; which fields a resource supports is checked
    /// by [`check_fields`](Self::check_fields).
    pub fn parse(input: &str) -> Result<Self, String> {
        if input.len() > MAX_SELECTOR_LEN {
            return Err(format!(
                "field selector is {} bytes long, longer than the {MAX_SELECTOR_LEN} accepted",
                input.len()
            ));
        }
        let mut terms = Vec::new();
        if input.is_empty() {
            return Ok(Self { terms });
        }
        for part in split_unescaped(input, ',') {
            let Some((field, equal, raw)) = split_term(part) else {
                return Err(format!(
                    "invalid selector: '{input}'; can't understand '{part}'"
                ));
            };
            let value = unescape(raw)?;
            terms.push(FieldTerm {
                field: field.to_owned(),
                equal,
                value,
            });
        }
        Ok(Self { terms })
    }

    /// The first field not in `supported`, as the API server reports it.
    pub fn check_fields(&self, supported: &[&str]) -> Result<(), String> {
        match self
            .terms
            .iter()
            .find(|t| !supported.contains(&t.field.as_str()))
        {
            Some(term) => Err(format!("field label not supported: {}", term.field)),
            None => Ok(()),
        }
    }

    /// Whether the object's fields (looked up by `field`) satisfy every term.
    pub fn matches(&self, field: impl Fn(&str) -> String) -> bool {
        self.terms
            .iter()
            .all(|t| (field(&t.field) == t.value) == t.equal)
    }
}

fn split_unescaped(input: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in input.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == separator {
            parts.push(&input[start..i]);
            start = i + 1;
        }
    }
    parts.push(&input[start..]);
    parts
}

/// `field!=value`, `field==value` or `field=value`, whichever operator
/// comes first (an escaped `=` or `!` in the value is not an operator).
fn split_term(term: &str) -> Option<(&str, bool, &str)> {
    let mut escaped = false;
    for (i, c) in term.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
            continue;
        }
        let rest = &term[i..];
        if let Some(value) = rest.strip_prefix("!=") {
            return Some((&term[..i], false, value));
        }
        if let Some(value) = rest.strip_prefix("==") {
            return Some((&term[..i], true, value));
        }
        if let Some(value) = rest.strip_prefix('=') {
            return Some((&term[..i], true, value));
        }
    }
    None
}

fn unescape(value: &str) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(e @ ('\\' | ',' | '=')) => out.push(e),
                Some(e) => {
                    return Err(format!(
                        "invalid field selector: invalid escape sequence: \\{e}"
                    ));
                }
                None => return Err("invalid field selector: unterminated escape sequence".into()),
            }
        } else if c == ',' || c == '=' {
            return Err(format!(
                "invalid field selector: unescaped '{c}' in value {value:?}"
            ));
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn matches(selector: &str, pairs: &[(&str, &str)]) -> bool {
        LabelSelector::parse(selector)
            .unwrap_or_else(|e| panic!("{selector:?}: {e}"))
            .matches(&labels(pairs))
    }

    #[test]
    fn equality_and_inequality() {
        let app = [("app", "web"), ("tier", "1")];
        assert!(matches("app=web", &app));
        assert!(matches("app==web", &app));
        assert!(matches(" app = web ", &app));
        assert!(!matches("app=api", &app));
        assert!(matches("app!=api", &app));
        assert!(!matches("app!=web", &app));
        // `!=` also matches objects without the label.
        assert!(matches("team!=payments", &app));
        assert!(matches("app=web,tier=1", &app));
        assert!(!matches("app=web,tier=2", &app));
        // An empty value matches an empty label only.
        assert!(!matches("app=", &app));
        assert!(matches("app=", &[("app", "")]));
    }

    #[test]
    fn sets_and_existence() {
        let app = [("app.kubernetes.io/name", "payment-gateway")];
        assert!(matches(
            "app.kubernetes.io/name in (payment-gateway,ledger-service)",
            &app
        ));
        assert!(matches("app.kubernetes.io/name in(payment-gateway)", &app));
        assert!(!matches("app.kubernetes.io/name in (ledger-service)", &app));
        assert!(matches(
            "app.kubernetes.io/name notin (ledger-service)",
            &app
        ));
        assert!(!matches(
            "app.kubernetes.io/name notin (payment-gateway)",
            &app
        ));
        assert!(matches("team notin (x)", &app));
        assert!(matches("app.kubernetes.io/name", &app));
        assert!(!matches("!app.kubernetes.io/name", &app));
        assert!(matches("!team", &app));
        assert!(!matches("team", &app));
        // Keywords are ordinary words as keys and values.
        assert!(matches("in in (notin)", &[("in", "notin")]));
        // The Go parser's quirks: `()` and `(a,)` hold an empty value.
        assert!(matches("app in ()", &[("app", "")]));
        assert!(matches("app in (a,)", &[("app", "")]));
        assert!(matches("app in (,a)", &[("app", "a")]));
    }

    #[test]
    fn numeric_comparisons() {
        assert!(matches("replicas>2", &[("replicas", "3")]));
        assert!(!matches("replicas>2", &[("replicas", "2")]));
        assert!(matches("replicas<2", &[("replicas", "1")]));
        assert!(!matches("replicas<2", &[("replicas", "x")]));
        assert!(!matches("replicas<2", &[]));
        assert!(LabelSelector::parse("replicas>two").is_err());
    }

    #[test]
    fn empty_selects_everything() {
        assert!(matches("", &[]));
        assert!(matches("   ", &[("a", "b")]));
        assert!(LabelSelector::parse("").unwrap().is_everything());
    }

    #[test]
    fn syntax_errors_read_like_the_api_server() {
        let err = |s: &str| LabelSelector::parse(s).unwrap_err();
        assert_eq!(
            err("app in"),
            "unable to parse requirement: found '' expected: '('"
        );
        assert_eq!(
            err("app in (a"),
            "unable to parse requirement: found '', expected: ',' or ')'"
        );
        assert_eq!(err("app=web,"), "found '', expected: identifier after ','");
        assert_eq!(
            err(",app"),
            "found ',', expected: !, identifier, or 'end of string'"
        );
        assert_eq!(
            err("app=web app=api"),
            "found 'app', expected: ',' or 'end of string'"
        );
        assert!(err("app=(x)").starts_with("unable to parse requirement: found '('"));
        assert_eq!(
            err("!app=web"),
            "found '=', expected: ',' or 'end of string'"
        );
        assert!(err("app===web").starts_with("unable to parse requirement"));
        assert!(err("app=<").starts_with("unable to parse requirement"));
        assert!(err("-app=web").contains("key: Invalid value: \"-app\""));
        assert!(err("Bad_Prefix/app=web").contains("prefix part"));
        assert!(err("app=-web").contains("a valid label must be"));
        assert!(err(&format!("app={}", "v".repeat(64))).contains("a valid label must be"));
        assert!(err(&format!("{}=v", "k".repeat(64))).contains("no more than 63"));
        assert!(err("app=wéb").contains("a valid label must be"));
    }

    #[test]
    fn hostile_input_is_refused_cheaply() {
        let long = format!("a in ({})", vec!["x"; 3000].join(","));
        assert!(long.len() > MAX_SELECTOR_LEN);
        assert!(
            LabelSelector::parse(&long)
                .unwrap_err()
                .contains("longer than")
        );
        let deep = format!("a in {}x{}", "(".repeat(2000), ")".repeat(2000));
        assert!(LabelSelector::parse(&deep).is_err());
        let deep = "(".repeat(MAX_SELECTOR_LEN);
        assert!(LabelSelector::parse(&deep).is_err());
        let bangs = "!".repeat(MAX_SELECTOR_LEN);
        assert!(LabelSelector::parse(&bangs).is_err());
        let commas = ",".repeat(MAX_SELECTOR_LEN);
        assert!(LabelSelector::parse(&commas).is_err());
        // At the cap, many requirements still parse.
        let many: Vec<String> = (0..400).map(|i| format!("k{i}")).collect();
        let many = many.join(",");
        assert!(many.len() <= MAX_SELECTOR_LEN);
        assert!(LabelSelector::parse(&many).is_ok());
        assert!(LabelSelector::parse("a\0=b").is_err());
    }

    #[test]
    fn field_selectors() {
        let fields = |name: &str| match name {
            "metadata.name" => "web-1".to_owned(),
            "metadata.namespace" => "pay,ments".to_owned(),
            _ => String::new(),
        };
        let parse = |s: &str| FieldSelector::parse(s).unwrap();
        assert!(parse("").matches(fields));
        assert!(parse("metadata.name=web-1").matches(fields));
        assert!(parse("metadata.name==web-1").matches(fields));
        assert!(!parse("metadata.name!=web-1").matches(fields));
        assert!(parse(r"metadata.namespace=pay\,ments,metadata.name=web-1").matches(fields));
        assert!(!parse("metadata.name=web-2").matches(fields));
        assert_eq!(
            parse("spec.foo=x").check_fields(&["metadata.name"]),
            Err("field label not supported: spec.foo".to_owned())
        );
        assert!(FieldSelector::parse("metadata.name").is_err());
        assert!(FieldSelector::parse(r"metadata.name=a\qb").is_err());
        assert!(FieldSelector::parse(&"a=b,".repeat(2000)).is_err());
    }
}
