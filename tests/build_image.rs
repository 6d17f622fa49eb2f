//! End-to-end image builds without RUN: each test builds with the real
//! `berth` binary into a private store, then reads the image straight from
//! the OCI layout and checks its config and merged filesystem file by file.

mod support;

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};

use support::{Env, make_rootfs};

const NAME: &str = "docker.io/library/t:latest";

#[test]
fn config_follows_the_dockerfile() {
    let env = Env::new();
    let ctx = env.write("ctx", &[("a.txt", "a\n")]);
    fs::write(
        ctx.join("Dockerfile"),
        r#"FROM scratch
ENV A=1 B=two
ENV C=$A-${B} A=changed D=$A
LABEL org.example.name="berth test" other=x
EXPOSE 80 53/udp 8000-8001
VOLUME /data
VOLUME ["/cache"]
USER 1000:1000
WORKDIR /app
WORKDIR sub
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD ["/bin/check"]
SHELL ["/bin/ash", "-eo", "pipefail", "-c"]
ENTRYPOINT echo hi
CMD ["--flag"]
ONBUILD COPY a.txt /onbuild.txt
COPY a.txt .
"#,
    )
    .unwrap();
    env.build_ok(&["-t", "t", ctx.to_str().unwrap()]);
    let img = env.image(NAME);
    let c = &img.config["config"];
    assert_eq!(
        img.env(),
        vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "A=changed",
            "B=two",
            "C=1-two",
            "D=1"
        ]
    );
    assert_eq!(c["Labels"]["org.example.name"], "berth test");
    assert_eq!(c["Labels"]["other"], "x");
    let ports: Vec<_> = c["ExposedPorts"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(ports, vec!["53/udp", "80/tcp", "8000/tcp", "8001/tcp"]);
    let vols: Vec<_> = c["Volumes"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(vols, vec!["/cache", "/data"]);
    assert_eq!(c["User"], "1000:1000");
    assert_eq!(c["WorkingDir"], "/app/sub");
    assert_eq!(c["StopSignal"], "SIGTERM");
    assert_eq!(
        c["Healthcheck"]["Test"],
        serde_json::json!(["CMD", "/bin/check"])
    );
    assert_eq!(c["Healthcheck"]["Interval"], 30_000_000_000u64);
    assert_eq!(c["Healthcheck"]["Retries"], 3);
    assert_eq!(
        c["Shell"],
        serde_json::json!(["/bin/ash", "-eo", "pipefail", "-c"])
    );
    // Shell-form ENTRYPOINT is wrapped in the SHELL in force at that line.
    assert_eq!(
        c["Entrypoint"],
        serde_json::json!(["/bin/ash", "-eo", "pipefail", "-c", "echo hi"])
    );
    assert_eq!(c["Cmd"], serde_json::json!(["--flag"]));
    assert_eq!(c["OnBuild"], serde_json::json!(["COPY a.txt /onbuild.txt"]));
    assert_eq!(img.config["os"], "linux");
    assert!(img.config["architecture"].is_string());

    // History: one entry per instruction but FROM/ARG; layers only for
    // WORKDIR (twice, creating /app and /app/sub) and COPY.
    let history = img.config["history"].as_array().unwrap();
    let layered: Vec<_> = history
        .iter()
        .filter(|h| h["empty_layer"] != true)
        .map(|h| h["created_by"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(layered, vec!["WORKDIR /app", "WORKDIR sub", "COPY a.txt ."]);
    assert_eq!(history.len(), 16);
    assert_eq!(img.layer_digests().len(), 3);
    assert_eq!(
        img.config["rootfs"]["diff_ids"].as_array().unwrap().len(),
        3
    );

    let m = img.merged(&env.path("merged"));
    assert_eq!(m.read("/app/sub/a.txt"), "a\n");
    // WORKDIR creates the directory owned by USER.
    assert_eq!(m.stat("/app/sub"), (0o755, 1000, 1000));
}

#[test]
fn copy_semantics_file_by_file() {
    let env = Env::new();
    let ctx = env.path("ctx");
    make_rootfs(&ctx.join("rootfs"));
    fs::write(
        ctx.join("rootfs/etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1234:1234::/home/app:/bin/sh\n",
    )
    .unwrap();
    fs::write(ctx.join("rootfs/etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
    env.write(
        "ctx",
        &[
            ("src/a.txt", "A"),
            ("src/b.log", "B"),
            ("src/sub/c.txt", "C"),
            ("src/sub/skip.tmp", "T"),
            ("docs/x/y/z.md", "Z"),
            ("ignored.txt", "I"),
            ("script.sh", "#!/bin/sh\n"),
        ],
    );
    symlink("a.txt", ctx.join("src/link")).unwrap();
    fs::write(ctx.join(".dockerignore"), "ignored.txt\n**/*.tmp\n").unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        r#"FROM scratch AS base
COPY rootfs/ /

FROM base
COPY src/ /app/
COPY --chown=app:staff src/a.txt /owned/
COPY --chown=42 src/a.txt /owned42
COPY --chmod=0700 script.sh /bin/
COPY --chmod=u+x,go-r src/b.log /modes/b.log
COPY --parents docs/x/y/z.md /p/
COPY --exclude=*.log src /filtered
COPY src/*.txt /wild/
COPY --link src/sub /linked/
COPY <<EOF /heredoc.txt
hello $HOSTNAME_UNSET
EOF
COPY --from=base /etc/group /from-stage/group
"#,
    )
    .unwrap();
    env.build_ok(&["-t", "t", ctx.to_str().unwrap()]);
    let img = env.image(NAME);
    let m = img.merged(&env.path("merged"));

    assert_eq!(
        fs::read(m.0.join("bin/busybox")).unwrap(),
        fs::read(ctx.join("rootfs/bin/busybox")).unwrap()
    );
    assert_eq!(m.link("/bin/sh"), "busybox");
    assert_eq!(m.read("/app/a.txt"), "A");
    assert_eq!(m.read("/app/sub/c.txt"), "C");
    assert!(!m.exists("/app/sub/skip.tmp"), ".dockerignore **/*.tmp");
    assert_eq!(
        m.link("/app/link"),
        "a.txt",
        "symlinks are copied as symlinks"
    );
    assert_eq!(
        m.stat("/app/a.txt").1,
        0,
        "COPY from the context is owned by root"
    );
    assert_eq!(m.stat("/owned/a.txt"), (0o644, 1234, 50));
    assert_eq!(m.stat("/owned42"), (0o644, 42, 42));
    assert_eq!(m.stat("/bin/script.sh").0, 0o700);
    assert_eq!(m.stat("/modes/b.log").0, 0o700);
    assert_eq!(m.read("/p/docs/x/y/z.md"), "Z");
    assert!(m.exists("/filtered/a.txt"));
    assert!(!m.exists("/filtered/b.log"), "--exclude");
    assert_eq!(m.read("/wild/a.txt"), "A");
    assert!(!m.exists("/wild/b.log"));
    assert!(
        !m.exists("/wild/sub"),
        "wildcard *.txt matches files of src/ only"
    );
    assert_eq!(m.read("/linked/c.txt"), "C");
    assert_eq!(m.read("/heredoc.txt"), "hello \n");
    assert_eq!(m.read("/from-stage/group"), "root:x:0:\nstaff:x:50:\n");
    assert!(!m.exists("/ignored.txt"));

    // A COPY layer holds the copied files and their ancestors, nothing else.
    let layers = img.layer_entries(2);
    let paths: Vec<_> = layers.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(paths, vec!["owned/", "owned/a.txt"]);
}

#[test]
fn add_unpacks_archives_and_whiteouts_apply() {
    use std::io::Write;
    let env = Env::new();
    let ctx = env.write("ctx", &[("keep.txt", "k"), ("gone.txt", "g")]);
    // Archives in every format ADD recognises, each holding one file.
    let tar_bytes = |name: &str, content: &str| {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(content.len() as u64);
        h.set_mode(0o640);
        h.set_uid(7);
        h.set_gid(8);
        h.set_cksum();
        b.append_data(&mut h, name, content.as_bytes()).unwrap();
        b.into_inner().unwrap()
    };
    fs::write(ctx.join("plain.tar"), tar_bytes("plain", "p")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar_bytes("gz", "g")).unwrap();
    fs::write(ctx.join("a.tar.gz"), gz.finish().unwrap()).unwrap();
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    bz.write_all(&tar_bytes("bz", "b")).unwrap();
    fs::write(ctx.join("a.tar.bz2"), bz.finish().unwrap()).unwrap();
    let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
    xz.write_all(&tar_bytes("xz", "x")).unwrap();
    fs::write(ctx.join("a.tar.xz"), xz.finish().unwrap()).unwrap();
    fs::write(
        ctx.join("a.tar.zst"),
        zstd::encode_all(&tar_bytes("zst", "z")[..], 3).unwrap(),
    )
    .unwrap();
    // A tar holding a whiteout: ADD writes it into the layer, where it
    // hides /gone.txt from the layers below.
    fs::write(ctx.join("wh.tar"), tar_bytes(".wh.gone.txt", "")).unwrap();
    fs::write(ctx.join("not-an-archive.gz"), "just text").unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY keep.txt gone.txt /\nADD plain.tar a.tar.gz a.tar.bz2 a.tar.xz a.tar.zst /x/\nADD not-an-archive.gz /raw/\nADD wh.tar /\n",
    )
    .unwrap();
    env.build_ok(&["-t", "t", ctx.to_str().unwrap()]);
    let m = env.image(NAME).merged(&env.path("merged"));
    for (f, c) in [
        ("plain", "p"),
        ("gz", "g"),
        ("bz", "b"),
        ("xz", "x"),
        ("zst", "z"),
    ] {
        assert_eq!(m.read(&format!("/x/{f}")), c, "{f}");
    }
    assert_eq!(
        m.stat("/x/gz"),
        (0o640, 7, 8),
        "archive ownership and modes are kept"
    );
    assert_eq!(m.read("/raw/not-an-archive.gz"), "just text");
    assert_eq!(m.read("/keep.txt"), "k");
    assert!(!m.exists("/gone.txt"), "the whiteout hides it");
    assert!(!m.exists("/.wh.gone.txt"));
}

#[test]
fn multi_stage_target_skips_unneeded_stages() {
    let env = Env::new();
    let ctx = env.write("ctx", &[("a", "a")]);
    fs::write(
        ctx.join("Dockerfile"),
        "ARG BASE=scratch\nFROM $BASE AS one\nCOPY a /one\n\nFROM scratch AS broken\nCOPY missing /\n\nFROM one AS two\nARG TARGETOS\nARG TARGETARCH\nENV PLATFORM=$TARGETOS/$TARGETARCH\nCOPY --from=one /one /two\n",
    )
    .unwrap();
    // The default target is the last stage; `broken` is never needed.
    let log = env.build_ok(&[
        "-t",
        "t",
        "--platform",
        "linux/arm64",
        ctx.to_str().unwrap(),
    ]);
    assert!(!log.contains("COPY missing"), "{log}");
    let img = env.image(NAME);
    assert_eq!(img.config["architecture"], "arm64");
    assert!(img.env().contains(&"PLATFORM=linux/arm64".to_owned()));
    let m = img.merged(&env.path("m"));
    assert_eq!(m.read("/one"), "a");
    assert_eq!(m.read("/two"), "a");

    let (ok, _, err) = env.build(&["--target", "broken", ctx.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("Dockerfile:6: COPY failed: \"/missing\" not found"),
        "{err}"
    );

    let (ok, _, err) = env.build(&["--target", "tow", ctx.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("did you mean two?"), "{err}");
}

#[test]
fn cache_hits_and_one_file_change() {
    let env = Env::new();
    let ctx = env.write("ctx", &[("a/1.txt", "1"), ("b/2.txt", "2")]);
    fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY a /a\nCOPY b /b\nCMD [\"x\"]\n",
    )
    .unwrap();
    let c = ctx.to_str().unwrap();
    let id1 = env.path("id1");
    let id2 = env.path("id2");
    let first = env.build_ok(&["-t", "t", "--iidfile", id1.to_str().unwrap(), c]);
    assert!(!first.contains("CACHED"), "{first}");
    let second = env.build_ok(&["-t", "t", "--iidfile", id2.to_str().unwrap(), c]);
    assert_eq!(second.matches("CACHED").count(), 2, "{second}");
    let id = fs::read_to_string(&id1).unwrap();
    assert_eq!(
        id,
        fs::read_to_string(&id2).unwrap(),
        "a cached rebuild is the same image"
    );
    assert!(id.starts_with("sha256:"));

    // Touching a file without changing it keeps the cache (content, not mtime).
    let t = filetime::FileTime::from_unix_time(1_000_000, 0);
    filetime::set_file_mtime(ctx.join("a/1.txt"), t).unwrap();
    let touched = env.build_ok(&["-t", "t", c]);
    assert_eq!(touched.matches("CACHED").count(), 2, "{touched}");

    // Changing b rebuilds only the second COPY.
    fs::write(ctx.join("b/2.txt"), "changed").unwrap();
    let changed = env.build_ok(&["-t", "t", c]);
    assert_eq!(changed.matches("CACHED").count(), 1, "{changed}");
    let m = env.image(NAME).merged(&env.path("m"));
    assert_eq!(m.read("/b/2.txt"), "changed");
    // COPY lays its layers out in memory and answers later steps from that
    // (or, on a rebuild, from the saved index): no layer was unpacked.
    let unpacked: Vec<String> = fs::read_dir(env.root().join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert_eq!(unpacked, Vec::<String>::new());

    let fresh = env.build_ok(&["-t", "t", "--no-cache", c]);
    assert!(!fresh.contains("CACHED"), "{fresh}");
}

#[test]
fn reproducible_with_source_date_epoch() {
    // Two contexts in different directories, files written on different
    // days, two stores: the same manifest digest.
    let digests: Vec<String> = [0i64, 86_400 * 3]
        .iter()
        .map(|offset| {
            let env = Env::new();
            let dir = format!("some/where{offset}");
            let ctx = env.write(&dir, &[("a.txt", "same"), ("d/b.txt", "bytes")]);
            fs::write(
                ctx.join("Dockerfile"),
                "FROM scratch\nCOPY . /app/\nWORKDIR /srv\nENV X=1\n",
            )
            .unwrap();
            let t = filetime::FileTime::from_unix_time(1_700_000_000 + offset, 0);
            for f in ["a.txt", "d/b.txt", "d", "Dockerfile"] {
                filetime::set_file_mtime(ctx.join(f), t).unwrap();
            }
            let out = env
                .berth()
                .env("SOURCE_DATE_EPOCH", "1600000000")
                .args(["build", "-q", "-t", "t", ctx.to_str().unwrap()])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let img = env.image(NAME);
            assert_eq!(img.config["created"], "2020-09-13T12:26:40Z");
            img.manifest_digest
        })
        .collect();
    assert_eq!(digests[0], digests[1]);
}

#[test]
fn outputs_local_oci_and_quiet() {
    let env = Env::new();
    let ctx = env.write("ctx", &[("f/x.txt", "x")]);
    fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY f /f\n").unwrap();
    let local = env.path("rootfs");
    let oci = env.path("oci");
    let out = env
        .berth()
        .args(["build", "-q", "-t", "app:1"])
        .args(["--output", &format!("type=local,dest={}", local.display())])
        .args(["--output", &format!("type=oci,dest={}", oci.display())])
        .arg(&ctx)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.trim().starts_with("sha256:") && stdout.lines().count() == 1,
        "{stdout:?}"
    );
    assert_eq!(fs::read_to_string(local.join("f/x.txt")).unwrap(), "x");
    assert!(oci.join("oci-layout").is_file());
    assert!(oci.join("index.json").is_file());
}

#[test]
fn bad_input_names_the_line_and_leaves_no_image() {
    let env = Env::new();
    let outside = env.write("outside", &[("secret", "s")]);
    let ctx = env.write("ctx", &[("ok.txt", "ok")]);
    symlink(outside.join("secret"), ctx.join("escape")).unwrap();
    let cases = [
        (
            "FROM scratch\nCOPY ok.txt /\nCOPY nope.txt /\n",
            "Dockerfile:3: COPY failed: \"/nope.txt\" not found",
        ),
        (
            "FROM scratch\nCOPY *.nothing /\n",
            "Dockerfile:2: COPY failed: no source files were specified",
        ),
        (
            "FROM scratch AS build\nCOPY --from=bulid /x /\n",
            "Dockerfile:2: unknown stage \"bulid\" in --from (did you mean \"build\"?",
        ),
        (
            "FROM scratch\nCOPY ../ok.txt /\n",
            "outside the build context",
        ),
        (
            "FROM scratch\nCOPY ok.txt Dockerfile /x\n",
            "must be a directory",
        ),
        (
            "FROM scratch\nRUN true\n",
            "Dockerfile:2: RUN failed: exec \"/bin/sh\": no such file or directory",
        ),
        (
            // Missing images are pulled; port 1 on loopback refuses, so the
            // test never leaves the machine.
            "FROM 127.0.0.1:1/nosuchimage:1\n",
            "Dockerfile:1: pull 127.0.0.1:1/nosuchimage:1: cannot reach registry 127.0.0.1:1: connection refused",
        ),
    ];
    for (dockerfile, expected) in cases {
        fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
        let (ok, _, err) = env.build(&["-t", "bad", ctx.to_str().unwrap()]);
        assert!(!ok, "{dockerfile}");
        assert!(
            err.contains(expected),
            "{dockerfile}: expected {expected:?} in:\n{err}"
        );
    }
    // A symlink in the context that leaves it is followed only within the
    // context, so the copy finds nothing.
    fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY escape /\n").unwrap();
    let (ok, _, err) = env.build(&["-t", "bad", ctx.to_str().unwrap()]);
    assert!(!ok && err.contains("Dockerfile:2: COPY failed"), "{err}");

    // A context file berth may not read (root, without the capabilities
    // that let root read anything): the build names it and the line.
    let locked = ctx.join("locked");
    fs::create_dir(&locked).unwrap();
    fs::write(locked.join("secret"), "s").unwrap();
    fs::set_permissions(locked.join("secret"), fs::Permissions::from_mode(0o000)).unwrap();
    fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY locked /l\n").unwrap();
    let berth = env.berth();
    let out = std::process::Command::new("setpriv")
        .args(["--bounding-set", "-dac_override,-dac_read_search"])
        .arg(berth.get_program())
        .args(["build", "--progress", "plain", "-t", "bad"])
        .arg(&ctx)
        .env("BERTH_ROOT", env.root())
        .output()
        .expect("setpriv (util-linux) runs berth");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("Dockerfile:2: COPY failed: cannot read build context file \"locked/secret\": Permission denied"),
        "{err}"
    );
    fs::remove_dir_all(&locked).unwrap();

    // Nothing named, no temp or staging files left.
    let index = fs::read_to_string(env.root().join("index.json")).unwrap_or_default();
    assert!(!index.contains("bad"), "{index}");
    let ingest = env.root().join("ingest");
    assert_eq!(fs::read_dir(&ingest).map(|d| d.count()).unwrap_or(0), 0);
    let leftovers: Vec<_> = fs::read_dir(env.root().join("snapshots"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    // Snapshots, their boot markers and layer indexes may stay (complete
    // layers are the build cache); work directories may not.
    let work_dir = |n: &String| {
        n.starts_with('.')
            && ![".boot-", ".lock-", ".index-"]
                .iter()
                .any(|p| n.starts_with(p))
    };
    assert!(!leftovers.iter().any(work_dir), "{leftovers:?}");
}

/// Serves `body` for every request on a loopback port, `count` times.
fn serve_once(body: &'static [u8], count: usize) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(count) {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(body);
        }
    });
    port
}

#[test]
fn add_from_a_loopback_url_with_checksum() {
    let env = Env::new();
    let body: &'static [u8] = b"downloaded\n";
    let good = "sha256:30031a9831674dd684c3817399acebc88a116ce5a7a3fbc0cf34d92521a534e6";
    let wrong = "sha256:5e5fa3b5f2d3b76aa60b3a1a6b18c61d1ee9c4bca1d9e6ef7b0c1b0e8d20fa9e";
    let port = serve_once(body, 3);
    let ctx = env.path("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM scratch\nADD --checksum={good} http://127.0.0.1:{port}/files/data.txt /dl/\n"
        ),
    )
    .unwrap();
    let out = env
        .berth()
        .env("NO_PROXY", "*")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .args([
            "build",
            "--progress",
            "plain",
            "-t",
            "t",
            ctx.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = env.image(NAME).merged(&env.path("m"));
    assert_eq!(m.read("/dl/data.txt"), "downloaded\n");
    assert_eq!(m.stat("/dl/data.txt").0, 0o600, "ADD from a URL is 0600");
    let mtime = fs::metadata(m.0.join("dl/data.txt")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(mtime.mtime(), 784_111_777, "mtime from Last-Modified");

    // A wrong --checksum fails the step and names both digests.
    fs::write(
        ctx.join("Dockerfile"),
        format!("FROM scratch\nADD --checksum={wrong} http://127.0.0.1:{port}/data.txt /\n"),
    )
    .unwrap();
    let (ok, _, err) = env.build(&[ctx.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("Dockerfile:2: ADD failed: checksum of http://127.0.0.1"),
        "{err}"
    );
}

#[test]
fn hardlinks_in_the_context_stay_linked() {
    let env = Env::new();
    let ctx = env.write("ctx", &[("d/one", "shared"), ("d/z", "other")]);
    fs::hard_link(ctx.join("d/one"), ctx.join("d/two")).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch AS src\nCOPY d /d\nFROM scratch\nCOPY --from=src /d /copy\n",
    )
    .unwrap();
    env.build_ok(&["-t", "t", ctx.to_str().unwrap()]);
    let image = env.image(NAME);
    let kinds = |layer| -> Vec<(String, u8)> {
        image
            .layer_entries(layer)
            .into_iter()
            .map(|(p, kind, ..)| (p, kind))
            .collect()
    };
    let expected = |dir: &str| {
        vec![
            (format!("{dir}/"), b'5'),
            (format!("{dir}/one"), b'0'),
            (format!("{dir}/two"), b'1'),
            (format!("{dir}/z"), b'0'),
        ]
    };
    // COPY --from an earlier stage's (in-memory) layer keeps them too.
    assert_eq!(kinds(0), expected("copy"));
    let m = image.merged(&env.path("m"));
    assert_eq!(m.read("/copy/two"), "shared");
    env.build_ok(&["-t", "t", "--target", "src", ctx.to_str().unwrap()]);
    let first = env.image(NAME);
    let kinds: Vec<(String, u8)> = first
        .layer_entries(0)
        .into_iter()
        .map(|(p, kind, ..)| (p, kind))
        .collect();
    assert_eq!(kinds, expected("d"));
}
