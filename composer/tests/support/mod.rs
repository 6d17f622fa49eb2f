//! What the conformance tests share: where the conformance data is, and a
//! counter that runs every case and reports all failures together.

#![allow(dead_code)] // each test file uses its own part

/// `../shared/conformance/compose`, beside the repository.
pub const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/conformance/compose"
);

/// Counts one group of cases and keeps every failure for the final report.
pub struct Group {
    pub name: &'static str,
    pub passed: usize,
    pub total: usize,
    pub failures: Vec<String>,
}

impl Group {
    pub fn new(name: &'static str) -> Group {
        Group {
            name,
            passed: 0,
            total: 0,
            failures: Vec::new(),
        }
    }

    pub fn check(&mut self, case: impl std::fmt::Display, result: Result<(), String>) {
        self.total += 1;
        match result {
            Ok(()) => self.passed += 1,
            Err(why) => self.failures.push(format!("[{}] {case}: {why}", self.name)),
        }
    }
}

/// Prints `TITLE: 12/12 group, …`, every failure, and fails when any case
/// failed or a group had no case.
pub fn report(title: &str, groups: &[Group]) {
    let counts: Vec<String> = groups
        .iter()
        .map(|g| format!("{}/{} {}", g.passed, g.total, g.name))
        .collect();
    println!("{title}: {}", counts.join(", "));
    let failures: Vec<&String> = groups.iter().flat_map(|g| &g.failures).collect();
    for failure in &failures {
        println!("  FAIL {failure}");
    }
    assert!(groups.iter().all(|g| g.total > 0), "a group has no cases");
    assert!(
        failures.is_empty(),
        "{} conformance case(s) failed",
        failures.len()
    );
}
