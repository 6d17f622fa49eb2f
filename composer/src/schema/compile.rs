//! Turns a JSON schema into a [`CompiledSchema`]: keywords parsed, patterns
//! compiled and `$ref`s resolved to indexes once, so that validating a
//! document never looks at JSON again.
//!
//! Only the keywords the compose schema uses are supported. Any other
//! validation keyword is a compile error rather than silently ignored, so a
//! newer copy of the schema that needs more cannot pass unnoticed.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use indexmap::IndexMap;
use regex::Regex;
use serde_json::Value as Json;

use crate::yaml::{Node, Value};

/// Index of a schema in [`CompiledSchema::nodes`].
pub(crate) type Id = usize;

/// A set of JSON types. `Int` values carry both the integer and the number
/// bit, so "number" accepts them and "integer" rejects `1.5`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Types(u8);

impl Types {
    pub const NONE: Types = Types(0);
    pub const NULL: Types = Types(1);
    pub const BOOLEAN: Types = Types(1 << 1);
    pub const INTEGER: Types = Types(1 << 2);
    pub const NUMBER: Types = Types(1 << 3);
    pub const STRING: Types = Types(1 << 4);
    pub const ARRAY: Types = Types(1 << 5);
    pub const OBJECT: Types = Types(1 << 6);
    pub const ALL: Types = Types((1 << 7) - 1);

    fn from_name(name: &str) -> Option<Types> {
        Some(match name {
            "null" => Types::NULL,
            "boolean" => Types::BOOLEAN,
            "integer" => Types::INTEGER,
            "number" => Types::NUMBER,
            "string" => Types::STRING,
            "array" => Types::ARRAY,
            "object" => Types::OBJECT,
            _ => return None,
        })
    }

    /// The types a document value belongs to.
    pub fn of_node(node: &Node) -> Types {
        match &node.value {
            Value::Null => Types::NULL,
            Value::Bool(_) => Types::BOOLEAN,
            Value::Int(_) => Types::INTEGER.union(Types::NUMBER),
            Value::Float(f) => Types::of_float(*f),
            Value::String(_) => Types::STRING,
            Value::Seq(_) => Types::ARRAY,
            Value::Map(_) => Types::OBJECT,
        }
    }

    fn of_json(json: &Json) -> Types {
        match json {
            Json::Null => Types::NULL,
            Json::Bool(_) => Types::BOOLEAN,
            Json::Number(n) => match n.as_f64() {
                Some(f) => Types::of_float(f),
                None => Types::INTEGER.union(Types::NUMBER),
            },
            Json::String(_) => Types::STRING,
            Json::Array(_) => Types::ARRAY,
            Json::Object(_) => Types::OBJECT,
        }
    }

    // JSON Schema counts a float with no fractional part as an integer.
    fn of_float(f: f64) -> Types {
        if f.fract() == 0.0 {
            Types::INTEGER.union(Types::NUMBER)
        } else {
            Types::NUMBER
        }
    }

    pub fn union(self, other: Types) -> Types {
        Types(self.0 | other.0)
    }

    pub fn intersect(self, other: Types) -> Types {
        Types(self.0 & other.0)
    }

    pub fn intersects(self, other: Types) -> bool {
        self.0 & other.0 != 0
    }

    pub fn contains(self, other: Types) -> bool {
        self.0 & other.0 == other.0
    }
}

/// What `additionalProperties` says about keys no other keyword matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Additional {
    Allowed,
    Forbidden,
    Schema(Id),
}

/// One compiled (sub)schema.
#[derive(Debug)]
pub(crate) struct SchemaNode {
    /// The `false` schema: nothing is valid.
    pub never: bool,
    pub types: Option<Types>,
    pub reference: Option<Id>,
    pub one_of: Vec<Id>,
    pub enumeration: Option<Vec<Json>>,
    pub constant: Option<Json>,
    pub properties: IndexMap<String, Id, BuildHasherDefault<Fnv>>,
    pub pattern_properties: Vec<(Pattern, Id)>,
    pub additional: Additional,
    pub required: Vec<String>,
    pub items: Option<Id>,
    pub unique_items: bool,
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
    pub pattern: Option<Pattern>,
    /// Every type this schema could possibly accept (an over-approximation),
    /// used to pick the `oneOf` branch a value was meant for.
    pub accepts: Types,
}

