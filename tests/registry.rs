//! `berth push`, `pull`, `login` and FROM-pulls against a real registry
//! (Debian's `docker-registry`, started per test on a loopback port by
//! `support::registry`), with and without basic auth, through a proxy that
//! injects faults, and alongside skopeo. No mocks: what berth sends is what
//! a registry receives.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::fault_proxy::{FaultProxy, Faults};
use support::registry::{Registry, sha256_digest};
use support::{Env, StoredImage, make_rootfs};

/// A context with a busybox root filesystem, a text file and `size` bytes
/// of incompressible data, and a Dockerfile copying them.
fn small_context(env: &Env, size: usize) -> PathBuf {
    let ctx = env.path("ctx");
    make_rootfs(&ctx.join("rootfs"));
    fs::write(ctx.join("greeting"), "hello from the registry\n").expect("write greeting");
    fs::write(ctx.join("blob.bin"), pseudo_random(size)).expect("write blob");
    fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY rootfs/ /\nCOPY greeting /greeting\nCOPY blob.bin /blob.bin\nCMD [\"cat\", \"/greeting\"]\n",
    )
    .expect("write Dockerfile");
    ctx
}

/// Deterministic bytes gzip cannot shrink (so layers have real size).
fn pseudo_random(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn run(mut cmd: Command) -> (bool, String, String) {
    let out: Output = cmd.output().expect("run berth");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `cmd` with `stdin` fed to it (closed at once when empty).
fn run_with_stdin(mut cmd: Command, stdin: &str) -> (bool, String, String) {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn berth");
    {
        use std::io::Write;
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(stdin.as_bytes()).expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait berth");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn berth_ok(env: &Env, args: &[&str]) -> (String, String) {
    let mut c = env.berth();
    c.args(args);
    let (ok, stdout, stderr) = run(c);
    assert!(
        ok,
        "berth {args:?} failed:\nstdout: {stdout}\nstderr: {stderr}"
    );
    (stdout, stderr)
}

/// Runs berth expecting failure; returns stderr.
fn berth_fails(env: &Env, args: &[&str]) -> String {
    let mut c = env.berth();
    c.args(args);
    let (ok, stdout, stderr) = run(c);
    assert!(
        !ok,
        "berth {args:?} should fail:\nstdout: {stdout}\nstderr: {stderr}"
    );
    stderr
}

/// The manifest digest the registry serves for `repo:tag`.
fn registry_digest(reg: &Registry, repo: &str, tag: &str) -> String {
    let resp = reg.request(
        "GET",
        &format!("/v2/{repo}/manifests/{tag}"),
        &[(
            "Accept",
            "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json",
        )],
        &[],
    );
    assert_eq!(resp.status, 200, "manifest {repo}:{tag}: {}", resp.text());
    sha256_digest(&resp.body)
}

/// Every blob in the store hashes to its name: nothing corrupt was kept.
fn assert_store_intact(root: &Path) {
    let dir = root.join("blobs/sha256");
    let Ok(entries) = fs::read_dir(&dir) else {
        return;
    };
    for e in entries {
        let e = e.expect("read blobs dir");
        let data = fs::read(e.path()).expect("read blob");
        let name = e.file_name().to_string_lossy().into_owned();
        assert_eq!(
            sha256_digest(&data),
            format!("sha256:{name}"),
            "blob {name} in the store does not hash to its name"
        );
    }
}

/// Builds, pushes, forgets the image locally (name and blobs), pulls it back:
/// same manifest digest, same image ID, same files.
#[test]
fn push_then_pull_back_gives_the_same_image() {
    let Some(reg) = Registry::start() else { return };
    let env = Env::new();
    let ctx = small_context(&env, 300_000);
    let name = format!("{}/app:1", reg.addr());
    env.build_ok(&["-t", &name, ctx.to_str().expect("utf-8 path")]);
    let built = env.image(&name);

    let (stdout, stderr) = berth_ok(&env, &["push", &name]);
    let line = format!("1: digest: {} size: ", built.manifest_digest);
    assert!(stdout.starts_with(&line), "push printed {stdout:?}");
    assert!(stderr.contains("Pushed"), "{stderr}");
    assert_eq!(registry_digest(&reg, "app", "1"), built.manifest_digest);

    berth_ok(&env, &["rmi", &name]);
    berth_ok(&env, &["prune", "-a", "-f"]);
    assert!(
        !support::blob_path(&env.root(), &built.manifest_digest).exists(),
        "prune should have removed the image's blobs"
    );
    let (stdout, stderr) = berth_ok(&env, &["pull", &name]);
    assert_eq!(stdout.trim(), name);
    assert!(stderr.contains("Pull complete"), "{stderr}");
    assert!(
        stderr.contains(&format!("Digest: {}", built.manifest_digest)),
        "{stderr}"
    );
    let pulled = env.image(&name);
    assert_eq!(pulled.manifest_digest, built.manifest_digest);
    assert_eq!(pulled.config, built.config);
    let merged = pulled.merged(&env.path("merged"));
    assert_eq!(merged.read("greeting"), "hello from the registry\n");
    assert_store_intact(&env.root());

    // A second pull finds everything in the store.
    let (_, stderr) = berth_ok(&env, &["pull", &name]);
    assert!(stderr.contains("Image is up to date"), "{stderr}");
}

/// A build FROM an image only the registry has pulls it, and RUN sees its
/// files.
#[test]
fn build_from_a_pushed_image_pulls_it_and_runs_on_it() {
    let Some(reg) = Registry::start() else { return };
    let pusher = Env::new();
    let ctx = small_context(&pusher, 10_000);
    let base = format!("{}/base:1", reg.addr());
    pusher.build_ok(&["-t", &base, "--push", ctx.to_str().expect("utf-8 path")]);

    let builder = Env::new();
    let app = builder.write(
        "app",
        &[(
            "Dockerfile",
            &format!("FROM {base}\nRUN cp /greeting /copied && echo built >> /copied\n"),
        )],
    );
    let stderr = builder.build_ok(&["-t", "app:1", app.to_str().expect("utf-8 path")]);
    assert!(
        stderr.contains(&format!("[internal] pull {base}")),
        "{stderr}"
    );
    let image = builder.image("docker.io/library/app:1");
    let merged = image.merged(&builder.path("merged"));
    assert_eq!(merged.read("copied"), "hello from the registry\nbuilt\n");
    // The base is in the store now, under its name.
    builder.image(&base);
}

/// A second tag and a second repository upload nothing again: blobs the
/// repository has are skipped, blobs another repository has are mounted.
#[test]
fn pushing_again_uploads_no_blob_twice() {
    let Some(reg) = Registry::start() else { return };
    let env = Env::new();
    let ctx = small_context(&env, 200_000);
    let first = format!("{}/app:1", reg.addr());
    env.build_ok(&["-t", &first, ctx.to_str().expect("utf-8 path")]);
    berth_ok(&env, &["push", &first]);
    let uploads = reg.blob_upload_count();
    assert!(uploads >= 4, "config and three layers: {uploads} uploads");

    let second = format!("{}/app:2", reg.addr());
    berth_ok(&env, &["tag", &first, &second]);
    let (_, stderr) = berth_ok(&env, &["push", &second]);
    assert!(stderr.contains("Layer already exists"), "{stderr}");

    let other = format!("{}/team/other:1", reg.addr());
    berth_ok(&env, &["tag", &first, &other]);
    let (_, stderr) = berth_ok(&env, &["push", &other]);
    assert!(
        stderr.contains("Mounted from another repository"),
        "{stderr}"
    );

    assert_eq!(reg.blob_upload_count(), uploads, "no new uploads");
    assert!(reg.blob_mount_count() >= uploads, "every blob mounted");
    reg.assert_no_blob_uploaded_twice();
    let digest = registry_digest(&reg, "app", "1");
    assert_eq!(registry_digest(&reg, "app", "2"), digest);
    assert_eq!(registry_digest(&reg, "team/other", "1"), digest);
}

/// Against a registry with htpasswd basic auth: no credentials and wrong
/// ones fail with one clear line; `berth login` stores working ones in
/// Docker's config.json; `logout` removes them. No secret is ever printed.
#[test]
fn basic_auth_login_push_pull_logout() {
    let Some(reg) = Registry::start_with_basic_auth("ci", "s3cret-pa55") else {
        return;
    };
    let env = Env::new();
    let docker_config = env.path("docker-config");
    let ctx = small_context(&env, 1_000);
    let name = format!("{}/private:1", reg.addr());
    env.build_ok(&["-t", &name, ctx.to_str().expect("utf-8 path")]);
    let mut transcript = String::new();
    let with_config = |args: &[&str], stdin: Option<&str>| {
        let mut c = env.berth();
        c.env("DOCKER_CONFIG", &docker_config).args(args);
        run_with_stdin(c, stdin.unwrap_or(""))
    };

    let (ok, _, stderr) = with_config(&["push", &name], None);
    assert!(!ok);
    assert!(
        stderr.contains("unauthorized: authentication required")
            && stderr.contains(&format!("berth login {}", reg.addr())),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    transcript += &stderr;

    let (ok, stdout, stderr) = with_config(
        &["login", &reg.addr(), "-u", "ci", "--password-stdin"],
        Some("wrong-password\n"),
    );
    assert!(!ok);
    assert!(
        stderr.contains("incorrect username or password"),
        "{stderr}"
    );
    assert!(!docker_config.join("config.json").exists());
    transcript += &stdout;
    transcript += &stderr;

    let (ok, stdout, stderr) = with_config(
        &["login", &reg.addr(), "-u", "ci", "--password-stdin"],
        Some("s3cret-pa55\n"),
    );
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), "Login Succeeded");
    transcript += &stdout;
    transcript += &stderr;
    let config: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(docker_config.join("config.json")).expect("config.json written"),
    )
    .expect("config.json is JSON");
    let auth = config["auths"][reg.addr()]["auth"]
        .as_str()
        .expect("an auths entry for the registry");
    assert_eq!(auth, support::registry::http::base64(b"ci:s3cret-pa55"));

    let (ok, stdout, stderr) = with_config(&["push", &name], None);
    assert!(ok, "{stderr}");
    transcript += &stdout;
    transcript += &stderr;
    let other_store = Env::new();
    let mut c = other_store.berth();
    c.env("DOCKER_CONFIG", &docker_config).args(["pull", &name]);
    let (ok, stdout, stderr) = run(c);
    assert!(ok, "{stderr}");
    transcript += &stdout;
    transcript += &stderr;
    assert_eq!(
        other_store.image(&name).manifest_digest,
        env.image(&name).manifest_digest
    );

    let (ok, stdout, _) = with_config(&["logout", &reg.addr()], None);
    assert!(ok);
    assert!(stdout.contains("Removing login credentials"), "{stdout}");
    let (ok, _, stderr) = with_config(&["pull", &name], None);
    assert!(!ok && stderr.contains("unauthorized"), "{stderr}");
    transcript += &stderr;

    for secret in ["s3cret-pa55", "wrong-password", auth] {
        assert!(
            !transcript.contains(secret),
            "a credential appeared in berth's output:\n{transcript}"
        );
    }
}

/// Mistakes a user makes get one line naming the image and the cause, and
/// a non-zero exit.
#[test]
fn bad_references_unknown_images_and_a_dead_registry_fail_in_one_line() {
    let Some(reg) = Registry::start() else { return };
    let env = Env::new();
    let ctx = small_context(&env, 1_000);
    let name = format!("{}/app:1", reg.addr());
    env.build_ok(&["-t", &name, "--push", ctx.to_str().expect("utf-8 path")]);

    let one_line = |stderr: &str| {
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr:?}");
    };
    let e = berth_fails(&env, &["pull", &format!("{}/app:nope", reg.addr())]);
    assert_eq!(
        e.trim(),
        format!("berth: pull {}/app:nope: manifest unknown", reg.addr())
    );
    let e = berth_fails(&env, &["pull", &format!("{}/nothing/here:1", reg.addr())]);
    one_line(&e);
    assert!(e.contains("unknown"), "{e}");

    // A port nothing listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = dead.local_addr().expect("addr").port();
    drop(dead);
    let e = berth_fails(&env, &["pull", &format!("127.0.0.1:{port}/app:1")]);
    one_line(&e);
    assert!(
        e.contains("cannot reach registry") && e.contains("connection refused"),
        "{e}"
    );

    let e = berth_fails(&env, &["pull", "Not/Valid"]);
    one_line(&e);
    assert!(e.contains("invalid reference format"), "{e}");

    // A broken berth config file is named, with the fix.
    let config = env.path("berth-config.json");
    fs::write(&config, r#"{"insecure-registries": "reg.lan"}"#).expect("write config");
    let mut c = env.berth();
    c.env("BERTH_CONFIG", &config).args(["pull", &name]);
    let (ok, _, e) = run(c);
    assert!(!ok);
    one_line(&e);
    assert!(
        e.contains("berth-config.json") && e.contains("insecure-registries must be a list"),
        "{e}"
    );
    // A listed registry is accepted (loopback needs no listing, so this
    // only shows the file is read and the pull still works).
    fs::write(&config, r#"{"insecure-registries": ["reg.lan:5000"]}"#).expect("write config");
    let mut c = env.berth();
    c.env("BERTH_CONFIG", &config).args(["pull", "-q", &name]);
    let (ok, _, e) = run(c);
    assert!(ok, "{e}");

    let e = berth_fails(&env, &["push", &format!("{}/never-built:1", reg.addr())]);
    one_line(&e);
    assert!(e.contains("no such image in the local store"), "{e}");
}

fn skopeo() -> bool {
    let found = Command::new("skopeo").arg("--version").output().is_ok();
    if !found && std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("skopeo is not installed (CI is set, so this is an error, not a skip)");
    }
    if !found {
        eprintln!("SKIPPED: skopeo is not installed (set CI=1 to make this a failure)");
    }
    found
}

/// skopeo reads what berth pushed, and copies it out byte for byte.
#[test]
fn skopeo_reads_and_copies_what_berth_pushed() {
    if !skopeo() {
        return;
    }
    let Some(reg) = Registry::start() else { return };
    let env = Env::new();
    let ctx = small_context(&env, 50_000);
    let name = format!("{}/app:1", reg.addr());
    env.build_ok(&["-t", &name, "--push", ctx.to_str().expect("utf-8 path")]);
    let built = env.image(&name);

    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", &format!("docker://{name}")])
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).expect("skopeo JSON");
    assert_eq!(info["Digest"], built.manifest_digest.as_str());
    assert_eq!(info["Layers"].as_array().map(Vec::len), Some(3));

    let dest = env.path("copied");
    let out = Command::new("skopeo")
        .args([
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{name}"),
            &format!("oci:{}:copy", dest.display()),
        ])
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let copied = StoredImage::load(&dest, "copy");
    assert_eq!(copied.manifest_digest, built.manifest_digest);
}

