//! A real registry behind bearer-token authentication, for tests: Debian's
//! `docker-registry` (distribution v2.8) configured with `auth: token`, and
//! a small token server (std only, here) that trades HTTP basic credentials
//! for JWTs the registry accepts.
//!
//! ```ignore
//! let Some(reg) = TokenRegistry::start("alice", "s3cret") else { return }; // skipped
//! // ... `berth login/push/pull` against reg.addr() ...
//! assert!(reg.token_requests() <= 4, "{:#?}", reg.token_request_log());
//! ```
//!
//! The token server listens on its own loopback port and answers
//! `GET /token?service=…&scope=…` (the registry's `realm`):
//!
//! - without the right basic credentials: 401 with a `Basic` challenge;
//! - with them: 200 `{"token", "access_token", "expires_in": 300,
//!   "issued_at"}`, the token granting every action of every `scope`
//!   requested (`repository:NAME:ACTIONS`).
//!
//! Tokens are RS256 JWTs signed by `openssl dgst -sha256 -sign` with a key
//! made once per fixture (`openssl req -x509 -newkey rsa:2048`). The header
//! carries the self-signed certificate in `x5c`, which distribution v2.8
//! verifies against `rootcertbundle` (the same certificate) before checking
//! the signature with the certificate's key; no `kid` is needed. The claims
//! are `iss` (the registry's configured issuer), `sub` (the user), `aud`
//! (the requested `service`, a plain string: v2.8's claim set has
//! `Audience string`), `exp`, `nbf`, `iat`, `jti` and `access`.
//!
//! When `docker-registry` or `openssl` is missing, [`TokenRegistry::start`]
//! fails the test if `CI` is set and otherwise prints `SKIPPED <test>: ...`
//! to stderr and returns `None`, like tests/support/registry.rs.

use std::fs;
use std::io::{self, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::registry::http::{self, Response};
use super::registry::{find_program, log_tail, start_on_free_port, unavailable, yaml_str};

/// The registry's `auth.token.service`: the `service` it names in its
/// challenges and the `aud` tokens must carry.
pub const SERVICE: &str = "berth-test-registry";
/// The registry's `auth.token.issuer`: the `iss` tokens must carry.
pub const ISSUER: &str = "berth-test-issuer";
/// `expires_in` of every token, in seconds.
pub const TOKEN_LIFETIME: u64 = 300;

/// How long the registry may take to answer `GET /v2/` after being spawned.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Timeout of the fixture's own requests, and of the token server's reads.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One request the token server received (credentials are never kept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The decoded `service` parameter.
    pub service: Option<String>,
    /// Every decoded `scope` parameter, in order.
    pub scopes: Vec<String>,
    /// The decoded `client_id` parameter.
    pub client_id: Option<String>,
    /// The request had an `Authorization` header at all.
    pub sent_credentials: bool,
    /// It had the right basic credentials (so it was answered with a token).
    pub authorized: bool,
    /// The status the token server answered with.
    pub status: u16,
    /// The token it issued (200 only), so tests can check it never shows.
    pub token: Option<String>,
}

/// A running `docker-registry serve` with token auth and its token server.
/// Dropping it kills and reaps the registry, stops the token server and
/// removes the temp dir (also when the test panics). As with
/// [`super::registry::Registry`], start it on the test's own thread: the
/// registry gets `PR_SET_PDEATHSIG` tied to the starting thread.
pub struct TokenRegistry {
    child: Child,
    addr: String,
    user: String,
    password: String,
    server: TokenServer,
    /// Declared last: removed after `Drop::drop` has killed the process.
    dir: tempfile::TempDir,
}

impl TokenRegistry {
    /// Starts a token server that accepts `user`:`password` and a registry
    /// that trusts it. `None`: the test should return early (skipped, since
    /// `docker-registry` or `openssl` is missing and `CI` is not set).
    /// Panics, with the registry's log, if it is installed but fails.
    pub fn start(user: &str, password: &str) -> Option<TokenRegistry> {
        let Some(registry) = find_program("docker-registry") else {
            return unavailable(
                "`docker-registry` is not installed (Debian package: docker-registry)",
            );
        };
        let Some(openssl) = find_program("openssl") else {
            return unavailable("`openssl` is not installed (Debian package: openssl)");
        };
        let dir = tempfile::Builder::new()
            .prefix("berth-token-registry-")
            .tempdir()
            .expect("create the token registry's temp dir");
        let signer = Signer::generate(&openssl, dir.path());
        let server = TokenServer::start(user, password, signer);

        let cert = dir.path().join("cert.pem");
        let (child, addr) = start_on_free_port(
            &registry,
            dir.path(),
            "docker-registry (token auth)",
            wait_ready,
            |addr| config_yaml(dir.path(), addr, &server.realm(), &cert),
        );
        Some(TokenRegistry {
            child,
            addr,
            user: user.to_owned(),
            password: password.to_owned(),
            server,
            dir,
        })
    }

