//! berth's embedded container runtime.
//!
//! Will own the image/layer store, overlayfs snapshots, the namespaced
//! sandbox used by `RUN` steps and by composed services, cgroups, networking
//! (bridges, veth, IPAM, DNS, port proxy) and process supervision. Nothing is
//! implemented yet: the crate exists so the workspace has its final shape.
