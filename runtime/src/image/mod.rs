//! The image model: the image config (Docker's superset of the OCI config, so
//! `HEALTHCHECK`, `ONBUILD` and `SHELL` survive) and the image manifest, plus
//! reading a named image back out of the store.

mod config;
mod manifest;

pub use config::{ContainerConfig, HealthConfig, History, ImageConfig, RootFs};
pub use manifest::{Image, Manifest, load_image};
