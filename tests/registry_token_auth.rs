//! berth against a real registry that wants bearer tokens: Debian's
//! `docker-registry` (distribution v2.8) with `auth: token`, trusting the
//! token server of tests/support/token_registry.rs. Covers `berth login`
//! (right and wrong password), push and pull with stored credentials, the
//! error without credentials, `berth logout`, how many tokens berth asks
//! for (it should cache them), and that no credential ever shows in
//! berth's output.
//!
//! The first test checks the fixture itself with plain HTTP, no berth code,
//! so a failure in the others points at berth. Tests skip (or fail under
//! `CI`) without `docker-registry` or `openssl`.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use support::registry::http;
use support::token_registry::{ISSUER, SERVICE, TokenRegistry};
use support::{Env, make_rootfs};

const USER: &str = "tokenuser";
const PASSWORD: &str = "T0ken-pa55word!";

// ---------------------------------------------------------------------------
// The fixture alone (what `curl -u user:pw REALM?...` then `curl -H
// "Authorization: Bearer ..."` would show).

#[test]
fn token_fixture_works_without_berth() {
    let Some(reg) = TokenRegistry::start(USER, PASSWORD) else {
        return;
    };

    // The registry names the realm and service.
    let anonymous = reg.request_with_token("GET", "/v2/", None);
    assert_eq!(anonymous.status, 401, "{}", anonymous.text());
    let challenge = anonymous.header("www-authenticate").unwrap_or("");
    assert_eq!(
        challenge,
        format!("Bearer realm=\"{}\",service=\"{SERVICE}\"", reg.realm())
    );

    // The token server wants the right credentials.
    let scope = "repository:t/app:pull,push";
    assert_eq!(reg.request_token(&[scope], None).status, 401);
    assert_eq!(
        reg.request_token(&[scope], Some((USER, "wrong"))).status,
        401
    );
    let ok = reg.request_token(&[scope], Some((USER, PASSWORD)));
    assert_eq!(ok.status, 200, "{}", ok.text());
    let answer: serde_json::Value = serde_json::from_slice(&ok.body).expect("json");
    let token = answer["token"].as_str().expect("token").to_owned();
    assert_eq!(answer["access_token"], answer["token"]);
    assert_eq!(answer["expires_in"], 300);
    let issued_at = answer["issued_at"].as_str().expect("issued_at");
    assert!(
        issued_at.len() == 20 && issued_at.ends_with('Z') && issued_at.as_bytes()[10] == b'T',
        "{issued_at}"
    );

    // The claims are what the registry is configured for.
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    let claims: serde_json::Value =
        serde_json::from_slice(&base64url_decode(parts[1])).expect("claims json");
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], SERVICE);
    assert_eq!(claims["sub"], USER);
    assert_eq!(
        claims["access"],
        serde_json::json!([{"type": "repository", "name": "t/app", "actions": ["pull", "push"]}])
    );
    let header: serde_json::Value =
        serde_json::from_slice(&base64url_decode(parts[0])).expect("header json");
    assert_eq!(header["alg"], "RS256");
    assert!(header["x5c"][0].is_string(), "{header}");

    // The registry accepts the token for its scope: the repository does not
    // exist yet (404 NAME_UNKNOWN), but the request got past auth.
    let tags = reg.request_with_token("GET", "/v2/t/app/tags/list", Some(&token));
    assert_eq!(
        tags.status,
        404,
        "{}\nlog tail:\n{}",
        tags.text(),
        reg.log_tail(20)
    );
    assert!(tags.text().contains("NAME_UNKNOWN"), "{}", tags.text());
    // ...and may push there: an upload session opens.
    let upload = reg.request_with_token("POST", "/v2/t/app/blobs/uploads/", Some(&token));
    assert_eq!(upload.status, 202, "{}", upload.text());
    // Base endpoint: any valid token will do.
    let base = reg.request_with_token("GET", "/v2/", Some(&token));
    assert_eq!(base.status, 200, "{}", base.text());

    // Not for another repository, and not once tampered with.
    let other = reg.request_with_token("GET", "/v2/t/other/tags/list", Some(&token));
    assert_eq!(other.status, 401, "{}", other.text());
    assert!(
        other
            .header("www-authenticate")
            .unwrap_or("")
            .contains("insufficient_scope"),
        "{:?}",
        other.headers
    );
    // (Flip the signature's first character: the last one may carry only
    // padding bits, which decoders ignore.)
    let sig_start = token.rfind('.').expect("three parts") + 1;
    let flipped = if token.as_bytes()[sig_start] == b'A' {
        "B"
    } else {
        "A"
    };
    let mut forged = token.clone();
    forged.replace_range(sig_start..=sig_start, flipped);
    let tampered = reg.request_with_token("GET", "/v2/t/app/tags/list", Some(&forged));
    assert_eq!(tampered.status, 401, "{}", tampered.text());

    // Pull-only tokens cannot push.
    let pull_only = reg.token(&["repository:t/app:pull"]);
    let denied = reg.request_with_token("POST", "/v2/t/app/blobs/uploads/", Some(&pull_only));
    assert_eq!(denied.status, 401, "{}", denied.text());

    // Every request was counted; the log keeps no credentials.
    assert_eq!(reg.token_requests(), 4);
    assert_eq!(reg.authorized_token_requests(), 2);
    let log = reg.token_request_log();
    assert_eq!(log[0].scopes, [scope]);
    assert_eq!(log[0].service.as_deref(), Some(SERVICE));
    assert!(!log[0].sent_credentials && !log[0].authorized && log[0].status == 401);
    assert!(log[1].sent_credentials && !log[1].authorized);
    assert_eq!(log[2].token.as_deref(), Some(token.as_str()));
    assert!(!format!("{log:?}").contains(PASSWORD));

    // Drop stops everything and cleans up.
    let pid = reg.pid();
    let dir = reg.dir().to_path_buf();
    let token_addr = reg.token_addr();
    drop(reg);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "registry {pid} lives"
    );
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(
        std::net::TcpStream::connect(&token_addr).is_err(),
        "token server still listening on {token_addr}"
    );
}

