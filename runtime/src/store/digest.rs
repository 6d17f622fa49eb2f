//! Content digests: the `sha256:<hex>` names of blobs.
//!
//! Owns parsing and validation of digest strings, their display form, the
//! path of a blob inside an OCI layout, and the streaming hasher that produces
//! digests. Only sha256 is supported: it is what every registry and OCI tool
//! uses, and one algorithm keeps the store's layout to one directory.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// The one algorithm berth stores content under.
pub const SHA256: &str = "sha256";

/// Why a digest string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("invalid digest {input:?}: expected \"sha256:\" followed by 64 lowercase hex digits")]
    Malformed { input: String },
    #[error(
        "unsupported digest algorithm {algorithm:?} in {input:?}: berth stores sha256 content only"
    )]
    UnsupportedAlgorithm { input: String, algorithm: String },
    #[error("invalid digest {input:?}: {reason}")]
    BadHex { input: String, reason: &'static str },
}

/// A sha256 content digest, e.g. `sha256:e3b0c442…`.
///
/// Held as the raw 32 bytes so it is `Copy` and compares cheaply; the string
/// form is produced on demand.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    /// Parses `sha256:<64 lowercase hex>`.
    pub fn parse(input: &str) -> Result<Digest, DigestError> {
        let Some((algorithm, hex)) = input.split_once(':') else {
            return Err(DigestError::Malformed {
                input: input.to_owned(),
            });
        };
        if algorithm != SHA256 {
            // Tell "another algorithm" apart from "garbage" so the user knows
            // whether the input was valid elsewhere.
            let looks_like_algorithm = !algorithm.is_empty()
                && algorithm
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b));
            return Err(if looks_like_algorithm {
                DigestError::UnsupportedAlgorithm {
                    input: input.to_owned(),
                    algorithm: algorithm.to_owned(),
                }
            } else {
                DigestError::Malformed {
                    input: input.to_owned(),
                }
            });
        }
        Self::from_hex(hex).map_err(|reason| DigestError::BadHex {
            input: input.to_owned(),
            reason,
        })
    }

    /// Parses the bare 64-character lowercase hex part (as found in blob file names).
    pub fn from_hex(hex: &str) -> Result<Digest, &'static str> {
        let bytes = hex.as_bytes();
        if bytes.len() != 64 {
            return Err("a sha256 digest has exactly 64 hex digits");
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        }
        Ok(Digest(out))
    }

    /// Wraps a raw 32-byte sha256 output.
    pub const fn from_bytes(bytes: [u8; 32]) -> Digest {
        Digest(bytes)
    }

    /// The digest of `data`, hashed in one go (use [`Hasher`] for streams).
    pub fn of(data: &[u8]) -> Digest {
        let mut h = Hasher::new();
        h.update(data);
        h.finish()
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Always `"sha256"`.
    pub fn algorithm(&self) -> &'static str {
        SHA256
    }

    /// The 64 lowercase hex digits, without the algorithm prefix.
    pub fn hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(DIGITS[usize::from(b >> 4)] as char);
            s.push(DIGITS[usize::from(b & 0xf)] as char);
        }
        s
    }

    /// The blob's path relative to the layout root: `blobs/sha256/<hex>`.
    pub fn relative_path(&self) -> PathBuf {
        let mut p = PathBuf::from("blobs");
        p.push(SHA256);
        p.push(self.hex());
        p
    }
}

fn nibble(c: u8) -> Result<u8, &'static str> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Err("hex digits must be lowercase"),
        _ => Err("not a hex digit"),
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SHA256}:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Streaming sha256: feed bytes with [`update`](Hasher::update) or as an
/// [`io::Write`] sink, then [`finish`](Hasher::finish).
#[derive(Clone, Default)]
pub struct Hasher(Sha256);

impl Hasher {
    pub fn new() -> Hasher {
        Hasher(Sha256::new())
    }

    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub fn finish(self) -> Digest {
        let out = self.0.finalize();
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(out.as_slice());
        Digest(bytes)
    }
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hasher")
    }
}

impl io::Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn hashes_and_round_trips() {
        let d = Digest::of(b"");
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(Digest::parse(EMPTY).unwrap(), d);
        assert_eq!(d.hex(), &EMPTY[7..]);
        assert_eq!(
            d.relative_path(),
            PathBuf::from(format!("blobs/sha256/{}", &EMPTY[7..]))
        );
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{EMPTY}\""));
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
    }

    #[test]
    fn streaming_equals_one_shot() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut h = Hasher::new();
        for chunk in data.chunks(997) {
            h.update(chunk);
        }
        assert_eq!(h.finish(), Digest::of(&data));
    }

    #[test]
    fn rejects_bad_input() {
        let hex = &EMPTY[7..];
        assert!(matches!(
            Digest::parse(&format!("sha512:{hex}")),
            Err(DigestError::UnsupportedAlgorithm { algorithm, .. }) if algorithm == "sha512"
        ));
        let upper = format!("sha256:{}", hex.to_uppercase());
        let err = Digest::parse(&upper).unwrap_err();
        assert!(err.to_string().contains("lowercase"), "{err}");
        assert!(Digest::parse(&EMPTY[..70]).is_err());
        assert!(Digest::parse(&format!("{EMPTY}0")).is_err());
        assert!(Digest::parse(hex).is_err());
        assert!(Digest::parse("sha256:").is_err());
        assert!(Digest::parse(&format!("sha256:{}g", &hex[..63])).is_err());
        assert!(matches!(
            Digest::parse(&format!("SHA 256:{hex}")),
            Err(DigestError::Malformed { .. })
        ));
        // Multi-byte UTF-8 must not panic the pairwise decoder.
        assert!(Digest::parse(&format!("sha256:{}é", &hex[..62])).is_err());
        assert!(serde_json::from_str::<Digest>("\"sha1:abc\"").is_err());
    }
}
