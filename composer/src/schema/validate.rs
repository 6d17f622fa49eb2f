//! Checks a [`Node`] tree against a [`CompiledSchema`], collecting every
//! error with the path, file and line of the value at fault.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use serde_json::Value as Json;

use super::SchemaError;
use super::compile::{Additional, CompiledSchema, Id, SchemaNode, Types};
use super::wording::{closest, number, quote, types_phrase};
use crate::doc_path::DocPath;
use crate::yaml::{Map, Node, Tag, Value};

/// The pattern compose uses to allow extension keys; it is not a naming
/// rule worth quoting in an error.
const EXTENSION_PATTERN: &str = "^x-";

/// All errors in `doc`, ordered by file and line so that the first one is
/// the first a reader meets.
pub(crate) fn validate(schema: &CompiledSchema, doc: &Node) -> Vec<SchemaError> {
    let mut validator = Validator {
        schema,
        path: Vec::new(),
    };
    let mut errors = Vec::new();
    validator.check(schema.root, doc, &mut errors);
    // Stable, so errors on one line keep the order the document gave them.
    errors.sort_by_key(|e| (e.file, e.line));
    errors
}

/// One step of the path being validated; borrowed so that walking the tree
/// allocates nothing until an error is reported.
#[derive(Clone, Copy)]
enum Step<'n> {
    Key(&'n str),
    Index(usize),
}

struct Validator<'s, 'n> {
    schema: &'s CompiledSchema,
    path: Vec<Step<'n>>,
}

impl<'s, 'n> Validator<'s, 'n> {
    fn doc_path(&self) -> DocPath {
        let mut path = DocPath::root();
        for step in &self.path {
            match step {
                Step::Key(key) => path.push_key(key),
                Step::Index(index) => path.push_index(*index),
            }
        }
        path
    }

    /// An error about `node`, at the current path.
    fn error(&self, node: &Node, message: String) -> SchemaError {
        SchemaError {
            path: self.doc_path(),
            line: node.line,
            file: node.file,
            message,
        }
    }

    fn check(&mut self, id: Id, node: &'n Node, out: &mut Vec<SchemaError>) {
        let schema: &'s CompiledSchema = self.schema;
        let s = &schema.nodes[id];
        if s.never {
            out.push(self.error(node, "is not allowed".into()));
            return;
        }
        if let Some(types) = s.types
            && !Types::of_node(node).intersects(types)
        {
            // Nothing else about a value of the wrong type is worth saying.
            out.push(self.error(node, format!("must be {}", types_phrase(types))));
            return;
        }
        if let Some(target) = s.reference {
            self.check(target, node, out);
        }
        if !s.one_of.is_empty() {
            self.check_one_of(&s.one_of, node, out);
        }
        if let Some(values) = &s.enumeration
            && !values.iter().any(|v| equals_json(node, v))
        {
            out.push(self.error(node, enum_message(values, node)));
        }
        if let Some(constant) = &s.constant
            && !equals_json(node, constant)
        {
            out.push(self.error(node, format!("must be {constant}")));
        }
        match &node.value {
            Value::Map(map) => self.check_object(s, node, map, out),
            Value::Seq(items) => self.check_array(s, items, out),
            Value::String(text) => {
                if let Some(pattern) = &s.pattern
                    && !pattern.is_match(text)
                {
                    let message = format!("must match the pattern {}", quote(pattern.as_str()));
                    out.push(self.error(node, message));
                }
            }
            Value::Int(i) => self.check_range(s, node, *i as f64, out),
            Value::Float(f) => self.check_range(s, node, *f, out),
            Value::Null | Value::Bool(_) => {}
        }
    }

