//! Interpolation of a whole document: every string value substituted, then
//! converted where the path calls for a number or boolean.

use std::fmt;

use super::casts::Cast;
use super::template::{TemplateError, substitute};
use crate::doc_path::DocPath;
use crate::yaml::{Node, Value};

/// A value that could not be interpolated, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterpolationError {
    pub path: DocPath,
    /// 1-based line of the value, 0 for loader-made nodes.
    pub line: u32,
    pub kind: InterpolationErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpolationErrorKind {
    Template(TemplateError),
    /// The substituted text is not a valid `cast` (`replicas: "${N}"` with
    /// `N=many`).
    Cast {
        cast: Cast,
        value: String,
    },
}

impl InterpolationError {
    /// The problem in one line, without the path, for berth's
    /// `file:line: path: message` output.
    pub fn message(&self) -> String {
        match &self.kind {
            InterpolationErrorKind::Template(TemplateError::Invalid { template }) => {
                format!("invalid interpolation format {template:?}: escape a literal $ as $$")
            }
            InterpolationErrorKind::Template(err) => err.to_string(),
            InterpolationErrorKind::Cast { cast, value } => {
                format!("{value:?} is not a valid {cast}")
            }
        }
    }
}

/// compose-go's wording, so scripts and users see the messages they know.
impl fmt::Display for InterpolationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = &self.path;
        match &self.kind {
            InterpolationErrorKind::Template(TemplateError::Invalid { template }) => write!(
                f,
                "invalid interpolation format for {path}.\n\
                 You may need to escape any $ with another $.\n{template}"
            ),
            InterpolationErrorKind::Template(err) => {
                write!(f, "error while interpolating {path}: {err}")
            }
            InterpolationErrorKind::Cast { cast, value } => write!(
                f,
                "error while interpolating {path}: failed to cast to expected type: \
                 invalid {cast}: {value}"
            ),
        }
    }
}

/// The message already contains the template error's text, so it is not
/// repeated as a source.
impl std::error::Error for InterpolationError {}

/// Substitutes every string value under `node` (mapping keys are left
/// alone), then converts strings at paths matching a `casts` pattern. Stops
/// at the first error; values visited before it are already substituted.
pub fn interpolate_tree(
    node: &mut Node,
    lookup: &dyn Fn(&str) -> Option<String>,
    casts: &[(&str, Cast)],
) -> Result<(), InterpolationError> {
    let mut path = DocPath::root();
    walk(node, &mut path, lookup, casts)
}

fn walk(
    node: &mut Node,
    path: &mut DocPath,
    lookup: &dyn Fn(&str) -> Option<String>,
    casts: &[(&str, Cast)],
) -> Result<(), InterpolationError> {
    let line = node.line;
    let error = |path: &DocPath, kind| InterpolationError {
        path: path.clone(),
        line,
        kind,
    };
    match &mut node.value {
        Value::String(text) => {
            let substituted = if text.contains('$') {
                substitute(text, lookup)
                    .map_err(|err| error(path, InterpolationErrorKind::Template(err)))?
            } else {
                std::mem::take(text)
            };
            node.value = match casts
                .iter()
                .find(|(pattern, _)| last_key_matches(pattern, path) && path.matches(pattern))
            {
                Some(&(_, cast)) => cast.apply(&substituted).ok_or_else(|| {
                    error(
                        path,
                        InterpolationErrorKind::Cast {
                            cast,
                            value: substituted.clone(),
                        },
                    )
                })?,
                None => Value::String(substituted),
            };
        }
        Value::Seq(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                path.push_index(index);
                walk(item, path, lookup, casts)?;
                path.pop();
            }
        }
        Value::Map(map) => {
            for (key, value) in map.iter_mut() {
                path.push_key(key);
                walk(value, path, lookup, casts)?;
                path.pop();
            }
        }
        Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) => {}
    }
    Ok(())
}

/// A cheap first test for [`DocPath::matches`]: most values sit at paths
/// no cast pattern ends with.
fn last_key_matches(pattern: &str, path: &DocPath) -> bool {
    let last = pattern.rsplit('.').next().unwrap_or(pattern);
    match path.segments().last() {
        Some(crate::doc_path::Segment::Key(key)) => last == "*" || last == key,
        Some(crate::doc_path::Segment::Index(_)) => {
            last == "*" || last.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interpolation::COMPOSE_CASTS;
    use crate::yaml::parse_documents;

    fn env(name: &str) -> Option<String> {
        match name {
            "N" => Some("3".into()),
            "RO" => Some("yes".into()),
            "C" => Some("1.5".into()),
            "PORT" => Some("8000-8010".into()),
            "WORD" => Some("many".into()),
            _ => None,
        }
    }

    fn interpolate(yaml: &str) -> Result<Node, InterpolationError> {
        let mut doc = parse_documents(yaml).unwrap().remove(0);
        interpolate_tree(&mut doc, &env, COMPOSE_CASTS)?;
        Ok(doc)
    }

    #[test]
    fn typed_fields_are_converted_and_others_stay_strings() {
        let doc = interpolate(
            "services:\n  web:\n    deploy:\n      replicas: ${N}\n    read_only: ${RO}\n    \
             cpus: ${C}\n    ports: ['${PORT}:80']\n    mem_limit: ${N}m\n    \
             environment:\n      COUNT: ${N}\n    labels:\n      ${N}: x\n",
        )
        .unwrap();
        let web = doc.get("services").and_then(|s| s.get("web")).unwrap();
        let get = |key: &str| web.get(key).unwrap().value.clone();
        assert_eq!(
            web.get("deploy")
                .and_then(|d| d.get("replicas"))
                .unwrap()
                .value,
            Value::Int(3)
        );
        assert_eq!(get("read_only"), Value::Bool(true));
        assert_eq!(get("cpus"), Value::Float(1.5));
        assert_eq!(get("mem_limit"), Value::String("3m".into()));
        assert_eq!(
            web.get("ports").unwrap().as_seq().unwrap()[0].as_str(),
            Some("8000-8010:80")
        );
        assert_eq!(
            web.get("environment")
                .and_then(|e| e.get("COUNT"))
                .unwrap()
                .as_str(),
            Some("3")
        );
        // Keys are never substituted.
        assert!(web.get("labels").and_then(|l| l.get("${N}")).is_some());
    }

    #[test]
    fn errors_carry_path_line_and_both_messages() {
        let err = interpolate("services:\n  web:\n    image: x\n    scale: ${WORD}\n").unwrap_err();
        assert_eq!(err.path.to_string(), "services.web.scale");
        assert_eq!(err.line, 4);
        assert_eq!(err.message(), "\"many\" is not a valid integer");
        assert_eq!(
            err.to_string(),
            "error while interpolating services.web.scale: failed to cast to expected type: \
             invalid integer: many"
        );

        let err = interpolate("services:\n  web:\n    command: [a, '${']\n").unwrap_err();
        assert_eq!(err.path.to_string(), "services.web.command[1]");
        assert_eq!(err.line, 3);
        assert_eq!(
            err.message(),
            "invalid interpolation format \"${\": escape a literal $ as $$"
        );

        let err = interpolate("x: ${MISSING:?set it}\n").unwrap_err();
        assert_eq!(
            err.message(),
            "required variable MISSING is missing a value: set it"
        );
    }
}
