//! COPY/ADD source paths: from the text in the Dockerfile to files inside
//! the context.
//!
//! Owns lexical cleaning (Go's `path.Clean`), the "sources must be inside
//! the build context" rule, symlink resolution scoped to the context root
//! (chroot-style: a link to `/etc/passwd` or `../../x` lands on the
//! context's own `etc/passwd` or `x`, never outside), and wildcard sources.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use super::error::ContextError;
use super::glob::{Dialect, Glob};
use super::ignore::IgnoreRules;

/// Linux gives up after 40 links; containerd's scoped resolver after 255.
/// Either way a loop ends in an error, never a hang.
const MAX_SYMLINKS: usize = 255;

/// One file or directory a COPY source names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePath {
    /// The path as the source names it (wildcards expanded), relative to the
    /// context root, `/`-separated and cleaned; `.` for the root. A copy is
    /// named after this, not after where symlinks lead.
    pub rel_path: String,
    /// Where it really is after following symlinks inside the context,
    /// relative to the context root; `.` for the root.
    pub resolved_rel: String,
    /// `resolved_rel` on the host: always inside the context directory.
    pub host_path: PathBuf,
}

/// Go's `path.Clean` on `/`-separated text: no empty, `.` or inner `..`
/// elements, no trailing slash; `..` at a rooted path's start is dropped.
pub(crate) fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|last| *last != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            name => out.push(name),
        }
    }
    let body = out.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".to_string(),
        (false, false) => body,
    }
}

/// The components of a COPY source relative to the context root, or `None`
/// when a `..` climbs above it (`../x`, `a/../../x`, `/../x`). A leading `/`
/// means the context root, as in BuildKit.
fn source_components(source: &str) -> Option<Vec<&str>> {
    let mut out: Vec<&str> = Vec::new();
    for part in source.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            name => out.push(name),
        }
    }
    Some(out)
}

/// Whether a source uses wildcards, by BuildKit's rule: `*`, `?` or `[`
/// not escaped with `\`.
fn has_wildcards(text: &str) -> bool {
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

/// Resolves a COPY/ADD source inside the context, without looking at
/// `.dockerignore` (see [`resolve_source_with_rules`]).
///
/// Returns one entry for a plain path, and every match, sorted bytewise by
/// `rel_path`, for a wildcard source (`*.txt`, `dir/*`, `[ab].txt`).
pub fn resolve_source(context_dir: &Path, source: &str) -> Result<Vec<SourcePath>, ContextError> {
    Resolver {
        root: context_dir,
        src: source,
        rules: None,
    }
    .resolve()
}

/// Like [`resolve_source`], but sees the context as the builder receives it:
/// wildcards skip excluded entries, and naming an excluded path (directly or
/// through a symlink) is an error that says which ignore file excluded it.
pub fn resolve_source_with_rules(
    context_dir: &Path,
    source: &str,
    rules: &IgnoreRules,
) -> Result<Vec<SourcePath>, ContextError> {
    Resolver {
        root: context_dir,
        src: source,
        rules: Some(rules),
    }
    .resolve()
}

/// The host path of a context-relative path after scoped symlink
/// resolution, or `None` when it does not resolve to an existing entry.
pub(crate) fn scoped_host_path(context_dir: &Path, rel: &str) -> Option<PathBuf> {
    let resolver = Resolver {
        root: context_dir,
        src: rel,
        rules: None,
    };
    let start: Vec<OsString> = rel.split('/').map(OsString::from).collect();
    resolver
        .scoped(Vec::new(), start)
        .ok()
        .map(|comps| host_join(context_dir, &comps))
}

struct Resolver<'a> {
    root: &'a Path,
    src: &'a str,
    rules: Option<&'a IgnoreRules>,
}

