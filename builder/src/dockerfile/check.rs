//! Whole-file validation: what no single instruction can tell on its own
//! (stage names, `--from` references, dependency cycles), plus lint
//! warnings. This is what `berth build --check` reports.

use super::ast::{Dockerfile, Warning};
use super::error::DockerfileError;
use super::instructions::{Instruction, InstructionKind};
use super::stages::{Stage, Stages};
use super::suggest::closest;
use berth_registry::reference::Reference;
use std::collections::BTreeMap;

/// Everything wrong or suspicious in a Dockerfile.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub errors: Vec<DockerfileError>,
    pub warnings: Vec<Warning>,
}

/// Checks a parsed Dockerfile; an empty `errors` means it can be built.
pub fn check(df: &Dockerfile) -> Report {
    let mut report = Report {
        errors: Vec::new(),
        warnings: df.warnings.clone(),
    };
    lint(df, &mut report.warnings);
    let (stages, errors) = Stages::collect(df);
    report.errors = errors;
    report.errors.extend(check_stages(&stages));
    report.errors.sort_by_key(|e| e.line);
    report.warnings.sort_by_key(|w| w.line);
    report
}

/// Parses and checks `src` in one go.
pub fn check_source(src: &[u8]) -> Report {
    match super::parse(src) {
        Ok(df) => check(&df),
        Err(e) => Report {
            errors: vec![e],
            warnings: Vec::new(),
        },
    }
}

fn check_stages(stages: &Stages) -> Vec<DockerfileError> {
    let mut errors = Vec::new();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for stage in &stages.stages {
        if let Some(name) = stage.name() {
            if let Some(first) = seen.get(name) {
                errors.push(
                    DockerfileError::new(
                        stage.line,
                        stage.line,
                        format!("duplicate stage name {name:?} (first defined on line {first})"),
                    )
                    .with_hint("give each stage its own name"),
                );
            } else {
                seen.insert(name, stage.line);
            }
        }
        if let Some(later) = stages
            .stages
            .iter()
            // Not the stage itself: `FROM node AS node` names an image.
            .skip(stage.index + 1)
            .find(|s| s.name() == Some(stage.from.image.to_ascii_lowercase().as_str()))
        {
            errors.push(
                DockerfileError::new(
                    stage.line,
                    stage.line,
                    format!(
                        "FROM {} refers to the stage defined on line {}, which is not built yet",
                        stage.from.image, later.line
                    ),
                )
                .with_hint("a stage can only start from a stage defined above it"),
            );
        }
    }
    let mut deps: Vec<Vec<usize>> = vec![Vec::new(); stages.stages.len()];
    for stage in &stages.stages {
        if let Some(base) = stages
            .find(&stage.from.image)
            .filter(|b| b.index < stage.index)
            && stage.from.image.parse::<usize>().is_err()
        {
            deps[stage.index].push(base.index);
        }
        for instruction in &stage.instructions {
            for reference in from_references(instruction) {
                match resolve_from(stages, stage, &reference) {
                    Ok(Some(dep)) => deps[stage.index].push(dep),
                    Ok(None) => {}
                    Err(msg) => errors.push(
                        DockerfileError::new(instruction.start_line, instruction.end_line, msg.0)
                            .with_hint_opt(msg.1),
                    ),
                }
            }
        }
    }
    if let Some(cycle) = find_cycle(&deps) {
        let names: Vec<String> = cycle
            .iter()
            .map(|&i| stage_label(&stages.stages[i]))
            .collect();
        let first = &stages.stages[cycle[0]];
        errors.push(DockerfileError::new(
            first.line,
            first.line,
            format!("circular dependency between stages: {}", names.join(" -> ")),
        ));
    }
    errors
}

fn stage_label(stage: &Stage) -> String {
    stage
        .name()
        .map_or_else(|| format!("stage {}", stage.index), str::to_string)
}

/// `--from` values of COPY and of RUN bind/cache mounts.
fn from_references(instruction: &Instruction) -> Vec<String> {
    match &instruction.kind {
        InstructionKind::Copy(c) => c.from.iter().cloned().collect(),
        InstructionKind::Run(r) => r
            .mounts
            .iter()
            .flat_map(|m| m.split(','))
            .filter_map(|f| f.trim().strip_prefix("from="))
            .map(str::to_string)
            .collect(),
        InstructionKind::Onbuild(inner) => from_references(inner),
        _ => Vec::new(),
    }
}

/// The stage index a reference names, `None` for an image, or an error
/// (message, hint).
fn resolve_from(
    stages: &Stages,
    current: &Stage,
    reference: &str,
) -> Result<Option<usize>, (String, Option<String>)> {
    if reference.contains('$') {
        return Ok(None);
    }
    if let Ok(index) = reference.parse::<usize>() {
        return if index < current.index {
            Ok(Some(index))
        } else if index == current.index {
            Err((
                format!("--from={reference} refers to this very stage"),
                Some("copy from an earlier stage".into()),
            ))
        } else {
            Err((
                format!("--from={reference}: there is no stage {index} before this one"),
                Some(format!(
                    "stages are numbered from 0; this is stage {}",
                    current.index
                )),
            ))
        };
    }
    if let Some(stage) = stages.find(reference) {
        if stage.index == current.index {
            return Err((
                format!("--from={reference} refers to this very stage"),
                None,
            ));
        }
        return Ok(Some(stage.index));
    }
    let names = stages.stages.iter().filter_map(Stage::name);
    if let Some(near) = closest(reference, names) {
        return Err((
            format!("unknown stage {reference:?} in --from"),
            Some(format!(
                "did you mean {near:?}? to copy from an image of that name, write its full reference, e.g. docker.io/library/{reference}"
            )),
        ));
    }
    // Anything else must be an image, which BuildKit reads with Docker's
    // reference rules.
    if Reference::parse(reference).is_err() {
        return Err((
            format!("--from={reference} is neither a build stage nor a valid image reference"),
            Some("name a stage defined with FROM … AS NAME, or an image like alpine:3.20".into()),
        ));
    }
    Ok(None)
}

