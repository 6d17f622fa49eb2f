//! `.env` and `env_file` parsing with compose's dotenv syntax.
//!
//! A file is a series of statements, `KEY=value`, `KEY: value` or a bare
//! `KEY`, optionally prefixed with `export`. Values are unquoted (trimmed,
//! ` #` starts a comment), single-quoted (literal) or double-quoted (shell
//! escapes, may span lines). `${…}` is expanded in unquoted and
//! double-quoted values, looking a name up first in the caller's
//! environment and then among the keys the file defined before it.

use std::fmt;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use thiserror::Error;

use crate::interpolation::{TemplateError, substitute};

/// An env file that could not be read or parsed.
#[derive(Debug, Error)]
pub struct DotenvError {
    /// The file, when the text came from one.
    pub path: Option<PathBuf>,
    /// 1-based line of the statement at fault; 0 when the error is not tied
    /// to a line (the file could not be read).
    pub line: u32,
    pub kind: DotenvErrorKind,
}

/// The same `line N: …` wording as compose, behind the file name.
impl fmt::Display for DotenvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(path) = &self.path {
            write!(f, "{}: ", path.display())?;
        }
        if self.line > 0 {
            write!(f, "line {}: ", self.line)?;
        }
        write!(f, "{}", self.kind)
    }
}

#[derive(Debug, Error)]
pub enum DotenvErrorKind {
    /// A key with a character outside letters, digits and `_ . - [ ]`.
    #[error(
        "unexpected character {} in variable name {}",
        go_quote(&character.to_string()),
        go_quote(statement)
    )]
    UnexpectedCharacter { character: char, statement: String },
    #[error("key cannot contain a space")]
    SpaceInKey { key: String },
    /// `text` is the value as written, up to the end of its first line.
    #[error("unterminated quoted value {text}")]
    UnterminatedQuote { text: String },
    /// A `${…}` in a value is invalid or names a required variable that is
    /// missing.
    #[error("{0}")]
    Interpolation(TemplateError),
    #[error("file is not valid UTF-8")]
    NotUtf8,
    #[error("cannot read env file: {0}")]
    Read(std::io::Error),
}

/// Parses dotenv `text`. `lookup` is the environment that `${…}` and bare
/// `KEY` lines consult first; it is not copied into the result. Keys keep
/// the order of their first definition; a later definition wins.
pub fn parse(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<IndexMap<String, String>, DotenvError> {
    let mut map = IndexMap::new();
    parse_into(text, lookup, &mut map)?;
    Ok(map)
}

/// Parses `text` on top of `into`, for env files applied in order: the
/// entries already in `into` are the "defined earlier" values `${…}` falls
/// back to after `lookup`, and the text's keys override them. On error,
/// `into` holds the statements before the faulty one.
pub fn parse_into(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    into: &mut IndexMap<String, String>,
) -> Result<(), DotenvError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // Windows line ends would otherwise stay inside multi-line quoted values.
    let text = text.replace("\r\n", "\n");
    Parser {
        src: &text,
        pos: 0,
        lookup,
        out: into,
    }
    .run()
}

