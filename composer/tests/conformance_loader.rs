//! The loader against compose-go's loader and CLI fixtures
//! (`../shared/conformance/compose/compose-go/`), with the outcomes its
//! README describes. Every case runs; the failures are listed together.

use std::path::{Path, PathBuf};

use berth_composer::{LoadError, ProjectOptions, load};
use serde_json::{Value, json};

fn conformance() -> PathBuf {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/compose/compose-go");
    std::fs::canonicalize(&dir).unwrap_or(dir)
}

/// A copy of `extends/` whose `base.yaml` lacks the empty `nil:` service:
/// compose-go's test loads it with schema validation off, and Docker
/// Compose (like berth) refuses a null service.
fn extends_without_nil(root: &Path) -> Result<tempfile::TempDir, String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = root.join("loader/testdata/extends");
    for entry in std::fs::read_dir(&dir).map_err(|e| e.to_string())? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_file() {
            let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
            let text: String = text
                .lines()
                .filter(|l| !l.starts_with("  nil:"))
                .map(|l| format!("{l}\n"))
                .collect();
            let name = path.file_name().ok_or("no name")?;
            std::fs::write(tmp.path().join(name), text).map_err(|e| e.to_string())?;
        }
    }
    Ok(tmp)
}

struct Case {
    name: &'static str,
    run: fn(&Path) -> Result<(), String>,
}

fn options(dir: &Path, files: &[&str], env: &[(&str, &str)]) -> ProjectOptions {
    ProjectOptions {
        files: files.iter().map(|f| dir.join(f)).collect(),
        working_dir: dir.to_path_buf(),
        environment: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..ProjectOptions::default()
    }
}

fn project(options: &ProjectOptions) -> Result<Value, String> {
    let loaded = load(options).map_err(|e| format!("load failed: {e}"))?;
    serde_json::to_value(&loaded.project).map_err(|e| e.to_string())
}

fn failure(options: &ProjectOptions) -> Result<LoadError, String> {
    match load(options) {
        Ok(loaded) => Err(format!("loaded, expected an error: {:?}", loaded.project)),
        Err(err) => Ok(err),
    }
}

fn expect_eq(what: &str, actual: &Value, expected: &Value) -> Result<(), String> {
    if actual == expected {
        Ok(())
    } else {
        Err(format!("{what}: expected {expected}, got {actual}"))
    }
}

fn expect_contains(what: &str, text: &str, needle: &str) -> Result<(), String> {
    if text.contains(needle) {
        Ok(())
    } else {
        Err(format!("{what}: expected {needle:?} in {text:?}"))
    }
}

