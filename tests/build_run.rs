//! End-to-end tests of `RUN`: each test builds busybox-based images with the
//! real `berth` binary into a private store, then reads the image straight
//! from the OCI layout and checks the merged filesystem file by file, the
//! layers and the config. The last tests check what a build leaves behind
//! on the host (mounts, processes, staging directories), also when it fails
//! or is cancelled; those run alone (see [`exclusive`]).

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Once, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::{Env, StoredImage, make_rootfs};

const NAME: &str = "docker.io/library/t:latest";
/// `argv[1]` of berth's re-executed sandbox init.
const INIT_ARG: &str = "__berth-sandbox-init";

// ---------------------------------------------------------------------------
// Helpers

/// Tests that check for leftover mounts and processes hold this exclusively;
/// every other test holds it shared, so their builds never run meanwhile.
static HOST_STATE: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    become_subreaper();
    HOST_STATE.read().unwrap_or_else(|e| e.into_inner())
}

fn exclusive() -> RwLockWriteGuard<'static, ()> {
    become_subreaper();
    HOST_STATE.write().unwrap_or_else(|e| e.into_inner())
}

/// Orphans of the processes this test binary starts (a sandbox init whose
/// berth was killed) are re-parented to this process rather than to the
/// system's init, so "left behind" can be checked as "still a descendant of
/// this process", unaffected by other berth processes on the machine.
fn become_subreaper() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: prctl with integer arguments only.
        let ret = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        assert_eq!(ret, 0, "PR_SET_CHILD_SUBREAPER");
    });
}

/// A string no other test or run uses.
fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}-{}-{nanos:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A context `ctx/` holding a busybox `rootfs/` and a Dockerfile that starts
/// `FROM scratch` / `COPY rootfs/ /` followed by `rest`.
fn busybox_ctx(env: &Env, rest: &str) -> PathBuf {
    let ctx = env.path("ctx");
    make_rootfs(&ctx.join("rootfs"));
    write_dockerfile(&ctx, rest);
    ctx
}

fn write_dockerfile(ctx: &Path, rest: &str) {
    fs::write(
        ctx.join("Dockerfile"),
        format!("FROM scratch\nCOPY rootfs/ /\n{rest}"),
    )
    .unwrap();
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The paths of layer `i`, in tar order.
fn layer_paths(img: &StoredImage, i: usize) -> Vec<String> {
    img.layer_entries(i).into_iter().map(|e| e.0).collect()
}

/// Every path of every layer of the image.
fn all_layer_paths(img: &StoredImage) -> Vec<String> {
    (0..img.layer_digests().len())
        .flat_map(|i| layer_paths(img, i))
        .collect()
}

/// Paths of the merged filesystem outside `/bin` (busybox's applets).
fn listing(m: &support::Merged) -> Vec<String> {
    m.list()
        .into_iter()
        .filter(|p| !p.starts_with("/bin/"))
        .collect()
}

/// The step titles (`[stage-0 3/4] RUN …`) a plain-progress log reports as
/// CACHED.
fn cached_steps(log: &str) -> Vec<String> {
    let mut titles = std::collections::HashMap::new();
    let mut cached = Vec::new();
    for line in log.lines() {
        let Some((id, rest)) = line.split_once(' ') else {
            continue;
        };
        if !id.starts_with('#') {
            continue;
        }
        if rest.starts_with('[') {
            titles.insert(id.to_owned(), rest.to_owned());
        } else if rest == "CACHED" {
            cached.push(titles.get(id).cloned().unwrap_or_default());
        }
    }
    cached
}

fn history(img: &StoredImage) -> Vec<(String, bool)> {
    img.config["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["created_by"].as_str().unwrap_or_default().to_owned(),
                h["empty_layer"] == true,
            )
        })
        .collect()
}

/// Whether the store names an image `name`.
fn has_image(env: &Env, name: &str) -> bool {
    let Ok(bytes) = fs::read(env.root().join("index.json")) else {
        return false;
    };
    let index: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    index["manifests"].as_array().is_some_and(|a| {
        a.iter()
            .any(|m| m["annotations"]["org.opencontainers.image.ref.name"] == name)
    })
}

/// Interface names in a `/proc/net/dev` listing.
fn interfaces(dev: &str) -> BTreeSet<String> {
    dev.lines()
        .skip(2)
        .filter_map(|l| l.split_once(':'))
        .map(|(name, _)| name.trim().to_owned())
        .collect()
}

fn mountinfo_lines() -> usize {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count()
}

/// Entries under the store's snapshots directory that are staging
/// directories of a build (`.stage-…`): a finished build leaves none.
fn staging_dirs(env: &Env) -> Vec<String> {
    let Ok(dir) = fs::read_dir(env.root().join("snapshots")) else {
        return Vec::new();
    };
    dir.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".stage-"))
        .collect()
}

/// A process: pid, state, cmdline (NULs as spaces).
struct Proc {
    pid: i32,
    ppid: i32,
    state: char,
    cmdline: String,
}

fn processes() -> Vec<Proc> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap() {
        let e = e.unwrap();
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(e.path().join("stat")) else {
            continue; // gone meanwhile
        };
        // `pid (comm) S ppid …`; comm may hold spaces and parentheses.
        let Some((_, after)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = after.split_whitespace();
        let state = fields.next().and_then(|f| f.chars().next()).unwrap_or('?');
        let ppid = fields.next().and_then(|f| f.parse().ok()).unwrap_or(0);
        let cmdline = fs::read(e.path().join("cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        out.push(Proc {
            pid,
            ppid,
            state,
            cmdline,
        });
    }
    out
}

