//! Validation of compose documents against the compose-spec JSON schema,
//! with errors that name the path, file and line of the value at fault.
//!
//! The schema (a copy of compose-spec's `schema/compose-spec.json`, see
//! `NOTICE`) is embedded in the binary and compiled once. The validator is
//! our own and covers exactly the JSON Schema keywords that schema uses; it
//! works on [`Node`] trees rather than JSON so that errors keep their lines.

mod compile;
mod validate;
mod wording;

use std::sync::OnceLock;

use crate::doc_path::DocPath;
use crate::yaml::Node;

pub use compile::{CompileError, CompiledSchema};

/// compose-spec's draft-07 schema, as published.
pub const COMPOSE_SPEC_SCHEMA: &str = include_str!("compose-spec.json");

/// One way a document breaks the schema. For a key that is not allowed,
/// the path is the mapping that holds it and the line the key's own line
/// (the YAML layer places collections at their key).
pub type SchemaError = crate::node_error::NodeError;

impl CompiledSchema {
    /// Checks `doc`; on failure returns every error, ordered by file and
    /// line.
    pub fn validate(&self, doc: &Node) -> Result<(), Vec<SchemaError>> {
        let errors = validate::validate(self, doc);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// The embedded compose schema, compiled on first use.
pub fn compose_schema() -> Result<&'static CompiledSchema, &'static CompileError> {
    static SCHEMA: OnceLock<Result<CompiledSchema, CompileError>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let json: serde_json::Value =
                serde_json::from_str(COMPOSE_SPEC_SCHEMA).map_err(|err| CompileError {
                    pointer: String::new(),
                    message: format!("not valid JSON: {err}"),
                })?;
            CompiledSchema::compile(&json)
        })
        .as_ref()
}

