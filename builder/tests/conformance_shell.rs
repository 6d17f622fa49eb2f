//! Conformance of the Dockerfile shell-word lexer with BuildKit's own test
//! data (`shared/conformance/dockerfile-shell`, see its README for the
//! formats): `envVarTest`, `wordsTest` and the tables of `lex-cases.json`.
//! Every case runs; failures are collected and listed together at the end.
//! A property test checks that no input makes the lexer panic.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};

use berth_builder::dockerfile::shell::pattern::{Pattern, reverse_pattern};
use berth_builder::dockerfile::shell::{EnvList, Lexer, VarLookup};
use proptest::prelude::*;
use serde::Deserialize;

const DATA_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/conformance/dockerfile-shell"
);

fn read(name: &str) -> String {
    let path = format!("{DATA_DIR}/{name}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// Pass/fail bookkeeping for one data set.
#[derive(Default)]
struct Tally {
    passed: usize,
    total: usize,
    failures: Vec<String>,
    notes: Vec<String>,
}

impl Tally {
    /// Runs one case; a panic inside it counts as a failure.
    fn check(&mut self, label: String, case: impl FnOnce() -> Result<(), String>) {
        self.total += 1;
        match catch_unwind(AssertUnwindSafe(case)) {
            Ok(Ok(())) => self.passed += 1,
            Ok(Err(why)) => self.failures.push(format!("{label}: {why}")),
            Err(_) => self.failures.push(format!("{label}: panicked")),
        }
    }
}

fn set(names: &[String]) -> BTreeSet<String> {
    names.iter().cloned().collect()
}

// ---------------------------------------------------------------- envVarTest

fn run_env_var_test(tally: &mut Tally) -> usize {
    let env = EnvList(
        ["PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL="]
            .map(String::from)
            .to_vec(),
    );
    let lexer = Lexer::new('\\');
    let mut windows_only = 0;
    for (index, line) in read("envVarTest").lines().enumerate() {
        let number = index + 1;
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.trim().split('|').map(str::trim).collect();
        let label = format!("envVarTest:{number} {line:?}");
        let [tag, input, expected] = fields.as_slice() else {
            tally.failures.push(format!("{label}: malformed line"));
            tally.total += 1;
            continue;
        };
        match *tag {
            "W" => {
                windows_only += 1;
                continue;
            }
            "A" | "U" => {}
            other => {
                tally.failures.push(format!("{label}: unknown tag {other}"));
                tally.total += 1;
                continue;
            }
        }
        tally.check(label, || {
            match (lexer.process_word(input, &env), *expected) {
                (Err(_), "error") => Ok(()),
                (Ok(got), "error") => Err(format!("expected an error, got {got:?}")),
                (Ok(got), want) if got == want => Ok(()),
                (Ok(got), want) => Err(format!("expected {want:?}, got {got:?}")),
                (Err(e), want) => Err(format!("expected {want:?}, got error: {e}")),
            }
        });
    }
    windows_only
}

// ----------------------------------------------------------------- wordsTest

fn run_words_test(tally: &mut Tally) {
    let lexer = Lexer::new('\\');
    let mut env = EnvList::default();
    for (index, line) in read("wordsTest").lines().enumerate() {
        let number = index + 1;
        if line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("ENV ") {
            env.0.push(rest.trim_start_matches(' ').to_owned());
            continue;
        }
        let label = format!("wordsTest:{number} {line:?}");
        let fields: Vec<&str> = line.split('|').collect();
        let [input, expected] = fields.as_slice() else {
            tally.failures.push(format!("{label}: malformed line"));
            tally.total += 1;
            continue;
        };
        let input = input.trim();
        let expected: Vec<String> = expected
            .trim_start_matches(' ')
            .split(',')
            .map(String::from)
            .collect();
        let env = env.clone();
        tally.check(label, || {
            let got = lexer
                .process_words(input, &env)
                .unwrap_or_else(|_| vec!["error".to_owned()]);
            if got == expected {
                Ok(())
            } else {
                Err(format!("expected {expected:?}, got {got:?}"))
            }
        });
    }
}

// ------------------------------------------------------------ lex-cases.json

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LexCases {
    process_word_with_matches: Table<MatchCase>,
    mandatory_env_vars: Table<MandatoryCase>,
    platform_template: Table<TemplateCase>,
    env_list_lookup: Table<EnvListCase>,
    pattern_helpers: PatternHelpers,
}

#[derive(Deserialize)]
struct Table<T> {
    cases: Vec<T>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MatchCase {
    input: String,
    env: HashMap<String, String>,
    #[serde(default)]
    expected: String,
    #[serde(default)]
    expect_error: bool,
    #[serde(default)]
    matched: Vec<String>,
    #[serde(default)]
    unmatched: Vec<String>,
    #[serde(default)]
    not_guaranteed: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MandatoryCase {
    input: String,
    env: HashMap<String, String>,
    #[serde(default)]
    expected: String,
    #[serde(default)]
    expect_error: bool,
    #[serde(default)]
    error_contains: String,
}

#[derive(Deserialize)]
struct TemplateCase {
    input: String,
    env: HashMap<String, String>,
    expected: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnvListCase {
    env_list: Vec<String>,
    lookup: String,
    expected: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PatternHelpers {
    shell_pattern_to_regex: RegexVectors,
    reverse_pattern: Vec<ReverseVector>,
}

#[derive(Deserialize)]
struct RegexVectors {
    valid: Vec<RegexVector>,
    invalid: Vec<String>,
}

#[derive(Deserialize)]
struct RegexVector {
    pattern: String,
    regex: String,
}

#[derive(Deserialize)]
struct ReverseVector {
    #[serde(rename = "in")]
    input: String,
    out: String,
}

fn check_match_case(lexer: &Lexer, case: &MatchCase) -> Result<(), String> {
    let got = lexer.process_word_with_matches(&case.input, &case.env);
    if case.expect_error {
        return match got {
            Err(_) => Ok(()),
            Ok(got) => Err(format!("expected an error, got {:?}", got.result)),
        };
    }
    let got = got.map_err(|e| format!("unexpected error: {e}"))?;
    if got.result != case.expected {
        return Err(format!(
            "expected {:?}, got {:?}",
            case.expected, got.result
        ));
    }
    if got.matched != set(&case.matched) || got.unmatched != set(&case.unmatched) {
        return Err(format!(
            "matched/unmatched: expected {:?}/{:?}, got {:?}/{:?}",
            case.matched, case.unmatched, got.matched, got.unmatched
        ));
    }
    Ok(())
}

fn run_lex_cases(tally: &mut Tally) {
    let cases: LexCases = serde_json::from_str(&read("lex-cases.json"))
        .unwrap_or_else(|e| panic!("lex-cases.json does not parse: {e}"));
    let lexer = Lexer::new('\\');

    for (i, case) in cases.process_word_with_matches.cases.iter().enumerate() {
        let label = format!("processWordWithMatches[{i}] {:?}", case.input);
        if case.not_guaranteed {
            // Upstream leaves these unspecified: only a panic fails. A
            // differing result is worth a note, not a failure.
            let mut notes = Vec::new();
            tally.check(label.clone(), || {
                if let Err(why) = check_match_case(&lexer, case) {
                    notes.push(format!("{label} (not guaranteed) differs: {why}"));
                }
                Ok(())
            });
            tally.notes.extend(notes);
        } else {
            tally.check(label, || check_match_case(&lexer, case));
        }
    }

    for (i, case) in cases.mandatory_env_vars.cases.iter().enumerate() {
        let label = format!("mandatoryEnvVars[{i}] {:?}", case.input);
        tally.check(label, || match lexer.process_word(&case.input, &case.env) {
            Err(e) if case.expect_error => {
                let text = e.to_string();
                if text.contains(&case.error_contains) {
                    Ok(())
                } else {
                    Err(format!(
                        "error {text:?} does not contain {:?}",
                        case.error_contains
                    ))
                }
            }
            Ok(got) if case.expect_error => Err(format!("expected an error, got {got:?}")),
            Ok(got) if got == case.expected => Ok(()),
            Ok(got) => Err(format!("expected {:?}, got {got:?}", case.expected)),
            Err(e) => Err(format!("unexpected error: {e}")),
        });
    }

    for (i, case) in cases.platform_template.cases.iter().enumerate() {
        let label = format!("platformTemplate[{i}]");
        tally.check(label, || {
            let got = lexer
                .process_word_with_matches(&case.input, &case.env)
                .map_err(|e| format!("unexpected error: {e}"))?;
            if got.result == case.expected {
                Ok(())
            } else {
                Err(format!(
                    "expected {:?}, got {:?}",
                    case.expected, got.result
                ))
            }
        });
    }

    for (i, case) in cases.env_list_lookup.cases.iter().enumerate() {
        let label = format!("envListLookup[{i}] {:?}", case.env_list);
        tally.check(label, || {
            let env = EnvList(case.env_list.clone());
            let direct = env.lookup(&case.lookup).unwrap_or_default().to_owned();
            let expanded = lexer
                .process_word(&format!("${}", case.lookup), &env)
                .map_err(|e| format!("unexpected error: {e}"))?;
            if direct == case.expected && expanded == case.expected {
                Ok(())
            } else {
                Err(format!(
                    "expected {:?}, lookup gave {direct:?}, expansion gave {expanded:?}",
                    case.expected
                ))
            }
        });
    }

    let helpers = &cases.pattern_helpers;
    for vector in &helpers.shell_pattern_to_regex.valid {
        let label = format!("shellPatternToRegex {:?}", vector.pattern);
        tally.check(label, || {
            let regex = Pattern::parse(&vector.pattern, true)
                .map_err(|e| format!("unexpected error: {e}"))?
                .to_regex(true);
            if regex == vector.regex {
                Ok(())
            } else {
                Err(format!("expected {:?}, got {regex:?}", vector.regex))
            }
        });
    }
    for pattern in &helpers.shell_pattern_to_regex.invalid {
        let label = format!("shellPatternToRegex invalid {pattern:?}");
        tally.check(label, || match Pattern::parse(pattern, true) {
            Err(_) => Ok(()),
            Ok(p) => Err(format!("expected an error, got {:?}", p.to_regex(true))),
        });
    }
    for vector in &helpers.reverse_pattern {
        let label = format!("reversePattern {:?}", vector.input);
        tally.check(label, || {
            let got = reverse_pattern(&vector.input);
            if got == vector.out {
                Ok(())
            } else {
                Err(format!("expected {:?}, got {got:?}", vector.out))
            }
        });
    }
}

#[test]
fn dockerfile_shell_conformance() {
    let mut env_var = Tally::default();
    let mut words = Tally::default();
    let mut lex = Tally::default();
    let windows_only = run_env_var_test(&mut env_var);
    run_words_test(&mut words);
    run_lex_cases(&mut lex);

    let passed = env_var.passed + words.passed + lex.passed;
    let total = env_var.total + words.total + lex.total;
    let summary = format!(
        "dockerfile conformance: {passed}/{total} lexer (envVarTest {}/{}, wordsTest {}/{}, lex-cases {}/{}); skipped {windows_only} Windows-only envVarTest lines",
        env_var.passed, env_var.total, words.passed, words.total, lex.passed, lex.total
    );
    // Written to the real stderr, past the test harness's capture, so the
    // counts show in every `cargo test` run.
    let _ = writeln!(std::io::stderr(), "{summary}");
    for note in env_var.notes.iter().chain(&words.notes).chain(&lex.notes) {
        eprintln!("note: {note}");
    }

    let failures: Vec<&String> = env_var
        .failures
        .iter()
        .chain(&words.failures)
        .chain(&lex.failures)
        .collect();
    assert!(
        failures.is_empty(),
        "{} conformance case(s) failed:\n  {}",
        failures.len(),
        failures
            .iter()
            .map(|f| f.as_str())
            .collect::<Vec<_>>()
            .join("\n  ")
    );
    assert!(env_var.total > 200 && words.total > 20 && lex.total > 60);
}

// ------------------------------------------------------------- no panics

/// Text built mostly from the characters the lexer treats specially.
fn tricky_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => prop::sample::select(vec![
            "$", "{", "}", ":", "-", "+", "?", "=", "#", "%", "/", "*", "\\", "`", "'", "\"",
            " ", "\n", "A", "B", "x", "1", "@", "한", "\u{FEFF}", "${A", "${B:-", "${A//",
            "${A#", "${A%%", "\\}", "\\/", "$0", "[", "]",
        ])
        .prop_map(str::to_owned),
        1 => any::<String>(),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|parts| parts.concat())
}

fn lexers() -> Vec<Lexer> {
    let mut all = Vec::new();
    for escape in ['\\', '`'] {
        for bits in 0..8u8 {
            all.push(
                Lexer::new(escape)
                    .raw_quotes(bits & 1 != 0)
                    .raw_escapes(bits & 2 != 0)
                    .skip_unset_env(bits & 4 != 0),
            );
        }
    }
    all
}

fn check_no_panic(input: &str) -> Result<(), TestCaseError> {
    let env: HashMap<String, String> =
        [("A", "a*b/c d"), ("B", ""), ("C", "$0 \\ ${"), ("1", "one")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
    for lexer in lexers() {
        let word = lexer.process_word(input, &env);
        let with_matches = lexer.process_word_with_matches(input, &env);
        let words = lexer.process_words(input, &env);
        // All three read the word the same way, so they agree on success.
        prop_assert_eq!(word.is_ok(), words.is_ok());
        prop_assert_eq!(word.ok(), with_matches.ok().map(|e| e.result));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        // Integration tests have no lib.rs next to them to persist to.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn never_panics_on_arbitrary_strings(input in any::<String>()) {
        check_no_panic(&input)?;
    }

    #[test]
    fn never_panics_on_shell_like_strings(input in tricky_text()) {
        check_no_panic(&input)?;
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let lexer = Lexer::new('\\');
    let env: HashMap<String, String> = HashMap::new();
    let word = format!("{}x{}", "${A:-".repeat(100_000), "}".repeat(100_000));
    assert!(lexer.process_word(&word, &env).is_err());
    let word = format!("{}x{}", "${A:-\"".repeat(100_000), "\"}".repeat(100_000));
    assert!(lexer.process_words(&word, &env).is_err());
    // Just inside the limit (the word itself is one level) still works,
    // with double quotes adding frames between the levels.
    let deepest = format!("{}x{}", "${A:-\"".repeat(99), "\"}".repeat(99));
    assert_eq!(
        lexer.process_word(&deepest, &env).ok().as_deref(),
        Some("x")
    );
    let too_deep = format!("{}x{}", "${A:-".repeat(100), "}".repeat(100));
    assert!(lexer.process_word(&too_deep, &env).is_err());
}
