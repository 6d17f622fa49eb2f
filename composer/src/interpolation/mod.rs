//! Variable interpolation in compose files: the `${…}` template language
//! ([`substitute`]), its application to every string of a document
//! ([`interpolate_tree`]) and the conversion of interpolated strings to the
//! numbers and booleans the schema expects ([`COMPOSE_CASTS`]).

mod casts;
mod template;
mod tree;

pub use casts::{COMPOSE_CASTS, Cast};
pub use template::{TemplateError, substitute};
pub use tree::{InterpolationError, InterpolationErrorKind, interpolate_tree};
