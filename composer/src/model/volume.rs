//! Top-level `volumes`: named volumes the project creates or uses.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::{Extensions, x_keys};

/// A top-level `volumes` entry. `name: null` in the file gives the default
/// (empty) volume.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Volume {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub driver_opts: IndexMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<bool>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, String>,
    #[serde(flatten, deserialize_with = "x_keys")]
    pub extensions: Extensions,
}
