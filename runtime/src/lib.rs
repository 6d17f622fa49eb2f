//! berth's embedded container runtime.
//!
//! - [`store`]: the local content store, an OCI image layout holding every
//!   blob berth pulls or builds and the local image names;
//! - [`image`]: the image config and manifest model;
//! - [`layer`]: layer tarballs: writing them from directories or from
//!   in-memory layouts ([`layer::tree`]), unpacking them;
//! - [`snapshot`]: each layer unpacked once under `snapshots/<diffid>/`;
//! - [`rootfs`]: a read-only merged view of a chain of snapshots and
//!   in-memory layers;
//! - [`sandbox`]: the namespaced sandbox that runs `RUN` steps (and later
//!   composed services) on an overlay of snapshots.
//!
//! Still to come here: cgroups, networking (bridges, veth, IPAM, DNS, port
//! proxy) and process supervision.

pub mod image;
pub mod layer;
pub mod rootfs;
pub mod sandbox;
pub mod snapshot;
pub mod store;
