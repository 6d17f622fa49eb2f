//! `develop`: file watching for `compose watch`.

use serde::{Deserialize, Serialize};

use super::{Extensions, ServiceHook, x_keys};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Develop {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub watch: Vec<Watch>,
    #[serde(flatten, deserialize_with = "x_keys")]
    pub extensions: Extensions,
}

/// One watch rule.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Watch {
    pub path: String,
    /// `rebuild`, `sync`, `restart`, `sync+restart` or `sync+exec`.
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exec: Option<ServiceHook>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_sync: Option<bool>,
    #[serde(flatten, deserialize_with = "x_keys")]
    pub extensions: Extensions,
}
