//! Blob downloads: streamed into the caller's sink in fixed-size pieces,
//! resumed with `Range` after a dropped connection or a stall, and retried
//! within the client's budget. Memory does not grow with the blob.

use std::io::{self, Read};

use crate::auth::Scope;
use crate::client::{Client, Observer, repo_url};
use crate::error::RegistryError;
use crate::transport::Call;
use crate::transport::errors::{classify_io, from_status, refusal};

/// Where a downloaded blob goes. The sink checks the content against its
/// digest when the caller finishes it (berth's store does), so a corrupt
/// download is never kept.
pub trait BlobSink {
    /// Bytes already held: a download continues after them.
    fn offset(&self) -> u64;
    fn write_all(&mut self, data: &[u8]) -> io::Result<()>;
    /// Drops everything held: the registry sent the blob from the start.
    fn restart(&mut self) -> io::Result<()>;
}

const PIECE: usize = 256 * 1024;

impl Client {
    /// Whether `repository` on `host` has the blob, and its size.
    pub fn blob_size(
        &self,
        host: &str,
        repository: &str,
        digest: &str,
        push: bool,
    ) -> Result<Option<u64>, RegistryError> {
        let url = format!("{}/blobs/{digest}", repo_url(self, host, repository));
        let scope = if push {
            Scope::push(repository)
        } else {
            Scope::pull(repository)
        };
        self.transport.retry.run(
            self.cancel_flag(),
            |_, _| {},
            |_| {
                let resp = self
                    .transport
                    .execute(host, &scope, &Call::new("HEAD", url.clone()))?;
                match resp.status().as_u16() {
                    200 => Ok(Some(
                        resp.headers()
                            .get("content-length")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0),
                    )),
                    404 => Ok(None),
                    status => Err(from_status(status, &[], push)),
                }
            },
        )
    }

    /// Downloads blob `digest` of `size` bytes (when known) into `sink`,
    /// continuing after what the sink already holds.
    pub fn fetch_blob(
        &self,
        host: &str,
        repository: &str,
        digest: &str,
        size: Option<u64>,
        sink: &mut dyn BlobSink,
        observer: &dyn Observer,
    ) -> Result<(), RegistryError> {
        let url = format!("{}/blobs/{digest}", repo_url(self, host, repository));
        let scope = Scope::pull(repository);
        let mut buf = vec![0u8; PIECE];
        self.transport.retry.run(
            self.cancel_flag(),
            |n, e| observer.retrying(n, e),
            |_| {
                let offset = sink.offset();
                if size.is_some_and(|s| s > 0 && offset == s) {
                    return Ok(());
                }
                if size.is_some_and(|s| offset > s) {
                    sink.restart().map_err(|e| RegistryError::local("restart download", e))?;
                }
                let offset = sink.offset();
                // The blob is compressed already; a transparently re-encoded
                // body would not hash to its digest.
                let mut call = Call::new("GET", url.clone()).header("Accept-Encoding", "identity");
                if offset > 0 {
                    call = call.header("Range", format!("bytes={offset}-"));
                }
                let mut resp = self.transport.execute(host, &scope, &call)?;
                match resp.status().as_u16() {
                    200 => {
                        if offset > 0 {
                            // The registry ignored the range: start over.
                            sink.restart().map_err(|e| RegistryError::local("restart download", e))?;
                        }
                    }
                    206 => {
                        let start = resp
                            .headers()
                            .get("content-range")
                            .and_then(|v| v.to_str().ok())
                            .and_then(content_range_start);
                        if start != Some(offset) {
                            sink.restart().map_err(|e| RegistryError::local("restart download", e))?;
                            return Err(RegistryError::Transient {
                                reason: format!("{host} answered a range request with the wrong range"),
                                retry_after: None,
                            });
                        }
                    }
                    416 if offset > 0 => {
                        sink.restart().map_err(|e| RegistryError::local("restart download", e))?;
                        return Err(RegistryError::Transient {
                            reason: format!("{host} refused to resume at byte {offset}"),
                            retry_after: None,
                        });
                    }
                    404 => {
                        return Err(RegistryError::BlobUnknown {
                            digest: digest.to_owned(),
                        });
                    }
                    _ => {
                        return Err(refusal(&mut resp, false));
                    }
                }
                let mut reader = resp.body_mut().as_reader();
                loop {
                    let n = match reader.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            return Err(match classify_io(host, &e) {
                                RegistryError::Transient { reason, .. } => RegistryError::Transient {
                                    reason: format!(
                                        "download of {digest} broke off after {} bytes: {reason}",
                                        sink.offset()
                                    ),
                                    retry_after: None,
                                },
                                other => other,
                            });
                        }
                    };
                    sink.write_all(&buf[..n])
                        .map_err(|e| RegistryError::local(format!("store blob {digest}"), e))?;
                    observer.bytes(n as u64);
                }
                if let Some(s) = size
                    && sink.offset() != s
                {
                    return Err(RegistryError::Transient {
                        reason: format!(
                            "download of {digest} ended after {} of {s} bytes",
                            sink.offset()
                        ),
                        retry_after: None,
                    });
                }
                Ok(())
            },
        )
    }
}

/// `bytes 100-199/200` → 100.
fn content_range_start(v: &str) -> Option<u64> {
    v.trim()
        .strip_prefix("bytes ")?
        .split('-')
        .next()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn content_range() {
        assert_eq!(super::content_range_start("bytes 100-199/200"), Some(100));
        assert_eq!(super::content_range_start("bytes */200"), None);
    }
}