/// berth pulls a multi-platform image that skopeo pushed from an OCI
/// layout: this machine's platform by default, another with --platform.
#[test]
fn berth_pulls_a_multi_platform_index_skopeo_pushed() {
    if !skopeo() {
        return;
    }
    let Some(reg) = Registry::start() else { return };
    let env = Env::new();
    let layout = env.path("layout");
    let mut entries = Vec::new();
    for arch in ["amd64", "arm64"] {
        let ctx = env.write(
            &format!("ctx-{arch}"),
            &[
                ("Dockerfile", "FROM scratch\nCOPY arch /arch\n"),
                ("arch", arch),
            ],
        );
        let out_dir = env.path(&format!("oci-{arch}"));
        env.build_ok(&[
            "--platform",
            &format!("linux/{arch}"),
            "--output",
            &format!("type=oci,dest={}", out_dir.display()),
            ctx.to_str().expect("utf-8 path"),
        ]);
        copy_blobs(&out_dir, &layout);
        let index: serde_json::Value = serde_json::from_str(
            &fs::read_to_string(out_dir.join("index.json")).expect("index.json"),
        )
        .expect("index JSON");
        let m = &index["manifests"][0];
        entries.push(serde_json::json!({
            "mediaType": m["mediaType"],
            "digest": m["digest"],
            "size": m["size"],
            "platform": {"os": "linux", "architecture": arch},
        }));
    }
    let nested = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    }))
    .expect("index bytes");
    let nested_digest = sha256_digest(&nested);
    fs::write(support::blob_path(&layout, &nested_digest), &nested).expect("write index blob");
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("oci-layout");
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": nested_digest,
                "size": nested.len(),
                "annotations": {"org.opencontainers.image.ref.name": "multi"},
            }],
        }))
        .expect("index.json bytes"),
    )
    .expect("write index.json");

    let name = format!("{}/multi:1", reg.addr());
    let out = Command::new("skopeo")
        .args([
            "copy",
            "--all",
            "--dest-tls-verify=false",
            &format!("oci:{}:multi", layout.display()),
            &format!("docker://{name}"),
        ])
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let host_arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let default_store = Env::new();
    let (_, stderr) = berth_ok(&default_store, &["pull", &name]);
    assert!(
        stderr.contains(&format!("Digest: {nested_digest}")),
        "{stderr}"
    );
    if host_arch == "amd64" || host_arch == "arm64" {
        let image = default_store.image(&name);
        assert_eq!(image.config["architecture"], host_arch);
        let merged = image.merged(&default_store.path("merged"));
        assert_eq!(merged.read("arch"), host_arch);
    }
    let arm_store = Env::new();
    berth_ok(&arm_store, &["pull", "--platform", "linux/arm64", &name]);
    let image = arm_store.image(&name);
    assert_eq!(image.config["architecture"], "arm64");
    assert_eq!(
        image.merged(&arm_store.path("merged")).read("arch"),
        "arm64"
    );

    let e = berth_fails(&arm_store, &["pull", "--platform", "linux/s390x", &name]);
    assert!(
        e.contains("no image for platform linux/s390x") && e.contains("linux/amd64, linux/arm64"),
        "{e}"
    );
}

