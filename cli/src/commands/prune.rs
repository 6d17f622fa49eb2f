//! `berth prune`: reclaim disk space from what no named image needs.

use std::io::{self, BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use berth_builder::images::{self, PruneOptions};
use clap::Args;

use super::images::{emit, open_store};

/// Remove unused data: blobs, snapshots and stale build cache.
///
/// Removes blobs (layers, configs, manifests) and unpacked layer snapshots
/// that neither a named image nor a build-cache record uses, build-cache
/// records whose layer is gone, and leftovers of interrupted builds. Named
/// images are never touched. With -a the whole build cache goes too, so
/// everything not used by a named image is removed (the next build starts
/// cold).
///
/// Blobs and snapshots written in the last 10 minutes are kept: they may
/// belong to a build running in another process.
///
/// Asks for confirmation when standard input is a terminal. When it is not
/// (scripts, CI), berth does not prompt and refuses to prune unless -f is
/// given, so that a script never prunes by accident.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Also remove the whole build cache.
    #[arg(short, long)]
    all: bool,

    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(short, long)]
    force: bool,
}

pub fn run(args: PruneArgs) -> Result<ExitCode> {
    if !args.force && !confirm(args.all)? {
        eprintln!("Nothing was removed.");
        return Ok(ExitCode::SUCCESS);
    }
    let store = open_store()?;
    let report = images::prune(&store, &PruneOptions { all: args.all })?;
    emit(&format!(
        "Deleted blobs: {}, snapshots: {}, cache records: {}\nTotal reclaimed space: {}\n",
        report.blobs_removed,
        report.snapshots_removed,
        report.cache_records_removed,
        images::human_size(report.bytes_freed),
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// Asks on the terminal; refuses outright when there is none to ask on.
fn confirm(all: bool) -> Result<bool> {
    let stdin = io::stdin();
    if !stdin.is_terminal() {
        bail!(
            "refusing to prune without confirmation: standard input is not a terminal; pass -f (--force) to prune without asking"
        );
    }
    let what = if all {
        "  - all build cache\n  - all blobs and snapshots not used by a named image\n"
    } else {
        "  - blobs and snapshots used by neither a named image nor the build cache\n  - build cache records whose layers are gone\n"
    };
    let mut err = io::stderr().lock();
    write!(
        err,
        "WARNING! This will remove:\n{what}\nAre you sure you want to continue? [y/N] "
    )
    .and_then(|()| err.flush())
    .context("cannot write to standard error")?;
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .context("cannot read the answer from standard input")?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}
