//! The stage graph: which stages a stage needs (its `FROM` stage and its
//! `COPY --from` stages), and which stages the target needs at all, so
//! unneeded stages are never built.

use std::collections::BTreeSet;

use crate::dockerfile::shell::{Lexer, VarLookup};
use crate::dockerfile::{InstructionKind, Stages};

/// For each stage, the indexes of earlier stages it reads.
pub fn dependencies(
    stages: &Stages,
    lexer: &Lexer,
    global: &dyn VarLookup,
) -> Vec<BTreeSet<usize>> {
    stages
        .stages
        .iter()
        .map(|stage| {
            let mut deps = BTreeSet::new();
            let from = lexer
                .process_word(&stage.from.image, global)
                .unwrap_or_else(|_| stage.from.image.clone());
            if let Some(s) = stages.find(&from).filter(|s| s.index < stage.index) {
                deps.insert(s.index);
            }
            for ins in &stage.instructions {
                // COPY --from=STAGE and RUN --mount=…,from=STAGE read a stage.
                let froms: Vec<String> = match &ins.kind {
                    InstructionKind::Copy(c) => c.from.iter().cloned().collect(),
                    InstructionKind::Run(r) => {
                        r.mounts.iter().filter_map(|m| mount_from(m)).collect()
                    }
                    _ => Vec::new(),
                };
                for from in froms {
                    let from = lexer
                        .process_word(&from, global)
                        .unwrap_or_else(|_| from.clone());
                    if let Some(s) = stages.find(&from).filter(|s| s.index < stage.index) {
                        deps.insert(s.index);
                    }
                }
            }
            deps
        })
        .collect()
}

/// For each stage, whether a stage the build needs runs commands on its
/// layers: it is the base (directly or through other stages) of a stage
/// with a RUN, or a RUN mounts it (`--mount=…,from=STAGE`). Those layers
/// are then needed on disk, as snapshots. RUN steps of the stage itself
/// are not counted here.
pub fn runs_on(
    stages: &Stages,
    lexer: &Lexer,
    global: &dyn VarLookup,
    needed: &[usize],
) -> Vec<bool> {
    let earlier = |index: usize, name: &str| {
        let name = lexer
            .process_word(name, global)
            .unwrap_or_else(|_| name.to_owned());
        stages
            .find(&name)
            .filter(|s| s.index < index)
            .map(|s| s.index)
    };
    let mut out = vec![false; stages.stages.len()];
    // Bases and mounted stages come before the stages using them, so one
    // pass from the last stage back sees every use before the used stage.
    for &i in needed.iter().rev() {
        let Some(stage) = stages.stages.get(i) else {
            continue;
        };
        let mut has_run = false;
        for ins in &stage.instructions {
            if let InstructionKind::Run(r) = &ins.kind {
                has_run = true;
                for from in r.mounts.iter().filter_map(|m| mount_from(m)) {
                    if let Some(m) = earlier(i, &from) {
                        out[m] = true;
                    }
                }
            }
        }
        if (has_run || out[i])
            && let Some(base) = earlier(i, &stage.from.image)
        {
            out[base] = true;
        }
    }
    out
}

/// The `from=` of a `--mount` value, if it has one.
fn mount_from(spec: &str) -> Option<String> {
    spec.split(',').find_map(|field| {
        let (key, value) = field.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("from")
            .then(|| value.trim().to_owned())
    })
}

/// The stages `target` needs (itself included), in index order.
pub fn needed(deps: &[BTreeSet<usize>], target: usize) -> Vec<usize> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if seen.insert(i) {
            todo.extend(deps.get(i).into_iter().flatten().copied());
        }
    }
    seen.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn stages(src: &str) -> Stages {
        let df = crate::dockerfile::parse(src.as_bytes()).unwrap();
        Stages::from_dockerfile(&df).unwrap()
    }

    #[test]
    fn only_needed_stages() {
        let s = stages(
            "FROM scratch AS a\nFROM scratch AS b\nCOPY --from=a / /\nFROM scratch AS unused\nFROM b AS final\nCOPY --from=0 /x /y\n",
        );
        let args: BTreeMap<String, String> = BTreeMap::new();
        let deps = dependencies(&s, &Lexer::default(), &args);
        assert_eq!(needed(&deps, 3), vec![0, 1, 3]);
        assert_eq!(needed(&deps, 2), vec![2]);
    }

    #[test]
    fn run_mounts_from_a_stage_are_dependencies() {
        let s = stages(
            "FROM scratch AS a\nFROM scratch AS b\nRUN --mount=type=bind,from=a,target=/m true\n",
        );
        let deps = dependencies(&s, &Lexer::default(), &BTreeMap::<String, String>::new());
        assert_eq!(needed(&deps, 1), [0, 1]);
    }

    #[test]
    fn stages_run_on_through_bases_and_mounts() {
        let s = stages(
            "FROM scratch AS a\nFROM a AS b\nCOPY x /\nFROM b AS c\nRUN true\n\
             FROM scratch AS d\nFROM scratch AS e\nRUN --mount=type=bind,from=d,target=/m true\n\
             FROM scratch AS f\nFROM f AS g\nCOPY y /\n",
        );
        let args = BTreeMap::<String, String>::new();
        let all: Vec<usize> = (0..s.stages.len()).collect();
        let on = runs_on(&s, &Lexer::default(), &args, &all);
        // a and b lie below c's RUN; d is mounted; e, f, g run nothing on others.
        assert_eq!(on, [true, true, false, true, false, false, false]);
        // A stage the build does not need counts for nothing.
        let on = runs_on(&s, &Lexer::default(), &args, &[0, 1, 3, 4, 5, 6]);
        assert_eq!(on, [false, false, false, true, false, false, false]);
    }

    #[test]
    fn from_args_are_expanded() {
        let s = stages("ARG SRC=a\nFROM scratch AS a\nFROM scratch AS b\nCOPY --from=$SRC / /\n");
        let mut args = BTreeMap::new();
        args.insert("SRC".to_owned(), "a".to_owned());
        let deps = dependencies(&s, &Lexer::default(), &args);
        assert_eq!(needed(&deps, 1), vec![0, 1]);
    }
}
