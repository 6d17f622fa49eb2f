//! The short and long syntaxes of one field, converted so that the two sides
//! of a merge meet in one form: `KEY=VALUE` lists as mappings, name lists as
//! mappings, `host=ip` lists as host mappings, a lone string as a list.

use crate::doc_path::DocPath;
use crate::yaml::{Map, Node, Tag, Value};

use super::MergeError;
use super::rules::NameDefaults;

/// A `KEY=VALUE` list (or mapping) as a mapping: `KEY=V` is `KEY: "V"`,
/// a bare `KEY` is `KEY: null` (the list form's "no value"), and a later
/// entry for a key replaces the earlier one where that one stood.
pub(crate) fn key_value_map(node: Node, path: &DocPath) -> Result<Map, MergeError> {
    if let Value::Map(map) = node.value {
        return Ok(map);
    }
    // A lone string is not valid compose; it is read as the one entry it spells.
    let mut map = Map::new();
    for (text, item, _) in scalar_entries(node, path, "a KEY=VALUE string")? {
        let (key, value) = match text.split_once('=') {
            Some((key, value)) => (key.to_string(), item.derived(Value::String(value.into()))),
            None => (text, item.derived(Value::Null)),
        };
        map.insert(key, value);
    }
    Ok(map)
}

/// A list of names (or a mapping from name to options) as a mapping; a
/// listed name gets the defaults its field implies.
pub(crate) fn name_map(
    node: Node,
    defaults: NameDefaults,
    path: &DocPath,
) -> Result<Map, MergeError> {
    if let Value::Map(map) = node.value {
        return Ok(map);
    }
    let mut map = Map::new();
    for (name, item, _) in scalar_entries(node, path, "a name")? {
        let value = match defaults {
            NameDefaults::Null => item.derived(Value::Null),
            NameDefaults::DependsOn => {
                let mut options = Map::new();
                options.insert(
                    "condition".into(),
                    item.derived(Value::String("service_started".into())),
                );
                options.insert("required".into(), item.derived(Value::Bool(true)));
                item.derived(Value::Map(options))
            }
        };
        map.insert(name, value);
    }
    Ok(map)
}

/// The entries of a list-form field as text, with their paths, `!reset`
/// entries left out; an entry that is not a scalar is an error naming what
/// was `expected`.
fn scalar_entries(
    node: Node,
    path: &DocPath,
    expected: &str,
) -> Result<Vec<(String, Node, DocPath)>, MergeError> {
    let mut entries = Vec::new();
    for (i, item) in into_entries(node).into_iter().enumerate() {
        if item.tag == Some(Tag::Reset) {
            continue;
        }
        let Some(text) = item.scalar_text() else {
            return Err(MergeError::at(
                &path.index(i),
                &item,
                format!("expected {expected}, found {}", a_kind(&item)),
            ));
        };
        entries.push((text, item, path.index(i)));
    }
    Ok(entries)
}

/// A value that may be one entry or a list of entries, as a list.
pub(crate) fn into_entries(node: Node) -> Vec<Node> {
    match node.value {
        Value::Seq(items) => items,
        Value::Null => Vec::new(),
        _ => vec![node],
    }
}

/// `build: <dir>` as `build: {context: <dir>}`.
pub(crate) fn build_map(node: Node) -> Node {
    match node.value {
        Value::Map(_) => node,
        _ => {
            let mut map = Map::new();
            let line = node.derived(Value::Null);
            map.insert("context".into(), node);
            line.derived(Value::Map(map))
        }
    }
}

/// `extra_hosts` as a mapping from host to its address (a string) or its
/// addresses (a list). List entries are `host=ip`, or `host:ip` as older
/// files write them (`=` first, so `h=::1` keeps its IPv6 address whole).
pub(crate) fn host_map(node: Node, path: &DocPath) -> Result<Map, MergeError> {
    if let Value::Map(map) = node.value {
        return Ok(map);
    }
    let mut map = Map::new();
    for (text, item, at) in scalar_entries(node, path, "a HOST=IP string")? {
        let Some((host, ip)) = text.split_once('=').or_else(|| text.split_once(':')) else {
            return Err(MergeError::at(
                &at,
                &item,
                format!("expected a HOST=IP string, found \"{text}\""),
            ));
        };
        let (host, ip) = (host.to_string(), ip.to_string());
        let ip = item.derived(Value::String(ip));
        match map.get_mut(&host) {
            Some(known) => {
                let mut addresses = into_entries(std::mem::replace(known, Node::null()));
                addresses.push(ip);
                *known = addresses_node(addresses, &item);
            }
            None => {
                map.insert(host, ip);
            }
        }
    }
    Ok(map)
}

/// One address stays a string, several become a list.
pub(crate) fn addresses_node(mut addresses: Vec<Node>, at: &Node) -> Node {
    match addresses.len() {
        0 => at.derived(Value::Null),
        1 => addresses.remove(0),
        _ => at.derived(Value::Seq(addresses)),
    }
}

/// "a mapping", "a list"… for messages.
pub(crate) fn a_kind(node: &Node) -> &'static str {
    match node.value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Int(_) | Value::Float(_) => "a number",
        Value::String(_) => "a string",
        Value::Seq(_) => "a list",
        Value::Map(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Node {
        Node::seq(items.iter().map(|s| Node::string(*s)).collect())
    }

    #[test]
    fn key_value_lists_become_mappings() {
        let map = key_value_map(strings(&["A=1", "B", "C=", "A=x=y"]), &DocPath::root())
            .expect("converts");
        assert_eq!(map.keys().collect::<Vec<_>>(), ["A", "B", "C"]);
        assert_eq!(map["A"].as_str(), Some("x=y"));
        assert!(map["B"].is_null());
        assert_eq!(map["C"].as_str(), Some(""));
    }

    #[test]
    fn non_text_entries_are_errors() {
        let list = Node::seq(vec![Node::map(Map::new())]);
        let err = key_value_map(list, &DocPath::root().key("environment")).unwrap_err();
        assert_eq!(err.path.to_string(), "environment[0]");
    }

    #[test]
    fn hosts_keep_every_address() {
        let hosts = host_map(
            strings(&["a=1.1.1.1", "b:2.2.2.2", "a=::1", "a=fe80::1"]),
            &DocPath::root(),
        )
        .expect("converts");
        assert_eq!(hosts.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(hosts["a"], strings(&["1.1.1.1", "::1", "fe80::1"]));
        assert_eq!(hosts["b"].as_str(), Some("2.2.2.2"));
        assert!(host_map(strings(&["nohost"]), &DocPath::root()).is_err());
    }
}
