//! Errors the Dockerfile front end reports, each tied to the source lines it
//! is about so the CLI can print `Dockerfile:LINE: message`.

use std::fmt;

/// A problem found in a Dockerfile, located on its (1-based) source lines.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DockerfileError {
    /// First line of the instruction (or physical line) at fault; 0 when the
    /// problem concerns the whole file and no line is meaningful.
    pub line: usize,
    /// Last line of that instruction (equal to `line` for one-line problems).
    pub end_line: usize,
    pub message: String,
    /// What the user can do about it, when one fix is obvious.
    pub hint: Option<String>,
}

impl DockerfileError {
    pub fn new(line: usize, end_line: usize, message: impl Into<String>) -> Self {
        DockerfileError {
            line,
            end_line: end_line.max(line),
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint_opt(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Renders the error as `FILE:LINE: message (hint)`, the form users and
    /// editors know from compilers.
    pub fn render(&self, file: &str) -> String {
        let mut out = if self.line == 0 {
            format!("{file}: {}", self.message)
        } else {
            format!("{file}:{}: {}", self.line, self.message)
        };
        if let Some(hint) = &self.hint {
            out.push_str(" (");
            out.push_str(hint);
            out.push(')');
        }
        out
    }
}

impl fmt::Display for DockerfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render("Dockerfile"))
    }
}
