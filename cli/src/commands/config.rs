//! `berth config` (also `berth compose config`): load, validate and print
//! a compose project the way `docker compose config` does.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use berth_composer::LoadedProject;
use clap::{Args, ValueEnum};

use crate::compose_project::ProjectArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Yaml,
    Json,
}

/// Print the compose project, fully resolved: files merged, variables
/// interpolated, short syntaxes in their long form, paths absolute.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "yaml")]
    format: Format,

    /// Print the service names, one per line.
    #[arg(long)]
    services: bool,

    /// Print the volume names, one per line.
    #[arg(long)]
    volumes: bool,

    /// Print every profile a service names, one per line.
    #[arg(long = "profiles")]
    list_profiles: bool,

    /// Print the image each service uses, one per line.
    #[arg(long)]
    images: bool,

    /// Only validate; print nothing.
    #[arg(short, long)]
    quiet: bool,
}

/// `berth config`: the project options and the config options together.
#[derive(Debug, Args)]
pub struct ConfigCommand {
    #[command(flatten)]
    project: ProjectArgs,
    #[command(flatten)]
    config: ConfigArgs,
}

pub fn run_command(command: ConfigCommand) -> Result<ExitCode> {
    run(&command.project, command.config)
}

pub fn run(project: &ProjectArgs, args: ConfigArgs) -> Result<ExitCode> {
    let loaded = berth_composer::load(&project.options()?)?;
    if args.quiet {
        return Ok(ExitCode::SUCCESS);
    }
    let text = render(&loaded, &args)?;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("writing the configuration")?;
    Ok(ExitCode::SUCCESS)
}

fn render(loaded: &LoadedProject, args: &ConfigArgs) -> Result<String> {
    let project = &loaded.project;
    let lines = |items: Vec<String>| items.into_iter().map(|i| i + "\n").collect::<String>();
    if args.services {
        return Ok(lines(project.services.keys().cloned().collect()));
    }
    if args.volumes {
        return Ok(lines(project.volumes.keys().cloned().collect()));
    }
    if args.list_profiles {
        return Ok(lines(loaded.all_profiles.clone()));
    }
    if args.images {
        return Ok(lines(
            project
                .services
                .iter()
                .map(|(name, service)| project.image_for(name, service))
                .collect(),
        ));
    }
    match args.format {
        Format::Yaml => {
            berth_composer::render::yaml(project).context("printing the project as YAML")
        }
        Format::Json => {
            berth_composer::render::json(project).context("printing the project as JSON")
        }
    }
}
