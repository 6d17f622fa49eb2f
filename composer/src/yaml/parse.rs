//! Text to [`Node`] trees through serde-saphyr, which resolves anchors,
//! aliases and `<<` merge keys and reports each value's line and tag.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{DuplicateKeyPolicy, Options, Spanned, Tagged};

use super::node::{Map, Node, Tag, Value};

/// A file that is not valid YAML, or uses YAML compose does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct YamlError {
    /// 1-based line, 0 when the parser could not tell.
    pub line: u32,
    pub message: String,
}

/// Parses every document of a YAML stream. An empty stream gives no
/// documents.
pub fn parse_documents(text: &str) -> Result<Vec<Node>, YamlError> {
    let mut options = Options::default();
    // YAML 1.2 booleans only, as compose reads them: `yes`, `on` and `n` are
    // strings.
    options.strict_booleans = true;
    options.duplicate_keys = DuplicateKeyPolicy::Error;
    options.with_snippet = false;
    // `mode: 0440` is octal to Docker Compose (YAML 1.1), as users expect.
    options.legacy_octal_numbers = true;
    // One `x-common: &common` merged into hundreds of services is ordinary
    // compose; the event, node and alias-replay limits still stop alias
    // bombs.
    let mut budget = serde_saphyr::Budget::default();
    budget.enforce_alias_anchor_ratio = false;
    options.budget = Some(budget);
    let docs: Vec<Option<Node>> = serde_saphyr::from_str_multiple_with_options(text, options)
        .map_err(|err| YamlError {
            line: err.location().map(|l| l.line() as u32).unwrap_or(0),
            message: one_line(&err.to_string()),
        })?;
    Ok(docs.into_iter().flatten().collect())
}

