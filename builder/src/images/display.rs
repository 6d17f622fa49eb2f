//! How image facts are shown, as Docker shows them: RFC 3339 timestamps
//! read into Unix seconds (no date library: the format is fixed and small),
//! ages as "3 days ago", sizes in decimal units with three significant
//! digits ("12.3MB"), and 12-digit short IDs.

use berth_runtime::store::Digest;

use crate::time::{civil_from_days, days_from_civil};

/// The 12 hex digits `docker images` shows for an ID.
pub fn short_id(digest: &Digest) -> String {
    let mut hex = digest.hex();
    hex.truncate(12);
    hex
}

/// Seconds since the Unix epoch, now (0 if the clock is before 1970).
pub use crate::time::now_secs as unix_now;

/// Reads an RFC 3339 timestamp (`2024-05-01T12:00:00Z`,
/// `2024-05-01T14:00:00.123456789+02:00`) into Unix seconds, fractions
/// dropped. `None` for anything else, including impossible dates.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let num = |from: usize, to: usize| -> Option<i64> {
        let digits = b.get(from..to)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(
            digits
                .iter()
                .fold(0i64, |n, d| n * 10 + i64::from(d - b'0')),
        )
    };
    let at = |i: usize, allowed: &[u8]| b.get(i).is_some_and(|c| allowed.contains(c));

    let year = num(0, 4)?;
    let month = num(5, 7)?;
    let day = num(8, 10)?;
    let hour = num(11, 13)?;
    let minute = num(14, 16)?;
    let second = num(17, 19)?;
    if !(at(4, b"-") && at(7, b"-") && at(10, b"Tt ") && at(13, b":") && at(16, b":")) {
        return None;
    }
    let mut i = 19;
    if at(i, b".") {
        let start = i + 1;
        i = start;
        while at(i, b"0123456789") {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset = if at(i, b"Zz") {
        i += 1;
        0
    } else if at(i, b"+-") {
        let sign = if at(i, b"-") { -1 } else { 1 };
        let (oh, om) = (num(i + 1, i + 3)?, num(i + 4, i + 6)?);
        if !at(i + 3, b":") || oh > 23 || om > 59 {
            return None;
        }
        i += 6;
        sign * (oh * 3600 + om * 60)
    } else {
        return None;
    };
    if i != b.len()
        || !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        // 60 is a leap second.
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `2024-05-01 12:00:00 +0000 UTC`: the `CreatedAt` of `docker images
/// --format json` (always in UTC here).
pub fn created_at(unix: i64) -> String {
    let (year, month, day) = civil_from_days(unix.div_euclid(86_400));
    let secs = unix.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} +0000 UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// How long ago `then` was, as Docker words it: "Less than a second ago",
/// "About a minute ago", "5 hours ago", "3 days ago", "2 weeks ago",
/// "4 months ago", "3 years ago". A time in the future (clock skew) reads
/// as just now.
pub fn human_since(then: i64, now: i64) -> String {
    let secs = now.saturating_sub(then).max(0);
    let minutes = secs / 60;
    // Hours are rounded, so 1h40m reads "2 hours", as in Docker.
    let hours = (secs + 1800) / 3600;
    let text = if secs < 1 {
        "Less than a second".to_owned()
    } else if secs == 1 {
        "1 second".to_owned()
    } else if secs < 60 {
        format!("{secs} seconds")
    } else if minutes == 1 {
        "About a minute".to_owned()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".to_owned()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", secs / 3600 / 24 / 365)
    };
    format!("{text} ago")
}

/// A size in decimal units with at most three significant digits, as
/// `docker images` shows it: `0B`, `999B`, `1.23kB`, `12.3MB`, `456MB`, `1GB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    // Precision loss above 2^53 bytes is far below what three digits show.
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    let mut text = three_digits(value);
    // 999.7kB rounds to 1000kB: that is 1MB.
    if text == "1000" && unit < UNITS.len() - 1 {
        text = "1".to_owned();
        unit += 1;
    }
    format!("{text}{}", UNITS[unit])
}

/// `value` (below 1000) with three significant digits, trailing zeros dropped.
fn three_digits(value: f64) -> String {
    let decimals = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2000-03-01T00:00:00Z"), Some(951_868_800));
        assert_eq!(
            parse_rfc3339("2024-02-29T23:59:59.999999999Z"),
            Some(1_709_251_199)
        );
        assert_eq!(
            parse_rfc3339("2024-05-01T14:00:00+02:00"),
            Some(1_714_564_800)
        );
        assert_eq!(parse_rfc3339("2024-05-01t12:00:00z"), Some(1_714_564_800));
        assert_eq!(
            parse_rfc3339("2024-05-01 07:30:00-04:30"),
            Some(1_714_564_800)
        );
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), Some(-1));
        for bad in [
            "",
            "2024-05-01",
            "2024-05-01T12:00:00",
            "2024-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T12:00:00.Z",
            "2024-05-01T12:00:00+0200",
            "2024-05-01T12:00:00Zjunk",
            "2024-05-01T12:00:00+2:00",
            "２０２４-05-01T12:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn civil_round_trip() {
        for days in [-800_000, -1, 0, 1, 59, 60, 11_016, 19_844, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(created_at(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(created_at(1_709_251_199), "2024-02-29 23:59:59 +0000 UTC");
    }

    #[test]
    fn since() {
        let s = |secs: i64| human_since(1000, 1000 + secs);
        assert_eq!(s(-5), "Less than a second ago");
        assert_eq!(s(0), "Less than a second ago");
        assert_eq!(s(1), "1 second ago");
        assert_eq!(s(59), "59 seconds ago");
        assert_eq!(s(60), "About a minute ago");
        assert_eq!(s(120), "2 minutes ago");
        assert_eq!(s(3599), "59 minutes ago");
        assert_eq!(s(3600), "About an hour ago");
        assert_eq!(s(6000), "2 hours ago");
        assert_eq!(s(47 * 3600), "47 hours ago");
        assert_eq!(s(3 * 86_400), "3 days ago");
        assert_eq!(s(15 * 86_400), "2 weeks ago");
        assert_eq!(s(90 * 86_400), "3 months ago");
        assert_eq!(s(3 * 365 * 86_400), "3 years ago");
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(1234), "1.23kB");
        assert_eq!(human_size(12_345_678), "12.3MB");
        assert_eq!(human_size(456_000_000), "456MB");
        assert_eq!(human_size(999_700), "1MB");
        assert_eq!(human_size(10_060_000), "10.1MB");
        assert_eq!(human_size(u64::MAX), "18.4EB");
    }
}
