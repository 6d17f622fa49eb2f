//! Turning the command line and the environment into the files, directory,
//! name and profiles of one project, in Docker Compose's order of
//! precedence.

use std::path::{Path, PathBuf};

use crate::loader::paths::clean;

use super::discovery::{DEFAULT_FILES, find_default_files};
use super::environment::{self, Environment};
use crate::error::LoadError;

/// The file name that stands for standard input in `-f -`.
pub const STDIN: &str = "-";

/// The user's request, as the command line and the shell give it.
#[derive(Debug, Clone, Default)]
pub struct ProjectOptions {
    /// `-f` files in order; `-` is standard input.
    pub files: Vec<PathBuf>,
    pub project_directory: Option<PathBuf>,
    pub project_name: Option<String>,
    pub profiles: Vec<String>,
    /// `--env-file`, in order. When empty, `.env` in the project directory.
    pub env_files: Vec<PathBuf>,
    /// The directory relative paths on the command line start from.
    pub working_dir: PathBuf,
    /// The shell environment.
    pub environment: Environment,
    /// The text of standard input, when a file is `-`.
    pub stdin: Option<String>,
}

/// The options after applying defaults and `COMPOSE_*` variables.
#[derive(Debug, Clone)]
pub struct ResolvedOptions {
    /// Absolute paths (or `-`).
    pub files: Vec<PathBuf>,
    pub project_directory: PathBuf,
    /// A name given by `-p` or `COMPOSE_PROJECT_NAME` (already validated).
    pub project_name: Option<String>,
    pub profiles: Vec<String>,
    /// What interpolation sees: the shell over the env files.
    pub environment: Environment,
}

impl ProjectOptions {
    /// The options for the current process: its directory and environment.
    pub fn from_process() -> ProjectOptions {
        ProjectOptions {
            working_dir: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
            environment: std::env::vars().collect(),
            ..ProjectOptions::default()
        }
    }

    pub fn resolve(&self) -> Result<ResolvedOptions, LoadError> {
        let absolute = |p: &Path| clean(&self.working_dir.join(p));
        let given_dir = self.project_directory.as_deref().map(absolute);
        let first_file_dir = self
            .files
            .iter()
            .find(|f| f.as_os_str() != STDIN)
            .and_then(|f| absolute(f).parent().map(Path::to_path_buf));
        // `.env` can say which files to read, so it is read from the
        // directory known before the files are.
        let early_dir = given_dir
            .clone()
            .or(first_file_dir)
            .unwrap_or_else(|| self.working_dir.clone());
        let env_files: Vec<PathBuf> = self.env_files.iter().map(|f| absolute(f)).collect();
        let mut env = environment::assemble(
            &self.environment,
            &environment::default_env_files(&env_files, &early_dir),
        )?;

        let files: Vec<PathBuf> = if !self.files.is_empty() {
            self.files
                .iter()
                .map(|f| {
                    if f.as_os_str() == STDIN {
                        f.clone()
                    } else {
                        absolute(f)
                    }
                })
                .collect()
        } else if let Some(list) = env.get("COMPOSE_FILE").filter(|v| !v.is_empty()) {
            let separator = env
                .get("COMPOSE_PATH_SEPARATOR")
                .filter(|s| !s.is_empty())
                .cloned()
                .unwrap_or_else(|| ":".to_string());
            list.split(separator.as_str())
                .filter(|f| !f.is_empty())
                .map(|f| clean(&early_dir.join(f)))
                .collect()
        } else {
            let start = given_dir.as_deref().unwrap_or(&self.working_dir);
            find_default_files(start).ok_or_else(|| {
                LoadError::project(format!(
                    "no compose file found in {} or its parents: create {} or name one with -f",
                    start.display(),
                    DEFAULT_FILES[0]
                ))
            })?
        };
        for file in &files {
            if file.as_os_str() != STDIN && !file.is_file() {
                return Err(LoadError::file(
                    file,
                    "no such compose file: check the -f or COMPOSE_FILE path",
                ));
            }
        }

        let project_directory = given_dir.unwrap_or_else(|| {
            files
                .iter()
                .find(|f| f.as_os_str() != STDIN)
                .and_then(|f| f.parent().map(Path::to_path_buf))
                .unwrap_or_else(|| self.working_dir.clone())
        });
        if project_directory != early_dir && env_files.is_empty() {
            env = environment::assemble(
                &self.environment,
                &environment::default_env_files(&[], &project_directory),
            )?;
        }

        let project_name = match &self.project_name {
            Some(name) => Some(name.clone()),
            None => env
                .get("COMPOSE_PROJECT_NAME")
                .filter(|n| !n.is_empty())
                .cloned(),
        };
        if let Some(name) = &project_name {
            super::name::validate(name)?;
        }

        let profiles = if !self.profiles.is_empty() {
            self.profiles.clone()
        } else {
            env.get("COMPOSE_PROFILES")
                .map(|p| {
                    p.split(',')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default()
        };

        Ok(ResolvedOptions {
            files,
            project_directory,
            project_name,
            profiles,
            environment: env,
        })
    }
}
