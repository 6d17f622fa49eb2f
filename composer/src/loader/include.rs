//! `include`: other compose projects loaded completely (their own project
//! directory and env files) and their resources added to this one.

use std::path::{Path, PathBuf};

use super::Context;
use crate::doc_path::DocPath;
use crate::error::LoadError;
use crate::project::environment::{self, Environment};
use crate::yaml::{Node, Value};

/// Top-level sections an included project contributes to.
const RESOURCES: [&str; 6] = [
    "services", "networks", "volumes", "configs", "secrets", "models",
];

/// Resolves the `include` list of `doc` (read from `file`).
pub(super) fn resolve(
    ctx: &mut Context,
    doc: &mut Node,
    file: &Path,
    env: &Environment,
) -> Result<(), LoadError> {
    let Some(includes) = doc.as_map_mut().and_then(|m| m.shift_remove("include")) else {
        return Ok(());
    };
    let Some(entries) = includes.as_seq() else {
        return Ok(());
    };
    for (i, entry) in entries.iter().enumerate() {
        let path = DocPath::root().key("include").index(i);
        let (paths, project_dir, env_files) = read_entry(entry);
        if paths.is_empty() {
            return Err(LoadError::at(
                ctx.files.locate(entry, &path),
                "\"path\" is required: name the compose file to include",
            ));
        }
        for included in &paths {
            if included == file || ctx.include_stack.contains(included) {
                let mut chain: Vec<String> = ctx
                    .include_stack
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect();
                chain.push(file.display().to_string());
                chain.push(included.display().to_string());
                return Err(LoadError::at(
                    ctx.files.locate(entry, &path),
                    format!("include cycle detected: {}", chain.join(" -> ")),
                ));
            }
            if !included.is_file() {
                return Err(LoadError::at(
                    ctx.files.locate(entry, &path),
                    format!("included file {} does not exist", included.display()),
                ));
            }
        }
        if paths.iter().all(|p| ctx.included.contains(p)) {
            continue;
        }
        ctx.included.extend(paths.iter().cloned());
        let dir = project_dir
            .unwrap_or_else(|| paths[0].parent().map(Path::to_path_buf).unwrap_or_default());
        // The including project's variables win over the include's own.
        let include_env =
            environment::assemble(env, &environment::default_env_files(&env_files, &dir))
                .map_err(|err| LoadError::at(ctx.files.locate(entry, &path), err.to_string()))?;
        ctx.include_stack.push(file.to_path_buf());
        let included = ctx.load_model(&paths, &dir, &include_env);
        ctx.include_stack.pop();
        add_resources(ctx, doc, included?, entry, &path, &paths[0])?;
    }
    Ok(())
}

/// The paths, project directory and env files of one `include` entry
/// (already made absolute by path resolution).
fn read_entry(entry: &Node) -> (Vec<PathBuf>, Option<PathBuf>, Vec<PathBuf>) {
    let strings = |node: Option<&Node>| -> Vec<PathBuf> {
        match node.map(|n| &n.value) {
            Some(Value::String(s)) => vec![PathBuf::from(s)],
            Some(Value::Seq(items)) => items
                .iter()
                .filter_map(Node::as_str)
                .map(PathBuf::from)
                .collect(),
            _ => Vec::new(),
        }
    };
    match &entry.value {
        Value::String(s) => (vec![PathBuf::from(s)], None, Vec::new()),
        Value::Map(_) => (
            strings(entry.get("path")),
            entry
                .get("project_directory")
                .and_then(Node::as_str)
                .map(PathBuf::from),
            strings(entry.get("env_file")),
        ),
        _ => (Vec::new(), None, Vec::new()),
    }
}

/// Adds what `included` defines to `doc`. A name defined on both sides must
/// be defined identically.
fn add_resources(
    ctx: &Context,
    doc: &mut Node,
    included: Node,
    entry: &Node,
    path: &DocPath,
    from: &Path,
) -> Result<(), LoadError> {
    let Value::Map(included) = included.value else {
        return Ok(());
    };
    let Some(target) = doc.as_map_mut() else {
        return Ok(());
    };
    for (kind, section) in included {
        if !RESOURCES.contains(&kind.as_str()) {
            continue;
        }
        let Value::Map(section) = section.value else {
            continue;
        };
        let existing = target
            .entry(kind.clone())
            .or_insert_with(|| Node::map(Default::default()));
        if existing.is_null() {
            *existing = Node::map(Default::default());
        }
        let Some(existing) = existing.as_map_mut() else {
            continue;
        };
        for (name, resource) in section {
            match existing.get(&name) {
                Some(mine) if *mine != resource => {
                    return Err(LoadError::at(
                        ctx.files.locate(entry, path),
                        format!(
                            "{kind}.{name} is defined both here and in the included {}: rename one of them",
                            from.display()
                        ),
                    ));
                }
                Some(_) => {}
                None => {
                    existing.insert(name, resource);
                }
            }
        }
    }
    Ok(())
}
