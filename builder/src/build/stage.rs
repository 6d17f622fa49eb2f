//! Building one stage: its base (scratch, a local image or an earlier
//! stage), the base's ONBUILD triggers, then each instruction in order.
//! Metadata instructions change the image config and add an `empty_layer`
//! history entry; COPY, ADD and WORKDIR produce layers (see [`super::copy`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use berth_registry::reference::Reference;
use berth_runtime::image::ContainerConfig;
use berth_runtime::image::{HealthConfig, History, ImageConfig, load_image};

use super::BuildError;
use super::session::{DEFAULT_PATH, Session};
use crate::cache::{CacheKey, KeyBuilder, LayerRef};
use crate::dockerfile::instructions::{ArgDecl, CommandLine, Healthcheck, KeyValue};
use crate::dockerfile::shell::VarLookup;
use crate::dockerfile::{Instruction, InstructionKind};
use crate::progress::{BuildEvent, StepId};

/// The history comment BuildKit writes is `buildkit.dockerfile.v0`; ours
/// says who built the step.
pub const HISTORY_COMMENT: &str = "berth.dockerfile.v0";

/// A stage's image as built so far.
#[derive(Debug, Clone)]
pub struct StageState {
    pub config: ImageConfig,
    pub layers: Vec<LayerRef>,
}

impl StageState {
    /// The identity of the filesystem so far: its layers' diff IDs.
    pub fn chain_key(&self) -> CacheKey {
        let mut k = KeyBuilder::new("chain");
        for l in &self.layers {
            k.digest(&l.diff_id);
        }
        k.finish()
    }
}

pub(crate) struct StageBuilder<'s, 'a> {
    pub session: &'s Session<'a>,
    pub index: usize,
    pub state: StageState,
    /// ARGs declared in this stage, with their values.
    pub args: BTreeMap<String, String>,
    /// Whether this stage set CMD (ENTRYPOINT resets only an inherited one).
    cmd_set: bool,
    /// `[name i/n]` numbering of the steps shown.
    step_no: usize,
    step_total: usize,
    /// How many of the stage's instructions have started (ONBUILD
    /// triggers run before any).
    started: usize,
}

/// The variables a word sees: ARGs, overridden by ENV, as BuildKit does.
pub struct StageEnv<'e> {
    args: &'e BTreeMap<String, String>,
    env: Option<&'e Vec<String>>,
}

impl VarLookup for StageEnv<'_> {
    fn lookup(&self, name: &str) -> Option<&str> {
        let from_env = self.env.and_then(|env| {
            env.iter().rev().find_map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
                (k == name).then_some(v)
            })
        });
        from_env.or_else(|| self.args.get(name).map(String::as_str))
    }
}

impl<'s, 'a> StageBuilder<'s, 'a> {
    pub fn new(session: &'s Session<'a>, index: usize) -> StageBuilder<'s, 'a> {
        let stage = &session.stages.stages[index];
        let step_total = 1 + stage
            .instructions
            .iter()
            .filter(|i| {
                matches!(
                    i.kind,
                    InstructionKind::Copy(_)
                        | InstructionKind::Add(_)
                        | InstructionKind::Run(_)
                        | InstructionKind::Workdir(_)
                )
            })
            .count();
        StageBuilder {
            session,
            index,
            state: StageState {
                config: ImageConfig::default(),
                layers: Vec::new(),
            },
            args: BTreeMap::new(),
            cmd_set: false,
            step_no: 0,
            step_total,
            started: 0,
        }
    }

    /// Whether the layer the current step makes will be needed on disk,
    /// as a snapshot: a later RUN of this stage runs on it, or another
    /// stage runs commands on this one's layers.
    pub fn layer_needed_on_disk(&self) -> bool {
        let stage = &self.session.stages.stages[self.index];
        self.session.stage_runs_on(self.index)
            || stage
                .instructions
                .iter()
                .skip(self.started)
                .any(|i| matches!(i.kind, InstructionKind::Run(_)))
    }

