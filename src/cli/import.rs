//! `intake import`: the discovery flow's data_import phase for files, directories
//! or standard input.

use std::path::{Path, PathBuf};

use clap::Args;

use intake::console;
use intake::flow::Phase;
use intake::import::{self, ImportRequest};
use intake::map::{MapOptions, Rules};
use intake::pipeline::PhaseOptions;
use intake::read::{delimiter::parse_delimiter, encoding::encoding_for_label, ReadOptions};

/// Import inventory exports into the database as one discovery flow
///
/// Every row of every file is kept in raw_import_records as JSON keyed by the
/// header. CSV and text: encoding (UTF-8 with or without BOM, UTF-16,
/// Windows-1252, ...) and delimiter (, ; tab |) are detected and reported.
/// Workbooks (.xlsx .xlsm .xlsb .xls .ods): each visible sheet with a table is
/// its own import; hidden and empty sheets are listed and skipped; RVTools,
/// ServiceNow and the cloud import templates are recognised. A file or sheet
/// whose content was already imported into the engagement is skipped unless
/// --force is given.
///
/// Examples:
///   intake import servers.csv
///   intake import exports/ --client "Acme Corp" --engagement "DC exit 2026"
///   intake import inventory.csv --encoding windows-1252 --delimiter ';'
///   intake import RVTools_export_all.xlsx
///   intake import handmade.xlsx --rules team-rules.toml --auto-approve 0.9
///   intake import cmdb.xlsx --sheet "Servers" --sheet "Hidden data"
///   cat export.csv | intake import - --json
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct ImportArgs {
    /// Files or directories to import; - reads standard input
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Client account name (created on first use) [default: local]
    #[arg(long, value_name = "NAME")]
    pub client: Option<String>,

    /// Engagement name within the client (created on first use) [default: default]
    #[arg(long, value_name = "NAME")]
    pub engagement: Option<String>,

    /// User recorded as importer [default: $USER]
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Source system recorded on each import (servicenow, rvtools, aws, ...)
    #[arg(long, value_name = "NAME")]
    pub source_system: Option<String>,

    /// Read every file in this encoding instead of detecting it (utf-8, utf-16le, windows-1252, ...)
    #[arg(long, value_name = "ENC")]
    pub encoding: Option<String>,

    /// Field delimiter instead of sniffing: one character, or comma, semicolon, tab, pipe
    #[arg(long, value_name = "CHAR")]
    pub delimiter: Option<String>,

    /// Mapping rules (TOML): fixed column → field mappings, ignored columns, transforms, threshold
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,

    /// Confidence at or above which a mapping is approved without review [default: 0.85]
    #[arg(long, value_name = "SCORE", value_parser = parse_score)]
    pub auto_approve: Option<f64>,

    /// Run the discovery phases only up to this one: data_import (stage only),
    /// attribute_mapping, data_cleansing, inventory, dependencies or tech_debt;
    /// a later run finishes the rest
    #[arg(long, value_name = "PHASE", default_value = "tech_debt", value_parser = parse_phase)]
    pub stop_after: Phase,

    /// Judge end of support on this day instead of today (YYYY-MM-DD), for reports
    /// that must be reproducible or look ahead ("what is out of support by 2027-06-30")
    #[arg(long, value_name = "DATE", value_parser = intake::tech_debt::parse_as_of)]
    pub support_as_of: Option<String>,

    /// Read only this sheet of each workbook (repeatable; case-insensitive; may name a hidden sheet)
    #[arg(long, value_name = "NAME")]
    pub sheet: Vec<String>,

    /// Import files again even when the same content was already imported
    #[arg(long)]
    pub force: bool,

    /// Exit with code 4 when rows had warnings (ragged rows, renamed headers, ...)
    #[arg(long)]
    pub strict: bool,

    /// Print the summary as one JSON object on stdout
    #[arg(long)]
    pub json: bool,

    /// Largest record accepted, in bytes (guards against unclosed quotes)
    #[arg(long, value_name = "BYTES", default_value_t = intake::read::DEFAULT_MAX_RECORD_BYTES)]
    pub max_record_bytes: usize,

    /// Reader threads: files and sheets side by side, a large CSV parsed on
    /// several [default: one per core, a CSV parsed on all but one]
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub threads: usize,
}

pub fn run(args: ImportArgs, db: &Path, quiet: bool, verbose: bool) -> anyhow::Result<i32> {
    // Options are checked before anything is created: a usage error leaves
    // no database behind.
    let encoding = match &args.encoding {
        Some(label) => match encoding_for_label(label) {
            Some(encoding) => Some(encoding),
            None => {
                super::say(&format!(
                    "error: unknown encoding '{label}': use a label such as utf-8, utf-16le, utf-16be, windows-1252, iso-8859-15"
                ));
                return Ok(super::exit::USAGE);
            }
        },
        None => None,
    };
    let delimiter = match &args.delimiter {
        Some(d) => match parse_delimiter(d) {
            Ok(d) => Some(d),
            Err(error) => {
                super::say(&format!("error: {error}"));
                return Ok(super::exit::USAGE);
            }
        },
        None => None,
    };
    let rules = match &args.rules {
        Some(path) => match Rules::load(path) {
            Ok(rules) => rules,
            Err(error) => {
                super::say(&format!("error: {error}"));
                return Ok(super::exit::USAGE);
            }
        },
        None => Rules::default(),
    };
    let request = ImportRequest {
        paths: args.paths,
        db_path: db.to_path_buf(),
        client: args.client,
        engagement: args.engagement,
        user: args.user,
        source_system: args.source_system,
        read: ReadOptions {
            encoding,
            delimiter,
            max_record_bytes: args.max_record_bytes.max(1024),
            sheets: args.sheet,
        },
        force: args.force,
        progress: !quiet && !args.json,
        threads: args.threads,
        phases: PhaseOptions {
            mapping: MapOptions {
                rules,
                auto_approve: args.auto_approve,
            },
            support_as_of: args.support_as_of,
            progress: !quiet && !args.json,
        },
        stop_after: args.stop_after,
    };
    let outcome = match import::run(&request) {
        Ok(outcome) => outcome,
        Err(import::ImportError::Input(error @ intake::read::InputError::NotFound { .. })) => {
            super::say(&format!("error: {error}"));
            return Ok(super::exit::NOT_FOUND);
        }
        Err(error) => return Err(error.into()),
    };
    // Errors go to stderr whatever stdout carries (the summary, JSON or
    // nothing under --quiet).
    for failed in outcome
        .files
        .iter()
        .filter(|f| f.status == intake::import::FileStatus::Failed)
    {
        let label = intake::read::table_label(&failed.path, failed.sheet.as_deref());
        let error = failed.error.as_deref().unwrap_or("could not be read");
        super::say(&format!(
            "error: {}",
            if error.contains(&failed.path) {
                error.to_string()
            } else {
                format!("{label}: {error}")
            }
        ));
    }
    if args.json {
        super::print_json(&outcome)?;
    } else if !quiet {
        super::print_text(&console::import_summary(&outcome, verbose))?;
    }
    Ok(super::exit::of_import(&outcome, args.strict))
}

fn parse_score(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("'{s}' is not a score between 0 and 1")),
    }
}

fn parse_phase(s: &str) -> Result<Phase, String> {
    match Phase::from_name(s) {
        Some(p) => Ok(p),
        None => Err(format!(
            "'{s}' is not a phase intake runs: data_import, attribute_mapping, data_cleansing, inventory, dependencies, tech_debt"
        )),
    }
}
