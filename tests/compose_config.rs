//! `berth config` / `berth compose config` run as a user runs them: file
//! discovery, `-f -`, env files and `COMPOSE_*` variables, profiles, the
//! listing flags, both formats, and errors that point at the line.

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;
use tempfile::TempDir;

/// Runs berth in `dir` with a clean compose environment; returns (exit
/// code, stdout, stderr).
fn berth(
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
) -> (i32, String, String) {
    let mut cmd = Command::cargo_bin("berth").expect("the berth binary is built by cargo test");
    cmd.current_dir(dir).args(args);
    for var in [
        "COMPOSE_FILE",
        "COMPOSE_PROJECT_NAME",
        "COMPOSE_PROFILES",
        "COMPOSE_PATH_SEPARATOR",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(text) = stdin {
        cmd.write_stdin(text);
    }
    let out = cmd.output().expect("run berth");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let (code, out, err) = berth(dir, args, env, None);
    assert_eq!(code, 0, "berth {args:?} failed: {err}");
    out
}

fn fail(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let (code, out, err) = berth(dir, args, env, None);
    assert_ne!(code, 0, "berth {args:?} should fail; printed {out}");
    assert!(out.is_empty(), "nothing on stdout when failing: {out}");
    err
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(path, text).expect("write");
}

fn json(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    serde_json::from_str(&ok(dir, &all, env)).expect("config --format json prints JSON")
}

const APP: &str = "\
services:
  web:
    image: nginx:${TAG:-latest}
    ports:
      - \"8080:80\"
      - 127.0.0.1:9000-9001:9000-9001/udp
    environment:
      - MODE=${MODE}
      - EMPTY
    volumes:
      - ./html:/usr/share/nginx/html:ro
      - data:/data
    healthcheck:
      test: curl -f http://localhost
      interval: 1m30s
      timeout: 500ms
    depends_on: [db]
    mem_limit: 512m
  db:
    image: postgres:16
  debug:
    image: busybox
    profiles: [debug]
  builder:
    build: ./app
volumes:
  data: {}
";

#[test]
fn discovers_files_upwards_and_prints_the_normalised_project() {
    let dir = TempDir::new().expect("tempdir");
    let root = dir.path().join("My App");
    write(&root, "compose.yaml", APP);
    write(
        &root,
        "compose.override.yaml",
        "services:\n  db:\n    environment:\n      POSTGRES_PASSWORD: secret\n",
    );
    write(
        &root,
        ".env",
        "# defaults\nexport MODE=\"prod\"\nTAG='1.25'\n",
    );
    std::fs::create_dir_all(root.join("deep/er")).expect("mkdir");

    let p = json(&root.join("deep/er"), &["config"], &[]);
    assert_eq!(p["name"], "myapp", "derived name is normalised");
    let web = &p["services"]["web"];
    assert_eq!(web["image"], "nginx:1.25");
    assert_eq!(
        web["ports"][0],
        serde_json::json!({"mode": "ingress", "target": 80, "published": "8080", "protocol": "tcp"})
    );
    assert_eq!(
        web["ports"].as_array().map(Vec::len),
        Some(3),
        "a range is one port each: {}",
        web["ports"]
    );
    assert_eq!(web["ports"][1]["host_ip"], "127.0.0.1");
    assert_eq!(web["ports"][2]["protocol"], "udp");
    assert_eq!(
        web["environment"],
        serde_json::json!({"EMPTY": null, "MODE": "prod"})
    );
    assert_eq!(
        web["healthcheck"]["test"],
        serde_json::json!(["CMD-SHELL", "curl -f http://localhost"])
    );
    assert_eq!(web["healthcheck"]["interval"], "1m30s");
    assert_eq!(web["healthcheck"]["timeout"], "500ms");
    assert_eq!(web["volumes"][0]["type"], "bind");
    assert_eq!(
        web["volumes"][0]["source"],
        root.join("html").to_string_lossy().as_ref()
    );
    assert_eq!(web["volumes"][0]["read_only"], true);
    assert_eq!(web["volumes"][1]["type"], "volume");
    assert_eq!(web["depends_on"]["db"]["condition"], "service_started");
    assert_eq!(
        web["mem_limit"], "536870912",
        "sizes in bytes, as docker compose prints them"
    );
    assert_eq!(web["networks"], serde_json::json!({"default": null}));
    assert_eq!(
        p["services"]["db"]["environment"]["POSTGRES_PASSWORD"], "secret",
        "override file merged"
    );
    assert_eq!(
        p["services"]["builder"]["build"]["context"],
        root.join("app").to_string_lossy().as_ref()
    );
    assert_eq!(
        p["services"]["builder"]["build"]["dockerfile"],
        "Dockerfile"
    );
    assert!(
        p["services"].get("debug").is_none(),
        "profiled service inactive by default"
    );
    assert_eq!(p["networks"]["default"]["name"], "myapp_default");
    assert_eq!(p["volumes"]["data"]["name"], "myapp_data");

    // The shell beats .env; -p beats the directory.
    let p = json(&root, &["config", "-p", "other"], &[("MODE", "dev")]);
    assert_eq!(p["name"], "other");
    assert_eq!(p["services"]["web"]["environment"]["MODE"], "dev");
}

#[test]
fn yaml_output_reads_back_to_the_same_output() {
    let dir = TempDir::new().expect("tempdir");
    write(dir.path(), "compose.yaml", APP);
    let yaml = ok(dir.path(), &["config"], &[("MODE", "x")]);
    assert!(yaml.starts_with("name: "), "{yaml}");
    assert!(yaml.contains("interval: 1m30s"), "{yaml}");
    let (code, again, err) = berth(
        dir.path(),
        &["config", "-f", "-", "--project-directory", "."],
        &[("MODE", "x")],
        Some(&yaml),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(again, yaml, "config output is a fixed point");
    let json_text = ok(
        dir.path(),
        &["config", "--format", "json"],
        &[("MODE", "x")],
    );
    let (code, from_json, err) = berth(
        dir.path(),
        &["config", "-f", "-", "--project-directory", "."],
        &[("MODE", "x")],
        Some(&json_text),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(from_json, yaml, "the JSON output loads to the same project");
}

#[test]
fn listing_flags_and_quiet() {
    let dir = TempDir::new().expect("tempdir");
    write(dir.path(), "compose.yaml", APP);
    let env = [("MODE", "x")];
    assert_eq!(
        ok(dir.path(), &["config", "--services"], &env),
        "builder\ndb\nweb\n"
    );
    assert_eq!(ok(dir.path(), &["config", "--volumes"], &env), "data\n");
    assert_eq!(ok(dir.path(), &["config", "--profiles"], &env), "debug\n");
    // A service that only builds runs the image compose names for it.
    let images = ok(dir.path(), &["config", "--images", "-p", "proj"], &env);
    assert_eq!(images, "proj-builder\npostgres:16\nnginx:latest\n");
    assert_eq!(ok(dir.path(), &["config", "-q"], &env), "");
    assert_eq!(
        ok(
            dir.path(),
            &["config", "--services", "--profile", "debug"],
            &env
        ),
        "builder\ndb\ndebug\nweb\n"
    );
    assert_eq!(
        ok(
            dir.path(),
            &["config", "--services"],
            &[("MODE", "x"), ("COMPOSE_PROFILES", "debug")]
        ),
        "builder\ndb\ndebug\nweb\n"
    );
    // The `compose` spelling, with the project options on either side.
    assert_eq!(
        ok(
            dir.path(),
            &["compose", "-f", "compose.yaml", "config", "--services"],
            &env
        ),
        "builder\ndb\nweb\n"
    );
    assert_eq!(
        ok(
            dir.path(),
            &["compose", "config", "--services", "-f", "compose.yaml"],
            &env
        ),
        "builder\ndb\nweb\n"
    );
}

#[test]
fn compose_variables_pick_files_and_names() {
    let dir = TempDir::new().expect("tempdir");
    write(dir.path(), "a.yml", "services:\n  a:\n    image: a\n");
    write(
        dir.path(),
        "b.yml",
        "services:\n  a:\n    image: b\n  b:\n    image: b\n",
    );
    let env = [
        ("COMPOSE_FILE", "a.yml:b.yml"),
        ("COMPOSE_PROJECT_NAME", "fromenv"),
    ];
    let p = json(dir.path(), &["config"], &env);
    assert_eq!(p["name"], "fromenv");
    assert_eq!(p["services"]["a"]["image"], "b", "later file wins");
    let env = [
        ("COMPOSE_FILE", "a.yml;b.yml"),
        ("COMPOSE_PATH_SEPARATOR", ";"),
    ];
    assert_eq!(
        json(dir.path(), &["config"], &env)["services"]["b"]["image"],
        "b"
    );
    write(dir.path(), "vars.env", "IMG=from-env-file\n");
    write(dir.path(), "c.yml", "services:\n  c:\n    image: ${IMG}\n");
    let p = json(
        dir.path(),
        &["config", "-f", "c.yml", "--env-file", "vars.env"],
        &[],
    );
    assert_eq!(p["services"]["c"]["image"], "from-env-file");
}

#[test]
fn errors_name_file_line_and_path() {
    let dir = TempDir::new().expect("tempdir");
    let d = dir.path();
    write(
        d,
        "compose.yaml",
        "services:\n  web:\n    image: nginx\n    ports:\n      - \"80:80\"\n      - \"80:abc\"\n",
    );
    let err = fail(d, &["config"], &[]);
    assert!(
        err.contains("compose.yaml:6: services.web.ports[1]: invalid port \"80:abc\""),
        "{err}"
    );

    write(
        d,
        "compose.yaml",
        "services:\n  web:\n    image: nginx\n    environment:\n      PASSWORD: ${DB_PASSWORD:?set DB_PASSWORD in .env}\n",
    );
    let err = fail(d, &["config"], &[]);
    assert!(
        err.contains("compose.yaml:5: services.web.environment.PASSWORD:"),
        "{err}"
    );
    assert!(
        err.contains("DB_PASSWORD") && err.contains("set DB_PASSWORD in .env"),
        "{err}"
    );

    write(
        d,
        "compose.yaml",
        "services:\n  web:\n    image: nginx\n    imgae: typo\n",
    );
    let err = fail(d, &["config"], &[]);
    assert!(err.contains("compose.yaml:4: services.web"), "{err}");
    assert!(err.contains("imgae"), "{err}");

    write(
        d,
        "compose.yaml",
        "services:\n  web:\n    image: nginx\n    networks: [front]\n",
    );
    let err = fail(d, &["config"], &[]);
    assert!(
        err.contains("compose.yaml:4: services.web.networks.front: "),
        "{err}"
    );
    assert!(err.contains("undefined network \"front\""), "{err}");

    write(
        d,
        "compose.yaml",
        "services:\n  web:\n    image: nginx\n    container_name: web\n    deploy:\n      replicas: 2\n",
    );
    let err = fail(d, &["config"], &[]);
    assert!(
        err.contains("compose.yaml:4: services.web.container_name: "),
        "{err}"
    );

    write(
        d,
        "compose.yaml",
        "services:\n  a:\n    image: a\n    ports: [\"8080:80\"]\n  b:\n    image: b\n    ports: [\"8080:8080\"]\n",
    );
    let err = fail(d, &["config"], &[]);
    assert!(err.contains("compose.yaml:7: services.b.ports[0]: host port 8080/tcp is already published by service \"a\""), "{err}");

    write(
        d,
        "compose.yaml",
        "services:\n  a:\n    image: a\n    depends_on: [b]\n  b:\n    image: b\n    depends_on: [a]\n",
    );
    let err = fail(d, &["config"], &[]);
    assert!(
        err.contains("dependency cycle detected: a -> b -> a"),
        "{err}"
    );

    write(
        d,
        "compose.yaml",
        "services:\n  a:\n    image: a\n   bad: indent\n",
    );
    let err = fail(d, &["config"], &[]);
    assert!(err.contains("compose.yaml:4"), "{err}");

    let err = fail(d, &["config", "-p", "Bad.Name"], &[]);
    assert!(err.contains("invalid project name \"Bad.Name\""), "{err}");

    let empty = TempDir::new().expect("tempdir");
    let err = fail(empty.path(), &["config"], &[]);
    assert!(err.contains("no compose file found"), "{err}");
}

#[test]
fn merge_tags_and_extends_across_files() {
    let dir = TempDir::new().expect("tempdir");
    let d = dir.path();
    write(
        d,
        "base.yaml",
        "x-env: &env\n  A: \"1\"\nservices:\n  web:\n    image: web\n    command: [serve]\n    ports: [\"80:80\"]\n    environment:\n      <<: *env\n      B: \"2\"\n",
    );
    write(
        d,
        "over.yaml",
        "services:\n  web:\n    command: !reset null\n    ports: !override [\"81:81\"]\n    environment:\n      C: \"3\"\n  worker:\n    extends: web\n    image: worker\n    ports: !reset []\n",
    );
    let p = json(d, &["config", "-f", "base.yaml", "-f", "over.yaml"], &[]);
    let web = &p["services"]["web"];
    assert!(
        web.get("command").is_none(),
        "!reset removes the command: {web}"
    );
    assert_eq!(web["ports"].as_array().map(Vec::len), Some(1));
    assert_eq!(web["ports"][0]["published"], "81");
    assert_eq!(
        web["environment"],
        serde_json::json!({"A": "1", "B": "2", "C": "3"})
    );
    assert_eq!(p["services"]["worker"]["image"], "worker");
    assert!(
        p["services"]["worker"].get("ports").is_none(),
        "!reset drops the inherited ports"
    );
    assert_eq!(
        p["services"]["worker"]["environment"]["C"], "3",
        "extends inherits the rest"
    );
    assert_eq!(p["x-env"]["A"], "1", "x- extension fields are kept");
}

#[test]
fn dependencies_on_profiled_services() {
    let dir = TempDir::new().expect("tempdir");
    let d = dir.path();
    write(
        d,
        "compose.yaml",
        "services:\n  web:\n    image: web\n    depends_on:\n      tools:\n        condition: service_started\n        required: false\n  tools:\n    image: tools\n    profiles: [debug]\n",
    );
    let p = json(d, &["config"], &[]);
    assert!(
        p["services"]["web"]
            .get("depends_on")
            .is_none_or(|deps| deps.get("tools").is_none()),
        "an optional dependency on an inactive service is dropped: {}",
        p["services"]["web"]
    );
    let p = json(d, &["config", "--profile", "debug"], &[]);
    assert_eq!(
        p["services"]["web"]["depends_on"]["tools"]["required"],
        false
    );

    write(
        d,
        "compose.yaml",
        "services:\n  web:\n    image: web\n    depends_on: [tools]\n  tools:\n    image: tools\n    profiles: [debug]\n",
    );
    let err = fail(d, &["config"], &[]);
    assert!(
        err.contains("compose.yaml:4: services.web.depends_on.tools: "),
        "{err}"
    );
    assert!(err.contains("add --profile debug"), "{err}");
}