fn base64url_decode(s: &str) -> Vec<u8> {
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => panic!("not base64url: {s}"),
        };
        bits = (bits << 6) | u32::from(v);
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// berth against it.

/// What one berth command did.
struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Out {
    fn show(&self) -> String {
        format!("stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr)
    }
}

/// Runs berth commands with one store and one `DOCKER_CONFIG`, keeping
/// everything they print for [`assert_never_printed`].
struct Session<'a> {
    env: &'a Env,
    docker_config: &'a Path,
    transcript: &'a std::cell::RefCell<Vec<String>>,
}

impl Session<'_> {
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Out {
        let mut cmd = self.env.berth();
        cmd.args(args)
            .env("DOCKER_CONFIG", self.docker_config)
            .env_remove("RUST_LOG")
            .env_remove("BERTH_CONFIG")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run berth");
        if let Some(text) = stdin {
            let mut pipe = child.stdin.take().expect("stdin");
            pipe.write_all(text.as_bytes())
                .expect("write berth's stdin");
        }
        let out = child.wait_with_output().expect("wait for berth");
        let out = Out {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        let mut t = self.transcript.borrow_mut();
        t.push(out.stdout.clone());
        t.push(out.stderr.clone());
        out
    }

    fn run_ok(&self, args: &[&str], stdin: Option<&str>) -> Out {
        let out = self.run(args, stdin);
        assert!(out.ok, "berth {args:?} failed:\n{}", out.show());
        out
    }

    fn login(&self, addr: &str, password: &str) -> Out {
        self.run(
            &["login", addr, "-u", USER, "--password-stdin"],
            Some(&format!("{password}\n")),
        )
    }
}

/// Panics if any of `secrets` shows anywhere in `transcript`.
fn assert_never_printed(transcript: &[String], secrets: &[String]) {
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        for text in transcript {
            assert!(
                !text.contains(secret.as_str()),
                "a credential ({} chars) shows in berth's output:\n{text}",
                secret.len()
            );
        }
    }
}

/// The password, the `auth` string config.json keeps, and every token the
/// token server issued: none may ever be printed.
fn secrets(reg: &TokenRegistry, passwords: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for p in passwords {
        out.push((*p).to_owned());
        out.push(http::base64(format!("{USER}:{p}").as_bytes()));
    }
    out.extend(reg.token_request_log().into_iter().filter_map(|r| r.token));
    out
}

