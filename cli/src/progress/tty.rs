//! `--progress=tty`: a live view redrawn in place on the terminal.
//!
//! ```text
//! Building 2.3s (3/5)
//! ✔ [internal] load build context                    12.3 MB   0.4s
//! CACHED [build 1/4] FROM scratch                               0.0s
//! ⠙ [build 2/4] RUN make                                        1.2s
//!     cc -c main.c
//!     cc -c util.c
//! ⠹ [other 2/2] COPY --from=build /app /app            3.1 MB   0.3s
//! ```
//!
//! One line per started step, in start order: a spinner while it runs, then
//! `✔`, `CACHED` or `✘`, its bytes when there are any, and its duration at
//! the right edge. A running step shows its last few log lines under it; they
//! disappear when it succeeds and stay when it fails, followed by the error.
//! The header line counts finished/started steps and the total time.
//!
//! indicatif's `MultiProgress` does the drawing and limits redraws to
//! [`REDRAW_HZ`]. To keep running steps on screen in long builds (indicatif
//! draws only as many lines as the terminal is high, from the top), the
//! oldest successful steps are moved out of the live view into the
//! scrollback above it once more than [`LIVE_FINISHED`] of them are shown.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use berth_builder::progress::{BuildEvent, Progress, StepId};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use super::format::{human_bytes, output_lines, seconds, strip_controls};
use super::{Renderer, lock};

/// Redraws per second at most.
pub const REDRAW_HZ: u8 = 10;
/// How often spinners and running times advance.
const TICK: Duration = Duration::from_millis(100);
/// Log lines kept under a running (or failed) step.
const LOG_TAIL: usize = 4;
/// Successful steps kept in the live view before the oldest scroll out.
pub const LIVE_FINISHED: usize = 8;

const SPINNER: &str = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ";

pub struct TtyRenderer {
    multi: MultiProgress,
    header: ProgressBar,
    start: Instant,
    state: Mutex<TtyState>,
}

#[derive(Default)]
struct TtyState {
    steps: HashMap<StepId, Step>,
    /// Successful steps still in the live view, oldest first.
    live_finished: VecDeque<StepId>,
    started: usize,
    ended: usize,
    failed: bool,
    finished: bool,
}

struct Step {
    bar: ProgressBar,
    name: String,
    status: Status,
    cached: bool,
    /// The last log lines, shown under the step.
    tail: VecDeque<String>,
    /// One bar per shown log (or error) line, right under the step's bar.
    line_bars: Vec<ProgressBar>,
    duration: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Running,
    Succeeded,
    Failed,
    Canceled,
    /// Moved out of the live view into the scrollback.
    Retired,
}

/// How a finished step's status column looks.
#[derive(Clone, Copy)]
struct Mark {
    text: &'static str,
    color: &'static str,
}

const DONE: Mark = Mark {
    text: "✔",
    color: "green",
};
const CACHED: Mark = Mark {
    text: "CACHED",
    color: "blue",
};
const FAILED: Mark = Mark {
    text: "✘",
    color: "red",
};
const CANCELED: Mark = Mark {
    text: "CANCELED",
    color: "yellow",
};

impl TtyRenderer {
    /// Draws on stderr, or `None` if stderr cannot show a live view (not a
    /// terminal, or `TERM=dumb`).
    pub fn stderr() -> Option<Self> {
        let target = ProgressDrawTarget::stderr_with_hz(REDRAW_HZ);
        (!target.is_hidden()).then(|| Self::with_target(target))
    }

    /// Draws on `target` (a hidden or in-memory one in tests).
    pub fn with_target(target: ProgressDrawTarget) -> Self {
        let start = Instant::now();
        let multi = MultiProgress::with_draw_target(target);
        let header = multi.add(ProgressBar::new_spinner().with_style(header_style(start)));
        header.set_message("(0/0)");
        header.enable_steady_tick(TICK);
        TtyRenderer {
            multi,
            header,
            start,
            state: Mutex::new(TtyState::default()),
        }
    }

    fn update_header(&self, state: &TtyState) {
        self.header
            .set_message(format!("({}/{})", state.ended, state.started));
    }

