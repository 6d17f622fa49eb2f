//! Errors of the build-context layer. Each names the path (or ignore-file
//! line) at fault and says what the user can do about it.

use std::io;
use std::path::PathBuf;

/// A problem with the build context, its ignore file, or a COPY source.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// A `.dockerignore` line that is not a valid pattern.
    #[error("{file}:{line}: invalid pattern \"{pattern}\": {reason}")]
    InvalidPattern {
        /// The ignore file as the user knows it (`.dockerignore`,
        /// `build/app.Dockerfile.dockerignore`).
        file: String,
        /// 1-based line number.
        line: usize,
        /// The pattern as written on that line (trimmed).
        pattern: String,
        reason: String,
    },

    /// The ignore file exists but could not be read.
    #[error("cannot read {}: {} (fix its permissions, or remove it)", .path.display(), os_message(.source))]
    IgnoreFile { path: PathBuf, source: io::Error },

    /// The context directory itself is missing or not a directory.
    #[error("build context \"{}\" {problem}", .path.display())]
    BadContext { path: PathBuf, problem: String },

    /// A file, directory or symlink inside the context that would be sent
    /// but cannot be read.
    #[error(
        "cannot read build context {what} \"{rel_path}\": {} (add it to .dockerignore if it need not be sent)",
        os_message(.source)
    )]
    Unreadable {
        /// "file", "directory" or "symlink".
        what: &'static str,
        rel_path: String,
        source: io::Error,
    },

    /// A name in the context that is not UTF-8; berth keeps context paths
    /// as text.
    #[error(
        "build context path {path:?} is not valid UTF-8 (rename it, or add it to .dockerignore if it need not be sent)"
    )]
    NonUtf8Name { path: PathBuf },

    /// `COPY ../x`: a source that climbs out of the context.
    #[error(
        "COPY source \"{src}\" is outside the build context: sources must be inside the build context (move the file into the context directory, or build from a directory that contains it)"
    )]
    OutsideContext { src: String },

    /// A literal COPY source that does not exist.
    #[error(
        "COPY source \"{src}\" not found in the build context: \"{missing}\" does not exist (paths are relative to the context root)"
    )]
    SourceNotFound { src: String, missing: String },

    /// A wildcard COPY source that matched nothing.
    #[error(
        "COPY source \"{src}\" matched no files in the build context (check the pattern and .dockerignore)"
    )]
    NoMatch { src: String },

    /// A wildcard COPY source with bad glob syntax.
    #[error("invalid wildcard in COPY source \"{src}\": {reason}")]
    InvalidSourcePattern { src: String, reason: String },

    /// A COPY source (or a symlink it goes through) excluded by the ignore
    /// file, so not part of the context BuildKit would see.
    #[error(
        "COPY source \"{src}\": \"{rel_path}\" is excluded by {ignore_file} (remove the pattern that matches it, or add the exception \"!{rel_path}\")"
    )]
    Excluded {
        src: String,
        rel_path: String,
        ignore_file: String,
    },

    /// Symlinks that never reach a file.
    #[error(
        "COPY source \"{src}\": too many levels of symbolic links at \"{rel_path}\" (is there a symlink loop?)"
    )]
    SymlinkLoop { src: String, rel_path: String },

    /// A path component used as a directory that is not one.
    #[error("COPY source \"{src}\": \"{rel_path}\" is not a directory")]
    NotADirectory { src: String, rel_path: String },

    /// Any other I/O failure while resolving a COPY source.
    #[error("cannot read COPY source \"{src}\" at \"{rel_path}\": {}", os_message(.source))]
    SourceIo {
        src: String,
        rel_path: String,
        source: io::Error,
    },
}

/// `Permission denied` rather than `Permission denied (os error 13)`: the
/// number helps nobody reading a build error.
pub(crate) fn os_message(err: &io::Error) -> String {
    let text = err.to_string();
    match text.rfind(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}
