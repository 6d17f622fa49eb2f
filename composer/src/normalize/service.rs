//! One service: which conversion each key gets, and the conversions only
//! services need (depends_on, networks, extra_hosts, env_file, …).

use crate::doc_path::DocPath;
use crate::yaml::{Map, Node, Value};

use super::NormalizeError;
use super::fields::{
    Field, Table, each, error, fields, file_mode, integer, map_node, parse_duration, scalar_text,
    sorted_map, text,
};
use super::ports::ports;
use super::volumes::volumes;

const SERVICE: Table = &[
    ("annotations", Field::Dict),
    ("attach", Field::Bool),
    ("blkio_config", Field::Struct(BLKIO)),
    ("build", Field::With(build)),
    ("cap_add", Field::List),
    ("cap_drop", Field::List),
    ("cgroup", Field::Text),
    ("cgroup_parent", Field::Text),
    ("command", Field::Command),
    ("configs", Field::With(file_refs)),
    ("container_name", Field::Text),
    ("cpu_count", Field::Int),
    ("cpu_percent", Field::Int),
    ("cpu_period", Field::Int),
    ("cpu_quota", Field::Int),
    ("cpu_rt_period", Field::With(microseconds)),
    ("cpu_rt_runtime", Field::With(microseconds)),
    ("cpu_shares", Field::Int),
    ("cpus", Field::Float),
    ("cpuset", Field::Text),
    ("credential_spec", Field::Struct(CREDENTIAL_SPEC)),
    ("depends_on", Field::With(depends_on)),
    ("deploy", Field::Struct(DEPLOY)),
    ("develop", Field::Struct(DEVELOP)),
    ("device_cgroup_rules", Field::List),
    ("devices", Field::With(devices)),
    ("dns", Field::List),
    ("dns_opt", Field::List),
    ("dns_search", Field::List),
    ("domainname", Field::Text),
    ("entrypoint", Field::Command),
    ("env_file", Field::With(env_file)),
    ("environment", Field::Env),
    ("expose", Field::List),
    ("extends", Field::With(extends)),
    ("external_links", Field::List),
    ("extra_hosts", Field::With(extra_hosts)),
    ("gpus", Field::With(gpus)),
    ("group_add", Field::List),
    ("healthcheck", Field::Struct(HEALTHCHECK)),
    ("hostname", Field::Text),
    ("image", Field::Text),
    ("init", Field::Bool),
    ("ipc", Field::Text),
    ("isolation", Field::Text),
    ("label_file", Field::List),
    ("labels", Field::Dict),
    ("links", Field::List),
    ("logging", Field::Struct(LOGGING)),
    ("mac_address", Field::Text),
    ("mem_limit", Field::Bytes),
    ("mem_reservation", Field::Bytes),
    ("mem_swappiness", Field::Int),
    ("memswap_limit", Field::Bytes),
    ("models", Field::With(service_models)),
    ("network_mode", Field::Text),
    ("networks", Field::With(service_networks)),
    ("oom_kill_disable", Field::Bool),
    ("oom_score_adj", Field::Int),
    ("pid", Field::Text),
    ("pids_limit", Field::Int),
    ("platform", Field::Text),
    ("ports", Field::With(ports)),
    ("post_start", Field::Structs(HOOK)),
    ("pre_start", Field::Structs(HOOK)),
    ("pre_stop", Field::Structs(HOOK)),
    ("privileged", Field::Bool),
    ("profiles", Field::List),
    ("provider", Field::Struct(PROVIDER)),
    ("pull_policy", Field::Text),
    ("pull_refresh_after", Field::Text),
    ("read_only", Field::Bool),
    ("restart", Field::Text),
    ("runtime", Field::Text),
    ("scale", Field::Int),
    ("secrets", Field::With(file_refs)),
    ("security_opt", Field::List),
    ("shm_size", Field::Bytes),
    ("stdin_open", Field::Bool),
    ("stop_grace_period", Field::Duration),
    ("stop_signal", Field::Text),
    ("storage_opt", Field::Dict),
    ("sysctls", Field::Dict),
    ("tmpfs", Field::List),
    ("tty", Field::Bool),
    ("ulimits", Field::With(ulimits)),
    ("use_api_socket", Field::Bool),
    ("user", Field::Text),
    ("userns_mode", Field::Text),
    ("uts", Field::Text),
    ("volumes", Field::With(volumes)),
    ("volumes_from", Field::List),
    ("working_dir", Field::Text),
];