    fn started(&self, state: &mut TtyState, step: StepId, name: String) {
        let name = one_line(&name);
        if let Some(known) = state.steps.get_mut(&step) {
            // A repeated Started renames a live step; anything else is stale.
            if known.status == Status::Running {
                known.bar.set_message(name.clone());
                known.name = name;
            }
            return;
        }
        let bar = self
            .multi
            .add(ProgressBar::new_spinner().with_style(running_style()));
        bar.set_message(name.clone());
        bar.enable_steady_tick(TICK);
        state.steps.insert(
            step,
            Step {
                bar,
                name,
                status: Status::Running,
                cached: false,
                tail: VecDeque::new(),
                line_bars: Vec::new(),
                duration: Duration::ZERO,
            },
        );
        state.started += 1;
        self.update_header(state);
    }

    fn log(&self, state: &mut TtyState, step: StepId, line: &str) {
        let Some(step) = state.steps.get_mut(&step) else {
            return;
        };
        if step.status != Status::Running {
            return;
        }
        for line in output_lines(line) {
            if step.tail.len() == LOG_TAIL {
                step.tail.pop_front();
            }
            step.tail.push_back(format!("    {}", strip_controls(line)));
        }
        let lines: Vec<String> = step.tail.iter().cloned().collect();
        self.show_lines(step, &lines, log_style);
    }

    /// Makes the bars under `step` show `lines`, adding bars as needed. The
    /// number of lines under a step never shrinks while it is live (the log
    /// tail fills up to its cap, an error only adds), so bars are never
    /// taken away here.
    fn show_lines(&self, step: &mut Step, lines: &[String], style: fn() -> ProgressStyle) {
        while step.line_bars.len() < lines.len() {
            let after = step.line_bars.last().unwrap_or(&step.bar);
            let bar = self
                .multi
                .insert_after(after, ProgressBar::new_spinner().with_style(style()));
            step.line_bars.push(bar);
        }
        for (bar, line) in step.line_bars.iter().zip(lines) {
            if bar.message() != *line {
                bar.set_message(line.clone());
            }
        }
    }

    fn clear_lines(&self, step: &mut Step) {
        for bar in step.line_bars.drain(..) {
            self.multi.remove(&bar);
        }
        step.tail.clear();
    }

    fn done(&self, state: &mut TtyState, id: StepId, duration: Duration, bytes: u64) {
        let Some(step) = state.steps.get_mut(&id) else {
            return;
        };
        if step.status != Status::Running {
            return;
        }
        if bytes > 0 {
            step.bar.set_position(bytes);
        }
        step.status = Status::Succeeded;
        step.duration = duration;
        self.clear_lines(step);
        let mark = if step.cached { CACHED } else { DONE };
        finish_bar(&step.bar, mark, duration);
        state.ended += 1;
        state.live_finished.push_back(id);
        self.retire_excess(state);
        self.update_header(state);
    }

    fn failed(&self, state: &mut TtyState, id: StepId, message: &str) {
        state.failed = true;
        let step = match state.steps.get_mut(&id) {
            Some(step) if step.status == Status::Running => step,
            // Unknown or already over: still make sure the error is seen.
            _ => {
                self.print_error(message);
                return;
            }
        };
        step.status = Status::Failed;
        step.duration = step.bar.elapsed();
        finish_bar(&step.bar, FAILED, step.duration);
        // Keep the log tail and put the error under it; the message is the
        // most important output of the build, so it is never truncated.
        let mut lines: Vec<String> = step.tail.iter().cloned().collect();
        for (i, line) in output_lines(message).enumerate() {
            let label = if i == 0 { "ERROR: " } else { "" };
            lines.push(format!("    {label}{}", strip_controls(line)));
        }
        self.show_lines(step, &lines, error_style);
        for bar in &step.line_bars {
            bar.finish();
        }
        state.ended += 1;
        self.update_header(state);
    }

    fn print_error(&self, message: &str) {
        for line in output_lines(message) {
            let _ = self
                .multi
                .println(format!("ERROR: {}", strip_controls(line)));
        }
    }

    fn message(&self, text: &str) {
        for line in output_lines(text) {
            let _ = self.multi.println(strip_controls(line));
        }
    }

