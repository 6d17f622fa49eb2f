//! A real OCI registry for tests: Debian's `docker-registry` (distribution
//! v2.8), one private instance per test on a loopback port, plus a small
//! std-only HTTP/1.1 client so tests can check what the registry holds
//! independently of berth's own registry code.
//!
//! ```ignore
//! let Some(reg) = Registry::start() else { return }; // skipped: not installed
//! let digest = reg.push_blob("t/app", b"layer bytes");
//! // ... run `berth push/pull` against reg.addr() ...
//! reg.assert_no_blob_uploaded_twice();
//! ```
//!
//! When `docker-registry` (or `htpasswd`, for auth) is missing, the
//! constructors fail the test if `CI` is set and otherwise print
//! `SKIPPED <test>: ...` to stderr and return `None`, like
//! tests/build_interop.rs does for dockerd and skopeo.
//!
//! Upload accounting reads the registry's access log (its stdout, kept in
//! `access.log` in the registry's temp dir); see [`Registry::access_log`]
//! for the format and [`Registry::blob_events`] for what counts as an
//! upload or a mount.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use self::http::Response;

/// How long a registry may take to answer `GET /v2/` after being spawned.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Timeout of the helpers' own requests: generous, they talk to loopback.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Attempts at the free-port race (another process binding the port between
/// our probe and the registry's bind).
const PORT_ATTEMPTS: usize = 5;

/// A running `docker-registry serve` with private storage. Dropping it kills
/// and reaps the process, then removes its directory (also when the test
/// panics, as the value is dropped during unwinding).
///
/// The child is started with `PR_SET_PDEATHSIG`: if the test binary dies
/// without unwinding (killed on a timeout), the registry dies too instead of
/// lingering. That signal fires when the *thread* that started the registry
/// exits, so start it on the test's own thread, not on a helper thread that
/// ends earlier, and do not share one registry between tests.
pub struct Registry {
    child: Child,
    addr: String,
    credentials: Option<(String, String)>,
    /// Declared last: removed after `Drop::drop` has killed the process.
    dir: tempfile::TempDir,
}

/// One line of the registry's access log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessLogEntry {
    pub method: String,
    /// The request target as the client sent it (path and query).
    pub target: String,
    pub status: u16,
}

/// What a blob-related request did, as read from the access log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobEventKind {
    /// The request that completes an upload: `PUT
    /// /v2/<repo>/blobs/uploads/<uuid>?...&digest=<d>` (or a single-request
    /// `POST /v2/<repo>/blobs/uploads/?digest=<d>`). PATCH chunks before it
    /// are not events of their own.
    Upload,
    /// A cross-repository mount attempt: `POST
    /// /v2/<repo>/blobs/uploads/?mount=<d>&from=<other>`. Status 201 means
    /// mounted; 202 means the registry opened an upload session instead.
    Mount,
}

/// An upload or mount request and how the registry answered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobEvent {
    pub kind: BlobEventKind,
    pub repo: String,
    pub digest: String,
    pub status: u16,
}

impl BlobEvent {
    /// 201 Created: the upload was stored / the blob was mounted.
    pub fn succeeded(&self) -> bool {
        self.status == 201
    }
}

impl Registry {
    /// Starts a registry without authentication. `None` means the test should
    /// return early (skipped: `docker-registry` is not installed and `CI` is
    /// not set); a registry that is installed but fails to start panics with
    /// the tail of its log.
    pub fn start() -> Option<Registry> {
        Registry::launch(None)
    }

    /// Starts a registry that requires HTTP basic auth (an htpasswd file with
    /// a bcrypt hash of `password`, made by `htpasswd -Bbn`). `None` as for
    /// [`Registry::start`] (also when `htpasswd` is missing).
    pub fn start_with_basic_auth(user: &str, password: &str) -> Option<Registry> {
        Registry::launch(Some((user.to_owned(), password.to_owned())))
    }

