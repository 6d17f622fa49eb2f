//! Merging compose documents the way Docker Compose does: several `-f`
//! files in order, and a local service definition over the service it
//! `extends`.
//!
//! The general rule is compose-spec's: mappings merge key by key, sequences
//! append, the later file's scalar wins. [`rules`] lists the exceptions by
//! path (`command` is replaced, `environment` is merged by variable name,
//! `build: .` meets `build: {context: .}`…). `!reset` on a value of the
//! later file removes the key; `!override` replaces the earlier value
//! instead of merging into it.
//!
//! Result forms, where the two sides may use different syntaxes:
//! - key/value fields (`environment`, `labels`, `annotations`, `sysctls`,
//!   `build.args`…), `extra_hosts`, and name fields (`networks`, `models`,
//!   `depends_on` of a service) stay a list when both sides are lists and
//!   otherwise come out as a mapping (a bare `KEY` list entry is `KEY:
//!   null`; a listed `depends_on` name gets `{condition: service_started,
//!   required: true}`); an `extra_hosts` host with several addresses maps
//!   to a list of them;
//! - string-or-list fields (`dns`, `env_file`, `tmpfs`…) come out as a list
//!   as soon as there is something to append;
//! - `build` comes out as a mapping unless both sides are strings.
//!
//! The loader normalises every field afterwards, so these forms only need
//! to mean what compose's result means.

mod forms;
mod rules;
mod unicity;

use crate::doc_path::DocPath;
use crate::yaml::{Map, Node, Tag, Value};

use forms::a_kind;
use rules::Rule;
pub use unicity::apply_unicity;

/// Two values that cannot be merged: a sequence or mapping met by a value
/// of another kind where compose allows only one form, or an entry that
/// cannot be read in the form the merge needs.
pub type MergeError = crate::node_error::NodeError;

/// Merges the compose document `over` (a later `-f` file) into `base`.
///
/// Tags are acted on but stay in new values; run [`strip_tags`] once every
/// document is merged, and [`apply_unicity`] to drop redefined entries.
pub fn merge_documents(base: Node, over: Node) -> Result<Node, MergeError> {
    merge_node(base, over, &DocPath::root())
}

/// Merges the service definition `over` into `base` under the same rules:
/// for `extends`, `base` is the extended service and `over` the local
/// definition. `path` is the service's path (`services.web`); the per-field
/// rules are chosen below it.
pub fn merge_service(base: Node, over: Node, path: &DocPath) -> Result<Node, MergeError> {
    merge_node(base, over, path)
}

/// Removes what is tagged `!reset` (mapping entries and sequence items) and
/// clears `!override` tags. Run after all merging: a tag in the first file
/// has nothing to act on but must not reach the model.
pub fn strip_tags(doc: &mut Node) {
    if doc.tag == Some(Tag::Reset) {
        doc.value = Value::Null;
    }
    doc.tag = None;
    match &mut doc.value {
        Value::Map(map) => {
            map.retain(|_, value| value.tag != Some(Tag::Reset));
            map.values_mut().for_each(strip_tags);
        }
        Value::Seq(items) => {
            items.retain(|item| item.tag != Some(Tag::Reset));
            items.iter_mut().for_each(strip_tags);
        }
        _ => {}
    }
}

fn merge_node(base: Node, over: Node, path: &DocPath) -> Result<Node, MergeError> {
    match over.tag {
        Some(Tag::Override) => return Ok(Node { tag: None, ..over }),
        // The parent mapping drops the key; anywhere else the tombstone
        // stays for strip_tags.
        Some(Tag::Reset) => return Ok(over),
        None => {}
    }
    // An earlier `!reset` that nothing acted on: there is nothing to merge into.
    if base.tag == Some(Tag::Reset) {
        return Ok(over);
    }
    let rule = rules::rule_for(path);
    if rule == Rule::Replace {
        return Ok(over);
    }
    // An empty value in a later file adds nothing (compose-go: a null
    // override keeps the base); an empty base has nothing to keep.
    if over.is_null() {
        return Ok(base);
    }
    if base.is_null() {
        return Ok(over);
    }
    match rule {
        Rule::Default => merge_default(base, over, path, false),
        Rule::EitherForm => merge_default(base, over, path, true),
        Rule::Replace => Ok(over),
        Rule::KeyValue => merge_key_values(base, over, path),
        Rule::ExtraHosts => merge_extra_hosts(base, over, path),
        Rule::StringOrList => {
            let line = base.derived(Value::Null);
            let items = append_unique(forms::into_entries(base), forms::into_entries(over));
            Ok(line.derived(Value::Seq(items)))
        }
        Rule::NameMap(defaults) => {
            if let (Value::Seq(_), Value::Seq(_)) = (&base.value, &over.value) {
                return merge_default(base, over, path, false);
            }
            let line = base.derived(Value::Null);
            let base = forms::name_map(base, defaults, path)?;
            let over = forms::name_map(over, defaults, path)?;
            Ok(line.derived(Value::Map(merge_mappings(base, over, path)?)))
        }
        Rule::Build => {
            if base.as_map().is_none() && over.as_map().is_none() {
                return Ok(over);
            }
            merge_default(forms::build_map(base), forms::build_map(over), path, false)
        }
        Rule::Logging => {
            let driver = |node: &Node| node.get("driver").and_then(Node::scalar_text);
            let (Some(_), Some(_)) = (base.as_map(), over.as_map()) else {
                return merge_default(base, over, path, false);
            };
            match (driver(&base), driver(&over)) {
                // Options belong to a driver: another driver starts afresh.
                (Some(old), Some(new)) if old != new => Ok(over),
                _ => merge_default(base, over, path, false),
            }
        }
        Rule::IpamConfig => merge_ipam_config(base, over, path),
    }
}

