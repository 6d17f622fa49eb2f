//! Glob patterns with Go `filepath.Match` syntax, compiled once and matched
//! by a small NFA over characters.
//!
//! Owns the two pattern dialects the build context needs:
//!
//! * [`Dialect::Dockerignore`]: moby/patternmatcher's reading of a
//!   `.dockerignore` line, matched against a whole `/`-separated path. `*`
//!   and `?` never cross a `/`; `**` matches any number of directories
//!   (zero included); a trailing `**` matches everything below.
//! * [`Dialect::FilepathMatch`]: plain Go `filepath.Match`, used one path
//!   component at a time for COPY wildcard sources (`**` is just `*`).
//!
//! Syntax is checked by Go's rules (`[` classes with `^` negation and
//! ranges, `\` escapes), so anything BuildKit rejects is rejected here,
//! with a reason a person can act on.

/// One compiled element of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// A literal character (escapes already removed).
    Lit(char),
    /// `?`: exactly one character other than `/`.
    AnyChar,
    /// `*`: any run of characters other than `/`.
    Star,
    /// `[...]`: one character in (or, negated, not in) the ranges. As in Go,
    /// a class may match `/`.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `**` followed by more pattern: nothing, or anything ending in `/`
    /// (moby's `(.*/)?`). Always followed by [`Tok::DirsInside`]: the
    /// group may be skipped only before it consumes anything, so it needs
    /// two NFA states.
    AnyDirs,
    /// Inside the `(.*/)?` group: anything, leaving only after a `/`.
    DirsInside,
    /// A trailing `**`: anything at all.
    Rest,
}

/// Which syntax a pattern is read with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Dockerignore,
    FilepathMatch,
}

#[derive(Debug, Clone)]
enum Matcher {
    Nfa(Vec<Tok>),
    /// moby matches a pattern that starts with `**` and is otherwise plain
    /// text (`**/foo`, `**.log`) with a string-suffix test, not a regexp.
    /// For `**/foo` that is the same thing; for `**.log` it means "any path
    /// ending in `.log`", which users rely on, so it is kept.
    Suffix(String),
}

/// A compiled glob.
#[derive(Debug, Clone)]
pub(crate) struct Glob {
    matcher: Matcher,
}

const UNTERMINATED: &str =
    "unterminated character class (close it with ']', or write '\\[' for a literal '[')";

impl Glob {
    /// Compiles `pattern`, or returns why it is not valid Go glob syntax.
    pub(crate) fn compile(pattern: &str, dialect: Dialect) -> Result<Glob, String> {
        let chars: Vec<char> = pattern.chars().collect();
        let toks = tokenize(&chars, dialect)?;
        if dialect == Dialect::Dockerignore && is_plain_suffix(&chars) {
            // Validated above; the suffix is everything after the `**`.
            let suffix: String = chars[2..].iter().collect();
            return Ok(Glob {
                matcher: Matcher::Suffix(suffix),
            });
        }
        Ok(Glob {
            matcher: Matcher::Nfa(toks),
        })
    }

    /// Whether the pattern matches all of `path`.
    pub(crate) fn matches(&self, path: &str) -> bool {
        match &self.matcher {
            Matcher::Suffix(suffix) => suffix_matches(suffix, path),
            Matcher::Nfa(toks) => {
                let mut run = Run::new(toks);
                for c in path.chars() {
                    run.step(c);
                    if run.dead() {
                        return false;
                    }
                }
                run.accepting()
            }
        }
    }

    /// Whether the pattern matches `path` or one of its parent directories
    /// (`dir` matches `dir/a/b`): moby's `MatchesOrParentMatches`.
    pub(crate) fn matches_self_or_parent(&self, path: &str) -> bool {
        match &self.matcher {
            Matcher::Suffix(suffix) => {
                // Every prefix that ends just before a '/' is a parent.
                path.match_indices('/')
                    .any(|(i, _)| suffix_matches(suffix, &path[..i]))
                    || suffix_matches(suffix, path)
            }
            Matcher::Nfa(toks) => {
                let mut run = Run::new(toks);
                for c in path.chars() {
                    if c == '/' && run.accepting() {
                        return true;
                    }
                    run.step(c);
                    if run.dead() {
                        return false;
                    }
                }
                run.accepting()
            }
        }
    }