    /// `oneOf`, reported the way a compose user thinks about it: the value
    /// was meant for the branch that takes its type, so that branch's errors
    /// are the ones to show.
    fn check_one_of(&mut self, branches: &[Id], node: &'n Node, out: &mut Vec<SchemaError>) {
        let schema: &'s CompiledSchema = self.schema;
        let kind = Types::of_node(node);
        // Branches that cannot take this type fail without being run.
        let fits = |b: &Id| schema.nodes[*b].accepts.intersects(kind);
        let mut candidates = branches.iter().copied().filter(fits);
        match (candidates.next(), candidates.next()) {
            (None, _) => {
                let accepted = branches
                    .iter()
                    .fold(Types::NONE, |all, &b| all.union(schema.nodes[b].accepts));
                out.push(self.error(node, format!("must be {}", types_phrase(accepted))));
            }
            (Some(only), None) => self.check(only, node, out),
            (Some(_), Some(_)) => {
                let mut valid = 0;
                let mut best: Option<Vec<SchemaError>> = None;
                for branch in branches.iter().copied().filter(fits) {
                    let mut errors = Vec::new();
                    self.check(branch, node, &mut errors);
                    if errors.is_empty() {
                        valid += 1;
                    } else if best
                        .as_ref()
                        .is_none_or(|b| relevance(&errors) > relevance(b))
                    {
                        best = Some(errors);
                    }
                }
                match valid {
                    0 => out.extend(best.unwrap_or_default()),
                    1 => {}
                    _ => out.push(self.error(
                        node,
                        "is ambiguous: it matches more than one of the accepted forms".into(),
                    )),
                }
            }
        }
    }

    fn check_object(
        &mut self,
        s: &'s SchemaNode,
        node: &'n Node,
        map: &'n Map,
        out: &mut Vec<SchemaError>,
    ) {
        for (key, child) in map {
            // `!reset` removes the key before compose validates.
            if child.tag == Some(Tag::Reset) {
                continue;
            }
            let mut matched = false;
            self.path.push(Step::Key(key));
            if let Some(&id) = s.properties.get(key.as_str()) {
                matched = true;
                self.check(id, child, out);
            }
            for (regex, id) in &s.pattern_properties {
                if regex.is_match(key) {
                    matched = true;
                    self.check(*id, child, out);
                }
            }
            if !matched {
                match s.additional {
                    Additional::Allowed => {}
                    Additional::Schema(id) => self.check(id, child, out),
                    Additional::Forbidden => {
                        self.path.pop();
                        out.push(self.unknown_key(s, key, child));
                        continue;
                    }
                }
            }
            self.path.pop();
        }
        for required in &s.required {
            let present = map
                .get(required)
                .is_some_and(|child| child.tag != Some(Tag::Reset));
            if !present {
                out.push(self.error(node, format!("{} is required", quote(required))));
            }
        }
    }

    /// A key the schema does not allow, reported on the mapping that holds
    /// it and at the line of its value.
    fn unknown_key(&self, s: &SchemaNode, key: &str, child: &Node) -> SchemaError {
        let name_patterns: Vec<&str> = s
            .pattern_properties
            .iter()
            .map(|(regex, _)| regex.as_str())
            .filter(|p| *p != EXTENSION_PATTERN)
            .collect();
        let message = if s.properties.is_empty() && !name_patterns.is_empty() {
            // A map of user-chosen names (services, labels): the name is
            // malformed rather than unknown.
            format!(
                "key {} is not allowed; keys must match {}",
                quote(key),
                name_patterns.join(" or ")
            )
        } else {
            let mut message = format!("additional property {} is not allowed", quote(key));
            if let Some(near) = closest(key, s.properties.keys().map(String::as_str)) {
                message.push_str(&format!("; did you mean {}?", quote(near)));
            }
            message
        };
        SchemaError {
            path: self.doc_path(),
            line: child.line,
            file: child.file,
            message,
        }
    }

    fn check_array(&mut self, s: &'s SchemaNode, items: &'n [Node], out: &mut Vec<SchemaError>) {
        if let Some(id) = s.items {
            for (index, item) in items.iter().enumerate() {
                if item.tag == Some(Tag::Reset) {
                    continue;
                }
                self.path.push(Step::Index(index));
                self.check(id, item, out);
                self.path.pop();
            }
        }
        if s.unique_items {
            for (index, first) in duplicates(items) {
                let item = &items[index];
                let message = match &item.value {
                    Value::Seq(_) | Value::Map(_) => {
                        format!("duplicates [{first}]; entries must be unique")
                    }
                    _ => format!(
                        "duplicates [{first}] ({}); entries must be unique",
                        item.to_json()
                    ),
                };
                self.path.push(Step::Index(index));
                out.push(self.error(item, message));
                self.path.pop();
            }
        }
    }

