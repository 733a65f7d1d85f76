//! Progress bars for long work (index builds, embedding), drawn with indicatif
//! on stderr so `--json` output on stdout stays clean.

use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};
use wenda::progress::Progress;

/// Draws one bar per build stage.
pub struct Bars {
    current: Mutex<Option<ProgressBar>>,
    hidden: bool,
}

impl Bars {
    /// Bars on stderr; `hidden` draws nothing (quiet mode, not a terminal).
    pub fn new(hidden: bool) -> Self {
        Bars {
            current: Mutex::new(None),
            hidden,
        }
    }
}

impl Progress for Bars {
    fn stage(&self, name: &str, total: u64) {
        let bar = if self.hidden {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(total)
        };
        let style = ProgressStyle::with_template(
            "{msg:>16} [{bar:30.cyan/blue}] {pos}/{len} ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(name.to_string());
        if let Ok(mut current) = self.current.lock() {
            *current = Some(bar);
        }
    }

    fn position(&self, done: u64) {
        if let Ok(current) = self.current.lock()
            && let Some(bar) = current.as_ref()
        {
            bar.set_position(done);
        }
    }

    fn finish(&self) {
        if let Ok(mut current) = self.current.lock()
            && let Some(bar) = current.take()
        {
            bar.finish();
        }
    }
}
