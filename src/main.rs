//! The `intake` binary: parses the command line and calls the library. One file
//! per subcommand under `cli/`.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    keep_freed_memory_briefly();
    let args = cli::Cli::parse();
    cli::init_logging(&args);
    match cli::run(args) {
        Ok(code) => ExitCode::from(code as u8),
        Err(error) if cli::is_closed_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!(
                "error: {}",
                intake::printable::escape_controls(&format!("{error:#}"))
            );
            ExitCode::from(cli::exit::FAILED as u8)
        }
    }
}

// glibc's allocator spends much of a large import freeing memory another
// thread allocated; mimalloc does not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in `mi_option_t` (mimalloc.h, 15 in both v2 and v3).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// mimalloc v3 returns freed memory to the system after a second; a
/// million-row import frees and reallocates its batches faster than that,
/// so its peak RSS wandered between 275 and 310 MB. A tenth of a second
/// keeps it at about 278 MB at the same speed. MIMALLOC_PURGE_DELAY in the
/// environment still wins.
fn keep_freed_memory_briefly() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets a plain integer option; called before any thread starts.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 100) };
    }
}
