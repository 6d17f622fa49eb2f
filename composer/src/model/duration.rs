//! Durations as compose writes them: Go duration syntax (`1m30s`, `500ms`),
//! printed the way Go's `time.Duration` prints itself.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A signed span of time in nanoseconds (Go's `time.Duration`).
///
/// Parsing accepts what compose accepts: a sequence of decimal numbers,
/// each with an optional fraction and a unit (`ns`, `us`/`µs`/`μs`, `ms`,
/// `s`, `m`, `h`, and compose's extra `d` and `w`), with an optional sign.
/// A bare number is rejected, as compose does, except `0`: `10` could mean
/// seconds or nanoseconds and compose refuses to guess.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration \"{input}\": {reason}")]
pub struct DurationError {
    pub input: String,
    pub reason: String,
}

const NANOS_PER_SECOND: u128 = 1_000_000_000;

impl Duration {
    pub fn from_secs(secs: i64) -> Duration {
        Duration(secs.saturating_mul(NANOS_PER_SECOND as i64))
    }

    pub fn from_millis(millis: i64) -> Duration {
        Duration(millis.saturating_mul(1_000_000))
    }

    pub fn as_nanos(self) -> i64 {
        self.0
    }

    /// The duration for std APIs; negative durations become zero.
    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_nanos(u64::try_from(self.0).unwrap_or(0))
    }
}

fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => NANOS_PER_SECOND,
        "m" => 60 * NANOS_PER_SECOND,
        "h" => 3_600 * NANOS_PER_SECOND,
        "d" => 86_400 * NANOS_PER_SECOND,
        "w" => 604_800 * NANOS_PER_SECOND,
        _ => return None,
    })
}

impl FromStr for Duration {
    type Err = DurationError;

    fn from_str(input: &str) -> Result<Duration, DurationError> {
        let fail = |reason: String| DurationError {
            input: input.to_string(),
            reason,
        };
        let (negative, mut rest) = match input.as_bytes().first() {
            Some(b'-') => (true, &input[1..]),
            Some(b'+') => (false, &input[1..]),
            _ => (false, input),
        };
        if rest == "0" {
            return Ok(Duration(0));
        }
        if rest.is_empty() {
            return Err(fail(
                "expected a number and a unit, e.g. 30s or 1m30s".into(),
            ));
        }
        let mut total: u128 = 0;
        while !rest.is_empty() {
            let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            let (whole, after) = rest.split_at(digits);
            let (fraction, after) = match after.strip_prefix('.') {
                Some(after_dot) => {
                    let n = after_dot.len()
                        - after_dot
                            .trim_start_matches(|c: char| c.is_ascii_digit())
                            .len();
                    after_dot.split_at(n)
                }
                None => ("", after),
            };
            if whole.is_empty() && fraction.is_empty() {
                return Err(fail(format!(
                    "expected a number at \"{rest}\"; write e.g. 30s or 1m30s"
                )));
            }
            let unit_len = after.len()
                - after
                    .trim_start_matches(|c: char| c != '.' && !c.is_ascii_digit())
                    .len();
            let (unit, after) = after.split_at(unit_len);
            if unit.is_empty() {
                let number = &rest[..rest.len() - after.len()];
                return Err(fail(format!(
                    "missing unit after {number}; write e.g. \"{number}s\" for seconds"
                )));
            }
            let Some(per_unit) = unit_nanos(unit) else {
                return Err(fail(format!(
                    "unknown unit \"{unit}\"; use ns, us, ms, s, m, h, d or w"
                )));
            };
            let too_long = || fail("the duration is too long".into());
            let whole: u128 = if whole.is_empty() {
                0
            } else {
                whole.parse().map_err(|_| too_long())?
            };
            let mut part = whole.checked_mul(per_unit).ok_or_else(too_long)?;
            // Twenty digits are past nanosecond precision for every unit
            // and keep `fraction * per_unit` inside u128.
            let (mut numerator, mut scale) = (0u128, 1u128);
            for digit in fraction.bytes().take(20) {
                numerator = numerator * 10 + u128::from(digit - b'0');
                scale *= 10;
            }
            part += numerator * per_unit / scale;
            total = total.checked_add(part).ok_or_else(too_long)?;
            if total > i64::MAX as u128 + 1 {
                return Err(too_long());
            }
            rest = after;
        }
        let nanos = if negative {
            0i64.checked_sub_unsigned(total as u64)
        } else {
            i64::try_from(total).ok()
        };
        nanos
            .map(Duration)
            .ok_or_else(|| fail("the duration is too long".into()))
    }
}

