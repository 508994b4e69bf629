//! Progress bars on stderr: one per file while files are read (bytes or rows,
//! rows/s, ETA), then one per discovery phase with its own count (rows
//! mapped and cleansed, machines, edges, assets judged), and one per table
//! of a sync. Drawn only when stderr is a terminal and the caller asked for
//! them. Readers only bump atomic counters; a ticker thread draws, so the hot
//! path never waits on the terminal. Labels are shortened in the middle
//! (`printable::short_label`), so two files of one folder stay apart.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The width of a bar's label: files and sheets are shortened to it.
pub const LABEL_WIDTH: usize = 30;

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
                        // A sheet's total was its declared rows (the header among them).
                        if tracked.unit == Unit::Rows {
                            bar.set_length(done);
                        }
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

/// One bar per discovery phase, each counting what that phase works
/// through; hidden unless enabled and on a terminal.
pub struct PhaseBars {
    multi: Option<MultiProgress>,
}

impl PhaseBars {
    pub fn new(enabled: bool) -> PhaseBars {
        PhaseBars {
            multi: (enabled && std::io::stderr().is_terminal())
                .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10))),
        }
    }

    /// Whether bars are drawn (a phase's total is only worth counting then).
    pub fn shown(&self) -> bool {
        self.multi.is_some()
    }

    /// A bar for `phase` counting `unit` (rows, machines, assets) up to
    /// `total`, or a spinner with the count when the total is not known.
    pub fn start(&self, phase: &str, unit: &str, total: Option<u64>) -> ProgressBar {
        let Some(multi) = &self.multi else {
            return ProgressBar::hidden();
        };
        let (bar, template) = match total {
            Some(total) => (
                ProgressBar::new(total),
                format!("{{prefix:{LABEL_WIDTH}!}} {{bar:30.cyan/blue}} {{human_pos:>10}}/{{human_len:10}} {unit} {{msg}} ETA {{eta}}"),
            ),
            None => (
                ProgressBar::new_spinner(),
                format!("{{prefix:{LABEL_WIDTH}!}} {{spinner}} {{human_pos:>10}} {unit} {{msg}} {{elapsed}}"),
            ),
        };
        let bar = multi.add(bar);
        bar.set_style(
            ProgressStyle::with_template(&template)
                .expect("the template is valid")
                .progress_chars("=> "),
        );
        bar.set_prefix(phase.replace('_', " "));
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    }
}
