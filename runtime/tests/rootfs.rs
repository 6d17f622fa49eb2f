//! The merged view of a layer chain (as root): overlay rules, chroot-style
//! symlink resolution, small-file reads, and flattening — checked against
//! the kernel's own overlayfs mount of the same layers.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use std::sync::Arc;

use berth_runtime::layer::tree::{FileData, LayerTree, TreeEntry, TreeKind};
use berth_runtime::rootfs::{FsLayer, LayeredFs, RootfsError};
use tempfile::TempDir;

const PASSWD0: &str = "root:x:0:0:root:/root:/bin/sh\n";
const PASSWD1: &str = "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n";

struct Layer(PathBuf);

impl Layer {
    fn new(root: &Path, name: &str) -> Layer {
        let p = root.join(name);
        fs::create_dir(&p).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        Layer(p)
    }
    fn p(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
    fn parent(&self, rel: &str) {
        if let Some(parent) = self.p(rel).parent() {
            fs::create_dir_all(parent).unwrap();
        }
    }
    fn dir(&self, rel: &str, mode: u32) -> &Layer {
        fs::create_dir_all(self.p(rel)).unwrap();
        fs::set_permissions(self.p(rel), fs::Permissions::from_mode(mode)).unwrap();
        self
    }
    fn file(&self, rel: &str, content: &str, mode: u32) -> &Layer {
        self.parent(rel);
        fs::write(self.p(rel), content).unwrap();
        fs::set_permissions(self.p(rel), fs::Permissions::from_mode(mode)).unwrap();
        self
    }
    fn link(&self, rel: &str, target: &str) -> &Layer {
        self.parent(rel);
        symlink(target, self.p(rel)).unwrap();
        self
    }
    fn whiteout(&self, rel: &str) -> &Layer {
        self.parent(rel);
        rustix::fs::mknodat(
            rustix::fs::CWD,
            self.p(rel),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::empty(),
            rustix::fs::makedev(0, 0),
        )
        .unwrap();
        self
    }
    fn opaque(&self, rel: &str) -> &Layer {
        xattr::set(self.p(rel), "trusted.overlay.opaque", b"y").unwrap();
        self
    }
}

/// Three layers exercising every overlay rule; returns them bottom first.
fn chain(root: &Path) -> Vec<PathBuf> {
    let l0 = Layer::new(root, "l0");
    l0.dir("etc", 0o755)
        .file("etc/passwd", PASSWD0, 0o644)
        .file("etc/group", "root:x:0:\n", 0o644)
        .file("usr/bin/tool", "v0", 0o755)
        .file("usr/lib/liba", "a0", 0o644)
        .link("lib", "usr/lib")
        .file("opt/old/file", "old", 0o644)
        .file("opt/keep0", "k", 0o644)
        .file("data/inner", "x", 0o644)
        .file("gone", "g", 0o644)
        .link("abs", "/usr/bin")
        .link("loop1", "loop2")
        .link("loop2", "loop1")
        .file("hard1", "h", 0o640)
        .file("fx", "file at fx", 0o644)
        .file("owned", "o", 0o600)
        .file("suid", "s", 0o4755)
        .dir("sticky", 0o1777);
    fs::hard_link(l0.p("hard1"), l0.p("hard2")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        l0.p("fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o640),
        0,
    )
    .unwrap();
    rustix::fs::chownat(
        rustix::fs::CWD,
        l0.p("owned"),
        Some(rustix::fs::Uid::from_raw(1000)),
        Some(rustix::fs::Gid::from_raw(1001)),
        rustix::fs::AtFlags::empty(),
    )
    .unwrap();
    rustix::fs::chownat(
        rustix::fs::CWD,
        l0.p("abs"),
        Some(rustix::fs::Uid::from_raw(7)),
        Some(rustix::fs::Gid::from_raw(8)),
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
    filetime::set_file_mtime(
        l0.p("owned"),
        filetime::FileTime::from_unix_time(1_234_567_890, 5),
    )
    .unwrap();

    let l1 = Layer::new(root, "l1");
    l1.whiteout("gone")
        .dir("opt", 0o755)
        .opaque("opt")
        .file("opt/new", "new", 0o644)
        .file("usr/bin/tool", "v1", 0o700)
        .file("usr/lib/libb", "b1", 0o644)
        .file("etc/passwd", PASSWD1, 0o644)
        .link("up", "../../../usr")
        .link("link_to_gone", "/gone");
    xattr::set(l1.p("opt/new"), "user.k", b"v").unwrap();

    let l2 = Layer::new(root, "l2");
    l2.file("data", "now a file", 0o644)
        .file("usr/bin/tool2", "t2", 0o755)
        .whiteout("usr/lib/libb")
        .link("deep", "/lib")
        .file("fx/child/f", "c", 0o644)
        .dir("etc", 0o750)
        .file("etc/hosts", "127.0.0.1 localhost\n", 0o644);
    vec![l0.0, l1.0, l2.0]
}

fn names(fs: &LayeredFs, path: &str) -> Vec<String> {
    fs.read_dir(path)
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}

#[test]
fn overlay_rules() {
    let tmp = TempDir::new().unwrap();
    let layers = chain(tmp.path());
    let view = LayeredFs::new(layers.clone());

    // Top-most wins.
    let passwd = view.lookup("/etc/passwd", false).unwrap().unwrap();
    assert_eq!(passwd.path, "/etc/passwd");
    assert_eq!(passwd.host_path().unwrap(), layers[1].join("etc/passwd"));
    assert!(passwd.metadata.is_file());
    let tool = view.lookup("/usr/bin/tool", false).unwrap().unwrap();
    assert_eq!(tool.host_path().unwrap(), layers[1].join("usr/bin/tool"));
    assert_eq!(tool.metadata.mode() & 0o7777, 0o700);
    // A merged directory carries the top-most directory's metadata.
    let etc = view.lookup("/etc", false).unwrap().unwrap();
    assert_eq!(etc.host_path().unwrap(), layers[2].join("etc"));
    assert_eq!(etc.metadata.mode() & 0o7777, 0o750);
    assert_eq!(names(&view, "/etc"), ["group", "hosts", "passwd"]);

    // Whiteouts hide, in the middle and at the top.
    assert!(view.lookup("/gone", false).unwrap().is_none());
    assert!(view.lookup("/usr/lib/libb", false).unwrap().is_none());
    assert_eq!(names(&view, "/usr/lib"), ["liba"]);

    // An opaque directory hides what is below it.
    assert!(view.lookup("/opt/old", false).unwrap().is_none());
    assert!(view.lookup("/opt/keep0", false).unwrap().is_none());
    assert_eq!(names(&view, "/opt"), ["new"]);

    // A file replaces a directory entirely, and a directory a file.
    let data = view.lookup("/data", false).unwrap().unwrap();
    assert!(data.metadata.is_file());
    assert!(view.lookup("/data/inner", false).unwrap().is_none());
    assert!(
        view.lookup("/fx", false)
            .unwrap()
            .unwrap()
            .metadata
            .is_dir()
    );
    assert_eq!(names(&view, "/fx"), ["child"]);

    // Sorted by name bytes; whiteouts never listed.
    assert_eq!(
        names(&view, "/"),
        [
            "abs",
            "data",
            "deep",
            "etc",
            "fifo",
            "fx",
            "hard1",
            "hard2",
            "lib",
            "link_to_gone",
            "loop1",
            "loop2",
            "opt",
            "owned",
            "sticky",
            "suid",
            "up",
            "usr"
        ]
    );
    let root = view.read_dir("/").unwrap();
    let (_, lib) = root.iter().find(|(n, _)| n == "lib").unwrap();
    assert!(lib.metadata.is_symlink(), "entries are not followed");
    assert_eq!(lib.path, "/lib");
    let (_, usr) = root.iter().find(|(n, _)| n == "usr").unwrap();
    assert_eq!(usr.host_path().unwrap(), layers[2].join("usr"));
    assert_eq!(names(&view, "/usr/bin"), ["tool", "tool2"]);
}

#[test]
fn symlinks_resolve_like_a_chroot() {
    let tmp = TempDir::new().unwrap();
    let layers = chain(tmp.path());
    let view = LayeredFs::new(layers.clone());

    // Relative, through an intermediate component.
    let liba = view.lookup("/lib/liba", false).unwrap().unwrap();
    assert_eq!(liba.path, "/usr/lib/liba");
    assert_eq!(liba.host_path().unwrap(), layers[0].join("usr/lib/liba"));
    // The final component only when asked.
    let lib = view.lookup("/lib", false).unwrap().unwrap();
    assert_eq!(lib.path, "/lib");
    assert!(lib.metadata.is_symlink());
    let lib = view.lookup("/lib", true).unwrap().unwrap();
    assert_eq!(lib.path, "/usr/lib");
    assert!(lib.metadata.is_dir());
    assert_eq!(
        view.lookup("/lib/", false).unwrap().unwrap().path,
        "/usr/lib"
    );
    // Absolute targets start at the image root, not the host's.
    let tool = view.lookup("/abs/tool", true).unwrap().unwrap();
    assert_eq!(tool.path, "/usr/bin/tool");
    assert_eq!(tool.host_path().unwrap(), layers[1].join("usr/bin/tool"));
    // `..` at the root stays there.
    assert_eq!(
        view.lookup("/up/bin/tool2", false).unwrap().unwrap().path,
        "/usr/bin/tool2"
    );
    assert_eq!(
        view.lookup("/../../etc/passwd", false)
            .unwrap()
            .unwrap()
            .path,
        "/etc/passwd"
    );
    // A symlink to a symlink.
    assert_eq!(
        view.lookup("/deep/liba", false).unwrap().unwrap().path,
        "/usr/lib/liba"
    );
    // `..` after a symlink is taken from where the link leads.
    assert_eq!(
        view.lookup("/lib/../bin/tool", false)
            .unwrap()
            .unwrap()
            .path,
        "/usr/bin/tool"
    );
    assert_eq!(
        view.lookup("usr/./bin/../lib", false)
            .unwrap()
            .unwrap()
            .path,
        "/usr/lib"
    );
    // Loops end in an error, but the link itself can be looked at.
    assert!(view.lookup("/loop1", false).unwrap().is_some());
    let err = view.lookup("/loop1", true).unwrap_err();
    assert!(matches!(err, RootfsError::SymlinkLoop { .. }), "{err:?}");
    assert!(err.to_string().contains("/loop1"), "{err}");
    assert!(matches!(
        view.lookup("/loop2/x", false),
        Err(RootfsError::SymlinkLoop { .. })
    ));
    // A link to a whited-out path leads nowhere.
    assert!(view.lookup("/link_to_gone", false).unwrap().is_some());
    assert!(view.lookup("/link_to_gone", true).unwrap().is_none());
    // A file used as a directory, and plain absence.
    assert!(view.lookup("/etc/passwd/x", false).unwrap().is_none());
    assert!(view.lookup("/nope/x", false).unwrap().is_none());
    // The root.
    let root = view.lookup("/", false).unwrap().unwrap();
    assert_eq!(root.path, "/");
    assert_eq!(root.host_path().unwrap(), layers[2]);
    // read_dir follows symlinks in its path.
    assert_eq!(names(&view, "/lib"), ["liba"]);
    assert_eq!(names(&view, "/deep"), ["liba"]);
    let listed = view.read_dir("/abs").unwrap();
    assert_eq!(listed[0].1.path, "/usr/bin/tool");
}

#[test]
fn read_file_reads_small_files() {
    let tmp = TempDir::new().unwrap();
    let view = LayeredFs::new(chain(tmp.path()));
    assert_eq!(
        view.read_file("/etc/passwd", 4096).unwrap().unwrap(),
        PASSWD1.as_bytes()
    );
    assert_eq!(
        view.read_file("/lib/../bin/tool", 16).unwrap().unwrap(),
        b"v1"
    );
    assert_eq!(view.read_file("/abs/tool2", 16).unwrap().unwrap(), b"t2");
    assert_eq!(view.read_file("/missing", 16).unwrap(), None);
    assert_eq!(view.read_file("/gone", 16).unwrap(), None);
    assert!(matches!(
        view.read_file("/usr", 16),
        Err(RootfsError::NotAFile { .. })
    ));
    assert!(matches!(
        view.read_file("/fifo", 16),
        Err(RootfsError::NotAFile { .. })
    ));
    let err = view.read_file("/etc/passwd", 5).unwrap_err();
    assert!(
        matches!(err, RootfsError::TooLarge { size, limit: 5, .. } if size == PASSWD1.len() as u64),
        "{err:?}"
    );
    assert!(matches!(
        view.read_dir("/etc/passwd"),
        Err(RootfsError::NotADirectory { .. })
    ));
    let err = view.read_dir("/nope").unwrap_err();
    assert!(matches!(err, RootfsError::NotFound { .. }));
    assert!(err.to_string().contains("/nope"), "{err}");
}

#[test]
fn no_layers_is_an_empty_image() {
    let tmp = TempDir::new().unwrap();
    let view = LayeredFs::new(Vec::new());
    assert!(view.lookup("/", false).unwrap().is_none());
    assert!(view.read_dir("/").unwrap().is_empty());
    assert_eq!(view.read_file("/etc/passwd", 10).unwrap(), None);
    view.flatten_into(tmp.path()).unwrap();
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn flatten_refuses_a_non_empty_destination() {
    let tmp = TempDir::new().unwrap();
    let view = LayeredFs::new(chain(tmp.path()));
    let err = view.flatten_into(tmp.path()).unwrap_err();
    assert!(matches!(err, RootfsError::DestNotEmpty { .. }), "{err:?}");
}

/// Unmounts on drop, so a failing assertion does not leave a mount behind.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Everything about one entry that a flattened copy must preserve.
#[derive(Debug, PartialEq)]
struct Entry {
    kind: &'static str,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: (i64, i64),
    rdev: u64,
    content: Option<Vec<u8>>,
    target: Option<PathBuf>,
    xattrs: BTreeMap<String, Vec<u8>>,
}

fn snapshot_tree(root: &Path) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            let ft = m.file_type();
            let kind = if ft.is_dir() {
                stack.push(p.clone());
                "dir"
            } else if ft.is_file() {
                "file"
            } else if ft.is_symlink() {
                "symlink"
            } else if ft.is_fifo() {
                "fifo"
            } else if ft.is_char_device() {
                "char"
            } else {
                "other"
            };
            let xattrs = xattr::list(&p)
                .unwrap()
                .filter(|n| !n.to_string_lossy().starts_with("trusted.overlay."))
                .map(|n| {
                    let v = xattr::get(&p, &n).unwrap().unwrap_or_default();
                    (n.to_string_lossy().into_owned(), v)
                })
                .collect();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            out.insert(
                rel,
                Entry {
                    kind,
                    mode: m.mode(),
                    uid: m.uid(),
                    gid: m.gid(),
                    mtime: (m.mtime(), m.mtime_nsec()),
                    rdev: m.rdev(),
                    content: ft.is_file().then(|| fs::read(&p).unwrap()),
                    target: ft.is_symlink().then(|| fs::read_link(&p).unwrap()),
                    xattrs,
                },
            );
        }
    }
    out
}

#[test]
fn flatten_matches_an_overlay_mount() {
    let tmp = TempDir::new().unwrap();
    let layers = chain(tmp.path());
    let view = LayeredFs::new(layers.clone());
    let out = tmp.path().join("out");
    fs::create_dir(&out).unwrap();
    view.flatten_into(&out).unwrap();
    let flat = snapshot_tree(&out);

    // What berth must produce, spelled out.
    assert_eq!(
        flat.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "abs",
            "data",
            "deep",
            "etc",
            "etc/group",
            "etc/hosts",
            "etc/passwd",
            "fifo",
            "fx",
            "fx/child",
            "fx/child/f",
            "hard1",
            "hard2",
            "lib",
            "link_to_gone",
            "loop1",
            "loop2",
            "opt",
            "opt/new",
            "owned",
            "sticky",
            "suid",
            "up",
            "usr",
            "usr/bin",
            "usr/bin/tool",
            "usr/bin/tool2",
            "usr/lib",
            "usr/lib/liba",
        ]
    );
    assert_eq!(
        flat["etc/passwd"].content.as_deref(),
        Some(PASSWD1.as_bytes())
    );
    assert_eq!(flat["usr/bin/tool"].content.as_deref(), Some(&b"v1"[..]));
    assert_eq!(flat["usr/bin/tool"].mode & 0o7777, 0o700);
    assert_eq!(flat["data"].content.as_deref(), Some(&b"now a file"[..]));
    assert_eq!(flat["etc"].mode & 0o7777, 0o750);
    assert_eq!(flat["suid"].mode & 0o7777, 0o4755);
    assert_eq!(flat["sticky"].mode & 0o7777, 0o1777);
    assert_eq!(
        (flat["owned"].uid, flat["owned"].gid, flat["owned"].mtime),
        (1000, 1001, (1_234_567_890, 5))
    );
    assert_eq!((flat["abs"].uid, flat["abs"].gid), (7, 8));
    assert_eq!(flat["abs"].target.as_deref(), Some(Path::new("/usr/bin")));
    assert_eq!(flat["fifo"].kind, "fifo");
    assert_eq!(
        flat["opt/new"].xattrs.get("user.k").map(Vec::as_slice),
        Some(&b"v"[..])
    );
    assert!(
        xattr::get(out.join("opt"), "trusted.overlay.opaque")
            .unwrap()
            .is_none(),
        "overlay bookkeeping is not copied"
    );
    let ino = |p: &str| fs::metadata(out.join(p)).unwrap().ino();
    assert_eq!(ino("hard1"), ino("hard2"), "hardlinks stay hardlinks");

