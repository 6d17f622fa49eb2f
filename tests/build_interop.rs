//! `berth build` exporters read by other tools: a Docker engine (`docker
//! load` + `docker run`), skopeo and umoci.
//!
//! Each test builds the same small image with the real `berth` binary and a
//! private `BERTH_ROOT`:
//!
//! ```text
//! FROM scratch
//! COPY rootfs/ /          (a busybox root filesystem, fixtures/make-rootfs.sh)
//! COPY hello.txt /hello.txt
//! CMD ["cat", "/hello.txt"]
//! ```
//!
//! The Docker test starts a private `dockerd` with `fixtures/dockerd.sh`
//! (Debian's docker.io) and stops it from a guard's `Drop`, so the daemon,
//! its containerd and its mounts go away even when an assertion fails. When
//! an outside tool is missing or `dockerd` cannot start, the test fails if
//! `CI` is set and is skipped (with the reason on stderr) otherwise.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tempfile::TempDir;

/// Debian's Docker client; a different `docker` may come first on PATH.
const DOCKER: &str = "/usr/bin/docker";
const HELLO: &str = "hello from a berth image\n";
const DOCKERFILE: &str =
    "FROM scratch\nCOPY rootfs/ /\nCOPY hello.txt /hello.txt\nCMD [\"cat\", \"/hello.txt\"]\n";
/// `-t interop:1`: the tag is `1`.
const NAME: &str = "interop:1";
const TAG: &str = "1";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cli/ has a parent")
        .to_path_buf()
}

/// Scratch space for one test: a private `BERTH_ROOT`, a build context and
/// room for outputs. Removed on drop.
struct Workspace {
    dir: TempDir,
}