/// Validates one compose document (after interpolation) against the
/// compose-spec schema.
pub fn validate(doc: &Node) -> Result<(), Vec<SchemaError>> {
    match compose_schema() {
        Ok(schema) => schema.validate(doc),
        // Cannot happen with the schema we ship (a test compiles it), but a
        // broken build must not take the process down.
        Err(err) => Err(vec![SchemaError {
            path: DocPath::root(),
            line: doc.line,
            file: doc.file,
            message: format!("internal error: the embedded compose schema is unusable: {err}"),
        }]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_documents;
    use serde_json::json;

    fn doc(text: &str) -> Node {
        let mut docs = parse_documents(text).expect("test YAML parses");
        assert_eq!(docs.len(), 1);
        docs.remove(0)
    }

    /// Every error as `line: display`.
    fn errors(text: &str) -> Vec<String> {
        match validate(&doc(text)) {
            Ok(()) => Vec::new(),
            Err(errors) => errors.iter().map(|e| format!("{}: {e}", e.line)).collect(),
        }
    }

    #[test]
    fn embedded_schema_compiles() {
        let schema = compose_schema().expect("embedded schema compiles");
        assert!(schema.nodes.len() > 100);
    }

    #[test]
    fn accepts_a_typical_document() {
        let text = "\
name: shop
services:
  web:
    image: nginx:1.27
    build:
      context: .
      args: {A: 1, B: null}
    ports: [\"80:80\", 443, {target: 8080, published: \"8080\", protocol: tcp}]
    environment: [A=1, B=2]
    depends_on:
      db: {condition: service_healthy}
    deploy: {resources: {limits: {cpus: '0.5', memory: 50M}}}
    healthcheck: {test: [CMD, \"true\"], interval: 10s}
    cpu_percent: 50
    x-anything: {deep: [1, 2]}
  db:
    image: postgres
    volumes: [data:/var/lib/postgresql/data]
volumes:
  data:
x-common: &c {a: 1}
";
        assert_eq!(errors(text), Vec::<String>::new());
    }

    #[test]
    fn unknown_key_suggests_the_closest() {
        let text = "services:\n  web:\n    imgae: nginx\n    helicopters: 3\n";
        assert_eq!(
            errors(text),
            [
                "3: services.web: additional property \"imgae\" is not allowed; did you mean \"image\"?",
                "4: services.web: additional property \"helicopters\" is not allowed",
            ]
        );
        assert_eq!(
            errors("service:\n  web: {}\n"),
            ["1: additional property \"service\" is not allowed; did you mean \"services\"?"]
        );
    }

    #[test]
    fn wrong_type_at_a_nested_path() {
        let text = "services:\n  web:\n    image: nginx\n    deploy:\n      replicas: [2]\n      labels: {a: [1]}\n";
        assert_eq!(
            errors(text),
            [
                "5: services.web.deploy.replicas: must be an integer or a string",
                "6: services.web.deploy.labels.a: must be a number, a string, a boolean or null",
            ]
        );
        assert_eq!(
            errors("services:\n  web:\n    image: 3\n"),
            ["3: services.web.image: must be a string"]
        );
    }

    #[test]
    fn enums_ranges_patterns_and_required() {
        let text = "\
services:
  web:
    cgroup: hots
    cpu_percent: 101
    oom_score_adj: -1001
    pull_policy: sometimes
    extends: {file: base.yaml}
    depends_on:
      db: {condition: started}
";
        assert_eq!(
            errors(text),
            [
                "3: services.web.cgroup: must be one of: \"host\", \"private\"; did you mean \"host\"?",
                "4: services.web.cpu_percent: must be at most 100",
                "5: services.web.oom_score_adj: must be at least -1000",
                "6: services.web.pull_policy: must match the pattern \"always|never|build|if_not_present|missing|refresh|daily|weekly|every_([0-9]+[wdhms])+\"",
                "7: services.web.extends: \"service\" is required",
                "9: services.web.depends_on.db.condition: must be one of: \"service_started\", \"service_healthy\", \"service_completed_successfully\"",
            ]
        );
    }

    #[test]
    fn one_of_reports_the_branch_matching_the_type() {
        let text = "services:\n  web:\n    ports:\n      - \"80:80\"\n      - target: 80\n        protocl: tcp\n      - true\n";
        assert_eq!(
            errors(text),
            [
                "6: services.web.ports[1]: additional property \"protocl\" is not allowed; did you mean \"protocol\"?",
                "7: services.web.ports[2]: must be a number, a string or an object",
            ]
        );
        // build: string | object; the object branch's nested error shows.
        assert_eq!(
            errors("services:\n  web:\n    build: {context: ., args: [1]}\n"),
            ["3: services.web.build.args[0]: must be a string"]
        );
        assert_eq!(
            errors("services:\n  web:\n    build: 3\n"),
            ["3: services.web.build: must be a string or an object"]
        );
        assert_eq!(
            errors("services:\n  web:\n    gpus: some\n"),
            ["3: services.web.gpus: must be one of: \"all\""]
        );
    }

    #[test]
    fn duplicates_and_names() {
        let text = "services:\n  web app:\n    image: a\n  web:\n    dns: [1.1.1.1, 8.8.8.8, 8.8.8.8]\n    ports: [{target: 1}, {target: 1.0}]\n";
        assert_eq!(
            errors(text),
            [
                "2: services: key \"web app\" is not allowed; keys must match ^[a-zA-Z0-9._-]+$",
                "5: services.web.dns[2]: duplicates [1] (\"8.8.8.8\"); entries must be unique",
                "6: services.web.ports[1]: duplicates [0]; entries must be unique",
            ]
        );
    }

    #[test]
    fn duplicates_in_long_lists() {
        let mut dns: Vec<String> = (0..20).map(|i| format!("10.0.0.{i}")).collect();
        dns.push("10.0.0.3".into());
        let text = format!("services:\n  web:\n    dns: [{}]\n", dns.join(", "));
        assert_eq!(
            errors(&text),
            ["3: services.web.dns[20]: duplicates [3] (\"10.0.0.3\"); entries must be unique"]
        );
    }

    #[test]
    fn reset_values_count_as_removed() {
        let text = "services:\n  web:\n    image: a\n    command: !reset\n    ports: !reset [1]\n";
        assert_eq!(errors(text), Vec::<String>::new());
        assert_eq!(
            errors("services:\n  web:\n    extends: {service: !reset}\n"),
            ["3: services.web.extends: \"service\" is required"]
        );
    }

    #[test]
    fn root_errors_and_display() {
        let err = validate(&Node::from_json(&json!([1]))).unwrap_err();
        assert_eq!(err[0].to_string(), "must be an object");
        assert!(err[0].path.is_root());
        assert!(validate(&Node::from_json(&json!({}))).is_ok());
    }

    #[test]
    fn errors_are_ordered_by_line() {
        let mut node = doc("services:\n  b:\n    image: 1\n  a:\n    image: 2\nvolumes: 3\n");
        // A value merged in from another file sorts after this file's lines.
        if let Some(a) = node.get_mut("services").and_then(|s| s.get_mut("a")) {
            a.set_file(1);
        }
        let lines: Vec<(u32, u32)> = validate(&node)
            .unwrap_err()
            .iter()
            .map(|e| (e.file, e.line))
            .collect();
        assert_eq!(lines, [(0, 3), (0, 6), (1, 5)]);
    }

    #[test]
    fn one_of_with_several_fitting_branches() {
        let schema = CompiledSchema::compile(&json!({
            "oneOf": [
                {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"], "additionalProperties": false},
                {"type": "object", "properties": {"b": {"type": "object", "properties": {"c": {"type": "integer"}}}}}
            ]
        }))
        .expect("compiles");
        let check = |value| {
            schema
                .validate(&Node::from_json(&value))
                .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>())
        };
        assert_eq!(check(json!({"b": {}})), Ok(()));
        // Both branches fail; the one that got deeper is reported.
        assert_eq!(
            check(json!({"b": {"c": "x"}})),
            Err(vec!["b.c: must be an integer".to_string()])
        );
        // Both branches pass, which oneOf forbids.
        assert_eq!(
            check(json!({"a": "x"})),
            Err(vec![
                "is ambiguous: it matches more than one of the accepted forms".to_string()
            ])
        );
    }
}
