//! The glob patterns of `${V#p}`, `${V%p}` and `${V/p/r}`, matched the way
//! BuildKit matches them.
//!
//! BuildKit turns a pattern into a Go regular expression and lets Go's
//! leftmost-first engine pick the match. The observable rules, which this
//! module reproduces without a regex engine:
//!
//! - `*` is any run of characters, `?` any one character; neither matches a
//!   newline (Go's `.` without the `s` flag).
//! - `\*`, `\?` and `\\` are the literal characters; `\}` and `\/` drop the
//!   backslash (it only kept the `${…}` reader from ending there); any other
//!   `\x`, and a trailing `\`, is an error.
//! - Everything else is literal, including `[`, `]` (no bracket
//!   expressions) and regex metacharacters.
//! - A leading U+FEFF is skipped: Go's text scanner drops a byte-order mark
//!   at the start of its input.
//! - `*` is greedy (longest) or lazy (shortest) for the whole pattern. Among
//!   several ways to match, the one a backtracking matcher tries first wins:
//!   earlier `*`s settle first.
//!
//! [`Pattern::to_regex`] writes the expression BuildKit would compile, which
//! lets the conformance test check this module against upstream's helper
//! vectors.

use std::fmt;

/// A problem with a pattern's escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternError {
    /// `\` followed by a character other than `*`, `?`, `\`, `}` or `/`.
    InvalidEscape(char),
    /// The pattern ends with a lone `\`.
    TrailingEscape,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatternError::InvalidEscape(c) => write!(
                f,
                "invalid escape '\\{c}' (only \\*, \\?, \\\\, \\}} and \\/ are allowed)"
            ),
            PatternError::TrailingEscape => f.write_str("the pattern ends with a lone '\\'"),
        }
    }
}

impl std::error::Error for PatternError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `?`
    AnyChar,
    /// `*`
    AnyRun,
}

/// A parsed pattern together with its `*` policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    tokens: Vec<Token>,
    greedy: bool,
}

/// Characters that are regex syntax and so are written escaped by [`Pattern::to_regex`].
const REGEX_META: &str = "[]{}.+()|^$*?\\";

impl Pattern {
    /// Parses `pattern`; `greedy` makes every `*` prefer the longest run.
    pub fn parse(pattern: &str, greedy: bool) -> Result<Self, PatternError> {
        let mut chars = pattern.strip_prefix('\u{FEFF}').unwrap_or(pattern).chars();
        let mut tokens = Vec::new();
        while let Some(c) = chars.next() {
            let token = match c {
                '*' => Token::AnyRun,
                '?' => Token::AnyChar,
                '\\' => {
                    let mut lookahead = chars.clone();
                    match lookahead.next() {
                        // The backslash is dropped; the next round reads the
                        // brace or slash itself as a literal.
                        Some('}' | '/') => continue,
                        Some(escaped @ ('*' | '?' | '\\')) => {
                            chars = lookahead;
                            Token::Literal(escaped)
                        }
                        Some(other) => return Err(PatternError::InvalidEscape(other)),
                        None => return Err(PatternError::TrailingEscape),
                    }
                }
                other => Token::Literal(other),
            };
            tokens.push(token);
        }
        Ok(Self { tokens, greedy })
    }

    /// The Go regular expression BuildKit builds for this pattern.
    pub fn to_regex(&self, anchored: bool) -> String {
        let mut out = String::new();
        if anchored {
            out.push('^');
        }
        for token in &self.tokens {
            match token {
                Token::AnyRun if self.greedy => out.push_str(".*"),
                Token::AnyRun => out.push_str(".*?"),
                Token::AnyChar => out.push('.'),
                Token::Literal(c) => {
                    if REGEX_META.contains(*c) {
                        out.push('\\');
                    }
                    out.push(*c);
                }
            }
        }
        out
    }

