//! The short→long syntax normaliser and the step from the canonical tree
//! to the typed [`Project`].
//!
//! [`normalize_document`] runs after interpolation, schema validation and
//! merging. It rewrites every short syntax into the long form `docker
//! compose config` prints (`"8080:80"` → `{mode, target, published,
//! protocol}`), converts scalars to the type the model expects (`"true"` →
//! `true`, `512m` → `536870912`, `90s` → `"1m30s"`), and sorts the maps
//! compose prints sorted. Its output is a fixed point: normalising it again,
//! or normalising its printed form read back, changes nothing.
//!
//! It is pure: it resolves no paths, reads no files, looks up no
//! variables and fills no defaults that depend on the project (the
//! `default` network, `build.dockerfile`, secret targets): the loader does.

mod fields;
mod ports;
mod service;
mod shell_words;
mod volumes;

use serde::de::DeserializeOwned;

use crate::doc_path::DocPath;
use crate::model::{Config, Include, Model, Network, Project, Secret, Service, Volume};
use crate::yaml::{Map, Node, Value};

use fields::{Field, Table, each, error, fields, map_node, sorted_map};

/// A value the schema accepts but compose cannot use (`ports: ["80:abc"]`).
pub type NormalizeError = crate::node_error::NodeError;

/// A canonical tree that does not fit the model (a loader bug, or a tree
/// that did not go through [`normalize_document`]).
pub type ModelError = crate::node_error::NodeError;

const NETWORK: Table = &[
    ("attachable", Field::Bool),
    ("driver", Field::Text),
    ("driver_opts", Field::Dict),
    ("enable_ipv4", Field::Bool),
    ("enable_ipv6", Field::Bool),
    ("external", Field::Bool),
    ("internal", Field::Bool),
    ("ipam", Field::Struct(IPAM)),
    ("labels", Field::Dict),
    ("name", Field::Text),
];
const IPAM: Table = &[
    ("config", Field::Structs(IPAM_POOL)),
    ("driver", Field::Text),
    ("options", Field::Dict),
];
const IPAM_POOL: Table = &[
    ("aux_addresses", Field::Dict),
    ("gateway", Field::Text),
    ("ip_range", Field::Text),
    ("subnet", Field::Text),
];
const VOLUME: Table = &[
    ("driver", Field::Text),
    ("driver_opts", Field::Dict),
    ("external", Field::Bool),
    ("labels", Field::Dict),
    ("name", Field::Text),
];
const SECRET: Table = &[
    ("driver", Field::Text),
    ("driver_opts", Field::Dict),
    ("environment", Field::Text),
    ("external", Field::Bool),
    ("file", Field::Text),
    ("labels", Field::Dict),
    ("name", Field::Text),
    ("template_driver", Field::Text),
];
const CONFIG: Table = &[
    ("content", Field::Text),
    ("environment", Field::Text),
    ("external", Field::Bool),
    ("file", Field::Text),
    ("labels", Field::Dict),
    ("name", Field::Text),
    ("template_driver", Field::Text),
];
const MODEL: Table = &[
    ("context_size", Field::Int),
    ("model", Field::Text),
    ("name", Field::Text),
    ("runtime_flags", Field::List),
];

/// The sections holding named resources, with their tables.
const RESOURCES: [(&str, Table); 5] = [
    ("networks", NETWORK),
    ("volumes", VOLUME),
    ("secrets", SECRET),
    ("configs", CONFIG),
    ("models", MODEL),
];

/// Rewrites a merged compose document into canonical form.
pub fn normalize_document(doc: Node) -> Result<Node, NormalizeError> {
    let root = DocPath::root();
    if doc.is_null() {
        return Ok(Node::map(Map::new()));
    }
    let Some(map) = doc.as_map() else {
        return Err(error(
            &doc,
            &root,
            format!("a compose file must be a mapping, found {}", doc.kind()),
        ));
    };
    let mut out = Map::with_capacity(map.len());
    for (key, value) in map {
        let path = root.key(key);
        let value = value.clone();
        let converted = match key.as_str() {
            "name" if !value.is_null() => fields::text(value, &path)?,
            "services" => section(value, &path, service::service)?,
            _ => match RESOURCES.iter().find(|(name, _)| name == key) {
                Some(&(_, table)) => section(value, &path, |entry, entry_path| {
                    resource(entry, entry_path, table)
                })?,
                None => value,
            },
        };
        out.insert(key.clone(), converted);
    }
    let mut doc = doc.derived(Value::Map(out));
    clear_tags(&mut doc);
    Ok(doc)
}

/// A top-level mapping of named entries, sorted by name (`null` is empty).
fn section(
    node: Node,
    path: &DocPath,
    convert: impl FnMut(Node, &DocPath) -> Result<Node, NormalizeError>,
) -> Result<Node, NormalizeError> {
    if node.is_null() {
        return Ok(node.derived(Value::Map(Map::new())));
    }
    sorted_map(node, path, convert)
}

