//! How validation errors are worded: type lists in plain English, quoted
//! values, and "did you mean" suggestions for typos.

use serde_json::Value as Json;

use super::compile::Types;

/// `a string`, `a string or an object`, `a number, a string or an object`.
pub(crate) fn types_phrase(types: Types) -> String {
    // Integers are numbers: naming both would read as two alternatives.
    let named: [(Types, &str); 7] = [
        (Types::NUMBER, "a number"),
        (Types::INTEGER, "an integer"),
        (Types::STRING, "a string"),
        (Types::BOOLEAN, "a boolean"),
        (Types::ARRAY, "an array"),
        (Types::OBJECT, "an object"),
        (Types::NULL, "null"),
    ];
    let mut words: Vec<&str> = Vec::new();
    for (t, word) in named {
        let shadowed = t == Types::INTEGER && types.contains(Types::NUMBER);
        if types.contains(t) && !shadowed {
            words.push(word);
        }
    }
    match words.split_last() {
        None => "nothing".to_string(),
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// A text as JSON writes it: `"image"`.
pub(crate) fn quote(text: &str) -> String {
    Json::String(text.to_string()).to_string()
}

/// A schema limit as a compose user wrote it: `0`, not `0.0`.
pub(crate) fn number(limit: f64) -> String {
    if limit.fract() == 0.0 && limit.abs() < 1e15 {
        format!("{}", limit as i64)
    } else {
        limit.to_string()
    }
}

/// The candidate closest to `word`, if it is close enough to be a typo:
/// at most 2 edits (a swap of neighbours counts as one) and fewer edits than
/// `word` has characters, so that short unrelated names are not offered.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let word_len = word.chars().count();
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        let distance = edit_distance(word, candidate);
        if distance <= 2 && distance < word_len && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// Optimal-string-alignment distance, ignoring case.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().flat_map(char::to_lowercase).collect();
    let b: Vec<char> = b.chars().flat_map(char::to_lowercase).collect();
    // Three rows: the one before the previous is needed for transpositions.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            current[j] = d;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_type_sets() {
        assert_eq!(types_phrase(Types::STRING), "a string");
        assert_eq!(
            types_phrase(Types::STRING.union(Types::OBJECT)),
            "a string or an object"
        );
        let ports = Types::NUMBER
            .union(Types::INTEGER)
            .union(Types::STRING)
            .union(Types::OBJECT);
        assert_eq!(types_phrase(ports), "a number, a string or an object");
        assert_eq!(
            types_phrase(Types::INTEGER.union(Types::STRING)),
            "an integer or a string"
        );
        assert_eq!(
            types_phrase(Types::OBJECT.union(Types::NULL)),
            "an object or null"
        );
    }

    #[test]
    fn distances() {
        assert_eq!(edit_distance("imgae", "image"), 1);
        assert_eq!(edit_distance("Image", "image"), 0);
        assert_eq!(edit_distance("enviroment", "environment"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggests_only_close_names() {
        let keys = ["image", "ipc", "ports", "environment"];
        assert_eq!(closest("imgae", keys.into_iter()), Some("image"));
        assert_eq!(closest("port", keys.into_iter()), Some("ports"));
        assert_eq!(closest("helicopters", keys.into_iter()), None);
        // Two edits on a two-letter word would turn anything into anything.
        assert_eq!(closest("ab", keys.into_iter()), None);
    }

    #[test]
    fn numbers_and_quotes() {
        assert_eq!(number(0.0), "0");
        assert_eq!(number(-1000.0), "-1000");
        assert_eq!(number(0.5), "0.5");
        assert_eq!(quote("a\"b"), r#""a\"b""#);
    }
}
