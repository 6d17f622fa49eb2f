//! Who berth is to a registry: credentials from Docker's `config.json` and
//! credential helpers, the `WWW-Authenticate` challenges registries answer
//! with, and the bearer tokens it trades credentials for (cached per
//! registry and scope, fetched again when they expire or are refused).

pub mod challenge;
pub mod config;
mod helper;
mod session;
mod token;

use std::fmt;
use std::path::PathBuf;

pub use challenge::Challenge;
pub use config::DockerConfig;
pub(crate) use session::Authenticator;
pub use session::CredentialSource;
pub use token::Scope;

/// A user's credentials for one registry. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub secret: Secret,
}

/// A password, or an identity (refresh) token from an OAuth login.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    Password(String),
    IdentityToken(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("secret", &self.secret)
            .finish()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Secret::Password(_) => "Password(<redacted>)",
            Secret::IdentityToken(_) => "IdentityToken(<redacted>)",
        })
    }
}

/// Reading or writing stored credentials failed.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {reason} (fix or remove the file)", path.display())]
    Parse { path: PathBuf, reason: String },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "credential helper {program} is not installed (install it, or remove it from credsStore/credHelpers in config.json)"
    )]
    HelperMissing { program: String },
    #[error("credential helper docker-credential-{helper}: {reason}")]
    Helper { helper: String, reason: String },
}
