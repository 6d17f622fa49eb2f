//! RUN: runs a command in the namespaced sandbox (`berth_runtime::sandbox`)
//! on an overlay of the stage's layers, and turns what it changed (the
//! overlay's upper directory) into the next layer, which then is that
//! layer's snapshot as it stands: overlay whiteouts and all.
//!
//! Owns the RUN cache key (parent chain, command, the environment and user
//! it runs with, its network and security mode, and its mounts' identities:
//! cache mounts by id, bind mounts by content, secrets never), and the
//! `--mount` types: `cache` (kept under the store), `secret`, `bind` (the
//! context or a stage, read-only unless `rw`) and `tmpfs`.

use std::collections::VecDeque;
use std::fs::{self, DirBuilder, File};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use berth_runtime::layer::writer::{EMPTY_TAR_DIFF_ID, LayerOptions, write_layer};
use berth_runtime::sandbox::{
    ExitStatus, Mount, Network, Rootfs, Sandbox, SandboxError, SandboxSpec, Stream,
};
use berth_runtime::snapshot::Staging;
use rustix::fs::FlockOperation;

use super::BuildError;
use super::stage::StageBuilder;
use crate::cache::{CacheRecord, KeyBuilder, LayerRef};
use crate::context::{resolve_source_with_rules, walk};
use crate::dockerfile::Instruction;
use crate::dockerfile::heredoc::chomp;
use crate::dockerfile::instructions::{CommandLine, Run};
use crate::progress::{BuildEvent, StepId};

/// Hostname inside RUN steps, as BuildKit sets it.
const HOSTNAME: &str = "buildkitsandbox";
/// Output lines kept to show when a step fails.
const TAIL_LINES: usize = 12;

/// A `--secret` given to the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
}

/// One `--mount` of a RUN, parsed.
struct MountSpec {
    kind: String,
    target: String,
    source: Option<String>,
    from: Option<String>,
    id: Option<String>,
    sharing: String,
    readwrite: bool,
    required: bool,
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    size: Option<u64>,
}

/// What must live until the sandbox has finished: scratch directories and
/// the locks of cache mounts.
#[derive(Default)]
struct Held {
    dirs: Vec<Staging>,
    locks: Vec<File>,
}

pub(crate) fn run_run(
    sb: &mut StageBuilder<'_, '_>,
    ins: &Instruction,
    run: &Run,
) -> Result<(), BuildError> {
    sb.reported_step(ins, |sb, step, label, started| {
        run_step(sb, ins, run, step, label, started)
    })
}

