//! The conversions every part of the normaliser shares: scalars to their
//! canonical type, list-or-dict mappings, and a table-driven walk over a
//! struct-like mapping.

use crate::doc_path::DocPath;
use crate::model::{Bytes, Duration};
use crate::yaml::{Map, Node, Value};

use super::NormalizeError;
use super::shell_words;

/// A conversion for a value the table does not describe.
pub(super) type Fix = fn(Node, &DocPath) -> Result<Node, NormalizeError>;

/// What a known key of a struct-like mapping holds.
#[derive(Clone, Copy)]
pub(super) enum Field {
    /// Any scalar, as text (`user: 1000` is `"1000"`).
    Text,
    Bool,
    Int,
    Float,
    /// Go duration text, printed back the way Go prints it.
    Duration,
    /// A byte size, as an integer.
    Bytes,
    /// A string or a list of scalars, as a list of strings.
    List,
    /// `list_or_dict` as a sorted map of strings (`KEY` alone is `""`).
    Dict,
    /// `list_or_dict` as a sorted map of strings or null (`KEY` alone is
    /// null: take the value from the environment).
    Env,
    /// A string (split into words) or a list of strings.
    Command,
    /// A nested struct-like mapping.
    Struct(Table),
    /// A list of struct-like mappings.
    Structs(Table),
    With(Fix),
}

pub(super) type Table = &'static [(&'static str, Field)];

pub(super) fn error(node: &Node, path: &DocPath, message: impl Into<String>) -> NormalizeError {
    NormalizeError {
        path: path.clone(),
        line: node.line,
        file: node.file,
        message: message.into(),
    }
}

fn expected(node: &Node, path: &DocPath, what: &str) -> NormalizeError {
    error(
        node,
        path,
        format!("expected {what}, found {}", node.kind()),
    )
}

/// Walks a struct-like mapping: known keys are converted as the table
/// says, a null known key is dropped (null means "not set"), and other keys
/// (`x-*`) are kept as written.
pub(super) fn fields(node: Node, path: &DocPath, table: Table) -> Result<Node, NormalizeError> {
    let Node {
        value,
        line,
        file,
        tag,
    } = node;
    let map = match value {
        Value::Map(map) => map,
        value => {
            let node = Node {
                value,
                line,
                file,
                tag,
            };
            return Err(expected(&node, path, "a mapping"));
        }
    };
    let mut out = Map::with_capacity(map.len());
    for (key, child) in map {
        let Some((_, field)) = table.iter().find(|(name, _)| *name == key) else {
            out.insert(key, child);
            continue;
        };
        if child.is_null() {
            continue;
        }
        let child_path = path.key(&key);
        out.insert(key, apply(*field, child, &child_path)?);
    }
    Ok(Node {
        value: Value::Map(out),
        line,
        file,
        tag,
    })
}

pub(super) fn apply(field: Field, node: Node, path: &DocPath) -> Result<Node, NormalizeError> {
    match field {
        Field::Text => text(node, path),
        Field::Bool => boolean(node, path),
        Field::Int => integer(node, path),
        Field::Float => float(node, path),
        Field::Duration => duration(node, path),
        Field::Bytes => bytes(node, path),
        Field::List => list(node, path),
        Field::Dict => dict(node, path, false),
        Field::Env => dict(node, path, true),
        Field::Command => command(node, path),
        Field::Struct(table) => fields(node, path, table),
        Field::Structs(table) => each(node, path, |item, item_path| fields(item, item_path, table)),
        Field::With(fix) => fix(node, path),
    }
}

/// Converts every item of a sequence.
pub(super) fn each(
    node: Node,
    path: &DocPath,
    mut convert: impl FnMut(Node, &DocPath) -> Result<Node, NormalizeError>,
) -> Result<Node, NormalizeError> {
    let Some(items) = node.as_seq() else {
        return Err(expected(&node, path, "a list"));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        out.push(convert(item.clone(), &path.index(i))?);
    }
    Ok(node.derived(Value::Seq(out)))
}

