//! Layers as blobs: turning a directory tree into a deterministic, compressed
//! layer tarball, and unpacking layer (or archive) tarballs back into
//! directories.
//!
//! - `compress`: gzip / zstd / uncompressed encoders and their media types;
//! - `writer`: directory tree -> deterministic tar -> compressed blob in the
//!   store, hashing the tar (diff ID) and the blob in one streaming pass;
//!   or the same from a [`tree::LayerTree`];
//! - `tree`: an in-memory layer whose file content stays where it is;
//! - `decompress`: recognising and decoding gzip, zstd, bzip2 and xz streams;
//! - `unpack`: tar -> directory, rejecting entries that escape the root.

pub mod compress;
pub mod decompress;
pub mod tree;
pub mod unpack;
pub mod writer;
