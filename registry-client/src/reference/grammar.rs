//! The character-level rules for each part of a reference: registry host,
//! repository path, tag and digest. Each check returns why a part is wrong,
//! in words a user can act on; `mod.rs` decides which part is which and
//! wraps the reason in a [`super::ReferenceError`].
//!
//! The rules are Docker's reference grammar. A hand-written scanner rather
//! than one big regular expression lets every rejection say which rule broke.

/// Longest tag Docker accepts: one leading character and 127 more.
pub(crate) const MAX_TAG_LEN: usize = 128;

/// Fewest hex digits in a digest of an algorithm we have no length for: the
/// grammar asks for at least 128 bits.
const MIN_DIGEST_HEX: usize = 32;

/// Checks a registry: `host[:port]`, where the host is a dot-separated host
/// name (any case) or an IPv6 address in brackets.
pub(crate) fn check_registry(registry: &str) -> Result<(), String> {
    let port = if let Some(rest) = registry.strip_prefix('[') {
        let Some((address, after)) = rest.split_once(']') else {
            return Err("an IPv6 address opened with \"[\" has no closing \"]\"".into());
        };
        if address.is_empty() {
            return Err("the brackets hold no IPv6 address".into());
        }
        // Zone IDs and IPv4-mapped forms are left out on purpose, as Docker
        // does: only hex groups and colons.
        if let Some(c) = address
            .chars()
            .find(|c| !(c.is_ascii_hexdigit() || *c == ':'))
        {
            return Err(format!(
                "{c:?} cannot appear in a bracketed IPv6 address (hex digits and \":\" only)"
            ));
        }
        match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => {
                    return Err(format!(
                        "unexpected {after:?} after the IPv6 address; write [ADDRESS]:PORT"
                    ));
                }
            },
        }
    } else {
        let (host, port) = match registry.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (registry, None),
        };
        check_host_name(host)?;
        port
    };
    match port {
        Some("") => Err("the port after \":\" is empty".into()),
        Some(port) if !port.bytes().all(|b| b.is_ascii_digit()) => {
            Err(format!("port {port:?} is not a number"))
        }
        _ => Ok(()),
    }
}

/// A host name: labels of letters, digits and inner dashes, joined by dots.
/// Underscores are refused, as DNS host names refuse them.
fn check_host_name(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("the host name is empty".into());
    }
    for label in host.split('.') {
        if label.is_empty() {
            return Err(format!(
                "host name {host:?} has an empty label (a leading, trailing or doubled \".\")"
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(format!(
                "{c:?} cannot appear in a host name (letters, digits, \"-\" and \".\" only)"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "host name label {label:?} starts or ends with \"-\""
            ));
        }
    }
    Ok(())
}

/// Checks a repository path as the user wrote it (before any `library/`
/// is added): `/`-separated components, none empty.
pub(crate) fn check_repository(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("the repository name is empty".into());
    }
    if path.starts_with('/') {
        return Err("the repository name starts with \"/\"".into());
    }
    if path.ends_with('/') {
        return Err(format!(
            "the repository name {path:?} ends with \"/\"; remove it"
        ));
    }
    if path.contains("//") {
        return Err(format!(
            "the repository name {path:?} has an empty component (\"//\")"
        ));
    }
    path.split('/').try_for_each(check_component)
}

/// One path component: runs of lowercase letters and digits, joined by a
/// single separator: `.`, `_`, `__`, or any number of dashes.
fn check_component(component: &str) -> Result<(), String> {
    if let Some(c) = component
        .chars()
        .find(|c| !(is_alnum(*c) || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "{c:?} cannot appear in a repository name (lowercase letters, digits and the separators \".\", \"_\", \"__\", \"-\" only)"
        ));
    }
    // Only ASCII is left from here on, so byte indexes are char indexes.
    let bytes = component.as_bytes();
    if !bytes.first().is_some_and(|b| is_alnum(char::from(*b))) {
        return Err(format!(
            "repository name component {component:?} must start with a lowercase letter or digit"
        ));
    }
    if !bytes.last().is_some_and(|b| is_alnum(char::from(*b))) {
        return Err(format!(
            "repository name component {component:?} must end with a lowercase letter or digit"
        ));
    }
    let mut i = 0;
    while i < bytes.len() {
        if is_alnum(char::from(bytes[i])) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !is_alnum(char::from(bytes[i])) {
            i += 1;
        }
        let run = &component[start..i];
        let separator = matches!(run, "." | "_" | "__") || run.bytes().all(|b| b == b'-');
        if !separator {
            return Err(format!(
                "{run:?} in {component:?} is not a separator: use one \".\", one or two \"_\", or dashes"
            ));
        }
    }
    Ok(())
}

fn is_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// Checks a tag: a letter, digit or `_`, then up to 127 of those or `.`/`-`.
pub(crate) fn check_tag(tag: &str) -> Result<(), String> {
    if tag.is_empty() {
        return Err("the tag is empty".into());
    }
    if let Some(c) = tag
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "{c:?} cannot appear in a tag (letters, digits, \"_\", \".\" and \"-\" only)"
        ));
    }
    if tag.starts_with(['.', '-']) {
        return Err("a tag must start with a letter, digit or \"_\"".into());
    }
    if tag.len() > MAX_TAG_LEN {
        return Err(format!(
            "a tag has at most {MAX_TAG_LEN} characters, this one has {}",
            tag.len()
        ));
    }
    Ok(())
}

/// Checks a digest `algorithm:hex`. The algorithms whose length we know are
/// held to it and to lowercase hex, as a registry would; any other algorithm
/// only has to follow the grammar.
pub(crate) fn check_digest(digest: &str) -> Result<(), String> {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err("a digest is ALGORITHM:HEX, e.g. sha256: and 64 hex digits".into());
    };
    check_algorithm(algorithm)?;
    if let Some(c) = hex.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!("{c:?} is not a hex digit"));
    }
    match known_hex_len(algorithm) {
        Some(expected) => {
            if hex.len() != expected {
                return Err(format!(
                    "a {algorithm} digest has {expected} hex digits, this one has {}",
                    hex.len()
                ));
            }
            if hex.bytes().any(|b| b.is_ascii_uppercase()) {
                return Err(format!("a {algorithm} digest is written in lowercase hex"));
            }
        }
        None if hex.len() < MIN_DIGEST_HEX => {
            return Err(format!(
                "a digest has at least {MIN_DIGEST_HEX} hex digits, this one has {}",
                hex.len()
            ));
        }
        None => {}
    }
    Ok(())
}

/// An algorithm name: components of a lowercase letter then lowercase
/// letters or digits, joined by one of `+ . _ -`. Docker's grammar would
/// take uppercase here, but its digest parser then refuses it, and so does
/// the OCI descriptor format: lowercase is what actually works.
fn check_algorithm(algorithm: &str) -> Result<(), String> {
    if algorithm.is_empty() {
        return Err("the digest algorithm before \":\" is empty".into());
    }
    let valid = algorithm.split(['+', '.', '_', '-']).all(|part| {
        let mut chars = part.chars();
        chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    });
    if valid {
        Ok(())
    } else {
        Err(format!(
            "digest algorithm {algorithm:?} is not valid (lowercase letters and digits starting with a letter, e.g. sha256)"
        ))
    }
}

/// Hex length of the digests of the algorithms the OCI image spec registers.
fn known_hex_len(algorithm: &str) -> Option<usize> {
    match algorithm {
        "sha256" => Some(64),
        "sha384" => Some(96),
        "sha512" => Some(128),
        _ => None,
    }
}