/// `value / unit` with the remainder as trimmed decimal digits, as Go
/// prints `1.5ms`.
fn write_scaled(f: &mut fmt::Formatter<'_>, value: u128, unit: u128, digits: usize) -> fmt::Result {
    write!(f, "{}", value / unit)?;
    let remainder = value % unit;
    if remainder != 0 {
        let fraction = format!("{remainder:0digits$}");
        write!(f, ".{}", fraction.trim_end_matches('0'))?;
    }
    Ok(())
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0s");
        }
        if self.0 < 0 {
            f.write_str("-")?;
        }
        let nanos = u128::from(self.0.unsigned_abs());
        if nanos < 1_000 {
            return write!(f, "{nanos}ns");
        }
        if nanos < 1_000_000 {
            write_scaled(f, nanos, 1_000, 3)?;
            return f.write_str("µs");
        }
        if nanos < NANOS_PER_SECOND {
            write_scaled(f, nanos, 1_000_000, 6)?;
            return f.write_str("ms");
        }
        let secs = nanos / NANOS_PER_SECOND;
        let (hours, minutes) = (secs / 3_600, secs / 60 % 60);
        if hours > 0 {
            write!(f, "{hours}h{minutes}m")?;
        } else if minutes > 0 {
            write!(f, "{minutes}m")?;
        }
        write_scaled(f, nanos % (60 * NANOS_PER_SECOND), NANOS_PER_SECOND, 9)?;
        f.write_str("s")
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> i64 {
        s.parse::<Duration>().unwrap_or_else(|e| panic!("{e}")).0
    }

    #[test]
    fn parses_go_syntax() {
        assert_eq!(parse("1m30s"), 90_000_000_000);
        assert_eq!(parse("500ms"), 500_000_000);
        assert_eq!(parse("1h"), 3_600_000_000_000);
        assert_eq!(parse("1.5s"), 1_500_000_000);
        assert_eq!(parse("2us"), 2_000);
        assert_eq!(parse("2µs"), 2_000);
        assert_eq!(parse("2μs"), 2_000);
        assert_eq!(parse("10ns"), 10);
        assert_eq!(parse("0"), 0);
        assert_eq!(parse("-1.5h"), -5_400_000_000_000);
        assert_eq!(parse(".5s"), 500_000_000);
        assert_eq!(parse("1d"), 86_400_000_000_000);
        assert_eq!(parse("1w2d"), 9 * 86_400_000_000_000);
        assert_eq!(parse("1h1m1s1ms1us1ns"), 3_661_001_001_001);
    }

    #[test]
    fn rejects_bad_input_with_a_hint() {
        let err = "1x".parse::<Duration>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid duration \"1x\": unknown unit \"x\"; use ns, us, ms, s, m, h, d or w"
        );
        let err = "10".parse::<Duration>().unwrap_err();
        assert!(err.to_string().contains("\"10s\""), "{err}");
        for bad in ["", "s", "1.s.", "-", "1s2", "99999999999h", "1..5s"] {
            assert!(bad.parse::<Duration>().is_err(), "{bad}");
        }
    }

    #[test]
    fn prints_like_go() {
        let cases = [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (500_000_000, "500ms"),
            (1_500_000, "1.5ms"),
            (1_000_000_000, "1s"),
            (1_500_000_000, "1.5s"),
            (90_000_000_000, "1m30s"),
            (60_000_000_000, "1m0s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_661_000_000_001, "1h1m1.000000001s"),
            (-90_000_000_000, "-1m30s"),
            (86_400_000_000_000, "24h0m0s"),
        ];
        for (nanos, text) in cases {
            assert_eq!(Duration(nanos).to_string(), text);
            assert_eq!(parse(text), nanos, "{text}");
        }
        assert_eq!(
            Duration(i64::MIN).to_string().parse(),
            Ok(Duration(i64::MIN))
        );
        assert_eq!(
            Duration(i64::MAX).to_string().parse(),
            Ok(Duration(i64::MAX))
        );
    }
}