    /// Whether some path strictly below directory `dir` could match. Errs on
    /// the side of "yes": it is used to decide whether an excluded directory
    /// must still be walked for exceptions.
    pub(crate) fn could_match_below(&self, dir: &str) -> bool {
        match &self.matcher {
            // Any path below could end with the suffix.
            Matcher::Suffix(_) => true,
            Matcher::Nfa(toks) => {
                let mut run = Run::new(toks);
                for c in dir.chars().chain(std::iter::once('/')) {
                    run.step(c);
                    if run.dead() {
                        return false;
                    }
                }
                true
            }
        }
    }
}

fn suffix_matches(suffix: &str, path: &str) -> bool {
    // moby: `strings.HasSuffix(path, suffix)`, and `**/foo` also matches `foo`.
    path.ends_with(suffix) || suffix.strip_prefix('/').is_some_and(|s| path == s)
}

/// moby's "suffix match": the pattern starts with `**` and nothing after it
/// (past one optional `/`) is special.
fn is_plain_suffix(chars: &[char]) -> bool {
    if chars.len() < 2 || chars[0] != '*' || chars[1] != '*' {
        return false;
    }
    let mut rest = &chars[2..];
    if rest.first() == Some(&'/') {
        rest = &rest[1..];
    }
    !rest
        .iter()
        .any(|c| matches!(c, '*' | '?' | '\\' | '[' | ']'))
}

fn tokenize(chars: &[char], dialect: Dialect) -> Result<Vec<Tok>, String> {
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if dialect == Dialect::Dockerignore && chars.get(i + 1) == Some(&'*') => {
                i += 2;
                // moby treats `**/` as `**`: the slash belongs to the `**`.
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i == chars.len() {
                    toks.push(Tok::Rest);
                } else {
                    toks.push(Tok::AnyDirs);
                    toks.push(Tok::DirsInside);
                }
            }
            '*' => {
                // Consecutive stars mean the same as one; keep the NFA small.
                if toks.last() != Some(&Tok::Star) {
                    toks.push(Tok::Star);
                }
                i += 1;
            }
            '?' => {
                toks.push(Tok::AnyChar);
                i += 1;
            }
            '\\' => match chars.get(i + 1) {
                Some(&c) => {
                    toks.push(Tok::Lit(c));
                    i += 2;
                }
                None => {
                    return Err(
                        "a trailing '\\' escapes nothing (write '\\\\' for a literal \
                                backslash)"
                            .to_string(),
                    );
                }
            },
            '[' => {
                let (tok, next) = parse_class(chars, i + 1)?;
                toks.push(tok);
                i = next;
            }
            c => {
                toks.push(Tok::Lit(c));
                i += 1;
            }
        }
    }
    Ok(toks)
}

/// Parses a character class whose `[` is just before `i`, by Go's rules.
fn parse_class(chars: &[char], mut i: usize) -> Result<(Tok, usize), String> {
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        if chars.get(i) == Some(&']') && !ranges.is_empty() {
            i += 1;
            break;
        }
        let (lo, next) = class_char(chars, i)?;
        i = next;
        let mut hi = lo;
        if chars.get(i) == Some(&'-') {
            let (h, next) = class_char(chars, i + 1)?;
            hi = h;
            i = next;
        }
        if lo > hi {
            // Go's filepath.Match accepts this, but moby then fails to
            // compile its regexp and every build errors; say so up front.
            return Err(format!(
                "character range '{lo}-{hi}' is reversed (write '{hi}-{lo}')"
            ));
        }
        ranges.push((lo, hi));
    }
    Ok((Tok::Class { negated, ranges }, i))
}

/// One (possibly escaped) character of a class, like Go's `getEsc`.
fn class_char(chars: &[char], i: usize) -> Result<(char, usize), String> {
    let (c, next) = match chars.get(i) {
        None => return Err(UNTERMINATED.to_string()),
        Some(&c @ ('-' | ']')) => {
            return Err(format!(
                "'{c}' must be escaped as '\\{c}' at this place in a character class"
            ));
        }
        Some('\\') => match chars.get(i + 1) {
            Some(&c) => (c, i + 2),
            None => return Err(UNTERMINATED.to_string()),
        },
        Some(&c) => (c, i + 1),
    };
    // Go: a class must be followed by more pattern (at least its `]`).
    if next >= chars.len() {
        return Err(UNTERMINATED.to_string());
    }
    Ok((c, next))
}

