//! `include` entries. The output model has none (the loader merges the
//! included files in before normalising); this is the loader's view of
//! them, read with [`crate::normalize::include_entries`].

use serde::{Deserialize, Serialize};

/// One `include` entry in long form: `include: [other.yaml]` is
/// `{path: [other.yaml]}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Include {
    /// The files to load together as one project, in order.
    pub path: Vec<String>,
    /// The directory relative paths in the included files resolve against;
    /// the first file's directory when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_directory: Option<String>,
    /// Env files used to interpolate the included files.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env_file: Vec<String>,
}