/// Mappings merge, sequences append, a scalar base is replaced. A sequence
/// or mapping met by another kind is an error, as in compose, unless
/// `either_form` says the field allows both (then the later value wins).
fn merge_default(
    base: Node,
    over: Node,
    path: &DocPath,
    either_form: bool,
) -> Result<Node, MergeError> {
    let Node {
        value,
        line,
        file,
        tag,
    } = base;
    let value = match (value, over.value) {
        (Value::Map(base), Value::Map(over)) => Value::Map(merge_mappings(base, over, path)?),
        (Value::Seq(base), Value::Seq(over)) => Value::Seq(append_unique(base, over)),
        (base @ (Value::Map(_) | Value::Seq(_)), over_value) if !either_form => {
            let over = Node {
                value: over_value,
                ..over
            };
            let base = Node::new(base);
            return Err(MergeError::at(
                path,
                &over,
                format!(
                    "cannot merge {} into {}; tag the value !override to replace it",
                    a_kind(&over),
                    a_kind(&base),
                ),
            ));
        }
        (_, over_value) => {
            return Ok(Node {
                value: over_value,
                ..over
            });
        }
    };
    Ok(Node {
        value,
        line,
        file,
        tag,
    })
}

/// Later keys merge into earlier ones in place; new keys go last; a key the
/// later file tags `!reset` goes away.
fn merge_mappings(mut base: Map, over: Map, path: &DocPath) -> Result<Map, MergeError> {
    for (key, value) in over {
        if value.tag == Some(Tag::Reset) {
            base.shift_remove(&key);
            continue;
        }
        match base.get_mut(&key) {
            Some(slot) => {
                let old = std::mem::replace(slot, Node::null());
                *slot = merge_node(old, value, &path.key(&key))?;
            }
            None => {
                base.insert(key, value);
            }
        }
    }
    Ok(base)
}

/// The base's entries, then the later entries not already there. An exact
/// repeat never means more than the first one, and dropping it keeps
/// merging a file over a result that already holds it (extends, includes)
/// idempotent; entries that are only equivalent are left to unicity.
fn append_unique(mut base: Vec<Node>, over: Vec<Node>) -> Vec<Node> {
    for item in over {
        if !base.contains(&item) {
            base.push(item);
        }
    }
    base
}

/// `KEY=VALUE` lists or mappings, merged by key: a later value (even an
/// empty or null one) replaces the earlier one where it stood.
fn merge_key_values(base: Node, over: Node, path: &DocPath) -> Result<Node, MergeError> {
    if let (Value::Seq(_), Value::Seq(_)) = (&base.value, &over.value) {
        let line = base.derived(Value::Null);
        let mut items = forms::into_entries(base);
        items.extend(forms::into_entries(over));
        unicity::dedupe_key_values(&mut items);
        return Ok(line.derived(Value::Seq(items)));
    }
    let line = base.derived(Value::Null);
    let mut map = forms::key_value_map(base, path)?;
    for (key, value) in forms::key_value_map(over, path)? {
        if value.tag == Some(Tag::Reset) {
            map.shift_remove(&key);
        } else {
            let value = Node { tag: None, ..value };
            map.insert(key, value);
        }
    }
    Ok(line.derived(Value::Map(map)))
}

/// Host/address pairs from both sides, each pair once. A later address for
/// a known host is added, not substituted: a host may resolve to several.
fn merge_extra_hosts(base: Node, over: Node, path: &DocPath) -> Result<Node, MergeError> {
    if let (Value::Seq(_), Value::Seq(_)) = (&base.value, &over.value) {
        return merge_default(base, over, path, false);
    }
    let line = base.derived(Value::Null);
    let mut map = forms::host_map(base, path)?;
    for (host, value) in forms::host_map(over, path)? {
        if value.tag == Some(Tag::Reset) {
            map.shift_remove(&host);
            continue;
        }
        let at = value.derived(Value::Null);
        let mut addresses = match map.get_mut(&host) {
            Some(known) => forms::into_entries(std::mem::replace(known, Node::null())),
            None => Vec::new(),
        };
        for address in forms::into_entries(value) {
            if !addresses
                .iter()
                .any(|a| a.scalar_text() == address.scalar_text())
            {
                addresses.push(address);
            }
        }
        // `insert` keeps a known host where it stood.
        map.insert(host, forms::addresses_node(addresses, &at));
    }
    Ok(line.derived(Value::Map(map)))
}

/// IPAM pools are identified by subnet: a later pool for a known subnet
/// merges into it, a pool for a new subnet is added.
fn merge_ipam_config(base: Node, over: Node, path: &DocPath) -> Result<Node, MergeError> {
    let (Value::Seq(_), Value::Seq(_)) = (&base.value, &over.value) else {
        return merge_default(base, over, path, false);
    };
    let subnet = |node: &Node| node.get("subnet").and_then(Node::scalar_text);
    let line = base.derived(Value::Null);
    let mut pools = forms::into_entries(base);
    for pool in forms::into_entries(over) {
        match pools
            .iter()
            .position(|known| subnet(known) == subnet(&pool))
        {
            Some(i) => {
                let known = std::mem::replace(&mut pools[i], Node::null());
                pools[i] = merge_node(known, pool, &path.index(i))?;
            }
            None => pools.push(pool),
        }
    }
    Ok(line.derived(Value::Seq(pools)))
}

#[cfg(test)]
mod tests;