const BUILD: Table = &[
    ("additional_contexts", Field::Dict),
    ("args", Field::Env),
    ("cache_from", Field::List),
    ("cache_to", Field::List),
    ("context", Field::Text),
    ("dockerfile", Field::Text),
    ("dockerfile_inline", Field::Text),
    ("entitlements", Field::List),
    ("extra_hosts", Field::With(extra_hosts)),
    ("isolation", Field::Text),
    ("labels", Field::Dict),
    ("network", Field::Text),
    ("no_cache", Field::Bool),
    ("no_cache_filter", Field::List),
    ("platforms", Field::List),
    ("privileged", Field::Bool),
    ("provenance", Field::Text),
    ("pull", Field::Bool),
    ("sbom", Field::Text),
    ("secrets", Field::With(file_refs)),
    ("shm_size", Field::Bytes),
    ("ssh", Field::With(ssh)),
    ("tags", Field::List),
    ("target", Field::Text),
    ("ulimits", Field::With(ulimits)),
];

const BLKIO: Table = &[
    ("weight", Field::Int),
    ("weight_device", Field::Structs(WEIGHT_DEVICE)),
    ("device_read_bps", Field::Structs(THROTTLE_DEVICE)),
    ("device_read_iops", Field::Structs(THROTTLE_DEVICE)),
    ("device_write_bps", Field::Structs(THROTTLE_DEVICE)),
    ("device_write_iops", Field::Structs(THROTTLE_DEVICE)),
];
const WEIGHT_DEVICE: Table = &[("path", Field::Text), ("weight", Field::Int)];
const THROTTLE_DEVICE: Table = &[("path", Field::Text), ("rate", Field::Bytes)];

const CREDENTIAL_SPEC: Table = &[
    ("config", Field::Text),
    ("file", Field::Text),
    ("registry", Field::Text),
];

const DEPLOY: Table = &[
    ("endpoint_mode", Field::Text),
    ("labels", Field::Dict),
    ("mode", Field::Text),
    ("placement", Field::Struct(PLACEMENT)),
    ("replicas", Field::Int),
    ("resources", Field::Struct(RESOURCES)),
    ("restart_policy", Field::Struct(RESTART_POLICY)),
    ("rollback_config", Field::Struct(UPDATE_CONFIG)),
    ("update_config", Field::Struct(UPDATE_CONFIG)),
];
const UPDATE_CONFIG: Table = &[
    ("delay", Field::Duration),
    ("failure_action", Field::Text),
    ("max_failure_ratio", Field::Float),
    ("monitor", Field::Duration),
    ("order", Field::Text),
    ("parallelism", Field::Int),
];
const RESOURCES: Table = &[
    ("limits", Field::Struct(RESOURCE)),
    ("reservations", Field::Struct(RESOURCE)),
];
const RESOURCE: Table = &[
    ("cpus", Field::Float),
    ("devices", Field::Structs(DEVICE_REQUEST)),
    ("generic_resources", Field::Structs(GENERIC_RESOURCE)),
    ("memory", Field::Bytes),
    ("pids", Field::Int),
];
const GENERIC_RESOURCE: Table = &[("discrete_resource_spec", Field::Struct(DISCRETE_RESOURCE))];
const DISCRETE_RESOURCE: Table = &[("kind", Field::Text), ("value", Field::Int)];
const RESTART_POLICY: Table = &[
    ("condition", Field::Text),
    ("delay", Field::Duration),
    ("max_attempts", Field::Int),
    ("window", Field::Duration),
];
const PLACEMENT: Table = &[
    ("constraints", Field::List),
    ("max_replicas_per_node", Field::Int),
    ("preferences", Field::Structs(PLACEMENT_PREFERENCE)),
];
const PLACEMENT_PREFERENCE: Table = &[("spread", Field::Text)];