    fn launch(credentials: Option<(String, String)>) -> Option<Registry> {
        let Some(program) = find_program("docker-registry") else {
            return unavailable(
                "`docker-registry` is not installed (Debian package: docker-registry)",
            );
        };
        let dir = tempfile::Builder::new()
            .prefix("berth-registry-")
            .tempdir()
            .expect("create the registry's temp dir");
        let auth_section = match &credentials {
            None => String::new(),
            Some((user, password)) => {
                let Some(htpasswd) = find_program("htpasswd") else {
                    return unavailable(
                        "`htpasswd` is not installed (Debian package: apache2-utils)",
                    );
                };
                let file = dir.path().join("htpasswd");
                write_htpasswd(&htpasswd, user, password, &file);
                format!(
                    "auth:\n  htpasswd:\n    realm: \"berth-test\"\n    path: {}\n",
                    yaml_str(&file.to_string_lossy())
                )
            }
        };

        let (child, addr) = start_on_free_port(
            &program,
            dir.path(),
            "docker-registry",
            wait_ready,
            |addr| config_yaml(dir.path(), addr, &auth_section),
        );
        Some(Registry {
            child,
            addr,
            credentials,
            dir,
        })
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        self.addr.clone()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The basic-auth user and password, if the registry requires them.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// The registry's private directory (config, logs, `data/` storage).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process id, e.g. to check that `Drop` reaped it.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The registry's own log (its stderr: logrus `time=... level=... msg=...`).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    /// The access log (its stdout: one Apache combined-format line per request).
    pub fn access_log_path(&self) -> PathBuf {
        self.dir.path().join("access.log")
    }

    /// The last `lines` lines of both logs, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(self.dir.path(), lines)
    }

    /// `GET path` with the registry's own credentials (if any). Panics on an
    /// I/O error; any HTTP status is returned.
    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], b"")
    }

    /// `GET path` with explicit basic-auth credentials (`None`: anonymous).
    pub fn get_as(&self, path: &str, auth: Option<(&str, &str)>) -> Response {
        self.request_as("GET", path, &[], b"", auth)
    }

    /// Any request, with the registry's own credentials (if any).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        self.request_as(method, path, headers, body, self.credentials())
    }

    /// Any request with explicit basic-auth credentials (`None`: anonymous).
    pub fn request_as(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        auth: Option<(&str, &str)>,
    ) -> Response {
        let authorization = auth.map(|(u, p)| http::basic_auth(u, p));
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if let Some(a) = &authorization {
            all.push(("Authorization", a));
        }
        http::request(&self.addr, method, path, &all, body, REQUEST_TIMEOUT).unwrap_or_else(|e| {
            panic!(
                "{method} {path} to the registry at {}: {e}\nlog tail:\n{}",
                self.addr,
                self.log_tail(20)
            )
        })
    }

    /// Uploads `data` to `repo` directly (not through berth), monolithically,
    /// and returns its digest. Panics unless the registry answers 201.
    pub fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        upload_blob(&self.addr, repo, data, self.credentials())
            .unwrap_or_else(|e| panic!("{e}\nlog tail:\n{}", self.log_tail(20)))
    }

    /// Puts a manifest (or index) under `reference` (a tag or digest) and
    /// returns its digest. Panics unless the registry answers 201.
    pub fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> String {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let resp = self.request("PUT", &path, &[("Content-Type", media_type)], body);
        assert_eq!(
            resp.status,
            201,
            "PUT {path}: {}\nlog tail:\n{}",
            resp.text(),
            self.log_tail(20)
        );
        sha256_digest(body)
    }

    /// Every request the registry has logged so far, oldest first.
    ///
    /// The access log is gorilla/handlers' Apache combined format, e.g.
    ///
    /// ```text
    /// 127.0.0.1 - - [23/Nov/2026:04:10:30 +0000] "PUT /v2/t/a/blobs/uploads/<uuid>?_state=...&digest=sha256:2cf2... HTTP/1.1" 201 0 "" "curl/7.88.1"
    /// ```
    ///
    /// It is written by the outermost handler after the request has been
    /// handled and before Go flushes a small response, so a request whose
    /// (bodiless) response the client has received is already in the log.
    /// The user field stays `-` even with basic auth.
    pub fn access_log(&self) -> Vec<AccessLogEntry> {
        let text = fs::read_to_string(self.access_log_path()).unwrap_or_default();
        text.lines().filter_map(parse_access_line).collect()
    }

    /// Blob uploads and mount attempts, oldest first, failed ones included
    /// (a PUT whose body was cut or whose digest did not match is logged
    /// with status 400 and is not [`BlobEvent::succeeded`]).
    pub fn blob_events(&self) -> Vec<BlobEvent> {
        self.access_log().iter().filter_map(blob_event).collect()
    }

    /// Completed (201) blob uploads, in every repository.
    pub fn blob_upload_count(&self) -> usize {
        self.blob_events()
            .iter()
            .filter(|e| e.kind == BlobEventKind::Upload && e.succeeded())
            .count()
    }

    /// Successful (201) cross-repository mounts.
    pub fn blob_mount_count(&self) -> usize {
        self.blob_events()
            .iter()
            .filter(|e| e.kind == BlobEventKind::Mount && e.succeeded())
            .count()
    }

    /// Completed uploads per digest, over all repositories.
    pub fn blob_uploads_by_digest(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for e in self.blob_events() {
            if e.kind == BlobEventKind::Upload && e.succeeded() {
                *out.entry(e.digest).or_insert(0) += 1;
            }
        }
        out
    }

    /// Panics, listing them, if any blob's upload completed more than once
    /// (in the same or in different repositories: a second repository should
    /// get a mount, not another upload).
    pub fn assert_no_blob_uploaded_twice(&self) {
        let twice: Vec<String> = self
            .blob_uploads_by_digest()
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(d, n)| format!("{d} uploaded {n} times"))
            .collect();
        assert!(
            twice.is_empty(),
            "blobs uploaded more than once:\n{}\nall blob events: {:#?}",
            twice.join("\n"),
            self.blob_events()
        );
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // SIGKILL: the storage is thrown away, so a clean shutdown buys
        // nothing. Errors mean it already exited; wait() reaps it either way.
        let _ = self.child.kill();
        if let Err(e) = self.child.wait() {
            eprintln!(
                "warning: cannot reap docker-registry {}: {e}",
                self.child.id()
            );
        }
    }
}

