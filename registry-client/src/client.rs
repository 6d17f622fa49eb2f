//! The distribution API, one registry conversation at a time: the client
//! value callers hold, reaching `/v2/`, and what the manifest, download
//! and upload modules share.

use std::sync::atomic::AtomicBool;

use crate::auth::{CredentialSource, Scope};
use crate::error::RegistryError;
use crate::transport::{Call, Transport, TransportOptions};

/// Hears how a transfer goes: for progress bars and retry notices. Never
/// sees a credential.
pub trait Observer: Sync {
    /// `n` more bytes of a blob went over the wire.
    fn bytes(&self, _n: u64) {}
    /// Attempt `attempt` failed with a transient error; another follows.
    fn retrying(&self, _attempt: u32, _error: &RegistryError) {}
}

/// An observer that ignores everything.
pub struct Quiet;
impl Observer for Quiet {}

/// A registry client: connection pool, credentials, tokens. Cheap to share
/// between threads by reference; every method is one protocol operation
/// with its own retries.
pub struct Client {
    pub(crate) transport: Transport,
    pub(crate) cancel: Option<std::sync::Arc<AtomicBool>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Nothing inside is worth showing, and credentials must never be.
        f.write_str("Client")
    }
}

impl Client {
    pub fn new(options: TransportOptions) -> Client {
        Client {
            transport: Transport::new(options),
            cancel: None,
        }
    }

    /// Makes every retry loop stop when `flag` is set.
    pub fn with_cancel(mut self, flag: std::sync::Arc<AtomicBool>) -> Client {
        self.cancel = Some(flag);
        self
    }

    pub(crate) fn cancel_flag(&self) -> Option<&AtomicBool> {
        self.cancel.as_deref()
    }

    /// `https://host` or `http://host`.
    pub(crate) fn base(&self, host: &str) -> String {
        self.transport.base_url(host)
    }

    /// Checks that `host` speaks the distribution API and accepts the
    /// client's credentials (`GET /v2/`). What `berth login` uses.
    pub fn check_login(&self, host: &str) -> Result<(), RegistryError> {
        let url = format!("{}/v2/", self.base(host));
        // Docker Hub grants a token for no scope at all; a repository-less
        // scope keeps the token request valid elsewhere too.
        let scope = Scope::pull("");
        self.transport.retry.run(
            self.cancel_flag(),
            |_, _| {},
            |_| {
                let resp = self
                    .transport
                    .execute(host, &scope, &Call::new("GET", url.clone()))?;
                match resp.status().as_u16() {
                    200..=299 => Ok(()),
                    status => Err(RegistryError::Status {
                        status,
                        message: format!("{host} does not answer as a registry at /v2/"),
                    }),
                }
            },
        )
    }

    /// Builds a client that authenticates with exactly `creds` (or none).
    pub fn with_credentials(
        options: TransportOptions,
        creds: Option<crate::auth::Credentials>,
    ) -> Client {
        Client::new(TransportOptions {
            credentials: CredentialSource::Fixed(creds),
            ..options
        })
    }
}

/// `/v2/<repository>` on `host`.
pub(crate) fn repo_url(client: &Client, host: &str, repository: &str) -> String {
    format!("{}/v2/{repository}", client.base(host))
}
