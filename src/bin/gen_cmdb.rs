//! gen-cmdb: writes a large realistic ServiceNow CMDB server export, for benchmarks.
//!
//! Example:
//!   gen-cmdb --rows 1000000 --out bench-data/cmdb_1m.csv

use std::io::BufWriter;
use std::path::PathBuf;

use clap::Parser;

/// Write a synthetic ServiceNow CMDB CSV export (about 40 columns)
#[derive(Parser)]
#[command(
    version,
    after_help = "Example:\n  gen-cmdb --rows 1000000 --out bench-data/cmdb_1m.csv"
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
    /// Output file; - for stdout
    #[arg(long, default_value = "-")]
    out: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.out.as_os_str() == "-" {
        let stdout = std::io::stdout();
        let mut out = BufWriter::new(stdout.lock());
        intake::synth::write_cmdb_csv(&mut out, args.rows, args.messy_percent, args.seed)?;
    } else {
        if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut out = BufWriter::new(std::fs::File::create(&args.out)?);
        intake::synth::write_cmdb_csv(&mut out, args.rows, args.messy_percent, args.seed)?;
    }
    Ok(())
}
