//! `berth build`: builds an image from a Dockerfile and a context into the
//! local store, and optionally exports it (`--output`). `--check` only
//! lints the Dockerfile.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use berth_builder::build::{
    BuildError, BuildOptions, Platform, SecretSource, build, export_rootfs,
};
use berth_builder::dockerfile::check_source;
use berth_builder::export::{ExportTarget, export_image};
use berth_registry::reference::Reference;
use berth_runtime::layer::compress::{Compression, CompressionSpec};
use berth_runtime::store::Store;
use clap::Args;
use signal_hook::consts::{SIGINT, SIGTERM};

use crate::progress::transfer::{Direction, TransferPrinter};
use crate::progress::{ProgressMode, renderer};
use crate::registry::RegistryArgs;

/// Build an image from a Dockerfile.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Only parse and validate the Dockerfile; print problems as
    /// FILE:LINE: message and exit non-zero if there are errors.
    #[arg(long)]
    check: bool,

    /// Name of the Dockerfile (default: CONTEXT/Dockerfile); `-` reads stdin.
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    file: Option<PathBuf>,

    /// Name (and optionally tag) for the image, e.g. app:1.0; repeatable.
    #[arg(short = 't', long = "tag", value_name = "NAME")]
    tags: Vec<String>,

    /// Set a build-time variable (NAME=VALUE, or NAME to take it from the
    /// environment); repeatable.
    #[arg(long = "build-arg", value_name = "NAME[=VALUE]")]
    build_args: Vec<String>,

    /// Build only up to this stage.
    #[arg(long, value_name = "STAGE")]
    target: Option<String>,

    /// Target platform recorded in the image (OS/ARCH[/VARIANT]).
    #[arg(long, value_name = "PLATFORM", env = "BERTH_DEFAULT_PLATFORM")]
    platform: Option<String>,

    /// Do not use the build cache.
    #[arg(long)]
    no_cache: bool,

    /// Do not use the build cache for these stages; repeatable.
    #[arg(long = "no-cache-filter", value_name = "STAGE")]
    no_cache_filter: Vec<String>,

    /// A secret for `RUN --mount=type=secret`: id=ID,src=FILE or
    /// id=ID,env=VAR (id=ID alone reads the variable ID); repeatable.
    /// Secrets never enter a layer, the history or the cache key.
    #[arg(long = "secret", value_name = "id=ID,src=PATH")]
    secrets: Vec<String>,

    /// Grant an extra privilege: security.insecure lets
    /// `RUN --security=insecure` run with every capability; repeatable.
    #[arg(long = "allow", value_name = "ENTITLEMENT")]
    allow: Vec<String>,

    /// Add a label to the image (KEY=VALUE); repeatable.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,

    /// Layer compression: gzip, zstd or uncompressed.
    #[arg(long, value_name = "ALGORITHM", default_value = "gzip")]
    compression: String,

    /// Compression level (gzip 0-9, zstd 1-22).
    #[arg(long = "compression-level", value_name = "N")]
    compression_level: Option<i32>,

    /// Export the result: type=oci,dest=PATH (a directory, or a tar when
    /// PATH ends in .tar), type=docker,dest=FILE.tar (for docker load),
    /// type=local,dest=DIR (the root filesystem). A bare PATH means
    /// type=local,dest=PATH. Repeatable.
    #[arg(short = 'o', long = "output", value_name = "SPEC")]
    outputs: Vec<String>,

    /// Write the image ID to this file.
    #[arg(long, value_name = "FILE")]
    iidfile: Option<PathBuf>,

    /// Print only the image ID on success.
    #[arg(short, long)]
    quiet: bool,

    /// Progress output: auto (TTY view on a terminal), tty, plain, rawjson
    /// (JSON lines), quiet.
    #[arg(long, value_enum, default_value = "auto")]
    progress: ProgressMode,

    /// Push every -t name to its registry after the build.
    #[arg(long)]
    push: bool,

    /// Fetch FROM images from their registry even when the store has
    /// them (images the store lacks are always pulled).
    #[arg(long)]
    pull: bool,

    #[command(flatten)]
    registry: RegistryArgs,

    /// Build context directory.
    #[arg(default_value = ".", value_name = "CONTEXT")]
    context: PathBuf,
}

