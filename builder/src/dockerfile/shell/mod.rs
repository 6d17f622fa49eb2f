//! The shell-word lexer: variable expansion in Dockerfile words, matching
//! BuildKit's `shell.Lex` (quote removal, escapes, `$VAR` / `${VAR…}`
//! forms, and optional field splitting).
//!
//! Supported forms: `$v`, `${v}`, `${v:-w}`, `${v-w}`, `${v:+w}`, `${v+w}`,
//! `${v:?msg}`, `${v?msg}`, `${v#p}`, `${v##p}`, `${v%p}`, `${v%%p}`,
//! `${v/p/r}`, `${v//p/r}`. Positional (`$1`) and special (`$@`, `$$`, …)
//! parameters are looked up like any name and so are normally empty.
//! Anything else in `${…}` (`${v:=w}`, `${v:1}`, `${#v}`) is an error.
//!
//! Inside: `lexer` reads a word, `words` splits fields, [`pattern`] and
//! `modifiers` implement the glob forms, `env` holds [`VarLookup`] and its
//! implementations, `unicode` decides where a name ends, `error` defines
//! [`ShellError`].

mod env;
mod error;
mod lexer;
mod modifiers;
pub mod pattern;
mod unicode;
mod words;

use std::collections::BTreeSet;

pub use env::{EnvList, VarLookup};
pub use error::ShellError;

use lexer::{Expander, Options};
use words::Words;

/// Expands Dockerfile words. Cheap to copy; holds options only.
#[derive(Debug, Clone)]
pub struct Lexer {
    options: Options,
}

/// The result of [`Lexer::process_word_with_matches`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    /// The expanded word.
    pub result: String,
    /// Variables the word referred to that were set (even if empty).
    pub matched: BTreeSet<String>,
    /// Variables the word referred to that were not set.
    pub unmatched: BTreeSet<String>,
}

impl Default for Lexer {
    fn default() -> Self {
        Self::new('\\')
    }
}

impl Lexer {
    /// A lexer whose escape character is `escape`: `\` by default, or the
    /// `` ` `` chosen with `# escape=` (other characters are accepted too).
    pub fn new(escape: char) -> Self {
        Self {
            options: Options {
                escape,
                raw_quotes: false,
                raw_escapes: false,
                skip_unset_env: false,
            },
        }
    }

    /// The escape character.
    pub fn escape(&self) -> char {
        self.options.escape
    }

    /// Keep quote characters in the output (BuildKit's `RawQuotes`).
    #[must_use]
    pub fn raw_quotes(mut self, on: bool) -> Self {
        self.options.raw_quotes = on;
        self
    }

    /// Keep escape characters in the output (BuildKit's `RawEscapes`).
    #[must_use]
    pub fn raw_escapes(mut self, on: bool) -> Self {
        self.options.raw_escapes = on;
        self
    }

    /// Leave references to unset variables as written, e.g. `$UNSET` or
    /// `${UNSET:-x}` (BuildKit's `SkipUnsetEnv`).
    #[must_use]
    pub fn skip_unset_env(mut self, on: bool) -> Self {
        self.options.skip_unset_env = on;
        self
    }

    /// Expands `word` into one string, without field splitting.
    pub fn process_word(&self, word: &str, env: &dyn VarLookup) -> Result<String, ShellError> {
        Expander::new(word, self.options, env)
            .expand(None)
            .map_err(|fault| fault.into_error(word))
    }

    /// Like [`process_word`](Self::process_word), and also reports which
    /// variables were referred to, split into set and unset.
    pub fn process_word_with_matches(
        &self,
        word: &str,
        env: &dyn VarLookup,
    ) -> Result<Expansion, ShellError> {
        let mut expander = Expander::new(word, self.options, env);
        let result = expander
            .expand(None)
            .map_err(|fault| fault.into_error(word))?;
        Ok(Expansion {
            result,
            matched: expander.matched,
            unmatched: expander.unmatched,
        })
    }

    /// Expands `word` and splits it into fields at unquoted whitespace,
    /// including whitespace produced by unquoted expansions. Quoted and
    /// escaped whitespace is kept; fields that end up empty are dropped.
    pub fn process_words(
        &self,
        word: &str,
        env: &dyn VarLookup,
    ) -> Result<Vec<String>, ShellError> {
        let mut words = Words::default();
        Expander::new(word, self.options, env)
            .expand(Some(&mut words))
            .map_err(|fault| fault.into_error(word))?;
        Ok(words.finish())
    }
}

#[cfg(test)]
mod tests {
    //! Behaviour the upstream data files do not pin down; each expectation
    //! was checked against BuildKit's lexer.

    use super::{Lexer, ShellError};
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn word(lexer: &Lexer, input: &str, pairs: &[(&str, &str)]) -> Result<String, ShellError> {
        lexer.process_word(input, &env(pairs))
    }

