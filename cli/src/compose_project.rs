//! The options that pick a compose project, shared by every compose
//! command (`berth config`, `berth compose …`).

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result};
use berth_composer::ProjectOptions;
use berth_composer::project::STDIN;
use clap::Args;

#[derive(Debug, Default, Args)]
pub struct ProjectArgs {
    /// Compose file to read (repeatable; later files override earlier ones;
    /// `-` reads standard input). Default: compose.yaml (or compose.yml,
    /// docker-compose.yaml, docker-compose.yml) in the current directory or
    /// a parent, plus its override file.
    #[arg(short = 'f', long = "file", value_name = "FILE", global = true)]
    pub files: Vec<PathBuf>,

    /// Project name (default: `name:` in the file, else the project
    /// directory's name). Also COMPOSE_PROJECT_NAME.
    #[arg(short = 'p', long = "project-name", value_name = "NAME", global = true)]
    pub project_name: Option<String>,

    /// Directory relative paths in compose files start from (default: the
    /// first compose file's directory).
    #[arg(long = "project-directory", value_name = "DIR", global = true)]
    pub project_directory: Option<PathBuf>,

    /// Activate a profile (repeatable; `*` activates all). Also
    /// COMPOSE_PROFILES (comma-separated).
    #[arg(long = "profile", value_name = "NAME", global = true)]
    pub active_profiles: Vec<String>,

    /// Variables for interpolation from this file instead of `.env`
    /// (repeatable; later files win; the shell environment wins over all).
    #[arg(long = "env-file", value_name = "FILE", global = true)]
    pub env_files: Vec<PathBuf>,
}

impl ProjectArgs {
    /// The loader's options: these flags over the current directory and
    /// environment. Standard input is read when a file is `-`.
    pub fn options(&self) -> Result<ProjectOptions> {
        let mut options = ProjectOptions::from_process();
        options.files = self.files.clone();
        options.project_name = self.project_name.clone();
        options.project_directory = self.project_directory.clone();
        options.profiles = self.active_profiles.clone();
        options.env_files = self.env_files.clone();
        if self.files.iter().any(|f| f.as_os_str() == STDIN) {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading the compose file from standard input")?;
            options.stdin = Some(text);
        }
        Ok(options)
    }
}
