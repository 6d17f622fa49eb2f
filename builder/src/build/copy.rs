//! COPY, ADD and WORKDIR: the steps that produce layers without running
//! anything.
//!
//! A step first *plans*: it resolves its sources (context paths, wildcards,
//! an earlier stage's or image's files, heredocs, URLs) and computes its
//! cache key from what it will copy (content digests via the stat cache,
//! never mtimes). On a cache miss it *lays out* the layer in memory: the
//! copied entries, plus their ancestor directories as they are in the parent
//! image (what an overlay diff would contain), as a [`LayerTree`] whose
//! files stay where they are (the context, a download, another layer). The
//! layer writer streams them from there into the blob, so a COPY reads each
//! file once more after hashing it and writes no copy of it to disk; the
//! tree then stands in for the layer's snapshot for the rest of the build.
//!
//! When a later step will need the files on disk (a RUN of this stage, or
//! another stage running commands on this one), the snapshot is unpacked
//! while the layer is written, from the tar stream on its way to the
//! compressor (see `write_layer_tree_teed`), instead of from the blob
//! afterwards. It may link files from the snapshot of the layer the same
//! COPY made last time (its *lineage*), so a rebuild after a small change
//! creates only the files that changed.

use std::fs::{self, File, Metadata};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use berth_runtime::layer::decompress;
use berth_runtime::layer::tree::{FileData, LayerTree, TreeEntry, TreeKind};
use berth_runtime::layer::unpack::{UnpackOptions, Whiteouts, unpack};
use berth_runtime::layer::writer::{
    LayerBlob, LayerError, LayerOptions, write_layer_tree, write_layer_tree_teed,
};
use berth_runtime::rootfs::{Found, LayeredFs};
use berth_runtime::snapshot::SnapshotError;
use berth_runtime::store::Digest;

use super::BuildError;
use super::ownership::{self, Owner};
use super::stage::StageBuilder;
use crate::cache::{CacheKey, CacheRecord, KeyBuilder, LayerRef};
use crate::context::glob::{Dialect, Glob};
use crate::context::{ContextError, IgnoreRules, resolve_source_with_rules};
use crate::dockerfile::heredoc::chomp;
use crate::dockerfile::instructions::Source;
use crate::dockerfile::modes::Chmod;
use crate::dockerfile::{Instruction, InstructionKind};
use crate::progress::{BuildEvent, StepId};

/// What a COPY or ADD asks for, with every variable expanded.
struct CopySpec {
    keyword: &'static str,
    sources: Vec<SourceSpec>,
    /// Absolute, cleaned destination.
    dest: String,
    /// The destination names a directory (`/app/`, `.`).
    dest_is_dir: bool,
    from: Option<String>,
    chown: Option<String>,
    chmod: Option<Chmod>,
    link: bool,
    parents: bool,
    exclude: Vec<String>,
    checksum: Option<String>,
    /// ADD: unpack local archives (None: BuildKit's default, yes).
    unpack: Option<bool>,
}

enum SourceSpec {
    Path(String),
    Url(String),
    Inline { name: String, content: Vec<u8> },
}

/// Where the copied files come from.
enum Origin {
    Context,
    /// An earlier stage or a local image: its layers.
    Rootfs {
        layers: Vec<LayerRef>,
        label: String,
    },
}

/// One entry to write into the layer.
struct Entry {
    /// Path in the image, without the leading `/`.
    dest: String,
    kind: Kind,
    mode: u32,
    owner: Owner,
    mtime: i64,
    xattrs: XattrSource,
    /// (device, inode) of a source with several links.
    link_key: Option<(u64, u64)>,
}

/// Where an entry's extended attributes come from. Host files are read
/// only once the step misses the cache, so cached steps never pay for it.
enum XattrSource {
    None,
    Host(PathBuf),
    Known(Vec<(Vec<u8>, Vec<u8>)>),
}

enum Kind {
    Dir,
    File(FileData),
    Symlink(PathBuf),
    /// An archive unpacked into the directory `dest`.
    Archive {
        from: PathBuf,
    },
}

/// A planned source before its destination is known: a top-level path and
/// everything below it.
struct Planned {
    /// Name used when copying into a directory (`--parents`: the whole
    /// relative path).
    name: String,
    is_dir: bool,
    /// Entries relative to the source's top (empty string for the top).
    entries: Vec<(String, Entry)>,
}

pub(crate) fn run_copy(sb: &mut StageBuilder<'_, '_>, ins: &Instruction) -> Result<(), BuildError> {
    sb.reported_step(ins, |sb, step, _, started| {
        copy_step(sb, ins, step, started)
    })
}

