//! Image references: what `alpine`, `ghcr.io/org/app:1` or
//! `localhost:5000/app@sha256:…` name, validated and normalised the way the
//! Docker CLI does it (`ParseNormalizedNamed` in Docker's reference
//! package), so that a name means the same image in berth as in `docker`.
//!
//! This module owns the grammar (`grammar.rs`), the normalisation (default
//! registry `docker.io`, the `library/` namespace for official images,
//! `index.docker.io` as an alias) and the two printed forms: the full one
//! (`docker.io/library/alpine:3.19`) for storage and the wire, and the
//! familiar one (`alpine:3.19`) for people.
//!
//! ```
//! use berth_registry::reference::Reference;
//!
//! let r = Reference::parse("alpine:3.19")?;
//! assert_eq!(r.to_string(), "docker.io/library/alpine:3.19");
//! assert_eq!(r.familiar(), "alpine:3.19");
//! assert_eq!(
//!     Reference::parse("Alpine").unwrap_err().to_string(),
//!     r#"invalid reference format "Alpine": repository name must be lowercase (did you mean "alpine"?)"#
//! );
//! # Ok::<(), berth_registry::reference::ReferenceError>(())
//! ```
//!
//! The grammar, in short:
//!
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [ registry "/" ] path
//! registry   := host [ ":" port ]       host: a.b.c (any case) or [ipv6]
//! path       := component { "/" component }
//! component  := [a-z0-9]+ { ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ }
//! tag        := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
//! digest     := algorithm ":" hex       sha256: exactly 64 lowercase hex
//! ```
//!
//! The 255-character limit applies to the normalised repository path
//! (`library/…` included, registry excluded), as in Docker.
//!
//! Where berth differs from Docker, on purpose:
//!
//! - a first component that is taken as a registry (it has a `.` or `:`) but
//!   is no valid host, such as `my_registry.local/app`, is an error here.
//!   Docker accepts it as a path with no registry at all, which no pull or
//!   push can use;
//! - digests of algorithms other than sha256, sha384 and sha512 are accepted
//!   when they follow the grammar (lowercase algorithm, at least 32 hex
//!   digits). Docker refuses algorithms it has no hash function for; berth
//!   leaves that to whoever has to verify the content.

mod error;
mod grammar;

pub use error::ReferenceError;

use std::fmt;
use std::str::FromStr;

/// Registry of names that give none.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// Tag of references that give neither tag nor digest, once
/// [`Reference::with_default_tag`] is applied.
pub const DEFAULT_TAG: &str = "latest";
/// Longest repository path, counted after normalisation (`library/alpine`).
pub const MAX_REPOSITORY_LEN: usize = 255;

/// Docker Hub's old name, still written in some scripts and configs.
const LEGACY_DEFAULT_REGISTRY: &str = "index.docker.io";
/// Namespace of Docker Hub's official images.
const OFFICIAL_PREFIX: &str = "library/";

/// A validated, normalised image reference: registry, repository, and an
/// optional tag and digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Reference {
    /// Parses and normalises a reference as `docker pull` would read it.
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        parse(input, true)
    }

    /// The registry host, with its port: `docker.io`, `localhost:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path on the registry: `library/alpine`, `org/app`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, `algorithm:hex`.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// Adds the tag `latest` when the reference has neither tag nor digest,
    /// as `docker pull alpine` pulls `alpine:latest`.
    pub fn with_default_tag(mut self) -> Reference {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }

    /// The same reference with `tag` in place of its tag; a digest is kept.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        grammar::check_tag(tag).map_err(|reason| ReferenceError::InvalidTag {
            tag: tag.to_string(),
            reason,
        })?;
        Ok(Reference {
            tag: Some(tag.to_string()),
            ..self.clone()
        })
    }

    /// `registry/repository`: `docker.io/library/alpine`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The name as Docker shows it: Docker Hub's registry left out, and its
    /// `library/` too for single-component official images (`alpine`,
    /// `org/app`, `localhost:5000/app`).
    pub fn familiar_name(&self) -> String {
        if self.registry != DEFAULT_REGISTRY {
            return self.name();
        }
        match self.repository.strip_prefix(OFFICIAL_PREFIX) {
            // `library/a/b` keeps its prefix: without it, `a/b` would read as
            // the user `a`'s repository.
            Some(official) if !official.contains('/') => official.to_string(),
            _ => self.repository.clone(),
        }
    }

    /// The familiar name with the tag and digest: `alpine:3.19`.
    pub fn familiar(&self) -> String {
        let mut out = self.familiar_name();
        self.push_suffix(&mut out);
        out
    }

    fn push_suffix(&self, out: &mut String) {
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(digest);
        }
    }
}

