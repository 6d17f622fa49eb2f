//! The parser and checker never panic, whatever bytes they are given: a
//! Dockerfile is user input.

use berth_builder::dockerfile::{check_source, parse};
use proptest::prelude::*;

/// Fragments that reach the parser's interesting paths, so random
/// combinations explore more than uniform bytes would.
fn dockerfile_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("FROM scratch AS a\n".to_string()),
        Just("RUN <<EOF\n".to_string()),
        Just("EOF\n".to_string()),
        Just("COPY --from=a --chmod=u+x <<-'X' /d\n".to_string()),
        Just("\\\n".to_string()),
        Just("`\n".to_string()),
        Just("# escape=`\n".to_string()),
        Just("ENV a=\"b c\" d='e'\n".to_string()),
        Just("CMD [\"a\", 1]\n".to_string()),
        Just("ONBUILD ONBUILD RUN x\n".to_string()),
        Just("HEALTHCHECK --interval=1x CMD\n".to_string()),
        Just("ARG ${x:-${y}}\n".to_string()),
        "[ -~\t\n]{0,20}",
        any::<String>(),
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&bytes);
        let _ = check_source(&bytes);
    }

    #[test]
    fn never_panics_on_dockerfile_like_text(text in dockerfile_like()) {
        if let Ok(df) = parse(text.as_bytes()) {
            // Spans are ordered and inside the file.
            let lines = text.lines().count().max(1);
            for node in &df.nodes {
                prop_assert!(node.start_line >= 1 && node.start_line <= node.end_line && node.end_line <= lines);
            }
        }
        let _ = check_source(text.as_bytes());
    }
}
