//! The exit codes of every command, defined once: `intake --help` prints
//! `TABLE`, and each subcommand maps its outcome here, so one failure has one
//! code everywhere. "Nothing to do" (files already imported, a flow already
//! synced) is success; `--json` says what happened.

use intake::import::ImportOutcome;
use intake::sync::{SyncError, SyncOutcome};

/// Done, or nothing to do.
pub const SUCCESS: i32 = 0;
/// The command failed: the database is unusable or newer, an I/O error, a
/// phase or the central database failed.
pub const FAILED: i32 = 1;
/// The command line is wrong (clap's own code).
pub const USAGE: i32 = 2;
/// Something named or read could not be: a file or sheet not imported (the
/// others were), a file `sniff` cannot read, no database, no such flow,
/// column or field.
pub const NOT_FOUND: i32 = 3;
/// Refused: `import --strict` with row warnings; a sync the central
/// database refuses (flow not completed, schema differs, another tenant).
pub const REFUSED: i32 = 4;
/// Another sync of the engagement is running.
pub const LOCKED: i32 = 5;

/// The table `intake --help` shows.
pub const TABLE: &str = "\
Exit codes: (the same for every command)
  0  success, or nothing to do (files already imported, a flow already synced;
     --json says which); row-level warnings are reported, not failures
  1  the command failed (database unusable or newer, I/O error, a phase or the
     central database failed)
  2  the command line is wrong (also: an invalid --rules file, no DATABASE_URL
     or one whose password is not percent-encoded, a binary format without
     --output, an --output that is the database)
  3  something could not be read or found: a file or sheet not imported (the
     others were), a file sniff cannot read, no database, no such flow, column
     or field, no browser to print a PDF report
  4  refused: import --strict and rows had warnings; sync refused (flow not
     completed, central schema differs, another tenant's row)
  5  sync: another sync of the engagement is running";

/// An import: a file that failed wins over --strict's warnings.
pub fn of_import(outcome: &ImportOutcome, strict: bool) -> i32 {
    if outcome.totals.failed > 0 {
        NOT_FOUND
    } else if strict && outcome.totals.warnings > 0 {
        REFUSED
    } else {
        SUCCESS
    }
}

/// A sync that ran: synced, planned or unchanged alike.
pub fn of_sync(_outcome: &SyncOutcome) -> i32 {
    SUCCESS
}

/// A sync that did not happen.
pub fn of_sync_error(error: &SyncError) -> i32 {
    match error.outcome() {
        "refused" => REFUSED,
        "locked" => LOCKED,
        _ => match error {
            SyncError::NoFlow | SyncError::UnknownFlow(_) => NOT_FOUND,
            SyncError::Url(_) => USAGE,
            _ => FAILED,
        },
    }
}
