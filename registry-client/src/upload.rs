//! Blob uploads: skipped when the registry has the blob, mounted from
//! another repository of the same registry when berth knows one that has
//! it, otherwise streamed from the local file, in one PUT for small blobs
//! and in PATCH chunks for large ones. After a failure the upload resumes
//! where the registry says it got to (or starts a new session when the old
//! one is gone), within the client's retry budget.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use crate::auth::Scope;
use crate::client::{Client, Observer, repo_url};
use crate::error::RegistryError;
use crate::transport::errors::refusal;
use crate::transport::{Call, Payload, resolve_location};

/// Blobs up to this size go up in a single PUT; larger ones in chunks of
/// this size, so a failure costs at most one chunk.
pub const CHUNK: u64 = 64 << 20;

/// How a blob came to be in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// It was there already.
    Existed,
    /// Mounted from another repository: no bytes sent.
    Mounted,
    /// Sent.
    Uploaded,
}

enum Start {
    Mounted,
    Session(String),
}

impl Client {
    /// Makes blob `digest` (`size` bytes, stored at `path`) present in
    /// `repository` on `host`, trying a mount from `mount_from` first.
    #[allow(clippy::too_many_arguments)]
    pub fn push_blob(
        &self,
        host: &str,
        repository: &str,
        digest: &str,
        size: u64,
        path: &Path,
        mount_from: Option<&str>,
        observer: &dyn Observer,
    ) -> Result<Pushed, RegistryError> {
        if self.blob_size(host, repository, digest, true)?.is_some() {
            return Ok(Pushed::Existed);
        }
        let scope = Scope {
            mount_from: mount_from.map(str::to_owned),
            ..Scope::push(repository)
        };
        let base = self.base(host);
        // The session's current location and how many bytes it holds.
        let mut session: Option<(String, u64)> = None;
        let mut tried_mount = false;
        let mut check_status = false;
        self.transport.retry.run(
            self.cancel_flag(),
            |n, e| observer.retrying(n, e),
            |_| {
                if check_status {
                    if let Some((loc, _)) = session.take() {
                        session = self.upload_status(host, &scope, &base, &loc)?;
                    }
                    if session.is_none()
                        && self.blob_size(host, repository, digest, true)?.is_some()
                    {
                        // The last request completed; only its answer was lost.
                        return Ok(Pushed::Uploaded);
                    }
                    check_status = false;
                }
                if session.is_none() {
                    let mount = if tried_mount { None } else { mount_from };
                    tried_mount = true;
                    match self.start_upload(host, repository, &scope, &base, digest, mount)? {
                        Start::Mounted => return Ok(Pushed::Mounted),
                        Start::Session(loc) => session = Some((loc, 0)),
                    }
                }
                let Some((mut loc, mut offset)) = session.clone() else {
                    return Err(RegistryError::InvalidResponse {
                        host: host.to_owned(),
                        reason: "no upload session".into(),
                    });
                };
                // Whatever fails from here, ask the registry how far it got.
                check_status = true;
                if offset == 0 && size <= CHUNK {
                    self.finish_upload(
                        host,
                        &scope,
                        &loc,
                        digest,
                        Some((path, 0, size)),
                        observer,
                    )?;
                    return Ok(Pushed::Uploaded);
                }
                while offset < size {
                    let end = (offset + CHUNK).min(size);
                    let (next, held) =
                        self.patch_chunk(host, &scope, &base, &loc, path, offset, end, observer)?;
                    loc = next;
                    offset = held.unwrap_or(end);
                    session = Some((loc.clone(), offset));
                }
                self.finish_upload(host, &scope, &loc, digest, None, observer)?;
                Ok(Pushed::Uploaded)
            },
        )
    }

    fn start_upload(
        &self,
        host: &str,
        repository: &str,
        scope: &Scope,
        base: &str,
        digest: &str,
        mount_from: Option<&str>,
    ) -> Result<Start, RegistryError> {
        let mut url = format!("{}/blobs/uploads/", repo_url(self, host, repository));
        if let Some(from) = mount_from {
            url.push_str(&format!("?mount={digest}&from={from}"));
        }
        let mut resp = self
            .transport
            .execute(host, scope, &Call::new("POST", url))?;
        let status = resp.status().as_u16();
        match status {
            201 if mount_from.is_some() => Ok(Start::Mounted),
            // 202: a session to upload into (a refused mount says "upload
            // instead" this way too).
            201 | 202 => Ok(Start::Session(location(&resp, host, base)?)),
            _ => Err(refusal(&mut resp, true)),
        }
    }