fn run_step(
    sb: &mut StageBuilder<'_, '_>,
    ins: &Instruction,
    run: &Run,
    step: StepId,
    step_text: &str,
    started: Instant,
) -> Result<(), BuildError> {
    let fail = |msg: String| BuildError::at(ins.start_line, ins.end_line, msg);
    let session = sb.session;
    let Some(init_exe) = session.options.init_exe.clone() else {
        return Err(fail(
            "RUN needs the berth executable to start its sandbox".into(),
        ));
    };
    let mut held = Held::default();
    let (argv, script_mount) = command_argv(sb, run, &mut held)?;
    let env = run_env(sb);
    let user = sb.state.config.config.user.clone().unwrap_or_default();
    let cwd = sb.workdir();
    let network = match run
        .network
        .as_deref()
        .map(|n| sb.expand(ins, n))
        .transpose()?
    {
        None => Network::Host,
        Some(n) => match n.as_str() {
            "default" | "host" => Network::Host,
            "none" => Network::None,
            other => {
                return Err(fail(format!(
                    "RUN --network={other}: use default, none or host"
                )));
            }
        },
    };
    let insecure = run.security.as_deref() == Some("insecure");
    if insecure && !session.options.allow_insecure {
        return Err(fail(
            "RUN --security=insecure is not allowed: pass `berth build --allow security.insecure` to allow it".into(),
        ));
    }

    let mut mounts = Vec::new();
    for m in &run.mounts {
        let expanded = sb.expand(ins, m)?;
        mounts.push(parse_mount(&expanded).map_err(fail)?);
    }

    let mut key = KeyBuilder::new("RUN");
    key.key(&sb.state.chain_key());
    for a in &argv {
        key.str(a);
    }
    key.u64(env.len() as u64);
    for e in &env {
        key.str(e);
    }
    key.str(&user)
        .str(&cwd)
        .str(match network {
            Network::Host => "host",
            Network::None => "none",
        })
        .u64(u64::from(insecure));
    let mut sandbox_mounts: Vec<Mount> = script_mount.into_iter().collect();
    for m in &mounts {
        let mount = prepare_mount(sb, m, &mut key, &mut held).map_err(fail)?;
        sandbox_mounts.extend(mount);
    }
    let key = key.finish();

    if !sb.skip_cache()
        && let Some(record) = session.cache.get(session.store, &key)
    {
        sb.progress(BuildEvent::Cached { step });
        let layer = (record.layer.diff_id != EMPTY_TAR_DIFF_ID).then_some(record.layer);
        sb.commit_layer(ins, layer, record.created);
        session.done(step, started.elapsed(), 0);
        return Ok(());
    }

    // The overlay's lower layers, top first; each unpacked once.
    let mut lower = Vec::with_capacity(sb.state.layers.len());
    for layer in sb.state.layers.iter().rev() {
        lower.push(
            session
                .snapshots
                .ensure(session.store, &layer.descriptor, &layer.diff_id)
                .map_err(|e| BuildError::Setup(e.to_string()))?,
        );
    }
    let stage_dir = || {
        session
            .snapshots
            .stage()
            .map_err(|e| BuildError::Setup(e.to_string()))
    };
    let upper = stage_dir()?;
    let work = stage_dir()?;
    let etc = stage_dir()?;
    let hosts = etc.path().join("hosts");
    fs::write(
        &hosts,
        format!("127.0.0.1\tlocalhost {HOSTNAME}\n::1\tlocalhost ip6-localhost ip6-loopback\n"),
    )
    .map_err(|e| BuildError::Setup(format!("cannot write {}: {e}", hosts.display())))?;
    let resolv = Path::new("/etc/resolv.conf");

    let spec = SandboxSpec {
        rootfs: Rootfs::Overlay {
            lower,
            upper: upper.path().to_path_buf(),
            work: work.path().to_path_buf(),
        },
        args: argv.clone(),
        env,
        cwd,
        user,
        hostname: HOSTNAME.to_owned(),
        network,
        mounts: sandbox_mounts,
        hosts_file: Some(hosts),
        resolv_conf: resolv.is_file().then(|| resolv.to_path_buf()),
        insecure,
    };

    let mut tail: VecDeque<String> = VecDeque::new();
    let mut partial: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut on_output = |stream: Stream, data: &[u8]| {
        let buf = &mut partial[matches!(stream, Stream::Stderr) as usize];
        buf.extend_from_slice(data);
        while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            emit_line(sb, step, &mut tail, line);
        }
    };
    let status = Sandbox::new(init_exe).run(&spec, &mut on_output, session.cancel_flag());
    for buf in &mut partial {
        if !buf.is_empty() {
            let line = String::from_utf8_lossy(buf).into_owned();
            buf.clear();
            emit_line(sb, step, &mut tail, line);
        }
    }
    drop(held);
    drop(work);
    drop(etc);
    let status = match status {
        Ok(status) => status,
        Err(SandboxError::Cancelled) => return Err(BuildError::Cancelled),
        Err(e @ SandboxError::Setup { .. }) if e.to_string().starts_with("exec ") => {
            return Err(fail(format!("RUN failed: {e}")).hint(
                "the program is not in the image: install it in an earlier step, or check SHELL; the shell form runs /bin/sh -c unless SHELL says otherwise",
            ));
        }
        Err(e) => return Err(fail(format!("RUN failed: {e}"))),
    };
    if status != ExitStatus::Code(0) {
        let how = match status {
            ExitStatus::Code(c) => format!("exit code {c}"),
            ExitStatus::Signal(s) => format!("killed by signal {s}"),
        };
        let numbering = step_text
            .split_once(']')
            .and_then(|(n, _)| n.rsplit(' ').next())
            .unwrap_or("");
        let mut msg = format!(
            "RUN step {numbering} failed ({how}): {}",
            argv.last().map(String::as_str).unwrap_or_default()
        );
        if !tail.is_empty() {
            msg.push_str("\nlast output:");
            for line in &tail {
                msg.push_str("\n  ");
                msg.push_str(line);
            }
        }
        return Err(fail(msg));
    }

    let layer = write_layer(
        session.store,
        upper.path(),
        &LayerOptions {
            compression: session.options.compression,
            source_date_epoch: session.options.source_date_epoch,
            overlay_whiteouts: true,
        },
        &|bytes| sb.progress(BuildEvent::Bytes { step, bytes }),
    )
    .map_err(|e| fail(format!("RUN failed: cannot write its layer: {e}")))?;
    let layer_ref = LayerRef {
        descriptor: layer.descriptor,
        diff_id: layer.diff_id,
    };
    let created = sb.created_now();
    if let Err(e) = session.cache.put(
        &key,
        &CacheRecord {
            layer: layer_ref.clone(),
            created: created.clone(),
        },
    ) {
        sb.progress(BuildEvent::Message {
            text: format!("warning: cannot save a build cache record: {e}"),
        });
    }
    if layer.diff_id == EMPTY_TAR_DIFF_ID {
        // Nothing changed: no layer, as BuildKit exports it.
        sb.commit_layer(ins, None, created);
    } else {
        // The upper directory is already in snapshot form.
        upper
            .commit(&layer.diff_id)
            .map_err(|e| BuildError::Setup(e.to_string()))?;
        sb.commit_layer(ins, Some(layer_ref), created);
    }
    session.done(step, started.elapsed(), layer.uncompressed_size);
    Ok(())
}

