//! Turning what the HTTP layer and the registry said into
//! [`RegistryError`]s: which failures are worth another attempt, and the
//! registry's own error words (`MANIFEST_UNKNOWN` → `manifest unknown`).

use std::io;

use serde::Deserialize;

use crate::error::RegistryError;

/// Classifies a failure that happened before any response arrived.
pub fn classify(host: &str, err: ureq::Error) -> RegistryError {
    use ureq::Error as E;
    match err {
        E::Io(e) => classify_io(host, &e),
        E::HostNotFound => RegistryError::Unreachable {
            host: host.to_owned(),
            reason: "host not found (check the registry name)".into(),
        },
        E::Timeout(t) => RegistryError::Transient {
            reason: format!("{host}: timed out ({t})"),
            retry_after: None,
        },
        E::Tls(msg) => RegistryError::Unreachable {
            host: host.to_owned(),
            reason: format!("TLS: {msg}"),
        },
        E::Rustls(e) => RegistryError::Unreachable {
            host: host.to_owned(),
            reason: format!(
                "TLS: {e} (for a registry without TLS, pass --insecure-registry {host})"
            ),
        },
        E::BadUri(msg) => RegistryError::InvalidResponse {
            host: host.to_owned(),
            reason: format!("bad URL: {msg}"),
        },
        other => RegistryError::Transient {
            reason: format!("{host}: {other}"),
            retry_after: None,
        },
    }
}

/// Classifies an I/O error, also one met while reading a response body.
pub fn classify_io(host: &str, e: &io::Error) -> RegistryError {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => RegistryError::Unreachable {
            host: host.to_owned(),
            reason: "connection refused (is the registry running, and is the address right?)"
                .into(),
        },
        _ => RegistryError::Transient {
            reason: format!("{host}: {e}"),
            retry_after: None,
        },
    }
}

/// `Retry-After` in seconds, when it is a number (the HTTP-date form is
/// rare from registries and treated as absent).
pub fn retry_after(resp: &ureq::http::Response<ureq::Body>) -> Option<u64> {
    resp.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

#[derive(Deserialize)]
struct ErrorItem {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// A failed response's body, capped: error bodies are small, and a hostile
/// server must not make berth read gigabytes.
fn error_body(resp: &mut ureq::http::Response<ureq::Body>) -> Vec<u8> {
    resp.body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_vec()
        .unwrap_or_default()
}

/// The messages in a distribution-spec error body
/// (`{"errors":[{"code","message"}]}`), joined; a code stands in for a
/// missing message. Empty when the body is not such a document.
fn words(body: &[u8]) -> String {
    let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body) else {
        return String::new();
    };
    parsed
        .errors
        .iter()
        .map(|e| {
            if e.message.is_empty() {
                e.code.to_ascii_lowercase().replace('_', " ")
            } else {
                e.message.clone()
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The registry's own words for a failed response, or an empty string.
pub fn registry_message(resp: &mut ureq::http::Response<ureq::Body>) -> String {
    words(&error_body(resp))
}

/// The error a refused request stands for, from its status and body.
pub fn refusal(resp: &mut ureq::http::Response<ureq::Body>, push: bool) -> RegistryError {
    let status = resp.status().as_u16();
    from_status(status, &error_body(resp), push)
}

/// The first error code in a failed response's body (`MANIFEST_UNKNOWN`).
fn first_code(bytes: &[u8]) -> Option<String> {
    serde_json::from_slice::<ErrorBody>(bytes)
        .ok()?
        .errors
        .into_iter()
        .next()
        .map(|e| e.code)
}

/// Maps a 4xx answer to the error a person understands.
pub fn from_status(status: u16, body: &[u8], push: bool) -> RegistryError {
    let code = first_code(body).unwrap_or_default();
    match (status, code.as_str()) {
        (_, "MANIFEST_UNKNOWN") => RegistryError::ManifestUnknown,
        (_, "NAME_UNKNOWN") => RegistryError::NameUnknown,
        (_, "BLOB_UNKNOWN") => RegistryError::BlobUnknown {
            digest: String::new(),
        },
        (403, _) | (_, "DENIED") => RegistryError::Denied {
            action: if push { "push to" } else { "pull from" },
        },
        (404, _) => RegistryError::ManifestUnknown,
        _ => RegistryError::Status {
            status,
            message: words(body),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_become_words() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"nope"}}]}"#;
        assert_eq!(
            from_status(404, body, false).to_string(),
            "manifest unknown"
        );
        assert_eq!(
            from_status(404, br#"{"errors":[{"code":"NAME_UNKNOWN"}]}"#, false).to_string(),
            "repository name not known to registry"
        );
        assert!(from_status(403, b"", true).to_string().contains("push to"));
        assert_eq!(
            from_status(
                400,
                br#"{"errors":[{"code":"TAG_INVALID","message":""}]}"#,
                true
            )
            .to_string(),
            "tag invalid (HTTP 400)"
        );
    }
}