fn copy_step(
    sb: &mut StageBuilder<'_, '_>,
    ins: &Instruction,
    step: StepId,
    started: Instant,
) -> Result<(), BuildError> {
    let spec = expand_spec(sb, ins)?;
    let fail = |msg: String| {
        BuildError::at(
            ins.start_line,
            ins.end_line,
            format!("{} failed: {msg}", spec.keyword),
        )
    };

    let origin = match &spec.from {
        None => Origin::Context,
        Some(from) => resolve_from(sb, from).map_err(fail)?,
    };

    // Names in --chown are looked up in the image being built.
    let owner = match &spec.chown {
        None => None,
        Some(c) => Some(resolve_owner(sb, c).map_err(fail)?),
    };

    let mut planned: Vec<Planned> = Vec::new();
    let mut key = KeyBuilder::new(spec.keyword);
    if !spec.link {
        key.key(&sb.state.chain_key());
    }
    key.str(&spec.dest)
        .u64(u64::from(spec.dest_is_dir))
        .u64(u64::from(spec.parents))
        .opt_str(owner.map(|o| format!("{}:{}", o.uid, o.gid)).as_deref())
        .opt_str(spec.chmod.as_ref().map(|c| format!("{c:?}")).as_deref())
        .opt_str(spec.unpack.map(|u| u.to_string()).as_deref());
    for e in &spec.exclude {
        key.str(e);
    }
    let excludes = if spec.exclude.is_empty() {
        None
    } else {
        Some(
            IgnoreRules::parse_named(&spec.exclude.join("\n"), "--exclude")
                .map_err(|e| fail(e.to_string()))?,
        )
    };

    let mut wildcard_sources = false;
    // Downloaded files live until the layer is written.
    let mut downloads = Vec::new();
    match &origin {
        Origin::Context => {
            for src in &spec.sources {
                match src {
                    SourceSpec::Path(p) => {
                        wildcard_sources |= has_wildcards(p);
                        let found = plan_context(sb, &spec, p, excludes.as_ref(), &mut key)
                            .map_err(|e| fail(context_message(e)))?;
                        planned.extend(found);
                    }
                    SourceSpec::Inline { name, content } => {
                        key.str("inline").str(name).bytes(content);
                        planned.push(Planned {
                            name: name.clone(),
                            is_dir: false,
                            entries: vec![(
                                String::new(),
                                Entry {
                                    dest: String::new(),
                                    kind: Kind::File(FileData::Bytes(Arc::from(
                                        content.as_slice(),
                                    ))),
                                    mode: 0o644,
                                    owner: Owner { uid: 0, gid: 0 },
                                    mtime: sb.session.now,
                                    xattrs: XattrSource::None,
                                    link_key: None,
                                },
                            )],
                        });
                    }
                    SourceSpec::Url(url) => {
                        let (p, download) = plan_url(sb, &spec, url, &mut key).map_err(fail)?;
                        planned.push(p);
                        downloads.push(download);
                    }
                }
            }
        }
        Origin::Rootfs { layers, label } => {
            let mut k = KeyBuilder::new("chain");
            for l in layers {
                k.digest(&l.diff_id);
            }
            key.str(label).key(&k.finish());
            for src in &spec.sources {
                if let SourceSpec::Path(p) = src {
                    key.str(p);
                }
            }
        }
    }
    if let Some(o) = owner {
        for p in &mut planned {
            for (_, e) in &mut p.entries {
                e.owner = o;
            }
        }
    }
    let key = key.finish();

    if !sb.skip_cache()
        && let Some(record) = sb.session.cache.get(sb.session.store, &key)
    {
        sb.progress(BuildEvent::Cached { step });
        sb.commit_layer(ins, Some(record.layer), record.created);
        sb.session.done(step, started.elapsed(), 0);
        return Ok(());
    }

    if let Origin::Rootfs { layers, .. } = &origin {
        let fs = sb.session.rootfs(layers)?;
        for src in &spec.sources {
            if let SourceSpec::Path(p) = src {
                wildcard_sources |= has_wildcards(p);
                planned.extend(
                    plan_rootfs(&fs, p, spec.parents, excludes.as_ref(), owner).map_err(fail)?,
                );
            }
        }
    }
    if planned.is_empty() {
        return Err(fail("no source files were specified".to_owned()));
    }
    let several = planned.len() > 1 || wildcard_sources;
    if several && !spec.dest_is_dir {
        return Err(fail(format!(
            "when copying more than one source file, the destination must be a directory and end with a / (write \"{}/\")",
            spec.dest
        )));
    }

    let parent = if spec.link {
        LayeredFs::new(Vec::new())
    } else {
        sb.session.layout_view(&sb.state.layers)?
    };
    let dest = resolve_in(&parent, &spec.dest);
    let new_dir_owner = owner.unwrap_or(Owner { uid: 0, gid: 0 });
    // BuildKit creates missing parent directories with the --chmod mode too.
    let new_dir_mode = spec.chmod.as_ref().map_or(0o755, |c| c.apply(0o755, true));
    let mut layout = TreeBuilder {
        tree: LayerTree::new(),
        parent: &parent,
        now: sb.session.now,
        new_dir_mode,
        new_dir_owner,
    };
    for p in planned {
        let target = if p.is_dir && !spec.parents {
            dest.clone()
        } else if spec.dest_is_dir || several || is_dir_in(&parent, &dest) {
            join(&dest, &p.name)
        } else {
            dest.clone()
        };
        layout.ancestors(&target).map_err(fail)?;
        for (rel, mut entry) in p.entries {
            entry.dest = if rel.is_empty() {
                target.clone()
            } else {
                join(&target, &rel)
            };
            if let Some(chmod) = &spec.chmod
                && !matches!(entry.kind, Kind::Symlink(_) | Kind::Archive { .. })
            {
                entry.mode = chmod.apply(entry.mode, matches!(entry.kind, Kind::Dir));
            }
            layout.put(sb, entry).map_err(fail)?;
        }
    }
    // The tree reads downloaded files until the build ends.
    for d in downloads {
        sb.session.hold(d.into_staging());
    }

    let site = site_key(sb, &spec);
    let (layer, bytes) = commit_tree(sb, step, layout.tree, &key, Some(&site)).map_err(fail)?;
    let created = sb.created_now();
    sb.commit_layer(ins, Some(layer), created);
    sb.session.done(step, started.elapsed(), bytes);
    Ok(())
}

