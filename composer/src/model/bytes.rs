//! Byte sizes (`mem_limit: 512m`), read the way docker reads them.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A size in bytes. Signed because compose allows `-1` for "unlimited"
/// (`memswap_limit: -1`) when written as a number.
///
/// Text is parsed like docker's `RAMInBytes`: a non-negative decimal number
/// (fractions allowed), an optional space, and an optional unit `b`, `k`,
/// `m`, `g`, `t` or `p`, case-insensitive, optionally followed by `b` or
/// `ib` (`512m`, `1.5GB`, `2KiB`); units are powers of 1024.
///
/// Serialised as the decimal number in a string (`"536870912"`), which is
/// what `docker compose config` prints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes(pub i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid size \"{0}\": expected a number with an optional unit b, k, m, g, t or p (e.g. 512m or 1.5g)"
)]
pub struct BytesError(pub String);

impl Bytes {
    pub fn get(self) -> i64 {
        self.0
    }
}

impl FromStr for Bytes {
    type Err = BytesError;

    fn from_str(input: &str) -> Result<Bytes, BytesError> {
        let fail = || BytesError(input.to_string());
        let split = input
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(input.len());
        let (number, unit) = input.split_at(split);
        let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
        let size: f64 = number.parse().map_err(|_| fail())?;
        let exponent = match unit.as_str() {
            "" | "b" => 0,
            _ => {
                let (first, tail) = unit.split_at(1);
                if !matches!(tail, "" | "b" | "ib") {
                    return Err(fail());
                }
                match first {
                    "k" => 1,
                    "m" => 2,
                    "g" => 3,
                    "t" => 4,
                    "p" => 5,
                    _ => return Err(fail()),
                }
            }
        };
        let bytes = size * 1024f64.powi(exponent);
        // 2^63 is the first value past i64; `as` would saturate silently.
        if !bytes.is_finite() || bytes >= 9_223_372_036_854_775_808.0 {
            return Err(fail());
        }
        Ok(Bytes(bytes as i64))
    }
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Bytes, D::Error> {
        deserializer.deserialize_any(BytesVisitor)
    }
}

struct BytesVisitor;

impl Visitor<'_> for BytesVisitor {
    type Value = Bytes;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a byte size such as 512m or 1073741824")
    }
    fn visit_i64<E>(self, v: i64) -> Result<Bytes, E> {
        Ok(Bytes(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Bytes, E> {
        i64::try_from(v)
            .map(Bytes)
            .map_err(|_| E::custom(BytesError(v.to_string())))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Bytes, E> {
        if v.fract() == 0.0 && v.abs() < 9.2e18 {
            Ok(Bytes(v as i64))
        } else {
            Err(E::custom(BytesError(v.to_string())))
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Bytes, E> {
        // Our own output is a signed decimal (`"-1"`), which the unit
        // syntax rejects.
        v.parse::<i64>()
            .map(Bytes)
            .or_else(|_| v.parse())
            .map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> i64 {
        s.parse::<Bytes>().unwrap_or_else(|e| panic!("{e}")).0
    }

    #[test]
    fn parses_units() {
        assert_eq!(parse("0"), 0);
        assert_eq!(parse("1024"), 1024);
        assert_eq!(parse("12b"), 12);
        assert_eq!(parse("1k"), 1024);
        assert_eq!(parse("1KB"), 1024);
        assert_eq!(parse("1kib"), 1024);
        assert_eq!(parse("512m"), 512 << 20);
        assert_eq!(parse("512M"), 512 << 20);
        assert_eq!(parse("1.5g"), 3 << 29);
        assert_eq!(parse("2 GiB"), 2 << 30);
        assert_eq!(parse("1t"), 1 << 40);
        assert_eq!(parse("1p"), 1 << 50);
    }

    #[test]
    fn rejects_bad_sizes() {
        for bad in [
            "", "12q", "-1", "1kk", "1bb", "m", "1.2.3m", " 1m", "1m ", "1gibb", "8192p",
        ] {
            assert!(bad.parse::<Bytes>().is_err(), "{bad}");
        }
        assert_eq!(
            "12q".parse::<Bytes>().unwrap_err().to_string(),
            "invalid size \"12q\": expected a number with an optional unit b, k, m, g, t or p (e.g. 512m or 1.5g)"
        );
    }

    #[test]
    fn serde_round_trip() {
        let json = serde_json::to_value(Bytes(-1)).expect("serialises");
        assert_eq!(json, serde_json::json!("-1"));
        assert_eq!(serde_json::from_value::<Bytes>(json).ok(), Some(Bytes(-1)));
        assert_eq!(
            serde_json::from_value::<Bytes>(serde_json::json!("1k")).ok(),
            Some(Bytes(1024))
        );
        assert_eq!(
            serde_json::from_value::<Bytes>(serde_json::json!(7)).ok(),
            Some(Bytes(7))
        );
    }
}
