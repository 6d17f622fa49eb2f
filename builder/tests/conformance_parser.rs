//! Runs BuildKit's Dockerfile parser conformance data
//! (`../shared/conformance/dockerfile-parser/`, see its README) against
//! berth's parser: dumps, rejections, line numbers, heredocs and warnings.

use berth_builder::dockerfile::heredoc::{chomp, heredocs_from_line, parse_heredoc_word};
use berth_builder::dockerfile::{Dockerfile, parse};
use serde_json::Value;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/dockerfile-parser")
}

fn case_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse_file(path: &Path) -> Result<Dockerfile, String> {
    let src = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse(&src).map_err(|e| e.to_string())
}

/// Compares heredocs of the instructions listed in an `expected.json`.
fn check_heredocs(case: &Path, failures: &mut Vec<String>) -> usize {
    let expected = read_json(&case.join("expected.json"));
    let parsed = match parse_file(&case.join("Dockerfile")) {
        Ok(p) => p,
        Err(e) => {
            failures.push(format!("{}: parse failed: {e}", case.display()));
            return 0;
        }
    };
    let mut checked = 0;
    for child in expected["children"].as_array().into_iter().flatten() {
        checked += 1;
        let index = child["index"].as_u64().unwrap_or(0) as usize;
        let Some(node) = parsed.nodes.get(index) else {
            failures.push(format!("{}: no instruction #{index}", case.display()));
            continue;
        };
        let want_line = child["instruction"].as_str().unwrap_or_default();
        if node.original != want_line {
            failures.push(format!(
                "{}#{index}: line {:?}, want {want_line:?}",
                case.display(),
                node.original
            ));
        }
        let got: Vec<Value> = node
            .heredocs
            .iter()
            .map(|h| {
                serde_json::json!({"name": h.name, "content": h.content, "expand": h.expand,
                    "chomp": h.chomp, "fileDescriptor": h.file_descriptor})
            })
            .collect();
        let want = match &child["heredocs"] {
            Value::Null => Vec::new(),
            Value::Array(a) => a.clone(),
            other => panic!("bad heredocs value {other}"),
        };
        if got != want {
            failures.push(format!(
                "{}#{index}: heredocs {got:?}, want {want:?}",
                case.display()
            ));
        }
    }
    checked
}