/// A cycle in the stage dependency graph, as stage indexes (first repeated
/// at the end).
fn find_cycle(deps: &[Vec<usize>]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit(
        n: usize,
        deps: &[Vec<usize>],
        marks: &mut [Mark],
        path: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        marks[n] = Mark::Active;
        path.push(n);
        for &d in &deps[n] {
            match marks[d] {
                Mark::Active => {
                    let start = path.iter().position(|&p| p == d).unwrap_or(0);
                    let mut cycle = path[start..].to_vec();
                    cycle.push(d);
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(c) = visit(d, deps, marks, path) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks[n] = Mark::Done;
        None
    }
    let mut marks = vec![Mark::New; deps.len()];
    (0..deps.len()).find_map(|n| {
        if marks[n] == Mark::New {
            visit(n, deps, &mut marks, &mut Vec::new())
        } else {
            None
        }
    })
}

/// BuildKit-style lint warnings that do not stop a build.
fn lint(df: &Dockerfile, warnings: &mut Vec<Warning>) {
    for node in &df.nodes {
        let keyword = node.keyword.to_ascii_lowercase();
        match keyword.as_str() {
            "maintainer" => warnings.push(Warning {
                line: node.start_line,
                message:
                    "MAINTAINER is deprecated: use LABEL org.opencontainers.image.authors=\"…\""
                        .into(),
            }),
            "env" | "label" if node.args.get(2).is_some_and(String::is_empty) => {
                warnings.push(Warning {
                    line: node.start_line,
                    message: format!(
                        "legacy \"{} key value\" form: write {} key=value",
                        node.name(),
                        node.name()
                    ),
                })
            }
            "from" => {
                if let [_, kw, _] = node.args.as_slice() {
                    let upper_kw = kw.chars().all(|c| c.is_ascii_uppercase());
                    let upper_from = node.keyword.chars().all(|c| c.is_ascii_uppercase());
                    if upper_kw != upper_from {
                        warnings.push(Warning {
                            line: node.start_line,
                            message: format!(
                                "'{kw}' and '{}' keywords' casing do not match",
                                node.keyword
                            ),
                        });
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references() {
        for image in [
            "alpine",
            "alpine:3.20",
            "localhost:5000/app/web:1",
            "ghcr.io/org/app",
            "Registry.example/app",
        ] {
            assert!(
                errors(&format!("FROM scratch\nCOPY --from={image} /a /a\n")).is_empty(),
                "{image}"
            );
        }
        for bad in ["Alpine", "app/", "app@sha256:abc", "a..b", "app:"] {
            assert_eq!(
                errors(&format!("FROM scratch\nCOPY --from={bad} /a /a\n")),
                [format!(
                    "Dockerfile:2: --from={bad} is neither a build stage nor a valid image reference (name a stage defined with FROM … AS NAME, or an image like alpine:3.20)"
                )],
            );
        }
    }

    fn errors(src: &str) -> Vec<String> {
        check_source(src.as_bytes())
            .errors
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn stage_graph_problems() {
        assert_eq!(
            errors("FROM scratch AS a\nFROM scratch AS a\n"),
            [
                "Dockerfile:2: duplicate stage name \"a\" (first defined on line 1) (give each stage its own name)"
            ]
        );
        let cyclic = errors(
            "FROM scratch AS a\nCOPY --from=b /x /x\nFROM scratch AS b\nCOPY --from=a /y /y\n",
        );
        assert_eq!(cyclic.len(), 1, "{cyclic:?}");
        assert!(
            cyclic[0].contains("circular dependency between stages: a -> b -> a"),
            "{cyclic:?}"
        );
        let later = errors("FROM b AS a\nFROM scratch AS b\n");
        assert!(
            later[0].starts_with("Dockerfile:1: FROM b refers to the stage defined on line 2"),
            "{later:?}"
        );
        // Images, stage indexes, forward references without a cycle, and
        // variables are all fine.
        assert!(errors("FROM scratch AS a\nCOPY --from=b /x /x\nFROM scratch AS b\n").is_empty());
        assert!(errors("FROM node AS node\nFROM node\n").is_empty());
        assert!(errors("FROM scratch\nFROM scratch\nCOPY --from=0 /x /x\nCOPY --from=alpine:3 /y /y\nCOPY --from=$S /z /z\n").is_empty());
        let mount =
            errors("FROM scratch AS builder\nFROM scratch\nRUN --mount=from=buildr,target=/b ls\n");
        assert!(mount[0].contains("unknown stage \"buildr\""), "{mount:?}");
    }

    #[test]
    fn cycles() {
        assert_eq!(find_cycle(&[vec![1], vec![0]]), Some(vec![0, 1, 0]));
        assert_eq!(find_cycle(&[vec![], vec![0], vec![0, 1]]), None);
    }
}
