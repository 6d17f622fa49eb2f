//! The Dockerfile front end: bytes in, a checked instruction list out.
//!
//! Reading follows BuildKit's parser exactly, in layers that mirror its
//! stages: [`directives`] (the `# escape=` block at the top), [`parser`]
//! (physical lines joined into logical instructions), [`heredoc`] (bodies
//! attached to RUN/COPY/ADD), [`ast`] (the raw node tree BuildKit dumps),
//! [`instructions`] (typed instructions with their flags) and [`check`]
//! (whole-file validation). [`shell`] is the shell-word lexer used to expand
//! variables the way BuildKit does.

mod args;
pub mod ast;
pub mod check;
pub mod directives;
pub mod error;
pub mod flags;
pub mod heredoc;
pub mod instructions;
pub mod modes;
pub mod mounts;
pub mod parser;
mod quote;
pub mod shell;
pub mod stages;
pub mod suggest;

pub use ast::{Dockerfile, Node, Warning};
pub use check::{Report, check, check_source};
pub use error::DockerfileError;
pub use instructions::{Instruction, InstructionKind};
pub use parser::parse;
pub use stages::{Stage, Stages};
