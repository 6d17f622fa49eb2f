//! Feeds arbitrary bytes to the Dockerfile parser and checker.
#![no_main]

use berth_builder::dockerfile::{check_source, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(df) = parse(data) {
        let _ = df.dump();
    }
    let _ = check_source(data);
});
