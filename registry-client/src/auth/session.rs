//! One process's authentication state across registries: which scheme each
//! registry asked for, the credentials looked up for it (once), and the
//! tokens traded for them.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::challenge::{self, Challenge};
use super::token::{self, Scope, TokenCache};
use super::{Credentials, DockerConfig, Secret};
use crate::error::RegistryError;

/// Where credentials come from.
#[derive(Debug, Clone)]
pub enum CredentialSource {
    /// Docker's `config.json` at this path (and the helpers it names).
    DockerConfig(std::path::PathBuf),
    /// These credentials for every registry (`berth login` checking a
    /// password before saving it), or none at all.
    Fixed(Option<Credentials>),
}

pub struct Authenticator {
    source: CredentialSource,
    /// Credentials per host, looked up at most once.
    creds: Mutex<HashMap<String, Option<Credentials>>>,
    /// The scheme each host asked for in its last 401.
    challenges: Mutex<HashMap<String, Challenge>>,
    tokens: TokenCache,
    /// Held while fetching a token, so that parallel transfers refused at
    /// once fetch one token between them, not one each.
    fetching: Mutex<()>,
}

impl Authenticator {
    pub fn new(source: CredentialSource) -> Authenticator {
        Authenticator {
            source,
            creds: Mutex::default(),
            challenges: Mutex::default(),
            tokens: TokenCache::default(),
            fetching: Mutex::new(()),
        }
    }

    pub fn credentials(&self, host: &str) -> Result<Option<Credentials>, RegistryError> {
        if let Some(found) = self.creds.lock().ok().and_then(|m| m.get(host).cloned()) {
            return Ok(found);
        }
        let found = match &self.source {
            CredentialSource::Fixed(c) => c.clone(),
            CredentialSource::DockerConfig(path) => DockerConfig::load(path)?.credentials(host)?,
        };
        if let Ok(mut m) = self.creds.lock() {
            m.insert(host.to_owned(), found.clone());
        }
        Ok(found)
    }

    /// The `Authorization` header for a request to `host` needing `scope`,
    /// if the host has asked for authentication before. Fetches a token
    /// ahead of time when the host wants bearer tokens and none is cached
    /// for this scope, which saves a refused round trip per scope.
    pub fn header(
        &self,
        agent: &ureq::Agent,
        host: &str,
        scope: &Scope,
    ) -> Result<Option<String>, RegistryError> {
        let known = self
            .challenges
            .lock()
            .ok()
            .and_then(|m| m.get(host).cloned());
        match known {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self.credentials(host)?.and_then(|c| basic(&c))),
            Some(Challenge::Bearer { realm, service, .. }) => {
                if let Some(t) = self.tokens.get(host, scope) {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let _one_at_a_time = self.fetching.lock();
                if let Some(t) = self.tokens.get(host, scope) {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let t = self.fetch(agent, host, &realm, service.as_deref(), scope)?;
                Ok(Some(format!("Bearer {t}")))
            }
        }
    }

    /// Reacts to a 401 carrying `www_authenticate` for a request that was
    /// sent with `sent` as its `Authorization`: learns the scheme and gets
    /// what it needs, so that one more attempt can succeed. Errors when
    /// there is nothing new to try.
    pub fn answer(
        &self,
        agent: &ureq::Agent,
        host: &str,
        scope: &Scope,
        www_authenticate: Option<&str>,
        sent: Option<&str>,
    ) -> Result<(), RegistryError> {
        let creds = self.credentials(host)?;
        let unauthorized = || RegistryError::Unauthorized {
            host: host.to_owned(),
            had_credentials: creds.is_some(),
        };
        let Some(challenge) = www_authenticate.and_then(challenge::parse) else {
            return Err(unauthorized());
        };
        if let Ok(mut m) = self.challenges.lock() {
            m.insert(host.to_owned(), challenge.clone());
        }
        match challenge {
            Challenge::Basic => match creds {
                Some(c) if basic(&c).is_some() => Ok(()),
                _ => Err(unauthorized()),
            },
            Challenge::Bearer { realm, service, .. } => {
                let _one_at_a_time = self.fetching.lock();
                match self.tokens.get(host, scope) {
                    // Another thread got a token since this request left.
                    Some(t) if sent != Some(format!("Bearer {t}").as_str()) => Ok(()),
                    // The registry refused the cached token (expired or
                    // revoked): fetch a fresh one.
                    _ => {
                        self.tokens.forget(host, scope);
                        let creds = self.credentials(host)?;
                        let (token, lifetime) = token::fetch(
                            agent,
                            host,
                            &realm,
                            service.as_deref(),
                            scope,
                            creds.as_ref(),
                        )?;
                        self.tokens.put(host, scope, token, lifetime);
                        Ok(())
                    }
                }
            }
        }
    }

    fn fetch(
        &self,
        agent: &ureq::Agent,
        host: &str,
        realm: &str,
        service: Option<&str>,
        scope: &Scope,
    ) -> Result<String, RegistryError> {
        let creds = self.credentials(host)?;
        let (token, lifetime) = token::fetch(agent, host, realm, service, scope, creds.as_ref())?;
        self.tokens.put(host, scope, token.clone(), lifetime);
        Ok(token)
    }
}

fn basic(c: &Credentials) -> Option<String> {
    match &c.secret {
        Secret::Password(p) => Some(format!(
            "Basic {}",
            BASE64.encode(format!("{}:{p}", c.username))
        )),
        // Identity tokens are only good at a token endpoint.
        Secret::IdentityToken(_) => None,
    }
}