/// Names where a COPY or ADD writes, whatever the content: its lineage,
/// for [`commit_tree`]. Context, destination and sources as written.
fn site_key(sb: &StageBuilder<'_, '_>, spec: &CopySpec) -> Digest {
    let context = sb.session.options.context_dir.as_os_str();
    let mut key = KeyBuilder::new("site");
    key.str(spec.keyword)
        .bytes(context.as_encoded_bytes())
        .str(&spec.dest)
        .opt_str(spec.from.as_deref());
    for src in &spec.sources {
        match src {
            SourceSpec::Path(p) => key.str("path").str(p),
            SourceSpec::Url(u) => key.str("url").str(u),
            SourceSpec::Inline { name, .. } => key.str("inline").str(name),
        };
    }
    key.finish().0
}

/// Writes a laid-out layer into a blob, keeps the tree for later steps of
/// this build, and records the layer in the cache under `key`. Returns the
/// layer and its tar size. If a later step needs the layer on disk, its
/// snapshot is unpacked at the same time, linking unchanged files from
/// the last snapshot made at `site`.
fn commit_tree(
    sb: &StageBuilder<'_, '_>,
    step: StepId,
    tree: LayerTree,
    key: &CacheKey,
    site: Option<&Digest>,
) -> Result<(LayerRef, u64), String> {
    let report = |bytes: u64| sb.progress(BuildEvent::Bytes { step, bytes });
    let options = LayerOptions {
        compression: sb.session.options.compression,
        source_date_epoch: sb.session.options.source_date_epoch,
        overlay_whiteouts: false,
    };
    let layer = if sb.layer_needed_on_disk() {
        write_and_unpack(sb, &tree, &options, &report, site)
    } else {
        write_layer_tree(sb.session.store, &tree, &options, &report)
    }
    .map_err(|e| e.to_string())?;
    sb.session.keep_tree(&layer.diff_id, tree);
    let layer_ref = LayerRef {
        descriptor: layer.descriptor,
        diff_id: layer.diff_id,
    };
    record(sb, key, &layer_ref, &sb.created_now());
    Ok((layer_ref, layer.uncompressed_size))
}

/// Writes the layer and unpacks its snapshot from the same tar stream. The
/// snapshot is best effort: if it cannot be made here, the step that needs
/// it unpacks the blob (and reports what fails then).
fn write_and_unpack(
    sb: &StageBuilder<'_, '_>,
    tree: &LayerTree,
    options: &LayerOptions,
    report: &(dyn Fn(u64) + Sync),
    site: Option<&Digest>,
) -> Result<LayerBlob, LayerError> {
    let session = sb.session;
    let snapshots = &session.snapshots;
    // Linking files from an earlier snapshot keeps every shared inode at
    // one path in every snapshot only if neither layer has hardlinks.
    let reference = site
        .and_then(|site| snapshots.line(site))
        .filter(|r| !tree.has_hardlinks() && session.layer_has_hardlinks(r) == Some(false));
    let (layer, unpacked) = write_layer_tree_teed(session.store, tree, options, report, |tar| {
        snapshots.unpack_stream(tar, reference.as_ref())
    });
    let layer = layer?;
    // A mismatch is a bug worth reporting; other failures only mean that
    // the step needing the snapshot unpacks the blob.
    if let Some(Ok(unpacked)) = unpacked {
        match unpacked.commit(&layer.diff_id) {
            Ok(_) => {
                if let Some(site) = site {
                    // Only a hint: without it the next build links nothing.
                    let _ = snapshots.set_line(site, &layer.diff_id);
                }
            }
            Err(e @ SnapshotError::StreamMismatch { .. }) => sb.progress(BuildEvent::Message {
                text: format!("warning: {e}"),
            }),
            Err(_) => {}
        }
    }
    Ok(layer)
}

/// Saves a cache record; a failure only costs a rebuild next time.
fn record(sb: &StageBuilder<'_, '_>, key: &CacheKey, layer: &LayerRef, created: &str) {
    let rec = CacheRecord {
        layer: layer.clone(),
        created: created.to_owned(),
    };
    if let Err(e) = sb.session.cache.put(key, &rec) {
        sb.progress(BuildEvent::Message {
            text: format!("warning: cannot save a build cache record: {e}"),
        });
    }
}

/// WORKDIR: sets the working directory and creates it (owned by USER) when
/// the image does not have it yet.
pub(crate) fn run_workdir(
    sb: &mut StageBuilder<'_, '_>,
    ins: &Instruction,
    path: &str,
) -> Result<(), BuildError> {
    let fail = |msg: String| {
        BuildError::at(
            ins.start_line,
            ins.end_line,
            format!("WORKDIR failed: {msg}"),
        )
    };
    let dir = if path.starts_with('/') {
        clean(path)
    } else {
        clean(&format!("{}/{path}", sb.workdir()))
    };
    sb.config_mut().working_dir = Some(dir.clone());

    let started = Instant::now();
    let label = sb.step_label(&ins.original);
    let step = sb.session.step(label);
    let user = sb
        .state
        .config
        .config
        .user
        .clone()
        .filter(|u| !u.is_empty());
    let owner = match &user {
        Some(u) => resolve_owner(sb, u).map_err(fail)?,
        None => Owner { uid: 0, gid: 0 },
    };
    let mut key = KeyBuilder::new("WORKDIR");
    key.key(&sb.state.chain_key())
        .str(&dir)
        .u64(u64::from(owner.uid))
        .u64(u64::from(owner.gid));
    let key = key.finish();
    if !sb.skip_cache()
        && let Some(rec) = sb.session.cache.get(sb.session.store, &key)
    {
        sb.progress(BuildEvent::Cached { step });
        sb.commit_layer(ins, Some(rec.layer), rec.created);
        sb.session.done(step, started.elapsed(), 0);
        return Ok(());
    }
    let parent = sb.session.layout_view(&sb.state.layers)?;
    let real = resolve_in(&parent, &dir);
    if is_dir_in(&parent, &real) {
        // Nothing to create: BuildKit's diff would be empty too.
        sb.commit_layer(ins, None, String::new());
        sb.session.done(step, started.elapsed(), 0);
        return Ok(());
    }
    let mut layout = TreeBuilder {
        tree: LayerTree::new(),
        parent: &parent,
        now: sb.session.now,
        new_dir_mode: 0o755,
        new_dir_owner: owner,
    };
    layout.ancestors(&join(&real, "x")).map_err(fail)?;
    let (layer, _) = commit_tree(sb, step, layout.tree, &key, None).map_err(fail)?;
    let created = sb.created_now();
    sb.commit_layer(ins, Some(layer), created);
    sb.session.done(step, started.elapsed(), 0);
    Ok(())
}