pub fn run(args: BuildArgs) -> Result<ExitCode> {
    let (display, source) = read_dockerfile(args.file.as_deref(), &args.context)?;
    if args.check {
        return Ok(check(&display, &source));
    }
    let mut options = options(&args, source)?;
    if args.push && options.tags.is_empty() {
        bail!("--push needs a name to push: add -t REGISTRY/REPOSITORY[:TAG]");
    }
    options.registry = Some(std::sync::Arc::new(
        args.registry.client(Some(options.cancel.clone()))?,
    ));
    options.pull = args.pull;
    let outputs = args
        .outputs
        .iter()
        .map(|o| parse_output(o))
        .collect::<Result<Vec<_>>>()?;

    let store = Store::open_default().context("cannot open the local image store")?;
    let mode = if args.quiet && args.progress == ProgressMode::Auto {
        ProgressMode::Quiet
    } else {
        args.progress
    };
    // Ctrl-C or SIGTERM stops the build cleanly (running RUN steps are
    // killed, their scratch directories removed); a second one exits at once.
    for signal in [SIGINT, SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 130, options.cancel.clone())
            .and_then(|_| signal_hook::flag::register(signal, options.cancel.clone()))
            .context("cannot install the signal handlers")?;
    }
    let progress = renderer(mode);
    let sink: &dyn berth_builder::progress::Progress = &*progress;
    let result = build(&store, &options, sink);
    progress.finish();
    let outcome = match result {
        Ok(o) => o,
        Err(BuildError::Cancelled) => {
            eprintln!("build cancelled");
            return Ok(ExitCode::from(130));
        }
        Err(e) => {
            eprintln!("{}", e.render(&display));
            return Ok(ExitCode::FAILURE);
        }
    };

    for output in &outputs {
        match output {
            Output::Export(target) => {
                export_image(&store, &outcome.image, &options.tags, target).with_context(|| {
                    format!(
                        "cannot export the image to {}",
                        target_path(target).display()
                    )
                })?;
            }
            Output::Local(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                export_rootfs(&store, &outcome.layers, dir)
                    .map_err(|e| anyhow::anyhow!(e.to_string()))?;
            }
        }
    }
    let id = outcome.id.to_string();
    if let Some(path) = &args.iidfile {
        std::fs::write(path, &id)
            .with_context(|| format!("cannot write the image ID to {}", path.display()))?;
    }
    if args.quiet {
        println!("{id}");
    } else if mode != ProgressMode::Quiet {
        eprintln!("writing image {id}");
        for tag in &options.tags {
            eprintln!("naming to {tag}");
        }
    }
    if args.push
        && let Some(client) = &options.registry
    {
        let printer = TransferPrinter::new(Direction::Push, mode == ProgressMode::Quiet);
        for tag in &options.tags {
            let line = super::push::push_one(&store, client, tag, &printer)
                .with_context(|| format!("push {}", tag.familiar()))?;
            if mode == ProgressMode::Quiet {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn check(display: &str, source: &[u8]) -> ExitCode {
    let report = check_source(source);
    for warning in &report.warnings {
        eprintln!("{display}:{}: warning: {}", warning.line, warning.message);
    }
    for error in &report.errors {
        eprintln!("{}", error.render(display));
    }
    if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn options(args: &BuildArgs, dockerfile: Vec<u8>) -> Result<BuildOptions> {
    let mut o = BuildOptions::new(args.context.clone(), dockerfile);
    o.dockerfile_path = match &args.file {
        Some(f) if f == Path::new("-") => None,
        Some(f) => Some(f.clone()),
        None => Some(args.context.join("Dockerfile")),
    };
    for arg in &args.build_args {
        match arg.split_once('=') {
            Some((k, v)) => {
                o.build_args.insert(k.to_owned(), v.to_owned());
            }
            // `--build-arg NAME` takes the value from the environment, and
            // is ignored when unset, as with docker.
            None => {
                if let Ok(v) = std::env::var(arg) {
                    o.build_args.insert(arg.clone(), v);
                }
            }
        }
    }
    o.target = args.target.clone();
    o.platform = args
        .platform
        .as_deref()
        .map(Platform::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    o.no_cache = args.no_cache;
    o.no_cache_filter = args.no_cache_filter.clone();
    for s in &args.secrets {
        let (id, source) = parse_secret(s)?;
        o.secrets.insert(id, source);
    }
    for a in &args.allow {
        match a.as_str() {
            "security.insecure" => o.allow_insecure = true,
            other => bail!("unknown --allow {other:?}: berth knows security.insecure"),
        }
    }
    // RUN steps re-execute berth as their sandbox's init.
    o.init_exe = Some(std::env::current_exe().context("cannot find the berth executable")?);
    o.labels = parse_pairs(&args.labels, "--label")?;
    let kind = Compression::parse(&args.compression).map_err(|e| anyhow::anyhow!("{e}"))?;
    o.compression =
        CompressionSpec::new(kind, args.compression_level).map_err(|e| anyhow::anyhow!("{e}"))?;
    // SOURCE_DATE_EPOCH as a build arg wins over the environment, as in BuildKit.
    let epoch = o
        .build_args
        .get("SOURCE_DATE_EPOCH")
        .cloned()
        .or_else(|| std::env::var("SOURCE_DATE_EPOCH").ok())
        .filter(|v| !v.is_empty());
    o.source_date_epoch = epoch
        .map(|v| {
            v.parse::<i64>().with_context(|| {
                format!("SOURCE_DATE_EPOCH=\"{v}\" is not a number of seconds since 1970")
            })
        })
        .transpose()?;
    o.tags = args
        .tags
        .iter()
        .map(|t| {
            Reference::parse(t)
                .map(Reference::with_default_tag)
                .with_context(|| format!("invalid tag {t:?}"))
        })
        .collect::<Result<_>>()?;
    Ok(o)
}

/// `id=ID,src=PATH`, `id=ID,env=VAR` or `id=ID` (the variable ID), as
/// `docker build --secret` takes them.
fn parse_secret(text: &str) -> Result<(String, SecretSource)> {
    let (mut id, mut src, mut env) = (None, None, None);
    for field in text.split(',') {
        match field.split_once('=') {
            Some(("id", v)) => id = Some(v.to_owned()),
            Some(("src" | "source", v)) => src = Some(PathBuf::from(v)),
            Some(("env", v)) => env = Some(v.to_owned()),
            Some(("type", "file" | "env")) => {}
            _ => bail!("invalid --secret {text:?}: use id=ID,src=FILE or id=ID,env=VAR"),
        }
    }
    let Some(id) = id.filter(|i| !i.is_empty()) else {
        bail!("invalid --secret {text:?}: give the secret an id, e.g. id=token,src=token.txt");
    };
    let source = match (src, env) {
        (Some(path), None) => SecretSource::File(path),
        (None, Some(var)) => SecretSource::Env(var),
        (None, None) => SecretSource::Env(id.clone()),
        (Some(_), Some(_)) => bail!("invalid --secret {text:?}: give src= or env=, not both"),
    };
    Ok((id, source))
}

fn parse_pairs(items: &[String], flag: &str) -> Result<BTreeMap<String, String>> {
    items
        .iter()
        .map(|item| match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => bail!("invalid {flag} {item:?}: use KEY=VALUE"),
        })
        .collect()
}

enum Output {
    Export(ExportTarget),
    Local(PathBuf),
}

fn target_path(t: &ExportTarget) -> &Path {
    match t {
        ExportTarget::OciDir(p) | ExportTarget::OciTar(p) | ExportTarget::DockerTar(p) => p,
    }
}

/// Parses an `--output` spec: `type=oci,dest=out`, or a bare path.
fn parse_output(spec: &str) -> Result<Output> {
    if !spec.contains('=') {
        return Ok(Output::Local(PathBuf::from(spec)));
    }
    let mut kind = None;
    let mut dest = None;
    for field in spec.split(',') {
        match field.split_once('=') {
            Some(("type", v)) => kind = Some(v.to_owned()),
            Some(("dest", v)) => dest = Some(PathBuf::from(v)),
            _ => bail!(
                "invalid --output {spec:?}: unknown field {field:?} (use type=oci|docker|local,dest=PATH)"
            ),
        }
    }
    let dest = dest.with_context(|| format!("invalid --output {spec:?}: dest=PATH is missing"))?;
    let is_tar = dest.extension().is_some_and(|e| e == "tar") || dest == Path::new("-");
    Ok(match kind.as_deref() {
        Some("oci") if is_tar => Output::Export(ExportTarget::OciTar(dest)),
        Some("oci") => Output::Export(ExportTarget::OciDir(dest)),
        Some("docker") => Output::Export(ExportTarget::DockerTar(dest)),
        Some("local") => Output::Local(dest),
        Some(other) => {
            bail!("invalid --output {spec:?}: unknown type {other:?} (use oci, docker or local)")
        }
        None => bail!("invalid --output {spec:?}: type= is missing (use oci, docker or local)"),
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
