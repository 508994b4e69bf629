//! `intake import` on CSV files: every quirk fixture is imported by the real
//! binary and checked row by row in the SQLite file.

use crate::common::*;
use serde_json::{json, Value};

fn import_one(work: &Work, name: &str, extra: &[&str]) -> (i32, Value) {
    let path = work.fixture(name);
    let mut args = vec![path.to_str().unwrap()];
    args.extend_from_slice(extra);
    work.import_json(&args)
}

#[test]
fn samples_become_one_discovery_flow_with_every_row() {
    let work = Work::new();
    let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let (code, out) = work.import_json(&[samples.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let master = out["master_flow_id"].as_str().unwrap().to_string();
    let conn = work.conn();

    // Every data row of each sample, counted independently of intake.
    for (name, rows) in [
        ("servicenow_cmdb_ci_server.csv", 36),
        ("aws_migration_hub_import.csv", 30),
        ("azure_migrate_import.csv", 32),
        ("handmade_semicolon_cp1252.csv", 30),
    ] {
        let stored = raw_rows(&conn, name);
        assert_eq!(stored.len(), rows, "{name}");
        assert_eq!(import_field::<String>(&conn, name, "status"), "completed");
        assert_eq!(
            import_field::<i64>(&conn, name, "total_records"),
            rows as i64
        );
        assert_eq!(
            import_field::<i64>(&conn, name, "processed_records"),
            rows as i64
        );
        assert_eq!(
            import_field::<String>(&conn, name, "master_flow_id"),
            master
        );
        assert_eq!(
            import_field::<f64>(&conn, name, "progress_percentage"),
            100.0
        );
        assert!(import_field::<Option<String>>(&conn, name, "started_at").is_some());
        assert!(import_field::<Option<String>>(&conn, name, "completed_at").is_some());
        assert_eq!(file_entry(&out, name)["rows"], rows);
    }
    let linked: i64 = conn
        .query_row(
            "SELECT count(*) FROM raw_import_records WHERE master_flow_id = ?1",
            [&master],
            |r| r.get(0),
        )
        .unwrap();
    // 128 CSV rows (checked above) plus the workbook samples' sheets.
    assert_eq!(linked, out["totals"]["rows"].as_i64().unwrap());
    assert!(linked > 128);

    // The discovery flow records all six phases in both tables, and is completed.
    let (flag, phase, progress, done, status): (i64, String, f64, String, String) = conn
        .query_row(
            "SELECT data_import_completed, current_phase, progress_percentage, phases_completed, status
             FROM discovery_flows WHERE master_flow_id = ?1",
            [&master],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!(
        (flag, phase.as_str(), status.as_str()),
        (1, "completed", "completed")
    );
    assert!((progress - 100.0).abs() < 0.01);
    assert_eq!(
        serde_json::from_str::<Value>(&done).unwrap(),
        json!([
            "data_import",
            "attribute_mapping",
            "data_cleansing",
            "inventory",
            "dependencies",
            "tech_debt"
        ])
    );
    let (flow_type, progression, phase_flow): (String, String, String) = conn
        .query_row(
            "SELECT flow_type, phase_progression, phase_flow_id FROM crewai_flow_state_extensions WHERE flow_id = ?1",
            [&master],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(flow_type, "discovery");
    assert_eq!(phase_flow, out["discovery_flow_id"].as_str().unwrap());
    let progression: Value = serde_json::from_str(&progression).unwrap();
    assert_eq!(progression["data_import"]["status"], "completed");
    assert_eq!(progression["data_import"]["summary"]["records"], linked);
    assert_eq!(progression["tech_debt"]["status"], "completed");

    // Default tenant, found again by name on the next run.
    assert_eq!(out["client"], "local");
    assert_eq!(out["engagement"], "default");

    // The hand-made file: Windows-1252, semicolons, decimal commas kept as written.
    let entry = file_entry(&out, "handmade_semicolon_cp1252.csv");
    assert_eq!(entry["encoding"], "windows-1252");
    assert_eq!(entry["delimiter"], "semicolon");
    let hand = raw_rows(&conn, "handmade_semicolon_cp1252.csv");
    assert!(hand[0].1["Kosten/Monat (€)"]
        .as_str()
        .unwrap()
        .ends_with(" €"));
    assert!(hand.iter().any(|(_, r)| r["Standort"] == "München"));
    assert_eq!(
        file_entry(&out, "azure_migrate_import.csv")["encoding"],
        "UTF-8 BOM"
    );
    assert!(raw_rows(&conn, "azure_migrate_import.csv")[0]
        .1
        .get("*Server name")
        .is_some());
}

#[test]
fn utf8_bom_is_stripped_from_the_first_header() {
    let work = Work::new();
    let (code, out) = import_one(&work, "utf8_bom_comma.csv", &[]);
    assert_eq!(code, 0);
    assert_eq!(out["files"][0]["encoding"], "UTF-8 BOM");
    let rows = raw_rows(&work.conn(), "utf8_bom_comma.csv");
    assert_eq!(
        rows[0].1,
        json!({"Name": "web01", "IP Address": "10.0.0.1", "Owner": "Zoë Müller"})
    );
    assert_eq!(rows[1].1["Owner"], "François");
}

#[test]
fn utf16_excel_unicode_text_in_both_byte_orders_and_without_bom() {
    for (name, encoding) in [
        ("utf16le_bom_tab_excel_unicode.txt", "UTF-16LE BOM"),
        ("utf16be_bom_tab.txt", "UTF-16BE BOM"),
        ("utf16le_no_bom_tab.txt", "UTF-16LE"),
    ] {
        let work = Work::new();
        let (code, out) = import_one(&work, name, &[]);
        assert_eq!(code, 0, "{name}: {out}");
        assert_eq!(out["files"][0]["encoding"], encoding, "{name}");
        assert_eq!(out["files"][0]["delimiter"], "tab", "{name}");
        let rows = raw_rows(&work.conn(), name);
        assert_eq!(rows.len(), 3, "{name}");
        assert_eq!(
            rows[2].1,
            json!({"Server Name": "APP-Ü1", "IP Addr": "10.1.0.3", "RAM GB": "8"}),
            "{name}"
        );
    }
}

#[test]
fn windows_1252_is_detected_and_decoded() {
    let work = Work::new();
    let (code, out) = import_one(&work, "semicolon_cp1252.csv", &[]);
    assert_eq!(code, 0);
    assert_eq!(out["files"][0]["encoding"], "windows-1252");
    assert_eq!(out["files"][0]["encoding_source"], "detected");
    assert_eq!(out["files"][0]["delimiter"], "semicolon");
    let rows = raw_rows(&work.conn(), "semicolon_cp1252.csv");
    assert_eq!(
        rows[0].1,
        json!({"Servername": "srv-münchen-01", "Betriebssystem": "Windows Server 2019", "RAM (GB)": "15,5", "Kosten (€)": "1.234,50 €"})
    );
}

#[test]
fn encoding_and_delimiter_overrides_win() {
    let work = Work::new();
    // Read as Latin-1 text split on commas: one column holding the semicolon text.
    let (code, out) = import_one(
        &work,
        "semicolon_cp1252.csv",
        &["--encoding", "latin1", "--delimiter", "comma"],
    );
    assert_eq!(code, 0);
    assert_eq!(out["files"][0]["encoding_source"], "override");
    assert_eq!(out["files"][0]["delimiter_source"], "override");
    assert_eq!(out["files"][0]["columns"], 1); // the header has no comma; the rows' decimal commas make ragged rows
    let rows = raw_rows(&work.conn(), "semicolon_cp1252.csv");
    let first = rows[0].1.as_object().unwrap();
    assert!(first
        .keys()
        .next()
        .unwrap()
        .starts_with("Servername;Betriebssystem"));

    let work = Work::new();
    expect_failure(
        &work,
        &["import", "x.csv", "--encoding", "klingon"],
        2,
        "unknown encoding 'klingon'",
    );
    assert_nothing_created(&work);
}

/// A command that fails before doing any work leaves no file behind.
fn assert_nothing_created(work: &Work) {
    let left: Vec<String> = std::fs::read_dir(work.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("intake.db"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn delimiter_sniffing_is_not_fooled_by_quoted_delimiters() {
    let work = Work::new();
    let (_, out) = import_one(&work, "quoted_semicolons_comma_delimited.csv", &[]);
    assert_eq!(out["files"][0]["delimiter"], "comma");
    let rows = raw_rows(&work.conn(), "quoted_semicolons_comma_delimited.csv");
    assert_eq!(
        rows[0].1,
        json!({"name": "web01", "notes": "x;y;z;w;v", "location": "DC1"})
    );

    let (_, out) = import_one(&work, "pipe_delimited.csv", &[]);
    assert_eq!(out["files"][0]["delimiter"], "pipe");
    assert_eq!(
        raw_rows(&work.conn(), "pipe_delimited.csv")[1].1["os"],
        "Windows 2019"
    );
}

#[test]
fn quoted_fields_keep_embedded_newlines_and_record_index_is_the_line() {
    let work = Work::new();
    let (code, _) = import_one(&work, "quoted_delimiters_embedded_newlines.csv", &[]);
    assert_eq!(code, 0);
    let rows = raw_rows(&work.conn(), "quoted_delimiters_embedded_newlines.csv");
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[0],
        (
            2,
            json!({"name": "web01", "notes": "a;b;c|d\tx", "ip": "10.0.0.1"})
        )
    );
    assert_eq!(
        rows[1],
        (
            3,
            json!({"name": "db01", "notes": "first line\nsecond line, with comma", "ip": "10.0.0.2"})
        )
    );
    // The third record starts on line 5 because the second spans two lines.
    assert_eq!(
        rows[2],
        (
            5,
            json!({"name": "app \"quoted\" 01", "notes": "", "ip": "10.0.0.3"})
        )
    );
}

#[test]
fn ragged_rows_are_kept_with_a_warning_and_strict_fails() {
    let work = Work::new();
    let (code, out) = import_one(&work, "ragged_rows.csv", &[]);
    assert_eq!(code, 0);
    assert_eq!(out["files"][0]["warnings"], 2);
    assert_eq!(out["files"][0]["warnings_by_code"]["ragged_row"], 2);
    let rows = raw_rows(&work.conn(), "ragged_rows.csv");
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1].1, json!({"name": "db01", "ip": "10.0.0.2"}));
    assert_eq!(
        rows[2].1,
        json!({"name": "app01", "ip": "10.0.0.3", "os": "Windows", "column_4": "extra1", "column_5": "extra2"})
    );
    let metadata: Value = serde_json::from_str(&import_field::<String>(
        &work.conn(),
        "ragged_rows.csv",
        "read_metadata",
    ))
    .unwrap();
    assert_eq!(metadata["warning_count"], 2);
    assert_eq!(metadata["warnings"][0]["line"], 3);
    assert_eq!(metadata["warnings"][0]["code"], "ragged_row");

    let (code, out) = import_one(&Work::new(), "ragged_rows.csv", &["--strict"]);
    assert_eq!(code, 4, "{out}");
}

#[test]
fn blank_and_duplicate_headers_get_deterministic_names() {
    let work = Work::new();
    let (code, out) = import_one(&work, "blank_and_duplicate_headers.csv", &[]);
    assert_eq!(code, 0);
    assert_eq!(
        out["files"][0]["header_warnings"].as_array().unwrap().len(),
        3
    );
    let rows = raw_rows(&work.conn(), "blank_and_duplicate_headers.csv");
    assert_eq!(
        rows[0].1,
        json!({"Name": "web01", "column_2": "x", "Name_2": "WEB01", "IP": "10.0.0.1", "column_5": "y"})
    );
    // Key order is the file's order.
    let raw: String = work
        .conn()
        .query_row("SELECT raw_data FROM raw_import_records", [], |r| r.get(0))
        .unwrap();
    assert!(raw.starts_with("{\"Name\":\"web01\",\"column_2\""));
}

#[test]
fn nul_bytes_are_kept_and_warned_about() {
    let work = Work::new();
    let (code, out) = import_one(&work, "nul_bytes.csv", &[]);
    assert_eq!(code, 0);
    assert_eq!(out["files"][0]["warnings_by_code"]["nul_byte"], 1);
    let rows = raw_rows(&work.conn(), "nul_bytes.csv");
    assert_eq!(rows[0].1["notes"], "ab\u{0}cd");
    assert_eq!(rows[1].1["notes"], "ok");
}

#[test]
fn title_rows_above_the_header_are_kept_as_preamble() {
    let work = Work::new();
    let (code, out) = import_one(&work, "title_rows_semicolon.csv", &[]);
    assert_eq!(code, 0);
    assert_eq!(out["files"][0]["delimiter"], "semicolon");
    let rows = raw_rows(&work.conn(), "title_rows_semicolon.csv");
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0],
        (
            5,
            json!({"Name": "web01", "IP": "10.0.0.1", "RAM": "15,5", "OS": "RHEL 8"})
        )
    );
    let metadata: Value = serde_json::from_str(&import_field::<String>(
        &work.conn(),
        "title_rows_semicolon.csv",
        "read_metadata",
    ))
    .unwrap();
    assert_eq!(metadata["header_line"], 4);
    assert_eq!(
        metadata["preamble"][0]["text"],
        "Server inventory, data centre south"
    );
    assert_eq!(metadata["preamble"][1]["line"], 2);
}

#[test]
fn blank_rows_carry_no_data_and_are_counted() {
    let work = Work::new();
    let (code, out) = import_one(&work, "blank_rows_between.csv", &[]);
    assert_eq!(code, 0);
    assert_eq!(out["files"][0]["rows"], 2);
    assert_eq!(out["files"][0]["blank_rows"], 2); // "," and " , "; an empty line is not a row
    let rows = raw_rows(&work.conn(), "blank_rows_between.csv");
    assert_eq!(rows.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![2, 6]);
}

#[test]
fn header_only_file_completes_with_zero_rows_and_a_warning() {
    let work = Work::new();
    let (code, out) = import_one(&work, "header_only.csv", &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["files"][0]["status"], "completed");
    assert_eq!(out["files"][0]["rows"], 0);
    assert_eq!(out["files"][0]["warnings_by_code"]["no_data_rows"], 1);
    let metadata: Value = serde_json::from_str(&import_field::<String>(
        &work.conn(),
        "header_only.csv",
        "read_metadata",
    ))
    .unwrap();
    assert_eq!(metadata["columns"], json!(["name", "ip", "os"]));
}

#[test]
fn empty_and_blank_files_are_imports_of_no_rows_with_a_note() {
    let work = Work::new();
    let empty = work.fixture("empty.csv");
    let blank = work.fixture("blank_lines_only.csv");
    let good = work.fixture("pipe_delimited.csv");
    let (code, out) = work.import_json(&[
        empty.to_str().unwrap(),
        blank.to_str().unwrap(),
        good.to_str().unwrap(),
    ]);
    // An empty export is not a failure: an import of no rows with a note, exit 0.
    assert_eq!(code, 0, "{out}");
    for name in ["empty.csv", "blank_lines_only.csv"] {
        let entry = file_entry(&out, name);
        assert_eq!(entry["status"], "completed");
        assert_eq!(entry["rows"], 0);
        assert_eq!(entry["warnings"], 0, "{entry}");
        assert!(
            entry["notes"].to_string().contains("the file is empty"),
            "{entry}"
        );
    }
    assert_eq!(
        file_entry(&out, "pipe_delimited.csv")["status"],
        "completed"
    );
    let conn = work.conn();
    // Recorded as received: a completed import of no rows.
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM data_imports WHERE filename LIKE '%empty.csv' AND status = 'completed' AND total_records = 0"
        ),
        1
    );
    assert_eq!(raw_rows(&conn, "pipe_delimited.csv").len(), 2);
    // The flow still completed its data_import phase with the files it could read.
    assert_eq!(
        count(&conn, "SELECT data_import_completed FROM discovery_flows"),
        1
    );
}