fn expand_spec(sb: &StageBuilder<'_, '_>, ins: &Instruction) -> Result<CopySpec, BuildError> {
    let (keyword, sources, dest, from, chown, chmod, link, parents, exclude, checksum, unpack) =
        match &ins.kind {
            InstructionKind::Copy(c) => (
                "COPY",
                &c.sources,
                &c.dest,
                c.from.as_ref(),
                c.chown.as_ref(),
                c.chmod.clone(),
                c.link,
                c.parents,
                &c.exclude,
                None,
                None,
            ),
            InstructionKind::Add(a) => {
                if a.keep_git_dir {
                    return Err(BuildError::at(
                        ins.start_line,
                        ins.end_line,
                        "ADD failed: git sources are not supported by berth yet (clone the repository into the build context and COPY it)",
                    ));
                }
                (
                    "ADD",
                    &a.sources,
                    &a.dest,
                    None,
                    a.chown.as_ref(),
                    a.chmod.clone(),
                    a.link,
                    false,
                    &a.exclude,
                    a.checksum.as_ref(),
                    Some(a.unpack),
                )
            }
            _ => unreachable_kind(ins)?,
        };
    let mut out = Vec::new();
    for s in sources {
        match s {
            Source::Path(p) => {
                let p = sb.expand(ins, p)?;
                if keyword == "ADD" && (p.starts_with("http://") || p.starts_with("https://")) {
                    out.push(SourceSpec::Url(p));
                } else if p.starts_with("git@") || p.ends_with(".git") && p.contains("://") {
                    return Err(BuildError::at(
                        ins.start_line,
                        ins.end_line,
                        format!(
                            "{keyword} failed: git source \"{p}\" is not supported by berth yet (clone it into the build context and COPY it)"
                        ),
                    ));
                } else {
                    out.push(SourceSpec::Path(p));
                }
            }
            Source::Heredoc(h) => {
                let body = if h.chomp {
                    chomp(&h.content)
                } else {
                    h.content.clone()
                };
                let body = if h.expand {
                    let lexer = sb.session.lexer.clone().raw_quotes(true).raw_escapes(true);
                    lexer
                        .process_word(&body, &sb.env())
                        .map_err(|e| BuildError::at(ins.start_line, ins.end_line, e.to_string()))?
                } else {
                    body
                };
                out.push(SourceSpec::Inline {
                    name: h.name.clone(),
                    content: body.into_bytes(),
                });
            }
        }
    }
    let raw_dest = sb.expand(ins, dest)?;
    let dest_is_dir = raw_dest.ends_with('/')
        || raw_dest == "."
        || raw_dest.ends_with("/.")
        || raw_dest.is_empty();
    let dest = if raw_dest.starts_with('/') {
        clean(&raw_dest)
    } else {
        clean(&format!("{}/{raw_dest}", sb.workdir()))
    };
    let unpack = unpack.flatten();
    let checksum = match checksum {
        Some(c) => Some(sb.expand(ins, c)?),
        None => None,
    };
    if checksum.is_some() && !out.iter().all(|s| matches!(s, SourceSpec::Url(_))) {
        return Err(BuildError::at(
            ins.start_line,
            ins.end_line,
            "ADD failed: --checksum applies only to http(s) sources (remove it, or ADD a URL)",
        ));
    }
    Ok(CopySpec {
        keyword,
        sources: out,
        dest,
        dest_is_dir,
        from: from.map(|f| sb.expand(ins, f)).transpose()?,
        chown: chown.map(|c| sb.expand(ins, c)).transpose()?,
        chmod,
        link,
        parents,
        exclude: exclude
            .iter()
            .map(|e| sb.expand(ins, e))
            .collect::<Result<_, _>>()?,
        checksum,
        unpack: if keyword == "ADD" {
            Some(unpack.unwrap_or(true))
        } else {
            None
        },
    })
}

fn unreachable_kind<T>(ins: &Instruction) -> Result<T, BuildError> {
    Err(BuildError::at(
        ins.start_line,
        ins.end_line,
        "internal error: not a COPY or ADD instruction",
    ))
}

/// The layers `--from=` names (a stage of this build or a local image).
pub(crate) fn layers_of(sb: &StageBuilder<'_, '_>, from: &str) -> Result<Vec<LayerRef>, String> {
    match resolve_from(sb, from)? {
        Origin::Rootfs { layers, .. } => Ok(layers),
        Origin::Context => Ok(Vec::new()),
    }
}

/// `--from=`: an earlier stage (by name or index) or a local image.
fn resolve_from(sb: &StageBuilder<'_, '_>, from: &str) -> Result<Origin, String> {
    let session = sb.session;
    if let Some(stage) = session.stages.find(from) {
        if stage.index >= sb.index {
            return Err(format!(
                "--from={from} refers to stage {} which is not built before this one",
                stage.index
            ));
        }
        let state = session.wait_for(stage.index).map_err(|e| e.to_string())?;
        return Ok(Origin::Rootfs {
            layers: state.layers.clone(),
            label: format!("stage:{}", stage.index),
        });
    }
    if from.parse::<usize>().is_ok() {
        return Err(format!(
            "--from={from}: there is no stage {from} (stages are numbered from 0)"
        ));
    }
    let (_, layers) = super::stage::load_local_image(session, from, &session.platform)
        .map_err(|e| format!("--from={from}: not a stage of this Dockerfile, and {e}"))?;
    Ok(Origin::Rootfs {
        layers,
        label: format!("image:{from}"),
    })
}

