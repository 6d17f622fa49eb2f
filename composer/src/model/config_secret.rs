//! Configs and secrets: top-level definitions and a service's use of them.

use std::fmt;

use indexmap::IndexMap;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Extensions, x_keys};

/// A top-level `secrets` entry.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Secret {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Name of the variable holding the secret's value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<bool>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub driver_opts: IndexMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_driver: Option<String>,
    #[serde(flatten, deserialize_with = "x_keys")]
    pub extensions: Extensions,
}

/// A top-level `configs` entry.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The config's value inline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<bool>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_driver: Option<String>,
    #[serde(flatten, deserialize_with = "x_keys")]
    pub extensions: Extensions,
}

/// A service's use of a config or secret (`services.*.configs[]`,
/// `services.*.secrets[]`, `build.secrets[]`). The short syntax is the
/// source name alone; the default target is the loader's business.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceFileRef {
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<FileMode>,
    #[serde(flatten, deserialize_with = "x_keys")]
    pub extensions: Extensions,
}

/// Permission bits of a mounted config or secret.
///
/// A number in the file is taken as is (YAML `0o440` is already octal);
/// text is read as octal (`"0440"`, `"440"`). Written as octal text
/// (`"0440"`), as compose prints it, so it cannot be misread as decimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct FileMode(pub u32);

impl fmt::Display for FileMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0{:o}", self.0)
    }
}

impl Serialize for FileMode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FileMode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<FileMode, D::Error> {
        deserializer.deserialize_any(ModeVisitor)
    }
}

struct ModeVisitor;

impl Visitor<'_> for ModeVisitor {
    type Value = FileMode;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a file mode such as \"0440\"")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<FileMode, E> {
        u32::try_from(v)
            .map(FileMode)
            .map_err(|_| E::custom(format!("invalid file mode {v}")))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<FileMode, E> {
        u32::try_from(v)
            .map(FileMode)
            .map_err(|_| E::custom(format!("invalid file mode {v}")))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<FileMode, E> {
        u32::from_str_radix(v.trim_start_matches("0o"), 8)
            .map(FileMode)
            .map_err(|_| {
                E::custom(format!(
                    "invalid file mode \"{v}\": expected octal digits such as 0440"
                ))
            })
    }
}
