//! Relative paths in a file, made absolute against the file's base
//! directory (the project directory for `-f` files, the file's own
//! directory for `extends` sources, `project_directory` for includes).

use std::path::{Component, Path, PathBuf};

use crate::project::environment::Environment;
use crate::yaml::{Node, Value};

/// Resolves every path-valued key of a normalised document in place.
pub fn resolve(doc: &mut Node, base: &Path, env: &Environment) {
    let home = env.get("HOME").cloned();
    let fix = |node: &mut Node| resolve_node(node, base, home.as_deref());
    if let Some(services) = doc.get_mut("services").and_then(Node::as_map_mut) {
        for service in services.values_mut() {
            resolve_service(service, base, home.as_deref());
        }
    }
    for kind in ["configs", "secrets"] {
        if let Some(resources) = doc.get_mut(kind).and_then(Node::as_map_mut) {
            for resource in resources.values_mut() {
                if let Some(file) = resource.get_mut("file") {
                    fix(file);
                }
            }
        }
    }
    if let Some(includes) = doc.get_mut("include").and_then(Node::as_seq_mut) {
        for include in includes.iter_mut() {
            match &mut include.value {
                Value::String(_) => fix(include),
                Value::Map(_) => {
                    for key in ["path", "env_file", "project_directory"] {
                        if let Some(value) = include.get_mut(key) {
                            for_each_string(value, &fix);
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

fn resolve_service(service: &mut Node, base: &Path, home: Option<&str>) {
    let fix = |node: &mut Node| resolve_node(node, base, home);
    if let Some(build) = service.get_mut("build") {
        // A build without a context builds the base directory (compose's
        // default of ".").
        if let Some(map) = build.as_map_mut().filter(|m| !m.contains_key("context")) {
            map.insert("context".into(), Node::string(base.to_string_lossy()));
        }
        if let Some(context) = build.get_mut("context")
            && context.as_str().is_some_and(|c| !is_remote_context(c))
        {
            fix(context);
        }
        if let Some(contexts) = build
            .get_mut("additional_contexts")
            .and_then(Node::as_map_mut)
        {
            for context in contexts.values_mut() {
                if context
                    .as_str()
                    .is_some_and(|c| !is_remote_context(c) && !c.contains(':'))
                {
                    fix(context);
                }
            }
        }
    }
    if let Some(env_files) = service.get_mut("env_file").and_then(Node::as_seq_mut) {
        for entry in env_files {
            match entry.get_mut("path") {
                Some(path) => fix(path),
                None => fix(entry),
            }
        }
    }
    if let Some(label_files) = service.get_mut("label_file") {
        for_each_string(label_files, &fix);
    }
    if let Some(extends_file) = service.get_mut("extends").and_then(|e| e.get_mut("file")) {
        fix(extends_file);
    }
    if let Some(volumes) = service.get_mut("volumes").and_then(Node::as_seq_mut) {
        for volume in volumes {
            if volume.get("type").and_then(Node::as_str) == Some("bind")
                && let Some(source) = volume.get_mut("source")
            {
                fix(source);
            }
        }
    }
    if let Some(watch) = service
        .get_mut("develop")
        .and_then(|d| d.get_mut("watch"))
        .and_then(Node::as_seq_mut)
    {
        for rule in watch {
            if let Some(path) = rule.get_mut("path") {
                fix(path);
            }
        }
    }
}

fn for_each_string(node: &mut Node, fix: &dyn Fn(&mut Node)) {
    match &mut node.value {
        Value::String(_) => fix(node),
        Value::Seq(items) => items.iter_mut().for_each(|item| {
            if item.as_str().is_some() {
                fix(item)
            }
        }),
        _ => {}
    }
}

fn resolve_node(node: &mut Node, base: &Path, home: Option<&str>) {
    if let Value::String(text) = &mut node.value {
        *text = absolute(text, base, home).to_string_lossy().into_owned();
    }
}

/// `text` made absolute: `~` is the user's home, relative paths join `base`.
pub fn absolute(text: &str, base: &Path, home: Option<&str>) -> PathBuf {
    let expanded = match (text.strip_prefix('~'), home) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
            PathBuf::from(format!("{home}{rest}"))
        }
        _ => PathBuf::from(text),
    };
    clean(&base.join(expanded))
}

/// Build contexts that are not directories: URLs and git references are
/// passed to the builder as written.
fn is_remote_context(context: &str) -> bool {
    context.contains("://") || context.starts_with("git@") || context.starts_with("github.com/")
}

/// `a/./b/../c` → `a/c`, without touching the filesystem, so that symlinks
/// keep the meaning the user wrote.
pub fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_paths() {
        let base = Path::new("/p/app");
        assert_eq!(absolute("./data", base, None), PathBuf::from("/p/app/data"));
        assert_eq!(absolute("../x/./y", base, None), PathBuf::from("/p/x/y"));
        assert_eq!(absolute("/abs", base, None), PathBuf::from("/abs"));
        assert_eq!(
            absolute("~/d", base, Some("/home/u")),
            PathBuf::from("/home/u/d")
        );
        assert_eq!(
            absolute("~user/d", base, Some("/home/u")),
            PathBuf::from("/p/app/~user/d")
        );
        assert_eq!(absolute(".", base, None), PathBuf::from("/p/app"));
    }
}