fn resolve_owner(sb: &StageBuilder<'_, '_>, spec: &str) -> Result<Owner, String> {
    let numeric = spec.split(':').all(|p| p.parse::<u32>().is_ok());
    if numeric {
        return ownership::resolve(spec, None, None).map_err(|e| e.0);
    }
    let fs = sb
        .session
        .rootfs(&sb.state.layers)
        .map_err(|e| e.to_string())?;
    let read = |p: &str| {
        fs.read_file(p, 4 << 20)
            .ok()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    };
    let passwd = read("/etc/passwd");
    let group = read("/etc/group");
    ownership::resolve(spec, passwd.as_deref(), group.as_deref()).map_err(|e| e.0)
}

fn context_message(e: ContextError) -> String {
    match e {
        ContextError::SourceNotFound { src, missing } => format!(
            "\"/{}\" not found: COPY source \"{src}\" is not in the build context (paths are relative to the context root; check .dockerignore too)",
            missing.trim_start_matches('/')
        ),
        ContextError::NoMatch { src } => format!(
            "no source files were specified: \"{src}\" matched nothing in the build context (check the pattern and .dockerignore)"
        ),
        other => other.to_string(),
    }
}

/// Plans one context source: resolves it (wildcards, symlinks within the
/// context, .dockerignore) and lists everything below it, hashing file
/// contents into the key.
fn plan_context(
    sb: &StageBuilder<'_, '_>,
    spec: &CopySpec,
    source: &str,
    excludes: Option<&IgnoreRules>,
    key: &mut KeyBuilder,
) -> Result<Vec<Planned>, ContextError> {
    let session = sb.session;
    let ctx = &session.options.context_dir;
    let found = resolve_source_with_rules(ctx, source, &session.rules)?;
    let mut out = Vec::new();
    for sp in found {
        let meta = fs::metadata(&sp.host_path).map_err(|e| ContextError::SourceIo {
            src: source.to_owned(),
            rel_path: sp.rel_path.clone(),
            source: e,
        })?;
        let name = if spec.parents {
            parents_name(source, &sp.rel_path)
        } else {
            base_name(&sp.rel_path)
        };
        key.str("src").str(&name);
        let mut entries = Vec::new();
        if meta.is_dir() {
            entries.push((
                String::new(),
                dir_entry(&meta, XattrSource::Host(sp.host_path.clone())),
            ));
            key.str("").u64(u64::from(meta.mode() & 0o7777));
            walk_context(
                sb,
                &sp.host_path,
                &sp.resolved_rel,
                "",
                excludes,
                key,
                &mut entries,
            )?;
        } else {
            if excludes.is_some_and(|x| x.is_excluded(&base_name(&sp.rel_path), false)) {
                continue;
            }
            let digest = session
                .stat
                .digest(&sp.resolved_rel, &sp.host_path, &meta)
                .map_err(|e| ContextError::SourceIo {
                    src: source.to_owned(),
                    rel_path: sp.rel_path.clone(),
                    source: e,
                })?;
            let archive = spec.unpack == Some(true)
                && decompress::is_tar_archive(&sp.host_path).unwrap_or(false);
            key.str("")
                .u64(u64::from(meta.mode() & 0o7777))
                .digest(&digest)
                .u64(u64::from(archive));
            let kind = if archive {
                Kind::Archive {
                    from: sp.host_path.clone(),
                }
            } else {
                Kind::File(FileData::Path(sp.host_path.clone()))
            };
            entries.push((
                String::new(),
                Entry {
                    dest: String::new(),
                    kind,
                    mode: meta.mode() & 0o7777,
                    owner: Owner { uid: 0, gid: 0 },
                    mtime: meta.mtime(),
                    xattrs: XattrSource::Host(sp.host_path.clone()),
                    link_key: link_key(&meta),
                },
            ));
            out.push(Planned {
                name,
                // An archive unpacks into the destination like a directory.
                is_dir: archive,
                entries,
            });
            continue;
        }
        out.push(Planned {
            name,
            is_dir: true,
            entries,
        });
    }
    Ok(out)
}

fn dir_entry(meta: &Metadata, xattrs: XattrSource) -> Entry {
    Entry {
        dest: String::new(),
        kind: Kind::Dir,
        mode: meta.mode() & 0o7777,
        owner: Owner { uid: 0, gid: 0 },
        mtime: meta.mtime(),
        xattrs,
        link_key: None,
    }
}

/// The (device, inode) of a file with several links, so that its copies
/// stay linked in the layer.
fn link_key(meta: &Metadata) -> Option<(u64, u64)> {
    (meta.nlink() > 1 && !meta.is_dir()).then(|| (meta.dev(), meta.ino()))
}

