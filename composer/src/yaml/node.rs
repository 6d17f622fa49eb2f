//! The document tree: a JSON-like value with a source line and a compose tag
//! on every node.

use indexmap::IndexMap;

/// A mapping, in document order. Keys are always strings: compose converts
/// `true:` or `1:` keys to their text before anything else sees them.
pub type Map = IndexMap<String, Node>;

/// The compose-specific YAML tags that change how a value merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    /// `!reset`: remove the inherited value (from `extends` or an earlier file).
    Reset,
    /// `!override`: replace the inherited value instead of merging into it.
    Override,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Seq(Vec<Node>),
    Map(Map),
}

/// One value of a compose document.
#[derive(Debug, Clone)]
pub struct Node {
    pub value: Value,
    /// 1-based line in `file`, 0 when the node was made by the loader.
    pub line: u32,
    /// Index into the loader's file table (0 when unknown); lets an error
    /// name the file a merged value came from.
    pub file: u32,
    pub tag: Option<Tag>,
}

/// Equality is by value only: where a value came from does not change what
/// it means.
impl PartialEq for Node {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value && self.tag == other.tag
    }
}

impl Node {
    /// A node the loader made, with no place in any file.
    pub fn new(value: Value) -> Node {
        Node {
            value,
            line: 0,
            file: 0,
            tag: None,
        }
    }

    /// A new node placed where `self` is (for values derived from it).
    pub fn derived(&self, value: Value) -> Node {
        Node {
            value,
            line: self.line,
            file: self.file,
            tag: None,
        }
    }

    pub fn null() -> Node {
        Node::new(Value::Null)
    }

    pub fn string(s: impl Into<String>) -> Node {
        Node::new(Value::String(s.into()))
    }

    pub fn map(map: Map) -> Node {
        Node::new(Value::Map(map))
    }

    pub fn seq(items: Vec<Node>) -> Node {
        Node::new(Value::Seq(items))
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&Map> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_map_mut(&mut self) -> Option<&mut Map> {
        match &mut self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_seq_mut(&mut self) -> Option<&mut Vec<Node>> {
        match &mut self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The value at `key` when this is a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map().and_then(|m| m.get(key))
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        self.as_map_mut().and_then(|m| m.get_mut(key))
    }

    /// A scalar's text as compose reads it where a string is expected
    /// (`80` and `"80"` are the same port). `None` for collections and null.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::String(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(format_float(*f)),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }

    /// The JSON type name used in error messages.
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "number",
            Value::String(_) => "string",
            Value::Seq(_) => "array",
            Value::Map(_) => "object",
        }
    }

    /// The same tree as JSON (tags and lines dropped).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(J::Number)
                .unwrap_or_else(|| J::String(format_float(*f))),
            Value::String(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(map) => {
                J::Object(map.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }

    /// A tree made from JSON; every node is loader-made (line 0).
    pub fn from_json(json: &serde_json::Value) -> Node {
        use serde_json::Value as J;
        Node::new(match json {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(0.0)),
            },
            J::String(s) => Value::String(s.clone()),
            J::Array(items) => Value::Seq(items.iter().map(Node::from_json).collect()),
            J::Object(map) => Value::Map(
                map.iter()
                    .map(|(k, v)| (k.clone(), Node::from_json(v)))
                    .collect(),
            ),
        })
    }

    /// Sets `file` on this node and every node below it.
    pub fn set_file(&mut self, file: u32) {
        self.file = file;
        match &mut self.value {
            Value::Seq(items) => items.iter_mut().for_each(|n| n.set_file(file)),
            Value::Map(map) => map.values_mut().for_each(|n| n.set_file(file)),
            _ => {}
        }
    }
}

/// Floats print the way YAML and Go print them: `1.5`, `2` for whole values
/// is avoided so that a float stays a float when read back.
pub fn format_float(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{f:.1}")
    } else {
        f.to_string()
    }
}
