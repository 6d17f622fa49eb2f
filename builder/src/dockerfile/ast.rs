//! The raw parse tree: one [`Node`] per instruction, arguments split the way
//! each instruction's syntax says but nothing expanded or unquoted beyond
//! that. [`Dockerfile::dump`] renders it in BuildKit's test dump format.

use super::directives::Directive;
use super::heredoc::Heredoc;
use super::quote::go_quote;

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub nodes: Vec<Node>,
    pub directives: Vec<Directive>,
    /// The escape (and line continuation) character: `\` or `` ` ``.
    pub escape: char,
    pub warnings: Vec<Warning>,
    /// Line span of all instructions (first instruction's start to the last
    /// one's end).
    pub start_line: usize,
    pub end_line: usize,
}

/// One instruction as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The instruction keyword as written (`from`, `FROM`, `Copy`).
    pub keyword: String,
    /// Leading `--flag[=value]` words, quotes removed.
    pub flags: Vec<String>,
    /// Arguments; for ENV and LABEL, triples of key, value and separator
    /// (`=` for `k=v`, empty for the legacy `k v` form).
    pub args: Vec<String>,
    /// ONBUILD's nested instruction.
    pub sub: Option<Box<Node>>,
    /// The arguments came from a JSON array (exec form).
    pub json: bool,
    pub heredocs: Vec<Heredoc>,
    /// The logical line, continuations joined.
    pub original: String,
    pub start_line: usize,
    pub end_line: usize,
}

impl Node {
    /// The keyword in upper case, as Docker prints instructions.
    pub fn name(&self) -> String {
        self.keyword.to_ascii_uppercase()
    }

    /// This node rendered as `keyword ["--flag"] "arg" …`.
    pub fn dump(&self) -> String {
        let mut out = self.keyword.to_lowercase();
        if !self.flags.is_empty() {
            let flags: Vec<String> = self.flags.iter().map(|f| go_quote(f)).collect();
            out.push_str(" [");
            out.push_str(&flags.join(" "));
            out.push(']');
        }
        if let Some(sub) = &self.sub {
            out.push_str(" (");
            out.push_str(&sub.dump());
            out.push(')');
        }
        for arg in &self.args {
            out.push(' ');
            out.push_str(&go_quote(arg));
        }
        out.trim_end().to_string()
    }
}

impl Dockerfile {
    /// The whole tree in BuildKit's dump format: one `(instruction …)` per
    /// line, no trailing newline.
    pub fn dump(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("({})", n.dump()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The value of a parser directive (`syntax`, `escape`, `check`).
    pub fn directive(&self, name: &str) -> Option<&str> {
        self.directives
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.value.as_str())
    }
}

/// Something legal but suspicious, reported without failing the parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub line: usize,
    pub message: String,
}
