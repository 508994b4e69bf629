//! `intake schema check|print` and schema versioning, on real SQLite files.

use crate::common::*;
use rusqlite::Connection;
use serde_json::Value;

fn check_json(work: &Work) -> (i32, Value) {
    let out = work
        .intake()
        .args(["schema", "check", "--json"])
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        serde_json::from_slice(&out.stdout).unwrap(),
    )
}

fn fresh_db(work: &Work) {
    let file = work.fixture("pipe_delimited.csv");
    let (code, _) = work.import_json(&[file.to_str().unwrap()]);
    assert_eq!(code, 0);
}

#[test]
fn a_new_database_passes_the_check() {
    let work = Work::new();
    fresh_db(&work);
    let (code, report) = check_json(&work);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["problems"].as_array().unwrap().len(), 0);
    // The 12 tables of the seeds and mapping_decisions, raw_import_records
    // being the view over raw_records, cleansed_copies and raw_record_sightings,
    // and the inventory's links.
    assert_eq!(report["tables_checked"], 16);
    let out = work.intake().args(["schema", "check"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("schema ok"));
}

#[test]
fn the_check_lists_v3_tables_removed_tables_and_columns_and_missing_columns() {
    let work = Work::new();
    fresh_db(&work);
    let conn = work.conn();
    conn.execute_batch(
        "CREATE TABLE v3_data_imports (id TEXT);
         CREATE TABLE discovery_assets (id TEXT);
         ALTER TABLE assets ADD COLUMN is_mock INTEGER;
         ALTER TABLE data_imports ADD COLUMN session_id TEXT;
         ALTER TABLE import_field_mappings ADD COLUMN sample_values TEXT;
         ALTER TABLE assets DROP COLUMN migration_wave;",
    )
    .unwrap();
    drop(conn);
    let (code, report) = check_json(&work);
    assert_eq!(code, 1);
    let problems: Vec<(String, String, Option<String>)> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["kind"].as_str().unwrap().to_string(),
                p["table"].as_str().unwrap().to_string(),
                p["column"].as_str().map(str::to_string),
            )
        })
        .collect();
    for expected in [
        ("v3_table", "v3_data_imports", None),
        ("removed_table", "discovery_assets", None),
        ("removed_column", "assets", Some("is_mock")),
        ("removed_column", "data_imports", Some("session_id")),
        (
            "removed_column",
            "import_field_mappings",
            Some("sample_values"),
        ),
        ("missing_column", "assets", Some("migration_wave")),
    ] {
        let expected = (
            expected.0.to_string(),
            expected.1.to_string(),
            expected.2.map(str::to_string),
        );
        assert!(
            problems.contains(&expected),
            "{expected:?} not in {problems:?}"
        );
    }
    assert_eq!(problems.len(), 6, "{problems:?}");
    let out = work.intake().args(["schema", "check"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("6 problem(s) found") && text.contains("v3_data_imports"),
        "{text}"
    );
}

#[test]
fn a_missing_table_is_reported() {
    let work = Work::new();
    fresh_db(&work);
    work.conn()
        .execute_batch("DROP TABLE asset_dependencies")
        .unwrap();
    let (code, report) = check_json(&work);
    assert_eq!(code, 1);
    assert_eq!(report["problems"][0]["kind"], "missing_table");
    assert_eq!(report["problems"][0]["table"], "asset_dependencies");
}

#[test]
fn a_newer_schema_is_refused_and_left_untouched() {
    let work = Work::new();
    fresh_db(&work);
    work.conn().pragma_update(None, "user_version", 99).unwrap();
    let file = work.fixture("ragged_rows.csv");
    expect_failure(
        &work,
        &["import", file.to_str().unwrap()],
        1,
        "newer intake (schema version 99",
    );
    let version: i64 = work
        .conn()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 99);
    let rows: i64 = work
        .conn()
        .query_row("SELECT count(*) FROM raw_import_records", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 2, "only the first import's rows");
}

#[test]
fn a_foreign_sqlite_file_is_refused() {
    let work = Work::new();
    Connection::open(work.db())
        .unwrap()
        .execute_batch("CREATE TABLE hosts (name TEXT)")
        .unwrap();
    let file = work.fixture("ragged_rows.csv");
    expect_failure(
        &work,
        &["import", file.to_str().unwrap()],
        1,
        "did not create",
    );
}

