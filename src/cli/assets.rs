//! `intake assets`: export the inventory.

use std::path::{Path, PathBuf};

use clap::Args;

use intake::export::{self, ExportError, Format};

/// Export the assets: every field and custom attribute
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
///   intake assets --output assets.xlsx
///   intake assets --format csv > assets.csv
///   intake assets --flow 01935a2c --format parquet --output assets.parquet
///   intake assets --format json | jq '.[] | select(.support_status == "end_of_life") | .name'
///
/// Exit codes: 0 written, 1 the file could not be written, 2 usage (a binary
/// format without --output), 3 no flow (or no such flow).
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct AssetsArgs {
    /// A master or discovery flow id (or a unique prefix) [default: the latest flow's engagement]
    #[arg(long, value_name = "ID")]
    pub flow: Option<String>,

    /// Output format [default: from --output's extension, else table]
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// Write to FILE instead of standard output (required for xlsx and parquet)
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run(args: AssetsArgs, db_path: &Path, quiet: bool) -> anyhow::Result<i32> {
    let format = args
        .format
        .or_else(|| args.output.as_deref().and_then(Format::from_path))
        .unwrap_or(Format::Table);
    let Some(conn) = super::open_existing(db_path)? else {
        return Ok(3);
    };
    let table = match export::load(&conn, args.flow.as_deref()) {
        Ok(table) => table,
        Err(error @ (ExportError::NoFlow | ExportError::UnknownFlow(_))) => {
            eprintln!("error: {error}");
            return Ok(3);
        }
        Err(error) => return Err(error.into()),
    };
    match export::write(&table, format, args.output.as_deref()) {
        Ok(()) => {}
        Err(error @ ExportError::OutputRequired(_)) => {
            eprintln!("error: {error}");
            return Ok(2);
        }
        Err(error) => return Err(error.into()),
    }
    if !quiet {
        let columns = table.columns.len();
        match &args.output {
            Some(path) => eprintln!(
                "wrote {} assets ({columns} columns) to {}",
                table.rows.len(),
                path.display()
            ),
            None if format == Format::Table => eprintln!(
                "{} assets; --output FILE.csv|.xlsx|.json|.parquet writes all {columns} columns",
                table.rows.len()
            ),
            None => {}
        }
    }
    Ok(0)
}
