//! `berth images`: the local images, as a table, JSON lines or bare IDs.
//! Also home of the small output helpers the image commands share.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use berth_builder::images::{self, ImageSummary};
use berth_registry::reference::Reference;
use berth_runtime::store::Store;
use clap::{Args, ValueEnum};

/// List local images.
///
/// Columns: REPOSITORY, TAG, IMAGE ID (the config digest, 12 digits),
/// CREATED and SIZE (config and layer blobs as stored, decimal units),
/// newest first.
#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Show only this repository's images (and only this tag, if given).
    #[arg(value_name = "REPOSITORY[:TAG]")]
    repository: Option<String>,

    /// Only show image IDs (each once).
    #[arg(short, long)]
    quiet: bool,

    /// Output format: `table`, or `json` for one JSON object per image and
    /// line (keys as `docker images --format json`).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,

    /// Show full image IDs (sha256:…).
    #[arg(long)]
    no_trunc: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Table,
    Json,
}

/// Opens the store at `$BERTH_ROOT` (or the default root).
pub(super) fn open_store() -> Result<Store> {
    Store::open_default().context("cannot open the image store")
}

/// Writes `text` to standard output. A closed pipe (`berth images | head`)
/// is not an error: the reader has what it wanted.
pub(super) fn emit(text: &str) -> Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write to standard output")
        }
        _ => Ok(()),
    }
}

pub fn run(args: ImagesArgs) -> Result<ExitCode> {
    let filter = args
        .repository
        .as_deref()
        .map(Reference::parse)
        .transpose()?;
    let store = open_store()?;
    let mut rows = images::list(&store)?;
    if let Some(filter) = &filter {
        rows.retain(|row| row.matches(filter));
    }
    let id = |row: &ImageSummary| {
        if args.no_trunc {
            row.id.to_string()
        } else {
            images::short_id(&row.id)
        }
    };

    let mut out = String::new();
    if args.quiet {
        let mut seen = Vec::new();
        for row in &rows {
            let id = id(row);
            if !seen.contains(&id) {
                out.push_str(&id);
                out.push('\n');
                seen.push(id);
            }
        }
        return emit(&out).map(|()| ExitCode::SUCCESS);
    }

    let now = images::unix_now();
    let table: Vec<[String; 5]> = rows
        .iter()
        .map(|row| {
            let (repository, tag) = names(row);
            let when = row.created.as_deref().and_then(images::parse_rfc3339);
            let since = when.map_or_else(|| "N/A".to_owned(), |t| images::human_since(t, now));
            if args.format == Format::Json {
                let created_at = when.map_or_else(|| "N/A".to_owned(), images::created_at);
                let line = serde_json::json!({
                    "Repository": repository,
                    "Tag": tag,
                    "ID": id(row),
                    "CreatedAt": created_at,
                    "CreatedSince": since,
                    "Size": images::human_size(row.size),
                });
                out.push_str(&line.to_string());
                out.push('\n');
            }
            [
                repository,
                tag,
                id(row),
                since,
                images::human_size(row.size),
            ]
        })
        .collect();
    if args.format == Format::Table {
        let header = ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"].map(str::to_owned);
        out = render_table(&header, &table);
    }
    emit(&out).map(|()| ExitCode::SUCCESS)
}

/// Repository and tag as `docker images` shows them, `<none>` when missing.
fn names(row: &ImageSummary) -> (String, String) {
    match &row.reference {
        Some(r) => (r.familiar_name(), r.tag().unwrap_or("<none>").to_owned()),
        None => ("<none>".to_owned(), "<none>".to_owned()),
    }
}

/// Columns laid out like Docker's tables: each column but the last is as
/// wide as its widest cell plus three spaces, and at least ten.
fn render_table(header: &[String; 5], rows: &[[String; 5]]) -> String {
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                let column = (widths[i] + 3).max(10);
                line.extend(std::iter::repeat_n(' ', column - cell.chars().count()));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
