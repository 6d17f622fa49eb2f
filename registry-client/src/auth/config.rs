//! Docker's client configuration file, `config.json`: where it is, the
//! credentials it holds (`auths`) and the credential helpers it names
//! (`credsStore`, `credHelpers`). berth reads and writes the same file as the
//! Docker CLI, so `docker login` and `berth login` share credentials.
//!
//! Writing keeps every key berth does not know (`proxies`, `HttpHeaders`, …)
//! and replaces the file atomically with mode 0600.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};

use super::helper;
use super::{Credentials, CredentialsError, Secret};

/// The key Docker files Docker Hub's credentials under.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// A loaded `config.json` (or an empty one when the file does not exist).
#[derive(Debug, Clone)]
pub struct DockerConfig {
    path: PathBuf,
    doc: Map<String, Value>,
}

impl DockerConfig {
    /// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
    pub fn default_path() -> PathBuf {
        if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir).join("config.json");
        }
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/root"));
        home.join(".docker").join("config.json")
    }

    /// Loads the default file.
    pub fn load_default() -> Result<DockerConfig, CredentialsError> {
        DockerConfig::load(&DockerConfig::default_path())
    }

    /// Loads `path`; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<DockerConfig, CredentialsError> {
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(CredentialsError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let doc = if text.trim().is_empty() {
            Map::new()
        } else {
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(map)) => map,
                Ok(_) => {
                    return Err(CredentialsError::Parse {
                        path: path.to_owned(),
                        reason: "expected a JSON object".into(),
                    });
                }
                Err(e) => {
                    return Err(CredentialsError::Parse {
                        path: path.to_owned(),
                        reason: e.to_string(),
                    });
                }
            }
        };
        Ok(DockerConfig {
            path: path.to_owned(),
            doc,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The credential helper for `host`: its `credHelpers` entry, else
    /// `credsStore`.
    pub fn helper_for(&self, host: &str) -> Option<String> {
        let wanted = normalize_host(host);
        let specific = self
            .doc
            .get("credHelpers")
            .and_then(Value::as_object)
            .and_then(|m| {
                m.iter()
                    .find(|(k, _)| normalize_host(k) == wanted)
                    .and_then(|(_, v)| v.as_str())
            });
        specific
            .or_else(|| self.doc.get("credsStore").and_then(Value::as_str))
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    /// Credentials for `host` (`127.0.0.1:5000`, `docker.io`, …), from its
    /// helper if one is configured, else from `auths`.
    pub fn credentials(&self, host: &str) -> Result<Option<Credentials>, CredentialsError> {
        if let Some(name) = self.helper_for(host) {
            return helper::get(&name, &server_key(host));
        }
        let Some(auths) = self.doc.get("auths").and_then(Value::as_object) else {
            return Ok(None);
        };
        let wanted = normalize_host(host);
        let Some((key, entry)) = auths.iter().find(|(k, _)| normalize_host(k) == wanted) else {
            return Ok(None);
        };
        self.decode_entry(key, entry)
    }

    fn decode_entry(
        &self,
        key: &str,
        entry: &Value,
    ) -> Result<Option<Credentials>, CredentialsError> {
        let bad = |reason: &str| CredentialsError::Parse {
            path: self.path.clone(),
            reason: format!("auths.\"{key}\": {reason}"),
        };
        if let Some(token) = entry
            .get("identitytoken")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            let username = entry
                .get("username")
                .and_then(Value::as_str)
                .unwrap_or_default();
            return Ok(Some(Credentials {
                username: username.to_owned(),
                secret: Secret::IdentityToken(token.to_owned()),
            }));
        }
        if let Some(auth) = entry
            .get("auth")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
        {
            let raw = BASE64
                .decode(auth.trim())
                .map_err(|_| bad("\"auth\" is not base64"))?;
            let text = String::from_utf8(raw).map_err(|_| bad("\"auth\" is not UTF-8"))?;
            let (user, pass) = text
                .split_once(':')
                .ok_or_else(|| bad("\"auth\" is not \"user:password\""))?;
            return Ok(Some(Credentials {
                username: user.to_owned(),
                secret: Secret::Password(pass.to_owned()),
            }));
        }
        // Older files keep them in the clear.
        match (
            entry.get("username").and_then(Value::as_str),
            entry.get("password").and_then(Value::as_str),
        ) {
            (Some(u), Some(p)) if !u.is_empty() => Ok(Some(Credentials {
                username: u.to_owned(),
                secret: Secret::Password(p.to_owned()),
            })),
            _ => Ok(None),
        }
    }

    /// Saves credentials for `host` through its helper, or in `auths`
    /// (then call [`save`](DockerConfig::save)).
    pub fn store(&mut self, host: &str, creds: &Credentials) -> Result<(), CredentialsError> {
        if let Some(name) = self.helper_for(host) {
            return helper::store(&name, &server_key(host), creds);
        }
        let auths = self
            .doc
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        let Some(auths) = auths.as_object_mut() else {
            return Ok(());
        };
        let wanted = normalize_host(host);
        auths.retain(|k, _| normalize_host(k) != wanted);
        let entry = match &creds.secret {
            Secret::Password(p) => {
                let encoded = BASE64.encode(format!("{}:{p}", creds.username));
                serde_json::json!({ "auth": encoded })
            }
            Secret::IdentityToken(t) => serde_json::json!({
                "auth": BASE64.encode(format!("{}:", creds.username)),
                "identitytoken": t,
            }),
        };
        auths.insert(server_key(host), entry);
        Ok(())
    }

    /// Forgets the credentials for `host`; whether there were any.
    pub fn erase(&mut self, host: &str) -> Result<bool, CredentialsError> {
        let mut found = false;
        if let Some(name) = self.helper_for(host) {
            found |= helper::erase(&name, &server_key(host))?;
        }
        if let Some(auths) = self.doc.get_mut("auths").and_then(Value::as_object_mut) {
            let wanted = normalize_host(host);
            let before = auths.len();
            auths.retain(|k, _| normalize_host(k) != wanted);
            found |= auths.len() != before;
        }
        Ok(found)
    }

    /// Writes the file back: a temp file with mode 0600 in the same
    /// directory, renamed over the old one.
    pub fn save(&self) -> Result<(), CredentialsError> {
        let write_err = |source| CredentialsError::Write {
            path: self.path.clone(),
            source,
        };
        let dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(write_err)?;
        let mut text = serde_json::to_string_pretty(&Value::Object(self.doc.clone()))
            .map_err(|e| write_err(std::io::Error::other(e)))?;
        text.push('\n');
        let temp = dir.join(format!(".config.json.{}.tmp", std::process::id()));
        let result = (|| {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&temp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            fs::rename(&temp, &self.path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result.map_err(write_err)
    }
}

/// The key Docker uses for `host` in `auths` and with helpers.
pub fn server_key(host: &str) -> String {
    if normalize_host(host) == "docker.io" {
        DOCKER_HUB_KEY.to_owned()
    } else {
        host.to_owned()
    }
}

/// `https://index.docker.io/v1/` → `docker.io`, `http://h:5000/` → `h:5000`.
fn normalize_host(key: &str) -> String {
    let k = key.trim();
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    let k = k.split('/').next().unwrap_or(k).to_ascii_lowercase();
    match k.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".into()
        }
        _ => k,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("config.json");
        fs::write(&p, text).expect("write config");
        p
    }

    #[test]
    fn reads_auths_by_normalised_host() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = write(
            dir.path(),
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYTpzcw=="},"127.0.0.1:5000":{"auth":"YTpi"}}}"#,
        );
        let c = DockerConfig::load(&p).expect("load");
        let hub = c
            .credentials("docker.io")
            .expect("read")
            .expect("hub creds");
        assert_eq!(hub.username, "user");
        assert_eq!(hub.secret, Secret::Password("pa:ss".into()));
        let local = c
            .credentials("127.0.0.1:5000")
            .expect("read")
            .expect("local");
        assert_eq!(local.username, "a");
        assert!(c.credentials("127.0.0.1:5001").expect("read").is_none());
    }

    #[test]
    fn store_keeps_other_keys_and_erase_removes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = write(
            dir.path(),
            r#"{"proxies":{"default":{"httpProxy":"x"}},"auths":{}}"#,
        );
        let mut c = DockerConfig::load(&p).expect("load");
        let creds = Credentials {
            username: "u".into(),
            secret: Secret::Password("p".into()),
        };
        c.store("localhost:5000", &creds).expect("store");
        c.save().expect("save");
        let text = fs::read_to_string(&p).expect("read back");
        assert!(text.contains("httpProxy"), "{text}");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&p).expect("stat").permissions().mode() & 0o777,
            0o600
        );
        let again = DockerConfig::load(&p).expect("load");
        assert_eq!(
            again.credentials("localhost:5000").expect("read"),
            Some(creds)
        );
        let mut again = again;
        assert!(again.erase("localhost:5000").expect("erase"));
        assert!(!again.erase("localhost:5000").expect("erase twice"));
        assert_eq!(again.credentials("localhost:5000").expect("read"), None);
    }

    #[test]
    fn bad_files_name_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = write(dir.path(), "{not json");
        let e = DockerConfig::load(&p).expect_err("must fail").to_string();
        assert!(e.contains("config.json"), "{e}");
        let p = write(dir.path(), r#"{"auths":{"h":{"auth":"%%%"}}}"#);
        let e = DockerConfig::load(&p)
            .expect("load")
            .credentials("h")
            .expect_err("bad base64")
            .to_string();
        assert!(e.contains("auths.\"h\""), "{e}");
    }

    #[test]
    fn missing_file_is_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = DockerConfig::load(&dir.path().join("nope.json")).expect("load");
        assert_eq!(c.credentials("docker.io").expect("read"), None);
    }
}