fn emit_line(sb: &StageBuilder<'_, '_>, step: StepId, tail: &mut VecDeque<String>, line: String) {
    if tail.len() == TAIL_LINES {
        tail.pop_front();
    }
    tail.push_back(line.clone());
    sb.progress(BuildEvent::Log { step, line });
}

/// The argv of a RUN: exec form as written; shell form through SHELL (the
/// shell expands variables itself, from the environment). A shell form
/// whose whole command is one heredoc runs the heredoc as the script; a
/// heredoc starting with `#!` runs with that interpreter, as BuildKit does.
/// Other heredocs are handed to the shell with the command, which reads
/// them as shell heredocs.
fn command_argv(
    sb: &StageBuilder<'_, '_>,
    run: &Run,
    held: &mut Held,
) -> Result<(Vec<String>, Option<Mount>), BuildError> {
    let shell = sb.shell();
    let script = match &run.command {
        CommandLine::Exec(argv) => return Ok((argv.clone(), None)),
        CommandLine::Shell(cmd) => cmd.clone(),
    };
    let only_heredoc = run.heredocs.len() == 1 && {
        let word = script.trim();
        word.starts_with("<<") && !word.contains(char::is_whitespace)
    };
    if let (true, Some(doc)) = (only_heredoc, run.heredocs.first()) {
        let body = if doc.chomp {
            chomp(&doc.content)
        } else {
            doc.content.clone()
        };
        if let Some(first) = body.lines().next()
            && let Some(interp) = first.strip_prefix("#!")
        {
            // The script goes in a file the interpreter reads: bound in
            // read-only under /dev, which leaves no trace in the layer.
            let dir = sb
                .session
                .snapshots
                .stage()
                .map_err(|e| BuildError::Setup(e.to_string()))?;
            let path = dir.path().join("script");
            fs::write(&path, &body)
                .and_then(|()| fs::set_permissions(&path, fs::Permissions::from_mode(0o644)))
                .map_err(|e| BuildError::Setup(format!("cannot write the heredoc script: {e}")))?;
            held.dirs.push(dir);
            let mut argv: Vec<String> = interp.split_whitespace().map(str::to_owned).collect();
            argv.push(HEREDOC_SCRIPT.to_owned());
            let mount = Mount::Bind {
                source: path,
                target: HEREDOC_SCRIPT.to_owned(),
                readonly: true,
            };
            return Ok((argv, Some(mount)));
        }
        let mut argv = shell;
        argv.push(body);
        return Ok((argv, None));
    }
    let mut full = script;
    for doc in &run.heredocs {
        full.push('\n');
        full.push_str(&doc.content);
        full.push_str(&doc.name);
    }
    let mut argv = shell;
    argv.push(full);
    Ok((argv, None))
}