/// A scalar's text, or an error naming what was expected.
pub(super) fn scalar_text(node: &Node, path: &DocPath) -> Result<String, NormalizeError> {
    node.scalar_text()
        .ok_or_else(|| expected(node, path, "a string"))
}

pub(super) fn text(node: Node, path: &DocPath) -> Result<Node, NormalizeError> {
    match node.value {
        Value::String(_) => Ok(node),
        _ => {
            let text = scalar_text(&node, path)?;
            Ok(node.derived(Value::String(text)))
        }
    }
}

/// Go's `strconv.ParseBool` spellings, which compose accepts in strings.
pub(super) fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

pub(super) fn boolean(node: Node, path: &DocPath) -> Result<Node, NormalizeError> {
    match &node.value {
        Value::Bool(_) => Ok(node),
        Value::String(s) => match parse_bool(s) {
            Some(b) => Ok(node.derived(Value::Bool(b))),
            None => Err(error(
                &node,
                path,
                format!("invalid boolean \"{s}\": expected true or false"),
            )),
        },
        _ => Err(expected(&node, path, "a boolean")),
    }
}

pub(super) fn integer(node: Node, path: &DocPath) -> Result<Node, NormalizeError> {
    match &node.value {
        Value::Int(_) => Ok(node),
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e18 => {
            let i = *f as i64;
            Ok(node.derived(Value::Int(i)))
        }
        Value::String(s) => match s.trim().parse::<i64>() {
            Ok(i) => Ok(node.derived(Value::Int(i))),
            Err(_) => Err(error(
                &node,
                path,
                format!("invalid integer \"{s}\": expected a whole number"),
            )),
        },
        _ => Err(expected(&node, path, "an integer")),
    }
}

pub(super) fn float(node: Node, path: &DocPath) -> Result<Node, NormalizeError> {
    match &node.value {
        Value::Float(_) => Ok(node),
        Value::Int(i) => {
            let f = *i as f64;
            Ok(node.derived(Value::Float(f)))
        }
        Value::String(s) => match s.trim().parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(node.derived(Value::Float(f))),
            _ => Err(error(
                &node,
                path,
                format!("invalid number \"{s}\": expected a number such as 0.5"),
            )),
        },
        _ => Err(expected(&node, path, "a number")),
    }
}

pub(super) fn parse_duration(node: &Node, path: &DocPath) -> Result<Duration, NormalizeError> {
    match &node.value {
        Value::String(_) | Value::Int(_) => {
            let text = scalar_text(node, path)?;
            text.trim()
                .parse::<Duration>()
                .map_err(|e| error(node, path, e.to_string()))
        }
        _ => Err(expected(node, path, "a duration such as 1m30s")),
    }
}

pub(super) fn duration(node: Node, path: &DocPath) -> Result<Node, NormalizeError> {
    let parsed = parse_duration(&node, path)?;
    Ok(node.derived(Value::String(parsed.to_string())))
}

pub(super) fn bytes(node: Node, path: &DocPath) -> Result<Node, NormalizeError> {
    match &node.value {
        Value::Int(_) => Ok(node),
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e18 => {
            let i = *f as i64;
            Ok(node.derived(Value::Int(i)))
        }
        Value::String(s) => {
            let s = s.trim();
            // A signed number is how a size is printed (`"-1"`); the unit
            // syntax itself has no sign.
            let parsed = s
                .parse::<i64>()
                .or_else(|_| s.parse::<Bytes>().map(Bytes::get));
            match parsed {
                Ok(i) => Ok(node.derived(Value::Int(i))),
                Err(e) => Err(error(&node, path, e.to_string())),
            }
        }
        Value::Float(f) => Err(error(
            &node,
            path,
            format!("invalid size {f}: expected a whole number of bytes or a unit such as 512m"),
        )),
        _ => Err(expected(&node, path, "a size such as 512m")),
    }
}