/// Live processes whose cmdline contains `needle`, anywhere on the machine.
fn processes_with(needle: &str) -> Vec<String> {
    let me = std::process::id() as i32;
    processes()
        .into_iter()
        .filter(|p| p.pid != me && !matches!(p.state, 'Z' | 'X') && p.cmdline.contains(needle))
        .map(|p| format!("{} {}", p.pid, p.cmdline))
        .collect()
}

/// Live descendants of this test process (it is a subreaper, so orphans
/// stay descendants). Only meaningful under [`exclusive`], when no other
/// test has a child running.
fn live_descendants() -> Vec<String> {
    let me = std::process::id() as i32;
    let procs = processes();
    let parent: std::collections::HashMap<i32, i32> =
        procs.iter().map(|p| (p.pid, p.ppid)).collect();
    procs
        .iter()
        .filter(|p| p.pid != me && !matches!(p.state, 'Z' | 'X'))
        .filter(|p| {
            let mut at = p.ppid;
            for _ in 0..64 {
                if at == me {
                    return true;
                }
                match parent.get(&at) {
                    Some(&up) if up != at => at = up,
                    _ => return false,
                }
            }
            false
        })
        .map(|p| format!("{} {}", p.pid, p.cmdline))
        .collect()
}

/// Processes this test binary started that are still alive: berth, its
/// sandbox inits (`berth __berth-sandbox-init`) and anything they ran.
/// Every live descendant counts (a stricter check than matching the berth
/// binary's path), and other berth processes on the machine do not.
/// Call only once every `Child` of the test was waited for: it reaps the
/// zombies re-parented to this process first.
fn leftover_processes() -> Vec<String> {
    let me = std::process::id() as i32;
    for p in processes() {
        if p.ppid == me && p.state == 'Z' {
            // SAFETY: reaps one zombie child by pid; the test's own Child
            // handles were all waited for already.
            unsafe { libc::waitpid(p.pid, std::ptr::null_mut(), libc::WNOHANG) };
        }
    }
    live_descendants()
}

