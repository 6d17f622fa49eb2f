//! berth's embedded container runtime.
//!
//! - [`store`]: the local content store, an OCI image layout holding every
//!   blob berth pulls or builds and the local image names.
//!
//! Still to come here: overlayfs snapshots, the namespaced sandbox used by
//! `RUN` steps and by composed services, cgroups, networking (bridges, veth,
//! IPAM, DNS, port proxy) and process supervision.

pub mod store;
