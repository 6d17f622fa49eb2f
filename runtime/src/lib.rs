//! berth's embedded container runtime.
//!
//! - [`store`]: the local content store, an OCI image layout holding every
//!   blob berth pulls or builds and the local image names;
//! - [`image`]: the image config and manifest model;
//! - [`layer`]: layer tarballs: writing them from directories or from
//!   in-memory layouts ([`layer::tree`]), unpacking them;
//! - [`snapshot`]: each layer unpacked once under `snapshots/<diffid>/`;
//! - [`rootfs`]: a read-only merged view of a chain of snapshots and
//!   in-memory layers.
//!
//! Still to come here: the namespaced sandbox used by `RUN` steps and by
//! composed services, cgroups, networking (bridges, veth, IPAM, DNS, port
//! proxy) and process supervision.

pub mod image;
pub mod layer;
pub mod rootfs;
pub mod snapshot;
pub mod store;
