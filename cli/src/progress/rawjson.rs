//! `--progress=rawjson`: every event as one JSON object per line, for
//! machines.
//!
//! A line is exactly the builder's serialisation of the event
//! (`serde_json::to_string(&event)`, tagged by `event`) with a `time` field
//! appended, the RFC 3339 UTC time the event was received:
//!
//! ```text
//! {"event":"started","step":3,"name":"[build 2/4] RUN make","time":"2024-02-29T12:34:56.789Z"}
//! ```
//!
//! Events are passed through unchanged, except that a step's `Bytes` reports
//! are limited to 10 per second; the newest held-back one is still written
//! before the step's `Done` or `Failed`.

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use berth_builder::progress::{BuildEvent, Progress, StepId};

use super::format::rfc3339_millis;
use super::throttle::{ByteThrottle, Pending};
use super::{Renderer, lock};

const BYTES_INTERVAL: Duration = Duration::from_millis(100);

pub struct RawJsonRenderer {
    state: Mutex<JsonState>,
}

struct JsonState {
    out: Box<dyn Write + Send>,
    throttle: ByteThrottle,
}

impl RawJsonRenderer {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        RawJsonRenderer {
            state: Mutex::new(JsonState {
                out,
                throttle: ByteThrottle::new(BYTES_INTERVAL),
            }),
        }
    }

    /// [`Progress::event`] with both clocks passed in, so tests control time:
    /// `now` paces `Bytes`, `time` is what the line says.
    fn render(&self, event: BuildEvent, now: Instant, time: SystemTime) {
        let mut state = lock(&self.state);
        let show = match &event {
            BuildEvent::Bytes { step, bytes } => state.throttle.admit(*step, *bytes, now, time),
            BuildEvent::Done { step, .. } | BuildEvent::Failed { step, .. } => {
                if let Some(pending) = state.throttle.end(*step) {
                    state.write_pending(*step, pending);
                }
                true
            }
            _ => true,
        };
        if show {
            state.write(&event, time);
        }
    }
}

impl JsonState {
    fn write_pending(&mut self, step: StepId, pending: Pending) {
        let event = BuildEvent::Bytes {
            step,
            bytes: pending.bytes,
        };
        self.write(&event, pending.time);
    }

    fn write(&mut self, event: &BuildEvent, time: SystemTime) {
        if let Some(line) = json_line(event, time) {
            // One write per line; errors ignored (a closed stderr must not
            // stop the build).
            let _ = self.out.write_all(line.as_bytes());
            let _ = self.out.flush();
        }
    }
}

/// The event's own JSON with `"time"` spliced in as the last field, newline
/// terminated. Splicing (rather than going through `serde_json::Value`)
/// keeps the builder's field order and formatting byte for byte.
fn json_line(event: &BuildEvent, time: SystemTime) -> Option<String> {
    let mut line = serde_json::to_string(event).ok()?;
    // An internally tagged enum always serialises as an object, so there is
    // a closing brace; it is never `{}` because the tag is a field.
    if !line.ends_with('}') {
        return None;
    }
    line.pop();
    line.push_str(",\"time\":\"");
    line.push_str(&rfc3339_millis(time));
    line.push_str("\"}\n");
    Some(line)
}

impl Progress for RawJsonRenderer {
    fn event(&self, event: BuildEvent) {
        self.render(event, Instant::now(), SystemTime::now());
    }
}

