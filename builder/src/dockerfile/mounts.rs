//! `RUN --mount=…` specifications: the comma-separated key=value syntax,
//! checked so typos fail at parse time rather than mid-build.

use super::suggest::closest;

const TYPES: [&str; 5] = ["bind", "cache", "tmpfs", "secret", "ssh"];
const KEYS: [&str; 16] = [
    "type",
    "from",
    "source",
    "src",
    "target",
    "dst",
    "destination",
    "readonly",
    "ro",
    "readwrite",
    "rw",
    "id",
    "sharing",
    "mode",
    "uid",
    "gid",
];
const MORE_KEYS: [&str; 3] = ["required", "env", "size"];

/// Checks one `--mount` value. Values holding `$` are left for expansion.
pub fn check_mount_spec(spec: &str) -> Result<(), String> {
    let mut kind = "bind";
    let mut has_target = false;
    for field in spec.split(',') {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        if !KEYS.contains(&key.as_str()) && !MORE_KEYS.contains(&key.as_str()) {
            let mut msg = format!("unknown key {key:?} in --mount={spec}");
            if let Some(s) = closest(&key, KEYS.into_iter().chain(MORE_KEYS)) {
                msg.push_str(&format!(" (did you mean {s}?)"));
            }
            return Err(msg);
        }
        match (key.as_str(), value) {
            ("type", Some(t)) => {
                if !TYPES.contains(&t) {
                    return Err(format!(
                        "unsupported mount type {t:?} in --mount={spec} (use bind, cache, tmpfs, secret or ssh)"
                    ));
                }
                kind = t;
            }
            ("target" | "dst" | "destination", Some(t)) if !t.is_empty() => has_target = true,
            ("sharing", Some(s)) if !matches!(s, "shared" | "private" | "locked") => {
                return Err(format!(
                    "invalid sharing={s} in --mount={spec} (use shared, private or locked)"
                ));
            }
            _ => {}
        }
    }
    if !has_target && matches!(kind, "bind" | "cache" | "tmpfs") {
        return Err(format!("--mount={spec} needs a target: add target=/path"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_mount_spec;

    #[test]
    fn mount_specs() {
        assert!(check_mount_spec("type=cache,target=/root/.cache").is_ok());
        assert!(check_mount_spec("type=secret,id=token").is_ok());
        assert!(check_mount_spec("target=/src,from=build,ro").is_ok());
        assert!(check_mount_spec("type=cach,target=/x").is_err());
        assert!(check_mount_spec("type=cache").is_err());
        assert!(
            check_mount_spec("type=cache,targte=/x")
                .unwrap_err()
                .contains("did you mean target")
        );
    }
}