    /// The registry, `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        self.addr.clone()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The token server, `127.0.0.1:PORT`.
    pub fn token_addr(&self) -> String {
        self.server.addr.clone()
    }

    /// The registry's `realm`: `http://127.0.0.1:PORT/token`.
    pub fn realm(&self) -> String {
        self.server.realm()
    }

    /// The user and password the token server accepts.
    pub fn credentials(&self) -> (&str, &str) {
        (&self.user, &self.password)
    }

    /// The fixture's directory (config, key, certificate, logs, storage).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The registry's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last `lines` lines of the registry's log and access log.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(self.dir.path(), lines)
    }

    /// How many requests the registry has logged (its access log, one line
    /// per request, written before a bodiless response is flushed).
    pub fn registry_requests(&self) -> usize {
        fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(" HTTP/1."))
            .count()
    }

    /// How many requests the token server has received.
    pub fn token_requests(&self) -> usize {
        self.server.log.lock().expect("token log").len()
    }

    /// How many of them had the right credentials (and got a token).
    pub fn authorized_token_requests(&self) -> usize {
        self.server
            .log
            .lock()
            .expect("token log")
            .iter()
            .filter(|r| r.authorized)
            .count()
    }

    /// Every request the token server has received, oldest first.
    pub fn token_request_log(&self) -> Vec<TokenRequest> {
        self.server.log.lock().expect("token log").clone()
    }

    /// Asks the token server for a token covering `scopes` (e.g.
    /// `repository:t/app:pull,push`) as `auth` (`None`: anonymously).
    /// Returns the response as is; counted like any other token request.
    pub fn request_token(&self, scopes: &[&str], auth: Option<(&str, &str)>) -> Response {
        let mut target = format!("/token?service={}", percent_encode(SERVICE));
        for s in scopes {
            target.push_str(&format!("&scope={}", percent_encode(s)));
        }
        let authorization = auth.map(|(u, p)| http::basic_auth(u, p));
        let headers: Vec<(&str, &str)> = authorization
            .as_deref()
            .map(|a| vec![("Authorization", a)])
            .unwrap_or_default();
        http::request(
            &self.server.addr,
            "GET",
            &target,
            &headers,
            b"",
            REQUEST_TIMEOUT,
        )
        .unwrap_or_else(|e| panic!("GET {target} from the token server: {e}"))
    }

    /// A token for `scopes` with the fixture's own credentials. Panics
    /// unless the token server answers 200 with a token.
    pub fn token(&self, scopes: &[&str]) -> String {
        let r = self.request_token(scopes, Some((&self.user, &self.password)));
        assert_eq!(r.status, 200, "token request: {}", r.text());
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("token answer json");
        v["token"].as_str().expect("token in answer").to_owned()
    }

    /// `METHOD path` to the registry with `Authorization: Bearer token`
    /// (`None`: no Authorization header).
    pub fn request_with_token(&self, method: &str, path: &str, token: Option<&str>) -> Response {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer
            .as_deref()
            .map(|b| vec![("Authorization", b)])
            .unwrap_or_default();
        http::request(&self.addr, method, path, &headers, b"", REQUEST_TIMEOUT).unwrap_or_else(
            |e| {
                panic!(
                    "{method} {path} to the registry at {}: {e}\nlog tail:\n{}",
                    self.addr,
                    self.log_tail(20)
                )
            },
        )
    }
}

impl Drop for TokenRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        if let Err(e) = self.child.wait() {
            eprintln!(
                "warning: cannot reap docker-registry {}: {e}",
                self.child.id()
            );
        }
        self.server.stop();
    }
}

// ---------------------------------------------------------------------------
// The token server.

struct TokenServer {
    addr: String,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<TokenRequest>>>,
    thread: Option<JoinHandle<()>>,
}

/// What every connection thread needs.
struct ServerState {
    user: String,
    password: String,
    signer: Signer,
    log: Arc<Mutex<Vec<TokenRequest>>>,
    jti: AtomicU64,
}