impl Resolver<'_> {
    fn resolve(&self) -> Result<Vec<SourcePath>, ContextError> {
        let comps = source_components(self.src).ok_or_else(|| ContextError::OutsideContext {
            src: self.src.to_string(),
        })?;
        if !has_wildcards(self.src) {
            let start: Vec<OsString> = comps.iter().map(OsString::from).collect();
            let resolved = self.scoped(Vec::new(), start)?;
            return Ok(vec![self.finish(rel_string(&comps), resolved)?]);
        }

        // BuildKit splits at the first wildcard component: the part before
        // it is a plain path (symlinks followed, within the context), the
        // rest is matched by walking real directories below it.
        let first_wild = comps.iter().position(|c| has_wildcards(c)).unwrap_or(0);
        let (prefix, rest) = comps.split_at(first_wild);
        let start: Vec<OsString> = prefix.iter().map(OsString::from).collect();
        let base = self.scoped(Vec::new(), start)?;
        let base_host = host_join(self.root, &base);
        if !base_host.is_dir() {
            return Err(ContextError::NotADirectory {
                src: self.src.to_string(),
                rel_path: rel_string(prefix),
            });
        }
        let mut globs = Vec::with_capacity(rest.len());
        for part in rest {
            let glob = Glob::compile(part, Dialect::FilepathMatch).map_err(|reason| {
                ContextError::InvalidSourcePattern {
                    src: self.src.to_string(),
                    reason,
                }
            })?;
            globs.push(glob);
        }
        let mut found = Vec::new();
        let lexical: Vec<String> = prefix.iter().map(|s| s.to_string()).collect();
        self.expand(&base, &lexical, &globs, &mut found)?;
        if found.is_empty() {
            return Err(ContextError::NoMatch {
                src: self.src.to_string(),
            });
        }
        found.sort_by(|a, b| a.rel_path.as_bytes().cmp(b.rel_path.as_bytes()));
        Ok(found)
    }

    /// Matches `globs` one component at a time below `dir` (resolved,
    /// relative to the root). Only real directories are descended into, as
    /// BuildKit's walk does; each final match is then resolved like a plain
    /// source, so a matched symlink is followed within the context.
    fn expand(
        &self,
        dir: &[OsString],
        lexical: &[String],
        globs: &[Glob],
        found: &mut Vec<SourcePath>,
    ) -> Result<(), ContextError> {
        let Some((glob, tail)) = globs.split_first() else {
            return Ok(());
        };
        let dir_host = host_join(self.root, dir);
        let io_err = |source| ContextError::SourceIo {
            src: self.src.to_string(),
            rel_path: display_rel(dir),
            source,
        };
        let mut names: Vec<OsString> = Vec::new();
        for entry in fs::read_dir(&dir_host).map_err(io_err)? {
            names.push(entry.map_err(io_err)?.file_name());
        }
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            if !glob.matches(&name.to_string_lossy()) {
                continue;
            }
            let mut at = dir.to_vec();
            at.push(name.clone());
            let Some(text) = name.to_str() else {
                return Err(ContextError::NonUtf8Name {
                    path: host_join(Path::new(""), &at),
                });
            };
            let mut lex = lexical.to_vec();
            lex.push(text.to_string());
            let meta = match fs::symlink_metadata(host_join(self.root, &at)) {
                Ok(meta) => meta,
                // Gone since the listing: as if it never matched.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(ContextError::SourceIo {
                        src: self.src.to_string(),
                        rel_path: display_rel(&at),
                        source,
                    });
                }
            };
            let at_rel = display_rel(&at);
            if tail.is_empty() {
                if self.rules.is_some_and(|r| r.hides(&at_rel, meta.is_dir())) {
                    continue;
                }
                let resolved = self.scoped(Vec::new(), at.clone())?;
                found.push(self.finish(lex.join("/"), resolved)?);
            } else if meta.is_dir() {
                let pruned = self
                    .rules
                    .is_some_and(|r| r.is_excluded(&at_rel, true) && !r.may_include_below(&at_rel));
                if !pruned {
                    self.expand(&at, &lex, tail, found)?;
                }
            }
        }
        Ok(())
    }

    /// Resolves `pending` components on top of the already-resolved `cur`,
    /// following every symlink (the last one too) but never leaving the
    /// root: an absolute target restarts at the root, and `..` stops there.
    fn scoped(
        &self,
        mut cur: Vec<OsString>,
        pending: Vec<OsString>,
    ) -> Result<Vec<OsString>, ContextError> {
        // Reversed so that pop() takes the next component.
        let mut pending: Vec<OsString> = pending.into_iter().rev().collect();
        let mut links = 0;
        while let Some(part) = pending.pop() {
            if part.is_empty() || part == "." {
                continue;
            }
            if part == ".." {
                cur.pop();
                continue;
            }
            cur.push(part);
            let host = host_join(self.root, &cur);
            let meta = match fs::symlink_metadata(&host) {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(ContextError::SourceNotFound {
                        src: self.src.to_string(),
                        missing: display_rel(&cur),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
                    // A parent was a file after all.
                    cur.pop();
                    return Err(self.not_a_dir(&cur));
                }
                Err(source) => {
                    return Err(ContextError::SourceIo {
                        src: self.src.to_string(),
                        rel_path: display_rel(&cur),
                        source,
                    });
                }
            };
            if meta.file_type().is_symlink() {
                // A symlink excluded by .dockerignore is not in the context,
                // so it cannot lead anywhere.
                self.check_excluded(&cur, false)?;
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(ContextError::SymlinkLoop {
                        src: self.src.to_string(),
                        rel_path: display_rel(&cur),
                    });
                }
                let target = fs::read_link(&host).map_err(|source| ContextError::SourceIo {
                    src: self.src.to_string(),
                    rel_path: display_rel(&cur),
                    source,
                })?;
                cur.pop();
                for comp in Path::new(&target).components().rev() {
                    match comp {
                        Component::RootDir | Component::Prefix(_) => {}
                        Component::CurDir => {}
                        Component::ParentDir => pending.push(OsString::from("..")),
                        Component::Normal(name) => pending.push(name.to_owned()),
                    }
                }
                if target.is_absolute() {
                    // The context root stands in for `/`.
                    cur.clear();
                }
            } else if !pending.iter().all(|p| p.is_empty() || p == ".") && !meta.is_dir() {
                return Err(self.not_a_dir(&cur));
            }
        }
        Ok(cur)
    }

    fn not_a_dir(&self, cur: &[OsString]) -> ContextError {
        ContextError::NotADirectory {
            src: self.src.to_string(),
            rel_path: display_rel(cur),
        }
    }

    fn check_excluded(&self, rel: &[OsString], is_dir: bool) -> Result<(), ContextError> {
        let Some(rules) = self.rules else {
            return Ok(());
        };
        let rel_path = display_rel(rel);
        if rules.hides(&rel_path, is_dir) {
            return Err(ContextError::Excluded {
                src: self.src.to_string(),
                rel_path,
                ignore_file: rules.file().unwrap_or(".dockerignore").to_string(),
            });
        }
        Ok(())
    }

    fn finish(
        &self,
        rel_path: String,
        resolved: Vec<OsString>,
    ) -> Result<SourcePath, ContextError> {
        let host_path = host_join(self.root, &resolved);
        let Some(resolved_rel) = utf8_rel(&resolved) else {
            return Err(ContextError::NonUtf8Name {
                path: host_join(Path::new(""), &resolved),
            });
        };
        let is_dir = host_path.is_dir();
        self.check_excluded(&resolved, is_dir)?;
        let rel_path = if rel_path.is_empty() {
            ".".to_string()
        } else {
            rel_path
        };
        if let Some(rules) = self.rules {
            // The name as written must be in the context too (a directory
            // symlink is followed, but an excluded name is still excluded).
            if rel_path != "." && rules.hides(&rel_path, is_dir) {
                return Err(ContextError::Excluded {
                    src: self.src.to_string(),
                    rel_path,
                    ignore_file: rules.file().unwrap_or(".dockerignore").to_string(),
                });
            }
        }
        Ok(SourcePath {
            rel_path,
            resolved_rel,
            host_path,
        })
    }
}

