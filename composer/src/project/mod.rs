//! What the user asked for, before any compose file is read: which files,
//! which project directory and name, which profiles, and the environment
//! that interpolation sees.

pub mod discovery;
pub mod environment;
pub mod name;
mod options;

pub use options::{ProjectOptions, ResolvedOptions, STDIN};
