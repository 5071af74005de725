//! The import progress bar (indicatif) on stderr, drawn only when stderr is a terminal.

use std::path::Path;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use zicht_store::import::{Phase, Progress};

/// Progress of one file's import.
pub struct Bar {
    bar: ProgressBar,
    label: String,
    phase: Option<Phase>,
}

impl Bar {
    /// A bar for importing `file`; hidden when stderr is not a terminal (indicatif's stderr
    /// target draws nothing then).
    pub fn for_file(file: &Path) -> Bar {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {percent:>3}%") {
            bar.set_style(style.progress_chars("#>-"));
        }
        Bar {
            bar,
            label: file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            phase: None,
        }
    }

    /// Clears the bar's line.
    pub fn finish(&mut self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for Bar {
    fn advance(&mut self, phase: Phase, done: u64, total: u64) {
        // The message changes with the phase only: no string per batch.
        if self.phase != Some(phase) {
            self.phase = Some(phase);
            let what = match phase {
                Phase::Check => "checking",
                Phase::Store => "storing ",
            };
            self.bar.set_message(format!("{} {what}", self.label));
        }
        self.bar.set_length(total);
        self.bar.set_position(done);
    }
}