#[test]
fn unterminated_quote_hits_the_record_limit_with_file_and_line() {
    let work = Work::new();
    let bad = work.fixture("unterminated_quote.csv");
    let good = work.fixture("ragged_rows.csv");
    let (code, out) = work.import_json(&[
        bad.to_str().unwrap(),
        good.to_str().unwrap(),
        "--max-record-bytes",
        "2048",
    ]);
    assert_eq!(code, 3);
    let entry = file_entry(&out, "unterminated_quote.csv");
    assert_eq!(entry["error_code"], "record_too_large");
    let error = entry["error"].as_str().unwrap();
    assert!(
        error.contains("unterminated_quote.csv") && error.contains("line 2"),
        "{error}"
    );
    let conn = work.conn();
    assert_eq!(
        import_field::<String>(&conn, "unterminated_quote.csv", "status"),
        "failed"
    );
    let details: Value = serde_json::from_str(&import_field::<String>(
        &conn,
        "unterminated_quote.csv",
        "error_details",
    ))
    .unwrap();
    assert_eq!(details["type"], "record_too_large");
    assert_eq!(details["line"], 2);
    assert!(raw_rows(&conn, "unterminated_quote.csv").is_empty());
    assert_eq!(raw_rows(&conn, "ragged_rows.csv").len(), 3);
}