    // The kernel's own answer: an overlay mount of the same layers.
    let mnt = tmp.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let lowers = layers
        .iter()
        .rev()
        .map(|l| l.to_str().unwrap())
        .collect::<Vec<_>>()
        .join(":");
    let status = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o"])
        .arg(format!("ro,lowerdir={lowers}"))
        .arg(&mnt)
        .status();
    match status {
        Ok(s) if s.success() => {
            let _mount = Mount(mnt.clone());
            let merged = snapshot_tree(&mnt);
            assert_eq!(
                merged.keys().collect::<Vec<_>>(),
                flat.keys().collect::<Vec<_>>()
            );
            for (path, want) in &merged {
                assert_eq!(&flat[path], want, "{path}");
            }
        }
        other => eprintln!("overlay mount unavailable ({other:?}): kernel comparison skipped"),
    }
}

#[test]
fn flatten_handles_deep_trees() {
    let tmp = TempDir::new().unwrap();
    let l0 = Layer::new(tmp.path(), "l0");
    let deep: String = (0..400).map(|_| "d/").collect();
    l0.file(&format!("{deep}leaf"), "bottom", 0o644);
    let view = LayeredFs::new(vec![l0.0.clone()]);
    let out = tmp.path().join("out");
    fs::create_dir(&out).unwrap();
    view.flatten_into(&out).unwrap();
    assert_eq!(
        fs::read_to_string(out.join(format!("{deep}leaf"))).unwrap(),
        "bottom"
    );
    assert_eq!(
        view.read_file(&format!("/{deep}leaf"), 100)
            .unwrap()
            .unwrap(),
        b"bottom"
    );
}

