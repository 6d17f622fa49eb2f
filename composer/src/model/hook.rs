//! Lifecycle hooks: `post_start`, `pre_stop`, `pre_start` and
//! `develop.watch[].exec`.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::{Extensions, x_keys};

/// A command run at a point of a container's life.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceHook {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// `pre_start` only: the image of the init container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub environment: IndexMap<String, Option<String>>,
    /// `pre_start` only: run once per replica instead of once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_replica: Option<bool>,
    #[serde(flatten, deserialize_with = "x_keys")]
    pub extensions: Extensions,
}
