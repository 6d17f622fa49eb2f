//! The last stage on the merged tree: what Docker Compose fills in before
//! it shows or runs a project — env files folded into `environment`,
//! profiles applied, the `default` network, resource names, build
//! defaults.

use std::collections::BTreeSet;
use std::path::Path;

use indexmap::IndexMap;

use crate::doc_path::DocPath;
use crate::dotenv;
use crate::error::{FileTable, LoadError};
use crate::project::environment::{Environment, env_file_error};
use crate::yaml::{Map, Node, Value};

pub(super) struct Settings<'a> {
    pub project_name: &'a str,
    pub environment: &'a Environment,
    pub profiles: &'a [String],
}

pub(super) struct Finished {
    pub doc: Node,
    pub all_profiles: Vec<String>,
}

pub(super) fn finish(
    mut doc: Node,
    settings: &Settings,
    files: &FileTable,
) -> Result<Finished, LoadError> {
    let Some(top) = doc.as_map_mut() else {
        return Err(LoadError::project("a compose project must be a mapping"));
    };
    top.shift_remove("include");
    let mut services = top
        .shift_remove("services")
        .filter(|s| !s.is_null())
        .unwrap_or_else(|| Node::map(Map::new()));
    let all_profiles = apply_profiles(&mut services, settings.profiles, files)?;

    let mut uses_default_network = false;
    if let Some(services) = services.as_map_mut() {
        for (name, service) in services.iter_mut() {
            let path = DocPath::root().key("services").key(name);
            if service.is_null() {
                *service = Node::map(Map::new());
            }
            fold_env_files(service, &path, settings.environment, files)?;
            fold_label_files(service, settings.environment)?;
            let Some(map) = service.as_map_mut() else {
                continue;
            };
            if !map.contains_key("networks") && !map.contains_key("network_mode") {
                map.insert(
                    "networks".into(),
                    Node::map(Map::from([("default".to_string(), Node::null())])),
                );
            }
            if map.get("networks").and_then(|n| n.get("default")).is_some() {
                uses_default_network = true;
            }
            if let Some(build) = map.get_mut("build").and_then(Node::as_map_mut)
                && !build.contains_key("dockerfile")
                && !build.contains_key("dockerfile_inline")
            {
                build.insert("dockerfile".into(), Node::string("Dockerfile"));
            }
        }
    }

    let mut out = Map::new();
    out.insert("name".into(), Node::string(settings.project_name));
    out.insert("services".into(), services);
    for kind in ["networks", "volumes", "configs", "secrets"] {
        let mut section = top
            .shift_remove(kind)
            .filter(|s| !s.is_null())
            .unwrap_or_else(|| Node::map(Map::new()));
        if kind == "networks"
            && uses_default_network
            && let Some(map) = section.as_map_mut()
        {
            map.entry("default".to_string()).or_insert_with(Node::null);
        }
        name_resources(&mut section, settings.project_name);
        if section.as_map().is_some_and(|m| !m.is_empty()) {
            sort_keys(&mut section);
            out.insert(kind.into(), section);
        }
    }
    top.shift_remove("name");
    top.shift_remove("version");
    for (key, value) in std::mem::take(top) {
        out.insert(key, value);
    }
    Ok(Finished {
        doc: Node::map(out),
        all_profiles,
    })
}

/// Drops services whose profiles are all inactive, and returns every
/// profile named anywhere. A kept service may not depend on a dropped one.
fn apply_profiles(
    services: &mut Node,
    active: &[String],
    files: &FileTable,
) -> Result<Vec<String>, LoadError> {
    let Some(map) = services.as_map_mut() else {
        return Ok(Vec::new());
    };
    let profiles_of = |service: &Node| -> Vec<String> {
        service
            .get("profiles")
            .and_then(Node::as_seq)
            .map(|p| p.iter().filter_map(Node::scalar_text).collect())
            .unwrap_or_default()
    };
    let all: BTreeSet<String> = map.values().flat_map(profiles_of).collect();
    let is_active = |service: &Node| {
        let own = profiles_of(service);
        own.is_empty() || active.iter().any(|a| a == "*" || own.contains(a))
    };
    let inactive: IndexMap<String, Vec<String>> = map
        .iter()
        .filter(|(_, s)| !is_active(s))
        .map(|(name, s)| (name.clone(), profiles_of(s)))
        .collect();
    for (name, service) in map.iter() {
        if inactive.contains_key(name) {
            continue;
        }
        let Some(deps) = service.get("depends_on").and_then(Node::as_map) else {
            continue;
        };
        for (dep, spec) in deps {
            let required = spec
                .get("required")
                .map(|r| r.value != Value::Bool(false))
                .unwrap_or(true);
            if let (Some(profiles), true) = (inactive.get(dep), required) {
                let path = DocPath::root()
                    .key("services")
                    .key(name)
                    .key("depends_on")
                    .key(dep);
                return Err(LoadError::at(
                    files.locate(spec, &path),
                    format!(
                        "service \"{name}\" depends on \"{dep}\", which is only active with profile {}: add --profile {}",
                        profiles
                            .iter()
                            .map(|p| format!("\"{p}\""))
                            .collect::<Vec<_>>()
                            .join(" or "),
                        profiles.first().map(String::as_str).unwrap_or_default()
                    ),
                ));
            }
        }
    }
    map.retain(|name, _| !inactive.contains_key(name));
    // An optional dependency on a service left out by its profiles is
    // dropped, not reported as undefined.
    for service in map.values_mut() {
        if let Some(deps) = service.get_mut("depends_on").and_then(Node::as_map_mut) {
            deps.retain(|dep, _| !inactive.contains_key(dep));
        }
    }
    Ok(all.into_iter().collect())
}

