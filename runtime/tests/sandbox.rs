//! The namespaced sandbox, end to end (as root): this binary is its own
//! sandbox init (`main` hands over when called with `INIT_ARG`), and with
//! `__sandbox-test-parent SPEC_FILE` it is a berth stand-in that a test
//! kills mid-run. Otherwise it runs the tests below in turn; an argument
//! that is not a flag filters them by name.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use berth_runtime::sandbox::{
    ExitStatus, INIT_ARG, Mount, Network, Rootfs, Sandbox, SandboxError, SandboxSpec, Stream,
    init_main,
};
use tempfile::TempDir;

const PARENT_ARG: &str = "__sandbox-test-parent";

type Test = fn(&Fixture);

const TESTS: &[(&str, Test)] = &[
    (
        "output_streams_and_exit_statuses",
        output_streams_and_exit_statuses,
    ),
    ("output_is_live", output_is_live),
    (
        "upper_records_changes_without_traces",
        upper_records_changes_without_traces,
    ),
    (
        "no_traces_when_the_image_has_the_mount_points",
        no_traces_when_the_image_has_the_mount_points,
    ),
    (
        "no_traces_without_etc_and_cwd_stays",
        no_traces_without_etc_and_cwd_stays,
    ),
    (
        "from_scratch_with_a_bind_mounted_shell",
        from_scratch_with_a_bind_mounted_shell,
    ),
    ("pid_namespace_and_hostname", pid_namespace_and_hostname),
    ("devices_sys_and_proc", devices_sys_and_proc),
    ("users_and_groups", users_and_groups),
    ("setup_errors", setup_errors),
    ("capabilities", capabilities),
    ("network_none_and_host", network_none_and_host),
    ("hosts_and_resolv_conf", hosts_and_resolv_conf),
    (
        "bind_tmpfs_and_overlay_mounts",
        bind_tmpfs_and_overlay_mounts,
    ),
    ("sixty_layer_root", sixty_layer_root),
    (
        "sixty_layer_root_classic_mount",
        sixty_layer_root_classic_mount,
    ),
    ("no_leaks_over_twenty_runs", no_leaks_over_twenty_runs),
    ("cancel_kills_everything", cancel_kills_everything),
    (
        "killing_the_parent_kills_everything",
        killing_the_parent_kills_everything,
    ),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(INIT_ARG) {
        return init_main();
    }
    if args.get(1).map(String::as_str) == Some(PARENT_ARG) {
        return test_parent(args.get(2).map(PathBuf::from));
    }
    let filter = name_filter(&args[1..]);
    if !rustix::process::geteuid().is_root() {
        println!("sandbox tests skipped: they need root");
        return ExitCode::SUCCESS;
    }
    let fixture = Fixture::new();
    let selected: Vec<_> = TESTS
        .iter()
        .filter(|(name, _)| filter.as_ref().is_none_or(|f| name.contains(f.as_str())))
        .collect();
    println!("\nrunning {} tests", selected.len());
    let mut failed = Vec::new();
    for (name, test) in selected {
        let start = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| test(&fixture)));
        match result {
            Ok(()) => println!("test {name} ... ok ({:.1?})", start.elapsed()),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed.push(*name);
            }
        }
    }
    if failed.is_empty() {
        println!("\ntest result: ok");
        ExitCode::SUCCESS
    } else {
        println!("\nfailures: {}", failed.join(", "));
        ExitCode::FAILURE
    }
}

/// The first argument that is neither a flag nor a flag's value.
fn name_filter(args: &[String]) -> Option<String> {
    let mut skip_next = false;
    for arg in args {
        if skip_next {
            skip_next = false;
            continue;
        }
        if arg.starts_with('-') {
            let takes_value = [
                "--test-threads",
                "--format",
                "--logfile",
                "--skip",
                "--color",
                "-Z",
            ];
            skip_next = takes_value.contains(&arg.as_str());
            continue;
        }
        return Some(arg.clone());
    }
    None
}

// ---------------------------------------------------------------------
// Fixtures

/// A busybox root filesystem (no /proc, /dev, /sys), made once.
struct Fixture {
    _dir: TempDir,
    busybox: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let busybox = dir.path().join("busybox");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/make-rootfs.sh");
        let status = Command::new("sh")
            .arg(&script)
            .arg(&busybox)
            .status()
            .expect("run make-rootfs.sh");
        assert!(status.success(), "make-rootfs.sh failed");
        Fixture { _dir: dir, busybox }
    }
}

