//! `.dockerignore`: reading the file and deciding what it excludes.
//!
//! Owns the file syntax (moby's `ignorefile.ReadAll`), which ignore file
//! applies (BuildKit's `<Dockerfile>.dockerignore` lookup) and the matching
//! rule (moby's `MatchesOrParentMatches`): the last pattern that matches a
//! path, or one of its parent directories, decides; `!` patterns are
//! exceptions that re-include.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::error::ContextError;
use super::glob::{Dialect, Glob};
use super::path::{clean, scoped_host_path};

/// The name BuildKit looks for at the context root.
pub const DOCKERIGNORE: &str = ".dockerignore";

/// One pattern line.
#[derive(Debug, Clone)]
struct Rule {
    /// Cleaned pattern, without the `!`.
    pattern: String,
    exception: bool,
    glob: Glob,
}

/// A parsed `.dockerignore`. The default value excludes nothing.
#[derive(Debug, Clone, Default)]
pub struct IgnoreRules {
    rules: Vec<Rule>,
    /// Which file the rules came from, as shown in messages.
    file: Option<String>,
}

impl IgnoreRules {
    /// Parses ignore-file text; errors name the line as `.dockerignore:N`.
    pub fn parse(text: &str) -> Result<IgnoreRules, ContextError> {
        Self::parse_named(text, DOCKERIGNORE)
    }

    /// Parses ignore-file text; errors name the line as `{file}:N`.
    pub fn parse_named(text: &str, file: &str) -> Result<IgnoreRules, ContextError> {
        let mut rules = Vec::new();
        for (index, raw) in text.split('\n').enumerate() {
            let line_no = index + 1;
            // Go's line scanner drops a trailing '\r'; ReadAll strips a BOM.
            let mut line = raw.strip_suffix('\r').unwrap_or(raw);
            if index == 0 {
                line = line.strip_prefix('\u{feff}').unwrap_or(line);
            }
            // A comment only when '#' is the very first character: moby
            // checks before trimming, so "  #x" is the pattern "#x".
            if line.starts_with('#') {
                continue;
            }
            let trimmed = line.trim();
            if trimmed.is_empty() {
                continue;
            }
            let invalid = |reason: String| ContextError::InvalidPattern {
                file: file.to_string(),
                line: line_no,
                pattern: trimmed.to_string(),
                reason,
            };
            let (mut exception, rest) = match trimmed.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, trimmed),
            };
            let mut pattern = if rest.is_empty() {
                String::new()
            } else {
                // "/a/b" and "a/b" are the same; ".." and "." are cleaned
                // away where they can be ("a/../b" is "b").
                let cleaned = clean(rest);
                match cleaned.strip_prefix('/') {
                    Some(stripped) if !stripped.is_empty() => stripped.to_string(),
                    _ => cleaned,
                }
            };
            // moby cleans the pattern a second time with the '!' attached,
            // which turns "!/" into "!", an error.
            if exception && pattern == "/" {
                pattern.clear();
            }
            // ...and looks for '!' only after that first cleaning, so
            // "/!x" becomes the exception "!x". Kept for fidelity.
            if !exception && pattern.starts_with('!') {
                exception = true;
                pattern.remove(0);
            }
            if exception && pattern.is_empty() {
                return Err(invalid(
                    "an exception needs a pattern after '!' (write '\\!name' to match a name \
                     starting with '!')"
                        .to_string(),
                ));
            }
            let glob = Glob::compile(&pattern, Dialect::Dockerignore).map_err(invalid)?;
            rules.push(Rule {
                pattern,
                exception,
                glob,
            });
        }
        Ok(IgnoreRules {
            rules,
            file: Some(file.to_string()),
        })
    }

    /// Reads the ignore file that applies to a build, the way BuildKit picks
    /// it: `<Dockerfile>.dockerignore` beside the Dockerfile when that file
    /// exists (even empty), else `.dockerignore` at the context root, else
    /// no rules.
    ///
    /// `dockerfile` is the Dockerfile path as the CLI resolved it (absolute,
    /// or relative to the current directory like `docker build -f`); it may
    /// be outside the context. Pass `None` when the Dockerfile comes from
    /// stdin (`-f -`): only the context's `.dockerignore` applies then.
    ///
    /// Whatever the rules say, the Dockerfile and the ignore file still
    /// reach the builder: BuildKit reads them through a separate channel
    /// from the context, and so does berth's builder. The rules only decide
    /// what `COPY`/`ADD` can see.
    pub fn load(
        context_dir: &Path,
        dockerfile: Option<&Path>,
    ) -> Result<IgnoreRules, ContextError> {
        if let Some(dockerfile) = dockerfile.filter(|p| *p != Path::new("-")) {
            let mut name: OsString = dockerfile.as_os_str().to_owned();
            name.push(".dockerignore");
            let beside = PathBuf::from(name);
            match fs::read(&beside) {
                Ok(bytes) => {
                    let shown = beside.display().to_string();
                    return Self::parse_named(&String::from_utf8_lossy(&bytes), &shown);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(ContextError::IgnoreFile {
                        path: beside,
                        source,
                    });
                }
            }
        }
        // BuildKit reads the root ignore file through the context itself,
        // following a symlink only as far as the context root allows.
        let Some(host) = scoped_host_path(context_dir, DOCKERIGNORE) else {
            return Ok(IgnoreRules::default());
        };
        match fs::read(&host) {
            Ok(bytes) => Self::parse_named(&String::from_utf8_lossy(&bytes), DOCKERIGNORE),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(IgnoreRules::default()),
            Err(source) => Err(ContextError::IgnoreFile {
                path: context_dir.join(DOCKERIGNORE),
                source,
            }),
        }
    }

    /// Whether `rel_path` (relative to the context root, `/`-separated) is
    /// left out of the context.
    ///
    /// `is_dir` does not change the answer: unlike `.gitignore`, a
    /// `.dockerignore` has no directory-only patterns (`dir/` is cleaned to
    /// `dir`). It is taken so callers need not care. The context root itself
    /// is never excluded.
    pub fn is_excluded(&self, rel_path: &str, is_dir: bool) -> bool {
        let _ = is_dir;
        let Some(path) = normalize(rel_path) else {
            return false;
        };
        self.decider(&path)
            .is_some_and(|i| !self.rules[i].exception)
    }

    /// Whether an excluded directory may still hold included entries, so a
    /// walk must descend into it: some exception after the pattern that
    /// excluded it could match below it (moby's "exclusions" logic, without
    /// its habit of giving up on any wildcard).
    pub fn may_include_below(&self, dir_rel_path: &str) -> bool {
        let Some(dir) = normalize(dir_rel_path) else {
            return true;
        };
        let after = self.decider(&dir).map_or(0, |i| i + 1);
        self.rules[after..]
            .iter()
            .any(|r| r.exception && r.glob.could_match_below(&dir))
    }

    /// Whether the entry would be missing from the context BuildKit sees:
    /// excluded, and (for a directory) with nothing below it re-included.
    pub(crate) fn hides(&self, rel_path: &str, is_dir: bool) -> bool {
        self.is_excluded(rel_path, is_dir) && !(is_dir && self.may_include_below(rel_path))
    }

    /// Whether there are no patterns at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The ignore file these rules came from, as shown in messages
    /// (`.dockerignore`, `build/app.Dockerfile.dockerignore`); `None` when
    /// there was none.
    pub fn file(&self) -> Option<&str> {
        self.file.as_deref()
    }

    /// The cleaned patterns, `!` kept on exceptions, in file order.
    pub fn patterns(&self) -> impl Iterator<Item = String> + '_ {
        self.rules.iter().map(|r| {
            if r.exception {
                format!("!{}", r.pattern)
            } else {
                r.pattern.clone()
            }
        })
    }

    /// Index of the last rule matching the path or a parent of it.
    fn decider(&self, path: &str) -> Option<usize> {
        self.rules
            .iter()
            .rposition(|r| r.glob.matches_self_or_parent(path))
    }
}

