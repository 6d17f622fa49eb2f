//! berth's image builder.
//!
//! Owns everything between a Dockerfile and an image: the Dockerfile front end
//! ([`dockerfile`]), and later the build context, the stage graph, cache keys,
//! layer assembly and exporters. Library code never prints; it returns typed
//! errors and reports problems as values the CLI renders.

pub mod context;
pub mod dockerfile;
pub mod progress;
