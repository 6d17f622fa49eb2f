//! Splits a `command: echo "a b"` string into words the way compose does
//! (Go's go-shellwords with variable and command expansion off): blanks
//! separate words, single quotes are literal, a backslash escapes the next
//! character outside single quotes (`\t` and `\n` give a tab and a newline),
//! and `` `…` `` or `$(…)` are kept verbatim as part of a word.
//!
//! Where go-shellwords silently stops at an unquoted `;`, `&`, `|`, `<` or
//! `>` and drops the rest of the line, this splitter reports an error: the
//! rest of the line is never what the author meant.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SplitError {
    Unterminated(&'static str),
    TrailingBackslash,
    Operator(char),
    Parenthesis(char),
}

impl fmt::Display for SplitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SplitError::Unterminated(what) => write!(f, "unterminated {what}; close it"),
            SplitError::TrailingBackslash => {
                f.write_str("it ends with a backslash; remove it or escape it as \\\\")
            }
            SplitError::Operator(op) => write!(
                f,
                "the shell operator \"{op}\" only works in a shell; quote it, or write [\"sh\", \"-c\", \"…\"]"
            ),
            SplitError::Parenthesis(p) => write!(
                f,
                "unexpected \"{p}\" outside quotes; quote it, or write [\"sh\", \"-c\", \"…\"]"
            ),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Quote {
    Single,
    Double,
}

/// A region copied verbatim, quotes included.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Verbatim {
    Backtick,
    Dollar,
}

pub fn split(line: &str) -> Result<Vec<String>, SplitError> {
    let mut words = Vec::new();
    let mut word = String::new();
    // Whether a word has begun: `''` is an empty word, blanks are none.
    let mut started = false;
    let mut escaped = false;
    let mut quote: Option<Quote> = None;
    let mut verbatim: Option<Verbatim> = None;

    for c in line.chars() {
        if escaped {
            escaped = false;
            started = true;
            if verbatim.is_some() {
                word.push('\\');
                word.push(c);
            } else {
                word.push(match c {
                    't' => '\t',
                    'n' => '\n',
                    other => other,
                });
            }
            continue;
        }
        match c {
            '\\' if quote == Some(Quote::Single) => {}
            '\\' => {
                escaped = true;
                continue;
            }
            ' ' | '\t' | '\r' | '\n' if quote.is_none() && verbatim.is_none() => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
                continue;
            }
            ' ' | '\t' | '\r' | '\n' => {}
            '`' if quote.is_none() && verbatim != Some(Verbatim::Dollar) => {
                verbatim = match verbatim {
                    Some(_) => None,
                    None => Some(Verbatim::Backtick),
                };
            }
            ')' if quote.is_none() && verbatim != Some(Verbatim::Backtick) => {
                if verbatim.is_none() {
                    return Err(SplitError::Parenthesis(')'));
                }
                verbatim = None;
            }
            '(' if quote.is_none() && verbatim != Some(Verbatim::Backtick) => {
                if verbatim.is_some() || !word.ends_with('$') {
                    return Err(SplitError::Parenthesis('('));
                }
                verbatim = Some(Verbatim::Dollar);
            }
            '"' if quote != Some(Quote::Single) && verbatim.is_none() => {
                quote = match quote {
                    Some(_) => None,
                    None => Some(Quote::Double),
                };
                started = true;
                continue;
            }
            '\'' if quote != Some(Quote::Double) && verbatim.is_none() => {
                quote = match quote {
                    Some(_) => None,
                    None => Some(Quote::Single),
                };
                started = true;
                continue;
            }
            ';' | '&' | '|' | '<' | '>' if quote.is_none() && verbatim.is_none() => {
                return Err(SplitError::Operator(c));
            }
            _ => {}
        }
        word.push(c);
        started = true;
    }

    if escaped {
        return Err(SplitError::TrailingBackslash);
    }
    match (quote, verbatim) {
        (Some(Quote::Single), _) => return Err(SplitError::Unterminated("single quote")),
        (Some(Quote::Double), _) => return Err(SplitError::Unterminated("double quote")),
        (None, Some(Verbatim::Backtick)) => return Err(SplitError::Unterminated("backtick")),
        (None, Some(Verbatim::Dollar)) => return Err(SplitError::Unterminated("\"$(\"")),
        (None, None) => {}
    }
    if started {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        split(line).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    #[test]
    fn splits_on_blanks() {
        assert_eq!(words("echo  hello\tworld\n"), ["echo", "hello", "world"]);
        assert_eq!(words(""), Vec::<String>::new());
        assert_eq!(words("   "), Vec::<String>::new());
    }

    #[test]
    fn quotes() {
        assert_eq!(words(r#"sh -c "echo 'a b'""#), ["sh", "-c", "echo 'a b'"]);
        assert_eq!(words(r#"echo 'say "hi"'"#), ["echo", r#"say "hi""#]);
        assert_eq!(words(r#"a"b c"d"#), ["ab cd"]);
        assert_eq!(words("'' \"\" x"), ["", "", "x"]);
        assert_eq!(words(r"echo 'a\b'"), ["echo", r"a\b"]);
    }

    #[test]
    fn backslashes() {
        assert_eq!(words(r"a\ b"), ["a b"]);
        assert_eq!(words(r#""a\"b""#), [r#"a"b"#]);
        assert_eq!(words(r"a\\b"), [r"a\b"]);
        assert_eq!(words(r"a\tb\nc"), ["a\tb\nc"]);
        assert_eq!(words(r"\;"), [";"]);
    }

    #[test]
    fn verbatim_regions() {
        assert_eq!(words("echo `date +%s`"), ["echo", "`date +%s`"]);
        assert_eq!(words("echo $(date +%s) x"), ["echo", "$(date +%s)", "x"]);
        assert_eq!(words("echo '(a)' \"|\""), ["echo", "(a)", "|"]);
    }

    #[test]
    fn errors() {
        assert_eq!(
            split("echo 'a"),
            Err(SplitError::Unterminated("single quote"))
        );
        assert_eq!(
            split("echo \"a"),
            Err(SplitError::Unterminated("double quote"))
        );
        assert_eq!(split("echo a\\"), Err(SplitError::TrailingBackslash));
        assert_eq!(split("echo a && b"), Err(SplitError::Operator('&')));
        assert_eq!(split("a > /dev/null"), Err(SplitError::Operator('>')));
        assert_eq!(split("echo (a)"), Err(SplitError::Parenthesis('(')));
        assert_eq!(split("echo a)"), Err(SplitError::Parenthesis(')')));
        assert_eq!(split("echo `a"), Err(SplitError::Unterminated("backtick")));
        assert_eq!(split("echo $(a"), Err(SplitError::Unterminated("\"$(\"")));
    }
}
