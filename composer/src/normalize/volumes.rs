//! A service's `volumes`: the short syntax `[SOURCE:]TARGET[:OPTIONS]` as
//! a long-form mount, and the long form's values converted.

use crate::doc_path::DocPath;
use crate::yaml::{Map, Node, Value};

use super::NormalizeError;
use super::fields::{Field, Table, each, error, fields, file_mode};

const MOUNT: Table = &[
    ("type", Field::Text),
    ("source", Field::Text),
    ("target", Field::Text),
    ("read_only", Field::Bool),
    ("consistency", Field::Text),
    ("bind", Field::Struct(BIND)),
    ("volume", Field::Struct(VOLUME)),
    ("tmpfs", Field::Struct(TMPFS)),
    ("image", Field::Struct(IMAGE)),
];
const BIND: Table = &[
    ("propagation", Field::Text),
    ("create_host_path", Field::Bool),
    ("selinux", Field::Text),
    ("recursive", Field::Text),
];
const VOLUME: Table = &[
    ("labels", Field::Dict),
    ("nocopy", Field::Bool),
    ("subpath", Field::Text),
];
const TMPFS: Table = &[("size", Field::Bytes), ("mode", Field::With(file_mode))];
const IMAGE: Table = &[("subpath", Field::Text)];

const PROPAGATIONS: [&str; 6] = [
    "shared", "rshared", "slave", "rslave", "private", "rprivate",
];

pub(super) fn volumes(node: Node, path: &DocPath) -> Result<Node, NormalizeError> {
    each(node, path, |item, item_path| match &item.value {
        Value::String(spec) => match parse_short(spec) {
            Ok(mount) => Ok(mount.to_node(&item)),
            Err(reason) => Err(error(
                &item,
                item_path,
                format!("invalid volume \"{spec}\": {reason}"),
            )),
        },
        _ => fields(item, item_path, MOUNT),
    })
}

#[derive(Debug, Default, PartialEq)]
struct ShortMount {
    bind: bool,
    source: Option<String>,
    target: String,
    read_only: bool,
    consistency: Option<String>,
    propagation: Option<String>,
    selinux: Option<String>,
    nocopy: bool,
    /// compose writes `volume: {}` for every volume mount except those
    /// whose whole spec is one or two characters; kept for identical
    /// output.
    bare: bool,
}

impl ShortMount {
    fn to_node(&self, at: &Node) -> Node {
        let string = |s: &str| at.derived(Value::String(s.to_string()));
        let mut map = Map::new();
        let kind = if self.bind { "bind" } else { "volume" };
        map.insert("type".into(), string(kind));
        if let Some(source) = &self.source {
            map.insert("source".into(), string(source));
        }
        map.insert("target".into(), string(&self.target));
        if self.read_only {
            map.insert("read_only".into(), at.derived(Value::Bool(true)));
        }
        if let Some(consistency) = &self.consistency {
            map.insert("consistency".into(), string(consistency));
        }
        let mut bind = Map::new();
        if let Some(propagation) = &self.propagation {
            bind.insert("propagation".into(), string(propagation));
        }
        if self.bind {
            // docker-compose v1 created missing host paths for the short
            // syntax; compose keeps that.
            bind.insert("create_host_path".into(), at.derived(Value::Bool(true)));
        }
        if let Some(selinux) = &self.selinux {
            bind.insert("selinux".into(), string(selinux));
        }
        if !bind.is_empty() {
            map.insert("bind".into(), at.derived(Value::Map(bind)));
        }
        if (!self.bind && !self.bare) || self.nocopy {
            let mut volume = Map::new();
            if self.nocopy {
                volume.insert("nocopy".into(), at.derived(Value::Bool(true)));
            }
            map.insert("volume".into(), at.derived(Value::Map(volume)));
        }
        at.derived(Value::Map(map))
    }
}

/// A host path rather than a volume name: relative, absolute, home, a
/// Windows drive or a UNC path.
fn is_path(source: &str) -> bool {
    source.starts_with(['.', '/', '~'])
        || source.starts_with("\\\\")
        || is_drive(source.as_bytes(), 1)
}

/// Whether the `:` at `colon` ends a Windows drive letter (`C:\`, `C:/`)
/// that starts its section.
fn is_drive(spec: &[u8], colon: usize) -> bool {
    colon >= 1
        && spec.get(colon) == Some(&b':')
        && spec[colon - 1].is_ascii_alphabetic()
        && (colon == 1 || spec[colon - 2] == b':')
        && matches!(spec.get(colon + 1), Some(b'\\' | b'/'))
}

