//! berth's compose-spec implementation: the loader that turns compose files
//! into a validated, normalised project model.

pub mod doc_path;
pub mod dotenv;
pub mod interpolation;
pub mod merge;
pub mod model;
pub mod normalize;
pub mod schema;
pub mod yaml;
