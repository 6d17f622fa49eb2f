//! `berth`: the command-line front end. Thin by design: every command parses
//! its arguments, calls a library crate and renders what comes back.

mod commands;
mod compose_project;
mod progress;
mod registry;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Daemonless container image builder and local stack runner.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Build(Box<commands::build::BuildArgs>),
    Images(commands::images::ImagesArgs),
    Tag(commands::tag::TagArgs),
    Rmi(commands::rmi::RmiArgs),
    Inspect(commands::inspect::InspectArgs),
    Prune(commands::prune::PruneArgs),
    Pull(commands::pull::PullArgs),
    Push(commands::push::PushArgs),
    Login(commands::login::LoginArgs),
    Logout(commands::login::LogoutArgs),
    Config(commands::config::ConfigCommand),
    /// Compose commands under their docker-compose names.
    Compose(ComposeArgs),
}

/// `berth compose …`: the compose commands, taking the project options
/// before or after the command name as `docker compose` does.
#[derive(Debug, clap::Args)]
struct ComposeArgs {
    #[command(flatten)]
    project: compose_project::ProjectArgs,
    #[command(subcommand)]
    command: ComposeCommand,
}

#[derive(Debug, Subcommand)]
enum ComposeCommand {
    Config(commands::config::ConfigArgs),
}

fn main() -> ExitCode {
    if std::env::args_os().nth(1).as_deref()
        == Some(std::ffi::OsStr::new(berth_runtime::sandbox::INIT_ARG))
    {
        return berth_runtime::sandbox::init_main();
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Build(args) => commands::build::run(*args),
        Command::Images(args) => commands::images::run(args),
        Command::Tag(args) => commands::tag::run(args),
        Command::Rmi(args) => commands::rmi::run(args),
        Command::Inspect(args) => commands::inspect::run(args),
        Command::Prune(args) => commands::prune::run(args),
        Command::Pull(args) => commands::pull::run(args),
        Command::Push(args) => commands::push::run(args),
        Command::Login(args) => commands::login::login(args),
        Command::Logout(args) => commands::login::logout(args),
        Command::Config(args) => commands::config::run_command(args),
        Command::Compose(compose) => match compose.command {
            ComposeCommand::Config(args) => commands::config::run(&compose.project, args),
        },
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("berth: {err:#}");
            ExitCode::FAILURE
        }
    }
}