/// Polls `f` until it returns true or `limit` passes.
fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A berth process started by a test: killed (with whatever sandbox
/// processes carry `marker`) when the test ends, passed or failed.
struct Spawned {
    child: Child,
    marker: String,
    log_path: PathBuf,
}

impl Spawned {
    /// Starts `berth build -t t CTX` in the background, its log in a file.
    fn build(env: &Env, ctx: &Path, marker: String) -> Spawned {
        let log_path = env.path("berth.log");
        let child = env
            .berth()
            .args(["build", "--progress", "plain", "-t", "t"])
            .arg(ctx)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap();
        Spawned {
            child,
            marker,
            log_path,
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own, not yet reaped, child.
        let ret = unsafe { libc::kill(self.child.id() as i32, sig) };
        assert_eq!(ret, 0, "kill berth");
    }

    /// Waits at most `limit` for berth to exit.
    fn wait(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let me = std::process::id() as i32;
        for p in processes() {
            if p.pid != me && p.cmdline.contains(&self.marker) {
                // SAFETY: kill(2) of a process of this test's build (its
                // command line holds the test's unique marker).
                unsafe { libc::kill(p.pid, libc::SIGKILL) };
            }
        }
    }
}

/// Every file under `dir`, recursively (regular files only).
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let p = e.unwrap().path();
        let Ok(m) = fs::symlink_metadata(&p) else {
            continue;
        };
        if m.is_dir() {
            files_under(&p, out);
        } else if m.is_file() {
            out.push(p);
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Files under `root` whose bytes, or whose gzip/zstd-decompressed bytes,
/// contain `needle`.
fn files_containing(root: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    files_under(root, &mut files);
    assert!(!files.is_empty(), "no files under {}", root.display());
    let mut found = Vec::new();
    for f in files {
        let raw = fs::read(&f).unwrap();
        let mut hit = contains(&raw, needle);
        if !hit && raw.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(&raw[..])
                .read_to_end(&mut out)
                .unwrap_or_else(|e| panic!("gunzip {}: {e}", f.display()));
            hit = contains(&out, needle);
        }
        if !hit && raw.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            let out = zstd::decode_all(&raw[..])
                .unwrap_or_else(|e| panic!("unzstd {}: {e}", f.display()));
            hit = contains(&out, needle);
        }
        if hit {
            found.push(f);
        }
    }
    found
}

// ---------------------------------------------------------------------------
// 1–2. What a RUN changes, and a RUN that changes nothing

#[test]
fn run_changes_become_a_layer_with_whiteouts() {
    let _g = shared();
    let env = Env::new();
    let ctx = busybox_ctx(
        &env,
        r#"RUN mkdir -p /d /gone/sub /dir2file /keep \
 && echo old > /changed && echo doomed > /deleted && echo k > /keep/k \
 && touch /d/old1 /d/old2 /gone/sub/f /dir2file/f \
 && echo f > /file2dir && echo m > /x && echo y > /y
RUN echo new > /created && echo changed > /changed && rm /deleted && rm -rf /gone \
 && rm -rf /dir2file && echo file > /dir2file \
 && rm /file2dir && mkdir /file2dir && echo in > /file2dir/in \
 && rm -rf /d && mkdir /d && touch /d/new \
 && chmod 700 /x && chown 5:5 /y \
 && ln /created /hard \
 && echo extra:x:7:7::/:/bin/sh >> /etc/passwd
"#,
    );
    env.build_ok(&["-t", "t", s(&ctx)]);
    let img = env.image(NAME);
    assert_eq!(img.layer_digests().len(), 3);
    let h = history(&img);
    assert_eq!(h.len(), 3, "{h:?}");
    assert_eq!(h[0], ("COPY rootfs/ /".to_owned(), false));
    assert!(
        h[1].0.starts_with("RUN mkdir -p /d /gone/sub") && !h[1].1,
        "{h:?}"
    );
    assert!(
        h[2].0.starts_with("RUN echo new > /created") && !h[2].1,
        "{h:?}"
    );
    assert_eq!(
        img.config["rootfs"]["diff_ids"].as_array().unwrap().len(),
        3
    );

    let m = img.merged(&env.path("merged"));
    assert_eq!(
        listing(&m),
        vec![
            "/bin",
            "/changed",
            "/created",
            "/d",
            "/d/new",
            "/dir2file",
            "/etc",
            "/etc/group",
            "/etc/passwd",
            "/file2dir",
            "/file2dir/in",
            "/hard",
            "/keep",
            "/keep/k",
            "/root",
            "/tmp",
            "/x",
            "/y",
        ],
        "no mount point, /dev, /proc or hosts file of the sandbox is left"
    );
    assert_eq!(m.read("/created"), "new\n");
    assert_eq!(m.read("/changed"), "changed\n");
    assert_eq!(m.read("/keep/k"), "k\n");
    assert_eq!(m.read("/dir2file"), "file\n");
    assert!(
        fs::symlink_metadata(m.0.join("dir2file"))
            .unwrap()
            .is_file()
    );
    assert_eq!(m.read("/file2dir/in"), "in\n");
    assert_eq!(m.read("/x"), "m\n", "a chmod keeps the content");
    assert_eq!(m.stat("/x"), (0o700, 0, 0));
    assert_eq!(m.read("/y"), "y\n", "a chown keeps the content");
    assert_eq!(m.stat("/y"), (0o644, 5, 5));
    assert_eq!(m.read("/hard"), "new\n");
    assert_eq!(
        fs::metadata(m.0.join("hard")).unwrap().ino(),
        fs::metadata(m.0.join("created")).unwrap().ino(),
        "the hardlink survives"
    );
    assert!(m.read("/etc/passwd").ends_with("extra:x:7:7::/:/bin/sh\n"));
    assert!(m.read("/etc/passwd").starts_with("root:x:0:0:"));
    assert_eq!(m.stat("/tmp"), (0o1777, 0, 0));

    // The layer of the second RUN holds exactly what it changed.
    let entries = img.layer_entries(2);
    let find = |p: &str| {
        entries
            .iter()
            .find(|e| e.0 == p)
            .unwrap_or_else(|| panic!("no {p} in {entries:?}"))
    };
    let mut paths: BTreeSet<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    // A directory that replaces a file may be marked opaque or not: there
    // is nothing below it to hide either way.
    paths.remove("file2dir/.wh..wh..opq");
    assert_eq!(
        paths,
        BTreeSet::from([
            ".wh.deleted",
            ".wh.gone",
            "changed",
            "created",
            "d/",
            "d/.wh..wh..opq",
            "d/new",
            "dir2file",
            "etc/",
            "etc/passwd",
            "file2dir/",
            "file2dir/in",
            "hard",
            "x",
            "y",
        ])
    );
    assert_eq!(find("x").2 & 0o7777, 0o700);
    assert_eq!((find("y").3, find("y").4), (5, 5));
    assert_eq!(find("dir2file").1, b'0');
    assert_eq!(find("file2dir/").1, b'5');
    // One of created/hard is the file, the other a hardlink to it.
    let mut kinds = [find("created").1, find("hard").1];
    kinds.sort();
    assert_eq!(kinds, [b'0', b'1'], "{entries:?}");
}

/// Type, mode, owner, mtime (not for directories, whose mtime the
/// test-side unpacker does not keep) and content of every path below `root`.
fn tree_state(root: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    files_and_dirs(root, &mut files);
    files.sort();
    files
        .iter()
        .map(|p| {
            let m = fs::symlink_metadata(p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let what = if m.is_dir() {
                "dir".to_owned()
            } else if m.file_type().is_symlink() {
                format!("-> {} @{}", fs::read_link(p).unwrap().display(), m.mtime())
            } else {
                format!("{:?} @{}", fs::read(p).unwrap(), m.mtime())
            };
            (
                rel,
                format!("{:o} {}:{} {what}", m.mode(), m.uid(), m.gid()),
            )
        })
        .collect()
}

fn files_and_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        out.push(p.clone());
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            files_and_dirs(&p, out);
        }
    }
}