impl Workspace {
    fn new() -> Self {
        let ws = Workspace {
            dir: tempfile::Builder::new()
                .prefix("berth-interop-")
                .tempdir()
                .expect("temp dir"),
        };
        fs::create_dir(ws.berth_root()).expect("create BERTH_ROOT");
        ws.make_context();
        ws
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn berth_root(&self) -> PathBuf {
        self.path("berth-root")
    }

    fn context(&self) -> PathBuf {
        self.path("ctx")
    }

    fn make_context(&self) {
        let ctx = self.context();
        fs::create_dir(&ctx).expect("create context");
        run(Command::new("sh")
            .arg(repo_root().join("fixtures/make-rootfs.sh"))
            .arg(ctx.join("rootfs")));
        fs::write(ctx.join("hello.txt"), HELLO).expect("write hello.txt");
        fs::write(ctx.join("Dockerfile"), DOCKERFILE).expect("write Dockerfile");
    }

    /// `berth build --output OUTPUT -t interop:1 CTX`, which must succeed.
    fn build(&self, output: &str) {
        let berth = assert_cmd::cargo::cargo_bin("berth");
        run(Command::new(berth)
            .env("BERTH_ROOT", self.berth_root())
            .args(["build", "--output", output, "-t", NAME])
            .arg(self.context()));
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

/// Runs `cmd` and returns its output, whatever its exit status; panics
/// only if it cannot be started.
fn run_unchecked(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", describe(cmd)))
}

/// Runs `cmd` and returns its output; panics with both streams unless it
/// exits with status 0.
fn run(cmd: &mut Command) -> Output {
    let what = describe(cmd);
    let out = run_unchecked(cmd);
    assert!(
        out.status.success(),
        "`{what}` failed ({})\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The environment cannot run this test (not berth's fault): fail under CI,
/// where the environment is supposed to provide it, else skip.
/// Returns normally only when the caller should skip.
fn unavailable(test: &str, why: &str) {
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("{test}: {why} (CI is set, so this is an error, not a skip)");
    }
    // Straight to the process's stderr: libtest captures `eprintln!` of
    // passing tests, and a skip should be seen.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {why} (set CI=1 to make this a failure)"
    );
}

/// Whether every program in `tools` exists; reports the first missing one.
fn tools_present(test: &str, tools: &[&str]) -> bool {
    for tool in tools {
        let found = if tool.starts_with('/') {
            Path::new(tool).exists()
        } else {
            // fixtures/dockerd.sh adds /usr/sbin (dockerd, runc) to PATH.
            let path = std::env::var_os("PATH").unwrap_or_default();
            std::env::split_paths(&path)
                .chain([PathBuf::from("/usr/sbin")])
                .any(|dir| dir.join(tool).exists())
        };
        if !found {
            unavailable(
                test,
                &format!("`{tool}` is not installed (Debian packages: docker.io, skopeo, umoci)"),
            );
            return false;
        }
    }
    true
}

fn parse_json(text: &str, what: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{what} is not JSON ({e}):\n{text}"))
}

/// Docker's and OCI's name for this machine's architecture.
fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

// ---------------------------------------------------------------------------
// A private Docker engine.

/// `bash fixtures/dockerd.sh` (bash: works even if the mode bit got lost).
fn dockerd_sh() -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(repo_root().join("fixtures/dockerd.sh"));
    cmd
}

/// A `dockerd` started by `fixtures/dockerd.sh start`; `Drop` runs `stop`,
/// which kills the daemon, its containerd and containers, unmounts and
/// removes the state directory.
struct Dockerd {
    state: PathBuf,
    host: String,
    /// Parent of `state`, removed after `stop` (fields drop after `drop`).
    parent: TempDir,
}

impl Dockerd {
    /// `Err` carries why the engine could not start (the script's stderr,
    /// which ends with the tail of dockerd.log).
    fn start() -> Result<Dockerd, String> {
        // Short path: containerd's unix sockets live under it (108-byte limit).
        let parent = tempfile::Builder::new()
            .prefix("berth-dk-")
            .tempdir_in("/tmp")
            .map_err(|e| format!("temp dir: {e}"))?;
        let state = parent.path().join("d");
        // A script that cannot even be run is the project's fault: panic.
        let out = run_unchecked(dockerd_sh().arg("start").arg(&state));
        // From here on the guard owns whatever was started, even on failure.
        let mut guard = Dockerd {
            state,
            host: String::new(),
            parent,
        };
        if !out.status.success() {
            return Err(format!(
                "fixtures/dockerd.sh start failed ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let text = stdout(&out);
        guard.host = text
            .lines()
            .find_map(|l| l.strip_prefix("DOCKER_HOST="))
            .ok_or_else(|| format!("fixtures/dockerd.sh printed no DOCKER_HOST= line:\n{text}"))?
            .to_string();
        Ok(guard)
    }

    /// `/usr/bin/docker ARGS` against this engine only: its own socket and
    /// an empty client configuration.
    fn docker<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(DOCKER);
        cmd.env("DOCKER_HOST", &self.host)
            .env("DOCKER_CONFIG", self.parent.path().join("client"))
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH")
            .args(args);
        cmd
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let result = dockerd_sh().arg("stop").arg(&self.state).output();
        match result {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "warning: fixtures/dockerd.sh stop {} failed ({}):\n{}",
                self.state.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("warning: cannot run fixtures/dockerd.sh stop: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Docker engine.

/// `--output type=docker,dest=OUT.tar` is a `docker save` archive
/// (manifest.json + repositories; Debian's Docker 20.10 loads nothing
/// else), tagged `interop:1`, that Docker loads and runs, with the
/// Dockerfile's CMD and this machine's platform in its config.
#[test]
fn docker_archive_loads_and_runs_in_docker() {
    const TEST: &str = "docker_archive_loads_and_runs_in_docker";
    if !tools_present(TEST, &[DOCKER, "dockerd"]) {
        return;
    }
    let ws = Workspace::new();
    let archive = ws.path("out.tar");
    ws.build(&format!("type=docker,dest={}", archive.display()));
    assert!(archive.is_file(), "no archive at {}", archive.display());

    let engine = match Dockerd::start() {
        Ok(engine) => engine,
        Err(why) => return unavailable(TEST, &format!("no Docker engine: {why}")),
    };

    let load = run(engine.docker(["load", "-i"]).arg(&archive));
    assert!(
        stdout(&load).contains(&format!("Loaded image: {NAME}")),
        "docker load did not report {NAME}:\n{}",
        stdout(&load)
    );
    let images = run(&mut engine.docker(["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]));
    assert!(
        stdout(&images).lines().any(|l| l == NAME),
        "docker image ls lacks {NAME}:\n{}",
        stdout(&images)
    );

    let ran = run(&mut engine.docker(["run", "--rm", "--network", "none", NAME]));
    assert_eq!(stdout(&ran), HELLO, "output of the image's CMD");

    let inspect = run(&mut engine.docker(["image", "inspect", NAME]));
    let inspect = parse_json(&stdout(&inspect), "docker image inspect");
    let image = &inspect[0];
    assert_eq!(
        image["Config"]["Cmd"],
        serde_json::json!(["cat", "/hello.txt"]),
        "Config.Cmd in docker image inspect:\n{image:#}"
    );
    assert_eq!(image["Os"], "linux", "Os in docker image inspect");
    assert_eq!(
        image["Architecture"],
        oci_arch(),
        "Architecture in docker image inspect"
    );
    // One layer per COPY, as BuildKit makes.
    assert_eq!(
        image["RootFS"]["Layers"].as_array().map(Vec::len),
        Some(2),
        "RootFS.Layers in docker image inspect:\n{image:#}"
    );
}

/// The same archive without an engine: skopeo reads `docker-archive:`.
#[test]
fn docker_archive_is_read_by_skopeo() {
    const TEST: &str = "docker_archive_is_read_by_skopeo";
    if !tools_present(TEST, &["skopeo", "tar"]) {
        return;
    }
    let ws = Workspace::new();
    let archive = ws.path("out.tar");
    ws.build(&format!("type=docker,dest={}", archive.display()));

    let target = format!("docker-archive:{}", archive.display());
    let info = run(Command::new("skopeo").args(["inspect", &target]));
    let info = parse_json(&stdout(&info), "skopeo inspect docker-archive:");
    assert_eq!(
        info["Layers"].as_array().map(Vec::len),
        Some(2),
        "Layers:\n{info:#}"
    );
    // skopeo reports no RepoTags for archives: read the archive's own
    // manifest.json, where `docker load` finds the name.
    let manifest = run(Command::new("tar")
        .arg("-xOf")
        .arg(&archive)
        .arg("manifest.json"));
    let manifest = parse_json(&stdout(&manifest), "manifest.json in the archive");
    assert_eq!(
        manifest[0]["RepoTags"],
        serde_json::json!([NAME]),
        "RepoTags in the archive's manifest.json:\n{manifest:#}"
    );
    let config = run(Command::new("skopeo").args(["inspect", "--config", &target]));
    let config = parse_json(&stdout(&config), "skopeo inspect --config");
    assert_eq!(
        config["config"]["Cmd"],
        serde_json::json!(["cat", "/hello.txt"])
    );
}

// ---------------------------------------------------------------------------
// OCI image layout: skopeo and umoci.

/// Checks an OCI image layout at `layout`, as skopeo sees it: by its
/// `org.opencontainers.image.ref.name` (`oci:DIR:1`) and, since it holds
/// one image, without a name (`oci:DIR`).
fn assert_skopeo_reads_layout(layout: &Path) {
    let index = fs::read_to_string(layout.join("index.json")).expect("index.json in the layout");
    let index = parse_json(&index, "index.json");
    let manifests = index["manifests"]
        .as_array()
        .expect("index.json has manifests");
    assert_eq!(manifests.len(), 1, "one image in the layout:\n{index:#}");
    // Like BuildKit's OCI exporter: the ref name is the tag alone, so that
    // `oci:DIR:TAG` (skopeo) and `--image DIR:TAG` (umoci) find it.
    assert_eq!(
        manifests[0]["annotations"]["org.opencontainers.image.ref.name"], TAG,
        "`-t {NAME}` sets org.opencontainers.image.ref.name to the tag:\n{index:#}"
    );
    assert!(layout.join("oci-layout").is_file(), "no oci-layout file");

    for target in [
        format!("oci:{}:{TAG}", layout.display()),
        format!("oci:{}", layout.display()),
    ] {
        let info = run(Command::new("skopeo").args(["inspect", &target]));
        let info = parse_json(&stdout(&info), &format!("skopeo inspect {target}"));
        assert_eq!(
            info["Layers"].as_array().map(Vec::len),
            Some(2),
            "{target}: one layer per COPY:\n{info:#}"
        );
        assert_eq!(info["Os"], "linux", "{target}: Os");
        assert_eq!(info["Architecture"], oci_arch(), "{target}: Architecture");

        let config = run(Command::new("skopeo").args(["inspect", "--config", &target]));
        let config = parse_json(
            &stdout(&config),
            &format!("skopeo inspect --config {target}"),
        );
        assert_eq!(
            config["config"]["Cmd"],
            serde_json::json!(["cat", "/hello.txt"]),
            "{target}: config.Cmd:\n{config:#}"
        );
    }
}

/// `--output type=oci,dest=DIR` writes an OCI image layout that skopeo
/// inspects and umoci unpacks into the expected root filesystem.
#[test]
fn oci_layout_is_read_by_skopeo_and_umoci() {
    const TEST: &str = "oci_layout_is_read_by_skopeo_and_umoci";
    if !tools_present(TEST, &["skopeo", "umoci"]) {
        return;
    }
    let ws = Workspace::new();
    let layout = ws.path("layout");
    ws.build(&format!("type=oci,dest={}", layout.display()));
    assert_skopeo_reads_layout(&layout);

    let bundle = ws.path("bundle");
    run(Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:{TAG}", layout.display()))
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        fs::read_to_string(rootfs.join("hello.txt")).expect("/hello.txt in the unpacked rootfs"),
        HELLO
    );
    let busybox =
        fs::metadata(rootfs.join("bin/busybox")).expect("/bin/busybox in the unpacked rootfs");
    assert!(
        busybox.is_file() && busybox.len() > 0,
        "/bin/busybox is a non-empty file"
    );
    {
        use std::os::unix::fs::PermissionsExt;
        assert_ne!(
            busybox.permissions().mode() & 0o111,
            0,
            "/bin/busybox is executable"
        );
    }
    let sh = fs::symlink_metadata(rootfs.join("bin/sh")).expect("/bin/sh in the unpacked rootfs");
    assert!(sh.file_type().is_symlink(), "/bin/sh stays a symlink");
    // umoci writes the runtime config from the image config.
    let spec = fs::read_to_string(bundle.join("config.json")).expect("bundle config.json");
    let spec = parse_json(&spec, "bundle config.json");
    assert_eq!(
        spec["process"]["args"],
        serde_json::json!(["cat", "/hello.txt"])
    );
}

/// `--output type=oci,dest=OUT.tar` is the same layout as a tar archive:
/// it untars into a layout skopeo reads, and skopeo reads the archive
/// itself as `oci-archive:`.
#[test]
fn oci_archive_is_read_by_skopeo() {
    const TEST: &str = "oci_archive_is_read_by_skopeo";
    if !tools_present(TEST, &["skopeo", "tar"]) {
        return;
    }
    let ws = Workspace::new();
    let archive = ws.path("out.tar");
    ws.build(&format!("type=oci,dest={}", archive.display()));
    assert!(archive.is_file(), "no archive at {}", archive.display());

    let untarred = ws.path("untarred");
    fs::create_dir(&untarred).expect("create untar dir");
    run(Command::new("tar")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(&untarred));
    assert_skopeo_reads_layout(&untarred);

    for target in [
        format!("oci-archive:{}", archive.display()),
        format!("oci-archive:{}:{TAG}", archive.display()),
    ] {
        let info = run(Command::new("skopeo").args(["inspect", &target]));
        let info = parse_json(&stdout(&info), &format!("skopeo inspect {target}"));
        assert_eq!(
            info["Layers"].as_array().map(Vec::len),
            Some(2),
            "{target}: Layers:\n{info:#}"
        );
        let config = run(Command::new("skopeo").args(["inspect", "--config", &target]));
        let config = parse_json(
            &stdout(&config),
            &format!("skopeo inspect --config {target}"),
        );
        assert_eq!(
            config["config"]["Cmd"],
            serde_json::json!(["cat", "/hello.txt"]),
            "{target}: config.Cmd"
        );
    }
}