impl Default for SchemaNode {
    fn default() -> SchemaNode {
        SchemaNode {
            never: false,
            types: None,
            reference: None,
            one_of: Vec::new(),
            enumeration: None,
            constant: None,
            properties: IndexMap::default(),
            pattern_properties: Vec::new(),
            additional: Additional::Allowed,
            required: Vec::new(),
            items: None,
            unique_items: false,
            minimum: None,
            maximum: None,
            pattern: None,
            accepts: Types::ALL,
        }
    }
}

/// FNV-1a. Property tables are built from the schema's own keys and only
/// looked up with document keys, so SipHash's flooding resistance buys
/// nothing here, and it was the largest cost of a lookup.
pub(crate) struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A `pattern` or `patternProperties` key. JSON Schema patterns are
/// ECMA-262 and unanchored; the compose schema's patterns mean the same to
/// the regex crate, whose `is_match` also searches.
#[derive(Debug, Clone)]
pub(crate) enum Pattern {
    /// `^literal`, such as the `^x-` that every compose object allows:
    /// checked without the regex engine's per-search overhead.
    Prefix {
        source: String,
        prefix: String,
    },
    Regex(Regex),
}

impl Pattern {
    fn new(source: &str) -> Result<Pattern, String> {
        const META: &[char] = &[
            '\\', '.', '+', '*', '?', '(', ')', '|', '[', ']', '{', '}', '^', '$',
        ];
        if let Some(prefix) = source.strip_prefix('^')
            && !prefix.contains(META)
        {
            return Ok(Pattern::Prefix {
                source: source.to_string(),
                prefix: prefix.to_string(),
            });
        }
        Regex::new(source)
            .map(Pattern::Regex)
            .map_err(|err| format!("pattern \"{source}\" does not compile: {err}"))
    }

    pub fn is_match(&self, text: &str) -> bool {
        match self {
            Pattern::Prefix { prefix, .. } => text.starts_with(prefix.as_str()),
            Pattern::Regex(regex) => regex.is_match(text),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Pattern::Prefix { source, .. } => source,
            Pattern::Regex(regex) => regex.as_str(),
        }
    }
}

/// A schema that cannot be compiled: malformed, or using a keyword this
/// validator does not implement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("schema at \"#{pointer}\": {message}")]
pub struct CompileError {
    /// JSON pointer of the offending (sub)schema.
    pub pointer: String,
    pub message: String,
}

/// A JSON schema ready to validate [`Node`] trees.
#[derive(Debug)]
pub struct CompiledSchema {
    pub(crate) nodes: Vec<SchemaNode>,
    pub(crate) root: Id,
}

impl CompiledSchema {
    /// Compiles `schema` (draft-07 or 2020-12, restricted to the keywords
    /// the compose schema uses).
    pub fn compile(schema: &Json) -> Result<CompiledSchema, CompileError> {
        let mut compiler = Compiler {
            root: schema,
            nodes: Vec::new(),
            by_pointer: HashMap::new(),
            patterns: HashMap::new(),
        };
        let root = compiler.compile_at(String::new(), schema)?;
        // Definitions nothing refers to are compiled too, so that a keyword we
        // do not support is reported wherever it sits.
        for container in ["definitions", "$defs"] {
            if let Some(Json::Object(defs)) = schema.get(container) {
                for (name, def) in defs {
                    compiler.compile_at(format!("/{container}/{}", escape(name)), def)?;
                }
            }
        }
        let mut nodes = compiler.nodes;
        let mut memo = vec![None; nodes.len()];
        for id in 0..nodes.len() {
            accepts(&nodes, id, &mut memo);
        }
        for (node, accepted) in nodes.iter_mut().zip(memo) {
            node.accepts = accepted.unwrap_or(Types::ALL);
        }
        Ok(CompiledSchema { nodes, root })
    }
}

