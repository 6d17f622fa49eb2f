//! `berth push`: upload a stored image to the registry its name names.

use std::process::ExitCode;

use anyhow::{Context, Result};
use berth_builder::transfer::push;
use berth_registry::reference::Reference;
use clap::Args;

use super::images::{emit, open_store};
use crate::progress::transfer::{Direction, TransferPrinter};
use crate::registry::RegistryArgs;

/// Upload an image to a registry.
///
/// NAME is the image's name in the local store, which says where it goes:
/// `registry.example/team/app:1` goes to registry.example. Give an image
/// such a name with `berth tag` or `berth build -t`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// Print only the pushed digest line.
    #[arg(short, long)]
    quiet: bool,

    #[command(flatten)]
    registry: RegistryArgs,

    /// The image to push.
    #[arg(value_name = "NAME")]
    name: String,
}

pub fn run(args: PushArgs) -> Result<ExitCode> {
    let reference = Reference::parse(&args.name).with_context(|| format!("push {}", args.name))?;
    let store = open_store()?;
    let client = args.registry.client(None)?;
    let printer = TransferPrinter::new(Direction::Push, args.quiet);
    let line = push_one(&store, &client, &reference, &printer)
        .with_context(|| format!("push {}", args.name))?;
    emit(&format!("{line}\n"))?;
    Ok(ExitCode::SUCCESS)
}

/// Pushes `reference` and returns the line docker prints for it:
/// `TAG: digest: sha256:… size: N`.
pub fn push_one(
    store: &berth_runtime::store::Store,
    client: &berth_registry::Client,
    reference: &Reference,
    printer: &TransferPrinter,
) -> Result<String> {
    let pushed = push(store, client, reference, printer)?;
    let tag = reference
        .tag()
        .unwrap_or(berth_registry::reference::DEFAULT_TAG);
    Ok(format!(
        "{tag}: digest: {} size: {}",
        pushed.digest, pushed.size
    ))
}
