//! The build cache: what each build step produced, keyed by what it depended
//! on, so that a rebuild reuses layers instead of recreating them.
//!
//! - [`key`]: cache keys, BuildKit-like: a step's key hashes its parent's key,
//!   the instruction and the content it reads, never timestamps;
//! - [`records`]: `cache/records/<key>.json` in the store: the layer a step
//!   produced and when, so cached rebuilds give identical images;
//! - [`stat`]: the stat cache that lets rebuilds skip rehashing context files
//!   whose inode, size, mtime and ctime did not change.

pub mod key;
pub mod records;
pub mod stat;

pub use key::{CacheKey, KeyBuilder};
pub use records::{BuildCache, CacheError, CacheRecord, LayerRef};
pub use stat::StatCache;