impl TokenServer {
    fn start(user: &str, password: &str, signer: Signer) -> TokenServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the token server");
        let addr = listener
            .local_addr()
            .expect("token server address")
            .to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(ServerState {
            user: user.to_owned(),
            password: password.to_owned(),
            signer,
            log: Arc::clone(&log),
            jti: AtomicU64::new(0),
        });
        let stop_flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("token-server".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if stop_flag.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = conn else { continue };
                    let state = Arc::clone(&state);
                    let _ =
                        std::thread::Builder::new()
                            .name("token-conn".into())
                            .spawn(move || {
                                if let Err(e) = state.serve(stream) {
                                    eprintln!("token server: {e}");
                                }
                            });
                }
            })
            .expect("spawn the token server thread");
        TokenServer {
            addr,
            stop,
            log,
            thread: Some(thread),
        }
    }

    fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    /// Stops accepting (a last connection wakes the blocked `accept`) and
    /// joins the accept thread. Connection threads finish on their own.
    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(
            &self.addr.parse().expect("token server address"),
            Duration::from_secs(2),
        );
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl ServerState {
    /// One request, one response, then the connection closes.
    fn serve(&self, stream: TcpStream) -> io::Result<()> {
        stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
        stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let Some(head) = http::read_head(&mut reader)? else {
            return Ok(()); // The stop() wake-up, or a probe.
        };
        let (method, target) = head.method_and_target()?;
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let params: Vec<(String, String)> = query
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (form_decode(k), form_decode(v))
            })
            .collect();
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let scopes: Vec<String> = params
            .iter()
            .filter(|(k, _)| k == "scope")
            .flat_map(|(_, v)| v.split(' ').map(str::to_owned).collect::<Vec<_>>())
            .filter(|s| !s.is_empty())
            .collect();
        let service = param("service");
        let authorization = head.get("authorization");
        let authorized = authorization.is_some_and(|a| self.is_valid_basic(a));

        let (status, body, token) = if method != "GET" || path != "/token" {
            (404, r#"{"error":"not found"}"#.to_owned(), None)
        } else if !authorized {
            (401, r#"{"error":"invalid credentials"}"#.to_owned(), None)
        } else {
            let (body, token) = self.token_answer(service.as_deref(), &scopes);
            (200, body, Some(token))
        };
        self.log.lock().expect("token log").push(TokenRequest {
            method,
            path: path.to_owned(),
            service,
            scopes,
            client_id: param("client_id"),
            sent_credentials: authorization.is_some(),
            authorized,
            status,
            token,
        });

        let reason = match status {
            200 => "OK",
            401 => "Unauthorized",
            _ => "Not Found",
        };
        let mut out = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        if status == 401 {
            out.push_str("WWW-Authenticate: Basic realm=\"berth-test-token\"\r\n");
        }
        out.push_str("\r\n");
        out.push_str(&body);
        let mut stream = stream;
        stream.write_all(out.as_bytes())?;
        stream.flush()?;
        let _ = stream.shutdown(Shutdown::Write);
        Ok(())
    }

    fn is_valid_basic(&self, header: &str) -> bool {
        // base64 is canonical, so comparing encodings compares credentials.
        let expected = http::basic_auth(&self.user, &self.password);
        let expected = expected.strip_prefix("Basic ").unwrap_or(&expected);
        match header.trim().split_once(' ') {
            Some((scheme, value)) => {
                scheme.eq_ignore_ascii_case("basic") && value.trim() == expected
            }
            None => false,
        }
    }

    /// The 200 body, and the freshly signed JWT for `scopes` it holds.
    fn token_answer(&self, service: Option<&str>, scopes: &[String]) -> (String, String) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        let access: Vec<serde_json::Value> = scopes
            .iter()
            .filter_map(|s| {
                // TYPE:NAME:ACTIONS; NAME may itself hold colons (a port).
                let (kind, rest) = s.split_once(':')?;
                let (name, actions) = rest.rsplit_once(':')?;
                Some(serde_json::json!({
                    "type": kind,
                    "name": name,
                    "actions": actions.split(',').filter(|a| !a.is_empty()).collect::<Vec<_>>(),
                }))
            })
            .collect();
        let jti = format!(
            "berth-test-{}-{}",
            std::process::id(),
            self.jti.fetch_add(1, Ordering::SeqCst)
        );
        let claims = serde_json::json!({
            "iss": ISSUER,
            "sub": self.user,
            "aud": service.unwrap_or_default(),
            "exp": now + TOKEN_LIFETIME,
            "nbf": now.saturating_sub(1),
            "iat": now,
            "jti": jti,
            "access": access,
        });
        let token = self.signer.jwt(&claims);
        let body = serde_json::json!({
            "token": token,
            "access_token": token,
            "expires_in": TOKEN_LIFETIME,
            "issued_at": rfc3339(now),
        })
        .to_string();
        (body, token)
    }
}

