//! Delimited files as people and tools write them (fixtures in
//! `tests/fixtures/dialects/`, one per family): a comma then a space with
//! quoted notes, a space as the delimiter, apostrophes as quotes, backslash
//! escapes, a 0-byte file, a header written twice, a stray quote in the
//! header. Each is imported by the real binary and its stored rows read back.

use serde_json::Value;

use crate::common::*;

/// Imports one fixture of `dialects/` (reading only) and returns its rows.
fn rows_of(name: &str) -> (Value, Vec<Value>) {
    let work = Work::new();
    let file = fixture(&format!("dialects/{name}"));
    let (code, json) = work.import_json(&[file.to_str().unwrap(), "--stop-after", "data_import"]);
    assert_eq!(code, 0, "{json}");
    let rows = raw_rows(&work.conn(), name)
        .into_iter()
        .map(|(_, row)| row)
        .collect();
    (json, rows)
}

#[test]
fn a_comma_then_a_space_is_one_delimiter_and_quotes_after_it_still_quote() {
    let (json, rows) = rows_of("comma_space_quoted_notes.csv");
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0]["SENSOR"], "pump-01", "no leading space kept");
    assert_eq!(rows[0]["NOTE"], "started, pressure low");
    assert_eq!(
        file_entry(&json, "comma_space_quoted_notes.csv")["delimiter"],
        "comma and space"
    );
}

#[test]
fn a_space_delimited_export_with_quoted_descriptions_is_a_table() {
    let (_, rows) = rows_of("space_delimited_quoted.txt");
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[2]["HOSTNAME"], "db01");
    assert_eq!(
        rows[2]["ROLE DESCRIPTION"],
        "primary database, do not reboot"
    );
    assert_eq!(rows[2]["RAM_GB"], "64");
}

#[test]
fn apostrophes_quote_and_backslashes_escape() {
    let (_, rows) = rows_of("apostrophe_quoted.csv");
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[1]["ProductDescription"], "SQL Server 2016, clustered");
    assert_eq!(rows[1]["ServerName"], "db01");
    let (_, rows) = rows_of("backslash_escaped_quotes.csv");
    assert_eq!(rows.len(), 4);
    assert_eq!(
        rows[0]["Comment"],
        "owner said \"do not patch, ever\" in 2019"
    );
    assert_eq!(rows[3]["Cores"], "2");
}

#[test]
fn a_zero_byte_file_is_skipped_with_a_note_and_exit_0() {
    let work = Work::new();
    let file = fixture("dialects/zero_bytes.csv");
    let (code, json) = work.import_json(&[file.to_str().unwrap()]);
    assert_eq!(code, 0, "{json}");
    let entry = file_entry(&json, "zero_bytes.csv");
    assert_eq!(entry["status"], "skipped");
    assert!(entry["skipped_because"].as_str().unwrap().contains("empty"));
}

#[test]
fn a_header_written_twice_is_one_header() {
    let (_, rows) = rows_of("header_repeated_twice.csv");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["Server Name"], "web01");
}

#[test]
fn a_stray_quote_in_the_header_is_dropped_with_a_warning() {
    let (json, rows) = rows_of("stray_quote_in_header.csv");
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[0]["OS"], "Ubuntu 22.04");
    assert_eq!(rows[2]["RAM GB"], "8");
    assert!(
        json.to_string()
            .contains("opened a quote that never closes"),
        "{json}"
    );
}
