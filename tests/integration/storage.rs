//! How the local file stores what it holds, seen from outside: a database
//! written by an earlier layout (schema 7, checked in as a fixture made by
//! that binary) is read and upgraded by the first import, and the rows a
//! sync sends centrally are the ones the schema-7 layout sent for the same
//! input (`tests/fixtures/upgrade/central_rows_v7.json`, written by that
//! binary; `INTAKE_BLESS=1` rewrites it after an intended change).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use crate::common::*;
use serde_json::{Map, Value};

/// The inputs both fixtures were made from: every sample export and a
/// ServiceNow relationship export beside them.
fn inputs(work: &Work) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(sample(""))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("csv" | "xlsx")))
        .collect();
    files.sort();
    let inputs = work.path("inputs");
    std::fs::create_dir_all(&inputs).unwrap();
    let mut copied = Vec::new();
    for file in files
        .iter()
        .chain([&fixture("dependencies/cmdb_rel_ci_display_values.csv")])
    {
        let to = inputs.join(file.file_name().unwrap());
        std::fs::copy(file, &to).unwrap();
        copied.push(to);
    }
    copied
}

/// The database of those inputs written by the binary of schema `version`
/// (7: d500535, 8: 60cd5bc), unzipped into the work dir.
fn older_database(work: &Work, version: i64) {
    let file = std::fs::File::open(fixture(&format!(
        "upgrade/schema_v{version}_samples_and_relationships.db.zip"
    )))
    .unwrap();
    let mut archive = zip::ZipArchive::new(file).unwrap();
    let mut entry = archive.by_index(0).unwrap();
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes).unwrap();
    std::fs::write(work.db(), bytes).unwrap();
}

