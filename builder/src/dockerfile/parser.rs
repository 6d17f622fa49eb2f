//! The parse driver: reads physical lines, honours directives, joins
//! continuations, skips comments, collects heredoc bodies and builds one
//! [`Node`] per instruction with its line span.

use super::args::split_line;
use super::ast::{Dockerfile, Node, Warning};
use super::directives::DirectiveParser;
use super::error::DockerfileError;
use super::heredoc::heredocs_from_line;

/// Physical lines of the source, each with its line ending still attached
/// (heredoc bodies keep them).
struct Lines<'a> {
    rest: &'a [u8],
    number: usize,
}

impl<'a> Lines<'a> {
    fn new(src: &'a [u8]) -> Self {
        let src = src.strip_prefix(b"\xef\xbb\xbf").unwrap_or(src);
        Lines {
            rest: src,
            number: 0,
        }
    }

    /// The next line with its ending, and its 1-based number.
    fn next_raw(&mut self) -> Option<(&'a [u8], usize)> {
        if self.rest.is_empty() {
            return None;
        }
        let end = self
            .rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.rest.len(), |i| i + 1);
        let (line, rest) = self.rest.split_at(end);
        self.rest = rest;
        self.number += 1;
        Some((line, self.number))
    }
}

fn text(line: &[u8]) -> String {
    String::from_utf8_lossy(line).into_owned()
}

fn trim_newline(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Removes a trailing escape character (plus trailing blanks) that continues
/// the line. An escape preceded by another escape is literal and does not.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let body = line.trim_end_matches([' ', '\t']);
    let Some(before) = body.strip_suffix(escape) else {
        return (line, true);
    };
    if before.ends_with(escape) {
        return (line, true);
    }
    (before, false)
}

/// Parses a Dockerfile the way BuildKit's parser does.
pub fn parse(src: &[u8]) -> Result<Dockerfile, DockerfileError> {
    let mut lines = Lines::new(src);
    let mut directives = DirectiveParser::default();
    let mut escape = '\\';
    let mut nodes = Vec::new();
    let mut warnings = Vec::new();
    let mut last_line = 0;

    while let Some((raw, start)) = lines.next_raw() {
        last_line = start;
        let first = text(raw);
        let first = trim_newline(&first).trim_start();
        if let Some(d) = directives
            .feed(first, start)
            .map_err(|m| DockerfileError::new(start, start, m))?
            && d.name == "escape"
        {
            escape = match d.value.as_str() {
                "\\" => '\\',
                "`" => '`',
                other => {
                    return Err(DockerfileError::new(
                        start,
                        start,
                        format!("invalid escape token '{other}' does not match ` or \\"),
                    )
                    .with_hint("use `# escape=\\` or `# escape=``"));
                }
            };
        }
        let first = if is_comment(first) { "" } else { first };
        let (joined, mut ended) = trim_continuation(first, escape);
        if ended && joined.is_empty() {
            continue;
        }
        let mut line = joined.to_string();
        let mut end = start;
        let mut empty_continuation = false;
        while !ended {
            let Some((raw, number)) = lines.next_raw() else {
                break;
            };
            end = number;
            let next = text(raw);
            let next = trim_newline(&next);
            directives
                .feed(next, number)
                .map_err(|m| DockerfileError::new(number, number, m))?;
            if is_comment(next) {
                continue;
            }
            if next.trim_start().is_empty() {
                empty_continuation = true;
                continue;
            }
            let (part, now_ended) = trim_continuation(next, escape);
            line.push_str(part);
            ended = now_ended;
        }
        if empty_continuation {
            warnings.push(Warning {
                line: end,
                message: format!(
                    "Empty continuation line found in: {line} (empty continuation lines will become errors in a future release)"
                ),
            });
        }

        let split = split_line(&line, escape).map_err(|m| DockerfileError::new(start, end, m))?;
        let mut node = Node {
            keyword: split.keyword,
            flags: split.flags,
            args: split.args,
            sub: split.sub,
            json: split.json,
            heredocs: Vec::new(),
            original: line,
            start_line: start,
            end_line: end,
        };
        if let Some(sub) = node.sub.as_deref_mut() {
            sub.start_line = start;
            sub.end_line = end;
        }
        if can_contain_heredoc(&node) && node.original.contains("<<") {
            let docs = heredocs_from_line(&node.original)
                .map_err(|e| DockerfileError::new(start, end, e.to_string()))?;
            for mut doc in docs {
                let mut terminated = false;
                while let Some((raw, number)) = lines.next_raw() {
                    end = number;
                    let body = text(raw);
                    let candidate = trim_newline(&body);
                    let candidate = if doc.chomp {
                        candidate.trim_start_matches('\t')
                    } else {
                        candidate
                    };
                    if candidate == doc.name {
                        terminated = true;
                        break;
                    }
                    doc.content.push_str(&body);
                }
                if !terminated {
                    return Err(DockerfileError::new(
                        start,
                        end,
                        format!("unterminated heredoc: no line {:?} ends it", doc.name),
                    )
                    .with_hint(format!(
                        "add a line containing only {} after the body",
                        doc.name
                    )));
                }
                node.heredocs.push(doc);
            }
            node.end_line = end;
            if let Some(sub) = node.sub.as_deref_mut() {
                sub.heredocs = node.heredocs.clone();
                sub.end_line = end;
            }
        }
        nodes.push(node);
    }

    let (Some(first), Some(last)) = (nodes.first(), nodes.last()) else {
        return Err(
            DockerfileError::new(last_line, last_line, "file with no instructions")
                .with_hint("a Dockerfile needs at least a FROM instruction"),
        );
    };
    let (start_line, end_line) = (first.start_line, last.end_line);
    Ok(Dockerfile {
        nodes,
        directives: directives.found,
        escape,
        warnings,
        start_line,
        end_line,
    })
}

/// Heredocs belong to RUN, COPY and ADD (also under ONBUILD), and never to
/// their JSON forms.
fn can_contain_heredoc(node: &Node) -> bool {
    let node = match &node.sub {
        Some(sub) if node.keyword.eq_ignore_ascii_case("onbuild") => sub,
        _ => node,
    };
    let kw = node.keyword.to_ascii_lowercase();
    matches!(kw.as_str(), "run" | "copy" | "add") && !node.json
}
