//! `intake assets` through the real binary: CSV, XLSX (read back with
//! calamine), Parquet (read back with polars) and JSON equal the assets
//! table column by column, custom attributes included, and cells a
//! spreadsheet would execute are neutralised while numbers stay numbers.

use crate::common::{sample, Work};
use calamine::{open_workbook, Data, Reader, Xlsx};
use rusqlite::types::Value as Sql;
use serde_json::Value;

/// A hand-made sheet whose values try to become formulas.
const INJECTION: &str = "Server Name,Description,Memory (GB),Notes,Balance\n\
formula-01,=HYPERLINK(A1),16,+SUM(A1:A9),-12.5\n\
formula-02,@SUM(1+1),8,-2+3,+7\n";

/// The assets table as (column → SQLite value) rows, ordered like the export.
fn stored(work: &Work) -> (Vec<String>, Vec<Vec<Sql>>) {
    let conn = work.conn();
    let mut stmt = conn
        .prepare("SELECT * FROM assets ORDER BY asset_type, name, id")
        .unwrap();
    let columns: Vec<String> = stmt.column_names().iter().map(|c| c.to_string()).collect();
    let rows = stmt
        .query_map([], |r| (0..columns.len()).map(|i| r.get(i)).collect())
        .unwrap()
        .collect::<Result<Vec<Vec<Sql>>, _>>()
        .unwrap();
    (columns, rows)
}

/// Every exported column and the stored value it must equal, per asset.
fn expected(work: &Work) -> Vec<Vec<(String, Sql)>> {
    let (columns, rows) = stored(work);
    let custom_at = columns
        .iter()
        .position(|c| c == "custom_attributes")
        .unwrap();
    let mut keys: Vec<String> = Vec::new();
    let parsed: Vec<serde_json::Map<String, Value>> = rows
        .iter()
        .map(|row| match &row[custom_at] {
            Sql::Text(t) => serde_json::from_str(t).unwrap(),
            _ => panic!("custom_attributes is text"),
        })
        .collect();
    for attributes in &parsed {
        for k in attributes.keys() {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
    }
    rows.iter()
        .zip(&parsed)
        .map(|(row, attributes)| {
            let mut cells: Vec<(String, Sql)> = Vec::new();
            for (c, v) in columns.iter().zip(row) {
                if c == "custom_attributes" {
                    continue;
                }
                cells.push((c.clone(), v.clone()));
                // `kind` follows asset_type: end_user_device where marked.
                if c == "asset_type" {
                    let kind = match attributes.get("_device_class") {
                        Some(Value::String(k)) => Sql::Text(k.clone()),
                        _ => v.clone(),
                    };
                    cells.push(("kind".into(), kind));
                }
            }
            // The asset's name first.
            let at = cells.iter().position(|(c, _)| c == "name").unwrap();
            let name = cells.remove(at);
            cells.insert(0, name);
            for k in &keys {
                let v = match attributes.get(k) {
                    None | Some(Value::Null) => Sql::Null,
                    Some(Value::String(s)) => Sql::Text(s.clone()),
                    Some(other) => Sql::Text(other.to_string()),
                };
                cells.push((format!("custom.{k}"), v));
            }
            cells
        })
        .collect()
}

fn guarded(text: &str) -> String {
    let risky = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && text.trim().parse::<f64>().is_err() {
        format!("'{text}")
    } else {
        text.to_string()
    }
}

fn imported() -> Work {
    let work = Work::new();
    let injection = work.write("formula_cells_handmade.csv", INJECTION);
    let sn = sample("servicenow_cmdb_ci_server.csv")
        .display()
        .to_string();
    let (code, json) = work.import_json(&[&sn, injection.to_str().unwrap()]);
    assert_eq!(code, 0, "{json}");
    work
}

#[test]
fn csv_equals_the_assets_table_with_formulas_neutralised() {
    let work = imported();
    work.run_ok(&["assets", "--output", "assets.csv"]);
    let mut reader = csv::Reader::from_path(work.path("assets.csv")).unwrap();
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    let expected = expected(&work);
    assert_eq!(
        header,
        expected[0]
            .iter()
            .map(|(c, _)| c.clone())
            .collect::<Vec<_>>()
    );
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), expected.len());
    for (record, row) in records.iter().zip(&expected) {
        for (cell, (column, value)) in record.iter().zip(row) {
            let want = match value {
                Sql::Null => String::new(),
                Sql::Integer(n) => n.to_string(),
                Sql::Real(x) => x.to_string(),
                Sql::Text(t) => guarded(t),
                Sql::Blob(_) => unreachable!(),
            };
            assert_eq!(cell, want, "column {column}");
        }
    }
    let text = std::fs::read_to_string(work.path("assets.csv")).unwrap();
    assert!(text.contains("'=HYPERLINK"), "the formula is neutralised");
    assert!(text.contains("'@SUM(1+1)"));
    assert!(text.contains("'+SUM(A1:A9)"));
    assert!(text.contains("'-2+3"));
    assert!(
        text.contains(",-12.5") && !text.contains("'-12.5"),
        "numbers stay numbers"
    );
    assert!(!text.contains(",=HYPERLINK"));
}

