//! Groups typed instructions into build stages: the global ARGs before the
//! first FROM, then one [`Stage`] per FROM with its instructions.

use super::ast::Dockerfile;
use super::error::DockerfileError;
use super::instructions::{From, Instruction, InstructionKind};

/// A Dockerfile as stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stages {
    /// ARG instructions before the first FROM (usable in FROM lines).
    pub global_args: Vec<Instruction>,
    pub stages: Vec<Stage>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub index: usize,
    pub from: From,
    /// Line of the FROM instruction.
    pub line: usize,
    pub instructions: Vec<Instruction>,
}

impl Stage {
    pub fn name(&self) -> Option<&str> {
        self.from.alias.as_deref()
    }
}

impl Stages {
    /// Types every instruction and groups them. All problems found are
    /// returned, not only the first.
    pub fn from_dockerfile(df: &Dockerfile) -> Result<Stages, Vec<DockerfileError>> {
        let (stages, errors) = Stages::collect(df);
        if errors.is_empty() {
            Ok(stages)
        } else {
            Err(errors)
        }
    }

    /// Groups what can be typed and returns the problems beside it, so a
    /// checker can go on to whole-file checks after a bad instruction.
    pub(crate) fn collect(df: &Dockerfile) -> (Stages, Vec<DockerfileError>) {
        let mut errors = Vec::new();
        let mut global_args = Vec::new();
        let mut stages: Vec<Stage> = Vec::new();
        for node in &df.nodes {
            let instruction = match Instruction::from_node(node) {
                Ok(i) => i,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            match (&instruction.kind, stages.last_mut()) {
                (InstructionKind::From(from), _) => stages.push(Stage {
                    index: stages.len(),
                    from: from.clone(),
                    line: instruction.start_line,
                    instructions: Vec::new(),
                }),
                (_, Some(stage)) => stage.instructions.push(instruction),
                (InstructionKind::Arg(_), None) => global_args.push(instruction),
                (_, None) => errors.push(
                    DockerfileError::new(
                        instruction.start_line,
                        instruction.end_line,
                        format!("{} before the first FROM", node.name()),
                    )
                    .with_hint("only ARG may come before FROM; start the stage with FROM IMAGE or FROM scratch"),
                ),
            }
        }
        let no_from = !df
            .nodes
            .iter()
            .any(|n| n.keyword.eq_ignore_ascii_case("from"));
        if no_from && errors.is_empty() {
            errors.push(
                DockerfileError::new(
                    df.end_line,
                    df.end_line,
                    "no FROM instruction: nothing to build",
                )
                .with_hint("add a FROM line, e.g. FROM scratch"),
            );
        }
        (
            Stages {
                global_args,
                stages,
            },
            errors,
        )
    }

    /// The stage a `--from`/`FROM` name refers to, by name (case-insensitive)
    /// or by index.
    pub fn find(&self, reference: &str) -> Option<&Stage> {
        let lower = reference.to_ascii_lowercase();
        self.stages
            .iter()
            .find(|s| s.name() == Some(lower.as_str()))
            .or_else(|| {
                reference
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| self.stages.get(i))
            })
    }
}
