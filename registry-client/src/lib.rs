//! berth's OCI distribution client.
//!
//! Owns image references ([`reference`](mod@reference): parsing and Docker's
//! normalisation of names such as `alpine` into `docker.io/library/alpine`),
//! authentication ([`auth`]: Docker's `config.json`, credential helpers,
//! basic and bearer flows), and the protocol itself: manifests
//! ([`manifest`]), streamed and resumable blob downloads ([`download`]) and
//! uploads ([`upload`]), over a transport ([`transport`]) that retries what
//! is transient and never logs a credential.
//!
//! It is synchronous, like the rest of berth: callers run transfers on
//! threads. It knows nothing of berth's store; downloads go into a
//! [`download::BlobSink`], uploads come from a file.
//!
//! DESIGN.md names `oci-client` for this crate. berth speaks the protocol
//! itself on `ureq` instead, because what this crate must do lives below
//! `oci-client`'s API: honouring `Retry-After` and classifying statuses for
//! retries needs the response headers; resuming a download needs `Range`
//! and `Content-Range`; resuming an upload needs the session's `Location`
//! and `Range`; a refused mount (202) must become an upload. `oci-client`
//! is also async (tokio and reqwest), while berth runs on threads without
//! an async runtime, and `ureq` was already in the build.

pub mod auth;
pub mod client;
pub mod download;
pub mod error;
pub mod manifest;
pub mod reference;
pub mod transport;
pub mod upload;

pub use client::{Client, Observer, Quiet};
pub use error::RegistryError;
pub use transport::{RetryPolicy, TransportOptions};
