//! The store lock: one advisory `flock` on `<root>/store.lock`.
//!
//! Several berth processes may share a store with no daemon between them.
//! Everything that reads, modifies and writes `index.json`, and garbage
//! collection, holds this lock exclusively, so one process's update is never
//! lost to another's and gc never sees a half-made change. Blob writes do not
//! take it: they are content-addressed and land with an atomic rename.
//!
//! `flock` locks belong to the open file description, so two threads of one
//! process that each take the lock exclude each other too, and the kernel
//! drops the lock when a process dies.

use std::fs::{File, OpenOptions};
use std::path::Path;

use rustix::fs::{FlockOperation, flock};
use rustix::io::Errno;

use super::error::{IoContext, Result};

/// Held while alive; dropping it closes the file and releases the lock.
#[derive(Debug)]
pub(crate) struct StoreLock {
    _file: File,
}

impl StoreLock {
    /// Blocks until this process holds the lock at `path`, creating the file if needed.
    pub(crate) fn acquire(path: &Path) -> Result<StoreLock> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .at("open lock file", path)?;
        loop {
            match flock(&file, FlockOperation::LockExclusive) {
                Ok(()) => return Ok(StoreLock { _file: file }),
                // A signal interrupted the wait: wait again.
                Err(Errno::INTR) => continue,
                Err(e) => return Err(std::io::Error::from(e)).at("lock", path),
            }
        }
    }
}