/// The full normalised form, which parses back to the same reference:
/// `docker.io/library/alpine:latest`, `ghcr.io/org/app:1@sha256:…`.
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = self.name();
        self.push_suffix(&mut out);
        f.write_str(&out)
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Reference, ReferenceError> {
        Reference::parse(s)
    }
}

/// The parser behind [`Reference::parse`]. `suggest` is off while checking
/// a suggested fix, so that checking cannot recurse.
fn parse(input: &str, suggest: bool) -> Result<Reference, ReferenceError> {
    if input.is_empty() {
        return Err(ReferenceError::Empty);
    }
    if input.len() == 64
        && input
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(ReferenceError::ImageId {
            input: input.to_string(),
        });
    }

    let (registry, rest) = split_registry(input);
    // None of path, tag or digest can hold an `@`, and (once the registry
    // is split off) path and tag cannot hold a `:`, so the first of each
    // marks where a part starts.
    let (name_and_tag, digest) = match rest.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (rest, None),
    };
    let (path, tag) = match name_and_tag.split_once(':') {
        Some((path, tag)) => (path, Some(tag)),
        None => (name_and_tag, None),
    };

    // Checked before anything else, as Docker does, so that `Alpine` is
    // reported for its case rather than for some later rule.
    if path.chars().any(char::is_uppercase) {
        let suggestion = suggest
            .then(|| lowercase_path(input, registry, path))
            .filter(|candidate| parse(candidate, false).is_ok());
        return Err(ReferenceError::Uppercase {
            input: input.to_string(),
            suggestion,
        });
    }
    if let Some(registry) = registry {
        grammar::check_registry(registry).map_err(|reason| ReferenceError::Registry {
            input: input.to_string(),
            registry: registry.to_string(),
            reason,
        })?;
    }
    if let (Some(registry), "") = (registry, path) {
        return Err(ReferenceError::Repository {
            input: input.to_string(),
            reason: format!("no repository name after the registry {registry:?}"),
        });
    }
    grammar::check_repository(path).map_err(|reason| ReferenceError::Repository {
        input: input.to_string(),
        reason,
    })?;
    if let Some(tag) = tag {
        check_tag_in_reference(input, tag)?;
    }
    if let Some(digest) = digest {
        grammar::check_digest(digest).map_err(|reason| ReferenceError::Digest {
            input: input.to_string(),
            digest: digest.to_string(),
            reason,
        })?;
    }

    let registry = match registry {
        None | Some(LEGACY_DEFAULT_REGISTRY) => DEFAULT_REGISTRY,
        Some(registry) => registry,
    };
    let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
        format!("{OFFICIAL_PREFIX}{path}")
    } else {
        path.to_string()
    };
    if repository.len() > MAX_REPOSITORY_LEN {
        return Err(ReferenceError::TooLong {
            input: input.to_string(),
            length: repository.len(),
        });
    }
    Ok(Reference {
        registry: registry.to_string(),
        repository,
        tag: tag.map(str::to_string),
        digest: digest.map(str::to_string),
    })
}

/// Splits off the registry the way Docker decides it: the part before the
/// first `/` is a registry when it is `localhost`, has a `.` or a `:`
/// (a domain, an IP address, a port), or has uppercase letters (which a
/// repository cannot have). Anything else is the first path component of a
/// Docker Hub name.
fn split_registry(input: &str) -> (Option<&str>, &str) {
    match input.split_once('/') {
        Some((first, rest))
            if first == "localhost"
                || first.contains(['.', ':'])
                || first.chars().any(char::is_uppercase) =>
        {
            (Some(first), rest)
        }
        _ => (None, input),
    }
}

fn check_tag_in_reference(input: &str, tag: &str) -> Result<(), ReferenceError> {
    if tag.is_empty() {
        return Err(ReferenceError::EmptyTag {
            input: input.to_string(),
        });
    }
    let reason = if tag.contains(':') {
        // `app:1:2`: say what happened rather than that `:` is not allowed.
        Err("a reference has at most one tag, and this one has a second \":\"".to_string())
    } else {
        grammar::check_tag(tag)
    };
    reason.map_err(|reason| ReferenceError::Tag {
        input: input.to_string(),
        tag: tag.to_string(),
        reason,
    })
}

/// `input` with its repository path lowercased: the likely intended name.
fn lowercase_path(input: &str, registry: Option<&str>, path: &str) -> String {
    // The path starts right after `registry/`, or at the start.
    let start = registry.map_or(0, |r| r.len() + 1);
    let end = start + path.len();
    let mut out = String::with_capacity(input.len());
    out.push_str(input.get(..start).unwrap_or_default());
    out.push_str(&path.to_lowercase());
    out.push_str(input.get(end..).unwrap_or_default());
    out
}
