//! Field splitting for [`Lexer::process_words`](super::Lexer::process_words).
//!
//! The lexer feeds pieces in as it reads them. Unquoted literal characters
//! and the results of `$` expansions are split at Unicode whitespace;
//! quoted text and escaped characters are "raw" and never split. A field
//! that stays empty is dropped, so `""` alone yields no field.

#[derive(Debug, Default)]
pub(crate) struct Words {
    done: Vec<String>,
    current: String,
    /// Set once anything (even an empty quoted string) started a field.
    in_word: bool,
}

impl Words {
    /// Adds a character that splits fields when it is whitespace.
    pub(crate) fn add_char(&mut self, ch: char) {
        if !ch.is_whitespace() {
            self.add_raw_char(ch);
        } else if self.in_word && !self.current.is_empty() {
            self.done.push(std::mem::take(&mut self.current));
            self.in_word = false;
        }
    }

    pub(crate) fn add_raw_char(&mut self, ch: char) {
        self.current.push(ch);
        self.in_word = true;
    }

    pub(crate) fn add_str(&mut self, text: &str) {
        text.chars().for_each(|ch| self.add_char(ch));
    }

    pub(crate) fn add_raw_str(&mut self, text: &str) {
        self.current.push_str(text);
        self.in_word = true;
    }

    pub(crate) fn finish(mut self) -> Vec<String> {
        if !self.current.is_empty() {
            self.done.push(self.current);
        }
        self.done
    }
}