    /// Moves the oldest successful steps out of the live view once there are
    /// more than [`LIVE_FINISHED`], printing their final line above it.
    fn retire_excess(&self, state: &mut TtyState) {
        while state.live_finished.len() > LIVE_FINISHED {
            let Some(id) = state.live_finished.pop_front() else {
                break;
            };
            let Some(step) = state.steps.get_mut(&id) else {
                continue;
            };
            if step.status != Status::Succeeded {
                continue;
            }
            step.status = Status::Retired;
            // Remove first, then print: the print redraws the view once,
            // so the line never shows twice.
            self.multi.remove(&step.bar);
            let _ = self.multi.println(static_line(step));
        }
    }

    fn finish_all(&self) {
        let mut state = lock(&self.state);
        if state.finished {
            return;
        }
        state.finished = true;
        let mut canceled = false;
        for step in state.steps.values_mut() {
            if step.status != Status::Running {
                continue;
            }
            // Still running when the build ended: it was cut short.
            canceled = true;
            step.status = Status::Canceled;
            step.duration = step.bar.elapsed();
            self.clear_lines(step);
            finish_bar(&step.bar, CANCELED, step.duration);
        }
        let outcome = if state.failed {
            "FAILED"
        } else if canceled {
            "CANCELED"
        } else {
            "FINISHED"
        };
        self.header.disable_steady_tick();
        self.header
            .set_style(header_done_style(self.start.elapsed()));
        self.header
            .finish_with_message(format!("({}/{}) {outcome}", state.ended, state.started));
    }
}

impl Progress for TtyRenderer {
    fn event(&self, event: BuildEvent) {
        let mut state = lock(&self.state);
        if state.finished {
            // The view is final; only what must not be lost still goes out.
            match event {
                BuildEvent::Failed { message, .. } => self.print_error(&message),
                BuildEvent::Message { text } => self.message(&text),
                _ => {}
            }
            return;
        }
        match event {
            BuildEvent::Started { step, name } => self.started(&mut state, step, name),
            BuildEvent::Cached { step } => {
                if let Some(step) = state.steps.get_mut(&step) {
                    step.cached = true;
                }
            }
            BuildEvent::Bytes { step, bytes } => {
                // Not with a let chain: they are newer than our minimum Rust.
                if let Some(step) = state.steps.get(&step)
                    && step.status == Status::Running
                {
                    step.bar.set_position(bytes);
                }
            }
            BuildEvent::Log { step, line } => self.log(&mut state, step, &line),
            BuildEvent::Done {
                step,
                duration,
                bytes,
            } => self.done(&mut state, step, duration, bytes),
            BuildEvent::Failed { step, message } => self.failed(&mut state, step, &message),
            BuildEvent::Message { text } => self.message(&text),
        }
    }
}

impl Renderer for TtyRenderer {
    fn finish(&self) {
        self.finish_all();
    }
}

impl Drop for TtyRenderer {
    /// Stops spinners and leaves a final view even if `finish` was not
    /// called (an early return on error).
    fn drop(&mut self) {
        self.finish_all();
    }
}