/// Where a `#!` heredoc script is bound inside the sandbox: under /dev,
/// which is the sandbox's own tmpfs, so the mount point leaves no trace.
const HEREDOC_SCRIPT: &str = "/dev/.berth-heredoc";

/// The environment of a RUN: the image's ENV, then the stage's ARGs that
/// ENV does not set, as BuildKit passes them.
fn run_env(sb: &StageBuilder<'_, '_>) -> Vec<String> {
    let mut env = sb.state.config.config.env.clone().unwrap_or_default();
    for (name, value) in &sb.args {
        let set = env
            .iter()
            .any(|kv| kv.split_once('=').map_or(kv.as_str(), |(k, _)| k) == name);
        if !set {
            env.push(format!("{name}={value}"));
        }
    }
    env
}

fn parse_mount(spec: &str) -> Result<MountSpec, String> {
    let mut m = MountSpec {
        kind: "bind".to_owned(),
        target: String::new(),
        source: None,
        from: None,
        id: None,
        sharing: "shared".to_owned(),
        readwrite: false,
        required: false,
        mode: None,
        uid: None,
        gid: None,
        size: None,
    };
    let number = |key: &str, v: &str, radix: u32| {
        u32::from_str_radix(v, radix)
            .map_err(|_| format!("invalid {key}={v} in --mount={spec}: use a number"))
    };
    let boolean = |v: Option<&str>| !matches!(v, Some("false" | "0"));
    for field in spec.split(',') {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let v = value.unwrap_or("");
        match key.as_str() {
            "type" => m.kind = v.to_owned(),
            "target" | "dst" | "destination" => m.target = v.to_owned(),
            "source" | "src" => m.source = Some(v.to_owned()),
            "from" => m.from = Some(v.to_owned()),
            "id" => m.id = Some(v.to_owned()),
            "sharing" => m.sharing = v.to_owned(),
            "readonly" | "ro" => m.readwrite = !boolean(value),
            "readwrite" | "rw" => m.readwrite = boolean(value),
            "required" => m.required = boolean(value),
            "mode" => m.mode = Some(number("mode", v, 8)?),
            "uid" => m.uid = Some(number("uid", v, 10)?),
            "gid" => m.gid = Some(number("gid", v, 10)?),
            "size" => {
                m.size = Some(parse_size(v).ok_or_else(|| {
                    format!(
                        "invalid size={v} in --mount={spec}: use bytes, or a number with k, m or g"
                    )
                })?)
            }
            "env" => {
                return Err(format!(
                    "--mount={spec}: secrets as environment variables (env=) are not supported yet; mount the secret as a file"
                ));
            }
            _ => {}
        }
    }
    if m.kind == "ssh" {
        return Err(format!(
            "--mount={spec}: SSH agent forwarding is not supported yet"
        ));
    }
    if m.target.is_empty() && m.kind == "secret" {
        let id =
            m.id.clone()
                .or_else(|| m.source.clone())
                .unwrap_or_default();
        if id.is_empty() {
            return Err(format!("--mount={spec}: a secret needs id= or target="));
        }
        m.target = format!("/run/secrets/{id}");
    }
    if !m.target.starts_with('/') && !m.target.is_empty() {
        m.target = format!("/{}", m.target);
    }
    Ok(m)
}

/// `512m`, `1g`, `4096`: a size in bytes, binary multiples.
fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, ""),
    };
    let n: u64 = digits.parse().ok()?;
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        _ => return None,
    };
    n.checked_mul(1 << shift)
}

