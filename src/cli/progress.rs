//! Progress of long work (index builds, embedding) on stderr, so `--json` output on
//! stdout stays clean: indicatif bars on a terminal, one log line per stage (its size,
//! then its time) in a file or pipe, where a redrawn bar would be noise.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use wenda::progress::Progress;

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Display {
    /// Redrawn bars (a terminal).
    Bars,
    /// A log line when a stage starts and one when it ends (a file or a pipe).
    Lines,
    /// Nothing (`--quiet`).
    Nothing,
}

/// The stage under way.
struct Stage {
    name: String,
    total: u64,
    started: Instant,
    bar: Option<ProgressBar>,
}

/// Shows one stage of long work at a time.
pub struct Bars {
    current: Mutex<Option<Stage>>,
    display: Display,
}

impl Bars {
    /// Bars when stderr is a terminal, lines when it is not, nothing when `quiet`.
    pub fn for_stderr(quiet: bool) -> Self {
        let display = if quiet {
            Display::Nothing
        } else if std::io::stderr().is_terminal() {
            Display::Bars
        } else {
            Display::Lines
        };
        Bars {
            current: Mutex::new(None),
            display,
        }
    }

    /// Ends the stage under way, if any (its bar, or its closing line).
    fn end(&self, stage: Stage) {
        if let Some(bar) = stage.bar {
            bar.finish();
        }
        if self.display == Display::Lines {
            tracing::info!(
                "{}: {} done in {:.1} s",
                stage.name,
                stage.total,
                stage.started.elapsed().as_secs_f64()
            );
        }
    }
}

impl Progress for Bars {
    fn stage(&self, name: &str, total: u64) {
        let bar = (self.display == Display::Bars).then(|| {
            let bar = ProgressBar::new(total);
            let style = ProgressStyle::with_template(
                "{msg:>16} [{bar:30.cyan/blue}] {pos}/{len} ({per_sec}, eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_message(name.to_string());
            bar
        });
        if self.display == Display::Lines {
            tracing::info!("{name}: {total} to do");
        }
        let stage = Stage {
            name: name.to_string(),
            total,
            started: Instant::now(),
            bar,
        };
        if let Ok(mut current) = self.current.lock()
            && let Some(previous) = current.replace(stage)
        {
            self.end(previous);
        }
    }

    fn position(&self, done: u64) {
        if let Ok(current) = self.current.lock()
            && let Some(bar) = current.as_ref().and_then(|s| s.bar.as_ref())
        {
            bar.set_position(done);
        }
    }

    fn finish(&self) {
        if let Ok(mut current) = self.current.lock()
            && let Some(stage) = current.take()
        {
            self.end(stage);
        }
    }
}
