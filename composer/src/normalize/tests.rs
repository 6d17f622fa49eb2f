//! The normaliser, syntax by syntax, its fixed point, and the model's
//! round trip through its printed form.

use indexmap::IndexMap;

use super::*;
use crate::model::*;
use crate::yaml::parse_documents;

fn parse(text: &str) -> Node {
    let mut docs = parse_documents(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(docs.len(), 1, "{text}");
    docs.remove(0)
}

fn norm(text: &str) -> Node {
    normalize_document(parse(text)).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn norm_err(text: &str) -> NormalizeError {
    match normalize_document(parse(text)) {
        Ok(doc) => panic!("expected an error, got {:?}", doc.to_json()),
        Err(err) => err,
    }
}

/// The canonical form of one service written as YAML under `services.s`.
fn service(body: &str) -> Node {
    let text = format!("services:\n  s:\n{}", indent(body));
    let doc = norm(&text);
    doc.get("services")
        .and_then(|s| s.get("s"))
        .cloned()
        .unwrap_or_else(|| panic!("no service in {:?}", doc.to_json()))
}

fn indent(body: &str) -> String {
    body.lines().map(|l| format!("    {l}\n")).collect()
}

/// Asserts a service's canonical form equals `expected` (YAML).
fn assert_service(body: &str, expected: &str) {
    let got = service(body);
    let want = parse(expected);
    assert_eq!(
        got.to_json(),
        want.to_json(),
        "\ninput:\n{body}\nexpected:\n{expected}"
    );
    assert_eq!(got, want, "same JSON but not the same node types");
}

#[test]
fn ports_short_long_and_numeric() {
    assert_service(
        r#"ports:
  - 80
  - "8080:80"
  - "127.0.0.1:5000-5001:5000-5001/udp"
  - "[::1]:9000:9000"
  - "8000-8010:8000"
  - target: "443"
    published: 8443
    x-note: kept
  - target: 53
    protocol: udp
    mode: host
    published: ""
"#,
        r#"ports:
  - {mode: ingress, target: 80, protocol: tcp}
  - {mode: ingress, target: 80, published: "8080", protocol: tcp}
  - {mode: ingress, host_ip: 127.0.0.1, target: 5000, published: "5000", protocol: udp}
  - {mode: ingress, host_ip: 127.0.0.1, target: 5001, published: "5001", protocol: udp}
  - {mode: ingress, host_ip: "::1", target: 9000, published: "9000", protocol: tcp}
  - {mode: ingress, target: 8000, published: "8000-8010", protocol: tcp}
  - {target: 443, published: "8443", x-note: kept, mode: ingress, protocol: tcp}
  - {target: 53, protocol: udp, mode: host}
"#,
    );
    assert_service(
        "expose: [3000, \"8000-8010/udp\"]",
        "expose: [\"3000\", \"8000-8010/udp\"]",
    );
}

#[test]
fn volumes_every_short_form() {
    assert_service(
        r#"volumes:
  - /data
  - data:/var/lib/data
  - ./src:/app:ro,z
  - /opt/logs:/logs:rw,rshared
  - ~/cfg:/cfg:Z
  - cache:/cache:nocopy
  - .:/code:cached
  - type: tmpfs
    target: /tmp
    tmpfs: {size: 64m, mode: "1777"}
  - type: bind
    source: /a
    target: /b
    read_only: "true"
    bind: {create_host_path: "false"}
"#,
        r#"volumes:
  - {type: volume, target: /data, volume: {}}
  - {type: volume, source: data, target: /var/lib/data, volume: {}}
  - {type: bind, source: ./src, target: /app, read_only: true, bind: {create_host_path: true, selinux: z}}
  - {type: bind, source: /opt/logs, target: /logs, bind: {propagation: rshared, create_host_path: true}}
  - {type: bind, source: ~/cfg, target: /cfg, bind: {create_host_path: true, selinux: Z}}
  - {type: volume, source: cache, target: /cache, volume: {nocopy: true}}
  - {type: bind, source: ., target: /code, consistency: cached, bind: {create_host_path: true}}
  - {type: tmpfs, target: /tmp, tmpfs: {size: 67108864, mode: 1023}}
  - {type: bind, source: /a, target: /b, read_only: true, bind: {create_host_path: false}}
"#,
    );
}

#[test]
fn environment_labels_and_friends() {
    assert_service(
        r#"environment: [B=2, A, C=, D=x=y, B=3]
labels: {z: 1, a: true, n: null, f: 1.5}
annotations: [com.x=y, flag]
sysctls: {net.core.somaxconn: 1024}
"#,
        r#"environment: {A: null, B: "3", C: "", D: "x=y"}
labels: {a: "true", f: "1.5", n: "", z: "1"}
annotations: {com.x: y, flag: ""}
sysctls: {net.core.somaxconn: "1024"}
"#,
    );
    assert_service(
        "environment: {Z: 1, A: null, M: false}",
        "environment: {A: null, M: \"false\", Z: \"1\"}",
    );
}

#[test]
fn depends_on_and_networks() {
    assert_service(
        "depends_on: [db, cache]\nnetworks: [front, back]",
        r#"depends_on:
  cache: {condition: service_started, required: true}
  db: {condition: service_started, required: true}
networks: {back: null, front: null}
"#,
    );
    assert_service(
        r#"depends_on:
  db: {condition: service_healthy, restart: "true"}
  init: {condition: service_completed_successfully, required: false}
networks:
  front: {aliases: web, priority: "10", driver_opts: {mtu: 1500}}
  back:
"#,
        r#"depends_on:
  db: {condition: service_healthy, restart: true, required: true}
  init: {condition: service_completed_successfully, required: false}
networks:
  back: null
  front: {aliases: [web], priority: 10, driver_opts: {mtu: "1500"}}
"#,
    );
}

#[test]
fn commands_are_split_like_a_shell() {
    assert_service(
        r#"command: sh -c 'echo "$$HOME" && ls'
entrypoint: ["/bin/tini", "--", 1]
"#,
        r#"command: [sh, -c, 'echo "$$HOME" && ls']
entrypoint: [/bin/tini, "--", "1"]
"#,
    );
    assert_service("command: \"\"\nentrypoint: null", "command: []");
    let err = norm_err("services:\n  s:\n    command: echo 'oops\n");
    assert_eq!(err.path.to_string(), "services.s.command");
    assert_eq!(err.line, 3);
    assert!(err.message.contains("unterminated single quote"), "{err}");
}

#[test]
fn healthcheck_and_durations() {
    assert_service(
        r#"healthcheck:
  test: curl -f http://localhost
  interval: 90s
  timeout: 1500ms
  start_period: 1h
  start_interval: 0
  retries: "3"
stop_grace_period: 1m30s
"#,
        r#"healthcheck:
  test: [CMD-SHELL, curl -f http://localhost]
  interval: 1m30s
  timeout: 1.5s
  start_period: 1h0m0s
  start_interval: 0s
  retries: 3
stop_grace_period: 1m30s
"#,
    );
    assert_service(
        "healthcheck: {test: [NONE], disable: true}",
        "healthcheck: {test: [NONE], disable: true}",
    );
    let err = norm_err("services:\n  s:\n    healthcheck:\n      interval: 1x\n");
    assert_eq!(err.path.to_string(), "services.s.healthcheck.interval");
    assert_eq!(err.line, 4);
    assert!(err.message.starts_with("invalid duration \"1x\""), "{err}");
}

#[test]
fn byte_sizes_and_numbers() {
    assert_service(
        r#"mem_limit: 512m
memswap_limit: -1
shm_size: "1gb"
mem_reservation: "1048576"
cpus: "0.5"
cpu_shares: "512"
cpu_rt_runtime: 950ms
scale: "2"
privileged: "true"
read_only: false
user: 1000
"#,
        r#"mem_limit: 536870912
memswap_limit: -1
shm_size: 1073741824
mem_reservation: 1048576
cpus: 0.5
cpu_shares: 512
cpu_rt_runtime: 950000
scale: 2
privileged: true
read_only: false
user: "1000"
"#,
    );
    assert_service("cpus: 2", "cpus: 2.0");
    let err = norm_err("services:\n  s:\n    mem_limit: 12q\n");
    assert_eq!(err.path.to_string(), "services.s.mem_limit");
    assert!(err.message.starts_with("invalid size \"12q\""), "{err}");
}

#[test]
fn ulimits_extra_hosts_devices() {
    assert_service(
        r#"ulimits:
  nproc: 65535
  nofile: {soft: "20000", hard: 40000}
extra_hosts:
  - somehost=162.242.195.82
  - otherhost:50.31.209.229
  - v6host:::1
  - brackets=[::1]
  - multi=10.0.0.1,10.0.0.2
devices:
  - /dev/ttyUSB0
  - /dev/sda:/dev/xvda
  - /dev/sdb:/dev/xvdb:r
  - {source: /dev/sdc}
"#,
        r#"ulimits:
  nofile: {soft: 20000, hard: 40000}
  nproc: 65535
extra_hosts:
  - somehost=162.242.195.82
  - otherhost=50.31.209.229
  - v6host=::1
  - brackets=::1
  - multi=10.0.0.1
  - multi=10.0.0.2
devices:
  - {source: /dev/ttyUSB0, target: /dev/ttyUSB0, permissions: rwm}
  - {source: /dev/sda, target: /dev/xvda, permissions: rwm}
  - {source: /dev/sdb, target: /dev/xvdb, permissions: r}
  - {source: /dev/sdc}
"#,
    );
    assert_service(
        "extra_hosts: {host1: 10.0.0.1, host2: [\"::1\", \"[::2]\"]}",
        "extra_hosts: [host1=10.0.0.1, host2=::1, host2=::2]",
    );
    let err = norm_err("services:\n  s:\n    ulimits: {nproc: {soft: 1}}\n");
    assert_eq!(err.path.to_string(), "services.s.ulimits.nproc");
    let err = norm_err("services:\n  s:\n    extra_hosts: [nohost]\n");
    assert_eq!(err.path.to_string(), "services.s.extra_hosts[0]");
}

#[test]
fn env_file_build_secrets_and_lists() {
    assert_service(
        r#"env_file: .env
label_file: ./labels
dns: 8.8.8.8
tmpfs: /run
secrets: [token, {source: key, target: /k, mode: "0440", uid: 0}]
configs: [{source: cfg, mode: 0o644}]
extends: base
build: ./dir
"#,
        r#"env_file: [{path: .env, required: true}]
label_file: [./labels]
dns: [8.8.8.8]
tmpfs: [/run]
secrets: [{source: token}, {source: key, target: /k, mode: 288, uid: "0"}]
configs: [{source: cfg, mode: 420}]
extends: {service: base}
build: {context: ./dir}
"#,
    );
    assert_service(
        r#"env_file: [a.env, {path: b.env, required: "false", format: raw}, {path: c.env}]
build:
  context: .
  args: [VERSION=1, DEBUG]
  ssh: [default, key=/k]
  cache_from: [a]
  no_cache: "true"
  shm_size: 2g
  secrets: [npm]
  provenance: true
  ulimits: {nofile: 1024}
  extra_hosts: {h: 1.2.3.4}
"#,
        r#"env_file:
  - {path: a.env, required: true}
  - {path: b.env, required: false, format: raw}
  - {path: c.env, required: true}
build:
  context: .
  args: {DEBUG: null, VERSION: "1"}
  ssh: [default, key=/k]
  cache_from: [a]
  no_cache: true
  shm_size: 2147483648
  secrets: [{source: npm}]
  provenance: "true"
  ulimits: {nofile: 1024}
  extra_hosts: [h=1.2.3.4]
"#,
    );
    assert_service(
        "build: {ssh: {default: null, other: /o}}",
        "build: {ssh: [default, other=/o]}",
    );
}

#[test]
fn deploy_gpus_logging_hooks() {
    assert_service(
        r#"deploy:
  replicas: "3"
  labels: [a=b]
  resources:
    limits: {cpus: "0.50", memory: 50M, pids: 100}
    reservations:
      cpus: 0.25
      memory: 20M
      devices: [{capabilities: [gpu], count: all}, {capabilities: [gpu], count: "2"}]
      generic_resources: [{discrete_resource_spec: {kind: SSD, value: "2"}}]
  restart_policy: {condition: on-failure, delay: 5s, max_attempts: 3, window: 120s}
  update_config: {parallelism: 2, delay: 10s, max_failure_ratio: "0.1"}
  placement: {constraints: [node.role==manager], preferences: [{spread: node.labels.zone}]}
gpus: all
logging: {driver: json-file, options: {max-size: 10m, max-file: 3}}
post_start: [{command: ./hook.sh start, environment: [A=1]}]
develop:
  watch: [{path: ./src, action: sync, target: /app, ignore: node_modules}]
"#,
        r#"deploy:
  replicas: 3
  labels: {a: b}
  resources:
    limits: {cpus: 0.5, memory: 52428800, pids: 100}
    reservations:
      cpus: 0.25
      memory: 20971520
      devices: [{capabilities: [gpu], count: all}, {capabilities: [gpu], count: 2}]
      generic_resources: [{discrete_resource_spec: {kind: SSD, value: 2}}]
  restart_policy: {condition: on-failure, delay: 5s, max_attempts: 3, window: 2m0s}
  update_config: {parallelism: 2, delay: 10s, max_failure_ratio: 0.1}
  placement: {constraints: [node.role==manager], preferences: [{spread: node.labels.zone}]}
gpus: [{count: all}]
logging: {driver: json-file, options: {max-file: "3", max-size: 10m}}
post_start: [{command: [./hook.sh, start], environment: {A: "1"}}]
develop:
  watch: [{path: ./src, action: sync, target: /app, ignore: [node_modules]}]
"#,
    );
}

#[test]
fn top_level_resources() {
    let doc = norm(
        r#"name: demo
services:
  web: {image: nginx}
  api:
networks:
  front:
  back: {external: {name: shared-back}}
  mid: {external: "true", labels: [a=b]}
volumes:
  data:
  old: {external: {name: legacy}, name: explicit}
secrets:
  token: {file: ./token.txt}
configs:
  cfg: {content: "x: 1"}
x-common: {anything: [1, 2]}
"#,
    );
    let want = parse(
        r#"name: demo
services:
  api: {}
  web: {image: nginx}
networks:
  back: {external: true, name: shared-back}
  front: {}
  mid: {external: true, labels: {a: b}}
volumes:
  data: {}
  old: {external: true, name: explicit}
secrets:
  token: {file: ./token.txt}
configs:
  cfg: {content: "x: 1"}
x-common: {anything: [1, 2]}
"#,
    );
    assert_eq!(doc, want);
    let keys: Vec<&String> = doc
        .get("services")
        .and_then(Node::as_map)
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    assert_eq!(keys, ["api", "web"], "services are sorted");
}

#[test]
fn errors_name_the_value_and_suggest_a_fix() {
    let err = norm_err("services:\n  web:\n    image: x\n    ports:\n      - \"80:abc\"\n");
    assert_eq!(err.path.to_string(), "services.web.ports[0]");
    assert_eq!(err.line, 5);
    assert!(
        err.to_string()
            .starts_with("services.web.ports[0]: invalid port \"80:abc\": container port \"abc\""),
        "{err}"
    );
    assert!(
        err.message
            .contains("expected [[HOST_IP:]HOST_PORT:]CONTAINER_PORT[/PROTOCOL]")
    );

    let err = norm_err("services:\n  web:\n    volumes: [\"vol:/b:bogus\"]\n");
    assert_eq!(err.path.to_string(), "services.web.volumes[0]");
    assert!(err.message.contains("unknown option \"bogus\""), "{err}");

    let err = norm_err("services:\n  web:\n    privileged: maybe\n");
    assert_eq!(
        err.message,
        "invalid boolean \"maybe\": expected true or false"
    );

    let err = norm_err("services:\n  web:\n    secrets: [{source: a, mode: \"9\"}]\n");
    assert_eq!(err.path.to_string(), "services.web.secrets[0].mode");

    let err = norm_err("- a\n");
    assert!(err.path.is_root());
}

/// A document using most short syntaxes, for the fixed-point tests.
const EVERYTHING: &str = r#"name: everything
x-anchor: &base {restart: always}
services:
  web:
    <<: *base
    image: nginx:1.27
    build: {context: ., args: [A=1, B], labels: {x: 1}, ssh: [default]}
    command: nginx -g 'daemon off;'
    entrypoint: ["/docker-entrypoint.sh"]
    ports: ["80", "8080:80", "127.0.0.1:8443:443/tcp", "[::1]:53:53/udp", "9000-9001:9000-9001", 3000]
    expose: [9090]
    volumes: ["/data", "data:/var/data:nocopy", "./conf:/etc/nginx/conf.d:ro,z"]
    environment: [FOO=bar, "NUM=1", INHERIT]
    env_file: [.env]
    labels: [com.example=web]
    depends_on: [db]
    networks: [front]
    healthcheck: {test: curl -f localhost, interval: 30s, timeout: 10s, retries: 3, start_period: "1m"}
    deploy: {resources: {limits: {cpus: "1.5", memory: 1g}}, restart_policy: {delay: 5s}}
    mem_limit: 256m
    shm_size: "64m"
    cpus: 0.25
    ulimits: {nofile: {soft: 1024, hard: 2048}, nproc: 512}
    extra_hosts: ["gw:10.0.0.1", "v6:::1"]
    secrets: [token]
    configs: [{source: cfg, target: /cfg, mode: "0444"}]
    devices: ["/dev/null:/dev/null2"]
    dns: 1.1.1.1
    tmpfs: /tmp
    stop_grace_period: 1m30s
    logging: {driver: local, options: {max-size: 10m}}
    x-extra: {kept: true}
  db:
    image: postgres
    environment: {POSTGRES_PASSWORD: "secret", PORT: 5432, ENABLED: true}
    networks: {back: {aliases: [database], ipv4_address: 172.16.0.10}}
    gpus: all
    post_start: [{command: echo started}]
networks:
  front:
  back: {ipam: {config: [{subnet: 172.16.0.0/24}]}}
volumes:
  data: {driver: local}
secrets:
  token: {environment: TOKEN}
configs:
  cfg: {file: ./cfg}
x-top: {a: 1}
"#;

#[test]
fn normalising_twice_changes_nothing() {
    let once = norm(EVERYTHING);
    let twice = normalize_document(once.clone()).expect("canonical form normalises");
    assert_eq!(once, twice);
}

#[test]
fn printed_model_reads_back_equal() {
    let canonical = norm(EVERYTHING);
    let project = to_model(&canonical).expect("canonical form fits the model");

    let yaml = serde_saphyr::to_string(&project).expect("prints as YAML");
    let reread = norm(&yaml);
    assert_eq!(to_model(&reread).as_ref(), Ok(&project), "YAML:\n{yaml}");
    // The printed form is itself canonical.
    assert_eq!(normalize_document(reread.clone()).as_ref(), Ok(&reread));

    let json = serde_json::to_string_pretty(&project).expect("prints as JSON");
    let reread = norm(&json);
    assert_eq!(to_model(&reread).as_ref(), Ok(&project), "JSON:\n{json}");

    let web = project.service("web").expect("web");
    assert_eq!(web.ports.len(), 7);
    assert_eq!(web.ports[1].published.as_deref(), Some("8080"));
    assert_eq!(web.mem_limit, Some(Bytes(256 << 20)));
    assert_eq!(web.stop_grace_period, Some(Duration::from_secs(90)));
    assert_eq!(web.restart.as_deref(), Some("always"));
    assert_eq!(web.environment.get("INHERIT"), Some(&None));
    assert_eq!(
        web.extensions.get("x-extra"),
        Some(&serde_json::json!({"kept": true}))
    );
    assert_eq!(project.extensions.len(), 2, "{:?}", project.extensions);
    assert_eq!(
        project.service_names(),
        ["db", "web"],
        "x-anchor and x-top are extensions, not services"
    );
}

#[test]
fn look_alike_strings_stay_strings() {
    let mut environment = IndexMap::new();
    for (i, text) in [
        "8080", "true", "1.0", "null", "~", "", "0o17", "1e3", "yes", "-1", ".inf",
    ]
    .into_iter()
    .enumerate()
    {
        environment.insert(format!("V{i}"), Some(text.to_string()));
    }
    environment.insert("NONE".into(), None);
    let mut service = Service {
        image: Some("1.0".into()),
        environment,
        command: Some(vec!["true".into(), "8080".into(), "".into()]),
        ..Service::default()
    };
    service.ports.push(Port {
        target: 80,
        published: Some("8080".into()),
        ..Port::default()
    });
    service.labels.insert("n".into(), "123".into());
    let mut project = Project::default();
    project.services.insert("s".into(), service);

    let yaml = serde_saphyr::to_string(&project).expect("prints");
    let back = to_model(&norm(&yaml)).expect("reads back");
    assert_eq!(back, project, "YAML:\n{yaml}");
}

/// Every field filled, printed, read back: the model survives unchanged.
#[test]
fn full_model_round_trip() {
    let ext = |v: serde_json::Value| -> Extensions {
        let mut e = Extensions::new();
        e.insert("x-k".into(), v);
        e
    };
    let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let dict = |items: &[(&str, &str)]| {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<IndexMap<_, _>>()
    };
    let hook = ServiceHook {
        command: Some(strings(&["echo", "a b"])),
        image: Some("busybox".into()),
        user: Some("0".into()),
        privileged: Some(true),
        working_dir: Some("/w".into()),
        environment: [
            ("E".to_string(), Some("1".to_string())),
            ("F".to_string(), None),
        ]
        .into_iter()
        .collect(),
        per_replica: Some(false),
        extensions: ext(serde_json::json!(1)),
    };
    let request = DeviceRequest {
        capabilities: strings(&["gpu"]),
        count: Some(DeviceCount::All),
        device_ids: strings(&["0", "1"]),
        driver: Some("nvidia".into()),
        options: dict(&[("a", "1")]),
        extensions: Extensions::new(),
    };
    let resource = Resource {
        cpus: Some(0.1),
        memory: Some(Bytes(1 << 20)),
        pids: Some(7),
        devices: vec![
            request.clone(),
            DeviceRequest {
                count: Some(DeviceCount::Count(2)),
                ..request.clone()
            },
        ],
        generic_resources: vec![GenericResource {
            discrete_resource_spec: Some(DiscreteResourceSpec {
                kind: Some("SSD".into()),
                value: Some(2),
                extensions: Extensions::new(),
            }),
            extensions: Extensions::new(),
        }],
        extensions: Extensions::new(),
    };
    let update = UpdateConfig {
        parallelism: Some(2),
        delay: Some(Duration::from_millis(1500)),
        failure_action: Some("pause".into()),
        monitor: Some(Duration(1)),
        max_failure_ratio: Some(0.3),
        order: Some("start-first".into()),
        extensions: Extensions::new(),
    };
    let file_ref = ServiceFileRef {
        source: "s".into(),
        target: Some("/t".into()),
        uid: Some("1000".into()),
        gid: Some("1000".into()),
        mode: Some(FileMode(0o440)),
        extensions: ext(serde_json::json!("v")),
    };
    let mut ulimits = IndexMap::new();
    ulimits.insert("nproc".to_string(), Ulimit::Single(10));
    ulimits.insert(
        "nofile".to_string(),
        Ulimit::Range(UlimitRange {
            soft: 1,
            hard: 2,
            extensions: Extensions::new(),
        }),
    );
    let build = Build {
        context: Some(".".into()),
        dockerfile: Some("Dockerfile.dev".into()),
        dockerfile_inline: Some("FROM scratch\n".into()),
        entitlements: strings(&["network.host"]),
        args: [
            ("A".to_string(), Some("1".to_string())),
            ("B".to_string(), None),
        ]
        .into_iter()
        .collect(),
        provenance: Some("mode=max".into()),
        sbom: Some("true".into()),
        ssh: vec![
            SshKey {
                id: "default".into(),
                path: None,
            },
            SshKey {
                id: "k".into(),
                path: Some("/k".into()),
            },
        ],
        labels: dict(&[("l", "v")]),
        cache_from: strings(&["a"]),
        cache_to: strings(&["b"]),
        no_cache: Some(false),
        no_cache_filter: strings(&["stage"]),
        additional_contexts: dict(&[("ctx", "docker-image://x")]),
        pull: Some(true),
        extra_hosts: strings(&["h=::1"]),
        isolation: Some("default".into()),
        network: Some("host".into()),
        target: Some("dev".into()),
        secrets: vec![file_ref.clone()],
        shm_size: Some(Bytes(64 << 20)),
        tags: strings(&["t:1"]),
        ulimits: ulimits.clone(),
        platforms: strings(&["linux/amd64"]),
        privileged: Some(true),
        extensions: ext(serde_json::json!({"a": [1]})),
    };
    let mut networks = IndexMap::new();
    networks.insert("plain".to_string(), None);
    networks.insert(
        "full".to_string(),
        Some(ServiceNetwork {
            aliases: strings(&["a"]),
            driver_opts: dict(&[("o", "1")]),
            gw_priority: Some(1),
            interface_name: Some("eth1".into()),
            ipv4_address: Some("10.0.0.2".into()),
            ipv6_address: Some("fe80::2".into()),
            link_local_ips: strings(&["169.254.0.1"]),
            mac_address: Some("02:42:ac:11:00:02".into()),
            priority: Some(100),
            extensions: Extensions::new(),
        }),
    );
    let mut depends_on = IndexMap::new();
    depends_on.insert(
        "db".to_string(),
        DependsOn {
            condition: "service_healthy".into(),
            restart: Some(true),
            required: false,
            extensions: ext(serde_json::json!(null)),
        },
    );
    let mut models = IndexMap::new();
    models.insert("m".to_string(), ServiceModel::default());
    models.insert(
        "n".to_string(),
        ServiceModel {
            endpoint_var: Some("URL".into()),
            model_var: Some("NAME".into()),
            extensions: Extensions::new(),
        },
    );
    let mut provider_options = IndexMap::new();
    provider_options.insert("one".to_string(), OptionValue::One("1".into()));
    provider_options.insert(
        "many".to_string(),
        OptionValue::Many(strings(&["a", "true"])),
    );
    let service = Service {
        profiles: strings(&["p"]),
        annotations: dict(&[("an", "1")]),
        attach: Some(false),
        build: Some(build),
        develop: Some(Develop {
            watch: vec![Watch {
                path: "./src".into(),
                action: "sync+exec".into(),
                target: Some("/app".into()),
                exec: Some(hook.clone()),
                ignore: strings(&["*.tmp"]),
                include: strings(&["*.rs"]),
                initial_sync: Some(true),
                extensions: Extensions::new(),
            }],
            extensions: Extensions::new(),
        }),
        blkio_config: Some(BlkioConfig {
            weight: Some(300),
            weight_device: vec![WeightDevice {
                path: "/dev/sda".into(),
                weight: 400,
            }],
            device_read_bps: vec![ThrottleDevice {
                path: "/dev/sda".into(),
                rate: Bytes(1 << 20),
            }],
            device_read_iops: vec![ThrottleDevice {
                path: "/dev/sda".into(),
                rate: Bytes(120),
            }],
            device_write_bps: vec![],
            device_write_iops: vec![ThrottleDevice {
                path: "/dev/sdb".into(),
                rate: Bytes(30),
            }],
        }),
        cap_add: strings(&["NET_ADMIN"]),
        cap_drop: strings(&["ALL"]),
        cgroup_parent: Some("m".into()),
        cgroup: Some("private".into()),
        cpu_count: Some(2),
        cpu_percent: Some(50),
        cpu_period: Some(100_000),
        cpu_quota: Some(50_000),
        cpu_rt_period: Some(1_000_000),
        cpu_rt_runtime: Some(950_000),
        cpus: Some(1.5),
        cpuset: Some("0-3".into()),
        cpu_shares: Some(512),
        command: Some(vec![]),
        configs: vec![ServiceFileRef {
            source: "c".into(),
            ..ServiceFileRef::default()
        }],
        container_name: Some("c1".into()),
        credential_spec: Some(CredentialSpec {
            config: Some("cs".into()),
            file: None,
            registry: Some("r".into()),
            extensions: Extensions::new(),
        }),
        depends_on,
        deploy: Some(Deploy {
            mode: Some("replicated".into()),
            replicas: Some(2),
            labels: dict(&[("d", "1")]),
            update_config: Some(update.clone()),
            rollback_config: Some(update),
            resources: Some(Resources {
                limits: Some(resource.clone()),
                reservations: Some(resource),
                extensions: Extensions::new(),
            }),
            restart_policy: Some(RestartPolicy {
                condition: Some("on-failure".into()),
                delay: Some(Duration::from_secs(5)),
                max_attempts: Some(3),
                window: Some(Duration::from_secs(120)),
                extensions: Extensions::new(),
            }),
            placement: Some(Placement {
                constraints: strings(&["node.role==manager"]),
                preferences: vec![PlacementPreference {
                    spread: Some("zone".into()),
                    extensions: Extensions::new(),
                }],
                max_replicas_per_node: Some(1),
                extensions: Extensions::new(),
            }),
            endpoint_mode: Some("vip".into()),
            extensions: ext(serde_json::json!([])),
        }),
        device_cgroup_rules: strings(&["c 1:3 mr"]),
        devices: vec![DeviceMapping {
            source: "/dev/a".into(),
            target: Some("/dev/b".into()),
            permissions: Some("rwm".into()),
            extensions: Extensions::new(),
        }],
        dns: strings(&["8.8.8.8"]),
        dns_opt: strings(&["use-vc"]),
        dns_search: strings(&["example.com"]),
        domainname: Some("example.com".into()),
        entrypoint: Some(strings(&["/bin/sh", "-c"])),
        provider: Some(Provider {
            kind: "model".into(),
            options: provider_options,
            extensions: Extensions::new(),
        }),
        environment: [("E".to_string(), Some("".to_string()))]
            .into_iter()
            .collect(),
        env_file: vec![EnvFile {
            path: ".env".into(),
            required: false,
            format: Some("raw".into()),
        }],
        expose: strings(&["3000", "4000-4001/udp"]),
        extends: Some(Extends {
            service: "base".into(),
            file: Some("base.yaml".into()),
        }),
        external_links: strings(&["redis:cache"]),
        extra_hosts: strings(&["a=1.2.3.4", "b=::1"]),
        group_add: strings(&["audio", "1000"]),
        gpus: vec![DeviceRequest {
            count: Some(DeviceCount::All),
            ..DeviceRequest::default()
        }],
        hostname: Some("h".into()),
        healthcheck: Some(Healthcheck {
            test: Some(strings(&["CMD", "true"])),
            timeout: Some(Duration::from_secs(3)),
            interval: Some(Duration::from_millis(500)),
            retries: Some(3),
            start_period: Some(Duration(0)),
            start_interval: Some(Duration::from_secs(3600)),
            disable: Some(false),
            extensions: Extensions::new(),
        }),
        image: Some("img".into()),
        init: Some(true),
        ipc: Some("shareable".into()),
        isolation: Some("process".into()),
        labels: dict(&[("true", "false")]),
        label_file: strings(&["l.env"]),
        links: strings(&["db:database"]),
        logging: Some(Logging {
            driver: Some("syslog".into()),
            options: dict(&[("tag", "x")]),
            extensions: Extensions::new(),
        }),
        mem_limit: Some(Bytes(1 << 30)),
        mem_reservation: Some(Bytes(1 << 29)),
        memswap_limit: Some(Bytes(-1)),
        mem_swappiness: Some(0),
        mac_address: Some("02:42:ac:11:00:02".into()),
        models,
        network_mode: None,
        networks,
        oom_kill_disable: Some(true),
        oom_score_adj: Some(-500),
        pid: Some("host".into()),
        pids_limit: Some(-1),
        platform: Some("linux/arm64".into()),
        ports: vec![
            Port {
                name: Some("http".into()),
                mode: "host".into(),
                host_ip: Some("::1".into()),
                target: 80,
                published: Some("8000-8010".into()),
                protocol: "udp".into(),
                app_protocol: Some("http".into()),
                extensions: ext(serde_json::json!("p")),
            },
            Port::default(),
        ],
        privileged: Some(false),
        pull_policy: Some("every_12h".into()),
        pull_refresh_after: Some("1h".into()),
        read_only: Some(true),
        restart: Some("no".into()),
        runtime: Some("runc".into()),
        scale: Some(2),
        secrets: vec![file_ref],
        security_opt: strings(&["no-new-privileges:true"]),
        shm_size: Some(Bytes(0)),
        stdin_open: Some(true),
        stop_grace_period: Some(Duration::from_secs(90)),
        stop_signal: Some("SIGINT".into()),
        storage_opt: dict(&[("size", "20G")]),
        sysctls: dict(&[("net.core.somaxconn", "1024")]),
        tmpfs: strings(&["/run:size=1m"]),
        tty: Some(true),
        ulimits,
        use_api_socket: Some(true),
        user: Some("1000:1000".into()),
        userns_mode: Some("host".into()),
        uts: Some("host".into()),
        volumes: vec![
            ServiceVolume {
                kind: MountType::Bind,
                source: Some("./a".into()),
                target: "/a".into(),
                read_only: Some(true),
                consistency: Some("cached".into()),
                bind: Some(BindOptions {
                    propagation: Some("rslave".into()),
                    create_host_path: Some(true),
                    selinux: Some("z".into()),
                    recursive: Some("readonly".into()),
                    extensions: Extensions::new(),
                }),
                ..ServiceVolume::default()
            },
            ServiceVolume {
                kind: MountType::Volume,
                source: Some("v".into()),
                target: "/v".into(),
                volume: Some(VolumeOptions {
                    labels: dict(&[("a", "b")]),
                    nocopy: Some(true),
                    subpath: Some("sub".into()),
                    extensions: Extensions::new(),
                }),
                ..ServiceVolume::default()
            },
            ServiceVolume {
                kind: MountType::Tmpfs,
                target: "/tmp".into(),
                tmpfs: Some(TmpfsOptions {
                    size: Some(Bytes(1 << 20)),
                    mode: Some(0o1777),
                    extensions: Extensions::new(),
                }),
                ..ServiceVolume::default()
            },
            ServiceVolume {
                kind: MountType::Image,
                source: Some("alpine".into()),
                target: "/img".into(),
                image: Some(ImageOptions {
                    subpath: Some("etc".into()),
                    extensions: Extensions::new(),
                }),
                extensions: ext(serde_json::json!(2.5)),
                ..ServiceVolume::default()
            },
        ],
        volumes_from: strings(&["other:ro"]),
        working_dir: Some("/w".into()),
        post_start: vec![hook.clone()],
        pre_stop: vec![hook.clone()],
        pre_start: vec![hook],
        extensions: ext(serde_json::json!({"nested": {"b": 1, "a": 2}})),
    };

    let mut project = Project {
        name: Some("full".into()),
        extensions: ext(serde_json::json!("top")),
        ..Project::default()
    };
    project.services.insert("svc".into(), service);
    project.services.insert("bare".into(), Service::default());
    project.networks.insert("plain".into(), Network::default());
    project.networks.insert(
        "full".into(),
        Network {
            name: Some("real".into()),
            driver: Some("bridge".into()),
            driver_opts: dict(&[("com.docker.network.bridge.name", "br0")]),
            ipam: Some(Ipam {
                driver: Some("default".into()),
                config: vec![IpamPool {
                    subnet: Some("172.28.0.0/16".into()),
                    gateway: Some("172.28.0.1".into()),
                    ip_range: Some("172.28.5.0/24".into()),
                    aux_addresses: dict(&[("host1", "172.28.1.5")]),
                    extensions: Extensions::new(),
                }],
                options: dict(&[("foo", "bar")]),
                extensions: Extensions::new(),
            }),
            external: Some(false),
            internal: Some(true),
            attachable: Some(true),
            labels: dict(&[("n", "1")]),
            enable_ipv4: Some(true),
            enable_ipv6: Some(false),
            extensions: ext(serde_json::json!(true)),
        },
    );
    project.volumes.insert(
        "v".into(),
        Volume {
            name: Some("vol".into()),
            driver: Some("local".into()),
            driver_opts: dict(&[("type", "nfs")]),
            external: Some(false),
            labels: dict(&[("a", "b")]),
            extensions: Extensions::new(),
        },
    );
    project.secrets.insert(
        "s".into(),
        Secret {
            name: Some("sec".into()),
            file: Some("./s".into()),
            environment: Some("S".into()),
            external: Some(false),
            labels: dict(&[("a", "b")]),
            driver: Some("d".into()),
            driver_opts: dict(&[("o", "1")]),
            template_driver: Some("golang".into()),
            extensions: Extensions::new(),
        },
    );
    project.configs.insert(
        "c".into(),
        Config {
            name: Some("cfg".into()),
            file: None,
            environment: None,
            content: Some("line1\nline2: x\n".into()),
            external: None,
            labels: dict(&[("a", "b")]),
            template_driver: None,
            extensions: Extensions::new(),
        },
    );
    project.models.insert(
        "m".into(),
        Model {
            name: Some("llm".into()),
            model: Some("ai/smollm2".into()),
            context_size: Some(4096),
            runtime_flags: strings(&["--verbose"]),
            extensions: Extensions::new(),
        },
    );

    let yaml = serde_saphyr::to_string(&project).expect("prints");
    let canonical = norm(&yaml);
    assert_eq!(to_model(&canonical).as_ref(), Ok(&project), "YAML:\n{yaml}");
    let json = serde_json::to_string(&project).expect("prints");
    assert_eq!(
        to_model(&norm(&json)).as_ref(),
        Ok(&project),
        "JSON:\n{json}"
    );
}

#[test]
fn model_prints_like_compose() {
    let project = to_model(&norm(
        "services:\n  s:\n    image: x\n    mem_limit: 1k\n    secrets: [{source: a, mode: 0o440}]\n    ports: [\"8080:80\"]\n    healthcheck: {interval: 90s}\n",
    ))
    .expect("fits");
    let yaml = serde_saphyr::to_string(&project).expect("prints");
    assert_eq!(
        yaml,
        r#"services:
  s:
    healthcheck:
      interval: 1m30s
    image: x
    mem_limit: "1024"
    ports:
    - mode: ingress
      target: 80
      published: "8080"
      protocol: tcp
    secrets:
    - source: a
      mode: "0440"
"#
    );
}

#[test]
fn model_errors_name_the_path() {
    // Not canonical on purpose: `to_model` must say where it fails.
    let doc = parse(
        "services:\n  ok: {image: a}\n  bad:\n    image: b\n    ports: [{target: x}]\nnetworks:\n  n: {}\n",
    );
    let err = to_model(&doc).unwrap_err();
    assert_eq!(err.path.to_string(), "services.bad.ports");
    assert_eq!(err.line, 5);
    assert!(err.message.contains("invalid type"), "{err}");

    let err = to_model(&parse("networks:\n  n: {external: maybe}\n")).unwrap_err();
    assert_eq!(err.path.to_string(), "networks.n.external");

    let err = to_model(&parse("name: [a]\n")).unwrap_err();
    assert_eq!(err.path.to_string(), "name");
}

#[test]
fn include_entries_in_long_form() {
    let doc = parse(
        "include:\n  - a.yaml\n  - path: [b.yaml, b.override.yaml]\n    env_file: b.env\n    project_directory: ./b\n",
    );
    let entries = include_entries(&doc).expect("reads");
    assert_eq!(
        entries,
        [
            Include {
                path: vec!["a.yaml".into()],
                ..Include::default()
            },
            Include {
                path: vec!["b.yaml".into(), "b.override.yaml".into()],
                project_directory: Some("./b".into()),
                env_file: vec!["b.env".into()],
            },
        ]
    );
    assert_eq!(include_entries(&parse("services: {}\n")), Ok(vec![]));
    let err = include_entries(&parse("include: [[a]]\n")).unwrap_err();
    assert_eq!(err.path.to_string(), "include[0]");
}

mod properties {
    use proptest::prelude::*;

    use super::super::shell_words;
    use crate::model::{Bytes, Duration};

    proptest! {
        /// Arbitrary text in string fields survives printing and reading
        /// back (look-alikes quoted, newlines, control characters, unicode).
        #[test]
        fn text_fields_round_trip(
            texts in proptest::collection::vec("(?s).*", 1..6),
            numbers in proptest::collection::vec(any::<i64>(), 1..4),
            cpus in 0.0f64..1e6,
        ) {
            use indexmap::IndexMap;
            use crate::model::{Project, Service};
            use crate::normalize::{normalize_document, to_model};
            use crate::yaml::parse_documents;

            let environment: IndexMap<String, Option<String>> = texts
                .iter()
                .enumerate()
                .map(|(i, t)| (format!("{t}{i}"), (i % 2 == 0).then(|| t.clone())))
                .collect();
            let service = Service {
                image: texts.first().cloned(),
                command: Some(texts.clone()),
                environment,
                labels: texts.iter().map(|t| (format!("l.{t}"), t.clone())).collect(),
                cpus: Some(cpus),
                pids_limit: numbers.first().copied(),
                mem_limit: numbers.get(1).copied().map(Bytes),
                stop_grace_period: numbers.last().copied().map(Duration),
                ..Service::default()
            };
            let mut project = Project::default();
            project.services.insert(texts[0].clone(), service);
            let yaml = serde_saphyr::to_string(&project).expect("prints");
            let doc = parse_documents(&yaml).expect("parses").remove(0);
            let back = to_model(&normalize_document(doc).expect("normalises")).expect("fits");
            prop_assert_eq!(back, project, "YAML:\n{}", yaml);
        }

        #[test]
        fn durations_print_and_parse_back(nanos in any::<i64>()) {
            let printed = Duration(nanos).to_string();
            prop_assert_eq!(printed.parse::<Duration>(), Ok(Duration(nanos)));
        }

        #[test]
        fn sizes_with_units_scale_by_1024(n in 0i64..1_000_000, unit in 0usize..5) {
            let suffix = ["b", "k", "m", "g", "t"][unit];
            let parsed = format!("{n}{suffix}").parse::<Bytes>();
            prop_assert_eq!(parsed, Ok(Bytes(n << (10 * unit))));
        }

        #[test]
        fn single_quoted_words_split_back(words in proptest::collection::vec("[^']*", 0..6)) {
            let line = words
                .iter()
                .map(|w| format!("'{w}'"))
                .collect::<Vec<_>>()
                .join(" ");
            prop_assert_eq!(shell_words::split(&line), Ok(words));
        }
    }
}
