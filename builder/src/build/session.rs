//! One build: parses and checks the Dockerfile, resolves the global build
//! arguments, schedules the needed stages on threads (each waits only for the
//! stages it reads), and assembles the target stage into an image.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use berth_runtime::layer::tree::LayerTree;
use berth_runtime::rootfs::{FsLayer, LayeredFs};
use berth_runtime::snapshot::{Snapshots, Staging};
use berth_runtime::store::{Digest, Store};

use super::stage::{StageBuilder, StageState};
use super::{BuildError, BuildOptions, BuildOutcome, Platform, assemble, graph};
use crate::cache::{BuildCache, LayerRef, StatCache};
use crate::context::IgnoreRules;
use crate::dockerfile::shell::Lexer;
use crate::dockerfile::{InstructionKind, Stages};
use crate::progress::{BuildEvent, Progress, StepId};

/// The default `PATH` BuildKit puts in a Linux image that has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What every stage of one build shares.
pub(crate) struct Session<'a> {
    pub store: &'a Store,
    pub snapshots: Snapshots,
    pub cache: BuildCache,
    pub stat: StatCache,
    pub options: &'a BuildOptions,
    pub progress: &'a dyn Progress,
    pub stages: Stages,
    pub lexer: Lexer,
    pub rules: IgnoreRules,
    /// Global scope: automatic platform args and the ARGs before FROM.
    pub global_args: BTreeMap<String, String>,
    pub platform: Platform,
    /// The build's clock: `SOURCE_DATE_EPOCH` or the start time.
    pub now: i64,
    results: Mutex<Vec<Slot>>,
    ready: Condvar,
    /// Set when a stage fails or the caller cancels: every stage stops.
    failed: Arc<AtomicBool>,
    next_step: AtomicUsize,
    /// Build args some ARG consumed (the rest are warned about).
    pub used_args: Mutex<BTreeSet<String>>,
    /// Layers this build laid out in memory, by diff ID: they stand in for
    /// snapshots that were never unpacked.
    trees: Mutex<HashMap<Digest, Arc<LayerTree>>>,
    /// Saved indexes of layers earlier builds laid out: metadata only.
    indexes: Mutex<HashMap<Digest, Arc<LayerTree>>>,
    /// Scratch directories whose files such layers read (downloads,
    /// unpacked archives); removed when the build ends.
    held: Mutex<Vec<Staging>>,
    /// Per stage: whether other stages run commands on its layers (see
    /// [`graph::runs_on`]).
    runs_on: Vec<bool>,
}

#[derive(Clone)]
enum Slot {
    Pending,
    Done(Arc<StageState>),
    Failed,
}