fn copy_blobs(from: &Path, to: &Path) {
    let dest = to.join("blobs/sha256");
    fs::create_dir_all(&dest).expect("mkdir blobs");
    for e in fs::read_dir(from.join("blobs/sha256")).expect("read blobs") {
        let e = e.expect("blob entry");
        fs::copy(e.path(), dest.join(e.file_name())).expect("copy blob");
    }
}

/// Through a proxy that answers 500 and 429, drops connections mid-body
/// (both ways) and stalls past berth's timeout, a push and a pull still
/// complete with the right digests; downloads resume with Range.
#[test]
fn push_and_pull_survive_dropped_connections_errors_and_stalls() {
    let Some(reg) = Registry::start() else { return };
    let env = Env::new();
    let ctx = small_context(&env, 6 << 20);
    let proxy = FaultProxy::start(
        &reg.addr(),
        Faults {
            seed: 7,
            status_500: 0.15,
            status_429: 0.1,
            drop_response_after: 0.15,
            drop_request: 0.15,
            stall: 0.1,
            stall_for: Duration::from_secs(4),
            max_faults: Some(12),
            ..Faults::default()
        },
    );
    let name = format!("{}/app:1", proxy.addr());
    env.build_ok(&["-t", &name, ctx.to_str().expect("utf-8 path")]);
    let built = env.image(&name);

    let mut push = env.berth();
    push.env("BERTH_REGISTRY_TIMEOUT", "2")
        .env("BERTH_REGISTRY_RETRIES", "8")
        .args(["push", &name]);
    let (ok, stdout, push_stderr) = run(push);
    assert!(
        ok,
        "push failed:\n{stdout}\n{push_stderr}\n{:?}",
        proxy.stats()
    );
    assert_eq!(registry_digest(&reg, "app", "1"), built.manifest_digest);

    let store = Env::new();
    let mut pull = store.berth();
    pull.env("BERTH_REGISTRY_TIMEOUT", "2")
        .env("BERTH_REGISTRY_RETRIES", "8")
        .args(["pull", &name]);
    let (ok, stdout, stderr) = run(pull);
    assert!(ok, "pull failed:\n{stdout}\n{stderr}\n{:?}", proxy.stats());
    assert_eq!(store.image(&name).manifest_digest, built.manifest_digest);
    assert_store_intact(&store.root());
    let stats = proxy.stats();
    assert!(
        stats.faults() >= 6,
        "the proxy injected too few faults: {stats:?}"
    );
    // berth said so each time it retried, pushing or pulling.
    let said = format!("{push_stderr}{stderr}");
    assert!(said.contains("failed, retrying"), "{said}");
}

