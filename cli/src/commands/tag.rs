//! `berth tag`: give an image another name.

use std::process::ExitCode;

use anyhow::Result;
use berth_builder::images;
use clap::Args;

use super::images::open_store;

/// Create a tag TARGET that refers to SOURCE.
///
/// SOURCE is a name or an image ID; TARGET a name (default tag latest). A
/// name TARGET already had moves to SOURCE's image.
#[derive(Debug, Args)]
pub struct TagArgs {
    /// The image to tag: a name or an ID.
    #[arg(value_name = "SOURCE")]
    source: String,

    /// The new name, e.g. registry.example/app:1.
    #[arg(value_name = "TARGET")]
    target: String,
}

pub fn run(args: TagArgs) -> Result<ExitCode> {
    let store = open_store()?;
    images::tag(&store, &args.source, &args.target)?;
    Ok(ExitCode::SUCCESS)
}