    pub fn env(&self) -> StageEnv<'_> {
        StageEnv {
            args: &self.args,
            env: self.state.config.config.env.as_ref(),
        }
    }

    pub fn stage_name(&self) -> Option<&str> {
        self.session.stages.stages[self.index].name()
    }

    /// `[name 2/5] COPY …`, BuildKit's step label.
    pub fn step_label(&mut self, text: &str) -> String {
        self.step_no += 1;
        let name = self
            .stage_name()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("stage-{}", self.index));
        format!("[{name} {}/{}] {text}", self.step_no, self.step_total)
    }

    /// Whether this stage's steps bypass the cache.
    pub fn skip_cache(&self) -> bool {
        self.session.skip_cache(self.stage_name(), self.index)
    }

    /// Expands a word with the stage's variables.
    pub fn expand(&self, ins: &Instruction, word: &str) -> Result<String, BuildError> {
        self.session
            .lexer
            .process_word(word, &self.env())
            .map_err(|e| BuildError::at(ins.start_line, ins.end_line, e.to_string()))
    }

    /// Expands a word into fields (EXPOSE, VOLUME in shell form).
    fn expand_words(&self, ins: &Instruction, word: &str) -> Result<Vec<String>, BuildError> {
        self.session
            .lexer
            .process_words(word, &self.env())
            .map_err(|e| BuildError::at(ins.start_line, ins.end_line, e.to_string()))
    }

    /// Runs a step that shows as its own line: numbers and announces it,
    /// and reports its error as the step's failure.
    pub fn reported_step(
        &mut self,
        ins: &Instruction,
        body: impl FnOnce(&mut Self, StepId, &str, Instant) -> Result<(), BuildError>,
    ) -> Result<(), BuildError> {
        let started = Instant::now();
        let label = self.step_label(&ins.original);
        let step = self.session.step(label.clone());
        let result = body(self, step, &label, started);
        if let Err(e) = &result {
            self.progress(BuildEvent::Failed {
                step,
                message: e.render("Dockerfile"),
            });
        }
        result
    }

    pub fn created_now(&self) -> String {
        crate::time::rfc3339(self.session.now)
    }

    pub fn run(mut self) -> Result<Arc<StageState>, BuildError> {
        let stage = &self.session.stages.stages[self.index];
        let started = Instant::now();
        let from_text = format!("FROM {}", stage.from.image);
        let label = self.step_label(&from_text);
        let step = self.session.step(label);
        let triggers = self.start_from_base(stage.line)?;
        self.session.done(step, started.elapsed(), 0);

        for trigger in triggers {
            self.run_trigger(&trigger, stage.line)?;
        }
        for ins in &stage.instructions {
            if self.session.cancelled() {
                return Err(BuildError::Cancelled);
            }
            self.started += 1;
            self.dispatch(ins)?;
        }
        Ok(Arc::new(self.state))
    }

    /// Sets up the base image; returns its ONBUILD triggers.
    fn start_from_base(&mut self, line: usize) -> Result<Vec<String>, BuildError> {
        let session = self.session;
        let stage = &session.stages.stages[self.index];
        let at = |msg: String| BuildError::at(line, line, msg);
        let image = session
            .lexer
            .process_word(&stage.from.image, &session.global_args)
            .map_err(|e| at(e.to_string()))?;
        if image.is_empty() {
            return Err(at(format!(
                "FROM {}: the base image name is empty after expanding variables",
                stage.from.image
            ))
            .hint("set the ARG it uses before FROM, or pass --build-arg"));
        }
        let platform = match &stage.from.platform {
            Some(p) => {
                let text = session
                    .lexer
                    .process_word(p, &session.global_args)
                    .map_err(|e| at(e.to_string()))?;
                super::Platform::parse(&text).map_err(at)?
            }
            None => session.platform.clone(),
        };

        let mut config = if image.eq_ignore_ascii_case("scratch") {
            ImageConfig::default()
        } else if let Some(base) = session.stages.find(&image).filter(|s| s.index < self.index) {
            let state = session.wait_for(base.index)?;
            self.state.layers = state.layers.clone();
            state.config.clone()
        } else {
            let (config, layers) = load_local_image(session, &image, &platform).map_err(at)?;
            self.state.layers = layers;
            config
        };
        config.architecture = platform.architecture.clone();
        config.os = platform.os.clone();
        config.variant = platform.variant.clone();
        if config.env_value("PATH").is_none() && config.os == "linux" {
            config
                .config
                .env
                .get_or_insert_with(Vec::new)
                .insert(0, format!("PATH={DEFAULT_PATH}"));
        }
        let triggers = config.config.on_build.take().unwrap_or_default();
        self.state.config = config;
        Ok(triggers)
    }

    fn run_trigger(&mut self, trigger: &str, line: usize) -> Result<(), BuildError> {
        let df = crate::dockerfile::parse(trigger.as_bytes()).map_err(|e| {
            BuildError::at(
                line,
                line,
                format!(
                    "ONBUILD trigger \"{trigger}\" of the base image: {}",
                    e.message
                ),
            )
        })?;
        for node in &df.nodes {
            let mut ins = Instruction::from_node(node).map_err(|e| {
                BuildError::at(
                    line,
                    line,
                    format!(
                        "ONBUILD trigger \"{trigger}\" of the base image: {}",
                        e.message
                    ),
                )
            })?;
            // Triggers fail on the FROM line that pulled them in.
            ins.start_line = line;
            ins.end_line = line;
            if matches!(
                ins.kind,
                InstructionKind::From(_) | InstructionKind::Onbuild(_)
            ) {
                return Err(BuildError::at(
                    line,
                    line,
                    format!("ONBUILD trigger \"{trigger}\": FROM and ONBUILD cannot be triggers"),
                ));
            }
            self.dispatch(&ins)?;
        }
        Ok(())
    }

    /// Adds a history entry for a step that made no layer.
    fn metadata_history(&mut self, ins: &Instruction) {
        self.state.config.history.push(History {
            // Settled when the image is written (see assemble).
            created: None,
            created_by: Some(ins.original.clone()),
            comment: Some(HISTORY_COMMENT.to_owned()),
            empty_layer: true,
            author: None,
        });
    }

    /// Adds a layer (or, for `None`, an empty-layer history entry).
    pub fn commit_layer(&mut self, ins: &Instruction, layer: Option<LayerRef>, created: String) {
        let empty_layer = layer.is_none();
        if let Some(layer) = layer {
            self.state.config.rootfs.diff_ids.push(layer.diff_id);
            self.state.layers.push(layer);
        }
        self.state.config.history.push(History {
            created: Some(created).filter(|c| !c.is_empty()),
            created_by: Some(ins.original.clone()),
            comment: Some(HISTORY_COMMENT.to_owned()),
            empty_layer,
            author: None,
        });
    }

    fn dispatch(&mut self, ins: &Instruction) -> Result<(), BuildError> {
        match &ins.kind {
            InstructionKind::From(_) => Ok(()),
            InstructionKind::Run(run) => super::run::run_run(self, ins, run),
            InstructionKind::Copy(_) | InstructionKind::Add(_) => super::copy::run_copy(self, ins),
            InstructionKind::Workdir(path) => {
                let expanded = self.expand(ins, path)?;
                super::copy::run_workdir(self, ins, &expanded)
            }
            InstructionKind::Env(pairs) => {
                let expanded = self.expand_pairs(ins, pairs)?;
                let env = self.state.config.config.env.get_or_insert_with(Vec::new);
                for (k, v) in expanded {
                    set_env(env, &k, &v);
                }
                self.metadata_history(ins);
                Ok(())
            }
            InstructionKind::Label(pairs) => {
                let expanded = self.expand_pairs(ins, pairs)?;
                let labels = self
                    .state
                    .config
                    .config
                    .labels
                    .get_or_insert_with(BTreeMap::new);
                labels.extend(expanded);
                self.metadata_history(ins);
                Ok(())
            }
            InstructionKind::Arg(decls) => self.declare_args(ins, decls),
            InstructionKind::Expose(ports) => {
                let mut all = Vec::new();
                for p in ports {
                    for word in self.expand_words(ins, p)? {
                        all.extend(
                            expand_port(&word)
                                .map_err(|m| BuildError::at(ins.start_line, ins.end_line, m))?,
                        );
                    }
                }
                let set = self
                    .state
                    .config
                    .config
                    .exposed_ports
                    .get_or_insert_with(BTreeMap::new);
                for p in all {
                    set.insert(p, Default::default());
                }
                self.metadata_history(ins);
                Ok(())
            }
            InstructionKind::Volume(vols) => {
                let mut all = Vec::new();
                for v in vols {
                    let v = self.expand(ins, v)?;
                    if v.trim().is_empty() {
                        return Err(BuildError::at(
                            ins.start_line,
                            ins.end_line,
                            "VOLUME names an empty path",
                        )
                        .hint("give the mount point, e.g. VOLUME /data; check that the variables it uses are set"));
                    }
                    all.push(v);
                }
                let set = self
                    .state
                    .config
                    .config
                    .volumes
                    .get_or_insert_with(BTreeMap::new);
                for v in all {
                    set.insert(v, Default::default());
                }
                self.metadata_history(ins);
                Ok(())
            }
            InstructionKind::User(user) => {
                let user = self.expand(ins, user)?;
                self.state.config.config.user = Some(user);
                self.metadata_history(ins);
                Ok(())
            }
            InstructionKind::Shell(shell) => {
                self.state.config.config.shell = Some(shell.clone());
                self.metadata_history(ins);
                Ok(())
            }
            InstructionKind::StopSignal(sig) => {
                let sig = self.expand(ins, sig)?;
                self.state.config.config.stop_signal = Some(sig);
                self.metadata_history(ins);
                Ok(())
            }
            InstructionKind::Cmd(cmd) => {
                let cmd = self.command(cmd);
                self.state.config.config.cmd = Some(cmd);
                self.cmd_set = true;
                self.metadata_history(ins);
                Ok(())
            }
            InstructionKind::Entrypoint(ep) => {
                let ep = self.command(ep);
                self.state.config.config.entrypoint = Some(ep);
                if !self.cmd_set {
                    self.state.config.config.cmd = None;
                }
                self.metadata_history(ins);
                Ok(())
            }
            InstructionKind::Healthcheck(hc) => {
                self.state.config.config.healthcheck = Some(health_config(hc));
                self.metadata_history(ins);
                Ok(())
            }
            InstructionKind::Onbuild(inner) => {
                let trigger = inner.original.clone();
                self.state
                    .config
                    .config
                    .on_build
                    .get_or_insert_with(Vec::new)
                    .push(trigger);
                self.metadata_history(ins);
                Ok(())
            }
            InstructionKind::Maintainer(who) => {
                let who = self.expand(ins, who)?;
                self.state.config.author = Some(who);
                self.metadata_history(ins);
                Ok(())
            }
        }
    }

    /// Expands `KEY=VALUE` pairs, all against the variables from before the
    /// line (`ENV a=1 b=$a` sees the old `$a`).
    fn expand_pairs(
        &self,
        ins: &Instruction,
        pairs: &[KeyValue],
    ) -> Result<Vec<(String, String)>, BuildError> {
        pairs
            .iter()
            .map(|kv| Ok((self.expand(ins, &kv.key)?, self.expand(ins, &kv.value)?)))
            .collect()
    }

    fn declare_args(&mut self, ins: &Instruction, decls: &[ArgDecl]) -> Result<(), BuildError> {
        for decl in decls {
            let value = if let Some(v) = self.session.options.build_args.get(&decl.name) {
                self.session.mark_used(&decl.name);
                Some(v.clone())
            } else if let Some(default) = &decl.default {
                Some(self.expand(ins, default)?)
            } else {
                // A bare ARG inherits the global value (including the
                // automatic platform args).
                self.session.global_args.get(&decl.name).cloned()
            };
            match value {
                Some(v) => {
                    self.args.insert(decl.name.clone(), v);
                }
                None => {
                    self.args.remove(&decl.name);
                }
            }
        }
        Ok(())
    }

    /// CMD/ENTRYPOINT/HEALTHCHECK command: exec form as is, shell form
    /// wrapped in the stage's SHELL.
    fn command(&self, cmd: &CommandLine) -> Vec<String> {
        match cmd {
            CommandLine::Exec(args) => args.clone(),
            CommandLine::Shell(line) => {
                let mut argv = self.shell();
                argv.push(line.clone());
                argv
            }
        }
    }

    pub fn shell(&self) -> Vec<String> {
        self.state
            .config
            .config
            .shell
            .clone()
            .unwrap_or_else(|| vec!["/bin/sh".to_owned(), "-c".to_owned()])
    }

    /// The stage's working directory (`/` when unset).
    pub fn workdir(&self) -> String {
        self.state
            .config
            .config
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".to_owned())
    }

    pub fn config_mut(&mut self) -> &mut ContainerConfig {
        &mut self.state.config.config
    }

    pub fn progress(&self, event: BuildEvent) {
        self.session.progress.event(event);
    }
}