const DEVICE_REQUEST: Table = &[
    ("capabilities", Field::List),
    ("count", Field::With(device_count)),
    ("device_ids", Field::List),
    ("driver", Field::Text),
    ("options", Field::Dict),
];

const DEVELOP: Table = &[("watch", Field::Structs(WATCH))];
const WATCH: Table = &[
    ("action", Field::Text),
    ("exec", Field::Struct(HOOK)),
    ("ignore", Field::List),
    ("include", Field::List),
    ("initial_sync", Field::Bool),
    ("path", Field::Text),
    ("target", Field::Text),
];

const HOOK: Table = &[
    ("command", Field::Command),
    ("environment", Field::Env),
    ("image", Field::Text),
    ("per_replica", Field::Bool),
    ("privileged", Field::Bool),
    ("user", Field::Text),
    ("working_dir", Field::Text),
];

const HEALTHCHECK: Table = &[
    ("disable", Field::Bool),
    ("interval", Field::Duration),
    ("retries", Field::Int),
    ("start_interval", Field::Duration),
    ("start_period", Field::Duration),
    ("test", Field::With(health_test)),
    ("timeout", Field::Duration),
];

const LOGGING: Table = &[("driver", Field::Text), ("options", Field::Dict)];

const PROVIDER: Table = &[
    ("type", Field::Text),
    ("options", Field::With(provider_options)),
];

const FILE_REF: Table = &[
    ("source", Field::Text),
    ("target", Field::Text),
    ("uid", Field::Text),
    ("gid", Field::Text),
    ("mode", Field::With(file_mode)),
];

const DEPENDENCY: Table = &[
    ("condition", Field::Text),
    ("required", Field::Bool),
    ("restart", Field::Bool),
];

const SERVICE_NETWORK: Table = &[
    ("aliases", Field::List),
    ("driver_opts", Field::Dict),
    ("gw_priority", Field::Int),
    ("interface_name", Field::Text),
    ("ipv4_address", Field::Text),
    ("ipv6_address", Field::Text),
    ("link_local_ips", Field::List),
    ("mac_address", Field::Text),
    ("priority", Field::Int),
];

const SERVICE_MODEL: Table = &[("endpoint_var", Field::Text), ("model_var", Field::Text)];

const ENV_FILE: Table = &[
    ("format", Field::Text),
    ("path", Field::Text),
    ("required", Field::Bool),
];

const ULIMIT: Table = &[("soft", Field::Int), ("hard", Field::Int)];

const EXTENDS: Table = &[("service", Field::Text), ("file", Field::Text)];

const DEVICE: Table = &[
    ("source", Field::Text),
    ("target", Field::Text),
    ("permissions", Field::Text),
];

/// A service definition; `name:` with no value is an empty service.
pub(super) fn service(node: Node, path: &DocPath) -> Result<Node, NormalizeError> {
    if node.is_null() {
        return Ok(node.derived(Value::Map(Map::new())));
    }
    fields(node, path, SERVICE)
}

fn build(node: Node, path: &DocPath) -> Result<Node, NormalizeError> {
    match &node.value {
        Value::String(context) => {
            let context = context.clone();
            Ok(map_node(&node, vec![("context", Value::String(context))]))
        }
        _ => fields(node, path, BUILD),
    }
}

/// `cpu_rt_period` / `cpu_rt_runtime`: microseconds, or a duration.
fn microseconds(node: Node, path: &DocPath) -> Result<Node, NormalizeError> {
    if let Ok(number) = integer(node.clone(), path) {
        return Ok(number);
    }
    let duration = parse_duration(&node, path)?;
    Ok(node.derived(Value::Int(duration.as_nanos() / 1_000)))
}

