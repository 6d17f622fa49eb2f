//! `berth rmi`: remove images by name or ID.

use std::process::ExitCode;

use anyhow::Result;
use berth_builder::images;
use clap::Args;

use super::images::{emit, open_store};

/// Remove images.
///
/// A name removes that name; the image's manifest and config are deleted
/// once no other name points at them. An ID removes every name of the image;
/// if those names are in more than one repository, -f is needed. Layers stay
/// until `berth prune`, which knows which ones the build cache still uses.
#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Images to remove: names (default tag latest) or IDs (at least 4 hex digits).
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<String>,

    /// Remove an image given by ID even if it is named in several repositories.
    #[arg(short, long)]
    force: bool,
}

/// Removes each image in turn; a failure is reported and the rest still
/// go, as with `docker rmi`. Exits 1 if any failed.
pub fn run(args: RmiArgs) -> Result<ExitCode> {
    let store = open_store()?;
    let mut failed = false;
    for image in &args.images {
        match images::remove(&store, image, args.force) {
            Ok(lines) => {
                let mut out = lines.join("\n");
                if !out.is_empty() {
                    out.push('\n');
                }
                emit(&out)?;
            }
            Err(e) => {
                eprintln!("berth: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
