//! Progress bars on stderr: one per file (bytes read, rows/s, ETA), drawn only when
//! stderr is a terminal and the caller asked for them. Readers only bump atomic
//! counters; a ticker thread draws, so the hot path never waits on the terminal.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// What a bar counts: bytes of a text file, or rows of a sheet (whose byte
/// position inside the compressed workbook means nothing to the user).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    Rows,
}

/// One bar: its label, total, the counter of what is done, the rows read.
pub struct Tracked {
    pub label: String,
    pub total: u64,
    pub done: Arc<AtomicU64>,
    pub rows: Arc<AtomicU64>,
    pub unit: Unit,
}

pub struct ProgressBars {
    stop: Arc<AtomicBool>,
    ticker: Option<JoinHandle<()>>,
}

impl ProgressBars {
    pub fn new(enabled: bool, files: Vec<Tracked>) -> ProgressBars {
        let stop = Arc::new(AtomicBool::new(false));
        if !enabled || !std::io::stderr().is_terminal() {
            return ProgressBars { stop, ticker: None };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let bytes_style = ProgressStyle::with_template(
            "{prefix:30!} {bar:30.cyan/blue} {bytes:>10}/{total_bytes:10} {msg} ETA {eta}",
        )
        .expect("the template is valid")
        .progress_chars("=> ");
        let rows_style = ProgressStyle::with_template(
            "{prefix:30!} {bar:30.cyan/blue} {pos:>10}/{len:10} {msg} ETA {eta}",
        )
        .expect("the template is valid")
        .progress_chars("=> ");
        let bars: Vec<(ProgressBar, Tracked)> = files
            .into_iter()
            .map(|tracked| {
                let bar = multi.add(ProgressBar::new(tracked.total));
                bar.set_style(match tracked.unit {
                    Unit::Bytes => bytes_style.clone(),
                    Unit::Rows => rows_style.clone(),
                });
                bar.set_prefix(crate::printable::escape_controls(&tracked.label).into_owned());
                (bar, tracked)
            })
            .collect();
        let stop_flag = stop.clone();
        let ticker = std::thread::spawn(move || {
            let start = Instant::now();
            loop {
                let stopping = stop_flag.load(Ordering::Relaxed);
                let secs = start.elapsed().as_secs_f64().max(0.001);
                for (bar, tracked) in &bars {
                    let Tracked {
                        total, done, rows, ..
                    } = tracked;
                    let done = done.load(Ordering::Relaxed).min(*total);
                    bar.set_position(done);
                    let rows = rows.load(Ordering::Relaxed);
                    bar.set_message(format!("{rows} rows {:.0} rows/s", rows as f64 / secs));
                    if stopping {
                        bar.finish();
                    }
                }
                if stopping {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        ProgressBars {
            stop,
            ticker: Some(ticker),
        }
    }

    pub fn finish(mut self) {
        self.stop_ticker();
    }

    fn stop_ticker(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.join();
        }
    }
}

impl Drop for ProgressBars {
    fn drop(&mut self) {
        self.stop_ticker();
    }
}

/// One bar per table of a sync, counting rows; hidden unless enabled and on a terminal.
pub struct TableBars {
    multi: Option<MultiProgress>,
}

impl TableBars {
    pub fn new(enabled: bool) -> TableBars {
        TableBars {
            multi: (enabled && std::io::stderr().is_terminal())
                .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10))),
        }
    }

    /// A bar for `rows` rows of `table` (a hidden one when bars are off).
    pub fn add(&self, table: &str, rows: u64) -> ProgressBar {
        let Some(multi) = &self.multi else {
            return ProgressBar::hidden();
        };
        let bar = multi.add(ProgressBar::new(rows));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:30!} {bar:30.cyan/blue} {pos:>10}/{len:10} rows ETA {eta}",
            )
            .expect("the template is valid")
            .progress_chars("=> "),
        );
        bar.set_prefix(crate::printable::escape_controls(table).into_owned());
        bar
    }
}