impl<'a> Session<'a> {
    pub fn run(
        store: &'a Store,
        options: &'a BuildOptions,
        progress: &'a dyn Progress,
    ) -> Result<BuildOutcome, BuildError> {
        let df = crate::dockerfile::parse(&options.dockerfile)
            .map_err(|e| BuildError::Dockerfile(vec![e]))?;
        let report = crate::dockerfile::check(&df);
        for w in &report.warnings {
            progress.event(BuildEvent::Message {
                text: format!("warning: Dockerfile:{}: {}", w.line, w.message),
            });
        }
        if !report.errors.is_empty() {
            return Err(BuildError::Dockerfile(report.errors));
        }
        let stages = Stages::from_dockerfile(&df).map_err(BuildError::Dockerfile)?;
        let lexer = Lexer::new(df.escape);

        let rules = IgnoreRules::load(&options.context_dir, options.dockerfile_path.as_deref())
            .map_err(|e| BuildError::Setup(e.to_string()))?;
        let snapshots = Snapshots::open(store).map_err(|e| BuildError::Setup(e.to_string()))?;
        let cache = BuildCache::open(store).map_err(|e| BuildError::Setup(e.to_string()))?;
        let stat = if options.no_cache {
            StatCache::ephemeral()
        } else {
            StatCache::load(&cache, &options.context_dir)
        };
        let platform = options.platform.clone().unwrap_or_else(Platform::host);
        let now = options
            .source_date_epoch
            .unwrap_or_else(crate::time::now_secs);

        let mut session = Session {
            store,
            snapshots,
            cache,
            stat,
            options,
            progress,
            results: Mutex::new(vec![Slot::Pending; stages.stages.len()]),
            stages,
            lexer,
            rules,
            global_args: BTreeMap::new(),
            platform,
            now,
            ready: Condvar::new(),
            failed: Arc::clone(&options.cancel),
            next_step: AtomicUsize::new(0),
            used_args: Mutex::new(BTreeSet::new()),
            trees: Mutex::new(HashMap::new()),
            indexes: Mutex::new(HashMap::new()),
            held: Mutex::new(Vec::new()),
            runs_on: Vec::new(),
        };
        session.global_args = session.resolve_global_args()?;

        let target = session.target_index()?;
        let deps = graph::dependencies(&session.stages, &session.lexer, &session.global_args);
        let needed = graph::needed(&deps, target);
        session.runs_on = graph::runs_on(
            &session.stages,
            &session.lexer,
            &session.global_args,
            &needed,
        );

        let outcome = std::thread::scope(|scope| {
            let session = &session;
            let handles: Vec<_> = needed
                .iter()
                .map(|&i| {
                    let my_deps: Vec<usize> = deps[i].iter().copied().collect();
                    scope.spawn(move || session.build_stage(i, &my_deps))
                })
                .collect();
            let mut first_error = None;
            for h in handles {
                let result = h.join().unwrap_or_else(|_| {
                    Err(BuildError::Setup(
                        "internal error: a build thread panicked".to_owned(),
                    ))
                });
                if let Err(e) = result {
                    // Keep the root cause, not the cancellations it caused.
                    if first_error.is_none() || matches!(first_error, Some(BuildError::Cancelled)) {
                        first_error = Some(e);
                    }
                }
            }
            match first_error {
                Some(e) => Err(e),
                None => Ok(()),
            }
        });
        session.stat.save();
        outcome?;

        session.warn_unused_args();
        let state = session.wait_for(target)?;
        let export_started = Instant::now();
        let step = session.step("exporting to image");
        let outcome = assemble::write_image(&session, &state)?;
        session.done(step, export_started.elapsed(), 0);
        Ok(outcome)
    }

    /// The global scope: automatic args, then the ARGs before the first
    /// FROM in order, each default expanded with what came before it.
    fn resolve_global_args(&self) -> Result<BTreeMap<String, String>, BuildError> {
        let mut args = BTreeMap::new();
        self.platform.args("TARGET", &mut args);
        Platform::host().args("BUILD", &mut args);
        for ins in &self.stages.global_args {
            let InstructionKind::Arg(decls) = &ins.kind else {
                continue;
            };
            for decl in decls {
                let value = match self.options.build_args.get(&decl.name) {
                    Some(v) => {
                        self.mark_used(&decl.name);
                        Some(v.clone())
                    }
                    None => match &decl.default {
                        Some(d) => Some(self.lexer.process_word(d, &args).map_err(|e| {
                            BuildError::at(ins.start_line, ins.end_line, e.to_string())
                        })?),
                        None => None,
                    },
                };
                if let Some(v) = value {
                    args.insert(decl.name.clone(), v);
                }
            }
        }
        Ok(args)
    }

    fn target_index(&self) -> Result<usize, BuildError> {
        let Some(target) = &self.options.target else {
            return Ok(self.stages.stages.len().saturating_sub(1));
        };
        self.stages
            .stages
            .iter()
            .find(|s| s.name() == Some(target.to_ascii_lowercase().as_str()))
            .map(|s| s.index)
            .ok_or_else(|| {
                let names: Vec<&str> = self.stages.stages.iter().filter_map(|s| s.name()).collect();
                let hint = match crate::dockerfile::suggest::closest(target, names.iter().copied())
                {
                    Some(n) => format!(" (did you mean {n}?)"),
                    None if names.is_empty() => {
                        " (the Dockerfile names no stages: add `AS name` to a FROM line)".to_owned()
                    }
                    None => format!(" (stages: {})", names.join(", ")),
                };
                BuildError::Setup(format!(
                    "target stage \"{target}\" could not be found{hint}"
                ))
            })
    }

