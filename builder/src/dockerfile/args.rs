//! How each instruction's argument text becomes arguments: the keyword and
//! leading `--flags` are split off, then the instruction's own rule applies
//! (JSON or shell form, whitespace words, key/value pairs, one string).

use super::ast::Node;

/// What an instruction's text was split into.
pub(crate) struct SplitLine {
    pub keyword: String,
    pub flags: Vec<String>,
    pub args: Vec<String>,
    pub sub: Option<Box<Node>>,
    pub json: bool,
}

/// Whitespace that separates words in BuildKit's line parsers. Unlike
/// Unicode whitespace it excludes newlines (lines never contain one) and
/// exotic spaces.
fn is_word_space(c: char) -> bool {
    matches!(c, '\t' | '\u{0b}' | '\u{0c}' | '\r' | ' ')
}

fn split_whitespace_words(text: &str) -> Vec<String> {
    if text.is_empty() {
        return Vec::new();
    }
    text.split(is_word_space)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Splits one logical line into keyword, flags and arguments.
pub(crate) fn split_line(line: &str, escape: char) -> Result<SplitLine, String> {
    let line = line.trim();
    let (keyword, rest) = match line.find(is_word_space) {
        Some(i) => (&line[..i], line[i..].trim_start_matches(is_word_space)),
        None => (line, ""),
    };
    let (rest, flags) = extract_flags(rest);
    let rest = rest.trim();
    let mut split = SplitLine {
        keyword: keyword.to_string(),
        flags,
        args: Vec::new(),
        sub: None,
        json: false,
    };
    match keyword.to_ascii_lowercase().as_str() {
        "run" | "cmd" | "entrypoint" | "shell" => {
            (split.args, split.json) = maybe_json(rest)?;
        }
        "add" | "copy" | "volume" => match json_array(rest)? {
            Some(args) => (split.args, split.json) = (args, true),
            None => split.args = split_whitespace_words(rest),
        },
        "from" | "expose" => split.args = split_whitespace_words(rest),
        "user" | "workdir" | "stopsignal" | "maintainer" => {
            if !rest.is_empty() {
                split.args.push(rest.to_string());
            }
        }
        "arg" => split.args = quoted_words(rest, escape),
        "env" => split.args = key_values(rest, escape, "ENV")?,
        "label" => split.args = key_values(rest, escape, "LABEL")?,
        "healthcheck" => {
            let kind_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            if kind_end > 0 {
                split.args.push(rest[..kind_end].to_string());
                let (cmd, json) = maybe_json(rest[kind_end..].trim_start())?;
                split.args.extend(cmd);
                split.json = json;
            }
        }
        "onbuild" => {
            if !rest.is_empty() {
                let inner = split_line(rest, escape)?;
                split.sub = Some(Box::new(Node {
                    keyword: inner.keyword,
                    flags: inner.flags,
                    args: inner.args,
                    sub: inner.sub,
                    json: inner.json,
                    heredocs: Vec::new(),
                    original: rest.to_string(),
                    start_line: 0,
                    end_line: 0,
                }));
            }
        }
        // Unknown instructions parse; the checker reports them with a
        // suggestion, where it knows the rest of the file too.
        _ => split.args.push(String::new()),
    }
    Ok(split)
}

/// Removes leading `--name[=value]` words. Quotes group characters inside a
/// flag word and a backslash escapes the next one; a lone `--` ends flags.
fn extract_flags(line: &str) -> (&str, Vec<String>) {
    let mut flags = Vec::new();
    let mut chars = line.char_indices().peekable();
    loop {
        while chars.next_if(|&(_, c)| c.is_whitespace()).is_some() {}
        let Some(&(start, _)) = chars.peek() else {
            return ("", flags);
        };
        if !line[start..].starts_with("--") {
            return (&line[start..], flags);
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut ended_at = None;
        while let Some((i, c)) = chars.next() {
            match quote {
                None if c.is_whitespace() => {
                    ended_at = Some(i);
                    break;
                }
                None if c == '\'' || c == '"' => quote = Some(c),
                Some(q) if c == q => quote = None,
                _ if c == '\\' => {
                    if let Some((_, next)) = chars.next() {
                        word.push(next);
                    }
                }
                _ => word.push(c),
            }
        }
        if word == "--" {
            return (ended_at.map_or("", |i| &line[i..]), flags);
        }
        flags.push(word);
        if ended_at.is_none() {
            return ("", flags);
        }
    }
}

/// The elements of `text` if it is a JSON array of strings; `None` if it is
/// not JSON at all; an error if it is a JSON array holding something else.
fn json_array(text: &str) -> Result<Option<Vec<String>>, String> {
    let text = text.trim_start();
    if !text.starts_with('[') {
        return Ok(None);
    }
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(text) else {
        return Ok(None);
    };
    values
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(
                "when using JSON array syntax, arrays must be comprised of strings only (quote every element, e.g. [\"echo\", \"1\"])"
                    .to_string(),
            ),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Exec form when the text is a JSON array of strings, else one verbatim
/// shell-form string.
fn maybe_json(text: &str) -> Result<(Vec<String>, bool), String> {
    if text.is_empty() {
        return Ok((Vec::new(), false));
    }
    Ok(match json_array(text)? {
        Some(args) => (args, true),
        None => (vec![text.to_string()], false),
    })
}

/// Splits on whitespace outside quotes, keeping quote and escape characters
/// in the words (they are processed when the words are expanded).
fn quoted_words(text: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut started = false; // a quote makes even an empty word count
    let mut quote: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            None if c.is_whitespace() => {
                if started || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                started = false;
            }
            None => {
                if c == '\'' || c == '"' {
                    quote = Some(c);
                    started = true;
                }
                if c == escape {
                    // A trailing escape is dropped; otherwise it and the next
                    // character are kept together, even a quote.
                    if let Some(next) = chars.next() {
                        word.push(c);
                        word.push(next);
                    }
                    continue;
                }
                word.push(c);
            }
            Some(q) => {
                if c == q {
                    quote = None;
                }
                if c == escape && q != '\'' {
                    match chars.next() {
                        Some(next) => {
                            word.push(c);
                            word.push(next);
                        }
                        None => quote = None,
                    }
                    continue;
                }
                word.push(c);
            }
        }
    }
    if started || !word.is_empty() {
        words.push(word);
    }
    words
}

/// ENV/LABEL arguments as key, value, separator triples.
fn key_values(text: &str, escape: char, keyword: &str) -> Result<Vec<String>, String> {
    let words = quoted_words(text, escape);
    let Some(first) = words.first() else {
        return Ok(Vec::new());
    };
    if !first.contains('=') {
        // Legacy `ENV key value with spaces`: the rest of the line is the value.
        let mut parts = text.splitn(2, is_word_space);
        let key = parts.next().unwrap_or_default();
        let value = parts.next().map(|v| v.trim_start_matches(is_word_space));
        return match value {
            Some(value) => Ok(vec![key.to_string(), value.to_string(), String::new()]),
            None => Err(format!(
                "{keyword} must have two arguments (write {keyword} NAME=value, or {keyword} NAME value)"
            )),
        };
    }
    let mut args = Vec::with_capacity(words.len() * 3);
    for word in &words {
        let Some((key, value)) = word.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in {word:?}. Must be of the form: name=value"
            ));
        };
        args.extend([key.to_string(), value.to_string(), "=".to_string()]);
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_stop_at_first_non_flag_and_at_double_dash() {
        assert_eq!(
            extract_flags("--a=1 --b x y"),
            ("x y", vec!["--a=1".into(), "--b".into()])
        );
        assert_eq!(extract_flags("--a -- --b"), (" --b", vec!["--a".into()]));
        assert_eq!(
            extract_flags("--a=\"x y\" z"),
            ("z", vec!["--a=x y".into()])
        );
        assert_eq!(extract_flags("--a"), ("", vec!["--a".into()]));
    }

    #[test]
    fn quoted_words_keep_quotes() {
        assert_eq!(
            quoted_words("abc=\"123 456\" def", '\\'),
            vec!["abc=\"123 456\"", "def"]
        );
        assert_eq!(quoted_words("a=\"\" b", '\\'), vec!["a=\"\"", "b"]);
    }
}
