//! `intake assets`: export the inventory.

use std::path::{Path, PathBuf};

use clap::Args;

use intake::export::{self, ExportError, Format};

/// Export the assets: every field and custom attribute
///
/// On a terminal a table of key columns; into a pipe or a file, CSV of
/// every column (the asset's name first in every format).
///
/// Without --flow, every asset of the latest flow's engagement (the whole
/// inventory as it stands); with --flow, the assets that flow created or last
/// updated. The format comes from --format, else from the --output file's
/// extension, else a table on the terminal (key columns only; the file
/// formats carry every column). Custom attributes become `custom.<header>`
/// columns; JSON keeps them nested. CSV and XLSX cells that a spreadsheet would
/// run as a formula (= + - @ tab CR first) get a leading apostrophe.
///
/// Examples:
///   intake assets
///   intake assets --type end_user_device --limit 20
///   intake assets > assets.csv
///   intake assets --output assets.xlsx
///   intake assets --format csv > assets.csv
///   intake assets --flow 01935a2c --format parquet --output assets.parquet
///   intake assets --format json | jq '.[] | select(.support_status == "end_of_life") | .name'
///
/// Excel cells hold at most 32,767 characters: a longer value is cut there
/// with a marker saying so (CSV, JSON and Parquet keep it whole). An --output
/// that is the database itself is refused. `-o -` writes any format to
/// standard output; a device or named pipe is written through; a symbolic
/// link keeps pointing where it did and that file gets the export. A new
/// file gets the mode the umask gives, a replaced one keeps its own. A closed pipe (`| head`) ends the
/// export quietly with 0.
///
/// Exit codes: 0 written, 1 the file could not be written, 2 usage (a binary
/// format without --output, an --output that is the database), 3 no database,
/// no flow (or no such flow).
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct AssetsArgs {
    /// A master or discovery flow id (or a unique prefix) [default: the latest flow's engagement]
    #[arg(long, value_name = "ID")]
    pub flow: Option<String>,

    /// Output format [default: from --output's extension, else a table on a terminal, CSV into a pipe or file]
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// Only assets of this kind: server, database, network, storage, end_user_device, application
    #[arg(long = "type", value_name = "KIND")]
    pub kind: Option<String>,

    /// At most N assets (in export order)
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,

    /// Write to FILE instead of standard output (required for xlsx and parquet; `-`: standard output)
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run(args: AssetsArgs, db_path: &Path, quiet: bool) -> anyhow::Result<i32> {
    // A person at a terminal gets a table; a pipe or a redirect gets CSV.
    let to_terminal = args.output.is_none() && std::io::IsTerminal::is_terminal(&std::io::stdout());
    let format = args
        .format
        .or_else(|| args.output.as_deref().and_then(Format::from_path))
        .unwrap_or(if to_terminal {
            Format::Table
        } else {
            Format::Csv
        });
    let Some(conn) = super::open_existing(db_path)? else {
        return Ok(super::exit::NOT_FOUND);
    };
    let filter = export::AssetFilter {
        kind: args.kind.clone(),
        limit: args.limit,
    };
    let table = match export::load(&conn, args.flow.as_deref(), &filter) {
        Ok(table) => table,
        Err(error @ (ExportError::NoFlow | ExportError::UnknownFlow(_))) => {
            super::say(&format!("error: {error}"));
            return Ok(super::exit::NOT_FOUND);
        }
        Err(error @ ExportError::UnknownKind(_)) => {
            super::say(&format!("error: {error}"));
            return Ok(super::exit::USAGE);
        }
        Err(error) => return Err(error.into()),
    };
    if !quiet {
        super::warn_if_unfinished(&conn, db_path, args.flow.as_deref())?;
    }
    if let Some(output) = &args.output {
        if let Err(error) = export::check_output(output, db_path) {
            super::say(&format!("error: {error}"));
            return Ok(super::exit::USAGE);
        }
    }
    match export::write(&conn, &table, format, args.output.as_deref()) {
        Ok(()) => {}
        Err(error @ ExportError::OutputRequired(_)) => {
            super::say(&format!("error: {error}"));
            return Ok(super::exit::USAGE);
        }
        Err(error) => return Err(error.into()),
    }
    if !quiet {
        let columns = table.columns.len();
        match &args.output {
            Some(path) => super::say(&format!(
                "wrote {} assets ({columns} columns) to {}",
                table.rows,
                export::Destination::of(path).label()
            )),
            None if format == Format::Table => super::say(&format!(
                "{} assets; --output FILE.csv|.xlsx|.json|.parquet writes all {columns} columns",
                table.rows
            )),
            None => {}
        }
    }
    Ok(super::exit::SUCCESS)
}