/// Keywords that only annotate. `format` is among them: draft-07 makes its
/// checking optional and the compose schema does not use it.
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "$comment",
    "title",
    "description",
    "default",
    "deprecated",
    "examples",
    "readOnly",
    "writeOnly",
    "format",
    "definitions",
    "$defs",
];

struct Compiler<'a> {
    root: &'a Json,
    nodes: Vec<SchemaNode>,
    /// Schemas already compiled, by JSON pointer, so that every `$ref` to a
    /// definition shares one compiled node (and recursion terminates).
    by_pointer: HashMap<String, Id>,
    /// Compiled patterns by source: the schema repeats a handful of them
    /// dozens of times, and compiling a regex is the slow part of startup.
    patterns: HashMap<String, Pattern>,
}

impl<'a> Compiler<'a> {
    fn compile_at(&mut self, pointer: String, json: &'a Json) -> Result<Id, CompileError> {
        if let Some(&id) = self.by_pointer.get(&pointer) {
            return Ok(id);
        }
        let id = self.nodes.len();
        self.nodes.push(SchemaNode::default());
        self.by_pointer.insert(pointer.clone(), id);
        let node = self.build(&pointer, json)?;
        self.nodes[id] = node;
        Ok(id)
    }

    fn build(&mut self, pointer: &str, json: &'a Json) -> Result<SchemaNode, CompileError> {
        let fail = |message: String| CompileError {
            pointer: pointer.to_string(),
            message,
        };
        let mut node = SchemaNode::default();
        let keywords = match json {
            Json::Bool(true) => return Ok(node),
            Json::Bool(false) => {
                node.never = true;
                return Ok(node);
            }
            Json::Object(keywords) => keywords,
            _ => return Err(fail("a schema must be an object or a boolean".into())),
        };
        for (keyword, value) in keywords {
            let here = format!("{pointer}/{}", escape(keyword));
            match keyword.as_str() {
                "type" => node.types = Some(parse_types(value).map_err(fail)?),
                "properties" => {
                    for (name, sub) in as_object(value, keyword).map_err(fail)? {
                        let id = self.compile_at(format!("{here}/{}", escape(name)), sub)?;
                        node.properties.insert(name.clone(), id);
                    }
                }
                "patternProperties" => {
                    for (pattern, sub) in as_object(value, keyword).map_err(fail)? {
                        let compiled = self.pattern(pattern).map_err(fail)?;
                        let id = self.compile_at(format!("{here}/{}", escape(pattern)), sub)?;
                        node.pattern_properties.push((compiled, id));
                    }
                }
                "additionalProperties" => {
                    node.additional = match value {
                        Json::Bool(true) => Additional::Allowed,
                        Json::Bool(false) => Additional::Forbidden,
                        _ => Additional::Schema(self.compile_at(here, value)?),
                    }
                }
                "required" => node.required = string_list(value, keyword).map_err(fail)?,
                "enum" => match value {
                    Json::Array(values) if !values.is_empty() => {
                        node.enumeration = Some(values.clone())
                    }
                    _ => return Err(fail("\"enum\" must be a non-empty array".into())),
                },
                "const" => node.constant = Some(value.clone()),
                "items" => match value {
                    Json::Array(_) => {
                        return Err(fail("\"items\" as an array is not supported".into()));
                    }
                    _ => node.items = Some(self.compile_at(here, value)?),
                },
                "uniqueItems" => match value {
                    Json::Bool(b) => node.unique_items = *b,
                    _ => return Err(fail("\"uniqueItems\" must be a boolean".into())),
                },
                "minimum" | "maximum" => {
                    let limit = value
                        .as_f64()
                        .ok_or_else(|| fail(format!("\"{keyword}\" must be a number")))?;
                    if keyword == "minimum" {
                        node.minimum = Some(limit);
                    } else {
                        node.maximum = Some(limit);
                    }
                }
                "oneOf" => match value {
                    Json::Array(branches) if !branches.is_empty() => {
                        for (i, branch) in branches.iter().enumerate() {
                            let id = self.compile_at(format!("{here}/{i}"), branch)?;
                            node.one_of.push(id);
                        }
                    }
                    _ => return Err(fail("\"oneOf\" must be a non-empty array".into())),
                },
                // Draft-07 ignores keywords beside `$ref`, 2020-12 applies
                // them; the compose schema only puts `description` there.
                "$ref" => node.reference = Some(self.reference(value).map_err(fail)??),
                "pattern" => match value {
                    Json::String(pattern) => {
                        node.pattern = Some(self.pattern(pattern).map_err(fail)?)
                    }
                    _ => return Err(fail("\"pattern\" must be a string".into())),
                },
                _ if ANNOTATIONS.contains(&keyword.as_str()) => {}
                _ => return Err(fail(format!("unsupported keyword \"{keyword}\""))),
            }
        }
        Ok(node)
    }

