//! `healthcheck`: how the engine probes a container.

use serde::{Deserialize, Serialize};

use super::{Duration, Extensions, x_keys};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Healthcheck {
    /// `["CMD", …]`, `["CMD-SHELL", "…"]` or `["NONE"]`; a string in the
    /// file becomes `["CMD-SHELL", string]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_period: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable: Option<bool>,
    #[serde(flatten, deserialize_with = "x_keys")]
    pub extensions: Extensions,
}

impl Healthcheck {
    /// Whether the check is switched off (`disable: true` or `["NONE"]`).
    pub fn is_disabled(&self) -> bool {
        self.disable == Some(true)
            || self
                .test
                .as_ref()
                .is_some_and(|t| t.first().map(String::as_str) == Some("NONE"))
    }
}
