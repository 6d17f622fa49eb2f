//! `berth build`: for now its `--check` lint mode, which parses and
//! validates a Dockerfile and prints nothing but the problems found.

use anyhow::{Context, Result, bail};
use berth_builder::dockerfile::check_source;
use clap::Args;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Build an image from a Dockerfile.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Only parse and validate the Dockerfile; print problems as
    /// FILE:LINE: message and exit non-zero if there are errors. (Required
    /// until image builds land.)
    #[arg(long, required = true)]
    check: bool,

    /// Name of the Dockerfile (default: CONTEXT/Dockerfile); `-` reads stdin.
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    file: Option<PathBuf>,

    /// Build context directory.
    #[arg(default_value = ".", value_name = "CONTEXT")]
    context: PathBuf,
}

pub fn run(args: BuildArgs) -> Result<ExitCode> {
    debug_assert!(args.check);
    let (display, source) = read_dockerfile(args.file.as_deref(), &args.context)?;
    let report = check_source(&source);
    for warning in &report.warnings {
        eprintln!("{display}:{}: warning: {}", warning.line, warning.message);
    }
    for error in &report.errors {
        eprintln!("{}", error.render(&display));
    }
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Reads the Dockerfile and returns the name to show in messages with it.
fn read_dockerfile(file: Option<&Path>, context: &Path) -> Result<(String, Vec<u8>)> {
    if file == Some(Path::new("-")) {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("cannot read the Dockerfile from standard input")?;
        return Ok(("Dockerfile".to_string(), buf));
    }
    if !context.is_dir() {
        bail!(
            "build context {} is not a directory (pass the directory holding your sources, e.g. `berth build .`)",
            context.display()
        );
    }
    let path = match file {
        Some(f) => f.to_path_buf(),
        // Like docker, fall back to a lower-case `dockerfile`.
        None => ["Dockerfile", "dockerfile"]
            .iter()
            .map(|n| context.join(n))
            .find(|p| p.exists())
            .unwrap_or_else(|| context.join("Dockerfile")),
    };
    let source = std::fs::read(&path).with_context(|| {
        format!(
            "cannot read Dockerfile {} (pass -f PATH, or run where the Dockerfile is)",
            path.display()
        )
    })?;
    let display = path
        .strip_prefix("./")
        .unwrap_or(&path)
        .display()
        .to_string();
    Ok((display, source))
}