/// Lists a context directory below a source, honouring .dockerignore (by
/// context path) and --exclude (by path below the source).
#[allow(clippy::too_many_arguments)]
fn walk_context(
    sb: &StageBuilder<'_, '_>,
    host: &Path,
    ctx_rel: &str,
    rel: &str,
    excludes: Option<&IgnoreRules>,
    key: &mut KeyBuilder,
    out: &mut Vec<(String, Entry)>,
) -> Result<(), ContextError> {
    let session = sb.session;
    let io_err = |rel_path: &str| {
        let rel_path = rel_path.to_owned();
        move |source| ContextError::Unreadable {
            what: "file",
            rel_path,
            source,
        }
    };
    let mut names: Vec<_> = fs::read_dir(host)
        .map_err(io_err(ctx_rel))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(io_err(ctx_rel))?;
    names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
    for name in names {
        let Some(name) = name.to_str() else {
            return Err(ContextError::NonUtf8Name {
                path: host.join(&name),
            });
        };
        let child_ctx = if ctx_rel == "." || ctx_rel.is_empty() {
            name.to_owned()
        } else {
            format!("{ctx_rel}/{name}")
        };
        let child_rel = if rel.is_empty() {
            name.to_owned()
        } else {
            format!("{rel}/{name}")
        };
        let path = host.join(name);
        let meta = fs::symlink_metadata(&path).map_err(io_err(&child_ctx))?;
        let is_dir = meta.is_dir();
        let ignored = session.rules.is_excluded(&child_ctx, is_dir)
            || excludes.is_some_and(|x| x.is_excluded(&child_rel, is_dir));
        if ignored {
            let below = is_dir
                && (session.rules.is_excluded(&child_ctx, true)
                    && session.rules.may_include_below(&child_ctx)
                    || excludes.is_some_and(|x| x.may_include_below(&child_rel)));
            if !below {
                continue;
            }
        }
        key.str(&child_rel).u64(u64::from(meta.mode() & 0o7777));
        let mut entry = Entry {
            dest: String::new(),
            kind: Kind::Dir,
            mode: meta.mode() & 0o7777,
            owner: Owner { uid: 0, gid: 0 },
            mtime: meta.mtime(),
            xattrs: XattrSource::Host(path.clone()),
            link_key: None,
        };
        let ft = meta.file_type();
        if is_dir {
            out.push((child_rel.clone(), entry));
            walk_context(sb, &path, &child_ctx, &child_rel, excludes, key, out)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&path).map_err(io_err(&child_ctx))?;
            key.str("symlink")
                .bytes(target.as_os_str().as_encoded_bytes());
            entry.kind = Kind::Symlink(target);
            entry.mode = 0o777;
            entry.xattrs = XattrSource::None;
            out.push((child_rel, entry));
        } else if ft.is_file() {
            let digest = session
                .stat
                .digest(&child_ctx, &path, &meta)
                .map_err(io_err(&child_ctx))?;
            key.digest(&digest);
            entry.link_key = link_key(&meta);
            entry.kind = Kind::File(FileData::Path(path));
            out.push((child_rel, entry));
        }
        // FIFOs, sockets and devices in a context are not copied, as in BuildKit.
    }
    Ok(())
}

/// Plans a source read from another stage's or image's filesystem.
fn plan_rootfs(
    fs: &LayeredFs,
    source: &str,
    parents: bool,
    excludes: Option<&IgnoreRules>,
    owner: Option<Owner>,
) -> Result<Vec<Planned>, String> {
    let abs = clean(&format!("/{source}"));
    let matches: Vec<String> = if has_wildcards(&abs) {
        glob_rootfs(fs, &abs)?
    } else {
        vec![abs.clone()]
    };
    if matches.is_empty() {
        return Err(format!(
            "no source files were specified: \"{source}\" matched nothing"
        ));
    }
    let mut out = Vec::new();
    for path in matches {
        let found = fs
            .lookup(&path, true)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("\"{path}\" not found in the source image"))?;
        let name = if parents {
            parents_name(source, path.trim_start_matches('/'))
        } else {
            base_name(&path)
        };
        let mut entries = Vec::new();
        let own = owner.unwrap_or(Owner {
            uid: found.metadata.uid(),
            gid: found.metadata.gid(),
        });
        entries.push((String::new(), rootfs_entry(&found, own)?));
        if found.metadata.is_dir() {
            walk_rootfs(fs, &found.path, "", excludes, owner, &mut entries)?;
        }
        out.push(Planned {
            name,
            is_dir: found.metadata.is_dir(),
            entries,
        });
    }
    Ok(out)
}

fn rootfs_entry(found: &Found, owner: Owner) -> Result<Entry, String> {
    let meta = &found.metadata;
    let kind = if meta.is_symlink() {
        Kind::Symlink(found.read_link().map_err(|e| e.to_string())?)
    } else if meta.is_dir() {
        Kind::Dir
    } else {
        let data = found
            .file_data()
            .ok_or_else(|| format!("{}: not a regular file", found.path))?;
        Kind::File(data)
    };
    let xattrs = if meta.is_symlink() {
        XattrSource::None
    } else {
        XattrSource::Known(found.xattrs().map_err(|e| e.to_string())?)
    };
    Ok(Entry {
        dest: String::new(),
        mode: if meta.is_symlink() {
            0o777
        } else {
            meta.mode()
        },
        kind,
        owner,
        mtime: meta.mtime(),
        xattrs,
        link_key: meta.link_key,
    })
}

fn walk_rootfs(
    fs: &LayeredFs,
    dir: &str,
    rel: &str,
    excludes: Option<&IgnoreRules>,
    owner: Option<Owner>,
    out: &mut Vec<(String, Entry)>,
) -> Result<(), String> {
    for (name, found) in fs.read_dir(dir).map_err(|e| e.to_string())? {
        let child_rel = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let is_dir = found.metadata.is_dir();
        if excludes.is_some_and(|x| {
            x.is_excluded(&child_rel, is_dir) && !(is_dir && x.may_include_below(&child_rel))
        }) {
            continue;
        }
        let m = &found.metadata;
        if !(m.is_dir() || m.is_file() || m.is_symlink()) {
            continue;
        }
        let own = owner.unwrap_or(Owner {
            uid: found.metadata.uid(),
            gid: found.metadata.gid(),
        });
        out.push((child_rel.clone(), rootfs_entry(&found, own)?));
        if is_dir {
            walk_rootfs(fs, &join(dir, &name), &child_rel, excludes, owner, out)?;
        }
    }
    Ok(())
}

