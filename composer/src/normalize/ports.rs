//! `ports`: the short syntax `[[HOST_IP:]HOST_PORT:]CONTAINER_PORT[/PROTOCOL]`
//! (ports may be ranges) expanded to one long-form entry per container
//! port, and the long form completed with its defaults.

use std::net::IpAddr;

use crate::doc_path::DocPath;
use crate::yaml::{Node, Value};

use super::NormalizeError;
use super::fields::{Field, Table, error, fields, map_node};

const SYNTAX: &str = "expected [[HOST_IP:]HOST_PORT:]CONTAINER_PORT[/PROTOCOL], e.g. 8080:80 or 127.0.0.1:8000-8001:80-81/udp";

const PORT: Table = &[
    ("name", Field::Text),
    ("mode", Field::Text),
    ("host_ip", Field::Text),
    ("target", Field::With(target)),
    ("published", Field::With(published)),
    ("protocol", Field::Text),
    ("app_protocol", Field::Text),
];

pub(super) fn ports(node: Node, path: &DocPath) -> Result<Node, NormalizeError> {
    let Some(items) = node.as_seq() else {
        return Err(error(
            &node,
            path,
            format!("expected a list, found {}", node.kind()),
        ));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let item_path = path.index(i);
        match &item.value {
            Value::Int(n) => {
                let Ok(target) = u16::try_from(*n) else {
                    return Err(error(
                        item,
                        &item_path,
                        format!("invalid port {n}: a port is 0 to 65535"),
                    ));
                };
                out.push(short_entry(item, None, target, None, "tcp"));
            }
            Value::String(spec) => {
                let entries = parse_short(spec).map_err(|reason| {
                    error(
                        item,
                        &item_path,
                        format!("invalid port \"{spec}\": {reason}; {SYNTAX}"),
                    )
                })?;
                for entry in entries {
                    out.push(short_entry(
                        item,
                        entry.host_ip.as_deref(),
                        entry.target,
                        entry.published,
                        &entry.protocol,
                    ));
                }
            }
            Value::Map(_) => out.push(long_entry(item.clone(), &item_path)?),
            _ => {
                return Err(error(
                    item,
                    &item_path,
                    format!(
                        "expected a port number, a string or a mapping, found {}",
                        item.kind()
                    ),
                ));
            }
        }
    }
    Ok(node.derived(Value::Seq(out)))
}

fn short_entry(
    at: &Node,
    host_ip: Option<&str>,
    target: u16,
    published: Option<String>,
    protocol: &str,
) -> Node {
    let mut entries = vec![("mode", Value::String("ingress".into()))];
    if let Some(ip) = host_ip {
        entries.push(("host_ip", Value::String(ip.into())));
    }
    entries.push(("target", Value::Int(target.into())));
    if let Some(published) = published {
        entries.push(("published", Value::String(published)));
    }
    entries.push(("protocol", Value::String(protocol.into())));
    map_node(at, entries)
}

fn long_entry(node: Node, path: &DocPath) -> Result<Node, NormalizeError> {
    let mut node = fields(node, path, PORT)?;
    if let Some(map) = node.as_map_mut() {
        // `published: ""` is what `${PORT:-}` leaves: not published.
        if map.get("published").and_then(Node::as_str) == Some("") {
            map.shift_remove("published");
        }
        for (key, default) in [("mode", "ingress"), ("protocol", "tcp")] {
            if !map.contains_key(key) {
                map.insert(key.to_string(), Node::string(default));
            }
        }
    }
    Ok(node)
}

fn target(node: Node, path: &DocPath) -> Result<Node, NormalizeError> {
    let text = node.scalar_text().unwrap_or_default();
    match parse_number(text.trim()) {
        Some(port) => Ok(node.derived(Value::Int(port.into()))),
        None => Err(error(
            &node,
            path,
            format!(
                "invalid target port \"{text}\": expected one port number (0 to 65535); write one entry per port for a range"
            ),
        )),
    }
}

fn published(node: Node, path: &DocPath) -> Result<Node, NormalizeError> {
    let text = node.scalar_text().unwrap_or_default();
    let text = text.trim();
    if text.is_empty() || parse_range(text).is_some() {
        return Ok(node.derived(Value::String(text.to_string())));
    }
    Err(error(
        &node,
        path,
        format!(
            "invalid published port \"{text}\": expected a port number or a range such as 8000-8010"
        ),
    ))
}

/// One container port of a short-syntax entry.
#[derive(Debug, PartialEq)]
struct ShortPort {
    host_ip: Option<String>,
    target: u16,
    published: Option<String>,
    protocol: String,
}

/// Digits only (no sign), within 0 to 65535.
fn parse_number(text: &str) -> Option<u16> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `80` or `8000-8010`, as `(start, end)` with `start <= end`.
fn parse_range(text: &str) -> Option<(u16, u16)> {
    match text.split_once('-') {
        Some((start, end)) => {
            let (start, end) = (parse_number(start)?, parse_number(end)?);
            (start <= end).then_some((start, end))
        }
        None => parse_number(text).map(|port| (port, port)),
    }
}