#[test]
fn reimport_is_skipped_unless_forced() {
    let work = Work::new();
    let file = work.fixture("pipe_delimited.csv");
    let file = file.to_str().unwrap();
    let (_, first) = work.import_json(&[file]);
    let (code, second) = work.import_json(&[file]);
    assert_eq!(code, 0);
    assert_eq!(second["files"][0]["status"], "skipped");
    assert!(second["files"][0]["skipped_because"]
        .as_str()
        .unwrap()
        .contains("--force"));
    assert!(
        second["master_flow_id"].is_null(),
        "a run with nothing to import creates no flow"
    );
    let conn = work.conn();
    assert_eq!(count(&conn, "SELECT count(*) FROM raw_import_records"), 2);
    assert_eq!(
        count(&conn, "SELECT count(*) FROM crewai_flow_state_extensions"),
        1
    );

    // The same content under another name is the same file.
    let copy = work.path("copy.csv");
    std::fs::copy(file, &copy).unwrap();
    let (_, third) = work.import_json(&[copy.to_str().unwrap()]);
    assert_eq!(third["files"][0]["status"], "skipped");

    let (code, forced) = work.import_json(&[file, "--force"]);
    assert_eq!(code, 0);
    assert_eq!(forced["files"][0]["status"], "completed");
    assert_ne!(forced["master_flow_id"], first["master_flow_id"]);
    assert_eq!(count(&conn, "SELECT count(*) FROM raw_import_records"), 4);

    // Another engagement has not seen the file.
    let (_, other) = work.import_json(&[file, "--client", "Acme", "--engagement", "Wave 1"]);
    assert_eq!(other["files"][0]["status"], "completed");
    assert_eq!(other["client"], "Acme");
}