/// Expands a wildcard path against a layered filesystem, one component at
/// a time, like the context resolver does on the host.
fn glob_rootfs(fs: &LayeredFs, abs: &str) -> Result<Vec<String>, String> {
    let mut current = vec!["/".to_owned()];
    for comp in abs.split('/').filter(|c| !c.is_empty()) {
        let mut next = Vec::new();
        if has_wildcards(comp) {
            let glob = Glob::compile(comp, Dialect::FilepathMatch)
                .map_err(|r| format!("invalid wildcard \"{comp}\": {r}"))?;
            for dir in &current {
                for (name, _) in fs.read_dir(dir).map_err(|e| e.to_string())? {
                    if glob.matches(&name) {
                        next.push(join(dir, &name));
                    }
                }
            }
        } else {
            for dir in &current {
                let p = join(dir, comp);
                if fs.lookup(&p, false).map_err(|e| e.to_string())?.is_some() {
                    next.push(p);
                }
            }
        }
        current = next;
    }
    Ok(current)
}

/// ADD URL: downloads into the build's staging area and plans a file.
fn plan_url(
    sb: &StageBuilder<'_, '_>,
    spec: &CopySpec,
    url: &str,
    key: &mut KeyBuilder,
) -> Result<(Planned, super::fetch::Download), String> {
    let download = super::fetch::download(sb.session, url, spec.checksum.as_deref())?;
    key.str("url").str(url).digest(&download.digest);
    let planned = Planned {
        name: download.file_name.clone(),
        is_dir: false,
        entries: vec![(
            String::new(),
            Entry {
                dest: String::new(),
                kind: Kind::File(FileData::Path(download.path.clone())),
                mode: 0o600,
                owner: Owner { uid: 0, gid: 0 },
                mtime: download.mtime.unwrap_or(sb.session.now),
                xattrs: XattrSource::None,
                link_key: None,
            },
        )],
    };
    Ok((planned, download))
}

/// Lays out one step's layer in memory.
struct TreeBuilder<'m> {
    tree: LayerTree,
    /// The image below the layer, for the metadata of existing directories.
    parent: &'m LayeredFs,
    now: i64,
    new_dir_mode: u32,
    new_dir_owner: Owner,
}

impl TreeBuilder<'_> {
    /// Adds the directories above `target`, with the parent image's
    /// metadata where they exist there, new otherwise.
    fn ancestors(&mut self, target: &str) -> Result<(), String> {
        let comps: Vec<&str> = target.split('/').filter(|c| !c.is_empty()).collect();
        let mut path = String::new();
        for comp in comps.iter().take(comps.len().saturating_sub(1)) {
            path.push('/');
            path.push_str(comp);
            self.dir_at(&path)?;
        }
        Ok(())
    }

    /// Makes sure the layer has a directory at `path`: the one it has, or
    /// one like the parent image's, or a new one.
    fn dir_at(&mut self, path: &str) -> Result<(), String> {
        match self.tree.get(path) {
            Some(e) if e.is_dir() => return Ok(()),
            Some(_) => {
                return Err(format!(
                    "cannot copy below {path}: an earlier source put a file there, not a directory"
                ));
            }
            None => {}
        }
        let existing = self
            .parent
            .lookup(path, false)
            .ok()
            .flatten()
            .filter(|f| f.metadata.is_dir());
        let (mode, owner, mtime) = match existing {
            Some(f) => (
                f.metadata.mode(),
                Owner {
                    uid: f.metadata.uid(),
                    gid: f.metadata.gid(),
                },
                f.metadata.mtime(),
            ),
            None => (self.new_dir_mode, self.new_dir_owner, self.now),
        };
        self.tree.insert(
            path,
            TreeEntry {
                kind: TreeKind::Dir,
                mode,
                uid: owner.uid,
                gid: owner.gid,
                mtime,
                xattrs: Vec::new(),
                link_key: None,
            },
        );
        Ok(())
    }

    /// Adds one planned entry. A later source replaces what an earlier one
    /// put at the same path, except that directories merge (the first one's
    /// metadata stays).
    fn put(&mut self, sb: &StageBuilder<'_, '_>, e: Entry) -> Result<(), String> {
        let dest = e.dest.trim_matches('/').to_owned();
        let at = display_path(&e.dest);
        let tree_kind = match e.kind {
            Kind::Dir => {
                if dest.is_empty() || self.tree.get(&dest).is_some_and(TreeEntry::is_dir) {
                    // The layer root carries no entry of its own.
                    return Ok(());
                }
                TreeKind::Dir
            }
            Kind::Archive { from } => {
                if !dest.is_empty() {
                    self.dir_at(&at)?;
                }
                return self
                    .unpack_archive(sb, &from, &dest)
                    .map_err(|e| format!("cannot unpack {} to {at}: {e}", from.display()));
            }
            _ if dest.is_empty() => {
                return Err("cannot replace the root directory with a file".to_owned());
            }
            Kind::File(data) => TreeKind::File(data),
            Kind::Symlink(target) => TreeKind::Symlink(target),
        };
        let xattrs = match e.xattrs {
            XattrSource::None => Vec::new(),
            XattrSource::Known(x) => x,
            XattrSource::Host(p) => host_xattrs(&p),
        };
        self.tree.insert(
            &dest,
            TreeEntry {
                kind: tree_kind,
                mode: e.mode,
                uid: e.owner.uid,
                gid: e.owner.gid,
                mtime: e.mtime,
                xattrs,
                link_key: e.link_key,
            },
        );
        Ok(())
    }

    /// ADD of a local archive: unpacked (owners and modes as the archive
    /// has them) into a scratch directory that lives as long as the build,
    /// then laid out below `dest`, merging with what is there.
    fn unpack_archive(
        &mut self,
        sb: &StageBuilder<'_, '_>,
        from: &Path,
        dest: &str,
    ) -> Result<(), String> {
        let scratch = sb.session.snapshots.stage().map_err(|e| e.to_string())?;
        let file = File::open(from).map_err(|e| e.to_string())?;
        let (_, reader) = decompress::decompress(file).map_err(|e| e.to_string())?;
        unpack(
            reader,
            scratch.path(),
            &UnpackOptions {
                whiteouts: Whiteouts::Keep,
                same_owner: true,
                allow_devices: false,
            },
        )
        .map_err(|e| e.to_string())?;
        let added = self.add_host_dir(scratch.path(), dest);
        sb.session.hold(scratch);
        added.map_err(|e| e.to_string())
    }

    /// Adds everything below the host directory `dir` under `dest`.
    fn add_host_dir(&mut self, dir: &Path, dest: &str) -> io::Result<()> {
        let mut names: Vec<_> = fs::read_dir(dir)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
        for name in names {
            let Some(text) = name.to_str() else {
                return Err(io::Error::other(format!(
                    "the archive holds a name that is not UTF-8: {}",
                    name.to_string_lossy()
                )));
            };
            let path = dir.join(&name);
            let meta = fs::symlink_metadata(&path)?;
            let ft = meta.file_type();
            let kind = if ft.is_dir() {
                TreeKind::Dir
            } else if ft.is_file() {
                TreeKind::File(FileData::Path(path.clone()))
            } else if ft.is_symlink() {
                TreeKind::Symlink(fs::read_link(&path)?)
            } else if ft.is_fifo() {
                TreeKind::Fifo
            } else {
                // Devices are not unpacked from archives; sockets never are.
                continue;
            };
            let child = join(dest, text).trim_start_matches('/').to_owned();
            self.tree.insert(
                &child,
                TreeEntry {
                    kind,
                    mode: meta.mode() & 0o7777,
                    uid: meta.uid(),
                    gid: meta.gid(),
                    mtime: meta.mtime(),
                    xattrs: if ft.is_symlink() {
                        Vec::new()
                    } else {
                        host_xattrs(&path)
                    },
                    link_key: link_key(&meta),
                },
            );
            if ft.is_dir() {
                self.add_host_dir(&path, &child)?;
            }
        }
        Ok(())
    }
}