#[test]
fn xlsx_equals_the_assets_table_and_keeps_numbers_numeric() {
    let work = imported();
    work.run_ok(&["assets", "--output", "assets.xlsx"]);
    let mut book: Xlsx<_> = open_workbook(work.path("assets.xlsx")).unwrap();
    let range = book.worksheet_range("assets").unwrap();
    let expected = expected(&work);
    let rows: Vec<&[Data]> = range.rows().collect();
    assert_eq!(rows.len(), expected.len() + 1);
    for (col, (column, _)) in expected[0].iter().enumerate() {
        assert_eq!(rows[0][col], Data::String(column.clone()));
    }
    for (cells, row) in rows[1..].iter().zip(&expected) {
        for (cell, (column, value)) in cells.iter().zip(row) {
            match value {
                Sql::Null => assert_eq!(*cell, Data::Empty, "column {column}"),
                Sql::Integer(n) => assert_eq!(*cell, Data::Float(*n as f64), "column {column}"),
                Sql::Real(x) => assert_eq!(*cell, Data::Float(*x), "column {column}"),
                Sql::Text(t) => assert_eq!(*cell, Data::String(guarded(t)), "column {column}"),
                Sql::Blob(_) => unreachable!(),
            }
        }
    }
    let memory = expected[0]
        .iter()
        .position(|(c, _)| c == "memory_gb")
        .unwrap();
    assert!(rows[1..]
        .iter()
        .any(|r| matches!(r[memory], Data::Float(_))));
    let description = expected[0]
        .iter()
        .position(|(c, _)| c == "description")
        .unwrap();
    assert!(rows[1..]
        .iter()
        .any(|r| r[description] == Data::String("'@SUM(1+1)".into())));
}