    pub fn mark_used(&self, name: &str) {
        if let Ok(mut used) = self.used_args.lock() {
            used.insert(name.to_owned());
        }
    }

    fn warn_unused_args(&self) {
        let used = self.used_args.lock().map(|u| u.clone()).unwrap_or_default();
        let unused: Vec<&str> = self
            .options
            .build_args
            .keys()
            .filter(|k| !used.contains(*k) && !is_predefined_arg(k))
            .map(String::as_str)
            .collect();
        if !unused.is_empty() {
            self.progress.event(BuildEvent::Message {
                text: format!(
                    "warning: build-arg{} not consumed by any ARG: {}",
                    if unused.len() > 1 { "s" } else { "" },
                    unused.join(", ")
                ),
            });
        }
    }

    fn build_stage(&self, index: usize, deps: &[usize]) -> Result<(), BuildError> {
        let result = deps
            .iter()
            .try_for_each(|&d| self.wait_for(d).map(drop))
            .and_then(|()| StageBuilder::new(self, index).run());
        let slot = match &result {
            Ok(state) => Slot::Done(Arc::clone(state)),
            Err(_) => {
                self.failed.store(true, Ordering::SeqCst);
                Slot::Failed
            }
        };
        if let Ok(mut results) = self.results.lock() {
            results[index] = slot;
        }
        self.ready.notify_all();
        result.map(drop)
    }

    /// The finished state of stage `index`, waiting for it if it is still
    /// being built.
    pub fn wait_for(&self, index: usize) -> Result<Arc<StageState>, BuildError> {
        let mut results = self.results.lock().map_err(|_| BuildError::Cancelled)?;
        loop {
            match results.get(index) {
                Some(Slot::Done(state)) => return Ok(Arc::clone(state)),
                Some(Slot::Failed) | None => return Err(BuildError::Cancelled),
                Some(Slot::Pending) => {
                    results = self
                        .ready
                        .wait(results)
                        .map_err(|_| BuildError::Cancelled)?;
                }
            }
        }
    }

