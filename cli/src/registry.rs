//! How the CLI reaches registries: `--insecure-registry`, the user's berth
//! configuration file (`insecure-registries`, as in Docker's daemon.json),
//! and the environment's timeout and retry settings, turned into one
//! registry client.
//!
//! The configuration file is `$BERTH_CONFIG`, else
//! `$XDG_CONFIG_HOME/berth/config.json` (`~/.config/berth/config.json`):
//!
//! ```json
//! { "insecure-registries": ["registry.lan:5000"] }
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result};
use berth_registry::auth::{CredentialSource, Credentials, DockerConfig};
use berth_registry::{Client, RetryPolicy, TransportOptions};
use clap::Args;

/// Registry connection flags shared by pull, push, login and build.
#[derive(Debug, Clone, Default, Args)]
pub struct RegistryArgs {
    /// Allow plain HTTP to this registry (HOST or HOST:PORT); repeatable.
    /// Loopback registries (localhost, 127.0.0.0/8) need no flag.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure: Vec<String>,
}

impl RegistryArgs {
    /// Transport options from the flags, the config file and the
    /// environment (`BERTH_REGISTRY_TIMEOUT` seconds of no progress before
    /// an attempt is abandoned, `BERTH_REGISTRY_RETRIES` attempts).
    pub fn options(&self) -> Result<TransportOptions> {
        let mut insecure = self.insecure.clone();
        insecure.extend(configured_insecure()?);
        let mut retry = RetryPolicy::default();
        if let Some(n) = env_number("BERTH_REGISTRY_RETRIES")? {
            retry.attempts = n.max(1) as u32;
        }
        let mut options = TransportOptions {
            insecure_registries: insecure,
            retry,
            credentials: CredentialSource::DockerConfig(DockerConfig::default_path()),
            ..TransportOptions::default()
        };
        if let Some(secs) = env_number("BERTH_REGISTRY_TIMEOUT")? {
            options.idle_timeout = Duration::from_secs(secs.max(1));
        }
        Ok(options)
    }

    /// A client using the user's stored credentials.
    pub fn client(&self, cancel: Option<Arc<AtomicBool>>) -> Result<Client> {
        let client = Client::new(self.options()?);
        Ok(match cancel {
            Some(flag) => client.with_cancel(flag),
            None => client,
        })
    }

    /// A client that presents exactly `creds` (for checking a login).
    pub fn client_with(&self, creds: Credentials) -> Result<Client> {
        Ok(Client::with_credentials(self.options()?, Some(creds)))
    }
}

fn env_number(name: &str) -> Result<Option<u64>> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map(Some)
            .with_context(|| format!("{name}={v:?} is not a whole number")),
        _ => Ok(None),
    }
}

fn config_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BERTH_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("berth").join("config.json"))
}

/// `insecure-registries` from the config file, if there is one.
fn configured_insecure() -> Result<Vec<String>> {
    let Some(path) = config_path() else {
        return Ok(Vec::new());
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let doc: serde_json::Value = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not valid JSON (fix or remove the file)",
            path.display()
        )
    })?;
    let Some(list) = doc.get("insecure-registries") else {
        return Ok(Vec::new());
    };
    let items = list.as_array().with_context(|| {
        format!(
            "{}: insecure-registries must be a list of HOST[:PORT] strings",
            path.display()
        )
    })?;
    items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_str().map(str::to_owned).with_context(|| {
                format!(
                    "{}: insecure-registries[{i}] must be a string",
                    path.display()
                )
            })
        })
        .collect()
}
