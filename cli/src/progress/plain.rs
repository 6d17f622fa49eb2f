//! `--progress=plain`: one line per event, in the style of BuildKit's plain
//! output, for logs and CI.
//!
//! ```text
//! #1 [internal] load build context
//! #1 12.3 MB
//! #1 DONE 0.4s
//! #2 [build 2/4] COPY src/ /app/src/
//! #2 CACHED
//! #3 [build 3/4] RUN make
//! #3 cc -o app main.c
//! #3 ERROR: exit code 2
//! ```
//!
//! Steps are numbered in the order they first appear, from 1, like BuildKit
//! numbers vertices; the builder's `StepId`s need not be small or dense.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use berth_builder::progress::{BuildEvent, Progress, StepId};

use super::format::{human_bytes, output_lines, seconds};
use super::throttle::ByteThrottle;
use super::{Renderer, lock};

/// At most one `Bytes` line per step per this interval (plus the final one).
const BYTES_INTERVAL: Duration = Duration::from_secs(1);

pub struct PlainRenderer {
    state: Mutex<PlainState>,
}

struct PlainState {
    out: Box<dyn Write + Send>,
    numbers: HashMap<StepId, usize>,
    /// Cached steps: their `Done` adds nothing to `CACHED`, so it is not shown.
    cached: HashSet<StepId>,
    throttle: ByteThrottle,
}

impl PlainRenderer {
    /// Renders to `out`, which should be unbuffered (or flush often): every
    /// line is written with a single call and then flushed.
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        PlainRenderer {
            state: Mutex::new(PlainState {
                out,
                numbers: HashMap::new(),
                cached: HashSet::new(),
                throttle: ByteThrottle::new(BYTES_INTERVAL),
            }),
        }
    }

    /// [`Progress::event`] with the clock passed in, so tests control time.
    fn render(&self, event: BuildEvent, now: Instant) {
        let mut state = lock(&self.state);
        match event {
            BuildEvent::Started { step, name } => state.step_text(step, &name),
            BuildEvent::Cached { step } => {
                state.cached.insert(step);
                state.step_text(step, "CACHED");
            }
            BuildEvent::Bytes { step, bytes } => {
                // The wall-clock time of a held-back value is not shown here.
                if state
                    .throttle
                    .admit(step, bytes, now, SystemTime::UNIX_EPOCH)
                {
                    state.step_text(step, &human_bytes(bytes));
                }
            }
            BuildEvent::Log { step, line } => state.step_text(step, &line),
            BuildEvent::Done { step, duration, .. } => {
                state.end_bytes(step);
                if !state.cached.remove(&step) {
                    state.step_text(step, &format!("DONE {}", seconds(duration)));
                }
            }
            BuildEvent::Failed { step, message } => {
                state.end_bytes(step);
                state.cached.remove(&step);
                state.step_text(step, &format!("ERROR: {message}"));
            }
            BuildEvent::Message { text } => {
                for line in output_lines(&text) {
                    state.write_line(line.to_owned());
                }
            }
        }
    }
}

impl PlainState {
    fn number(&mut self, step: StepId) -> usize {
        let next = self.numbers.len() + 1;
        *self.numbers.entry(step).or_insert(next)
    }

    /// Writes `text` for `step`, one `#N`-prefixed line per line of text.
    fn step_text(&mut self, step: StepId, text: &str) {
        let number = self.number(step);
        for line in output_lines(text) {
            let line = if line.is_empty() {
                format!("#{number}")
            } else {
                format!("#{number} {line}")
            };
            self.write_line(line);
        }
    }

    /// Shows the last byte count a step reported if it was held back.
    fn end_bytes(&mut self, step: StepId) {
        if let Some(pending) = self.throttle.end(step) {
            self.step_text(step, &human_bytes(pending.bytes));
        }
    }

    fn write_line(&mut self, mut line: String) {
        line.push('\n');
        // One write per line keeps lines whole even with other writers on
        // the same fd. Errors are ignored: a closed stderr must not stop or
        // panic the build.
        let _ = self.out.write_all(line.as_bytes());
        let _ = self.out.flush();
    }
}

impl Progress for PlainRenderer {
    fn event(&self, event: BuildEvent) {
        self.render(event, Instant::now());
    }
}