fn tree_entry(kind: TreeKind, mode: u32, owner: u32) -> TreeEntry {
    TreeEntry {
        kind,
        mode,
        uid: owner,
        gid: owner,
        mtime: 1_700_000_000,
        xattrs: Vec::new(),
        link_key: None,
    }
}

/// An in-memory layer (what a COPY lays out) over snapshot directories
/// merges by the same rules: it hides, replaces and adds, symlinks in it
/// are followed, and its files read from where it says they are.
#[test]
fn in_memory_layers_merge_like_snapshots() {
    let tmp = TempDir::new().unwrap();
    let layers = chain(tmp.path());
    let outside = tmp.path().join("passwd.src");
    fs::write(&outside, "root:x:0:0::/:/bin/sh\napp:x:7:7::/:/bin/sh\n").unwrap();
    let mut tree = LayerTree::new();
    tree.insert("etc", tree_entry(TreeKind::Dir, 0o755, 0));
    tree.insert(
        "etc/passwd",
        tree_entry(TreeKind::File(FileData::Path(outside.clone())), 0o600, 0),
    );
    tree.insert("app", tree_entry(TreeKind::Dir, 0o750, 7));
    tree.insert(
        "app/hello",
        tree_entry(
            TreeKind::File(FileData::Bytes(b"hi\n".as_slice().into())),
            0o644,
            7,
        ),
    );
    tree.insert("fx", tree_entry(TreeKind::Symlink("/app".into()), 0o777, 0));
    let mut all: Vec<FsLayer> = layers.iter().cloned().map(FsLayer::Dir).collect();
    all.push(FsLayer::Tree(Arc::new(tree)));
    let view = LayeredFs::from_layers(all);

    let passwd = view.read_file("/etc/passwd", 4096).unwrap().unwrap();
    assert!(String::from_utf8(passwd).unwrap().contains("app:x:7"));
    // The tree's /etc merges with the snapshots' and takes the top metadata.
    assert_eq!(names(&view, "/etc"), ["group", "hosts", "passwd"]);
    let etc = view.lookup("/etc", false).unwrap().unwrap();
    assert_eq!(etc.metadata.mode(), 0o755);
    assert!(etc.host_path().is_none());
    // A symlink in the tree replaces a directory below and is followed.
    assert_eq!(
        view.read_file("/fx/hello", 64).unwrap().unwrap(),
        b"hi\n".to_vec()
    );
    assert!(view.lookup("/fx/child", false).unwrap().is_none());
    let found = view.lookup("/fx/hello", true).unwrap().unwrap();
    assert_eq!(found.path, "/app/hello");
    assert_eq!((found.metadata.uid(), found.metadata.mode()), (7, 0o644));
    assert_eq!(found.metadata.len(), 3);

    // Flattening writes the tree's entries with their metadata.
    let out = tmp.path().join("flat");
    fs::create_dir(&out).unwrap();
    view.flatten_into(&out).unwrap();
    assert_eq!(fs::read_to_string(out.join("app/hello")).unwrap(), "hi\n");
    let m = fs::metadata(out.join("app")).unwrap();
    assert_eq!((m.mode() & 0o7777, m.uid()), (0o750, 7));
    assert_eq!(m.mtime(), 1_700_000_000);
    assert_eq!(fs::read_link(out.join("fx")).unwrap(), Path::new("/app"));
    assert_eq!(
        fs::read(out.join("etc/passwd")).unwrap(),
        fs::read(&outside).unwrap()
    );
    assert!(out.join("etc/hosts").is_file());
}
