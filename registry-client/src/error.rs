//! The errors a registry conversation can end in, worded for the person at
//! the terminal: what went wrong, where, and what to do about it.
//!
//! Nothing here ever carries a credential: request headers are never kept,
//! and registry error bodies are reduced to their `code` and `message`.

use std::io;

/// What went wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry does not know this tag or digest.
    #[error("manifest unknown")]
    ManifestUnknown,
    /// The registry does not know this repository.
    #[error("repository name not known to registry")]
    NameUnknown,
    /// The registry does not have this blob.
    #[error("blob {digest} unknown to registry")]
    BlobUnknown { digest: String },
    /// The registry wants credentials and has none, or not these.
    #[error("{}", unauthorized_message(host, *had_credentials))]
    Unauthorized { host: String, had_credentials: bool },
    /// Authenticated, but not allowed to do this.
    #[error(
        "denied: requested access to the resource is denied (check the repository name and that your account may {action} it)"
    )]
    Denied { action: &'static str },
    /// Nothing answered, or the connection failed before any response.
    #[error("cannot reach registry {host}: {reason}")]
    Unreachable { host: String, reason: String },
    /// A status the protocol does not expect, with the registry's own words.
    #[error("{}", status_message(*status, message))]
    Status { status: u16, message: String },
    /// The registry's answer breaks the protocol.
    #[error("registry {host} sent an invalid response: {reason}")]
    InvalidResponse { host: String, reason: String },
    /// Content does not hash to the digest it was asked for by.
    #[error(
        "digest mismatch: expected {expected}, got {actual} (the registry or a proxy corrupted the content; nothing was kept)"
    )]
    DigestMismatch { expected: String, actual: String },
    /// Transient failures went on past the retry budget.
    #[error("giving up after {attempts} attempts: {last}")]
    RetriesExhausted {
        attempts: u32,
        last: Box<RegistryError>,
    },
    /// The transfer was cancelled by the caller.
    #[error("cancelled")]
    Cancelled,
    /// Reading or writing local content (the blob being sent or received).
    #[error("{what}: {source}")]
    Local {
        what: String,
        #[source]
        source: io::Error,
    },
    /// Docker's config.json or a credential helper failed.
    #[error(transparent)]
    Credentials(#[from] crate::auth::CredentialsError),
    /// A transient problem worth another attempt (a dropped connection, a
    /// timeout, 429 or 5xx). Seen only inside the retry loops unless the
    /// budget runs out, when it is wrapped in `RetriesExhausted`.
    #[error("{reason}")]
    Transient {
        reason: String,
        /// What the server asked for in `Retry-After`, in seconds.
        retry_after: Option<u64>,
    },
}

impl RegistryError {
    /// Whether another attempt may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, RegistryError::Transient { .. })
    }

    pub(crate) fn local(what: impl Into<String>, source: io::Error) -> RegistryError {
        RegistryError::Local {
            what: what.into(),
            source,
        }
    }
}

fn unauthorized_message(host: &str, had_credentials: bool) -> String {
    if had_credentials {
        format!(
            "unauthorized: incorrect username or password for {host} (run `berth login {host}` again)"
        )
    } else {
        format!("unauthorized: authentication required (run `berth login {host}` first)")
    }
}

fn status_message(status: u16, message: &str) -> String {
    if message.is_empty() {
        format!("registry answered HTTP {status}")
    } else {
        format!("{message} (HTTP {status})")
    }
}
