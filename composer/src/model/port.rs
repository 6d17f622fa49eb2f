//! `ports`: published container ports, in long form.

use serde::{Deserialize, Serialize};

use super::{Extensions, x_keys};

/// One container port, possibly published on the host. A short-syntax
/// range (`8000-8001:80-81`) becomes one `Port` per container port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Port {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `ingress` (the default) or `host`.
    pub mode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    pub target: u16,
    /// Host port or host port range (`"8000-8010"`); a string as in
    /// compose. `None`: the engine picks a free port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    /// `tcp` (the default), `udp` or `sctp`.
    pub protocol: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
    #[serde(flatten, deserialize_with = "x_keys")]
    pub extensions: Extensions,
}

impl Default for Port {
    fn default() -> Port {
        Port {
            name: None,
            mode: "ingress".to_string(),
            host_ip: None,
            target: 0,
            published: None,
            protocol: "tcp".to_string(),
            app_protocol: None,
            extensions: Extensions::new(),
        }
    }
}

impl Port {
    /// The published host port range, when there is one (`"8080"` gives
    /// `(8080, 8080)`).
    pub fn published_range(&self) -> Option<(u16, u16)> {
        let published = self.published.as_deref()?;
        match published.split_once('-') {
            Some((start, end)) => Some((start.parse().ok()?, end.parse().ok()?)),
            None => published.parse().ok().map(|p| (p, p)),
        }
    }
}