fn user_version(work: &Work) -> i64 {
    work.conn()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

/// The raw_data of the first record of the RVTools vInfo sheet.
fn first_vinfo_row(conn: &rusqlite::Connection) -> String {
    conn.query_row(
        "SELECT r.raw_data FROM raw_import_records r JOIN data_imports d ON d.id = r.data_import_id
         WHERE d.sheet_name = 'vInfo' ORDER BY r.record_index LIMIT 1",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

/// The first import after the upgrade converts the schema-7 file; what it
/// held reads as before (every record's raw_data a JSON object keyed by the
/// header, the assets, the edges), the new rows join it, and the report
/// and the schema check read the result.
#[test]
fn a_schema_7_database_is_upgraded_by_the_first_import_and_keeps_what_it_held() {
    upgraded_by_the_first_import(7);
}

/// The same for a schema-8 file (records as arrays, cleansed copies): the
/// upgrade to 9 adds the row hash, the sightings and the inventory's links;
/// the next export of a source it holds is then stored whole (its rows have
/// no hash), and the one after records its unchanged rows as seen.
#[test]
fn a_schema_8_database_is_upgraded_by_the_first_import_and_keeps_what_it_held() {
    let work = upgraded_by_the_first_import(8);
    let cmdb = std::fs::read_to_string(sample("servicenow_cmdb_ci_server.csv")).unwrap();
    let next = cmdb.replacen(",8192,", ",16384,", 1);
    let file = work.write("servicenow_cmdb_ci_server_next.csv", &next);
    let (code, json) = work.import_json(&[file.to_str().unwrap()]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["files"][0]["unchanged_rows"], 0, "{json}");
    let file = work.write("servicenow_cmdb_ci_server_after.csv", &next);
    let (code, json) = work.import_json(&[file.to_str().unwrap(), "--force"]);
    assert_eq!(code, 0, "{json}");
    let rows = json["files"][0]["rows"].as_u64().unwrap();
    assert!(rows > 0);
    assert_eq!(json["files"][0]["unchanged_rows"], rows, "{json}");
    let conn = work.conn();
    assert_eq!(
        count(&conn, "SELECT count(*) FROM raw_import_records"),
        423 + 2 * rows as i64
    );
}

fn upgraded_by_the_first_import(version: i64) -> Work {
    let work = Work::new();
    older_database(&work, version);
    assert_eq!(user_version(&work), version);
    let conn = work.conn();
    let before = (
        count(&conn, "SELECT count(*) FROM raw_import_records"),
        count(&conn, "SELECT count(*) FROM assets"),
        count(&conn, "SELECT count(*) FROM asset_dependencies"),
    );
    assert_eq!(before, (421, 171, 135));
    let rvtools_row = first_vinfo_row(&conn);
    drop(conn);

    let new = work.write(
        "next_week.csv",
        "Server Name,OS,Environment\nnew-app-01,Ubuntu 22.04,production\nnew-db-01,RHEL 9,production\n",
    );
    let (code, json) = work.import_json(&[new.to_str().unwrap()]);
    assert_eq!(code, 0, "{json}");
    assert!(user_version(&work) > version);
    assert!(
        !work.path("intake.db-journal").exists()
            || std::fs::metadata(work.path("intake.db-journal"))
                .unwrap()
                .len()
                == 0
    );

    let conn = work.conn();
    assert_eq!(count(&conn, "SELECT count(*) FROM raw_import_records"), 423);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM raw_import_records WHERE json_type(raw_data) <> 'object'"
        ),
        0
    );
    let same_row = first_vinfo_row(&conn);
    assert_eq!(
        serde_json::from_str::<Value>(&same_row).unwrap(),
        serde_json::from_str::<Value>(&rvtools_row).unwrap()
    );
    assert!(count(&conn, "SELECT count(*) FROM assets") >= 171 + 2);
    assert!(count(&conn, "SELECT count(*) FROM asset_dependencies") >= 135);
    drop(conn);

    let check = work.run_ok(&["schema", "check", "--json"]);
    let check: Value = serde_json::from_slice(&check.stdout).unwrap();
    assert_eq!(check["problems"], serde_json::json!([]), "{check}");
    assert_eq!(
        check["schema_version"], check["expected_version"],
        "{check}"
    );
    work.run_ok(&["report", "-o", "report.md"]);
    let report = std::fs::read_to_string(work.path("report.md")).unwrap();
    assert!(
        report.contains("new-app-01") || report.contains("173"),
        "the new machines are in the report"
    );
    work
}

/// Keys that differ between two runs on the same input (ids, times, the
/// machine's paths), dropped from the canonical rows.
fn volatile(key: &str) -> bool {
    key == "id"
        || key.ends_with("_at")
        || key.ends_with("_id")
        || key == "imported_by"
        || key == "file_size"
}

/// `value` with every asset id inside it (a relationship row's cleansed
/// ends) replaced by what the asset is.
fn named_ids(value: &Value, assets: &BTreeMap<String, String>) -> Value {
    match value {
        Value::String(s) => Value::String(assets.get(s).cloned().unwrap_or_else(|| s.clone())),
        Value::Array(items) => Value::Array(items.iter().map(|v| named_ids(v, assets)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), named_ids(v, assets)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The rows a central database holds for the tables whose storage may
/// change, each as a JSON object without its ids and times; references are
/// replaced by what they name (an import by its file and sheet, an asset by
/// its type and name). Sorted, one row per line.
fn central_rows(central: &TestDatabase) -> BTreeMap<String, Vec<String>> {
    let mut client = central.client();
    let label = |object: &Map<String, Value>| -> String {
        let file = object["filename"].as_str().unwrap_or_default();
        let file = file.rsplit(['/', '\\']).next().unwrap_or(file);
        match object.get("sheet_name").and_then(Value::as_str) {
            Some(sheet) => format!("{file} [{sheet}]"),
            None => file.to_string(),
        }
    };
    let rows_of = |client: &mut postgres::Client, table: &str| -> Vec<Map<String, Value>> {
        client
            .query(&format!("SELECT to_jsonb(t)::text FROM {table} t"), &[])
            .unwrap()
            .iter()
            .map(|r| {
                serde_json::from_str::<Value>(&r.get::<_, String>(0))
                    .unwrap()
                    .as_object()
                    .unwrap()
                    .clone()
            })
            .collect()
    };
    let imports: BTreeMap<String, String> = rows_of(&mut client, "data_imports")
        .iter()
        .map(|d| (d["id"].as_str().unwrap().to_string(), label(d)))
        .collect();
    let assets: BTreeMap<String, String> = rows_of(&mut client, "assets")
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_string(),
                format!("{} {}", a["asset_type"], a["name"]),
            )
        })
        .collect();
    let mut out = BTreeMap::new();
    for table in [
        "data_imports",
        "import_field_mappings",
        "raw_import_records",
        "assets",
        "asset_dependencies",
    ] {
        let mut lines: Vec<String> = rows_of(&mut client, table)
            .into_iter()
            .map(|row| {
                let mut canonical = Map::new();
                for (key, value) in &row {
                    let named = match key.as_str() {
                        "data_import_id" => value.as_str().map(|id| imports[id].clone()),
                        "asset_id" | "depends_on_asset_id" => {
                            value.as_str().map(|id| assets[id].clone())
                        }
                        "filename" => Some(label(&row)),
                        _ => None,
                    };
                    match named {
                        Some(name) => {
                            canonical.insert(key.clone(), Value::String(name));
                        }
                        None if volatile(key) || key == "read_metadata" => {}
                        None => {
                            canonical.insert(key.clone(), named_ids(value, &assets));
                        }
                    }
                }
                Value::Object(canonical).to_string()
            })
            .collect();
        lines.sort();
        out.insert(table.to_string(), lines);
    }
    out
}

/// The same input, imported and synced by this build, sends the central
/// rows the schema-7 layout sent: the storage underneath changes nothing
/// the platform receives.
#[test]
fn a_sync_sends_the_rows_the_schema_7_layout_sent() {
    let work = Work::new();
    let files = inputs(&work);
    let mut args = vec!["import"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    args.push("--quiet");
    work.run_ok(&args);
    let central = TestDatabase::create("intake_storage");
    let out = work
        .intake()
        .args(["sync", "--json", "--create-schema"])
        .env("DATABASE_URL", central.url())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = central_rows(&central);
    let golden = fixture("upgrade/central_rows_v7.json");
    if std::env::var_os("INTAKE_BLESS").is_some() {
        std::fs::write(&golden, serde_json::to_string_pretty(&rows).unwrap()).unwrap();
    }
    let want: BTreeMap<String, Vec<String>> =
        serde_json::from_str(&std::fs::read_to_string(&golden).unwrap()).unwrap();
    for (table, want_rows) in &want {
        let got = &rows[table];
        let missing: Vec<&String> = want_rows.iter().filter(|r| !got.contains(r)).collect();
        let extra: Vec<&String> = got.iter().filter(|r| !want_rows.contains(r)).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{table}: {} row(s) the schema-7 layout sent are not sent, {} are new; first missing:\n{}\nfirst new:\n{}",
            missing.len(),
            extra.len(),
            missing.first().map_or("-", |s| s.as_str()),
            extra.first().map_or("-", |s| s.as_str())
        );
    }
    assert_eq!(want.len(), 5);
    assert!(want["raw_import_records"].len() >= 421);
}

/// Records are stored as arrays of values under their import's columns
/// (a row with values beyond the header as its object) with the cleansed
/// fields that copy a raw value left out, and both views of them agree: the schema's, which any SQLite client reads, and the one
/// intake's own connections read, record for record.
#[test]
fn the_records_read_the_same_through_the_schema_view_and_intake_s_own() {
    let work = Work::new();
    let mut args = vec!["import".to_string()];
    args.extend(
        inputs(&work)
            .iter()
            .map(|f| f.to_str().unwrap().to_string()),
    );
    args.push(fixture("ragged_rows.csv").to_str().unwrap().to_string());
    args.push("--quiet".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    work.run_ok(&args);
    let read =
        |conn: &rusqlite::Connection| -> Vec<(String, i64, Value, Value)> {
            conn.prepare(
            "SELECT data_import_id, record_index, raw_data, cleansed_data FROM raw_import_records
             ORDER BY data_import_id, record_index",
        )
        .unwrap()
        .query_map([], |r| {
            let raw: String = r.get(2)?;
            let cleansed: Option<String> = r.get(3)?;
            let cleansed = cleansed.map_or(Value::Null, |c| serde_json::from_str(&c).unwrap());
            Ok((r.get(0)?, r.get(1)?, serde_json::from_str(&raw).unwrap(), cleansed))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
        };
    let plain = work.conn();
    let schema_view = read(&plain);
    let native = intake::db::open(&work.db()).unwrap();
    let native_view = read(&native);
    assert_eq!(schema_view.len(), 421 + count(&plain, "SELECT count(*) FROM raw_records r JOIN data_imports d ON d.id = r.data_import_id WHERE d.filename LIKE '%ragged_rows.csv'") as usize);
    assert_eq!(schema_view, native_view);
    assert!(schema_view.iter().all(|(_, _, raw, _)| raw.is_object()));
    // Most records leave out the fields that copy their raw value, and read
    // back whole (the golden sync test checks the values themselves).
    let with_copies = count(
        &plain,
        "SELECT count(*) FROM raw_records WHERE copies IS NOT NULL",
    );
    assert!(with_copies * 2 > schema_view.len() as i64, "{with_copies}");
    let shorter = count(
        &plain,
        "SELECT count(*) FROM raw_import_records v JOIN raw_records r
           ON r.data_import_id = v.data_import_id AND r.record_index = v.record_index
         WHERE r.copies IS NOT NULL AND length(r.cleansed_data) < length(v.cleansed_data)",
    );
    assert!(shorter * 2 > with_copies, "{shorter} of {with_copies}");
    // Arrays, but for the row with more values than the header.
    let objects = count(
        &plain,
        "SELECT count(*) FROM raw_records WHERE substr(raw_values, 1, 1) = '{'",
    );
    let with_extra = count(
        &plain,
        "SELECT count(*) FROM raw_import_records WHERE raw_data LIKE '%\"column_%'",
    );
    assert!(with_extra >= 1);
    assert_eq!(objects, with_extra);
}
