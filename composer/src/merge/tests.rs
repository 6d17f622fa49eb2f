//! Unit tests of the merge engine: rules, syntax mixes, tags, errors.

use serde_json::json;

use super::*;
use crate::yaml::parse_documents;

fn doc(yaml: &str) -> Node {
    parse_documents(yaml).expect("parses").remove(0)
}

/// `-f base -f over`, then the passes the loader runs after merging.
fn merged(base: &str, over: &str) -> serde_json::Value {
    let mut result = merge_documents(doc(base), doc(over)).expect("merges");
    strip_tags(&mut result);
    apply_unicity(&mut result);
    result.to_json()
}

fn service(base: &str, over: &str) -> serde_json::Value {
    merged(
        &format!("services:\n  s:\n{}", indent(base)),
        &format!("services:\n  s:\n{}", indent(over)),
    )["services"]["s"]
        .clone()
}

fn no_tags(node: &Node) -> bool {
    node.tag.is_none()
        && match &node.value {
            Value::Map(map) => map.values().all(no_tags),
            Value::Seq(items) => items.iter().all(no_tags),
            _ => true,
        }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

#[test]
fn mappings_merge_and_later_scalars_win() {
    let got = merged(
        "name: a\nservices:\n  web: {image: a, user: root}\nx-a: {k: 1}\n",
        "name: b\nservices:\n  web: {image: b}\n  db: {image: pg}\nx-a: {l: 2}\n",
    );
    assert_eq!(
        got,
        json!({
            "name": "b",
            "services": {"web": {"image": "b", "user": "root"}, "db": {"image": "pg"}},
            "x-a": {"k": 1, "l": 2},
        })
    );
}

#[test]
fn commands_are_replaced_and_lists_appended() {
    let got = service(
        "command: [a, b]\nentrypoint: sh\nhealthcheck: {test: [CMD, a], retries: 3}\ncap_add: [A]\n",
        "command: [c]\nentrypoint: [bash]\nhealthcheck: {test: [CMD, b]}\ncap_add: [B, A]\n",
    );
    assert_eq!(got["command"], json!(["c"]));
    assert_eq!(got["entrypoint"], json!(["bash"]));
    assert_eq!(
        got["healthcheck"],
        json!({"test": ["CMD", "b"], "retries": 3})
    );
    assert_eq!(got["cap_add"], json!(["A", "B"]));
}

#[test]
fn key_values_stay_a_mapping_when_both_sides_are_mappings() {
    let got = service(
        "environment: {A: 1, B: x}\nlabels: [a=1, b=2]\n",
        "environment: {B: null, C: ''}\nlabels: [b=3]\n",
    );
    assert_eq!(got["environment"], json!({"A": 1, "B": null, "C": ""}));
    assert_eq!(got["labels"], json!(["a=1", "b=3"]));
}

#[test]
fn mixed_key_value_forms_come_out_as_a_mapping() {
    let got = service(
        "environment: [A=1, B, C=x]\n",
        "environment: {C: y, D: 2}\n",
    );
    assert_eq!(
        got["environment"],
        json!({"A": "1", "B": null, "C": "y", "D": 2})
    );
    let got = service("labels: {a: 1}\n", "labels: [b=2, a]\n");
    assert_eq!(got["labels"], json!({"a": null, "b": "2"}));
}

#[test]
fn short_and_long_syntaxes_meet() {
    let got = service(
        "build: .\ndepends_on: [db]\nnetworks: [front]\nenv_file: a.env\nextra_hosts: {h: 1.1.1.1}\nulimits: {nproc: 10, nofile: {soft: 1, hard: 2}}\nmem_limit: 1g\nports: ['80:80']\nvolumes: ['./a:/data']\n",
        "build: {dockerfile: D}\ndepends_on: {db: {condition: service_healthy}, cache: {condition: service_started}}\nnetworks: {back: {aliases: [b]}}\nenv_file: [{path: b.env, required: false}]\nextra_hosts: [h=2.2.2.2, i:3.3.3.3]\nulimits: {nproc: {soft: 5, hard: 6}, nofile: 3}\nmem_limit: 1073741824\nports: [{target: 80, published: '80'}]\nvolumes: [{type: volume, source: v, target: /data}]\n",
    );
    assert_eq!(got["build"], json!({"context": ".", "dockerfile": "D"}));
    assert_eq!(
        got["depends_on"],
        json!({
            "db": {"condition": "service_healthy", "required": true},
            "cache": {"condition": "service_started"},
        })
    );
    assert_eq!(
        got["networks"],
        json!({"front": null, "back": {"aliases": ["b"]}})
    );
    assert_eq!(
        got["env_file"],
        json!(["a.env", {"path": "b.env", "required": false}])
    );
    assert_eq!(
        got["extra_hosts"],
        json!({"h": ["1.1.1.1", "2.2.2.2"], "i": "3.3.3.3"})
    );
    assert_eq!(
        got["ulimits"],
        json!({"nproc": {"soft": 5, "hard": 6}, "nofile": 3})
    );
    assert_eq!(got["mem_limit"], json!(1073741824));
    assert_eq!(
        service("extends: {file: b.yaml, service: a}\n", "extends: c\n")["extends"],
        json!("c")
    );
    // Short and long port syntax are different entries until normalised.
    assert_eq!(
        got["ports"],
        json!(["80:80", {"target": 80, "published": "80"}])
    );
    // Volumes are keyed by target whatever the syntax.
    assert_eq!(
        got["volumes"],
        json!([{"type": "volume", "source": "v", "target": "/data"}])
    );
}

#[test]
fn name_lists_stay_lists_when_both_sides_are_lists() {
    let got = service(
        "networks: [a, b]\ndepends_on: [x]\n",
        "networks: [b, c]\ndepends_on: [y]\n",
    );
    assert_eq!(got["networks"], json!(["a", "b", "c"]));
    assert_eq!(got["depends_on"], json!(["x", "y"]));
}

#[test]
fn logging_options_merge_only_for_the_same_driver() {
    let got = service(
        "logging: {driver: json-file, options: {max-size: 1m}}\n",
        "logging: {options: {max-file: '3'}}\n",
    );
    assert_eq!(
        got["logging"],
        json!({"driver": "json-file", "options": {"max-size": "1m", "max-file": "3"}})
    );
    let got = service(
        "logging: {driver: json-file, options: {max-size: 1m}}\n",
        "logging: {driver: syslog}\n",
    );
    assert_eq!(got["logging"], json!({"driver": "syslog"}));
}

#[test]
fn null_adds_nothing_and_an_empty_base_takes_the_override() {
    let got = service(
        "image: a\nnetworks: [n]\nenvironment: {A: 1}\ndevelop:\n",
        "image:\nnetworks:\nenvironment:\ndevelop: {watch: []}\n",
    );
    assert_eq!(
        got,
        json!({"image": "a", "networks": ["n"], "environment": {"A": 1}, "develop": {"watch": []}})
    );
    // `command: null` replaces, as compose-go does for replaced fields.
    assert_eq!(
        service("command: a\n", "command:\n")["command"],
        json!(null)
    );
}

#[test]
fn reset_removes_the_inherited_value() {
    let got = merged(
        "services:\n  web:\n    image: a\n    command: run\n    ports: ['80:80']\n    environment: {FOO: bar, KEEP: 1}\n  gone: {image: b}\n",
        "services:\n  web:\n    command: !reset\n    ports: !reset []\n    environment:\n      FOO: !reset null\n  gone: !reset\n",
    );
    assert_eq!(
        got,
        json!({"services": {"web": {"image": "a", "environment": {"KEEP": 1}}}})
    );
}

#[test]
fn reset_in_the_middle_file_lets_a_later_file_set_the_value_again() {
    let base = doc("services:\n  web:\n    command: a\n    user: root\n");
    let reset = doc("services:\n  web:\n    command: !reset\n    user: !reset\n");
    let later = doc("services:\n  web:\n    command: c\n");
    let mut result = merge_documents(base, reset).expect("merges");
    result = merge_documents(result, later).expect("merges");
    strip_tags(&mut result);
    assert_eq!(
        result.to_json(),
        json!({"services": {"web": {"command": "c"}}})
    );
}

#[test]
fn override_replaces_instead_of_merging() {
    let got = merged(
        "services:\n  web:\n    image: a\n    ports: ['80:80']\n    environment: {A: 1}\n  db: {image: pg, user: x}\n",
        "services:\n  web:\n    ports: !override ['443:443']\n    environment: !override {B: 2}\n  db: !override {image: mysql}\n",
    );
    assert_eq!(
        got,
        json!({"services": {
            "web": {"image": "a", "ports": ["443:443"], "environment": {"B": 2}},
            "db": {"image": "mysql"},
        }})
    );
}

#[test]
fn tags_in_a_single_file_do_not_reach_the_model() {
    let mut single = doc(
        "services:\n  web:\n    command: !reset run\n    ports: !override ['80:80']\n    environment:\n      A: !reset\n      B: !override 1\n    volumes: [!reset a, b]\n",
    );
    strip_tags(&mut single);
    assert_eq!(
        single.to_json(),
        json!({"services": {"web": {"ports": ["80:80"], "environment": {"B": 1}, "volumes": ["b"]}}})
    );
    assert!(no_tags(&single));
}

#[test]
fn tags_in_a_new_service_are_stripped_too() {
    let got = merged(
        "services: {}\n",
        "services:\n  web:\n    image: a\n    command: !reset x\n    ports: !override ['1:1']\n",
    );
    assert_eq!(
        got,
        json!({"services": {"web": {"image": "a", "ports": ["1:1"]}}})
    );
}

#[test]
fn merge_service_applies_the_service_rules_for_extends() {
    // base = the extended service, over = the local definition.
    let base = doc(
        "image: nginx\ncommand: [nginx, -g, daemon off;]\nenvironment: [A=1, B=2]\nports: ['80:80']\nvolumes: ['data:/data']\nbuild: .\n",
    );
    let local = doc(
        "command: !reset\nenvironment: {B: 3}\nports: ['8080:80']\nvolumes: ['./src:/data']\nbuild: {dockerfile: Dev}\nhostname: local\n",
    );
    let path = DocPath::root().key("services").key("web");
    let mut web = merge_service(base, local, &path).expect("merges");
    strip_tags(&mut web);
    let mut project = Node::map(Map::from_iter([(
        "services".to_string(),
        Node::map(Map::from_iter([("web".to_string(), web)])),
    )]));
    apply_unicity(&mut project);
    assert_eq!(
        project.to_json()["services"]["web"],
        json!({
            "image": "nginx",
            "environment": {"A": "1", "B": 3},
            "ports": ["80:80", "8080:80"],
            "volumes": ["./src:/data"],
            "build": {"context": ".", "dockerfile": "Dev"},
            "hostname": "local",
        })
    );
}

#[test]
fn kind_conflicts_are_errors_with_the_later_value_s_place() {
    let mut over = doc("services:\n  web:\n    cap_add: SYS_ADMIN\n");
    over.set_file(2);
    let err =
        merge_documents(doc("services:\n  web:\n    cap_add: [NET_ADMIN]\n"), over).unwrap_err();
    assert_eq!(err.path.to_string(), "services.web.cap_add");
    assert_eq!((err.line, err.file), (3, 2));
    assert_eq!(
        err.to_string(),
        "services.web.cap_add: cannot merge a string into a list; tag the value !override to replace it"
    );
    // The tag is the way out.
    assert!(
        merge_documents(
            doc("services:\n  web:\n    cap_add: [NET_ADMIN]\n"),
            doc("services:\n  web:\n    cap_add: !override SYS_ADMIN\n"),
        )
        .is_ok()
    );
    let err = merge_documents(doc("services: {}\n"), doc("- a\n")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot merge a list into a mapping; tag the value !override to replace it"
    );
}

#[test]
fn fields_with_two_forms_take_the_later_form() {
    let got = service("gpus: [{driver: nvidia, count: 1}]\n", "gpus: all\n");
    assert_eq!(got["gpus"], json!("all"));
    let got = merged(
        "networks:\n  n: {external: {name: x}}\n",
        "networks:\n  n: {external: true}\n",
    );
    assert_eq!(got["networks"]["n"], json!({"external": true}));
    // A scalar base is replaced by anything, as in compose.
    assert_eq!(
        service("init: true\n", "init: {a: 1}\n")["init"],
        json!({"a": 1})
    );
}

#[test]
fn bad_entries_in_forms_being_converted_are_errors() {
    let err = merge_documents(
        doc("services:\n  s:\n    environment: {A: 1}\n"),
        doc("services:\n  s:\n    environment: [[nested]]\n"),
    )
    .unwrap_err();
    assert_eq!(err.path.to_string(), "services.s.environment[0]");
    let err = merge_documents(
        doc("services:\n  s:\n    extra_hosts: {a: 1.1.1.1}\n"),
        doc("services:\n  s:\n    extra_hosts: [nohost]\n"),
    )
    .unwrap_err();
    assert_eq!(err.path.to_string(), "services.s.extra_hosts[0]");
    assert!(
        merge_documents(
            doc("services:\n  s:\n    networks: {a: {}}\n"),
            doc("services:\n  s:\n    networks: [{a: 1}]\n"),
        )
        .is_err()
    );
}

#[test]
fn ipam_pools_merge_by_subnet() {
    let got = merged(
        "networks:\n  n:\n    ipam:\n      config:\n        - {subnet: 10.0.0.0/8, gateway: 10.0.0.1}\n        - {subnet: 11.0.0.0/8}\n",
        "networks:\n  n:\n    ipam:\n      config:\n        - {subnet: 12.0.0.0/8}\n        - {subnet: 10.0.0.0/8, gateway: 10.0.0.254}\n",
    );
    assert_eq!(
        got["networks"]["n"]["ipam"]["config"],
        json!([
            {"subnet": "10.0.0.0/8", "gateway": "10.0.0.254"},
            {"subnet": "11.0.0.0/8"},
            {"subnet": "12.0.0.0/8"},
        ])
    );
}

#[test]
fn merged_values_keep_their_lines() {
    let base = doc("services:\n  web:\n    image: a\n    user: root\n");
    let over = doc("services:\n  web:\n\n\n    image: b\n");
    let result = merge_documents(base, over).expect("merges");
    let web = result
        .get("services")
        .and_then(|s| s.get("web"))
        .expect("web");
    assert_eq!(web.get("image").map(|n| n.line), Some(5));
    assert_eq!(web.get("user").map(|n| n.line), Some(4));
}

mod never_panics {
    use proptest::prelude::*;

    use super::*;

    const FIELDS: &[&str] = &[
        "environment",
        "labels",
        "extra_hosts",
        "networks",
        "depends_on",
        "build",
        "logging",
        "env_file",
        "dns",
        "ulimits",
        "ports",
        "volumes",
        "secrets",
        "devices",
        "command",
        "gpus",
        "image",
    ];

    fn leaf() -> impl Strategy<Value = Node> {
        prop_oneof![
            Just(Node::null()),
            any::<i64>().prop_map(|i| Node::new(Value::Int(i))),
            any::<bool>().prop_map(|b| Node::new(Value::Bool(b))),
            "[a-c=:/.]{0,6}".prop_map(Node::string),
        ]
    }

    fn tagged(node: Node, tag: u8) -> Node {
        let tag = match tag {
            0 => Some(Tag::Reset),
            1 => Some(Tag::Override),
            _ => None,
        };
        Node { tag, ..node }
    }

    fn value() -> impl Strategy<Value = Node> {
        leaf().prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                (prop::collection::vec(inner.clone(), 0..4), 0u8..6)
                    .prop_map(|(items, tag)| tagged(Node::seq(items), tag)),
                (
                    prop::collection::vec(("[a-c]|subnet|target|driver", inner), 0..4),
                    0u8..6
                )
                    .prop_map(|(entries, tag)| tagged(Node::map(Map::from_iter(entries)), tag)),
            ]
        })
    }

    fn document() -> impl Strategy<Value = Node> {
        prop::collection::vec((prop::sample::select(FIELDS), value()), 0..6).prop_map(|fields| {
            let service = Node::map(
                fields
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            );
            let services = Node::map(Map::from_iter([("s".to_string(), service)]));
            Node::map(Map::from_iter([("services".to_string(), services)]))
        })
    }

    proptest! {
        #[test]
        fn merging_any_two_documents_is_a_result_or_an_error(base in document(), over in document()) {
            if let Ok(mut doc) = merge_documents(base, over) {
                strip_tags(&mut doc);
                prop_assert!(no_tags(&doc));
                apply_unicity(&mut doc);
            }
        }
    }
}