    #[test]
    fn skip_unset_env_writes_references_back() {
        let lexer = Lexer::new('\\').skip_unset_env(true);
        let input =
            r"$UNSET ${UNSET} ${UNSET:-a b} ${UNSET:=x} ${UNSET//a/b} ${UNSET?} ${UNSET#\*}";
        assert_eq!(
            word(&lexer, input, &[]).ok().as_deref(),
            Some(r"$UNSET ${UNSET} ${UNSET:-a b} ${UNSET:=x} ${UNSET/a/b} ${UNSET?} ${UNSET#\*}")
        );
        assert_eq!(
            word(&lexer, "${SET:-x} $SET", &[("SET", "v")])
                .ok()
                .as_deref(),
            Some("v v")
        );
        // Checked before the variable is looked up, so still an error.
        assert!(word(&lexer, "${UNSET:#x}", &[]).is_err());
        assert!(word(&lexer, "${UNSET=x}", &[]).is_err());
    }

    #[test]
    fn raw_quotes_and_raw_escapes() {
        let raw_quotes = Lexer::new('\\').raw_quotes(true);
        let words = raw_quotes.process_words(r#"'a' "b" c"#, &env(&[]));
        assert_eq!(
            words.ok(),
            Some(vec!["'a'".into(), "\"b\"".into(), "c".into()])
        );

        // Inside double quotes a kept escape before a non-escapable
        // character is written twice, as upstream does.
        let raw_escapes = Lexer::new('\\').raw_escapes(true);
        assert_eq!(
            word(&raw_escapes, r#""a\tb\$c\\" d\e"#, &[])
                .ok()
                .as_deref(),
            Some(r"a\\tb\$c\\ d\e")
        );
    }

    #[test]
    fn backtick_escape() {
        let lexer = Lexer::new('`');
        assert_eq!(
            word(&lexer, r#"`$A \$A "`"""#, &[("A", "v")])
                .ok()
                .as_deref(),
            Some(r#"$A \v ""#)
        );
    }

    #[test]
    fn leading_byte_order_mark_is_skipped() {
        let lexer = Lexer::default();
        assert_eq!(
            word(&lexer, "\u{FEFF}$A", &[("A", "v")]).ok().as_deref(),
            Some("v")
        );
    }

    #[test]
    fn field_splitting_keeps_text_around_expansions() {
        let lexer = Lexer::default();
        let words = lexer.process_words("80${P:-/tcp} 443", &env(&[]));
        assert_eq!(words.ok(), Some(vec!["80/tcp".into(), "443".into()]));
        let words = lexer.process_words(r#"a""b '' """#, &env(&[]));
        assert_eq!(words.ok(), Some(vec!["ab".into()]));
    }

    #[test]
    fn patterns_read_from_quotes_and_replacements() {
        let lexer = Lexer::default();
        assert_eq!(
            word(&lexer, r#"${A#"x\*"}"#, &[("A", r"x\\*y")])
                .ok()
                .as_deref(),
            Some(r"\*y")
        );
        // `$0` reaches Go's replacement template only when escaped.
        assert_eq!(
            word(&lexer, r"${A//o/\$0\$0}", &[("A", "foo")])
                .ok()
                .as_deref(),
            Some(r"f\o\o\o\o")
        );
    }

    #[test]
    fn errors_name_the_problem() {
        let lexer = Lexer::default();
        let missing = word(&lexer, "${FOO", &[]).map_err(|e| e.to_string());
        assert_eq!(missing, Err(r#"missing '}' in "${FOO""#.to_owned()));
        // A nested failure at the end of input is reported as the open brace.
        assert!(matches!(
            word(&lexer, "${a:-${b:?oops}", &[]),
            Err(ShellError::MissingBrace { .. })
        ));
        match word(&lexer, "${a:-${b:?oops}}", &[]) {
            Err(ShellError::Unset { name, message, .. }) => {
                assert_eq!((name.as_str(), message.as_str()), ("b", "oops"));
            }
            other => panic!("unexpected {other:?}"),
        }
        let modifier = word(&lexer, "${FOO=x}", &[]).map_err(|e| e.to_string());
        assert!(modifier.is_err_and(|e| e.contains("unsupported modifier (=) in substitution")));
        let empty = word(&lexer, "${E:?}", &[("E", "")]).map_err(|e| e.to_string());
        assert!(empty.is_err_and(|e| e.starts_with("E: is not allowed to be empty")));
    }

    #[test]
    fn empty_names_are_looked_up() {
        let lexer = Lexer::default();
        let got = lexer.process_word_with_matches("${+x} ${/x/y}", &env(&[("", "empty-name")]));
        let got = got.ok().unwrap_or_default();
        assert_eq!(got.result, "x empty-name");
        assert!(got.matched.contains(""));
    }
}