/// serde-saphyr's messages may end with a location or span several lines;
/// the loader adds the location itself.
fn one_line(message: &str) -> String {
    let mut first = message.lines().next().unwrap_or(message).trim();
    if let Some(at) = first.rfind(" at line ") {
        first = &first[..at];
    }
    if let Some(key) = first.strip_prefix("duplicate mapping key: ") {
        let key = key.split(", set DuplicateKeyPolicy").next().unwrap_or(key);
        return format!("mapping key \"{key}\" is defined twice; remove one of them");
    }
    first.to_string()
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        let spanned: Spanned<Tagged<Value>> = Spanned::deserialize(deserializer)?;
        let Tagged(value, tag) = spanned.value;
        let tag = match tag.as_deref() {
            Some("!reset") => Some(Tag::Reset),
            Some("!override") => Some(Tag::Override),
            _ => None,
        };
        // `!reset` removes the value whatever it is written as.
        let value = if tag == Some(Tag::Reset) {
            Value::Null
        } else {
            value
        };
        Ok(Node {
            value,
            line: spanned.referenced.line() as u32,
            file: 0,
            tag,
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int(i))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        Ok(i64::try_from(u).map_or(Value::Float(u as f64), Value::Int))
    }
    fn visit_i128<E>(self, i: i128) -> Result<Value, E> {
        Ok(i64::try_from(i).map_or(Value::Float(i as f64), Value::Int))
    }
    fn visit_u128<E>(self, u: u128) -> Result<Value, E> {
        Ok(i64::try_from(u).map_or(Value::Float(u as f64), Value::Int))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Float(f))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_bytes<E: de::Error>(self, b: &[u8]) -> Result<Value, E> {
        Ok(Value::String(String::from_utf8_lossy(b).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(node) = seq.next_element::<Node>()? {
            items.push(node);
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::with_capacity(access.size_hint().unwrap_or(0));
        while let Some(key) = access.next_key::<Spanned<MapKey>>()? {
            let mut node: Node = access.next_value()?;
            // A block collection starts on the line after its key; errors
            // about the collection as a whole read better at the key.
            let key_line = key.referenced.line() as u32;
            if matches!(node.value, Value::Map(_) | Value::Seq(_)) && key_line > 0 {
                node.line = key_line;
            }
            map.insert(key.value.0, node);
        }
        Ok(Value::Map(map))
    }
}

/// A mapping key as text: compose reads `true:` as `"true"` and `80:` as
/// `"80"`.
struct MapKey(String);

impl<'de> Deserialize<'de> for MapKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<MapKey, D::Error> {
        // Keys are read straight to text: going through a full `Node`
        // (span, tag, value) for every key doubles the parse time.
        deserializer.deserialize_any(KeyVisitor).map(MapKey)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a scalar mapping key (text, number or boolean)")
    }
    fn visit_unit<E>(self) -> Result<String, E> {
        Ok("null".to_string())
    }
    fn visit_none<E>(self) -> Result<String, E> {
        Ok("null".to_string())
    }
    fn visit_bool<E>(self, b: bool) -> Result<String, E> {
        Ok(b.to_string())
    }
    fn visit_i64<E>(self, i: i64) -> Result<String, E> {
        Ok(i.to_string())
    }
    fn visit_u64<E>(self, u: u64) -> Result<String, E> {
        Ok(u.to_string())
    }
    fn visit_i128<E>(self, i: i128) -> Result<String, E> {
        Ok(i.to_string())
    }
    fn visit_u128<E>(self, u: u128) -> Result<String, E> {
        Ok(u.to_string())
    }
    fn visit_f64<E>(self, f: f64) -> Result<String, E> {
        Ok(super::node::format_float(f))
    }
    fn visit_str<E>(self, s: &str) -> Result<String, E> {
        Ok(s.to_string())
    }
    fn visit_string<E>(self, s: String) -> Result<String, E> {
        Ok(s)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<String, A::Error> {
        Err(de::Error::custom(
            "a mapping key must be a scalar (text, number or boolean)",
        ))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<String, A::Error> {
        Err(de::Error::custom(
            "a mapping key must be a scalar (text, number or boolean)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_merge_keys_tags_and_lines() {
        let text = "x-base: &base\n  image: busybox\n  user: root\nservices:\n  web:\n    <<: *base\n    user: app\n    command: !reset ls\n    ports: !override [\"80\"]\n    labels: {true: yes, 1: n}\n";
        let docs = parse_documents(text).expect("parses");
        assert_eq!(docs.len(), 1);
        let web = docs[0]
            .get("services")
            .and_then(|s| s.get("web"))
            .expect("web");
        assert_eq!(web.get("image").and_then(Node::as_str), Some("busybox"));
        assert_eq!(web.get("user").and_then(Node::as_str), Some("app"));
        let command = web.get("command").expect("command");
        assert_eq!(command.tag, Some(Tag::Reset));
        assert!(command.is_null());
        assert_eq!(command.line, 8);
        assert_eq!(web.get("ports").and_then(|p| p.tag), Some(Tag::Override));
        assert_eq!(web.line, 5, "a block mapping is placed at its key");
        let labels = web.get("labels").and_then(Node::as_map).expect("labels");
        assert_eq!(labels.get("true").and_then(Node::as_str), Some("yes"));
        assert_eq!(labels.get("1").and_then(Node::as_str), Some("n"));
    }

    #[test]
    fn errors_carry_a_line() {
        let err = parse_documents("services:\n  web:\n    image: a\n    image: b\n").unwrap_err();
        assert_eq!(err.line, 4, "{err:?}");
        let err = parse_documents("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.line > 0, "{err:?}");
    }

    #[test]
    fn one_anchor_serves_many_aliases_but_bombs_are_refused() {
        let mut text = String::from("x-c: &c {image: a}\nservices:\n");
        for i in 0..500 {
            text.push_str(&format!("  s{i}: *c\n"));
        }
        assert!(parse_documents(&text).is_ok());
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..10 {
            let prev = (b'a' + level - 1) as char;
            let name = (b'a' + level) as char;
            bomb.push_str(&format!("{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        }
        let err = parse_documents(&bomb).expect_err("a billion laughs is refused");
        assert!(!err.message.is_empty());
    }

    #[test]
    fn empty_stream_has_no_documents() {
        assert!(parse_documents("").expect("parses").is_empty());
        assert!(
            parse_documents("# only a comment\n")
                .expect("parses")
                .is_empty()
        );
    }
}
