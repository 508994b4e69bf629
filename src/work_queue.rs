//! Handing batches from the thread that owns the SQLite connection to a
//! worker thread, and taking the worker's results back, through two bounded
//! queues (which bound memory). The connection's thread must never block on
//! a full queue while the worker blocks on the other one: while its batch
//! does not fit, it applies the results that have come back.

use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError};

/// Sends `batch` to the worker; while the queue is full, and once it is
/// sent, applies every result waiting in `results`. A worker that has gone
/// (it panicked or stopped) takes nothing more, and joining it says why.
pub fn hand_over<T, R, E>(
    to_worker: &Sender<T>,
    results: &Receiver<R>,
    batch: T,
    mut apply: impl FnMut(R) -> Result<(), E>,
) -> Result<(), E> {
    let mut item = batch;
    loop {
        match to_worker.try_send(item) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => break,
            Err(TrySendError::Full(back)) => item = back,
        }
        if let Ok(result) = results.recv_timeout(Duration::from_millis(5)) {
            apply(result)?;
        }
    }
    while let Ok(result) = results.try_recv() {
        apply(result)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_does_not_block_while_results_wait() {
        let (to_worker, work) = crossbeam_channel::bounded::<u32>(1);
        let (to_back, results) = crossbeam_channel::bounded::<u32>(1);
        let worker = std::thread::spawn(move || {
            for n in work.iter() {
                if to_back.send(n * 10).is_err() {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        for n in 0..100 {
            hand_over(&to_worker, &results, n, |r| {
                seen.push(r);
                Ok::<_, ()>(())
            })
            .unwrap();
        }
        drop(to_worker);
        seen.extend(results.iter());
        worker.join().unwrap();
        assert_eq!(seen, (0..100).map(|n| n * 10).collect::<Vec<_>>());
    }
}