/// Sets `key=value` in an env list, in place when the key exists.
pub fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let entry = format!("{key}={value}");
    match env
        .iter_mut()
        .find(|kv| kv.split_once('=').map_or(kv.as_str(), |(k, _)| k) == key)
    {
        Some(slot) => *slot = entry,
        None => env.push(entry),
    }
}

fn health_config(hc: &Healthcheck) -> HealthConfig {
    let ns = |d: &Option<std::time::Duration>| {
        d.map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
    };
    match hc {
        Healthcheck::None => HealthConfig {
            test: vec!["NONE".to_owned()],
            ..HealthConfig::default()
        },
        Healthcheck::Check {
            test,
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
        } => HealthConfig {
            test: match test {
                CommandLine::Exec(args) => {
                    let mut t = vec!["CMD".to_owned()];
                    t.extend(args.iter().cloned());
                    t
                }
                CommandLine::Shell(line) => vec!["CMD-SHELL".to_owned(), line.clone()],
            },
            interval: ns(interval),
            timeout: ns(timeout),
            start_period: ns(start_period),
            start_interval: ns(start_interval),
            retries: retries.map_or(0, i64::from),
        },
    }
}

/// `80`, `80/udp`, `8000-8002/tcp` → `80/tcp`, … one entry per port.
fn expand_port(spec: &str) -> Result<Vec<String>, String> {
    let (ports, proto) = match spec.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (spec, "tcp".to_owned()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!(
            "invalid EXPOSE \"{spec}\": protocol must be tcp, udp or sctp"
        ));
    }
    // `ip:port` forms are accepted by Docker with the address ignored.
    let ports = ports.rsplit(':').next().unwrap_or(ports);
    let parse = |p: &str| {
        p.parse::<u16>().map_err(|_| {
            format!("invalid EXPOSE \"{spec}\": \"{p}\" is not a port number (0-65535)")
        })
    };
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => {
            let p = parse(ports)?;
            (p, p)
        }
    };
    if hi < lo {
        return Err(format!(
            "invalid EXPOSE \"{spec}\": the range ends before it starts"
        ));
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

/// Reads a local image for FROM or COPY --from: by name (default tag
/// `latest`) or by digest.
pub(crate) fn load_local_image(
    session: &Session<'_>,
    image: &str,
    platform: &super::Platform,
) -> Result<(ImageConfig, Vec<LayerRef>), String> {
    let reference = Reference::parse(image).map_err(|e| e.to_string())?;
    let reference = if reference.digest().is_some() {
        reference
    } else {
        reference.with_default_tag()
    };
    let store = session.store;
    if let Some(client) = &session.options.registry {
        let local = store.resolve(&reference.to_string()).ok().flatten();
        if local.is_none() || session.options.pull {
            pull_image(session, client, &reference, platform)?;
        }
    }
    let found = match reference.digest() {
        Some(d) => {
            let digest = berth_runtime::store::Digest::parse(d).map_err(|e| e.to_string())?;
            let by_name = store.resolve(&reference.to_string()).ok().flatten();
            match by_name {
                Some(desc) => Some(desc),
                None if store.has_blob(&digest).unwrap_or(false) => {
                    let size = store.blob_size(&digest).map_err(|e| e.to_string())?;
                    let media_type = peek_media_type(session, &digest);
                    Some(berth_runtime::store::Descriptor::new(
                        media_type, digest, size,
                    ))
                }
                None => None,
            }
        }
        None => store
            .resolve(&reference.to_string())
            .map_err(|e| e.to_string())?,
    };
    let Some(desc) = found else {
        return Err(format!(
            "{image}: image not found in the local store (build it with `berth build -t {}` first; `berth images` lists what is there)",
            reference.familiar()
        ));
    };
    let img = load_image(
        store,
        &desc,
        Some((platform.os.as_str(), platform.architecture.as_str())),
    )
    .or_else(|_| load_image(store, &desc, None))
    .map_err(|e| format!("{image}: {e}"))?;
    let layers: Vec<LayerRef> = img
        .manifest
        .layers
        .iter()
        .zip(img.config.rootfs.diff_ids.iter())
        .map(|(d, id)| LayerRef {
            descriptor: d.clone(),
            diff_id: *id,
        })
        .collect();
    if layers.len() != img.manifest.layers.len() || layers.len() != img.config.rootfs.diff_ids.len()
    {
        return Err(format!(
            "{image}: its manifest lists {} layers but its config {} diff IDs (the image is damaged: build or pull it again)",
            img.manifest.layers.len(),
            img.config.rootfs.diff_ids.len()
        ));
    }
    Ok((img.config, layers))
}

/// Pulls `reference` for a FROM or `--from`, reported as its own step.
fn pull_image(
    session: &Session<'_>,
    client: &berth_registry::Client,
    reference: &Reference,
    platform: &super::Platform,
) -> Result<(), String> {
    use crate::transfer::{PullOptions, TransferEvent, TransferProgress};

    /// Counts the bytes a pull moves for the step's report.
    struct Bytes(std::sync::atomic::AtomicU64);
    impl TransferProgress for Bytes {
        fn event(&self, event: TransferEvent) {
            if let TransferEvent::Bytes { n } = event {
                self.0.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    let started = std::time::Instant::now();
    let step = session.step(format!("[internal] pull {reference}"));
    let counter = Bytes(std::sync::atomic::AtomicU64::new(0));
    let options = PullOptions {
        platform: Some(platform.clone()),
    };
    match crate::transfer::pull(session.store, client, reference, &options, &counter) {
        Ok(_) => {
            let bytes = counter.0.load(std::sync::atomic::Ordering::Relaxed);
            session.done(step, started.elapsed(), bytes);
            Ok(())
        }
        Err(e) => {
            let message = format!("pull {}: {e}", reference.familiar());
            session.failed(step, &message);
            Err(message)
        }
    }
}

fn peek_media_type(session: &Session<'_>, digest: &berth_runtime::store::Digest) -> String {
    session
        .store
        .read_json::<serde_json::Value>(digest)
        .ok()
        .and_then(|v| {
            v.get("mediaType")
                .and_then(|m| m.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| berth_runtime::store::media::OCI_IMAGE_MANIFEST.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(expand_port("80").unwrap(), vec!["80/tcp"]);
        assert_eq!(expand_port("53/UDP").unwrap(), vec!["53/udp"]);
        assert_eq!(expand_port("8000-8002").unwrap().len(), 3);
        assert!(expand_port("80/http").is_err());
        assert!(expand_port("x").is_err());
    }

    #[test]
    fn env_replaces_in_place() {
        let mut env = vec!["PATH=/bin".to_owned(), "A=1".to_owned()];
        set_env(&mut env, "PATH", "/usr/bin");
        set_env(&mut env, "B", "2");
        assert_eq!(env, vec!["PATH=/usr/bin", "A=1", "B=2"]);
    }
}
