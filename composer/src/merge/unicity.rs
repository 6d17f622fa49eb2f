//! The unicity pass: in sequences whose entries have an identity (a
//! variable name, a mount target, a port binding…), a later entry with the
//! same identity replaces the earlier one where that one stood.
//!
//! Merging appends; this pass, run once after every merge, is what makes an
//! override's `src:/data` replace the base's `.:/data` instead of mounting
//! twice. The identities are compose-go's.

use std::collections::HashMap;

use crate::doc_path::DocPath;
use crate::yaml::{Node, Value};

/// What identifies an entry of a keyed sequence.
#[derive(Debug, Clone, Copy)]
enum Identity {
    /// `KEY=VALUE` entries by KEY; other entries by their whole text.
    KeyValue,
    /// Service volumes by container target.
    VolumeTarget,
    /// Devices by container path.
    DeviceTarget,
    /// Ports: short syntax by its exact text, long syntax by
    /// host_ip/published/target/protocol.
    Port,
    /// `env_file` entries by path.
    EnvFile,
    /// Secrets and configs by target, a short entry by its default target
    /// (the directory given + `/` + the name).
    Mount(&'static str),
}

const UNIQUE: &[(&str, Identity)] = &[
    ("services.*.annotations", Identity::KeyValue),
    ("services.*.build.args", Identity::KeyValue),
    ("services.*.build.additional_contexts", Identity::KeyValue),
    ("services.*.build.labels", Identity::KeyValue),
    ("services.*.build.platform", Identity::KeyValue),
    ("services.*.build.platforms", Identity::KeyValue),
    ("services.*.build.tags", Identity::KeyValue),
    ("services.*.cap_add", Identity::KeyValue),
    ("services.*.cap_drop", Identity::KeyValue),
    ("services.*.configs", Identity::Mount("")),
    ("services.*.deploy.labels", Identity::KeyValue),
    ("services.*.devices", Identity::DeviceTarget),
    ("services.*.dns", Identity::KeyValue),
    ("services.*.dns_opt", Identity::KeyValue),
    ("services.*.dns_search", Identity::KeyValue),
    ("services.*.env_file", Identity::EnvFile),
    ("services.*.environment", Identity::KeyValue),
    ("services.*.expose", Identity::KeyValue),
    ("services.*.labels", Identity::KeyValue),
    ("services.*.links", Identity::KeyValue),
    ("services.*.networks.*.aliases", Identity::KeyValue),
    ("services.*.networks.*.link_local_ips", Identity::KeyValue),
    ("services.*.ports", Identity::Port),
    ("services.*.profiles", Identity::KeyValue),
    ("services.*.secrets", Identity::Mount("/run/secrets")),
    ("services.*.sysctls", Identity::KeyValue),
    ("services.*.tmpfs", Identity::KeyValue),
    ("services.*.volumes", Identity::VolumeTarget),
    ("networks.*.labels", Identity::KeyValue),
];

/// Removes redefinitions from keyed sequences anywhere in `doc` (see the
/// module doc). Entries whose identity cannot be read (invalid entries) are
/// left for validation to report.
pub fn apply_unicity(doc: &mut Node) {
    walk(doc, &mut DocPath::root());
}

fn walk(node: &mut Node, path: &mut DocPath) {
    match &mut node.value {
        Value::Map(map) => {
            for (key, value) in map.iter_mut() {
                path.push_key(key);
                walk(value, path);
                path.pop();
            }
        }
        Value::Seq(items) => {
            if let Some((_, identity)) = UNIQUE.iter().find(|(p, _)| path.matches(p)) {
                dedupe(items, *identity);
                return;
            }
            for (i, item) in items.iter_mut().enumerate() {
                path.push_index(i);
                walk(item, path);
                path.pop();
            }
        }
        _ => {}
    }
}

/// The unicity rule of `KEY=VALUE` lists, for merging two such lists.
pub(crate) fn dedupe_key_values(items: &mut Vec<Node>) {
    dedupe(items, Identity::KeyValue);
}

fn dedupe(items: &mut Vec<Node>, identity: Identity) {
    let mut kept: Vec<Node> = Vec::with_capacity(items.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for item in items.drain(..) {
        match identify(&item, identity) {
            Some(key) => match seen.get(&key) {
                Some(&at) => kept[at] = item,
                None => {
                    seen.insert(key, kept.len());
                    kept.push(item);
                }
            },
            None => kept.push(item),
        }
    }
    *items = kept;
}

fn identify(item: &Node, identity: Identity) -> Option<String> {
    match identity {
        Identity::KeyValue => {
            let text = item.scalar_text()?;
            Some(match text.split_once('=') {
                Some((key, _)) => key.to_string(),
                None => text,
            })
        }
        Identity::VolumeTarget => match &item.value {
            Value::Map(_) => item.get("target")?.scalar_text(),
            _ => volume_target(&item.scalar_text()?),
        },
        Identity::DeviceTarget => match &item.value {
            Value::Map(_) => item.get("target")?.scalar_text(),
            _ => {
                let text = item.scalar_text()?;
                let mut parts = text.split(':');
                let first = parts.next().unwrap_or_default();
                Some(parts.next().unwrap_or(first).to_string())
            }
        },
        Identity::Port => match &item.value {
            Value::Map(_) => {
                let target = item.get("target")?.scalar_text()?;
                let text = |key: &str, default: &str| {
                    item.get(key)
                        .and_then(Node::scalar_text)
                        .filter(|t| !t.is_empty())
                        .unwrap_or_else(|| default.to_string())
                };
                Some(format!(
                    "{}:{}:{target}/{}",
                    text("host_ip", "0.0.0.0"),
                    text("published", ""),
                    text("protocol", "tcp"),
                ))
            }
            _ => item.scalar_text(),
        },
        Identity::EnvFile => match &item.value {
            Value::Map(_) => item.get("path")?.scalar_text(),
            _ => item.scalar_text(),
        },
        Identity::Mount(dir) => match &item.value {
            Value::Map(_) => match item.get("target").and_then(Node::scalar_text) {
                Some(target) => Some(target),
                None => Some(format!("{dir}/{}", item.get("source")?.scalar_text()?)),
            },
            _ => Some(format!("{dir}/{}", item.scalar_text()?)),
        },
    }
}

/// The container path of a short-syntax volume, `[source:]target[:mode]`.
/// A one-letter field before `:` is a Windows drive (`C:\data:/data`), as
/// compose reads it.
fn volume_target(spec: &str) -> Option<String> {
    if spec.is_empty() {
        return None;
    }
    if spec.chars().count() <= 2 {
        return Some(spec.to_string());
    }
    let mut fields = Vec::new();
    let mut field = String::new();
    for c in spec.chars() {
        let drive = c == ':' && {
            let mut chars = field.chars();
            matches!((chars.next(), chars.next()), (Some(l), None) if l.is_alphabetic())
        };
        if c == ':' && !drive {
            fields.push(std::mem::take(&mut field));
        } else {
            field.push(c);
        }
    }
    fields.push(field);
    let target = if fields.len() == 1 {
        fields.swap_remove(0)
    } else {
        fields.swap_remove(1)
    };
    Some(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_documents;

    fn unique(yaml: &str) -> serde_json::Value {
        let mut doc = parse_documents(yaml).expect("parses").remove(0);
        apply_unicity(&mut doc);
        doc.to_json()
    }

    #[test]
    fn volume_targets() {
        assert_eq!(volume_target("/data").as_deref(), Some("/data"));
        assert_eq!(volume_target(".:/foo").as_deref(), Some("/foo"));
        assert_eq!(volume_target("src:/foo:ro").as_deref(), Some("/foo"));
        assert_eq!(volume_target("C:\\data:/data:ro").as_deref(), Some("/data"));
        assert_eq!(volume_target("").as_deref(), None);
    }

    #[test]
    fn later_entries_replace_earlier_ones_in_place() {
        let got = unique(
            "services:\n  s:\n    secrets: [a, {source: b, target: /run/secrets/a}]\n    configs: [c, {source: c}]\n    devices: ['/dev/a:/dev/x', {source: /dev/b, target: /dev/x}]\n    env_file: [a.env, {path: a.env, required: false}]\n    cap_add: [A, B, A]\n",
        );
        let s = &got["services"]["s"];
        assert_eq!(
            s["secrets"],
            serde_json::json!([{"source": "b", "target": "/run/secrets/a"}])
        );
        assert_eq!(s["configs"], serde_json::json!([{"source": "c"}]));
        assert_eq!(
            s["devices"],
            serde_json::json!([{"source": "/dev/b", "target": "/dev/x"}])
        );
        assert_eq!(
            s["env_file"],
            serde_json::json!([{"path": "a.env", "required": false}])
        );
        assert_eq!(s["cap_add"], serde_json::json!(["A", "B"]));
    }

    #[test]
    fn only_keyed_sequences_change() {
        let got = unique(
            "services:\n  s:\n    command: [a, a]\n    environment: {A: 1}\n    ports: [80, '80', {target: 80}, {target: 80, published: 80}]\nx-list: [a, a]\n",
        );
        let s = &got["services"]["s"];
        assert_eq!(s["command"], serde_json::json!(["a", "a"]));
        assert_eq!(s["environment"], serde_json::json!({"A": 1}));
        // 80 and '80' are one binding; long entries differ by `published`.
        assert_eq!(
            s["ports"],
            serde_json::json!(["80", {"target": 80}, {"target": 80, "published": 80}])
        );
        assert_eq!(got["x-list"], serde_json::json!(["a", "a"]));
    }

    #[test]
    fn entries_without_identity_are_kept() {
        let got = unique("services:\n  s:\n    volumes: [{type: tmpfs}, {type: tmpfs}]\n");
        assert_eq!(
            got["services"]["s"]["volumes"].as_array().map(Vec::len),
            Some(2)
        );
    }
}