    /// How many bytes the session at `loc` holds, and its new location;
    /// `None` when the session is gone.
    fn upload_status(
        &self,
        host: &str,
        scope: &Scope,
        base: &str,
        loc: &str,
    ) -> Result<Option<(String, u64)>, RegistryError> {
        let resp = self
            .transport
            .execute(host, scope, &Call::new("GET", loc.to_owned()))?;
        match resp.status().as_u16() {
            200..=299 => {
                let held = held_bytes(&resp).unwrap_or(0);
                let next = location(&resp, host, base).unwrap_or_else(|_| loc.to_owned());
                Ok(Some((next, held)))
            }
            _ => Ok(None),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn patch_chunk(
        &self,
        host: &str,
        scope: &Scope,
        base: &str,
        loc: &str,
        path: &Path,
        start: u64,
        end: u64,
        observer: &dyn Observer,
    ) -> Result<(String, Option<u64>), RegistryError> {
        let open = || open_range(path, start, end - start, observer);
        let call = Call::new("PATCH", loc.to_owned())
            .header("Content-Type", "application/octet-stream")
            .header("Content-Range", format!("{start}-{}", end - 1))
            .payload(Payload::Reader {
                open: &open,
                len: end - start,
            });
        let mut resp = self.transport.execute(host, scope, &call)?;
        let status = resp.status().as_u16();
        if status != 202 && status != 204 {
            return Err(match status {
                // The session and berth disagree about the offset: ask again.
                416 => RegistryError::Transient {
                    reason: format!("{host} refused the chunk at byte {start}"),
                    retry_after: None,
                },
                _ => refusal(&mut resp, true),
            });
        }
        Ok((location(&resp, host, base)?, held_bytes(&resp)))
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_upload(
        &self,
        host: &str,
        scope: &Scope,
        loc: &str,
        digest: &str,
        content: Option<(&Path, u64, u64)>,
        observer: &dyn Observer,
    ) -> Result<(), RegistryError> {
        let sep = if loc.contains('?') { '&' } else { '?' };
        let url = format!("{loc}{sep}digest={digest}");
        let open;
        let mut call = Call::new("PUT", url).header("Content-Type", "application/octet-stream");
        if let Some((path, start, len)) = content {
            open = move || open_range(path, start, len, observer);
            call = call.payload(Payload::Reader { open: &open, len });
        } else {
            call = call.header("Content-Length", "0");
        }
        let mut resp = self.transport.execute(host, scope, &call)?;
        let status = resp.status().as_u16();
        if status != 201 && status != 204 {
            return Err(refusal(&mut resp, true));
        }
        if let Some(theirs) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .filter(|t| *t != digest)
        {
            return Err(RegistryError::DigestMismatch {
                expected: digest.to_owned(),
                actual: theirs.to_owned(),
            });
        }
        Ok(())
    }
}

fn location(
    resp: &ureq::http::Response<ureq::Body>,
    host: &str,
    base: &str,
) -> Result<String, RegistryError> {
    resp.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(|l| resolve_location(base, l))
        .ok_or_else(|| RegistryError::InvalidResponse {
            host: host.to_owned(),
            reason: "upload answer has no Location".into(),
        })
}

/// Bytes an upload session holds, from its `Range: 0-<last>` header.
fn held_bytes(resp: &ureq::http::Response<ureq::Body>) -> Option<u64> {
    let v = resp.headers().get("range")?.to_str().ok()?;
    let last = v.trim().trim_start_matches("bytes=").split_once('-')?.1;
    // distribution says "0--1" for an empty session: no number, nothing held.
    last.parse::<u64>().ok().map(|l| l + 1).or(Some(0))
}

/// `len` bytes of `path` from `start`, counted for the observer.
fn open_range<'a>(
    path: &Path,
    start: u64,
    len: u64,
    observer: &'a dyn Observer,
) -> io::Result<Box<dyn Read + 'a>> {
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(start))?;
    Ok(Box::new(Counted {
        inner: f.take(len),
        observer,
    }))
}

struct Counted<'a, R> {
    inner: R,
    observer: &'a dyn Observer,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.observer.bytes(n as u64);
        Ok(n)
    }
}
