//! berth's OCI distribution client.
//!
//! Owns image references ([`reference`](mod@reference): parsing and Docker's
//! normalisation of names such as `alpine` into `docker.io/library/alpine`).
//! Authentication
//! (Docker's `config.json`, credential helpers, basic and bearer flows) and
//! streaming pull/push of blobs and manifests with retries are still to come.

pub mod reference;
