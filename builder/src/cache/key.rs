//! Cache keys: a sha256 over length-prefixed fields, so that no two different
//! field sequences hash alike (`["ab", "c"]` vs `["a", "bc"]`).

use berth_runtime::store::{Digest, Hasher};

/// The identity of a build step's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey(pub Digest);

impl CacheKey {
    pub fn hex(&self) -> String {
        self.0.hex()
    }
}

/// Accumulates the fields a key depends on.
pub struct KeyBuilder(Hasher);

impl KeyBuilder {
    /// Starts a key for a step of kind `kind` (`"COPY"`, `"base"`, …). The
    /// version prefix changes whenever key layout or layer bytes change, so
    /// old records are never reused for different output.
    pub fn new(kind: &str) -> KeyBuilder {
        let mut b = KeyBuilder(Hasher::new());
        b.str("berth-cache-v1");
        b.str(kind);
        b
    }

    pub fn bytes(&mut self, bytes: &[u8]) -> &mut KeyBuilder {
        self.0.update(&(bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
        self
    }

    pub fn str(&mut self, s: &str) -> &mut KeyBuilder {
        self.bytes(s.as_bytes())
    }

    pub fn u64(&mut self, n: u64) -> &mut KeyBuilder {
        self.0.update(&n.to_le_bytes());
        self
    }

    pub fn digest(&mut self, d: &Digest) -> &mut KeyBuilder {
        self.bytes(d.as_bytes())
    }

    pub fn key(&mut self, k: &CacheKey) -> &mut KeyBuilder {
        self.digest(&k.0)
    }

    pub fn opt_str(&mut self, s: Option<&str>) -> &mut KeyBuilder {
        match s {
            Some(s) => self.u64(1).str(s),
            None => self.u64(0),
        }
    }

    pub fn finish(self) -> CacheKey {
        CacheKey(self.0.finish())
    }
}
