//! `berth pull`: download an image from a registry into the local store.

use std::process::ExitCode;

use anyhow::{Context, Result};
use berth_builder::build::Platform;
use berth_builder::transfer::{PullOptions, pull};
use berth_registry::reference::Reference;
use clap::Args;

use super::images::{emit, open_store};
use crate::progress::transfer::{Direction, TransferPrinter};
use crate::registry::RegistryArgs;

/// Download an image from a registry.
///
/// NAME is a reference as docker takes it: `alpine` means
/// docker.io/library/alpine:latest; `host:port/repo:tag` and
/// `repo@sha256:…` work too. Loopback registries are reached over plain
/// HTTP; others need --insecure-registry for that.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// For a multi-platform image, the platform to pull (OS/ARCH[/VARIANT]);
    /// this machine's by default.
    #[arg(long, value_name = "PLATFORM", env = "BERTH_DEFAULT_PLATFORM")]
    platform: Option<String>,

    /// Print only the image name.
    #[arg(short, long)]
    quiet: bool,

    #[command(flatten)]
    registry: RegistryArgs,

    /// The image to pull.
    #[arg(value_name = "NAME")]
    name: String,
}

pub fn run(args: PullArgs) -> Result<ExitCode> {
    let reference = Reference::parse(&args.name).with_context(|| format!("pull {}", args.name))?;
    let platform = args
        .platform
        .as_deref()
        .map(Platform::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let store = open_store()?;
    let client = args.registry.client(None)?;
    let printer = TransferPrinter::new(Direction::Pull, args.quiet);
    let pulled = pull(
        &store,
        &client,
        &reference,
        &PullOptions { platform },
        &printer,
    )
    .with_context(|| format!("pull {}", args.name))?;
    if !args.quiet {
        eprintln!("Digest: {}", pulled.digest);
        if pulled.downloaded == 0 {
            eprintln!("Status: Image is up to date for {}", reference.familiar());
        } else {
            eprintln!(
                "Status: Downloaded newer image for {}",
                reference.familiar()
            );
        }
    }
    emit(&format!("{}\n", pulled.name))?;
    Ok(ExitCode::SUCCESS)
}
