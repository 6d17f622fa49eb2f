//! compose's `${…}` template language: one string in, one string out.
//!
//! The rules follow compose-go's template package as its tests pin them
//! down: `$$` is a literal `$`, a `$` that starts neither a name nor a brace
//! stays as it is, and inside `${NAME<op>…}` the operator is the one right
//! after the name (names cannot contain operator characters, so this is also
//! the leftmost one). The text after an operator is itself a template, but it
//! is only expanded when its operator uses it.

use thiserror::Error;

/// Why a string could not be substituted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TemplateError {
    /// A `${` that does not start a valid substitution (`${`, `${}`,
    /// `${ foo}`, `${foo!}`, an unclosed `${foo:-x`), or templates nested
    /// deeper than berth follows. `template` is the whole string that was
    /// being substituted, so the user can find it.
    #[error("Invalid template: {template:?}")]
    Invalid { template: String },
    /// `${NAME:?reason}` with `NAME` unset or empty, or `${NAME?reason}` with
    /// `NAME` unset. `reason` is the already-substituted text after the
    /// operator, possibly empty.
    #[error(
        "required variable {variable} is missing a value{}",
        reason_suffix(reason)
    )]
    MissingRequired { variable: String, reason: String },
}

fn reason_suffix(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    }
}

/// How deep `${A:-${B:-…}}` may nest. Real files nest two or three levels;
/// the limit keeps hostile input from exhausting the stack.
const MAX_NESTING: usize = 64;

/// Substitutes every `$NAME` / `${…}` in `template`, asking `lookup` for
/// variable values (`None` = unset). Unset variables without a default
/// become empty strings, as in compose.
pub fn substitute(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, TemplateError> {
    expand(template, lookup, 0).map_err(|failure| match failure {
        Failure::Invalid => TemplateError::Invalid {
            template: template.to_string(),
        },
        Failure::MissingRequired { variable, reason } => {
            TemplateError::MissingRequired { variable, reason }
        }
    })
}

/// A [`TemplateError`] before the outermost template is known.
enum Failure {
    Invalid,
    MissingRequired { variable: String, reason: String },
}

type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

fn expand(text: &str, lookup: Lookup, depth: usize) -> Result<String, Failure> {
    if depth > MAX_NESTING {
        return Err(Failure::Invalid);
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    // Every position cut at below is an ASCII byte, so slicing stays on
    // character boundaries.
    let mut literal_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        out.push_str(&text[literal_start..i]);
        match bytes.get(i + 1) {
            Some(b'$') => {
                out.push('$');
                i += 2;
            }
            Some(b'{') => {
                let (value, end) = braced(text, i, lookup, depth)?;
                out.push_str(&value);
                i = end;
            }
            Some(&c) if is_name_start(c) => {
                let end = name_end(bytes, i + 1);
                out.push_str(&lookup(&text[i + 1..end]).unwrap_or_default());
                i = end;
            }
            _ => {
                out.push('$');
                i += 1;
            }
        }
        literal_start = i;
    }
    out.push_str(&text[literal_start..]);
    Ok(out)
}

/// Expands the `${…}` starting at `start`; returns its value and the index
/// just after its closing brace.
fn braced(
    text: &str,
    start: usize,
    lookup: Lookup,
    depth: usize,
) -> Result<(String, usize), Failure> {
    let bytes = text.as_bytes();
    let name_start = start + 2;
    if !bytes.get(name_start).is_some_and(|&c| is_name_start(c)) {
        return Err(Failure::Invalid);
    }
    let after_name = name_end(bytes, name_start);
    let name = &text[name_start..after_name];
    if bytes.get(after_name) == Some(&b'}') {
        return Ok((lookup(name).unwrap_or_default(), after_name + 1));
    }
    let (op, op_len) = Operator::at(&bytes[after_name..]).ok_or(Failure::Invalid)?;
    let content_start = after_name + op_len;
    let close = closing_brace(bytes, start).ok_or(Failure::Invalid)?;
    let value = op.apply(name, &text[content_start..close], lookup, depth)?;
    Ok((value, close + 1))
}

/// The brace that closes the `${` at `start`. Braces are balanced (every
/// `{` counts, so JSON in a default works), but only within the line: an
/// operator's text never spans a newline. When the braces on the line do
/// not balance, the last `}` on the line closes, as in compose.
fn closing_brace(bytes: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut last_close = None;
    for (i, &b) in bytes.iter().enumerate().skip(start + 1) {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(i);
                }
                last_close = Some(i);
            }
            b'\n' => break,
            _ => {}
        }
    }
    last_close
}

/// The six operators of `${NAME<op>text}`.
#[derive(Clone, Copy)]
enum Operator {
    /// `:-` default when unset or empty
    DefaultUnsetOrEmpty,
    /// `-` default when unset
    DefaultUnset,
    /// `:?` error when unset or empty
    RequiredNonEmpty,
    /// `?` error when unset
    Required,
    /// `:+` replacement when set and non-empty
    AlternativeNonEmpty,
    /// `+` replacement when set
    AlternativeSet,
}