#[test]
fn constraints_are_enforced_by_the_file() {
    let work = Work::new();
    fresh_db(&work);
    let conn = work.conn();
    conn.pragma_update(None, "foreign_keys", "ON").unwrap();
    let (client, engagement): (String, String) = conn
        .query_row(
            "SELECT client_account_id, engagement_id FROM data_imports",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let insert_asset = |asset_type: &str, custom: &str| {
        conn.execute(
            "INSERT INTO assets (id, client_account_id, engagement_id, asset_type, name, custom_attributes, created_at, updated_at)
             VALUES (lower(hex(randomblob(16))), ?1, ?2, ?3, 'x', ?4, 'now', 'now')",
            rusqlite::params![client, engagement, asset_type, custom],
        )
    };
    assert!(insert_asset("server", "{}").is_ok());
    assert!(
        insert_asset("virtual_machine", "{}").is_err(),
        "asset_type is an enumeration"
    );
    assert!(
        insert_asset("server", "not json").is_err(),
        "custom_attributes must be JSON"
    );
    let bad_fk = conn.execute(
        "INSERT INTO data_imports (id, client_account_id, engagement_id, master_flow_id, import_name, filename, created_at, updated_at)
         VALUES ('x', 'nope', 'nope', 'nope', 'n', 'f', 'now', 'now')",
        [],
    );
    assert!(bad_fk.is_err(), "foreign keys are enforced");
    let bad_status = conn.execute("UPDATE data_imports SET status = 'done'", []);
    assert!(bad_status.is_err(), "import status is an enumeration");
    // Every table (raw_import_records is a view over raw_records).
    let strict = "SELECT count(*) FROM sqlite_schema WHERE type = 'table'
                    AND (sql LIKE '%STRICT' OR sql LIKE '%STRICT, WITHOUT ROWID')";
    let tables = "SELECT count(*) FROM sqlite_schema WHERE type = 'table'";
    assert_eq!(count(&conn, strict), count(&conn, tables));
    assert_eq!(count(&conn, strict), 15);
}

#[test]
fn schema_print_is_the_ddl() {
    let work = Work::new();
    let out = work.intake().args(["schema", "print"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let ddl = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        ddl,
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.sql")).unwrap()
    );
    // The printed DDL builds a database that passes the check.
    let conn = Connection::open(work.db()).unwrap();
    conn.execute_batch(&ddl).unwrap();
    conn.pragma_update(None, "user_version", intake::db::SCHEMA_VERSION)
        .unwrap();
    drop(conn);
    let (code, report) = check_json(&work);
    assert_eq!(code, 0, "{report}");
}

/// raw_import_records as schemas 1 to 7 stored it (a table).
const SCHEMA_7_RAW_IMPORT_RECORDS: &str =
    "-- Every source row, lossless: raw_data is a JSON object keyed by the header as written.
-- No tenant columns: a record's tenant is its import's.
CREATE TABLE raw_import_records (
    id                TEXT PRIMARY KEY,
    data_import_id    TEXT NOT NULL REFERENCES data_imports(id) ON DELETE CASCADE,
    master_flow_id    TEXT NOT NULL REFERENCES crewai_flow_state_extensions(flow_id),
    record_index      INTEGER NOT NULL,
    -- JSON written only by intake's own serialiser, so not re-parsed by a
    -- json_valid CHECK on every insert (that cost 6% of a million-row import)
    raw_data          TEXT NOT NULL,
    cleansed_data     TEXT,
    is_processed      INTEGER NOT NULL DEFAULT 0 CHECK (is_processed IN (0, 1)),
    is_valid          INTEGER CHECK (is_valid IN (0, 1)),
    validation_errors TEXT,
    created_at        TEXT NOT NULL,
    processed_at      TEXT,
    UNIQUE (data_import_id, record_index)
) STRICT;
CREATE INDEX ix_raw_import_records_master ON raw_import_records(master_flow_id);
";

#[test]
fn a_version_1_database_is_migrated_on_open() {
    let work = Work::new();
    // Version 1 is today's DDL without data_imports.sheet_name, import_field_mappings.evidence,
    // the sync_log table and assets.support_status / tech_debt_details.
    let schema =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.sql")).unwrap();
    let schema = &schema[..schema
        .find("\n-- One row per `intake sync` attempt")
        .expect("schema.sql ends with sync_log")];
    let v1 = schema.replace(
        "    completed_at        TEXT,\n    -- the sheet of a workbook this import read (one data_imports row per sheet); NULL for CSV\n    sheet_name          TEXT\n",
        "    completed_at        TEXT\n",
    );
    let v1 = v1.replace(
        "    updated_at           TEXT NOT NULL,\n    -- why the suggestion was made, in words (header and content evidence), shown by `intake mappings`\n    evidence             TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(evidence))\n",
        "    updated_at           TEXT NOT NULL\n",
    );
    // ... and without the schema-4 tech_debt columns of assets.
    let tech_debt_columns = v1
        .find(",\n    -- the tech_debt phase's verdict")
        .expect("schema.sql has the tech_debt columns");
    let assets_end = tech_debt_columns + v1[tech_debt_columns..].find("\n) STRICT;").unwrap();
    let v1 = format!("{}{}", &v1[..tech_debt_columns], &v1[assets_end..]);
    // ... and with raw_import_records the table it was until schema 8 ...
    let records = v1
        .find("-- The cleansed fields of an import's records")
        .expect("schema.sql has raw_records");
    let records_end = records
        + v1[records..]
            .find("\nJOIN data_imports d ON d.id = r.data_import_id;\n")
            .expect("schema.sql has the raw_import_records view")
        + "\nJOIN data_imports d ON d.id = r.data_import_id;\n".len();
    let v1 = format!(
        "{}{SCHEMA_7_RAW_IMPORT_RECORDS}{}",
        &v1[..records],
        &v1[records_end..]
    );
    // ... and with the json_valid CHECKs raw_import_records had until schema 5.
    let v1 = v1.replace(
        "    -- JSON written only by intake's own serialiser, so not re-parsed by a\n    -- json_valid CHECK on every insert (that cost 6% of a million-row import)\n    raw_data          TEXT NOT NULL,\n    cleansed_data     TEXT,\n",
        "    raw_data          TEXT NOT NULL CHECK (json_valid(raw_data)),\n    cleansed_data     TEXT CHECK (cleansed_data IS NULL OR json_valid(cleansed_data)),\n",
    ).replace(
        "    validation_errors TEXT,\n",
        "    validation_errors TEXT CHECK (validation_errors IS NULL OR json_valid(validation_errors)),\n",
    );
    // ... and with the IN lists every enumeration CHECK had until schema 6.
    let v1 = as_in_lists(&v1);
    assert_eq!(v1.matches(" IN\n").count(), 11, "{v1}");
    assert_eq!(v1.matches("json_valid(raw_data)").count(), 1);
    assert_eq!(
        v1.matches("sheet_name").count() + v1.matches("evidence ").count(),
        0,
        "the v2 columns were found in schema.sql"
    );
    let conn = Connection::open(work.db()).unwrap();
    conn.execute_batch(&v1).unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    drop(conn);
    let book = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/workbooks/merged_cells.xlsx"
    );
    let out = work.intake().args(["import", book, "-q"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conn = work.conn();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, intake::db::SCHEMA_VERSION);
    assert_eq!(count(&conn, "SELECT count(*) FROM sync_log"), 0);
    // The raw records' DDL was edited in place to exactly what a new file has.
    let ddl = |c: &Connection| -> String {
        c.query_row(
            "SELECT sql FROM sqlite_schema WHERE name = 'raw_import_records'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let fresh = Connection::open_in_memory().unwrap();
    fresh.execute_batch(schema).unwrap();
    assert_eq!(ddl(&conn), ddl(&fresh));
    // Every enumeration CHECK was rewritten from IN to OR; the tables no ALTER
    // touched have exactly a new file's DDL.
    let tables: Vec<(String, String)> = conn
        .prepare("SELECT name, sql FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0).unwrap(), r.get(1).unwrap())))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (name, sql) in &tables {
        assert!(!sql.contains(" IN\n"), "{name}: {sql}");
        assert_eq!(intake::db::check_lists_as_or(sql), sql.as_str(), "{name}");
        if [
            "client_accounts",
            "engagements",
            "discovery_flows",
            "crewai_flow_state_extensions",
        ]
        .contains(&name.as_str())
        {
            let fresh_sql: String = fresh
                .query_row(
                    "SELECT sql FROM sqlite_schema WHERE name = ?1",
                    [name],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(sql, &fresh_sql, "{name}");
        }
    }
    // The rewritten CHECKs still refuse values outside the enumerations.
    assert!(conn
        .execute("UPDATE assets SET environment = 'prod'", [])
        .is_err());
    assert!(conn
        .execute("UPDATE assets SET asset_type = 'vm'", [])
        .is_err());
    assert!(
        conn.execute("UPDATE assets SET environment = 'production'", [])
            .unwrap()
            > 0
    );
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM data_imports WHERE sheet_name = 'Inventory'"
        ),
        1
    );
    let (code, report) = check_json(&work);
    assert_eq!(code, 0, "{report}");
}

/// Turns `CHECK (x = 'a' OR x = 'b')` chains back into the IN lists schema
/// versions before 6 had, with the line break some of them had before the list.
fn as_in_lists(ddl: &str) -> String {
    let chain = regex::Regex::new(
        r"CHECK \((?<null>\w+ IS NULL OR )?(?<chain>(?<column>\w+) = '[^']*'(?: OR \w+ = '[^']*')+)\)",
    )
    .unwrap();
    chain
        .replace_all(ddl, |c: &regex::Captures| {
            let values: Vec<&str> = c["chain"]
                .split(" OR ")
                .map(|test| test.split_once(" = ").unwrap().1)
                .collect();
            let null = c.name("null").map_or("", |n| n.as_str());
            format!(
                "CHECK ({null}{} IN\n        ({}))",
                &c["column"],
                values.join(", ")
            )
        })
        .into_owned()
}

#[test]
fn check_on_a_missing_file_says_so() {
    let work = Work::new();
    expect_failure(
        &work,
        &["schema", "check", "--db", "absent.db"],
        3,
        "no database absent.db",
    );
    assert!(!work.path("absent.db").exists());
}