#[test]
fn copy_snapshots_are_made_as_the_layer_is_written_and_share_unchanged_files() {
    let _g = shared();
    let env = Env::new();
    let ctx = busybox_ctx(
        &env,
        "COPY src/ /app/src/\nRUN cat /app/src/a/f0 /app/src/b/f1 > /out\n",
    );
    for i in 0..20 {
        let dir = if i % 2 == 0 { "a" } else { "b" };
        let path = ctx.join(format!("src/{dir}/f{i}"));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, format!("file {i}\n")).unwrap();
    }
    std::os::unix::fs::symlink("f0", ctx.join("src/a/link")).unwrap();
    let snapshot = |img: &StoredImage| env.root().join("snapshots").join(img.diff_id_hex(1));

    env.build_ok(&["-t", "t", s(&ctx)]);
    let first = env.image(NAME);
    assert_eq!(first.layer_digests().len(), 3);
    let m = first.merged(&env.path("merged1"));
    assert_eq!(m.read("/out"), "file 0\nfile 1\n");
    let s1 = snapshot(&first);
    // Made while the layer was written: the RUN found it and did not need
    // to unpack it (which takes the layer's lock file).
    let lock = env
        .root()
        .join("snapshots")
        .join(format!(".lock-{}", first.diff_id_hex(1)));
    assert!(s1.is_dir() && !lock.exists());
    first.layer_into(1, &env.path("expected1"));
    assert_eq!(tree_state(&s1), tree_state(&env.path("expected1")));

    // One file changes: the new layer's snapshot links the others.
    fs::write(ctx.join("src/a/f0"), "changed\n").unwrap();
    env.build_ok(&["-t", "t", s(&ctx)]);
    let second = env.image(NAME);
    let m = second.merged(&env.path("merged2"));
    assert_eq!(m.read("/out"), "changed\nfile 1\n");
    let s2 = snapshot(&second);
    assert_ne!(s1, s2);
    second.layer_into(1, &env.path("expected2"));
    assert_eq!(tree_state(&s2), tree_state(&env.path("expected2")));
    let ino = |root: &Path, rel: &str| fs::symlink_metadata(root.join(rel)).unwrap().ino();
    assert_eq!(ino(&s1, "app/src/b/f1"), ino(&s2, "app/src/b/f1"));
    assert_ne!(ino(&s1, "app/src/a/f0"), ino(&s2, "app/src/a/f0"));
    // The first snapshot is as it was.
    assert_eq!(tree_state(&s1), tree_state(&env.path("expected1")));
}

#[test]
fn run_that_changes_nothing_makes_no_layer() {
    let _g = shared();
    let env = Env::new();
    let ctx = busybox_ctx(
        &env,
        "RUN true\nRUN cat /etc/passwd > /dev/null && ls / > /dev/null\nRUN --mount=type=tmpfs,target=/new/mnt true\n",
    );
    env.build_ok(&["-t", "t", s(&ctx)]);
    let img = env.image(NAME);
    assert_eq!(img.layer_digests().len(), 1, "only the COPY layer");
    assert_eq!(
        history(&img),
        vec![
            ("COPY rootfs/ /".to_owned(), false),
            ("RUN true".to_owned(), true),
            (
                "RUN cat /etc/passwd > /dev/null && ls / > /dev/null".to_owned(),
                true
            ),
            (
                "RUN --mount=type=tmpfs,target=/new/mnt true".to_owned(),
                true
            ),
        ]
    );
    assert_eq!(
        img.config["rootfs"]["diff_ids"].as_array().unwrap().len(),
        1
    );
}

// ---------------------------------------------------------------------------
// 3. What the command runs as, where, with what

#[test]
fn user_workdir_shell_and_forms() {
    let _g = shared();
    let env = Env::new();
    let ctx = busybox_ctx(
        &env,
        r#"WORKDIR /a
WORKDIR b
RUN pwd > /pwd
USER nobody
RUN touch /tmp/by-nobody && id -u > /tmp/id-nobody && id -g >> /tmp/id-nobody
USER 1000:1000
RUN touch /tmp/by-1000 && id -u > /tmp/id-1000 && id -g >> /tmp/id-1000
USER root
RUN false; echo survived > /no-e
RUN echo "$0" > /shell-form
RUN ["/bin/sh", "-c", "echo $0 > /exec-form", "arg0"]
RUN ["/bin/sh", "-c", "pwd > /exec-pwd"]
SHELL ["/bin/sh", "-c", "echo \"$0\" > /shell-last-arg"]
RUN the-command
SHELL ["/bin/busybox", "sh", "-c"]
RUN echo "$0" > /busybox-shell
"#,
    );
    env.build_ok(&["-t", "t", s(&ctx)]);
    let img = env.image(NAME);
    let m = img.merged(&env.path("merged"));
    assert_eq!(m.read("/pwd"), "/a/b\n");
    assert_eq!(m.read("/tmp/id-nobody"), "65534\n65534\n");
    assert_eq!(m.stat("/tmp/by-nobody"), (0o644, 65534, 65534));
    assert_eq!(m.stat("/tmp/id-nobody").1, 65534);
    assert_eq!(m.read("/tmp/id-1000"), "1000\n1000\n");
    assert_eq!(m.stat("/tmp/by-1000"), (0o644, 1000, 1000));
    assert_eq!(m.read("/no-e"), "survived\n", "sh -c without -e goes on");
    assert_eq!(m.read("/shell-form"), "/bin/sh\n");
    assert_eq!(m.read("/exec-form"), "arg0\n");
    assert_eq!(m.read("/exec-pwd"), "/a/b\n", "exec form runs in WORKDIR");
    assert_eq!(
        m.read("/shell-last-arg"),
        "the-command\n",
        "the command is SHELL's last argument"
    );
    assert_eq!(
        m.read("/busybox-shell"),
        "sh\n",
        "busybox runs its sh applet with $0 = sh"
    );
    let c = &img.config["config"];
    assert_eq!(c["User"], "root");
    assert_eq!(c["WorkingDir"], "/a/b");
    assert_eq!(c["Shell"], serde_json::json!(["/bin/busybox", "sh", "-c"]));

    // SHELL with -e: a failing command fails the step.
    write_dockerfile(
        &ctx,
        "SHELL [\"/bin/sh\", \"-e\", \"-c\"]\nRUN false; echo survived > /with-e\n",
    );
    let (ok, _, err) = env.build(&["-t", "e", s(&ctx)]);
    assert!(!ok, "{err}");
    assert!(
        err.contains("Dockerfile:4: RUN step") && err.contains("failed (exit code 1)"),
        "{err}"
    );
    assert!(!has_image(&env, "docker.io/library/e:latest"));
}

