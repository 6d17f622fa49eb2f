//! `berth build --check`: the Dockerfile lint, run as a user runs it.

use assert_cmd::Command;
use std::fs;
use std::path::Path;
use tempfile::TempDir;

fn berth() -> Command {
    Command::cargo_bin("berth").expect("the berth binary is built by cargo test")
}

/// A context directory holding `Dockerfile` with `content`.
fn context(content: &str) -> TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    fs::write(dir.path().join("Dockerfile"), content).expect("write Dockerfile");
    dir
}

/// Runs `berth build --check` in a context and returns (exit code, stderr).
fn check(content: &str) -> (i32, String) {
    let dir = context(content);
    let out = berth()
        .current_dir(dir.path())
        .args(["build", "--check", "."])
        .output()
        .expect("run berth");
    assert!(out.stdout.is_empty(), "--check prints nothing on stdout");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_error(content: &str, expected: &str) {
    let (code, stderr) = check(content);
    assert_eq!(
        code, 1,
        "expected failure for:\n{content}\nstderr: {stderr}"
    );
    assert!(
        stderr.contains(expected),
        "stderr lacks {expected:?}:\n{stderr}"
    );
}

#[test]
fn good_dockerfile_is_silent() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello");
    let out = berth()
        .args(["build", "--check"])
        .arg(&example)
        .output()
        .expect("run berth");
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "a good Dockerfile prints nothing"
    );
}

#[test]
fn misspelt_instruction_suggests_the_right_one() {
    assert_error(
        "FROM scratch\nCPY a /a\n",
        "Dockerfile:2: unknown instruction \"CPY\" (did you mean COPY?)",
    );
}

#[test]
fn unterminated_heredoc() {
    assert_error(
        "FROM scratch\nRUN <<EOF\necho hi\n",
        "Dockerfile:2: unterminated heredoc",
    );
}

#[test]
fn missing_from() {
    assert_error("RUN echo hi\n", "Dockerfile:1: RUN before the first FROM");
    assert_error("ARG A=1\n", "no FROM instruction");
    assert_error("# only a comment\n", "file with no instructions");
}

#[test]
fn unknown_flag_suggests_the_right_one() {
    assert_error(
        "FROM scratch\nCOPY --form=base a /a\n",
        "Dockerfile:2: unknown flag --form for COPY (did you mean --from?)",
    );
    assert_error(
        "FROM scratch\nWORKDIR --x /a\n",
        "Dockerfile:2: unknown flag --x for WORKDIR (WORKDIR takes no flags)",
    );
}

#[test]
fn unknown_stage_in_from() {
    assert_error(
        "FROM scratch AS builder\nFROM scratch\nCOPY --from=buidler /a /a\n",
        "Dockerfile:3: unknown stage \"buidler\" in --from (did you mean \"builder\"?",
    );
    assert_error(
        "FROM scratch\nCOPY --from=3 /a /a\n",
        "Dockerfile:2: --from=3: there is no stage 3 before this one",
    );
}

#[test]
fn invalid_chmod() {
    assert_error(
        "FROM scratch\nCOPY --chmod=0789 a /a\n",
        "Dockerfile:2: invalid --chmod=0789",
    );
    assert_error(
        "FROM scratch\nCOPY --chmod=u+q a /a\n",
        "Dockerfile:2: invalid --chmod=u+q",
    );
}

#[test]
fn every_error_is_reported_in_line_order() {
    let (code, stderr) = check("FROM scratch\nCPY a b\nCOPY --chmod=9 a b\nEXPOSE http\n");
    assert_eq!(code, 1);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    assert!(lines[0].starts_with("Dockerfile:2:"), "{stderr}");
    assert!(lines[1].starts_with("Dockerfile:3:"), "{stderr}");
    assert!(lines[2].starts_with("Dockerfile:4:"), "{stderr}");
}

#[test]
fn dockerfile_from_stdin_and_elsewhere() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = berth()
        .current_dir(dir.path())
        .args(["build", "--check", "-f", "-", "."])
        .write_stdin("FROM scratch\nCOPY --chmod=abc a /a\n")
        .output()
        .expect("run berth");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Dockerfile:2: invalid --chmod=abc"));

    let other = dir.path().join("build.Dockerfile");
    fs::write(&other, "FROM scratch\nENV PATH\n").expect("write");
    let out = berth()
        .args(["build", "--check", "-f"])
        .arg(&other)
        .arg(dir.path())
        .output()
        .expect("run berth");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("build.Dockerfile:2: ENV must have two arguments"),
        "{stderr}"
    );
}

#[test]
fn missing_dockerfile_says_what_to_do() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = berth()
        .current_dir(dir.path())
        .args(["build", "--check", "."])
        .output()
        .expect("run berth");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot read Dockerfile") && stderr.contains("-f PATH"),
        "{stderr}"
    );
}

#[test]
fn warnings_do_not_fail_the_check() {
    let (code, stderr) = check("FROM scratch\nMAINTAINER someone\n");
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("Dockerfile:2: warning: MAINTAINER is deprecated"),
        "{stderr}"
    );
}