/// Turns one `--mount` into the sandbox's mounts, adding its identity to
/// the cache key: cache mounts by id, bind mounts by what they show,
/// tmpfs by target; secrets only by id and target, never their content.
fn prepare_mount(
    sb: &StageBuilder<'_, '_>,
    m: &MountSpec,
    key: &mut KeyBuilder,
    held: &mut Held,
) -> Result<Option<Mount>, String> {
    let session = sb.session;
    key.str("mount").str(&m.kind).str(&m.target);
    match m.kind.as_str() {
        "tmpfs" => {
            key.u64(m.size.unwrap_or(0));
            Ok(Some(Mount::Tmpfs {
                target: m.target.clone(),
                size: m.size,
                mode: m.mode,
            }))
        }
        "secret" => {
            let id =
                m.id.clone()
                    .or_else(|| m.target.rsplit('/').next().map(str::to_owned))
                    .unwrap_or_default();
            key.str(&id);
            let Some(source) = session.options.secrets.get(&id) else {
                if m.required {
                    return Err(format!(
                        "secret \"{id}\" is required but was not given: pass `berth build --secret id={id},src=FILE`"
                    ));
                }
                return Ok(None);
            };
            let value = match source {
                SecretSource::File(p) => fs::read(p).map_err(|e| {
                    format!("cannot read secret \"{id}\" from {}: {e}", p.display())
                })?,
                SecretSource::Env(var) => std::env::var_os(var)
                    .ok_or_else(|| {
                        format!("secret \"{id}\": environment variable {var} is not set")
                    })?
                    .into_encoded_bytes(),
            };
            // A private copy with the mode and owner the mount asks for, in
            // the store's root-only snapshot area; removed after the step.
            let dir = session.snapshots.stage().map_err(|e| e.to_string())?;
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700))
                .map_err(|e| e.to_string())?;
            let path = dir.path().join("secret");
            let written = File::create(&path)
                .and_then(|mut f| f.write_all(&value))
                .and_then(|()| {
                    std::os::unix::fs::chown(
                        &path,
                        Some(m.uid.unwrap_or(0)),
                        Some(m.gid.unwrap_or(0)),
                    )
                })
                .and_then(|()| {
                    fs::set_permissions(&path, fs::Permissions::from_mode(m.mode.unwrap_or(0o400)))
                });
            written.map_err(|e| format!("cannot prepare secret \"{id}\": {e}"))?;
            held.dirs.push(dir);
            Ok(Some(Mount::Bind {
                source: path,
                target: m.target.clone(),
                readonly: true,
            }))
        }
        "cache" => {
            let id = m.id.clone().unwrap_or_else(|| m.target.clone());
            key.str(&id).str(&m.sharing);
            if m.from.is_some() {
                return Err(format!(
                    "cache mount {id}: from= (seeding a cache from a stage) is not supported yet"
                ));
            }
            let dir = cache_mount_dir(sb, &id, m, held)?;
            Ok(Some(Mount::Bind {
                source: dir,
                target: m.target.clone(),
                readonly: false,
            }))
        }
        "bind" => {
            let source = m.source.clone().unwrap_or_else(|| "/".to_owned());
            key.str(&source).u64(u64::from(m.readwrite));
            match &m.from {
                None => bind_context(sb, &source, m, key, held),
                Some(from) => bind_stage(sb, from, &source, m, key, held),
            }
        }
        other => Err(format!("unsupported mount type {other}")),
    }
}