/// Splits on the colons that separate sections, keeping those of drive
/// letters and of `${…}` text left by `$${…}` escapes.
fn sections(spec: &str) -> Vec<&str> {
    let bytes = spec.as_bytes();
    let mut parts = Vec::new();
    let (mut start, mut depth) = (0, 0usize);
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'$' if bytes.get(i + 1) == Some(&b'{') => depth += 1,
            b'}' if depth > 0 => depth -= 1,
            b':' if depth == 0 && !is_drive(bytes, i) => {
                parts.push(&spec[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&spec[start..]);
    parts
}

fn parse_short(spec: &str) -> Result<ShortMount, String> {
    if spec.is_empty() {
        return Err("empty volume; expected [SOURCE:]TARGET[:OPTIONS]".into());
    }
    if spec.chars().count() <= 2 {
        return Ok(ShortMount {
            target: spec.to_string(),
            bare: true,
            ..ShortMount::default()
        });
    }
    let parts = sections(spec);
    if parts.iter().any(|p| p.is_empty()) {
        return Err("empty section between colons; expected [SOURCE:]TARGET[:OPTIONS]".into());
    }
    let mut mount = ShortMount::default();
    let options = match parts.as_slice() {
        [target] => {
            mount.target = target.to_string();
            ""
        }
        [source, target] => {
            mount.source = Some(source.to_string());
            mount.target = target.to_string();
            ""
        }
        [source, target, options] => {
            mount.source = Some(source.to_string());
            mount.target = target.to_string();
            options
        }
        _ => return Err("too many colons; expected [SOURCE:]TARGET[:OPTIONS]".into()),
    };
    for option in options.split(',').filter(|o| !o.is_empty()) {
        match option {
            "ro" => mount.read_only = true,
            "rw" => mount.read_only = false,
            "nocopy" => mount.nocopy = true,
            "z" | "Z" => mount.selinux = Some(option.to_string()),
            "consistent" | "cached" | "delegated" => mount.consistency = Some(option.to_string()),
            _ if PROPAGATIONS.contains(&option) => mount.propagation = Some(option.to_string()),
            _ => {
                return Err(format!(
                    "unknown option \"{option}\"; use ro, rw, z, Z, nocopy, a propagation ({}) or a consistency (cached, delegated, consistent)",
                    PROPAGATIONS.join(", ")
                ));
            }
        }
    }
    mount.bind = mount.source.as_deref().is_some_and(is_path);
    Ok(mount)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(spec: &str) -> ShortMount {
        parse_short(spec).unwrap_or_else(|e| panic!("{spec}: {e}"))
    }

    #[test]
    fn kinds() {
        let named = parse("data:/var/lib/data");
        assert!(!named.bind);
        assert_eq!(named.source.as_deref(), Some("data"));
        assert_eq!(named.target, "/var/lib/data");
        for source in [
            "./src",
            "../src",
            "/opt/data",
            "~/data",
            "C:\\data",
            "c:/data",
            "\\\\host\\share",
        ] {
            let mount = parse(&format!("{source}:/data"));
            assert!(mount.bind, "{source}");
            assert_eq!(mount.source.as_deref(), Some(source));
            assert_eq!(mount.target, "/data");
        }
        let anonymous = parse("/data");
        assert_eq!(
            (anonymous.bind, anonymous.source, anonymous.target.as_str()),
            (false, None, "/data")
        );
        assert!(!anonymous.bare);
        assert!(parse("/a").bare);
    }

    #[test]
    fn windows_targets() {
        let mount = parse("C:\\src:D:\\dst:ro");
        assert_eq!(mount.source.as_deref(), Some("C:\\src"));
        assert_eq!(mount.target, "D:\\dst");
        assert!(mount.read_only);
    }

    #[test]
    fn options() {
        let mount = parse("./a:/b:ro,z,rslave");
        assert!(mount.read_only);
        assert_eq!(mount.selinux.as_deref(), Some("z"));
        assert_eq!(mount.propagation.as_deref(), Some("rslave"));
        let mount = parse("data:/b:nocopy,rw");
        assert!(mount.nocopy && !mount.read_only);
        let mount = parse(".:/app:cached");
        assert_eq!(mount.consistency.as_deref(), Some("cached"));
        assert_eq!(parse("/a:/b:Z").selinux.as_deref(), Some("Z"));
    }

    #[test]
    fn errors() {
        assert!(parse_short("").is_err());
        assert!(parse_short("a::b").unwrap_err().contains("empty section"));
        assert!(
            parse_short("a:b:c:d")
                .unwrap_err()
                .contains("too many colons")
        );
        assert!(
            parse_short("vol:/b:rx")
                .unwrap_err()
                .contains("unknown option \"rx\"")
        );
    }
}
