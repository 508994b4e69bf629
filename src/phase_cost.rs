//! What each phase of a run cost: its wall time and the process's peak
//! resident memory while it ran. On Linux a sampler thread, started with the
//! first meter, reads the resident set (`VmRSS` in /proc/self/status) every
//! 10 ms and keeps the highest value seen since the current meter started;
//! a meter's stop takes one more reading, so a phase shorter than the
//! interval still has its end state. Sampling rather than resetting the
//! kernel's high-water mark leaves the run's own peak (what `/usr/bin/time`
//! reports) untouched. Elsewhere there is no peak. Meters measure one phase
//! at a time. The import's `--json` carries the costs as `phase_costs`, which
//! is how the README's scaling table is measured.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

use serde::Serialize;

/// The cost of one phase.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseCost {
    pub phase: &'static str,
    pub seconds: f64,
    /// Peak resident memory in bytes while the phase ran (sampled every
    /// 10 ms), if the system says.
    pub peak_rss_bytes: Option<u64>,
}

/// The highest resident set seen since the current meter started.
static PEAK: AtomicU64 = AtomicU64::new(0);
static SAMPLER: Once = Once::new();
const INTERVAL: Duration = Duration::from_millis(10);

/// Measures one phase from `start` to `stop`.
pub struct Meter {
    started: Instant,
}

impl Meter {
    pub fn start() -> Meter {
        if resident_bytes().is_some() {
            SAMPLER.call_once(|| {
                // Best effort: without the thread only the readings at start and stop count.
                let _ = std::thread::Builder::new()
                    .name("rss-sampler".into())
                    .spawn(|| loop {
                        sample();
                        std::thread::sleep(INTERVAL);
                    });
            });
        }
        PEAK.store(resident_bytes().unwrap_or(0), Ordering::Relaxed);
        Meter {
            started: Instant::now(),
        }
    }

    pub fn stop(self, phase: &'static str) -> PhaseCost {
        let seconds = self.started.elapsed().as_secs_f64();
        sample();
        let peak = PEAK.load(Ordering::Relaxed);
        // The kernel's high-water mark so far: a peak between two samples
        // shows here. Read only when it will be logged.
        let high_water = tracing::enabled!(tracing::Level::DEBUG)
            .then(|| status_kib("VmHWM:"))
            .flatten();
        if let Some(high_water) = high_water {
            tracing::debug!(
                "{phase}: {seconds:.2} s, sampled peak {} MB, process high-water mark so far {} MB",
                peak >> 20,
                high_water >> 10
            );
        }
        PhaseCost {
            phase,
            seconds,
            peak_rss_bytes: (peak > 0).then_some(peak),
        }
    }
}

/// Logs, at debug, the resident set and the process high-water mark at a
/// point inside a phase, to find which step made its peak.
pub fn log_memory(at: &str) {
    if tracing::enabled!(tracing::Level::DEBUG) {
        let now = resident_bytes().unwrap_or(0) >> 20;
        let high_water = status_kib("VmHWM:").unwrap_or(0) >> 10;
        tracing::debug!("{at}: resident {now} MB, high-water mark so far {high_water} MB");
    }
}

fn sample() {
    if let Some(now) = resident_bytes() {
        PEAK.fetch_max(now, Ordering::Relaxed);
    }
}

fn resident_bytes() -> Option<u64> {
    status_kib("VmRSS:").map(|kib| kib * 1024)
}

/// A `kB` line of /proc/self/status, such as `VmRSS:`.
#[cfg(target_os = "linux")]
fn status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.trim_start_matches(key)
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

#[cfg(not(target_os = "linux"))]
fn status_kib(_key: &str) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phase_that_touches_memory_sees_it_in_its_peak() {
        let meter = Meter::start();
        let block = vec![1u8; 64 << 20];
        std::hint::black_box(&block);
        let cost = meter.stop("test");
        drop(block);
        assert_eq!(cost.phase, "test");
        assert!(cost.seconds >= 0.0);
        if cfg!(target_os = "linux") {
            let peak = cost.peak_rss_bytes.expect("Linux reports VmRSS");
            assert!(peak >= 64 << 20, "peak {peak} below the 64 MiB touched");
        }
    }
}
