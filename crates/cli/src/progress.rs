//! A one-line progress bar on stderr for uploads, redrawn in place; used only when stderr is a
//! terminal.

use std::io::Write;

use crate::format::human_size;

const BAR_WIDTH: usize = 30;
/// Erases the rest of the line after a redraw that may be shorter than the last one.
const CLEAR_TO_END: &str = "\u{1b}[K";

/// `label... [=====>     ]  42%  1.2 MB / 2.9 MB`.
pub fn render(label: &str, done: u64, total: u64) -> String {
    let fraction = if total == 0 {
        1.0
    } else {
        (done.min(total) as f64) / (total as f64)
    };
    let filled = ((fraction * BAR_WIDTH as f64) as usize).min(BAR_WIDTH);
    let bar = match filled {
        BAR_WIDTH => "=".repeat(BAR_WIDTH),
        _ => format!(
            "{}>{}",
            "=".repeat(filled),
            " ".repeat(BAR_WIDTH - filled - 1)
        ),
    };
    format!(
        "{label}... [{bar}] {:>3}%  {} / {}",
        (fraction * 100.0) as u32,
        human_size(i64::try_from(done).unwrap_or(i64::MAX)),
        human_size(i64::try_from(total).unwrap_or(i64::MAX)),
    )
}

/// A bar being drawn on stderr; redraws only when the percentage changes.
pub struct ProgressBar {
    label: String,
    total: u64,
    shown_percent: Option<u64>,
}

impl ProgressBar {
    pub fn new(label: &str, total: u64) -> Self {
        let mut bar = ProgressBar {
            label: label.to_string(),
            total,
            shown_percent: None,
        };
        bar.update(0);
        bar
    }

    pub fn update(&mut self, done: u64) {
        let percent = done
            .saturating_mul(100)
            .checked_div(self.total)
            .unwrap_or(100);
        if self.shown_percent == Some(percent) {
            return;
        }
        self.shown_percent = Some(percent);
        draw(&format!(
            "\r{}{CLEAR_TO_END}",
            render(&self.label, done, self.total)
        ));
    }

    /// Replaces the bar with `label... outcome` and ends the line.
    pub fn finish(&self, outcome: &str) {
        draw(&format!("\r{}... {outcome}{CLEAR_TO_END}\n", self.label));
    }
}

fn draw(text: &str) {
    let mut stderr = std::io::stderr().lock();
    // A progress bar that cannot be drawn is no reason to stop an upload.
    let _ = stderr
        .write_all(text.as_bytes())
        .and_then(|()| stderr.flush());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_fill_with_progress() {
        let check = |done: u64, total: u64, expected: &str| {
            assert_eq!(render("Uploading source", done, total), expected);
        };
        check(
            0,
            2048,
            "Uploading source... [>                             ]   0%  0 B / 2 KB",
        );
        check(
            1024,
            2048,
            "Uploading source... [===============>              ]  50%  1 KB / 2 KB",
        );
        check(
            2048,
            2048,
            "Uploading source... [==============================] 100%  2 KB / 2 KB",
        );
        check(
            0,
            0,
            "Uploading source... [==============================] 100%  0 B / 0 B",
        );
    }
}
