//! Feeds arbitrary words to the shell-word lexer, in every mode.
#![no_main]

use berth_builder::dockerfile::shell::{EnvList, Lexer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The first line is an environment entry, the rest the word.
    let (env, word) = text.split_once('\n').unwrap_or(("A=1 2", text));
    let env = EnvList(vec![env.to_string(), "EMPTY=".to_string()]);
    for escape in ['\\', '`'] {
        let lexer = Lexer::new(escape);
        let _ = lexer.process_word(word, &env);
        let _ = lexer.process_words(word, &env);
        let raw = lexer.clone().raw_quotes(true).raw_escapes(true).skip_unset_env(true);
        let _ = raw.process_word_with_matches(word, &env);
        let _ = raw.process_words(word, &env);
    }
});