    /// For every start index `s` in `0..=text.len()`, the end index of the
    /// match a backtracking matcher would report when anchored at `s`, or
    /// `None` when the pattern cannot match there.
    ///
    /// Dynamic programming over (token, position), from the last token
    /// backwards, keeps this polynomial where naive backtracking on many
    /// `*`s would be exponential.
    pub(crate) fn match_ends(&self, text: &[char]) -> Vec<Option<usize>> {
        // After the last token the match ends wherever we are.
        let mut after: Vec<Option<usize>> = (0..=text.len()).map(Some).collect();
        for token in self.tokens.iter().rev() {
            let mut row: Vec<Option<usize>> = vec![None; text.len() + 1];
            for pos in (0..=text.len()).rev() {
                let here = text.get(pos).copied();
                let steps = match token {
                    Token::Literal(c) => here == Some(*c),
                    Token::AnyChar | Token::AnyRun => here.is_some_and(|c| c != '\n'),
                };
                // Result of consuming one character with this token.
                let take = |next: &[Option<usize>]| -> Option<usize> {
                    if steps {
                        next.get(pos + 1).copied().flatten()
                    } else {
                        None
                    }
                };
                let end = match token {
                    Token::Literal(_) | Token::AnyChar => take(&after),
                    Token::AnyRun => {
                        let more = take(&row);
                        let stop = after.get(pos).copied().flatten();
                        if self.greedy {
                            more.or(stop)
                        } else {
                            stop.or(more)
                        }
                    }
                };
                if let Some(slot) = row.get_mut(pos) {
                    *slot = end;
                }
            }
            after = row;
        }
        after
    }

    /// The end of the match anchored at the start of `text`.
    pub(crate) fn match_prefix(&self, text: &[char]) -> Option<usize> {
        self.match_ends(text).first().copied().flatten()
    }
}

/// Reverses a pattern so that a suffix search can run as a prefix search on
/// the reversed value: characters are reversed, but each `\x` pair keeps
/// its order (`a\*c` becomes `c\*a`). A trailing lone `\` is kept as is.
pub fn reverse_pattern(pattern: &str) -> String {
    let mut units: Vec<&str> = Vec::new();
    let mut rest = pattern;
    while let Some(c) = rest.chars().next() {
        let mut len = c.len_utf8();
        if c == '\\' {
            let escaped = rest.get(len..).and_then(|tail| tail.chars().next());
            len += escaped.map_or(0, char::len_utf8);
        }
        let Some((unit, tail)) = rest.split_at_checked(len) else {
            break;
        };
        units.push(unit);
        rest = tail;
    }
    units.iter().rev().copied().collect()
}

#[cfg(test)]
mod tests {
    use super::{Pattern, PatternError, reverse_pattern};

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    fn prefix(pattern: &str, greedy: bool, text: &str) -> Option<usize> {
        Pattern::parse(pattern, greedy)
            .ok()?
            .match_prefix(&chars(text))
    }

    #[test]
    fn lazy_and_greedy_stars() {
        assert_eq!(prefix("*x*y", false, "xxyy"), Some(3));
        assert_eq!(prefix("*x*y", true, "xxyy"), Some(4));
        assert_eq!(prefix("*", false, "abc"), Some(0));
        assert_eq!(prefix("*", true, "abc"), Some(3));
        assert_eq!(prefix("?", true, ""), None);
        assert_eq!(prefix("", true, "abc"), Some(0));
    }

    #[test]
    fn first_star_settles_first() {
        // Greedy: the first star takes as much as it can, so the second
        // star is left empty rather than the overall match being longest.
        assert_eq!(prefix("*a*", true, "bab"), Some(3));
        assert_eq!(prefix("*ab", true, "abab"), Some(4));
        assert_eq!(prefix("a*b", false, "abab"), Some(2));
    }

    #[test]
    fn wildcards_stop_at_newlines() {
        assert_eq!(prefix("*", true, "ab\ncd"), Some(2));
        assert_eq!(prefix("a?c", true, "a\nc"), None);
        assert_eq!(prefix("a\nc", true, "a\nc"), Some(3));
    }

    #[test]
    fn escapes() {
        assert_eq!(prefix("\\*", true, "*x"), Some(1));
        assert_eq!(prefix("\\}\\/", true, "}/"), Some(2));
        assert_eq!(prefix("[a]", true, "[a]"), Some(3));
        assert_eq!(
            Pattern::parse("\\x", true),
            Err(PatternError::InvalidEscape('x'))
        );
        assert_eq!(
            Pattern::parse("a\\", true),
            Err(PatternError::TrailingEscape)
        );
        assert_eq!(prefix("\u{FEFF}a", true, "a"), Some(1));
    }

    #[test]
    fn regex_spelling() {
        let p = Pattern::parse("a*?.\\}", false).map(|p| p.to_regex(true));
        assert_eq!(p.as_deref(), Ok("^a.*?.\\.\\}"));
    }

    #[test]
    fn reversal_keeps_escape_pairs() {
        assert_eq!(reverse_pattern("a\\*c"), "c\\*a");
        assert_eq!(reverse_pattern("ab\\"), "\\ba");
        assert_eq!(reverse_pattern(""), "");
    }
}
