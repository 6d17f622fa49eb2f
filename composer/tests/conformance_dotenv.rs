//! Runs every case of the compose conformance data's `expected/dotenv.json`
//! (transcribed from compose-go's dotenv tests) and its fixtures against
//! berth's dotenv parser.

use std::collections::HashMap;
use std::path::PathBuf;

use berth_composer::dotenv::{self, DotenvError, DotenvErrorKind};
use berth_composer::interpolation::TemplateError;
use indexmap::IndexMap;
use serde_json::Value as J;

mod support;

use support::{DATA, Group, report};

fn env_of(json: Option<&J>) -> HashMap<String, String> {
    json.and_then(J::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn str_field<'a>(case: &'a J, key: &str) -> Option<&'a str> {
    case.get(key).and_then(J::as_str)
}

fn cases<'a>(json: &'a J, pointer: &str) -> &'a [J] {
    json.pointer(pointer)
        .and_then(J::as_array)
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("no array at {pointer}"))
}

/// Compares a parse result with a case's `expected` (per `compare`) or its
/// `expectError` / `errorContains` / `errorEquals`.
fn judge(case: &J, result: Result<IndexMap<String, String>, DotenvError>) -> Result<(), String> {
    if case.get("expectError").and_then(J::as_bool) == Some(true) {
        let err = match result {
            Ok(map) => return Err(format!("expected an error, got {map:?}")),
            Err(err) => err.to_string(),
        };
        if let Some(part) = str_field(case, "errorContains")
            && !err.contains(part)
        {
            return Err(format!("error {err:?} does not contain {part:?}"));
        }
        if let Some(want) = str_field(case, "errorEquals")
            && err != want
        {
            return Err(format!("error {err:?}, expected {want:?}"));
        }
        return Ok(());
    }
    let map = result.map_err(|err| format!("unexpected error: {err}"))?;
    let expected = case
        .get("expected")
        .and_then(J::as_object)
        .ok_or("case without expected")?;
    for (key, want) in expected {
        let want = want.as_str().ok_or("expected value is not a string")?;
        match map.get(key) {
            Some(got) if got == want => {}
            got => return Err(format!("{key}: expected {want:?}, got {got:?}")),
        }
    }
    if str_field(case, "compare") == Some("exact") && map.len() != expected.len() {
        let extra: Vec<&String> = map.keys().filter(|k| !expected.contains_key(*k)).collect();
        return Err(format!("unexpected keys {extra:?}"));
    }
    Ok(())
}

fn check_fixture(case: &J, fixture_dir: &str) -> Result<(), String> {
    let file = str_field(case, "file").ok_or("case without file")?;
    // "(directory) fixtures/" reads the fixture directory itself.
    let path = if file.starts_with("(directory)") {
        PathBuf::from(fixture_dir)
    } else {
        PathBuf::from(fixture_dir).join(file)
    };
    let env = env_of(case.get("lookupEnv"));
    // custom.format is compose-go's test plugin format `KEY:VALUE`; dotenv's
    // YAML-style `KEY: value` statement reads it to the same map, so it is
    // checked with the ordinary reader.
    judge(case, dotenv::read_file(&path, &|n| env.get(n).cloned()))
}

fn check_line(case: &J) -> Result<(), String> {
    let input = str_field(case, "input").ok_or("case without input")?;
    let key = str_field(case, "key").ok_or("case without key")?;
    let want = str_field(case, "value").ok_or("case without value")?;
    let map = dotenv::parse(input, &|_| None).map_err(|e| format!("error: {e}"))?;
    match map.get(key) {
        Some(got) if got == want => Ok(()),
        got => Err(format!("{key}: expected {want:?}, got {got:?}")),
    }
}

fn check_inline(case: &J) -> Result<(), String> {
    let input = str_field(case, "input").ok_or("case without input")?;
    let env = env_of(case.get("lookupEnv"));
    judge(case, dotenv::parse(input, &|n| env.get(n).cloned()))
}

fn check_unterminated(input: &str) -> Result<(), String> {
    match dotenv::parse(input, &|_| None) {
        Err(err) if err.to_string().contains("unterminated quoted value") => Ok(()),
        other => Err(format!(
            "expected an unterminated quote error, got {other:?}"
        )),
    }
}

