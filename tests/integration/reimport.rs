//! Re-importing a source: the next export of the same CMDB repeats most of
//! its rows. A row identical to one the previous import of the source stored
//! is recorded as seen (raw_record_sightings) rather than stored, cleansed
//! and merged again, and every reader still sees the whole import: the view
//! raw_import_records (as any SQLite client reads it), the summary's counts,
//! the assets, the report's sources.

use crate::common::*;
use serde_json::Value;

const ROWS: u64 = 2_000;

/// A generated CMDB export: the same machines each time, `changed` % of
/// them with other values.
fn cmdb(work: &Work, name: &str, changed: f64) -> std::path::PathBuf {
    let path = work.path(name);
    let mut out = std::fs::File::create(&path).unwrap();
    let records = intake::synth::CmdbRecords::new(ROWS, 1.0, 31).with_changed(changed, 32);
    intake::synth::write_records_csv(&mut out, records).unwrap();
    path
}

fn import_id(work: &Work, filename_like: &str) -> String {
    work.conn()
        .query_row(
            "SELECT id FROM data_imports WHERE filename LIKE ?1 ORDER BY created_at DESC LIMIT 1",
            [filename_like],
            |r| r.get(0),
        )
        .unwrap()
}

/// Every record of an import as the schema's view gives it to any client:
/// (record_index, raw_data, cleansed_data, is_valid, validation_errors).
fn records(work: &Work, data_import_id: &str) -> Vec<(i64, String, Option<String>, i64, String)> {
    work.conn()
        .prepare(
            "SELECT record_index, raw_data, cleansed_data, is_valid, validation_errors
             FROM raw_import_records WHERE data_import_id = ?1 ORDER BY record_index",
        )
        .unwrap()
        .query_map([data_import_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The assets' identifying and mapped columns, ordered by name.
fn assets(work: &Work) -> Vec<String> {
    work.conn()
        .prepare(
            "SELECT json_array(name, asset_type, hostname, ip_address, fqdn, operating_system, os_version,
                               cpu_cores, memory_gb, storage_gb, environment, serial_number, application_name)
             FROM assets WHERE asset_type <> 'application' ORDER BY cmdb_record_id, name",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn counts_of(json: &Value) -> Value {
    let file = &json["files"][0];
    serde_json::json!({
        "rows": file["rows"],
        "yields": file["yields"],
        "valid": json["data_cleansing"]["valid"],
        "invalid": json["data_cleansing"]["invalid"],
    })
}

#[test]
fn the_next_export_stores_only_its_changed_rows_and_every_reader_sees_it_whole() {
    let work = Work::new();
    let monday = cmdb(&work, "cmdb_monday.csv", 0.0);
    let tuesday = cmdb(&work, "cmdb_tuesday.csv", 5.0);
    let (code, first) = work.import_json(&[monday.to_str().unwrap()]);
    assert_eq!(code, 0, "{first}");
    assert_eq!(
        first["files"][0]["unchanged_rows"], 0,
        "{}",
        first["files"][0]
    );
    let (code, next) = work.import_json(&[tuesday.to_str().unwrap()]);
    assert_eq!(code, 0, "{next}");
    let monday_id = import_id(&work, "%cmdb_monday.csv");
    let tuesday_id = import_id(&work, "%cmdb_tuesday.csv");

    // About 5 % of the machines changed: only their rows are stored.
    let conn = work.conn();
    let stored = count(
        &conn,
        &format!("SELECT count(*) FROM raw_records WHERE data_import_id = '{tuesday_id}'"),
    );
    let seen = count(
        &conn,
        &format!("SELECT count(*) FROM raw_record_sightings WHERE data_import_id = '{tuesday_id}'"),
    );
    assert!((50..=200).contains(&stored), "{stored} rows stored");
    assert_eq!(stored + seen, ROWS as i64);
    assert_eq!(
        next["files"][0]["unchanged_rows"], seen,
        "{}",
        next["files"][0]
    );
    assert_eq!(next["files"][0]["unchanged_since"], monday_id.as_str());
    // Each sighting names a record monday stored, at the same place here.
    assert_eq!(
        count(
            &conn,
            &format!(
                "SELECT count(*) FROM raw_record_sightings s
                 JOIN raw_records r ON r.data_import_id = s.seen_import_id AND r.record_index = s.seen_index
                 WHERE s.data_import_id = '{tuesday_id}' AND s.seen_import_id = '{monday_id}'"
            )
        ),
        seen
    );

    // The same export imported alone, where every row is stored.
    let alone = Work::new();
    let tuesday_alone = cmdb(&alone, "cmdb_tuesday.csv", 5.0);
    let (code, by_itself) = alone.import_json(&[tuesday_alone.to_str().unwrap()]);
    assert_eq!(code, 0, "{by_itself}");
    let alone_id = import_id(&alone, "%cmdb_tuesday.csv");
    assert_eq!(
        count(&alone.conn(), "SELECT count(*) FROM raw_record_sightings"),
        0
    );

    // Record for record, the view reads the same import.
    let here = records(&work, &tuesday_id);
    let there = records(&alone, &alone_id);
    assert_eq!(here.len() as u64, ROWS);
    assert!(
        here == there,
        "the records of the re-import differ from the export imported alone"
    );
    // Ids stay unique and derived from the import that saw the row.
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) - count(DISTINCT id) FROM raw_import_records"
        ),
        0
    );
    // Counts, machines and what the rows became are those of the export alone.
    assert_eq!(counts_of(&next), counts_of(&by_itself), "{next}");
    // One source system: the assets are those of its newest export.
    assert!(assets(&work) == assets(&alone), "the assets differ");
    let inventory = &next["inventory"];
    assert_eq!(inventory["created"], 0, "{inventory}");
    assert!(inventory["updated"].as_u64().unwrap() > 0, "{inventory}");

    // The file stays consistent and its report counts the import whole.
    let out = work.run_ok(&["schema", "check"]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("schema ok"));
    let summary = work.run_ok(&["import", tuesday.to_str().unwrap(), "--force"]);
    let stderr = String::from_utf8_lossy(&summary.stderr);
    let stdout = String::from_utf8_lossy(&summary.stdout);
    assert!(
        stdout.contains(&format!("{ROWS} of {ROWS} rows unchanged"))
            || stderr.contains(&format!("{ROWS} of {ROWS} rows unchanged")),
        "a forced re-import of the same file sees every row again:\n{stdout}\n{stderr}"
    );
}