/// A cache mount's directory under `<store>/cache-mounts/`, created with
/// the mount's owner and mode, and locked as its `sharing` says.
fn cache_mount_dir(
    sb: &StageBuilder<'_, '_>,
    id: &str,
    m: &MountSpec,
    held: &mut Held,
) -> Result<PathBuf, String> {
    let base = sb.session.store.root().join("cache-mounts");
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&base)
        .map_err(|e| format!("cannot create {}: {e}", base.display()))?;
    let name = berth_runtime::store::Digest::of(id.as_bytes()).hex();
    let dir = base.join(&name);
    let lock_path = base.join(format!("{name}.lock"));
    let lock =
        File::create(&lock_path).map_err(|e| format!("cannot lock cache mount {id}: {e}"))?;
    let dir = match m.sharing.as_str() {
        "locked" => {
            rustix::fs::flock(&lock, FlockOperation::LockExclusive)
                .map_err(|e| format!("cannot lock cache mount {id}: {e}"))?;
            held.locks.push(lock);
            dir
        }
        "private" => {
            if rustix::fs::flock(&lock, FlockOperation::NonBlockingLockExclusive).is_ok() {
                held.locks.push(lock);
                dir
            } else {
                // In use: this step gets a fresh directory of its own.
                let scratch = sb.session.snapshots.stage().map_err(|e| e.to_string())?;
                let path = scratch.path().to_path_buf();
                held.dirs.push(scratch);
                return Ok(path);
            }
        }
        _ => {
            // Shared: others may use it at once; the shared lock only
            // keeps a private user from taking it meanwhile.
            rustix::fs::flock(&lock, FlockOperation::LockShared)
                .map_err(|e| format!("cannot lock cache mount {id}: {e}"))?;
            held.locks.push(lock);
            dir
        }
    };
    if !dir.is_dir() {
        fs::create_dir(&dir).map_err(|e| format!("cannot create cache mount {id}: {e}"))?;
        std::os::unix::fs::chown(&dir, Some(m.uid.unwrap_or(0)), Some(m.gid.unwrap_or(0)))
            .and_then(|()| {
                fs::set_permissions(&dir, fs::Permissions::from_mode(m.mode.unwrap_or(0o755)))
            })
            .map_err(|e| format!("cannot set up cache mount {id}: {e}"))?;
    }
    Ok(dir)
}

/// `--mount=type=bind` from the build context: the context directory
/// bound in (read-only unless `rw`, when writes go to a throwaway
/// overlay), keyed by the content of what it shows.
fn bind_context(
    sb: &StageBuilder<'_, '_>,
    source: &str,
    m: &MountSpec,
    key: &mut KeyBuilder,
    held: &mut Held,
) -> Result<Option<Mount>, String> {
    let session = sb.session;
    let ctx = &session.options.context_dir;
    let found = resolve_source_with_rules(ctx, source.trim_start_matches('/'), &session.rules)
        .map_err(|e| format!("bind mount source {source}: {e}"))?;
    let [sp] = found.as_slice() else {
        return Err(format!(
            "bind mount source {source} must name exactly one file or directory"
        ));
    };
    let meta =
        fs::metadata(&sp.host_path).map_err(|e| format!("bind mount source {source}: {e}"))?;
    if !meta.is_dir() {
        let digest = session
            .stat
            .digest(&sp.resolved_rel, &sp.host_path, &meta)
            .map_err(|e| format!("bind mount source {source}: {e}"))?;
        key.digest(&digest);
        return Ok(Some(Mount::Bind {
            source: sp.host_path.clone(),
            target: m.target.clone(),
            readonly: !m.readwrite,
        }));
    }
    // What the context shows of the directory: `.dockerignore`d entries
    // are neither keyed nor visible, as BuildKit sends them nowhere.
    let prefix = sp.resolved_rel.trim_matches('/').trim_start_matches("./");
    let prefix = if prefix == "." { "" } else { prefix };
    let visible: Vec<_> = walk(ctx, &session.rules)
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter_map(|entry| {
            let rel = if prefix.is_empty() {
                entry.rel_path.clone()
            } else {
                entry
                    .rel_path
                    .strip_prefix(prefix)?
                    .strip_prefix('/')?
                    .to_owned()
            };
            Some((rel, entry))
        })
        .collect();
    for (rel, entry) in &visible {
        key.str(rel).u64(u64::from(entry.metadata.mode()));
        if entry.metadata.is_file() {
            let digest = session
                .stat
                .digest(&entry.rel_path, &ctx.join(&entry.rel_path), &entry.metadata)
                .map_err(|e| format!("bind mount source {source}: {}: {e}", entry.rel_path))?;
            key.digest(&digest);
        }
    }
    let hidden = hidden_entries(&sp.host_path, &visible)
        .map_err(|e| format!("bind mount source {source}: {e}"))?;
    let mut lower = vec![sp.host_path.clone()];
    if !hidden.is_empty() {
        // An overlay whose top layer whites the hidden entries out.
        let veil = session.snapshots.stage().map_err(|e| e.to_string())?;
        for rel in &hidden {
            let path = veil.path().join(rel);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)
                    .map_err(|e| format!("cannot hide {rel} from the bind mount: {e}"))?;
            }
            rustix::fs::mknodat(
                rustix::fs::CWD,
                &path,
                rustix::fs::FileType::CharacterDevice,
                rustix::fs::Mode::empty(),
                0,
            )
            .map_err(|e| format!("cannot hide {rel} from the bind mount: {e}"))?;
        }
        lower.insert(0, veil.path().to_path_buf());
        held.dirs.push(veil);
    }
    if m.readwrite {
        let scratch = session.snapshots.stage().map_err(|e| e.to_string())?;
        let mount = Mount::Overlay {
            lower,
            target: m.target.clone(),
            scratch: Some(scratch.path().to_path_buf()),
        };
        held.dirs.push(scratch);
        return Ok(Some(mount));
    }
    if lower.len() > 1 {
        return Ok(Some(Mount::Overlay {
            lower,
            target: m.target.clone(),
            scratch: None,
        }));
    }
    Ok(Some(Mount::Bind {
        source: sp.host_path.clone(),
        target: m.target.clone(),
        readonly: true,
    }))
}

