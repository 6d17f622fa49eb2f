//! berth's OCI distribution client.
//!
//! Will own image references (Docker's normalisation), authentication (Docker's
//! `config.json`, credential helpers, basic and bearer flows), and streaming
//! pull/push of blobs and manifests with retries. Nothing is implemented yet:
//! the crate exists so the workspace has its final shape.
