//! Calls into third-party parsers (calamine, zip, cfb, quick-xml) so that a
//! panic inside one is that file's error, not the run's end: `parser_call`
//! catches the unwind and turns it into a message, and the panic hook stays
//! quiet about a panic it catches (no backtrace on the user's terminal; the
//! message is logged at debug). A panic anywhere else still reaches the
//! default hook and ends the process, as a bug of ours should.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// How many `parser_call`s this thread is inside.
    static INSIDE_PARSER: Cell<u32> = const { Cell::new(0) };
}

static QUIET_HOOK: Once = Once::new();

/// Puts the hook in place once: panics inside `parser_call` are logged at
/// debug instead of printed; every other panic goes to the previous hook.
fn install_quiet_hook() {
    QUIET_HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if INSIDE_PARSER.with(Cell::get) > 0 {
                tracing::debug!("a parser panicked (caught, the file fails): {info}");
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `f`, a call into a parser crate on one file's bytes. A panic inside
/// it becomes `Err` with what the parser said, so that only this file fails.
/// The parser's state is not used again after a panic: callers drop what
/// they were reading.
pub fn parser_call<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    install_quiet_hook();
    INSIDE_PARSER.with(|n| n.set(n.get() + 1));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    INSIDE_PARSER.with(|n| n.set(n.get() - 1));
    result.unwrap_or_else(|payload| {
        let said = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        Err(format!(
            "the reader stopped on malformed data inside the file ({said})"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_inside_becomes_an_error_and_the_thread_goes_on() {
        let result: Result<(), String> = parser_call(|| {
            let short: &[u8] = &[1, 2];
            let at = short.len() + 4;
            std::hint::black_box(short[at]);
            Ok(())
        });
        let message = result.unwrap_err();
        assert!(message.contains("index out of bounds"), "{message}");
        assert_eq!(parser_call(|| Ok(7)), Ok(7));
        assert_eq!(INSIDE_PARSER.with(Cell::get), 0);
    }
}