#[test]
fn env_args_and_heredocs() {
    let _g = shared();
    let env = Env::new();
    let ctx = busybox_ctx(
        &env,
        r#"ARG A=1
ENV B=$A
RUN echo "A=$A B=$B C=$C" > /args1
ARG C=late
RUN echo "C=$C" > /args2
ARG D=argval
ENV D=envval
RUN echo "D=$D" > /args3
RUN <<EOF
echo one > /hd1
echo "two $B" >> /hd1
EOF
RUN <<EOF
#!/bin/sh
echo "script $A" > /hd2
EOF
RUN <<EOF
#!/bin/awk -f
BEGIN { print "awk ran", ENVIRON["B"] > "/hd3" }
EOF
"#,
    );
    env.build_ok(&["-t", "t", "--build-arg", "A=2", s(&ctx)]);
    let img = env.image(NAME);
    let m = img.merged(&env.path("merged"));
    assert_eq!(m.read("/args1"), "A=2 B=2 C=\n", "ARG C comes later");
    assert_eq!(m.read("/args2"), "C=late\n");
    assert_eq!(m.read("/args3"), "D=envval\n", "ENV wins over ARG");
    assert_eq!(m.read("/hd1"), "one\ntwo 2\n");
    // A `#!` heredoc is a script run by its interpreter: awk here, which
    // the shell could not have run.
    assert_eq!(m.read("/hd2"), "script 2\n");
    assert_eq!(m.read("/hd3"), "awk ran 2\n");
    assert!(!listing(&m).iter().any(|p| p.starts_with("/dev")));
    assert_eq!(
        img.env(),
        vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "B=2",
            "D=envval"
        ],
        "ARGs stay out of the config"
    );
}

// ---------------------------------------------------------------------------
// 4. Cache

#[test]
fn cache_reuse_build_args_and_cache_mounts() {
    let _g = shared();
    let env = Env::new();
    let ctx = busybox_ctx(
        &env,
        r#"ARG V=1
RUN echo "v=$V" > /v
RUN echo constant > /c
RUN --mount=type=cache,target=/cache echo run >> /cache/log && cp /cache/log /seen
"#,
    );
    let c = s(&ctx);
    let first = env.build_ok(&["-t", "t", c]);
    assert!(cached_steps(&first).is_empty(), "{first}");
    let id1 = env.image(NAME).manifest_digest;
    assert_eq!(
        env.image(NAME).merged(&env.path("m1")).read("/seen"),
        "run\n"
    );

    let second = env.build_ok(&["-t", "t", c]);
    let cached = cached_steps(&second);
    assert_eq!(cached.len(), 4, "{second}");
    assert_eq!(
        cached.iter().filter(|t| t.contains("] RUN ")).count(),
        3,
        "{second}"
    );
    assert_eq!(env.image(NAME).manifest_digest, id1, "same image");

    // A build arg the RUN sees: it runs again (and so do the steps on it).
    let third = env.build_ok(&["-t", "t", "--build-arg", "V=2", c]);
    let cached = cached_steps(&third);
    assert!(!cached.iter().any(|t| t.contains("RUN")), "{third}");
    let m = env.image(NAME).merged(&env.path("m3"));
    assert_eq!(m.read("/v"), "v=2\n");
    assert_eq!(m.read("/seen"), "run\nrun\n", "the cache mount persisted");

    // --no-cache reruns everything, and the cache mount is still there.
    let fourth = env.build_ok(&["-t", "t", "--no-cache", c]);
    assert!(cached_steps(&fourth).is_empty(), "{fourth}");
    let img = env.image(NAME);
    let m = img.merged(&env.path("m4"));
    assert_eq!(m.read("/v"), "v=1\n");
    assert_eq!(m.read("/seen"), "run\nrun\nrun\n");
    assert!(!m.exists("/cache"));
    let paths = all_layer_paths(&img);
    assert!(
        !paths
            .iter()
            .any(|p| p == "cache" || p.starts_with("cache/")),
        "the cache mount entered a layer: {paths:?}"
    );
}

// ---------------------------------------------------------------------------
// 5. Secrets

#[test]
fn secrets_are_readable_from_a_file_or_the_environment() {
    let _g = shared();
    let env = Env::new();
    let file_secret = unique("file-secret");
    let env_secret = unique("env-secret");
    let secret_file = env.path("tok.txt");
    fs::write(&secret_file, &file_secret).unwrap();
    let ctx = busybox_ctx(
        &env,
        r#"RUN --mount=type=secret,id=tok cat /run/secrets/tok > /copied
RUN --mount=type=secret,id=etok,target=/etc/etok.conf cat /etc/etok.conf > /copied-env
RUN --mount=type=secret,id=tok,mode=0444,uid=65534 stat -c '%a %u' /run/secrets/tok > /secret-stat
RUN --mount=type=secret,id=absent cat /run/secrets/absent > /absent 2>&1 || echo none > /absent
"#,
    );
    let out = env
        .berth()
        .args(["build", "--progress", "plain", "-t", "t"])
        .arg("--secret")
        .arg(format!("id=tok,src={}", s(&secret_file)))
        .args(["--secret", "id=etok,env=BERTH_TEST_SECRET_VAR"])
        .env("BERTH_TEST_SECRET_VAR", &env_secret)
        .arg(&ctx)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let img = env.image(NAME);
    let m = img.merged(&env.path("merged"));
    assert_eq!(m.read("/copied"), file_secret);
    assert_eq!(m.read("/copied-env"), env_secret);
    assert_eq!(m.read("/secret-stat"), "444 65534\n");
    assert_eq!(m.read("/absent"), "none\n", "an optional secret not given");
    assert!(!m.exists("/run"));
    assert!(!m.exists("/etc/etok.conf"));
    assert_eq!(
        layer_paths(&img, 2),
        vec!["copied-env"],
        "the secret's mount point leaves nothing, not even its parent"
    );
    let paths = all_layer_paths(&img);
    assert!(
        !paths
            .iter()
            .any(|p| p.starts_with("run") || p.contains("etok")),
        "{paths:?}"
    );

    // A required secret that was not given fails the build, naming it.
    write_dockerfile(
        &ctx,
        "RUN --mount=type=secret,id=missing,required=true true\n",
    );
    let (ok, _, err) = env.build(&["-t", "r", s(&ctx)]);
    assert!(!ok);
    assert!(
        err.contains("Dockerfile:3:") && err.contains("secret \"missing\" is required"),
        "{err}"
    );
    assert!(!has_image(&env, "docker.io/library/r:latest"));
}

