//! Files nobody controls: one test per hostile input, each run through the
//! real binary, asserting what intake does, its exit code, that its memory
//! stays under 400 MB where the input tried to exhaust it, and that a good
//! file still imports into the same engagement afterwards.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::common::*;
use serde_json::Value;

/// The most memory any command may take (the issue's bound).
const MAX_RSS_KB: i64 = 400 * 1024;

fn hostile(name: &str) -> PathBuf {
    fixture(&format!("hostile/{name}"))
}

/// Runs `intake ARGS` in the work dir and watches its high-water RSS
/// (`VmHWM` in /proc, polled until it exits; wait4's figure would include
/// the test process it was spawned from): (exit code, stdout, stderr, peak
/// RSS in KB).
fn measured(work: &Work, args: &[&str]) -> (i32, String, String, i64) {
    let out_path = work.path("measured.out");
    let err_path = work.path("measured.err");
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("intake"))
        .args(args)
        .current_dir(work.dir.path())
        .env_remove("RUST_LOG")
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("start intake");
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_path) {
            let hwm = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok());
            peak = peak.max(hwm.unwrap_or(0));
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    (
        status.code().unwrap_or(-1),
        std::fs::read_to_string(out_path).unwrap(),
        std::fs::read_to_string(err_path).unwrap(),
        peak,
    )
}

/// A good export still imports into the engagement the hostile one went to.
fn a_good_file_still_imports(work: &Work) {
    let (code, out) =
        work.import_json(&[sample("servicenow_cmdb_ci_server.csv").to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["files"][0]["status"], "completed", "{out}");
    let conn = work.conn();
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM discovery_flows WHERE status <> 'completed'"
        ),
        0,
        "every flow finished"
    );
}

