//! The expansion engine: one left-to-right pass over a word that removes
//! quotes, handles escapes and substitutes variables, optionally splitting
//! the result into fields.
//!
//! The structure mirrors BuildKit's `shell.Lex` because its results depend
//! on the order in which things are read:
//! - A word is read up to a stop character (end of input, `}` closing a
//!   `${…}`, or `/` ending a replacement pattern). Quotes and nested `$`
//!   are processed first, so a stop character inside them does not count.
//! - Unquoted, the escape character makes the next character literal and is
//!   dropped; at the very end of the word it is dropped silently.
//! - Inside double quotes it only escapes `"`, `$` and itself; before
//!   anything else it stays. Single quotes keep everything.
//! - Inside `${V#p}`, `${V%p}` and `${V/p/r}` escapes are kept ("raw") so the
//!   pattern code can tell `\*` from `*`; that also applies to double
//!   quotes read there.
//! - Variable lookups happen after the modifier's word has been read, and
//!   every lookup is recorded as matched or unmatched.

use std::collections::BTreeSet;
use std::iter::Peekable;
use std::str::Chars;

use super::env::VarLookup;
use super::error::Fault;
use super::modifiers;
use super::unicode::{is_digit, is_letter};
use super::words::Words;

/// How deeply `${…}` may nest. Deeper input is rejected instead of risking
/// a stack overflow; real Dockerfiles nest two or three levels.
pub(crate) const MAX_NESTING: usize = 100;

/// Options that stay fixed for one expansion.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    pub(crate) escape: char,
    pub(crate) raw_quotes: bool,
    pub(crate) raw_escapes: bool,
    pub(crate) skip_unset_env: bool,
}

pub(crate) struct Expander<'w, 'e> {
    input: Peekable<Chars<'w>>,
    options: Options,
    /// Whether escapes are kept right now; changes inside pattern words.
    raw_escapes: bool,
    env: &'e dyn VarLookup,
    depth: usize,
    pub(crate) matched: BTreeSet<String>,
    pub(crate) unmatched: BTreeSet<String>,
}

impl<'w, 'e> Expander<'w, 'e> {
    pub(crate) fn new(word: &'w str, options: Options, env: &'e dyn VarLookup) -> Self {
        // Go's text scanner skips a byte-order mark at the start of input.
        let word = word.strip_prefix('\u{FEFF}').unwrap_or(word);
        Self {
            input: word.chars().peekable(),
            options,
            raw_escapes: options.raw_escapes,
            env,
            depth: 0,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        }
    }

    /// Expands the whole word; with `words`, also splits it into fields.
    pub(crate) fn expand(&mut self, words: Option<&mut Words>) -> Result<String, Fault> {
        self.read_until(None, self.options.raw_escapes, words)
    }

    fn peek(&mut self) -> Option<char> {
        self.input.peek().copied()
    }

    fn at_end(&mut self) -> bool {
        self.input.peek().is_none()
    }

    /// Reads up to `stop` (consumed) or the end of input when `stop` is
    /// `None`, with escapes kept or not as `raw_escapes` says.
    fn read_until(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
        words: Option<&mut Words>,
    ) -> Result<String, Fault> {
        if self.depth >= MAX_NESTING {
            return Err(Fault::TooDeep(MAX_NESTING));
        }
        self.depth += 1;
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let result = self.read_until_inner(stop, words);
        self.raw_escapes = saved;
        self.depth -= 1;
        result
    }

