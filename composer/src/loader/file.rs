//! One compose file from text to a normalised tree: parse, interpolate,
//! validate against the schema, normalise, resolve relative paths.

use std::path::{Path, PathBuf};

use super::{Context, paths};
use crate::doc_path::DocPath;
use crate::error::LoadError;
use crate::interpolation::{self, COMPOSE_CASTS};
use crate::merge;
use crate::normalize;
use crate::project::STDIN;
use crate::project::environment::Environment;
use crate::schema;
use crate::yaml::{self, Node, Tag, Value};

/// How a standard-input file is named in messages.
const STDIN_NAME: &str = "<stdin>";

impl Context<'_> {
    /// Reads `path` (or standard input for `-`) and runs it through the
    /// per-file stages. Relative paths in it are based at `base_dir`.
    pub(super) fn load_file(
        &mut self,
        path: &Path,
        base_dir: &Path,
        env: &Environment,
    ) -> Result<Node, LoadError> {
        let (name, text) = if path.as_os_str() == STDIN {
            let text = self.stdin.ok_or_else(|| {
                LoadError::project(
                    "-f - reads the compose file from standard input, but none was given",
                )
            })?;
            (PathBuf::from(STDIN_NAME), text.to_string())
        } else {
            let text = std::fs::read_to_string(path)
                .map_err(|err| LoadError::file(path, format!("cannot read compose file: {err}")))?;
            (path.to_path_buf(), text)
        };
        let file = self.files.index(&name);
        let doc = load_text(&text, file, &name, base_dir, env)?;
        Ok(doc)
    }
}

/// The per-file stages on text already read. `file` is the file's index in
/// the loader's file table, used for error locations.
pub(crate) fn load_text(
    text: &str,
    file: u32,
    name: &Path,
    base_dir: &Path,
    env: &Environment,
) -> Result<Node, LoadError> {
    let at = |line: u32, path: &DocPath, message: String| {
        LoadError::at(
            crate::error::Location {
                file: Some(name.to_path_buf()),
                line,
                path: path.clone(),
            },
            message,
        )
    };
    let docs =
        yaml::parse_documents(text).map_err(|err| at(err.line, &DocPath::root(), err.message))?;
    let mut doc: Option<Node> = None;
    for mut next in docs {
        next.set_file(file);
        doc = Some(match doc {
            None => next,
            Some(base) => merge::merge_documents(base, next)
                .map_err(|err| at(err.line, &err.path, err.message))?,
        });
    }
    let mut doc = doc.unwrap_or_else(|| Node::map(Default::default()));
    if doc.is_null() {
        doc = Node::map(Default::default());
    }
    doc.file = file;
    if doc.as_map().is_none() {
        return Err(at(
            doc.line,
            &DocPath::root(),
            format!(
                "a compose file must be a mapping (services:, networks:, …), not a {}",
                doc.kind()
            ),
        ));
    }

    let lookup = |var: &str| env.get(var).cloned();
    interpolation::interpolate_tree(&mut doc, &lookup, COMPOSE_CASTS)
        .map_err(|err| at(err.line, &err.path, err.message()))?;

    if let Err(errors) = schema::validate(&doc)
        && let Some(first) = errors.into_iter().next()
    {
        return Err(at(first.line, &first.path, first.message));
    }

    let mut doc =
        normalize_keeping_tags(doc).map_err(|err| at(err.line, &err.path, err.message))?;
    paths::resolve(&mut doc, base_dir, env);
    Ok(doc)
}

/// Normalises `doc` while keeping the `!reset`/`!override` tags the merge
/// still needs: reset entries are taken out before (they have no value to
/// normalise) and both kinds are put back at the same paths after.
fn normalize_keeping_tags(mut doc: Node) -> Result<Node, normalize::NormalizeError> {
    let mut tagged = Vec::new();
    take_tags(&mut doc, &mut DocPath::root(), &mut tagged);
    let mut doc = normalize::normalize_document(doc)?;
    for (path, tag, node) in tagged {
        put_tag(&mut doc, path.segments(), tag, node);
    }
    Ok(doc)
}

/// Removes `!reset` entries from mappings (keeping them to put back) and
/// records where `!override` tags are.
fn take_tags(node: &mut Node, path: &mut DocPath, out: &mut Vec<(DocPath, Tag, Node)>) {
    let Value::Map(map) = &mut node.value else {
        if let Value::Seq(items) = &mut node.value {
            for (i, item) in items.iter_mut().enumerate() {
                path.push_index(i);
                take_tags(item, path, out);
                path.pop();
            }
        }
        return;
    };
    map.retain(|key, value| match value.tag {
        Some(Tag::Reset) => {
            out.push((path.key(key), Tag::Reset, value.clone()));
            false
        }
        _ => true,
    });
    for (key, value) in map.iter_mut() {
        path.push_key(key);
        if value.tag == Some(Tag::Override) {
            out.push((path.clone(), Tag::Override, Node::null()));
        }
        take_tags(value, path, out);
        path.pop();
    }
}

/// Puts a tag taken by [`take_tags`] back. An override tag goes on the
/// normalised value at the same path; a reset entry is re-inserted.
fn put_tag(node: &mut Node, path: &[crate::doc_path::Segment], tag: Tag, original: Node) {
    use crate::doc_path::Segment;
    match path {
        [] => {}
        [Segment::Key(key)] => {
            let Some(map) = node.as_map_mut() else { return };
            match tag {
                Tag::Reset => {
                    map.insert(key.clone(), original);
                }
                Tag::Override => {
                    if let Some(value) = map.get_mut(key) {
                        value.tag = Some(Tag::Override);
                    }
                }
            }
        }
        [Segment::Key(key), rest @ ..] => {
            if let Some(child) = node.get_mut(key) {
                put_tag(child, rest, tag, original);
            }
        }
        [Segment::Index(i), rest @ ..] => {
            if let Some(child) = node.as_seq_mut().and_then(|s| s.get_mut(*i)) {
                put_tag(child, rest, tag, original);
            }
        }
    }
}
