//! The loader's error: a message and the place in the user's files it is
//! about, shown as `compose.yaml:14: services.web.ports[1]: invalid port …`.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::doc_path::DocPath;
use crate::yaml::Node;

/// Where a problem is: any of file, line and document path may be unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    pub file: Option<PathBuf>,
    pub line: u32,
    pub path: DocPath,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}", display_path(file).display())?;
            if self.line > 0 {
                write!(f, ":{}", self.line)?;
            }
            f.write_str(": ")?;
        }
        if !self.path.is_root() {
            write!(f, "{}: ", self.path)?;
        }
        Ok(())
    }
}

/// A file is shown relative to the current directory when it is below it,
/// the way the user most likely named it.
fn display_path(file: &Path) -> PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| file.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| file.to_path_buf())
}

/// A compose project that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}{message}")]
pub struct LoadError {
    pub location: Location,
    pub message: String,
}

impl LoadError {
    /// An error about the project as a whole (no file or path).
    pub fn project(message: impl Into<String>) -> LoadError {
        LoadError {
            location: Location::default(),
            message: message.into(),
        }
    }

    /// An error about a file, not a place in it.
    pub fn file(file: &Path, message: impl Into<String>) -> LoadError {
        LoadError {
            location: Location {
                file: Some(file.to_path_buf()),
                ..Location::default()
            },
            message: message.into(),
        }
    }

    pub fn at(location: Location, message: impl Into<String>) -> LoadError {
        LoadError {
            location,
            message: message.into(),
        }
    }
}

/// Every file the loader read, so that a node's `file` index can be turned
/// back into a name. Index 0 is "unknown".
#[derive(Debug, Clone, Default)]
pub struct FileTable {
    files: Vec<PathBuf>,
}

impl FileTable {
    /// The index of `path`, adding it when new.
    pub fn index(&mut self, path: &Path) -> u32 {
        if let Some(i) = self.files.iter().position(|p| p == path) {
            return i as u32 + 1;
        }
        self.files.push(path.to_path_buf());
        self.files.len() as u32
    }

    pub fn path(&self, index: u32) -> Option<&Path> {
        index
            .checked_sub(1)
            .and_then(|i| self.files.get(i as usize))
            .map(PathBuf::as_path)
    }

    /// The location of `node`, reached through `path`.
    pub fn locate(&self, node: &Node, path: &DocPath) -> Location {
        self.locate_parts(node.file, node.line, path)
    }

    /// A tree stage's error about a value, placed where that value came
    /// from.
    pub fn error(&self, err: crate::node_error::NodeError) -> LoadError {
        LoadError::at(
            self.locate_parts(err.file, err.line, &err.path),
            err.message,
        )
    }

    pub fn locate_parts(&self, file: u32, line: u32, path: &DocPath) -> Location {
        Location {
            file: self.path(file).map(Path::to_path_buf),
            line,
            path: path.clone(),
        }
    }
}