#[test]
fn secrets_never_reach_the_store() {
    let _g = shared();
    let env = Env::new();
    let secret = unique("never-stored-secret");
    let secret_file = env.path("tok.txt");
    fs::write(&secret_file, &secret).unwrap();
    let ctx = busybox_ctx(
        &env,
        "RUN --mount=type=secret,id=tok test -f /run/secrets/tok && test -s /run/secrets/tok && echo ran > /ran\n",
    );
    let secret_arg = format!("id=tok,src={}", s(&secret_file));
    let log = env.build_ok(&["-t", "t", "--secret", &secret_arg, s(&ctx)]);
    assert!(!log.contains(&secret), "{log}");
    // Rebuild without the cache: two runs, two cache records.
    env.build_ok(&["-t", "t", "--no-cache", "--secret", &secret_arg, s(&ctx)]);
    let img = env.image(NAME);
    let m = img.merged(&env.path("merged"));
    assert_eq!(m.read("/ran"), "ran\n", "the secret was there");
    assert!(!m.exists("/run"));
    let paths = all_layer_paths(&img);
    assert!(
        !paths.iter().any(|p| p.starts_with("run")),
        "/run/secrets entered a layer: {paths:?}"
    );
    let found = files_containing(&env.root(), secret.as_bytes());
    assert!(found.is_empty(), "the secret is stored in {found:?}");
    // The whole store was searched (the marker is findable when present).
    assert!(!files_containing(&env.root(), b"test -s /run/secrets/tok").is_empty());

    let out = env.berth().args(["inspect", "t"]).output().unwrap();
    assert!(out.status.success());
    let inspect = String::from_utf8_lossy(&out.stdout);
    assert!(inspect.contains("/run/secrets/tok"), "{inspect}");
    assert!(!inspect.contains(&secret), "{inspect}");
}

// ---------------------------------------------------------------------------
// 6. Bind and tmpfs mounts

#[test]
fn bind_and_tmpfs_mounts() {
    let _g = shared();
    let env = Env::new();
    let ctx = busybox_ctx(
        &env,
        r#"
FROM scratch AS other
COPY rootfs/ /
RUN mkdir /dir && echo fromstage > /dir/f && echo hidden > /not-mounted
RUN echo g > /dir/g

FROM scratch
COPY rootfs/ /
COPY --from=other /not-mounted /copied-from-other
RUN --mount=type=bind,target=/ctx cat /ctx/data/hello.txt > /seen-ctx \
 && ls /ctx > /ls-ctx; touch /ctx/new 2>/ro-err; echo $? > /ro-status
RUN --mount=type=bind,source=data,target=/m2 cat /m2/hello.txt > /seen-src
RUN --mount=type=bind,source=data,target=/m3,rw echo changed > /m3/hello.txt && cat /m3/hello.txt > /rw-seen
RUN --mount=type=bind,from=other,source=/dir,target=/m cat /m/f > /seen-stage && ls /m > /ls-stage
RUN --mount=type=tmpfs,target=/t echo x > /t/file && grep ' /t tmpfs ' /proc/mounts > /t-mounted
"#,
    );
    fs::create_dir_all(ctx.join("data")).unwrap();
    fs::write(ctx.join("data/hello.txt"), "hello\n").unwrap();
    // (The helper's `FROM scratch` / `COPY rootfs/ /` stage is unused.) The
    // final stage also COPYs from `other`; a stage that only a mount reads
    // is `bind_from_a_stage_only_a_mount_reads`.
    env.build_ok(&["-t", "t", s(&ctx)]);
    let img = env.image(NAME);
    let m = img.merged(&env.path("merged"));
    assert_eq!(m.read("/seen-ctx"), "hello\n");
    let ls: BTreeSet<String> = m.read("/ls-ctx").lines().map(str::to_owned).collect();
    assert!(
        ls.contains("Dockerfile") && ls.contains("data") && ls.contains("rootfs"),
        "{ls:?}"
    );
    assert_ne!(m.read("/ro-status"), "0\n", "the context is read-only");
    assert!(m.read("/ro-err").contains("Read-only file system"));
    assert!(!ctx.join("new").exists());
    assert_eq!(m.read("/seen-src"), "hello\n");
    assert_eq!(m.read("/rw-seen"), "changed\n", "rw: writable");
    assert_eq!(
        fs::read_to_string(ctx.join("data/hello.txt")).unwrap(),
        "hello\n",
        "rw writes never reach the context"
    );
    assert_eq!(m.read("/seen-stage"), "fromstage\n");
    assert_eq!(
        m.read("/ls-stage"),
        "f\ng\n",
        "the source directory of every layer of the stage, nothing else"
    );
    assert!(!m.exists("/not-mounted"));
    assert_eq!(m.read("/copied-from-other"), "hidden\n");
    assert!(m.read("/t-mounted").contains("tmpfs"));
    for mount_point in ["/ctx", "/m", "/m2", "/m3", "/t", "/dir"] {
        assert!(!m.exists(mount_point), "{mount_point} is in the image");
    }
    let paths = all_layer_paths(&img);
    for p in &paths {
        for prefix in ["ctx", "m/", "m2", "m3", "t/"] {
            assert!(!p.starts_with(prefix), "{p} in a layer: {paths:?}");
        }
    }
    // COPY, COPY and 5 RUNs, each with a layer.
    assert_eq!(img.layer_digests().len(), 7);
}

