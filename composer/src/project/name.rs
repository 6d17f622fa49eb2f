//! Project names: compose's rules for names the user gives and for names
//! derived from a directory.

use crate::error::LoadError;

/// Checks a name the user gave (`-p`, `COMPOSE_PROJECT_NAME`, `name:`).
/// Compose refuses rather than rewrites these, so a typo does not silently
/// address another project.
pub fn validate(name: &str) -> Result<(), LoadError> {
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    let valid_start = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if name.is_empty() {
        return Err(LoadError::project("project name must not be empty"));
    }
    if !valid_chars || !valid_start {
        return Err(LoadError::project(format!(
            "invalid project name \"{name}\": use only lowercase letters, digits, '_' and '-', starting with a letter or digit (e.g. \"{}\")",
            normalize(name)
        )));
    }
    Ok(())
}

/// Turns a directory name into a project name: lowercase, only
/// `[a-z0-9_-]`, no leading `_` or `-`.
pub fn normalize(raw: &str) -> String {
    let kept: String = raw
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    kept.trim_start_matches(['_', '-']).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_names_must_already_be_valid() {
        for ok in ["app", "42my_project_num", "my-app_2"] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
        for bad in ["-app", "_app", "my.app", "MyApp", "", "a b"] {
            assert!(validate(bad).is_err(), "{bad}");
        }
        let err = validate("My.App").unwrap_err().to_string();
        assert!(err.contains("invalid project name \"My.App\""), "{err}");
        assert!(err.contains("\"myapp\""), "{err}");
    }

    #[test]
    fn derived_names_are_normalised() {
        assert_eq!(normalize("UNNORMALIZED PATH"), "unnormalizedpath");
        assert_eq!(normalize("__My.Project-1"), "myproject-1");
        assert_eq!(normalize("simple"), "simple");
    }
}