/// The environment cannot run the test: fail under CI, else skip with a
/// message on the real stderr (libtest captures `eprintln!` of passing
/// tests, and a skip should be seen). The test's name is its thread's name.
/// Skips the calling test (`None`) or, under CI, fails it: the machine
/// lacks what the fixture needs.
pub(crate) fn unavailable<T>(why: &str) -> Option<T> {
    let current = std::thread::current();
    let test = current.name().unwrap_or("test");
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("{test}: {why} (CI is set, so this is an error, not a skip)");
    }
    let _ = writeln!(
        io::stderr(),
        "SKIPPED {test}: {why} (set CI=1 to make this a failure)"
    );
    None
}

pub(crate) fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn write_htpasswd(htpasswd: &Path, user: &str, password: &str, file: &Path) {
    // -B bcrypt (the only hash distribution accepts), -b password from argv,
    // -n print instead of editing a file.
    let out = Command::new(htpasswd)
        .args(["-Bbn", user, password])
        .output()
        .expect("run htpasswd");
    assert!(
        out.status.success(),
        "htpasswd -Bbn failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    fs::write(file, &out.stdout).expect("write the htpasswd file");
}

/// A port that was free a moment ago (the registry binds it itself, hence
/// the retry in `launch`).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0 to find a free port")
        .port()
}

/// A YAML double-quoted scalar.
pub(crate) fn yaml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn config_yaml(dir: &Path, addr: &str, auth_section: &str) -> String {
    let data = dir.join("data");
    // - a fixed http.secret silences the "No HTTP secret provided" warning;
    // - upload purging off: no background deletes while a test runs;
    // - no blob descriptor cache, so deletes are seen at once.
    format!(
        "version: 0.1\n\
         log:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: false\n\
         storage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\n  \
         maintenance:\n    uploadpurging:\n      enabled: false\n\
         http:\n  addr: {addr}\n  secret: \"berth-test-registry-secret\"\n\
         {auth_section}",
        data = yaml_str(&data.to_string_lossy()),
        addr = yaml_str(addr),
    )
}