/// Reads and parses an env file as compose's `env_file` and `--env-file`
/// do: keys that start with a digit are dropped.
pub fn read_file(
    path: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<IndexMap<String, String>, DotenvError> {
    let mut map = IndexMap::new();
    read_file_into(path, lookup, &mut map)?;
    Ok(map)
}

/// [`read_file`] on top of `into`, as [`parse_into`] (digit-led keys are
/// removed from all of `into`).
pub fn read_file_into(
    path: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
    into: &mut IndexMap<String, String>,
) -> Result<(), DotenvError> {
    let with_path = |line, kind| DotenvError {
        path: Some(path.to_path_buf()),
        line,
        kind,
    };
    let bytes = std::fs::read(path).map_err(|err| with_path(0, DotenvErrorKind::Read(err)))?;
    let text = String::from_utf8(bytes).map_err(|err| {
        let valid = &err.as_bytes()[..err.utf8_error().valid_up_to()];
        with_path(line_count(valid), DotenvErrorKind::NotUtf8)
    })?;
    parse_into(&text, lookup, into).map_err(|err| with_path(err.line, err.kind))?;
    into.retain(|key, _| !key.starts_with(|c: char| c.is_ascii_digit()));
    Ok(())
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    out: &'a mut IndexMap<String, String>,
}

impl Parser<'_> {
    fn run(&mut self) -> Result<(), DotenvError> {
        loop {
            let rest = &self.src[self.pos..];
            let Some(skip) = rest.find(|c: char| !c.is_whitespace()) else {
                return Ok(());
            };
            self.pos += skip;
            let rest = &self.src[self.pos..];
            if rest.starts_with('#') {
                match rest.find('\n') {
                    Some(end) => self.pos += end,
                    None => return Ok(()),
                }
                continue;
            }
            self.statement()?;
        }
    }

    fn error(&self, at: usize, kind: DotenvErrorKind) -> DotenvError {
        DotenvError {
            path: None,
            line: line_count(&self.src.as_bytes()[..at]),
            kind,
        }
    }

    /// Parses the statement at `self.pos` and moves past it.
    fn statement(&mut self) -> Result<(), DotenvError> {
        let start = self.pos;
        let mut s = &self.src[start..];
        // `export` is a prefix only when whitespace follows: `exportFOO` and
        // `export_FOO` are keys.
        if let Some(after) = s.strip_prefix("export")
            && after.starts_with(['\t', '\n', '\x0c', '\r', ' '])
        {
            s = after.trim_start_matches(is_inline_space);
        }
        let key_start = self.src.len() - s.len();

        let mut separator = None;
        for (i, c) in s.char_indices() {
            match c {
                '=' | ':' | '\n' => {
                    separator = Some((i, c));
                    break;
                }
                '_' | '.' | '-' | '[' | ']' => {}
                c if is_inline_space(c) || c.is_alphabetic() || c.is_numeric() => {}
                c => {
                    let statement = s.split('\n').next().unwrap_or(s).to_string();
                    return Err(self.error(
                        start,
                        DotenvErrorKind::UnexpectedCharacter {
                            character: c,
                            statement,
                        },
                    ));
                }
            }
        }
        // A bare key at the end of the text behaves like one ending a line.
        let (key_end, after_key, inherited) = match separator {
            Some((i, c)) => (i, i + c.len_utf8(), c == '\n'),
            None => (s.len(), s.len(), true),
        };
        let key = s[..key_end].trim_end();
        if key.contains(char::is_whitespace) {
            return Err(self.error(
                start,
                DotenvErrorKind::SpaceInKey {
                    key: key.to_string(),
                },
            ));
        }
        let key = key.to_string();

        if inherited {
            if let Some(value) = (self.lookup)(&key) {
                self.out.insert(key, value);
            }
            self.pos = key_start + after_key;
            return Ok(());
        }

        let rest = s[after_key..].trim_start_matches(is_inline_space);
        let value_start = self.src.len() - rest.len();
        let (value, consumed) = match rest.chars().next() {
            Some(quote @ ('"' | '\'')) => self.quoted(rest, quote, value_start, start)?,
            _ => {
                let (line, consumed) = match rest.find('\n') {
                    Some(end) => (&rest[..end], end + 1),
                    None => (rest, rest.len()),
                };
                let value = line.split(" #").next().unwrap_or(line).trim_end();
                (self.expand(value, start)?, consumed)
            }
        };
        self.out.insert(key, value);
        self.pos = value_start + consumed;
        Ok(())
    }

    /// The quoted value at the start of `rest` and the bytes it takes up.
    /// A backslash keeps the quote character from closing the value (it is
    /// dropped); any other backslash is kept for escape processing.
    fn quoted(
        &self,
        rest: &str,
        quote: char,
        value_start: usize,
        statement_start: usize,
    ) -> Result<(String, usize), DotenvError> {
        let mut raw = String::new();
        let mut escaped = false;
        for (i, c) in rest.char_indices().skip(1) {
            if c == quote && !escaped {
                let value = if quote == '"' {
                    self.expand(&expand_escapes(&raw), statement_start)?
                } else {
                    raw
                };
                return Ok((value, i + 1));
            }
            if c == '\\' && !escaped {
                escaped = true;
                continue;
            }
            if escaped && c != quote {
                raw.push('\\');
            }
            escaped = false;
            raw.push(c);
        }
        let text = rest.split('\n').next().unwrap_or(rest).to_string();
        Err(self.error(value_start, DotenvErrorKind::UnterminatedQuote { text }))
    }

    /// `${…}` expansion, looking names up in the caller's environment first
    /// and then in what this text defined so far.
    fn expand(&self, value: &str, statement_start: usize) -> Result<String, DotenvError> {
        substitute(value, &|name| {
            (self.lookup)(name).or_else(|| self.out.get(name).cloned())
        })
        .map_err(|err| self.error(statement_start, DotenvErrorKind::Interpolation(err)))
    }
}