/// A download cut off mid-blob continues where it stopped, with a Range
/// request, instead of starting over.
#[test]
fn a_broken_download_resumes_with_a_range_request() {
    let Some(reg) = Registry::start() else { return };
    let env = Env::new();
    let ctx = small_context(&env, 8 << 20);
    let direct = format!("{}/app:1", reg.addr());
    env.build_ok(&["-t", &direct, "--push", ctx.to_str().expect("utf-8 path")]);
    let proxy = FaultProxy::start(
        &reg.addr(),
        Faults {
            drop_response_after: 1.0,
            method: Some("GET".into()),
            path_contains: Some("/blobs/".into()),
            max_faults: Some(1),
            ..Faults::default()
        },
    );
    let store = Env::new();
    let (_, stderr) = berth_ok(&store, &["pull", &format!("{}/app:1", proxy.addr())]);
    assert_eq!(proxy.stats().drop_response, 1, "{stderr}");
    assert!(stderr.contains("retrying"), "{stderr}");
    let resumed = reg
        .access_log()
        .iter()
        .filter(|e| e.method == "GET" && e.target.contains("/blobs/") && e.status == 206)
        .count();
    assert!(
        resumed >= 1,
        "no 206 Partial Content in {:?}",
        reg.access_log()
    );
    assert_store_intact(&store.root());
}