impl Renderer for RawJsonRenderer {
    fn finish(&self) {
        let mut state = lock(&self.state);
        for (step, pending) in state.throttle.drain() {
            state.write_pending(step, pending);
        }
        let _ = state.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::super::plain::tests::{Broken, Capture};
    use super::*;
    use serde_json::Value;
    use std::sync::Arc;
    use std::thread;
    use std::time::UNIX_EPOCH;

    fn parse(line: &str) -> serde_json::Map<String, Value> {
        match serde_json::from_str(line) {
            Ok(Value::Object(map)) => map,
            other => panic!("not a JSON object: {line:?}: {other:?}"),
        }
    }

    /// The line with its `time` field cut off again.
    fn without_time(line: &str) -> &str {
        let cut = line.rfind(",\"time\":").expect("time field");
        &line[..cut]
    }

    #[test]
    fn each_event_is_its_serialisation_plus_time() {
        let out = Capture::default();
        let r = RawJsonRenderer::new(Box::new(out.clone()));
        let t0 = Instant::now();
        let time = UNIX_EPOCH + Duration::from_millis(1_709_210_096_789);
        let events = [
            BuildEvent::Started {
                step: StepId(3),
                name: "[build 2/4] RUN echo \"hi\"".to_owned(),
            },
            BuildEvent::Cached { step: StepId(3) },
            BuildEvent::Bytes {
                step: StepId(3),
                bytes: 1234,
            },
            BuildEvent::Log {
                step: StepId(3),
                line: "tab\there \u{1b}[0m".to_owned(),
            },
            BuildEvent::Done {
                step: StepId(3),
                duration: Duration::from_millis(1500),
                bytes: 1234,
            },
            BuildEvent::Failed {
                step: StepId(4),
                message: "exit code 2".to_owned(),
            },
            BuildEvent::Message {
                text: "sha256:abc".to_owned(),
            },
        ];
        for event in events.clone() {
            r.render(event, t0, time);
        }
        r.finish();
        let lines = out.lines();
        assert_eq!(lines.len(), events.len());
        for (line, event) in lines.iter().zip(&events) {
            let expected = serde_json::to_string(event).expect("serialise");
            assert_eq!(format!("{}}}", without_time(line)), expected);
            let map = parse(line);
            assert!(map.contains_key("event"), "{line}");
            assert_eq!(map["time"], "2024-02-29T12:34:56.789Z");
            match event {
                BuildEvent::Message { .. } => assert!(!map.contains_key("step")),
                _ => assert!(map["step"].is_u64(), "{line}"),
            }
        }
        assert_eq!(parse(&lines[0])["event"], "started");
        assert_eq!(parse(&lines[0])["step"], 3);
        assert_eq!(parse(&lines[4])["event"], "done");
        assert_eq!(parse(&lines[4])["duration"], 1.5);
        assert_eq!(
            lines[6],
            r#"{"event":"message","text":"sha256:abc","time":"2024-02-29T12:34:56.789Z"}"#
        );
    }

    #[test]
    fn bytes_limited_to_ten_per_second_per_step() {
        let out = Capture::default();
        let r = RawJsonRenderer::new(Box::new(out.clone()));
        let t0 = Instant::now();
        let wall = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
        // One second of reports every 10 ms for two steps.
        for i in 0..100u64 {
            for step in [1, 2] {
                let event = BuildEvent::Bytes {
                    step: StepId(step),
                    bytes: i,
                };
                r.render(event, t0 + Duration::from_millis(i * 10), wall(i * 10));
            }
        }
        let end = BuildEvent::Done {
            step: StepId(1),
            duration: Duration::from_secs(1),
            bytes: 99,
        };
        r.render(end, t0 + Duration::from_secs(1), wall(1000));
        r.finish();

        let events: Vec<_> = out.lines().iter().map(|l| parse(l)).collect();
        let bytes_of = |step: u64| -> Vec<(u64, String)> {
            events
                .iter()
                .filter(|e| e["event"] == "bytes" && e["step"] == step)
                .map(|e| {
                    let bytes = e["bytes"].as_u64().expect("bytes");
                    (bytes, e["time"].as_str().expect("time").to_owned())
                })
                .collect()
        };
        let step1 = bytes_of(1);
        // Reports at 0, 100, ..., 900 ms, then the held-back 990 ms one,
        // stamped with the time it was reported, before Done.
        assert_eq!(step1.len(), 11);
        let values: Vec<u64> = step1.iter().map(|(b, _)| *b).collect();
        assert_eq!(values, [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 99]);
        assert_eq!(step1[10].1, "1970-01-01T00:00:00.990Z");
        let done_at = events.iter().position(|e| e["event"] == "done");
        let last_bytes = events
            .iter()
            .rposition(|e| e["event"] == "bytes" && e["step"] == 1);
        assert_eq!(last_bytes.map(|i| i + 1), done_at);
        // Step 2 never ended: finish() writes its held-back value.
        let step2: Vec<u64> = bytes_of(2).iter().map(|(b, _)| *b).collect();
        assert_eq!(step2.len(), 11);
        assert_eq!(step2.last(), Some(&99));
    }

    #[test]
    fn concurrent_events_give_whole_json_lines() {
        let out = Capture::chunked(5);
        let r = Arc::new(RawJsonRenderer::new(Box::new(out.clone())));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let r = Arc::clone(&r);
                thread::spawn(move || {
                    for i in 0..100 {
                        r.event(BuildEvent::Log {
                            step: StepId(t),
                            line: format!("{t}:{i}"),
                        });
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let lines = out.lines();
        assert_eq!(lines.len(), 400);
        for line in lines {
            let map = parse(&line);
            let step = map["step"].as_u64().expect("step");
            let text = map["line"].as_str().expect("line");
            assert!(text.starts_with(&format!("{step}:")), "{line}");
        }
    }

    #[test]
    fn closed_output_is_ignored() {
        let r = RawJsonRenderer::new(Box::new(Broken));
        r.event(BuildEvent::Message {
            text: "x".to_owned(),
        });
        r.finish();
    }
}
