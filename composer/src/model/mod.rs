//! The typed project model: what a compose project means once every short
//! syntax has been expanded (see [`crate::normalize`]).
//!
//! Serialising a [`Project`] with serde gives the shape `docker compose
//! config` prints; reading that output back through the loader gives an
//! equal model. Every struct keeps the `x-*` keys the compose schema allows
//! at its level in `extensions`; other unknown keys are dropped on reading
//! because schema validation has already rejected them.

mod build;
mod bytes;
mod config_secret;
mod deploy;
mod develop;
mod device;
mod duration;
mod healthcheck;
mod hook;
mod include;
mod mount;
mod network;
mod port;
mod project;
mod service;
mod ulimit;
mod volume;

pub use build::{Build, SshKey};
pub use bytes::{Bytes, BytesError};
pub use config_secret::{Config, FileMode, Secret, ServiceFileRef};
pub use deploy::{
    Deploy, DiscreteResourceSpec, GenericResource, Placement, PlacementPreference, Resource,
    Resources, RestartPolicy, UpdateConfig,
};
pub use develop::{Develop, Watch};
pub use device::{DeviceCount, DeviceMapping, DeviceRequest};
pub use duration::{Duration, DurationError};
pub use healthcheck::Healthcheck;
pub use hook::ServiceHook;
pub use include::Include;
pub use mount::{BindOptions, ImageOptions, MountType, ServiceVolume, TmpfsOptions, VolumeOptions};
pub use network::{Ipam, IpamPool, Network, ServiceNetwork};
pub use port::Port;
pub use project::{Model, Project};
pub use service::{
    BlkioConfig, CredentialSpec, DependsOn, EnvFile, Extends, Logging, OptionValue, Provider,
    Service, ServiceModel, ThrottleDevice, WeightDevice,
};
pub use ulimit::{Ulimit, UlimitRange};
pub use volume::Volume;

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer};

/// `x-*` keys and their values, in document order.
pub type Extensions = IndexMap<String, serde_json::Value>;

/// Keeps only the `x-` keys of the fields serde did not recognise: the
/// others are keys an older or newer compose file may carry (`version`)
/// that the model does not represent.
pub(crate) fn x_keys<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Extensions, D::Error> {
    let all = IndexMap::<String, serde_json::Value>::deserialize(deserializer)?;
    Ok(all
        .into_iter()
        .filter(|(key, _)| key.starts_with("x-"))
        .collect())
}

/// `#[serde(default = "yes")]`: compose treats an absent `required` as true.
pub(crate) fn yes() -> bool {
    true
}