/// The validation errors of the record whose raw_data names `server`.
fn errors_of(work: &Work, server: &str) -> Vec<Value> {
    let text: String = work
        .conn()
        .query_row(
            "SELECT validation_errors FROM raw_import_records WHERE raw_data LIKE ?1",
            [format!("%\"{server}\"%")],
            |r| r.get(0),
        )
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn has_error(errors: &[Value], code: &str, raw: &str) -> bool {
    errors
        .iter()
        .any(|e| e["code"] == code && e["raw_value"] == raw)
}

#[test]
fn minus_one_and_unknown_read_as_missing_and_impossible_numbers_are_refused() {
    let work = Work::new();
    let file = hostile("azure_migrate_minus_one_for_unknown.csv");
    let (code, out) = work.import_json(&[file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["files"][0]["status"], "completed", "{out}");
    let conn = work.conn();
    let value = |name: &str, column: &str| -> Option<f64> {
        conn.query_row(
            &format!("SELECT {column} FROM assets WHERE name = ?1"),
            [name],
            |r| r.get(0),
        )
        .unwrap()
    };
    // Every machine is an asset; unknown values are empty, not -1.
    assert_eq!(count(&conn, "SELECT count(*) FROM assets"), 5);
    assert_eq!(value("AZWEB000", "memory_gb"), Some(32.0));
    assert_eq!(value("AZWEB000", "cpu_cores"), Some(16.0));
    for column in [
        "memory_gb",
        "cpu_cores",
        "storage_used_gb",
        "cpu_utilization_percent",
    ] {
        assert_eq!(value("AZWEB001", column), None, "{column}");
        assert_eq!(value("AZWEB003", column), None, "{column}");
    }
    assert_eq!(value("AZWEB002", "memory_gb"), None);
    // The raw values are kept with a reason.
    let errors = errors_of(&work, "AZWEB001");
    assert!(has_error(&errors, "missing_marker", "-1"), "{errors:?}");
    let errors = errors_of(&work, "AZWEB002");
    assert!(
        has_error(&errors, "missing_marker", "unknown"),
        "{errors:?}"
    );
    assert!(has_error(&errors, "missing_marker", "N/A"), "{errors:?}");
    let errors = errors_of(&work, "AZWEB003");
    assert!(
        has_error(&errors, "out_of_range", "8999999999999999"),
        "{errors:?}"
    );
    assert!(has_error(&errors, "out_of_range", "-4096"), "{errors:?}");
    assert!(has_error(&errors, "out_of_range", "250"), "{errors:?}");
    assert_eq!(
        count(&conn, "SELECT count(*) FROM assets WHERE memory_gb < 0 OR cpu_cores < 0 OR storage_used_gb < 0"),
        0
    );
    a_good_file_still_imports(&work);
}

#[test]
fn values_an_older_intake_stored_out_of_range_do_not_break_the_engagement() {
    let work = Work::new();
    let file = sample("servicenow_cmdb_ci_server.csv");
    work.run_ok(&["import", file.to_str().unwrap(), "-q"]);
    // Records cleansed by a version that let -1 through, as such a database
    // holds them (without the inventory's links, which came later).
    work.conn()
        .execute_batch(
            "UPDATE raw_records SET cleansed_data = json_set(cleansed_data, '$.memory_gb', -1, '$.cpu_cores', -8);
             DELETE FROM inventory_links;",
        )
        .unwrap();
    // The next import rebuilds the engagement's assets from those records too.
    let other = hostile("impossible_dates.csv");
    let (code, out) = work.import_json(&[other.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let conn = work.conn();
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM assets WHERE memory_gb < 0 OR cpu_cores < 0"
        ),
        0
    );
    assert!(
        count(
            &conn,
            "SELECT count(*) FROM assets WHERE json_extract(custom_attributes, '$._rejected.memory_gb') = -1"
        ) > 0,
        "the refused value is kept aside"
    );
}

#[test]
fn os_names_that_change_length_when_lowercased_are_read() {
    let work = Work::new();
    let file = hostile("os_names_that_change_length_when_lowercased.csv");
    // Mapped by a rule: the names are too odd for the content check to agree.
    let rules = work.write(
        "rules.toml",
        "[columns]\n\"Operating System\" = \"operating_system\"\n",
    );
    let (code, out) =
        work.import_json(&[file.to_str().unwrap(), "--rules", rules.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let conn = work.conn();
    assert_eq!(count(&conn, "SELECT count(*) FROM assets"), 3);
    let (os, version): (String, Option<String>) = conn
        .query_row(
            "SELECT operating_system, os_version FROM assets WHERE name = 'web02'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(os, "Red Hat Enterprise Linux");
    assert_eq!(version.as_deref(), Some("8"));
    a_good_file_still_imports(&work);
}

#[test]
fn impossible_dates_are_refused_not_truncated() {
    let work = Work::new();
    let file = hostile("impossible_dates.csv");
    let (code, out) = work.import_json(&[file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let errors = errors_of(&work, "web01");
    assert!(
        has_error(&errors, "not_a_date", "01.257.2024"),
        "{errors:?}"
    );
    assert!(has_error(&errors, "not_a_date", "2024-02-30"), "{errors:?}");
    let errors = errors_of(&work, "web02");
    assert!(has_error(&errors, "not_a_date", "0001-01-01"), "{errors:?}");
    let conn = work.conn();
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM assets WHERE last_discovered_at LIKE '2024-01-01%'"
        ),
        0
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM assets WHERE last_discovered_at = '2024-03-01'"
        ),
        1
    );
    a_good_file_still_imports(&work);
}

#[test]
fn workbook_cells_out_of_order_are_placed_by_their_column() {
    let work = Work::new();
    let file = hostile("cells_out_of_order.xlsx");
    let (code, out) = work.import_json(&[file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let rows = raw_rows(&work.conn(), "cells_out_of_order");
    assert_eq!(rows.len(), 3, "{rows:?}");
    let by_name = |name: &str| rows.iter().find(|(_, r)| r["Server Name"] == name);
    // A cell written twice keeps its last value; row 2 came after row 3.
    let second = by_name("web02b").expect("row 2");
    assert_eq!(second.1["Memory GB"], "16");
    assert_eq!(second.1["IP Address"], "10.0.0.2");
    assert_eq!(by_name("web03").unwrap().1["IP Address"], "10.0.0.3");
    let indexes: std::collections::HashSet<i64> = rows.iter().map(|(i, _)| *i).collect();
    assert_eq!(indexes.len(), 3, "record indexes stay unique");
    assert!(
        out.to_string().contains("row_out_of_order") || out.to_string().contains("out of order"),
        "{out}"
    );
    a_good_file_still_imports(&work);
}

#[test]
fn a_cell_at_column_zzzzzz_costs_one_cell() {
    let work = Work::new();
    let file = hostile("cell_at_column_zzzzzz.xlsx");
    let (code, stdout, stderr, rss) =
        measured(&work, &["import", file.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(rss < MAX_RSS_KB, "peak RSS {rss} KB");
    let rows = raw_rows(&work.conn(), "cell_at_column_zzzzzz");
    assert_eq!(rows.len(), 2);
    // The stray values are kept, without 321 million columns in between.
    let first = &rows[0].1;
    assert!(first.as_object().unwrap().len() <= 5, "{first}");
    assert!(
        first.as_object().unwrap().values().any(|v| v == "far away"),
        "{first}"
    );
    a_good_file_still_imports(&work);
}

#[test]
fn a_merged_range_over_the_whole_width_fills_only_the_table() {
    let work = Work::new();
    let file = hostile("merged_range_whole_width.xlsx");
    let (code, stdout, stderr, rss) =
        measured(&work, &["import", file.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(rss < MAX_RSS_KB, "peak RSS {rss} KB");
    let rows = raw_rows(&work.conn(), "merged_range_whole_width");
    assert_eq!(rows.len(), 4999);
    assert!(rows.iter().all(|(_, r)| r.as_object().unwrap().len() == 3));
    let size = std::fs::metadata(work.db()).unwrap().len();
    assert!(size < 32 * 1024 * 1024, "the database is {size} bytes");
    a_good_file_still_imports(&work);
}

#[test]
fn blank_records_before_the_header_hold_no_memory() {
    let work = Work::new();
    let path = work.path("blank_records_before_header.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for _ in 0..20_000_000 {
        out.write_all(b",\n").unwrap();
    }
    out.write_all(b"Server Name,IP Address\nweb01,10.0.0.1\n\n,\nweb02,10.0.0.2\n")
        .unwrap();
    drop(out);
    let (code, stdout, stderr, rss) =
        measured(&work, &["import", path.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(rss < MAX_RSS_KB, "peak RSS {rss} KB");
    let out: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(out["files"][0]["rows"], 2, "{out}");
    a_good_file_still_imports(&work);
}

#[test]
fn ten_thousand_duplicate_headers_are_named_in_linear_time() {
    let work = Work::new();
    let path = work.path("ten_thousand_duplicate_headers.csv");
    let header = vec!["Name"; 10_000].join(",");
    let row = (0..10_000)
        .map(|i| format!("v{i}"))
        .collect::<Vec<_>>()
        .join(",");
    std::fs::write(&path, format!("{header}\n{row}\n{row}\n")).unwrap();
    let (code, stdout, stderr, rss) =
        measured(&work, &["import", path.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(rss < MAX_RSS_KB, "peak RSS {rss} KB");
    let rows = raw_rows(&work.conn(), "ten_thousand_duplicate_headers");
    assert_eq!(rows[0].1["Name"], "v0");
    assert_eq!(rows[0].1["Name_10000"], "v9999");
    a_good_file_still_imports(&work);
}

#[test]
fn ten_thousand_distinct_columns_are_mapped_in_bounded_memory() {
    let work = Work::new();
    let path = work.path("ten_thousand_distinct_columns.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let header: Vec<String> = std::iter::once("Server Name".to_string())
        .chain((1..10_000).map(|i| format!("metric_{i}")))
        .collect();
    writeln!(out, "{}", header.join(",")).unwrap();
    for r in 0..300 {
        let row: Vec<String> = std::iter::once(format!("srv{r:04}"))
            .chain((1..10_000).map(|i| format!("{}", (i * r) % 977)))
            .collect();
        writeln!(out, "{}", row.join(",")).unwrap();
    }
    drop(out);
    let (code, stdout, stderr, rss) =
        measured(&work, &["import", path.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(rss < MAX_RSS_KB, "peak RSS {rss} KB");
    let conn = work.conn();
    assert_eq!(
        count(&conn, "SELECT count(*) FROM import_field_mappings"),
        10_000
    );
    assert_eq!(count(&conn, "SELECT count(*) FROM assets"), 300);
    a_good_file_still_imports(&work);
}

#[test]
fn a_table_wider_than_the_column_limit_fails_its_file_only() {
    let work = Work::new();
    let path = work.path("one_hundred_thousand_and_one_columns.csv");
    let columns = intake::read::MAX_COLUMNS + 1;
    let header = (0..columns)
        .map(|i| format!("c{i}"))
        .collect::<Vec<_>>()
        .join(",");
    std::fs::write(&path, format!("{header}\n")).unwrap();
    let good = sample("servicenow_cmdb_ci_server.csv");
    let (code, stdout, stderr, rss) = measured(
        &work,
        &[
            "import",
            path.to_str().unwrap(),
            good.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(code, 3, "{stdout}{stderr}");
    assert!(rss < MAX_RSS_KB, "peak RSS {rss} KB");
    let out: Value = serde_json::from_str(&stdout).unwrap();
    let wide = file_entry(&out, "one_hundred_thousand_and_one_columns.csv");
    assert_eq!(wide["error_code"], "too_many_columns", "{wide}");
    assert!(
        wide["error"].as_str().unwrap().contains("100000 columns"),
        "{wide}"
    );
    assert_eq!(
        file_entry(&out, "servicenow_cmdb_ci_server.csv")["status"],
        "completed"
    );
}

#[test]
fn a_directory_that_links_to_itself_is_walked_once() {
    let work = Work::new();
    let dir = work.path("exports");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(
        sample("servicenow_cmdb_ci_server.csv"),
        dir.join("servers.csv"),
    )
    .unwrap();
    std::os::unix::fs::symlink(".", dir.join("a")).unwrap();
    std::os::unix::fs::symlink("../exports", dir.join("b")).unwrap();
    let (code, out) = work.import_json(&[dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["files"].as_array().unwrap().len(), 1, "{out}");
    let ignored = out["ignored_paths"].to_string();
    assert!(ignored.contains("already read"), "{out}");
}

/// Whether printed text holds a control character other than a line break.
fn holds_controls(text: &str) -> bool {
    text.chars().any(|c| c.is_control() && c != '\n')
}

#[test]
fn escape_sequences_in_the_data_are_shown_escaped() {
    let work = Work::new();
    let file = hostile("terminal_escape_sequences.csv");
    let out = work.run_ok(&["import", file.to_str().unwrap()]);
    let summary = String::from_utf8(out.stdout).unwrap();
    assert!(!holds_controls(&summary), "{summary:?}");
    let out = work.run_ok(&["mappings"]);
    let mappings = String::from_utf8(out.stdout).unwrap();
    assert!(!holds_controls(&mappings), "{mappings:?}");
    assert!(mappings.contains("\\u{1b}"), "shown escaped: {mappings}");
    let out = work.run_ok(&["assets", "--format", "table"]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(!holds_controls(&table), "{table:?}");
    // JSON keeps the values, every control character written as an escape.
    let out = work.run_ok(&["assets", "--format", "json"]);
    let json = String::from_utf8(out.stdout).unwrap();
    assert!(!holds_controls(&json), "{json:?}");
    let assets: Value = serde_json::from_str(&json).unwrap();
    let owners: Vec<String> = assets
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["custom_attributes"].as_object().unwrap().values())
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    assert!(owners.iter().any(|o| o.contains('\u{9b}')), "{owners:?}");
    a_good_file_still_imports(&work);
}

#[test]
fn exports_neutralise_formulas_cap_excel_cells_and_keep_the_database() {
    let work = Work::new();
    let file = hostile("formula_after_leading_whitespace.csv");
    work.run_ok(&["import", file.to_str().unwrap(), "-q"]);
    let long = "x".repeat(40_000);
    let path = work.write(
        "long_value.csv",
        &format!("Server Name,Description\nweb09,{long}\n"),
    );
    work.run_ok(&["import", path.to_str().unwrap(), "-q"]);

    let out = work.run_ok(&["assets", "--format", "csv"]);
    let csv = String::from_utf8(out.stdout).unwrap();
    assert!(csv.contains("\"' =HYPERLINK("), "{csv}");
    assert!(csv.contains("\"'\n@SUM(1+1)\""), "{csv}");
    assert!(
        csv.contains(",-12.5,") || csv.contains(",-12.5\n"),
        "a number stays a number: {csv}"
    );
    assert!(csv.contains(&long), "CSV keeps the whole value");

    work.run_ok(&["assets", "--output", "assets.xlsx"]);
    let mut book: calamine::Xlsx<_> = calamine::open_workbook(work.path("assets.xlsx")).unwrap();
    use calamine::Reader;
    let range = book.worksheet_range("assets").unwrap();
    let longest = range
        .rows()
        .flat_map(|r| r.iter())
        .map(|c| c.to_string())
        .max_by_key(|s| s.chars().count())
        .unwrap();
    assert!(longest.chars().count() <= 32_767);
    assert!(
        longest.contains("cut at Excel's limit: 40000 characters"),
        "{}",
        &longest[longest.len() - 120..]
    );

    // The database itself, by its name or through a link, is refused.
    let before = std::fs::read(work.db()).unwrap();
    expect_failure(
        &work,
        &["assets", "--output", "intake.db", "--format", "csv"],
        2,
        "is the database",
    );
    std::os::unix::fs::symlink(work.db(), work.path("link.csv")).unwrap();
    expect_failure(
        &work,
        &["assets", "--output", "link.csv"],
        2,
        "is the database",
    );
    expect_failure(
        &work,
        &["report", "--output", "intake.db"],
        2,
        "is the database",
    );
    assert_eq!(std::fs::read(work.db()).unwrap(), before);
}

#[test]
fn a_closed_pipe_ends_an_export_quietly() {
    let work = Work::new();
    let export = work.path("cmdb.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&export).unwrap());
    intake::synth::write_cmdb_csv(&mut out, 3_000, 1.0, 3).unwrap();
    drop(out);
    work.run_ok(&["import", export.to_str().unwrap(), "-q"]);
    for format in ["table", "csv", "json"] {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("intake"))
            .args([
                "--db",
                work.db().to_str().unwrap(),
                "assets",
                "--format",
                format,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        // `| head -1`: the reader is gone after one line.
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{format}: {stderr}");
        assert!(
            !stderr.contains("Broken pipe") && !stderr.contains("error"),
            "{format}: {stderr}"
        );
    }
}

#[test]
fn a_killed_runs_stdin_spool_is_removed_by_the_next_run() {
    let work = Work::new();
    let stale = work.path(".intake.db.stdin-Xy12ab");
    std::fs::write(&stale, "Server Name\nweb01\n").unwrap();
    let file = sample("servicenow_cmdb_ci_server.csv");
    work.run_ok(&["import", file.to_str().unwrap(), "-q"]);
    assert!(!stale.exists(), "the spool a killed run left is gone");
    // A spool of another database in the same directory is left alone.
    let other = work.path(".other.db.stdin-Ab34cd");
    std::fs::write(&other, "x").unwrap();
    let (code, _) = work.import_json(&["-"]);
    assert!(code == 0 || code == 3);
    assert!(other.exists());
}

#[test]
fn a_database_reached_through_a_link_takes_the_same_writer_lock() {
    let work = Work::new();
    let file = sample("servicenow_cmdb_ci_server.csv");
    work.run_ok(&["import", file.to_str().unwrap(), "-q"]);
    std::os::unix::fs::symlink(work.db(), work.path("linked.db")).unwrap();
    work.run_ok(&[
        "--db",
        "linked.db",
        "import",
        "--force",
        file.to_str().unwrap(),
        "-q",
    ]);
    assert!(work.path("intake.db.lock").exists());
    assert!(
        !work.path("linked.db.lock").exists(),
        "the lock is the database's own"
    );
}

/// Builds the Workbook stream of an .xls, record by record (BIFF8).
mod biff {
    pub fn record(kind: u16, body: &[u8]) -> Vec<u8> {
        let mut v = kind.to_le_bytes().to_vec();
        v.extend((body.len() as u16).to_le_bytes());
        v.extend(body);
        v
    }

    pub fn bof(sheet: bool) -> Vec<u8> {
        let kind: u16 = if sheet { 0x0010 } else { 0x0005 };
        let mut body = 0x0600u16.to_le_bytes().to_vec();
        body.extend(kind.to_le_bytes());
        body.extend([0; 12]);
        record(0x0809, &body)
    }

    pub fn eof() -> Vec<u8> {
        record(0x000A, &[])
    }

    /// A BoundSheet8 entry: a visible worksheet named `name` at `position`.
    pub fn sheet_entry(position: u32, name: &str) -> Vec<u8> {
        let mut body = position.to_le_bytes().to_vec();
        body.extend([0, 0, name.len() as u8, 0]);
        body.extend(name.as_bytes());
        record(0x0085, &body)
    }

    pub fn label(row: u16, col: u16, text: &str) -> Vec<u8> {
        let mut body = row.to_le_bytes().to_vec();
        body.extend(col.to_le_bytes());
        body.extend([0, 0]);
        body.extend((text.len() as u16).to_le_bytes());
        body.push(0);
        body.extend(text.as_bytes());
        record(0x0204, &body)
    }

    pub fn number(row: u16, col: u16, value: f64) -> Vec<u8> {
        let mut body = row.to_le_bytes().to_vec();
        body.extend(col.to_le_bytes());
        body.extend([0, 0]);
        body.extend(value.to_le_bytes());
        record(0x0203, &body)
    }

    /// A stream whose globals list `entries` sheet entries, `pointing` at
    /// the sheet made of `sheet` (BOF added; the caller ends it).
    pub fn stream(entries: &[&str], sheet: &[Vec<u8>]) -> Vec<u8> {
        stream_with(&[], entries, sheet)
    }

    /// `stream`, with `extra` records in the globals after their BOF.
    pub fn stream_with(extra: &[Vec<u8>], entries: &[&str], sheet: &[Vec<u8>]) -> Vec<u8> {
        let globals: usize = bof(false).len()
            + extra.iter().map(Vec::len).sum::<usize>()
            + entries
                .iter()
                .map(|n| sheet_entry(0, n).len())
                .sum::<usize>()
            + eof().len();
        let mut s = bof(false);
        for record in extra {
            s.extend(record);
        }
        for name in entries {
            s.extend(sheet_entry(globals as u32, name));
        }
        s.extend(eof());
        s.extend(bof(true));
        for r in sheet {
            s.extend(r);
        }
        s
    }

    /// The servers table every test sheet starts with.
    pub fn servers() -> Vec<Vec<u8>> {
        vec![
            label(0, 0, "Name"),
            label(0, 1, "CPU"),
            label(1, 0, "web01"),
            number(1, 1, 4.0),
            label(2, 0, "db01"),
            number(2, 1, 8.0),
        ]
    }

    /// Writes `stream` as the Workbook stream of an OLE compound file.
    pub fn write_xls(path: &std::path::Path, stream: &[u8]) {
        use std::io::Write;
        let mut file = cfb::create(path).unwrap();
        file.create_stream("/Workbook")
            .unwrap()
            .write_all(stream)
            .unwrap();
        file.flush().unwrap();
    }
}

/// Imports `files` with a good export beside them: (exit code, --json, stderr).
fn import_beside_a_good_file(work: &Work, files: &[&std::path::Path]) -> (i32, Value, String) {
    let good = sample("servicenow_cmdb_ci_server.csv");
    let mut args = vec!["import", "--json"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    args.push(good.to_str().unwrap());
    let (code, stdout, stderr, rss) = measured(work, &args);
    assert!(rss < MAX_RSS_KB, "peak RSS {rss} KB\n{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "a parser's panic reached the terminal:\n{stderr}"
    );
    let json: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: exit {code}\n{stdout}\n{stderr}"));
    assert_eq!(
        file_entry(&json, "servicenow_cmdb_ci_server.csv")["status"],
        "completed",
        "{json}"
    );
    (code, json, stderr)
}

#[test]
fn a_panic_inside_the_workbook_reader_fails_that_file_only() {
    let work = Work::new();
    // The same workbook, once whole and once with an empty DateMode record
    // (calamine reads two bytes from it without looking).
    let good = work.path("two_servers.xls");
    let mut sheet = biff::servers();
    sheet.push(biff::eof());
    biff::write_xls(&good, &biff::stream(&["Servers"], &sheet));
    let cut = work.path("date_mode_record_empty.xls");
    biff::write_xls(
        &cut,
        &biff::stream_with(&[biff::record(0x0022, &[])], &["Servers"], &sheet),
    );

    let (code, json, _) = import_beside_a_good_file(&work, &[&good, &cut]);
    assert_eq!(code, 3, "{json}");
    assert_eq!(file_entry(&json, "two_servers.xls")["status"], "completed");
    assert_eq!(raw_rows(&work.conn(), "two_servers.xls").len(), 2);
    let failed = file_entry(&json, "date_mode_record_empty.xls");
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error_code"], "unreadable_workbook", "{failed}");
    let message = failed["error"].as_str().unwrap();
    assert!(message.contains("malformed data"), "{message}");
    assert_eq!(
        count(
            &work.conn(),
            "SELECT count(*) FROM data_imports WHERE filename LIKE '%date_mode_record_empty.xls' AND status = 'failed'"
        ),
        1,
        "the failed file is named in data_imports"
    );
    // sniff says the same and does not crash.
    let out = work
        .intake()
        .args(["sniff", cut.to_str().unwrap()])
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(101), "{said}");
    assert!(
        said.contains("malformed data") && !said.contains("panicked"),
        "{said}"
    );
}

#[test]
fn damaged_xls_sheet_entries_and_merge_lists_fail_their_file_with_the_reason() {
    let work = Work::new();
    let mut sheet = biff::servers();
    sheet.push(biff::eof());
    // A sheet entry pointing far past the stream.
    let mut past = biff::bof(false);
    past.extend(biff::sheet_entry(1 << 30, "Servers"));
    past.extend(biff::eof());
    let past_path = work.path("sheet_entry_past_the_stream.xls");
    biff::write_xls(&past_path, &past);
    // A sheet entry of three bytes.
    let mut short = biff::bof(false);
    short.extend(biff::record(0x0085, &[0, 0, 0]));
    short.extend(biff::eof());
    let short_path = work.path("sheet_entry_three_bytes.xls");
    biff::write_xls(&short_path, &short);
    // A MergeCells record that says 200 ranges and holds none.
    let mut merged = biff::servers();
    merged.push(biff::record(0x00E5, &[200, 0]));
    merged.push(biff::eof());
    let merged_path = work.path("merge_count_past_its_record.xls");
    biff::write_xls(&merged_path, &biff::stream(&["Servers"], &merged));

    let (code, json, _) =
        import_beside_a_good_file(&work, &[&past_path, &short_path, &merged_path]);
    assert_eq!(code, 3, "{json}");
    for (file, said) in [
        (
            "sheet_entry_past_the_stream.xls",
            "past the end of the workbook stream",
        ),
        ("sheet_entry_three_bytes.xls", "shorter than"),
        ("merge_count_past_its_record.xls", "MergeCells"),
    ] {
        let entry = file_entry(&json, file);
        assert_eq!(entry["status"], "failed", "{entry}");
        assert!(entry["error"].as_str().unwrap().contains(said), "{entry}");
    }
}

#[test]
fn the_xls_guard_counts_what_calamine_builds() {
    let work = Work::new();
    let far = |kind: u16| {
        // A cell at the far corner of an .xls sheet: 65,536 × 256 cells.
        let mut body = 65_535u16.to_le_bytes().to_vec();
        body.extend(255u16.to_le_bytes());
        body.extend([0; 10]);
        biff::record(kind, &body)
    };
    let mut cases = Vec::new();
    // An RString cell at the corner.
    let mut rstring = biff::servers();
    rstring.push(far(0x00D6));
    rstring.push(biff::eof());
    cases.push(("rstring_at_the_corner.xls", biff::stream(&["S"], &rstring)));
    // The corner after a nested chart substream.
    let mut nested = biff::servers();
    nested.extend([biff::bof(false), biff::number(0, 0, 1.0), biff::eof()]);
    nested.push(far(0x0203));
    nested.push(biff::eof());
    cases.push((
        "corner_after_a_chart_substream.xls",
        biff::stream(&["S"], &nested),
    ));
    // The corner in a sheet without EOF.
    let mut unended = biff::servers();
    unended.push(far(0x0203));
    cases.push((
        "corner_in_a_sheet_without_eof.xls",
        biff::stream(&["S"], &unended),
    ));
    // Twenty entries at one sheet of 65,536 × 4 cells: 5.2 M cells built.
    let mut tall = biff::servers();
    let mut body = 65_535u16.to_le_bytes().to_vec();
    body.extend(3u16.to_le_bytes());
    body.extend([0; 10]);
    tall.push(biff::record(0x0203, &body));
    tall.push(biff::eof());
    let names: Vec<String> = (0..20).map(|i| format!("S{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    cases.push((
        "twenty_entries_at_one_sheet.xls",
        biff::stream(&names, &tall),
    ));
    cases.push(("one_entry_at_that_sheet.xls", biff::stream(&["S"], &tall)));

    let paths: Vec<std::path::PathBuf> = cases
        .iter()
        .map(|(name, stream)| {
            let path = work.path(name);
            biff::write_xls(&path, stream);
            path
        })
        .collect();
    let refs: Vec<&std::path::Path> = paths.iter().map(|p| p.as_path()).collect();
    let (code, json, _) = import_beside_a_good_file(&work, &refs);
    assert_eq!(code, 3, "{json}");
    for (name, _) in &cases[..4] {
        let entry = file_entry(&json, name);
        assert_eq!(entry["error_code"], "refused_workbook", "{entry}");
    }
    let one = file_entry(&json, "one_entry_at_that_sheet.xls");
    assert_eq!(one["status"], "completed", "{one}");
}

#[test]
fn xlsx_parts_that_would_expand_past_memory_are_refused() {
    use std::io::Write;
    let work = Work::new();
    let write_xlsx = |name: &str, sheet: &str, shared: Option<&str>, entries: usize| {
        let listed: String = (0..entries)
            .map(|i| format!(r#"<sheet name="Data{i}" sheetId="{}" r:id="rId1"/>"#, i + 1))
            .collect();
        let path = work.path(name);
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        let mut parts = vec![
            ("[Content_Types].xml".to_string(), r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>"#.to_string()),
            ("_rels/.rels".into(), r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#.into()),
            ("xl/workbook.xml".into(), r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>{listed}</sheets></workbook>"#.replace("{listed}", &listed)),
            ("xl/_rels/workbook.xml.rels".into(), r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>"#.into()),
            ("xl/worksheets/sheet1.xml".into(), format!(r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>{sheet}</sheetData></worksheet>"#)),
        ];
        if let Some(shared) = shared {
            parts.push(("xl/sharedStrings.xml".into(), shared.to_string()));
        }
        for (name, text) in parts {
            zip.start_file(name, options).unwrap();
            zip.write_all(text.as_bytes()).unwrap();
        }
        zip.finish().unwrap();
        path
    };
    let rows = r#"<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row><row r="2"><c r="A2" t="s"><v>2</v></c><c r="B2"><v>4</v></c></row>"#;
    let strings = |unique: &str| {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="3" uniqueCount="{unique}"><si><t>Name</t></si><si><t>CPU</t></si><si><t>web01</t></si></sst>"#
        )
    };
    let fine = write_xlsx("three_shared_strings.xlsx", rows, Some(&strings("3")), 1);
    let huge_count = write_xlsx(
        "unique_count_near_u64_max.xlsx",
        rows,
        Some(&strings("18446744073709551610")),
        1,
    );
    let one_part_twice = write_xlsx("two_sheets_one_part.xlsx", rows, Some(&strings("3")), 2000);
    let long_cell = format!(
        r#"<row r="1"><c r="A1" t="inlineStr"><is><t>Name</t></is></c></row><row r="2"><c r="A2" t="inlineStr"><is><t>{}</t></is></c></row>"#,
        "x".repeat(5 << 20)
    );
    let five_mb_cell = write_xlsx("one_cell_of_five_mb.xlsx", &long_cell, None, 1);

    // One 2 MiB string named by 2,000 cells: 4 GiB of rows from a small file.
    let named_rows: String = (1..=2_000)
        .map(|r| format!(r#"<row r="{r}"><c r="A{r}" t="s"><v>0</v></c></row>"#))
        .collect();
    let long_string = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="2000" uniqueCount="1"><si><t>{}</t></si></sst>"#,
        "y".repeat(2 << 20)
    );
    let one_string_everywhere = write_xlsx(
        "one_long_string_named_by_2000_cells.xlsx",
        &named_rows,
        Some(&long_string),
        1,
    );

    let (code, json, _) = import_beside_a_good_file(
        &work,
        &[
            &fine,
            &huge_count,
            &one_part_twice,
            &five_mb_cell,
            &one_string_everywhere,
        ],
    );
    assert_eq!(code, 3, "{json}");
    assert_eq!(
        file_entry(&json, "three_shared_strings.xlsx")["status"],
        "completed"
    );
    let counted = file_entry(&json, "unique_count_near_u64_max.xlsx");
    assert_eq!(counted["status"], "failed", "{counted}");
    assert!(
        counted["error"].as_str().unwrap().contains("uniqueCount"),
        "{counted}"
    );
    let twice = file_entry(&json, "two_sheets_one_part.xlsx");
    assert_eq!(twice["status"], "failed", "{twice}");
    assert!(
        twice["error"].as_str().unwrap().contains("one part"),
        "{twice}"
    );
    let everywhere = file_entry(&json, "one_long_string_named_by_2000_cells.xlsx");
    assert_eq!(everywhere["error_code"], "refused_workbook", "{everywhere}");
    assert!(
        everywhere["error"].as_str().unwrap().contains("2000 cells"),
        "{everywhere}"
    );
    let long = file_entry(&json, "one_cell_of_five_mb.xlsx");
    assert_eq!(long["error_code"], "refused_workbook", "{long}");
    assert!(long["error"].as_str().unwrap().contains("32,767"), "{long}");
}

#[test]
fn binary_content_is_never_read_as_text() {
    let work = Work::new();
    // A real workbook saved under a .csv name, and random bytes named .csv.
    let workbook = work.path("inventory_really_xlsx.csv");
    std::fs::copy(sample("RVTools_export_all.xlsx"), &workbook).unwrap();
    let random = work.path("random_bytes.csv");
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let bytes: Vec<u8> = (0..(2 << 20))
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    std::fs::write(&random, bytes).unwrap();
    let (code, json, _) = import_beside_a_good_file(&work, &[&workbook, &random]);
    assert_eq!(code, 3, "{json}");
    let misnamed = file_entry(&json, "inventory_really_xlsx.csv");
    assert_eq!(misnamed["error_code"], "not_text", "{misnamed}");
    assert!(
        misnamed["error"].as_str().unwrap().contains("rename"),
        "{misnamed}"
    );
    let noise = file_entry(&json, "random_bytes.csv");
    assert_eq!(noise["error_code"], "not_text", "{noise}");
    assert!(
        noise["error"].as_str().unwrap().contains("binary"),
        "{noise}"
    );
    assert_eq!(
        count(
            &work.conn(),
            "SELECT count(*) FROM raw_import_records r JOIN data_imports d ON d.id = r.data_import_id
             WHERE d.filename LIKE '%random_bytes.csv' OR d.filename LIKE '%really_xlsx.csv'"
        ),
        0
    );
}

#[test]
fn a_second_export_appended_to_the_first_does_not_make_its_header_a_server() {
    let work = Work::new();
    let export =
        "\u{feff}Server Name,IP Address,OS\nweb01,10.0.0.1,RHEL 9\nweb02,10.0.0.2,RHEL 9\n";
    let joined = format!("{export}{export}")
        .replacen("web01", "web03", 1)
        .replacen("web02", "web04", 1);
    let path = work.write("two_exports_joined.csv", &joined);
    let (code, json) = work.import_json(&[path.to_str().unwrap()]);
    assert_eq!(code, 0, "{json}");
    let rows = raw_rows(&work.conn(), "two_exports_joined.csv");
    let names: Vec<&str> = rows
        .iter()
        .map(|(_, row)| row["Server Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web03", "web04", "web01", "web02"]);
    let file = file_entry(&json, "two_exports_joined.csv");
    assert_eq!(file["warnings_by_code"]["repeated_header"], 1, "{file}");
}

#[test]
fn a_record_of_control_characters_just_under_the_limit_stops_its_file_in_bounded_memory() {
    let work = Work::new();
    let path = work.path("control_characters_record.csv");
    let mut text = b"Name,IP Address,Notes\n".to_vec();
    for i in 0..2_000 {
        text.extend(format!("web{i:04},10.0.{}.{},in rack {i}\n", i / 250, i % 250).as_bytes());
    }
    text.extend(b"evil,10.9.9.9,");
    text.extend(std::iter::repeat_n(1u8, 15 << 20));
    text.push(b'\n');
    std::fs::write(&path, text).unwrap();
    let (code, json, _) = import_beside_a_good_file(&work, &[&path]);
    assert_eq!(code, 3, "{json}");
    let entry = file_entry(&json, "control_characters_record.csv");
    assert_eq!(entry["status"], "failed", "{entry}");
    assert!(
        entry["error"].as_str().unwrap().contains("line 2002"),
        "{entry}"
    );
}

/// Writes a zip at `path` with (name, bytes) entries, deflated.
fn write_zip(path: &std::path::Path, entries: &[(&str, &[u8])]) {
    use std::io::Write as _;
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        zip.start_file(*name, options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

/// A .zip of exports is read as the files inside it, named after the
/// archive; entries intake does not read are listed as ignored, macOS
/// resource forks are passed over, and a zip inside the zip is not opened.
#[test]
fn a_zip_of_exports_is_read_as_the_files_inside_it() {
    let work = Work::new();
    let inner = work.path("inner.zip");
    write_zip(&inner, &[("x.csv", b"Server Name\nz1\n")]);
    let inner = std::fs::read(&inner).unwrap();
    let archive = work.path("exports.zip");
    write_zip(
        &archive,
        &[
            (
                "exports/servers.csv",
                b"Server Name,OS\nweb01,Ubuntu 22.04\nweb02,RHEL 8\n",
            ),
            (
                "exports/apps.tsv",
                b"Server Name\tApplication\nweb01\tCRM\n",
            ),
            ("__MACOSX/exports/._servers.csv", b"\x00\x05\x16\x07junk"),
            ("exports/readme.pdf", b"%PDF-1.4"),
            ("exports/older.zip", &inner),
        ],
    );
    let (code, json) = work.import_json(&[archive.to_str().unwrap()]);
    assert_eq!(code, 0, "{json}");
    let names: Vec<&str> = json["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names
            .iter()
            .all(|n| n.starts_with(archive.to_str().unwrap())),
        "{names:?}"
    );
    assert!(names
        .iter()
        .any(|n| n.ends_with("exports.zip/exports/servers.csv")));
    let ignored = json["ignored_paths"].to_string();
    assert!(
        ignored.contains("readme.pdf") && ignored.contains("a zip inside a zip"),
        "{ignored}"
    );
    assert!(!ignored.contains("__MACOSX"), "{ignored}");
    let conn = work.conn();
    assert_eq!(count(&conn, "SELECT count(*) FROM raw_import_records"), 3);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM data_imports WHERE filename LIKE '%exports.zip/exports/apps.tsv'"
        ),
        1
    );
    // No extracted file is left behind.
    let leftovers = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("intake-zip-"))
        .filter(|e| e.path().join("exports/servers.csv").exists())
        .count();
    assert_eq!(leftovers, 0);
}

/// A zip bomb (an entry that inflates far past the archive's size) and an
/// entry whose name leaves the archive fail alone, named, with exit 3;
/// the other entries are imported and nothing is written outside.
#[test]
fn a_zip_bomb_and_an_escaping_entry_fail_alone() {
    let work = Work::new();
    let archive = work.path("bomb.zip");
    // 300 MiB of one letter deflates about 1,000:1, to some 300 KB.
    let mut bomb = b"Server Name,OS\nweb00,".to_vec();
    bomb.resize(300 << 20, b'A');
    write_zip(
        &archive,
        &[
            ("good.csv", b"Server Name,OS\nweb01,Ubuntu 22.04\n"),
            ("bomb.csv", &bomb),
            ("../escaped.csv", b"Server Name\nevil\n"),
        ],
    );
    drop(bomb);
    assert!(std::fs::metadata(&archive).unwrap().len() < 2 << 20);
    let (code, json) = work.import_json(&[archive.to_str().unwrap()]);
    assert_eq!(code, 3, "{json}");
    let files = json["files"].as_array().unwrap();
    let failed: Vec<String> = files
        .iter()
        .filter(|f| f["status"] == "failed")
        .map(|f| f["error"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(
        failed
            .iter()
            .any(|e| e.contains("bomb.csv") && e.contains("zip bomb")),
        "{failed:?}"
    );
    assert!(
        failed
            .iter()
            .any(|e| e.contains("escaped.csv") && e.contains("leaves the archive")),
        "{failed:?}"
    );
    assert!(!work
        .dir
        .path()
        .parent()
        .unwrap()
        .join("escaped.csv")
        .exists());
    let conn = work.conn();
    assert_eq!(count(&conn, "SELECT count(*) FROM raw_import_records"), 1);
}
