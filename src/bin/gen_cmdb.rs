//! gen-cmdb: writes a large realistic ServiceNow CMDB server export, for benchmarks.
//!
//! Examples:
//!   gen-cmdb --rows 1000000 --out bench-data/cmdb_1m.csv
//!   gen-cmdb --rows 100000 --format xlsx --columns 40 --out bench-data/cmdb_100k.xlsx
//!   gen-cmdb --rows 1000000 --out cmdb.csv --relationships cmdb_rel_ci.csv
//!   gen-cmdb --rows 1000000 --changed-percent 1 --out cmdb_next_week.csv
//!   gen-cmdb --rows 200000 --format xlsx --sheets 4 --out bench-data/cmdb_4_sheets.xlsx

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use clap::{Parser, ValueEnum};

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Csv,
    Xlsx,
}

/// Write a synthetic ServiceNow CMDB export (42 columns) as CSV or .xlsx
#[derive(Parser)]
#[command(
    version,
    after_help = "Examples:\n  gen-cmdb --rows 1000000 --out bench-data/cmdb_1m.csv\n  gen-cmdb --rows 100000 --format xlsx --columns 40 --out bench-data/cmdb_100k.xlsx\n  gen-cmdb --rows 1000000 --out cmdb.csv --relationships cmdb_rel_ci.csv\n  gen-cmdb --rows 1000000 --changed-percent 1 --out cmdb_next_week.csv\n  gen-cmdb --rows 200000 --format xlsx --sheets 4 --out bench-data/cmdb_4_sheets.xlsx"
)]
struct Args {
    /// Data rows to write
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Percent of rows with a real-world quirk
    #[arg(long, default_value_t = 1.0)]
    messy_percent: f64,
    /// Random seed (same seed, same file)
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    format: Format,
    /// Columns of an .xlsx (the first N of the export)
    #[arg(long, default_value_t = 40)]
    columns: usize,
    /// Sheets of an .xlsx, the rows dealt out over them ("Page 1", "Page 2", ...)
    #[arg(long, default_value_t = 1)]
    sheets: usize,
    /// Output file; - for stdout (CSV only)
    #[arg(long, default_value = "-")]
    out: PathBuf,
    /// Percent of machines changed as the next export of the same CMDB would
    /// change them (more memory, another status, a later discovery date; CSV only)
    #[arg(long, default_value_t = 0.0)]
    changed_percent: f64,
    /// Also write the export's cmdb_rel_ci relationships (parent, type, child) here
    #[arg(long, value_name = "FILE")]
    relationships: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let to_stdout = args.out.as_os_str() == "-";
    if !to_stdout {
        if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
    }
    if let Some(path) = &args.relationships {
        let mut out = BufWriter::new(std::fs::File::create(path)?);
        intake::synth::write_relationships_csv(&mut out, args.rows, args.messy_percent, args.seed)?;
        out.flush()?;
    }
    if args.changed_percent > 0.0 && matches!(args.format, Format::Xlsx) {
        anyhow::bail!("--changed-percent writes CSV only");
    }
    let records = || {
        intake::synth::CmdbRecords::new(args.rows, args.messy_percent, args.seed)
            .with_changed(args.changed_percent, args.seed.wrapping_add(1))
    };
    match args.format {
        Format::Xlsx if to_stdout => anyhow::bail!("--format xlsx needs --out FILE"),
        Format::Xlsx => intake::synth::write_cmdb_xlsx(
            &args.out,
            args.rows,
            args.columns,
            args.sheets,
            args.messy_percent,
            args.seed,
        )?,
        Format::Csv if to_stdout => {
            let stdout = std::io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            intake::synth::write_records_csv(&mut out, records())?;
        }
        Format::Csv => {
            let mut out = BufWriter::new(std::fs::File::create(&args.out)?);
            intake::synth::write_records_csv(&mut out, records())?;
            out.flush()?;
        }
    }
    Ok(())
}