fn check_ignored(input: &str) -> Result<(), String> {
    match dotenv::parse(input, &|_| None) {
        Ok(map) if map.is_empty() => Ok(()),
        other => Err(format!("expected no entries, got {other:?}")),
    }
}

/// The file-local variables come first in the same text.
fn check_expansion(case: &J) -> Result<(), String> {
    let input = str_field(case, "input").ok_or("case without input")?;
    let text = format!("EMPTY_VAR=\nTEST_VAR='Test Value'\n{input}");
    let result = dotenv::parse(&text, &|_| None);
    if let Some(expected) = str_field(case, "expected") {
        let (key, want) = expected
            .split_once('=')
            .ok_or("expected is not KEY=VALUE")?;
        let map = result.map_err(|e| format!("error: {e}"))?;
        return match map.get(key) {
            Some(got) if got == want => Ok(()),
            got => Err(format!("{key}: expected {want:?}, got {got:?}")),
        };
    }
    match result {
        Err(DotenvError {
            kind:
                DotenvErrorKind::Interpolation(TemplateError::MissingRequired { variable, reason }),
            ..
        }) if Some(variable.as_str()) == str_field(case, "errorVariable")
            && Some(reason.as_str()) == str_field(case, "errorReason") =>
        {
            Ok(())
        }
        other => Err(format!("expected a missing-variable error, got {other:?}")),
    }
}

/// Files applied in order; references see the lookup environment first,
/// then everything defined so far (earlier files and earlier lines).
fn check_multiple(case: &J, files: &J) -> Result<(), String> {
    let env = env_of(case.get("lookupEnv"));
    let mut merged: IndexMap<String, String> = IndexMap::new();
    for name in case["order"].as_array().into_iter().flatten() {
        let name = name.as_str().ok_or("file name is not a string")?;
        let text = str_field(files, name).ok_or_else(|| format!("no file {name}"))?;
        dotenv::parse_into(text, &|n| env.get(n).cloned(), &mut merged)
            .map_err(|e| format!("{name}: {e}"))?;
    }
    let expected = env_of(case.get("expected"));
    let got: HashMap<String, String> = merged.into_iter().collect();
    if got == expected {
        Ok(())
    } else {
        Err(format!("expected {expected:?}, got {got:?}"))
    }
}

#[test]
fn dotenv_conformance() {
    let path = format!("{DATA}/expected/dotenv.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let data: J = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let fixture_dir = format!("{DATA}/compose-go/dotenv/fixtures");

    let mut fixtures = Group::new("fixtures");
    for case in cases(&data, "/fixtures") {
        let name = format!(
            "{} {}",
            case["file"],
            case.get("lookupEnv").unwrap_or(&J::Null)
        );
        fixtures.check(name, check_fixture(case, &fixture_dir));
    }

    let mut lines = Group::new("lines");
    for case in cases(&data, "/lines/cases") {
        lines.check(&case["input"], check_line(case));
    }

    let mut inline = Group::new("inlineDocuments");
    for case in cases(&data, "/inlineDocuments") {
        inline.check(&case["input"], check_inline(case));
    }

    let mut unterminated = Group::new("unterminatedQuotes");
    for input in cases(&data, "/unterminatedQuotes/inputs") {
        unterminated.check(
            input,
            check_unterminated(input.as_str().unwrap_or_default()),
        );
    }

    let mut ignored = Group::new("ignoredLines");
    for input in cases(&data, "/ignoredLines/inputs") {
        ignored.check(input, check_ignored(input.as_str().unwrap_or_default()));
    }

    let mut expansion = Group::new("expansionInValues");
    for case in cases(&data, "/expansionInValues/cases") {
        expansion.check(&case["input"], check_expansion(case));
    }

    let mut multiple = Group::new("multipleFiles");
    let files = &data["multipleFiles"]["files"];
    for (i, case) in cases(&data, "/multipleFiles/cases").iter().enumerate() {
        multiple.check(format!("case {i}"), check_multiple(case, files));
    }

    let groups = [
        fixtures,
        lines,
        inline,
        unterminated,
        ignored,
        expansion,
        multiple,
    ];
    report("dotenv conformance", &groups);
}
