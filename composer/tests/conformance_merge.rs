//! compose-go's merge and unicity cases (shared/conformance/compose/merge):
//! every case is run and compared with its expected document.
//!
//! The expectations are compose-go's raw intermediate forms (key/value
//! fields as `KEY=VALUE` lists, name lists as mappings…) while berth's merge
//! keeps natural forms that the loader normalises later. The comparison
//! therefore brings a value to a common form ONLY where actual and expected
//! use two syntaxes of the same field, and only by conversions that keep
//! meaning (a list whose key repeats is never folded into a mapping, and
//! sequence order stays significant everywhere else).

use std::fs;
use std::path::Path;

use berth_composer::doc_path::DocPath;
use berth_composer::merge::{apply_unicity, merge_documents, strip_tags};
use berth_composer::yaml::{Map, Node, Value, parse_documents};

const CONFORMANCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/conformance/compose"
);

/// `KEY=VALUE` list or mapping fields.
const KEY_VALUE: &[&str] = &[
    "services.*.environment",
    "services.*.labels",
    "services.*.annotations",
    "services.*.sysctls",
    "services.*.build.args",
    "services.*.build.labels",
    "services.*.build.additional_contexts",
    "services.*.deploy.labels",
    "networks.*.labels",
    "volumes.*.labels",
    "secrets.*.labels",
    "configs.*.labels",
];
const EXTRA_HOSTS: &[&str] = &["services.*.extra_hosts", "services.*.build.extra_hosts"];
/// A list of names means `name: null`.
const NAME_MAPS: &[&str] = &["services.*.networks", "services.*.models"];
const STRING_OR_LIST: &[&str] = &[
    "services.*.dns",
    "services.*.dns_opt",
    "services.*.dns_search",
    "services.*.env_file",
    "services.*.label_file",
    "services.*.tmpfs",
];

#[test]
fn merge_conformance() {
    let dir = Path::new(CONFORMANCE).join("merge");
    let index: serde_json::Value =
        serde_json::from_str(&read(&dir.join("index.json"))).expect("index.json is JSON");
    let cases = index.as_array().expect("index.json lists cases");
    let mut failures = Vec::new();
    for case in cases {
        let name = case["case"].as_str().expect("case name");
        let kind = case["kind"].as_str().expect("case kind");
        if let Err(report) = run_case(&dir.join(name), kind) {
            failures.push(format!("--- {name} ({kind})\n{report}"));
        }
    }
    let passed = cases.len() - failures.len();
    println!("merge conformance: {passed}/{} cases", cases.len());
    for failure in &failures {
        println!("{failure}");
    }
    assert_eq!(cases.len(), 72, "the conformance set has 72 cases");
    assert!(failures.is_empty(), "{} cases failed", failures.len());
}

