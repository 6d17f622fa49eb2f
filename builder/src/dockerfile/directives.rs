//! Parser directives: the `# syntax=`, `# escape=` and `# check=` comments
//! that may open a Dockerfile.
//!
//! Directives are only honoured in the unbroken block of comment lines at the
//! very top; the first line that is not a recognised directive (an ordinary
//! comment, a blank line, an instruction) closes the block for good.

/// One recognised directive, with the line it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// Lower-cased name: `syntax`, `escape` or `check`.
    pub name: String,
    pub value: String,
    pub line: usize,
}

/// The names BuildKit recognises; any other `# name=value` ends the block.
const KNOWN: [&str; 3] = ["syntax", "escape", "check"];

/// Tracks whether the directive block is still open and what it held.
#[derive(Debug, Default)]
pub(crate) struct DirectiveParser {
    done: bool,
    pub(crate) found: Vec<Directive>,
}

impl DirectiveParser {
    /// Looks at one physical line (already stripped of its line ending and,
    /// for instruction starts, of leading whitespace). Returns the directive
    /// when the line is one, or an error message for a repeated directive.
    pub(crate) fn feed(
        &mut self,
        line: &str,
        line_no: usize,
    ) -> Result<Option<&Directive>, String> {
        if self.done {
            return Ok(None);
        }
        let Some((name, value)) = split_directive(line) else {
            self.done = true;
            return Ok(None);
        };
        let name = name.to_ascii_lowercase();
        if !KNOWN.contains(&name.as_str()) {
            self.done = true;
            return Ok(None);
        }
        if self.found.iter().any(|d| d.name == name) {
            return Err(format!("only one {name} parser directive can be used"));
        }
        self.found.push(Directive {
            name,
            value: value.to_string(),
            line: line_no,
        });
        Ok(self.found.last())
    }
}

/// Matches `#\s*NAME\s*=\s*VALUE\s*` where NAME is a letter followed by
/// letters and digits and VALUE is not empty.
fn split_directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let name_len = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(rest.len(), |(i, _)| i);
    if name_len == 0 {
        return None;
    }
    let (name, after) = rest.split_at(name_len);
    let value = after.trim_start().strip_prefix('=')?.trim();
    if value.is_empty() {
        return None;
    }
    Some((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_directive_syntax() {
        assert_eq!(split_directive("# escape=`"), Some(("escape", "`")));
        assert_eq!(
            split_directive("#syntax = docker/dockerfile:1 "),
            Some(("syntax", "docker/dockerfile:1"))
        );
        assert_eq!(split_directive("# Comment here. x=1"), None);
        assert_eq!(split_directive("# 1x=2"), None);
        assert_eq!(split_directive("# escape="), None);
    }

    #[test]
    fn block_closes_on_first_other_line() {
        let mut p = DirectiveParser::default();
        assert!(p.feed("# escape=`", 1).unwrap().is_some());
        assert!(p.feed("# other comment", 2).unwrap().is_none());
        assert!(p.feed("# syntax=foo", 3).unwrap().is_none());
    }

    #[test]
    fn repeated_directive_is_an_error() {
        let mut p = DirectiveParser::default();
        p.feed("# escape=`", 1).unwrap();
        assert!(p.feed("# ESCAPE=\\", 2).is_err());
    }
}