#[test]
fn dockerfile_parser_conformance() {
    let dir = data_dir();
    let mut failures = Vec::new();

    // 1. Positive cases: the dump must equal `result`.
    let positives = case_dirs(&dir.join("testfiles"));
    let mut positive_ok = 0;
    for case in &positives {
        let want = fs::read_to_string(case.join("result")).unwrap_or_default();
        match parse_file(&case.join("Dockerfile")) {
            Ok(df) if df.dump() + "\n" == want => positive_ok += 1,
            Ok(df) => failures.push(format!(
                "{}: dump differs\n--- got\n{}\n--- want\n{want}",
                case.display(),
                df.dump()
            )),
            Err(e) => failures.push(format!("{}: rejected: {e}", case.display())),
        }
    }

    // 2. Negative cases must be rejected.
    let negatives = case_dirs(&dir.join("testfiles-negative"));
    let mut negative_ok = 0;
    for case in &negatives {
        match parse_file(&case.join("Dockerfile")) {
            Err(_) => negative_ok += 1,
            Ok(df) => failures.push(format!(
                "{}: accepted, dump:\n{}",
                case.display(),
                df.dump()
            )),
        }
    }

    // 3. Line numbers.
    let lines = read_json(&dir.join("testfile-line/expected-lines.json"));
    let mut line_checks = 0;
    let mut line_ok = 0;
    match parse_file(&dir.join("testfile-line/Dockerfile")) {
        Ok(df) => {
            let mut got = vec![(df.start_line, df.end_line)];
            got.extend(df.nodes.iter().map(|n| (n.start_line, n.end_line)));
            let mut want = vec![(
                lines["root"]["startLine"].as_u64().unwrap_or(0) as usize,
                lines["root"]["endLine"].as_u64().unwrap_or(0) as usize,
            )];
            for c in lines["children"].as_array().into_iter().flatten() {
                want.push((
                    c["startLine"].as_u64().unwrap_or(0) as usize,
                    c["endLine"].as_u64().unwrap_or(0) as usize,
                ));
            }
            line_checks = want.len();
            line_ok = got.iter().zip(&want).filter(|(g, w)| g == w).count();
            if got != want {
                failures.push(format!("testfile-line: spans {got:?}, want {want:?}"));
            }
        }
        Err(e) => failures.push(format!("testfile-line: rejected: {e}")),
    }

    // 4. Heredocs, JSON form and warnings from upstream's Go tests.
    let before = failures.len();
    let mut heredoc_checks = check_heredocs(&dir.join("extracted/heredoc-extract"), &mut failures);
    heredoc_checks += check_heredocs(&dir.join("extracted/heredoc-json-form"), &mut failures);

    let helpers = read_json(&dir.join("extracted/heredoc-helpers.json"));
    let words = &helpers["parse_heredoc_word"];
    for w in words["valid_name_is_EOF"].as_array().into_iter().flatten() {
        heredoc_checks += 1;
        let w = w.as_str().unwrap_or_default();
        match parse_heredoc_word(w) {
            Ok(Some(h)) if h.name == "EOF" => {}
            other => failures.push(format!("heredoc word {w:?}: {other:?}, want name EOF")),
        }
    }
    for w in words["error_unterminated_quote"]
        .as_array()
        .into_iter()
        .flatten()
    {
        heredoc_checks += 1;
        let w = w.as_str().unwrap_or_default();
        if parse_heredoc_word(w).is_ok() {
            failures.push(format!("heredoc word {w:?}: accepted, want an error"));
        }
    }
    for w in words["not_a_heredoc_no_error"]
        .as_array()
        .into_iter()
        .flatten()
    {
        heredoc_checks += 1;
        let w = w.as_str().unwrap_or_default();
        if !matches!(parse_heredoc_word(w), Ok(None)) {
            failures.push(format!(
                "heredoc word {w:?}: {:?}, want no heredoc",
                parse_heredoc_word(w)
            ));
        }
    }
    for case in helpers["heredoc_names_from_line"]
        .as_array()
        .into_iter()
        .flatten()
    {
        heredoc_checks += 1;
        let line = case["line"].as_str().unwrap_or_default();
        let want: Vec<&str> = case["names"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        match heredocs_from_line(line) {
            Ok(docs)
                if docs
                    .iter()
                    .map(|d| d.name.as_str())
                    .eq(want.iter().copied()) => {}
            other => failures.push(format!("heredocs in {line:?}: {other:?}, want {want:?}")),
        }
    }
    for case in helpers["chomp"].as_array().into_iter().flatten() {
        heredoc_checks += 1;
        let (input, output) = (
            case["input"].as_str().unwrap_or_default(),
            case["output"].as_str().unwrap_or_default(),
        );
        if chomp(input) != output {
            failures.push(format!(
                "chomp {input:?}: {:?}, want {output:?}",
                chomp(input)
            ));
        }
    }

    let warn_case = dir.join("extracted/empty-continuation-warnings");
    let warn_expected = read_json(&warn_case.join("expected.json"));
    heredoc_checks += 1;
    match parse_file(&warn_case.join("Dockerfile")) {
        Ok(df) => {
            let want_count = warn_expected["warning_count"].as_u64().unwrap_or(0) as usize;
            if df.warnings.len() != want_count {
                failures.push(format!("warnings: {:?}, want {want_count}", df.warnings));
            }
            for (w, subs) in df.warnings.iter().zip(
                warn_expected["warnings_contain"]
                    .as_array()
                    .into_iter()
                    .flatten(),
            ) {
                for s in subs
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    if !w.message.contains(s) {
                        failures.push(format!("warning {:?} lacks {s:?}", w.message));
                    }
                }
            }
        }
        Err(e) => failures.push(format!("empty-continuation-warnings: rejected: {e}")),
    }
    let extracted_failed = failures.len() - before;

    let report = format!(
        "dockerfile conformance: {positive_ok}/{} parser, {negative_ok}/{} negative, {line_ok}/{line_checks} line spans, {}/{heredoc_checks} heredoc/warning checks",
        positives.len(),
        negatives.len(),
        heredoc_checks.saturating_sub(extracted_failed),
    );
    // Written to the real stderr, past the test harness's capture, so the
    // counts show in every `cargo test` run.
    let _ = writeln!(std::io::stderr(), "{report}");
    assert!(
        positives.len() >= 33 && negatives.len() >= 4,
        "conformance data missing under {}",
        dir.display()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