#[test]
fn tenants_are_created_once_and_found_by_name() {
    let work = Work::new();
    let a = work.fixture("pipe_delimited.csv");
    let b = work.fixture("ragged_rows.csv");
    work.import_json(&[
        a.to_str().unwrap(),
        "--client",
        "Acme Corp",
        "--engagement",
        "DC exit",
        "--user",
        "ana",
    ]);
    work.import_json(&[
        b.to_str().unwrap(),
        "--client",
        "Acme Corp",
        "--engagement",
        "DC exit",
        "--user",
        "ana",
    ]);
    let conn = work.conn();
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM client_accounts WHERE name = 'Acme Corp'"
        ),
        1
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM engagements WHERE name = 'DC exit'"
        ),
        1
    );
    assert_eq!(
        count(&conn, "SELECT count(*) FROM users WHERE username = 'ana'"),
        1
    );
    assert_eq!(
        count(&conn,
            "SELECT count(DISTINCT d.engagement_id) FROM data_imports d JOIN engagements e ON e.id = d.engagement_id
             JOIN client_accounts c ON c.id = e.client_account_id AND c.id = d.client_account_id
             WHERE c.name = 'Acme Corp'"
        ),
        1
    );
    assert_eq!(
        count(&conn, "SELECT count(*) FROM data_imports d JOIN users u ON u.id = d.imported_by WHERE u.username = 'ana'"),
        2
    );
}

