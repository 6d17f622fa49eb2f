//! The whole loader on arbitrary text given as `-f -`: YAML, interpolation
//! (with a few variables set), schema, normalisation, merge, consistency.
//! Whatever the input, the loader returns a model or an error; a model it
//! returns must print and load back to itself.
#![no_main]

use std::path::PathBuf;

use berth_composer::{ProjectOptions, load, render};
use libfuzzer_sys::fuzz_target;

fn options(text: &str) -> ProjectOptions {
    ProjectOptions {
        files: vec![PathBuf::from("-")],
        project_name: Some("fuzz".into()),
        working_dir: PathBuf::from("/nonexistent/berth-fuzz"),
        environment: [("A", "1"), ("EMPTY", ""), ("PORT", "8080"), ("HOME", "/root")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        stdin: Some(text.to_string()),
        ..ProjectOptions::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(loaded) = load(&options(text)) else { return };
    let printed = render::yaml(&loaded.project).expect("a loaded model prints");
    let again = load(&options(&printed)).expect("printed config loads");
    assert_eq!(again.project, loaded.project, "config output changed the model:\n{printed}");
});