/// Cleans a context-relative path; `None` for the context root.
fn normalize(rel_path: &str) -> Option<String> {
    let cleaned = clean(rel_path);
    let path = cleaned.trim_start_matches('/');
    if path.is_empty() || path == "." {
        None
    } else {
        Some(path.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_all_like_moby() {
        // moby/patternmatcher ignorefile_test.go TestReadAll, less the two
        // "!" lines (errors here, as in patternmatcher.New).
        let text =
            "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n";
        let rules = IgnoreRules::parse(text).unwrap();
        let got: Vec<String> = rules.patterns().collect();
        assert_eq!(
            got,
            [
                "test1",
                "test2",
                "a/file/here",
                "lastfile",
                "!inverted/abs/path"
            ]
        );
    }

    #[test]
    fn bom_crlf_and_hash_after_space() {
        let rules = IgnoreRules::parse("\u{feff}a\r\n  #b\r\n#c\n").unwrap();
        let got: Vec<String> = rules.patterns().collect();
        assert_eq!(got, ["a", "#b"]);
    }

    #[test]
    fn lone_bang_is_an_error_naming_the_line() {
        let err = IgnoreRules::parse("a\n\n! \n").unwrap_err().to_string();
        assert!(
            err.starts_with(".dockerignore:3: invalid pattern \"!\""),
            "{err}"
        );
    }
}