    /// Whether another stage failed or the build was cancelled (this one
    /// should stop).
    pub fn cancelled(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    /// The flag behind [`cancelled`](Self::cancelled), for work that polls
    /// it (a running sandbox).
    pub fn cancel_flag(&self) -> &AtomicBool {
        &self.failed
    }

    pub fn step(&self, name: impl Into<String>) -> StepId {
        let step = StepId(self.next_step.fetch_add(1, Ordering::SeqCst) + 1);
        self.progress.event(BuildEvent::Started {
            step,
            name: name.into(),
        });
        step
    }

    pub fn done(&self, step: StepId, duration: std::time::Duration, bytes: u64) {
        self.progress.event(BuildEvent::Done {
            step,
            duration,
            bytes,
        });
    }

    pub fn failed(&self, step: StepId, message: &str) {
        self.progress.event(BuildEvent::Failed {
            step,
            message: message.to_owned(),
        });
    }

    /// The merged filesystem of `layers`: their snapshots, or the in-memory
    /// layout of layers this build wrote, unpacking a snapshot only when a
    /// layer has neither.
    pub fn rootfs(&self, layers: &[LayerRef]) -> Result<LayeredFs, BuildError> {
        self.view(layers, false)
    }

    /// The metadata of `layers` as a merged view whose file contents may
    /// not be readable: enough to place new entries in a layer (which
    /// directories exist, their modes and owners, where symlinks lead).
    /// Layers an earlier build laid out answer from their saved index
    /// instead of being unpacked.
    pub fn layout_view(&self, layers: &[LayerRef]) -> Result<LayeredFs, BuildError> {
        self.view(layers, true)
    }

    fn view(&self, layers: &[LayerRef], indexes: bool) -> Result<LayeredFs, BuildError> {
        let mut out = Vec::with_capacity(layers.len());
        for layer in layers {
            if !self.snapshots.contains(&layer.diff_id)
                && let Some(tree) = self.tree_or_index(&layer.diff_id, indexes)?
            {
                out.push(FsLayer::Tree(tree));
                continue;
            }
            let dir = self
                .snapshots
                .ensure(self.store, &layer.descriptor, &layer.diff_id)
                .map_err(|e| BuildError::Setup(e.to_string()))?;
            out.push(FsLayer::Dir(dir));
        }
        Ok(LayeredFs::from_layers(out))
    }

    /// This build's layout of a layer, or (with `indexes`) the index an
    /// earlier build saved.
    fn tree_or_index(
        &self,
        diff_id: &Digest,
        indexes: bool,
    ) -> Result<Option<Arc<LayerTree>>, BuildError> {
        let poisoned = |_| BuildError::Cancelled;
        if let Some(tree) = self.trees.lock().map_err(poisoned)?.get(diff_id) {
            return Ok(Some(Arc::clone(tree)));
        }
        if !indexes {
            return Ok(None);
        }
        let mut indexes = self.indexes.lock().map_err(poisoned)?;
        if let Some(tree) = indexes.get(diff_id) {
            return Ok(Some(Arc::clone(tree)));
        }
        Ok(self.snapshots.load_index(diff_id).map(|tree| {
            let tree = Arc::new(tree);
            indexes.insert(*diff_id, Arc::clone(&tree));
            tree
        }))
    }

    /// Keeps the in-memory layout of a layer this build wrote, and saves
    /// its metadata for later builds (a failure to save only costs them an
    /// unpack).
    pub fn keep_tree(&self, diff_id: &Digest, tree: LayerTree) {
        if let Err(e) = self.snapshots.save_index(diff_id, &tree) {
            self.progress.event(BuildEvent::Message {
                text: format!("warning: {e}"),
            });
        }
        if let Ok(mut trees) = self.trees.lock() {
            trees.entry(*diff_id).or_insert_with(|| Arc::new(tree));
        }
    }

    /// Whether another stage of this build runs commands on the layers of
    /// stage `index` (so they are needed on disk).
    pub fn stage_runs_on(&self, index: usize) -> bool {
        self.runs_on.get(index).copied().unwrap_or(false)
    }

    /// Whether the layer `diff_id` holds hardlinks, from this build's
    /// layout of it or the index an earlier build saved; `None` if neither
    /// is there.
    pub fn layer_has_hardlinks(&self, diff_id: &Digest) -> Option<bool> {
        self.tree_or_index(diff_id, true)
            .ok()
            .flatten()
            .map(|tree| tree.has_hardlinks())
    }

    /// Keeps a scratch directory until the build ends.
    pub fn hold(&self, dir: Staging) {
        if let Ok(mut held) = self.held.lock() {
            held.push(dir);
        }
    }

    /// Whether steps of stage `name` must not be answered from the cache.
    pub fn skip_cache(&self, stage_name: Option<&str>, index: usize) -> bool {
        self.options.no_cache
            || self.options.no_cache_filter.iter().any(|f| {
                Some(f.to_ascii_lowercase().as_str()) == stage_name || f == &index.to_string()
            })
    }
}

/// Build args every build accepts without an ARG (proxies), so they are not
/// reported as unused.
fn is_predefined_arg(name: &str) -> bool {
    matches!(
        name.to_ascii_uppercase().as_str(),
        "HTTP_PROXY" | "HTTPS_PROXY" | "FTP_PROXY" | "NO_PROXY" | "ALL_PROXY"
    ) || name.starts_with("BUILDKIT_")
}

fn rootfs_with(
    store: &Store,
    snapshots: &Snapshots,
    layers: &[LayerRef],
) -> Result<LayeredFs, BuildError> {
    let mut dirs = Vec::with_capacity(layers.len());
    for layer in layers {
        let dir = snapshots
            .ensure(store, &layer.descriptor, &layer.diff_id)
            .map_err(|e| BuildError::Setup(e.to_string()))?;
        dirs.push(dir);
    }
    Ok(LayeredFs::new(dirs))
}

/// The merged filesystem of `layers` in `store` (for `--output type=local`).
pub(crate) fn rootfs_of(store: &Store, layers: &[LayerRef]) -> Result<LayeredFs, BuildError> {
    let snapshots = Snapshots::open(store).map_err(|e| BuildError::Setup(e.to_string()))?;
    rootfs_with(store, &snapshots, layers)
}
