//! gen-cmdb: writes a large realistic ServiceNow CMDB server export, for benchmarks.
//!
//! Examples:
//!   gen-cmdb --rows 1000000 --out bench-data/cmdb_1m.csv
//!   gen-cmdb --rows 100000 --format xlsx --columns 40 --out bench-data/cmdb_100k.xlsx

use std::io::BufWriter;
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
    after_help = "Examples:\n  gen-cmdb --rows 1000000 --out bench-data/cmdb_1m.csv\n  gen-cmdb --rows 100000 --format xlsx --columns 40 --out bench-data/cmdb_100k.xlsx"
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
    /// Output file; - for stdout (CSV only)
    #[arg(long, default_value = "-")]
    out: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let to_stdout = args.out.as_os_str() == "-";
    if !to_stdout {
        if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
    }
    match args.format {
        Format::Xlsx if to_stdout => anyhow::bail!("--format xlsx needs --out FILE"),
        Format::Xlsx => intake::synth::write_cmdb_xlsx(
            &args.out,
            args.rows,
            args.columns,
            args.messy_percent,
            args.seed,
        )?,
        Format::Csv if to_stdout => {
            let stdout = std::io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            intake::synth::write_cmdb_csv(&mut out, args.rows, args.messy_percent, args.seed)?;
        }
        Format::Csv => {
            let mut out = BufWriter::new(std::fs::File::create(&args.out)?);
            intake::synth::write_cmdb_csv(&mut out, args.rows, args.messy_percent, args.seed)?;
        }
    }
    Ok(())
}