#[test]
fn parquet_and_json_equal_the_assets_table() {
    use polars::prelude::*;
    let work = imported();
    work.run_ok(&[
        "assets",
        "--format",
        "parquet",
        "--output",
        "assets.parquet",
    ]);
    let file = std::fs::File::open(work.path("assets.parquet")).unwrap();
    let frame = ParquetReader::new(file).finish().unwrap();
    let expected = expected(&work);
    assert_eq!(frame.height(), expected.len());
    assert_eq!(frame.width(), expected[0].len());
    for (col, (column, _)) in expected[0].iter().enumerate() {
        let series = frame
            .column(column)
            .unwrap_or_else(|_| panic!("column {column}"));
        for (i, row) in expected.iter().enumerate() {
            let got = series.get(i).unwrap();
            match &row[col].1 {
                Sql::Null => assert!(got.is_null(), "{column} row {i}: {got:?}"),
                Sql::Integer(n) => assert_eq!(got, AnyValue::Int64(*n), "{column}"),
                Sql::Real(x) => assert_eq!(got, AnyValue::Float64(*x), "{column}"),
                // Parquet is not opened by spreadsheets: text is written as stored.
                Sql::Text(t) => assert_eq!(got.str_value(), t.as_str(), "{column}"),
                Sql::Blob(_) => unreachable!(),
            }
        }
    }

    let out = work.run_ok(&["assets", "--format", "json"]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let assets = json.as_array().unwrap();
    assert_eq!(assets.len(), expected.len());
    let (_, stored_rows) = stored(&work);
    let (columns, _) = stored(&work);
    for (asset, row) in assets.iter().zip(&stored_rows) {
        for (column, value) in columns.iter().zip(row) {
            let got = &asset[column];
            match value {
                Sql::Null => assert!(got.is_null(), "{column}"),
                Sql::Integer(n) => assert_eq!(got.as_i64(), Some(*n), "{column}"),
                Sql::Real(x) => assert_eq!(got.as_f64(), Some(*x), "{column}"),
                Sql::Text(t)
                    if matches!(
                        column.as_str(),
                        "custom_attributes" | "tech_debt_details" | "dependencies"
                    ) =>
                {
                    assert_eq!(*got, serde_json::from_str::<Value>(t).unwrap(), "{column}")
                }
                Sql::Text(t) => assert_eq!(got.as_str(), Some(t.as_str()), "{column}"),
                Sql::Blob(_) => unreachable!(),
            }
        }
    }
}

#[test]
fn binary_formats_need_an_output_file_and_a_missing_flow_is_reported() {
    let work = imported();
    let out = work
        .intake()
        .args(["assets", "--format", "xlsx"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--output"));
    let out = work
        .intake()
        .args(["assets", "--flow", "ffffffff"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    // Into a pipe, CSV of every column, the name first; --type and --limit narrow it.
    let out = work.run_ok(&["assets"]);
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(csv.starts_with("name,"), "{csv}");
    assert!(csv.contains("formula-01") && csv.contains("support_status"));
    let out = work.run_ok(&["assets", "--type", "server", "--limit", "1"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        2,
        "a header and one asset"
    );
    let out = work.run_ok(&["assets", "--type", "network"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        1,
        "only the header"
    );
    let out = work
        .intake()
        .args(["assets", "--type", "laptop"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // A table when asked for.
    let out = work.run_ok(&["assets", "--format", "table"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("formula-01") && table.contains("support_status"));
}

/// `-o -` is standard output, for an export and for the report.
#[test]
fn a_dash_writes_to_standard_output() {
    let work = imported();
    let out = work.run_ok(&["assets", "--format", "csv", "-o", "-"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("id,") || text.contains("asset_type,kind"),
        "{text}"
    );
    assert!(!work.path("-").exists(), "no file named -");
    let out = work.run_ok(&["report", "-o", "-"]);
    let html = String::from_utf8_lossy(&out.stdout);
    assert!(
        html.contains("<html") && html.contains("Discovery report"),
        "{}",
        &html[..html.len().min(200)]
    );
    assert!(!work.path("-").exists());
}

/// A named pipe is written through (a reader gets the export), never
/// replaced by a regular file.
#[test]
fn a_named_pipe_is_written_through() {
    use std::os::unix::fs::FileTypeExt;
    let work = imported();
    let fifo = work.path("assets.pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    work.run_ok(&["assets", "--format", "csv", "-o", fifo.to_str().unwrap()]);
    let text = reader.join().unwrap();
    assert!(text.contains("formula-01"), "{text}");
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    // A binary format too: it is finished aside, then copied through.
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    work.run_ok(&["assets", "--format", "xlsx", "-o", fifo.to_str().unwrap()]);
    let bytes = reader.join().unwrap();
    assert!(bytes.starts_with(b"PK"), "an xlsx came through the pipe");
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    let left: Vec<_> = std::fs::read_dir(work.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".intake-"))
        .collect();
    assert!(left.is_empty(), "no temporary file left: {left:?}");
}

/// A symbolic link keeps pointing where it did; what it points at gets the
/// output, and keeps its mode.
#[test]
fn a_symbolic_link_is_followed_not_replaced() {
    use std::os::unix::fs::PermissionsExt;
    let work = imported();
    let real = work.write("latest-export.csv", "old\n");
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
    let link = work.path("assets.csv");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    work.run_ok(&["assets", "-o", link.to_str().unwrap()]);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let text = std::fs::read_to_string(&real).unwrap();
    assert!(text.contains("formula-01"), "{text}");
    let mode = std::fs::metadata(&real).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "a replaced file keeps its mode");
}

/// A new file gets the mode the umask gives, as any program's would.
#[test]
fn a_new_file_honours_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let work = imported();
    let intake = assert_cmd::cargo::cargo_bin("intake");
    for (umask, want) in [("022", 0o644), ("077", 0o600), ("002", 0o664)] {
        let name = format!("assets-{umask}.csv");
        let report = format!("report-{umask}.html");
        let status = std::process::Command::new("sh")
            .current_dir(work.dir.path())
            .arg("-c")
            .arg(format!(
                "umask {umask} && \"$0\" assets -q -o {name} && \"$0\" report -q -o {report}"
            ))
            .arg(&intake)
            .status()
            .unwrap();
        assert!(status.success());
        for file in [&name, &report] {
            let mode = std::fs::metadata(work.path(file))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, want, "{file} under umask {umask}");
        }
    }
}