/// A pull killed mid-download leaves its partial blob; the next pull (even
/// by another name for the same image) continues it with Range.
#[test]
fn a_killed_pull_is_resumed_by_the_next_one() {
    let Some(reg) = Registry::start() else { return };
    let env = Env::new();
    let ctx = small_context(&env, 8 << 20);
    let direct = format!("{}/app:1", reg.addr());
    env.build_ok(&["-t", &direct, "--push", ctx.to_str().expect("utf-8 path")]);
    let proxy = FaultProxy::start(
        &reg.addr(),
        Faults {
            stall: 1.0,
            stall_for: Duration::from_secs(60),
            method: Some("GET".into()),
            path_contains: Some("/blobs/".into()),
            ..Faults::default()
        },
    );
    let store = Env::new();
    let mut c = store.berth();
    c.args(["pull", &format!("{}/app:1", proxy.addr())])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = c.spawn().expect("spawn pull");
    let ingest = store.root().join("ingest");
    let deadline = Instant::now() + Duration::from_secs(30);
    let partial_started = loop {
        let started = fs::read_dir(&ingest).ok().is_some_and(|d| {
            d.flatten().any(|e| {
                e.file_name().to_string_lossy().ends_with(".partial")
                    && e.metadata().is_ok_and(|m| m.len() > 0)
            })
        });
        if started || Instant::now() > deadline {
            break started;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Give the stalled download time to flush what it received.
    std::thread::sleep(Duration::from_millis(500));
    let _ = child.kill();
    let _ = child.wait();
    assert!(partial_started, "the pull never wrote a partial blob");

    berth_ok(&store, &["pull", &direct]);
    let resumed = reg
        .access_log()
        .iter()
        .filter(|e| e.method == "GET" && e.target.contains("/blobs/") && e.status == 206)
        .count();
    assert!(
        resumed >= 1,
        "no 206 Partial Content in {:?}",
        reg.access_log()
    );
    assert_eq!(
        store.image(&direct).manifest_digest,
        env.image(&direct).manifest_digest
    );
    assert_store_intact(&store.root());
    let leftovers: Vec<_> = fs::read_dir(&ingest)
        .expect("ingest dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "partial files left: {leftovers:?}");
}

/// When faults outlast the retry budget, push and pull fail with a clear
/// line, the store keeps no blob it could not verify, and the registry
/// gets no manifest that points at missing blobs.
#[test]
fn faults_past_the_retry_budget_fail_cleanly() {
    let Some(reg) = Registry::start() else { return };
    let env = Env::new();
    let ctx = small_context(&env, 100_000);
    let direct = format!("{}/app:1", reg.addr());
    env.build_ok(&["-t", &direct, "--push", ctx.to_str().expect("utf-8 path")]);

    let proxy = FaultProxy::start(
        &reg.addr(),
        Faults {
            status_500: 1.0,
            path_contains: Some("/blobs/".into()),
            ..Faults::default()
        },
    );
    let store = Env::new();
    let mut c = store.berth();
    c.env("BERTH_REGISTRY_RETRIES", "2")
        .args(["pull", &format!("{}/app:1", proxy.addr())]);
    let (ok, _, stderr) = run(c);
    assert!(!ok);
    // Progress lines come first; the error is one line, the last.
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("berth:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert_eq!(stderr.trim_end().lines().last(), Some(errors[0]));
    assert!(
        errors[0].contains("giving up after 2 attempts") && errors[0].contains("HTTP 500"),
        "{stderr}"
    );
    assert_store_intact(&store.root());
    let (stdout, _) = berth_ok(&store, &["images", "-q"]);
    assert!(stdout.trim().is_empty(), "no image may be named: {stdout}");

    let other = format!("{}/elsewhere:1", proxy.addr());
    berth_ok(&env, &["tag", &direct, &other]);
    let mut c = env.berth();
    c.env("BERTH_REGISTRY_RETRIES", "2").args(["push", &other]);
    let (ok, _, stderr) = run(c);
    assert!(!ok);
    assert!(stderr.contains("giving up after 2 attempts"), "{stderr}");
    let resp = reg.request("GET", "/v2/elsewhere/manifests/1", &[], &[]);
    assert_eq!(resp.status, 404, "a manifest was pushed without its blobs");
}

/// A blob the registry serves corrupted is refused: the pull fails naming
/// the mismatch, and nothing of it stays in the store.
#[test]
fn a_corrupt_blob_from_the_registry_is_refused_and_not_kept() {
    let Some(reg) = Registry::start() else { return };
    let env = Env::new();
    let ctx = small_context(&env, 100_000);
    let name = format!("{}/app:1", reg.addr());
    env.build_ok(&["-t", &name, "--push", ctx.to_str().expect("utf-8 path")]);
    let built = env.image(&name);
    // Flip bytes of the largest layer in the registry's own storage.
    let layer = built.manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .max_by_key(|l| l["size"].as_u64())
        .expect("a layer")["digest"]
        .as_str()
        .expect("digest")
        .to_owned();
    let hex = layer.trim_start_matches("sha256:");
    let data = find_file(reg.dir(), &format!("{}/{hex}/data", &hex[..2]))
        .expect("blob in registry storage");
    let mut bytes = fs::read(&data).expect("read stored blob");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&data, bytes).expect("corrupt stored blob");

    let store = Env::new();
    let e = berth_fails(&store, &["pull", &name]);
    assert!(
        e.contains("digest mismatch") || e.contains(&layer[..19]),
        "{e}"
    );
    assert!(!support::blob_path(&store.root(), &layer).exists());
    assert_store_intact(&store.root());
    let partials: Vec<_> = fs::read_dir(store.root().join("ingest"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        !partials
            .iter()
            .any(|n| n.to_string_lossy().ends_with(".partial")),
        "a corrupt partial was kept: {partials:?}"
    );
}

fn find_file(dir: &Path, suffix: &str) -> Option<PathBuf> {
    for e in fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if let Some(found) = find_file(&p, suffix) {
                return Some(found);
            }
        } else if p.to_string_lossy().ends_with(suffix) {
            return Some(p);
        }
    }
    None
}

/// With `credsStore` set in config.json, login hands the credentials to
/// the helper (nothing secret lands in config.json), push and pull get
/// them back from it, and logout erases them there.
#[test]
fn credentials_go_through_the_configured_credential_helper() {
    let Some(reg) = Registry::start_with_basic_auth("helper-user", "helper-pass") else {
        return;
    };
    let env = Env::new();
    let bin = env.path("bin");
    fs::create_dir_all(&bin).expect("mkdir bin");
    let helper = bin.join("docker-credential-berthtest");
    // A complete helper: keeps one record in the file $CRED_FILE.
    fs::write(
        &helper,
        "#!/bin/sh\nset -e\ncase \"$1\" in\n  store) cat > \"$CRED_FILE\" ;;\n  get) server=$(cat); if [ -s \"$CRED_FILE\" ]; then cat \"$CRED_FILE\"; else echo 'credentials not found in native keychain'; exit 1; fi ;;\n  erase) server=$(cat); rm -f \"$CRED_FILE\" ;;\n  *) exit 2 ;;\nesac\n",
    )
    .expect("write helper");
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&helper, fs::Permissions::from_mode(0o755)).expect("chmod helper");
    let docker_config = env.path("docker-config");
    fs::create_dir_all(&docker_config).expect("mkdir config");
    fs::write(
        docker_config.join("config.json"),
        r#"{"credsStore": "berthtest"}"#,
    )
    .expect("write config.json");
    let cred_file = env.path("stored-credential.json");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let berth = |args: &[&str], stdin: Option<&str>| {
        let mut c = env.berth();
        c.env("DOCKER_CONFIG", &docker_config)
            .env("PATH", &path)
            .env("CRED_FILE", &cred_file)
            .args(args);
        let (ok, _, stderr) = run_with_stdin(c, stdin.unwrap_or(""));
        (ok, stderr)
    };

    let (ok, stderr) = berth(
        &[
            "login",
            &reg.addr(),
            "-u",
            "helper-user",
            "--password-stdin",
        ],
        Some("helper-pass"),
    );
    assert!(ok, "{stderr}");
    let stored = fs::read_to_string(&cred_file).expect("the helper stored a record");
    assert!(stored.contains("\"Secret\":\"helper-pass\""), "{stored}");
    let config = fs::read_to_string(docker_config.join("config.json")).expect("config.json");
    assert!(
        !config.contains("auths\": {\n    \"") && !config.contains("helper-pass"),
        "{config}"
    );

    let ctx = small_context(&env, 1_000);
    let name = format!("{}/helped:1", reg.addr());
    env.build_ok(&["-t", &name, ctx.to_str().expect("utf-8 path")]);
    let (ok, stderr) = berth(&["push", &name], None);
    assert!(ok, "{stderr}");

    let (ok, _) = berth(&["logout", &reg.addr()], None);
    assert!(ok);
    assert!(!cred_file.exists(), "logout must erase the helper's record");
    let (ok, stderr) = berth(&["push", &name], None);
    assert!(!ok && stderr.contains("unauthorized"), "{stderr}");
}