/// Entries of `dir` that are not in `visible` (paths relative to `dir`)
/// while their parent is: the tops of what the ignore rules hide.
fn hidden_entries(
    dir: &std::path::Path,
    visible: &[(String, crate::context::ContextEntry)],
) -> std::io::Result<Vec<String>> {
    let shown: std::collections::BTreeSet<&str> = visible.iter().map(|(r, _)| r.as_str()).collect();
    let mut dirs: Vec<&str> = vec![""];
    dirs.extend(
        visible
            .iter()
            .filter(|(_, e)| e.metadata.is_dir())
            .map(|(r, _)| r.as_str()),
    );
    let mut hidden = Vec::new();
    for d in dirs {
        for entry in fs::read_dir(dir.join(d))? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            let rel = if d.is_empty() {
                name.into_owned()
            } else {
                format!("{d}/{name}")
            };
            if !shown.contains(rel.as_str()) {
                hidden.push(rel);
            }
        }
    }
    Ok(hidden)
}

/// `--mount=type=bind,from=STAGE|IMAGE`: the directory `source` of that
/// filesystem, as an overlay of each layer's copy of it.
fn bind_stage(
    sb: &StageBuilder<'_, '_>,
    from: &str,
    source: &str,
    m: &MountSpec,
    key: &mut KeyBuilder,
    held: &mut Held,
) -> Result<Option<Mount>, String> {
    let session = sb.session;
    let layers = super::copy::layers_of(sb, from)?;
    for l in &layers {
        key.digest(&l.diff_id);
    }
    let fs = session.rootfs(&layers).map_err(|e| e.to_string())?;
    let found = fs
        .lookup(source, true)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("bind mount source {source} not found in {from}"))?;
    if !found.metadata.is_dir() {
        return Err(format!(
            "bind mount source {source} in {from} is not a directory (bind a directory)"
        ));
    }
    let rel = found.path.trim_start_matches('/').to_owned();
    // Each layer's copy of the directory, top first, down to the layer
    // that hides the ones below (a whiteout, a non-directory, an opaque marker).
    let mut lower = Vec::new();
    for l in layers.iter().rev() {
        let snap = session
            .snapshots
            .ensure(session.store, &l.descriptor, &l.diff_id)
            .map_err(|e| e.to_string())?;
        let path = if rel.is_empty() {
            snap.clone()
        } else {
            snap.join(&rel)
        };
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => {
                lower.push(path.clone());
                let opaque = xattr::get(&path, "trusted.overlay.opaque")
                    .ok()
                    .flatten()
                    .is_some_and(|v| v == b"y");
                if opaque {
                    break;
                }
            }
            Ok(_) => break,
            Err(_) => {}
        }
    }
    let scratch = if m.readwrite {
        let dir = session.snapshots.stage().map_err(|e| e.to_string())?;
        let path = dir.path().to_path_buf();
        held.dirs.push(dir);
        Some(path)
    } else {
        None
    };
    Ok(Some(Mount::Overlay {
        lower,
        target: m.target.clone(),
        scratch,
    }))
}
