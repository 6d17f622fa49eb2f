//! Bearer tokens: the scopes an operation needs, fetching a token for them
//! from the realm a registry names, and keeping it until shortly before it
//! expires.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;

use super::{Credentials, Secret};
use crate::error::RegistryError;
use crate::transport::errors::{classify, registry_message};

/// What an operation on one repository needs to be allowed to do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub repository: String,
    pub push: bool,
    /// A second repository to read from (the source of a cross-repository
    /// blob mount).
    pub mount_from: Option<String>,
}

impl Scope {
    pub fn pull(repository: &str) -> Scope {
        Scope {
            repository: repository.to_owned(),
            push: false,
            mount_from: None,
        }
    }

    pub fn push(repository: &str) -> Scope {
        Scope {
            push: true,
            ..Scope::pull(repository)
        }
    }

    /// The `scope` parameters of a token request.
    pub fn params(&self) -> Vec<String> {
        // A login check asks for no repository: a token for the registry.
        if self.repository.is_empty() {
            return Vec::new();
        }
        let actions = if self.push { "pull,push" } else { "pull" };
        let mut out = vec![format!("repository:{}:{actions}", self.repository)];
        if let Some(from) = self.mount_from.as_ref().filter(|f| **f != self.repository) {
            out.push(format!("repository:{from}:pull"));
        }
        out
    }
}

/// Tokens by (registry host, scope).
#[derive(Default)]
pub struct TokenCache {
    tokens: Mutex<HashMap<(String, Scope), (String, Instant)>>,
}

/// Tokens are dropped this long before they expire, so that one does not
/// run out between being chosen and reaching the registry.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);
/// Lifetime assumed when the token endpoint does not say (the spec's default).
const DEFAULT_LIFETIME: u64 = 60;

impl TokenCache {
    pub fn get(&self, host: &str, scope: &Scope) -> Option<String> {
        let tokens = self.tokens.lock().ok()?;
        let (token, until) = tokens.get(&(host.to_owned(), scope.clone()))?;
        (Instant::now() < *until).then(|| token.clone())
    }

    pub fn put(&self, host: &str, scope: &Scope, token: String, lifetime: Duration) {
        if let Ok(mut tokens) = self.tokens.lock() {
            let until = Instant::now() + lifetime.saturating_sub(EXPIRY_MARGIN);
            tokens.insert((host.to_owned(), scope.clone()), (token, until));
        }
    }

    pub fn forget(&self, host: &str, scope: &Scope) {
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.remove(&(host.to_owned(), scope.clone()));
        }
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Asks `realm` for a token covering `scope`, as `creds` if given: a GET
/// with basic auth for a password, the OAuth2 refresh-token POST for an
/// identity token. Returns the token and how long it lives.
pub fn fetch(
    agent: &ureq::Agent,
    registry_host: &str,
    realm: &str,
    service: Option<&str>,
    scope: &Scope,
    creds: Option<&Credentials>,
) -> Result<(String, Duration), RegistryError> {
    let realm_host = realm
        .split("://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or(realm)
        .to_owned();
    let result = match creds {
        Some(Credentials {
            secret: Secret::IdentityToken(refresh),
            ..
        }) => {
            let mut form: Vec<(&str, String)> = vec![
                ("grant_type", "refresh_token".into()),
                ("refresh_token", refresh.clone()),
                ("client_id", "berth".into()),
            ];
            if let Some(s) = service {
                form.push(("service", s.to_owned()));
            }
            for s in scope.params() {
                form.push(("scope", s));
            }
            agent.post(realm).send_form(form)
        }
        _ => {
            let mut req = agent.get(realm).query("client_id", "berth");
            if let Some(s) = service {
                req = req.query("service", s);
            }
            for s in scope.params() {
                req = req.query("scope", s);
            }
            if let Some(Credentials {
                username,
                secret: Secret::Password(p),
            }) = creds
            {
                let basic = BASE64.encode(format!("{username}:{p}"));
                req = req.header("Authorization", format!("Basic {basic}"));
            }
            req.call()
        }
    };
    let mut resp = result.map_err(|e| classify(&realm_host, e))?;
    let status = resp.status().as_u16();
    match status {
        200 => {}
        401 | 403 => {
            return Err(RegistryError::Unauthorized {
                host: registry_host.to_owned(),
                had_credentials: creds.is_some(),
            });
        }
        429 | 500..=599 => {
            return Err(RegistryError::Transient {
                reason: format!("token endpoint {realm_host} answered HTTP {status}"),
                retry_after: crate::transport::errors::retry_after(&resp),
            });
        }
        _ => {
            let message = registry_message(&mut resp);
            return Err(RegistryError::Status { status, message });
        }
    }
    let answer: TokenAnswer = resp
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_vec()
        .map_err(|e| e.to_string())
        .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()))
        .map_err(|reason| RegistryError::InvalidResponse {
            host: realm_host.clone(),
            reason: format!("token answer: {reason}"),
        })?;
    let token = answer
        .token
        .or(answer.access_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| RegistryError::InvalidResponse {
            host: realm_host,
            reason: "token answer holds no token".into(),
        })?;
    let lifetime = Duration::from_secs(
        answer
            .expires_in
            .unwrap_or(DEFAULT_LIFETIME)
            .max(DEFAULT_LIFETIME),
    );
    Ok((token, lifetime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_params() {
        assert_eq!(Scope::pull("a/b").params(), ["repository:a/b:pull"]);
        let mut s = Scope::push("a/b");
        s.mount_from = Some("c".into());
        assert_eq!(
            s.params(),
            ["repository:a/b:pull,push", "repository:c:pull"]
        );
        s.mount_from = Some("a/b".into());
        assert_eq!(s.params().len(), 1);
    }

    #[test]
    fn cache_expires() {
        let c = TokenCache::default();
        let s = Scope::pull("x");
        c.put("h", &s, "t".into(), Duration::from_secs(3600));
        assert_eq!(c.get("h", &s).as_deref(), Some("t"));
        assert_eq!(c.get("h", &Scope::push("x")), None);
        c.put("h", &s, "t".into(), Duration::from_secs(5));
        assert_eq!(c.get("h", &s), None, "within the margin counts as expired");
        c.forget("h", &s);
        assert_eq!(c.get("h", &s), None);
    }
}
