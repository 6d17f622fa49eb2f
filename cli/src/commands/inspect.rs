//! `berth inspect`: image details as JSON.

use std::process::ExitCode;

use anyhow::{Context, Result};
use berth_builder::images;
use clap::Args;

use super::images::{emit, open_store};

/// Show details of images as a JSON array (like `docker image inspect`).
///
/// Each element has Id, RepoTags, RepoDigests, Created, Author,
/// Architecture, Os, Config, RootFS, Size and History, plus Manifest (the
/// image manifest) and Descriptor (what the name points at). Images that
/// are not found are reported on stderr after the array, and the exit
/// status is 1.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Images to inspect: names or IDs.
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<String>,
}

pub fn run(args: InspectArgs) -> Result<ExitCode> {
    let store = open_store()?;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for image in &args.images {
        match images::inspect(&store, image) {
            Ok(value) => found.push(value),
            Err(e) => errors.push(e),
        }
    }
    let mut out = serde_json::to_string_pretty(&serde_json::Value::Array(found))
        .context("cannot format the result as JSON")?;
    out.push('\n');
    emit(&out)?;
    for e in &errors {
        eprintln!("berth: {e}");
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