#[test]
fn a_forced_re_import_stores_no_row_again_and_changes_no_asset() {
    let work = Work::new();
    let monday = cmdb(&work, "cmdb_monday.csv", 0.0);
    let (code, first) = work.import_json(&[monday.to_str().unwrap()]);
    assert_eq!(code, 0, "{first}");
    let before = assets(&work);
    let stored = count(&work.conn(), "SELECT count(*) FROM raw_records");
    let (code, forced) = work.import_json(&[monday.to_str().unwrap(), "--force"]);
    assert_eq!(code, 0, "{forced}");
    assert_eq!(forced["files"][0]["unchanged_rows"], ROWS);
    let conn = work.conn();
    assert_eq!(count(&conn, "SELECT count(*) FROM raw_records"), stored);
    assert_eq!(
        count(&conn, "SELECT count(*) FROM raw_import_records"),
        2 * ROWS as i64
    );
    assert_eq!(counts_of(&forced), counts_of(&first));
    assert_eq!(forced["inventory"]["updated"], 0, "{}", forced["inventory"]);
    assert_eq!(forced["inventory"]["created"], 0, "{}", forced["inventory"]);
    assert_eq!(assets(&work), before);
    // A third import of it repeats the second, whose rows were all seen:
    // its sightings name the records the first stored.
    let (code, third) = work.import_json(&[monday.to_str().unwrap(), "--force"]);
    assert_eq!(code, 0, "{third}");
    assert_eq!(third["files"][0]["unchanged_rows"], ROWS);
    assert_eq!(count(&conn, "SELECT count(*) FROM raw_records"), stored);
    assert_eq!(
        count(
            &conn,
            "SELECT count(DISTINCT seen_import_id) FROM raw_record_sightings"
        ),
        1
    );
}