    fn read_until_inner(
        &mut self,
        stop: Option<char>,
        mut words: Option<&mut Words>,
    ) -> Result<String, Fault> {
        let mut out = String::new();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.input.next();
                return Ok(out);
            }
            // Quotes and `$` come before the escape check, as upstream does.
            let special = match ch {
                '$' => Some((self.dollar()?, true)),
                '\'' => Some((self.single_quoted()?, false)),
                '"' => Some((self.double_quoted()?, false)),
                _ => None,
            };
            if let Some((piece, splits)) = special {
                out.push_str(&piece);
                if let Some(words) = words.as_deref_mut() {
                    // Only expansion results are split; quoted text stays whole.
                    if splits {
                        words.add_str(&piece);
                    } else {
                        words.add_raw_str(&piece);
                    }
                }
                continue;
            }
            self.input.next();
            if ch == self.options.escape {
                if self.raw_escapes {
                    out.push(ch);
                    if let Some(words) = words.as_deref_mut() {
                        words.add_raw_char(ch);
                    }
                }
                let Some(escaped) = self.input.next() else {
                    break;
                };
                out.push(escaped);
                if let Some(words) = words.as_deref_mut() {
                    words.add_raw_char(escaped);
                }
            } else {
                out.push(ch);
                if let Some(words) = words.as_deref_mut() {
                    words.add_char(ch);
                }
            }
        }
        match stop {
            Some(_) => Err(Fault::UnexpectedEnd),
            None => Ok(out),
        }
    }

    fn single_quoted(&mut self) -> Result<String, Fault> {
        let mut out = String::new();
        self.input.next();
        if self.options.raw_quotes {
            out.push('\'');
        }
        loop {
            match self.input.next() {
                None => return Err(Fault::UnterminatedQuote('\'')),
                Some('\'') => {
                    if self.options.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<String, Fault> {
        let mut out = String::new();
        self.input.next();
        if self.options.raw_quotes {
            out.push('"');
        }
        loop {
            match self.peek() {
                None => return Err(Fault::UnterminatedQuote('"')),
                Some('"') => {
                    self.input.next();
                    if self.options.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let value = self.dollar()?;
                    out.push_str(&value);
                }
                Some(mut ch) => {
                    self.input.next();
                    if ch == self.options.escape {
                        if self.raw_escapes {
                            out.push(ch);
                        }
                        match self.peek() {
                            // Dropped here; the loop then reports the open quote.
                            None => continue,
                            Some(next) if next == '"' || next == '$' || next == ch => {
                                self.input.next();
                                ch = next;
                            }
                            // Not escapable: the escape character itself is kept.
                            Some(_) => {}
                        }
                    }
                    out.push(ch);
                }
            }
        }
    }

    /// Reads a `$…` expansion; the input is at the `$`.
    fn dollar(&mut self) -> Result<String, Fault> {
        self.input.next();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_owned());
            }
            return Ok(match self.lookup(&name) {
                Some(value) => value,
                None if self.options.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }
        self.input.next();
        match self.peek() {
            None => return Err(Fault::MissingBrace),
            Some('{' | '}' | ':') => return Err(Fault::BadSubstitution),
            Some(_) => {}
        }
        let name = self.name();
        // Upstream reports end of input here as an odd modifier; a missing
        // brace is what the user has to fix.
        let Some(first) = self.input.next() else {
            return Err(Fault::MissingBrace);
        };
        match first {
            '}' => Ok(match self.lookup(&name) {
                Some(value) => value,
                None if self.options.skip_unset_env => format!("${{{name}}}"),
                None => String::new(),
            }),
            ':' => {
                let Some(op) = self.input.next() else {
                    return Err(Fault::MissingBrace);
                };
                self.modifier(&name, op, true)
            }
            '+' | '-' | '?' | '#' | '%' => self.modifier(&name, first, false),
            '/' => self.substitution(&name),
            other => Err(Fault::UnsupportedModifier(other.to_string())),
        }
    }

    /// `${name[:]op word}` for every `op` except `/`; the input is after `op`.
    /// `colon` (`:` before `op`) makes an empty value count as unset.
    fn modifier(&mut self, name: &str, op: char, colon: bool) -> Result<String, Fault> {
        let spelled = if colon {
            format!(":{op}")
        } else {
            op.to_string()
        };
        let is_pattern = op == '#' || op == '%';
        if colon && is_pattern {
            return Err(Fault::UnsupportedModifier(spelled));
        }
        let word = self.nested(Some('}'), is_pattern, Fault::MissingBrace)?;
        let value = self.lookup(name);
        let value = match value {
            Some(value) => value,
            None if self.options.skip_unset_env => {
                return Ok(format!("${{{name}{spelled}{word}}}"));
            }
            None => {
                return match op {
                    '-' => Ok(word),
                    '+' => Ok(String::new()),
                    '?' => Err(Fault::Unset {
                        name: name.to_owned(),
                        message: message_or(word, "is not allowed to be unset"),
                    }),
                    // An unset variable trims like an empty one.
                    '#' | '%' => self.trim(op, word, ""),
                    _ => Err(Fault::UnsupportedModifier(spelled)),
                };
            }
        };
        let counts_as_unset = colon && value.is_empty();
        match op {
            '-' if counts_as_unset => Ok(word),
            '-' => Ok(value),
            '+' if counts_as_unset => Ok(String::new()),
            '+' => Ok(word),
            '?' if counts_as_unset => Err(Fault::Empty {
                name: name.to_owned(),
                message: message_or(word, "is not allowed to be empty"),
            }),
            '?' => Ok(value),
            '#' | '%' => self.trim(op, word, &value),
            _ => Err(Fault::UnsupportedModifier(spelled)),
        }
    }

    /// `${V#p}`, `${V##p}`, `${V%p}`, `${V%%p}`: a doubled operator (the
    /// pattern starting with it) asks for the longest match.
    fn trim(&self, op: char, pattern: String, value: &str) -> Result<String, Fault> {
        let (pattern, greedy) = match pattern.strip_prefix(op) {
            Some(rest) => (rest, true),
            None => (pattern.as_str(), false),
        };
        if op == '%' {
            modifiers::trim_suffix(pattern, value, greedy)
        } else {
            modifiers::trim_prefix(pattern, value, greedy)
        }
    }

    /// `${name/pattern/replacement}` and `${name//pattern/replacement}`;
    /// the input is after the first `/`.
    fn substitution(&mut self, name: &str) -> Result<String, Fault> {
        let all = self.peek() == Some('/');
        if all {
            self.input.next();
        }
        let pattern = self.nested(Some('/'), true, Fault::MissingSlash)?;
        let replacement = self.nested(Some('}'), true, Fault::MissingBrace)?;
        let value = match self.lookup(name) {
            Some(value) => value,
            // Upstream writes a single `/` back, even for `//`.
            None if self.options.skip_unset_env => {
                return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
            }
            None => String::new(),
        };
        modifiers::replace(&pattern, &replacement, &value, all)
    }

    /// Reads a modifier's word. Any failure that leaves the input exhausted
    /// is reported as `at_end` (the unclosed `${` or pattern), as upstream
    /// does, even when a nested expansion failed for another reason.
    fn nested(&mut self, stop: Option<char>, raw: bool, at_end: Fault) -> Result<String, Fault> {
        match self.read_until(stop, raw, None) {
            Ok(word) => Ok(word),
            Err(Fault::TooDeep(limit)) => Err(Fault::TooDeep(limit)),
            Err(_) if self.at_end() => Err(at_end),
            Err(fault) => Err(fault),
        }
    }

    /// Reads a variable name: a run of digits (positional parameter), one
    /// special-parameter character, or letters, digits and `_`. May be empty.
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && is_digit(ch) {
                while let Some(digit) = self.peek().filter(|&c| is_digit(c)) {
                    self.input.next();
                    name.push(digit);
                }
                return name;
            }
            if name.is_empty() && is_special_parameter(ch) {
                self.input.next();
                name.push(ch);
                return name;
            }
            if !(is_letter(ch) || is_digit(ch) || ch == '_') {
                break;
            }
            self.input.next();
            name.push(ch);
        }
        name
    }

    fn lookup(&mut self, name: &str) -> Option<String> {
        let value = self.env.lookup(name).map(str::to_owned);
        let seen = if value.is_some() {
            &mut self.matched
        } else {
            &mut self.unmatched
        };
        if !seen.contains(name) {
            seen.insert(name.to_owned());
        }
        value
    }
}

/// POSIX special parameters; a Dockerfile never sets them.
fn is_special_parameter(ch: char) -> bool {
    matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

fn message_or(word: String, default: &str) -> String {
    if word.is_empty() {
        default.to_owned()
    } else {
        word
    }
}