/// One container's directories: extra lower layers, upper, work.
struct Container {
    dir: TempDir,
    lower: Vec<PathBuf>,
    upper: PathBuf,
    work: PathBuf,
}

impl Container {
    /// `lower`: top first.
    fn new(lower: Vec<PathBuf>) -> Container {
        let dir = tempfile::tempdir().expect("tempdir");
        let upper = dir.path().join("upper");
        let work = dir.path().join("work");
        fs::create_dir(&upper).unwrap();
        fs::create_dir(&work).unwrap();
        Container {
            dir,
            lower,
            upper,
            work,
        }
    }

    /// A directory for a layer of this test's own, under its tempdir.
    fn layer(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        fs::create_dir_all(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn spec(&self, script: &str) -> SandboxSpec {
        SandboxSpec {
            rootfs: Rootfs::Overlay {
                lower: self.lower.clone(),
                upper: self.upper.clone(),
                work: self.work.clone(),
            },
            args: vec!["/bin/sh".into(), "-c".into(), script.into()],
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            cwd: "/".into(),
            user: String::new(),
            hostname: "sandbox".into(),
            network: Network::None,
            mounts: Vec::new(),
            hosts_file: None,
            resolv_conf: None,
            insecure: false,
        }
    }

    /// Entries directly in the upper directory.
    fn upper_entries(&self) -> BTreeSet<String> {
        entries(&self.upper)
    }
}

fn entries(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

fn sandbox() -> Sandbox {
    Sandbox::new(std::env::current_exe().expect("current_exe"))
}

#[derive(Default)]
struct Output {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    chunks: Vec<(Stream, Instant, Vec<u8>)>,
}

impl Output {
    fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    fn err(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

fn run_with(
    sandbox: &Sandbox,
    spec: &SandboxSpec,
    cancel: &AtomicBool,
) -> (Result<ExitStatus, SandboxError>, Output) {
    let mut output = Output::default();
    let result = sandbox.run(
        spec,
        &mut |stream, bytes| {
            match stream {
                Stream::Stdout => output.stdout.extend_from_slice(bytes),
                Stream::Stderr => output.stderr.extend_from_slice(bytes),
            }
            output.chunks.push((stream, Instant::now(), bytes.to_vec()));
        },
        cancel,
    );
    (result, output)
}

fn run(spec: &SandboxSpec) -> (Result<ExitStatus, SandboxError>, Output) {
    run_with(&sandbox(), spec, &AtomicBool::new(false))
}

/// Runs and expects exit code 0; returns stdout.
fn run_ok(spec: &SandboxSpec) -> String {
    let (result, output) = run(spec);
    match result {
        Ok(ExitStatus::Code(0)) => output.out(),
        other => panic!(
            "{:?}: {other:?}\nstdout: {}\nstderr: {}",
            spec.args,
            output.out(),
            output.err()
        ),
    }
}

// ---------------------------------------------------------------------
// 1. Output and exit statuses

fn output_streams_and_exit_statuses(f: &Fixture) {
    let c = Container::new(vec![f.busybox.clone()]);
    let (result, output) = run(&c.spec("echo hi; echo err >&2"));
    assert_eq!(result.unwrap(), ExitStatus::Code(0));
    assert_eq!(output.out(), "hi\n");
    assert_eq!(output.err(), "err\n");

    let (result, _) = run(&c.spec("exit 3"));
    assert_eq!(result.unwrap(), ExitStatus::Code(3));
    let (result, _) = run(&c.spec("kill -9 $$"));
    assert_eq!(result.unwrap(), ExitStatus::Signal(9));
    // A command that fails to run a program is the command's failure.
    let (result, output) = run(&c.spec("nosuchprogram"));
    assert_eq!(result.unwrap(), ExitStatus::Code(127));
    assert!(output.err().contains("nosuchprogram"), "{}", output.err());
}

fn output_is_live(f: &Fixture) {
    let c = Container::new(vec![f.busybox.clone()]);
    let start = Instant::now();
    let (result, output) = run(&c.spec("echo first; sleep 1; echo second >&2"));
    let end = Instant::now();
    assert_eq!(result.unwrap(), ExitStatus::Code(0));
    let (stream, at, bytes) = &output.chunks[0];
    assert_eq!(
        (*stream, bytes.as_slice()),
        (Stream::Stdout, &b"first\n"[..])
    );
    assert!(
        end - *at >= Duration::from_millis(800),
        "first chunk came {:?} after the start and {:?} before the end",
        *at - start,
        end - *at
    );
    assert_eq!(output.err(), "second\n");
}

// ---------------------------------------------------------------------
// 2. The upper directory

fn upper_records_changes_without_traces(f: &Fixture) {
    let c = Container::new(Vec::new());
    let top = c.layer("top");
    fs::create_dir(top.join("data")).unwrap();
    fs::write(top.join("data/old"), "old\n").unwrap();
    fs::write(top.join("data/gone"), "gone\n").unwrap();
    let c = Container {
        lower: vec![top, f.busybox.clone()],
        ..c
    };
    let hosts = c.dir.path().join("hosts");
    fs::write(&hosts, "127.0.0.1 localhost\n").unwrap();
    let mut spec = c.spec("echo new > /data/new && echo changed > /data/old && rm /data/gone");
    spec.hosts_file = Some(hosts.clone());
    spec.resolv_conf = Some(hosts);
    spec.mounts.push(Mount::Tmpfs {
        target: "/run/scratch".into(),
        size: None,
        mode: None,
    });
    run_ok(&spec);

    assert_eq!(c.upper_entries(), BTreeSet::from(["data".to_owned()]));
    assert_eq!(
        fs::read_to_string(c.upper.join("data/new")).unwrap(),
        "new\n"
    );
    assert_eq!(
        fs::read_to_string(c.upper.join("data/old")).unwrap(),
        "changed\n"
    );
    let gone = fs::symlink_metadata(c.upper.join("data/gone")).unwrap();
    assert!(
        gone.file_type().is_char_device() && gone.rdev() == 0,
        "whiteout"
    );
}

fn no_traces_when_the_image_has_the_mount_points(f: &Fixture) {
    let c = Container::new(Vec::new());
    let top = c.layer("top");
    for dir in ["proc", "dev", "sys", "etc", "mnt/target"] {
        fs::create_dir_all(top.join(dir)).unwrap();
    }
    fs::write(top.join("etc/hosts"), "").unwrap();
    fs::write(top.join("etc/resolv.conf"), "").unwrap();
    let c = Container {
        lower: vec![top, f.busybox.clone()],
        ..c
    };
    let hosts = c.dir.path().join("hosts");
    fs::write(&hosts, "127.0.0.1 localhost\n").unwrap();
    let mut spec = c.spec("grep -q localhost /etc/hosts");
    spec.hosts_file = Some(hosts.clone());
    spec.resolv_conf = Some(hosts);
    spec.mounts.push(Mount::Tmpfs {
        target: "/mnt/target".into(),
        size: None,
        mode: None,
    });
    run_ok(&spec);
    assert_eq!(
        c.upper_entries(),
        BTreeSet::new(),
        "no copy-up, no whiteout"
    );
}

fn no_traces_without_etc_and_cwd_stays(f: &Fixture) {
    // Only /bin: no /etc, /tmp or /root in the image.
    let c = Container::new(Vec::new());
    let bin_only = c.layer("bin-only");
    let status = Command::new("cp")
        .arg("-a")
        .arg(f.busybox.join("bin"))
        .arg(&bin_only)
        .status()
        .unwrap();
    assert!(status.success());
    let c = Container {
        lower: vec![bin_only],
        ..c
    };
    let hosts = c.dir.path().join("hosts");
    fs::write(&hosts, "127.0.0.1 localhost\n").unwrap();
    let mut spec = c.spec("pwd; ls /etc");
    spec.cwd = "/app/sub".into();
    spec.hosts_file = Some(hosts.clone());
    spec.resolv_conf = Some(hosts);
    spec.mounts.push(Mount::Tmpfs {
        target: "/var/cache/x".into(),
        size: None,
        mode: None,
    });
    let out = run_ok(&spec);
    assert_eq!(out, "/app/sub\nhosts\nresolv.conf\n");
    assert_eq!(c.upper_entries(), BTreeSet::from(["app".to_owned()]));
    let sub = fs::metadata(c.upper.join("app/sub")).unwrap();
    assert_eq!((sub.mode() & 0o7777, sub.uid(), sub.gid()), (0o755, 0, 0));
}

fn from_scratch_with_a_bind_mounted_shell(f: &Fixture) {
    let c = Container::new(Vec::new());
    let mut spec = c.spec("echo scratch; ls /");
    spec.mounts.push(Mount::Bind {
        source: f.busybox.join("bin"),
        target: "/bin".into(),
        readonly: true,
    });
    let out = run_ok(&spec);
    assert!(out.starts_with("scratch\n"), "{out}");
    assert_eq!(c.upper_entries(), BTreeSet::new());
    assert_eq!(
        entries(c.dir.path()),
        BTreeSet::from(["upper".to_owned(), "work".to_owned()]),
        "the empty lower is removed"
    );
}

// ---------------------------------------------------------------------
// 3. Namespaces, devices, users

fn pid_namespace_and_hostname(f: &Fixture) {
    let c = Container::new(vec![f.busybox.clone()]);
    // PID 1 is the sandbox's init (it reaps); the command is its child.
    // It is not dumpable: the command cannot reach berth's binary or fds
    // through /proc/1.
    let out = run_ok(&c.spec(
        "echo $$; for p in /proc/[0-9]*; do echo ${p#/proc/}; done; tr '\\0' ' ' < /proc/1/cmdline; echo; hostname; \
         readlink /proc/1/exe 2>/dev/null || echo exe-hidden; readlink /proc/1/fd/3 2>/dev/null || echo fds-hidden; ulimit -n",
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "2", "{out}");
    assert_eq!(
        &lines[1..3],
        ["1", "2"],
        "only the sandbox's processes: {out}"
    );
    assert!(lines[3].contains(INIT_ARG), "{out}");
    assert_eq!(
        &lines[4..7],
        ["sandbox", "exe-hidden", "fds-hidden"],
        "{out}"
    );
    let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .maximum
        .unwrap_or(u64::MAX);
    assert_eq!(lines[7], (1u64 << 20).min(hard).to_string(), "{out}");
    assert_eq!(lines.len(), 8, "{out}");

    // Orphans are reaped by PID 1: no zombie is left while the command runs.
    let out = run_ok(&c.spec(
        "sh -c 'sleep 0.2 & exit 0'; sleep 0.5; grep -l '^State:.Z' /proc/[0-9]*/status || echo no-zombies",
    ));
    assert_eq!(out, "no-zombies\n");
}

fn devices_sys_and_proc(f: &Fixture) {
    let c = Container::new(vec![f.busybox.clone()]);
    let out = run_ok(&c.spec(
        "echo x > /dev/null && head -c 4 /dev/zero | wc -c && head -c 4 /dev/urandom | wc -c; \
         ls /dev/pts/ptmx /dev/shm /dev/ptmx /dev/fd/ /dev/stdin > /dev/null && echo devs; \
         touch /dev/shm/f && echo shm; \
         awk '$2 == \"/sys\" {print substr($4, 1, 2)}' /proc/self/mounts; \
         mkdir /sys/kernel/x 2>/dev/null || echo sys-readonly; \
         echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null || echo proc-sys-readonly; \
         cat /proc/kcore | wc -c; \
         mknod /tmp/null c 1 3 && (echo x > /tmp/null 2>/dev/null || echo nodev)",
    ));
    assert_eq!(
        out,
        "4\n4\ndevs\nshm\nro\nsys-readonly\nproc-sys-readonly\n0\nnodev\n"
    );
    let mut spec = c.spec("awk '$2 == \"/sys\" {print substr($4, 1, 2)}' /proc/self/mounts; mknod /tmp/null2 c 1 3 && echo x > /tmp/null2 && echo dev");
    spec.insecure = true;
    assert_eq!(run_ok(&spec), "rw\ndev\n");
}

fn users_and_groups(f: &Fixture) {
    let c = Container::new(Vec::new());
    let top = c.layer("top");
    fs::create_dir(top.join("etc")).unwrap();
    fs::write(
        top.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n",
    )
    .unwrap();
    fs::write(
        top.join("etc/group"),
        "root:x:0:\nwheel:x:10:root\nstaff:x:50:nobody,app\nnogroup:x:65534:\napp:x:1000:\n",
    )
    .unwrap();
    let c = Container {
        lower: vec![top, f.busybox.clone()],
        ..c
    };
    let id = |user: &str| {
        let mut spec = c.spec("id; echo $HOME; touch /newfile 2>/dev/null && echo wrote; true");
        spec.user = user.into();
        run_ok(&spec)
    };
    assert_eq!(
        id("nobody"),
        "uid=65534(nobody) gid=65534(nogroup) groups=50(staff)\n/\n"
    );
    // An explicit group: no supplementary groups (as runc).
    assert_eq!(id("1000:1000"), "uid=1000(app) gid=1000(app)\n/home/app\n");
    assert_eq!(
        id("root"),
        "uid=0(root) gid=0(root) groups=10(wheel)\n/root\nwrote\n"
    );
    assert_eq!(id(""), id("root"));
    assert_eq!(
        id("app"),
        "uid=1000(app) gid=1000(app) groups=50(staff)\n/home/app\n"
    );
    assert_eq!(id("4321"), "uid=4321 gid=0(root)\n/\n");
    let mut spec = c.spec("echo $HOME");
    spec.user = "nobody".into();
    spec.env.push("HOME=/custom".into());
    assert_eq!(run_ok(&spec), "/custom\n");
}

fn setup_errors(f: &Fixture) {
    let c = Container::new(vec![f.busybox.clone()]);
    let mut spec = c.spec("true");
    spec.user = "app".into();
    match run(&spec).0 {
        Err(SandboxError::Setup { step, message }) => {
            assert_eq!(step, "user");
            assert_eq!(
                message,
                "unable to find user app: no matching entries in passwd file"
            );
        }
        other => panic!("{other:?}"),
    }
    let mut spec = c.spec("true");
    spec.args = vec!["nosuchcmd".into(), "arg".into()];
    match run(&spec).0 {
        Err(e @ SandboxError::Setup { .. }) => {
            assert_eq!(
                e.to_string(),
                "exec \"nosuchcmd\": executable file not found in $PATH"
            );
        }
        other => panic!("{other:?}"),
    }
    let mut spec = c.spec("true");
    spec.args = vec!["/bin/nonexistent".into()];
    match run(&spec).0 {
        Err(SandboxError::Setup { message, .. }) => {
            assert_eq!(
                message,
                "exec \"/bin/nonexistent\": no such file or directory"
            );
        }
        other => panic!("{other:?}"),
    }
    let mut spec = c.spec("true");
    spec.mounts.push(Mount::Bind {
        source: "/nonexistent/source".into(),
        target: "/x".into(),
        readonly: false,
    });
    match run(&spec).0 {
        Err(SandboxError::Setup { step, message }) => {
            assert_eq!(step, "mount");
            assert!(message.contains("/nonexistent/source"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        c.upper_entries(),
        BTreeSet::new(),
        "no traces after failures"
    );
    let mut spec = c.spec("true");
    spec.args.clear();
    assert!(matches!(run(&spec).0, Err(SandboxError::InvalidSpec(_))));
    let missing = Sandbox::new("/nonexistent/berth".into());
    let result = run_with(&missing, &c.spec("true"), &AtomicBool::new(false)).0;
    assert!(matches!(result, Err(SandboxError::Spawn(_))), "{result:?}");
}

// ---------------------------------------------------------------------
// 4. Capabilities

fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in {status}"))
        .trim()
        .to_owned()
}

fn capabilities(f: &Fixture) {
    let c = Container::new(vec![f.busybox.clone()]);
    let status = run_ok(&c.spec("cat /proc/self/status"));
    assert_eq!(status_field(&status, "CapEff:"), "00000000a80425fb");
    assert_eq!(status_field(&status, "CapPrm:"), "00000000a80425fb");
    assert_eq!(status_field(&status, "CapBnd:"), "00000000a80425fb");
    assert_eq!(status_field(&status, "CapInh:"), "0000000000000000");
    assert_eq!(status_field(&status, "CapAmb:"), "0000000000000000");
    assert_eq!(status_field(&status, "NoNewPrivs:"), "1");

    let mut spec = c.spec("cat /proc/self/status");
    spec.user = "nobody".into();
    let status = run_ok(&spec);
    assert_eq!(status_field(&status, "CapEff:"), "0000000000000000");
    assert_eq!(status_field(&status, "CapPrm:"), "0000000000000000");
    assert_eq!(status_field(&status, "CapBnd:"), "00000000a80425fb");

    let mine = fs::read_to_string("/proc/self/status").unwrap();
    let mut spec = c.spec("cat /proc/self/status");
    spec.insecure = true;
    let status = run_ok(&spec);
    assert_eq!(
        status_field(&status, "CapEff:"),
        status_field(&mine, "CapBnd:")
    );
    assert_eq!(
        status_field(&status, "CapBnd:"),
        status_field(&mine, "CapBnd:")
    );
    assert_eq!(status_field(&status, "NoNewPrivs:"), "1");
}

// ---------------------------------------------------------------------
// 5. Networks

fn interfaces(proc_net_dev: &str) -> BTreeSet<String> {
    proc_net_dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(|n| n.trim().to_owned())
        .collect()
}

fn network_none_and_host(f: &Fixture) {
    let c = Container::new(vec![f.busybox.clone()]);
    let out = run_ok(
        &c.spec("cat /proc/net/dev; echo ---; cat /sys/class/net/lo/flags; ls /sys/class/net"),
    );
    let (dev, rest) = out.split_once("---\n").unwrap();
    assert_eq!(interfaces(dev), BTreeSet::from(["lo".to_owned()]));
    let mut rest = rest.lines();
    let flags = u32::from_str_radix(rest.next().unwrap().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "lo is up");
    assert_eq!(rest.collect::<Vec<_>>(), ["lo"]);
    let out = run_ok(&c.spec("ping -c 1 -W 2 127.0.0.1 > /dev/null && echo pong"));
    assert_eq!(out, "pong\n");

    let mut spec = c.spec("cat /proc/net/dev");
    spec.network = Network::Host;
    let host = fs::read_to_string("/proc/net/dev").unwrap();
    assert_eq!(interfaces(&run_ok(&spec)), interfaces(&host));
}

fn hosts_and_resolv_conf(f: &Fixture) {
    let c = Container::new(vec![f.busybox.clone()]);
    let hosts = c.dir.path().join("hosts");
    let resolv = c.dir.path().join("resolv");
    fs::write(&hosts, "127.0.0.1 localhost\n10.0.0.1 db\n").unwrap();
    fs::write(&resolv, "nameserver 10.0.0.53\n").unwrap();
    let mut spec = c.spec(
        "cat /etc/hosts /etc/resolv.conf; echo x >> /etc/hosts 2>/dev/null || echo readonly; grep -c root /etc/passwd",
    );
    spec.hosts_file = Some(hosts.clone());
    spec.resolv_conf = Some(resolv);
    assert_eq!(
        run_ok(&spec),
        "127.0.0.1 localhost\n10.0.0.1 db\nnameserver 10.0.0.53\nreadonly\n1\n"
    );
    assert_eq!(
        fs::read_to_string(&hosts).unwrap(),
        "127.0.0.1 localhost\n10.0.0.1 db\n"
    );
    assert_eq!(c.upper_entries(), BTreeSet::new());
}

// ---------------------------------------------------------------------
// 6. Mounts

fn bind_tmpfs_and_overlay_mounts(f: &Fixture) {
    let c = Container::new(vec![f.busybox.clone()]);
    let ro = c.layer("ro");
    fs::write(ro.join("file"), "ro\n").unwrap();
    let rw = c.layer("rw");
    let single = c.dir.path().join("single-file");
    fs::write(&single, "single\n").unwrap();
    let (l1, l2) = (c.layer("l1"), c.layer("l2"));
    fs::write(l1.join("top"), "top\n").unwrap();
    fs::write(l2.join("bottom"), "bottom\n").unwrap();
    fs::write(l2.join("top"), "hidden\n").unwrap();
    let scratch = c.dir.path().join("scratch");
    let mut spec = c.spec(
        "cat /ro/file; echo x > /ro/new 2>/dev/null || echo ro-readonly; \
         echo written > /rw/new && echo rw-ok; \
         cat /etc/single; \
         grep -w /tmpfs /proc/self/mounts | cut -d' ' -f3; stat -c %a /tmpfs; echo t > /tmpfs/t && echo tmpfs-ok; \
         cat /layers/top /layers/bottom; touch /layers/x 2>/dev/null || echo overlay-readonly; \
         echo s > /writable/new && cat /writable/top; \
         cat /one/file; touch /one/x 2>/dev/null || echo one-readonly",
    );
    spec.mounts = vec![
        Mount::Bind {
            source: ro.clone(),
            target: "/ro".into(),
            readonly: true,
        },
        Mount::Bind {
            source: rw.clone(),
            target: "/rw".into(),
            readonly: false,
        },
        Mount::Bind {
            source: single,
            target: "/etc/single".into(),
            readonly: true,
        },
        Mount::Tmpfs {
            target: "/tmpfs".into(),
            size: Some(1 << 20),
            mode: Some(0o700),
        },
        Mount::Overlay {
            lower: vec![l1.clone(), l2.clone()],
            target: "/layers".into(),
            scratch: None,
        },
        Mount::Overlay {
            lower: vec![l1.clone(), l2.clone()],
            target: "/writable".into(),
            scratch: Some(scratch.clone()),
        },
        Mount::Overlay {
            lower: vec![ro.clone()],
            target: "/one".into(),
            scratch: None,
        },
    ];
    let expected = "ro\nro-readonly\nrw-ok\nsingle\ntmpfs\n700\ntmpfs-ok\ntop\nbottom\noverlay-readonly\ntop\nro\none-readonly\n";
    assert_eq!(run_ok(&spec), expected);
    assert_eq!(fs::read_to_string(rw.join("new")).unwrap(), "written\n");
    assert_eq!(
        fs::read_to_string(scratch.join("upper/new")).unwrap(),
        "s\n"
    );
    assert!(!l1.join("new").exists());
    assert_eq!(
        c.upper_entries(),
        BTreeSet::new(),
        "mount targets are traces"
    );

    // The classic overlay mount for the overlay mounts too.
    let scratch2 = c.dir.path().join("scratch2");
    if let Mount::Overlay { scratch, .. } = &mut spec.mounts[5] {
        *scratch = Some(scratch2);
    }
    fs::remove_file(rw.join("new")).unwrap();
    let classic = sandbox().with_classic_overlay_mount(true);
    let (result, output) = run_with(&classic, &spec, &AtomicBool::new(false));
    assert_eq!(result.unwrap(), ExitStatus::Code(0), "{}", output.err());
    assert_eq!(output.out(), expected);
    assert!(!l1.join("new").exists());
}

fn sixty_layers(c: &Container, busybox: &Path) -> Vec<PathBuf> {
    // Top first; the bottom one is the busybox root. Long names, like
    // snapshot paths, so that the classic options would overflow a page.
    let mut lower = Vec::new();
    for i in 0..59 {
        let layer = c.layer(&format!("snapshots/{i:02}-{}", "d".repeat(64)));
        fs::create_dir(layer.join("layers")).unwrap();
        fs::write(layer.join(format!("layers/{i:02}")), format!("{i}\n")).unwrap();
        fs::write(layer.join("layers/which"), format!("{i}\n")).unwrap();
        lower.push(layer);
    }
    lower.push(busybox.to_path_buf());
    lower
}

fn sixty_layer_root(f: &Fixture) {
    let c = Container::new(Vec::new());
    let lower = sixty_layers(&c, &f.busybox);
    let total: usize = lower.iter().map(|l| l.as_os_str().len() + 1).sum();
    assert!(
        total > 4096,
        "the layers would not fit mount(2)'s page: {total}"
    );
    let c = Container { lower, ..c };
    let out = run_ok(
        &c.spec("cat /layers/00 /layers/58 /layers/which; ls /layers | wc -l; echo hi > /new"),
    );
    assert_eq!(out, "0\n58\n0\n60\n");
    assert_eq!(c.upper_entries(), BTreeSet::from(["new".to_owned()]));
}

fn sixty_layer_root_classic_mount(f: &Fixture) {
    let c = Container::new(Vec::new());
    // The busybox root is outside this tempdir: copy it in so that every
    // path is relative to a parent close enough for one page.
    let bottom = c.layer("snapshots/busybox");
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", f.busybox.display()))
        .arg(&bottom)
        .status()
        .unwrap();
    assert!(status.success());
    let lower = sixty_layers(&c, &bottom);
    let c = Container { lower, ..c };
    let classic = sandbox().with_classic_overlay_mount(true);
    let (result, output) = run_with(
        &classic,
        &c.spec("cat /layers/00 /layers/58 /layers/which; echo hi > /new"),
        &AtomicBool::new(false),
    );
    assert_eq!(result.unwrap(), ExitStatus::Code(0), "{}", output.err());
    assert_eq!(output.out(), "0\n58\n0\n");
    assert_eq!(c.upper_entries(), BTreeSet::from(["new".to_owned()]));
}

// ---------------------------------------------------------------------
// 7. Leaks and cancel

fn mountinfo_lines() -> usize {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count()
}

/// Live (non-zombie) processes whose parent is `ppid`.
fn children_of(ppid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split(' ').collect();
        if fields.first() != Some(&"Z") && fields.get(1).and_then(|p| p.parse().ok()) == Some(ppid)
        {
            out.push(pid);
        }
    }
    out
}

/// Live processes whose command line or environment contains `marker`.
fn processes_with(marker: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let state = fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        if state
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z'))
        {
            continue;
        }
        let found = ["cmdline", "environ"].iter().any(|file| {
            fs::read(entry.path().join(file))
                .is_ok_and(|bytes| bytes.windows(marker.len()).any(|w| w == marker.as_bytes()))
        });
        if found && pid != std::process::id() {
            out.push(pid);
        }
    }
    out
}

fn unique_marker(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("berth-test-{name}-{}-{nanos}", std::process::id())
}

fn no_leaks_over_twenty_runs(f: &Fixture) {
    let c = Container::new(vec![f.busybox.clone()]);
    let mut spec = c.spec("sleep 10 & sleep 10 & echo $$ > /dev/null");
    spec.mounts.push(Mount::Tmpfs {
        target: "/run/t".into(),
        size: None,
        mode: None,
    });
    let before = mountinfo_lines();
    for _ in 0..20 {
        run_ok(&spec);
    }
    assert_eq!(mountinfo_lines(), before);
    assert_eq!(children_of(std::process::id()), Vec::<u32>::new());
    assert_eq!(c.upper_entries(), BTreeSet::new());
}

fn cancel_kills_everything(f: &Fixture) {
    let c = Container::new(vec![f.busybox.clone()]);
    let marker = unique_marker("cancel");
    let mut spec = c.spec(&format!("sleep 100 & sleep 100; : {marker}"));
    spec.env.push(format!("MARKER={marker}"));
    let before = mountinfo_lines();
    let cancel = Arc::new(AtomicBool::new(false));
    let setter = {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            cancel.store(true, Ordering::SeqCst);
        })
    };
    let start = Instant::now();
    let (result, _) = run_with(&sandbox(), &spec, &cancel);
    let took = start.elapsed();
    setter.join().unwrap();
    assert!(matches!(result, Err(SandboxError::Cancelled)), "{result:?}");
    assert!(took < Duration::from_secs(2), "cancel took {took:?}");
    assert_eq!(processes_with(&marker), Vec::<u32>::new());
    assert_eq!(children_of(std::process::id()), Vec::<u32>::new());
    assert_eq!(mountinfo_lines(), before);
    assert_eq!(c.upper_entries(), BTreeSet::new());
}

// ---------------------------------------------------------------------
// 8. Killing berth

/// The berth stand-in: runs the spec in `spec_file` and reports.
fn test_parent(spec_file: Option<PathBuf>) -> ExitCode {
    let Some(spec_file) = spec_file else {
        eprintln!("usage: {PARENT_ARG} SPEC_FILE");
        return ExitCode::FAILURE;
    };
    let spec: SandboxSpec = match fs::read(&spec_file).map(|b| serde_json::from_slice(&b)) {
        Ok(Ok(spec)) => spec,
        other => {
            eprintln!("cannot read {}: {other:?}", spec_file.display());
            return ExitCode::FAILURE;
        }
    };
    let result = sandbox().run(&spec, &mut |_, _| {}, &AtomicBool::new(false));
    println!("{result:?}");
    ExitCode::SUCCESS
}

fn killing_the_parent_kills_everything(f: &Fixture) {
    let c = Container::new(vec![f.busybox.clone()]);
    let marker = unique_marker("parent");
    let mut spec = c.spec(&format!("sleep 1000 & sleep 1000; : {marker}"));
    spec.env.push(format!("MARKER={marker}"));
    let spec_file = c.dir.path().join("spec.json");
    fs::write(&spec_file, serde_json::to_vec(&spec).unwrap()).unwrap();

    let mut parent = Command::new(std::env::current_exe().unwrap())
        .arg(PARENT_ARG)
        .arg(&spec_file)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    struct Reap<'a>(&'a mut std::process::Child);
    impl Drop for Reap<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let parent_pid = parent.id();
    let parent = Reap(&mut parent);
    let init_marker = format!("BERTH_SANDBOX_PARENT_PID={parent_pid}\0");
    let deadline = Instant::now() + Duration::from_secs(10);
    while processes_with(&marker).len() < 2 {
        assert!(Instant::now() < deadline, "the sandbox did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(processes_with(&init_marker).len(), 2, "the init and PID 1");

    rustix::process::kill_process(
        rustix::process::Pid::from_raw(parent_pid as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    drop(parent);
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let left: Vec<u32> = processes_with(&marker)
            .into_iter()
            .chain(processes_with(&init_marker))
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "still running: {left:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo.contains(c.upper.to_str().unwrap()),
        "{mountinfo}"
    );
}
