//! berth's image builder.
//!
//! Owns everything between a Dockerfile and an image: the Dockerfile front end
//! ([`dockerfile`]), and later the build context, the stage graph, cache keys
//! and layer assembly. Built images leave the store through the exporters
//! ([`export`]: OCI directory, OCI tar, `docker load` tar), and are managed
//! in it by [`images`] (`berth images`, `tag`, `rmi`, `inspect`, `prune`).
//! Library code never prints; it returns typed errors and reports problems as
//! values the CLI renders.

pub mod build;
pub mod cache;
pub mod context;
pub mod dockerfile;
pub mod export;
pub mod images;
pub mod progress;
pub mod time;
pub mod transfer;
