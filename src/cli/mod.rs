//! Command-line definitions shared by every subcommand, and dispatch.

mod assets;
mod consolidate;
pub mod exit;
mod import;
mod mappings;
mod report;
mod schema;
mod sniff;
mod sync;

use std::io::Write as _;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use intake::printable::{escape_controls, escape_json_controls};

#[derive(Parser, Debug)]
#[command(
    name = "intake",
    version,
    about = "Turn inventory exports into a deduplicated asset inventory in a local SQLite file",
    after_help = exit::TABLE
)]
pub struct Cli {
    /// The SQLite database file (created on first use)
    #[arg(long, global = true, default_value = "intake.db", value_name = "FILE")]
    pub db: PathBuf,

    /// Print only errors on stderr
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// More logging on stderr (-v info, -vv debug); RUST_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    Import(import::ImportArgs),
    Assets(assets::AssetsArgs),
    Mappings(mappings::MappingsArgs),
    Sniff(sniff::SniffArgs),
    Sync(sync::SyncArgs),
    Consolidate(consolidate::ConsolidateArgs),
    Report(report::ReportArgs),
    /// Check or print the database schema
    #[command(subcommand)]
    Schema(schema::SchemaCommand),
}

/// Prints text for people on stdout, with the data's control characters
/// escaped. A closed pipe comes back as an error that `main` ends quietly on.
fn print_text(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(escape_controls(text).as_bytes())?;
    out.flush()
}

/// Prints `value` as pretty JSON and a line break on stdout.
fn print_json<T: serde::Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    let mut out = std::io::stdout().lock();
    out.write_all(escape_json_controls(&text).as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// Prints a message for people on stderr, control characters escaped.
fn say(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{}", escape_controls(text));
}

/// Whether an error is stdout's reader having gone (`intake assets | head`):
/// the command ends quietly then, as Unix tools do. The library's errors
/// keep their I/O cause as their source, so the chain reaches it.
pub fn is_closed_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Opens an existing database read-only; None (after saying so) when the file
/// does not exist, which the read-only commands report with exit code 3.
fn open_existing(db_path: &std::path::Path) -> anyhow::Result<Option<rusqlite::Connection>> {
    if !db_path.exists() {
        say(&format!(
            "error: no database {}; run `intake import` first (or give --db FILE)",
            db_path.display()
        ));
        return Ok(None);
    }
    Ok(Some(intake::db::open_read_only(db_path)?))
}

/// Warns on stderr when the flow a command shows (`--flow`, else the latest)
/// did not complete, naming the command that finishes it.
fn warn_if_unfinished(
    conn: &rusqlite::Connection,
    db_path: &std::path::Path,
    flow: Option<&str>,
) -> anyhow::Result<()> {
    if let Ok(ids) = intake::flow::find(conn, flow) {
        let running_now = intake::db::WriterLock::is_held(db_path);
        if let Some(note) = intake::flow::unfinished(conn, &ids, running_now)? {
            say(&format!("warning: {note}"));
        }
    }
    Ok(())
}

pub fn init_logging(cli: &Cli) {
    let default = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("intake={default}")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only on a terminal: a log file or a pipe gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .init();
}

pub fn run(cli: Cli) -> anyhow::Result<i32> {
    keep_temporary_files_beside(&cli.db);
    match cli.command {
        Command::Import(args) => import::run(args, &cli.db, cli.quiet, cli.verbose > 0),
        Command::Assets(args) => assets::run(args, &cli.db, cli.quiet),
        Command::Consolidate(args) => consolidate::run(args, cli.quiet),
        Command::Mappings(args) => mappings::run(args, &cli.db),
        Command::Sniff(args) => sniff::run(args),
        Command::Sync(args) => sync::run(args, &cli.db, cli.quiet),
        Command::Report(args) => report::run(args, &cli.db, cli.quiet),
        Command::Schema(command) => schema::run(command, &cli.db),
    }
}

/// SQLite's temporary files (sorts, index builds) go beside the database
/// rather than to TMPDIR, which may be a small tmpfs: a full TMPDIR was
/// reported as "database or disk is full" while the database's disk had
/// room. SQLITE_TMPDIR set by the user still wins; SQLite passes over a
/// directory it cannot write to.
fn keep_temporary_files_beside(db: &std::path::Path) {
    if std::env::var_os("SQLITE_TMPDIR").is_some() {
        return;
    }
    let dir = db
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    // Called before any thread is started.
    std::env::set_var("SQLITE_TMPDIR", dir);
}
