//! `extends`: a service built on another service of the same file or of
//! another file. The base is resolved first (it may extend in turn), then
//! the local definition is merged on top with the multi-file merge rules.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::Context;
use crate::doc_path::DocPath;
use crate::error::LoadError;
use crate::merge;
use crate::project::environment::Environment;
use crate::yaml::{Map, Node};

/// Resolves every `extends` in the services of `doc`, which was read from
/// `file`.
pub(super) fn resolve(
    ctx: &mut Context,
    doc: &mut Node,
    file: &Path,
    env: &Environment,
) -> Result<(), LoadError> {
    let Some(services) = doc.get_mut("services").and_then(Node::as_map_mut) else {
        return Ok(());
    };
    let names: Vec<String> = services
        .iter()
        .filter(|(_, s)| s.get("extends").is_some())
        .map(|(name, _)| name.clone())
        .collect();
    // Many services often extend from one file: it is read once.
    let mut sources = HashMap::new();
    for name in names {
        let mut chain = Vec::new();
        resolve_service(ctx, services, &name, file, env, &mut chain, &mut sources)?;
    }
    Ok(())
}

/// Resolves `name` in `services` (read from `file`) and stores the result
/// back. `chain` is the extends chain being followed, to refuse cycles;
/// `sources` holds the other files read so far, with what is resolved in
/// them.
fn resolve_service(
    ctx: &mut Context,
    services: &mut Map,
    name: &str,
    file: &Path,
    env: &Environment,
    chain: &mut Vec<(PathBuf, String)>,
    sources: &mut HashMap<PathBuf, Node>,
) -> Result<Node, LoadError> {
    let path = DocPath::root().key("services").key(name);
    let Some(service) = services.get(name).cloned() else {
        return Err(LoadError::project(format!("service \"{name}\" not found")));
    };
    let Some(extends) = service.get("extends").cloned() else {
        return Ok(service);
    };
    let here = (file.to_path_buf(), name.to_string());
    if chain.contains(&here) {
        let mut names: Vec<&str> = chain.iter().map(|(_, n)| n.as_str()).collect();
        names.push(name);
        return Err(LoadError::at(
            ctx.files.locate(&extends, &path.key("extends")),
            format!("extends cycle detected: {}", names.join(" -> ")),
        ));
    }
    chain.push(here);

    let extends_path = path.key("extends");
    let (base_name, base_file) = match (&extends.as_str(), extends.as_map()) {
        (Some(base), _) => (base.to_string(), None),
        (None, Some(map)) => {
            let base = map
                .get("service")
                .and_then(Node::scalar_text)
                .ok_or_else(|| {
                    LoadError::at(
                        ctx.files.locate(&extends, &extends_path),
                        "\"service\" is required: name the service to extend",
                    )
                })?;
            let base_file = map.get("file").and_then(Node::as_str).map(PathBuf::from);
            (base, base_file)
        }
        (None, None) => {
            return Err(LoadError::at(
                ctx.files.locate(&extends, &extends_path),
                "must be a service name or a mapping with `service` (and `file`)",
            ));
        }
    };

    let base = match base_file.filter(|f| f.as_path() != file) {
        None => {
            if !services.contains_key(&base_name) {
                return Err(LoadError::at(
                    ctx.files.locate(&extends, &extends_path),
                    format!("cannot extend service \"{base_name}\": no such service in this file"),
                ));
            }
            resolve_service(ctx, services, &base_name, file, env, chain, sources)?
        }
        Some(other) => {
            // Paths in the other file are relative to that file.
            let dir = other.parent().map(Path::to_path_buf).unwrap_or_default();
            if !other.is_file() {
                return Err(LoadError::at(
                    ctx.files.locate(&extends, &extends_path),
                    format!("extends file {} does not exist", other.display()),
                ));
            }
            // Taken out while it is resolved, so that the recursion can use
            // the cache too; put back with what was resolved in it.
            let mut other_doc = match sources.remove(&other) {
                Some(doc) => doc,
                None => ctx.load_file(&other, &dir, env)?,
            };
            let Some(other_services) = other_doc
                .get_mut("services")
                .and_then(Node::as_map_mut)
                .filter(|services| services.contains_key(&base_name))
            else {
                return Err(missing_in_file(
                    ctx,
                    &extends,
                    &extends_path,
                    &base_name,
                    &other,
                ));
            };
            let base =
                resolve_service(ctx, other_services, &base_name, &other, env, chain, sources)?;
            sources.insert(other, other_doc);
            base
        }
    };
    chain.pop();

    let mut local = service;
    if let Some(map) = local.as_map_mut() {
        map.shift_remove("extends");
    }
    let mut merged =
        merge::merge_service(base, local, &path).map_err(|err| ctx.files.error(err))?;
    if let Some(map) = merged.as_map_mut() {
        map.shift_remove("extends");
    }
    services.insert(name.to_string(), merged.clone());
    Ok(merged)
}

fn missing_in_file(
    ctx: &Context,
    extends: &Node,
    path: &DocPath,
    service: &str,
    file: &Path,
) -> LoadError {
    LoadError::at(
        ctx.files.locate(extends, path),
        format!(
            "cannot extend service \"{service}\": {} defines no such service",
            file.display()
        ),
    )
}
