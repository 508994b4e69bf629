//! `intake report`: the self-contained HTML report of a flow.

use std::path::{Path, PathBuf};

use clap::Args;

use intake::html_report::{self, ReportError};

/// Write one self-contained HTML report of a discovery flow
///
/// The report holds the flow and its files, the mapping table with
/// confidence, validation problems, charts of the assets by type, environment,
/// operating system and support status, the worst tech debt and the
/// dependencies. It has no scripts and fetches nothing: e-mail it, open it
/// offline in any browser, print it.
///
/// Examples:
///   intake report --output report.html
///   intake report --flow 01935a2c --output acme-discovery.html
///   intake report -o - | gzip > report.html.gz
///
/// `-o -` writes to standard output; a device or named pipe is written
/// through; a symbolic link keeps pointing where it did and that file gets
/// the report. A new file gets the mode the umask gives, a replaced one
/// keeps its own.
///
/// Exit codes: 0 written, 1 the file could not be written, 2 an --output that
/// is the database, 3 no database, no flow (or no such flow).
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct ReportArgs {
    /// A master or discovery flow id (or a unique prefix) [default: the latest]
    #[arg(long, value_name = "ID")]
    pub flow: Option<String>,

    /// The HTML file to write (`-`: standard output)
    #[arg(long, short, value_name = "FILE")]
    pub output: PathBuf,
}

pub fn run(args: ReportArgs, db_path: &Path, quiet: bool) -> anyhow::Result<i32> {
    let Some(conn) = super::open_existing(db_path)? else {
        return Ok(super::exit::NOT_FOUND);
    };
    let (html, facts) = match html_report::build(
        &conn,
        args.flow.as_deref(),
        intake::db::WriterLock::is_held(db_path),
    ) {
        Ok(built) => built,
        Err(error @ (ReportError::NoFlow | ReportError::UnknownFlow(_))) => {
            super::say(&format!("error: {error}"));
            return Ok(super::exit::NOT_FOUND);
        }
        Err(error) => return Err(error.into()),
    };
    if let Err(error) = intake::export::check_output(&args.output, db_path) {
        super::say(&format!("error: {error}"));
        return Ok(super::exit::USAGE);
    }
    // `-` is standard output, a device or FIFO is written through, a file is
    // written beside itself and renamed, so a reader never sees half a report.
    let destination = intake::export::Destination::of(&args.output);
    destination.write_stream(|out| {
        out.write_all(html.as_bytes())
            .map_err(|source| intake::export::ExportError::Io {
                path: args.output.clone(),
                source,
            })
    })?;
    if let (Some(note), false) = (&facts.unfinished, quiet) {
        super::say(&format!("warning: {note}"));
    }
    if !quiet {
        eprintln!(
            "wrote {} ({} KB): flow {}, {} file(s), {} assets",
            destination.label(),
            html.len().div_ceil(1024),
            facts.master_flow_id,
            facts.files,
            facts.assets
        );
    }
    Ok(super::exit::SUCCESS)
}
