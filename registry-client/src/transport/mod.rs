//! HTTP to registries: one connection pool, HTTPS with the system's roots
//! (plain HTTP only for loopback and registries the user marked insecure,
//! as Docker does), timeouts that catch stalled transfers, authentication
//! on the way out and on 401s, and transient failures (dropped connections,
//! timeouts, 429, 5xx) reported as such for the retry loops above.

pub mod errors;
pub mod retry;
mod roots;

use std::collections::HashMap;
use std::io::{self, Read};
use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::time::Duration;

use ureq::http::Response;

use crate::auth::{Authenticator, CredentialSource, Scope};
use crate::error::RegistryError;
use errors::{classify, retry_after};
pub use retry::RetryPolicy;

/// How to reach registries.
#[derive(Debug, Clone)]
pub struct TransportOptions {
    /// Registries (`host` or `host:port`) that may be spoken to over plain
    /// HTTP, besides loopback.
    pub insecure_registries: Vec<String>,
    pub retry: RetryPolicy,
    /// A read or write that makes no progress for this long fails the
    /// attempt (then retried): catches stalled connections without capping
    /// how long a large blob may take.
    pub idle_timeout: Duration,
    pub credentials: CredentialSource,
}

impl Default for TransportOptions {
    fn default() -> TransportOptions {
        TransportOptions {
            insecure_registries: Vec::new(),
            retry: RetryPolicy::default(),
            idle_timeout: Duration::from_secs(60),
            credentials: CredentialSource::DockerConfig(crate::auth::DockerConfig::default_path()),
        }
    }
}

/// A request body that can be produced again (for a second attempt after a
/// 401).
pub(crate) enum Payload<'a> {
    Empty,
    Bytes(&'a [u8]),
    Reader {
        open: &'a dyn Fn() -> io::Result<Box<dyn Read + 'a>>,
        len: u64,
    },
}

/// One request, before authentication.
pub(crate) struct Call<'a> {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub payload: Payload<'a>,
}