    fn pattern(&mut self, source: &str) -> Result<Pattern, String> {
        if let Some(known) = self.patterns.get(source) {
            return Ok(known.clone());
        }
        let pattern = Pattern::new(source)?;
        self.patterns.insert(source.to_string(), pattern.clone());
        Ok(pattern)
    }

    /// Resolves a local `$ref` (`#/definitions/service`) and compiles its
    /// target. The outer error is about the reference itself, the inner one
    /// comes from compiling the target.
    fn reference(&mut self, value: &Json) -> Result<Result<Id, CompileError>, String> {
        let Some(reference) = value.as_str() else {
            return Err("\"$ref\" must be a string".into());
        };
        let Some(pointer) = reference.strip_prefix('#') else {
            return Err(format!(
                "\"$ref\": only references inside the schema are supported, not \"{reference}\""
            ));
        };
        let root = self.root;
        let target = root
            .pointer(pointer)
            .ok_or_else(|| format!("\"$ref\": \"{reference}\" does not exist"))?;
        Ok(self.compile_at(pointer.to_string(), target))
    }
}

/// The types a schema could accept, following `$ref` and `oneOf`. A cycle of
/// references counts as accepting anything, which keeps the result an
/// over-approximation.
fn accepts(nodes: &[SchemaNode], id: Id, memo: &mut Vec<Option<Types>>) -> Types {
    if let Some(known) = memo[id] {
        return known;
    }
    memo[id] = Some(Types::ALL);
    let node = &nodes[id];
    let mut types = if node.never {
        Types::NONE
    } else {
        node.types.unwrap_or(Types::ALL)
    };
    if let Some(target) = node.reference {
        types = types.intersect(accepts(nodes, target, memo));
    }
    if !node.one_of.is_empty() {
        let branches = node
            .one_of
            .iter()
            .fold(Types::NONE, |all, &b| all.union(accepts(nodes, b, memo)));
        types = types.intersect(branches);
    }
    if let Some(values) = &node.enumeration {
        let listed = values
            .iter()
            .fold(Types::NONE, |all, v| all.union(Types::of_json(v)));
        types = types.intersect(listed);
    }
    if let Some(constant) = &node.constant {
        types = types.intersect(Types::of_json(constant));
    }
    memo[id] = Some(types);
    types
}

fn parse_types(value: &Json) -> Result<Types, String> {
    let one = |name: &Json| {
        name.as_str()
            .and_then(Types::from_name)
            .ok_or_else(|| format!("unknown type {name}"))
    };
    match value {
        Json::Array(names) if !names.is_empty() => names
            .iter()
            .try_fold(Types::NONE, |all, name| Ok(all.union(one(name)?))),
        Json::Array(_) => Err("\"type\" must not be empty".into()),
        _ => one(value),
    }
}

