//! The loading pipeline. Each file goes through:
//!
//! 1. parse (anchors, merge keys, tags);
//! 2. interpolate with the project environment;
//! 3. validate against the compose schema;
//! 4. normalise short syntaxes;
//! 5. resolve relative paths against the file's base directory;
//! 6. resolve `include`, then `extends`.
//!
//! The `-f` files are then merged in order, and the project is finished
//! (env files, defaults, profiles, resource names) before the consistency
//! checks and the typed model.

mod extends;
mod file;
mod finish;
mod include;
pub mod paths;

use std::path::{Path, PathBuf};

use crate::consistency;
use crate::error::{FileTable, LoadError};
use crate::merge;
use crate::model::Project;
use crate::normalize;
use crate::project::environment::Environment;
use crate::project::{ProjectOptions, ResolvedOptions, name};
use crate::yaml::Node;

/// A loaded project and what it was loaded from.
#[derive(Debug, Clone)]
pub struct LoadedProject {
    pub project: Project,
    /// The compose files read for it, in order (`-` for standard input).
    pub files: Vec<PathBuf>,
    pub project_directory: PathBuf,
    /// Every profile some service names, active or not, sorted.
    pub all_profiles: Vec<String>,
    /// The project environment interpolation used.
    pub environment: Environment,
}

/// Loads the project `options` describe.
pub fn load(options: &ProjectOptions) -> Result<LoadedProject, LoadError> {
    let resolved = options.resolve()?;
    load_resolved(&resolved, options.stdin.as_deref())
}

/// Loads a project from options already resolved.
pub fn load_resolved(
    resolved: &ResolvedOptions,
    stdin: Option<&str>,
) -> Result<LoadedProject, LoadError> {
    let mut ctx = Context {
        files: FileTable::default(),
        stdin,
        include_stack: Vec::new(),
        included: Vec::new(),
    };
    let doc = ctx.load_model(
        &resolved.files,
        &resolved.project_directory,
        &resolved.environment,
    )?;
    let project_name = project_name(resolved, &doc, &ctx.files)?;
    let finished = finish::finish(
        doc,
        &finish::Settings {
            project_name: &project_name,
            environment: &resolved.environment,
            profiles: &resolved.profiles,
        },
        &ctx.files,
    )?;
    consistency::check(&finished.doc, &ctx.files)?;
    let project = normalize::to_model(&finished.doc).map_err(|err| ctx.files.error(err))?;
    Ok(LoadedProject {
        project,
        files: resolved.files.clone(),
        project_directory: resolved.project_directory.clone(),
        all_profiles: finished.all_profiles,
        environment: resolved.environment.clone(),
    })
}

/// `-p`/`COMPOSE_PROJECT_NAME`, else the files' `name:`, else the project
/// directory's name made valid.
fn project_name(
    resolved: &ResolvedOptions,
    doc: &Node,
    files: &FileTable,
) -> Result<String, LoadError> {
    if let Some(given) = &resolved.project_name {
        return Ok(given.clone());
    }
    if let Some(node) = doc.get("name").filter(|n| !n.is_null()) {
        let text = node.scalar_text().unwrap_or_default();
        let path = crate::doc_path::DocPath::root().key("name");
        name::validate(&text)
            .map_err(|err| LoadError::at(files.locate(node, &path), err.message))?;
        return Ok(text);
    }
    let dir_name = resolved
        .project_directory
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let derived = name::normalize(&dir_name);
    if derived.is_empty() {
        return Err(LoadError::project(format!(
            "project name must not be empty: {} gives none; name the project with -p or a top-level `name:`",
            resolved.project_directory.display()
        )));
    }
    Ok(derived)
}

/// State shared while loading one project and everything it includes.
struct Context<'a> {
    files: FileTable,
    stdin: Option<&'a str>,
    /// The chain of includes being loaded, to refuse cycles.
    include_stack: Vec<PathBuf>,
    /// Every file included so far: a file included twice (directly and
    /// through another include) is loaded once.
    included: Vec<PathBuf>,
}

impl Context<'_> {
    /// Loads, resolves and merges `paths` (a project's `-f` list or an
    /// include's `path`), with relative paths based at `base_dir`.
    fn load_model(
        &mut self,
        paths: &[PathBuf],
        base_dir: &Path,
        env: &Environment,
    ) -> Result<Node, LoadError> {
        let mut merged: Option<Node> = None;
        for path in paths {
            let mut doc = self.load_file(path, base_dir, env)?;
            include::resolve(self, &mut doc, path, env)?;
            extends::resolve(self, &mut doc, path, env)?;
            merged = Some(match merged {
                None => doc,
                Some(base) => {
                    merge::merge_documents(base, doc).map_err(|err| self.files.error(err))?
                }
            });
        }
        let mut doc = merged.unwrap_or_else(|| Node::map(Default::default()));
        merge::apply_unicity(&mut doc);
        merge::strip_tags(&mut doc);
        Ok(doc)
    }
}
