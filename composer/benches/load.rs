//! Issue 6's target: a 300-service compose file loads, validates and prints
//! in under 100 ms. Each iteration runs the whole pipeline (read, parse,
//! interpolate, schema, normalise, merge, consistency, model) and prints
//! the result as YAML.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use berth_composer::{ProjectOptions, load, render};
use criterion::{Criterion, criterion_group, criterion_main};

/// A realistic service mix: images and builds, ports, volumes, env in both
/// syntaxes, healthchecks, depends_on chains, anchors and variables.
fn write_project(dir: &Path, services: usize) -> PathBuf {
    let mut text = String::from(
        "name: bench\nx-common: &common\n  restart: unless-stopped\n  logging:\n    driver: json-file\n    options:\n      max-size: 10m\n",
    );
    text.push_str("services:\n");
    for i in 0..services {
        let _ = write!(
            text,
            "  svc{i}:\n    <<: *common\n    image: registry.example/app/svc{i}:${{TAG:-1.0}}\n    command: [\"sh\", \"-c\", \"exec server --port 80\"]\n",
        );
        // Both environment syntaxes, as real projects mix them.
        if i % 2 == 0 {
            let _ = write!(
                text,
                "    environment:\n      INDEX: \"{i}\"\n      HOME_DIR: ${{HOME}}\n"
            );
        } else {
            let _ = write!(
                text,
                "    environment:\n      - INDEX={i}\n      - HOME_DIR=${{HOME}}\n"
            );
        }
        let _ = write!(
            text,
            "    ports:\n      - \"127.0.0.1:{}:80/tcp\"\n    volumes:\n      - ./data/{i}:/data:ro\n      - cache:/cache\n    networks: [front, back]\n    healthcheck:\n      test: curl -f http://localhost/\n      interval: 1m30s\n      timeout: 500ms\n    deploy:\n      resources:\n        limits:\n          memory: 512m\n          cpus: \"0.5\"\n",
            20000 + i
        );
        if i > 0 {
            let _ = writeln!(
                text,
                "    depends_on:\n      svc{}:\n        condition: service_started",
                i - 1
            );
        }
        if i % 10 == 0 {
            let _ = writeln!(
                text,
                "    build:\n      context: ./svc{i}\n      args:\n        - VERSION=${{TAG:-1.0}}"
            );
        }
    }
    text.push_str("networks:\n  front: {}\n  back:\n    internal: true\nvolumes:\n  cache: {}\n");
    let file = dir.join("compose.yaml");
    std::fs::write(&file, text).expect("write the bench project");
    file
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_project(dir.path(), 300);
    let options = ProjectOptions {
        files: vec![file],
        working_dir: dir.path().to_path_buf(),
        environment: [("HOME".to_string(), "/root".to_string())]
            .into_iter()
            .collect(),
        ..ProjectOptions::default()
    };
    let loaded = load(&options).expect("the bench project loads");
    assert_eq!(loaded.project.services.len(), 300);
    c.bench_function("load_validate_print_300_services", |b| {
        b.iter(|| {
            let loaded = load(&options).expect("loads");
            render::yaml(&loaded.project).expect("prints")
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