// ---------------------------------------------------------------------------
// Signing.

/// The key (`key.pem`) and self-signed certificate (`cert.pem`) in the
/// fixture's directory, and the `openssl` that signs with them.
struct Signer {
    openssl: PathBuf,
    key: PathBuf,
    /// Standard base64 of the certificate's DER, for `x5c`.
    cert_der_base64: String,
}

impl Signer {
    fn generate(openssl: &Path, dir: &Path) -> Signer {
        let key = dir.join("key.pem");
        let cert = dir.join("cert.pem");
        let out = Command::new(openssl)
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=berth-test-token-signer"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdin(Stdio::null())
            .output()
            .expect("run openssl req");
        assert!(
            out.status.success(),
            "openssl req -x509 failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        // The PEM body is the standard base64 of the DER.
        let pem = fs::read_to_string(&cert).expect("read cert.pem");
        let cert_der_base64: String = pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .map(str::trim)
            .collect();
        Signer {
            openssl: openssl.to_owned(),
            key,
            cert_der_base64,
        }
    }

    /// `header.claims.signature`, RS256 (RSASSA-PKCS1-v1_5 with SHA-256).
    fn jwt(&self, claims: &serde_json::Value) -> String {
        let header = serde_json::json!({
            "alg": "RS256",
            "typ": "JWT",
            "x5c": [self.cert_der_base64],
        });
        let signing_input = format!(
            "{}.{}",
            base64url(header.to_string().as_bytes()),
            base64url(claims.to_string().as_bytes())
        );
        let signature = self.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", base64url(&signature))
    }

    fn sign(&self, data: &[u8]) -> Vec<u8> {
        let mut child = Command::new(&self.openssl)
            .args(["dgst", "-sha256", "-sign"])
            .arg(&self.key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run openssl dgst");
        // Small enough for the pipe buffer: write all, then read.
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(data)
            .expect("write to openssl dgst");
        let out = child.wait_with_output().expect("wait for openssl dgst");
        assert!(
            out.status.success() && !out.stdout.is_empty(),
            "openssl dgst -sign failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

/// Unpadded base64url (RFC 4648 §5), as JWS wants.
pub fn base64url(data: &[u8]) -> String {
    http::base64(data)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch (UTC).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Decodes a query component: `%XX` escapes and `+` for space.
fn form_decode(s: &str) -> String {
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
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes everything but unreserved characters.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The registry process.

fn config_yaml(dir: &Path, addr: &str, realm: &str, cert: &Path) -> String {
    let data = dir.join("data");
    format!(
        "version: 0.1\n\
         log:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: false\n\
         storage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\n  \
         maintenance:\n    uploadpurging:\n      enabled: false\n\
         http:\n  addr: {addr}\n  secret: \"berth-test-registry-secret\"\n\
         auth:\n  token:\n    realm: {realm}\n    service: {service}\n    \
         issuer: {issuer}\n    rootcertbundle: {cert}\n",
        data = yaml_str(&data.to_string_lossy()),
        addr = yaml_str(addr),
        realm = yaml_str(realm),
        service = yaml_str(SERVICE),
        issuer = yaml_str(ISSUER),
        cert = yaml_str(&cert.to_string_lossy()),
    )
}

/// Polls `GET /v2/` until it answers 401 with a Bearer challenge.
fn wait_ready(child: &mut Child, addr: &str) -> Result<(), String> {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| format!("wait: {e}"))? {
            return Err(format!("it exited with {status}"));
        }
        // An error means it is not listening yet.
        if let Ok(r) = http::request(addr, "GET", "/v2/", &[], b"", Duration::from_secs(2)) {
            let challenge = r.header("www-authenticate").unwrap_or("");
            if r.status == 401 && challenge.starts_with("Bearer ") {
                return Ok(());
            }
            return Err(format!(
                "GET /v2/ answered {} (WWW-Authenticate {challenge:?}), not 401 Bearer: {}",
                r.status,
                r.text()
            ));
        }
        if Instant::now() > deadline {
            return Err(format!("no answer to GET /v2/ within {STARTUP_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