/// A stage only a `--mount=…,from=` reads must still be built. Spawned with
/// a time limit: when the stage graph missed that dependency, berth waited
/// for the never-scheduled stage forever (and ignored SIGTERM).
#[test]
fn bind_from_a_stage_only_a_mount_reads() {
    let _g = shared();
    let env = Env::new();
    let marker = unique("bind-from");
    let ctx = busybox_ctx(
        &env,
        &format!(
            r#"
FROM scratch AS other
COPY rootfs/ /
RUN mkdir /dir && echo fromstage > /dir/f

FROM scratch
COPY rootfs/ /
RUN --mount=type=bind,from=other,source=/dir,target=/m cat /m/f > /seen-stage # {marker}
"#
        ),
    );
    let mut berth = Spawned::build(&env, &ctx, marker);
    let status = berth
        .wait(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("berth hangs: {}", berth.log()));
    assert!(status.success(), "{}", berth.log());
    let m = env.image(NAME).merged(&env.path("merged"));
    assert_eq!(m.read("/seen-stage"), "fromstage\n");
    assert!(!m.exists("/m"));
}

#[test]
fn bind_mount_of_the_context_hides_dockerignored_files() {
    let _g = shared();
    let env = Env::new();
    let ctx = busybox_ctx(
        &env,
        "RUN --mount=type=bind,target=/ctx ls -a /ctx /ctx/sub > /ls-ctx\n",
    );
    env.write(
        "ctx",
        &[
            ("kept.txt", "k"),
            (".env", "TOKEN=ignored"),
            ("sub/kept.txt", "k"),
            ("sub/debug.log", "ignored"),
        ],
    );
    fs::write(ctx.join(".dockerignore"), ".env\n**/*.log\n").unwrap();
    env.build_ok(&["-t", "t", s(&ctx)]);
    let m = env.image(NAME).merged(&env.path("merged"));
    let ls = m.read("/ls-ctx");
    assert!(ls.contains("kept.txt") && ls.contains("Dockerfile"), "{ls}");
    assert!(!ls.contains(".env"), "{ls}");
    assert!(!ls.contains("debug.log"), "{ls}");
    // Ignored files are not part of the mount's cache key either; visible
    // ones are.
    let run_cached = |out: &str| {
        let step = out
            .lines()
            .find(|l| l.contains("RUN --mount=type=bind"))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or("#?")
            .to_owned();
        out.lines().any(|l| l == format!("{step} CACHED"))
    };
    fs::write(ctx.join("sub/debug.log"), "changed").unwrap();
    let again = env.build_ok(&["-t", "t", s(&ctx)]);
    assert!(run_cached(&again), "{again}");
    fs::write(ctx.join("sub/kept.txt"), "changed").unwrap();
    let third = env.build_ok(&["-t", "t", s(&ctx)]);
    assert!(!run_cached(&third), "{third}");
}

// ---------------------------------------------------------------------------
// 7–8. Network and security modes

#[test]
fn network_none_has_only_loopback() {
    let _g = shared();
    let env = Env::new();
    let ctx = busybox_ctx(
        &env,
        "RUN --network=none cat /proc/net/dev > /net-none\nRUN cat /proc/net/dev > /net-default\nRUN --network=host cat /proc/net/dev > /net-host\n",
    );
    let host = interfaces(&fs::read_to_string("/proc/net/dev").unwrap());
    env.build_ok(&["-t", "t", s(&ctx)]);
    let m = env.image(NAME).merged(&env.path("merged"));
    assert_eq!(
        interfaces(&m.read("/net-none")),
        BTreeSet::from(["lo".to_owned()])
    );
    assert_eq!(interfaces(&m.read("/net-default")), host);
    assert_eq!(interfaces(&m.read("/net-host")), host);
    assert!(host.len() > 1, "the host has more than lo: {host:?}");
}

#[test]
fn security_insecure_needs_the_entitlement() {
    let _g = shared();
    let env = Env::new();
    let ctx = busybox_ctx(
        &env,
        "RUN grep CapEff /proc/self/status > /caps-default\nRUN --security=insecure grep CapEff /proc/self/status > /caps-insecure\n",
    );
    let (ok, _, err) = env.build(&["-t", "t", s(&ctx)]);
    assert!(!ok);
    assert!(
        err.contains("Dockerfile:4:") && err.contains("--allow security.insecure"),
        "{err}"
    );
    assert!(!has_image(&env, NAME));

    env.build_ok(&["-t", "t", "--allow", "security.insecure", s(&ctx)]);
    let m = env.image(NAME).merged(&env.path("merged"));
    let caps = |p: &str| {
        let text = m.read(p);
        let hex = text.split_whitespace().nth(1).unwrap().to_owned();
        u64::from_str_radix(&hex, 16).unwrap()
    };
    let default = caps("/caps-default");
    let insecure = caps("/caps-insecure");
    const CAP_SYS_ADMIN: u64 = 1 << 21;
    assert_eq!(default & CAP_SYS_ADMIN, 0, "{default:x}");
    assert_ne!(insecure & CAP_SYS_ADMIN, 0, "{insecure:x}");
    assert_eq!(insecure & default, default, "insecure has all the others");
}

