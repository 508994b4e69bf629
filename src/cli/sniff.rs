//! `intake sniff`: show how files would be read, without importing them.

use std::path::PathBuf;

use clap::Args;

use intake::console;
use intake::read::sniff::sniff;
use intake::read::{self, delimiter::parse_delimiter, encoding::encoding_for_label, ReadOptions};

/// Show how files would be read: sheets, header rows, encoding, delimiter, layout
///
/// Nothing is written. For a workbook every sheet is listed with its
/// visibility, declared size, detected header row and whether `import` would
/// read it; for CSV and text the detected encoding, delimiter and header line.
///
/// Examples:
///   intake sniff RVTools_export_all.xlsx
///   intake sniff exports/ --json
///   intake sniff legacy.csv --encoding windows-1252
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct SniffArgs {
    /// Files or directories to look at
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Sheets `import --sheet` would be given (to see which would be read)
    #[arg(long, value_name = "NAME")]
    pub sheet: Vec<String>,

    /// Encoding to assume instead of detecting it
    #[arg(long, value_name = "ENC")]
    pub encoding: Option<String>,

    /// Delimiter to assume instead of sniffing it
    #[arg(long, value_name = "CHAR")]
    pub delimiter: Option<String>,

    /// Print one JSON array on stdout
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: SniffArgs) -> anyhow::Result<i32> {
    let options = ReadOptions {
        encoding: match &args.encoding {
            Some(label) => Some(
                encoding_for_label(label)
                    .ok_or_else(|| anyhow::anyhow!("unknown encoding '{label}'"))?,
            ),
            None => None,
        },
        delimiter: match &args.delimiter {
            Some(d) => Some(parse_delimiter(d).map_err(anyhow::Error::msg)?),
            None => None,
        },
        sheets: args.sheet,
        ..ReadOptions::default()
    };
    let spool_dir = std::env::temp_dir();
    let inputs = read::expand_inputs(&args.paths, &spool_dir, ".intake-sniff-stdin-")?;
    let reports: Vec<_> = inputs.files.iter().map(|f| sniff(f, &options)).collect();
    if args.json {
        super::print_json(&reports)?;
    } else {
        super::print_text(&console::sniff_report(&reports))?;
        for ignored in &inputs.ignored {
            super::print_text(&format!("ignored {}: {}\n", ignored.path, ignored.reason))?;
        }
    }
    Ok(if reports.iter().any(|r| r.error.is_some()) {
        super::exit::NOT_FOUND
    } else {
        super::exit::SUCCESS
    })
}
