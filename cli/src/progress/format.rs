//! Small text formatters shared by the renderers: sizes, durations,
//! timestamps and the clean-up of log text before it is shown.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A byte count in decimal (SI) units with one decimal: `512 B`, `12.3 MB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    // Move up while the value would *print* as 1000.0 or more, so that
    // 999_960 bytes reads `1.0 MB` rather than `1000.0 kB`.
    while value >= 999.95 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A duration in seconds with one decimal, as BuildKit shows them: `0.4s`.
pub fn seconds(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// `t` as an RFC 3339 timestamp in UTC with millisecond precision, e.g.
/// `2024-02-29T12:34:56.789Z`. Times before 1970 are handled too (a badly set
/// clock must still give a well-formed stamp).
pub fn rfc3339_millis(t: SystemTime) -> String {
    let millis: i128 = match t.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_millis() as i128,
        // Round towards the past, so that 1 µs before the epoch is 23:59:59.999.
        Err(e) => -(e.duration().as_micros().div_ceil(1000) as i128),
    };
    const MS_PER_DAY: i128 = 86_400_000;
    let days = millis.div_euclid(MS_PER_DAY) as i64;
    let ms_of_day = millis.rem_euclid(MS_PER_DAY) as u64;
    let (year, month, day) = berth_builder::time::civil_from_days(days);
    let secs = ms_of_day / 1000;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        ms_of_day % 1000,
    )
}

/// Splits step output into the lines a terminal would end up showing: on
/// `\n`, and keeping only what follows the last `\r` of a line (tools redraw
/// their own progress with carriage returns; only the final state matters).
/// A trailing newline does not make an extra empty line.
pub fn output_lines(text: &str) -> impl Iterator<Item = &str> {
    let text = text.strip_suffix('\n').unwrap_or(text);
    text.split('\n').map(|line| {
        let line = line.trim_end_matches('\r');
        match line.rfind('\r') {
            Some(i) => &line[i + 1..],
            None => line,
        }
    })
}

/// `line` without terminal escape sequences and control characters (tabs
/// become spaces), so that step output cannot move the cursor or recolour
/// the live view it is drawn inside.
pub fn strip_controls(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters, then one final byte in '@'..='~'.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC (titles, hyperlinks): up to BEL or ESC '\'.
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' {
                            chars.next_if_eq(&'\\');
                            break;
                        }
                    }
                }
                // Any other escape is two characters long.
                _ => {}
            },
            '\t' => out.push_str("    "),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_in_decimal_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1000), "1.0 kB");
        assert_eq!(human_bytes(12_345_678), "12.3 MB");
        assert_eq!(human_bytes(999_949), "999.9 kB");
        assert_eq!(human_bytes(999_960), "1.0 MB");
        assert_eq!(human_bytes(3_500_000_000), "3.5 GB");
        assert_eq!(human_bytes(u64::MAX), "18.4 EB");
    }

    #[test]
    fn seconds_with_one_decimal() {
        assert_eq!(seconds(Duration::from_millis(420)), "0.4s");
        assert_eq!(seconds(Duration::ZERO), "0.0s");
        assert_eq!(seconds(Duration::from_secs(125)), "125.0s");
    }

    fn at(secs: i64, millis: u64) -> SystemTime {
        let base = if secs >= 0 {
            UNIX_EPOCH + Duration::from_secs(secs as u64)
        } else {
            UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
        };
        base + Duration::from_millis(millis)
    }

    #[test]
    fn rfc3339_known_instants() {
        // Expected values from `date -u -d <stamp> +%s`.
        assert_eq!(rfc3339_millis(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(at(1_709_210_096, 789)),
            "2024-02-29T12:34:56.789Z"
        );
        assert_eq!(
            rfc3339_millis(at(1_704_067_199, 999)),
            "2023-12-31T23:59:59.999Z"
        );
        // The day after the last day of a leap year, and century rules:
        // 2000 is a leap year, 2100 is not.
        assert_eq!(
            rfc3339_millis(at(1_704_067_200, 0)),
            "2024-01-01T00:00:00.000Z"
        );
        assert_eq!(
            rfc3339_millis(at(951_868_800, 0)),
            "2000-03-01T00:00:00.000Z"
        );
        assert_eq!(
            rfc3339_millis(at(951_782_400, 0)),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(
            rfc3339_millis(at(4_107_542_400, 0)),
            "2100-03-01T00:00:00.000Z"
        );
        assert_eq!(
            rfc3339_millis(at(4_107_542_399, 0)),
            "2100-02-28T23:59:59.000Z"
        );
    }

    #[test]
    fn rfc3339_truncates_sub_millisecond_and_handles_pre_epoch() {
        let t = UNIX_EPOCH + Duration::from_micros(1_999);
        assert_eq!(rfc3339_millis(t), "1970-01-01T00:00:00.001Z");
        assert_eq!(rfc3339_millis(at(-1, 0)), "1969-12-31T23:59:59.000Z");
        let just_before = UNIX_EPOCH - Duration::from_micros(1);
        assert_eq!(rfc3339_millis(just_before), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn output_lines_follow_terminal_semantics() {
        let lines: Vec<_> = output_lines("a\nb\r\n10%\r50%\r100%\n").collect();
        assert_eq!(lines, ["a", "b", "100%"]);
        assert_eq!(output_lines("").collect::<Vec<_>>(), [""]);
        assert_eq!(output_lines("one").collect::<Vec<_>>(), ["one"]);
    }

    #[test]
    fn strip_controls_removes_escapes() {
        assert_eq!(strip_controls("\u{1b}[1;31mred\u{1b}[0m ok"), "red ok");
        assert_eq!(strip_controls("\u{1b}]0;title\u{7}x"), "x");
        assert_eq!(strip_controls("\u{1b}]8;;http://x\u{1b}\\link"), "link");
        assert_eq!(strip_controls("a\tb\u{8}c"), "a    bc");
    }
}
