//! The operator's language model (plugin API 0.5, needs the `models`
//! capability): chat completions through the host, which holds the
//! provider's key, enforces the token budgets and the timeout, and logs
//! token counts, not contents. The plugin never sees the key or the
//! provider's address.
//!
//! A plugin should work without a model: [`configured`] says whether the
//! operator set one up, and every [`ModelError`] carries a sentence fit to
//! show the person next to an answer made without it.
//!
//! ```no_run
//! use callboard_sdk::models::{self, Message};
//!
//! if models::configured().is_some() {
//!     let answer = models::chat(
//!         &[Message::system("Answer from the sources only."), Message::user("Who owns billing?")],
//!         Some(400),
//!         None,
//!     )?;
//!     println!("{} ({} tokens)", answer.content, answer.completion_tokens);
//! }
//! # Ok::<(), models::ModelError>(())
//! ```

/// Why a chat was not answered. Each carries a sentence fit to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelError {
    /// The operator has not granted this plugin `models`.
    Denied,
    /// No provider is configured.
    NotConfigured,
    /// A token budget is spent (per question, or the plugin's per day).
    BudgetExhausted(String),
    /// The provider did not answer in time.
    Timeout(String),
    /// The provider refused, failed or could not be reached.
    Unavailable(String),
    /// The request is malformed or over a bound.
    Invalid(String),
}

impl std::fmt::Display for ModelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Denied => f.write_str("language models are not granted to this plugin"),
            Self::NotConfigured => f.write_str("no language model is configured"),
            Self::BudgetExhausted(why)
            | Self::Timeout(why)
            | Self::Unavailable(why)
            | Self::Invalid(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for ModelError {}

impl From<ModelError> for crate::Error {
    fn from(e: ModelError) -> Self {
        let status = match e {
            ModelError::BudgetExhausted(_) => 429,
            ModelError::Timeout(_) => 504,
            ModelError::Unavailable(_) | ModelError::NotConfigured => 503,
            ModelError::Invalid(_) => 400,
            ModelError::Denied => 500,
        };
        Self::new(status, e.to_string())
    }
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Instructions.
    System,
    /// The person.
    User,
    /// The model, earlier in the conversation.
    Assistant,
}

/// One message of a chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// What it says.
    pub content: String,
}

impl Message {
    /// Instructions.
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: Role::System,
            content: content.into(),
        }
    }

    /// The person's words.
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
        }
    }

    /// An earlier answer.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// What the operator configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// The model's name.
    pub model: String,
    /// Tokens one call (prompts and answers together) may spend.
    pub max_tokens_per_call: u32,
}

/// The model's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Its text.
    pub content: String,
    /// `stop`, or `length` when cut at the token limit.
    pub finish_reason: String,
    /// Tokens of the prompt, as the provider counted them.
    pub prompt_tokens: u32,
    /// Tokens of the answer.
    pub completion_tokens: u32,
    /// The model that answered.
    pub model: String,
}

#[cfg(not(feature = "api-0-4"))]
mod imp {
    use super::{Answer, Info, Message, ModelError, Role};
    use crate::bindings::callboard::plugin::models as wit;

    impl From<wit::Error> for ModelError {
        fn from(e: wit::Error) -> Self {
            match e {
                wit::Error::Denied => Self::Denied,
                wit::Error::NotConfigured => Self::NotConfigured,
                wit::Error::BudgetExhausted(why) => Self::BudgetExhausted(why),
                wit::Error::Timeout(why) => Self::Timeout(why),
                wit::Error::Unavailable(why) => Self::Unavailable(why),
                wit::Error::Invalid(why) => Self::Invalid(why),
            }
        }
    }

    pub fn configured() -> Option<Info> {
        wit::configured().map(|i| Info {
            model: i.model,
            max_tokens_per_call: i.max_tokens_per_call,
        })
    }

    pub fn chat(
        messages: &[Message],
        max_tokens: Option<u32>,
        temperature: Option<f32>,
    ) -> Result<Answer, ModelError> {
        let request = wit::ChatRequest {
            messages: messages
                .iter()
                .map(|m| wit::Message {
                    role: match m.role {
                        Role::System => wit::Role::System,
                        Role::User => wit::Role::User,
                        Role::Assistant => wit::Role::Assistant,
                    },
                    content: m.content.clone(),
                })
                .collect(),
            max_tokens,
            temperature,
        };
        let a = wit::chat(&request)?;
        Ok(Answer {
            content: a.content,
            finish_reason: a.finish_reason,
            prompt_tokens: a.usage.prompt_tokens,
            completion_tokens: a.usage.completion_tokens,
            model: a.model,
        })
    }
}

/// Built against API 0.4 (the SDK's `api-0-4` feature, for tests of that
/// version): there is no `models` interface, so no model is configured.
#[cfg(feature = "api-0-4")]
mod imp {
    use super::{Answer, Info, Message, ModelError};

    pub fn configured() -> Option<Info> {
        None
    }

    pub fn chat(_: &[Message], _: Option<u32>, _: Option<f32>) -> Result<Answer, ModelError> {
        Err(ModelError::NotConfigured)
    }
}

/// The configured model, or none (no provider, or `models` not granted):
/// answer without one.
pub fn configured() -> Option<Info> {
    imp::configured()
}

/// Asks the model `messages` (oldest first; at most 64, 256 KiB of text in
/// all), with at most `max_tokens` in the answer (the host lowers it to
/// what the call's budget leaves) and `temperature` (0 to 2).
pub fn chat(
    messages: &[Message],
    max_tokens: Option<u32>,
    temperature: Option<f32>,
) -> Result<Answer, ModelError> {
    imp::chat(messages, max_tokens, temperature)
}