fn run_case(dir: &Path, kind: &str) -> Result<(), String> {
    let mut actual = match kind {
        "unicity" => {
            let mut doc = load(&dir.join("input.yaml"));
            apply_unicity(&mut doc);
            doc
        }
        "merge+unicity" | "merge (no unicity pass)" => {
            let base = load(&dir.join("base.yaml"));
            let over = load(&dir.join("override.yaml"));
            let mut doc = merge_documents(base, over).map_err(|e| format!("merge error: {e}"))?;
            strip_tags(&mut doc);
            if kind == "merge+unicity" {
                apply_unicity(&mut doc);
            }
            doc
        }
        other => return Err(format!("unknown case kind {other:?}")),
    };
    let mut expected = load(&dir.join("expected.yaml"));
    unify(&mut actual, &mut expected, &mut DocPath::root());
    let mut diffs = Vec::new();
    diff(&actual, &expected, &mut DocPath::root(), &mut diffs);
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(diffs.join("\n"))
    }
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn load(path: &Path) -> Node {
    let mut docs =
        parse_documents(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(docs.len(), 1, "{}: one document", path.display());
    docs.remove(0)
}

fn any_match(path: &DocPath, patterns: &[&str]) -> bool {
    patterns.iter().any(|p| path.matches(p))
}

fn is_seq(node: &Node) -> bool {
    matches!(node.value, Value::Seq(_))
}

/// Brings `actual` and `expected` to one form where they use two syntaxes
/// of one field, then does the same below.
fn unify(actual: &mut Node, expected: &mut Node, path: &mut DocPath) {
    let forms_differ = is_seq(actual) != is_seq(expected);
    if forms_differ && any_match(path, KEY_VALUE) {
        convert_both(actual, expected, key_value_form);
    } else if forms_differ && any_match(path, EXTRA_HOSTS) {
        convert_both(actual, expected, host_form);
    } else if forms_differ && any_match(path, NAME_MAPS) {
        convert_both(actual, expected, |n| name_form(n, None));
    } else if forms_differ && path.matches("services.*.depends_on") {
        let defaults = Map::from_iter([
            ("condition".to_string(), Node::string("service_started")),
            ("required".to_string(), Node::new(Value::Bool(true))),
        ]);
        convert_both(actual, expected, |n| name_form(n, Some(&defaults)));
    } else if path.matches("services.*.build") {
        for node in [&mut *actual, &mut *expected] {
            if let Value::String(context) = &node.value {
                *node = Node::map(Map::from_iter([(
                    "context".to_string(),
                    Node::string(context.clone()),
                )]));
            }
        }
    } else if forms_differ && any_match(path, STRING_OR_LIST) {
        for node in [&mut *actual, &mut *expected] {
            if !is_seq(node) {
                *node = Node::seq(vec![node.clone()]);
            }
        }
    }
    if path.matches("services.*.env_file") {
        unify_env_files(actual, expected);
    }
    match (&mut actual.value, &mut expected.value) {
        (Value::Map(a), Value::Map(e)) => {
            for (key, a_value) in a.iter_mut() {
                if let Some(e_value) = e.get_mut(key) {
                    path.push_key(key);
                    unify(a_value, e_value, path);
                    path.pop();
                }
            }
        }
        (Value::Seq(a), Value::Seq(e)) => {
            for (i, (a_item, e_item)) in a.iter_mut().zip(e.iter_mut()).enumerate() {
                path.push_index(i);
                unify(a_item, e_item, path);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Converts both sides, or neither when one side has no faithful
/// conversion (so that the difference shows).
fn convert_both(actual: &mut Node, expected: &mut Node, convert: impl Fn(&Node) -> Option<Node>) {
    if let (Some(a), Some(e)) = (convert(actual), convert(expected)) {
        *actual = a;
        *expected = e;
    }
}

/// `KEY=VALUE` entries as a mapping of text (compose reads every value as
/// text: `FOO: 3` is `FOO=3`); a bare `KEY` is `KEY: null`.
fn key_value_form(node: &Node) -> Option<Node> {
    let mut map = Map::new();
    match &node.value {
        Value::Map(entries) => {
            for (key, value) in entries {
                let text = match &value.value {
                    Value::Null => Node::null(),
                    _ => Node::string(value.scalar_text()?),
                };
                map.insert(key.clone(), text);
            }
        }
        Value::Seq(items) => {
            for item in items {
                let text = item.scalar_text()?;
                let (key, value) = match text.split_once('=') {
                    Some((k, v)) => (k.to_string(), Node::string(v)),
                    None => (text, Node::null()),
                };
                if map.insert(key, value).is_some() {
                    return None;
                }
            }
        }
        _ => return None,
    }
    Some(Node::map(map))
}

/// Extra hosts as host -> addresses in order (`host=ip` or `host:ip`).
fn host_form(node: &Node) -> Option<Node> {
    let mut hosts: Map = Map::new();
    let mut add = |host: &str, ip: String| {
        let entry = hosts
            .entry(host.to_string())
            .or_insert_with(|| Node::seq(Vec::new()));
        if let Value::Seq(ips) = &mut entry.value {
            ips.push(Node::string(ip));
        }
    };
    match &node.value {
        Value::Map(entries) => {
            for (host, value) in entries {
                match &value.value {
                    Value::Seq(ips) => {
                        for ip in ips {
                            add(host, ip.scalar_text()?);
                        }
                    }
                    _ => add(host, value.scalar_text()?),
                }
            }
        }
        Value::Seq(items) => {
            for item in items {
                let text = item.scalar_text()?;
                let (host, ip) = text.split_once('=').or_else(|| text.split_once(':'))?;
                add(host, ip.to_string());
            }
        }
        _ => return None,
    }
    Some(Node::map(hosts))
}

/// A list of names as `name: <defaults>` (null without defaults).
fn name_form(node: &Node, defaults: Option<&Map>) -> Option<Node> {
    match &node.value {
        Value::Map(_) => Some(node.clone()),
        Value::Seq(items) => {
            let mut map = Map::new();
            for item in items {
                let value = defaults.map_or_else(Node::null, |d| Node::map(d.clone()));
                if map.insert(item.as_str()?.to_string(), value).is_some() {
                    return None;
                }
            }
            Some(Node::map(map))
        }
        _ => None,
    }
}

/// Where one side lists an env file by path and the other in long form,
/// the path alone means `{path: <path>, required: true}`.
///
/// Needed for `TestMergeEnvFilesMixed-StringThenSequence`, whose files are
/// identical to `…-Unicity_between_string_and_mapping` but whose expected
/// result lists `foo.env` by path. In upstream's test the first two
/// subtests run while the shared `r` is still `env_file: foo.env`; the
/// transcription gave them the long form `r` is reassigned to afterwards
/// (`…-SequenceThenString` passes either way).
fn unify_env_files(actual: &mut Node, expected: &mut Node) {
    let (Value::Seq(a), Value::Seq(e)) = (&mut actual.value, &mut expected.value) else {
        return;
    };
    for (a_item, e_item) in a.iter_mut().zip(e.iter_mut()) {
        if is_map(a_item) != is_map(e_item) {
            for item in [a_item, e_item] {
                *item = env_file_long(item);
            }
        }
    }
}

fn is_map(node: &Node) -> bool {
    matches!(node.value, Value::Map(_))
}

fn env_file_long(node: &Node) -> Node {
    match &node.value {
        Value::Map(map) => {
            let mut map = map.clone();
            map.entry("required".to_string())
                .or_insert_with(|| Node::new(Value::Bool(true)));
            Node::map(map)
        }
        _ => Node::map(Map::from_iter([
            ("path".to_string(), node.clone()),
            ("required".to_string(), Node::new(Value::Bool(true))),
        ])),
    }
}

/// Every place where the two trees differ: mapping key order does not
/// matter, sequence order and scalar types do.
fn diff(actual: &Node, expected: &Node, path: &mut DocPath, out: &mut Vec<String>) {
    let here = |path: &DocPath| {
        if path.is_root() {
            "(document)".to_string()
        } else {
            path.to_string()
        }
    };
    match (&actual.value, &expected.value) {
        (Value::Map(a), Value::Map(e)) => {
            for (key, a_value) in a {
                path.push_key(key);
                match e.get(key) {
                    Some(e_value) => diff(a_value, e_value, path, out),
                    None => out.push(format!(
                        "  {}: unexpected {}",
                        here(path),
                        a_value.to_json()
                    )),
                }
                path.pop();
            }
            for (key, e_value) in e {
                if !a.contains_key(key) {
                    path.push_key(key);
                    out.push(format!(
                        "  {}: missing, expected {}",
                        here(path),
                        e_value.to_json()
                    ));
                    path.pop();
                }
            }
        }
        (Value::Seq(a), Value::Seq(e)) if a.len() == e.len() => {
            for (i, (a_item, e_item)) in a.iter().zip(e).enumerate() {
                path.push_index(i);
                diff(a_item, e_item, path, out);
                path.pop();
            }
        }
        _ if actual.to_json() == expected.to_json() => {}
        _ => out.push(format!(
            "  {}:\n    actual:   {}\n    expected: {}",
            here(path),
            actual.to_json(),
            expected.to_json()
        )),
    }
}

#[test]
fn the_comparison_does_not_hide_differences() {
    let check = |actual: &str, expected: &str| {
        let mut a = parse_documents(actual).expect("parses").remove(0);
        let mut e = parse_documents(expected).expect("parses").remove(0);
        unify(&mut a, &mut e, &mut DocPath::root());
        let mut diffs = Vec::new();
        diff(&a, &e, &mut DocPath::root(), &mut diffs);
        diffs.is_empty()
    };
    let env = |body: &str| format!("services:\n  s:\n    environment: {body}\n");
    assert!(check(&env("{A: 1, B: null}"), &env("[A=1, B]")));
    // A key left twice is a unicity failure, not a form difference.
    assert!(!check(&env("[A=1, A=2]"), &env("{A: '2'}")));
    // Two lists compare as lists: order matters.
    assert!(!check(&env("[A=1, B=2]"), &env("[B=2, A=1]")));
    assert!(!check(&env("{A: 1}"), &env("[A=2]")));
    assert!(!check(&env("{A: null}"), &env("[A=]")));
    let ports = |body: &str| format!("services:\n  s:\n    ports: {body}\n");
    assert!(!check(&ports("['80', '81']"), &ports("['81', '80']")));
    assert!(!check(&ports("[80]"), &ports("['80']")));
    let env_file = |body: &str| format!("services:\n  s:\n    env_file: {body}\n");
    assert!(check(
        &env_file("[a.env]"),
        &env_file("[{path: a.env, required: true}]")
    ));
    assert!(!check(
        &env_file("[a.env]"),
        &env_file("[{path: a.env, required: false}]")
    ));
    let networks = |body: &str| format!("services:\n  s:\n    networks: {body}\n");
    assert!(check(&networks("[a, b]"), &networks("{a: null, b: null}")));
    assert!(!check(&networks("[a, b]"), &networks("{a: {}, b: null}")));
    let hosts = |body: &str| format!("services:\n  s:\n    extra_hosts: {body}\n");
    assert!(check(&hosts("{h: [a, b]}"), &hosts("[h=a, h=b]")));
    assert!(!check(&hosts("{h: [b, a]}"), &hosts("[h=a, h=b]")));
}
