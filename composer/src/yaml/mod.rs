//! The YAML layer: compose files parsed into [`Node`] trees that keep each
//! value's line and its compose tag (`!reset`, `!override`).
//!
//! Every later stage (interpolation, schema validation, merging,
//! normalisation) works on this tree rather than on typed structs, because
//! compose's rules are defined on the raw document and errors must point at
//! the line a value came from.

mod node;
mod parse;

pub use node::{Map, Node, Tag, Value};
pub use parse::{YamlError, parse_documents};
