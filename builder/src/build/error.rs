//! Why a build failed, located on the Dockerfile line that failed when there
//! is one, so the CLI can print `Dockerfile:12: COPY failed: …`.

use berth_runtime::store::StoreError;

use crate::dockerfile::DockerfileError;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Dockerfile does not parse or check; every problem found.
    #[error("{}", .0.iter().map(|e| e.render("Dockerfile")).collect::<Vec<_>>().join("\n"))]
    Dockerfile(Vec<DockerfileError>),

    /// A step failed while building.
    #[error("{}", .0.render("Dockerfile"))]
    Step(DockerfileError),

    /// The build could not start: bad options, unreadable context.
    #[error("{0}")]
    Setup(String),

    /// The local store failed.
    #[error(transparent)]
    Store(#[from] StoreError),

    /// Writing an output (`--output`, `--iidfile`) failed.
    #[error("{0}")]
    Output(String),

    /// Another stage failed first; this one stopped.
    #[error("build cancelled")]
    Cancelled,
}

impl BuildError {
    /// Renders the error with the Dockerfile's display name in place.
    pub fn render(&self, file: &str) -> String {
        match self {
            BuildError::Dockerfile(errors) => errors
                .iter()
                .map(|e| e.render(file))
                .collect::<Vec<_>>()
                .join("\n"),
            BuildError::Step(e) => e.render(file),
            other => other.to_string(),
        }
    }

    /// A failure on lines `line..=end_line`.
    pub(crate) fn at(line: usize, end_line: usize, message: impl Into<String>) -> BuildError {
        BuildError::Step(DockerfileError::new(line, end_line, message))
    }

    /// Adds a hint to a step failure (other errors are returned unchanged).
    pub(crate) fn hint(self, hint: impl Into<String>) -> BuildError {
        match self {
            BuildError::Step(e) => BuildError::Step(e.with_hint(hint)),
            other => other,
        }
    }
}
