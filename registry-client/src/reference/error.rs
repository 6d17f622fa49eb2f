//! Why a string is not an image reference. Every message is one line that
//! names the input, says what is wrong and, where one fix is obvious, how
//! to fix it.

use std::fmt;

/// A reference that could not be parsed, or a tag that could not be set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The input was the empty string.
    #[error(
        "invalid reference format \"\": the reference is empty; name an image, e.g. alpine:3.20"
    )]
    Empty,

    /// 64 lowercase hex digits: Docker refuses them as a name because they
    /// read as an image ID.
    #[error(
        "invalid reference format {}: cannot specify 64-byte hexadecimal strings, which look like an image ID; to pin an image by content write NAME@sha256:<hex>",
        Shown(.input)
    )]
    ImageId { input: String },

    /// The repository part has uppercase letters.
    #[error(
        "invalid reference format {}: repository name must be lowercase{}",
        Shown(.input),
        DidYouMean(.suggestion.as_deref())
    )]
    Uppercase {
        input: String,
        /// The input with its repository lowercased, when that parses.
        suggestion: Option<String>,
    },

    /// The part before the first `/` was taken as a registry host, and is not
    /// a valid one.
    #[error(
        "invalid reference format {}: registry {} is not a valid host: {reason}",
        Shown(.input),
        Shown(.registry)
    )]
    Registry {
        input: String,
        registry: String,
        reason: String,
    },

    /// The repository path breaks the grammar.
    #[error("invalid reference format {}: {reason}", Shown(.input))]
    Repository { input: String, reason: String },

    /// A `:` with nothing after it.
    #[error(
        "invalid reference format {}: tag is empty; remove the \":\" or write a tag after it",
        Shown(.input)
    )]
    EmptyTag { input: String },

    /// The tag of a parsed reference breaks the grammar.
    #[error(
        "invalid reference format {}: invalid tag {}: {reason}",
        Shown(.input),
        Shown(.tag)
    )]
    Tag {
        input: String,
        tag: String,
        reason: String,
    },

    /// The digest after `@` breaks the grammar or its algorithm's length.
    #[error(
        "invalid reference format {}: invalid digest {}: {reason}",
        Shown(.input),
        Shown(.digest)
    )]
    Digest {
        input: String,
        digest: String,
        reason: String,
    },

    /// The repository path, once normalised (with `library/` where Docker
    /// adds it), is longer than [`super::MAX_REPOSITORY_LEN`].
    #[error(
        "invalid reference format {}: repository name is longer than {} characters ({length})",
        Shown(.input),
        super::MAX_REPOSITORY_LEN
    )]
    TooLong { input: String, length: usize },

    /// A tag given on its own (to [`super::Reference::with_tag`]) is not valid.
    #[error("invalid tag {}: {reason}", Shown(.tag))]
    InvalidTag { tag: String, reason: String },
}

/// Inputs longer than this many characters are cut short in messages, so
/// that an error stays one readable line.
const SHOWN_MAX: usize = 100;
/// How many characters of a cut input are kept.
const SHOWN_HEAD: usize = 48;

/// A user's string, quoted with control characters escaped, and cut short
/// (with its full length given) when it is very long.
struct Shown<'a>(&'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.chars().count();
        if count <= SHOWN_MAX {
            write!(f, "{:?}", self.0)
        } else {
            let mut head: String = self.0.chars().take(SHOWN_HEAD).collect();
            head.push('…');
            write!(f, "{head:?} ({count} characters)")
        }
    }
}

struct DidYouMean<'a>(Option<&'a str>);

impl fmt::Display for DidYouMean<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(s) => write!(f, " (did you mean {}?)", Shown(s)),
            None => Ok(()),
        }
    }
}
