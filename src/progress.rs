//! Progress bars for long stages, shown only when stderr is a terminal and logs are plain text
//! (never under cron, never in JSON logs). Log lines written while a bar is up go through
//! [`LogWriter`], which lifts the bar out of the way, so the two never garble each other.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

static ENABLED: AtomicBool = AtomicBool::new(false);
static CURRENT: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Turns progress bars on (the binary does, for a terminal and text logs).
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// A stage's bar; hidden when bars are off. It stays the current one (the one log lines step
/// around) until dropped.
pub struct StageProgress {
    bar: Option<ProgressBar>,
}

impl StageProgress {
    pub fn start(stage: &str, total: u64) -> StageProgress {
        if !ENABLED.load(Ordering::Relaxed) || total == 0 {
            return StageProgress { bar: None };
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{prefix:>8} [{bar:30}] {pos}/{len} {msg} ({elapsed}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(stage.to_owned());
        *CURRENT.lock().unwrap_or_else(|p| p.into_inner()) = Some(bar.clone());
        StageProgress { bar: Some(bar) }
    }

    /// One more item done; `what` names it.
    pub fn advance(&self, what: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(what.to_owned());
            bar.inc(1);
        }
    }
}

impl Drop for StageProgress {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
            *CURRENT.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
    }
}

/// Stderr for `tracing`: hides the current bar while a line is written.
#[derive(Clone, Copy, Default)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bar = CURRENT.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match bar {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(buf))?,
            None => std::io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;
    fn make_writer(&'a self) -> LogWriter {
        LogWriter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_hidden_unless_enabled() {
        let progress = StageProgress::start("extract", 10);
        assert!(progress.bar.is_none());
        progress.advance("ocean_costs act-1");
        assert!(CURRENT.lock().unwrap().is_none());
    }
}