/// A host file's user-visible extended attributes, sorted; those the kernel
/// keeps for itself (SELinux labels, overlay markers) are left out. Best
/// effort: a filesystem without xattr support has none, as for `cp`.
fn host_xattrs(path: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let Ok(names) = xattr::list(path) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for name in names {
        let text = name.to_string_lossy();
        if text.starts_with("security.selinux") || text.contains("overlay.") {
            continue;
        }
        if let Ok(Some(value)) = xattr::get(path, &name) {
            out.push((name.as_encoded_bytes().to_vec(), value));
        }
    }
    out.sort_unstable();
    out
}

/// Whether `path` is a directory in `fs` (following symlinks).
fn is_dir_in(fs: &LayeredFs, path: &str) -> bool {
    fs.lookup(path, true)
        .ok()
        .flatten()
        .is_some_and(|f| f.metadata.is_dir())
}

/// Resolves the existing part of `path` in `fs`, following symlinks there,
/// and appends the rest: where a copy to `path` really lands.
fn resolve_in(fs: &LayeredFs, path: &str) -> String {
    let mut resolved = "/".to_owned();
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    for (i, comp) in comps.iter().enumerate() {
        let candidate = join(&resolved, comp);
        match fs.lookup(&candidate, true).ok().flatten() {
            Some(found) => resolved = found.path,
            None => {
                let mut rest = candidate;
                for c in &comps[i + 1..] {
                    rest = join(&rest, c);
                }
                return rest;
            }
        }
    }
    resolved
}

fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

fn display_path(p: &str) -> String {
    if p.starts_with('/') {
        p.to_owned()
    } else {
        format!("/{p}")
    }
}

fn base_name(rel: &str) -> String {
    rel.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(rel)
        .to_owned()
}

/// `--parents`: the path kept below the destination: all of it, or what
/// follows a `/./` pivot in the source.
fn parents_name(source: &str, rel: &str) -> String {
    match source.find("/./") {
        Some(i) => {
            let prefix = clean(&source[..i]);
            let prefix = prefix.trim_start_matches('/');
            rel.strip_prefix(prefix)
                .map(|r| r.trim_start_matches('/').to_owned())
                .unwrap_or_else(|| rel.to_owned())
        }
        None => rel.trim_start_matches("./").to_owned(),
    }
}

fn has_wildcards(text: &str) -> bool {
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

/// Lexically cleans an absolute path (`/a/./b/../c/` → `/a/c`).
pub(crate) fn clean(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            p => out.push(p),
        }
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning_and_names() {
        assert_eq!(clean("/a/./b/../c/"), "/a/c");
        assert_eq!(clean("/../x"), "/x");
        assert_eq!(base_name("a/b/c.txt"), "c.txt");
        assert_eq!(parents_name("a/b/c.txt", "a/b/c.txt"), "a/b/c.txt");
        assert_eq!(parents_name("a/./b/c.txt", "a/b/c.txt"), "b/c.txt");
        assert_eq!(join("/", "x"), "/x");
        assert_eq!(join("/a", "x"), "/a/x");
    }
}