#[test]
fn standard_input_is_imported_as_stdin() {
    let work = Work::new();
    let out = work
        .intake()
        .args(["import", "-", "--json", "--source-system", "servicenow"])
        .write_stdin("name;ip\nweb01;10.0.0.1\ndb01;10.0.0.2\n")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["files"][0]["path"], "stdin");
    let conn = work.conn();
    assert_eq!(
        raw_rows(&conn, "stdin")[1].1,
        json!({"name": "db01", "ip": "10.0.0.2"})
    );
    assert_eq!(
        import_field::<String>(&conn, "stdin", "source_system"),
        "servicenow"
    );
    // The spool file does not outlive the run.
    let leftovers = std::fs::read_dir(work.dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".intake-stdin")
        })
        .count();
    assert_eq!(leftovers, 0);
}

#[test]
fn a_directory_imports_every_supported_file_and_lists_the_rest() {
    let work = Work::new();
    let dir = work.path("exports");
    std::fs::create_dir_all(dir.join("nested")).unwrap();
    std::fs::copy(fixture("pipe_delimited.csv"), dir.join("a.csv")).unwrap();
    std::fs::copy(
        fixture("utf16le_bom_tab_excel_unicode.txt"),
        dir.join("nested/b.txt"),
    )
    .unwrap();
    std::fs::write(dir.join("readme.pdf"), b"%PDF").unwrap();
    std::fs::write(dir.join(".hidden.csv"), b"x\n1\n").unwrap();
    let (code, out) = work.import_json(&[dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["totals"]["completed"], 2);
    assert_eq!(out["totals"]["rows"], 5);
    assert!(out["ignored_paths"][0]["path"]
        .as_str()
        .unwrap()
        .ends_with("readme.pdf"));
}

#[test]
fn a_missing_path_is_exit_3_and_the_other_paths_are_imported() {
    let work = Work::new();
    expect_failure(
        &work,
        &["import", "nope.csv"],
        3,
        "nope.csv: no such file or directory",
    );
    assert_nothing_created(&work);
    // sync never creates the local file either.
    expect_failure(
        &work,
        &[
            "sync",
            "--database-url",
            "postgres://nobody@127.0.0.1:1/none",
        ],
        3,
        "no database",
    );
    assert_nothing_created(&work);
    let good = work.fixture("ragged_rows.csv");
    let (code, json) = work.import_json(&["nope.csv", good.to_str().unwrap()]);
    assert_eq!(code, 3, "{json}");
    let files = json["files"].as_array().unwrap();
    assert!(
        files.iter().any(|f| f["path"] == "nope.csv"
            && f["status"] == "failed"
            && f["error_code"] == "not_found"),
        "{json}"
    );
    assert!(files.iter().any(|f| f["status"] == "completed"), "{json}");
}

#[test]
fn summary_table_goes_to_stdout_and_json_has_the_flow() {
    let work = Work::new();
    let file = work.fixture("ragged_rows.csv");
    let out = work
        .intake()
        .args(["import", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ragged_rows.csv") && stdout.contains("imported"),
        "{stdout}"
    );
    assert!(stdout.contains("master flow "));
    assert!(stdout.contains("row warning(s) in 1 file(s)"), "{stdout}");
    assert!(
        stdout.lines().last().unwrap().starts_with("next: "),
        "{stdout}"
    );
    let out = work
        .intake()
        .args(["import", file.to_str().unwrap(), "--force", "-v"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("line 3"),
        "-v lists the row warnings: {stdout}"
    );

    let (_, json) = import_one(&Work::new(), "ragged_rows.csv", &[]);
    assert!(uuid_like(json["master_flow_id"].as_str().unwrap()));
    assert_eq!(json["totals"]["files"], 1);
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().filter(|c| *c == '-').count() == 4 && &s[14..15] == "7"
}

#[test]
fn one_failure_has_one_exit_code_in_every_command() {
    let work = Work::new();
    // No database: 3, whichever command reads one.
    for args in [
        &["assets"][..],
        &["report", "--output", "r.html"],
        &["mappings"],
        &["schema", "check"],
    ] {
        let out = work.intake().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {stderr}");
        assert!(stderr.contains("no database"), "{args:?}: {stderr}");
        assert!(!work.db().exists(), "{args:?} created the database");
    }
    // Nothing to do is success, and --json says so.
    let file = sample("servicenow_cmdb_ci_server.csv");
    work.run_ok(&["import", file.to_str().unwrap(), "-q"]);
    let (code, out) = work.import_json(&[file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["files"][0]["status"], "skipped", "{out}");
    // No such flow: 3 again.
    for args in [
        &["assets", "--flow", "ffffffff"][..],
        &["mappings", "--flow", "ffffffff"],
    ] {
        let out = work.intake().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(3), "{args:?}");
    }
}

#[test]
fn help_shows_examples_and_exit_codes() {
    let work = Work::new();
    let out = work.intake().args(["import", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Examples:") && help.contains("intake import servers.csv"));
    let out = work.intake().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Exit codes:") && help.contains("--strict"));
}

/// A large CSV is parsed on several threads, cut into chunks where records
/// end: the rows staged (with their line numbers), the warnings, and the
/// assets built are the same as one reader's, for a UTF-8 export with
/// quoted line breaks and for the same export as CRLF UTF-16.
#[test]
fn a_large_csv_parsed_on_several_threads_stages_what_one_reader_stages() {
    let source = Work::new();
    let mut text = Vec::new();
    intake::synth::write_cmdb_csv(&mut text, 12_000, 5.0, 11).unwrap();
    let threshold = intake::read::csv_parallel::PARALLEL_MIN_BYTES as usize;
    assert!(text.len() > threshold, "larger than the parallel threshold");
    let utf8 = source.path("cmdb_quoted_breaks.csv");
    std::fs::write(&utf8, &text).unwrap();
    let crlf = String::from_utf8(text).unwrap().replace('\n', "\r\n");
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(crlf.encode_utf16().flat_map(u16::to_le_bytes));
    let wide = source.path("cmdb_crlf_utf16le_bom.csv");
    std::fs::write(&wide, utf16).unwrap();
    for file in [&utf8, &wide] {
        let file = file.to_str().unwrap();
        let imported = |threads: &str| {
            let work = Work::new();
            let (code, json) = work.import_json(&[file, "--threads", threads]);
            assert_eq!(code, 0, "{json}");
            let conn = work.conn();
            // Each row's cleansing, as one text per row.
            let cleansed: Vec<String> = conn
                .prepare("SELECT record_index || ' ' || ifnull(cleansed_data, '-') || ' ' || ifnull(is_valid, '-') || ' ' || ifnull(validation_errors, '-') FROM raw_import_records ORDER BY record_index")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let assets = count(&conn, "SELECT count(*) FROM assets");
            let mut outcome = json["files"][0].clone();
            let outcome = outcome.as_object_mut().unwrap();
            for differs in ["seconds", "data_import_id"] {
                outcome.remove(differs);
            }
            (
                staged_rows(&work),
                cleansed,
                assets,
                Value::Object(outcome.clone()),
                json["inventory"].clone(),
            )
        };
        let one = imported("1");
        let three = imported("3");
        assert!(one.0.len() >= 12_000, "{file}: {} rows", one.0.len());
        assert!(
            one.0.iter().any(|(_, _, raw)| raw.contains("\\n")),
            "quoted line breaks are kept"
        );
        assert!(
            one.0 == three.0,
            "{file}: the same rows, in the same order, with the same lines"
        );
        assert!(one.1 == three.1, "{file}: the same cleansing, row by row");
        assert_eq!(one.2, three.2, "{file}: assets");
        assert_eq!(one.3, three.3, "{file}: rows, blank rows, warnings");
        assert_eq!(one.4, three.4, "{file}: inventory");
    }
}

/// A readme or an e-mail in an export folder is skipped with a note, the
/// exports beside it import; `--delimiter` imports it anyway.
#[test]
fn a_readme_beside_the_exports_is_skipped_as_prose() {
    let work = Work::new();
    let dir = work.path("exports");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("README.txt"),
        "Hi team,\n\nattached are the exports from the CMDB. Please note that the RVTools file is old and\nsome servers were decommissioned since then.\n\nRegards,\nBob\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("servers.csv"),
        "Server Name,RAM GB\nweb01,16\nweb02,8\n",
    )
    .unwrap();
    let (code, json) = work.import_json(&[dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{json}");
    let readme = crate::common::file_entry(&json, "README.txt");
    assert_eq!(readme["status"], "skipped", "{json}");
    assert_eq!(readme["error_code"], "not_a_table", "{json}");
    assert!(
        readme["skipped_because"]
            .as_str()
            .unwrap()
            .contains("prose"),
        "{json}"
    );
    assert_eq!(
        crate::common::file_entry(&json, "servers.csv")["status"],
        "completed"
    );
    let out = work.run_ok(&["import", "--force", dir.to_str().unwrap()]);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("skipped as prose"), "{summary}");
    let readme_path = dir.join("README.txt");
    let (code, json) = work.import_json(&["--delimiter", "comma", readme_path.to_str().unwrap()]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["files"][0]["status"], "completed", "{json}");
}

/// The summary of the sample folder fits the terminal: at 80 columns no
/// line is wider, at 120 the names are whole; one line per file or sheet,
/// at most five attention lines, and a `next:` line at the end.
#[test]
fn the_summary_of_the_sample_folder_fits_80_and_120_columns() {
    let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    for columns in [80usize, 120] {
        let work = Work::new();
        let folder = work.path("samples");
        std::fs::create_dir(&folder).unwrap();
        for entry in std::fs::read_dir(&samples).unwrap().flatten() {
            std::fs::copy(entry.path(), folder.join(entry.file_name())).unwrap();
        }
        let out = work
            .intake()
            .env("COLUMNS", columns.to_string())
            .args(["import", "samples"])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let summary = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = summary.lines().collect();
        let widest = lines.iter().map(|l| l.chars().count()).max().unwrap();
        assert!(widest <= columns, "{widest} > {columns}:\n{summary}");
        assert!(lines.len() <= 25, "{} lines:\n{summary}", lines.len());
        assert!(
            lines
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap()
                .trim_start()
                .starts_with("next:"),
            "{summary}"
        );
        // No line repeats a table's column list, and nothing points at SQL tables.
        assert!(
            !summary.contains("layout:") && !summary.contains("raw_import_records"),
            "{summary}"
        );
        // Every file and sheet has its line: 7 files, 8 sheets of RVTools, 1 of the CMDB workbook.
        let named = lines
            .iter()
            .filter(|l| l.contains(".csv") || l.contains(".xlsx"))
            .count();
        assert!(named >= 14, "{named} file lines:\n{summary}");
        if columns == 120 {
            assert!(
                summary.contains("samples/RVTools_export_all.xlsx [vPartition]"),
                "{summary}"
            );
        }
    }
}
