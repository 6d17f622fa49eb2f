//! The project environment: the variables interpolation and compose's own
//! settings (`COMPOSE_FILE`, …) read. The shell's environment wins over env
//! files; among env files, the later one wins.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::dotenv;
use crate::error::{LoadError, Location};

pub type Environment = IndexMap<String, String>;

/// `os` overlaid on the env files, read in order. Inside a file, `${VAR}`
/// sees the shell first, then what earlier files and lines defined.
pub fn assemble(os: &Environment, env_files: &[PathBuf]) -> Result<Environment, LoadError> {
    let mut from_files = Environment::new();
    let lookup = |name: &str| os.get(name).cloned();
    for file in env_files {
        dotenv::read_file_into(file, &lookup, &mut from_files)
            .map_err(|err| env_file_error(err, file))?;
    }
    let mut env = from_files;
    for (k, v) in os {
        env.insert(k.clone(), v.clone());
    }
    Ok(env)
}

/// The env files to read: the ones given, or `.env` in `dir` when present.
pub fn default_env_files(given: &[PathBuf], dir: &Path) -> Vec<PathBuf> {
    if !given.is_empty() {
        return given.to_vec();
    }
    let dot_env = dir.join(".env");
    if dot_env.is_file() {
        vec![dot_env]
    } else {
        Vec::new()
    }
}

/// An env file's error, placed at the line of the env file it is about.
pub fn env_file_error(err: dotenv::DotenvError, file: &Path) -> LoadError {
    LoadError::at(
        Location {
            file: Some(err.path.clone().unwrap_or_else(|| file.to_path_buf())),
            line: err.line,
            ..Location::default()
        },
        err.kind.to_string(),
    )
}
