//! The build context: the files a build can see, chosen the way BuildKit
//! chooses them.
//!
//! * [`ignore`]: the `.dockerignore` file (or `<Dockerfile>.dockerignore`
//!   beside the Dockerfile, which wins) and the rule that decides what it
//!   excludes: moby's patterns, last match wins, `!` exceptions.
//! * [`walk`](mod@walk): the entries sent for a build, in a deterministic
//!   order, symlinks kept as symlinks and never followed.
//! * [`path`]: COPY/ADD sources, kept inside the context (`COPY ../x` is
//!   an error), symlinks followed only within the context root, wildcards
//!   expanded.
//! * `glob` (private): the Go `filepath.Match` engine both use.
//!
//! The Dockerfile and the ignore file are read by the builder directly,
//! never through this filter: as in BuildKit, excluding them only hides
//! them from `COPY`.

mod error;
pub(crate) mod glob;
pub mod ignore;
pub mod path;
pub mod walk;

pub use error::ContextError;
pub use ignore::{DOCKERIGNORE, IgnoreRules};
pub use path::{SourcePath, resolve_source, resolve_source_with_rules};
pub use walk::{ContextEntry, EntryKind, walk};
