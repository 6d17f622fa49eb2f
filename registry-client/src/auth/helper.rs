//! Docker credential helpers (`docker-credential-<name> get|store|erase`):
//! the server URL or a JSON record on stdin, a JSON record on stdout.
//! The secret travels only through the helper's pipes, never its arguments.

use std::io::Write;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use super::{Credentials, CredentialsError, Secret};

/// What helpers print for `get` and read for `store`.
#[derive(Serialize, Deserialize)]
struct Record {
    #[serde(rename = "ServerURL", default)]
    server_url: String,
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// The username helpers use to mark an identity token.
const TOKEN_USER: &str = "<token>";

pub fn get(helper: &str, server: &str) -> Result<Option<Credentials>, CredentialsError> {
    let out = run(helper, "get", server.as_bytes())?;
    match out {
        Outcome::Ok(stdout) => {
            let rec: Record =
                serde_json::from_slice(&stdout).map_err(|e| CredentialsError::Helper {
                    helper: helper.to_owned(),
                    reason: format!("unreadable answer to `get`: {e}"),
                })?;
            if rec.secret.is_empty() {
                return Ok(None);
            }
            Ok(Some(if rec.username == TOKEN_USER {
                Credentials {
                    username: String::new(),
                    secret: Secret::IdentityToken(rec.secret),
                }
            } else {
                Credentials {
                    username: rec.username,
                    secret: Secret::Password(rec.secret),
                }
            }))
        }
        Outcome::NotFound => Ok(None),
    }
}

pub fn store(helper: &str, server: &str, creds: &Credentials) -> Result<(), CredentialsError> {
    let (username, secret) = match &creds.secret {
        Secret::Password(p) => (creds.username.clone(), p.clone()),
        Secret::IdentityToken(t) => (TOKEN_USER.to_owned(), t.clone()),
    };
    let rec = Record {
        server_url: server.to_owned(),
        username,
        secret,
    };
    let input = serde_json::to_vec(&rec).map_err(|e| CredentialsError::Helper {
        helper: helper.to_owned(),
        reason: e.to_string(),
    })?;
    match run(helper, "store", &input)? {
        Outcome::Ok(_) => Ok(()),
        Outcome::NotFound => Err(CredentialsError::Helper {
            helper: helper.to_owned(),
            reason: "`store` failed".into(),
        }),
    }
}

pub fn erase(helper: &str, server: &str) -> Result<bool, CredentialsError> {
    Ok(matches!(
        run(helper, "erase", server.as_bytes())?,
        Outcome::Ok(_)
    ))
}

enum Outcome {
    Ok(Vec<u8>),
    NotFound,
}

fn run(helper: &str, verb: &str, input: &[u8]) -> Result<Outcome, CredentialsError> {
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                CredentialsError::HelperMissing {
                    program: program.clone(),
                }
            } else {
                CredentialsError::Helper {
                    helper: helper.to_owned(),
                    reason: e.to_string(),
                }
            }
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading gives EPIPE: its exit status
        // says what happened.
        let _ = stdin.write_all(input);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| CredentialsError::Helper {
            helper: helper.to_owned(),
            reason: e.to_string(),
        })?;
    if out.status.success() {
        return Ok(Outcome::Ok(out.stdout));
    }
    let said = String::from_utf8_lossy(if out.stdout.is_empty() {
        &out.stderr
    } else {
        &out.stdout
    })
    .trim()
    .to_owned();
    // The helpers' shared "not found" wording.
    if said.contains("credentials not found") {
        return Ok(Outcome::NotFound);
    }
    let said = if said.is_empty() {
        format!("it exited with {} and said nothing", out.status)
    } else {
        said
    };
    Err(CredentialsError::Helper {
        helper: helper.to_owned(),
        reason: format!("`{verb}` failed: {said}"),
    })
}
