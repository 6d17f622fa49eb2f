//! `berth config` output, read back through the whole loader, gives the
//! same model — for projects written in any mix of short and long
//! syntaxes. Both output formats are checked.

use std::fmt::Write as _;
use std::path::PathBuf;

use berth_composer::{LoadedProject, ProjectOptions, load, render};
use proptest::prelude::*;

fn q(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

/// Strings that YAML or compose could misread if printed carelessly.
fn tricky_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("true".to_string()),
        Just("no".to_string()),
        Just("8080".to_string()),
        Just("1.50".to_string()),
        Just("0x1F".to_string()),
        Just("null".to_string()),
        Just("~".to_string()),
        Just("a: b".to_string()),
        Just(" padded ".to_string()),
        Just("#not a comment".to_string()),
        Just("multi\nline".to_string()),
        Just("quote ' and \" both".to_string()),
        Just("$$HOME and $${literal}".to_string()),
        "[a-zA-Z0-9 ._/-]{0,12}",
    ]
}

#[derive(Debug, Clone)]
struct Port {
    target: u16,
    protocol: Option<&'static str>,
    host_ip: Option<&'static str>,
    long: bool,
    publish: bool,
}

#[derive(Debug, Clone)]
struct Service {
    image: String,
    env: Vec<(String, Option<String>)>,
    env_as_list: bool,
    labels: Vec<(String, String)>,
    command: Option<(Vec<String>, bool)>,
    ports: Vec<Port>,
    bind: Option<(bool, bool)>,
    named_volume: bool,
    health: Option<(bool, &'static str)>,
    depends_on_previous: Option<bool>,
    networks_as_list: Option<bool>,
    memory: Option<&'static str>,
    replicas: Option<u8>,
    extension: Option<String>,
}

fn port() -> impl Strategy<Value = Port> {
    (
        1u16..65535,
        prop::option::of(prop_oneof![Just("tcp"), Just("udp")]),
        prop::option::of(prop_oneof![Just("127.0.0.1"), Just("::1")]),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(target, protocol, host_ip, long, publish)| Port {
            target,
            protocol,
            host_ip: host_ip.filter(|_| publish),
            long,
            publish,
        })
}

fn service() -> impl Strategy<Value = Service> {
    (
        (
            "[a-z][a-z0-9]{0,6}(:[0-9]{1,2})?",
            prop::collection::btree_map(
                "[A-Z][A-Z0-9_]{0,5}",
                prop::option::of(tricky_value()),
                0..4,
            )
            .prop_map(|m| m.into_iter().collect::<Vec<_>>()),
            any::<bool>(),
            prop::collection::btree_map("[a-z][a-z.]{0,8}", tricky_value(), 0..3)
                .prop_map(|m| m.into_iter().collect::<Vec<_>>()),
            prop::option::of((
                prop::collection::vec("[a-z0-9=/$-]{1,6}", 1..4),
                any::<bool>(),
            )),
            prop::collection::vec(port(), 0..3),
            prop::option::of((any::<bool>(), any::<bool>())),
        ),
        (
            any::<bool>(),
            prop::option::of((
                any::<bool>(),
                prop_oneof![
                    Just("1m30s"),
                    Just("500ms"),
                    Just("2h"),
                    Just("10s"),
                    Just("1.5s")
                ],
            )),
            prop::option::of(any::<bool>()),
            prop::option::of(any::<bool>()),
            prop::option::of(prop_oneof![
                Just("512m"),
                Just("1g"),
                Just("1048576"),
                Just("64kb")
            ]),
            prop::option::of(0u8..4),
            prop::option::of(tricky_value()),
        ),
    )
        .prop_map(
            |(
                (image, env, env_as_list, labels, command, ports, bind),
                (
                    named_volume,
                    health,
                    depends_on_previous,
                    networks_as_list,
                    memory,
                    replicas,
                    extension,
                ),
            )| Service {
                image,
                env,
                env_as_list,
                labels,
                command,
                ports,
                bind,
                named_volume,
                health,
                depends_on_previous,
                networks_as_list,
                memory,
                replicas,
                extension,
            },
        )
}

/// The compose file for `services`, each key in the syntax the case chose.
fn compose_text(services: &[Service]) -> String {
    let mut t = String::from("services:\n");
    for (i, s) in services.iter().enumerate() {
        let _ = writeln!(t, "  s{i}:\n    image: {}", q(&s.image));
        if !s.env.is_empty() {
            t.push_str("    environment:\n");
            for (k, v) in &s.env {
                let _ = match (s.env_as_list, v) {
                    (true, Some(v)) => writeln!(t, "      - {}", q(&format!("{k}={v}"))),
                    (true, None) => writeln!(t, "      - {k}"),
                    (false, Some(v)) => writeln!(t, "      {k}: {}", q(v)),
                    (false, None) => writeln!(t, "      {k}:"),
                };
            }
        }
        if !s.labels.is_empty() {
            t.push_str("    labels:\n");
            for (k, v) in &s.labels {
                let _ = writeln!(t, "      {}: {}", q(k), q(v));
            }
        }
        if let Some((words, as_list)) = &s.command {
            if *as_list {
                let items: Vec<String> = words.iter().map(|w| q(w)).collect();
                let _ = writeln!(t, "    command: [{}]", items.join(", "));
            } else {
                let _ = writeln!(t, "    command: {}", q(&words.join(" ")));
            }
        }
        if !s.ports.is_empty() {
            t.push_str("    ports:\n");
            for (j, p) in s.ports.iter().enumerate() {
                let published = 10000 + i * 10 + j;
                let protocol = p.protocol.unwrap_or("tcp");
                if p.long {
                    let _ = write!(
                        t,
                        "      - target: {}\n        protocol: {protocol}\n",
                        p.target
                    );
                    if p.publish {
                        let _ = writeln!(t, "        published: {published}");
                    }
                    if let Some(ip) = p.host_ip {
                        let _ = writeln!(t, "        host_ip: {}", q(ip));
                    }
                } else {
                    let mut short = String::new();
                    if let Some(ip) = p.host_ip {
                        short += &if ip.contains(':') {
                            format!("[{ip}]:")
                        } else {
                            format!("{ip}:")
                        };
                    }
                    if p.publish {
                        short += &format!("{published}:");
                    }
                    short += &p.target.to_string();
                    if let Some(proto) = p.protocol {
                        short += &format!("/{proto}");
                    }
                    let _ = writeln!(t, "      - {}", q(&short));
                }
            }
        }
        if s.bind.is_some() || s.named_volume {
            t.push_str("    volumes:\n");
            if let Some((long, read_only)) = s.bind {
                if long {
                    let _ = writeln!(
                        t,
                        "      - type: bind\n        source: ./data{i}\n        target: /data\n        read_only: {read_only}"
                    );
                } else {
                    let _ = writeln!(
                        t,
                        "      - ./data{i}:/data{}",
                        if read_only { ":ro" } else { "" }
                    );
                }
            }
            if s.named_volume {
                t.push_str("      - shared:/shared\n");
            }
        }
        if let Some((as_list, interval)) = s.health {
            if as_list {
                let _ = writeln!(
                    t,
                    "    healthcheck:\n      test: [\"CMD\", \"true\"]\n      interval: {interval}"
                );
            } else {
                let _ = writeln!(
                    t,
                    "    healthcheck:\n      test: true && exit 0\n      timeout: {interval}"
                );
            }
        }
        if let (Some(as_list), true) = (s.depends_on_previous, i > 0) {
            if as_list {
                let _ = writeln!(t, "    depends_on: [s{}]", i - 1);
            } else {
                let _ = writeln!(
                    t,
                    "    depends_on:\n      s{}:\n        condition: service_healthy\n        required: false",
                    i - 1
                );
            }
        }
        match s.networks_as_list {
            Some(true) => t.push_str("    networks: [front, default]\n"),
            Some(false) => t.push_str("    networks:\n      front:\n        aliases: [web]\n"),
            None => {}
        }
        if let Some(memory) = s.memory {
            let _ = writeln!(t, "    mem_limit: {memory}");
        }
        if let Some(replicas) = s.replicas {
            let _ = writeln!(t, "    deploy:\n      replicas: {replicas}");
        }
        if let Some(extension) = &s.extension {
            let _ = writeln!(t, "    x-note: {}", q(extension));
        }
    }
    t.push_str("networks:\n  front: {}\nvolumes:\n  shared: {}\nx-top:\n  keep: [1, two]\n");
    t
}

fn load_text(text: &str) -> Result<LoadedProject, berth_composer::LoadError> {
    load(&ProjectOptions {
        files: vec![PathBuf::from("-")],
        project_name: Some("roundtrip".into()),
        working_dir: PathBuf::from("/srv/app"),
        project_directory: Some(PathBuf::from("/srv/app")),
        environment: [("HOME".to_string(), "/root".to_string())]
            .into_iter()
            .collect(),
        stdin: Some(text.to_string()),
        ..ProjectOptions::default()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn config_output_loads_back_to_the_same_model(services in prop::collection::vec(service(), 1..5)) {
        let text = compose_text(&services);
        let first = load_text(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let yaml = render::yaml(&first.project).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let again = load_text(&yaml).map_err(|e| TestCaseError::fail(format!("{e}\n--- printed:\n{yaml}")))?;
        prop_assert_eq!(&again.project, &first.project, "YAML output:\n{}", yaml);
        let json = render::json(&first.project).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let again = load_text(&json).map_err(|e| TestCaseError::fail(format!("{e}\n--- printed:\n{json}")))?;
        prop_assert_eq!(&again.project, &first.project, "JSON output:\n{}", json);
    }
}

/// Inputs the fuzz target found whose printed form did not load back the
/// same: list-form service `models`, and `extra_hosts` addresses with commas
/// (split differently per syntax, and repeated once split).
#[test]
fn fuzz_found_inputs_round_trip() {
    let cases = [
        "services:\n  app:\n    image: a\n    models: [llm]\nmodels:\n  llm:\n    model: ai/smollm2\n",
        "services:\n  t:\n    image: foo\n    extra_hosts:\n      \"example.com\": \"1.2.3.4,b,c\"\n",
        "services:\n  t:\n    image: foo\n    extra_hosts:\n      \"example.com\": \"1.2$.3.4,,,x,,\"\n",
    ];
    for text in cases {
        let first = load_text(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let yaml = render::yaml(&first.project).expect("prints");
        let again = load_text(&yaml).unwrap_or_else(|e| panic!("{e}\n--- printed:\n{yaml}"));
        assert_eq!(again.project, first.project, "{yaml}");
    }
}
