//! The whole project: services and the top-level resources they use.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::{Config, Extensions, Network, Secret, Service, Volume, x_keys};

/// A loaded compose project, in the order `docker compose config` prints
/// it. `include` does not appear: the loader has already merged the
/// included files in.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Project {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Always printed, even when empty, as compose does.
    pub services: IndexMap<String, Service>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub networks: IndexMap<String, Network>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub volumes: IndexMap<String, Volume>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub secrets: IndexMap<String, Secret>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub configs: IndexMap<String, Config>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub models: IndexMap<String, Model>,
    #[serde(flatten, deserialize_with = "x_keys")]
    pub extensions: Extensions,
}

/// A top-level `models` entry: an AI model the project runs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Model {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_size: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub runtime_flags: Vec<String>,
    #[serde(flatten, deserialize_with = "x_keys")]
    pub extensions: Extensions,
}

impl Project {
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.get(name)
    }

    /// The image a service runs: its `image`, else the name compose gives
    /// the image it builds (`<project>-<service>`).
    pub fn image_for(&self, service_name: &str, service: &Service) -> String {
        match &service.image {
            Some(image) => image.clone(),
            None => format!(
                "{}-{service_name}",
                self.name.as_deref().unwrap_or_default()
            ),
        }
    }

    /// Service names in alphabetical order.
    pub fn service_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.services.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}