/// Starts `program serve config.yml` in `dir` on a free loopback port,
/// with the config `config_for(addr)` gives, until `ready` says it serves.
/// A lost race for the port is retried; any other failure panics with the
/// config and the logs. `what` names the registry in that message.
pub(crate) fn start_on_free_port(
    program: &Path,
    dir: &Path,
    what: &str,
    ready: fn(&mut Child, &str) -> Result<(), String>,
    config_for: impl Fn(&str) -> String,
) -> (Child, String) {
    for attempt in 1..=PORT_ATTEMPTS {
        let addr = format!("127.0.0.1:{}", free_port());
        let config = dir.join("config.yml");
        fs::write(&config, config_for(&addr)).expect("write the registry's config.yml");
        let mut child = spawn(program, &config, dir);
        match ready(&mut child, &addr) {
            Ok(()) => return (child, addr),
            Err(why) => {
                let _ = child.kill();
                let _ = child.wait();
                let log = log_tail(dir, 40);
                // Lost the race for the port: someone bound it between
                // free_port() and the registry's own bind. Try another.
                if log.contains("address already in use") && attempt < PORT_ATTEMPTS {
                    continue;
                }
                panic!(
                    "{what} did not start on {addr}: {why}\n\
                     config:\n{}\nlog tail:\n{log}",
                    fs::read_to_string(&config).unwrap_or_default()
                );
            }
        }
    }
    unreachable!("the last attempt returns or panics")
}

pub(crate) fn spawn(program: &Path, config: &Path, dir: &Path) -> Child {
    let stdout = File::create(dir.join("access.log")).expect("create access.log");
    let stderr = File::create(dir.join("registry.log")).expect("create registry.log");
    let mut cmd = Command::new(program);
    cmd.arg("serve")
        .arg(config)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    // REGISTRY_* variables override the config file (e.g. REGISTRY_HTTP_ADDR).
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("REGISTRY_") {
            cmd.env_remove(key);
        }
    }
    // SAFETY: prctl is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
        .unwrap_or_else(|e| panic!("spawn {} serve: {e}", program.display()))
}