/// Reads the service's env files into `environment`. `environment` wins;
/// an entry without a value takes the project environment's value. Inside
/// the files, `${VAR}` sees the project environment, then the service's
/// `environment`, then earlier files.
fn fold_env_files(
    service: &mut Node,
    path: &DocPath,
    project_env: &Environment,
    files: &FileTable,
) -> Result<(), LoadError> {
    let Some(map) = service.as_map_mut() else {
        return Ok(());
    };
    let env_files = map.shift_remove("env_file");
    let declared: Vec<(String, Option<String>)> = map
        .get("environment")
        .and_then(Node::as_map)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.scalar_text()))
                .collect()
        })
        .unwrap_or_default();
    let mut from_files: IndexMap<String, String> = IndexMap::new();
    if let Some(entries) = env_files.as_ref().and_then(Node::as_seq) {
        for (i, entry) in entries.iter().enumerate() {
            let Some(file) = entry.get("path").and_then(Node::as_str).or(entry.as_str()) else {
                continue;
            };
            let required = entry
                .get("required")
                .map(|r| r.value != Value::Bool(false))
                .unwrap_or(true);
            let file = Path::new(file);
            if !file.exists() {
                if required {
                    return Err(LoadError::at(
                        files.locate(entry, &path.key("env_file").index(i)),
                        format!(
                            "env file {} not found: create it or mark it `required: false`",
                            file.display()
                        ),
                    ));
                }
                continue;
            }
            let lookup = |name: &str| {
                project_env.get(name).cloned().or_else(|| {
                    declared
                        .iter()
                        .find(|(k, _)| k == name)
                        .and_then(|(_, v)| v.clone())
                })
            };
            dotenv::read_file_into(file, &lookup, &mut from_files)
                .map_err(|err| env_file_error(err, file))?;
        }
    }
    if from_files.is_empty() && declared.iter().all(|(_, v)| v.is_some()) {
        return Ok(());
    }
    let mut environment: Map = from_files
        .into_iter()
        .map(|(k, v)| (k, Node::string(v)))
        .collect();
    let declared_nodes = map
        .get("environment")
        .and_then(Node::as_map)
        .cloned()
        .unwrap_or_default();
    for (key, node) in declared_nodes {
        let value = match node.scalar_text() {
            Some(_) => node,
            None => match project_env.get(&key) {
                Some(v) => node.derived(Value::String(v.clone())),
                None => environment.get(&key).cloned().unwrap_or(node),
            },
        };
        environment.insert(key, value);
    }
    environment.sort_keys();
    map.insert("environment".into(), Node::map(environment));
    Ok(())
}

/// Reads `label_file` entries into `labels`; `labels` wins.
fn fold_label_files(service: &mut Node, project_env: &Environment) -> Result<(), LoadError> {
    let Some(map) = service.as_map_mut() else {
        return Ok(());
    };
    let Some(label_files) = map.shift_remove("label_file") else {
        return Ok(());
    };
    let list: Vec<&Node> = match &label_files.value {
        Value::Seq(items) => items.iter().collect(),
        Value::String(_) => vec![&label_files],
        _ => Vec::new(),
    };
    let mut labels = Map::new();
    for entry in list {
        let Some(file) = entry.as_str() else { continue };
        let lookup = |name: &str| project_env.get(name).cloned();
        let values = dotenv::read_file(Path::new(file), &lookup)
            .map_err(|err| env_file_error(err, Path::new(file)))?;
        labels.extend(values.into_iter().map(|(k, v)| (k, Node::string(v))));
    }
    if let Some(own) = map.get("labels").and_then(Node::as_map) {
        labels.extend(own.clone());
    }
    labels.sort_keys();
    map.insert("labels".into(), Node::map(labels));
    Ok(())
}

/// Networks, volumes, configs and secrets get the name the engine will
/// use: `<project>_<key>`, or the key itself for external ones.
fn name_resources(section: &mut Node, project: &str) {
    let Some(map) = section.as_map_mut() else {
        return;
    };
    for (key, resource) in map.iter_mut() {
        if resource.is_null() {
            *resource = Node::map(Map::new());
        }
        let Some(fields) = resource.as_map_mut() else {
            continue;
        };
        if fields.get("name").is_some_and(|n| !n.is_null()) {
            continue;
        }
        let external = fields
            .get("external")
            .is_some_and(|e| e.value == Value::Bool(true));
        let name = if external {
            key.clone()
        } else {
            format!("{project}_{key}")
        };
        fields.insert("name".into(), Node::string(name));
    }
}

fn sort_keys(section: &mut Node) {
    if let Some(map) = section.as_map_mut() {
        map.sort_keys();
    }
}