/// The state set of an NFA run: `states[i]` means "tokens before `i` have
/// matched"; `states[len]` is acceptance.
struct Run<'a> {
    toks: &'a [Tok],
    states: Vec<bool>,
    next: Vec<bool>,
}

impl<'a> Run<'a> {
    fn new(toks: &'a [Tok]) -> Run<'a> {
        let mut states = vec![false; toks.len() + 1];
        states[0] = true;
        let mut run = Run {
            toks,
            next: states.clone(),
            states,
        };
        close(run.toks, &mut run.states);
        run
    }

    fn step(&mut self, c: char) {
        self.next.iter_mut().for_each(|s| *s = false);
        for (i, tok) in self.toks.iter().enumerate() {
            if !self.states[i] {
                continue;
            }
            match tok {
                Tok::Lit(l) if *l == c => self.next[i + 1] = true,
                Tok::Lit(_) => {}
                Tok::AnyChar if c != '/' => self.next[i + 1] = true,
                Tok::AnyChar => {}
                Tok::Star if c != '/' => self.next[i] = true,
                Tok::Star => {}
                Tok::Class { negated, ranges } => {
                    let inside = ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
                    if inside != *negated {
                        self.next[i + 1] = true;
                    }
                }
                Tok::AnyDirs => {
                    // Entering `(.*/)?`: a '/' may close it at once.
                    self.next[i + 1] = true;
                    if c == '/' {
                        self.next[i + 2] = true;
                    }
                }
                Tok::DirsInside => {
                    self.next[i] = true;
                    if c == '/' {
                        self.next[i + 1] = true;
                    }
                }
                Tok::Rest => self.next[i] = true,
            }
        }
        close(self.toks, &mut self.next);
        std::mem::swap(&mut self.states, &mut self.next);
    }

    fn accepting(&self) -> bool {
        self.states[self.toks.len()]
    }

    fn dead(&self) -> bool {
        !self.states.iter().any(|&s| s)
    }
}

/// Adds the states reachable without consuming input: past a `*` or
/// trailing `**`, and over a whole `(.*/)?` group not yet entered. Forward
/// order suffices: every skip goes forward.
fn close(toks: &[Tok], states: &mut [bool]) {
    for (i, tok) in toks.iter().enumerate() {
        if !states[i] {
            continue;
        }
        match tok {
            Tok::Star | Tok::Rest => states[i + 1] = true,
            Tok::AnyDirs => states[i + 2] = true,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn go_match(pattern: &str, name: &str) -> Result<bool, String> {
        Glob::compile(pattern, Dialect::FilepathMatch).map(|g| g.matches(name))
    }

    /// Go's own `filepath.Match` table (as copied into moby's tests).
    #[test]
    fn go_filepath_match_table() {
        let cases: &[(&str, &str, Option<bool>)] = &[
            ("abc", "abc", Some(true)),
            ("*", "abc", Some(true)),
            ("*c", "abc", Some(true)),
            ("a*", "a", Some(true)),
            ("a*", "abc", Some(true)),
            ("a*", "ab/c", Some(false)),
            ("a*/b", "abc/b", Some(true)),
            ("a*/b", "a/c/b", Some(false)),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", Some(true)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", Some(true)),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", Some(false)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", Some(false)),
            ("a*b?c*x", "abxbbxdbxebxczzx", Some(true)),
            ("a*b?c*x", "abxbbxdbxebxczzy", Some(false)),
            ("ab[c]", "abc", Some(true)),
            ("ab[b-d]", "abc", Some(true)),
            ("ab[e-g]", "abc", Some(false)),
            ("ab[^c]", "abc", Some(false)),
            ("ab[^b-d]", "abc", Some(false)),
            ("ab[^e-g]", "abc", Some(true)),
            ("a\\*b", "a*b", Some(true)),
            ("a\\*b", "ab", Some(false)),
            ("a?b", "a☺b", Some(true)),
            ("a[^a]b", "a☺b", Some(true)),
            ("a???b", "a☺b", Some(false)),
            ("a[^a][^a][^a]b", "a☺b", Some(false)),
            ("[a-ζ]*", "α", Some(true)),
            ("*[a-ζ]", "A", Some(false)),
            ("a?b", "a/b", Some(false)),
            ("a*b", "a/b", Some(false)),
            ("[\\]a]", "]", Some(true)),
            ("[\\-]", "-", Some(true)),
            ("[x\\-]", "x", Some(true)),
            ("[x\\-]", "-", Some(true)),
            ("[x\\-]", "z", Some(false)),
            ("[\\-x]", "x", Some(true)),
            ("[\\-x]", "-", Some(true)),
            ("[\\-x]", "a", Some(false)),
            ("[]a]", "]", None),
            ("[-]", "-", None),
            ("[x-]", "x", None),
            ("[-x]", "x", None),
            ("\\", "a", None),
            ("[a-b-c]", "a", None),
            ("[", "a", None),
            ("[^", "a", None),
            ("[^bc", "a", None),
            ("a[", "a", None),
            ("a[", "ab", None),
            ("*x", "xxx", Some(true)),
        ];
        for &(pattern, name, want) in cases {
            let got = go_match(pattern, name).ok();
            assert_eq!(got, want, "Match({pattern:?}, {name:?})");
        }
    }

    /// moby's `TestMatches` cases through `MatchesExact` (no parent
    /// matching): its "inexact" cases must fail here and pass with parents.
    #[test]
    fn moby_exact_versus_parent_matches() {
        // (pattern, path, exact, with parents)
        let cases: &[(&str, &str, bool, bool)] = &[
            ("**", "file/", true, true),
            ("**/dir", "dir", true, true),
            ("**/dir", "dir/file", false, true),
            ("**/dir2/*", "dir/dir2/file", true, true),
            ("**/dir2/*", "dir/dir2/file/", false, true),
            ("**/dir2/**", "dir/dir2/dir3/file/", true, true),
            ("**file", "dir/dir/file", true, true),
            ("a**/*.txt", "a/dir/dir/file.txt", true, true),
            ("a/*.txt", "a/dir/file.txt", false, false),
            ("abc/**", "abc", false, false),
            ("**/.foo", "bar.foo", false, false),
            ("a\\\\", "a\\", true, true),
        ];
        for &(pattern, path, exact, parents) in cases {
            let g = Glob::compile(pattern, Dialect::Dockerignore).unwrap();
            assert_eq!(g.matches(path), exact, "exact {pattern:?} {path:?}");
            assert_eq!(
                g.matches_self_or_parent(path),
                parents,
                "parents {pattern:?} {path:?}"
            );
        }
    }

    #[test]
    fn reversed_range_is_an_error() {
        let err = go_match("[z-a]", "b").unwrap_err();
        assert!(err.contains("'z-a' is reversed"), "{err}");
    }

    #[test]
    fn dockerignore_double_star_forms() {
        let m = |p: &str, s: &str| {
            Glob::compile(p, Dialect::Dockerignore)
                .map(|g| g.matches(s))
                .unwrap_or_else(|e| panic!("{p}: {e}"))
        };
        assert!(m("a**b", "ab"));
        assert!(m("a**b", "ax/b"));
        // `**` not followed by '/' still needs the directory boundary: moby
        // compiles it to `(.*/)?`.
        assert!(!m("a**b", "axb"));
        assert!(m("**.log", "deep/dir/x.log"));
        assert!(m("**/**", "a/b"));
        assert!(m("***", "a/b"));
    }

    #[test]
    fn could_match_below_prunes() {
        let g = |p: &str| Glob::compile(p, Dialect::Dockerignore).unwrap();
        assert!(g("dir/keep.txt").could_match_below("dir"));
        assert!(!g("other/keep.txt").could_match_below("dir"));
        assert!(!g("*.md").could_match_below("node_modules"));
        assert!(g("**/*.md").could_match_below("node_modules"));
        assert!(g("*/x").could_match_below("anything"));
        assert!(g("**.md").could_match_below("a"));
    }
}
