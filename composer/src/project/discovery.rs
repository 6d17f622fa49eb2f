//! Finding compose files when `-f` and `COMPOSE_FILE` name none: the
//! current directory, then each parent, like Docker Compose.

use std::path::{Path, PathBuf};

/// The names compose looks for, in order of preference.
pub const DEFAULT_FILES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

const OVERRIDE_FILES: [&str; 4] = [
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yaml",
    "docker-compose.override.yml",
];

/// The first directory from `start` upwards holding a compose file: that
/// file, plus the override file beside it when there is one.
pub fn find_default_files(start: &Path) -> Option<Vec<PathBuf>> {
    for dir in start.ancestors() {
        let Some(main) = DEFAULT_FILES
            .iter()
            .map(|name| dir.join(name))
            .find(|p| p.is_file())
        else {
            continue;
        };
        let mut files = vec![main];
        if let Some(over) = OVERRIDE_FILES
            .iter()
            .map(|name| dir.join(name))
            .find(|p| p.is_file())
        {
            files.push(over);
        }
        return Some(files);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searches_parents_and_takes_the_override() {
        let root = tempfile::tempdir().expect("tempdir");
        let deep = root.path().join("a/b");
        std::fs::create_dir_all(&deep).expect("mkdir");
        std::fs::write(root.path().join("docker-compose.yml"), "services: {}\n").expect("write");
        std::fs::write(root.path().join("compose.yaml"), "services: {}\n").expect("write");
        std::fs::write(root.path().join("compose.override.yml"), "services: {}\n").expect("write");
        let found = find_default_files(&deep).expect("found");
        assert_eq!(
            found,
            vec![
                root.path().join("compose.yaml"),
                root.path().join("compose.override.yml")
            ]
        );
    }
}