impl<'a> Call<'a> {
    pub fn new(method: &'static str, url: String) -> Call<'a> {
        Call {
            method,
            url,
            headers: Vec::new(),
            payload: Payload::Empty,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Call<'a> {
        self.headers.push((name, value.into()));
        self
    }

    pub fn payload(mut self, payload: Payload<'a>) -> Call<'a> {
        self.payload = payload;
        self
    }
}

pub(crate) struct Transport {
    agent: ureq::Agent,
    pub retry: RetryPolicy,
    auth: Authenticator,
    insecure: Vec<String>,
    /// `https` or `http`, per host, once decided.
    schemes: Mutex<HashMap<String, &'static str>>,
}

/// Docker Hub's API lives on another host than its name.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

impl Transport {
    pub fn new(options: TransportOptions) -> Transport {
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(roots::system())
            .build();
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls)
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_per_read(Some(options.idle_timeout))
            .timeout_per_write(Some(options.idle_timeout))
            .max_idle_connections_per_host(8)
            .build();
        Transport {
            agent: config.into(),
            retry: options.retry,
            auth: Authenticator::new(options.credentials),
            insecure: options.insecure_registries,
            schemes: Mutex::default(),
        }
    }

    /// `https://host` or `http://host` for the registry `host`.
    pub fn base_url(&self, host: &str) -> String {
        let api_host = if host == "docker.io" {
            DOCKER_HUB_API
        } else {
            host
        };
        if !self.may_use_http(host) {
            return format!("https://{api_host}");
        }
        if let Some(s) = self.schemes.lock().ok().and_then(|m| m.get(host).copied()) {
            return format!("{s}://{api_host}");
        }
        // Like Docker: try TLS first, fall back to plain HTTP when the
        // registry does not speak it.
        let probe = self
            .agent
            .get(format!("https://{api_host}/v2/"))
            .config()
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .call();
        let scheme = if probe.is_ok() { "https" } else { "http" };
        if let Ok(mut m) = self.schemes.lock() {
            m.insert(host.to_owned(), scheme);
        }
        format!("{scheme}://{api_host}")
    }

    fn may_use_http(&self, host: &str) -> bool {
        let name = host_without_port(host);
        name == "localhost"
            || name == "::1"
            || name.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
            || self
                .insecure
                .iter()
                .any(|i| i == host || i.as_str() == name)
    }

    /// Sends `call` to `host` with the authorization `scope` needs; on a
    /// 401, learns the challenge and tries once more. Answers 429 and 5xx
    /// become [`RegistryError::Transient`]; any other status is returned
    /// for the caller to interpret.
    pub fn execute(
        &self,
        host: &str,
        scope: &Scope,
        call: &Call<'_>,
    ) -> Result<Response<ureq::Body>, RegistryError> {
        let mut answered = false;
        loop {
            let auth = self.auth.header(&self.agent, host, scope)?;
            let resp = self.send(host, call, auth.as_deref())?;
            let status = resp.status().as_u16();
            if status == 401 && !answered {
                let challenge = resp
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                self.auth.answer(
                    &self.agent,
                    host,
                    scope,
                    challenge.as_deref(),
                    auth.as_deref(),
                )?;
                answered = true;
                continue;
            }
            if status == 401 {
                return Err(RegistryError::Unauthorized {
                    host: host.to_owned(),
                    had_credentials: self.auth.credentials(host)?.is_some(),
                });
            }
            if status == 429 || (500..=599).contains(&status) && status != 501 {
                let mut resp = resp;
                let said = errors::registry_message(&mut resp);
                return Err(RegistryError::Transient {
                    reason: if said.is_empty() {
                        format!("{host} answered HTTP {status}")
                    } else {
                        format!("{host} answered HTTP {status}: {said}")
                    },
                    retry_after: retry_after(&resp),
                });
            }
            return Ok(resp);
        }
    }

    fn send(
        &self,
        host: &str,
        call: &Call<'_>,
        auth: Option<&str>,
    ) -> Result<Response<ureq::Body>, RegistryError> {
        let mut builder = ureq::http::Request::builder()
            .method(call.method)
            .uri(&call.url);
        for (name, value) in &call.headers {
            builder = builder.header(*name, value);
        }
        if let Some(a) = auth {
            builder = builder.header("Authorization", a);
        }
        let bad_request = |e: ureq::http::Error| RegistryError::InvalidResponse {
            host: host.to_owned(),
            reason: format!("cannot build request: {e}"),
        };
        let result = match &call.payload {
            Payload::Empty => {
                let req = builder.body(()).map_err(bad_request)?;
                self.agent.run(req)
            }
            Payload::Bytes(b) => {
                let req = builder.body(*b).map_err(bad_request)?;
                self.agent.run(req)
            }
            Payload::Reader { open, len } => {
                let mut reader = open().map_err(|e| RegistryError::local("open upload", e))?;
                let req = builder
                    .header("Content-Length", len.to_string())
                    .body(ureq::SendBody::from_reader(&mut reader))
                    .map_err(bad_request)?;
                self.agent.run(req)
            }
        };
        result.map_err(|e| classify(host, e))
    }
}

fn host_without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
}

/// Resolves a `Location` header against the registry's base URL.
pub(crate) fn resolve_location(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        location.to_owned()
    } else if location.starts_with('/') {
        format!("{base}{location}")
    } else {
        format!("{base}/{location}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_only_for_loopback_and_listed_hosts() {
        let t = Transport::new(TransportOptions {
            insecure_registries: vec!["reg.lan:5000".into(), "other.lan".into()],
            ..TransportOptions::default()
        });
        for h in [
            "localhost:5000",
            "127.0.0.1:5000",
            "127.8.9.1",
            "[::1]:5000",
            "reg.lan:5000",
            "other.lan:443",
        ] {
            assert!(t.may_use_http(h), "{h}");
        }
        for h in ["docker.io", "reg.lan:5001", "10.0.0.1:5000", "ghcr.io"] {
            assert!(!t.may_use_http(h), "{h}");
        }
        assert_eq!(t.base_url("docker.io"), "https://registry-1.docker.io");
    }

    #[test]
    fn locations() {
        assert_eq!(
            resolve_location("http://h:1", "/v2/x?y"),
            "http://h:1/v2/x?y"
        );
        assert_eq!(
            resolve_location("http://h:1", "https://s3/x"),
            "https://s3/x"
        );
    }
}