/// A step name on one line (heredoc `RUN`s have multi-line names).
fn one_line(name: &str) -> String {
    output_lines(name)
        .map(strip_controls)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The final line of a step, as printed into the scrollback. Without the
/// terminal's width it cannot be right-aligned like the live line.
fn static_line(step: &Step) -> String {
    let mark = if step.cached { CACHED } else { DONE };
    let bytes = step.bar.position();
    let mut line = format!("{} {}", mark.text, step.name);
    if bytes > 0 {
        line.push_str("  ");
        line.push_str(&human_bytes(bytes));
    }
    line.push_str("  ");
    line.push_str(&seconds(step.duration));
    line
}

fn finish_bar(bar: &ProgressBar, mark: Mark, duration: Duration) {
    bar.disable_steady_tick();
    bar.set_style(finished_style(mark, duration));
    bar.set_prefix(mark.text);
    bar.finish();
}

/// `{size}`: the step's bytes (kept as the bar's position), blank when none.
fn size_key(state: &ProgressState, w: &mut dyn fmt::Write) {
    if state.pos() > 0 {
        let _ = w.write_str(&human_bytes(state.pos()));
    }
}

/// `{time}` of a running step: how long its line has existed.
fn running_time_key(state: &ProgressState, w: &mut dyn fmt::Write) {
    let _ = w.write_str(&seconds(state.elapsed()));
}

/// A `{time}` key that always shows `d` (finished steps show the duration
/// the builder measured, not the age of their line).
fn fixed_time_key(d: Duration) -> impl Fn(&ProgressState, &mut dyn fmt::Write) + Clone {
    move |_: &ProgressState, w: &mut dyn fmt::Write| {
        let _ = w.write_str(&seconds(d));
    }
}

/// Templates are constants, so parsing cannot fail in practice; if it ever
/// did, a bare spinner is better than a panic in the middle of a build.
fn template(t: &str) -> ProgressStyle {
    ProgressStyle::with_template(t).unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn running_style() -> ProgressStyle {
    template("{spinner:.cyan} {wide_msg} {size:>9} {time:>6}")
        .tick_chars(SPINNER)
        .with_key("size", size_key)
        .with_key("time", running_time_key)
}

fn finished_style(mark: Mark, duration: Duration) -> ProgressStyle {
    template(&format!(
        "{{prefix:.{}}} {{wide_msg}} {{size:>9}} {{time:>6}}",
        mark.color
    ))
    .with_key("size", size_key)
    .with_key("time", fixed_time_key(duration))
}

fn log_style() -> ProgressStyle {
    template("{wide_msg:.dim}")
}

fn error_style() -> ProgressStyle {
    template("{msg:.red}")
}

fn header_style(start: Instant) -> ProgressStyle {
    template("Building {total} {msg}").with_key(
        "total",
        move |_: &ProgressState, w: &mut dyn fmt::Write| {
            let _ = w.write_str(&seconds(start.elapsed()));
        },
    )
}

fn header_done_style(total: Duration) -> ProgressStyle {
    template("Building {total} {msg}").with_key("total", fixed_time_key(total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use indicatif::TermLike;
    use std::io;
    use std::sync::Arc;
    use std::thread;

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

    fn done(step: usize, millis: u64, bytes: u64) -> BuildEvent {
        BuildEvent::Done {
            step: StepId(step),
            duration: Duration::from_millis(millis),
            bytes,
        }
    }

    fn failed(step: usize, message: &str) -> BuildEvent {
        BuildEvent::Failed {
            step: StepId(step),
            message: message.to_owned(),
        }
    }

    /// Every event in odd orders: unknown steps, events after the end of a
    /// step, after `finish`, twice.
    fn awkward_sequence() -> Vec<BuildEvent> {
        vec![
            done(99, 1, 1),
            BuildEvent::Cached { step: StepId(98) },
            BuildEvent::Bytes {
                step: StepId(97),
                bytes: 1,
            },
            log(96, "orphan"),
            failed(95, "orphan failure\nsecond line"),
            started(1, "[a 1/2] RUN x\nwith a heredoc"),
            started(1, "[a 1/2] RUN x (renamed)"),
            log(1, "\u{1b}[2J\u{1b}[Hclear screen attempt\r\n\tindented"),
            log(1, ""),
            done(1, 10, 0),
            done(1, 10, 0),
            BuildEvent::Bytes {
                step: StepId(1),
                bytes: 5,
            },
            log(1, "after done"),
            failed(1, "after done"),
            started(1, "restarted after done"),
            started(2, "[a 2/2] RUN y"),
            failed(2, "boom"),
            failed(2, "boom again"),
            done(2, 1, 1),
            log(2, "after failure"),
            BuildEvent::Cached { step: StepId(2) },
            started(3, "cached"),
            BuildEvent::Cached { step: StepId(3) },
            BuildEvent::Cached { step: StepId(3) },
            done(3, 0, 0),
            started(4, "left running"),
            log(4, "x"),
            BuildEvent::Message {
                text: String::new(),
            },
            BuildEvent::Message {
                text: "multi\nline\n".to_owned(),
            },
        ]
    }

    #[test]
    fn hidden_target_survives_any_sequence() {
        let r = TtyRenderer::with_target(ProgressDrawTarget::hidden());
        for event in awkward_sequence() {
            r.event(event);
        }
        r.finish();
        r.finish();
        for event in awkward_sequence() {
            r.event(event);
        }
        drop(r);
        // Dropped without finish.
        let r = TtyRenderer::with_target(ProgressDrawTarget::hidden());
        r.event(started(1, "x"));
        drop(r);
    }

    #[test]
    fn visible_target_survives_any_sequence() {
        let screen = Screen::new(40, 10);
        let r = TtyRenderer::with_target(ProgressDrawTarget::term_like_with_hz(
            Box::new(screen.clone()),
            REDRAW_HZ,
        ));
        for event in awkward_sequence() {
            r.event(event);
        }
        r.finish();
        for event in awkward_sequence() {
            r.event(event);
        }
        drop(r);
    }

    #[test]
    fn concurrent_steps_from_threads() {
        let r = Arc::new(TtyRenderer::with_target(
            ProgressDrawTarget::term_like_with_hz(Box::new(Screen::new(80, 40)), REDRAW_HZ),
        ));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let r = Arc::clone(&r);
                thread::spawn(move || {
                    for s in 0..5 {
                        let id = t * 10 + s;
                        r.event(started(id, &format!("[stage{t} {s}/5] RUN work")));
                        for i in 0..50 {
                            r.event(log(id, &format!("line {i}")));
                            r.event(BuildEvent::Bytes {
                                step: StepId(id),
                                bytes: i * 1000,
                            });
                        }
                        r.event(done(id, 5, 50_000));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        r.finish();
        let state = lock(&r.state);
        assert_eq!((state.started, state.ended), (20, 20));
        assert!(state.live_finished.len() <= LIVE_FINISHED);
    }

    #[test]
    fn final_view() {
        let screen = Screen::new(60, 30);
        let r = TtyRenderer::with_target(ProgressDrawTarget::term_like_with_hz(
            Box::new(screen.clone()),
            REDRAW_HZ,
        ));
        r.event(started(1, "[internal] load build context"));
        r.event(BuildEvent::Bytes {
            step: StepId(1),
            bytes: 1000,
        });
        r.event(done(1, 400, 12_300_000));
        r.event(started(2, "[build 1/3] FROM scratch"));
        r.event(BuildEvent::Cached { step: StepId(2) });
        r.event(done(2, 0, 0));
        r.event(started(3, "[build 2/3] RUN make"));
        for i in 1..=6 {
            r.event(log(3, &format!("cc -c file{i}.c")));
        }
        r.event(BuildEvent::Message {
            text: "warning: something".to_owned(),
        });
        r.event(started(4, "[build 3/3] RUN other"));
        r.event(log(4, "hidden once cancelled"));
        r.event(failed(3, "exit code 2"));
        r.finish();

        let lines = screen.lines();
        let at = |prefix: &str| {
            lines
                .iter()
                .position(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("no line starting {prefix:?} in {lines:#?}"))
        };
        assert_eq!(lines[0], "warning: something");
        assert!(lines[1].starts_with("Building "), "{lines:#?}");
        assert!(lines[1].ends_with(" (3/4) FAILED"), "{lines:#?}");
        let context = &lines[at("✔ [internal] load build context")];
        assert!(context.ends_with("12.3 MB   0.4s"), "{context:?}");
        assert_eq!(context.chars().count(), 60, "right-aligned: {context:?}");
        assert!(lines[at("CACHED [build 1/3] FROM scratch")].ends_with("0.0s"));
        let make = at("✘ [build 2/3] RUN make");
        assert_eq!(
            lines[make + 1..make + 6],
            [
                "    cc -c file3.c",
                "    cc -c file4.c",
                "    cc -c file5.c",
                "    cc -c file6.c",
                "    ERROR: exit code 2",
            ]
        );
        let other = at("CANCELED [build 3/3] RUN other");
        assert_eq!(lines.len(), other + 1, "no log lines left: {lines:#?}");
        assert!(!lines.iter().any(|l| l.contains("hidden once cancelled")));
    }

    #[test]
    fn successful_steps_lose_logs_and_scroll_out_when_many() {
        let screen = Screen::new(60, 40);
        let r = TtyRenderer::with_target(ProgressDrawTarget::term_like_with_hz(
            Box::new(screen.clone()),
            REDRAW_HZ,
        ));
        let n = LIVE_FINISHED + 3;
        for i in 0..n {
            r.event(started(i, &format!("step {i:02}")));
            r.event(log(i, "some output"));
            r.event(done(i, 100, if i == 0 { 2048 } else { 0 }));
        }
        r.finish();
        let lines = screen.lines();
        // The three oldest went to the scrollback, above the header, in
        // their order and in the static format.
        assert_eq!(lines[0], "✔ step 00  2.0 kB  0.1s");
        assert_eq!(lines[1], "✔ step 01  0.1s");
        assert_eq!(lines[2], "✔ step 02  0.1s");
        assert!(lines[3].starts_with("Building "), "{lines:#?}");
        assert!(lines[3].ends_with(&format!("({n}/{n}) FINISHED")));
        for (i, line) in lines[4..].iter().enumerate() {
            assert!(
                line.starts_with(&format!("✔ step {:02}", i + 3)),
                "{lines:#?}"
            );
        }
        assert_eq!(lines.len(), 4 + LIVE_FINISHED);
        assert!(!lines.iter().any(|l| l.contains("some output")));
    }

    /// A tiny terminal emulator: enough of one for indicatif's drawing
    /// (write, carriage return, newline, cursor up/down, clear line, auto
    /// wrap), ignoring colours.
    #[derive(Debug, Clone)]
    struct Screen {
        inner: Arc<Mutex<ScreenState>>,
    }

    #[derive(Debug)]
    struct ScreenState {
        width: usize,
        height: usize,
        rows: Vec<Vec<char>>,
        row: usize,
        col: usize,
    }

    impl Screen {
        fn new(width: u16, height: u16) -> Self {
            Screen {
                inner: Arc::new(Mutex::new(ScreenState {
                    width: width.into(),
                    height: height.into(),
                    rows: vec![Vec::new()],
                    row: 0,
                    col: 0,
                })),
            }
        }

        /// Rows with trailing blanks trimmed, without trailing empty rows.
        fn lines(&self) -> Vec<String> {
            let s = lock(&self.inner);
            let mut lines: Vec<String> = s
                .rows
                .iter()
                .map(|r| r.iter().collect::<String>().trim_end().to_owned())
                .collect();
            while lines.last().is_some_and(String::is_empty) {
                lines.pop();
            }
            lines
        }
    }

    impl ScreenState {
        fn goto_row(&mut self, row: usize) {
            self.row = row;
            while self.rows.len() <= row {
                self.rows.push(Vec::new());
            }
        }

        fn put(&mut self, c: char) {
            if self.col >= self.width {
                // Deferred wrap, like real terminals.
                self.goto_row(self.row + 1);
                self.col = 0;
            }
            let width = self.width;
            let row = &mut self.rows[self.row];
            row.resize(width, ' ');
            row[self.col] = c;
            self.col += 1;
        }

        fn write(&mut self, s: &str) {
            let mut chars = s.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\r' => self.col = 0,
                    '\n' => {
                        self.goto_row(self.row + 1);
                        self.col = 0;
                    }
                    // Colour sequences: skip up to the final letter.
                    '\u{1b}' => {
                        for c in chars.by_ref() {
                            if c.is_ascii_alphabetic() {
                                break;
                            }
                        }
                    }
                    c => self.put(c),
                }
            }
        }
    }

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            lock(&self.inner).width as u16
        }

        fn height(&self) -> u16 {
            lock(&self.inner).height as u16
        }

        fn move_cursor_up(&self, n: usize) -> io::Result<()> {
            let mut s = lock(&self.inner);
            s.row = s.row.saturating_sub(n);
            s.col = s.col.min(s.width - 1);
            Ok(())
        }

        fn move_cursor_down(&self, n: usize) -> io::Result<()> {
            let mut s = lock(&self.inner);
            let row = s.row + n;
            s.goto_row(row);
            s.col = s.col.min(s.width - 1);
            Ok(())
        }

        fn move_cursor_right(&self, n: usize) -> io::Result<()> {
            let mut s = lock(&self.inner);
            s.col = (s.col + n).min(s.width - 1);
            Ok(())
        }

        fn move_cursor_left(&self, n: usize) -> io::Result<()> {
            let mut s = lock(&self.inner);
            s.col = s.col.saturating_sub(n);
            Ok(())
        }

        fn write_line(&self, s: &str) -> io::Result<()> {
            let mut state = lock(&self.inner);
            state.write(s);
            state.write("\n");
            Ok(())
        }

        fn write_str(&self, s: &str) -> io::Result<()> {
            lock(&self.inner).write(s);
            Ok(())
        }

        fn clear_line(&self) -> io::Result<()> {
            let mut s = lock(&self.inner);
            let row = s.row;
            s.rows[row].clear();
            s.col = 0;
            Ok(())
        }

        fn flush(&self) -> io::Result<()> {
            Ok(())
        }
    }
}