/// A top-level network, volume, config, secret or model. `name:` alone is
/// the default definition; the legacy `external: {name: x}` becomes
/// `external: true` and `name: x`.
fn resource(node: Node, path: &DocPath, table: Table) -> Result<Node, NormalizeError> {
    let mut node = if node.is_null() {
        node.derived(Value::Map(Map::new()))
    } else {
        node
    };
    if let Some(map) = node.as_map_mut()
        && let Some(external) = map.get("external")
        && matches!(external.value, Value::Map(_))
    {
        let legacy_name = external.get("name").cloned();
        let replacement = external.derived(Value::Bool(true));
        map.insert("external".into(), replacement);
        if let Some(name) = legacy_name
            && !map.contains_key("name")
        {
            map.insert("name".into(), name);
        }
    }
    fields(node, path, table)
}

/// Tags (`!reset`, `!override`) only matter while merging; the canonical
/// tree compares equal to its printed form read back.
fn clear_tags(node: &mut Node) {
    node.tag = None;
    match &mut node.value {
        Value::Seq(items) => items.iter_mut().for_each(clear_tags),
        Value::Map(map) => map.values_mut().for_each(clear_tags),
        _ => {}
    }
}

const INCLUDE: Table = &[
    ("env_file", Field::List),
    ("path", Field::List),
    ("project_directory", Field::Text),
];

/// The `include` entries of a document (before merging), in long form.
/// Paths are as written: resolving them is the loader's job.
pub fn include_entries(doc: &Node) -> Result<Vec<Include>, NormalizeError> {
    let path = DocPath::root().key("include");
    let Some(list) = doc.get("include").filter(|n| !n.is_null()) else {
        return Ok(Vec::new());
    };
    let list = each(list.clone(), &path, |item, item_path| match &item.value {
        Value::Map(_) => fields(item, item_path, INCLUDE),
        _ => {
            let file = fields::scalar_text(&item, item_path)?;
            let paths = Value::Seq(vec![item.derived(Value::String(file))]);
            Ok(map_node(&item, vec![("path", paths)]))
        }
    })?;
    let items = list.as_seq().unwrap_or_default();
    let mut entries = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let entry = serde_json::from_value(item.to_json())
            .map_err(|e| error(item, &path.index(i), e.to_string()))?;
        entries.push(entry);
    }
    Ok(entries)
}

/// Reads a canonical tree (the output of [`normalize_document`]) into the
/// typed model. Keys the model does not know, other than `x-*`, are
/// dropped.
pub fn to_model(doc: &Node) -> Result<Project, ModelError> {
    serde_json::from_value(doc.to_json()).map_err(|err| locate(doc, &err.to_string()))
}

/// Finds where a deserialisation error comes from by reading the document
/// piece by piece: the failing section, entry, then key. serde_json's
/// errors from a `Value` carry no position, and this keeps the model free
/// of path-tracking wrappers.
fn locate(doc: &Node, message: &str) -> ModelError {
    let root = DocPath::root();
    let Some(map) = doc.as_map() else {
        return model_error(doc, &root, message);
    };
    for (key, value) in map {
        let path = root.key(key);
        let mut single = Map::new();
        single.insert(key.clone(), value.clone());
        let Err(err) = serde_json::from_value::<Project>(Node::map(single).to_json()) else {
            continue;
        };
        let found = match key.as_str() {
            "services" => locate_entry::<Service>(value, &path),
            "networks" => locate_entry::<Network>(value, &path),
            "volumes" => locate_entry::<Volume>(value, &path),
            "secrets" => locate_entry::<Secret>(value, &path),
            "configs" => locate_entry::<Config>(value, &path),
            "models" => locate_entry::<Model>(value, &path),
            _ => None,
        };
        return found.unwrap_or_else(|| model_error(value, &path, &err.to_string()));
    }
    model_error(doc, &root, message)
}

/// The first entry of a section that fails to read as `T`, narrowed to its
/// first failing key.
fn locate_entry<T: DeserializeOwned>(section: &Node, path: &DocPath) -> Option<ModelError> {
    for (name, entry) in section.as_map()? {
        let entry_path = path.key(name);
        let Err(err) = serde_json::from_value::<T>(entry.to_json()) else {
            continue;
        };
        if let Some(fields) = entry.as_map() {
            for (key, value) in fields {
                let mut single = Map::new();
                single.insert(key.clone(), value.clone());
                if let Err(err) = serde_json::from_value::<T>(Node::map(single).to_json()) {
                    return Some(model_error(value, &entry_path.key(key), &err.to_string()));
                }
            }
        }
        return Some(model_error(entry, &entry_path, &err.to_string()));
    }
    None
}

fn model_error(node: &Node, path: &DocPath, message: &str) -> ModelError {
    ModelError {
        path: path.clone(),
        line: node.line,
        file: node.file,
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests;