fn as_object<'a>(
    value: &'a Json,
    keyword: &str,
) -> Result<&'a serde_json::Map<String, Json>, String> {
    value
        .as_object()
        .ok_or_else(|| format!("\"{keyword}\" must be an object"))
}

fn string_list(value: &Json, keyword: &str) -> Result<Vec<String>, String> {
    let items = value
        .as_array()
        .ok_or_else(|| format!("\"{keyword}\" must be an array of strings"))?;
    items
        .iter()
        .map(|item| {
            item.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("\"{keyword}\" must be an array of strings"))
        })
        .collect()
}

/// Escapes a key for use in a JSON pointer (RFC 6901).
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refs_share_one_node_and_cycles_terminate() {
        let schema = json!({
            "definitions": {
                "tree": {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#/definitions/tree"}}}}
            },
            "properties": {"a": {"$ref": "#/definitions/tree"}, "b": {"$ref": "#/definitions/tree"}}
        });
        let compiled = CompiledSchema::compile(&schema).expect("compiles");
        let root = &compiled.nodes[compiled.root];
        let target = |name: &str| compiled.nodes[root.properties[name]].reference;
        assert_eq!(target("a"), target("b"));
        let tree = &compiled.nodes[target("a").expect("a is a reference")];
        assert_eq!(tree.accepts, Types::OBJECT);
    }

    #[test]
    fn accepted_types_follow_one_of_and_enum() {
        let schema = json!({"oneOf": [{"type": "string", "enum": ["all"]}, {"type": ["array", "null"]}, {"enum": [1]}]});
        let compiled = CompiledSchema::compile(&schema).expect("compiles");
        let accepts = compiled.nodes[compiled.root].accepts;
        assert!(accepts.contains(Types::STRING.union(Types::ARRAY).union(Types::NULL)));
        assert!(accepts.contains(Types::INTEGER));
        assert!(!accepts.intersects(Types::OBJECT.union(Types::BOOLEAN)));
    }

    #[test]
    fn patterns_search_unless_anchored() {
        let prefix = Pattern::new("^x-").expect("compiles");
        assert!(matches!(prefix, Pattern::Prefix { .. }));
        assert!(prefix.is_match("x-a") && !prefix.is_match("ax-"));
        assert_eq!(prefix.as_str(), "^x-");
        let name = Pattern::new("^[a-zA-Z0-9._-]+$").expect("compiles");
        assert!(name.is_match("web.1") && !name.is_match("web 1") && !name.is_match(""));
        let anywhere = Pattern::new("always|never").expect("compiles");
        assert!(anywhere.is_match("nevermore"));
        assert!(Pattern::new("^a.b").is_ok_and(|p| matches!(p, Pattern::Regex(_))));
    }

    #[test]
    fn rejects_what_it_cannot_check() {
        let cases = [
            (json!({"anyOf": [{}]}), "", "unsupported keyword \"anyOf\""),
            (
                json!({"properties": {"a/b": {"type": "text"}}}),
                "/properties/a~1b",
                "unknown type \"text\"",
            ),
            (
                json!({"$ref": "#/definitions/nope"}),
                "",
                "\"#/definitions/nope\" does not exist",
            ),
            (
                json!({"$ref": "other.json#/x"}),
                "",
                "only references inside the schema",
            ),
            (json!({"items": [{}, {}]}), "", "\"items\" as an array"),
            (json!({"pattern": "("}), "", "does not compile"),
            (json!({"required": "a"}), "", "array of strings"),
            (json!(3), "", "object or a boolean"),
        ];
        for (schema, pointer, message) in cases {
            let err = CompiledSchema::compile(&schema).expect_err("must not compile");
            assert_eq!(err.pointer, pointer, "{schema}");
            assert!(err.message.contains(message), "{schema}: {err}");
        }
    }
}