/// `configs`, `secrets`, `build.secrets`: a name alone is `{source: name}`.
fn file_refs(node: Node, path: &DocPath) -> Result<Node, NormalizeError> {
    each(node, path, |item, item_path| match &item.value {
        Value::Map(_) => fields(item, item_path, FILE_REF),
        _ => {
            let source = scalar_text(&item, item_path)?;
            Ok(map_node(&item, vec![("source", Value::String(source))]))
        }
    })
}

/// A list of names, or a mapping of name to settings, as a sorted mapping
/// whose values are settings or null.
fn named_entries(
    node: Node,
    path: &DocPath,
    mut convert: impl FnMut(Node, &DocPath) -> Result<Node, NormalizeError>,
) -> Result<Node, NormalizeError> {
    match &node.value {
        Value::Seq(items) => {
            let mut out = Map::new();
            for (i, item) in items.iter().enumerate() {
                let name = scalar_text(item, &path.index(i))?;
                let value = convert(item.derived(Value::Null), &path.key(&name))?;
                out.insert(name, value);
            }
            out.sort_keys();
            Ok(node.derived(Value::Map(out)))
        }
        _ => sorted_map(node, path, convert),
    }
}

fn depends_on(node: Node, path: &DocPath) -> Result<Node, NormalizeError> {
    named_entries(node, path, |entry, entry_path| {
        let mut entry = if entry.is_null() {
            entry.derived(Value::Map(Map::new()))
        } else {
            fields(entry, entry_path, DEPENDENCY)?
        };
        let at = entry.clone();
        if let Some(map) = entry.as_map_mut() {
            if !map.contains_key("condition") {
                map.insert(
                    "condition".into(),
                    at.derived(Value::String("service_started".into())),
                );
            }
            if !map.contains_key("required") {
                map.insert("required".into(), at.derived(Value::Bool(true)));
            }
        }
        Ok(entry)
    })
}

fn service_networks(node: Node, path: &DocPath) -> Result<Node, NormalizeError> {
    named_entries(node, path, |entry, entry_path| {
        if entry.is_null() {
            Ok(entry)
        } else {
            fields(entry, entry_path, SERVICE_NETWORK)
        }
    })
}

fn service_models(node: Node, path: &DocPath) -> Result<Node, NormalizeError> {
    named_entries(node, path, |entry, entry_path| {
        if entry.is_null() {
            // The schema wants an object per model: `{}`, not null, so that
            // the printed project validates when read back.
            Ok(entry.derived(Value::Map(Default::default())))
        } else {
            fields(entry, entry_path, SERVICE_MODEL)
        }
    })
}

fn env_file(node: Node, path: &DocPath) -> Result<Node, NormalizeError> {
    let node = match &node.value {
        Value::Seq(_) => node,
        _ => node.derived(Value::Seq(vec![node.clone()])),
    };
    each(node, path, |item, item_path| {
        let mut entry = match &item.value {
            Value::Map(_) => fields(item, item_path, ENV_FILE)?,
            _ => {
                let file = scalar_text(&item, item_path)?;
                map_node(&item, vec![("path", Value::String(file))])
            }
        };
        let at = entry.clone();
        if let Some(map) = entry.as_map_mut()
            && !map.contains_key("required")
        {
            map.insert("required".into(), at.derived(Value::Bool(true)));
        }
        Ok(entry)
    })
}

fn extends(node: Node, path: &DocPath) -> Result<Node, NormalizeError> {
    match &node.value {
        Value::Map(_) => fields(node, path, EXTENDS),
        _ => {
            let service = scalar_text(&node, path)?;
            Ok(map_node(&node, vec![("service", Value::String(service))]))
        }
    }
}

