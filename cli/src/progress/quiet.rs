//! `--progress=quiet`: nothing but failures, so that `-q` output stays
//! clean while a failing build still says which step failed and why.
//!
//! ```text
//! ERROR: [build 3/4] RUN make: exit code 2
//! ```

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;

use berth_builder::progress::{BuildEvent, Progress, StepId};

use super::{Renderer, lock};

pub struct QuietRenderer {
    state: Mutex<QuietState>,
}

struct QuietState {
    out: Box<dyn Write + Send>,
    /// Names of started steps, to say which one failed.
    names: HashMap<StepId, String>,
}

impl QuietRenderer {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        QuietRenderer {
            state: Mutex::new(QuietState {
                out,
                names: HashMap::new(),
            }),
        }
    }
}

impl Progress for QuietRenderer {
    fn event(&self, event: BuildEvent) {
        let mut state = lock(&self.state);
        match event {
            BuildEvent::Started { step, name } => {
                state.names.insert(step, name);
            }
            BuildEvent::Done { step, .. } => {
                state.names.remove(&step);
            }
            BuildEvent::Failed { step, message } => {
                let text = match state.names.remove(&step) {
                    Some(name) => format!("ERROR: {name}: {message}\n"),
                    None => format!("ERROR: {message}\n"),
                };
                // One write, errors ignored: see the module docs of `progress`.
                let _ = state.out.write_all(text.as_bytes());
                let _ = state.out.flush();
            }
            BuildEvent::Cached { .. }
            | BuildEvent::Bytes { .. }
            | BuildEvent::Log { .. }
            | BuildEvent::Message { .. } => {}
        }
    }
}

impl Renderer for QuietRenderer {
    fn finish(&self) {
        let _ = lock(&self.state).out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::super::plain::tests::{Broken, Capture};
    use super::*;
    use std::time::Duration;

    #[test]
    fn only_failures_are_shown() {
        let out = Capture::default();
        let r = QuietRenderer::new(Box::new(out.clone()));
        r.event(BuildEvent::Started {
            step: StepId(1),
            name: "[build 1/2] COPY . /".to_owned(),
        });
        r.event(BuildEvent::Bytes {
            step: StepId(1),
            bytes: 10,
        });
        r.event(BuildEvent::Log {
            step: StepId(1),
            line: "noise".to_owned(),
        });
        r.event(BuildEvent::Done {
            step: StepId(1),
            duration: Duration::from_millis(5),
            bytes: 10,
        });
        r.event(BuildEvent::Message {
            text: "warning".to_owned(),
        });
        r.event(BuildEvent::Started {
            step: StepId(2),
            name: "[build 2/2] RUN make".to_owned(),
        });
        r.event(BuildEvent::Failed {
            step: StepId(2),
            message: "exit code 2".to_owned(),
        });
        r.event(BuildEvent::Failed {
            step: StepId(9),
            message: "cancelled".to_owned(),
        });
        r.finish();
        assert_eq!(
            out.lines(),
            [
                "ERROR: [build 2/2] RUN make: exit code 2",
                "ERROR: cancelled"
            ]
        );
    }

    #[test]
    fn closed_output_is_ignored() {
        let r = QuietRenderer::new(Box::new(Broken));
        r.event(BuildEvent::Failed {
            step: StepId(1),
            message: "x".to_owned(),
        });
        r.finish();
    }
}
