//! A one-line progress bar on stderr, drawn only when stderr is a terminal.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use zicht_store::import::{Phase, Progress};

/// Progress of one file's import.
pub struct Bar {
    label: String,
    enabled: bool,
    last_draw: Option<Instant>,
    drawn: bool,
}

impl Bar {
    /// A bar for importing `file`; silent when stderr is not a terminal.
    pub fn for_file(file: &Path) -> Bar {
        Bar {
            label: file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            enabled: std::io::stderr().is_terminal(),
            last_draw: None,
            drawn: false,
        }
    }

    /// Clears the bar's line.
    pub fn finish(&mut self) {
        if self.drawn {
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
        }
    }
}

impl Progress for Bar {
    fn advance(&mut self, phase: Phase, done: u64, total: u64) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if self
            .last_draw
            .is_some_and(|last| now - last < Duration::from_millis(100))
            && done < total
        {
            return;
        }
        self.last_draw = Some(now);
        self.drawn = true;
        const WIDTH: u64 = 30;
        let fraction = if total == 0 {
            1.0
        } else {
            done as f64 / total as f64
        };
        let filled = ((fraction * WIDTH as f64) as u64).min(WIDTH);
        let what = match phase {
            Phase::Check => "checking",
            Phase::Store => "storing ",
        };
        eprint!(
            "\r{} {what} [{}{}] {:>3.0}%",
            self.label,
            "#".repeat(filled as usize),
            " ".repeat((WIDTH - filled) as usize),
            fraction * 100.0
        );
        let _ = std::io::stderr().flush();
    }
}