#[test]
fn a_mapping_change_stores_the_rows_an_import_saw_before_cleansing_them_again() {
    let work = Work::new();
    let monday = work.write(
        "monday.csv",
        "Server Name,Kiste,RAM GB\nweb01,DC-Nord,16\nweb02,DC-Sued,8\nweb03,DC-Ost,4\n",
    );
    let (code, _) = work.import_json(&[monday.to_str().unwrap()]);
    assert_eq!(code, 0);
    let tuesday = work.write(
        "tuesday.csv",
        "Server Name,Kiste,RAM GB\nweb01,DC-Nord,16\nweb02,DC-Sued,32\nweb03,DC-Ost,4\n",
    );
    let (code, next) = work.import_json(&[tuesday.to_str().unwrap()]);
    assert_eq!(code, 0, "{next}");
    assert_eq!(
        next["files"][0]["unchanged_rows"], 2,
        "{}",
        next["files"][0]
    );
    let tuesday_id = import_id(&work, "%tuesday.csv");
    let before: Vec<(i64, String)> = records(&work, &tuesday_id)
        .into_iter()
        .map(|r| (r.0, r.1))
        .collect();

    // The decision applies to the latest flow: tuesday is cleansed again,
    // so the rows it saw become its own records first.
    work.run_ok(&["mappings", "set", "Kiste", "datacenter"]);
    let conn = work.conn();
    assert_eq!(count(&conn, "SELECT count(*) FROM raw_record_sightings"), 0);
    assert_eq!(
        count(
            &conn,
            &format!("SELECT count(*) FROM raw_records WHERE data_import_id = '{tuesday_id}'")
        ),
        3
    );
    let after = records(&work, &tuesday_id);
    assert_eq!(
        after.iter().map(|r| (r.0, r.1.clone())).collect::<Vec<_>>(),
        before,
        "the raw rows are unchanged"
    );
    for (_, _, cleansed, _, _) in &after {
        let cleansed: Value = serde_json::from_str(cleansed.as_deref().unwrap()).unwrap();
        assert!(
            cleansed["datacenter"]
                .as_str()
                .is_some_and(|d| d.starts_with("DC-")),
            "{cleansed}"
        );
    }
    let web01: String = conn
        .query_row(
            "SELECT datacenter FROM assets WHERE name = 'web01'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(web01, "DC-Nord");
}

/// The next export of one of two overlapping sources (ServiceNow and RVTools,
/// whose values conflict): its inventory merges only the machines its
/// changed rows touch, and gives exactly what a full build of every record
/// gives, asset for asset and count for count.
#[test]
fn the_machines_a_re_import_touches_are_built_as_a_full_build_builds_them() {
    let build = |full: bool| -> (Work, Value) {
        let work = Work::new();
        let cmdb = work.path("servicenow_cmdb_ci_server.csv");
        std::fs::copy(sample("servicenow_cmdb_ci_server.csv"), &cmdb).unwrap();
        let rvtools = work.path("RVTools_export_all.xlsx");
        std::fs::copy(sample("RVTools_export_all.xlsx"), &rvtools).unwrap();
        let (code, first) = work.import_json(&[cmdb.to_str().unwrap(), rvtools.to_str().unwrap()]);
        assert_eq!(code, 0, "{first}");
        if full {
            work.conn()
                .execute("DELETE FROM inventory_links", [])
                .unwrap();
        }
        // Next week's export: one machine has more memory, another moved.
        let text = std::fs::read_to_string(&cmdb).unwrap();
        let next =
            text.replacen(",8192,", ",16384,", 1)
                .replacen("Amsterdam AMS2", "Frankfurt DC1", 1);
        assert_ne!(next, text);
        let (code, json) = work.import_json(&[work
            .write("servicenow_cmdb_ci_server_next.csv", &next)
            .to_str()
            .unwrap()]);
        assert_eq!(code, 0, "{json}");
        (work, json)
    };
    let (incremental, touched) = build(false);
    let (full, rebuilt) = build(true);
    let merged = |json: &Value| json["inventory"]["machines_merged"].as_u64().unwrap();
    assert!(
        merged(&touched) < merged(&rebuilt),
        "the re-import merged only the machines it touches: {} of {}",
        touched["inventory"],
        rebuilt["inventory"]
    );
    assert!(merged(&touched) >= 2, "{}", touched["inventory"]);
    let mut counts = touched["inventory"].clone();
    let mut expected = rebuilt["inventory"].clone();
    counts.as_object_mut().unwrap().remove("machines_merged");
    expected.as_object_mut().unwrap().remove("machines_merged");
    assert_eq!(counts, expected);
    assert!(expected["conflicts"].as_u64().unwrap() > 0, "{expected}");
    assert_eq!(touched["files"][0]["yields"], rebuilt["files"][0]["yields"]);
    // Hosts the dependencies phase makes carry the time they were found.
    let contents = |work: &Work| {
        crate::inventory::asset_contents_without(
            work,
            &["first_discovered_at", "last_discovered_at"],
        )
    };
    let (a, b) = (contents(&incremental), contents(&full));
    let differ: Vec<(&String, &String)> = a.iter().zip(&b).filter(|(x, y)| x != y).collect();
    assert!(
        a.len() == b.len() && differ.is_empty(),
        "the incremental build differs from the full one: {differ:#?}"
    );
    // Both leave links a later run can trust: the two exports' and vInfo's.
    for work in [&incremental, &full] {
        assert!(count(&work.conn(), "SELECT count(*) FROM inventory_links") >= 3);
    }
}
