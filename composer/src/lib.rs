//! berth's compose-spec implementation: the loader that turns compose files
//! into a validated, normalised project model.
//!
//! [`load`] runs the whole pipeline; the modules are its stages.

pub mod consistency;
pub mod doc_path;
pub mod dotenv;
pub mod error;
pub mod interpolation;
pub mod loader;
pub mod merge;
pub mod model;
pub mod node_error;
pub mod normalize;
pub mod project;
pub mod render;
pub mod schema;
pub mod yaml;

pub use error::LoadError;
pub use loader::{LoadedProject, load};
pub use project::ProjectOptions;
