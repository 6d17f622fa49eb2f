//! The checks Docker Compose makes on a whole project after loading, which
//! no schema can express: references to services, networks, volumes,
//! configs and secrets exist; `depends_on` has no cycle; `container_name`
//! is not combined with replicas; no two ports claim the same host port.

use std::collections::HashMap;

use crate::doc_path::DocPath;
use crate::error::{FileTable, LoadError};
use crate::yaml::{Map, Node, Value};

/// Checks the finished project tree (normalised forms).
pub fn check(doc: &Node, files: &FileTable) -> Result<(), LoadError> {
    let empty = Map::new();
    let services = doc.get("services").and_then(Node::as_map).unwrap_or(&empty);
    let section = |kind: &str| doc.get(kind).and_then(Node::as_map).unwrap_or(&empty);
    for (name, service) in services {
        let path = DocPath::root().key("services").key(name);
        check_service_references(name, service, &path, services, files)?;
        check_resource_references(
            name,
            service,
            &path,
            "networks",
            "network",
            section("networks"),
            files,
        )?;
        check_volume_references(name, service, &path, section("volumes"), files)?;
        check_resource_references(
            name,
            service,
            &path,
            "secrets",
            "secret",
            section("secrets"),
            files,
        )?;
        check_resource_references(
            name,
            service,
            &path,
            "configs",
            "config",
            section("configs"),
            files,
        )?;
        check_container_name(service, &path, files)?;
    }
    check_cycles(services)?;
    check_ports(services, files)
}

fn undefined(files: &FileTable, node: &Node, path: &DocPath, message: String) -> LoadError {
    LoadError::at(files.locate(node, path), message)
}

/// `depends_on`, `links`, `volumes_from` and `service:` modes name
/// services of this project.
fn check_service_references(
    name: &str,
    service: &Node,
    path: &DocPath,
    services: &Map,
    files: &FileTable,
) -> Result<(), LoadError> {
    let missing = |other: &str| !services.contains_key(other);
    let message = |other: &str| {
        format!(
            "service \"{name}\" depends on undefined service \"{other}\": define it or remove the reference"
        )
    };
    if let Some(deps) = service.get("depends_on").and_then(Node::as_map) {
        for (dep, node) in deps {
            if missing(dep) {
                return Err(undefined(
                    files,
                    node,
                    &path.key("depends_on").key(dep),
                    message(dep),
                ));
            }
        }
    }
    if let Some(links) = service.get("links").and_then(Node::as_seq) {
        for (i, link) in links.iter().enumerate() {
            let target = link
                .as_str()
                .unwrap_or_default()
                .split(':')
                .next()
                .unwrap_or_default();
            if missing(target) {
                return Err(undefined(
                    files,
                    link,
                    &path.key("links").index(i),
                    message(target),
                ));
            }
        }
    }
    if let Some(from) = service.get("volumes_from").and_then(Node::as_seq) {
        for (i, entry) in from.iter().enumerate() {
            let text = entry.as_str().unwrap_or_default();
            if text.starts_with("container:") {
                continue;
            }
            let target = text.split(':').next().unwrap_or_default();
            if missing(target) {
                return Err(undefined(
                    files,
                    entry,
                    &path.key("volumes_from").index(i),
                    message(target),
                ));
            }
        }
    }
    for key in ["network_mode", "ipc", "pid", "cgroup"] {
        if let Some(node) = service.get(key)
            && let Some(target) = node.as_str().and_then(|v| v.strip_prefix("service:"))
            && missing(target)
        {
            return Err(undefined(files, node, &path.key(key), message(target)));
        }
    }
    Ok(())
}

/// A service's `networks` (map keys), `secrets` and `configs` (`source`)
/// must be declared at the top level.
fn check_resource_references(
    name: &str,
    service: &Node,
    path: &DocPath,
    key: &str,
    what: &str,
    declared: &Map,
    files: &FileTable,
) -> Result<(), LoadError> {
    let Some(node) = service.get(key) else {
        return Ok(());
    };
    let references: Vec<(String, &Node, DocPath)> = match &node.value {
        Value::Map(map) => map
            .iter()
            .map(|(k, v)| (k.clone(), v, path.key(key).key(k)))
            .collect(),
        Value::Seq(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| {
                let source = item
                    .get("source")
                    .and_then(Node::as_str)
                    .or(item.as_str())?;
                Some((source.to_string(), item, path.key(key).index(i)))
            })
            .collect(),
        _ => Vec::new(),
    };
    for (reference, node, at) in references {
        if !declared.contains_key(&reference) {
            return Err(undefined(
                files,
                node,
                &at,
                format!(
                    "service \"{name}\" refers to undefined {what} \"{reference}\": declare it under top-level `{key}:`"
                ),
            ));
        }
    }
    Ok(())
}