fn config_json(docker_config: &Path) -> serde_json::Value {
    match std::fs::read(docker_config.join("config.json")) {
        Ok(bytes) => serde_json::from_slice(&bytes).expect("config.json is JSON"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
        Err(e) => panic!("read config.json: {e}"),
    }
}

#[test]
fn login_checks_the_password_at_the_token_server() {
    let Some(reg) = TokenRegistry::start(USER, PASSWORD) else {
        return;
    };
    let addr = reg.addr();
    let env = Env::new();
    let docker_config = env.path("docker-config");
    std::fs::create_dir_all(&docker_config).expect("mkdir");
    let transcript = std::cell::RefCell::new(Vec::new());
    let berth = Session {
        env: &env,
        docker_config: &docker_config,
        transcript: &transcript,
    };
    let wrong_password = "Wr0ng-pa55word?";

    let wrong = berth.login(&addr, wrong_password);
    assert!(
        !wrong.ok,
        "login with a wrong password succeeded:\n{}",
        wrong.show()
    );
    assert!(
        wrong.stderr.contains("incorrect username or password"),
        "{}",
        wrong.show()
    );
    assert!(
        config_json(&docker_config)["auths"][&addr].is_null(),
        "a refused login was stored: {}",
        config_json(&docker_config)
    );
    // berth asked the token server (with the wrong password), which refused.
    let log = reg.token_request_log();
    assert!(
        !log.is_empty() && log.iter().all(|r| r.sent_credentials && !r.authorized),
        "{log:#?}"
    );

    let right = berth.login(&addr, PASSWORD);
    assert!(right.ok, "login failed:\n{}", right.show());
    assert!(right.stdout.contains("Login Succeeded"), "{}", right.show());
    let config = config_json(&docker_config);
    assert_eq!(
        config["auths"][&addr]["auth"],
        http::base64(format!("{USER}:{PASSWORD}").as_bytes()),
        "{config}"
    );
    let log = reg.token_request_log();
    let last = log.last().expect("a token request");
    assert!(last.authorized, "{log:#?}");
    assert_eq!(last.service.as_deref(), Some(SERVICE), "{log:#?}");

    assert_never_printed(
        &transcript.borrow(),
        &secrets(&reg, &[PASSWORD, wrong_password]),
    );
}

#[test]
fn push_and_pull_with_bearer_tokens() {
    let Some(reg) = TokenRegistry::start(USER, PASSWORD) else {
        return;
    };
    let addr = reg.addr();
    let name = format!("{addr}/app:1");
    let transcript = std::cell::RefCell::new(Vec::new());

    let env = Env::new();
    let docker_config = env.path("docker-config");
    std::fs::create_dir_all(&docker_config).expect("mkdir");
    let berth = Session {
        env: &env,
        docker_config: &docker_config,
        transcript: &transcript,
    };
    let login = berth.login(&addr, PASSWORD);
    assert!(login.ok, "login failed:\n{}", login.show());
    let after_login = reg.token_requests();

    let ctx = env.write("ctx", &[("Dockerfile", "FROM scratch\nCOPY rootfs/ /\n")]);
    make_rootfs(&ctx.join("rootfs"));
    berth.run_ok(
        &[
            "build",
            "--progress",
            "plain",
            "-t",
            &name,
            ctx.to_str().unwrap(),
        ],
        None,
    );
    let built = env.image(&name);
    // Three blobs to push: config, one layer, manifest.
    assert_eq!(built.layer_digests().len(), 1);
    assert_eq!(reg.token_requests(), after_login, "build asked for tokens");

    let push = berth.run(&["push", &name], None);
    assert!(
        push.ok,
        "push failed:\n{}\ntoken requests: {:#?}\nregistry log tail:\n{}",
        push.show(),
        reg.token_request_log(),
        reg.log_tail(30)
    );
    let after_push = reg.token_requests();
    let push_registry_requests = reg.registry_requests();

    // Pull into an empty store, with the same credentials.
    let env2 = Env::new();
    let puller = Session {
        env: &env2,
        docker_config: &docker_config,
        transcript: &transcript,
    };
    let pull = puller.run(&["pull", &name], None);
    assert!(
        pull.ok,
        "pull failed:\n{}\ntoken requests: {:#?}\nregistry log tail:\n{}",
        pull.show(),
        reg.token_request_log(),
        reg.log_tail(30)
    );
    let after_pull = reg.token_requests();
    let pull_registry_requests = reg.registry_requests() - push_registry_requests;
    let pulled = env2.image(&name);
    assert_eq!(pulled.manifest_digest, built.manifest_digest);
    assert_eq!(
        pulled.manifest["config"]["digest"],
        built.manifest["config"]["digest"]
    );
    assert!(
        pull.stderr.contains(&built.manifest_digest),
        "pull does not report the digest:\n{}",
        pull.show()
    );

    let log = reg.token_request_log();
    eprintln!(
        "token requests: login {after_login}, push {}, pull {}; registry requests: \
         login+push {push_registry_requests}, pull {pull_registry_requests}",
        after_push - after_login,
        after_pull - after_push
    );
    for r in &log {
        assert!(r.authorized, "{log:#?}");
        assert_eq!(r.service.as_deref(), Some(SERVICE), "{log:#?}");
        assert_eq!(r.client_id.as_deref(), Some("berth"), "{log:#?}");
    }
    assert!(
        log[after_login..after_push]
            .iter()
            .all(|r| r.scopes == ["repository:app:pull,push"]),
        "push scopes: {log:#?}"
    );
    assert!(
        log[after_push..after_pull]
            .iter()
            .all(|r| r.scopes == ["repository:app:pull"]),
        "pull scopes: {log:#?}"
    );
    // Caching. Measured: login 1, push 2 (sometimes 1), pull 1 token
    // requests, while the registry saw 11-12 requests up to the end of the
    // push (its own readiness probe, 2 for login, ~9 for the push) and 4
    // for the pull.
    // - login: one token (no scope) to check the password.
    // - push: berth starts its blobs on parallel threads; in a fresh
    //   process their first requests are refused together, and the first
    //   thread to fetch a token shares it with the others
    //   (`Authenticator::answer` refetches only when the refused token is
    //   the cached one). Uploads and the manifest reuse it.
    // - pull: the manifest comes first, alone, so one token serves it and
    //   every blob.
    // So 3 in all; without caching it would be one per registry request.
    assert_eq!(after_login, 1, "{log:#?}");
    assert_eq!(after_push - after_login, 1, "{log:#?}");
    assert_eq!(after_pull - after_push, 1, "{log:#?}");
    assert_eq!(after_pull, 3, "{log:#?}");
    assert!(
        pull_registry_requests >= 3 && push_registry_requests >= 6,
        "too few registry requests to show caching: {push_registry_requests} (login+push), \
         {pull_registry_requests} (pull)\n{}",
        reg.log_tail(40)
    );

    // Without credentials: one line saying so and what to do.
    let anon_env = Env::new();
    let anon_config = anon_env.path("docker-config");
    std::fs::create_dir_all(&anon_config).expect("mkdir");
    let anonymous = Session {
        env: &anon_env,
        docker_config: &anon_config,
        transcript: &transcript,
    };
    let refused = anonymous.run(&["pull", &name], None);
    assert!(!refused.ok, "anonymous pull succeeded:\n{}", refused.show());
    assert!(
        refused
            .stderr
            .lines()
            .any(|l| l.contains("unauthorized") && l.contains("berth login")),
        "{}",
        refused.show()
    );

    // Logout forgets the credentials; pulling is refused again.
    let logout = berth.run_ok(&["logout", &addr], None);
    assert!(logout.stdout.contains(&addr), "{}", logout.show());
    let config = config_json(&docker_config);
    assert!(config["auths"][&addr].is_null(), "{config}");
    let env3 = Env::new();
    let after_logout = Session {
        env: &env3,
        docker_config: &docker_config,
        transcript: &transcript,
    }
    .run(&["pull", &name], None);
    assert!(!after_logout.ok, "{}", after_logout.show());
    assert!(
        after_logout
            .stderr
            .lines()
            .any(|l| l.contains("unauthorized") && l.contains("berth login")),
        "{}",
        after_logout.show()
    );

    assert_never_printed(&transcript.borrow(), &secrets(&reg, &[PASSWORD]));
}