impl Renderer for PlainRenderer {
    fn finish(&self) {
        let mut state = lock(&self.state);
        for (step, pending) in state.throttle.drain() {
            state.step_text(step, &human_bytes(pending.bytes));
        }
        let _ = state.out.flush();
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::io;
    use std::sync::Arc;
    use std::thread;

    /// An in-memory writer shared with the test, recording each `write`
    /// call separately.
    #[derive(Clone, Default)]
    pub struct Capture {
        writes: Arc<Mutex<Vec<Vec<u8>>>>,
        /// Accept at most this many bytes per call (0: all), to provoke
        /// partial writes.
        chunk: usize,
    }

    impl Capture {
        pub fn chunked(chunk: usize) -> Self {
            Capture {
                chunk,
                ..Capture::default()
            }
        }

        pub fn text(&self) -> String {
            let writes = lock(&self.writes);
            String::from_utf8(writes.concat()).expect("output is UTF-8")
        }

        pub fn lines(&self) -> Vec<String> {
            self.text().lines().map(str::to_owned).collect()
        }

        pub fn writes(&self) -> Vec<Vec<u8>> {
            lock(&self.writes).clone()
        }
    }

    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = if self.chunk == 0 {
                buf.len()
            } else {
                buf.len().min(self.chunk)
            };
            lock(&self.writes).push(buf[..n].to_vec());
            if self.chunk != 0 {
                // Give other threads a chance to cut in between chunks.
                thread::yield_now();
            }
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A writer whose every call fails, like a closed stderr.
    pub struct Broken;

    impl Write for Broken {
        fn write(&mut self, _buf: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }

        fn flush(&mut self) -> io::Result<()> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
    }

    fn started(step: usize, name: &str) -> BuildEvent {
        BuildEvent::Started {
            step: StepId(step),
            name: name.to_owned(),
        }
    }

    fn log(step: usize, line: &str) -> BuildEvent {
        BuildEvent::Log {
            step: StepId(step),
            line: line.to_owned(),
        }
    }

    fn bytes(step: usize, bytes: u64) -> BuildEvent {
        BuildEvent::Bytes {
            step: StepId(step),
            bytes,
        }
    }

    fn done(step: usize, millis: u64) -> BuildEvent {
        BuildEvent::Done {
            step: StepId(step),
            duration: Duration::from_millis(millis),
            bytes: 0,
        }
    }

    #[test]
    fn every_event_kind() {
        let out = Capture::default();
        let r = PlainRenderer::new(Box::new(out.clone()));
        let t0 = Instant::now();
        // StepIds are arbitrary; numbers follow first appearance.
        for event in [
            started(40, "[internal] load build context"),
            started(7, "[build 1/4] FROM scratch"),
            BuildEvent::Cached { step: StepId(7) },
            done(7, 0),
            bytes(40, 12_345_678),
            log(40, "hashing\u{1b}[0m files"),
            done(40, 420),
            started(9, "[build 2/4] RUN make"),
            log(9, "line one\nline two\n"),
            log(9, ""),
            BuildEvent::Failed {
                step: StepId(9),
                message: "exit code 2\nsee above".to_owned(),
            },
            BuildEvent::Message {
                text: "warning: something".to_owned(),
            },
            log(77, "a step never started"),
        ] {
            r.render(event, t0);
        }
        r.finish();
        assert_eq!(
            out.lines(),
            [
                "#1 [internal] load build context",
                "#2 [build 1/4] FROM scratch",
                "#2 CACHED",
                "#1 12.3 MB",
                "#1 hashing\u{1b}[0m files",
                "#1 DONE 0.4s",
                "#3 [build 2/4] RUN make",
                "#3 line one",
                "#3 line two",
                "#3",
                "#3 ERROR: exit code 2",
                "#3 see above",
                "warning: something",
                "#4 a step never started",
            ]
        );
    }

    #[test]
    fn bytes_throttled_to_one_per_second_plus_final() {
        let out = Capture::default();
        let r = PlainRenderer::new(Box::new(out.clone()));
        let t0 = Instant::now();
        r.render(started(1, "COPY"), t0);
        // 2.5 s of reports every 10 ms.
        for i in 0..250u64 {
            r.render(bytes(1, (i + 1) * 1000), t0 + Duration::from_millis(i * 10));
        }
        r.render(done(1, 2500), t0 + Duration::from_millis(2500));
        assert_eq!(
            out.lines(),
            [
                "#1 COPY",
                "#1 1.0 kB",   // t = 0
                "#1 101.0 kB", // t = 1.0 s
                "#1 201.0 kB", // t = 2.0 s
                "#1 250.0 kB", // the final value, held back until Done
                "#1 DONE 2.5s",
            ]
        );
    }

    #[test]
    fn final_bytes_not_repeated_when_already_shown() {
        let out = Capture::default();
        let r = PlainRenderer::new(Box::new(out.clone()));
        let t0 = Instant::now();
        r.render(bytes(1, 5), t0);
        r.render(done(1, 0), t0);
        assert_eq!(out.lines(), ["#1 5 B", "#1 DONE 0.0s"]);
    }

    #[test]
    fn finish_shows_held_back_bytes_of_unfinished_steps() {
        let out = Capture::default();
        let r = PlainRenderer::new(Box::new(out.clone()));
        let t0 = Instant::now();
        r.render(bytes(1, 5), t0);
        r.render(bytes(1, 6000), t0);
        r.finish();
        assert_eq!(out.lines(), ["#1 5 B", "#1 6.0 kB"]);
    }

    #[test]
    fn one_write_call_per_line() {
        let out = Capture::default();
        let r = PlainRenderer::new(Box::new(out.clone()));
        r.event(started(1, "RUN x"));
        r.event(log(1, "a\nb"));
        r.event(done(1, 100));
        let writes = out.writes();
        assert_eq!(writes.len(), 4);
        for w in writes {
            assert_eq!(w.iter().filter(|&&b| b == b'\n').count(), 1);
            assert_eq!(w.last(), Some(&b'\n'));
        }
    }

    #[test]
    fn concurrent_steps_never_mix_lines() {
        // A writer taking 3 bytes per call and yielding in between: without
        // the renderer's lock, lines from different threads would interleave.
        let out = Capture::chunked(3);
        let r = Arc::new(PlainRenderer::new(Box::new(out.clone())));
        const LINES: usize = 200;
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let r = Arc::clone(&r);
                thread::spawn(move || {
                    r.event(started(100 + t, &format!("[stage{t} 1/1] RUN work")));
                    for i in 0..LINES {
                        r.event(log(100 + t, &format!("thread {t} line {i} of output")));
                        r.event(bytes(100 + t, i as u64));
                    }
                    r.event(done(100 + t, 10));
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        r.finish();

        // Learn each thread's step number from its header line, then check
        // every line is whole and carries its own step's number.
        let lines = out.lines();
        let mut number_of_thread = HashMap::new();
        for line in &lines {
            let (num, rest) = line.split_once(' ').expect("prefixed line");
            assert!(num.starts_with('#'), "{line:?}");
            if let Some(stage) = rest.strip_prefix("[stage") {
                let t: usize = stage[..1].parse().expect("thread index");
                assert_eq!(rest, format!("[stage{t} 1/1] RUN work"));
                number_of_thread.insert(t, num.to_owned());
            }
        }
        assert_eq!(number_of_thread.len(), 4);
        let mut seen = [0usize; 4];
        for line in &lines {
            let (num, rest) = line.split_once(' ').expect("prefixed line");
            if let Some(log) = rest.strip_prefix("thread ") {
                let t: usize = log[..1].parse().expect("thread index");
                assert_eq!(num, number_of_thread[&t], "{line:?}");
                assert_eq!(rest, format!("thread {t} line {} of output", seen[t]));
                seen[t] += 1;
            } else {
                assert!(
                    rest.starts_with("[stage") || rest.starts_with("DONE ") || rest.ends_with(" B"),
                    "unexpected line {line:?}"
                );
            }
        }
        assert_eq!(seen, [LINES; 4]);
    }

    #[test]
    fn closed_output_is_ignored() {
        let r = PlainRenderer::new(Box::new(Broken));
        r.event(started(1, "RUN x"));
        r.event(log(1, "a"));
        r.event(bytes(1, 1));
        r.event(done(1, 1));
        r.finish();
    }
}
