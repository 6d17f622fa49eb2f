//! Heredocs (`<<EOF` … `EOF`) attached to RUN, COPY and ADD.
//!
//! This module recognises heredoc words on an instruction line and knows how
//! a body ends; the parser driver feeds it the physical lines that follow.

use super::shell::{EnvList, Lexer};

/// One heredoc body attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The terminator word, with any quotes removed.
    pub name: String,
    /// Leading digit before `<<` (`3<<EOF`), 0 when absent.
    pub file_descriptor: u32,
    /// False when any part of the word was quoted: the body is then used
    /// verbatim, without variable expansion.
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from the body (see [`chomp`]) and
    /// may precede the terminator.
    pub chomp: bool,
    /// Every body line with its line ending, un-chomped.
    pub content: String,
}

/// Why a heredoc word could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid heredoc word {word:?}: {reason}")]
pub struct HeredocWordError {
    pub word: String,
    pub reason: String,
}

/// Reads one word as a heredoc opener (`<<EOF`, `<<-'EOF'`, `3<<EOF`,
/// `<< EOF`). `Ok(None)` means the word is simply not a heredoc.
pub fn parse_heredoc_word(word: &str) -> Result<Option<Heredoc>, HeredocWordError> {
    let digits = word.bytes().take_while(u8::is_ascii_digit).count();
    let Some(rest) = word[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    // `<<<` and words with a later `<` are not heredocs (here-strings etc.).
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let file_descriptor = if digits == 0 {
        0
    } else {
        word[..digits].parse().unwrap_or(0)
    };
    let fail = |reason: String| HeredocWordError {
        word: word.to_string(),
        reason,
    };
    let empty = EnvList::default();
    let lexer = Lexer::new('\\').skip_unset_env(true);
    let words = lexer
        .process_words(rest, &empty)
        .map_err(|e| fail(e.to_string()))?;
    let [name] = words.as_slice() else {
        return Ok(None);
    };
    let raw = lexer
        .raw_quotes(true)
        .process_words(rest, &empty)
        .map_err(|e| fail(e.to_string()))?;
    let [raw_name] = raw.as_slice() else {
        return Err(fail("quoting is inconsistent".to_string()));
    };
    // Quotes that vanished when quotes were processed mean the word was quoted.
    let quotes = |s: &str| s.chars().filter(|&c| c == '\'' || c == '"').count();
    Ok(Some(Heredoc {
        name: name.clone(),
        file_descriptor,
        expand: quotes(name) == quotes(raw_name),
        chomp,
        content: String::new(),
    }))
}

/// Every heredoc opened on an instruction line, in order. A bare `<<` or
/// `<<-` followed by a separate word (`RUN <<- EOF`) opens one too.
pub fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, HeredocWordError> {
    let lexer = Lexer::new('\\')
        .raw_quotes(true)
        .raw_escapes(true)
        .skip_unset_env(true);
    // Like BuildKit, a line the lexer cannot split simply has no heredocs.
    let words = lexer
        .process_words(line, &EnvList::default())
        .unwrap_or_default();
    let mut docs = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let word = &words[i];
        let bare_opener = word.trim_start_matches(|c: char| c.is_ascii_digit());
        let doc = if (bare_opener == "<<" || bare_opener == "<<-") && i + 1 < words.len() {
            i += 1;
            parse_heredoc_word(&format!("{word} {}", words[i]))?
        } else {
            parse_heredoc_word(word)?
        };
        docs.extend(doc);
        i += 1;
    }
    Ok(docs)
}

/// Strips leading tabs from every line of a `<<-` body.
pub fn chomp(content: &str) -> String {
    content
        .split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}