/// Named volumes a service mounts must be declared under `volumes:`.
fn check_volume_references(
    name: &str,
    service: &Node,
    path: &DocPath,
    declared: &Map,
    files: &FileTable,
) -> Result<(), LoadError> {
    let Some(volumes) = service.get("volumes").and_then(Node::as_seq) else {
        return Ok(());
    };
    for (i, volume) in volumes.iter().enumerate() {
        if volume.get("type").and_then(Node::as_str) != Some("volume") {
            continue;
        }
        let Some(source) = volume
            .get("source")
            .and_then(Node::as_str)
            .filter(|s| !s.is_empty())
        else {
            continue;
        };
        if !declared.contains_key(source) {
            return Err(undefined(
                files,
                volume,
                &path.key("volumes").index(i),
                format!(
                    "service \"{name}\" refers to undefined volume \"{source}\": declare it under top-level `volumes:` or use a path like ./{source} for a bind mount"
                ),
            ));
        }
    }
    Ok(())
}

/// A fixed container name can only be given to one container.
fn check_container_name(
    service: &Node,
    path: &DocPath,
    files: &FileTable,
) -> Result<(), LoadError> {
    let Some(name) = service.get("container_name").and_then(Node::as_str) else {
        return Ok(());
    };
    let replicas = service
        .get("deploy")
        .and_then(|d| d.get("replicas"))
        .or(service.get("scale"))
        .and_then(|r| match r.value {
            Value::Int(n) => Some(n),
            _ => None,
        })
        .unwrap_or(1);
    if replicas > 1 {
        let node = service.get("container_name").unwrap_or(service);
        return Err(LoadError::at(
            files.locate(node, &path.key("container_name")),
            format!(
                "container name \"{name}\" cannot be used with {replicas} replicas: names must be unique; remove container_name or run one replica"
            ),
        ));
    }
    Ok(())
}

/// Refuses `depends_on` cycles, naming the services in order.
fn check_cycles(services: &Map) -> Result<(), LoadError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit<'a>(
        name: &'a str,
        services: &'a Map,
        marks: &mut HashMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
    ) -> Result<(), LoadError> {
        match marks.get(name) {
            Some(Mark::Done) => return Ok(()),
            Some(Mark::Visiting) => {
                let start = stack.iter().position(|s| *s == name).unwrap_or(0);
                let mut cycle: Vec<&str> = stack[start..].to_vec();
                cycle.push(name);
                return Err(LoadError::project(format!(
                    "dependency cycle detected: {}",
                    cycle.join(" -> ")
                )));
            }
            None => {}
        }
        marks.insert(name, Mark::Visiting);
        stack.push(name);
        if let Some(deps) = services
            .get(name)
            .and_then(|s| s.get("depends_on"))
            .and_then(Node::as_map)
        {
            for dep in deps.keys() {
                if services.contains_key(dep) {
                    visit(dep, services, marks, stack)?;
                }
            }
        }
        stack.pop();
        marks.insert(name, Mark::Done);
        Ok(())
    }
    let mut marks = HashMap::new();
    for name in services.keys() {
        visit(name, services, &mut marks, &mut Vec::new())?;
    }
    Ok(())
}

/// One published (host address, port, protocol) per project.
fn check_ports(services: &Map, files: &FileTable) -> Result<(), LoadError> {
    let mut claimed: Vec<(String, u32, String, String, DocPath)> = Vec::new();
    for (name, service) in services {
        let Some(ports) = service.get("ports").and_then(Node::as_seq) else {
            continue;
        };
        for (i, port) in ports.iter().enumerate() {
            let Some(published) = port.get("published").and_then(Node::scalar_text) else {
                continue;
            };
            let Some((low, high)) = port_range(&published) else {
                continue;
            };
            let host_ip = port
                .get("host_ip")
                .and_then(Node::as_str)
                .unwrap_or("")
                .to_string();
            let protocol = port
                .get("protocol")
                .and_then(Node::as_str)
                .unwrap_or("tcp")
                .to_string();
            let path = DocPath::root()
                .key("services")
                .key(name)
                .key("ports")
                .index(i);
            // A range lets the engine pick one free port per replica; only
            // single ports can collide for sure.
            if low != high {
                continue;
            }
            for (other_ip, other_port, other_protocol, other_service, other_path) in &claimed {
                let same_ip = host_ip == *other_ip || is_any(&host_ip) || is_any(other_ip);
                if *other_port == low && *other_protocol == protocol && same_ip {
                    let what = if other_service == name {
                        "this service".to_string()
                    } else {
                        format!("service \"{other_service}\"")
                    };
                    return Err(LoadError::at(
                        files.locate(port, &path),
                        format!(
                            "host port {low}/{protocol} is already published by {what} ({other_path}): pick another published port"
                        ),
                    ));
                }
            }
            claimed.push((host_ip, low, protocol, name.clone(), path));
        }
    }
    Ok(())
}

fn is_any(ip: &str) -> bool {
    matches!(ip, "" | "0.0.0.0" | "::")
}

fn port_range(text: &str) -> Option<(u32, u32)> {
    match text.split_once('-') {
        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
        None => {
            let port: u32 = text.parse().ok()?;
            Some((port, port))
        }
    }
}