// ---------------------------------------------------------------------------
// 9–11. Failure, leaks and cancelling

#[test]
fn failing_run_reports_and_leaves_nothing() {
    let _g = exclusive();
    let env = Env::new();
    let ctx = busybox_ctx(&env, "RUN echo ok > /fine\nRUN echo out; exit 7\n");
    let mounts = mountinfo_lines();
    let (ok, _, err) = env.build(&["-t", "t", s(&ctx)]);
    assert!(!ok);
    assert!(
        err.contains("Dockerfile:4: RUN step 4/4 failed (exit code 7)"),
        "{err}"
    );
    assert!(err.lines().any(|l| l.trim() == "out"), "{err}");
    assert!(!has_image(&env, NAME));
    assert_eq!(mountinfo_lines(), mounts);
    assert_eq!(leftover_processes(), Vec::<String>::new());
    assert_eq!(staging_dirs(&env), Vec::<String>::new());
}

#[test]
fn twenty_runs_leave_no_mounts_or_processes() {
    let _g = exclusive();
    let env = Env::new();
    let mut rest = String::new();
    for i in 0..20 {
        rest.push_str(&format!("RUN echo {i} > /f{i}\n"));
    }
    let ctx = busybox_ctx(&env, &rest);
    let mounts = mountinfo_lines();
    env.build_ok(&["-t", "t", s(&ctx)]);
    assert_eq!(mountinfo_lines(), mounts);
    assert_eq!(leftover_processes(), Vec::<String>::new());
    assert_eq!(staging_dirs(&env), Vec::<String>::new());
    let img = env.image(NAME);
    assert_eq!(img.layer_digests().len(), 21);
    let m = img.merged(&env.path("merged"));
    for i in 0..20 {
        assert_eq!(m.read(&format!("/f{i}")), format!("{i}\n"));
    }
}

/// Starts a build whose RUN sleeps, sends `sig` to berth once the sandbox
/// runs, and checks that everything is gone and the store still builds.
fn cancel_a_running_step(sig: i32) {
    let _g = exclusive();
    let env = Env::new();
    let marker = unique("cancel-marker");
    let ctx = busybox_ctx(
        &env,
        &format!("RUN echo before > /before\nRUN sleep 1000; echo {marker}\n"),
    );
    let mounts = mountinfo_lines();
    let mut berth = Spawned::build(&env, &ctx, marker.clone());
    let mut exited_early = None;
    let running = wait_until(Duration::from_secs(30), || {
        if let Ok(Some(status)) = berth.child.try_wait() {
            exited_early = Some(status);
            return true;
        }
        !processes_with(&marker).is_empty()
    });
    assert!(
        running && exited_early.is_none(),
        "the sandbox never ran ({exited_early:?}): {}",
        berth.log()
    );

    // What the leak checks below look for is visible while it runs: berth,
    // its sandbox init and the command.
    let running = live_descendants();
    let bin = assert_cmd::cargo::cargo_bin("berth");
    for needle in [&*bin.to_string_lossy(), INIT_ARG, &marker] {
        assert!(
            running.iter().any(|p| p.contains(needle)),
            "no {needle} in {running:?}"
        );
    }

    berth.signal(sig);
    let started = Instant::now();
    let status = berth.wait(Duration::from_secs(5));
    let status = status.unwrap_or_else(|| panic!("berth still runs 5 s later: {}", berth.log()));
    assert!(!status.success(), "{status:?}");
    if sig == libc::SIGTERM {
        // berth waited for the sandbox to be gone before exiting.
        assert_eq!(processes_with(&marker), Vec::<String>::new());
        assert!(berth.log().contains("build cancelled"), "{}", berth.log());
        assert!(started.elapsed() < Duration::from_secs(5));
    } else {
        // Nobody waits: the sandbox dies of its parent's death.
        assert!(
            wait_until(Duration::from_secs(5), || processes_with(&marker)
                .is_empty()),
            "the sandbox outlived berth: {:?}",
            processes_with(&marker)
        );
    }
    assert!(
        wait_until(Duration::from_secs(5), || leftover_processes().is_empty()),
        "left behind: {:?}",
        leftover_processes()
    );
    assert!(
        wait_until(Duration::from_secs(5), || mountinfo_lines() == mounts),
        "mounts: {} before, {} after",
        mounts,
        mountinfo_lines()
    );
    assert!(!has_image(&env, NAME));
    if sig == libc::SIGTERM {
        assert_eq!(staging_dirs(&env), Vec::<String>::new());
    }

    // The store is still consistent: the same build, without the sleep.
    write_dockerfile(
        &ctx,
        &format!("RUN echo before > /before\nRUN echo {marker} > /done\n"),
    );
    let log = env.build_ok(&["-t", "t", s(&ctx)]);
    let m = env.image(NAME).merged(&env.path("merged"));
    assert_eq!(m.read("/before"), "before\n");
    assert_eq!(m.read("/done"), format!("{marker}\n"));
    assert!(
        cached_steps(&log)
            .iter()
            .any(|t| t.contains("RUN echo before")),
        "the step before the cancelled one is cached: {log}"
    );
    assert_eq!(leftover_processes(), Vec::<String>::new());
    drop(berth);
}

#[test]
fn sigterm_cancels_a_running_step() {
    cancel_a_running_step(libc::SIGTERM);
}

#[test]
fn sigkill_of_berth_kills_the_sandbox() {
    cancel_a_running_step(libc::SIGKILL);
}