fn at<'a>(value: &'a Value, pointer: &str) -> &'a Value {
    value.pointer(pointer).unwrap_or(&Value::Null)
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "version key ignored, build short syntax, networks, anonymous volume",
            run: |root| {
                let dir = root.join("loader");
                let mut opts = options(
                    &dir,
                    &["testdata/compose-test-with-version.yaml"],
                    &[("HOME", "/home/foo"), ("QUX", "qux")],
                );
                opts.project_directory = Some(dir.clone());
                let p = project(&opts)?;
                expect_eq("version dropped", at(&p, "/version"), &Value::Null)?;
                expect_eq(
                    "build.context",
                    at(&p, "/services/web/build/context"),
                    &json!(dir.join("Dockerfile").to_string_lossy()),
                )?;
                expect_eq(
                    "web networks",
                    at(&p, "/services/web/networks"),
                    &json!({"default": null, "front": null}),
                )?;
                expect_eq(
                    "volumes_from",
                    at(&p, "/services/web/volumes_from"),
                    &json!(["other"]),
                )?;
                expect_eq(
                    "command",
                    at(&p, "/services/other/command"),
                    &json!(["top"]),
                )?;
                expect_eq(
                    "anonymous volume",
                    at(&p, "/services/other/volumes/0/type"),
                    &json!("volume"),
                )?;
                expect_eq(
                    "anonymous target",
                    at(&p, "/services/other/volumes/0/target"),
                    &json!("/data"),
                )?;
                expect_eq(
                    "anonymous source",
                    at(&p, "/services/other/volumes/0/source"),
                    &Value::Null,
                )?;
                expect_eq(
                    "volume driver",
                    at(&p, "/volumes/data/driver"),
                    &json!("local"),
                )?;
                expect_eq(
                    "front network",
                    at(&p, "/networks/front/name"),
                    &json!("compose-test-with-version_front"),
                )
            },
        },
        Case {
            name: "extends from another file: project env, env_file relative to that file",
            run: |root| {
                let dir = root.join("loader/testdata");
                let p = project(&options(&dir, &["compose-test-extends.yaml"], &[]))?;
                let svc = at(&p, "/services/importer");
                expect_eq("image", at(svc, "/image"), &json!("nginx"))?;
                expect_eq(
                    "container_name",
                    at(svc, "/container_name"),
                    &json!("imported"),
                )?;
                expect_eq(
                    "environment",
                    at(svc, "/environment"),
                    &json!({"SOURCE": "extends"}),
                )?;
                expect_eq("networks", at(svc, "/networks"), &json!({"default": null}))?;
                expect_eq("bind type", at(svc, "/volumes/0/type"), &json!("bind"))?;
                expect_eq(
                    "bind source",
                    at(svc, "/volumes/0/source"),
                    &json!("/opt/data"),
                )?;
                expect_eq(
                    "bind target",
                    at(svc, "/volumes/0/target"),
                    &json!("/var/lib/mysql"),
                )?;
                expect_eq(
                    "create_host_path",
                    at(svc, "/volumes/0/bind/create_host_path"),
                    &json!(true),
                )
            },
        },
        Case {
            name: "extends with a URL build context keeps it verbatim",
            run: |root| {
                let dir = root.join("loader/testdata");
                let p = project(&options(
                    &dir,
                    &["compose-test-extends-with-context-url.yaml"],
                    &[],
                ))?;
                let services = at(&p, "/services").as_object().cloned().unwrap_or_default();
                let (_, svc) = services.iter().next().ok_or("no service")?;
                expect_eq(
                    "context",
                    at(svc, "/build/context"),
                    &json!("https://github.com/docker/compose.git"),
                )?;
                expect_eq(
                    "dockerfile",
                    at(svc, "/build/dockerfile"),
                    &json!("Dockerfile"),
                )
            },
        },
        Case {
            name: "include with env_file; project env wins; same file twice; override after include",
            run: |root| {
                let dir = root.join("loader");
                let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
                let main = tmp.path().join("compose.yaml");
                let text = format!(
                    "include:\n  - path: {d}/testdata/subdir/compose-test-extends-imported.yaml\n    env_file: {d}/testdata/subdir/extra.env\n  - {d}/testdata/compose-include.yaml\nservices:\n  foo:\n    image: busybox\n    depends_on: [imported]\n",
                    d = dir.display()
                );
                std::fs::write(&main, text).map_err(|e| e.to_string())?;
                let p = project(&options(tmp.path(), &["compose.yaml"], &[]))?;
                expect_eq(
                    "container_name from include env",
                    at(&p, "/services/imported/container_name"),
                    &json!("extends"),
                )?;
                expect_eq(
                    "depends_on long form",
                    at(&p, "/services/foo/depends_on"),
                    &json!({"imported": {"condition": "service_started", "required": true}}),
                )?;
                let p = project(&options(
                    tmp.path(),
                    &["compose.yaml"],
                    &[("SOURCE", "override")],
                ))?;
                expect_eq(
                    "project env wins",
                    at(&p, "/services/imported/container_name"),
                    &json!("override"),
                )?;
                std::fs::write(
                    tmp.path().join("override.yaml"),
                    "services:\n  imported:\n    image: overridden\n",
                )
                .map_err(|e| e.to_string())?;
                let p = project(&options(
                    tmp.path(),
                    &["compose.yaml", "override.yaml"],
                    &[],
                ))?;
                expect_eq(
                    "override after include",
                    at(&p, "/services/imported/image"),
                    &json!("overridden"),
                )
            },
        },
        Case {
            name: "include cycle",
            run: |root| {
                let dir = root.join("loader/testdata");
                let err = failure(&options(&dir, &["compose-include-cycle.yaml"], &[]))?;
                expect_contains("message", &err.message, "include cycle detected")
            },
        },
        Case {
            name: "depends_on cycles",
            run: |root| {
                let dir = root.join("loader/testdata");
                let err = failure(&options(&dir, &["compose-depends-on-cycle.yaml"], &[]))?;
                expect_eq(
                    "cycle",
                    &json!(err.message),
                    &json!(
                        "dependency cycle detected: service1 -> service2 -> service3 -> service1"
                    ),
                )?;
                let err = failure(&options(&dir, &["compose-depends-on-self.yaml"], &[]))?;
                expect_eq(
                    "self",
                    &json!(err.message),
                    &json!("dependency cycle detected: service1 -> service1"),
                )
            },
        },
        Case {
            name: "extends chains, ports, ulimits, sibling build",
            run: |root| {
                let copy = extends_without_nil(root)?;
                let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
                let base = copy.path().join("base.yaml");
                let text = format!(
                    "services:\n  a:\n    extends: {{file: {b}, service: base}}\n    hostname: a\n  b:\n    extends: {{file: {b}, service: another}}\n    hostname: b\n  c:\n    extends: {{file: {b}, service: with-port}}\n    image: c\n  u:\n    extends: {{file: {b}, service: withUlimits}}\n  w:\n    extends: {{file: {b}, service: with-build}}\n",
                    b = base.display()
                );
                std::fs::write(tmp.path().join("compose.yaml"), text).map_err(|e| e.to_string())?;
                let p = project(&options(tmp.path(), &["compose.yaml"], &[]))?;
                expect_eq("a image", at(&p, "/services/a/image"), &json!("base"))?;
                expect_eq("a hostname", at(&p, "/services/a/hostname"), &json!("a"))?;
                expect_eq(
                    "b image (chained)",
                    at(&p, "/services/b/image"),
                    &json!("base"),
                )?;
                expect_eq("b hostname", at(&p, "/services/b/hostname"), &json!("b"))?;
                expect_eq(
                    "c port target",
                    at(&p, "/services/c/ports/0/target"),
                    &json!(8000),
                )?;
                expect_eq("nproc", at(&p, "/services/u/ulimits/nproc"), &json!(65535))?;
                expect_eq(
                    "nofile",
                    at(&p, "/services/u/ulimits/nofile"),
                    &json!({"soft": 20000, "hard": 40000}),
                )?;
                expect_eq(
                    "sibling build context",
                    at(&p, "/services/w/build/context"),
                    &json!(copy.path().to_string_lossy()),
                )?;
                let err = failure(&options(
                    &root.join("loader/testdata/extends"),
                    &["base.yaml"],
                    &[],
                ))?;
                expect_eq(
                    "null service refused",
                    &json!(err.to_string()),
                    &json!(format!(
                        "{}:25: services.nil: must be an object",
                        root.join("loader/testdata/extends/base.yaml").display()
                    )),
                )
            },
        },
        Case {
            name: "extends with file but no service",
            run: |_| {
                let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
                std::fs::write(
                    tmp.path().join("compose.yaml"),
                    "services:\n  test:\n    image: x\n    extends:\n      file: other.yaml\n",
                )
                .map_err(|e| e.to_string())?;
                let err = failure(&options(tmp.path(), &["compose.yaml"], &[]))?;
                expect_contains("location", &err.to_string(), "services.test.extends")?;
                expect_contains("message", &err.to_string(), "service")
            },
        },
        Case {
            name: "extends/ports.yaml as project file and extends source: one port",
            run: |root| {
                let dir = root.join("loader/testdata/extends");
                let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
                let ports = dir.join("ports.yaml");
                let text = std::fs::read_to_string(&ports).map_err(|e| e.to_string())?;
                let svc = text
                    .lines()
                    .find(|l| {
                        l.starts_with("  ") && !l.starts_with("   ") && l.trim_end().ends_with(':')
                    })
                    .ok_or("no service in ports.yaml")?
                    .trim()
                    .trim_end_matches(':')
                    .to_string();
                std::fs::write(
                    tmp.path().join("o.yaml"),
                    format!(
                        "services:\n  {svc}:\n    extends:\n      file: {}\n      service: {svc}\n",
                        ports.display()
                    ),
                )
                .map_err(|e| e.to_string())?;
                let mut opts = options(tmp.path(), &[], &[]);
                opts.files = vec![ports.clone(), tmp.path().join("o.yaml")];
                let p = project(&opts)?;
                let n = at(&p, &format!("/services/{svc}/ports"))
                    .as_array()
                    .map_or(0, Vec::len);
                expect_eq("port count", &json!(n), &json!(1))
            },
        },
        Case {
            name: "extends of services referencing undefined services",
            run: |root| {
                let dir = root.join("loader/testdata/extends");
                let source = dir.join("depends_on.yaml");
                for base in [
                    "with_depends_on",
                    "with_volumes_from",
                    "with_ipc",
                    "with_network_mode",
                ] {
                    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
                    std::fs::write(tmp.path().join("compose.yaml"), format!("services:\n  bar:\n    extends:\n      file: {}\n      service: {base}\n", source.display())).map_err(|e| e.to_string())?;
                    let err = failure(&options(tmp.path(), &["compose.yaml"], &[]))?;
                    expect_contains(
                        base,
                        &err.message,
                        "service \"bar\" depends on undefined service \"zot\"",
                    )?;
                    std::fs::write(tmp.path().join("compose.yaml"), format!("services:\n  bar:\n    extends:\n      file: {}\n      service: {base}\n  zot:\n    image: zot\n", source.display())).map_err(|e| e.to_string())?;
                    project(&options(tmp.path(), &["compose.yaml"], &[]))?;
                }
                Ok(())
            },
        },
        Case {
            name: "extends with !reset, interpolated base",
            run: |root| {
                let dir = root.join("loader/testdata/extends");
                let p = project(&options(&dir, &["reset.yaml"], &[]))?;
                expect_eq(
                    "command reset",
                    at(&p, "/services/base/command"),
                    &Value::Null,
                )?;
                expect_eq(
                    "init command kept",
                    at(&p, "/services/init/command"),
                    &json!(["sleep", "infinity"]),
                )?;
                let p = project(&options(&dir, &["interpolated.yaml"], &[]))?;
                let services = at(&p, "/services").as_object().cloned().unwrap_or_default();
                let found = services
                    .values()
                    .any(|s| at(s, "/volumes/0/source") == &json!("/dev/null"));
                expect_eq("source /dev/null", &json!(found), &json!(true))
            },
        },
        Case {
            name: "include with project_directory; combined include + extends",
            run: |root| {
                let dir = root.join("loader/testdata");
                let p = project(&options(
                    &dir.join("include"),
                    &["project-directory.yaml"],
                    &[],
                ))?;
                let services = at(&p, "/services").as_object().cloned().unwrap_or_default();
                let svc = services.values().next().ok_or("no service")?;
                expect_eq(
                    "context",
                    at(svc, "/build/context"),
                    &json!(dir.join("subdir").to_string_lossy()),
                )?;
                project(&options(&dir.join("combined"), &["compose.yaml"], &[]))?;
                let p = project(&options(&dir.join("include"), &["compose.yaml"], &[]))?;
                expect_eq(
                    "included context",
                    at(&p, "/services/included/build/context"),
                    &json!(dir.join("include").to_string_lossy()),
                )
            },
        },
        Case {
            name: "project names",
            run: |root| {
                let cli = root.join("cli/testdata");
                let name = |opts: &ProjectOptions| -> Result<Value, String> {
                    Ok(at(&project(opts)?, "/name").clone())
                };
                expect_eq(
                    "from dir",
                    &name(&options(&cli.join("simple"), &["compose.yaml"], &[]))?,
                    &json!("simple"),
                )?;
                expect_eq(
                    "normalised",
                    &name(&options(
                        &cli.join("UNNORMALIZED PATH"),
                        &["compose.yaml"],
                        &[],
                    ))?,
                    &json!("unnormalizedpath"),
                )?;
                let mut given = options(&cli.join("simple"), &["compose.yaml"], &[]);
                given.project_name = Some("42my_project_num".into());
                expect_eq("given", &name(&given)?, &json!("42my_project_num"))?;
                for bad in ["-my", "_my", "my.project", "MyProject"] {
                    given.project_name = Some(bad.into());
                    let err = failure(&given)?;
                    expect_contains(
                        bad,
                        &err.message,
                        &format!("invalid project name \"{bad}\""),
                    )?;
                }
                let env = options(
                    &cli.join("simple"),
                    &["compose.yaml"],
                    &[("COMPOSE_PROJECT_NAME", "from_env")],
                );
                expect_eq("COMPOSE_PROJECT_NAME", &name(&env)?, &json!("from_env"))?;
                let mut dot_env = options(&cli.join("env-file"), &[], &[]);
                dot_env.project_directory = Some(cli.join("env-file"));
                let p = project(&dot_env)?;
                expect_eq(
                    ".env name",
                    at(&p, "/name"),
                    &json!("my_project_from_dot_env"),
                )?;
                let named = options(
                    &cli.join("simple"),
                    &["compose-name.yaml"],
                    &[("TEST", "expected")],
                );
                expect_eq(
                    "name: with variable",
                    &name(&named)?,
                    &json!("test-expected-test"),
                )?;
                let mut stdin = options(Path::new("/"), &[], &[]);
                stdin.files = vec![PathBuf::from("-")];
                stdin.stdin = Some("services:\n  a:\n    image: x\n".into());
                let err = failure(&stdin)?;
                expect_contains("root dir", &err.message, "project name must not be empty")
            },
        },
        Case {
            name: "overrides, .env variables, env files",
            run: |root| {
                let cli = root.join("cli/testdata");
                let p = project(&options(
                    &cli.join("simple"),
                    &["compose.yaml", "compose-with-overrides.yaml"],
                    &[],
                ))?;
                expect_eq("image", at(&p, "/services/simple/image"), &json!("haproxy"))?;
                let p = project(&options(
                    &cli.join("simple"),
                    &["compose-with-variables.yaml"],
                    &[],
                ))?;
                let services = at(&p, "/services").as_object().cloned().unwrap_or_default();
                let published: Vec<&Value> = services
                    .values()
                    .map(|s| at(s, "/ports/0/published"))
                    .collect();
                expect_eq("published from .env", &json!(published), &json!(["8000"]))?;
                // compose-go's test reads no `.env`; an empty env file
                // stands in for it (the CLI case above reads `.env`).
                let mut no_dot_env =
                    options(&cli.join("env-file"), &["compose-with-env-file.yaml"], &[]);
                no_dot_env.env_files = vec![PathBuf::from("/dev/null")];
                let p = project(&no_dot_env)?;
                expect_eq("name", at(&p, "/name"), &json!("env-file"))?;
                let services = at(&p, "/services").as_object().cloned().unwrap_or_default();
                let svc = services.values().next().ok_or("no service")?;
                expect_eq(
                    "DEFAULT_PORT",
                    at(svc, "/environment/DEFAULT_PORT"),
                    &json!("8080"),
                )?;
                expect_eq("published", at(svc, "/ports/0/published"), &json!("8000"))?;
                let mut opts =
                    options(&cli.join("env-file"), &["compose-with-env-files.yaml"], &[]);
                opts.env_files = vec![cli.join("env-file/.env"), cli.join("env-file/override.env")];
                let p = project(&opts)?;
                let services = at(&p, "/services").as_object().cloned().unwrap_or_default();
                let svc = services.values().next().ok_or("no service")?;
                expect_eq(
                    "later env file wins",
                    at(svc, "/ports/0/published"),
                    &json!("9000"),
                )?;
                expect_eq(
                    "later service env file wins",
                    at(svc, "/environment/DEFAULT_PORT"),
                    &json!("9090"),
                )
            },
        },
        Case {
            name: ".env sees the shell first",
            run: |_| {
                let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
                std::fs::write(tmp.path().join(".env"), "FOO=foo\nBAR=${FOO}\n")
                    .map_err(|e| e.to_string())?;
                std::fs::write(tmp.path().join("compose.yaml"), "services:\n  s:\n    image: x\n    environment:\n      FOO: $FOO\n      BAR: $BAR\n").map_err(|e| e.to_string())?;
                let p = project(&options(tmp.path(), &["compose.yaml"], &[("FOO", "zot")]))?;
                expect_eq(
                    "with shell FOO",
                    at(&p, "/services/s/environment"),
                    &json!({"BAR": "zot", "FOO": "zot"}),
                )?;
                let p = project(&options(tmp.path(), &["compose.yaml"], &[]))?;
                expect_eq(
                    "without",
                    at(&p, "/services/s/environment"),
                    &json!({"BAR": "foo", "FOO": "foo"}),
                )
            },
        },
        Case {
            name: "env_file and label_file (example1/2)",
            run: |root| {
                let dir = root.join("loader");
                let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
                let text = format!(
                    "services:\n  s:\n    image: x\n    env_file:\n      - {d}/example1.env\n      - path: {d}/example2.env\n        required: false\n      - path: {d}/missing.env\n        required: false\n    label_file:\n      - {d}/example1.label\n      - {d}/example2.label\n",
                    d = dir.display()
                );
                std::fs::write(tmp.path().join("compose.yaml"), text).map_err(|e| e.to_string())?;
                let p = project(&options(tmp.path(), &["compose.yaml"], &[]))?;
                let env = at(&p, "/services/s/environment");
                for (k, v) in [
                    ("FOO", "foo_from_env_file"),
                    ("BAZ", "baz_from_env_file"),
                    ("BAR", "bar_from_env_file_2"),
                    ("QUX", "quz_from_env_file_2"),
                    ("ENV.WITH.DOT", "ok"),
                    ("ENV_WITH_UNDERSCORE", "ok"),
                ] {
                    expect_eq(k, env.get(k).unwrap_or(&Value::Null), &json!(v))?;
                }
                let labels = at(&p, "/services/s/labels")
                    .as_object()
                    .map(|m| m.keys().cloned().collect::<Vec<_>>())
                    .unwrap_or_default();
                for k in [
                    "BAR",
                    "BAZ",
                    "FOO",
                    "LABEL.WITH.DOT",
                    "LABEL_WITH_UNDERSCORE",
                    "QUX",
                ] {
                    if !labels.iter().any(|l| l == k) {
                        return Err(format!("label {k} missing from {labels:?}"));
                    }
                }
                Ok(())
            },
        },
        Case {
            name: "service environment resolution (types/fixtures)",
            run: |root| {
                let dir = root.join("types/fixtures");
                let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
                let text = format!(
                    "services:\n  base:\n    image: x\n    environment:\n      FOO: foo_from_environment\n      BAR: bar_from_environment\n      QIX:\n    env_file: {d}/base.env\n  over:\n    image: x\n    environment:\n      FOO: foo_from_environment\n    env_file: [{d}/base.env, {d}/override.env]\n",
                    d = dir.display()
                );
                std::fs::write(tmp.path().join("compose.yaml"), text).map_err(|e| e.to_string())?;
                let p = project(&options(
                    tmp.path(),
                    &["compose.yaml"],
                    &[("FOO", "FOO_from_os.env"), ("QIX", "QIX_from_os.env")],
                ))?;
                expect_eq(
                    "base",
                    at(&p, "/services/base/environment"),
                    &json!({
                    "BAR": "bar_from_environment", "FOO": "foo_from_environment", "INTERPOLATED_BAR": "bar_from_environment",
                    "INTERPOLATED_FOO": "FOO_from_os.env", "INTERPOLATED_ZOT": "zot_from_base.env", "QIX": "QIX_from_os.env", "ZOT": "zot_from_base.env"}),
                )?;
                expect_eq(
                    "over",
                    at(&p, "/services/over/environment"),
                    &json!({
                    "BAR": "bar_from_override.env", "FOO": "foo_from_environment", "INTERPOLATED_BAR": "bar_from_override.env",
                    "INTERPOLATED_FOO": "FOO_from_os.env", "INTERPOLATED_ZOT": "zot_from_base.env", "ZOT": "zot_from_base.env"}),
                )
            },
        },
    ]
}

#[test]
fn loader_fixtures_behave_like_compose() {
    let root = conformance();
    let cases = cases();
    let mut failures = Vec::new();
    for case in &cases {
        if let Err(why) = (case.run)(&root) {
            failures.push(format!("{}: {why}", case.name));
        }
    }
    println!(
        "loader conformance: {}/{} cases",
        cases.len() - failures.len(),
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "failing cases:\n{}",
        failures.join("\n")
    );
}
