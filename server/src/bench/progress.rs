//! A progress bar on stderr, drawn only when stderr is a terminal (scripts and CI see nothing).

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::budget::Budget;

/// Polls the budget's counter from its own thread, so the measured tasks never draw.
pub struct Progress {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    pub fn start(budget: Arc<Budget>, enabled: bool) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = (enabled && std::io::stderr().is_terminal()).then(|| {
            let stop = stop.clone();
            std::thread::spawn(move || draw(&budget, &stop))
        });
        Self { stop, thread }
    }

    pub fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn draw(budget: &Budget, stop: &AtomicBool) {
    let bar = match budget.total() {
        Some(total) => ProgressBar::new(total),
        None => ProgressBar::new_spinner(),
    };
    if let Ok(style) =
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} {per_sec}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    while !stop.load(Ordering::Relaxed) {
        bar.set_position(budget.done());
        std::thread::sleep(Duration::from_millis(100));
    }
    bar.set_position(budget.done());
    bar.finish_and_clear();
}