/// File mode bits: a number as it is, text as octal (`"0440"`).
pub(super) fn file_mode(node: Node, path: &DocPath) -> Result<Node, NormalizeError> {
    let parsed = match &node.value {
        Value::Int(i) => u32::try_from(*i).ok(),
        Value::Float(f) if f.fract() == 0.0 && *f >= 0.0 && *f <= f64::from(u32::MAX) => {
            Some(*f as u32)
        }
        Value::String(s) => {
            let digits = s.trim().trim_start_matches("0o");
            u32::from_str_radix(digits, 8).ok()
        }
        _ => None,
    };
    match parsed {
        Some(mode) => Ok(node.derived(Value::Int(mode.into()))),
        None => {
            let shown = node
                .scalar_text()
                .unwrap_or_else(|| node.kind().to_string());
            Err(error(
                &node,
                path,
                format!("invalid mode \"{shown}\": expected octal digits such as \"0440\""),
            ))
        }
    }
}

/// A string is a one-item list; list items are scalars written as text.
pub(super) fn list(node: Node, path: &DocPath) -> Result<Node, NormalizeError> {
    match &node.value {
        Value::Seq(_) => each(node, path, text),
        Value::Map(_) | Value::Null => Err(expected(&node, path, "a list of strings")),
        _ => {
            let item = text(node.clone(), path)?;
            Ok(node.derived(Value::Seq(vec![item])))
        }
    }
}

/// `list_or_dict`: `[K=V, K]` or `{K: V}` as a map sorted by key. With
/// `nullable`, `K` alone and `K: null` are null (inherit), otherwise `""`.
pub(super) fn dict(node: Node, path: &DocPath, nullable: bool) -> Result<Node, NormalizeError> {
    let absent = |n: &Node| {
        if nullable {
            n.derived(Value::Null)
        } else {
            n.derived(Value::String(String::new()))
        }
    };
    let mut out = Map::new();
    match &node.value {
        Value::Map(map) => {
            for (key, value) in map {
                let converted = match &value.value {
                    Value::Null => absent(value),
                    _ => text(value.clone(), &path.key(key))?,
                };
                out.insert(key.clone(), converted);
            }
        }
        Value::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                let entry = scalar_text(item, &path.index(i))?;
                let converted = match entry.split_once('=') {
                    Some((key, value)) => {
                        (key.to_string(), item.derived(Value::String(value.into())))
                    }
                    None => (entry, absent(item)),
                };
                // A repeated key keeps its first place and its last value,
                // as compose's merge does.
                out.insert(converted.0, converted.1);
            }
        }
        _ => {
            return Err(expected(
                &node,
                path,
                "a mapping or a list of KEY=VALUE strings",
            ));
        }
    }
    out.sort_keys();
    Ok(node.derived(Value::Map(out)))
}

/// A command: a string split into words, or a list of strings.
pub(super) fn command(node: Node, path: &DocPath) -> Result<Node, NormalizeError> {
    match &node.value {
        Value::String(line) => match shell_words::split(line) {
            Ok(words) => {
                let items = words
                    .into_iter()
                    .map(|w| node.derived(Value::String(w)))
                    .collect();
                Ok(node.derived(Value::Seq(items)))
            }
            Err(e) => Err(error(
                &node,
                path,
                format!("invalid command \"{line}\": {e}"),
            )),
        },
        Value::Seq(_) => each(node, path, text),
        _ => Err(expected(&node, path, "a string or a list of strings")),
    }
}

/// A mapping whose values are each converted, sorted by key.
pub(super) fn sorted_map(
    node: Node,
    path: &DocPath,
    mut convert: impl FnMut(Node, &DocPath) -> Result<Node, NormalizeError>,
) -> Result<Node, NormalizeError> {
    let Some(map) = node.as_map() else {
        return Err(expected(&node, path, "a mapping"));
    };
    let mut out = Map::with_capacity(map.len());
    for (key, value) in map {
        out.insert(key.clone(), convert(value.clone(), &path.key(key))?);
    }
    out.sort_keys();
    Ok(node.derived(Value::Map(out)))
}

/// A node made from a list of `(key, value)` pairs, placed at `at`.
pub(super) fn map_node(at: &Node, entries: Vec<(&str, Value)>) -> Node {
    let map = entries
        .into_iter()
        .map(|(k, v)| (k.to_string(), at.derived(v)))
        .collect();
    at.derived(Value::Map(map))
}