    fn check_range(&self, s: &SchemaNode, node: &Node, value: f64, out: &mut Vec<SchemaError>) {
        if let Some(minimum) = s.minimum
            && value < minimum
        {
            out.push(self.error(node, format!("must be at least {}", number(minimum))));
        }
        if let Some(maximum) = s.maximum
            && value > maximum
        {
            out.push(self.error(node, format!("must be at most {}", number(maximum))));
        }
    }
}

/// How close a failed `oneOf` branch came: errors deeper in the value mean
/// the branch fit its outer shape; fewer errors break ties.
fn relevance(errors: &[SchemaError]) -> (usize, std::cmp::Reverse<usize>) {
    let depth = errors
        .iter()
        .map(|e| e.path.segments().len())
        .max()
        .unwrap_or(0);
    (depth, std::cmp::Reverse(errors.len()))
}

/// `(index, index of its first occurrence)` for every repeated entry.
fn duplicates(items: &[Node]) -> Vec<(usize, usize)> {
    let live = |item: &&Node| item.tag != Some(Tag::Reset);
    let mut found = Vec::new();
    // Long lists of strings (environment, dns) are hashed; anything else is
    // compared pairwise, which for the usual handful of entries is cheaper.
    if items.len() > 16 && items.iter().all(|i| matches!(i.value, Value::String(_))) {
        let mut seen: HashMap<&str, usize> = HashMap::with_capacity(items.len());
        for (index, item) in items.iter().enumerate().filter(|(_, i)| live(i)) {
            if let Value::String(text) = &item.value {
                match seen.entry(text.as_str()) {
                    Entry::Occupied(first) => found.push((index, *first.get())),
                    Entry::Vacant(slot) => {
                        slot.insert(index);
                    }
                }
            }
        }
        return found;
    }
    for (index, item) in items.iter().enumerate().filter(|(_, i)| live(i)) {
        let first = items[..index]
            .iter()
            .position(|earlier| live(&earlier) && same_value(earlier, item));
        if let Some(first) = first {
            found.push((index, first));
        }
    }
    found
}

fn enum_message(values: &[Json], node: &Node) -> String {
    let listed: Vec<String> = values.iter().map(Json::to_string).collect();
    let mut message = format!("must be one of: {}", listed.join(", "));
    if let Value::String(text) = &node.value
        && let Some(near) = closest(text, values.iter().filter_map(Json::as_str))
    {
        message.push_str(&format!("; did you mean {}?", quote(near)));
    }
    message
}

/// JSON Schema equality: numbers compare by value (`1` equals `1.0`),
/// mappings regardless of key order.
fn equals_json(node: &Node, json: &Json) -> bool {
    match (&node.value, json) {
        (Value::Null, Json::Null) => true,
        (Value::Bool(a), Json::Bool(b)) => a == b,
        (Value::Int(a), Json::Number(b)) => match b.as_i64() {
            Some(b) => *a == b,
            None => b.as_f64() == Some(*a as f64),
        },
        (Value::Float(a), Json::Number(b)) => b.as_f64() == Some(*a),
        (Value::String(a), Json::String(b)) => a == b,
        (Value::Seq(a), Json::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| equals_json(a, b))
        }
        (Value::Map(a), Json::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, v)| b.get(k).is_some_and(|w| equals_json(v, w)))
        }
        _ => false,
    }
}

/// [`equals_json`] between two document values.
fn same_value(a: &Node, b: &Node) -> bool {
    match (&a.value, &b.value) {
        (Value::Int(x), Value::Float(y)) | (Value::Float(y), Value::Int(x)) => *x as f64 == *y,
        (Value::Seq(x), Value::Seq(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_value(a, b))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        (x, y) => x == y,
    }
}