/// Whitespace that does not end a line (Go's `isSpace` in compose's
/// parser).
fn is_inline_space(c: char) -> bool {
    matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ' | '\u{85}' | '\u{a0}')
}

/// The 1-based line that follows `before`.
fn line_count(before: &[u8]) -> u32 {
    let newlines = before.iter().filter(|&&b| b == b'\n').count();
    u32::try_from(newlines).unwrap_or(u32::MAX - 1) + 1
}

/// The escapes of a double-quoted value, as XSI `echo` knows them:
/// `\a \b \f \n \r \t \v \\ \"`, `\0NNN` (octal) and `\$`. Any other
/// backslash (`\x41`, `\u00e9`) stays literal. `\$` becomes `$$` so that
/// the following `${…}` expansion yields a literal `$`.
fn expand_escapes(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while let Some(offset) = text[i..].find('\\') {
        let at = i + offset;
        out.push_str(&text[i..at]);
        let simple = match bytes.get(at + 1) {
            Some(b'a') => Some("\x07"),
            Some(b'b') => Some("\x08"),
            Some(b'f') => Some("\x0c"),
            Some(b'n') => Some("\n"),
            Some(b'r') => Some("\r"),
            Some(b't') => Some("\t"),
            Some(b'v') => Some("\x0b"),
            Some(b'\\') => Some("\\"),
            Some(b'"') => Some("\""),
            Some(b'$') => Some("$$"),
            _ => None,
        };
        if let Some(replacement) = simple {
            out.push_str(replacement);
            i = at + 2;
        } else if bytes.get(at + 1) == Some(&b'0') {
            // `\0` takes up to three digits; only three octal digits up to
            // 0377 make a character, anything else stays as written.
            let digits = bytes[at + 2..]
                .iter()
                .take(3)
                .take_while(|b| b.is_ascii_digit())
                .count();
            let end = at + 2 + digits;
            let code = u32::from_str_radix(&text[at + 2..end], 8).ok();
            match code
                .filter(|&c| digits == 3 && c <= 0o377)
                .and_then(char::from_u32)
            {
                Some(c) => out.push(c),
                None => out.push_str(&text[at..end]),
            }
            i = end;
        } else {
            out.push('\\');
            i = at + 1;
        }
    }
    out.push_str(&text[i..]);
    out
}