/// `extra_hosts` as `host=ip` strings, one per address. The list form
/// takes `host=ip` or `host:ip` (split at the first separator, so
/// `host:::1` is IPv6); the mapping form takes one address or a list.
/// Brackets around an address are dropped.
fn extra_hosts(node: Node, path: &DocPath) -> Result<Node, NormalizeError> {
    let mut entries: Vec<(Node, DocPath, String, String)> = Vec::new();
    match &node.value {
        Value::Map(map) => {
            for (host, value) in map {
                let value_path = path.key(host);
                match &value.value {
                    Value::Seq(ips) => {
                        for (i, ip) in ips.iter().enumerate() {
                            let ip_path = value_path.index(i);
                            let text = scalar_text(ip, &ip_path)?;
                            for part in text.split(',') {
                                entries.push((
                                    ip.clone(),
                                    ip_path.clone(),
                                    host.clone(),
                                    part.to_string(),
                                ));
                            }
                        }
                    }
                    Value::Null => {
                        entries.push((value.clone(), value_path, host.clone(), String::new()))
                    }
                    _ => {
                        // `host: a,b` means two addresses, as `host=a,b`
                        // does in the list form.
                        let text = scalar_text(value, &value_path)?;
                        for ip in text.split(',') {
                            entries.push((
                                value.clone(),
                                value_path.clone(),
                                host.clone(),
                                ip.to_string(),
                            ));
                        }
                    }
                }
            }
        }
        Value::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                let item_path = path.index(i);
                let entry = scalar_text(item, &item_path)?;
                let Some((host, ips)) = entry.split_once('=').or_else(|| entry.split_once(':'))
                else {
                    return Err(error(
                        item,
                        &item_path,
                        format!(
                            "invalid extra host \"{entry}\": expected HOST=IP, e.g. myhost=10.0.0.1"
                        ),
                    ));
                };
                for ip in ips.split(',') {
                    entries.push((
                        item.clone(),
                        item_path.clone(),
                        host.to_string(),
                        ip.to_string(),
                    ));
                }
            }
        }
        _ => {
            return Err(error(
                &node,
                path,
                format!(
                    "expected a mapping or a list of HOST=IP strings, found {}",
                    node.kind()
                ),
            ));
        }
    }
    let mut out = Vec::with_capacity(entries.len());
    for (at, at_path, host, ip) in entries {
        if host.is_empty() || host.contains([':', '=']) {
            return Err(error(
                &at,
                &at_path,
                format!(
                    "invalid extra host name \"{host}\": expected HOST=IP, e.g. myhost=10.0.0.1"
                ),
            ));
        }
        let ip = ip
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
            .unwrap_or(&ip);
        // The same address twice means it once (and the schema wants
        // unique entries when the list is read back).
        let entry = Value::String(format!("{host}={ip}"));
        if !out.iter().any(|n: &Node| n.value == entry) {
            out.push(at.derived(entry));
        }
    }
    Ok(node.derived(Value::Seq(out)))
}

/// `gpus: all` is one request for every GPU.
fn gpus(node: Node, path: &DocPath) -> Result<Node, NormalizeError> {
    match &node.value {
        Value::Seq(_) => each(node, path, |item, item_path| {
            fields(item, item_path, DEVICE_REQUEST)
        }),
        _ => {
            let value = scalar_text(&node, path)?;
            if !value.eq_ignore_ascii_case("all") {
                return Err(error(
                    &node,
                    path,
                    format!(
                        "invalid gpus \"{value}\": expected \"all\" or a list of device requests"
                    ),
                ));
            }
            let request = map_node(&node, vec![("count", Value::String("all".into()))]);
            Ok(node.derived(Value::Seq(vec![request])))
        }
    }
}

/// A device count: a number, or `all` (also written `-1`).
fn device_count(node: Node, path: &DocPath) -> Result<Node, NormalizeError> {
    let text = scalar_text(&node, path)?;
    let text = text.trim();
    if text.eq_ignore_ascii_case("all") || text == "-1" {
        return Ok(node.derived(Value::String("all".into())));
    }
    match text.parse::<u32>() {
        Ok(count) => Ok(node.derived(Value::Int(count.into()))),
        Err(_) => Err(error(
            &node,
            path,
            format!("invalid device count \"{text}\": expected a number or \"all\""),
        )),
    }
}

