//! Where variable values come from: the [`VarLookup`] trait and its
//! implementations for maps and for `KEY=VALUE` lists.
//!
//! Names are compared exactly (case-sensitive), as BuildKit does on Linux.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

/// A source of variable values for the lexer.
///
/// `None` means "unset", which differs from `Some("")` for the `${V-w}`,
/// `${V+w}` and `${V?w}` forms.
pub trait VarLookup {
    /// The value of `name`, or `None` when it is not set.
    fn lookup(&self, name: &str) -> Option<&str>;
}

impl<S: BuildHasher> VarLookup for HashMap<String, String, S> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl VarLookup for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// An environment in the `KEY=VALUE` list form that images and build
/// arguments use.
///
/// The key ends at the first `=`; an entry without `=` sets the key to the
/// empty string; when a key appears more than once, the last entry wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvList(pub Vec<String>);

impl EnvList {
    /// Splits one entry into key and value following the rules above.
    fn split(entry: &str) -> (&str, &str) {
        entry.split_once('=').unwrap_or((entry, ""))
    }
}

impl VarLookup for EnvList {
    fn lookup(&self, name: &str) -> Option<&str> {
        // Scanning from the end makes the last entry for a key win.
        self.0.iter().rev().find_map(|entry| {
            let (key, value) = Self::split(entry);
            (key == name).then_some(value)
        })
    }
}

impl<T: VarLookup + ?Sized> VarLookup for &T {
    fn lookup(&self, name: &str) -> Option<&str> {
        (**self).lookup(name)
    }
}

#[cfg(test)]
mod tests {
    use super::{EnvList, VarLookup};

    #[test]
    fn env_list_rules() {
        let env = EnvList(vec![
            "A=1".into(),
            "B".into(),
            "C=x=y".into(),
            "A=2".into(),
            "=empty-key".into(),
        ]);
        assert_eq!(env.lookup("A"), Some("2"));
        assert_eq!(env.lookup("B"), Some(""));
        assert_eq!(env.lookup("C"), Some("x=y"));
        assert_eq!(env.lookup(""), Some("empty-key"));
        assert_eq!(env.lookup("a"), None);
    }
}
