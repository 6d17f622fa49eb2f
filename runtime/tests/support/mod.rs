//! What several runtime test binaries share.

#![allow(dead_code)]

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use berth_runtime::layer::tree::{FileData, LayerTree, TreeEntry, TreeKind};

/// Lays out the tree below `root` as a `LayerTree` naming the files where
/// they are, the way COPY lays out its layers.
pub fn mirror(root: &Path, dir: &Path, tree: &mut LayerTree) {
    let mut names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let m = fs::symlink_metadata(&path).unwrap();
        let ft = m.file_type();
        let kind = if ft.is_dir() {
            TreeKind::Dir
        } else if ft.is_file() {
            TreeKind::File(FileData::Path(path.clone()))
        } else if ft.is_symlink() {
            TreeKind::Symlink(fs::read_link(&path).unwrap())
        } else if ft.is_char_device() {
            TreeKind::CharDevice { rdev: m.rdev() }
        } else if ft.is_block_device() {
            TreeKind::BlockDevice { rdev: m.rdev() }
        } else if ft.is_fifo() {
            TreeKind::Fifo
        } else {
            continue;
        };
        let mut xattrs: Vec<(Vec<u8>, Vec<u8>)> = xattr::list(&path)
            .unwrap()
            .map(|n| {
                let v = xattr::get(&path, &n).unwrap().unwrap();
                (n.as_bytes().to_vec(), v)
            })
            .collect();
        xattrs.sort();
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        tree.insert(
            &rel,
            TreeEntry {
                kind,
                mode: m.mode() & 0o7777,
                uid: m.uid(),
                gid: m.gid(),
                mtime: m.mtime(),
                xattrs,
                link_key: (m.nlink() > 1 && !ft.is_dir()).then(|| (m.dev(), m.ino())),
            },
        );
        if ft.is_dir() {
            mirror(root, &path, tree);
        }
    }
}