fn host_join(root: &Path, rel: &[OsString]) -> PathBuf {
    let mut path = root.to_path_buf();
    for part in rel {
        path.push(part);
    }
    path
}

fn rel_string(comps: &[&str]) -> String {
    comps.join("/")
}

/// A resolved path as text, `.` for the root.
fn utf8_rel(comps: &[OsString]) -> Option<String> {
    if comps.is_empty() {
        return Some(".".to_string());
    }
    let parts: Option<Vec<&str>> = comps.iter().map(|c| c.to_str()).collect();
    parts.map(|p| p.join("/"))
}

/// For messages and ignore matching: lossy where a name is not UTF-8.
fn display_rel(comps: &[OsString]) -> String {
    if comps.is_empty() {
        return ".".to_string();
    }
    comps
        .iter()
        .map(|c| OsStr::to_string_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_like_go() {
        let cases = [
            ("", "."),
            (".", "."),
            ("a/", "a"),
            ("a//b", "a/b"),
            ("./a/./b/", "a/b"),
            ("a/../b", "b"),
            ("a/../..", ".."),
            ("../../a", "../../a"),
            ("/../a", "/a"),
            ("/", "/"),
            ("/..", "/"),
            ("a/b/../../../c", "../c"),
        ];
        for (input, want) in cases {
            assert_eq!(clean(input), want, "clean({input:?})");
        }
    }

    #[test]
    fn escapes_are_caught_lexically() {
        for bad in ["..", "../x", "a/../../x", "/../x", "./../x", "a/b/../../.."] {
            assert!(source_components(bad).is_none(), "{bad}");
        }
        assert_eq!(source_components("/a/./b/../c"), Some(vec!["a", "c"]));
        assert_eq!(source_components("."), Some(vec![]));
    }

    #[test]
    fn wildcard_detection_respects_escapes() {
        assert!(has_wildcards("*.txt"));
        assert!(has_wildcards("a/[bc]"));
        assert!(!has_wildcards("a\\*b"));
        assert!(!has_wildcards("plain/name"));
    }
}
