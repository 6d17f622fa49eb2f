//! The pattern-based modifiers: `${V#p}` `${V##p}` (remove a prefix),
//! `${V%p}` `${V%%p}` (remove a suffix), `${V/p/r}` and `${V//p/r}`
//! (replace the first / every match).
//!
//! Upstream quirks kept on purpose, because they decide the output:
//! - Suffix removal runs as prefix removal on the reversed value with the
//!   reversed pattern, so "shortest suffix" means "lazy match from the end".
//! - Replacement patterns always use greedy `*`.
//! - `//` hands the replacement to Go's `Regexp.ReplaceAllString`, which
//!   treats `$` specially: `$0`/`${0}` is the matched text, `$$` is `$`,
//!   other references (`$1`, `$name`, `${x}`) are empty, and a `$` that
//!   starts no reference stays. A single `/` inserts the replacement as is.

use super::error::Fault;
use super::pattern::{Pattern, reverse_pattern};
use super::unicode::{is_digit, is_letter};

fn parse(pattern: &str, greedy: bool) -> Result<Pattern, Fault> {
    Pattern::parse(pattern, greedy).map_err(|reason| Fault::InvalidPattern {
        pattern: pattern.to_owned(),
        reason,
    })
}

fn collect(chars: &[char]) -> String {
    chars.iter().collect()
}

/// `${V#pattern}` (lazy) and `${V##pattern}` (greedy).
pub(crate) fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, Fault> {
    let pattern = parse(pattern, greedy)?;
    let text: Vec<char> = value.chars().collect();
    Ok(match pattern.match_prefix(&text) {
        Some(end) => collect(text.get(end..).unwrap_or_default()),
        None => value.to_owned(),
    })
}

/// `${V%pattern}` (lazy) and `${V%%pattern}` (greedy).
pub(crate) fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String, Fault> {
    let reversed = parse(&reverse_pattern(pattern), greedy).map_err(|fault| match fault {
        // Report the pattern the user wrote, not its reversal.
        Fault::InvalidPattern { reason, .. } => Fault::InvalidPattern {
            pattern: pattern.to_owned(),
            reason,
        },
        other => other,
    })?;
    let text: Vec<char> = value.chars().rev().collect();
    Ok(match reversed.match_prefix(&text) {
        Some(end) => text.get(end..).unwrap_or_default().iter().rev().collect(),
        None => value.to_owned(),
    })
}

/// `${V/pattern/replacement}` and, with `all`, `${V//pattern/replacement}`.
pub(crate) fn replace(
    pattern: &str,
    replacement: &str,
    value: &str,
    all: bool,
) -> Result<String, Fault> {
    let pattern = parse(pattern, true)?;
    let text: Vec<char> = value.chars().collect();
    let ends = pattern.match_ends(&text);
    // Leftmost match starting at or after `from`.
    let find = |from: usize| -> Option<(usize, usize)> {
        ends.get(from..)?
            .iter()
            .enumerate()
            .find_map(|(offset, end)| end.map(|end| (from + offset, end)))
    };
    let slice = |from: usize, to: usize| collect(text.get(from..to).unwrap_or_default());

    if !all {
        return Ok(match find(0) {
            Some((start, end)) => {
                let mut out = slice(0, start);
                out.push_str(replacement);
                out.push_str(&slice(end, text.len()));
                out
            }
            None => value.to_owned(),
        });
    }

    // Go's ReplaceAll loop: after a match, search again one character
    // further on (or at the match end), and skip an empty match that
    // touches the previous match.
    let mut out = String::new();
    let mut last_end = 0;
    let mut search = 0;
    while search <= text.len() {
        let Some((start, end)) = find(search) else {
            break;
        };
        out.push_str(&slice(last_end, start));
        if end > last_end || start == 0 {
            expand_template(replacement, &slice(start, end), &mut out);
        }
        last_end = end;
        search = if end <= search { search + 1 } else { end };
    }
    out.push_str(&slice(last_end, text.len()));
    Ok(out)
}