/// Polls `GET /v2/` until it answers 200 or 401 (auth enabled).
fn wait_ready(child: &mut Child, addr: &str) -> Result<(), String> {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| format!("wait: {e}"))? {
            return Err(format!("it exited with {status}"));
        }
        match http::request(addr, "GET", "/v2/", &[], b"", Duration::from_secs(2)) {
            Ok(r) if r.status == 200 || r.status == 401 => return Ok(()),
            Ok(r) => return Err(format!("GET /v2/ answered {}: {}", r.status, r.text())),
            // Not listening yet.
            Err(_) => {}
        }
        if Instant::now() > deadline {
            return Err(format!("no answer to GET /v2/ within {STARTUP_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn log_tail(dir: &Path, lines: usize) -> String {
    let mut out = String::new();
    for name in ["registry.log", "access.log"] {
        let text = fs::read_to_string(dir.join(name)).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        out.push_str(&format!("--- {name} ---\n"));
        for l in &all[all.len().saturating_sub(lines)..] {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

/// `IP - USER [DATE] "METHOD TARGET PROTO" STATUS BYTES "REFERER" "UA"`.
fn parse_access_line(line: &str) -> Option<AccessLogEntry> {
    let (_, rest) = line.split_once(" \"")?;
    let (request, rest) = rest.split_once("\" ")?;
    let mut parts = request.split(' ');
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let status = rest.split(' ').next()?.parse().ok()?;
    Some(AccessLogEntry {
        method,
        target,
        status,
    })
}

fn blob_event(e: &AccessLogEntry) -> Option<BlobEvent> {
    let (path, query) = e.target.split_once('?').unwrap_or((&e.target, ""));
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .map(percent_decode)
    };
    let repo_and_rest = path.strip_prefix("/v2/")?;
    let (repo, after) = repo_and_rest.split_once("/blobs/uploads/")?;
    let kind = match e.method.as_str() {
        // PUT .../blobs/uploads/<uuid>?digest=: the final request of an upload.
        "PUT" if !after.is_empty() => BlobEventKind::Upload,
        "POST" if after.is_empty() && param("mount").is_some() => BlobEventKind::Mount,
        "POST" if after.is_empty() && param("digest").is_some() => BlobEventKind::Upload,
        _ => return None,
    };
    let digest = match kind {
        BlobEventKind::Mount => param("mount"),
        BlobEventKind::Upload => param("digest"),
    }
    .unwrap_or_default();
    Some(BlobEvent {
        kind,
        repo: repo.to_owned(),
        digest,
        status: e.status,
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Uploads `data` to `repo` at `addr` (a registry or a proxy in front of
/// one) the simplest spec way, POST then a single PUT `?digest=`, and
/// returns the digest. `Err` describes the failed step (status and body, or
/// the I/O error).
pub fn upload_blob(
    addr: &str,
    repo: &str,
    data: &[u8],
    auth: Option<(&str, &str)>,
) -> Result<String, String> {
    let digest = sha256_digest(data);
    let authorization = auth.map(|(u, p)| http::basic_auth(u, p));
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if let Some(a) = &authorization {
        headers.push(("Authorization", a));
    }
    let start_path = format!("/v2/{repo}/blobs/uploads/");
    let start = http::request(addr, "POST", &start_path, &headers, b"", REQUEST_TIMEOUT)
        .map_err(|e| format!("POST {start_path} via {addr}: {e}"))?;
    if start.status != 202 {
        return Err(format!(
            "POST {start_path} via {addr}: {} {}",
            start.status,
            start.text()
        ));
    }
    let location = start
        .header("location")
        .ok_or_else(|| format!("POST {start_path}: 202 without a Location header"))?;
    let target = http::origin_form(location);
    let sep = if target.contains('?') { '&' } else { '?' };
    let put_path = format!("{target}{sep}digest={digest}");
    headers.push(("Content-Type", "application/octet-stream"));
    let put = http::request(addr, "PUT", &put_path, &headers, data, REQUEST_TIMEOUT)
        .map_err(|e| format!("PUT {put_path} via {addr}: {e}"))?;
    if put.status != 201 {
        return Err(format!(
            "PUT {put_path} via {addr}: {} {}",
            put.status,
            put.text()
        ));
    }
    Ok(digest)
}

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    let mut s = String::from("sha256:");
    for b in sha256(data) {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// SHA-256 (FIPS 180-4), so tests can compute digests without a crypto
/// crate among the test dependencies. Checked against `sha256sum` and by the
/// registry itself, which rejects uploads whose digest does not match.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let compress = |h: &mut [u32; 8], block: &[u8]| {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = *h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, v) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(v);
        }
    };
    let mut blocks = data.chunks_exact(64);
    for block in &mut blocks {
        compress(&mut h, block);
    }
    // Padding: 0x80, zeros, then the bit length in the last 8 bytes of the
    // last block (one more block when fewer than 9 bytes are left).
    let rem = blocks.remainder();
    let mut tail = [0u8; 128];
    tail[..rem.len()].copy_from_slice(rem);
    tail[rem.len()] = 0x80;
    let tail_len = if rem.len() < 56 { 64 } else { 128 };
    let bits = (data.len() as u64).wrapping_mul(8);
    tail[tail_len - 8..tail_len].copy_from_slice(&bits.to_be_bytes());
    for block in tail[..tail_len].chunks_exact(64) {
        compress(&mut h, block);
    }
    let mut out = [0u8; 32];
    for (o, v) in out.chunks_exact_mut(4).zip(h) {
        o.copy_from_slice(&v.to_be_bytes());
    }
    out
}

/// A minimal HTTP/1.1 client and the message framing it shares with
/// [`super::fault_proxy`]: one request per connection (`Connection: close`),
/// Content-Length, chunked and close-delimited bodies.
pub mod http {
    use std::io::{self, BufRead, BufReader, Read, Write};
    use std::net::{TcpStream, ToSocketAddrs};
    use std::time::Duration;

    /// Largest request or response head accepted, against runaway peers.
    const MAX_HEAD: usize = 64 * 1024;

    /// A response as read by [`request`].
    #[derive(Clone, Debug)]
    pub struct Response {
        pub status: u16,
        /// In received order, names as sent.
        pub headers: Vec<(String, String)>,
        /// Decoded (de-chunked) body; what arrived, if `complete` is false.
        pub body: Vec<u8>,
        /// False when the connection ended before the body did (short
        /// Content-Length body, chunked body without its last chunk).
        pub complete: bool,
    }

    impl Response {
        /// The first header named `name` (case-insensitive).
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }

        /// The body as (lossy) UTF-8, for messages.
        pub fn text(&self) -> String {
            String::from_utf8_lossy(&self.body).into_owned()
        }
    }

    /// Sends one request to `addr` on a new connection and reads the
    /// response. `target` is origin-form (`/v2/...?...`); `Host`,
    /// `Content-Length` (unless `headers` has `Transfer-Encoding`, in which
    /// case `body` is sent as given) and `Connection: close` are added.
    /// `timeout` bounds connecting and each read/write.
    ///
    /// `Err` for I/O errors, timeouts (`WouldBlock`/`TimedOut`) and a
    /// connection closed before a complete response head; a body cut short
    /// is `Ok` with `complete: false`.
    pub fn request(
        addr: &str,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout: Duration,
    ) -> io::Result<Response> {
        let sock = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?;
        let mut stream = TcpStream::connect_timeout(&sock, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        let chunked = headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("transfer-encoding"));
        if !chunked && (!body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH")) {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("Connection: close\r\n\r\n");
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        stream.flush()?;

        let mut reader = BufReader::new(stream);
        // Interim 1xx responses (e.g. 100 Continue) precede the real one.
        let (status, head) = loop {
            let head = read_head(&mut reader)?.ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed before a response",
                )
            })?;
            let status = head.status()?;
            if !(100..200).contains(&status) {
                break (status, head);
            }
        };
        let mut body = Vec::new();
        let complete = match response_body(method, status, &head)? {
            Body::Empty => true,
            Body::Length(n) => {
                (&mut reader).take(n).read_to_end(&mut body)?;
                body.len() as u64 == n
            }
            Body::Chunked => read_chunked(&mut reader, &mut body)?,
            Body::UntilClose => {
                reader.read_to_end(&mut body)?;
                true
            }
        };
        Ok(Response {
            status,
            headers: head.headers,
            body,
            complete,
        })
    }

    /// Decodes a chunked body into `out`; false if the stream ended early.
    fn read_chunked(r: &mut impl BufRead, out: &mut Vec<u8>) -> io::Result<bool> {
        loop {
            let Some(line) = read_line(r)? else {
                return Ok(false);
            };
            let size = chunk_size(&line)?;
            if size == 0 {
                // Trailers up to the empty line.
                loop {
                    match read_line(r)? {
                        None => return Ok(false),
                        Some(l) if l.is_empty() => return Ok(true),
                        Some(_) => {}
                    }
                }
            }
            let before = out.len() as u64;
            r.take(size).read_to_end(out)?;
            if out.len() as u64 - before != size {
                return Ok(false);
            }
            match read_line(r)? {
                Some(l) if l.is_empty() => {}
                None => return Ok(false),
                Some(l) => {
                    return Err(invalid(format!("chunk not followed by CRLF: {l:?}")));
                }
            }
        }
    }

    /// `Authorization` header value for basic auth.
    pub fn basic_auth(user: &str, password: &str) -> String {
        format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
    }

    /// Standard base64 with padding (RFC 4648 §4).
    pub fn base64(data: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
        for chunk in data.chunks(3) {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            // n chars carry data for n-1 input bytes; the rest is padding.
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    /// The origin-form (`/path?query`) of an absolute URL such as a
    /// registry's `Location`; a relative reference is returned as is.
    pub fn origin_form(url: &str) -> String {
        match url.split_once("://") {
            Some((_, rest)) => match rest.find('/') {
                Some(i) => rest[i..].to_owned(),
                None => "/".to_owned(),
            },
            None => url.to_owned(),
        }
    }

    /// A request or response head: the start line and the header fields.
    #[derive(Clone, Debug)]
    pub struct Head {
        pub start_line: String,
        pub headers: Vec<(String, String)>,
    }

    impl Head {
        /// The first header named `name` (case-insensitive).
        pub fn get(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }

        /// Removes every header named `name`.
        pub fn remove(&mut self, name: &str) {
            self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        }

        /// Replaces every header named `name` with one `name: value`.
        pub fn set(&mut self, name: &str, value: &str) {
            self.remove(name);
            self.headers.push((name.to_owned(), value.to_owned()));
        }

        /// A response's status code.
        pub fn status(&self) -> io::Result<u16> {
            self.start_line
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| invalid(format!("bad status line {:?}", self.start_line)))
        }

        /// A request's method and target.
        pub fn method_and_target(&self) -> io::Result<(String, String)> {
            let mut parts = self.start_line.split(' ');
            match (parts.next(), parts.next()) {
                (Some(m), Some(t)) if !m.is_empty() => Ok((m.to_owned(), t.to_owned())),
                _ => Err(invalid(format!("bad request line {:?}", self.start_line))),
            }
        }

        /// The head as sent on the wire, empty line included.
        pub fn to_bytes(&self) -> Vec<u8> {
            let mut s = format!("{}\r\n", self.start_line);
            for (k, v) in &self.headers {
                s.push_str(&format!("{k}: {v}\r\n"));
            }
            s.push_str("\r\n");
            s.into_bytes()
        }
    }

    /// How a message body is delimited (RFC 9112 §6.3).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Body {
        Empty,
        Length(u64),
        Chunked,
        UntilClose,
    }

    fn framing(head: &Head) -> io::Result<Option<Body>> {
        if let Some(te) = head.get("transfer-encoding") {
            // Chunked must be the final coding; anything else is delimited
            // by closing, which requests cannot use.
            let last = te.rsplit(',').next().unwrap_or("").trim();
            return Ok(Some(if last.eq_ignore_ascii_case("chunked") {
                Body::Chunked
            } else {
                Body::UntilClose
            }));
        }
        match head.get("content-length") {
            Some(v) => {
                let n: u64 = v
                    .trim()
                    .parse()
                    .map_err(|_| invalid(format!("bad Content-Length {v:?}")))?;
                Ok(Some(if n == 0 { Body::Empty } else { Body::Length(n) }))
            }
            None => Ok(None),
        }
    }

    /// A request's body: without Content-Length or Transfer-Encoding, none.
    pub fn request_body(head: &Head) -> io::Result<Body> {
        match framing(head)? {
            Some(Body::UntilClose) => Err(invalid("request with a non-chunked transfer coding")),
            Some(b) => Ok(b),
            None => Ok(Body::Empty),
        }
    }

    /// A response's body: none for HEAD, 1xx, 204 and 304 whatever the
    /// headers say; else framed by its headers, or by closing.
    pub fn response_body(method: &str, status: u16, head: &Head) -> io::Result<Body> {
        if method.eq_ignore_ascii_case("HEAD")
            || (100..200).contains(&status)
            || status == 204
            || status == 304
        {
            return Ok(Body::Empty);
        }
        Ok(framing(head)?.unwrap_or(Body::UntilClose))
    }

    /// Reads a head up to its empty line. `Ok(None)` if the stream ended
    /// before its first byte (a peer that closed without sending anything).
    pub fn read_head(r: &mut impl BufRead) -> io::Result<Option<Head>> {
        let mut total = 0;
        let start_line = loop {
            match read_line(r)? {
                None => return Ok(None),
                // Tolerated before a request line (RFC 9112 §2.2).
                Some(l) if l.is_empty() => total += 2,
                Some(l) => break l,
            }
        };
        total += start_line.len();
        let mut headers = Vec::new();
        loop {
            let line = read_line(r)?
                .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "head cut short"))?;
            total += line.len() + 2;
            if total > MAX_HEAD {
                return Err(invalid("head larger than 64 KiB"));
            }
            if line.is_empty() {
                return Ok(Some(Head {
                    start_line,
                    headers,
                }));
            }
            let (k, v) = line
                .split_once(':')
                .ok_or_else(|| invalid(format!("bad header line {line:?}")))?;
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }

    /// One CRLF- (or LF-) terminated line without its terminator; `None` at
    /// end of stream before any byte.
    pub fn read_line(r: &mut impl BufRead) -> io::Result<Option<String>> {
        let mut buf = Vec::new();
        let n = r.take(MAX_HEAD as u64 + 1).read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        if buf.last() != Some(&b'\n') {
            return Err(if n > MAX_HEAD {
                invalid("line longer than 64 KiB")
            } else {
                io::Error::new(io::ErrorKind::UnexpectedEof, "line cut short")
            });
        }
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        String::from_utf8(buf)
            .map(Some)
            .map_err(|_| invalid("line is not UTF-8"))
    }

    /// The size in a chunk-size line (`1a2b;ext=1`).
    pub fn chunk_size(line: &str) -> io::Result<u64> {
        let hex = line.split(';').next().unwrap_or("").trim();
        u64::from_str_radix(hex, 16).map_err(|_| invalid(format!("bad chunk size line {line:?}")))
    }

    pub fn invalid(msg: impl Into<String>) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, msg.into())
    }
}