impl Operator {
    /// The operator at the start of `bytes` and its length.
    fn at(bytes: &[u8]) -> Option<(Operator, usize)> {
        let (colon, rest) = match bytes.split_first() {
            Some((b':', rest)) => (true, rest),
            _ => (false, bytes),
        };
        let op = match (colon, rest.first()?) {
            (true, b'-') => Operator::DefaultUnsetOrEmpty,
            (false, b'-') => Operator::DefaultUnset,
            (true, b'?') => Operator::RequiredNonEmpty,
            (false, b'?') => Operator::Required,
            (true, b'+') => Operator::AlternativeNonEmpty,
            (false, b'+') => Operator::AlternativeSet,
            _ => return None,
        };
        Some((op, if colon { 2 } else { 1 }))
    }

    fn apply(
        self,
        name: &str,
        text: &str,
        lookup: Lookup,
        depth: usize,
    ) -> Result<String, Failure> {
        let value = lookup(name);
        let nested = || expand(text, lookup, depth + 1);
        match self {
            Operator::DefaultUnsetOrEmpty => match value {
                Some(v) if !v.is_empty() => Ok(v),
                _ => nested(),
            },
            Operator::DefaultUnset => match value {
                Some(v) => Ok(v),
                None => nested(),
            },
            Operator::RequiredNonEmpty | Operator::Required => {
                let accept_empty = matches!(self, Operator::Required);
                match value {
                    Some(v) if accept_empty || !v.is_empty() => Ok(v),
                    _ => Err(Failure::MissingRequired {
                        variable: name.to_string(),
                        reason: nested()?,
                    }),
                }
            }
            Operator::AlternativeNonEmpty => match value {
                Some(v) if !v.is_empty() => nested(),
                _ => Ok(String::new()),
            },
            Operator::AlternativeSet => match value {
                Some(_) => nested(),
                None => Ok(String::new()),
            },
        }
    }
}

fn is_name_start(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphabetic()
}

/// The index after the name that starts at `start`.
fn name_end(bytes: &[u8], start: usize) -> usize {
    bytes[start..]
        .iter()
        .position(|&c| c != b'_' && !c.is_ascii_alphanumeric())
        .map_or(bytes.len(), |n| start + n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "FOO" => Some("first".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn sub(template: &str) -> Result<String, TemplateError> {
        substitute(template, &env)
    }

    #[test]
    fn plain_and_escaped_dollars() {
        assert_eq!(sub("a $ b $$ c $1 $").unwrap(), "a $ b $ c $1 $");
        assert_eq!(sub("$$FOO $FOO.x ${FOO}y").unwrap(), "$FOO first.x firsty");
    }

    #[test]
    fn operators() {
        assert_eq!(sub("${EMPTY:-d}|${EMPTY-d}|${NONE-d}").unwrap(), "d||d");
        assert_eq!(sub("${EMPTY:+r}|${EMPTY+r}|${NONE+r}").unwrap(), "|r|");
        assert_eq!(sub("${EMPTY?r}").unwrap(), "");
        assert_eq!(
            sub("${EMPTY:?need ${FOO}}"),
            Err(TemplateError::MissingRequired {
                variable: "EMPTY".into(),
                reason: "need first".into()
            })
        );
    }

    #[test]
    fn unused_branches_are_not_expanded() {
        // An error in a default that is not used does not surface.
        assert_eq!(sub("${FOO:-${NONE:?boom}}").unwrap(), "first");
        assert_eq!(sub("${NONE:+${NONE:?boom}}").unwrap(), "");
    }

    #[test]
    fn invalid_templates_name_the_whole_string() {
        for t in [
            "x ${",
            "${}",
            "${ FOO}",
            "${FOO }",
            "${FOO!}",
            "${FOO:}",
            "${FOO:-x\n}",
        ] {
            assert_eq!(
                sub(t),
                Err(TemplateError::Invalid {
                    template: t.to_string()
                }),
                "{t:?}"
            );
        }
    }

    #[test]
    fn unbalanced_braces_close_at_the_last_brace_of_the_line() {
        assert_eq!(sub("${NONE:-{a}").unwrap(), "{a");
        assert_eq!(sub("${NONE:-a}}\n}").unwrap(), "a}\n}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "${A:-".repeat(10_000) + &"}".repeat(10_000);
        assert!(matches!(sub(&deep), Err(TemplateError::Invalid { .. })));
    }

    #[test]
    fn missing_required_message_omits_empty_reason() {
        assert_eq!(
            sub("${NONE?}").unwrap_err().to_string(),
            "required variable NONE is missing a value"
        );
    }

    proptest! {
        #[test]
        fn escaped_text_comes_back_unchanged(text in ".*") {
            let escaped = text.replace('$', "$$");
            prop_assert_eq!(sub(&escaped).unwrap(), text);
        }

        #[test]
        fn never_panics(text in "[${}:?+\\-a-zA-Z_ \n]{0,40}") {
            let _ = sub(&text);
        }
    }
}
