//! Host devices: `devices` mappings and `gpus` / reservation device
//! requests.

use std::fmt;

use indexmap::IndexMap;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Extensions, x_keys};

/// A `devices` entry; short syntax `src[:dst[:permissions]]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DeviceMapping {
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// cgroup permissions, `rwm` for the short syntax.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions: Option<String>,
    #[serde(flatten, deserialize_with = "x_keys")]
    pub extensions: Extensions,
}

/// A device request (`gpus`, `deploy.resources.reservations.devices`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DeviceRequest {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<DeviceCount>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub options: IndexMap<String, String>,
    #[serde(flatten, deserialize_with = "x_keys")]
    pub extensions: Extensions,
}

/// How many devices: a number, or every device (written `all`; compose's
/// internal `-1` reads as `all` too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceCount {
    All,
    Count(u32),
}

impl Serialize for DeviceCount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            DeviceCount::All => serializer.serialize_str("all"),
            DeviceCount::Count(n) => serializer.serialize_u32(*n),
        }
    }
}

impl<'de> Deserialize<'de> for DeviceCount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<DeviceCount, D::Error> {
        deserializer.deserialize_any(CountVisitor)
    }
}

struct CountVisitor;

impl Visitor<'_> for CountVisitor {
    type Value = DeviceCount;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a device count: a number or \"all\"")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<DeviceCount, E> {
        match v {
            -1 => Ok(DeviceCount::All),
            _ => u32::try_from(v).map(DeviceCount::Count).map_err(|_| {
                E::custom(format!(
                    "invalid device count {v}: expected a number or \"all\""
                ))
            }),
        }
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<DeviceCount, E> {
        u32::try_from(v).map(DeviceCount::Count).map_err(|_| {
            E::custom(format!(
                "invalid device count {v}: expected a number or \"all\""
            ))
        })
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<DeviceCount, E> {
        if v.eq_ignore_ascii_case("all") {
            return Ok(DeviceCount::All);
        }
        match v.parse::<i64>() {
            Ok(n) => self.visit_i64(n),
            Err(_) => Err(E::custom(format!(
                "invalid device count \"{v}\": expected a number or \"all\""
            ))),
        }
    }
}
