//! `intake report`: the report of a flow as HTML, Markdown or PDF.

use std::path::{Path, PathBuf};

use clap::Args;

use intake::report::{self, Format, ReportError};

/// Write the report a consultant hands to the client
///
/// In order: a summary (what was received, what it describes, end-of-life
/// exposure, machines without owner or environment, data quality per
/// source), the inventory by type, environment, operating system and
/// location, the applications with their machines, tech debt by product,
/// dependencies, data quality per source file, and an appendix with the
/// sources, the column mappings, every dependency and the run's ids.
///
/// HTML (the default) is one self-contained page: no scripts, nothing
/// fetched; e-mail it, open it offline, print it. Markdown is for pasting
/// into your own documents. PDF is printed by a headless Chromium, Chrome or
/// Edge found on the PATH (or named by INTAKE_CHROMIUM).
///
/// Examples:
///   intake report --output report.html
///   intake report -o acme-discovery.pdf                # the format from the extension
///   intake report --format md -o - >> engagement-notes.md
///   intake report --flow 01935a2c --output acme-discovery.html
///
/// `-o -` writes to standard output; a device or named pipe is written
/// through; a symbolic link keeps pointing where it did and that file gets
/// the report. A new file gets the mode the umask gives, a replaced one
/// keeps its own.
///
/// Exit codes: 0 written, 1 the file could not be written or the browser
/// failed to print, 2 an --output that is the database, 3 no database, no
/// flow (or no such flow), no browser to print a PDF.
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct ReportArgs {
    /// A master or discovery flow id (or a unique prefix) [default: the latest]
    #[arg(long, value_name = "ID")]
    pub flow: Option<String>,

    /// The file to write (`-`: standard output)
    #[arg(long, short, value_name = "FILE")]
    pub output: PathBuf,

    /// html, md or pdf [default: from the output's extension, else html]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<Format>,

    /// The page size of a PDF
    #[arg(long, value_enum, default_value = "a4")]
    pub paper: Paper,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Paper {
    A4,
    Letter,
}

pub fn run(args: ReportArgs, db_path: &Path, quiet: bool) -> anyhow::Result<i32> {
    if let Err(error) = intake::export::check_output(&args.output, db_path) {
        super::say(&format!("error: {error}"));
        return Ok(super::exit::USAGE);
    }
    let Some(conn) = super::open_existing(db_path)? else {
        return Ok(super::exit::NOT_FOUND);
    };
    let format = args
        .format
        .unwrap_or_else(|| Format::from_path(&args.output));
    let (document, facts) = match report::build(
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
    let bytes = match format {
        Format::Html => report::html::render(&document, None).into_bytes(),
        Format::Md => report::markdown::render(&document).into_bytes(),
        Format::Pdf => {
            let size = match args.paper {
                Paper::A4 => "A4",
                Paper::Letter => "Letter",
            };
            match report::pdf::print(&report::html::render(&document, Some(size))) {
                Ok(pdf) => pdf,
                Err(error @ report::pdf::PdfError::NoBrowser) => {
                    super::say(&format!("error: {error}"));
                    return Ok(super::exit::NOT_FOUND);
                }
                Err(error) => {
                    super::say(&format!("error: {error}"));
                    return Ok(super::exit::FAILED);
                }
            }
        }
    };
    // `-` is standard output, a device or FIFO is written through, a file is
    // written beside itself and renamed, so a reader never sees half a report.
    let destination = intake::export::Destination::of(&args.output);
    destination.write_stream(|out| {
        out.write_all(&bytes)
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
            bytes.len().div_ceil(1024),
            facts.master_flow_id,
            facts.files,
            facts.assets
        );
    }
    Ok(super::exit::SUCCESS)
}