fn parse_short(spec: &str) -> Result<Vec<ShortPort>, String> {
    // The last two colons separate the ports; anything before them is the
    // host IP, which may itself be IPv6 (`[::1]:80:80` or `::1:80:80`).
    let mut parts = spec.rsplitn(3, ':');
    let container = parts.next().unwrap_or_default();
    let host = parts.next().unwrap_or_default();
    let ip = parts.next();

    let (container, protocol) = match container.split_once('/') {
        Some((port, "")) => (port, "tcp".to_string()),
        Some((port, protocol)) => (port, protocol.to_ascii_lowercase()),
        None => (container, "tcp".to_string()),
    };
    if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!(
            "unknown protocol \"{protocol}\" (use tcp, udp or sctp)"
        ));
    }

    let host_ip = match ip {
        None | Some("") => None,
        Some(ip) => {
            let bare = ip
                .strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .unwrap_or(ip);
            if bare.parse::<IpAddr>().is_err() {
                return Err(format!("\"{ip}\" is not an IP address"));
            }
            Some(bare.to_string())
        }
    };

    if container.is_empty() {
        return Err("no container port".to_string());
    }
    let Some((start, end)) = parse_range(container) else {
        return Err(format!(
            "container port \"{container}\" is not a port or a range"
        ));
    };
    let host_range = if host.is_empty() {
        None
    } else {
        match parse_range(host) {
            Some(range) => Some(range),
            None => return Err(format!("host port \"{host}\" is not a port or a range")),
        }
    };
    if let Some((host_start, host_end)) = host_range
        && end - start != host_end - host_start
        && start != end
    {
        return Err(format!(
            "host range {host} and container range {container} have different sizes"
        ));
    }

    let entries = (start..=end)
        .enumerate()
        .map(|(i, target)| {
            let published = host_range.map(|(host_start, host_end)| {
                if start == end && host_start != host_end {
                    // One container port, any free host port of the range.
                    format!("{host_start}-{host_end}")
                } else {
                    (usize::from(host_start) + i).to_string()
                }
            });
            ShortPort {
                host_ip: host_ip.clone(),
                target,
                published,
                protocol: protocol.clone(),
            }
        })
        .collect();
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each entry as `HOST_IP|PUBLISHED|TARGET/PROTOCOL`, `-` when absent.
    fn short(spec: &str) -> Vec<String> {
        let parsed = parse_short(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
        parsed
            .into_iter()
            .map(|p| {
                format!(
                    "{}|{}|{}/{}",
                    p.host_ip.as_deref().unwrap_or("-"),
                    p.published.as_deref().unwrap_or("-"),
                    p.target,
                    p.protocol
                )
            })
            .collect()
    }

    #[test]
    fn single_ports() {
        assert_eq!(short("80"), ["-|-|80/tcp"]);
        assert_eq!(short("8080:80"), ["-|8080|80/tcp"]);
        assert_eq!(short("8080:80/udp"), ["-|8080|80/udp"]);
        assert_eq!(short("80/UDP"), ["-|-|80/udp"]);
        assert_eq!(short("80/"), ["-|-|80/tcp"]);
        assert_eq!(short(":80"), ["-|-|80/tcp"]);
        assert_eq!(short("53:53/sctp"), ["-|53|53/sctp"]);
    }

    #[test]
    fn host_ips() {
        assert_eq!(short("127.0.0.1:8080:80"), ["127.0.0.1|8080|80/tcp"]);
        assert_eq!(short("127.0.0.1::80"), ["127.0.0.1|-|80/tcp"]);
        assert_eq!(short("[::1]:80:80"), ["::1|80|80/tcp"]);
        assert_eq!(short("::1:80:80"), ["::1|80|80/tcp"]);
        assert_eq!(short("[fe80::1]::80/udp"), ["fe80::1|-|80/udp"]);
    }

    #[test]
    fn ranges() {
        assert_eq!(short("8000-8001:80-81"), ["-|8000|80/tcp", "-|8001|81/tcp"]);
        assert_eq!(short("80-81"), ["-|-|80/tcp", "-|-|81/tcp"]);
        assert_eq!(short("8000-8010:80"), ["-|8000-8010|80/tcp"]);
        assert_eq!(
            short("0.0.0.0:9090-9091:8080-8081/udp"),
            ["0.0.0.0|9090|8080/udp", "0.0.0.0|9091|8081/udp"]
        );
    }

    #[test]
    fn bad_ports() {
        for bad in [
            "",
            "80:abc",
            "abc",
            "8080:80/xyz",
            "1.2.3:80:80",
            "[::1:80:80",
            "8000:80-81",
            "8000-8002:80-81",
            "81-80",
            "70000",
            "+80",
            "80:",
            ":80:",
        ] {
            assert!(parse_short(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_short("80:abc").unwrap_err(),
            "container port \"abc\" is not a port or a range"
        );
    }
}