/// Quotes like Go's `%q`, which compose's messages use.
fn go_quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn parse_ok(text: &str) -> IndexMap<String, String> {
        parse(text, &no_env).unwrap()
    }

    #[test]
    fn statements_quotes_and_comments() {
        let map = parse_ok(
            "# comment\nA=1 # note\nexport B='x # y'\nC: \"multi\nline\"\n  D = a#b\nE=\"q\" F=2\n",
        );
        let pairs: Vec<(&str, &str)> = map.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            pairs,
            [
                ("A", "1"),
                ("B", "x # y"),
                ("C", "multi\nline"),
                ("D", "a#b"),
                ("E", "q"),
                ("F", "2")
            ]
        );
    }

    #[test]
    fn expansion_prefers_the_environment() {
        let env = |name: &str| (name == "A").then(|| "env".to_string());
        let map = parse("A=file\nB=${A}\nC='${A}'\nD=\"\\$A $$A\"\nE=${Z:-$A}", &env).unwrap();
        assert_eq!(map["A"], "file");
        assert_eq!(map["B"], "env");
        assert_eq!(map["C"], "${A}");
        assert_eq!(map["D"], "$A $A");
        assert_eq!(map["E"], "env");
    }

    #[test]
    fn bare_keys_inherit_or_vanish() {
        let env = |name: &str| (name == "HOME").then(|| "/root".to_string());
        let map = parse("HOME\nNOPE\nLAST", &env).unwrap();
        assert_eq!(map.len(), 1);
        assert_eq!(map["HOME"], "/root");
    }

    #[test]
    fn later_texts_build_on_earlier_ones() {
        let env = |name: &str| (name == "E").then(|| "env".to_string());
        let mut map = parse("A=a\nB=b\nE=file", &env).unwrap();
        parse_into("B=${A}2\nC=${B}\nD=${E}", &env, &mut map).unwrap();
        let pairs: Vec<String> = map.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(pairs, ["A=a", "B=a2", "E=file", "C=a2", "D=env"]);
    }

    #[test]
    fn escapes() {
        assert_eq!(
            expand_escapes(r"\0101\0\01\0400\09\x41\q"),
            r"A\0\01\0400\09\x41\q"
        );
        assert_eq!(expand_escapes(r"\0377"), "\u{ff}");
        assert_eq!(expand_escapes(r"a\\n\n"), "a\\n\n");
    }

    #[test]
    fn errors_name_the_line() {
        let err = parse("A=1\n\nB=\"open\nstill", &no_env).unwrap_err();
        assert_eq!(err.line, 3);
        assert_eq!(err.to_string(), "line 3: unterminated quoted value \"open");

        let err = parse("A=1\nB C=2", &no_env).unwrap_err();
        assert_eq!(err.to_string(), "line 2: key cannot contain a space");

        let err = parse("A=1\nB=${C:?needed}", &no_env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2: required variable C is missing a value: needed"
        );

        let err = parse("\n\tK\x07=1", &no_env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2: unexpected character \"\\x07\" in variable name \"K\\x07=1\""
        );
    }

    #[test]
    fn crlf_and_bom() {
        let map = parse_ok("\u{feff}A=\"1\r\n2\"\r\nB=3\r\n");
        assert_eq!(map["A"], "1\n2");
        assert_eq!(map["B"], "3");
    }

    #[test]
    fn read_file_drops_digit_keys_and_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.env");
        std::fs::write(&path, "1A=x\nA=1\n").unwrap();
        let map = read_file(&path, &no_env).unwrap();
        assert_eq!(map.keys().collect::<Vec<_>>(), ["A"]);

        std::fs::write(&path, "A=1\nB='\n").unwrap();
        let err = read_file(&path, &no_env).unwrap_err();
        assert_eq!(err.line, 2);
        assert!(
            err.to_string()
                .starts_with(&format!("{}: line 2: ", path.display()))
        );

        std::fs::write(&path, b"A=1\nB=\xff\n").unwrap();
        let err = read_file(&path, &no_env).unwrap_err();
        assert!(matches!(err.kind, DotenvErrorKind::NotUtf8));
        assert_eq!(err.line, 2);

        let err = read_file(dir.path(), &no_env).unwrap_err();
        assert!(matches!(err.kind, DotenvErrorKind::Read(_)));
        assert_eq!(err.line, 0);
    }

    proptest! {
        #[test]
        fn never_panics(text in "[A-Za-z_ =:#'\"\\\\$\\{\\}\n\t.\u{e9}0-9-]{0,60}") {
            let _ = parse(&text, &no_env);
        }
    }
}
