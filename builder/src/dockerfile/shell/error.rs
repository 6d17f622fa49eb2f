//! Errors of word expansion.
//!
//! Deep in the lexer a failure is a [`Fault`] (what went wrong); the public
//! entry points attach the word being expanded and return a [`ShellError`],
//! so every message names the text the user has to fix.

use super::pattern::PatternError;

/// Why a Dockerfile word could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShellError {
    /// A `${` with no matching `}`.
    #[error("missing '}}' in {word:?}")]
    MissingBrace {
        /// The word being expanded.
        word: String,
    },
    /// A `${VAR/pattern` without the `/` that ends the pattern.
    #[error("missing '/' after the pattern of ${{VAR/pattern/replacement}} in {word:?}")]
    MissingSlash {
        /// The word being expanded.
        word: String,
    },
    /// `${}`, `${{…}`, `${:…}`: no variable name after `${`.
    #[error("bad substitution in {word:?}: expected a variable name after '${{'")]
    BadSubstitution {
        /// The word being expanded.
        word: String,
    },
    /// A quote that is never closed.
    #[error("missing closing {} in {word:?}", quote_name(*.quote))]
    UnterminatedQuote {
        /// The opening quote character (`'` or `"`).
        quote: char,
        /// The word being expanded.
        word: String,
    },
    /// A `${VAR…}` form BuildKit does not support, such as `${VAR=x}` or `${VAR:#x}`.
    #[error("unsupported modifier ({modifier}) in substitution in {word:?}")]
    UnsupportedModifier {
        /// The modifier as written, e.g. `=` or `:=`.
        modifier: String,
        /// The word being expanded.
        word: String,
    },
    /// `${VAR?msg}` or `${VAR:?msg}` with `VAR` unset.
    #[error("{name}: {message} (in {word:?})")]
    Unset {
        /// The variable name.
        name: String,
        /// The user's message, or "is not allowed to be unset".
        message: String,
        /// The word being expanded.
        word: String,
    },
    /// `${VAR:?msg}` with `VAR` set to the empty string.
    #[error("{name}: {message} (in {word:?})")]
    Empty {
        /// The variable name.
        name: String,
        /// The user's message, or "is not allowed to be empty".
        message: String,
        /// The word being expanded.
        word: String,
    },
    /// A `#`, `%` or `/` pattern that cannot be used (a bad `\` escape).
    #[error("invalid pattern ({pattern}) in substitution in {word:?}: {reason}")]
    InvalidPattern {
        /// The pattern after expansion.
        pattern: String,
        /// What is wrong with it.
        reason: PatternError,
        /// The word being expanded.
        word: String,
    },
    /// Substitutions nested so deeply that expanding them could exhaust the stack.
    #[error("substitutions nested deeper than {limit} levels in {word:?}")]
    TooDeep {
        /// The nesting limit.
        limit: usize,
        /// The word being expanded.
        word: String,
    },
}

fn quote_name(quote: char) -> &'static str {
    if quote == '\'' {
        "single-quote"
    } else {
        "double-quote"
    }
}

/// A failure inside the lexer, before the word is known to the error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fault {
    MissingBrace,
    MissingSlash,
    BadSubstitution,
    UnterminatedQuote(char),
    /// Reaching the end of input while looking for a stop character; the
    /// caller turns it into [`Fault::MissingBrace`] or [`Fault::MissingSlash`].
    UnexpectedEnd,
    UnsupportedModifier(String),
    Unset {
        name: String,
        message: String,
    },
    Empty {
        name: String,
        message: String,
    },
    InvalidPattern {
        pattern: String,
        reason: PatternError,
    },
    TooDeep(usize),
}

impl Fault {
    pub(crate) fn into_error(self, word: &str) -> ShellError {
        let word = word.to_owned();
        match self {
            // `UnexpectedEnd` only escapes to the top for a `${` left open.
            Fault::MissingBrace | Fault::UnexpectedEnd => ShellError::MissingBrace { word },
            Fault::MissingSlash => ShellError::MissingSlash { word },
            Fault::BadSubstitution => ShellError::BadSubstitution { word },
            Fault::UnterminatedQuote(quote) => ShellError::UnterminatedQuote { quote, word },
            Fault::UnsupportedModifier(modifier) => {
                ShellError::UnsupportedModifier { modifier, word }
            }
            Fault::Unset { name, message } => ShellError::Unset {
                name,
                message,
                word,
            },
            Fault::Empty { name, message } => ShellError::Empty {
                name,
                message,
                word,
            },
            Fault::InvalidPattern { pattern, reason } => ShellError::InvalidPattern {
                pattern,
                reason,
                word,
            },
            Fault::TooDeep(limit) => ShellError::TooDeep { limit, word },
        }
    }
}
