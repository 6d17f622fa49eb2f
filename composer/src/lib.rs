//! berth's compose-spec implementation: the loader that turns compose files
//! into a validated, normalised project model.

pub mod doc_path;
pub mod model;
pub mod normalize;
pub mod yaml;