/// Appends `template` to `out`, with `$` references resolved the way Go's
/// `Regexp.Expand` resolves them for a pattern without groups.
fn expand_template(template: &str, matched: &str, out: &mut String) {
    let mut rest = template;
    while let Some((before, after)) = rest.split_once('$') {
        out.push_str(before);
        rest = after;
        if let Some(after_dollar) = rest.strip_prefix('$') {
            out.push('$');
            rest = after_dollar;
            continue;
        }
        match reference(rest) {
            Some((is_whole_match, after_ref)) => {
                if is_whole_match {
                    out.push_str(matched);
                }
                rest = after_ref;
            }
            // Not a reference: the `$` is plain text.
            None => out.push('$'),
        }
    }
    out.push_str(rest);
}

/// Parses `name` or `{name}` after a `$`. Returns whether it names group 0
/// (the whole match) and the text after it.
fn reference(text: &str) -> Option<(bool, &str)> {
    let (braced, body) = match text.strip_prefix('{') {
        Some(body) => (true, body),
        None => (false, text),
    };
    let name_len = body
        .char_indices()
        .find(|&(_, c)| !(is_letter(c) || is_digit(c) || c == '_'))
        .map_or(body.len(), |(index, _)| index);
    if name_len == 0 {
        return None;
    }
    let (name, mut after) = body.split_at_checked(name_len)?;
    if braced {
        after = after.strip_prefix('}')?;
    }
    Some((group_number(name) == Some(0), after))
}

/// A reference's group number: ASCII digits without a leading zero, below
/// the limit Go applies; anything else is a group name.
fn group_number(name: &str) -> Option<u64> {
    let mut number: u64 = 0;
    for byte in name.bytes() {
        if !byte.is_ascii_digit() || number >= 100_000_000 {
            return None;
        }
        number = number * 10 + u64::from(byte - b'0');
    }
    if name.len() > 1 && name.starts_with('0') {
        return None;
    }
    Some(number)
}

#[cfg(test)]
mod tests {
    use super::{replace, trim_prefix, trim_suffix};

    fn all(pattern: &str, replacement: &str, value: &str) -> String {
        replace(pattern, replacement, value, true).unwrap_or_else(|e| format!("error {e:?}"))
    }

    #[test]
    fn trims() {
        assert_eq!(
            trim_prefix("*x", "xxyy", false).ok().as_deref(),
            Some("xyy")
        );
        assert_eq!(trim_prefix("*x", "xxyy", true).ok().as_deref(), Some("yy"));
        assert_eq!(
            trim_suffix("y*", "xxyy", false).ok().as_deref(),
            Some("xxy")
        );
        assert_eq!(trim_suffix("y*", "xxyy", true).ok().as_deref(), Some("xx"));
        assert_eq!(trim_suffix("z", "xxyy", true).ok().as_deref(), Some("xxyy"));
        assert_eq!(
            trim_suffix("의", "한국의", true).ok().as_deref(),
            Some("한국")
        );
    }

    #[test]
    fn replace_all_follows_go() {
        assert_eq!(all("", "-", "ab"), "-a-b-");
        // A match that ends where the previous one ended is skipped.
        assert_eq!(all("*", "-", "abc"), "-");
        assert_eq!(all("?", "-", "ab"), "--");
        assert_eq!(all("b*", "-", "abbc"), "a-");
        assert_eq!(all("*", "-", "a\nb"), "-\n-");
        assert_eq!(all("o", "[$0]", "foo"), "f[o][o]");
        assert_eq!(all("o", "${0}$1$x$$", "fo"), "fo$");
        assert_eq!(all("o", "$ ${", "fo"), "f$ ${");
        assert_eq!(all("o", "$00$0a", "fo"), "f");
        assert_eq!(
            replace("o", "$0", "foo", false).ok().as_deref(),
            Some("f$0o")
        );
    }
}
