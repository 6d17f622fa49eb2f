//! Pull and push progress on stderr: one line per blob as its state
//! changes (`a3ed95caeb02: Pull complete`), and a line per retry, in the
//! words `docker pull`/`docker push` use so logs read the same.

use std::io::Write;
use std::sync::Mutex;

use berth_builder::images::human_size;
use berth_builder::transfer::{BlobState, TransferEvent, TransferProgress};

/// Which way blobs go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Pull,
    Push,
}

pub struct TransferPrinter {
    direction: Direction,
    quiet: bool,
    lock: Mutex<()>,
}

impl TransferPrinter {
    pub fn new(direction: Direction, quiet: bool) -> TransferPrinter {
        TransferPrinter {
            direction,
            quiet,
            lock: Mutex::new(()),
        }
    }

    fn line(&self, text: &str) {
        let _guard = self.lock.lock();
        let _ = writeln!(std::io::stderr().lock(), "{text}");
    }
}

/// The 12 hex digits Docker shows for a blob.
fn short(digest: &str) -> &str {
    let hex = digest.split_once(':').map(|(_, h)| h).unwrap_or(digest);
    hex.get(..12).unwrap_or(hex)
}

impl TransferProgress for TransferPrinter {
    fn event(&self, event: TransferEvent) {
        if self.quiet {
            return;
        }
        let pull = self.direction == Direction::Pull;
        match event {
            TransferEvent::Blob {
                digest,
                size,
                state,
            } => {
                let what = match state {
                    BlobState::Exists if pull => "Already exists".to_owned(),
                    BlobState::Exists => "Layer already exists".to_owned(),
                    BlobState::Mounted => "Mounted from another repository".to_owned(),
                    BlobState::Started if pull => format!("Downloading {}", human_size(size)),
                    // A push learns only at the end whether it had to send
                    // anything: the line comes then.
                    BlobState::Started => return,
                    BlobState::Done if pull => "Pull complete".to_owned(),
                    BlobState::Done => format!("Pushed {}", human_size(size)),
                };
                self.line(&format!("{}: {what}", short(&digest)));
            }
            TransferEvent::Retrying { attempt, error } => {
                self.line(&format!("attempt {attempt} failed, retrying: {error}"));
            }
            TransferEvent::Resolved { .. } | TransferEvent::Bytes { .. } => {}
        }
    }
}
