//! Schema validation against the shared conformance data: compose-go's
//! schema test cases, and the loader/CLI fixtures that are valid compose.

use std::path::{Path, PathBuf};

use berth_composer::schema::{self, CompiledSchema, SchemaError};
use berth_composer::yaml::{Node, parse_documents};
use serde_json::Value as Json;

const CONFORMANCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/conformance/compose"
);

fn conformance(relative: &str) -> PathBuf {
    let path = Path::new(CONFORMANCE).join(relative);
    assert!(
        path.exists(),
        "conformance data missing at {} (expected shared/ beside the repository)",
        path.display()
    );
    path
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn load_yaml(path: &Path) -> Vec<Node> {
    parse_documents(&read(path)).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn shown(errors: &[SchemaError]) -> String {
    let lines: Vec<String> = errors
        .iter()
        .map(|e| format!("line {}: {e}", e.line))
        .collect();
    lines.join("; ")
}

#[test]
fn schema_validation_cases() {
    let expected_path = conformance("expected/schema-validation.json");
    let expected: Json = serde_json::from_str(&read(&expected_path)).expect("cases are JSON");
    let cases = expected["cases"].as_array().expect("cases array");
    // compose-go's draft 2020-12 copy must give the same verdicts as the
    // embedded draft-07 one: our compiler reads both.
    let newer: Json =
        serde_json::from_str(&read(&conformance("compose-go/schema/compose-spec.json")))
            .expect("schema is JSON");
    let newer = CompiledSchema::compile(&newer).expect("compose-go schema compiles");
    let embedded = schema::compose_schema().expect("embedded schema compiles");

    let mut failures = Vec::new();
    let mut passed = 0;
    for case in cases {
        let name = case["name"].as_str().unwrap_or("?");
        let valid = case["valid"].as_bool().expect("valid flag");
        let docs = match (case.get("doc"), case["docFile"].as_str()) {
            (Some(doc), _) => vec![Node::from_json(doc)],
            (None, Some(file)) => {
                load_yaml(&expected_path.parent().expect("in a directory").join(file))
            }
            (None, None) => panic!("{name}: neither doc nor docFile"),
        };
        let before = failures.len();
        for (label, schema) in [("draft-07", embedded), ("2020-12", &newer)] {
            for doc in &docs {
                match (schema.validate(doc), valid) {
                    (Ok(()), true) | (Err(_), false) => {}
                    (Ok(()), false) => {
                        failures.push(format!("{name} ({label}): accepted, expected invalid"))
                    }
                    (Err(errors), true) => {
                        failures.push(format!("{name} ({label}): rejected: {}", shown(&errors)))
                    }
                }
            }
        }
        if failures.len() == before {
            passed += 1;
        }
    }
    println!("schema conformance: {passed}/{} cases", cases.len());
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}

#[test]
fn undefined_top_level_option_is_named() {
    let doc = Node::from_json(&serde_json::json!({"helicopters": {"foo": {"image": "busybox"}}}));
    let errors = schema::validate(&doc).expect_err("invalid");
    assert_eq!(
        shown(&errors),
        "line 0: additional property \"helicopters\" is not allowed"
    );
}

/// Every YAML file under `dir`.
fn yaml_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            yaml_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            found.push(path);
        }
    }
}

#[test]
fn loader_and_cli_fixtures() {
    // Fixtures that are not valid compose on their own, with the errors
    // they must give. `extends/base.yaml` has an empty service that upstream
    // only loads with validation switched off.
    let invalid = [(
        "loader/testdata/extends/base.yaml",
        "line 25: services.nil: must be an object",
    )];
    let mut files = Vec::new();
    yaml_files(&conformance("compose-go/loader/testdata"), &mut files);
    yaml_files(&conformance("compose-go/cli/testdata"), &mut files);
    files.sort();
    let mut failures = Vec::new();
    let mut checked = 0;
    for path in &files {
        let relative = path
            .strip_prefix(conformance("compose-go"))
            .expect("under compose-go")
            .to_string_lossy()
            .into_owned();
        let expected = invalid
            .iter()
            .find(|(file, _)| *file == relative)
            .map(|(_, e)| *e);
        for doc in load_yaml(path) {
            checked += 1;
            match (schema::validate(&doc), expected) {
                (Ok(()), None) => {}
                (Err(errors), Some(want)) if shown(&errors) == want => {}
                (Err(errors), _) => failures.push(format!("{relative}: {}", shown(&errors))),
                (Ok(()), Some(want)) => {
                    failures.push(format!("{relative}: accepted, expected {want}"))
                }
            }
        }
    }
    println!(
        "schema fixtures: {checked} documents in {} files",
        files.len()
    );
    assert!(checked > 30, "only {checked} fixture documents found");
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}

#[test]
fn errors_name_paths_and_lines() {
    let text = "\
services:
  web:
    image: nginx
    ports:
      - \"8080:80\"
      - target: 80
        mode: host
        publised: 8081
    deploy:
      restart_policy:
        delay: 5
  db:
    imag: postgres
    volumes:
      - type: bind
        source: ./data
        target: /data
        bind:
          selinux: x
";
    let doc = parse_documents(text).expect("parses").remove(0);
    let errors = schema::validate(&doc).expect_err("invalid");
    assert_eq!(
        errors
            .iter()
            .map(|e| format!("{}: {e}", e.line))
            .collect::<Vec<_>>(),
        [
            "8: services.web.ports[1]: additional property \"publised\" is not allowed; did you mean \"published\"?",
            "11: services.web.deploy.restart_policy.delay: must be a string",
            "13: services.db: additional property \"imag\" is not allowed; did you mean \"image\"?",
            "19: services.db.volumes[0].bind.selinux: must be one of: \"z\", \"Z\"",
        ]
    );
}

#[test]
fn many_services_validate() {
    // A large, valid document: every service has the common keys.
    let mut text = String::from("services:\n");
    for i in 0..300 {
        text.push_str(&format!(
            "  svc{i}:\n    image: registry.example/app:{i}\n    ports: [\"{p}:80\", {{target: 443, published: \"{p}\"}}]\n    environment: {{A: \"1\", B: 2}}\n    depends_on: [db]\n    volumes: [./src:/src, data:/data]\n    healthcheck: {{test: [CMD, curl, -f, localhost], interval: 5s}}\n    deploy: {{resources: {{limits: {{cpus: \"0.5\", memory: 64M}}}}}}\n    labels: [a=b, c=d]\n",
            p = 10000 + i
        ));
    }
    text.push_str("  db:\n    image: postgres\nvolumes:\n  data: {}\n");
    let doc = parse_documents(&text).expect("parses").remove(0);
    assert_eq!(schema::validate(&doc).map_err(|e| shown(&e)), Ok(()));
}
