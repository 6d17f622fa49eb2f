//! The build context: `.dockerignore` semantics (checked against moby's
//! documented cases and a port of its matcher), the context walk, COPY
//! source resolution and ignore-file precedence.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use berth_builder::context::{
    ContextError, EntryKind, IgnoreRules, resolve_source, resolve_source_with_rules, walk,
};
use proptest::prelude::*;
use tempfile::TempDir;

fn rules(text: &str) -> IgnoreRules {
    IgnoreRules::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn excluded(patterns: &[&str], path: &str) -> bool {
    rules(&patterns.join("\n")).is_excluded(path, false)
}

/// Checks rows of (patterns, path, excluded?).
fn assert_table(cases: &[(&[&str], &str, bool)]) {
    for &(patterns, path, want) in cases {
        assert_eq!(
            excluded(patterns, path),
            want,
            "patterns {patterns:?} path {path:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Patterns
// ---------------------------------------------------------------------------

/// moby/patternmatcher `TestMatches`, read through `MatchesOrParentMatches`
/// (what BuildKit applies): `true` where moby expects exact or inexact.
/// Cases whose text is `/` are left out: the context root is never
/// excluded here (see `root_is_never_excluded`).
#[test]
fn moby_match_table() {
    let cases: &[(&str, &str, bool)] = &[
        ("**", "file", true),
        ("**", "file/", true),
        ("**/", "file", true),
        ("**/", "file/", true),
        ("**", "dir/file", true),
        ("**/", "dir/file", true),
        ("**", "dir/file/", true),
        ("**/", "dir/file/", true),
        ("**/**", "dir/file", true),
        ("**/**", "dir/file/", true),
        ("dir/**", "dir/file", true),
        ("dir/**", "dir/file/", true),
        ("dir/**", "dir/dir2/file", true),
        ("dir/**", "dir/dir2/file/", true),
        ("**/dir", "dir", true),
        ("**/dir", "dir/file", true),
        ("**/dir2/*", "dir/dir2/file", true),
        ("**/dir2/*", "dir/dir2/file/", true),
        ("**/dir2/**", "dir/dir2/dir3/file", true),
        ("**/dir2/**", "dir/dir2/dir3/file/", true),
        ("**file", "file", true),
        ("**file", "dir/file", true),
        ("**/file", "dir/file", true),
        ("**file", "dir/dir/file", true),
        ("**/file", "dir/dir/file", true),
        ("**/file*", "dir/dir/file", true),
        ("**/file*", "dir/dir/file.txt", true),
        ("**/file*txt", "dir/dir/file.txt", true),
        ("**/file*.txt", "dir/dir/file.txt", true),
        ("**/file*.txt*", "dir/dir/file.txt", true),
        ("**/**/*.txt", "dir/dir/file.txt", true),
        ("**/**/*.txt2", "dir/dir/file.txt", false),
        ("**/*.txt", "file.txt", true),
        ("**/**/*.txt", "file.txt", true),
        ("a**/*.txt", "a/file.txt", true),
        ("a**/*.txt", "a/dir/file.txt", true),
        ("a**/*.txt", "a/dir/dir/file.txt", true),
        ("a/*.txt", "a/dir/file.txt", false),
        ("a/*.txt", "a/file.txt", true),
        ("a/*.txt**", "a/file.txt", true),
        ("a[b-d]e", "ae", false),
        ("a[b-d]e", "ace", true),
        ("a[b-d]e", "aae", false),
        ("a[^b-d]e", "aze", true),
        (".*", ".foo", true),
        (".*", "foo", false),
        ("abc.def", "abcdef", false),
        ("abc.def", "abc.def", true),
        ("abc.def", "abcZdef", false),
        ("abc?def", "abcZdef", true),
        ("abc?def", "abcdef", false),
        ("**/foo/bar", "foo/bar", true),
        ("**/foo/bar", "dir/foo/bar", true),
        ("**/foo/bar", "dir/dir2/foo/bar", true),
        ("abc/**", "abc", false),
        ("abc/**", "abc/def", true),
        ("abc/**", "abc/def/ghi", true),
        ("**/.foo", ".foo", true),
        ("**/.foo", "bar.foo", false),
        ("a(b)c/def", "a(b)c/def", true),
        ("a(b)c/def", "a(b)c/xyz", false),
        ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
        (
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            true,
        ),
        (
            "dist/*.whl",
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            true,
        ),
        ("a\\\\", "a\\", true),
        ("a\\*b", "a*b", true),
    ];
    for &(pattern, path, want) in cases {
        assert_eq!(
            excluded(&[pattern], path),
            want,
            "pattern {pattern:?} path {path:?}"
        );
    }
}

/// moby's multi-pattern cases and its folder/exception cases.
#[test]
fn moby_multi_pattern_cases() {
    let cases: &[(&[&str], &str, bool)] = &[
        (&["**", "!util/docker/web"], "util/docker/web/foo", false),
        (
            &["**", "!util/docker/web", "util/docker/web/foo"],
            "util/docker/web/foo",
            true,
        ),
        (
            &[
                "**",
                "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            ],
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            false,
        ),
        (
            &["**", "!dist/*.whl"],
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            false,
        ),
        (&["*"], "fileutils.go", true),
        (&["*.go"], "fileutils.go", true),
        (&["!fileutils.go", "*.go"], "fileutils.go", true),
        (&["*.go", "!fileutils.go"], "fileutils.go", false),
        (&["docs", "!docs/README.md"], "docs/README.md", false),
        (&["docs/", "!docs/README.md"], "docs/README.md", false),
        (&["docs/*", "!docs/README.md"], "docs/README.md", false),
        (&[], "/any/path/there", false),
    ];
    assert_table(cases);
}

/// The documented behaviours, one line each.
#[test]
fn documented_behaviour_table() {
    let cases: &[(&[&str], &str, bool)] = &[
        // `*` is one path component, but a match on a directory covers
        // everything below it.
        (&["*"], "a", true),
        (&["*"], "a/b/c", true),
        (&["*/temp*"], "somedir/temporary.txt", true),
        (&["*/temp*"], "temp", false),
        (&["*/temp*"], "a/b/temp", false),
        (&["*/*/temp*"], "a/b/temp.x", true),
        (&["temp?"], "temp1", true),
        (&["temp?"], "temp12", false),
        // `**` spans any number of directories, zero included.
        (&["**/*.go"], "main.go", true),
        (&["**/*.go"], "a/b/c/main.go", true),
        (&["**/*.go"], "a/b/main.rs", false),
        // Patterns are anchored at the root, unlike .gitignore.
        (&["abc"], "x/abc", false),
        (&["abc"], "abc/x", true),
        // `dir` and `dir/` are the same pattern (no directory-only rules).
        (&["dir/"], "dir", true),
        (&["dir/"], "dir/file", true),
        (&["dir"], "dir/file", true),
        // A leading `/` is the context root.
        (&["/abs"], "abs", true),
        (&["/abs/x"], "abs/x", true),
        (&["! /abs", "*"], "abs", true),
        (&["*", "! /abs"], "abs", false),
        // `..` and `.` are cleaned; a pattern that still climbs out matches
        // nothing inside the context.
        (&["a/../b"], "b", true),
        (&["a/../b"], "a", false),
        (&["/../b"], "b", true),
        (&["./b/./c"], "b/c", true),
        (&["../b"], "b", false),
        // Character classes, negation, escapes.
        (&["[a-c]?.txt"], "b1.txt", true),
        (&["[a-c]?.txt"], "d1.txt", false),
        (&["[^a-c]*"], "d", true),
        (&["[^a-c]*"], "a", false),
        (&["\\[x\\]"], "[x]", true),
        (&["\\!important"], "!important", true),
        (&["a\\?"], "a?", true),
        (&["a\\?"], "ab", false),
        // Last match wins, exceptions re-include, later patterns re-exclude.
        (&["*.md", "!README.md"], "README.md", false),
        (&["*.md", "!README.md", "README*"], "README.md", true),
        (&["!README.md", "*.md"], "README.md", true),
        (
            &["docs", "!docs/keep", "docs/keep/tmp"],
            "docs/keep/x",
            false,
        ),
        (
            &["docs", "!docs/keep", "docs/keep/tmp"],
            "docs/keep/tmp/y",
            true,
        ),
        // "Last match" includes matching through a parent directory.
        (&["docs", "!docs/README.md", "docs"], "docs/README.md", true),
        // moby: `**` then plain text is a string-suffix test.
        (&["**.log"], "a/b/c.log", true),
        (&["**.log"], "c.log", true),
        // Comments and blank lines.
        (&["# *", "", "x"], "y", false),
        (&["  # y"], "# y", true),
    ];
    assert_table(cases);
}

#[test]
fn root_is_never_excluded() {
    let r = rules("*\n**\n.\n/");
    for root in ["", ".", "/", "./"] {
        assert!(!r.is_excluded(root, true), "{root:?}");
    }
}

#[test]
fn invalid_patterns_name_the_line() {
    let cases: &[(&str, &str)] = &[
        (
            "ok\n#c\n[\n",
            ".dockerignore:3: invalid pattern \"[\": unterminated character class",
        ),
        (
            "a[\n",
            ".dockerignore:1: invalid pattern \"a[\": unterminated",
        ),
        (
            "x\n!\n",
            ".dockerignore:2: invalid pattern \"!\": an exception needs a pattern",
        ),
        ("x\n  !   \n", ".dockerignore:2: invalid pattern \"!\""),
        (
            "[]a]",
            ".dockerignore:1: invalid pattern \"[]a]\": ']' must be escaped",
        ),
        (
            "[x-]",
            ".dockerignore:1: invalid pattern \"[x-]\": ']' must be escaped",
        ),
        ("[-x]", "'-' must be escaped"),
        ("[a-b-c]", "'-' must be escaped"),
        ("foo\\", "a trailing '\\' escapes nothing"),
        ("[z-a]", "character range 'z-a' is reversed (write 'a-z')"),
    ];
    for &(text, want) in cases {
        let err = IgnoreRules::parse(text).expect_err(text).to_string();
        assert!(err.contains(want), "{text:?}: got {err:?}, want {want:?}");
    }
    let err = IgnoreRules::parse_named("\n\n\n[", "build/app.Dockerfile.dockerignore")
        .expect_err("bad")
        .to_string();
    assert!(
        err.starts_with("build/app.Dockerfile.dockerignore:4: "),
        "{err}"
    );
}

#[test]
fn may_include_below_follows_exceptions() {
    let r = rules("node_modules\ndocs\n!docs/README.md\nbuild\n!build/**/*.txt\nvendor\n!*.md");
    assert!(!r.may_include_below("node_modules"));
    assert!(r.may_include_below("docs"));
    assert!(!r.may_include_below("docs/img"));
    assert!(r.may_include_below("build"));
    assert!(r.may_include_below("build/a/b"));
    // `*.md` only matches at the top level, so nothing in vendor/ can come
    // back.
    assert!(!r.may_include_below("vendor"));
    // An exception before the pattern that excludes cannot help.
    let r = rules("!keep/x\nkeep");
    assert!(!r.may_include_below("keep"));
}

// ---------------------------------------------------------------------------
// A port of moby's matcher, as a differential oracle
// ---------------------------------------------------------------------------

#[derive(Debug, PartialEq)]
enum MobyKind {
    Exact,
    Prefix,
    Suffix,
    Regexp,
}

/// moby/patternmatcher `Pattern.compile` + `match` for '/' separators.
fn moby_pattern(cleaned: &str) -> impl Fn(&str) -> bool + use<> {
    let chars: Vec<char> = cleaned.chars().collect();
    let mut reg = String::from("^");
    let mut kind = MobyKind::Exact;
    let mut i = 0;
    let mut iteration = 0;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        if ch == '*' {
            if chars.get(i) == Some(&'*') {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i == chars.len() {
                    if kind == MobyKind::Exact {
                        kind = MobyKind::Prefix;
                    } else {
                        reg.push_str(".*");
                        kind = MobyKind::Regexp;
                    }
                } else {
                    reg.push_str("(.*/)?");
                    kind = MobyKind::Regexp;
                }
                if iteration == 0 {
                    kind = MobyKind::Suffix;
                }
            } else {
                reg.push_str("[^/]*");
                kind = MobyKind::Regexp;
            }
        } else if ch == '?' {
            reg.push_str("[^/]");
            kind = MobyKind::Regexp;
        } else if ".+()|{}$".contains(ch) {
            reg.push('\\');
            reg.push(ch);
        } else if ch == '\\' {
            if i < chars.len() {
                reg.push('\\');
                reg.push(chars[i]);
                i += 1;
                kind = MobyKind::Regexp;
            } else {
                reg.push_str("\\\\");
            }
        } else if ch == '[' || ch == ']' {
            reg.push(ch);
            kind = MobyKind::Regexp;
        } else {
            reg.push(ch);
        }
        iteration += 1;
    }
    reg.push('$');
    let re = regex::Regex::new(&reg).unwrap_or_else(|e| panic!("{reg}: {e}"));
    let pattern = cleaned.to_string();
    move |path: &str| match kind {
        MobyKind::Exact => path == pattern,
        MobyKind::Prefix => path.starts_with(&pattern[..pattern.len() - 2]),
        MobyKind::Suffix => {
            let suffix = &pattern[2..];
            path.ends_with(suffix) || suffix.strip_prefix('/').is_some_and(|s| path == s)
        }
        MobyKind::Regexp => re.is_match(path),
    }
}

type MobyPattern = (bool, Box<dyn Fn(&str) -> bool>);

/// moby `MatchesOrParentMatches`, skip logic included.
fn moby_matches_or_parent(patterns: &[String], file: &str) -> bool {
    let compiled: Vec<MobyPattern> = patterns
        .iter()
        .map(|p| match p.strip_prefix('!') {
            Some(rest) => (
                true,
                Box::new(moby_pattern(rest)) as Box<dyn Fn(&str) -> bool>,
            ),
            None => (
                false,
                Box::new(moby_pattern(p)) as Box<dyn Fn(&str) -> bool>,
            ),
        })
        .collect();
    let parents: Vec<&str> = match file.rfind('/') {
        Some(i) => file[..i].split('/').collect(),
        None => Vec::new(),
    };
    let mut matched = false;
    for (exclusion, m) in &compiled {
        if *exclusion != matched {
            continue;
        }
        let mut hit = m(file);
        if !hit {
            for n in 1..=parents.len() {
                if m(&parents[..n].join("/")) {
                    hit = true;
                    break;
                }
            }
        }
        if hit {
            matched = !exclusion;
        }
    }
    matched
}

fn pattern_strategy() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("a"),
        Just("b"),
        Just("."),
        Just("/"),
        Just("*"),
        Just("**"),
        Just("?"),
        Just("[ab]"),
        Just("[^a]"),
        Just("\\*"),
        Just("x"),
    ];
    (any::<bool>(), prop::collection::vec(piece, 1..7)).prop_map(|(bang, pieces)| {
        let body = pieces.concat();
        if bang { format!("!{body}") } else { body }
    })
}

fn path_strategy() -> impl Strategy<Value = String> {
    let component = "[ab.*x]{1,3}".prop_filter("not . or ..", |c| c != "." && c != "..");
    prop::collection::vec(component, 1..5).prop_map(|parts| parts.join("/"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    /// Our matcher agrees with a line-by-line port of moby's regexp-based
    /// one on random patterns and paths (within the syntax both read the
    /// same way: no `*`/`?` inside classes, no `\` before a letter).
    #[test]
    fn agrees_with_moby(patterns in prop::collection::vec(pattern_strategy(), 1..4), path in path_strategy()) {
        let text = patterns.join("\n");
        let parsed = match IgnoreRules::parse(&text) {
            Ok(r) => r,
            Err(e) => {
                // Only a lone "!" (e.g. "!/" cleaned) can fail here.
                prop_assert!(e.to_string().contains("exception needs a pattern"), "{}", e);
                return Ok(());
            }
        };
        let cleaned: Vec<String> = parsed.patterns().collect();
        prop_assert_eq!(
            parsed.is_excluded(&path, false),
            moby_matches_or_parent(&cleaned, &path),
            "patterns {:?} (cleaned {:?}) path {:?}", patterns, cleaned, path
        );
    }
}

// ---------------------------------------------------------------------------
// Walking a real tree
// ---------------------------------------------------------------------------

fn write(root: &Path, rel: &str, body: &str) {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, body).unwrap();
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo touches nothing else.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
    assert_eq!(rc, 0, "mkfifo {}", path.display());
}

fn names(entries: &[berth_builder::context::ContextEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.rel_path.as_str()).collect()
}

/// A context with nested exclusions, exceptions inside excluded
/// directories, symlinks in and out, and a FIFO.
fn sample_context() -> (TempDir, PathBuf) {
    let tmp = TempDir::new().unwrap();
    let ctx = tmp.path().join("ctx");
    for (rel, body) in [
        ("Dockerfile", "FROM scratch\n"),
        ("app.go", "package main\n"),
        ("README.md", "readme\n"),
        ("secret.key", "k\n"),
        ("docs/README.md", "docs readme\n"),
        ("docs/guide.md", "guide\n"),
        ("docs/img/logo.png", "png\n"),
        ("node_modules/pkg/index.js", "js\n"),
        ("node_modules/pkg/README.md", "pkg readme\n"),
        ("build/out.bin", "bin\n"),
        ("build/keep/important.txt", "keep\n"),
        ("build/keep/scratch.tmp", "tmp\n"),
        ("build/keep/deeper/note.txt", "note\n"),
        ("src/main.go", "package main\n"),
        ("src/vendor/lib.go", "package lib\n"),
        ("a-b", "dash sorts before slash\n"),
    ] {
        write(&ctx, rel, body);
    }
    write(tmp.path(), "outside.txt", "outside\n");
    write(tmp.path(), "outside-dir/leak.txt", "leak\n");
    fs::create_dir_all(ctx.join("a")).unwrap();
    write(&ctx, "a/b", "nested\n");
    symlink("src/main.go", ctx.join("link-in")).unwrap();
    symlink("/etc/passwd", ctx.join("link-abs")).unwrap();
    symlink("../outside.txt", ctx.join("link-up")).unwrap();
    symlink(tmp.path().join("outside-dir"), ctx.join("link-dir-out")).unwrap();
    symlink("nowhere", ctx.join("link-dangling")).unwrap();
    mkfifo(&ctx.join("fifo"));
    let ignore = "\
# build outputs
*.key
docs
!docs/README.md
node_modules
build
!build/keep/**
build/keep/*.tmp
**/vendor
Dockerfile
";
    write(&ctx, ".dockerignore", ignore);
    (tmp, ctx)
}

#[test]
fn walk_applies_rules_and_keeps_symlinks() {
    let (_tmp, ctx) = sample_context();
    let r = IgnoreRules::load(&ctx, None).unwrap();
    let entries = walk(&ctx, &r).unwrap();
    assert_eq!(
        names(&entries),
        [
            ".dockerignore",
            "README.md",
            "a",
            "a-b",
            "a/b",
            "app.go",
            "build",
            "build/keep",
            "build/keep/deeper",
            "build/keep/deeper/note.txt",
            "build/keep/important.txt",
            "docs",
            "docs/README.md",
            "fifo",
            "link-abs",
            "link-dangling",
            "link-dir-out",
            "link-in",
            "link-up",
            "src",
            "src/main.go",
        ]
    );
    let kind = |rel: &str| {
        entries
            .iter()
            .find(|e| e.rel_path == rel)
            .map(|e| e.kind.clone())
            .unwrap()
    };
    assert_eq!(kind("a"), EntryKind::Dir);
    assert_eq!(kind("app.go"), EntryKind::File);
    assert_eq!(kind("fifo"), EntryKind::Other);
    assert_eq!(
        kind("link-abs"),
        EntryKind::Symlink {
            target: PathBuf::from("/etc/passwd")
        }
    );
    assert_eq!(
        kind("link-up"),
        EntryKind::Symlink {
            target: PathBuf::from("../outside.txt")
        }
    );
    assert!(matches!(kind("link-dir-out"), EntryKind::Symlink { .. }));
    // Metadata is lstat: the link itself, never what it points at.
    for e in &entries {
        if let EntryKind::Symlink { .. } = e.kind {
            assert!(e.metadata.file_type().is_symlink(), "{}", e.rel_path);
        }
    }
    // Excluded directories that hold re-included files are sent as the
    // directories they are.
    assert_eq!(kind("build"), EntryKind::Dir);
    assert_eq!(kind("docs"), EntryKind::Dir);
}

#[test]
fn walk_without_rules_lists_everything_once() {
    let (_tmp, ctx) = sample_context();
    let entries = walk(&ctx, &IgnoreRules::default()).unwrap();
    let got = names(&entries);
    let mut sorted = got.clone();
    sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    sorted.dedup();
    assert_eq!(got, sorted, "sorted bytewise, no duplicates");
    assert!(got.contains(&"Dockerfile"));
    assert!(got.contains(&"node_modules/pkg/index.js"));
    assert!(!got.iter().any(|p| p.starts_with("link-dir-out/")));
    assert_eq!(got.len(), 34);
}

#[test]
fn walk_excluding_everything_but_exceptions() {
    let (_tmp, ctx) = sample_context();
    let r = rules("*\n!src/main.go\n!**/important.txt");
    let entries = walk(&ctx, &r).unwrap();
    assert_eq!(
        names(&entries),
        [
            "build",
            "build/keep",
            "build/keep/important.txt",
            "src",
            "src/main.go"
        ]
    );
}

#[test]
fn walk_rejects_a_missing_or_file_context() {
    let tmp = TempDir::new().unwrap();
    let err = walk(&tmp.path().join("nope"), &IgnoreRules::default()).unwrap_err();
    assert!(err.to_string().contains("cannot be opened"), "{err}");
    write(tmp.path(), "f", "x");
    let err = walk(&tmp.path().join("f"), &IgnoreRules::default()).unwrap_err();
    assert!(err.to_string().contains("is not a directory"), "{err}");
}

#[test]
fn walk_reports_non_utf8_names_unless_ignored() {
    let tmp = TempDir::new().unwrap();
    let ctx = tmp.path();
    write(ctx, "ok", "x");
    let bad = std::ffi::OsStr::from_bytes(b"bad\xffname");
    fs::write(ctx.join(bad), "x").unwrap();
    let err = walk(ctx, &IgnoreRules::default()).unwrap_err();
    assert!(matches!(err, ContextError::NonUtf8Name { .. }), "{err}");
    assert!(err.to_string().contains(".dockerignore"), "{err}");
    let entries = walk(ctx, &rules("bad*")).unwrap();
    assert_eq!(names(&entries), ["ok"]);
}

// ---------------------------------------------------------------------------
// Unreadable files: as root, permission bits do not stop reads, so the test
// drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from this thread only
// (capabilities are per thread; each test runs on its own thread).
// ---------------------------------------------------------------------------

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_VERSION_3: u32 = 0x2008_0522;
const DAC_BITS: u32 = (1 << 1) | (1 << 2);

fn caps_get() -> Option<[CapData; 2]> {
    let mut header = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and a two-element data array, as capget(2) requires.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    (rc == 0).then_some(data)
}

fn caps_set(data: &[CapData; 2]) -> bool {
    let mut header = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    // SAFETY: as above; pid 0 is the calling thread.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    rc == 0
}

/// Restores the thread's capabilities when dropped.
struct DacDropped(Option<[CapData; 2]>);

impl DacDropped {
    fn new() -> DacDropped {
        let Some(saved) = caps_get() else {
            return DacDropped(None);
        };
        let mut lowered = saved;
        lowered[0].effective &= !DAC_BITS;
        if caps_set(&lowered) {
            DacDropped(Some(saved))
        } else {
            DacDropped(None)
        }
    }
}

impl Drop for DacDropped {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            caps_set(saved);
        }
    }
}

#[test]
fn unreadable_file_is_named() {
    let tmp = TempDir::new().unwrap();
    let ctx = tmp.path().join("ctx");
    write(&ctx, "app.go", "x");
    write(&ctx, "secret.key", "k");
    write(&ctx, "locked/inner.txt", "x");
    fs::set_permissions(ctx.join("secret.key"), fs::Permissions::from_mode(0o000)).unwrap();

    {
        let _dropped = DacDropped::new();
        if fs::read(ctx.join("secret.key")).is_ok() {
            eprintln!("skipped: this thread can read mode-000 files even without DAC capabilities");
            return;
        }
        let err = walk(&ctx, &IgnoreRules::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot read build context file \"secret.key\": Permission denied \
             (add it to .dockerignore if it need not be sent)"
        );
        // Ignored, it is never opened.
        let entries = walk(&ctx, &rules("*.key")).unwrap();
        assert_eq!(names(&entries), ["app.go", "locked", "locked/inner.txt"]);
    }

    fs::set_permissions(ctx.join("secret.key"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(ctx.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
    {
        let _dropped = DacDropped::new();
        let err = walk(&ctx, &IgnoreRules::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot read build context directory \"locked\": Permission denied \
             (add it to .dockerignore if it need not be sent)"
        );
        // An excluded directory is not read, even with exceptions that
        // might have matched inside it.
        let entries = walk(&ctx, &rules("locked\n!locked/*.txt")).unwrap();
        assert_eq!(names(&entries), ["app.go", "secret.key"]);
    }
    fs::set_permissions(ctx.join("locked"), fs::Permissions::from_mode(0o755)).unwrap();
}

// ---------------------------------------------------------------------------
// COPY sources
// ---------------------------------------------------------------------------

fn source_context() -> (TempDir, PathBuf) {
    let tmp = TempDir::new().unwrap();
    let ctx = tmp.path().join("ctx");
    for rel in [
        "a.txt",
        "b.txt",
        "c.md",
        "star*",
        "dir/x.txt",
        "dir/y.md",
        "dir/sub/z.txt",
        "etc/hostname",
        "outside",
    ] {
        write(&ctx, rel, rel);
    }
    write(tmp.path(), "outside", "the real outside");
    write(tmp.path(), "etc/hostname", "the host's");
    symlink("/etc", ctx.join("abs-link")).unwrap();
    symlink("../../outside", ctx.join("up-link")).unwrap();
    symlink("dir", ctx.join("dirlink")).unwrap();
    symlink("loop2", ctx.join("loop1")).unwrap();
    symlink("loop1", ctx.join("loop2")).unwrap();
    symlink("dir/y.md", ctx.join("ylink")).unwrap();
    symlink("missing", ctx.join("dangling")).unwrap();
    (tmp, ctx)
}

fn rels(found: &[berth_builder::context::SourcePath]) -> Vec<&str> {
    found.iter().map(|s| s.rel_path.as_str()).collect()
}

#[test]
fn sources_must_stay_inside_the_context() {
    let (_tmp, ctx) = source_context();
    for src in [
        "../x",
        "..",
        "/../x",
        "a/../../x",
        "./../outside",
        "dir/../../outside",
        "../*",
    ] {
        let err = resolve_source(&ctx, src).unwrap_err();
        assert!(
            matches!(err, ContextError::OutsideContext { .. }),
            "{src}: {err}"
        );
        assert!(
            err.to_string()
                .contains("sources must be inside the build context"),
            "{err}"
        );
    }
}

#[test]
fn plain_sources_resolve_lexically_then_within_the_root() {
    let (_tmp, ctx) = source_context();
    let one = |src: &str| {
        let mut found = resolve_source(&ctx, src).unwrap_or_else(|e| panic!("{src}: {e}"));
        assert_eq!(found.len(), 1);
        found.remove(0)
    };
    let s = one("/a.txt");
    assert_eq!(
        (s.rel_path.as_str(), s.resolved_rel.as_str()),
        ("a.txt", "a.txt")
    );
    assert_eq!(s.host_path, ctx.join("a.txt"));
    assert_eq!(one("./dir/../a.txt").rel_path, "a.txt");
    let root = one(".");
    assert_eq!(
        (root.rel_path.as_str(), root.host_path.as_path()),
        (".", ctx.as_path())
    );
    assert_eq!(one("/").rel_path, ".");

    // An absolute link means the context root, not the host's `/`.
    let s = one("abs-link/hostname");
    assert_eq!(s.rel_path, "abs-link/hostname");
    assert_eq!(s.resolved_rel, "etc/hostname");
    assert_eq!(fs::read_to_string(&s.host_path).unwrap(), "etc/hostname");
    // `..` in a link target stops at the root.
    let s = one("up-link");
    assert_eq!(s.resolved_rel, "outside");
    assert_eq!(fs::read_to_string(&s.host_path).unwrap(), "outside");
    // Directory links are followed, and the name as written is kept.
    let s = one("dirlink/x.txt");
    assert_eq!(
        (s.rel_path.as_str(), s.resolved_rel.as_str()),
        ("dirlink/x.txt", "dir/x.txt")
    );
    // Escaped wildcard characters make a plain path.
    assert!(resolve_source(&ctx, "star\\*").is_err());
}

#[test]
fn source_errors_say_what_is_wrong() {
    let (_tmp, ctx) = source_context();
    let err = resolve_source(&ctx, "missing.txt").unwrap_err();
    assert_eq!(
        err.to_string(),
        "COPY source \"missing.txt\" not found in the build context: \"missing.txt\" does not \
         exist (paths are relative to the context root)"
    );
    let err = resolve_source(&ctx, "dangling").unwrap_err();
    assert!(
        err.to_string().contains("\"missing\" does not exist"),
        "{err}"
    );
    let err = resolve_source(&ctx, "loop1").unwrap_err();
    assert!(matches!(err, ContextError::SymlinkLoop { .. }), "{err}");
    let err = resolve_source(&ctx, "a.txt/x").unwrap_err();
    assert!(matches!(err, ContextError::NotADirectory { .. }), "{err}");
    let err = resolve_source(&ctx, "nomatch*").unwrap_err();
    assert!(matches!(err, ContextError::NoMatch { .. }), "{err}");
    let err = resolve_source(&ctx, "dir/[").unwrap_err();
    assert!(
        matches!(err, ContextError::InvalidSourcePattern { .. }),
        "{err}"
    );
}

#[test]
fn wildcard_sources_expand_sorted() {
    let (_tmp, ctx) = source_context();
    let expand = |src: &str| -> Vec<String> {
        let found = resolve_source(&ctx, src).unwrap_or_else(|e| panic!("{src}: {e}"));
        rels(&found).into_iter().map(String::from).collect()
    };
    assert_eq!(expand("*.txt"), ["a.txt", "b.txt"]);
    assert_eq!(expand("/*.txt"), ["a.txt", "b.txt"]);
    assert_eq!(expand("dir/*"), ["dir/sub", "dir/x.txt", "dir/y.md"]);
    assert_eq!(expand("[ab].txt"), ["a.txt", "b.txt"]);
    assert_eq!(expand("?.md"), ["c.md"]);
    assert_eq!(expand("sta?\\*"), ["star*"]);
    // Only real directories are searched below a wildcard, as BuildKit's
    // walk does: `dirlink` is not entered.
    assert_eq!(expand("*/*.txt"), ["dir/x.txt"]);
    // Before the first wildcard the path is plain, links followed.
    assert_eq!(expand("dirlink/*.txt"), ["dirlink/x.txt"]);
    // `**` is not special in COPY: it is `*`.
    assert_eq!(expand("**.md"), ["c.md"]);
    // A matched link is followed within the context.
    let found = resolve_source(&ctx, "up-*").unwrap();
    assert_eq!(found[0].resolved_rel, "outside");
}

#[test]
fn sources_honour_the_ignore_rules() {
    let (_tmp, ctx) = source_context();
    let r = IgnoreRules::parse("*.md\n!c.md\ndir\n!dir/sub").unwrap();
    let found = resolve_source_with_rules(&ctx, "dir/*", &r).unwrap();
    assert_eq!(rels(&found), ["dir/sub"]);
    let found = resolve_source_with_rules(&ctx, "*.md", &r).unwrap();
    assert_eq!(rels(&found), ["c.md"]);
    let err = resolve_source_with_rules(&ctx, "dir/y.md", &r).unwrap_err();
    assert_eq!(
        err.to_string(),
        "COPY source \"dir/y.md\": \"dir/y.md\" is excluded by .dockerignore (remove the \
         pattern that matches it, or add the exception \"!dir/y.md\")"
    );
    // Through a symlink to an excluded file: still excluded.
    let err = resolve_source_with_rules(&ctx, "ylink", &r).unwrap_err();
    assert!(matches!(err, ContextError::Excluded { .. }), "{err}");
    // An excluded directory with a re-included child is in the context.
    let found = resolve_source_with_rules(&ctx, "dir", &r).unwrap();
    assert_eq!(rels(&found), ["dir"]);
    let err = resolve_source_with_rules(&ctx, "nomatch/../*.key", &r).unwrap_err();
    assert!(matches!(err, ContextError::NoMatch { .. }), "{err}");
}

// ---------------------------------------------------------------------------
// Which ignore file applies
// ---------------------------------------------------------------------------

#[test]
fn dockerfile_dockerignore_takes_precedence() {
    let tmp = TempDir::new().unwrap();
    let ctx = tmp.path().join("ctx");
    write(&ctx, ".dockerignore", "from-root\n");
    write(&ctx, "build/app.Dockerfile", "FROM scratch\n");
    write(&ctx, "build/app.Dockerfile.dockerignore", "from-beside\n");
    write(&ctx, "build/plain.Dockerfile", "FROM scratch\n");
    write(&ctx, "build/empty.Dockerfile", "FROM scratch\n");
    write(&ctx, "build/empty.Dockerfile.dockerignore", "");

    let r = IgnoreRules::load(&ctx, Some(&ctx.join("build/app.Dockerfile"))).unwrap();
    assert!(r.is_excluded("from-beside", false));
    assert!(!r.is_excluded("from-root", false));
    let shown = ctx.join("build/app.Dockerfile.dockerignore");
    assert_eq!(r.file(), Some(shown.display().to_string().as_str()));

    // No file beside the Dockerfile: the context's .dockerignore.
    let r = IgnoreRules::load(&ctx, Some(&ctx.join("build/plain.Dockerfile"))).unwrap();
    assert!(r.is_excluded("from-root", false));
    assert_eq!(r.file(), Some(".dockerignore"));

    // An empty one beside still wins: it exists.
    let r = IgnoreRules::load(&ctx, Some(&ctx.join("build/empty.Dockerfile"))).unwrap();
    assert!(r.is_empty());
    assert!(!r.is_excluded("from-root", false));

    // -f - (stdin): only the context's file.
    for df in [None, Some(Path::new("-"))] {
        let r = IgnoreRules::load(&ctx, df).unwrap();
        assert!(r.is_excluded("from-root", false));
    }

    // -f pointing outside the context.
    write(tmp.path(), "elsewhere/Dockerfile", "FROM scratch\n");
    write(
        tmp.path(),
        "elsewhere/Dockerfile.dockerignore",
        "outside-rules\n",
    );
    let r = IgnoreRules::load(&ctx, Some(&tmp.path().join("elsewhere/Dockerfile"))).unwrap();
    assert!(r.is_excluded("outside-rules", false));

    // No ignore file anywhere: nothing excluded.
    let bare = tmp.path().join("bare");
    fs::create_dir_all(&bare).unwrap();
    let r = IgnoreRules::load(&bare, Some(&bare.join("Dockerfile"))).unwrap();
    assert!(r.is_empty() && r.file().is_none());
}

#[test]
fn ignore_file_errors_name_the_file() {
    let tmp = TempDir::new().unwrap();
    let ctx = tmp.path();
    write(ctx, "app.Dockerfile", "FROM scratch\n");
    write(ctx, "app.Dockerfile.dockerignore", "ok\n\n[oops\n");
    let err = IgnoreRules::load(ctx, Some(&ctx.join("app.Dockerfile"))).unwrap_err();
    let want = format!(
        "{}:3: invalid pattern \"[oops\": unterminated character class",
        ctx.join("app.Dockerfile.dockerignore").display()
    );
    assert!(err.to_string().starts_with(&want), "{err}");
    write(ctx, ".dockerignore", "x\n!\n");
    let err = IgnoreRules::load(ctx, None).unwrap_err();
    assert!(err.to_string().starts_with(".dockerignore:2: "), "{err}");
}

#[test]
fn root_dockerignore_symlink_stays_inside() {
    let tmp = TempDir::new().unwrap();
    let ctx = tmp.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    write(tmp.path(), "evil", "*\n");
    // Points outside: resolved against the context root, where there is no
    // such file, so no rules.
    symlink(tmp.path().join("evil"), ctx.join(".dockerignore")).unwrap();
    let r = IgnoreRules::load(&ctx, None).unwrap();
    assert!(r.is_empty());
    // Inside the context it is followed.
    fs::remove_file(ctx.join(".dockerignore")).unwrap();
    write(&ctx, "rules/ignore", "secret\n");
    symlink("rules/ignore", ctx.join(".dockerignore")).unwrap();
    let r = IgnoreRules::load(&ctx, None).unwrap();
    assert!(r.is_excluded("secret", false));
}
