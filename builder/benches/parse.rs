//! Parse speed: a 5,000-instruction Dockerfile must parse well under 50 ms.

use berth_builder::dockerfile::parse;
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

/// A large Dockerfile that exercises every line-level feature: directives,
/// continuations, comments, JSON and shell forms, key/value pairs, flags and
/// heredocs. Exactly `count` instructions.
fn big_dockerfile(count: usize) -> String {
    let mut out = String::from("# syntax=docker/dockerfile:1\n# escape=\\\n");
    out.push_str("FROM scratch AS base\n");
    let mut n = 1;
    while n < count {
        let line = match n % 10 {
            0 => format!("FROM base AS stage{n}\n"),
            1 => format!("RUN echo step {n} && \\\n    # a comment inside\n    ls -la /tmp/{n}\n"),
            2 => format!("COPY --chown=1000:1000 --chmod=0644 src/{n} /app/{n}/\n"),
            3 => format!("ENV KEY{n}=\"value {n}\" OTHER{n}=x\\ y\n"),
            4 => format!("LABEL org.example.step{n}=\"{n}\"\n"),
            5 => format!("ARG VERSION{n}=1.{n}\n"),
            6 => format!("CMD [\"/bin/app\", \"--step\", \"{n}\"]\n"),
            7 => format!("RUN <<EOF\necho heredoc {n}\necho more\nEOF\n"),
            8 => format!("WORKDIR /app/{n}\n"),
            _ => format!("HEALTHCHECK --interval=5s CMD wget -q http://localhost/{n}\n"),
        };
        out.push_str(&line);
        n += 1;
    }
    out
}

fn bench_parse(c: &mut Criterion) {
    let src = big_dockerfile(5_000);
    let parsed = parse(src.as_bytes()).map(|d| d.nodes.len());
    assert_eq!(
        parsed,
        Ok(5_000),
        "benchmark input must parse into 5,000 instructions"
    );
    c.bench_function("parse 5000 instructions", |b| {
        b.iter(|| parse(black_box(src.as_bytes())))
    });
}

criterion_group!(benches, bench_parse);
criterion_main!(benches);
