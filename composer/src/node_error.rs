//! The error every tree stage (schema, merge, normalisation, model) gives
//! about one value of a compose document: what is wrong, and where the
//! value came from, so that the loader can name file, line and path.

use std::fmt;

use crate::doc_path::DocPath;
use crate::yaml::Node;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeError {
    /// Where the value sits in the document.
    pub path: DocPath,
    /// 1-based line of the value, 0 when the loader made it.
    pub line: u32,
    /// The loader's index of the file the value came from.
    pub file: u32,
    /// What is wrong, worded for a compose user.
    pub message: String,
}

impl NodeError {
    /// An error about `node`, found at `path`.
    pub fn at(path: &DocPath, node: &Node, message: impl Into<String>) -> NodeError {
        NodeError {
            path: path.clone(),
            line: node.line,
            file: node.file,
            message: message.into(),
        }
    }
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_root() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for NodeError {}