/// `devices`: `SOURCE[:TARGET[:PERMISSIONS]]` as a mapping.
fn devices(node: Node, path: &DocPath) -> Result<Node, NormalizeError> {
    each(node, path, |item, item_path| {
        let Value::String(spec) = &item.value else {
            return fields(item, item_path, DEVICE);
        };
        let parts: Vec<&str> = spec.split(':').collect();
        let (source, target, permissions) = match parts.as_slice() {
            [source] => (*source, *source, "rwm"),
            [source, target] => (*source, *target, "rwm"),
            [source, target, permissions] => (*source, *target, *permissions),
            _ => {
                return Err(error(
                    &item,
                    item_path,
                    format!(
                        "invalid device \"{spec}\": expected SOURCE[:TARGET[:PERMISSIONS]], or use the long syntax"
                    ),
                ));
            }
        };
        if source.is_empty() {
            return Err(error(
                &item,
                item_path,
                format!("invalid device \"{spec}\": no source path"),
            ));
        }
        Ok(map_node(
            &item,
            vec![
                ("source", Value::String(source.into())),
                ("target", Value::String(target.into())),
                ("permissions", Value::String(permissions.into())),
            ],
        ))
    })
}

/// `healthcheck.test`: a string runs in a shell.
fn health_test(node: Node, path: &DocPath) -> Result<Node, NormalizeError> {
    match &node.value {
        Value::Seq(_) => each(node, path, text),
        _ => {
            let line = scalar_text(&node, path)?;
            Ok(node.derived(Value::Seq(vec![
                node.derived(Value::String("CMD-SHELL".into())),
                node.derived(Value::String(line)),
            ])))
        }
    }
}

/// `build.ssh`: `default` or `ID=PATH` strings. The mapping form
/// (`{default: null, id: path}`) is accepted too.
fn ssh(node: Node, path: &DocPath) -> Result<Node, NormalizeError> {
    let mut out = Vec::new();
    match &node.value {
        Value::Map(map) => {
            for (id, value) in map {
                let entry = match &value.value {
                    Value::Null => id.clone(),
                    _ => format!("{id}={}", scalar_text(value, &path.key(id))?),
                };
                out.push(value.derived(Value::String(entry)));
            }
        }
        Value::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                let item_path = path.index(i);
                let entry = scalar_text(item, &item_path)?;
                if !entry.contains('=') && entry != "default" {
                    return Err(error(
                        item,
                        &item_path,
                        format!("invalid ssh key \"{entry}\": expected \"default\" or ID=PATH"),
                    ));
                }
                out.push(item.derived(Value::String(entry)));
            }
        }
        _ => {
            let entry = scalar_text(&node, path)?;
            out.push(node.derived(Value::String(entry)));
        }
    }
    Ok(node.derived(Value::Seq(out)))
}

/// `ulimits`: one number for both limits, or `{soft, hard}`.
fn ulimits(node: Node, path: &DocPath) -> Result<Node, NormalizeError> {
    sorted_map(node, path, |limit, limit_path| match &limit.value {
        Value::Map(map) => {
            if !(map.contains_key("soft") && map.contains_key("hard")) {
                return Err(error(
                    &limit,
                    limit_path,
                    "a ulimit mapping needs both soft and hard; or give one number for both",
                ));
            }
            fields(limit, limit_path, ULIMIT)
        }
        _ => integer(limit, limit_path),
    })
}

/// `provider.options`: each value a scalar or a list of scalars, as text.
fn provider_options(node: Node, path: &DocPath) -> Result<Node, NormalizeError> {
    sorted_map(node, path, |value, value_path| match &value.value {
        Value::Seq(_) => each(value, value_path, text),
        _ => text(value, value_path),
    })
}
