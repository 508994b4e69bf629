//! Criterion benchmark of staging a generated CMDB export (read, JSON encoding,
//! SQLite writer) through the library's import entry point. The comparison with
//! `sqlite3 .import` on a million rows is `benches/compare_sqlite_import.sh`.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use intake::import::{self, ImportRequest};
use intake::read::ReadOptions;

const ROWS: u64 = 50_000;

fn stage(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("cmdb.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&export).unwrap());
    intake::synth::write_cmdb_csv(&mut out, ROWS, 1.0, 42).unwrap();
    drop(out);
    let bytes = std::fs::metadata(&export).unwrap().len();

    let mut group = c.benchmark_group("stage_csv");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes));
    let mut run = 0;
    group.bench_function("cmdb_50k_rows", |b| {
        b.iter(|| {
            run += 1;
            let db: PathBuf = dir.path().join(format!("bench-{run}.db"));
            let outcome = import::run(&ImportRequest {
                paths: vec![export.clone()],
                db_path: db.clone(),
                client: None,
                engagement: None,
                user: Some("bench".into()),
                source_system: None,
                read: ReadOptions::default(),
                force: true,
                progress: false,
                threads: 0,
                phases: Default::default(),
                stop_after: intake::flow::Phase::DataImport,
            })
            .unwrap();
            assert_eq!(outcome.totals.completed, 1);
            for suffix in ["", "-wal", "-shm", ".lock"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, stage);
criterion_main!(benches);
