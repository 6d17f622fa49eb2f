//! Builder flags (`--from=stage`, `--link`, `--mount=…`): which ones each
//! instruction accepts and how their values are read.

use super::suggest::closest;
use std::collections::BTreeMap;

/// How a flag takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    /// `--link` or `--link=true|false`.
    Bool,
    /// `--from=x`, at most once.
    String,
    /// `--mount=…`, any number of times.
    List,
}

/// A flag's value as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlagValue {
    Bool(bool),
    String(String),
    List(Vec<String>),
}

/// The flags given to one instruction, by name (without the dashes).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Flags(BTreeMap<&'static str, FlagValue>);

impl Flags {
    pub fn string(&self, name: &str) -> Option<&str> {
        match self.0.get(name) {
            Some(FlagValue::String(s)) => Some(s),
            _ => None,
        }
    }

    pub fn bool(&self, name: &str) -> bool {
        matches!(self.0.get(name), Some(FlagValue::Bool(true)))
    }

    /// Tri-state for flags whose absence means "decide from context".
    pub fn opt_bool(&self, name: &str) -> Option<bool> {
        match self.0.get(name) {
            Some(FlagValue::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    pub fn list(&self, name: &str) -> Vec<String> {
        match self.0.get(name) {
            Some(FlagValue::List(l)) => l.clone(),
            _ => Vec::new(),
        }
    }
}

/// Reads `--name[=value]` words against the flags `allowed` for
/// `instruction`. Errors are messages ready for the user.
pub fn parse_flags(
    instruction: &str,
    words: &[String],
    allowed: &[(&'static str, FlagKind)],
) -> Result<Flags, String> {
    let mut flags = Flags::default();
    for word in words {
        let body = word.strip_prefix("--").unwrap_or(word);
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let Some(&(name, kind)) = allowed.iter().find(|(n, _)| *n == name) else {
            let mut msg = format!("unknown flag --{name} for {instruction}");
            let names = allowed.iter().map(|(n, _)| *n);
            match closest(name, names) {
                Some(s) => msg.push_str(&format!(" (did you mean --{s}?)")),
                None if allowed.is_empty() => {
                    msg.push_str(&format!(" ({instruction} takes no flags)"))
                }
                None => {
                    let list: Vec<String> = allowed.iter().map(|(n, _)| format!("--{n}")).collect();
                    msg.push_str(&format!(" (it accepts {})", list.join(", ")));
                }
            }
            return Err(msg);
        };
        let value = match (kind, value) {
            (FlagKind::Bool, None) => FlagValue::Bool(true),
            (FlagKind::Bool, Some(v)) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "" => FlagValue::Bool(true),
                "false" | "0" => FlagValue::Bool(false),
                _ => return Err(format!("--{name} expects true or false, not {v:?}")),
            },
            (_, None) => return Err(format!("--{name} needs a value: --{name}=VALUE")),
            (FlagKind::String, Some(v)) => FlagValue::String(v.to_string()),
            (FlagKind::List, Some(v)) => {
                if let Some(FlagValue::List(list)) = flags.0.get_mut(name) {
                    list.push(v.to_string());
                    continue;
                }
                FlagValue::List(vec![v.to_string()])
            }
        };
        if flags.0.insert(name, value).is_some() {
            return Err(format!("--{name} is given twice; keep one"));
        }
    }
    Ok(flags)
}
